/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-blk device: libvhu operations, config space, worker threads and
 * the per-queue request loop (pop all, submit once, complete; completions
 * are pushed in batches of BLK_PUSH_BATCH, each batch and the end notified).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "blk.h"

static struct blk_dev *DEV(void *p)
{
	return p;
}

/* ---- features and config space --------------------------------------- */

static unsigned op_num_queues(void *dev)
{
	return DEV(dev)->opts.num_queues;
}

static unsigned op_max_queue_size(void *dev)
{
	return DEV(dev)->opts.queue_size;
}

static uint64_t op_features(void *dev)
{
	struct blk_dev *d = dev;
	uint64_t f = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC) |
	             VHU_BIT(VHU_F_RING_EVENT_IDX) | VHU_BIT(VIRTIO_BLK_F_SIZE_MAX) |
	             VHU_BIT(VIRTIO_BLK_F_SEG_MAX) | VHU_BIT(VIRTIO_BLK_F_BLK_SIZE) |
	             VHU_BIT(VIRTIO_BLK_F_TOPOLOGY) | VHU_BIT(VIRTIO_BLK_F_FLUSH) |
	             VHU_BIT(VIRTIO_BLK_F_CONFIG_WCE) | VHU_BIT(VIRTIO_BLK_F_MQ);
	f |= VHU_BIT(VHU_F_RING_PACKED); /* inflight-safe: written in order (vring_packed.c) */
	if (d->opts.read_only)
		f |= VHU_BIT(VIRTIO_BLK_F_RO);
	else
		f |= VHU_BIT(VIRTIO_BLK_F_DISCARD) | VHU_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	return f;
}

static void op_acked_features(void *dev, uint64_t features)
{
	struct blk_dev *d = dev;
	atomic_store(&d->acked, features);
	vhu_log(VHU_LOG_DEBUG, "vhu-blk: acked features %#llx", (unsigned long long)features);
	/* QEMU may send a SET_FEATURES before the driver negotiated (no
	 * VERSION_1 yet): that says nothing about the cache mode. */
	if (!(features & VHU_BIT(VHU_F_VERSION_1)))
		return;
	/* A driver negotiated: the cache mode starts as the spec says
	 * (writeback iff FLUSH was negotiated; SeaBIOS does not, Linux does).
	 * The same features again (the front end restarting the device, or
	 * reconnecting) keep what the driver set through the config space. */
	if (features == atomic_exchange(&d->last_negotiated, features))
		return;
	atomic_store(&d->wce, (features & VHU_BIT(VIRTIO_BLK_F_FLUSH)) ? 1 : 0);
}

static uint64_t op_protocol_features(void *dev)
{
	/* BACKEND_REQ: the channel tells the guest about resizes (image.c). */
	return VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIG) |
	       VHU_BIT(VHU_PF_INFLIGHT_SHMFD) | VHU_BIT(VHU_PF_RESET_DEVICE) |
	       VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS) | VHU_BIT(VHU_PF_STATUS) |
	       VHU_BIT(VHU_PF_BACKEND_REQ);
}

static void op_set_backend_req_fd(void *dev, struct vhu_channel *ch)
{
	struct blk_dev *d = dev;
	pthread_mutex_lock(&d->chan_lock);
	d->chan = ch;
	pthread_mutex_unlock(&d->chan_lock);
}

static void op_reset_device(void *dev)
{
	struct blk_dev *d = dev;
	/* Requests still in the engine belong to the old connection: their
	 * completions are dropped (the inflight region resubmits them). */
	atomic_fetch_add(&d->gen, 1);
	/* Let them land before a new front end starts: a stale write finishing
	 * after its resubmitted copy (and a newer write) would undo both.  The
	 * workers keep reaping meanwhile; bounded in case the storage hangs. */
	for (unsigned i = 0; i < 30000 && atomic_load(&d->busy); i++)
		usleep(1000);
	if (atomic_load(&d->busy))
		vhu_log(VHU_LOG_WARN, "vhu-blk: %u requests still in flight after reset",
		        atomic_load(&d->busy));
	atomic_store(&d->acked, 0);
	op_set_backend_req_fd(d, NULL); /* the channel goes with the front end */
}

