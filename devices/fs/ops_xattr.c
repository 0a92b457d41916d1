/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Extended attributes (--xattr; without it the guest gets ENOSYS once and
 * stops asking).  An O_PATH fd takes no f*xattr call, and opening a FIFO or
 * device to get a real fd is out of the question, so these go through the
 * fd's name in /proc/self/fd, which is the process's working directory
 * (fs_new): the path "N" follows our own magic link to the inode itself,
 * a symlink included, never further.
 *
 * security.capability cannot be set from the guest (unless set-ID files
 * are allowed): a file capability planted in the share would give a host
 * user who runs the file privileges the guest chose.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "req.h"

/* The path of inode i's fd for the path-based xattr calls. */
static void xattr_path(const struct fs_req *r, const struct fs_inode *i, char path[64])
{
	snprintf(path, 64, "%s%d", r->fs->proc_prefix, i->fd);
}

static struct fs_inode *xattr_inode(struct fs_req *r)
{
	if (!r->fs->opts.xattr) {
		fs_reply_err(r, -ENOSYS);
		return NULL;
	}
	return fs_req_inode(r, r->in.nodeid);
}

/* Reply to a get/list: the size when the guest asked with size 0,
 * otherwise the bytes (ERANGE when they did not fit). */
static void reply_value(struct fs_req *r, ssize_t n, uint32_t size)
{
	if (n < 0) {
		fs_reply_err(r, -errno);
	} else if (size == 0) {
		struct fuse_getxattr_out out = {.size = (uint32_t)n};
		fs_reply(r, &out, sizeof(out));
	} else {
		fs_reply(r, r->t->out, (size_t)n);
	}
}

void fs_op_getxattr(struct fs_req *r)
{
	const struct fuse_getxattr_in in = *FS_ARG(r, struct fuse_getxattr_in);
	char path[64];
	int err;
	const char *name = fs_arg_string(r, sizeof(in), FS_XATTR_NAME_MAX + 1, &err);
	if (!name) {
		fs_reply_err(r, err);
		return;
	}
	struct fs_inode *i = xattr_inode(r);
	if (!i)
		return;
	uint32_t size = in.size < FS_XATTR_MAX ? in.size : FS_XATTR_MAX;
	xattr_path(r, i, path);
	ssize_t n = getxattr(path, name, size ? r->t->out : NULL, size);
	reply_value(r, n, size);
	fs_put_inode(r, i);
}

void fs_op_listxattr(struct fs_req *r)
{
	const struct fuse_getxattr_in in = *FS_ARG(r, struct fuse_getxattr_in);
	char path[64];
	struct fs_inode *i = xattr_inode(r);
	if (!i)
		return;
	uint32_t size = in.size < FS_XATTR_MAX ? in.size : FS_XATTR_MAX;
	xattr_path(r, i, path);
	ssize_t n = listxattr(path, size ? (char *)r->t->out : NULL, size);
	reply_value(r, n, size);
	fs_put_inode(r, i);
}

void fs_op_setxattr(struct fs_req *r)
{
	struct fuse_setxattr_in in = {0};
	char path[64];
	int err;

	memcpy(&in, r->arg, FUSE_COMPAT_SETXATTR_IN_SIZE);
	const char *name =
	    fs_arg_string(r, FUSE_COMPAT_SETXATTR_IN_SIZE, FS_XATTR_NAME_MAX + 1, &err);
	if (!name) {
		fs_reply_err(r, err);
		return;
	}
	const void *value = in.size <= FS_XATTR_MAX ? fs_arg_bytes(r, in.size) : NULL;
	if (!value || (in.flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE))) {
		fs_reply_err(r, in.size > FS_XATTR_MAX ? -E2BIG : -EINVAL);
		return;
	}
	if (!r->fs->opts.allow_setuid && !strcmp(name, "security.capability")) {
		vhu_log(VHU_LOG_INFO, "vhu-fs: refused setting security.capability");
		fs_reply_err(r, -EPERM);
		return;
	}
	struct fs_inode *i = xattr_inode(r);
	if (!i)
		return;
	xattr_path(r, i, path);
	err = setxattr(path, name, value, in.size, (int)in.flags) < 0 ? -errno : 0;
	fs_put_inode(r, i);
	fs_reply_err(r, err);
}

void fs_op_removexattr(struct fs_req *r)
{
	char path[64];
	int err;
	const char *name = fs_arg_string(r, 0, FS_XATTR_NAME_MAX + 1, &err);
	if (!name) {
		fs_reply_err(r, err);
		return;
	}
	struct fs_inode *i = xattr_inode(r);
	if (!i)
		return;
	xattr_path(r, i, path);
	err = removexattr(path, name) < 0 ? -errno : 0;
	fs_put_inode(r, i);
	fs_reply_err(r, err);
}
