/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk command line: every error has a clear message and exit code
 * (2 = usage, 1 = runtime), the back-end program conventions (--help,
 * --version, --print-capabilities, --fd), the default mode, and a clean stop
 * on SIGTERM/SIGINT.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "blk_env.h"

VT_MAIN

/* Run with args; expect exit code `code` and `needle` in stderr (or stdout
 * when on_stdout). */
static void expect(const char *const *args, int code, const char *needle, bool on_stdout)
{
	struct blkt_dir d;
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	int rc = blkt_run(&d, args);
	const char *text = blkt_slurp(on_stdout ? d.out : d.err);
	if (rc != code || !strstr(text, needle)) {
		fprintf(stderr, "# args:");
		for (unsigned i = 0; args[i]; i++)
			fprintf(stderr, " %s", args[i]);
		fprintf(stderr, "\n# exit %d (want %d), want \"%s\" in:\n%s\n", rc, code, needle,
		        text);
	}
	VT_EQ(rc, code);
	VT_CHECK(strstr(text, needle) != NULL);
	blkt_dir_remove(&d);
}

VT_CASE(help_version_capabilities)
{
	expect((const char *[]){"--help", NULL}, 0, "Usage: vhu-blk [OPTIONS] [IMAGE]", true);
	expect((const char *[]){"-h", NULL}, 0, "--socket-path", true);
	expect((const char *[]){"--version", NULL}, 0, "vhu-blk 0.1.0", true);
	expect((const char *[]){"--print-capabilities", NULL}, 0, "\"type\": \"block\"", true);
	expect((const char *[]){"--print-capabilities", NULL}, 0, "\"read-only\"", true);
	expect((const char *[]){"--print-capabilities", NULL}, 0, "\"blk-file\"", true);
}

VT_CASE(usage_errors)
{
	const char *img = "/dev/null"; /* never reached */
	struct {
		const char *args[6];
		const char *msg;
	} cases[] = {
	    {{"--bogus", NULL}, "unknown option '--bogus'"},
	    {{"-x", NULL}, "unknown option"},
	    {{"--num-queues", NULL}, "option '--num-queues' needs a value"},
	    {{"--num-queues", "0", img, NULL}, "invalid --num-queues '0'"},
	    {{"--num-queues", "65", img, NULL}, "invalid --num-queues '65'"},
	    {{"--num-queues", "abc", img, NULL}, "invalid --num-queues 'abc'"},
	    {{"--num-queues", "-1", img, NULL}, "invalid --num-queues '-1'"},
	    {{"--num-queues", "2x", img, NULL}, "invalid --num-queues '2x'"},
	    {{"--queue-size", "100", img, NULL}, "invalid --queue-size '100'"},
	    {{"--queue-size", "2048", img, NULL}, "invalid --queue-size '2048'"},
	    {{"--poll-us", "-5", img, NULL}, "invalid --poll-us"},
	    {{"--threads", "0", img, NULL}, "invalid --threads"},
	    {{"--block-size", "1000", img, NULL}, "invalid --block-size"},
	    {{"--size", "12Q", "--null", NULL}, "invalid --size"},
	    {{"--fd", "x", NULL}, "invalid --fd 'x'"},
	    {{"--fd", "3", "--socket-path", "/tmp/x.sock", img, NULL}, "exclude each other"},
	    {{"--serial", "123456789012345678901", img, NULL}, "at most 20 bytes"},
	    {{"a.img", "b.img", NULL}, "two images given"},
	    {{"--blk-file", "a.img", "b.img", NULL}, "two images given"},
	    {{"--socket-path", "", img, NULL}, "empty path"},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expect(cases[i].args, 2, cases[i].msg, false);
		expect(cases[i].args, 2, "Try 'vhu-blk --help'", false);
	}
}

VT_CASE(image_errors)
{
	struct blkt_dir d;
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	char missing[160], empty[160], dir[160];
	snprintf(missing, sizeof(missing), "%s/missing.img", d.path);
	snprintf(empty, sizeof(empty), "%s/empty.img", d.path);
	snprintf(dir, sizeof(dir), "%s/adir", d.path);
	VT_REQUIRE(blkt_image_create(empty, 0, false) == 0);
	VT_REQUIRE(mkdir(dir, 0700) == 0);

	expect((const char *[]){"--socket-path", d.sock, missing, NULL}, 1, "cannot use image",
	       false);
	expect((const char *[]){"--socket-path", d.sock, missing, NULL}, 1,
	       "No such file or directory", false);
	/* A directory cannot be opened for writing (and is no disk anyway). */
	expect((const char *[]){"--socket-path", d.sock, dir, NULL}, 1, "Is a directory", false);
	expect((const char *[]){"--socket-path", d.sock, "--read-only", dir, NULL}, 1,
	       "not a regular file or block device", false);
	expect((const char *[]){"--socket-path", d.sock, empty, NULL}, 1, "smaller than one sector",
	       false);
	/* /proc files are not writable even by root. */
	expect((const char *[]){"--socket-path", d.sock, "/proc/version", NULL}, 1,
	       "cannot use image '/proc/version'", false);
	struct stat st;
	VT_CHECK(stat(d.sock, &st) < 0); /* no socket left behind */
	blkt_dir_remove(&d);
}

