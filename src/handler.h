/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the protocol handler (handler*.c only): the per-request
 * context, the helpers every request function uses and the request
 * functions the dispatch table in handler.c names.
 *
 *   handler.c         dispatch table, common checks, replies, connection
 *   handler_mem.c     memory table and regions, dirty log, inflight region
 *   handler_vring.c   ring configuration, kick/call/err fds, ring pausing
 *   handler_device.c  features, ownership, status, reset, config, channels,
 *                     device state
 *
 * Every request function runs on the handler thread, takes the request's
 * context and returns 0 or a negative errno after vhu_refuse() (see
 * handler.c for what a refusal sends back).  Fds of the request it does not
 * take with take_fd() are closed after it returns.
 */
#ifndef VHU_HANDLER_H
#define VHU_HANDLER_H

#include <unistd.h>

#include "dev.h"

struct req_ctx {
	struct vhu_daemon *d;
	struct vhu_conn *c;
	struct vhu_msg *m;
	struct vhu_msg *r; /* reply being built */
	bool replied;      /* r holds a reply to send */
	bool force_reply;  /* send it even though the request has none (postcopy) */
	int err;           /* the request function's result */
};

/* ---- handler.c: refusals ---------------------------------------------- */

/* Log why request x is refused; returns err (negative errno). */
int vhu_refuse(struct req_ctx *x, int err, const char *why);
/* Any request the library does not implement. */
int vhu_on_unsupported(struct req_ctx *x);

/* ---- small helpers ------------------------------------------------------ */

/* Take ownership of fd i of the request (it is not closed afterwards). */
static inline int take_fd(struct req_ctx *x, unsigned i)
{
	int fd = x->m->fds[i];

	x->m->fds[i] = -1;
	return fd;
}

static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static inline void reply_u64(struct req_ctx *x, uint64_t v)
{
	x->r->hdr.size = sizeof(uint64_t);
	x->r->payload.u64 = v;
	x->replied = true;
}

/* u64 reply that carries a result: 0 or the positive errno. */
static inline void reply_err(struct req_ctx *x, int err)
{
	reply_u64(x, err ? (uint64_t)-err : 0);
}

/* Attach fd (ownership passed to the reply) to the reply. */
static inline void reply_fd(struct req_ctx *x, int fd)
{
	x->r->fds[0] = fd;
	x->r->nfds = 1;
}

static inline bool pf_acked(struct vhu_conn *c, int pf)
{
	return c->acked_pf & VHU_BIT(pf);
}

static inline bool feature_acked(struct vhu_conn *c, unsigned f)
{
	return c->acked_features & VHU_BIT(f);
}

/* ---- handler_vring.c: ring control shared with the other files ---------- */

/* Ring idx of the daemon, or NULL when out of range. */
static inline struct vhu_vring *ring(struct req_ctx *x, uint32_t idx)
{
	return idx < x->d->nq ? &x->d->vrings[idx] : NULL;
}

/* Enable every ring (SET_FEATURES without PROTOCOL_FEATURES). */
void vhu_rings_enable_all(struct vhu_daemon *d);
/* Stop every ring and forget its configuration (fds closed). */
void vhu_rings_reset(struct vhu_daemon *d);

int vhu_on_set_vring_num(struct req_ctx *x);
int vhu_on_set_vring_addr(struct req_ctx *x);
int vhu_on_set_vring_base(struct req_ctx *x);
int vhu_on_get_vring_base(struct req_ctx *x);
int vhu_on_set_vring_kick(struct req_ctx *x);
int vhu_on_set_vring_call(struct req_ctx *x);
int vhu_on_set_vring_err(struct req_ctx *x);
int vhu_on_set_vring_enable(struct req_ctx *x);
int vhu_on_vring_kick(struct req_ctx *x);

/* ---- handler_mem.c ------------------------------------------------------ */

/* Point every ring at the dirty log when LOG_ALL is acked and a log is
 * mapped, at none otherwise. */
void vhu_apply_dirty(struct vhu_daemon *d);

int vhu_on_set_mem_table(struct req_ctx *x);
int vhu_on_get_max_mem_slots(struct req_ctx *x);
int vhu_on_add_mem_region(struct req_ctx *x);
int vhu_on_rem_mem_region(struct req_ctx *x);
int vhu_on_set_log_base(struct req_ctx *x);
int vhu_on_set_log_fd(struct req_ctx *x);
int vhu_on_get_inflight_fd(struct req_ctx *x);
int vhu_on_set_inflight_fd(struct req_ctx *x);
int vhu_on_postcopy_advise(struct req_ctx *x);
int vhu_on_postcopy_listen(struct req_ctx *x);
int vhu_on_postcopy_end(struct req_ctx *x);
/* QEMU's acknowledgement of the mapping addresses we replied with while
 * postcopy is listening: a u64 0 without fds, sent as SET_MEM_TABLE, or as
 * ADD_MEM_REG / REM_MEM_REG / request 0 after a memory-slots update (QEMU
 * reuses the last message it built).  True if m is one (consumed). */
bool vhu_postcopy_is_ack(struct vhu_daemon *d, const struct vhu_msg *m);

/* ---- handler_device.c --------------------------------------------------- */

/* Record the acked virtio features (handler copy and the atomic one the
 * data path reads). */
void vhu_set_acked_features(struct vhu_daemon *d, uint64_t f);

int vhu_on_get_features(struct req_ctx *x);
int vhu_on_set_features(struct req_ctx *x);
int vhu_on_set_owner(struct req_ctx *x);
int vhu_on_reset_owner(struct req_ctx *x);
int vhu_on_reset_device(struct req_ctx *x);
int vhu_on_get_protocol_features(struct req_ctx *x);
int vhu_on_set_protocol_features(struct req_ctx *x);
int vhu_on_get_queue_num(struct req_ctx *x);
int vhu_on_set_status(struct req_ctx *x);
int vhu_on_get_status(struct req_ctx *x);
int vhu_on_get_config(struct req_ctx *x);
int vhu_on_set_config(struct req_ctx *x);
int vhu_on_set_backend_req_fd(struct req_ctx *x);
int vhu_on_gpu_set_socket(struct req_ctx *x);
int vhu_on_get_shared_object(struct req_ctx *x);
int vhu_on_set_device_state_fd(struct req_ctx *x);
int vhu_on_check_device_state(struct req_ctx *x);
int vhu_on_send_rarp(struct req_ctx *x);
int vhu_on_net_set_mtu(struct req_ctx *x);

#endif
