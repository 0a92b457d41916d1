/* SPDX-License-Identifier: Apache-2.0 */
/* vhu_vring_push_batch(): one used-index store per batch, the same checks
 * as vhu_vring_push(), and crash recovery of a batch with an inflight area. */
#include "guest.h"
#include "vring_impl.h"

VT_MAIN

#define MEM_GPA  0x100000ull
#define MEM_SIZE (1024 * 1024ull)
#define BUF(i)   (MEM_GPA + 0x20000 + 0x1000ull * (i))
#define F_BASE   (VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC))

struct brig {
	struct guest g;
	struct drv d;
	struct vhu_vring vr;
	struct vhu_inflight *inf;
	struct iovec iov[8][2];
	struct vhu_chain c[8];
	int kick;
};

static int brig_start(struct brig *r)
{
	vhu_vring_init(&r->vr, 0, VHU_VRING_PLAIN);
	drv_setup_vring(&r->d, &r->vr);
	r->vr.inflight = r->inf ? vhu_inflight_queue(r->inf, 0) : NULL;
	r->kick = efd();
	r->vr.kick_fd = r->kick;
	return vhu_vring_start(&r->vr, r->g.mem, F_BASE);
}

/* Ring of 8; descriptor i: 64 writable bytes at BUF(i). */
static int brig_init(struct brig *r, bool inflight)
{
	memset(r, 0, sizeof(*r));
	if (guest_init(&r->g, MEM_GPA, MEM_SIZE))
		return -1;
	drv_init(&r->d, &r->g, MEM_GPA, 8);
	for (uint16_t i = 0; i < 8; i++)
		drv_desc(&r->d, i, BUF(i), 64, TD_WRITE, 0);
	for (unsigned i = 0; i < 8; i++) {
		r->c[i].iov = r->iov[i];
		r->c[i].iov_max = 2;
	}
	if (inflight && vhu_inflight_create(&r->inf, 1, 8))
		return -1;
	return brig_start(r);
}

static void brig_fini(struct brig *r)
{
	vhu_vring_destroy(&r->vr);
	if (r->inf)
		vhu_inflight_free(r->inf);
	guest_fini(&r->g);
}

/* Publish heads[0, n) and pop them into c[0, n). */
static int pop_n(struct brig *r, const uint16_t *heads, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		drv_publish(&r->d, heads[i]);
	for (unsigned i = 0; i < n; i++)
		if (vhu_vring_pop(&r->vr, &r->c[i]) != 1 || r->c[i].id != heads[i])
			return -1;
	return 0;
}

VT_CASE(batch_publishes_in_order_and_wraps)
{
	struct brig r;
	const struct vhu_chain *cs[3];
	uint32_t wr[3], id, len;

	VT_REQUIRE(brig_init(&r, false) == 0);
	VT_EQ(vhu_vring_push_batch(&r.vr, NULL, NULL, 0), 0);
	for (uint16_t round = 0; round < 4; round++) { /* 12 entries: wraps at 8 */
		const uint16_t heads[3] = {3, 5, 1};

		VT_REQUIRE(pop_n(&r, heads, 3) == 0);
		for (unsigned i = 0; i < 3; i++) {
			cs[i] = &r.c[i];
			wr[i] = 10 * (i + 1);
		}
		wr[2] = 5000; /* clipped to the writable length */
		VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 3), 3);
		VT_EQ(drv_used_idx(&r.d), 3 * (round + 1));
		for (unsigned i = 0; i < 3; i++) {
			drv_used_elem(&r.d, (uint16_t)(3 * round + i), &id, &len);
			VT_EQ(id, heads[i]);
			VT_EQ(len, i == 2 ? 64 : wr[i]);
		}
	}
	VT_EQ(r.vr.inuse, 0);
	VT_CHECK(!vhu_vring_failed(&r.vr));
	brig_fini(&r);
}

VT_CASE(batch_stops_at_first_bad_chain)
{
	struct brig r;
	const uint16_t heads[3] = {2, 4, 6};
	const struct vhu_chain *cs[3];
	struct vhu_chain bogus = {.id = 7};
	uint32_t wr[3] = {1, 2, 3};

	VT_REQUIRE(brig_init(&r, false) == 0);
	VT_REQUIRE(pop_n(&r, heads, 3) == 0);
	/* a chain twice in one batch: the first copy is pushed */
	cs[0] = &r.c[0];
	cs[1] = &r.c[0];
	cs[2] = &r.c[1];
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 3), 1);
	VT_EQ(drv_used_idx(&r.d), 1);
	/* pushed already, never popped, out of range, NULL: nothing */
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 1), 0);
	cs[0] = &bogus;
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 1), 0);
	bogus.id = 8;
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 1), 0);
	cs[0] = &r.c[1];
	cs[1] = NULL;
	cs[2] = &r.c[2];
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 3), 1);
	VT_EQ(drv_used_idx(&r.d), 2);
	VT_EQ(vhu_vring_push_batch(&r.vr, NULL, wr, 1), -EINVAL);
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, NULL, 1), -EINVAL);
	/* the rest stayed outstanding and can still be pushed */
	VT_EQ(r.vr.inuse, 1);
	VT_EQ(vhu_vring_push(&r.vr, &r.c[2], 0), 0);
	VT_EQ(drv_used_idx(&r.d), 3);
	vhu_vring_stop(&r.vr);
	cs[0] = &r.c[2];
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 1), -EINVAL); /* stopped */
	VT_CHECK(!vhu_vring_failed(&r.vr));
	brig_fini(&r);
}

