/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packed virtqueues through a real socket: the front-end library's packed
 * driver against the echo device (direct and indirect chains, sizes that
 * are not powers of two, with and without EVENT_IDX), base encoding over
 * GET/SET_VRING_BASE, reconnects, event suppression, dirty logging, a
 * malformed ring, and a device that does not offer the feature.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "echo.h"
#include "vt.h"

VT_MAIN

#define F_PACKED (F_ALL | VHU_BIT(VHU_F_RING_PACKED))

struct pdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct pevent {
	uint16_t off_wrap;
	uint16_t flags;
};

static int start_packed(struct tenv *t, unsigned nq)
{
	echo_init(&t->dev, nq);
	t->dev.features |= VHU_BIT(VHU_F_RING_PACKED);
	return tenv_start(t, NULL);
}

static void io_sizes(uint64_t features)
{
	static const unsigned sizes[] = {1, 3, 100, 256, 1000};
	struct tenv t;
	struct vhuf *f;

	VT_REQUIRE(start_packed(&t, 5) == 0);
	f = fe_open(&t, NULL, features, PF_ALL);
	VT_REQUIRE(f);
	VT_CHECK(vhuf_features(f) & VHU_BIT(VHU_F_RING_PACKED));
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned q = i;

		VT_EQ(vhuf_queue_setup(f, q, sizes[i]), 0);
		/* chains of 3 descriptors (1 with indirect): size 1 and 3
		 * rings only take indirect ones, fe_io copes (ENOSPC) */
		VT_EQ(fe_io(f, q, sizes[i] < 3 ? 0 : 3 * sizes[i] + 7), 0);
	}
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(io_event_idx)
{
	io_sizes(F_PACKED);
}

VT_CASE(io_without_event_idx)
{
	io_sizes(F_PACKED & ~VHU_BIT(VHU_F_RING_EVENT_IDX));
}

VT_CASE(io_without_indirect)
{
	io_sizes(F_PACKED & ~VHU_BIT(VHU_F_RING_INDIRECT_DESC));
}

/* One indirect echo request at a time on a ring of 1 (size 1 can only hold
 * a 1-descriptor chain), many laps. */
