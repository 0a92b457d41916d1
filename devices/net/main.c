/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-net: a virtio-net device over vhost-user.
 *
 *   vhu-net --loopback -s SOCK           frames come back to the sender
 *   vhu-net --peer -s SOCK_A -s SOCK_B   a cable between two front ends
 *   vhu-net --tap NAME -s SOCK           a Linux tap interface
 *
 * The vhost-user back-end program conventions (--socket-path, --fd,
 * --print-capabilities with type "net", signals, exit statuses) come from
 * libvhu's program helper; this file adds the device's options.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

#define PROG          "vhu-net"
#define MAX_ENDPOINTS 2

struct cli {
	struct net_dev_opts o;
	bool mac_set;
};

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

enum { OPT_LOOPBACK = 1, OPT_PEER, OPT_TAP, OPT_QUEUES, OPT_MAC, OPT_MTU, OPT_POLL };

static const struct vhu_program_option options[] = {
    {NULL, 0, 0, NULL, "Back side (exactly one):", 0},
    {"loopback", 0, VHU_PROGRAM_NO_ARG, NULL, "send every frame back to the guest that sent it",
     OPT_LOOPBACK},
    {"peer", 0, VHU_PROGRAM_NO_ARG, NULL, "two sockets; frames cross between them (a cable)",
     OPT_PEER},
    {"tap", 0, VHU_PROGRAM_ARG, "NAME", "a Linux tap interface (created if absent, set up)",
     OPT_TAP},
    {NULL, 0, 0, NULL, "Device:", 0},
    {"queues", 'q', VHU_PROGRAM_ARG, "N", "queue pairs, 1..31 (default 1)", OPT_QUEUES},
    {"mac", 0, VHU_PROGRAM_ARG, "MAC",
     "MAC address (default 52:54:00:12:34:56; with --peer\n"
     "the second side gets the last byte + 1)",
     OPT_MAC},
    {"mtu", 0, VHU_PROGRAM_ARG, "N", "MTU to advertise, 68..65535 (default 1500)", OPT_MTU},
    {"poll", 0, VHU_PROGRAM_OPTIONAL_ARG, "US",
     "poll rings US microseconds after work (default 50)", OPT_POLL},
    {0},
};

static int set_mode(struct vhu_program *p, struct cli *c, enum net_mode m)
{
	if (c->o.mode != NET_MODE_NONE && c->o.mode != m)
		return vhu_program_usage_error(p,
		                               "choose one back side: --loopback, --peer or --tap");
	c->o.mode = m;
	return 0;
}

static int parse_option(struct vhu_program *p, void *ctx, int key, const char *arg)
{
	struct cli *c = ctx;
	uint64_t v;

	switch (key) {
	case OPT_QUEUES:
		if (!vhu_program_parse_uint(arg, 1, NET_MAX_PAIRS, &v))
			return vhu_program_usage_error(
			    p, "invalid --queues '%s': expected 1..%u queue pairs", arg,
			    NET_MAX_PAIRS);
		c->o.pairs = (unsigned)v;
		return 0;
	case OPT_LOOPBACK:
		return set_mode(p, c, NET_MODE_LOOPBACK);
	case OPT_PEER:
		return set_mode(p, c, NET_MODE_PEER);
	case OPT_TAP:
		if (!*arg || strlen(arg) >= 16 || strchr(arg, '/') || strchr(arg, ' '))
			return vhu_program_usage_error(
			    p, "invalid --tap '%s': expected an interface name (< 16 chars)", arg);
		c->o.tap = arg;
		return set_mode(p, c, NET_MODE_TAP);
	case OPT_MAC:
		if (!parse_mac(arg, c->o.mac))
			return vhu_program_usage_error(
			    p, "invalid --mac '%s': expected a unicast xx:xx:xx:xx:xx:xx", arg);
		c->mac_set = true;
		return 0;
	case OPT_MTU:
		if (!vhu_program_parse_uint(arg, 68, 65535, &v))
			return vhu_program_usage_error(p, "invalid --mtu '%s': expected 68..65535",
			                               arg);
		c->o.mtu = (uint16_t)v;
		return 0;
	case OPT_POLL:
		if (!arg)
			v = 50;
		else if (!vhu_program_parse_uint(arg, 0, 1000000, &v))
			return vhu_program_usage_error(
			    p, "invalid --poll '%s': expected 0..1000000 microseconds", arg);
		c->o.poll_us = (unsigned)v;
		return 0;
	}
	return -EINVAL;
}

