/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-net and migration, without QEMU: the device in this process (as in
 * tests/net), its socket driven by libvhu-frontend.  RARP and MTU after a
 * migration (SEND_RARP, NET_SET_MTU, answered as DPDK does), and frames
 * received while the front end logs dirty pages, checked page by page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "vhu/frontend.h"
#include "vt.h"

VT_MAIN

#define QSIZE   256
#define WAIT_MS 10000 /* bound on any wait; never a timing assertion */
#define FB(b)   VHU_BIT(b)

static const uint64_t feats = FB(VHU_F_VERSION_1) | FB(VHU_F_RING_INDIRECT_DESC) |
                              FB(VHU_F_RING_EVENT_IDX) | FB(VIRTIO_NET_F_MAC) |
                              FB(VIRTIO_NET_F_MTU) | FB(VIRTIO_NET_F_STATUS) |
                              FB(VIRTIO_NET_F_MRG_RXBUF);
static const uint64_t pfs = VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIG) |
                            VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_LOG_SHMFD) | VHU_BIT(VHU_PF_RARP) |
                            VHU_BIT(VHU_PF_MTU);
static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x6d, 0x69, 0x67};

struct side {
	struct net_dev *dev;
	struct vhuf *f;
	char path[108];
};

static int side_start(struct side *s, enum net_mode mode, unsigned idx)
{
	static unsigned counter;
	struct net_dev_opts o = {.name = idx ? "mig-net1" : "mig-net0",
	                         .mode = mode,
	                         .pairs = 1,
	                         .mtu = 1500,
	                         .ncpus = 1,
	                         .mac = {0x52, 0x54, 0x00, 0, 0, (uint8_t)idx}};
	int r;

	snprintf(s->path, sizeof(s->path), "/tmp/vhu-mig-net-%d-%u.sock", (int)getpid(), counter++);
	r = net_dev_new(&s->dev, &o);
	if (r == 0)
		r = net_dev_attach(s->dev, &o);
	if (r == 0 && mode == NET_MODE_LOOPBACK)
		s->dev->peer = s->dev;
	return r;
}

static int side_connect(struct side *s)
{
	struct vhuf_opts fo = {.mem_size = 16u << 20, .connect_timeout_ms = WAIT_MS};
	int r = vhu_daemon_start(s->dev->daemon, s->path);

	if (r == 0)
		r = vhuf_connect(&s->f, s->path, &fo);
	if (r == 0)
		r = vhuf_negotiate(s->f, feats, pfs);
	for (unsigned q = 0; r == 0 && q < 2; q++)
		r = vhuf_queue_setup(s->f, q, QSIZE);
	return r;
}

static void side_halt(struct side *s)
{
	if (s->f)
		vhuf_close(s->f);
	s->f = NULL;
	vhu_daemon_stop(s->dev->daemon);
	vhu_daemon_wait(s->dev->daemon);
}

static void side_free(struct side *s)
{
	vhu_daemon_free(s->dev->daemon);
	s->dev->daemon = NULL;
	net_dev_free(s->dev);
	unlink(s->path);
}

/* n receive buffers of one page each (pages of their own). */
static int post_rx(struct vhuf *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vhuf_alloc(f, 4096, 4096);
		struct vhuf_buf b = {.gpa = gpa, .len = 4096, .write = true};

		if (gpa == UINT64_MAX ||
		    vhuf_submit(f, 0, &b, 1, false, (void *)(uintptr_t)gpa) < 0)
			return -ENOMEM;
	}
	return vhuf_kick_force(f, 0) < 0 ? -EIO : 0;
}

/* The next used rx buffer: 1 with gpa and len, 0 if none within WAIT_MS. */
static int next_rx(struct vhuf *f, uint64_t *gpa, uint32_t *len)
{
	/* A call may be left over from an earlier entry: wait until an
	 * entry is there or a wait times out. */
	for (;;) {
		void *cookie;
		int r = vhuf_get_used(f, 0, &cookie, len);

		if (r == 1)
			*gpa = (uint64_t)(uintptr_t)cookie;
		if (r != 0)
			return r;
		if (vhuf_wait_call(f, 0, WAIT_MS) == 0)
			return vhuf_get_used(f, 0, &cookie, len) == 1
			           ? (*gpa = (uint64_t)(uintptr_t)cookie, 1)
			           : 0;
	}
}

static int send_rarp(struct vhuf *f, const uint8_t mac[6])
{
	uint64_t v = 0;

	memcpy(&v, mac, 6);
	return vhuf_request(f, VHU_REQ_SEND_RARP, &v, sizeof(v), NULL, 0, false, NULL);
}

/* A RARP frame (DPDK's layout) for mac behind the 12-byte header. */
static bool is_rarp(const uint8_t *p, uint32_t len, const uint8_t mac[6])
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t *e = p + 12;

	return len == 12 + 60 && !memcmp(e, bcast, 6) && !memcmp(e + 6, mac, 6) && e[12] == 0x80 &&
	       e[13] == 0x35 && e[20] == 0 && e[21] == 3 && !memcmp(e + 22, mac, 6) &&
	       !memcmp(e + 32, mac, 6);
}

