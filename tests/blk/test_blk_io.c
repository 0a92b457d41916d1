/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk data path, driven by libvhu-frontend against the real binary:
 * patterns across the disk on several queues with many requests in flight,
 * FLUSH, GET_ID, DISCARD, WRITE_ZEROES, config space, and every kind of
 * malformed request (which must get the right status and change nothing).
 */
#include <pthread.h>
#include <stddef.h>

#include "blk_env.h"

#define IMG     (8 * MIB)
#define SECTORS (IMG / 512)

VT_MAIN

static const uint8_t *zeroes(void)
{
	static uint8_t z[256 * 1024];
	return z;
}

/* Image bytes [off, off+len) equal pattern(seed) (or zero if seed < 0). */
static bool file_is(const char *img, uint64_t off, uint64_t len, int seed)
{
	static uint8_t buf[1 << 16];
	for (uint64_t p = off; p < off + len; p += sizeof(buf)) {
		size_t n = off + len - p < sizeof(buf) ? off + len - p : sizeof(buf);
		if (blkt_file_read(img, p, buf, n) < 0)
			return false;
		for (size_t i = 0; i < n; i++) {
			uint8_t want = seed < 0 ? 0 : blkt_pattern(p + i, (unsigned)seed);
			if (buf[i] != want) {
				fprintf(stderr, "# image byte %llu is %#x, want %#x\n",
				        (unsigned long long)(p + i), buf[i], want);
				return false;
			}
		}
	}
	return true;
}

static void fill(uint8_t *buf, uint64_t off, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = blkt_pattern(off + i, seed);
}

