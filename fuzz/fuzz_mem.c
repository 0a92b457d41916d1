/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the guest memory table.  The input is a stream of
 * operations on a current snapshot: new table, add region, remove region,
 * and every translation (gpa/uva -> hva, gpa -> iovecs, reads and writes,
 * hva -> gpa).  Each result is compared with a simple oracle over the
 * regions, and after every operation the snapshot must be sorted by gpa
 * with no gpa or uva overlap.  At the end every mapping and fd is gone.
 *
 * Region descriptions come from the input either as small page-granular
 * values (so tables build) or as raw 64-bit values (so overflows are
 * tried); fds are three memfds of different sizes or -1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fz.h"

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint64_t get(struct rd *r, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v |= (uint64_t)(r->n ? *r->p : 0) << (8 * i);
		if (r->n) {
			r->p++;
			r->n--;
		}
	}
	return v;
}

#define NPOOL 3
static int pool[NPOOL] = {-1, -1, -1};
static const size_t pool_size[NPOOL] = {16384, 65536, 1 << 20};

static int pick_fd(struct rd *r)
{
	uint8_t b = (uint8_t)get(r, 1);

	return b == 0xff ? -1 : pool[b % NPOOL];
}

/* Field: small (page multiple) or raw, per bit of `mode`. */
static uint64_t field(struct rd *r, uint8_t mode, unsigned bit, uint64_t scale)
{
	return (mode >> bit) & 1 ? get(r, 8) : get(r, 1) * scale;
}

static void get_desc(struct rd *r, struct vhu_mem_region_desc *d)
{
	uint8_t mode = (uint8_t)get(r, 1);

	d->guest_phys_addr = field(r, mode, 0, 4096);
	d->memory_size = (mode & 2) ? get(r, 8) : (get(r, 1) % 64 + 1) * 4096;
	d->userspace_addr = field(r, mode, 2, 8192) + ((mode & 0x10) ? 0x7f0000000000ull : 0);
	d->mmap_offset = (mode & 8) ? get(r, 8) : (get(r, 1) % 8) * 4096;
}

static void region(const struct vhu_mem *m, unsigned i, struct vhu_mem_region_info *ri)
{
	FZ_ASSERT(vhu_mem_region_get(m, i, ri) == 0);
}

static void check_invariants(const struct vhu_mem *m)
{
	unsigned n = vhu_mem_region_count(m);

	for (unsigned i = 0; i < n; i++) {
		struct vhu_mem_region_info a;

		region(m, i, &a);
		FZ_ASSERT(a.size > 0 && a.hva != NULL);
		FZ_ASSERT(a.gpa + (a.size - 1) >= a.gpa && a.uva + (a.size - 1) >= a.uva);
		for (unsigned j = 0; j < n; j++) {
			struct vhu_mem_region_info b;

			if (j == i)
				continue;
			region(m, j, &b);
			if (j > i)
				FZ_ASSERT(b.gpa > a.gpa + (a.size - 1)); /* sorted, disjoint */
			FZ_ASSERT(b.uva > a.uva + (a.size - 1) || a.uva > b.uva + (b.size - 1));
		}
	}
}

/* The region fully containing [a, a+len) in gpa (uva if `uva`), or -1. */
static int oracle_find(const struct vhu_mem *m, uint64_t a, uint64_t len, bool uva)
{
	for (unsigned i = 0; i < vhu_mem_region_count(m); i++) {
		struct vhu_mem_region_info ri;
		uint64_t start;

		region(m, i, &ri);
		start = uva ? ri.uva : ri.gpa;
		if (a >= start && a - start < ri.size && len <= ri.size - (a - start))
			return (int)i;
	}
	return -1;
}

/* Pieces [gpa, gpa+len) splits into, or -1 if a byte is unmapped/wraps
 * (*before: mapped pieces in front of the hole). */
