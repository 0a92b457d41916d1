/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Postcopy live migration on the destination: the guest runs before all of
 * its memory arrived, so the back end must not read a page the source has
 * not sent yet.  On POSTCOPY_ADVISE the back end opens a userfaultfd and
 * hands it to the front end; after POSTCOPY_LISTEN every guest memory
 * mapping is registered with it for missing-page faults.  A worker (or the
 * kernel doing I/O for it) that touches a missing page then sleeps in the
 * fault until the front end, which reads the userfaultfd, has fetched the
 * page from the source, placed it in the shared memory and woken us
 * (UFFDIO_WAKE on our address: that is why the SET_MEM_TABLE reply carries
 * our mapping addresses).  POSTCOPY_END unregisters and closes it.
 *
 * The back end never reads the userfaultfd itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dev.h"

#define PAGE 4096u

/* A userfaultfd for shared memory (memfd guest RAM), kernel faults
 * included (the kernel writes guest pages for io_uring and tap reads). */
static int uffd_open(void)
{
	struct uffdio_api api = {.api = UFFD_API, .features = 0};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (!(api.features & UFFD_FEATURE_MISSING_SHMEM) ||
	    !(api.ioctls & (1ULL << _UFFDIO_REGISTER))) {
		close(fd);
		return -ENOTSUP;
	}
	return fd;
}

static bool usable;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
	int fd = uffd_open();

	usable = fd >= 0;
	if (fd >= 0)
		close(fd);
	else
		VHU_LOGI("userfaultfd unusable (%d): postcopy migration not offered", fd);
}

bool vhu_postcopy_usable(void)
{
	pthread_once(&probe_once, probe);
	return usable;
}

void vhu_postcopy_init(struct vhu_postcopy *pc)
{
	pc->ufd = -1;
	pc->listening = pc->await_ack = pc->released = false;
	pc->nspans = 0;
	pthread_mutex_init(&pc->lock, NULL);
}

int vhu_postcopy_advise(struct vhu_postcopy *pc, int *fd_out)
{
	int fd = uffd_open(), dup_fd;

	if (fd < 0)
		return fd;
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	vhu_postcopy_end(pc); /* advised again: a new migration attempt */
	pthread_mutex_lock(&pc->lock);
	pc->ufd = fd;
	pthread_mutex_unlock(&pc->lock);
	*fd_out = dup_fd;
	return 0;
}

/* The page-aligned span of a region's guest memory in our mapping. */
static void span(const struct vhu_mem_region *r, __u64 *start, __u64 *len)
{
	uint64_t a = (uintptr_t)r->hva & ~(uint64_t)(PAGE - 1);
	uint64_t end = ((uintptr_t)r->hva + r->size + PAGE - 1) & ~(uint64_t)(PAGE - 1);

	*start = a;
	*len = end - a;
}

/* Record a registered range (lock held); an identical one is kept once. */
static void add_span(struct vhu_postcopy *pc, uint64_t start, uint64_t len)
{
	for (unsigned i = 0; i < pc->nspans; i++)
		if (pc->spans[i].start == start && pc->spans[i].len == len)
			return;
	if (pc->nspans < VHU_ARRAY_SIZE(pc->spans)) {
		pc->spans[pc->nspans].start = start;
		pc->spans[pc->nspans++].len = len;
	}
}

int vhu_postcopy_register(struct vhu_postcopy *pc, const struct vhu_mem *mem)
{
	int err = 0;

	pthread_mutex_lock(&pc->lock);
	for (unsigned i = 0; !pc->released && mem && i < mem->nregions && !err; i++) {
		struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_MISSING};

		span(mem->regions[i], &reg.range.start, &reg.range.len);
		/* Registering a range again with the same fd is accepted. */
		if (ioctl(pc->ufd, UFFDIO_REGISTER, &reg) < 0) {
			err = -errno;
			VHU_LOGE("postcopy: cannot register guest memory gpa 0x%llx with "
			         "userfaultfd: %d",
			         (unsigned long long)mem->regions[i]->gpa, err);
			break;
		}
		add_span(pc, reg.range.start, reg.range.len);
	}
	pthread_mutex_unlock(&pc->lock);
	return err;
}

/* Unregister the recorded ranges (lock held).  A range whose mapping is
 * gone (region removed) has nothing left to unregister: ignored. */
static void unregister_all(struct vhu_postcopy *pc)
{
	for (unsigned i = 0; pc->ufd >= 0 && i < pc->nspans; i++) {
		struct uffdio_range range = {.start = pc->spans[i].start, .len = pc->spans[i].len};

		if (ioctl(pc->ufd, UFFDIO_UNREGISTER, &range) < 0 && errno != EINVAL &&
		    errno != ENOMEM)
			VHU_LOGW("postcopy: unregistering %#llx+%#llx: %d",
			         (unsigned long long)range.start, (unsigned long long)range.len,
			         -errno);
	}
	pc->nspans = 0;
}

void vhu_postcopy_release(struct vhu_postcopy *pc)
{
	pthread_mutex_lock(&pc->lock);
	if (pc->nspans)
		VHU_LOGI("postcopy: front end gone, guest memory unregistered");
	pc->released = true;
	unregister_all(pc);
	pthread_mutex_unlock(&pc->lock);
}

void vhu_postcopy_end(struct vhu_postcopy *pc)
{
	pthread_mutex_lock(&pc->lock);
	unregister_all(pc);
	if (pc->ufd >= 0)
		close(pc->ufd);
	pc->ufd = -1;
	pc->listening = pc->await_ack = false;
	pthread_mutex_unlock(&pc->lock);
}
