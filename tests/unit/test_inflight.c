/* SPDX-License-Identifier: Apache-2.0 */
/* INFLIGHT_SHMFD region and resubmission after a back-end crash. */
#include "guest.h"
#include "vring_impl.h"

VT_MAIN

#define MEM_GPA  0x100000ull
#define MEM_SIZE (1024 * 1024ull)
#define BUF(i)   (MEM_GPA + 0x20000 + 0x1000ull * (i))
#define F_BASE   (VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC))

VT_CASE(create_layout_and_free)
{
	struct vhu_inflight *inf = NULL;
	struct vhu_inflight_queue *q0, *q1;
	int maps, fds;

	/* warm up allocator mappings (sanitizer builds) before counting */
	VT_REQUIRE(vhu_inflight_create(&inf, 2, 16) == 0);
	vhu_inflight_free(inf);
	maps = vt_count_maps_named(0, "memfd:vhu-inflight");
	fds = vt_count_fds();
	VT_REQUIRE(vhu_inflight_create(&inf, 2, 16) == 0);
	VT_CHECK(inf->fd >= 0);
	VT_EQ(vhu_inflight_queue_bytes(16), 320); /* 16 + 16*16 -> 64-aligned */
	VT_EQ(inf->size, 640);
	q0 = vhu_inflight_queue(inf, 0);
	q1 = vhu_inflight_queue(inf, 1);
	VT_CHECK((uint8_t *)q1 - (uint8_t *)q0 == 320);
	VT_CHECK((uintptr_t)q1 % 64 == 0);
	VT_CHECK(vhu_inflight_queue(inf, 2) == NULL);
	VT_EQ(q0->desc_num, 16);
	VT_EQ(q1->desc_num, 16);
	VT_EQ(q0->version, 0);
	VT_EQ(sizeof(struct vhu_inflight_desc), 16);
	VT_EQ(sizeof(struct vhu_inflight_queue), 16);
	VT_EQ(vhu_inflight_area_entries(q0), 16);
	VT_EQ(vhu_inflight_area_entries(q1), 16);
	VT_EQ(vhu_inflight_area_entries((uint8_t *)q1 + 16), 0);
	VT_EQ(vhu_inflight_area_entries((uint8_t *)q1 + 320), 0);
	VT_EQ(vhu_inflight_create(&inf, 0, 16), -EINVAL);
	VT_EQ(vhu_inflight_create(&inf, 1, 0), -EINVAL);
	vhu_inflight_free(inf);
	VT_EQ(vhu_inflight_area_entries(q0), 0);
	VT_EQ(vt_count_maps_named(0, "memfd:vhu-inflight"), maps);
	VT_EQ(vt_count_fds(), fds);
}

VT_CASE(set_validates)
{
	struct vhu_inflight *inf = NULL, *inf2 = NULL;
	int fds = vt_count_fds();

	VT_REQUIRE(vhu_inflight_create(&inf, 2, 16) == 0);
	VT_EQ(vhu_inflight_set(&inf2, inf->fd, 639, 0, 2, 16), -EINVAL); /* too small */
	VT_EQ(vhu_inflight_set(&inf2, inf->fd, 640, 0, 3, 16), -EINVAL);
	VT_EQ(vhu_inflight_set(&inf2, inf->fd, 640, 0, 0, 16), -EINVAL);
	VT_EQ(vhu_inflight_set(&inf2, inf->fd, 640, 0, 2, 0), -EINVAL);
	VT_EQ(vhu_inflight_set(&inf2, inf->fd, 640, 100, 2, 16), -EINVAL); /* unaligned */
	VT_EQ(vhu_inflight_set(&inf2, inf->fd, UINT64_MAX, 4096, 2, 16), -EINVAL);
	VT_EQ(vhu_inflight_set(&inf2, -1, 640, 0, 2, 16), -EBADF);
	VT_EQ(vhu_inflight_set(&inf2, inf->fd, 4096, 0, 2, 16), -EINVAL); /* > file */
	VT_REQUIRE(vhu_inflight_set(&inf2, dup(inf->fd), 640, 0, 2, 16) == 0);
	/* same memory, second mapping */
	((struct vhu_inflight_queue *)vhu_inflight_queue(inf, 1))->used_idx = 77;
	VT_EQ(((struct vhu_inflight_queue *)vhu_inflight_queue(inf2, 1))->used_idx, 77);
	vhu_inflight_free(inf);
	vhu_inflight_free(inf2);
	VT_EQ(vt_count_fds(), fds);
}

