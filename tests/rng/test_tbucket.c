/* SPDX-License-Identifier: Apache-2.0 */
/* vhu-rng's token bucket, on synthetic timestamps. */
#include <stdint.h>

#include "tbucket.h"
#include "vt.h"

VT_MAIN

#define SEC 1000000000ull

VT_CASE(starts_full_and_drains)
{
	struct tbucket tb;
	tbucket_init(&tb, 1000, 500, 0);
	VT_EQ(tbucket_take(&tb, 300, 0), 300);
	VT_EQ(tbucket_take(&tb, 300, 0), 200);
	VT_EQ(tbucket_take(&tb, 1, 0), 0);
}

VT_CASE(refills_at_rate_capped_at_burst)
{
	struct tbucket tb;
	tbucket_init(&tb, 1000, 500, 0);
	VT_EQ(tbucket_take(&tb, 500, 0), 500);
	VT_EQ(tbucket_take(&tb, 1000, SEC / 10), 100);  /* 0.1 s -> 100 bytes */
	VT_EQ(tbucket_take(&tb, 1000, 100 * SEC), 500); /* capped */
}

VT_CASE(fractions_accumulate)
{
	struct tbucket tb;
	uint64_t got = 0;
	tbucket_init(&tb, 3, 3, 0);
	VT_EQ(tbucket_take(&tb, 3, 0), 3);
	/* 3 bytes/s sampled every 1/7 s for 7 s: exactly 21 bytes, none lost
	 * to rounding. */
	for (uint64_t i = 1; i <= 49; i++)
		got += tbucket_take(&tb, 100, i * SEC / 7);
	VT_EQ(got, 21);
}

VT_CASE(wait_time)
{
	struct tbucket tb;
	tbucket_init(&tb, 1000, 1000, 0);
	VT_EQ(tbucket_wait_ns(&tb, 10, 0), 0);
	VT_EQ(tbucket_take(&tb, 1000, 0), 1000);
	VT_EQ(tbucket_wait_ns(&tb, 10, 0), 10 * SEC / 1000);
	VT_EQ(tbucket_wait_ns(&tb, 5000, 0), SEC); /* capped at burst */
	/* After the wait, the tokens are there. */
	VT_EQ(tbucket_take(&tb, 10, 10 * SEC / 1000), 10);
	/* Rounds up: 1 byte at 3 bytes/s is 333333334 ns away. */
	tbucket_init(&tb, 3, 3, 0);
	tbucket_take(&tb, 3, 0);
	VT_EQ(tbucket_wait_ns(&tb, 1, 0), 333333334);
	VT_EQ(tbucket_take(&tb, 1, 333333334), 1);
}

VT_CASE(clock_backwards_and_huge_values)
{
	struct tbucket tb;
	tbucket_init(&tb, UINT64_MAX / 2, UINT64_MAX / 2, 10 * SEC);
	VT_EQ(tbucket_take(&tb, UINT64_MAX, 10 * SEC), UINT64_MAX / 2);
	VT_EQ(tbucket_take(&tb, 1, 5 * SEC), 0); /* went back: nothing earned */
	VT_EQ(tbucket_take(&tb, UINT64_MAX, UINT64_MAX), UINT64_MAX / 2); /* no overflow */
	tbucket_init(&tb, 0, 0, 0);                                       /* clamped to 1 */
	VT_EQ(tb.rate, 1);
	VT_EQ(tbucket_take(&tb, 5, 0), 1);
}
