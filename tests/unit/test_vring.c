/* SPDX-License-Identifier: Apache-2.0 */
/* Split virtqueue: pop/push, indirect, hostile rings, notifications, dirty log. */
#include <pthread.h>

#include "guest.h"

VT_MAIN

#define MEM_GPA  0x100000ull
#define MEM_SIZE (1024 * 1024ull)
#define RING_A   MEM_GPA
#define RING_B   (MEM_GPA + 0x8000)
#define BUF(i)   (MEM_GPA + 0x20000 + 0x1000ull * (i))
#define TABLE    (MEM_GPA + 0x80000)

#define F_BASE  (VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC))
#define F_EVIDX (F_BASE | VHU_BIT(VHU_F_RING_EVENT_IDX))

/* Guest memory with two rings A and B (a bystander) on it. */
struct rig {
	struct guest g;
	struct drv a, b;
	struct vhu_vring va, vb;
	int call, err;
	struct iovec iov[16];
	struct vhu_chain c;
};

static int rig_start_ring(struct rig *r, struct drv *d, struct vhu_vring *vr, uint64_t gpa,
                          uint16_t num, uint64_t features)
{
	drv_init(d, &r->g, gpa, num);
	vhu_vring_init(vr, gpa == RING_A ? 0 : 1, VHU_VRING_PLAIN);
	drv_setup_vring(d, vr);
	return vhu_vring_start(vr, r->g.mem, features);
}

static int rig_init(struct rig *r, uint16_t num, uint64_t features)
{
	memset(r, 0, sizeof(*r));
	if (guest_init(&r->g, MEM_GPA, MEM_SIZE))
		return -1;
	if (rig_start_ring(r, &r->a, &r->va, RING_A, num, features) ||
	    rig_start_ring(r, &r->b, &r->vb, RING_B, num, features))
		return -1;
	r->call = efd();
	r->err = efd();
	r->va.call_fd = r->call;
	r->va.err_fd = r->err;
	r->c.iov = r->iov;
	r->c.iov_max = VHU_ARRAY_SIZE(r->iov);
	return 0;
}

static void rig_fini(struct rig *r)
{
	vhu_vring_destroy(&r->va); /* closes call/err */
	vhu_vring_destroy(&r->vb);
	guest_fini(&r->g);
}

static int pop(struct rig *r)
{
	return vhu_vring_pop(&r->va, &r->c);
}

VT_CASE(direct_chain_pop_push)
{
	struct rig r;
	struct vhu_vring_stats st;
	uint32_t id, len;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	VT_EQ(pop(&r), 0); /* empty */
	drv_desc(&r.a, 3, BUF(0), 100, TD_NEXT, 5);
	drv_desc(&r.a, 5, BUF(1), 200, TD_NEXT, 1);
	drv_desc(&r.a, 1, BUF(2), 300, TD_WRITE, 0);
	memcpy(gptr(&r.g, BUF(0)), "hello", 5);
	drv_publish(&r.a, 3);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 3);
	VT_EQ(r.c.ndesc, 3);
	VT_EQ(r.c.out_num, 2);
	VT_EQ(r.c.in_num, 1);
	VT_EQ(r.c.out_len, 300);
	VT_EQ(r.c.in_len, 300);
	VT_CHECK(r.iov[0].iov_base == lptr(&r.g, BUF(0)));
	VT_EQ(r.iov[0].iov_len, 100);
	VT_EQ(memcmp(r.iov[0].iov_base, "hello", 5), 0);
	VT_CHECK(r.iov[2].iov_base == lptr(&r.g, BUF(2)));
	VT_EQ(r.iov[2].iov_len, 300);
	VT_EQ(pop(&r), 0);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 42), 0);
	VT_EQ(drv_used_idx(&r.a), 1);
	drv_used_elem(&r.a, 0, &id, &len);
	VT_EQ(id, 3);
	VT_EQ(len, 42);
	/* written is clipped to the writable length */
	drv_publish(&r.a, 3);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 5000), 0);
	drv_used_elem(&r.a, 1, &id, &len);
	VT_EQ(len, 300);
	vhu_vring_get_stats(&r.va, &st);
	VT_EQ(st.requests, 2);
	VT_EQ(st.errors, 0);
	VT_CHECK(!vhu_vring_failed(&r.va));
	rig_fini(&r);
}

VT_CASE(wraps_around_the_ring)
{
	struct rig r;
	uint32_t id, len;

	VT_REQUIRE(rig_init(&r, 4, F_BASE) == 0);
	/* avail and used indexes wrap at 2^16 (ring positions at num) */
	r.a.avail_idx = 65533;
	__atomic_store_n(&r.a.avail[1], 65533, __ATOMIC_RELEASE);
	*(uint16_t *)(r.a.used + 2) = 65533;
	r.va.base = 65533;
	VT_REQUIRE(vhu_vring_start(&r.va, r.g.mem, F_BASE) == 0);
	for (int i = 0; i < 10; i++) {
		uint16_t h = (uint16_t)(i % 4);
		drv_desc(&r.a, h, BUF(h), 64, TD_WRITE, 0);
		drv_publish(&r.a, h);
		VT_EQ(pop(&r), 1);
		VT_EQ(r.c.id, h);
		VT_EQ(vhu_vring_push(&r.va, &r.c, (uint32_t)i), 0);
		drv_used_elem(&r.a, (uint16_t)(65533 + i), &id, &len);
		VT_EQ(id, h);
		VT_EQ(len, i);
	}
	VT_EQ(drv_used_idx(&r.a), (uint16_t)(65533 + 10));
	VT_EQ(vhu_vring_stop(&r.va), (uint16_t)(65533 + 10));
	rig_fini(&r);
}

VT_CASE(indirect_chain)
{
	struct rig r;
	struct tdesc *t;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	t = gptr(&r.g, TABLE);
	t[0] = (struct tdesc){BUF(0), 16, TD_NEXT, 2};
	t[2] = (struct tdesc){BUF(1), 512, TD_WRITE | TD_NEXT, 1};
	t[1] = (struct tdesc){BUF(2), 4, TD_WRITE, 0};
	drv_desc(&r.a, 0, TABLE, 3 * 16, TD_INDIRECT, 0);
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 0);
	VT_EQ(r.c.out_num, 1);
	VT_EQ(r.c.in_num, 2);
	VT_EQ(r.c.out_len, 16);
	VT_EQ(r.c.in_len, 516);
	VT_EQ(r.c.ndesc, 4);
	VT_CHECK(r.iov[1].iov_base == lptr(&r.g, BUF(1)));
	VT_CHECK(r.iov[2].iov_base == lptr(&r.g, BUF(2)));
	/* direct descriptors may precede the indirect one */
	drv_desc(&r.a, 4, BUF(5), 8, TD_NEXT, 6);
	t[16] = (struct tdesc){BUF(6), 8, 0, 0};
	drv_desc(&r.a, 6, TABLE + 256, 16, TD_INDIRECT, 0);
	drv_publish(&r.a, 4);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 4);
	VT_EQ(r.c.out_num, 2);
	VT_EQ(r.c.in_num, 0);
	VT_EQ(r.c.out_len, 16);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	rig_fini(&r);
}

