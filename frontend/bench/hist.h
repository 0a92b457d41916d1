/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log-linear latency histogram (HDR-like): values below 2^SUB_BITS are exact,
 * above that each power of two is split into 2^SUB_BITS buckets, so a
 * bucket is at most ~3% wide.  Fixed size, no allocation, mergeable.
 * Not thread-safe: one per worker thread, merged at the end.
 */
#ifndef VHU_BENCH_HIST_H
#define VHU_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum; /* for the mean */
	uint64_t max;
	uint64_t min;
	uint64_t b[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
/* Add every sample of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* Value at quantile q in [0, 1] (midpoint of its bucket, clamped to
 * [min, max]); 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
/* Bucket index of v and the smallest value of bucket i (for tests). */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_low(unsigned i);

#endif
