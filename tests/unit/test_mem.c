/* SPDX-License-Identifier: Apache-2.0 */
/* Guest memory snapshots: validation, translation, refcounting. */
#include "guest.h"

VT_MAIN

#define MB (1024ull * 1024)

static struct vhu_mem_region_desc R(uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off) {
	return (struct vhu_mem_region_desc){gpa, size, uva, off};
}

VT_CASE(table_translate_boundaries)
{
	struct guest g;
	uint8_t *h;
	uint64_t gpa;

	/* Region 0: gpa [0x10000, +1M), region 1: gpa [0x10000+1M, +1M)
	 * (adjacent in gpa, backed by the two halves of the memfd). */
	VT_REQUIRE(guest_init2(&g, 0x10000, 0x10000 + MB, 2 * MB) == 0);
	VT_EQ(vhu_mem_region_count(g.mem), 2);
	h = vhu_mem_gpa_to_hva(g.mem, 0x10000, 1);
	VT_CHECK(h == loff(&g, 0));
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x10000 + MB - 1, 1) == loff(&g, MB - 1));
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x10000, MB) == loff(&g, 0));
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x10000, MB + 1) == NULL); /* crosses */
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x10000 + MB, 1) == loff(&g, MB));
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x10000 + 2 * MB - 1, 1) == loff(&g, 2 * MB - 1));
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x10000 + 2 * MB, 1) == NULL); /* past end */
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x10000 + 2 * MB - 1, 2) == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0xffff, 1) == NULL); /* before */
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0xffff, 2) == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0, 1) == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, UINT64_MAX, 2) == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x10000 + 5, UINT64_MAX) == NULL);
	/* uva */
	VT_CHECK(vhu_mem_uva_to_hva(g.mem, G_UVA_BASE + 0x10000, 16) == loff(&g, 0));
	VT_CHECK(vhu_mem_uva_to_hva(g.mem, G_UVA_BASE + 0x10000 + MB, 16) == loff(&g, MB));
	VT_CHECK(vhu_mem_uva_to_hva(g.mem, G_UVA_BASE + 0x10000 + MB - 8, 16) == NULL);
	VT_CHECK(vhu_mem_uva_to_hva(g.mem, G_UVA_BASE + 0x10000 - 1, 1) == NULL);
	VT_CHECK(vhu_mem_uva_to_hva(g.mem, 0x10000, 1) == NULL);
	/* hva -> gpa */
	VT_EQ(vhu_mem_hva_to_gpa(g.mem, loff(&g, 0), &gpa), 0);
	VT_EQ(gpa, 0x10000);
	VT_EQ(vhu_mem_hva_to_gpa(g.mem, loff(&g, MB + 7), &gpa), 0);
	VT_EQ(gpa, 0x10000 + MB + 7);
	VT_EQ(vhu_mem_hva_to_gpa(g.mem, &gpa, &gpa), -EFAULT); /* not guest memory */
	VT_EQ(vhu_mem_hva_to_gpa(g.mem, NULL, &gpa), -EFAULT);
	/* the library's mapping aliases the test's one */
	g.base[MB + 5] = 0x77;
	VT_EQ(*(uint8_t *)vhu_mem_gpa_to_hva(g.mem, 0x10000 + MB + 5, 1), 0x77);
	guest_fini(&g);
}

VT_CASE(region_get)
{
	struct guest g;
	struct vhu_mem_region_info ri;

	VT_REQUIRE(guest_init2(&g, 0x200000, 0x0, 2 * MB) == 0);
	/* sorted by gpa: the region at 0 comes first */
	VT_EQ(vhu_mem_region_get(g.mem, 0, &ri), 0);
	VT_EQ(ri.gpa, 0);
	VT_EQ(ri.size, MB);
	VT_CHECK(ri.hva == loff(&g, MB));
	VT_EQ(ri.uva, G_UVA_BASE);
	VT_EQ(vhu_mem_region_get(g.mem, 1, &ri), 0);
	VT_EQ(ri.gpa, 0x200000);
	VT_EQ(vhu_mem_region_get(g.mem, 2, &ri), -EINVAL);
	VT_EQ(vhu_mem_region_count(NULL), 0);
	guest_fini(&g);
}

