/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to vring.c, vring_split.c and inflight.c: the ring layout
 * operations table and the inflight-area layout.
 */
#ifndef VHU_VRING_IMPL_H
#define VHU_VRING_IMPL_H

#include "internal.h"

/* One ring layout (split today; packed can add its own table). */
struct vhu_vring_ops {
	const char *name;
	/* Translate addr with mem into vr->desc/avail/used (-EFAULT). */
	int (*map)(struct vhu_vring *vr, const struct vhu_mem *mem);
	/* Adopt base/used index, recover inflight state. Rings are mapped. */
	int (*start)(struct vhu_vring *vr);
	int (*pop)(struct vhu_vring *vr, struct vhu_chain *c);
	int (*push)(struct vhu_vring *vr, const struct vhu_chain *c, uint32_t written);
	int (*unpop)(struct vhu_vring *vr, unsigned n);
	/* Does the driver want an interrupt for what was pushed? */
	bool (*need_notify)(struct vhu_vring *vr);
	/* Ask for (enable) or suppress kicks; enable returns has_avail. */
	bool (*set_notification)(struct vhu_vring *vr, bool enable);
	bool (*has_avail)(struct vhu_vring *vr);
};

extern const struct vhu_vring_ops vhu_split_ops;

/* Inflight area of one queue (libvhost-user's VuVirtqInflight). */
struct vhu_inflight_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct vhu_inflight_queue {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct vhu_inflight_desc desc[];
};

#define VHU_INFLIGHT_VERSION 1

/* Bytes of one queue area (64-byte aligned). */
uint64_t vhu_inflight_queue_bytes(uint16_t qsize);

#endif
