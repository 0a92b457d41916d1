/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET_VRING_BASE with chains in flight (a migration's switch-over, or any
 * device stop): the library stops handing out chains and waits for the
 * device to push what it holds, so that the base it replies with has
 * everything before it completed and nothing after it touched.  The front
 * end resumes there (as the destination does) and sees every request
 * complete exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migdev.h"
#include "vt.h"

VT_MAIN

#define FEAT                                                                                       \
	(VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |                                \
	 VHU_BIT(VHU_F_RING_INDIRECT_DESC))
#define PF  (VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_LOG_SHMFD) | VHU_BIT(VHU_PF_REPLY_ACK))
#define MEM (4u << 20)
#define N   24

struct reqs {
	uint64_t out, in[N];
	unsigned completed[N]; /* used entries seen per request */
};

/* Submit requests [from, to) of r on queue 0 (8-byte seq + one page). */
static int submit(struct vhuf *f, struct reqs *r, unsigned from, unsigned to)
{
	for (unsigned i = from; i < to; i++) {
		uint64_t seq = i + 1;
		struct vhuf_buf b[2] = {{r->out + 8 * i, 8, false}, {r->in[i], 4096, true}};
		int ret;

		memcpy(vhuf_ptr(f, r->out + 8 * i), &seq, 8);
		ret = vhuf_submit(f, 0, b, 2, false, (void *)(uintptr_t)(i + 1));
		if (ret < 0)
			return ret;
	}
	vhuf_kick(f, 0);
	return 0;
}

/* Take the used entries there are now; checks each one's bytes. */
static unsigned reap(struct vhuf *f, struct reqs *r)
{
	unsigned n = 0;
	void *cookie;

	while (vhuf_get_used(f, 0, &cookie, NULL) == 1) {
		unsigned i = (unsigned)(uintptr_t)cookie - 1;
		const uint8_t *p = vhuf_ptr(f, r->in[i]);
		bool ok = i < N;

		for (unsigned k = 0; ok && k < 4096; k++)
			ok = p[k] == mig_pattern(i + 1, k);
		VT_CHECK(ok);
		if (i < N)
			r->completed[i]++;
		n++;
	}
	return n;
}

static int setup(struct mig_env *env, struct vhuf **f, struct reqs *r, uint64_t feat,
                 const struct vhu_daemon_config *cfg)
{
	if (mig_env_start(env, cfg))
		return -EIO;
	*f = mig_fe_open(env->path, 1, 64, feat, PF, MEM);
	if (!*f)
		return -EIO;
	memset(r, 0, sizeof(*r));
	r->out = vhuf_alloc(*f, 8 * N, 4096);
	for (unsigned i = 0; i < N; i++)
		r->in[i] = vhuf_alloc(*f, 4096, 4096);
	return 0;
}

/* N/2 requests held by the device, completing 150 ms later from another
 * thread: the stop replies only after they were pushed. */
static void waits_for_async(bool packed)
{
	struct mig_env env;
	struct reqs r;
	struct vhuf *f;
	uint32_t base = 0;

	mig_dev_init(&env.dev, 1);
	env.dev.complete = MIG_ASYNC;
	env.dev.delay_ms = 150;
	VT_REQUIRE(setup(&env, &f, &r, FEAT | (packed ? VHU_BIT(VHU_F_RING_PACKED) : 0), NULL) ==
	           0);
	VT_EQ(submit(f, &r, 0, N / 2), 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&env.dev.popped) == N / 2, 3000));
	VT_EQ(atomic_load(&env.dev.pushed), 0); /* still in flight */
	VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
	/* The reply came after every held chain was pushed. */
	VT_EQ(atomic_load(&env.dev.pushed), N / 2);
	VT_EQ(packed ? base & 0x7fff : base, packed ? 2 * (N / 2) % 64 : N / 2);
	VT_EQ(reap(f, &r), N / 2);
	VT_CHECK(atomic_load(&env.dev.stop_seen) > 0); /* kicked at the stop */
	/* Resume where the back end said (the destination), more I/O. */
	VT_EQ(vhuf_queue_restart(f, 0), 0);
	VT_EQ(submit(f, &r, N / 2, N), 0);
	VT_CHECK(WAIT_UNTIL(reap(f, &r) == 0 && atomic_load(&env.dev.pushed) == N, 3000));
	reap(f, &r);
	for (unsigned i = 0; i < N; i++)
		VT_EQ(r.completed[i], 1); /* none lost, none twice */
	vhuf_close(f);
	mig_env_stop(&env);
}

