/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rings and threads through a real socket: malformed chains (the ring
 * fails, its error eventfd fires, the other queue keeps working), memory
 * updates under I/O, front ends going away mid-I/O and reconnecting, lock
 * modes, listeners, exit events and queue-to-thread mappings.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "echo.h"
#include "vt.h"

VT_MAIN

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4

struct avail {
	uint16_t flags, idx, ring[];
};

/* Publish head 0 on a fresh queue behind the driver's back. */
static void publish_raw(struct vhuf *f, unsigned q, uint16_t idx)
{
	struct avail *a = vhuf_ring_avail(f, q);

	a->ring[0] = 0;
	__atomic_store_n(&a->idx, idx, __ATOMIC_RELEASE);
	vhuf_kick_force(f, q);
}

typedef void (*bad_fn)(struct vhuf *f, struct desc *d, uint64_t buf);

/* Queue 0 gets the malformed chain; queue 1 must keep working. */
static void hostile(bad_fn make, uint16_t avail_idx)
{
	struct tenv t;
	struct vhuf *f;
	uint64_t buf;
	struct vhu_vring_stats st;

	echo_init(&t.dev, 2);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_CHECK(f);
	if (f && vhuf_queue_setup(f, 0, 64) == 0 && vhuf_queue_setup(f, 1, 64) == 0) {
		VT_EQ(fe_io(f, 1, 10), 0);
		buf = vhuf_alloc(f, 8192, 4096);
		make(f, vhuf_ring_desc(f, 0), buf);
		publish_raw(f, 0, avail_idx);
		VT_CHECK(wait_event(vhuf_err_fd(f, 0), 3000));
		VT_CHECK(vhu_vring_failed(vhu_daemon_vring(t.d, 0)));
		/* the device sees -EIO from pop (just after the err signal) */
		VT_CHECK(WAIT_UNTIL(atomic_load(&t.dev.ioerrs) >= 1, 3000));
		vhu_vring_get_stats(vhu_daemon_vring(t.d, 0), &st);
		VT_CHECK(st.errors >= 1);
		/* more kicks on the failed ring change nothing */
		vhuf_kick_force(f, 0);
		VT_EQ(fe_io(f, 1, 50), 0);
		VT_CHECK(vhu_vring_failed(vhu_daemon_vring(t.d, 0)));
	} else {
		VT_CHECK(0); /* queue setup failed */
	}
	if (f)
		fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

static void mk_loop(struct vhuf *f, struct desc *d, uint64_t buf)
{
	d[0] = (struct desc){buf, 16, D_NEXT, 1};
	d[1] = (struct desc){buf + 16, 16, D_NEXT, 2};
	d[2] = (struct desc){buf + 32, 16, D_NEXT, 0};
}
VT_CASE(chain_loop_fails_ring)
{
	hostile(mk_loop, 1);
}

static void mk_past_ring(struct vhuf *f, struct desc *d, uint64_t buf)
{
	d[0] = (struct desc){buf, 16, D_NEXT, 64 + 5};
}
VT_CASE(chain_next_past_ring_fails_ring)
{
	hostile(mk_past_ring, 1);
}

static void mk_outside(struct vhuf *f, struct desc *d, uint64_t buf)
{
	d[0] = (struct desc){buf, 16, D_NEXT, 1};
	d[1] = (struct desc){1ull << 50, 16, D_WRITE, 0};
}
VT_CASE(chain_outside_memory_fails_ring)
{
	hostile(mk_outside, 1);
}

static void mk_len_wraps(struct vhuf *f, struct desc *d, uint64_t buf)
{
	d[0] = (struct desc){buf, 0xffffffffu, D_WRITE, 0};
}
VT_CASE(chain_length_past_memory_fails_ring)
{
	hostile(mk_len_wraps, 1);
}

static void mk_nested(struct vhuf *f, struct desc *d, uint64_t buf)
{
	struct desc *tab = vhuf_ptr(f, buf);

	tab[0] = (struct desc){buf + 4096, 32, D_INDIRECT, 0};
	d[0] = (struct desc){buf, 16, D_INDIRECT, 0};
}
VT_CASE(nested_indirect_fails_ring)
{
	hostile(mk_nested, 1);
}

static void mk_indirect_bad(struct vhuf *f, struct desc *d, uint64_t buf)
{
	/* table length not a multiple of a descriptor */
	d[0] = (struct desc){buf, 24, D_INDIRECT, 0};
}
VT_CASE(indirect_bad_length_fails_ring)
{
	hostile(mk_indirect_bad, 1);
}

static void mk_indirect_loop(struct vhuf *f, struct desc *d, uint64_t buf)
{
	struct desc *tab = vhuf_ptr(f, buf);

	tab[0] = (struct desc){buf + 4096, 16, D_NEXT, 1};
	tab[1] = (struct desc){buf + 4096, 16, D_NEXT, 0};
	d[0] = (struct desc){buf, 32, D_INDIRECT, 0};
}
VT_CASE(indirect_loop_fails_ring)
{
	hostile(mk_indirect_loop, 1);
}

static void mk_read_after_write(struct vhuf *f, struct desc *d, uint64_t buf)
{
	d[0] = (struct desc){buf, 16, D_WRITE | D_NEXT, 1};
	d[1] = (struct desc){buf + 16, 16, 0, 0};
}
VT_CASE(readable_after_writable_fails_ring)
{
	hostile(mk_read_after_write, 1);
}

static void mk_ok(struct vhuf *f, struct desc *d, uint64_t buf)
{
	d[0] = (struct desc){buf, 16, D_WRITE, 0};
}
VT_CASE(avail_index_jump_fails_ring)
{
	hostile(mk_ok, 64 + 10); /* moved by more than the ring size */
}

/* A head index past the ring in the avail ring itself. */
static void mk_bad_head(struct vhuf *f, struct desc *d, uint64_t buf)
{
	struct avail *a = vhuf_ring_avail(f, 0);

	d[0] = (struct desc){buf, 16, D_WRITE, 0};
	a->ring[1] = 1000;
}
VT_CASE(avail_head_past_ring_fails_ring)
{
	/* publish_raw writes ring[0] = 0; the second entry is the bad one */
	hostile(mk_bad_head, 2);
}

/* ---- memory updates under I/O ---------------------------------------- */

struct io_thread {
	struct vhuf *f;
	unsigned q;
	atomic_uint rounds;
	atomic_int ret;
	atomic_bool stop;
};

static void *io_loop(void *arg)
{
	struct io_thread *io = arg;

	while (atomic_load(&io->ret) == 0 && !atomic_load(&io->stop)) {
		atomic_store(&io->ret, fe_io(io->f, io->q, 64));
		atomic_fetch_add(&io->rounds, 1);
	}
	return NULL;
}

VT_CASE(memory_updates_under_io)
{
	struct tenv t;
	struct vhuf_opts o = {.mem_size = 32 << 20, .connect_timeout_ms = 3000};
	struct vhuf *f;
	struct io_thread io = {.q = 0};
	struct vhu_mem_single_msg s = {0};
	pthread_t th;
	int fd;
	uint8_t *map;

	echo_init(&t.dev, 2);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	fd = memfd_create("extra", MFD_CLOEXEC);
	VT_REQUIRE(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	map = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	VT_REQUIRE(map != MAP_FAILED);
	f = fe_open(&t, &o, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 256) == 0);
	io.f = f;
	VT_REQUIRE(pthread_create(&th, NULL, io_loop, &io) == 0);
	s.region = (struct vhu_mem_region_desc){1ull << 32, 1 << 20, (uintptr_t)map, 0};
	for (int i = 0; i < 40 && io.ret == 0; i++) {
		VT_EQ(vhuf_request(f, VHU_REQ_ADD_MEM_REGION, &s, sizeof(s), &fd, 1, true, NULL),
		      0);
		VT_EQ(vhuf_request(f, VHU_REQ_REM_MEM_REGION, &s, sizeof(s), NULL, 0, true, NULL),
		      0);
		VT_EQ(vhuf_send_mem_table(f), 0);
	}
	/* make sure I/O overlapped at least the end of the updates */
	WAIT_UNTIL(io.rounds >= 3 || io.ret != 0, 10000);
	atomic_store(&io.stop, true);
	pthread_join(th, NULL);
	VT_EQ(io.ret, 0);
	VT_CHECK(io.rounds >= 3);
	VT_CHECK(atomic_load(&t.dev.calls[OP_UPDATE_MEM]) >= 120);
	fe_close(&t, f);
	munmap(map, 1 << 20);
	close(fd);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* ---- disconnect / reconnect ------------------------------------------ */

VT_CASE(disconnect_mid_io_then_new_front_end)
{
	struct tenv t;
	struct vhuf *f;
	uint64_t out[128], in[128];

	echo_init(&t.dev, 2);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	for (int round = 0; round < 5; round++) {
		f = fe_open(&t, NULL, F_ALL, PF_ALL);
		VT_REQUIRE(f);
		VT_REQUIRE(vhuf_queue_setup(f, 0, 256) == 0);
		VT_REQUIRE(vhuf_queue_setup(f, 1, 256) == 0);
		VT_CHECK(fe_submit_n(f, 0, 128, 256, true, out, in) == 0);
		VT_CHECK(fe_submit_n(f, 1, 128, 256, true, out, in) == 0);
		vhuf_kick_force(f, 0);
		vhuf_kick_force(f, 1);
		fe_close(&t, f); /* while the workers are busy */
		VT_CHECK(tenv_healthy(&t));
	}
	tenv_stop(&t);
}

/* Take exactly n used entries with cookies 1..n, each once, data echoed. */
static void reap_exactly(struct vhuf *f, unsigned q, unsigned n, const uint64_t *out,
                         const uint64_t *in)
{
	bool seen[257] = {0};
	unsigned got = 0;

	VT_REQUIRE(n <= 256);
	while (got < n) {
		void *ck;
		uint32_t len;
		int r = vhuf_get_used(f, q, &ck, &len);
		uintptr_t i = (uintptr_t)ck;

		if (r == 0) {
			if (!vhuf_wait_call(f, q, 3000))
				break;
			continue;
		}
		VT_REQUIRE(r == 1);
		VT_REQUIRE(i >= 1 && i <= n && !seen[i]);
		seen[i] = true;
		VT_EQ(len, 256);
		VT_CHECK(memcmp(vhuf_ptr(f, out[i - 1]), vhuf_ptr(f, in[i - 1]), 256) == 0);
		got++;
	}
	VT_EQ(got, n);
	VT_EQ(vhuf_get_used(f, q, NULL, NULL), 0); /* and nothing more */
}

/* Same struct: the back end connection drops and comes back; the rings
 * resume from the used index and every request completes exactly once. */
VT_CASE(reconnect_resumes_rings)
{
	struct tenv t;
	struct vhuf *f;
	uint64_t out[128], in[128];

	echo_init(&t.dev, 2);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 256) == 0);
	VT_REQUIRE(fe_submit_n(f, 0, 128, 256, true, out, in) == 0);
	vhuf_kick_force(f, 0);
	VT_REQUIRE(fe_reconnect(&t, f, F_ALL, PF_ALL) == 0);
	VT_REQUIRE(vhuf_queue_restart(f, 0) == 0);
	vhuf_kick_force(f, 0);
	reap_exactly(f, 0, 128, out, in);
	VT_EQ(fe_io(f, 0, 300), 0);
	/* A stop/restart cycle on the new connection too. */
	{
		uint32_t base;

		VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
		VT_EQ(base, (128 + 300) & 0xffff);
		VT_EQ(vhuf_queue_restart(f, 0), 0);
		VT_EQ(fe_io(f, 0, 10), 0);
	}
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* Requests the device popped but never completed when the front end went
 * away are handed out again on the next connection. */
VT_CASE(reconnect_redoes_held_requests)
{
	struct tenv t;
	struct vhuf *f;
	uint64_t out[64], in[64];

	echo_init(&t.dev, 1);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 128) == 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	atomic_store(&t.dev.held, 0);
	atomic_store(&t.dev.hold, true);
	VT_REQUIRE(fe_submit_n(f, 0, 64, 256, true, out, in) == 0);
	vhuf_kick_force(f, 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&t.dev.held) == 64, 3000));
	atomic_store(&t.dev.hold, false);
	VT_REQUIRE(fe_reconnect(&t, f, F_ALL, PF_ALL) == 0);
	VT_REQUIRE(vhuf_queue_restart(f, 0) == 0);
	vhuf_kick_force(f, 0);
	reap_exactly(f, 0, 64, out, in);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* INFLIGHT_SHMFD: the front end keeps the inflight fd across the
 * reconnect; the back end resubmits what was in flight, each request
 * exactly once, without waiting for a new kick (the guest will not kick
 * for requests it already published). */
