/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvhu-frontend: a vhost-user front end and virtio driver in user space,
 * for tests, benchmarks and tools.  It connects to a back end, negotiates,
 * shares memfd-backed "guest memory", lays out split rings (or packed ones
 * when VIRTIO_F_RING_PACKED was negotiated) in it and drives them as a
 * guest driver would.
 *
 * Threads: set-up calls (connect, negotiate, queue set-up, requests) from
 * one thread; afterwards each queue may be driven by its own thread
 * (submit/kick/wait/used on queue q touch only queue q's state).
 */
#ifndef VHU_FRONTEND_H
#define VHU_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhu/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vhuf;

struct vhuf_opts {
	size_t mem_size;        /* guest memory bytes (default 64 MiB) */
	unsigned nregions;      /* split memory into this many regions/memfds (default 1, max 8) */
	uint64_t gpa_base;      /* guest physical address of the first region (default 0) */
	uint64_t gpa_gap;       /* hole between regions (default 0) */
	int connect_timeout_ms; /* retry connecting this long (default 0: once) */
};

/* Connect to the back end's socket and create guest memory.  Nothing is
 * sent yet.  0 or -errno. */
int vhuf_connect(struct vhuf **out, const char *path, const struct vhuf_opts *opts);
/* Close only the socket and connect again to `path` (retrying as
 * connect_timeout_ms says), keeping guest memory, rings and eventfds, so a
 * test can resume with vhuf_negotiate() + vhuf_queue_restart() where the
 * old connection stopped.  Negotiated state is forgotten.  0 or -errno
 * (the struct stays valid and may be closed). */
int vhuf_reconnect(struct vhuf *f, const char *path);
/*
 * The front end as a server (QEMU `-chardev socket,server=on`), for back
 * ends in client mode: vhuf_listen() binds and listens at path (a file
 * there is replaced) and returns the listening fd (the caller closes it
 * and removes the file).  vhuf_accept() waits up to timeout_ms (-1:
 * forever) for a back end to connect on lfd, then is vhuf_connect();
 * vhuf_reaccept() is vhuf_reconnect() for the next back end on lfd.
 * 0 / fd or -errno (-ETIMEDOUT: nobody came).
 */
int vhuf_listen(const char *path);
int vhuf_accept(struct vhuf **out, int lfd, int timeout_ms, const struct vhuf_opts *opts);
int vhuf_reaccept(struct vhuf *f, int lfd, int timeout_ms);
/* Close the socket, every eventfd and the guest memory. */
void vhuf_close(struct vhuf *f);
/* The unix socket (for hostile tests that write raw bytes). */
int vhuf_sock(const struct vhuf *f);

/* ---- raw protocol ---------------------------------------------------- */

/*
 * Send `req` with payload and fds (borrowed).  If the request has a reply
 * by the spec (GET_*, SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE, IOTLB_MSG,
 * POSTCOPY_ADVISE/END, CREATE_CRYPTO_SESSION, and SET_LOG_BASE once
 * LOG_SHMFD was negotiated), or need_reply is set (REPLY_ACK), wait for it
 * and store it in *reply (may be NULL; fds in it are then the caller's).
 * A request with a reply of its own returns 0 whatever the reply says:
 * check reply->hdr.size (a back end refusing answers with an empty
 * payload).  For a REPLY_ACK the u64 is returned negated when non-zero.
 * Returns 0 or -errno (-ECONNRESET when the back end hung up, -ETIMEDOUT
 * after 5 s without reply, -EPROTO for a reply to another request).
 * Thread: the set-up thread (one request at a time per connection).
 */
int vhuf_request(struct vhuf *f, uint32_t req, const void *payload, uint32_t size, const int *fds,
                 unsigned nfds, bool need_reply, struct vhu_msg *reply);

/* Simple requests.  get: a GET_* request answered with a u64 (-EIO when the
 * back end refused with an empty reply).  set: a u64 payload, acked when
 * REPLY_ACK was negotiated. */
int vhuf_get_u64(struct vhuf *f, uint32_t req, uint64_t *val);
int vhuf_set_u64(struct vhuf *f, uint32_t req, uint64_t val);

/*
 * Do what QEMU does on start: GET_FEATURES, GET/SET_PROTOCOL_FEATURES
 * (pf & offered), SET_OWNER (unless this connection already owns the back
 * end: ownership survives RESET_DEVICE, not RESET_OWNER), SET_FEATURES
 * (features & offered | PROTOCOL_FEATURES), SET_MEM_TABLE.  With REPLY_ACK
 * every set request asks for an ack.  Results in
 * vhuf_features()/vhuf_protocol_features().  Calling it again after
 * RESET_DEVICE re-initialises the back end.
 */
int vhuf_negotiate(struct vhuf *f, uint64_t features, uint64_t protocol_features);
uint64_t vhuf_features(const struct vhuf *f);
uint64_t vhuf_protocol_features(const struct vhuf *f);
/* Send SET_MEM_TABLE describing the current guest memory. */
int vhuf_send_mem_table(struct vhuf *f);

/* After POSTCOPY_LISTEN (sent with vhuf_request) SET_MEM_TABLE and
 * ADD_MEM_REGION are answered with the back end's own address of each
 * region, as for QEMU's postcopy destination: vhuf_send_mem_table() then
 * reads that reply, acknowledges it (u64 0) and keeps the addresses, which
 * a test serving the back end's userfaults needs.  0 with *addr, or
 * -ENOENT before such a reply. */
int vhuf_backend_addr(const struct vhuf *f, unsigned i, uint64_t *addr);

/* Config space (needs PF_CONFIG). */
int vhuf_get_config(struct vhuf *f, uint32_t offset, void *buf, uint32_t size);

/* ---- guest memory ---------------------------------------------------- */

/* Allocate from guest memory (bump allocator, zeroed; never freed).
 * Returns the guest physical address or UINT64_MAX when full.  Thread: any
 * (queue threads may allocate their buffers concurrently). */
uint64_t vhuf_alloc(struct vhuf *f, size_t size, size_t align);
/* Host pointer for a guest physical address, or NULL if unmapped. */
void *vhuf_ptr(struct vhuf *f, uint64_t gpa);
/* Front-end virtual address (what vring addresses use) of a gpa, or
 * UINT64_MAX if unmapped. */
uint64_t vhuf_uva(struct vhuf *f, uint64_t gpa);
/* Region i as it is sent in SET_MEM_TABLE, and its memfd. */
int vhuf_region(const struct vhuf *f, unsigned i, struct vhu_mem_region_desc *d, int *fd);
unsigned vhuf_nregions(const struct vhuf *f);

/* ---- queues (split or packed rings, driver side) ------------------------ */

/*
 * Allocate a ring of `size` entries in guest memory and create kick/call
 * eventfds, then send SET_VRING_NUM, BASE(0), ADDR, CALL, ERR, KICK and,
 * when PROTOCOL_FEATURES was negotiated, SET_VRING_ENABLE(1) (each with
 * need_reply when REPLY_ACK was negotiated).  EVENT_IDX use follows the
 * negotiated features.  size must be a power of two (-EINVAL) for split
 * rings; packed rings (VIRTIO_F_RING_PACKED negotiated) take any size up to
 * 32768 and start with base 0x80008000 (avail and used at slot 0, wrap
 * counters 1, as QEMU sends it).  Calling it again for q lays out a fresh
 * ring (the old one's memory is not reused).
 */
int vhuf_queue_setup(struct vhuf *f, unsigned q, unsigned size);
/* GET_VRING_BASE: stop the ring; *base gets the back end's next avail
 * (packed: avail | wrap << 15 | (used | wrap << 15) << 16). */
int vhuf_queue_stop(struct vhuf *f, unsigned q, uint32_t *base);
/* Re-send NUM/BASE/ADDR/CALL/ERR/KICK/ENABLE after a reconnect.  BASE is
 * the value vhuf_queue_stop() got or, without a stop (the back end went
 * away), the ring's used index as QEMU does, so chains in flight are
 * handed out again (packed: the driver's used position and wrap counter
 * for both halves; chains whose descriptors a used descriptor overwrote,
 * after out-of-order completions, cannot be handed out again). */
int vhuf_queue_restart(struct vhuf *f, unsigned q);

struct vhuf_buf {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

/*
 * Put a chain of n buffers on the avail ring (in an indirect table if
 * `indirect`), remembering `cookie` for completion.  Does not kick.
 * Returns the head index (packed: the buffer id), or -ENOSPC when the ring
 * has no free descriptors.
 */
int vhuf_submit(struct vhuf *f, unsigned q, const struct vhuf_buf *bufs, unsigned n, bool indirect,
                void *cookie);
/* Kick if the device asked for it (EVENT_IDX avail_event or
 * VRING_USED_F_NO_NOTIFY); returns 1 if kicked. */
int vhuf_kick(struct vhuf *f, unsigned q);
/* Kick unconditionally. */
int vhuf_kick_force(struct vhuf *f, unsigned q);
/* Wait up to timeout_ms for the call eventfd (-1 forever). 1 = signalled,
 * 0 = timed out. */
int vhuf_wait_call(struct vhuf *f, unsigned q, int timeout_ms);
/* Take one used entry: 1 with *cookie and *len, 0 when none, -EIO if the
 * device returned a head it was not given.  Re-arms used_event (EVENT_IDX)
 * so the next completion interrupts. */
int vhuf_get_used(struct vhuf *f, unsigned q, void **cookie, uint32_t *len);
/* Wait up to timeout_ms (-1: forever) for a used entry on queue q and take
 * it, as vhuf_get_used() does: 1 with *cookie and *len, 0 if none came in
 * time, -EIO as vhuf_get_used(), or another -errno.  Sleeps on the call
 * eventfd; an entry published without an interrupt (EVENT_IDX, or the
 * device notifying late) is still found when the time is up. */
int vhuf_wait_used(struct vhuf *f, unsigned q, int timeout_ms, void **cookie, uint32_t *len);
/* Descriptors free on queue q. */
unsigned vhuf_free_descs(const struct vhuf *f, unsigned q);

/* ---- migration: checking a back end's dirty logging ------------------ */

/*
 * A live migration simulated page by page (no QEMU): vhuf_log_start()
 * shares a dirty log (SET_LOG_BASE), turns on VHOST_F_LOG_ALL and every
 * ready ring's VHOST_VRING_F_LOG (waiting for the back end to acknowledge
 * each), then copies guest memory into a private destination image, all
 * while queues may be busy.  vhuf_log_sync() is one precopy iteration:
 * take the log's bits (atomic exchange, as QEMU) and copy those pages
 * again.  After every queue was stopped (vhuf_queue_stop: the back end
 * writes nothing more), vhuf_log_verify() syncs once more and compares the
 * destination with guest memory page by page: each page that differs was
 * written by the back end without being logged, and is reported.
 *
 * The driver's own writes (rings, readable buffers at submit, vhuf_alloc)
 * are recorded separately and copied too; a caller that writes guest
 * memory itself while this runs calls vhuf_log_driver_write().  A page the
 * driver writes hides the back end's writes to it until the next sync:
 * keep device-writable buffers on pages of their own for an exact check.
 *
 * Needs PROTOCOL_F_LOG_SHMFD negotiated (-ENOTSUP) and the back end
 * offering VHOST_F_LOG_ALL.  Start, stop and verify: the set-up thread;
 * sync and driver_write: any thread.
 */
#define VHUF_LOG_LISTED 8
struct vhuf_log_report {
	uint64_t pages;        /* guest pages compared */
	uint64_t syncs;        /* iterations (sync calls, verify's included) */
	uint64_t synced;       /* pages copied again by them */
	uint64_t device_marks; /* bits the back end set in the log */
	uint64_t missed;       /* pages written by the back end and not logged */
	unsigned nlisted;
	uint64_t missed_gpa[VHUF_LOG_LISTED]; /* the first of them */
};
int vhuf_log_start(struct vhuf *f);
/* Returns the number of pages copied, or -EINVAL if not started. */
int vhuf_log_sync(struct vhuf *f);
/* Replace the log while logging (QEMU does on memory hot-plug): a new
 * SET_LOG_BASE, then the old log's bits are collected and it is unmapped.
 * 0 or -errno. */
int vhuf_log_rebase(struct vhuf *f);
/* 0 if nothing was missed, -EFAULT if pages were (see *rep), -EINVAL. */
int vhuf_log_verify(struct vhuf *f, struct vhuf_log_report *rep);
/* Turn logging off at the back end (migration cancelled) and free the
 * simulation.  0 or -errno from the requests. */
int vhuf_log_stop(struct vhuf *f);
void vhuf_log_driver_write(struct vhuf *f, uint64_t gpa, uint64_t len);

/* Raw ring access for hostile tests: host pointers to the ring parts
 * (struct layouts per the virtio spec; packed: the descriptor ring, the
 * driver and the device event suppression areas) and the eventfds. */
void *vhuf_ring_desc(struct vhuf *f, unsigned q);
void *vhuf_ring_avail(struct vhuf *f, unsigned q);
void *vhuf_ring_used(struct vhuf *f, unsigned q);
int vhuf_kick_fd(const struct vhuf *f, unsigned q);
int vhuf_call_fd(const struct vhuf *f, unsigned q);
int vhuf_err_fd(const struct vhuf *f, unsigned q);

#ifdef __cplusplus
}
#endif
#endif