VT_CASE(stop_waits_for_chains_in_flight_split)
{
	waits_for_async(false);
}

VT_CASE(stop_waits_for_chains_in_flight_packed)
{
	waits_for_async(true);
}

/* A device that never completes: the stop gives up after drain_ms, says so,
 * and the late completion is not pushed into the stopped ring. */
VT_CASE(stop_gives_up_after_drain_ms)
{
	struct vhu_daemon_config cfg = {.drain_ms = 200};
	struct mig_env env;
	struct reqs r;
	struct vhuf *f;
	uint32_t base = 0;

	mig_dev_init(&env.dev, 1);
	env.dev.complete = MIG_HOLD;
	VT_REQUIRE(setup(&env, &f, &r, FEAT, &cfg) == 0);
	VT_EQ(submit(f, &r, 0, 4), 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&env.dev.popped) == 4, 3000));
	VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
	VT_EQ(base, 4);
	VT_EQ(atomic_load(&env.dev.pushed), 0);
	mig_release(&env.dev);
	usleep(50 * 1000);
	VT_EQ(atomic_load(&env.dev.pushed), 0); /* the ring is stopped */
	VT_EQ(reap(f, &r), 0);
	/* The daemon goes on serving. */
	VT_EQ(vhuf_queue_restart(f, 0), 0);
	VT_EQ(submit(f, &r, 4, 8), 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&env.dev.pushed) == 4, 3000));
	VT_CHECK(WAIT_UNTIL(r.completed[7] == 1 || (reap(f, &r), r.completed[7] == 1), 3000));
	vhuf_close(f);
	mig_env_stop(&env);
}

struct stopper {
	struct vhuf *f;
	int ret;
};

static void *stop_thread(void *arg)
{
	struct stopper *s = arg;

	s->ret = vhuf_queue_stop(s->f, 0, NULL);
	return NULL;
}

/* vhu_daemon_stop() while a stop waits: the daemon stops instead of
 * waiting out the bound (10 minutes here: far past the test's timeout). */
VT_CASE(daemon_stop_ends_the_wait)
{
	struct vhu_daemon_config cfg = {.drain_ms = 600000};
	struct mig_env env;
	struct stopper s;
	struct reqs r;
	pthread_t th;

	mig_dev_init(&env.dev, 1);
	env.dev.complete = MIG_HOLD;
	VT_REQUIRE(setup(&env, &s.f, &r, FEAT, &cfg) == 0);
	VT_EQ(submit(s.f, &r, 0, 2), 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&env.dev.popped) == 2, 3000));
	VT_REQUIRE(pthread_create(&th, NULL, stop_thread, &s) == 0);
	usleep(100 * 1000);
	vhu_daemon_stop(env.d);
	vhu_daemon_wait(env.d);
	pthread_join(th, NULL); /* replied, or the connection went away */
	vhuf_close(s.f);
	mig_release(&env.dev);
	mig_env_stop(&env);
}

/* Nothing in flight: the stop replies at once with the next index. */
VT_CASE(stop_without_chains_in_flight)
{
	struct mig_env env;
	struct reqs r;
	struct vhuf *f;
	uint32_t base = 0;

	mig_dev_init(&env.dev, 1);
	VT_REQUIRE(setup(&env, &f, &r, FEAT, NULL) == 0);
	VT_EQ(submit(f, &r, 0, 5), 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&env.dev.pushed) == 5, 3000));
	VT_EQ(vhuf_queue_stop(f, 0, &base), 0);
	VT_EQ(base, 5);
	VT_EQ(reap(f, &r), 5);
	VT_EQ(atomic_load(&env.dev.stop_seen), 0);
	vhuf_close(f);
	mig_env_stop(&env);
}
