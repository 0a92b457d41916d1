/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk's rbd engine on a throw-away single-node Ceph cluster
 * (ceph-cluster.sh: one ceph-mon, one memstore ceph-osd, auth none).
 * Pattern writes and reads on 1 and 4 queues checked in the cluster with
 * `rbd export`; discard, write-zeroes and write-through; a snapshot served
 * read-only; a resize reaching the front end as a config-change message;
 * the OSD stopped (SIGSTOP) during I/O: requests wait and complete once it
 * resumes, or, with rados_osd_op_timeout set, fail with IOERR and a log line
 * while the daemon serves again afterwards; clear errors for a missing
 * pool, image or cluster; disks of one process sharing a cluster
 * connection when their specifications agree, and only then.
 */
#include <poll.h>
#include <sys/socket.h>

#include "st.h"

VT_MAIN

#define IMG_SIZE (16 * MIB)

static char g_dir[64], g_conf[128];
static int g_up = -1; /* -1 unknown, 0 failed, 1 up */
static unsigned g_images;

static void cluster_stop(void)
{
	st_sh("%s stop %s >/dev/null 2>&1; rm -rf %s", st_source("tests/storage/ceph-cluster.sh"),
	      g_dir, g_dir);
}

static bool cluster(void)
{
	if (g_up >= 0)
		return g_up;
	snprintf(g_dir, sizeof(g_dir), "/tmp/vhu-st-ceph.XXXXXX");
	g_up = 0;
	if (!mkdtemp(g_dir))
		return false;
	atexit(cluster_stop);
	if (st_sh("%s start %s >%s/start.log 2>&1", st_source("tests/storage/ceph-cluster.sh"),
	          g_dir, g_dir) != 0) {
		st_sh("cat %s/start.log %s/*.log >&2", g_dir, g_dir);
		return false;
	}
	snprintf(g_conf, sizeof(g_conf), "%s/ceph.conf", g_dir);
	g_up = 1;
	return true;
}

/* A fresh image: its name in buf. */
static bool image(char *name, size_t len, uint64_t size)
{
	snprintf(name, len, "img%u", g_images++);
	return st_sh("timeout 60 rbd -c %s create --size %lluK rbd/%s", g_conf,
	             (unsigned long long)(size >> 10), name) == 0;
}

static void spec(char *buf, size_t len, const char *img, const char *extra)
{
	snprintf(buf, len, "rbd:rbd/%s:conf=%s%s", img, g_conf, extra ? extra : "");
}

static bool vhu_start(struct env *e, const char *sp, unsigned nq, uint64_t pf)
{
	const char *args[] = {"--num-queues", nq == 4 ? "4" : "1", "--threads", "2", sp, NULL};
	if (!env_spawn(e, 0, false, args)) {
		fprintf(stderr, "# vhu-blk did not start:\n%s", blkt_slurp(e->d.err));
		return false;
	}
	int rc = blkt_open(&e->t, e->d.sock, nq, 128, 16, 65536, pf ? pf : PF_DEFAULT);
	if (rc < 0)
		fprintf(stderr, "# blkt_open: %s\n%s", strerror(-rc), blkt_slurp(e->d.err));
	return rc == 0;
}

/* The image's content in the cluster equals blkt_pattern(seed) on
 * [0, written) and zeroes after it. */
static bool cluster_holds(const char *img, uint64_t size, uint64_t written, unsigned seed)
{
	char exp[160], out[160];
	snprintf(exp, sizeof(exp), "%s/%s.expected", g_dir, img);
	snprintf(out, sizeof(out), "%s/%s.export", g_dir, img);
	if (st_expected(exp, size, 0, written, seed) < 0)
		return false;
	bool same =
	    st_sh("timeout 60 rbd -c %s export --no-progress rbd/%s %s", g_conf, img, out) == 0 &&
	    st_sh("cmp %s %s", exp, out) == 0;
	unlink(exp);
	unlink(out);
	return same;
}

