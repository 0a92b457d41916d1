/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layout-independent part of a vring: lifecycle, locking per flavour,
 * counters, notification and failure.  The layout (vhu_vring_ops) does the
 * ring accesses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vring_impl.h"

static void stat_add(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* For logs: which device (many may share a process). */
static const char *owner(const struct vhu_vring *vr)
{
	return vr->owner ? vr->owner : "libvhu";
}

int vhu_vring_init(struct vhu_vring *vr, unsigned index, enum vhu_vring_flavour fl)
{
	memset(vr, 0, sizeof(*vr));
	vr->index = index;
	vr->flavour = fl;
	vr->kick_fd = vr->call_fd = vr->err_fd = vr->log_fd = -1;
	vr->ops = &vhu_split_ops;
	atomic_init(&vr->mem, NULL);
	atomic_init(&vr->dirty, NULL);
	if (pthread_mutex_init(&vr->mutex, NULL))
		return -ENOMEM;
	if (pthread_rwlock_init(&vr->rwlock, NULL)) {
		pthread_mutex_destroy(&vr->mutex);
		return -ENOMEM;
	}
	return 0;
}

void vhu_vring_destroy(struct vhu_vring *vr)
{
	vhu_vring_reset(vr);
	free(vr->head_state);
	free(vr->avail_heads);
	free(vr->resubmit);
	free(vr->chain_len);
	free(vr->held_len);
	vr->head_state = NULL;
	vr->avail_heads = NULL;
	vr->resubmit = NULL;
	vr->chain_len = NULL;
	vr->held_len = NULL;
	vr->alloc_num = 0;
	pthread_mutex_destroy(&vr->mutex);
	pthread_rwlock_destroy(&vr->rwlock);
}

/* mem, dirty and inflight are the handler's shared context: left alone. */
void vhu_vring_reset(struct vhu_vring *vr)
{
	vhu_vring_stop(vr);
	close_fd(&vr->kick_fd);
	close_fd(&vr->call_fd);
	close_fd(&vr->err_fd);
	memset(&vr->addr, 0, sizeof(vr->addr));
	vr->addr_set = false;
	vr->num = 0;
	vr->base = 0;
	vr->enabled = false;
	__atomic_store_n(&vr->failed, false, __ATOMIC_RELAXED);
	__atomic_store_n(&vr->stopping, false, __ATOMIC_RELAXED);
	vr->features = 0;
	vr->desc = vr->avail = vr->used = NULL;
	vr->last_avail_idx = vr->shadow_avail_idx = vr->used_idx = 0;
	vr->signalled_used = 0;
	vr->signalled_used_valid = false;
	vr->event_idx = vr->notify_disabled = false;
	vr->poll_owned = vr->poll_watch = false;
	vr->inuse = vr->nresubmit = vr->resubmit_pos = vr->avail_pops = 0;
	vr->inflight_counter = 0;
	vr->avail_wrap = vr->used_wrap = false;
	vr->used_pos = vr->avail_slots = 0;
	vr->pops = 0;
	vr->held = 0;
	vhu_vring_tlb_flush(vr);
}

int vhu_vring_start(struct vhu_vring *vr, struct vhu_mem *mem, uint64_t features)
{
	bool packed = features & VHU_BIT(VHU_F_RING_PACKED);
	int ret;

	/* Packed rings may have any size (virtio 1.1 2.8); split ones not. */
	if (vr->num == 0 || vr->num > VHU_MAX_QUEUE_SIZE || (!packed && (vr->num & (vr->num - 1))))
		return -EINVAL;
	if (!vr->addr_set || !mem)
		return -EINVAL;
	vr->started = false;
	vr->ops = packed ? &vhu_packed_ops : &vhu_split_ops;
	vr->features = features;
	vr->event_idx = !!(features & VHU_BIT(VHU_F_RING_EVENT_IDX));
	ret = vr->ops->map(vr, mem);
	if (ret) {
		VHU_LOGE("%s: vring %u: ring addresses are not inside guest memory", owner(vr),
		         vr->index);
		return ret;
	}
	atomic_store_explicit(&vr->mem, mem, memory_order_release);
	/* A new start is a new ring: forget an earlier failure or stop. */
	__atomic_store_n(&vr->failed, false, __ATOMIC_RELAXED);
	__atomic_store_n(&vr->stopping, false, __ATOMIC_RELAXED);
	ret = vr->ops->start(vr);
	if (ret)
		return ret;
	vr->started = true;
	return 0;
}

uint32_t vhu_vring_stop(struct vhu_vring *vr)
{
	struct vhu_dirty *log = vhu_vring_dirty(vr);

	/* Migration: the ring's last state is what the destination resumes
	 * from (the final log collection follows GET_VRING_BASE). */
	if (vr->started && log && !vhu_vring_failed(vr)) {
		struct vhu_log_cache lc;

		vhu_log_cache_init(&lc, log);
		vr->ops->log_all(vr, &lc);
		vhu_vring_log_flush(vr, &lc);
	}
	vr->started = false;
	return vr->ops->base ? vr->ops->base(vr) : vr->last_avail_idx;
}

int vhu_vring_remap(struct vhu_vring *vr, struct vhu_mem *mem)
{
	int ret = 0;

	if (vr->started && !vhu_vring_failed(vr)) {
		ret = mem ? vr->ops->map(vr, mem) : -EFAULT;
		if (ret) {
			vhu_vring_fail(vr, "ring no longer inside guest memory");
			return ret;
		}
	}
	atomic_store_explicit(&vr->mem, mem, memory_order_release);
	vhu_vring_tlb_flush(vr);
	return ret;
}

void vhu_vring_count_kick(struct vhu_vring *vr)
{
	stat_add(&vr->stats.kicks);
}

/* ---- data path ------------------------------------------------------------ */

static inline bool running(const struct vhu_vring *vr)
{
	return vr->started && !vhu_vring_failed(vr);
}

/* Chains may be handed out: started, enabled and not being stopped. */
static inline bool serving(const struct vhu_vring *vr)
{
	return vr->started && vr->enabled && !vhu_vring_stopping(vr);
}

/*
 * Within one device callback a ring hands out at most this many chains;
 * then it reports itself empty and the worker calls the device again after
 * its other events.  A guest that keeps the ring non-empty for ever (e.g.
 * with the used ring aliasing the avail ring, so that every push publishes
 * a new chain) thus cannot pin the worker nor block the protocol handler.
 */
#define CB_BUDGET(vr) (2u * (vr)->num + 64u)

/* The serving worker's callback used up its pop budget (only that worker
 * sees it: see budget_owner). */
static bool cut_short(const struct vhu_vring *vr)
{
	return vr->budget_owner == vhu_tl_worker && vr->cb_exhausted;
}

bool vhu_vring_budget(struct vhu_vring *vr, bool arm)
{
	bool exhausted = vr->cb_exhausted;

	vr->cb_pops = 0;
	vr->cb_exhausted = false;
	vr->cb_limited = arm;
	return exhausted;
}

static int pop_burst(struct vhu_vring *vr, struct vhu_chain *const *chains, unsigned n,
                     struct vhu_iov_pool *pool)
{
	int r;

	if (vhu_vring_failed(vr))
		return -EIO;
	if (!serving(vr) || !n)
		return 0;
	if (vr->budget_owner != vhu_tl_worker)
		return vr->ops->pop_burst(vr, chains, n, pool);
	if (vr->cb_limited) {
		uint32_t left = CB_BUDGET(vr) - vr->cb_pops;

		if (vr->cb_pops >= CB_BUDGET(vr)) {
			vr->cb_exhausted = true;
			return 0;
		}
		if (n > left)
			n = left;
	}
	r = vr->ops->pop_burst(vr, chains, n, pool);
	if (r > 0)
		vr->cb_pops += (uint32_t)r;
	else if (r == -E2BIG)
		vr->cb_pops++;
	return r;
}

int vhu_vring_pop_burst(struct vhu_vring *vr, struct vhu_chain *const *chains, unsigned n)
{
	return pop_burst(vr, chains, n, NULL);
}

int vhu_vring_pop_burst_iov(struct vhu_vring *vr, struct vhu_chain *const *chains, unsigned n,
                            struct iovec *iov, unsigned niov)
{
	struct vhu_iov_pool pool = {iov, niov};

	return pop_burst(vr, chains, n, &pool);
}

int vhu_vring_pop(struct vhu_vring *vr, struct vhu_chain *c)
{
	return vhu_vring_pop_burst(vr, &c, 1);
}

int vhu_vring_push(struct vhu_vring *vr, const struct vhu_chain *c, uint32_t written)
{
	if (vhu_vring_failed(vr))
		return -EIO;
	if (!vr->started || !c)
		return -EINVAL;
	return vr->ops->push(vr, c, written);
}

int vhu_vring_push_batch(struct vhu_vring *vr, const struct vhu_chain *const *chains,
                         const uint32_t *written, unsigned n)
{
	unsigned k;

	if (vhu_vring_failed(vr))
		return -EIO;
	if (!vr->started || (n && (!chains || !written)))
		return -EINVAL;
	for (k = 0; k < n && chains[k]; k++)
		;
	if (k && vr->ops->push_batch)
		return vr->ops->push_batch(vr, chains, written, k);
	for (n = k, k = 0; k < n; k++)
		if (vr->ops->push(vr, chains[k], written[k]))
			break;
	return (int)k;
}

int vhu_vring_unpop(struct vhu_vring *vr, unsigned n)
{
	if (!running(vr))
		return -EINVAL;
	return n ? vr->ops->unpop(vr, n) : 0;
}

int vhu_vring_signal(struct vhu_vring *vr)
{
	uint64_t one = 1;

	if (vr->call_fd < 0)
		return 0;
	/* EAGAIN: the counter is saturated, the driver will see it anyway. */
	if (write(vr->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	stat_add(&vr->stats.calls);
	return 1;
}

int vhu_vring_notify(struct vhu_vring *vr)
{
	if (!running(vr))
		return 0;
	/* Nothing pushed since the last decision: nothing to tell. */
	if (vr->signalled_used_valid && vr->signalled_used == vr->used_idx)
		return 0;
	if (!vr->ops->need_notify(vr)) {
		stat_add(&vr->stats.suppressed);
		return 0;
	}
	return vhu_vring_signal(vr);
}

void vhu_vring_disable_notification(struct vhu_vring *vr)
{
	vr->poll_watch = false;
	if (running(vr))
		vr->ops->set_notification(vr, false);
	else
		vr->notify_disabled = true;
}

bool vhu_vring_enable_notification(struct vhu_vring *vr)
{
	if (vr->poll_owned) {
		vr->poll_watch = true; /* the poller turns them on when it stops */
		return false;
	}
	if (!running(vr)) {
		vr->notify_disabled = false;
		return false;
	}
	return vr->ops->set_notification(vr, true) && serving(vr) && !cut_short(vr);
}

bool vhu_vring_has_avail(struct vhu_vring *vr)
{
	return running(vr) && serving(vr) && !cut_short(vr) && vr->ops->has_avail(vr);
}

bool vhu_vring_stopping(const struct vhu_vring *vr)
{
	return __atomic_load_n(&vr->stopping, __ATOMIC_ACQUIRE);
}

void vhu_vring_fail(struct vhu_vring *vr, const char *why)
{
	uint64_t one = 1;

	if (__atomic_exchange_n(&vr->failed, true, __ATOMIC_ACQ_REL))
		return; /* reported once */
	stat_add(&vr->stats.errors);
	VHU_LOGE("%s: vring %u failed: %s", owner(vr), vr->index, why ? why : "error");
	if (vr->err_fd >= 0 && write(vr->err_fd, &one, sizeof(one)) < 0)
		VHU_LOGW("vring %u: cannot signal the error eventfd", vr->index);
}

/* ---- accessors ---------------------------------------------------------------- */

unsigned vhu_vring_index(const struct vhu_vring *vr)
{
	return vr->index;
}

unsigned vhu_vring_size(const struct vhu_vring *vr)
{
	return vr->num;
}

bool vhu_vring_started(const struct vhu_vring *vr)
{
	return vr->started;
}

bool vhu_vring_enabled(const struct vhu_vring *vr)
{
	return vr->enabled;
}

bool vhu_vring_failed(const struct vhu_vring *vr)
{
	return __atomic_load_n(&vr->failed, __ATOMIC_RELAXED);
}

int vhu_vring_kick_fd(const struct vhu_vring *vr)
{
	return vr->kick_fd;
}

int vhu_vring_call_fd(const struct vhu_vring *vr)
{
	return vr->call_fd;
}

struct vhu_mem *vhu_vring_mem(const struct vhu_vring *vr)
{
	return atomic_load_explicit(&((struct vhu_vring *)vr)->mem, memory_order_acquire);
}

void vhu_vring_lock(struct vhu_vring *vr)
{
	if (vr->flavour == VHU_VRING_MUTEX)
		pthread_mutex_lock(&vr->mutex);
	else if (vr->flavour == VHU_VRING_RWLOCK)
		pthread_rwlock_wrlock(&vr->rwlock);
}

void vhu_vring_unlock(struct vhu_vring *vr)
{
	if (vr->flavour == VHU_VRING_MUTEX)
		pthread_mutex_unlock(&vr->mutex);
	else if (vr->flavour == VHU_VRING_RWLOCK)
		pthread_rwlock_unlock(&vr->rwlock);
}

void vhu_vring_lock_shared(struct vhu_vring *vr)
{
	if (vr->flavour == VHU_VRING_MUTEX)
		pthread_mutex_lock(&vr->mutex);
	else if (vr->flavour == VHU_VRING_RWLOCK)
		pthread_rwlock_rdlock(&vr->rwlock);
}

void vhu_vring_unlock_shared(struct vhu_vring *vr)
{
	vhu_vring_unlock(vr);
}

void vhu_vring_get_stats(const struct vhu_vring *vr, struct vhu_vring_stats *st)
{
	struct vhu_vring *v = (struct vhu_vring *)vr;

	st->requests = atomic_load_explicit(&v->stats.requests, memory_order_relaxed);
	st->kicks = atomic_load_explicit(&v->stats.kicks, memory_order_relaxed);
	st->calls = atomic_load_explicit(&v->stats.calls, memory_order_relaxed);
	st->suppressed = atomic_load_explicit(&v->stats.suppressed, memory_order_relaxed);
	st->polls = atomic_load_explicit(&v->stats.polls, memory_order_relaxed);
	st->errors = atomic_load_explicit(&v->stats.errors, memory_order_relaxed);
}
