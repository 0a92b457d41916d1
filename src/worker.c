/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Worker threads: one epoll loop per queues_per_thread entry.
 *
 * Each worker epolls its queues' kick eventfds, the listeners the device
 * registered, its own wake-up eventfd and the device's exit event.  One
 * epoll batch (and the polling that follows it) is a critical section:
 * `seq` is odd while the worker is inside one.
 *
 * Two ways for the protocol handler to stay clear of the data path:
 *  - vhu_workers_park(): every worker finishes its batch and then waits,
 *    outside any callback and holding no collected event, until unparked.
 *    Ring reconfiguration and memory remapping happen while parked, so a
 *    callback never sees a half-changed ring, even one of another queue.
 *  - vhu_workers_synchronize(): wait until every worker left the section it
 *    was in (RCU-style grace period), before freeing something callbacks
 *    might still use (old memory snapshot, dirty log, channel).  A worker
 *    seen outside a section is woken and waited for until it completed one
 *    more, since its last batch may predate the caller's change.
 *
 * epoll data: bits 0-15 queue or listener id, 16-23 kind, 32-63 fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dev.h"

enum ev_kind { EV_WAKE = 1, EV_DEV_EXIT = 2, EV_KICK = 3, EV_LISTENER = 4, EV_HANGUP = 5 };

#define EV_DATA(kind, id, fd)                                                                      \
	(((uint64_t)(uint32_t)(fd) << 32) | ((uint64_t)(kind) << 16) | (uint16_t)(id))
#define EV_KIND(u) ((unsigned)(((u) >> 16) & 0xff))
#define EV_ID(u)   ((unsigned)((u)&0xffff))
#define EV_FD(u)   ((int)(uint32_t)((u) >> 32))
#define MAX_EVENTS 32

__thread const void *vhu_tl_worker;

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

void vhu_futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *ts)
{
	futex(addr, FUTEX_WAIT_PRIVATE, val, ts);
}

