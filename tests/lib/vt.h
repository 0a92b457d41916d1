/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal test harness: each test program runs named cases and prints TAP,
 * exits non-zero if any check failed.
 *
 *   VT_CASE(name) { VT_CHECK(x == 1); VT_EQ(a, b); }
 *   int main(void) { return vt_run(argc, argv); }   -- cases self-register
 */
#ifndef VT_H
#define VT_H

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef void (*vt_fn)(void);
struct vt_case {
	const char *name;
	vt_fn fn;
};

#define VT_MAX_CASES 512
extern struct vt_case vt_cases[VT_MAX_CASES];
extern int vt_ncases;
extern int vt_failed_checks;

#define VT_CASE(name)                                                                              \
	static void vt_case_##name(void);                                                          \
	__attribute__((constructor)) static void vt_reg_##name(void)                               \
	{                                                                                          \
		if (vt_ncases < VT_MAX_CASES)                                                      \
			vt_cases[vt_ncases++] = (struct vt_case){#name, vt_case_##name};           \
	}                                                                                          \
	static void vt_case_##name(void)

#define VT_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			vt_failed_checks++;                                                        \
		}                                                                                  \
	} while (0)

#define VT_EQ(a, b)                                                                                \
	do {                                                                                       \
		long long vt_a_ = (long long)(a), vt_b_ = (long long)(b);                          \
		if (vt_a_ != vt_b_) {                                                              \
			fprintf(stderr, "# %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
			        __LINE__, #a, #b, vt_a_, vt_b_);                                   \
			vt_failed_checks++;                                                        \
		}                                                                                  \
	} while (0)

/* Fatal: stop this case (the run goes on with the next). */
#define VT_REQUIRE(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "# %s:%d: required: %s\n", __FILE__, __LINE__, #cond);     \
			vt_failed_checks++;                                                        \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* Open fds of this process. */
static inline int vt_count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

/* Mappings of process `pid` (0: this one) whose /proc maps line contains
 * `name` (NULL: every mapping).  -1 if the maps file cannot be read. */
static inline int vt_count_maps_named(int pid, const char *name)
{
	char path[64], line[512];
	int n = 0;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/maps");
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!name || strstr(line, name))
			n++;
	fclose(f);
	return n;
}

/* Mappings of this process. */
static inline int vt_count_maps(void)
{
	return vt_count_maps_named(0, NULL);
}

/* Sleep ms milliseconds. */
static inline void vt_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Start argv[0] (a path) with stdin from /dev/null and stdout/stderr into
 * the files out/err (created); keep_fd >= 0 is passed on as fd 3 (socket
 * activation).  The child's pid, or -1. */
static inline pid_t vt_spawn(const char *const *argv, const char *out, const char *err, int keep_fd)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int nul = open("/dev/null", O_RDONLY);
	if (o < 0 || e < 0 || nul < 0)
		_exit(126);
	if (keep_fd == 3)
		fcntl(3, F_SETFD, 0);
	else if (keep_fd >= 0 && dup2(keep_fd, 3) < 0)
		_exit(126);
	dup2(nul, 0);
	dup2(o, 1);
	dup2(e, 2);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

/* Wait up to timeout_ms for pid to exit: its exit code, 128 + signal, or
 * -1 on timeout (the child is then SIGKILLed and reaped). */
static inline int vt_wait_exit(pid_t pid, int timeout_ms)
{
	int st;
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0)
			return -1;
		struct timespec ts = {.tv_nsec = 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* A whole (small) file, NUL terminated, in a static buffer (64 KiB at
 * most, overwritten by the next call); "" if unreadable. */
static inline const char *vt_slurp(const char *path)
{
	static char buf[65536];
	buf[0] = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return buf;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

/* Wait (10 s at most) for a condition another thread or process makes
 * true; the value of the condition at the end. */
#define VT_WAIT_FOR(cond)                                                                          \
	({                                                                                         \
		for (int vt_i_ = 0; vt_i_ < 10000 && !(cond); vt_i_++)                             \
			vt_sleep_ms(1);                                                            \
		(bool)(cond);                                                                      \
	})

/* Path of `name` in this test program's scratch directory (created in /tmp
 * on first use, removed at exit once the daemons removed their sockets).
 * The result is overwritten by the next call. */
static inline void vt_rm_scratch(void);
static char vt_scratch[64];
static inline const char *vt_sock_path(const char *name)
{
	static char p[128];

	if (!vt_scratch[0]) {
		strcpy(vt_scratch, "/tmp/vhu-test-XXXXXX");
		if (!mkdtemp(vt_scratch))
			abort();
		atexit(vt_rm_scratch);
	}
	snprintf(p, sizeof(p), "%s/%s", vt_scratch, name);
	return p;
}

static inline void vt_rm_scratch(void)
{
	rmdir(vt_scratch);
}

int vt_run(int argc, char **argv);

/* Define once per test program (in the file with main). */
#define VT_MAIN                                                                                    \
	struct vt_case vt_cases[VT_MAX_CASES];                                                     \
	int vt_ncases;                                                                             \
	int vt_failed_checks;                                                                      \
	int vt_run(int argc, char **argv)                                                          \
	{                                                                                          \
		int bad = 0;                                                                       \
		printf("1..%d\n", vt_ncases);                                                      \
		for (int i = 0; i < vt_ncases; i++) {                                              \
			int before = vt_failed_checks;                                             \
			if (argc > 1 && !strstr(vt_cases[i].name, argv[1])) {                      \
				printf("ok %d - %s # SKIP filtered\n", i + 1, vt_cases[i].name);   \
				continue;                                                          \
			}                                                                          \
			fprintf(stderr, "# case %s\n", vt_cases[i].name);                          \
			vt_cases[i].fn();                                                          \
			bool ok = vt_failed_checks == before;                                      \
			bad += !ok;                                                                \
			printf("%s %d - %s\n", ok ? "ok" : "not ok", i + 1, vt_cases[i].name);     \
			fflush(stdout);                                                            \
		}                                                                                  \
		return bad ? 1 : 0;                                                                \
	}                                                                                          \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return vt_run(argc, argv);                                                         \
	}

#endif
