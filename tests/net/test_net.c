/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-net's device driven by the front-end library.  The device runs in
 * this process (its daemon serves a temporary unix socket from its own
 * thread) so that its counters can be checked; the front end talks to it
 * over the real socket with memfd guest memory, eventfds and split rings,
 * as a guest driver would.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "vhu/frontend.h"
#include "vt.h"

VT_MAIN

#define QSIZE    256
#define WAIT_MS  10000 /* bound on any wait; never a timing assertion */
#define QUIET_MS 300   /* "nothing arrives": only ever passes falsely, never fails */

#define FB(b) VHU_BIT(b)
static const uint64_t base_features = FB(VHU_F_VERSION_1) | FB(VHU_F_RING_INDIRECT_DESC) |
                                      FB(VHU_F_RING_EVENT_IDX) | FB(VIRTIO_NET_F_MAC) |
                                      FB(VIRTIO_NET_F_MTU) | FB(VIRTIO_NET_F_STATUS);
static const uint64_t all_pf = VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIG) |
                               VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_RESET_DEVICE);
static const uint8_t dev_mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0x01};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t other_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99};

/* ---- set-up ---------------------------------------------------------- */

struct side {
	struct net_dev *dev;
	struct vhuf *f;
	char path[108];
};

static int start_dev(struct side *s, enum net_mode mode, unsigned pairs, unsigned idx)
{
	static unsigned counter;
	struct net_dev_opts o = {.name = idx ? "test-net1" : "test-net0",
	                         .mode = mode,
	                         .pairs = pairs,
	                         .mtu = 1500,
	                         .ncpus = 2};
	memcpy(o.mac, dev_mac, 6);
	o.mac[5] = (uint8_t)(o.mac[5] + idx);
	snprintf(s->path, sizeof(s->path), "/tmp/vhu-net-test-%d-%u.sock", (int)getpid(),
	         counter++);
	int r = net_dev_new(&s->dev, &o);
	if (r == 0)
		r = net_dev_attach(s->dev, &o);
	if (r == 0 && mode == NET_MODE_LOOPBACK)
		s->dev->peer = s->dev;
	return r;
}

static int serve_and_connect(struct side *s)
{
	struct vhuf_opts fo = {.mem_size = 16u << 20, .connect_timeout_ms = WAIT_MS};
	int r = vhu_daemon_start(s->dev->daemon, s->path);
	return r < 0 ? r : vhuf_connect(&s->f, s->path, &fo);
}

/* Disconnect the front end and stop serving (the device stays). */
static void halt_dev(struct side *s)
{
	if (s->f)
		vhuf_close(s->f);
	s->f = NULL;
	if (s->dev && s->dev->daemon) {
		vhu_daemon_stop(s->dev->daemon);
		vhu_daemon_wait(s->dev->daemon);
	}
}

static void stop_dev(struct side *s)
{
	halt_dev(s);
	net_dev_free(s->dev);
	s->dev = NULL;
	unlink(s->path);
}

/* Peer devices reach into each other: both stop before either is freed. */
static void stop_pair(struct side *a, struct side *b)
{
	halt_dev(a);
	halt_dev(b);
	vhu_daemon_free(a->dev->daemon); /* workers gone: nothing reaches across */
	a->dev->daemon = NULL;
	vhu_daemon_free(b->dev->daemon);
	b->dev->daemon = NULL;
	stop_dev(a);
	stop_dev(b);
}

/* Negotiate and set up queues 0..nq-1. */
static int setup_queues(struct vhuf *f, uint64_t features, unsigned nq)
{
	int r = vhuf_negotiate(f, features, all_pf);
	for (unsigned q = 0; r == 0 && q < nq; q++)
		r = vhuf_queue_setup(f, q, QSIZE);
	return r;
}

/* Loopback device with one pair, queues rx0/tx1 (+ ctrl 2 when asked). */
static int loop_setup(struct side *s, uint64_t features, unsigned pairs, unsigned nq)
{
	int r = start_dev(s, NET_MODE_LOOPBACK, pairs, 0);
	if (r == 0)
		r = serve_and_connect(s);
	if (r == 0)
		r = setup_queues(s->f, features, nq);
	return r;
}

/* ---- guest-driver helpers -------------------------------------------- */

static unsigned hdr_len_of(uint64_t features)
{
	return (features & (FB(VHU_F_VERSION_1) | FB(VIRTIO_NET_F_MRG_RXBUF))) ? 12 : 10;
}

/* Post n device-writable buffers of `size` bytes on rx queue q; the
 * cookie is the buffer's guest address. */
static int post_rx(struct vhuf *f, unsigned q, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vhuf_alloc(f, size, 64);
		struct vhuf_buf b = {.gpa = gpa, .len = size, .write = true};
		if (gpa == UINT64_MAX ||
		    vhuf_submit(f, q, &b, 1, false, (void *)(uintptr_t)gpa) < 0)
			return -ENOMEM;
	}
	int r = vhuf_kick_force(f, q);
	return r < 0 ? r : 0;
}

