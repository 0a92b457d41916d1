/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device-wide requests: features and protocol features, ownership, queue
 * count, status, reset, config space, the back-end request channel, the
 * GPU socket, shared objects and device state transfer.
 */
#include <errno.h>
#include <string.h>

#include "handler.h"

void vhu_set_acked_features(struct vhu_daemon *d, uint64_t f)
{
	d->conn.acked_features = f;
	atomic_store(&d->acked_features, f);
}

/* RESET_DEVICE / RESET_OWNER: rings stopped, features forgotten. */
static void device_reset(struct vhu_daemon *d)
{
	vhu_rings_reset(d);
	vhu_set_acked_features(d, 0);
	d->conn.features_set = false;
	d->conn.status = 0;
	vhu_apply_dirty(d);
	vhu_be_reset_device(&d->be);
}

/* ---- features and ownership ------------------------------------------ */

int vhu_on_get_features(struct req_ctx *x)
{
	reply_u64(x, x->d->features);
	return 0;
}

int vhu_on_set_features(struct req_ctx *x)
{
	struct vhu_daemon *d = x->d;
	uint64_t f = x->m->payload.u64;

	if (f & ~d->features)
		return vhu_refuse(x, -EINVAL, "features not offered");
	vhu_set_acked_features(d, f);
	x->c->features_set = true;
	/* Without PROTOCOL_FEATURES rings are enabled from the start. */
	if (!(f & VHU_BIT(VHU_F_PROTOCOL_FEATURES)))
		vhu_rings_enable_all(d);
	vhu_apply_dirty(d);
	vhu_be_set_event_idx(&d->be, f & VHU_BIT(VHU_F_RING_EVENT_IDX));
	vhu_be_acked_features(&d->be, f);
	return 0;
}

/* A repeated SET_OWNER is accepted (libvhost-user and DPDK do; rust-vmm
 * refuses it): QEMU never repeats it, simple front ends re-negotiate
 * after RESET_DEVICE. */
int vhu_on_set_owner(struct req_ctx *x)
{
	x->c->owner = true;
	return 0;
}

int vhu_on_reset_owner(struct req_ctx *x)
{
	device_reset(x->d);
	x->c->owner = false;
	x->c->acked_pf = 0;
	return 0;
}

int vhu_on_reset_device(struct req_ctx *x)
{
	device_reset(x->d);
	return 0;
}

int vhu_on_get_protocol_features(struct req_ctx *x)
{
	reply_u64(x, x->d->pf);
	return 0;
}

int vhu_on_set_protocol_features(struct req_ctx *x)
{
	uint64_t pf = x->m->payload.u64;

	if (pf & ~x->d->pf)
		return vhu_refuse(x, -EINVAL, "protocol features not offered");
	x->c->acked_pf = pf;
	return 0;
}

int vhu_on_get_queue_num(struct req_ctx *x)
{
	if (!(x->d->pf & VHU_BIT(VHU_PF_MQ)))
		return vhu_refuse(x, -ENOTSUP, "MQ not offered");
	reply_u64(x, x->d->nq);
	return 0;
}

int vhu_on_set_status(struct req_ctx *x)
{
	if (x->m->payload.u64 > 0xff)
		return vhu_refuse(x, -EINVAL, "status wider than 8 bits");
	x->c->status = (uint8_t)x->m->payload.u64;
	return 0;
}

int vhu_on_get_status(struct req_ctx *x)
{
	reply_u64(x, x->c->status);
	return 0;
}

/* ---- config space ----------------------------------------------------- */

static int config_args(struct req_ctx *x)
{
	const struct vhu_config_msg *cfg = &x->m->payload.config;

	if (x->m->hdr.size < VHU_CONFIG_HDR_SIZE)
		return vhu_refuse(x, -EINVAL, "payload too short");
	if (cfg->size == 0 || cfg->size > VHU_MAX_CONFIG_SIZE ||
	    x->m->hdr.size != VHU_CONFIG_HDR_SIZE + cfg->size)
		return vhu_refuse(x, -EINVAL, "size does not match payload");
	/* Config spaces are small: the library bounds them, not each device. */
	if (cfg->offset > VHU_MAX_CONFIG_SIZE - cfg->size)
		return vhu_refuse(x, -EINVAL, "offset + size past 256 bytes");
	return 0;
}

int vhu_on_get_config(struct req_ctx *x)
{
	const struct vhu_config_msg *cfg = &x->m->payload.config;
	struct vhu_config_msg *out = &x->r->payload.config;
	int err = config_args(x), n;

	if (err)
		return err;
	memset(out->region, 0, cfg->size);
	n = vhu_be_get_config(&x->d->be, cfg->offset, out->region, cfg->size);
	if (n < 0 || (uint32_t)n != cfg->size)
		return vhu_refuse(x, n < 0 ? n : -EIO, "device get_config failed");
	out->offset = cfg->offset;
	out->size = cfg->size;
	out->flags = cfg->flags;
	x->r->hdr.size = x->m->hdr.size;
	x->replied = true;
	return 0;
}

