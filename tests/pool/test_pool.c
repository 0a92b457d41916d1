/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Worker pools: several daemons (the core suite's echo device, each on its
 * own socket, each with its own front end driving it from its own thread)
 * served by a few shared threads.  Cases: how workers spread over the
 * threads, I/O on many devices at once, thread_id and listeners per
 * logical worker, and isolation: a device whose handler is stuck in
 * reset, whose front end keeps changing its memory table and rings, sends
 * garbage or disconnects, or that is freed, costs the other devices on the
 * same pool thread nothing but time; exit events, sleeping when idle,
 * pool_free refusing while in use, and no leaks.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev.h" /* vhu_workers_park: hold a device parked */
#include "echo.h"
#include "vt.h"

VT_MAIN

#define MAXDEV 8

struct pdev {
	struct echo dev;
	struct vhu_daemon *d;
	char path[128];
};

struct penv {
	char dir[64];
	struct vhu_pool *pool;
	unsigned n;
	struct pdev devs[MAXDEV];
};

static int penv_init(struct penv *p, unsigned threads, unsigned poll_us)
{
	struct vhu_pool_config pc = {.name = "tpool", .threads = threads, .poll_us = poll_us};

	memset(p, 0, sizeof(*p));
	strcpy(p->dir, "/tmp/vhu-pool-XXXXXX");
	if (!mkdtemp(p->dir))
		return -errno;
	return vhu_pool_new(&p->pool, &pc);
}

/* Add a device (echo_init done by the caller through *e, may be NULL:
 * nq queues, one worker) serving on its own socket. */
static struct pdev *penv_add(struct penv *p, unsigned nq, const struct vhu_backend_ops *ops,
                             unsigned poll_us, void (*custom)(struct echo *))
{
	struct vhu_daemon_config cfg = {.name = "pdev", .pool = p->pool, .poll_us = poll_us};
	struct pdev *x = &p->devs[p->n];

	if (p->n == MAXDEV)
		return NULL;
	echo_init(&x->dev, nq);
	if (custom)
		custom(&x->dev);
	char dir[sizeof(p->dir)];

	memcpy(dir, p->dir, sizeof(dir)); /* not an overlap, but gcc cannot tell */
	snprintf(x->path, sizeof(x->path), "%s/s%u", dir, p->n);
	if (vhu_daemon_new(&x->d, ops ? ops : &echo_ops, &x->dev, &cfg) < 0)
		return NULL;
	if (vhu_daemon_start(x->d, x->path) < 0) {
		vhu_daemon_free(x->d);
		x->d = NULL;
		return NULL;
	}
	p->n++;
	return x;
}

static void pdev_free(struct pdev *x)
{
	if (!x->d)
		return;
	vhu_daemon_stop(x->d);
	vhu_daemon_wait(x->d);
	vhu_daemon_free(x->d);
	x->d = NULL;
	unlink(x->path);
	echo_destroy(&x->dev);
}

static void penv_fini(struct penv *p)
{
	for (unsigned i = 0; i < p->n; i++)
		pdev_free(&p->devs[i]);
	VT_EQ(vhu_pool_free(p->pool), 0);
	rmdir(p->dir);
}

static struct vhuf *fe_feat(struct pdev *x, unsigned nq, uint64_t features)
{
	struct vhuf_opts o = {.connect_timeout_ms = 5000};
	struct vhuf *f;

	if (vhuf_connect(&f, x->path, &o) < 0)
		return NULL;
	if (vhuf_negotiate(f, features, PF_ALL) < 0) {
		vhuf_close(f);
		return NULL;
	}
	for (unsigned q = 0; q < nq; q++)
		if (vhuf_queue_setup(f, q, 128) < 0) {
			vhuf_close(f);
			return NULL;
		}
	return f;
}

static struct vhuf *fe(struct pdev *x, unsigned nq)
{
	return fe_feat(x, nq, F_ALL);
}

/* ---- spreading ----------------------------------------------------------- */

static void two_workers(struct echo *e)
{
	e->nthreads = 2;
	e->masks[0] = 1;
	e->masks[1] = 2;
}

