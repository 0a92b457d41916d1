/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk internals: a virtio-blk device on libvhu.
 *
 *   main.c         command line, default image/socket, signals
 *   spec.c         image specifications: PATH, rbd:POOL/IMAGE..., NBD URIs (pure)
 *   image.c        choosing the engine for a spec, opening the image, capacity
 *                  changes, files (regular file or block device), listening socket
 *   blk.c          the vhu_backend_ops table: features, config space, threads, events
 *   req.c          request parsing and validation (pure: no I/O)
 *   engine_uring.c files: asynchronous I/O through io_uring (one ring per worker)
 *   engine_rbd.c   Ceph RBD images through librbd (optional: librbd-dev)
 *   engine_nbd.c   NBD exports through libnbd (optional: libnbd-dev)
 *   engine_null.c  --null: no I/O at all, reads return zeroes
 *
 * Threads: the daemon's handler thread calls config/feature ops; each worker
 * thread owns its queues, its request slots and its engine state, so the
 * data path takes no locks.  A request is popped, submitted and completed on
 * the same worker.
 */
#ifndef VHU_BLK_H
#define VHU_BLK_H

#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhu/vhu.h"

#define BLK_SECTOR         512u
#define BLK_MAX_QUEUES     64u        /* queues_per_thread masks are 64-bit */
#define BLK_MAX_SEGS       32u        /* discard / write-zeroes segments per request */
#define BLK_MAX_DZ_SECTORS (1u << 22) /* 2 GiB per discard/zeroes segment */
#define BLK_MAX_IOV        1024u      /* IOV_MAX for readv/writev */
#define BLK_MAX_DATA       (1u << 30) /* bytes per read/write request */

enum blk_op {
	BLK_OP_NONE = 0, /* status decided at parse time, no I/O */
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,
	BLK_OP_ZEROES,
};

/* What req.c needs to judge a request. */
struct blk_limits {
	/* 512-byte sectors; changes while serving when the image is resized
	 * (blk_dev_resized), hence atomic. */
	_Atomic uint64_t capacity;
	bool read_only;
	uint32_t max_segs;
	uint32_t max_dz_sectors;
	const char *serial; /* VIRTIO_BLK_ID_BYTES bytes, zero padded */
};

struct blk_seg {
	uint64_t offset; /* bytes */
	uint64_t len;    /* bytes */
	bool unmap;
};

struct blk_queue;

/* One request slot; preallocated, never malloc'ed on the data path. */
struct blk_req {
	struct vhu_chain chain; /* chain.iov points at this slot's iovec array */
	struct blk_queue *q;
	struct vhu_mem *mem; /* reference held while I/O is in flight */
	unsigned gen;        /* device generation at pop (see blk_dev.gen) */

	/* Parse result. */
	enum blk_op op;
	uint8_t status;      /* VIRTIO_BLK_S_* when op == NONE, or final */
	uint8_t *status_ptr; /* last writable byte; NULL if the chain has none */
	uint32_t written;    /* bytes written into the writable part, status excluded */
	uint64_t offset;     /* bytes, read/write */
	uint64_t len;        /* data bytes, read/write */
	struct iovec *data;  /* data iovecs (inside chain.iov) */
	unsigned ndata;
	struct blk_seg segs[BLK_MAX_SEGS];
	unsigned nsegs;

	/* Engine state. */
	int pending;      /* submissions not completed yet */
	int error;        /* first error (-errno) */
	uint64_t done;    /* bytes transferred so far (short I/O resubmission) */
	bool retry_punch; /* ZERO_RANGE unsupported: redo segments with PUNCH_HOLE */
	bool direct;      /* went to the O_DIRECT fd */
	bool no_direct;   /* O_DIRECT refused it once: buffered from now on */
	uint16_t next_free;

	/* For engines whose completions arrive on a library thread (rbd): that
	 * thread touches only these, never the ring (see engine_rbd.c). */
	_Atomic int eng_left;     /* operations outstanding */
	_Atomic int eng_err;      /* first error of them (-errno) */
	struct blk_req *eng_next; /* link in the owning worker's completion list */
	uint8_t eng_stage;        /* engine-private step (e.g. write then flush) */
	uint64_t eng_since;       /* engine-private time stamp (ms, CLOCK_MONOTONIC) */
};