VT_CASE(buffer_spanning_two_regions)
{
	struct rig r;
	uint64_t top = 0x200000; /* regions [0x100000,+1M) and [0x200000,+1M) */

	memset(&r, 0, sizeof(r));
	VT_REQUIRE(guest_init2(&r.g, MEM_GPA, top, 2 * MEM_SIZE) == 0);
	VT_REQUIRE(rig_start_ring(&r, &r.a, &r.va, RING_A, 8, F_BASE) == 0);
	r.c.iov = r.iov;
	r.c.iov_max = 16;
	drv_desc(&r.a, 0, top - 100, 300, TD_WRITE, 0);
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.in_num, 2);
	VT_CHECK(r.iov[0].iov_base == lptr(&r.g, top - 100));
	VT_EQ(r.iov[0].iov_len, 100);
	VT_CHECK(r.iov[1].iov_base == lptr(&r.g, top));
	VT_EQ(r.iov[1].iov_len, 200);
	/* with one iovec only: -E2BIG, chain consumed, push back with 0 */
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	drv_publish(&r.a, 0);
	r.c.iov_max = 1;
	VT_EQ(pop(&r), -E2BIG);
	VT_EQ(r.c.id, 0);
	VT_CHECK(!vhu_vring_failed(&r.va));
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	vhu_vring_destroy(&r.va);
	guest_fini(&r.g);
}

VT_CASE(e2big_consumes_chain)
{
	struct rig r;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	for (uint16_t i = 0; i < 4; i++)
		drv_desc(&r.a, i, BUF(i), 10, i < 3 ? TD_NEXT : 0, (uint16_t)(i + 1));
	drv_publish(&r.a, 0);
	r.c.iov_max = 2;
	VT_EQ(pop(&r), -E2BIG);
	VT_EQ(r.c.id, 0);
	VT_EQ(pop(&r), 0); /* consumed */
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	/* still validated: a bad descriptor past the iovec limit fails */
	drv_desc(&r.a, 3, 0x10, 10, 0, 0); /* gpa 0x10 is not guest memory */
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), -EIO);
	/* no iovecs at all */
	rig_fini(&r);
	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	drv_desc(&r.a, 0, BUF(0), 10, 0, 0);
	drv_publish(&r.a, 0);
	r.c.iov = NULL;
	r.c.iov_max = 0;
	VT_EQ(pop(&r), -E2BIG);
	rig_fini(&r);
}

VT_CASE(zero_length_descriptor_is_skipped)
{
	struct rig r;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	drv_desc(&r.a, 0, BUF(0), 0, TD_NEXT, 1);
	drv_desc(&r.a, 1, BUF(1), 8, TD_WRITE, 0);
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.out_num, 0);
	VT_EQ(r.c.in_num, 1);
	VT_EQ(r.c.ndesc, 2);
	rig_fini(&r);
}

/* ---- hostile rings ------------------------------------------------------------- */

struct bad {
	const char *name;
	void (*make)(struct drv *d);
	int good_pops; /* pops that succeed before the failing one */
};

static struct tdesc *tbl(struct drv *d)
{
	return gptr(d->g, TABLE);
}

static void b_head_oob(struct drv *d)
{
	drv_publish(d, d->num);
}
static void b_next_oob(struct drv *d)
{
	drv_desc(d, 0, BUF(0), 8, TD_NEXT, d->num);
	drv_publish(d, 0);
}
static void b_loop(struct drv *d)
{
	drv_desc(d, 0, BUF(0), 8, TD_NEXT, 1);
	drv_desc(d, 1, BUF(1), 8, TD_NEXT, 0);
	drv_publish(d, 0);
}
static void b_self_loop(struct drv *d)
{
	drv_desc(d, 2, BUF(0), 8, TD_NEXT, 2);
	drv_publish(d, 2);
}
static void b_nested_indirect(struct drv *d)
{
	tbl(d)[0] = (struct tdesc){TABLE + 256, 16, TD_INDIRECT, 0};
	drv_desc(d, 0, TABLE, 16, TD_INDIRECT, 0);
	drv_publish(d, 0);
}
static void b_indirect_len(struct drv *d)
{
	tbl(d)[0] = (struct tdesc){BUF(0), 16, 0, 0};
	drv_desc(d, 0, TABLE, 24, TD_INDIRECT, 0);
	drv_publish(d, 0);
}
static void b_indirect_len0(struct drv *d)
{
	drv_desc(d, 0, TABLE, 0, TD_INDIRECT, 0);
	drv_publish(d, 0);
}
static void b_indirect_huge(struct drv *d)
{
	drv_desc(d, 0, TABLE, 16 * 32769, TD_INDIRECT, 0);
	drv_publish(d, 0);
}
static void b_indirect_outside(struct drv *d)
{
	drv_desc(d, 0, MEM_GPA + MEM_SIZE - 16, 32, TD_INDIRECT, 0);
	drv_publish(d, 0);
}
static void b_indirect_next(struct drv *d)
{
	tbl(d)[0] = (struct tdesc){BUF(0), 16, 0, 0};
	drv_desc(d, 0, TABLE, 16, TD_INDIRECT | TD_NEXT, 1);
	drv_desc(d, 1, BUF(1), 16, 0, 0);
	drv_publish(d, 0);
}
static void b_indirect_loop(struct drv *d)
{
	tbl(d)[0] = (struct tdesc){BUF(0), 16, TD_NEXT, 1};
	tbl(d)[1] = (struct tdesc){BUF(1), 16, TD_NEXT, 0};
	drv_desc(d, 0, TABLE, 32, TD_INDIRECT, 0);
	drv_publish(d, 0);
}
static void b_indirect_next_oob(struct drv *d)
{
	tbl(d)[0] = (struct tdesc){BUF(0), 16, TD_NEXT, 2};
	drv_desc(d, 0, TABLE, 32, TD_INDIRECT, 0);
	drv_publish(d, 0);
}
static void b_buf_outside(struct drv *d)
{
	drv_desc(d, 0, 0x1000, 8, 0, 0);
	drv_publish(d, 0);
}
static void b_buf_straddles_end(struct drv *d)
{
	drv_desc(d, 0, MEM_GPA + MEM_SIZE - 10, 100, TD_WRITE, 0);
	drv_publish(d, 0);
}
static void b_len_wrap(struct drv *d)
{
	drv_desc(d, 0, UINT64_MAX - 10, 100, 0, 0);
	drv_publish(d, 0);
}
static void b_read_after_write(struct drv *d)
{
	drv_desc(d, 0, BUF(0), 8, TD_WRITE | TD_NEXT, 1);
	drv_desc(d, 1, BUF(1), 8, 0, 0);
	drv_publish(d, 0);
}
static void b_read_after_write_indirect(struct drv *d)
{
	tbl(d)[0] = (struct tdesc){BUF(0), 16, TD_WRITE | TD_NEXT, 1};
	tbl(d)[1] = (struct tdesc){BUF(1), 16, 0, 0};
	drv_desc(d, 0, TABLE, 32, TD_INDIRECT, 0);
	drv_publish(d, 0);
}
static void b_avail_jump(struct drv *d)
{
	drv_desc(d, 0, BUF(0), 8, 0, 0);
	d->avail_idx = (uint16_t)(d->num + 1);
	__atomic_store_n(&d->avail[1], d->avail_idx, __ATOMIC_RELEASE);
}
static void b_avail_backwards(struct drv *d)
{
	d->avail_idx = 0xffff; /* "moved" by 65535 */
	__atomic_store_n(&d->avail[1], d->avail_idx, __ATOMIC_RELEASE);
}
static void b_head_in_use(struct drv *d)
{
	drv_desc(d, 0, BUF(0), 8, 0, 0);
	drv_publish(d, 0);
	drv_publish(d, 0);
}

