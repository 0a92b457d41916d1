/* SPDX-License-Identifier: Apache-2.0 */
/* The rbd engine's cluster connections, shared between disks, and its
 * error sentences (rbd_cluster.c). */
#ifndef VHU_BLK_RBD_CLUSTER_H
#define VHU_BLK_RBD_CLUSTER_H

#include <rados/librados.h>
#include <stddef.h>

#include "blk.h"

/*
 * A connected cluster handle for sp's configuration file, user and options:
 * the one an earlier disk of this process opened with the same three, or a
 * new one.  Any thread (serialised inside; a new connection may take up to
 * client_mount_timeout).  Returns 0 and *out, to be given back with
 * rbd_cluster_put(), or a negative errno with a sentence in err.
 */
int rbd_cluster_get(const struct blk_spec *sp, rados_t *out, char *err, size_t errlen);

/* Give back a handle from rbd_cluster_get(); the last user shuts it down.
 * The caller has closed its images and I/O contexts first. */
void rbd_cluster_put(rados_t h);

/* Write "rbd: <fmt with arg>: <strerror(rc)>" to err; returns rc as a
 * negative errno. */
int rbd_say(char *err, size_t errlen, int rc, const char *fmt, const char *arg);

#endif
