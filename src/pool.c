/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Worker pool: a few threads that serve the queues of many daemons.
 *
 * A daemon created with a pool keeps its logical workers (its
 * queues_per_thread entries, each with its epoll set, wake-up eventfd,
 * listeners, park/synchronize state and the thread_id its device sees) but
 * no threads: each logical worker is hosted by one pool thread, chosen
 * when the daemon is created (the least loaded, counting queues, and one
 * not yet hosting this daemon when there is a choice).
 *
 * A pool thread epolls the epoll fds of the workers it hosts (nested,
 * edge-triggered: an event means "something new in that worker's set"),
 * their kick eventfds directly (edge-triggered, never read: a kick only
 * says "look at ring q", so an event that outlived its fd is a harmless
 * extra look) and its own wake-up eventfd.  For each worker with news it
 * enters the worker's critical section, takes the worker's events without
 * blocking, runs them and the kicks exactly as a private worker thread
 * would, and leaves.  So a handler's park / synchronize concerns that
 * worker only:
 *  - parking skips it: the thread marks it parked and goes on serving the
 *    others; its events wait in its epoll set until it is unparked;
 *  - synchronize waits until the thread finished the worker's section it
 *    was in (or one more).
 * What one device costs the others on the same pool thread is the time of
 * its own callbacks: a handler waiting for its worker waits at most for
 * the callback of another device that the thread is running (callbacks
 * must not block: the same rule as with private workers, where a blocked
 * callback stalls the device's other queues).
 *
 * Polling is per pool thread: one adaptive-polling policy (poll_policy.h)
 * over all the rings of its workers whose daemon polls (poll_us != 0),
 * with the pool's window; the thread sleeps in epoll_wait only when all of
 * them are idle.  A worker the handler parks or synchronizes leaves the
 * polling period at once; the others go on.
 *
 * Attaching and detaching workers (daemon new/free) publish a new
 * immutable set of hosted workers and wait until the thread took it, so a
 * detached worker is never touched again.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dev.h"

#define POOL_EVENTS 64
/* vhu_pool_ref.q of a worker's epoll set (kicks: the queue). */
#define POOL_REF_SET UINT_MAX
/* While polling, look at the workers' events this often (as worker.c). */
#define POOL_EVENTS_NS 4000u

struct pool_set {
	unsigned n;
	struct vhu_worker *w[];
};

struct vhu_pool_thread {
	struct vhu_pool *pool;
	unsigned index;
	pthread_t thread;
	bool running;
	int epfd;    /* workers' epoll fds and kick fds (data.ptr = vhu_pool_ref), wake_fd (NULL) */
	int wake_fd; /* set changed / stop */
	struct pool_set *_Atomic set;
	_Atomic uint32_t gen;  /* bumped with every new set */
	_Atomic uint32_t seen; /* gen the thread works with */
	atomic_bool stop;
	unsigned load; /* queues hosted (pool lock) */
	/* Thread-local. */
	struct vhu_poll poll;
	uint64_t chains; /* chains popped by hosted rings, running total */
};

struct vhu_pool {
	char *name;
	unsigned nthreads;
	unsigned poll_us;
	pthread_mutex_t lock; /* sets, loads, daemons */
	unsigned daemons;     /* attached */
	struct vhu_pool_thread *threads;
};

/* ---- attaching workers -------------------------------------------------- */

static void pt_poke(struct vhu_pool_thread *pt)
{
	uint64_t one = 1;

	if (write(pt->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		VHU_LOGE("%s: pool thread %u: wake-up failed: %s", pt->pool->name, pt->index,
		         strerror(errno));
}

/* Publish `set` (ownership taken) and wait until the thread uses it; the
 * old set is freed.  Pool lock held. */
static void pt_publish(struct vhu_pool_thread *pt, struct pool_set *set)
{
	struct pool_set *old = atomic_exchange(&pt->set, set);
	uint32_t gen = atomic_fetch_add(&pt->gen, 1) + 1;

	pt_poke(pt);
	while (pt->running && atomic_load(&pt->seen) != gen) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};

		vhu_futex_wait(&pt->seen, atomic_load(&pt->seen), &ts);
	}
	free(old);
}

/* A copy of pt's set with w added (w != NULL) or `drop` removed. */
static struct pool_set *set_edit(const struct pool_set *cur, struct vhu_worker *add,
                                 struct vhu_worker *drop)
{
	unsigned n = cur ? cur->n : 0, k = 0;
	struct pool_set *s = malloc(sizeof(*s) + (n + 1) * sizeof(s->w[0]));

	if (!s)
		return NULL;
	for (unsigned i = 0; i < n; i++)
		if (cur->w[i] != drop)
			s->w[k++] = cur->w[i];
	if (add)
		s->w[k++] = add;
	s->n = k;
	return s;
}

static unsigned popcount(uint64_t m)
{
	return (unsigned)__builtin_popcountll(m);
}

/* The least loaded thread, preferring one that hosts none of d's workers
 * so that a device's queues spread. */
static struct vhu_pool_thread *pick_thread(struct vhu_pool *p, const bool *used)
{
	struct vhu_pool_thread *best = NULL;
	bool best_used = true;

	for (unsigned i = 0; i < p->nthreads; i++) {
		struct vhu_pool_thread *pt = &p->threads[i];

		if (!best || (best_used && !used[i]) ||
		    (used[i] == best_used && pt->load < best->load)) {
			best = pt;
			best_used = used[i];
		}
	}
	return best;
}

static int attach_one(struct vhu_pool_thread *pt, struct vhu_worker *w)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &w->pref};
	struct pool_set *s = set_edit(atomic_load(&pt->set), w, NULL);

	if (!s)
		return -ENOMEM;
	w->pt = pt;
	w->pref = (struct vhu_pool_ref){.w = w, .q = POOL_REF_SET, .fd = w->epfd};
	if (epoll_ctl(pt->epfd, EPOLL_CTL_ADD, w->epfd, &ev) < 0) {
		int err = -errno;

		free(s);
		w->pt = NULL;
		return err;
	}
	w->running = true;
	w->ready = true; /* look at it once: listeners may have fired */
	pt->load += popcount(w->mask);
	pt_publish(pt, s);
	return 0;
}

