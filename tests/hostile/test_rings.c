/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Malformed rings from a hostile guest, beyond the core suite's set
 * (tests/core/test_rings.c covers loops, next past the ring, buffers
 * outside memory, nested indirect, bad indirect length, indirect loops,
 * readable-after-writable, avail index jumps and heads past the ring).
 * Here: indirect without the feature, indirect with NEXT, indirect table
 * outside memory or crossing a region end, lengths that wrap, a chain
 * longer than the ring, indirect tables of zero or too many entries, and a
 * ring whose memory is removed by a memory-table change.  (Rings whose
 * used part overlaps the avail part are bug B1 in /work/h7-bugs.md: the
 * device loop never ends; covered by fuzz/regress/rng-self-feeding-ring.)
 *
 * For each: only the guilty ring fails, its error eventfd fires, the other
 * queue keeps doing I/O, the failed ring serves again once the front end
 * stops and sets it up afresh, and fds / memfd mappings end at baseline.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"
#include "vt.h"

VT_MAIN

#define NQ 2

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4

struct avail {
	uint16_t flags, idx, ring[];
};

typedef void (*bad_fn)(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads,
                       unsigned *nheads);

static void publish(struct vhuf *f, unsigned q, const uint16_t *heads, unsigned n)
{
	struct avail *a = vhuf_ring_avail(f, q);
	uint16_t idx = a->idx;

	for (unsigned i = 0; i < n; i++)
		a->ring[(idx + i) % 64] = heads[i];
	__atomic_store_n(&a->idx, (uint16_t)(idx + n), __ATOMIC_RELEASE);
	vhuf_kick_force(f, q);
}

static void hostile(bad_fn make, uint64_t features)
{
	struct henv h;
	struct vhuf *f;
	uint16_t heads[4] = {0};
	unsigned nheads = 1;
	uint32_t base;

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	f = fe_open(&h.t, NULL, features, PF_ALL);
	VT_REQUIRE(f);
	VT_EQ(vhuf_queue_setup(f, 0, 64), 0);
	VT_EQ(vhuf_queue_setup(f, 1, 64), 0);
	VT_EQ(fe_io(f, 1, 10), 0);
	make(f, vhuf_ring_desc(f, 0), vhuf_alloc(f, 16384, 4096), heads, &nheads);
	publish(f, 0, heads, nheads);
	VT_CHECK(wait_event(vhuf_err_fd(f, 0), 3000));
	VT_CHECK(vhu_vring_failed(vhu_daemon_vring(h.t.d, 0)));
	VT_CHECK(!vhu_vring_failed(vhu_daemon_vring(h.t.d, 1)));
	VT_EQ(fe_io(f, 1, 30), 0);
	/* Fresh set-up of the failed ring: it serves again. */
	VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
	VT_EQ(vhuf_queue_setup(f, 0, 64), 0);
	VT_CHECK(!vhu_vring_failed(vhu_daemon_vring(h.t.d, 0)));
	VT_EQ(fe_io(f, 0, 10), 0);
	fe_close(&h.t, f);
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}

static void mk_indirect_not_negotiated(struct vhuf *f, struct desc *d, uint64_t buf,
                                       uint16_t *heads, unsigned *n)
{
	struct desc *t = vhuf_ptr(f, buf);

	t[0] = (struct desc){buf + 4096, 16, 0, 0};
	d[0] = (struct desc){buf, 16, D_INDIRECT, 0};
}
VT_CASE(indirect_without_feature)
{
	hostile(mk_indirect_not_negotiated, VHU_BIT(VHU_F_VERSION_1));
}

static void mk_indirect_next(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads,
                             unsigned *n)
{
	struct desc *t = vhuf_ptr(f, buf);

	t[0] = (struct desc){buf + 4096, 16, 0, 0};
	d[0] = (struct desc){buf, 16, D_INDIRECT | D_NEXT, 1};
	d[1] = (struct desc){buf + 4096, 16, D_WRITE, 0};
}
VT_CASE(indirect_with_next)
{
	hostile(mk_indirect_next, F_ALL);
}