VT_CASE(workers_spread_over_threads)
{
	struct penv p;
	unsigned per[2] = {0, 0};
	struct pdev *x;

	VT_REQUIRE(penv_init(&p, 2, 0) == 0);
	VT_EQ(vhu_pool_num_threads(p.pool), 2);
	/* A two-worker device: one worker on each thread. */
	x = penv_add(&p, 2, NULL, 0, two_workers);
	VT_REQUIRE(x);
	VT_EQ(vhu_daemon_num_threads(x->d), 2);
	VT_CHECK(vhu_daemon_pool_thread(x->d, 0) != vhu_daemon_pool_thread(x->d, 1));
	VT_EQ(vhu_daemon_pool_thread(x->d, 2), -EINVAL);
	/* Four one-queue devices: two more on each thread. */
	for (unsigned i = 0; i < 4; i++) {
		x = penv_add(&p, 1, NULL, 0, NULL);
		VT_REQUIRE(x);
		int t = vhu_daemon_pool_thread(x->d, 0);

		VT_REQUIRE(t == 0 || t == 1);
		per[t]++;
	}
	VT_EQ(per[0], 2);
	VT_EQ(per[1], 2);
	penv_fini(&p);
}

VT_CASE(config_checks)
{
	struct vhu_pool_config pc = {.threads = VHU_POOL_MAX_THREADS + 1};
	struct vhu_pool *pool = NULL;
	struct vhu_daemon *d = NULL;
	struct echo e;

	VT_EQ(vhu_pool_new(&pool, &pc), -EINVAL);
	VT_CHECK(pool == NULL);
	VT_EQ(vhu_pool_new(NULL, NULL), -EINVAL);
	VT_REQUIRE(vhu_pool_new(&pool, NULL) == 0);
	VT_CHECK(vhu_pool_num_threads(pool) >= 1);
	/* A daemon without a pool has threads of its own. */
	echo_init(&e, 1);
	VT_REQUIRE(vhu_daemon_new(&d, &echo_ops, &e, NULL) == 0);
	VT_EQ(vhu_daemon_pool_thread(d, 0), -1);
	vhu_daemon_free(d);
	VT_EQ(vhu_pool_free(pool), 0);
	VT_EQ(vhu_pool_free(NULL), 0);
}

/* ---- I/O on many devices ---------------------------------------------- */

struct job {
	struct pdev *x;
	unsigned nq, n, rounds;
	int ret;
};

static void *io_job(void *arg)
{
	struct job *j = arg;
	struct vhuf *f = fe(j->x, j->nq);

	j->ret = f ? 0 : -EIO;
	for (unsigned r = 0; f && !j->ret && r < j->rounds; r++)
		for (unsigned q = 0; q < j->nq && !j->ret; q++)
			j->ret = fe_io(f, q, j->n);
	if (f)
		vhuf_close(f);
	return NULL;
}

