/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon: listens on a unix socket, serves one front end at a time with
 * the protocol handler, runs the device's worker threads, and after a front
 * end goes resets the device and waits for the next one.
 */
#ifndef VHU_DAEMON_H
#define VHU_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "vhu/backend.h"
#include "vhu/vring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_daemon;

struct vhu_daemon_config {
	const char *name;                     /* for logs; may be NULL */
	enum vhu_lock_mode lock;              /* how device callbacks are serialised */
	enum vhu_vring_flavour vring_flavour; /* VringState/Mutex/RwLock */
	/* Adaptive polling: after work, a worker keeps polling its rings
	 * (notifications off, its listeners looked at every few us) until
	 * nothing came for poll_us microseconds, then sleeps on the kick
	 * eventfds.  Adaptive: polling goes on while at least two polling
	 * periods in three find work; otherwise the worker only sleeps and
	 * probes with one polling period after 16 to 256 wake-ups (doubling
	 * while probes miss), so a slow or idle queue costs little CPU.
	 * Per-queue `polls` counts the work polling found.
	 * 0 disables polling (notifications only). */
	unsigned poll_us;
	/* Stop after serving this many front ends; 0 = until vhu_daemon_stop. */
	unsigned max_connections;
};

/*
 * Create a daemon for device `dev` with operations `ops` (both borrowed for
 * the daemon's lifetime) and start its worker threads, so that listeners
 * can be registered before serving.  cfg may be NULL (defaults: no lock,
 * plain vrings, no polling, serve forever).
 * Returns 0 and *out, or -EINVAL (required op missing, bad
 * queues_per_thread masks), -ENOMEM, or another -errno.  Thread: any.
 */
int vhu_daemon_new(struct vhu_daemon **out, const struct vhu_backend_ops *ops, void *dev,
                   const struct vhu_daemon_config *cfg);

/*
 * Bind a listening socket at `path` (refusing, with -EADDRINUSE, a path
 * another process is listening on; a stale socket file is replaced), then
 * serve front ends one after another until vhu_daemon_stop() or
 * max_connections.  Blocks.  Returns 0 when stopped, -errno on failure to
 * listen.  A front end that misbehaves is logged and disconnected; it does
 * not make serve() fail.
 */
int vhu_daemon_serve(struct vhu_daemon *d, const char *path);

/*
 * Same with an already-open fd: a listening socket (socket activation,
 * --fd) or an already connected one (served once).  The daemon takes
 * ownership of fd.
 */
int vhu_daemon_serve_fd(struct vhu_daemon *d, int fd);

/* Run serve()/serve_fd() in a new thread; collect its result with wait(). */
int vhu_daemon_start(struct vhu_daemon *d, const char *path);
int vhu_daemon_start_fd(struct vhu_daemon *d, int fd);
int vhu_daemon_wait(struct vhu_daemon *d);

/* Make serve() return: drops the current front end, resets the device.
 * Async-signal-safe (it only writes an eventfd). Thread: any. */
void vhu_daemon_stop(struct vhu_daemon *d);

/* Stop worker threads and free everything. Not while serve() runs. */
void vhu_daemon_free(struct vhu_daemon *d);

/*
 * Register an extra fd in worker `thread`'s epoll set; when it fires,
 * handle_event() gets device_event = id and the epoll event mask.  id must
 * be >= num_queues and < 0xffff. The fd stays owned by the caller.
 * Returns 0, -EINVAL, -EEXIST or -errno from epoll_ctl. Thread: any.
 */
int vhu_daemon_add_listener(struct vhu_daemon *d, unsigned thread, int fd, uint32_t events,
                            uint16_t id);
int vhu_daemon_del_listener(struct vhu_daemon *d, unsigned thread, int fd);

/* Number of worker threads (entries of queues_per_thread). */
unsigned vhu_daemon_num_threads(const struct vhu_daemon *d);

/* Queue q of the current (or last) connection, or NULL if q is out of
 * range.  The vring object lives as long as the daemon. */
struct vhu_vring *vhu_daemon_vring(struct vhu_daemon *d, unsigned q);

/* Front ends served so far (connections accepted and finished). */
uint64_t vhu_daemon_connections(const struct vhu_daemon *d);

/* Acked virtio features of the current connection. */
uint64_t vhu_daemon_acked_features(const struct vhu_daemon *d);

#ifdef __cplusplus
}
#endif
#endif
