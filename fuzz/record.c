/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Seed recorder for the fuzz corpora:  fuzz-record OUTDIR
 *
 * msg:   real sessions of the front-end library against a daemon in this
 *        process, through a proxy that records every front-end -> back-end
 *        message in fuzz_msg's input format (fd kinds from fstat).
 * vring, rng, net: the front-end library's guest memory right after it put
 *        chains on a ring (before the kick), in the fz.h ring format.
 * blk:   virtio-blk requests of every type in fuzz_blk's format.
 * mem:   operation streams for fuzz_mem (tables, add/remove, lookups).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fz.h"
#include "vhu/frontend.h"

static const char *outdir;
static char dir[64], be_path[128], px_path[128];

static void save(const char *target, const char *name, const void *buf, size_t len)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", outdir, target);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%s/%s", outdir, target, name);
	f = fopen(p, "wb");
	if (!f || fwrite(buf, 1, len, f) != len) {
		perror(p);
		exit(1);
	}
	fclose(f);
}

/* ---- a small device: pops and completes every chain ---------------------- */

static unsigned r_nq(void *dev)
{
	return 2;
}
static unsigned r_qs(void *dev)
{
	return 256;
}
static uint64_t r_features(void *dev)
{
	return VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |
	       VHU_BIT(VHU_F_RING_INDIRECT_DESC) | VHU_BIT(VHU_F_LOG_ALL);
}
static uint64_t r_pf(void *dev)
{
	return ~0ull;
}
static int r_get_config(void *dev, uint32_t off, void *buf, uint32_t size)
{
	memset(buf, 0x5a, size);
	return (int)size;
}
static int r_handle(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vr, unsigned n,
                    unsigned t)
{
	struct iovec iov[16];
	struct vhu_chain c = {.iov = iov, .iov_max = 16};
	int r;

	while (ev < n && (r = vhu_vring_pop(vr[ev], &c)) != 0 && r != -EIO)
		vhu_vring_push(vr[ev], &c, 0);
	if (ev < n)
		vhu_vring_notify(vr[ev]);
	return 0;
}
static const struct vhu_backend_ops rec_ops = {
    .num_queues = r_nq,
    .max_queue_size = r_qs,
    .features = r_features,
    .protocol_features = r_pf,
    .get_config = r_get_config,
    .handle_event = r_handle,
};

/* ---- recording proxy -------------------------------------------------------- */

struct rec {
	uint8_t *buf;
	size_t len, cap;
};

static void rec_add(struct rec *r, const void *p, size_t n)
{
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		r->buf = realloc(r->buf, r->cap);
		if (!r->buf)
			exit(1);
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

/* fuzz_msg's fd kinds (see make_fd there). */
static unsigned fd_kind(int fd)
{
	struct stat st;
	char p[64], t[128];
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return 3;
	if (S_ISREG(st.st_mode))
		return st.st_size == 4096 ? 2 : st.st_size == 0 ? 4 : st.st_size > 65536 ? 7 : 0;
	if (S_ISSOCK(st.st_mode))
		return 5;
	if (S_ISCHR(st.st_mode))
		return 6;
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, t, sizeof(t) - 1);
	t[n > 0 ? n : 0] = 0;
	return 3; /* eventfd and anything else */
}

static void rec_msg(struct rec *r, const struct vhu_msg *m)
{
	uint8_t spec = (uint8_t)(m->nfds | (m->nfds ? fd_kind(m->fds[0]) << 4 : 0));

	rec_add(r, &spec, 1);
	rec_add(r, &m->hdr, sizeof(m->hdr));
	rec_add(r, &m->payload, m->hdr.size);
}

static int px_listen;
static struct rec session;
static pthread_mutex_t px_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t px_cond = PTHREAD_COND_INITIALIZER;
static bool px_done;

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, path);
	for (int i = 0; i < 300; i++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		usleep(10000);
	}
	close(fd);
	return -1;
}

