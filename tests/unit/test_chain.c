/* SPDX-License-Identifier: Apache-2.0 */
/* vhu_chain_read / vhu_chain_write: copying into and out of popped chains;
 * vhu_chain_prefetch_write. */
#include <stdint.h>

#include "guest.h"

VT_MAIN

/* A chain over one local "guest" buffer: readable parts of lengths rl[],
 * writable parts of lengths wl[], laid out back to back in g. */
struct fake {
	uint8_t g[256];
	struct iovec iov[8];
	struct vhu_chain c;
	size_t rlen, wlen;
};

static void fake_init(struct fake *f, const size_t *rl, unsigned nr, const size_t *wl, unsigned nw)
{
	size_t at = 0;

	memset(f, 0, sizeof(*f));
	for (unsigned i = 0; i < sizeof(f->g); i++)
		f->g[i] = (uint8_t)(i * 7 + 1);
	for (unsigned i = 0; i < nr + nw; i++) {
		size_t len = i < nr ? rl[i] : wl[i - nr];

		f->iov[i] = (struct iovec){f->g + at, len};
		at += len;
	}
	f->rlen = at;
	for (unsigned i = 0; i < nw; i++)
		f->rlen -= wl[i];
	f->wlen = at - f->rlen;
	f->c = (struct vhu_chain){.iov = f->iov, .iov_max = 8, .out_num = nr, .in_num = nw};
}

/* Every (off, len) against a flat reference: the parts are contiguous in g,
 * so the expected bytes are a plain slice of it. */
VT_CASE(read_every_offset_and_length)
{
	static const size_t rl[] = {3, 0, 5, 1, 7}, wl[] = {4, 6};
	struct fake f;
	uint8_t buf[40], ref[40];

	fake_init(&f, rl, 5, wl, 2);
	VT_REQUIRE(f.rlen == 16 && f.wlen == 10);
	for (size_t off = 0; off <= 20; off++) {
		for (size_t len = 0; len <= 20; len++) {
			size_t want = off >= f.rlen ? 0 : (len < f.rlen - off ? len : f.rlen - off);

			memset(buf, 0xee, sizeof(buf));
			memset(ref, 0xee, sizeof(ref));
			memcpy(ref, f.g + (off < f.rlen ? off : 0), want);
			VT_EQ(vhu_chain_read(&f.c, off, buf, len), want);
			VT_EQ(memcmp(buf, ref, sizeof(buf)), 0); /* nothing past `want` */
		}
	}
}

VT_CASE(write_every_offset_and_length)
{
	static const size_t rl[] = {9}, wl[] = {2, 0, 3, 8};
	uint8_t src[40];
	struct fake f, ref;

	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(0x80 | i);
	for (size_t off = 0; off <= 16; off++) {
		for (size_t len = 0; len <= 16; len++) {
			size_t want = off >= 13 ? 0 : (len < 13 - off ? len : 13 - off);

			fake_init(&f, rl, 1, wl, 4);
			fake_init(&ref, rl, 1, wl, 4);
			memcpy(ref.g + 9 + off, src, want);
			VT_EQ(vhu_chain_write(&f.c, off, src, len), want);
			/* the readable part and the rest of g are untouched */
			VT_EQ(memcmp(f.g, ref.g, sizeof(f.g)), 0);
		}
	}
}

VT_CASE(read_never_touches_writable_and_write_never_readable)
{
	static const size_t rl[] = {4}, wl[] = {4};
	uint8_t buf[16], ones[16];
	struct fake f;

	fake_init(&f, rl, 1, wl, 1);
	memset(ones, 0xff, sizeof(ones));
	VT_EQ(vhu_chain_read(&f.c, 0, buf, sizeof(buf)), 4);
	VT_EQ(memcmp(buf, f.g, 4), 0);
	VT_EQ(vhu_chain_write(&f.c, 0, ones, sizeof(ones)), 4);
	VT_EQ(memcmp(f.g + 4, ones, 4), 0);
	VT_EQ(memcmp(f.g, buf, 4), 0);
	VT_EQ(f.g[8], (uint8_t)(8 * 7 + 1));
	/* only readable / only writable chains */
	f.c.in_num = 0;
	VT_EQ(vhu_chain_write(&f.c, 0, ones, 1), 0);
	f.c.out_num = 0;
	f.c.in_num = 1;
	VT_EQ(vhu_chain_read(&f.c, 0, buf, 1), 0);
}

