/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Postcopy on the destination, with this test in QEMU's place: it advises
 * postcopy, takes the back end's userfaultfd, listens, makes guest pages
 * "not arrived yet" (holes punched in the memfd) and serves the back end's
 * faults on them from a saved source image, waking it with UFFDIO_WAKE on
 * the back end's own addresses (which SET_MEM_TABLE replied with).  The
 * "mig" device then reads requests and writes results in pages that had
 * not arrived: it must see the source's bytes, never zeroes, and its
 * writes must land.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "migdev.h"
#include "vt.h"

VT_MAIN

#define FEAT                                                                                       \
	(VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |                                \
	 VHU_BIT(VHU_F_RING_INDIRECT_DESC))
#define PF                                                                                         \
	(VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_LOG_SHMFD) | VHU_BIT(VHU_PF_REPLY_ACK) |              \
	 VHU_BIT(VHU_PF_PAGEFAULT))
#define MEM  (4u << 20)
#define PAGE 4096u
#define N    16

/* The front end's side of postcopy: the back end's userfaultfd, the
 * source image, and a thread serving faults. */
struct source {
	struct vhuf *f;
	int ufd;
	uint8_t *image; /* guest memory as the source has it */
	pthread_t th;
	atomic_bool quit;
	atomic_uint faults;
};

/* Fault at back-end address a: copy the page from the source image into
 * guest memory (through our own mapping) and wake the back end. */
static int serve_fault(struct source *s, uint64_t a)
{
	uint64_t base, page = a & ~(uint64_t)(PAGE - 1);
	struct uffdio_range wake = {.start = page, .len = PAGE};

	if (vhuf_backend_addr(s->f, 0, &base) || page < base || page - base >= MEM)
		return -EFAULT;
	memcpy(vhuf_ptr(s->f, page - base), s->image + (page - base), PAGE);
	atomic_fetch_add(&s->faults, 1);
	return ioctl(s->ufd, UFFDIO_WAKE, &wake) < 0 ? -errno : 0;
}

static void *fault_thread(void *arg)
{
	struct source *s = arg;

	while (!atomic_load(&s->quit)) {
		struct pollfd p = {.fd = s->ufd, .events = POLLIN};
		struct uffd_msg m;

		if (poll(&p, 1, 50) <= 0)
			continue;
		if (read(s->ufd, &m, sizeof(m)) != sizeof(m))
			continue;
		if (m.event == UFFD_EVENT_PAGEFAULT && serve_fault(s, m.arg.pagefault.address))
			fprintf(stderr, "# cannot serve fault at %#llx\n",
			        (unsigned long long)m.arg.pagefault.address);
	}
	return NULL;
}

/* Pages [gpa, gpa+len) have not arrived: drop them from guest memory. */
static int punch(struct vhuf *f, uint64_t gpa, uint64_t len)
{
	struct vhu_mem_region_desc d;
	int fd;

	vhuf_region(f, 0, &d, &fd);
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)gpa, (off_t)len);
}

