/* SPDX-License-Identifier: Apache-2.0 */
/* vhu-bench's pieces: histogram, /proc readers, option parsing. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "vt.h"

#include "bench.h"
#include "hist.h"
#include "procstat.h"

VT_CASE(hist_buckets_tile_the_range)
{
	/* Every value falls in the bucket whose range holds it, buckets are
	 * contiguous and no wider than 1/32 of their low end. */
	uint64_t vals[] = {0,
	                   1,
	                   31,
	                   32,
	                   33,
	                   63,
	                   64,
	                   65,
	                   1000,
	                   4095,
	                   4096,
	                   123456789,
	                   1ull << 40,
	                   (1ull << 40) + 12345,
	                   UINT64_MAX / 3,
	                   UINT64_MAX};
	for (unsigned i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		unsigned b = hist_index(vals[i]);
		VT_REQUIRE(b < HIST_BUCKETS);
		VT_CHECK(hist_bucket_low(b) <= vals[i]);
		if (b + 1 < HIST_BUCKETS)
			VT_CHECK(vals[i] < hist_bucket_low(b + 1));
	}
	for (unsigned b = 1; b < HIST_BUCKETS; b++) {
		uint64_t lo = hist_bucket_low(b - 1), hi = hist_bucket_low(b);
		VT_CHECK(hi > lo);
		VT_EQ(hist_index(hi - 1), b - 1);
		VT_EQ(hist_index(hi), b);
		if (lo >= HIST_SUB)
			VT_CHECK(hi - lo <= lo / HIST_SUB);
	}
}

VT_CASE(hist_quantiles_uniform)
{
	static struct hist h;
	hist_init(&h);
	VT_EQ(hist_quantile(&h, 0.5), 0);
	for (uint64_t v = 1; v <= 100000; v++)
		hist_add(&h, v * 10);
	VT_EQ(h.count, 100000);
	VT_EQ(h.min, 10);
	VT_EQ(h.max, 1000000);
	double want[][2] = {{0.5, 500000}, {0.99, 990000}, {0.999, 999000}, {0.1, 100000}};
	for (unsigned i = 0; i < 4; i++) {
		double got = (double)hist_quantile(&h, want[i][0]);
		if (fabs(got - want[i][1]) > want[i][1] / 32) {
			fprintf(stderr, "# q %.3f: got %.0f want %.0f\n", want[i][0], got,
			        want[i][1]);
			VT_CHECK(0);
		}
	}
	VT_EQ(hist_quantile(&h, 0), 10);
	VT_EQ(hist_quantile(&h, 1), 1000000);
}

VT_CASE(hist_merge_is_union)
{
	static struct hist a, b, all;
	hist_init(&a);
	hist_init(&b);
	hist_init(&all);
	for (uint64_t v = 0; v < 5000; v++) {
		hist_add(v % 3 ? &a : &b, v * 7 + 3);
		hist_add(&all, v * 7 + 3);
	}
	hist_merge(&a, &b);
	VT_EQ(a.count, all.count);
	VT_EQ(a.sum, all.sum);
	VT_EQ(a.min, all.min);
	VT_EQ(a.max, all.max);
	VT_CHECK(memcmp(a.b, all.b, sizeof(a.b)) == 0);
	VT_EQ(hist_quantile(&a, 0.99), hist_quantile(&all, 0.99));
}

VT_CASE(peer_pid_of_socketpair_is_us)
{
	int sv[2];
	VT_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	VT_EQ(peer_pid(sv[0]), getpid());
	close(sv[0]);
	close(sv[1]);
	VT_CHECK(peer_pid(-1) < 0);
}

