/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A FUSE client over virtio-fs queues, for tests, the fuzzer's seeds and
 * the load generator: libvhu-frontend plays QEMU and the guest's virtio
 * driver, this file plays the guest's FUSE layer.  Also runs the real
 * vhu-fs binary on a scratch directory.
 *
 * Queue 0 is the hiprio queue (FORGET), 1..n the request queues.  Each
 * queue has one request buffer and one reply buffer in guest memory, so a
 * queue carries one request at a time (fusec_submit/fusec_wait can keep
 * several in flight on different queues).  Threads: one per queue.
 */
#ifndef VHU_FUSEC_H
#define VHU_FUSEC_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vhu/frontend.h"

#define FUSEC_MAXQ       17
#define FUSEC_BUF        ((1u << 20) + 8192)
#define FUSEC_TIMEOUT_MS 10000

/* ---- the daemon ------------------------------------------------------ */

struct fst_env {
	char dir[64];    /* scratch directory */
	char sock[128];  /* dir/sock */
	char share[128]; /* dir/share: the shared directory */
	char out[128];   /* the daemon's stdout, stderr */
	char err[128];
	pid_t pid;
};

/* Path of the vhu-fs binary (VHU_BUILD_ROOT/devices/fs/vhu-fs). */
const char *fst_binary(void);
/* Make the scratch dir and the share; start vhu-fs on them with `args`
 * (NULL-terminated, may be NULL) after --socket-path/--shared-dir, and
 * wait until it listens.  0 or -errno. */
int fst_start(struct fst_env *e, const char *const *args);
/* The two halves of fst_start: the scratch dir and share (to put things
 * in the share first), then the daemon. */
int fst_prepare(struct fst_env *e);
int fst_launch(struct fst_env *e, const char *const *args);
/* The same in client mode: listen at e->sock (vhuf_listen), start
 * vhu-fs --client with args; returns the listening fd (the caller
 * accepts with vhuf_accept and closes it) or -errno. */
int fst_start_client(struct fst_env *e, const char *const *args);
/* SIGTERM the daemon and wait: its exit status (128+signal if killed),
 * -1 if it had to be SIGKILLed. */
int fst_stop(struct fst_env *e);
/* Stop (if running) and remove the scratch dir. */
void fst_cleanup(struct fst_env *e);
/* Run vhu-fs to completion with `args` (usage errors...): exit status. */
int fst_run(struct fst_env *e, const char *const *args);
/* Whole file (NUL terminated, 64 KiB at most, static buffer). */
const char *fst_slurp(const char *path);
/* share/rel as a path (static buffer, overwritten by the next call). */
const char *fst_path(const struct fst_env *e, const char *rel);

/* ---- the client -------------------------------------------------------- */

struct fusec_q {
	uint64_t req_gpa, rep_gpa;
	uint8_t *req, *rep;
	uint64_t unique;
};

struct fusec {
	struct vhuf *f;
	unsigned nq; /* queues set up: 1 + request queues */
	struct fusec_q q[FUSEC_MAXQ];
	struct fuse_init_out init;
};

struct fusec_reply {
	int error;     /* out header's error (0 or -errno) */
	uint32_t len;  /* payload bytes */
	uint8_t *data; /* payload, in the queue's reply buffer */
	uint32_t used; /* what the device said it wrote */
};

/* Connect, negotiate, set up 1 + nreq queues of qsize entries. */
int fusec_connect(struct fusec *c, const char *sock, unsigned nreq, unsigned qsize);
/* The same on a front end already connected (vhuf_accept), taken over. */
int fusec_attach(struct fusec *c, struct vhuf *f, unsigned nreq, unsigned qsize);
void fusec_close(struct fusec *c);

/* One request on queue q: header + args (concatenated) as one readable
 * buffer, a writable buffer of reply_cap bytes.  Returns the reply's error
 * (0 or -errno from the device), -ETIMEDOUT, -EPROTO (reply malformed:
 * wrong unique, length past what was written). */
