/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk's nbd engine against real NBD servers: nbdkit's memory plugin
 * and qemu-nbd exporting qcow2 and raw images over unix sockets.  Pattern
 * writes and reads on 1 and 4 queues, the data checked on the server's side
 * afterwards (qemu-img compare), discard and write-zeroes, write-through
 * mode, a read-only export, and the server killed and restarted with
 * writes in flight (they wait and complete; nothing acknowledged is lost),
 * or gone for longer than --reconnect-delay (I/O errors, then service again).
 */
#include "st.h"

VT_MAIN

#define IMG_SIZE (16 * MIB)

struct srv {
	pid_t pid;
	char sock[160];
	char uri[256];
};

/* Start a server (argv after the program, NULL-terminated); wait for its
 * socket. */
static bool srv_start(struct srv *s, const char *dir, const char *const *argv)
{
	snprintf(s->sock, sizeof(s->sock), "%s/nbd.sock", dir);
	snprintf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s", s->sock);
	unlink(s->sock);
	fflush(stderr);
	s->pid = fork();
	if (s->pid == 0) {
		const char *a[24];
		unsigned n = 0;
		for (; argv[n] && n < 20; n++)
			a[n] = argv[n];
		a[n] = NULL;
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		execvp(a[0], (char *const *)a);
		_exit(127);
	}
	return s->pid > 0 && blkt_wait_socket(s->sock, BLKT_TIMEOUT_MS);
}

static void srv_kill(struct srv *s, int sig)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, sig);
	waitpid(s->pid, NULL, 0);
	s->pid = -1;
}

static bool nbdkit_memory(struct srv *s, const char *dir, bool ro)
{
	char sock[160];
	snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
	const char *a[] = {"nbdkit", "-f",  "-U", sock, ro ? "-r" : "--threads=4",
	                   "memory", "16M", NULL};
	return srv_start(s, dir, a);
}

/* nbdkit memory without WRITE_ZEROES (the nozero filter hides it). */
static bool nbdkit_nozero(struct srv *s, const char *dir)
{
	char sock[160];
	snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
	const char *a[] = {"nbdkit", "-f", "-U", sock, "--filter=nozero", "memory", "16M", NULL};
	return srv_start(s, dir, a);
}

/* qemu-nbd on `img` (format fmt), persistent, several clients. */
static bool qemu_nbd(struct srv *s, const char *dir, const char *img, const char *fmt)
{
	char sock[160];
	snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
	const char *a[] = {
	    "qemu-nbd",        "-t", "--shared=8", "-f", fmt, "-k", sock, "--cache=writeback",
	    "--discard=unmap", img,  NULL};
	return srv_start(s, dir, a);
}

static bool vhu_start(struct env *e, const struct srv *s, unsigned nq, const char *const *more)
{
	const char *args[16] = {"--num-queues", nq == 4 ? "4" : "1", "--threads", "2"};
	unsigned n = 4;
	for (unsigned i = 0; more && more[i] && n < 14; i++)
		args[n++] = more[i];
	args[n++] = s->uri;
	args[n] = NULL;
	if (!env_spawn(e, 0, false, args))
		return false;
	int rc = blkt_open(&e->t, e->d.sock, nq, 128, 16, 65536, PF_DEFAULT);
	if (rc < 0)
		fprintf(stderr, "# blkt_open: %s\n%s", strerror(-rc), blkt_slurp(e->d.err));
	return rc == 0;
}