VT_CASE(config_space)
{
	struct env e;
	const char *extra[] = {"--serial", "cfgtest", "--num-queues", "2", NULL};
	VT_REQUIRE(env_start(&e, IMG, false, extra, 2, 4, 4096));
	struct virtio_blk_config c;
	VT_EQ(blkt_config(&e.t, &c), 0);
	VT_EQ(c.capacity, SECTORS);
	VT_EQ(c.blk_size, 512);
	VT_EQ(c.seg_max, 254);
	VT_CHECK(c.size_max >= 4096);
	VT_EQ(c.num_queues, 2);
	VT_EQ(c.wce, 1);
	VT_CHECK(c.max_discard_sectors > 0);
	VT_CHECK(c.max_discard_seg >= 1);
	VT_CHECK(c.max_write_zeroes_sectors > 0);
	VT_CHECK(c.max_write_zeroes_seg >= 1);
	VT_EQ(c.write_zeroes_may_unmap, 1);
	uint64_t f = vhuf_features(e.t.f);
	VT_CHECK(f & (1ull << VIRTIO_BLK_F_FLUSH));
	VT_CHECK(f & (1ull << VIRTIO_BLK_F_DISCARD));
	VT_CHECK(f & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	VT_CHECK(f & (1ull << VIRTIO_BLK_F_MQ));
	VT_CHECK(f & (1ull << VIRTIO_BLK_F_CONFIG_WCE));
	VT_CHECK(!(f & (1ull << VIRTIO_BLK_F_RO)));
	uint64_t nq = 0;
	VT_EQ(vhuf_get_u64(e.t.f, VHU_REQ_GET_QUEUE_NUM, &nq), 0);
	VT_EQ(nq, 2);
	/* Partial read at an offset: just the capacity's high word. */
	uint32_t hi = 1;
	VT_EQ(vhuf_get_config(e.t.f, 4, &hi, 4), 0);
	VT_EQ(hi, 0);
	env_stop(&e);
}

/* Writethrough toggle through the config space (CONFIG_WCE). */
VT_CASE(config_wce_toggle)
{
	struct env e;
	VT_REQUIRE(env_start(&e, IMG, true, NULL, 1, 4, 4096));
	struct vhu_config_msg m = {.offset = offsetof(struct virtio_blk_config, wce), .size = 1};
	m.region[0] = 0;
	VT_EQ(vhuf_request(e.t.f, VHU_REQ_SET_CONFIG, &m, VHU_CONFIG_HDR_SIZE + 1, NULL, 0, true,
	                   NULL),
	      0);
	struct virtio_blk_config c;
	VT_EQ(blkt_config(&e.t, &c), 0);
	VT_EQ(c.wce, 0);
	/* Writes still work (now O_DSYNC). */
	uint8_t buf[4096];
	fill(buf, 4096, sizeof(buf), 5);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 8, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	VT_CHECK(file_is(e.d.img, 4096, 4096, 5));
	/* Other fields are read-only: capacity write refused. */
	struct vhu_config_msg bad = {.offset = 0, .size = 8};
	VT_CHECK(vhuf_request(e.t.f, VHU_REQ_SET_CONFIG, &bad, VHU_CONFIG_HDR_SIZE + 8, NULL, 0,
	                      true, NULL) != 0);
	VT_EQ(blkt_config(&e.t, &c), 0);
	VT_EQ(c.capacity, SECTORS);
	m.region[0] = 1;
	VT_EQ(vhuf_request(e.t.f, VHU_REQ_SET_CONFIG, &m, VHU_CONFIG_HDR_SIZE + 1, NULL, 0, true,
	                   NULL),
	      0);
	VT_EQ(blkt_config(&e.t, &c), 0);
	VT_EQ(c.wce, 1);
	env_stop(&e);
}

/* ---- patterns across the disk, several queues, many in flight --------- */

struct qjob {
	struct blkt *t;
	unsigned q;
	uint64_t first, end; /* sectors */
	unsigned seed;
	bool write;
	int errors;
	unsigned done, max_inflight;
	uint64_t sector[64];
	uint32_t len[64];
};

static void *qjob_run(void *arg)
{
	struct qjob *j = arg;
	static const uint32_t sizes[] = {8, 1, 128, 3, 16, 64, 7, 32, 2, 120};
	uint64_t cur = j->first;
	unsigned k = j->q, inflight = 0;
	while (cur < j->end || inflight) {
		for (unsigned s = 0; s < j->t->nslots && cur < j->end; s++) {
			struct blkt_slot *sl = &j->t->slots[j->q][s];
			if (sl->busy)
				continue;
			uint64_t n = sizes[k++ % 10];
			if (n > j->end - cur)
				n = j->end - cur;
			j->sector[s] = cur;
			j->len[s] = (uint32_t)(n * 512);
			if (j->write)
				fill(sl->data, cur * 512, j->len[s], j->seed);
			else
				memset(sl->data, 0xa5, j->len[s]);
			int rc = blkt_submit(j->t, j->q, s,
			                     j->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, cur,
			                     j->len[s]);
			if (rc < 0) {
				j->errors++;
				return NULL;
			}
			cur += n;
			inflight++;
		}
		if (inflight > j->max_inflight)
			j->max_inflight = inflight;
		int s = blkt_wait_one(j->t, j->q);
		if (s < 0) {
			j->errors++;
			return NULL;
		}
		inflight--;
		j->done++;
		struct blkt_slot *sl = &j->t->slots[j->q][s];
		if (*sl->st != VIRTIO_BLK_S_OK)
			j->errors++;
		uint32_t want_len = j->write ? 1 : j->len[s] + 1;
		if (sl->used_len != want_len)
			j->errors++;
		if (!j->write) {
			for (uint32_t i = 0; i < j->len[s]; i++)
				if (sl->data[i] != blkt_pattern(j->sector[s] * 512 + i, j->seed)) {
					j->errors++;
					break;
				}
		}
	}
	return NULL;
}

static void run_jobs(struct blkt *t, unsigned nq, bool write, unsigned seed, int *errors,
                     unsigned *maxinf)
{
	struct qjob jobs[BLKT_MAXQ];
	pthread_t th[BLKT_MAXQ];
	for (unsigned q = 0; q < nq; q++) {
		jobs[q] = (struct qjob){.t = t, .q = q, .seed = seed, .write = write};
		jobs[q].first = SECTORS * q / nq;
		jobs[q].end = SECTORS * (q + 1) / nq;
		pthread_create(&th[q], NULL, qjob_run, &jobs[q]);
	}
	*errors = 0;
	*maxinf = 0;
	for (unsigned q = 0; q < nq; q++) {
		pthread_join(th[q], NULL);
		*errors += jobs[q].errors;
		if (jobs[q].max_inflight > *maxinf)
			*maxinf = jobs[q].max_inflight;
	}
}

static void pattern_case(unsigned nq, const char *const *extra)
{
	struct env e;
	VT_REQUIRE(env_start(&e, IMG, true, extra, nq, 32, 64 * 1024));
	int errors;
	unsigned maxinf;
	run_jobs(&e.t, nq, true, 1, &errors, &maxinf);
	VT_EQ(errors, 0);
	VT_CHECK(maxinf > 1);
	run_jobs(&e.t, nq, false, 1, &errors, &maxinf);
	VT_EQ(errors, 0);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	VT_CHECK(file_is(e.d.img, 0, IMG, 1));
	env_stop(&e);
}

VT_CASE(pattern_1queue)
{
	pattern_case(1, NULL);
}

VT_CASE(pattern_4queues_2threads)
{
	const char *extra[] = {"--num-queues", "4", "--threads", "2", NULL};
	pattern_case(4, extra);
}

VT_CASE(pattern_4queues_buffered_polling)
{
	const char *extra[] = {"--num-queues", "4", "--no-direct", "--poll-us", "50", NULL};
	pattern_case(4, extra);
}

/* Buffers at odd addresses and split over several descriptors (O_DIRECT
 * cannot take them: the engine must fall back), also through an indirect
 * table. */
VT_CASE(unaligned_split_buffers)
{
	struct env e;
	VT_REQUIRE(env_start(&e, IMG, true, NULL, 1, 2, 16384));
	struct blkt_slot *sl = &e.t.slots[0][1];
	for (int indirect = 0; indirect < 2; indirect++) {
		unsigned seed = 7 + indirect;
		uint64_t sector = 1001 + indirect * 16;
		sl->hdr->type = VIRTIO_BLK_T_OUT;
		sl->hdr->sector = sector;
		fill(sl->data + 3, sector * 512, 1536, seed);
		struct vhuf_buf w[] = {
		    {sl->hdr_gpa, 16, false},
		    {sl->data_gpa + 3, 100, false},
		    {sl->data_gpa + 103, 924, false},
		    {sl->data_gpa + 1027, 512, false},
		    {sl->st_gpa, 1, true},
		};
		*sl->st = 0xee;
		VT_EQ(blkt_chain(&e.t, 0, w, 5, indirect), 1);
		VT_EQ(*sl->st, VIRTIO_BLK_S_OK);
		VT_CHECK(file_is(e.d.img, sector * 512, 1536, (int)seed));
		VT_CHECK(file_is(e.d.img, sector * 512 + 1536, 512, 0));

		/* Read back into odd buffers; status in the same descriptor as data. */
		memset(sl->data, 0, 4096);
		sl->hdr->type = VIRTIO_BLK_T_IN;
		struct vhuf_buf r[] = {
		    {sl->hdr_gpa, 16, false},
		    {sl->data_gpa + 7, 1000, true},
		    {sl->data_gpa + 1007, 537, true}, /* 536 data + status */
		};
		VT_EQ(blkt_chain(&e.t, 0, r, 3, indirect), 1537);
		VT_EQ(sl->data[7 + 1536], VIRTIO_BLK_S_OK);
		bool same = true;
		for (int i = 0; i < 1536; i++)
			same &= sl->data[7 + i] == blkt_pattern(sector * 512 + i, seed);
		VT_CHECK(same);
	}
	env_stop(&e);
}

/* Header split across two descriptors is legal. */
VT_CASE(header_split)
{
	struct env e;
	VT_REQUIRE(env_start(&e, IMG, true, NULL, 1, 2, 4096));
	struct blkt_slot *sl = &e.t.slots[0][1];
	sl->hdr->type = VIRTIO_BLK_T_OUT;
	sl->hdr->sector = 40;
	fill(sl->data, 40 * 512, 512, 3);
	struct vhuf_buf b[] = {{sl->hdr_gpa, 5, false},
	                       {sl->hdr_gpa + 5, 11, false},
	                       {sl->data_gpa, 512, false},
	                       {sl->st_gpa, 1, true}};
	VT_EQ(blkt_chain(&e.t, 0, b, 4, false), 1);
	VT_EQ(*sl->st, VIRTIO_BLK_S_OK);
	VT_CHECK(file_is(e.d.img, 40 * 512, 512, 3));
	env_stop(&e);
}

VT_CASE(flush_and_get_id)
{
	struct env e;
	const char *extra[] = {"--serial", "SERIAL-0123456789ABC", NULL}; /* exactly 20 */
	VT_REQUIRE(env_start(&e, IMG, true, extra, 1, 2, 4096));
	uint8_t buf[4096];
	fill(buf, 0, sizeof(buf), 9);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 0, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	VT_EQ(e.t.slots[0][0].used_len, 1);
	VT_CHECK(file_is(e.d.img, 0, 4096, 9));

	char id[21] = {0};
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_GET_ID, 0, id, 20), VIRTIO_BLK_S_OK);
	VT_EQ(e.t.slots[0][0].used_len, 21);
	VT_CHECK(memcmp(id, "SERIAL-0123456789ABC", 20) == 0);
	/* A shorter buffer gets a truncated id. */
	memset(id, 0, sizeof(id));
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_GET_ID, 0, id, 6), VIRTIO_BLK_S_OK);
	VT_CHECK(memcmp(id, "SERIAL", 6) == 0);
	VT_EQ(e.t.slots[0][0].used_len, 7);
	env_stop(&e);
}

