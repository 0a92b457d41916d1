/* SPDX-License-Identifier: Apache-2.0 */
/* Private state shared by frontend.c (connection, memory),
 * frontend_ring.c (queues, split-ring driver) and frontend_packed.c
 * (packed-ring driver). */
#ifndef VHUF_PRIV_H
#define VHUF_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vhu/frontend.h"

struct vhuf_mig;

#define VHUF_MAX_REGIONS  VHU_MEM_BASELINE_REGIONS
#define VHUF_MAX_QUEUES   VHU_MAX_QUEUES
#define VHUF_INDIRECT_MAX 64 /* entries of a per-head indirect table */

/* Split-ring layout (virtio 1.x, 2.7). */
struct vhuf_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define VHUF_DESC_F_NEXT     1
#define VHUF_DESC_F_WRITE    2
#define VHUF_DESC_F_INDIRECT 4

struct vhuf_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then used_event */
};
#define VHUF_AVAIL_F_NO_INTERRUPT 1

struct vhuf_used_elem {
	uint32_t id;
	uint32_t len;
};
struct vhuf_used {
	uint16_t flags;
	uint16_t idx;
	struct vhuf_used_elem ring[]; /* size entries, then avail_event */
};
#define VHUF_USED_F_NO_NOTIFY 1

/* Packed-ring layout (virtio 1.1+, 2.8). */
struct vhuf_pdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};
#define VHUF_PDESC_F_AVAIL (1u << 7)
#define VHUF_PDESC_F_USED  (1u << 15)

struct vhuf_pevent {
	uint16_t off_wrap;
	uint16_t flags;
};
#define VHUF_EV_ENABLE  0
#define VHUF_EV_DISABLE 1
#define VHUF_EV_DESC    2

struct vhuf_queue {
	bool ready; /* set up */
	unsigned size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vhuf_desc *desc;
	struct vhuf_avail *avail;
	struct vhuf_used *used;
	int kick_fd, call_fd, err_fd;
	bool event_idx;
	/* Packed: the ring is at desc_gpa, the driver event area at
	 * avail_gpa, the device event area at used_gpa. */
	bool packed;
	struct vhuf_pdesc *pdesc;
	struct vhuf_pevent *drv_ev, *dev_ev;

	/* Driver state (touched by the queue's thread only). */
	uint16_t *next;   /* private free-list / chain links */
	void **cookie;    /* per head */
	uint16_t *ndesc;  /* descriptors a head's chain holds (0 = free) */
	uint64_t *itable; /* gpa of a head's indirect table, 0 = none yet */
	uint16_t free_head, num_free;
	uint16_t avail_idx;      /* shadow of avail->idx */
	uint16_t kick_check_idx; /* avail_idx at the last kick decision */
	uint16_t last_used;
	/* Packed: positions and wrap counters; next[] links free buffer
	 * ids, ndesc[id] is the ring slots a chain holds, avail_idx counts
	 * slots made available (free-running). */
	uint16_t avail_pos, used_pos;
	bool avail_wrap, used_wrap;

	/* Stop / restart. */
	bool have_base;
	uint32_t base; /* packed: avail | used << 16, each with its wrap bit 15 */
};

struct vhuf_region {
	uint64_t gpa, size;
	void *map;
	int fd;
};

struct vhuf {
	int sock;
	struct vhuf_opts opts;
	uint64_t features, protocol_features;
	bool negotiated;
	bool owner; /* SET_OWNER done on this connection */
	/* POSTCOPY_LISTEN sent (until POSTCOPY_END): memory requests get the
	 * back end's mapping addresses back. */
	bool postcopy;
	uint64_t backend_addr[VHUF_MAX_REGIONS];

	unsigned nregions;
	struct vhuf_region regions[VHUF_MAX_REGIONS];
	pthread_mutex_t bump_lock; /* vhuf_alloc may be called from queue threads */
	unsigned bump_region;      /* bump allocator cursor */
	uint64_t bump_off;

	struct vhuf_queue queues[VHUF_MAX_QUEUES];

	/* A simulated migration (frontend_log.c), or NULL. */
	struct vhuf_mig *_Atomic mig;
};

/* frontend_log.c: record a write of the driver itself to guest memory
 * while a migration is simulated, so that the check does not take it for
 * a write the back end failed to log.  Every driver write calls this after
 * writing; a no-op (one load) otherwise.  Thread: any. */
void vhuf_mig_drv_write(struct vhuf *f, uint64_t gpa, uint64_t len);
static inline void vhuf_drv_write(struct vhuf *f, uint64_t gpa, uint64_t len)
{
	if (__builtin_expect(atomic_load_explicit(&f->mig, memory_order_acquire) != NULL, 0))
		vhuf_mig_drv_write(f, gpa, len);
}
/* Free the simulated migration's state (vhuf_close). */
void vhuf_mig_free(struct vhuf *f);
/* SET_VRING_ADDR for ready queue q (log flag per the acked features). */
int vhuf_send_addr(struct vhuf *f, unsigned q);

/* True when REPLY_ACK was negotiated: set requests then ask for an ack. */
bool vhuf_acking(const struct vhuf *f);
/* Close a queue's fds and free its driver state. */
void vhuf_queue_free(struct vhuf_queue *vq);
/* *gpa: the indirect table of head/id (allocated on first use) for n
 * entries.  0, -EINVAL if n > VHUF_INDIRECT_MAX, -ENOMEM if guest memory
 * is full. */
int vhuf_indirect_table(struct vhuf *f, struct vhuf_queue *vq, uint16_t head, unsigned n,
                        uint64_t *gpa);

/* frontend_packed.c: the packed-ring driver (vq->packed). */
int vhuf_packed_alloc(struct vhuf *f, struct vhuf_queue *vq);
int vhuf_packed_submit(struct vhuf *f, struct vhuf_queue *vq, const struct vhuf_buf *bufs,
                       unsigned n, bool indirect, void *cookie);
bool vhuf_packed_need_kick(struct vhuf_queue *vq);
int vhuf_packed_get_used(struct vhuf *f, struct vhuf_queue *vq, void **cookie, uint32_t *len);
/* SET_VRING_BASE value resuming at the driver's used position. */
uint32_t vhuf_packed_used_base(const struct vhuf_queue *vq);

#endif
