/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vhost-user protocol handler: one short function per front-end
 * request, picked from a table that also states each request's payload
 * size, fd count, required protocol feature and whether it has a reply.
 *
 * Refusals.  A request that fails validation or whose action fails is
 * refused: the reason is logged, every fd it carried is closed, and
 *  - if REPLY_ACK was negotiated and NEED_REPLY is set, the ack carries
 *    the positive errno (non-zero = failure);
 *  - a request that has a reply payload gets a reply that says failure:
 *    GET_CONFIG an empty payload (as the spec says), SET_LOG_BASE /
 *    SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE / GET_SHARED_OBJECT a
 *    non-zero u64, GET_INFLIGHT_FD mmap_size 0 without fd, and every other
 *    GET_* (no failure encoding in the spec) an empty payload, which any
 *    front end reading a u64 or a vring state rejects as a short reply;
 *  - the connection stays up.  It is dropped only for framing errors (see
 *    vhu_msg_recv) or when a reply cannot be sent.
 *
 * Rings.  A ring starts on SET_VRING_KICK once it has a size, addresses
 * and a memory table; without VHOST_USER_F_PROTOCOL_FEATURES it is enabled
 * then, otherwise SET_VRING_ENABLE decides.  GET_VRING_BASE stops it and
 * closes its kick and call fds.  A ring the worker may be running is only
 * changed after pausing it (ring_pause) and is resumed afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dev.h"

#define ANY_SIZE UINT32_MAX
#define NO_PF    (-1)

enum reply_kind {
	R_NONE,    /* ack only (REPLY_ACK + NEED_REPLY) */
	R_PAYLOAD, /* always replies */
	R_IF_PF,   /* replies only when its protocol feature was negotiated */
};

struct req_ctx {
	struct vhu_daemon *d;
	struct vhu_conn *c;
	struct vhu_msg *m;
	struct vhu_msg *r; /* reply being built */
	bool replied;      /* r holds a reply to send */
};

typedef int (*req_fn)(struct req_ctx *x);

struct req_desc {
	req_fn fn;
	uint32_t size; /* exact payload size, or ANY_SIZE (checked by fn) */
	uint8_t fds_min, fds_max;
	int8_t pf; /* protocol feature that must be negotiated */
	enum reply_kind reply;
};

/* ---- helpers ---------------------------------------------------------- */

static int refuse(struct req_ctx *x, int err, const char *why)
{
	VHU_LOGW("%s: %s refused: %s (%s)", x->d->name, vhu_request_name(x->m->hdr.request), why,
	         strerror(-err));
	return err;
}

