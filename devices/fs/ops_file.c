/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Open files: open, create, read, write, release, flush, fsync, fallocate,
 * lseek, copy_file_range, syncfs.  Only regular files are ever opened: the
 * guest opens its special files itself, and opening a host device or FIFO
 * for it would hand it the host's device (or block a thread).  READ and
 * WRITE move data between the file and guest memory with one preadv/pwritev
 * on the chain's own buffers, no copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>

#include "req.h"

/* Guest open flags -> host open flags. */
static int host_flags(const struct fs *fs, uint32_t gf, int *out)
{
	int f = (int)gf & (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC | O_NONBLOCK | O_NOATIME |
	                   O_TRUNC | O_DIRECT);
	if ((f & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if (!fs->opts.allow_direct_io)
		f &= ~O_DIRECT;
	if (fs->opts.writeback) {
		/* The guest's page cache may read to fill pages it writes, and
		 * it positions appends itself. */
		if ((f & O_ACCMODE) == O_WRONLY)
			f = (f & ~O_ACCMODE) | O_RDWR;
		f &= ~O_APPEND;
	}
	*out = f | O_CLOEXEC | O_NOCTTY;
	return 0;
}

static uint32_t fopen_flags(const struct fs *fs)
{
	switch (fs->opts.cache) {
	case FS_CACHE_NEVER:
		return FOPEN_DIRECT_IO;
	case FS_CACHE_ALWAYS:
		return FOPEN_KEEP_CACHE;
	default:
		return 0;
	}
}

static int type_err(mode_t type)
{
	return type == S_IFDIR ? -EISDIR : type == S_IFLNK ? -ELOOP : -EACCES;
}

void fs_op_open(struct fs_req *r)
{
	const struct fuse_open_in *in = FS_ARG(r, struct fuse_open_in);
	struct fuse_open_out out = {0};
	int flags, err;

	struct fs_inode *i = fs_req_inode(r, r->in.nodeid);
	if (!i)
		return;
	if (i->type != S_IFREG)
		err = type_err(i->type);
	else
		err = host_flags(r->fs, in->flags, &flags);
	if (err) {
		fs_put_inode(r, i);
		fs_reply_err(r, err);
		return;
	}
	if (r->fs->opts.readonly && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))) {
		fs_put_inode(r, i);
		fs_reply_err(r, -EROFS);
		return;
	}
	int fd = fs_reopen(r->fs, i->fd, flags);
	if (fd < 0) {
		fs_put_inode(r, i);
		fs_reply_err(r, fd);
		return;
	}
	if ((in->open_flags & FUSE_OPEN_KILL_SUIDGID) && (flags & O_TRUNC))
		fs_kill_suidgid(r->fs, fd);
	int64_t fh = fs_handle_add(&r->fs->handles, &r->fs->inodes, fd, FS_H_FILE, flags, i);
	if (fh < 0) {
		fs_reply_err(r, (int)fh);
		return;
	}
	out.fh = (uint64_t)fh;
	out.open_flags = fopen_flags(r->fs);
	fs_reply(r, &out, sizeof(out));
}

/* Open `name` for CREATE: a new file as the caller, or an existing regular
 * file (never a FIFO or device, which O_CREAT alone would open). */