static void rw_case(unsigned nq)
{
	char img[32], sp[256];
	struct env e;
	VT_REQUIRE(cluster());
	VT_REQUIRE(image(img, sizeof(img), IMG_SIZE));
	spec(sp, sizeof(sp), img, NULL);
	if (vhu_start(&e, sp, nq, 0)) {
		st_fill_and_verify(&e.t, IMG_SIZE, nq, 21);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	VT_CHECK(cluster_holds(img, IMG_SIZE, IMG_SIZE, 21));
}

VT_CASE(rbd_1q)
{
	rw_case(1);
}

VT_CASE(rbd_4q)
{
	rw_case(4);
}

VT_CASE(rbd_discard_zeroes_writethrough)
{
	char img[32], sp[256];
	struct env e;
	VT_REQUIRE(cluster());
	VT_REQUIRE(image(img, sizeof(img), IMG_SIZE));
	spec(sp, sizeof(sp), img, NULL);
	if (vhu_start(&e, sp, 4, 0)) {
		VT_CHECK(vhuf_features(e.t.f) & (1ULL << VIRTIO_BLK_F_DISCARD));
		VT_CHECK(vhuf_features(e.t.f) & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
		struct st_run w = st_pattern(&e.t, true, 0, IMG_SIZE, 65536, 4);
		VT_EQ(w.ok, IMG_SIZE / 65536);
		VT_EQ(st_dz(&e.t, 1, VIRTIO_BLK_T_WRITE_ZEROES, 1 * MIB, MIB, false), 0);
		VT_EQ(st_dz(&e.t, 2, VIRTIO_BLK_T_WRITE_ZEROES, 3 * MIB, MIB, true), 0);
		/* a whole 4 MiB object discarded reads as zeroes */
		VT_EQ(st_dz(&e.t, 3, VIRTIO_BLK_T_DISCARD, 8 * MIB, 4 * MIB, false), 0);
		VT_CHECK(st_all_zero(&e.t, 1 * MIB, MIB));
		VT_CHECK(st_all_zero(&e.t, 3 * MIB, MIB));
		VT_CHECK(st_all_zero(&e.t, 8 * MIB, 4 * MIB));
		struct st_run r = st_pattern(&e.t, false, 2 * MIB, MIB, 65536, 4);
		VT_EQ(r.mismatches, 0);
		VT_EQ(r.ok, MIB / 65536);
		/* write-through: each write flushed before it is acknowledged */
		VT_EQ(st_set_wce(&e.t, 0), 0);
		struct st_run w2 = st_pattern(&e.t, true, 12 * MIB, 4 * MIB, 65536, 8);
		VT_EQ(w2.ok, 4 * MIB / 65536);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	/* In the cluster: seed 4 except the zeroed ranges, seed 8 at 12 MiB. */
	char exp[160], out[160];
	snprintf(exp, sizeof(exp), "%s/dz.expected", g_dir);
	snprintf(out, sizeof(out), "%s/dz.export", g_dir);
	VT_EQ(st_expected(exp, IMG_SIZE, 0, 12 * MIB, 4), 0);
	VT_EQ(st_zero_range(exp, 1 * MIB, MIB), 0);
	VT_EQ(st_zero_range(exp, 3 * MIB, MIB), 0);
	VT_EQ(st_zero_range(exp, 8 * MIB, 4 * MIB), 0);
	char exp2[160];
	snprintf(exp2, sizeof(exp2), "%s/dz.tail", g_dir);
	VT_EQ(st_expected(exp2, IMG_SIZE, 12 * MIB, 4 * MIB, 8), 0);
	VT_EQ(st_sh("dd if=%s of=%s bs=1M skip=12 seek=12 count=4 conv=notrunc status=none", exp2,
	            exp),
	      0);
	VT_EQ(st_sh("timeout 60 rbd -c %s export --no-progress rbd/%s %s && cmp %s %s", g_conf, img,
	            out, exp, out),
	      0);
	unlink(exp);
	unlink(exp2);
	unlink(out);
}

VT_CASE(rbd_snapshot_read_only)
{
	char img[32], sp[256];
	struct env e;
	VT_REQUIRE(cluster());
	VT_REQUIRE(image(img, sizeof(img), 4 * MIB));
	spec(sp, sizeof(sp), img, NULL);
	if (vhu_start(&e, sp, 1, 0)) {
		struct st_run w = st_pattern(&e.t, true, 0, 4 * MIB, 65536, 31);
		VT_EQ(w.ok, 4 * MIB / 65536);
	}
	env_stop(&e);
	VT_REQUIRE(st_sh("timeout 60 rbd -c %s snap create --no-progress rbd/%s@before", g_conf,
	                 img) == 0);
	/* The head changes afterwards; the snapshot does not. */
	if (vhu_start(&e, sp, 1, 0)) {
		struct st_run w = st_pattern(&e.t, true, 0, 4 * MIB, 65536, 32);
		VT_EQ(w.ok, 4 * MIB / 65536);
	}
	env_stop(&e);
	char snap[64];
	snprintf(snap, sizeof(snap), "%s@before", img);
	spec(sp, sizeof(sp), snap, NULL);
	if (vhu_start(&e, sp, 1, 0)) {
		VT_CHECK(vhuf_features(e.t.f) & (1ULL << VIRTIO_BLK_F_RO));
		struct st_run r = st_pattern(&e.t, false, 0, 4 * MIB, 65536, 31);
		VT_EQ(r.mismatches, 0);
		VT_EQ(r.ok, 4 * MIB / 65536);
		uint8_t buf[4096] = {0};
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 0, buf, 4096), VIRTIO_BLK_S_IOERR);
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	} else {
		VT_CHECK(!"vhu-blk did not start on the snapshot");
	}
	env_stop(&e);
}

/* Read one back-end request from the channel; answer it if asked to. */
static int channel_read(int fd, uint32_t *req)
{
	struct {
		uint32_t request, flags, size;
		uint8_t payload[256];
	} m;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 60000) != 1)
		return -ETIMEDOUT;
	ssize_t n = recv(fd, &m, sizeof(m), 0);
	if (n < 12)
		return -EIO;
	*req = m.request;
	if (m.flags & VHU_HDR_NEED_REPLY) {
		struct {
			uint32_t request, flags, size;
			uint64_t u64;
		} __attribute__((packed)) r = {m.request, VHU_HDR_VERSION | VHU_HDR_REPLY, 8, 0};
		if (send(fd, &r, sizeof(r), MSG_NOSIGNAL) != sizeof(r))
			return -EIO;
	}
	return 0;
}

