/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --thread-pool-size N: the queue workers only pop; N service threads run
 * the requests, so that a slow one (a large fsync, a file on a network
 * file system) does not hold up the others on its queue.  One FIFO for
 * every queue, taken in order; each thread has its own scratch space.
 */
#include <errno.h>
#include <stdlib.h>

#include "dev.h"

struct fs_pool {
	struct fs_dev *dev;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fs_slot *head, **tail;
	bool stop;
	unsigned nthreads;
	struct pool_thread {
		pthread_t tid;
		struct fs_pool *p;
		struct fs_thread t;
	} * th;
};

static void *pool_main(void *arg)
{
	struct pool_thread *pt = arg;
	struct fs_pool *p = pt->p;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (!p->head)
			break;
		struct fs_slot *s = p->head;
		p->head = s->next;
		if (!p->head)
			p->tail = &p->head;
		pthread_mutex_unlock(&p->lock);

		uint32_t written = 0;
		if (p->stop) /* the daemon is going: its rings may be gone */
			fs_slot_complete(p->dev, s, -1);
		else if (fs_handle(p->dev->fs, &pt->t, &s->chain, s, &written) == 0)
			fs_slot_complete(p->dev, s, (int32_t)written);
		else /* the lock waiter holds it now; its own count */
			atomic_fetch_sub(&p->dev->busy, 1);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int fs_pool_new(struct fs_pool **out, struct fs_dev *d, unsigned nthreads)
{
	struct fs_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dev = d;
	p->tail = &p->head;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->th = calloc(nthreads, sizeof(*p->th));
	if (!p->th) {
		fs_pool_free(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		p->th[i].p = p;
		int err = fs_thread_init(&p->th[i].t, d->iov_max);
		if (!err)
			err = -pthread_create(&p->th[i].tid, NULL, pool_main, &p->th[i]);
		if (err) {
			fs_thread_fini(&p->th[i].t);
			fs_pool_free(p);
			return err;
		}
		p->nthreads++;
	}
	*out = p;
	return 0;
}

void fs_pool_submit(struct fs_pool *p, struct fs_slot *s)
{
	s->next = NULL;
	pthread_mutex_lock(&p->lock);
	*p->tail = s;
	p->tail = &s->next;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void fs_pool_free(struct fs_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++) {
		pthread_join(p->th[i].tid, NULL);
		fs_thread_fini(&p->th[i].t);
	}
	free(p->th);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
