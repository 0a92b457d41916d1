/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Adaptive polling policy: whether a thread that serves rings (a daemon's
 * worker, a pool thread serving the rings of several devices) polls them
 * or sleeps until a driver kicks.  One struct vhu_poll per such thread,
 * covering all of its rings; only that thread touches it.  The policy
 * reads no clock and touches no ring: the thread feeds it times and counts
 * (vhu_poll_now_ns(), vhu_poll_cpu_ns(), the chains its rings handed out),
 * so its decisions can be tested with made-up figures (tests/unit).
 *
 * Two modes:
 *   VHU_POLL_NOTIFY  after work, enable notifications and sleep in
 *                    epoll_wait until a kick (or another event) comes;
 *   VHU_POLL_SPIN    after work, keep notifications off and look at the
 *                    rings until nothing came for window_us, then sleep
 *                    as in NOTIFY.
 *
 * Polling must pay for itself.  It saves the sleeps and wake-ups a
 * notification-driven thread goes through (on a VM 10-20 us of CPU each,
 * and the driver's wake-up latency, which keeps a closed-loop guest
 * waiting); it costs the spinning, and while it goes on the driver's
 * stores to the avail ring meet a reader on another CPU.  A ring that is
 * still busy when a pass ends would not have slept anyway, so polling
 * saves nothing there: a deep queue that is kept full rarely sleeps in
 * NOTIFY mode, and polling it only trades large batches for small ones.
 * Which of the two effects is larger depends on the guest, so the policy
 * measures it rather than guess: time is cut into epochs (about 2 ms);
 * each runs one mode and costs the thread's CPU time divided by the chains
 * popped in it (sleeping costs nothing, spinning everything, wake-ups what
 * the kernel charges the thread).  The cheaper mode per chain is kept; a
 * polling thread therefore never does less work per CPU-second than it
 * would with notifications, and if it polls it also completes more
 * requests per second (it spends at least as much CPU, and less of it per
 * request).  The other mode is tried for one epoch after 4 epochs,
 * twice as long after every trial it loses (up to 128 epochs, ~1 % of
 * the time), and at once when three epochs in a row moved far from the first
 * one after the last trial (rate of chains 4x, or cost per chain 3x: a new
 * workload).  Ties go to NOTIFY (polling must win by
 * 10 % to be chosen; notifications stay unless they lose by 5 %).  The
 * first part of an epoch after a change of mode is not measured: the
 * driver needs a few round trips to settle into its new rhythm.
 *
 * Use, in the thread's loop (worker.c does exactly this):
 *
 *	n = epoll_wait(...);                 // -1 timeout unless work is pending
 *	handle the events;
 *	now = vhu_poll_now_ns();
 *	if (vhu_poll_due(&p, now))
 *		vhu_poll_account(&p, now, vhu_poll_cpu_ns(), chains);
 *	while (vhu_poll_spinning(&p)) {
 *		notifications off; poll passes until idle for p.window_us,
 *		stopping early when vhu_poll_due(&p, now);
 *		notifications on (and handle what slipped in);
 *		if it stopped for being idle: break (sleep);
 *		at an epoch boundary: vhu_poll_account(...) and go on;
 *	}
 *
 * `chains` is the running total of chains popped from the thread's rings
 * (the sum of their vhu_vring_stats.requests): a counter, not a delta.
 */
#ifndef VHU_POLL_POLICY_H
#define VHU_POLL_POLICY_H

#include <stdbool.h>
#include <stdint.h>

enum vhu_poll_mode { VHU_POLL_NOTIFY = 0, VHU_POLL_SPIN = 1 };

/* Measured part of an epoch, and the unmeasured part after a change of
 * mode. */
#define VHU_POLL_EPOCH_NS  2000000ull
#define VHU_POLL_SETTLE_NS 500000ull
/* Epochs of the chosen mode between two trials of the other. */
#define VHU_POLL_TRIAL_MIN 4u
#define VHU_POLL_TRIAL_MAX 128u

struct vhu_poll {
	unsigned window_us;               /* SPIN: idle time before sleeping; 0: never poll */
	enum vhu_poll_mode mode;          /* of the running epoch */
	enum vhu_poll_mode best;          /* chosen by the last comparison */
	bool measuring;                   /* past the settle part of the epoch */
	uint64_t next_ns;                 /* next boundary (end of settle part, or of epoch) */
	uint64_t t0_ns, cpu0_ns, chains0; /* at the start of the measured part */
	uint64_t cost[2];                 /* last CPU ns per chain measured in each mode, 0: none */
	/* Reference for spotting a new workload: chains per ms and cost of
	 * the first epoch of `best` after the last trial (rate 0: none), and
	 * how many epochs in a row were far from it. */
	uint64_t ref_rate, ref_cost;
	unsigned odd;
	unsigned since_trial; /* epochs of `best` since the last trial */
	unsigned trial_gap;   /* epochs of `best` before the next trial */
	/* What the policy did, for tests and diagnostics. */
	uint64_t epochs[2]; /* measured epochs per mode */
	uint64_t trials;    /* epochs run in the mode not chosen */
	uint64_t switches;  /* changes of the chosen mode */
};

/* Start in NOTIFY with nothing measured; polling is tried after the first
 * epoch that saw work.  window_us 0: always NOTIFY. */
void vhu_poll_init(struct vhu_poll *p, unsigned window_us);

/* Has an epoch boundary passed (then call vhu_poll_account)? */
static inline bool vhu_poll_due(const struct vhu_poll *p, uint64_t now_ns)
{
	return p->window_us && now_ns >= p->next_ns;
}

/* At a boundary: close the settle part or the epoch (cpu_ns: the thread's
 * CPU time, chains: running total popped), decide the next epoch's mode. */
void vhu_poll_account(struct vhu_poll *p, uint64_t now_ns, uint64_t cpu_ns, uint64_t chains);

/* Does the running epoch poll? */
static inline bool vhu_poll_spinning(const struct vhu_poll *p)
{
	return p->mode == VHU_POLL_SPIN;
}

/* CLOCK_MONOTONIC and the calling thread's CPU time, in ns. */
uint64_t vhu_poll_now_ns(void);
uint64_t vhu_poll_cpu_ns(void);

#endif