static int dz(struct blkt *t, uint32_t type, const struct virtio_blk_discard_write_zeroes *segs,
              unsigned n)
{
	struct blkt_slot *sl = &t->slots[0][0];
	memcpy(sl->data, segs, n * sizeof(*segs));
	int rc = blkt_submit(t, 0, 0, type, 0, n * sizeof(*segs));
	if (rc < 0 || (rc = blkt_wait_one(t, 0)) < 0)
		return rc;
	return *sl->st;
}

VT_CASE(discard_and_write_zeroes)
{
	struct env e;
	VT_REQUIRE(env_start(&e, IMG, true, NULL, 1, 2, 4096));
	struct virtio_blk_discard_write_zeroes d[] = {
	    {.sector = 8, .num_sectors = 8},
	    {.sector = 64, .num_sectors = 16},
	};
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_DISCARD, d, 2), VIRTIO_BLK_S_OK);
	VT_CHECK(file_is(e.d.img, 0, 8 * 512, 0));
	VT_CHECK(file_is(e.d.img, 8 * 512, 8 * 512, -1));
	VT_CHECK(file_is(e.d.img, 16 * 512, 48 * 512, 0));
	VT_CHECK(file_is(e.d.img, 64 * 512, 16 * 512, -1));
	VT_CHECK(file_is(e.d.img, 80 * 512, 512, 0));

	struct virtio_blk_discard_write_zeroes z[] = {
	    {.sector = 1000, .num_sectors = 3},
	    {.sector = 2001, .num_sectors = 40, .flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP},
	};
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_WRITE_ZEROES, z, 2), VIRTIO_BLK_S_OK);
	VT_CHECK(file_is(e.d.img, 999 * 512, 512, 0));
	VT_CHECK(file_is(e.d.img, 1000 * 512, 3 * 512, -1));
	VT_CHECK(file_is(e.d.img, 1003 * 512, 512, 0));
	VT_CHECK(file_is(e.d.img, 2000 * 512, 512, 0));
	VT_CHECK(file_is(e.d.img, 2001 * 512, 40 * 512, -1));
	VT_CHECK(file_is(e.d.img, 2041 * 512, 512, 0));
	/* And the guest reads zeroes there. */
	uint8_t buf[1536];
	memset(buf, 0xff, sizeof(buf));
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, 1000, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	VT_CHECK(memcmp(buf, zeroes(), sizeof(buf)) == 0);
	/* Up to the last sector is fine. */
	struct virtio_blk_discard_write_zeroes last = {.sector = SECTORS - 1, .num_sectors = 1};
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_WRITE_ZEROES, &last, 1), VIRTIO_BLK_S_OK);
	VT_CHECK(file_is(e.d.img, IMG - 512, 512, -1));
	env_stop(&e);
}