VT_CASE(gpa_to_iov_spans_regions)
{
	struct guest g;
	struct iovec iov[4];

	VT_REQUIRE(guest_init2(&g, 0x10000, 0x10000 + MB, 2 * MB) == 0);
	VT_EQ(vhu_mem_gpa_to_iov(g.mem, 0x10000 + MB - 100, 300, iov, 4), 2);
	VT_CHECK(iov[0].iov_base == loff(&g, MB - 100));
	VT_EQ(iov[0].iov_len, 100);
	VT_CHECK(iov[1].iov_base == loff(&g, MB));
	VT_EQ(iov[1].iov_len, 200);
	VT_EQ(vhu_mem_gpa_to_iov(g.mem, 0x10000 + MB - 100, 300, iov, 1), -ENOBUFS);
	VT_EQ(vhu_mem_gpa_to_iov(g.mem, 0x10000 + 2 * MB - 100, 101, iov, 4), -EFAULT);
	VT_EQ(vhu_mem_gpa_to_iov(g.mem, UINT64_MAX - 5, 10, iov, 4), -EFAULT);
	VT_EQ(vhu_mem_gpa_to_iov(g.mem, 0x10000, 0, iov, 4), 0);
	VT_EQ(vhu_mem_gpa_to_iov(g.mem, 0x10000, 2 * MB, iov, 4), 2);
	guest_fini(&g);
}

VT_CASE(gap_between_regions)
{
	struct guest g;
	struct iovec iov[4];

	VT_REQUIRE(guest_init2(&g, 0x0, 0x200000, 2 * MB) == 0); /* gap [1M, 2M) */
	VT_EQ(vhu_mem_gpa_to_iov(g.mem, MB - 10, 20, iov, 4), -EFAULT);
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, MB, 1) == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x1fffff, 1) == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(g.mem, 0x200000, 1) == loff(&g, MB));
	guest_fini(&g);
}

