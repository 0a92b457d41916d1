/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-bench: a virtio-blk guest driver in user space, built on
 * libvhu-frontend, that keeps a fixed number of requests in flight on each
 * queue of a vhost-user-blk back end and measures what comes back.
 */
#ifndef VHU_BENCH_H
#define VHU_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hist.h"

struct vhuf;

/* virtio-blk (virtio 1.2, 5.2). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_MQ       12
#define VIRTIO_BLK_T_IN       0
#define VIRTIO_BLK_T_OUT      1
#define VIRTIO_BLK_S_OK       0

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

/* Config space offsets. */
#define VIRTIO_BLK_CFG_CAPACITY   0  /* u64, 512-byte sectors */
#define VIRTIO_BLK_CFG_BLK_SIZE   20 /* u32 */
#define VIRTIO_BLK_CFG_NUM_QUEUES 34 /* u16 */
#define VIRTIO_BLK_CFG_READ_SIZE  36 /* what we ask for */

enum bench_rw { RW_READ, RW_WRITE, RW_RANDRW };

struct bench_opts {
	const char *socket;
	unsigned queues;
	unsigned depth;
	unsigned ring_size; /* 0: derived from depth */
	uint32_t block_size;
	enum bench_rw rw;
	unsigned read_pct; /* randrw */
	double duration;   /* seconds measured */
	uint64_t requests; /* measured requests to stop after (all queues); 0: none */
	double warmup;     /* seconds before measuring */
	bool poll;
	bool json;
	bool indirect;
	bool event_idx;
	bool packed;       /* negotiate VIRTIO_F_RING_PACKED */
	pid_t backend_pid; /* 0: SO_PEERCRED */
	uint64_t seed;
	uint64_t rate; /* requests/s over all queues; 0: unpaced */
	bool log;      /* dirty logging on, collected every 100 ms (--log) */
	bool idle;     /* set up, then submit nothing (--idle: an idle guest) */
	int connect_timeout_ms;
};

/* Parse argv into o (defaults first).  Returns 0, 1 after --help, or
 * -EINVAL after printing why. */
int bench_parse(struct bench_opts *o, int argc, char **argv);

/* Phases the main thread moves the workers through. */
enum bench_phase { PH_WARMUP, PH_MEASURE, PH_STOP };

/* One request slot: buffers preallocated in guest memory. */
struct bench_slot {
	uint64_t hdr_gpa, data_gpa, status_gpa;
	struct virtio_blk_outhdr *hdr;
	volatile uint8_t *status;
	uint64_t t_submit; /* ns, CLOCK_MONOTONIC */
	bool write;
};

struct bench_worker {
	struct bench *b;
	unsigned q;
	struct bench_slot *slots;
	struct bench_slot **done; /* completions of one drain pass */
	uint64_t rng;
	struct hist hist;
	/* Counted in the measured phase only. */
	uint64_t reqs, reads, writes, errors, kicks, calls, timeouts;
	uint64_t stalls; /* timed-out waits with completions pending */
	uint64_t inflight;
	uint64_t used_seen; /* used entries taken, all phases */
	uint64_t next_ns;   /* --rate: when the next submission is due */
	int err;            /* first fatal error, -errno */
};

struct bench {
	struct bench_opts o;
	struct vhuf *f;
	uint64_t features;
	uint64_t capacity; /* sectors */
	uint64_t nblocks;  /* block_size blocks in the device */
	unsigned dev_queues;
	unsigned ring_size;
	pid_t backend_pid; /* 0 if unknown */
	_Atomic int phase;
	atomic_uint quota_done; /* workers that completed their share of --requests */
	struct bench_worker *w;
};

/* Connect, negotiate, read config, set up queues and request buffers. */
int bench_setup(struct bench *b);
void bench_teardown(struct bench *b);
/* Worker thread body (arg: struct bench_worker *). */
void *bench_worker_run(void *arg);

uint64_t bench_now_ns(void);

/* Measured totals, for the report. */
struct bench_result {
	double seconds;
	uint64_t reqs, reads, writes, errors, kicks, calls, timeouts, stalls;
	struct hist hist;
	int64_t backend_cpu_us; /* -1 if unknown */
	int64_t backend_ctxsw;  /* -1 if unknown */
	int64_t gen_cpu_us;
	char backend_comm[32];
};

void bench_report_text(const struct bench *b, const struct bench_result *r);
void bench_report_json(const struct bench *b, const struct bench_result *r);

#endif