/* A test frame: dst, src = dev_mac, ethertype 0x88b5, then a pattern. */
static void make_frame(uint8_t *p, size_t len, const uint8_t dst[6], uint8_t seed)
{
	memcpy(p, dst, 6);
	memcpy(p + 6, dev_mac, 6);
	p[12] = 0x88;
	p[13] = 0xb5;
	for (size_t i = 14; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Put header + frame in guest memory and submit it on tx queue q, as one
 * descriptor or split header/payload (or indirect). */
static int send_raw(struct vhuf *f, unsigned q, const void *hdr, unsigned hlen,
                    const uint8_t *frame, size_t len, bool split, bool indirect)
{
	uint64_t gpa = vhuf_alloc(f, hlen + len, 64);
	if (gpa == UINT64_MAX)
		return -ENOMEM;
	uint8_t *p = vhuf_ptr(f, gpa);
	memcpy(p, hdr, hlen);
	memcpy(p + hlen, frame, len);
	struct vhuf_buf b[2] = {{.gpa = gpa, .len = (uint32_t)(hlen + len)}};
	unsigned n = 1;
	if (split) {
		b[0].len = hlen;
		b[1].gpa = gpa + hlen;
		b[1].len = (uint32_t)len;
		n = 2;
	}
	int r = vhuf_submit(f, q, b, n, indirect, (void *)(uintptr_t)gpa);
	if (r >= 0)
		r = vhuf_kick_force(f, q);
	return r < 0 ? r : 0;
}

static int send_frame(struct vhuf *f, unsigned q, uint64_t features, const uint8_t *frame,
                      size_t len)
{
	uint8_t hdr[12] = {0};
	return send_raw(f, q, hdr, hdr_len_of(features), frame, len, true, false);
}

/* Next used entry of queue q: 1 with cookie/len, 0 if none within ms. */
static int wait_used(struct vhuf *f, unsigned q, uint64_t *gpa, uint32_t *len, int ms)
{
	void *cookie;
	for (;;) {
		int r = vhuf_get_used(f, q, &cookie, len);
		if (r != 0) {
			if (r == 1 && gpa)
				*gpa = (uint64_t)(uintptr_t)cookie;
			return r;
		}
		if (vhuf_wait_call(f, q, ms) <= 0)
			return vhuf_get_used(f, q, &cookie, len) == 1
			           ? (gpa ? (*gpa = (uint64_t)(uintptr_t)cookie, 1) : 1)
			           : 0;
	}
}

static uint16_t num_buffers(struct vhuf *f, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, (uint8_t *)vhuf_ptr(f, gpa) + 10, 2);
	return v;
}

/* ---- cases ----------------------------------------------------------- */

VT_CASE(config_space)
{
	struct side s = {0};
	struct virtio_net_config c;
	VT_REQUIRE(start_dev(&s, NET_MODE_LOOPBACK, 2, 0) == 0);
	VT_REQUIRE(serve_and_connect(&s) == 0);
	VT_REQUIRE(vhuf_negotiate(s.f, base_features, all_pf) == 0);
	VT_REQUIRE(vhuf_get_config(s.f, 0, &c, 12) == 0);
	VT_CHECK(!memcmp(c.mac, dev_mac, 6));
	VT_EQ(c.status, VIRTIO_NET_S_LINK_UP);
	VT_EQ(c.max_virtqueue_pairs, 2);
	VT_EQ(c.mtu, 1500);
	/* Past the end of the config space: refused. */
	VT_CHECK(vhuf_get_config(s.f, sizeof(c), &c, 4) < 0);
	/* Offered features include what the issue promises. */
	uint64_t feat;
	VT_REQUIRE(vhuf_get_u64(s.f, VHU_REQ_GET_FEATURES, &feat) == 0);
	VT_CHECK(feat & FB(VIRTIO_NET_F_MRG_RXBUF));
	VT_CHECK(feat & FB(VIRTIO_NET_F_CTRL_VQ));
	VT_CHECK(feat & FB(VIRTIO_NET_F_MQ));
	VT_CHECK(feat & FB(VIRTIO_NET_F_CSUM));
	VT_CHECK(feat & FB(VIRTIO_NET_F_GUEST_TSO4));
	stop_dev(&s);
}

/* Frames of several sizes come back whole, in order, one buffer each, with
 * the 12-byte header and num_buffers = 1. */
VT_CASE(loopback_echo_v1_mrg)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	static const size_t sizes[] = {60, 64, 128, 1000, 1514};
	struct side s = {0};
	uint8_t frame[1514];
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 16, 2048) == 0);
	for (unsigned i = 0; i < 5; i++) {
		make_frame(frame, sizes[i], bcast, (uint8_t)i);
		VT_REQUIRE(send_frame(s.f, 1, feat, frame, sizes[i]) == 0);
	}
	for (unsigned i = 0; i < 5; i++) {
		uint64_t gpa;
		uint32_t len;
		VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
		VT_EQ(len, 12 + sizes[i]);
		uint8_t *p = vhuf_ptr(s.f, gpa);
		make_frame(frame, sizes[i], bcast, (uint8_t)i);
		VT_EQ(p[0], 0); /* flags */
		VT_EQ(p[1], VIRTIO_NET_HDR_GSO_NONE);
		VT_EQ(num_buffers(s.f, gpa), 1);
		VT_CHECK(!memcmp(p + 12, frame, sizes[i]));
	}
	for (unsigned i = 0; i < 5; i++) {
		uint32_t len = 1;
		VT_REQUIRE(wait_used(s.f, 1, NULL, &len, WAIT_MS) == 1);
		VT_EQ(len, 0);
	}
	VT_EQ(s.dev->stats.tx_frames, 5);
	VT_EQ(s.dev->stats.rx_frames, 5);
	stop_dev(&s);
}

