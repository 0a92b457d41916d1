/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client mode (vhu_daemon_connect): the test is the front end and listens,
 * as QEMU with `-chardev socket,server=on`; the daemon (the core suite's
 * echo device) connects.  Cases: waiting for a front end that is not there
 * yet, reconnecting after the front end goes, a back-end restart that
 * hands the in-flight requests to the new process, back-off against a
 * front end that accepts and hangs up (and its reset by one that talks),
 * giving up after retry_limit, stop at any point, max_connections, and
 * that nothing leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev.h" /* d->serving: a connect() is running */
#include "echo.h"
#include "vt.h"

VT_MAIN

struct cenv {
	char dir[64];
	char path[128];
	int lfd; /* the front end's listening socket, -1 */
	struct vhu_daemon *d;
	struct echo dev;
};

static const struct vhu_daemon_config fast = {
    .name = "client", .retry_min_ms = 10, .retry_max_ms = 100};

static int cenv_init(struct cenv *c, unsigned nq)
{
	strcpy(c->dir, "/tmp/vhu-client-XXXXXX");
	if (!mkdtemp(c->dir))
		return -errno;
	snprintf(c->path, sizeof(c->path), "%s/sock", c->dir);
	c->lfd = -1;
	c->d = NULL;
	echo_init(&c->dev, nq);
	return 0;
}

/* Daemon connecting to c->path in its own thread. */
static int cenv_start(struct cenv *c, const struct vhu_daemon_config *cfg)
{
	int r = vhu_daemon_new(&c->d, &echo_ops, &c->dev, cfg ? cfg : &fast);

	if (r == 0)
		r = vhu_daemon_start_connect(c->d, c->path);
	return r;
}

static int cenv_listen(struct cenv *c)
{
	c->lfd = vhuf_listen(c->path);
	return c->lfd < 0 ? c->lfd : 0;
}

/* Stop and free the daemon: wait() must say 0 (stopped, not failed). */
static int cenv_stop_daemon(struct cenv *c)
{
	int r;

	if (!c->d)
		return 0;
	vhu_daemon_stop(c->d);
	r = vhu_daemon_wait(c->d);
	vhu_daemon_free(c->d);
	c->d = NULL;
	return r;
}

static void cenv_fini(struct cenv *c)
{
	cenv_stop_daemon(c);
	if (c->lfd >= 0)
		close(c->lfd);
	unlink(c->path);
	rmdir(c->dir);
	echo_destroy(&c->dev);
}

/* Accept the daemon and negotiate; NULL (reported) on failure. */
static struct vhuf *fe_accept(struct cenv *c)
{
	struct vhuf *f;
	int r = vhuf_accept(&f, c->lfd, 5000, NULL);

	if (r < 0) {
		fprintf(stderr, "# accept: %s\n", strerror(-r));
		return NULL;
	}
	r = vhuf_negotiate(f, F_ALL, PF_ALL);
	if (r < 0) {
		fprintf(stderr, "# negotiate: %s\n", strerror(-r));
		vhuf_close(f);
		return NULL;
	}
	return f;
}

/* The daemon connects to a front end that starts listening later. */
VT_CASE(waits_for_the_frontend)
{
	struct cenv c;
	struct vhuf *f;

	VT_REQUIRE(cenv_init(&c, 2) == 0);
	VT_REQUIRE(cenv_start(&c, NULL) == 0);
	usleep(150 * 1000); /* several failed attempts: no socket file yet */
	VT_CHECK(!vhu_daemon_connected(c.d));
	VT_REQUIRE(cenv_listen(&c) == 0);
	f = fe_accept(&c);
	VT_REQUIRE(f);
	VT_CHECK(vhu_daemon_connected(c.d));
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0 && vhuf_queue_setup(f, 1, 64) == 0);
	VT_EQ(fe_io(f, 0, 50), 0);
	VT_EQ(fe_io(f, 1, 50), 0);
	vhuf_close(f);
	VT_EQ(cenv_stop_daemon(&c), 0);
	cenv_fini(&c);
}

/* After the front end goes the device is reset and the daemon connects
 * again, as often as the front end comes back. */
