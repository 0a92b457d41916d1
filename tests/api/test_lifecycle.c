/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Front-end lifecycle as a device sees it: input that arrives when the
 * front end has gone reaches the next front end instead of the old one's
 * buffers; the lifecycle hooks (frontend_connected, queue_ready,
 * frontend_gone) come in order, on the documented threads.
 *
 * The test device is a console's receive side: bytes read from a pipe (a
 * listener) are copied into the driver's buffers of queue 0; what finds no
 * buffer waits in the device.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "vhu/frontend.h"
#include "vhu/vhu.h"
#include "vt.h"

VT_MAIN

#define LIS_ID 8 /* listener id (>= num_queues) */

struct cons {
	unsigned nq;
	int in_fd; /* read end of the input pipe */
	/* Input not yet in a guest buffer.  Touched by the worker only. */
	char pending[256];
	size_t npending;
	atomic_uint listener_hits;
	/* get_config blocks while `gate` is set (keeps the handler busy). */
	atomic_bool gate, in_get_config;
	struct vhu_daemon *daemon;
};

/* Copy pending input into the driver's buffers of queue 0. */
static void deliver(struct cons *c, struct vhu_vring *vr)
{
	struct iovec iov[8];
	struct vhu_chain ch = {.iov = iov, .iov_max = 8};
	bool pushed = false;

	while (c->npending && vhu_vring_pop(vr, &ch) == 1) {
		size_t n = vhu_chain_write(&ch, 0, c->pending, c->npending);

		memmove(c->pending, c->pending + n, c->npending - n);
		c->npending -= n;
		vhu_vring_push(vr, &ch, (uint32_t)n);
		pushed = true;
	}
	if (pushed)
		vhu_vring_notify(vr);
}

static unsigned cons_nq(void *dev)
{
	return ((struct cons *)dev)->nq;
}

static unsigned cons_qsize(void *dev)
{
	return 64;
}

static uint64_t cons_features(void *dev)
{
	return VHU_BIT(VHU_F_VERSION_1);
}

static uint64_t cons_pf(void *dev)
{
	return VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIG);
}

static int cons_get_config(void *dev, uint32_t off, void *buf, uint32_t size)
{
	struct cons *c = dev;

	atomic_store(&c->in_get_config, true);
	while (atomic_load(&c->gate))
		usleep(1000);
	memset(buf, 0, size);
	return (int)size;
}

static int cons_handle(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                       unsigned nvrings, unsigned thread)
{
	struct cons *c = dev;

	if (ev == LIS_ID) {
		ssize_t n =
		    read(c->in_fd, c->pending + c->npending, sizeof(c->pending) - c->npending);

		if (n > 0)
			c->npending += (size_t)n;
		atomic_fetch_add(&c->listener_hits, 1);
	}
	deliver(c, vrings[0]);
	return 0;
}

static const struct vhu_backend_ops cons_ops = {
    .num_queues = cons_nq,
    .max_queue_size = cons_qsize,
    .features = cons_features,
    .protocol_features = cons_pf,
    .get_config = cons_get_config,
    .handle_event = cons_handle,
};

/* ---- helpers ------------------------------------------------------------ */

static int fe_open(struct vhuf **f, const char *path)
{
	struct vhuf_opts o = {.mem_size = 1 << 20, .connect_timeout_ms = 5000};
	int err = vhuf_connect(f, path, &o);

	if (!err && (err = vhuf_negotiate(*f, VHU_BIT(VHU_F_VERSION_1), ~0ULL)))
		vhuf_close(*f);
	return err;
}

/* Post n device-writable buffers of 64 bytes on queue q. */
static uint64_t post_bufs(struct vhuf *f, unsigned q, unsigned n)
{
	uint64_t first = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vhuf_alloc(f, 64, 8);
		struct vhuf_buf b = {.gpa = gpa, .len = 64, .write = true};

		first = i ? first : gpa;
		if (vhuf_submit(f, q, &b, 1, false, (void *)(uintptr_t)gpa) < 0)
			return 0;
	}
	return first;
}

/* The next used buffer of queue q (5 s at most): its bytes, or "". */
static const char *recv_text(struct vhuf *f, unsigned q, char *out, size_t max)
{
	void *cookie;
	uint32_t len;

	out[0] = 0;
	if (vhuf_wait_used(f, q, 5000, &cookie, &len) == 1) {
		len = len < max - 1 ? len : (uint32_t)(max - 1);
		memcpy(out, vhuf_ptr(f, (uint64_t)(uintptr_t)cookie), len);
		out[len] = 0;
	}
	return out;
}

