/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-net: a virtio-net device over vhost-user.
 *
 *   vhu-net --loopback -s SOCK           frames come back to the sender
 *   vhu-net --peer -s SOCK_A -s SOCK_B   a cable between two front ends
 *   vhu-net --tap NAME -s SOCK           a Linux tap interface
 *
 * Follows the vhost-user "back-end program conventions" (--socket-path,
 * --fd, --print-capabilities, type "net").  Usage errors exit 2, run-time
 * errors 1, as vhu-blk.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "net.h"

#define PROG          "vhu-net"
#define MAX_ENDPOINTS 2

struct cli {
	struct net_dev_opts o;
	const char *paths[MAX_ENDPOINTS];
	unsigned npaths;
	int fds[MAX_ENDPOINTS];
	unsigned nfds;
	bool bound[MAX_ENDPOINTS]; /* we created the socket file */
	bool print_caps, mac_set;
	int nmodes;
};

static struct vhu_daemon *g_daemons[MAX_ENDPOINTS];

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROG " [OPTIONS]\n"
	        "Serve a virtio-net device over vhost-user.\n"
	        "\n"
	        "Back side (exactly one):\n"
	        "      --loopback          send every frame back to the guest that sent it\n"
	        "      --peer              two sockets; frames cross between them (a cable)\n"
	        "      --tap NAME          a Linux tap interface (created if absent, set up)\n"
	        "\n"
	        "  -s, --socket-path PATH  listen on the unix socket PATH (twice with --peer)\n"
	        "      --fd N              serve the listening or connected socket N instead\n"
	        "                          (twice with --peer; may mix with --socket-path)\n"
	        "  -q, --queues N          queue pairs, 1..%u (default 1)\n"
	        "      --mac MAC           MAC address (default 52:54:00:12:34:56; with --peer\n"
	        "                          the second side gets the last byte + 1)\n"
	        "      --mtu N             MTU to advertise, 68..65535 (default 1500)\n"
	        "      --poll[=US]         poll rings US microseconds after work (default 50)\n"
	        "      --print-capabilities  print the back end's capabilities (JSON) and exit\n"
	        "  -h, --help              this help\n"
	        "  -V, --version           version\n",
	        NET_MAX_PAIRS);
}

#define usage_error(...) cli_usage_error(PROG, __VA_ARGS__)

static bool parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
	           &tail) != 6 ||
	    strlen(s) != 17)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return !(mac[0] & 1); /* a station address, not multicast */
}

enum { OPT_FD = 1000, OPT_LOOPBACK, OPT_PEER, OPT_TAP, OPT_MAC, OPT_MTU, OPT_POLL, OPT_CAPS };

