/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvhu-frontend: queue set-up and the split-ring driver (virtio 1.x
 * 2.7), as a guest driver runs it (packed rings: frontend_packed.c).
 * Free descriptors are linked through a private array, not through the
 * ring, so a device (or a hostile test) scribbling on the descriptor table
 * cannot corrupt the driver.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "frontend_priv.h"

#define RING_ALIGN 4096u

static uint16_t *used_event_ptr(struct vhuf_queue *vq)
{
	return &vq->avail->ring[vq->size];
}

static uint16_t *avail_event_ptr(struct vhuf_queue *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

static uint16_t load_acquire16(uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_release16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void vhuf_queue_free(struct vhuf_queue *vq)
{
	close_fd(&vq->kick_fd);
	close_fd(&vq->call_fd);
	close_fd(&vq->err_fd);
	free(vq->next);
	free(vq->cookie);
	free(vq->ndesc);
	free(vq->itable);
	vq->next = NULL;
	vq->cookie = NULL;
	vq->ndesc = NULL;
	vq->itable = NULL;
	vq->ready = false;
}

static struct vhuf_queue *get_queue(struct vhuf *f, unsigned q)
{
	return q < VHUF_MAX_QUEUES && f->queues[q].ready ? &f->queues[q] : NULL;
}

static int split_alloc(struct vhuf *f, struct vhuf_queue *vq)
{
	unsigned size = vq->size;

	vq->desc_gpa = vhuf_alloc(f, 16ull * size, RING_ALIGN);
	vq->avail_gpa = vhuf_alloc(f, 6 + 2ull * size, RING_ALIGN);
	vq->used_gpa = vhuf_alloc(f, 6 + 8ull * size, RING_ALIGN);
	if (vq->desc_gpa == UINT64_MAX || vq->avail_gpa == UINT64_MAX || vq->used_gpa == UINT64_MAX)
		return -ENOMEM;
	vq->desc = vhuf_ptr(f, vq->desc_gpa);
	vq->avail = vhuf_ptr(f, vq->avail_gpa);
	vq->used = vhuf_ptr(f, vq->used_gpa);
	return 0;
}

/* Lay out the ring in guest memory and reset the driver state. */
static int ring_alloc(struct vhuf *f, struct vhuf_queue *vq, unsigned size)
{
	int ret;

	vq->size = size;
	vq->packed = f->features & VHU_BIT(VHU_F_RING_PACKED);
	ret = vq->packed ? vhuf_packed_alloc(f, vq) : split_alloc(f, vq);
	if (ret)
		return ret;
	vq->next = calloc(size, sizeof(*vq->next));
	vq->cookie = calloc(size, sizeof(*vq->cookie));
	vq->ndesc = calloc(size, sizeof(*vq->ndesc));
	vq->itable = calloc(size, sizeof(*vq->itable));
	if (!vq->next || !vq->cookie || !vq->ndesc || !vq->itable)
		return -ENOMEM;
	for (unsigned i = 0; i < size; i++)
		vq->next[i] = (uint16_t)(i + 1);
	vq->free_head = 0;
	vq->num_free = (uint16_t)(size > 0xffff ? 0xffff : size);
	vq->avail_idx = vq->kick_check_idx = vq->last_used = 0;
	vq->have_base = false;
	return 0;
}

static int new_eventfd(int *fd)
{
	*fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

static int send_state(struct vhuf *f, uint32_t req, unsigned q, unsigned num)
{
	struct vhu_vring_state s = {.index = q, .num = num};

	return vhuf_request(f, req, &s, sizeof(s), NULL, 0, vhuf_acking(f), NULL);
}

static int send_fd(struct vhuf *f, uint32_t req, unsigned q, int fd)
{
	uint64_t v = q;

	return vhuf_request(f, req, &v, sizeof(v), &fd, 1, vhuf_acking(f), NULL);
}

int vhuf_send_addr(struct vhuf *f, unsigned q)
{
	struct vhuf_queue *vq = &f->queues[q];
	struct vhu_vring_addr a = {
	    .index = q,
	    .desc_user_addr = vhuf_uva(f, vq->desc_gpa),
	    .avail_user_addr = vhuf_uva(f, vq->avail_gpa),
	    .used_user_addr = vhuf_uva(f, vq->used_gpa),
	    .log_guest_addr = vq->used_gpa,
	};

	if (f->features & VHU_BIT(VHU_F_LOG_ALL))
		a.flags = 1u << VHU_VRING_F_LOG;
	return vhuf_request(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, vhuf_acking(f),
	                    NULL);
}

/* NUM, BASE, ADDR, CALL, ERR, KICK (starts the ring), ENABLE. */
static int send_ring(struct vhuf *f, unsigned q, uint32_t base)
{
	struct vhuf_queue *vq = &f->queues[q];
	int ret;

	ret = send_state(f, VHU_REQ_SET_VRING_NUM, q, vq->size);
	if (ret == 0)
		ret = send_state(f, VHU_REQ_SET_VRING_BASE, q, base);
	if (ret == 0)
		ret = vhuf_send_addr(f, q);
	if (ret == 0)
		ret = send_fd(f, VHU_REQ_SET_VRING_CALL, q, vq->call_fd);
	if (ret == 0)
		ret = send_fd(f, VHU_REQ_SET_VRING_ERR, q, vq->err_fd);
	if (ret == 0)
		ret = send_fd(f, VHU_REQ_SET_VRING_KICK, q, vq->kick_fd);
	if (ret == 0 && (f->features & VHU_BIT(VHU_F_PROTOCOL_FEATURES)))
		ret = send_state(f, VHU_REQ_SET_VRING_ENABLE, q, 1);
	return ret;
}

int vhuf_queue_setup(struct vhuf *f, unsigned q, unsigned size)
{
	struct vhuf_queue *vq;
	int ret;

	bool packed = f->features & VHU_BIT(VHU_F_RING_PACKED);

	/* Packed rings may have any size (virtio 1.1 2.8). */
	if (q >= VHUF_MAX_QUEUES || size == 0 || size > VHU_MAX_QUEUE_SIZE ||
	    (!packed && (size & (size - 1))))
		return -EINVAL;
	vq = &f->queues[q];
	vhuf_queue_free(vq);
	vq->event_idx = f->features & VHU_BIT(VHU_F_RING_EVENT_IDX);
	ret = ring_alloc(f, vq, size);
	if (ret == 0)
		ret = new_eventfd(&vq->kick_fd);
	if (ret == 0)
		ret = new_eventfd(&vq->call_fd);
	if (ret == 0)
		ret = new_eventfd(&vq->err_fd);
	if (ret < 0) {
		vhuf_queue_free(vq);
		return ret;
	}
	vq->event_idx = f->features & VHU_BIT(VHU_F_RING_EVENT_IDX);
	vq->ready = true;
	/* Packed: avail and used at slot 0 with wrap counters 1, as QEMU
	 * sends it (avail | used << 16). */
	return send_ring(f, q, vq->packed ? 0x80008000u : 0);
}

int vhuf_queue_stop(struct vhuf *f, unsigned q, uint32_t *base)
{
	struct vhuf_queue *vq = get_queue(f, q);
	struct vhu_vring_state s = {.index = q};
	struct vhu_msg *r;
	int ret;

	if (!vq)
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = vhuf_request(f, VHU_REQ_GET_VRING_BASE, &s, sizeof(s), NULL, 0, false, r);
	if (ret == 0) {
		if (r->hdr.size != sizeof(s) || r->payload.state.index != q)
			ret = -EPROTO;
		vhu_msg_close_fds(r);
	}
	if (ret == 0) {
		vq->base = vq->packed ? r->payload.state.num : (uint16_t)r->payload.state.num;
		vq->have_base = true;
		if (base)
			*base = r->payload.state.num;
	}
	free(r);
	return ret;
}

int vhuf_queue_restart(struct vhuf *f, unsigned q)
{
	struct vhuf_queue *vq = get_queue(f, q);
	uint32_t base;

	if (!vq)
		return -EINVAL;
	/* Without a stop (the back end died) resume from the used index, as
	 * QEMU does: requests in flight are handed out again. */
	if (vq->have_base)
		base = vq->base;
	else
		base = vq->packed ? vhuf_packed_used_base(vq) : load_acquire16(&vq->used->idx);
	vq->have_base = false;
	vq->event_idx = f->features & VHU_BIT(VHU_F_RING_EVENT_IDX);
	return send_ring(f, q, base);
}

/* ---- driver ----------------------------------------------------------- */

int vhuf_indirect_table(struct vhuf *f, struct vhuf_queue *vq, uint16_t head, unsigned n,
                        uint64_t *gpa)
{
	if (n > VHUF_INDIRECT_MAX)
		return -EINVAL;
	if (!vq->itable[head]) {
		uint64_t t = vhuf_alloc(f, VHUF_INDIRECT_MAX * sizeof(struct vhuf_desc), 16);

		/* gpa 0 is a valid address; keep 0 meaning "none" by never
		 * handing it out (the rings are allocated first). */
		if (t == UINT64_MAX || t == 0)
			return -ENOMEM;
		vq->itable[head] = t;
	}
	*gpa = vq->itable[head];
	return 0;
}

static void fill_desc(struct vhuf_desc *d, const struct vhuf_buf *b, bool more, uint16_t next)
{
	d->addr = b->gpa;
	d->len = b->len;
	d->flags = (uint16_t)((b->write ? VHUF_DESC_F_WRITE : 0) | (more ? VHUF_DESC_F_NEXT : 0));
	d->next = more ? next : 0;
}

static int put_indirect(struct vhuf *f, struct vhuf_queue *vq, uint16_t head,
                        const struct vhuf_buf *bufs, unsigned n)
{
	uint64_t t;
	struct vhuf_desc *tab;
	int ret = vhuf_indirect_table(f, vq, head, n, &t);

	if (ret < 0)
		return ret;
	tab = vhuf_ptr(f, t);
	for (unsigned i = 0; i < n; i++)
		fill_desc(&tab[i], &bufs[i], i + 1 < n, (uint16_t)(i + 1));
	vq->desc[head].addr = t;
	vq->desc[head].len = (uint32_t)(n * sizeof(struct vhuf_desc));
	vq->desc[head].flags = VHUF_DESC_F_INDIRECT;
	vq->desc[head].next = 0;
	return 0;
}

int vhuf_submit(struct vhuf *f, unsigned q, const struct vhuf_buf *bufs, unsigned n, bool indirect,
                void *cookie)
{
	struct vhuf_queue *vq = get_queue(f, q);
	unsigned need = indirect ? 1 : n;
	uint16_t head, d;

	if (!vq || n == 0)
		return -EINVAL;
	if (vq->packed)
		return vhuf_packed_submit(f, vq, bufs, n, indirect, cookie);
	if (vq->num_free < need)
		return -ENOSPC;
	head = vq->free_head;
	if (indirect) {
		int ret = put_indirect(f, vq, head, bufs, n);

		if (ret < 0)
			return ret;
		vhuf_drv_write(f, vq->itable[head], n * sizeof(struct vhuf_desc));
		vhuf_drv_write(f, vq->desc_gpa + 16ull * head, 16);
		d = vq->next[head];
	} else {
		d = head;
		for (unsigned i = 0; i < n; i++) {
			fill_desc(&vq->desc[d], &bufs[i], i + 1 < n, vq->next[d]);
			vhuf_drv_write(f, vq->desc_gpa + 16ull * d, 16);
			d = vq->next[d];
		}
	}
	for (unsigned i = 0; i < n; i++) /* the caller filled them */
		if (!bufs[i].write)
			vhuf_drv_write(f, bufs[i].gpa, bufs[i].len);
	vq->free_head = d;
	vq->num_free -= need;
	vq->ndesc[head] = (uint16_t)need;
	vq->cookie[head] = cookie;
	vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
	/* Descriptors and ring slot before the index (release). */
	vq->avail_idx++;
	store_release16(&vq->avail->idx, vq->avail_idx);
	vhuf_drv_write(f, vq->avail_gpa, 4 + 2ull * vq->size);
	return head;
}

/* virtio's vring_need_event(). */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

int vhuf_kick_force(struct vhuf *f, unsigned q)
{
	struct vhuf_queue *vq = get_queue(f, q);
	uint64_t one = 1;

	if (!vq)
		return -EINVAL;
	vq->kick_check_idx = vq->avail_idx;
	if (write(vq->kick_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 1;
}

static int packed_kick(struct vhuf *f, unsigned q, struct vhuf_queue *vq)
{
	bool kick = vhuf_packed_need_kick(vq);

	vq->kick_check_idx = vq->avail_idx;
	return kick ? vhuf_kick_force(f, q) : 0;
}

int vhuf_kick(struct vhuf *f, unsigned q)
{
	struct vhuf_queue *vq = get_queue(f, q);
	bool kick;

	if (!vq)
		return -EINVAL;
	if (vq->packed)
		return packed_kick(f, q, vq);
	/* The avail index store must be visible before we read the device's
	 * suppression state (full barrier, as virtio_mb()). */
	atomic_thread_fence(memory_order_seq_cst);
	if (vq->event_idx)
		kick = need_event(__atomic_load_n(avail_event_ptr(vq), __ATOMIC_RELAXED),
		                  vq->avail_idx, vq->kick_check_idx);
	else
		kick =
		    !(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VHUF_USED_F_NO_NOTIFY);
	vq->kick_check_idx = vq->avail_idx;
	if (!kick)
		return 0;
	return vhuf_kick_force(f, q);
}

int vhuf_wait_call(struct vhuf *f, unsigned q, int timeout_ms)
{
	struct vhuf_queue *vq = get_queue(f, q);
	struct pollfd p;
	uint64_t v;
	int ret;

	if (!vq)
		return -EINVAL;
	p.fd = vq->call_fd;
	p.events = POLLIN;
	do
		ret = poll(&p, 1, timeout_ms);
	while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return 0;
	if (read(vq->call_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vhuf_wait_used(struct vhuf *f, unsigned q, int timeout_ms, void **cookie, uint32_t *len)
{
	int64_t deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;

	for (;;) {
		int64_t left = timeout_ms < 0 ? -1 : deadline - now_ms();
		/* Take first, then sleep: an entry published before the call
		 * eventfd was last drained would not wake us. */
		int r = vhuf_get_used(f, q, cookie, len);

		if (r != 0)
			return r;
		if (timeout_ms >= 0 && left <= 0)
			return 0;
		r = vhuf_wait_call(f, q, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0)
			return r;
		if (r == 0) /* timed out: one last look */
			return vhuf_get_used(f, q, cookie, len);
	}
}

static void free_chain(struct vhuf_queue *vq, uint16_t head)
{
	uint16_t last = head;

	for (unsigned i = 1; i < vq->ndesc[head]; i++)
		last = vq->next[last];
	vq->next[last] = vq->free_head;
	vq->free_head = head;
	vq->num_free += vq->ndesc[head];
	vq->ndesc[head] = 0;
	vq->cookie[head] = NULL;
}

int vhuf_get_used(struct vhuf *f, unsigned q, void **cookie, uint32_t *len)
{
	struct vhuf_queue *vq = get_queue(f, q);
	struct vhuf_used_elem e;

	if (!vq)
		return -EINVAL;
	if (vq->packed)
		return vhuf_packed_get_used(f, vq, cookie, len);
	if (load_acquire16(&vq->used->idx) == vq->last_used)
		return 0;
	e = vq->used->ring[vq->last_used & (vq->size - 1)];
	/* A device returning a head it was not given is a device bug. */
	if (e.id >= vq->size || vq->ndesc[e.id] == 0)
		return -EIO;
	if (cookie)
		*cookie = vq->cookie[e.id];
	if (len)
		*len = e.len;
	free_chain(vq, (uint16_t)e.id);
	vq->last_used++;
	if (vq->event_idx) {
		/* Interrupt us for the next completion; the store must be seen
		 * before we look at used->idx again. */
		store_release16(used_event_ptr(vq), vq->last_used);
		atomic_thread_fence(memory_order_seq_cst);
		vhuf_drv_write(f, vq->avail_gpa + 4 + 2ull * vq->size, 2);
	}
	return 1;
}

unsigned vhuf_free_descs(const struct vhuf *f, unsigned q)
{
	return q < VHUF_MAX_QUEUES && f->queues[q].ready ? f->queues[q].num_free : 0;
}

void *vhuf_ring_desc(struct vhuf *f, unsigned q)
{
	struct vhuf_queue *vq = get_queue(f, q);

	return vq ? (void *)vq->desc : NULL;
}

void *vhuf_ring_avail(struct vhuf *f, unsigned q)
{
	struct vhuf_queue *vq = get_queue(f, q);

	return vq ? (void *)vq->avail : NULL;
}

void *vhuf_ring_used(struct vhuf *f, unsigned q)
{
	struct vhuf_queue *vq = get_queue(f, q);

	return vq ? (void *)vq->used : NULL;
}

int vhuf_kick_fd(const struct vhuf *f, unsigned q)
{
	return q < VHUF_MAX_QUEUES && f->queues[q].ready ? f->queues[q].kick_fd : -1;
}

int vhuf_call_fd(const struct vhuf *f, unsigned q)
{
	return q < VHUF_MAX_QUEUES && f->queues[q].ready ? f->queues[q].call_fd : -1;
}

int vhuf_err_fd(const struct vhuf *f, unsigned q)
{
	return q < VHUF_MAX_QUEUES && f->queues[q].ready ? f->queues[q].err_fd : -1;
}
