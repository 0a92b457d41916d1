/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One queue's driver loop: keep `depth` requests in flight, complete them
 * as the used ring fills, and resubmit at once, like blk-mq over
 * virtio-blk with a fixed queue depth.  In notification mode it kicks after
 * each batch of submissions (vhuf_kick honours EVENT_IDX / NO_NOTIFY) and
 * sleeps on the call eventfd when nothing is used; in polling mode it spins.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhu/frontend.h"

#define WAIT_MS        100  /* safety net: a lost interrupt costs 100 ms, counted */
#define DRAIN_MS_TOTAL 2000 /* at the end, wait this long for stragglers */

static inline uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static bool pick_write(struct bench_worker *w)
{
	switch (w->b->o.rw) {
	case RW_READ:
		return false;
	case RW_WRITE:
		return true;
	default:
		return xorshift(&w->rng) % 100 >= w->b->o.read_pct;
	}
}

static int submit(struct bench_worker *w, struct bench_slot *s, uint64_t now)
{
	struct bench *b = w->b;
	uint64_t blk = xorshift(&w->rng) % b->nblocks;
	s->write = pick_write(w);
	s->hdr->type = s->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	s->hdr->ioprio = 0;
	s->hdr->sector = blk * (b->o.block_size / 512);
	*s->status = 0xff; /* the device must overwrite it */
	struct vhuf_buf bufs[3] = {
	    {.gpa = s->hdr_gpa, .len = sizeof(*s->hdr), .write = false},
	    {.gpa = s->data_gpa, .len = b->o.block_size, .write = !s->write},
	    {.gpa = s->status_gpa, .len = 1, .write = true},
	};
	s->t_submit = now;
	int r = vhuf_submit(b->f, w->q, bufs, 3, b->o.indirect, s);
	if (r < 0)
		return r;
	w->inflight++;
	return 0;
}

static void complete(struct bench_worker *w, struct bench_slot *s, uint64_t now, bool measure)
{
	w->inflight--;
	if (!measure)
		return;
	hist_add(&w->hist, now - s->t_submit);
	w->reqs++;
	if (s->write)
		w->writes++;
	else
		w->reads++;
	if (*s->status != VIRTIO_BLK_S_OK)
		w->errors++;
}

static int kick(struct bench_worker *w, bool measure)
{
	int r = vhuf_kick(w->b->f, w->q);
	if (r < 0)
		return r;
	if (r > 0 && measure)
		w->kicks++;
	return 0;
}

/* Take everything on the used ring; returns how many, or -EIO if the
 * device returned a head it was not given. */
static int drain(struct bench_worker *w, bool measure)
{
	void *cookie;
	uint32_t len;
	unsigned n = 0;
	uint64_t now = 0;
	int r;
	while (n < w->b->o.depth && (r = vhuf_get_used(w->b->f, w->q, &cookie, &len)) == 1) {
		if (!now)
			now = bench_now_ns();
		complete(w, cookie, now, measure);
		w->done[n++] = cookie;
		w->used_seen++;
	}
	return r < 0 ? r : (int)n;
}

/* --rate: sleep until this queue's next submission is due.  Latency is
 * measured from the submission, so pacing does not show up in it. */
static uint64_t pace(struct bench_worker *w, uint64_t now)
{
	const struct bench_opts *o = &w->b->o;
	if (!o->rate)
		return now;
	uint64_t gap = (uint64_t)o->queues * 1000000000ull / o->rate;
	if (w->next_ns > now) {
		struct timespec ts = {.tv_sec = (time_t)(w->next_ns / 1000000000ull),
		                      .tv_nsec = (long)(w->next_ns % 1000000000ull)};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		now = bench_now_ns();
	}
	/* A queue that fell behind does not catch up in a burst. */
	w->next_ns = (w->next_ns > now - gap ? w->next_ns : now) + gap;
	return now;
}

static int resubmit(struct bench_worker *w, unsigned n, bool measure)
{
	uint64_t now = bench_now_ns();
	for (unsigned i = 0; i < n; i++) {
		if (w->b->o.rate && i) {
			int r = kick(w, measure); /* a paced request goes out alone */
			if (r < 0)
				return r;
		}
		now = pace(w, now);
		int r = submit(w, w->done[i], now);
		if (r < 0)
			return r;
	}
	return kick(w, measure);
}

/* Completions published but not taken yet.  Seen after a wait timed out,
 * the device did not send a call it owed (or sent it in the instant
 * between the time-out and this check). */
static bool used_pending(struct bench_worker *w)
{
	if (w->b->o.packed)
		return false; /* no used index to compare with */
	const uint16_t *used = vhuf_ring_used(w->b->f, w->q);
	return used && __atomic_load_n(&used[1], __ATOMIC_ACQUIRE) != (uint16_t)w->used_seen;
}

