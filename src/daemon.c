/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon: creates the vrings and worker threads, listens on a unix
 * socket and serves one front end at a time.  Waiting for a connection or
 * for the next request also watches the stop eventfd, so that
 * vhu_daemon_stop() (async-signal-safe) ends serve() from anywhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dev.h"

static void daemon_cleanup(struct vhu_daemon *d)
{
	vhu_workers_stop(d);
	if (d->vrings)
		for (unsigned q = 0; q < d->nq; q++)
			vhu_vring_destroy(&d->vrings[q]);
	free(d->vrings);
	free(d->vring_ptrs);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	vhu_be_destroy(&d->be);
	free(d);
}

/* What the library adds to the device's offer: live migration (unless
 * the daemon opted out), postcopy where userfaultfd works; RARP and MTU
 * only with the ops that answer them. */
static void vhu_offer_migration(struct vhu_daemon *d)
{
	const struct vhu_backend_ops *ops = d->be.ops;

	if (d->no_migration) {
		d->features &= ~VHU_BIT(VHU_F_LOG_ALL);
		d->pf &= ~VHU_MIGRATION_PF;
	} else {
		d->features |= VHU_BIT(VHU_F_LOG_ALL);
		d->pf |= VHU_BIT(VHU_PF_LOG_SHMFD);
		if (vhu_postcopy_usable())
			d->pf |= VHU_BIT(VHU_PF_PAGEFAULT);
		else
			d->pf &= ~VHU_BIT(VHU_PF_PAGEFAULT);
	}
	if (!ops->send_rarp)
		d->pf &= ~VHU_BIT(VHU_PF_RARP);
	if (!ops->set_mtu)
		d->pf &= ~VHU_BIT(VHU_PF_MTU);
}

/* Ask the device what it is, check it, and build the vrings. */
static int daemon_setup(struct vhu_daemon *d)
{
	d->nq = vhu_be_num_queues(&d->be);
	d->max_qsize = vhu_be_max_queue_size(&d->be);
	if (d->nq < 1 || d->nq > VHU_MAX_QUEUES) {
		VHU_LOGE("%s: num_queues %u out of range", d->name, d->nq);
		return -EINVAL;
	}
	if (d->max_qsize < 1 || d->max_qsize > VHU_MAX_QUEUE_SIZE ||
	    (d->max_qsize & (d->max_qsize - 1))) {
		VHU_LOGE("%s: max_queue_size %u is not a power of two <= %u", d->name, d->max_qsize,
		         VHU_MAX_QUEUE_SIZE);
		return -EINVAL;
	}
	d->features = vhu_be_features(&d->be) | VHU_BIT(VHU_F_PROTOCOL_FEATURES);
	d->pf = vhu_be_protocol_features(&d->be) & VHU_SUPPORTED_PF;
	vhu_offer_migration(d);
	d->vrings = calloc(d->nq, sizeof(*d->vrings));
	d->vring_ptrs = calloc(d->nq, sizeof(*d->vring_ptrs));
	if (!d->vrings || !d->vring_ptrs)
		return -ENOMEM;
	for (unsigned q = 0; q < d->nq; q++) {
		int err = vhu_vring_init(&d->vrings[q], q, d->flavour);

		if (err) {
			/* Destroy only the initialised ones. */
			while (q--)
				vhu_vring_destroy(&d->vrings[q]);
			free(d->vrings);
			d->vrings = NULL;
			return err;
		}
		d->vrings[q].owner = d->name;
		d->vring_ptrs[q] = &d->vrings[q];
	}
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->stop_fd < 0)
		return -errno;
	return vhu_workers_start(d);
}

int vhu_daemon_new(struct vhu_daemon **out, const struct vhu_backend_ops *ops, void *dev,
                   const struct vhu_daemon_config *cfg)
{
	static const struct vhu_daemon_config defaults;
	struct vhu_daemon *d;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	if ((unsigned)cfg->vring_flavour > VHU_VRING_RWLOCK)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->stop_fd = -1;
	d->conn.sock = -1;
	d->conn.log_call_fd = -1;
	d->name = cfg->name ? cfg->name : "vhu";
	d->poll_us = cfg->poll_us;
	d->max_connections = cfg->max_connections;
	d->retry_min_ms = cfg->retry_min_ms;
	d->retry_max_ms = cfg->retry_max_ms;
	d->retry_limit = cfg->retry_limit;
	d->no_migration = cfg->no_migration;
	d->drain_ms = cfg->drain_ms ? cfg->drain_ms : 30000;
	d->pool = cfg->pool;
	d->flavour = cfg->vring_flavour;
	err = vhu_be_init(&d->be, ops, dev, cfg->lock);
	if (err) {
		VHU_LOGE("%s: a required device operation is missing or bad lock mode", d->name);
		free(d);
		return err;
	}
	err = daemon_setup(d);
	if (err) {
		daemon_cleanup(d);
		return err;
	}
	*out = d;
	return 0;
}

