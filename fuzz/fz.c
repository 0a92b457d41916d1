/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz harness helpers (see fz.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fz.h"

void fz_fail(const char *file, int line, const char *what)
{
	char p[64], t[256];

	fprintf(stderr, "fuzz harness: %s:%d: assertion failed: %s\n", file, line, what);
	for (int fd = 0; fd < 256; fd++) {
		ssize_t n;

		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		n = readlink(p, t, sizeof(t) - 1);
		if (n > 0) {
			t[n] = 0;
			fprintf(stderr, "  fd %d -> %s\n", fd, t);
		}
	}
	abort();
}

static void sink(enum vhu_log_level level, const char *msg, void *opaque) {}

void fz_quiet(void)
{
	if (!getenv("FZ_VERBOSE"))
		vhu_log_set_sink(sink, NULL);
	else
		vhu_log_set_level(VHU_LOG_DEBUG);
}

/* Pipes and /dev/null are left out: libFuzzer itself opens them (the
 * symbolizer it starts to print new functions). */
int fz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char p[300], t[256];
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		ssize_t k;

		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		k = readlink(p, t, sizeof(t) - 1);
		t[k > 0 ? k : 0] = 0;
		if (strncmp(t, "pipe:", 5) && strcmp(t, "/dev/null"))
			n++;
	}
	closedir(d);
	return n;
}

int fz_count_memfd_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "/memfd:"))
			n++;
	fclose(f);
	return n;
}

bool fz_iov_inside(const struct vhu_mem *mem, const struct iovec *iov, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uintptr_t p = (uintptr_t)iov[i].iov_base;
		bool ok = false;

		for (unsigned r = 0; r < vhu_mem_region_count(mem) && !ok; r++) {
			struct vhu_mem_region_info ri;
			uintptr_t b;

			vhu_mem_region_get(mem, r, &ri);
			b = (uintptr_t)ri.hva;
			ok = p >= b && p - b <= ri.size && iov[i].iov_len <= ri.size - (p - b);
		}
		if (!ok)
			return false;
	}
	return true;
}

static int new_eventfd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static int map_image(struct fz_guest *g, const uint8_t *data, size_t rest)
{
	size_t len = (rest + 4095) & ~(size_t)4095;

	if (len == 0)
		len = 4096;
	if (len > FZ_MAX_MEM)
		len = FZ_MAX_MEM;
	if ((g->h.flags & FZ_TWO_REGIONS) && len < 8192)
		len = 8192;
	g->len = len;
	g->memfd = memfd_create("fz-guest", MFD_CLOEXEC);
	if (g->memfd < 0 || ftruncate(g->memfd, (off_t)len) < 0)
		return -1;
	g->img = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
	if (g->img == MAP_FAILED) {
		g->img = NULL;
		return -1;
	}
	memcpy(g->img, data, rest < len ? rest : len);
	return 0;
}

static int build_mem(struct fz_guest *g)
{
	struct vhu_mem_region_desc d[2];
	int fds[2] = {g->memfd, g->memfd};
	size_t half = (g->len / 2) & ~(size_t)4095;

	if (!(g->h.flags & FZ_TWO_REGIONS)) {
		d[0] = (struct vhu_mem_region_desc){0, g->len, FZ_UVA, 0};
		return vhu_mem_new_table(&g->mem, d, fds, 1);
	}
	d[0] = (struct vhu_mem_region_desc){0, half, FZ_UVA, 0};
	d[1] = (struct vhu_mem_region_desc){half + ((g->h.flags & FZ_GAP) ? 4096 : 0),
	                                    g->len - half, FZ_UVA + half, half};
	return vhu_mem_new_table(&g->mem, d, fds, 2);
}

