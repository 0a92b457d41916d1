/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Name operations.  Every name is one path component checked by
 * fs_arg_name() (no '/', no "." or ".." where it would create or remove),
 * resolved relative to its parent's O_PATH fd, never following a symlink:
 * lookups open with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_SYMLINKS), the other calls use the *at() forms without
 * following.  New files are created with the caller's fsuid/fsgid.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "req.h"

static atomic_bool no_openat2;

/* O_PATH fd of `name` (one component) under dirfd, not following it. */
static int open_beneath(int dirfd, const char *name)
{
	if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
		struct open_how how = {
		    .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
		};
		int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS)
			return -errno;
		/* Before Linux 5.6: the name is one checked component, so
		 * openat with O_NOFOLLOW cannot leave dirfd either. */
		atomic_store(&no_openat2, true);
	}
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static bool is_root(const struct fs *fs, const struct stat *st)
{
	return st->st_dev == fs->root_dev && st->st_ino == fs->root_ino;
}

/* ".." of a directory below the root: open it and prove, walking up, that
 * it is the root or lies under it (the guest asks only with export
 * support, which we do not offer; a hostile guest may ask anyway). */
static int open_parent(struct fs *fs, struct fs_inode *dir)
{
	struct stat st, up;
	int fd = openat(dir->fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int cur = dup(fd);
	if (cur < 0) {
		close(fd);
		return -errno;
	}
	for (unsigned depth = 0; depth < 4096; depth++) {
		if (fstat(cur, &st) < 0)
			break;
		if (is_root(fs, &st)) {
			close(cur);
			return fd;
		}
		int next = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(cur);
		if (next < 0 || fstat(next, &up) < 0) {
			if (next >= 0)
				close(next);
			close(fd);
			return -EACCES;
		}
		if (up.st_dev == st.st_dev && up.st_ino == st.st_ino) {
			close(next); /* reached "/" without meeting the root */
			close(fd);
			return -EACCES;
		}
		cur = next;
	}
	close(cur);
	close(fd);
	return -EACCES;
}

int fs_do_lookup(struct fs *fs, struct fs_inode *parent, const char *name, struct fuse_entry_out *e)
{
	struct stat st;
	int fd;

	if (parent->type != S_IFDIR)
		return -ENOTDIR;
	if (!strcmp(name, "..") && parent->nodeid != FUSE_ROOT_ID)
		fd = open_parent(fs, parent);
	else if (!strcmp(name, ".") || !strcmp(name, ".."))
		fd = open_beneath(parent->fd, "."); /* ".." at the root is the root */
	else
		fd = open_beneath(parent->fd, name);
	if (fd < 0)
		return fd == -EXDEV || fd == -ELOOP ? -EACCES : fd;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	int64_t nodeid = fs_inode_add_lookup(&fs->inodes, fd, &st);
	if (nodeid < 0)
		return (int)nodeid;
	memset(e, 0, sizeof(*e));
	e->nodeid = (uint64_t)nodeid;
	fs_fill_entry_times(fs, e);
	fs_fill_attr(fs, &st, parent->dev, &e->attr);
	return 0;
}

/* Reply to a lookup-like request: the entry, or a cached negative entry
 * for ENOENT where the cache policy allows it. */
static void reply_entry(struct fs_req *r, int err, const struct fuse_entry_out *e, bool negative)
{
	if (err == -ENOENT && negative && r->fs->opts.cache != FS_CACHE_NEVER) {
		struct fuse_entry_out neg = {0};
		fs_fill_entry_times(r->fs, &neg);
		neg.attr_valid = 0;
		fs_reply(r, &neg, sizeof(neg));
	} else if (err) {
		fs_reply_err(r, err);
	} else {
		fs_reply(r, e, sizeof(*e));
	}
}

void fs_op_lookup(struct fs_req *r)
{
	struct fuse_entry_out e;
	int err;
	const char *name = fs_arg_name(r, 0, true, &err);
	if (!name) {
		fs_reply_err(r, err);
		return;
	}
	struct fs_inode *parent = fs_req_inode(r, r->in.nodeid);
	if (!parent)
		return;
	err = fs_do_lookup(r->fs, parent, name, &e);
	fs_put_inode(r, parent);
	reply_entry(r, err, &e, true);
}

void fs_op_forget(struct fs_req *r)
{
	const struct fuse_forget_in *in = FS_ARG(r, struct fuse_forget_in);
	atomic_fetch_add_explicit(&r->fs->st.forgets, 1, memory_order_relaxed);
	fs_inode_forget(&r->fs->inodes, r->in.nodeid, in->nlookup);
	fs_reply_none(r);
}

void fs_op_batch_forget(struct fs_req *r)
{
	const struct fuse_batch_forget_in *in = FS_ARG(r, struct fuse_batch_forget_in);
	uint32_t room = (r->arglen - (uint32_t)sizeof(*in)) / sizeof(struct fuse_forget_one);
	if (in->count > room) {
		atomic_fetch_add_explicit(&r->fs->st.malformed, 1, memory_order_relaxed);
		fs_reply_none(r); /* no reply exists to say so */
		return;
	}
	const struct fuse_forget_one *one = (const void *)(r->arg + sizeof(*in));
	for (uint32_t k = 0; k < in->count; k++) {
		struct fuse_forget_one f;
		memcpy(&f, &one[k], sizeof(f));
		fs_inode_forget(&r->fs->inodes, f.nodeid, f.nlookup);
	}
	atomic_fetch_add_explicit(&r->fs->st.forgets, in->count, memory_order_relaxed);
	fs_reply_none(r);
}

/* After creating `name` in `parent`: enter it and reply with the entry. */
static void created(struct fs_req *r, struct fs_inode *parent, const char *name, int err)
{
	struct fuse_entry_out e;
	if (!err)
		err = fs_do_lookup(r->fs, parent, name, &e);
	reply_entry(r, err, &e, false);
}

/* Parent directory of a create/remove request, or NULL after a reply. */
static struct fs_inode *dir_inode(struct fs_req *r, uint64_t nodeid)
{
	struct fs_inode *d = fs_req_inode(r, nodeid);
	if (d && d->type != S_IFDIR) {
		fs_put_inode(r, d);
		fs_reply_err(r, -ENOTDIR);
		return NULL;
	}
	return d;
}

/* Make `name` in directory r->in.nodeid as the caller with make(), then
 * enter it and reply with the entry. */
static void create_as_caller(struct fs_req *r, const char *name,
                             int (*make)(int dirfd, const char *name, const void *arg),
                             const void *arg)
{
	struct fs_creds cr;
	struct fs_inode *parent = dir_inode(r, r->in.nodeid);
	if (!parent)
		return;
	fs_creds_enter(&cr, r->in.uid, r->in.gid);
	int err = make(parent->fd, name, arg);
	fs_creds_leave(&cr);
	created(r, parent, name, err);
	fs_put_inode(r, parent);
}

static int make_symlink(int dirfd, const char *name, const void *target)
{
	return symlinkat(target, dirfd, name) < 0 ? -errno : 0;
}

static int make_node(int dirfd, const char *name, const void *mode)
{
	return mknodat(dirfd, name, *(const mode_t *)mode, 0) < 0 ? -errno : 0;
}

static int make_dir(int dirfd, const char *name, const void *mode)
{
	return mkdirat(dirfd, name, *(const mode_t *)mode) < 0 ? -errno : 0;
}

void fs_op_symlink(struct fs_req *r)
{
	int err;
	const char *name = fs_arg_name(r, 0, false, &err);
	/* The target is data for the guest's own resolution: any bytes. */
	const char *target = name ? fs_arg_string(r, 0, PATH_MAX, &err) : NULL;
	if (!target)
		fs_reply_err(r, err);
	else
		create_as_caller(r, name, make_symlink, target);
}

void fs_op_mknod(struct fs_req *r)
{
	const struct fuse_mknod_in *in = FS_ARG(r, struct fuse_mknod_in);
	int err;
	const char *name = fs_arg_name(r, sizeof(*in), false, &err);
	if (!name) {
		fs_reply_err(r, err);
		return;
	}
	/* No device nodes, ever (the class of CVE-2020-35517): a guest that
	 * makes one could open the host device through us, or leave it for
	 * host users.  Overlayfs whiteouts (0:0) are refused too. */
	mode_t type = in->mode & S_IFMT;
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK) {
		vhu_log(VHU_LOG_INFO, "vhu-fs: refused mknod of type %#o", type);
		fs_reply_err(r, -EPERM);
		return;
	}
	mode_t mode = in->mode & (S_IFMT | 07777);
	if ((err = fs_check_mode(r->fs, mode)) < 0)
		fs_reply_err(r, err);
	else
		create_as_caller(r, name, make_node, &mode);
}