/* A GET_CONFIG the test does not wait for: the handler sits in the
 * device's get_config until the gate opens. */
static int send_get_config(struct vhuf *f)
{
	struct vhu_msg_hdr h = {VHU_REQ_GET_CONFIG, VHU_HDR_VERSION, VHU_CONFIG_HDR_SIZE + 4};
	uint32_t cfg[4] = {0, 4, 0, 0}; /* offset, size, flags, 4 bytes of space */
	uint8_t buf[sizeof(h) + sizeof(cfg)];

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), cfg, sizeof(cfg));
	return send(vhuf_sock(f), buf, sizeof(buf), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int cons_start_ops(struct cons *c, const struct vhu_backend_ops *ops, struct vhu_daemon **d,
                          int pipefd[2], const char *path)
{
	memset(c, 0, sizeof(*c));
	c->nq = 1;
	if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	c->in_fd = pipefd[0];
	if (vhu_daemon_new(d, ops, c, NULL) ||
	    vhu_daemon_add_listener(*d, 0, pipefd[0], EPOLLIN, LIS_ID))
		return -1;
	c->daemon = *d;
	return vhu_daemon_start(*d, path);
}

static int cons_start(struct cons *c, struct vhu_daemon **d, int pipefd[2], const char *path)
{
	return cons_start_ops(c, &cons_ops, d, pipefd, path);
}

static void cons_stop(struct vhu_daemon *d, int pipefd[2])
{
	vhu_daemon_stop(d);
	VT_EQ(vhu_daemon_wait(d), 0);
	vhu_daemon_free(d);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* ---- the lost input (issue 15, point 2) ---------------------------------- */

/*
 * Front end A has buffers posted, then closes its socket while the handler
 * is busy (it has not noticed yet); input arrives.  It must not go into A's
 * buffers (nobody will ever read them) but to front end B.
 */
VT_CASE(input_after_hangup_reaches_the_next_front_end)
{
	const char *path = vt_sock_path("lost.sock");
	struct vhu_daemon *d;
	struct vhuf *a, *b;
	struct cons c;
	int pfd[2];
	char got[64];

	VT_REQUIRE(cons_start(&c, &d, pfd, path) == 0);
	VT_REQUIRE(fe_open(&a, path) == 0);
	VT_REQUIRE(vhuf_queue_setup(a, 0, 8) == 0);
	VT_REQUIRE(post_bufs(a, 0, 2) != 0);
	vhuf_kick_force(a, 0);
	atomic_store(&c.gate, true);
	VT_REQUIRE(send_get_config(a) == 0);
	VT_REQUIRE(VT_WAIT_FOR(atomic_load(&c.in_get_config)));
	vhuf_close(a); /* A is gone; the busy handler has not seen it */
	VT_REQUIRE(write(pfd[1], "hello", 5) == 5);
	VT_REQUIRE(VT_WAIT_FOR(atomic_load(&c.listener_hits) >= 1));
	atomic_store(&c.gate, false);

	VT_REQUIRE(fe_open(&b, path) == 0);
	VT_REQUIRE(vhuf_queue_setup(b, 0, 8) == 0);
	VT_REQUIRE(post_bufs(b, 0, 2) != 0);
	vhuf_kick_force(b, 0);
	VT_EQ(strcmp(recv_text(b, 0, got, sizeof(got)), "hello"), 0);
	vhuf_close(b);
	cons_stop(d, pfd);
}

/* ---- queue_ready: pending input without waiting for a kick ------------- */

static void cons_queue_ready(void *dev, unsigned q, unsigned thread)
{
	struct cons *c = dev;

	if (q == 0)
		deliver(c, vhu_daemon_vring(c->daemon, 0));
}

static int set_enable(struct vhuf *f, unsigned q, unsigned on)
{
	struct vhu_vring_state st = {q, on};

	return vhuf_request(f, VHU_REQ_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0, true, NULL);
}

/*
 * Input came while no front end was there.  The driver of the next one
 * posts buffers while the ring is disabled and never kicks (as a guest does
 * when its buffers were posted before the back end started): queue_ready
 * delivers the input when the ring is enabled.
 */
VT_CASE(queue_ready_delivers_pending_input_without_a_kick)
{
	struct vhu_backend_ops ops = cons_ops;
	const char *path = vt_sock_path("ready.sock");
	struct vhu_daemon *d;
	struct vhuf *b;
	struct cons c;
	int pfd[2];
	char got[64];

	ops.queue_ready = cons_queue_ready;
	VT_REQUIRE(cons_start_ops(&c, &ops, &d, pfd, path) == 0);
	VT_REQUIRE(write(pfd[1], "early", 5) == 5);
	VT_REQUIRE(VT_WAIT_FOR(atomic_load(&c.listener_hits) >= 1)); /* no front end yet */
	VT_REQUIRE(fe_open(&b, path) == 0);
	VT_REQUIRE(vhuf_queue_setup(b, 0, 8) == 0);
	VT_REQUIRE(set_enable(b, 0, 0) == 0);
	VT_REQUIRE(post_bufs(b, 0, 1) != 0);
	VT_REQUIRE(set_enable(b, 0, 1) == 0);
	VT_EQ(strcmp(recv_text(b, 0, got, sizeof(got)), "early"), 0);
	vhuf_close(b);
	cons_stop(d, pfd);
}

/* ---- order and threads of the hooks -------------------------------------- */

enum { EV_CONNECTED, EV_READY, EV_GONE, EV_RESET };

struct rec {
	pthread_mutex_t lock;
	struct {
		int kind;
		unsigned arg, thread;
		pid_t tid;
		bool rings_off; /* EV_GONE: the worker's rings pop nothing */
	} log[64];
	unsigned n;
	pid_t worker_tid[2]; /* seen in handle_event */
	struct vhu_daemon *daemon;
};

static void rec_add(struct rec *r, int kind, unsigned arg, unsigned thread, bool off)
{
	pthread_mutex_lock(&r->lock);
	if (r->n < 64)
		r->log[r->n++] = (__typeof__(r->log[0])){kind, arg, thread, gettid(), off};
	pthread_mutex_unlock(&r->lock);
}

static unsigned rec_nq(void *dev)
{
	return 2;
}

static int rec_threads(void *dev, uint64_t *masks, unsigned max)
{
	masks[0] = 1;
	masks[1] = 2;
	return 2;
}

static int rec_handle(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                      unsigned nvrings, unsigned thread)
{
	struct rec *r = dev;
	struct iovec iov[4];
	struct vhu_chain c = {.iov = iov, .iov_max = 4};

	r->worker_tid[thread & 1] = gettid();
	if (ev < nvrings) {
		while (vhu_vring_pop(vrings[ev], &c) == 1)
			vhu_vring_push(vrings[ev], &c, 0);
		vhu_vring_notify(vrings[ev]);
	}
	return 0;
}

static void rec_connected(void *dev)
{
	rec_add(dev, EV_CONNECTED, 0, 0, false);
}

static void rec_ready(void *dev, unsigned q, unsigned thread)
{
	rec_add(dev, EV_READY, q, thread, false);
}

static void rec_gone(void *dev, unsigned thread)
{
	struct rec *r = dev;
	struct vhu_vring *vr = vhu_daemon_vring(r->daemon, thread); /* queue t on thread t */
	struct iovec iov[4];
	struct vhu_chain c = {.iov = iov, .iov_max = 4};

	rec_add(r, EV_GONE, 0, thread, !vhu_vring_enabled(vr) && vhu_vring_pop(vr, &c) == 0);
}

static void rec_reset(void *dev)
{
	rec_add(dev, EV_RESET, 0, 0, false);
}

static const struct vhu_backend_ops rec_ops = {
    .num_queues = rec_nq,
    .fixed = {.max_queue_size = 64,
              .features = VHU_BIT(VHU_F_VERSION_1),
              .protocol_features = VHU_BIT(VHU_PF_REPLY_ACK)},
    .queues_per_thread = rec_threads,
    .handle_event = rec_handle,
    .frontend_connected = rec_connected,
    .queue_ready = rec_ready,
    .frontend_gone = rec_gone,
    .reset_device = rec_reset,
};

/* One request through queue q. */
static bool roundtrip(struct vhuf *f, unsigned q)
{
	void *cookie;
	uint32_t len;

	if (!post_bufs(f, q, 1))
		return false;
	vhuf_kick_force(f, q);
	return vhuf_wait_used(f, q, 5000, &cookie, &len) == 1;
}

static unsigned rec_count(struct rec *r, int kind)
{
	unsigned n = 0;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->n; i++)
		n += r->log[i].kind == kind;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* The log of one front end: connected first, queue_ready for queue t on
 * worker t's thread, frontend_gone once per worker (on it or on the
 * handler thread) with its rings off, all before reset_device. */
static void rec_check(struct rec *r)
{
	pid_t handler = 0;
	unsigned gone[2] = {0, 0}, ready[2] = {0, 0};

	VT_REQUIRE(r->n >= 1 && r->log[0].kind == EV_CONNECTED);
	handler = r->log[0].tid;
	for (unsigned i = 1; i < r->n; i++) {
		__typeof__(r->log[0]) *e = &r->log[i];

		VT_CHECK(e->kind != EV_CONNECTED);
		if (e->kind == EV_READY) {
			VT_CHECK(e->arg < 2 && e->thread == e->arg);
			VT_EQ(e->tid, r->worker_tid[e->thread & 1]);
			VT_EQ(gone[0] + gone[1], 0); /* no queue_ready after gone */
			ready[e->arg & 1]++;
		} else if (e->kind == EV_GONE) {
			VT_CHECK(e->thread < 2);
			VT_CHECK(e->tid == handler || e->tid == r->worker_tid[e->thread & 1]);
			VT_CHECK(e->rings_off);
			gone[e->thread & 1]++;
		} else if (e->kind == EV_RESET) {
			VT_EQ(i, r->n - 1);
			VT_EQ(e->tid, handler);
		}
	}
	VT_EQ(ready[0], 1);
	VT_EQ(ready[1], 1);
	VT_EQ(gone[0], 1);
	VT_EQ(gone[1], 1);
	VT_EQ(r->log[r->n - 1].kind, EV_RESET);
}

enum how_gone { HANGS_UP, DROPPED, STOPPED };

static void lifecycle_round(enum how_gone how)
{
	const char *path = vt_sock_path("order.sock");
	struct rec r = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct vhu_daemon *d;
	struct vhuf *f;

	VT_REQUIRE(vhu_daemon_new(&d, &rec_ops, &r, NULL) == 0);
	r.daemon = d;
	VT_REQUIRE(vhu_daemon_start(d, path) == 0);
	VT_REQUIRE(fe_open(&f, path) == 0);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 8) == 0 && vhuf_queue_setup(f, 1, 8) == 0);
	VT_CHECK(roundtrip(f, 0) && roundtrip(f, 1));
	if (how == HANGS_UP) {
		vhuf_close(f);
	} else if (how == DROPPED) {
		struct vhu_msg_hdr bad = {VHU_REQ_GET_FEATURES, 0x3 /* unknown version */, 0};

		VT_CHECK(send(vhuf_sock(f), &bad, sizeof(bad), MSG_NOSIGNAL) == sizeof(bad));
	}
	if (how != STOPPED)
		VT_CHECK(VT_WAIT_FOR(rec_count(&r, EV_RESET) == 1));
	vhu_daemon_stop(d);
	VT_EQ(vhu_daemon_wait(d), 0);
	VT_EQ(rec_count(&r, EV_RESET), 1);
	rec_check(&r);
	if (how != HANGS_UP)
		vhuf_close(f);
	vhu_daemon_free(d);
}

