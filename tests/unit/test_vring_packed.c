/* SPDX-License-Identifier: Apache-2.0 */
/* Packed virtqueue: pop/push, indirect, wrap-around over odd sizes,
 * out-of-order completion, base encoding, event suppression, unpop,
 * hostile rings, dirty log. */
#include <pthread.h>

#include "guest.h"
#include "vring_impl.h"

VT_MAIN

#define MEM_GPA  0x100000ull
#define MEM_SIZE (1024 * 1024ull)
#define RING_A   MEM_GPA
#define RING_B   (MEM_GPA + 0x8000)
#define BUF(i)   (MEM_GPA + 0x20000 + 0x1000ull * (i))
#define TABLE    (MEM_GPA + 0x80000)

#define PF_AVAIL (1u << 7)
#define PF_USED  (1u << 15)
#define EV_EN    0
#define EV_DIS   1
#define EV_DESC  2

#define F_PK    (VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_PACKED))
#define F_BASE  (F_PK | VHU_BIT(VHU_F_RING_INDIRECT_DESC))
#define F_EVIDX (F_BASE | VHU_BIT(VHU_F_RING_EVENT_IDX))

struct pd {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct pev {
	uint16_t off_wrap;
	uint16_t flags;
};

/* The driver side of a packed ring (the test plays the guest). */
struct pdrv {
	struct guest *g;
	uint16_t num;
	uint64_t ring_gpa, drv_gpa, dev_gpa;
	struct pd *ring;
	struct pev *drv, *dev;
	uint16_t avail_pos, used_pos;
	bool avail_wrap, used_wrap;
	uint16_t slots[64]; /* ring slots of each outstanding id */
};

struct tbuf {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* TD_WRITE / TD_INDIRECT */
};

static void pdrv_init(struct pdrv *d, struct guest *g, uint64_t gpa, uint16_t num)
{
	memset(d, 0, sizeof(*d));
	d->g = g;
	d->num = num;
	d->ring_gpa = gpa;
	d->drv_gpa = gpa + 16ull * num;
	d->dev_gpa = d->drv_gpa + 4;
	d->ring = gptr(g, d->ring_gpa);
	d->drv = gptr(g, d->drv_gpa);
	d->dev = gptr(g, d->dev_gpa);
	memset(d->ring, 0, 16ull * num + 8);
	d->avail_wrap = d->used_wrap = true;
}

static uint16_t wrap_bits(bool w)
{
	return w ? PF_AVAIL : PF_USED;
}

/* Make n buffers available as one chain with buffer id `id` (in every
 * descriptor; the device must use the last one's).  Head flags last. */
static void pdrv_add(struct pdrv *d, const struct tbuf *b, unsigned n, uint16_t id)
{
	uint16_t pos = d->avail_pos, head_flags = 0;
	bool w = d->avail_wrap;

	for (unsigned k = 0; k < n; k++) {
		uint16_t fl = (uint16_t)(b[k].flags | (k + 1 < n ? TD_NEXT : 0) | wrap_bits(w));

		d->ring[pos] = (struct pd){b[k].addr, b[k].len, id, k ? fl : 0};
		if (k == 0)
			head_flags = fl;
		if (++pos == d->num) {
			pos = 0;
			w = !w;
		}
	}
	__atomic_store_n(&d->ring[d->avail_pos].flags, head_flags, __ATOMIC_RELEASE);
	d->avail_pos = pos;
	d->avail_wrap = w;
	if (id < 64)
		d->slots[id] = (uint16_t)n;
}

/* Next used descriptor: 1 with id/len/flags, 0 if none. */
static int pdrv_used(struct pdrv *d, uint16_t *id, uint32_t *len, uint16_t *flags)
{
	struct pd *e = &d->ring[d->used_pos];
	uint16_t f = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
	bool a = f & PF_AVAIL, u = f & PF_USED;

	/* Defined outputs either way: callers assert on them after a 0. */
	*id = 0xffff;
	*len = 0;
	if (flags)
		*flags = 0;
	if (a != u || u != d->used_wrap)
		return 0;
	*id = e->id;
	*len = e->len;
	if (flags)
		*flags = f;
	d->used_pos = (uint16_t)(d->used_pos + (*id < 64 ? d->slots[*id] : 1));
	if (d->used_pos >= d->num) {
		d->used_pos = (uint16_t)(d->used_pos - d->num);
		d->used_wrap = !d->used_wrap;
	}
	return 1;
}

struct rig {
	struct guest g;
	struct pdrv a, b;
	struct vhu_vring va, vb;
	int call, err;
	struct iovec iov[16];
	struct vhu_chain c;
};

static void setup_vring(struct pdrv *d, struct vhu_vring *vr, unsigned index)
{
	vhu_vring_init(vr, index, VHU_VRING_PLAIN);
	vr->num = d->num;
	vr->addr.desc_user_addr = g_uva(d->g, d->ring_gpa);
	vr->addr.avail_user_addr = g_uva(d->g, d->drv_gpa);
	vr->addr.used_user_addr = g_uva(d->g, d->dev_gpa);
	vr->addr.log_guest_addr = d->dev_gpa;
	vr->addr_set = true;
	vr->enabled = true;
	vr->base = 0x8000; /* avail 0, wrap 1 (DPDK's first value) */
}

static int rig_init(struct rig *r, uint16_t num, uint64_t features)
{
	memset(r, 0, sizeof(*r));
	if (guest_init(&r->g, MEM_GPA, MEM_SIZE))
		return -1;
	pdrv_init(&r->a, &r->g, RING_A, num);
	pdrv_init(&r->b, &r->g, RING_B, num);
	setup_vring(&r->a, &r->va, 0);
	setup_vring(&r->b, &r->vb, 1);
	if (vhu_vring_start(&r->va, r->g.mem, features) ||
	    vhu_vring_start(&r->vb, r->g.mem, features))
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

/* One writable buffer as a chain with id `id`. */
static void add1(struct rig *r, uint16_t id)
{
	struct tbuf b = {BUF(id % 16), 64, TD_WRITE};

	pdrv_add(&r->a, &b, 1, id);
}

VT_CASE(direct_chain_pop_push)
{
	struct rig r;
	struct tbuf b[3] = {{BUF(0), 100, 0}, {BUF(1), 200, 0}, {BUF(2), 300, TD_WRITE}};
	struct vhu_vring_stats st;
	uint16_t id, fl;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	VT_EQ(pop(&r), 0); /* empty */
	VT_CHECK(!vhu_vring_has_avail(&r.va));
	memcpy(gptr(&r.g, BUF(0)), "hello", 5);
	pdrv_add(&r.a, b, 3, 5);
	VT_CHECK(vhu_vring_has_avail(&r.va));
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 5);
	VT_EQ(r.c.ndesc, 3);
	VT_EQ(r.c.out_num, 2);
	VT_EQ(r.c.in_num, 1);
	VT_EQ(r.c.out_len, 300);
	VT_EQ(r.c.in_len, 300);
	VT_CHECK(r.iov[0].iov_base == lptr(&r.g, BUF(0)));
	VT_EQ(memcmp(r.iov[0].iov_base, "hello", 5), 0);
	VT_CHECK(r.iov[2].iov_base == lptr(&r.g, BUF(2)));
	VT_EQ(r.iov[2].iov_len, 300);
	VT_EQ(pop(&r), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, &fl), 0);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 42), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, &fl), 1);
	VT_EQ(id, 5);
	VT_EQ(len, 42);
	VT_EQ(fl, PF_AVAIL | PF_USED | TD_WRITE);
	VT_EQ(r.a.used_pos, 3); /* skipped the whole chain */
	/* pushing the same id again is refused */
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), -EINVAL);
	/* written is clipped; a read-only chain is used without WRITE */
	pdrv_add(&r.a, b, 3, 6);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 5000), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, &fl), 1);
	VT_EQ(len, 300);
	pdrv_add(&r.a, b, 1, 7);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.in_num, 0);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 10), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, &fl), 1);
	VT_EQ(id, 7);
	VT_EQ(len, 0);
	VT_EQ(fl & TD_WRITE, 0);
	vhu_vring_get_stats(&r.va, &st);
	VT_EQ(st.requests, 3);
	VT_EQ(st.errors, 0);
	VT_CHECK(!vhu_vring_failed(&r.va));
	rig_fini(&r);
}

