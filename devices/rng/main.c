/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-rng: vhost-user virtio-rng back end.  Command line per the
 * vhost-user spec's "Backend program conventions" (--socket-path, --fd,
 * --print-capabilities), plus device options.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "rng.h"

#define PROG "vhu-rng"

struct cli {
	const char *socket_path;
	int fd;
	unsigned max_connections;
	int verbose;
	struct rng_opts rng;
};

/* Read by the signal handler.  SIGINT/SIGTERM are blocked in every thread
 * but main (the workers inherit the mask at vhu_daemon_new), and main
 * blocks them again before freeing the daemon. */
static struct vhu_daemon *volatile g_daemon;

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROG " (--socket-path PATH | --fd FD) [OPTION...]\n"
	        "vhost-user virtio-rng back end (libvhu " VHU_VERSION_STRING ").\n"
	        "\n"
	        "  -s, --socket-path PATH       listen on unix socket PATH\n"
	        "      --fd FD                  serve the listening (or connected) unix\n"
	        "                               socket FD inherited from the parent\n"
	        "      --source FILE            read entropy from FILE (e.g. /dev/urandom;\n"
	        "                               a regular file is replayed) instead of\n"
	        "                               getrandom(2)\n"
	        "      --max-bytes-per-sec N    rate limit (token bucket of N bytes; a request\n"
	        "                               waits until it can be served whole, one\n"
	        "                               larger than N gets N bytes)\n"
	        "      --max-connections N      exit after serving N front ends\n"
	        "  -v, --verbose                more log output (repeat for debug)\n"
	        "      --print-capabilities     print capabilities as JSON and exit\n"
	        "  -h, --help                   print this help and exit\n"
	        "  -V, --version                print the version and exit\n"
	        "\n"
	        "Serves one front end at a time, one after another, until SIGINT or\n"
	        "SIGTERM.\n");
}

/* A usage error exits at once (status CLI_EXIT_USAGE). */
#define usage_error(...) exit(cli_usage_error(PROG, __VA_ARGS__))

static uint64_t option_u64(const char *opt, const char *arg, uint64_t min, uint64_t max)
{
	uint64_t v;
	if (!cli_parse_uint(arg, min, max, &v))
		usage_error("invalid value '%s' for %s (expected an integer in [%" PRIu64
		            ", %" PRIu64 "])",
		            arg, opt, min, max);
	return v;
}