VT_CASE(reconnects_after_the_frontend_goes)
{
	struct cenv c;

	VT_REQUIRE(cenv_init(&c, 1) == 0);
	VT_REQUIRE(cenv_listen(&c) == 0);
	VT_REQUIRE(cenv_start(&c, NULL) == 0);
	for (unsigned i = 0; i < 4; i++) {
		unsigned resets = atomic_load(&c.dev.calls[OP_RESET]);
		struct vhuf *f = fe_accept(&c);

		VT_REQUIRE(f);
		VT_REQUIRE(vhuf_queue_setup(f, 0, 128) == 0);
		VT_EQ(fe_io(f, 0, 100 + i), 0);
		vhuf_close(f);
		VT_CHECK(WAIT_UNTIL(vhu_daemon_connections(c.d) == i + 1, 5000));
		VT_CHECK(atomic_load(&c.dev.calls[OP_RESET]) > resets);
	}
	VT_EQ(cenv_stop_daemon(&c), 0);
	cenv_fini(&c);
}

/* Every one of the n requests comes back exactly once, echoed. */
static void reap_exactly(struct vhuf *f, unsigned q, unsigned n, const uint64_t *in)
{
	unsigned got = 0, seen[64] = {0};
	int64_t deadline = now_ms() + 5000;

	while (got < n && now_ms() < deadline) {
		void *cookie;
		uint32_t len;
		int r = vhuf_get_used(f, q, &cookie, &len);

		if (r <= 0) {
			vhuf_wait_call(f, q, 100);
			continue;
		}
		unsigned i = (unsigned)(uintptr_t)cookie - 1;

		VT_REQUIRE(i < n);
		seen[i]++;
		got++;
		VT_EQ(len, 64);
		VT_EQ(((uint8_t *)vhuf_ptr(f, in[i]))[63], (uint8_t)(i + 1));
	}
	VT_EQ(got, n);
	for (unsigned i = 0; i < n; i++)
		VT_EQ(seen[i], 1);
}

/*
 * A back end restart in client mode: the first process holds 64 requests
 * and goes away; a second one connects, gets the in-flight region the
 * front end kept (INFLIGHT_SHMFD) and completes each request exactly
 * once without a new kick.
 */
VT_CASE(backend_restart_resubmits_inflight)
{
	struct vhu_inflight_msg im = {.num_queues = 1, .queue_size = 128};
	struct vhu_msg *r = calloc(1, sizeof(*r));
	uint64_t out[64], in[64];
	struct cenv c;
	struct vhuf *f;
	int ifd;

	VT_REQUIRE(r);
	VT_REQUIRE(cenv_init(&c, 1) == 0);
	VT_REQUIRE(cenv_listen(&c) == 0);
	VT_REQUIRE(cenv_start(&c, NULL) == 0);
	f = fe_accept(&c);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_request(f, VHU_REQ_GET_INFLIGHT_FD, &im, sizeof(im), NULL, 0, false, r) ==
	           0);
	VT_REQUIRE(r->nfds == 1 && r->hdr.size == sizeof(im));
	ifd = r->fds[0];
	im = r->payload.inflight;
	VT_EQ(vhuf_request(f, VHU_REQ_SET_INFLIGHT_FD, &im, sizeof(im), &ifd, 1, true, NULL), 0);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 128) == 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	atomic_store(&c.dev.hold, true);
	VT_REQUIRE(fe_submit_n(f, 0, 64, 64, false, out, in) == 0);
	vhuf_kick_force(f, 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&c.dev.held) == 64, 5000));

	/* The back end process goes; a new one (new device state) starts. */
	VT_EQ(cenv_stop_daemon(&c), 0);
	echo_destroy(&c.dev);
	echo_init(&c.dev, 1);
	VT_REQUIRE(cenv_start(&c, NULL) == 0);
	VT_REQUIRE(vhuf_reaccept(f, c.lfd, 5000) == 0);
	VT_REQUIRE(vhuf_negotiate(f, F_ALL, PF_ALL) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_SET_INFLIGHT_FD, &im, sizeof(im), &ifd, 1, true, NULL), 0);
	VT_REQUIRE(vhuf_queue_restart(f, 0) == 0);
	VT_CHECK(vhuf_wait_call(f, 0, 5000) == 1); /* resubmitted without a kick */
	reap_exactly(f, 0, 64, in);
	VT_EQ(fe_io(f, 0, 100), 0);
	vhuf_close(f);
	close(ifd);
	free(r);
	VT_EQ(cenv_stop_daemon(&c), 0);
	cenv_fini(&c);
}

