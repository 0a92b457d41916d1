/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-fs-load: FUSE requests at a running vhu-fs through libvhu-frontend
 * (no guest), one request in flight per queue, and the daemon's CPU time
 * per request (its threads' run time, from /proc/PID/task/TID/schedstat).
 *
 *   vhu-fs-load SOCKET PID [-n REQUESTS] [-q QUEUES] WORKLOAD...
 *     getattr   GETATTR of the root
 *     lookup    LOOKUP of an existing name (one FORGET for all at the end)
 *     read4k    READ of 4 KiB at a random 4 KiB offset of a 64 MiB file
 *     write4k   WRITE of 4 KiB, the same way
 *     read1m    READ of 1 MiB
 *     create    CREATE + RELEASE + UNLINK + FORGET of a new name (4 requests)
 *     readdir   OPENDIR + READDIR of a 64-entry directory + RELEASEDIR
 * Prints per workload: requests, seconds, requests/s, daemon CPU us per
 * request; with -q N, N threads each drive their own request queue.
 * The wall-clock figures move with the machine's load; bench/fs/cpu.sh
 * also counts instructions (callgrind), which do not.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fusec.h"

#define ROOT     FUSE_ROOT_ID
#define FILESIZE (64u << 20)

struct ctx {
	struct fusec c;
	uint64_t file, file_fh, dir;
	unsigned nq;
	uint64_t n; /* requests per queue */
};

struct job {
	struct ctx *x;
	unsigned q;
	const char *what;
	uint64_t done, failed;
	unsigned seed;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of every thread of pid in seconds: the sum of the first field
 * of /proc/PID/task/TID/schedstat (nanoseconds; utime/stime tick in 10 ms). */
static double cpu_of(pid_t pid)
{
	char path[64];
	double sum = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p2[300];
		unsigned long long ns;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", pid, e->d_name);
		FILE *f = fopen(p2, "r");
		if (f && fscanf(f, "%llu", &ns) == 1)
			sum += (double)ns / 1e9;
		if (f)
			fclose(f);
	}
	closedir(d);
	return sum;
}

static int call(struct job *j, uint32_t op, uint64_t nodeid, const struct iovec *a, unsigned n,
                size_t cap, struct fusec_reply *r)
{
	int rc = fusec_call(&j->x->c, j->q, op, nodeid, a, n, cap, r);
	j->done++;
	if (rc)
		j->failed++;
	return rc;
}

static void *run(void *arg)
{
	struct job *j = arg;
	struct ctx *x = j->x;
	static __thread uint8_t buf[1 << 20];
	struct fusec_reply r;
	char name[64];

	for (uint64_t i = 0; i < x->n; i++) {
		uint64_t off = (uint64_t)(rand_r(&j->seed) % (FILESIZE / 4096)) * 4096;
		if (!strcmp(j->what, "getattr")) {
			struct fuse_getattr_in in = {0};
			struct iovec a = {&in, sizeof(in)};
			call(j, FUSE_GETATTR, ROOT, &a, 1, 4096, &r);
		} else if (!strcmp(j->what, "lookup")) {
			struct iovec a = {"file", 5};
			call(j, FUSE_LOOKUP, ROOT, &a, 1, 4096, &r);
		} else if (!strcmp(j->what, "read4k") || !strcmp(j->what, "read1m")) {
			uint32_t sz = j->what[4] == '4' ? 4096 : 1u << 20;
			struct fuse_read_in in = {
			    .fh = x->file_fh, .offset = off % (FILESIZE - sz), .size = sz};
			struct iovec a = {&in, sizeof(in)};
			call(j, FUSE_READ, x->file, &a, 1, 16 + sz, &r);
		} else if (!strcmp(j->what, "write4k")) {
			struct fuse_write_in in = {.fh = x->file_fh, .offset = off, .size = 4096};
			struct iovec a[2] = {{&in, sizeof(in)}, {buf, 4096}};
			call(j, FUSE_WRITE, x->file, a, 2, 4096, &r);
		} else if (!strcmp(j->what, "create")) {
			snprintf(name, sizeof(name), "c%u-%llu", j->q, (unsigned long long)i);
			struct fuse_create_in ci = {.flags = O_RDWR, .mode = 0644};
			struct iovec a[2] = {{&ci, sizeof(ci)}, {name, strlen(name) + 1}};
			if (call(j, FUSE_CREATE, ROOT, a, 2, 4096, &r) == 0) {
				struct fuse_entry_out e;
				struct fuse_open_out o;
				memcpy(&e, r.data, sizeof(e));
				memcpy(&o, r.data + sizeof(e), sizeof(o));
				struct fuse_release_in rl = {.fh = o.fh};
				struct iovec ra = {&rl, sizeof(rl)};
				call(j, FUSE_RELEASE, e.nodeid, &ra, 1, 4096, &r);
				struct iovec ua = {name, strlen(name) + 1};
				call(j, FUSE_UNLINK, ROOT, &ua, 1, 4096, &r);
				/* As the guest: the name's inode forgotten once gone
				 * (on this queue: any queue takes FORGET). */
				struct fuse_forget_in fo = {.nlookup = 1};
				struct iovec fa = {&fo, sizeof(fo)};
				call(j, FUSE_FORGET, e.nodeid, &fa, 1, 0, &r);
			}
		} else if (!strcmp(j->what, "readdir")) {
			struct fuse_open_in oi = {0};
			struct iovec oa = {&oi, sizeof(oi)};
			if (call(j, FUSE_OPENDIR, x->dir, &oa, 1, 4096, &r) == 0) {
				struct fuse_open_out o;
				memcpy(&o, r.data, sizeof(o));
				struct fuse_read_in in = {.fh = o.fh, .size = 65536};
				struct iovec a = {&in, sizeof(in)};
				call(j, FUSE_READDIR, x->dir, &a, 1, 16 + 65536, &r);
				struct fuse_release_in rl = {.fh = o.fh};
				struct iovec ra = {&rl, sizeof(rl)};
				call(j, FUSE_RELEASEDIR, x->dir, &ra, 1, 4096, &r);
			}
		}
	}
	return NULL;
}

static int setup(struct ctx *x)
{
	struct fuse_entry_out e;
	static uint8_t buf[1 << 20];
	char name[32];
	int rc = fusec_init(&x->c, FUSE_KERNEL_MINOR_VERSION,
	                    FUSE_ASYNC_READ | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS);
	if (rc == 0)
		rc = fusec_create(&x->c, ROOT, "file", O_RDWR, 0644, &e, &x->file_fh);
	if (rc)
		return rc;
	x->file = e.nodeid;
	memset(buf, 0x5a, sizeof(buf));
	for (uint64_t off = 0; off < FILESIZE; off += sizeof(buf))
		if (fusec_write(&x->c, x->file, x->file_fh, off, buf, sizeof(buf)) != sizeof(buf))
			return -EIO;
	if ((rc = fusec_mkdir(&x->c, ROOT, "dir", 0755, &e)))
		return rc;
	x->dir = e.nodeid;
	for (int i = 0; i < 64; i++) {
		struct fuse_entry_out f;
		snprintf(name, sizeof(name), "entry-with-a-longish-name-%02d", i);
		if ((rc = fusec_mknod(&x->c, x->dir, name, S_IFREG | 0644, 0, &f)))
			return rc;
		fusec_forget(&x->c, f.nodeid, 1);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ctx x = {.nq = 1, .n = 20000};
	int opt;

	while ((opt = getopt(argc, argv, "n:q:")) != -1) {
		if (opt == 'n')
			x.n = strtoull(optarg, NULL, 10);
		else if (opt == 'q')
			x.nq = (unsigned)atoi(optarg);
		else
			return 2;
	}
	if (argc - optind < 2 || x.nq < 1 || x.nq > 16) {
		fprintf(stderr,
		        "usage: vhu-fs-load [-n REQUESTS] [-q QUEUES] SOCKET PID WORKLOAD...\n");
		return 2;
	}
	const char *sock = argv[optind];
	pid_t pid = (pid_t)atoi(argv[optind + 1]);
	int rc = fusec_connect(&x.c, sock, x.nq, 1024);
	if (rc == 0)
		rc = setup(&x);
	if (rc) {
		fprintf(stderr, "vhu-fs-load: set-up failed: %s\n", strerror(-rc));
		return 1;
	}
	printf("%-9s %9s %8s %10s %12s\n", "workload", "requests", "seconds", "req/s",
	       "CPU us/req");
	for (int i = optind + 2; i < argc; i++) {
		struct job jobs[16];
		pthread_t th[16];
		double c0 = cpu_of(pid), t0 = now();
		for (unsigned q = 0; q < x.nq; q++) {
			jobs[q] = (struct job){&x, q + 1, argv[i], 0, 0, q * 7919u + 1};
			pthread_create(&th[q], NULL, run, &jobs[q]);
		}
		uint64_t done = 0, failed = 0;
		for (unsigned q = 0; q < x.nq; q++) {
			pthread_join(th[q], NULL);
			done += jobs[q].done;
			failed += jobs[q].failed;
		}
		double dt = now() - t0, dc = cpu_of(pid) - c0;
		printf("%-9s %9llu %8.2f %10.0f %12.2f%s\n", argv[i], (unsigned long long)done, dt,
		       done / dt, dc * 1e6 / (double)done, failed ? "  (FAILED REQUESTS)" : "");
		fflush(stdout);
		if (failed)
			return 1;
	}
	fusec_close(&x.c);
	return 0;
}
