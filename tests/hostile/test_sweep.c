/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Systematic sweep over every front-end request (and unknown ones):
 *   payload sizes {0, expected-1, expected, expected+1, VHU_MAX_PAYLOAD}
 * x fds {expected-1, expected, expected+1, VHU_MAX_FDS}
 * x contents {all zero bytes, all 0xff bytes}, with fds of the wrong kind
 * for half of them, each with NEED_REPLY.  Then, per request, payloads
 * with every index and size at and past its limit.
 *
 * After every message the connection must still answer (GET_FEATURES) —
 * a well-framed message never costs the connection — and after every
 * request's sweep a fresh front end does real I/O and the process is back
 * to its baseline of open fds and memfd mappings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"
#include "vt.h"

VT_MAIN

#define NQ 2

/* Expected payload size and fd count per request (vhost-user.rst). */
struct shape {
	uint32_t size;
	unsigned fds;
};

static struct shape shape_of(uint32_t req)
{
	switch (req) {
	case VHU_REQ_SET_FEATURES:
	case VHU_REQ_SET_PROTOCOL_FEATURES:
	case VHU_REQ_SET_STATUS:
	case VHU_REQ_SEND_RARP:
	case VHU_REQ_NET_SET_MTU:
	case VHU_REQ_SET_VRING_ENDIAN:
		return (struct shape){8, 0};
	case VHU_REQ_SET_VRING_NUM:
	case VHU_REQ_SET_VRING_BASE:
	case VHU_REQ_GET_VRING_BASE:
	case VHU_REQ_SET_VRING_ENABLE:
	case VHU_REQ_VRING_KICK:
		return (struct shape){8, 0};
	case VHU_REQ_SET_VRING_KICK:
	case VHU_REQ_SET_VRING_CALL:
	case VHU_REQ_SET_VRING_ERR:
		return (struct shape){8, 1};
	case VHU_REQ_SET_MEM_TABLE:
		return (struct shape){8 + sizeof(struct vhu_mem_region_desc), 1};
	case VHU_REQ_SET_LOG_BASE:
		return (struct shape){sizeof(struct vhu_log_msg), 1};
	case VHU_REQ_SET_LOG_FD:
	case VHU_REQ_SET_BACKEND_REQ_FD:
	case VHU_REQ_GPU_SET_SOCKET:
		return (struct shape){0, 1};
	case VHU_REQ_SET_VRING_ADDR:
		return (struct shape){sizeof(struct vhu_vring_addr), 0};
	case VHU_REQ_GET_CONFIG:
	case VHU_REQ_SET_CONFIG:
		return (struct shape){VHU_CONFIG_HDR_SIZE + 4, 0};
	case VHU_REQ_GET_INFLIGHT_FD:
		return (struct shape){sizeof(struct vhu_inflight_msg), 0};
	case VHU_REQ_SET_INFLIGHT_FD:
		return (struct shape){sizeof(struct vhu_inflight_msg), 1};
	case VHU_REQ_ADD_MEM_REGION:
		return (struct shape){sizeof(struct vhu_mem_single_msg), 1};
	case VHU_REQ_REM_MEM_REGION:
		return (struct shape){sizeof(struct vhu_mem_single_msg), 0};
	case VHU_REQ_GET_SHARED_OBJECT:
		return (struct shape){sizeof(struct vhu_shared_object_msg), 0};
	case VHU_REQ_SET_DEVICE_STATE_FD:
		return (struct shape){sizeof(struct vhu_device_state_msg), 1};
	case VHU_REQ_IOTLB_MSG:
		return (struct shape){64, 0};
	default:
		return (struct shape){0, 0};
	}
}

/* These change the connection so that REPLY_ACK is off afterwards: they
 * are sent without NEED_REPLY and followed by a fresh negotiation. */
static bool drops_ack(uint32_t req)
{
	return req == VHU_REQ_RESET_OWNER || req == VHU_REQ_SET_PROTOCOL_FEATURES ||
	       req == VHU_REQ_RESET_DEVICE || req == VHU_REQ_SET_FEATURES;
}

static struct vhu_msg reply;

/* Send one hostile message and check that the connection still works.
 * Returns false (after reporting) when the daemon hung up or hung. */
static bool send_one(struct vhuf *f, uint32_t req, const void *p, uint32_t size, const int *fds,
                     unsigned nfds)
{
	bool ack = !drops_ack(req);
	uint64_t v;
	int r;

	memset(&reply, 0, sizeof(reply));
	r = vhuf_request(f, req, p, size, fds, nfds, ack, &reply);
	vhu_msg_close_fds(&reply);
	if (r == -ETIMEDOUT || r == -ECONNRESET || r == -EPIPE) {
		fprintf(stderr, "# %s size %u fds %u: %s\n", vhu_request_name(req), size, nfds,
		        strerror(-r));
		return false;
	}
	r = vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v);
	if (r < 0) {
		fprintf(stderr, "# after %s size %u fds %u: GET_FEATURES %s\n",
		        vhu_request_name(req), size, nfds, strerror(-r));
		return false;
	}
	if (!ack || req == VHU_REQ_RESET_OWNER)
		r = vhuf_negotiate(f, F_ALL, PF_ALL);
	return r == 0;
}