struct irig {
	struct guest g;
	struct drv d;
	struct vhu_vring vr;
	struct vhu_inflight *inf;
	struct iovec iov[4];
	struct vhu_chain c;
	int kick;
};

/* (Re)start the back end's ring on the same guest ring and inflight fd. */
static int irig_start(struct irig *r, uint16_t num)
{
	vhu_vring_init(&r->vr, 0, VHU_VRING_PLAIN);
	drv_setup_vring(&r->d, &r->vr);
	r->vr.num = num;
	r->vr.inflight = vhu_inflight_queue(r->inf, 0);
	r->kick = efd();
	r->vr.kick_fd = r->kick;
	r->c.iov = r->iov;
	r->c.iov_max = 4;
	return vhu_vring_start(&r->vr, r->g.mem, F_BASE);
}

static int irig_init(struct irig *r, uint16_t num)
{
	memset(r, 0, sizeof(*r));
	if (guest_init(&r->g, MEM_GPA, MEM_SIZE))
		return -1;
	drv_init(&r->d, &r->g, MEM_GPA, num);
	for (uint16_t i = 0; i < num; i++)
		drv_desc(&r->d, i, BUF(i), 64, TD_WRITE, 0);
	if (vhu_inflight_create(&r->inf, 1, num))
		return -1;
	return irig_start(r, num);
}

/* The back end dies: its vring goes away, the front end keeps the inflight
 * fd and hands it to the new back end, which maps it afresh. */
static int irig_crash_and_reconnect(struct irig *r)
{
	struct vhu_inflight *old = r->inf;
	int ret;

	vhu_vring_destroy(&r->vr);
	ret = vhu_inflight_set(&r->inf, dup(old->fd), old->size, 0, 1, old->queue_size);
	vhu_inflight_free(old);
	if (ret)
		return ret;
	return irig_start(r, r->d.num);
}

static void irig_fini(struct irig *r)
{
	vhu_vring_destroy(&r->vr);
	vhu_inflight_free(r->inf);
	guest_fini(&r->g);
}

static struct vhu_inflight_queue *area(struct irig *r)
{
	return vhu_inflight_queue(r->inf, 0);
}

VT_CASE(records_and_resubmits_after_crash)
{
	struct irig r;
	struct vhu_chain c2;
	struct vhu_inflight_queue *q;

	VT_REQUIRE(irig_init(&r, 8) == 0);
	q = area(&r);
	VT_EQ(q->version, 1); /* first use initialised the area */
	drv_publish(&r.d, 5);
	drv_publish(&r.d, 2);
	drv_publish(&r.d, 7);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 5);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 2);
	c2 = r.c;
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 7);
	VT_EQ(q->desc[5].inflight, 1);
	VT_EQ(q->desc[2].inflight, 1);
	VT_EQ(q->desc[7].inflight, 1);
	VT_CHECK(q->desc[5].counter < q->desc[2].counter);
	VT_CHECK(q->desc[2].counter < q->desc[7].counter);
	VT_EQ(vhu_vring_push(&r.vr, &c2, 1), 0);
	VT_EQ(q->desc[2].inflight, 0);
	VT_EQ(q->used_idx, 1);
	VT_EQ(q->last_batch_head, 2);

	VT_REQUIRE(irig_crash_and_reconnect(&r) == 0);
	q = area(&r);
	VT_EQ(efd_read(r.kick), 1); /* self-kick so resubmissions run */
	VT_CHECK(vhu_vring_has_avail(&r.vr));
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1); /* oldest first */
	VT_EQ(r.c.id, 5);
	VT_EQ(r.c.in_len, 64);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 7);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 0); /* avail position is 3 */
	drv_publish(&r.d, 3);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 3);
	VT_CHECK(q->desc[3].counter > q->desc[7].counter);
	VT_EQ(vhu_vring_push(&r.vr, &r.c, 0), 0);
	r.c.id = 5;
	VT_EQ(vhu_vring_push(&r.vr, &r.c, 0), 0);
	r.c.id = 7;
	VT_EQ(vhu_vring_push(&r.vr, &r.c, 0), 0);
	VT_EQ(drv_used_idx(&r.d), 4);
	for (int i = 0; i < 8; i++)
		VT_EQ(q->desc[i].inflight, 0);
	VT_EQ(vhu_vring_stop(&r.vr), 4);
	/* nothing left: a second reconnect resubmits nothing */
	VT_REQUIRE(irig_crash_and_reconnect(&r) == 0);
	VT_EQ(efd_read(r.kick), 0);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 0);
	irig_fini(&r);
}

