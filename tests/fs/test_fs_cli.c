/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-fs's command line: the back-end program conventions (--help,
 * --print-capabilities, exit statuses) and its own options' checks; the
 * config space with --tag.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fst.h"

static int run(const char *const *args)
{
	struct fst_env e = {0};
	int rc = fst_run(&e, args);
	/* stdout/stderr stay readable until the next run */
	static char out[4096], err[4096];
	snprintf(out, sizeof(out), "%s", fst_slurp(e.out));
	snprintf(err, sizeof(err), "%s", fst_slurp(e.err));
	setenv("FST_OUT", out, 1);
	setenv("FST_ERR", err, 1);
	fst_cleanup(&e);
	return rc;
}

VT_CASE(help_and_capabilities)
{
	const char *const help[] = {"--help", NULL};
	VT_EQ(run(help), 0);
	VT_CHECK(strstr(getenv("FST_OUT"), "--shared-dir"));
	VT_CHECK(strstr(getenv("FST_OUT"), "--thread-pool-size"));
	VT_CHECK(strstr(getenv("FST_OUT"), "--sandbox"));
	const char *const caps[] = {"--print-capabilities", "--cache", "bogus", NULL};
	VT_EQ(run(caps), 0);
	VT_CHECK(strstr(getenv("FST_OUT"), "\"type\": \"fs\"") ||
	         strstr(getenv("FST_OUT"), "\"type\":\"fs\""));
	const char *const ver[] = {"--version", NULL};
	VT_EQ(run(ver), 0);
	VT_CHECK(strstr(getenv("FST_OUT"), "vhu-fs"));
}

VT_CASE(usage_errors)
{
	static const char *const bad[][8] = {
	    {"--socket-path", "/tmp/x.sock", NULL},
	    {"--socket-path", "/tmp/x.sock", "--shared-dir", "/tmp", "--cache", "sometimes"},
	    {"--socket-path", "/tmp/x.sock", "--shared-dir", "/tmp", "--queue-size", "1000"},
	    {"--socket-path", "/tmp/x.sock", "--shared-dir", "/tmp", "--num-request-queues", "0"},
	    {"--socket-path", "/tmp/x.sock", "--shared-dir", "/tmp", "--sandbox", "jail"},
	    {"--socket-path", "/tmp/x.sock", "--shared-dir", "/tmp", "--seccomp", "maybe"},
	    {"--socket-path", "/tmp/x.sock", "--shared-dir", "/tmp", "--tag",
	     "0123456789012345678901234567890123456789"},
	    {"--shared-dir", "/tmp", NULL},
	    {"--socket-path", "/tmp/x.sock", "--shared-dir", "/tmp", "--thread-pool-size", "-1"},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		VT_EQ(run(bad[i]), 2);
		VT_CHECK(strstr(getenv("FST_ERR"), "vhu-fs"));
	}
	const char *const wb[] = {"--socket-path", "/tmp/x.sock", "--shared-dir", "/tmp",
	                          "--writeback",   "--cache",     "never",        NULL};
	VT_EQ(run(wb), 2);
	/* A directory that does not exist is a run-time failure. */
	const char *const nodir[] = {"--socket-path", "/tmp/vhu-fst-none.sock", "--shared-dir",
	                             "/nonexistent/dir", NULL};
	VT_EQ(run(nodir), 1);
	VT_CHECK(strstr(getenv("FST_ERR"), "/nonexistent/dir"));
	VT_CHECK(access("/tmp/vhu-fst-none.sock", F_OK) < 0);
}

VT_CASE(tag_in_config_space)
{
	struct fst t;
	const char *const args[] = {"--tag", "myshare", NULL};
	VT_REQUIRE(fst_up(&t, args, 1));
	uint8_t cfg[40] = {0};
	VT_EQ(vhuf_get_config(t.c.f, 0, cfg, sizeof(cfg)), 0);
	VT_CHECK(memcmp(cfg, "myshare\0", 8) == 0);
	uint32_t nq;
	memcpy(&nq, cfg + 36, 4);
	VT_EQ(nq, 1);
	VT_EQ(fst_down(&t), 0);
	/* Without a tag the config space is not offered (as virtiofsd). */
	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_CHECK(!(vhuf_protocol_features(t.c.f) & (1ULL << VHU_PF_CONFIG)));
	VT_EQ(fst_down(&t), 0);
}

/* The socket file goes when the daemon stops, sandbox or not. */
VT_CASE(socket_file_removed)
{
	struct fst t;
	const char *const modes[][3] = {
	    {NULL}, {"--sandbox", "none", NULL}, {"--sandbox", "chroot", NULL}};
	for (unsigned i = 0; i < 3; i++) {
		VT_REQUIRE(fst_up(&t, modes[i], 1));
		char sock[128];
		snprintf(sock, sizeof(sock), "%s", t.e.sock);
		fusec_close(&t.c);
		VT_EQ(fst_stop(&t.e), 0);
		VT_CHECK(access(sock, F_OK) < 0);
		fst_cleanup(&t.e);
	}
}

/* --client: vhu-fs connects to its front end, and again after the front
 * end went away; refused with a sandbox (it reconnects by path). */
VT_CASE(client_mode)
{
	struct fst t;
	struct vhuf *f;
	struct fuse_entry_out e;
	uint64_t fh;
	const char *const sandboxed[] = {"--client",     "--socket-path", "/tmp/x.sock",
	                                 "--shared-dir", "/tmp",          NULL};
	VT_EQ(run(sandboxed), 2);
	VT_CHECK(strstr(getenv("FST_ERR"), "--sandbox none"));

	memset(&t, 0, sizeof(t));
	const char *const args[] = {"--sandbox", "none", "--seccomp", "kill", NULL};
	int lfd = fst_start_client(&t.e, args);
	VT_REQUIRE(lfd >= 0);
	for (int round = 0; round < 2; round++) {
		struct vhuf_opts o = {.mem_size = 64u << 20};
		VT_REQUIRE(vhuf_accept(&f, lfd, FUSEC_TIMEOUT_MS, &o) == 0);
		VT_REQUIRE(fusec_attach(&t.c, f, 1, 256) == 0);
		VT_EQ(fusec_init(&t.c, FUSE_KERNEL_MINOR_VERSION, 0), 0);
		const char *name = round ? "second" : "first";
		VT_EQ(fusec_create(&t.c, FUSE_ROOT_ID, name, O_RDWR, 0600, &e, &fh), 0);
		VT_CHECK(access(fst_path(&t.e, name), F_OK) == 0);
		fusec_close(&t.c); /* the front end goes; vhu-fs connects again */
	}
	close(lfd);
	VT_EQ(fst_stop(&t.e), 0);
	fst_cleanup(&t.e);
}

VT_MAIN