/* A front end that accepts and hangs up without a word: the daemon backs
 * off (the waits double) instead of reconnecting at once; one that talks
 * resets the back-off. */
VT_CASE(backoff_against_a_silent_frontend)
{
	struct vhu_daemon_config cfg = {
	    .name = "client", .retry_min_ms = 10, .retry_max_ms = 60000};
	int64_t t[9];
	struct cenv c;
	struct vhuf *f;

	VT_REQUIRE(cenv_init(&c, 1) == 0);
	VT_REQUIRE(cenv_listen(&c) == 0);
	VT_REQUIRE(cenv_start(&c, &cfg) == 0);
	for (unsigned i = 0; i < 9; i++) {
		VT_REQUIRE(wait_fd(c.lfd, 10000) == 1);
		int fd = accept(c.lfd, NULL, NULL);

		t[i] = now_ms();
		VT_REQUIRE(fd >= 0);
		close(fd);
	}
	/* Waits 10, 20, ... 1280 ms: each at least what the policy says
	 * (a loaded machine only makes them longer). */
	for (unsigned i = 1; i < 9; i++)
		VT_CHECK(t[i] - t[i - 1] >= (10 << (i - 1)) - 2);
	/* The next wait would be 2.56 s; a front end that talks resets it. */
	f = fe_accept(&c);
	VT_REQUIRE(f);
	vhuf_close(f);
	VT_CHECK(wait_fd(c.lfd, 2000) == 1);
	f = fe_accept(&c);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(fe_io(f, 0, 20), 0);
	vhuf_close(f);
	VT_EQ(cenv_stop_daemon(&c), 0);
	cenv_fini(&c);
}

/* Garbage instead of requests: dropped, device reset, connected again. */
VT_CASE(garbage_is_dropped_and_reconnected)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: vhost-user\r\n\r\n";
	struct cenv c;
	struct vhuf *f;

	VT_REQUIRE(cenv_init(&c, 1) == 0);
	VT_REQUIRE(cenv_listen(&c) == 0);
	VT_REQUIRE(cenv_start(&c, NULL) == 0);
	f = fe_accept(&c);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(write(vhuf_sock(f), junk, sizeof(junk)), (ssize_t)sizeof(junk));
	VT_REQUIRE(vhuf_reaccept(f, c.lfd, 5000) == 0);
	VT_REQUIRE(vhuf_negotiate(f, F_ALL, PF_ALL) == 0);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(fe_io(f, 0, 50), 0);
	vhuf_close(f);
	VT_EQ(cenv_stop_daemon(&c), 0);
	cenv_fini(&c);
}

static void *connect_thread(void *arg)
{
	struct cenv *c = arg;

	return (void *)(intptr_t)vhu_daemon_connect(c->d, c->path);
}