VT_CASE(indirect_chain)
{
	struct rig r;
	struct pd *t;
	struct tbuf ind = {TABLE, 3 * 16, TD_INDIRECT};
	struct tbuf mix[2] = {{BUF(5), 8, 0}, {TABLE + 256, 16, TD_INDIRECT}};
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	t = gptr(&r.g, TABLE);
	/* every entry in order; NEXT and ids inside the table are ignored */
	t[0] = (struct pd){BUF(0), 16, 99, 0};
	t[1] = (struct pd){BUF(1), 512, 0, TD_WRITE | TD_NEXT};
	t[2] = (struct pd){BUF(2), 4, 0, TD_WRITE};
	pdrv_add(&r.a, &ind, 1, 2);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 2);
	VT_EQ(r.c.out_num, 1);
	VT_EQ(r.c.in_num, 2);
	VT_EQ(r.c.out_len, 16);
	VT_EQ(r.c.in_len, 516);
	VT_EQ(r.c.ndesc, 4);
	VT_CHECK(r.iov[1].iov_base == lptr(&r.g, BUF(1)));
	VT_CHECK(r.iov[2].iov_base == lptr(&r.g, BUF(2)));
	VT_EQ(vhu_vring_push(&r.va, &r.c, 516), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 2);
	VT_EQ(len, 516);
	/* direct descriptors may precede the indirect one */
	t[16] = (struct pd){BUF(6), 8, 0, 0};
	pdrv_add(&r.a, mix, 2, 4);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 4);
	VT_EQ(r.c.out_num, 2);
	VT_EQ(r.c.in_num, 0);
	VT_EQ(r.c.out_len, 16);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 4);
	VT_EQ(r.a.used_pos, 3);
	rig_fini(&r);
}

/* Chains of 1..num slots, some completed out of order, many laps. */
static void laps(uint16_t num, unsigned rounds)
{
	struct rig r;
	struct vhu_chain cs[8];
	struct iovec iovs[8][8];
	unsigned served = 0;

	VT_REQUIRE(rig_init(&r, num, F_BASE) == 0);
	for (unsigned round = 0; round < rounds; round++) {
		unsigned nchains = 0, free_slots = num;

		/* fill: chain k has (round + k) % 3 + 1 slots, while they fit */
		for (unsigned k = 0; k < 8; k++) {
			unsigned n = (round + k) % 3 + 1;
			struct tbuf b[3];

			if (n > free_slots)
				break;
			for (unsigned j = 0; j < n; j++)
				b[j] = (struct tbuf){BUF(j), 32, j + 1 == n ? TD_WRITE : 0};
			pdrv_add(&r.a, b, n, (uint16_t)((k + round) % num));
			free_slots -= n;
			nchains++;
			/* ids must be unique among outstanding chains */
			if (nchains == num)
				break;
		}
		for (unsigned k = 0; k < nchains; k++) {
			cs[k] = (struct vhu_chain){.iov = iovs[k], .iov_max = 8};
			VT_EQ(vhu_vring_pop(&r.va, &cs[k]), 1);
			VT_EQ(cs[k].id, (k + round) % num);
			VT_EQ(cs[k].ndesc, (round + k) % 3 + 1);
		}
		VT_EQ(pop(&r), 0);
		/* complete in reverse order on odd rounds */
		for (unsigned k = 0; k < nchains; k++) {
			unsigned x = round % 2 ? nchains - 1 - k : k;
			uint16_t id;
			uint32_t len;

			VT_EQ(vhu_vring_push(&r.va, &cs[x], (uint32_t)(x + 1)), 0);
			VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
			VT_EQ(id, cs[x].id);
			VT_EQ(len, x + 1);
			served++;
		}
		VT_EQ(r.a.used_pos, r.a.avail_pos);
		VT_EQ(r.a.used_wrap, r.a.avail_wrap);
	}
	VT_CHECK(served > rounds);
	VT_CHECK(!vhu_vring_failed(&r.va));
	/* the base carries both positions and wrap counters */
	VT_EQ(vhu_vring_stop(&r.va),
	      (uint32_t)(r.a.avail_pos | (r.a.avail_wrap ? 0x8000 : 0)) * 0x10001u);
	rig_fini(&r);
}

VT_CASE(wraps_size_3)
{
	laps(3, 40);
}

VT_CASE(wraps_size_5)
{
	laps(5, 40);
}

