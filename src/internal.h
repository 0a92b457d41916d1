/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private contract between the library's modules.
 *
 *   msg.c      framing + SCM_RIGHTS           (vhu_msg_send/recv)
 *   mem.c      guest memory snapshots          (struct vhu_mem)
 *   log.c      diagnostics (vhu_log)
 *   dirty.c    the migration dirty log (vhu_dirty, vhu_log_cache)
 *   vring.c    ring-independent vring object, locking, stats, notify
 *   vring_desc.c   descriptor walking shared by both layouts
 *   vring_split.c  split-ring layout (pop/push/event idx)
 *   vring_packed.c packed-ring layout
 *   vring_packed.c packed-ring layout (virtio 1.1+ 2.8)
 *   vring_desc.c   chain walking / logging helpers both layouts share
 *   chain.c    copying into and out of a popped chain (vhu_chain_read/write)
 *   inflight.c INFLIGHT_SHMFD shared region and resubmission
 *   backend.c  calling device ops with defaults and the lock mode
 *   handler.c  dispatch table, checks shared by all requests, replies
 *   handler_mem.c / handler_vring.c / handler_device.c  the requests, by concern
 *   worker.c   epoll worker threads, listeners, polling, quiescence
 *   lifecycle.c  front-end lifecycle hooks (connected, queue ready, gone)
 *   program.c / program_run.c  back-end program conventions (program.h)
 *   poll_policy.c  adaptive polling policy (poll or sleep), per serving thread
 *   daemon.c   listen/accept/serve loop, start/wait/stop
 *   channel.c  back-end -> front-end channel
 */
#ifndef VHU_INTERNAL_H
#define VHU_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vhu/vhu.h"

#define VHU_LOGE(...) vhu_log(VHU_LOG_ERROR, __VA_ARGS__)
#define VHU_LOGW(...) vhu_log(VHU_LOG_WARN, __VA_ARGS__)
#define VHU_LOGI(...) vhu_log(VHU_LOG_INFO, __VA_ARGS__)
#define VHU_LOGD(...) vhu_log(VHU_LOG_DEBUG, __VA_ARGS__)

#define VHU_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- mem.c ------------------------------------------------------------ */

struct vhu_mem_region {
	atomic_uint refs; /* shared between snapshots */
	uint64_t gpa, size, uva, mmap_offset;
	void *map;       /* mmap() result */
	size_t map_size; /* mmap length (size + mmap_offset) */
	uint8_t *hva;    /* map + mmap_offset */
	unsigned adds;   /* ADD_MEM_REGIONs of this exact region (handler only) */
	dev_t dev;       /* the file mapped (a table re-sent keeps its mapping) */
	ino_t ino;
};

struct vhu_mem {
	atomic_uint refs;
	unsigned nregions;
	struct vhu_mem_region **regions; /* sorted by gpa, no overlaps */
};

/* Slow path of vhu_mem_gpa_hint(): binary search, updates *hint. */
void *vhu_mem_gpa_find(const struct vhu_mem *mem, uint64_t gpa, uint64_t len, unsigned *hint);

/* Data-path gpa -> hva: [gpa, gpa+len) inside one region, or NULL.  *hint
 * caches the region index of the last hit (any value is safe). */
static inline void *vhu_mem_gpa_hint(const struct vhu_mem *mem, uint64_t gpa, uint64_t len,
                                     unsigned *hint)
{
	unsigned h = *hint;

	if (h < mem->nregions) {
		const struct vhu_mem_region *r = mem->regions[h];
		uint64_t off = gpa - r->gpa;

		if (gpa >= r->gpa && off < r->size && len <= r->size - off)
			return r->hva + off;
	}
	return vhu_mem_gpa_find(mem, gpa, len, hint);
}

/* vhu_mem_gpa_to_iov() with a region hint; iov may be NULL (then only
 * validates and counts, max ignored). */
int vhu_mem_gpa_to_iov_hint(const struct vhu_mem *mem, uint64_t gpa, uint64_t len,
                            struct iovec *iov, unsigned max, unsigned *hint);
/* vhu_mem_hva_to_gpa() trying region *hint first. */
int vhu_mem_hva_to_gpa_hint(const struct vhu_mem *mem, const void *hva, uint64_t *gpa,
                            unsigned *hint);