struct blk_dev;
struct blk_worker;

/* Completions pushed to the ring together (one used-index store); a full
 * batch is also notified at once. */
#define BLK_PUSH_BATCH 16u

struct blk_queue {
	unsigned index;
	struct blk_worker *w;
	struct vhu_vring *vr;
	struct blk_req *slots;
	struct iovec *iovs; /* nslots * iov_max */
	uint16_t *free_stack;
	unsigned nslots, nfree;
	bool starved;     /* ran out of slots with chains still available */
	bool need_notify; /* pushed since the last notify */
	/* Finished requests not pushed yet (blk_queue_flush()); their slots
	 * stay taken until then. */
	unsigned ndone;
	struct blk_req *done[BLK_PUSH_BATCH];
	const struct vhu_chain *done_chain[BLK_PUSH_BATCH];
	uint32_t done_written[BLK_PUSH_BATCH];
};

/*
 * A storage engine: where the blocks live and how I/O reaches them.
 *
 * Life cycle (main thread unless said otherwise):
 *   open()  once, before blk_dev_setup(): open the image d->spec names, set
 *           d->capacity (sectors); may set d->max_threads (the engine cannot
 *           spread over more workers) and d->opts.read_only (a snapshot).
 *           Errors: -errno and a sentence in err (no "vhu-blk:" prefix).
 *   init()  per worker, inside blk_dev_setup(): per-worker state in w->priv;
 *           *efd = an fd the worker's epoll watches for EPOLLIN (the engine's
 *           completions, timers, sockets, ...) or -1.
 *   start() optional, after blk_dev_attach() (the daemon exists, workers
 *           not yet serving): background duties such as watching for resizes.
 *   submit(), kick(), reap(): worker thread of the request's queue only; the
 *           data path takes no locks.  submit() starts I/O for r (op != NONE)
 *           and completes it through blk_req_finish(), possibly before
 *           returning; kick() hands batched submissions over; reap() runs when
 *           *efd fired (and may also be called with nothing to do).
 *   stop()  optional, after the daemon stopped serving, before fini():
 *           end background duties.
 *   fini()  per worker, after the daemon stopped serving: finish or abandon
 *           in-flight I/O (guest memory references are dropped afterwards).
 *   close() once, last.
 *
 * Every request ends with r->error = 0 (done, data stored as far as the
 * cache mode promises: with d->wce == 0 writes must be durable) or -errno
 * (the guest sees VIRTIO_BLK_S_IOERR).  An engine never acknowledges a write
 * the storage did not take.
 */
struct blk_engine {
	const char *name;
	/* Every request completes inside submit(): no memory reference is
	 * needed beyond the worker callback. */
	bool sync;
	/* Workers when --threads is not given (0: min(queues, CPUs)).  An
	 * engine whose I/O is done by a client library's own threads (rbd,
	 * nbd) wants 1: a worker per queue only adds hand-offs and wake-ups
	 * per request (docs/performance.md, storage engines). */
	unsigned default_threads;
	int (*open)(struct blk_dev *d, char *err, size_t errlen);
	void (*close)(struct blk_dev *d);
	int (*init)(struct blk_worker *w, int *efd);
	void (*fini)(struct blk_worker *w);
	int (*start)(struct blk_dev *d);
	void (*stop)(struct blk_dev *d);
	void (*submit)(struct blk_worker *w, struct blk_req *r);
	void (*kick)(struct blk_worker *w);
	void (*reap)(struct blk_worker *w);
};

extern const struct blk_engine blk_engine_uring;
extern const struct blk_engine blk_engine_null;
#ifdef VHU_BLK_HAVE_RBD
extern const struct blk_engine blk_engine_rbd;
#endif
#ifdef VHU_BLK_HAVE_NBD
extern const struct blk_engine blk_engine_nbd;
#endif

/* ---- image specifications (spec.c) ---- */