static void relay(int front, int back)
{
	static struct vhu_msg m;

	for (;;) {
		struct pollfd p[2] = {{front, POLLIN, 0}, {back, POLLIN, 0}};

		if (poll(p, 2, 10000) <= 0)
			return;
		if (p[0].revents) {
			if (vhu_msg_recv(front, &m))
				return;
			rec_msg(&session, &m);
			vhu_msg_send(back, &m);
			vhu_msg_close_fds(&m);
		}
		if (p[1].revents) {
			if (vhu_msg_recv(back, &m))
				return;
			vhu_msg_send(front, &m);
			vhu_msg_close_fds(&m);
		}
	}
}

static void *proxy(void *arg)
{
	for (;;) {
		int front = accept4(px_listen, NULL, NULL, SOCK_CLOEXEC), back;

		if (front < 0)
			return NULL;
		back = connect_to(be_path);
		if (back >= 0)
			relay(front, back);
		close(front);
		if (back >= 0)
			close(back);
		pthread_mutex_lock(&px_lock);
		px_done = true;
		pthread_cond_signal(&px_cond);
		pthread_mutex_unlock(&px_lock);
	}
}

static struct vhuf *open_fe(uint64_t features, uint64_t pf, size_t mem, unsigned nregions)
{
	struct vhuf_opts o = {.mem_size = mem, .nregions = nregions, .connect_timeout_ms = 3000};
	struct vhuf *f;

	session.len = 0;
	px_done = false;
	if (vhuf_connect(&f, px_path, &o) || vhuf_negotiate(f, features, pf)) {
		fprintf(stderr, "record: cannot connect/negotiate\n");
		exit(1);
	}
	return f;
}

/* The recorded session with VIRTIO_F_RING_PACKED added to SET_FEATURES
 * (the front-end library lays out split rings only; the back end then
 * reads the same memory as packed rings). */
static void save_packed_variant(const char *name)
{
	uint8_t *b = malloc(session.len);
	char n[128];

	memcpy(b, session.buf, session.len);
	for (size_t i = 0; i + 13 <= session.len;) {
		struct vhu_msg_hdr h;

		memcpy(&h, b + i + 1, sizeof(h));
		if (h.request == VHU_REQ_SET_FEATURES && h.size == 8 && i + 21 <= session.len) {
			uint64_t v;

			memcpy(&v, b + i + 13, 8);
			v |= VHU_BIT(VHU_F_RING_PACKED);
			memcpy(b + i + 13, &v, 8);
		}
		i += 13 + h.size;
	}
	snprintf(n, sizeof(n), "%s-packed", name);
	save("msg", n, b, session.len);
	free(b);
}

static void close_fe(struct vhuf *f, const char *name)
{
	vhuf_close(f);
	pthread_mutex_lock(&px_lock);
	while (!px_done)
		pthread_cond_wait(&px_cond, &px_lock);
	pthread_mutex_unlock(&px_lock);
	save("msg", name, session.buf, session.len);
	if (!strcmp(name, "qemu-like") || !strcmp(name, "slots-inflight-kick"))
		save_packed_variant(name);
}

/* ---- ring snapshots -------------------------------------------------------- */

static void ring_seed(struct vhuf *f, unsigned q, unsigned size, uint8_t flags, uint8_t ops,
                      size_t mem, const char *name)
{
	uint8_t *base = vhuf_ptr(f, 0), *buf;
	struct fz_ring_hdr h = {
	    .flags = flags,
	    .iovmax = 63,
	    .ops = ops,
	    .desc = (uint32_t)((uint8_t *)vhuf_ring_desc(f, q) - base),
	    .avail = (uint32_t)((uint8_t *)vhuf_ring_avail(f, q) - base),
	    .used = (uint32_t)((uint8_t *)vhuf_ring_used(f, q) - base),
	};

	while ((1u << h.qlog) < size)
		h.qlog++;
	buf = malloc(sizeof(h) + mem);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), base, mem);
	save("vring", name, buf, sizeof(h) + mem);
	save("rng", name, buf, sizeof(h) + mem);
	save("net", name, buf, sizeof(h) + mem);
	free(buf);
}