static const struct bad bads[] = {
    {"head_oob", b_head_oob, 0},
    {"next_oob", b_next_oob, 0},
    {"loop", b_loop, 0},
    {"self_loop", b_self_loop, 0},
    {"nested_indirect", b_nested_indirect, 0},
    {"indirect_len", b_indirect_len, 0},
    {"indirect_len0", b_indirect_len0, 0},
    {"indirect_huge", b_indirect_huge, 0},
    {"indirect_outside", b_indirect_outside, 0},
    {"indirect_next", b_indirect_next, 0},
    {"indirect_loop", b_indirect_loop, 0},
    {"indirect_next_oob", b_indirect_next_oob, 0},
    {"buf_outside", b_buf_outside, 0},
    {"buf_straddles_end", b_buf_straddles_end, 0},
    {"len_wrap", b_len_wrap, 0},
    {"read_after_write", b_read_after_write, 0},
    {"read_after_write_indirect", b_read_after_write_indirect, 0},
    {"avail_jump", b_avail_jump, 0},
    {"avail_backwards", b_avail_backwards, 0},
    {"head_in_use", b_head_in_use, 1},
};

/* burst: two good chains ahead of the bad one, all taken by one
 * vhu_vring_pop_burst(), which must fail as a whole. */
static void check_bad(const struct bad *b, uint64_t features, bool burst)
{
	struct rig r;
	struct vhu_vring_stats st;
	struct iovec iov[4][4];
	struct vhu_chain cs[4], *cp[4];
	int ret;

	fprintf(stderr, "# malformed: %s%s\n", b->name, burst ? " (burst)" : "");
	VT_REQUIRE(rig_init(&r, 8, features) == 0);
	for (unsigned i = 0; i < 4; i++) {
		cs[i] = (struct vhu_chain){.iov = iov[i], .iov_max = 4};
		cp[i] = &cs[i];
	}
	if (burst) {
		drv_desc(&r.a, 5, BUF(5), 8, 0, 0);
		drv_desc(&r.a, 6, BUF(6), 8, TD_WRITE, 0);
		drv_publish(&r.a, 5);
		drv_publish(&r.a, 6);
	}
	b->make(&r.a);
	for (int i = 0; i < b->good_pops && !burst; i++)
		VT_EQ(pop(&r), 1);
	VT_EQ(efd_read(r.err), 0);
	ret = burst ? vhu_vring_pop_burst(&r.va, cp, 4) : pop(&r);
	VT_EQ(ret, -EIO);
	VT_CHECK(vhu_vring_failed(&r.va));
	VT_EQ(efd_read(r.err), 1); /* error eventfd signalled */
	VT_EQ(pop(&r), -EIO);      /* stays failed */
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), -EIO);
	VT_EQ(vhu_vring_notify(&r.va), 0);
	VT_CHECK(!vhu_vring_has_avail(&r.va));
	vhu_vring_fail(&r.va, "again");
	VT_EQ(efd_read(r.err), 0); /* signalled once */
	vhu_vring_get_stats(&r.va, &st);
	VT_EQ(st.errors, 1);
	/* the other ring is untouched */
	drv_desc(&r.b, 0, BUF(7), 8, 0, 0);
	drv_publish(&r.b, 0);
	VT_EQ(vhu_vring_pop(&r.vb, &r.c), 1);
	VT_CHECK(!vhu_vring_failed(&r.vb));
	/* a reset clears the failure */
	vhu_vring_reset(&r.va);
	VT_CHECK(!vhu_vring_failed(&r.va));
	VT_EQ(pop(&r), 0);
	rig_fini(&r);
}

VT_CASE(malformed_rings_fail_only_their_ring)
{
	vhu_log_set_level(VHU_LOG_ERROR + 0);
	for (unsigned i = 0; i < VHU_ARRAY_SIZE(bads); i++)
		check_bad(&bads[i], F_BASE, false);
	/* same with EVENT_IDX */
	for (unsigned i = 0; i < VHU_ARRAY_SIZE(bads); i++)
		check_bad(&bads[i], F_EVIDX, false);
	/* behind good chains, in one burst */
	for (unsigned i = 0; i < VHU_ARRAY_SIZE(bads); i++)
		check_bad(&bads[i], F_EVIDX, true);
}

VT_CASE(indirect_needs_feature)
{
	struct bad b = {"indirect_not_negotiated", NULL, 0};
	struct rig r;

	VT_REQUIRE(rig_init(&r, 8, VHU_BIT(VHU_F_VERSION_1)) == 0);
	tbl(&r.a)[0] = (struct tdesc){BUF(0), 16, 0, 0};
	drv_desc(&r.a, 0, TABLE, 16, TD_INDIRECT, 0);
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), -EIO);
	VT_EQ(efd_read(r.err), 1);
	rig_fini(&r);
	(void)b;
}

VT_CASE(longest_legal_chains)
{
	struct rig r;
	struct tdesc *t;

	/* a chain using every descriptor of the ring is legal */
	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	for (uint16_t i = 0; i < 8; i++)
		drv_desc(&r.a, i, BUF(i), 8, i < 7 ? TD_NEXT : 0, (uint16_t)(i + 1));
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.ndesc, 8);
	VT_EQ(r.c.out_num, 8);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	/* an indirect table longer than the ring is legal too */
	t = tbl(&r.a);
	for (uint16_t i = 0; i < 12; i++)
		t[i] = (struct tdesc){BUF(i), 8, i < 11 ? TD_NEXT : 0, (uint16_t)(i + 1)};
	drv_desc(&r.a, 0, TABLE, 12 * 16, TD_INDIRECT, 0);
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.out_num, 12);
	VT_CHECK(!vhu_vring_failed(&r.va));
	rig_fini(&r);
}

