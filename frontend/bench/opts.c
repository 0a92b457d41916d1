/* SPDX-License-Identifier: Apache-2.0 */
/* vhu-bench command line. */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: vhu-bench --socket PATH [options]\n"
    "Drive a vhost-user-blk back end as a virtio-blk guest driver would.\n"
    "  --socket PATH        back end's unix socket (required)\n"
    "  --queues N           queues, one thread each (default 1)\n"
    "  --queue-depth N      requests in flight per queue (default 32)\n"
    "  --block-size BYTES   request size, multiple of 512 (default 4096)\n"
    "  --rw MODE            read | write | randrw (random offsets; default read)\n"
    "  --rwmix-read PCT     reads in randrw, percent (default 50)\n"
    "  --duration SECONDS   measured time (default 5)\n"
    "  --requests N         stop after N requests measured (all queues), or at\n"
    "                       --duration if that comes first (default 0: no count)\n"
    "  --warmup SECONDS     unmeasured time first (default 1)\n"
    "  --poll               spin on the used ring instead of waiting for calls\n"
    "  --rate IOPS          at most this many requests per second in all (paced per\n"
    "                       queue; default 0 = as fast as the back end goes)\n"
    "  --ring-size N        descriptors per queue, power of 2 (default: fits the depth, >= 128)\n"
    "  --no-indirect        one descriptor per buffer instead of indirect tables\n"
    "  --no-event-idx       do not negotiate VIRTIO_RING_F_EVENT_IDX\n"
    "  --packed             use packed rings (VIRTIO_F_RING_PACKED; the back end must offer it)\n"
    "  --backend-pid PID    process whose CPU time to report (default: socket peer)\n"
    "  --seed N             random offsets seed (default 1)\n"
    "  --connect-timeout MS retry connecting this long (default 5000)\n"
    "  --json               print one JSON object instead of text\n"
    "  --idle               set the device up, then submit nothing until the end (an\n"
    "                       idle guest: what does the back end spend meanwhile?)\n"
    "  --log                dirty logging on, as during a live migration: a log region\n"
    "                       (SET_LOG_BASE), VHOST_F_LOG_ALL, VRING_F_LOG on every ring,\n"
    "                       and the log collected every 100 ms (vhuf_log_sync)\n";

enum {
	OPT_SOCKET = 256,
	OPT_QUEUES,
	OPT_DEPTH,
	OPT_BS,
	OPT_RW,
	OPT_MIX,
	OPT_DURATION,
	OPT_REQUESTS,
	OPT_WARMUP,
	OPT_POLL,
	OPT_RING,
	OPT_NO_INDIRECT,
	OPT_NO_EVENT_IDX,
	OPT_PACKED,
	OPT_PID,
	OPT_SEED,
	OPT_RATE,
	OPT_CTMO,
	OPT_JSON,
	OPT_LOG,
	OPT_IDLE,
	OPT_HELP,
};