static int check_args(struct vhu_program *p, void *ctx)
{
	struct cli *c = ctx;
	unsigned want = c->o.mode == NET_MODE_PEER ? 2 : 1;

	if (c->o.mode == NET_MODE_NONE)
		return vhu_program_usage_error(
		    p, "no back side: give --loopback, --peer or --tap NAME");
	if (vhu_program_num_sockets(p) != want)
		return vhu_program_usage_error(
		    p, want == 2 ? "--peer needs two sockets (--socket-path/--fd twice)"
		                 : "give one --socket-path PATH or --fd N");
	return 0;
}

static struct cli cli = {
    .o = {.pairs = 1, .mtu = 1500, .mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}}};

static const struct vhu_program_info info = {
    .name = PROG,
    .summary = "Serve a virtio-net device over vhost-user.",
    .type = "net",
    .max_sockets = MAX_ENDPOINTS,
    .options = options,
    .parse_option = parse_option,
    .check = check_args,
    .ctx = &cli,
};

/* Create the devices; prints its own errors. */
static int make_devices(struct net_dev **devs, unsigned n)
{
	static const char *names[MAX_ENDPOINTS] = {"vhu-net0", "vhu-net1"};
	int rc;

	for (unsigned i = 0; i < n; i++) {
		struct net_dev_opts o = cli.o;
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
		devs[0]->peer = cli.o.mode == NET_MODE_LOOPBACK ? devs[0] : NULL;
	return 0;
}

static int serve(struct vhu_program *p, struct net_dev **devs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vhu_program_set_daemon(p, i, devs[i]->daemon);
	if (vhu_program_listen(p) < 0)
		return VHU_PROGRAM_EXIT_FAILURE;
	for (unsigned i = 0; i < n; i++)
		fprintf(stderr, PROG ": %s serving %s (%u queue pair(s), %u thread(s)%s%s)\n",
		        devs[i]->name, vhu_program_socket_name(p, i), devs[i]->max_pairs,
		        devs[i]->nthreads, cli.o.tap ? ", tap " : "",
		        cli.o.tap ? devs[i]->tap_name : "");
	/* When one side stops (signal, fatal error) the other stops too. */
	return vhu_program_run(p);
}

int main(int argc, char **argv)
{
	struct net_dev *devs[MAX_ENDPOINTS] = {NULL, NULL};
	struct vhu_program *p;
	unsigned n;
	int status;

	if (!(p = vhu_program_new(&info, argc, argv, &status)))
		return status;
	n = cli.o.mode == NET_MODE_PEER ? 2 : 1;
	status = make_devices(devs, n) < 0 ? VHU_PROGRAM_EXIT_FAILURE : serve(p, devs, n);
	for (unsigned i = 0; i < n; i++)
		if (devs[i] && devs[i]->daemon && status == VHU_PROGRAM_EXIT_OK)
			net_dev_print_stats(devs[i]);
	/* Stop every worker before freeing either device of a peer pair. */
	for (unsigned i = 0; i < n; i++) {
		if (devs[i] && devs[i]->daemon) {
			vhu_daemon_free(devs[i]->daemon);
			devs[i]->daemon = NULL;
		}
	}
	for (unsigned i = 0; i < n; i++)
		net_dev_free(devs[i]);
	vhu_program_free(p);
	return status;
}