int vhu_daemon_wait_fd(struct vhu_daemon *d, int fd, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = d->stop_fd, .events = POLLIN}};
	int n;

	do
		n = poll(p, 2, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (p[1].revents & POLLIN)
		return 0;
	return n > 0 ? 1 : -ETIMEDOUT;
}

void vhu_daemon_consume_stop(struct vhu_daemon *d)
{
	uint64_t v;

	if (read(d->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		VHU_LOGW("%s: stop eventfd: %s", d->name, strerror(errno));
}

int vhu_daemon_serve_conn(struct vhu_daemon *d, int fd)
{
	struct vhu_msg *m = malloc(sizeof(*m));
	int err = -ENOMEM, handled = 0;

	int fl = fcntl(fd, F_GETFL);

	/* Replies are written with blocking sends (an inherited fd may be
	 * non-blocking); waiting for requests polls the stop eventfd too. */
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if (m) {
		VHU_LOGI("%s: front end connected", d->name);
		atomic_store(&d->connected, true);
		vhu_conn_begin(d, fd);
		for (;;) {
			err = vhu_msg_recv_stop(fd, m, d->stop_fd);
			if (err)
				break;
			err = vhu_conn_handle(d, m);
			if (err)
				break;
			handled += handled < INT_MAX;
		}
		vhu_conn_end(d);
		atomic_store(&d->connected, false);
		free(m);
	}
	close(fd);
	atomic_fetch_add(&d->connections, 1);
	if (err == -ECONNRESET)
		VHU_LOGI("%s: front end disconnected", d->name);
	else if (err != -ECANCELED)
		VHU_LOGW("%s: front end dropped: %s", d->name, strerror(-err));
	return err == -ECANCELED ? err : handled;
}

bool vhu_daemon_enough(struct vhu_daemon *d)
{
	return d->max_connections && atomic_load(&d->connections) >= d->max_connections;
}

/* Accept and serve front ends until stopped or max_connections. */
static int serve_listener(struct vhu_daemon *d, int lfd)
{
	while (!vhu_daemon_enough(d)) {
		int r = vhu_daemon_wait_fd(d, lfd, -1), cfd;

		if (r < 0)
			return r;
		if (r == 0)
			break;
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK ||
			    errno == EOPNOTSUPP)
				return -errno;
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				continue;
			VHU_LOGW("%s: accept: %s", d->name, strerror(errno));
			/* EMFILE and friends: back off instead of spinning. */
			if (vhu_daemon_wait_fd(d, d->stop_fd, 100) == 0)
				break;
			continue;
		}
		if (vhu_daemon_serve_conn(d, cfd) == -ECANCELED)
			break;
	}
	vhu_daemon_consume_stop(d);
	return 0;
}

