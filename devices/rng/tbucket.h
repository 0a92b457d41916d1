/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token bucket for vhu-rng's --max-bytes-per-sec: pure arithmetic on
 * caller-supplied monotonic timestamps (nanoseconds), so it can be tested
 * without clocks.  One bucket is used by one thread.
 */
#ifndef VHU_RNG_TBUCKET_H
#define VHU_RNG_TBUCKET_H

#include <stdint.h>

struct tbucket {
	uint64_t rate;    /* bytes per second, > 0 */
	uint64_t burst;   /* bucket capacity in bytes, > 0 */
	uint64_t tokens;  /* bytes available now */
	uint64_t last_ns; /* time of the last refill */
	uint64_t rem;     /* fraction of a token earned, in 1e-9 tokens */
};

/* Start full at time now_ns.  rate and burst are clamped to >= 1. */
void tbucket_init(struct tbucket *tb, uint64_t rate, uint64_t burst, uint64_t now_ns);

/* Add the tokens earned since the last refill (capped at burst). */
void tbucket_refill(struct tbucket *tb, uint64_t now_ns);

/* Take up to `want` tokens (after refilling); returns how many were taken. */
uint64_t tbucket_take(struct tbucket *tb, uint64_t want, uint64_t now_ns);

/* Nanoseconds from now until `want` tokens (capped at burst) are
 * available; 0 if they already are. */
uint64_t tbucket_wait_ns(struct tbucket *tb, uint64_t want, uint64_t now_ns);

#endif
