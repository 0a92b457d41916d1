/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Listener rules (daemon.h, vhu_daemon_add_listener): level-triggered by
 * default, EPOLLET passed through, events delivered with no front end
 * connected, listeners kept across front ends, deleting listeners from a
 * callback and from another thread, fds epoll refuses, id limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>

#include "vhu/frontend.h"
#include "vhu/vhu.h"
#include "vt.h"

VT_MAIN

#define NQ   2
#define ID_A 2 /* ids start at num_queues */
#define ID_B 3

struct ldev {
	int fd_a, fd_b;    /* eventfds behind listeners A and B */
	bool drain;        /* read the eventfd when it fires */
	bool del_b_from_a; /* A's callback deletes (and closes) B */
	bool del_self;     /* A's callback deletes A */
	struct vhu_daemon *d;
	atomic_uint hits_a, hits_b;
	atomic_uint no_frontend; /* events seen while no ring was started */
	atomic_uint pops;        /* successful pops from a listener event */
	atomic_bool in_b;        /* inside B's callback */
	atomic_bool hold_b;      /* B's callback waits while set */
	/* deleting_another_listener_drops_its_pending_event: */
	atomic_int b_live;        /* B's eventfd, taken by A's callback */
	atomic_bool b_deleted;    /* A deleted B */
	atomic_uint after_delete; /* B called after A deleted it */
	atomic_uint deletions;
};

static unsigned l_nq(void *dev)
{
	return NQ;
}