/* Start a daemon in dir d on d->sock. */
static pid_t start_daemon(struct blkt_dir *d, const char *const *extra)
{
	const char *args[16] = {"--socket-path", d->sock};
	unsigned n = 2;
	for (unsigned i = 0; extra && extra[i]; i++)
		args[n++] = extra[i];
	args[n++] = d->img;
	args[n] = NULL;
	if (blkt_image_create(d->img, 1 * MIB, false) < 0)
		return -1;
	pid_t pid = blkt_spawn(d, args, -1);
	if (pid > 0 && !blkt_wait_socket(d->sock, BLKT_TIMEOUT_MS))
		return -1;
	return pid;
}

VT_CASE(socket_errors)
{
	struct blkt_dir d, d2;
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	VT_REQUIRE(blkt_dir_make(&d2) == 0);
	pid_t pid = start_daemon(&d, NULL);
	VT_REQUIRE(pid > 0);
	VT_REQUIRE(blkt_image_create(d2.img, MIB, false) == 0);
	/* A second daemon on the same path is refused; the first keeps serving. */
	expect((const char *[]){"--socket-path", d.sock, d2.img, NULL}, 1,
	       "is in use by another process", false);
	struct blkt t;
	VT_EQ(blkt_open(&t, d.sock, 1, 64, 1, 4096, PF_DEFAULT), 0);
	VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_IN, 0, NULL, 512), VIRTIO_BLK_S_OK);
	blkt_close(&t);
	kill(pid, SIGTERM);
	VT_EQ(blkt_wait_exit(pid, BLKT_TIMEOUT_MS), 0);

	/* A regular file in the way is not replaced. */
	char file[160];
	snprintf(file, sizeof(file), "%s/notasocket", d2.path);
	VT_REQUIRE(blkt_image_create(file, 10, false) == 0);
	expect((const char *[]){"--socket-path", file, d2.img, NULL}, 1,
	       "exists and is not a socket", false);
	struct stat st;
	VT_CHECK(stat(file, &st) == 0 && S_ISREG(st.st_mode));
	/* Parent directory missing. */
	expect((const char *[]){"--socket-path", "/nonexistent-dir/x.sock", d2.img, NULL}, 1,
	       "cannot listen on '/nonexistent-dir/x.sock'", false);
	/* Path longer than sun_path. */
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	expect((const char *[]){"--socket-path", longp, d2.img, NULL}, 1, "File name too long",
	       false);
	/* --fd that is not a socket / not open. */
	expect((const char *[]){"--fd", "0", d2.img, NULL}, 1, "--fd 0: not a usable stream socket",
	       false);
	expect((const char *[]){"--fd", "77", d2.img, NULL}, 1, "Bad file descriptor", false);
	blkt_dir_remove(&d);
	blkt_dir_remove(&d2);
}

/* A stale socket file (no listener) is replaced. */
VT_CASE(stale_socket_replaced)
{
	struct blkt_dir d;
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, d.sock);
	VT_REQUIRE(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	close(s); /* file stays, nobody listens */
	pid_t pid = start_daemon(&d, NULL);
	VT_REQUIRE(pid > 0);
	struct blkt t;
	VT_EQ(blkt_open(&t, d.sock, 1, 64, 1, 4096, PF_DEFAULT), 0);
	VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_IN, 0, NULL, 512), VIRTIO_BLK_S_OK);
	blkt_close(&t);
	kill(pid, SIGTERM);
	VT_EQ(blkt_wait_exit(pid, BLKT_TIMEOUT_MS), 0);
	blkt_dir_remove(&d);
}

/* SIGTERM / SIGINT: exit 0 and the socket file is gone, also while a front
 * end is connected. */
VT_CASE(signals_stop_cleanly)
{
	int sigs[] = {SIGTERM, SIGINT};
	for (int i = 0; i < 2; i++) {
		for (int connected = 0; connected < 2; connected++) {
			struct blkt_dir d;
			VT_REQUIRE(blkt_dir_make(&d) == 0);
			pid_t pid = start_daemon(&d, (const char *[]){"--num-queues", "2", NULL});
			VT_REQUIRE(pid > 0);
			struct blkt t = {0};
			if (connected) {
				VT_EQ(blkt_open(&t, d.sock, 2, 64, 1, 4096, PF_DEFAULT), 0);
				VT_EQ(blkt_io(&t, 1, VIRTIO_BLK_T_IN, 0, NULL, 512),
				      VIRTIO_BLK_S_OK);
			}
			kill(pid, sigs[i]);
			VT_EQ(blkt_wait_exit(pid, BLKT_TIMEOUT_MS), 0);
			struct stat st;
			VT_CHECK(stat(d.sock, &st) < 0 && errno == ENOENT);
			if (connected)
				blkt_close(&t);
			blkt_dir_remove(&d);
		}
	}
}