void vhu_futex_wake(_Atomic uint32_t *addr)
{
	futex(addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

static void poke(struct vhu_worker *w)
{
	uint64_t one = 1;

	if (write(w->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		VHU_LOGE("%s: worker %u: wake-up failed: %s", w->d->name, w->id, strerror(errno));
}

static void section_enter(struct vhu_worker *w)
{
	atomic_fetch_add(&w->seq, 1);
}

static void section_leave(struct vhu_worker *w)
{
	atomic_fetch_add(&w->seq, 1);
	if (atomic_load(&w->waiters))
		futex(&w->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

/* Arm (or disarm) the per-callback pop budget of this worker's rings;
 * disarming collects the rings that ran out into `pending`. */
static void budget(struct vhu_worker *w, bool arm)
{
	struct vhu_daemon *d = w->d;

	for (uint64_t m = w->mask; m;) {
		unsigned q = (unsigned)__builtin_ctzll(m);
		struct vhu_vring *vr;

		m &= m - 1;
		if (q >= d->nq)
			break;
		vr = &d->vrings[q];
		if (vhu_vring_budget(vr, arm) && !arm)
			w->pending |= VHU_BIT(q);
	}
}

static void handle(struct vhu_worker *w, unsigned id, uint32_t events)
{
	struct vhu_daemon *d = w->d;
	int err;

	vhu_lifecycle_check(w);
	budget(w, true);
	err = vhu_be_handle_event(&d->be, (uint16_t)id, events, d->vring_ptrs, d->nq, w->id);
	budget(w, false);

	if (err)
		VHU_LOGW("%s: worker %u: handle_event(%u) failed: %s", d->name, w->id, id,
		         strerror(-err));
}

/* A kick: drain the eventfd, count it, and run the device if allowed. */
static void on_kick(struct vhu_worker *w, unsigned q, int fd, uint32_t events)
{
	struct vhu_vring *vr = &w->d->vrings[q];
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0 || (events & (EPOLLERR | EPOLLHUP))) {
		/* Not a working eventfd: stop watching it rather than spin. */
		VHU_LOGW("%s: queue %u: kick fd unusable, ignoring it", w->d->name, q);
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
		return;
	}
	vhu_vring_count_kick(vr);
	if (atomic_load(&w->active) & VHU_BIT(q))
		handle(w, q, events);
	else
		w->pending |= VHU_BIT(q);
}

/* Returns true if the worker must exit. */
static bool dispatch(struct vhu_worker *w, const struct epoll_event *ev)
{
	uint64_t u = ev->data.u64, v;

	switch (EV_KIND(u)) {
	case EV_WAKE:
		if (read(w->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			VHU_LOGW("%s: worker %u: %s", w->d->name, w->id, strerror(errno));
		return atomic_load(&w->stop);
	case EV_DEV_EXIT:
		VHU_LOGI("%s: worker %u: device exit event", w->d->name, w->id);
		return true;
	case EV_KICK:
		on_kick(w, EV_ID(u), EV_FD(u), ev->events);
		return false;
	case EV_LISTENER:
		handle(w, EV_ID(u), ev->events);
		return false;
	case EV_HANGUP:
		vhu_lifecycle_hangup(w);
		return false;
	}
	return false;
}

/* The front end's hang-up before the other events of its batch: input a
 * listener brings in with it or after it is not for that front end
 * (lifecycle.c). */
static void hangup_first(struct epoll_event *ev, int n)
{
	for (int i = 1; i < n; i++) {
		if (EV_KIND(ev[i].data.u64) == EV_HANGUP) {
			struct epoll_event h = ev[i];

			memmove(&ev[1], &ev[0], (size_t)i * sizeof(*ev));
			ev[0] = h;
			return;
		}
	}
}

/* Dispatch a batch collected by epoll_wait (hang-up first); w->batch lets
 * vhu_daemon_del_listener() drop events of a listener deleted meanwhile.
 * Returns true if the worker must exit; *listener says whether a listener
 * was among the events (may be NULL). */
static bool dispatch_batch(struct vhu_worker *w, struct epoll_event *ev, int n, bool *listener)
{
	bool quit = false;

	hangup_first(ev, n);
	w->batch = ev;
	w->batch_n = n;
	for (int i = 0; i < n && !quit; i++) {
		if (listener && EV_KIND(ev[i].data.u64) == EV_LISTENER)
			*listener = true;
		quit = dispatch(w, &ev[i]);
	}
	w->batch = NULL;
	w->batch_n = 0;
	return quit;
}

/* Kicks that arrived while their ring was paused, now that it runs. */
static void run_pending(struct vhu_worker *w)
{
	uint64_t m;

	vhu_lifecycle_check(w); /* queue_ready even without a kick */
	m = w->pending & atomic_load(&w->active);

	w->pending &= ~m;
	while (m) {
		unsigned q = (unsigned)__builtin_ctzll(m);

		m &= m - 1;
		handle(w, q, EPOLLIN);
	}
}

static void set_notify(struct vhu_daemon *d, uint64_t rings, bool on, uint64_t *more)
{
	while (rings) {
		unsigned q = (unsigned)__builtin_ctzll(rings);
		struct vhu_vring *vr = &d->vrings[q];

		rings &= rings - 1;
		vhu_vring_lock(vr);
		vr->poll_owned = vr->poll_watch = false;
		if (!on) {
			vhu_vring_disable_notification(vr);
			vr->poll_owned = true;
		} else if (vhu_vring_enable_notification(vr) && more) {
			*more |= VHU_BIT(q);
		}
		vhu_vring_unlock(vr);
	}
}

static bool must_yield(struct vhu_worker *w)
{
	return atomic_load(&w->d->sync_req) || atomic_load(&w->park) || atomic_load(&w->stop);
}

/* Between batches: wait while the handler wants the worker parked. */
static void maybe_park(struct vhu_worker *w)
{
	if (!atomic_load(&w->park))
		return;
	atomic_store(&w->parked, 1);
	futex(&w->parked, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	while (atomic_load(&w->park) && !atomic_load(&w->stop))
		futex(&w->park, FUTEX_WAIT_PRIVATE, 1, NULL);
	atomic_store(&w->parked, 0);
}

/* One polling pass: run the device for every ring of *rings with buffers
 * available.  A ring the device leaves untouched (it defers work, e.g.
 * rate limiting) is dropped from *rings for this polling period so that
 * it cannot keep the worker spinning, unless the device asked for kicks
 * on it (it waits for more buffers).  True if any chain was taken. */
static bool poll_pass(struct vhu_worker *w, uint64_t *rings)
{
	struct vhu_daemon *d = w->d;
	uint64_t m = *rings & atomic_load(&w->active);
	bool work = false;

	while (m) {
		unsigned q = (unsigned)__builtin_ctzll(m);
		struct vhu_vring *vr = &d->vrings[q];
		uint64_t before;
		bool avail;

		m &= m - 1;
		vhu_vring_lock(vr);
		avail = vhu_vring_has_avail(vr);
		vhu_vring_unlock(vr);
		if (!avail)
			continue;
		before = atomic_load_explicit(&vr->stats.requests, memory_order_relaxed);
		handle(w, q, EPOLLIN);
		if (atomic_load_explicit(&vr->stats.requests, memory_order_relaxed) != before) {
			atomic_fetch_add_explicit(&vr->stats.polls, 1, memory_order_relaxed);
			work = true;
		} else {
			/* poll_watch: the device waits for more buffers (it would
			 * have turned kicks on): keep looking. */
			vhu_vring_lock(vr);
			if (!vr->poll_watch)
				*rings &= ~VHU_BIT(q);
			vhu_vring_unlock(vr);
		}
	}
	return work;
}

/* Events that came in while polling (a listener such as an I/O
 * completion eventfd, a kick sent before notifications went off, an exit
 * event): handle them now rather than after the polling period.  Returns
 * the number handled, or -1 if the worker must exit. */
static int poll_events(struct vhu_worker *w)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = epoll_wait(w->epfd, ev, MAX_EVENTS, 0);

	if (n > 0 && dispatch_batch(w, ev, n, NULL))
		return -1;
	return n > 0 ? n : 0;
}

/* While polling, look at the worker's other events this often: often
 * enough for I/O completions, rarely enough to cost little. */
#define POLL_EVENTS_NS 4000u

enum poll_end {
	POLL_IDLE, /* nothing came for the window: sleep */
	POLL_DUE,  /* an epoch of the policy ended: account, then maybe go on */
	POLL_QUIT, /* the worker must exit */
};

/*
 * One polling period: with notifications off, keep looking at the rings
 * (and, every POLL_EVENTS_NS, at the worker's other events) until nothing
 * came for the window or the policy's epoch ends, then turn notifications
 * back on (and go on if buffers slipped in meanwhile).  Gives way at once
 * to the handler (synchronize/park) so that the control plane is never
 * starved.
 */
static enum poll_end poll_rings(struct vhu_worker *w)
{
	struct vhu_daemon *d = w->d;
	uint64_t rings = atomic_load(&w->active) & w->mask;
	uint64_t win = (uint64_t)w->poll.window_us * 1000u;

	while (rings && !must_yield(w)) {
		uint64_t more = 0, live = rings, now = vhu_poll_now_ns();
		uint64_t idle_at = now + win, events_at = now + POLL_EVENTS_NS;
		enum poll_end end = POLL_IDLE;

		set_notify(d, rings, false, NULL);
		while (live && !must_yield(w)) {
			bool work = poll_pass(w, &live);
			int ev = 0;

			now = vhu_poll_now_ns();
			if (now >= events_at) {
				events_at = now + POLL_EVENTS_NS;
				ev = poll_events(w);
				if (ev < 0) {
					set_notify(d, rings, true, NULL);
					return POLL_QUIT;
				}
			}
			if (work || ev)
				idle_at = now + win;
			else if (now >= idle_at)
				break;
			if (vhu_poll_due(&w->poll, now)) {
				end = POLL_DUE;
				break;
			}
		}
		set_notify(d, rings, true, &more);
		more &= atomic_load(&w->active) & live;
		if (end == POLL_DUE || must_yield(w)) {
			/* Handle what slipped in; notifications are on again. */
			poll_pass(w, &more);
			return end;
		}
		if (!more)
			return POLL_IDLE;
		rings = more | (atomic_load(&w->active) & w->mask & live);
	}
	return POLL_IDLE;
}

/* Chains popped from this worker's rings so far (the policy's unit of
 * work). */
static uint64_t chains_popped(struct vhu_worker *w)
{
	struct vhu_daemon *d = w->d;
	uint64_t n = 0;

	for (uint64_t m = w->mask; m; m &= m - 1) {
		unsigned q = (unsigned)__builtin_ctzll(m);

		if (q >= d->nq)
			break;
		n += atomic_load_explicit(&d->vrings[q].stats.requests, memory_order_relaxed);
	}
	return n;
}

static void poll_account(struct vhu_worker *w)
{
	struct vhu_poll *p = &w->poll;
	uint64_t now = vhu_poll_now_ns(), trials = p->trials;

	if (!vhu_poll_due(p, now))
		return;
	vhu_poll_account(p, now, vhu_poll_cpu_ns(), chains_popped(w));
	if (p->trials != trials)
		VHU_LOGD("%s: worker %u: CPU ns per chain: notifications %llu, polling %llu: %s",
		         w->d->name, w->id, (unsigned long long)p->cost[VHU_POLL_NOTIFY],
		         (unsigned long long)p->cost[VHU_POLL_SPIN],
		         p->best == VHU_POLL_SPIN ? "polling" : "notifications");
}

/* After a batch of events: poll the rings while the policy (src/poll_policy.h)
 * finds that it pays.  Returns true if the worker must exit. */
static bool poll_adaptive(struct vhu_worker *w)
{
	poll_account(w);
	while (vhu_poll_spinning(&w->poll) && !must_yield(w)) {
		enum poll_end e = poll_rings(w);

		if (e != POLL_DUE)
			return e == POLL_QUIT;
		poll_account(w);
	}
	return false;
}

static void *worker_main(void *arg)
{
	struct vhu_worker *w = arg;
	struct epoll_event ev[MAX_EVENTS];
	char name[16];

	vhu_tl_worker = w;
	snprintf(name, sizeof(name), "vhu-worker%u", w->id);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		bool quit = false;
		/* Rings cut short by the pop budget: come back at once. */
		bool block = !(w->pending & atomic_load(&w->active));
		int n = epoll_wait(w->epfd, ev, MAX_EVENTS, block ? -1 : 0);

		if (n < 0 && errno != EINTR) {
			VHU_LOGE("%s: worker %u: epoll_wait: %s", w->d->name, w->id,
			         strerror(errno));
			break;
		}
		section_enter(w);
		if (n > 0)
			quit = dispatch_batch(w, ev, n, NULL);
		if (!quit) {
			run_pending(w);
			if (w->poll.window_us)
				quit = poll_adaptive(w);
		}
		section_leave(w);
		if (quit || atomic_load(&w->stop))
			break;
		maybe_park(w);
	}
	atomic_store(&w->exited, true);
	futex(&w->parked, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	if (atomic_load(&w->waiters))
		futex(&w->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	return NULL;
}

/* Wait until w completed the critical section it was in (or one more if
 * it was outside: its last epoll batch may predate the caller's change). */
static void sync_worker(struct vhu_worker *w)
{
	uint32_t s, need;

	if (w == vhu_tl_worker || !w->running || atomic_load(&w->exited))
		return;
	s = atomic_load(&w->seq);
	need = (s & 1) ? 1 : 2;
	if (!(s & 1))
		poke(w);
	for (;;) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
		uint32_t cur;

		atomic_fetch_add(&w->waiters, 1);
		cur = atomic_load(&w->seq);
		if ((uint32_t)(cur - s) >= need || atomic_load(&w->exited) ||
		    atomic_load(&w->parked)) {
			atomic_fetch_sub(&w->waiters, 1);
			return;
		}
		futex(&w->seq, FUTEX_WAIT_PRIVATE, cur, &ts);
		atomic_fetch_sub(&w->waiters, 1);
	}
}

void vhu_workers_synchronize(struct vhu_daemon *d)
{
	atomic_thread_fence(memory_order_seq_cst);
	atomic_fetch_add(&d->sync_req, 1);
	for (unsigned i = 0; i < d->nworkers; i++)
		sync_worker(&d->workers[i]);
	atomic_fetch_sub(&d->sync_req, 1);
}

/* A pool thread checks `park` inside the worker's section and backs off
 * when it is set, so once the section the thread may be in has ended the
 * worker is parked: no flag to acknowledge (which a later park could read
 * stale). */
static void pool_worker_wait_out(struct vhu_worker *w)
{
	for (;;) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
		uint32_t cur;

		atomic_fetch_add(&w->waiters, 1);
		cur = atomic_load(&w->seq);
		if (!(cur & 1) || atomic_load(&w->exited)) {
			atomic_fetch_sub(&w->waiters, 1);
			return;
		}
		futex(&w->seq, FUTEX_WAIT_PRIVATE, cur, &ts);
		atomic_fetch_sub(&w->waiters, 1);
	}
}

void vhu_workers_park(struct vhu_daemon *d)
{
	if (d->park_depth++)
		return;
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct vhu_worker *w = &d->workers[i];

		if (w->running && w != vhu_tl_worker) {
			atomic_store(&w->park, 1);
			poke(w);
		}
	}
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct vhu_worker *w = &d->workers[i];
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};

		if (!w->running || w == vhu_tl_worker)
			continue;
		if (w->pt) {
			pool_worker_wait_out(w);
			continue;
		}
		while (!atomic_load(&w->parked) && !atomic_load(&w->exited))
			futex(&w->parked, FUTEX_WAIT_PRIVATE, 0, &ts);
	}
}

void vhu_workers_unpark(struct vhu_daemon *d)
{
	if (!d->park_depth || --d->park_depth)
		return;
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct vhu_worker *w = &d->workers[i];

		if (!atomic_exchange(&w->park, 0))
			continue;
		if (w->pt)
			poke(w); /* its events waited in its epoll set */
		else
			futex(&w->park, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	}
}

static struct vhu_worker *queue_worker(struct vhu_daemon *d, unsigned q)
{
	if (q >= d->nq || d->queue_worker[q] < 0)
		return NULL;
	return &d->workers[d->queue_worker[q]];
}

int vhu_worker_watch_kick(struct vhu_daemon *d, unsigned q, int fd)
{
	struct vhu_worker *w = queue_worker(d, q);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_DATA(EV_KICK, q, fd)};

	if (!w || fd < 0)
		return -EINVAL;
	if (w->pt)
		return vhu_pool_watch_kick(w, q, fd);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void vhu_worker_unwatch_kick(struct vhu_daemon *d, unsigned q, int fd)
{
	struct vhu_worker *w = queue_worker(d, q);

	if (w && fd >= 0 && w->pt)
		vhu_pool_unwatch_kick(w, fd);
	else if (w && fd >= 0)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void vhu_workers_watch_conn(struct vhu_daemon *d, int sock, bool on)
{
	/* Edge-triggered, hang-up only: requests on the socket are the
	 * handler's, and one report per hang-up is enough. */
	struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET,
	                         .data.u64 = EV_DATA(EV_HANGUP, 0, sock)};

	for (unsigned i = 0; sock >= 0 && i < d->nworkers; i++) {
		struct vhu_worker *w = &d->workers[i];

		if (!on)
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, sock, NULL);
		else if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, sock, &ev) < 0)
			VHU_LOGW("%s: worker %u: cannot watch the front end for a hang-up: %s",
			         d->name, w->id, strerror(errno));
	}
}