/* --fd must be a stream unix socket we inherited. */
static void check_fd(int fd)
{
	struct stat st;
	int domain = 0, type = 0;
	socklen_t len = sizeof(int);

	if (fstat(fd, &st) < 0)
		usage_error("--fd %d: %s", fd, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		usage_error("--fd %d: not a socket", fd);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
		usage_error("--fd %d: not a unix domain socket", fd);
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		usage_error("--fd %d: not a stream socket", fd);
}

enum {
	OPT_FD = 256,
	OPT_SOURCE,
	OPT_RATE,
	OPT_MAX_CONN,
	OPT_CAPS,
};

static const struct option long_opts[] = {
    {"socket-path", required_argument, NULL, 's'},
    {"fd", required_argument, NULL, OPT_FD},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"max-bytes-per-sec", required_argument, NULL, OPT_RATE},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"verbose", no_argument, NULL, 'v'},
    {"print-capabilities", no_argument, NULL, OPT_CAPS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* The spec: with --print-capabilities, other options are ignored.  The
 * schema (vhost-user.json, VHostUserBackendCapabilities) defines no
 * feature list for "rng", so only the type is printed. */
static bool wants_capabilities(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--print-capabilities") == 0)
			return true;
	return false;
}

static void parse_args(struct cli *cli, int argc, char **argv)
{
	int c;
	bool have_fd = false;

	opterr = 0; /* we print our own messages */
	while ((c = getopt_long(argc, argv, ":s:vhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!*optarg)
				usage_error("--socket-path: empty path");
			cli->socket_path = optarg;
			break;
		case OPT_FD:
			cli->fd = (int)option_u64("--fd", optarg, 0, INT_MAX);
			have_fd = true;
			break;
		case OPT_SOURCE:
			cli->rng.source = optarg;
			break;
		case OPT_RATE:
			cli->rng.max_bytes_per_sec =
			    option_u64("--max-bytes-per-sec", optarg, 1, UINT64_MAX / 2);
			break;
		case OPT_MAX_CONN:
			cli->max_connections =
			    (unsigned)option_u64("--max-connections", optarg, 1, UINT_MAX);
			break;
		case 'v':
			cli->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(PROG " " VHU_VERSION_STRING "\n");
			exit(0);
		case ':':
			usage_error("option '%s' requires an argument", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("invalid option '-%c'", optopt);
			usage_error("unrecognized option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (cli->socket_path && have_fd)
		usage_error("--socket-path and --fd are mutually exclusive");
	if (!cli->socket_path && !have_fd)
		usage_error("one of --socket-path or --fd is required");
	if (have_fd)
		check_fd(cli->fd);
	else
		cli->fd = -1;
}

static void on_signal(int sig)
{
	if (g_daemon)
		vhu_daemon_stop(g_daemon); /* async-signal-safe */
}

static int run(struct cli *cli, struct rng_dev *rng)
{
	struct vhu_daemon_config cfg = {
	    .name = PROG,
	    .lock = VHU_LOCK_NONE, /* one worker owns all device state */
	    .vring_flavour = VHU_VRING_PLAIN,
	    .max_connections = cli->max_connections,
	};
	struct vhu_daemon *d;

	cli_signals_mask(SIG_BLOCK, NULL); /* inherited by the worker threads */
	int err = vhu_daemon_new(&d, &rng_backend_ops, rng, &cfg);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot create daemon: %s\n", strerror(-err));
		return err;
	}
	g_daemon = d;
	err = rng_dev_attach(rng, g_daemon);
	if (err < 0)
		fprintf(stderr, PROG ": cannot register rate-limit timer: %s\n", strerror(-err));
	if (err == 0)
		err = cli_signals_install(on_signal);
	cli_signals_mask(SIG_UNBLOCK, NULL); /* a signal that came meanwhile stops serve() */
	if (err == 0) {
		if (cli->socket_path)
			err = vhu_daemon_serve(g_daemon, cli->socket_path);
		else
			err = vhu_daemon_serve_fd(g_daemon, cli->fd);
		if (err < 0)
			fprintf(stderr, PROG ": cannot serve %s: %s\n",
			        cli->socket_path ? cli->socket_path : "--fd", strerror(-err));
	}
	vhu_log(VHU_LOG_INFO, PROG ": served %" PRIu64 " front end(s), %" PRIu64 " bytes",
	        vhu_daemon_connections(d), rng->bytes);
	cli_signals_mask(SIG_BLOCK, NULL);
	g_daemon = NULL;
	vhu_daemon_free(d);
	/* The socket file is ours only once we listened on it. */
	if (err == 0 && cli->socket_path)
		unlink(cli->socket_path);
	return err;
}

int main(int argc, char **argv)
{
	struct cli cli = {.fd = -1};
	struct rng_dev rng;

	if (wants_capabilities(argc, argv)) {
		cli_print_capabilities("rng", NULL);
		return 0;
	}
	parse_args(&cli, argc, argv);
	if (cli.verbose)
		vhu_log_set_level(cli.verbose > 1 ? VHU_LOG_DEBUG : VHU_LOG_INFO);

	int err = rng_dev_init(&rng, &cli.rng);
	if (err < 0) {
		fprintf(stderr, PROG ": %s: %s\n", cli.rng.source ? cli.rng.source : "timerfd",
		        strerror(-err));
		return 1;
	}
	err = run(&cli, &rng);
	rng_dev_fini(&rng);
	return err < 0 ? 1 : 0;
}
