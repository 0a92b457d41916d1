/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every refusal: malformed or hostile requests from a front end that
 * negotiated REPLY_ACK must be answered with a non-zero ack (or, for a
 * frame that cannot be parsed, a hang-up).  After each one the daemon still
 * serves a fresh front end doing real I/O and the process's fd and mapping
 * counts are back at the baseline.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo.h"
#include "vt.h"

VT_MAIN

typedef void (*body_fn)(struct tenv *t, struct vhuf *f);

/*
 * A body lists several refusals; each is one STEP.  run() replays the body
 * once per step with a new front end, performing only that step's hostile
 * request, so that the health check follows every single refusal.
 */
static int step_target, step_cur;
#define STEP if (step_cur++ == step_target)

/* Daemon with nq queues; per step a front end with REPLY_ACK (unless pf
 * says otherwise), the step, then: a fresh front end does real I/O and the
 * fd / shared-mapping counts are back at the baseline. */
static void run(body_fn body, unsigned nq, uint64_t pf)
{
	struct tenv t;

	echo_init(&t.dev, nq);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	for (step_target = 0;; step_target++) {
		struct vhuf *f = fe_open(&t, NULL, F_ALL, pf);
		int before = vt_failed_checks;

		VT_CHECK(f != NULL);
		if (!f)
			break;
		step_cur = 0;
		body(&t, f);
		fe_close(&t, f);
		VT_CHECK(tenv_healthy(&t));
		if (vt_failed_checks != before)
			fprintf(stderr, "#   (in step %d)\n", step_target);
		if (step_cur <= step_target + 1)
			break;
	}
	tenv_stop(&t);
}

#define NACK(expr)                                                                                 \
	do {                                                                                       \
		STEP                                                                               \
		{                                                                                  \
			int nack_r_ = (expr);                                                      \
			if (!is_nack(nack_r_)) {                                                   \
				fprintf(stderr, "# %s:%d: expected a non-zero ack, got %d (%s)\n", \
				        __FILE__, __LINE__, nack_r_, strerror(-nack_r_));          \
				vt_failed_checks++;                                                \
			}                                                                          \
		}                                                                                  \
	} while (0)

static int req(struct vhuf *f, uint32_t r, const void *p, uint32_t size, const int *fds,
               unsigned nfds)
{
	return vhuf_request(f, r, p, size, fds, nfds, true, NULL);
}

static int vring_state(struct vhuf *f, uint32_t r, unsigned q, unsigned num)
{
	struct vhu_vring_state s = {q, num};

	return req(f, r, &s, sizeof(s), NULL, 0);
}

/* ---- framing ---------------------------------------------------------- */

static void b_payload_short(struct tenv *t, struct vhuf *f)
{
	uint64_t v = 0;
	struct vhu_vring_state s = {0, 64};

	NACK(req(f, VHU_REQ_SET_VRING_NUM, &s, 4, NULL, 0));
	NACK(req(f, VHU_REQ_SET_FEATURES, &v, 4, NULL, 0));
	NACK(req(f, VHU_REQ_SET_VRING_ADDR, &v, 8, NULL, 0));
	NACK(req(f, VHU_REQ_SET_MEM_TABLE, &v, 4, NULL, 0));
}
VT_CASE(refuse_payload_too_short)
{
	run(b_payload_short, 2, PF_ALL);
}

static void b_payload_long(struct tenv *t, struct vhuf *f)
{
	union {
		uint8_t raw[64];
		struct vhu_vring_state s;
		struct vhu_config_msg c;
	} u = {0};
	uint8_t *buf = u.raw;

	u.s.num = 64;
	NACK(req(f, VHU_REQ_SET_VRING_NUM, buf, 16, NULL, 0));
	NACK(req(f, VHU_REQ_SET_FEATURES, buf, 16, NULL, 0));
	NACK(req(f, VHU_REQ_SET_VRING_ADDR, buf, 64, NULL, 0));
	/* SET_CONFIG claiming more bytes than the payload carries. */
	u.c.size = 40;
	NACK(req(f, VHU_REQ_SET_CONFIG, buf, VHU_CONFIG_HDR_SIZE + 8, NULL, 0));
}
VT_CASE(refuse_payload_too_long)
{
	run(b_payload_long, 2, PF_ALL);
}

/* A header announcing more than any request may carry cannot be skipped:
 * the back end hangs up. */
