/* SPDX-License-Identifier: Apache-2.0 */
/* Bring a vhost-user-blk back end up the way QEMU's vhost-user-blk does. */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "procstat.h"
#include "vhu/frontend.h"

#define MIB (1024ull * 1024)

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned pow2_at_least(unsigned v)
{
	unsigned p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* Guest memory big enough for rings, indirect tables and all buffers. */
static size_t mem_needed(const struct bench_opts *o, unsigned ring)
{
	uint64_t per_ring = (uint64_t)ring * (16 + 2 + 8 + 64 * 16) + 3 * 4096;
	uint64_t per_slot = (uint64_t)o->block_size + 4096 + 64;
	uint64_t total = o->queues * (per_ring + o->depth * per_slot) + 16 * MIB;
	total = (total + 2 * MIB - 1) & ~(2 * MIB - 1);
	return total < 64 * MIB ? 64 * MIB : (size_t)total;
}

static uint64_t wanted_features(const struct bench_opts *o)
{
	uint64_t f = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VIRTIO_BLK_F_SIZE_MAX) |
	             VHU_BIT(VIRTIO_BLK_F_SEG_MAX) | VHU_BIT(VIRTIO_BLK_F_BLK_SIZE) |
	             VHU_BIT(VIRTIO_BLK_F_FLUSH) | VHU_BIT(VIRTIO_BLK_F_TOPOLOGY) |
	             VHU_BIT(VIRTIO_BLK_F_MQ) | VHU_BIT(VIRTIO_BLK_F_RO);
	if (o->event_idx)
		f |= VHU_BIT(VHU_F_RING_EVENT_IDX);
	if (o->indirect)
		f |= VHU_BIT(VHU_F_RING_INDIRECT_DESC);
	if (o->packed)
		f |= VHU_BIT(VHU_F_RING_PACKED);
	return f;
}

static int read_config(struct bench *b)
{
	uint8_t cfg[VIRTIO_BLK_CFG_READ_SIZE];
	memset(cfg, 0, sizeof(cfg));
	if (!(vhuf_protocol_features(b->f) & VHU_BIT(VHU_PF_CONFIG))) {
		fprintf(stderr, "vhu-bench: back end does not offer PROTOCOL_F_CONFIG\n");
		return -ENOTSUP;
	}
	int r = vhuf_get_config(b->f, 0, cfg, sizeof(cfg));
	if (r < 0) {
		fprintf(stderr, "vhu-bench: GET_CONFIG: %s\n", strerror(-r));
		return r;
	}
	memcpy(&b->capacity, cfg + VIRTIO_BLK_CFG_CAPACITY, sizeof(b->capacity));
	b->dev_queues = 1;
	if (b->features & VHU_BIT(VIRTIO_BLK_F_MQ)) {
		uint16_t nq;
		memcpy(&nq, cfg + VIRTIO_BLK_CFG_NUM_QUEUES, sizeof(nq));
		b->dev_queues = nq ? nq : 1;
	}
	b->nblocks = b->capacity / (b->o.block_size / 512);
	if (b->nblocks == 0) {
		fprintf(stderr, "vhu-bench: device has %llu sectors, smaller than one block\n",
		        (unsigned long long)b->capacity);
		return -EINVAL;
	}
	return 0;
}

static int check_queues(struct bench *b)
{
	uint64_t n = 0;
	if ((vhuf_protocol_features(b->f) & VHU_BIT(VHU_PF_MQ)) &&
	    vhuf_get_u64(b->f, VHU_REQ_GET_QUEUE_NUM, &n) == 0 && n && n < b->dev_queues)
		b->dev_queues = (unsigned)n;
	if (b->o.queues > b->dev_queues) {
		fprintf(stderr, "vhu-bench: --queues %u but the device has %u\n", b->o.queues,
		        b->dev_queues);
		return -EINVAL;
	}
	if (b->o.rw != RW_READ && (b->features & VHU_BIT(VIRTIO_BLK_F_RO))) {
		fprintf(stderr, "vhu-bench: device is read-only\n");
		return -EROFS;
	}
	return 0;
}

static int ring_size(struct bench *b)
{
	unsigned per_req = b->o.indirect ? 1 : 3;
	unsigned need = b->o.depth * per_req;
	unsigned ring = b->o.ring_size ? b->o.ring_size : pow2_at_least(need < 128 ? 128 : need);
	if (ring < need || ring > VHU_MAX_QUEUE_SIZE || (ring & (ring - 1))) {
		fprintf(stderr,
		        "vhu-bench: ring of %u descriptors (a power of two <= 32768) cannot "
		        "hold %u requests\n",
		        ring, b->o.depth);
		return -EINVAL;
	}
	b->ring_size = ring;
	return 0;
}