VT_CASE(reconnect_inflight_resubmits)
{
	struct tenv t;
	struct vhuf *f;
	struct vhu_msg *r = calloc(1, sizeof(*r));
	struct vhu_inflight_msg im = {.num_queues = 1, .queue_size = 128};
	uint64_t out[64], in[64];
	int ifd = -1;

	echo_init(&t.dev, 1);
	VT_REQUIRE(r);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_request(f, VHU_REQ_GET_INFLIGHT_FD, &im, sizeof(im), NULL, 0, false, r) ==
	           0);
	VT_REQUIRE(r->nfds == 1 && r->hdr.size == sizeof(im));
	ifd = r->fds[0];
	im = r->payload.inflight;
	VT_EQ(vhuf_request(f, VHU_REQ_SET_INFLIGHT_FD, &im, sizeof(im), &ifd, 1, true, NULL), 0);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 128) == 0);
	VT_EQ(fe_io(f, 0, 10), 0);
	atomic_store(&t.dev.held, 0);
	atomic_store(&t.dev.hold, true);
	VT_REQUIRE(fe_submit_n(f, 0, 64, 256, true, out, in) == 0);
	vhuf_kick_force(f, 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&t.dev.held) == 64, 3000));
	atomic_store(&t.dev.hold, false);

	VT_REQUIRE(fe_reconnect(&t, f, F_ALL, PF_ALL) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_SET_INFLIGHT_FD, &im, sizeof(im), &ifd, 1, true, NULL), 0);
	VT_REQUIRE(vhuf_queue_restart(f, 0) == 0);
	if (!vhuf_wait_call(f, 0, 3000)) {
		VT_CHECK(0); /* resubmission waited for a kick */
		vhuf_kick_force(f, 0);
	}
	reap_exactly(f, 0, 64, out, in);
	VT_EQ(fe_io(f, 0, 200), 0);
	fe_close(&t, f);
	close(ifd);
	free(r);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* ---- lock modes -------------------------------------------------------- */