/* Bad discard / write-zeroes segments: status, and nothing changes. */
VT_CASE(discard_write_zeroes_invalid)
{
	struct env e;
	VT_REQUIRE(env_start(&e, IMG, true, NULL, 1, 2, 4096));
	struct virtio_blk_config c;
	VT_EQ(blkt_config(&e.t, &c), 0);
	struct virtio_blk_discard_write_zeroes s = {.sector = 8, .num_sectors = 8, .flags = 2};
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_UNSUPP); /* unknown flag */
	s.flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_UNSUPP); /* unmap on discard */
	s.flags = 0;
	s.sector = SECTORS - 4;
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_IOERR); /* past the end */
	s.sector = UINT64_MAX - 2;
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_IOERR); /* wraps */
	s.sector = 0;
	s.num_sectors = c.max_discard_sectors + 1;
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_IOERR); /* too long */
	/* More segments than max_discard_seg. */
	struct virtio_blk_discard_write_zeroes many[64] = {{0}};
	VT_REQUIRE(c.max_discard_seg < 64);
	for (unsigned i = 0; i < 64; i++)
		many[i] =
		    (struct virtio_blk_discard_write_zeroes){.sector = i * 8, .num_sectors = 8};
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_DISCARD, many, c.max_discard_seg + 1), VIRTIO_BLK_S_UNSUPP);
	/* One bad segment among good ones: nothing done at all. */
	many[3].sector = SECTORS;
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_WRITE_ZEROES, many, 4), VIRTIO_BLK_S_IOERR);
	/* A segment cut short (not a multiple of 16 bytes). */
	struct blkt_slot *sl = &e.t.slots[0][0];
	memcpy(sl->data, many, 16);
	VT_REQUIRE(blkt_submit(&e.t, 0, 0, VIRTIO_BLK_T_DISCARD, 0, 12) >= 0);
	VT_EQ(blkt_wait_one(&e.t, 0), 0);
	VT_EQ(*sl->st, VIRTIO_BLK_S_IOERR);
	/* No segment at all. */
	VT_REQUIRE(blkt_submit(&e.t, 0, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, 0) >= 0);
	VT_EQ(blkt_wait_one(&e.t, 0), 0);
	VT_EQ(*sl->st, VIRTIO_BLK_S_IOERR);
	VT_CHECK(file_is(e.d.img, 0, IMG, 0));
	env_stop(&e);
}

