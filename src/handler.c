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
 * This file: the table, the checks every request shares, sending the reply
 * and the connection's begin and end.  The request functions are in
 * handler_mem.c, handler_vring.c and handler_device.c (see handler.h).
 */
#include <errno.h>
#include <string.h>

#include "handler.h"

#define ANY_SIZE UINT32_MAX
#define NO_PF    (-1)

enum reply_kind {
	R_NONE,     /* ack only (REPLY_ACK + NEED_REPLY) */
	R_PAYLOAD,  /* always replies */
	R_IF_PF,    /* replies only when its protocol feature was negotiated */
	R_IF_ASKED, /* acks when NEED_REPLY is set, REPLY_ACK negotiated or not */
};

typedef int (*req_fn)(struct req_ctx *x);

struct req_desc {
	req_fn fn;
	uint32_t size; /* exact payload size, or ANY_SIZE (checked by fn) */
	uint8_t fds_min, fds_max;
	int8_t pf; /* protocol feature that must be negotiated */
	enum reply_kind reply;
};

int vhu_refuse(struct req_ctx *x, int err, const char *why)
{
	VHU_LOGW("%s: %s refused: %s (%s)", x->d->name, vhu_request_name(x->m->hdr.request), why,
	         strerror(-err));
	return err;
}

int vhu_on_unsupported(struct req_ctx *x)
{
	return vhu_refuse(x, -ENOTSUP, "request not supported by libvhu");
}

/* ---- dispatch --------------------------------------------------------- */

#define U64   sizeof(uint64_t)
#define STATE sizeof(struct vhu_vring_state)
#define REG   sizeof(struct vhu_mem_single_msg)
#define INFL  sizeof(struct vhu_inflight_msg)

