/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon: serves one front end at a time with the protocol handler,
 * runs the device's worker threads, and after a front end goes resets the
 * device and waits for the next one.  It either listens on a unix socket
 * (serve: the front end connects, QEMU's default) or connects to a front
 * end that listens (connect: client mode, QEMU `-chardev
 * socket,server=on`, DPDK virtio-user `server=1`), reconnecting after each
 * disconnect so that the back end can be restarted under running VMs.
 *
 * Threads: the protocol handler of a daemon runs on the thread that called
 * serve()/connect() (or the one start*() created): one per device, asleep
 * in poll() on its socket while the front end says nothing.  Each device
 * keeps its own handler because the handler blocks: it waits for the
 * device's workers (ring changes, memory updates), for the device
 * (reset_device may wait for I/O in flight), and for a front end that is
 * slow to read its replies; a shared control loop would let one device or
 * one front end stall every other.  What that costs is a sleeping thread
 * per device: a few tens of KiB (kernel stack, the pages of its stack it
 * touched) and no CPU while the front end is quiet (measured with 64 disks
 * in docs/performance.md).  The data path runs on the daemon's own worker
 * threads, or on a vhu_pool's threads shared with other daemons.
 */
#ifndef VHU_DAEMON_H
#define VHU_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h> /* EPOLLIN... for vhu_daemon_add_listener */

#include "vhu/backend.h"
#include "vhu/vring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_daemon;
struct vhu_pool;

struct vhu_daemon_config {
	const char *name;                     /* for logs; may be NULL */
	enum vhu_lock_mode lock;              /* how device callbacks are serialised */
	enum vhu_vring_flavour vring_flavour; /* VringState/Mutex/RwLock */
	/* Adaptive polling: after work, a worker may keep polling its rings
	 * (notifications off, its listeners looked at every few us) until
	 * nothing came for poll_us microseconds, then sleeps on the kick
	 * eventfds.  Whether it polls is measured, not guessed: in epochs of
	 * ~2 ms it compares its CPU time per chain popped with polling and
	 * with notifications only, keeps the cheaper and tries the other now
	 * and then (and at once when the workload changes).  So it polls
	 * where the sleeps and wake-ups it saves cost more than the spin
	 * (shallow queues, a guest waiting on each completion), not where a
	 * deep queue kept full would never sleep anyway, nor at low rates.
	 * Per-queue `polls` counts the work polling found.
	 * 0 disables polling (notifications only). */
	unsigned poll_us;
	/* Stop after serving this many front ends; 0 = until vhu_daemon_stop. */
	unsigned max_connections;
	/* Client mode (vhu_daemon_connect): after a failed connection attempt
	 * wait retry_min_ms (0: 100 ms), doubling up to retry_max_ms (0: 2000
	 * ms); give up after retry_limit consecutive failed attempts (0:
	 * never).  Ignored by serve(). */
	unsigned retry_min_ms;
	unsigned retry_max_ms;
	unsigned retry_limit;
	/* Live migration (docs/migration.md).  By default the library offers
	 * VHOST_F_LOG_ALL, PROTOCOL_F_LOG_SHMFD and, where userfaultfd works,
	 * PROTOCOL_F_PAGEFAULT (postcopy), and logs every write it makes or
	 * sees pushed.  Set no_migration for a device that writes guest
	 * memory in ways the library does not see and does not mark them
	 * with vhu_vring_log_write(): QEMU then refuses to migrate the VM
	 * instead of corrupting it. */
	bool no_migration;
	/* GET_VRING_BASE (device stop, migration switch-over) waits this
	 * long for chains the device still holds to be pushed; 0 = 30000. */
	unsigned drain_ms;
	/* Run the device's workers on this pool's threads instead of threads
	 * of its own (see vhu_pool_new); NULL: own threads.  The pool must
	 * outlive the daemon.  poll_us then only says whether the device's
	 * rings take part in the pool threads' polling (non-zero) or are
	 * served on notifications only (0); the window is the pool's. */
	struct vhu_pool *pool;
	/* Room for later fields: zero (leave it out of the initialiser).  A
	 * later release adds a field by taking space from it, so the size
	 * and the offsets of the fields above never change. */
	uint64_t reserved[7];
};

/*
 * A worker pool: a few threads shared by the workers of many daemons (a
 * storage target serving dozens of disks from one process).  A daemon
 * created with config.pool keeps its queues_per_thread layout (its logical
 * workers, the thread_id its device sees, listeners per worker, queues
 * served together) but each logical worker runs on one pool thread: the
 * least loaded (counting queues) when the daemon is created, preferring
 * threads that host none of the device's other workers so that a device's
 * queues spread.  Each device keeps its own socket, handler thread, memory
 * table, rings and failure domain: a front end that misbehaves, stalls or
 * goes away affects only its own device; ring changes, memory updates and
 * resets of one device wait only for that device's callbacks and never
 * stop a pool thread from serving the others.  What devices on one pool
 * thread cost each other is the time their callbacks run (callbacks must
 * not block, as always).  Each pool thread polls all its rings with one
 * adaptive-polling policy (poll_us window) and sleeps when all are idle.
 */
struct vhu_pool_config {
	const char *name; /* for logs and thread names; may be NULL */
	/* Threads, 1..VHU_POOL_MAX_THREADS; 0: one per online CPU. */
	unsigned threads;
	/* Adaptive polling window of each thread (see vhu_daemon_config's
	 * poll_us), 0: notifications only. */
	unsigned poll_us;
};

#define VHU_POOL_MAX_THREADS 64

/* Create a pool and start its threads.  cfg may be NULL (defaults).
 * 0 and *out, -EINVAL, -ENOMEM or -errno.  Thread: any. */
int vhu_pool_new(struct vhu_pool **out, const struct vhu_pool_config *cfg);

/* Stop the threads and free the pool: 0, or -EBUSY (nothing done, logged)
 * while daemons created with it are not freed yet.  NULL: 0. */
int vhu_pool_free(struct vhu_pool *p);

unsigned vhu_pool_num_threads(const struct vhu_pool *p);

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

/*
 * Client mode: connect to the front end listening at `path` and serve it;
 * when it hangs up (or breaks the protocol and is dropped) reset the device
 * as after any front end and connect again, until vhu_daemon_stop() or
 * max_connections.  While nobody listens at path (no socket file,
 * connection refused, backlog full) retry with the back-off of the
 * config's retry_* fields; a front end that sent at least one request
 * resets the back-off, one that hangs up without a word does not.  Blocks.
 * Returns 0 when stopped or after max_connections, -EINVAL /
 * -ENAMETOOLONG for a bad path, -EBUSY if serve()/connect() already runs,
 * or the last connect() error (-ENOENT, -ECONNREFUSED, ...) after
 * retry_limit failed attempts or one that retrying cannot cure (-EACCES,
 * -ENOTSOCK...).  The device's in-flight state that the front end keeps
 * (INFLIGHT_SHMFD) survives a restart of the back end process in this
 * mode as in the other.  Thread: any (becomes the handler thread).
 */
int vhu_daemon_connect(struct vhu_daemon *d, const char *path);

/* Run serve()/serve_fd()/connect() in a new thread; collect its result
 * with wait(). */
int vhu_daemon_start(struct vhu_daemon *d, const char *path);
int vhu_daemon_start_fd(struct vhu_daemon *d, int fd);
int vhu_daemon_start_connect(struct vhu_daemon *d, const char *path);
int vhu_daemon_wait(struct vhu_daemon *d);

/* Make serve() return: drops the current front end, resets the device.
 * Async-signal-safe (it only writes an eventfd). Thread: any. */
void vhu_daemon_stop(struct vhu_daemon *d);

/* Stop worker threads and free everything. Not while serve() runs. */
void vhu_daemon_free(struct vhu_daemon *d);

/*
 * Register an extra fd (timer, eventfd, tap, pipe, socket) in worker
 * `thread`'s epoll set; when it fires, handle_event() runs on that worker
 * with device_event = id and evset = the epoll event mask.  The rules
 * (tests/api/test_listeners.c):
 *  - id >= num_queues and < 0xffff (ids below are the queues' kicks; the
 *    crate's listener ids start at num_queues + 1, see backend.h);
 *  - `events` goes to epoll as given: level-triggered unless it has
 *    EPOLLET, so an fd left readable fires again after each callback
 *    (drain it, or delete it); with EPOLLET it fires once per edge and the
 *    device reads until EAGAIN; EPOLLONESHOT fires once until deleted and
 *    added again;
 *  - a listener belongs to the daemon, not to a front end: it fires with no
 *    front end connected (the rings then pop nothing) and goes on across
 *    front ends; queue_ready and frontend_gone (backend.h) tell the device
 *    where its input can go;
 *  - fds epoll refuses (regular files, directories, /dev/null) give
 *    -EPERM and register nothing.
 * The fd stays owned by the caller.  Returns 0, -EINVAL (thread, fd or id
 * out of range), -EEXIST (fd already registered with that worker), or
 * -errno from epoll_ctl.  Thread: any.
 */
int vhu_daemon_add_listener(struct vhu_daemon *d, unsigned thread, int fd, uint32_t events,
                            uint16_t id);
/*
 * Unregister fd from worker `thread`; close it only afterwards.  Called
 * from a callback of that worker (its own listener's included), events of
 * fd that the worker has already collected are dropped; called from a
 * thread that is not a worker, it returns once no callback for fd runs or
 * can still start.  From another worker's callback it does not wait (two
 * workers could wait for each other): an event collected just before may
 * still be delivered once.  Returns 0, -EINVAL, or -errno from epoll_ctl
 * (-ENOENT: not registered).
 */
int vhu_daemon_del_listener(struct vhu_daemon *d, unsigned thread, int fd);

/* Number of worker threads (entries of queues_per_thread). */
unsigned vhu_daemon_num_threads(const struct vhu_daemon *d);

/* The pool thread (0..threads-1) that runs the daemon's worker `worker`,
 * -1 if the daemon has threads of its own, -EINVAL for a bad worker. */
int vhu_daemon_pool_thread(const struct vhu_daemon *d, unsigned worker);

/* Queue q of the current (or last) connection, or NULL if q is out of
 * range.  The vring object lives as long as the daemon. */
struct vhu_vring *vhu_daemon_vring(struct vhu_daemon *d, unsigned q);

/* Front ends served so far (connections accepted and finished). */
uint64_t vhu_daemon_connections(const struct vhu_daemon *d);

/* A front end is being served right now (connected or accepted, not yet
 * gone).  Thread: any. */
bool vhu_daemon_connected(const struct vhu_daemon *d);

/* Acked virtio features of the current connection. */
uint64_t vhu_daemon_acked_features(const struct vhu_daemon *d);

#ifdef __cplusplus
}
#endif
#endif