VT_CASE(rbd_resize_reaches_the_front_end)
{
	char img[32], sp[256];
	struct env e;
	int sv[2];
	VT_REQUIRE(cluster());
	VT_REQUIRE(image(img, sizeof(img), 8 * MIB));
	spec(sp, sizeof(sp), img, NULL);
	VT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	if (vhu_start(&e, sp, 1, PF_DEFAULT | VHU_BIT(VHU_PF_BACKEND_REQ))) {
		VT_EQ(
		    vhuf_request(e.t.f, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1, true, NULL),
		    0);
		uint8_t buf[4096] = {7};
		/* beyond the end: refused */
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 12 * MIB / 512, buf, 4096),
		      VIRTIO_BLK_S_IOERR);
		VT_EQ(st_sh("timeout 60 rbd -c %s resize --no-progress --size 16M rbd/%s", g_conf,
		            img),
		      0);
		uint32_t req = 0;
		VT_EQ(channel_read(sv[0], &req), 0);
		VT_EQ(req, VHU_BREQ_CONFIG_CHANGE_MSG);
		struct virtio_blk_config cfg;
		VT_EQ(blkt_config(&e.t, &cfg), 0);
		VT_EQ(cfg.capacity, 16 * MIB / 512);
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 12 * MIB / 512, buf, 4096),
		      VIRTIO_BLK_S_OK);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	close(sv[0]);
	close(sv[1]);
}

static int osd_pid(void)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/run/osd.0.pid", g_dir);
	FILE *f = fopen(path, "r");
	int pid = 0;
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

/* Default semantics: a stopped OSD holds the requests; none is answered
 * while it is stopped, all complete once it resumes, and are stored. */