VT_CASE(out_of_range)
{
	struct env e;
	VT_REQUIRE(env_start(&e, IMG, true, NULL, 1, 2, 8192));
	uint8_t buf[8192];
	fill(buf, 0, sizeof(buf), 4);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, SECTORS, buf, 512), VIRTIO_BLK_S_IOERR);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, SECTORS - 1, buf, 1024), VIRTIO_BLK_S_IOERR);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, UINT64_MAX, buf, 512), VIRTIO_BLK_S_IOERR);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 1, buf, 512),
	      VIRTIO_BLK_S_IOERR);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, SECTORS, buf, 512), VIRTIO_BLK_S_IOERR);
	VT_EQ(e.t.slots[0][0].used_len, 1);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, SECTORS - 15, buf, 8192), VIRTIO_BLK_S_IOERR);
	/* The last sector itself is fine. */
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, SECTORS - 1, buf, 512), VIRTIO_BLK_S_OK);
	VT_CHECK(file_is(e.d.img, 0, IMG, 0));
	env_stop(&e);
}

VT_CASE(malformed_requests)
{
	struct env e;
	VT_REQUIRE(env_start(&e, IMG, true, NULL, 1, 2, 4096));
	struct blkt_slot *sl = &e.t.slots[0][1];
	fill(sl->data, 0, 4096, 6);

	/* Header shorter than 16 bytes. */
	sl->hdr->type = VIRTIO_BLK_T_OUT;
	sl->hdr->sector = 0;
	*sl->st = 0xee;
	struct vhuf_buf shorth[] = {{sl->hdr_gpa, 8, false}, {sl->st_gpa, 1, true}};
	VT_EQ(blkt_chain(&e.t, 0, shorth, 2, false), 1);
	VT_EQ(*sl->st, VIRTIO_BLK_S_IOERR);

	/* Unknown request type (and a barrier-flagged OUT). */
	uint32_t types[] = {3, 9, 12, 14, 0x80000001u, 0xffffffffu};
	for (unsigned i = 0; i < 6; i++)
		VT_EQ(blkt_io(&e.t, 0, types[i], 0, sl->data, 512), VIRTIO_BLK_S_UNSUPP);

	/* Data length not a multiple of 512. */
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 0, sl->data, 700), VIRTIO_BLK_S_IOERR);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, 0, sl->data, 100), VIRTIO_BLK_S_IOERR);

	/* OUT whose data is device-writable: refused, nothing written. */
	sl->hdr->type = VIRTIO_BLK_T_OUT;
	struct vhuf_buf wdata[] = {
	    {sl->hdr_gpa, 16, false}, {sl->data_gpa, 512, true}, {sl->st_gpa, 1, true}};
	VT_EQ(blkt_chain(&e.t, 0, wdata, 3, false), 1);
	VT_EQ(*sl->st, VIRTIO_BLK_S_IOERR);

	/* IN into device-readable buffers: refused, buffer untouched. */
	sl->hdr->type = VIRTIO_BLK_T_IN;
	struct vhuf_buf rdata[] = {
	    {sl->hdr_gpa, 16, false}, {sl->data_gpa, 512, false}, {sl->st_gpa, 1, true}};
	VT_EQ(blkt_chain(&e.t, 0, rdata, 3, false), 1);
	VT_EQ(*sl->st, VIRTIO_BLK_S_IOERR);
	bool same = true;
	for (int i = 0; i < 512; i++)
		same &= sl->data[i] == blkt_pattern(i, 6);
	VT_CHECK(same);

	/* No writable byte at all: nowhere to put a status; used len 0, nothing done. */
	sl->hdr->type = VIRTIO_BLK_T_OUT;
	struct vhuf_buf nost[] = {{sl->hdr_gpa, 16, false}, {sl->data_gpa, 512, false}};
	VT_EQ(blkt_chain(&e.t, 0, nost, 2, false), 0);
	/* Status byte carved from the data: a 512-byte writable buffer for an
	 * OUT means data (511 bytes) where none belongs. */
	struct vhuf_buf st_in_data[] = {{sl->hdr_gpa, 16, false}, {sl->data_gpa, 512, true}};
	VT_EQ(blkt_chain(&e.t, 0, st_in_data, 2, false), 1);
	VT_EQ(sl->data[511], VIRTIO_BLK_S_IOERR);
	/* FLUSH with a header only, no status. */
	sl->hdr->type = VIRTIO_BLK_T_FLUSH;
	struct vhuf_buf fl[] = {{sl->hdr_gpa, 16, false}};
	VT_EQ(blkt_chain(&e.t, 0, fl, 1, false), 0);

	VT_CHECK(file_is(e.d.img, 0, IMG, 0));
	/* The ring still works afterwards. */
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, 0, NULL, 512), VIRTIO_BLK_S_OK);
	env_stop(&e);
}

