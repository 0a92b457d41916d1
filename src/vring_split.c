/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue layout (virtio 1.x, 2.7): descriptor table, avail ring,
 * used ring, optional EVENT_IDX fields, one level of indirect tables, and
 * inflight tracking (libvhost-user's two-step used update).
 *
 * Everything read from guest memory is read once into a local and then
 * checked: the guest may rewrite it concurrently.  Buffer mapping, the
 * hostile-descriptor checks and logging of written buffers live in
 * vring_desc.c (shared with the packed layout).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vring_impl.h"

#define DESC_F_NEXT          1u
#define DESC_F_WRITE         2u
#define DESC_F_INDIRECT      4u
#define AVAIL_F_NO_INTERRUPT 1u
#define USED_F_NO_NOTIFY     1u

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vavail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* then used_event */
};

struct vused_elem {
	uint32_t id;
	uint32_t len;
};

struct vused {
	uint16_t flags;
	uint16_t idx;
	struct vused_elem ring[]; /* then avail_event */
};

/* Keep the compiler from re-reading guest memory behind a local copy. */
#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

static inline struct vavail *avail(const struct vhu_vring *vr)
{
	return vr->avail;
}

static inline struct vused *used(const struct vhu_vring *vr)
{
	return vr->used;
}

static inline uint16_t *used_event(const struct vhu_vring *vr)
{
	return &avail(vr)->ring[vr->num];
}

static inline uint16_t *avail_event(const struct vhu_vring *vr)
{
	return (uint16_t *)&used(vr)->ring[vr->num];
}

static int split_fail(struct vhu_vring *vr, const char *why)
{
	return vhu_vring_malformed(vr, why);
}

/* ---- dirty logging ------------------------------------------------------ */

/* Log a write to the used ring at byte offset off (if the front end asked
 * for used-ring logging with VHOST_VRING_F_LOG): its address is
 * log_guest_addr + off, which the memory table need not cover. */
static inline void log_used(struct vhu_vring *vr, struct vhu_log_cache *lc, uint64_t off,
                            uint64_t len)
{
	if (vr->addr.flags & (1u << VHU_VRING_F_LOG))
		vhu_log_cache_mark(lc, vr->addr.log_guest_addr + off, len);
}

/* Ring stop while logging: the suppression fields (flags, avail_event),
 * written without a mark as notifications go on and off, are marked with
 * the whole used ring, so their last values reach the destination. */
static void split_log_all(struct vhu_vring *vr, struct vhu_log_cache *lc)
{
	log_used(vr, lc, 0, 4 + 8 * (uint64_t)vr->num + (vr->event_idx ? 2 : 0));
}

/*
 * Pushes of n chains whose used entries went to slots start.. (already
 * written): mark the bytes written into their buffers and the entries, and
 * flush, before the used index that makes them visible is published.
 */
static void log_pushes(struct vhu_vring *vr, struct vhu_log_cache *lc,
                       const struct vhu_chain *const *chains, const uint32_t *written, unsigned n,
                       uint16_t start)
{
	uint32_t first = start & (uint16_t)(vr->num - 1), tail = vr->num - first;

	for (unsigned k = 0; k < n; k++) {
		uint32_t w =
		    written[k] < chains[k]->in_len ? written[k] : (uint32_t)chains[k]->in_len;

		if (w)
			vhu_vring_log_written(vr, lc, chains[k], w);
	}
	/* The entries are consecutive (n <= num): one range, two past the end. */
	log_used(vr, lc, 4 + 8 * (uint64_t)first, 8 * (uint64_t)(n < tail ? n : tail));
	if (n > tail)
		log_used(vr, lc, 4, 8 * (uint64_t)(n - tail));
	vhu_log_cache_flush(lc);
}

/* ---- setup --------------------------------------------------------------- */

static int split_map(struct vhu_vring *vr, const struct vhu_mem *mem)
{
	uint64_t num = vr->num, ev = vr->event_idx ? 2 : 0;
	void *d, *a, *u;

	d = vhu_vring_map_part(mem, vr->addr.desc_user_addr, 16 * num, 16);
	a = vhu_vring_map_part(mem, vr->addr.avail_user_addr, 4 + 2 * num + ev, 2);
	u = vhu_vring_map_part(mem, vr->addr.used_user_addr, 4 + 8 * num + ev, 4);
	if (!d || !a || !u)
		return -EFAULT;
	vr->desc = d;
	vr->avail = a;
	vr->used = u;
	return 0;
}

