/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-rng: vhost-user virtio-rng back end.  The back-end program
 * conventions (--socket-path, --fd, --print-capabilities, signals, exit
 * statuses) come from libvhu's program helper; this file adds the device's
 * options.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

#define PROG "vhu-rng"

struct cli {
	unsigned max_connections;
	struct rng_opts rng;
};

enum { OPT_SOURCE = 1, OPT_RATE, OPT_MAX_CONN };

static const struct vhu_program_option options[] = {
    {"source", 0, VHU_PROGRAM_ARG, "FILE",
     "read entropy from FILE (e.g. /dev/urandom; a regular\n"
     "file is replayed) instead of getrandom(2)",
     OPT_SOURCE},
    {"max-bytes-per-sec", 0, VHU_PROGRAM_ARG, "N",
     "rate limit (token bucket of N bytes; a request\n"
     "waits until it can be served whole, one larger\n"
     "than N gets N bytes)",
     OPT_RATE},
    {"max-connections", 0, VHU_PROGRAM_ARG, "N", "exit after serving N front ends", OPT_MAX_CONN},
    {0},
};

static int option_u64(struct vhu_program *p, const char *opt, const char *arg, uint64_t min,
                      uint64_t max, uint64_t *v)
{
	if (vhu_program_parse_uint(arg, min, max, v))
		return 0;
	return vhu_program_usage_error(
	    p, "invalid value '%s' for %s (expected an integer in [%" PRIu64 ", %" PRIu64 "])", arg,
	    opt, min, max);
}

static int parse_option(struct vhu_program *p, void *ctx, int key, const char *arg)
{
	struct cli *cli = ctx;
	uint64_t v;
	int err;

	switch (key) {
	case OPT_SOURCE:
		cli->rng.source = arg;
		return 0;
	case OPT_RATE:
		err = option_u64(p, "--max-bytes-per-sec", arg, 1, UINT64_MAX / 2, &v);
		cli->rng.max_bytes_per_sec = err ? 0 : v;
		return err;
	case OPT_MAX_CONN:
		err = option_u64(p, "--max-connections", arg, 1, UINT_MAX, &v);
		cli->max_connections = err ? 0 : (unsigned)v;
		return err;
	}
	return -EINVAL;
}

static struct cli cli;

/* The schema (vhost-user.json, VHostUserBackendCapabilities) defines no
 * feature list for "rng", so only the type is printed. */
static const struct vhu_program_info info = {
    .name = PROG,
    .summary = "vhost-user virtio-rng back end.",
    .help_footer = "Serves one front end at a time, one after another, until SIGINT or\nSIGTERM.",
    .type = "rng",
    .options = options,
    .parse_option = parse_option,
    .ctx = &cli,
};

static int run(struct vhu_program *p, struct rng_dev *rng)
{
	struct vhu_daemon_config cfg = {
	    .name = PROG,
	    .lock = VHU_LOCK_NONE, /* one worker owns all device state */
	    .vring_flavour = VHU_VRING_PLAIN,
	    .max_connections = cli.max_connections,
	};
	struct vhu_daemon *d;
	int err, status;

	err = vhu_daemon_new(&d, &rng_backend_ops, rng, &cfg);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot create daemon: %s\n", strerror(-err));
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	err = rng_dev_attach(rng, d);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot register rate-limit timer: %s\n", strerror(-err));
		status = VHU_PROGRAM_EXIT_FAILURE;
	} else {
		vhu_program_set_daemon(p, 0, d);
		status = vhu_program_run(p);
		vhu_log(VHU_LOG_INFO, "served %" PRIu64 " front end(s), %" PRIu64 " bytes",
		        vhu_daemon_connections(d), rng->bytes);
	}
	vhu_daemon_free(d);
	return status;
}

int main(int argc, char **argv)
{
	struct vhu_program *p;
	struct rng_dev rng;
	int status, err;

	if (!(p = vhu_program_new(&info, argc, argv, &status)))
		return status;
	err = rng_dev_init(&rng, &cli.rng);
	if (err < 0) {
		fprintf(stderr, PROG ": %s: %s\n", cli.rng.source ? cli.rng.source : "timerfd",
		        strerror(-err));
		status = VHU_PROGRAM_EXIT_FAILURE;
	} else {
		status = run(p, &rng);
		rng_dev_fini(&rng);
	}
	vhu_program_free(p);
	return status;
}