/* A 1000-byte frame into 256-byte buffers: 4 buffers, num_buffers = 4. */
VT_CASE(mrg_rxbuf_spans_buffers)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	struct side s = {0};
	uint8_t frame[1000], got[1100];
	size_t at = 0;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 8, 256) == 0);
	make_frame(frame, sizeof(frame), bcast, 3);
	VT_REQUIRE(send_frame(s.f, 1, feat, frame, sizeof(frame)) == 0);
	static const uint32_t want[4] = {256, 256, 256, 1012 - 768};
	for (unsigned i = 0; i < 4; i++) {
		uint64_t gpa;
		uint32_t len;
		VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
		VT_EQ(len, want[i]);
		if (i == 0)
			VT_EQ(num_buffers(s.f, gpa), 4);
		memcpy(got + at, vhuf_ptr(s.f, gpa), len);
		at += len;
	}
	VT_EQ(at, 1012);
	VT_CHECK(!memcmp(got + 12, frame, sizeof(frame)));
	stop_dev(&s);
}

/* Too few buffers for a frame: it waits (nothing consumed) until the
 * driver posts enough, then spans all of them. */
VT_CASE(mrg_waits_for_enough_buffers)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	struct side s = {0};
	uint8_t frame[1000];
	uint64_t gpa;
	uint32_t len, total = 0;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 2, 256) == 0);
	make_frame(frame, sizeof(frame), bcast, 8);
	VT_REQUIRE(send_frame(s.f, 1, feat, frame, sizeof(frame)) == 0);
	VT_EQ(wait_used(s.f, 0, &gpa, &len, QUIET_MS), 0);
	VT_EQ(wait_used(s.f, 1, NULL, &len, 0), 0);
	VT_REQUIRE(post_rx(s.f, 0, 2, 256) == 0);
	for (unsigned i = 0; i < 4; i++) {
		VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
		if (i == 0)
			VT_EQ(num_buffers(s.f, gpa), 4);
		total += len;
	}
	VT_EQ(total, 12 + sizeof(frame));
	VT_REQUIRE(wait_used(s.f, 1, NULL, &len, WAIT_MS) == 1);
	stop_dev(&s);
}

/* Without MRG_RXBUF a frame needs one buffer: too big ones are dropped and
 * the buffer stays for the next frame that fits. */
VT_CASE(no_mrg_one_buffer_per_frame)
{
	const uint64_t feat = base_features;
	struct side s = {0};
	uint8_t big[1000], small[100];
	uint64_t gpa;
	uint32_t len;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 1, 256) == 0);
	make_frame(big, sizeof(big), bcast, 1);
	make_frame(small, sizeof(small), bcast, 2);
	VT_REQUIRE(send_frame(s.f, 1, feat, big, sizeof(big)) == 0);
	VT_REQUIRE(send_frame(s.f, 1, feat, small, sizeof(small)) == 0);
	VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 12 + sizeof(small));
	VT_EQ(num_buffers(s.f, gpa), 1); /* VERSION_1 without MRG_RXBUF: always 1 */
	VT_CHECK(!memcmp((uint8_t *)vhuf_ptr(s.f, gpa) + 12, small, sizeof(small)));
	VT_EQ(s.dev->stats.rx_dropped, 1);
	stop_dev(&s);
}

/* A legacy driver (no VERSION_1, no MRG_RXBUF) uses the 10-byte header. */
VT_CASE(legacy_10_byte_header)
{
	const uint64_t feat = FB(VIRTIO_NET_F_MAC);
	struct side s = {0};
	uint8_t frame[64];
	uint64_t gpa;
	uint32_t len;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 2, 2048) == 0);
	make_frame(frame, sizeof(frame), bcast, 9);
	VT_REQUIRE(send_frame(s.f, 1, feat, frame, sizeof(frame)) == 0);
	VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 10 + sizeof(frame));
	VT_CHECK(!memcmp((uint8_t *)vhuf_ptr(s.f, gpa) + 10, frame, sizeof(frame)));
	stop_dev(&s);
}

/* No rx buffers: the tx chain is not completed (backpressure) until the
 * driver posts buffers and kicks rx. */
VT_CASE(backpressure_until_rx_buffers)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	struct side s = {0};
	uint8_t frame[200];
	uint64_t gpa;
	uint32_t len;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	make_frame(frame, sizeof(frame), bcast, 5);
	VT_REQUIRE(send_frame(s.f, 1, feat, frame, sizeof(frame)) == 0);
	VT_EQ(wait_used(s.f, 1, NULL, &len, QUIET_MS), 0);
	VT_EQ(s.dev->stats.tx_frames, 0);
	VT_REQUIRE(post_rx(s.f, 0, 4, 2048) == 0);
	VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 12 + sizeof(frame));
	VT_REQUIRE(wait_used(s.f, 1, NULL, &len, WAIT_MS) == 1);
	VT_EQ(s.dev->stats.tx_frames, 1);
	VT_CHECK(s.dev->stats.rx_stalls >= 1);
	stop_dev(&s);
}

/* Header + frame in one tx descriptor, not kicked (a burst is built by
 * several of these and one kick). */
