/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dirty logging, checked page by page: a migration simulated by
 * libvhu-frontend (vhuf_log_*) while queues are busy, against an in-process
 * daemon running the "mig" device (migdev.h).  Every page the device wrote
 * must have reached the simulated destination.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migdev.h"
#include "vt.h"

VT_MAIN

#define MF_FEAT                                                                                    \
	(VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |                                \
	 VHU_BIT(VHU_F_RING_INDIRECT_DESC))
#define PF_TEST                                                                                    \
	(VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_LOG_SHMFD) | VHU_BIT(VHU_PF_REPLY_ACK) |              \
	 VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS))
#define MEM (8u << 20)

struct run {
	unsigned nq, depth, wpages, rounds;
	bool packed, vm_stop_in_flight, rebase;
};

static void report(const char *what, const struct vhuf_log_report *r)
{
	fprintf(stderr, "# %s: %llu pages, %llu syncs copied %llu, %llu device marks, %llu missed",
	        what, (unsigned long long)r->pages, (unsigned long long)r->syncs,
	        (unsigned long long)r->synced, (unsigned long long)r->device_marks,
	        (unsigned long long)r->missed);
	for (unsigned i = 0; i < r->nlisted; i++)
		fprintf(stderr, " %#llx", (unsigned long long)r->missed_gpa[i]);
	fprintf(stderr, "\n");
}

/*
 * Busy queues; logging on mid-I/O; precopy rounds; then either the load
 * drains (idle switch-over) or stops submitting with requests in flight
 * (QEMU stops the VM, then GET_VRING_BASE); every queue stopped; verify.
 * Returns vhuf_log_verify's result with *rep filled.
 */
static int migrate(struct mig_env *env, const struct run *r, struct vhuf_log_report *rep,
                   unsigned long long *done, unsigned long long *bad)
{
	uint64_t feat = MF_FEAT | (r->packed ? VHU_BIT(VHU_F_RING_PACKED) : 0);
	struct vhuf *f = mig_fe_open(env->path, r->nq, 128, feat, PF_TEST, MEM);
	unsigned long long start_done;
	struct mig_load l;
	int ret = -EIO;

	if (!f)
		return -EIO;
	if (mig_load_start(&l, f, r->nq, r->depth, r->wpages) != 0)
		goto out;
	while (atomic_load(&l.done) < 50)
		usleep(1000);
	ret = vhuf_log_start(f);
	if (ret)
		goto stop;
	/* Whatever the scheduler does: requests complete while logging. */
	start_done = atomic_load(&l.done);
	for (unsigned i = 0;
	     i < r->rounds || (atomic_load(&l.done) < start_done + 2 * r->depth && i < 5000); i++) {
		if (r->rebase && i == r->rounds - 1)
			ret = vhuf_log_rebase(f);
		if (ret)
			break;
		vhuf_log_sync(f);
		usleep(2000);
	}
stop:
	mig_load_stop(&l, !r->vm_stop_in_flight);
	for (unsigned q = 0; q < r->nq; q++)
		if (vhuf_queue_stop(f, q, NULL))
			ret = -EIO;
	if (ret == 0)
		ret = vhuf_log_verify(f, rep);
	*done = atomic_load(&l.done);
	*bad = atomic_load(&l.bad);
	if (atomic_load(&l.errors))
		ret = -EPROTO;
out:
	vhuf_close(f);
	return ret;
}

static void clean_migration(enum mig_complete how, const struct run *r)
{
	struct mig_env env;
	struct vhuf_log_report rep = {0};
	unsigned long long done = 0, bad = 0;
	int ret;

	mig_dev_init(&env.dev, r->nq);
	env.dev.complete = how;
	env.dev.delay_ms = how == MIG_ASYNC ? 3 : 0;
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	ret = migrate(&env, r, &rep, &done, &bad);
	report("clean", &rep);
	VT_EQ(ret, 0);
	VT_EQ(rep.missed, 0);
	VT_CHECK(rep.device_marks > 0); /* the device did write while logged */
	VT_CHECK(rep.syncs >= 2);
	VT_CHECK(done > 100);
	VT_EQ(bad, 0);
	mig_env_stop(&env);
}