static int make_fds(int *fds, unsigned n, bool wrong_kind)
{
	for (unsigned i = 0; i < n; i++) {
		fds[i] = wrong_kind ? h_eventfd() : h_memfd(65536);
		if (fds[i] < 0)
			return -1;
	}
	return 0;
}

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

static void sweep(uint32_t req)
{
	static uint8_t buf[VHU_MAX_PAYLOAD];
	struct shape s = shape_of(req);
	uint32_t sizes[5] = {0, s.size ? s.size - 1 : 1, s.size, s.size + 1, VHU_MAX_PAYLOAD};
	unsigned nfd[4] = {s.fds ? s.fds - 1 : 0, s.fds, s.fds + 1, VHU_MAX_FDS};
	struct henv h;
	struct vhuf *f;
	bool ok = true;

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	f = h_open(&h);
	VT_CHECK(f != NULL);
	for (unsigned fill = 0; f && ok && fill < 2; fill++) {
		memset(buf, fill ? 0xff : 0, sizeof(buf));
		for (unsigned i = 0; ok && i < 5; i++) {
			for (unsigned k = 0; ok && k < 4; k++) {
				int fds[VHU_MAX_FDS];

				VT_REQUIRE(make_fds(fds, nfd[k], fill) == 0);
				ok = send_one(f, req, buf, sizes[i], fds, nfd[k]);
				close_fds(fds, nfd[k]);
			}
		}
	}
	VT_CHECK(ok);
	h_close(&h, f);
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}

#define SWEEP(name, req)                                                                           \
	VT_CASE(sweep_##name)                                                                      \
	{                                                                                          \
		sweep(req);                                                                        \
	}

SWEEP(none, VHU_REQ_NONE)
SWEEP(get_features, VHU_REQ_GET_FEATURES)
SWEEP(set_features, VHU_REQ_SET_FEATURES)
SWEEP(set_owner, VHU_REQ_SET_OWNER)
SWEEP(reset_owner, VHU_REQ_RESET_OWNER)
SWEEP(set_mem_table, VHU_REQ_SET_MEM_TABLE)
SWEEP(set_log_base, VHU_REQ_SET_LOG_BASE)
SWEEP(set_log_fd, VHU_REQ_SET_LOG_FD)
SWEEP(set_vring_num, VHU_REQ_SET_VRING_NUM)
SWEEP(set_vring_addr, VHU_REQ_SET_VRING_ADDR)
SWEEP(set_vring_base, VHU_REQ_SET_VRING_BASE)
SWEEP(get_vring_base, VHU_REQ_GET_VRING_BASE)
SWEEP(set_vring_kick, VHU_REQ_SET_VRING_KICK)
SWEEP(set_vring_call, VHU_REQ_SET_VRING_CALL)
SWEEP(set_vring_err, VHU_REQ_SET_VRING_ERR)
SWEEP(get_protocol_features, VHU_REQ_GET_PROTOCOL_FEATURES)
SWEEP(set_protocol_features, VHU_REQ_SET_PROTOCOL_FEATURES)
SWEEP(get_queue_num, VHU_REQ_GET_QUEUE_NUM)
SWEEP(set_vring_enable, VHU_REQ_SET_VRING_ENABLE)
SWEEP(send_rarp, VHU_REQ_SEND_RARP)
SWEEP(net_set_mtu, VHU_REQ_NET_SET_MTU)
SWEEP(set_backend_req_fd, VHU_REQ_SET_BACKEND_REQ_FD)
SWEEP(iotlb_msg, VHU_REQ_IOTLB_MSG)
SWEEP(set_vring_endian, VHU_REQ_SET_VRING_ENDIAN)
SWEEP(get_config, VHU_REQ_GET_CONFIG)
SWEEP(set_config, VHU_REQ_SET_CONFIG)
SWEEP(create_crypto_session, VHU_REQ_CREATE_CRYPTO_SESSION)
SWEEP(close_crypto_session, VHU_REQ_CLOSE_CRYPTO_SESSION)
SWEEP(postcopy_advise, VHU_REQ_POSTCOPY_ADVISE)
SWEEP(postcopy_listen, VHU_REQ_POSTCOPY_LISTEN)
SWEEP(postcopy_end, VHU_REQ_POSTCOPY_END)
SWEEP(get_inflight_fd, VHU_REQ_GET_INFLIGHT_FD)
SWEEP(set_inflight_fd, VHU_REQ_SET_INFLIGHT_FD)
SWEEP(gpu_set_socket, VHU_REQ_GPU_SET_SOCKET)
SWEEP(reset_device, VHU_REQ_RESET_DEVICE)
SWEEP(vring_kick, VHU_REQ_VRING_KICK)
SWEEP(get_max_mem_slots, VHU_REQ_GET_MAX_MEM_SLOTS)
SWEEP(add_mem_region, VHU_REQ_ADD_MEM_REGION)
SWEEP(rem_mem_region, VHU_REQ_REM_MEM_REGION)
SWEEP(set_status, VHU_REQ_SET_STATUS)
SWEEP(get_status, VHU_REQ_GET_STATUS)
SWEEP(get_shared_object, VHU_REQ_GET_SHARED_OBJECT)
SWEEP(set_device_state_fd, VHU_REQ_SET_DEVICE_STATE_FD)
SWEEP(check_device_state, VHU_REQ_CHECK_DEVICE_STATE)
SWEEP(unknown_44, VHU_REQ_MAX)
SWEEP(unknown_huge, 0xffffffffu)