static int queue_frame(struct vhuf *f, uint64_t features, const uint8_t *frame, size_t len)
{
	unsigned hlen = hdr_len_of(features);
	uint64_t gpa = vhuf_alloc(f, hlen + len, 64);
	if (gpa == UINT64_MAX)
		return -ENOMEM;
	uint8_t *p = vhuf_ptr(f, gpa);
	memset(p, 0, hlen);
	memcpy(p + hlen, frame, len);
	struct vhuf_buf b = {.gpa = gpa, .len = (uint32_t)(hlen + len)};
	return vhuf_submit(f, 1, &b, 1, false, (void *)(uintptr_t)gpa) < 0 ? -ENOSPC : 0;
}

/* n frames (seeds first..first+n-1) come back on rx in order, intact. */
static void expect_frames(struct side *s, unsigned first, unsigned n, size_t len)
{
	uint8_t want[256];
	uint64_t gpa;
	uint32_t got;
	for (unsigned i = first; i < first + n; i++) {
		make_frame(want, len, bcast, (uint8_t)i);
		VT_REQUIRE(wait_used(s->f, 0, &gpa, &got, WAIT_MS) == 1);
		VT_EQ(got, 12 + len);
		VT_CHECK(!memcmp((uint8_t *)vhuf_ptr(s->f, gpa) + 12, want, len));
	}
}

/* Ten frames in one kick, three rx buffers: the device stops in the middle
 * of its burst, completes exactly the three tx chains it delivered and
 * gives the others back; more rx buffers resume it, in order. */
static void burst_blocks_case(uint64_t feat)
{
	struct side s = {0};
	uint8_t frame[100];
	uint32_t len;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE((vhuf_features(s.f) & feat) == feat); /* packed really on */
	VT_REQUIRE(post_rx(s.f, 0, 3, 2048) == 0);
	for (unsigned i = 0; i < 10; i++) {
		make_frame(frame, sizeof(frame), bcast, (uint8_t)i);
		VT_REQUIRE(queue_frame(s.f, feat, frame, sizeof(frame)) == 0);
	}
	VT_REQUIRE(vhuf_kick_force(s.f, 1) >= 0);
	expect_frames(&s, 0, 3, sizeof(frame));
	for (int i = 0; i < 3; i++)
		VT_REQUIRE(wait_used(s.f, 1, NULL, &len, WAIT_MS) == 1);
	VT_EQ(wait_used(s.f, 1, NULL, &len, QUIET_MS), 0); /* the other 7 wait */
	VT_EQ(s.dev->stats.tx_frames, 3);
	VT_REQUIRE(post_rx(s.f, 0, 7, 2048) == 0);
	expect_frames(&s, 3, 7, sizeof(frame));
	for (int i = 0; i < 7; i++)
		VT_REQUIRE(wait_used(s.f, 1, NULL, &len, WAIT_MS) == 1);
	VT_EQ(s.dev->stats.tx_frames, 10);
	VT_EQ(s.dev->stats.rx_frames, 10);
	stop_dev(&s);
}

VT_CASE(burst_blocks_midway_and_resumes)
{
	burst_blocks_case(base_features | FB(VIRTIO_NET_F_MRG_RXBUF));
}

/* The same on packed rings (unpop of several chains rewinds the ring). */
VT_CASE(burst_blocks_midway_packed)
{
	burst_blocks_case(base_features | FB(VIRTIO_NET_F_MRG_RXBUF) | FB(VHU_F_RING_PACKED));
}

/* More frames in one kick than one burst (and than the rx batch holds):
 * every one comes back, in order, and every tx chain is completed. */
VT_CASE(many_frames_span_bursts)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	const unsigned n = 200;
	struct side s = {0};
	uint8_t frame[64];
	uint32_t len;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, n, 2048) == 0);
	for (unsigned i = 0; i < n; i++) {
		make_frame(frame, sizeof(frame), bcast, (uint8_t)i);
		VT_REQUIRE(queue_frame(s.f, feat, frame, sizeof(frame)) == 0);
	}
	VT_REQUIRE(vhuf_kick_force(s.f, 1) >= 0);
	expect_frames(&s, 0, n, sizeof(frame));
	for (unsigned i = 0; i < n; i++)
		VT_REQUIRE(wait_used(s.f, 1, NULL, &len, WAIT_MS) == 1);
	VT_EQ(s.dev->stats.tx_frames, n);
	VT_EQ(s.dev->stats.rx_stalls, 0);
	stop_dev(&s);
}

/* Indirect descriptor tables on tx and a chain of several buffers. */
VT_CASE(tx_indirect_chain)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	struct side s = {0};
	uint8_t frame[300], hdr[12] = {0};
	uint64_t gpa;
	uint32_t len;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 2, 2048) == 0);
	make_frame(frame, sizeof(frame), bcast, 11);
	VT_REQUIRE(send_raw(s.f, 1, hdr, 12, frame, sizeof(frame), true, true) == 0);
	VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 12 + sizeof(frame));
	VT_CHECK(!memcmp((uint8_t *)vhuf_ptr(s.f, gpa) + 12, frame, sizeof(frame)));
	stop_dev(&s);
}

/* Hostile chains: a tx chain shorter than the header is completed and
 * counted; a read-only rx buffer is handed back empty; frames still flow. */