/* --fd: an already listening socket (socket activation, libvirt). */
VT_CASE(fd_listening_socket)
{
	struct blkt_dir d;
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	VT_REQUIRE(blkt_image_create(d.img, MIB, true) == 0);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, d.sock);
	VT_REQUIRE(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	VT_REQUIRE(listen(s, 4) == 0);
	pid_t pid = blkt_spawn(&d, (const char *[]){"--fd", "3", d.img, NULL}, s);
	close(s);
	VT_REQUIRE(pid > 0);
	struct blkt t;
	for (int round = 0; round < 2; round++) {
		VT_REQUIRE(blkt_open(&t, d.sock, 1, 64, 1, 4096, PF_DEFAULT) == 0);
		uint8_t buf[512];
		VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_IN, 1, buf, 512), VIRTIO_BLK_S_OK);
		bool same = true;
		for (int i = 0; i < 512; i++)
			same &= buf[i] == blkt_pattern(512 + i, 0);
		VT_CHECK(same);
		blkt_close(&t);
	}
	kill(pid, SIGTERM);
	VT_EQ(blkt_wait_exit(pid, BLKT_TIMEOUT_MS), 0);
	VT_CHECK(strstr(blkt_slurp(d.out), "qemu-system") == NULL); /* no hint with --fd */
	blkt_dir_remove(&d);
}

/* No arguments: default image created in $XDG_DATA_HOME/vhu, default socket
 * in $XDG_RUNTIME_DIR, QEMU command line printed. */
VT_CASE(default_mode)
{
	struct blkt_dir d;
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	char data[128], sock[160], img[160];
	snprintf(data, sizeof(data), "%s/data", d.path);
	snprintf(sock, sizeof(sock), "%s/vhu-blk.sock", d.path);
	snprintf(img, sizeof(img), "%s/vhu/disk.img", data);
	setenv("XDG_DATA_HOME", data, 1);
	setenv("XDG_RUNTIME_DIR", d.path, 1);
	for (int run = 0; run < 2; run++) { /* created, then reused */
		pid_t pid = blkt_spawn(&d, (const char *[]){NULL}, -1);
		VT_REQUIRE(pid > 0);
		VT_REQUIRE(blkt_wait_socket(sock, BLKT_TIMEOUT_MS));
		struct stat st;
		VT_CHECK(stat(img, &st) == 0 && st.st_size == 64 * (off_t)MIB);
		struct blkt t;
		VT_REQUIRE(blkt_open(&t, sock, 1, 64, 1, 4096, PF_DEFAULT) == 0);
		struct virtio_blk_config c;
		VT_EQ(blkt_config(&t, &c), 0);
		VT_EQ(c.capacity, 64 * MIB / 512);
		uint8_t buf[512];
		memset(buf, run ? 0 : 0x42, sizeof(buf));
		if (!run) {
			VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_OUT, 5, buf, 512), VIRTIO_BLK_S_OK);
		} else {
			VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_IN, 5, buf, 512), VIRTIO_BLK_S_OK);
			VT_EQ(buf[0], 0x42); /* the same image was served again */
		}
		blkt_close(&t);
		kill(pid, SIGTERM);
		VT_EQ(blkt_wait_exit(pid, BLKT_TIMEOUT_MS), 0);
		const char *out = blkt_slurp(d.out);
		VT_CHECK(strstr(out, "qemu-system-x86_64") != NULL);
		VT_CHECK(strstr(out, "memory-backend-memfd") != NULL);
		VT_CHECK(strstr(out, "share=on") != NULL);
		VT_CHECK(strstr(out, "vhost-user-blk-pci") != NULL);
		VT_CHECK(strstr(out, sock) != NULL);
	}
	unsetenv("XDG_DATA_HOME");
	unsetenv("XDG_RUNTIME_DIR");
	blkt_dir_remove(&d);
}

/* The descriptor libvirt reads from /usr/share/qemu/vhost-user/. */
VT_CASE(json_descriptor)
{
	char path[4096];
	const char *root = getenv("VHU_BUILD_ROOT");
	snprintf(path, sizeof(path), "%s/devices/blk/50-vhu-blk.json", root ? root : ".");
	const char *j = blkt_slurp(path);
	VT_CHECK(strstr(j, "\"type\": \"block\"") != NULL);
	VT_CHECK(strstr(j, "\"binary\": \"/") != NULL);
	VT_CHECK(strstr(j, "/vhu-blk\"") != NULL);
	VT_CHECK(strstr(j, "\"description\"") != NULL);
	VT_CHECK(j[0] == '{' && strrchr(j, '}') != NULL);
}