static int alloc_slots(struct bench *b, struct bench_worker *w)
{
	size_t align = b->o.block_size < 4096 ? 512 : 4096;
	w->slots = calloc(b->o.depth, sizeof(*w->slots));
	w->done = calloc(b->o.depth, sizeof(*w->done));
	if (!w->slots || !w->done)
		return -ENOMEM;
	for (unsigned i = 0; i < b->o.depth; i++) {
		struct bench_slot *s = &w->slots[i];
		s->hdr_gpa = vhuf_alloc(b->f, sizeof(*s->hdr) + 1, 64);
		s->data_gpa = vhuf_alloc(b->f, b->o.block_size, align);
		if (s->hdr_gpa == UINT64_MAX || s->data_gpa == UINT64_MAX)
			return -ENOMEM;
		s->status_gpa = s->hdr_gpa + sizeof(*s->hdr);
		s->hdr = vhuf_ptr(b->f, s->hdr_gpa);
		s->status = vhuf_ptr(b->f, s->status_gpa);
		if (!s->hdr || !s->status)
			return -EFAULT;
	}
	return 0;
}

static int setup_queues(struct bench *b)
{
	b->w = calloc(b->o.queues, sizeof(*b->w));
	if (!b->w)
		return -ENOMEM;
	for (unsigned q = 0; q < b->o.queues; q++) {
		struct bench_worker *w = &b->w[q];
		w->b = b;
		w->q = q;
		w->rng = b->o.seed * 0x9e3779b97f4a7c15ull + q + 1;
		hist_init(&w->hist);
		int r = vhuf_queue_setup(b->f, q, b->ring_size);
		if (r < 0) {
			fprintf(stderr, "vhu-bench: queue %u setup: %s\n", q, strerror(-r));
			return r;
		}
		r = alloc_slots(b, w);
		if (r < 0) {
			fprintf(stderr, "vhu-bench: request buffers: %s\n", strerror(-r));
			return r;
		}
	}
	return 0;
}

static void find_backend(struct bench *b)
{
	if (b->o.backend_pid > 0) {
		b->backend_pid = b->o.backend_pid;
		return;
	}
	pid_t p = peer_pid(vhuf_sock(b->f));
	b->backend_pid = p > 0 ? p : 0;
}

int bench_setup(struct bench *b)
{
	int r = ring_size(b);
	if (r < 0)
		return r;
	struct vhuf_opts fo = {
	    .mem_size = mem_needed(&b->o, b->ring_size),
	    .nregions = 1,
	    .connect_timeout_ms = b->o.connect_timeout_ms,
	};
	r = vhuf_connect(&b->f, b->o.socket, &fo);
	if (r < 0) {
		fprintf(stderr, "vhu-bench: connect %s: %s\n", b->o.socket, strerror(-r));
		return r;
	}
	find_backend(b);
	uint64_t pf = VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIG) |
	              (b->o.log ? VHU_BIT(VHU_PF_LOG_SHMFD) : 0);
	r = vhuf_negotiate(b->f, wanted_features(&b->o), pf);
	if (r < 0) {
		fprintf(stderr, "vhu-bench: negotiation: %s\n", strerror(-r));
		return r;
	}
	b->features = vhuf_features(b->f);
	/* Without the feature the device would not parse indirect tables. */
	if (!(b->features & VHU_BIT(VHU_F_RING_INDIRECT_DESC)) && b->o.indirect) {
		b->o.indirect = false;
		if ((r = ring_size(b)) < 0)
			return r;
	}
	b->o.event_idx = !!(b->features & VHU_BIT(VHU_F_RING_EVENT_IDX));
	if (b->o.packed && !(b->features & VHU_BIT(VHU_F_RING_PACKED))) {
		fprintf(stderr, "vhu-bench: back end does not offer VIRTIO_F_RING_PACKED\n");
		return -ENOTSUP;
	}
	if ((r = read_config(b)) < 0 || (r = check_queues(b)) < 0)
		return r;
	if ((r = setup_queues(b)) < 0 || !b->o.log)
		return r;
	/* Migration: logging on once the rings run (as QEMU turns it on). */
	r = vhuf_log_start(b->f);
	if (r < 0)
		fprintf(stderr, "vhu-bench: --log: %s (LOG_SHMFD and LOG_ALL offered?)\n",
		        strerror(-r));
	return r;
}

void bench_teardown(struct bench *b)
{
	if (b->w) {
		for (unsigned q = 0; q < b->o.queues; q++) {
			free(b->w[q].slots);
			free(b->w[q].done);
		}
		free(b->w);
		b->w = NULL;
	}
	if (b->f)
		vhuf_close(b->f);
	b->f = NULL;
}
