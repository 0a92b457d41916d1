/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection-level abuse: truncated headers and payloads (with and without
 * fds), impossible sizes and versions, too many fds, floods of requests
 * and of fds, front ends that never read their replies, connect/close
 * storms, a disconnect after every single message of a real session's
 * set-up (through a cutting proxy), and disconnects in the middle of I/O
 * and of memory-table changes.  After each case the daemon serves a fresh
 * front end doing real I/O and fds / memfd mappings are at the baseline.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hostile.h"
#include "vt.h"

VT_MAIN

#define NQ 2

/* A bare connection to the daemon (nothing sent). */
static int raw_connect(struct henv *h)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, h->t.path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	h->t.conns++;
	return fd;
}

/* The daemon hung up on us (EOF within 3 s). */
static bool hung_up(int fd)
{
	char c[64];

	if (!wait_fd(fd, 3000))
		return false;
	return read(fd, c, sizeof(c)) <= 0;
}

typedef void (*body_fn)(struct henv *h);

static void run(body_fn body)
{
	struct henv h;

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	body(&h);
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}

/* ---- framing -------------------------------------------------------------- */

static void b_truncated_header(struct henv *h)
{
	struct vhu_msg_hdr hd = {VHU_REQ_GET_FEATURES, VHU_HDR_VERSION, 0};

	for (size_t n = 1; n < sizeof(hd); n++) {
		int fd = raw_connect(h), ev = h_eventfd();

		VT_REQUIRE(fd >= 0 && ev >= 0);
		/* Half the time with an fd riding on the partial header. */
		VT_EQ(h_send_raw(fd, &hd, n, &ev, n & 1), 0);
		close(ev);
		close(fd);
	}
	VT_CHECK(h_at_baseline(h));
}
VT_CASE(truncated_header)
{
	run(b_truncated_header);
}

static void b_truncated_payload(struct henv *h)
{
	struct {
		struct vhu_msg_hdr hd;
		uint8_t p[40];
	} __attribute__((packed)) m = {{VHU_REQ_SET_VRING_ADDR, VHU_HDR_VERSION, 40}, {0}};

	for (size_t n = 0; n < 40; n += 3) {
		int fd = raw_connect(h), fds[3] = {h_eventfd(), h_memfd(4096), h_eventfd()};

		VT_REQUIRE(fd >= 0);
		VT_EQ(h_send_raw(fd, &m, sizeof(m.hd) + n, fds, 3), 0);
		for (int i = 0; i < 3; i++)
			close(fds[i]);
		close(fd);
	}
	VT_CHECK(h_at_baseline(h));
}
VT_CASE(truncated_payload_with_fds)
{
	run(b_truncated_payload);
}

static void b_bad_frames(struct henv *h)
{
	struct vhu_msg_hdr bad[] = {
	    {VHU_REQ_GET_FEATURES, VHU_HDR_VERSION, VHU_MAX_PAYLOAD + 1},
	    {VHU_REQ_GET_FEATURES, VHU_HDR_VERSION, UINT32_MAX},
	    {VHU_REQ_GET_FEATURES, 0, 0},
	    {VHU_REQ_GET_FEATURES, 2, 0},
	    {VHU_REQ_GET_FEATURES, 3 | VHU_HDR_NEED_REPLY, 0},
	    {UINT32_MAX, UINT32_MAX, UINT32_MAX},
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = raw_connect(h), ev = h_eventfd();

		VT_REQUIRE(fd >= 0 && ev >= 0);
		VT_EQ(h_send_raw(fd, &bad[i], sizeof(bad[i]), &ev, 1), 0);
		close(ev);
		VT_CHECK(hung_up(fd));
		close(fd);
	}
	VT_CHECK(h_at_baseline(h));
}
VT_CASE(impossible_size_and_version)
{
	run(b_bad_frames);
}

static void b_too_many_fds(struct henv *h)
{
	struct vhu_msg_hdr hd = {VHU_REQ_SET_LOG_FD, VHU_HDR_VERSION, 0};
	unsigned counts[] = {VHU_MAX_FDS + 1, 16};

	for (unsigned c = 0; c < 2; c++) {
		int fd = raw_connect(h), fds[16];

		VT_REQUIRE(fd >= 0);
		for (unsigned i = 0; i < counts[c]; i++)
			fds[i] = h_memfd(4096);
		VT_EQ(h_send_raw(fd, &hd, sizeof(hd), fds, counts[c]), 0);
		for (unsigned i = 0; i < counts[c]; i++)
			close(fds[i]);
		VT_CHECK(hung_up(fd));
		close(fd);
	}
	VT_CHECK(h_at_baseline(h));
}
VT_CASE(too_many_fds)
{
	run(b_too_many_fds);
}

