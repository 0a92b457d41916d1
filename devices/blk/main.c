/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk: serve a disk image to a VM over vhost-user.
 *
 *   vhu-blk [OPTIONS] [IMAGE]
 *
 * Follows the vhost-user "back-end program conventions" (--socket-path,
 * --fd, --print-capabilities, type "block" with --blk-file/--read-only).
 * With no IMAGE (and no --null) a 64 MiB image in the data directory is
 * created if absent and served on a default socket, and the QEMU command
 * line that attaches a guest is printed.
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

#include "blk.h"
#include "cli.h"

#define PROG               "vhu-blk"
#define DEFAULT_IMAGE_SIZE (64ull << 20)
/* Like QEMU iothreads' poll-max-ns (32768): see docs/performance.md. */
#define BLK_DEFAULT_POLL_US 32

struct cli {
	const char *socket_path;
	int fd; /* --fd, -1 if none */
	unsigned poll_us;
	bool print_caps;
	bool default_image;  /* no IMAGE given: use/create the default one */
	bool default_socket; /* no --socket-path / --fd */
	char image_buf[PATH_MAX];
	char sock_buf[PATH_MAX];
};

static struct vhu_daemon *g_daemon;

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROG " [OPTIONS] [IMAGE]\n"
	        "Serve IMAGE (raw file or block device) as a virtio-blk disk over vhost-user.\n"
	        "\n"
	        "  -s, --socket-path PATH  listen on the unix socket PATH\n"
	        "      --fd N              use the already listening (or connected) socket N\n"
	        "  -b, --blk-file PATH     the image (same as IMAGE)\n"
	        "  -q, --num-queues N      virtqueues, 1..%u (default 1)\n"
	        "  -r, --read-only         export read-only (VIRTIO_BLK_F_RO)\n"
	        "      --null              no I/O: reads return zeroes, writes are dropped\n"
	        "      --size SIZE         disk size for --null without IMAGE (default 1G)\n"
	        "      --serial ID         disk serial for GET_ID (at most 20 bytes)\n"
	        "      --queue-size N      largest ring size, power of two 4..1024 (default 256)\n"
	        "      --threads N         worker threads (default: min(queues, CPUs))\n"
	        "      --block-size N      logical block size, 512..65536, power of two\n"
	        "      --poll-us N         adaptive polling: poll rings up to N microseconds\n"
	        "                          before sleeping; 0 = notifications only (default 32)\n"
	        "      --no-direct         do not use O_DIRECT\n"
	        "      --print-capabilities  print the back end's capabilities (JSON) and exit\n"
	        "  -h, --help              this help\n"
	        "  -V, --version           version\n"
	        "\n"
	        "Without IMAGE: serve $XDG_DATA_HOME/vhu/disk.img (created, 64 MiB, if absent)\n"
	        "on $XDG_RUNTIME_DIR/vhu-blk.sock (or /tmp/vhu-blk.sock), and print the QEMU\n"
	        "command line to attach a guest.\n",
	        BLK_MAX_QUEUES);
}

#define usage_error(...) cli_usage_error(PROG, __VA_ARGS__)

