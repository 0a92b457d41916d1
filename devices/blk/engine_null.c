/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --null engine: no I/O.  Reads return zeroes, everything else succeeds at
 * once.  Measures the framework (rings, notifications, threads) alone.
 */
#include <string.h>

#include "blk.h"

static int null_init(struct blk_worker *w, int *efd)
{
	*efd = -1;
	return 0;
}

static void null_fini(struct blk_worker *w) {}

static void null_submit(struct blk_worker *w, struct blk_req *r)
{
	if (r->op == BLK_OP_READ)
		for (unsigned i = 0; i < r->ndata; i++)
			memset(r->data[i].iov_base, 0, r->data[i].iov_len);
	r->pending = 0;
	r->error = 0;
	blk_req_finish(r);
}

static void null_kick(struct blk_worker *w) {}

static void null_reap(struct blk_worker *w) {}

const struct blk_engine blk_engine_null = {
    .name = "null",
    .sync = true,
    .init = null_init,
    .fini = null_fini,
    .submit = null_submit,
    .kick = null_kick,
    .reap = null_reap,
};