/* ---- push / unpop ------------------------------------------------------------------ */

VT_CASE(push_validates_id)
{
	struct rig r;
	struct vhu_chain bogus = {0};

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	bogus.id = 2;
	VT_EQ(vhu_vring_push(&r.va, &bogus, 0), -EINVAL); /* never popped */
	bogus.id = 8;
	VT_EQ(vhu_vring_push(&r.va, &bogus, 0), -EINVAL); /* out of range */
	bogus.id = 0xffff;
	VT_EQ(vhu_vring_push(&r.va, &bogus, 0), -EINVAL);
	drv_desc(&r.a, 2, BUF(0), 8, 0, 0);
	drv_publish(&r.a, 2);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), -EINVAL); /* twice */
	VT_EQ(drv_used_idx(&r.a), 1);
	VT_CHECK(!vhu_vring_failed(&r.va));
	rig_fini(&r);
}

VT_CASE(unpop_rewinds)
{
	struct rig r;
	struct vhu_chain c2 = {0};

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	for (uint16_t i = 0; i < 3; i++) {
		drv_desc(&r.a, i, BUF(i), 8, 0, 0);
		drv_publish(&r.a, i);
	}
	VT_EQ(vhu_vring_unpop(&r.va, 1), -EINVAL); /* nothing popped */
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 0);
	c2 = r.c;
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 1);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 2);
	VT_EQ(vhu_vring_unpop(&r.va, 4), -EINVAL); /* more than outstanding */
	VT_EQ(vhu_vring_unpop(&r.va, 2), 0);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), -EINVAL); /* given back */
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 1);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 2);
	VT_EQ(pop(&r), 0);
	/* the last two are outstanding, the first was pushed: unpop 3 fails */
	VT_EQ(vhu_vring_push(&r.va, &c2, 0), 0);
	VT_EQ(vhu_vring_unpop(&r.va, 3), -EINVAL);
	VT_EQ(vhu_vring_unpop(&r.va, 2), 0);
	VT_EQ(vhu_vring_unpop(&r.va, 0), 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 1);
	VT_EQ(vhu_vring_stop(&r.va), 2);
	rig_fini(&r);
}

/* ---- notifications ---------------------------------------------------------------- */

static void one_request(struct rig *r, uint16_t head)
{
	drv_desc(&r->a, head, BUF(head), 8, TD_WRITE, 0);
	drv_publish(&r->a, head);
	VT_EQ(pop(r), 1);
	VT_EQ(vhu_vring_push(&r->va, &r->c, 1), 0);
}

VT_CASE(event_idx_notify_decisions)
{
	struct rig r;
	struct vhu_vring_stats st;

	VT_REQUIRE(rig_init(&r, 8, F_EVIDX) == 0);
	VT_EQ(vhu_vring_notify(&r.va), 1); /* first decision: always signal */
	VT_EQ(efd_read(r.call), 1);
	VT_EQ(vhu_vring_notify(&r.va), 0); /* nothing new */
	*drv_used_event(&r.a) = 0;         /* driver wants a call at used idx 1 */
	one_request(&r, 0);                /* used idx 0 -> 1 */
	VT_EQ(drv_avail_event(&r.a), 1);   /* device asks for a kick at avail 1 */
	VT_EQ(vhu_vring_notify(&r.va), 1);
	VT_EQ(efd_read(r.call), 1);
	one_request(&r, 1); /* 1 -> 2: driver asked for 0 only */
	VT_EQ(vhu_vring_notify(&r.va), 0);
	VT_EQ(efd_read(r.call), 0);
	*drv_used_event(&r.a) = 3;
	one_request(&r, 2); /* 2 -> 3 */
	VT_EQ(vhu_vring_notify(&r.va), 0);
	one_request(&r, 3); /* 3 -> 4 crosses 3 */
	VT_EQ(vhu_vring_notify(&r.va), 1);
	/* batch: several pushes, one decision over the whole batch */
	*drv_used_event(&r.a) = 5;
	one_request(&r, 4);
	one_request(&r, 5);
	one_request(&r, 6); /* 4 -> 7 crosses 5 */
	VT_EQ(vhu_vring_notify(&r.va), 1);
	VT_EQ(efd_read(r.call), 2);
	vhu_vring_get_stats(&r.va, &st);
	VT_EQ(st.calls, 4);
	VT_EQ(st.suppressed, 2);
	rig_fini(&r);
}

VT_CASE(no_interrupt_flag)
{
	struct rig r;
	struct vhu_vring_stats st;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	one_request(&r, 0);
	VT_EQ(vhu_vring_notify(&r.va), 1);
	r.a.avail[0] = 1; /* VRING_AVAIL_F_NO_INTERRUPT */
	one_request(&r, 1);
	VT_EQ(vhu_vring_notify(&r.va), 0);
	r.a.avail[0] = 0;
	one_request(&r, 2);
	VT_EQ(vhu_vring_notify(&r.va), 1);
	VT_EQ(vhu_vring_signal(&r.va), 1); /* unconditional */
	VT_EQ(efd_read(r.call), 3);
	vhu_vring_get_stats(&r.va, &st);
	VT_EQ(st.calls, 3);
	VT_EQ(st.suppressed, 1);
	r.va.call_fd = -1; /* no call fd: nothing to signal */
	VT_EQ(vhu_vring_signal(&r.va), 0);
	r.va.call_fd = r.call;
	rig_fini(&r);
}

VT_CASE(notify_on_empty)
{
	struct rig r;

	VT_REQUIRE(rig_init(&r, 8, F_EVIDX | VHU_BIT(VHU_F_NOTIFY_ON_EMPTY)) == 0);
	VT_EQ(vhu_vring_notify(&r.va), 1);
	*drv_used_event(&r.a) = 100; /* far away */
	one_request(&r, 0);
	/* ring empty and nothing in flight: NOTIFY_ON_EMPTY wins */
	VT_EQ(vhu_vring_notify(&r.va), 1);
	rig_fini(&r);
}