VT_CASE(peer_pid_of_child_listener)
{
	/* The listening process, not us, is what SO_PEERCRED names. */
	char path[] = "/tmp/vhu-bench-unit-XXXXXX";
	VT_REQUIRE(mkdtemp(path));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", path);
	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	VT_REQUIRE(ls >= 0);
	VT_REQUIRE(bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	VT_REQUIRE(listen(ls, 1) == 0);
	pid_t child = fork();
	VT_REQUIRE(child >= 0);
	if (child == 0) { /* the "back end": listens by inheritance, accepts */
		int c = accept(ls, NULL, NULL);
		char x;
		if (c >= 0)
			(void)!read(c, &x, 1);
		_exit(0);
	}
	/* The listening socket was created by us, so SO_PEERCRED names the
	 * creator: the parent.  That is what a daemon exec'd by taskset gives. */
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	VT_REQUIRE(c >= 0);
	VT_REQUIRE(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	VT_EQ(peer_pid(c), getpid());
	close(c);
	close(ls);
	waitpid(child, NULL, 0);
	unlink(sa.sun_path);
	rmdir(path);
}

VT_CASE(proc_cpu_counts_our_time)
{
	int64_t t0 = proc_cpu_us(getpid());
	VT_REQUIRE(t0 >= 0);
	struct timespec a, b;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	volatile uint64_t x = 0;
	do { /* burn 200 ms of CPU (CPU time, not wall time) */
		for (int i = 0; i < 100000; i++)
			x += (uint64_t)i;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	} while ((b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec) < 200000000ll);
	(void)x;
	int64_t t1 = proc_cpu_us(getpid());
	VT_CHECK(t1 - t0 >= 100000); /* tick accounting: allow half */
	VT_CHECK(proc_cpu_us(0x7ffffff0) < 0);
	char comm[32];
	proc_comm(getpid(), comm, sizeof(comm));
	VT_CHECK(comm[0] != '\0');
}

VT_CASE(proc_ctxsw_counts_sleeps)
{
	int64_t c0 = proc_ctxsw(getpid());
	VT_REQUIRE(c0 >= 0);
	for (int i = 0; i < 5; i++) { /* each sleep blocks: a voluntary switch */
		struct timespec ts = {.tv_nsec = 1000000};
		nanosleep(&ts, NULL);
	}
	VT_CHECK(proc_ctxsw(getpid()) - c0 >= 5);
	VT_CHECK(proc_ctxsw(0x7ffffff0) < 0);
}

static int parse(const char *line, struct bench_opts *o)
{
	char buf[512], *argv[32];
	int argc = 0;
	snprintf(buf, sizeof(buf), "vhu-bench %s", line);
	for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	FILE *saved = stderr;
	stderr = fopen("/dev/null", "w");
	int r = bench_parse(o, argc, argv);
	fclose(stderr);
	stderr = saved;
	return r;
}

VT_CASE(options)
{
	struct bench_opts o;
	VT_EQ(parse("--socket /s", &o), 0);
	VT_EQ(o.queues, 1);
	VT_EQ(o.depth, 32);
	VT_EQ(o.block_size, 4096);
	VT_CHECK(o.rw == RW_READ && !o.poll && !o.json && o.duration == 5 && o.warmup == 1);
	VT_EQ(parse("--socket /s --queues 4 --queue-depth 128 --block-size 64k --rw randrw "
	            "--duration 0.5 --warmup 0 --poll --json --backend-pid 42",
	            &o),
	      0);
	VT_CHECK(o.queues == 4 && o.depth == 128 && o.block_size == 65536 && o.rw == RW_RANDRW);
	VT_CHECK(o.poll && o.json && o.backend_pid == 42 && o.duration == 0.5 && o.warmup == 0);
	const char *bad[] = {"",
	                     "--socket /s --queues 0",
	                     "--socket /s --queue-depth -1",
	                     "--socket /s --queue-depth 4x",
	                     "--socket /s --block-size 1000",
	                     "--socket /s --rw sideways",
	                     "--socket /s --duration 0",
	                     "--socket /s --duration nan",
	                     "--socket /s --rwmix-read 101",
	                     "--socket /s --bogus",
	                     "--socket /s extra",
	                     "--socket /s --queues 99999999999999999999999"};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i], &o);
		if (r != -EINVAL)
			fprintf(stderr, "# accepted: '%s'\n", bad[i]);
		VT_EQ(r, -EINVAL);
	}
}

VT_MAIN