struct resub {
	uint64_t counter;
	uint16_t head;
};

static int cmp_resub(const void *a, const void *b)
{
	const struct resub *x = a, *y = b;
	return x->counter < y->counter ? -1 : x->counter > y->counter;
}

/* First use of a queue area (or one we cannot interpret): track afresh. */
static void inflight_init(struct vhu_vring *vr, struct vhu_inflight_queue *q, uint16_t entries)
{
	if (q->version != 0)
		VHU_LOGW("vring %u: inflight area version %u unknown, reinitialised", vr->index,
		         q->version);
	memset(q->desc, 0, entries * sizeof(q->desc[0]));
	q->desc_num = entries;
	q->last_batch_head = 0;
	q->used_idx = vr->used_idx;
	compiler_barrier();
	q->version = VHU_INFLIGHT_VERSION;
	vr->inflight_counter = 1;
}

/*
 * Reconnect after a crash (libvhost-user's vu_check_queue_inflights): undo
 * a half-finished push, then queue every head still marked inflight for
 * resubmission, oldest first; the driver's avail position is the used index
 * plus the heads still outstanding.
 */
static int inflight_recover(struct vhu_vring *vr)
{
	struct vhu_inflight_queue *q = vr->inflight;
	uint16_t entries = vhu_inflight_area_entries(q);
	struct resub *rs;
	unsigned n = 0;

	if (!entries || vr->num > entries) {
		VHU_LOGE("vring %u: inflight area invalid or smaller than the ring", vr->index);
		return -EINVAL;
	}
	if (q->version != VHU_INFLIGHT_VERSION) {
		inflight_init(vr, q, entries);
		return 0;
	}
	if (q->used_idx != vr->used_idx) {
		/* A push (or batch, linked by next) was published, not cleared. */
		uint16_t h = q->last_batch_head, cnt = (uint16_t)(vr->used_idx - q->used_idx);

		for (uint16_t k = 0; k < cnt && k < vr->num && h < vr->num; k++) {
			q->desc[h].inflight = 0;
			h = q->desc[h].next;
		}
		compiler_barrier();
		q->used_idx = vr->used_idx;
	}
	rs = malloc(vr->num * sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	for (uint16_t i = 0; i < vr->num; i++) {
		if (q->desc[i].inflight == 1) {
			rs[n].counter = q->desc[i].counter;
			rs[n++].head = i;
		}
	}
	qsort(rs, n, sizeof(*rs), cmp_resub);
	vr->inflight_counter = n ? rs[n - 1].counter + 1 : 1;
	for (unsigned i = 0; i < n; i++) {
		vr->resubmit[i] = rs[i].head;
		vr->head_state[rs[i].head] = 2;
	}
	free(rs);
	vr->nresubmit = (uint16_t)n;
	vr->last_avail_idx = vr->shadow_avail_idx = (uint16_t)(vr->used_idx + n);
	if (n)
		VHU_LOGI("vring %u: resubmitting %u inflight requests", vr->index, n);
	return 0;
}

static int split_start(struct vhu_vring *vr)
{
	int ret = vhu_vring_alloc_state(vr);

	if (ret)
		return ret;
	memset(vr->head_state, 0, vr->num);
	/* The used index lives in guest memory: after a reconnect or migration
	 * it, not SET_VRING_BASE, says where completions continue. */
	vr->used_idx = __atomic_load_n(&used(vr)->idx, __ATOMIC_ACQUIRE);
	vr->last_avail_idx = vr->shadow_avail_idx = vr->base;
	vr->avail_pops = 0;
	vr->inuse = 0;
	vr->nresubmit = vr->resubmit_pos = 0;
	vr->signalled_used_valid = false;
	vr->notify_disabled = false;
	vhu_vring_tlb_flush(vr);
	if (vr->inflight) {
		ret = inflight_recover(vr);
		if (ret)
			return ret;
	}
	if ((uint16_t)(vr->last_avail_idx - vr->used_idx) > vr->num) {
		/* An impossible base (more than a ring ahead of the used
		 * index).  DPDK's virtio-user sends 0 when it reconnects in
		 * server mode, its ring going on where it was: resume at the
		 * used index, as DPDK's vhost library does; chains taken and
		 * not completed are handed out again. */
		VHU_LOGW("vring %u: base %u is more than the ring size ahead of the used index "
		         "%u; resuming at the used index",
		         vr->index, vr->last_avail_idx, vr->used_idx);
		vr->last_avail_idx = vr->shadow_avail_idx = vr->used_idx;
	}
	/* A previous back end may have left kicks suppressed. */
	__atomic_store_n(&used(vr)->flags, 0, __ATOMIC_RELAXED);
	if (vr->event_idx)
		__atomic_store_n(avail_event(vr), vr->last_avail_idx, __ATOMIC_RELAXED);
	/* Resubmissions must not wait for the driver's next kick. */
	if (vr->nresubmit && vr->kick_fd >= 0) {
		uint64_t one = 1;
		if (write(vr->kick_fd, &one, sizeof(one)) < 0)
			VHU_LOGW("vring %u: self-kick failed", vr->index);
	}
	return 0;
}

/* ---- pop ------------------------------------------------------------------ */

/* A buffer the one-region fast path could not map: it spans regions or
 * lies outside guest memory, or the iovecs ran out (then it is only
 * validated and *e2big set).  NULL or why the chain is malformed. */
static const char *map_slow(struct vhu_vring *vr, const struct vhu_mem *mem, struct vhu_chain *c,
                            uint32_t *niov, bool *e2big, uint64_t addr, uint32_t len)
{
	int n;

	if (!*e2big && c->iov && *niov < c->iov_max) {
		n = vhu_mem_gpa_to_iov_hint(mem, addr, len, c->iov + *niov, c->iov_max - *niov,
		                            &vr->region_hint);
		if (n >= 0) {
			*niov += (uint32_t)n;
			return NULL;
		}
		if (n != -ENOBUFS)
			return "descriptor outside guest memory";
	}
	*e2big = true;
	n = vhu_mem_gpa_to_iov_hint(mem, addr, len, NULL, 0, &vr->region_hint);
	return n < 0 ? "descriptor outside guest memory" : NULL;
}

/* One direct descriptor inside one region (network frames, small
 * requests): c filled, true.  Anything else: false, for the full walk. */
static inline bool walk_single(struct vhu_vring *vr, const struct vhu_mem *mem,
                               const struct vdesc *d, struct vhu_chain *c)
{
	void *p;

	if ((d->flags & (DESC_F_NEXT | DESC_F_INDIRECT)) || !d->len || !c->iov || !c->iov_max ||
	    d->addr + (d->len - 1) < d->addr)
		return false;
	p = vhu_vring_gpa(vr, mem, d->addr, d->len);
	if (unlikely(!p))
		return false;
	c->iov[0].iov_base = p;
	c->iov[0].iov_len = d->len;
	c->ndesc = 1;
	if (d->flags & DESC_F_WRITE) {
		c->out_num = 0;
		c->in_num = 1;
		c->out_len = 0;
		c->in_len = d->len;
	} else {
		c->out_num = 1;
		c->in_num = 0;
		c->out_len = d->len;
		c->in_len = 0;
	}
	return true;
}

/*
 * Walk the chain at head into c: direct descriptors, or one indirect table
 * (not nested).  Every descriptor is read once into a local, then checked
 * (loops, next index, readable after writable, address + length wrapping,
 * outside guest memory); past c->iov_max buffers are only validated.  A
 * lone direct descriptor takes a short cut with the same checks.
 * 0, -E2BIG, or -EIO (ring failed).  The ring state is not touched: the
 * caller commits the chain.
 */
static inline __attribute__((always_inline)) int
walk_chain(struct vhu_vring *vr, const struct vhu_mem *mem, uint16_t head, struct vhu_chain *c)
{
	const struct vdesc *table = vr->desc;
	uint32_t max = vr->num, i = head, seen = 0, niov = 0, nout = 0, iov_max;
	uint64_t out_len = 0, in_len = 0;
	uint16_t ndesc = 0;
	bool indirect = false, writable = false, e2big = false;
	const char *why;
	struct vdesc d;

	c->id = head;
	memcpy(&d, &table[i], sizeof(d));
	compiler_barrier();
	if (walk_single(vr, mem, &d, c))
		return 0;
	iov_max = c->iov ? c->iov_max : 0;
	for (;;) {
		if (unlikely(++seen > max))
			return split_fail(vr, "descriptor chain loops or exceeds the ring size");
		ndesc++;
		if (unlikely(d.flags & DESC_F_INDIRECT)) {
			table = vhu_walk_indirect(vr, mem, indirect, d.flags, d.addr, d.len, &why);
			if (!table)
				return split_fail(vr, why);
			max = d.len / 16;
			i = seen = 0;
			indirect = true;
			memcpy(&d, &table[0], sizeof(d));
			compiler_barrier();
			continue;
		}
		if (d.flags & DESC_F_WRITE) {
			writable = true;
			in_len += d.len;
		} else {
			if (unlikely(writable))
				return split_fail(vr, "readable descriptor after a writable one");
			out_len += d.len;
		}
		if (d.len) {
			void *p;

			if (unlikely(d.addr + (d.len - 1) < d.addr))
				return split_fail(vr, "descriptor address + length wraps");
			p = likely(niov < iov_max) && !e2big ? vhu_vring_gpa(vr, mem, d.addr, d.len)
			                                     : NULL;
			if (likely(p != NULL)) {
				c->iov[niov].iov_base = p;
				c->iov[niov].iov_len = d.len;
				niov++;
			} else if ((why = map_slow(vr, mem, c, &niov, &e2big, d.addr, d.len))) {
				return split_fail(vr, why);
			}
		}
		if (!writable)
			nout = niov;
		if (!(d.flags & DESC_F_NEXT))
			break;
		i = d.next;
		if (unlikely(i >= max))
			return split_fail(vr, "descriptor next index out of range");
		memcpy(&d, &table[i], sizeof(d));
		compiler_barrier();
	}
	c->ndesc = ndesc;
	c->out_len = out_len;
	c->in_len = in_len;
	c->out_num = e2big ? 0 : nout;
	c->in_num = e2big ? 0 : niov - nout;
	return e2big ? -E2BIG : 0;
}

static inline void mark_popped(struct vhu_vring *vr, uint16_t head, bool record)
{
	vr->head_state[head] = 1;
	vr->inuse++;
	if (record && vr->inflight) {
		struct vhu_inflight_queue *q = vr->inflight;
		q->desc[head].counter = vr->inflight_counter++;
		compiler_barrier();
		q->desc[head].inflight = 1;
	}
}

/* Descriptors the driver wrote on another CPU are a cache miss each; ask
 * for the one POP_AHEAD entries on while this one is walked, so that the
 * misses of a burst overlap instead of running back to back. */
#define POP_AHEAD 4
static inline void prefetch_ahead(const struct vhu_vring *vr, uint16_t idx)
{
	if ((uint16_t)(vr->shadow_avail_idx - idx) > 0) {
		uint16_t h = __atomic_load_n(&avail(vr)->ring[idx & (uint16_t)(vr->num - 1)],
		                             __ATOMIC_RELAXED);

		if (h < vr->num)
			__builtin_prefetch(&((const struct vdesc *)vr->desc)[h]);
	}
}

/* Chains the driver published and we have not taken: one acquire load of
 * the avail index when the shadow copy is used up.  -EIO if it moved by
 * more than the ring size. */
static inline int avail_count(struct vhu_vring *vr)
{
	uint16_t idx;

	if (vr->last_avail_idx != vr->shadow_avail_idx)
		return (uint16_t)(vr->shadow_avail_idx - vr->last_avail_idx);
	/* Acquire: ring entries and descriptors are read after idx. */
	idx = __atomic_load_n(&avail(vr)->idx, __ATOMIC_ACQUIRE);
	if (unlikely((uint16_t)(idx - vr->last_avail_idx) > vr->num))
		return split_fail(vr, "avail index moved by more than the ring size");
	vr->shadow_avail_idx = idx;
	for (uint16_t k = 0; k < POP_AHEAD && k < (uint16_t)(idx - vr->last_avail_idx); k++)
		prefetch_ahead(vr, (uint16_t)(vr->last_avail_idx + k));
	return (uint16_t)(idx - vr->last_avail_idx);
}

/* Commit a walked avail chain: head state, avail position, inflight. */
static inline void take_avail(struct vhu_vring *vr, uint16_t pos, uint16_t head)
{
	vr->avail_heads[pos] = head;
	vr->last_avail_idx++;
	if (vr->avail_pops < vr->num)
		vr->avail_pops++;
	mark_popped(vr, head, true);
}

/*
 * Up to n chains: resubmissions (after a reconnect) first, then the avail
 * ring.  A chain is committed only once it walked cleanly, or with
 * -E2BIG as the first of the burst (consumed, as vhu_vring_pop() does);
 * an -E2BIG chain later in the burst ends it uncommitted, so that the next
 * call returns it first.  The request counter is written once per
 * burst.
 */
static int split_pop_burst(struct vhu_vring *vr, struct vhu_chain *const *cs, unsigned n,
                           struct vhu_iov_pool *pool)
{
	const struct vhu_mem *mem = atomic_load_explicit(&vr->mem, memory_order_acquire);
	uint16_t mask = (uint16_t)(vr->num - 1);
	unsigned k = 0;
	bool e2big = false;
	int ret, avail_n;

	if (unlikely(!mem))
		return 0;
	while (unlikely(vr->resubmit_pos < vr->nresubmit) && k < n) {
		uint16_t head = vr->resubmit[vr->resubmit_pos];

		vhu_pool_lend(pool, cs[k]);
		ret = walk_chain(vr, mem, head, cs[k]);
		if (ret == -EIO)
			return ret;
		if (ret == -E2BIG && k)
			goto done;
		vr->resubmit_pos++;
		mark_popped(vr, head, false);
		vhu_pool_take(pool, cs[k]);
		k++;
		if (ret == -E2BIG) {
			e2big = true;
			goto done;
		}
	}
	if (k == n)
		goto done;
	avail_n = avail_count(vr);
	if (unlikely(avail_n < 0))
		return avail_n;
	if ((unsigned)avail_n > n - k)
		avail_n = (int)(n - k);
	for (int j = 0; j < avail_n; j++) {
		uint16_t pos = vr->last_avail_idx & mask;
		uint16_t head = __atomic_load_n(&avail(vr)->ring[pos], __ATOMIC_RELAXED);

		/* In order, the descriptors come in table order, which the
		 * hardware prefetcher follows; asking costs more than it saves
		 * there (bench/net/RESULTS.md). */
		if (!(vr->features & VHU_BIT(VHU_F_IN_ORDER)))
			prefetch_ahead(vr, (uint16_t)(vr->last_avail_idx + POP_AHEAD));
		if (unlikely(head >= vr->num))
			return split_fail(vr, "avail ring head index out of range");
		if (unlikely(vr->head_state[head]))
			return split_fail(vr, "avail ring head already in use");
		vhu_pool_lend(pool, cs[k]);
		ret = walk_chain(vr, mem, head, cs[k]);
		if (ret == -EIO)
			return ret;
		if (ret == -E2BIG && k)
			break;
		take_avail(vr, pos, head);
		/* EVENT_IDX: after every chain, as vhu_vring_pop() always did,
		 * not once per burst.  A driver publishing during the burst
		 * tests its new entries against avail_event; with it written
		 * at the end of the burst the migration test
		 * (tests/migration/e2e.sh) found the guest's memory corrupted
		 * after a switch-over in 3 runs of 4 (not understood yet;
		 * written per chain: 0 of 6). */
		if (vr->event_idx && !vr->notify_disabled)
			__atomic_store_n(avail_event(vr), vr->last_avail_idx, __ATOMIC_RELAXED);
		vhu_pool_take(pool, cs[k]);
		k++;
		if (ret == -E2BIG) {
			e2big = true;
			break;
		}
	}
done:
	vhu_vring_count_requests(vr, k);
	return e2big ? -E2BIG : (int)k;
}

/* ---- push / unpop ----------------------------------------------------------- */

static int split_push(struct vhu_vring *vr, const struct vhu_chain *c, uint32_t written)
{
	struct vhu_inflight_queue *q = vr->inflight;
	struct vhu_dirty *log = vhu_vring_dirty(vr);
	struct vhu_log_cache lc;
	uint16_t id = c->id, pos;
	struct vused_elem e;

	if (unlikely(id >= vr->num || vr->head_state[id] != 1))
		return -EINVAL;
	if (written > c->in_len)
		written = (uint32_t)c->in_len;
	if (q) { /* step 1: a crash from here on is undone by last_batch_head */
		q->last_batch_head = id;
		compiler_barrier();
	}
	pos = vr->used_idx & (uint16_t)(vr->num - 1);
	e.id = id;
	e.len = written;
	memcpy(&used(vr)->ring[pos], &e, sizeof(e));
	if (unlikely(log != NULL)) {
		vhu_log_cache_init(&lc, log);
		log_pushes(vr, &lc, &c, &written, 1, vr->used_idx);
	}
	vr->used_idx++;
	/* Release: the element (and the buffers) before the index. */
	__atomic_store_n(&used(vr)->idx, vr->used_idx, __ATOMIC_RELEASE);
	if (unlikely(log != NULL)) {
		log_used(vr, &lc, 2, 2);
		vhu_vring_log_flush(vr, &lc);
	}
	if (q) { /* step 2 */
		compiler_barrier();
		q->desc[id].inflight = 0;
		compiler_barrier();
		q->used_idx = vr->used_idx;
	}
	vr->head_state[id] = 0;
	vr->inuse--;
	return 0;
}

/*
 * n pushes, one used index store.  With an inflight area the batch is
 * listed through desc[].next from last_batch_head (the region's format
 * reserves `next` for this) before it is published, so that recovery can
 * undo a batch the crash cut between publishing and clearing.
 */
static int split_push_batch(struct vhu_vring *vr, const struct vhu_chain *const *chains,
                            const uint32_t *written, unsigned n)
{
	struct vhu_inflight_queue *q = vr->inflight;
	struct vhu_dirty *log = vhu_vring_dirty(vr);
	uint16_t mask = (uint16_t)(vr->num - 1), start = vr->used_idx;
	struct vhu_log_cache lc;
	unsigned k;

	/* Outstanding and not twice in the batch (3: taken by this batch). */
	for (k = 0; k < n; k++) {
		uint16_t id = chains[k]->id;

		if (unlikely(id >= vr->num || vr->head_state[id] != 1))
			break;
		vr->head_state[id] = 3;
	}
	n = k;
	if (!n)
		return 0;
	if (q) { /* step 1 */
		for (k = 0; k + 1 < n; k++)
			q->desc[chains[k]->id].next = chains[k + 1]->id;
		q->last_batch_head = chains[0]->id;
		compiler_barrier();
	}
	for (k = 0; k < n; k++) {
		const struct vhu_chain *c = chains[k];
		struct vused_elem e = {.id = c->id, .len = written[k]};

		if (e.len > c->in_len)
			e.len = (uint32_t)c->in_len;
		memcpy(&used(vr)->ring[(uint16_t)(start + k) & mask], &e, sizeof(e));
		/* Validated above; the state is the worker's alone (pops
		 * run under the same lock), so it may go before the index. */
		vr->head_state[e.id] = 0;
	}
	if (unlikely(log != NULL)) {
		vhu_log_cache_init(&lc, log);
		log_pushes(vr, &lc, chains, written, n, start);
	}
	vr->used_idx = (uint16_t)(start + n);
	__atomic_store_n(&used(vr)->idx, vr->used_idx, __ATOMIC_RELEASE);
	if (unlikely(log != NULL)) {
		log_used(vr, &lc, 2, 2);
		vhu_vring_log_flush(vr, &lc);
	}
	if (q) { /* step 2 */
		compiler_barrier();
		for (k = 0; k < n; k++)
			q->desc[chains[k]->id].inflight = 0;
		compiler_barrier();
		q->used_idx = vr->used_idx;
	}
	vr->inuse = (uint16_t)(vr->inuse - n);
	return (int)n;
}

/* Most recent pops come from avail (after any resubmissions): take the last
 * n back, avail ones first, checking every one is still outstanding. */
static int split_unpop(struct vhu_vring *vr, unsigned n)
{
	unsigned na = n < vr->avail_pops ? n : vr->avail_pops, nr = n - na;
	uint16_t mask = (uint16_t)(vr->num - 1);

	if (n > vr->inuse || nr > vr->resubmit_pos)
		return -EINVAL;
	for (unsigned j = 0; j < na; j++)
		if (vr->head_state[vr->avail_heads[(uint16_t)(vr->last_avail_idx - 1 - j) &
		                                   mask]] != 1)
			return -EINVAL;
	for (unsigned j = 0; j < nr; j++)
		if (vr->head_state[vr->resubmit[vr->resubmit_pos - 1 - j]] != 1)
			return -EINVAL;
	for (unsigned j = 0; j < na; j++) {
		uint16_t h = vr->avail_heads[--vr->last_avail_idx & mask];
		vr->head_state[h] = 0;
		if (vr->inflight)
			((struct vhu_inflight_queue *)vr->inflight)->desc[h].inflight = 0;
	}
	for (unsigned j = 0; j < nr; j++)
		vr->head_state[vr->resubmit[--vr->resubmit_pos]] = 2;
	vr->avail_pops -= (uint16_t)na;
	vr->inuse -= (uint16_t)n;
	return 0;
}

/* ---- notification ------------------------------------------------------------ */

static bool split_has_avail(struct vhu_vring *vr)
{
	if (vr->resubmit_pos < vr->nresubmit || vr->shadow_avail_idx != vr->last_avail_idx)
		return true;
	return __atomic_load_n(&avail(vr)->idx, __ATOMIC_ACQUIRE) != vr->last_avail_idx;
}

/* virtio 2.7.10: has the used index passed the driver's event index? */
static inline bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

static bool split_need_notify(struct vhu_vring *vr)
{
	uint16_t old = vr->signalled_used;
	bool valid = vr->signalled_used_valid;

	/* Order the used index store before reading the driver's flags or
	 * used_event (the driver does the mirror image). */
	atomic_thread_fence(memory_order_seq_cst);
	vr->signalled_used = vr->used_idx;
	vr->signalled_used_valid = true;
	if ((vr->features & VHU_BIT(VHU_F_NOTIFY_ON_EMPTY)) && !vr->inuse && !split_has_avail(vr))
		return true;
	if (!vr->event_idx)
		return !(__atomic_load_n(&avail(vr)->flags, __ATOMIC_RELAXED) &
		         AVAIL_F_NO_INTERRUPT);
	return !valid ||
	       need_event(__atomic_load_n(used_event(vr), __ATOMIC_RELAXED), vr->used_idx, old);
}

static bool split_set_notification(struct vhu_vring *vr, bool enable)
{
	vr->notify_disabled = !enable;
	if (!vr->event_idx) {
		__atomic_store_n(&used(vr)->flags, enable ? 0 : USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
	} else {
		/* Off: an avail_event just behind what the driver has published
		 * keeps vring_need_event() false for its next 65535 buffers (as
		 * Linux does for used_event).  Leaving it where it was would
		 * still draw a kick for the next buffer, on every polling period. */
		uint16_t ev = enable ? vr->shadow_avail_idx : (uint16_t)(vr->shadow_avail_idx - 1);

		__atomic_store_n(avail_event(vr), ev, __ATOMIC_RELAXED);
	}
	if (!enable)
		return false;
	/* The driver may have added buffers before it saw the change. */
	atomic_thread_fence(memory_order_seq_cst);
	return split_has_avail(vr);
}

const struct vhu_vring_ops vhu_split_ops = {
    .name = "split",
    .map = split_map,
    .start = split_start,
    .pop_burst = split_pop_burst,
    .push = split_push,
    .push_batch = split_push_batch,
    .unpop = split_unpop,
    .need_notify = split_need_notify,
    .set_notification = split_set_notification,
    .has_avail = split_has_avail,
    .log_all = split_log_all,
};