VT_CASE(bad_chains_are_refused)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	struct side s = {0};
	uint8_t frame[64], hdr[12] = {0};
	uint64_t gpa, ro;
	uint32_t len;
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	ro = vhuf_alloc(s.f, 2048, 64);
	struct vhuf_buf b = {.gpa = ro, .len = 2048, .write = false};
	VT_REQUIRE(vhuf_submit(s.f, 0, &b, 1, false, (void *)(uintptr_t)ro) >= 0);
	VT_REQUIRE(post_rx(s.f, 0, 2, 2048) == 0);
	VT_REQUIRE(send_raw(s.f, 1, hdr, 8, frame, 0, false, false) == 0); /* runt */
	make_frame(frame, sizeof(frame), bcast, 1);
	VT_REQUIRE(send_frame(s.f, 1, feat, frame, sizeof(frame)) == 0);
	VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(gpa, ro); /* the read-only buffer came back first, empty */
	VT_EQ(len, 0);
	VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 12 + sizeof(frame));
	VT_CHECK(!memcmp((uint8_t *)vhuf_ptr(s.f, gpa) + 12, frame, sizeof(frame)));
	VT_EQ(s.dev->stats.tx_errors, 1);
	stop_dev(&s);
}

/* ---- control queue --------------------------------------------------- */

static int ctrl_cmd(struct vhuf *f, unsigned q, uint8_t cls, uint8_t cmd, const void *data,
                    size_t len)
{
	uint64_t gpa = vhuf_alloc(f, 2 + len + 1, 8);
	uint8_t *p = vhuf_ptr(f, gpa);
	uint32_t used;
	p[0] = cls;
	p[1] = cmd;
	if (len)
		memcpy(p + 2, data, len);
	p[2 + len] = 0xee;
	struct vhuf_buf b[2] = {{.gpa = gpa, .len = (uint32_t)(2 + len)},
	                        {.gpa = gpa + 2 + len, .len = 1, .write = true}};
	if (vhuf_submit(f, q, b, 2, false, NULL) < 0 || vhuf_kick_force(f, q) < 0)
		return -EIO;
	if (wait_used(f, q, NULL, &used, WAIT_MS) != 1 || used != 1)
		return -ETIMEDOUT;
	return p[2 + len]; /* VIRTIO_NET_OK or VIRTIO_NET_ERR */
}

/* Send a frame to dst then a broadcast marker; returns true if the frame
 * to dst was received (it would arrive before the marker). */
static bool frame_passes(struct side *s, uint64_t feat, const uint8_t dst[6])
{
	uint8_t frame[80], mark[80];
	uint64_t gpa;
	uint32_t len;
	bool got = false;
	make_frame(frame, sizeof(frame), dst, 1);
	make_frame(mark, sizeof(mark), bcast, 2);
	if (send_frame(s->f, 1, feat, frame, sizeof(frame)) || post_rx(s->f, 0, 2, 2048) ||
	    send_frame(s->f, 1, feat, mark, sizeof(mark)))
		return false;
	for (int i = 0; i < 2; i++) {
		if (wait_used(s->f, 0, &gpa, &len, WAIT_MS) != 1)
			return false;
		uint8_t *p = (uint8_t *)vhuf_ptr(s->f, gpa) + 12;
		if (!memcmp(p, bcast, 6) && p[20] == mark[20])
			return got;
		got = !memcmp(p, dst, 6);
	}
	return got;
}

VT_CASE(ctrl_rx_mode_and_mac_table)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF) |
	                      FB(VIRTIO_NET_F_CTRL_VQ) | FB(VIRTIO_NET_F_CTRL_RX) |
	                      FB(VIRTIO_NET_F_CTRL_MAC_ADDR);
	const uint8_t on = 1, off = 0;
	struct side s = {0};
	VT_REQUIRE(loop_setup(&s, feat, 1, 3) == 0);
	/* Promiscuous by default. */
	VT_CHECK(frame_passes(&s, feat, other_mac));
	VT_EQ(ctrl_cmd(s.f, 2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
	      VIRTIO_NET_OK);
	VT_CHECK(!frame_passes(&s, feat, other_mac));
	VT_CHECK(frame_passes(&s, feat, dev_mac));
	VT_CHECK(s.dev->stats.rx_filtered >= 1);
	/* MAC table: one unicast entry, no multicast. */
	uint8_t tab[4 + 6 + 4] = {1, 0, 0, 0};
	memcpy(tab + 4, other_mac, 6);
	VT_EQ(
	    ctrl_cmd(s.f, 2, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tab, sizeof(tab)),
	    VIRTIO_NET_OK);
	VT_CHECK(frame_passes(&s, feat, other_mac));
	/* Table whose count runs past the data: refused. */
	uint8_t bad[4 + 6] = {5, 0, 0, 0};
	VT_EQ(
	    ctrl_cmd(s.f, 2, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, bad, sizeof(bad)),
	    VIRTIO_NET_ERR);
	/* ALLUNI needs CTRL_RX_EXTRA, which was not acked. */
	VT_EQ(ctrl_cmd(s.f, 2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLUNI, &on, 1),
	      VIRTIO_NET_ERR);
	/* New MAC address: config space follows, frames to it pass. */
	const uint8_t nmac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
	VT_EQ(ctrl_cmd(s.f, 2, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, nmac, 6),
	      VIRTIO_NET_OK);
	uint8_t cmac[6];
	VT_REQUIRE(vhuf_get_config(s.f, 0, cmac, 6) == 0);
	VT_CHECK(!memcmp(cmac, nmac, 6));
	VT_CHECK(frame_passes(&s, feat, nmac));
	/* Unknown class, wrong length. */
	VT_EQ(ctrl_cmd(s.f, 2, 77, 0, NULL, 0), VIRTIO_NET_ERR);
	VT_EQ(ctrl_cmd(s.f, 2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, tab, 2),
	      VIRTIO_NET_ERR);
	VT_EQ(ctrl_cmd(s.f, 2, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
	      VIRTIO_NET_OK);
	VT_CHECK(frame_passes(&s, feat, other_mac));
	stop_dev(&s);
}

/* Two pairs: VQ_PAIRS_SET bounds, then a frame sent on pair 1 comes back on
 * pair 1. Queues: rx0 0, tx0 1, rx1 2, tx1 3, ctrl 4. */
VT_CASE(ctrl_mq_pairs)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF) |
	                      FB(VIRTIO_NET_F_CTRL_VQ) | FB(VIRTIO_NET_F_MQ);
	struct side s = {0};
	uint16_t n;
	uint8_t frame[90];
	uint64_t gpa;
	uint32_t len;
	VT_REQUIRE(loop_setup(&s, feat, 2, 5) == 0);
	n = 0;
	VT_EQ(ctrl_cmd(s.f, 4, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &n, 2),
	      VIRTIO_NET_ERR);
	n = 3;
	VT_EQ(ctrl_cmd(s.f, 4, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &n, 2),
	      VIRTIO_NET_ERR);
	n = 2;
	VT_EQ(ctrl_cmd(s.f, 4, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &n, 2),
	      VIRTIO_NET_OK);
	VT_EQ(s.dev->active_pairs, 2);
	VT_REQUIRE(post_rx(s.f, 0, 2, 2048) == 0);
	VT_REQUIRE(post_rx(s.f, 2, 2, 2048) == 0);
	make_frame(frame, sizeof(frame), bcast, 4);
	VT_REQUIRE(send_frame(s.f, 3, feat, frame, sizeof(frame)) == 0);
	VT_REQUIRE(wait_used(s.f, 2, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 12 + sizeof(frame));
	VT_EQ(wait_used(s.f, 0, &gpa, &len, 0), 0);
	VT_EQ(s.dev->stats.ctrl_errors, 2);
	stop_dev(&s);
}