static void b_payload_over_max(struct tenv *t, struct vhuf *f)
{
	struct vhu_msg_hdr h = {VHU_REQ_SET_FEATURES, VHU_HDR_VERSION | VHU_HDR_NEED_REPLY,
	                        VHU_MAX_PAYLOAD + 1};
	char c;

	VT_EQ(write(vhuf_sock(f), &h, sizeof(h)), sizeof(h));
	VT_CHECK(wait_fd(vhuf_sock(f), 3000));
	VT_CHECK(read(vhuf_sock(f), &c, 1) <= 0);
}
VT_CASE(refuse_payload_over_max)
{
	run(b_payload_over_max, 1, PF_ALL);
}

static void b_bad_version(struct tenv *t, struct vhuf *f)
{
	struct vhu_msg_hdr h = {VHU_REQ_GET_FEATURES, 0x2, 0};
	char c;

	VT_EQ(write(vhuf_sock(f), &h, sizeof(h)), sizeof(h));
	VT_CHECK(wait_fd(vhuf_sock(f), 3000));
	VT_CHECK(read(vhuf_sock(f), &c, 1) <= 0);
}
VT_CASE(refuse_bad_header_version)
{
	run(b_bad_version, 1, PF_ALL);
}

static void b_missing_fds(struct tenv *t, struct vhuf *f)
{
	uint64_t q0 = 0;
	struct vhu_mem_table_msg m = {.nregions = 2};
	struct vhu_log_msg lm = {4096, 0};
	int fd;

	NACK(req(f, VHU_REQ_SET_VRING_KICK, &q0, 8, NULL, 0));
	NACK(req(f, VHU_REQ_SET_VRING_CALL, &q0, 8, NULL, 0));
	NACK(req(f, VHU_REQ_SET_VRING_ERR, &q0, 8, NULL, 0));
	NACK(req(f, VHU_REQ_GPU_SET_SOCKET, NULL, 0, NULL, 0));
	NACK(req(f, VHU_REQ_SET_LOG_FD, NULL, 0, NULL, 0));
	NACK(req(f, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, NULL, 0));
	/* Two regions, one fd. */
	vhuf_region(f, 0, &m.regions[0], &fd);
	m.regions[1] = m.regions[0];
	m.regions[1].guest_phys_addr += 1ull << 32;
	m.regions[1].userspace_addr += 1ull << 40;
	NACK(req(f, VHU_REQ_SET_MEM_TABLE, &m, 8 + 2 * sizeof(m.regions[0]), &fd, 1));
	/* SET_LOG_BASE has its own reply: a failure code, no hang-up. */
	STEP
	{
		struct vhu_msg *r = calloc(1, sizeof(*r));
		int ret = vhuf_request(f, VHU_REQ_SET_LOG_BASE, &lm, sizeof(lm), NULL, 0, true, r);

		VT_CHECK(is_nack(ret) || (ret == 0 && r->payload.u64 != 0));
		free(r);
	}
}
VT_CASE(refuse_missing_fds)
{
	run(b_missing_fds, 2, PF_ALL);
}

static void b_extra_fds(struct tenv *t, struct vhuf *f)
{
	int fds[3] = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)};
	uint64_t v = vhuf_features(f);
	struct vhu_vring_state s = {0, 64};
	struct vhu_mem_table_msg m = {.nregions = 1};
	int mfd[2];

	VT_REQUIRE(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
	NACK(req(f, VHU_REQ_SET_FEATURES, &v, 8, fds, 1));
	NACK(req(f, VHU_REQ_SET_VRING_NUM, &s, sizeof(s), fds, 3));
	v = 0;
	NACK(req(f, VHU_REQ_SET_VRING_KICK, &v, 8, fds, 2));
	v = VHU_VRING_NOFD_MASK; /* "no fd" but one sent */
	NACK(req(f, VHU_REQ_SET_VRING_CALL, &v, 8, fds, 1));
	vhuf_region(f, 0, &m.regions[0], &mfd[0]);
	mfd[1] = fds[0];
	NACK(req(f, VHU_REQ_SET_MEM_TABLE, &m, 8 + sizeof(m.regions[0]), mfd, 2));
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	/* the daemon's copies must be closed: checked by tenv_healthy */
}
VT_CASE(refuse_extra_fds)
{
	run(b_extra_fds, 2, PF_ALL);
}

/* ---- queues ----------------------------------------------------------- */

