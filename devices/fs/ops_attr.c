/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attributes: getattr, setattr, statfs, access, readlink.  An inode's
 * O_PATH fd serves what works on it (fstatat/fchownat/utimensat with
 * AT_EMPTY_PATH, fstatfs, readlinkat); chmod and access go through the
 * fd's /proc/self/fd name, truncation through an fd opened for writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "req.h"

#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif

static void reply_attr(struct fs_req *r, const struct stat *st)
{
	struct fuse_attr_out out = {0};
	fs_fill_attr_times(r->fs, &out);
	fs_fill_attr(r->fs, st, 0, &out.attr);
	fs_reply(r, &out, sizeof(out));
}

void fs_op_getattr(struct fs_req *r)
{
	struct stat st;
	struct fs_inode *i = fs_req_inode(r, r->in.nodeid);
	if (!i)
		return;
	/* GETATTR_FH is only a hint: the inode's own fd says the same. */
	int err = fs_stat_inode(i, &st);
	fs_put_inode(r, i);
	if (err)
		fs_reply_err(r, err);
	else
		reply_attr(r, &st);
}

static int set_mode(struct fs *fs, struct fs_inode *i, struct fs_handle *h, mode_t mode)
{
	char name[16];
	int err = fs_check_mode(fs, i->type | (mode & 07777));
	if (err)
		return err;
	if (i->type == S_IFLNK)
		return -EOPNOTSUPP; /* Linux has no symlink modes */
	if (h)
		return fchmod(h->fd, mode & 07777) < 0 ? -errno : 0;
	fs_fd_name(name, i->fd);
	return fchmodat(fs->proc_fd, name, mode & 07777, 0) < 0 ? -errno : 0;
}

static int set_size(struct fs *fs, struct fs_inode *i, struct fs_handle *h, uint64_t size)
{
	if (i->type == S_IFDIR)
		return -EISDIR;
	if (i->type != S_IFREG)
		return -EINVAL;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (h && (h->flags & O_ACCMODE) != O_RDONLY)
		return ftruncate(h->fd, (off_t)size) < 0 ? -errno : 0;
	int fd = fs_reopen(fs, i->fd, O_WRONLY);
	if (fd < 0)
		return fd;
	int err = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
	close(fd);
	return err;
}

static int ts_from(struct timespec *ts, bool set, bool now, uint64_t sec, uint32_t nsec)
{
	if (!set) {
		ts->tv_sec = 0;
		ts->tv_nsec = UTIME_OMIT;
	} else if (now) {
		ts->tv_sec = 0;
		ts->tv_nsec = UTIME_NOW;
	} else {
		if (nsec >= 1000000000u || sec > (uint64_t)INT64_MAX)
			return -EINVAL;
		ts->tv_sec = (time_t)sec;
		ts->tv_nsec = nsec;
	}
	return 0;
}

/* The kernel asked us to do what a write or truncate by an unprivileged
 * process does (HANDLE_KILLPRIV_V2): clear set-user-ID, and set-group-ID
 * with group execute.  (security.capability needs nothing: the host kernel
 * removes it on every write and truncate, whatever our capabilities.)
 * `ofd` is an inode fd or an open fd of it. */