void vhu_worker_set_active(struct vhu_daemon *d, unsigned q, bool on)
{
	struct vhu_worker *w = queue_worker(d, q);

	if (!w)
		return;
	if (!on) {
		atomic_fetch_and(&w->active, ~VHU_BIT(q));
		return;
	}
	if (!(atomic_fetch_or(&w->active, VHU_BIT(q)) & VHU_BIT(q)))
		poke(w); /* handle kicks that came while the ring was paused */
}

int vhu_daemon_add_listener(struct vhu_daemon *d, unsigned thread, int fd, uint32_t events,
                            uint16_t id)
{
	struct epoll_event ev = {.events = events, .data.u64 = EV_DATA(EV_LISTENER, id, fd)};

	if (!d || thread >= d->nworkers || fd < 0 || id < d->nq || id == 0xffff)
		return -EINVAL;
	if (epoll_ctl(d->workers[thread].epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int vhu_daemon_del_listener(struct vhu_daemon *d, unsigned thread, int fd)
{
	struct vhu_worker *w;

	if (!d || thread >= d->nworkers || fd < 0)
		return -EINVAL;
	w = &d->workers[thread];
	if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		return -errno;
	if (w == vhu_tl_worker) {
		/* From the worker's own callback: drop the events of fd that
		 * the batch being dispatched still holds. */
		for (int i = 0; i < w->batch_n; i++)
			if (EV_KIND(w->batch[i].data.u64) == EV_LISTENER &&
			    EV_FD(w->batch[i].data.u64) == fd)
				w->batch[i].data.u64 = 0;
	} else if (!vhu_tl_worker) {
		/* From another thread: wait until no event of fd collected
		 * before the deletion can still be delivered.  Not from another
		 * worker's callback: two workers waiting for each other would
		 * never finish. */
		sync_worker(w);
	}
	return 0;
}

unsigned vhu_daemon_num_threads(const struct vhu_daemon *d)
{
	return d ? d->nworkers : 0;
}

/* Check queues_per_thread: 1..VHU_MAX_THREADS entries, no queue twice, no
 * queue past num_queues (except in the all-ones default, which is
 * clamped).  Fills d->queue_worker. */
static int assign_queues(struct vhu_daemon *d, uint64_t *masks, int n)
{
	uint64_t valid = d->nq >= 64 ? ~0ULL : VHU_BIT(d->nq) - 1, seen = 0;

	if (n < 1 || n > VHU_MAX_THREADS) {
		VHU_LOGE("%s: queues_per_thread gave %d entries", d->name, n);
		return -EINVAL;
	}
	for (unsigned q = 0; q < VHU_MAX_QUEUES; q++)
		d->queue_worker[q] = -1;
	for (int i = 0; i < n; i++) {
		if (masks[i] == 0xffffffffu || masks[i] == ~0ULL)
			masks[i] &= valid;
		if ((masks[i] & ~valid) || (masks[i] & seen)) {
			VHU_LOGE("%s: queues_per_thread[%d] = %#llx names a queue twice or "
			         "one past num_queues %u",
			         d->name, i, (unsigned long long)masks[i], d->nq);
			return -EINVAL;
		}
		seen |= masks[i];
		for (uint64_t m = masks[i]; m; m &= m - 1) {
			unsigned q = (unsigned)__builtin_ctzll(m);

			d->queue_worker[q] = (int16_t)i;
			d->vrings[q].thread = (unsigned)i;
		}
	}
	return 0;
}

static int worker_init(struct vhu_daemon *d, struct vhu_worker *w, unsigned id, uint64_t mask)
{
	struct epoll_event ev = {.events = EPOLLIN};

	w->d = d;
	w->id = id;
	w->mask = mask;
	w->dev_exit_fd = -1;
	vhu_poll_init(&w->poll, d->poll_us);
	for (uint64_t m = mask; m; m &= m - 1)
		if ((unsigned)__builtin_ctzll(m) < d->nq)
			d->vrings[__builtin_ctzll(m)].budget_owner = w;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epfd < 0 || w->wake_fd < 0)
		return -errno;
	ev.data.u64 = EV_DATA(EV_WAKE, 0, w->wake_fd);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
		return -errno;
	w->dev_exit_fd = vhu_be_exit_event(&d->be, id);
	if (w->dev_exit_fd >= 0) {
		ev.data.u64 = EV_DATA(EV_DEV_EXIT, 0, w->dev_exit_fd);
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->dev_exit_fd, &ev) < 0) {
			VHU_LOGE("%s: worker %u: exit_event fd %d: %s", d->name, id, w->dev_exit_fd,
			         strerror(errno));
			return -errno;
		}
	}
	if (d->pool)
		return 0; /* hosted by a pool thread: vhu_pool_attach() */
	if (pthread_create(&w->thread, NULL, worker_main, w))
		return -EAGAIN;
	w->running = true;
	return 0;
}

