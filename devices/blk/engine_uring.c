/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io_uring engine: one ring per worker thread, its completion eventfd
 * registered as a worker listener, so submissions and completions happen on
 * the thread that owns the queues (no locks).  Requests complete out of
 * order; a request may need several submissions (discard / write-zeroes
 * segments, short transfers), counted in r->pending.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk.h"

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif

struct uring_worker {
	struct io_uring ring;
	unsigned queued; /* SQEs prepared since the last submit */
};

static struct io_uring_sqe *get_sqe(struct uring_worker *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) { /* SQ full: push what we have to the kernel first */
		io_uring_submit(&u->ring);
		u->queued = 0;
		sqe = io_uring_get_sqe(&u->ring);
	}
	if (sqe)
		u->queued++;
	return sqe;
}

static void prep_rw(struct blk_worker *w, struct blk_req *r, struct io_uring_sqe *sqe)
{
	struct blk_dev *d = w->dev;
	r->direct = d->fd_direct >= 0 && !r->no_direct &&
	            blk_req_dio_aligned(r, d->dio_mem_align, d->dio_off_align);
	int fd = r->direct ? d->fd_direct : d->fd;
	uint64_t off = r->offset + r->done;
	if (r->op == BLK_OP_READ) {
		io_uring_prep_readv(sqe, fd, r->data, r->ndata, off);
	} else {
		io_uring_prep_writev(sqe, fd, r->data, r->ndata, off);
		/* Write-through cache mode: durable before it is acknowledged. */
		if (!atomic_load_explicit(&d->wce, memory_order_relaxed))
			sqe->rw_flags = RWF_DSYNC;
	}
}

static int dz_mode(struct blk_dev *d, const struct blk_req *r, const struct blk_seg *s)
{
	if (r->op == BLK_OP_DISCARD || s->unmap || r->retry_punch ||
	    atomic_load_explicit(&d->zero_range_broken, memory_order_relaxed))
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/* Queue the SQEs of r; on SQE exhaustion fail what could not be queued. */
static void queue_req(struct blk_worker *w, struct blk_req *r)
{
	struct uring_worker *u = w->priv;
	struct blk_dev *d = w->dev;
	unsigned n = (r->op == BLK_OP_DISCARD || r->op == BLK_OP_ZEROES) ? r->nsegs : 1;

	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = get_sqe(u);
		if (!sqe) {
			r->error = -EBUSY;
			break;
		}
		switch (r->op) {
		case BLK_OP_READ:
		case BLK_OP_WRITE:
			prep_rw(w, r, sqe);
			break;
		case BLK_OP_FLUSH:
			io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
			break;
		default:
			io_uring_prep_fallocate(sqe, d->fd, dz_mode(d, r, &r->segs[i]),
			                        (off_t)r->segs[i].offset, (off_t)r->segs[i].len);
			break;
		}
		io_uring_sqe_set_data(sqe, r);
		r->pending++;
	}
	if (!r->pending)
		blk_req_finish(r);
}

static void uring_submit(struct blk_worker *w, struct blk_req *r)
{
	if (blk_req_flush_ro(w, r))
		return;
	queue_req(w, r);
}

static void uring_kick(struct blk_worker *w)
{
	struct uring_worker *u = w->priv;
	if (u->queued) {
		io_uring_submit(&u->ring);
		u->queued = 0;
	}
}

/* One CQE for r.  Returns true when r needs no more completions. */
static bool complete_one(struct blk_worker *w, struct blk_req *r, int res)
{
	struct blk_dev *d = w->dev;
	r->pending--;
	if (r->op == BLK_OP_READ || r->op == BLK_OP_WRITE) {
		if (res > 0 && (uint64_t)res < r->len - r->done) {
			/* Short transfer: resubmit the rest. */
			r->done += (uint64_t)res;
			blk_req_advance(r, (uint64_t)res);
			queue_req(w, r);
			return false;
		}
		if (res == -EINVAL && r->direct) {
			/* Alignment the kernel did not tell us about: buffered. */
			r->no_direct = true;
			queue_req(w, r);
			return false;
		}
		if (res == 0)
			res = -EIO; /* end of file inside the capacity: image shrank */
	} else if (res == -EOPNOTSUPP || res == -EINVAL) {
		if (r->op == BLK_OP_DISCARD) {
			res = 0; /* discard is a hint */
		} else if (r->op == BLK_OP_ZEROES && !r->retry_punch) {
			/* No ZERO_RANGE here (tmpfs): a punched hole reads as zeroes. */
			atomic_store(&d->zero_range_broken, true);
			r->retry_punch = true;
			res = 0;
		}
	}
	if (res < 0 && !r->error)
		r->error = res;
	if (r->pending)
		return false;
	if (r->retry_punch && !r->error && r->op == BLK_OP_ZEROES && !r->done) {
		r->done = 1; /* marks the retry as issued */
		queue_req(w, r);
		return false;
	}
	return true;
}