/* Data-path hva -> gpa: the hinted region inline, else the search. */
static inline int vhu_mem_hva_gpa(const struct vhu_mem *mem, const void *hva, uint64_t *gpa,
                                  unsigned *hint)
{
	unsigned h = *hint;

	if (h < mem->nregions) {
		const struct vhu_mem_region *r = mem->regions[h];
		uintptr_t off = (uintptr_t)hva - (uintptr_t)r->hva;

		if ((uintptr_t)hva >= (uintptr_t)r->hva && off < r->size) {
			*gpa = r->gpa + off;
			return 0;
		}
	}
	return vhu_mem_hva_to_gpa_hint(mem, hva, gpa, hint);
}

/* Empty snapshot (no regions). */
struct vhu_mem *vhu_mem_new_empty(void);
/* Map `n` regions from SET_MEM_TABLE (fds borrowed, not closed).  Rejects
 * zero sizes, gpa/uva/offset overflow, overlapping gpa or uva ranges,
 * bad fds.  On failure nothing stays mapped.  0 or -errno. */
int vhu_mem_new_table(struct vhu_mem **out, const struct vhu_mem_region_desc *d, const int *fds,
                      unsigned n);
/* Same, keeping the mappings of regions of `old` (may be NULL) that the
 * table describes again (same addresses, size, offset and file): their
 * host addresses stay valid, so requests in flight across a SET_MEM_TABLE
 * (asynchronous I/O, the dirty log's hva -> gpa) still find them. */
int vhu_mem_new_table_from(struct vhu_mem **out, const struct vhu_mem_region_desc *d,
                           const int *fds, unsigned n, const struct vhu_mem *old);
/* New snapshot = old + one region (fd borrowed). -ENOSPC past
 * VHU_MAX_MEM_SLOTS, -EINVAL on overlap/overflow.  Returns 1 without a new
 * snapshot when old already has this exact region (same gpa, size, uva and
 * offset): QEMU adds the same regions once per vhost device sharing the
 * socket (one per net queue pair), and removes them as many times, so the
 * region counts its adds. */
int vhu_mem_add(struct vhu_mem **out, const struct vhu_mem *old,
                const struct vhu_mem_region_desc *d, int fd);
/* New snapshot = old - the region matching gpa and size (uva may be 0 as
 * QEMU sends it).  -ENOENT if none matches; 1 without a new snapshot if
 * the region was added more than once (one add is dropped). */
int vhu_mem_remove(struct vhu_mem **out, const struct vhu_mem *old,
                   const struct vhu_mem_region_desc *d);

/* ---- dirty.c: the migration dirty log ---------------------------------- */

#define VHU_LOG_PAGE 4096u

struct vhu_dirty {
	uint8_t *bitmap; /* one bit per 4 KiB guest page */
	void *map;
	size_t map_size;
	uint64_t bits; /* pages covered */
	bool aligned;  /* bitmap 8-byte aligned: whole words ORed at once */
};

/* Map the front end's log (fd borrowed). 0 or -errno. */
int vhu_dirty_new(struct vhu_dirty **out, int fd, uint64_t size, uint64_t offset);
void vhu_dirty_free(struct vhu_dirty *log);
/* Mark [gpa, gpa+len) dirty at once with atomic ORs; clipped to the bitmap
 * (a guest address past it is logged once as a warning). */
void vhu_dirty_mark(struct vhu_dirty *log, uint64_t gpa, uint64_t len);

/*
 * Marks gathered per 64-page word and ORed into the log by flush (or when
 * the cache is full).  On the stack of one push or burst; flush before the
 * used index the marked writes belong to is published.
 */
#define VHU_LOG_CACHE 32
struct vhu_log_cache {
	struct vhu_dirty *log;
	unsigned n;
	unsigned marked; /* words ORed into the log so far */
	struct {
		uint64_t word, bits;
	} e[VHU_LOG_CACHE];
};

static inline void vhu_log_cache_init(struct vhu_log_cache *c, struct vhu_dirty *log)
{
	c->log = log;
	c->n = 0;
	c->marked = 0;
}

/* Ranges over several pages, past the log (clipped) or a full cache. */
void vhu_log_cache_mark_slow(struct vhu_log_cache *c, uint64_t gpa, uint64_t len);
void vhu_log_cache_flush(struct vhu_log_cache *c);

/* Mark one page: OR its bit into the cached word (newest first: a burst
 * mostly repeats the words it just marked), or start a new word. */
