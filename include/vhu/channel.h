/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The back-end -> front-end channel (SET_BACKEND_REQ_FD): config-change
 * notifications, shared-object table updates, in-band vring calls.
 */
#ifndef VHU_CHANNEL_H
#define VHU_CHANNEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_channel;

/*
 * Send one request with `size` payload bytes and up to VHU_MAX_FDS fds
 * (borrowed).  If REPLY_ACK was negotiated the call waits for the front
 * end's u64 reply and returns it negated when non-zero.  Calls from
 * different threads are serialised.  Returns 0 or -errno (-ENOTCONN once
 * the front end is gone).
 */
int vhu_channel_request(struct vhu_channel *ch, uint32_t request, const void *payload,
                        uint32_t size, const int *fds, unsigned nfds);

/* Config space changed (VHOST_USER_BACKEND_CONFIG_CHANGE_MSG). */
int vhu_channel_config_changed(struct vhu_channel *ch);

/* Shared-object table (VHOST_USER_BACKEND_SHARED_OBJECT_*). lookup returns a
 * new fd the caller owns, or -errno. */
int vhu_channel_shared_object_add(struct vhu_channel *ch, const uint8_t uuid[16]);
int vhu_channel_shared_object_remove(struct vhu_channel *ch, const uint8_t uuid[16]);
int vhu_channel_shared_object_lookup(struct vhu_channel *ch, const uint8_t uuid[16]);

/* In-band notifications (INBAND_NOTIFICATIONS): call / error on queue q. */
int vhu_channel_vring_call(struct vhu_channel *ch, unsigned q);
int vhu_channel_vring_err(struct vhu_channel *ch, unsigned q);

#ifdef __cplusplus
}
#endif
#endif