VT_CASE(offsets_and_lengths_that_wrap)
{
	static const size_t rl[] = {3, 5}, wl[] = {6};
	uint8_t buf[16];
	struct fake f;

	fake_init(&f, rl, 2, wl, 1);
	VT_EQ(vhu_chain_read(&f.c, SIZE_MAX, buf, 4), 0);
	VT_EQ(vhu_chain_read(&f.c, SIZE_MAX - 2, buf, 8), 0);
	VT_EQ(vhu_chain_read(&f.c, 2, buf, SIZE_MAX), 6); /* to the end of the part */
	VT_EQ(memcmp(buf, f.g + 2, 6), 0);
	VT_EQ(vhu_chain_write(&f.c, 5, buf, SIZE_MAX), 1);
	VT_EQ(vhu_chain_write(&f.c, SIZE_MAX, buf, SIZE_MAX), 0);
}

VT_CASE(inconsistent_chains_copy_nothing)
{
	static const size_t rl[] = {4, 4}, wl[] = {4};
	uint8_t buf[16] = {0};
	struct fake f;

	fake_init(&f, rl, 2, wl, 1);
	VT_EQ(vhu_chain_read(NULL, 0, buf, 4), 0);
	VT_EQ(vhu_chain_write(NULL, 0, buf, 4), 0);
	VT_EQ(vhu_chain_read(&f.c, 0, NULL, 4), 0);
	f.c.out_num = 9; /* past iov_max */
	VT_EQ(vhu_chain_read(&f.c, 0, buf, 4), 0);
	VT_EQ(vhu_chain_write(&f.c, 0, buf, 4), 0);
	f.c.out_num = 2;
	f.c.in_num = UINT32_MAX; /* out_num + in_num wraps */
	VT_EQ(vhu_chain_write(&f.c, 0, buf, 4), 0);
	VT_EQ(vhu_chain_read(&f.c, 0, buf, 4), 0);
	f.c.in_num = 1;
	f.c.iov = NULL;
	VT_EQ(vhu_chain_read(&f.c, 0, buf, 4), 0);
}

/* A prefetch is a hint: whatever the offsets and lengths, and whatever the
 * buffers point at (here: memory that faults on any access), nothing is
 * read or written and nothing faults. */
VT_CASE(prefetch_write_touches_nothing)
{
	static const size_t rl[] = {3, 5}, wl[] = {4, 6, 9};
	struct fake f;
	uint8_t snap[sizeof(f.g)];
	static const size_t offs[] = {0, 1, 3, 4, 18, 19, 1000, SIZE_MAX};
	static const size_t lens[] = {0, 1, 5, 19, 64, 4096, SIZE_MAX};

	fake_init(&f, rl, 2, wl, 3);
	memcpy(snap, f.g, sizeof(snap));
	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		for (unsigned j = 0; j < sizeof(lens) / sizeof(lens[0]); j++)
			vhu_chain_prefetch_write(&f.c, offs[i], lens[j]);
	VT_EQ(memcmp(snap, f.g, sizeof(snap)), 0);

	vhu_chain_prefetch_write(NULL, 0, 64);
	f.c.in_num = 9; /* past iov_max: not walked */
	vhu_chain_prefetch_write(&f.c, 0, SIZE_MAX);

	uint8_t *none = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	VT_REQUIRE(none != MAP_FAILED);
	f.iov[2] = (struct iovec){none + 1, 2 * 4096};
	f.iov[3] = (struct iovec){none + 4000, 100};
	f.c.in_num = 2;
	vhu_chain_prefetch_write(&f.c, 0, SIZE_MAX);
	vhu_chain_prefetch_write(&f.c, 8000, 300);
	munmap(none, 3 * 4096);
}

/* The guest chose buffers that overlap each other and the destination
 * (copying from one chain into another): memmove semantics, which ASan's
 * memcpy-param-overlap check would flag otherwise. */
