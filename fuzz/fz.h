/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the fuzz targets: a guest built from the fuzz input (memory
 * image in a memfd, one or two regions, a split ring with addresses, base,
 * features, optional inflight area and dirty log taken from the input), and
 * resource accounting (open fds, memfd mappings) so that a leak aborts.
 *
 * Ring input layout (struct fz_ring_hdr, then the memory image):
 *   flags   FZ_* bits below
 *   qlog    ring size = 1 << (qlog % 9)   (1 .. 256); packed: qlog % 256 + 1
 *   pad     bit 1: packed ring (VIRTIO_F_RING_PACKED); bit 0 is the rng
 *           target's (rate-limited device)
 *   iovmax  iovecs the consumer offers = iovmax % 64 + 1
 *   ops     bits steering push order / unpop / written lengths
 *   base    SET_VRING_BASE
 *   desc, avail, used   ring offsets = guest physical = uva - FZ_UVA
 *   inflight_off        offset in the image the inflight area is copied from
 *   log_gpa             log_guest_addr of the used ring
 * The image is rounded up to 4 KiB, at most FZ_MAX_MEM bytes, at gpa 0.
 */
#ifndef VHU_FZ_H
#define VHU_FZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "internal.h"

#define FZ_UVA     0x10000000ull
#define FZ_MAX_MEM (64u * 1024)

enum {
	FZ_EVENT_IDX = 1 << 0,
	FZ_INDIRECT = 1 << 1,
	FZ_INFLIGHT = 1 << 2,
	FZ_TWO_REGIONS = 1 << 3, /* image split in two regions (separate mappings) */
	FZ_NOTIFY_EMPTY = 1 << 4,
	FZ_DIRTY_LOG = 1 << 5,
	FZ_GAP = 1 << 6,     /* with TWO_REGIONS: a 4 KiB hole in gpa between them */
	FZ_RESTART = 1 << 7, /* stop and start again after the run (inflight recovery) */
};
#define FZ_PAD_PACKED 2

struct fz_ring_hdr {
	uint8_t flags, qlog, iovmax, ops;
	uint16_t base, pad;
	uint32_t desc, avail, used;
	uint32_t inflight_off;
	uint32_t log_gpa;
} __attribute__((packed));

struct fz_guest {
	int memfd, logfd, err_fd, call_fd, kick_fd;
	uint8_t *img; /* our mapping of the memfd */
	size_t len;
	struct vhu_mem *mem;
	struct vhu_dirty *log;
	struct vhu_inflight *inf;
	struct vhu_vring vr;
	bool vr_init;
	uint64_t features;
	struct fz_ring_hdr h;
};

/* Build the guest and start the ring.  Returns 0 when the ring runs,
 * 1 when the input is rejected (ring did not start; nothing to do),
 * -1 on a harness failure.  Always call fz_guest_fini() afterwards. */
int fz_guest_init(struct fz_guest *g, const uint8_t *data, size_t size);
void fz_guest_fini(struct fz_guest *g);

/* Every iovec lies inside one mapped region of g->mem. */
bool fz_iov_inside(const struct vhu_mem *mem, const struct iovec *iov, unsigned n);

/* Open fds of the process / mappings of memfds (our guest memory, inflight
 * areas, logs) in /proc/self/maps. */
int fz_count_fds(void);
int fz_count_memfd_maps(void);

/* abort() with a message (harness assertions: the fuzzer reports them). */
#define FZ_ASSERT(c)                                                                               \
	do {                                                                                       \
		if (!(c))                                                                          \
			fz_fail(__FILE__, __LINE__, #c);                                           \
	} while (0)
void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* Quiet library logs unless FZ_VERBOSE is set. */
void fz_quiet(void);

#endif
