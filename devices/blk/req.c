/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request parsing.  Everything in a chain comes from the guest and is
 * hostile: the header may be short or split across descriptors, data may sit
 * in descriptors of the wrong direction, sector ranges may overflow.  A bad
 * request gets a status and causes no I/O.
 */
#include <string.h>

#include "blk.h"

/* Point r->data at iov[first, first+n) minus `skip` leading bytes, in place. */
static void set_data(struct blk_req *r, unsigned first, unsigned n, size_t skip)
{
	struct iovec *iov = r->chain.iov + first;
	while (n && skip >= iov->iov_len) {
		skip -= iov->iov_len;
		iov++;
		n--;
	}
	if (n) {
		iov->iov_base = (uint8_t *)iov->iov_base + skip;
		iov->iov_len -= skip;
	}
	r->data = iov;
	r->ndata = n;
}

static bool range_ok(const struct blk_limits *lim, uint64_t sector, uint64_t nsec)
{
	return sector <= lim->capacity && nsec <= lim->capacity - sector;
}

static void set_status(struct blk_req *r, uint8_t st)
{
	r->op = BLK_OP_NONE;
	r->status = st;
}

/* Locate the status byte (last writable byte) and trim it off the in part.
 * Returns the number of in iovecs that remain for data. */
static unsigned take_status(struct blk_req *r)
{
	struct vhu_chain *c = &r->chain;
	unsigned n = c->in_num;
	struct iovec *in = c->iov + c->out_num;
	while (n && in[n - 1].iov_len == 0)
		n--;
	if (!n) {
		r->status_ptr = NULL;
		return 0;
	}
	struct iovec *last = &in[n - 1];
	r->status_ptr = (uint8_t *)last->iov_base + last->iov_len - 1;
	last->iov_len--;
	if (!last->iov_len)
		n--;
	return n;
}

static void parse_rw(const struct blk_limits *lim, struct blk_req *r, bool write, uint64_t sector,
                     unsigned nin)
{
	const struct vhu_chain *c = &r->chain;
	uint64_t len;
	if (write) {
		/* Data must be device-readable; a writable buffer besides the
		 * status byte is a malformed request. */
		if (c->in_len != 1)
			return set_status(r, VIRTIO_BLK_S_IOERR);
		if (lim->read_only)
			return set_status(r, VIRTIO_BLK_S_IOERR);
		len = c->out_len - sizeof(struct virtio_blk_outhdr);
		set_data(r, 0, c->out_num, sizeof(struct virtio_blk_outhdr));
	} else {
		/* A read into device-readable buffers cannot be done. */
		if (c->out_len != sizeof(struct virtio_blk_outhdr))
			return set_status(r, VIRTIO_BLK_S_IOERR);
		len = c->in_len - 1;
		set_data(r, c->out_num, nin, 0);
	}
	if (len % BLK_SECTOR || len > BLK_MAX_DATA || !range_ok(lim, sector, len / BLK_SECTOR))
		return set_status(r, VIRTIO_BLK_S_IOERR);
	if (!len)
		return set_status(r, VIRTIO_BLK_S_OK);
	r->op = write ? BLK_OP_WRITE : BLK_OP_READ;
	r->offset = sector * BLK_SECTOR;
	r->len = len;
}

