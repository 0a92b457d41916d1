/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The open-file table: fh = generation << 32 | slot, as nodeids (inode.c),
 * so a file handle the guest invents, reuses after RELEASE or takes from a
 * directory for a file operation finds nothing.  A handle keeps its inode
 * referenced; RELEASE takes it out of the table and the fd is closed when
 * the last request using it is done.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "fs.h"

#define SLOT(fh) ((uint32_t)((fh)&0xffffffffu))

/* Random starting generations below 2^31: an fh is a positive int64_t. */
static void random_gens(uint32_t *g, uint32_t n)
{
	if (getrandom(g, n * sizeof(*g), GRND_NONBLOCK) != (ssize_t)(n * sizeof(*g)))
		memset(g, 0, n * sizeof(*g));
	for (uint32_t k = 0; k < n; k++)
		g[k] &= 0x7fffffffu;
}

int fs_handles_init(struct fs_handles *t)
{
	memset(t, 0, sizeof(*t));
	t->cap = 256;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	t->gen = calloc(t->cap, sizeof(*t->gen));
	t->free = calloc(t->cap, sizeof(*t->free));
	if (!t->slots || !t->gen || !t->free) {
		free(t->slots);
		free(t->gen);
		free(t->free);
		memset(t, 0, sizeof(*t));
		return -ENOMEM;
	}
	random_gens(t->gen, t->cap);
	t->nslots = 1; /* fh 0 is never valid */
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

static uint32_t slot_alloc(struct fs_handles *t)
{
	if (t->nfree)
		return t->free[--t->nfree];
	if (t->nslots == t->cap) {
		if (t->cap >= (1u << 30))
			return 0;
		uint32_t cap = t->cap * 2;
		struct fs_handle **s = realloc(t->slots, cap * sizeof(*s));
		if (!s)
			return 0;
		t->slots = s;
		uint32_t *g = realloc(t->gen, cap * sizeof(*g));
		if (!g)
			return 0;
		t->gen = g;
		uint32_t *f = realloc(t->free, cap * sizeof(*f));
		if (!f)
			return 0;
		t->free = f;
		for (uint32_t k = t->cap; k < cap; k++)
			t->slots[k] = NULL;
		random_gens(t->gen + t->cap, cap - t->cap);
		t->cap = cap;
	}
	return t->nslots++;
}

/* Take h out of the table (lock held); the table's reference goes to the
 * caller. */
static void unlink_locked(struct fs_handles *t, struct fs_handle *h)
{
	uint32_t slot = SLOT(h->fh);
	h->released = true;
	t->slots[slot] = NULL;
	t->gen[slot] = (t->gen[slot] + 1) & 0x7fffffffu;
	t->free[t->nfree++] = slot;
	t->count--;
}

static void handle_free(struct fs_inodes *inodes, struct fs_handle *h)
{
	close(h->fd);
	if (h->inode)
		fs_inode_put(inodes, h->inode);
	pthread_mutex_destroy(&h->dir_lock);
	free(h);
}

int64_t fs_handle_add(struct fs_handles *t, struct fs_inodes *inodes, int fd,
                      enum fs_handle_kind kind, int flags, struct fs_inode *inode)
{
	struct fs_handle *h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		fs_inode_put(inodes, inode);
		return -ENOMEM;
	}
	h->fd = fd;
	h->kind = kind;
	h->flags = flags;
	h->inode = inode;
	h->refs = 1;
	pthread_mutex_init(&h->dir_lock, NULL);

	pthread_mutex_lock(&t->lock);
	uint32_t slot = slot_alloc(t);
	if (!slot) {
		pthread_mutex_unlock(&t->lock);
		handle_free(inodes, h);
		return -ENFILE;
	}
	h->fh = (uint64_t)t->gen[slot] << 32 | slot;
	t->slots[slot] = h;
	t->count++;
	int64_t fh = (int64_t)h->fh;
	pthread_mutex_unlock(&t->lock);
	return fh;
}

static struct fs_handle *find_locked(struct fs_handles *t, uint64_t fh, enum fs_handle_kind kind)
{
	uint32_t slot = SLOT(fh);
	if (!slot || slot >= t->nslots)
		return NULL;
	struct fs_handle *h = t->slots[slot];
	if (!h || h->fh != fh || h->kind != kind || h->released)
		return NULL;
	return h;
}

struct fs_handle *fs_handle_get(struct fs_handles *t, uint64_t fh, enum fs_handle_kind kind)
{
	pthread_mutex_lock(&t->lock);
	struct fs_handle *h = find_locked(t, fh, kind);
	if (h)
		h->refs++;
	pthread_mutex_unlock(&t->lock);
	return h;
}

void fs_handle_put(struct fs_handles *t, struct fs_inodes *inodes, struct fs_handle *h)
{
	pthread_mutex_lock(&t->lock);
	bool last = --h->refs == 0;
	pthread_mutex_unlock(&t->lock);
	if (last)
		handle_free(inodes, h);
}

struct fs_handle *fs_handle_remove(struct fs_handles *t, uint64_t fh, enum fs_handle_kind kind)
{
	pthread_mutex_lock(&t->lock);
	struct fs_handle *h = find_locked(t, fh, kind);
	if (h)
		unlink_locked(t, h);
	pthread_mutex_unlock(&t->lock);
	return h;
}

void fs_handles_release_all(struct fs_handles *t, struct fs_inodes *inodes)
{
	if (!t->slots)
		return;
	/* One slot at a time: closing (and putting inodes) outside the lock. */
	for (uint32_t k = 1;; k++) {
		struct fs_handle *h = NULL;
		pthread_mutex_lock(&t->lock);
		bool end = k >= t->nslots;
		if (!end && t->slots[k]) {
			h = t->slots[k];
			unlink_locked(t, h);
		}
		pthread_mutex_unlock(&t->lock);
		if (end)
			return;
		if (h)
			fs_handle_put(t, inodes, h);
	}
}

void fs_handles_fini(struct fs_handles *t, struct fs_inodes *inodes)
{
	if (!t->slots)
		return;
	fs_handles_release_all(t, inodes);
	pthread_mutex_destroy(&t->lock);
	free(t->slots);
	free(t->gen);
	free(t->free);
	memset(t, 0, sizeof(*t));
}

uint32_t fs_handles_count(struct fs_handles *t)
{
	pthread_mutex_lock(&t->lock);
	uint32_t n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
