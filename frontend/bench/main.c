/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-bench main: set up, run the workers through warm-up and the measured
 * window, read the back end's CPU time around that window, report.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"
#include "vhu/frontend.h"

/* Sleep `s` seconds unless the back end hangs up first (false then): a
 * dead back end must fail the run, not report a quiet one.  With
 * --requests, also until every queue completed its share. */
static bool sleep_watching(struct bench *b, double s)
{
	uint64_t end = bench_now_ns() + (uint64_t)(s * 1e9);
	struct pollfd p = {.fd = vhuf_sock(b->f), .events = POLLRDHUP};
	for (;;) {
		uint64_t now = bench_now_ns();
		if (now >= end)
			return true;
		if (b->o.requests && atomic_load(&b->quota_done) == b->o.queues &&
		    atomic_load(&b->phase) == PH_MEASURE)
			return true;
		int ms = (int)((end - now + 999999) / 1000000);
		if (b->o.requests && ms > 5)
			ms = 5;
		int r = poll(&p, 1, ms);
		if (r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
			fprintf(stderr, "vhu-bench: the back end closed the connection\n");
			return false;
		}
		if ((r < 0 && errno != EINTR) || r > 0) {
			/* Cannot watch the socket: just sleep out the rest. */
			struct timespec ts = {.tv_sec = ms / 1000,
			                      .tv_nsec = (ms % 1000) * 1000000L};
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			return true;
		}
	}
}

static int64_t self_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t backend_cpu(const struct bench *b)
{
	return b->backend_pid > 0 ? proc_cpu_us(b->backend_pid) : -1;
}

/* Warm up, then measure; fills the times and CPU counters of r.  Returns
 * false if a worker failed before measuring started or the back end hung
 * up. */
static bool run_window(struct bench *b, struct bench_result *r)
{
	if (!sleep_watching(b, b->o.warmup))
		return false;
	int64_t be0 = backend_cpu(b), gen0 = self_cpu_us();
	int64_t cs0 = b->backend_pid > 0 ? proc_ctxsw(b->backend_pid) : -1;
	uint64_t t0 = bench_now_ns();
	int expect = PH_WARMUP;
	if (!atomic_compare_exchange_strong(&b->phase, &expect, PH_MEASURE))
		return false;
	bool alive = sleep_watching(b, b->o.duration);
	expect = PH_MEASURE;
	atomic_compare_exchange_strong(&b->phase, &expect, PH_STOP);
	uint64_t t1 = bench_now_ns();
	int64_t be1 = backend_cpu(b), gen1 = self_cpu_us();
	int64_t cs1 = b->backend_pid > 0 ? proc_ctxsw(b->backend_pid) : -1;
	r->seconds = (double)(t1 - t0) / 1e9;
	r->backend_cpu_us = be0 >= 0 && be1 >= be0 ? be1 - be0 : -1;
	r->gen_cpu_us = gen1 - gen0;
	r->backend_ctxsw = cs0 >= 0 && cs1 >= cs0 ? cs1 - cs0 : -1;
	return alive;
}

static void collect(struct bench *b, struct bench_result *r)
{
	hist_init(&r->hist);
	for (unsigned q = 0; q < b->o.queues; q++) {
		struct bench_worker *w = &b->w[q];
		r->reqs += w->reqs;
		r->reads += w->reads;
		r->writes += w->writes;
		r->errors += w->errors;
		r->kicks += w->kicks;
		r->calls += w->calls;
		r->timeouts += w->timeouts;
		r->stalls += w->stalls;
		hist_merge(&r->hist, &w->hist);
	}
	if (b->backend_pid > 0)
		proc_comm(b->backend_pid, r->backend_comm, sizeof(r->backend_comm));
}

/* --log: collect the dirty log every 100 ms, as a migrating VMM does. */
static void *log_thread(void *arg)
{
	struct bench *b = arg;

	while (atomic_load(&b->phase) != PH_STOP) {
		usleep(100 * 1000);
		vhuf_log_sync(b->f);
	}
	return NULL;
}

static int run(struct bench *b, struct bench_result *r)
{
	pthread_t th[64], lt;
	unsigned started = 0;
	int err = 0;
	atomic_store(&b->phase, PH_WARMUP);
	if (b->o.log && pthread_create(&lt, NULL, log_thread, b))
		return -EAGAIN;
	for (; started < b->o.queues; started++) {
		err = -pthread_create(&th[started], NULL, bench_worker_run, &b->w[started]);
		if (err < 0)
			break;
	}
	if (!err && !run_window(b, r))
		err = -EIO;
	atomic_store(&b->phase, PH_STOP);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		if (b->w[i].err < 0 && !err)
			err = b->w[i].err;
	}
	if (b->o.log)
		pthread_join(lt, NULL);
	if (err)
		return err;
	collect(b, r);
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	static struct bench_result r;
	int rc = bench_parse(&b.o, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	signal(SIGPIPE, SIG_IGN);
	rc = bench_setup(&b);
	if (rc == 0)
		rc = run(&b, &r);
	if (rc == 0) {
		if (b.o.json)
			bench_report_json(&b, &r);
		else
			bench_report_text(&b, &r);
		fflush(stdout);
	}
	bench_teardown(&b);
	return rc ? 1 : 0;
}