VT_CASE(read_only_export)
{
	struct env e;
	const char *extra[] = {"--read-only", NULL};
	VT_REQUIRE(env_start(&e, IMG, true, extra, 1, 2, 4096));
	VT_CHECK(vhuf_features(e.t.f) & (1ull << VIRTIO_BLK_F_RO));
	VT_CHECK(!(vhuf_features(e.t.f) & (1ull << VIRTIO_BLK_F_DISCARD)));
	uint8_t buf[4096];
	fill(buf, 0, sizeof(buf), 2);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 0, buf, sizeof(buf)), VIRTIO_BLK_S_IOERR);
	struct virtio_blk_discard_write_zeroes s = {.sector = 0, .num_sectors = 8};
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_DISCARD, &s, 1), VIRTIO_BLK_S_IOERR);
	VT_EQ(dz(&e.t, VIRTIO_BLK_T_WRITE_ZEROES, &s, 1), VIRTIO_BLK_S_IOERR);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	bool same = true;
	for (int i = 0; i < 4096; i++)
		same &= buf[i] == blkt_pattern(i, 0);
	VT_CHECK(same);
	VT_CHECK(file_is(e.d.img, 0, IMG, 0));
	env_stop(&e);
}

VT_CASE(null_mode)
{
	struct env e;
	const char *extra[] = {"--null", "--size", "16M", NULL};
	VT_REQUIRE(env_start(&e, 0, false, extra, 1, 8, 65536));
	struct virtio_blk_config c;
	VT_EQ(blkt_config(&e.t, &c), 0);
	VT_EQ(c.capacity, 16 * MIB / 512);
	uint8_t buf[65536];
	memset(buf, 0x5a, sizeof(buf));
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, 0, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	memset(e.t.slots[0][0].data, 0x77, sizeof(buf));
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	VT_CHECK(memcmp(buf, zeroes(), sizeof(buf)) == 0);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, 16 * MIB / 512, buf, 512), VIRTIO_BLK_S_IOERR);
	env_stop(&e);
}

/* Several front ends one after another on one daemon. */
VT_CASE(serves_frontend_after_frontend)
{
	struct env e;
	VT_REQUIRE(env_spawn(&e, IMG, true, NULL));
	for (unsigned seed = 1; seed <= 3; seed++) {
		VT_REQUIRE(blkt_open(&e.t, e.d.sock, 1, 64, 2, 4096, PF_DEFAULT) == 0);
		uint8_t buf[4096];
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_IN, seed * 8, buf, 4096), VIRTIO_BLK_S_OK);
		bool same = true; /* never written before: original content */
		for (int i = 0; i < 4096; i++)
			same &= buf[i] == blkt_pattern(seed * 4096 + i, 0);
		VT_CHECK(same);
		fill(buf, seed * 4096, 4096, seed);
		VT_EQ(blkt_io(&e.t, 0, VIRTIO_BLK_T_OUT, seed * 8, buf, 4096), VIRTIO_BLK_S_OK);
		blkt_close(&e.t);
		VT_CHECK(file_is(e.d.img, seed * 4096, 4096, (int)seed));
	}
	env_stop(&e);
}

/* A block device as the image (a loop device over a file): capacity from
 * BLKGETSIZE64, I/O, write zeroes and discard through fallocate on the
 * device.  Needs root and loop devices; skipped (with a note) otherwise. */
