/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hostile-front-end suite's environment: a real daemon in this process
 * with the core suite's echo device (tests/core/echo.h), and accounting
 * that counts what a leak would leave behind: open fds (/proc/self/fd)
 * and mappings of memfds (/proc/self/maps lines naming a memfd) — not all
 * mappings, since thread stacks and malloc arenas come and go.
 */
#ifndef VHU_HOSTILE_H
#define VHU_HOSTILE_H

#include <stdbool.h>
#include <stdint.h>

#include "echo.h"
#include "vt.h"

struct henv {
	struct tenv t;
	int base_fds, base_memfd_maps;
};

/* Daemon with nq queues (echo device), warmed up; baseline taken. */
int henv_start(struct henv *h, unsigned nq);
void henv_stop(struct henv *h);

/* Mappings of memfds in this process. */
/* Guest-memory (memfd) mappings of this process. */
#define h_count_memfd_maps() vt_count_maps_named(0, "/memfd:")

/* Wait (bounded) until the daemon finished every closed front end and fds
 * and memfd mappings are back at the baseline; reports and returns false
 * otherwise. */
bool h_at_baseline(struct henv *h);

/* The daemon is alive and serves a fresh front end doing real I/O on two
 * queues (or one), and the process is back at its baseline afterwards. */
bool h_healthy(struct henv *h);

/* Front end with every feature and protocol feature (REPLY_ACK included). */
struct vhuf *h_open(struct henv *h);
void h_close(struct henv *h, struct vhuf *f);

/* A memfd of `size` bytes / an eventfd (caller closes). */
int h_memfd(size_t size);
int h_eventfd(void);

/* Write raw bytes with `nfds` fds (borrowed) on a socket. 0 or -errno. */
int h_send_raw(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);

#endif
