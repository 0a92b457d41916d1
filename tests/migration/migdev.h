/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The migration suite's test device, environment and I/O load.
 *
 * "mig" is a device whose requests are a readable 8-byte sequence number
 * followed by writable buffers that the device fills with a pattern derived
 * from it (mig_pattern).  How it completes is the test's choice: at once in
 * handle_event, or later from a completion thread that writes the buffers
 * and then wakes the worker through a listener eventfd (as io_uring does
 * for vhu-blk); and how honestly it reports what it wrote.  A daemon runs
 * it in this process on a socket in a temporary directory.
 *
 * The load: one thread per queue keeps requests in flight with
 * libvhu-frontend and checks every completion's bytes, while the test
 * thread migrates (vhuf_log_start/sync/verify).
 */
#ifndef MIG_DEV_H
#define MIG_DEV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vhu/frontend.h"
#include "vhu/vhu.h"

#define MIG_MAX_QUEUES 4
#define MIG_MAX_HELD   1024

enum mig_complete {
	MIG_NOW = 0, /* in handle_event */
	MIG_ASYNC,   /* from the completion thread after delay_ms */
	MIG_HOLD,    /* the completion thread waits for mig_release() */
};

enum mig_report {
	MIG_HONEST = 0, /* pushed with written = bytes written */
	MIG_LIE,        /* fills the whole writable part, reports half */
	MIG_LIE_LOGGED, /* the same, marking the rest with vhu_vring_log_write */
};

struct mig_held {
	struct vhu_vring *vr;
	struct vhu_mem *mem; /* held while the chain is in flight */
	struct vhu_chain c;
	struct iovec iov[8];
	bool done;
};

struct mig_dev {
	unsigned nq;
	uint64_t features;
	bool with_net_ops; /* send_rarp and set_mtu */
	enum mig_complete complete;
	enum mig_report report;
	unsigned delay_ms;

	/* Asynchronous completions. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_on, quit, released;
	int done_fd; /* eventfd listener: completions to push */
	struct mig_held held[MIG_MAX_HELD];
	unsigned nheld;

	/* What the device saw. */
	atomic_uint popped, pushed;
	atomic_uint stop_seen; /* handle_event saw vhu_vring_stopping() */
	atomic_uint rarps, mtus;
	uint8_t rarp_mac[6];
	uint16_t mtu;
};

struct mig_env {
	char dir[64];
	char path[128];
	struct vhu_daemon *d;
	struct mig_dev dev;
};

/* Fill the device (nq queues, defaults) before mig_env_start. */
void mig_dev_init(struct mig_dev *m, unsigned nq);
/* Start a daemon for env->dev (cfg may be NULL). 0 or -errno. */
int mig_env_start(struct mig_env *env, const struct vhu_daemon_config *cfg);
void mig_env_stop(struct mig_env *env);
/* Let MIG_HOLD completions go. */
void mig_release(struct mig_dev *m);

/* Bytes the device writes for sequence number seq at offset i (every
 * sequence number gives other bytes: no two requests write alike). */
static inline uint8_t mig_pattern(uint64_t seq, uint64_t i)
{
	uint64_t x = (seq + 1) * 0x9e3779b97f4a7c15ull ^ (i / 8) * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 29;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 32;
	return (uint8_t)(x >> (8 * (i % 8)));
}

/* Connect and negotiate everything the back end offers of f|pf, set up
 * nq queues of size qsize.  NULL on failure (reported). */
struct vhuf *mig_fe_open(const char *path, unsigned nq, unsigned qsize, uint64_t features,
                         uint64_t pf, size_t mem);

int64_t mig_now_ms(void);
/* Poll `cond` every millisecond for up to ms; evaluates to its last value. */
#define WAIT_UNTIL(cond, ms)                                                                       \
	({                                                                                         \
		int64_t wu_deadline_ = mig_now_ms() + (ms);                                        \
		while (!(cond) && mig_now_ms() < wu_deadline_)                                     \
			usleep(1000);                                                              \
		(cond);                                                                            \
	})

/* ---- load ---------------------------------------------------------------- */

struct mig_load {
	struct vhuf *f;
	unsigned nq;
	unsigned depth;    /* requests in flight per queue */
	unsigned wpages;   /* writable pages per request (own pages) */
	atomic_bool stop;  /* ask the threads to stop submitting */
	atomic_bool drain; /* ... and to wait for what is in flight */
	pthread_t th[MIG_MAX_QUEUES];
	atomic_ullong done, bad; /* completions, completions with wrong bytes */
	atomic_uint errors;      /* driver errors (reported) */
	atomic_uint inflight[MIG_MAX_QUEUES];
	uint64_t seq_base;
	struct mig_slot *slots[MIG_MAX_QUEUES];
};

/* Start one thread per queue keeping `depth` requests in flight. */
int mig_load_start(struct mig_load *l, struct vhuf *f, unsigned nq, unsigned depth,
                   unsigned wpages);
/* Stop submitting; with wait_all, also reap everything in flight (bounded
 * by 10 s).  Joins the threads. */
void mig_load_stop(struct mig_load *l, bool wait_all);
/* Requests submitted on q that have not completed. */
unsigned mig_load_inflight(const struct mig_load *l, unsigned q);

#endif
