/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest memory snapshots.  A snapshot is an immutable, refcounted array of
 * regions sorted by gpa; regions are refcounted on their own so that
 * ADD/REM_MEM_REGION build a new snapshot sharing every unchanged mapping.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "internal.h"

static void region_unref(struct vhu_mem_region *r)
{
	if (!r || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
		return;
	munmap(r->map, r->map_size);
	free(r);
}

static struct vhu_mem_region *region_ref(struct vhu_mem_region *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	return r;
}

/* [start, start+len) does not wrap (ending exactly at 2^64 is fine). */
static bool range_ok(uint64_t start, uint64_t len)
{
	return len == 0 || start + (len - 1) >= start;
}

/* Check one region description for zero size and wrapping sums. */
static int region_desc_valid(const struct vhu_mem_region_desc *d)
{
	uint64_t sz = d->memory_size, off = d->mmap_offset;

	if (sz == 0 || !range_ok(d->guest_phys_addr, sz) || !range_ok(d->userspace_addr, sz))
		return -EINVAL;
	/* The mapping covers [0, off + size) of the fd. */
	if (off + sz < sz || off + sz > SIZE_MAX || off > (uint64_t)INT64_MAX)
		return -EINVAL;
	return 0;
}

static int region_new(struct vhu_mem_region **out, const struct vhu_mem_region_desc *d, int fd)
{
	uint64_t sz = d->memory_size, off = d->mmap_offset, len = sz + off;
	struct vhu_mem_region *r;
	struct stat st;
	void *map;

	if (fd < 0 || region_desc_valid(d))
		return -EINVAL;
	/* A mapping past the end of a file would SIGBUS on guest access. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len) {
		VHU_LOGE("memory region gpa 0x%llx: offset + size beyond the end of its file",
		         (unsigned long long)d->guest_phys_addr);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	map = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (map == MAP_FAILED) {
		int err = -errno;
		free(r);
		VHU_LOGE("mmap of memory region gpa 0x%llx size 0x%llx failed: %d",
		         (unsigned long long)d->guest_phys_addr, (unsigned long long)sz, err);
		return err;
	}
	atomic_init(&r->refs, 1);
	r->adds = 1;
	r->gpa = d->guest_phys_addr;
	r->size = sz;
	r->uva = d->userspace_addr;
	r->mmap_offset = off;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->map = map;
	r->map_size = (size_t)len;
	r->hva = (uint8_t *)map + off;
	*out = r;
	return 0;
}

/* Last byte of a range, computed without overflow (size > 0). */
static uint64_t last_byte(uint64_t start, uint64_t size)
{
	return start + (size - 1);
}

static int cmp_gpa(const void *a, const void *b)
{
	const struct vhu_mem_region *x = *(const struct vhu_mem_region *const *)a;
	const struct vhu_mem_region *y = *(const struct vhu_mem_region *const *)b;
	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static int cmp_uva(const void *a, const void *b)
{
	const struct vhu_mem_region *x = *(const struct vhu_mem_region *const *)a;
	const struct vhu_mem_region *y = *(const struct vhu_mem_region *const *)b;
	return x->uva < y->uva ? -1 : x->uva > y->uva;
}

/* Sort by gpa and reject any gpa or uva overlap. */
static int regions_sort_check(struct vhu_mem_region **rs, unsigned n)
{
	struct vhu_mem_region **tmp;
	int ret = 0;

	if (n < 2)
		return 0;
	qsort(rs, n, sizeof(*rs), cmp_gpa);
	for (unsigned i = 1; i < n; i++)
		if (rs[i]->gpa <= last_byte(rs[i - 1]->gpa, rs[i - 1]->size))
			return -EINVAL;
	tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, rs, n * sizeof(*tmp));
	qsort(tmp, n, sizeof(*tmp), cmp_uva);
	for (unsigned i = 1; i < n && !ret; i++)
		if (tmp[i]->uva <= last_byte(tmp[i - 1]->uva, tmp[i - 1]->size))
			ret = -EINVAL;
	free(tmp);
	return ret;
}

static struct vhu_mem *mem_alloc(unsigned n)
{
	struct vhu_mem *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	if (n) {
		m->regions = calloc(n, sizeof(*m->regions));
		if (!m->regions) {
			free(m);
			return NULL;
		}
	}
	return m;
}

/* Free a snapshot whose first `n` region slots are filled. */
static void mem_free(struct vhu_mem *m, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		region_unref(m->regions[i]);
	free(m->regions);
	free(m);
}

struct vhu_mem *vhu_mem_new_empty(void)
{
	return mem_alloc(0);
}

/* A region of old that d (whose memory is fd) describes again, or NULL. */
static struct vhu_mem_region *same_region(const struct vhu_mem *old,
                                          const struct vhu_mem_region_desc *d, int fd)
{
	struct stat st;

	for (unsigned i = 0; old && i < old->nregions; i++) {
		struct vhu_mem_region *r = old->regions[i];

		if (r->gpa == d->guest_phys_addr && r->size == d->memory_size &&
		    r->uva == d->userspace_addr && r->mmap_offset == d->mmap_offset)
			return fstat(fd, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino
			           ? r
			           : NULL;
	}
	return NULL;
}

int vhu_mem_new_table(struct vhu_mem **out, const struct vhu_mem_region_desc *d, const int *fds,
                      unsigned n)
{
	return vhu_mem_new_table_from(out, d, fds, n, NULL);
}

int vhu_mem_new_table_from(struct vhu_mem **out, const struct vhu_mem_region_desc *d,
                           const int *fds, unsigned n, const struct vhu_mem *old)
{
	struct vhu_mem *m;
	int ret = 0;
	unsigned i;

	if (n > VHU_MAX_MEM_SLOTS || (n && (!d || !fds)))
		return -EINVAL;
	m = mem_alloc(n);
	if (!m)
		return -ENOMEM;
	/* Validate everything before mapping anything. */
	for (i = 0; i < n && !ret; i++)
		ret = region_desc_valid(&d[i]) ? -EINVAL : fds[i] < 0 ? -EBADF : 0;
	for (i = 0; i < n && !ret; i++) {
		struct vhu_mem_region *same = same_region(old, &d[i], fds[i]);

		if (same)
			m->regions[i] = region_ref(same);
		else
			ret = region_new(&m->regions[i], &d[i], fds[i]);
	}
	if (ret) {
		mem_free(m, n); /* unfilled slots are NULL */
		return ret;
	}
	m->nregions = n;
	ret = regions_sort_check(m->regions, n);
	if (ret) {
		mem_free(m, n);
		return ret;
	}
	for (i = 0; i < n; i++)
		m->regions[i]->adds = 1; /* a table sets each region once */
	*out = m;
	return 0;
}

int vhu_mem_add(struct vhu_mem **out, const struct vhu_mem *old,
                const struct vhu_mem_region_desc *d, int fd)
{
	unsigned n = old ? old->nregions : 0;
	struct vhu_mem *m;
	int ret;

	ret = region_desc_valid(d);
	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++) {
		struct vhu_mem_region *r = old->regions[i];
		if (r->gpa == d->guest_phys_addr && r->size == d->memory_size &&
		    r->uva == d->userspace_addr && r->mmap_offset == d->mmap_offset) {
			r->adds++;
			return 1;
		}
	}
	if (n >= VHU_MAX_MEM_SLOTS)
		return -ENOSPC;
	m = mem_alloc(n + 1);
	if (!m)
		return -ENOMEM;
	ret = region_new(&m->regions[n], d, fd);
	if (ret) {
		mem_free(m, 0);
		return ret;
	}
	for (unsigned i = 0; i < n; i++)
		m->regions[i] = region_ref(old->regions[i]);
	m->nregions = n + 1;
	ret = regions_sort_check(m->regions, n + 1);
	if (ret) {
		mem_free(m, n + 1);
		return ret;
	}
	*out = m;
	return 0;
}

int vhu_mem_remove(struct vhu_mem **out, const struct vhu_mem *old,
                   const struct vhu_mem_region_desc *d)
{
	unsigned n = old ? old->nregions : 0, k = 0, hit = n;
	struct vhu_mem *m;

	for (unsigned i = 0; i < n && hit == n; i++) {
		const struct vhu_mem_region *r = old->regions[i];
		if (r->gpa == d->guest_phys_addr && r->size == d->memory_size &&
		    (d->userspace_addr == 0 || d->userspace_addr == r->uva))
			hit = i;
	}
	if (hit == n)
		return -ENOENT;
	if (old->regions[hit]->adds > 1) {
		old->regions[hit]->adds--;
		return 1;
	}
	m = mem_alloc(n - 1);
	if (!m)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		if (i != hit)
			m->regions[k++] = region_ref(old->regions[i]);
	m->nregions = k;
	*out = m;
	return 0;
}

struct vhu_mem *vhu_mem_ref(struct vhu_mem *mem)
{
	if (mem)
		atomic_fetch_add_explicit(&mem->refs, 1, memory_order_relaxed);
	return mem;
}

void vhu_mem_unref(struct vhu_mem *mem)
{
	if (!mem || atomic_fetch_sub_explicit(&mem->refs, 1, memory_order_acq_rel) != 1)
		return;
	mem_free(mem, mem->nregions);
}

unsigned vhu_mem_region_count(const struct vhu_mem *mem)
{
	return mem ? mem->nregions : 0;
}

int vhu_mem_region_get(const struct vhu_mem *mem, unsigned i, struct vhu_mem_region_info *out)
{
	const struct vhu_mem_region *r;

	if (!mem || i >= mem->nregions || !out)
		return -EINVAL;
	r = mem->regions[i];
	out->gpa = r->gpa;
	out->size = r->size;
	out->uva = r->uva;
	out->hva = r->hva;
	return 0;
}

/* Index of the region containing gpa, or -1 (binary search). */
static int find_gpa(const struct vhu_mem *mem, uint64_t gpa)
{
	unsigned lo = 0, hi = mem->nregions;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct vhu_mem_region *r = mem->regions[mid];

		if (gpa < r->gpa)
			hi = mid;
		else if (gpa - r->gpa >= r->size)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

void *vhu_mem_gpa_find(const struct vhu_mem *mem, uint64_t gpa, uint64_t len, unsigned *hint)
{
	const struct vhu_mem_region *r;
	uint64_t off;
	int i;

	if (!mem)
		return NULL;
	i = find_gpa(mem, gpa);
	if (i < 0)
		return NULL;
	r = mem->regions[i];
	off = gpa - r->gpa;
	if (len > r->size - off)
		return NULL;
	if (hint)
		*hint = (unsigned)i;
	return r->hva + off;
}

void *vhu_mem_gpa_to_hva(const struct vhu_mem *mem, uint64_t gpa, uint64_t len)
{
	return vhu_mem_gpa_find(mem, gpa, len, NULL);
}

void *vhu_mem_uva_to_hva(const struct vhu_mem *mem, uint64_t uva, uint64_t len)
{
	/* Sorted by gpa, not uva: linear, only used when rings are set up. */
	for (unsigned i = 0; mem && i < mem->nregions; i++) {
		const struct vhu_mem_region *r = mem->regions[i];
		uint64_t off = uva - r->uva;

		if (uva >= r->uva && off < r->size)
			return len <= r->size - off ? r->hva + off : NULL;
	}
	return NULL;
}

static bool hva_in(const struct vhu_mem_region *r, uintptr_t p, uint64_t *gpa)
{
	uintptr_t base = (uintptr_t)r->hva;

	if (p < base || p - base >= r->size)
		return false;
	*gpa = r->gpa + (p - base);
	return true;
}

int vhu_mem_hva_to_gpa_hint(const struct vhu_mem *mem, const void *hva, uint64_t *gpa,
                            unsigned *hint)
{
	uintptr_t p = (uintptr_t)hva;

	if (!mem || !gpa)
		return -EFAULT;
	if (*hint < mem->nregions && hva_in(mem->regions[*hint], p, gpa))
		return 0;
	for (unsigned i = 0; i < mem->nregions; i++) {
		if (hva_in(mem->regions[i], p, gpa)) {
			*hint = i;
			return 0;
		}
	}
	return -EFAULT;
}

int vhu_mem_hva_to_gpa(const struct vhu_mem *mem, const void *hva, uint64_t *gpa)
{
	unsigned hint = 0;
	return vhu_mem_hva_to_gpa_hint(mem, hva, gpa, &hint);
}

int vhu_mem_gpa_to_iov_hint(const struct vhu_mem *mem, uint64_t gpa, uint64_t len,
                            struct iovec *iov, unsigned max, unsigned *hint)
{
	unsigned n = 0;

	if (!mem || !range_ok(gpa, len))
		return -EFAULT;
	while (len) {
		const struct vhu_mem_region *r;
		uint64_t off, chunk;
		unsigned h = *hint;

		if (h >= mem->nregions || gpa < mem->regions[h]->gpa ||
		    gpa - mem->regions[h]->gpa >= mem->regions[h]->size) {
			int i = find_gpa(mem, gpa);
			if (i < 0)
				return -EFAULT;
			h = *hint = (unsigned)i;
		}
		r = mem->regions[h];
		off = gpa - r->gpa;
		chunk = r->size - off < len ? r->size - off : len;
		if (iov) {
			if (n >= max)
				return -ENOBUFS;
			iov[n].iov_base = r->hva + off;
			iov[n].iov_len = (size_t)chunk;
		}
		n++;
		gpa += chunk;
		len -= chunk;
	}
	return (int)n;
}

int vhu_mem_gpa_to_iov(const struct vhu_mem *mem, uint64_t gpa, uint64_t len, struct iovec *iov,
                       unsigned max)
{
	unsigned hint = 0;

	return vhu_mem_gpa_to_iov_hint(mem, gpa, len, iov, max, &hint);
}

/* Copy in or out chunk by chunk across regions. */
static int mem_copy(const struct vhu_mem *mem, uint64_t gpa, void *buf, size_t len, bool out)
{
	uint8_t *p = buf;
	unsigned hint = 0;

	if (!range_ok(gpa, len))
		return -EFAULT;
	while (len) {
		struct iovec iov;
		/* One iovec: -ENOBUFS still leaves the first chunk in iov. */
		if (vhu_mem_gpa_to_iov_hint(mem, gpa, len, &iov, 1, &hint) == -EFAULT)
			return -EFAULT;
		if (out)
			memcpy(iov.iov_base, p, iov.iov_len);
		else
			memcpy(p, iov.iov_base, iov.iov_len);
		p += iov.iov_len;
		gpa += iov.iov_len;
		len -= iov.iov_len;
	}
	return 0;
}

int vhu_mem_read(const struct vhu_mem *mem, uint64_t gpa, void *buf, size_t len)
{
	return mem_copy(mem, gpa, buf, len, false);
}

int vhu_mem_write(const struct vhu_mem *mem, uint64_t gpa, const void *buf, size_t len)
{
	return mem_copy(mem, gpa, (void *)buf, len, true);
}
