/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to program.c (command line) and program_run.c (listening,
 * serving, signals): the program object behind include/vhu/program.h.
 */
#ifndef VHU_PROGRAM_PRIV_H
#define VHU_PROGRAM_PRIV_H

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

#include "internal.h"
#include "vhu/program.h"

/* One socket to serve and the daemon serving it. */
struct vhu_prog_sock {
	char *path;    /* --socket-path (owned), NULL for an --fd */
	int fd;        /* --fd, or the socket we listen on; -1 once handed over */
	int serve_fd;  /* what the serving thread hands the daemon */
	bool given_fd; /* fd came from --fd (the caller's until we serve it) */
	bool bound;    /* we created the socket file at path */
	dev_t dev;     /* ... and it is this inode */
	ino_t ino;
	char name[24]; /* "--fd N" */
	struct vhu_daemon *d;
	struct vhu_program *p;
	pthread_t thread;
	bool started;
	int result;
};

struct vhu_program {
	const struct vhu_program_info *info;
	const char *name;
	struct vhu_prog_sock *socks;
	unsigned nsocks, max_socks;
	unsigned verbose;
	bool error_printed; /* a callback printed its usage error */
	bool listened;
	bool client; /* --client: connect to the socket paths */
	sigset_t old_mask;
	int done_fd; /* eventfd: a serving thread finished */
};

/* program_run.c: close or remove what the sockets hold. */
void vhu_prog_socks_release(struct vhu_program *p);

#endif
