/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the daemon side (msg.c, backend.c, handler*.c, worker.c,
 * daemon.c, channel.c): the daemon object, per-connection state, worker
 * threads and the device-op wrappers.
 */
#ifndef VHU_DEV_H
#define VHU_DEV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "internal.h"
#include "poll_policy.h"

#define VHU_MAX_THREADS   64 /* queues_per_thread entries */
#define VHU_WORKER_QUEUES 64 /* queues a worker mask can name */

/* Protocol features the library implements (the rest is masked off). */
#define VHU_SUPPORTED_PF VHU_PF_IMPLEMENTED

/* Offered by default, unless the daemon was created with no_migration. */
#define VHU_MIGRATION_PF (VHU_BIT(VHU_PF_LOG_SHMFD) | VHU_BIT(VHU_PF_PAGEFAULT))

/* ---- msg.c ------------------------------------------------------------ */

/* vhu_msg_recv() that gives up with -ECANCELED as soon as stop_fd (an
 * eventfd, or -1 for none) becomes readable while waiting for bytes. */
int vhu_msg_recv_stop(int sock, struct vhu_msg *msg, int stop_fd);
/* vhu_msg_send() that never blocks in sendmsg: while the socket is full it
 * polls for room and for stop_fd (-ECANCELED once that is readable). */
int vhu_msg_send_stop(int sock, const struct vhu_msg *msg, int stop_fd);

/* ---- backend.c: device ops with defaults and the lock mode ------------ */

int vhu_be_init(struct vhu_backend *be, const struct vhu_backend_ops *ops, void *dev,
                enum vhu_lock_mode lock);
void vhu_be_destroy(struct vhu_backend *be);
unsigned vhu_be_num_queues(struct vhu_backend *be);
unsigned vhu_be_max_queue_size(struct vhu_backend *be);
uint64_t vhu_be_features(struct vhu_backend *be);
void vhu_be_acked_features(struct vhu_backend *be, uint64_t features);
uint64_t vhu_be_protocol_features(struct vhu_backend *be);
void vhu_be_reset_device(struct vhu_backend *be);
void vhu_be_set_event_idx(struct vhu_backend *be, bool enabled);
int vhu_be_get_config(struct vhu_backend *be, uint32_t offset, void *buf, uint32_t size);
int vhu_be_set_config(struct vhu_backend *be, uint32_t offset, const void *buf, uint32_t size);
int vhu_be_update_memory(struct vhu_backend *be, struct vhu_mem *mem);
void vhu_be_set_backend_req_fd(struct vhu_backend *be, struct vhu_channel *ch);
int vhu_be_get_shared_object(struct vhu_backend *be, const uint8_t uuid[16]);
int vhu_be_set_gpu_socket(struct vhu_backend *be, int fd);
int vhu_be_queues_per_thread(struct vhu_backend *be, uint64_t *masks, unsigned max);
int vhu_be_exit_event(struct vhu_backend *be, unsigned thread);
int vhu_be_handle_event(struct vhu_backend *be, uint16_t device_event, uint32_t evset,
                        struct vhu_vring **vrings, unsigned nvrings, unsigned thread_id);
int vhu_be_set_device_state_fd(struct vhu_backend *be, enum vhu_state_direction dir,
                               enum vhu_state_phase phase, int fd, int *reply_fd);
int vhu_be_check_device_state(struct vhu_backend *be);
void vhu_be_frontend_connected(struct vhu_backend *be);
void vhu_be_queue_ready(struct vhu_backend *be, unsigned q, unsigned thread_id);
void vhu_be_frontend_gone(struct vhu_backend *be, unsigned thread_id);
int vhu_be_send_rarp(struct vhu_backend *be, const uint8_t mac[6]);
int vhu_be_set_mtu(struct vhu_backend *be, uint16_t mtu);

/* ---- channel.c -------------------------------------------------------- */

/* Wrap the SET_BACKEND_REQ_FD socket (ownership taken). NULL on ENOMEM
 * (fd closed then). */
struct vhu_channel *vhu_channel_new(int fd, bool reply_ack);
void vhu_channel_free(struct vhu_channel *ch);

/* ---- worker.c --------------------------------------------------------- */

