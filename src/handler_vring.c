/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring requests: SET_VRING_NUM/ADDR/BASE, GET_VRING_BASE,
 * SET_VRING_KICK/CALL/ERR, SET_VRING_ENABLE and VRING_KICK.
 *
 * A ring starts on SET_VRING_KICK once it has a size, addresses and a
 * memory table; without VHOST_USER_F_PROTOCOL_FEATURES it is enabled then,
 * otherwise SET_VRING_ENABLE decides.  GET_VRING_BASE stops it and closes
 * its kick and call fds.  A ring the worker may be running is only changed
 * after pausing it (ring_pause) and is resumed afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "handler.h"

/* Let the worker run the device for q if it is ready; tell the device
 * when q has just become ready. */
static void update_active(struct vhu_daemon *d, unsigned q)
{
	struct vhu_vring *vr = &d->vrings[q];
	struct vhu_qctl *qc = &d->conn.q[q];
	bool ready = vr->started && vr->enabled && qc->watched;

	if (ready && !qc->ready)
		vhu_lifecycle_queue_ready(d, q);
	qc->ready = ready;
	vhu_worker_set_active(d, q, ready);
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

void vhu_rings_reset(struct vhu_daemon *d)
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
		d->conn.q[q].ready = false;
		vhu_vring_lock(vr);
		vhu_vring_reset(vr);
		vr->inflight = NULL;
		vhu_vring_unlock(vr);
	}
	vhu_workers_unpark(d);
}

