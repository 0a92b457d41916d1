/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Soak test (not in the default suite; scripts/soak runs it):
 *   hostile-soak [SECONDS]      (default 300)
 * Front ends connect, drive I/O on four queues from four threads with
 * every byte checked (echo device), change the memory table under the
 * I/O (ADD/REM_MEM_REGION of an extra region, and a full SET_MEM_TABLE),
 * and disconnect — some cleanly after stopping the rings, some abruptly
 * in the middle.  At the end the process must be back at its fd and
 * memfd-mapping baseline and a fresh front end must do I/O.
 * Prints a progress line every 10 s and a summary; exit status 0 on success.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"

#define NQ 4

struct job {
	struct vhuf *f;
	unsigned q, n;
	int ret;
};

static void *io_thread(void *arg)
{
	struct job *j = arg;

	j->ret = fe_io(j->f, j->q, j->n);
	return NULL;
}

/* Add and remove an extra region a few times while I/O runs. */
static int churn_memory(struct vhuf *f, unsigned round)
{
	int fd = h_memfd(65536), err = 0;

	if (fd < 0)
		return -EMFILE;
	for (unsigned i = 0; i < 4 && !err; i++) {
		struct vhu_mem_single_msg m = {
		    0, {(1ull << 40) + i * 65536, 65536, (1ull << 45) + i * 65536, 0}};

		err = vhuf_request(f, VHU_REQ_ADD_MEM_REGION, &m, sizeof(m), &fd, 1, true, NULL);
		if (!err)
			err = vhuf_request(f, VHU_REQ_REM_MEM_REGION, &m, sizeof(m), NULL, 0, true,
			                   NULL);
	}
	if (!err && (round & 1))
		err = vhuf_send_mem_table(f);
	close(fd);
	return err;
}

static int one_round(struct henv *h, unsigned round, uint64_t *ios)
{
	struct vhuf_opts o = {
	    .mem_size = 16 << 20, .nregions = 1 + round % 3, .connect_timeout_ms = 3000};
	struct vhuf *f;
	struct job jobs[NQ];
	pthread_t th[NQ];
	int err;

	if (vhuf_connect(&f, h->t.path, &o))
		return -ECONNREFUSED;
	err = vhuf_negotiate(f, F_ALL, PF_ALL);
	for (unsigned q = 0; !err && q < NQ; q++)
		err = vhuf_queue_setup(f, q, 64 << (q % 3));
	if (err) {
		vhuf_close(f);
		h->t.conns++;
		return err;
	}
	for (unsigned q = 0; q < NQ; q++) {
		jobs[q] = (struct job){f, q, 200 + 50 * q, 0};
		pthread_create(&th[q], NULL, io_thread, &jobs[q]);
	}
	err = churn_memory(f, round);
	for (unsigned q = 0; q < NQ; q++) {
		pthread_join(th[q], NULL);
		if (jobs[q].ret && !err)
			err = jobs[q].ret;
		*ios += jobs[q].n;
	}
	if (!err && round % 4 == 0) {
		uint32_t base;

		for (unsigned q = 0; q < NQ && !err; q++)
			err = vhuf_queue_stop(f, q, &base);
	}
	if (!err && round % 4 == 1) {
		/* Abrupt: requests in flight when the front end goes. */
		for (int i = 0; i < 64; i++) {
			struct vhuf_buf b[2] = {{vhuf_alloc(f, 256, 8), 256, false},
			                        {vhuf_alloc(f, 256, 8), 256, true}};

			if (vhuf_submit(f, i % NQ, b, 2, false, NULL) < 0)
				break;
		}
		for (unsigned q = 0; q < NQ; q++)
			vhuf_kick_force(f, q);
	}
	vhuf_close(f);
	h->t.conns++;
	return err;
}

int main(int argc, char **argv)
{
	unsigned secs = argc > 1 ? (unsigned)atoi(argv[1]) : 300;
	struct henv h;
	int64_t end, next_print = 0;
	uint64_t ios = 0;
	unsigned round = 0, failed = 0;
	bool ok;

	if (henv_start(&h, NQ)) {
		fprintf(stderr, "soak: cannot start the daemon\n");
		return 1;
	}
	end = now_ms() + (int64_t)secs * 1000;
	while (now_ms() < end) {
		int err = one_round(&h, round, &ios);

		if (err) {
			failed++;
			fprintf(stderr, "soak: round %u failed: %s\n", round, strerror(-err));
		}
		if (now_ms() >= next_print) {
			next_print = now_ms() + 10000;
			printf("round %u: %llu requests checked, %u failed rounds\n", round,
			       (unsigned long long)ios, failed);
		}
		fflush(stdout);
		round++;
	}
	uint64_t done = 0;

	for (unsigned q = 0; q < NQ; q++)
		done += atomic_load(&h.t.dev.done[q]);
	ok = h_at_baseline(&h) && h_healthy(&h);
	printf("soak: %u rounds, %llu requests checked (device completed %llu), %u failed "
	       "rounds, baseline %s\n",
	       round, (unsigned long long)ios, (unsigned long long)done, failed,
	       ok ? "ok" : "NOT ok");
	henv_stop(&h);
	return ok && !failed ? 0 : 1;
}