VT_CASE(wraps_size_1_and_max_chain)
{
	struct rig r;
	struct tbuf b[4];
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 1, F_BASE) == 0);
	for (int i = 0; i < 5; i++) {
		add1(&r, 0);
		VT_EQ(pop(&r), 1);
		VT_EQ(pop(&r), 0);
		VT_EQ(vhu_vring_push(&r.va, &r.c, 1), 0);
		VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	}
	rig_fini(&r);
	/* a chain as long as the ring is legal, starting mid-ring */
	VT_REQUIRE(rig_init(&r, 4, F_BASE) == 0);
	add1(&r, 3);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	for (int j = 0; j < 4; j++)
		b[j] = (struct tbuf){BUF(j), 8, 0};
	pdrv_add(&r.a, b, 4, 1);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.ndesc, 4);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 1);
	VT_EQ(r.a.used_pos, 1);
	VT_CHECK(!r.a.used_wrap);
	rig_fini(&r);
}

VT_CASE(out_of_order_completion)
{
	struct rig r;
	struct tbuf b3[3] = {{BUF(0), 8, 0}, {BUF(1), 8, 0}, {BUF(2), 8, TD_WRITE}};
	struct tbuf b2[2] = {{BUF(3), 8, 0}, {BUF(4), 8, TD_WRITE}};
	struct vhu_chain A, B, C;
	struct iovec ia[4], ib[4], ic[4];
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	pdrv_add(&r.a, b3, 3, 0); /* slots 0-2 */
	add1(&r, 1);              /* slot 3 */
	pdrv_add(&r.a, b2, 2, 2); /* slots 4-5 */
	A = (struct vhu_chain){.iov = ia, .iov_max = 4};
	B = (struct vhu_chain){.iov = ib, .iov_max = 4};
	C = (struct vhu_chain){.iov = ic, .iov_max = 4};
	VT_EQ(vhu_vring_pop(&r.va, &A), 1);
	VT_EQ(vhu_vring_pop(&r.va, &B), 1);
	VT_EQ(vhu_vring_pop(&r.va, &C), 1);
	VT_EQ(vhu_vring_push(&r.va, &B, 11), 0);
	VT_EQ(vhu_vring_push(&r.va, &C, 22), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 1);
	VT_EQ(len, 11);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 2);
	VT_EQ(len, 8); /* clipped to the writable length */
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 0);
	/* the driver reuses ids 1 and 2 while 0 is still out: slots 6, 7, 0' */
	add1(&r, 1);
	pdrv_add(&r.a, b2, 2, 2);
	VT_EQ(vhu_vring_pop(&r.va, &B), 1);
	VT_EQ(B.id, 1);
	VT_EQ(vhu_vring_pop(&r.va, &C), 1);
	VT_EQ(C.id, 2);
	VT_EQ(vhu_vring_push(&r.va, &A, 1), 0);
	VT_EQ(vhu_vring_push(&r.va, &C, 2), 0);
	VT_EQ(vhu_vring_push(&r.va, &B, 3), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 2);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 1);
	VT_EQ(r.a.used_pos, 1);
	VT_CHECK(!r.a.used_wrap);
	VT_EQ(vhu_vring_stop(&r.va), 0x00010001u);
	rig_fini(&r);
}

VT_CASE(e2big_consumes_chain)
{
	struct rig r;
	struct tbuf b[3] = {{BUF(0), 8, 0}, {BUF(1), 8, TD_WRITE}, {BUF(2), 8, TD_WRITE}};
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 8, F_BASE) == 0);
	pdrv_add(&r.a, b, 3, 6);
	r.c.iov_max = 2;
	VT_EQ(pop(&r), -E2BIG);
	VT_EQ(r.c.id, 6);
	VT_CHECK(!vhu_vring_failed(&r.va));
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 6);
	VT_EQ(pop(&r), 0);
	rig_fini(&r);
}

/* ---- burst pop ---------------------------------------------------------------------------- */

VT_CASE(burst_in_ring_order_and_e2big)
{
	struct rig r;
	struct tbuf one = {BUF(0), 8, TD_WRITE};
	struct tbuf three[3] = {{BUF(1), 8, 0}, {BUF(2), 8, TD_WRITE}, {BUF(3), 8, TD_WRITE}};
	struct iovec iov[4][2];
	struct vhu_chain cs[4], *p[4];
	struct vhu_vring_stats st;
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 8, F_EVIDX) == 0);
	for (unsigned i = 0; i < 4; i++) {
		cs[i] = (struct vhu_chain){.iov = iov[i], .iov_max = 2};
		p[i] = &cs[i];
	}
	VT_EQ(vhu_vring_pop_burst(&r.va, p, 4), 0);
	pdrv_add(&r.a, &one, 1, 4);
	pdrv_add(&r.a, &one, 1, 2);
	pdrv_add(&r.a, three, 3, 7); /* needs 3 iovecs: has 2 */
	pdrv_add(&r.a, &one, 1, 1);
	VT_EQ(vhu_vring_pop_burst(&r.va, p, 4), 2);
	VT_EQ(cs[0].id, 4);
	VT_EQ(cs[1].id, 2);
	VT_EQ(cs[1].in_len, 8);
	VT_CHECK(iov[1][0].iov_base == lptr(&r.g, BUF(0)));
	VT_EQ(r.a.dev->flags, EV_DESC); /* the device event area, once */
	VT_EQ(r.a.dev->off_wrap, 2 | 0x8000);
	VT_EQ(vhu_vring_pop_burst(&r.va, p + 2, 2), -E2BIG);
	VT_EQ(cs[2].id, 7);
	VT_EQ(vhu_vring_pop_burst(&r.va, p + 3, 4), 1);
	VT_EQ(cs[3].id, 1);
	VT_EQ(vhu_vring_pop_burst(&r.va, p, 4), 0);
	vhu_vring_get_stats(&r.va, &st);
	VT_EQ(st.requests, 4);
	for (unsigned i = 0; i < 4; i++)
		VT_EQ(vhu_vring_push(&r.va, &cs[i], 0), 0);
	for (unsigned i = 0; i < 4; i++)
		VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(vhu_vring_unpop(&r.va, 1), -EINVAL);
	rig_fini(&r);
}

/* ---- base encoding ---------------------------------------------------------------------- */