static void run_jobs(struct job *j, unsigned n)
{
	pthread_t th[MAXDEV];

	for (unsigned i = 0; i < n; i++)
		VT_REQUIRE(pthread_create(&th[i], NULL, io_job, &j[i]) == 0);
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* Devices a (ops, NULL for the echo device) and b, one queue each, on a
 * pool of one thread; a's front end connected and through `io` requests.
 * NULL (the failed step reported) when any part cannot be set up. */
static struct vhuf *pair_on_one_thread(struct penv *p, const struct vhu_backend_ops *ops,
                                       unsigned io, struct pdev **a, struct pdev **b)
{
	struct vhuf *fa;
	int rc = penv_init(p, 1, 0);

	VT_EQ(rc, 0);
	if (rc)
		return NULL;
	*a = penv_add(p, 1, ops, 0, NULL);
	*b = penv_add(p, 1, NULL, 0, NULL);
	VT_CHECK(*a && *b);
	fa = *a && *b ? fe(*a, 1) : NULL;
	VT_CHECK(fa);
	if (fa)
		VT_EQ(fe_io(fa, 0, io), 0);
	return fa;
}

/* x serves a one-queue front end: 4 rounds of 50 requests. */
static void serves_a_job(struct pdev *x)
{
	struct job j = {x, 1, 50, 4, -1};

	io_job(&j);
	VT_EQ(j.ret, 0);
}

static void many_devices(unsigned threads, unsigned poll_us)
{
	struct job j[MAXDEV];
	struct penv p;

	VT_REQUIRE(penv_init(&p, threads, poll_us) == 0);
	for (unsigned i = 0; i < MAXDEV; i++) {
		struct pdev *x = penv_add(&p, 2, NULL, poll_us, i & 1 ? two_workers : NULL);

		VT_REQUIRE(x);
		j[i] = (struct job){x, 2, 40, 5, -1};
	}
	run_jobs(j, MAXDEV);
	uint64_t polls = 0;
	for (unsigned i = 0; i < MAXDEV; i++)
		for (unsigned q = 0; q < 2; q++) {
			struct vhu_vring_stats st;

			vhu_vring_get_stats(vhu_daemon_vring(p.devs[i].d, q), &st);
			polls += st.polls;
		}
	fprintf(stderr, "# chains found by polling: %llu\n", (unsigned long long)polls);
	for (unsigned i = 0; i < MAXDEV; i++) {
		VT_EQ(j[i].ret, 0);
		VT_EQ(atomic_load(&p.devs[i].dev.done[0]) + atomic_load(&p.devs[i].dev.done[1]),
		      400);
		/* thread_id is the device's own worker index. */
		VT_EQ(atomic_load(&p.devs[i].dev.qthread[0]), 0);
		VT_EQ(atomic_load(&p.devs[i].dev.qthread[1]), i & 1 ? 1 : 0);
	}
	penv_fini(&p);
}

VT_CASE(eight_devices_one_thread)
{
	many_devices(1, 0);
}

VT_CASE(eight_devices_two_threads_polling)
{
	many_devices(2, 50);
}

/* Listeners are per logical worker, as with private threads. */
VT_CASE(listener_on_a_pooled_worker)
{
	struct penv p;
	struct pdev *x;
	uint64_t one = 1;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	VT_REQUIRE(efd >= 0);
	VT_REQUIRE(penv_init(&p, 1, 0) == 0);
	x = penv_add(&p, 2, NULL, 0, two_workers);
	VT_REQUIRE(x);
	x->dev.listen_fd = efd;
	VT_EQ(vhu_daemon_add_listener(x->d, 1, efd, EPOLLIN, 7), 0);
	for (unsigned i = 1; i <= 3; i++) {
		VT_EQ(write(efd, &one, sizeof(one)), 8);
		VT_CHECK(WAIT_UNTIL(atomic_load(&x->dev.listener_hits) == i, 5000));
	}
	VT_EQ(atomic_load(&x->dev.listener_id), 7);
	VT_EQ(atomic_load(&x->dev.listener_thread), 1);
	VT_EQ(vhu_daemon_del_listener(x->d, 1, efd), 0);
	penv_fini(&p);
	close(efd);
}

/* ---- isolation ---------------------------------------------------------- */

/* A device whose reset blocks its handler until the test lets it go
 * (vhu-blk waits so for I/O in flight). */
static atomic_bool reset_gate;
static atomic_uint reset_waiting;

static void slow_reset(void *dev)
{
	atomic_fetch_add(&reset_waiting, 1);
	while (atomic_load(&reset_gate))
		usleep(1000);
	echo_ops.reset_device(dev);
}

VT_CASE(stuck_handler_does_not_stall_the_thread)
{
	struct vhu_backend_ops slow = echo_ops;
	struct penv p;
	struct pdev *a, *b;
	struct vhuf *fa;

	slow.reset_device = slow_reset;
	fa = pair_on_one_thread(&p, &slow, 20, &a, &b);
	VT_REQUIRE(fa);
	atomic_store(&reset_gate, true);
	atomic_store(&reset_waiting, 0);
	vhuf_close(fa); /* a's handler now sits in reset_device */
	VT_CHECK(WAIT_UNTIL(atomic_load(&reset_waiting) == 1, 5000));
	serves_a_job(b);
	atomic_store(&reset_gate, false);
	VT_CHECK(WAIT_UNTIL(vhu_daemon_connections(a->d) == 1, 5000));
	serves_a_job(a);
	penv_fini(&p);
}

/* One device held parked (as its handler does around ring and memory
 * changes): the pool thread goes on serving the others; the parked
 * device's kick waits until it is unparked, then is served. */
VT_CASE(parked_device_waits_alone)
{
	uint64_t out, in;
	struct penv p;
	struct pdev *a, *b;
	struct vhuf *fa;

	fa = pair_on_one_thread(&p, NULL, 10, &a, &b);
	VT_REQUIRE(fa);
	out = vhuf_alloc(fa, 64, 8);
	in = vhuf_alloc(fa, 64, 8);
	vhu_workers_park(a->d);
	{
		struct vhuf_buf bufs[2] = {{out, 64, false}, {in, 64, true}};

		VT_REQUIRE(vhuf_submit(fa, 0, bufs, 2, false, (void *)1) >= 0);
		vhuf_kick_force(fa, 0);
	}
	serves_a_job(b);
	VT_EQ(atomic_load(&a->dev.done[0]), 10); /* still parked */
	vhu_workers_unpark(a->d);
	VT_CHECK(WAIT_UNTIL(atomic_load(&a->dev.done[0]) == 11, 5000));
	vhuf_close(fa);
	penv_fini(&p);
}

/* A neighbour whose callback the test holds (gate) while the pool thread
 * runs it. */
static atomic_bool gate;
static atomic_uint gate_entered;
static const void *gate_dev;

static int gated_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vr, unsigned n,
                       unsigned thread)
{
	if (dev == gate_dev && atomic_load(&gate)) {
		atomic_fetch_add(&gate_entered, 1);
		while (atomic_load(&gate))
			usleep(1000);
	}
	return echo_ops.handle_event(dev, ev, evset, vr, n, thread);
}

