/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --client of the program helper (vhu_program_*), with a real daemon
 * process: vhu-rng connects to the test, which listens as QEMU does with
 * server=on, serves it, reconnects after it goes, waits for a front end
 * that is not there yet, and stops on SIGTERM with status 0 whatever it is
 * doing.  Usage errors: --client with --fd.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vhu/frontend.h"
#include "vhu/vhu.h"
#include "vt.h"

VT_MAIN

static char rng[512];

static int64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t spawn(const char *const *args)
{
	pid_t pid = fork();

	if (pid == 0) {
		execv(rng, (char *const *)args);
		_exit(127);
	}
	return pid;
}

/* Exit status, or -1 if it did not exit within ms. */
static int reap(pid_t pid, int timeout_ms)
{
	int64_t end = ms() + timeout_ms;
	int st;

	while (ms() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* Accept the daemon, negotiate, and read 64 random bytes from it. */
static int entropy_session(int lfd)
{
	struct vhuf *f;
	uint64_t gpa;
	uint8_t *buf;
	void *cookie;
	uint32_t len = 0;
	int r = vhuf_accept(&f, lfd, 10000, NULL);

	if (r < 0)
		return r;
	r = vhuf_negotiate(f, VHU_BIT(VHU_F_VERSION_1), 0);
	if (r == 0)
		r = vhuf_queue_setup(f, 0, 64);
	gpa = vhuf_alloc(f, 64, 8);
	if (r == 0) {
		struct vhuf_buf b = {gpa, 64, true};

		r = vhuf_submit(f, 0, &b, 1, false, (void *)1) < 0 ? -ENOSPC : 0;
	}
	if (r == 0) {
		vhuf_kick_force(f, 0);
		r = -ETIMEDOUT;
		for (int i = 0; i < 100 && r; i++)
			if (vhuf_get_used(f, 0, &cookie, &len) == 1)
				r = 0;
			else
				vhuf_wait_call(f, 0, 100);
	}
	buf = vhuf_ptr(f, gpa);
	if (r == 0 && len != 64)
		r = -EIO;
	if (r == 0) {
		bool nonzero = false;

		for (unsigned i = 0; i < 64; i++)
			nonzero |= buf[i] != 0;
		r = nonzero ? 0 : -EIO;
	}
	vhuf_close(f);
	return r;
}

static void mkpath(char *dir, char *path, size_t len)
{
	strcpy(dir, "/tmp/vhu-clientp-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, len, "%s/sock", dir);
}

/* vhu-rng --client: two front ends in turn, then it exits (max 2). */
VT_CASE(rng_client_serves_and_reconnects)
{
	char dir[64], path[128];
	int lfd;
	pid_t pid;

	mkpath(dir, path, sizeof(path));
	lfd = vhuf_listen(path);
	VT_REQUIRE(lfd >= 0);
	const char *args[] = {rng, "--client", "--socket-path", path, "--max-connections",
	                      "2", NULL};
	pid = spawn(args);
	VT_REQUIRE(pid > 0);
	VT_EQ(entropy_session(lfd), 0);
	VT_EQ(entropy_session(lfd), 0);
	VT_EQ(reap(pid, 10000), 0);
	/* It connected: the socket file is the front end's, still there. */
	struct stat st;
	VT_EQ(stat(path, &st), 0);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

/* Started before the front end listens: it waits and connects. */
VT_CASE(rng_client_waits_for_the_frontend)
{
	char dir[64], path[128];
	int lfd;
	pid_t pid;

	mkpath(dir, path, sizeof(path));
	const char *args[] = {rng, "--client", "-s", path, NULL};
	pid = spawn(args);
	VT_REQUIRE(pid > 0);
	usleep(300 * 1000);
	lfd = vhuf_listen(path);
	VT_REQUIRE(lfd >= 0);
	VT_EQ(entropy_session(lfd), 0);
	VT_EQ(entropy_session(lfd), 0); /* and after it went */
	kill(pid, SIGTERM);
	VT_EQ(reap(pid, 10000), 0);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

/* SIGTERM while nobody listens: a clean stop. */
VT_CASE(rng_client_stops_while_waiting)
{
	char dir[64], path[128];
	pid_t pid;

	mkpath(dir, path, sizeof(path));
	const char *args[] = {rng, "--client", "-s", path, NULL};
	pid = spawn(args);
	VT_REQUIRE(pid > 0);
	usleep(200 * 1000);
	kill(pid, SIGTERM);
	VT_EQ(reap(pid, 10000), 0);
	rmdir(dir);
}

VT_CASE(rng_client_usage_errors)
{
	const char *fd[] = {rng, "--client", "--fd", "0", NULL};
	const char *val[] = {rng, "--client=yes", "-s", "/tmp/x", NULL};

	VT_EQ(reap(spawn(fd), 10000), 2);
	VT_EQ(reap(spawn(val), 10000), 2);
}

__attribute__((constructor)) static void find_rng(void)
{
	const char *b = getenv("VHU_BUILD_ROOT");

	snprintf(rng, sizeof(rng), "%s/devices/rng/vhu-rng", b ? b : ".");
}
