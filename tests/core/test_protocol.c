/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every front-end request the handler answers, through a real socket to a
 * real daemon running the echo device.  Each case ends with the daemon
 * still serving a fresh front end and nothing leaked.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "echo.h"
#include "vt.h"

VT_MAIN

#define START(t, nq)                                                                               \
	struct tenv t;                                                                             \
	echo_init(&t.dev, nq);                                                                     \
	VT_REQUIRE(tenv_start(&t, NULL) == 0)

static int req_ack(struct vhuf *f, uint32_t req, const void *p, uint32_t size, const int *fds,
                   unsigned nfds)
{
	return vhuf_request(f, req, p, size, fds, nfds, true, NULL);
}

VT_CASE(get_set_features)
{
	START(t, 2);
	struct vhuf *f;
	uint64_t v = 0, want = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX);

	VT_REQUIRE(vhuf_connect(&f, t.path, &(struct vhuf_opts){.connect_timeout_ms = 3000}) == 0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0);
	VT_EQ(v, t.dev.features | VHU_BIT(VHU_F_PROTOCOL_FEATURES));
	VT_EQ(vhuf_set_u64(f, VHU_REQ_SET_FEATURES, want | VHU_BIT(VHU_F_PROTOCOL_FEATURES)), 0);
	/* A synchronous request makes sure SET_FEATURES was handled. */
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0);
	VT_EQ(t.dev.acked & ~VHU_BIT(VHU_F_PROTOCOL_FEATURES), want);
	VT_EQ(vhu_daemon_acked_features(t.d) & ~VHU_BIT(VHU_F_PROTOCOL_FEATURES), want);
	VT_CHECK(atomic_load(&t.dev.calls[OP_ACKED]) >= 1);
	fe_close(&t, f);
	/* negotiate() path: acked = wanted & offered. */
	f = fe_open(&t, NULL, want | VHU_BIT(50), PF_ALL);
	VT_REQUIRE(f);
	VT_EQ(vhuf_features(f), want | VHU_BIT(VHU_F_PROTOCOL_FEATURES));
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(set_owner_acked)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);

	VT_REQUIRE(f);
	VT_CHECK(vhuf_protocol_features(f) & VHU_BIT(VHU_PF_REPLY_ACK));
	/* negotiate sent SET_OWNER with need_reply (acked 0); a second one
	 * may be refused (rust-vmm does) but must be answered, and the
	 * connection goes on. */
	{
		int r = req_ack(f, VHU_REQ_SET_OWNER, NULL, 0, NULL, 0);
		uint64_t v;

		VT_CHECK(r == 0 || is_nack(r));
		VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0);
	}
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(reset_owner_resets_device)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	unsigned resets;
	uint64_t v;

	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	resets = atomic_load(&t.dev.calls[OP_RESET]);
	VT_EQ(vhuf_request(f, VHU_REQ_RESET_OWNER, NULL, 0, NULL, 0, false, NULL), 0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &v), 0); /* still talking */
	VT_CHECK(atomic_load(&t.dev.calls[OP_RESET]) > resets);
	VT_CHECK(!vhu_vring_started(vhu_daemon_vring(t.d, 0)));
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(mem_table_regions_with_gaps)
{
	START(t, 1);
	struct vhuf_opts o = {.mem_size = 3 << 22,
	                      .nregions = 3,
	                      .gpa_base = 0x100000,
	                      .gpa_gap = 0x200000,
	                      .connect_timeout_ms = 3000};
	struct vhuf *f = fe_open(&t, &o, F_ALL, PF_ALL);
	struct vhu_mem_region_desc d[3];

	VT_REQUIRE(f);
	VT_EQ(vhuf_nregions(f), 3);
	for (unsigned i = 0; i < 3; i++)
		VT_EQ(vhuf_region(f, i, &d[i], NULL), 0);
	VT_EQ(atomic_load(&t.dev.last_mem_regions), 3);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	/* Buffers in the last and middle regions. */
	VT_EQ(fe_echo_one(f, 0, d[2].guest_phys_addr + 4096, NULL, d[1].guest_phys_addr + 100, NULL,
	                  3000, false),
	      0);
	VT_EQ(fe_echo_one(f, 0, d[1].guest_phys_addr + d[1].memory_size - 500, NULL,
	                  d[2].guest_phys_addr, NULL, 500, true),
	      0);
	/* A new table with the same regions while the ring runs. */
	VT_EQ(vhuf_send_mem_table(f), 0);
	VT_EQ(fe_io(f, 0, 20), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(set_log_base_marks_dirty_pages)
{
	START(t, 1);
	struct vhuf_opts o = {.mem_size = 8 << 20, .connect_timeout_ms = 3000};
	struct vhuf *f = fe_open(&t, &o, F_ALL | VHU_BIT(VHU_F_LOG_ALL), PF_ALL);
	uint8_t *map;
	uint64_t out, in, used;

	VT_REQUIRE(f);
	VT_CHECK(vhuf_features(f) & VHU_BIT(VHU_F_LOG_ALL));
	map = fe_set_log_base(f);
	VT_REQUIRE(map);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	out = vhuf_alloc(f, 4096, 4096);
	in = vhuf_alloc(f, 8192, 4096);
	VT_EQ(fe_echo_one(f, 0, out, NULL, in + 4096, NULL, 300, false), 0);
	used = (uint64_t)((uint8_t *)vhuf_ring_used(f, 0) - (uint8_t *)vhuf_ptr(f, 0));
	VT_CHECK(page_dirty(map, in + 4096)); /* written by the device */
	VT_CHECK(!page_dirty(map, in));       /* untouched */
	VT_CHECK(!page_dirty(map, out));      /* only read */
	VT_CHECK(page_dirty(map, used));      /* used ring, logged via log_guest_addr */
	munmap(map, 4096);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(set_log_fd)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	int fd = eventfd(0, EFD_CLOEXEC);

	VT_REQUIRE(f && fd >= 0);
	VT_EQ(req_ack(f, VHU_REQ_SET_LOG_FD, NULL, 0, &fd, 1), 0);
	close(fd);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t)); /* the daemon's copy was closed */
	tenv_stop(&t);
}