/* retry_limit: connect() gives up with the last error. */
VT_CASE(gives_up_after_retry_limit)
{
	struct vhu_daemon_config cfg = {.retry_min_ms = 1, .retry_max_ms = 4, .retry_limit = 3};
	char longp[200];
	struct cenv c;
	int fd;

	VT_REQUIRE(cenv_init(&c, 1) == 0);
	VT_REQUIRE(vhu_daemon_new(&c.d, &echo_ops, &c.dev, &cfg) == 0);
	VT_EQ(vhu_daemon_connect(c.d, c.path), -ENOENT);
	/* A file that is not a listening socket: refused. */
	fd = open(c.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	VT_REQUIRE(fd >= 0);
	close(fd);
	VT_EQ(vhu_daemon_connect(c.d, c.path), -ECONNREFUSED);
	unlink(c.path);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	VT_EQ(vhu_daemon_connect(c.d, longp), -ENAMETOOLONG);
	VT_EQ(vhu_daemon_connect(c.d, ""), -EINVAL);
	VT_EQ(vhu_daemon_connect(NULL, c.path), -EINVAL);
	VT_EQ(vhu_daemon_connections(c.d), 0);
	cenv_fini(&c);
}

/* vhu_daemon_stop() ends connect() while it waits between attempts and
 * while it serves; a second serve/connect meanwhile is refused. */
VT_CASE(stop_while_waiting_or_serving)
{
	struct vhu_daemon_config slow = {.retry_min_ms = 60000};
	struct cenv c;
	struct vhuf *f;
	pthread_t th;
	void *ret;

	VT_REQUIRE(cenv_init(&c, 1) == 0);
	VT_REQUIRE(vhu_daemon_new(&c.d, &echo_ops, &c.dev, &slow) == 0);
	VT_REQUIRE(pthread_create(&th, NULL, connect_thread, &c) == 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&c.d->serving), 5000));
	usleep(50 * 1000); /* first attempt failed, now in a 60 s wait */
	VT_EQ(vhu_daemon_connect(c.d, c.path), -EBUSY);
	VT_EQ(vhu_daemon_serve(c.d, c.path), -EBUSY);
	vhu_daemon_stop(c.d);
	pthread_join(th, &ret);
	VT_EQ((intptr_t)ret, 0);

	/* Again, now stopped while a front end is served. */
	VT_REQUIRE(cenv_listen(&c) == 0);
	VT_REQUIRE(pthread_create(&th, NULL, connect_thread, &c) == 0);
	f = fe_accept(&c);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	unsigned resets = atomic_load(&c.dev.calls[OP_RESET]);
	vhu_daemon_stop(c.d);
	pthread_join(th, &ret);
	VT_EQ((intptr_t)ret, 0);
	VT_CHECK(atomic_load(&c.dev.calls[OP_RESET]) > resets);
	VT_CHECK(!vhu_daemon_connected(c.d));
	vhuf_close(f);
	cenv_fini(&c);
}

/* max_connections front ends served, then connect() returns 0 without
 * connecting again. */
VT_CASE(max_connections_then_return)
{
	struct vhu_daemon_config cfg = {.retry_min_ms = 10, .max_connections = 2};
	struct cenv c;
	pthread_t th;
	void *ret;

	VT_REQUIRE(cenv_init(&c, 1) == 0);
	VT_REQUIRE(cenv_listen(&c) == 0);
	VT_REQUIRE(vhu_daemon_new(&c.d, &echo_ops, &c.dev, &cfg) == 0);
	VT_REQUIRE(pthread_create(&th, NULL, connect_thread, &c) == 0);
	for (unsigned i = 0; i < 2; i++) {
		struct vhuf *f = fe_accept(&c);

		VT_REQUIRE(f);
		VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
		VT_EQ(fe_io(f, 0, 10), 0);
		vhuf_close(f);
	}
	pthread_join(th, &ret);
	VT_EQ((intptr_t)ret, 0);
	VT_EQ(vhu_daemon_connections(c.d), 2);
	VT_EQ(wait_fd(c.lfd, 200), 0); /* no third connection */
	cenv_fini(&c);
}

/* Sessions, restarts and refusals leave no fd or mapping behind. */
VT_CASE(nothing_leaks)
{
	int fds0 = vt_count_fds(), maps0 = vt_count_maps_named(0, "memfd:");
	struct cenv c;

	VT_REQUIRE(cenv_init(&c, 2) == 0);
	VT_REQUIRE(cenv_listen(&c) == 0);
	VT_REQUIRE(cenv_start(&c, NULL) == 0);
	for (unsigned i = 0; i < 3; i++) {
		struct vhuf *f = fe_accept(&c);

		VT_REQUIRE(f);
		VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0 && vhuf_queue_setup(f, 1, 64) == 0);
		VT_EQ(fe_io(f, i & 1, 30), 0);
		vhuf_close(f);
	}
	VT_CHECK(WAIT_UNTIL(vhu_daemon_connections(c.d) == 3, 5000));
	cenv_fini(&c);
	VT_CHECK(WAIT_UNTIL(vt_count_fds() == fds0, 3000));
	VT_EQ(vt_count_fds(), fds0);
	VT_EQ(vt_count_maps_named(0, "memfd:"), maps0);
}
