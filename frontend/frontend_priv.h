/* SPDX-License-Identifier: Apache-2.0 */
/* Private state shared by frontend.c (connection, memory) and
 * frontend_ring.c (split-ring driver). */
#ifndef VHUF_PRIV_H
#define VHUF_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vhu/frontend.h"

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

struct vhuf_queue {
	bool ready; /* set up */
	unsigned size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vhuf_desc *desc;
	struct vhuf_avail *avail;
	struct vhuf_used *used;
	int kick_fd, call_fd, err_fd;
	bool event_idx;

	/* Driver state (touched by the queue's thread only). */
	uint16_t *next;   /* private free-list / chain links */
	void **cookie;    /* per head */
	uint16_t *ndesc;  /* descriptors a head's chain holds (0 = free) */
	uint64_t *itable; /* gpa of a head's indirect table, 0 = none yet */
	uint16_t free_head, num_free;
	uint16_t avail_idx;      /* shadow of avail->idx */
	uint16_t kick_check_idx; /* avail_idx at the last kick decision */
	uint16_t last_used;

	/* Stop / restart. */
	bool have_base;
	uint16_t base;
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

	unsigned nregions;
	struct vhuf_region regions[VHUF_MAX_REGIONS];
	pthread_mutex_t bump_lock; /* vhuf_alloc may be called from queue threads */
	unsigned bump_region;      /* bump allocator cursor */
	uint64_t bump_off;

	struct vhuf_queue queues[VHUF_MAX_QUEUES];
};

/* True when REPLY_ACK was negotiated: set requests then ask for an ack. */
bool vhuf_acking(const struct vhuf *f);
/* Close a queue's fds and free its driver state. */
void vhuf_queue_free(struct vhuf_queue *vq);

#endif