/* ---- offloads -------------------------------------------------------- */

/* An IPv4/UDP frame whose UDP checksum field holds the pseudo-header sum,
 * as a driver with checksum offload leaves it. */
static size_t make_udp(uint8_t *p, size_t payload)
{
	size_t len = 14 + 20 + 8 + payload;
	make_frame(p, len, bcast, 0);
	p[12] = 0x08;
	p[13] = 0x00;
	uint8_t *ip = p + 14, *udp = ip + 20;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + 8 + payload) >> 8);
	ip[3] = (uint8_t)(20 + 8 + payload);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, (uint8_t[]){10, 0, 0, 1, 10, 0, 0, 2}, 8);
	udp[0] = 0x12, udp[1] = 0x34, udp[2] = 0x56, udp[3] = 0x78;
	udp[4] = (uint8_t)((8 + payload) >> 8);
	udp[5] = (uint8_t)(8 + payload);
	uint32_t sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + (uint32_t)(8 + payload);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	udp[6] = (uint8_t)(sum >> 8);
	udp[7] = (uint8_t)sum;
	return len;
}

/* Independent check: the ones' complement sum over pseudo header + UDP
 * datagram of a correctly checksummed packet is 0xffff. */
static bool udp_csum_ok(const uint8_t *p, size_t len)
{
	const uint8_t *ip = p + 14;
	uint32_t sum = 0;
	size_t ulen = len - 34;
	for (int i = 12; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	sum += 17 + (uint32_t)ulen;
	for (size_t i = 0; i < ulen; i += 2)
		sum += (uint32_t)(ip[20 + i] << 8 | (i + 1 < ulen ? ip[21 + i] : 0));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static void csum_case(bool guest_csum)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF) | FB(VIRTIO_NET_F_CSUM) |
	                      (guest_csum ? FB(VIRTIO_NET_F_GUEST_CSUM) : 0);
	struct side s = {0};
	uint8_t frame[200], hdr[12] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0};
	uint16_t cs = 34, co = 6;
	uint64_t gpa;
	uint32_t len;
	size_t flen = make_udp(frame, 101);
	memcpy(hdr + 6, &cs, 2);
	memcpy(hdr + 8, &co, 2);
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 2, 2048) == 0);
	VT_REQUIRE(send_raw(s.f, 1, hdr, 12, frame, flen, true, false) == 0);
	VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_REQUIRE(len == 12 + flen);
	uint8_t *p = vhuf_ptr(s.f, gpa);
	if (guest_csum) { /* passed through: still partial */
		VT_EQ(p[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
		VT_CHECK(!memcmp(p + 12, frame, flen));
	} else { /* completed by the device */
		VT_EQ(p[0], 0);
		VT_CHECK(udp_csum_ok(p + 12, flen));
		VT_CHECK(!memcmp(p + 12, frame, 40)); /* all but the checksum unchanged */
	}
	stop_dev(&s);
}

VT_CASE(csum_completed_without_guest_csum)
{
	csum_case(false);
}

VT_CASE(csum_passed_through_with_guest_csum)
{
	csum_case(true);
}

/* A TSO frame to a guest that did not ack GUEST_TSO4 is dropped. */
VT_CASE(gso_dropped_when_not_acked)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF) | FB(VIRTIO_NET_F_CSUM) |
	                      FB(VIRTIO_NET_F_HOST_TSO4) | FB(VIRTIO_NET_F_GUEST_CSUM);
	struct side s = {0};
	uint8_t frame[200], hdr[12] = {VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4};
	uint16_t v = 100;
	uint64_t gpa;
	uint32_t len;
	memcpy(hdr + 4, &v, 2);
	VT_REQUIRE(loop_setup(&s, feat, 1, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 2, 2048) == 0);
	size_t flen = make_udp(frame, 100);
	VT_REQUIRE(send_raw(s.f, 1, hdr, 12, frame, flen, false, false) == 0);
	make_frame(frame, 64, bcast, 7);
	VT_REQUIRE(send_frame(s.f, 1, feat, frame, 64) == 0);
	VT_REQUIRE(wait_used(s.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 12 + 64); /* the marker, not the GSO frame */
	VT_EQ(s.dev->stats.rx_dropped, 1);
	stop_dev(&s);
}

