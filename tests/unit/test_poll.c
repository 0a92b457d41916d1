/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The adaptive polling policy (src/poll_policy.c) against simulated workloads:
 * each mode has a rate of chains and a CPU cost, as measured on the
 * project's VM (docs/performance.md), and the policy must settle on the
 * cheaper one per chain, spend little time trying the other, and react to
 * a change of workload.
 */
#include "vt.h"

#include "poll_policy.h"

VT_MAIN

/* A workload as each mode sees it: chains per ms and, in NOTIFY, the CPU
 * ns one chain costs (SPIN burns all of its time). */
struct load {
	double rate[2];
	double notify_cost;
};

struct sim {
	struct vhu_poll p;
	uint64_t now, cpu;
	double chains;
	uint64_t spin_ns, total_ns;
};

#define STEP_NS 50000ull

static void sim_init(struct sim *s, unsigned window_us)
{
	memset(s, 0, sizeof(*s));
	vhu_poll_init(&s->p, window_us);
	s->now = 1000000000ull;
}

/* Run `ms` of simulated time; the thread reports at every step it is
 * awake (SPIN: always; NOTIFY: when work came). */
static void sim_run(struct sim *s, const struct load *l, unsigned ms)
{
	for (uint64_t t = 0; t < ms * 1000000ull; t += STEP_NS) {
		enum vhu_poll_mode m = s->p.mode;
		double got = l->rate[m] * STEP_NS / 1e6;

		s->chains += got;
		s->cpu += m == VHU_POLL_SPIN ? STEP_NS : (uint64_t)(got * l->notify_cost);
		s->now += STEP_NS;
		s->total_ns += STEP_NS;
		if (m == VHU_POLL_SPIN)
			s->spin_ns += STEP_NS;
		if ((m == VHU_POLL_SPIN || got > 0) && vhu_poll_due(&s->p, s->now))
			vhu_poll_account(&s->p, s->now, s->cpu, (uint64_t)s->chains);
	}
}

static double spin_share(const struct sim *s)
{
	return (double)s->spin_ns / (double)s->total_ns;
}

/* vhu-blk --null, queue depth 128, one queue: notifications 2.73 M
 * chains/s at 0.31 us each, polling 1.46 M/s. */
static const struct load deep = {.rate = {2730, 1460}, .notify_cost = 310};
/* Queue depth 1: 22 k/s at 17 us each (a sleep and wake-up per chain),
 * polling 148 k/s. */
static const struct load qd1 = {.rate = {22, 148}, .notify_cost = 17000};
/* Paced to 1 k/s: the same rate either way; polling spins its window
 * (32 us) after each chain on top of the wake-up. */
static const struct load paced = {.rate = {1, 1}, .notify_cost = 23000};

VT_CASE(deep_queue_does_not_poll)
{
	struct sim s;

	sim_init(&s, 32);
	sim_run(&s, &deep, 10000);
	printf("# deep queue: %.2f %% of the time polling, %llu trials\n", 100 * spin_share(&s),
	       (unsigned long long)s.p.trials);
	VT_EQ(s.p.best, VHU_POLL_NOTIFY);
	VT_CHECK(spin_share(&s) < 0.02);
	VT_CHECK(s.p.trials < 100);
}

VT_CASE(queue_depth_one_polls)
{
	struct sim s;

	sim_init(&s, 32);
	sim_run(&s, &qd1, 10000);
	printf("# qd1: %.2f %% of the time polling, %llu trials\n", 100 * spin_share(&s),
	       (unsigned long long)s.p.trials);
	VT_EQ(s.p.best, VHU_POLL_SPIN);
	VT_CHECK(spin_share(&s) > 0.97);
}

/* At 1 k chains/s a polling epoch spends its whole 2 ms for 2 chains: it
 * loses at once and is retried ever more rarely. */
VT_CASE(low_load_does_not_poll)
{
	struct sim s;

	sim_init(&s, 32);
	sim_run(&s, &paced, 10000);
	printf("# paced 1k/s: %.2f %% of the time polling, %llu trials\n", 100 * spin_share(&s),
	       (unsigned long long)s.p.trials);
	VT_EQ(s.p.best, VHU_POLL_NOTIFY);
	VT_CHECK(spin_share(&s) < 0.03);
}

/* Equal cost per chain: notifications (they cost nothing when the load
 * goes away). */
VT_CASE(tie_goes_to_notify)
{
	struct load l = {.rate = {1000, 1000}, .notify_cost = 1000};
	struct sim s;

	sim_init(&s, 32);
	sim_run(&s, &l, 5000);
	VT_EQ(s.p.best, VHU_POLL_NOTIFY);
	VT_EQ(s.p.switches, 0);
}

