/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FUSE request framing.  A request chain is judged before anything in it is
 * used: the header is copied out of guest memory, its length must lie
 * inside the readable part, the opcode must be known, and the argument
 * block must be between the opcode's minimum and maximum size.  The
 * arguments are then copied (the guest may change its buffers at any
 * moment) and only the copy is parsed.  Anything wrong gets an error reply
 * and a counter, never a crash.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "req.h"

enum {
	OP_NOREPLY = 1 << 0, /* FORGET & co: no reply */
	OP_BULK = 1 << 1,    /* data after the fixed arguments stays in the guest */
	OP_WRITES = 1 << 2,  /* changes the file system: EROFS when read-only */
	OP_PREINIT = 1 << 3, /* allowed before INIT */
};

struct fs_opdesc {
	void (*fn)(struct fs_req *r);
	uint32_t min, max; /* argument bytes after the header */
	uint8_t flags;
	const char *name;
};

static void fs_op_enosys(struct fs_req *r)
{
	fs_reply_err(r, -ENOSYS);
}

#define NAMEMAX                 (NAME_MAX + 1u)
#define PATHMAX                 ((uint32_t)PATH_MAX)
#define OP(code, f, mn, mx, fl) [code] = {f, mn, mx, fl, #code}

/* Sizes: the fixed argument struct plus, for names, 2 .. NAME_MAX + 1
 * bytes each (the NUL included).  SETXATTR uses the 8-byte compat struct
 * (FUSE_SETXATTR_EXT is not negotiated). */