VT_CASE(vring_num_addr_base_and_get_base)
{
	START(t, 2);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	uint32_t base = 0;

	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 1, 128) == 0);
	VT_EQ(vhu_vring_size(vhu_daemon_vring(t.d, 1)), 128);
	VT_CHECK(vhu_vring_started(vhu_daemon_vring(t.d, 1)));
	VT_EQ(fe_io(f, 1, 5), 0);
	VT_EQ(vhuf_queue_stop(f, 1, &base), 0);
	VT_EQ(base, 5);
	VT_CHECK(!vhu_vring_started(vhu_daemon_vring(t.d, 1)));
	/* Resume from base 5 (SET_VRING_BASE != 0) on the same ring. */
	VT_EQ(vhuf_queue_restart(f, 1), 0);
	VT_EQ(fe_io(f, 1, 300), 0); /* more than the ring holds */
	VT_EQ(vhuf_queue_stop(f, 1, &base), 0);
	VT_EQ(base, 305);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(vring_kick_call_err_fds)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	struct vhu_vring *vr = vhu_daemon_vring(t.d, 0);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t v;

	VT_REQUIRE(f && vr && efd >= 0);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_CHECK(vhu_vring_kick_fd(vr) >= 0);
	VT_CHECK(vhu_vring_call_fd(vr) >= 0);
	VT_EQ(fe_io(f, 0, 50), 0);
	/* Replace the call fd: completions now signal the new one. */
	v = 0;
	VT_EQ(req_ack(f, VHU_REQ_SET_VRING_CALL, &v, sizeof(v), &efd, 1), 0);
	{
		struct vhuf_buf b[2] = {{vhuf_alloc(f, 64, 8), 64, false},
		                        {vhuf_alloc(f, 64, 8), 64, true}};
		void *ck;
		uint32_t len;

		VT_REQUIRE(vhuf_submit(f, 0, b, 2, false, (void *)3) >= 0);
		vhuf_kick_force(f, 0);
		VT_CHECK(wait_event(efd, 3000));
		VT_EQ(vhuf_get_used(f, 0, &ck, &len), 1);
	}
	/* No fd: the device must not fail when it has nobody to call. */
	v = VHU_VRING_NOFD_MASK;
	VT_EQ(req_ack(f, VHU_REQ_SET_VRING_CALL, &v, sizeof(v), NULL, 0), 0);
	VT_EQ(vhu_vring_call_fd(vr), -1);
	close(efd);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(protocol_features_masked)
{
	START(t, 2);
	struct vhuf *f;
	uint64_t pf = 0, v;

	VT_REQUIRE(vhuf_connect(&f, t.path, &(struct vhuf_opts){.connect_timeout_ms = 3000}) == 0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_PROTOCOL_FEATURES, &pf), 0);
	VT_EQ(pf & ~t.dev.pf, 0);
	VT_EQ(pf & PF_ALL, PF_ALL); /* what the library implements */
	/* Offered only with the device ops that answer them. */
	VT_EQ(pf & (VHU_BIT(VHU_PF_RARP) | VHU_BIT(VHU_PF_MTU)), 0);
	VT_EQ(pf & VHU_BIT(VHU_PF_XEN_MMAP), 0);
	VT_EQ(vhuf_set_u64(f, VHU_REQ_SET_PROTOCOL_FEATURES, VHU_BIT(VHU_PF_MQ)), 0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_QUEUE_NUM, &v), 0); /* synchronise */
	fe_close(&t, f);
	/* A device offering less gets less. */
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
	echo_init(&t.dev, 1);
	t.dev.pf = VHU_BIT(VHU_PF_REPLY_ACK);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	VT_REQUIRE(vhuf_connect(&f, t.path, &(struct vhuf_opts){.connect_timeout_ms = 3000}) == 0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_PROTOCOL_FEATURES, &pf), 0);
	/* ... plus live migration, which every device gets by default
	 * (postcopy where userfaultfd works: not checked here). */
	VT_EQ(pf & ~VHU_BIT(VHU_PF_PAGEFAULT),
	      VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_LOG_SHMFD));
	fe_close(&t, f);
	VT_CHECK(tenv_at_baseline(&t));
	tenv_stop(&t);
}

