/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the split-ring descriptor walker (direct chains, indirect
 * tables, EVENT_IDX, inflight recovery, dirty logging, pop/burst/push/unpop)
 * over a guest memory image and ring taken from the input (see fz.h).
 *
 * Checks: every iovec handed out lies inside a guest memory region and the
 * iovec lengths add up to out_len/in_len; a malformed ring fails the ring,
 * signals its error eventfd once and keeps returning -EIO; push and unpop
 * refuse ids they did not hand out; no fd or memfd mapping is left behind.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fz.h"

#define MAX_HELD   256
#define IOV_MAX_FZ 64

static struct iovec held_iov[MAX_HELD][IOV_MAX_FZ];
static struct vhu_chain held[MAX_HELD];

static void check_failed(struct fz_guest *g, bool *seen_fail)
{
	struct vhu_chain c = {0};
	uint64_t v = 0;

	FZ_ASSERT(vhu_vring_failed(&g->vr));
	if (!*seen_fail) {
		/* Signalled exactly once. */
		FZ_ASSERT(read(g->vr.err_fd, &v, sizeof(v)) == sizeof(v) && v == 1);
		*seen_fail = true;
	}
	FZ_ASSERT(vhu_vring_pop(&g->vr, &c) == -EIO);
}

static void check_chain(struct fz_guest *g, const struct vhu_chain *c, unsigned iovmax)
{
	uint64_t out = 0, in = 0;
	volatile uint8_t sum = 0;

	FZ_ASSERT(c->id < g->vr.num);
	FZ_ASSERT(c->out_num + c->in_num <= iovmax);
	FZ_ASSERT(fz_iov_inside(g->mem, c->iov, c->out_num + c->in_num));
	for (unsigned i = 0; i < c->out_num; i++) {
		const uint8_t *p = c->iov[i].iov_base;

		out += c->iov[i].iov_len;
		for (size_t k = 0; k < c->iov[i].iov_len; k += 512)
			sum += p[k];
	}
	for (unsigned i = c->out_num; i < c->out_num + c->in_num; i++) {
		in += c->iov[i].iov_len;
		memset(c->iov[i].iov_base, 0xa5, c->iov[i].iov_len);
	}
	FZ_ASSERT(out == c->out_len && in == c->in_len);
	(void)sum;
}

static void push_checked(struct fz_guest *g, const struct vhu_chain *c, uint32_t written,
                         bool twice)
{
	int r = vhu_vring_push(&g->vr, c, written);

	if (vhu_vring_failed(&g->vr))
		return; /* the ring went bad in between (cannot happen here) */
	FZ_ASSERT(r == 0);
	if (twice)
		FZ_ASSERT(vhu_vring_push(&g->vr, c, written) == -EINVAL);
}

/* Burst mode (ops bit 4): take chains with vhu_vring_pop_burst() (or
 * its one-iovec-array form) in bursts of 1 to 8, check every one and push
 * them all. */
static void run_burst(struct fz_guest *g, bool *seen_fail)
{
	struct vhu_vring *vr = &g->vr;
	unsigned iovmax = g->h.iovmax % IOV_MAX_FZ + 1;

	for (unsigned it = 0; it < 3 * vr->num + 8; it++) {
		unsigned want = 1 + (g->h.ops + it) % 8;
		struct vhu_chain *p[8];
		int r;

		for (unsigned i = 0; i < want; i++) {
			held[i] = (struct vhu_chain){.iov = held_iov[i], .iov_max = iovmax};
			p[i] = &held[i];
		}
		/* Odd rounds: all chains from one iovec array. */
		if (it & 1)
			r = vhu_vring_pop_burst_iov(vr, p, want, &held_iov[0][0], iovmax * want);
		else
			r = vhu_vring_pop_burst(vr, p, want);
		if (r == -EIO) {
			check_failed(g, seen_fail);
			break;
		}
		if (r == 0)
			break;
		if (r == -E2BIG) {
			FZ_ASSERT(held[0].id < vr->num);
			push_checked(g, &held[0], 0, false);
			continue;
		}
		FZ_ASSERT(r >= 1 && (unsigned)r <= want);
		for (int i = 0; i < r; i++)
			check_chain(g, &held[i], held[i].iov_max);
		for (int i = 0; i < r; i++)
			push_checked(g, &held[i], (uint32_t)held[i].in_len, i & 1);
	}
}