VT_CASE(base_encoding)
{
	struct rig r;
	uint16_t id;
	uint32_t len;

	/* QEMU style: avail 3 wrap 0, used 1 wrap 0 (2 slots lost in flight) */
	VT_REQUIRE(rig_init(&r, 5, F_BASE) == 0);
	vhu_vring_stop(&r.va);
	r.va.base = 0x00010003;
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), 0);
	r.a.avail_pos = 3;
	r.a.avail_wrap = false;
	r.a.used_pos = 1;
	r.a.used_wrap = false;
	r.a.slots[0] = 2; /* the lost chain at slot 1 had 2 slots */
	add1(&r, 4);      /* slot 3 (wrap 0) */
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 4);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1); /* written at the used position 1 */
	VT_EQ(id, 4);
	VT_EQ(vhu_vring_stop(&r.va), 0x00020004u);
	/* DPDK style: only the avail half; used = avail */
	r.va.base = 0x8002;
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), 0);
	VT_EQ(vhu_vring_stop(&r.va), 0x80028002u);
	/* out of range or inconsistent */
	r.va.base = 0x8005; /* avail position 5 of 5 */
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), -EINVAL);
	r.va.base = 0x80058000;
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), -EINVAL);
	r.va.base = 0x80038001; /* used ahead of avail in the same lap */
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), -EINVAL);
	r.va.base = 0x80010003; /* avail 7 slots ahead of used in a ring of 5 */
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), -EINVAL);
	r.va.base = 0x80030003; /* used one lap behind at the same position: full */
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), 0);
	VT_EQ(vhu_vring_stop(&r.va), 0x80030003u);
	rig_fini(&r);
}

VT_CASE(start_validates)
{
	struct rig r;
	struct vhu_vring *v = &r.va;

	VT_REQUIRE(rig_init(&r, 6, F_BASE) == 0); /* non power of two: fine */
	vhu_vring_stop(v);
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE & ~VHU_BIT(VHU_F_RING_PACKED)), -EINVAL);
	v->num = 0;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EINVAL);
	v->num = 32769;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EINVAL);
	v->num = 6;
	v->addr.desc_user_addr += 8; /* misaligned */
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	v->addr.desc_user_addr -= 8;
	v->addr.avail_user_addr += 2;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	v->addr.avail_user_addr -= 2;
	v->addr.used_user_addr = g_uva(&r.g, MEM_GPA + MEM_SIZE - 2); /* crosses the end */
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	v->addr.used_user_addr = g_uva(&r.g, r.a.dev_gpa);
	v->addr.desc_user_addr = g_uva(&r.g, MEM_GPA + MEM_SIZE - 16 * 5);
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EFAULT);
	v->addr.desc_user_addr = g_uva(&r.g, r.a.ring_gpa);
	/* an inflight pointer that is not a live area is refused */
	v->inflight = (void *)16;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), -EINVAL);
	v->inflight = NULL;
	VT_EQ(vhu_vring_start(v, r.g.mem, F_BASE), 0);
	add1(&r, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	rig_fini(&r);
}

/* ---- inflight area ------------------------------------------------------------------ */

#define PK_VERSION 0x8001

/* A used write in progress, as the area records it for buffer `id`. */
static void set_pending(struct vhu_inflight_queue *q, uint16_t id, uint16_t old, uint16_t nslots,
                        uint32_t len)
{
	q->desc[id].counter = len | (uint64_t)old << 32 | (uint64_t)nslots << 48;
	q->desc[id].padding[0] = 1;
}

static unsigned count_inflight(const struct vhu_inflight_queue *q, unsigned n)
{
	unsigned c = 0;

	for (unsigned i = 0; i < n; i++)
		c += q->desc[i].inflight == 1;
	return c;
}

/* A new back end (same guest ring, same inflight area): QEMU sends its
 * stale base (it does not restore packed positions after a crash). */
static int restart(struct rig *r, uint32_t base, struct vhu_inflight_queue *q)
{
	vhu_vring_stop(&r->va);
	r->va.base = base;
	r->va.inflight = q;
	return vhu_vring_start(&r->va, r->g.mem, F_BASE);
}

VT_CASE(inflight_in_order_and_crash_recovery)
{
	struct rig r;
	struct vhu_inflight *inf;
	struct vhu_inflight_queue *q;
	struct tbuf b2[2] = {{BUF(0), 8, 0}, {BUF(1), 8, TD_WRITE}};
	struct vhu_chain A, B;
	struct iovec ia[4], ib[4];
	int kick = efd();
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 5, F_BASE) == 0);
	VT_REQUIRE(vhu_inflight_create(&inf, 1, 8) == 0);
	q = vhu_inflight_queue(inf, 0);
	r.va.kick_fd = kick;
	VT_REQUIRE(restart(&r, 0x80008000u, q) == 0);
	VT_EQ(q->version, PK_VERSION);
	VT_EQ(q->used_idx, 0x8000);
	pdrv_add(&r.a, b2, 2, 0); /* A: slots 0-1 */
	add1(&r, 1);              /* B: slot 2 */
	add1(&r, 2);              /* C: slot 3 */
	A = (struct vhu_chain){.iov = ia, .iov_max = 4};
	B = (struct vhu_chain){.iov = ib, .iov_max = 4};
	VT_EQ(vhu_vring_pop(&r.va, &A), 1);
	VT_EQ(vhu_vring_pop(&r.va, &B), 1);
	VT_EQ(pop(&r), 1); /* C */
	VT_EQ(count_inflight(q, 8), 3);
	/* B completes first: held, nothing visible, no double push */
	VT_EQ(vhu_vring_push(&r.va, &B, 5), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 0);
	VT_EQ(vhu_vring_push(&r.va, &B, 5), -EINVAL);
	VT_EQ(q->used_idx, 0x8000);
	VT_EQ(vhu_vring_notify(&r.va), 1); /* first decision */
	/* A completes: A then B are written, in pop order */
	VT_EQ(vhu_vring_push(&r.va, &A, 8), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 0);
	VT_EQ(len, 8);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 1);
	VT_EQ(len, 5);
	VT_EQ(q->used_idx, 0x8003);
	VT_EQ(count_inflight(q, 8), 1);
	VT_EQ(q->desc[0].padding[0], 0);
	VT_EQ(vhu_vring_notify(&r.va), 1);

	/* crash with C in flight: the new back end pops C again from the
	 * recorded position, without waiting for a kick */
	efd_read(kick);
	VT_REQUIRE(restart(&r, 0x80008000u, q) == 0);
	VT_EQ(count_inflight(q, 8), 0); /* popped afresh */
	VT_EQ(efd_read(kick), 1);
	VT_EQ(vhu_vring_stop(&r.va), 0x80038003u);
	VT_REQUIRE(restart(&r, 0x80008000u, q) == 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 2);
	VT_EQ(pop(&r), 0);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 64), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 2);
	VT_EQ(len, 64);
	VT_EQ(q->used_idx, 0x8004);
	VT_EQ(count_inflight(q, 8), 0);
	/* nothing in flight: a restart pops nothing, needs no kick */
	efd_read(kick);
	VT_REQUIRE(restart(&r, 0x80008000u, q) == 0);
	VT_EQ(efd_read(kick), 0);
	VT_EQ(pop(&r), 0);
	/* and goes on across the wrap */
	for (uint16_t i = 0; i < 7; i++) {
		add1(&r, i % 5);
		VT_EQ(pop(&r), 1);
		VT_EQ(vhu_vring_push(&r.va, &r.c, 1), 0);
		VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
		VT_EQ(id, i % 5);
	}
	VT_EQ(q->used_idx, 0x8001); /* 4 + 7 = slot 1 two laps on */
	r.va.inflight = NULL;
	vhu_inflight_free(inf);
	r.va.kick_fd = -1;
	close(kick);
	rig_fini(&r);
}