static void fill_config(const struct blk_dev *d, struct virtio_blk_config *c)
{
	uint32_t bs = d->opts.blk_size;
	memset(c, 0, sizeof(*c));
	c->capacity = atomic_load(&d->lim.capacity);
	c->size_max = 1u << 20; /* no real limit: 1 MiB per segment is plenty */
	c->seg_max = d->seg_max;
	c->blk_size = bs;
	c->physical_block_exp = 0;
	c->alignment_offset = 0;
	c->min_io_size = 1;
	c->opt_io_size = 0;
	c->wce = atomic_load(&d->wce);
	c->num_queues = (uint16_t)d->opts.num_queues;
	if (!d->opts.read_only) {
		c->max_discard_sectors = d->lim.max_dz_sectors;
		c->max_discard_seg = d->lim.max_segs;
		c->discard_sector_alignment = (bs > 4096 ? bs : 4096) / BLK_SECTOR;
		c->max_write_zeroes_sectors = d->lim.max_dz_sectors;
		c->max_write_zeroes_seg = d->lim.max_segs;
		c->write_zeroes_may_unmap = 1;
	}
}

static int op_get_config(void *dev, uint32_t offset, void *buf, uint32_t size)
{
	/* Bytes past the structure read as zero, as fields of features we do
	 * not offer. */
	uint8_t space[VHU_MAX_CONFIG_SIZE] = {0};
	if (offset > sizeof(space) || size > sizeof(space) - offset)
		return -EINVAL;
	fill_config(dev, (struct virtio_blk_config *)space);
	memcpy(buf, space + offset, size);
	return (int)size;
}

static int op_set_config(void *dev, uint32_t offset, const void *buf, uint32_t size)
{
	struct blk_dev *d = dev;
	vhu_log(VHU_LOG_DEBUG, "vhu-blk: config write at %u, %u bytes, first %#x", offset, size,
	        size ? *(const uint8_t *)buf : 0);
	/* Only the writeback byte is writable, and only with CONFIG_WCE. */
	if (offset != offsetof(struct virtio_blk_config, wce) || size != 1)
		return -EINVAL;
	if (!(atomic_load(&d->acked) & VHU_BIT(VIRTIO_BLK_F_CONFIG_WCE)))
		return -EINVAL;
	uint8_t wce = *(const uint8_t *)buf ? 1 : 0;
	if (atomic_exchange(&d->wce, wce) != wce)
		vhu_log(VHU_LOG_INFO, "vhu-blk: write cache: %s",
		        wce ? "writeback" : "write-through");
	return 0;
}

static int op_queues_per_thread(void *dev, uint64_t *masks, unsigned max)
{
	struct blk_dev *d = dev;
	unsigned n = d->nthreads < max ? d->nthreads : max;
	for (unsigned t = 0; t < n; t++)
		masks[t] = 0;
	for (unsigned q = 0; q < d->opts.num_queues; q++)
		masks[q % n] |= 1ULL << q;
	return (int)n;
}

/* ---- the request loop ------------------------------------------------- */

/* Take up to n free slots into rs (their chains into cs); finished
 * requests not pushed yet give theirs back first.  Returns how many. */
static unsigned slots_take(struct blk_queue *q, struct blk_req **rs, struct vhu_chain **cs,
                           unsigned n)
{
	if (q->nfree < n && q->ndone)
		blk_queue_flush(q);
	if (n > q->nfree)
		n = q->nfree;
	for (unsigned i = 0; i < n; i++) {
		rs[i] = &q->slots[q->free_stack[--q->nfree]];
		cs[i] = &rs[i]->chain;
	}
	if (n)
		atomic_fetch_add_explicit(&q->w->dev->busy, n, memory_order_relaxed);
	return n;
}