VT_CASE(notification_enable_disable)
{
	struct rig r;

	/* without EVENT_IDX: used->flags NO_NOTIFY */
	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	VT_EQ(drv_used_flags(&r.a), 0);
	vhu_vring_disable_notification(&r.va);
	VT_EQ(drv_used_flags(&r.a), 1);
	VT_CHECK(!vhu_vring_enable_notification(&r.va));
	VT_EQ(drv_used_flags(&r.a), 0);
	vhu_vring_disable_notification(&r.va);
	drv_desc(&r.a, 0, BUF(0), 8, 0, 0);
	drv_publish(&r.a, 0); /* added while kicks were off */
	VT_CHECK(vhu_vring_has_avail(&r.va));
	VT_CHECK(vhu_vring_enable_notification(&r.va));
	VT_EQ(pop(&r), 1);
	VT_CHECK(!vhu_vring_has_avail(&r.va));
	VT_CHECK(!vhu_vring_enable_notification(&r.va));
	rig_fini(&r);

	/* with EVENT_IDX: avail_event */
	VT_REQUIRE(rig_init(&r, 8, F_EVIDX) == 0);
	VT_EQ(drv_avail_event(&r.a), 0);
	vhu_vring_disable_notification(&r.va);
	/* Just behind the avail index: the driver's next buffers need no kick. */
	VT_EQ(drv_avail_event(&r.a), 0xffff);
	drv_desc(&r.a, 0, BUF(0), 8, 0, 0);
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(drv_avail_event(&r.a), 0xffff); /* not advanced while disabled */
	drv_publish(&r.a, 1);                 /* (head 1: all zero desc, len 0) */
	VT_CHECK(vhu_vring_enable_notification(&r.va));
	VT_EQ(pop(&r), 1);
	VT_CHECK(!vhu_vring_enable_notification(&r.va));
	VT_EQ(drv_avail_event(&r.a), 2);
	VT_EQ(drv_used_flags(&r.a), 0); /* flags untouched with EVENT_IDX */
	rig_fini(&r);
}

/* A driver thread adds requests and kicks only when the device asks for
 * it; the device sleeps on the kick eventfd after re-enabling kicks.  A
 * lost wake-up shows up as a poll timeout. */
struct race {
	struct rig *r;
	int kick;
	unsigned n;
	int ret;
};

static bool drv_should_kick(struct drv *d, bool evidx, uint16_t old, uint16_t new_idx)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!evidx)
		return !(drv_used_flags(d) & 1);
	uint16_t ev = drv_avail_event(d);
	return (uint16_t)(new_idx - ev - 1) < (uint16_t)(new_idx - old);
}

static void *race_driver(void *arg)
{
	struct race *ra = arg;
	struct drv *d = &ra->r->a;
	bool evidx = ra->r->va.event_idx;
	uint64_t one = 1;

	for (unsigned i = 0; i < ra->n; i++) {
		uint16_t old = d->avail_idx;
		/* wait for a free slot (bounded) */
		for (int spin = 0; (uint16_t)(d->avail_idx - drv_used_idx(d)) >= d->num; spin++) {
			if (spin > 20000000) {
				ra->ret = -ETIMEDOUT;
				return NULL;
			}
			sched_yield();
		}
		drv_publish(d, (uint16_t)(i % d->num));
		if (drv_should_kick(d, evidx, old, d->avail_idx) &&
		    write(ra->kick, &one, sizeof(one)) != sizeof(one))
			ra->ret = -EIO;
	}
	return NULL;
}

static void notify_race(uint64_t features)
{
	struct rig r;
	struct race ra;
	pthread_t t;
	_Atomic unsigned done = 0;
	unsigned sleeps;

	VT_REQUIRE(rig_init(&r, 8, features) == 0);
	for (uint16_t i = 0; i < 8; i++)
		drv_desc(&r.a, i, BUF(i), 8, TD_WRITE, 0);
	ra = (struct race){&r, efd(), 20000, 0};
	VT_REQUIRE(pthread_create(&t, NULL, race_driver, &ra) == 0);
	sleeps = dev_serve_race(&r.va, &r.c, ra.kick, ra.n, &done);
	pthread_join(t, NULL);
	fprintf(stderr, "# device slept %u times for %u requests\n", sleeps, ra.n);
	VT_EQ(ra.ret, 0);
	VT_EQ(done, ra.n);
	close(ra.kick);
	rig_fini(&r);
}

VT_CASE(notification_race_no_lost_kick)
{
	notify_race(F_BASE);
}

VT_CASE(notification_race_no_lost_kick_event_idx)
{
	notify_race(F_EVIDX);
}

/* ---- dirty logging ------------------------------------------------------------------- */

VT_CASE(dirty_log_used_ring_and_buffers)
{
	struct rig r;
	struct dlog dl;
	uint64_t page_used, pb;

	VT_REQUIRE(rig_init(&r, 8, F_BASE | VHU_BIT(VHU_F_LOG_ALL)) == 0);
	VT_REQUIRE(dlog_attach(&dl, &r.va) == 0);
	/* writable part: 3 pages + 100 bytes starting mid-page */
	drv_desc(&r.a, 0, BUF(0), 16, TD_NEXT, 1);
	drv_desc(&r.a, 1, BUF(4) + 2048, 3 * 4096 + 100, TD_WRITE, 0);
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 4096), 0); /* covers pages 4 and 5 only */
	page_used = r.a.used_gpa;
	VT_EQ(dlog_bit(&dl, page_used), 1);
	pb = BUF(4);
	VT_EQ(dlog_bit(&dl, BUF(0)), 0); /* readable: not logged */
	VT_EQ(dlog_bit(&dl, pb), 1);
	VT_EQ(dlog_bit(&dl, pb + 4096), 1);
	VT_EQ(dlog_bit(&dl, pb + 2 * 4096), 0); /* not written */
	VT_EQ(dlog_bit(&dl, pb + 3 * 4096), 0);
	/* without VHOST_VRING_F_LOG the used ring is not logged */
	memset(dl.bm, 0, 4096);
	r.va.addr.flags = 0;
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 1), 0);
	VT_EQ(dlog_bit(&dl, page_used), 0);
	VT_EQ(dlog_bit(&dl, pb), 1);
	dlog_detach(&dl, &r.va);
	rig_fini(&r);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

VT_CASE(start_validates)
{
	struct rig r;
	struct vhu_vring *v = &r.va;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	vhu_vring_stop(v);
	v->num = 6;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EINVAL);
	v->num = 0;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EINVAL);
	v->num = 65536;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EINVAL);
	v->num = 8;
	v->addr.desc_user_addr += 8; /* misaligned */
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	v->addr.desc_user_addr -= 8;
	v->addr.avail_user_addr += 1;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	v->addr.avail_user_addr -= 1;
	v->addr.used_user_addr += 2;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	v->addr.used_user_addr -= 2;
	v->addr.desc_user_addr = MEM_GPA; /* gpa, not uva */
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	v->addr.desc_user_addr = g_uva(&r.g, MEM_GPA + MEM_SIZE - 64); /* 128 bytes needed */
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	/* used ring ending exactly at the region end: fits without event idx
	 * (4 + 8*8 bytes), not with it (2 more) */
	v->addr.desc_user_addr = g_uva(&r.g, RING_A);
	v->addr.used_user_addr = g_uva(&r.g, MEM_GPA + MEM_SIZE - 68);
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), 0);
	vhu_vring_stop(v);
	VT_EQ(vhu_vring_start(v, r.g.mem, F_EVIDX), -EFAULT);
	v->addr.avail_user_addr = g_uva(&r.g, MEM_GPA + MEM_SIZE - 20); /* 4 + 16 */
	v->addr.used_user_addr = g_uva(&r.g, r.a.used_gpa);
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), 0);
	vhu_vring_stop(v);
	VT_EQ(vhu_vring_start(v, r.g.mem, F_EVIDX), -EFAULT);
	v->addr_set = false;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EINVAL);
	VT_EQ(pop(&r), 0); /* not started */
	rig_fini(&r);
}