#define BLK_SPEC_MAX_LEN  4096u
#define BLK_SPEC_MAX_OPTS 16u

enum blk_spec_kind {
	BLK_SPEC_FILE,
	BLK_SPEC_RBD,
	BLK_SPEC_NBD,
};

/* A parsed image specification.  Every string points into buf (owned). */
struct blk_spec {
	enum blk_spec_kind kind;
	char *path; /* FILE */
	struct {
		char *pool, *ns, *image; /* ns NULL = default namespace */
		char *snap;              /* NULL = the image head (read-write) */
		char *conf;              /* ceph.conf; NULL = Ceph's default search */
		char *id;                /* client id (user) without "client."; NULL = admin */
		struct {
			char *key, *value; /* other Ceph options (rados_conf_set) */
		} opts[BLK_SPEC_MAX_OPTS];
		unsigned nopts;
	} rbd;
	struct {
		char *uri;         /* nbd[s][+unix|+vsock]://..., or NULL */
		char *host, *port; /* legacy nbd:HOST:PORT */
		char *unix_path;   /* legacy nbd:unix:PATH */
		char *export;      /* legacy :exportname=, NULL = "" */
	} nbd;
	char *buf;
};

/*
 * Parse an image specification (see spec.c's header for the spellings:
 * a path, file:PATH, rbd:POOL/[NS/]IMAGE[@SNAP][:conf=FILE][:id=USER][:KEY=VAL],
 * nbd://..., nbd+unix://..., nbd:HOST:PORT, nbd:unix:PATH).  Any thread; pure.
 * Returns 0 (free with blk_spec_free) or -EINVAL with a sentence in err, or
 * -ENOMEM.  Whether the engine for the kind was built is checked later, by
 * blk_image_open.
 */
int blk_spec_parse(const char *s, struct blk_spec *sp, char *err, size_t errlen);
void blk_spec_free(struct blk_spec *sp);
const char *blk_spec_kind_name(enum blk_spec_kind k);

struct blk_worker {
	unsigned index;
	struct blk_dev *dev;
	uint64_t qmask; /* queues served */
	void *priv;     /* engine state */
	int efd;        /* completion listener, -1 if none */
};

struct blk_opts {
	const char *image; /* NULL in --null mode without image */
	bool read_only;
	bool null_io;
	bool no_direct;
	unsigned num_queues;
	unsigned queue_size;
	unsigned threads; /* 0 = the engine's default_threads, else min(num_queues, CPUs) */
	uint32_t blk_size;
	uint64_t null_size; /* bytes, --null without image */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	/* nbd: how long requests wait for a lost server to come back before
	 * they fail (0 = fail at once; reconnecting goes on regardless). */
	unsigned reconnect_delay_s;
};

struct blk_dev {
	struct blk_opts opts;
	struct blk_spec spec; /* parsed opts.image */
	void *engine_priv;    /* device-wide engine state (open .. close) */
	unsigned max_threads; /* the engine's limit on workers; 0 = none */
	int fd;               /* buffered (or the only) fd; -1 in --null mode */
	int fd_direct;        /* O_DIRECT fd, or -1 */
	bool is_blockdev;
	uint32_t dio_mem_align, dio_off_align;
	uint64_t capacity; /* sectors, at open; lim.capacity follows resizes */
	struct blk_limits lim;
	/* The back-end channel, for config-change messages (resize).  Set by
	 * the handler thread, used by engine threads: under chan_lock. */
	pthread_mutex_t chan_lock;
	struct vhu_channel *chan;
	char serial[VIRTIO_BLK_ID_BYTES];

	unsigned seg_max, iov_max;
	_Atomic uint8_t wce;              /* writeback cache on */
	_Atomic uint64_t acked;           /* acked virtio features */
	_Atomic uint64_t last_negotiated; /* features the cache mode was last reset for */
	_Atomic unsigned gen;             /* bumped on every reset: stale completions dropped */
	_Atomic bool zero_range_broken;   /* fallocate(ZERO_RANGE) unsupported here */

	const struct blk_engine *engine;
	unsigned nthreads;
	struct blk_queue queues[BLK_MAX_QUEUES];
	struct blk_worker *workers;
	struct vhu_daemon *daemon;

