/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of the storage tests: shell commands (servers, the Ceph cluster,
 * rbd / qemu-img checks), pattern I/O over every queue of a blkt driver,
 * and the expected image those patterns leave.
 */
#ifndef ST_H
#define ST_H

#include <fcntl.h>
#include <stddef.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "blk_env.h"

#define ST_HANG_MS 120000 /* a request not answered by then is a hang */

/* Run a shell command (printf format); its exit status, -1 if it died. */
__attribute__((format(printf, 1, 2))) static inline int st_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st)) {
		fprintf(stderr, "# command died: %s\n", cmd);
		return -1;
	}
	if (WEXITSTATUS(st))
		fprintf(stderr, "# exit %d: %s\n", WEXITSTATUS(st), cmd);
	return WEXITSTATUS(st);
}

static inline const char *st_source(const char *rel)
{
	static char buf[4][1024];
	static unsigned n;
	const char *root = getenv("VHU_SOURCE_ROOT");
	char *b = buf[n++ % 4];
	snprintf(b, sizeof(buf[0]), "%s/%s", root ? root : ".", rel);
	return b;
}

static inline void st_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* A completion on any queue: queue in *q, slot index; -ETIMEDOUT after
 * limit_ms without any. */
static inline int st_wait_any(struct blkt *t, unsigned *q, int limit_ms)
{
	for (int waited = 0; waited <= limit_ms; waited += 20) {
		for (unsigned i = 0; i < t->nq; i++) {
			void *cookie;
			uint32_t len;
			if (vhuf_get_used(t->f, i, &cookie, &len) == 1) {
				struct blkt_slot *sl = cookie;
				sl->busy = false;
				sl->used_len = len;
				*q = i;
				return (int)(sl - t->slots[i]);
			}
		}
		vhuf_wait_call(t->f, 0, 20);
	}
	return -ETIMEDOUT;
}

struct st_run {
	unsigned ok, ioerr, other, mismatches, hangs;
};

/*
 * Pattern I/O on [0, bytes) in `chunk`-byte requests, every slot of every
 * queue in flight (requests spread over the queues round robin): writes of
 * blkt_pattern(off, seed), or reads checked against it.  Counts statuses and
 * mismatching reads.
 */
static inline struct st_run st_pattern(struct blkt *t, bool write, uint64_t start, uint64_t bytes,
                                       uint32_t chunk, unsigned seed)
{
	struct st_run res = {0};
	uint64_t next = start, end = start + bytes;
	uint64_t offs[BLKT_MAXQ][256];
	unsigned inflight = 0;
	for (;;) {
		for (unsigned s = 0; s < t->nslots && s < 256; s++)
			for (unsigned q = 0; q < t->nq && next < end; q++) {
				struct blkt_slot *sl = &t->slots[q][s];
				if (sl->busy)
					continue;
				uint32_t len = end - next < chunk ? (uint32_t)(end - next) : chunk;
				if (write)
					for (uint32_t i = 0; i < len; i++)
						sl->data[i] = blkt_pattern(next + i, seed);
				if (blkt_submit(t, q, s, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
				                next / 512, len) < 0) {
					res.other++;
					next = end;
					break;
				}
				offs[q][s] = next;
				next += len;
				inflight++;
			}
		if (!inflight)
			break;
		unsigned q;
		int s = st_wait_any(t, &q, ST_HANG_MS);
		if (s < 0) {
			res.hangs += inflight;
			break;
		}
		inflight--;
		struct blkt_slot *sl = &t->slots[q][s];
		uint8_t st = *sl->st;
		if (st == VIRTIO_BLK_S_OK)
			res.ok++;
		else if (st == VIRTIO_BLK_S_IOERR)
			res.ioerr++;
		else
			res.other++;
		if (!write && st == VIRTIO_BLK_S_OK) {
			uint64_t off = offs[q][s];
			uint32_t len = end - off < chunk ? (uint32_t)(end - off) : chunk;
			for (uint32_t i = 0; i < len; i++)
				if (sl->data[i] != blkt_pattern(off + i, seed)) {
					if (!res.mismatches)
						fprintf(stderr,
						        "# mismatch at byte %llu (seed %u)\n",
						        (unsigned long long)(off + i), seed);
					res.mismatches++;
					break;
				}
		}
	}
	return res;
}

/* A file of `size` bytes: blkt_pattern(seed) on [start, start + len),
 * zeroes elsewhere (what a fresh image holds after st_pattern writes). */