VT_CASE(split_rings_nothing_missed)
{
	struct run r = {.nq = 2, .depth = 16, .wpages = 2, .rounds = 20};

	clean_migration(MIG_NOW, &r);
}

VT_CASE(packed_rings_nothing_missed)
{
	struct run r = {.nq = 2, .depth = 16, .wpages = 2, .rounds = 20, .packed = true};

	clean_migration(MIG_NOW, &r);
}

/* Completions pushed from a listener after a completion thread wrote the
 * buffers (vhu-blk's io_uring path), requests still in flight when the
 * "VM" stops: GET_VRING_BASE waits for them, and they are logged. */
VT_CASE(async_completions_in_flight_at_stop)
{
	struct run r = {.nq = 2, .depth = 32, .wpages = 1, .rounds = 15, .vm_stop_in_flight = true};

	clean_migration(MIG_ASYNC, &r);
	r.packed = true;
	clean_migration(MIG_ASYNC, &r);
}

/*
 * Chains held by the device (I/O in flight) across a change the front end
 * makes while logging; they complete after it, with no later write to
 * their pages, and must still be logged.
 */
static void held_across(int (*change)(struct vhuf *f), bool packed)
{
	uint64_t feat = MF_FEAT | (packed ? VHU_BIT(VHU_F_RING_PACKED) : 0);
	struct vhuf_log_report rep = {0};
	struct mig_env env;
	struct mig_load l;
	struct vhuf *f;

	mig_dev_init(&env.dev, 1);
	env.dev.complete = MIG_HOLD;
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	f = mig_fe_open(env.path, 1, 128, feat, PF_TEST, MEM);
	VT_REQUIRE(f);
	VT_REQUIRE(mig_load_start(&l, f, 1, 32, 1) == 0);
	VT_CHECK(WAIT_UNTIL(atomic_load(&env.dev.popped) == 32, 5000));
	VT_EQ(vhuf_log_start(f), 0);
	vhuf_log_sync(f);
	VT_EQ(change(f), 0);
	atomic_store(&l.drain, true);
	atomic_store(&l.stop, true); /* nothing after: the held ones are the last writes */
	mig_release(&env.dev);
	mig_load_stop(&l, true);
	VT_EQ(atomic_load(&l.done), 32);
	VT_EQ(atomic_load(&l.bad), 0);
	VT_EQ(vhuf_queue_stop(f, 0, NULL), 0);
	VT_EQ(vhuf_log_verify(f, &rep), 0);
	report("held across", &rep);
	VT_CHECK(rep.device_marks >= 32);
	vhuf_close(f);
	mig_env_stop(&env);
}

/* QEMU re-sends the memory table while logging (hot-plug): the mappings
 * of unchanged regions stay, so completions of chains popped before it
 * are still translated and logged. */
VT_CASE(mem_table_resent_while_logging)
{
	held_across(vhuf_send_mem_table, false);
}

/* QEMU replaces the log while logging (memory hot-plug resizes it). */
VT_CASE(log_base_replaced_while_logging)
{
	struct run r = {.nq = 2, .depth = 16, .wpages = 2, .rounds = 20, .rebase = true};

	clean_migration(MIG_NOW, &r);
	held_across(vhuf_log_rebase, false);
	held_across(vhuf_log_rebase, true);
}

/* A device that fills its buffers but reports `how`: returns what the
 * migration's check said, with *rep. */
static int reporting(enum mig_report how, struct vhuf_log_report *rep)
{
	struct run r = {.nq = 1, .depth = 16, .wpages = 2, .rounds = 10};
	unsigned long long done = 0, bad = 0;
	struct mig_env env;
	int ret;

	mig_dev_init(&env.dev, 1);
	env.dev.report = how;
	if (mig_env_start(&env, NULL))
		return -EIO;
	ret = migrate(&env, &r, rep, &done, &bad);
	report(how == MIG_LIE ? "liar" : "log_write", rep);
	if (bad)
		ret = -EIO;
	mig_env_stop(&env);
	return ret;
}

