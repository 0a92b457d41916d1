/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The disk image: which engine serves a specification, files (regular file
 * or block device), capacity changes; and the listening socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "blk.h"

static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const struct blk_engine *blk_engine_for(enum blk_spec_kind k, char *err, size_t errlen)
{
	switch (k) {
	case BLK_SPEC_FILE:
		return &blk_engine_uring;
	case BLK_SPEC_RBD:
#ifdef VHU_BLK_HAVE_RBD
		return &blk_engine_rbd;
#else
		say(err, errlen,
		    "this vhu-blk was built without the rbd engine "
		    "(install librbd-dev, then rebuild)");
		return NULL;
#endif
	case BLK_SPEC_NBD:
#ifdef VHU_BLK_HAVE_NBD
		return &blk_engine_nbd;
#else
		say(err, errlen,
		    "this vhu-blk was built without the nbd engine "
		    "(install libnbd-dev, then rebuild)");
		return NULL;
#endif
	}
	say(err, errlen, "unknown image kind");
	return NULL;
}

const char *const *blk_engine_names(void)
{
	static const char *const names[] = {
	    "file",
#ifdef VHU_BLK_HAVE_RBD
	    "rbd",
#endif
#ifdef VHU_BLK_HAVE_NBD
	    "nbd",
#endif
	    NULL,
	};
	return names;
}

int blk_image_open(struct blk_dev *d, char *err, size_t errlen)
{
	int rc;
	d->fd = d->fd_direct = -1;
	if (!d->opts.image) { /* --null without image */
		d->engine = &blk_engine_null;
		d->capacity = d->opts.null_size / BLK_SECTOR;
		return 0;
	}
	rc = blk_spec_parse(d->opts.image, &d->spec, err, errlen);
	if (rc < 0)
		return rc;
	if (d->opts.null_io) {
		if (d->spec.kind != BLK_SPEC_FILE) {
			say(err, errlen, "--null takes a file image (for its size) or none");
			return -EINVAL;
		}
		d->engine = &blk_engine_null;
		return blk_file_open(d, err, errlen);
	}
	const struct blk_engine *e = blk_engine_for(d->spec.kind, err, errlen);
	if (!e)
		return -ENOTSUP;
	rc = e->open(d, err, errlen);
	if (rc < 0)
		return rc;
	d->engine = e;
	if (!d->capacity) {
		say(err, errlen, "size (image smaller than one sector)");
		return -EINVAL;
	}
	return 0;
}

void blk_image_close(struct blk_dev *d)
{
	if (d->engine && d->engine->close)
		d->engine->close(d);
	else
		blk_file_close(d);
	d->engine = NULL;
	blk_spec_free(&d->spec);
}

void blk_dev_resized(struct blk_dev *d, uint64_t bytes)
{
	uint64_t sectors = bytes / BLK_SECTOR;
	uint64_t old = atomic_exchange(&d->lim.capacity, sectors);
	if (old == sectors)
		return;
	vhu_log(VHU_LOG_INFO, "vhu-blk: image resized: %" PRIu64 " -> %" PRIu64 " sectors", old,
	        sectors);
	pthread_mutex_lock(&d->chan_lock);
	int rc = d->chan ? vhu_channel_config_changed(d->chan) : -ENOTCONN;
	pthread_mutex_unlock(&d->chan_lock);
	if (rc < 0)
		vhu_log(VHU_LOG_WARN,
		        "vhu-blk: cannot tell the front end about the new size (%s): the "
		        "guest sees it after its next reset",
		        strerror(-rc));
}

/* O_DIRECT alignment: STATX_DIOALIGN when the kernel tells, else the logical
 * block size for block devices, else 512 (what most filesystems need). */
static void dio_alignment(struct blk_dev *d)
{
	d->dio_mem_align = d->dio_off_align = BLK_SECTOR;
#ifdef STATX_DIOALIGN
	struct statx stx;
	if (statx(d->fd_direct, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		d->dio_mem_align = stx.stx_dio_mem_align;
		d->dio_off_align = stx.stx_dio_offset_align;
		return;
	}
#endif
	int ss;
	if (d->is_blockdev && ioctl(d->fd_direct, BLKSSZGET, &ss) == 0 && ss > 0)
		d->dio_mem_align = d->dio_off_align = (uint32_t)ss;
}

int blk_file_open(struct blk_dev *d, char *err, size_t errlen)
{
	int flags = (d->opts.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	const char *path = d->spec.path, *what[1];
	struct stat st;

	d->fd = d->fd_direct = -1;
	*what = "open";
	d->fd = open(path, flags);
	if (d->fd < 0)
		goto fail;
	*what = "stat";
	if (fstat(d->fd, &st) < 0)
		goto fail;
	if (S_ISBLK(st.st_mode)) {
		uint64_t bytes;
		*what = "BLKGETSIZE64";
		if (ioctl(d->fd, BLKGETSIZE64, &bytes) < 0)
			goto fail;
		d->is_blockdev = true;
		d->capacity = bytes / BLK_SECTOR;
	} else if (S_ISREG(st.st_mode)) {
		d->capacity = (uint64_t)st.st_size / BLK_SECTOR;
	} else {
		*what = "image type (not a regular file or block device)";
		errno = EINVAL;
		goto fail;
	}
	*what = "size (image smaller than one sector)";
	if (!d->capacity) {
		errno = EINVAL;
		goto fail;
	}
	if (d->opts.null_io)
		return 0;
	if (!d->opts.no_direct) {
		/* tmpfs and some others refuse O_DIRECT: then buffered only. */
		d->fd_direct = open(path, flags | O_DIRECT);
		if (d->fd_direct >= 0)
			dio_alignment(d);
	}
	return 0;
fail:;
	int e = errno;
	say(err, errlen, "%s: %s", *what, strerror(e));
	blk_file_close(d);
	return -e;
}

void blk_file_close(struct blk_dev *d)
{
	if (d->fd_direct >= 0)
		close(d->fd_direct);
	if (d->fd >= 0)
		close(d->fd);
	d->fd = d->fd_direct = -1;
}

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

int blk_image_create_default(const char *path, uint64_t size)
{
	char dir[4096];
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	int rc = mkdir_p(dir);
	if (rc < 0)
		return rc;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		close(fd);
		unlink(path);
		return rc;
	}
	close(fd);
	return 1;
}