static int l_handle(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                    unsigned nvrings, unsigned thread)
{
	struct ldev *l = dev;
	struct iovec iov[2];
	struct vhu_chain c = {.iov = iov, .iov_max = 2};
	uint64_t v;

	if (!vhu_vring_started(vrings[0]))
		atomic_fetch_add(&l->no_frontend, 1);
	if (ev == ID_A) {
		atomic_fetch_add(&l->hits_a, 1);
		if (l->drain && read(l->fd_a, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		if (vhu_vring_pop(vrings[0], &c) == 1) {
			atomic_fetch_add(&l->pops, 1);
			vhu_vring_push(vrings[0], &c, 0);
			vhu_vring_notify(vrings[0]);
		}
		if (l->del_self)
			vhu_daemon_del_listener(l->d, thread, l->fd_a);
		if (l->del_b_from_a) {
			int fd = atomic_exchange(&l->b_live, -1);

			if (fd >= 0) {
				atomic_store(&l->b_deleted, true);
				vhu_daemon_del_listener(l->d, thread, fd);
				close(fd);
				atomic_fetch_add(&l->deletions, 1);
			}
		}
	} else if (ev == ID_B) {
		if (atomic_load(&l->b_deleted))
			atomic_fetch_add(&l->after_delete, 1);
		atomic_store(&l->in_b, true);
		atomic_fetch_add(&l->hits_b, 1);
		while (atomic_load(&l->hold_b))
			usleep(1000);
		if (l->fd_b >= 0 && read(l->fd_b, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		atomic_store(&l->in_b, false);
	}
	return 0;
}

static const struct vhu_backend_ops l_ops = {
    .num_queues = l_nq,
    .fixed = {.max_queue_size = 64,
              .features = VHU_BIT(VHU_F_VERSION_1),
              .protocol_features = VHU_BIT(VHU_PF_REPLY_ACK)},
    .handle_event = l_handle,
};

static void kick_fd(int fd)
{
	uint64_t one = 1;

	VT_CHECK(write(fd, &one, sizeof(one)) == sizeof(one));
}

static int l_setup(struct ldev *l, struct vhu_daemon **d)
{
	memset(l, 0, sizeof(*l));
	l->fd_a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->fd_b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	atomic_store(&l->b_live, -1);
	if (vhu_daemon_new(d, &l_ops, l, NULL))
		return -1;
	l->d = *d;
	return 0;
}

static void l_teardown(struct ldev *l, struct vhu_daemon *d)
{
	vhu_daemon_free(d);
	close(l->fd_a);
	if (l->fd_b >= 0)
		close(l->fd_b);
}

/* A fired listener that is not drained fires again (level-triggered); once
 * drained it goes quiet.  With EPOLLET it fires once per write. */
VT_CASE(level_triggered_by_default_edge_triggered_on_request)
{
	struct vhu_daemon *d;
	struct ldev l;
	unsigned h;

	VT_REQUIRE(l_setup(&l, &d) == 0);
	VT_REQUIRE(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN, ID_A) == 0);
	kick_fd(l.fd_a);
	VT_CHECK(VT_WAIT_FOR(atomic_load(&l.hits_a) >= 20)); /* not drained: again and again */
	l.drain = true;
	VT_CHECK(VT_WAIT_FOR(atomic_load(&l.hits_a) == (h = atomic_load(&l.hits_a)) &&
	                     (vt_sleep_ms(20), atomic_load(&l.hits_a) == h)));
	VT_EQ(vhu_daemon_del_listener(d, 0, l.fd_a), 0);

	l.drain = false;
	atomic_store(&l.hits_a, 0);
	VT_REQUIRE(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN | EPOLLET, ID_A) == 0);
	kick_fd(l.fd_a); /* still readable from before: one edge now */
	VT_CHECK(VT_WAIT_FOR(atomic_load(&l.hits_a) >= 1));
	vt_sleep_ms(30);
	VT_EQ(atomic_load(&l.hits_a), 1);
	kick_fd(l.fd_a);
	VT_CHECK(VT_WAIT_FOR(atomic_load(&l.hits_a) >= 2));
	vt_sleep_ms(30);
	VT_EQ(atomic_load(&l.hits_a), 2);
	l_teardown(&l, d);
}

/* Listeners belong to the daemon: they fire before any front end (rings
 * not started: pop finds nothing), and they keep firing for the next front
 * end after one went. */
VT_CASE(listeners_fire_without_a_front_end_and_across_front_ends)
{
	char path[] = "/tmp/vhu-api-lis-XXXXXX";
	char sock[64];
	struct vhuf_opts o = {.mem_size = 1 << 20, .connect_timeout_ms = 5000};
	struct vhu_daemon *d;
	struct ldev l;
	struct vhuf *f;

	VT_REQUIRE(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/l.sock", path);
	VT_REQUIRE(l_setup(&l, &d) == 0);
	l.drain = true;
	VT_REQUIRE(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN, ID_A) == 0);
	kick_fd(l.fd_a);
	VT_CHECK(VT_WAIT_FOR(atomic_load(&l.hits_a) == 1));
	VT_EQ(atomic_load(&l.no_frontend), 1);
	VT_EQ(atomic_load(&l.pops), 0);
	VT_REQUIRE(vhu_daemon_start(d, sock) == 0);
	for (unsigned round = 1; round <= 2; round++) {
		uint64_t gpa;
		struct vhuf_buf b;
		void *cookie;
		uint32_t len;

		VT_REQUIRE(vhuf_connect(&f, sock, &o) == 0);
		VT_REQUIRE(vhuf_negotiate(f, VHU_BIT(VHU_F_VERSION_1), ~0ull) == 0);
		VT_REQUIRE(vhuf_queue_setup(f, 0, 8) == 0);
		gpa = vhuf_alloc(f, 16, 8);
		b = (struct vhuf_buf){gpa, 16, true};
		VT_REQUIRE(vhuf_submit(f, 0, &b, 1, false, NULL) >= 0);
		kick_fd(l.fd_a); /* the listener, not the queue, takes the buffer */
		VT_EQ(vhuf_wait_used(f, 0, 5000, &cookie, &len), 1);
		VT_EQ(atomic_load(&l.pops), round);
		vhuf_close(f);
		VT_CHECK(VT_WAIT_FOR(vhu_daemon_connections(d) == round));
	}
	vhu_daemon_stop(d);
	VT_EQ(vhu_daemon_wait(d), 0);
	l_teardown(&l, d);
	rmdir(path);
}

/* A callback may delete its own listener (a level-triggered fd it did not
 * drain would fire forever). */
VT_CASE(deleting_its_own_listener_from_its_callback)
{
	struct vhu_daemon *d;
	struct ldev l;

	VT_REQUIRE(l_setup(&l, &d) == 0);
	l.del_self = true;
	VT_REQUIRE(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN, ID_A) == 0);
	kick_fd(l.fd_a); /* not drained */
	VT_CHECK(VT_WAIT_FOR(atomic_load(&l.hits_a) >= 1));
	vt_sleep_ms(30);
	VT_EQ(atomic_load(&l.hits_a), 1);
	VT_EQ(vhu_daemon_del_listener(d, 0, l.fd_a), -ENOENT); /* already gone */
	l_teardown(&l, d);
}

/*
 * A's callback deletes and closes listener B while the epoll batch being
 * dispatched still holds B's event (A is always ready, so B, kicked later,
 * comes after it in the batch).  B must not be called for it: its fd is
 * closed, and its number is reused by the next round's B.
 */
VT_CASE(deleting_another_listener_drops_its_pending_event)
{
	struct vhu_daemon *d;
	struct ldev l;
	unsigned rounds = 30;

	VT_REQUIRE(l_setup(&l, &d) == 0);
	l.del_b_from_a = true;
	VT_REQUIRE(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN, ID_A) == 0);
	kick_fd(l.fd_a); /* not drained: A fires in every batch */
	for (unsigned r = 1; r <= rounds; r++) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		atomic_store(&l.b_deleted, false);
		VT_REQUIRE(vhu_daemon_add_listener(d, 0, fd, EPOLLIN, ID_B) == 0);
		kick_fd(fd); /* B's event lands after A's in the ready list */
		atomic_store(&l.b_live, fd);
		VT_REQUIRE(VT_WAIT_FOR(atomic_load(&l.deletions) == r));
	}
	VT_EQ(vhu_daemon_del_listener(d, 0, l.fd_a), 0);
	VT_EQ(atomic_load(&l.after_delete), 0);
	l_teardown(&l, d);
}