/* Give back the last n slots slots_take() handed out, unused. */
static void slots_return(struct blk_queue *q, struct blk_req **rs, unsigned n)
{
	for (unsigned i = n; i-- > 0;)
		q->free_stack[q->nfree++] = (uint16_t)(rs[i] - q->slots);
	if (n)
		atomic_fetch_sub_explicit(&q->w->dev->busy, n, memory_order_release);
}

/* A finished request's slot is free again (the busy count is the
 * caller's: one update per batch). */
static void slot_free(struct blk_queue *q, struct blk_req *r)
{
	if (r->mem)
		vhu_mem_unref(r->mem);
	r->mem = NULL;
	q->free_stack[q->nfree++] = (uint16_t)(r - q->slots);
}

static void slot_put(struct blk_queue *q, struct blk_req *r)
{
	slot_free(q, r);
	atomic_fetch_sub_explicit(&q->w->dev->busy, 1, memory_order_release);
}

void blk_queue_flush(struct blk_queue *q)
{
	unsigned n = q->ndone;

	if (!n)
		return;
	q->ndone = 0;
	if (vhu_vring_push_batch(q->vr, q->done_chain, q->done_written, n) > 0)
		q->need_notify = true;
	for (unsigned i = 0; i < n; i++)
		slot_free(q, q->done[i]);
	atomic_fetch_sub_explicit(&q->w->dev->busy, n, memory_order_release);
}

void blk_req_finish(struct blk_req *r)
{
	struct blk_queue *q = r->q;
	struct blk_dev *d = q->w->dev;
	uint32_t written = 0;

	if (r->op != BLK_OP_NONE) {
		r->status = r->error ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		if (!r->error && r->op == BLK_OP_READ)
			r->written = (uint32_t)r->len;
	}
	if (r->status != VIRTIO_BLK_S_OK)
		atomic_fetch_add_explicit(&d->nerr, 1, memory_order_relaxed);
	/* A completion from before a reset belongs to a front end that is
	 * gone: do not touch the (possibly reused) ring; the inflight region
	 * lets the next front end resubmit it. */
	if (r->gen != atomic_load(&d->gen) || !vhu_vring_started(q->vr)) {
		slot_put(q, r);
		return;
	}
	if (r->status_ptr) {
		*r->status_ptr = r->status;
		written = (r->status == VIRTIO_BLK_S_OK ? r->written : 0) + 1;
		/* The status is the last writable byte: outside the `written`
		 * prefix the push logs for migration after an error or a
		 * short GET_ID. */
		if (written < r->chain.in_len)
			vhu_vring_log_write(q->vr, r->status_ptr, 1);
	}
	q->done[q->ndone] = r;
	q->done_chain[q->ndone] = &r->chain;
	q->done_written[q->ndone++] = written;
	/* A long batch tells the driver part-way (EVENT_IDX permitting), so
	 * that it refills the ring while the rest is processed and the worker
	 * finds new chains instead of sleeping.  Polling or not: publishing
	 * every completion at once hands the used ring's cache line to the
	 * driver's CPU and back per request (docs/performance.md). */
	if (q->ndone == BLK_PUSH_BATCH) {
		blk_queue_flush(q);
		q->need_notify = false;
		vhu_vring_notify(q->vr);
	}
}

static void start_req(struct blk_dev *d, struct blk_queue *q, struct blk_req *r)
{
	blk_req_parse(&d->lim, r);
	r->pending = 0;
	r->error = 0;
	r->done = 0;
	r->retry_punch = false;
	r->no_direct = false;
	if (r->op == BLK_OP_NONE) {
		blk_req_finish(r);
		return;
	}
	d->engine->submit(q->w, r);
}

/* Chains taken per vhu_vring_pop_burst(). */
#define BLK_POP_BURST 32u

/* A chain with more segments than seg_max allows: refused, no status. */
static void refuse(struct blk_dev *d, struct blk_req *r)
{
	r->op = BLK_OP_NONE;
	r->status_ptr = NULL;
	atomic_fetch_add_explicit(&d->nerr, 1, memory_order_relaxed);
	blk_req_finish(r);
}

/* Pop everything available (as far as slots last), in bursts, then
 * submit once. */