VT_CASE(stop_and_restart_keep_position)
{
	struct rig r;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	for (uint16_t i = 0; i < 3; i++)
		one_request(&r, i);
	VT_EQ(vhu_vring_stop(&r.va), 3);
	VT_CHECK(!vhu_vring_started(&r.va));
	drv_desc(&r.a, 4, BUF(4), 8, 0, 0);
	drv_publish(&r.a, 4);
	VT_EQ(pop(&r), 0); /* stopped */
	r.va.base = 3;
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 4);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(drv_used_idx(&r.a), 4); /* continues from the used ring's index */
	/* disabled ring pops nothing */
	r.va.enabled = false;
	drv_publish(&r.a, 4);
	VT_EQ(pop(&r), 0);
	VT_CHECK(!vhu_vring_has_avail(&r.va));
	r.va.enabled = true;
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_index(&r.va), 0);
	VT_EQ(vhu_vring_size(&r.va), 8);
	VT_CHECK(vhu_vring_enabled(&r.va));
	VT_CHECK(vhu_vring_mem(&r.va) == r.g.mem);
	VT_EQ(vhu_vring_kick_fd(&r.va), -1);
	VT_EQ(vhu_vring_call_fd(&r.va), r.call);
	rig_fini(&r);
}

/* A base that cannot be right (more than the ring size ahead of the used
 * index: DPDK's virtio-user sends 0, "no reservation", when it reconnects
 * in server mode, its ring going on where it was): the ring resumes at the
 * used index, as DPDK's vhost library does; what was taken and not
 * completed is handed out again. */
VT_CASE(impossible_base_resumes_at_used_index)
{
	struct rig r;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	for (uint16_t i = 0; i < 10; i++) /* used index 10, past one lap */
		one_request(&r, i % 8);
	drv_desc(&r.a, 2, BUF(2), 8, TD_WRITE, 0);
	drv_publish(&r.a, 2);
	VT_EQ(pop(&r), 1); /* taken, never completed */
	vhu_vring_stop(&r.va);
	r.va.base = 0;
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 2);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 1), 0);
	VT_EQ(drv_used_idx(&r.a), 11);
	VT_CHECK(!vhu_vring_failed(&r.va));
	rig_fini(&r);
}

VT_CASE(remap_to_new_snapshot)
{
	struct rig r;
	struct vhu_mem *m2 = NULL, *empty = vhu_mem_new_empty();
	struct vhu_mem_region_desc d;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	d = r.g.reg[0];
	VT_REQUIRE(vhu_mem_new_table(&m2, &d, &r.g.fd, 1) == 0);
	VT_EQ(vhu_vring_remap(&r.va, m2), 0);
	VT_CHECK(vhu_vring_mem(&r.va) == m2);
	drv_desc(&r.a, 0, BUF(0), 8, 0, 0);
	drv_publish(&r.a, 0);
	VT_EQ(pop(&r), 1);
	VT_CHECK(vhu_mem_hva_to_gpa(m2, r.iov[0].iov_base, &d.guest_phys_addr) == 0);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	/* memory without the ring: the ring fails */
	VT_EQ(vhu_vring_remap(&r.va, empty), -EFAULT);
	VT_CHECK(vhu_vring_failed(&r.va));
	VT_EQ(efd_read(r.err), 1);
	VT_EQ(vhu_vring_remap(&r.vb, r.g.mem), 0);
	rig_fini(&r);
	vhu_mem_unref(m2);
	vhu_mem_unref(empty);
}

VT_CASE(locks_per_flavour)
{
	struct vhu_vring v;
	struct vhu_vring_stats st;

	for (int f = 0; f < 3; f++) {
		VT_EQ(vhu_vring_init(&v, (unsigned)f, (enum vhu_vring_flavour)f), 0);
		vhu_vring_lock(&v);
		if (f == VHU_VRING_MUTEX)
			VT_EQ(pthread_mutex_trylock(&v.mutex), EBUSY);
		if (f == VHU_VRING_RWLOCK)
			VT_EQ(pthread_rwlock_tryrdlock(&v.rwlock), EBUSY);
		vhu_vring_unlock(&v);
		vhu_vring_lock_shared(&v);
		if (f == VHU_VRING_RWLOCK) {
			VT_EQ(pthread_rwlock_trywrlock(&v.rwlock), EBUSY);
			VT_EQ(pthread_rwlock_tryrdlock(&v.rwlock), 0); /* shared */
			pthread_rwlock_unlock(&v.rwlock);
		}
		vhu_vring_unlock_shared(&v);
		if (f == VHU_VRING_PLAIN)
			VT_EQ(pthread_mutex_trylock(&v.mutex), 0); /* plain: lock() was a no-op */
		if (f == VHU_VRING_PLAIN)
			pthread_mutex_unlock(&v.mutex);
		VT_EQ(vhu_vring_kick_fd(&v), -1);
		VT_CHECK(!vhu_vring_started(&v));
		vhu_vring_count_kick(&v);
		vhu_vring_get_stats(&v, &st);
		VT_EQ(st.kicks, 1);
		vhu_vring_destroy(&v);
	}
}

/* ---- randomized hostile rings ---------------------------------------------------------- */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Mostly plausible, sometimes hostile values. */
static uint64_t rnd_addr(void)
{
	switch (rnd() % 8) {
	case 0:
		return rnd();
	case 1:
		return MEM_GPA + MEM_SIZE - rnd() % 64;
	case 2:
		return MEM_GPA - rnd() % 64;
	default:
		return BUF(rnd() % 64) + rnd() % 4096;
	}
}

static uint32_t rnd_len(void)
{
	switch (rnd() % 8) {
	case 0:
		return (uint32_t)rnd();
	case 1:
		return 0;
	default:
		return (uint32_t)(rnd() % 8192);
	}
}

static void rnd_desc(struct tdesc *t, uint16_t n, uint16_t range)
{
	t->addr = rnd_addr();
	t->len = rnd_len();
	t->flags = (uint16_t)(rnd() % 4 == 0 ? rnd() % 8 : rnd() % 4);
	t->next = (uint16_t)(rnd() % 16 == 0 ? rnd() : rnd() % (range + 1));
	if (t->flags & TD_INDIRECT) {
		t->addr = rnd() % 4 ? TABLE + 16 * (rnd() % 8) : rnd_addr();
		t->len = (uint32_t)(rnd() % 4 ? 16 * (1 + rnd() % 16) : rnd_len());
	}
	(void)n;
}

