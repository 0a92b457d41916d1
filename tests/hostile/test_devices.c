/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real device daemons (vhu-rng, vhu-blk --null) against a hostile
 * front end: every request code with a short payload, a long payload,
 * one fd too many and all-0xff contents, one connection per request.
 * Afterwards the daemon process is alive, a fresh front end does real
 * device I/O (random bytes / a sector read with status OK), and the
 * daemon's open fds and memfd mappings (/proc/PID/fd, /proc/PID/maps) are
 * back to what they were after a warm-up session; on SIGTERM it exits
 * with status 0 (in the sanitizer build: no leak report).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile.h"
#include "vt.h"

VT_MAIN

struct dev {
	pid_t pid;
	char dir[64], sock[128];
	const char *kind; /* "rng" or "blk" */
	int base_fds, base_maps;
};

static int count_dir(const char *path)
{
	char cmd[256];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null | wc -l", path);
	p = popen(cmd, "r");
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

static void counts(const struct dev *d, int *fds, int *maps)
{
	char p[96];

	snprintf(p, sizeof(p), "/proc/%d/fd", (int)d->pid);
	*fds = count_dir(p);
	*maps = vt_count_maps_named((int)d->pid, "/memfd:");
}

static bool alive(const struct dev *d)
{
	return kill(d->pid, 0) == 0 && waitpid(d->pid, NULL, WNOHANG) == 0;
}

static int dev_start(struct dev *d, const char *kind)
{
	const char *root = getenv("VHU_BUILD_ROOT");
	char exe[512];
	struct stat st;

	d->kind = kind;
	snprintf(exe, sizeof(exe), "%s/devices/%s/vhu-%s", root ? root : ".", kind, kind);
	if (stat(exe, &st) < 0)
		return -ENOENT;
	strcpy(d->dir, "/tmp/vhu-hostile-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
	d->pid = fork();
	if (d->pid == 0) {
		dup2(2, 1); /* the daemon's banner is not TAP: keep stdout clean */
		if (!strcmp(kind, "rng"))
			execl(exe, exe, "--socket-path", d->sock, (char *)NULL);
		else
			execl(exe, exe, "--socket-path", d->sock, "--null", "--size", "1M",
			      (char *)NULL);
		_exit(127);
	}
	return d->pid > 0 ? 0 : -errno;
}

/* SIGTERM; the daemon must exit cleanly (under ASan that includes no
 * leak report, which would make the exit status non-zero). */
static bool dev_stop(struct dev *d)
{
	int st = 0;

	kill(d->pid, SIGTERM);
	waitpid(d->pid, &st, 0);
	unlink(d->sock);
	rmdir(d->dir);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "# vhu-%s exit status 0x%x\n", d->kind, st);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static struct vhuf *connect_fe(struct dev *d)
{
	struct vhuf_opts o = {.mem_size = 1 << 20, .connect_timeout_ms = 5000};
	struct vhuf *f;

	if (vhuf_connect(&f, d->sock, &o))
		return NULL;
	if (vhuf_negotiate(f, ~0ull & ~VHU_BIT(VHU_F_RING_PACKED), ~0ull)) {
		vhuf_close(f);
		return NULL;
	}
	return f;
}

/* One round of device I/O; 0 when the device answered correctly. */
static int device_io(struct dev *d)
{
	struct vhuf *f = connect_fe(d);
	void *cookie;
	uint32_t len = 0;
	int r = -EIO;

	if (!f || vhuf_queue_setup(f, 0, 64))
		goto out;
	if (!strcmp(d->kind, "rng")) {
		struct vhuf_buf b = {vhuf_alloc(f, 256, 8), 256, true};

		if (vhuf_submit(f, 0, &b, 1, false, NULL) < 0)
			goto out;
	} else {
		uint64_t hdr = vhuf_alloc(f, 16, 8), data = vhuf_alloc(f, 512, 512),
		         st = vhuf_alloc(f, 1, 1);
		struct vhuf_buf b[3] = {{hdr, 16, false}, {data, 512, true}, {st, 1, true}};
		uint32_t *h = vhuf_ptr(f, hdr);

		h[0] = 0; /* VIRTIO_BLK_T_IN, sector 0 */
		*(uint8_t *)vhuf_ptr(f, st) = 0xff;
		if (vhuf_submit(f, 0, b, 3, false, NULL) < 0)
			goto out;
		vhuf_kick_force(f, 0);
		vhuf_wait_call(f, 0, 5000);
		if (vhuf_get_used(f, 0, &cookie, &len) == 1 && *(uint8_t *)vhuf_ptr(f, st) == 0)
			r = 0;
		goto out;
	}
	vhuf_kick_force(f, 0);
	vhuf_wait_call(f, 0, 5000);
	if (vhuf_get_used(f, 0, &cookie, &len) == 1 && len == 256)
		r = 0;
out:
	if (f)
		vhuf_close(f);
	return r;
}

static bool at_baseline(struct dev *d)
{
	int64_t end = now_ms() + 5000;
	int fds, maps;

	do {
		counts(d, &fds, &maps);
		if (fds == d->base_fds && maps == d->base_maps)
			return true;
		usleep(10000);
	} while (now_ms() < end);
	fprintf(stderr, "# %s daemon: fds %d/%d memfd maps %d/%d\n", d->kind, fds, d->base_fds,
	        maps, d->base_maps);
	return false;
}

static bool hostile_request(struct dev *d, uint32_t req)
{
	static uint8_t buf[VHU_MAX_PAYLOAD];
	struct {
		uint32_t size;
		unsigned nfds;
		uint8_t fill;
	} v[] = {{4, 0, 0}, {VHU_MAX_PAYLOAD, 0, 0}, {8, 2, 0}, {40, 1, 0xff}, {0, 9 - 1, 0}};
	struct vhuf *f = connect_fe(d);
	bool ok = f != NULL;

	for (unsigned i = 0; ok && i < sizeof(v) / sizeof(v[0]); i++) {
		int fds[VHU_MAX_FDS];
		struct vhu_msg *r = calloc(1, sizeof(*r));
		uint64_t feat;
		int ret;

		for (unsigned k = 0; k < v[i].nfds; k++)
			fds[k] = k & 1 ? h_eventfd() : h_memfd(65536);
		memset(buf, v[i].fill, sizeof(buf));
		ret = vhuf_request(f, req, buf, v[i].size, fds, v[i].nfds,
		                   req != VHU_REQ_RESET_OWNER &&
		                       req != VHU_REQ_SET_PROTOCOL_FEATURES &&
		                       req != VHU_REQ_SET_FEATURES && req != VHU_REQ_RESET_DEVICE,
		                   r);
		if (ret == 0)
			vhu_msg_close_fds(r);
		free(r);
		for (unsigned k = 0; k < v[i].nfds; k++)
			close(fds[k]);
		if (ret == -ETIMEDOUT || ret == -ECONNRESET || ret == -EPIPE ||
		    vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &feat) < 0) {
			fprintf(stderr, "# %s: %s variant %u: connection lost (%d)\n", d->kind,
			        vhu_request_name(req), i, ret);
			ok = false;
		}
		if (ok && (req == VHU_REQ_RESET_OWNER || req == VHU_REQ_SET_PROTOCOL_FEATURES ||
		           req == VHU_REQ_SET_FEATURES || req == VHU_REQ_RESET_DEVICE))
			ok = vhuf_negotiate(f, ~0ull & ~VHU_BIT(VHU_F_RING_PACKED), ~0ull) == 0;
	}
	if (f)
		vhuf_close(f);
	return ok;
}

static void run_device(const char *kind)
{
	struct dev d;
	int r = dev_start(&d, kind);

	if (r == -ENOENT) {
		fprintf(stderr, "# vhu-%s not built: skipped\n", kind);
		return;
	}
	VT_REQUIRE(r == 0);
	VT_CHECK(device_io(&d) == 0); /* warm-up, also waits for the socket */
	usleep(200000);
	counts(&d, &d.base_fds, &d.base_maps);
	for (uint32_t req = 0; req <= VHU_REQ_MAX && alive(&d); req++)
		VT_CHECK(hostile_request(&d, req));
	VT_CHECK(alive(&d));
	VT_CHECK(device_io(&d) == 0);
	VT_CHECK(at_baseline(&d));
	VT_CHECK(dev_stop(&d));
}

VT_CASE(vhu_rng_survives_hostile_front_end)
{
	run_device("rng");
}

VT_CASE(vhu_blk_null_survives_hostile_front_end)
{
	run_device("blk");
}