static void b_bad_queue(struct tenv *t, struct vhuf *f)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t v;
	struct vhu_vring_addr a = {.index = 2};

	NACK(vring_state(f, VHU_REQ_SET_VRING_NUM, 2, 64));
	NACK(vring_state(f, VHU_REQ_SET_VRING_NUM, 300, 64));
	NACK(vring_state(f, VHU_REQ_SET_VRING_BASE, 2, 0));
	NACK(vring_state(f, VHU_REQ_SET_VRING_ENABLE, 7, 1));
	NACK(req(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0));
	v = 2;
	NACK(req(f, VHU_REQ_SET_VRING_KICK, &v, 8, &efd, 1));
	v = 0xff;
	NACK(req(f, VHU_REQ_SET_VRING_CALL, &v, 8, &efd, 1));
	v = 0x1ff; /* index 255 + NOFD */
	NACK(req(f, VHU_REQ_SET_VRING_ERR, &v, 8, NULL, 0));
	close(efd);
}
VT_CASE(refuse_bad_queue_index)
{
	run(b_bad_queue, 2, PF_ALL);
}

static void b_ring_size(struct tenv *t, struct vhuf *f)
{
	NACK(vring_state(f, VHU_REQ_SET_VRING_NUM, 0, 100));
	NACK(vring_state(f, VHU_REQ_SET_VRING_NUM, 0, 0));
	NACK(vring_state(f, VHU_REQ_SET_VRING_NUM, 0, 3));
	NACK(vring_state(f, VHU_REQ_SET_VRING_NUM, 1, 2048)); /* > max_queue_size */
	NACK(vring_state(f, VHU_REQ_SET_VRING_NUM, 1, 65536));
	NACK(vring_state(f, VHU_REQ_SET_VRING_NUM, 1, 0x80000000u));
	VT_EQ(vring_state(f, VHU_REQ_SET_VRING_NUM, 1, 1024), 0);
}
VT_CASE(refuse_ring_size)
{
	run(b_ring_size, 2, PF_ALL);
}

static void b_features(struct tenv *t, struct vhuf *f)
{
	NACK(vhuf_set_u64(f, VHU_REQ_SET_FEATURES, vhuf_features(f) | VHU_BIT(40)));
	NACK(vhuf_set_u64(f, VHU_REQ_SET_FEATURES, VHU_BIT(VHU_F_RING_PACKED)));
}
VT_CASE(refuse_features_not_offered)
{
	run(b_features, 1, PF_ALL);
}

/* ---- memory ----------------------------------------------------------- */

static int mem_table1(struct vhuf *f, struct vhu_mem_region_desc d)
{
	struct vhu_mem_table_msg m = {.nregions = 1, .regions = {d}};
	int fd;

	vhuf_region(f, 0, NULL, &fd);
	return req(f, VHU_REQ_SET_MEM_TABLE, &m, 8 + sizeof(d), &fd, 1);
}

static void b_region_overflow(struct tenv *t, struct vhuf *f)
{
	struct vhu_mem_region_desc d0, d;

	vhuf_region(f, 0, &d0, NULL);
	d = d0;
	d.guest_phys_addr = UINT64_MAX - 4095;
	NACK(mem_table1(f, d));
	d = d0;
	d.userspace_addr = UINT64_MAX - 4095;
	NACK(mem_table1(f, d));
	d = d0;
	d.mmap_offset = UINT64_MAX - 10;
	NACK(mem_table1(f, d));
	d = d0;
	d.memory_size = UINT64_MAX;
	NACK(mem_table1(f, d));
}
VT_CASE(refuse_region_overflow)
{
	run(b_region_overflow, 1, PF_ALL);
}

static void b_region_overlap(struct tenv *t, struct vhuf *f)
{
	struct vhu_mem_table_msg m = {.nregions = 2};
	struct vhu_mem_single_msg s = {0};
	int fds[2];

	vhuf_region(f, 0, &m.regions[0], &fds[0]);
	fds[1] = fds[0];
	m.regions[0].memory_size = 1 << 20;
	m.regions[1] = m.regions[0];
	m.regions[1].guest_phys_addr += 1 << 19; /* overlapping gpa */
	m.regions[1].userspace_addr += 1ull << 40;
	NACK(req(f, VHU_REQ_SET_MEM_TABLE, &m, 8 + 2 * sizeof(m.regions[0]), fds, 2));
	m.regions[1] = m.regions[0];
	m.regions[1].guest_phys_addr += 1ull << 32;
	m.regions[1].userspace_addr += 1 << 19; /* overlapping uva */
	NACK(req(f, VHU_REQ_SET_MEM_TABLE, &m, 8 + 2 * sizeof(m.regions[0]), fds, 2));
	/* ADD of a region overlapping the current table. */
	vhuf_region(f, 0, &s.region, NULL);
	s.region.memory_size = 4096;
	s.region.guest_phys_addr += 8192;
	s.region.userspace_addr += 1ull << 40;
	NACK(req(f, VHU_REQ_ADD_MEM_REGION, &s, sizeof(s), fds, 1));
}
VT_CASE(refuse_region_overlap)
{
	run(b_region_overlap, 1, PF_ALL);
}

