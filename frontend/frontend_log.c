/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvhu-frontend: a migration simulated page by page, to check a back
 * end's dirty logging without QEMU.
 *
 * vhuf_log_start() does what QEMU does when a migration starts: it shares a
 * dirty log (SET_LOG_BASE), turns on VHOST_F_LOG_ALL and VHOST_VRING_F_LOG
 * on every ring (each acknowledged), then copies all of guest memory into a
 * private "destination" image (the bulk stage).  vhuf_log_sync() is one
 * iteration: it takes the log's bits word by word (atomic exchange, as QEMU
 * does) and copies the pages they name to the destination again.  The
 * driver records its own writes in a second bitmap (QEMU's own dirty
 * tracking of the vCPUs) that sync takes too.  After the rings are stopped
 * (GET_VRING_BASE), vhuf_log_verify() runs the last sync and compares the
 * destination with guest memory: a page that differs was written by the
 * back end and never logged -- on a real destination the guest would see
 * stale data there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frontend_priv.h"

#define PAGE 4096u

struct vhuf_mig {
	pthread_mutex_t lock; /* sync rounds */
	int log_fd;
	uint64_t *log;    /* the back end's log (shared), one bit per page */
	uint64_t *drv;    /* the driver's own writes */
	uint64_t words;   /* of each bitmap */
	uint64_t pages;   /* covered: gpa 0 .. end of the highest region */
	size_t log_bytes; /* mapped */
	uint8_t *dest[VHUF_MAX_REGIONS];
	struct vhuf_log_report rep;
};

void vhuf_mig_drv_write(struct vhuf *f, uint64_t gpa, uint64_t len)
{
	struct vhuf_mig *m = atomic_load_explicit(&f->mig, memory_order_acquire);
	uint64_t first, last;

	if (!m || !len || gpa / PAGE >= m->pages)
		return;
	first = gpa / PAGE;
	last = (gpa + len - 1) / PAGE;
	if (last >= m->pages)
		last = m->pages - 1;
	/* Release: the write is done before a sync can see the bit. */
	for (uint64_t p = first; p <= last; p++)
		__atomic_fetch_or(&m->drv[p / 64], 1ULL << (p % 64), __ATOMIC_RELEASE);
}

void vhuf_log_driver_write(struct vhuf *f, uint64_t gpa, uint64_t len)
{
	vhuf_drv_write(f, gpa, len);
}