struct par {
	struct vhuf *f;
	unsigned q, n;
	int ret;
};

static void *par_io(void *arg)
{
	struct par *p = arg;

	p->ret = fe_io(p->f, p->q, p->n);
	return NULL;
}

/* Two worker threads (one per queue), two driver threads. */
static void concurrent_io(enum vhu_lock_mode lock, enum vhu_vring_flavour fl, bool rendezvous,
                          unsigned n)
{
	struct vhu_daemon_config cfg = {.lock = lock, .vring_flavour = fl};
	struct tenv t;
	struct vhuf *f;
	struct par p[2];
	pthread_t th[2];

	echo_init(&t.dev, 2);
	t.dev.nthreads = 2;
	t.dev.masks[0] = 1;
	t.dev.masks[1] = 2;
	VT_REQUIRE(tenv_start(&t, &cfg) == 0);
	atomic_store(&t.dev.max_inside, 0);
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 128) == 0 && vhuf_queue_setup(f, 1, 128) == 0);
	atomic_store(&t.dev.rendezvous, rendezvous);
	for (unsigned i = 0; i < 2; i++) {
		p[i] = (struct par){f, i, n, -1};
		VT_REQUIRE(pthread_create(&th[i], NULL, par_io, &p[i]) == 0);
	}
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		VT_EQ(p[i].ret, 0);
	}
	atomic_store(&t.dev.rendezvous, false);
	VT_EQ(atomic_load(&t.dev.qthread[0]), 0);
	VT_EQ(atomic_load(&t.dev.qthread[1]), 1);
	if (rendezvous) {
		/* callbacks of different threads ran at the same time */
		VT_CHECK(atomic_load(&t.dev.met) >= 1);
	} else if (lock != VHU_LOCK_NONE) {
		/* handle_event is a [write] method: never two at once */
		VT_EQ(atomic_load(&t.dev.max_inside), 1);
	}
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