static void mk_indirect_outside(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads,
                                unsigned *n)
{
	d[0] = (struct desc){1ull << 50, 64, D_INDIRECT, 0};
}
VT_CASE(indirect_table_outside_memory)
{
	hostile(mk_indirect_outside, F_ALL);
}

/* The table starts in guest memory and runs past its end. */
static void mk_indirect_past_end(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads,
                                 unsigned *n)
{
	struct vhu_mem_region_desc r;
	int fd;

	vhuf_region(f, vhuf_nregions(f) - 1, &r, &fd);
	d[0] = (struct desc){r.guest_phys_addr + r.memory_size - 32, 64, D_INDIRECT, 0};
}
VT_CASE(indirect_table_past_memory_end)
{
	hostile(mk_indirect_past_end, F_ALL);
}

static void mk_indirect_zero(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads,
                             unsigned *n)
{
	d[0] = (struct desc){buf, 0, D_INDIRECT, 0};
}
VT_CASE(indirect_zero_length)
{
	hostile(mk_indirect_zero, F_ALL);
}

static void mk_len_wraps(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads, unsigned *n)
{
	d[0] = (struct desc){UINT64_MAX - 100, 4096, D_WRITE, 0};
}
VT_CASE(buffer_address_wraps)
{
	hostile(mk_len_wraps, F_ALL);
}

static void mk_indirect_buf_wraps(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads,
                                  unsigned *n)
{
	struct desc *t = vhuf_ptr(f, buf);

	t[0] = (struct desc){buf + 4096, 16, 0, 1};
	t[1] = (struct desc){UINT64_MAX, 2, D_WRITE, 0};
	t[0].flags = D_NEXT;
	d[0] = (struct desc){buf, 32, D_INDIRECT, 0};
}
VT_CASE(indirect_buffer_wraps)
{
	hostile(mk_indirect_buf_wraps, F_ALL);
}

/* A direct chain of 65 descriptors on a 64-entry ring (via next links
 * that revisit no index: impossible, so the walker must stop at 64). */
static void mk_too_long(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads, unsigned *n)
{
	for (unsigned i = 0; i < 64; i++)
		d[i] = (struct desc){buf + 16 * i, 16, D_NEXT, (uint16_t)((i + 1) % 64)};
}
VT_CASE(chain_longer_than_ring)
{
	hostile(mk_too_long, F_ALL);
}

/* An indirect table of 32768 + 1 entries (past VHU_MAX_QUEUE_SIZE). */
static void mk_indirect_huge(struct vhuf *f, struct desc *d, uint64_t buf, uint16_t *heads,
                             unsigned *n)
{
	d[0] = (struct desc){buf, 16 * 32769, D_INDIRECT, 0};
}
VT_CASE(indirect_table_too_large)
{
	hostile(mk_indirect_huge, F_ALL);
}

/* The ring's own memory disappears: REM_MEM_REGION of the region holding
 * it (the ring fails on the update; nothing is touched afterwards). */
VT_CASE(ring_memory_removed_under_it)
{
	struct henv h;
	struct vhuf_opts o = {.nregions = 2, .connect_timeout_ms = 3000};
	struct vhu_mem_single_msg m = {0};
	struct vhuf *f;
	int fd;

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	f = fe_open(&h.t, &o, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_EQ(vhuf_queue_setup(f, 0, 64), 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	/* Remove every region: whichever holds ring 0, it is gone. */
	for (unsigned i = 0; i < vhuf_nregions(f); i++) {
		vhuf_region(f, i, &m.region, &fd);
		VT_EQ(vhuf_request(f, VHU_REQ_REM_MEM_REGION, &m, sizeof(m), NULL, 0, true, NULL),
		      0);
	}
	VT_CHECK(vhu_vring_failed(vhu_daemon_vring(h.t.d, 0)));
	VT_CHECK(wait_event(vhuf_err_fd(f, 0), 3000));
	vhuf_kick_force(f, 0);
	fe_close(&h.t, f);
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}