static inline void vhu_log_cache_page(struct vhu_log_cache *c, uint64_t page)
{
	uint64_t w = page / 64, bit = 1ULL << (page % 64);

	for (unsigned i = c->n; i-- > 0;) {
		if (c->e[i].word == w) {
			c->e[i].bits |= bit;
			return;
		}
	}
	if (__builtin_expect(page >= c->log->bits || c->n == VHU_LOG_CACHE, 0)) {
		vhu_log_cache_mark_slow(c, page * VHU_LOG_PAGE, 1);
		return;
	}
	c->e[c->n].word = w;
	c->e[c->n++].bits = bit;
}

/* Mark [gpa, gpa+len) in the cache (clipped like vhu_dirty_mark). */
static inline void vhu_log_cache_mark(struct vhu_log_cache *c, uint64_t gpa, uint64_t len)
{
	if (__builtin_expect(len && (gpa % VHU_LOG_PAGE) + len <= VHU_LOG_PAGE, 1))
		vhu_log_cache_page(c, gpa / VHU_LOG_PAGE);
	else if (len)
		vhu_log_cache_mark_slow(c, gpa, len);
}

/* ---- inflight.c ------------------------------------------------------- */

struct vhu_inflight {
	void *map;
	size_t size;
	int fd;
	uint16_t num_queues;
	uint16_t queue_size;
};

/* GET_INFLIGHT_FD: create a zeroed memfd region for nq queues of qsize. */
int vhu_inflight_create(struct vhu_inflight **out, uint16_t nq, uint16_t qsize);
/* SET_INFLIGHT_FD: map the region the front end kept (fd: ownership taken
 * on success).  Validates size against nq/qsize. */
int vhu_inflight_set(struct vhu_inflight **out, int fd, uint64_t size, uint64_t offset, uint16_t nq,
                     uint16_t qsize);
void vhu_inflight_free(struct vhu_inflight *inf);
/* Start of queue q's area, or NULL. */
void *vhu_inflight_queue(struct vhu_inflight *inf, unsigned q);
/* Entries (queue_size) of the live inflight region containing queue area
 * `area`, or 0 if `area` is not the start of a queue area of a live region
 * (vring start validates vr->inflight with it). */
uint16_t vhu_inflight_area_entries(const void *area);

/* ---- vring.c / vring_split.c ----------------------------------------- */

struct vhu_vring_ops; /* layout: split or packed */

struct vhu_vring {
	unsigned index;
	const char *owner; /* its daemon's name, for logs (NULL: none) */
	enum vhu_vring_flavour flavour;
	pthread_mutex_t mutex;
	pthread_rwlock_t rwlock;

	/* Configuration from the front end (handler thread). */
	uint32_t num;
	struct vhu_vring_addr addr;
	bool addr_set;
	uint32_t base; /* SET_VRING_BASE (packed: avail | used << 16) */
	int kick_fd, call_fd, err_fd;
	bool enabled, started, failed;
	bool stopping;     /* GET_VRING_BASE waits for chains in flight (atomic access) */
	uint64_t features; /* acked virtio features at start */
	unsigned thread;   /* worker that serves it */

	/* Shared context (set by the handler; read by the data path). */
	struct vhu_mem *_Atomic mem;     /* current snapshot, borrowed */
	struct vhu_dirty *_Atomic dirty; /* NULL unless LOG_ALL + log base */
	int log_fd;                      /* SET_LOG_FD eventfd (the connection's), or -1 */
	void *inflight;                  /* queue area in the inflight region */

