/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk internals: a virtio-blk device on libvhu.
 *
 *   main.c         command line, default image/socket, signals
 *   image.c        opening the image (file or block device), capacity, listening socket
 *   blk.c          the vhu_backend_ops table: features, config space, threads, events
 *   req.c          request parsing and validation (pure: no I/O)
 *   engine_uring.c asynchronous I/O through io_uring (one ring per worker thread)
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
#include <stdatomic.h>
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
	uint64_t capacity; /* 512-byte sectors */
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

struct blk_engine {
	const char *name;
	/* Every request completes inside submit(): no memory reference is
	 * needed beyond the worker callback. */
	bool sync;
	/* Per worker set-up (handler/main thread, before serving). Sets *efd to
	 * an fd to register as listener, or -1. 0 or -errno. */
	int (*init)(struct blk_worker *w, int *efd);
	void (*fini)(struct blk_worker *w);
	/* Start I/O for r (op != NONE). Completes through blk_req_finish(),
	 * possibly before returning. Worker thread. */
	void (*submit)(struct blk_worker *w, struct blk_req *r);
	/* Hand batched submissions to the kernel. Worker thread. */
	void (*kick)(struct blk_worker *w);
	/* Listener fired: reap completions. Worker thread. */
	void (*reap)(struct blk_worker *w);
};

extern const struct blk_engine blk_engine_uring;
extern const struct blk_engine blk_engine_null;

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
	unsigned threads; /* 0 = min(num_queues, online CPUs) */
	uint32_t blk_size;
	uint64_t null_size; /* bytes, --null without image */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
};

struct blk_dev {
	struct blk_opts opts;
	int fd;        /* buffered (or the only) fd; -1 in --null mode */
	int fd_direct; /* O_DIRECT fd, or -1 */
	bool is_blockdev;
	uint32_t dio_mem_align, dio_off_align;
	uint64_t capacity; /* sectors */
	struct blk_limits lim;
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
/* Open the image per opts (sets fd, fd_direct, capacity, is_blockdev).
 * On error prints nothing and returns -errno; *what names the failing step. */
int blk_image_open(struct blk_dev *d, const char **what);
void blk_image_close(struct blk_dev *d);
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