VT_CASE(overlapping_buffers_behave_as_memmove)
{
	uint8_t g[64], ref[64];
	struct iovec iov[2] = {{g, 16}, {g + 8, 16}};
	struct vhu_chain c = {.iov = iov, .iov_max = 2, .out_num = 1, .in_num = 1};

	for (unsigned i = 0; i < sizeof(g); i++)
		g[i] = ref[i] = (uint8_t)i;
	/* read iov[0] into a destination overlapping it */
	VT_EQ(vhu_chain_read(&c, 0, g + 4, 16), 16);
	memmove(ref + 4, ref, 16);
	VT_EQ(memcmp(g, ref, sizeof(g)), 0);
	/* write into iov[1] from a source overlapping it */
	VT_EQ(vhu_chain_write(&c, 0, g + 12, 16), 16);
	memmove(ref + 8, ref + 12, 16);
	VT_EQ(memcmp(g, ref, sizeof(g)), 0);
}

/* Through a real split ring: a request header split over a buffer that
 * spans two memory regions and a zero-length descriptor, a reply written
 * across two writable buffers, pushed with the bytes written and
 * dirty-logged as push promises. */
#define MEM_GPA 0x100000ull
#define TOP     0x200000ull /* regions [MEM_GPA, +1M) and [TOP, +1M) */
VT_CASE(real_ring_request_and_reply)
{
	struct guest g;
	struct drv d;
	struct vhu_vring vr;
	struct iovec iov[8];
	struct vhu_chain c = {.iov = iov, .iov_max = 8};
	struct dlog log;
	uint8_t hdr[24], reply[40];
	uint32_t id, len;

	VT_REQUIRE(guest_init2(&g, MEM_GPA, TOP, 2 * 1024 * 1024) == 0);
	drv_init(&d, &g, MEM_GPA, 8);
	VT_REQUIRE(vhu_vring_init(&vr, 0, VHU_VRING_PLAIN) == 0);
	drv_setup_vring(&d, &vr);
	VT_REQUIRE(vhu_vring_start(&vr, g.mem, VHU_BIT(VHU_F_VERSION_1)) == 0);
	VT_REQUIRE(dlog_attach(&log, &vr) == 0);
	for (unsigned i = 0; i < sizeof(hdr); i++)
		((uint8_t *)gptr(&g, TOP - 10))[i] = (uint8_t)(0xa0 + i);
	drv_desc(&d, 0, TOP - 10, 0, TD_NEXT, 1);  /* empty */
	drv_desc(&d, 1, TOP - 10, 24, TD_NEXT, 2); /* 10 + 14 over the region edge */
	drv_desc(&d, 2, MEM_GPA + 0x40000, 30, TD_NEXT | TD_WRITE, 3);
	drv_desc(&d, 3, MEM_GPA + 0x50000, 30, TD_WRITE, 0);
	drv_publish(&d, 0);
	VT_REQUIRE(vhu_vring_pop(&vr, &c) == 1);
	VT_EQ(c.out_num, 2); /* the two halves (the empty buffer maps to nothing) */
	VT_EQ(vhu_chain_read(&c, 0, hdr, sizeof(hdr)), 24);
	for (unsigned i = 0; i < sizeof(hdr); i++)
		VT_EQ(hdr[i], 0xa0 + i);
	for (unsigned i = 0; i < sizeof(reply); i++)
		reply[i] = (uint8_t)(0x10 + i);
	VT_EQ(vhu_chain_write(&c, 0, reply, sizeof(reply)), 40);
	VT_EQ(vhu_vring_push(&vr, &c, 40), 0);
	VT_EQ(memcmp(gptr(&g, MEM_GPA + 0x40000), reply, 30), 0);
	VT_EQ(memcmp(gptr(&g, MEM_GPA + 0x50000), reply + 30, 10), 0);
	drv_used_elem(&d, 0, &id, &len);
	VT_EQ(id, 0);
	VT_EQ(len, 40);
	VT_EQ(dlog_bit(&log, MEM_GPA + 0x40000), 1);
	VT_EQ(dlog_bit(&log, MEM_GPA + 0x50000), 1);
	dlog_detach(&log, &vr);
	vhu_vring_destroy(&vr);
	guest_fini(&g);
}
