/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-fs device (id 26) on libvhu: queue 0 is the high-priority
 * queue (FORGET), queues 1..N the request queues, each request queue on
 * its own worker thread (the hiprio queue shares the first).  Config space:
 * the tag and num_request_queues.
 *
 * A worker pops a chain and serves it at once (default), or hands it to
 * the pool (--thread-pool-size).  Requests that finish on another thread
 * (pool, blocking locks) push under the vring lock (mutex vrings) and only
 * if the front end that sent them is still the current one (a generation
 * counter, raised at every reset).
 */
#include <errno.h>
#include <linux/virtio_fs.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev.h"

static struct fs_dev *DEV(void *p)
{
	return p;
}

/* ---- request slots -------------------------------------------------- */

struct fs_slot *fs_slot_get(struct fs_dev *d)
{
	struct fs_slot *s = NULL;

	pthread_mutex_lock(&d->slot_lock);
	if (d->free_slots) {
		s = d->free_slots;
		d->free_slots = s->next;
		d->nfree_slots--;
	}
	pthread_mutex_unlock(&d->slot_lock);
	if (!s) {
		s = malloc(sizeof(*s) + d->iov_max * sizeof(struct iovec));
		if (!s)
			return NULL;
	}
	memset(s, 0, sizeof(*s));
	s->dev = d;
	s->chain.iov = s->iov;
	s->chain.iov_max = d->iov_max;
	return s;
}

void fs_slot_put(struct fs_dev *d, struct fs_slot *s)
{
	if (s->mem)
		vhu_mem_unref(s->mem);
	s->mem = NULL;
	pthread_mutex_lock(&d->slot_lock);
	if (d->nfree_slots < 64) {
		s->next = d->free_slots;
		d->free_slots = s;
		d->nfree_slots++;
		s = NULL;
	}
	pthread_mutex_unlock(&d->slot_lock);
	free(s);
}

/* Push a finished request from any thread (pool, lock waiter). */
void fs_slot_complete(struct fs_dev *d, struct fs_slot *s, int32_t written)
{
	struct vhu_vring *vr = s->vr;

	if (written >= 0) { /* else cancelled: the ring may be gone */
		vhu_vring_lock(vr);
		if (s->gen == atomic_load(&d->gen) && vhu_vring_started(vr)) {
			vhu_vring_push(vr, &s->chain, (uint32_t)written);
			vhu_vring_notify(vr);
		}
		vhu_vring_unlock(vr);
	}
	fs_slot_put(d, s);
	atomic_fetch_sub(&d->busy, 1);
}

static void on_complete(void *opaque, void *cookie, int32_t written)
{
	fs_slot_complete(opaque, cookie, written);
}

/* The server deferred a request: it outlives the callback, so its guest
 * memory needs a reference (inside the callback: still mapped). */
static void on_defer(void *opaque, void *cookie)
{
	struct fs_slot *s = cookie;
	if (!s->mem)
		s->mem = vhu_mem_ref(vhu_vring_mem(s->vr));
	atomic_fetch_add(&DEV(opaque)->busy, 1);
}

/* ---- vhu_backend_ops -------------------------------------------------- */

static unsigned op_num_queues(void *dev)
{
	return 1 + DEV(dev)->opts.num_request_queues;
}

static unsigned op_max_queue_size(void *dev)
{
	return DEV(dev)->opts.queue_size;
}

static uint64_t op_features(void *dev)
{
	return VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC) |
	       VHU_BIT(VHU_F_RING_EVENT_IDX) | VHU_BIT(VHU_F_RING_PACKED);
}

static uint64_t op_protocol_features(void *dev)
{
	uint64_t pf = VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_REPLY_ACK) |
	              VHU_BIT(VHU_PF_RESET_DEVICE) | VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS);
	/* The config space (tag) only when there is a tag to tell, as
	 * virtiofsd: QEMU's vhost-user-fs-pci keeps its own. */
	if (DEV(dev)->opts.tag[0])
		pf |= VHU_BIT(VHU_PF_CONFIG);
	return pf;
}

static int op_get_config(void *dev, uint32_t offset, void *buf, uint32_t size)
{
	struct fs_dev *d = dev;
	struct virtio_fs_config cfg;
	uint8_t space[VHU_MAX_CONFIG_SIZE] = {0};

	if (offset > sizeof(space) || size > sizeof(space) - offset)
		return -EINVAL;
	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.tag, d->opts.tag, strnlen(d->opts.tag, sizeof(cfg.tag)));
	cfg.num_request_queues = d->opts.num_request_queues;
	memcpy(space, &cfg, sizeof(cfg));
	memcpy(buf, space + offset, size);
	return (int)size;
}

static int op_set_config(void *dev, uint32_t offset, const void *buf, uint32_t size)
{
	return -EINVAL; /* virtio-fs config space is read-only */
}

static int op_queues_per_thread(void *dev, uint64_t *masks, unsigned max)
{
	struct fs_dev *d = dev;
	unsigned n = d->nthreads < max ? d->nthreads : max;

	for (unsigned t = 0; t < n; t++)
		masks[t] = 0;
	masks[0] |= 1; /* hiprio */
	for (unsigned q = 1; q <= d->opts.num_request_queues; q++)
		masks[(q - 1) % n] |= 1ULL << q;
	return (int)n;
}

