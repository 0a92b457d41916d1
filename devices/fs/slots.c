/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The numbering shared by the inode and open-file tables: an object is
 * named by id = generation << 32 | slot.  A slot's generation starts at a
 * random value below 2^31 (an id is a positive int64_t) and changes each
 * time the slot is freed, so an id the guest made up, or kept after giving
 * it back, names nothing.  Slot 0 is never used (nodeid and fh 0 mean
 * "none").  The caller locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fs.h"

static void random_gens(uint32_t *g, uint32_t n)
{
	if (getrandom(g, n * sizeof(*g), GRND_NONBLOCK) != (ssize_t)(n * sizeof(*g)))
		memset(g, 0, n * sizeof(*g));
	for (uint32_t k = 0; k < n; k++)
		g[k] = (g[k] & 0x7fffffffu) | 1;
}

int fs_slots_init(struct fs_slots *t, uint32_t cap)
{
	memset(t, 0, sizeof(*t));
	t->obj = calloc(cap, sizeof(*t->obj));
	t->gen = calloc(cap, sizeof(*t->gen));
	t->free = calloc(cap, sizeof(*t->free));
	if (!t->obj || !t->gen || !t->free) {
		fs_slots_fini(t);
		return -ENOMEM;
	}
	random_gens(t->gen, cap);
	t->cap = cap;
	t->n = 1;
	return 0;
}

void fs_slots_fini(struct fs_slots *t)
{
	free(t->obj);
	free(t->gen);
	free(t->free);
	memset(t, 0, sizeof(*t));
}

uint32_t fs_slots_alloc(struct fs_slots *t, void *obj)
{
	uint32_t slot;

	if (t->nfree) {
		slot = t->free[--t->nfree];
	} else {
		if (t->n == t->cap) {
			if (t->cap >= (1u << 30))
				return 0;
			uint32_t cap = t->cap * 2;
			void **o = realloc(t->obj, cap * sizeof(*o));
			if (!o)
				return 0;
			t->obj = o;
			uint32_t *g = realloc(t->gen, cap * sizeof(*g));
			if (!g)
				return 0;
			t->gen = g;
			uint32_t *f = realloc(t->free, cap * sizeof(*f));
			if (!f)
				return 0;
			t->free = f;
			memset(t->obj + t->cap, 0, (cap - t->cap) * sizeof(*o));
			random_gens(t->gen + t->cap, cap - t->cap);
			t->cap = cap;
		}
		slot = t->n++;
	}
	t->obj[slot] = obj;
	return slot;
}

void fs_slots_free(struct fs_slots *t, uint32_t slot)
{
	t->obj[slot] = NULL;
	t->gen[slot] = ((t->gen[slot] + 1) & 0x7fffffffu) | 1;
	t->free[t->nfree++] = slot;
}

void *fs_slots_get(const struct fs_slots *t, uint64_t id)
{
	uint32_t slot = (uint32_t)id;
	if (!slot || slot >= t->n || t->gen[slot] != (uint32_t)(id >> 32))
		return NULL;
	return t->obj[slot];
}
