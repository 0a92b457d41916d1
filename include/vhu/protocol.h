/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost-user wire format (qemu docs/interop/vhost-user.rst) and message
 * framing with file-descriptor passing.  Used by the back-end library and by
 * the front-end library alike.  All integers on the wire are little-endian;
 * libvhu is Linux/x86-64/aarch64 only, so they are native here.
 */
#ifndef VHU_PROTOCOL_H
#define VHU_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Front-end -> back-end requests. */
enum vhu_request {
	VHU_REQ_NONE = 0,
	VHU_REQ_GET_FEATURES = 1,
	VHU_REQ_SET_FEATURES = 2,
	VHU_REQ_SET_OWNER = 3,
	VHU_REQ_RESET_OWNER = 4,
	VHU_REQ_SET_MEM_TABLE = 5,
	VHU_REQ_SET_LOG_BASE = 6,
	VHU_REQ_SET_LOG_FD = 7,
	VHU_REQ_SET_VRING_NUM = 8,
	VHU_REQ_SET_VRING_ADDR = 9,
	VHU_REQ_SET_VRING_BASE = 10,
	VHU_REQ_GET_VRING_BASE = 11,
	VHU_REQ_SET_VRING_KICK = 12,
	VHU_REQ_SET_VRING_CALL = 13,
	VHU_REQ_SET_VRING_ERR = 14,
	VHU_REQ_GET_PROTOCOL_FEATURES = 15,
	VHU_REQ_SET_PROTOCOL_FEATURES = 16,
	VHU_REQ_GET_QUEUE_NUM = 17,
	VHU_REQ_SET_VRING_ENABLE = 18,
	VHU_REQ_SEND_RARP = 19,
	VHU_REQ_NET_SET_MTU = 20,
	VHU_REQ_SET_BACKEND_REQ_FD = 21,
	VHU_REQ_IOTLB_MSG = 22,
	VHU_REQ_SET_VRING_ENDIAN = 23,
	VHU_REQ_GET_CONFIG = 24,
	VHU_REQ_SET_CONFIG = 25,
	VHU_REQ_CREATE_CRYPTO_SESSION = 26,
	VHU_REQ_CLOSE_CRYPTO_SESSION = 27,
	VHU_REQ_POSTCOPY_ADVISE = 28,
	VHU_REQ_POSTCOPY_LISTEN = 29,
	VHU_REQ_POSTCOPY_END = 30,
	VHU_REQ_GET_INFLIGHT_FD = 31,
	VHU_REQ_SET_INFLIGHT_FD = 32,
	VHU_REQ_GPU_SET_SOCKET = 33,
	VHU_REQ_RESET_DEVICE = 34,
	VHU_REQ_VRING_KICK = 35,
	VHU_REQ_GET_MAX_MEM_SLOTS = 36,
	VHU_REQ_ADD_MEM_REGION = 37,
	VHU_REQ_REM_MEM_REGION = 38,
	VHU_REQ_SET_STATUS = 39,
	VHU_REQ_GET_STATUS = 40,
	VHU_REQ_GET_SHARED_OBJECT = 41,
	VHU_REQ_SET_DEVICE_STATE_FD = 42,
	VHU_REQ_CHECK_DEVICE_STATE = 43,
	VHU_REQ_MAX
};

/* Back-end -> front-end requests (on the SET_BACKEND_REQ_FD channel). */
enum vhu_backend_request {
	VHU_BREQ_IOTLB_MSG = 1,
	VHU_BREQ_CONFIG_CHANGE_MSG = 2,
	VHU_BREQ_VRING_HOST_NOTIFIER_MSG = 3,
	VHU_BREQ_VRING_CALL = 4,
	VHU_BREQ_VRING_ERR = 5,
	VHU_BREQ_SHARED_OBJECT_ADD = 6,
	VHU_BREQ_SHARED_OBJECT_REMOVE = 7,
	VHU_BREQ_SHARED_OBJECT_LOOKUP = 8,
	VHU_BREQ_MAX
};

/* Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
enum vhu_protocol_feature {
	VHU_PF_MQ = 0,
	VHU_PF_LOG_SHMFD = 1,
	VHU_PF_RARP = 2,
	VHU_PF_REPLY_ACK = 3,
	VHU_PF_MTU = 4,
	VHU_PF_BACKEND_REQ = 5,
	VHU_PF_CROSS_ENDIAN = 6,
	VHU_PF_CRYPTO_SESSION = 7,
	VHU_PF_PAGEFAULT = 8,
	VHU_PF_CONFIG = 9,
	VHU_PF_BACKEND_SEND_FD = 10,
	VHU_PF_HOST_NOTIFIER = 11,
	VHU_PF_INFLIGHT_SHMFD = 12,
	VHU_PF_RESET_DEVICE = 13,
	VHU_PF_INBAND_NOTIFICATIONS = 14,
	VHU_PF_CONFIGURE_MEM_SLOTS = 15,
	VHU_PF_STATUS = 16,
	VHU_PF_XEN_MMAP = 17,
	VHU_PF_SHARED_OBJECT = 18,
	VHU_PF_DEVICE_STATE = 19,
};

/*
 * The protocol features libvhu implements; a device's protocol_features
 * are masked with it (backend.h).  RARP and MTU are offered only by a
 * device with the send_rarp / set_mtu ops; LOG_SHMFD (and PAGEFAULT, where
 * userfaultfd works) the library adds itself unless the daemon was created
 * with no_migration.  Not implemented: CROSS_ENDIAN, CRYPTO_SESSION,
 * HOST_NOTIFIER, XEN_MMAP.
 */
#define VHU_PF_IMPLEMENTED                                                                         \
	((1ULL << VHU_PF_MQ) | (1ULL << VHU_PF_LOG_SHMFD) | (1ULL << VHU_PF_RARP) |                \
	 (1ULL << VHU_PF_REPLY_ACK) | (1ULL << VHU_PF_MTU) | (1ULL << VHU_PF_BACKEND_REQ) |        \
	 (1ULL << VHU_PF_PAGEFAULT) | (1ULL << VHU_PF_CONFIG) | (1ULL << VHU_PF_BACKEND_SEND_FD) | \
	 (1ULL << VHU_PF_INFLIGHT_SHMFD) | (1ULL << VHU_PF_RESET_DEVICE) |                         \
	 (1ULL << VHU_PF_INBAND_NOTIFICATIONS) | (1ULL << VHU_PF_CONFIGURE_MEM_SLOTS) |            \
	 (1ULL << VHU_PF_STATUS) | (1ULL << VHU_PF_SHARED_OBJECT) | (1ULL << VHU_PF_DEVICE_STATE))

#define VHU_BIT(n) (1ULL << (n))

/* Virtio / vhost feature bits the library itself acts on. */
#define VHU_F_NOTIFY_ON_EMPTY    24
#define VHU_F_LOG_ALL            26 /* VHOST_F_LOG_ALL */
#define VHU_F_ANY_LAYOUT         27
#define VHU_F_RING_INDIRECT_DESC 28
#define VHU_F_RING_EVENT_IDX     29
#define VHU_F_PROTOCOL_FEATURES  30 /* VHOST_USER_F_PROTOCOL_FEATURES */
#define VHU_F_VERSION_1          32
#define VHU_F_ACCESS_PLATFORM    33
#define VHU_F_RING_PACKED        34
#define VHU_F_IN_ORDER           35

/* Header flags. */
#define VHU_HDR_VERSION      0x1u
#define VHU_HDR_VERSION_MASK 0x3u
#define VHU_HDR_REPLY        (1u << 2)
#define VHU_HDR_NEED_REPLY   (1u << 3)