VT_CASE(read_write_across_regions)
{
	struct guest g;
	char buf[64], back[64];

	VT_REQUIRE(guest_init2(&g, 0x10000, 0x10000 + MB, 2 * MB) == 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (char)i;
	VT_EQ(vhu_mem_write(g.mem, 0x10000 + MB - 10, buf, sizeof(buf)), 0);
	VT_EQ(memcmp(g.base + MB - 10, buf, sizeof(buf)), 0);
	VT_EQ(vhu_mem_read(g.mem, 0x10000 + MB - 10, back, sizeof(back)), 0);
	VT_EQ(memcmp(back, buf, sizeof(buf)), 0);
	VT_EQ(vhu_mem_read(g.mem, 0x10000 + 2 * MB - 10, back, sizeof(back)), -EFAULT);
	VT_EQ(vhu_mem_write(g.mem, 0xff00, buf, sizeof(buf)), -EFAULT);
	VT_EQ(vhu_mem_read(g.mem, UINT64_MAX - 2, back, 8), -EFAULT);
	guest_fini(&g);
}

/* Try a table of two regions over one memfd; expect `want`. */
static void expect_table(struct vhu_mem_region_desc a, struct vhu_mem_region_desc b, int want)
{
	int fd = g_memfd(4 * MB), fds[2] = {fd, fd}, maps = GUEST_MAPS();
	struct vhu_mem_region_desc d[2] = {a, b};
	struct vhu_mem *m = NULL;

	VT_EQ(vhu_mem_new_table(&m, d, fds, 2), want);
	if (!want)
		vhu_mem_unref(m);
	VT_EQ(GUEST_MAPS(), maps); /* nothing left mapped */
	close(fd);
}

VT_CASE(table_rejects)
{
	uint64_t U = G_UVA_BASE;

	expect_table(R(0, MB, U, 0), R(2 * MB, MB, U + 2 * MB, 0), 0);
	expect_table(R(0, MB, U, 0), R(MB, MB, U + MB, MB), 0);              /* adjacent is fine */
	expect_table(R(0, MB, U, 0), R(MB - 1, MB, U + 4 * MB, 0), -EINVAL); /* gpa overlap */
	expect_table(R(MB, MB, U, 0), R(0, 2 * MB, U + 4 * MB, 0), -EINVAL); /* gpa contains */
	expect_table(R(0, MB, U, 0), R(0, MB, U + 4 * MB, 0), -EINVAL);      /* same gpa */
	expect_table(R(0, MB, U, 0), R(2 * MB, MB, U + MB - 1, 0), -EINVAL); /* uva overlap */
	expect_table(R(0, 0, U, 0), R(2 * MB, MB, U + 2 * MB, 0), -EINVAL);  /* zero size */
	expect_table(R(0, MB, U, 0), R(UINT64_MAX - 100, MB, U + 2 * MB, 0),
	             -EINVAL);                                                     /* gpa wrap */
	expect_table(R(0, MB, U, 0), R(2 * MB, MB, UINT64_MAX - 100, 0), -EINVAL); /* uva wrap */
	expect_table(R(0, MB, U, 0), R(2 * MB, MB, U + 2 * MB, UINT64_MAX - 10), -EINVAL);
	/* beyond the end of the 4 MiB file: would SIGBUS on access */
	expect_table(R(0, MB, U, 0), R(2 * MB, MB, U + 2 * MB, 3 * MB + 1), -EINVAL);
	expect_table(R(0, MB, U, 0), R(2 * MB, MB, U + 2 * MB, 3 * MB), 0);
	/* bad fds fail and leave nothing mapped */
	{
		struct vhu_mem_region_desc d[2] = {R(0, MB, U, 0), R(2 * MB, MB, U + 2 * MB, 0)};
		int fd = g_memfd(MB), fds[2] = {fd, -1}, maps = GUEST_MAPS();
		struct vhu_mem *m = NULL;
		VT_CHECK(vhu_mem_new_table(&m, d, fds, 2) < 0);
		fds[1] = 1000; /* not open */
		VT_CHECK(vhu_mem_new_table(&m, d, fds, 2) < 0);
		VT_EQ(GUEST_MAPS(), maps);
		close(fd);
	}
}

VT_CASE(region_ending_at_top_of_address_space)
{
	int fd = g_memfd(4096);
	struct vhu_mem_region_desc d = R(UINT64_MAX - 4095, 4096, 0x1000, 0);
	struct vhu_mem *m = NULL;
	uint8_t *h;

	VT_REQUIRE(vhu_mem_new_table(&m, &d, &fd, 1) == 0);
	h = vhu_mem_gpa_to_hva(m, UINT64_MAX, 1);
	VT_CHECK(h != NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(m, UINT64_MAX, 2) == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(m, UINT64_MAX - 4095, 4096) != NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(m, UINT64_MAX - 4095, 4097) == NULL);
	vhu_mem_unref(m);
	close(fd);
}

VT_CASE(too_many_slots)
{
	unsigned n = VHU_MAX_MEM_SLOTS;
	struct vhu_mem_region_desc *d = calloc(n + 1, sizeof(*d));
	int *fds = calloc(n + 1, sizeof(*fds));
	int fd = g_memfd(4096ull * (n + 1)), maps = GUEST_MAPS();
	struct vhu_mem *m = NULL, *m2 = NULL;
	struct vhu_mem_region_desc extra = R(0x10000000, 4096, 0x10000000, 0);

	VT_REQUIRE(d && fds && fd >= 0);
	for (unsigned i = 0; i <= n; i++) {
		/* reverse gpa order: the table must get sorted */
		d[i] = R(0x1000ull * (n - i), 4096, 0x100000ull + 0x1000ull * i, 4096ull * i);
		fds[i] = fd;
	}
	VT_EQ(vhu_mem_new_table(&m, d, fds, n + 1), -EINVAL);
	VT_EQ(GUEST_MAPS(), maps);
	VT_REQUIRE(vhu_mem_new_table(&m, d, fds, n) == 0);
	VT_EQ(vhu_mem_region_count(m), n);
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = 0x1000ull * (n - i) + 17;
		uint8_t *h = vhu_mem_gpa_to_hva(m, gpa, 1);
		uint64_t back;
		/* the memfd page i backs gpa page n - i */
		VT_CHECK(h != NULL);
		if (h) {
			VT_EQ(vhu_mem_hva_to_gpa(m, h, &back), 0);
			VT_EQ(back, gpa);
		}
	}
	VT_EQ(vhu_mem_add(&m2, m, &extra, fd), -ENOSPC);
	vhu_mem_unref(m);
	VT_EQ(GUEST_MAPS(), maps);
	close(fd);
	free(d);
	free(fds);
}