VT_CASE(block_device_image)
{
	struct blkt_dir d;
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	char cmd[256], loopdev[64] = "";
	VT_REQUIRE(blkt_image_create(d.img, 4 * MIB, true) == 0);
	snprintf(cmd, sizeof(cmd), "losetup -f --show '%s' 2>/dev/null", d.img);
	FILE *p = popen(cmd, "r");
	if (p) {
		if (!fgets(loopdev, sizeof(loopdev), p))
			loopdev[0] = 0;
		pclose(p);
	}
	loopdev[strcspn(loopdev, "\n")] = 0;
	if (!loopdev[0]) {
		fprintf(stderr, "# no loop device available: case not run\n");
		blkt_dir_remove(&d);
		return;
	}
	const char *args[] = {"--socket-path", d.sock, loopdev, NULL};
	pid_t pid = blkt_spawn(&d, args, -1);
	struct blkt t = {0};
	if (pid > 0 && blkt_wait_socket(d.sock, BLKT_TIMEOUT_MS) &&
	    blkt_open(&t, d.sock, 1, 64, 2, 65536, PF_DEFAULT) == 0) {
		struct virtio_blk_config c;
		VT_EQ(blkt_config(&t, &c), 0);
		VT_EQ(c.capacity, 4 * MIB / 512);
		uint8_t buf[65536];
		fill(buf, 65536, sizeof(buf), 11);
		VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_OUT, 128, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
		VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
		memset(buf, 0, sizeof(buf));
		VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_IN, 128, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
		bool same = true;
		for (unsigned i = 0; i < sizeof(buf); i++)
			same &= buf[i] == blkt_pattern(65536 + i, 11);
		VT_CHECK(same);
		struct virtio_blk_discard_write_zeroes z = {.sector = 136, .num_sectors = 8};
		VT_EQ(dz(&t, VIRTIO_BLK_T_WRITE_ZEROES, &z, 1), VIRTIO_BLK_S_OK);
		z.sector = 2048;
		VT_EQ(dz(&t, VIRTIO_BLK_T_DISCARD, &z, 1), VIRTIO_BLK_S_OK);
		VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_IN, 8192, buf, 512), VIRTIO_BLK_S_IOERR);
		blkt_close(&t);
		/* Through the loop device onto the backing file. */
		snprintf(cmd, sizeof(cmd), "blockdev --flushbufs %s", loopdev);
		VT_EQ(system(cmd), 0);
		VT_CHECK(file_is(d.img, 65536, 4096, 11));
		VT_CHECK(file_is(d.img, 136 * 512, 4096, -1));
		VT_CHECK(file_is(d.img, 144 * 512, 512, 11));
	} else {
		VT_CHECK(!"vhu-blk did not serve the loop device");
		fprintf(stderr, "# %s", blkt_slurp(d.err));
	}
	if (pid > 0) {
		kill(pid, SIGTERM);
		VT_EQ(blkt_wait_exit(pid, BLKT_TIMEOUT_MS), 0);
	}
	snprintf(cmd, sizeof(cmd), "losetup -d %s", loopdev);
	VT_EQ(system(cmd), 0);
	blkt_dir_remove(&d);
}

/* An image on tmpfs: no FALLOC_FL_ZERO_RANGE there, write zeroes must fall
 * back to punching a hole (which reads back as zeroes). */
