/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the vhu-blk tests: run the real vhu-blk binary as a child
 * process and drive it as a virtio-blk guest driver through libvhu-frontend.
 */
#ifndef BLKT_H
#define BLKT_H

#include <linux/virtio_blk.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vhu/frontend.h"

#define BLKT_MAXQ       8
#define BLKT_TIMEOUT_MS 10000

/* A scratch directory with paths the tests use. */
struct blkt_dir {
	char path[64];
	char sock[128];
	char img[128];
	char out[128]; /* child's stdout */
	char err[128]; /* child's stderr */
};
int blkt_dir_make(struct blkt_dir *d);
void blkt_dir_remove(struct blkt_dir *d);

/* Path of the vhu-blk binary (VHU_BUILD_ROOT/devices/blk/vhu-blk). */
const char *blkt_binary(void);

/* Create an image of `size` bytes filled by blkt_pattern(seed 0) unless zero. */
int blkt_image_create(const char *path, uint64_t size, bool fill);
/* Deterministic content of byte `off` for a write generation `seed`. */
static inline uint8_t blkt_pattern(uint64_t off, unsigned seed)
{
	uint64_t x = (off / 8) * 0x9e3779b97f4a7c15ull + seed * 0x632be59bd9b4e019ull;
	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (off % 8)));
}

/* Spawn vhu-blk with argv (NULL-terminated, without argv[0]); stdout/stderr
 * to d->out / d->err.  `keep_fd` (or -1) is passed through as fd 3. */
pid_t blkt_spawn(const struct blkt_dir *d, const char *const *args, int keep_fd);
/* Wait up to timeout_ms for pid to exit; returns the exit code, 128+signal,
 * or -1 on timeout (the child is then killed). */
int blkt_wait_exit(pid_t pid, int timeout_ms);
/* Threads of pid whose name (comm) starts with prefix; 0 if pid is gone. */
unsigned blkt_count_threads(pid_t pid, const char *prefix);
/* Run to completion (help, errors): exit code. */
int blkt_run(const struct blkt_dir *d, const char *const *args);
/* Whole file into a static buffer (NUL terminated, truncated at 64 KiB). */
const char *blkt_slurp(const char *path);
/* Wait until a unix socket file exists at path. */
bool blkt_wait_socket(const char *path, int timeout_ms);

/* ---- driver side ---- */

struct blkt_slot {
	uint64_t hdr_gpa, data_gpa, st_gpa;
	struct virtio_blk_outhdr *hdr;
	uint8_t *data;
	uint8_t *st;
	bool busy;
	uint32_t used_len;
};

struct blkt {
	struct vhuf *f;
	unsigned nq, qsize, nslots;
	uint32_t data_cap;
	struct blkt_slot *slots[BLKT_MAXQ];
};

/* Connect to sock, negotiate everything vhu-blk offers (and protocol
 * features pf), set up nq rings of qsize with nslots request slots of
 * data_cap bytes each.  mem_size 0 = 64 MiB. */
int blkt_open(struct blkt *t, const char *sock, unsigned nq, unsigned qsize, unsigned nslots,
              uint32_t data_cap, uint64_t pf);
/* Only connect + negotiate + slots (no queue set-up). */
int blkt_open_noqueues(struct blkt *t, const char *sock, unsigned nq, unsigned qsize,
                       unsigned nslots, uint32_t data_cap, uint64_t pf);
int blkt_setup_queues(struct blkt *t);
void blkt_close(struct blkt *t);

/* Submit slot s of queue q as a standard request: header(R) [data] status(W).
 * For IN the data is writable, for OUT/DISCARD/WRITE_ZEROES readable.
 * data_len may be 0 (no data descriptor). Kicks. Returns head or -errno. */
int blkt_submit(struct blkt *t, unsigned q, unsigned s, uint32_t type, uint64_t sector,
                uint32_t data_len);
/* blkt_submit() without the kick: the chain is only published. */
int blkt_publish(struct blkt *t, unsigned q, unsigned s, uint32_t type, uint64_t sector,
                 uint32_t data_len);
/* Wait for one completion on q: returns the slot index, -ETIMEDOUT. */
int blkt_wait_one(struct blkt *t, unsigned q);
/* Synchronous request through slot 0 of q: status byte or -errno. */
int blkt_io(struct blkt *t, unsigned q, uint32_t type, uint64_t sector, void *buf, uint32_t len);
/* Submit an arbitrary chain with cookie = slot s, kick, wait: status byte
 * at st (if st != NULL) is left to the caller; returns used len or -errno. */
int blkt_chain(struct blkt *t, unsigned q, const struct vhuf_buf *bufs, unsigned n, bool indirect);

/* Read config space. */
int blkt_config(struct blkt *t, struct virtio_blk_config *cfg);

/* pread the image. */
int blkt_file_read(const char *path, uint64_t off, void *buf, size_t len);

#endif
