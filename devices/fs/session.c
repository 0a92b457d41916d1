/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE session: INIT (version and capability negotiation), DESTROY,
 * the server object, and the cache policy the options choose.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "req.h"

/* What we use when the guest offers it (FUSE_INIT_EXT flags2 unused). */
static uint64_t wanted_flags(const struct fs *fs)
{
	uint64_t f = FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | FUSE_ATOMIC_O_TRUNC |
	             FUSE_BIG_WRITES | FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS |
	             FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_MAX_PAGES |
	             FUSE_HANDLE_KILLPRIV_V2;

	if (fs->opts.cache != FS_CACHE_NEVER)
		f |= FUSE_AUTO_INVAL_DATA;
	if (fs->opts.cache == FS_CACHE_ALWAYS)
		f |= FUSE_CACHE_SYMLINKS;
	if (fs->opts.writeback)
		f |= FUSE_WRITEBACK_CACHE;
	if (fs->opts.announce_submounts)
		f |= FUSE_SUBMOUNTS;
	return f;
}

/* A new session: whatever the last one left is dropped (a guest that
 * rebooted without unmounting sends INIT again). */
static void session_clear(struct fs *fs)
{
	fs_handles_release_all(&fs->handles, &fs->inodes);
	fs_inodes_forget_all(&fs->inodes);
}

void fs_op_init(struct fs_req *r)
{
	struct fs *fs = r->fs;
	struct fuse_init_in in = {0};
	struct fuse_init_out out = {0};

	memcpy(&in, r->arg, r->arglen < sizeof(in) ? r->arglen : sizeof(in));
	out.major = FUSE_KERNEL_VERSION;
	out.minor = FUSE_KERNEL_MINOR_VERSION;
	if (in.major < FUSE_KERNEL_VERSION) {
		vhu_log(VHU_LOG_ERROR, "vhu-fs: guest speaks FUSE %u.%u, need 7.%u or later",
		        in.major, in.minor, FS_MIN_MINOR);
		fs_reply_err(r, -EPROTO);
		return;
	}
	if (in.major > FUSE_KERNEL_VERSION) {
		/* The protocol: answer with our major, the guest retries. */
		fs_reply(r, &out, FUSE_COMPAT_INIT_OUT_SIZE);
		return;
	}
	if (in.minor < FS_MIN_MINOR || r->arglen < 16) {
		vhu_log(VHU_LOG_ERROR, "vhu-fs: guest speaks FUSE 7.%u, need 7.%u or later",
		        in.minor, FS_MIN_MINOR);
		fs_reply_err(r, -EPROTO);
		return;
	}

	pthread_mutex_lock(&fs->init_lock);
	if (atomic_load(&fs->s.up))
		vhu_log(VHU_LOG_INFO, "vhu-fs: INIT again without DESTROY: new session");
	atomic_store(&fs->s.up, false);
	session_clear(fs);

	uint64_t offered = in.flags;
	if (in.minor >= 36 && (in.flags & FUSE_INIT_EXT) && r->arglen >= sizeof(in))
		offered |= (uint64_t)in.flags2 << 32;
	uint64_t flags = offered & wanted_flags(fs);

	fs->s.minor = in.minor < FUSE_KERNEL_MINOR_VERSION ? in.minor : FUSE_KERNEL_MINOR_VERSION;
	fs->s.flags = flags;
	fs->s.max_write = (flags & FUSE_MAX_PAGES) ? FS_MAX_IO : 32u * 4096u;
	fs->s.max_readdir = FS_MAX_IO;

	out.minor = fs->s.minor;
	out.max_readahead = in.max_readahead;
	out.flags = (uint32_t)flags;
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = fs->s.max_write;
	out.time_gran = 1;
	out.max_pages = (flags & FUSE_MAX_PAGES) ? FS_MAX_PAGES : 0;
	atomic_store_explicit(&fs->s.up, true, memory_order_release);
	pthread_mutex_unlock(&fs->init_lock);

	vhu_log(VHU_LOG_INFO, "vhu-fs: FUSE session 7.%u (guest 7.%u), flags %#llx, max_write %u",
	        fs->s.minor, in.minor, (unsigned long long)flags, out.max_write);
	fs_reply(r, &out, sizeof(out));
}

void fs_op_destroy(struct fs_req *r)
{
	struct fs *fs = r->fs;

	pthread_mutex_lock(&fs->init_lock);
	atomic_store(&fs->s.up, false);
	fs_locks_cancel(fs, true);
	session_clear(fs);
	pthread_mutex_unlock(&fs->init_lock);
	vhu_log(VHU_LOG_INFO, "vhu-fs: FUSE session ended (DESTROY)");
	fs_reply(r, NULL, 0);
}

