/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's side of the vhu-fs end-to-end tests, built static (the
 * initramfs has no libc) and run again on the host to check the share:
 *
 *   fsguest write DIR     1000 files of random sizes with a manifest of
 *                         checksums, read back; rename, link, symlink,
 *                         chmod, chown, truncate, fallocate (+ punch hole),
 *                         RENAME_EXCHANGE, mmap write + msync, fsync and
 *                         fdatasync, a 5000-entry directory listed with
 *                         readdir, xattrs, a file locked by flock between
 *                         two processes
 *   fsguest verify DIR    everything `write` left, as it must be (in the
 *                         guest after a remount, then on the host)
 *   fsguest many DIR I N  N files of 4 KiB in DIR/pI (a parallel writer),
 *                         each read back; "manyverify" reads them only
 *   fsguest meta DIR N    create + stat + unlink N files: prints files/s
 *
 * Prints "fsguest: FAIL ..." and exits 1 at the first difference.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define NFILES   1000
#define NMANY    5000
#define MMAP_LEN (64 * 1024)

static const char *dir;

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("fsguest: FAIL ");
	vprintf(fmt, ap);
	printf(" (errno %d: %s)\n", errno, strerror(errno));
	va_end(ap);
	fflush(stdout);
	exit(1);
}

#define CHECK(c, ...)                                                                              \
	do {                                                                                       \
		if (!(c))                                                                          \
			fail(__VA_ARGS__);                                                         \
	} while (0)

static const char *path(const char *fmt, ...)
{
	static char bufs[4][512];
	static int k;
	char rel[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	k = (k + 1) % 4;
	snprintf(bufs[k], sizeof(bufs[k]), "%s/%s", dir, rel);
	return bufs[k];
}

/* Content of file i: a xorshift stream seeded by i. */
static void content(uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Sizes: mostly small, some around page and request boundaries, a few
 * of 1-3 MiB (several 1 MiB FUSE requests). */
static size_t size_of(uint32_t i)
{
	uint32_t r = (i * 2654435761u) >> 8;
	if (i % 100 == 7)
		return (1u << 20) + r % (2u << 20);
	if (i % 10 == 3)
		return 4096 * (1 + r % 8) + (r % 3) - 1;
	return r % 20000;
}

static uint8_t *slurp(const char *p, size_t *len)
{
	struct stat st;
	int fd = open(p, O_RDONLY);
	CHECK(fd >= 0, "open %s", p);
	CHECK(fstat(fd, &st) == 0, "fstat %s", p);
	uint8_t *b = malloc((size_t)st.st_size + 1);
	CHECK(b, "malloc");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
		CHECK(n > 0, "read %s", p);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return b;
}

static void put(const char *p, const uint8_t *b, size_t n, int flags)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | flags, 0644);
	CHECK(fd >= 0, "create %s", p);
	for (size_t done = 0; done < n;) {
		ssize_t k = write(fd, b + done, n - done);
		CHECK(k > 0, "write %s", p);
		done += (size_t)k;
	}
	CHECK(close(fd) == 0, "close %s", p);
}

static void write_files(void)
{
	static uint8_t buf[3u << 20];
	CHECK(mkdir(path("files"), 0755) == 0, "mkdir files");
	FILE *m = fopen(path("manifest"), "w");
	CHECK(m, "manifest");
	for (uint32_t i = 0; i < NFILES; i++) {
		size_t n = size_of(i);
		content(buf, n, i);
		put(path("files/f%04u", i), buf, n, 0);
		fprintf(m, "f%04u %zu %016llx\n", i, n, (unsigned long long)fnv(buf, n));
	}
	CHECK(fclose(m) == 0, "manifest close");
}

static void verify_files(void)
{
	FILE *m = fopen(path("manifest"), "r");
	char name[32];
	size_t n;
	unsigned long long sum;
	unsigned count = 0;
	CHECK(m, "manifest");
	while (fscanf(m, "%31s %zu %llx", name, &n, &sum) == 3) {
		size_t len;
		uint8_t *b = slurp(path("files/%s", name), &len);
		CHECK(len == n, "%s: size %zu, manifest says %zu", name, len, n);
		CHECK(fnv(b, len) == sum, "%s: checksum differs", name);
		free(b);
		count++;
	}
	fclose(m);
	CHECK(count == NFILES, "manifest has %u files", count);
}