VT_CASE(inflight_interrupted_used_write)
{
	struct rig r;
	struct vhu_inflight *inf;
	struct vhu_inflight_queue *q;
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 4, F_BASE) == 0);
	VT_REQUIRE(vhu_inflight_create(&inf, 1, 4) == 0);
	q = vhu_inflight_queue(inf, 0);
	VT_REQUIRE(restart(&r, 0x80008000u, q) == 0);
	/* crash after the record, before the used descriptor: finished at start */
	add1(&r, 3);
	VT_EQ(pop(&r), 1);
	set_pending(q, 3, 0x8000, 1, 33);
	VT_REQUIRE(restart(&r, 0x80008000u, q) == 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 3);
	VT_EQ(len, 33);
	VT_EQ(q->desc[3].padding[0], 0);
	VT_EQ(q->used_idx, 0x8001);
	VT_EQ(pop(&r), 0);
	/* crash after the used descriptor, before used_idx: not written twice */
	add1(&r, 2);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 7), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 2);
	set_pending(q, 2, 0x8001, 1, 7);
	q->used_idx = 0x8001;
	VT_REQUIRE(restart(&r, 0x80008000u, q) == 0);
	VT_EQ(q->used_idx, 0x8002);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 0);
	add1(&r, 1);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 1);
	/* ... even when the driver already reused the slot (next lap, avail) */
	set_pending(q, 1, 0x8002, 1, 9);
	q->used_idx = 0x8002;
	r.a.ring[2].flags = PF_USED; /* available in lap wrap 0 */
	VT_REQUIRE(restart(&r, 0x80008000u, q) == 0);
	VT_EQ(q->used_idx, 0x8003);
	VT_EQ(r.a.ring[2].flags, PF_USED); /* untouched */
	r.a.ring[2].flags = PF_AVAIL | PF_USED;
	/* a scribbled area (position past the ring) is reinitialised from the base */
	q->used_idx = 0x8009;
	VT_EQ(restart(&r, 0x80038003u, q), 0);
	VT_EQ(q->used_idx, 0x8003);
	set_pending(q, 1, 0x8009, 1, 7); /* position past the ring: ignored */
	set_pending(q, 2, 0x8003, 0, 7); /* no slots: ignored */
	VT_EQ(restart(&r, 0x80038003u, q), 0);
	VT_EQ(q->desc[1].padding[0], 0);
	VT_EQ(q->desc[2].padding[0], 0);
	VT_EQ(q->used_idx, 0x8003);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 0);
	r.va.inflight = NULL;
	vhu_inflight_free(inf);
	rig_fini(&r);
}

/* ---- unpop ------------------------------------------------------------------------------ */

VT_CASE(unpop_rewinds)
{
	struct rig r;
	struct tbuf b2[2] = {{BUF(0), 8, 0}, {BUF(1), 8, TD_WRITE}};
	struct vhu_chain A;
	struct iovec ia[4];
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 3, F_BASE) == 0);
	pdrv_add(&r.a, b2, 2, 0); /* slots 0-1 */
	add1(&r, 1);              /* slot 2 */
	A = (struct vhu_chain){.iov = ia, .iov_max = 4};
	VT_EQ(vhu_vring_pop(&r.va, &A), 1);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_unpop(&r.va, 3), -EINVAL); /* only 2 out */
	VT_EQ(vhu_vring_unpop(&r.va, 2), 0);       /* back across the wrap */
	VT_EQ(vhu_vring_pop(&r.va, &A), 1);
	VT_EQ(A.id, 0);
	VT_EQ(A.ndesc, 2);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 1);
	VT_EQ(vhu_vring_unpop(&r.va, 1), 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 1);
	/* completed chains cannot be taken back */
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0); /* used at slot 0 */
	VT_EQ(vhu_vring_unpop(&r.va, 1), -EINVAL);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 1);
	/* after an older chain completed, a newer one can still go back */
	add1(&r, 1);                            /* slot 0, lap 2 */
	VT_EQ(pop(&r), 1);                      /* id 1 */
	VT_EQ(vhu_vring_push(&r.va, &A, 0), 0); /* used at slot 1 */
	VT_EQ(vhu_vring_unpop(&r.va, 1), 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(r.c.id, 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0); /* used at slot 0, lap 2 */
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 0);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 1);
	VT_EQ(id, 1);
	VT_EQ(r.a.used_pos, 1);
	VT_CHECK(!vhu_vring_failed(&r.va));
	rig_fini(&r);
}

/* ---- hostile rings --------------------------------------------------------------------- */

enum bad {
	BAD_ID_RANGE,
	BAD_ID_IN_USE,
	BAD_CHAIN_LOOPS,
	BAD_ADDR,
	BAD_ADDR_WRAPS,
	BAD_READ_AFTER_WRITE,
	BAD_NESTED_INDIRECT,
	BAD_INDIRECT_NEXT,
	BAD_INDIRECT_LEN0,
	BAD_INDIRECT_LEN_ODD,
	BAD_INDIRECT_HUGE,
	BAD_INDIRECT_OUTSIDE,
	BAD_INDIRECT_ENTRY_ADDR,
	BAD_INDIRECT_READ_AFTER_WRITE,
	BAD_N
};