static void process_queue(struct blk_dev *d, struct blk_queue *q)
{
	struct vhu_mem *mem = vhu_vring_mem(q->vr);
	unsigned gen = atomic_load(&d->gen), started = 0;
	if (!mem)
		return; /* ring being torn down */
	for (;;) {
		struct blk_req *rs[BLK_POP_BURST];
		struct vhu_chain *cs[BLK_POP_BURST];
		unsigned n = slots_take(q, rs, cs, BLK_POP_BURST);
		if (!n) {
			q->starved = vhu_vring_has_avail(q->vr);
			break;
		}
		int rc = vhu_vring_pop_burst(q->vr, cs, n);
		if (rc == -E2BIG) {
			slots_return(q, rs + 1, n - 1);
			rs[0]->gen = gen;
			rs[0]->mem = NULL;
			refuse(d, rs[0]);
			continue;
		}
		if (rc <= 0) { /* empty, or the ring failed */
			slots_return(q, rs, n);
			q->starved = false;
			break;
		}
		slots_return(q, rs + rc, n - (unsigned)rc);
		/* The headers the driver just wrote, on its CPU: overlap the
		 * misses. */
		for (int i = 0; i < rc; i++)
			if (rs[i]->chain.out_num)
				__builtin_prefetch(rs[i]->chain.iov[0].iov_base);
		for (int i = 0; i < rc; i++) {
			struct blk_req *r = rs[i];
			r->gen = gen;
			/* An asynchronous engine may finish r after this callback. */
			r->mem = d->engine->sync ? NULL : vhu_mem_ref(mem);
			start_req(d, q, r);
		}
		started += (unsigned)rc;
	}
	d->engine->kick(q->w);
	blk_queue_flush(q);
	atomic_fetch_add_explicit(&d->nreq, started, memory_order_relaxed);
}

static void notify_queues(struct blk_dev *d, uint64_t mask)
{
	for (unsigned i = 0; i < d->opts.num_queues; i++) {
		struct blk_queue *q = &d->queues[i];
		if ((mask & (1ULL << i)) && q->need_notify) {
			q->need_notify = false;
			vhu_vring_notify(q->vr);
		}
	}
}

static int op_handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                           unsigned nvrings, unsigned thread_id)
{
	struct blk_dev *d = dev;
	unsigned nq = d->opts.num_queues;
	if (ev < nq) {
		struct blk_queue *q = &d->queues[ev];
		if (ev < nvrings)
			q->vr = vrings[ev];
		process_queue(d, q);
		notify_queues(d, 1ULL << ev);
		return 0;
	}
	if (ev - nq >= d->nthreads)
		return -EINVAL;
	struct blk_worker *w = &d->workers[ev - nq];
	d->engine->reap(w);
	/* Slots came back: serve queues that had to stop popping. */
	for (unsigned i = 0; i < nq; i++) {
		struct blk_queue *q = &d->queues[i];
		if (!(w->qmask & (1ULL << i)))
			continue;
		blk_queue_flush(q);
		if (q->starved && vhu_vring_started(q->vr) && vhu_vring_enabled(q->vr))
			process_queue(d, q);
	}
	notify_queues(d, w->qmask);
	return 0;
}

const struct vhu_backend_ops blk_ops = {
    .num_queues = op_num_queues,
    .max_queue_size = op_max_queue_size,
    .features = op_features,
    .acked_features = op_acked_features,
    .protocol_features = op_protocol_features,
    .reset_device = op_reset_device,
    .get_config = op_get_config,
    .set_config = op_set_config,
    .set_backend_req_fd = op_set_backend_req_fd,
    .queues_per_thread = op_queues_per_thread,
    .handle_event = op_handle_event,
};

/* ---- set-up ----------------------------------------------------------- */