VT_CASE(lock_none_runs_queues_concurrently)
{
	concurrent_io(VHU_LOCK_NONE, VHU_VRING_PLAIN, true, 1);
}

VT_CASE(lock_mutex_serialises_callbacks)
{
	concurrent_io(VHU_LOCK_MUTEX, VHU_VRING_MUTEX, false, 500);
}

VT_CASE(lock_rwlock_serialises_writers)
{
	concurrent_io(VHU_LOCK_RWLOCK, VHU_VRING_RWLOCK, false, 500);
}

VT_CASE(lock_none_concurrent_io_with_vring_mutex)
{
	concurrent_io(VHU_LOCK_NONE, VHU_VRING_MUTEX, false, 500);
}

/* ---- listeners, exit events, thread mappings ------------------------- */

VT_CASE(listener_reaches_handle_event)
{
	struct tenv t;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), other = eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1;

	echo_init(&t.dev, 2);
	t.dev.nthreads = 2;
	t.dev.masks[0] = 1;
	t.dev.masks[1] = 2;
	t.dev.listen_fd = efd;
	VT_REQUIRE(efd >= 0 && other >= 0);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	VT_EQ(vhu_daemon_add_listener(t.d, 1, efd, EPOLLIN, 7), 0);
	VT_EQ(vhu_daemon_add_listener(t.d, 1, efd, EPOLLIN, 8), -EEXIST);
	VT_EQ(vhu_daemon_add_listener(t.d, 0, other, EPOLLIN, 1), -EINVAL); /* a queue id */
	VT_EQ(vhu_daemon_add_listener(t.d, 0, other, EPOLLIN, 0xffff), -EINVAL);
	VT_EQ(vhu_daemon_add_listener(t.d, 2, other, EPOLLIN, 9), -EINVAL); /* no thread 2 */
	VT_EQ(write(efd, &one, 8), 8);
	VT_CHECK(WAIT_UNTIL(atomic_load(&t.dev.listener_hits) >= 1, 3000));
	VT_EQ(atomic_load(&t.dev.listener_id), 7);
	VT_EQ(atomic_load(&t.dev.listener_thread), 1);
	/* it works with a front end connected too, alongside queue I/O */
	{
		struct vhuf *f = fe_open(&t, NULL, F_ALL, PF_ALL);
		unsigned hits = atomic_load(&t.dev.listener_hits);

		VT_REQUIRE(f);
		VT_REQUIRE(vhuf_queue_setup(f, 1, 64) == 0);
		VT_EQ(write(efd, &one, 8), 8);
		VT_EQ(fe_io(f, 1, 50), 0);
		VT_CHECK(WAIT_UNTIL(atomic_load(&t.dev.listener_hits) > hits, 3000));
		fe_close(&t, f);
	}
	VT_EQ(vhu_daemon_del_listener(t.d, 1, efd), 0);
	VT_CHECK(vhu_daemon_del_listener(t.d, 1, efd) < 0);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
	close(efd);
	close(other);
}