VT_CASE(tmpfs_image_write_zeroes)
{
	struct blkt_dir d;
	char img[96];
	VT_REQUIRE(blkt_dir_make(&d) == 0);
	snprintf(img, sizeof(img), "/dev/shm/vhu-blkt-%d.img", (int)getpid());
	if (blkt_image_create(img, 2 * MIB, true) < 0) {
		fprintf(stderr, "# no /dev/shm: case not run\n");
		blkt_dir_remove(&d);
		return;
	}
	const char *args[] = {"--socket-path", d.sock, img, NULL};
	pid_t pid = blkt_spawn(&d, args, -1);
	struct blkt t = {0};
	VT_CHECK(pid > 0 && blkt_wait_socket(d.sock, BLKT_TIMEOUT_MS));
	if (blkt_open(&t, d.sock, 1, 64, 2, 4096, PF_DEFAULT) == 0) {
		for (int round = 0; round < 2; round++) { /* first detects, second knows */
			struct virtio_blk_discard_write_zeroes z = {.sector = 16 + 64 * round,
			                                            .num_sectors = 9};
			VT_EQ(dz(&t, VIRTIO_BLK_T_WRITE_ZEROES, &z, 1), VIRTIO_BLK_S_OK);
			VT_CHECK(file_is(img, z.sector * 512, 9 * 512, -1));
			VT_CHECK(file_is(img, (z.sector - 1) * 512, 512, 0));
			VT_CHECK(file_is(img, (z.sector + 9) * 512, 512, 0));
		}
		uint8_t buf[4096];
		fill(buf, 8192, sizeof(buf), 12);
		VT_EQ(blkt_io(&t, 0, VIRTIO_BLK_T_OUT, 16, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
		VT_CHECK(file_is(img, 8192, 4096, 12));
		blkt_close(&t);
	} else {
		VT_CHECK(!"cannot connect");
	}
	if (pid > 0) {
		kill(pid, SIGTERM);
		VT_EQ(blkt_wait_exit(pid, BLKT_TIMEOUT_MS), 0);
	}
	unlink(img);
	blkt_dir_remove(&d);
}

/* More segments than the daemon can map (--queue-size 8: seg_max 6, 16
 * iovecs): the chain is returned unused, nothing is written, and the ring
 * keeps working.  Also --block-size in the config space. */
VT_CASE(too_many_segments_and_block_size)
{
	struct env e;
	const char *extra[] = {"--queue-size", "8", "--block-size", "4096", NULL};
	VT_REQUIRE(env_spawn(&e, IMG, true, extra));
	VT_REQUIRE(blkt_open(&e.t, e.d.sock, 1, 8, 2, 32 * 512, PF_DEFAULT) == 0);
	struct virtio_blk_config c;
	VT_EQ(blkt_config(&e.t, &c), 0);
	VT_EQ(c.blk_size, 4096);
	VT_EQ(c.seg_max, 6);
	struct blkt_slot *sl = &e.t.slots[0][1];
	sl->hdr->type = VIRTIO_BLK_T_OUT;
	sl->hdr->sector = 0;
	struct vhuf_buf b[32];
	unsigned n = 0;
	b[n++] = (struct vhuf_buf){sl->hdr_gpa, 16, false};
	for (unsigned i = 0; i < 20; i++)
		b[n++] = (struct vhuf_buf){sl->data_gpa + i * 512, 512, false};
	b[n++] = (struct vhuf_buf){sl->st_gpa, 1, true};
	*sl->st = 0xee;
	VT_EQ(blkt_chain(&e.t, 0, b, n, true), 0);
	VT_EQ(*sl->st, 0xee);
	VT_CHECK(file_is(e.d.img, 0, 20 * 512, 0));
	/* Within the limit it works (6 data segments). */
	VT_EQ(blkt_chain(&e.t, 0,
	                 (struct vhuf_buf[]){b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[21]}, 8,
	                 true),
	      1);
	VT_EQ(*sl->st, VIRTIO_BLK_S_OK);
	env_stop(&e);
}

/* Cache mode at negotiation (spec: writeback iff FLUSH negotiated), kept
 * across a reconnect of the same driver, reset by a different one. */
VT_CASE(config_wce_negotiation)
{
	struct env e;
	VT_REQUIRE(env_spawn(&e, IMG, false, NULL));
	uint64_t all = ~(1ULL << VHU_F_LOG_ALL);
	struct {
		uint64_t features;
		int set_wce; /* -1: leave */
		int want;
	} steps[] = {
	    {all & ~(1ULL << VIRTIO_BLK_F_FLUSH), -1, 0}, /* like SeaBIOS */
	    {all, 0, 1},                                  /* Linux; sets write-through */
	    {all, -1, 0},                                 /* reconnect: kept */
	    {all & ~(1ULL << VIRTIO_BLK_F_CONFIG_WCE), -1, 1},
	};
	for (unsigned i = 0; i < 4; i++) {
		struct vhuf *f;
		struct vhuf_opts o = {.connect_timeout_ms = BLKT_TIMEOUT_MS};
		VT_REQUIRE(vhuf_connect(&f, e.d.sock, &o) == 0);
		VT_EQ(vhuf_negotiate(f, steps[i].features, PF_DEFAULT), 0);
		struct virtio_blk_config c;
		VT_EQ(vhuf_get_config(f, 0, &c, 60), 0);
		VT_EQ(c.wce, steps[i].want);
		if (steps[i].set_wce >= 0) {
			struct vhu_config_msg m = {
			    .offset = offsetof(struct virtio_blk_config, wce), .size = 1};
			m.region[0] = (uint8_t)steps[i].set_wce;
			VT_EQ(vhuf_request(f, VHU_REQ_SET_CONFIG, &m, VHU_CONFIG_HDR_SIZE + 1, NULL,
			                   0, true, NULL),
			      0);
		}
		vhuf_close(f);
	}
	env_stop(&e);
}