/* fds sent with the payload bytes rather than the header, in pieces. */
static void b_fds_in_pieces(struct henv *h)
{
	struct vhuf *f = h_open(h);
	struct {
		struct vhu_msg_hdr hd;
		uint64_t v;
	} __attribute__((packed)) m = {{VHU_REQ_SET_VRING_CALL, VHU_HDR_VERSION, 8}, 0};
	int ev = h_eventfd();
	uint64_t v;

	VT_REQUIRE(f && ev >= 0);
	VT_EQ(h_send_raw(vhuf_sock(f), &m, sizeof(m.hd), NULL, 0), 0);
	usleep(10000);
	VT_EQ(h_send_raw(vhuf_sock(f), &m.v, 4, &ev, 1), 0);
	usleep(10000);
	VT_EQ(h_send_raw(vhuf_sock(f), (uint8_t *)&m.v + 4, 4, &ev, 1), 0);
	close(ev);
	/* Two fds for a one-fd request: refused, both closed, still talking. */
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0);
	h_close(h, f);
	VT_CHECK(h_at_baseline(h));
}
VT_CASE(fds_in_pieces)
{
	run(b_fds_in_pieces);
}

/* ---- floods ----------------------------------------------------------------- */

static void b_request_flood(struct henv *h)
{
	struct vhuf *f = h_open(h);
	struct vhu_msg_hdr hd = {VHU_REQ_SET_OWNER, VHU_HDR_VERSION, 0};
	uint64_t v;

	VT_REQUIRE(f);
	for (int i = 0; i < 20000; i++)
		if (h_send_raw(vhuf_sock(f), &hd, sizeof(hd), NULL, 0))
			break;
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0);
	VT_EQ(vhuf_queue_setup(f, 0, 64), 0);
	VT_EQ(fe_io(f, 0, 20), 0);
	h_close(h, f);
}
VT_CASE(request_flood)
{
	run(b_request_flood);
}

static void b_fd_flood(struct henv *h)
{
	struct vhuf *f = h_open(h);
	struct vhu_msg_hdr hd = {VHU_REQ_SET_LOG_FD, VHU_HDR_VERSION, 0};
	uint64_t v;

	VT_REQUIRE(f);
	for (int i = 0; i < 2000; i++) {
		int fds[VHU_MAX_FDS];

		for (unsigned k = 0; k < VHU_MAX_FDS; k++)
			fds[k] = h_eventfd();
		VT_EQ(h_send_raw(vhuf_sock(f), &hd, sizeof(hd), fds, VHU_MAX_FDS), 0);
		for (unsigned k = 0; k < VHU_MAX_FDS; k++)
			close(fds[k]);
	}
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0);
	h_close(h, f);
	VT_CHECK(h_at_baseline(h));
}
VT_CASE(fd_flood)
{
	run(b_fd_flood);
}

/* Thousands of requests with replies, never read: the daemon's replies
 * back up; the front end then goes away and the daemon must notice. */