void vhu_rings_enable_all(struct vhu_daemon *d)
{
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

/* ---- request arguments ------------------------------------------------ */

/* *vr = ring idx, or refuse an out-of-range index. */
static int ring_arg(struct req_ctx *x, uint32_t idx, struct vhu_vring **vr)
{
	*vr = ring(x, idx);
	return *vr ? 0 : vhu_refuse(x, -EINVAL, "queue index out of range");
}

/* Size and base may only change while the ring is stopped. */
static int ring_stopped(struct req_ctx *x, const struct vhu_vring *vr)
{
	return vr->started ? vhu_refuse(x, -EBUSY, "ring is running") : 0;
}

/* Parse the u64 of SET_VRING_KICK/CALL/ERR and check its fd count. */
static int vring_fd_arg(struct req_ctx *x, unsigned *q, int *fd)
{
	uint64_t v = x->m->payload.u64;
	bool nofd = v & VHU_VRING_NOFD_MASK;

	*q = 0; /* set on refusal too: gcc cannot see vhu_refuse() fail */
	*fd = -1;
	if (v & ~(uint64_t)(VHU_VRING_IDX_MASK | VHU_VRING_NOFD_MASK))
		return vhu_refuse(x, -EINVAL, "reserved bits set");
	if (x->m->nfds != (nofd ? 0u : 1u))
		return vhu_refuse(x, -EINVAL, nofd ? "fd sent with the no-fd flag" : "fd missing");
	if (!ring(x, (uint32_t)(v & VHU_VRING_IDX_MASK)))
		return vhu_refuse(x, -EINVAL, "queue index out of range");
	*q = (unsigned)(v & VHU_VRING_IDX_MASK);
	*fd = nofd ? -1 : take_fd(x, 0);
	return 0;
}

/* ---- size, addresses, base -------------------------------------------- */

int vhu_on_set_vring_num(struct req_ctx *x)
{
	uint32_t num = x->m->payload.state.num;
	bool packed = feature_acked(x->c, VHU_F_RING_PACKED);
	struct vhu_vring *vr;
	int err;

	if ((err = ring_arg(x, x->m->payload.state.index, &vr)))
		return err;
	/* Packed rings may have any size (virtio 1.1 2.8). */
	if (num == 0 || num > x->d->max_qsize || (!packed && (num & (num - 1))))
		return vhu_refuse(x, -EINVAL, "size not a power of two up to max_queue_size");
	if ((err = ring_stopped(x, vr)))
		return err;
	vhu_vring_lock(vr);
	vr->num = num;
	vhu_vring_unlock(vr);
	return 0;
}

int vhu_on_set_vring_addr(struct req_ctx *x)
{
	const struct vhu_vring_addr *a = &x->m->payload.addr;
	struct vhu_vring *vr;
	int err;

	if ((err = ring_arg(x, a->index, &vr)))
		return err;
	if (a->flags & ~VHU_BIT(VHU_VRING_F_LOG))
		return vhu_refuse(x, -EINVAL, "unknown flags");
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
	return err ? vhu_refuse(x, err, "addresses not inside guest memory; ring failed") : 0;
}

int vhu_on_set_vring_base(struct req_ctx *x)
{
	struct vhu_vring *vr;
	int err;

	if ((err = ring_arg(x, x->m->payload.state.index, &vr)))
		return err;
	/* Packed: QEMU sends the used position and wrap in bits 16-31
	 * (vring_packed.c checks the value when the ring starts). */
	if (x->m->payload.state.num > 0xffff && !feature_acked(x->c, VHU_F_RING_PACKED))
		return vhu_refuse(x, -EINVAL, "base out of range");
	if ((err = ring_stopped(x, vr)))
		return err;
	vhu_vring_lock(vr);
	vr->base = x->m->payload.state.num;
	vhu_vring_unlock(vr);
	return 0;
}

/* ---- stopping a ring with chains in flight ----------------------------- */

/* Chains popped and not pushed yet (read without the ring paused: a hint,
 * confirmed while paused). */
static unsigned outstanding(const struct vhu_vring *vr)
{
	return __atomic_load_n(&vr->inuse, __ATOMIC_ACQUIRE);
}

/* Sleep up to ms, waking early if the daemon is being stopped. */
static bool drain_sleep(struct vhu_daemon *d, int ms)
{
	struct pollfd p = {.fd = d->stop_fd, .events = POLLIN};

	return poll(&p, 1, ms) == 0;
}

/*
 * GET_VRING_BASE on a ring the device still has chains of (asynchronous
 * I/O in flight at a migration's switch-over): the ring stops handing out
 * chains, the queue is kicked so that a device holding chains sees
 * vhu_vring_stopping(), and the workers keep running and completing until
 * nothing is outstanding (checked with the workers parked), drain_ms
 * passed or the daemon is being stopped.  The reply then gives the next
 * avail index: everything before it was completed, nothing after it was
 * touched, so the destination neither loses a request nor does one twice.
 * Returns with the ring paused (ring_pause).
 */
static void ring_drain_pause(struct vhu_daemon *d, unsigned q)
{
	struct vhu_vring *vr = &d->vrings[q];
	uint64_t one = 1;
	unsigned waited = 0;
	bool live = true; /* the daemon is not being stopped */

	if (vr->started && !vhu_vring_failed(vr)) {
		__atomic_store_n(&vr->stopping, true, __ATOMIC_RELEASE);
		if (outstanding(vr) && vr->kick_fd >= 0 &&
		    write(vr->kick_fd, &one, sizeof(one)) < 0)
			VHU_LOGW("%s: queue %u: kick for the stop failed", d->name, q);
	}
	for (;;) {
		while (live && outstanding(vr) && !vhu_vring_failed(vr) && waited < d->drain_ms &&
		       (live = drain_sleep(d, 1)))
			waited++;
		ring_pause(d, q, true);
		if (!live || !vr->started || !vr->inuse || vhu_vring_failed(vr) ||
		    waited >= d->drain_ms)
			break;
		ring_resume(d, q); /* the hint was stale: wait on */
		live = drain_sleep(d, 1);
		waited++;
	}
	if (waited)
		VHU_LOGI("%s: queue %u: waited %u ms for chains in flight at the stop", d->name, q,
		         waited);
	if (vr->started && vr->inuse && !vhu_vring_failed(vr))
		VHU_LOGE("%s: queue %u: %u chains still in flight after %u ms; the front end "
		         "resumes after them and will not see them complete",
		         d->name, q, vr->inuse, waited);
}

int vhu_on_get_vring_base(struct req_ctx *x)
{
	uint32_t q = x->m->payload.state.index;
	struct vhu_vring *vr;
	int err;

	if ((err = ring_arg(x, q, &vr)))
		return err;
	ring_drain_pause(x->d, q);
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

/* ---- kick, call and error fds ----------------------------------------- */

/* Start ring q (locked, paused) if it is not running yet. */
static int ring_start(struct vhu_daemon *d, unsigned q)
{
	struct vhu_vring *vr = &d->vrings[q];
	struct vhu_conn *c = &d->conn;

	if (vr->started)
		return 0;
	if (!c->mem || !vr->addr_set || !vr->num)
		return -EINVAL;
	if (!feature_acked(c, VHU_F_PROTOCOL_FEATURES))
		vr->enabled = true;
	vr->inflight = c->inflight ? vhu_inflight_queue(c->inflight, q) : NULL;
	return vhu_vring_start(vr, c->mem, c->acked_features);
}

/* Make fd usable as a kick fd (-1: create our own eventfd).  Returns it, or
 * a refusal (fd closed). */
static int kick_fd_prepare(struct req_ctx *x, unsigned q, int fd)
{
	int fl;

	if (x->d->queue_worker[q] < 0) {
		close_fd(&fd);
		return vhu_refuse(x, -ENOTSUP, "no worker thread serves this queue");
	}
	if (fd < 0 && (fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return vhu_refuse(x, -errno, "eventfd");
	/* A kick read must never block the worker (hostile duplicate fds). */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
		close_fd(&fd);
		return vhu_refuse(x, -EBADF, "kick fd unusable");
	}
	return fd;
}

/* Install kick fd `fd` (ownership taken; -1: our own eventfd, for NOFD and
 * in-band kicks), start the ring and watch the fd. */
/* Read one byte of every page of [uva, uva+len) (if mapped). */
static void touch(const struct vhu_mem *mem, uint64_t uva, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += 4096 - ((uva + off) % 4096)) {
		const volatile uint8_t *p = vhu_mem_uva_to_hva(mem, uva + off, 1);

		if (p)
			(void)*p;
	}
}

/*
 * Postcopy: the ring's pages may not have arrived yet.  Fault them in
 * before the workers are parked for the start: a fault the front end never
 * serves (it went away) is then ended by a worker seeing the hang-up
 * (vhu_postcopy_release), which a parked worker could not do.
 */
static void ring_fault_in(struct vhu_daemon *d, unsigned q)
{
	const struct vhu_vring *vr = &d->vrings[q];
	const struct vhu_conn *c = &d->conn;
	uint64_t num = vr->num;

	if (!c->pc.listening || !c->mem || !vr->addr_set)
		return;
	touch(c->mem, vr->addr.desc_user_addr, 16 * num);
	touch(c->mem, vr->addr.avail_user_addr, 6 + 2 * num);
	touch(c->mem, vr->addr.used_user_addr, 6 + 8 * num);
}

static int kick_setup(struct req_ctx *x, unsigned q, int fd)
{
	struct vhu_daemon *d = x->d;
	struct vhu_vring *vr = &d->vrings[q];
	struct vhu_qctl *qc = &x->c->q[q];
	bool own = fd < 0;
	int err;

	if ((fd = kick_fd_prepare(x, q, fd)) < 0)
		return fd;
	ring_fault_in(d, q);
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
	return err ? vhu_refuse(x, err, "ring cannot start (size, addresses or memory)") : 0;
}

int vhu_on_set_vring_kick(struct req_ctx *x)
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
	int *slot;

	if (err)
		return err;
	vr = &x->d->vrings[q];
	slot = call ? &vr->call_fd : &vr->err_fd;
	/* The worker may be signalling the old fd: wait before closing it. */
	ring_pause(x->d, q, false);
	close_fd(slot);
	*slot = fd;
	ring_resume(x->d, q);
	return 0;
}

int vhu_on_set_vring_call(struct req_ctx *x)
{
	return swap_fd(x, true);
}

int vhu_on_set_vring_err(struct req_ctx *x)
{
	return swap_fd(x, false);
}

/* ---- enable and in-band kick ------------------------------------------ */

int vhu_on_set_vring_enable(struct req_ctx *x)
{
	uint32_t q = x->m->payload.state.index, on = x->m->payload.state.num;
	struct vhu_vring *vr;
	int err;

	/* QEMU 7.2's vhost-user-net negotiates protocol features but leaves
	 * VHOST_USER_F_PROTOCOL_FEATURES out of SET_FEATURES, then sends
	 * SET_VRING_ENABLE all the same (libvhost-user and DPDK accept it):
	 * protocol features having been set is enough. */
	if (!feature_acked(x->c, VHU_F_PROTOCOL_FEATURES) && !x->c->acked_pf)
		return vhu_refuse(x, -EINVAL, "PROTOCOL_FEATURES not negotiated");
	if ((err = ring_arg(x, q, &vr)))
		return err;
	if (on > 1)
		return vhu_refuse(x, -EINVAL, "enable must be 0 or 1");
	ring_pause(x->d, q, false);
	vr->enabled = on;
	ring_resume(x->d, q);
	return 0;
}

int vhu_on_vring_kick(struct req_ctx *x)
{
	uint32_t q = x->m->payload.state.index;
	struct vhu_vring *vr;
	uint64_t one = 1;
	int err;

	if ((err = ring_arg(x, q, &vr)))
		return err;
	if (x->m->payload.state.num != 0)
		return vhu_refuse(x, -EINVAL, "reserved field not zero");
	/* The spec lets an in-band kick start a ring that has no kick fd. */
	if (vr->kick_fd < 0 && (err = kick_setup(x, q, -1)))
		return err;
	if (write(vr->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return vhu_refuse(x, -errno, "kick write");
	return 0;
}