static void write_ops(void)
{
	static uint8_t buf[100000];
	struct stat st;

	CHECK(mkdir(path("ops"), 0755) == 0, "mkdir ops");
	content(buf, sizeof(buf), 4242);
	put(path("ops/a"), buf, sizeof(buf), 0);
	CHECK(rename(path("ops/a"), path("ops/b")) == 0, "rename");
	CHECK(link(path("ops/b"), path("ops/hard")) == 0, "link");
	CHECK(symlink("b", path("ops/sym")) == 0, "symlink");
	CHECK(chmod(path("ops/b"), 0640) == 0, "chmod");
	CHECK(chown(path("ops/b"), 1234, 5678) == 0, "chown");
	put(path("ops/trunc"), buf, sizeof(buf), 0);
	CHECK(truncate(path("ops/trunc"), 12345) == 0, "truncate");
	int fd = open(path("ops/falloc"), O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0, "falloc create");
	CHECK(fallocate(fd, 0, 0, 1 << 20) == 0, "fallocate");
	CHECK(pwrite(fd, buf, 16384, 0) == 16384, "falloc write");
	CHECK(fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 4096, 4096) == 0,
	      "punch hole");
	CHECK(fsync(fd) == 0, "fsync");
	close(fd);
	put(path("ops/x1"), (const uint8_t *)"one", 3, 0);
	put(path("ops/x2"), (const uint8_t *)"two", 3, 0);
	CHECK(renameat2(AT_FDCWD, path("ops/x1"), AT_FDCWD, path("ops/x2"), RENAME_EXCHANGE) == 0,
	      "RENAME_EXCHANGE");
	CHECK(renameat2(AT_FDCWD, path("ops/x1"), AT_FDCWD, path("ops/x2"), RENAME_NOREPLACE) < 0 &&
	          errno == EEXIST,
	      "RENAME_NOREPLACE over a file");
	/* mmap write + msync */
	fd = open(path("ops/mmap"), O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && ftruncate(fd, MMAP_LEN) == 0, "mmap file");
	uint8_t *p = mmap(NULL, MMAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap");
	content(p, MMAP_LEN, 777);
	CHECK(msync(p, MMAP_LEN, MS_SYNC) == 0, "msync");
	CHECK(munmap(p, MMAP_LEN) == 0, "munmap");
	close(fd);
	/* fsync / fdatasync of fresh data */
	fd = open(path("ops/synced"), O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && write(fd, buf, 5000) == 5000, "synced write");
	CHECK(fdatasync(fd) == 0 && fsync(fd) == 0, "fdatasync/fsync");
	close(fd);
	CHECK(stat(path("ops/b"), &st) == 0 && st.st_nlink == 2, "nlink after link");
}

static void verify_ops(void)
{
	static uint8_t buf[100000], mm[MMAP_LEN];
	struct stat st;
	size_t n;
	char t[64];

	content(buf, sizeof(buf), 4242);
	CHECK(access(path("ops/a"), F_OK) < 0, "ops/a still there after rename");
	uint8_t *b = slurp(path("ops/b"), &n);
	CHECK(n == sizeof(buf) && !memcmp(b, buf, n), "ops/b content");
	free(b);
	CHECK(stat(path("ops/b"), &st) == 0, "stat ops/b");
	CHECK((st.st_mode & 07777) == 0640, "ops/b mode %o", st.st_mode & 07777);
	CHECK(st.st_uid == 1234 && st.st_gid == 5678, "ops/b owner %u:%u", st.st_uid, st.st_gid);
	CHECK(st.st_nlink == 2, "ops/b nlink %lu", (unsigned long)st.st_nlink);
	struct stat hs;
	CHECK(stat(path("ops/hard"), &hs) == 0 && hs.st_ino == st.st_ino, "hard link");
	ssize_t k = readlink(path("ops/sym"), t, sizeof(t));
	CHECK(k == 1 && t[0] == 'b', "symlink target");
	CHECK(stat(path("ops/trunc"), &st) == 0 && st.st_size == 12345, "truncate size");
	b = slurp(path("ops/trunc"), &n);
	CHECK(n == 12345 && !memcmp(b, buf, n), "truncated content");
	free(b);
	b = slurp(path("ops/falloc"), &n);
	CHECK(n == 1u << 20, "falloc size %zu", n);
	CHECK(!memcmp(b, buf, 4096) && !memcmp(b + 8192, buf + 8192, 8192), "falloc data");
	for (size_t i = 4096; i < 8192; i++)
		CHECK(b[i] == 0, "punched hole not zero at %zu", i);
	for (size_t i = 16384; i < n; i++)
		CHECK(b[i] == 0, "fallocated range not zero at %zu", i);
	free(b);
	b = slurp(path("ops/x1"), &n);
	CHECK(n == 3 && !memcmp(b, "two", 3), "RENAME_EXCHANGE x1");
	free(b);
	b = slurp(path("ops/mmap"), &n);
	content(mm, MMAP_LEN, 777);
	CHECK(n == MMAP_LEN && !memcmp(b, mm, n), "mmap'd content");
	free(b);
	b = slurp(path("ops/synced"), &n);
	CHECK(n == 5000 && !memcmp(b, buf, n), "synced content");
	free(b);
}

static void write_many(void)
{
	CHECK(mkdir(path("many"), 0755) == 0, "mkdir many");
	for (int i = 0; i < NMANY; i++) {
		int fd = open(path("many/entry-%05d", i), O_CREAT | O_WRONLY | O_EXCL, 0644);
		CHECK(fd >= 0, "many/entry-%05d", i);
		close(fd);
	}
}

