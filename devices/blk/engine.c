/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers the storage engines share (see struct blk_engine in blk.h). */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "blk.h"

unsigned blk_worker_busy(const struct blk_worker *w)
{
	unsigned n = 0;
	for (unsigned q = 0; q < w->dev->opts.num_queues; q++)
		if (w->qmask & (1ULL << q))
			n += w->dev->queues[q].nslots - w->dev->queues[q].nfree;
	return n;
}

bool blk_req_flush_ro(const struct blk_worker *w, struct blk_req *r)
{
	if (r->op != BLK_OP_FLUSH || !w->dev->opts.read_only)
		return false;
	r->op = BLK_OP_NONE; /* nothing can be dirty */
	r->status = VIRTIO_BLK_S_OK;
	blk_req_finish(r);
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void blk_log_io_error(struct blk_dev *d, const struct blk_req *r, const char *engine, int err)
{
	static const char *const ops[] = {"none",  "read",    "write",
	                                  "flush", "discard", "write-zeroes"};
	static _Atomic uint64_t last_ms;
	static _Atomic unsigned suppressed;
	uint64_t now = now_ms(), last = atomic_load(&last_ms);
	/* One line a second at most: a cluster that is down fails every
	 * request, and the log must stay readable. */
	if ((last && now - last < 1000) || !atomic_compare_exchange_strong(&last_ms, &last, now)) {
		atomic_fetch_add(&suppressed, 1);
		return;
	}
	unsigned more = atomic_exchange(&suppressed, 0);
	vhu_log(VHU_LOG_ERROR,
	        "vhu-blk: %s: %s of %" PRIu64 " bytes at offset %" PRIu64
	        " on queue %u failed: %s; the guest gets an I/O error%s",
	        engine, ops[r->op <= BLK_OP_ZEROES ? r->op : 0], r->len, r->offset, r->q->index,
	        strerror(-err), more ? " (errors not logged in the second before: more)" : "");
	(void)d;
}