static void op_reset_device(void *dev)
{
	struct fs_dev *d = dev;

	/* Requests of the old front end that finish from now on are dropped. */
	atomic_fetch_add(&d->gen, 1);
	fs_reset(d->fs);
	for (unsigned i = 0; i < 30000 && atomic_load(&d->busy); i++)
		usleep(1000);
	if (atomic_load(&d->busy))
		vhu_log(VHU_LOG_WARN, "vhu-fs: %u requests still running after reset",
		        atomic_load(&d->busy));
}

/*
 * A kick: pop, serve, push until the ring is empty.  The vring lock (other
 * threads push: pool, lock waits) is held while popping and pushing, and
 * dropped while a request is served: one lock/unlock per request.
 */
static int op_handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                           unsigned nvrings, unsigned thread)
{
	struct fs_dev *d = dev;
	struct fs_worker *w = &d->workers[thread];

	if (ev >= nvrings || thread >= d->nthreads)
		return 0;
	struct vhu_vring *vr = vrings[ev];
	/* FORGETs never wait: the hiprio queue is always served here. */
	bool pool = d->pool && ev != 0;
	int rc = 0;

	vhu_vring_lock(vr);
	for (;;) {
		struct fs_slot *s = w->spare ? w->spare : fs_slot_get(d);
		w->spare = NULL;
		if (!s) {
			rc = -ENOMEM;
			break;
		}
		s->vr = vr;
		s->gen = atomic_load(&d->gen);
		int n = vhu_vring_pop(vr, &s->chain);
		w->spare = s;
		if (n == -E2BIG) {
			/* Too many buffers to even read the request. */
			vhu_log(VHU_LOG_WARN, "vhu-fs: queue %u: chain of more than %u buffers", ev,
			        d->iov_max);
			vhu_vring_push(vr, &s->chain, 0);
			continue;
		}
		if (n <= 0) {
			rc = n;
			break;
		}
		vhu_vring_unlock(vr);
		if (pool) {
			w->spare = NULL;
			s->mem = vhu_mem_ref(vhu_vring_mem(vr));
			atomic_fetch_add(&d->busy, 1);
			fs_pool_submit(d->pool, s);
			vhu_vring_lock(vr);
			continue;
		}
		uint32_t written = 0;
		bool deferred = fs_handle(d->fs, &w->t, &s->chain, s, &written) == 1;
		vhu_vring_lock(vr);
		if (deferred)
			w->spare = NULL; /* the lock waiter's now */
		else
			vhu_vring_push(vr, &s->chain, written);
	}
	vhu_vring_notify(vr);
	vhu_vring_unlock(vr);
	return rc;
}

const struct vhu_backend_ops fs_backend_ops = {
    .num_queues = op_num_queues,
    .max_queue_size = op_max_queue_size,
    .features = op_features,
    .protocol_features = op_protocol_features,
    .reset_device = op_reset_device,
    .get_config = op_get_config,
    .set_config = op_set_config,
    .queues_per_thread = op_queues_per_thread,
    .handle_event = op_handle_event,
};

/* ---- life cycle ----------------------------------------------------- */

int fs_dev_new(struct fs_dev **out, const struct fs_opts *o, int root_fd, int proc_fd)
{
	struct fs_dev *d = calloc(1, sizeof(*d));
	int err;

	if (!d) {
		close(root_fd);
		close(proc_fd);
		return -ENOMEM;
	}
	d->opts = *o;
	d->iov_max = 2 * o->queue_size + 16;
	d->nthreads = o->num_request_queues;
	pthread_mutex_init(&d->slot_lock, NULL);
	err = fs_new(&d->fs, o, root_fd, proc_fd, on_complete, d);
	if (err < 0) {
		pthread_mutex_destroy(&d->slot_lock);
		free(d);
		return err;
	}
	d->fs->defer = on_defer;
	d->workers = calloc(d->nthreads, sizeof(*d->workers));
	if (!d->workers) {
		fs_dev_free(d);
		return -ENOMEM;
	}
	for (unsigned t = 0; t < d->nthreads; t++) {
		err = fs_thread_init(&d->workers[t].t, d->iov_max);
		if (err < 0) {
			fs_dev_free(d);
			return err;
		}
	}
	if (o->thread_pool_size) {
		err = fs_pool_new(&d->pool, d, o->thread_pool_size);
		if (err < 0) {
			fs_dev_free(d);
			return err;
		}
	}
	*out = d;
	return 0;
}

void fs_dev_free(struct fs_dev *d)
{
	if (!d)
		return;
	fs_pool_free(d->pool);
	/* The server first: cancelling its waits returns their slots. */
	fs_free(d->fs);
	for (unsigned t = 0; d->workers && t < d->nthreads; t++) {
		fs_thread_fini(&d->workers[t].t);
		free(d->workers[t].spare);
	}
	free(d->workers);
	while (d->free_slots) {
		struct fs_slot *s = d->free_slots;
		d->free_slots = s->next;
		free(s);
	}
	pthread_mutex_destroy(&d->slot_lock);
	free(d);
}

struct fs *fs_dev_fs(struct fs_dev *d)
{
	return d->fs;
}