VT_CASE(exit_event_stops_its_worker)
{
	struct tenv t;
	struct vhuf *f;
	uint64_t one = 1;

	echo_init(&t.dev, 2);
	t.dev.nthreads = 2;
	t.dev.masks[0] = 1;
	t.dev.masks[1] = 2;
	t.dev.exit_fds[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t.dev.exit_fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	VT_REQUIRE(t.dev.exit_fds[0] >= 0 && t.dev.exit_fds[1] >= 0);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	VT_CHECK(atomic_load(&t.dev.calls[OP_EXIT_EVENT]) >= 2);
	VT_EQ(vhu_daemon_num_threads(t.d), 2);
	VT_EQ(write(t.dev.exit_fds[1], &one, 8), 8);
	/* worker 0 still serves queue 0 */
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(fe_io(f, 0, 50), 0);
	fe_close(&t, f);
	VT_CHECK(tenv_at_baseline(&t));
	/* and the daemon shuts down cleanly with one worker gone */
	tenv_stop(&t);
	close(t.dev.exit_fds[0]);
	close(t.dev.exit_fds[1]);
}

static void check_mapping(unsigned nq, unsigned nthreads, const uint64_t *masks, const int *expect)
{
	struct tenv t;
	struct vhuf *f;

	echo_init(&t.dev, nq);
	t.dev.nthreads = nthreads;
	for (unsigned i = 0; i < nthreads; i++)
		t.dev.masks[i] = masks[i];
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	VT_EQ(vhu_daemon_num_threads(t.d), nthreads);
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	for (unsigned q = 0; q < nq; q++)
		VT_REQUIRE(vhuf_queue_setup(f, q, 64) == 0);
	for (unsigned q = 0; q < nq; q++) {
		VT_EQ(fe_io(f, q, 20), 0);
		VT_EQ(atomic_load(&t.dev.qthread[q]), expect[q]);
	}
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	VT_CHECK(vhu_daemon_vring(t.d, nq) == NULL);
	tenv_stop(&t);
}

VT_CASE(queues_per_thread_two_threads)
{
	check_mapping(4, 2, (uint64_t[]){0x5, 0xa}, (int[]){0, 1, 0, 1});
}

VT_CASE(queues_per_thread_three_threads)
{
	check_mapping(5, 3, (uint64_t[]){0x10, 0x3, 0xc}, (int[]){1, 1, 2, 2, 0});
}

VT_CASE(daemon_new_rejects_bad_ops)
{
	struct echo e;
	struct vhu_backend_ops ops = echo_ops;
	struct vhu_daemon *d = NULL;

	echo_init(&e, 2);
	ops.handle_event = NULL;
	VT_EQ(vhu_daemon_new(&d, &ops, &e, NULL), -EINVAL);
	ops = echo_ops;
	ops.num_queues = NULL;
	VT_EQ(vhu_daemon_new(&d, &ops, &e, NULL), -EINVAL);
	ops = echo_ops;
	ops.features = NULL;
	VT_EQ(vhu_daemon_new(&d, &ops, &e, NULL), -EINVAL);
	VT_CHECK(d == NULL);
}

/* ---- notification suppression ----------------------------------------- */

struct used {
	uint16_t flags, idx;
	struct {
		uint32_t id, len;
	} ring[];
};

static int submit_echo(struct vhuf *f, unsigned q, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct vhuf_buf b[2] = {{vhuf_alloc(f, 64, 8), 64, false},
		                        {vhuf_alloc(f, 64, 8), 64, true}};
		int r = vhuf_submit(f, q, b, 2, false, (void *)(uintptr_t)(100 + i));

		if (r < 0)
			return r;
	}
	return 0;
}