static const struct option long_opts[] = {
    {"socket-path", required_argument, NULL, 's'},
    {"fd", required_argument, NULL, OPT_FD},
    {"queues", required_argument, NULL, 'q'},
    {"loopback", no_argument, NULL, OPT_LOOPBACK},
    {"peer", no_argument, NULL, OPT_PEER},
    {"tap", required_argument, NULL, OPT_TAP},
    {"mac", required_argument, NULL, OPT_MAC},
    {"mtu", required_argument, NULL, OPT_MTU},
    {"poll", optional_argument, NULL, OPT_POLL},
    {"print-capabilities", no_argument, NULL, OPT_CAPS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int set_mode(struct cli *c, enum net_mode m)
{
	if (c->o.mode != NET_MODE_NONE && c->o.mode != m)
		return usage_error("choose one back side: --loopback, --peer or --tap");
	c->o.mode = m;
	return -1;
}

/* Returns -1 to go on, or an exit code. */
static int parse_option(int opt, const char *arg, struct cli *c)
{
	uint64_t v;

	switch (opt) {
	case 's':
		if (!*arg)
			return usage_error("--socket-path: empty path");
		if (c->npaths + c->nfds == MAX_ENDPOINTS)
			return usage_error("too many sockets (at most two, with --peer)");
		c->paths[c->npaths++] = arg;
		return -1;
	case OPT_FD:
		if (!cli_parse_uint(arg, 0, INT_MAX, &v))
			return usage_error("invalid --fd '%s': expected a file descriptor number",
			                   arg);
		if (c->npaths + c->nfds == MAX_ENDPOINTS)
			return usage_error("too many sockets (at most two, with --peer)");
		c->fds[c->nfds++] = (int)v;
		return -1;
	case 'q':
		if (!cli_parse_uint(arg, 1, NET_MAX_PAIRS, &v))
			return usage_error("invalid --queues '%s': expected 1..31 queue pairs",
			                   arg);
		c->o.pairs = (unsigned)v;
		return -1;
	case OPT_LOOPBACK:
		return set_mode(c, NET_MODE_LOOPBACK);
	case OPT_PEER:
		return set_mode(c, NET_MODE_PEER);
	case OPT_TAP:
		if (!*arg || strlen(arg) >= 16 || strchr(arg, '/') || strchr(arg, ' '))
			return usage_error(
			    "invalid --tap '%s': expected an interface name (< 16 chars)", arg);
		c->o.tap = arg;
		return set_mode(c, NET_MODE_TAP);
	case OPT_MAC:
		if (!parse_mac(arg, c->o.mac))
			return usage_error(
			    "invalid --mac '%s': expected a unicast xx:xx:xx:xx:xx:xx", arg);
		c->mac_set = true;
		return -1;
	case OPT_MTU:
		if (!cli_parse_uint(arg, 68, 65535, &v))
			return usage_error("invalid --mtu '%s': expected 68..65535", arg);
		c->o.mtu = (uint16_t)v;
		return -1;
	case OPT_POLL:
		if (!arg)
			v = 50;
		else if (!cli_parse_uint(arg, 0, 1000000, &v))
			return usage_error("invalid --poll '%s': expected 0..1000000 microseconds",
			                   arg);
		c->o.poll_us = (unsigned)v;
		return -1;
	case OPT_CAPS:
		c->print_caps = true;
		return -1;
	case 'h':
		usage(stdout);
		return 0;
	case 'V':
		printf(PROG " " VHU_VERSION_STRING " (libvhu " VHU_VERSION_STRING ")\n");
		return 0;
	default:
		return CLI_EXIT_USAGE;
	}
}

static int check_args(struct cli *c)
{
	unsigned want = c->o.mode == NET_MODE_PEER ? 2 : 1;

	if (c->print_caps)
		return -1;
	if (c->o.mode == NET_MODE_NONE)
		return usage_error("no back side: give --loopback, --peer or --tap NAME");
	if (c->npaths + c->nfds != want)
		return usage_error(want == 2 ? "--peer needs two sockets (--socket-path/--fd twice)"
		                             : "give one --socket-path PATH or --fd N");
	if (c->npaths == 2 && !strcmp(c->paths[0], c->paths[1]))
		return usage_error("--peer: the two socket paths must differ");
	if (c->nfds == 2 && c->fds[0] == c->fds[1])
		return usage_error("--peer: the two --fd must differ");
	return -1;
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	int opt, rc;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":s:q:hV", long_opts, NULL)) != -1) {
		if (opt == '?')
			return usage_error("unknown option '%s'", argv[optind - 1]);
		if (opt == ':')
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		rc = parse_option(opt, optarg, c);
		if (rc >= 0)
			return rc;
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return check_args(c);
}

static void on_signal(int sig)
{
	for (int i = 0; i < MAX_ENDPOINTS; i++)
		if (g_daemons[i])
			vhu_daemon_stop(g_daemons[i]);
}

static const char *endpoint_name(const struct cli *c, unsigned i, char *buf, size_t len)
{
	if (i < c->npaths)
		return c->paths[i];
	snprintf(buf, len, "--fd %d", c->fds[i - c->npaths]);
	return buf;
}

static int start_endpoint(struct cli *c, unsigned i, struct vhu_daemon *dm)
{
	int fd = i < c->npaths ? cli_listen_unix(c->paths[i]) : c->fds[i - c->npaths];

	if (fd < 0)
		return fd;
	if (i < c->npaths)
		c->bound[i] = true;
	return vhu_daemon_start_fd(dm, fd);
}

/* Remove the socket files this process created. */
static void unlink_paths(const struct cli *c)
{
	for (unsigned i = 0; i < c->npaths; i++)
		if (c->bound[i])
			unlink(c->paths[i]);
}