static inline int st_expected(const char *path, uint64_t size, uint64_t start, uint64_t len,
                              unsigned seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	uint8_t buf[65536];
	for (uint64_t off = start; off < start + len; off += sizeof(buf)) {
		size_t n = start + len - off < sizeof(buf) ? start + len - off : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = blkt_pattern(off + i, seed);
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

/* Zero [off, off + len) of a file. */
static inline int st_zero_range(const char *path, uint64_t off, uint64_t len)
{
	int fd = open(path, O_WRONLY);
	static const uint8_t z[65536];
	if (fd < 0)
		return -1;
	for (uint64_t o = off; o < off + len; o += sizeof(z)) {
		size_t n = off + len - o < sizeof(z) ? off + len - o : sizeof(z);
		if (pwrite(fd, z, n, (off_t)o) != (ssize_t)n) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

/* Discard / write-zeroes of one segment through slot 0 of queue q. */
static inline int st_dz(struct blkt *t, unsigned q, uint32_t type, uint64_t off, uint64_t len,
                        bool unmap)
{
	struct virtio_blk_discard_write_zeroes seg = {
	    .sector = off / 512,
	    .num_sectors = (uint32_t)(len / 512),
	    .flags = unmap ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0,
	};
	return blkt_io(t, q, type, 0, &seg, sizeof(seg));
}

/* The driver sets the cache mode (CONFIG_WCE): 0 = write-through. */
static inline int st_set_wce(struct blkt *t, uint8_t wce)
{
	struct vhu_config_msg m = {.offset = offsetof(struct virtio_blk_config, wce), .size = 1};
	m.region[0] = wce;
	return vhuf_request(t->f, VHU_REQ_SET_CONFIG, &m, VHU_CONFIG_HDR_SIZE + 1, NULL, 0, true,
	                    NULL);
}

/* Submit n 64 KiB writes of blkt_pattern(seed) at start, spread over the
 * queues (slot i / nq of queue i % nq), without waiting.  Returns how many
 * were submitted. */
static inline unsigned st_submit_writes(struct blkt *t, uint64_t start, unsigned n, unsigned seed)
{
	unsigned sent = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned q = i % t->nq, s = i / t->nq;
		struct blkt_slot *sl = &t->slots[q][s];
		uint64_t off = start + (uint64_t)i * 65536;
		for (uint32_t b = 0; b < 65536; b++)
			sl->data[b] = blkt_pattern(off + b, seed);
		if (blkt_submit(t, q, s, VIRTIO_BLK_T_OUT, off / 512, 65536) >= 0)
			sent++;
	}
	return sent;
}

/* Wait for n completions (any queue): their statuses. */
static inline struct st_run st_collect(struct blkt *t, unsigned n)
{
	struct st_run r = {0};
	for (unsigned i = 0; i < n; i++) {
		unsigned q;
		int s = st_wait_any(t, &q, ST_HANG_MS);
		if (s < 0) {
			r.hangs = n - i;
			break;
		}
		uint8_t st = *t->slots[q][s].st;
		r.ok += st == VIRTIO_BLK_S_OK;
		r.ioerr += st == VIRTIO_BLK_S_IOERR;
		r.other += st != VIRTIO_BLK_S_OK && st != VIRTIO_BLK_S_IOERR;
	}
	return r;
}

/* [off, off + len) reads as zeroes (64 KiB reads through slot 0 of queue 0). */
static inline bool st_all_zero(struct blkt *t, uint64_t off, uint64_t len)
{
	uint8_t *buf = malloc(65536);
	bool zero = buf != NULL;
	for (uint64_t o = off; zero && o < off + len; o += 65536) {
		zero = blkt_io(t, 0, VIRTIO_BLK_T_IN, o / 512, buf, 65536) == 0;
		for (unsigned i = 0; zero && i < 65536; i++)
			zero = buf[i] == 0;
	}
	free(buf);
	return zero;
}

static inline void st_report(const char *what, struct st_run r)
{
	fprintf(stderr, "# %s: ok %u ioerr %u other %u mismatches %u hangs %u\n", what, r.ok,
	        r.ioerr, r.other, r.mismatches, r.hangs);
}

/* The whole disk (`bytes`, nq queues): capacity and queue count in the
 * config space, pattern `seed` written in 64 KiB requests, flushed, read
 * back in 4 KiB requests and checked. */
static inline void st_fill_and_verify(struct blkt *t, uint64_t bytes, unsigned nq, unsigned seed)
{
	struct virtio_blk_config cfg;
	VT_EQ(blkt_config(t, &cfg), 0);
	VT_EQ(cfg.capacity, bytes / 512);
	VT_EQ(cfg.num_queues, nq);
	struct st_run w = st_pattern(t, true, 0, bytes, 65536, seed);
	st_report("write", w);
	VT_EQ(w.ok, bytes / 65536);
	VT_EQ(blkt_io(t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	struct st_run r = st_pattern(t, false, 0, bytes, 4096, seed);
	st_report("read", r);
	VT_EQ(r.ok, bytes / 4096);
	VT_EQ(r.mismatches, 0);
}

#define ST_REPORT(r)                                                                               \
	fprintf(stderr, "# ok %u ioerr %u other %u mismatches %u hangs %u\n", (r).ok, (r).ioerr,   \
	        (r).other, (r).mismatches, (r).hangs)

#endif
