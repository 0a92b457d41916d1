/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device interface: what a vhost-user back end implements.
 *
 * This is rust-vmm's VhostUserBackend trait in C: a const table of
 * operations plus an opaque device pointer `dev` passed to each of them.
 * Every entry may be NULL and then behaves like the trait's default.
 *
 * Required: handle_event, and num_queues, max_queue_size and features,
 * each as a callback or as a constant in `fixed` (vhu_daemon_new() fails
 * with -EINVAL otherwise).  protocol_features may be a constant of 0.
 *
 * Where the C API differs from the crate, and why:
 *  - The crate also requires set_event_idx and update_memory.  Here they
 *    are optional: the library itself turns EVENT_IDX on in the rings and
 *    maps every memory table for them, which is what a crate device does
 *    in those methods; a device that needs to know still can.
 *  - The four "what are you" methods may be constants (`fixed`), since a
 *    C device would otherwise write four functions that return one.
 *  - Listener ids (vhu_daemon_add_listener) start at num_queues; the
 *    crate's start at num_queues + 1 because it gives id num_queues to
 *    each worker's exit event, which here has an epoll slot of its own.
 *  - frontend_connected, queue_ready and frontend_gone are not in the
 *    crate, whose devices cannot tell when the front end goes (input taken
 *    meanwhile went to rings nobody reads) or when a ring is ready (input
 *    that waited had to wait for the driver's next kick too).
 *  - Errors are negative errno values, not Result.
 *
 * Protocol features: the library implements those in VHU_PF_IMPLEMENTED
 * (protocol.h: MQ, LOG_SHMFD, RARP, REPLY_ACK, MTU, BACKEND_REQ, PAGEFAULT,
 * CONFIG, BACKEND_SEND_FD, INFLIGHT_SHMFD, RESET_DEVICE,
 * INBAND_NOTIFICATIONS, CONFIGURE_MEM_SLOTS, STATUS, SHARED_OBJECT,
 * DEVICE_STATE) and offers the intersection with the device's
 * protocol_features, plus LOG_SHMFD (and PAGEFAULT where userfaultfd
 * works) unless the daemon has no_migration; RARP and MTU only with the
 * send_rarp / set_mtu ops.  CROSS_ENDIAN, CRYPTO_SESSION, HOST_NOTIFIER
 * and XEN_MMAP are never offered.
 *
 * VhostUserBackendMut and its Mutex/RwLock wrappers become the lock mode
 * given to vhu_daemon_new(): with VHU_LOCK_NONE the callbacks run
 * concurrently (the device synchronises itself, like the trait's &self);
 * with VHU_LOCK_MUTEX every callback runs under one mutex; with
 * VHU_LOCK_RWLOCK the methods marked [write] take the write side and the
 * others the read side, as the reference's RwLock<T> wrapper does.
 *
 * Threads: [h] = called from the protocol handler thread (one per daemon),
 * [w] = from a worker thread, given as thread_id.  With VHU_LOCK_NONE an
 * [h] op may run while workers run handle_event.
 *
 * ABI: the table only grows at its end, into `reserved`; leave what you do
 * not use out of the initialiser (zero), then a device built against this
 * header keeps working with later libvhu.so.0 releases.
 */
#ifndef VHU_BACKEND_H
#define VHU_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_vring;
struct vhu_mem;
struct vhu_channel;

enum vhu_lock_mode {
	VHU_LOCK_NONE = 0,
	VHU_LOCK_MUTEX = 1,
	VHU_LOCK_RWLOCK = 2,
};

enum vhu_state_direction { VHU_STATE_SAVE = 0, VHU_STATE_LOAD = 1 };
enum vhu_state_phase { VHU_STATE_PHASE_STOPPED = 0 };

struct vhu_backend_ops {
	/* [h][read] Queues the device has (>= 1, <= VHU_MAX_QUEUES). Required
	 * (or fixed.num_queues). */
	unsigned (*num_queues)(void *dev);
	/* [h][read] Largest ring size accepted (power of two). Required (or
	 * fixed.max_queue_size). */
	unsigned (*max_queue_size)(void *dev);
	/* [h][read] Virtio feature bits offered. Required (or fixed.features).
	 * The library adds VHOST_USER_F_PROTOCOL_FEATURES, and VHOST_F_LOG_ALL
	 * unless the daemon has no_migration. */
	uint64_t (*features)(void *dev);
	/* [h][write] Features the driver acked. Default: nothing. */
	void (*acked_features)(void *dev, uint64_t features);
	/* [h][read] vhost-user protocol features (VHU_BIT(VHU_PF_*)); or
	 * fixed.protocol_features.  Masked with VHU_PF_IMPLEMENTED (see the
	 * top of the file for what the library adds). */
	uint64_t (*protocol_features)(void *dev);
	/* [h][write] Front end reset the device (RESET_DEVICE/RESET_OWNER or
	 * disconnect). Default: nothing. */
	void (*reset_device)(void *dev);
	/* [h][write] EVENT_IDX negotiated or not. Default: nothing. */
	void (*set_event_idx)(void *dev, bool enabled);
	/* [h][read] Fill buf with `size` bytes of config space from `offset`.
	 * Returns bytes filled (== size) or -errno. Default: -ENOTSUP (empty
	 * config, as the trait's empty Vec: the request is refused). */
	int (*get_config)(void *dev, uint32_t offset, void *buf, uint32_t size);
	/* [h][write] Driver wrote config space. Default: 0 (accepted, ignored). */
	int (*set_config)(void *dev, uint32_t offset, const void *buf, uint32_t size);
	/* [h][write] New guest memory snapshot (borrowed; take vhu_mem_ref() to
	 * keep it). Default: 0. */
	int (*update_memory)(void *dev, struct vhu_mem *mem);
	/* [h][write] The back-end -> front-end channel is up (borrowed, valid
	 * until the next call or until reset_device). Default: nothing. */
	void (*set_backend_req_fd)(void *dev, struct vhu_channel *ch);
	/* [h][write] Export the object `uuid`: return a dma-buf/fd the caller
	 * then owns, or -errno. Default: -ENOTSUP. */
	int (*get_shared_object)(void *dev, const uint8_t uuid[16]);
	/* [h][write] GPU_SET_SOCKET: device takes ownership of `fd` on success.
	 * Default: -ENOTSUP. */
	int (*set_gpu_socket)(void *dev, int fd);
	/* [h][read] Worker threads and the queues each serves: write up to `max`
	 * bitmasks (bit q = queue q) and return how many. Default: one thread
	 * with mask 0xffffffff. */
	int (*queues_per_thread)(void *dev, uint64_t *masks, unsigned max);
	/* [h][read] An eventfd that, when written, makes worker `thread` exit;
	 * -1 for none. The library always has its own exit event too.
	 * The fd stays owned by the device. Default: -1. */
	int (*exit_event)(void *dev, unsigned thread);
	/* [w][write] Something happened: device_event < num_queues is a kick on
	 * that queue (already drained, ring enabled); a larger value is a
	 * listener the device registered (vhu_daemon_add_listener). evset is
	 * the epoll event mask. vrings are all queues of the connection.
	 * Return 0 or -errno (logged; the worker goes on). Required. */
	int (*handle_event)(void *dev, uint16_t device_event, uint32_t evset,
	                    struct vhu_vring **vrings, unsigned nvrings, unsigned thread_id);
	/* [h][write] SET_DEVICE_STATE_FD: transfer state through `fd` (device
	 * takes ownership on success). May set *reply_fd to an fd the library
	 * sends back and closes. Default: -ENOTSUP. */
	int (*set_device_state_fd)(void *dev, enum vhu_state_direction dir,
	                           enum vhu_state_phase phase, int fd, int *reply_fd);
	/* [h][read] Result of the last state transfer. Default: -ENOTSUP. */
	int (*check_device_state)(void *dev);

	/* ---- front-end lifecycle (not in the crate; see the top of the file) */

	/* [h][write] A front end connected; called before its first request
	 * is handled.  Default: nothing. */
	void (*frontend_connected)(void *dev);
	/* [w][write] Queue q became ready: started (it has a size, addresses,
	 * memory and a kick fd) and enabled.  Called on the worker thread
	 * that serves q (thread_id), once each time q becomes ready, before
	 * that worker handles any kick of q.  A device holding input for the
	 * driver delivers it here instead of waiting for the driver's next
	 * kick.  Default: nothing. */
	void (*queue_ready)(void *dev, unsigned q, unsigned thread_id);
	/* [w][write] The front end is gone: it hung up, or the library
	 * dropped it (protocol error, vhu_daemon_stop).  Called once per
	 * front end for each worker thread (thread_id), before that worker
	 * makes any other callback, and before reset_device(): on the worker
	 * itself when it sees the hang-up, otherwise on the protocol handler
	 * thread while that worker is parked, so never concurrently with
	 * that worker's callbacks.  From then on the worker's rings pop
	 * nothing (vhu_vring_pop() returns 0, vhu_vring_enabled() is false):
	 * input that arrives now stays with the device for the next front
	 * end, and chains popped earlier and still held can only be pushed
	 * back for a front end that will never read them.  Default:
	 * nothing. */
	void (*frontend_gone)(void *dev, unsigned thread_id);

	/* ---- vhost-user-net requests after a migration ---- */

	/* [h][write] SEND_RARP, after a migration: announce the guest's MAC
	 * (`mac`, 6 bytes) where its frames leave the device (a RARP frame,
	 * so that switches learn its new port). The library offers
	 * PROTOCOL_F_RARP only with this op. Return 0 or -errno (logged;
	 * the request has no reply). Default: not offered. */
	int (*send_rarp)(void *dev, const uint8_t mac[6]);
	/* [h][write] NET_SET_MTU: the MTU the guest was given (68..65535).
	 * The library offers PROTOCOL_F_MTU only with this op. Return 0 or
	 * -errno (reported with REPLY_ACK). Default: not offered. */
	int (*set_mtu)(void *dev, uint16_t mtu);

	/* Constants for the first four callbacks, used when the callback is
	 * NULL, so that a device need not write functions that return a
	 * constant: num_queues and max_queue_size must then be non-zero and
	 * features must include VHU_F_VERSION_1 or other bits (0 is taken
	 * for "forgotten"); protocol_features may be 0. */
	struct vhu_backend_fixed {
		unsigned num_queues;
		unsigned max_queue_size;
		uint64_t features;
		uint64_t protocol_features;
	} fixed;

	/* Room for later operations: must be NULL (leave it out of the
	 * initialiser).  A later release adds an operation by taking one
	 * entry of it, so the table's size and every offset stay the same and
	 * a device built against this header keeps working. */
	void (*reserved[16])(void);
};

#ifdef __cplusplus
}
#endif
#endif
