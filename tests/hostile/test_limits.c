/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every index and size at and past its limit, per request: at the limit
 * the request is accepted, one past (and far past: 2^32-1, wrapping sums)
 * it is refused with a non-zero ack, the connection stays up, a refused
 * request changes nothing (the previous memory table still serves I/O),
 * and afterwards a fresh front end does I/O with the process back at its
 * fd / memfd-mapping baseline.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"
#include "vt.h"

VT_MAIN

#define NQ    2
#define QSIZE 1024 /* echo's max_queue_size */

static int req(struct vhuf *f, uint32_t r, const void *p, uint32_t size, const int *fds,
               unsigned nfds)
{
	return vhuf_request(f, r, p, size, fds, nfds, true, NULL);
}

#define NACK(expr)                                                                                 \
	do {                                                                                       \
		int r_ = (expr);                                                                   \
		if (!is_nack(r_)) {                                                                \
			fprintf(stderr, "# %s:%d: expected a refusal, got %d\n", __FILE__,         \
			        __LINE__, r_);                                                     \
			vt_failed_checks++;                                                        \
		}                                                                                  \
	} while (0)
#define ACK(expr) VT_EQ((expr), 0)

typedef void (*body_fn)(struct henv *h, struct vhuf *f);

static void run(body_fn body)
{
	struct henv h;
	struct vhuf *f;

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	f = h_open(&h);
	VT_CHECK(f != NULL);
	if (f) {
		VT_EQ(vhuf_queue_setup(f, 0, 64), 0);
		body(&h, f);
		/* Whatever was refused, the connection still works. */
		uint64_t v;
		VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0);
	}
	h_close(&h, f);
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}

static int state(struct vhuf *f, uint32_t r, uint32_t idx, uint32_t num)
{
	struct vhu_vring_state s = {idx, num};

	return req(f, r, &s, sizeof(s), NULL, 0);
}

/* ---- ring indexes and sizes ------------------------------------------- */

static void b_vring_state(struct henv *h, struct vhuf *f)
{
	static const uint32_t bad_idx[] = {NQ, 255, 256, 0x10000, UINT32_MAX};
	static const uint32_t bad_num[] = {0, 3, QSIZE + 1, 2 * QSIZE, 0x10000, UINT32_MAX};

	ACK(state(f, VHU_REQ_SET_VRING_NUM, NQ - 1, 1));
	ACK(state(f, VHU_REQ_SET_VRING_NUM, NQ - 1, QSIZE));
	for (unsigned i = 0; i < sizeof(bad_idx) / 4; i++) {
		NACK(state(f, VHU_REQ_SET_VRING_NUM, bad_idx[i], 64));
		NACK(state(f, VHU_REQ_SET_VRING_BASE, bad_idx[i], 0));
		NACK(state(f, VHU_REQ_SET_VRING_ENABLE, bad_idx[i], 1));
		NACK(state(f, VHU_REQ_VRING_KICK, bad_idx[i], 0));
	}
	for (unsigned i = 0; i < sizeof(bad_num) / 4; i++)
		NACK(state(f, VHU_REQ_SET_VRING_NUM, NQ - 1, bad_num[i]));
	ACK(state(f, VHU_REQ_SET_VRING_BASE, NQ - 1, 0xffff));
	NACK(state(f, VHU_REQ_SET_VRING_BASE, NQ - 1, 0x10000));
	NACK(state(f, VHU_REQ_SET_VRING_BASE, NQ - 1, UINT32_MAX));
	NACK(state(f, VHU_REQ_SET_VRING_ENABLE, NQ - 1, 2));
	NACK(state(f, VHU_REQ_SET_VRING_ENABLE, NQ - 1, UINT32_MAX));
	/* A running ring cannot be resized or rebased. */
	NACK(state(f, VHU_REQ_SET_VRING_NUM, 0, 32));
	NACK(state(f, VHU_REQ_SET_VRING_BASE, 0, 5));
	ACK(state(f, VHU_REQ_SET_VRING_BASE, NQ - 1, 0));
	VT_EQ(fe_io(f, 0, 20), 0);
}
VT_CASE(limits_vring_state)
{
	run(b_vring_state);
}