static uint16_t used_idx(struct vhuf *f, unsigned q)
{
	return __atomic_load_n(&((struct used *)vhuf_ring_used(f, q))->idx, __ATOMIC_ACQUIRE);
}

/* Call suppression on queue 0: with EVENT_IDX (evidx) the driver moves
 * used_event and the device publishes avail_event; without it the driver
 * sets VRING_AVAIL_F_NO_INTERRUPT and the device leaves
 * VRING_USED_F_NO_NOTIFY clear when idle.  Either way three completions
 * stay quiet and, suppression lifted, the next one interrupts. */
static void suppression_case(bool evidx)
{
	uint64_t features = evidx ? F_ALL : F_ALL & ~VHU_BIT(VHU_F_RING_EVENT_IDX);
	struct tenv t;
	struct vhuf *f;
	struct vhu_vring_stats s0, s1;
	struct vhu_vring *vr;
	struct avail *a;
	struct used *u;
	void *ck;
	uint32_t len;
	unsigned n = 0, d0;

	echo_init(&t.dev, 1);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	vr = vhu_daemon_vring(t.d, 0);
	f = fe_open(&t, NULL, features, PF_ALL);
	VT_REQUIRE(f && !!(vhuf_features(f) & VHU_BIT(VHU_F_RING_EVENT_IDX)) == evidx);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	a = vhuf_ring_avail(f, 0);
	u = vhuf_ring_used(f, 0);
	d0 = atomic_load(&t.dev.done[0]);
	VT_EQ(fe_io(f, 0, 4), 0);
	VT_REQUIRE(echo_quiesce(&t.dev, 0, d0 + 4));
	wait_event(vhuf_call_fd(f, 0), 0);
	if (evidx) /* the device asked for a kick at the next avail entry */
		VT_EQ(__atomic_load_n((uint16_t *)&u->ring[64], __ATOMIC_ACQUIRE), 4);
	else
		VT_EQ(__atomic_load_n(&u->flags, __ATOMIC_ACQUIRE) & 1, 0);
	vhu_vring_get_stats(vr, &s0);

	/* used_event 14: interrupt only once entry 14 is used; or NO_INTERRUPT */
	if (evidx)
		__atomic_store_n(&a->ring[64], 14, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&a->flags, 1, __ATOMIC_RELEASE);
	VT_REQUIRE(submit_echo(f, 0, 3) == 0);
	VT_EQ(vhuf_kick(f, 0), 1);
	VT_REQUIRE(echo_quiesce(&t.dev, 0, d0 + 7));
	VT_EQ(used_idx(f, 0), 7);
	VT_EQ(wait_fd(vhuf_call_fd(f, 0), 0), 0);
	vhu_vring_get_stats(vr, &s1);
	VT_EQ(s1.calls, s0.calls);
	if (evidx) {
		VT_CHECK(s1.suppressed > s0.suppressed);
		VT_EQ(__atomic_load_n((uint16_t *)&u->ring[64], __ATOMIC_ACQUIRE), 7);
	}

	/* used_event = 7 or no flag: the next completion interrupts */
	if (evidx)
		__atomic_store_n(&a->ring[64], 7, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&a->flags, 0, __ATOMIC_RELEASE);
	VT_REQUIRE(submit_echo(f, 0, 1) == 0);
	VT_EQ(vhuf_kick(f, 0), 1);
	VT_EQ(vhuf_wait_call(f, 0, 3000), 1);
	while (vhuf_get_used(f, 0, &ck, &len) == 1)
		n++;
	VT_EQ(n, 4);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* EVENT_IDX both ways: the device honours used_event for calls and
 * publishes avail_event for kicks. */
VT_CASE(event_idx_suppression)
{
	suppression_case(true);
}

/* Without EVENT_IDX: VRING_AVAIL_F_NO_INTERRUPT silences calls and the
 * device leaves VRING_USED_F_NO_NOTIFY clear when idle. */
VT_CASE(flags_suppression_without_event_idx)
{
	suppression_case(false);
}

/* Adaptive polling on: I/O stays correct on two queues and two threads. */
VT_CASE(poll_mode_io)
{
	struct vhu_daemon_config cfg = {.poll_us = 2000};
	struct tenv t;
	struct vhuf *f;
	struct par p[2];
	pthread_t th[2];

	echo_init(&t.dev, 2);
	t.dev.nthreads = 2;
	t.dev.masks[0] = 1;
	t.dev.masks[1] = 2;
	VT_REQUIRE(tenv_start(&t, &cfg) == 0);
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 256) == 0 && vhuf_queue_setup(f, 1, 256) == 0);
	for (unsigned i = 0; i < 2; i++) {
		p[i] = (struct par){f, i, 2000, -1};
		VT_REQUIRE(pthread_create(&th[i], NULL, par_io, &p[i]) == 0);
	}
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		VT_EQ(p[i].ret, 0);
	}
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* INBAND_NOTIFICATIONS: a ring without a kick fd is kicked with
 * VHOST_USER_VRING_KICK messages. */
