/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvhu-frontend: the packed-ring driver (virtio 1.1+ 2.8), used when
 * VIRTIO_F_RING_PACKED was negotiated.  Buffer ids are taken from a private
 * free list (vq->next), separate from ring slots; a chain of n descriptors
 * holds n consecutive slots until its used descriptor comes back.  The
 * head's flags are written last (release), so the device sees whole chains.
 */
#include <errno.h>
#include <stdatomic.h>

#include "frontend_priv.h"

#define RING_ALIGN 4096u

static uint16_t wrap_bits(bool wrap)
{
	return wrap ? VHUF_PDESC_F_AVAIL : VHUF_PDESC_F_USED;
}

static uint16_t pos_wrap(uint16_t pos, bool wrap)
{
	return (uint16_t)(pos | (wrap ? 0x8000u : 0));
}

static void advance(const struct vhuf_queue *vq, uint16_t *pos, bool *wrap, unsigned n)
{
	unsigned p = *pos + n;

	if (p >= vq->size) {
		p -= vq->size;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

int vhuf_packed_alloc(struct vhuf *f, struct vhuf_queue *vq)
{
	vq->desc_gpa = vhuf_alloc(f, 16ull * vq->size, RING_ALIGN);
	vq->avail_gpa = vhuf_alloc(f, sizeof(struct vhuf_pevent), 4);
	vq->used_gpa = vhuf_alloc(f, sizeof(struct vhuf_pevent), 4);
	if (vq->desc_gpa == UINT64_MAX || vq->avail_gpa == UINT64_MAX || vq->used_gpa == UINT64_MAX)
		return -ENOMEM;
	vq->pdesc = vhuf_ptr(f, vq->desc_gpa);
	vq->drv_ev = vhuf_ptr(f, vq->avail_gpa);
	vq->dev_ev = vhuf_ptr(f, vq->used_gpa);
	/* The raw accessors (vhuf_ring_*) hand out the same areas. */
	vq->desc = (struct vhuf_desc *)vq->pdesc;
	vq->avail = (struct vhuf_avail *)vq->drv_ev;
	vq->used = (struct vhuf_used *)vq->dev_ev;
	vq->avail_pos = vq->used_pos = 0;
	vq->avail_wrap = vq->used_wrap = true;
	/* With EVENT_IDX: interrupt for the first used descriptor (slot 0 of
	 * the first lap); otherwise always. */
	vq->drv_ev->off_wrap = pos_wrap(0, true);
	vq->drv_ev->flags =
	    (f->features & VHU_BIT(VHU_F_RING_EVENT_IDX)) ? VHUF_EV_DESC : VHUF_EV_ENABLE;
	vhuf_drv_write(f, vq->avail_gpa, sizeof(struct vhuf_pevent));
	return 0;
}

/* Fill an indirect table for id (packed descriptors; only WRITE counts). */
static int put_table(struct vhuf *f, struct vhuf_queue *vq, uint16_t id,
                     const struct vhuf_buf *bufs, unsigned n, uint64_t *gpa)
{
	uint64_t t;
	struct vhuf_pdesc *tab;
	int ret = vhuf_indirect_table(f, vq, id, n, &t);

	if (ret < 0)
		return ret;
	tab = vhuf_ptr(f, t);
	for (unsigned i = 0; i < n; i++)
		tab[i] = (struct vhuf_pdesc){bufs[i].gpa, bufs[i].len, 0,
		                             bufs[i].write ? VHUF_DESC_F_WRITE : 0};
	*gpa = t;
	return 0;
}

int vhuf_packed_submit(struct vhuf *f, struct vhuf_queue *vq, const struct vhuf_buf *bufs,
                       unsigned n, bool indirect, void *cookie)
{
	unsigned need = indirect ? 1 : n;
	uint16_t id = vq->free_head, pos = vq->avail_pos, head = vq->avail_pos, head_flags = 0;
	bool wrap = vq->avail_wrap;
	uint64_t table = 0;

	if (vq->num_free < need)
		return -ENOSPC;
	if (indirect) {
		int ret = put_table(f, vq, id, bufs, n, &table);

		if (ret < 0)
			return ret;
	}
	for (unsigned k = 0; k < need; k++) {
		struct vhuf_pdesc *d = &vq->pdesc[pos];
		uint16_t fl = wrap_bits(wrap);

		if (indirect) {
			d->addr = table;
			d->len = (uint32_t)(n * sizeof(struct vhuf_pdesc));
			fl |= VHUF_DESC_F_INDIRECT;
		} else {
			d->addr = bufs[k].gpa;
			d->len = bufs[k].len;
			fl |= bufs[k].write ? VHUF_DESC_F_WRITE : 0;
		}
		if (k + 1 < need)
			fl |= VHUF_DESC_F_NEXT;
		d->id = id;
		if (k == 0)
			head_flags = fl; /* published last */
		else
			d->flags = fl;
		advance(vq, &pos, &wrap, 1);
	}
	vq->free_head = vq->next[id];
	vq->num_free = (uint16_t)(vq->num_free - need);
	vq->ndesc[id] = (uint16_t)need;
	vq->cookie[id] = cookie;
	vq->avail_pos = pos;
	vq->avail_wrap = wrap;
	vq->avail_idx = (uint16_t)(vq->avail_idx + need);
	/* Release: the rest of the chain before the head becomes available. */
	__atomic_store_n(&vq->pdesc[head].flags, head_flags, __ATOMIC_RELEASE);
	for (unsigned k = 0, p = head; k < need; k++, p = p + 1 < vq->size ? p + 1 : 0)
		vhuf_drv_write(f, vq->desc_gpa + 16ull * p, 16);
	if (indirect)
		vhuf_drv_write(f, table, n * sizeof(struct vhuf_pdesc));
	for (unsigned i = 0; i < n; i++) /* the caller filled them */
		if (!bufs[i].write)
			vhuf_drv_write(f, bufs[i].gpa, bufs[i].len);
	return id;
}

/* The device's event area: DISABLE, ENABLE, or (EVENT_IDX) kick when the
 * descriptor at off_wrap was made available since the last decision. */
bool vhuf_packed_need_kick(struct vhuf_queue *vq)
{
	uint16_t added = (uint16_t)(vq->avail_idx - vq->kick_check_idx), flags, off_wrap;
	int32_t now = vq->avail_pos, old = now - added, ev;

	/* The head flag stores must be visible before we read the device's
	 * suppression state (full barrier). */
	atomic_thread_fence(memory_order_seq_cst);
	flags = __atomic_load_n(&vq->dev_ev->flags, __ATOMIC_RELAXED);
	if (flags == VHUF_EV_DISABLE)
		return false;
	if (flags != VHUF_EV_DESC || !vq->event_idx || added >= vq->size)
		return true;
	off_wrap = __atomic_load_n(&vq->dev_ev->off_wrap, __ATOMIC_RELAXED);
	ev = off_wrap & 0x7fff;
	/* Another wrap counter: the previous lap (at worst an extra kick). */
	if (!!(off_wrap >> 15) != vq->avail_wrap)
		ev -= (int32_t)vq->size;
	return old <= ev && ev < now;
}

int vhuf_packed_get_used(struct vhuf *f, struct vhuf_queue *vq, void **cookie, uint32_t *len)
{
	struct vhuf_pdesc *d = &vq->pdesc[vq->used_pos];
	uint16_t flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE), id;
	bool avail = flags & VHUF_PDESC_F_AVAIL, used = flags & VHUF_PDESC_F_USED;

	if (avail != vq->used_wrap || used != vq->used_wrap)
		return 0;
	id = d->id;
	/* A device returning an id it was not given is a device bug. */
	if (id >= vq->size || vq->ndesc[id] == 0)
		return -EIO;
	if (cookie)
		*cookie = vq->cookie[id];
	if (len)
		*len = (flags & VHUF_DESC_F_WRITE) ? d->len : 0;
	advance(vq, &vq->used_pos, &vq->used_wrap, vq->ndesc[id]);
	vq->num_free = (uint16_t)(vq->num_free + vq->ndesc[id]);
	vq->ndesc[id] = 0;
	vq->cookie[id] = NULL;
	vq->next[id] = vq->free_head;
	vq->free_head = id;
	vq->last_used++;
	if (vq->event_idx) {
		/* Interrupt us for the next used descriptor; the store must be
		 * seen before we look at the ring again. */
		__atomic_store_n(&vq->drv_ev->off_wrap, pos_wrap(vq->used_pos, vq->used_wrap),
		                 __ATOMIC_RELEASE);
		atomic_thread_fence(memory_order_seq_cst);
		vhuf_drv_write(f, vq->avail_gpa, sizeof(struct vhuf_pevent));
	}
	return 1;
}

uint32_t vhuf_packed_used_base(const struct vhuf_queue *vq)
{
	return pos_wrap(vq->used_pos, vq->used_wrap) * 0x10001u;
}