static void *open_gate_later(void *arg)
{
	(void)arg;
	usleep(100 * 1000);
	atomic_store(&gate, false);
	return NULL;
}

/* Parking a device that its pool thread is polling ends the polling
 * period first, as a private worker does before it parks: when
 * vhu_workers_park() returns, the device's ring has notifications on and
 * the pool thread leaves it alone until unpark (the handler is about to
 * change or unmap it).  Without EVENT_IDX the used ring's flags say
 * whether the back end polls (NO_NOTIFY).  The park comes while the pool
 * thread sits in a neighbour's callback in the middle of the period. */
VT_CASE(park_ends_polling_period)
{
	const uint64_t features = F_ALL & ~VHU_BIT(VHU_F_RING_EVENT_IDX);
	struct vhu_backend_ops gated = echo_ops;
	unsigned tries = 0, hits = 0;
	struct vhuf *f, *fb;
	_Atomic uint16_t *flags;
	struct penv p;
	struct pdev *a, *b;

	gated.handle_event = gated_event;
	VT_REQUIRE(penv_init(&p, 1, 200000) == 0); /* 200 ms window */
	a = penv_add(&p, 1, NULL, 1, NULL);
	b = penv_add(&p, 1, &gated, 1, NULL);
	VT_REQUIRE(a && b);
	gate_dev = &b->dev;
	f = fe_feat(a, 1, features);
	fb = fe(b, 1);
	VT_REQUIRE(f && fb);
	flags = vhuf_ring_used(f, 0);
	/* The policy tries polling now and then: catch it at it. */
	while (hits < 3 && tries++ < 200000) {
		uint64_t out = vhuf_alloc(fb, 64, 8), in = vhuf_alloc(fb, 64, 8);
		struct vhuf_buf bufs[2] = {{out, 64, false}, {in, 64, true}};
		uint16_t at_park, later;
		unsigned entered;
		pthread_t th;

		VT_REQUIRE(fe_io(f, 0, 1) == 0);
		if (!(atomic_load(flags) & 1))
			continue;
		entered = atomic_load(&gate_entered);
		atomic_store(&gate, true);
		VT_REQUIRE(vhuf_submit(fb, 0, bufs, 2, false, (void *)1) >= 0);
		vhuf_kick_force(fb, 0);
		VT_REQUIRE(WAIT_UNTIL(atomic_load(&gate_entered) != entered, 5000));
		/* The thread is stuck in b's callback now: is a still polled? */
		if (!(atomic_load(flags) & 1)) {
			atomic_store(&gate, false);
			VT_REQUIRE(vhuf_wait_used(fb, 0, 5000, NULL, NULL) == 1);
			continue;
		}
		VT_REQUIRE(pthread_create(&th, NULL, open_gate_later, NULL) == 0);
		vhu_workers_park(a->d);
		at_park = atomic_load(flags);
		usleep(20 * 1000);
		later = atomic_load(flags);
		vhu_workers_unpark(a->d);
		pthread_join(th, NULL);
		VT_REQUIRE(vhuf_wait_used(fb, 0, 5000, NULL, NULL) == 1);
		VT_EQ(at_park & 1, 0);
		VT_EQ(later, at_park);
		hits++;
	}
	fprintf(stderr, "# parked while polling: %u times (%u tries)\n", hits, tries);
	VT_CHECK(hits > 0);
	VT_EQ(fe_io(f, 0, 20), 0);
	VT_EQ(fe_io(fb, 0, 20), 0);
	vhuf_close(f);
	vhuf_close(fb);
	penv_fini(&p);
}