VT_CASE(inband_vring_kick)
{
	struct tenv t;
	struct vhuf *f;
	uint64_t v = VHU_VRING_NOFD_MASK;
	struct vhu_vring_state s = {0, 0};
	void *ck;
	uint32_t len;

	echo_init(&t.dev, 1);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	f = fe_open(&t, NULL, F_ALL, PF_ALL | VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS));
	VT_REQUIRE(f && (vhuf_protocol_features(f) & VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS)));
	VT_REQUIRE(vhuf_queue_setup(f, 0, 64) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_SET_VRING_KICK, &v, 8, NULL, 0, true, NULL), 0);
	VT_REQUIRE(submit_echo(f, 0, 2) == 0);
	VT_EQ(vhuf_request(f, VHU_REQ_VRING_KICK, &s, sizeof(s), NULL, 0, true, NULL), 0);
	VT_EQ(vhuf_wait_call(f, 0, 3000), 1);
	VT_EQ(vhuf_get_used(f, 0, &ck, &len), 1);
	VT_EQ(vhuf_get_used(f, 0, &ck, &len), 1);
	s.num = 1; /* reserved, must be 0 */
	VT_CHECK(is_nack(vhuf_request(f, VHU_REQ_VRING_KICK, &s, sizeof(s), NULL, 0, true, NULL)));
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}