static int queue_setup(struct blk_dev *d, struct blk_queue *q, unsigned i)
{
	q->index = i;
	q->nslots = d->opts.queue_size;
	q->slots = calloc(q->nslots, sizeof(*q->slots));
	q->iovs = calloc((size_t)q->nslots * d->iov_max, sizeof(*q->iovs));
	q->free_stack = calloc(q->nslots, sizeof(*q->free_stack));
	if (!q->slots || !q->iovs || !q->free_stack)
		return -ENOMEM;
	for (unsigned s = 0; s < q->nslots; s++) {
		q->slots[s].q = q;
		q->slots[s].chain.iov = q->iovs + (size_t)s * d->iov_max;
		q->slots[s].chain.iov_max = d->iov_max;
		q->free_stack[s] = (uint16_t)(q->nslots - 1 - s);
	}
	q->nfree = q->nslots;
	return 0;
}

int blk_dev_setup(struct blk_dev *d)
{
	unsigned nq = d->opts.num_queues;
	if (!nq || nq > BLK_MAX_QUEUES)
		return -EINVAL;
	d->seg_max = d->opts.queue_size - 2;
	/* One descriptor may straddle two memory regions: leave room. */
	d->iov_max = 2 * (d->seg_max + 2);
	if (d->iov_max > BLK_MAX_IOV)
		d->iov_max = BLK_MAX_IOV;
	if (d->seg_max > d->iov_max - 2)
		d->seg_max = d->iov_max - 2;
	memcpy(d->serial, d->opts.serial, VIRTIO_BLK_ID_BYTES);
	d->lim = (struct blk_limits){
	    .capacity = d->capacity,
	    .read_only = d->opts.read_only,
	    .max_segs = BLK_MAX_SEGS,
	    .max_dz_sectors = BLK_MAX_DZ_SECTORS,
	    .serial = d->serial,
	};
	atomic_store(&d->wce, 1);
	pthread_mutex_init(&d->chan_lock, NULL);

	unsigned nt = d->opts.threads ? d->opts.threads : d->engine->default_threads;
	if (!nt) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		nt = cpus > 0 ? (unsigned)cpus : 1;
	}
	d->nthreads = nt < nq ? nt : nq;
	if (d->max_threads && d->nthreads > d->max_threads)
		d->nthreads = d->max_threads;
	d->workers = calloc(d->nthreads, sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < nq; i++) {
		int rc = queue_setup(d, &d->queues[i], i);
		if (rc < 0)
			return rc;
		struct blk_worker *w = &d->workers[i % d->nthreads];
		w->qmask |= 1ULL << i;
		d->queues[i].w = w;
	}
	for (unsigned t = 0; t < d->nthreads; t++) {
		struct blk_worker *w = &d->workers[t];
		w->index = t;
		w->dev = d;
		w->efd = -1;
		int rc = d->engine->init(w, &w->efd);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int blk_dev_attach(struct blk_dev *d, struct vhu_daemon *daemon)
{
	d->daemon = daemon;
	for (unsigned i = 0; i < d->opts.num_queues; i++)
		d->queues[i].vr = vhu_daemon_vring(daemon, i);
	for (unsigned t = 0; t < d->nthreads; t++) {
		struct blk_worker *w = &d->workers[t];
		if (w->efd < 0)
			continue;
		int rc = vhu_daemon_add_listener(daemon, t, w->efd, EPOLLIN,
		                                 (uint16_t)(d->opts.num_queues + t));
		if (rc < 0)
			return rc;
	}
	return d->engine->start ? d->engine->start(d) : 0;
}

void blk_dev_teardown(struct blk_dev *d)
{
	if (d->workers && d->engine->stop)
		d->engine->stop(d);
	if (d->workers) {
		for (unsigned t = 0; t < d->nthreads; t++)
			if (d->workers[t].dev)
				d->engine->fini(&d->workers[t]);
	}
	for (unsigned i = 0; i < BLK_MAX_QUEUES; i++) {
		struct blk_queue *q = &d->queues[i];
		for (unsigned s = 0; q->slots && s < q->nslots; s++)
			if (q->slots[s].mem)
				vhu_mem_unref(q->slots[s].mem);
		free(q->slots);
		free(q->iovs);
		free(q->free_stack);
		memset(q, 0, sizeof(*q));
	}
	free(d->workers);
	d->workers = NULL;
}