static const struct option longopts[] = {
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"queues", required_argument, NULL, OPT_QUEUES},
    {"queue-depth", required_argument, NULL, OPT_DEPTH},
    {"iodepth", required_argument, NULL, OPT_DEPTH},
    {"block-size", required_argument, NULL, OPT_BS},
    {"bs", required_argument, NULL, OPT_BS},
    {"rw", required_argument, NULL, OPT_RW},
    {"rwmix-read", required_argument, NULL, OPT_MIX},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"poll", no_argument, NULL, OPT_POLL},
    {"ring-size", required_argument, NULL, OPT_RING},
    {"no-indirect", no_argument, NULL, OPT_NO_INDIRECT},
    {"no-event-idx", no_argument, NULL, OPT_NO_EVENT_IDX},
    {"packed", no_argument, NULL, OPT_PACKED},
    {"backend-pid", required_argument, NULL, OPT_PID},
    {"seed", required_argument, NULL, OPT_SEED},
    {"rate", required_argument, NULL, OPT_RATE},
    {"connect-timeout", required_argument, NULL, OPT_CTMO},
    {"json", no_argument, NULL, OPT_JSON},
    {"log", no_argument, NULL, OPT_LOG},
    {"idle", no_argument, NULL, OPT_IDLE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Strict unsigned parse with bounds; accepts k/K, m/M suffixes (x1024). */
static int parse_uns(const char *name, const char *s, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		goto bad;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno)
		goto bad;
	if (*end == 'k' || *end == 'K') {
		v = v > ULLONG_MAX / 1024 ? ULLONG_MAX : v * 1024;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v = v > ULLONG_MAX / (1024 * 1024) ? ULLONG_MAX : v * 1024 * 1024;
		end++;
	}
	if (*end || v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	fprintf(stderr, "vhu-bench: --%s: '%s' is not a number in [%llu, %llu]\n", name, s ? s : "",
	        lo, hi);
	return -EINVAL;
}

static int parse_secs(const char *name, const char *s, double lo, double *out)
{
	char *end;
	errno = 0;
	double v = s ? strtod(s, &end) : -1;
	if (!s || errno || *end || !(v >= lo) || v > 86400) {
		fprintf(stderr, "vhu-bench: --%s: '%s' is not a number of seconds >= %g\n", name,
		        s ? s : "", lo);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_rw(struct bench_opts *o, const char *s)
{
	if (!strcmp(s, "read") || !strcmp(s, "randread"))
		o->rw = RW_READ;
	else if (!strcmp(s, "write") || !strcmp(s, "randwrite"))
		o->rw = RW_WRITE;
	else if (!strcmp(s, "randrw") || !strcmp(s, "rw"))
		o->rw = RW_RANDRW;
	else {
		fprintf(stderr, "vhu-bench: --rw: '%s' is not read, write or randrw\n", s);
		return -EINVAL;
	}
	return 0;
}

static void defaults(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->queues = 1;
	o->depth = 32;
	o->block_size = 4096;
	o->rw = RW_READ;
	o->read_pct = 50;
	o->duration = 5;
	o->warmup = 1;
	o->indirect = true;
	o->event_idx = true;
	o->seed = 1;
	o->connect_timeout_ms = 5000;
}

static int parse_one(struct bench_opts *o, int c, const char *arg)
{
	unsigned long long v;
	int r = 0;
	switch (c) {
	case OPT_SOCKET:
		o->socket = arg;
		break;
	case OPT_QUEUES:
		r = parse_uns("queues", arg, 1, 64, &v);
		o->queues = (unsigned)v;
		break;
	case OPT_DEPTH:
		r = parse_uns("queue-depth", arg, 1, 1024, &v);
		o->depth = (unsigned)v;
		break;
	case OPT_BS:
		r = parse_uns("block-size", arg, 512, 4u << 20, &v);
		if (!r && v % 512) {
			fprintf(stderr, "vhu-bench: --block-size must be a multiple of 512\n");
			r = -EINVAL;
		}
		o->block_size = (uint32_t)v;
		break;
	case OPT_RW:
		r = parse_rw(o, arg);
		break;
	case OPT_MIX:
		r = parse_uns("rwmix-read", arg, 0, 100, &v);
		o->read_pct = (unsigned)v;
		break;
	case OPT_DURATION:
		r = parse_secs("duration", arg, 0.01, &o->duration);
		break;
	case OPT_REQUESTS:
		r = parse_uns("requests", arg, 0, 1ull << 48, &v);
		o->requests = v;
		break;
	case OPT_WARMUP:
		r = parse_secs("warmup", arg, 0, &o->warmup);
		break;
	case OPT_POLL:
		o->poll = true;
		break;
	case OPT_RING:
		r = parse_uns("ring-size", arg, 2, 32768, &v);
		o->ring_size = (unsigned)v;
		break;
	case OPT_NO_INDIRECT:
		o->indirect = false;
		break;
	case OPT_NO_EVENT_IDX:
		o->event_idx = false;
		break;
	case OPT_PACKED:
		o->packed = true;
		break;
	case OPT_PID:
		r = parse_uns("backend-pid", arg, 1, INT_MAX, &v);
		o->backend_pid = (pid_t)v;
		break;
	case OPT_SEED:
		r = parse_uns("seed", arg, 0, ULLONG_MAX, &v);
		o->seed = v;
		break;
	case OPT_RATE:
		r = parse_uns("rate", arg, 0, 100000000, &v);
		o->rate = v;
		break;
	case OPT_CTMO:
		r = parse_uns("connect-timeout", arg, 0, 600000, &v);
		o->connect_timeout_ms = (int)v;
		break;
	case OPT_IDLE:
		o->idle = true;
		break;
	case OPT_LOG:
		o->log = true;
		break;
	case OPT_JSON:
		o->json = true;
		break;
	default:
		r = -EINVAL;
	}
	return r;
}

int bench_parse(struct bench_opts *o, int argc, char **argv)
{
	int c;
	defaults(o);
	optind = 0; /* full getopt reset: bench_parse may run more than once */
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			fputs(usage, stdout);
			return 1;
		}
		if (c == '?' || parse_one(o, c, optarg) < 0) {
			fputs(usage, stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vhu-bench: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->socket) {
		fprintf(stderr, "vhu-bench: --socket is required\n%s", usage);
		return -EINVAL;
	}
	return 0;
}