/* Lifecycle hooks reach pooled workers, each with its own thread_id, and
 * one device's front end going calls only that device's frontend_gone. */
struct hooks {
	const void *dev;
	atomic_uint ready[2], gone[2];
} hk[2];

static struct hooks *hooks_of(const void *dev)
{
	return hk[0].dev == dev ? &hk[0] : hk[1].dev == dev ? &hk[1] : NULL;
}

static void h_ready(void *dev, unsigned q, unsigned thread_id)
{
	struct hooks *h = hooks_of(dev);

	if (h && q < 2 && thread_id == q) /* two_workers: queue q on worker q */
		atomic_fetch_add(&h->ready[q], 1);
}

static void h_gone(void *dev, unsigned thread_id)
{
	struct hooks *h = hooks_of(dev);

	if (h && thread_id < 2)
		atomic_fetch_add(&h->gone[thread_id], 1);
}

VT_CASE(lifecycle_hooks_on_pooled_workers)
{
	struct vhu_backend_ops ops = echo_ops;
	struct penv p;
	struct pdev *a, *b;
	struct vhuf *fa, *fb;

	ops.queue_ready = h_ready;
	ops.frontend_gone = h_gone;
	memset(hk, 0, sizeof(hk));
	VT_REQUIRE(penv_init(&p, 1, 0) == 0);
	a = penv_add(&p, 2, &ops, 0, two_workers);
	b = penv_add(&p, 2, &ops, 0, two_workers);
	VT_REQUIRE(a && b);
	hk[0].dev = &a->dev;
	hk[1].dev = &b->dev;
	fa = fe(a, 2);
	fb = fe(b, 2);
	VT_REQUIRE(fa && fb);
	for (unsigned q = 0; q < 2; q++) {
		VT_CHECK(WAIT_UNTIL(atomic_load(&hk[0].ready[q]) == 1, 5000));
		VT_CHECK(WAIT_UNTIL(atomic_load(&hk[1].ready[q]) == 1, 5000));
	}
	vhuf_close(fa);
	VT_CHECK(WAIT_UNTIL(vhu_daemon_connections(a->d) == 1, 5000));
	for (unsigned t = 0; t < 2; t++) {
		VT_EQ(atomic_load(&hk[0].gone[t]), 1);
		VT_EQ(atomic_load(&hk[1].gone[t]), 0);
	}
	VT_EQ(fe_io(fb, 0, 20), 0);
	VT_EQ(fe_io(fb, 1, 20), 0);
	vhuf_close(fb);
	VT_CHECK(WAIT_UNTIL(vhu_daemon_connections(b->d) == 1, 5000));
	VT_EQ(atomic_load(&hk[1].gone[0]) + atomic_load(&hk[1].gone[1]), 2);
	penv_fini(&p);
}

struct churn {
	struct pdev *x;
	atomic_bool stop;
	unsigned rounds;
};

/* A front end that keeps reconfiguring its device: new memory tables,
 * ring stops and restarts (park + synchronize on the handler side),
 * garbage, hang-ups. */