static int attach_extras(struct fz_guest *g)
{
	if (g->h.flags & FZ_INFLIGHT) {
		size_t off = g->h.inflight_off % g->len, n;

		if (vhu_inflight_create(&g->inf, 1, (uint16_t)g->vr.num))
			return -1;
		n = g->len - off < g->inf->size ? g->len - off : g->inf->size;
		memcpy(g->inf->map, g->img + off, n);
		g->vr.inflight = vhu_inflight_queue(g->inf, 0);
	}
	if (g->h.flags & FZ_DIRTY_LOG) {
		/* 2 bytes of bitmap: 16 pages, the largest image. */
		g->logfd = memfd_create("fz-log", MFD_CLOEXEC);
		if (g->logfd < 0 || ftruncate(g->logfd, 4096) < 0 ||
		    vhu_dirty_new(&g->log, g->logfd, 2, 0))
			return -1;
		close(g->logfd);
		g->logfd = -1;
		atomic_store(&g->vr.dirty, g->log);
	}
	return 0;
}

int fz_guest_init(struct fz_guest *g, const uint8_t *data, size_t size)
{
	struct vhu_vring *vr = &g->vr;

	memset(g, 0, sizeof(*g));
	g->memfd = g->logfd = g->err_fd = g->call_fd = g->kick_fd = -1;
	if (size < sizeof(g->h))
		return 1;
	memcpy(&g->h, data, sizeof(g->h));
	if (map_image(g, data + sizeof(g->h), size - sizeof(g->h)) || build_mem(g))
		return g->mem ? -1 : 1; /* region rejected: not a harness failure */
	if (vhu_vring_init(vr, 0, VHU_VRING_PLAIN))
		return -1;
	g->vr_init = true;
	g->features = VHU_BIT(VHU_F_VERSION_1);
	if (g->h.flags & FZ_EVENT_IDX)
		g->features |= VHU_BIT(VHU_F_RING_EVENT_IDX);
	if (g->h.flags & FZ_INDIRECT)
		g->features |= VHU_BIT(VHU_F_RING_INDIRECT_DESC);
	if (g->h.flags & FZ_NOTIFY_EMPTY)
		g->features |= VHU_BIT(VHU_F_NOTIFY_ON_EMPTY);
	if (g->h.pad & FZ_PAD_PACKED)
		g->features |= VHU_BIT(VHU_F_RING_PACKED);
	vr->num = (g->h.pad & FZ_PAD_PACKED) ? g->h.qlog % 256u + 1 : 1u << (g->h.qlog % 9);
	vr->addr = (struct vhu_vring_addr){
	    .flags = (g->h.flags & FZ_DIRTY_LOG) ? VHU_BIT(VHU_VRING_F_LOG) : 0,
	    .desc_user_addr = FZ_UVA + g->h.desc,
	    .used_user_addr = FZ_UVA + g->h.used,
	    .avail_user_addr = FZ_UVA + g->h.avail,
	    .log_guest_addr = g->h.log_gpa,
	};
	vr->addr_set = true;
	vr->base = g->h.base;
	vr->enabled = true;
	vr->err_fd = new_eventfd();
	vr->call_fd = new_eventfd();
	vr->kick_fd = new_eventfd();
	if (vr->err_fd < 0 || vr->call_fd < 0 || vr->kick_fd < 0 || attach_extras(g))
		return -1;
	return vhu_vring_start(vr, g->mem, g->features) ? 1 : 0;
}

void fz_guest_fini(struct fz_guest *g)
{
	if (g->vr_init) {
		atomic_store(&g->vr.dirty, NULL);
		vhu_vring_destroy(&g->vr);
	}
	if (g->log)
		vhu_dirty_free(g->log);
	if (g->inf)
		vhu_inflight_free(g->inf);
	if (g->mem)
		vhu_mem_unref(g->mem);
	if (g->img)
		munmap(g->img, g->len);
	if (g->memfd >= 0)
		close(g->memfd);
	if (g->logfd >= 0)
		close(g->logfd);
	memset(g, 0, sizeof(*g));
}