int vhu_on_set_config(struct req_ctx *x)
{
	const struct vhu_config_msg *cfg = &x->m->payload.config;
	int err = config_args(x);

	if (err)
		return err;
	if (cfg->flags > 1) /* WRITABLE = 0, MIGRATION = 1 */
		return vhu_refuse(x, -EINVAL, "unknown flags");
	err = vhu_be_set_config(&x->d->be, cfg->offset, cfg->region, cfg->size);
	return err ? vhu_refuse(x, err, "device set_config failed") : 0;
}

/* ---- channels and device hooks ---------------------------------------- */

int vhu_on_set_backend_req_fd(struct req_ctx *x)
{
	struct vhu_channel *old = x->c->channel, *ch;

	ch = vhu_channel_new(take_fd(x, 0), pf_acked(x->c, VHU_PF_REPLY_ACK));
	if (!ch)
		return vhu_refuse(x, -ENOMEM, "out of memory");
	x->c->channel = ch;
	vhu_be_set_backend_req_fd(&x->d->be, ch);
	if (old) {
		vhu_workers_synchronize(x->d); /* callbacks may still use it */
		vhu_channel_free(old);
	}
	return 0;
}

int vhu_on_gpu_set_socket(struct req_ctx *x)
{
	int err = vhu_be_set_gpu_socket(&x->d->be, x->m->fds[0]);

	if (err)
		return vhu_refuse(x, err, "device set_gpu_socket failed");
	take_fd(x, 0); /* the device owns it now */
	return 0;
}

int vhu_on_get_shared_object(struct req_ctx *x)
{
	int fd = vhu_be_get_shared_object(&x->d->be, x->m->payload.object.uuid);

	reply_err(x, fd < 0 ? fd : 0);
	if (fd < 0)
		return vhu_refuse(x, fd, "device get_shared_object failed");
	reply_fd(x, fd);
	return 0;
}

/* ---- device state transfer -------------------------------------------- */

/* SET_DEVICE_STATE_FD reply: bits 0-7 error, bit 8 "no fd follows". */
#define STATE_NOFD 0x100

/* Refuse SET_DEVICE_STATE_FD with err, reported in the reply too. */
static int state_refuse(struct req_ctx *x, int err, const char *why)
{
	uint64_t code = (uint64_t)-err & 0xff;

	reply_u64(x, STATE_NOFD | (code ? code : 1));
	return vhu_refuse(x, err, why);
}

int vhu_on_set_device_state_fd(struct req_ctx *x)
{
	const struct vhu_device_state_msg *s = &x->m->payload.state_xfer;
	int out_fd = -1, err;

	if (s->direction > VHU_STATE_LOAD || s->phase != VHU_STATE_PHASE_STOPPED)
		return state_refuse(x, -EINVAL, "unknown direction or phase");
	err = vhu_be_set_device_state_fd(&x->d->be, (enum vhu_state_direction)s->direction,
	                                 VHU_STATE_PHASE_STOPPED, x->m->fds[0], &out_fd);
	if (err) {
		close_fd(&out_fd);
		return state_refuse(x, err, "device set_device_state_fd failed");
	}
	take_fd(x, 0);
	reply_u64(x, out_fd < 0 ? STATE_NOFD : 0);
	if (out_fd >= 0)
		reply_fd(x, out_fd);
	return 0;
}

int vhu_on_check_device_state(struct req_ctx *x)
{
	int err = vhu_be_check_device_state(&x->d->be);

	reply_err(x, err);
	return err ? vhu_refuse(x, err, "device state check failed") : 0;
}

/* ---- vhost-user-net requests ------------------------------------------ */

/* SEND_RARP (after a migration, for guests without GUEST_ANNOUNCE): the
 * first 6 bytes of the u64 are the guest's MAC.  No reply. */
int vhu_on_send_rarp(struct req_ctx *x)
{
	uint8_t mac[6];
	int err;

	memcpy(mac, &x->m->payload.u64, sizeof(mac));
	err = vhu_be_send_rarp(&x->d->be, mac);
	if (err)
		return vhu_refuse(x, err, "device could not send the RARP");
	VHU_LOGI("%s: RARP sent for %02x:%02x:%02x:%02x:%02x:%02x", x->d->name, mac[0], mac[1],
	         mac[2], mac[3], mac[4], mac[5]);
	return 0;
}

/* NET_SET_MTU: the MTU the guest was told; VIRTIO_MIN_MTU..65535 as DPDK
 * checks it. */
int vhu_on_net_set_mtu(struct req_ctx *x)
{
	uint64_t mtu = x->m->payload.u64;
	int err;

	if (mtu < 68 || mtu > 65535)
		return vhu_refuse(x, -EINVAL, "MTU outside 68..65535");
	err = vhu_be_set_mtu(&x->d->be, (uint16_t)mtu);
	return err ? vhu_refuse(x, err, "device refused the MTU") : 0;
}
