/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk --disk: one process serving several disks on a shared worker
 * pool, driven by libvhu-frontend as several guests at once.  Cases
 * (run by name: the `pool` suite runs "disks_", `hostile` "hostile_"):
 * usage errors; each disk with its own image, size, queues, serial and
 * read-only flag, all doing I/O at once on two pool threads (and no
 * thread of their own); a front end that goes away mid-I/O on one disk;
 * and a hostile front end on one disk (garbage, malformed rings, requests
 * outside guest memory) while the other disks go on, checked byte for byte.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/virtio_ring.h>

#include "../blk/blk_env.h"

VT_MAIN

#define NDISK 4
#define CHUNK (64 * 1024)

struct disks {
	struct blkt_dir d;
	char sock[NDISK][160], img[NDISK][160];
	uint64_t size[NDISK];
	pid_t pid;
};

/* Images (pattern 0) and sockets in one directory, vhu-blk started with a
 * --disk per image plus `extra`.  spec[i] holds the disk's extra keys. */
static bool disks_start(struct disks *x, const uint64_t *sizes, const char *const *spec,
                        const char *const *extra)
{
	static char arg[NDISK][512];
	const char *args[32];
	unsigned n = 0;

	memset(x, 0, sizeof(*x));
	x->pid = -1;
	if (blkt_dir_make(&x->d) < 0)
		return false;
	for (unsigned i = 0; i < NDISK; i++) {
		snprintf(x->sock[i], sizeof(x->sock[i]), "%s/d%u.sock", x->d.path, i);
		snprintf(x->img[i], sizeof(x->img[i]), "%s/d%u.img", x->d.path, i);
		x->size[i] = sizes[i];
		if (blkt_image_create(x->img[i], sizes[i], true) < 0)
			return false;
		snprintf(arg[i], sizeof(arg[i]), "socket=%s,image=%s%s%s", x->sock[i], x->img[i],
		         spec && spec[i] ? "," : "", spec && spec[i] ? spec[i] : "");
		args[n++] = "--disk";
		args[n++] = arg[i];
	}
	for (unsigned i = 0; extra && extra[i] && n < 31; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	x->pid = blkt_spawn(&x->d, args, -1);
	for (unsigned i = 0; x->pid > 0 && i < NDISK; i++)
		if (!blkt_wait_socket(x->sock[i], BLKT_TIMEOUT_MS)) {
			fprintf(stderr, "# no socket %s; vhu-blk stderr:\n%s", x->sock[i],
			        blkt_slurp(x->d.err));
			return false;
		}
	return x->pid > 0;
}

static void disks_stop(struct disks *x)
{
	if (x->pid > 0) {
		kill(x->pid, SIGTERM);
		int rc = blkt_wait_exit(x->pid, BLKT_TIMEOUT_MS);

		if (rc != 0)
			fprintf(stderr, "# vhu-blk stderr:\n%s", blkt_slurp(x->d.err));
		VT_EQ(rc, 0);
		x->pid = -1;
	}
	blkt_dir_remove(&x->d);
}

/* Open fds of process pid. */
static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (!(dir = opendir(path)))
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Bytes [off, off + len) of img hold pattern `seed`. */
static bool image_holds(const char *img, uint64_t off, uint64_t len, unsigned seed)
{
	static uint8_t buf[CHUNK];

	for (uint64_t p = off; p < off + len; p += CHUNK) {
		if (blkt_file_read(img, p, buf, CHUNK) < 0)
			return false;
		for (unsigned i = 0; i < CHUNK; i++)
			if (buf[i] != blkt_pattern(p + i, seed)) {
				fprintf(stderr, "# %s: byte %llu is %#x, want %#x (seed %u)\n", img,
				        (unsigned long long)(p + i), buf[i],
				        blkt_pattern(p + i, seed), seed);
				return false;
			}
	}
	return true;
}

/* A guest driver on one queue of one disk: writes pattern `seed` over its
 * stripe in 64 KiB requests and reads it back, `rounds` times (seed + r),
 * or until *stop once min_rounds are done. */
struct writer {
	struct blkt *t;
	unsigned q;
	uint64_t off, len; /* bytes */
	unsigned seed, rounds, min_rounds;
	atomic_bool *stop;
	unsigned done; /* rounds completed */
	int errors;
};

static int one_round(struct writer *w, unsigned seed)
{
	uint8_t *data = w->t->slots[w->q][0].data;

	for (uint64_t p = w->off; p < w->off + w->len; p += CHUNK) {
		for (unsigned i = 0; i < CHUNK; i++)
			data[i] = blkt_pattern(p + i, seed);
		if (blkt_io(w->t, w->q, VIRTIO_BLK_T_OUT, p / 512, NULL, CHUNK) != VIRTIO_BLK_S_OK)
			return -EIO;
	}
	for (uint64_t p = w->off; p < w->off + w->len; p += CHUNK) {
		memset(data, 0x5a, CHUNK);
		if (blkt_io(w->t, w->q, VIRTIO_BLK_T_IN, p / 512, NULL, CHUNK) != VIRTIO_BLK_S_OK)
			return -EIO;
		for (unsigned i = 0; i < CHUNK; i++)
			if (data[i] != blkt_pattern(p + i, seed))
				return -EILSEQ;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	for (unsigned r = 0; r < w->rounds; r++) {
		if (r >= w->min_rounds && w->stop && atomic_load(w->stop))
			break;
		if (one_round(w, w->seed + r) < 0) {
			fprintf(stderr, "# writer seed %u queue %u: round %u failed\n", w->seed,
			        w->q, r);
			w->errors++;
			break;
		}
		w->done = r + 1;
	}
	return NULL;
}

/* ---- usage -------------------------------------------------------------- */

static void expect_usage(const char *const *args, const char *msg)
{
	struct blkt_dir d;

	VT_REQUIRE(blkt_dir_make(&d) == 0);
	int rc = blkt_run(&d, args);
	const char *err = blkt_slurp(d.err);

	if (rc != 2 || !strstr(err, msg))
		fprintf(stderr, "# %s %s...: exit %d, want 2 and '%s' in:\n%s", args[0],
		        args[1] ? args[1] : "", rc, msg, err);
	VT_EQ(rc, 2);
	VT_CHECK(strstr(err, msg) != NULL);
	blkt_dir_remove(&d);
}

VT_CASE(disks_usage_errors)
{
	const char *a = "socket=/tmp/vhu-none/a.sock,image=/tmp/vhu-none/a.img";
	const char *b = "socket=/tmp/vhu-none/b.sock,image=/tmp/vhu-none/b.img";
	struct {
		const char *args[8];
		const char *msg;
	} cases[] = {
	    {{"--disk", "image=/tmp/x.img", NULL}, "socket=PATH missing"},
	    {{"--disk", "socket=/tmp/x.sock", NULL}, "image= missing (or --null)"},
	    {{"--disk", "socket=/tmp/x.sock,image=/tmp/x.img,queues=0", NULL}, "queues='0'"},
	    {{"--disk", "socket=/tmp/x.sock,image=/tmp/x.img,queues=65", NULL}, "queues='65'"},
	    {{"--disk", "socket=/tmp/x.sock,image=/tmp/x.img,size=1", NULL}, "unknown key 'size'"},
	    {{"--disk", "socket=/tmp/x.sock,image=/tmp/x.img,bogus", NULL}, "not KEY=VALUE"},
	    {{"--disk", "socket=/tmp/x.sock,socket=/tmp/y.sock,image=/tmp/x.img", NULL},
	     "socket= given twice"},
	    {{"--disk", "socket=,image=/tmp/x.img", NULL}, "empty socket="},
	    {{"--disk", "socket=/tmp/x.sock,image=/tmp/x.img,serial=123456789012345678901", NULL},
	     "at most 20 bytes"},
	    {{"--disk", "socket=/tmp/x.sock,image=rbd:", NULL}, "image='rbd:'"},
	    {{"--disk", a, "--disk", a, NULL}, "same socket"},
	    {{"--disk", a, "--disk", "socket=/tmp/vhu-none/b.sock,image=/tmp/vhu-none/a.img", NULL},
	     "same image"},
	    {{"--disk", a, "/tmp/x.img", NULL}, "are for one disk"},
	    {{"--disk", a, "--socket-path", "/tmp/x.sock", NULL}, "are for one disk"},
	    {{"--disk", a, "--fd", "3", NULL}, "are for one disk"},
	    {{"--disk", a, "--disk", b, "--threads", "0", NULL}, "invalid --threads"},
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_usage(cases[i].args, cases[i].msg);
}

/* ---- each disk its own, all at once -------------------------------------- */

static void check_disk_config(struct disks *x, unsigned i, unsigned nq, const char *serial, bool ro)
{
	struct virtio_blk_config c;
	struct blkt t;
	char id[VIRTIO_BLK_ID_BYTES + 1] = "";

	VT_REQUIRE(blkt_open(&t, x->sock[i], nq, 128, 1, CHUNK, PF_DEFAULT) == 0);
	VT_EQ(blkt_config(&t, &c), 0);
	VT_EQ(c.capacity, x->size[i] / 512);
	VT_EQ(c.num_queues, nq);
	VT_EQ(!!(vhuf_features(t.f) & (1ull << VIRTIO_BLK_F_RO)), ro);
	VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES), VIRTIO_BLK_S_OK);
	VT_CHECK(!strcmp(id, serial));
	blkt_close(&t);
}

VT_CASE(disks_each_its_own)
{
	static const uint64_t sizes[NDISK] = {8 * MIB, 4 * MIB, 2 * MIB, 6 * MIB};
	static const unsigned nq[NDISK] = {1, 4, 1, 2};
	const char *spec[NDISK] = {NULL, "queues=4,serial=second", "ro", "queues=2,serial=fourth"};
	const char *extra[] = {"--threads", "2", "--serial", "all", NULL};
	struct writer w[8];
	struct blkt t[NDISK];
	pthread_t th[8];
	unsigned nw = 0;
	struct disks x;
	int fds0;

	VT_REQUIRE(disks_start(&x, sizes, spec, extra));
	/* Two pool threads serve every queue; no disk has threads of its own. */
	VT_EQ(blkt_count_threads(x.pid, "vhu-blk-pool"), 2);
	VT_EQ(blkt_count_threads(x.pid, "vhu-worker"), 0);
	fds0 = count_fds(x.pid);
	check_disk_config(&x, 0, 1, "all", false);
	check_disk_config(&x, 1, 4, "second", false);
	check_disk_config(&x, 2, 1, "all", true);
	check_disk_config(&x, 3, 2, "fourth", false);

	/* Every queue of every writable disk at once, each disk its own
	 * pattern, in its own stripe per queue. */
	for (unsigned i = 0; i < NDISK; i++) {
		VT_REQUIRE(blkt_open(&t[i], x.sock[i], nq[i], 128, 1, CHUNK, PF_DEFAULT) == 0);
		for (unsigned q = 0; i != 2 && q < nq[i]; q++) {
			uint64_t stripe = sizes[i] / nq[i];

			w[nw] = (struct writer){.t = &t[i],
			                        .q = q,
			                        .off = q * stripe,
			                        .len = stripe,
			                        .seed = 10 * (i + 1),
			                        .rounds = 3};
			VT_REQUIRE(pthread_create(&th[nw], NULL, writer_main, &w[nw]) == 0);
			nw++;
		}
	}
	/* The read-only disk meanwhile: writes refused, pattern 0 read. */
	{
		uint8_t *data = t[2].slots[0][0].data;

		VT_EQ(blkt_io(&t[2], 0, VIRTIO_BLK_T_OUT, 0, NULL, CHUNK), VIRTIO_BLK_S_IOERR);
		VT_EQ(blkt_io(&t[2], 0, VIRTIO_BLK_T_IN, 8, NULL, CHUNK), VIRTIO_BLK_S_OK);
		VT_EQ(data[100], blkt_pattern(8 * 512 + 100, 0));
	}
	for (unsigned k = 0; k < nw; k++) {
		pthread_join(th[k], NULL);
		VT_EQ(w[k].errors, 0);
		VT_EQ(w[k].done, 3);
	}
	for (unsigned i = 0; i < NDISK; i++) {
		VT_EQ(blkt_io(&t[i], 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
		blkt_close(&t[i]);
	}
	/* The images: each holds its own last pattern, the read-only one
	 * its first. */
	VT_CHECK(image_holds(x.img[0], 0, sizes[0], 12));
	VT_CHECK(image_holds(x.img[1], 0, sizes[1], 22));
	VT_CHECK(image_holds(x.img[2], 0, sizes[2], 0));
	VT_CHECK(image_holds(x.img[3], 0, sizes[3], 42));
	/* Every front end's fds (memory, eventfds) went with it. */
	VT_CHECK(VT_WAIT_FOR(count_fds(x.pid) == fds0));
	VT_EQ(count_fds(x.pid), fds0);
	disks_stop(&x);
}

/* ---- failure domains -------------------------------------------------------- */

/* A front end that queues many writes on disk 0 and closes with them in
 * flight, again and again, while disk 1 is written and verified. */
VT_CASE(disks_frontend_gone_mid_io)
{
	static const uint64_t sizes[NDISK] = {4 * MIB, 4 * MIB, 1 * MIB, 1 * MIB};
	const char *extra[] = {"--threads", "1", NULL};
	atomic_bool stop = false;
	struct writer w;
	struct blkt t1;
	struct disks x;
	pthread_t th;

	VT_REQUIRE(disks_start(&x, sizes, NULL, extra));
	VT_REQUIRE(blkt_open(&t1, x.sock[1], 1, 128, 1, CHUNK, PF_DEFAULT) == 0);
	w = (struct writer){.t = &t1,
	                    .off = 0,
	                    .len = sizes[1],
	                    .seed = 7,
	                    .rounds = 1000,
	                    .min_rounds = 2,
	                    .stop = &stop};
	VT_REQUIRE(pthread_create(&th, NULL, writer_main, &w) == 0);
	for (unsigned k = 0; k < 10; k++) {
		struct blkt t0;

		VT_REQUIRE(blkt_open(&t0, x.sock[0], 1, 128, 16, CHUNK, PF_DEFAULT) == 0);
		for (unsigned s = 0; s < 16; s++)
			VT_CHECK(blkt_submit(&t0, 0, s, VIRTIO_BLK_T_OUT, s * (CHUNK / 512),
			                     CHUNK) >= 0);
		blkt_close(&t0);
	}
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	VT_EQ(w.errors, 0);
	VT_CHECK(w.done >= 2);
	blkt_close(&t1);
	/* Disk 0 serves the next front end. */
	{
		struct writer w0 = {.t = &t1, .off = 0, .len = sizes[0], .seed = 3, .rounds = 1};

		VT_REQUIRE(blkt_open(&t1, x.sock[0], 1, 128, 1, CHUNK, PF_DEFAULT) == 0);
		writer_main(&w0);
		VT_EQ(w0.errors, 0);
		blkt_close(&t1);
	}
	disks_stop(&x);
}

/* ---- hostile ---------------------------------------------------------------- */

static void send_garbage(const char *sock, unsigned seed)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint8_t junk[4096];
	int fd;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, sock, strlen(sock));
	for (unsigned i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(blkt_pattern(i, seed) | (i < 12 ? 0x80 : 0));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, junk, sizeof(junk), MSG_NOSIGNAL) < 0)
		fprintf(stderr, "# garbage: %s\n", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Rings full of nonsense: buffers outside guest memory, a descriptor
 * pointing at itself through NEXT, a chain of nothing but the status
 * byte; then a message of an unknown type and one that lies about its
 * size.  The device fails the ring or the connection; nothing else. */
static void malformed_frontend(const char *sock)
{
	struct blkt t;
	struct blkt_slot *sl;

	if (blkt_open(&t, sock, 1, 128, 2, CHUNK, PF_DEFAULT) < 0)
		return;
	sl = &t.slots[0][1];
	sl->hdr->type = VIRTIO_BLK_T_OUT;
	sl->hdr->sector = 0;
	{
		struct vhuf_buf outside[] = {
		    {sl->hdr_gpa, 16, false}, {1ull << 40, CHUNK, false}, {sl->st_gpa, 1, true}};
		struct vhuf_buf wrap[] = {
		    {sl->hdr_gpa, 16, false}, {~0ull - 100, 4096, false}, {sl->st_gpa, 1, true}};
		struct vhuf_buf nothing[] = {{sl->st_gpa, 1, true}};
		struct vhuf_buf good[] = {
		    {sl->hdr_gpa, 16, false}, {sl->data_gpa, 512, false}, {sl->st_gpa, 1, true}};
		struct vring_desc *desc = vhuf_ring_desc(t.f, 0);
		int head;

		vhuf_submit(t.f, 0, outside, 3, false, NULL);
		vhuf_submit(t.f, 0, wrap, 3, true, NULL);
		vhuf_submit(t.f, 0, nothing, 1, false, NULL);
		/* A descriptor chained to itself. */
		head = vhuf_submit(t.f, 0, good, 3, false, NULL);
		if (head >= 0)
			desc[head].next = (uint16_t)head;
		vhuf_kick_force(t.f, 0);
	}
	{
		uint8_t payload[64] = {0};

		vhuf_request(t.f, 9999, payload, sizeof(payload), NULL, 0, false, NULL);
		vhuf_request(t.f, VHU_REQ_SET_VRING_NUM, payload, 3, NULL, 0, false, NULL);
	}
	blkt_close(&t);
}

VT_CASE(hostile_neighbour_garbage)
{
	static const uint64_t sizes[NDISK] = {4 * MIB, 4 * MIB, 4 * MIB, 4 * MIB};
	const char *extra[] = {"--threads", "1", NULL};
	atomic_bool stop = false;
	struct writer w[3];
	struct blkt t[3];
	pthread_t th[3];
	struct disks x;
	int fds0;

	VT_REQUIRE(disks_start(&x, sizes, NULL, extra));
	fds0 = count_fds(x.pid);
	/* Disks 0-2 write and verify, on the one pool thread that also
	 * serves disk 3. */
	for (unsigned i = 0; i < 3; i++) {
		VT_REQUIRE(blkt_open(&t[i], x.sock[i], 1, 128, 1, CHUNK, PF_DEFAULT) == 0);
		w[i] = (struct writer){.t = &t[i],
		                       .off = 0,
		                       .len = sizes[i],
		                       .seed = 100 * i,
		                       .rounds = 1000,
		                       .min_rounds = 2,
		                       .stop = &stop};
		VT_REQUIRE(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
	}
	for (unsigned k = 0; k < 20; k++) {
		send_garbage(x.sock[3], k);
		malformed_frontend(x.sock[3]);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		VT_EQ(w[i].errors, 0);
		VT_CHECK(w[i].done >= 2);
		blkt_close(&t[i]);
		VT_CHECK(image_holds(x.img[i], 0, sizes[i], w[i].seed + w[i].done - 1));
	}
	VT_CHECK(kill(x.pid, 0) == 0);
	/* Disk 3 serves a well-behaved front end afterwards, and every
	 * connection's fds are gone. */
	{
		struct writer w3 = {.t = &t[0], .len = sizes[3], .seed = 9, .rounds = 1};

		VT_REQUIRE(blkt_open(&t[0], x.sock[3], 1, 128, 1, CHUNK, PF_DEFAULT) == 0);
		writer_main(&w3);
		VT_EQ(w3.errors, 0);
		blkt_close(&t[0]);
	}
	VT_CHECK(VT_WAIT_FOR(count_fds(x.pid) == fds0));
	VT_EQ(count_fds(x.pid), fds0);
	disks_stop(&x);
}