struct vhu_worker {
	struct vhu_daemon *d;
	unsigned id;
	pthread_t thread;
	bool running; /* thread created */
	int epfd;
	int wake_fd;             /* internal eventfd: wake-up and exit */
	int dev_exit_fd;         /* device's exit_event, or -1 (not owned) */
	uint64_t mask;           /* queues served */
	_Atomic uint64_t active; /* queues handle_event may be called for */
	_Atomic uint32_t seq;    /* odd while processing events */
	atomic_uint waiters;     /* synchronize() callers sleeping on seq */
	atomic_bool stop;        /* asked to exit */
	atomic_bool exited;      /* thread left its loop */
	_Atomic uint32_t park;   /* handler asks it to park between batches */
	_Atomic uint32_t parked; /* it is parked */
	uint64_t pending;        /* kicks seen while inactive (worker-local) */
	/* Lifecycle hooks (lifecycle.c): queues that became ready and wait
	 * for their queue_ready call; the front end whose frontend_gone this
	 * worker has had (compared with the daemon's gone_seq). */
	_Atomic uint64_t ready_new;
	uint64_t gone_done;
	/* The epoll batch being dispatched (worker-local; see
	 * vhu_daemon_del_listener). */
	struct epoll_event *batch;
	int batch_n;
	struct vhu_poll poll; /* adaptive polling policy (worker-local) */
	/* Hosted by a pool thread (pool.c), NULL with a thread of its own.
	 * The pool thread's epoll set refers to the worker's epoll set (pref)
	 * and, directly, to its kick fds (kref, edge-triggered: a kick costs
	 * the thread no second epoll_wait and no read).  The rest is that
	 * thread's: news in the epoll set, kicks collected (and from fds that
	 * failed) not yet taken, the rings of its polling period and the
	 * chains counted so far. */
	struct vhu_pool_thread *pt;
	struct vhu_pool_ref {
		struct vhu_worker *w;
		unsigned q; /* POOL_REF_SET: the worker's epoll set */
		int fd;
	} pref, kref[VHU_WORKER_QUEUES];
	bool ready;
	uint64_t kicked, kick_bad;
	uint64_t prings, plive;
	uint64_t chains_seen;
};

int vhu_workers_start(struct vhu_daemon *d);
/* Ask every worker to exit and join them. */
void vhu_workers_stop(struct vhu_daemon *d);
/*
 * Park every worker between two epoll batches (none is inside a callback
 * or holds an event collected earlier) until vhu_workers_unpark().  Nests.
 * Handler thread only; vhu_workers_synchronize() treats parked workers as
 * quiescent.
 */
void vhu_workers_park(struct vhu_daemon *d);
void vhu_workers_unpark(struct vhu_daemon *d);
struct epoll_event;

/* For pool threads (pool.c): run a worker's events as its own thread
 * would.  enter/leave: its critical section (and vhu_tl_worker). */
void vhu_worker_enter(struct vhu_worker *w);
void vhu_worker_leave(struct vhu_worker *w);
/* A batch of n events from its epoll set (reordered: the front end's
 * hang-up first).  True if it must stop being served (exit event); sets
 * *listener if a listener was among them. */
bool vhu_worker_run_batch(struct vhu_worker *w, struct epoll_event *ev, int n, bool *listener);
void vhu_worker_run_pending(struct vhu_worker *w);
/* Kicks of the rings in `kicked` came (the pool read none of their
 * eventfds): count them and handle those rings as a worker thread handles
 * its kicks; rings in `bad` had an unusable kick fd (logged). */
void vhu_worker_take_kicks(struct vhu_worker *w, uint64_t kicked, uint64_t bad);
bool vhu_worker_has_pending(const struct vhu_worker *w);
bool vhu_worker_must_yield(struct vhu_worker *w);
/* Its rings that handle_event may be called for. */
uint64_t vhu_worker_active(struct vhu_worker *w);
void vhu_worker_set_notify(struct vhu_worker *w, uint64_t rings, bool on, uint64_t *more);
bool vhu_worker_poll_pass(struct vhu_worker *w, uint64_t *rings);
/* Chains popped from its rings so far. */
uint64_t vhu_worker_chains(struct vhu_worker *w);
/* It will not be run again: wake whoever waits for it. */
void vhu_worker_exited(struct vhu_worker *w);
void vhu_futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *ts);
void vhu_futex_wake(_Atomic uint32_t *addr);

/* ---- pool.c ----------------------------------------------------------- */