static void make_bad(struct rig *r, enum bad k)
{
	struct pd *t = gptr(&r->g, TABLE);
	struct tbuf b[4];

	switch (k) {
	case BAD_ID_RANGE:
		b[0] = (struct tbuf){BUF(0), 8, 0};
		pdrv_add(&r->a, b, 1, 8);
		break;
	case BAD_ID_IN_USE:
		add1(r, 3);
		VT_EQ(pop(r), 1);
		add1(r, 3);
		break;
	case BAD_CHAIN_LOOPS: /* every slot has NEXT: the chain never ends */
		for (int j = 0; j < 4; j++)
			b[j] = (struct tbuf){BUF(j), 8, TD_NEXT};
		pdrv_add(&r->a, b, 4, 0); /* the last one too: back to slot 0 */
		break;
	case BAD_ADDR:
		b[0] = (struct tbuf){MEM_GPA + MEM_SIZE - 4, 8, 0};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_ADDR_WRAPS:
		b[0] = (struct tbuf){~0ull - 4, 8, TD_WRITE};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_READ_AFTER_WRITE:
		b[0] = (struct tbuf){BUF(0), 8, TD_WRITE};
		b[1] = (struct tbuf){BUF(1), 8, 0};
		pdrv_add(&r->a, b, 2, 0);
		break;
	case BAD_NESTED_INDIRECT:
		t[0] = (struct pd){BUF(0), 8, 0, 0};
		t[1] = (struct pd){TABLE + 256, 16, 0, TD_INDIRECT};
		b[0] = (struct tbuf){TABLE, 32, TD_INDIRECT};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_INDIRECT_NEXT:
		t[0] = (struct pd){BUF(0), 8, 0, 0};
		b[0] = (struct tbuf){TABLE, 16, TD_INDIRECT | TD_NEXT};
		b[1] = (struct tbuf){BUF(1), 8, 0};
		/* pdrv_add sets NEXT on all but the last: make it the first */
		pdrv_add(&r->a, b, 2, 0);
		break;
	case BAD_INDIRECT_LEN0:
		b[0] = (struct tbuf){TABLE, 0, TD_INDIRECT};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_INDIRECT_LEN_ODD:
		b[0] = (struct tbuf){TABLE, 24, TD_INDIRECT};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_INDIRECT_HUGE:
		b[0] = (struct tbuf){MEM_GPA, 16 * 32769, TD_INDIRECT};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_INDIRECT_OUTSIDE:
		b[0] = (struct tbuf){MEM_GPA + MEM_SIZE - 16, 32, TD_INDIRECT};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_INDIRECT_ENTRY_ADDR:
		t[0] = (struct pd){0x10, 8, 0, 0};
		b[0] = (struct tbuf){TABLE, 16, TD_INDIRECT};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_INDIRECT_READ_AFTER_WRITE:
		t[0] = (struct pd){BUF(0), 8, 0, TD_WRITE};
		t[1] = (struct pd){BUF(1), 8, 0, 0};
		b[0] = (struct tbuf){TABLE, 32, TD_INDIRECT};
		pdrv_add(&r->a, b, 1, 0);
		break;
	case BAD_N:
		break;
	}
}

/* burst: taken by vhu_vring_pop_burst() (behind a good chain where the
 * ring has room for one), which must fail as a whole. */
static void check_bad(bool burst)
{
	for (int k = 0; k < BAD_N; k++) {
		struct rig r;
		struct vhu_vring_stats st;
		struct vhu_chain cb;
		struct iovec ib[4];
		uint16_t id;
		uint32_t len;

		VT_REQUIRE(rig_init(&r, 4, F_BASE) == 0);
		if (burst && k != BAD_CHAIN_LOOPS && k != BAD_ID_IN_USE)
			add1(&r, 3);
		make_bad(&r, (enum bad)k);
		/* bystander ring B has a good chain */
		r.b.slots[0] = 1;
		{
			struct tbuf b = {BUF(9), 8, TD_WRITE};
			pdrv_add(&r.b, &b, 1, 0);
		}
		if (burst) {
			struct vhu_chain bc[3] = {r.c, r.c, r.c}, *bp[3] = {&bc[0], &bc[1], &bc[2]};

			if (vhu_vring_pop_burst(&r.va, bp, 3) != -EIO)
				fprintf(stderr, "# case %d not refused by a burst\n", k);
		} else if (pop(&r) != -EIO) {
			fprintf(stderr, "# case %d not refused\n", k);
		}
		VT_CHECK(vhu_vring_failed(&r.va));
		VT_EQ(efd_read(r.err), 1);
		VT_EQ(pop(&r), -EIO); /* stays failed */
		VT_EQ(vhu_vring_push(&r.va, &r.c, 0), -EIO);
		vhu_vring_get_stats(&r.va, &st);
		VT_EQ(st.errors, 1);
		cb = (struct vhu_chain){.iov = ib, .iov_max = 4};
		VT_EQ(vhu_vring_pop(&r.vb, &cb), 1);
		VT_EQ(vhu_vring_push(&r.vb, &cb, 8), 0);
		VT_EQ(pdrv_used(&r.b, &id, &len, NULL), 1);
		VT_CHECK(!vhu_vring_failed(&r.vb));
		/* a restart is a new ring */
		vhu_vring_stop(&r.va);
		pdrv_init(&r.a, &r.g, RING_A, 4);
		r.va.base = 0x8000;
		VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_BASE), 0);
		add1(&r, 2);
		VT_EQ(pop(&r), 1);
		rig_fini(&r);
	}
}

VT_CASE(malformed_rings_fail_only_their_ring)
{
	check_bad(false);
	check_bad(true);
}

VT_CASE(indirect_needs_feature)
{
	struct rig r;
	struct pd *t;
	struct tbuf ind = {TABLE, 16, TD_INDIRECT};

	VT_REQUIRE(rig_init(&r, 4, F_PK) == 0);
	t = gptr(&r.g, TABLE);
	t[0] = (struct pd){BUF(0), 8, 0, 0};
	pdrv_add(&r.a, &ind, 1, 0);
	VT_EQ(pop(&r), -EIO);
	rig_fini(&r);
}

/* Random garbage in the ring never crashes and never yields out-of-memory
 * iovecs (run under ASan). */