/* Pop until empty or failed, pushing as the ops bits say.  Returns the
 * number of chains still held (not pushed). */
static unsigned run(struct fz_guest *g, bool *seen_fail)
{
	struct vhu_vring *vr = &g->vr;
	unsigned iovmax = g->h.iovmax % IOV_MAX_FZ + 1, nheld = 0, step = 0;
	uint8_t ops = g->h.ops;

	if (ops & 0x10) {
		run_burst(g, seen_fail);
		return 0;
	}

	for (unsigned it = 0; it < 3 * vr->num + 8; it++) {
		struct vhu_chain *c = &held[nheld];
		bool bit_hold = (ops >> (step % 8)) & 1;
		int r;

		step++;
		*c = (struct vhu_chain){.iov = held_iov[nheld], .iov_max = iovmax};
		r = vhu_vring_pop(vr, c);
		if (r == -EIO) {
			check_failed(g, seen_fail);
			break;
		}
		if (r == 0)
			break;
		FZ_ASSERT(c->id < vr->num);
		if (r == -E2BIG) {
			push_checked(g, c, 0, false);
			continue;
		}
		FZ_ASSERT(r == 1);
		check_chain(g, c, iovmax);
		if ((ops & 0x40) && it == 1) {
			/* Give it back: the next pop must return the same head. */
			uint16_t id = c->id;

			FZ_ASSERT(vhu_vring_unpop(vr, 1) == 0);
			FZ_ASSERT(vhu_vring_unpop(vr, nheld + 1) == -EINVAL);
			r = vhu_vring_pop(vr, c);
			FZ_ASSERT(r == 1 || r == -E2BIG || r == -EIO);
			if (r == -EIO) {
				check_failed(g, seen_fail);
				break;
			}
			FZ_ASSERT(c->id == id);
			if (r == -E2BIG) {
				push_checked(g, c, 0, false);
				continue;
			}
			check_chain(g, c, iovmax);
		}
		if (bit_hold && nheld + 1 < MAX_HELD) {
			nheld++;
			continue;
		}
		push_checked(g, c, (ops & 0x80) ? (uint32_t)c->in_len / 2 : (uint32_t)c->in_len,
		             step & 1);
		if (ops & 0x20) {
			vhu_vring_notify(vr);
			vhu_vring_enable_notification(vr);
			vhu_vring_disable_notification(vr);
		}
	}
	return nheld;
}

static void push_held(struct fz_guest *g, unsigned n)
{
	struct vhu_chain bogus = {.id = (uint16_t)g->vr.num};

	while (n--)
		push_checked(g, &held[n], (uint32_t)held[n].in_len, false);
	if (!vhu_vring_failed(&g->vr))
		FZ_ASSERT(vhu_vring_push(&g->vr, &bogus, 0) == -EINVAL);
	vhu_vring_notify(&g->vr);
	vhu_vring_has_avail(&g->vr);
	vhu_vring_enable_notification(&g->vr);
}

static int base_fds = -1, base_maps;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_guest g;
	bool seen_fail = false;
	int r;

	if (base_fds < 0) {
		fz_quiet();
		base_fds = fz_count_fds();
		base_maps = fz_count_memfd_maps();
	}
	r = fz_guest_init(&g, data, size);
	FZ_ASSERT(r >= 0);
	if (r == 0) {
		unsigned n = run(&g, &seen_fail);

		if (g.h.flags & FZ_RESTART) {
			/* Back end "crashes" with n chains in flight and a new
			 * one starts on the same ring (inflight recovery). */
			g.vr.base = vhu_vring_stop(&g.vr);
			seen_fail = false;
			if (vhu_vring_start(&g.vr, g.mem, g.features) == 0) {
				uint64_t v;

				if (read(g.vr.err_fd, &v, sizeof(v)) < 0) {
					/* not signalled: fine */
				}
				n = run(&g, &seen_fail);
			} else {
				n = 0;
			}
		}
		push_held(&g, n);
	}
	fz_guest_fini(&g);
	FZ_ASSERT(fz_count_fds() == base_fds);
	FZ_ASSERT(fz_count_memfd_maps() == base_maps);
	return 0;
}