static void *release_b_later(void *arg)
{
	struct ldev *l = arg;

	vt_sleep_ms(20);
	atomic_store(&l->hold_b, false);
	return NULL;
}

/* From another thread: when del_listener returns, no callback of that
 * listener runs or will start. */
VT_CASE(deleting_a_listener_from_another_thread_waits_for_its_callback)
{
	struct vhu_daemon *d;
	struct ldev l;
	unsigned hits;

	VT_REQUIRE(l_setup(&l, &d) == 0);
	atomic_store(&l.hold_b, true);
	VT_REQUIRE(vhu_daemon_add_listener(d, 0, l.fd_b, EPOLLIN, ID_B) == 0);
	kick_fd(l.fd_b);
	VT_REQUIRE(VT_WAIT_FOR(atomic_load(&l.in_b)));
	/* B's callback is running; a thread lets it finish a little later,
	 * while del_listener is (or should be) waiting for it. */
	pthread_t th;
	VT_REQUIRE(pthread_create(&th, NULL, release_b_later, &l) == 0);
	VT_EQ(vhu_daemon_del_listener(d, 0, l.fd_b), 0);
	VT_CHECK(!atomic_load(&l.in_b));
	pthread_join(th, NULL);
	hits = atomic_load(&l.hits_b);
	kick_fd(l.fd_b);
	vt_sleep_ms(30);
	VT_EQ(atomic_load(&l.hits_b), hits);
	l_teardown(&l, d);
}

/* epoll refuses regular files, directories and /dev/null: add_listener
 * says so and registers nothing; ids and threads out of range, the same fd
 * twice. */
VT_CASE(refused_fds_and_ids)
{
	struct vhu_daemon *d;
	struct ldev l;
	int file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	VT_REQUIRE(l_setup(&l, &d) == 0);
	VT_REQUIRE(file >= 0 && null >= 0 && dir >= 0);
	VT_EQ(vhu_daemon_add_listener(d, 0, file, EPOLLIN, ID_A), -EPERM);
	VT_EQ(vhu_daemon_add_listener(d, 0, null, EPOLLIN, ID_A), -EPERM);
	VT_EQ(vhu_daemon_add_listener(d, 0, dir, EPOLLIN, ID_A), -EPERM);
	VT_EQ(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN, NQ - 1), -EINVAL); /* a queue's id */
	VT_EQ(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN, 0xffff), -EINVAL);
	VT_EQ(vhu_daemon_add_listener(d, 1, l.fd_a, EPOLLIN, ID_A), -EINVAL); /* one thread */
	VT_EQ(vhu_daemon_add_listener(d, 0, -1, EPOLLIN, ID_A), -EINVAL);
	VT_EQ(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN, ID_A), 0);
	VT_EQ(vhu_daemon_add_listener(d, 0, l.fd_a, EPOLLIN, ID_B), -EEXIST);
	VT_EQ(vhu_daemon_del_listener(d, 0, file), -EPERM);
	VT_EQ(vhu_daemon_del_listener(d, 0, l.fd_b), -ENOENT);
	close(file);
	close(null);
	close(dir);
	l_teardown(&l, d);
}