	_Atomic unsigned busy; /* request slots in use, all queues */

	/* Statistics (worker threads, relaxed). */
	_Atomic uint64_t nreq, nerr;
};

/* ---- image.c ---- */
/* The engine that serves spec kind k ("--null" aside), or NULL with a
 * sentence in err naming the Debian package vhu-blk was built without. */
const struct blk_engine *blk_engine_for(enum blk_spec_kind k, char *err, size_t errlen);
/* NULL-terminated names of the engines built in (for --print-capabilities). */
const char *const *blk_engine_names(void);
/* Parse d->opts.image (if any), pick the engine (null for --null) and open
 * the image: sets spec, engine, capacity, and the engine's state.  Main
 * thread, before blk_dev_setup.  Prints nothing: -errno and a sentence in
 * err ("open: No such file or directory", "rbd: ...: Connection timed out").
 * blk_image_close undoes it (also after a failure). */
int blk_image_open(struct blk_dev *d, char *err, size_t errlen);
void blk_image_close(struct blk_dev *d);
/* Files: open d->spec.path (fd, fd_direct, capacity, is_blockdev). */
int blk_file_open(struct blk_dev *d, char *err, size_t errlen);
void blk_file_close(struct blk_dev *d);
/* The image now has `bytes` bytes: update the capacity requests are judged
 * by and tell the front end (VHOST_USER_BACKEND_CONFIG_CHANGE_MSG) so that
 * the guest sees the new size.  Any thread. */
void blk_dev_resized(struct blk_dev *d, uint64_t bytes);

/* ---- engine.c: helpers the engines share ---- */
/* Log an engine error for r, rate limited (first one of a burst, then a
 * count once a second).  Worker thread of r. */
void blk_log_io_error(struct blk_dev *d, const struct blk_req *r, const char *engine, int err);
/* Request slots of w's queues in use (popped, not pushed yet). */
unsigned blk_worker_busy(const struct blk_worker *w);
/* A FLUSH on a read-only disk: nothing can be dirty, r is finished here
 * (true); anything else: false.  Worker thread. */
bool blk_req_flush_ro(const struct blk_worker *w, struct blk_req *r);
/* Create `path` (and missing parent directories) as a sparse file of `size`
 * bytes if it does not exist. 1 = created, 0 = existed, -errno. */
int blk_image_create_default(const char *path, uint64_t size);
/* Listening unix socket at path: -EADDRINUSE if a live process listens
 * there, -EEXIST if a non-socket file is in the way, stale sockets are
 * replaced.  Returns the fd or -errno. */
int blk_listen_unix(const char *path);

/* ---- req.c ---- */
/* Judge r->chain: set op, offset/len/data or segs, status_ptr, and for
 * op == NONE the status (GET_ID data is copied here). Pure. */
void blk_req_parse(const struct blk_limits *lim, struct blk_req *r);
/* True if every data iovec and the offset suit O_DIRECT alignment. */
bool blk_req_dio_aligned(const struct blk_req *r, uint32_t mem_align, uint32_t off_align);
/* Advance r->data / r->ndata past `n` bytes (short read/write). */
void blk_req_advance(struct blk_req *r, uint64_t n);

/* ---- blk.c ---- */
extern const struct vhu_backend_ops blk_ops;
/* Allocate slots and engine state; needs opts and capacity set. */
int blk_dev_setup(struct blk_dev *d);
/* Register completion listeners with the daemon (after vhu_daemon_new). */
int blk_dev_attach(struct blk_dev *d, struct vhu_daemon *daemon);
void blk_dev_teardown(struct blk_dev *d);
/* The engine finished r (status in r->status / r->error): write the status
 * and queue r for the next blk_queue_flush() of its queue (a full batch is
 * flushed at once), which pushes it and frees the slot. Worker thread. */
void blk_req_finish(struct blk_req *r);
/* Push the queue's finished requests (one batch) and free their slots.
 * Every worker callback flushes before it returns. Worker thread. */
void blk_queue_flush(struct blk_queue *q);

#endif
