/* SPDX-License-Identifier: Apache-2.0 */
/* The disk image (regular file or block device) and the listening socket. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "blk.h"

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

int blk_image_open(struct blk_dev *d, const char **what)
{
	int flags = (d->opts.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;

	d->fd = d->fd_direct = -1;
	if (!d->opts.image) { /* --null without image */
		d->capacity = d->opts.null_size / BLK_SECTOR;
		return 0;
	}
	*what = "open";
	d->fd = open(d->opts.image, flags);
	if (d->fd < 0)
		return -errno;
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
		d->fd_direct = open(d->opts.image, flags | O_DIRECT);
		if (d->fd_direct >= 0)
			dio_alignment(d);
	}
	return 0;
fail:;
	int e = errno;
	blk_image_close(d);
	return -e;
}

void blk_image_close(struct blk_dev *d)
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
