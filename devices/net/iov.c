/* SPDX-License-Identifier: Apache-2.0 */
/* Copying between iovec arrays (guest buffers are scattered) and the
 * internet checksum over them. */
#include <errno.h>
#include <string.h>

#include "net.h"

/* Find the iovec holding byte `off`; *in gets the offset inside it.
 * Returns n when off is past the end. */
static unsigned iov_seek(const struct iovec *iov, unsigned n, size_t off, size_t *in)
{
	unsigned i = 0;
	while (i < n && off >= iov[i].iov_len) {
		off -= iov[i].iov_len;
		i++;
	}
	*in = off;
	return i;
}

size_t net_iov_copy(const struct iovec *dst, unsigned ndst, size_t dst_off, const struct iovec *src,
                    unsigned nsrc, size_t src_off, size_t len)
{
	size_t di, si, done = 0;

	/* Both sides are guest memory the guest chose: they may overlap, so
	 * memmove (same cost as memcpy when they don't).
	 * Fast path: both ranges inside the first iovec (headers, small
	 * frames in one buffer). */
	if (ndst && nsrc && dst_off <= dst[0].iov_len && len <= dst[0].iov_len - dst_off &&
	    src_off <= src[0].iov_len && len <= src[0].iov_len - src_off) {
		memmove((uint8_t *)dst[0].iov_base + dst_off,
		        (const uint8_t *)src[0].iov_base + src_off, len);
		return len;
	}
	unsigned d = iov_seek(dst, ndst, dst_off, &di);
	unsigned s = iov_seek(src, nsrc, src_off, &si);

	while (done < len && d < ndst && s < nsrc) {
		size_t n = len - done;
		if (n > dst[d].iov_len - di)
			n = dst[d].iov_len - di;
		if (n > src[s].iov_len - si)
			n = src[s].iov_len - si;
		memmove((uint8_t *)dst[d].iov_base + di, (const uint8_t *)src[s].iov_base + si, n);
		done += n;
		di += n;
		si += n;
		if (di == dst[d].iov_len) {
			d++;
			di = 0;
		}
		if (si == src[s].iov_len) {
			s++;
			si = 0;
		}
	}
	return done;
}

size_t net_iov_read(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	struct iovec b = {.iov_base = buf, .iov_len = len};
	return net_iov_copy(&b, 1, 0, iov, n, off, len);
}

size_t net_iov_write(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
{
	struct iovec b = {.iov_base = (void *)buf, .iov_len = len};
	return net_iov_copy(iov, n, off, &b, 1, 0, len);
}

int net_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len, struct iovec *out,
                  unsigned max)
{
	size_t in;
	unsigned i = iov_seek(iov, n, off, &in), k = 0;

	while (len > 0 && i < n) {
		size_t take = iov[i].iov_len - in;
		if (take > len)
			take = len;
		if (take > 0) {
			if (k == max)
				return -ENOBUFS;
			out[k].iov_base = (uint8_t *)iov[i].iov_base + in;
			out[k].iov_len = take;
			k++;
		}
		len -= take;
		in = 0;
		i++;
	}
	return (int)k;
}

/* Sum 16-bit big-endian words; `odd` carries whether the running stream is
 * at an odd byte position so fragments of any length compose. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len, bool *odd)
{
	uint64_t s = sum;
	size_t i = 0;

	if (*odd && len > 0) {
		s += p[0];
		i = 1;
		*odd = false;
	}
	for (; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < len) {
		s += (uint32_t)p[i] << 8;
		*odd = true;
	}
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

uint32_t net_iov_csum(const struct iovec *iov, unsigned n, size_t off, size_t len)
{
	size_t in;
	unsigned i = iov_seek(iov, n, off, &in);
	uint32_t sum = 0;
	bool odd = false;

	while (len > 0 && i < n) {
		size_t take = iov[i].iov_len - in;
		if (take > len)
			take = len;
		sum = csum_add(sum, (const uint8_t *)iov[i].iov_base + in, take, &odd);
		len -= take;
		in = 0;
		i++;
	}
	return sum;
}

uint16_t net_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}