void fs_op_interrupt(struct fs_req *r)
{
	/* virtio-fs guests do not send it; the requests it could name finish
	 * by themselves (blocking locks poll, see lock.c). */
	fs_reply_none(r);
}

/* ---- attributes and cache policy -------------------------------------- */

static uint64_t cache_seconds(const struct fs *fs)
{
	switch (fs->opts.cache) {
	case FS_CACHE_NEVER:
		return 0;
	case FS_CACHE_ALWAYS:
		return 86400;
	default:
		return 1;
	}
}

void fs_fill_entry_times(const struct fs *fs, struct fuse_entry_out *e)
{
	e->entry_valid = e->attr_valid = cache_seconds(fs);
	e->entry_valid_nsec = e->attr_valid_nsec = 0;
}

void fs_fill_attr_times(const struct fs *fs, struct fuse_attr_out *a)
{
	a->attr_valid = cache_seconds(fs);
	a->attr_valid_nsec = 0;
}

void fs_fill_attr(const struct fs *fs, const struct stat *st, dev_t parent_dev, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
	/* A directory on another file system than its parent: the guest
	 * gives it its own superblock (and st_dev). */
	if (fs->opts.announce_submounts && (fs->s.flags & FUSE_SUBMOUNTS) && parent_dev &&
	    st->st_dev != parent_dev && S_ISDIR(st->st_mode))
		a->flags |= FUSE_ATTR_SUBMOUNT;
}

int fs_stat_inode(const struct fs_inode *i, struct stat *st)
{
	if (fstatat(i->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

void fs_fd_name(char buf[16], int fd)
{
	snprintf(buf, 16, "%d", fd);
}

int fs_reopen(struct fs *fs, int fd, int flags)
{
	char name[16];
	fs_fd_name(name, fd);
	/* Our own fd's magic link, on purpose: an O_PATH fd cannot be read. */
	int nfd = openat(fs->proc_fd, name, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	return nfd < 0 ? -errno : nfd;
}

int fs_check_mode(const struct fs *fs, mode_t mode)
{
	if (fs->opts.allow_setuid)
		return 0;
	/* A set-ID program the guest planted would run with the owner's
	 * (or group's) rights on the host.  Directories keep set-group-ID:
	 * it only decides the group of what is created in them. */
	if ((mode & S_ISUID) || ((mode & S_ISGID) && !S_ISDIR(mode)))
		return -EPERM;
	return 0;
}

/* ---- the server --------------------------------------------------------- */

static uint64_t max_inodes(void)
{
	struct rlimit rl;
	/* Each inode holds an fd; keep room for handles and the rest. */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1u << 20;
	return rl.rlim_cur > 256 ? (rl.rlim_cur - 128) * 3 / 4 : 64;
}

int fs_new(struct fs **out, const struct fs_opts *o, int root_fd, int proc_fd,
           fs_complete_fn complete, void *opaque)
{
	struct stat st;
	struct fs *fs = calloc(1, sizeof(*fs));
	int err;

	if (!fs || fstat(root_fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		err = fs ? -ENOTDIR : -ENOMEM;
		free(fs);
		close(root_fd);
		close(proc_fd);
		return err;
	}
	fs->opts = *o;
	fs->root_fd = root_fd;
	fs->proc_fd = proc_fd;
	fs->proc_prefix = "";
	fs->root_dev = st.st_dev;
	fs->root_ino = st.st_ino;
	fs->complete = complete;
	fs->complete_opaque = opaque;
	/* Paths "N" name our fd N (ops_xattr.c). */
	if (fchdir(proc_fd) < 0) {
		err = -errno;
		free(fs);
		close(root_fd);
		close(proc_fd);
		return err;
	}
	pthread_mutex_init(&fs->init_lock, NULL);
	err = fs_inodes_init(&fs->inodes, root_fd, max_inodes());
	if (err < 0) {
		close(root_fd);
		close(proc_fd);
		free(fs);
		return err;
	}
	err = fs_handles_init(&fs->handles);
	if (err == 0)
		err = fs_locks_new(fs);
	if (err < 0) {
		fs_free(fs);
		return err;
	}
	*out = fs;
	return 0;
}

void fs_reset(struct fs *fs)
{
	pthread_mutex_lock(&fs->init_lock);
	atomic_store(&fs->s.up, false);
	fs_locks_cancel(fs, false);
	session_clear(fs);
	pthread_mutex_unlock(&fs->init_lock);
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs_locks_free(fs);
	fs_handles_fini(&fs->handles, &fs->inodes);
	fs_inodes_fini(&fs->inodes);
	if (fs->proc_fd >= 0)
		close(fs->proc_fd);
	pthread_mutex_destroy(&fs->init_lock);
	free(fs);
}