static long oracle_pieces2(const struct vhu_mem *m, uint64_t gpa, uint64_t len, long *before)
{
	long n = 0;

	*before = 0;
	if (len && gpa + (len - 1) < gpa)
		return -1;
	while (len) {
		int i = -1;
		struct vhu_mem_region_info ri;

		for (unsigned k = 0; k < vhu_mem_region_count(m) && i < 0; k++) {
			region(m, k, &ri);
			if (gpa >= ri.gpa && gpa - ri.gpa < ri.size)
				i = (int)k;
		}
		if (i < 0) {
			*before = n;
			return -1;
		}
		uint64_t chunk = ri.size - (gpa - ri.gpa);
		if (chunk > len)
			chunk = len;
		gpa += chunk;
		len -= chunk;
		n++;
	}
	return n;
}

static long oracle_pieces(const struct vhu_mem *m, uint64_t gpa, uint64_t len)
{
	long before;

	return oracle_pieces2(m, gpa, len, &before);
}

static void op_translate(const struct vhu_mem *m, struct rd *r, bool uva)
{
	uint64_t a = (get(r, 1) & 1) ? get(r, 8) : get(r, 3), len = get(r, 3);
	void *p = uva ? vhu_mem_uva_to_hva(m, a, len) : vhu_mem_gpa_to_hva(m, a, len);
	int i = oracle_find(m, a, len, uva);
	struct vhu_mem_region_info ri;

	FZ_ASSERT((p != NULL) == (i >= 0));
	if (i < 0)
		return;
	region(m, (unsigned)i, &ri);
	FZ_ASSERT((uint8_t *)p == (uint8_t *)ri.hva + (a - (uva ? ri.uva : ri.gpa)));
	if (!uva) {
		uint64_t back = 0;

		FZ_ASSERT(vhu_mem_hva_to_gpa(m, p, &back) == 0 && (len == 0 || back == a));
	}
}

static void op_iov(const struct vhu_mem *m, struct rd *r)
{
	struct iovec iov[16];
	uint64_t gpa = get(r, 3), len = (get(r, 1) & 1) ? get(r, 8) : get(r, 3);
	unsigned max = (unsigned)get(r, 1) % 17;
	long before, want = oracle_pieces2(m, gpa, len, &before);
	int n = vhu_mem_gpa_to_iov(m, gpa, len, iov, max);
	uint64_t sum = 0;

	if (getenv("FZ_VERBOSE"))
		fprintf(stderr, "iov gpa %llx len %llx max %u: want %ld got %d\n",
		        (unsigned long long)gpa, (unsigned long long)len, max, want, n);
	if (want < 0) {
		/* Running out of iovecs before reaching the hole says -ENOBUFS. */
		FZ_ASSERT(n == (before > (long)max ? -ENOBUFS : -EFAULT));
		return;
	}
	if (want > (long)max) {
		FZ_ASSERT(n == -ENOBUFS);
		return;
	}
	FZ_ASSERT(n == want);
	FZ_ASSERT(fz_iov_inside(m, iov, (unsigned)n));
	for (int i = 0; i < n; i++) {
		uint64_t g = 0;

		FZ_ASSERT(vhu_mem_hva_to_gpa(m, iov[i].iov_base, &g) == 0 && g == gpa + sum);
		sum += iov[i].iov_len;
	}
	FZ_ASSERT(sum == len);
}

static void op_copy(const struct vhu_mem *m, struct rd *r)
{
	static uint8_t buf[8192], back[8192];
	uint64_t gpa = (get(r, 1) & 1) ? get(r, 8) : get(r, 3);
	size_t len = (size_t)get(r, 2) % sizeof(buf);
	bool ok = oracle_pieces(m, gpa, len) >= 0;

	memset(buf, (int)len, len);
	FZ_ASSERT((vhu_mem_write(m, gpa, buf, len) == 0) == ok);
	if (!ok)
		return;
	FZ_ASSERT(vhu_mem_read(m, gpa, back, len) == 0);
	FZ_ASSERT(memcmp(buf, back, len) == 0);
}

static void op_hva(const struct vhu_mem *m, struct rd *r)
{
	unsigned n = vhu_mem_region_count(m);
	struct vhu_mem_region_info ri;
	uint64_t off, gpa = 0;

	if (!n) {
		FZ_ASSERT(vhu_mem_hva_to_gpa(m, &off, &gpa) == -EFAULT);
		return;
	}
	region(m, (unsigned)get(r, 1) % n, &ri);
	off = get(r, 3) % ri.size;
	FZ_ASSERT(vhu_mem_hva_to_gpa(m, (uint8_t *)ri.hva + off, &gpa) == 0);
	FZ_ASSERT(gpa == ri.gpa + off);
}