/* Take ownership of fd i of the request (it is not closed afterwards). */
static int take_fd(struct req_ctx *x, unsigned i)
{
	int fd = x->m->fds[i];

	x->m->fds[i] = -1;
	return fd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void reply_u64(struct req_ctx *x, uint64_t v)
{
	x->r->hdr.size = sizeof(uint64_t);
	x->r->payload.u64 = v;
	x->replied = true;
}

static bool pf_acked(struct vhu_conn *c, int pf)
{
	return c->acked_pf & VHU_BIT(pf);
}

static bool pf_feature_acked(struct vhu_conn *c)
{
	return c->acked_features & VHU_BIT(VHU_F_PROTOCOL_FEATURES);
}

static struct vhu_vring *ring(struct req_ctx *x, uint32_t idx)
{
	return idx < x->d->nq ? &x->d->vrings[idx] : NULL;
}

static void update_active(struct vhu_daemon *d, unsigned q)
{
	struct vhu_vring *vr = &d->vrings[q];

	vhu_worker_set_active(d, q, vr->started && vr->enabled && d->conn.q[q].watched);
}

/*
 * Stop the data path before changing ring q: no handle_event for it any
 * more, every worker parked between batches (so no callback, of any
 * queue, sees the ring half-changed, and no event collected before an fd
 * left epoll is delivered after), kick fd optionally unwatched, vring lock
 * taken (keeps out the device's other threads).  ring_resume() undoes it.
 */
static void ring_pause(struct vhu_daemon *d, unsigned q, bool unwatch)
{
	struct vhu_vring *vr = &d->vrings[q];
	struct vhu_qctl *qc = &d->conn.q[q];

	vhu_worker_set_active(d, q, false);
	vhu_workers_park(d);
	if (unwatch && qc->watched) {
		vhu_worker_unwatch_kick(d, q, vr->kick_fd);
		qc->watched = false;
	}
	vhu_vring_lock(vr);
}

static void ring_resume(struct vhu_daemon *d, unsigned q)
{
	vhu_vring_unlock(&d->vrings[q]);
	vhu_workers_unpark(d);
	update_active(d, q);
}

/* Dirty logging is on for every ring when LOG_ALL is acked and a log is
 * mapped. */
static void apply_dirty(struct vhu_daemon *d)
{
	struct vhu_conn *c = &d->conn;
	struct vhu_dirty *log = (c->acked_features & VHU_BIT(VHU_F_LOG_ALL)) ? c->dirty : NULL;

	for (unsigned q = 0; q < d->nq; q++) {
		struct vhu_vring *vr = &d->vrings[q];

		vhu_vring_lock(vr);
		atomic_store(&vr->dirty, log);
		vhu_vring_unlock(vr);
	}
}

/*
 * Publish a new memory snapshot (reference passed in): every ring sees it
 * (running rings re-translate their addresses), the device is told, and
 * the old snapshot is dropped only once no worker can still be inside a
 * callback that started under it.
 */
static int publish_mem(struct vhu_daemon *d, struct vhu_mem *mem)
{
	struct vhu_mem *old = d->conn.mem;
	int err;

	vhu_workers_park(d);
	for (unsigned q = 0; q < d->nq; q++) {
		struct vhu_vring *vr = &d->vrings[q];

		vhu_vring_lock(vr);
		if (vhu_vring_remap(vr, mem))
			VHU_LOGW("%s: queue %u: ring not inside the new memory table; failed",
			         d->name, q);
		vhu_vring_unlock(vr);
	}
	d->conn.mem = mem;
	vhu_workers_unpark(d);
	err = vhu_be_update_memory(&d->be, mem);
	/* Callbacks that started under the old table may still hold pointers
	 * into it (a device's own references are counted). */
	vhu_workers_synchronize(d);
	if (old)
		vhu_mem_unref(old);
	return err;
}

/* Stop every ring and forget its configuration (fds closed). */
static void rings_reset(struct vhu_daemon *d)
{
	for (unsigned q = 0; q < d->nq; q++)
		vhu_worker_set_active(d, q, false);
	vhu_workers_park(d);
	for (unsigned q = 0; q < d->nq; q++) {
		struct vhu_vring *vr = &d->vrings[q];

		if (d->conn.q[q].watched)
			vhu_worker_unwatch_kick(d, q, vr->kick_fd);
		d->conn.q[q].watched = false;
		d->conn.q[q].own_kick = false;
		vhu_vring_lock(vr);
		vhu_vring_reset(vr);
		vr->inflight = NULL;
		vhu_vring_unlock(vr);
	}
	vhu_workers_unpark(d);
}

static void set_acked_features(struct vhu_daemon *d, uint64_t f)
{
	d->conn.acked_features = f;
	atomic_store(&d->acked_features, f);
}

/* RESET_DEVICE / RESET_OWNER: rings stopped, features forgotten. */
static void device_reset(struct vhu_daemon *d)
{
	rings_reset(d);
	set_acked_features(d, 0);
	d->conn.features_set = false;
	d->conn.status = 0;
	apply_dirty(d);
	vhu_be_reset_device(&d->be);
}

/* Parse the u64 of SET_VRING_KICK/CALL/ERR and check its fd count. */
static int vring_fd_arg(struct req_ctx *x, unsigned *q, int *fd)
{
	uint64_t v = x->m->payload.u64;
	bool nofd = v & VHU_VRING_NOFD_MASK;

	if (v & ~(uint64_t)(VHU_VRING_IDX_MASK | VHU_VRING_NOFD_MASK))
		return refuse(x, -EINVAL, "reserved bits set");
	if (x->m->nfds != (nofd ? 0u : 1u))
		return refuse(x, -EINVAL, nofd ? "fd sent with the no-fd flag" : "fd missing");
	if (!ring(x, (uint32_t)(v & VHU_VRING_IDX_MASK)))
		return refuse(x, -EINVAL, "queue index out of range");
	*q = (unsigned)(v & VHU_VRING_IDX_MASK);
	*fd = nofd ? -1 : take_fd(x, 0);
	return 0;
}

/* ---- features and ownership ------------------------------------------ */

static int h_get_features(struct req_ctx *x)
{
	reply_u64(x, x->d->features);
	return 0;
}

static int h_set_features(struct req_ctx *x)
{
	struct vhu_daemon *d = x->d;
	uint64_t f = x->m->payload.u64;
	bool event_idx = f & VHU_BIT(VHU_F_RING_EVENT_IDX);

	if (f & ~d->features)
		return refuse(x, -EINVAL, "features not offered");
	set_acked_features(d, f);
	x->c->features_set = true;
	/* Without PROTOCOL_FEATURES rings are enabled from the start. */
	if (!(f & VHU_BIT(VHU_F_PROTOCOL_FEATURES))) {
		vhu_workers_park(d);
		for (unsigned q = 0; q < d->nq; q++) {
			struct vhu_vring *vr = &d->vrings[q];

			vhu_vring_lock(vr);
			vr->enabled = true;
			vhu_vring_unlock(vr);
		}
		vhu_workers_unpark(d);
		for (unsigned q = 0; q < d->nq; q++)
			update_active(d, q);
	}
	apply_dirty(d);
	vhu_be_set_event_idx(&d->be, event_idx);
	vhu_be_acked_features(&d->be, f);
	return 0;
}

/* A repeated SET_OWNER is accepted (libvhost-user and DPDK do; rust-vmm
 * refuses it): QEMU never repeats it, simple front ends re-negotiate
 * after RESET_DEVICE. */
static int h_set_owner(struct req_ctx *x)
{
	x->c->owner = true;
	return 0;
}

static int h_reset_owner(struct req_ctx *x)
{
	device_reset(x->d);
	x->c->owner = false;
	x->c->acked_pf = 0;
	return 0;
}

static int h_reset_device(struct req_ctx *x)
{
	device_reset(x->d);
	return 0;
}

static int h_get_protocol_features(struct req_ctx *x)
{
	reply_u64(x, x->d->pf);
	return 0;
}

static int h_set_protocol_features(struct req_ctx *x)
{
	uint64_t pf = x->m->payload.u64;

	if (pf & ~x->d->pf)
		return refuse(x, -EINVAL, "protocol features not offered");
	x->c->acked_pf = pf;
	return 0;
}

static int h_get_queue_num(struct req_ctx *x)
{
	if (!(x->d->pf & VHU_BIT(VHU_PF_MQ)))
		return refuse(x, -ENOTSUP, "MQ not offered");
	reply_u64(x, x->d->nq);
	return 0;
}

static int h_set_status(struct req_ctx *x)
{
	if (x->m->payload.u64 > 0xff)
		return refuse(x, -EINVAL, "status wider than 8 bits");
	x->c->status = (uint8_t)x->m->payload.u64;
	return 0;
}

static int h_get_status(struct req_ctx *x)
{
	reply_u64(x, x->c->status);
	return 0;
}

/* ---- memory ----------------------------------------------------------- */

static int h_set_mem_table(struct req_ctx *x)
{
	const struct vhu_mem_table_msg *t = &x->m->payload.memory;
	struct vhu_mem *mem = NULL;
	uint32_t n;
	int err;

	if (x->m->hdr.size < 8)
		return refuse(x, -EINVAL, "payload too short");
	n = t->nregions;
	if (n > VHU_MEM_BASELINE_REGIONS)
		return refuse(x, -EINVAL, "too many regions");
	if (x->m->hdr.size != 8 + n * sizeof(struct vhu_mem_region_desc))
		return refuse(x, -EINVAL, "payload size does not match nregions");
	if (x->m->nfds != n)
		return refuse(x, -EINVAL, "fd count does not match nregions");
	if (n == 0) {
		mem = vhu_mem_new_empty();
		err = mem ? 0 : -ENOMEM;
	} else {
		err = vhu_mem_new_table(&mem, t->regions, x->m->fds, n);
	}
	if (err)
		return refuse(x, err, "cannot map the regions");
	err = publish_mem(x->d, mem);
	return err ? refuse(x, err, "device update_memory failed") : 0;
}

static int h_get_max_mem_slots(struct req_ctx *x)
{
	reply_u64(x, VHU_MAX_MEM_SLOTS);
	return 0;
}

static int h_add_mem_region(struct req_ctx *x)
{
	struct vhu_mem *base = x->c->mem, *tmp = NULL, *mem = NULL;
	int err;

	if (!base && !(base = tmp = vhu_mem_new_empty()))
		return refuse(x, -ENOMEM, "out of memory");
	err = vhu_mem_add(&mem, base, &x->m->payload.mem_reg.region, x->m->fds[0]);
	if (tmp)
		vhu_mem_unref(tmp);
	if (err)
		return refuse(x, err, "cannot map the region");
	err = publish_mem(x->d, mem);
	return err ? refuse(x, err, "device update_memory failed") : 0;
}

static int h_rem_mem_region(struct req_ctx *x)
{
	struct vhu_mem *mem = NULL;
	int err;

	if (!x->c->mem)
		return refuse(x, -ENOENT, "no memory table");
	err = vhu_mem_remove(&mem, x->c->mem, &x->m->payload.mem_reg.region);
	if (err)
		return refuse(x, err, "no such region");
	err = publish_mem(x->d, mem);
	return err ? refuse(x, err, "device update_memory failed") : 0;
}

/* ---- migration log ---------------------------------------------------- */

static int h_set_log_base(struct req_ctx *x)
{
	struct vhu_dirty *log = NULL, *old = x->c->dirty;
	int err = vhu_dirty_new(&log, x->m->fds[0], x->m->payload.log.mmap_size,
	                        x->m->payload.log.mmap_offset);

	reply_u64(x, err ? (uint64_t)-err : 0);
	if (err)
		return refuse(x, err, "cannot map the log");
	x->c->dirty = log;
	apply_dirty(x->d);
	vhu_workers_synchronize(x->d);
	if (old)
		vhu_dirty_free(old);
	return 0;
}

static int h_set_log_fd(struct req_ctx *x)
{
	if (x->m->hdr.size != 0 && x->m->hdr.size != 8)
		return refuse(x, -EINVAL, "bad payload size");
	close_fd(&x->c->log_call_fd);
	x->c->log_call_fd = take_fd(x, 0);
	return 0;
}

/* ---- rings ------------------------------------------------------------ */

static int h_set_vring_num(struct req_ctx *x)
{
	struct vhu_vring *vr = ring(x, x->m->payload.state.index);
	uint32_t num = x->m->payload.state.num;
	bool packed = x->c->acked_features & VHU_BIT(VHU_F_RING_PACKED);

	if (!vr)
		return refuse(x, -EINVAL, "queue index out of range");
	/* Packed rings may have any size (virtio 1.1 2.8). */
	if (num == 0 || num > x->d->max_qsize || (!packed && (num & (num - 1))))
		return refuse(x, -EINVAL, "size not a power of two up to max_queue_size");
	if (vr->started)
		return refuse(x, -EBUSY, "ring is running");
	vhu_vring_lock(vr);
	vr->num = num;
	vhu_vring_unlock(vr);
	return 0;
}

static int h_set_vring_addr(struct req_ctx *x)
{
	const struct vhu_vring_addr *a = &x->m->payload.addr;
	struct vhu_vring *vr = ring(x, a->index);
	int err = 0;

	if (!vr)
		return refuse(x, -EINVAL, "queue index out of range");
	if (a->flags & ~VHU_BIT(VHU_VRING_F_LOG))
		return refuse(x, -EINVAL, "unknown flags");
	if (!vr->started) {
		vhu_vring_lock(vr);
		vr->addr = *a;
		vr->addr_set = true;
		vhu_vring_unlock(vr);
		return 0;
	}
	/* Running ring (QEMU toggles the log flag during migration). */
	ring_pause(x->d, a->index, false);
	vr->addr = *a;
	err = vhu_vring_remap(vr, x->c->mem);
	ring_resume(x->d, a->index);
	return err ? refuse(x, err, "addresses not inside guest memory; ring failed") : 0;
}

static int h_set_vring_base(struct req_ctx *x)
{
	struct vhu_vring *vr = ring(x, x->m->payload.state.index);

	if (!vr)
		return refuse(x, -EINVAL, "queue index out of range");
	/* Packed: QEMU sends the used position and wrap in bits 16-31
	 * (vring_packed.c checks the value when the ring starts). */
	if (x->m->payload.state.num > 0xffff &&
	    !(x->c->acked_features & VHU_BIT(VHU_F_RING_PACKED)))
		return refuse(x, -EINVAL, "base out of range");
	if (vr->started)
		return refuse(x, -EBUSY, "ring is running");
	vhu_vring_lock(vr);
	vr->base = x->m->payload.state.num;
	vhu_vring_unlock(vr);
	return 0;
}

static int h_get_vring_base(struct req_ctx *x)
{
	uint32_t q = x->m->payload.state.index;
	struct vhu_vring *vr = ring(x, q);

	if (!vr)
		return refuse(x, -EINVAL, "queue index out of range");
	ring_pause(x->d, q, true);
	if (vr->started)
		vr->base = vhu_vring_stop(vr);
	close_fd(&vr->kick_fd);
	close_fd(&vr->call_fd);
	x->c->q[q].own_kick = false;
	ring_resume(x->d, q);
	x->r->hdr.size = sizeof(struct vhu_vring_state);
	x->r->payload.state.index = q;
	x->r->payload.state.num = vr->base;
	x->replied = true;
	return 0;
}

/* Start ring q (locked, paused) if it is not running yet. */
static int ring_start(struct vhu_daemon *d, unsigned q)
{
	struct vhu_vring *vr = &d->vrings[q];
	struct vhu_conn *c = &d->conn;

	if (vr->started)
		return 0;
	if (!c->mem || !vr->addr_set || !vr->num)
		return -EINVAL;
	if (!(c->acked_features & VHU_BIT(VHU_F_PROTOCOL_FEATURES)))
		vr->enabled = true;
	vr->inflight = c->inflight ? vhu_inflight_queue(c->inflight, q) : NULL;
	return vhu_vring_start(vr, c->mem, c->acked_features);
}

/* Install kick fd `fd` (ownership taken; -1: our own eventfd, for NOFD and
 * in-band kicks), start the ring and watch the fd. */
static int kick_setup(struct req_ctx *x, unsigned q, int fd)
{
	struct vhu_daemon *d = x->d;
	struct vhu_vring *vr = &d->vrings[q];
	struct vhu_qctl *qc = &x->c->q[q];
	bool own = fd < 0;
	int err, fl;

	if (d->queue_worker[q] < 0) {
		close_fd(&fd);
		return refuse(x, -ENOTSUP, "no worker thread serves this queue");
	}
	if (own && (fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return refuse(x, -errno, "eventfd");
	/* A kick read must never block the worker (hostile duplicate fds). */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
		close_fd(&fd);
		return refuse(x, -EBADF, "kick fd unusable");
	}
	ring_pause(d, q, true);
	close_fd(&vr->kick_fd);
	vr->kick_fd = fd;
	qc->own_kick = own;
	err = ring_start(d, q);
	if (!err)
		err = vhu_worker_watch_kick(d, q, fd);
	if (err) {
		vhu_vring_stop(vr);
		close_fd(&vr->kick_fd);
		qc->own_kick = false;
	} else {
		qc->watched = true;
	}
	ring_resume(d, q);
	return err ? refuse(x, err, "ring cannot start (size, addresses or memory)") : 0;
}

static int h_set_vring_kick(struct req_ctx *x)
{
	unsigned q;
	int fd, err = vring_fd_arg(x, &q, &fd);

	return err ? err : kick_setup(x, q, fd);
}

static int swap_fd(struct req_ctx *x, bool call)
{
	unsigned q;
	int fd, err = vring_fd_arg(x, &q, &fd);
	struct vhu_vring *vr;

	if (err)
		return err;
	vr = &x->d->vrings[q];
	/* The worker may be signalling the old fd: wait before closing it. */
	ring_pause(x->d, q, false);
	if (call) {
		close_fd(&vr->call_fd);
		vr->call_fd = fd;
	} else {
		close_fd(&vr->err_fd);
		vr->err_fd = fd;
	}
	ring_resume(x->d, q);
	return 0;
}

static int h_set_vring_call(struct req_ctx *x)
{
	return swap_fd(x, true);
}

static int h_set_vring_err(struct req_ctx *x)
{
	return swap_fd(x, false);
}

static int h_set_vring_enable(struct req_ctx *x)
{
	uint32_t q = x->m->payload.state.index, on = x->m->payload.state.num;
	struct vhu_vring *vr = ring(x, q);

	/* QEMU 7.2's vhost-user-net negotiates protocol features but leaves
	 * VHOST_USER_F_PROTOCOL_FEATURES out of SET_FEATURES, then sends
	 * SET_VRING_ENABLE all the same (libvhost-user and DPDK accept it):
	 * protocol features having been set is enough. */
	if (!pf_feature_acked(x->c) && !x->c->acked_pf)
		return refuse(x, -EINVAL, "PROTOCOL_FEATURES not negotiated");
	if (!vr)
		return refuse(x, -EINVAL, "queue index out of range");
	if (on > 1)
		return refuse(x, -EINVAL, "enable must be 0 or 1");
	ring_pause(x->d, q, false);
	vr->enabled = on;
	ring_resume(x->d, q);
	return 0;
}

static int h_vring_kick(struct req_ctx *x)
{
	uint32_t q = x->m->payload.state.index;
	struct vhu_vring *vr = ring(x, q);
	uint64_t one = 1;
	int err;

	if (!vr)
		return refuse(x, -EINVAL, "queue index out of range");
	if (x->m->payload.state.num != 0)
		return refuse(x, -EINVAL, "reserved field not zero");
	/* The spec lets an in-band kick start a ring that has no kick fd. */
	if (vr->kick_fd < 0 && (err = kick_setup(x, q, -1)))
		return err;
	if (write(vr->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return refuse(x, -errno, "kick write");
	return 0;
}

/* ---- config space ----------------------------------------------------- */

static int config_args(struct req_ctx *x)
{
	const struct vhu_config_msg *cfg = &x->m->payload.config;

	if (x->m->hdr.size < VHU_CONFIG_HDR_SIZE)
		return refuse(x, -EINVAL, "payload too short");
	if (cfg->size == 0 || cfg->size > VHU_MAX_CONFIG_SIZE ||
	    x->m->hdr.size != VHU_CONFIG_HDR_SIZE + cfg->size)
		return refuse(x, -EINVAL, "size does not match payload");
	/* Config spaces are small: the library bounds them, not each device. */
	if (cfg->offset > VHU_MAX_CONFIG_SIZE - cfg->size)
		return refuse(x, -EINVAL, "offset + size past 256 bytes");
	return 0;
}

static int h_get_config(struct req_ctx *x)
{
	const struct vhu_config_msg *cfg = &x->m->payload.config;
	struct vhu_config_msg *out = &x->r->payload.config;
	int err = config_args(x), n;

	if (err)
		return err;
	memset(out->region, 0, cfg->size);
	n = vhu_be_get_config(&x->d->be, cfg->offset, out->region, cfg->size);
	if (n < 0 || (uint32_t)n != cfg->size)
		return refuse(x, n < 0 ? n : -EIO, "device get_config failed");
	out->offset = cfg->offset;
	out->size = cfg->size;
	out->flags = cfg->flags;
	x->r->hdr.size = x->m->hdr.size;
	x->replied = true;
	return 0;
}

static int h_set_config(struct req_ctx *x)
{
	const struct vhu_config_msg *cfg = &x->m->payload.config;
	int err = config_args(x);

	if (err)
		return err;
	if (cfg->flags > 1) /* WRITABLE = 0, MIGRATION = 1 */
		return refuse(x, -EINVAL, "unknown flags");
	err = vhu_be_set_config(&x->d->be, cfg->offset, cfg->region, cfg->size);
	return err ? refuse(x, err, "device set_config failed") : 0;
}

/* ---- channels and device hooks ---------------------------------------- */

static int h_set_backend_req_fd(struct req_ctx *x)
{
	struct vhu_channel *old = x->c->channel, *ch;

	ch = vhu_channel_new(take_fd(x, 0), pf_acked(x->c, VHU_PF_REPLY_ACK));
	if (!ch)
		return refuse(x, -ENOMEM, "out of memory");
	x->c->channel = ch;
	vhu_be_set_backend_req_fd(&x->d->be, ch);
	if (old) {
		vhu_workers_synchronize(x->d); /* callbacks may still use it */
		vhu_channel_free(old);
	}
	return 0;
}

static int h_gpu_set_socket(struct req_ctx *x)
{
	int err = vhu_be_set_gpu_socket(&x->d->be, x->m->fds[0]);

	if (err)
		return refuse(x, err, "device set_gpu_socket failed");
	take_fd(x, 0); /* the device owns it now */
	return 0;
}

static int h_get_shared_object(struct req_ctx *x)
{
	int fd = vhu_be_get_shared_object(&x->d->be, x->m->payload.object.uuid);

	if (fd < 0) {
		reply_u64(x, (uint64_t)-fd);
		return refuse(x, fd, "device get_shared_object failed");
	}
	reply_u64(x, 0);
	x->r->fds[0] = fd;
	x->r->nfds = 1;
	return 0;
}

/* SET_DEVICE_STATE_FD reply: bits 0-7 error, bit 8 "no fd follows". */
static int h_set_device_state_fd(struct req_ctx *x)
{
	const struct vhu_device_state_msg *s = &x->m->payload.state_xfer;
	int reply_fd = -1, err;
	uint64_t code;

	if (s->direction > VHU_STATE_LOAD || s->phase != VHU_STATE_PHASE_STOPPED) {
		reply_u64(x, 0x100 | EINVAL);
		return refuse(x, -EINVAL, "unknown direction or phase");
	}
	err = vhu_be_set_device_state_fd(&x->d->be, (enum vhu_state_direction)s->direction,
	                                 VHU_STATE_PHASE_STOPPED, x->m->fds[0], &reply_fd);
	if (err) {
		close_fd(&reply_fd);
		code = (uint64_t)-err & 0xff;
		reply_u64(x, 0x100 | (code ? code : 1));
		return refuse(x, err, "device set_device_state_fd failed");
	}
	take_fd(x, 0);
	reply_u64(x, reply_fd < 0 ? 0x100 : 0);
	if (reply_fd >= 0) {
		x->r->fds[0] = reply_fd;
		x->r->nfds = 1;
	}
	return 0;
}

static int h_check_device_state(struct req_ctx *x)
{
	int err = vhu_be_check_device_state(&x->d->be);

	reply_u64(x, err ? (uint64_t)-err : 0);
	return err ? refuse(x, err, "device state check failed") : 0;
}

/* ---- inflight --------------------------------------------------------- */

static int inflight_args(struct req_ctx *x)
{
	const struct vhu_inflight_msg *in = &x->m->payload.inflight;

	if (in->num_queues == 0 || in->num_queues > x->d->nq)
		return refuse(x, -EINVAL, "num_queues out of range");
	if (in->queue_size == 0 || in->queue_size > x->d->max_qsize)
		return refuse(x, -EINVAL, "queue_size out of range");
	for (unsigned q = 0; q < x->d->nq; q++)
		if (x->d->vrings[q].started)
			return refuse(x, -EBUSY, "a ring is running");
	return 0;
}

static void inflight_replace(struct vhu_daemon *d, struct vhu_inflight *inf)
{
	struct vhu_inflight *old = d->conn.inflight;

	for (unsigned q = 0; q < d->nq; q++)
		d->vrings[q].inflight = NULL; /* rings are stopped */
	d->conn.inflight = inf;
	if (old)
		vhu_inflight_free(old);
}

static int h_get_inflight_fd(struct req_ctx *x)
{
	const struct vhu_inflight_msg *in = &x->m->payload.inflight;
	struct vhu_inflight_msg *out = &x->r->payload.inflight;
	struct vhu_inflight *inf = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	x->r->hdr.size = sizeof(*out);
	x->replied = true; /* mmap_size 0 without fd says failure */
	if ((err = inflight_args(x)))
		return err;
	err = vhu_inflight_create(&inf, in->num_queues, in->queue_size);
	if (err)
		return refuse(x, err, "cannot create the region");
	inflight_replace(x->d, inf);
	out->mmap_size = inf->size;
	out->mmap_offset = 0;
	out->num_queues = inf->num_queues;
	out->queue_size = inf->queue_size;
	x->r->fds[0] = inf->fd;
	x->r->nfds = 1;
	return 0;
}

static int h_set_inflight_fd(struct req_ctx *x)
{
	const struct vhu_inflight_msg *in = &x->m->payload.inflight;
	struct vhu_inflight *inf = NULL;
	int err = inflight_args(x);

	if (err)
		return err;
	err = vhu_inflight_set(&inf, x->m->fds[0], in->mmap_size, in->mmap_offset, in->num_queues,
	                       in->queue_size);
	if (err)
		return refuse(x, err, "cannot map the region");
	take_fd(x, 0);
	inflight_replace(x->d, inf);
	return 0;
}

static int h_unsupported(struct req_ctx *x)
{
	return refuse(x, -ENOTSUP, "not implemented");
}

/* ---- dispatch --------------------------------------------------------- */

#define U64   sizeof(uint64_t)
#define STATE sizeof(struct vhu_vring_state)
#define REG   sizeof(struct vhu_mem_single_msg)
#define INFL  sizeof(struct vhu_inflight_msg)

static const struct req_desc table[VHU_REQ_MAX] = {
    [VHU_REQ_GET_FEATURES] = {h_get_features, 0, 0, 0, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_FEATURES] = {h_set_features, U64, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_SET_OWNER] = {h_set_owner, 0, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_RESET_OWNER] = {h_reset_owner, 0, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_SET_MEM_TABLE] = {h_set_mem_table, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_SET_LOG_BASE] = {h_set_log_base, sizeof(struct vhu_log_msg), 1, 1, VHU_PF_LOG_SHMFD,
                              R_IF_PF},
    [VHU_REQ_SET_LOG_FD] = {h_set_log_fd, ANY_SIZE, 1, 1, NO_PF, R_NONE},
    [VHU_REQ_SET_VRING_NUM] = {h_set_vring_num, STATE, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_SET_VRING_ADDR] = {h_set_vring_addr, sizeof(struct vhu_vring_addr), 0, 0, NO_PF,
                                R_NONE},
    [VHU_REQ_SET_VRING_BASE] = {h_set_vring_base, STATE, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_GET_VRING_BASE] = {h_get_vring_base, STATE, 0, 0, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_VRING_KICK] = {h_set_vring_kick, U64, 0, 1, NO_PF, R_NONE},
    [VHU_REQ_SET_VRING_CALL] = {h_set_vring_call, U64, 0, 1, NO_PF, R_NONE},
    [VHU_REQ_SET_VRING_ERR] = {h_set_vring_err, U64, 0, 1, NO_PF, R_NONE},
    [VHU_REQ_GET_PROTOCOL_FEATURES] = {h_get_protocol_features, 0, 0, 0, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_PROTOCOL_FEATURES] = {h_set_protocol_features, U64, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_GET_QUEUE_NUM] = {h_get_queue_num, 0, 0, 0, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_VRING_ENABLE] = {h_set_vring_enable, STATE, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_SEND_RARP] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_NET_SET_MTU] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_SET_BACKEND_REQ_FD] = {h_set_backend_req_fd, 0, 1, 1, VHU_PF_BACKEND_REQ, R_NONE},
    [VHU_REQ_IOTLB_MSG] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_VRING_ENDIAN] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_GET_CONFIG] = {h_get_config, ANY_SIZE, 0, 0, VHU_PF_CONFIG, R_PAYLOAD},
    [VHU_REQ_SET_CONFIG] = {h_set_config, ANY_SIZE, 0, 0, VHU_PF_CONFIG, R_NONE},
    [VHU_REQ_CREATE_CRYPTO_SESSION] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_PAYLOAD},
    [VHU_REQ_CLOSE_CRYPTO_SESSION] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_POSTCOPY_ADVISE] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_PAYLOAD},
    [VHU_REQ_POSTCOPY_LISTEN] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_POSTCOPY_END] = {h_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_PAYLOAD},
    [VHU_REQ_GET_INFLIGHT_FD] = {h_get_inflight_fd, INFL, 0, 0, VHU_PF_INFLIGHT_SHMFD, R_PAYLOAD},
    [VHU_REQ_SET_INFLIGHT_FD] = {h_set_inflight_fd, INFL, 1, 1, VHU_PF_INFLIGHT_SHMFD, R_NONE},
    [VHU_REQ_GPU_SET_SOCKET] = {h_gpu_set_socket, 0, 1, 1, NO_PF, R_NONE},
    [VHU_REQ_RESET_DEVICE] = {h_reset_device, 0, 0, 0, VHU_PF_RESET_DEVICE, R_NONE},
    [VHU_REQ_VRING_KICK] = {h_vring_kick, STATE, 0, 0, VHU_PF_INBAND_NOTIFICATIONS, R_NONE},
    [VHU_REQ_GET_MAX_MEM_SLOTS] = {h_get_max_mem_slots, 0, 0, 0, VHU_PF_CONFIGURE_MEM_SLOTS,
                                   R_PAYLOAD},
    [VHU_REQ_ADD_MEM_REGION] = {h_add_mem_region, REG, 1, 1, VHU_PF_CONFIGURE_MEM_SLOTS, R_NONE},
    [VHU_REQ_REM_MEM_REGION] = {h_rem_mem_region, REG, 0, 1, VHU_PF_CONFIGURE_MEM_SLOTS, R_NONE},
    [VHU_REQ_SET_STATUS] = {h_set_status, U64, 0, 0, VHU_PF_STATUS, R_NONE},
    [VHU_REQ_GET_STATUS] = {h_get_status, 0, 0, 0, VHU_PF_STATUS, R_PAYLOAD},
    [VHU_REQ_GET_SHARED_OBJECT] = {h_get_shared_object, sizeof(struct vhu_shared_object_msg), 0, 0,
                                   VHU_PF_SHARED_OBJECT, R_PAYLOAD},
    [VHU_REQ_SET_DEVICE_STATE_FD] = {h_set_device_state_fd, sizeof(struct vhu_device_state_msg), 1,
                                     1, VHU_PF_DEVICE_STATE, R_PAYLOAD},
    [VHU_REQ_CHECK_DEVICE_STATE] = {h_check_device_state, 0, 0, 0, VHU_PF_DEVICE_STATE, R_PAYLOAD},
};