VT_CASE(random_hostile_rings)
{
	unsigned seed = 12345;

	for (int iter = 0; iter < 300; iter++) {
		struct rig r;
		uint8_t *ring;
		uint16_t num = (uint16_t)(iter % 7 + 1);

		VT_REQUIRE(rig_init(&r, num, iter % 2 ? F_EVIDX : F_BASE) == 0);
		ring = (uint8_t *)r.a.ring;
		for (unsigned i = 0; i < 16u * num; i++) {
			seed = seed * 1103515245 + 12345;
			ring[i] = (uint8_t)(seed >> 16);
		}
		for (unsigned i = 0; i < num; i++) {
			seed = seed * 1103515245 + 12345;
			/* keep addresses mostly inside memory to reach deeper */
			if (seed & 0x10000)
				r.a.ring[i].addr = MEM_GPA + (seed % MEM_SIZE);
			if (seed & 0x20000)
				r.a.ring[i].len %= 4096;
			if (seed & 0x40000)
				r.a.ring[i].id %= num;
		}
		for (int n = 0; n < 3 * num; n++) {
			int ret = pop(&r);

			if (ret == 1 || ret == -E2BIG) {
				for (uint32_t i = 0; ret == 1 && i < r.c.out_num + r.c.in_num;
				     i++) {
					VT_CHECK((uint8_t *)r.iov[i].iov_base >=
					         (uint8_t *)lptr(&r.g, MEM_GPA));
					VT_CHECK((uint8_t *)r.iov[i].iov_base + r.iov[i].iov_len <=
					         (uint8_t *)lptr(&r.g, MEM_GPA) + MEM_SIZE);
				}
				VT_EQ(vhu_vring_push(&r.va, &r.c, 7), 0);
				vhu_vring_notify(&r.va);
			} else if (ret <= 0) {
				break;
			}
		}
		rig_fini(&r);
	}
}

/* ---- notifications ---------------------------------------------------------------------- */

/* One 1-slot request through the ring, its used descriptor consumed. */
static void one_request(struct rig *r, uint16_t id)
{
	uint16_t uid = 0xffff;
	uint32_t len;

	add1(r, id);
	VT_EQ(pop(r), 1);
	VT_EQ(vhu_vring_push(&r->va, &r->c, 0), 0);
	VT_EQ(pdrv_used(&r->a, &uid, &len, NULL), 1);
	VT_EQ(uid, id);
}

VT_CASE(driver_flags_without_event_idx)
{
	struct rig r;
	struct vhu_vring_stats st;

	VT_REQUIRE(rig_init(&r, 5, F_BASE) == 0);
	one_request(&r, 0);
	VT_EQ(vhu_vring_notify(&r.va), 1); /* ENABLE */
	VT_EQ(efd_read(r.call), 1);
	VT_EQ(vhu_vring_notify(&r.va), 0); /* nothing new */
	r.a.drv->flags = EV_DIS;
	one_request(&r, 1);
	VT_EQ(vhu_vring_notify(&r.va), 0);
	VT_EQ(efd_read(r.call), 0);
	/* DESC without EVENT_IDX is reserved: notify rather than lose one */
	r.a.drv->flags = EV_DESC;
	r.a.drv->off_wrap = 0x7fff;
	one_request(&r, 2);
	VT_EQ(vhu_vring_notify(&r.va), 1);
	vhu_vring_get_stats(&r.va, &st);
	VT_EQ(st.calls, 2);
	VT_EQ(st.suppressed, 1);
	rig_fini(&r);
}

VT_CASE(event_idx_notify_decisions)
{
	struct rig r;
	uint16_t id;
	uint32_t len;

	VT_REQUIRE(rig_init(&r, 5, F_EVIDX) == 0);
	r.a.drv->flags = EV_DESC;
	r.a.drv->off_wrap = 0x8000 | 2;    /* interrupt when slot 2 (lap 1) is used */
	one_request(&r, 0);                /* used slot 0 */
	VT_EQ(vhu_vring_notify(&r.va), 1); /* first decision always notifies */
	one_request(&r, 1);                /* slot 1 */
	VT_EQ(vhu_vring_notify(&r.va), 0);
	one_request(&r, 2); /* slot 2: the event */
	VT_EQ(vhu_vring_notify(&r.va), 1);
	one_request(&r, 3); /* slot 3 */
	VT_EQ(vhu_vring_notify(&r.va), 0);
	/* event in the next lap (wrap 0), slot 1: not before we get there */
	r.a.drv->off_wrap = 1;
	one_request(&r, 4); /* slot 4: the used position wraps to 0 */
	VT_EQ(vhu_vring_notify(&r.va), 0);
	one_request(&r, 0); /* slot 0, lap 2 */
	VT_EQ(vhu_vring_notify(&r.va), 0);
	one_request(&r, 1); /* slot 1, lap 2: the event */
	VT_EQ(vhu_vring_notify(&r.va), 1);
	/* several pushes between decisions crossing the event */
	r.a.drv->off_wrap = 3;
	one_request(&r, 2);
	one_request(&r, 3);
	one_request(&r, 4);
	VT_EQ(vhu_vring_notify(&r.va), 1);
	/* a whole ring between decisions always notifies */
	r.a.drv->off_wrap = 0x7fff;
	for (uint16_t i = 0; i < 5; i++)
		one_request(&r, i);
	VT_EQ(vhu_vring_notify(&r.va), 1);
	/* DISABLE and ENABLE still rule with EVENT_IDX */
	r.a.drv->flags = EV_DIS;
	one_request(&r, 0);
	VT_EQ(vhu_vring_notify(&r.va), 0);
	r.a.drv->flags = EV_EN;
	one_request(&r, 1);
	VT_EQ(vhu_vring_notify(&r.va), 1);
	VT_EQ(pdrv_used(&r.a, &id, &len, NULL), 0);
	VT_EQ(r.a.used_pos, r.a.avail_pos);
	/* an event in the previous lap (other wrap) counts as passed */
	r.a.drv->flags = EV_DESC;
	r.a.drv->off_wrap = (uint16_t)((r.a.used_wrap ? 0 : 0x8000) | 4);
	one_request(&r, 2);
	VT_EQ(vhu_vring_notify(&r.va), r.a.used_pos == 0 ? 1 : 0);
	rig_fini(&r);
}

VT_CASE(notify_on_empty)
{
	struct rig r;

	VT_REQUIRE(rig_init(&r, 4, F_EVIDX | VHU_BIT(VHU_F_NOTIFY_ON_EMPTY)) == 0);
	r.a.drv->flags = EV_DIS;
	one_request(&r, 0);
	VT_EQ(vhu_vring_notify(&r.va), 1);
	add1(&r, 1);
	add1(&r, 2);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 0), 0);
	VT_EQ(vhu_vring_notify(&r.va), 0); /* id 2 still available: not empty */
	rig_fini(&r);
}