static void *churn_job(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		struct vhuf *f = fe(c->x, 1);
		uint32_t base;

		if (!f)
			continue;
		for (unsigned i = 0; i < 5; i++) {
			fe_io(f, 0, 10);
			vhuf_send_mem_table(f);
			vhuf_queue_stop(f, 0, &base);
			vhuf_queue_restart(f, 0);
		}
		if (c->rounds & 1) {
			static const char junk[64] = "not a vhost-user message";

			if (write(vhuf_sock(f), junk, sizeof(junk)) < 0)
				break;
		}
		vhuf_close(f);
		c->rounds++;
	}
	return NULL;
}

VT_CASE(misbehaving_neighbour)
{
	struct churn c = {.rounds = 0};
	struct job j[3];
	struct penv p;
	pthread_t th;

	VT_REQUIRE(penv_init(&p, 1, 30) == 0);
	c.x = penv_add(&p, 1, NULL, 30, NULL);
	VT_REQUIRE(c.x);
	for (unsigned i = 0; i < 3; i++) {
		j[i] = (struct job){penv_add(&p, 2, NULL, 30, i == 1 ? two_workers : NULL), 2, 60,
		                    8, -1};
		VT_REQUIRE(j[i].x);
	}
	atomic_store(&c.stop, false);
	VT_REQUIRE(pthread_create(&th, NULL, churn_job, &c) == 0);
	run_jobs(j, 3);
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	VT_CHECK(c.rounds >= 1);
	for (unsigned i = 0; i < 3; i++) {
		VT_EQ(j[i].ret, 0);
		/* Only their own front end's hang-up reset them. */
		VT_CHECK(WAIT_UNTIL(vhu_daemon_connections(j[i].x->d) == 1, 5000));
		VT_EQ(atomic_load(&j[i].x->dev.calls[OP_RESET]), 1);
	}
	penv_fini(&p);
}

/* Daemons created and freed on the pool while others run I/O on it. */
VT_CASE(attach_and_detach_under_load)
{
	struct penv p;
	struct job j;
	pthread_t th;

	VT_REQUIRE(penv_init(&p, 2, 20) == 0);
	j = (struct job){penv_add(&p, 2, NULL, 20, two_workers), 2, 50, 30, -1};
	VT_REQUIRE(j.x);
	VT_REQUIRE(pthread_create(&th, NULL, io_job, &j) == 0);
	for (unsigned i = 0; i < 20; i++) {
		struct pdev *x = penv_add(&p, 2, NULL, 20, i & 1 ? two_workers : NULL);
		struct vhuf *f;

		VT_REQUIRE(x);
		f = fe(x, 2);
		VT_REQUIRE(f);
		VT_EQ(fe_io(f, i & 1, 10), 0);
		if (i % 3 == 0)
			vhuf_close(f); /* freed with or without a front end */
		pdev_free(x);
		if (i % 3)
			vhuf_close(f);
		p.n--;
	}
	pthread_join(th, NULL);
	VT_EQ(j.ret, 0);
	penv_fini(&p);
}

/* The device's exit event retires its worker only. */
static int exit_fd = -1;

static void with_exit_event(struct echo *e)
{
	e->exit_fds[0] = exit_fd;
}

VT_CASE(exit_event_retires_one_worker)
{
	struct penv p;
	struct pdev *a, *b;
	struct job j;
	uint64_t one = 1;

	exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	VT_REQUIRE(exit_fd >= 0);
	VT_REQUIRE(penv_init(&p, 1, 0) == 0);
	a = penv_add(&p, 1, NULL, 0, with_exit_event);
	b = penv_add(&p, 1, NULL, 0, NULL);
	VT_REQUIRE(a && b);
	VT_EQ(write(exit_fd, &one, sizeof(one)), 8);
	j = (struct job){b, 1, 50, 2, -1};
	io_job(&j);
	VT_EQ(j.ret, 0);
	penv_fini(&p);
	close(exit_fd);
}

/* ---- idle, free, leaks ----------------------------------------------------- */