static const struct req_desc table[VHU_REQ_MAX] = {
    [VHU_REQ_GET_FEATURES] = {vhu_on_get_features, 0, 0, 0, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_FEATURES] = {vhu_on_set_features, U64, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_SET_OWNER] = {vhu_on_set_owner, 0, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_RESET_OWNER] = {vhu_on_reset_owner, 0, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_SET_MEM_TABLE] = {vhu_on_set_mem_table, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_SET_LOG_BASE] = {vhu_on_set_log_base, sizeof(struct vhu_log_msg), 1, 1,
                              VHU_PF_LOG_SHMFD, R_IF_PF},
    [VHU_REQ_SET_LOG_FD] = {vhu_on_set_log_fd, ANY_SIZE, 1, 1, NO_PF, R_NONE},
    [VHU_REQ_SET_VRING_NUM] = {vhu_on_set_vring_num, STATE, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_SET_VRING_ADDR] = {vhu_on_set_vring_addr, sizeof(struct vhu_vring_addr), 0, 0, NO_PF,
                                R_NONE},
    [VHU_REQ_SET_VRING_BASE] = {vhu_on_set_vring_base, STATE, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_GET_VRING_BASE] = {vhu_on_get_vring_base, STATE, 0, 0, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_VRING_KICK] = {vhu_on_set_vring_kick, U64, 0, 1, NO_PF, R_NONE},
    [VHU_REQ_SET_VRING_CALL] = {vhu_on_set_vring_call, U64, 0, 1, NO_PF, R_NONE},
    [VHU_REQ_SET_VRING_ERR] = {vhu_on_set_vring_err, U64, 0, 1, NO_PF, R_NONE},
    [VHU_REQ_GET_PROTOCOL_FEATURES] = {vhu_on_get_protocol_features, 0, 0, 0, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_PROTOCOL_FEATURES] = {vhu_on_set_protocol_features, U64, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_GET_QUEUE_NUM] = {vhu_on_get_queue_num, 0, 0, 0, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_VRING_ENABLE] = {vhu_on_set_vring_enable, STATE, 0, 0, NO_PF, R_NONE},
    [VHU_REQ_SEND_RARP] = {vhu_on_send_rarp, U64, 0, 0, VHU_PF_RARP, R_NONE},
    [VHU_REQ_NET_SET_MTU] = {vhu_on_net_set_mtu, U64, 0, 0, VHU_PF_MTU, R_NONE},
    [VHU_REQ_SET_BACKEND_REQ_FD] = {vhu_on_set_backend_req_fd, 0, 1, 1, VHU_PF_BACKEND_REQ, R_NONE},
    [VHU_REQ_IOTLB_MSG] = {vhu_on_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_PAYLOAD},
    [VHU_REQ_SET_VRING_ENDIAN] = {vhu_on_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_GET_CONFIG] = {vhu_on_get_config, ANY_SIZE, 0, 0, VHU_PF_CONFIG, R_PAYLOAD},
    [VHU_REQ_SET_CONFIG] = {vhu_on_set_config, ANY_SIZE, 0, 0, VHU_PF_CONFIG, R_NONE},
    [VHU_REQ_CREATE_CRYPTO_SESSION] = {vhu_on_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF,
                                       R_PAYLOAD},
    [VHU_REQ_CLOSE_CRYPTO_SESSION] = {vhu_on_unsupported, ANY_SIZE, 0, VHU_MAX_FDS, NO_PF, R_NONE},
    [VHU_REQ_POSTCOPY_ADVISE] = {vhu_on_postcopy_advise, 0, 0, 0, VHU_PF_PAGEFAULT, R_PAYLOAD},
    /* QEMU asks for a reply to LISTEN and END whether REPLY_ACK was
     * negotiated or not. */
    [VHU_REQ_POSTCOPY_LISTEN] = {vhu_on_postcopy_listen, 0, 0, 0, VHU_PF_PAGEFAULT, R_IF_ASKED},
    [VHU_REQ_POSTCOPY_END] = {vhu_on_postcopy_end, 0, 0, 0, VHU_PF_PAGEFAULT, R_PAYLOAD},
    [VHU_REQ_GET_INFLIGHT_FD] = {vhu_on_get_inflight_fd, INFL, 0, 0, VHU_PF_INFLIGHT_SHMFD,
                                 R_PAYLOAD},
    [VHU_REQ_SET_INFLIGHT_FD] = {vhu_on_set_inflight_fd, INFL, 1, 1, VHU_PF_INFLIGHT_SHMFD, R_NONE},
    [VHU_REQ_GPU_SET_SOCKET] = {vhu_on_gpu_set_socket, 0, 1, 1, NO_PF, R_NONE},
    [VHU_REQ_RESET_DEVICE] = {vhu_on_reset_device, 0, 0, 0, VHU_PF_RESET_DEVICE, R_NONE},
    [VHU_REQ_VRING_KICK] = {vhu_on_vring_kick, STATE, 0, 0, VHU_PF_INBAND_NOTIFICATIONS, R_NONE},
    [VHU_REQ_GET_MAX_MEM_SLOTS] = {vhu_on_get_max_mem_slots, 0, 0, 0, VHU_PF_CONFIGURE_MEM_SLOTS,
                                   R_PAYLOAD},
    [VHU_REQ_ADD_MEM_REGION] = {vhu_on_add_mem_region, REG, 1, 1, VHU_PF_CONFIGURE_MEM_SLOTS,
                                R_NONE},
    [VHU_REQ_REM_MEM_REGION] = {vhu_on_rem_mem_region, REG, 0, 1, VHU_PF_CONFIGURE_MEM_SLOTS,
                                R_NONE},
    [VHU_REQ_SET_STATUS] = {vhu_on_set_status, U64, 0, 0, VHU_PF_STATUS, R_NONE},
    [VHU_REQ_GET_STATUS] = {vhu_on_get_status, 0, 0, 0, VHU_PF_STATUS, R_PAYLOAD},
    [VHU_REQ_GET_SHARED_OBJECT] = {vhu_on_get_shared_object, sizeof(struct vhu_shared_object_msg),
                                   0, 0, VHU_PF_SHARED_OBJECT, R_PAYLOAD},
    [VHU_REQ_SET_DEVICE_STATE_FD] = {vhu_on_set_device_state_fd,
                                     sizeof(struct vhu_device_state_msg), 1, 1, VHU_PF_DEVICE_STATE,
                                     R_PAYLOAD},
    [VHU_REQ_CHECK_DEVICE_STATE] = {vhu_on_check_device_state, 0, 0, 0, VHU_PF_DEVICE_STATE,
                                    R_PAYLOAD},
};