void fs_op_mkdir(struct fs_req *r)
{
	const struct fuse_mkdir_in *in = FS_ARG(r, struct fuse_mkdir_in);
	int err;
	const char *name = fs_arg_name(r, sizeof(*in), false, &err);
	mode_t mode = in->mode & 07777;
	if (!name || (err = fs_check_mode(r->fs, S_IFDIR | mode)) < 0)
		fs_reply_err(r, err);
	else
		create_as_caller(r, name, make_dir, &mode);
}

static void remove_entry(struct fs_req *r, int flags)
{
	int err;
	const char *name = fs_arg_name(r, 0, false, &err);
	if (!name) {
		fs_reply_err(r, err);
		return;
	}
	struct fs_inode *parent = dir_inode(r, r->in.nodeid);
	if (!parent)
		return;
	err = unlinkat(parent->fd, name, flags) < 0 ? -errno : 0;
	fs_put_inode(r, parent);
	fs_reply_err(r, err);
}

void fs_op_unlink(struct fs_req *r)
{
	remove_entry(r, 0);
}

void fs_op_rmdir(struct fs_req *r)
{
	remove_entry(r, AT_REMOVEDIR);
}

static void do_rename(struct fs_req *r, uint64_t newdir, uint32_t flags, uint32_t skip)
{
	int err;
	const char *oldname = fs_arg_name(r, skip, false, &err);
	const char *newname = oldname ? fs_arg_name(r, 0, false, &err) : NULL;
	if (!newname) {
		fs_reply_err(r, err);
		return;
	}
	/* RENAME_WHITEOUT leaves a 0:0 character device: refused as mknod. */
	if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fs_reply_err(r, -EINVAL);
		return;
	}
	struct fs_inode *od = dir_inode(r, r->in.nodeid);
	if (!od)
		return;
	struct fs_inode *nd = dir_inode(r, newdir);
	if (!nd) {
		fs_put_inode(r, od);
		return;
	}
	err = (int)syscall(SYS_renameat2, od->fd, oldname, nd->fd, newname, flags) < 0 ? -errno : 0;
	fs_put_inode(r, nd);
	fs_put_inode(r, od);
	fs_reply_err(r, err);
}

