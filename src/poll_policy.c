/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Adaptive polling policy (see poll_policy.h): epochs, each costed in CPU time
 * per chain, the cheaper mode kept, the other tried now and then.
 */
#include <time.h>

#include "poll_policy.h"

/* A new workload, judged anew: three epochs in a row whose rate (chains
 * per ms) moved 4x, or whose cost per chain moved 3x, from the reference
 * epoch (the first of the chosen mode after the last trial).  Odd single
 * epochs are noise: another process took the CPU, a burst came. */
#define RATE_JUMP  4u
#define COST_JUMP  3u
#define ODD_EPOCHS 3u

void vhu_poll_init(struct vhu_poll *p, unsigned window_us)
{
	*p = (struct vhu_poll){.window_us = window_us, .trial_gap = VHU_POLL_TRIAL_MIN};
	p->mode = p->best = VHU_POLL_NOTIFY;
	/* The first boundary only starts measuring. */
	p->next_ns = 0;
}

uint64_t vhu_poll_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t vhu_poll_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void begin_measuring(struct vhu_poll *p, uint64_t now, uint64_t cpu, uint64_t chains)
{
	p->measuring = true;
	p->t0_ns = now;
	p->cpu0_ns = cpu;
	p->chains0 = chains;
	p->next_ns = now + VHU_POLL_EPOCH_NS;
}

static enum vhu_poll_mode other(enum vhu_poll_mode m)
{
	return m == VHU_POLL_SPIN ? VHU_POLL_NOTIFY : VHU_POLL_SPIN;
}

/* Does mode `m`, just measured, beat the chosen one?  Polling must be
 * 10 % cheaper to be chosen; notifications win unless 5 % dearer. */
static bool beats(const struct vhu_poll *p, enum vhu_poll_mode m)
{
	uint64_t c = p->cost[m], b = p->cost[p->best];

	if (!b)
		return true;
	if (m == VHU_POLL_SPIN)
		return c * 10 < b * 9;
	return c * 100 <= b * 105;
}

static bool moved(uint64_t a, uint64_t b, unsigned factor)
{
	a = a ? a : 1;
	b = b ? b : 1;
	return a > b * factor || b > a * factor;
}

/* A measured epoch of the chosen mode ended: is a trial due? */
static bool trial_due(struct vhu_poll *p, uint64_t rate, uint64_t cost)
{
	if (!p->ref_rate) {
		p->ref_rate = rate ? rate : 1;
		p->ref_cost = cost;
		p->odd = 0;
	} else if (moved(rate, p->ref_rate, RATE_JUMP) || moved(cost, p->ref_cost, COST_JUMP)) {
		if (++p->odd >= ODD_EPOCHS) {
			p->trial_gap = VHU_POLL_TRIAL_MIN;
			return true;
		}
	} else {
		p->odd = 0;
	}
	return !p->cost[other(p->best)] || ++p->since_trial >= p->trial_gap;
}

/* A trial epoch ended: keep its mode or go back. */
static void judge_trial(struct vhu_poll *p, enum vhu_poll_mode m)
{
	p->trials++;
	p->since_trial = 0;
	if (beats(p, m)) {
		p->best = m;
		p->switches++;
		p->trial_gap = VHU_POLL_TRIAL_MIN;
	} else if (p->trial_gap < VHU_POLL_TRIAL_MAX) {
		p->trial_gap *= 2;
	}
	p->ref_rate = 0; /* the next epoch of the chosen mode is the reference */
}

void vhu_poll_account(struct vhu_poll *p, uint64_t now, uint64_t cpu, uint64_t chains)
{
	enum vhu_poll_mode m = p->mode, next;
	uint64_t n, dt, cost, rate;

	if (!p->measuring) {
		begin_measuring(p, now, cpu, chains);
		return;
	}
	n = chains - p->chains0;
	dt = now > p->t0_ns ? now - p->t0_ns : 1;
	if (n == 0 && m == VHU_POLL_NOTIFY) {
		/* Asleep all along: nothing learnt, nothing to try. */
		begin_measuring(p, now, cpu, chains);
		return;
	}
	/* A polling epoch that found nothing cost its CPU for nothing. */
	cost = (cpu - p->cpu0_ns) / (n ? n : 1);
	p->cost[m] = cost ? cost : 1;
	p->epochs[m]++;
	rate = n * 1000000u / dt;
	if (m != p->best) {
		judge_trial(p, m);
		next = p->best;
	} else {
		next = trial_due(p, rate, p->cost[m]) ? other(m) : m;
	}
	p->mode = next;
	if (p->mode == m) {
		begin_measuring(p, now, cpu, chains);
	} else {
		p->measuring = false;
		p->next_ns = now + VHU_POLL_SETTLE_NS;
	}
}