int vhu_workers_start(struct vhu_daemon *d)
{
	uint64_t masks[VHU_MAX_THREADS] = {0};
	int n = vhu_be_queues_per_thread(&d->be, masks, VHU_MAX_THREADS), err;

	err = assign_queues(d, masks, n);
	if (err)
		return err;
	d->workers = calloc((size_t)n, sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		d->workers[i].epfd = d->workers[i].wake_fd = -1;
	d->nworkers = (unsigned)n;
	for (int i = 0; i < n; i++) {
		err = worker_init(d, &d->workers[i], (unsigned)i, masks[i]);
		if (err) {
			vhu_workers_stop(d);
			return err;
		}
	}
	if (d->pool) {
		err = vhu_pool_attach(d->pool, d);
		if (err) {
			vhu_workers_stop(d);
			return err;
		}
		d->pooled = true;
	}
	return 0;
}

void vhu_workers_stop(struct vhu_daemon *d)
{
	if (d->pool && d->workers) {
		vhu_pool_detach(d->pool, d, d->pooled);
		d->pooled = false;
	}
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct vhu_worker *w = &d->workers[i];

		if (w->running) {
			atomic_store(&w->stop, true);
			atomic_store(&w->park, 0);
			futex(&w->park, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
			poke(w);
		}
	}
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct vhu_worker *w = &d->workers[i];

		if (w->running)
			pthread_join(w->thread, NULL);
		w->running = false;
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->wake_fd >= 0)
			close(w->wake_fd);
		w->epfd = w->wake_fd = -1;
	}
	free(d->workers);
	d->workers = NULL;
	d->nworkers = 0;
}

