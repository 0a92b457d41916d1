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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

#define PROG          "vhu-net"
#define EXIT_USAGE    2
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

static int usage_error(const char *fmt, const char *a)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, a);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	return EXIT_USAGE;
}

/* Strict unsigned parse: digits only, in [min, max]. */
static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

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
		return usage_error("choose one back side: --loopback, --peer or --tap%s", "");
	c->o.mode = m;
	return -1;
}

/* Returns -1 to go on, or an exit code. */
static int parse_option(int opt, const char *arg, struct cli *c)
{
	unsigned long v;

	switch (opt) {
	case 's':
		if (!*arg)
			return usage_error("--socket-path: empty path%s", "");
		if (c->npaths + c->nfds == MAX_ENDPOINTS)
			return usage_error("too many sockets (at most two, with --peer)%s", "");
		c->paths[c->npaths++] = arg;
		return -1;
	case OPT_FD:
		if (!parse_uint(arg, 0, INT_MAX, &v))
			return usage_error("invalid --fd '%s': expected a file descriptor number",
			                   arg);
		if (c->npaths + c->nfds == MAX_ENDPOINTS)
			return usage_error("too many sockets (at most two, with --peer)%s", "");
		c->fds[c->nfds++] = (int)v;
		return -1;
	case 'q':
		if (!parse_uint(arg, 1, NET_MAX_PAIRS, &v))
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
		if (!parse_uint(arg, 68, 65535, &v))
			return usage_error("invalid --mtu '%s': expected 68..65535", arg);
		c->o.mtu = (uint16_t)v;
		return -1;
	case OPT_POLL:
		if (!arg)
			v = 50;
		else if (!parse_uint(arg, 0, 1000000, &v))
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
		return EXIT_USAGE;
	}
}

static int check_args(struct cli *c)
{
	unsigned want = c->o.mode == NET_MODE_PEER ? 2 : 1;

	if (c->print_caps)
		return -1;
	if (c->o.mode == NET_MODE_NONE)
		return usage_error("no back side: give --loopback, --peer or --tap NAME%s", "");
	if (c->npaths + c->nfds != want)
		return usage_error(want == 2
		                       ? "--peer needs two sockets (--socket-path/--fd twice)%s"
		                       : "give one --socket-path PATH or --fd N%s",
		                   "");
	if (c->npaths == 2 && !strcmp(c->paths[0], c->paths[1]))
		return usage_error("--peer: the two socket paths must differ%s", "");
	if (c->nfds == 2 && c->fds[0] == c->fds[1])
		return usage_error("--peer: the two --fd must differ%s", "");
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

static void print_capabilities(void)
{
	printf("{\n  \"type\": \"net\"\n}\n");
}

static void on_signal(int sig)
{
	for (int i = 0; i < MAX_ENDPOINTS; i++)
		if (g_daemons[i])
			vhu_daemon_stop(g_daemons[i]);
}

static int check_fd(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	return type == SOCK_STREAM ? 0 : -EPROTOTYPE;
}

static const char *endpoint_name(const struct cli *c, unsigned i, char *buf, size_t len)
{
	if (i < c->npaths)
		return c->paths[i];
	snprintf(buf, len, "--fd %d", c->fds[i - c->npaths]);
	return buf;
}

/* Listen on a unix socket path: refuse one another process listens on,
 * replace a stale one.  Returns the fd or -errno. */
static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int s, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(s);
			return -EEXIST;
		}
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(s);
			return -EADDRINUSE;
		}
		close(s);
		unlink(path);
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -errno;
	}
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0) {
		err = -errno;
		close(s);
		return err;
	}
	return s;
}

static int start_endpoint(struct cli *c, unsigned i, struct vhu_daemon *dm)
{
	int fd = i < c->npaths ? listen_unix(c->paths[i]) : c->fds[i - c->npaths];

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
	sigset_t block, old;
	int rc = 0;

	for (unsigned i = 0; i < c->nfds; i++) {
		rc = check_fd(c->fds[i]);
		if (rc < 0) {
			fprintf(stderr, PROG ": --fd %d: not a usable stream socket: %s\n",
			        c->fds[i], strerror(-rc));
			return 1;
		}
	}
	/* Worker threads must not take SIGINT/SIGTERM. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	rc = make_devices(c, devs, n);
	if (rc == 0) {
		struct sigaction sa = {.sa_handler = on_signal};
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		rc = serve(c, devs, n, &old);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
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
		print_capabilities();
		return 0;
	}
	return run(&c);
}
