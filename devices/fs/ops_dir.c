/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Directories: opendir, readdir, readdirplus, releasedir.  The guest's
 * readdir offset is the host's d_off cookie of the next entry; a handle
 * remembers where its fd stands so that a sequential listing costs one
 * getdents64 per reply and no lseek.  READDIRPLUS looks every entry up
 * (one lookup count each, as the guest expects) only once its room in the
 * reply is certain.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "req.h"

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

void fs_op_opendir(struct fs_req *r)
{
	struct fuse_open_out out = {0};
	struct fs_inode *i = fs_req_inode(r, r->in.nodeid);
	if (!i)
		return;
	if (i->type != S_IFDIR) {
		fs_put_inode(r, i);
		fs_reply_err(r, -ENOTDIR);
		return;
	}
	int fd = openat(i->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;
		fs_put_inode(r, i);
		fs_reply_err(r, err);
		return;
	}
	int64_t fh = fs_handle_add(&r->fs->handles, &r->fs->inodes, fd, FS_H_DIR, O_RDONLY, i);
	if (fh < 0) {
		fs_reply_err(r, (int)fh);
		return;
	}
	out.fh = (uint64_t)fh;
	if (r->fs->opts.cache == FS_CACHE_ALWAYS)
		out.open_flags = FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;
	fs_reply(r, &out, sizeof(out));
}

void fs_op_releasedir(struct fs_req *r)
{
	const struct fuse_release_in *in = FS_ARG(r, struct fuse_release_in);
	struct fs_handle *h = fs_handle_remove(&r->fs->handles, in->fh, FS_H_DIR);
	if (!h) {
		fs_reply_err(r, -EBADF);
		return;
	}
	fs_put_handle(r, h);
	fs_reply_err(r, 0);
}

static size_t dirent_size(size_t namelen, bool plus)
{
	size_t base = plus ? offsetof(struct fuse_direntplus, dirent.name)
	                   : offsetof(struct fuse_dirent, name);
	return FUSE_DIRENT_ALIGN(base + namelen);
}

/* Append one entry at out + used (room checked by the caller). */
static size_t put_entry(struct fs_req *r, struct fs_handle *h, uint8_t *p,
                        const struct linux_dirent64 *d, size_t namelen, bool plus, int *err)
{
	struct fuse_dirent *de;
	size_t sz = dirent_size(namelen, plus);

	memset(p, 0, sz);
	if (plus) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)p;
		bool dots = !strcmp(d->d_name, ".") || !strcmp(d->d_name, "..");
		/* "." and "..": no entry (nodeid 0), the guest skips them. */
		if (!dots) {
			*err = fs_do_lookup(r->fs, h->inode, d->d_name, &dp->entry_out);
			if (*err)
				return 0; /* gone meanwhile: leave it out */
		}
		de = &dp->dirent;
	} else {
		de = (struct fuse_dirent *)p;
	}
	de->ino = d->d_ino;
	de->off = (uint64_t)d->d_off;
	de->namelen = (uint32_t)namelen;
	de->type = d->d_type;
	memcpy(de->name, d->d_name, namelen);
	return sz;
}

static void do_readdir(struct fs_req *r, bool plus)
{
	const struct fuse_read_in in = *FS_ARG(r, struct fuse_read_in);
	/* The argument buffer is free now: it takes the getdents64 output. */
	uint8_t *dbuf = r->t->arg;
	uint8_t *out = r->t->out;
	size_t used = 0, room = in.size;
	int err = 0;

	if (room > r->fs->s.max_readdir)
		room = r->fs->s.max_readdir;
	if (r->out_cap < sizeof(struct fuse_out_header))
		room = 0; /* the reply fails for want of room anyway */
	else if (room > r->out_cap - sizeof(struct fuse_out_header))
		room = r->out_cap - sizeof(struct fuse_out_header);
	struct fs_handle *h = fs_req_handle(r, in.fh, FS_H_DIR);
	if (!h)
		return;
	pthread_mutex_lock(&h->dir_lock);
	if ((!h->dir_pos_valid || h->dir_pos != (int64_t)in.offset) &&
	    lseek(h->fd, (off_t)in.offset, SEEK_SET) < 0) {
		err = -errno;
		goto out;
	}
	h->dir_pos = (int64_t)in.offset;
	h->dir_pos_valid = true;
	for (bool full = false; !full;) {
		/* Ask for about what fits: names average well under 32 bytes. */
		size_t want = room - used < 4096 ? 4096 : FS_ARG_MAX;
		long n = syscall(SYS_getdents64, h->fd, dbuf, want);
		if (n < 0) {
			if (!used)
				err = -errno;
			h->dir_pos_valid = false;
			break;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			const struct linux_dirent64 *d = (const void *)(dbuf + off);
			size_t namelen = strnlen(d->d_name, d->d_reclen);
			if (used + dirent_size(namelen, plus) > room) {
				/* The fd read past what we send: seek next time. */
				h->dir_pos_valid = false;
				full = true;
				break;
			}
			int lerr = 0;
			used += put_entry(r, h, out + used, d, namelen, plus, &lerr);
			if (lerr == -ENFILE || lerr == -ENOMEM) {
				h->dir_pos_valid = false;
				full = true;
				if (!used)
					err = lerr;
				break;
			}
			h->dir_pos = d->d_off;
			off += d->d_reclen;
		}
	}
out:
	pthread_mutex_unlock(&h->dir_lock);
	fs_put_handle(r, h);
	if (err)
		fs_reply_err(r, err);
	else
		fs_reply(r, out, used);
}

void fs_op_readdir(struct fs_req *r)
{
	do_readdir(r, false);
}

void fs_op_readdirplus(struct fs_req *r)
{
	do_readdir(r, true);
}