static int crash_and_reconnect(struct brig *r)
{
	struct vhu_inflight *old = r->inf;
	int ret;

	vhu_vring_destroy(&r->vr);
	ret = vhu_inflight_set(&r->inf, dup(old->fd), old->size, 0, 1, old->queue_size);
	vhu_inflight_free(old);
	return ret ? ret : brig_start(r);
}

VT_CASE(batch_with_inflight_area)
{
	struct brig r;
	const uint16_t heads[4] = {5, 2, 7, 1};
	const struct vhu_chain *cs[2];
	uint32_t wr[2] = {0, 0}, elem[2];
	struct vhu_inflight_queue *q;

	VT_REQUIRE(brig_init(&r, true) == 0);
	q = vhu_inflight_queue(r.inf, 0);
	VT_REQUIRE(pop_n(&r, heads, 4) == 0);
	cs[0] = &r.c[1];
	cs[1] = &r.c[2];
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 2), 2);
	VT_EQ(q->desc[2].inflight, 0);
	VT_EQ(q->desc[7].inflight, 0);
	VT_EQ(q->desc[5].inflight, 1);
	VT_EQ(q->used_idx, 2);
	VT_EQ(q->last_batch_head, 2);
	VT_EQ(q->desc[2].next, 7);

	/* A batch of heads 5 and 1 got as far as publishing the used index:
	 * recovery must clear both, not only last_batch_head. */
	q->desc[5].next = 1;
	q->last_batch_head = 5;
	elem[0] = 5, elem[1] = 0;
	memcpy(r.d.used + 4 + 8 * 2, elem, 8);
	elem[0] = 1;
	memcpy(r.d.used + 4 + 8 * 3, elem, 8);
	__atomic_store_n((uint16_t *)(r.d.used + 2), 4, __ATOMIC_RELEASE);
	VT_REQUIRE(crash_and_reconnect(&r) == 0);
	q = vhu_inflight_queue(r.inf, 0);
	VT_EQ(q->desc[5].inflight, 0);
	VT_EQ(q->desc[1].inflight, 0);
	VT_EQ(q->used_idx, 4);
	VT_EQ(efd_read(r.kick), 0); /* nothing to resubmit */
	VT_EQ(vhu_vring_pop(&r.vr, &r.c[0]), 0);
	VT_EQ(vhu_vring_stop(&r.vr), 4);

	/* A crash before the publish resubmits the whole batch. */
	VT_REQUIRE(crash_and_reconnect(&r) == 0);
	VT_REQUIRE(pop_n(&r, heads, 2) == 0);
	q = vhu_inflight_queue(r.inf, 0);
	q->desc[5].next = 2;
	q->last_batch_head = 5;
	VT_REQUIRE(crash_and_reconnect(&r) == 0);
	VT_EQ(efd_read(r.kick), 1);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c[0]), 1);
	VT_EQ(r.c[0].id, 5);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c[1]), 1);
	VT_EQ(r.c[1].id, 2);
	cs[0] = &r.c[0];
	cs[1] = &r.c[1];
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 2), 2);
	VT_EQ(drv_used_idx(&r.d), 6);
	brig_fini(&r);
}

/* After a reconnect, a burst hands out the resubmitted heads first (oldest
 * first), then continues with the avail ring. */
VT_CASE(burst_resubmits_first)
{
	struct brig r;
	const uint16_t heads[3] = {5, 2, 7};
	struct vhu_chain *p[8];
	const struct vhu_chain *cs[8];
	uint32_t wr[8] = {0};
	struct vhu_inflight_queue *q;

	VT_REQUIRE(brig_init(&r, true) == 0);
	for (unsigned i = 0; i < 8; i++) {
		p[i] = &r.c[i];
		cs[i] = &r.c[i];
	}
	VT_REQUIRE(pop_n(&r, heads, 3) == 0);
	VT_REQUIRE(crash_and_reconnect(&r) == 0);
	VT_EQ(efd_read(r.kick), 1);
	drv_publish(&r.d, 1);
	drv_publish(&r.d, 4);
	VT_EQ(vhu_vring_pop_burst(&r.vr, p, 2), 2); /* two of three resubmissions */
	VT_EQ(r.c[0].id, 5);
	VT_EQ(r.c[1].id, 2);
	VT_EQ(vhu_vring_pop_burst(&r.vr, p + 2, 8), 3);
	VT_EQ(r.c[2].id, 7);
	VT_EQ(r.c[3].id, 1);
	VT_EQ(r.c[4].id, 4);
	q = vhu_inflight_queue(r.inf, 0);
	VT_EQ(q->desc[1].inflight, 1);
	VT_EQ(q->desc[4].inflight, 1);
	VT_EQ(vhu_vring_push_batch(&r.vr, cs, wr, 5), 5);
	VT_EQ(drv_used_idx(&r.d), 5);
	VT_EQ(q->desc[5].inflight, 0);
	VT_EQ(q->desc[4].inflight, 0);
	brig_fini(&r);
}
