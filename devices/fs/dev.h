/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vhost-user side of vhu-fs (dev.c, pool.c): request slots, worker
 * state and the service thread pool.
 */
#ifndef VHU_FS_DEV_H
#define VHU_FS_DEV_H

#include "fs.h"

/* A popped chain, with its own iovec array. */
struct fs_slot {
	struct fs_slot *next;
	struct fs_dev *dev;
	struct vhu_vring *vr;
	unsigned gen;        /* front-end generation at pop */
	struct vhu_mem *mem; /* held while served off the worker */
	struct vhu_chain chain;
	struct iovec iov[];
};

/* Per worker thread: scratch for serving inline, a slot kept for the
 * next pop. */
struct fs_worker {
	struct fs_thread t;
	struct fs_slot *spare;
};

struct fs_pool;

struct fs_dev {
	struct fs_opts opts;
	struct fs *fs;
	unsigned nthreads; /* worker threads: one per request queue */
	unsigned iov_max;
	atomic_uint gen;  /* raised at every reset */
	atomic_uint busy; /* requests served off the workers, not done */
	struct fs_worker *workers;
	struct fs_pool *pool;
	pthread_mutex_t slot_lock;
	struct fs_slot *free_slots;
	unsigned nfree_slots;
};

extern const struct vhu_backend_ops fs_backend_ops;

/* Device for the directory root_fd with /proc/self/fd proc_fd (both taken
 * over), see fs_new().  Starts the pool threads.  0 or -errno. */
int fs_dev_new(struct fs_dev **out, const struct fs_opts *o, int root_fd, int proc_fd);
/* After the daemon is gone. */
void fs_dev_free(struct fs_dev *d);
struct fs *fs_dev_fs(struct fs_dev *d);

struct fs_slot *fs_slot_get(struct fs_dev *d);
void fs_slot_put(struct fs_dev *d, struct fs_slot *s);
/* Push s with `written` bytes (written < 0: drop) and release it. */
void fs_slot_complete(struct fs_dev *d, struct fs_slot *s, int32_t written);

int fs_pool_new(struct fs_pool **out, struct fs_dev *d, unsigned nthreads);
/* Serve s on a pool thread (its memory reference taken, busy counted). */
void fs_pool_submit(struct fs_pool *p, struct fs_slot *s);
void fs_pool_free(struct fs_pool *p);

#endif