/* Replace *cur with next (on success). */
static void adopt(struct vhu_mem **cur, struct vhu_mem *next, int err)
{
	if (err)
		return;
	FZ_ASSERT(next != NULL);
	vhu_mem_unref(*cur);
	*cur = next;
}

static void op_table(struct vhu_mem **cur, struct rd *r)
{
	struct vhu_mem_region_desc d[12];
	int fds[12];
	unsigned n = (unsigned)get(r, 1) % 12;
	struct vhu_mem *next = NULL;

	for (unsigned i = 0; i < n; i++) {
		get_desc(r, &d[i]);
		fds[i] = pick_fd(r);
	}
	int err = vhu_mem_new_table(&next, d, fds, n);

	adopt(cur, next, err);
}

static void op_add(struct vhu_mem **cur, struct rd *r)
{
	struct vhu_mem_region_desc d;
	struct vhu_mem *next = NULL;
	unsigned before = vhu_mem_region_count(*cur);
	int err, fd;

	get_desc(r, &d);
	fd = pick_fd(r);
	err = vhu_mem_add(&next, *cur, &d, fd);
	if (!err)
		FZ_ASSERT(vhu_mem_region_count(next) == before + 1);
	if (err == 1) /* exact duplicate: counted, no new snapshot */
		FZ_ASSERT(next == NULL && vhu_mem_region_count(*cur) == before);
	adopt(cur, next, err);
}

static void op_remove(struct vhu_mem **cur, struct rd *r)
{
	struct vhu_mem_region_desc d;
	struct vhu_mem *next = NULL;
	unsigned n = vhu_mem_region_count(*cur);
	uint8_t how = (uint8_t)get(r, 1);
	int err;

	if (n && (how & 1)) { /* an existing one, as QEMU sends it */
		struct vhu_mem_region_info ri;

		region(*cur, (how >> 1) % n, &ri);
		d = (struct vhu_mem_region_desc){ri.gpa, ri.size, (how & 0x80) ? 0 : ri.uva, 0};
	} else {
		get_desc(r, &d);
	}
	err = vhu_mem_remove(&next, *cur, &d);
	if (!err)
		FZ_ASSERT(vhu_mem_region_count(next) == n - 1);
	else if (err == 1) /* one of several adds dropped */
		FZ_ASSERT(next == NULL && vhu_mem_region_count(*cur) == n);
	else
		FZ_ASSERT(err == -ENOENT);
	adopt(cur, next, err);
}

static int base_fds = -1, base_maps;

static void setup(void)
{
	fz_quiet();
	for (unsigned i = 0; i < NPOOL; i++) {
		pool[i] = memfd_create("fz-mem-pool", MFD_CLOEXEC);
		FZ_ASSERT(pool[i] >= 0 && ftruncate(pool[i], (off_t)pool_size[i]) == 0);
	}
	base_fds = fz_count_fds();
	base_maps = fz_count_memfd_maps();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd r = {data, size};
	struct vhu_mem *cur = vhu_mem_new_empty();

	if (base_fds < 0)
		setup();
	FZ_ASSERT(cur != NULL);
	for (unsigned steps = 0; r.n && steps < 256; steps++) {
		switch (get(&r, 1) % 8) {
		case 0:
			op_table(&cur, &r);
			break;
		case 1:
			op_add(&cur, &r);
			break;
		case 2:
			op_remove(&cur, &r);
			break;
		case 3:
			op_translate(cur, &r, false);
			break;
		case 4:
			op_translate(cur, &r, true);
			break;
		case 5:
			op_iov(cur, &r);
			break;
		case 6:
			op_copy(cur, &r);
			break;
		default:
			op_hva(cur, &r);
			break;
		}
		check_invariants(cur);
	}
	vhu_mem_unref(cur);
	FZ_ASSERT(fz_count_fds() == base_fds);
	FZ_ASSERT(fz_count_memfd_maps() == base_maps);
	return 0;
}