static void submit_some(struct vhuf *f, unsigned q, unsigned n, bool indirect, bool out_too)
{
	for (unsigned i = 0; i < n; i++) {
		struct vhuf_buf b[3] = {
		    {vhuf_alloc(f, 64, 8), 64, false},
		    {vhuf_alloc(f, 100 + i, 8), 100 + i, true},
		    {vhuf_alloc(f, 512, 8), 512, true},
		};

		vhuf_submit(f, q, out_too ? b : b + 1, out_too ? 3 : 2, indirect, NULL);
	}
}

/* ---- sessions ---------------------------------------------------------------- */

#define F_ALL                                                                                      \
	(VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |                                \
	 VHU_BIT(VHU_F_RING_INDIRECT_DESC) | VHU_BIT(VHU_F_LOG_ALL))

static void sessions(void)
{
	struct vhuf *f;
	uint32_t base;
	uint64_t v;

	/* QEMU-like start, two queues, I/O, stop. */
	f = open_fe(F_ALL, ~0ull, 65536, 1);
	vhuf_queue_setup(f, 0, 64);
	vhuf_queue_setup(f, 1, 64);
	vhuf_queue_stop(f, 0, &base);
	vhuf_queue_stop(f, 1, &base);
	close_fe(f, "qemu-like");

	/* No REPLY_ACK, no protocol features at all. */
	f = open_fe(VHU_BIT(VHU_F_VERSION_1), 0, 65536, 1);
	vhuf_queue_setup(f, 0, 16);
	close_fe(f, "legacy");

	/* Two regions, config, status, max slots, reset and again. */
	f = open_fe(F_ALL, ~0ull, 65536, 2);
	vhuf_queue_setup(f, 0, 32);
	{
		uint8_t cfg[16];

		vhuf_get_config(f, 0, cfg, sizeof(cfg));
	}
	vhuf_set_u64(f, VHU_REQ_SET_STATUS, 0xf);
	vhuf_get_u64(f, VHU_REQ_GET_STATUS, &v);
	vhuf_get_u64(f, VHU_REQ_GET_MAX_MEM_SLOTS, &v);
	vhuf_get_u64(f, VHU_REQ_GET_QUEUE_NUM, &v);
	vhuf_request(f, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0, true, NULL);
	vhuf_negotiate(f, F_ALL, ~0ull);
	vhuf_queue_setup(f, 1, 8);
	close_fe(f, "config-status-reset");

	/* Memory slots: add/remove a region, inflight fd, in-band kick. */
	f = open_fe(F_ALL, ~0ull, 65536, 1);
	{
		struct vhu_mem_region_desc d;
		struct vhu_mem_single_msg m = {0};
		struct vhu_inflight_msg in = {.num_queues = 2, .queue_size = 64};
		struct vhu_vring_state k = {0, 0};
		struct vhu_msg *r = malloc(sizeof(*r));
		int fd;

		vhuf_region(f, 0, &d, &fd);
		vhuf_request(f, VHU_REQ_GET_INFLIGHT_FD, &in, sizeof(in), NULL, 0, false, r);
		if (r->nfds) {
			vhuf_request(f, VHU_REQ_SET_INFLIGHT_FD, &r->payload.inflight, sizeof(in),
			             r->fds, 1, true, NULL);
			vhu_msg_close_fds(r);
		}
		vhuf_queue_setup(f, 0, 64);
		vhuf_request(f, VHU_REQ_VRING_KICK, &k, sizeof(k), NULL, 0, true, NULL);
		m.region = d;
		vhuf_request(f, VHU_REQ_REM_MEM_REGION, &m, sizeof(m), NULL, 0, true, NULL);
		vhuf_request(f, VHU_REQ_ADD_MEM_REGION, &m, sizeof(m), &fd, 1, true, NULL);
		free(r);
	}
	close_fe(f, "slots-inflight-kick");
}