VT_CASE(rarp_comes_back_through_loopback)
{
	struct side s = {0};
	uint64_t gpa, pf = 0;
	uint32_t len = 0;

	VT_REQUIRE(side_start(&s, NET_MODE_LOOPBACK, 0) == 0);
	VT_REQUIRE(side_connect(&s) == 0);
	VT_REQUIRE(vhuf_get_u64(s.f, VHU_REQ_GET_PROTOCOL_FEATURES, &pf) == 0);
	VT_CHECK(pf & VHU_BIT(VHU_PF_RARP));
	VT_CHECK(pf & VHU_BIT(VHU_PF_MTU));
	VT_REQUIRE(post_rx(s.f, 4) == 0);
	VT_EQ(send_rarp(s.f, guest_mac), 0);
	VT_REQUIRE(next_rx(s.f, &gpa, &len) == 1);
	VT_CHECK(is_rarp(vhuf_ptr(s.f, gpa), len, guest_mac));
	side_halt(&s);
	side_free(&s);
}

/* The frame goes out where the guest's frames go: the peer's guest. */
VT_CASE(rarp_reaches_the_peer)
{
	struct side a = {0}, b = {0};
	uint64_t gpa;
	uint32_t len = 0;

	VT_REQUIRE(side_start(&a, NET_MODE_PEER, 0) == 0);
	VT_REQUIRE(side_start(&b, NET_MODE_PEER, 1) == 0);
	net_dev_link(a.dev, b.dev);
	VT_REQUIRE(side_connect(&a) == 0);
	VT_REQUIRE(side_connect(&b) == 0);
	VT_REQUIRE(post_rx(b.f, 4) == 0);
	VT_EQ(send_rarp(a.f, guest_mac), 0);
	VT_REQUIRE(next_rx(b.f, &gpa, &len) == 1);
	VT_CHECK(is_rarp(vhuf_ptr(b.f, gpa), len, guest_mac));
	side_halt(&a);
	side_halt(&b);
	side_free(&a);
	side_free(&b);
}

VT_CASE(set_mtu_changes_the_config_space)
{
	struct side s = {0};
	struct virtio_net_config c;

	VT_REQUIRE(side_start(&s, NET_MODE_LOOPBACK, 0) == 0);
	VT_REQUIRE(side_connect(&s) == 0);
	VT_EQ(vhuf_set_u64(s.f, VHU_REQ_NET_SET_MTU, 9000), 0);
	VT_REQUIRE(vhuf_get_config(s.f, 0, &c, sizeof(c)) == 0);
	VT_EQ(c.mtu, 9000);
	/* Outside 68..65535: refused (REPLY_ACK), nothing changes. */
	VT_CHECK(vhuf_set_u64(s.f, VHU_REQ_NET_SET_MTU, 67) < 0);
	VT_CHECK(vhuf_set_u64(s.f, VHU_REQ_NET_SET_MTU, 65536) < 0);
	VT_REQUIRE(vhuf_get_config(s.f, 0, &c, sizeof(c)) == 0);
	VT_EQ(c.mtu, 9000);
	side_halt(&s);
	side_free(&s);
}

/* Frames received while logging: every rx page vhu-net wrote reaches the
 * simulated destination. */
VT_CASE(received_frames_are_logged)
{
	uint8_t hdr_frame[12 + 1400];
	struct vhuf_log_report rep = {0};
	struct side s = {0};
	unsigned got = 0;

	VT_REQUIRE(side_start(&s, NET_MODE_LOOPBACK, 0) == 0);
	VT_REQUIRE(side_connect(&s) == 0);
	VT_REQUIRE(post_rx(s.f, 128) == 0);
	VT_EQ(vhuf_log_start(s.f), 0);
	memset(hdr_frame, 0, 12);
	memset(hdr_frame + 12, 0xff, 6); /* broadcast */
	for (unsigned i = 0; i < 100; i++) {
		uint64_t gpa = vhuf_alloc(s.f, sizeof(hdr_frame), 64), rx;
		struct vhuf_buf b = {.gpa = gpa, .len = sizeof(hdr_frame)};
		uint32_t len;
		void *cookie;

		for (unsigned k = 18; k < sizeof(hdr_frame); k++)
			hdr_frame[k] = (uint8_t)(i + k);
		memcpy(vhuf_ptr(s.f, gpa), hdr_frame, sizeof(hdr_frame));
		VT_REQUIRE(vhuf_submit(s.f, 1, &b, 1, false, NULL) >= 0);
		vhuf_kick(s.f, 1);
		VT_REQUIRE(next_rx(s.f, &rx, &len) == 1);
		VT_CHECK(len == sizeof(hdr_frame) &&
		         !memcmp((uint8_t *)vhuf_ptr(s.f, rx) + 12, hdr_frame + 12, len - 12));
		got++;
		while (vhuf_get_used(s.f, 1, &cookie, NULL) == 1)
			;
		if (i % 10 == 0)
			vhuf_log_sync(s.f);
	}
	VT_EQ(got, 100);
	VT_EQ(vhuf_queue_stop(s.f, 0, NULL), 0);
	VT_EQ(vhuf_queue_stop(s.f, 1, NULL), 0);
	VT_EQ(vhuf_log_verify(s.f, &rep), 0);
	VT_CHECK(rep.device_marks >= 100);
	fprintf(stderr, "# %llu pages, %llu device marks, %llu missed\n",
	        (unsigned long long)rep.pages, (unsigned long long)rep.device_marks,
	        (unsigned long long)rep.missed);
	side_halt(&s);
	side_free(&s);
}