VT_CASE(ring_of_one)
{
	struct tenv t;
	struct vhuf *f;
	uint64_t buf;

	VT_REQUIRE(start_packed(&t, 1) == 0);
	f = fe_open(&t, NULL, F_PACKED, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 1) == 0);
	buf = vhuf_alloc(f, 8192, 4096);
	for (int i = 0; i < 20; i++)
		VT_EQ(fe_echo_one(f, 0, buf, NULL, buf + 4096, NULL, 100 + i, true), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* GET_VRING_BASE reports avail and used positions with wrap counters;
 * SET_VRING_BASE with it (or with only the avail half, as DPDK sends)
 * resumes the ring. */
VT_CASE(stop_restart_base)
{
	struct tenv t;
	struct vhuf *f;
	uint32_t base;
	uint16_t lo;

	VT_REQUIRE(start_packed(&t, 1) == 0);
	f = fe_open(&t, NULL, F_PACKED, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 7) == 0);
	VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
	VT_EQ(base, 0x80008000u); /* nothing happened yet */
	VT_EQ(vhuf_queue_restart(f, 0), 0);
	VT_EQ(fe_io(f, 0, 11), 0);
	VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
	lo = (uint16_t)base;
	VT_EQ(base >> 16, lo); /* used caught up with avail */
	VT_CHECK((lo & 0x7fff) < 7);
	VT_CHECK(base != 0x80008000u);
	VT_EQ(vhuf_queue_restart(f, 0), 0);
	VT_EQ(fe_io(f, 0, 13), 0);
	/* DPDK-style restart: only the avail half */
	VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
	{
		struct vhu_vring_state s = {.index = 0, .num = base & 0xffff};

		VT_EQ(vhuf_request(f, VHU_REQ_SET_VRING_BASE, &s, sizeof(s), NULL, 0, true, NULL),
		      0);
	}
	/* (vhuf_queue_restart resends the full base; the back end accepted
	 * the half one above, which the next start would use) */
	VT_EQ(vhuf_queue_restart(f, 0), 0);
	VT_EQ(fe_io(f, 0, 5), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* The back end goes away with requests published; the new connection
 * resumes from the driver's used position and completes each once. */
VT_CASE(reconnect_resumes_ring)
{
	struct tenv t;
	struct vhuf *f;
	uint64_t buf;
	void *ck;
	uint32_t len;
	unsigned got = 0;

	VT_REQUIRE(start_packed(&t, 1) == 0);
	f = fe_open(&t, NULL, F_PACKED, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 70) == 0); /* 20 x 2 + 20 x 1 slots */
	VT_EQ(fe_io(f, 0, 33), 0);
	atomic_store(&t.dev.held, 0);
	atomic_store(&t.dev.hold, true);
	buf = vhuf_alloc(f, 40 * 512, 64);
	for (unsigned i = 0; i < 40; i++) {
		struct vhuf_buf b[2] = {{buf + i * 512, 256, false},
		                        {buf + i * 512 + 256, 256, true}};

		memset(vhuf_ptr(f, buf + i * 512), (int)i + 1, 256);
		VT_CHECK(vhuf_submit(f, 0, b, 2, i % 2, (void *)(uintptr_t)(i + 1)) >= 0);
	}
	vhuf_kick_force(f, 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&t.dev.held) == 40, 3000));
	atomic_store(&t.dev.hold, false);
	VT_REQUIRE(fe_reconnect(&t, f, F_PACKED, PF_ALL) == 0);
	VT_REQUIRE(vhuf_queue_restart(f, 0) == 0);
	vhuf_kick_force(f, 0);
	while (got < 40 && vhuf_wait_call(f, 0, 3000) == 1) {
		while (vhuf_get_used(f, 0, &ck, &len) == 1) {
			uintptr_t i = (uintptr_t)ck - 1;

			VT_EQ(len, 256);
			VT_EQ(memcmp(vhuf_ptr(f, buf + i * 512), vhuf_ptr(f, buf + i * 512 + 256),
			             256),
			      0);
			got++;
		}
	}
	VT_EQ(got, 40);
	VT_EQ(vhuf_get_used(f, 0, NULL, NULL), 0);
	VT_EQ(fe_io(f, 0, 77), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* EVENT_IDX: the device's event area asks for a kick at its next avail
 * position; a driver area with DISABLE silences calls, DESC at a later
 * position defers them. */
VT_CASE(event_suppression)
{
	struct tenv t;
	struct vhuf *f;
	struct vhu_vring_stats s0, s1;
	struct vhu_vring *vr;
	struct pevent *drv, *dev;
	uint64_t buf;
	void *ck;
	uint32_t len;
	unsigned d0, n = 0;

	VT_REQUIRE(start_packed(&t, 1) == 0);
	vr = vhu_daemon_vring(t.d, 0);
	f = fe_open(&t, NULL, F_PACKED, PF_ALL);
	VT_REQUIRE(f && (vhuf_features(f) & VHU_BIT(VHU_F_RING_EVENT_IDX)));
	VT_REQUIRE(vhuf_queue_setup(f, 0, 10) == 0);
	drv = vhuf_ring_avail(f, 0);
	dev = vhuf_ring_used(f, 0);
	buf = vhuf_alloc(f, 4096, 64);
	d0 = atomic_load(&t.dev.done[0]);
	/* 4 one-slot requests (indirect) */
	for (unsigned i = 0; i < 4; i++)
		VT_EQ(fe_echo_one(f, 0, buf, NULL, buf + 2048, NULL, 64, true), 0);
	VT_REQUIRE(echo_quiesce(&t.dev, 0, d0 + 4));
	wait_event(vhuf_call_fd(f, 0), 0);
	VT_EQ(__atomic_load_n(&dev->flags, __ATOMIC_ACQUIRE), 2);
	VT_EQ(__atomic_load_n(&dev->off_wrap, __ATOMIC_ACQUIRE), 0x8004);
	vhu_vring_get_stats(vr, &s0);

	/* interrupts off: three completions stay quiet */
	__atomic_store_n(&drv->flags, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < 3; i++) {
		struct vhuf_buf b[2] = {{buf, 64, false}, {buf + 2048, 64, true}};

		VT_CHECK(vhuf_submit(f, 0, b, 2, true, (void *)1) >= 0);
	}
	VT_EQ(vhuf_kick(f, 0), 1);
	VT_REQUIRE(echo_quiesce(&t.dev, 0, d0 + 7));
	VT_EQ(wait_fd(vhuf_call_fd(f, 0), 0), 0);
	vhu_vring_get_stats(vr, &s1);
	VT_EQ(s1.calls, s0.calls);
	VT_CHECK(s1.suppressed > s0.suppressed);
	VT_EQ(__atomic_load_n(&dev->off_wrap, __ATOMIC_ACQUIRE), 0x8007);

	/* interrupt when slot 8 is used: the next one (slot 7) stays quiet,
	 * the one after calls */
	__atomic_store_n(&drv->off_wrap, 0x8008, __ATOMIC_RELEASE);
	__atomic_store_n(&drv->flags, 2, __ATOMIC_RELEASE);
	{
		struct vhuf_buf b[2] = {{buf, 64, false}, {buf + 2048, 64, true}};

		VT_CHECK(vhuf_submit(f, 0, b, 2, true, (void *)1) >= 0);
		VT_EQ(vhuf_kick(f, 0), 1);
		VT_REQUIRE(echo_quiesce(&t.dev, 0, d0 + 8));
		VT_EQ(wait_fd(vhuf_call_fd(f, 0), 0), 0);
		VT_CHECK(vhuf_submit(f, 0, b, 2, true, (void *)1) >= 0);
		VT_EQ(vhuf_kick(f, 0), 1);
		VT_EQ(vhuf_wait_call(f, 0, 3000), 1);
	}
	while (vhuf_get_used(f, 0, &ck, &len) == 1)
		n++;
	VT_EQ(n, 5);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* A chain with a buffer id past the ring fails queue 0 only. */
VT_CASE(malformed_ring_fails_only_its_queue)
{
	struct tenv t;
	struct vhuf *f;
	struct pdesc *d;
	uint64_t buf;

	VT_REQUIRE(start_packed(&t, 2) == 0);
	f = fe_open(&t, NULL, F_PACKED, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 16) == 0 && vhuf_queue_setup(f, 1, 16) == 0);
	VT_EQ(fe_io(f, 1, 10), 0);
	buf = vhuf_alloc(f, 4096, 4096);
	d = vhuf_ring_desc(f, 0);
	d[0] = (struct pdesc){buf, 16, 16, 0};
	__atomic_store_n(&d[0].flags, (uint16_t)(1u << 7), __ATOMIC_RELEASE); /* avail, wrap 1 */
	vhuf_kick_force(f, 0);
	VT_CHECK(wait_event(vhuf_err_fd(f, 0), 3000));
	VT_CHECK(vhu_vring_failed(vhu_daemon_vring(t.d, 0)));
	VT_CHECK(WAIT_UNTIL(atomic_load(&t.dev.ioerrs) >= 1, 3000));
	VT_EQ(fe_io(f, 1, 50), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* A device without the feature: negotiation leaves it out, the front end
 * drives split rings and the back end refuses packed-only values. */
VT_CASE(not_offered_means_split)
{
	struct tenv t;
	struct vhuf *f;
	struct vhu_vring_state s = {.index = 0, .num = 0x80008000u};

	echo_init(&t.dev, 1);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	f = fe_open(&t, NULL, F_PACKED, PF_ALL);
	VT_REQUIRE(f);
	VT_CHECK(!(vhuf_features(f) & VHU_BIT(VHU_F_RING_PACKED)));
	VT_CHECK(
	    is_nack(vhuf_request(f, VHU_REQ_SET_VRING_BASE, &s, sizeof(s), NULL, 0, true, NULL)));
	s.num = 100;
	VT_CHECK(
	    is_nack(vhuf_request(f, VHU_REQ_SET_VRING_NUM, &s, sizeof(s), NULL, 0, true, NULL)));
	VT_EQ(vhuf_queue_setup(f, 0, 100), -EINVAL); /* split: power of two */
	VT_EQ(vhuf_queue_setup(f, 0, 128), 0);
	VT_EQ(fe_io(f, 0, 50), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* LOG_ALL: the written buffer and the used descriptor's page (the ring
 * itself, wherever log_guest_addr points) are marked dirty. */
VT_CASE(dirty_log_marks_ring_and_buffers)
{
	struct tenv t;
	struct vhuf_opts o = {.mem_size = 8 << 20, .connect_timeout_ms = 3000};
	struct vhuf *f;
	uint8_t *map;
	uint64_t out, in, ring;

	VT_REQUIRE(start_packed(&t, 1) == 0);
	f = fe_open(&t, &o, F_PACKED | VHU_BIT(VHU_F_LOG_ALL), PF_ALL);
	VT_REQUIRE(f);
	VT_CHECK(vhuf_features(f) & VHU_BIT(VHU_F_LOG_ALL));
	VT_CHECK(vhuf_features(f) & VHU_BIT(VHU_F_RING_PACKED));
	map = fe_set_log_base(f);
	VT_REQUIRE(map);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 20) == 0);
	out = vhuf_alloc(f, 4096, 4096);
	in = vhuf_alloc(f, 8192, 4096);
	ring = (uint64_t)((uint8_t *)vhuf_ring_desc(f, 0) - (uint8_t *)vhuf_ptr(f, 0));
	memset(map, 0, 4096); /* forget what start logged */
	VT_EQ(fe_echo_one(f, 0, out, NULL, in + 4096, NULL, 300, false), 0);
	VT_CHECK(page_dirty(map, in + 4096)); /* written by the device */
	VT_CHECK(!page_dirty(map, in));       /* untouched */
	VT_CHECK(!page_dirty(map, out));      /* only read */
	VT_CHECK(page_dirty(map, ring));      /* the used descriptor */
	munmap(map, 4096);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}
