/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit-test helpers: guest memory in a memfd and a tiny driver-side split
 * ring builder (the test plays the guest driver).
 */
#ifndef VHU_TEST_GUEST_H
#define VHU_TEST_GUEST_H

#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vt.h"

#include "internal.h"
#include "vt.h"

/* Guest memory: one memfd mapped here at `base`, shared with the library as
 * regions (each region = a slice of the memfd). */
struct guest {
	int fd;
	uint8_t *base;
	uint64_t size;
	struct vhu_mem *mem;
	/* region layout used by guest_gpa() */
	unsigned nreg;
	struct vhu_mem_region_desc reg[4];
};

#define G_UVA_BASE 0x7f0000000000ull

static inline int g_memfd(uint64_t size)
{
	int fd = memfd_create("vt-guest", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The memfd of `size` bytes, mapped (no regions yet). */
static inline int guest_map(struct guest *g, uint64_t size)
{
	memset(g, 0, sizeof(*g));
	g->fd = g_memfd(size);
	if (g->fd < 0)
		return -1;
	g->size = size;
	g->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
	return g->base == MAP_FAILED ? -1 : 0;
}

/* One region of `size` bytes at gpa. uva = G_UVA_BASE + gpa. */
static inline int guest_init(struct guest *g, uint64_t gpa, uint64_t size)
{
	if (guest_map(g, size))
		return -1;
	g->nreg = 1;
	g->reg[0] = (struct vhu_mem_region_desc){gpa, size, G_UVA_BASE + gpa, 0};
	return vhu_mem_new_table(&g->mem, g->reg, &g->fd, 1);
}

/* Two regions, the memfd split in halves: [gpa0, +size/2) and
 * [gpa1, +size/2) (mmap_offset size/2 for the second). */
static inline int guest_init2(struct guest *g, uint64_t gpa0, uint64_t gpa1, uint64_t size)
{
	int fds[2];

	if (guest_map(g, size))
		return -1;
	g->nreg = 2;
	g->reg[0] = (struct vhu_mem_region_desc){gpa0, size / 2, G_UVA_BASE + gpa0, 0};
	g->reg[1] = (struct vhu_mem_region_desc){gpa1, size / 2, G_UVA_BASE + gpa1, size / 2};
	fds[0] = fds[1] = g->fd;
	return vhu_mem_new_table(&g->mem, g->reg, fds, 2);
}

static inline void guest_fini(struct guest *g)
{
	vhu_mem_unref(g->mem);
	if (g->base && g->base != MAP_FAILED)
		munmap(g->base, g->size);
	if (g->fd >= 0)
		close(g->fd);
}

/* Test-side pointer for a gpa. */
static inline void *gptr(struct guest *g, uint64_t gpa)
{
	for (unsigned i = 0; i < g->nreg; i++)
		if (gpa >= g->reg[i].guest_phys_addr &&
		    gpa - g->reg[i].guest_phys_addr < g->reg[i].memory_size)
			return g->base + g->reg[i].mmap_offset + (gpa - g->reg[i].guest_phys_addr);
	return NULL;
}

/* Library-side pointer for a gpa (its own mapping of the memfd), from the
 * region list rather than the translation functions under test. */
static inline void *lptr(struct guest *g, uint64_t gpa)
{
	struct vhu_mem_region_info ri;

	for (unsigned i = 0; i < vhu_mem_region_count(g->mem); i++)
		if (vhu_mem_region_get(g->mem, i, &ri) == 0 && gpa >= ri.gpa &&
		    gpa - ri.gpa < ri.size)
			return (uint8_t *)ri.hva + (gpa - ri.gpa);
	return NULL;
}

/* Library-side pointer for byte `off` of the memfd. */
static inline void *loff(struct guest *g, uint64_t off)
{
	for (unsigned i = 0; i < g->nreg; i++)
		if (off >= g->reg[i].mmap_offset &&
		    off - g->reg[i].mmap_offset < g->reg[i].memory_size)
			return lptr(g, g->reg[i].guest_phys_addr + off - g->reg[i].mmap_offset);
	return NULL;
}

static inline uint64_t g_uva(struct guest *g, uint64_t gpa)
{
	(void)g;
	return G_UVA_BASE + gpa;
}

/* Mappings of memfds called `name` (sanitizer allocators add their own
 * anonymous mappings, so plain vt_count_maps() is too coarse). */
#define GUEST_MAPS() vt_count_maps_named(0, "memfd:vt-guest")

/* ---- driver side of a split ring ------------------------------------------ */

struct tdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define TD_NEXT     1
#define TD_WRITE    2
#define TD_INDIRECT 4

struct drv {
	struct guest *g;
	uint16_t num;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct tdesc *desc;
	uint16_t *avail; /* flags, idx, ring[num], used_event */
	uint8_t *used;   /* flags, idx, {id,len}[num], avail_event */
	uint16_t avail_idx;
	uint16_t last_used;
};

/* Rings laid out at gpa (desc), then avail, then used (4 KiB aligned). */
static inline void drv_init(struct drv *d, struct guest *g, uint64_t gpa, uint16_t num)
{
	memset(d, 0, sizeof(*d));
	d->g = g;
	d->num = num;
	d->desc_gpa = gpa;
	d->avail_gpa = gpa + 16ull * num;
	d->used_gpa = (d->avail_gpa + 6 + 2ull * num + 4095) & ~4095ull;
	d->desc = gptr(g, d->desc_gpa);
	d->avail = gptr(g, d->avail_gpa);
	d->used = gptr(g, d->used_gpa);
	memset(d->desc, 0, 16ull * num);
	memset(d->avail, 0, 6 + 2ull * num);
	memset(d->used, 0, 6 + 8ull * num);
}

static inline void drv_desc(struct drv *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                            uint16_t next)
{
	d->desc[i] = (struct tdesc){addr, len, flags, next};
}

static inline void drv_publish(struct drv *d, uint16_t head)
{
	d->avail[2 + (d->avail_idx % d->num)] = head;
	d->avail_idx++;
	__atomic_store_n(&d->avail[1], d->avail_idx, __ATOMIC_RELEASE);
}

static inline uint16_t *drv_used_event(struct drv *d)
{
	return &d->avail[2 + d->num];
}

static inline uint16_t drv_used_flags(struct drv *d)
{
	return __atomic_load_n((uint16_t *)d->used, __ATOMIC_ACQUIRE);
}

static inline uint16_t drv_used_idx(struct drv *d)
{
	return __atomic_load_n((uint16_t *)(d->used + 2), __ATOMIC_ACQUIRE);
}

static inline uint16_t drv_avail_event(struct drv *d)
{
	return __atomic_load_n((uint16_t *)(d->used + 4 + 8ull * d->num), __ATOMIC_ACQUIRE);
}

static inline void drv_used_elem(struct drv *d, uint16_t i, uint32_t *id, uint32_t *len)
{
	memcpy(id, d->used + 4 + 8ull * (i % d->num), 4);
	memcpy(len, d->used + 8 + 8ull * (i % d->num), 4);
}

/* Configure vr for this ring (not started). */
static inline void drv_setup_vring(struct drv *d, struct vhu_vring *vr)
{
	vr->num = d->num;
	vr->addr.desc_user_addr = g_uva(d->g, d->desc_gpa);
	vr->addr.avail_user_addr = g_uva(d->g, d->avail_gpa);
	vr->addr.used_user_addr = g_uva(d->g, d->used_gpa);
	vr->addr.log_guest_addr = d->used_gpa;
	vr->addr_set = true;
	vr->enabled = true;
}

/* Eventfd helpers. */
static inline int efd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

/* Value read from an eventfd (0 if not readable). */
static inline uint64_t efd_read(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* A one-page dirty log (its bitmap covers 128 MiB of guest memory)
 * attached to vr with VHOST_VRING_F_LOG set, as SET_LOG_BASE and
 * SET_VRING_ADDR would.  0 or -1. */
struct dlog {
	int fd;
	uint8_t *bm;
	struct vhu_dirty *log;
};

static inline int dlog_attach(struct dlog *l, struct vhu_vring *vr)
{
	l->fd = g_memfd(4096);
	l->bm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	if (l->bm == MAP_FAILED || vhu_dirty_new(&l->log, l->fd, 4096, 0) != 0)
		return -1;
	vr->addr.flags = 1u << VHU_VRING_F_LOG;
	atomic_store(&vr->dirty, l->log);
	return 0;
}

/* Whether the page of gpa is marked dirty. */
static inline int dlog_bit(const struct dlog *l, uint64_t gpa)
{
	return (l->bm[gpa / 4096 / 8] >> (gpa / 4096 % 8)) & 1;
}

static inline void dlog_detach(struct dlog *l, struct vhu_vring *vr)
{
	atomic_store(&vr->dirty, NULL);
	vhu_dirty_free(l->log);
	munmap(l->bm, 4096);
	close(l->fd);
}

/* The device side of a notification race, as a device worker runs it:
 * pop and push (length 0) every chain on vr, and sleep on kick (5 s at
 * most) only when re-enabling notifications finds the ring still empty;
 * until n chains are done.  *done counts them as they complete (the driver
 * thread may read it).  Returns how often it slept. */
static inline unsigned dev_serve_race(struct vhu_vring *vr, struct vhu_chain *c, int kick,
                                      unsigned n, _Atomic unsigned *done)
{
	struct pollfd p = {.fd = kick, .events = POLLIN};
	unsigned sleeps = 0;

	while (atomic_load(done) < n) {
		int ret;

		vhu_vring_disable_notification(vr);
		while ((ret = vhu_vring_pop(vr, c)) == 1) {
			VT_EQ(vhu_vring_push(vr, c, 0), 0);
			atomic_fetch_add(done, 1);
		}
		VT_EQ(ret, 0);
		if (ret < 0)
			break;
		if (vhu_vring_enable_notification(vr))
			continue;
		if (atomic_load(done) == n)
			break;
		sleeps++;
		if (poll(&p, 1, 5000) != 1) {
			VT_CHECK(!"lost wake-up (no kick within 5 s)");
			break;
		}
		efd_read(kick);
	}
	return sleeps;
}

#endif