/* SIZE: bytes with optional K/M/G/T suffix (powers of 1024). */
static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (errno || end == s)
		return false;
	switch (*end) {
	case 0:
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return false;
	}
	if (*end && end[1])
		return false;
	if (v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return *out >= BLK_SECTOR;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

enum {
	OPT_FD = 1000,
	OPT_NULL,
	OPT_SIZE,
	OPT_SERIAL,
	OPT_QUEUE_SIZE,
	OPT_THREADS,
	OPT_BLOCK_SIZE,
	OPT_POLL_US,
	OPT_NO_DIRECT,
	OPT_PRINT_CAPS,
};

static const struct option long_opts[] = {
    {"socket-path", required_argument, NULL, 's'},
    {"fd", required_argument, NULL, OPT_FD},
    {"blk-file", required_argument, NULL, 'b'},
    {"num-queues", required_argument, NULL, 'q'},
    {"read-only", no_argument, NULL, 'r'},
    {"null", no_argument, NULL, OPT_NULL},
    {"size", required_argument, NULL, OPT_SIZE},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"queue-size", required_argument, NULL, OPT_QUEUE_SIZE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"block-size", required_argument, NULL, OPT_BLOCK_SIZE},
    {"poll-us", required_argument, NULL, OPT_POLL_US},
    {"no-direct", no_argument, NULL, OPT_NO_DIRECT},
    {"print-capabilities", no_argument, NULL, OPT_PRINT_CAPS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Returns -1 to go on, or an exit code. */
static int parse_option(int c, const char *arg, struct blk_opts *o, struct cli *cli)
{
	uint64_t v, sz;
	switch (c) {
	case 's':
		if (!*arg)
			return usage_error("--socket-path: empty path");
		cli->socket_path = arg;
		return -1;
	case OPT_FD:
		if (!cli_parse_uint(arg, 0, INT_MAX, &v))
			return usage_error("invalid --fd '%s': expected a file descriptor number",
			                   arg);
		cli->fd = (int)v;
		return -1;
	case 'b':
		if (o->image && strcmp(o->image, arg))
			return usage_error("two images given ('%s' and '%s')", o->image, arg);
		o->image = arg;
		return -1;
	case 'q':
		if (!cli_parse_uint(arg, 1, BLK_MAX_QUEUES, &v))
			return usage_error("invalid --num-queues '%s': expected 1..64", arg);
		o->num_queues = (unsigned)v;
		return -1;
	case 'r':
		o->read_only = true;
		return -1;
	case OPT_NULL:
		o->null_io = true;
		return -1;
	case OPT_SIZE:
		if (!parse_size(arg, &sz))
			return usage_error(
			    "invalid --size '%s': expected bytes >= 512, K/M/G/T suffix", arg);
		o->null_size = sz;
		return -1;
	case OPT_SERIAL:
		if (strlen(arg) > VIRTIO_BLK_ID_BYTES)
			return usage_error("--serial '%s': at most 20 bytes", arg);
		memset(o->serial, 0, sizeof(o->serial));
		memcpy(o->serial, arg, strlen(arg));
		return -1;
	case OPT_QUEUE_SIZE:
		if (!cli_parse_uint(arg, 4, 1024, &v) || !is_pow2(v))
			return usage_error(
			    "invalid --queue-size '%s': expected a power of two 4..1024", arg);
		o->queue_size = (unsigned)v;
		return -1;
	case OPT_THREADS:
		if (!cli_parse_uint(arg, 1, BLK_MAX_QUEUES, &v))
			return usage_error("invalid --threads '%s': expected 1..64", arg);
		o->threads = (unsigned)v;
		return -1;
	case OPT_BLOCK_SIZE:
		if (!cli_parse_uint(arg, 512, 65536, &v) || !is_pow2(v))
			return usage_error(
			    "invalid --block-size '%s': expected a power of two 512..65536", arg);
		o->blk_size = (uint32_t)v;
		return -1;
	case OPT_POLL_US:
		if (!cli_parse_uint(arg, 0, 1000000, &v))
			return usage_error("invalid --poll-us '%s': expected 0..1000000", arg);
		cli->poll_us = (unsigned)v;
		return -1;
	case OPT_NO_DIRECT:
		o->no_direct = true;
		return -1;
	case OPT_PRINT_CAPS:
		cli->print_caps = true;
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

static int parse_args(int argc, char **argv, struct blk_opts *o, struct cli *cli)
{
	int c, rc;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:b:q:rhV", long_opts, NULL)) != -1) {
		if (c == '?')
			return usage_error("unknown option '%s'", argv[optind - 1]);
		if (c == ':')
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		rc = parse_option(c, optarg, o, cli);
		if (rc >= 0)
			return rc;
	}
	if (optind < argc) {
		if (o->image && strcmp(o->image, argv[optind]))
			return usage_error("two images given ('%s' and '%s')", o->image,
			                   argv[optind]);
		o->image = argv[optind++];
	}
	if (optind < argc)
		return usage_error("two images given ('%s' and '%s')", o->image, argv[optind]);
	if (cli->socket_path && cli->fd >= 0)
		return usage_error("--socket-path and --fd exclude each other");
	if (o->image && !*o->image)
		return usage_error("empty image path");
	return -1;
}

static void print_capabilities(void)
{
	static const char *const features[] = {"read-only", "blk-file", NULL};
	cli_print_capabilities("block", features);
}

/* Default image and socket locations (XDG base directories). */
static int pick_defaults(struct blk_opts *o, struct cli *cli)
{
	const char *data = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	const char *run = getenv("XDG_RUNTIME_DIR");
	int n;
	if (!o->image && !o->null_io) {
		if (data && *data)
			n = snprintf(cli->image_buf, sizeof(cli->image_buf), "%s/vhu/disk.img",
			             data);
		else if (home && *home)
			n = snprintf(cli->image_buf, sizeof(cli->image_buf),
			             "%s/.local/share/vhu/disk.img", home);
		else
			n = snprintf(cli->image_buf, sizeof(cli->image_buf), "/tmp/vhu-disk.img");
		if (n >= (int)sizeof(cli->image_buf))
			return -ENAMETOOLONG;
		o->image = cli->image_buf;
		cli->default_image = true;
	}
	if (!cli->socket_path && cli->fd < 0) {
		if (run && *run)
			n = snprintf(cli->sock_buf, sizeof(cli->sock_buf), "%s/vhu-blk.sock", run);
		else
			n = snprintf(cli->sock_buf, sizeof(cli->sock_buf), "/tmp/vhu-blk.sock");
		if (n >= (int)sizeof(cli->sock_buf))
			return -ENAMETOOLONG;
		cli->socket_path = cli->sock_buf;
		cli->default_socket = true;
	}
	return 0;
}

static void print_qemu_hint(const struct blk_opts *o, const char *sock)
{
	printf(
	    "vhu-blk: attach a guest with (the disk is the guest's /dev/vda; add -kernel/-initrd\n"
	    "vhu-blk: or a boot disk of your own to run an OS on it):\n"
	    "qemu-system-x86_64 -machine q35,accel=kvm:tcg,memory-backend=mem -m 1G \\\n"
	    "  -object memory-backend-memfd,id=mem,size=1G,share=on \\\n"
	    "  -chardev socket,id=vhublk0,path=%s \\\n"
	    "  -device vhost-user-blk-pci,chardev=vhublk0,num-queues=%u -nographic\n",
	    sock, o->num_queues);
	fflush(stdout);
}

static void on_signal(int sig)
{
	if (g_daemon)
		vhu_daemon_stop(g_daemon);
}

/* Open/create the image and set up the device. Prints its own errors. */
static int prepare_device(struct blk_dev *d, struct cli *cli)
{
	const char *what = "open";
	int rc;
	if (cli->default_image) {
		rc = blk_image_create_default(d->opts.image, DEFAULT_IMAGE_SIZE);
		if (rc < 0) {
			fprintf(stderr, PROG ": cannot create default image '%s': %s\n",
			        d->opts.image, strerror(-rc));
			return 1;
		}
		if (rc > 0)
			fprintf(stderr, PROG ": created %llu MiB image %s\n",
			        DEFAULT_IMAGE_SIZE >> 20, d->opts.image);
	}
	rc = blk_image_open(d, &what);
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot use image '%s': %s: %s\n", d->opts.image, what,
		        strerror(-rc));
		return 1;
	}
	rc = blk_dev_setup(d);
	if (rc < 0) {
		fprintf(stderr, PROG ": device set-up failed: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}

static int open_socket(struct cli *cli)
{
	if (cli->fd >= 0) {
		int rc = cli_check_stream_fd(cli->fd);
		if (rc < 0) {
			fprintf(stderr, PROG ": --fd %d: not a usable stream socket: %s\n", cli->fd,
			        strerror(-rc));
			return rc;
		}
		return cli->fd;
	}
	int s = cli_listen_unix(cli->socket_path);
	if (s == -EADDRINUSE)
		fprintf(stderr, PROG ": socket path '%s' is in use by another process\n",
		        cli->socket_path);
	else if (s == -EEXIST)
		fprintf(stderr, PROG ": socket path '%s' exists and is not a socket\n",
		        cli->socket_path);
	else if (s < 0)
		fprintf(stderr, PROG ": cannot listen on '%s': %s\n", cli->socket_path,
		        strerror(-s));
	return s;
}

static int run(struct blk_dev *d, struct cli *cli)
{
	struct vhu_daemon_config cfg = {
	    .name = PROG,
	    .lock = VHU_LOCK_NONE,
	    .vring_flavour = VHU_VRING_PLAIN,
	    .poll_us = cli->poll_us,
	};
	sigset_t old;
	struct stat sst;
	int rc, sock;

	/* Block SIGINT/SIGTERM before the socket listens (a signal sent as
	 * soon as it does stays pending until the handler is in place) and
	 * so that the worker threads inherit the mask. */
	cli_signals_mask(SIG_BLOCK, &old);
	sock = open_socket(cli);
	if (sock < 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return 1;
	}
	bool own_path = cli->fd < 0 && stat(cli->socket_path, &sst) == 0;
	d->polling = cli->poll_us != 0;

	rc = vhu_daemon_new(&g_daemon, &blk_ops, d, &cfg);
	if (rc == 0)
		rc = blk_dev_attach(d, g_daemon);
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot start the daemon: %s\n", strerror(-rc));
		close(sock);
		goto out;
	}
	cli_signals_install(on_signal);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	fprintf(stderr,
	        PROG ": serving %s (%" PRIu64
	             " sectors, %s%s, %u queue(s), %u thread(s), %s%s) on %s\n",
	        d->opts.image ? d->opts.image : "(null device)", d->capacity,
	        d->opts.read_only ? "read-only" : "read-write", d->opts.null_io ? ", --null" : "",
	        d->opts.num_queues, d->nthreads, d->engine->name,
	        d->fd_direct >= 0 ? "+O_DIRECT" : "", cli->fd >= 0 ? "--fd" : cli->socket_path);
	if (cli->fd < 0)
		print_qemu_hint(&d->opts, cli->socket_path);
	rc = vhu_daemon_serve_fd(g_daemon, sock);
	if (rc < 0)
		fprintf(stderr, PROG ": serving failed: %s\n", strerror(-rc));
	else
		fprintf(stderr,
		        PROG ": stopped after %" PRIu64 " front end(s), %" PRIu64
		             " requests (%" PRIu64 " with an error status)\n",
		        vhu_daemon_connections(g_daemon), atomic_load(&d->nreq),
		        atomic_load(&d->nerr));
out:
	if (g_daemon) {
		struct vhu_daemon *dm = g_daemon;
		cli_signals_default();
		g_daemon = NULL;
		vhu_daemon_free(dm);
	}
	struct stat now;
	if (own_path && stat(cli->socket_path, &now) == 0 && now.st_ino == sst.st_ino &&
	    now.st_dev == sst.st_dev)
		unlink(cli->socket_path);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct blk_dev dev;
	struct cli cli = {.fd = -1, .poll_us = BLK_DEFAULT_POLL_US};
	struct blk_opts *o = &dev.opts;
	o->num_queues = 1;
	o->queue_size = 256;
	o->blk_size = BLK_SECTOR;
	o->null_size = 1ull << 30;
	memcpy(o->serial, "vhu-blk", 7);

	int rc = parse_args(argc, argv, o, &cli);
	if (rc >= 0)
		return rc;
	if (cli.print_caps) {
		print_capabilities();
		return 0;
	}
	if (pick_defaults(o, &cli) < 0) {
		fprintf(stderr, PROG ": default paths too long\n");
		return 1;
	}
	rc = prepare_device(&dev, &cli);
	if (rc == 0)
		rc = run(&dev, &cli);
	blk_dev_teardown(&dev);
	blk_image_close(&dev);
	return rc;
}
