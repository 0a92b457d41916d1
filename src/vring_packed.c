/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packed virtqueue layout (virtio 1.1+, 2.8): one ring of 16-byte
 * descriptors {addr, len, id, flags} that the driver makes available and
 * the device overwrites with used descriptors, each side tracking its
 * position with a wrap counter; plus two 4-byte event suppression areas
 * {off_wrap, flags}: the driver's (vr->avail, read here) and the device's
 * (vr->used, written here).
 *
 * Positions: last_avail_idx/avail_wrap is where the next available chain
 * starts; used_pos/used_wrap where the next used descriptor goes.  A chain
 * of n ring descriptors (its buffer id is in the last one) moves the avail
 * position by n when popped and the used position by n when pushed, in
 * whatever order chains complete; the driver learns n from the id.
 *
 * Base (SET/GET_VRING_BASE): bits 0-14 avail position, bit 15 avail wrap
 * counter; QEMU adds the used position and wrap in bits 16-31.  DPDK sends
 * only the low half and assumes used == avail (nothing in flight at GET):
 * an upper half of 0 is read that way.
 *
 * Each push publishes its used descriptor at once (id and len, then the
 * flags with release), as the API has no batch: the spec's batching rule
 * (write the first descriptor's flags last) is then trivially kept.
 *
 * INFLIGHT_SHMFD (libvhost-user tracks split rings only): with an inflight
 * area, used descriptors are written strictly in pop order (a chain pushed
 * before an older one waits), so the ring still holds the descriptors of
 * every chain between the used and the avail position; the area records
 * the used position (header used_idx), which buffer ids are in flight
 * (desc[id].inflight, as for split rings) and a used write in progress
 * (desc[id].padding[0], its parameters in desc[id].counter).  After a crash the back end resumes at
 * the recorded used position and pops those chains again from the ring (one that completed but
 * waited behind an older one runs again).  QEMU does not restore packed positions after a back-end
 * crash, so a valid area wins over SET_VRING_BASE.
 *
 * Dirty logging translates the written ring bytes back to guest addresses
 * instead of using log_guest_addr, which front ends fill differently for
 * packed rings (QEMU: the device area; DPDK assumes the descriptor ring).
 *
 * Everything read from guest memory is read once into a local and then
 * checked: the guest may rewrite it concurrently.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vring_impl.h"

#define PDESC_F_AVAIL (1u << 7)
#define PDESC_F_USED  (1u << 15)

#define EV_ENABLE  0u
#define EV_DISABLE 1u
#define EV_DESC    2u

struct pdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct pevent {
	uint16_t off_wrap;
	uint16_t flags;
};

static inline struct pdesc *ring(const struct vhu_vring *vr)
{
	return vr->desc;
}

static inline struct pevent *driver_ev(const struct vhu_vring *vr)
{
	return vr->avail;
}

static inline struct pevent *device_ev(const struct vhu_vring *vr)
{
	return vr->used;
}

/* Available: AVAIL matches the driver's wrap counter, USED does not. */
static inline bool desc_avail(uint16_t flags, bool wrap)
{
	return !!(flags & PDESC_F_AVAIL) == wrap && !!(flags & PDESC_F_USED) != wrap;
}

static inline uint16_t pos_wrap(uint16_t pos, bool wrap)
{
	return (uint16_t)(pos | (wrap ? 0x8000u : 0));
}

/* Move a position by n (< num) slots, flipping the wrap counter past the end. */
static inline void advance(const struct vhu_vring *vr, uint16_t *pos, bool *wrap, uint32_t n)
{
	uint32_t p = *pos + n;

	if (p >= vr->num) {
		p -= vr->num;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

/* ---- used descriptors, inflight record ----------------------------------- */

#define PK_INFLIGHT_VERSION 0x8001

static inline struct vhu_inflight_queue *inflight_q(const struct vhu_vring *vr)
{
	return vr->inflight;
}

/* A used write in progress, kept in the id's counter field. */
static inline uint64_t rec_pack(uint16_t old, uint16_t nslots, uint32_t len)
{
	return len | (uint64_t)old << 32 | (uint64_t)nslots << 48;
}

/* Publish the used descriptor of buffer `id` (nslots ring slots) at the
 * used position and move it on; recorded in the inflight area first. */
static void write_used(struct vhu_vring *vr, uint16_t id, uint32_t len, uint16_t nslots)
{
	struct vhu_inflight_queue *q = inflight_q(vr);
	struct pdesc *d = &ring(vr)[vr->used_pos];
	uint16_t flags = len ? VHU_DESC_F_WRITE : 0; /* len counts with WRITE (2.8.4) */
	struct vhu_dirty *log = vhu_vring_dirty(vr);

	if (q) {
		q->desc[id].counter = rec_pack(pos_wrap(vr->used_pos, vr->used_wrap), nslots, len);
		vhu_compiler_barrier();
		q->desc[id].padding[0] = 1; /* write in progress */
		vhu_compiler_barrier();
	}
	if (vr->used_wrap)
		flags |= PDESC_F_AVAIL | PDESC_F_USED;
	__atomic_store_n(&d->id, id, __ATOMIC_RELAXED);
	__atomic_store_n(&d->len, len, __ATOMIC_RELAXED);
	/* Release: id, len (and the buffers) before the flags publish it. */
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
	/* The descriptor is id, len and the flags that publish it: marked
	 * after all three (the buffers were marked before, by the push). */
	if (unlikely(log != NULL)) {
		struct vhu_log_cache lc;

		vhu_log_cache_init(&lc, log);
		vhu_vring_log_ring(vr, &lc, d, sizeof(*d));
		vhu_vring_log_flush(vr, &lc);
	}
	advance(vr, &vr->used_pos, &vr->used_wrap, nslots);
	vr->used_idx = (uint16_t)(vr->used_idx + nslots);
	if (q) {
		vhu_compiler_barrier();
		q->used_idx = pos_wrap(vr->used_pos, vr->used_wrap);
		vhu_compiler_barrier();
		q->desc[id].inflight = 0;
		q->desc[id].padding[0] = 0;
	}
}

/* ---- setup --------------------------------------------------------------- */

static int packed_map(struct vhu_vring *vr, const struct vhu_mem *mem)
{
	void *d, *a, *u;

	d = vhu_vring_map_part(mem, vr->addr.desc_user_addr, 16 * (uint64_t)vr->num, 16);
	a = vhu_vring_map_part(mem, vr->addr.avail_user_addr, sizeof(struct pevent), 4);
	u = vhu_vring_map_part(mem, vr->addr.used_user_addr, sizeof(struct pevent), 4);
	if (!d || !a || !u)
		return -EFAULT;
	vr->desc = d;
	vr->avail = a;
	vr->used = u;
	return 0;
}

/* Write the device event area: where we want the next kick. */
static void write_device_ev(struct vhu_vring *vr, uint16_t flags)
{
	struct pevent *ev = device_ev(vr);

	if (flags == EV_DESC)
		__atomic_store_n(&ev->off_wrap, pos_wrap(vr->last_avail_idx, vr->avail_wrap),
		                 __ATOMIC_RELAXED);
	__atomic_store_n(&ev->flags, flags, __ATOMIC_RELEASE);
}

static bool packed_has_avail(struct vhu_vring *vr);

/* First use of a queue area (or one we cannot interpret): start afresh at
 * the used position SET_VRING_BASE gave. */
static void inflight_init(struct vhu_vring *vr, struct vhu_inflight_queue *q, uint16_t entries)
{
	if (q->version != 0)
		VHU_LOGW("vring %u: inflight area version 0x%x unknown, reinitialised", vr->index,
		         q->version);
	memset(q->desc, 0, entries * sizeof(q->desc[0]));
	q->desc_num = entries;
	q->last_batch_head = 0;
	q->used_idx = pos_wrap(vr->used_pos, vr->used_wrap);
	vhu_compiler_barrier();
	q->version = PK_INFLIGHT_VERSION;
}

/* Finish a used write a crash interrupted: write it now (the chain had
 * completed) if the slot still holds the chain's head as the driver made
 * it available, else it was done (the slot holds our used descriptor, or
 * the driver already took that and made the slot available again in the
 * next lap).  False if the record is not one we can have written. */
static bool inflight_finish_write(struct vhu_vring *vr, uint16_t id, uint64_t rec)
{
	uint16_t old = (uint16_t)(rec >> 32), nslots = (uint16_t)(rec >> 48), pos = old & 0x7fff;
	bool wrap = old >> 15;
	uint16_t flags;

	if (pos >= vr->num || nslots == 0 || nslots > vr->num)
		return false;
	vr->used_pos = pos;
	vr->used_wrap = wrap;
	flags = __atomic_load_n(&ring(vr)[pos].flags, __ATOMIC_ACQUIRE);
	if (desc_avail(flags, wrap))
		write_used(vr, id, (uint32_t)rec, nslots);
	else
		advance(vr, &vr->used_pos, &vr->used_wrap, nslots);
	return true;
}

/* Resume at the used position the area recorded (see the top of file);
 * the avail position follows it and every id is popped afresh.  1 if the
 * area gave the positions, 0 if it was (re)initialised from the base,
 * -EINVAL. */
static int inflight_start(struct vhu_vring *vr)
{
	struct vhu_inflight_queue *q = inflight_q(vr);
	uint16_t entries = vhu_inflight_area_entries(q), u;
	bool done = false;

	if (!entries || vr->num > entries) {
		VHU_LOGE("vring %u: inflight area invalid or smaller than the ring", vr->index);
		return -EINVAL;
	}
	if (q->version != PK_INFLIGHT_VERSION) {
		inflight_init(vr, q, entries);
		return 0;
	}
	u = q->used_idx;
	vhu_compiler_barrier();
	if ((u & 0x7fff) >= vr->num) {
		VHU_LOGW("vring %u: inflight area inconsistent, reinitialised", vr->index);
		q->version = 0;
		inflight_init(vr, q, entries);
		return 0;
	}
	vr->used_pos = u & 0x7fff;
	vr->used_wrap = u >> 15;
	for (uint16_t id = 0; id < vr->num; id++) {
		uint64_t rec = q->desc[id].counter;

		vhu_compiler_barrier();
		if (q->desc[id].padding[0] && !done)
			done = inflight_finish_write(vr, id, rec);
	}
	/* Everything in flight is popped again from the ring. */
	for (uint16_t id = 0; id < entries; id++) {
		q->desc[id].inflight = 0;
		q->desc[id].padding[0] = 0;
	}
	q->used_idx = pos_wrap(vr->used_pos, vr->used_wrap);
	vr->last_avail_idx = vr->shadow_avail_idx = vr->used_pos;
	vr->avail_wrap = vr->used_wrap;
	VHU_LOGI("vring %u: packed ring resumes at the recorded position %u (wrap %u)", vr->index,
	         vr->used_pos, vr->used_wrap);
	return 1;
}

static int packed_start(struct vhu_vring *vr)
{
	uint16_t a = (uint16_t)vr->base, u = (uint16_t)(vr->base >> 16);
	int ret = vhu_vring_alloc_state(vr);
	int32_t diff;

	if (ret)
		return ret;
	if (u == 0)
		u = a; /* DPDK: only the avail half; nothing was in flight */
	vr->last_avail_idx = vr->shadow_avail_idx = a & 0x7fff;
	vr->avail_wrap = a >> 15;
	vr->used_pos = u & 0x7fff;
	vr->used_wrap = u >> 15;
	if (vr->last_avail_idx >= vr->num || vr->used_pos >= vr->num) {
		VHU_LOGE("vring %u: packed base 0x%x out of range for size %u", vr->index, vr->base,
		         vr->num);
		return -EINVAL;
	}
	/* Slots between the used and avail positions: in flight elsewhere. */
	diff = (int32_t)vr->last_avail_idx - vr->used_pos +
	       (vr->avail_wrap != vr->used_wrap ? (int32_t)vr->num : 0);
	if (diff < 0 || diff > (int32_t)vr->num) {
		VHU_LOGE("vring %u: packed base 0x%x: used position ahead of avail", vr->index,
		         vr->base);
		return -EINVAL;
	}
	memset(vr->head_state, 0, vr->num);
	vr->held = 0;
	if (vr->inflight) {
		ret = inflight_start(vr);
		if (ret < 0)
			return ret;
		if (ret)
			diff = 0;
	}
	vr->avail_slots = (uint16_t)diff;
	vr->used_idx = 0;
	vr->pops = 0;
	vr->avail_pops = 0;
	vr->inuse = 0;
	vr->nresubmit = vr->resubmit_pos = 0;
	vr->signalled_used_valid = false;
	vr->notify_disabled = false;
	vhu_vring_tlb_flush(vr);
	/* A previous back end may have left kicks suppressed. */
	write_device_ev(vr, vr->event_idx ? EV_DESC : EV_ENABLE);
	/* Chains to pop again must not wait for the driver's next kick. */
	if (vr->inflight && vr->kick_fd >= 0 && packed_has_avail(vr)) {
		uint64_t one = 1;

		if (write(vr->kick_fd, &one, sizeof(one)) < 0)
			VHU_LOGW("vring %u: self-kick failed", vr->index);
	}
	return 0;
}

static uint32_t packed_base(const struct vhu_vring *vr)
{
	return pos_wrap(vr->last_avail_idx, vr->avail_wrap) |
	       (uint32_t)pos_wrap(vr->used_pos, vr->used_wrap) << 16;
}

/* ---- pop ------------------------------------------------------------------ */

/* The buffers of an indirect table (every entry, in order; only WRITE is
 * meaningful in them, 2.8.19). */
static const char *walk_table(struct vhu_vring *vr, const struct vhu_mem *mem, struct vhu_walk *w,
                              struct vhu_chain *c, const struct pdesc *d)
{
	const char *why;
	const uint8_t *t = vhu_walk_indirect(vr, mem, false, d->flags, d->addr, d->len, &why);

	if (!t)
		return why;
	w->ndesc++;
	for (uint32_t j = 0; j < d->len / 16; j++) {
		struct pdesc e;

		memcpy(&e, t + 16 * (size_t)j, sizeof(e));
		vhu_compiler_barrier();
		if (unlikely(e.flags & VHU_DESC_F_INDIRECT))
			return "nested indirect descriptor";
		why = vhu_walk_buf(vr, mem, w, c, e.addr, e.len, e.flags & VHU_DESC_F_WRITE);
		if (why)
			return why;
	}
	return NULL;
}

/*
 * Walk the chain starting at the avail position into c.  *slots gets the
 * ring descriptors it spans, c->id the buffer id of the last one.  0,
 * -E2BIG or -EIO (ring failed).
 */
static int map_chain(struct vhu_vring *vr, const struct vhu_mem *mem, struct vhu_chain *c,
                     uint16_t *slots)
{
	uint16_t i = vr->last_avail_idx;
	bool wrap = vr->avail_wrap;
	uint32_t n = 0;
	struct vhu_walk w;
	const char *why;
	struct pdesc d;

	vhu_walk_begin(&w, c);
	for (;;) {
		if (unlikely(++n > vr->num))
			return vhu_vring_malformed(vr, "descriptor chain longer than the ring");
		memcpy(&d, &ring(vr)[i], sizeof(d));
		vhu_compiler_barrier();
		if (unlikely(d.flags & VHU_DESC_F_INDIRECT))
			why = walk_table(vr, mem, &w, c, &d);
		else
			why =
			    vhu_walk_buf(vr, mem, &w, c, d.addr, d.len, d.flags & VHU_DESC_F_WRITE);
		if (unlikely(why != NULL))
			return vhu_vring_malformed(vr, why);
		if (!(d.flags & VHU_DESC_F_NEXT))
			break;
		advance(vr, &i, &wrap, 1);
	}
	if (unlikely(d.id >= vr->num))
		return vhu_vring_malformed(vr, "buffer id out of range");
	if (unlikely(vr->head_state[d.id]))
		return vhu_vring_malformed(vr, "buffer id already in use");
	c->id = d.id;
	*slots = (uint16_t)n;
	return vhu_walk_end(&w, c);
}

static bool packed_has_avail(struct vhu_vring *vr)
{
	uint16_t flags = __atomic_load_n(&ring(vr)[vr->last_avail_idx].flags, __ATOMIC_ACQUIRE);

	return desc_avail(flags, vr->avail_wrap);
}

/* Commit a walked chain of `slots` ring descriptors. */
static void take_chain(struct vhu_vring *vr, const struct vhu_chain *c, uint16_t slots)
{
	advance(vr, &vr->last_avail_idx, &vr->avail_wrap, slots);
	vr->shadow_avail_idx = vr->last_avail_idx;
	vr->avail_slots = (uint16_t)(vr->avail_slots + slots);
	vr->head_state[c->id] = 1;
	vr->chain_len[c->id] = slots;
	if (vr->inflight)
		inflight_q(vr)->desc[c->id].inflight = 1;
	vr->avail_heads[vr->pops] = c->id;
	vr->pops = vr->pops + 1 == vr->num ? 0 : vr->pops + 1;
	if (vr->avail_pops < vr->num)
		vr->avail_pops++;
	vr->inuse++;
}

/* Up to n chains, in ring order; the same commit rule as split rings: an
 * -E2BIG chain after the first ends the burst uncommitted.  The device
 * event area and the request counter are written once per burst. */
static int packed_pop_burst(struct vhu_vring *vr, struct vhu_chain *const *cs, unsigned n,
                            struct vhu_iov_pool *pool)
{
	const struct vhu_mem *mem = atomic_load_explicit(&vr->mem, memory_order_acquire);
	bool e2big = false;
	unsigned k = 0;

	if (unlikely(!mem))
		return 0;
	/* Acquire: a chain's descriptors are read after its head's flags. */
	while (k < n && packed_has_avail(vr)) {
		uint16_t slots = 0;
		int ret;

		vhu_pool_lend(pool, cs[k]);
		ret = map_chain(vr, mem, cs[k], &slots);
		if (ret == -EIO)
			return ret;
		if (ret == -E2BIG && k)
			break;
		take_chain(vr, cs[k], slots);
		vhu_pool_take(pool, cs[k]);
		k++;
		if (ret == -E2BIG) {
			e2big = true;
			break;
		}
	}
	if (k && vr->event_idx && !vr->notify_disabled)
		write_device_ev(vr, EV_DESC);
	vhu_vring_count_requests(vr, k);
	return e2big ? -E2BIG : (int)k;
}

/* ---- push / unpop ----------------------------------------------------------- */

/* Inflight area: write the used descriptors of held chains that are now
 * the oldest outstanding ones (pop order). */
static void flush_held(struct vhu_vring *vr)
{
	while (vr->held) {
		uint32_t oldest = (vr->pops + vr->num - vr->inuse - vr->held) % vr->num;
		uint16_t id = vr->avail_heads[oldest];

		if (vr->head_state[id] != 3)
			break;
		write_used(vr, id, vr->held_len[id], vr->chain_len[id]);
		vr->head_state[id] = 0;
		vr->held--;
	}
}

static int packed_push(struct vhu_vring *vr, const struct vhu_chain *c, uint32_t written)
{
	struct vhu_dirty *log = vhu_vring_dirty(vr);
	uint16_t id = c->id;

	if (unlikely(id >= vr->num || vr->head_state[id] != 1))
		return -EINVAL;
	if (written > c->in_len)
		written = (uint32_t)c->in_len;
	if (unlikely(log != NULL) && written) {
		struct vhu_log_cache lc;

		vhu_log_cache_init(&lc, log);
		vhu_vring_log_written(vr, &lc, c, written);
		vhu_vring_log_flush(vr, &lc);
	}
	vr->inuse--;
	if (!vr->inflight) {
		write_used(vr, id, written, vr->chain_len[id]);
		vr->head_state[id] = 0;
		return 0;
	}
	vr->head_state[id] = 3; /* held until older chains are used */
	vr->held_len[id] = written;
	vr->held++;
	flush_held(vr);
	return 0;
}

/* Step a position back by n (<= num) slots. */
static inline void rewind_pos(const struct vhu_vring *vr, uint16_t *pos, bool *wrap, uint32_t n)
{
	if (*pos >= n) {
		*pos = (uint16_t)(*pos - n);
	} else {
		*pos = (uint16_t)(*pos + vr->num - n);
		*wrap = !*wrap;
	}
}

/* Slot of avail_heads holding the j-th most recent pop (j < num). */
static inline uint32_t nth_pop(const struct vhu_vring *vr, unsigned j)
{
	return (vr->pops + vr->num - 1 - j) % vr->num;
}

/*
 * Take back the last n pops, newest first.  Each must still be outstanding,
 * and none of their slots may have been overwritten by a used descriptor
 * meanwhile (a push of an older chain writes at the used position, which
 * may reach them): then the driver's descriptors are gone and -EINVAL.
 */
static int packed_unpop(struct vhu_vring *vr, unsigned n)
{
	uint32_t slots = 0;

	if (n > vr->inuse || n > vr->avail_pops)
		return -EINVAL;
	for (unsigned j = 0; j < n; j++) {
		uint16_t id = vr->avail_heads[nth_pop(vr, j)];

		if (vr->head_state[id] != 1)
			return -EINVAL;
		slots += vr->chain_len[id];
	}
	if (slots > (uint16_t)(vr->avail_slots - vr->used_idx))
		return -EINVAL;
	for (unsigned j = 0; j < n; j++) {
		uint16_t id = vr->avail_heads[nth_pop(vr, j)];

		vr->head_state[id] = 0;
		if (vr->inflight)
			inflight_q(vr)->desc[id].inflight = 0;
	}
	rewind_pos(vr, &vr->last_avail_idx, &vr->avail_wrap, slots);
	vr->shadow_avail_idx = vr->last_avail_idx;
	vr->avail_slots = (uint16_t)(vr->avail_slots - slots);
	vr->pops = nth_pop(vr, n - 1);
	vr->avail_pops = (uint16_t)(vr->avail_pops - n);
	vr->inuse = (uint16_t)(vr->inuse - n);
	return 0;
}

/* ---- notification ------------------------------------------------------------ */

/*
 * EVENT_IDX: the driver wants an interrupt once the used descriptor at
 * off_wrap has been written, i.e. when the used position moved past it
 * since the last decision.  Positions are compared linearly in the current
 * lap; an event with the other wrap counter is taken as the previous lap
 * (as QEMU and Linux do): at worst an extra interrupt, never a lost one.
 */
static bool event_crossed(const struct vhu_vring *vr, uint16_t off_wrap, uint16_t moved)
{
	int32_t now = vr->used_pos, old = now - moved, ev = off_wrap & 0x7fff;

	if (moved >= vr->num)
		return true;
	if (!!(off_wrap >> 15) != vr->used_wrap)
		ev -= (int32_t)vr->num;
	return old <= ev && ev < now;
}

static bool packed_need_notify(struct vhu_vring *vr)
{
	uint16_t old = vr->signalled_used, flags, off_wrap;
	bool valid = vr->signalled_used_valid;

	/* Order the used descriptor stores before reading the driver's event
	 * area (the driver does the mirror image). */
	atomic_thread_fence(memory_order_seq_cst);
	vr->signalled_used = vr->used_idx;
	vr->signalled_used_valid = true;
	if ((vr->features & VHU_BIT(VHU_F_NOTIFY_ON_EMPTY)) && !vr->inuse && !packed_has_avail(vr))
		return true;
	flags = __atomic_load_n(&driver_ev(vr)->flags, __ATOMIC_RELAXED);
	if (flags == EV_DISABLE)
		return false;
	/* DESC is reserved without EVENT_IDX: treat unknown values as enable. */
	if (flags != EV_DESC || !vr->event_idx || !valid)
		return true;
	off_wrap = __atomic_load_n(&driver_ev(vr)->off_wrap, __ATOMIC_RELAXED);
	return event_crossed(vr, off_wrap, (uint16_t)(vr->used_idx - old));
}

static bool packed_set_notification(struct vhu_vring *vr, bool enable)
{
	vr->notify_disabled = !enable;
	if (!enable) {
		write_device_ev(vr, EV_DISABLE);
		return false;
	}
	write_device_ev(vr, vr->event_idx ? EV_DESC : EV_ENABLE);
	/* The driver may have added buffers before it saw the change. */
	atomic_thread_fence(memory_order_seq_cst);
	return packed_has_avail(vr);
}

/* Ring stop while logging: every used descriptor was marked when written;
 * the device event area (written as notifications go on and off) and the
 * ring are marked once more, so their last values reach the destination. */
static void packed_log_all(struct vhu_vring *vr, struct vhu_log_cache *lc)
{
	vhu_vring_log_ring(vr, lc, vr->desc, 16 * (uint64_t)vr->num);
	vhu_vring_log_ring(vr, lc, vr->used, sizeof(struct pevent));
}

const struct vhu_vring_ops vhu_packed_ops = {
    .name = "packed",
    .map = packed_map,
    .start = packed_start,
    .pop_burst = packed_pop_burst,
    .push = packed_push,
    .unpop = packed_unpop,
    .need_notify = packed_need_notify,
    .set_notification = packed_set_notification,
    .has_avail = packed_has_avail,
    .base = packed_base,
    .log_all = packed_log_all,
};