/* A socket file at path: in use by a live listener, or stale. */
static int claim_path(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	if (errno != ECONNREFUSED)
		return -errno;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int vhu_listen_unix(const char *path, struct stat *st)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, err;

	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	err = claim_path(path);
	if (err)
		return err;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0 ||
	    stat(path, st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

bool vhu_daemon_serve_enter(struct vhu_daemon *d)
{
	return !atomic_exchange(&d->serving, true);
}

void vhu_daemon_serve_leave(struct vhu_daemon *d)
{
	atomic_store(&d->serving, false);
}

static int serve_path(struct vhu_daemon *d, const char *path)
{
	struct stat st, now;
	int fd, err;

	fd = vhu_listen_unix(path, &st);
	if (fd < 0) {
		VHU_LOGE("%s: cannot listen on %s: %s", d->name, path ? path : "(null)",
		         strerror(-fd));
		return fd;
	}
	VHU_LOGI("%s: listening on %s", d->name, path);
	err = serve_listener(d, fd);
	close(fd);
	/* Remove the socket file unless someone replaced it meanwhile. */
	if (stat(path, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev)
		unlink(path);
	return err;
}

int vhu_daemon_serve(struct vhu_daemon *d, const char *path)
{
	int err;

	if (!d)
		return -EINVAL;
	if (!vhu_daemon_serve_enter(d))
		return -EBUSY;
	err = serve_path(d, path);
	vhu_daemon_serve_leave(d);
	return err;
}

static int serve_fd(struct vhu_daemon *d, int fd)
{
	int listening = 0, err;
	socklen_t len = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	if (listening) {
		err = serve_listener(d, fd);
		close(fd);
		return err;
	}
	if (vhu_daemon_serve_conn(d, fd) == -ECANCELED)
		vhu_daemon_consume_stop(d);
	return 0;
}

int vhu_daemon_serve_fd(struct vhu_daemon *d, int fd)
{
	int err;

	if (!d || !vhu_daemon_serve_enter(d)) {
		if (fd >= 0)
			close(fd);
		return d ? -EBUSY : -EINVAL;
	}
	err = serve_fd(d, fd);
	vhu_daemon_serve_leave(d);
	return err;
}

static void *serve_main(void *arg)
{
	struct vhu_daemon *d = arg;

	if (d->start_connect)
		d->serve_result = vhu_daemon_connect(d, d->start_path);
	else if (d->start_path)
		d->serve_result = vhu_daemon_serve(d, d->start_path);
	else
		d->serve_result = vhu_daemon_serve_fd(d, d->start_fd);
	return NULL;
}

static int start(struct vhu_daemon *d, const char *path, int fd, bool connect)
{
	if (d->serving_thread)
		return -EBUSY;
	d->start_connect = connect;
	d->start_path = NULL;
	if (path && !(d->start_path = strdup(path)))
		return -ENOMEM;
	d->start_fd = fd;
	d->serve_result = 0;
	if (pthread_create(&d->serve_thread, NULL, serve_main, d)) {
		free(d->start_path);
		d->start_path = NULL;
		return -EAGAIN;
	}
	d->serving_thread = true;
	return 0;
}

int vhu_daemon_start(struct vhu_daemon *d, const char *path)
{
	if (!d || !path)
		return -EINVAL;
	return start(d, path, -1, false);
}

int vhu_daemon_start_connect(struct vhu_daemon *d, const char *path)
{
	if (!d || !path)
		return -EINVAL;
	return start(d, path, -1, true);
}

int vhu_daemon_start_fd(struct vhu_daemon *d, int fd)
{
	int err;

	if (!d || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	err = start(d, NULL, fd, false);
	if (err)
		close(fd);
	return err;
}

int vhu_daemon_wait(struct vhu_daemon *d)
{
	if (!d || !d->serving_thread)
		return -EINVAL;
	pthread_join(d->serve_thread, NULL);
	d->serving_thread = false;
	free(d->start_path);
	d->start_path = NULL;
	return d->serve_result;
}

void vhu_daemon_stop(struct vhu_daemon *d)
{
	uint64_t one = 1;
	ssize_t n;

	if (!d)
		return;
	n = write(d->stop_fd, &one, sizeof(one));
	(void)n; /* only EAGAIN (counter full) can fail: a stop is pending */
}

void vhu_daemon_free(struct vhu_daemon *d)
{
	if (!d)
		return;
	if (d->serving_thread) {
		vhu_daemon_stop(d);
		vhu_daemon_wait(d);
	}
	daemon_cleanup(d);
}

struct vhu_vring *vhu_daemon_vring(struct vhu_daemon *d, unsigned q)
{
	return d && q < d->nq ? &d->vrings[q] : NULL;
}

uint64_t vhu_daemon_connections(const struct vhu_daemon *d)
{
	return d ? atomic_load(&((struct vhu_daemon *)d)->connections) : 0;
}

bool vhu_daemon_connected(const struct vhu_daemon *d)
{
	return d && atomic_load(&((struct vhu_daemon *)d)->connected);
}

uint64_t vhu_daemon_acked_features(const struct vhu_daemon *d)
{
	return d ? atomic_load(&((struct vhu_daemon *)d)->acked_features) : 0;
}