/* Create the devices; prints its own errors. */
static int make_devices(struct cli *c, struct net_dev **devs, unsigned n)
{
	static const char *names[MAX_ENDPOINTS] = {"vhu-net0", "vhu-net1"};
	int rc;

	for (unsigned i = 0; i < n; i++) {
		struct net_dev_opts o = c->o;
		o.name = names[i];
		o.mac[5] = (uint8_t)(o.mac[5] + i);
		rc = net_dev_new(&devs[i], &o);
		if (rc == 0)
			rc = net_dev_attach(devs[i], &o);
		if (rc < 0 && o.mode == NET_MODE_TAP)
			fprintf(stderr, PROG ": cannot open tap '%s': %s\n", o.tap, strerror(-rc));
		else if (rc < 0)
			fprintf(stderr, PROG ": cannot create the device: %s\n", strerror(-rc));
		if (rc < 0)
			return rc;
	}
	if (n == 2)
		net_dev_link(devs[0], devs[1]);
	else
		devs[0]->peer = c->o.mode == NET_MODE_LOOPBACK ? devs[0] : NULL;
	return 0;
}

static int serve(struct cli *c, struct net_dev **devs, unsigned n, const sigset_t *old)
{
	char buf[32];
	int rc = 0, r;

	for (unsigned i = 0; i < n; i++) {
		g_daemons[i] = devs[i]->daemon;
		r = start_endpoint(c, i, devs[i]->daemon);
		if (r < 0) {
			fprintf(stderr, PROG ": cannot serve %s: %s\n",
			        endpoint_name(c, i, buf, 32),
			        r == -EADDRINUSE ? "another process listens there"
			        : r == -EEXIST   ? "exists and is not a socket"
			                         : strerror(-r));
			on_signal(0);
			rc = r;
			n = i;
			break;
		}
		fprintf(stderr, PROG ": %s serving %s (%u queue pair(s), %u thread(s)%s%s)\n",
		        devs[i]->name, endpoint_name(c, i, buf, 32), devs[i]->max_pairs,
		        devs[i]->nthreads, c->o.tap ? ", tap " : "",
		        c->o.tap ? devs[i]->tap_name : "");
	}
	/* Serving threads are started with signals blocked; take them here. */
	pthread_sigmask(SIG_SETMASK, old, NULL);
	/* When one side stops (signal, fatal error) stop the other too. */
	for (unsigned i = 0; i < n; i++) {
		r = vhu_daemon_wait(devs[i]->daemon);
		on_signal(0);
		if (r < 0) {
			fprintf(stderr, PROG ": %s: serving failed: %s\n", devs[i]->name,
			        strerror(-r));
			rc = r;
		}
	}
	return rc;
}

static int run(struct cli *c)
{
	unsigned n = c->o.mode == NET_MODE_PEER ? 2 : 1;
	struct net_dev *devs[MAX_ENDPOINTS] = {NULL, NULL};
	sigset_t old;
	int rc = 0;

	for (unsigned i = 0; i < c->nfds; i++) {
		rc = cli_check_stream_fd(c->fds[i]);
		if (rc < 0) {
			fprintf(stderr, PROG ": --fd %d: not a usable stream socket: %s\n",
			        c->fds[i], strerror(-rc));
			return 1;
		}
	}
	/* Worker threads must not take SIGINT/SIGTERM. */
	cli_signals_mask(SIG_BLOCK, &old);
	rc = make_devices(c, devs, n);
	if (rc == 0) {
		cli_signals_install(on_signal);
		rc = serve(c, devs, n, &old);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	cli_signals_default();
	for (unsigned i = 0; i < n; i++) {
		g_daemons[i] = NULL;
		if (devs[i] && devs[i]->daemon && rc == 0)
			net_dev_print_stats(devs[i]);
	}
	/* Stop every worker before freeing either device of a peer pair. */
	for (unsigned i = 0; i < n; i++) {
		if (devs[i] && devs[i]->daemon) {
			vhu_daemon_free(devs[i]->daemon);
			devs[i]->daemon = NULL;
		}
	}
	for (unsigned i = 0; i < n; i++)
		net_dev_free(devs[i]);
	unlink_paths(c);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct cli c = {
	    .o = {.pairs = 1, .mtu = 1500, .mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}}};
	int rc = parse_args(argc, argv, &c);

	if (rc >= 0)
		return rc;
	if (c.print_caps) {
		cli_print_capabilities("net", NULL);
		return 0;
	}
	return run(&c);
}