/* Every iovec must lie inside guest memory and add up to the lengths. */
static void check_chain(struct rig *r, const struct vhu_chain *c)
{
	uint64_t total = 0, gpa;

	VT_CHECK(c->out_num + c->in_num <= c->iov_max);
	for (uint32_t i = 0; i < c->out_num + c->in_num; i++) {
		const uint8_t *b = c->iov[i].iov_base;
		VT_EQ(vhu_mem_hva_to_gpa(r->g.mem, b, &gpa), 0);
		if (c->iov[i].iov_len)
			VT_EQ(vhu_mem_hva_to_gpa(r->g.mem, b + c->iov[i].iov_len - 1, &gpa), 0);
		total += c->iov[i].iov_len;
	}
	VT_EQ(total, c->out_len + c->in_len);
}

/* Take what the ring holds, by single pops or by bursts of random size,
 * checking and pushing every chain; returns the last pop's result (0 or
 * -EIO) and counts good and -E2BIG chains. */
static int drain_random(struct rig *r, bool burst, unsigned *chains, unsigned *e2big)
{
	static struct iovec iov[8][16];
	struct vhu_chain cs[8], *cp[8];
	int ret;

	for (unsigned i = 0; i < 8; i++) {
		cs[i] = (struct vhu_chain){.iov = iov[i], .iov_max = r->c.iov_max};
		cp[i] = &cs[i];
	}
	if (!burst) {
		while ((ret = pop(r)) == 1 || ret == -E2BIG) {
			if (ret == 1)
				check_chain(r, &r->c);
			*(ret == 1 ? chains : e2big) += 1;
			VT_EQ(vhu_vring_push(&r->va, &r->c, (uint32_t)rnd()), 0);
		}
		return ret;
	}
	while ((ret = vhu_vring_pop_burst(&r->va, cp, (unsigned)(1 + rnd() % 8))) > 0 ||
	       ret == -E2BIG) {
		int n = ret > 0 ? ret : 1;

		for (int i = 0; i < n; i++) {
			if (ret > 0)
				check_chain(r, &cs[i]);
			*(ret > 0 ? chains : e2big) += 1;
			VT_EQ(vhu_vring_push(&r->va, &cs[i], (uint32_t)rnd()), 0);
		}
	}
	return ret;
}

static void quiet(enum vhu_log_level level, const char *msg, void *opaque)
{
	(void)level, (void)msg, (void)opaque;
}

VT_CASE(random_hostile_rings)
{
	struct rig r;
	unsigned fails = 0, chains = 0, e2big = 0;
	const uint16_t num = 16;

	vhu_log_set_sink(quiet, NULL); /* thousands of expected failures */
	VT_REQUIRE(rig_init(&r, num, F_EVIDX) == 0);
	for (int iter = 0; iter < 4000; iter++) {
		struct tdesc *t = tbl(&r.a);
		int ret;

		for (uint16_t i = 0; i < num; i++)
			rnd_desc(&r.a.desc[i], i, num);
		for (uint16_t i = 0; i < 64; i++)
			rnd_desc(&t[i], i, 16);
		for (int k = (int)(rnd() % 4); k >= 0; k--)
			drv_publish(&r.a, (uint16_t)(rnd() % 8 == 0 ? rnd() : rnd() % num));
		if (rnd() % 64 == 0) {
			r.a.avail_idx = (uint16_t)rnd();
			__atomic_store_n(&r.a.avail[1], r.a.avail_idx, __ATOMIC_RELEASE);
		}
		r.c.iov_max = (uint32_t)(1 + rnd() % 16);
		ret = drain_random(&r, iter % 2, &chains, &e2big);
		if (ret == -EIO) {
			fails++;
			/* a fresh ring on the same memory */
			vhu_vring_destroy(&r.va);
			VT_REQUIRE(rig_start_ring(&r, &r.a, &r.va, RING_A, num, F_EVIDX) == 0);
		} else {
			VT_EQ(ret, 0);
		}
	}
	fprintf(stderr, "# %u good chains, %u e2big, %u failed rings\n", chains, e2big, fails);
	VT_CHECK(chains > 100 && fails > 100); /* both paths exercised */
	vhu_log_set_sink(NULL, NULL);
	rig_fini(&r);
}

/* ---- burst pop ------------------------------------------------------------------- */

struct burst {
	struct iovec iov[8][4];
	struct vhu_chain c[8];
	struct vhu_chain *p[8];
	const struct vhu_chain *cp[8];
	uint32_t wr[8];
};

static void burst_init(struct burst *b, uint32_t iov_max)
{
	memset(b, 0, sizeof(*b));
	for (unsigned i = 0; i < 8; i++) {
		b->c[i] = (struct vhu_chain){.iov = b->iov[i], .iov_max = iov_max};
		b->p[i] = &b->c[i];
		b->cp[i] = &b->c[i];
	}
}

VT_CASE(burst_takes_chains_in_ring_order)
{
	struct rig r;
	struct burst b;
	struct tdesc *t;
	struct vhu_vring_stats st;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	burst_init(&b, 4);
	t = tbl(&r.a);
	/* heads 3, 0 (two descriptors), 6 (indirect: read + write), 1, 2 */
	drv_desc(&r.a, 3, BUF(3), 30, 0, 0);
	drv_desc(&r.a, 0, BUF(0), 10, TD_NEXT, 4);
	drv_desc(&r.a, 4, BUF(4), 40, TD_WRITE, 0);
	t[0] = (struct tdesc){BUF(10), 16, TD_NEXT, 1};
	t[1] = (struct tdesc){BUF(11), 512, TD_WRITE, 0};
	drv_desc(&r.a, 6, TABLE, 32, TD_INDIRECT, 0);
	drv_desc(&r.a, 1, BUF(1), 11, TD_WRITE, 0);
	drv_desc(&r.a, 2, BUF(2), 12, 0, 0);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 8), 0); /* empty */
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 0), 0);
	for (uint16_t h = 0; h < 5; h++)
		drv_publish(&r.a, (uint16_t[]){3, 0, 6, 1, 2}[h]);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 0), 0); /* n = 0 takes nothing */
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 3), 3);
	VT_EQ(b.c[0].id, 3);
	VT_EQ(b.c[0].out_num, 1);
	VT_EQ(b.c[0].out_len, 30);
	VT_CHECK(b.iov[0][0].iov_base == lptr(&r.g, BUF(3)));
	VT_EQ(b.c[1].id, 0);
	VT_EQ(b.c[1].ndesc, 2);
	VT_EQ(b.c[1].out_num, 1);
	VT_EQ(b.c[1].in_num, 1);
	VT_EQ(b.c[1].in_len, 40);
	VT_CHECK(b.iov[1][1].iov_base == lptr(&r.g, BUF(4)));
	VT_EQ(b.c[2].id, 6);
	VT_EQ(b.c[2].ndesc, 3);
	VT_EQ(b.c[2].out_len, 16);
	VT_EQ(b.c[2].in_len, 512);
	VT_CHECK(b.iov[2][1].iov_base == lptr(&r.g, BUF(11)));
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p + 3, 8), 2); /* what is left */
	VT_EQ(b.c[3].id, 1);
	VT_EQ(b.c[4].id, 2);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 8), 0);
	vhu_vring_get_stats(&r.va, &st);
	VT_EQ(st.requests, 5);
	VT_EQ(vhu_vring_push_batch(&r.va, b.cp, b.wr, 5), 5);
	VT_EQ(drv_used_idx(&r.a), 5);
	/* published while a burst is under way: the next burst sees them */
	drv_publish(&r.a, 3);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 8), 1);
	VT_EQ(b.c[0].id, 3);
	/* unpop gives back the end of a burst */
	drv_publish(&r.a, 0);
	drv_publish(&r.a, 1);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p + 1, 2), 2);
	VT_EQ(vhu_vring_unpop(&r.va, 2), 0);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p + 1, 8), 2);
	VT_EQ(b.c[1].id, 0);
	VT_EQ(b.c[2].id, 1);
	VT_CHECK(!vhu_vring_failed(&r.va));
	rig_fini(&r);
}