static void rw_case(unsigned nq, bool qcow2)
{
	struct env e;
	struct srv s = {.pid = -1};
	char dir[64] = "/tmp/vhu-st-nbd.XXXXXX", img[128], exp[128];
	VT_REQUIRE(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/disk.%s", dir, qcow2 ? "qcow2" : "raw");
	snprintf(exp, sizeof(exp), "%s/expected.raw", dir);
	VT_REQUIRE(st_sh("qemu-img create -q -f %s %s 16M", qcow2 ? "qcow2" : "raw", img) == 0);
	VT_REQUIRE(qemu_nbd(&s, dir, img, qcow2 ? "qcow2" : "raw"));
	if (vhu_start(&e, &s, nq, NULL)) {
		st_fill_and_verify(&e.t, IMG_SIZE, nq, 7);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	srv_kill(&s, SIGTERM);
	/* What the server stored, read by another program. */
	VT_EQ(st_expected(exp, IMG_SIZE, 0, IMG_SIZE, 7), 0);
	VT_EQ(st_sh("qemu-img compare -q -f raw %s %s", exp, img), 0);
	st_sh("rm -rf %s", dir);
}

VT_CASE(qcow2_1q)
{
	rw_case(1, true);
}

VT_CASE(qcow2_4q)
{
	rw_case(4, true);
}

VT_CASE(nbdkit_discard_zeroes_writethrough)
{
	struct env e;
	struct srv s = {.pid = -1};
	char dir[64] = "/tmp/vhu-st-nbd.XXXXXX";
	VT_REQUIRE(mkdtemp(dir));
	VT_REQUIRE(nbdkit_memory(&s, dir, false));
	if (vhu_start(&e, &s, 4, NULL)) {
		struct st_run w = st_pattern(&e.t, true, 0, IMG_SIZE, 65536, 3);
		VT_EQ(w.ok, IMG_SIZE / 65536);
		/* write-zeroes (with and without unmap) and discard of 1 MiB each */
		VT_EQ(st_dz(&e.t, 1, VIRTIO_BLK_T_WRITE_ZEROES, 1 * MIB, MIB, false), 0);
		VT_EQ(st_dz(&e.t, 2, VIRTIO_BLK_T_WRITE_ZEROES, 3 * MIB, MIB, true), 0);
		VT_EQ(st_dz(&e.t, 3, VIRTIO_BLK_T_DISCARD, 5 * MIB, MIB, false), 0);
		VT_CHECK(st_all_zero(&e.t, 1 * MIB, MIB));
		VT_CHECK(st_all_zero(&e.t, 3 * MIB, MIB));
		VT_CHECK(st_all_zero(&e.t, 5 * MIB, MIB));
		/* untouched neighbours keep their data */
		struct st_run r = st_pattern(&e.t, false, 2 * MIB, MIB, 4096, 3);
		VT_EQ(r.mismatches, 0);
		VT_EQ(r.ok, MIB / 4096);
		/* write-through (the guest clears the writeback bit): writes
		 * go with FUA, and are still stored */
		VT_EQ(st_set_wce(&e.t, 0), 0);
		struct st_run w2 = st_pattern(&e.t, true, 8 * MIB, MIB, 4096, 9);
		VT_EQ(w2.ok, MIB / 4096);
		struct st_run r2 = st_pattern(&e.t, false, 8 * MIB, MIB, 65536, 9);
		VT_EQ(r2.mismatches, 0);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	srv_kill(&s, SIGTERM);
	st_sh("rm -rf %s", dir);
}

/* Write-zeroes on a server that cannot: written as zeroes instead. */
VT_CASE(zeroes_without_server_support)
{
	struct env e;
	struct srv s = {.pid = -1};
	char dir[64] = "/tmp/vhu-st-nbd.XXXXXX";
	VT_REQUIRE(mkdtemp(dir));
	VT_REQUIRE(nbdkit_nozero(&s, dir));
	if (vhu_start(&e, &s, 1, NULL)) {
		struct st_run w = st_pattern(&e.t, true, 0, 4 * MIB, 65536, 13);
		VT_EQ(w.ok, 4 * MIB / 65536);
		/* 2.5 MiB: three write commands of up to 1 MiB */
		VT_EQ(st_dz(&e.t, 0, VIRTIO_BLK_T_WRITE_ZEROES, MIB, 5 * MIB / 2, false), 0);
		VT_CHECK(st_all_zero(&e.t, MIB, 5 * MIB / 2));
		struct st_run r = st_pattern(&e.t, false, 0, MIB, 65536, 13);
		VT_EQ(r.mismatches, 0);
		struct st_run r2 = st_pattern(&e.t, false, 7 * MIB / 2, MIB / 2, 65536, 13);
		VT_EQ(r2.mismatches, 0);
		VT_EQ(r2.ok, 8);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	srv_kill(&s, SIGTERM);
	st_sh("rm -rf %s", dir);
}

VT_CASE(read_only_export)
{
	struct env e;
	struct srv s = {.pid = -1};
	char dir[64] = "/tmp/vhu-st-nbd.XXXXXX";
	VT_REQUIRE(mkdtemp(dir));
	VT_REQUIRE(nbdkit_memory(&s, dir, true));
	if (vhu_start(&e, &s, 1, NULL)) {
		VT_CHECK(vhuf_features(e.t.f) & (1ULL << VIRTIO_BLK_F_RO));
		uint8_t buf[4096] = {1};
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 0, buf, 4096), VIRTIO_BLK_S_IOERR);
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, 0, buf, 4096), VIRTIO_BLK_S_OK);
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	srv_kill(&s, SIGTERM);
	st_sh("rm -rf %s", dir);
}

/* The server is killed (SIGKILL) with writes in flight and comes back: the
 * writes wait for it and complete; the file holds all of them. */
VT_CASE(server_killed_and_restarted)
{
	struct env e;
	struct srv s = {.pid = -1};
	char dir[64] = "/tmp/vhu-st-nbd.XXXXXX", img[128], exp[128];
	VT_REQUIRE(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/disk.raw", dir);
	snprintf(exp, sizeof(exp), "%s/expected.raw", dir);
	VT_REQUIRE(st_sh("qemu-img create -q -f raw %s 16M", img) == 0);
	VT_REQUIRE(qemu_nbd(&s, dir, img, "raw"));
	if (vhu_start(&e, &s, 4, NULL)) {
		unsigned rounds = 0;
		struct st_run total = {0};
		/* Several kills, each with 64 writes (4 MiB) submitted first. */
		for (unsigned k = 0; k < 3; k++) {
			unsigned n = st_submit_writes(&e.t, (uint64_t)k * 4 * MIB, 64, 11);
			VT_EQ(n, 64);
			srv_kill(&s, SIGKILL);
			st_sleep_ms(300); /* down for a while: requests park */
			VT_REQUIRE(qemu_nbd(&s, dir, img, "raw"));
			struct st_run r = st_collect(&e.t, n);
			ST_REPORT(r);
			total.ok += r.ok;
			total.ioerr += r.ioerr + r.other + r.hangs;
			rounds++;
		}
		VT_EQ(total.ok, 64 * rounds);
		VT_EQ(total.ioerr, 0);
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
		struct st_run r = st_pattern(&e.t, false, 0, 12 * MIB, 65536, 11);
		VT_EQ(r.mismatches, 0);
		VT_EQ(r.ok, 12 * MIB / 65536);
		VT_CHECK(strstr(blkt_slurp(e.d.err), "lost") != NULL);
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	srv_kill(&s, SIGTERM);
	VT_EQ(st_expected(exp, IMG_SIZE, 0, 12 * MIB, 11), 0);
	VT_EQ(st_sh("qemu-img compare -q -f raw -F raw %s %s", exp, img), 0);
	st_sh("rm -rf %s", dir);
}

/* Gone for longer than --reconnect-delay: the waiting requests fail with
 * IOERR and a log line, the daemon lives on and serves once it is back. */
VT_CASE(server_gone_past_delay)
{
	struct env e;
	struct srv s = {.pid = -1};
	char dir[64] = "/tmp/vhu-st-nbd.XXXXXX", img[128];
	VT_REQUIRE(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/disk.raw", dir);
	VT_REQUIRE(st_sh("qemu-img create -q -f raw %s 16M", img) == 0);
	VT_REQUIRE(qemu_nbd(&s, dir, img, "raw"));
	if (vhu_start(&e, &s, 1, (const char *[]){"--reconnect-delay", "1", NULL})) {
		srv_kill(&s, SIGKILL);
		unsigned n = st_submit_writes(&e.t, 0, 8, 5);
		struct st_run r = st_collect(&e.t, n);
		ST_REPORT(r);
		VT_EQ(r.ioerr, 8);
		VT_CHECK(strstr(blkt_slurp(e.d.err), "the guest gets an I/O error") != NULL);
		VT_REQUIRE(qemu_nbd(&s, dir, img, "raw"));
		/* Back: the next requests succeed (they may wait for the reconnect). */
		struct st_run w = st_pattern(&e.t, true, 0, MIB, 65536, 5);
		ST_REPORT(w);
		VT_EQ(w.ok, MIB / 65536);
		struct st_run v = st_pattern(&e.t, false, 0, MIB, 4096, 5);
		VT_EQ(v.mismatches, 0);
		if (w.ok != MIB / 65536)
			fprintf(stderr, "# vhu-blk:\n%s", blkt_slurp(e.d.err));
	} else {
		VT_CHECK(!"vhu-blk did not start");
	}
	env_stop(&e);
	srv_kill(&s, SIGTERM);
	st_sh("rm -rf %s", dir);
}

VT_CASE(bad_specs_and_servers)
{
	struct blkt_dir d;
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	char uri[256];
	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s/none.sock", d.path);
	VT_EQ(blkt_run(&d, (const char *[]){"--socket-path", d.sock, uri, NULL}), 1);
	VT_CHECK(strstr(blkt_slurp(d.err), "nbd: cannot connect to") != NULL);
	VT_EQ(blkt_run(&d, (const char *[]){"--socket-path", d.sock, "nbd:host:99999", NULL}), 1);
	VT_CHECK(strstr(blkt_slurp(d.err), "bad port") != NULL);
	VT_EQ(blkt_run(&d, (const char *[]){"--print-capabilities", NULL}), 0);
	VT_CHECK(strstr(blkt_slurp(d.out), "\"nbd\"") != NULL);
	blkt_dir_remove(&d);
}