static void b_vring_get_base(struct henv *h, struct vhuf *f)
{
	struct vhu_vring_state s = {NQ, 0};
	struct vhu_msg *r = calloc(1, sizeof(*r));

	VT_REQUIRE(r);
	/* Refused GET_VRING_BASE: an empty reply, the connection stays. */
	VT_EQ(vhuf_request(f, VHU_REQ_GET_VRING_BASE, &s, sizeof(s), NULL, 0, false, r), 0);
	VT_EQ(r->hdr.size, 0);
	s.index = UINT32_MAX;
	VT_EQ(vhuf_request(f, VHU_REQ_GET_VRING_BASE, &s, sizeof(s), NULL, 0, false, r), 0);
	VT_EQ(r->hdr.size, 0);
	free(r);
}
VT_CASE(limits_get_vring_base)
{
	run(b_vring_get_base);
}

static void b_vring_addr(struct henv *h, struct vhuf *f)
{
	struct vhu_vring_addr a = {.index = NQ};

	NACK(req(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0));
	a.index = UINT32_MAX;
	NACK(req(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0));
	a.index = NQ - 1;
	a.flags = 2;
	NACK(req(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0));
	a.flags = UINT32_MAX;
	NACK(req(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0));
	/* Addresses at the top of the address space: accepted while stopped
	 * (checked at start), the start then fails. */
	a.flags = 0;
	a.desc_user_addr = a.avail_user_addr = a.used_user_addr = UINT64_MAX - 15;
	ACK(state(f, VHU_REQ_SET_VRING_NUM, NQ - 1, 64));
	ACK(req(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0));
	{
		int fd = h_eventfd();
		uint64_t v = NQ - 1;

		NACK(req(f, VHU_REQ_SET_VRING_KICK, &v, 8, &fd, 1));
		close(fd);
	}
	VT_EQ(fe_io(f, 0, 20), 0);
}
VT_CASE(limits_vring_addr)
{
	run(b_vring_addr);
}

static void b_vring_fds(struct henv *h, struct vhuf *f)
{
	static const uint64_t bad[] = {NQ, 0xff, (1u << 9) | 1, 1ull << 32, UINT64_MAX};
	uint32_t reqs[] = {VHU_REQ_SET_VRING_KICK, VHU_REQ_SET_VRING_CALL, VHU_REQ_SET_VRING_ERR};
	int fd = h_eventfd();

	VT_REQUIRE(fd >= 0);
	for (unsigned r = 0; r < 3; r++) {
		uint64_t v;

		for (unsigned i = 0; i < sizeof(bad) / 8; i++)
			NACK(req(f, reqs[r], &bad[i], 8, &fd, 1));
		v = (NQ - 1) | VHU_VRING_NOFD_MASK;
		NACK(req(f, reqs[r], &v, 8, &fd, 1)); /* fd with the no-fd flag */
		v = NQ - 1;
		NACK(req(f, reqs[r], &v, 8, NULL, 0)); /* no fd without the flag */
		if (reqs[r] != VHU_REQ_SET_VRING_KICK) {
			v = (NQ - 1) | VHU_VRING_NOFD_MASK;
			ACK(req(f, reqs[r], &v, 8, NULL, 0));
		}
	}
	close(fd);
	VT_EQ(fe_io(f, 0, 20), 0);
}
VT_CASE(limits_vring_fds)
{
	run(b_vring_fds);
}

/* ---- memory ------------------------------------------------------------ */

static int table(struct vhuf *f, uint32_t n, const struct vhu_mem_region_desc *d, const int *fds,
                 unsigned nfds, uint32_t size)
{
	struct vhu_mem_table_msg t = {.nregions = n};

	memcpy(t.regions, d, (n < 8 ? n : 8) * sizeof(*d));
	return req(f, VHU_REQ_SET_MEM_TABLE, &t, size, fds, nfds);
}