/* A chain too long for its iovecs: consumed with -E2BIG when it comes
 * first, left for the next call when it comes later in a burst. */
VT_CASE(burst_e2big)
{
	struct rig r;
	struct burst b;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	burst_init(&b, 2);
	drv_desc(&r.a, 0, BUF(0), 10, 0, 0);
	for (uint16_t i = 1; i < 4; i++)
		drv_desc(&r.a, i, BUF(i), 10, i < 3 ? TD_NEXT : 0, (uint16_t)(i + 1));
	drv_desc(&r.a, 5, BUF(5), 10, TD_WRITE, 0);
	drv_publish(&r.a, 0);
	drv_publish(&r.a, 1); /* three buffers, two iovecs */
	drv_publish(&r.a, 5);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 8), 1);
	VT_EQ(b.c[0].id, 0);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p + 1, 8), -E2BIG);
	VT_EQ(b.c[1].id, 1);
	VT_EQ(b.c[1].out_num + b.c[1].in_num, 0);
	VT_EQ(b.c[1].out_len, 30);
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p + 2, 8), 1);
	VT_EQ(b.c[2].id, 5);
	VT_EQ(vhu_vring_push_batch(&r.va, b.cp, b.wr, 3), 3);
	VT_EQ(drv_used_idx(&r.a), 3);
	rig_fini(&r);
}

/* EVENT_IDX: avail_event follows the burst (once), or stays behind the
 * avail index while notifications are off. */
VT_CASE(burst_event_idx)
{
	struct rig r;
	struct burst b;

	VT_REQUIRE(rig_init(&r, 8, F_EVIDX) == 0);
	burst_init(&b, 4);
	for (uint16_t i = 0; i < 5; i++) {
		drv_desc(&r.a, i, BUF(i), 8, TD_WRITE, 0);
		drv_publish(&r.a, i);
	}
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 3), 3);
	VT_EQ(drv_avail_event(&r.a), 3);
	vhu_vring_disable_notification(&r.va);
	VT_EQ(drv_avail_event(&r.a), 4); /* shadow (5) - 1 */
	VT_EQ(vhu_vring_pop_burst(&r.va, b.p + 3, 3), 2);
	VT_EQ(drv_avail_event(&r.a), 4);
	VT_CHECK(!vhu_vring_enable_notification(&r.va));
	VT_EQ(drv_avail_event(&r.a), 5);
	rig_fini(&r);
}

/* The serving worker's per-callback budget caps bursts too. */
VT_CASE(burst_respects_callback_budget)
{
	static const int token;
	struct rig r;
	struct burst b;
	unsigned taken = 0;
	int n;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	burst_init(&b, 4);
	for (uint16_t i = 0; i < 8; i++)
		drv_desc(&r.a, i, BUF(i), 8, TD_WRITE, 0);
	vhu_tl_worker = &token;
	r.va.budget_owner = &token;
	vhu_vring_budget(&r.va, true);
	for (int round = 0; round < 100; round++) {
		for (uint16_t i = 0; i < 8; i++)
			drv_publish(&r.a, i);
		n = vhu_vring_pop_burst(&r.va, b.p, 8);
		if (n <= 0)
			break;
		taken += (unsigned)n;
		VT_EQ(vhu_vring_push_batch(&r.va, b.cp, b.wr, (unsigned)n), n);
		if (n < 8) { /* cut at the budget: give the rest back */
			VT_EQ(vhu_vring_pop_burst(&r.va, b.p, 8), 0);
			break;
		}
	}
	VT_EQ(taken, 2 * 8 + 64);
	VT_CHECK(!vhu_vring_has_avail(&r.va)); /* cut short, for this callback */
	VT_CHECK(vhu_vring_budget(&r.va, false));
	VT_CHECK(vhu_vring_has_avail(&r.va));
	vhu_tl_worker = NULL;
	rig_fini(&r);
}

/* Chains of any length from one iovec array: each starts where the one
 * before ended; a chain that does not fit what is left waits for the next
 * call, one that does not fit the whole array is refused (-E2BIG). */
VT_CASE(burst_from_one_iovec_array)
{
	struct rig r;
	struct burst b;
	struct iovec pool[5];

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	burst_init(&b, 0);
	drv_desc(&r.a, 0, BUF(0), 10, 0, 0);
	for (uint16_t i = 1; i < 4; i++) /* three buffers */
		drv_desc(&r.a, i, BUF(i), 10, i < 3 ? TD_NEXT : TD_WRITE, (uint16_t)(i + 1));
	drv_desc(&r.a, 4, BUF(4), 10, TD_NEXT, 5);
	drv_desc(&r.a, 5, BUF(5), 10, TD_WRITE, 0);
	drv_publish(&r.a, 0);
	drv_publish(&r.a, 1);
	drv_publish(&r.a, 4);
	VT_EQ(vhu_vring_pop_burst_iov(&r.va, b.p, 8, pool, 5), 2);
	VT_CHECK(b.c[0].iov == pool && b.c[0].iov_max == 5);
	VT_EQ(b.c[0].out_num, 1);
	VT_CHECK(b.c[1].iov == pool + 1);
	VT_EQ(b.c[1].out_num + b.c[1].in_num, 3);
	VT_CHECK(pool[3].iov_base == lptr(&r.g, BUF(3)));
	VT_EQ(vhu_vring_pop_burst_iov(&r.va, b.p + 2, 8, pool + 4, 1), -E2BIG);
	VT_EQ(b.c[2].id, 4); /* two buffers, one iovec: refused, consumed */
	VT_EQ(vhu_vring_pop_burst_iov(&r.va, b.p + 3, 8, pool, 5), 0);
	VT_EQ(vhu_vring_push_batch(&r.va, b.cp, b.wr, 3), 3);
	VT_CHECK(!vhu_vring_failed(&r.va));
	rig_fini(&r);
}
