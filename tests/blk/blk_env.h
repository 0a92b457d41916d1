/* SPDX-License-Identifier: Apache-2.0 */
/* A running vhu-blk child plus a connected driver, for test cases. */
#ifndef BLK_ENV_H
#define BLK_ENV_H

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "blkt.h"
#include "vt.h"

#define MIB        (1ull << 20)
#define PF_DEFAULT (VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIG))

struct env {
	struct blkt_dir d;
	pid_t pid;
	struct blkt t;
	int exit_code;
};

/* Start vhu-blk on a fresh image of img_size bytes (pattern-filled if
 * fill; no image argument if img_size == 0) with extra args. */
static inline bool env_spawn(struct env *e, uint64_t img_size, bool fill, const char *const *extra)
{
	const char *args[32];
	unsigned n = 0;
	memset(e, 0, sizeof(*e));
	e->pid = -1;
	if (blkt_dir_make(&e->d) < 0)
		return false;
	if (img_size && blkt_image_create(e->d.img, img_size, fill) < 0)
		return false;
	args[n++] = "--socket-path";
	args[n++] = e->d.sock;
	for (unsigned i = 0; extra && extra[i] && n < 28; i++)
		args[n++] = extra[i];
	if (img_size)
		args[n++] = e->d.img;
	args[n] = NULL;
	e->pid = blkt_spawn(&e->d, args, -1);
	return e->pid > 0 && blkt_wait_socket(e->d.sock, BLKT_TIMEOUT_MS);
}

static inline bool env_start(struct env *e, uint64_t img_size, bool fill, const char *const *extra,
                             unsigned nq, unsigned nslots, uint32_t data_cap)
{
	if (!env_spawn(e, img_size, fill, extra))
		return false;
	int rc = blkt_open(&e->t, e->d.sock, nq, 128, nslots, data_cap, PF_DEFAULT);
	if (rc < 0)
		fprintf(stderr, "# blkt_open: %s\n", strerror(-rc));
	return rc == 0;
}

/* Disconnect, SIGTERM, expect a clean exit; remove the directory. */
static inline void env_stop(struct env *e)
{
	if (e->t.f)
		blkt_close(&e->t);
	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		e->exit_code = blkt_wait_exit(e->pid, BLKT_TIMEOUT_MS);
		if (e->exit_code != 0)
			fprintf(stderr, "# vhu-blk stderr:\n%s", blkt_slurp(e->d.err));
		VT_EQ(e->exit_code, 0);
		e->pid = -1;
	}
	blkt_dir_remove(&e->d);
}

#endif
