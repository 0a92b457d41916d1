/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk: serve a disk image to a VM over vhost-user.
 *
 *   vhu-blk [OPTIONS] [IMAGE]
 *   vhu-blk [OPTIONS] --disk socket=PATH,image=IMAGE[,...] ...   (disks.c)
 *
 * The vhost-user back-end program conventions (--socket-path, --fd,
 * --print-capabilities with type "block" and --blk-file/--read-only,
 * signals, exit statuses) come from libvhu's program helper.
 * With no IMAGE (and no --null) a 64 MiB image in the data directory is
 * created if absent and served on a default socket, and the QEMU command
 * line that attaches a guest is printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"
#include "disks.h"

#define PROG               "vhu-blk"
#define DEFAULT_IMAGE_SIZE (64ull << 20)
/* Like QEMU iothreads' poll-max-ns (32768): see docs/performance.md. */
#define BLK_DEFAULT_POLL_US 32

struct cli {
	struct blk_opts *o;
	unsigned poll_us;
	bool default_image;     /* no IMAGE given: use/create the default one */
	struct blk_disks disks; /* --disk: several disks (disks.c) */
	char image_buf[PATH_MAX];
	char sock_buf[PATH_MAX];
};

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
	OPT_BLK_FILE = 1,
	OPT_NUM_QUEUES,
	OPT_READ_ONLY,
	OPT_NULL,
	OPT_SIZE,
	OPT_SERIAL,
	OPT_QUEUE_SIZE,
	OPT_THREADS,
	OPT_BLOCK_SIZE,
	OPT_POLL_US,
	OPT_NO_DIRECT,
	OPT_RECONNECT_DELAY,
	OPT_DISK,
};

static const struct vhu_program_option options[] = {
    {"blk-file", 'b', VHU_PROGRAM_ARG, "PATH", "the image (same as IMAGE)", OPT_BLK_FILE},
    {"num-queues", 'q', VHU_PROGRAM_ARG, "N", "virtqueues, 1..64 (default 1)", OPT_NUM_QUEUES},
    {"read-only", 'r', VHU_PROGRAM_NO_ARG, NULL, "export read-only (VIRTIO_BLK_F_RO)",
     OPT_READ_ONLY},
    {"null", 0, VHU_PROGRAM_NO_ARG, NULL, "no I/O: reads return zeroes, writes are dropped",
     OPT_NULL},
    {"size", 0, VHU_PROGRAM_ARG, "SIZE", "disk size for --null without IMAGE (default 1G)",
     OPT_SIZE},
    {"serial", 0, VHU_PROGRAM_ARG, "ID", "disk serial for GET_ID (at most 20 bytes)", OPT_SERIAL},
    {"queue-size", 0, VHU_PROGRAM_ARG, "N", "largest ring size, power of two 4..1024 (default 256)",
     OPT_QUEUE_SIZE},
    {"threads", 0, VHU_PROGRAM_ARG, "N",
     "worker threads (default: min(queues, CPUs);\n"
     "1 for rbd: and NBD images)",
     OPT_THREADS},
    {"block-size", 0, VHU_PROGRAM_ARG, "N", "logical block size, 512..65536, power of two",
     OPT_BLOCK_SIZE},
    {"poll-us", 0, VHU_PROGRAM_ARG, "N",
     "adaptive polling: poll rings up to N microseconds\n"
     "before sleeping; 0 = notifications only (default 32)",
     OPT_POLL_US},
    {"no-direct", 0, VHU_PROGRAM_NO_ARG, NULL, "do not use O_DIRECT", OPT_NO_DIRECT},
    {"reconnect-delay", 0, VHU_PROGRAM_ARG, "S",
     "nbd: requests wait up to S seconds for a lost\n"
     "server to come back, then fail (default 30)",
     OPT_RECONNECT_DELAY},
    {NULL, 0, 0, NULL, "Several disks in one process (instead of IMAGE and --socket-path):", 0},
    {"disk", 0, VHU_PROGRAM_ARG, "SPEC",
     "a disk: SPEC is socket=PATH,image=IMAGE\n"
     "[,queues=N][,ro][,serial=ID] (\",,\" for a comma);\n"
     "repeat it.  The options above are defaults for\n"
     "every disk; --threads N is then the number of\n"
     "worker threads all disks share (default:\n"
     "min(queues, CPUs))",
     OPT_DISK},
    {0},
};

#define usage_error(...) vhu_program_usage_error(p, __VA_ARGS__)

