/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client mode: the back end connects to a front end that listens (QEMU
 * `-chardev socket,server=on`, DPDK virtio-user `server=1`), as Open
 * vSwitch's dpdkvhostuserclient ports do, so that the back end can restart
 * while the VMs keep running.
 *
 * The loop: connect; serve the front end until it hangs up (the device is
 * reset as after any front end); connect again.  While nobody listens at
 * the path (no socket file, connection refused, backlog full) it waits
 * retry_min_ms, doubling up to retry_max_ms.  A session in which the front
 * end sent at least one request resets the back-off; one that ended
 * without any (a front end that accepts and hangs up at once) does not,
 * so such a peer cannot make the loop spin.  vhu_daemon_stop() ends it at
 * any point: while waiting, while connecting or while serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dev.h"

#define RETRY_MIN_MS 100u
#define RETRY_MAX_MS 2000u

/* Non-blocking connect: a unix socket whose listener's backlog is full
 * answers EAGAIN instead of blocking us.  Returns the fd or -errno. */
static int try_connect(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return fd;
	err = -errno;
	close(fd);
	return err;
}

/* Failures worth another attempt: nobody listens (yet), or not now. */
static bool transient(int err)
{
	switch (err) {
	case -ENOENT:
	case -ECONNREFUSED:
	case -EAGAIN:
	case -EINTR:
	case -ETIMEDOUT:
	case -EMFILE:
	case -ENFILE:
	case -ENOBUFS:
	case -ENOMEM:
		return true;
	}
	return false;
}

struct backoff {
	unsigned min_ms, max_ms, limit;
	unsigned delay_ms; /* next wait */
	unsigned failures; /* consecutive failed attempts */
	int last_err;      /* logged once per streak and change of error */
};

static void backoff_init(struct backoff *b, const struct vhu_daemon *d)
{
	b->min_ms = d->retry_min_ms ? d->retry_min_ms : RETRY_MIN_MS;
	b->max_ms = d->retry_max_ms ? d->retry_max_ms : RETRY_MAX_MS;
	if (b->max_ms < b->min_ms)
		b->max_ms = b->min_ms;
	b->limit = d->retry_limit;
	b->delay_ms = b->min_ms;
	b->failures = 0;
	b->last_err = 0;
}

static void backoff_reset(struct backoff *b)
{
	b->delay_ms = b->min_ms;
	b->failures = 0;
	b->last_err = 0;
}

/* Wait the current delay (0: stopped, 1: go on) and double it. */
static int backoff_wait(struct vhu_daemon *d, struct backoff *b)
{
	int r = vhu_daemon_wait_fd(d, d->stop_fd, (int)b->delay_ms);

	b->delay_ms = b->delay_ms > b->max_ms / 2 ? b->max_ms : b->delay_ms * 2;
	return r == 0 ? 0 : 1;
}

/* One attempt failed with err: log it (once per kind of failure), count it.
 * Returns err when the policy says give up, 0 to retry. */
static int attempt_failed(struct vhu_daemon *d, struct backoff *b, const char *path, int err)
{
	if (err != b->last_err)
		VHU_LOGI("%s: no front end at %s (%s); retrying, up to every %u ms", d->name, path,
		         strerror(-err), b->max_ms);
	b->last_err = err;
	b->failures++;
	if (!transient(err)) {
		VHU_LOGE("%s: cannot connect to %s: %s", d->name, path, strerror(-err));
		return err;
	}
	if (b->limit && b->failures >= b->limit) {
		VHU_LOGE("%s: no front end at %s after %u attempts: %s", d->name, path, b->failures,
		         strerror(-err));
		return err;
	}
	return 0;
}

static int connect_loop(struct vhu_daemon *d, const struct sockaddr_un *sa)
{
	struct backoff b;
	int err = 0;

	backoff_init(&b, d);
	while (!vhu_daemon_enough(d)) {
		int fd = try_connect(sa), served;

		if (fd < 0) {
			err = attempt_failed(d, &b, sa->sun_path, fd);
			if (err || !backoff_wait(d, &b))
				break;
			continue;
		}
		VHU_LOGI("%s: connected to %s", d->name, sa->sun_path);
		served = vhu_daemon_serve_conn(d, fd);
		if (served == -ECANCELED)
			break;
		if (served > 0)
			backoff_reset(&b);
		/* Let a front end that is going away finish, and never spin on
		 * one that accepts and hangs up. */
		if (!vhu_daemon_enough(d) && !backoff_wait(d, &b))
			break;
	}
	vhu_daemon_consume_stop(d);
	return err;
}

int vhu_daemon_connect(struct vhu_daemon *d, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int err;

	if (!d || !path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (!vhu_daemon_serve_enter(d))
		return -EBUSY;
	VHU_LOGI("%s: client mode, connecting to %s", d->name, path);
	err = connect_loop(d, &sa);
	vhu_daemon_serve_leave(d);
	return err;
}
