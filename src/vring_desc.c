/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the split and packed layouts share: turning descriptors into
 * bounds-checked iovecs (with the hostile-guest checks), indirect table
 * checks, dirty logging of written buffers and ring memory, and the per-id
 * bookkeeping arrays.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "vring_impl.h"

int vhu_vring_malformed(struct vhu_vring *vr, const char *why)
{
	vhu_vring_fail(vr, why);
	return -EIO;
}

void *vhu_vring_map_part(const struct vhu_mem *mem, uint64_t uva, uint64_t len, unsigned align)
{
	uint8_t *p;

	if (uva % align)
		return NULL;
	p = vhu_mem_uva_to_hva(mem, uva, len);
	return p && (uintptr_t)p % align == 0 ? p : NULL;
}

int vhu_vring_alloc_state(struct vhu_vring *vr)
{
	if (vr->alloc_num >= vr->num)
		return 0;
	free(vr->head_state);
	free(vr->avail_heads);
	free(vr->resubmit);
	free(vr->chain_len);
	free(vr->held_len);
	vr->alloc_num = 0;
	vr->head_state = calloc(vr->num, 1);
	vr->avail_heads = calloc(vr->num, sizeof(uint16_t));
	vr->resubmit = calloc(vr->num, sizeof(uint16_t));
	vr->chain_len = calloc(vr->num, sizeof(uint16_t));
	vr->held_len = calloc(vr->num, sizeof(uint32_t));
	if (!vr->head_state || !vr->avail_heads || !vr->resubmit || !vr->chain_len || !vr->held_len)
		return -ENOMEM;
	vr->alloc_num = vr->num;
	return 0;
}

void vhu_vring_count_requests(struct vhu_vring *vr, unsigned n)
{
	/* Only the ring's worker pops: a plain read-modify-write suffices. */
	if (n)
		atomic_store_explicit(
		    &vr->stats.requests,
		    atomic_load_explicit(&vr->stats.requests, memory_order_relaxed) + n,
		    memory_order_relaxed);
}

/* ---- dirty logging ------------------------------------------------------ */

void vhu_vring_log_unmapped(struct vhu_vring *vr)
{
	static atomic_bool warned;

	if (!atomic_exchange(&warned, true))
		VHU_LOGW("vring %u: a write into guest memory that is no longer mapped is not "
		         "logged",
		         vr->index);
}

void vhu_vring_log_flush(struct vhu_vring *vr, struct vhu_log_cache *lc)
{
	uint64_t one = 1;

	vhu_log_cache_flush(lc);
	/* SET_LOG_FD: tell the front end the log changed (as vhost's log_ctx). */
	if (lc->marked && vr->log_fd >= 0 && write(vr->log_fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		VHU_LOGW("vring %u: cannot signal the log eventfd", vr->index);
}

void vhu_vring_log_write(struct vhu_vring *vr, const void *p, size_t len)
{
	struct vhu_dirty *log = vr ? vhu_vring_dirty(vr) : NULL;
	struct vhu_log_cache lc;
	uint64_t gpa;

	if (likely(!log) || !len || !vhu_vring_log_gpa(vr, p, &gpa))
		return;
	vhu_log_cache_init(&lc, log);
	vhu_log_cache_mark(&lc, gpa, len);
	vhu_vring_log_flush(vr, &lc);
}

/* ---- chain walking -------------------------------------------------------- */

static inline bool range_wraps(uint64_t addr, uint32_t len)
{
	return len && addr + (len - 1) < addr;
}

void vhu_walk_begin(struct vhu_walk *w, struct vhu_chain *c)
{
	w->niov = w->nout = 0;
	w->ndesc = 0;
	w->writable = w->e2big = false;
	c->out_len = c->in_len = 0;
}

/* Map one buffer into iovecs; past iov_max only validate (-E2BIG later). */
static inline int map_buf(struct vhu_vring *vr, const struct vhu_mem *mem, struct vhu_walk *w,
                          struct vhu_chain *c, uint64_t addr, uint32_t len)
{
	int n;

	if (likely(!w->e2big && c->iov && w->niov < c->iov_max)) {
		void *p = vhu_vring_gpa(vr, mem, addr, len);

		if (likely(p != NULL)) {
			c->iov[w->niov].iov_base = p;
			c->iov[w->niov].iov_len = len;
			w->niov++;
			return 0;
		}
		/* Spans regions (or is unmapped). */
		n = vhu_mem_gpa_to_iov_hint(mem, addr, len, c->iov + w->niov, c->iov_max - w->niov,
		                            &vr->region_hint);
		if (n >= 0) {
			w->niov += (uint32_t)n;
			return 0;
		}
		if (n != -ENOBUFS)
			return n;
	}
	w->e2big = true;
	/* Out of iovecs: keep validating so a bad chain still fails the ring. */
	n = vhu_mem_gpa_to_iov_hint(mem, addr, len, NULL, 0, &vr->region_hint);
	return n < 0 ? n : 0;
}

const char *vhu_walk_buf(struct vhu_vring *vr, const struct vhu_mem *mem, struct vhu_walk *w,
                         struct vhu_chain *c, uint64_t addr, uint32_t len, bool write)
{
	w->ndesc++;
	if (write) {
		w->writable = true;
		c->in_len += len;
	} else {
		if (unlikely(w->writable))
			return "readable descriptor after a writable one";
		c->out_len += len;
	}
	if (unlikely(range_wraps(addr, len)))
		return "descriptor address + length wraps";
	if (len && unlikely(map_buf(vr, mem, w, c, addr, len) < 0))
		return "descriptor outside guest memory";
	if (!w->writable)
		w->nout = w->niov;
	return NULL;
}

int vhu_walk_end(struct vhu_walk *w, struct vhu_chain *c)
{
	c->ndesc = w->ndesc;
	c->out_num = w->e2big ? 0 : w->nout;
	c->in_num = w->e2big ? 0 : w->niov - w->nout;
	return w->e2big ? -E2BIG : 0;
}

const void *vhu_walk_indirect(struct vhu_vring *vr, const struct vhu_mem *mem, bool nested,
                              uint16_t flags, uint64_t addr, uint32_t len, const char **why)
{
	const void *table;

	*why = NULL;
	if (nested)
		*why = "nested indirect descriptor";
	else if (!(vr->features & VHU_BIT(VHU_F_RING_INDIRECT_DESC)))
		*why = "indirect descriptor not negotiated";
	else if (flags & VHU_DESC_F_NEXT)
		*why = "indirect descriptor with NEXT";
	else if (len == 0 || len % 16 || len / 16 > VHU_MAX_QUEUE_SIZE)
		*why = "bad indirect table length";
	if (*why)
		return NULL;
	table = vhu_vring_gpa(vr, mem, addr, len);
	if (!table)
		*why = "indirect table outside guest memory";
	return table;
}