/* Host d's workers on p's threads (d->workers set up, no threads). */
int vhu_pool_attach(struct vhu_pool *p, struct vhu_daemon *d);
/* Stop hosting them; returns once no pool thread can touch them.
 * counted: the attach had succeeded. */
void vhu_pool_detach(struct vhu_pool *p, struct vhu_daemon *d, bool counted);
/* Watch / unwatch kick fd `fd` of queue q of hosted worker w in its pool
 * thread's epoll set (handler, workers parked). */
int vhu_pool_watch_kick(struct vhu_worker *w, unsigned q, int fd);
void vhu_pool_unwatch_kick(struct vhu_worker *w, int fd);

/* Watch / unwatch queue q's kick fd in its worker's epoll set. */
int vhu_worker_watch_kick(struct vhu_daemon *d, unsigned q, int fd);
void vhu_worker_unwatch_kick(struct vhu_daemon *d, unsigned q, int fd);
/* Watch (on) or stop watching the front end's socket for a hang-up in
 * every worker's epoll set (lifecycle.c). */
void vhu_workers_watch_conn(struct vhu_daemon *d, int sock, bool on);

/* ---- lifecycle.c: the front-end lifecycle hooks ------------------------ */

/* Handler thread: a front end connected on sock (frontend_connected). */
void vhu_lifecycle_begin(struct vhu_daemon *d, int sock);
/* Handler thread: the front end is gone; every worker has had its
 * frontend_gone when this returns (rings popping nothing). */
void vhu_lifecycle_end(struct vhu_daemon *d);
/* Handler thread: queue q became ready (queue_ready on its worker). */
void vhu_lifecycle_queue_ready(struct vhu_daemon *d, unsigned q);
/* Worker: the front end's socket hung up. */
void vhu_lifecycle_hangup(struct vhu_worker *w);
/* Worker: run the hooks due on this worker (slow path of the check). */
void vhu_lifecycle_run(struct vhu_worker *w);

/* Allow or forbid handle_event for queue q; allowing wakes the worker so
 * that kicks that came while it was forbidden are handled. */
void vhu_worker_set_active(struct vhu_daemon *d, unsigned q, bool on);

/* ---- postcopy.c: postcopy migration on the destination ---------------- */

struct vhu_postcopy {
	int ufd;        /* our userfaultfd (POSTCOPY_ADVISE), or -1 */
	bool listening; /* POSTCOPY_LISTEN seen: mappings are registered */
	bool await_ack; /* our mapping addresses went out; the front end's ack is next */
	/* Ranges registered, so that a worker seeing the front end hang up
	 * can unregister them (waking any thread asleep in a fault the front
	 * end will never serve, the handler's included). */
	pthread_mutex_t lock;
	bool released; /* front end gone: register nothing more */
	unsigned nspans;
	struct {
		uint64_t start, len;
	} spans[VHU_MAX_MEM_SLOTS];
};

/* userfaultfd works here for shared memory (probed once). Thread: any. */
bool vhu_postcopy_usable(void);
void vhu_postcopy_init(struct vhu_postcopy *pc);
/* Open a new userfaultfd (replacing one from an earlier advise); *fd_out
 * gets a duplicate for the front end (the caller sends and closes it). */
int vhu_postcopy_advise(struct vhu_postcopy *pc, int *fd_out);
/* Register every region of mem for missing-page faults. 0 or -errno. */
int vhu_postcopy_register(struct vhu_postcopy *pc, const struct vhu_mem *mem);
/* Unregister every range registered and close the userfaultfd. */
void vhu_postcopy_end(struct vhu_postcopy *pc);
/* The front end hung up: unregister every range (faults asleep wake up)
 * and register nothing more.  Thread: any (a worker). */
void vhu_postcopy_release(struct vhu_postcopy *pc);

/* ---- handler.c -------------------------------------------------------- */

/* Handler-side state of queue q. */
struct vhu_qctl {
	bool watched;  /* kick fd registered with the worker */
	bool own_kick; /* kick fd is our eventfd (NOFD / in-band kicks) */
	bool ready;    /* started, enabled and watched, as last seen */
};