VT_CASE(crash_inside_push_is_undone)
{
	struct irig r;
	struct vhu_inflight_queue *q;
	uint32_t elem[2] = {0, 64};

	VT_REQUIRE(irig_init(&r, 8) == 0);
	q = area(&r);
	drv_publish(&r.d, 0);
	drv_publish(&r.d, 1);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	/* push of head 0 got as far as publishing the used entry */
	q->last_batch_head = 0;
	memcpy(r.d.used + 4, elem, 8);
	__atomic_store_n((uint16_t *)(r.d.used + 2), 1, __ATOMIC_RELEASE);
	VT_REQUIRE(irig_crash_and_reconnect(&r) == 0);
	q = area(&r);
	VT_EQ(q->desc[0].inflight, 0); /* fixed up */
	VT_EQ(q->used_idx, 1);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 1);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 0);
	VT_EQ(vhu_vring_push(&r.vr, &r.c, 3), 0);
	VT_EQ(drv_used_idx(&r.d), 2);
	VT_EQ(vhu_vring_stop(&r.vr), 2);
	irig_fini(&r);
}

VT_CASE(unpop_and_resubmit)
{
	struct irig r;
	struct vhu_inflight_queue *q;

	VT_REQUIRE(irig_init(&r, 8) == 0);
	q = area(&r);
	drv_publish(&r.d, 4);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(q->desc[4].inflight, 1);
	VT_EQ(vhu_vring_unpop(&r.vr, 1), 0);
	VT_EQ(q->desc[4].inflight, 0); /* given back: not in flight */
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 4);
	drv_publish(&r.d, 6);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_REQUIRE(irig_crash_and_reconnect(&r) == 0);
	/* resubmitted chains can be given back too; then avail ones follow */
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 4);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 6);
	drv_publish(&r.d, 1);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 1);
	VT_EQ(vhu_vring_unpop(&r.vr, 2), 0); /* heads 1 (avail) and 6 (resubmit) */
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 6);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 1);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 0);
	irig_fini(&r);
}

VT_CASE(guest_reusing_pending_resubmit_head_fails)
{
	struct irig r;

	VT_REQUIRE(irig_init(&r, 8) == 0);
	drv_publish(&r.d, 2);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_REQUIRE(irig_crash_and_reconnect(&r) == 0);
	/* a driver that publishes head 2 again while it is outstanding */
	drv_publish(&r.d, 2);
	/* resubmission first, then the bogus avail entry */
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 2);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), -EIO);
	irig_fini(&r);
}

VT_CASE(area_checks)
{
	struct irig r;
	struct vhu_inflight_queue *q;
	struct vhu_inflight *small = NULL;
	static uint64_t junk[64];

	VT_REQUIRE(irig_init(&r, 8) == 0);
	q = area(&r);
	/* unknown version: reinitialised, nothing resubmitted */
	q->version = 9;
	q->desc[3].inflight = 1;
	VT_REQUIRE(irig_crash_and_reconnect(&r) == 0);
	q = area(&r);
	VT_EQ(q->version, 1);
	VT_EQ(q->desc[3].inflight, 0);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 0);
	/* desc_num in the shared area is not trusted for bounds */
	q->desc_num = 60000;
	q->desc[3].inflight = 1;
	VT_REQUIRE(irig_crash_and_reconnect(&r) == 0);
	VT_EQ(vhu_vring_pop(&r.vr, &r.c), 1);
	VT_EQ(r.c.id, 3);
	/* a pointer that is not a live queue area is refused */
	vhu_vring_stop(&r.vr);
	r.vr.inflight = junk;
	VT_EQ(vhu_vring_start(&r.vr, r.g.mem, F_BASE), -EINVAL);
	/* an area smaller than the ring is refused */
	VT_REQUIRE(vhu_inflight_create(&small, 1, 4) == 0);
	r.vr.inflight = vhu_inflight_queue(small, 0);
	VT_EQ(vhu_vring_start(&r.vr, r.g.mem, F_BASE), -EINVAL);
	vhu_inflight_free(small);
	r.vr.inflight = NULL;
	VT_EQ(vhu_vring_start(&r.vr, r.g.mem, F_BASE), 0);
	irig_fini(&r);
}