/* ---- peer mode ------------------------------------------------------- */

VT_CASE(peer_cable_both_ways)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	struct side a = {0}, b = {0};
	uint8_t frame[500];
	uint64_t gpa;
	uint32_t len;
	VT_REQUIRE(start_dev(&a, NET_MODE_PEER, 1, 0) == 0);
	VT_REQUIRE(start_dev(&b, NET_MODE_PEER, 1, 1) == 0);
	net_dev_link(a.dev, b.dev);
	VT_REQUIRE(serve_and_connect(&a) == 0);
	VT_REQUIRE(setup_queues(a.f, feat, 2) == 0);
	/* B not connected yet: A's frame is dropped, A's tx completes. */
	make_frame(frame, 100, bcast, 1);
	VT_REQUIRE(send_frame(a.f, 1, feat, frame, 100) == 0);
	VT_REQUIRE(wait_used(a.f, 1, NULL, &len, WAIT_MS) == 1);
	VT_EQ(a.dev->stats.tx_dropped, 1);
	VT_REQUIRE(serve_and_connect(&b) == 0);
	VT_REQUIRE(setup_queues(b.f, feat, 2) == 0);
	VT_REQUIRE(post_rx(a.f, 0, 4, 2048) == 0);
	VT_REQUIRE(post_rx(b.f, 0, 4, 2048) == 0);
	make_frame(frame, sizeof(frame), bcast, 2);
	VT_REQUIRE(send_frame(a.f, 1, feat, frame, sizeof(frame)) == 0);
	VT_REQUIRE(wait_used(b.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 12 + sizeof(frame));
	VT_CHECK(!memcmp((uint8_t *)vhuf_ptr(b.f, gpa) + 12, frame, sizeof(frame)));
	make_frame(frame, 77, bcast, 3);
	VT_REQUIRE(send_frame(b.f, 1, feat, frame, 77) == 0);
	VT_REQUIRE(wait_used(a.f, 0, &gpa, &len, WAIT_MS) == 1);
	VT_EQ(len, 12 + 77);
	VT_CHECK(!memcmp((uint8_t *)vhuf_ptr(a.f, gpa) + 12, frame, 77));
	VT_EQ(wait_used(a.f, 0, &gpa, &len, 0), 0); /* nothing looped back to A */
	VT_EQ(b.dev->stats.rx_frames, 1);
	VT_EQ(a.dev->stats.rx_frames, 1);
	stop_pair(&a, &b);
}

/* Peer backpressure: B has no rx buffers, A's tx waits; B posts, both move. */
VT_CASE(peer_backpressure)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	struct side a = {0}, b = {0};
	uint8_t frame[64];
	uint64_t gpa;
	uint32_t len;
	VT_REQUIRE(start_dev(&a, NET_MODE_PEER, 1, 0) == 0);
	VT_REQUIRE(start_dev(&b, NET_MODE_PEER, 1, 1) == 0);
	net_dev_link(a.dev, b.dev);
	VT_REQUIRE(serve_and_connect(&a) == 0 && serve_and_connect(&b) == 0);
	VT_REQUIRE(setup_queues(a.f, feat, 2) == 0 && setup_queues(b.f, feat, 2) == 0);
	for (int i = 0; i < 8; i++) {
		make_frame(frame, sizeof(frame), bcast, (uint8_t)i);
		VT_REQUIRE(send_frame(a.f, 1, feat, frame, sizeof(frame)) == 0);
	}
	VT_EQ(wait_used(a.f, 1, NULL, &len, QUIET_MS), 0);
	VT_REQUIRE(post_rx(b.f, 0, 8, 2048) == 0);
	for (int i = 0; i < 8; i++) {
		VT_REQUIRE(wait_used(b.f, 0, &gpa, &len, WAIT_MS) == 1);
		VT_EQ(((uint8_t *)vhuf_ptr(b.f, gpa))[12 + 20], (uint8_t)(i + 20 * 7));
	}
	for (int i = 0; i < 8; i++)
		VT_REQUIRE(wait_used(a.f, 1, NULL, &len, WAIT_MS) == 1);
	stop_pair(&a, &b);
}

/* ---- tap back side ---------------------------------------------------- */

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <arpa/inet.h>

/* A packet socket on the tap: sees what the guest sends out of the tap,
 * and what it sends goes into the tap, towards the guest. */
