/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One FUSE request being served, and what the operation files share:
 * argument parsing, replies, attribute conversion, credentials.
 */
#ifndef VHU_FS_REQ_H
#define VHU_FS_REQ_H

#include "fs.h"

struct fs_req {
	struct fs *fs;
	struct fs_thread *t;
	const struct vhu_chain *c;
	void *cookie;
	struct fuse_in_header in;
	/* Arguments after the header, copied (t->arg + sizeof in). */
	const uint8_t *arg;
	uint32_t arglen;
	/* Consumed by the fs_arg_*() parsers. */
	uint32_t argpos;
	/* Bytes of bulk data (WRITE) left in guest memory after the copied
	 * arguments, at readable offset `bulk_off`. */
	uint32_t bulk_off, bulk_len;
	uint64_t out_cap; /* writable bytes of the chain */
	uint32_t written;
	bool replied;
	bool deferred;
};

/* The fixed argument struct of the request (the size checked by the
 * opcode table, so never NULL inside a handler that declared it). */
#define FS_ARG(r, type) ((const type *)(r)->arg)

/* Next NUL-terminated name in the arguments, after `skip` bytes of fixed
 * arguments for the first call.  A name is 1..NAME_MAX bytes without '/';
 * unless `dots_ok`, "." and ".." are refused.  NULL with *err set
 * (-EINVAL malformed, -ENAMETOOLONG). */
const char *fs_arg_name(struct fs_req *r, uint32_t skip, bool dots_ok, int *err);
/* Next NUL-terminated string of 1..max-1 bytes (symlink targets, xattr
 * names): any bytes but NUL.  NULL with *err set. */
const char *fs_arg_string(struct fs_req *r, uint32_t skip, uint32_t max, int *err);
/* Remaining `len` bytes after the parsed strings, or NULL (-EINVAL). */
const void *fs_arg_bytes(struct fs_req *r, uint32_t len);

/* Replies (each once per request).  err is 0 or -errno. */
void fs_reply_err(struct fs_req *r, int err);
void fs_reply(struct fs_req *r, const void *data, size_t len);
void fs_reply2(struct fs_req *r, const void *a, size_t alen, const void *b, size_t blen);
void fs_reply_none(struct fs_req *r);
/* Writable iovecs after the reply header for up to `len` bytes, in r->t->iov;
 * returns the count (0 if none) and sets *cap to the bytes they cover. */
unsigned fs_reply_data_iov(struct fs_req *r, size_t len, size_t *cap);
/* Header for a reply whose `len` payload bytes are already in place. */
void fs_reply_len(struct fs_req *r, size_t len);
/* Readable iovecs of the bulk data, in r->t->iov; returns the count. */
unsigned fs_bulk_iov(struct fs_req *r, size_t len);

/* Inode / handle of the request, with a reference; NULL after an error
 * reply (EBADF / ESTALE). */
struct fs_inode *fs_req_inode(struct fs_req *r, uint64_t nodeid);
struct fs_handle *fs_req_handle(struct fs_req *r, uint64_t fh, enum fs_handle_kind kind);
void fs_put_inode(struct fs_req *r, struct fs_inode *i);
void fs_put_handle(struct fs_req *r, struct fs_handle *h);

/* stat of an inode (never following a symlink). 0 or -errno. */
int fs_stat_inode(const struct fs_inode *i, struct stat *st);
/* struct stat -> fuse_attr; `parent_dev` for the submount flag (0: none). */
void fs_fill_attr(const struct fs *fs, const struct stat *st, dev_t parent_dev,
                  struct fuse_attr *a);
/* Entry and attribute timeouts of the cache policy. */
void fs_fill_entry_times(const struct fs *fs, struct fuse_entry_out *e);
void fs_fill_attr_times(const struct fs *fs, struct fuse_attr_out *a);

/* Look up `name` under `parent` (one component, already checked) and enter
 * it in the inode table: fills *e (nodeid with a new lookup).  0 or -errno. */
int fs_do_lookup(struct fs *fs, struct fs_inode *parent, const char *name,
                 struct fuse_entry_out *e);
/* Open inode fd `fd` again through /proc/self/fd with `flags`. */
int fs_reopen(struct fs *fs, int fd, int flags);
/* "N" for /proc/self/fd/N relative paths (the cwd is /proc/self/fd). */
void fs_fd_name(char buf[16], int fd);

/* Act as the caller while creating files: fsuid/fsgid of this thread. */
struct fs_creds {
	uid_t uid;
	gid_t gid;
	bool switched;
};
void fs_creds_enter(struct fs_creds *saved, uid_t uid, gid_t gid);
void fs_creds_leave(struct fs_creds *saved);

/* Clear set-ID bits as an unprivileged write would (ops_attr.c). */
int fs_kill_suidgid(struct fs *fs, int ofd);

/* Mode bits a guest may set (set-ID bits refused unless allowed). */
int fs_check_mode(const struct fs *fs, mode_t mode);

/* Operation handlers (opcode table in fuse.c). */
void fs_op_init(struct fs_req *r);
void fs_op_destroy(struct fs_req *r);
void fs_op_lookup(struct fs_req *r);
void fs_op_forget(struct fs_req *r);
void fs_op_batch_forget(struct fs_req *r);
void fs_op_getattr(struct fs_req *r);
void fs_op_setattr(struct fs_req *r);
void fs_op_readlink(struct fs_req *r);
void fs_op_symlink(struct fs_req *r);
void fs_op_mknod(struct fs_req *r);
void fs_op_mkdir(struct fs_req *r);
void fs_op_unlink(struct fs_req *r);
void fs_op_rmdir(struct fs_req *r);
void fs_op_rename(struct fs_req *r);
void fs_op_rename2(struct fs_req *r);
void fs_op_link(struct fs_req *r);
void fs_op_open(struct fs_req *r);
void fs_op_create(struct fs_req *r);
void fs_op_read(struct fs_req *r);
void fs_op_write(struct fs_req *r);
void fs_op_statfs(struct fs_req *r);
void fs_op_release(struct fs_req *r);
void fs_op_fsync(struct fs_req *r);
void fs_op_flush(struct fs_req *r);
void fs_op_setxattr(struct fs_req *r);
void fs_op_getxattr(struct fs_req *r);
void fs_op_listxattr(struct fs_req *r);
void fs_op_removexattr(struct fs_req *r);
void fs_op_opendir(struct fs_req *r);
void fs_op_readdir(struct fs_req *r);
void fs_op_readdirplus(struct fs_req *r);
void fs_op_releasedir(struct fs_req *r);
void fs_op_fsyncdir(struct fs_req *r);
void fs_op_getlk(struct fs_req *r);
void fs_op_setlk(struct fs_req *r);
void fs_op_setlkw(struct fs_req *r);
void fs_op_access(struct fs_req *r);
void fs_op_fallocate(struct fs_req *r);
void fs_op_lseek(struct fs_req *r);
void fs_op_copy_file_range(struct fs_req *r);
void fs_op_syncfs(struct fs_req *r);
void fs_op_interrupt(struct fs_req *r);

/* lock.c */
int fs_locks_new(struct fs *fs);
void fs_locks_free(struct fs *fs);
/* End every wait: with an EINTR reply (session over, the rings live on),
 * or silently (the front end is gone). */
void fs_locks_cancel(struct fs *fs, bool reply);

#endif