/* The driver itself: full rings, indirect limits, bogus used entries. */
VT_CASE(driver_limits)
{
	struct tenv t;
	struct vhuf *f;
	struct vhuf_buf b[65];
	struct used *u;
	void *ck;
	uint32_t len;
	unsigned n = 0;

	echo_init(&t.dev, 1);
	VT_REQUIRE(tenv_start(&t, NULL) == 0);
	f = fe_open(&t, NULL, F_ALL, PF_ALL);
	VT_REQUIRE(f);
	VT_EQ(vhuf_queue_setup(f, 0, 100), -EINVAL);
	VT_EQ(vhuf_queue_setup(f, 0, 0), -EINVAL);
	VT_REQUIRE(vhuf_queue_setup(f, 0, 8) == 0);
	VT_EQ(vhuf_free_descs(f, 0), 8);
	for (unsigned i = 0; i < 65; i++)
		b[i] = (struct vhuf_buf){vhuf_alloc(f, 32, 8), 32, i > 0};
	for (unsigned i = 0; i < 4; i++)
		VT_CHECK(vhuf_submit(f, 0, b, 2, false, (void *)(uintptr_t)(i + 1)) >= 0);
	VT_EQ(vhuf_free_descs(f, 0), 0);
	VT_EQ(vhuf_submit(f, 0, b, 2, false, NULL), -ENOSPC);
	VT_EQ(vhuf_submit(f, 0, b, 1, true, NULL), -ENOSPC);
	VT_EQ(vhuf_submit(f, 0, b, 0, false, NULL), -EINVAL);
	vhuf_kick(f, 0);
	while (n < 4) {
		if (vhuf_get_used(f, 0, &ck, &len) == 1)
			n++;
		else if (!vhuf_wait_call(f, 0, 3000))
			break;
	}
	VT_EQ(n, 4);
	VT_EQ(vhuf_free_descs(f, 0), 8);
	/* 64 descriptors fit an indirect table, 65 do not */
	VT_EQ(vhuf_submit(f, 0, b, 65, true, NULL), -EINVAL);
	VT_CHECK(vhuf_submit(f, 0, b, 64, true, (void *)9) >= 0);
	VT_EQ(vhuf_free_descs(f, 0), 7);
	vhuf_kick(f, 0);
	VT_EQ(vhuf_wait_call(f, 0, 3000), 1);
	VT_EQ(vhuf_get_used(f, 0, &ck, &len), 1);
	VT_CHECK(ck == (void *)9 && len == 32); /* one readable 32-byte buffer echoed */
	VT_EQ(vhuf_free_descs(f, 0), 8);
	/* a "device" returning a head that is not in flight */
	VT_REQUIRE(echo_quiesce(&t.dev, 0, 0));
	u = vhuf_ring_used(f, 0);
	u->ring[u->idx & 7].id = 5;
	__atomic_store_n(&u->idx, (uint16_t)(u->idx + 1), __ATOMIC_RELEASE);
	VT_EQ(vhuf_get_used(f, 0, &ck, &len), -EIO);
	fe_close(&t, f);
	VT_CHECK(tenv_healthy(&t));
	tenv_stop(&t);
}