static int packet_socket(const char *ifname)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
	                          .sll_protocol = htons(ETH_P_ALL),
	                          .sll_ifindex = (int)if_nametoindex(ifname)};
	if (s < 0 || sll.sll_ifindex == 0 || bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

/* Quiet the host side: no IPv6 autoconfiguration chatter on the tap. */
static void no_ipv6(const char *ifname)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs("1", f);
		fclose(f);
	}
}

/* Receive on s until a frame of ethertype 0x88b5 arrives (bounded). */
static ssize_t recv_test_frame(int s, uint8_t *buf, size_t len)
{
	for (int i = 0; i < 1000; i++) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, WAIT_MS) <= 0)
			return -1;
		ssize_t n = recv(s, buf, len, 0);
		if (n >= 14 && buf[12] == 0x88 && buf[13] == 0xb5)
			return n;
	}
	return -1;
}

VT_CASE(tap_both_ways)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF) | FB(VIRTIO_NET_F_CSUM) |
	                      FB(VIRTIO_NET_F_GUEST_CSUM) | FB(VIRTIO_NET_F_GUEST_TSO4) |
	                      FB(VIRTIO_NET_F_GUEST_TSO6);
	struct side s = {0};
	char name[16];
	uint8_t frame[600], got[2048];
	uint64_t gpa;
	uint32_t len;
	snprintf(name, sizeof(name), "vhunt%d", (int)getpid() % 1000000);
	struct net_dev_opts o = {.name = "test-tap",
	                         .mode = NET_MODE_TAP,
	                         .pairs = 1,
	                         .mtu = 1500,
	                         .tap = name,
	                         .ncpus = 2};
	memcpy(o.mac, dev_mac, 6);
	snprintf(s.path, sizeof(s.path), "/tmp/vhu-net-test-%d-tap.sock", (int)getpid());
	VT_REQUIRE(net_dev_new(&s.dev, &o) == 0);
	int r = net_dev_attach(s.dev, &o);
	if (r == -EPERM || r == -EACCES || r == -ENOENT || r == -ENODEV) {
		fprintf(stderr, "# no tap device here (%s): case skipped\n", strerror(-r));
		stop_dev(&s);
		return;
	}
	VT_REQUIRE(r == 0);
	no_ipv6(s.dev->tap_name);
	int ps = packet_socket(s.dev->tap_name);
	VT_REQUIRE(ps >= 0);
	VT_REQUIRE(serve_and_connect(&s) == 0);
	VT_REQUIRE(setup_queues(s.f, feat, 2) == 0);
	VT_REQUIRE(post_rx(s.f, 0, 8, 2048) == 0);

	/* Guest -> tap. */
	make_frame(frame, sizeof(frame), bcast, 21);
	VT_REQUIRE(send_frame(s.f, 1, feat, frame, sizeof(frame)) == 0);
	ssize_t n = recv_test_frame(ps, got, sizeof(got));
	VT_EQ(n, sizeof(frame));
	VT_CHECK(n == sizeof(frame) && !memcmp(got, frame, sizeof(frame)));
	VT_REQUIRE(wait_used(s.f, 1, NULL, &len, WAIT_MS) == 1);

	/* Tap -> guest (skipping anything else the host may send). */
	make_frame(frame, 300, bcast, 22);
	VT_REQUIRE(send(ps, frame, 300, 0) == 300);
	bool found = false;
	for (int i = 0; i < 8 && !found; i++) {
		if (wait_used(s.f, 0, &gpa, &len, WAIT_MS) != 1)
			break;
		uint8_t *p = vhuf_ptr(s.f, gpa);
		if (len == 12 + 300 && !memcmp(p + 12, frame, 300)) {
			found = true;
			VT_EQ(num_buffers(s.f, gpa), 1);
		}
	}
	VT_CHECK(found);
	close(ps);
	stop_dev(&s);
}

/* A sender blocked on a receiver with no rx buffers resumes (and drops)
 * when the receiver's front end goes away: unplugging the cable must not
 * leave the other guest's tx queue stuck. */
VT_CASE(peer_unblocks_when_other_side_leaves)
{
	const uint64_t feat = base_features | FB(VIRTIO_NET_F_MRG_RXBUF);
	struct side a = {0}, b = {0};
	uint8_t frame[64];
	uint32_t len;
	VT_REQUIRE(start_dev(&a, NET_MODE_PEER, 1, 0) == 0);
	VT_REQUIRE(start_dev(&b, NET_MODE_PEER, 1, 1) == 0);
	net_dev_link(a.dev, b.dev);
	VT_REQUIRE(serve_and_connect(&a) == 0 && serve_and_connect(&b) == 0);
	VT_REQUIRE(setup_queues(a.f, feat, 2) == 0 && setup_queues(b.f, feat, 2) == 0);
	make_frame(frame, sizeof(frame), bcast, 1);
	VT_REQUIRE(send_frame(a.f, 1, feat, frame, sizeof(frame)) == 0);
	VT_EQ(wait_used(a.f, 1, NULL, &len, QUIET_MS), 0);
	VT_CHECK(atomic_load(&a.dev->pairs[0].tx_blocked));
	vhuf_close(b.f);
	b.f = NULL;
	VT_REQUIRE(wait_used(a.f, 1, NULL, &len, WAIT_MS) == 1);
	VT_EQ(a.dev->stats.tx_dropped, 1);
	VT_EQ(b.dev->stats.rx_frames, 0);
	stop_pair(&a, &b);
}