static const struct fs_opdesc ops[] = {
    OP(FUSE_INIT, fs_op_init, 8, 4096, OP_PREINIT),
    OP(FUSE_DESTROY, fs_op_destroy, 0, 0, 0),
    OP(FUSE_LOOKUP, fs_op_lookup, 2, NAMEMAX, 0),
    OP(FUSE_FORGET, fs_op_forget, sizeof(struct fuse_forget_in), sizeof(struct fuse_forget_in),
       OP_NOREPLY),
    OP(FUSE_BATCH_FORGET, fs_op_batch_forget, sizeof(struct fuse_batch_forget_in), FS_ARG_MAX,
       OP_NOREPLY),
    OP(FUSE_GETATTR, fs_op_getattr, sizeof(struct fuse_getattr_in), sizeof(struct fuse_getattr_in),
       0),
    OP(FUSE_SETATTR, fs_op_setattr, sizeof(struct fuse_setattr_in), sizeof(struct fuse_setattr_in),
       OP_WRITES),
    OP(FUSE_READLINK, fs_op_readlink, 0, 0, 0),
    OP(FUSE_SYMLINK, fs_op_symlink, 4, NAMEMAX + PATHMAX, OP_WRITES),
    OP(FUSE_MKNOD, fs_op_mknod, sizeof(struct fuse_mknod_in) + 2,
       sizeof(struct fuse_mknod_in) + NAMEMAX, OP_WRITES),
    OP(FUSE_MKDIR, fs_op_mkdir, sizeof(struct fuse_mkdir_in) + 2,
       sizeof(struct fuse_mkdir_in) + NAMEMAX, OP_WRITES),
    OP(FUSE_UNLINK, fs_op_unlink, 2, NAMEMAX, OP_WRITES),
    OP(FUSE_RMDIR, fs_op_rmdir, 2, NAMEMAX, OP_WRITES),
    OP(FUSE_RENAME, fs_op_rename, sizeof(struct fuse_rename_in) + 4,
       sizeof(struct fuse_rename_in) + 2 * NAMEMAX, OP_WRITES),
    OP(FUSE_RENAME2, fs_op_rename2, sizeof(struct fuse_rename2_in) + 4,
       sizeof(struct fuse_rename2_in) + 2 * NAMEMAX, OP_WRITES),
    OP(FUSE_LINK, fs_op_link, sizeof(struct fuse_link_in) + 2,
       sizeof(struct fuse_link_in) + NAMEMAX, OP_WRITES),
    OP(FUSE_OPEN, fs_op_open, sizeof(struct fuse_open_in), sizeof(struct fuse_open_in), 0),
    OP(FUSE_CREATE, fs_op_create, sizeof(struct fuse_create_in) + 2,
       sizeof(struct fuse_create_in) + NAMEMAX, OP_WRITES),
    OP(FUSE_READ, fs_op_read, sizeof(struct fuse_read_in), sizeof(struct fuse_read_in), 0),
    OP(FUSE_WRITE, fs_op_write, sizeof(struct fuse_write_in), sizeof(struct fuse_write_in),
       OP_BULK | OP_WRITES),
    OP(FUSE_STATFS, fs_op_statfs, 0, 0, 0),
    OP(FUSE_RELEASE, fs_op_release, sizeof(struct fuse_release_in), sizeof(struct fuse_release_in),
       0),
    OP(FUSE_FSYNC, fs_op_fsync, sizeof(struct fuse_fsync_in), sizeof(struct fuse_fsync_in), 0),
    OP(FUSE_FLUSH, fs_op_flush, sizeof(struct fuse_flush_in), sizeof(struct fuse_flush_in), 0),
    OP(FUSE_SETXATTR, fs_op_setxattr, FUSE_COMPAT_SETXATTR_IN_SIZE + 2,
       FUSE_COMPAT_SETXATTR_IN_SIZE + FS_XATTR_NAME_MAX + 1 + FS_XATTR_MAX, OP_WRITES),
    OP(FUSE_GETXATTR, fs_op_getxattr, sizeof(struct fuse_getxattr_in) + 2,
       sizeof(struct fuse_getxattr_in) + FS_XATTR_NAME_MAX + 1, 0),
    OP(FUSE_LISTXATTR, fs_op_listxattr, sizeof(struct fuse_getxattr_in),
       sizeof(struct fuse_getxattr_in), 0),
    OP(FUSE_REMOVEXATTR, fs_op_removexattr, 2, FS_XATTR_NAME_MAX + 1, OP_WRITES),
    OP(FUSE_OPENDIR, fs_op_opendir, sizeof(struct fuse_open_in), sizeof(struct fuse_open_in), 0),
    OP(FUSE_READDIR, fs_op_readdir, sizeof(struct fuse_read_in), sizeof(struct fuse_read_in), 0),
    OP(FUSE_READDIRPLUS, fs_op_readdirplus, sizeof(struct fuse_read_in),
       sizeof(struct fuse_read_in), 0),
    OP(FUSE_RELEASEDIR, fs_op_releasedir, sizeof(struct fuse_release_in),
       sizeof(struct fuse_release_in), 0),
    OP(FUSE_FSYNCDIR, fs_op_fsyncdir, sizeof(struct fuse_fsync_in), sizeof(struct fuse_fsync_in),
       0),
    OP(FUSE_GETLK, fs_op_getlk, sizeof(struct fuse_lk_in), sizeof(struct fuse_lk_in), 0),
    OP(FUSE_SETLK, fs_op_setlk, sizeof(struct fuse_lk_in), sizeof(struct fuse_lk_in), 0),
    OP(FUSE_SETLKW, fs_op_setlkw, sizeof(struct fuse_lk_in), sizeof(struct fuse_lk_in), 0),
    OP(FUSE_ACCESS, fs_op_access, sizeof(struct fuse_access_in), sizeof(struct fuse_access_in), 0),
    OP(FUSE_INTERRUPT, fs_op_interrupt, sizeof(struct fuse_interrupt_in),
       sizeof(struct fuse_interrupt_in), OP_NOREPLY),
    OP(FUSE_FALLOCATE, fs_op_fallocate, sizeof(struct fuse_fallocate_in),
       sizeof(struct fuse_fallocate_in), OP_WRITES),
    OP(FUSE_LSEEK, fs_op_lseek, sizeof(struct fuse_lseek_in), sizeof(struct fuse_lseek_in), 0),
    OP(FUSE_COPY_FILE_RANGE, fs_op_copy_file_range, sizeof(struct fuse_copy_file_range_in),
       sizeof(struct fuse_copy_file_range_in), OP_WRITES),
    OP(FUSE_SYNCFS, fs_op_syncfs, sizeof(struct fuse_syncfs_in), sizeof(struct fuse_syncfs_in), 0),
    /* Known, not offered: a clean ENOSYS (the guest stops asking). */
    OP(FUSE_BMAP, fs_op_enosys, 0, FS_ARG_MAX, 0),
    OP(FUSE_IOCTL, fs_op_enosys, 0, FS_ARG_MAX, OP_BULK),
    OP(FUSE_POLL, fs_op_enosys, 0, FS_ARG_MAX, 0),
    OP(FUSE_SETUPMAPPING, fs_op_enosys, 0, FS_ARG_MAX, 0),
    OP(FUSE_REMOVEMAPPING, fs_op_enosys, 0, FS_ARG_MAX, 0),
    OP(FUSE_TMPFILE, fs_op_enosys, 0, FS_ARG_MAX, 0),
    /* No reply is expected to a NOTIFY_REPLY (we never send notifications). */
    OP(FUSE_NOTIFY_REPLY, NULL, 0, FS_ARG_MAX, OP_NOREPLY | OP_BULK),
};