VT_CASE(add_remove_and_refcount)
{
	int fd = g_memfd(4 * MB), maps = GUEST_MAPS();
	struct vhu_mem *e = vhu_mem_new_empty(), *a = NULL, *b = NULL, *c = NULL, *x = NULL;
	struct vhu_mem_region_desc r0 = R(0, MB, G_UVA_BASE, 0),
	                           r1 = R(MB, MB, G_UVA_BASE + MB, MB);
	struct vhu_mem_region_desc bad = R(MB + 4096, 4096, G_UVA_BASE + 3 * MB, 0);
	struct vhu_mem_region_desc rm = R(0, MB, 0, 0);
	uint8_t *p;

	VT_REQUIRE(e && fd >= 0);
	VT_EQ(vhu_mem_region_count(e), 0);
	VT_CHECK(vhu_mem_gpa_to_hva(e, 0, 1) == NULL);
	VT_EQ(vhu_mem_add(&a, e, &r1, fd), 0);
	VT_EQ(vhu_mem_add(&b, a, &r0, fd), 0);
	VT_EQ(vhu_mem_region_count(b), 2);
	VT_EQ(vhu_mem_add(&x, b, &bad, fd), -EINVAL); /* gpa overlap */
	bad = R(3 * MB, 4096, G_UVA_BASE + 10, 0);
	VT_EQ(vhu_mem_add(&x, b, &bad, fd), -EINVAL); /* uva overlap */
	bad = R(3 * MB, 0, G_UVA_BASE + 8 * MB, 0);
	VT_EQ(vhu_mem_add(&x, b, &bad, fd), -EINVAL); /* zero size */
	bad = R(3 * MB, 4096, G_UVA_BASE + 8 * MB, 0);
	VT_CHECK(vhu_mem_add(&x, b, &bad, -1) < 0); /* bad fd */
	/* b sorted: region at 0 first */
	p = vhu_mem_gpa_to_hva(b, 10, 1);
	VT_REQUIRE(p != NULL);
	*p = 0x5a;
	VT_EQ(vhu_mem_remove(&x, b, &bad), -ENOENT);
	rm.memory_size = MB - 1;
	VT_EQ(vhu_mem_remove(&x, b, &rm), -ENOENT); /* size must match */
	rm.memory_size = MB;
	rm.userspace_addr = G_UVA_BASE + 4096;
	VT_EQ(vhu_mem_remove(&x, b, &rm), -ENOENT); /* non-zero uva must match */
	rm.userspace_addr = 0;
	VT_EQ(vhu_mem_remove(&c, b, &rm), 0);
	VT_EQ(vhu_mem_region_count(c), 1);
	VT_CHECK(vhu_mem_gpa_to_hva(c, 10, 1) == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(c, MB, 1) != NULL);
	/* the old snapshot still works after the new one dropped the region */
	vhu_mem_unref(vhu_mem_ref(b));
	VT_EQ(*(uint8_t *)vhu_mem_gpa_to_hva(b, 10, 1), 0x5a);
	vhu_mem_unref(e);
	vhu_mem_unref(a);
	vhu_mem_unref(b);
	/* region 0 is gone now, region 1 still mapped by c */
	VT_CHECK(GUEST_MAPS() > maps);
	vhu_mem_unref(c);
	VT_EQ(GUEST_MAPS(), maps);
	close(fd);
}

VT_CASE(hint_lookup_follows_regions)
{
	struct guest g;
	unsigned hint = 99;

	VT_REQUIRE(guest_init2(&g, 0x10000, 0x10000 + MB, 2 * MB) == 0);
	VT_CHECK(vhu_mem_gpa_hint(g.mem, 0x10000 + MB + 1, 4, &hint) == loff(&g, MB + 1));
	VT_EQ(hint, 1);
	VT_CHECK(vhu_mem_gpa_hint(g.mem, 0x10000 + MB - 2, 4, &hint) == NULL);
	VT_CHECK(vhu_mem_gpa_hint(g.mem, 0x10000 + 3, 4, &hint) == loff(&g, 3));
	VT_EQ(hint, 0);
	guest_fini(&g);
}

/* QEMU adds the same regions once per vhost device on one socket (net queue
 * pairs) and removes them as often: an exact duplicate is counted, not
 * mapped twice, and stays mapped until its last remove. */
VT_CASE(duplicate_add_is_counted)
{
	int fd = g_memfd(2 * MB), maps = GUEST_MAPS();
	struct vhu_mem *e = vhu_mem_new_empty(), *a = NULL, *x = NULL, *b = NULL;
	struct vhu_mem_region_desc r0 = R(0, MB, G_UVA_BASE, 0);
	struct vhu_mem_region_desc shifted = R(0, MB, G_UVA_BASE, 4096);
	struct vhu_mem_region_desc rm = R(0, MB, 0, 0);

	VT_REQUIRE(e && fd >= 0);
	VT_EQ(vhu_mem_add(&a, e, &r0, fd), 0);
	VT_EQ(GUEST_MAPS(), maps + 1);
	VT_EQ(vhu_mem_add(&x, a, &r0, fd), 1); /* duplicate: counted */
	VT_CHECK(x == NULL);
	VT_EQ(GUEST_MAPS(), maps + 1);                    /* not mapped again */
	VT_EQ(vhu_mem_add(&x, a, &shifted, fd), -EINVAL); /* same gpa, other offset */
	VT_EQ(vhu_mem_remove(&x, a, &rm), 1);             /* first remove: still there */
	VT_CHECK(x == NULL);
	VT_CHECK(vhu_mem_gpa_to_hva(a, 0, MB) != NULL);
	VT_EQ(vhu_mem_remove(&b, a, &rm), 0); /* last remove: new snapshot */
	VT_EQ(vhu_mem_region_count(b), 0);
	vhu_mem_unref(a);
	vhu_mem_unref(b);
	vhu_mem_unref(e);
	VT_EQ(GUEST_MAPS(), maps);
	close(fd);
}