/* Limits. */
#define VHU_MAX_FDS              8   /* fds one message may carry */
#define VHU_MEM_BASELINE_REGIONS 8   /* regions in SET_MEM_TABLE */
#define VHU_MAX_MEM_SLOTS        509 /* with CONFIGURE_MEM_SLOTS */
#define VHU_MAX_CONFIG_SIZE      256
#define VHU_MAX_PAYLOAD          4096 /* largest payload any request may carry */
#define VHU_MAX_QUEUES           256
#define VHU_MAX_QUEUE_SIZE       32768

/* VRING_KICK/CALL/ERR u64 payload: index and "no fd" flag. */
#define VHU_VRING_IDX_MASK  0xffu
#define VHU_VRING_NOFD_MASK (1u << 8)

/* SET_VRING_ADDR flags. */
#define VHU_VRING_F_LOG 0

struct vhu_msg_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vhu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
};

struct vhu_mem_region_desc {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vhu_mem_table_msg {
	uint32_t nregions;
	uint32_t padding;
	struct vhu_mem_region_desc regions[VHU_MEM_BASELINE_REGIONS];
};

struct vhu_mem_single_msg {
	uint64_t padding;
	struct vhu_mem_region_desc region;
};

struct vhu_log_msg {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

struct vhu_config_msg {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHU_MAX_CONFIG_SIZE];
};
#define VHU_CONFIG_HDR_SIZE 12u

struct vhu_inflight_msg {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

struct vhu_device_state_msg {
	uint32_t direction; /* 0 = save (back end -> front end), 1 = load */
	uint32_t phase;     /* 0 = stopped */
};

struct vhu_shared_object_msg {
	uint8_t uuid[16];
};

struct vhu_vring_area_msg { /* VRING_HOST_NOTIFIER_MSG */
	uint64_t u64;
	uint64_t size;
	uint64_t offset;
};

/* One message: header plus a payload large enough for every request. */
struct vhu_msg {
	struct vhu_msg_hdr hdr;
	union {
		uint64_t u64;
		struct vhu_vring_state state;
		struct vhu_vring_addr addr;
		struct vhu_mem_table_msg memory;
		struct vhu_mem_single_msg mem_reg;
		struct vhu_log_msg log;
		struct vhu_config_msg config;
		struct vhu_inflight_msg inflight;
		struct vhu_device_state_msg state_xfer;
		struct vhu_shared_object_msg object;
		struct vhu_vring_area_msg area;
		uint8_t raw[VHU_MAX_PAYLOAD];
	} payload;
	int fds[VHU_MAX_FDS];
	unsigned nfds;
};

/* Name of a request for logs ("SET_MEM_TABLE"); "UNKNOWN" if out of range. */
const char *vhu_request_name(uint32_t request);

/*
 * Receive one message from a connected SOCK_STREAM unix socket.
 * Blocks until a whole header and payload arrived.  Received fds are stored
 * in msg->fds (caller owns them and must close them); fds beyond
 * VHU_MAX_FDS or with a truncated control message make the call fail
 * after closing every fd received.
 * Returns 0, -ECONNRESET on orderly EOF, -EMSGSIZE when the header's size
 * exceeds VHU_MAX_PAYLOAD, -EPROTO on a bad version, or another -errno.
 * Thread: any, one reader per socket.
 */
int vhu_msg_recv(int sock, struct vhu_msg *msg);

/*
 * Send hdr + hdr.size payload bytes and nfds fds (SCM_RIGHTS) in one
 * sendmsg (retried on short writes without fds).  fds stay owned by the
 * caller.  Returns 0 or -errno (-EINVAL if nfds > VHU_MAX_FDS or size >
 * VHU_MAX_PAYLOAD).  Thread: any, callers serialise writers per socket.
 */
int vhu_msg_send(int sock, const struct vhu_msg *msg);

/* Close every fd a message carries and set nfds to 0. */
void vhu_msg_close_fds(struct vhu_msg *msg);

#ifdef __cplusplus
}
#endif
#endif