#define NOPS (sizeof(ops) / sizeof(ops[0]))
_Static_assert(NOPS <= sizeof(((struct fs_stats *)0)->ops) / sizeof(atomic_uint_fast64_t),
               "a counter per opcode of the table");

const char *fs_opcode_name(uint32_t opcode);
const char *fs_opcode_name(uint32_t opcode)
{
	if (opcode < NOPS && ops[opcode].name)
		return ops[opcode].name + 5; /* without "FUSE_" */
	return "unknown";
}

/* ---- replies ---------------------------------------------------------- */

static void reply_raw(struct fs_req *r, int err, const void *a, size_t alen, const void *b,
                      size_t blen)
{
	struct fuse_out_header h = {
	    .len = (uint32_t)(sizeof(h) + alen + blen),
	    .error = err,
	    .unique = r->in.unique,
	};

	if (r->replied)
		return;
	r->replied = true;
	if (sizeof(h) + alen + blen > r->out_cap) {
		/* The guest gave less room than its own opcode's reply needs:
		 * EINVAL if the header fits, else nothing. */
		atomic_fetch_add_explicit(&r->fs->st.malformed, 1, memory_order_relaxed);
		if (r->out_cap < sizeof(h)) {
			r->written = 0;
			return;
		}
		h.len = sizeof(h);
		h.error = -EINVAL;
		alen = blen = 0;
	}
	if (h.error)
		atomic_fetch_add_explicit(&r->fs->st.errors, 1, memory_order_relaxed);
	if (h.len <= 512) { /* the usual small reply: one copy into the chain */
		uint8_t buf[512];
		memcpy(buf, &h, sizeof(h));
		if (alen)
			memcpy(buf + sizeof(h), a, alen);
		if (blen)
			memcpy(buf + sizeof(h) + alen, b, blen);
		vhu_chain_write(r->c, 0, buf, h.len);
	} else {
		vhu_chain_write(r->c, 0, &h, sizeof(h));
		if (alen)
			vhu_chain_write(r->c, sizeof(h), a, alen);
		if (blen)
			vhu_chain_write(r->c, sizeof(h) + alen, b, blen);
	}
	r->written = h.len;
}

void fs_reply_err(struct fs_req *r, int err)
{
	/* FUSE wants a negative errno; never a positive or absurd one. */
	if (err > 0 || err < -4095)
		err = -EIO;
	reply_raw(r, err, NULL, 0, NULL, 0);
}

void fs_reply(struct fs_req *r, const void *data, size_t len)
{
	reply_raw(r, 0, data, len, NULL, 0);
}

void fs_reply2(struct fs_req *r, const void *a, size_t alen, const void *b, size_t blen)
{
	reply_raw(r, 0, a, alen, b, blen);
}

void fs_reply_none(struct fs_req *r)
{
	r->replied = true;
	r->written = 0;
}

void fs_reply_len(struct fs_req *r, size_t len)
{
	struct fuse_out_header h = {
	    .len = (uint32_t)(sizeof(h) + len),
	    .error = 0,
	    .unique = r->in.unique,
	};

	if (sizeof(h) + len > r->out_cap) {
		reply_raw(r, 0, NULL, sizeof(h) + len, NULL, 0); /* too big: its refusal */
		return;
	}
	r->replied = true;
	vhu_chain_write(r->c, 0, &h, sizeof(h));
	r->written = h.len;
}

/* Slice `len` bytes starting `off` bytes into iov[0, n) into out[0, max). */
static unsigned iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len,
                          struct iovec *out, unsigned max, size_t *got)
{
	unsigned i = 0, k = 0;
	size_t done = 0;