	/* Data-path state, owned by vring.c / vring_split.c. */
	const struct vhu_vring_ops *ops;
	void *desc, *avail, *used; /* host addresses of the ring parts */
	uint16_t last_avail_idx;
	uint16_t shadow_avail_idx;
	uint16_t used_idx;
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool event_idx;
	bool notify_disabled;
	/* The worker's adaptive polling holds notifications off (worker.c
	 * set_notify()): a device's enable is then left to the poller, which
	 * keeps looking at the ring (poll_watch) instead of dropping it for
	 * the rest of the period when the device takes nothing from it. */
	bool poll_owned, poll_watch;
	uint16_t inuse;     /* popped, not yet pushed */
	uint16_t *resubmit; /* inflight heads to hand out again, or NULL */
	uint16_t nresubmit, resubmit_pos;
	uint64_t inflight_counter;
	unsigned region_hint; /* last region hit (translation cache) */
	/* One-entry translation cache (vring_impl.h vhu_vring_gpa()): the
	 * guest range [tlb_gpa, tlb_gpa + tlb_len) of the region last hit is
	 * at tlb_hva.  Set on the data path, cleared wherever the memory
	 * snapshot or the ring changes (start, remap, reset): the same rules
	 * as desc/avail/used. */
	uint64_t tlb_gpa, tlb_len;
	uint8_t *tlb_hva;
	/* Per-head bookkeeping sized at start (vring_split.c): head_state[h]
	 * is 0 (free), 1 (popped, not pushed) or 2 (waiting in resubmit);
	 * avail_heads[i % num] is the head popped at avail position i (for
	 * unpop); avail_pops counts pops from avail that unpop may rewind. */
	uint8_t *head_state;
	uint16_t *avail_heads;
	uint32_t alloc_num;
	uint16_t avail_pops;
	unsigned log_hint; /* region hint for hva->gpa when dirty logging */
	/* Packed layout (vring_packed.c): last_avail_idx and used_pos are
	 * ring positions with their wrap counters; used_idx and avail_slots
	 * count descriptor slots used / popped (free-running, for notify and
	 * unpop); chain_len[id] = ring slots held by popped buffer id;
	 * avail_heads[] is a circular log of popped ids, pops its next
	 * slot (unpop). */
	bool avail_wrap, used_wrap;
	uint16_t used_pos;
	uint16_t avail_slots;
	uint32_t pops; /* < num */
	uint16_t *chain_len;
	/* Packed with an inflight area: used descriptors are written in pop
	 * order; `held` pushed chains wait for older ones, with their
	 * written length in held_len[id]. */
	uint16_t held;
	uint32_t *held_len;

	/* Bound on the chains one device callback may take (worker.c arms
	 * it around handle_event; see vhu_vring_pop).  Only the worker that
	 * serves the ring (budget_owner, set before the workers start) reads
	 * or writes the cb_* fields: another thread may pop this ring too
	 * (vhu-net's peer mode fills it from the other daemon's worker) and
	 * is neither limited by nor counted in this budget. */
	const void *budget_owner;
	uint32_t cb_pops;
	bool cb_limited, cb_exhausted;

	struct {
		_Atomic uint64_t requests, kicks, calls, suppressed, polls, errors;
	} stats;
};

/* Arm (or disarm) the per-callback pop budget around one device callback,
 * as the serving worker does; the count starts afresh either way.
 * Returns whether the budget ran out since it was armed. */
bool vhu_vring_budget(struct vhu_vring *vr, bool arm);

/* The worker (struct vhu_worker) running on this thread, or NULL. */
extern __thread const void *vhu_tl_worker __attribute__((tls_model("initial-exec")));

/* Initialise a vring object (no fds, not started). */
int vhu_vring_init(struct vhu_vring *vr, unsigned index, enum vhu_vring_flavour fl);
void vhu_vring_destroy(struct vhu_vring *vr);
/* Back to the initial state: stops, closes kick/call/err fds, forgets
 * addresses and base, clears failed; counters are kept. */
void vhu_vring_reset(struct vhu_vring *vr);
/*
 * Start processing: translate addr with mem (-EFAULT if any part of the
 * desc/avail/used areas for `num` entries is unmapped or misaligned,
 * -EINVAL if num is not a power of two <= VHU_MAX_QUEUE_SIZE (packed: any
 * num up to it) or a packed base is out of range), pick the
 * layout from features, adopt base, and, with an inflight area, build the
 * resubmit list.  Caller holds the vring lock and the worker is quiescent.
 */
int vhu_vring_start(struct vhu_vring *vr, struct vhu_mem *mem, uint64_t features);
/* Stop processing; returns the next avail index to use (for
 * GET_VRING_BASE; packed: avail | wrap << 15 | (used | wrap << 15) << 16). */
uint32_t vhu_vring_stop(struct vhu_vring *vr);
/* Re-translate ring addresses for a new memory snapshot (running ring).
 * On -EFAULT the ring is failed. */
int vhu_vring_remap(struct vhu_vring *vr, struct vhu_mem *mem);
/* Count a kick (called by the worker after draining the kick fd). */
void vhu_vring_count_kick(struct vhu_vring *vr);

/* ---- backend.c: device ops with defaults + lock mode ----------------- */

struct vhu_backend {
	const struct vhu_backend_ops *ops;
	void *dev;
	enum vhu_lock_mode lock;
	pthread_mutex_t mutex;
	pthread_rwlock_t rwlock;
};

/* ---- worker.c --------------------------------------------------------- */

struct vhu_daemon;

/* Make sure every worker has left any device callback it was in when this
 * was called (quiescent-state barrier).  Handler thread only. */
void vhu_workers_synchronize(struct vhu_daemon *d);

#endif