static void ring_seeds(void)
{
	struct vhuf *f;

	f = open_fe(F_ALL, ~0ull, 32768, 1);
	vhuf_queue_setup(f, 0, 16);
	vhuf_queue_setup(f, 1, 8);
	submit_some(f, 0, 5, false, true);
	submit_some(f, 1, 3, true, true);
	ring_seed(f, 0, 16, FZ_EVENT_IDX | FZ_INDIRECT, 0x00, 32768, "direct-evidx");
	ring_seed(f, 1, 8, FZ_EVENT_IDX | FZ_INDIRECT, 0x41, 32768, "indirect");
	ring_seed(f, 0, 16, FZ_EVENT_IDX | FZ_INDIRECT | FZ_INFLIGHT | FZ_RESTART, 0x03, 32768,
	          "inflight-restart");
	ring_seed(f, 0, 16, FZ_EVENT_IDX | FZ_INDIRECT | FZ_TWO_REGIONS | FZ_DIRTY_LOG, 0xa5, 32768,
	          "two-regions-log");
	close_fe(f, "ring-session");

	f = open_fe(VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC), ~0ull, 32768, 1);
	vhuf_queue_setup(f, 0, 32);
	submit_some(f, 0, 7, true, false);
	ring_seed(f, 0, 32, FZ_INDIRECT | FZ_NOTIFY_EMPTY, 0x20, 32768, "writable-only");
	close_fe(f, "ring-session-2");
}

/* A packed ring laid out by hand (the front-end library drives split rings
 * only): three chains for the first pass (avail wrap counter 1). */
struct pdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t id, flags;
};
#define P_NEXT     1
#define P_WRITE    2
#define P_INDIRECT 4
#define P_AVAIL    (1 << 7)

static void packed_seed(void)
{
	static uint8_t buf[sizeof(struct fz_ring_hdr) + 16384];
	struct fz_ring_hdr h = {.flags = FZ_INDIRECT | FZ_EVENT_IDX,
	                        .qlog = 15,
	                        .iovmax = 63,
	                        .pad = FZ_PAD_PACKED,
	                        .desc = 0,
	                        .avail = 4096,
	                        .used = 4100};
	struct pdesc *d = (struct pdesc *)(buf + sizeof(h));
	struct pdesc *ind = (struct pdesc *)(buf + sizeof(h) + 8192);

	memcpy(buf, &h, sizeof(h));
	d[0] = (struct pdesc){12288, 64, 0, P_AVAIL | P_NEXT};
	d[1] = (struct pdesc){12352, 512, 0, P_AVAIL | P_WRITE};
	d[2] = (struct pdesc){8192, 3 * 16, 1, P_AVAIL | P_INDIRECT};
	ind[0] = (struct pdesc){12864, 16, 0, 0};
	ind[1] = (struct pdesc){12880, 100, 0, P_WRITE};
	ind[2] = (struct pdesc){12980, 1, 0, P_WRITE};
	d[3] = (struct pdesc){13000, 1000, 2, P_AVAIL | P_WRITE};
	save("vring", "packed", buf, sizeof(buf));
	save("rng", "packed", buf, sizeof(buf));
	save("net", "packed", buf, sizeof(buf));
}

/* ---- blk and mem seeds (formats of fuzz_blk / fuzz_mem) ------------------ */

static void blk_seed(const char *name, uint32_t type, uint64_t sector, const uint16_t *lens,
                     unsigned nout, unsigned nin, const void *extra, size_t extra_len)
{
	uint8_t buf[256] = {0, 0, 0x80 | (32 << 1), 3};
	struct virtio_blk_outhdr h = {.type = type, .sector = sector};
	size_t n = 4;

	buf[0] = (uint8_t)nout;
	buf[1] = (uint8_t)nin;
	for (unsigned i = 0; i < nout + nin; i++) {
		memcpy(buf + n, &lens[i], 2);
		n += 2;
	}
	memcpy(buf + n, &h, sizeof(h));
	n += sizeof(h);
	if (extra_len)
		memcpy(buf + n, extra, extra_len);
	n += extra_len;
	save("blk", name, buf, n);
}