	while (i < n && off >= iov[i].iov_len)
		off -= iov[i++].iov_len;
	for (; i < n && k < max && done < len; i++, off = 0) {
		size_t chunk = iov[i].iov_len - off;
		if (chunk > len - done)
			chunk = len - done;
		if (!chunk)
			continue;
		out[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[k].iov_len = chunk;
		done += chunk;
		k++;
	}
	*got = done;
	return k;
}

unsigned fs_reply_data_iov(struct fs_req *r, size_t len, size_t *cap)
{
	const struct vhu_chain *c = r->c;
	if (r->out_cap <= sizeof(struct fuse_out_header)) {
		*cap = 0;
		return 0;
	}
	return iov_slice(c->iov + c->out_num, c->in_num, sizeof(struct fuse_out_header), len,
	                 r->t->iov, r->t->iov_max, cap);
}

unsigned fs_bulk_iov(struct fs_req *r, size_t len)
{
	size_t got;
	if (len > r->bulk_len)
		len = r->bulk_len;
	return iov_slice(r->c->iov, r->c->out_num, r->bulk_off, len, r->t->iov, r->t->iov_max,
	                 &got);
}

/* ---- argument parsing ------------------------------------------------- */

static const char *next_string(struct fs_req *r, uint32_t skip, uint32_t max, int *err)
{
	if (skip) {
		if (skip > r->arglen) {
			*err = -EINVAL;
			return NULL;
		}
		r->argpos = skip;
	}
	const char *s = (const char *)r->arg + r->argpos;
	uint32_t left = r->arglen - r->argpos;
	const char *nul = memchr(s, 0, left);
	if (!nul) { /* no terminator inside the arguments */
		*err = -EINVAL;
		return NULL;
	}
	uint32_t len = (uint32_t)(nul - s);
	if (len == 0) {
		*err = -EINVAL;
		return NULL;
	}
	if (len >= max) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	r->argpos += len + 1;
	return s;
}

const char *fs_arg_string(struct fs_req *r, uint32_t skip, uint32_t max, int *err)
{
	return next_string(r, skip, max, err);
}

const char *fs_arg_name(struct fs_req *r, uint32_t skip, bool dots_ok, int *err)
{
	const char *s = next_string(r, skip, NAME_MAX + 1, err);
	if (!s)
		return NULL;
	/* One path component, never a way up or across. */
	if (strchr(s, '/') || (!dots_ok && (!strcmp(s, ".") || !strcmp(s, "..")))) {
		*err = -EINVAL;
		return NULL;
	}
	return s;
}

const void *fs_arg_bytes(struct fs_req *r, uint32_t len)
{
	if (len > r->arglen - r->argpos)
		return NULL;
	const void *p = r->arg + r->argpos;
	r->argpos += len;
	return p;
}

/* ---- inode / handle helpers ------------------------------------------- */

struct fs_inode *fs_req_inode(struct fs_req *r, uint64_t nodeid)
{
	struct fs_inode *i = fs_inode_get(&r->fs->inodes, nodeid);
	if (!i) {
		/* Never handed out, forgotten or guessed. */
		vhu_log(VHU_LOG_DEBUG, "vhu-fs: %s: unknown nodeid %#llx",
		        fs_opcode_name(r->in.opcode), (unsigned long long)nodeid);
		fs_reply_err(r, -ESTALE);
	}
	return i;
}

struct fs_handle *fs_req_handle(struct fs_req *r, uint64_t fh, enum fs_handle_kind kind)
{
	struct fs_handle *h = fs_handle_get(&r->fs->handles, fh, kind);
	if (!h)
		fs_reply_err(r, -EBADF);
	return h;
}

void fs_put_inode(struct fs_req *r, struct fs_inode *i)
{
	if (i)
		fs_inode_put(&r->fs->inodes, i);
}

void fs_put_handle(struct fs_req *r, struct fs_handle *h)
{
	if (h)
		fs_handle_put(&r->fs->handles, &r->fs->inodes, h);
}

/* ---- dispatch --------------------------------------------------------- */

static const struct fs_opdesc *judge(struct fs_req *r, int *err)
{
	const struct vhu_chain *c = r->c;
	const struct fs_opdesc *d;

	if (c->out_len < sizeof(r->in) ||
	    vhu_chain_read(c, 0, &r->in, sizeof(r->in)) != sizeof(r->in)) {
		*err = -EINVAL; /* not even a header: no unique to answer */
		return NULL;
	}
	if (r->in.len < sizeof(r->in) || r->in.len > c->out_len) {
		*err = -EINVAL; /* length outside the buffers it came in */
		return NULL;
	}
	if (r->in.opcode >= NOPS || !(d = &ops[r->in.opcode])->name) {
		*err = -ENOSYS;
		return NULL;
	}
	uint32_t args = r->in.len - (uint32_t)sizeof(r->in);
	if (args < d->min || (!(d->flags & OP_BULK) && args > d->max)) {
		*err = -EINVAL;
		return d;
	}
	*err = 0;
	return d;
}

static bool copy_args(struct fs_req *r, const struct fs_opdesc *d)
{
	uint32_t args = r->in.len - (uint32_t)sizeof(r->in);
	uint32_t ncopy = args;

	if (d->flags & OP_BULK) {
		ncopy = d->min;
		r->bulk_off = (uint32_t)sizeof(r->in) + ncopy;
		r->bulk_len = args - ncopy;
	}
	/* One byte more than the arguments, zeroed: a string parser can never
	 * run off the end even if it forgot the length. */
	uint8_t *dst = r->t->arg;
	if (ncopy && vhu_chain_read(r->c, sizeof(r->in), dst, ncopy) != ncopy)
		return false;
	dst[ncopy] = 0;
	r->arg = dst;
	r->arglen = ncopy;
	r->argpos = 0;
	return true;
}

int fs_handle(struct fs *fs, struct fs_thread *t, const struct vhu_chain *c, void *cookie,
              uint32_t *written)
{
	struct fs_req r = {
	    .fs = fs,
	    .t = t,
	    .c = c,
	    .cookie = cookie,
	    .out_cap = c->in_len,
	};
	int err;

	atomic_fetch_add_explicit(&fs->st.requests, 1, memory_order_relaxed);
	const struct fs_opdesc *d = judge(&r, &err);
	if (err) {
		atomic_fetch_add_explicit(&fs->st.malformed, 1, memory_order_relaxed);
		vhu_log(
		    VHU_LOG_DEBUG,
		    "vhu-fs: refusing request: opcode %u (%s), len %u in %llu readable bytes: %s",
		    r.in.opcode, fs_opcode_name(r.in.opcode), r.in.len,
		    (unsigned long long)c->out_len, strerror(-err));
		if (d && (d->flags & OP_NOREPLY))
			fs_reply_none(&r);
		else if (c->out_len >= sizeof(r.in))
			fs_reply_err(&r, err);
		*written = r.written;
		return 0;
	}
	atomic_fetch_add_explicit(&fs->st.ops[r.in.opcode], 1, memory_order_relaxed);
	if (!(d->flags & OP_PREINIT) && !atomic_load_explicit(&fs->s.up, memory_order_acquire)) {
		if (d->flags & OP_NOREPLY)
			fs_reply_none(&r);
		else
			fs_reply_err(&r, -EIO);
	} else if (!copy_args(&r, d)) {
		fs_reply_err(&r, -EINVAL);
	} else if (fs->opts.readonly && (d->flags & OP_WRITES)) {
		fs_reply_err(&r, -EROFS);
	} else if (!d->fn) {
		fs_reply_none(&r);
	} else {
		d->fn(&r);
		if (r.deferred)
			return 1;
		if (!r.replied) /* a handler that forgot to answer is a bug */
			fs_reply_err(&r, (d->flags & OP_NOREPLY) ? 0 : -EIO);
		if (d->flags & OP_NOREPLY)
			r.written = 0;
	}
	*written = r.written;
	return 0;
}

/* ---- per-thread scratch ------------------------------------------------ */

int fs_thread_init(struct fs_thread *t, unsigned iov_max)
{
	memset(t, 0, sizeof(*t));
	t->arg = malloc(FS_ARG_MAX + 1);
	t->out = malloc(FS_OUT_MAX);
	t->iov = calloc(iov_max, sizeof(*t->iov));
	t->iov_max = iov_max;
	if (!t->arg || !t->out || !t->iov) {
		fs_thread_fini(t);
		return -ENOMEM;
	}
	return 0;
}

void fs_thread_fini(struct fs_thread *t)
{
	free(t->arg);
	free(t->out);
	free(t->iov);
	memset(t, 0, sizeof(*t));
}
