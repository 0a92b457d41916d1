/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster connections of the rbd engine: one per distinct (configuration
 * file, user, options) in the process.  A rados handle brings its own
 * messenger, io_context and timer threads, a monitor session and a copy of
 * the OSD map; a process serving many disks of one cluster would pay that
 * per disk.  Disks whose specifications name the same three share one
 * handle (librados is thread-safe; each disk keeps its own I/O context and
 * image handle).  What sharing costs: the cluster sees one client, so
 * blocklisting it (a lock broken after the process stopped answering) fails
 * every disk of the process at once.  A disk that must stay apart gives an
 * option of its own (any Ceph option, e.g. `:client_mount_timeout=31`).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbd_cluster.h"

struct rbd_cluster {
	struct rbd_cluster *next;
	rados_t h;
	unsigned refs;
	char key[];
};

static pthread_mutex_t clusters_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rbd_cluster *clusters;

int rbd_say(char *err, size_t errlen, int rc, const char *fmt, const char *arg)
{
	char what[256];
	snprintf(what, sizeof(what), fmt, arg);
	snprintf(err, errlen, "rbd: %s: %s", what, strerror(rc < 0 ? -rc : rc));
	return rc < 0 ? rc : -rc;
}

/* Length-prefixed fields, so that no value can pass for another split. */
static void key_field(FILE *f, const char *s)
{
	if (s)
		fprintf(f, "%zu:%s", strlen(s), s);
	else
		fputc('-', f);
}

static char *make_key(const struct blk_spec *sp)
{
	char *key = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&key, &len);
	if (!f)
		return NULL;
	key_field(f, sp->rbd.conf);
	key_field(f, sp->rbd.id);
	for (unsigned i = 0; i < sp->rbd.nopts; i++) {
		key_field(f, sp->rbd.opts[i].key);
		key_field(f, sp->rbd.opts[i].value);
	}
	if (fclose(f) != 0) {
		free(key);
		return NULL;
	}
	return key;
}

static int connect_new(const struct blk_spec *sp, rados_t *out, char *err, size_t errlen)
{
	rados_t h;
	int rc = rados_create(&h, sp->rbd.id);
	if (rc < 0)
		return rbd_say(err, errlen, rc, "cannot create a cluster handle for user '%s'",
		               sp->rbd.id ? sp->rbd.id : "admin");
	/* A cluster that does not answer fails the start in 30 s, not
	 * Ceph's default 300 s (the conf file or the spec may say otherwise). */
	rados_conf_set(h, "client_mount_timeout", "30");
	rc = rados_conf_read_file(h, sp->rbd.conf);
	if (rc < 0 && sp->rbd.conf) {
		rbd_say(err, errlen, rc, "cannot read the configuration file '%s'", sp->rbd.conf);
		goto fail;
	}
	for (unsigned i = 0; i < sp->rbd.nopts; i++) {
		rc = rados_conf_set(h, sp->rbd.opts[i].key, sp->rbd.opts[i].value);
		if (rc < 0) {
			rbd_say(err, errlen, rc, "option '%s'", sp->rbd.opts[i].key);
			goto fail;
		}
	}
	rados_conf_parse_env(h, NULL); /* CEPH_ARGS, as the ceph tools */
	rc = rados_connect(h);
	if (rc < 0) {
		rbd_say(err, errlen, rc, "cannot connect to the cluster (configuration %s)",
		        sp->rbd.conf ? sp->rbd.conf : "from Ceph's default places");
		goto fail;
	}
	*out = h;
	return 0;
fail:
	rados_shutdown(h);
	return rc;
}

int rbd_cluster_get(const struct blk_spec *sp, rados_t *out, char *err, size_t errlen)
{
	char *key = make_key(sp);
	int rc = 0;
	if (!key)
		return -ENOMEM;
	pthread_mutex_lock(&clusters_lock);
	struct rbd_cluster *c = clusters;
	while (c && strcmp(c->key, key) != 0)
		c = c->next;
	if (c) {
		c->refs++;
		vhu_log(VHU_LOG_INFO,
		        "vhu-blk: rbd: image '%s' shares the cluster connection of an earlier disk "
		        "(same configuration, user and options; %u disks on it)",
		        sp->rbd.image, c->refs);
	} else {
		size_t klen = strlen(key) + 1;
		c = malloc(sizeof(*c) + klen);
		rc = c ? connect_new(sp, &c->h, err, errlen) : -ENOMEM;
		if (rc < 0) {
			free(c);
			c = NULL;
		} else {
			memcpy(c->key, key, klen);
			c->refs = 1;
			c->next = clusters;
			clusters = c;
		}
	}
	if (c)
		*out = c->h;
	pthread_mutex_unlock(&clusters_lock);
	free(key);
	return rc;
}

void rbd_cluster_put(rados_t h)
{
	struct rbd_cluster **p, *c = NULL;
	pthread_mutex_lock(&clusters_lock);
	for (p = &clusters; *p; p = &(*p)->next)
		if ((*p)->h == h) {
			c = *p;
			break;
		}
	if (c && --c->refs == 0)
		*p = c->next;
	else
		c = NULL;
	pthread_mutex_unlock(&clusters_lock);
	if (c) {
		rados_shutdown(c->h); /* outside the lock: it joins librados's threads */
		free(c);
	}
}