/* CPU ticks (user + system) of this process's threads named `name`. */
static long thread_ticks(const char *name, unsigned *count)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	long ticks = 0;

	*count = 0;
	while (dir && (de = readdir(dir))) {
		char path[300], buf[1024], comm[32] = "";
		unsigned long ut, st;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
		if (strncmp(comm, name, strlen(name)))
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			char *p = strrchr(buf, ')');

			if (p &&
			    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			           &ut, &st) == 2) {
				ticks += (long)(ut + st);
				(*count)++;
			}
		}
		fclose(f);
	}
	if (dir)
		closedir(dir);
	return ticks;
}

/* After I/O with polling on, the pool threads sleep: no CPU while idle. */
VT_CASE(idle_pool_sleeps)
{
	struct job j[4];
	struct penv p;
	unsigned nthreads;
	long t0, t1;

	VT_REQUIRE(penv_init(&p, 2, 100) == 0);
	for (unsigned i = 0; i < 4; i++) {
		j[i] = (struct job){penv_add(&p, 1, NULL, 100, NULL), 1, 100, 5, -1};
		VT_REQUIRE(j[i].x);
	}
	run_jobs(j, 4);
	for (unsigned i = 0; i < 4; i++)
		VT_EQ(j[i].ret, 0);
	usleep(100 * 1000);
	t0 = thread_ticks("tpool-pool", &nthreads);
	VT_EQ(nthreads, 2);
	usleep(1000 * 1000);
	t1 = thread_ticks("tpool-pool", &nthreads);
	/* 1 s idle: a spinning thread would show ~100 ticks. */
	VT_CHECK(t1 - t0 <= 2);
	penv_fini(&p);
}

/* A kick fd that hangs up (a pipe whose writer is gone) instead of an
 * eventfd: the pool thread drops it rather than spin on it, and serves on:
 * the device itself (through kicks it gets later), and its neighbour. */
VT_CASE(broken_kick_fd_is_dropped)
{
	struct penv p;
	struct pdev *a, *b;
	struct vhuf *fa;
	unsigned n;
	long t0, t1;
	int pfd[2];
	uint64_t q0 = 0;

	fa = pair_on_one_thread(&p, NULL, 10, &a, &b);
	VT_REQUIRE(fa);
	VT_REQUIRE(pipe(pfd) == 0);
	close(pfd[1]);
	VT_EQ(vhuf_request(fa, VHU_REQ_SET_VRING_KICK, &q0, sizeof(q0), &pfd[0], 1, false, NULL),
	      0);
	close(pfd[0]);
	/* A round trip: the handler has taken it. */
	VT_EQ(vhuf_get_u64(fa, VHU_REQ_GET_FEATURES, &q0), 0);
	usleep(100 * 1000);
	t0 = thread_ticks("tpool-pool", &n);
	serves_a_job(b);
	usleep(500 * 1000);
	t1 = thread_ticks("tpool-pool", &n);
	VT_CHECK(t1 - t0 <= 10); /* ~50 if it spun */
	vhuf_close(fa);
	serves_a_job(a); /* the next front end */
	penv_fini(&p);
}

VT_CASE(pool_free_refuses_while_in_use)
{
	struct penv p;
	struct pdev *x;

	VT_REQUIRE(penv_init(&p, 1, 0) == 0);
	x = penv_add(&p, 1, NULL, 0, NULL);
	VT_REQUIRE(x);
	VT_EQ(vhu_pool_free(p.pool), -EBUSY);
	penv_fini(&p);
}

VT_CASE(nothing_leaks)
{
	int fds0 = vt_count_fds(), maps0 = vt_count_maps_named(0, "memfd:");
	struct job j[3];
	struct penv p;
	unsigned n;

	VT_REQUIRE(penv_init(&p, 2, 10) == 0);
	for (unsigned i = 0; i < 3; i++) {
		j[i] = (struct job){penv_add(&p, 2, NULL, 10, two_workers), 2, 20, 2, -1};
		VT_REQUIRE(j[i].x);
	}
	run_jobs(j, 3);
	penv_fini(&p);
	VT_EQ(vt_count_fds(), fds0);
	VT_EQ(vt_count_maps_named(0, "memfd:"), maps0);
	thread_ticks("tpool-pool", &n);
	VT_EQ(n, 0);
}