/* The checker is a real check: a device that writes more than it reports
 * (and does not log the rest) is caught. */
VT_CASE(unlogged_writes_are_detected)
{
	struct vhuf_log_report rep = {0};

	VT_EQ(reporting(MIG_LIE, &rep), -EFAULT);
	VT_CHECK(rep.missed > 0);
	VT_CHECK(rep.nlisted > 0);
}

/* ... unless it marks them with vhu_vring_log_write(). */
VT_CASE(log_write_covers_bytes_past_written)
{
	struct vhuf_log_report rep = {0};

	VT_EQ(reporting(MIG_LIE_LOGGED, &rep), 0);
	VT_EQ(rep.missed, 0);
}

/* ---- raw log: LOG_ALL off, SET_LOG_FD, the default offer --------------- */

struct raw_log {
	int fd;
	uint8_t *map;
	size_t len;
};

static int raw_log_set(struct vhuf *f, struct raw_log *lg)
{
	struct vhu_log_msg lm = {.mmap_size = MEM / 4096 / 8, .mmap_offset = 0};
	struct vhu_msg *r = calloc(1, sizeof(*r));
	int ret = -ENOMEM;

	lg->len = 4096;
	lg->fd = memfd_create("raw-log", MFD_CLOEXEC);
	if (r && lg->fd >= 0 && ftruncate(lg->fd, (off_t)lg->len) == 0)
		lg->map = mmap(NULL, lg->len, PROT_READ | PROT_WRITE, MAP_SHARED, lg->fd, 0);
	if (r && lg->map && lg->map != MAP_FAILED)
		ret = vhuf_request(f, VHU_REQ_SET_LOG_BASE, &lm, sizeof(lm), &lg->fd, 1, false, r);
	if (ret == 0 && (r->hdr.size != 8 || r->payload.u64))
		ret = -EIO;
	free(r);
	return ret;
}

static unsigned raw_log_bits(const struct raw_log *lg)
{
	unsigned n = 0;

	for (size_t i = 0; i < lg->len; i++)
		n += (unsigned)__builtin_popcount(lg->map[i]);
	return n;
}

static void raw_log_free(struct raw_log *lg)
{
	if (lg->map && lg->map != MAP_FAILED)
		munmap(lg->map, lg->len);
	if (lg->fd >= 0)
		close(lg->fd);
}

/* Run n requests on queue 0 to completion (bytes checked). */
static int run_requests(struct vhuf *f, unsigned n)
{
	struct mig_load l;
	int ret = mig_load_start(&l, f, 1, 8, 1);

	while (ret == 0 && atomic_load(&l.done) < n && !atomic_load(&l.errors))
		usleep(1000);
	mig_load_stop(&l, true);
	return ret ? ret : atomic_load(&l.bad) || atomic_load(&l.errors) ? -EIO : 0;
}

VT_CASE(logging_off_stops_marking_and_io_goes_on)
{
	struct mig_env env;
	struct raw_log lg = {.fd = -1};
	struct vhuf *f;

	mig_dev_init(&env.dev, 1);
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	f = mig_fe_open(env.path, 1, 64, MF_FEAT, PF_TEST, MEM);
	VT_REQUIRE(f);
	VT_EQ(vhuf_features(f) & VHU_BIT(VHU_F_LOG_ALL), 0);
	VT_EQ(raw_log_set(f, &lg), 0);
	VT_EQ(run_requests(f, 50), 0);
	VT_EQ(raw_log_bits(&lg), 0); /* LOG_ALL not acked yet */
	VT_EQ(vhuf_set_u64(f, VHU_REQ_SET_FEATURES, vhuf_features(f) | VHU_BIT(VHU_F_LOG_ALL)), 0);
	VT_EQ(run_requests(f, 50), 0);
	VT_CHECK(raw_log_bits(&lg) > 0);
	/* Cancelled: logging stops, nothing else changes. */
	VT_EQ(vhuf_set_u64(f, VHU_REQ_SET_FEATURES, vhuf_features(f) & ~VHU_BIT(VHU_F_LOG_ALL)), 0);
	memset(lg.map, 0, lg.len);
	VT_EQ(run_requests(f, 200), 0);
	VT_EQ(raw_log_bits(&lg), 0);
	vhuf_close(f);
	raw_log_free(&lg);
	mig_env_stop(&env);
}