/* State of the front end being served. */
struct vhu_conn {
	int sock;
	bool owner;
	bool features_set;
	uint64_t acked_features;
	uint64_t acked_pf;
	uint8_t status;
	struct vhu_mem *mem; /* reference held; NULL before SET_MEM_TABLE */
	struct vhu_dirty *dirty;
	struct vhu_inflight *inflight;
	struct vhu_channel *channel;
	int log_call_fd;
	struct vhu_postcopy pc;
	struct vhu_qctl q[VHU_MAX_QUEUES];
	struct vhu_msg reply; /* reply being built */
};

/* Start serving a new front end on sock (borrowed). */
void vhu_conn_begin(struct vhu_daemon *d, int sock);
/* Handle one request (fds consumed).  0 to go on, or -errno when the
 * connection must be dropped. */
int vhu_conn_handle(struct vhu_daemon *d, struct vhu_msg *msg);
/* The front end is gone: stop rings, drop every resource, reset the
 * device. */
void vhu_conn_end(struct vhu_daemon *d);

/* ---- daemon.c --------------------------------------------------------- */

struct stat;
/* Listen on the unix socket `path`: a stale socket file is replaced, one a
 * live process listens on is refused (-EADDRINUSE), a file that is not a
 * socket too (-EEXIST).  Returns the listening fd (close-on-exec) and the
 * socket file's *st, or -errno. */
int vhu_listen_unix(const char *path, struct stat *st);

struct vhu_daemon {
	struct vhu_backend be;
	const char *name;
	unsigned poll_us;
	unsigned max_connections;
	unsigned retry_min_ms, retry_max_ms, retry_limit; /* client mode (connect.c) */
	bool no_migration;
	unsigned drain_ms;
	enum vhu_vring_flavour flavour;

	unsigned nq;
	unsigned max_qsize;
	uint64_t features; /* offered, PROTOCOL_FEATURES included */
	uint64_t pf;       /* offered protocol features */

	struct vhu_vring *vrings;
	struct vhu_vring **vring_ptrs;
	int16_t queue_worker[VHU_MAX_QUEUES]; /* -1: no worker serves it */

	struct vhu_worker *workers;
	unsigned nworkers;
	struct vhu_pool *pool; /* workers hosted by its threads, or NULL */
	bool pooled;           /* attached to it */
	atomic_uint sync_req;  /* synchronize() in progress: stop polling */
	unsigned park_depth;   /* vhu_workers_park() nesting (handler only) */

	struct vhu_conn conn;
	_Atomic uint64_t acked_features;
	_Atomic uint64_t connections;
	atomic_bool connected; /* a front end is being served */
	/* Front ends begun, and the last one seen gone (lifecycle.c). */
	_Atomic uint64_t conn_seq, gone_seq;

	int stop_fd; /* eventfd written by vhu_daemon_stop */
	pthread_t serve_thread;
	bool serving_thread;
	atomic_bool serving; /* inside serve()/serve_fd() */
	char *start_path;
	bool start_connect; /* the serving thread runs vhu_daemon_connect() */
	int start_fd;
	int serve_result;
};

/* Wait until fd is readable (1), a stop was requested (0), timeout_ms
 * passed (-ETIMEDOUT; -1 waits forever) or poll failed (-errno). */
int vhu_daemon_wait_fd(struct vhu_daemon *d, int fd, int timeout_ms);
/* Clear a pending stop request once serving ended. */
void vhu_daemon_consume_stop(struct vhu_daemon *d);
/* Serve one front end on the connected socket fd (closed here) until it
 * hangs up or breaks the protocol.  Returns -ECANCELED if stopped, else
 * the number of requests it handled. */
int vhu_daemon_serve_conn(struct vhu_daemon *d, int fd);
/* max_connections front ends served. */
bool vhu_daemon_enough(struct vhu_daemon *d);
/* One serve()/connect() at a time: the connection state is the daemon's.
 * enter() is false when another is running. */
bool vhu_daemon_serve_enter(struct vhu_daemon *d);
void vhu_daemon_serve_leave(struct vhu_daemon *d);

/* Worker, before any device callback: hooks due? */
static inline void vhu_lifecycle_check(struct vhu_worker *w)
{
	if (__builtin_expect(atomic_load_explicit(&w->ready_new, memory_order_relaxed) != 0 ||
	                         atomic_load_explicit(&w->d->gone_seq, memory_order_relaxed) !=
	                             w->gone_done,
	                     0))
		vhu_lifecycle_run(w);
}

#endif
