/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Copying between a popped chain and the device's own buffers
 * (vhu_chain_read / vhu_chain_write, see vring.h).
 */
#include <string.h>

#include "internal.h"

/* Copy len bytes between buf and the bytes of iov[0, n) from `off` on,
 * in the direction `to_iov`.  Returns bytes copied. */
static size_t iov_copy(const struct iovec *iov, uint32_t n, size_t off, void *buf, size_t len,
                       bool to_iov)
{
	size_t done = 0;
	uint32_t i = 0;

	while (i < n && off >= iov[i].iov_len)
		off -= iov[i++].iov_len;
	for (; i < n && done < len; i++, off = 0) {
		size_t chunk = iov[i].iov_len - off;
		uint8_t *g = (uint8_t *)iov[i].iov_base + off;

		if (chunk > len - done)
			chunk = len - done;
		/* memmove: buf may itself be guest memory the guest chose to
		 * overlap with this buffer (same cost as memcpy otherwise). */
		if (to_iov)
			memmove(g, (const uint8_t *)buf + done, chunk);
		else
			memmove((uint8_t *)buf + done, g, chunk);
		done += chunk;
	}
	return done;
}

/* The counts come from pop, but a caller's chain (or one that pop refused
 * with -E2BIG) must not make us walk past iov[iov_max). */
static bool chain_sane(const struct vhu_chain *c)
{
	return c && c->iov && c->out_num <= c->iov_max && c->in_num <= c->iov_max - c->out_num;
}

size_t vhu_chain_read(const struct vhu_chain *c, size_t off, void *buf, size_t len)
{
	if (!chain_sane(c) || !len || !buf)
		return 0;
	/* Fast path: a header inside the first buffer. */
	if (c->out_num && off <= c->iov[0].iov_len && len <= c->iov[0].iov_len - off) {
		memmove(buf, (const uint8_t *)c->iov[0].iov_base + off, len);
		return len;
	}
	return iov_copy(c->iov, c->out_num, off, buf, len, false);
}

size_t vhu_chain_write(const struct vhu_chain *c, size_t off, const void *buf, size_t len)
{
	if (!chain_sane(c) || !len || !buf)
		return 0;
	return iov_copy(c->iov + c->out_num, c->in_num, off, (void *)buf, len, true);
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* PREFETCHW is announced by CPUID 0x80000001 ECX bit 8 (Intel since
 * Broadwell, AMD since family 10h); where it is not, the compiler's
 * prefetch (read intent) is the fallback.  Asked once. */
static bool have_prefetchw(void)
{
	static int known; /* 0 unknown, 1 yes, -1 no: racing first calls agree */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);

	if (k == 0) {
		unsigned a, b, c = 0, d;
		k = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_PRFCHW) ? 1 : -1;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k > 0;
}

static inline void prefetch_line_w(uintptr_t a, bool w)
{
	if (w)
		__asm__ volatile("prefetchw (%0)" : : "r"(a));
	else
		__builtin_prefetch((const void *)a, 1);
}
#else
static bool have_prefetchw(void)
{
	return true;
}

static inline void prefetch_line_w(uintptr_t a, bool w)
{
	(void)w;
	__builtin_prefetch((const void *)a, 1); /* arm64: PRFM PSTL1KEEP */
}
#endif

void vhu_chain_prefetch_write(const struct vhu_chain *c, size_t off, size_t len)
{
	if (!chain_sane(c))
		return;
	const struct iovec *iov = c->iov + c->out_num, *end = iov + c->in_num;
	bool w = have_prefetchw();

	for (; iov < end && len; iov++) {
		if (off >= iov->iov_len) {
			off -= iov->iov_len;
			continue;
		}
		uintptr_t p = (uintptr_t)iov->iov_base + off;
		size_t n = iov->iov_len - off < len ? iov->iov_len - off : len;

		len -= n;
		off = 0;
		/* Whole lines: the first may start mid-line. */
		for (uintptr_t a = p & ~(uintptr_t)63; a < p + n; a += 64)
			prefetch_line_w(a, w);
	}
}
