/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memory requests: SET_MEM_TABLE, GET_MAX_MEM_SLOTS, ADD/REM_MEM_REGION,
 * the migration log (SET_LOG_BASE, SET_LOG_FD) and the inflight region
 * (GET/SET_INFLIGHT_FD).
 *
 * Memory tables are immutable snapshots: every change builds the next one
 * and publishes it to the rings and the device (publish_mem).
 */
#include <errno.h>
#include <string.h>

#include "handler.h"

void vhu_apply_dirty(struct vhu_daemon *d)
{
	struct vhu_conn *c = &d->conn;
	struct vhu_dirty *log = feature_acked(c, VHU_F_LOG_ALL) ? c->dirty : NULL;
	bool changed = false;

	for (unsigned q = 0; q < d->nq; q++) {
		struct vhu_vring *vr = &d->vrings[q];

		vhu_vring_lock(vr);
		changed |= atomic_exchange(&vr->dirty, log) != log;
		vhu_vring_unlock(vr);
	}
	if (!changed)
		return;
	VHU_LOGI("%s: dirty logging %s", d->name, log ? "on" : "off");
	/* The front end takes our reply as "every write from now on is
	 * logged": a worker may still be in a push that loaded the previous
	 * log (or none).  Pushes from other threads hold the ring lock. */
	vhu_workers_synchronize(d);
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

/* publish_mem() for a request: a device that rejects the table refuses it
 * (the table stays installed, as the rings already use it). */
static int install_mem(struct req_ctx *x, struct vhu_mem *mem)
{
	int err = publish_mem(x->d, mem);

	return err ? vhu_refuse(x, err, "device update_memory failed") : 0;
}

/* ---- memory table and regions ----------------------------------------- */

static int mem_table_args(struct req_ctx *x)
{
	uint32_t n;

	if (x->m->hdr.size < 8)
		return vhu_refuse(x, -EINVAL, "payload too short");
	n = x->m->payload.memory.nregions;
	if (n > VHU_MEM_BASELINE_REGIONS)
		return vhu_refuse(x, -EINVAL, "too many regions");
	if (x->m->hdr.size != 8 + n * sizeof(struct vhu_mem_region_desc))
		return vhu_refuse(x, -EINVAL, "payload size does not match nregions");
	if (x->m->nfds != n)
		return vhu_refuse(x, -EINVAL, "fd count does not match nregions");
	return 0;
}

/* Postcopy listening: register the new mappings with the userfaultfd and
 * reply with the request, each region's userspace address replaced by our
 * mapping of it (n descriptions at d, in the front end's order). */
static int postcopy_map_reply(struct req_ctx *x, const struct vhu_mem *mem,
                              struct vhu_mem_region_desc *d, unsigned n)
{
	int err = vhu_postcopy_register(&x->c->pc, mem);

	if (err)
		return err;
	for (unsigned i = 0; i < n; i++) {
		void *hva = vhu_mem_gpa_to_hva(mem, d[i].guest_phys_addr, d[i].memory_size);

		if (!hva)
			return -EFAULT;
		d[i].userspace_addr = (uint64_t)(uintptr_t)hva;
	}
	x->r->hdr.size = x->m->hdr.size;
	x->replied = x->force_reply = true;
	x->c->pc.await_ack = true;
	return 0;
}

int vhu_on_set_mem_table(struct req_ctx *x)
{
	const struct vhu_mem_table_msg *t = &x->m->payload.memory;
	struct vhu_mem *mem = NULL;
	int err;

	if ((err = mem_table_args(x)))
		return err;
	if (t->nregions == 0) {
		mem = vhu_mem_new_empty();
		err = mem ? 0 : -ENOMEM;
	} else {
		err = vhu_mem_new_table_from(&mem, t->regions, x->m->fds, t->nregions, x->c->mem);
	}
	if (err)
		return vhu_refuse(x, err, "cannot map the regions");
	if (x->c->pc.listening) {
		x->r->payload.memory = *t;
		err = postcopy_map_reply(x, mem, x->r->payload.memory.regions, t->nregions);
		if (err) {
			vhu_mem_unref(mem);
			return vhu_refuse(x, err, "postcopy: cannot register the regions");
		}
	}
	return install_mem(x, mem);
}

int vhu_on_get_max_mem_slots(struct req_ctx *x)
{
	reply_u64(x, VHU_MAX_MEM_SLOTS);
	return 0;
}

int vhu_on_add_mem_region(struct req_ctx *x)
{
	struct vhu_mem *base = x->c->mem, *tmp = NULL, *mem = NULL;
	int err;

	if (!base && !(base = tmp = vhu_mem_new_empty()))
		return vhu_refuse(x, -ENOMEM, "out of memory");
	err = vhu_mem_add(&mem, base, &x->m->payload.mem_reg.region, x->m->fds[0]);
	if (tmp)
		vhu_mem_unref(tmp);
	if (err < 0)
		return vhu_refuse(x, err, "cannot map the region");
	if (x->c->pc.listening) { /* every add gets our address back */
		x->r->payload.mem_reg = x->m->payload.mem_reg;
		err = postcopy_map_reply(x, err == 1 ? x->c->mem : mem,
		                         &x->r->payload.mem_reg.region, 1);
		if (err) {
			if (mem)
				vhu_mem_unref(mem);
			return vhu_refuse(x, err, "postcopy: cannot register the region");
		}
		if (!mem)
			return 0;
	} else if (err == 1) {
		VHU_LOGD("ADD_MEM_REGION: region already mapped, counted");
		return 0;
	}
	return install_mem(x, mem);
}

int vhu_on_rem_mem_region(struct req_ctx *x)
{
	struct vhu_mem *mem = NULL;
	int err;

	if (!x->c->mem)
		return vhu_refuse(x, -ENOENT, "no memory table");
	err = vhu_mem_remove(&mem, x->c->mem, &x->m->payload.mem_reg.region);
	if (err < 0)
		return vhu_refuse(x, err, "no such region");
	if (err == 1)
		return 0; /* still added by another vhost device */
	return install_mem(x, mem);
}

/* ---- migration log ---------------------------------------------------- */

int vhu_on_set_log_base(struct req_ctx *x)
{
	struct vhu_dirty *log = NULL, *old = x->c->dirty;
	int err = vhu_dirty_new(&log, x->m->fds[0], x->m->payload.log.mmap_size,
	                        x->m->payload.log.mmap_offset);

	reply_err(x, err);
	if (err)
		return vhu_refuse(x, err, "cannot map the log");
	x->c->dirty = log;
	vhu_apply_dirty(x->d);
	/* The old log is unmapped only once no push can still be marking it
	 * (apply_dirty synchronised if any ring used it). */
	if (old)
		vhu_dirty_free(old);
	return 0;
}

/* SET_LOG_FD: an eventfd the rings signal after marking the log.  The
 * rings use the new one before the old one is closed (workers parked,
 * ring locks keep out other pushing threads). */
int vhu_on_set_log_fd(struct req_ctx *x)
{
	struct vhu_daemon *d = x->d;
	int old = x->c->log_call_fd;

	if (x->m->hdr.size != 0 && x->m->hdr.size != 8)
		return vhu_refuse(x, -EINVAL, "bad payload size");
	x->c->log_call_fd = take_fd(x, 0);
	vhu_workers_park(d);
	for (unsigned q = 0; q < d->nq; q++) {
		struct vhu_vring *vr = &d->vrings[q];

		vhu_vring_lock(vr);
		vr->log_fd = x->c->log_call_fd;
		vhu_vring_unlock(vr);
	}
	vhu_workers_unpark(d);
	close_fd(&old);
	return 0;
}

/* ---- inflight region -------------------------------------------------- */

static int inflight_args(struct req_ctx *x)
{
	const struct vhu_inflight_msg *in = &x->m->payload.inflight;

	if (in->num_queues == 0 || in->num_queues > x->d->nq)
		return vhu_refuse(x, -EINVAL, "num_queues out of range");
	if (in->queue_size == 0 || in->queue_size > x->d->max_qsize)
		return vhu_refuse(x, -EINVAL, "queue_size out of range");
	for (unsigned q = 0; q < x->d->nq; q++)
		if (x->d->vrings[q].started)
			return vhu_refuse(x, -EBUSY, "a ring is running");
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

int vhu_on_get_inflight_fd(struct req_ctx *x)
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
		return vhu_refuse(x, err, "cannot create the region");
	inflight_replace(x->d, inf);
	out->mmap_size = inf->size;
	out->mmap_offset = 0;
	out->num_queues = inf->num_queues;
	out->queue_size = inf->queue_size;
	reply_fd(x, inf->fd); /* stays ours: the reply does not close it */
	return 0;
}

int vhu_on_set_inflight_fd(struct req_ctx *x)
{
	const struct vhu_inflight_msg *in = &x->m->payload.inflight;
	struct vhu_inflight *inf = NULL;
	int err = inflight_args(x);

	if (err)
		return err;
	err = vhu_inflight_set(&inf, x->m->fds[0], in->mmap_size, in->mmap_offset, in->num_queues,
	                       in->queue_size);
	if (err)
		return vhu_refuse(x, err, "cannot map the region");
	take_fd(x, 0);
	inflight_replace(x->d, inf);
	return 0;
}

/* ---- postcopy --------------------------------------------------------- */

int vhu_on_postcopy_advise(struct req_ctx *x)
{
	int fd, err = vhu_postcopy_advise(&x->c->pc, &fd);

	if (err)
		return vhu_refuse(x, err, "cannot open a userfaultfd");
	x->r->hdr.size = 0; /* the reply is the fd */
	x->replied = true;
	reply_fd(x, fd);
	VHU_LOGI("%s: postcopy advised", x->d->name);
	return 0;
}

int vhu_on_postcopy_listen(struct req_ctx *x)
{
	struct vhu_postcopy *pc = &x->c->pc;
	int err;

	if (pc->ufd < 0)
		return vhu_refuse(x, -EINVAL, "no POSTCOPY_ADVISE before");
	/* Mappings made before listening fault too from now on. */
	err = vhu_postcopy_register(pc, x->c->mem);
	if (err)
		return vhu_refuse(x, err, "cannot register guest memory");
	pc->listening = true;
	VHU_LOGI("%s: postcopy listening", x->d->name);
	return 0;
}

int vhu_on_postcopy_end(struct req_ctx *x)
{
	struct vhu_postcopy *pc = &x->c->pc;
	bool was = pc->ufd >= 0;

	vhu_postcopy_end(pc);
	reply_err(x, was ? 0 : -EINVAL);
	if (!was)
		return vhu_refuse(x, -EINVAL, "postcopy was not advised");
	VHU_LOGI("%s: postcopy ended", x->d->name);
	return 0;
}

bool vhu_postcopy_is_ack(struct vhu_daemon *d, const struct vhu_msg *m)
{
	struct vhu_postcopy *pc = &d->conn.pc;
	uint32_t req = m->hdr.request;

	if (!pc->listening || m->hdr.size != sizeof(uint64_t) || m->nfds)
		return false;
	if (req == VHU_REQ_SET_MEM_TABLE
	        ? !pc->await_ack
	        : req != VHU_REQ_ADD_MEM_REGION && req != VHU_REQ_REM_MEM_REGION && req != 0)
		return false;
	pc->await_ack = false;
	if (m->payload.u64)
		VHU_LOGW("%s: postcopy: the front end could not register our mappings (%llu)",
		         d->name, (unsigned long long)m->payload.u64);
	else
		VHU_LOGD("%s: postcopy: mappings acknowledged", d->name);
	return true;
}