VT_CASE(rbd_osd_stopped_requests_wait)
{
	char img[32], sp[256];
	struct env e;
	VT_REQUIRE(cluster());
	VT_REQUIRE(image(img, sizeof(img), IMG_SIZE));
	spec(sp, sizeof(sp), img, NULL);
	int osd = osd_pid();
	VT_REQUIRE(osd > 0);
	if (vhu_start(&e, sp, 4, 0)) {
		/* take the exclusive lock first (one write), then stop the OSD */
		struct st_run w0 = st_pattern(&e.t, true, 0, 65536, 65536, 41);
		VT_EQ(w0.ok, 1);
		VT_REQUIRE(kill(osd, SIGSTOP) == 0);
		unsigned n = st_submit_writes(&e.t, 0, 48, 41);
		VT_EQ(n, 48);
		st_sleep_ms(1500);
		unsigned q;
		/* the OSD cannot have answered: nothing may be acknowledged */
		VT_EQ(st_wait_any(&e.t, &q, 0), -ETIMEDOUT);
		VT_REQUIRE(kill(osd, SIGCONT) == 0);
		struct st_run r = st_collect(&e.t, n);
		ST_REPORT(r);
		VT_EQ(r.ok, 48);
		struct st_run v = st_pattern(&e.t, false, 0, 48 * 65536, 65536, 41);
		VT_EQ(v.mismatches, 0);
		VT_EQ(v.ok, 48);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	kill(osd, SIGCONT);
	env_stop(&e);
	VT_CHECK(cluster_holds(img, IMG_SIZE, 48 * 65536, 41));
}

/* With rados_osd_op_timeout: the requests fail (IOERR, a log line) while
 * the OSD is stopped; the daemon survives and serves once it resumes. */
VT_CASE(rbd_osd_stopped_with_timeout_fails_then_recovers)
{
	char img[32], sp[256];
	struct env e;
	VT_REQUIRE(cluster());
	VT_REQUIRE(image(img, sizeof(img), IMG_SIZE));
	spec(sp, sizeof(sp), img, ":rados_osd_op_timeout=2");
	int osd = osd_pid();
	VT_REQUIRE(osd > 0);
	if (vhu_start(&e, sp, 1, 0)) {
		struct st_run w0 = st_pattern(&e.t, true, 0, MIB, 65536, 51);
		VT_EQ(w0.ok, 16);
		VT_REQUIRE(kill(osd, SIGSTOP) == 0);
		unsigned n = st_submit_writes(&e.t, 0, 8, 52);
		struct st_run r = st_collect(&e.t, n);
		ST_REPORT(r);
		VT_EQ(r.ioerr, 8);
		VT_REQUIRE(kill(osd, SIGCONT) == 0);
		VT_CHECK(strstr(blkt_slurp(e.d.err), "rbd: write of 65536 bytes") != NULL);
		VT_CHECK(strstr(blkt_slurp(e.d.err), "the guest gets an I/O error") != NULL);
		/* back: the same ranges written again, and read back */
		struct st_run w = st_pattern(&e.t, true, 0, MIB, 65536, 53);
		ST_REPORT(w);
		VT_EQ(w.ok, 16);
		struct st_run v = st_pattern(&e.t, false, 0, MIB, 4096, 53);
		VT_EQ(v.mismatches, 0);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	kill(osd, SIGCONT);
	env_stop(&e);
	VT_CHECK(cluster_holds(img, IMG_SIZE, MIB, 53));
}

/* Three disks in one process: two with the same configuration share one
 * cluster connection, the third (an option of its own) gets another; all
 * three serve I/O, land in their images and close cleanly. */
VT_CASE(rbd_disks_share_a_connection)
{
	enum { N = 3 };
	static const char *extra[N] = {"", "", ":rbd_cache=false"};
	char img[N][32], arg[N][512], sock[N][160];
	const char *args[2 * N + 1];
	struct blkt_dir d;
	VT_REQUIRE(cluster());
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	for (unsigned i = 0; i < N; i++) {
		VT_REQUIRE(image(img[i], sizeof(img[i]), 4 * MIB));
		snprintf(sock[i], sizeof(sock[i]), "%s/d%u.sock", d.path, i);
		snprintf(arg[i], sizeof(arg[i]), "socket=%s,image=rbd:rbd/%s:conf=%s%s", sock[i],
		         img[i], g_conf, extra[i]);
		args[2 * i] = "--disk";
		args[2 * i + 1] = arg[i];
	}
	args[2 * N] = NULL;
	pid_t pid = blkt_spawn(&d, args, -1);
	VT_REQUIRE(pid > 0);
	bool up = true;
	for (unsigned i = 0; i < N; i++)
		up = up && blkt_wait_socket(sock[i], BLKT_TIMEOUT_MS);
	if (!up)
		fprintf(stderr, "# vhu-blk stderr:\n%s", blkt_slurp(d.err));
	VT_CHECK(up);
	/* librados starts one "msgr-worker-0" per cluster handle */
	VT_EQ(blkt_count_threads(pid, "msgr-worker-0"), 2);
	for (unsigned i = 0; up && i < N; i++) {
		struct blkt t;
		int rc = blkt_open(&t, sock[i], 1, 128, 16, 65536, PF_DEFAULT);
		VT_EQ(rc, 0);
		if (rc == 0) {
			st_fill_and_verify(&t, 4 * MIB, 1, 60 + i);
			blkt_close(&t);
		}
	}
	kill(pid, SIGTERM);
	int rc = blkt_wait_exit(pid, BLKT_TIMEOUT_MS);
	if (rc != 0)
		fprintf(stderr, "# vhu-blk stderr:\n%s", blkt_slurp(d.err));
	VT_EQ(rc, 0);
	for (unsigned i = 0; up && i < N; i++)
		VT_CHECK(cluster_holds(img[i], 4 * MIB, 4 * MIB, 60 + i));
	blkt_dir_remove(&d);
}

VT_CASE(rbd_clear_errors)
{
	struct blkt_dir d;
	char sp[256];
	VT_REQUIRE(cluster());
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	spec(sp, sizeof(sp), "no-such-image", NULL);
	VT_EQ(blkt_run(&d, (const char *[]){"--socket-path", d.sock, sp, NULL}), 1);
	VT_CHECK(strstr(blkt_slurp(d.err), "rbd: cannot open image 'no-such-image'") != NULL);
	snprintf(sp, sizeof(sp), "rbd:nopool/x:conf=%s", g_conf);
	VT_EQ(blkt_run(&d, (const char *[]){"--socket-path", d.sock, sp, NULL}), 1);
	VT_CHECK(strstr(blkt_slurp(d.err), "rbd: pool 'nopool'") != NULL);
	snprintf(sp, sizeof(sp), "rbd:rbd/x:conf=%s/nothere.conf", d.path);
	VT_EQ(blkt_run(&d, (const char *[]){"--socket-path", d.sock, sp, NULL}), 1);
	VT_CHECK(strstr(blkt_slurp(d.err), "cannot read the configuration file") != NULL);
	/* a cluster nobody answers for: fails within client_mount_timeout */
	snprintf(
	    sp, sizeof(sp),
	    "rbd:rbd/x:mon_host=127.0.0.1\\:9:client_mount_timeout=1:auth_client_required=none");
	VT_EQ(blkt_run(&d, (const char *[]){"--socket-path", d.sock, sp, NULL}), 1);
	VT_CHECK(strstr(blkt_slurp(d.err), "cannot connect to the cluster") != NULL);
	snprintf(sp, sizeof(sp), "rbd:rbd/x:conf=%s:no_such_ceph_option=1", g_conf);
	VT_EQ(blkt_run(&d, (const char *[]){"--socket-path", d.sock, sp, NULL}), 1);
	VT_CHECK(strstr(blkt_slurp(d.err), "option 'no_such_ceph_option'") != NULL);
	VT_EQ(blkt_run(&d, (const char *[]){"--print-capabilities", NULL}), 0);
	VT_CHECK(strstr(blkt_slurp(d.out), "\"rbd\"") != NULL);
	blkt_dir_remove(&d);
}