/* A new workload is noticed by its rate and re-judged within a few
 * epochs, both ways. */
VT_CASE(workload_change_is_rejudged)
{
	struct sim s;
	uint64_t t0;

	sim_init(&s, 32);
	sim_run(&s, &deep, 3000);
	VT_EQ(s.p.best, VHU_POLL_NOTIFY);
	t0 = s.now;
	while (s.p.best != VHU_POLL_SPIN && s.now - t0 < 1000000000ull)
		sim_run(&s, &qd1, 1);
	printf("# deep -> qd1: polling after %.1f ms\n", (s.now - t0) / 1e6);
	VT_CHECK(s.now - t0 <= 20000000ull);
	sim_run(&s, &qd1, 3000);
	t0 = s.now;
	while (s.p.best != VHU_POLL_NOTIFY && s.now - t0 < 1000000000ull)
		sim_run(&s, &deep, 1);
	printf("# qd1 -> deep: notifications after %.1f ms\n", (s.now - t0) / 1e6);
	VT_CHECK(s.now - t0 <= 20000000ull);
}

/* No work at all: never a polling trial. */
VT_CASE(idle_never_polls)
{
	struct load none = {.rate = {0, 0}, .notify_cost = 0};
	struct sim s;

	sim_init(&s, 32);
	sim_run(&s, &none, 1000);
	/* Wake-ups without work (a listener, the handler's pokes). */
	for (int i = 0; i < 1000; i++) {
		s.now += 3000000ull;
		s.cpu += 5000;
		if (vhu_poll_due(&s.p, s.now))
			vhu_poll_account(&s.p, s.now, s.cpu, 0);
	}
	VT_EQ(s.p.mode, VHU_POLL_NOTIFY);
	VT_EQ(s.p.epochs[VHU_POLL_SPIN], 0);
	VT_EQ(s.p.trials, 0);
}

/* A polling trial that finds nothing costs its CPU and loses. */
VT_CASE(empty_polling_epoch_loses)
{
	struct vhu_poll p;
	uint64_t now = 1000000000ull, cpu = 0, chains = 0;

	vhu_poll_init(&p, 32);
	/* Start measuring, then an epoch of notifications with work. */
	vhu_poll_account(&p, now, cpu, chains);
	now += VHU_POLL_EPOCH_NS;
	cpu += 100000;
	chains += 10;
	vhu_poll_account(&p, now, cpu, chains);
	VT_EQ(p.mode, VHU_POLL_SPIN); /* never tried: try it */
	now += VHU_POLL_SETTLE_NS;
	cpu += VHU_POLL_SETTLE_NS;
	vhu_poll_account(&p, now, cpu, chains);
	now += VHU_POLL_EPOCH_NS;
	cpu += VHU_POLL_EPOCH_NS;
	vhu_poll_account(&p, now, cpu, chains);
	VT_EQ(p.best, VHU_POLL_NOTIFY);
	VT_EQ(p.mode, VHU_POLL_NOTIFY);
	VT_EQ(p.cost[VHU_POLL_SPIN], VHU_POLL_EPOCH_NS);
	VT_EQ(p.trial_gap, 2 * VHU_POLL_TRIAL_MIN);
}

/* Another process takes the CPU now and then (a whole epoch with a
 * fifth of the work) and costs jitter: single odd epochs are noise, not a
 * new workload, and must not multiply the trials. */
VT_CASE(noise_is_not_a_new_workload)
{
	struct load l = deep;
	struct sim s;
	uint64_t x = 88172645463325252ull;

	sim_init(&s, 32);
	for (int ms = 0; ms < 10000; ms += 2) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		l.notify_cost = deep.notify_cost * (0.5 + (double)(x % 1000) / 1000);
		l.rate[0] = deep.rate[0] / ((x >> 20) % 7 == 0 ? 5 : 1);
		sim_run(&s, &l, 2);
	}
	printf("# noisy deep queue: %.2f %% of the time polling, %llu trials\n",
	       100 * spin_share(&s), (unsigned long long)s.p.trials);
	VT_EQ(s.p.best, VHU_POLL_NOTIFY);
	VT_CHECK(s.p.trials < 100);
	VT_CHECK(spin_share(&s) < 0.05);
}

VT_CASE(window_zero_never_polls)
{
	struct sim s;

	sim_init(&s, 0);
	sim_run(&s, &qd1, 1000);
	VT_CHECK(!vhu_poll_due(&s.p, UINT64_MAX));
	VT_EQ(s.p.mode, VHU_POLL_NOTIFY);
	VT_EQ(s.spin_ns, 0);
}
