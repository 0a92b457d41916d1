/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: vhu-blk's request parser (devices/blk/req.c) on chains
 * built from the input.  Every buffer is its own exact-size heap block, so
 * AddressSanitizer catches a single byte read or written outside a
 * descriptor.  After parsing, the harness does what the null engine does
 * (zero read data, consume write data, store the status byte) and checks
 * the parse result against the chain and the device limits.
 *
 * Input: u8 nout, u8 nin, u8 flags, u8 capsel, (nout+nin) x u16 lengths,
 * then the bytes of the readable buffers in order (zero padded).
 */
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "fz.h"

#define MAXB 6

static const uint64_t capacities[] = {0, 1, 8, 2048, 1ull << 40, UINT64_MAX / 512};

struct bufs {
	unsigned nout, nin;
	struct iovec *iov; /* exactly nout + nin entries */
	uint8_t *mem[2 * MAXB];
	size_t len[2 * MAXB];
};

static bool inside(const struct bufs *b, unsigned first, unsigned n, const void *p, size_t len)
{
	for (unsigned i = first; i < first + n; i++) {
		uintptr_t s = (uintptr_t)b->mem[i], q = (uintptr_t)p;

		if (q >= s && q - s <= b->len[i] && len <= b->len[i] - (q - s))
			return true;
	}
	return false;
}

static void check_rw(const struct bufs *b, const struct blk_limits *lim, const struct blk_req *r)
{
	bool rd = r->op == BLK_OP_READ;
	uint64_t sum = 0;

	FZ_ASSERT(r->len > 0 && r->len % BLK_SECTOR == 0 && r->offset % BLK_SECTOR == 0);
	FZ_ASSERT(r->offset / BLK_SECTOR <= lim->capacity &&
	          r->len / BLK_SECTOR <= lim->capacity - r->offset / BLK_SECTOR);
	for (unsigned i = 0; i < r->ndata; i++) {
		sum += r->data[i].iov_len;
		/* Reads land in writable buffers, writes come from readable ones. */
		FZ_ASSERT(inside(b, rd ? b->nout : 0, rd ? b->nin : b->nout, r->data[i].iov_base,
		                 r->data[i].iov_len));
		if (rd && r->status_ptr) {
			uintptr_t s = (uintptr_t)r->status_ptr, p = (uintptr_t)r->data[i].iov_base;

			FZ_ASSERT(s < p || s - p >= r->data[i].iov_len);
		}
	}
	FZ_ASSERT(sum == r->len);
}

static void engine(struct blk_req *r)
{
	volatile uint8_t x = 0;

	if (r->op == BLK_OP_READ)
		for (unsigned i = 0; i < r->ndata; i++)
			memset(r->data[i].iov_base, 0, r->data[i].iov_len);
	if (r->op == BLK_OP_WRITE)
		for (unsigned i = 0; i < r->ndata; i++)
			for (size_t k = 0; k < r->data[i].iov_len; k++)
				x ^= ((uint8_t *)r->data[i].iov_base)[k];
	if (r->status_ptr)
		*r->status_ptr = r->status;
	(void)x;
}

static void check(const struct bufs *b, const struct blk_limits *lim, struct blk_req *r)
{
	const struct vhu_chain *c = &r->chain;

	if (c->in_len == 0) {
		FZ_ASSERT(r->status_ptr == NULL && r->op == BLK_OP_NONE);
		return;
	}
	FZ_ASSERT(r->status_ptr && inside(b, b->nout, b->nin, r->status_ptr, 1));
	switch (r->op) {
	case BLK_OP_NONE:
		FZ_ASSERT(r->status == VIRTIO_BLK_S_OK || r->status == VIRTIO_BLK_S_IOERR ||
		          r->status == VIRTIO_BLK_S_UNSUPP);
		FZ_ASSERT(r->written <= c->in_len - 1);
		break;
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		FZ_ASSERT(!(r->op == BLK_OP_WRITE && lim->read_only));
		check_rw(b, lim, r);
		break;
	case BLK_OP_FLUSH:
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_ZEROES:
		FZ_ASSERT(!lim->read_only);
		FZ_ASSERT(r->nsegs >= 1 && r->nsegs <= BLK_MAX_SEGS && r->nsegs <= lim->max_segs);
		for (unsigned i = 0; i < r->nsegs; i++) {
			const struct blk_seg *s = &r->segs[i];

			FZ_ASSERT(s->len > 0 && s->len / BLK_SECTOR <= lim->max_dz_sectors);
			FZ_ASSERT(s->offset / BLK_SECTOR <= lim->capacity &&
			          s->len / BLK_SECTOR <= lim->capacity - s->offset / BLK_SECTOR);
			FZ_ASSERT(r->op == BLK_OP_ZEROES || !s->unmap);
		}
		break;
	default:
		FZ_ASSERT(!"unknown op");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char serial[VIRTIO_BLK_ID_BYTES] = "fuzz-serial-0123456";
	struct blk_limits lim = {.serial = serial};
	struct blk_req *r;
	struct bufs b = {0};
	size_t pos = 4;
	unsigned n;

	if (size < 4)
		return 0;
	b.nout = data[0] % (MAXB + 1);
	b.nin = data[1] % (MAXB + 1);
	lim.read_only = data[2] & 1;
	lim.max_segs = (data[2] >> 1) % 40;
	lim.max_dz_sectors = (data[2] & 0x80) ? BLK_MAX_DZ_SECTORS : 8;
	lim.capacity = capacities[data[3] % (sizeof(capacities) / sizeof(capacities[0]))];
	n = b.nout + b.nin;
	r = calloc(1, sizeof(*r));
	b.iov = malloc((n ? n : 1) * sizeof(struct iovec));
	FZ_ASSERT(r && b.iov);
	for (unsigned i = 0; i < n; i++) {
		size_t len = pos + 2 <= size ? (size_t)(data[pos] | data[pos + 1] << 8) % 8193 : 16;

		pos += 2;
		b.len[i] = len;
		b.mem[i] = malloc(len ? len : 1);
		FZ_ASSERT(b.mem[i]);
		memset(b.mem[i], 0, len);
		b.iov[i] = (struct iovec){b.mem[i], len};
		if (i < b.nout) {
			r->chain.out_len += len;
			for (size_t k = 0; k < len && pos < size; k++)
				b.mem[i][k] = data[pos++];
		} else {
			r->chain.in_len += len;
		}
	}
	r->chain.iov = b.iov;
	r->chain.iov_max = n;
	r->chain.out_num = b.nout;
	r->chain.in_num = b.nin;
	blk_req_parse(&lim, r);
	check(&b, &lim, r);
	engine(r);
	if (r->op == BLK_OP_READ || r->op == BLK_OP_WRITE) {
		uint64_t k = size ? data[size - 1] * 64ull % (r->len + 1) : 0, left = 0;

		blk_req_dio_aligned(r, 512, 512);
		blk_req_advance(r, k);
		for (unsigned i = 0; i < r->ndata; i++)
			left += r->data[i].iov_len;
		FZ_ASSERT(left == r->len - k);
	}
	for (unsigned i = 0; i < n; i++)
		free(b.mem[i]);
	free(b.iov);
	free(r);
	return 0;
}
