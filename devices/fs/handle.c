/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The open-file table: fhs are ids as nodeids are (slots.c), so a file
 * handle the guest invents, reuses after RELEASE or takes from a
 * directory for a file operation finds nothing.  A handle keeps its inode
 * referenced; RELEASE takes it out of the table and the fd is closed when
 * the last request using it is done.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define SLOT(fh) ((uint32_t)((fh)&0xffffffffu))

int fs_handles_init(struct fs_handles *t)
{
	memset(t, 0, sizeof(*t));
	int err = fs_slots_init(&t->s, 256);
	if (err)
		return err;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

/* Take h out of the table (lock held); the table's reference goes to the
 * caller. */
static void unlink_locked(struct fs_handles *t, struct fs_handle *h)
{
	h->released = true;
	fs_slots_free(&t->s, SLOT(h->fh));
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
	uint32_t slot = fs_slots_alloc(&t->s, h);
	if (!slot) {
		pthread_mutex_unlock(&t->lock);
		handle_free(inodes, h);
		return -ENFILE;
	}
	h->fh = fs_slots_id(&t->s, slot);
	t->count++;
	int64_t fh = (int64_t)h->fh;
	pthread_mutex_unlock(&t->lock);
	return fh;
}

static struct fs_handle *find_locked(struct fs_handles *t, uint64_t fh, enum fs_handle_kind kind)
{
	struct fs_handle *h = fs_slots_get(&t->s, fh);
	if (!h || h->kind != kind || h->released)
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
	if (!t->s.obj)
		return;
	/* One slot at a time: closing (and putting inodes) outside the lock. */
	for (uint32_t k = 1;; k++) {
		struct fs_handle *h = NULL;
		pthread_mutex_lock(&t->lock);
		bool end = k >= t->s.n;
		if (!end && t->s.obj[k]) {
			h = t->s.obj[k];
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
	if (!t->s.obj)
		return;
	fs_handles_release_all(t, inodes);
	pthread_mutex_destroy(&t->lock);
	fs_slots_fini(&t->s);
}

uint32_t fs_handles_count(struct fs_handles *t)
{
	pthread_mutex_lock(&t->lock);
	uint32_t n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