static void uring_reap(struct blk_worker *w)
{
	struct uring_worker *u = w->priv;
	uint64_t cnt;
	struct io_uring_cqe *cqe;

	if (read(w->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return;
	for (;;) {
		unsigned head, n = 0;
		io_uring_for_each_cqe(&u->ring, head, cqe)
		{
			struct blk_req *r = io_uring_cqe_get_data(cqe);
			n++;
			if (r && complete_one(w, r, cqe->res))
				blk_req_finish(r);
		}
		if (n) {
			io_uring_cq_advance(&u->ring, n);
			continue;
		}
		/* Completions that did not fit the CQ wait in the kernel's
		 * overflow list: have them flushed, then go on reaping. */
		if (!io_uring_cq_has_overflow(&u->ring) || io_uring_get_events(&u->ring) < 0)
			break;
		if (!io_uring_cq_ready(&u->ring))
			break;
	}
	uring_kick(w); /* resubmissions */
}

static int uring_init(struct blk_worker *w, int *efd)
{
	struct blk_dev *d = w->dev;
	unsigned slots = 0;
	for (unsigned q = 0; q < d->opts.num_queues; q++)
		if (w->qmask & (1ULL << q))
			slots += d->queues[q].nslots;
	unsigned entries = 64, cq = 128;
	while (entries < slots && entries < 4096)
		entries <<= 1;
	/* Room for every segment of every slot, so the CQ never overflows in
	 * practice (overflow is handled anyway, see uring_reap). */
	while (cq < slots * BLK_MAX_SEGS && cq < 32768)
		cq <<= 1;
	if (cq < 2 * entries)
		cq = 2 * entries;

	struct uring_worker *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
	                            .cq_entries = cq};
	int rc = io_uring_queue_init_params(entries, &u->ring, &p);
	if (rc < 0) {
		free(u);
		return rc;
	}
	*efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (*efd < 0 || (rc = io_uring_register_eventfd(&u->ring, *efd)) < 0) {
		rc = *efd < 0 ? -errno : rc;
		if (*efd >= 0)
			close(*efd);
		*efd = -1;
		io_uring_queue_exit(&u->ring);
		free(u);
		return rc;
	}
	w->priv = u;
	return 0;
}

static void uring_fini(struct blk_worker *w)
{
	struct uring_worker *u = w->priv;
	if (!u)
		return;
	/* Let in-flight I/O land before guest memory references are dropped. */
	struct io_uring_cqe *cqe;
	for (;;) {
		bool busy = false;
		for (unsigned q = 0; q < w->dev->opts.num_queues; q++)
			if ((w->qmask & (1ULL << q)) &&
			    w->dev->queues[q].nfree < w->dev->queues[q].nslots)
				busy = true;
		if (!busy)
			break;
		struct __kernel_timespec ts = {.tv_sec = 5};
		if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts) < 0)
			break;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&u->ring, head, cqe)
		{
			struct blk_req *r = io_uring_cqe_get_data(cqe);
			n++;
			if (r && --r->pending == 0) {
				r->gen = ~0u; /* never pushed */
				blk_req_finish(r);
			}
		}
		io_uring_cq_advance(&u->ring, n);
	}
	io_uring_queue_exit(&u->ring);
	if (w->efd >= 0)
		close(w->efd);
	w->efd = -1;
	free(u);
	w->priv = NULL;
}

const struct blk_engine blk_engine_uring = {
    .name = "io_uring",
    .open = blk_file_open,
    .close = blk_file_close,
    .init = uring_init,
    .fini = uring_fini,
    .submit = uring_submit,
    .kick = uring_kick,
    .reap = uring_reap,
};