VT_CASE(log_fd_is_signalled)
{
	struct mig_env env;
	struct raw_log lg = {.fd = -1};
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t v = 0, one = 1;
	struct vhuf *f;

	mig_dev_init(&env.dev, 1);
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	f = mig_fe_open(env.path, 1, 64, MF_FEAT, PF_TEST, MEM);
	VT_REQUIRE(f && efd >= 0);
	VT_EQ(raw_log_set(f, &lg), 0);
	VT_EQ(vhuf_request(f, VHU_REQ_SET_LOG_FD, NULL, 0, &efd, 1, true, NULL), 0);
	VT_EQ(vhuf_set_u64(f, VHU_REQ_SET_FEATURES, vhuf_features(f) | VHU_BIT(VHU_F_LOG_ALL)), 0);
	VT_EQ(run_requests(f, 20), 0);
	VT_EQ(read(efd, &v, sizeof(v)), (ssize_t)sizeof(v));
	VT_CHECK(v > 0);
	/* A second SET_LOG_FD replaces the first (closed by the back end). */
	VT_EQ(vhuf_request(f, VHU_REQ_SET_LOG_FD, NULL, 0, &efd, 1, true, NULL), 0);
	VT_EQ(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	vhuf_close(f);
	close(efd);
	raw_log_free(&lg);
	mig_env_stop(&env);
}

/* Every device gets LOG_ALL + LOG_SHMFD by default (this one offers
 * neither), and none with no_migration. */
VT_CASE(migration_offered_by_default_and_opt_out)
{
	struct vhu_daemon_config cfg = {.no_migration = true};
	struct mig_env env;
	uint64_t feat = 0, pf = 0;
	struct vhuf *f;

	mig_dev_init(&env.dev, 1);
	VT_EQ(env.dev.features & VHU_BIT(VHU_F_LOG_ALL), 0);
	VT_REQUIRE(mig_env_start(&env, NULL) == 0);
	VT_REQUIRE(vhuf_connect(&f, env.path, &(struct vhuf_opts){.connect_timeout_ms = 3000}) ==
	           0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &feat), 0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_PROTOCOL_FEATURES, &pf), 0);
	VT_CHECK(feat & VHU_BIT(VHU_F_LOG_ALL));
	VT_CHECK(pf & VHU_BIT(VHU_PF_LOG_SHMFD));
	vhuf_close(f);
	mig_env_stop(&env);

	mig_dev_init(&env.dev, 1);
	env.dev.features |= VHU_BIT(VHU_F_LOG_ALL); /* the opt-out wins */
	VT_REQUIRE(mig_env_start(&env, &cfg) == 0);
	VT_REQUIRE(vhuf_connect(&f, env.path, &(struct vhuf_opts){.connect_timeout_ms = 3000}) ==
	           0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &feat), 0);
	VT_EQ(vhuf_get_u64(f, VHU_REQ_GET_PROTOCOL_FEATURES, &pf), 0);
	VT_EQ(feat & VHU_BIT(VHU_F_LOG_ALL), 0);
	VT_EQ(pf & (VHU_BIT(VHU_PF_LOG_SHMFD) | VHU_BIT(VHU_PF_PAGEFAULT)), 0);
	vhuf_close(f);
	mig_env_stop(&env);
}