static void b_mem_table(struct henv *h, struct vhuf *f)
{
	struct vhu_mem_region_desc d[8];
	int fds[8];
	const uint32_t one = 8 + sizeof(d[0]);

	for (unsigned i = 0; i < 8; i++) {
		fds[i] = h_memfd(8192);
		VT_REQUIRE(fds[i] >= 0);
		d[i] = (struct vhu_mem_region_desc){(1ull << 40) + i * 8192, 8192,
		                                    (1ull << 44) + i * 8192, 0};
	}
	/* Past the limits: each refused. */
	NACK(table(f, 9, d, fds, 8, 8 + 8 * sizeof(d[0])));
	NACK(table(f, UINT32_MAX, d, fds, 1, one));
	NACK(table(f, 2, d, fds, 1, 8 + 2 * sizeof(d[0]))); /* fds < nregions */
	NACK(table(f, 1, d, fds, 2, one));                  /* fds > nregions */
	NACK(table(f, 1, d, fds, 1, one + 1));              /* size mismatch */
	struct vhu_mem_region_desc bad[] = {
	    {UINT64_MAX - 4095, 8192, 1ull << 44, 0}, /* gpa wraps */
	    {0, 8192, UINT64_MAX - 4095, 0},          /* uva wraps */
	    {0, 0, 1ull << 44, 0},                    /* empty */
	    {0, 8193, 1ull << 44, 0},                 /* past the end of the fd */
	    {0, 4096, 1ull << 44, 4097},              /* offset + size past the end */
	    {0, 8192, 1ull << 44, UINT64_MAX - 100},  /* offset + size wraps */
	    {0, UINT64_MAX, 1ull << 44, 0},           /* huge */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		NACK(table(f, 1, &bad[i], fds, 1, one));
	/* Overlaps in gpa and in uva. */
	struct vhu_mem_region_desc ov[2] = {{0, 8192, 1ull << 44, 0}, {4096, 8192, 1ull << 45, 0}};
	NACK(table(f, 2, ov, fds, 2, 8 + 2 * sizeof(ov[0])));
	ov[1] = (struct vhu_mem_region_desc){1ull << 30, 8192, (1ull << 44) + 4096, 0};
	NACK(table(f, 2, ov, fds, 2, 8 + 2 * sizeof(ov[0])));
	/* An fd that cannot be mapped. */
	{
		int ev = h_eventfd();

		NACK(table(f, 1, d, &ev, 1, one));
		close(ev);
	}
	/* The refused tables left the real one in place. */
	VT_EQ(fe_io(f, 0, 20), 0);
	/* At the limit: 8 regions is accepted (rings then fail: not in it). */
	ACK(table(f, 8, d, fds, 8, 8 + 8 * sizeof(d[0])));
	for (unsigned i = 0; i < 8; i++)
		close(fds[i]);
	ACK(vhuf_send_mem_table(f));
}
VT_CASE(limits_mem_table)
{
	run(b_mem_table);
}

static void b_mem_slots(struct henv *h, struct vhuf *f)
{
	struct vhu_mem_single_msg m = {0};
	int fd = h_memfd(8192), ev = h_eventfd();

	VT_REQUIRE(fd >= 0 && ev >= 0);
	m.region = (struct vhu_mem_region_desc){UINT64_MAX - 4095, 8192, 1ull << 46, 0};
	NACK(req(f, VHU_REQ_ADD_MEM_REGION, &m, sizeof(m), &fd, 1));
	m.region = (struct vhu_mem_region_desc){1ull << 41, 8192, 1ull << 46, 0};
	NACK(req(f, VHU_REQ_ADD_MEM_REGION, &m, sizeof(m), &ev, 1));
	ACK(req(f, VHU_REQ_ADD_MEM_REGION, &m, sizeof(m), &fd, 1));
	/* The exact same region again is counted (QEMU adds it once per
	 * vhost device on the socket); a partial overlap is refused. */
	ACK(req(f, VHU_REQ_ADD_MEM_REGION, &m, sizeof(m), &fd, 1));
	m.region.guest_phys_addr += 4096;
	m.region.userspace_addr += 1ull << 20;
	NACK(req(f, VHU_REQ_ADD_MEM_REGION, &m, sizeof(m), &fd, 1)); /* gpa overlap */
	m.region.guest_phys_addr -= 4096;
	m.region.memory_size = 4096; /* no region of that size */
	NACK(req(f, VHU_REQ_REM_MEM_REGION, &m, sizeof(m), NULL, 0));
	m.region.memory_size = 8192;
	m.region.userspace_addr = 0; /* QEMU sends uva 0: matched by gpa + size */
	ACK(req(f, VHU_REQ_REM_MEM_REGION, &m, sizeof(m), NULL, 0));
	ACK(req(f, VHU_REQ_REM_MEM_REGION, &m, sizeof(m), NULL, 0));
	NACK(req(f, VHU_REQ_REM_MEM_REGION, &m, sizeof(m), NULL, 0));
	close(fd);
	close(ev);
	VT_EQ(fe_io(f, 0, 20), 0);
}
VT_CASE(limits_mem_slots)
{
	run(b_mem_slots);
}

/* SET_LOG_BASE answers with a u64 (0 = success) when LOG_SHMFD is on. */
static int log_base(struct vhuf *f, const struct vhu_log_msg *m, int fd)
{
	struct vhu_msg *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	ret = vhuf_request(f, VHU_REQ_SET_LOG_BASE, m, sizeof(*m), &fd, 1, true, r);
	if (ret == 0)
		ret = r->hdr.size != 8 ? -EPROTO : r->payload.u64 ? -EINVAL : 0;
	vhu_msg_close_fds(r);
	free(r);
	return ret;
}

static void b_log(struct henv *h, struct vhuf *f)
{
	struct vhu_log_msg bad[] = {
	    {0, 0}, {8192, 1}, {UINT64_MAX, 0}, {4096, UINT64_MAX - 100}, {1ull << 40, 0},
	};
	int fd = h_memfd(8192), ev = h_eventfd();
	struct vhu_log_msg ok = {8192, 0};

	VT_REQUIRE(fd >= 0 && ev >= 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		NACK(log_base(f, &bad[i], fd));
	NACK(log_base(f, &ok, ev));
	ACK(log_base(f, &ok, fd));
	close(fd);
	close(ev);
	VT_EQ(fe_io(f, 0, 20), 0);
}
VT_CASE(limits_log_base)
{
	run(b_log);
}

/* ---- config, status, features, inflight, state ------------------------ */

/* GET_CONFIG is refused with an empty reply, SET_CONFIG with a nack. */
static int config(struct vhuf *f, uint32_t r, uint32_t off, uint32_t size, uint32_t psize)
{
	union {
		struct vhu_config_msg c;
		uint8_t raw[VHU_MAX_PAYLOAD];
	} u = {.c = {.offset = off, .size = size}};
	struct vhu_msg *m;
	int ret;

	if (r == VHU_REQ_SET_CONFIG)
		return req(f, r, &u, psize, NULL, 0);
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	ret = vhuf_request(f, r, &u, psize, NULL, 0, false, m);
	if (ret == 0 && m->hdr.size == 0)
		ret = -EINVAL;
	free(m);
	return ret;
}

static void b_config(struct henv *h, struct vhuf *f)
{
	uint32_t reqs[] = {VHU_REQ_SET_CONFIG, VHU_REQ_GET_CONFIG};
	uint8_t buf[16];

	for (unsigned i = 0; i < 2; i++) {
		uint32_t r = reqs[i];

		NACK(config(f, r, 0, 0, VHU_CONFIG_HDR_SIZE));
		NACK(config(f, r, 0, 257, VHU_CONFIG_HDR_SIZE + 257));
		NACK(config(f, r, 253, 4, VHU_CONFIG_HDR_SIZE + 4));
		NACK(config(f, r, UINT32_MAX, 1, VHU_CONFIG_HDR_SIZE + 1));
		NACK(config(f, r, UINT32_MAX - 2, 4, VHU_CONFIG_HDR_SIZE + 4));
		NACK(config(f, r, 0, 8, VHU_CONFIG_HDR_SIZE + 4)); /* size != payload */
		NACK(config(f, r, 0, UINT32_MAX, VHU_CONFIG_HDR_SIZE + 4));
		NACK(config(f, r, 0, 4, VHU_CONFIG_HDR_SIZE - 1));
	}
	/* At the limit: the echo device's 64 bytes. */
	ACK(config(f, VHU_REQ_SET_CONFIG, 60, 4, VHU_CONFIG_HDR_SIZE + 4));
	VT_EQ(vhuf_get_config(f, 60, buf, 4), 0);
	NACK(config(f, VHU_REQ_SET_CONFIG, 61, 4, VHU_CONFIG_HDR_SIZE + 4));
}
VT_CASE(limits_config)
{
	run(b_config);
}

static void b_scalars(struct henv *h, struct vhuf *f)
{
	uint64_t v = 0x100;

	NACK(req(f, VHU_REQ_SET_STATUS, &v, 8, NULL, 0));
	v = UINT64_MAX;
	NACK(req(f, VHU_REQ_SET_STATUS, &v, 8, NULL, 0));
	v = 0xff;
	ACK(req(f, VHU_REQ_SET_STATUS, &v, 8, NULL, 0));
	v = UINT64_MAX;
	NACK(req(f, VHU_REQ_SET_FEATURES, &v, 8, NULL, 0));
	NACK(req(f, VHU_REQ_SET_PROTOCOL_FEATURES, &v, 8, NULL, 0));
	VT_EQ(fe_io(f, 0, 10), 0);
}
VT_CASE(limits_status_features)
{
	run(b_scalars);
}

/* Zeroed including the tail padding (sent as payload bytes). */
static struct vhu_inflight_msg inflight(uint64_t size, uint64_t off, uint16_t nq, uint16_t qs)
{
	struct vhu_inflight_msg m;

	memset(&m, 0, sizeof(m));
	m.mmap_size = size;
	m.mmap_offset = off;
	m.num_queues = nq;
	m.queue_size = qs;
	return m;
}

static void b_inflight(struct henv *h, struct vhuf *f)
{
	struct {
		uint16_t nq, qs;
	} bad[] = {{0, 64}, {NQ + 1, 64}, {0xffff, 64}, {1, 0}, {1, QSIZE + 1}, {1, 0xffff}};
	struct vhu_msg *r = calloc(1, sizeof(*r));
	struct vhu_inflight_msg m = inflight(0, 0, 0, 0);
	int fd = h_memfd(1 << 20), ev = h_eventfd();
	uint32_t base;

	VT_REQUIRE(r && fd >= 0 && ev >= 0);
	/* Inflight requests are refused while a ring runs: stop it first. */
	VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = inflight(0, 0, bad[i].nq, bad[i].qs);
		VT_EQ(vhuf_request(f, VHU_REQ_GET_INFLIGHT_FD, &m, sizeof(m), NULL, 0, false, r),
		      0);
		VT_CHECK(r->payload.inflight.mmap_size == 0 && r->nfds == 0);
		vhu_msg_close_fds(r);
		m.mmap_size = 1 << 20;
		NACK(req(f, VHU_REQ_SET_INFLIGHT_FD, &m, sizeof(m), &fd, 1));
	}
	struct vhu_inflight_msg sbad[] = {
	    inflight(1024, 0, NQ, 64),          /* smaller than the areas */
	    inflight(1 << 20, 1, NQ, 64),       /* unaligned offset */
	    inflight(1 << 20, 1 << 20, NQ, 64), /* past the end of the fd */
	    inflight(UINT64_MAX, 4096, NQ, 64), /* wraps */
	    inflight(1 << 20, UINT64_MAX & ~4095ull, NQ, 64),
	};
	for (unsigned i = 0; i < sizeof(sbad) / sizeof(sbad[0]); i++)
		NACK(req(f, VHU_REQ_SET_INFLIGHT_FD, &sbad[i], sizeof(sbad[i]), &fd, 1));
	m = inflight(1 << 20, 0, NQ, 64);
	NACK(req(f, VHU_REQ_SET_INFLIGHT_FD, &m, sizeof(m), &ev, 1));
	ACK(req(f, VHU_REQ_SET_INFLIGHT_FD, &m, sizeof(m), &fd, 1));
	m = inflight(0, 0, NQ, QSIZE);
	VT_EQ(vhuf_request(f, VHU_REQ_GET_INFLIGHT_FD, &m, sizeof(m), NULL, 0, false, r), 0);
	VT_CHECK(r->payload.inflight.mmap_size > 0 && r->nfds == 1);
	vhu_msg_close_fds(r);
	close(fd);
	close(ev);
	free(r);
	VT_EQ(vhuf_queue_setup(f, 0, 64), 0);
}
VT_CASE(limits_inflight)
{
	run(b_inflight);
}

static void b_state(struct henv *h, struct vhuf *f)
{
	struct vhu_device_state_msg bad[] = {{2, 0}, {0, 1}, {UINT32_MAX, UINT32_MAX}};
	struct vhu_msg *r = calloc(1, sizeof(*r));
	int fd = h_eventfd();

	VT_REQUIRE(r && fd >= 0);
	for (unsigned i = 0; i < 3; i++) {
		VT_EQ(vhuf_request(f, VHU_REQ_SET_DEVICE_STATE_FD, &bad[i], sizeof(bad[i]), &fd, 1,
		                   false, r),
		      0);
		VT_CHECK(r->hdr.size == 8 && (r->payload.u64 & 0xff) != 0 && r->nfds == 0);
		vhu_msg_close_fds(r);
	}
	close(fd);
	free(r);
}
VT_CASE(limits_device_state)
{
	run(b_state);
}