static void detach_one(struct vhu_worker *w)
{
	struct vhu_pool_thread *pt = w->pt;
	struct pool_set *s;

	epoll_ctl(pt->epfd, EPOLL_CTL_DEL, w->epfd, NULL);
	/* Without memory for a new set, keep the old one but mark the worker
	 * gone: the thread skips exited workers. */
	s = set_edit(atomic_load(&pt->set), NULL, w);
	atomic_store(&w->exited, true);
	if (s)
		pt_publish(pt, s);
	else
		pt_publish(pt, set_edit(atomic_load(&pt->set), NULL, NULL));
	pt->load -= popcount(w->mask);
	w->running = false;
	w->pt = NULL;
}

int vhu_pool_attach(struct vhu_pool *p, struct vhu_daemon *d)
{
	bool used[VHU_POOL_MAX_THREADS] = {false};
	int err = 0;

	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < d->nworkers && !err; i++) {
		struct vhu_pool_thread *pt = pick_thread(p, used);

		err = attach_one(pt, &d->workers[i]);
		used[pt->index] = true;
	}
	if (!err)
		p->daemons++;
	pthread_mutex_unlock(&p->lock);
	if (err)
		vhu_pool_detach(p, d, false);
	return err;
}

void vhu_pool_detach(struct vhu_pool *p, struct vhu_daemon *d, bool counted)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < d->nworkers; i++)
		if (d->workers[i].pt)
			detach_one(&d->workers[i]);
	if (counted)
		p->daemons--;
	pthread_mutex_unlock(&p->lock);
}

