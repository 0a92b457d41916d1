/* SPDX-License-Identifier: Apache-2.0 */
/*
 * INFLIGHT_SHMFD: a shared region where the back end records which
 * descriptor heads it popped and has not completed, so that after a crash
 * and reconnect it can resubmit them.  Layout per queue (libvhost-user's
 * VuVirtqInflight, see the spec's "Inflight I/O tracking"):
 *   u64 features; u16 version; u16 desc_num; u16 last_batch_head;
 *   u16 used_idx; struct { u8 inflight; u8 pad[5]; u16 next; u64 counter; }
 *   desc[queue_size];
 * each queue area aligned to 64 bytes.  vring_split.c does the tracking.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vring_impl.h"

#define INFLIGHT_ALIGN 64u

uint64_t vhu_inflight_queue_bytes(uint16_t qsize)
{
	uint64_t raw =
	    sizeof(struct vhu_inflight_queue) + (uint64_t)qsize * sizeof(struct vhu_inflight_desc);
	return (raw + INFLIGHT_ALIGN - 1) & ~(uint64_t)(INFLIGHT_ALIGN - 1);
}

/*
 * Live regions, so that vring start can check that vr->inflight points
 * into a mapped area and learn how many entries it holds without trusting
 * desc_num (the front end can write the shared area at any time).
 */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct live {
	struct vhu_inflight *inf;
	struct live *next;
} * live_list;

static int live_add(struct vhu_inflight *inf)
{
	struct live *l = malloc(sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->inf = inf;
	pthread_mutex_lock(&live_lock);
	l->next = live_list;
	live_list = l;
	pthread_mutex_unlock(&live_lock);
	return 0;
}

static void live_del(struct vhu_inflight *inf)
{
	pthread_mutex_lock(&live_lock);
	for (struct live **p = &live_list; *p; p = &(*p)->next) {
		if ((*p)->inf == inf) {
			struct live *l = *p;
			*p = l->next;
			free(l);
			break;
		}
	}
	pthread_mutex_unlock(&live_lock);
}

uint16_t vhu_inflight_area_entries(const void *area)
{
	uint16_t n = 0;

	pthread_mutex_lock(&live_lock);
	for (struct live *l = live_list; l && !n; l = l->next) {
		const struct vhu_inflight *inf = l->inf;
		uint64_t qb = vhu_inflight_queue_bytes(inf->queue_size);
		uintptr_t base = (uintptr_t)inf->map, p = (uintptr_t)area;

		if (p >= base && p - base < (uint64_t)inf->num_queues * qb && (p - base) % qb == 0)
			n = inf->queue_size;
	}
	pthread_mutex_unlock(&live_lock);
	return n;
}

static int inflight_map(struct vhu_inflight **out, int fd, uint64_t size, uint64_t offset,
                        uint16_t nq, uint16_t qsize)
{
	struct vhu_inflight *inf;
	struct stat st;
	void *map;
	int ret;

	if (nq == 0 || qsize == 0 || qsize > VHU_MAX_QUEUE_SIZE || nq > VHU_MAX_QUEUES)
		return -EINVAL;
	if (size < nq * vhu_inflight_queue_bytes(qsize) || size + offset < size ||
	    size + offset > SIZE_MAX || offset % (uint64_t)sysconf(_SC_PAGESIZE))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < size + offset)
		return -EINVAL; /* would SIGBUS */
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return -ENOMEM;
	map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (map == MAP_FAILED) {
		ret = -errno;
		free(inf);
		return ret;
	}
	inf->map = map;
	inf->size = (size_t)size;
	inf->fd = fd;
	inf->num_queues = nq;
	inf->queue_size = qsize;
	/* desc_num is ours to state (as libvhost-user does on SET_INFLIGHT_FD). */
	for (unsigned q = 0; q < nq; q++)
		((struct vhu_inflight_queue *)vhu_inflight_queue(inf, q))->desc_num = qsize;
	ret = live_add(inf);
	if (ret) {
		munmap(map, (size_t)size);
		free(inf);
		return ret;
	}
	*out = inf;
	return 0;
}

int vhu_inflight_create(struct vhu_inflight **out, uint16_t nq, uint16_t qsize)
{
	uint64_t size;
	int fd, ret;

	if (nq == 0 || qsize == 0 || qsize > VHU_MAX_QUEUE_SIZE || nq > VHU_MAX_QUEUES)
		return -EINVAL;
	size = nq * vhu_inflight_queue_bytes(qsize);
	fd = memfd_create("vhu-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = inflight_map(out, fd, size, 0, nq, qsize);
	if (ret)
		close(fd);
	return ret;
}

int vhu_inflight_set(struct vhu_inflight **out, int fd, uint64_t size, uint64_t offset, uint16_t nq,
                     uint16_t qsize)
{
	if (fd < 0)
		return -EBADF;
	return inflight_map(out, fd, size, offset, nq, qsize);
}

void vhu_inflight_free(struct vhu_inflight *inf)
{
	if (!inf)
		return;
	live_del(inf);
	munmap(inf->map, inf->size);
	if (inf->fd >= 0)
		close(inf->fd);
	free(inf);
}

void *vhu_inflight_queue(struct vhu_inflight *inf, unsigned q)
{
	if (!inf || q >= inf->num_queues)
		return NULL;
	return (uint8_t *)inf->map + q * vhu_inflight_queue_bytes(inf->queue_size);
}