static bool uffd_available(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int advise(struct vhuf *f, int *ufd)
{
	struct vhu_msg *r = calloc(1, sizeof(*r));
	int ret =
	    r ? vhuf_request(f, VHU_REQ_POSTCOPY_ADVISE, NULL, 0, NULL, 0, false, r) : -ENOMEM;

	if (ret == 0 && (r->hdr.size != 0 || r->nfds != 1))
		ret = -EPROTO;
	if (ret == 0)
		*ufd = r->fds[0];
	free(r);
	return ret;
}

static int end(struct vhuf *f)
{
	struct vhu_msg *r = calloc(1, sizeof(*r));
	int ret = r ? vhuf_request(f, VHU_REQ_POSTCOPY_END, NULL, 0, NULL, 0, true, r) : -ENOMEM;

	if (ret == 0 && (r->hdr.size != 8 || r->payload.u64 != 0))
		ret = -EPROTO;
	free(r);
	return ret;
}

/* Requests: the sequence number (readable) and the result page
 * (writable), each on pages of their own, so that both the device's read
 * and its write fault. */
static int run_requests(struct vhuf *f, uint64_t outs, uint64_t ins, struct source *s)
{
	for (unsigned i = 0; i < N; i++) {
		uint64_t seq = 1000 + i;
		struct vhuf_buf b[2] = {{outs + PAGE * i, 8, false}, {ins + PAGE * i, PAGE, true}};

		memcpy(s->image + outs + PAGE * i, &seq, 8); /* only the source has it */
		if (vhuf_submit(f, 0, b, 2, false, (void *)(uintptr_t)(i + 1)) < 0)
			return -ENOSPC;
	}
	if (punch(f, outs, (uint64_t)N * PAGE) || punch(f, ins, (uint64_t)N * PAGE))
		return -errno;
	vhuf_kick_force(f, 0);
	for (unsigned got = 0; got < N;) {
		void *cookie;
		int r = vhuf_get_used(f, 0, &cookie, NULL);

		if (r < 0)
			return r;
		if (r == 0 && vhuf_wait_call(f, 0, 10000) == 0)
			return -ETIMEDOUT;
		got += r == 1;
	}
	for (unsigned i = 0; i < N; i++) {
		const uint8_t *p = vhuf_ptr(f, ins + PAGE * i);

		for (unsigned k = 0; k < PAGE; k++)
			if (p[k] != mig_pattern(1000 + i, k))
				return -EIO;
	}
	return 0;
}

static void postcopy_run(void)
{
	struct source s = {.ufd = -1};
	struct mig_env env;
	uint64_t pf = 0, outs, ins, base;

	mig_dev_init(&env.dev, 1);
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	s.f = mig_fe_open(env.path, 0, 0, FEAT, PF, MEM);
	VT_REQUIRE(s.f);
	VT_EQ(vhuf_get_u64(s.f, VHU_REQ_GET_PROTOCOL_FEATURES, &pf), 0);
	VT_CHECK(pf & VHU_BIT(VHU_PF_PAGEFAULT)); /* userfaultfd works here */
	VT_REQUIRE(advise(s.f, &s.ufd) == 0);
	VT_EQ(vhuf_request(s.f, VHU_REQ_POSTCOPY_LISTEN, NULL, 0, NULL, 0, true, NULL), 0);
	/* The destination's table: replied with the back end's mappings. */
	VT_EQ(vhuf_send_mem_table(s.f), 0);
	VT_REQUIRE(vhuf_backend_addr(s.f, 0, &base) == 0);
	VT_CHECK(base != vhuf_uva(s.f, 0)); /* its own address, not ours */
	s.image = calloc(1, MEM);
	VT_REQUIRE(s.image && pthread_create(&s.th, NULL, fault_thread, &s) == 0);
	VT_REQUIRE(vhuf_queue_setup(s.f, 0, 64) == 0);
	outs = vhuf_alloc(s.f, (size_t)N * PAGE, PAGE);
	ins = vhuf_alloc(s.f, (size_t)N * PAGE, PAGE);
	VT_EQ(run_requests(s.f, outs, ins, &s), 0);
	VT_CHECK(atomic_load(&s.faults) >= 2 * N); /* every page came through us */
	/* Postcopy over: memory no longer faults (a hole reads as zeroes). */
	VT_EQ(end(s.f), 0);
	atomic_store(&s.faults, 0);
	VT_EQ(punch(s.f, outs, PAGE), 0);
	{
		struct vhuf_buf b[2] = {{outs, 8, false}, {ins, PAGE, true}};
		const uint8_t *p = vhuf_ptr(s.f, ins);
		void *cookie;

		VT_REQUIRE(vhuf_submit(s.f, 0, b, 2, false, NULL) >= 0);
		vhuf_kick_force(s.f, 0);
		VT_CHECK(
		    vhuf_get_used(s.f, 0, &cookie, NULL) == 1 ||
		    (vhuf_wait_call(s.f, 0, 10000) && vhuf_get_used(s.f, 0, &cookie, NULL) == 1));
		VT_EQ(p[0], mig_pattern(0, 0));
		VT_EQ(p[PAGE - 1], mig_pattern(0, PAGE - 1));
	}
	VT_EQ(vhuf_queue_stop(s.f, 0, NULL), 0);
	VT_EQ(atomic_load(&s.faults), 0);
	atomic_store(&s.quit, true);
	pthread_join(s.th, NULL);
	close(s.ufd);
	free(s.image);
	vhuf_close(s.f);
	mig_env_stop(&env);
}

VT_CASE(postcopy_faults_are_served_by_the_front_end)
{
	if (!uffd_available()) {
		/* Only where the kernel or the tool running us has no
		 * userfaultfd (valgrind): the library then offers no postcopy. */
		fprintf(stderr, "# userfaultfd unavailable: nothing to test\n");
		return;
	}
	postcopy_run();
}

/* Messages around postcopy that must be refused or recognised. */
VT_CASE(postcopy_protocol_edges)
{
	struct vhu_mem_single_msg reg = {0};
	struct mig_env env;
	uint64_t zero = 0;
	int ufd = -1;
	struct vhuf *f;

	if (!uffd_available())
		return;
	mig_dev_init(&env.dev, 1);
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	f = mig_fe_open(env.path, 0, 0, FEAT, PF | VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS), MEM);
	VT_REQUIRE(f);
	/* LISTEN and END without ADVISE: refused (acked as failures). */
	VT_CHECK(vhuf_request(f, VHU_REQ_POSTCOPY_LISTEN, NULL, 0, NULL, 0, true, NULL) < 0);
	VT_CHECK(end(f) != 0);
	VT_REQUIRE(advise(f, &ufd) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_POSTCOPY_LISTEN, NULL, 0, NULL, 0, true, NULL), 0);
	/* QEMU 7.2 with memory slots: a region added in postcopy is answered
	 * with our address, then QEMU acks with an ADD_MEM_REG of 8 bytes and
	 * no fd (libvhost-user dies on it).  Re-adding the region the table
	 * has is answered too, and the ack is taken quietly. */
	{
		struct vhu_msg *r = calloc(1, sizeof(*r));
		int fd;

		VT_REQUIRE(r);
		vhuf_region(f, 0, &reg.region, &fd);
		VT_EQ(vhuf_request(f, VHU_REQ_ADD_MEM_REGION, &reg, sizeof(reg), &fd, 1, false, r),
		      0);
		VT_EQ(r->hdr.size, sizeof(reg));
		VT_EQ(r->payload.mem_reg.region.guest_phys_addr, reg.region.guest_phys_addr);
		VT_CHECK(r->payload.mem_reg.region.userspace_addr != reg.region.userspace_addr);
		free(r);
	}
	VT_EQ(vhuf_request(f, VHU_REQ_ADD_MEM_REGION, &zero, sizeof(zero), NULL, 0, false, NULL),
	      0);
	/* Still in sync: a request with a reply works. */
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &zero), 0);
	VT_EQ(end(f), 0);
	close(ufd);
	vhuf_close(f);
	mig_env_stop(&env);
}