static int parse_option(struct vhu_program *p, void *ctx, int key, const char *arg)
{
	struct cli *cli = ctx;
	struct blk_opts *o = cli->o;
	uint64_t v, sz;
	switch (key) {
	case OPT_BLK_FILE:
		if (o->image && strcmp(o->image, arg))
			return usage_error("two images given ('%s' and '%s')", o->image, arg);
		o->image = arg;
		return 0;
	case OPT_NUM_QUEUES:
		if (!vhu_program_parse_uint(arg, 1, BLK_MAX_QUEUES, &v))
			return usage_error("invalid --num-queues '%s': expected 1..64", arg);
		o->num_queues = (unsigned)v;
		return 0;
	case OPT_READ_ONLY:
		o->read_only = true;
		return 0;
	case OPT_NULL:
		o->null_io = true;
		return 0;
	case OPT_SIZE:
		if (!parse_size(arg, &sz))
			return usage_error(
			    "invalid --size '%s': expected bytes >= 512, K/M/G/T suffix", arg);
		o->null_size = sz;
		return 0;
	case OPT_SERIAL:
		if (strlen(arg) > VIRTIO_BLK_ID_BYTES)
			return usage_error("--serial '%s': at most 20 bytes", arg);
		memset(o->serial, 0, sizeof(o->serial));
		memcpy(o->serial, arg, strlen(arg));
		return 0;
	case OPT_QUEUE_SIZE:
		if (!vhu_program_parse_uint(arg, 4, 1024, &v) || !is_pow2(v))
			return usage_error(
			    "invalid --queue-size '%s': expected a power of two 4..1024", arg);
		o->queue_size = (unsigned)v;
		return 0;
	case OPT_THREADS:
		if (!vhu_program_parse_uint(arg, 1, BLK_MAX_QUEUES, &v))
			return usage_error("invalid --threads '%s': expected 1..64", arg);
		o->threads = (unsigned)v;
		return 0;
	case OPT_BLOCK_SIZE:
		if (!vhu_program_parse_uint(arg, 512, 65536, &v) || !is_pow2(v))
			return usage_error(
			    "invalid --block-size '%s': expected a power of two 512..65536", arg);
		o->blk_size = (uint32_t)v;
		return 0;
	case OPT_POLL_US:
		if (!vhu_program_parse_uint(arg, 0, 1000000, &v))
			return usage_error("invalid --poll-us '%s': expected 0..1000000", arg);
		cli->poll_us = (unsigned)v;
		return 0;
	case OPT_NO_DIRECT:
		o->no_direct = true;
		return 0;
	case OPT_DISK: {
		struct blk_disk *x;
		char err[512];
		int rc = blk_disk_parse(arg, &x, err, sizeof(err));

		if (rc == 0 && (rc = blk_disks_add(&cli->disks, x, err, sizeof(err))) < 0)
			blk_disk_free(x);
		if (rc == -ENOMEM)
			return rc;
		return rc ? usage_error("--disk '%s': %s", arg, err) : 0;
	}
	case OPT_RECONNECT_DELAY:
		if (!vhu_program_parse_uint(arg, 0, 86400, &v))
			return usage_error(
			    "invalid --reconnect-delay '%s': expected seconds 0..86400", arg);
		o->reconnect_delay_s = (unsigned)v;
		return 0;
	}
	return -EINVAL;
}

/* IMAGE, once (or the same as --blk-file). */
static int parse_image(struct vhu_program *p, void *ctx, const char *arg)
{
	struct blk_opts *o = ((struct cli *)ctx)->o;

	if (o->image && strcmp(o->image, arg))
		return usage_error("two images given ('%s' and '%s')", o->image, arg);
	o->image = arg;
	return 0;
}

static int pick_defaults(struct vhu_program *p, struct blk_opts *o, struct cli *cli);

/* --disk: the disks' sockets are the program's, in disk order. */
static int check_disks(struct vhu_program *p, struct cli *cli)
{
	struct blk_disks *ds = &cli->disks;
	char err[512];
	int rc;

	if (cli->o->image || vhu_program_num_sockets(p))
		return usage_error("--disk names each disk's socket and image: IMAGE, "
		                   "--blk-file, --socket-path and --fd are for one disk");
	if (blk_disks_configure(ds, cli->o, err, sizeof(err)) < 0)
		return usage_error("%s", err);
	for (unsigned i = 0; i < ds->n; i++)
		if ((rc = vhu_program_add_socket(p, ds->disk[i]->socket)) < 0)
			return rc;
	return 0;
}

static int check_args(struct vhu_program *p, void *ctx)
{
	struct cli *cli = ctx;

	if (cli->disks.n)
		return check_disks(p, cli);
	if (cli->o->image && !*cli->o->image)
		return usage_error("empty image path");
	if (pick_defaults(p, cli->o, cli) < 0)
		return usage_error("default paths too long (see --help)");
	return 0;
}