VT_CASE(get_queue_num)
{
	START(t, 5);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	uint64_t v = 0;

	VT_REQUIRE(f);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_QUEUE_NUM, &v), 0);
	VT_EQ(v, 5);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(vring_enable_gates_processing)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	struct vhu_vring_state s = {.index = 0, .num = 0};
	struct vhuf_buf b[2];
	struct vhu_vring *vr = vhu_daemon_vring(t.d, 0);
	void *cookie;
	uint32_t len;

	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_CHECK(vhu_vring_enabled(vr));
	VT_EQ(req_ack(f, VHU_REQ_SET_VRING_ENABLE, &s, sizeof(s), NULL, 0), 0);
	VT_CHECK(!vhu_vring_enabled(vr));
	b[0] = (struct vhuf_buf){vhuf_alloc(f, 64, 8), 64, false};
	b[1] = (struct vhuf_buf){vhuf_alloc(f, 64, 8), 64, true};
	VT_REQUIRE(vhuf_submit(f, 0, b, 2, false, (void *)7) >= 0);
	vhuf_kick_force(f, 0);
	/* Disabled: nothing may be used (bounded look, not a timing claim). */
	VT_EQ(vhuf_wait_call(f, 0, 100), 0);
	VT_EQ(vhuf_get_used(f, 0, &cookie, &len), 0);
	s.num = 1;
	VT_EQ(req_ack(f, VHU_REQ_SET_VRING_ENABLE, &s, sizeof(s), NULL, 0), 0);
	vhuf_kick_force(f, 0);
	VT_EQ(vhuf_wait_call(f, 0, 3000), 1);
	VT_EQ(vhuf_get_used(f, 0, &cookie, &len), 1);
	VT_CHECK(cookie == (void *)7 && len == 64);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(get_set_config)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	uint8_t buf[ECHO_CFG_SIZE];
	struct vhu_config_msg c = {.offset = 8, .size = 4, .region = {1, 2, 3, 4}};

	VT_REQUIRE(f);
	VT_EQ(vhuf_get_config(f, 0, buf, ECHO_CFG_SIZE), 0);
	VT_CHECK(memcmp(buf, t.dev.config, ECHO_CFG_SIZE) == 0);
	VT_EQ(vhuf_get_config(f, 60, buf, 4), 0);
	VT_EQ(buf[0], 0xa0 + 60);
	VT_EQ(req_ack(f, VHU_REQ_SET_CONFIG, &c, VHU_CONFIG_HDR_SIZE + 4, NULL, 0), 0);
	VT_EQ(t.dev.config[8], 1);
	VT_EQ(t.dev.config[11], 4);
	VT_EQ(vhuf_get_config(f, 8, buf, 4), 0);
	VT_CHECK(memcmp(buf, c.region, 4) == 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

struct chan_call {
	struct vhu_channel *ch;
	int ret;
};

static void *config_changed_thread(void *arg)
{
	struct chan_call *c = arg;

	c->ret = vhu_channel_config_changed(c->ch);
	return NULL;
}

VT_CASE(backend_req_fd_config_change)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	struct vhu_msg *m = calloc(1, sizeof(*m));
	struct chan_call cc = {.ret = 1};
	pthread_t th;
	int sv[2];

	VT_REQUIRE(f && m);
	VT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	VT_EQ(req_ack(f, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1), 0);
	close(sv[1]);
	cc.ch = atomic_load(&t.dev.ch);
	VT_REQUIRE(cc.ch);
	VT_REQUIRE(pthread_create(&th, NULL, config_changed_thread, &cc) == 0);
	VT_CHECK(wait_fd(sv[0], 3000));
	VT_EQ(vhu_msg_recv(sv[0], m), 0);
	VT_EQ(m->hdr.request, VHU_BREQ_CONFIG_CHANGE_MSG);
	VT_EQ(m->hdr.flags & VHU_HDR_VERSION_MASK, VHU_HDR_VERSION);
	if (m->hdr.flags & VHU_HDR_NEED_REPLY) {
		m->hdr.flags = VHU_HDR_VERSION | VHU_HDR_REPLY;
		m->hdr.size = 8;
		m->payload.u64 = 0;
		m->nfds = 0;
		VT_EQ(vhu_msg_send(sv[0], m), 0);
	}
	pthread_join(th, NULL);
	VT_EQ(cc.ret, 0);
	fe_close(&t, f);
	/* After the front end left, the channel is gone: sv[0] sees EOF. */
	VT_CHECK(wait_fd(sv[0], 3000) && read(sv[0], m, 1) == 0);
	close(sv[0]);
	VT_CHECK(tenv_at_baseline(&t));
	free(m);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(get_max_mem_slots)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	uint64_t v = 0;

	VT_REQUIRE(f);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_MAX_MEM_SLOTS, &v), 0);
	VT_CHECK(v >= VHU_MEM_BASELINE_REGIONS && v <= VHU_MAX_MEM_SLOTS);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(add_rem_mem_region)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	int fd = memfd_create("extra", MFD_CLOEXEC);
	struct vhu_mem_single_msg m = {0};
	uint8_t *map;

	VT_REQUIRE(f && fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	map = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	VT_REQUIRE(map != MAP_FAILED);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	m.region = (struct vhu_mem_region_desc){1ull << 30, 1 << 20, (uintptr_t)map, 0};
	VT_EQ(req_ack(f, VHU_REQ_ADD_MEM_REGION, &m, sizeof(m), &fd, 1), 0);
	VT_EQ(atomic_load(&t.dev.last_mem_regions), 2);
	VT_EQ(fe_echo_one(f, 0, 1ull << 30, map, (1ull << 30) + 8192, map + 8192, 1000, false), 0);
	VT_EQ(fe_echo_one(f, 0, 1ull << 30, map, vhuf_alloc(f, 64, 8), NULL, 64, true), 0);
	/* Remove it (mmap offset ignored, QEMU may send uva 0) ... */
	m.region.mmap_offset = 12345;
	VT_EQ(req_ack(f, VHU_REQ_REM_MEM_REGION, &m, sizeof(m), NULL, 0), 0);
	VT_EQ(atomic_load(&t.dev.last_mem_regions), 1);
	VT_EQ(fe_io(f, 0, 10), 0);
	/* ... and a chain pointing there now fails the ring. */
	{
		struct vhuf_buf b[2] = {{1ull << 30, 64, false}, {vhuf_alloc(f, 64, 8), 64, true}};

		VT_REQUIRE(vhuf_submit(f, 0, b, 2, false, NULL) >= 0);
		vhuf_kick_force(f, 0);
		VT_CHECK(wait_event(vhuf_err_fd(f, 0), 3000));
	}
	munmap(map, 1 << 20);
	close(fd);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(reset_device_then_reinit)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	unsigned resets;

	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	resets = atomic_load(&t.dev.calls[OP_RESET]);
	VT_EQ(req_ack(f, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	VT_EQ(atomic_load(&t.dev.calls[OP_RESET]), resets + 1);
	VT_CHECK(!vhu_vring_started(vhu_daemon_vring(t.d, 0)));
	/* The owner stays; the front end sets everything up again. */
	VT_EQ(vhuf_negotiate(f, F_ALL, PF_ALL), 0);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(set_get_status)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	uint64_t v = 0;

	VT_REQUIRE(f);
	VT_EQ(vhuf_set_u64(f, VHU_REQ_SET_STATUS, 0x0f), 0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_STATUS, &v), 0);
	VT_EQ(v, 0x0f);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(gpu_set_socket)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	char c;
	int sv[2];

	VT_REQUIRE(f);
	VT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	VT_EQ(req_ack(f, VHU_REQ_GPU_SET_SOCKET, NULL, 0, &sv[1], 1), 0);
	close(sv[1]);
	VT_EQ(atomic_load(&t.dev.calls[OP_GPU]), 1);
	/* The device got the socket (and closed it): our end sees EOF. */
	VT_CHECK(wait_fd(sv[0], 3000) && read(sv[0], &c, 1) == 0);
	close(sv[0]);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(get_shared_object)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	struct vhu_msg *r = calloc(1, sizeof(*r));
	struct vhu_shared_object_msg o = {.uuid = {0x42}};
	struct stat st;

	VT_REQUIRE(f && r);
	VT_EQ(vhuf_request(f, VHU_REQ_GET_SHARED_OBJECT, &o, sizeof(o), NULL, 0, false, r), 0);
	VT_EQ(r->payload.u64, 0);
	VT_REQUIRE(r->nfds == 1);
	VT_CHECK(fstat(r->fds[0], &st) == 0 && st.st_size == 8192);
	vhu_msg_close_fds(r);
	o.uuid[0] = 1; /* unknown object: an error, no fd */
	VT_EQ(vhuf_request(f, VHU_REQ_GET_SHARED_OBJECT, &o, sizeof(o), NULL, 0, false, r), 0);
	VT_CHECK(r->payload.u64 != 0);
	VT_EQ(r->nfds, 0);
	vhu_msg_close_fds(r);
	free(r);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(device_state_fd_and_check)
{
	START(t, 1);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	struct vhu_msg *r = calloc(1, sizeof(*r));
	struct vhu_device_state_msg s = {.direction = 0, .phase = 0};
	char buf[32] = {0};
	int p[2];

	VT_REQUIRE(f && r && pipe2(p, O_CLOEXEC) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_SET_DEVICE_STATE_FD, &s, sizeof(s), &p[1], 1, false, r), 0);
	close(p[1]);
	VT_EQ(r->hdr.size, 8);
	VT_EQ(r->payload.u64 & 0xff, 0);
	VT_CHECK(r->payload.u64 & 0x100); /* no fd back */
	VT_EQ(r->nfds, 0);
	vhu_msg_close_fds(r);
	VT_CHECK(wait_fd(p[0], 3000));
	VT_EQ(read(p[0], buf, sizeof(buf)), 11);
	VT_CHECK(strcmp(buf, "echo-state") == 0);
	close(p[0]);
	VT_EQ(vhuf_request(f, VHU_REQ_CHECK_DEVICE_STATE, NULL, 0, NULL, 0, false, r), 0);
	VT_EQ(r->payload.u64, 0);
	t.dev.state_status = -EIO;
	VT_EQ(vhuf_request(f, VHU_REQ_CHECK_DEVICE_STATE, NULL, 0, NULL, 0, false, r), 0);
	VT_CHECK(r->payload.u64 != 0);
	free(r);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(get_set_inflight_fd)
{
	START(t, 2);
	struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
	struct vhu_msg *r = calloc(1, sizeof(*r));
	struct vhu_inflight_msg in = {.num_queues = 2, .queue_size = 64};
	int fd;

	VT_REQUIRE(f && r);
	VT_EQ(vhuf_request(f, VHU_REQ_GET_INFLIGHT_FD, &in, sizeof(in), NULL, 0, false, r), 0);
	VT_EQ(r->hdr.size, sizeof(in));
	VT_REQUIRE(r->nfds == 1);
	fd = r->fds[0];
	VT_CHECK(r->payload.inflight.mmap_size > 0);
	VT_EQ(r->payload.inflight.num_queues, 2);
	VT_EQ(r->payload.inflight.queue_size, 64);
	in = r->payload.inflight;
	VT_EQ(req_ack(f, VHU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1), 0);
	close(fd);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_REQUIRE(vhuf_queue_setup(f, 1, 64) == 0);
	VT_EQ(fe_io(f, 0, 100), 0);
	VT_EQ(fe_io(f, 1, 100), 0);
	free(r);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}