int fusec_call(struct fusec *c, unsigned q, uint32_t opcode, uint64_t nodeid,
               const struct iovec *args, unsigned nargs, size_t reply_cap, struct fusec_reply *r);
/* Same with the caller's ids (uid/gid of the "guest process"). */
int fusec_call_as(struct fusec *c, unsigned q, uint32_t opcode, uint64_t nodeid, uint32_t uid,
                  uint32_t gid, const struct iovec *args, unsigned nargs, size_t reply_cap,
                  struct fusec_reply *r);
/* Start a request on q without waiting (for concurrency tests); finish it
 * with fusec_wait.  Returns the unique or -errno. */
int64_t fusec_submit(struct fusec *c, unsigned q, uint32_t opcode, uint64_t nodeid,
                     const struct iovec *args, unsigned nargs, size_t reply_cap);
int fusec_wait(struct fusec *c, unsigned q, int timeout_ms, struct fusec_reply *r);
/* Any chain: bufs point into guest memory the caller filled (vhuf_alloc).
 * Returns the used length or -ETIMEDOUT. */
int fusec_raw(struct fusec *c, unsigned q, const struct vhuf_buf *bufs, unsigned n);
/* Scratch guest memory (zeroed). */
uint64_t fusec_alloc(struct fusec *c, size_t len, void **ptr);

/* ---- operations (queue 1) ---------------------------------------------- */

int fusec_init(struct fusec *c, uint32_t minor, uint32_t flags);
int fusec_lookup(struct fusec *c, uint64_t parent, const char *name, struct fuse_entry_out *e);
int fusec_forget(struct fusec *c, uint64_t nodeid, uint64_t n); /* hiprio */
int fusec_getattr(struct fusec *c, uint64_t nodeid, struct fuse_attr *a);
int fusec_mkdir(struct fusec *c, uint64_t parent, const char *name, uint32_t mode,
                struct fuse_entry_out *e);
int fusec_mknod(struct fusec *c, uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
                struct fuse_entry_out *e);
int fusec_symlink(struct fusec *c, uint64_t parent, const char *name, const char *target,
                  struct fuse_entry_out *e);
int fusec_link(struct fusec *c, uint64_t old, uint64_t newparent, const char *name,
               struct fuse_entry_out *e);
int fusec_create(struct fusec *c, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
                 struct fuse_entry_out *e, uint64_t *fh);
int fusec_open(struct fusec *c, uint64_t nodeid, uint32_t flags, uint64_t *fh);
int fusec_opendir(struct fusec *c, uint64_t nodeid, uint64_t *fh);
/* Bytes read/written or -errno. */
ssize_t fusec_read(struct fusec *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf,
                   size_t len);
ssize_t fusec_write(struct fusec *c, uint64_t nodeid, uint64_t fh, uint64_t off, const void *buf,
                    size_t len);
int fusec_release(struct fusec *c, uint64_t nodeid, uint64_t fh, bool dir);
int fusec_unlink(struct fusec *c, uint64_t parent, const char *name, bool dir);
int fusec_rename(struct fusec *c, uint64_t olddir, const char *oldname, uint64_t newdir,
                 const char *newname, uint32_t flags);
int fusec_readlink(struct fusec *c, uint64_t nodeid, char *buf, size_t len);
int fusec_setattr(struct fusec *c, uint64_t nodeid, const struct fuse_setattr_in *in,
                  struct fuse_attr *a);
/* READDIR(PLUS): bytes of dirents copied into buf, or -errno. */
ssize_t fusec_readdir(struct fusec *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf,
                      size_t size, bool plus);
/* Every name of directory `nodeid` (READDIR from 0 to the end), joined by
 * '\n' into buf; returns the count or -errno. */
int fusec_list(struct fusec *c, uint64_t nodeid, char *buf, size_t len, bool plus);

#endif