static int create_open(struct fs_req *r, struct fs_inode *parent, const char *name, int flags,
                       mode_t mode)
{
	struct fs_creds cr;
	fs_creds_enter(&cr, r->in.uid, r->in.gid);
	int fd = openat(parent->fd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW, mode & 07777);
	int err = fd < 0 ? -errno : 0;
	fs_creds_leave(&cr);
	if (err != -EEXIST || (flags & O_EXCL))
		return fd < 0 ? err : fd;

	struct stat st;
	int pfd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	if (fstatat(pfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = type_err(st.st_mode & S_IFMT);
	else
		err = fs_reopen(r->fs, pfd, flags);
	close(pfd);
	return err;
}

void fs_op_create(struct fs_req *r)
{
	const struct fuse_create_in *in = FS_ARG(r, struct fuse_create_in);
	struct fuse_entry_out e = {0};
	struct fuse_open_out oo = {0};
	struct stat st;
	int flags, err;
	const char *name = fs_arg_name(r, sizeof(*in), false, &err);

	if (!name || (err = host_flags(r->fs, in->flags, &flags)) < 0 ||
	    (err = fs_check_mode(r->fs, S_IFREG | (in->mode & 07777))) < 0) {
		fs_reply_err(r, err);
		return;
	}
	struct fs_inode *parent = fs_req_inode(r, r->in.nodeid);
	if (!parent)
		return;
	if (parent->type != S_IFDIR) {
		fs_put_inode(r, parent);
		fs_reply_err(r, -ENOTDIR);
		return;
	}
	int fd = create_open(r, parent, name, flags, in->mode);
	dev_t pdev = parent->dev;
	fs_put_inode(r, parent);
	if (fd < 0) {
		fs_reply_err(r, fd);
		return;
	}
	if ((in->open_flags & FUSE_OPEN_KILL_SUIDGID) && (flags & O_TRUNC))
		fs_kill_suidgid(r->fs, fd);
	/* The inode of exactly what we opened, whatever renames happen. */
	int ifd = fs_reopen(r->fs, fd, O_PATH);
	err = ifd < 0 ? ifd : fstatat(ifd, "", &st, AT_EMPTY_PATH) < 0 ? -errno : 0;
	if (err) {
		if (ifd >= 0)
			close(ifd);
		close(fd);
		fs_reply_err(r, err);
		return;
	}
	int64_t nodeid = fs_inode_add_lookup(&r->fs->inodes, ifd, &st);
	struct fs_inode *i = nodeid < 0 ? NULL : fs_inode_get(&r->fs->inodes, (uint64_t)nodeid);
	if (!i) {
		close(fd);
		fs_reply_err(r, nodeid < 0 ? (int)nodeid : -ENOMEM);
		return;
	}
	int64_t fh = fs_handle_add(&r->fs->handles, &r->fs->inodes, fd, FS_H_FILE, flags, i);
	if (fh < 0) {
		fs_inode_forget(&r->fs->inodes, (uint64_t)nodeid, 1);
		fs_reply_err(r, (int)fh);
		return;
	}
	e.nodeid = (uint64_t)nodeid;
	fs_fill_entry_times(r->fs, &e);
	fs_fill_attr(r->fs, &st, pdev, &e.attr);
	oo.fh = (uint64_t)fh;
	oo.open_flags = fopen_flags(r->fs);
	fs_reply2(r, &e, sizeof(e), &oo, sizeof(oo));
}

/* preadv/pwritev over any number of iovecs (IOV_MAX per call), until done,
 * end of file or an error.  Returns bytes or -errno (only if none moved). */
static ssize_t rw_iov(int fd, struct iovec *iov, unsigned n, off_t off, bool write)
{
	size_t done = 0;
	while (n) {
		int cnt = n > IOV_MAX ? IOV_MAX : (int)n;
		ssize_t k = write ? pwritev(fd, iov, cnt, off) : preadv(fd, iov, cnt, off);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return done ? (ssize_t)done : -errno;
		}
		if (k == 0)
			break;
		done += (size_t)k;
		off += k;
		/* Skip what moved; a short transfer goes on from the rest. */
		while (n && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n && k) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return (ssize_t)done;
}

void fs_op_read(struct fs_req *r)
{
	const struct fuse_read_in *in = FS_ARG(r, struct fuse_read_in);
	size_t cap;

	if (in->offset > (uint64_t)INT64_MAX) {
		fs_reply_err(r, -EINVAL);
		return;
	}
	struct fs_handle *h = fs_req_handle(r, in->fh, FS_H_FILE);
	if (!h)
		return;
	size_t want = in->size < FS_MAX_IO ? in->size : FS_MAX_IO;
	unsigned n = fs_reply_data_iov(r, want, &cap);
	ssize_t got = n ? rw_iov(h->fd, r->t->iov, n, (off_t)in->offset, false) : 0;
	fs_put_handle(r, h);
	if (got < 0)
		fs_reply_err(r, (int)got);
	else
		fs_reply_len(r, (size_t)got);
}

void fs_op_write(struct fs_req *r)
{
	const struct fuse_write_in *in = FS_ARG(r, struct fuse_write_in);
	struct fuse_write_out out = {0};

	if (in->size > r->bulk_len || in->size > FS_MAX_IO || in->offset > (uint64_t)INT64_MAX ||
	    in->size > (uint64_t)INT64_MAX - in->offset) {
		fs_reply_err(r, -EINVAL);
		return;
	}
	struct fs_handle *h = fs_req_handle(r, in->fh, FS_H_FILE);
	if (!h)
		return;
	unsigned n = fs_bulk_iov(r, in->size);
	ssize_t put = n ? rw_iov(h->fd, r->t->iov, n, (off_t)in->offset, true) : 0;
	if (put > 0 && (in->write_flags & FUSE_WRITE_KILL_SUIDGID))
		fs_kill_suidgid(r->fs, h->fd);
	fs_put_handle(r, h);
	if (put < 0) {
		fs_reply_err(r, (int)put);
		return;
	}
	out.size = (uint32_t)put;
	fs_reply(r, &out, sizeof(out));
}

void fs_op_release(struct fs_req *r)
{
	const struct fuse_release_in *in = FS_ARG(r, struct fuse_release_in);
	struct fs_handle *h = fs_handle_remove(&r->fs->handles, in->fh, FS_H_FILE);
	if (!h) {
		fs_reply_err(r, -EBADF);
		return;
	}
	if ((in->release_flags & FUSE_RELEASE_FLOCK_UNLOCK) && h->flocked)
		flock(h->fd, LOCK_UN);
	fs_put_handle(r, h);
	fs_reply_err(r, 0);
}

void fs_op_flush(struct fs_req *r)
{
	const struct fuse_flush_in *in = FS_ARG(r, struct fuse_flush_in);
	struct fs_handle *h = fs_req_handle(r, in->fh, FS_H_FILE);
	if (!h)
		return;
	/* What close() would do on the host (network file systems flush and
	 * report write errors there), keeping the handle open. */
	int dfd = dup(h->fd);
	int err = dfd < 0 ? -errno : close(dfd) < 0 ? -errno : 0;
	fs_put_handle(r, h);
	fs_reply_err(r, err == -EINTR ? 0 : err);
}

static void do_fsync(struct fs_req *r, enum fs_handle_kind kind)
{
	const struct fuse_fsync_in *in = FS_ARG(r, struct fuse_fsync_in);
	struct fs_handle *h = fs_req_handle(r, in->fh, kind);
	if (!h)
		return;
	int rc = (in->fsync_flags & FUSE_FSYNC_FDATASYNC) ? fdatasync(h->fd) : fsync(h->fd);
	int err = rc < 0 ? -errno : 0;
	fs_put_handle(r, h);
	fs_reply_err(r, err);
}

void fs_op_fsync(struct fs_req *r)
{
	do_fsync(r, FS_H_FILE);
}

void fs_op_fsyncdir(struct fs_req *r)
{
	do_fsync(r, FS_H_DIR);
}

void fs_op_fallocate(struct fs_req *r)
{
	const struct fuse_fallocate_in *in = FS_ARG(r, struct fuse_fallocate_in);
	const uint32_t allowed = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;

	if (in->mode & ~allowed) {
		fs_reply_err(r, -EOPNOTSUPP);
		return;
	}
	if (in->offset > (uint64_t)INT64_MAX || in->length > (uint64_t)INT64_MAX - in->offset ||
	    !in->length) {
		fs_reply_err(r, -EINVAL);
		return;
	}
	struct fs_handle *h = fs_req_handle(r, in->fh, FS_H_FILE);
	if (!h)
		return;
	int err =
	    fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length) < 0 ? -errno : 0;
	fs_put_handle(r, h);
	fs_reply_err(r, err);
}

void fs_op_lseek(struct fs_req *r)
{
	const struct fuse_lseek_in *in = FS_ARG(r, struct fuse_lseek_in);
	struct fuse_lseek_out out = {0};

	/* The guest seeks by itself but for holes and data. */
	if ((in->whence != SEEK_DATA && in->whence != SEEK_HOLE) ||
	    in->offset > (uint64_t)INT64_MAX) {
		fs_reply_err(r, -EINVAL);
		return;
	}
	struct fs_handle *h = fs_req_handle(r, in->fh, FS_H_FILE);
	if (!h)
		return;
	off_t off = lseek(h->fd, (off_t)in->offset, (int)in->whence);
	int err = off < 0 ? -errno : 0;
	fs_put_handle(r, h);
	if (err) {
		fs_reply_err(r, err);
		return;
	}
	out.offset = (uint64_t)off;
	fs_reply(r, &out, sizeof(out));
}

void fs_op_copy_file_range(struct fs_req *r)
{
	const struct fuse_copy_file_range_in *in = FS_ARG(r, struct fuse_copy_file_range_in);
	struct fuse_write_out out = {0};

	if (in->flags || in->off_in > (uint64_t)INT64_MAX || in->off_out > (uint64_t)INT64_MAX) {
		fs_reply_err(r, -EINVAL);
		return;
	}
	struct fs_handle *hi = fs_req_handle(r, in->fh_in, FS_H_FILE);
	if (!hi)
		return;
	struct fs_handle *ho = fs_req_handle(r, in->fh_out, FS_H_FILE);
	if (!ho) {
		fs_put_handle(r, hi);
		return;
	}
	int err = 0;
	ssize_t n = 0;
	if (ho->inode->nodeid != in->nodeid_out || hi->inode->nodeid != r->in.nodeid) {
		err = -EBADF;
	} else {
		loff_t oi = (loff_t)in->off_in, oo = (loff_t)in->off_out;
		/* One reply carries a 32-bit size. */
		size_t len = in->len < UINT32_MAX ? (size_t)in->len : UINT32_MAX & ~4095u;
		n = copy_file_range(hi->fd, &oi, ho->fd, &oo, len, 0);
		if (n < 0)
			err = -errno;
	}
	fs_put_handle(r, ho);
	fs_put_handle(r, hi);
	if (err) {
		fs_reply_err(r, err);
		return;
	}
	out.size = (uint32_t)n;
	fs_reply(r, &out, sizeof(out));
}

void fs_op_syncfs(struct fs_req *r)
{
	/* syncfs needs an fd that is not O_PATH: the root directory. */
	int fd = openat(r->fs->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = fd < 0 ? -errno : syncfs(fd) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	fs_reply_err(r, err);
}
