/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-rng device: virtio-rng (virtio device id 4) on libvhu.  One queue of
 * device-writable buffers that the device fills with random bytes from
 * getrandom(2) or a source file, optionally rate limited by a token bucket
 * whose refill wake-ups come from a timerfd registered as a daemon listener.
 */
#ifndef VHU_RNG_H
#define VHU_RNG_H

#include <stdbool.h>
#include <stdint.h>

#include "vhu/vhu.h"
#include "tbucket.h"

#define RNG_NUM_QUEUES     1
#define RNG_MAX_QUEUE_SIZE 1024
/* Listener id of the rate limiter's timerfd (must be >= RNG_NUM_QUEUES). */
#define RNG_TIMER_EVENT 1
/* Most bytes given to one request: bounds the time a huge guest buffer
 * keeps the worker busy (virtio-rng lets the device fill less). */
#define RNG_MAX_CHUNK (1u << 20)
/* Iovecs one request may have (more: completed with 0 bytes). */
#define RNG_IOV_MAX 64

struct rng_opts {
	const char *source;         /* file to read; NULL: getrandom(2) */
	uint64_t max_bytes_per_sec; /* 0: unlimited */
};

struct rng_dev {
	int src_fd; /* -1: getrandom(2) */
	bool src_seekable;
	bool src_error_logged;
	/* Rate limiter; touched only by the worker thread. */
	bool limited;
	struct tbucket tb;
	int timer_fd; /* -1 unless limited */
	bool timer_armed;
	uint64_t bytes; /* served, for the exit log */
};

/* The device operations (dev = struct rng_dev *). */
extern const struct vhu_backend_ops rng_backend_ops;

/* Open the source and, with a rate limit, the timerfd.  0 or -errno (the
 * source could not be opened). */
int rng_dev_init(struct rng_dev *r, const struct rng_opts *o);

/* Register the rate limiter's timer with daemon d (no-op without a rate
 * limit).  0 or -errno. */
int rng_dev_attach(struct rng_dev *r, struct vhu_daemon *d);

/* Close what rng_dev_init opened. */
void rng_dev_fini(struct rng_dev *r);

#endif
