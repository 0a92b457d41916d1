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
	pc->listening = pc->await_ack = false;
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
	if (pc->ufd >= 0) /* advised again: a new migration attempt */
		close(pc->ufd);
	pc->ufd = fd;
	pc->listening = pc->await_ack = false;
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

int vhu_postcopy_register(struct vhu_postcopy *pc, const struct vhu_mem *mem)
{
	for (unsigned i = 0; mem && i < mem->nregions; i++) {
		struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_MISSING};

		span(mem->regions[i], &reg.range.start, &reg.range.len);
		/* Registering a range again with the same fd is accepted. */
		if (ioctl(pc->ufd, UFFDIO_REGISTER, &reg) < 0) {
			int err = -errno;

			VHU_LOGE("postcopy: cannot register guest memory gpa 0x%llx with "
			         "userfaultfd: %d",
			         (unsigned long long)mem->regions[i]->gpa, err);
			return err;
		}
	}
	return 0;
}

void vhu_postcopy_end(struct vhu_postcopy *pc, const struct vhu_mem *mem)
{
	if (pc->ufd < 0)
		return;
	for (unsigned i = 0; pc->listening && mem && i < mem->nregions; i++) {
		struct uffdio_range range;

		span(mem->regions[i], &range.start, &range.len);
		if (ioctl(pc->ufd, UFFDIO_UNREGISTER, &range) < 0)
			VHU_LOGW("postcopy: unregistering gpa 0x%llx: %d",
			         (unsigned long long)mem->regions[i]->gpa, -errno);
	}
	close(pc->ufd);
	vhu_postcopy_init(pc);
}
