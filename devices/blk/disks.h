/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk --disk (disks.c): several disks in one process, their queues on
 * one worker pool.  Main thread only.
 */
#ifndef VHU_BLK_DISKS_H
#define VHU_BLK_DISKS_H

#include "blk.h"

#define BLK_MAX_DISKS 256u

/* One --disk. */
struct blk_disk {
	struct blk_dev dev;
	char *arg; /* the --disk value, unescaped; the strings below point into it */
	const char *socket;
	const char *image; /* NULL: --null without an image */
	unsigned queues;   /* 0: --num-queues */
	bool ro;
	const char *serial; /* NULL: --serial */
	char name[16];      /* "diskN", the daemon's name in logs */
	struct vhu_daemon *daemon;
};

struct blk_disks {
	unsigned n;
	unsigned threads; /* of the pool */
	struct vhu_pool *pool;
	struct blk_disk *disk[BLK_MAX_DISKS];
};

/* Parse one --disk value (socket=PATH,image=IMAGE[,queues=N][,ro][,serial=ID];
 * ",," is a comma).  0 and *out (free with blk_disk_free), -EINVAL with a
 * sentence in err, or -ENOMEM. */
int blk_disk_parse(const char *arg, struct blk_disk **out, char *err, size_t errlen);
void blk_disk_free(struct blk_disk *x);
/* Append x (ownership taken on success): -EINVAL with a sentence in err for
 * a socket given twice, an image two writable disks share, or too many. */
int blk_disks_add(struct blk_disks *ds, struct blk_disk *x, char *err, size_t errlen);
void blk_disks_free(struct blk_disks *ds);
/* After the whole command line: each disk's options are `defaults` (the
 * global options) overridden by its own (--read-only makes every disk
 * read-only); picks the pool's thread count (defaults->threads, else one
 * per CPU up to the number of queues).  -EINVAL with a sentence in err. */
int blk_disks_configure(struct blk_disks *ds, const struct blk_opts *defaults, char *err,
                        size_t errlen);
/* Open every image, start the pool and a daemon per disk on socket i of p
 * (added by the caller in disk order), serve until stopped, print per-disk
 * statistics and free everything.  Returns the exit status. */
int blk_disks_run(struct vhu_program *p, struct blk_disks *ds, unsigned poll_us);

#endif
