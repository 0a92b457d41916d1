/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Locks.  flock(2) locks (FUSE_FLOCK_LOCKS) map onto flock on the handle's
 * host fd: one open file description per guest open, so the guest's own
 * conflicts (and those with host processes) are the host's.  POSIX record
 * locks are not negotiated: the guest kernel keeps them locally and a
 * GETLK/SETLK for one gets ENOSYS.
 *
 * A SETLKW that cannot be granted at once must not block the thread that
 * serves the queue: the unlock it waits for may come on the same queue.
 * It goes to one waiter thread that retries every pending lock without
 * blocking (LOCK_NB), backing off from 1 to 16 ms, and completes it through
 * fs->complete when granted.  Nothing is ever blocked in the kernel, so a
 * front end that goes away or a session that ends cancels waits at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include "req.h"

struct fs_wait {
	struct fs_wait *next;
	struct fs_handle *h; /* referenced */
	int op;              /* LOCK_SH / LOCK_EX */
	uint64_t unique;
	void *cookie;
	unsigned niov;
	struct iovec iov[]; /* the chain's writable part */
};

struct fs_locks {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_ok;
	bool stop;
	struct fs_wait *head;
	unsigned count;
};

/* Write the reply header into a waiting request's buffers. */
static uint32_t wait_reply(struct fs_wait *w, int err)
{
	struct fuse_out_header h = {.len = sizeof(h), .error = err, .unique = w->unique};
	struct vhu_chain c = {.in_num = w->niov, .iov = w->iov, .iov_max = w->niov};
	return vhu_chain_write(&c, 0, &h, sizeof(h)) == sizeof(h) ? (uint32_t)sizeof(h) : 0;
}

static void wait_finish(struct fs *fs, struct fs_wait *w, int err, bool reply)
{
	uint32_t written = reply ? wait_reply(w, err) : 0;
	if (!err && w->h)
		w->h->flocked = true;
	fs_handle_put(&fs->handles, &fs->inodes, w->h);
	fs->complete(fs->complete_opaque, w->cookie, reply ? (int32_t)written : -1);
	free(w);
}

/* One pass over the waiting locks; returns how many are still waiting. */
static unsigned retry_all(struct fs *fs)
{
	struct fs_locks *l = fs->locks;
	struct fs_wait **p = &l->head, *done = NULL;

	while (*p) {
		struct fs_wait *w = *p;
		int err = 0;
		if (w->h->released)
			err = -EBADF;
		else if (flock(w->h->fd, w->op | LOCK_NB) < 0)
			err = -errno;
		if (err == -EWOULDBLOCK || err == -EINTR) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		l->count--;
		w->next = done;
		w->op = err; /* reused: the result */
		done = w;
	}
	unsigned left = l->count;
	pthread_mutex_unlock(&l->lock);
	while (done) {
		struct fs_wait *w = done;
		done = w->next;
		wait_finish(fs, w, w->op, true);
	}
	pthread_mutex_lock(&l->lock);
	return left;
}

static void *waiter(void *arg)
{
	struct fs *fs = arg;
	struct fs_locks *l = fs->locks;
	unsigned backoff_ms = 1;

	pthread_mutex_lock(&l->lock);
	while (!l->stop) {
		if (!l->head) {
			pthread_cond_wait(&l->cond, &l->lock);
			backoff_ms = 1;
			continue;
		}
		if (!retry_all(fs))
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)backoff_ms * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		/* A new waiter wakes us early (and resets the back-off). */
		if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == 0)
			backoff_ms = 1;
		else if (backoff_ms < 16)
			backoff_ms *= 2;
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int fs_locks_new(struct fs *fs)
{
	struct fs_locks *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;

	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	fs->locks = l;
	int err = pthread_create(&l->thread, NULL, waiter, fs);
	if (err) {
		fs->locks = NULL;
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
		free(l);
		return -err;
	}
	l->thread_ok = true;
	return 0;
}

static void cancel(struct fs *fs, bool reply)
{
	struct fs_locks *l = fs->locks;
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	struct fs_wait *w = l->head;
	l->head = NULL;
	for (struct fs_wait *x = w; x; x = x->next)
		l->count--;
	pthread_mutex_unlock(&l->lock);
	while (w) {
		struct fs_wait *next = w->next;
		wait_finish(fs, w, -EINTR, reply);
		w = next;
	}
}

void fs_locks_cancel(struct fs *fs, bool reply)
{
	cancel(fs, reply);
}

void fs_locks_free(struct fs *fs)
{
	struct fs_locks *l = fs->locks;
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	if (l->thread_ok)
		pthread_join(l->thread, NULL);
	cancel(fs, false);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
	fs->locks = NULL;
}

/* Park a blocking request with the waiter. 0, or -errno to reply now. */
static int defer(struct fs_req *r, struct fs_handle *h, int op)
{
	struct fs_locks *l = r->fs->locks;
	const struct vhu_chain *c = r->c;
	struct fs_wait *w = calloc(1, sizeof(*w) + c->in_num * sizeof(struct iovec));

	if (!w)
		return -ENOLCK;
	w->h = h;
	w->op = op;
	w->unique = r->in.unique;
	w->cookie = r->cookie;
	w->niov = c->in_num;
	memcpy(w->iov, c->iov + c->out_num, c->in_num * sizeof(struct iovec));
	pthread_mutex_lock(&l->lock);
	if (l->count >= FS_PENDING_LOCKS) {
		pthread_mutex_unlock(&l->lock);
		free(w);
		return -ENOLCK;
	}
	l->count++; /* a place taken before the device holds the request */
	pthread_mutex_unlock(&l->lock);
	if (r->fs->defer)
		r->fs->defer(r->fs->complete_opaque, r->cookie);
	pthread_mutex_lock(&l->lock);
	w->next = l->head;
	l->head = w;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	r->deferred = true;
	return 0;
}

static void do_setlk(struct fs_req *r, bool wait)
{
	const struct fuse_lk_in *in = FS_ARG(r, struct fuse_lk_in);
	int op;

	if (!(in->lk_flags & FUSE_LK_FLOCK)) {
		fs_reply_err(r, -ENOSYS); /* POSIX locks stay in the guest */
		return;
	}
	switch (in->lk.type) {
	case F_RDLCK:
		op = LOCK_SH;
		break;
	case F_WRLCK:
		op = LOCK_EX;
		break;
	case F_UNLCK:
		op = LOCK_UN;
		break;
	default:
		fs_reply_err(r, -EINVAL);
		return;
	}
	struct fs_handle *h = fs_req_handle(r, in->fh, FS_H_FILE);
	if (!h)
		return;
	int err = flock(h->fd, op | LOCK_NB) < 0 ? -errno : 0;
	if (!err && op != LOCK_UN)
		h->flocked = true;
	if (err == -EWOULDBLOCK && wait && r->fs->complete) {
		err = defer(r, h, op);
		if (!err)
			return; /* the waiter owns h's reference now */
	}
	fs_put_handle(r, h);
	fs_reply_err(r, err);
}

void fs_op_getlk(struct fs_req *r)
{
	fs_reply_err(r, -ENOSYS);
}

void fs_op_setlk(struct fs_req *r)
{
	do_setlk(r, false);
}

void fs_op_setlkw(struct fs_req *r)
{
	do_setlk(r, true);
}