/* Checks every request shares: size, fd count, protocol feature. */
static int precheck(struct req_ctx *x, const struct req_desc *rd)
{
	const struct vhu_msg *m = x->m;

	if (!rd->fn)
		return refuse(x, -ENOSYS, "unknown request");
	if (rd->size != ANY_SIZE && m->hdr.size != rd->size)
		return refuse(x, -EINVAL, "wrong payload size");
	if (m->nfds < rd->fds_min || m->nfds > rd->fds_max)
		return refuse(x, -EINVAL, "wrong number of fds");
	if (rd->pf != NO_PF && !pf_acked(x->c, rd->pf))
		return refuse(x, -ENOTSUP, "protocol feature not negotiated");
	return 0;
}

static bool wants_reply(struct req_ctx *x, const struct req_desc *rd)
{
	if (rd->reply == R_PAYLOAD)
		return true;
	return rd->reply == R_IF_PF && pf_acked(x->c, rd->pf);
}

int vhu_conn_handle(struct vhu_daemon *d, struct vhu_msg *m)
{
	static const struct req_desc none;
	uint32_t req = m->hdr.request;
	const struct req_desc *rd = req < VHU_REQ_MAX ? &table[req] : &none;
	struct req_ctx x = {.d = d, .c = &d->conn, .m = m, .r = &d->conn.reply};
	bool reply;
	int err;

	VHU_LOGD("%s: %s size %u fds %u", d->name, vhu_request_name(req), m->hdr.size, m->nfds);
	x.r->hdr.request = req;
	x.r->hdr.flags = VHU_HDR_VERSION | VHU_HDR_REPLY;
	x.r->hdr.size = 0;
	x.r->nfds = 0;
	err = precheck(&x, rd);
	if (!err)
		err = rd->fn(&x);
	vhu_msg_close_fds(m);
	reply = wants_reply(&x, rd);
	if (!reply && (m->hdr.flags & VHU_HDR_NEED_REPLY) && pf_acked(x.c, VHU_PF_REPLY_ACK)) {
		reply_u64(&x, err ? (uint64_t)-err : 0);
		reply = true;
	}
	if (!reply)
		return 0;
	if (!x.replied) /* refused: an empty payload says failure */
		x.r->hdr.size = 0;
	err = vhu_msg_send_stop(x.c->sock, x.r, d->stop_fd);
	/* Reply fds we created are ours; the inflight fd is kept. */
	if (x.r->nfds && !(req == VHU_REQ_GET_INFLIGHT_FD))
		vhu_msg_close_fds(x.r);
	x.r->nfds = 0;
	if (err && err != -ECANCELED)
		VHU_LOGW("%s: cannot send the %s reply: %s", d->name, vhu_request_name(req),
		         strerror(-err));
	return err;
}

