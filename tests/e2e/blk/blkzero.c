/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest helper for the vhu-blk end-to-end tests (linked statically: the
 * initramfs has no libc).  busybox has blkdiscard but nothing that issues
 * write-zeroes:
 *   vhu-e2e-blkzero zero  DEV OFFSET LEN   BLKZEROOUT (WRITE_ZEROES, no unmap)
 *   vhu-e2e-blkzero punch DEV OFFSET LEN   fallocate(PUNCH_HOLE) (WRITE_ZEROES + unmap)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s zero|punch DEV OFFSET LEN\n", argv[0]);
		return 2;
	}
	uint64_t range[2] = {strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0)};
	int fd = open(argv[2], O_RDWR);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	int rc;
	if (!strcmp(argv[1], "zero"))
		rc = ioctl(fd, BLKZEROOUT, range);
	else if (!strcmp(argv[1], "punch"))
		rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)range[0],
		               (off_t)range[1]);
	else {
		fprintf(stderr, "unknown mode %s\n", argv[1]);
		return 2;
	}
	if (rc < 0) {
		perror(argv[1]);
		return 1;
	}
	close(fd);
	return 0;
}
