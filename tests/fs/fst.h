/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fixture of the vhu-fs tests: a daemon on a scratch share, a client
 * connected and past FUSE_INIT.
 */
#ifndef VHU_FST_H
#define VHU_FST_H

#include <dirent.h>

#include "fusec.h"
#include "vt.h"

struct fst {
	struct fst_env e;
	struct fusec c;
	bool up;
};

/* Open fds of process pid (-1 if unreadable). */
static inline int count_fds(pid_t pid)
{
	char path[64];
	int n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Start vhu-fs with args, connect with nreq request queues, INIT. */
static inline bool fst_up(struct fst *t, const char *const *args, unsigned nreq)
{
	memset(t, 0, sizeof(*t));
	int rc = fst_start(&t->e, args);
	if (rc < 0) {
		fprintf(stderr, "# fst_start: %s\n", strerror(-rc));
		fst_cleanup(&t->e);
		return false;
	}
	rc = fusec_connect(&t->c, t->e.sock, nreq, 256);
	if (rc == 0)
		rc = fusec_init(&t->c, FUSE_KERNEL_MINOR_VERSION,
		                FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES |
		                    FUSE_FLOCK_LOCKS | FUSE_HANDLE_KILLPRIV_V2 |
		                    FUSE_PARALLEL_DIROPS | FUSE_ATOMIC_O_TRUNC);
	if (rc < 0) {
		fprintf(stderr, "# connect/init: %s; daemon: %s\n", strerror(-rc),
		        fst_slurp(t->e.err));
		fusec_close(&t->c);
		fst_cleanup(&t->e);
		return false;
	}
	t->up = true;
	return true;
}

/* Disconnect, stop the daemon (it must exit 0) and clean up.  Returns the
 * daemon's exit status. */
static inline int fst_down(struct fst *t)
{
	fusec_close(&t->c);
	int rc = fst_stop(&t->e);
	if (rc != 0)
		fprintf(stderr, "# vhu-fs exit %d, stderr:\n%s\n", rc, fst_slurp(t->e.err));
	fst_cleanup(&t->e);
	t->up = false;
	return rc;
}

#endif