VT_CASE(device_event_area)
{
	struct rig r;

	/* without EVENT_IDX: flags ENABLE / DISABLE */
	VT_REQUIRE(rig_init(&r, 5, F_BASE) == 0);
	VT_EQ(r.a.dev->flags, EV_EN);
	vhu_vring_disable_notification(&r.va);
	VT_EQ(r.a.dev->flags, EV_DIS);
	VT_CHECK(!vhu_vring_enable_notification(&r.va));
	VT_EQ(r.a.dev->flags, EV_EN);
	vhu_vring_disable_notification(&r.va);
	add1(&r, 0); /* added while kicks were off */
	VT_CHECK(vhu_vring_has_avail(&r.va));
	VT_CHECK(vhu_vring_enable_notification(&r.va));
	VT_EQ(pop(&r), 1);
	VT_CHECK(!vhu_vring_enable_notification(&r.va));
	rig_fini(&r);

	/* with EVENT_IDX: DESC at the next avail position, tracked by pop */
	VT_REQUIRE(rig_init(&r, 3, F_EVIDX) == 0);
	VT_EQ(r.a.dev->flags, EV_DESC);
	VT_EQ(r.a.dev->off_wrap, 0x8000);
	one_request(&r, 0);
	VT_EQ(r.a.dev->off_wrap, 0x8001);
	vhu_vring_disable_notification(&r.va);
	VT_EQ(r.a.dev->flags, EV_DIS);
	one_request(&r, 1);
	one_request(&r, 2);
	VT_EQ(r.a.dev->off_wrap, 0x8001); /* not advanced while disabled */
	VT_CHECK(!vhu_vring_enable_notification(&r.va));
	VT_EQ(r.a.dev->flags, EV_DESC);
	VT_EQ(r.a.dev->off_wrap, 0x0000); /* slot 0 of lap 2 */
	/* a restart clears a suppression left behind */
	vhu_vring_disable_notification(&r.va);
	r.va.base = vhu_vring_stop(&r.va);
	VT_EQ(vhu_vring_start(&r.va, r.g.mem, F_EVIDX), 0);
	VT_EQ(r.a.dev->flags, EV_DESC);
	rig_fini(&r);
}

/* A driver thread adds requests and kicks only when the device asks for it
 * (device event area); the device sleeps on the kick eventfd after
 * re-enabling kicks.  A lost wake-up shows up as a poll timeout. */
struct race {
	struct rig *r;
	int kick;
	unsigned n;
	int ret;
	_Atomic unsigned completed;
};

static bool drv_should_kick(struct pdrv *d, bool evidx, uint16_t old_pos, bool old_wrap)
{
	uint16_t flags, ow;
	int32_t ev, now = d->avail_pos, old;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	flags = __atomic_load_n(&d->dev->flags, __ATOMIC_RELAXED);
	if (!evidx || flags != EV_DESC)
		return flags != EV_DIS;
	ow = __atomic_load_n(&d->dev->off_wrap, __ATOMIC_RELAXED);
	old = old_pos - (old_wrap != d->avail_wrap ? d->num : 0);
	ev = (ow & 0x7fff) - (!!(ow >> 15) != d->avail_wrap ? d->num : 0);
	return old <= ev && ev < now;
}

static void *race_driver(void *arg)
{
	struct race *ra = arg;
	struct pdrv *d = &ra->r->a;
	bool evidx = ra->r->va.event_idx;
	uint64_t one = 1;

	for (unsigned i = 0; i < ra->n; i++) {
		uint16_t old = d->avail_pos, id = (uint16_t)(i % d->num);
		bool ow = d->avail_wrap;
		struct tbuf b = {BUF(id), 8, TD_WRITE};

		/* wait for a free slot (bounded): in-order device, 1-slot chains */
		for (int spin = 0; i - atomic_load(&ra->completed) >= d->num; spin++) {
			if (spin > 20000000) {
				ra->ret = -ETIMEDOUT;
				return NULL;
			}
			sched_yield();
		}
		pdrv_add(d, &b, 1, id);
		if (drv_should_kick(d, evidx, old, ow) &&
		    write(ra->kick, &one, sizeof(one)) != sizeof(one))
			ra->ret = -EIO;
	}
	return NULL;
}

static void notify_race(uint64_t features, uint16_t num)
{
	struct rig r;
	struct race ra;
	pthread_t t;
	unsigned done, sleeps;

	VT_REQUIRE(rig_init(&r, num, features) == 0);
	ra = (struct race){&r, efd(), 20000, 0, 0};
	VT_REQUIRE(pthread_create(&t, NULL, race_driver, &ra) == 0);
	sleeps = dev_serve_race(&r.va, &r.c, ra.kick, ra.n, &ra.completed);
	pthread_join(t, NULL);
	done = atomic_load(&ra.completed);
	fprintf(stderr, "# device slept %u times for %u requests\n", sleeps, ra.n);
	VT_EQ(ra.ret, 0);
	VT_EQ(done, ra.n);
	close(ra.kick);
	rig_fini(&r);
}

VT_CASE(notification_race_no_lost_kick)
{
	notify_race(F_BASE, 8);
}

VT_CASE(notification_race_no_lost_kick_event_idx)
{
	notify_race(F_EVIDX, 5);
}

/* ---- dirty logging ------------------------------------------------------------------- */

VT_CASE(dirty_log_used_descriptors_and_buffers)
{
	struct rig r;
	struct dlog dl;
	struct tbuf b[2] = {{BUF(0), 16, 0}, {BUF(4) + 2048, 3 * 4096 + 100, TD_WRITE}};

	VT_REQUIRE(rig_init(&r, 8, F_EVIDX | VHU_BIT(VHU_F_LOG_ALL)) == 0);
	VT_REQUIRE(dlog_attach(&dl, &r.va) == 0);
	pdrv_add(&r.a, b, 2, 0);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 4096), 0); /* covers pages 4 and 5 only */
	VT_EQ(dlog_bit(&dl, r.a.ring_gpa), 1);       /* the used descriptor (and event areas) */
	VT_EQ(dlog_bit(&dl, BUF(0)), 0);             /* readable: not logged */
	VT_EQ(dlog_bit(&dl, BUF(4)), 1);
	VT_EQ(dlog_bit(&dl, BUF(5)), 1);
	VT_EQ(dlog_bit(&dl, BUF(6)), 0); /* not written */
	VT_EQ(dlog_bit(&dl, BUF(7)), 0);
	/* without VHOST_VRING_F_LOG the ring is not logged, buffers are */
	memset(dl.bm, 0, 4096);
	r.va.addr.flags = 0;
	pdrv_add(&r.a, b, 2, 1);
	VT_EQ(pop(&r), 1);
	VT_EQ(vhu_vring_push(&r.va, &r.c, 1), 0);
	VT_EQ(dlog_bit(&dl, r.a.ring_gpa), 0);
	VT_EQ(dlog_bit(&dl, BUF(4)), 1);
	dlog_detach(&dl, &r.va);
	rig_fini(&r);
}