static void verify_many(void)
{
	static bool seen[NMANY];
	DIR *d = opendir(path("many"));
	struct dirent *e;
	int n = 0, dots = 0;
	CHECK(d, "opendir many");
	memset(seen, 0, sizeof(seen));
	errno = 0;
	while ((e = readdir(d))) {
		int i;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
			dots++;
			continue;
		}
		CHECK(sscanf(e->d_name, "entry-%05d", &i) == 1 && i >= 0 && i < NMANY && !seen[i],
		      "readdir: unexpected or repeated entry %s", e->d_name);
		seen[i] = true;
		n++;
	}
	CHECK(errno == 0, "readdir");
	closedir(d);
	CHECK(n == NMANY && dots == 2, "readdir: %d entries and %d dots", n, dots);
}

static void xattrs(bool write)
{
	char v[64];
	if (write) {
		CHECK(setxattr(path("ops/b"), "user.keep", "kept", 4, 0) == 0, "setxattr");
		CHECK(setxattr(path("ops/b"), "user.gone", "x", 1, 0) == 0, "setxattr 2");
		CHECK(removexattr(path("ops/b"), "user.gone") == 0, "removexattr");
		CHECK(setxattr(path("ops/b"), "user.keep", "no", 2, XATTR_CREATE) < 0 &&
		          errno == EEXIST,
		      "XATTR_CREATE over an existing one");
	}
	ssize_t n = getxattr(path("ops/b"), "user.keep", v, sizeof(v));
	CHECK(n == 4 && !memcmp(v, "kept", 4), "getxattr user.keep");
	CHECK(getxattr(path("ops/b"), "user.gone", v, sizeof(v)) < 0 && errno == ENODATA,
	      "user.gone still there");
	n = listxattr(path("ops/b"), v, sizeof(v));
	CHECK(n > 0 && memmem(v, (size_t)n, "user.keep", 10), "listxattr");
}

/* Two processes, one file: the second waits until the first unlocks. */
static void flocks(void)
{
	int fd = open(path("lockfile"), O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0, "flock");
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int f2 = open(path("lockfile"), O_RDWR);
		if (f2 < 0 || flock(f2, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			_exit(2);
		if (flock(f2, LOCK_EX) != 0) /* blocks until the parent unlocks */
			_exit(3);
		_exit(access(path("unlocked"), F_OK) == 0 ? 0 : 4);
	}
	usleep(300000);
	put(path("unlocked"), (const uint8_t *)"1", 1, 0);
	CHECK(flock(fd, LOCK_UN) == 0, "unlock");
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "flock child exit %d", WEXITSTATUS(st));
	close(fd);
}

static void many_writer(unsigned id, unsigned n, bool write)
{
	static uint8_t buf[4096];
	if (write)
		CHECK(mkdir(path("p%u", id), 0755) == 0 || errno == EEXIST, "mkdir p%u", id);
	for (unsigned i = 0; i < n; i++) {
		content(buf, sizeof(buf), id * 100000 + i);
		if (write)
			put(path("p%u/%u", id, i), buf, sizeof(buf), 0);
		size_t len;
		uint8_t *b = slurp(path("p%u/%u", id, i), &len);
		CHECK(len == sizeof(buf) && !memcmp(b, buf, len), "p%u/%u read back", id, i);
		free(b);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* create + stat + unlink of n files, timed: files per second. */
static void meta(unsigned n)
{
	struct stat st;
	CHECK(mkdir(path("meta"), 0755) == 0 || errno == EEXIST, "mkdir meta");
	double t0 = now();
	for (unsigned i = 0; i < n; i++) {
		int fd = open(path("meta/m%u", i), O_CREAT | O_WRONLY | O_EXCL, 0644);
		CHECK(fd >= 0, "meta create");
		close(fd);
	}
	for (unsigned i = 0; i < n; i++)
		CHECK(stat(path("meta/m%u", i), &st) == 0, "meta stat");
	for (unsigned i = 0; i < n; i++)
		CHECK(unlink(path("meta/m%u", i)) == 0, "meta unlink");
	double dt = now() - t0;
	printf("fsguest: meta %u files in %.3f s: %.0f files/s\n", n, dt, n / dt);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fsguest write|verify|many|meta DIR [N]\n");
		return 2;
	}
	dir = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	bool with_xattr = getenv("FSGUEST_XATTR") != NULL;
	if (!strcmp(argv[1], "write")) {
		write_files();
		verify_files();
		write_ops();
		verify_ops();
		write_many();
		verify_many();
		if (with_xattr)
			xattrs(true);
		flocks();
	} else if (!strcmp(argv[1], "verify")) {
		verify_files();
		verify_ops();
		verify_many();
		if (with_xattr)
			xattrs(false);
	} else if (!strncmp(argv[1], "many", 4) && argc > 4) {
		many_writer((unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
		            !strcmp(argv[1], "many"));
	} else if (!strcmp(argv[1], "meta") && argc > 3) {
		meta((unsigned)atoi(argv[3]));
		return 0;
	} else {
		return 2;
	}
	printf("fsguest: %s %s OK\n", argv[1], dir);
	return 0;
}