int vhu_pool_watch_kick(struct vhu_worker *w, unsigned q, int fd)
{
	struct vhu_pool_ref *r = &w->kref[q];
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = r};

	if (q >= VHU_WORKER_QUEUES)
		return -EINVAL;
	*r = (struct vhu_pool_ref){.w = w, .q = q, .fd = fd};
	/* An fd that is readable already is reported at once. */
	if (epoll_ctl(w->pt->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void vhu_pool_unwatch_kick(struct vhu_worker *w, int fd)
{
	epoll_ctl(w->pt->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int vhu_daemon_pool_thread(const struct vhu_daemon *d, unsigned worker)
{
	if (!d || worker >= d->nworkers)
		return -EINVAL;
	return d->workers[worker].pt ? (int)d->workers[worker].pt->index : -1;
}

/* ---- the thread ----------------------------------------------------------- */

/* Take the newest set (and say so). */
static struct pool_set *pt_refresh(struct vhu_pool_thread *pt)
{
	uint32_t gen = atomic_load(&pt->gen);

	if (atomic_load_explicit(&pt->seen, memory_order_relaxed) != gen) {
		atomic_store(&pt->seen, gen);
		vhu_futex_wake(&pt->seen);
	}
	return atomic_load(&pt->set);
}

static bool pt_yield(struct vhu_pool_thread *pt)
{
	return atomic_load_explicit(&pt->gen, memory_order_relaxed) !=
	           atomic_load_explicit(&pt->seen, memory_order_relaxed) ||
	       atomic_load_explicit(&pt->stop, memory_order_relaxed);
}

static uint64_t period_close(struct vhu_worker *w, bool handle);

/*
 * Enter w's section if the thread may run it now: not retired or detached,
 * and not wanted parked.  `park` is read inside the section: the handler
 * sets it and then waits until the section it sees is over, so once it
 * proceeds every later section backs off here.  A worker in a polling
 * period is in its section already (its rings have notifications off);
 * if its handler wants it back (park, synchronize) it leaves the period
 * first, as a private worker leaves poll_rings() before it parks.
 * True: inside, call pt_leave().
 */
static bool pt_enter(struct vhu_worker *w)
{
	if (w->prings) {
		if (!vhu_worker_must_yield(w)) {
			vhu_tl_worker = w;
			return true;
		}
		w->pending |= period_close(w, false);
	}
	if (atomic_load_explicit(&w->exited, memory_order_acquire))
		return false;
	vhu_worker_enter(w);
	if (!atomic_load(&w->park))
		return true;
	vhu_worker_leave(w);
	return false;
}

/* Leave w's section, unless its polling period goes on holding it. */
static void pt_leave(struct vhu_worker *w)
{
	if (w->prings)
		vhu_tl_worker = NULL;
	else
		vhu_worker_leave(w);
}

/* The device's exit event fired for w: stop serving it. */
static void retire(struct vhu_pool_thread *pt, struct vhu_worker *w)
{
	epoll_ctl(pt->epfd, EPOLL_CTL_DEL, w->epfd, NULL);
	atomic_store(&w->exited, true);
	vhu_worker_exited(w);
}

/* The kicks collected for w (inside its section, so its handler is not
 * changing kick fds meanwhile): an fd that failed leaves the epoll set. */
static void take_kicks(struct vhu_pool_thread *pt, struct vhu_worker *w)
{
	uint64_t kicked = w->kicked, bad = w->kick_bad;

	w->kicked = w->kick_bad = 0;
	for (uint64_t m = bad; m; m &= m - 1)
		epoll_ctl(pt->epfd, EPOLL_CTL_DEL, w->kref[__builtin_ctzll(m)].fd, NULL);
	vhu_worker_take_kicks(w, kicked, bad);
}

/* Run w's events (without blocking), its kicks and the kicks it kept. */
static void serve_worker(struct vhu_pool_thread *pt, struct vhu_worker *w)
{
	struct epoll_event ev[POOL_EVENTS];
	bool quit = false, listener = false;
	int n;

	if (!pt_enter(w))
		return;
	n = w->ready ? epoll_wait(w->epfd, ev, POOL_EVENTS, 0) : 0;
	quit = n > 0 && vhu_worker_run_batch(w, ev, n, &listener);
	if (!quit)
		take_kicks(pt, w);
	if (quit && w->prings)
		period_close(w, false); /* leaves the section too */
	else
		pt_leave(w);
	/* A full batch may have left more; a listener the device did not
	 * drain stays readable (level-triggered, as with a private worker)
	 * but the nested epoll only reports news: look again. */
	w->ready = n == POOL_EVENTS || (n > 0 && listener);
	if (quit)
		retire(pt, w);
}

/* Serve every hosted worker with news; true if one has more. */
static bool serve_ready(struct vhu_pool_thread *pt, struct pool_set *set)
{
	bool more = false;

	for (unsigned i = 0; set && i < set->n; i++) {
		struct vhu_worker *w = set->w[i];

		if (!w->ready && !w->kicked && !vhu_worker_has_pending(w))
			continue;
		serve_worker(pt, w);
		/* A parked worker is not "more": unpark pokes it. */
		if (!atomic_load(&w->park) && !atomic_load(&w->exited))
			more |= w->ready || w->kicked || vhu_worker_has_pending(w);
	}
	return more;
}

/* Mark the workers epoll reported.  Returns the number of events. */
static int collect(struct vhu_pool_thread *pt, int timeout_ms)
{
	struct epoll_event ev[POOL_EVENTS];
	int n = epoll_wait(pt->epfd, ev, POOL_EVENTS, timeout_ms);
	uint64_t v;

	if (n < 0 && errno != EINTR)
		VHU_LOGE("%s: pool thread %u: epoll_wait: %s", pt->pool->name, pt->index,
		         strerror(errno));
	for (int i = 0; i < n; i++) {
		struct vhu_pool_ref *r = ev[i].data.ptr;

		if (!r) {
			if (read(pt->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				VHU_LOGW("%s: pool thread %u: %s", pt->pool->name, pt->index,
				         strerror(errno));
		} else if (r->q == POOL_REF_SET) {
			r->w->ready = true;
		} else {
			r->w->kicked |= VHU_BIT(r->q);
			if (ev[i].events & (EPOLLERR | EPOLLHUP))
				r->w->kick_bad |= VHU_BIT(r->q);
		}
	}
	return n > 0 ? n : 0;
}

/* ---- polling ---------------------------------------------------------------- */

/* Workers whose rings this thread polls: their daemon polls. */
static bool polls(const struct vhu_worker *w)
{
	return w->d->poll_us != 0;
}

static uint64_t chains_total(struct vhu_pool_thread *pt, struct pool_set *set)
{
	for (unsigned i = 0; set && i < set->n; i++) {
		uint64_t c = vhu_worker_chains(set->w[i]);

		pt->chains += c - set->w[i]->chains_seen;
		set->w[i]->chains_seen = c;
	}
	return pt->chains;
}

static void pt_account(struct vhu_pool_thread *pt, struct pool_set *set)
{
	uint64_t now = vhu_poll_now_ns();

	if (vhu_poll_due(&pt->poll, now))
		vhu_poll_account(&pt->poll, now, vhu_poll_cpu_ns(), chains_total(pt, set));
}

/*
 * Polling periods.  While a worker's rings take part in a period their
 * notifications are off, and the worker's section stays open from the
 * period's start to its end (w->prings != 0 exactly then), the passes of
 * the other workers and the thread's own bookkeeping included: so a
 * handler that parks or synchronizes the worker waits until the thread
 * turned its notifications back on and left, never while the thread may
 * still touch its rings.
 */

/* Start w's polling period: notifications off on its polled rings. */
static void period_begin(struct vhu_worker *w)
{
	uint64_t rings;

	w->prings = w->plive = 0;
	if (!polls(w) || !pt_enter(w))
		return;
	rings = vhu_worker_must_yield(w) ? 0 : vhu_worker_active(w);
	if (!rings) {
		pt_leave(w);
		return;
	}
	vhu_worker_set_notify(w, rings, false, NULL);
	w->prings = w->plive = rings;
	vhu_tl_worker = NULL;
}

/* End w's polling period: notifications on again, its section left.
 * Returns the rings still live that got buffers meanwhile, after handling
 * them when `handle` is set (not when the handler wants the worker: the
 * caller keeps them pending). */
static uint64_t period_close(struct vhu_worker *w, bool handle)
{
	uint64_t more = 0;

	if (!w->prings)
		return 0;
	vhu_tl_worker = w;
	vhu_worker_set_notify(w, w->prings, true, &more);
	more &= vhu_worker_active(w) & w->plive;
	if (more && handle)
		vhu_worker_poll_pass(w, &more);
	w->prings = w->plive = 0;
	vhu_worker_leave(w);
	return more;
}

/* One pass over every worker in the period.  A worker its handler wants
 * back (park, synchronize), or whose rings the device all left untouched
 * (it defers their work), leaves the period. */
static bool poll_pass_all(struct pool_set *set, bool *live)
{
	bool work = false;

	*live = false;
	for (unsigned i = 0; i < set->n; i++) {
		struct vhu_worker *w = set->w[i];

		if (!w->prings)
			continue;
		vhu_tl_worker = w;
		if (vhu_worker_must_yield(w)) {
			w->pending |= period_close(w, false);
			continue;
		}
		work |= vhu_worker_poll_pass(w, &w->plive);
		if (!w->plive)
			period_close(w, false);
		vhu_tl_worker = NULL;
		*live |= w->prings != 0;
	}
	return work;
}

enum poll_end { POLL_IDLE, POLL_DUE, POLL_YIELD };

/* One polling period over all hosted rings (see worker.c's poll_rings). */
static enum poll_end poll_period(struct vhu_pool_thread *pt, struct pool_set *set)
{
	uint64_t win = (uint64_t)pt->poll.window_us * 1000u;
	uint64_t now = vhu_poll_now_ns(), idle_at = now + win, events_at = now + POOL_EVENTS_NS;
	enum poll_end end = POLL_IDLE;
	bool live = false, more = false;

	for (unsigned i = 0; i < set->n; i++) {
		period_begin(set->w[i]);
		live |= set->w[i]->plive != 0;
	}
	while (live) {
		bool work = poll_pass_all(set, &live);

		now = vhu_poll_now_ns();
		if (now >= events_at) {
			events_at = now + POOL_EVENTS_NS;
			if (collect(pt, 0))
				work |= true;
			serve_ready(pt, set);
		}
		if (pt_yield(pt)) {
			end = POLL_YIELD;
			break;
		}
		if (work)
			idle_at = now + win;
		else if (now >= idle_at)
			break;
		if (vhu_poll_due(&pt->poll, now)) {
			end = POLL_DUE;
			break;
		}
	}
	/* Buffers that slipped in while notifications were off are handled
	 * now (no kick will come for them); if any did, poll on. */
	for (unsigned i = 0; i < set->n; i++)
		more |= period_close(set->w[i], true) != 0;
	return end == POLL_IDLE && more ? POLL_DUE : end;
}

static void pt_poll(struct vhu_pool_thread *pt, struct pool_set *set)
{
	if (!set || !pt->poll.window_us)
		return;
	pt_account(pt, set);
	while (vhu_poll_spinning(&pt->poll) && !pt_yield(pt)) {
		if (poll_period(pt, set) != POLL_DUE)
			return;
		pt_account(pt, set);
	}
}

static void *pool_main(void *arg)
{
	struct vhu_pool_thread *pt = arg;
	char name[16];
	bool more = true;

	snprintf(name, sizeof(name), "%.8s-pool%u", pt->pool->name, pt->index);
	pthread_setname_np(pthread_self(), name);
	while (!atomic_load(&pt->stop)) {
		struct pool_set *set = pt_refresh(pt);

		collect(pt, more ? 0 : -1);
		set = pt_refresh(pt);
		more = serve_ready(pt, set);
		pt_poll(pt, set);
		vhu_tl_worker = NULL;
	}
	return NULL;
}

/* ---- pool ------------------------------------------------------------------- */

static void pool_destroy(struct vhu_pool *p)
{
	for (unsigned i = 0; p->threads && i < p->nthreads; i++) {
		struct vhu_pool_thread *pt = &p->threads[i];

		if (pt->running) {
			atomic_store(&pt->stop, true);
			pt_poke(pt);
			pthread_join(pt->thread, NULL);
		}
		if (pt->epfd >= 0)
			close(pt->epfd);
		if (pt->wake_fd >= 0)
			close(pt->wake_fd);
		free(atomic_load(&pt->set));
	}
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	free(p->name);
	free(p);
}

static int thread_init(struct vhu_pool *p, struct vhu_pool_thread *pt, unsigned i)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

	pt->pool = p;
	pt->index = i;
	vhu_poll_init(&pt->poll, p->poll_us);
	pt->epfd = epoll_create1(EPOLL_CLOEXEC);
	pt->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pt->epfd < 0 || pt->wake_fd < 0)
		return -errno;
	if (epoll_ctl(pt->epfd, EPOLL_CTL_ADD, pt->wake_fd, &ev) < 0)
		return -errno;
	if (pthread_create(&pt->thread, NULL, pool_main, pt))
		return -EAGAIN;
	pt->running = true;
	return 0;
}

int vhu_pool_new(struct vhu_pool **out, const struct vhu_pool_config *cfg)
{
	static const struct vhu_pool_config defaults;
	struct vhu_pool *p;
	long cpus;
	int err = 0;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	if (cfg->threads > VHU_POOL_MAX_THREADS)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	p->nthreads = cfg->threads ? cfg->threads
	                           : (unsigned)(cpus < 1                      ? 1
	                                        : cpus > VHU_POOL_MAX_THREADS ? VHU_POOL_MAX_THREADS
	                                                                      : cpus);
	p->poll_us = cfg->poll_us;
	p->name = strdup(cfg->name ? cfg->name : "vhu");
	p->threads = calloc(p->nthreads, sizeof(*p->threads));
	if (!p->name || !p->threads) {
		pool_destroy(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < p->nthreads; i++)
		p->threads[i].epfd = p->threads[i].wake_fd = -1;
	for (unsigned i = 0; i < p->nthreads && !err; i++)
		err = thread_init(p, &p->threads[i], i);
	if (err) {
		pool_destroy(p);
		return err;
	}
	*out = p;
	return 0;
}

int vhu_pool_free(struct vhu_pool *p)
{
	unsigned daemons;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	daemons = p->daemons;
	pthread_mutex_unlock(&p->lock);
	if (daemons) {
		VHU_LOGE("%s: pool still serves %u daemon(s); free them first", p->name, daemons);
		return -EBUSY;
	}
	pool_destroy(p);
	return 0;
}

unsigned vhu_pool_num_threads(const struct vhu_pool *p)
{
	return p ? p->nthreads : 0;
}
