/* SPDX-License-Identifier: Apache-2.0 */
#include "tbucket.h"

#define NSEC 1000000000ull

void tbucket_init(struct tbucket *tb, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	tb->rate = rate ? rate : 1;
	tb->burst = burst ? burst : 1;
	tb->tokens = tb->burst;
	tb->rem = 0;
	tb->last_ns = now_ns;
}

void tbucket_refill(struct tbucket *tb, uint64_t now_ns)
{
	/* A clock that went backwards earns nothing until it passes last. */
	if (now_ns <= tb->last_ns)
		return;
	uint64_t elapsed = now_ns - tb->last_ns;
	tb->last_ns = now_ns;
	if (tb->tokens >= tb->burst)
		return;
	/* 128-bit: elapsed (hours of ns) times rate cannot overflow. */
	unsigned __int128 x = (unsigned __int128)elapsed * tb->rate + tb->rem;
	unsigned __int128 add = x / NSEC;
	if (add >= tb->burst - tb->tokens) {
		tb->tokens = tb->burst;
		tb->rem = 0;
		return;
	}
	tb->tokens += (uint64_t)add;
	tb->rem = (uint64_t)(x % NSEC);
}

uint64_t tbucket_take(struct tbucket *tb, uint64_t want, uint64_t now_ns)
{
	tbucket_refill(tb, now_ns);
	uint64_t n = want < tb->tokens ? want : tb->tokens;
	tb->tokens -= n;
	return n;
}

uint64_t tbucket_wait_ns(struct tbucket *tb, uint64_t want, uint64_t now_ns)
{
	tbucket_refill(tb, now_ns);
	if (want > tb->burst)
		want = tb->burst;
	if (tb->tokens >= want)
		return 0;
	unsigned __int128 need = (unsigned __int128)(want - tb->tokens) * NSEC - tb->rem;
	return (uint64_t)((need + tb->rate - 1) / tb->rate);
}
