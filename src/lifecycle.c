/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The front-end lifecycle hooks (backend.h): frontend_connected on the
 * handler thread, queue_ready and frontend_gone on the workers.
 *
 * Why workers watch the front end's socket: the handler thread notices a
 * hang-up only when it next reads the socket, and it may be busy (a slow
 * device op, waiting for a worker) long after the front end closed.  A
 * listener event handled meanwhile (input from a tap, a pipe, a console)
 * would go into the rings of a front end that will never read them.  So
 * every worker has the socket in its epoll set for EPOLLRDHUP: the worker
 * that collects the hang-up turns its rings off and tells the device before
 * it handles any event collected with or after it (worker.c puts the
 * hang-up first in a batch).
 *
 * Sequence numbers instead of flags: conn_seq counts front ends begun;
 * gone_seq is the last one seen gone; a worker has had its frontend_gone
 * for the front end gone_done.  A hook is due when gone_seq != gone_done,
 * which needs no reset between front ends.
 */
#include "dev.h"

/* Rings of worker w pop nothing from now on (vhu_vring_pop checks
 * `enabled`); the handler resets them when it ends the connection. */
static void rings_off(struct vhu_worker *w)
{
	struct vhu_daemon *d = w->d;

	for (uint64_t m = w->mask; m; m &= m - 1) {
		unsigned q = (unsigned)__builtin_ctzll(m);
		struct vhu_vring *vr;

		if (q >= d->nq)
			break;
		vr = &d->vrings[q];
		vhu_vring_lock(vr);
		vr->enabled = false;
		vhu_vring_unlock(vr);
	}
}

/* frontend_gone for front end `seq` on worker w (its thread, or the
 * handler while w is parked). */
static void run_gone(struct vhu_worker *w, uint64_t seq)
{
	w->gone_done = seq;
	rings_off(w);
	vhu_be_frontend_gone(&w->d->be, w->id);
}

/* queue_ready for the queues that became ready, if they still are. */
static void run_ready(struct vhu_worker *w)
{
	struct vhu_daemon *d = w->d;
	uint64_t m = atomic_exchange(&w->ready_new, 0);

	for (; m; m &= m - 1) {
		unsigned q = (unsigned)__builtin_ctzll(m);
		struct vhu_vring *vr = &d->vrings[q];

		if (vr->started && vr->enabled && !vhu_vring_failed(vr))
			vhu_be_queue_ready(&d->be, q, w->id);
	}
}

void vhu_lifecycle_run(struct vhu_worker *w)
{
	uint64_t gone = atomic_load(&w->d->gone_seq);

	/* Gone first: a queue made ready before the hang-up is no longer. */
	if (gone != w->gone_done)
		run_gone(w, gone);
	if (atomic_load_explicit(&w->ready_new, memory_order_relaxed))
		run_ready(w);
}

void vhu_lifecycle_hangup(struct vhu_worker *w)
{
	struct vhu_daemon *d = w->d;

	VHU_LOGI("%s: worker %u: front end hung up", d->name, w->id);
	/* The handler may be asleep in a postcopy fault it will never have
	 * served: wake it (migration.md). */
	vhu_postcopy_release(&d->conn.pc);
	atomic_store(&d->gone_seq, atomic_load(&d->conn_seq));
	vhu_lifecycle_run(w);
}

void vhu_lifecycle_begin(struct vhu_daemon *d, int sock)
{
	atomic_fetch_add(&d->conn_seq, 1);
	vhu_workers_watch_conn(d, sock, true);
	vhu_be_frontend_connected(&d->be);
}

void vhu_lifecycle_end(struct vhu_daemon *d)
{
	uint64_t seq = atomic_load(&d->conn_seq);

	atomic_store(&d->gone_seq, seq);
	/* Parked workers hold no event and run no callback: the hooks they
	 * have not had yet run here, and no hang-up event is left behind. */
	vhu_workers_park(d);
	vhu_workers_watch_conn(d, d->conn.sock, false);
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct vhu_worker *w = &d->workers[i];

		atomic_store(&w->ready_new, 0);
		if (w->gone_done != seq)
			run_gone(w, seq);
	}
	vhu_workers_unpark(d);
}

void vhu_lifecycle_queue_ready(struct vhu_daemon *d, unsigned q)
{
	int16_t i = q < d->nq ? d->queue_worker[q] : -1;

	if (i >= 0)
		atomic_fetch_or(&d->workers[i].ready_new, VHU_BIT(q));
}
