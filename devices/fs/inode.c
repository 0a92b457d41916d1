/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inode table.  Every inode the guest knows is an O_PATH fd of a file
 * under the shared directory, entered by a lookup and keyed by (st_dev,
 * st_ino): while we hold the fd the inode cannot be freed, so the key never
 * names two files.  The guest refers to inodes by nodeid (slots.c), so a
 * stale or guessed nodeid finds nothing (and at worst another inode the
 * guest looked up, never one it did not).
 * Lookup counts follow the FUSE rules: each entry reply adds one, FORGET
 * drops what the guest says, clamped to what it holds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define SLOT(nodeid) ((uint32_t)((nodeid)&0xffffffffu))
#define ROOT_SLOT    1u

static uint32_t hash_key(dev_t dev, ino_t ino)
{
	uint64_t x = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4full;
	return (uint32_t)(x ^ (x >> 32));
}

static int hash_grow(struct fs_inodes *t)
{
	uint32_t nb = (t->hmask + 1) * 2;
	struct fs_inode **h = calloc(nb, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (uint32_t b = 0; b <= t->hmask; b++) {
		struct fs_inode *i = t->hash[b], *next;
		for (; i; i = next) {
			next = i->hnext;
			uint32_t k = hash_key(i->dev, i->ino) & (nb - 1);
			i->hnext = h[k];
			h[k] = i;
		}
	}
	free(t->hash);
	t->hash = h;
	t->hmask = nb - 1;
	return 0;
}

static struct fs_inode *hash_find(struct fs_inodes *t, dev_t dev, ino_t ino)
{
	struct fs_inode *i = t->hash[hash_key(dev, ino) & t->hmask];
	while (i && (i->dev != dev || i->ino != ino))
		i = i->hnext;
	return i;
}

static void hash_remove(struct fs_inodes *t, struct fs_inode *x)
{
	struct fs_inode **p = &t->hash[hash_key(x->dev, x->ino) & t->hmask];
	while (*p && *p != x)
		p = &(*p)->hnext;
	if (*p)
		*p = x->hnext;
	x->hnext = NULL;
}

static void inode_unref_locked(struct fs_inode *i)
{
	if (--i->refs == 0) {
		close(i->fd);
		free(i);
	}
}

/* Lookup count reached 0: the guest can no longer name it. */
static void inode_drop_locked(struct fs_inodes *t, struct fs_inode *i)
{
	i->nlookup = 0;
	hash_remove(t, i);
	fs_slots_free(&t->s, SLOT(i->nodeid));
	t->count--;
	inode_unref_locked(i);
}

int fs_inodes_init(struct fs_inodes *t, int root_fd, uint64_t max_inodes)
{
	struct stat st;
	struct fs_inode *root;

	memset(t, 0, sizeof(*t));
	if (fstat(root_fd, &st) < 0)
		return -errno;
	t->hash = calloc(1024, sizeof(*t->hash));
	root = calloc(1, sizeof(*root));
	if (!t->hash || !root || fs_slots_init(&t->s, 1024) < 0) {
		free(root);
		free(t->hash);
		t->hash = NULL;
		return -ENOMEM;
	}
	t->hmask = 1023;
	t->max_inodes = max_inodes;
	pthread_mutex_init(&t->lock, NULL);
	/* The first slot is the root's, with generation 0: nodeid
	 * FUSE_ROOT_ID (no other slot has generation 0). */
	uint32_t slot = fs_slots_alloc(&t->s, root);
	t->s.gen[slot] = 0;
	root->fd = root_fd;
	root->dev = st.st_dev;
	root->ino = st.st_ino;
	root->type = S_IFDIR;
	root->nodeid = fs_slots_id(&t->s, slot);
	root->nlookup = 1;
	root->refs = 1;
	t->hash[hash_key(root->dev, root->ino) & t->hmask] = root;
	t->count = 1;
	return 0;
}

void fs_inodes_fini(struct fs_inodes *t)
{
	if (!t->hash)
		return;
	for (uint32_t k = 1; k < t->s.n; k++) {
		struct fs_inode *i = t->s.obj[k];
		if (i) {
			close(i->fd);
			free(i);
		}
	}
	pthread_mutex_destroy(&t->lock);
	fs_slots_fini(&t->s);
	free(t->hash);
	memset(t, 0, sizeof(*t));
}

struct fs_inode *fs_inode_get(struct fs_inodes *t, uint64_t nodeid)
{
	pthread_mutex_lock(&t->lock);
	struct fs_inode *i = fs_slots_get(&t->s, nodeid);
	if (i)
		i->refs++;
	pthread_mutex_unlock(&t->lock);
	return i;
}

void fs_inode_put(struct fs_inodes *t, struct fs_inode *i)
{
	pthread_mutex_lock(&t->lock);
	inode_unref_locked(i);
	pthread_mutex_unlock(&t->lock);
}

int64_t fs_inode_add_lookup(struct fs_inodes *t, int fd, const struct stat *st)
{
	struct fs_inode *i;
	int64_t ret;

	pthread_mutex_lock(&t->lock);
	i = hash_find(t, st->st_dev, st->st_ino);
	if (i) {
		i->nlookup++;
		ret = (int64_t)i->nodeid;
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return ret;
	}
	if (t->count >= t->max_inodes) {
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return -ENFILE;
	}
	if (t->count >= t->hmask + 1 && hash_grow(t) < 0) {
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return -ENOMEM;
	}
	i = calloc(1, sizeof(*i));
	uint32_t slot = i ? fs_slots_alloc(&t->s, i) : 0;
	if (!slot) {
		free(i);
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return -ENOMEM;
	}
	i->fd = fd;
	i->dev = st->st_dev;
	i->ino = st->st_ino;
	i->type = st->st_mode & S_IFMT;
	i->nodeid = fs_slots_id(&t->s, slot);
	i->nlookup = 1;
	i->refs = 1;
	uint32_t k = hash_key(i->dev, i->ino) & t->hmask;
	i->hnext = t->hash[k];
	t->hash[k] = i;
	t->count++;
	ret = (int64_t)i->nodeid;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void fs_inode_forget(struct fs_inodes *t, uint64_t nodeid, uint64_t n)
{
	pthread_mutex_lock(&t->lock);
	struct fs_inode *i = fs_slots_get(&t->s, nodeid);
	/* The root is never forgotten: the guest holds it for the mount. */
	if (i && nodeid != FUSE_ROOT_ID) {
		if (n >= i->nlookup)
			inode_drop_locked(t, i);
		else
			i->nlookup -= n;
	}
	pthread_mutex_unlock(&t->lock);
}

void fs_inodes_forget_all(struct fs_inodes *t)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t k = ROOT_SLOT + 1; k < t->s.n; k++)
		if (t->s.obj[k])
			inode_drop_locked(t, t->s.obj[k]);
	((struct fs_inode *)t->s.obj[ROOT_SLOT])->nlookup = 1;
	pthread_mutex_unlock(&t->lock);
}

uint32_t fs_inodes_count(struct fs_inodes *t)
{
	pthread_mutex_lock(&t->lock);
	uint32_t n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