static void blk_seeds(void)
{
	struct virtio_blk_discard_write_zeroes dz[2] = {{8, 16, 0}, {64, 8, 1}};
	static const uint16_t rd[] = {16, 512, 511, 2}, wr[] = {16, 1024, 1}, one[] = {16, 1},
	                      id[] = {16, 20, 1}, dzl[] = {16 + 32, 1}, split[] = {8, 8, 512, 1};

	blk_seed("read", VIRTIO_BLK_T_IN, 4, rd, 1, 3, NULL, 0);
	blk_seed("write", VIRTIO_BLK_T_OUT, 0, wr, 2, 1, NULL, 0);
	blk_seed("flush", VIRTIO_BLK_T_FLUSH, 0, one, 1, 1, NULL, 0);
	blk_seed("get-id", VIRTIO_BLK_T_GET_ID, 0, id, 1, 2, NULL, 0);
	blk_seed("discard", VIRTIO_BLK_T_DISCARD, 0, dzl, 1, 1, dz, sizeof(dz));
	blk_seed("write-zeroes", VIRTIO_BLK_T_WRITE_ZEROES, 0, dzl, 1, 1, dz, sizeof(dz));
	blk_seed("split-header", VIRTIO_BLK_T_OUT, 1, split, 3, 1, NULL, 0);
}

static void mem_seeds(void)
{
	/* op 0: table of 2 (mode 0: page-granular), then lookups; op 1: add;
	 * op 2: remove existing; 3..7 translations. */
	static const uint8_t table[] = {0, 2, 0, 0, 3, 0,    0, 1,    0,  16, 3,    16, 0, 1,
	                                3, 0, 1, 0, 0, 16,   4, 0,    16, 0,  0,    32, 5, 0,
	                                8, 2, 6, 0, 0, 0x10, 0, 0x10, 7,  1,  0x10, 0,  0};
	static const uint8_t addrm[] = {1, 0, 4, 1, 8, 0, 0, 1, 0, 0x10, 0, 0x30, 0, 0, 2, 1,
	                                3, 0, 4, 0, 0, 0, 0, 0, 5, 0,    0, 0,    0, 0, 0, 9};
	static const uint8_t raw[] = {0,    1, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                              0xf0, 0, 0,    0,    0,    0,    0,    0,    0x10, 0,
	                              0,    0, 0,    0,    0,    0,    0,    0,    0,    0,
	                              0,    0, 0,    0,    0,    0,    0,    0,    0,    1};

	save("mem", "table-lookups", table, sizeof(table));
	save("mem", "add-remove", addrm, sizeof(addrm));
	save("mem", "raw-overflow", raw, sizeof(raw));
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vhu_daemon *d;
	pthread_t th;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	fz_quiet();
	strcpy(dir, "/tmp/fz-record-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(be_path, sizeof(be_path), "%s/be.sock", dir);
	snprintf(px_path, sizeof(px_path), "%s/px.sock", dir);
	if (vhu_daemon_new(&d, &rec_ops, NULL, NULL) || vhu_daemon_start(d, be_path))
		return 1;
	px_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, px_path);
	if (bind(px_listen, (struct sockaddr *)&sa, sizeof(sa)) || listen(px_listen, 4))
		return 1;
	pthread_create(&th, NULL, proxy, NULL);
	sessions();
	ring_seeds();
	packed_seed();
	blk_seeds();
	mem_seeds();
	vhu_daemon_free(d);
	unlink(px_path);
	rmdir(dir);
	printf("seeds written to %s\n", outdir);
	return 0;
}