void fs_op_rename(struct fs_req *r)
{
	const struct fuse_rename_in *in = FS_ARG(r, struct fuse_rename_in);
	do_rename(r, in->newdir, 0, sizeof(*in));
}

void fs_op_rename2(struct fs_req *r)
{
	const struct fuse_rename2_in *in = FS_ARG(r, struct fuse_rename2_in);
	do_rename(r, in->newdir, in->flags, sizeof(*in));
}

void fs_op_link(struct fs_req *r)
{
	const struct fuse_link_in *in = FS_ARG(r, struct fuse_link_in);
	char src[16];
	int err;
	const char *name = fs_arg_name(r, sizeof(*in), false, &err);
	if (!name) {
		fs_reply_err(r, err);
		return;
	}
	/* The source is an inode the guest looked up, so under the root. */
	struct fs_inode *old = fs_req_inode(r, in->oldnodeid);
	if (!old)
		return;
	struct fs_inode *parent = old->type == S_IFDIR ? NULL : dir_inode(r, r->in.nodeid);
	if (old->type == S_IFDIR)
		fs_reply_err(r, -EPERM);
	if (parent) {
		fs_fd_name(src, old->fd);
		/* Through /proc/self/fd: linkat(AT_EMPTY_PATH) would need
		 * CAP_DAC_READ_SEARCH.  The magic link lands on the inode
		 * itself, a symlink included, never on a symlink's target. */
		err = linkat(r->fs->proc_fd, src, parent->fd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno
		                                                                           : 0;
		created(r, parent, name, err);
		fs_put_inode(r, parent);
	}
	fs_put_inode(r, old);
}