static void mig_destroy(struct vhuf_mig *m)
{
	if (m->log)
		munmap(m->log, m->log_bytes);
	if (m->log_fd >= 0)
		close(m->log_fd);
	for (unsigned i = 0; i < VHUF_MAX_REGIONS; i++)
		free(m->dest[i]);
	free(m->drv);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void vhuf_mig_free(struct vhuf *f)
{
	struct vhuf_mig *m = f->mig;

	if (!m)
		return;
	atomic_store_explicit(&f->mig, NULL, memory_order_release);
	mig_destroy(m);
}

static uint64_t mem_end(const struct vhuf *f)
{
	uint64_t end = 0;

	for (unsigned i = 0; i < f->nregions; i++)
		if (f->regions[i].gpa + f->regions[i].size > end)
			end = f->regions[i].gpa + f->regions[i].size;
	return end;
}

/* A fresh log memfd of m->log_bytes, mapped. 0 or -errno. */
static int log_new(struct vhuf_mig *m, int *fd, uint64_t **map)
{
	*map = NULL;
	*fd = memfd_create("vhuf-dirty-log", MFD_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (ftruncate(*fd, (off_t)m->log_bytes) == 0)
		*map = mmap(NULL, m->log_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (*map == NULL || *map == MAP_FAILED) {
		*map = NULL;
		close(*fd);
		*fd = -1;
		return -ENOMEM;
	}
	return 0;
}

/* The log (shared with the back end), the driver's bitmap and the
 * destination image, or NULL. */
static struct vhuf_mig *mig_new(const struct vhuf *f)
{
	struct vhuf_mig *m = calloc(1, sizeof(*m));
	bool ok;

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->log_fd = -1;
	m->pages = (mem_end(f) + PAGE - 1) / PAGE;
	m->words = (m->pages + 63) / 64;
	m->log_bytes = (m->words * 8 + PAGE - 1) & ~(size_t)(PAGE - 1);
	m->drv = calloc(m->words, 8);
	ok = m->drv && log_new(m, &m->log_fd, &m->log) == 0;
	for (unsigned i = 0; ok && i < f->nregions; i++)
		ok = (m->dest[i] = malloc(f->regions[i].size)) != NULL;
	if (!ok) {
		mig_destroy(m);
		return NULL;
	}
	return m;
}

/* SET_LOG_BASE with log fd; the reply (LOG_SHMFD) must say success. */
static int send_log_base(struct vhuf *f, struct vhuf_mig *m, int fd)
{
	struct vhu_log_msg lm = {.mmap_size = m->words * 8, .mmap_offset = 0};
	struct vhu_msg *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	ret = vhuf_request(f, VHU_REQ_SET_LOG_BASE, &lm, sizeof(lm), &fd, 1, false, r);
	if (ret == 0 && (r->hdr.size != sizeof(uint64_t) || r->payload.u64 != 0))
		ret = -EIO;
	if (ret == 0)
		vhu_msg_close_fds(r);
	free(r);
	return ret;
}

/* Make sure the back end processed what came before (QEMU: GET_FEATURES
 * when the request has no ack). */
static int barrier(struct vhuf *f)
{
	uint64_t v;

	return vhuf_acking(f) ? 0 : vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v);
}

/* LOG_ALL and every ready ring's VHOST_VRING_F_LOG on or off. */
static int set_logging(struct vhuf *f, bool on)
{
	uint64_t feat =
	    on ? f->features | VHU_BIT(VHU_F_LOG_ALL) : f->features & ~VHU_BIT(VHU_F_LOG_ALL);
	int ret = vhuf_set_u64(f, VHU_REQ_SET_FEATURES, feat);

	for (unsigned q = 0; ret == 0 && q < VHUF_MAX_QUEUES; q++)
		if (f->queues[q].ready)
			ret = vhuf_send_addr(f, q);
	return ret ? ret : barrier(f);
}

int vhuf_log_start(struct vhuf *f)
{
	struct vhuf_mig *m;
	int ret;

	if (f->mig)
		return -EBUSY;
	if (!(f->protocol_features & VHU_BIT(VHU_PF_LOG_SHMFD)))
		return -ENOTSUP;
	m = mig_new(f);
	if (!m)
		return -ENOMEM;
	/* From here on the driver records its writes. */
	atomic_store_explicit(&f->mig, m, memory_order_release);
	ret = send_log_base(f, m, m->log_fd);
	if (ret == 0)
		ret = set_logging(f, true);
	if (ret) {
		vhuf_mig_free(f);
		return ret;
	}
	/* Bulk stage: everything, while the back end keeps writing (and
	 * logging what it writes from now on). */
	for (unsigned i = 0; i < f->nregions; i++)
		memcpy(m->dest[i], f->regions[i].map, f->regions[i].size);
	return 0;
}

/* Copy page p of guest memory to the destination image. */
static void copy_page(struct vhuf *f, struct vhuf_mig *m, uint64_t p)
{
	uint64_t gpa = p * PAGE;

	for (unsigned i = 0; i < f->nregions; i++) {
		const struct vhuf_region *r = &f->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size) {
			uint64_t off = gpa - r->gpa,
			         n = r->size - off < PAGE ? r->size - off : PAGE;

			memcpy(m->dest[i] + off, (uint8_t *)r->map + off, n);
			return;
		}
	}
}

/* Take the bits of log (and the driver's) and copy their pages; lock held. */
static uint64_t sync_locked(struct vhuf *f, struct vhuf_mig *m, uint64_t *log)
{
	uint64_t copied = 0;

	for (uint64_t w = 0; w < m->words; w++) {
		/* Acquire: the writes a bit covers come before we copy. */
		uint64_t dev = __atomic_exchange_n(&log[w], 0, __ATOMIC_ACQUIRE);
		uint64_t drv = __atomic_exchange_n(&m->drv[w], 0, __ATOMIC_ACQUIRE);
		uint64_t bits = dev | drv;

		m->rep.device_marks += (uint64_t)__builtin_popcountll(dev);
		while (bits) {
			copy_page(f, m, w * 64 + (uint64_t)__builtin_ctzll(bits));
			bits &= bits - 1;
			copied++;
		}
	}
	m->rep.synced += copied;
	return copied;
}

int vhuf_log_sync(struct vhuf *f)
{
	struct vhuf_mig *m = f->mig;
	uint64_t copied;

	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	copied = sync_locked(f, m, m->log);
	m->rep.syncs++;
	pthread_mutex_unlock(&m->lock);
	return copied > INT32_MAX ? INT32_MAX : (int)copied;
}

/* QEMU's log resize (memory hot-plug): a new log, then what the back end
 * marked in the old one before it switched is collected, then the old one
 * goes. */
int vhuf_log_rebase(struct vhuf *f)
{
	struct vhuf_mig *m = f->mig;
	uint64_t *map, *old;
	int fd, ret;

	if (!m)
		return -EINVAL;
	ret = log_new(m, &fd, &map);
	if (ret)
		return ret;
	ret = send_log_base(f, m, fd);
	if (ret) {
		munmap(map, m->log_bytes);
		close(fd);
		return ret;
	}
	pthread_mutex_lock(&m->lock);
	old = m->log;
	m->log = map;
	sync_locked(f, m, old);
	pthread_mutex_unlock(&m->lock);
	munmap(old, m->log_bytes);
	close(m->log_fd);
	m->log_fd = fd;
	return 0;
}

int vhuf_log_verify(struct vhuf *f, struct vhuf_log_report *rep)
{
	struct vhuf_mig *m = f->mig;
	int ret;

	if (!m)
		return -EINVAL;
	ret = vhuf_log_sync(f);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&m->lock);
	m->rep.missed = m->rep.nlisted = 0;
	m->rep.pages = 0;
	for (unsigned i = 0; i < f->nregions; i++) {
		const struct vhuf_region *r = &f->regions[i];

		for (uint64_t off = 0; off < r->size; off += PAGE) {
			uint64_t n = r->size - off < PAGE ? r->size - off : PAGE;

			m->rep.pages++;
			if (!memcmp(m->dest[i] + off, (uint8_t *)r->map + off, n))
				continue;
			if (m->rep.nlisted < VHUF_LOG_LISTED)
				m->rep.missed_gpa[m->rep.nlisted++] = r->gpa + off;
			m->rep.missed++;
		}
	}
	if (rep)
		*rep = m->rep;
	ret = m->rep.missed ? -EFAULT : 0;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int vhuf_log_stop(struct vhuf *f)
{
	int ret;

	if (!f->mig)
		return -EINVAL;
	ret = set_logging(f, false);
	vhuf_mig_free(f);
	return ret;
}
