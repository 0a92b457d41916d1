/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The migration dirty log: one bit per 4 KiB guest page in memory the front
 * end shares (SET_LOG_BASE), set with atomic ORs because the front end
 * clears words concurrently while it collects them.
 *
 * The data path marks through a log cache (struct vhu_log_cache): the pages
 * one push or burst dirties are first gathered per 64-page word in a small
 * array on the stack, then ORed into the log once per word, as DPDK's
 * per-queue log cache does.  A burst of completions that all land in the
 * same few words (the used ring, neighbouring buffers) thus costs a few
 * atomic instructions instead of one per page per chain.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int vhu_dirty_new(struct vhu_dirty **out, int fd, uint64_t size, uint64_t offset)
{
	struct vhu_dirty *log;
	uint64_t len = size + offset;
	struct stat st;
	void *map;

	if (fd < 0 || size == 0 || len < size || len > SIZE_MAX || size > UINT64_MAX / 8)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)
		return -EINVAL; /* would SIGBUS when marking */
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	/* Map from 0 so that an unaligned offset is fine. */
	map = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (map == MAP_FAILED) {
		int err = -errno;
		free(log);
		VHU_LOGE("mmap of dirty log (size %llu) failed: %d", (unsigned long long)len, err);
		return err;
	}
	log->map = map;
	log->map_size = (size_t)len;
	log->bitmap = (uint8_t *)map + offset;
	log->bits = size * 8;
	log->aligned = ((uintptr_t)log->bitmap % 8) == 0;
	*out = log;
	return 0;
}

void vhu_dirty_free(struct vhu_dirty *log)
{
	if (!log)
		return;
	munmap(log->map, log->map_size);
	free(log);
}

/* Clip [*first, *last] (page numbers) to the log; false if nothing is left.
 * A guest address past the log is reported once: the front end sized it
 * for the memory it knows, so this is a front-end (or guest) error. */
static bool clip(const struct vhu_dirty *log, uint64_t *first, uint64_t *last)
{
	static atomic_bool warned;

	if (*last < log->bits)
		return true;
	if (!atomic_exchange(&warned, true))
		VHU_LOGW("dirty log of %llu pages too small for page %llu",
		         (unsigned long long)log->bits, (unsigned long long)*last);
	if (*first >= log->bits)
		return false;
	*last = log->bits - 1;
	return true;
}

/* OR `bits` into 64-page word w of the log (bits past the log clipped). */
static void or_word(const struct vhu_dirty *log, uint64_t w, uint64_t bits)
{
	uint64_t first = w * 64;

	if (first >= log->bits)
		return;
	if (log->bits - first < 64)
		bits &= (1ULL << (log->bits - first)) - 1;
	if (!bits)
		return;
	if (log->aligned && log->bits - first >= 64) {
		__atomic_fetch_or((uint64_t *)(log->bitmap + w * 8), bits, __ATOMIC_RELAXED);
		return;
	}
	for (unsigned b = 0; b < 8 && bits; b++, bits >>= 8)
		if (bits & 0xff)
			__atomic_fetch_or(&log->bitmap[w * 8 + b], (uint8_t)bits, __ATOMIC_RELAXED);
}

/* Mask of pages [lo, hi] (0..63) inside one word. */
static inline uint64_t page_mask(unsigned lo, unsigned hi)
{
	return (hi == 63 ? ~0ULL : (1ULL << (hi + 1)) - 1) & ~((1ULL << lo) - 1);
}

void vhu_dirty_mark(struct vhu_dirty *log, uint64_t gpa, uint64_t len)
{
	struct vhu_log_cache c;

	if (!log || !len)
		return;
	vhu_log_cache_init(&c, log);
	vhu_log_cache_mark(&c, gpa, len);
	vhu_log_cache_flush(&c);
}

void vhu_log_cache_flush(struct vhu_log_cache *c)
{
	const struct vhu_dirty *log = c->log;

	/* Everything the marks cover was written before they are published:
	 * a front end that sees a bit reads the page after our writes. */
	if (c->n)
		atomic_thread_fence(memory_order_release);
	for (unsigned i = 0; i < c->n; i++) {
		uint64_t w = c->e[i].word;

		if (__builtin_expect(log->aligned && w < log->bits / 64, 1))
			__atomic_fetch_or((uint64_t *)(log->bitmap + w * 8), c->e[i].bits,
			                  __ATOMIC_RELAXED);
		else
			or_word(log, w, c->e[i].bits);
	}
	c->marked += c->n;
	c->n = 0;
}

/* Add `bits` to word w in the cache (flushing it when full). */
static void cache_add(struct vhu_log_cache *c, uint64_t w, uint64_t bits)
{
	for (unsigned i = c->n; i-- > 0;) {
		if (c->e[i].word == w) {
			c->e[i].bits |= bits;
			return;
		}
	}
	if (c->n == VHU_LOG_CACHE)
		vhu_log_cache_flush(c);
	c->e[c->n].word = w;
	c->e[c->n++].bits = bits;
}

void vhu_log_cache_mark_slow(struct vhu_log_cache *c, uint64_t gpa, uint64_t len)
{
	uint64_t first = gpa / VHU_LOG_PAGE, last;

	last = (gpa + (len - 1) < gpa ? UINT64_MAX : gpa + (len - 1)) / VHU_LOG_PAGE;
	if (!clip(c->log, &first, &last))
		return;
	while (first <= last) {
		uint64_t w = first / 64;
		unsigned lo = first % 64, hi = (last / 64 == w) ? last % 64 : 63;

		cache_add(c, w, page_mask(lo, hi));
		if (w == UINT64_MAX / 64)
			break;
		first = (w + 1) * 64;
	}
}
