/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbd engine: Ceph RBD images through librbd.
 *
 * One image handle serves every queue (librbd is thread-safe, and two
 * handles of one process would pass the exclusive lock back and forth);
 * disks of one cluster share its connection (rbd_cluster.c).
 * Requests are submitted with rbd_aio_* from the worker that popped them.
 * librbd completes them on its own threads; the completion callback touches
 * only the request's eng_* fields: it records the result and, for the last
 * operation of a request, pushes the request on its worker's lock-free list
 * and writes the worker's eventfd when that list was empty.  The worker's
 * listener takes the list and finishes the requests on the thread that owns
 * the ring.  (rbd_set_image_notification + rbd_poll_io_events would queue
 * every completion of the image on one fd: with queues spread over several
 * workers, each completion would then need a second hand-over to the worker
 * that owns its ring.  The per-worker list is that hand-over done once.)
 *
 * Write-through cache mode (the guest cleared the writeback bit): a write,
 * discard or write-zeroes is followed by a flush before it is acknowledged
 * (librbd's cache would otherwise acknowledge it from memory).
 *
 * Resizes: rbd_update_watch tells of header changes; a small thread reads
 * the new size (not from librbd's callback, which must not wait on the
 * image) and blk_dev_resized() tells the guest.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk.h"
#include "rbd_cluster.h"

struct rbd_worker {
	_Atomic(struct blk_req *) done; /* finished requests, newest first */
	int efd;
};

struct rbd_dev {
	rados_t cluster;
	rados_ioctx_t io;
	rbd_image_t image;
	struct rbd_worker *workers; /* nthreads, freed after rbd_close */
	unsigned nworkers;
	/* resize watch */
	uint64_t watch_handle;
	bool watching, thread_on, quit, changed;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static struct rbd_dev *RD(struct blk_dev *d)
{
	return d->engine_priv;
}

/* ---- open / close ----------------------------------------------------- */

static int rbd_open_image(struct blk_dev *d, char *err, size_t errlen)
{
	const struct blk_spec *sp = &d->spec;
	struct rbd_dev *rd = calloc(1, sizeof(*rd));
	uint64_t size;
	int rc;
	if (!rd)
		return -ENOMEM;
	pthread_mutex_init(&rd->lock, NULL);
	pthread_cond_init(&rd->cond, NULL);
	d->engine_priv = rd;
	rc = rbd_cluster_get(sp, &rd->cluster, err, errlen);
	if (rc < 0)
		return rc;
	rc = rados_ioctx_create(rd->cluster, sp->rbd.pool, &rd->io);
	if (rc < 0)
		return rbd_say(err, errlen, rc, "pool '%s'", sp->rbd.pool);
	if (sp->rbd.ns)
		rados_ioctx_set_namespace(rd->io, sp->rbd.ns);
	if (sp->rbd.snap || d->opts.read_only) {
		/* A snapshot cannot change: the disk is read-only. */
		d->opts.read_only = true;
		rc = rbd_open_read_only(rd->io, sp->rbd.image, &rd->image, sp->rbd.snap);
	} else {
		rc = rbd_open(rd->io, sp->rbd.image, &rd->image, NULL);
	}
	if (rc < 0) {
		rd->image = NULL;
		snprintf(err, errlen, "rbd: cannot open image '%s%s%s': %s", sp->rbd.image,
		         sp->rbd.snap ? "@" : "", sp->rbd.snap ? sp->rbd.snap : "", strerror(-rc));
		return rc;
	}
	rc = rbd_get_size(rd->image, &size);
	if (rc < 0)
		return rbd_say(err, errlen, rc, "%s", "size of the image");
	d->capacity = size / BLK_SECTOR;
	atomic_store(&d->lim.capacity, d->capacity);
	return 0;
}

static void rbd_close_image(struct blk_dev *d)
{
	struct rbd_dev *rd = RD(d);
	if (!rd)
		return;
	/* rbd_close waits for what is still in flight; its callbacks still
	 * find the worker lists, freed only afterwards. */
	if (rd->image)
		rbd_close(rd->image);
	if (rd->io)
		rados_ioctx_destroy(rd->io);
	if (rd->cluster)
		rbd_cluster_put(rd->cluster);
	for (unsigned i = 0; i < rd->nworkers; i++)
		if (rd->workers[i].efd >= 0)
			close(rd->workers[i].efd);
	free(rd->workers);
	pthread_mutex_destroy(&rd->lock);
	pthread_cond_destroy(&rd->cond);
	free(rd);
	d->engine_priv = NULL;
}

/* ---- resize watch ----------------------------------------------------- */

static void on_update(void *arg)
{
	struct rbd_dev *rd = RD(arg);
	pthread_mutex_lock(&rd->lock);
	rd->changed = true;
	pthread_cond_signal(&rd->cond);
	pthread_mutex_unlock(&rd->lock);
}

static void *watch_thread(void *arg)
{
	struct blk_dev *d = arg;
	struct rbd_dev *rd = RD(d);
	pthread_mutex_lock(&rd->lock);
	for (;;) {
		while (!rd->changed && !rd->quit)
			pthread_cond_wait(&rd->cond, &rd->lock);
		if (rd->quit)
			break;
		rd->changed = false;
		pthread_mutex_unlock(&rd->lock);
		uint64_t size;
		int rc = rbd_get_size(rd->image, &size);
		if (rc < 0)
			vhu_log(VHU_LOG_WARN, "vhu-blk: rbd: image changed, size unknown: %s",
			        strerror(-rc));
		else
			blk_dev_resized(d, size);
		pthread_mutex_lock(&rd->lock);
	}
	pthread_mutex_unlock(&rd->lock);
	return NULL;
}

static int rbd_start(struct blk_dev *d)
{
	struct rbd_dev *rd = RD(d);
	int rc = pthread_create(&rd->thread, NULL, watch_thread, d);
	if (rc)
		return -rc;
	rd->thread_on = true;
	rc = rbd_update_watch(rd->image, &rd->watch_handle, on_update, d);
	if (rc < 0)
		vhu_log(VHU_LOG_WARN, "vhu-blk: rbd: cannot watch the image for resizes: %s",
		        strerror(-rc));
	else
		rd->watching = true;
	return 0;
}

static void rbd_stop(struct blk_dev *d)
{
	struct rbd_dev *rd = RD(d);
	if (!rd)
		return;
	if (rd->watching)
		rbd_update_unwatch(rd->image, rd->watch_handle);
	rd->watching = false;
	if (rd->thread_on) {
		pthread_mutex_lock(&rd->lock);
		rd->quit = true;
		pthread_cond_signal(&rd->cond);
		pthread_mutex_unlock(&rd->lock);
		pthread_join(rd->thread, NULL);
		rd->thread_on = false;
	}
}

/* ---- data path -------------------------------------------------------- */

/* librbd's thread: record, and hand the finished request to its worker. */
static void on_complete(rbd_completion_t c, void *arg)
{
	struct blk_req *r = arg;
	ssize_t ret = rbd_aio_get_return_value(c);
	rbd_aio_release(c);
	if (ret < 0) {
		int none = 0;
		atomic_compare_exchange_strong(&r->eng_err, &none, (int)ret);
	}
	if (atomic_fetch_sub(&r->eng_left, 1) != 1)
		return;
	struct rbd_worker *rw = r->q->w->priv;
	struct blk_req *head = atomic_load(&rw->done);
	do
		r->eng_next = head;
	while (!atomic_compare_exchange_weak(&rw->done, &head, r));
	if (!head) {
		uint64_t one = 1;
		if (write(rw->efd, &one, sizeof(one)) < 0) {
			/* eventfd counter full: cannot happen below 2^64 - 1 */
		}
	}
}

static int start_op(struct rbd_dev *rd, struct blk_req *r, enum blk_op op, unsigned seg)
{
	rbd_completion_t c;
	int rc = rbd_aio_create_completion(r, on_complete, &c);
	if (rc < 0)
		return rc;
	switch (op) {
	case BLK_OP_READ:
		rc = rbd_aio_readv(rd->image, r->data, (int)r->ndata, r->offset, c);
		break;
	case BLK_OP_WRITE:
		rc = rbd_aio_writev(rd->image, r->data, (int)r->ndata, r->offset, c);
		break;
	case BLK_OP_FLUSH:
		rc = rbd_aio_flush(rd->image, c);
		break;
	case BLK_OP_DISCARD:
		rc = rbd_aio_discard(rd->image, r->segs[seg].offset, r->segs[seg].len, c);
		break;
	case BLK_OP_ZEROES:
		/* Without THICK_PROVISION librbd may deallocate: reads as zeroes. */
		rc =
		    rbd_aio_write_zeroes(rd->image, r->segs[seg].offset, r->segs[seg].len, c, 0, 0);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc < 0)
		rbd_aio_release(c);
	return rc;
}

static void on_done(struct blk_worker *w, struct blk_req *r);

/* Issue op (one operation per segment for discard / write-zeroes).  The
 * count starts one high so that no completion can finish r while it is
 * still being issued. */
static void issue(struct blk_worker *w, struct blk_req *r, enum blk_op op)
{
	struct rbd_dev *rd = RD(w->dev);
	unsigned n = (op == BLK_OP_DISCARD || op == BLK_OP_ZEROES) ? r->nsegs : 1;
	atomic_store(&r->eng_err, 0);
	atomic_store(&r->eng_left, (int)n + 1);
	for (unsigned i = 0; i < n; i++) {
		int rc = start_op(rd, r, op, i);
		if (rc < 0) {
			int none = 0;
			atomic_compare_exchange_strong(&r->eng_err, &none, rc);
			atomic_fetch_sub(&r->eng_left, 1);
		}
	}
	if (atomic_fetch_sub(&r->eng_left, 1) == 1)
		on_done(w, r);
}

static bool write_through(const struct blk_dev *d, const struct blk_req *r)
{
	return (r->op == BLK_OP_WRITE || r->op == BLK_OP_DISCARD || r->op == BLK_OP_ZEROES) &&
	       !atomic_load_explicit(&d->wce, memory_order_relaxed);
}

/* Worker thread: every operation of r's current step completed. */
static void on_done(struct blk_worker *w, struct blk_req *r)
{
	int err = atomic_load(&r->eng_err);
	if (!err && r->eng_stage == 0 && write_through(w->dev, r)) {
		r->eng_stage = 1;
		issue(w, r, BLK_OP_FLUSH);
		return;
	}
	if (r->op == BLK_OP_DISCARD && err == -EOPNOTSUPP)
		err = 0; /* discard is a hint */
	if (err)
		blk_log_io_error(w->dev, r, "rbd", err);
	r->error = err;
	r->pending = 0;
	blk_req_finish(r);
}

static void rbd_submit(struct blk_worker *w, struct blk_req *r)
{
	if (blk_req_flush_ro(w, r))
		return;
	r->eng_stage = 0;
	r->pending = 1;
	issue(w, r, r->op);
}

static void rbd_kick(struct blk_worker *w) {}

/* Take the finished list, oldest first. */
static struct blk_req *take_done(struct rbd_worker *rw)
{
	struct blk_req *list = atomic_exchange(&rw->done, NULL), *rev = NULL;
	while (list) {
		struct blk_req *next = list->eng_next;
		list->eng_next = rev;
		rev = list;
		list = next;
	}
	return rev;
}

static void rbd_reap(struct blk_worker *w)
{
	struct rbd_worker *rw = w->priv;
	uint64_t cnt;
	if (read(rw->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return;
	for (struct blk_req *r = take_done(rw), *next; r; r = next) {
		next = r->eng_next;
		on_done(w, r);
	}
}

static int rbd_init(struct blk_worker *w, int *efd)
{
	struct blk_dev *d = w->dev;
	struct rbd_dev *rd = RD(d);
	if (!rd->workers) {
		rd->workers = calloc(d->nthreads, sizeof(*rd->workers));
		if (!rd->workers)
			return -ENOMEM;
		rd->nworkers = d->nthreads;
		for (unsigned i = 0; i < rd->nworkers; i++)
			rd->workers[i].efd = -1;
	}
	struct rbd_worker *rw = &rd->workers[w->index];
	rw->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rw->efd < 0)
		return -errno;
	w->priv = rw;
	*efd = rw->efd;
	return 0;
}

/* The daemon stopped serving: let what the cluster still holds land (guest
 * memory stays referenced until then).  Without a timeout set in Ceph
 * (rados_osd_op_timeout) a stopped cluster holds it here. */
static void rbd_fini(struct blk_worker *w)
{
	struct rbd_worker *rw = w->priv;
	unsigned waited = 0, n;
	if (!rw)
		return;
	while ((n = blk_worker_busy(w)) != 0) {
		struct pollfd p = {.fd = rw->efd, .events = POLLIN};
		if (poll(&p, 1, 1000) == 0 && ++waited % 10 == 0)
			vhu_log(VHU_LOG_WARN,
			        "vhu-blk: rbd: waiting for %u request(s) the cluster has not "
			        "answered (%u s)",
			        n, waited);
		uint64_t cnt;
		if (read(rw->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			break;
		for (struct blk_req *r = take_done(rw), *next; r; r = next) {
			next = r->eng_next;
			r->gen = ~0u; /* never pushed: the rings are gone */
			r->error = atomic_load(&r->eng_err);
			blk_req_finish(r);
		}
	}
	w->priv = NULL; /* the list and eventfd live until rbd_close */
	w->efd = -1;
}

const struct blk_engine blk_engine_rbd = {
    .name = "rbd",
    .default_threads = 1,
    .open = rbd_open_image,
    .close = rbd_close_image,
    .init = rbd_init,
    .fini = rbd_fini,
    .start = rbd_start,
    .stop = rbd_stop,
    .submit = rbd_submit,
    .kick = rbd_kick,
    .reap = rbd_reap,
};