/* A new front end is served: one request goes through queue 0. */
static bool next_front_end_served(const char *path)
{
	struct vhuf *g = mig_fe_open(path, 1, 64, FEAT, PF, MEM);
	uint64_t o, i;
	void *cookie;
	bool ok;

	if (!g)
		return false;
	o = vhuf_alloc(g, PAGE, PAGE);
	i = vhuf_alloc(g, PAGE, PAGE);
	struct vhuf_buf b[2] = {{o, 8, false}, {i, PAGE, true}};
	ok = vhuf_submit(g, 0, b, 2, false, NULL) >= 0;
	vhuf_kick_force(g, 0);
	ok = ok && (vhuf_get_used(g, 0, &cookie, NULL) == 1 ||
	            (vhuf_wait_call(g, 0, 10000) && vhuf_get_used(g, 0, &cookie, NULL) == 1));
	vhuf_close(g);
	return ok;
}

/* The front end goes away while a worker sleeps in a fault it will never
 * serve: the worker is woken, the daemon serves the next front end. */
VT_CASE(front_end_gone_during_a_fault)
{
	struct mig_env env;
	struct vhuf *f;
	uint64_t outs, ins;
	int ufd = -1;

	if (!uffd_available())
		return;
	mig_dev_init(&env.dev, 1);
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	f = mig_fe_open(env.path, 0, 0, FEAT, PF, MEM);
	VT_REQUIRE(f);
	VT_REQUIRE(advise(f, &ufd) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_POSTCOPY_LISTEN, NULL, 0, NULL, 0, true, NULL), 0);
	VT_EQ(vhuf_send_mem_table(f), 0);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	outs = vhuf_alloc(f, PAGE, PAGE);
	ins = vhuf_alloc(f, PAGE, PAGE);
	{
		struct vhuf_buf b[2] = {{outs, 8, false}, {ins, PAGE, true}};

		VT_REQUIRE(vhuf_submit(f, 0, b, 2, false, NULL) >= 0);
		VT_EQ(punch(f, outs, PAGE), 0);
		vhuf_kick_force(f, 0);
	}
	/* The worker sleeps in the fault on outs: nobody serves it. */
	{
		struct pollfd p = {.fd = ufd, .events = POLLIN};

		VT_EQ(poll(&p, 1, 3000), 1);
	}
	VT_EQ(atomic_load(&env.dev.pushed), 0);
	vhuf_close(f);
	close(ufd);
	VT_CHECK(next_front_end_served(env.path));
	mig_env_stop(&env);
}

/* The same for the protocol handler itself, asleep in a fault while it
 * starts a ring: a worker sees the hang-up and unregisters guest memory,
 * the handler wakes, and the next front end is served. */
VT_CASE(handler_asleep_in_a_fault_when_the_front_end_goes)
{
	const uint64_t pf = VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_PAGEFAULT); /* no acks */
	struct pollfd p = {.events = POLLIN};
	struct mig_env env;
	struct vhuf *f;
	uint64_t used_gpa;
	int ufd = -1;

	if (!uffd_available())
		return;
	mig_dev_init(&env.dev, 1);
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	f = mig_fe_open(env.path, 1, 64, FEAT, pf, MEM);
	VT_REQUIRE(f);
	VT_REQUIRE(advise(f, &ufd) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_POSTCOPY_LISTEN, NULL, 0, NULL, 0, true, NULL), 0);
	VT_EQ(vhuf_send_mem_table(f), 0);
	VT_EQ(vhuf_queue_stop(f, 0, NULL), 0);
	used_gpa = (uint64_t)((uint8_t *)vhuf_ring_used(f, 0) - (uint8_t *)vhuf_ptr(f, 0));
	VT_EQ(punch(f, used_gpa, PAGE), 0);
	VT_EQ(vhuf_queue_restart(f, 0), 0); /* the start reads the used index */
	p.fd = ufd;
	VT_EQ(poll(&p, 1, 3000), 1);
	vhuf_close(f);
	close(ufd);
	VT_CHECK(next_front_end_served(env.path));
	mig_env_stop(&env);
}