static void b_region_zero(struct tenv *t, struct vhuf *f)
{
	struct vhu_mem_region_desc d;
	struct vhu_mem_single_msg s = {0};
	int fd;

	vhuf_region(f, 0, &d, &fd);
	d.memory_size = 0;
	NACK(mem_table1(f, d));
	s.region = d;
	s.region.guest_phys_addr = 1ull << 36;
	NACK(req(f, VHU_REQ_ADD_MEM_REGION, &s, sizeof(s), &fd, 1));
	/* A table with zero regions maps nothing and is no use either way;
	 * what matters is that the daemon survives it (checked after). */
	STEP
	{
		struct vhu_mem_table_msg m = {.nregions = 0};

		(void)req(f, VHU_REQ_SET_MEM_TABLE, &m, 8, NULL, 0);
	}
}
VT_CASE(refuse_region_zero_size)
{
	run(b_region_zero, 1, PF_ALL);
}

static void b_too_many_regions(struct tenv *t, struct vhuf *f)
{
	uint8_t buf[8 + 9 * sizeof(struct vhu_mem_region_desc)] = {0};
	struct vhu_mem_table_msg *m = (struct vhu_mem_table_msg *)buf;
	struct vhu_mem_region_desc *d = (struct vhu_mem_region_desc *)(buf + 8);
	int fds[8];

	m->nregions = 9;
	vhuf_region(f, 0, &d[0], &fds[0]);
	for (int i = 0; i < 9; i++) {
		d[i] = d[0];
		d[i].memory_size = 4096;
		d[i].guest_phys_addr += (uint64_t)i << 20;
		d[i].userspace_addr += (uint64_t)i << 12;
		d[i].mmap_offset = (uint64_t)i << 12;
		fds[i % 8] = fds[0];
	}
	NACK(req(f, VHU_REQ_SET_MEM_TABLE, buf, sizeof(buf), fds, 8));
}
VT_CASE(refuse_too_many_regions)
{
	run(b_too_many_regions, 1, PF_ALL);
}

