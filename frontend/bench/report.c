/* SPDX-License-Identifier: Apache-2.0 */
/* vhu-bench output: human text, or one JSON object on stdout. */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>

static const char *rw_name(enum bench_rw rw)
{
	return rw == RW_READ ? "read" : rw == RW_WRITE ? "write" : "randrw";
}

struct derived {
	double iops, mbps, avg_us, p50, p99, p999, max_us;
	double be_us_per_req, be_util, be_ctxsw_per_req, gen_us_per_req, kicks_per_req,
	    calls_per_req;
};

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static double per_req(double v, uint64_t reqs)
{
	return reqs ? v / (double)reqs : 0;
}

static void derive(const struct bench *b, const struct bench_result *r, struct derived *d)
{
	double s = r->seconds > 0 ? r->seconds : 1;
	d->iops = (double)r->reqs / s;
	d->mbps = (double)r->reqs * b->o.block_size / s / 1e6;
	d->avg_us = r->hist.count ? us(r->hist.sum) / (double)r->hist.count : 0;
	d->p50 = us(hist_quantile(&r->hist, 0.50));
	d->p99 = us(hist_quantile(&r->hist, 0.99));
	d->p999 = us(hist_quantile(&r->hist, 0.999));
	d->max_us = us(r->hist.max);
	d->be_us_per_req = per_req((double)r->backend_cpu_us, r->reqs);
	d->be_util = (double)r->backend_cpu_us / 1e6 / s;
	d->be_ctxsw_per_req = per_req((double)r->backend_ctxsw, r->reqs);
	d->gen_us_per_req = per_req((double)r->gen_cpu_us, r->reqs);
	d->kicks_per_req = per_req((double)r->kicks, r->reqs);
	d->calls_per_req = per_req((double)r->calls, r->reqs);
}

void bench_report_text(const struct bench *b, const struct bench_result *r)
{
	struct derived d;
	derive(b, r, &d);
	printf("vhu-bench: %s, %u queue(s) x depth %u, %u-byte %s, %s mode, %.2f s\n", b->o.socket,
	       b->o.queues, b->o.depth, b->o.block_size, rw_name(b->o.rw),
	       b->o.poll ? "poll" : "notify", r->seconds);
	printf("  %s ring %u, indirect %s, event_idx %s, dirty log %s, features 0x%" PRIx64 "\n",
	       b->o.packed ? "packed" : "split", b->ring_size, b->o.indirect ? "on" : "off",
	       b->o.event_idx ? "on" : "off", b->o.log ? "on" : "off", b->features);
	printf("  requests   %" PRIu64 " (%" PRIu64 " reads, %" PRIu64 " writes, %" PRIu64
	       " errors)\n",
	       r->reqs, r->reads, r->writes, r->errors);
	printf("  IOPS       %.0f\n  MB/s       %.1f\n", d.iops, d.mbps);
	printf("  latency us avg %.1f  p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", d.avg_us, d.p50,
	       d.p99, d.p999, d.max_us);
	if (r->backend_cpu_us >= 0)
		printf("  backend    pid %d (%s): %.2f us CPU/request, %.0f%% of a CPU, "
		       "%.3f context switches/request\n",
		       (int)b->backend_pid, r->backend_comm, d.be_us_per_req, d.be_util * 100,
		       d.be_ctxsw_per_req);
	else
		printf("  backend    CPU unknown (no pid; use --backend-pid)\n");
	printf("  generator  %.2f us CPU/request; %.3f kicks/request, %.3f calls/request, "
	       "%" PRIu64 " wait timeouts (%" PRIu64 " with completions pending)\n",
	       d.gen_us_per_req, d.kicks_per_req, d.calls_per_req, r->timeouts, r->stalls);
}

static void json_str(const char *k, const char *v)
{
	printf("\"%s\":\"", k);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	printf("\",");
}

void bench_report_json(const struct bench *b, const struct bench_result *r)
{
	struct derived d;
	derive(b, r, &d);
	putchar('{');
	json_str("socket", b->o.socket);
	json_str("rw", rw_name(b->o.rw));
	json_str("mode", b->o.poll ? "poll" : "notify");
	printf("\"queues\":%u,\"queue_depth\":%u,\"block_size\":%u,\"ring_size\":%u,", b->o.queues,
	       b->o.depth, b->o.block_size, b->ring_size);
	printf("\"rate_limit\":%" PRIu64 ",\"dirty_log\":%s,", b->o.rate,
	       b->o.log ? "true" : "false");
	printf("\"packed\":%s,\"indirect\":%s,\"event_idx\":%s,\"features\":%" PRIu64 ",",
	       b->o.packed ? "true" : "false", b->o.indirect ? "true" : "false",
	       b->o.event_idx ? "true" : "false", b->features);
	printf("\"seconds\":%.6f,\"requests\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",",
	       r->seconds, r->reqs, r->reads, r->writes, r->errors);
	printf("\"iops\":%.1f,\"mbps\":%.3f,", d.iops, d.mbps);
	printf("\"lat_avg_us\":%.3f,\"lat_p50_us\":%.3f,\"lat_p99_us\":%.3f,"
	       "\"lat_p999_us\":%.3f,\"lat_max_us\":%.3f,",
	       d.avg_us, d.p50, d.p99, d.p999, d.max_us);
	if (r->backend_cpu_us >= 0) {
		printf("\"backend_pid\":%d,", (int)b->backend_pid);
		json_str("backend_comm", r->backend_comm);
		printf("\"backend_cpu_us\":%" PRId64 ",\"backend_cpu_us_per_req\":%.4f,"
		       "\"backend_cpu_util\":%.4f,",
		       r->backend_cpu_us, d.be_us_per_req, d.be_util);
		if (r->backend_ctxsw >= 0)
			printf("\"backend_ctxsw_per_req\":%.4f,", d.be_ctxsw_per_req);
	} else {
		printf("\"backend_pid\":null,\"backend_cpu_us\":null,"
		       "\"backend_cpu_us_per_req\":null,\"backend_cpu_util\":null,");
	}
	printf("\"gen_cpu_us_per_req\":%.4f,\"kicks_per_req\":%.4f,\"calls_per_req\":%.4f,"
	       "\"wait_timeouts\":%" PRIu64 ",\"missed_calls\":%" PRIu64 "}\n",
	       d.gen_us_per_req, d.kicks_per_req, d.calls_per_req, r->timeouts, r->stalls);
}