/* Poll mode leaves the call eventfd unread, and notification mode reads
 * it only when it sleeps: either way its counter is the number of
 * interrupts the device sent since the last read. */
static uint64_t read_calls(struct bench_worker *w)
{
	uint64_t v = 0;
	if (read(vhuf_call_fd(w->b->f, w->q), &v, sizeof(v)) != sizeof(v))
		v = 0;
	return v;
}

/* Block for the next interrupt (notification mode).  Not vhuf_wait_call():
 * the eventfd's value tells how many calls were coalesced into this one
 * wake-up, and calls per request is what EVENT_IDX is about. */
static int wait_call(struct bench_worker *w, bool measure)
{
	struct pollfd p = {.fd = vhuf_call_fd(w->b->f, w->q), .events = POLLIN};
	int r = poll(&p, 1, WAIT_MS);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	uint64_t calls = r > 0 ? read_calls(w) : 0;
	if (measure) {
		w->calls += calls;
		if (r == 0)
			w->timeouts++;
		if (r == 0 && used_pending(w))
			w->stalls++;
	}
	return 0;
}

/*
 * Polling mode: act like a guest whose queue has no interrupt callback
 * (Linux virtio-blk poll queues): without EVENT_IDX set
 * VRING_AVAIL_F_NO_INTERRUPT; with it, keep used_event behind what the
 * device has already passed, so vring_need_event() stays false.
 * vhuf_get_used() re-arms used_event after each entry it takes, so this
 * runs after every drain pass.  Layout per virtio 1.x 2.7.6: used_event
 * follows avail->ring[size].  Packed rings are left alone (the front-end
 * library owns their event suppression area): calls are then counted.
 */
static void suppress_calls(struct bench_worker *w, uint16_t last_used)
{
	struct vhuf *f = w->b->f;
	uint16_t *avail = vhuf_ring_avail(f, w->q);
	if (!avail || w->b->o.packed)
		return;
	if (w->b->o.event_idx)
		__atomic_store_n(&avail[2 + w->b->ring_size], (uint16_t)(last_used - 1),
		                 __ATOMIC_RELEASE);
	else
		__atomic_store_n(&avail[0], (uint16_t)1, __ATOMIC_RELEASE);
}

static int run_loop(struct bench_worker *w)
{
	struct bench *b = w->b;
	uint64_t now = bench_now_ns();

	/* --idle: rings set up, nothing submitted; look at the clock rarely. */
	while (b->o.idle && atomic_load(&b->phase) != PH_STOP)
		usleep(100 * 1000);
	if (b->o.idle)
		return 0;
	if (b->o.poll)
		suppress_calls(w, 0);
	for (unsigned i = 0; i < b->o.depth; i++) {
		int r = submit(w, &w->slots[i], now);
		if (r < 0)
			return r;
	}
	int r = kick(w, false);
	int last_ph = PH_WARMUP;
	/* --requests, shared out between the queues (the first ones take the
	 * remainder). */
	uint64_t quota = b->o.requests / b->o.queues + (w->q < b->o.requests % b->o.queues);

	if (b->o.requests && !quota)
		quota = 1;
	while (r == 0) {
		int ph = atomic_load_explicit(&b->phase, memory_order_relaxed);
		if (ph != last_ph) { /* calls pending belong to the phase that ends */
			uint64_t calls = read_calls(w);
			if (last_ph == PH_MEASURE)
				w->calls += calls;
		}
		last_ph = ph;
		if (ph == PH_STOP)
			break;
		bool measure = ph == PH_MEASURE;
		int n = drain(w, measure);
		if (n < 0) {
			r = n;
			break;
		}
		if (measure && quota && w->reqs >= quota) {
			atomic_fetch_add(&b->quota_done, 1);
			break; /* --requests: this queue's share is done */
		}
		if (n && b->o.poll)
			suppress_calls(w, (uint16_t)w->used_seen);
		if (n)
			r = resubmit(w, (unsigned)n, measure);
		else if (b->o.poll)
			cpu_relax();
		else
			r = wait_call(w, measure);
	}
	return r;
}

/* Collect what is still in flight so the back end is idle when we leave. */
static void drain_tail(struct bench_worker *w)
{
	uint64_t deadline = bench_now_ns() + DRAIN_MS_TOTAL * 1000000ull;
	while (w->inflight && bench_now_ns() < deadline) {
		int n = drain(w, false);
		if (n < 0)
			break;
		if (n == 0)
			vhuf_wait_call(w->b->f, w->q, 10);
	}
}

void *bench_worker_run(void *arg)
{
	struct bench_worker *w = arg;
	int r = run_loop(w);
	if (r < 0) {
		w->err = r;
		fprintf(stderr, "vhu-bench: queue %u: %s\n", w->q, strerror(-r));
		/* Let the others finish their run rather than hang on us. */
		atomic_store(&w->b->phase, PH_STOP);
	}
	drain_tail(w);
	return NULL;
}