/* Checks every request shares: size, fd count, protocol feature. */
static int precheck(struct req_ctx *x, const struct req_desc *rd)
{
	const struct vhu_msg *m = x->m;

	if (!rd->fn)
		return vhu_refuse(x, -ENOSYS, "unknown request");
	if (rd->size != ANY_SIZE && m->hdr.size != rd->size)
		return vhu_refuse(x, -EINVAL, "wrong payload size");
	if (m->nfds < rd->fds_min || m->nfds > rd->fds_max)
		return vhu_refuse(x, -EINVAL, "wrong number of fds");
	if (rd->pf != NO_PF && !pf_acked(x->c, rd->pf))
		return vhu_refuse(x, -ENOTSUP, "protocol feature not negotiated");
	return 0;
}

static bool wants_reply(struct req_ctx *x, const struct req_desc *rd)
{
	if (rd->reply == R_PAYLOAD || x->force_reply)
		return true;
	if (rd->reply == R_IF_ASKED && (x->m->hdr.flags & VHU_HDR_NEED_REPLY)) {
		reply_err(x, x->err);
		return true;
	}
	return rd->reply == R_IF_PF && pf_acked(x->c, rd->pf);
}

/* Send the reply x holds (refused: empty payload); fds it carries that
 * we created are closed, the inflight fd is kept. */
static int send_reply(struct req_ctx *x)
{
	uint32_t req = x->m->hdr.request;
	int err;

	if (!x->replied) /* refused: an empty payload says failure */
		x->r->hdr.size = 0;
	err = vhu_msg_send_stop(x->c->sock, x->r, x->d->stop_fd);
	if (x->r->nfds && !(req == VHU_REQ_GET_INFLIGHT_FD))
		vhu_msg_close_fds(x->r);
	x->r->nfds = 0;
	if (err && err != -ECANCELED)
		VHU_LOGW("%s: cannot send the %s reply: %s", x->d->name, vhu_request_name(req),
		         strerror(-err));
	return err;
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
	if (vhu_postcopy_is_ack(d, m))
		return 0;
	err = precheck(&x, rd);
	if (!err)
		err = rd->fn(&x);
	x.err = err;
	vhu_msg_close_fds(m);
	reply = wants_reply(&x, rd);
	if (!reply && (m->hdr.flags & VHU_HDR_NEED_REPLY) && pf_acked(x.c, VHU_PF_REPLY_ACK)) {
		reply_err(&x, err);
		reply = true;
	}
	return reply ? send_reply(&x) : 0;
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
	vhu_postcopy_init(&c->pc);
	vhu_set_acked_features(d, 0);
	memset(c->q, 0, sizeof(c->q));
	vhu_lifecycle_begin(d, sock);
}

/* Rings keep no pointer into the connection's memory or log. */
static void rings_detach(struct vhu_daemon *d)
{
	for (unsigned q = 0; q < d->nq; q++) {
		struct vhu_vring *vr = &d->vrings[q];

		vhu_vring_lock(vr);
		atomic_store(&vr->mem, NULL);
		atomic_store(&vr->dirty, NULL);
		vr->log_fd = -1;
		vhu_vring_unlock(vr);
	}
}

/* Drop what the connection holds (no worker may use it any more). */
static void conn_release(struct vhu_conn *c)
{
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
}

void vhu_conn_end(struct vhu_daemon *d)
{
	struct vhu_conn *c = &d->conn;

	/* First: a worker asleep in a postcopy fault the front end will never
	 * serve now wakes up when its range is unregistered (it could not
	 * park otherwise). */
	vhu_postcopy_end(&c->pc);
	vhu_lifecycle_end(d);
	vhu_rings_reset(d);
	vhu_be_reset_device(&d->be);
	rings_detach(d);
	vhu_workers_synchronize(d);
	conn_release(c);
	c->sock = -1;
	c->owner = false;
	c->features_set = false;
	c->acked_pf = 0;
}