/* ADD_MEM_REGION up to GET_MAX_MEM_SLOTS, then one more. */
static void b_too_many_slots(struct tenv *t, struct vhuf *f)
{
	uint64_t max = 0;
	int fd = memfd_create("slots", MFD_CLOEXEC);
	struct vhu_mem_single_msg s = {0};
	uint8_t *map;
	uint64_t i;

	VT_REQUIRE(fd >= 0 && vhuf_get_u64(f, VHU_REQ_GET_MAX_MEM_SLOTS, &max) == 0);
	VT_REQUIRE(max >= 8 && max <= VHU_MAX_MEM_SLOTS);
	VT_REQUIRE(ftruncate(fd, (off_t)(max * 4096)) == 0);
	map = mmap(NULL, max * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	VT_REQUIRE(map != MAP_FAILED);
	for (i = 1; i < max; i++) { /* the table already holds one */
		s.region = (struct vhu_mem_region_desc){(1ull << 40) + i * 8192, 4096,
		                                        (uintptr_t)map + i * 4096, i * 4096};
		if (req(f, VHU_REQ_ADD_MEM_REGION, &s, sizeof(s), &fd, 1) != 0)
			break;
	}
	VT_EQ(i, max);
	s.region.guest_phys_addr += 8192;
	s.region.userspace_addr = (uintptr_t)map;
	s.region.mmap_offset = 0;
	NACK(req(f, VHU_REQ_ADD_MEM_REGION, &s, sizeof(s), &fd, 1));
	VT_EQ(atomic_load(&t->dev.last_mem_regions), max);
	munmap(map, max * 4096);
	close(fd);
}
VT_CASE(refuse_too_many_slots)
{
	run(b_too_many_slots, 1, PF_ALL);
}

static void b_rem_unknown(struct tenv *t, struct vhuf *f)
{
	struct vhu_mem_single_msg s = {0};

	vhuf_region(f, 0, &s.region, NULL);
	s.region.guest_phys_addr += 1ull << 33;
	NACK(req(f, VHU_REQ_REM_MEM_REGION, &s, sizeof(s), NULL, 0));
	vhuf_region(f, 0, &s.region, NULL);
	s.region.memory_size /= 2; /* right start, wrong size */
	NACK(req(f, VHU_REQ_REM_MEM_REGION, &s, sizeof(s), NULL, 0));
}
VT_CASE(refuse_rem_unknown_region)
{
	run(b_rem_unknown, 1, PF_ALL);
}

/* Ring parts outside guest memory: NUM/BASE/ADDR/KICK with acks; one of
 * ADDR, KICK or ENABLE must refuse and the ring must not start. */
static int bad_ring(struct vhuf *f, uint64_t desc, uint64_t avail, uint64_t used)
{
	struct vhu_vring_addr a = {0, 0, desc, used, avail, 0};
	int efd = eventfd(0, EFD_CLOEXEC), r;
	uint64_t q = 0;

	r = vring_state(f, VHU_REQ_SET_VRING_NUM, 0, 64);
	if (r == 0)
		r = vring_state(f, VHU_REQ_SET_VRING_BASE, 0, 0);
	if (r == 0)
		r = req(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	if (r == 0)
		r = req(f, VHU_REQ_SET_VRING_KICK, &q, 8, &efd, 1);
	if (r == 0)
		r = vring_state(f, VHU_REQ_SET_VRING_ENABLE, 0, 1);
	close(efd);
	return r;
}

static void b_ring_unmapped(struct tenv *t, struct vhuf *f)
{
	struct vhu_mem_region_desc d;
	uint64_t base, end;

	vhuf_region(f, 0, &d, NULL);
	base = d.userspace_addr;
	end = base + d.memory_size;
	NACK(bad_ring(f, 0x1000, base + 4096, base + 8192));
	VT_CHECK(!vhu_vring_started(vhu_daemon_vring(t->d, 0)));
	NACK(bad_ring(f, base, end + 4096, base + 8192));
	VT_CHECK(!vhu_vring_started(vhu_daemon_vring(t->d, 0)));
	/* used ring crossing the end of the region */
	NACK(bad_ring(f, base, base + 4096, end - 16));
	VT_CHECK(!vhu_vring_started(vhu_daemon_vring(t->d, 0)));
	/* misaligned descriptor table */
	NACK(bad_ring(f, base + 3, base + 4096, base + 8192));
	VT_CHECK(!vhu_vring_started(vhu_daemon_vring(t->d, 0)));
}
VT_CASE(refuse_ring_addr_unmapped)
{
	run(b_ring_unmapped, 1, PF_ALL);
}

/* ---- config ----------------------------------------------------------- */

static void b_config(struct tenv *t, struct vhuf *f)
{
	uint8_t buf[VHU_MAX_CONFIG_SIZE];
	struct vhu_config_msg c = {.offset = 250, .size = 16};
	int r;

	STEP VT_CHECK(is_nack(r = vhuf_get_config(f, 250, buf, 16))); /* past 256 */
	/* past the device's 64 bytes */
	STEP VT_CHECK(is_nack(r = vhuf_get_config(f, 60, buf, 16)));
	/* offset + size wraps */
	STEP VT_CHECK(is_nack(r = vhuf_get_config(f, UINT32_MAX - 4, buf, 16)));
	c.offset = 250;
	NACK(req(f, VHU_REQ_SET_CONFIG, &c, VHU_CONFIG_HDR_SIZE + 16, NULL, 0));
	c.offset = 0;
	c.size = 300;
	NACK(req(f, VHU_REQ_SET_CONFIG, &c, sizeof(c), NULL, 0));
	/* the connection still works */
	VT_EQ(vhuf_get_config(f, 0, buf, 8), 0);
}
VT_CASE(refuse_config_out_of_range)
{
	run(b_config, 1, PF_ALL);
}

/* The device would accept anything: the 256-byte limit is the library's. */
static void b_config_lib(struct tenv *t, struct vhuf *f)
{
	uint8_t buf[VHU_MAX_CONFIG_SIZE];
	struct vhu_config_msg c = {.offset = 250, .size = 16};

	t->dev.cfg_any = true;
	VT_EQ(vhuf_get_config(f, 0, buf, 16), 0);
	VT_EQ(vhuf_get_config(f, 240, buf, 16), 0); /* ends at 256 */
	STEP VT_CHECK(is_nack(vhuf_get_config(f, 250, buf, 16)));
	STEP VT_CHECK(is_nack(vhuf_get_config(f, 256, buf, 1)));
	STEP VT_CHECK(is_nack(vhuf_get_config(f, 4096, buf, 8)));
	NACK(req(f, VHU_REQ_SET_CONFIG, &c, VHU_CONFIG_HDR_SIZE + 16, NULL, 0));
	c.offset = 1000;
	NACK(req(f, VHU_REQ_SET_CONFIG, &c, VHU_CONFIG_HDR_SIZE + 16, NULL, 0));
	t->dev.cfg_any = false;
}
VT_CASE(refuse_config_past_256_by_library)
{
	run(b_config_lib, 1, PF_ALL);
}

/* Without REPLY_ACK a refusal may end the connection; nothing may leak and
 * the daemon serves the next front end. */
static void b_no_ack(struct tenv *t, struct vhuf *f)
{
	struct vhu_vring_state s = {0, 100};

	VT_CHECK(!(vhuf_protocol_features(f) & VHU_BIT(VHU_PF_REPLY_ACK)));
	(void)vhuf_request(f, VHU_REQ_SET_VRING_NUM, &s, sizeof(s), NULL, 0, false, NULL);
	s.index = 99;
	(void)vhuf_request(f, VHU_REQ_SET_VRING_NUM, &s, sizeof(s), NULL, 0, false, NULL);
}
VT_CASE(refuse_without_reply_ack)
{
	run(b_no_ack, 1, PF_ALL & ~VHU_BIT(VHU_PF_REPLY_ACK));
}

/* Requests the library does not implement are refused, not crashed on. */
static void b_unknown(struct tenv *t, struct vhuf *f)
{
	uint64_t v = 0;

	struct vhu_msg *r = calloc(1, sizeof(*r));
	int ret;

	VT_REQUIRE(r);
	/* These have replies of their own: a refusal is an empty one. */
	STEP
	{
		ret = vhuf_request(f, VHU_REQ_POSTCOPY_ADVISE, NULL, 0, NULL, 0, true, r);
		VT_CHECK(is_nack(ret) ||
		         (ret == 0 && r->nfds == 0 && (!r->hdr.size || r->payload.u64)));
		vhu_msg_close_fds(r);
	}
	STEP
	{
		ret = vhuf_request(f, VHU_REQ_IOTLB_MSG, &v, 8, NULL, 0, true, r);
		VT_CHECK(is_nack(ret) || (ret == 0 && (!r->hdr.size || r->payload.u64)));
	}
	free(r);
	NACK(req(f, VHU_REQ_SEND_RARP, &v, 8, NULL, 0));
	NACK(req(f, VHU_REQ_SET_VRING_ENDIAN, &v, 8, NULL, 0));
	NACK(req(f, 999, &v, 8, NULL, 0));
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0);
}
VT_CASE(refuse_unknown_requests)
{
	run(b_unknown, 1, PF_ALL);
}

/* Requests that need a protocol feature the front end did not ack. */
static void b_pf_missing(struct tenv *t, struct vhuf *f)
{
	struct vhu_mem_single_msg s = {0};
	struct vhu_inflight_msg im = {.num_queues = 1, .queue_size = 64};
	struct vhu_config_msg cfg = {.size = 4};
	uint64_t v = 0;
	int fd;

	VT_CHECK(vhuf_protocol_features(f) == VHU_BIT(VHU_PF_REPLY_ACK));
	vhuf_region(f, 0, &s.region, &fd);
	s.region.guest_phys_addr += 1ull << 36;
	s.region.userspace_addr += 1ull << 40;
	NACK(req(f, VHU_REQ_ADD_MEM_REGION, &s, sizeof(s), &fd, 1));
	NACK(req(f, VHU_REQ_SET_STATUS, &v, 8, NULL, 0));
	NACK(req(f, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0));
	NACK(req(f, VHU_REQ_SET_CONFIG, &cfg, VHU_CONFIG_HDR_SIZE + 4, NULL, 0));
	NACK(req(f, VHU_REQ_SET_INFLIGHT_FD, &im, sizeof(im), &fd, 1));
	STEP
	{
		uint64_t slots;

		VT_CHECK(is_nack(vhuf_get_u64(f, VHU_REQ_GET_MAX_MEM_SLOTS, &slots)));
	}
}
VT_CASE(refuse_protocol_feature_not_negotiated)
{
	run(b_pf_missing, 1, VHU_BIT(VHU_PF_REPLY_ACK));
}
