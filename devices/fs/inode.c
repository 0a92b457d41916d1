/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inode table.  Every inode the guest knows is an O_PATH fd of a file
 * under the shared directory, entered by a lookup and keyed by (st_dev,
 * st_ino): while we hold the fd the inode cannot be freed, so the key never
 * names two files.  The guest refers to inodes by nodeid = generation << 32
 * | slot; the generation of a slot changes each time it is reused and
 * starts at a random value, so a stale or guessed nodeid finds nothing
 * (and at worst another inode the guest looked up, never one it did not).
 * Lookup counts follow the FUSE rules: each entry reply adds one, FORGET
 * drops what the guest says, clamped to what it holds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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

static uint32_t random_gen(void)
{
	uint32_t g = 0;
	if (getrandom(&g, sizeof(g), GRND_NONBLOCK) != sizeof(g))
		g = (uint32_t)(uintptr_t)&g ^ (uint32_t)getpid();
	/* Never 0 (nodeid 1 is only the root's); below 2^31 so that a
	 * nodeid is a positive int64_t. */
	return (g & 0x7fffffffu) | 1;
}

/* A free slot index (the table lock held), or 0 when out of memory. */
static uint32_t slot_alloc(struct fs_inodes *t)
{
	if (t->nfree)
		return t->free[--t->nfree];
	if (t->nslots == t->cap) {
		if (t->cap >= (1u << 31))
			return 0;
		uint32_t cap = t->cap * 2;
		struct fs_inode **s = realloc(t->slots, cap * sizeof(*s));
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
		for (uint32_t k = t->cap; k < cap; k++) {
			t->slots[k] = NULL;
			t->gen[k] = random_gen();
		}
		t->cap = cap;
	}
	return t->nslots++;
}

static void slot_free(struct fs_inodes *t, uint32_t slot)
{
	t->slots[slot] = NULL;
	t->gen[slot] = ((t->gen[slot] + 1) & 0x7fffffffu) | 1;
	t->free[t->nfree++] = slot;
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
	slot_free(t, SLOT(i->nodeid));
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
	t->cap = 1024;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	t->gen = calloc(t->cap, sizeof(*t->gen));
	t->free = calloc(t->cap, sizeof(*t->free));
	t->hash = calloc(1024, sizeof(*t->hash));
	root = calloc(1, sizeof(*root));
	if (!t->slots || !t->gen || !t->free || !t->hash || !root) {
		free(root);
		fs_inodes_fini(t);
		return -ENOMEM;
	}
	t->hmask = 1023;
	for (uint32_t k = 0; k < t->cap; k++)
		t->gen[k] = random_gen();
	t->max_inodes = max_inodes;
	pthread_mutex_init(&t->lock, NULL);
	/* Slot 0 is never used (nodeid 0 means "none" in FUSE); the root is
	 * slot 1 with generation 0: nodeid FUSE_ROOT_ID. */
	t->gen[ROOT_SLOT] = 0;
	t->nslots = 2;
	root->fd = root_fd;
	root->dev = st.st_dev;
	root->ino = st.st_ino;
	root->type = S_IFDIR;
	root->nodeid = FUSE_ROOT_ID;
	root->nlookup = 1;
	root->refs = 1;
	t->slots[ROOT_SLOT] = root;
	t->hash[hash_key(root->dev, root->ino) & t->hmask] = root;
	t->count = 1;
	return 0;
}

void fs_inodes_fini(struct fs_inodes *t)
{
	if (t->slots) {
		for (uint32_t k = 1; k < t->nslots; k++) {
			struct fs_inode *i = t->slots[k];
			if (i) {
				close(i->fd);
				free(i);
			}
		}
		pthread_mutex_destroy(&t->lock);
	}
	free(t->slots);
	free(t->gen);
	free(t->free);
	free(t->hash);
	memset(t, 0, sizeof(*t));
}

struct fs_inode *fs_inode_get(struct fs_inodes *t, uint64_t nodeid)
{
	uint32_t slot = SLOT(nodeid);
	struct fs_inode *i = NULL;

	pthread_mutex_lock(&t->lock);
	if (slot && slot < t->nslots) {
		i = t->slots[slot];
		if (i && i->nodeid == nodeid)
			i->refs++;
		else
			i = NULL;
	}
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
	uint32_t slot = slot_alloc(t);
	i = slot ? calloc(1, sizeof(*i)) : NULL;
	if (!i) {
		if (slot)
			slot_free(t, slot);
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return -ENOMEM;
	}
	i->fd = fd;
	i->dev = st->st_dev;
	i->ino = st->st_ino;
	i->type = st->st_mode & S_IFMT;
	i->nodeid = (uint64_t)t->gen[slot] << 32 | slot;
	i->nlookup = 1;
	i->refs = 1;
	uint32_t k = hash_key(i->dev, i->ino) & t->hmask;
	i->hnext = t->hash[k];
	t->hash[k] = i;
	t->slots[slot] = i;
	t->count++;
	ret = (int64_t)i->nodeid;
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void fs_inode_forget(struct fs_inodes *t, uint64_t nodeid, uint64_t n)
{
	uint32_t slot = SLOT(nodeid);

	pthread_mutex_lock(&t->lock);
	if (slot > ROOT_SLOT && slot < t->nslots) {
		struct fs_inode *i = t->slots[slot];
		if (i && i->nodeid == nodeid) {
			if (n >= i->nlookup)
				inode_drop_locked(t, i);
			else
				i->nlookup -= n;
		}
	}
	/* The root is never forgotten: the guest holds it for the mount. */
	pthread_mutex_unlock(&t->lock);
}

void fs_inodes_forget_all(struct fs_inodes *t)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t k = ROOT_SLOT + 1; k < t->nslots; k++)
		if (t->slots[k])
			inode_drop_locked(t, t->slots[k]);
	if (t->slots[ROOT_SLOT])
		t->slots[ROOT_SLOT]->nlookup = 1;
	pthread_mutex_unlock(&t->lock);
}

uint32_t fs_inodes_count(struct fs_inodes *t)
{
	pthread_mutex_lock(&t->lock);
	uint32_t n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
