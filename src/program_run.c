/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The back-end program conventions, serving side (program.h): listening
 * on the sockets, one serving thread per daemon, SIGINT/SIGTERM from a
 * signalfd, stopping everything when one stops, cleaning up.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev.h"
#include "program_priv.h"

/* An inherited --fd must be an open unix stream socket. */
static const char *fd_unusable(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);
	struct stat st;

	if (fstat(fd, &st) < 0)
		return strerror(errno);
	if (!S_ISSOCK(st.st_mode))
		return "not a socket";
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 || v != AF_UNIX)
		return "not a unix domain socket";
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM)
		return "not a stream socket";
	return NULL;
}

static int listen_one(struct vhu_program *p, struct vhu_prog_sock *s)
{
	struct stat st;
	const char *why;
	int fd;

	if (s->given_fd) {
		if ((why = fd_unusable(s->fd))) {
			fprintf(stderr, "%s: --fd %d: not a usable stream socket: %s\n", p->name,
			        s->fd, why);
			return -ENOTSOCK;
		}
		return 0;
	}
	if (s->fd >= 0 || p->client)
		return 0;
	fd = vhu_listen_unix(s->path, &st);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot listen on '%s': %s\n", p->name, s->path,
		        fd == -EADDRINUSE ? "it is in use by another process"
		        : fd == -EEXIST   ? "it exists and is not a socket"
		                          : strerror(-fd));
		return fd;
	}
	VHU_LOGI("listening on %s", s->path);
	s->fd = fd;
	s->bound = true;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

int vhu_program_listen(struct vhu_program *p)
{
	int err;

	if (!p)
		return -EINVAL;
	for (unsigned i = 0; i < p->nsocks; i++)
		if ((err = listen_one(p, &p->socks[i])) < 0)
			return err;
	p->listened = true;
	return 0;
}

/* Remove the socket file we bound, unless someone replaced it meanwhile. */
static void unbind(struct vhu_prog_sock *s)
{
	struct stat now;

	if (s->bound && stat(s->path, &now) == 0 && now.st_ino == s->ino && now.st_dev == s->dev)
		unlink(s->path);
	s->bound = false;
}

void vhu_prog_socks_release(struct vhu_program *p)
{
	for (unsigned i = 0; i < p->nsocks; i++) {
		struct vhu_prog_sock *s = &p->socks[i];

		/* An --fd nobody served stays the caller's (it may be stdin). */
		if (s->fd >= 0 && !s->given_fd)
			close(s->fd);
		s->fd = -1;
		unbind(s);
	}
	if (p->done_fd >= 0)
		close(p->done_fd);
	p->done_fd = -1;
}

/* ---- serving ------------------------------------------------------------ */

static void *serve_main(void *arg)
{
	struct vhu_prog_sock *s = arg;
	uint64_t one = 1;

	if (s->p->client)
		s->result = vhu_daemon_connect(s->d, s->path);
	else
		s->result = vhu_daemon_serve_fd(s->d, s->serve_fd);
	if (write(s->p->done_fd, &one, sizeof(one)) < 0)
		s->result = s->result ? s->result : -errno;
	return NULL;
}

static void stop_all(struct vhu_program *p)
{
	for (unsigned i = 0; i < p->nsocks; i++)
		if (p->socks[i].started)
			vhu_daemon_stop(p->socks[i].d);
}

static int start_all(struct vhu_program *p)
{
	for (unsigned i = 0; i < p->nsocks; i++) {
		struct vhu_prog_sock *s = &p->socks[i];
		int err;

		s->serve_fd = s->fd; /* the daemon's once it serves */
		s->fd = -1;
		err = pthread_create(&s->thread, NULL, serve_main, s);
		if (err) {
			s->fd = s->serve_fd;
			fprintf(stderr, "%s: cannot start serving %s: %s\n", p->name,
			        vhu_program_socket_name(p, i), strerror(err));
			return -err;
		}
		s->started = true;
	}
	return 0;
}

/* Sleep until SIGINT/SIGTERM or a serving thread finished. */
static void wait_for_end(struct vhu_program *p, int sfd)
{
	struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN},
	                        {.fd = p->done_fd, .events = POLLIN}};
	struct signalfd_siginfo si;

	while (poll(fds, 2, -1) < 0 && errno == EINTR)
		;
	if ((fds[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si))
		VHU_LOGI("%s: signal %u: stopping", p->name, si.ssi_signo);
}

/* Join every serving thread; true if all of them ended well. */
static bool join_all(struct vhu_program *p)
{
	bool ok = true;

	for (unsigned i = 0; i < p->nsocks; i++) {
		struct vhu_prog_sock *s = &p->socks[i];

		if (!s->started)
			continue;
		pthread_join(s->thread, NULL);
		s->started = false;
		if (s->result < 0) {
			fprintf(stderr, "%s: %s: serving failed: %s\n", p->name,
			        vhu_program_socket_name(p, i), strerror(-s->result));
			ok = false;
		}
	}
	return ok;
}

static int prepare_run(struct vhu_program *p, int *sfd)
{
	sigset_t set;

	if (!p->listened && vhu_program_listen(p) < 0)
		return -EINVAL;
	for (unsigned i = 0; i < p->nsocks; i++) {
		if (!p->socks[i].d) {
			fprintf(stderr, "%s: no daemon serves %s\n", p->name,
			        vhu_program_socket_name(p, i));
			return -EINVAL;
		}
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* in case the caller unblocked them */
	*sfd = signalfd(-1, &set, SFD_CLOEXEC);
	p->done_fd = eventfd(0, EFD_CLOEXEC);
	if (*sfd < 0 || p->done_fd < 0) {
		fprintf(stderr, "%s: signalfd/eventfd: %s\n", p->name, strerror(errno));
		return -errno;
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int vhu_program_run(struct vhu_program *p)
{
	int sfd = -1, err;
	bool ok;

	if (!p)
		return VHU_PROGRAM_EXIT_FAILURE;
	err = prepare_run(p, &sfd);
	if (!err && !(err = start_all(p)))
		wait_for_end(p, sfd);
	stop_all(p);
	ok = join_all(p);
	if (sfd >= 0)
		close(sfd);
	vhu_prog_socks_release(p);
	return !err && ok ? VHU_PROGRAM_EXIT_OK : VHU_PROGRAM_EXIT_FAILURE;
}

int vhu_program_main(const struct vhu_program_info *info, int argc, char **argv,
                     const struct vhu_backend_ops *ops, void *dev,
                     const struct vhu_daemon_config *cfg)
{
	struct vhu_daemon_config c = cfg ? *cfg : (struct vhu_daemon_config){0};
	struct vhu_program *p;
	struct vhu_daemon *d;
	int status, err;

	if (info && info->max_sockets > 1) {
		fprintf(stderr, "%s: vhu_program_main serves one socket\n", info->name);
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	if (!(p = vhu_program_new(info, argc, argv, &status)))
		return status;
	if (!c.name)
		c.name = info->name;
	err = vhu_daemon_new(&d, ops, dev, &c);
	if (err < 0) {
		fprintf(stderr, "%s: cannot create the daemon: %s\n", info->name, strerror(-err));
		vhu_program_free(p);
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	vhu_program_set_daemon(p, 0, d);
	status = vhu_program_run(p);
	vhu_daemon_free(d);
	vhu_program_free(p);
	return status;
}