int fs_kill_suidgid(struct fs *fs, int ofd)
{
	struct stat st;
	char name[16];
	if (fstatat(ofd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	mode_t m = st.st_mode & 07777;
	mode_t kill = S_ISUID | ((m & S_IXGRP) ? S_ISGID : 0);
	if (!S_ISREG(st.st_mode) || !(m & kill))
		return 0;
	fs_fd_name(name, ofd);
	return fchmodat(fs->proc_fd, name, m & ~kill, 0) < 0 ? -errno : 0;
}

void fs_op_setattr(struct fs_req *r)
{
	const struct fuse_setattr_in *in = FS_ARG(r, struct fuse_setattr_in);
	struct timespec ts[2];
	struct stat st;
	int err = 0;

	struct fs_inode *i = fs_req_inode(r, r->in.nodeid);
	if (!i)
		return;
	struct fs_handle *h = NULL;
	if ((in->valid & FATTR_FH) && in->valid & (FATTR_SIZE | FATTR_MODE)) {
		h = fs_req_handle(r, in->fh, FS_H_FILE);
		if (!h) {
			fs_put_inode(r, i);
			return;
		}
		if (h->inode != i) { /* a handle of another file */
			err = -EBADF;
			goto out;
		}
	}
	if (in->valid & FATTR_MODE)
		err = set_mode(r->fs, i, h, in->mode);
	if (!err && (in->valid & (FATTR_UID | FATTR_GID))) {
		uid_t uid = (in->valid & FATTR_UID) ? in->uid : (uid_t)-1;
		gid_t gid = (in->valid & FATTR_GID) ? in->gid : (gid_t)-1;
		if (fchownat(i->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			err = -errno;
	}
	if (!err && (in->valid & FATTR_SIZE)) {
		err = set_size(r->fs, i, h, in->size);
		if (!err && (in->valid & FATTR_KILL_SUIDGID))
			err = fs_kill_suidgid(r->fs, i->fd);
	}
	if (!err && (in->valid & (FATTR_ATIME | FATTR_MTIME))) {
		err = ts_from(&ts[0], in->valid & FATTR_ATIME, in->valid & FATTR_ATIME_NOW,
		              in->atime, in->atimensec);
		if (!err)
			err = ts_from(&ts[1], in->valid & FATTR_MTIME, in->valid & FATTR_MTIME_NOW,
			              in->mtime, in->mtimensec);
		if (!err && utimensat(i->fd, "", ts, AT_EMPTY_PATH) < 0)
			err = -errno;
	}
	if (!err)
		err = fs_stat_inode(i, &st);
out:
	fs_put_handle(r, h);
	fs_put_inode(r, i);
	if (err)
		fs_reply_err(r, err);
	else
		reply_attr(r, &st);
}

void fs_op_statfs(struct fs_req *r)
{
	struct statfs sf;
	struct fuse_statfs_out out = {0};
	struct fs_inode *i = fs_req_inode(r, r->in.nodeid);
	if (!i)
		return;
	int err = fstatfs(i->fd, &sf) < 0 ? -errno : 0;
	fs_put_inode(r, i);
	if (err) {
		fs_reply_err(r, err);
		return;
	}
	out.st.blocks = sf.f_blocks;
	out.st.bfree = sf.f_bfree;
	out.st.bavail = sf.f_bavail;
	out.st.files = sf.f_files;
	out.st.ffree = sf.f_ffree;
	out.st.bsize = (uint32_t)sf.f_bsize;
	out.st.namelen = (uint32_t)sf.f_namelen;
	out.st.frsize = (uint32_t)sf.f_frsize;
	fs_reply(r, &out, sizeof(out));
}

void fs_op_access(struct fs_req *r)
{
	const struct fuse_access_in *in = FS_ARG(r, struct fuse_access_in);
	struct fs_creds cr;
	char name[16];
	struct fs_inode *i = fs_req_inode(r, r->in.nodeid);
	if (!i)
		return;
	if (in->mask & ~(uint32_t)(R_OK | W_OK | X_OK)) {
		fs_put_inode(r, i);
		fs_reply_err(r, -EINVAL);
		return;
	}
	fs_fd_name(name, i->fd);
	/* AT_EACCESS: checked with the fsuid/fsgid we switch to. */
	fs_creds_enter(&cr, r->in.uid, r->in.gid);
	int err = syscall(SYS_faccessat2, r->fs->proc_fd, name, (int)in->mask, AT_EACCESS) < 0
	              ? -errno
	              : 0;
	fs_creds_leave(&cr);
	fs_put_inode(r, i);
	fs_reply_err(r, err);
}

void fs_op_readlink(struct fs_req *r)
{
	struct fs_inode *i = fs_req_inode(r, r->in.nodeid);
	if (!i)
		return;
	ssize_t n = i->type == S_IFLNK ? readlinkat(i->fd, "", (char *)r->t->out, PATH_MAX) : -1;
	int err = i->type != S_IFLNK ? -EINVAL : n < 0 ? -errno : 0;
	fs_put_inode(r, i);
	if (err)
		fs_reply_err(r, err);
	else
		fs_reply(r, r->t->out, (size_t)n);
}