static void parse_dz(const struct blk_limits *lim, struct blk_req *r, bool zeroes)
{
	const struct vhu_chain *c = &r->chain;
	uint64_t dlen = c->out_len - sizeof(struct virtio_blk_outhdr);
	if (c->in_len != 1 || dlen == 0 || dlen % sizeof(struct virtio_blk_discard_write_zeroes))
		return set_status(r, VIRTIO_BLK_S_IOERR);
	if (lim->read_only)
		return set_status(r, VIRTIO_BLK_S_IOERR);
	uint64_t nseg = dlen / sizeof(struct virtio_blk_discard_write_zeroes);
	if (nseg > lim->max_segs || nseg > BLK_MAX_SEGS)
		return set_status(r, VIRTIO_BLK_S_UNSUPP);
	r->nsegs = 0;
	for (unsigned i = 0; i < nseg; i++) {
		struct virtio_blk_discard_write_zeroes s;
		size_t off = sizeof(struct virtio_blk_outhdr) + i * sizeof(s);
		vhu_chain_read(c, off, &s, sizeof(s));
		uint32_t flags = s.flags, nsec = s.num_sectors;
		if (flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			return set_status(r, VIRTIO_BLK_S_UNSUPP);
		if (!zeroes && flags)
			return set_status(r, VIRTIO_BLK_S_UNSUPP); /* unmap is for write zeroes */
		if (nsec > lim->max_dz_sectors || !range_ok(lim, s.sector, nsec))
			return set_status(r, VIRTIO_BLK_S_IOERR);
		if (!nsec)
			continue;
		r->segs[r->nsegs++] = (struct blk_seg){
		    .offset = s.sector * BLK_SECTOR,
		    .len = (uint64_t)nsec * BLK_SECTOR,
		    .unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
		};
	}
	if (!r->nsegs)
		return set_status(r, VIRTIO_BLK_S_OK);
	r->op = zeroes ? BLK_OP_ZEROES : BLK_OP_DISCARD;
}

static void parse_get_id(const struct blk_limits *lim, struct blk_req *r)
{
	const struct vhu_chain *c = &r->chain;
	size_t n = c->in_len - 1;
	if (n > VIRTIO_BLK_ID_BYTES)
		n = VIRTIO_BLK_ID_BYTES;
	r->written = vhu_chain_write(c, 0, lim->serial, n); /* status byte trimmed off */
	set_status(r, VIRTIO_BLK_S_OK);
}

void blk_req_parse(const struct blk_limits *lim, struct blk_req *r)
{
	struct vhu_chain *c = &r->chain;
	struct virtio_blk_outhdr hdr;

	r->op = BLK_OP_NONE;
	r->status = VIRTIO_BLK_S_IOERR;
	r->written = 0;
	r->len = r->offset = 0;
	r->data = NULL;
	r->ndata = 0;
	r->nsegs = 0;

	unsigned nin = take_status(r);
	if (!r->status_ptr)
		return; /* nowhere to report: pushed with nothing written */
	if (c->out_len < sizeof(hdr))
		return set_status(r, VIRTIO_BLK_S_IOERR);
	if (c->iov[0].iov_len >= sizeof(hdr)) /* the usual case, inline: one descriptor */
		memcpy(&hdr, c->iov[0].iov_base, sizeof(hdr));
	else
		vhu_chain_read(c, 0, &hdr, sizeof(hdr));

	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
		return parse_rw(lim, r, false, hdr.sector, nin);
	case VIRTIO_BLK_T_OUT:
		return parse_rw(lim, r, true, hdr.sector, nin);
	case VIRTIO_BLK_T_FLUSH:
		if (c->in_len != 1)
			return set_status(r, VIRTIO_BLK_S_IOERR);
		r->op = BLK_OP_FLUSH;
		return;
	case VIRTIO_BLK_T_GET_ID:
		if (c->out_len != sizeof(hdr))
			return set_status(r, VIRTIO_BLK_S_IOERR);
		return parse_get_id(lim, r);
	case VIRTIO_BLK_T_DISCARD:
		return parse_dz(lim, r, false);
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_dz(lim, r, true);
	default:
		return set_status(r, VIRTIO_BLK_S_UNSUPP);
	}
}

bool blk_req_dio_aligned(const struct blk_req *r, uint32_t mem_align, uint32_t off_align)
{
	if ((r->offset + r->done) % off_align)
		return false;
	for (unsigned i = 0; i < r->ndata; i++)
		if ((uintptr_t)r->data[i].iov_base % mem_align || r->data[i].iov_len % off_align)
			return false;
	return true;
}

void blk_req_advance(struct blk_req *r, uint64_t n)
{
	while (r->ndata && n >= r->data->iov_len) {
		n -= r->data->iov_len;
		r->data++;
		r->ndata--;
	}
	if (r->ndata && n) {
		r->data->iov_base = (uint8_t *)r->data->iov_base + n;
		r->data->iov_len -= n;
	}
}