/* ---- connection lifecycle --------------------------------------------- */

void vhu_conn_begin(struct vhu_daemon *d, int sock)
{
	struct vhu_conn *c = &d->conn;

	c->sock = sock;
	c->owner = c->features_set = false;
	c->acked_pf = 0;
	c->status = 0;
	c->log_call_fd = -1;
	set_acked_features(d, 0);
	memset(c->q, 0, sizeof(c->q));
}

void vhu_conn_end(struct vhu_daemon *d)
{
	struct vhu_conn *c = &d->conn;

	rings_reset(d);
	vhu_be_reset_device(&d->be);
	for (unsigned q = 0; q < d->nq; q++) {
		struct vhu_vring *vr = &d->vrings[q];

		vhu_vring_lock(vr);
		atomic_store(&vr->mem, NULL);
		atomic_store(&vr->dirty, NULL);
		vhu_vring_unlock(vr);
	}
	vhu_workers_synchronize(d);
	if (c->mem)
		vhu_mem_unref(c->mem);
	c->mem = NULL;
	if (c->dirty)
		vhu_dirty_free(c->dirty);
	c->dirty = NULL;
	if (c->inflight)
		vhu_inflight_free(c->inflight);
	c->inflight = NULL;
	vhu_channel_free(c->channel);
	c->channel = NULL;
	close_fd(&c->log_call_fd);
	c->sock = -1;
	c->owner = false;
	c->features_set = false;
	c->acked_pf = 0;
}