/* Default image and socket locations (XDG base directories). */
static int pick_defaults(struct vhu_program *p, struct blk_opts *o, struct cli *cli)
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
	if (!vhu_program_num_sockets(p)) {
		if (run && *run)
			n = snprintf(cli->sock_buf, sizeof(cli->sock_buf), "%s/vhu-blk.sock", run);
		else
			n = snprintf(cli->sock_buf, sizeof(cli->sock_buf), "/tmp/vhu-blk.sock");
		if (n >= (int)sizeof(cli->sock_buf))
			return -ENAMETOOLONG;
		return vhu_program_add_socket(p, cli->sock_buf);
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

/* Open/create the image and set up the device. Prints its own errors. */
static int prepare_device(struct blk_dev *d, struct cli *cli)
{
	char err[512] = "";
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
	rc = blk_image_open(d, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot use image '%s': %s\n", d->opts.image,
		        *err ? err : strerror(-rc));
		return 1;
	}
	rc = blk_dev_setup(d);
	if (rc < 0) {
		fprintf(stderr, PROG ": device set-up failed: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}

/* The conventions' block features, then the engines built in (main()). */
static const char *features[8] = {"read-only", "blk-file"};
static struct blk_dev dev;
static struct cli cli = {.o = &dev.opts, .poll_us = BLK_DEFAULT_POLL_US};

static struct vhu_program_info info = {
    .name = PROG,
    .summary = "Serve IMAGE as a virtio-blk disk over vhost-user.  IMAGE is a raw file or\n"
               "block device (PATH or file:PATH), a Ceph RBD image\n"
               "(rbd:POOL/[NAMESPACE/]IMAGE[@SNAP][:conf=FILE][:id=USER][:KEY=VALUE...])\n"
               "or an NBD export (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH,\n"
               "nbd:HOST:PORT, nbd:unix:PATH[:exportname=EXPORT]).",
    .usage_args = "[IMAGE]",
    .help_footer = "Without IMAGE: serve $XDG_DATA_HOME/vhu/disk.img (created, 64 MiB, if absent)\n"
                   "on $XDG_RUNTIME_DIR/vhu-blk.sock (or /tmp/vhu-blk.sock), and print the QEMU\n"
                   "command line to attach a guest.",
    .type = "block",
    .features = features,
    .sockets_optional = true,
    .options = options,
    .parse_option = parse_option,
    .parse_arg = parse_image,
    .check = check_args,
    .ctx = &cli,
};

static int run(struct vhu_program *p, struct blk_dev *d)
{
	struct vhu_daemon_config cfg = {
	    .name = PROG,
	    .lock = VHU_LOCK_NONE,
	    .vring_flavour = VHU_VRING_PLAIN,
	    .poll_us = cli.poll_us,
	};
	const char *path = vhu_program_socket_path(p, 0);
	struct vhu_daemon *dm;
	int rc;

	rc = vhu_daemon_new(&dm, &blk_ops, d, &cfg);
	if (rc == 0 && (rc = blk_dev_attach(d, dm)) < 0)
		vhu_daemon_free(dm);
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot start the daemon: %s\n", strerror(-rc));
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	vhu_program_set_daemon(p, 0, dm);
	if (vhu_program_listen(p) < 0) {
		vhu_daemon_free(dm);
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	fprintf(stderr,
	        PROG ": serving %s (%" PRIu64
	             " sectors, %s%s, %u queue(s), %u thread(s), %s%s) on %s\n",
	        d->opts.image ? d->opts.image : "(null device)", d->capacity,
	        d->opts.read_only ? "read-only" : "read-write", d->opts.null_io ? ", --null" : "",
	        d->opts.num_queues, d->nthreads, d->engine->name,
	        d->fd_direct >= 0 ? "+O_DIRECT" : "", vhu_program_socket_name(p, 0));
	if (path)
		print_qemu_hint(&d->opts, path);
	rc = vhu_program_run(p);
	if (rc == VHU_PROGRAM_EXIT_OK)
		fprintf(stderr,
		        PROG ": stopped after %" PRIu64 " front end(s), %" PRIu64
		             " requests (%" PRIu64 " with an error status)\n",
		        vhu_daemon_connections(dm), atomic_load(&d->nreq), atomic_load(&d->nerr));
	vhu_daemon_free(dm);
	return rc;
}

/* Whether --disk is on the command line: then the program serves a
 * socket per disk (before "--", as the helper parses). */
static bool has_disk_option(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--disk") || !strncmp(argv[i], "--disk=", 7))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct blk_opts *o = &dev.opts;
	struct vhu_program *p;
	int rc;

	o->num_queues = 1;
	o->queue_size = 256;
	o->blk_size = BLK_SECTOR;
	o->null_size = 1ull << 30;
	o->reconnect_delay_s = 30;
	memcpy(o->serial, "vhu-blk", 7);
	const char *const *eng = blk_engine_names();
	for (unsigned i = 2; *eng && i < 7; eng++)
		features[i++] = *eng;
	if (has_disk_option(argc, argv))
		info.max_sockets = BLK_MAX_DISKS;
	if (!(p = vhu_program_new(&info, argc, argv, &rc))) {
		blk_disks_free(&cli.disks);
		return rc;
	}
	if (cli.disks.n) {
		rc = blk_disks_run(p, &cli.disks, cli.poll_us);
		blk_disks_free(&cli.disks);
		vhu_program_free(p);
		return rc;
	}
	rc = prepare_device(&dev, &cli);
	if (rc == 0)
		rc = run(p, &dev);
	blk_dev_teardown(&dev);
	blk_image_close(&dev);
	vhu_program_free(p);
	return rc;
}
