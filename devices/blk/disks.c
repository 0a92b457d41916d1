/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk --disk: several disks served by one process.
 *
 *   vhu-blk [OPTIONS] --disk socket=PATH,image=IMAGE[,queues=N][,ro][,serial=ID] ...
 *
 * Each disk is a device of its own (image, socket, daemon with its handler
 * thread, memory table, rings, in-flight state, failure domain); their
 * queues are served by one worker pool of --threads threads (vhu_pool).
 * The other options are defaults for every disk (--num-queues,
 * --read-only, --serial, --queue-size, --block-size, --no-direct,
 * --null/--size, --reconnect-delay, --poll-us) and --client connects
 * every disk to its socket.  In a value, ",," stands for a comma (as in
 * QEMU's -drive), for the Ceph options that list several monitors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "blk.h"
#include "disks.h"

#define PROG "vhu-blk"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Split buf (modified) at single commas, ",," becoming ",".  Returns the
 * number of items put in item[] (at most max), or -1 if there are more. */
static int split(char *buf, char **item, int max)
{
	char *o = buf;
	int n = 0;

	item[n++] = o;
	for (const char *s = buf; *s; s++) {
		if (*s != ',') {
			*o++ = *s;
		} else if (s[1] == ',') {
			*o++ = ',';
			s++;
		} else {
			*o++ = 0;
			if (n == max)
				return -1;
			item[n++] = o;
		}
	}
	*o = 0;
	return n;
}

/* One KEY=VALUE (or the flag `ro`) of a --disk value into x. */
static int set_key(struct blk_disk *x, char *kv, char *err, size_t errlen)
{
	char *val = strchr(kv, '=');
	uint64_t v;

	if (!strcmp(kv, "ro")) {
		if (x->ro)
			return fail(err, errlen, "'ro' given twice");
		x->ro = true;
		return 0;
	}
	if (!val)
		return fail(err, errlen,
		            "'%s' is not KEY=VALUE (keys: socket, image, queues, "
		            "serial; flag: ro)",
		            kv);
	*val++ = 0;
	if (!strcmp(kv, "socket") || !strcmp(kv, "image")) {
		const char **dst = kv[0] == 's' ? &x->socket : &x->image;

		if (*dst)
			return fail(err, errlen, "%s= given twice", kv);
		if (!*val)
			return fail(err, errlen, "empty %s=", kv);
		*dst = val;
		return 0;
	}
	if (!strcmp(kv, "queues")) {
		if (x->queues)
			return fail(err, errlen, "queues= given twice");
		if (!vhu_program_parse_uint(val, 1, BLK_MAX_QUEUES, &v))
			return fail(err, errlen, "queues='%s': expected 1..%u", val,
			            BLK_MAX_QUEUES);
		x->queues = (unsigned)v;
		return 0;
	}
	if (!strcmp(kv, "serial")) {
		if (x->serial)
			return fail(err, errlen, "serial= given twice");
		if (strlen(val) > VIRTIO_BLK_ID_BYTES)
			return fail(err, errlen, "serial='%s': at most %u bytes", val,
			            VIRTIO_BLK_ID_BYTES);
		x->serial = val;
		return 0;
	}
	return fail(err, errlen, "unknown key '%s' (keys: socket, image, queues, serial; flag: ro)",
	            kv);
}

int blk_disk_parse(const char *arg, struct blk_disk **out, char *err, size_t errlen)
{
	struct blk_disk *x;
	char *item[16];
	int n, rc = 0;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (!x || !(x->arg = strdup(arg))) {
		free(x);
		return -ENOMEM;
	}
	x->dev.fd = x->dev.fd_direct = -1;
	n = split(x->arg, item, (int)(sizeof(item) / sizeof(item[0])));
	if (n < 0)
		rc = fail(err, errlen, "too many items");
	for (int i = 0; i < n && !rc; i++)
		rc = set_key(x, item[i], err, errlen);
	if (!rc && !x->socket)
		rc = fail(err, errlen, "socket=PATH missing");
	if (!rc && x->image) {
		/* The spelling is checked now (a usage error), the image itself
		 * when it is opened. */
		struct blk_spec sp;
		char why[256] = "";

		rc = blk_spec_parse(x->image, &sp, why, sizeof(why));
		if (rc == -EINVAL)
			fail(err, errlen, "image='%s': %s", x->image, why);
		if (!rc)
			blk_spec_free(&sp);
	}
	if (rc) {
		blk_disk_free(x);
		return rc;
	}
	*out = x;
	return 0;
}

void blk_disk_free(struct blk_disk *x)
{
	if (!x)
		return;
	free(x->arg);
	free(x);
}

int blk_disks_add(struct blk_disks *ds, struct blk_disk *x, char *err, size_t errlen)
{
	for (unsigned i = 0; i < ds->n; i++) {
		const struct blk_disk *y = ds->disk[i];

		if (!strcmp(y->socket, x->socket))
			return fail(err, errlen, "disks %u and %u have the same socket '%s'", i,
			            ds->n, x->socket);
		/* Two writers of one image would corrupt it (QEMU refuses
		 * with its image locks). */
		if (x->image && y->image && !strcmp(y->image, x->image) && !(x->ro && y->ro))
			return fail(err, errlen,
			            "disks %u and %u serve the same image '%s' (only read-only "
			            "disks may share one)",
			            i, ds->n, x->image);
	}
	if (ds->n == BLK_MAX_DISKS)
		return fail(err, errlen, "too many disks (at most %u)", BLK_MAX_DISKS);
	ds->disk[ds->n++] = x;
	return 0;
}

void blk_disks_free(struct blk_disks *ds)
{
	for (unsigned i = 0; i < ds->n; i++)
		blk_disk_free(ds->disk[i]);
	ds->n = 0;
}

int blk_disks_configure(struct blk_disks *ds, const struct blk_opts *defaults, char *err,
                        size_t errlen)
{
	unsigned total = 0;

	for (unsigned i = 0; i < ds->n; i++) {
		struct blk_disk *x = ds->disk[i];
		struct blk_opts *o = &x->dev.opts;

		if (!x->image && !defaults->null_io)
			return fail(err, errlen, "disk %u (%s): image= missing (or --null)", i,
			            x->socket);
		*o = *defaults;
		o->image = x->image;
		if (x->queues)
			o->num_queues = x->queues;
		o->read_only = x->ro || defaults->read_only;
		if (x->serial) {
			memset(o->serial, 0, sizeof(o->serial));
			memcpy(o->serial, x->serial, strlen(x->serial));
		}
		total += o->num_queues;
		snprintf(x->name, sizeof(x->name), "disk%u", i);
	}
	/* The pool: --threads, or a thread per CPU but no more than queues. */
	ds->threads = defaults->threads;
	if (!ds->threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		ds->threads = cpus > 0 ? (unsigned)cpus : 1;
		if (ds->threads > total)
			ds->threads = total;
		if (ds->threads > VHU_POOL_MAX_THREADS)
			ds->threads = VHU_POOL_MAX_THREADS;
	}
	/* A disk's queues spread over at most every pool thread. */
	for (unsigned i = 0; i < ds->n; i++)
		ds->disk[i]->dev.opts.threads = ds->threads;
	return 0;
}

/* ---- running ---------------------------------------------------------- */

/* Every disk holds a few fds idle and more per front end (kick, call and
 * error eventfds per queue, memory regions): many disks need more than
 * the usual soft limit of 1024. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		fprintf(stderr, PROG ": cannot raise the open-files limit: %s\n", strerror(errno));
}

static int open_disk(struct blk_disk *x, unsigned i)
{
	char err[512] = "";
	int rc = blk_image_open(&x->dev, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, PROG ": disk %u (%s): cannot use image '%s': %s\n", i, x->socket,
		        x->dev.opts.image ? x->dev.opts.image : "(null)",
		        *err ? err : strerror(-rc));
		return rc;
	}
	rc = blk_dev_setup(&x->dev);
	if (rc < 0)
		fprintf(stderr, PROG ": disk %u (%s): device set-up failed: %s\n", i, x->socket,
		        strerror(-rc));
	return rc;
}

static int start_disk(struct vhu_program *p, struct blk_disks *ds, unsigned i, unsigned poll_us)
{
	struct blk_disk *x = ds->disk[i];
	struct vhu_daemon_config cfg = {
	    .name = x->name,
	    .lock = VHU_LOCK_NONE,
	    .vring_flavour = VHU_VRING_PLAIN,
	    .poll_us = poll_us,
	    .pool = ds->pool,
	};
	int rc = vhu_daemon_new(&x->daemon, &blk_ops, &x->dev, &cfg);

	if (rc == 0 && (rc = blk_dev_attach(&x->dev, x->daemon)) < 0) {
		vhu_daemon_free(x->daemon);
		x->daemon = NULL;
	}
	if (rc < 0) {
		fprintf(stderr, PROG ": disk %u (%s): cannot start the daemon: %s\n", i, x->socket,
		        strerror(-rc));
		return rc;
	}
	return vhu_program_set_daemon(p, i, x->daemon);
}

static void banner(const struct blk_disk *x, unsigned i)
{
	const struct blk_dev *d = &x->dev;

	fprintf(stderr, PROG ": disk %u: %s (%" PRIu64 " sectors, %s%s, %u queue(s), %s%s) on %s\n",
	        i, d->opts.image ? d->opts.image : "(null device)", d->capacity,
	        d->opts.read_only ? "read-only" : "read-write", d->opts.null_io ? ", --null" : "",
	        d->opts.num_queues, d->engine->name, d->fd_direct >= 0 ? "+O_DIRECT" : "",
	        x->socket);
}

static void close_disks(struct blk_disks *ds)
{
	for (unsigned i = 0; i < ds->n; i++) {
		struct blk_disk *x = ds->disk[i];

		vhu_daemon_free(x->daemon);
		x->daemon = NULL;
		blk_dev_teardown(&x->dev);
		blk_image_close(&x->dev);
	}
	if (vhu_pool_free(ds->pool) == 0)
		ds->pool = NULL;
}

int blk_disks_run(struct vhu_program *p, struct blk_disks *ds, unsigned poll_us)
{
	struct vhu_pool_config pc = {.name = PROG, .threads = ds->threads, .poll_us = poll_us};
	int rc = 0;

	raise_nofile();
	for (unsigned i = 0; i < ds->n && !rc; i++)
		rc = open_disk(ds->disk[i], i);
	if (!rc && (rc = vhu_pool_new(&ds->pool, &pc)) < 0)
		fprintf(stderr, PROG ": cannot start %u pool thread(s): %s\n", ds->threads,
		        strerror(-rc));
	for (unsigned i = 0; i < ds->n && !rc; i++)
		rc = start_disk(p, ds, i, poll_us);
	if (!rc)
		rc = vhu_program_listen(p);
	if (rc) {
		close_disks(ds);
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	for (unsigned i = 0; i < ds->n; i++)
		banner(ds->disk[i], i);
	fprintf(stderr, PROG ": %u disk(s) served by %u pool thread(s)%s\n", ds->n, ds->threads,
	        vhu_program_client(p) ? ", connecting to their front ends" : "");
	rc = vhu_program_run(p);
	if (rc == VHU_PROGRAM_EXIT_OK)
		for (unsigned i = 0; i < ds->n; i++) {
			struct blk_disk *x = ds->disk[i];

			fprintf(stderr,
			        PROG ": disk %u: stopped after %" PRIu64 " front end(s), %" PRIu64
			             " requests (%" PRIu64 " with an error status)\n",
			        i, vhu_daemon_connections(x->daemon), atomic_load(&x->dev.nreq),
			        atomic_load(&x->dev.nerr));
		}
	close_disks(ds);
	return rc;
}
