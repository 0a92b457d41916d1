/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to vring.c, vring_split.c, vring_packed.c, vring_desc.c and
 * inflight.c: the ring layout operations table, the helpers both layouts
 * share (vring_desc.c) and the inflight-area layout.
 */
#ifndef VHU_VRING_IMPL_H
#define VHU_VRING_IMPL_H

#include "internal.h"

/* Branch hints for the data path (guest errors are the unlikely case). */
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Iovecs the chains of a burst take one after the other
 * (vhu_vring_pop_burst_iov); NULL where each chain brings its own. */
struct vhu_iov_pool {
	struct iovec *iov;
	uint32_t left;
};

/* Before walking chain c: it may use what is left of the pool. */
static inline void vhu_pool_lend(const struct vhu_iov_pool *p, struct vhu_chain *c)
{
	if (p) {
		c->iov = p->iov;
		c->iov_max = p->left;
	}
}

/* Chain c was committed: the iovecs it filled are its own. */
static inline void vhu_pool_take(struct vhu_iov_pool *p, const struct vhu_chain *c)
{
	if (p) {
		p->iov += c->out_num + c->in_num;
		p->left -= c->out_num + c->in_num;
	}
}

/* One ring layout: split (vring_split.c) or packed (vring_packed.c). */
struct vhu_vring_ops {
	const char *name;
	/* Translate addr with mem into vr->desc/avail/used (-EFAULT). */
	int (*map)(struct vhu_vring *vr, const struct vhu_mem *mem);
	/* Adopt base/used index, recover inflight state. Rings are mapped. */
	int (*start)(struct vhu_vring *vr);
	/* Up to n chains (vhu_vring_pop_burst semantics; n >= 1); with a
	 * pool, each chain's iovecs come from it, in order. */
	int (*pop_burst)(struct vhu_vring *vr, struct vhu_chain *const *cs, unsigned n,
	                 struct vhu_iov_pool *pool);
	int (*push)(struct vhu_vring *vr, const struct vhu_chain *c, uint32_t written);
	/* Optional: push n chains, publish the used index once; returns how
	 * many were pushed (a prefix).  NULL: vring.c loops over push. */
	int (*push_batch)(struct vhu_vring *vr, const struct vhu_chain *const *chains,
	                  const uint32_t *written, unsigned n);
	int (*unpop)(struct vhu_vring *vr, unsigned n);
	/* Does the driver want an interrupt for what was pushed? */
	bool (*need_notify)(struct vhu_vring *vr);
	/* Ask for (enable) or suppress kicks; enable returns has_avail. */
	bool (*set_notification)(struct vhu_vring *vr, bool enable);
	bool (*has_avail)(struct vhu_vring *vr);
	/* GET_VRING_BASE value of a started ring; NULL: last_avail_idx. */
	uint32_t (*base)(const struct vhu_vring *vr);
	/* Mark every byte of ring memory the device writes (migration log). */
	void (*log_all)(struct vhu_vring *vr, struct vhu_log_cache *lc);
};

extern const struct vhu_vring_ops vhu_split_ops;
extern const struct vhu_vring_ops vhu_packed_ops;

/* ---- vring_desc.c: helpers shared by the layouts ----------------------- */

/* Keep the compiler from re-reading guest memory behind a local copy. */
#define vhu_compiler_barrier() __asm__ __volatile__("" ::: "memory")

/* Descriptor flags common to both layouts (packed adds AVAIL/USED). */
#define VHU_DESC_F_NEXT     1u
#define VHU_DESC_F_WRITE    2u
#define VHU_DESC_F_INDIRECT 4u

static inline struct vhu_dirty *vhu_vring_dirty(const struct vhu_vring *vr)
{
	return atomic_load_explicit(&((struct vhu_vring *)vr)->dirty, memory_order_acquire);
}

/*
 * Data-path gpa -> hva for [gpa, gpa+len) inside one region, or NULL:
 * the ring's one-entry cache first (a few instructions: guest buffers
 * mostly come from one region), then the region hint and the sorted
 * region table (refilling the cache).
 */
static inline void *vhu_vring_gpa(struct vhu_vring *vr, const struct vhu_mem *mem, uint64_t gpa,
                                  uint64_t len)
{
	uint64_t off = gpa - vr->tlb_gpa;
	uint8_t *p;

	if (likely(off < vr->tlb_len && len <= vr->tlb_len - off))
		return vr->tlb_hva + off;
	p = vhu_mem_gpa_hint(mem, gpa, len, &vr->region_hint);
	if (p) {
		const struct vhu_mem_region *r = mem->regions[vr->region_hint];

		vr->tlb_gpa = r->gpa;
		vr->tlb_len = r->size;
		vr->tlb_hva = r->hva;
	}
	return p;
}