VT_CASE(hooks_in_order_when_the_front_end_hangs_up)
{
	lifecycle_round(HANGS_UP);
}

VT_CASE(hooks_in_order_when_the_library_drops_the_front_end)
{
	lifecycle_round(DROPPED);
}

VT_CASE(hooks_in_order_when_the_daemon_stops)
{
	lifecycle_round(STOPPED);
}

/* ---- vhuf_wait_used ------------------------------------------------------- */

/* Nothing comes: 0 when the time is up, the buffer still the driver's;
 * then input comes: taken, with its length. */
VT_CASE(frontend_wait_used_times_out_then_takes_the_entry)
{
	const char *path = vt_sock_path("wait.sock");
	struct vhu_daemon *d;
	struct vhuf *f;
	struct cons c;
	int pfd[2];
	void *cookie = NULL;
	uint32_t len = 0;
	uint64_t gpa;

	VT_REQUIRE(cons_start(&c, &d, pfd, path) == 0);
	VT_REQUIRE(fe_open(&f, path) == 0);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 8) == 0);
	VT_REQUIRE((gpa = post_bufs(f, 0, 1)) != 0);
	vhuf_kick_force(f, 0);
	VT_EQ(vhuf_wait_used(f, 0, 50, &cookie, &len), 0);
	VT_EQ(vhuf_wait_used(f, 0, 0, &cookie, &len), 0);
	VT_EQ(vhuf_free_descs(f, 0), 7);
	VT_REQUIRE(write(pfd[1], "late", 4) == 4);
	VT_EQ(vhuf_wait_used(f, 0, -1, &cookie, &len), 1);
	VT_EQ(len, 4);
	VT_CHECK(cookie == (void *)(uintptr_t)gpa);
	VT_EQ(memcmp(vhuf_ptr(f, gpa), "late", 4), 0);
	VT_EQ(vhuf_wait_used(f, 7, 0, &cookie, &len), -EINVAL); /* no such queue */
	vhuf_close(f);
	cons_stop(d, pfd);
}