static void b_unread_replies(struct henv *h)
{
	int fd = raw_connect(h);
	struct vhu_msg_hdr hd = {VHU_REQ_GET_FEATURES, VHU_HDR_VERSION, 0};
	int64_t end = now_ms() + 3000;

	VT_REQUIRE(fd >= 0);
	/* Until our send buffer is full too (the daemon stopped reading). */
	for (int i = 0; i < 200000 && now_ms() < end; i++) {
		struct pollfd p = {fd, POLLOUT, 0};

		if (poll(&p, 1, 200) <= 0)
			break;
		if (send(fd, &hd, sizeof(hd), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			break;
	}
	close(fd);
}
VT_CASE(replies_never_read)
{
	run(b_unread_replies);
}

static void b_connect_storm(struct henv *h)
{
	for (int i = 0; i < 200; i++) {
		int fd = raw_connect(h);

		VT_REQUIRE(fd >= 0);
		if (i & 1) {
			struct vhu_msg_hdr hd = {VHU_REQ_GET_FEATURES, VHU_HDR_VERSION, 0};

			VT_EQ(h_send_raw(fd, &hd, sizeof(hd), NULL, 0), 0);
		}
		close(fd);
	}
	VT_CHECK(h_at_baseline(h));
}
VT_CASE(connect_close_storm)
{
	run(b_connect_storm);
}

/* The daemon is asked to stop while it is blocked sending replies to a
 * front end that does not read them: serve() must still return (bounded:
 * if it does not within 15 s the front end is closed to unblock it and the
 * case fails). */
struct waiter {
	struct vhu_daemon *d;
	atomic_bool done;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	vhu_daemon_wait(w->d);
	atomic_store(&w->done, true);
	return NULL;
}

VT_CASE(stop_while_replies_back_up)
{
	struct vhu_msg_hdr hd = {VHU_REQ_GET_FEATURES, VHU_HDR_VERSION, 0};
	struct waiter w;
	struct henv h;
	pthread_t th;
	int64_t end;
	int fd;

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	fd = raw_connect(&h);
	VT_REQUIRE(fd >= 0);
	end = now_ms() + 3000;
	for (int i = 0; i < 200000 && now_ms() < end; i++) {
		struct pollfd p = {fd, POLLOUT, 0};

		if (poll(&p, 1, 200) <= 0)
			break;
		if (send(fd, &hd, sizeof(hd), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			break;
	}
	w.d = h.t.d;
	atomic_init(&w.done, false);
	vhu_daemon_stop(h.t.d);
	VT_REQUIRE(pthread_create(&th, NULL, wait_main, &w) == 0);
	if (!WAIT_UNTIL(atomic_load(&w.done), 15000)) {
		fprintf(stderr, "# serve() did not return within 15 s of vhu_daemon_stop()\n");
		VT_CHECK(0);
	}
	close(fd); /* unblocks a daemon stuck in sendmsg */
	pthread_join(th, NULL);
	VT_CHECK(vhu_daemon_start(h.t.d, h.t.path) == 0);
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}

/* ---- cutting proxy: disconnect after each message of a real session ------ */

struct proxy {
	int lfd;
	char path[160];
	const char *target;
	int limit; /* front -> back messages forwarded before the cut; -1: all */
	int seen;
	pthread_t th;
};

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	static struct vhu_msg m;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int front = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC), back;

	if (front < 0)
		return NULL;
	back = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, p->target);
	if (connect(back, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	for (;;) {
		struct pollfd pf[2] = {{front, POLLIN, 0}, {back, POLLIN, 0}};

		if (poll(pf, 2, 5000) <= 0)
			break;
		if (pf[0].revents) {
			if (p->limit >= 0 && p->seen >= p->limit)
				break; /* the cut */
			if (vhu_msg_recv(front, &m))
				break;
			p->seen++;
			vhu_msg_send(back, &m);
			vhu_msg_close_fds(&m);
		}
		if (pf[1].revents) {
			if (vhu_msg_recv(back, &m))
				break;
			vhu_msg_send(front, &m);
			vhu_msg_close_fds(&m);
		}
	}
out:
	close(back);
	close(front);
	return NULL;
}

static int proxy_start(struct proxy *p, struct henv *h, int limit)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(p->path, sizeof(p->path), "%s/px", h->t.dir);
	unlink(p->path);
	p->target = h->t.path;
	p->limit = limit;
	p->seen = 0;
	p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, p->path);
	if (bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(p->lfd, 1))
		return -1;
	return pthread_create(&p->th, NULL, proxy_main, p) ? -1 : 0;
}

static void proxy_stop(struct proxy *p)
{
	shutdown(p->lfd, SHUT_RDWR);
	pthread_join(p->th, NULL);
	close(p->lfd);
	unlink(p->path);
}

/* QEMU-like session: negotiate, inflight, two queues, log, I/O, stop. */
static void session(const char *path)
{
	struct vhuf_opts o = {.connect_timeout_ms = 2000};
	struct vhu_inflight_msg in = {.num_queues = NQ, .queue_size = 64};
	struct vhu_msg *r = calloc(1, sizeof(*r));
	struct vhuf *f;
	uint32_t base;
	int lfd;

	if (!r || vhuf_connect(&f, path, &o)) {
		free(r);
		return;
	}
	if (vhuf_negotiate(f, F_ALL, PF_ALL))
		goto out;
	if (vhuf_request(f, VHU_REQ_GET_INFLIGHT_FD, &in, sizeof(in), NULL, 0, false, r) ||
	    r->nfds != 1)
		goto out;
	if (vhuf_request(f, VHU_REQ_SET_INFLIGHT_FD, &r->payload.inflight, sizeof(in), r->fds, 1,
	                 true, NULL))
		goto out;
	if (vhuf_queue_setup(f, 0, 64) || vhuf_queue_setup(f, 1, 64))
		goto out;
	lfd = h_memfd(4096);
	{
		struct vhu_log_msg lm = {4096, 0};
		int err =
		    vhuf_request(f, VHU_REQ_SET_LOG_BASE, &lm, sizeof(lm), &lfd, 1, true, NULL);

		close(lfd);
		if (err == -ECONNRESET || err == -EPIPE || err == -ETIMEDOUT)
			goto out; /* cut here */
	}
	if (fe_io(f, 0, 8) || fe_io(f, 1, 8))
		goto out;
	vhuf_queue_stop(f, 0, &base);
	vhuf_queue_stop(f, 1, &base);
out:
	vhu_msg_close_fds(r);
	free(r);
	vhuf_close(f);
}

VT_CASE(disconnect_after_every_setup_message)
{
	struct henv h;
	struct proxy p;
	int total;

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	/* Count the session's messages once, uncut. */
	VT_REQUIRE(proxy_start(&p, &h, -1) == 0);
	session(p.path);
	proxy_stop(&p);
	h.t.conns++;
	total = p.seen;
	fprintf(stderr, "# session: %d messages\n", total);
	VT_CHECK(total > 20);
	VT_CHECK(h_at_baseline(&h));
	for (int k = 0; k <= total; k++) {
		VT_REQUIRE(proxy_start(&p, &h, k) == 0);
		session(p.path);
		proxy_stop(&p);
		h.t.conns++;
		if (!h_at_baseline(&h)) {
			fprintf(stderr, "# cut after message %d leaked\n", k);
			VT_CHECK(0);
			break;
		}
	}
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}

/* ---- mid-I/O -------------------------------------------------------------- */

static void b_mid_io(struct henv *h)
{
	for (int it = 0; it < 20; it++) {
		struct vhuf *f = h_open(h);

		VT_REQUIRE(f);
		VT_EQ(vhuf_queue_setup(f, 0, 128), 0);
		VT_EQ(vhuf_queue_setup(f, 1, 128), 0);
		for (unsigned q = 0; q < 2; q++) {
			for (int i = 0; i < 100; i++) {
				struct vhuf_buf b[2] = {{vhuf_alloc(f, 512, 8), 512, false},
				                        {vhuf_alloc(f, 512, 8), 512, true}};

				if (vhuf_submit(f, q, b, 2, i & 1, NULL) < 0)
					break;
			}
			vhuf_kick_force(f, q);
		}
		if (it & 1) { /* and change the memory table while it runs */
			struct vhu_mem_single_msg m = {0};
			int fd;

			vhuf_region(f, 0, &m.region, &fd);
			vhuf_request(
			    f, VHU_REQ_ADD_MEM_REGION,
			    &(struct vhu_mem_single_msg){0, {1ull << 40, 4096, 1ull << 45, 0}},
			    sizeof(m), &fd, 1, false, NULL);
		}
		usleep((useconds_t)(it * 150));
		h_close(h, f);
	}
	VT_CHECK(h_at_baseline(h));
}
VT_CASE(disconnect_mid_io_and_mid_update)
{
	run(b_mid_io);
}

/* ---- back-end -> front-end channel ------------------------------------------- */

struct chan_call {
	struct vhu_channel *ch;
	int ret;
	atomic_bool done;
};

static void *chan_main(void *arg)
{
	struct chan_call *c = arg;

	c->ret = vhu_channel_config_changed(c->ch);
	atomic_store(&c->done, true);
	return NULL;
}

/* The front end answers a REPLY_ACK channel request with a partial reply
 * and stalls: the device's call must come back (bounded: after 15 s the
 * front end's end is closed to release it and the case fails). */
VT_CASE(channel_partial_reply)
{
	struct henv h;
	struct vhuf *f;
	struct chan_call c = {0};
	struct vhu_msg_hdr part = {VHU_BREQ_CONFIG_CHANGE_MSG, VHU_HDR_VERSION | VHU_HDR_REPLY, 8};
	pthread_t th;
	int sv[2];
	char buf[64];

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	f = h_open(&h);
	VT_REQUIRE(f);
	VT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1, true, NULL), 0);
	close(sv[1]);
	c.ch = atomic_load(&h.t.dev.ch);
	VT_REQUIRE(c.ch);
	atomic_init(&c.done, false);
	VT_REQUIRE(pthread_create(&th, NULL, chan_main, &c) == 0);
	VT_CHECK(wait_fd(sv[0], 3000));
	VT_CHECK(read(sv[0], buf, sizeof(buf)) > 0);
	VT_EQ(write(sv[0], &part, 6), 6); /* half a header, then silence */
	if (!WAIT_UNTIL(atomic_load(&c.done), 15000)) {
		fprintf(stderr, "# channel request still blocked 15 s after a partial reply\n");
		VT_CHECK(0);
	}
	close(sv[0]);
	pthread_join(th, NULL);
	VT_CHECK(c.ret < 0);
	h_close(&h, f);
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}