/* Forget the translation cache (memory snapshot or ring changed). */
static inline void vhu_vring_tlb_flush(struct vhu_vring *vr)
{
	vr->region_hint = vr->log_hint = 0;
	vr->tlb_gpa = vr->tlb_len = 0;
	vr->tlb_hva = NULL;
}

/* Fail the ring with `why`; returns -EIO. */
int vhu_vring_malformed(struct vhu_vring *vr, const char *why);

/* Host address of [uva, uva+len) if it is one mapping aligned to `align`. */
void *vhu_vring_map_part(const struct vhu_mem *mem, uint64_t uva, uint64_t len, unsigned align);

/* Size the per-id bookkeeping arrays for vr->num entries. 0 or -ENOMEM. */
int vhu_vring_alloc_state(struct vhu_vring *vr);

/*
 * Migration logging (vring_desc.c), with the pushing thread's log cache:
 * log_written marks the first `written` bytes of a chain's writable part,
 * log_ring `len` bytes of ring memory at hva (when the front end asked for
 * ring logging with VHOST_VRING_F_LOG), log_flush ORs the cache into the
 * log and signals SET_LOG_FD's eventfd if anything was marked.  Every mark
 * follows the write it covers: a front end collecting the log concurrently
 * then reads the page after the write.
 */
void vhu_vring_log_flush(struct vhu_vring *vr, struct vhu_log_cache *lc);
/* Reports (once) a write into memory no longer in the table. */
void vhu_vring_log_unmapped(struct vhu_vring *vr);

/* hva -> gpa for logging; a write into memory removed while the request
 * was in flight has nothing to mark. */
static inline bool vhu_vring_log_gpa(struct vhu_vring *vr, const void *hva, uint64_t *gpa)
{
	const struct vhu_mem *mem = atomic_load_explicit(&vr->mem, memory_order_acquire);

	if (likely(mem && vhu_mem_hva_gpa(mem, hva, gpa, &vr->log_hint) == 0))
		return true;
	vhu_vring_log_unmapped(vr);
	return false;
}

static inline void vhu_vring_log_written(struct vhu_vring *vr, struct vhu_log_cache *lc,
                                         const struct vhu_chain *c, uint64_t written)
{
	for (uint32_t i = 0; written && i < c->in_num; i++) {
		const struct iovec *v = &c->iov[c->out_num + i];
		uint64_t n = v->iov_len < written ? v->iov_len : written;
		uint64_t gpa;

		if (n && vhu_vring_log_gpa(vr, v->iov_base, &gpa))
			vhu_log_cache_mark(lc, gpa, n);
		written -= n;
	}
}

static inline void vhu_vring_log_ring(struct vhu_vring *vr, struct vhu_log_cache *lc,
                                      const void *hva, uint64_t len)
{
	uint64_t gpa;

	if ((vr->addr.flags & (1u << VHU_VRING_F_LOG)) && vhu_vring_log_gpa(vr, hva, &gpa))
		vhu_log_cache_mark(lc, gpa, len);
}

/* Count n popped chains. */
void vhu_vring_count_requests(struct vhu_vring *vr, unsigned n);

/*
 * Walking one chain into a struct vhu_chain, descriptor by descriptor.
 * begin() resets c; buf() adds one buffer (checks: readable after
 * writable, address + length wrapping, outside guest memory; keeps
 * validating when the iovecs run out); end() sets out_num/in_num/ndesc.
 * buf() returns NULL or why the chain is malformed.
 */
struct vhu_walk {
	uint32_t niov, nout;
	uint16_t ndesc;
	bool writable, e2big;
};
void vhu_walk_begin(struct vhu_walk *w, struct vhu_chain *c);
const char *vhu_walk_buf(struct vhu_vring *vr, const struct vhu_mem *mem, struct vhu_walk *w,
                         struct vhu_chain *c, uint64_t addr, uint32_t len, bool write);
/* 0 or -E2BIG. */
int vhu_walk_end(struct vhu_walk *w, struct vhu_chain *c);

/* Check an INDIRECT descriptor (not negotiated, with NEXT, inside an
 * indirect table, bad length, outside memory) and map its table of
 * len / 16 entries.  Returns the table or NULL with *why set. */
const void *vhu_walk_indirect(struct vhu_vring *vr, const struct vhu_mem *mem, bool nested,
                              uint16_t flags, uint64_t addr, uint32_t len, const char **why);

/* Inflight area of one queue (libvhost-user's VuVirtqInflight). */
struct vhu_inflight_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct vhu_inflight_queue {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct vhu_inflight_desc desc[];
};

#define VHU_INFLIGHT_VERSION 1

/* Bytes of one queue area (64-byte aligned). */
uint64_t vhu_inflight_queue_bytes(uint16_t qsize);

#endif