/* ---- for pool threads (pool.c) ------------------------------------------- */

void vhu_worker_enter(struct vhu_worker *w)
{
	vhu_tl_worker = w;
	section_enter(w);
}

void vhu_worker_leave(struct vhu_worker *w)
{
	section_leave(w);
	vhu_tl_worker = NULL;
}

bool vhu_worker_run_batch(struct vhu_worker *w, struct epoll_event *ev, int n, bool *listener)
{
	return dispatch_batch(w, ev, n, listener);
}

void vhu_worker_run_pending(struct vhu_worker *w)
{
	run_pending(w);
}

void vhu_worker_take_kicks(struct vhu_worker *w, uint64_t kicked, uint64_t bad)
{
	struct vhu_daemon *d = w->d;

	for (uint64_t m = kicked & w->mask; m; m &= m - 1) {
		unsigned q = (unsigned)__builtin_ctzll(m);

		if (q >= d->nq)
			break;
		if (bad & VHU_BIT(q)) {
			VHU_LOGW("%s: queue %u: kick fd unusable, ignoring it", d->name, q);
			continue;
		}
		vhu_vring_count_kick(&d->vrings[q]);
		w->pending |= VHU_BIT(q);
	}
	run_pending(w);
}

bool vhu_worker_has_pending(const struct vhu_worker *w)
{
	return w->pending & atomic_load(&((struct vhu_worker *)w)->active);
}

bool vhu_worker_must_yield(struct vhu_worker *w)
{
	return must_yield(w);
}

uint64_t vhu_worker_active(struct vhu_worker *w)
{
	return atomic_load(&w->active) & w->mask;
}

void vhu_worker_set_notify(struct vhu_worker *w, uint64_t rings, bool on, uint64_t *more)
{
	set_notify(w->d, rings, on, more);
}

bool vhu_worker_poll_pass(struct vhu_worker *w, uint64_t *rings)
{
	return poll_pass(w, rings);
}

uint64_t vhu_worker_chains(struct vhu_worker *w)
{
	return chains_popped(w);
}

void vhu_worker_exited(struct vhu_worker *w)
{
	futex(&w->parked, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	if (atomic_load(&w->waiters))
		futex(&w->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}
