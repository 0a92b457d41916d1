/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The core suite's test device and environment.
 *
 * "echo" copies each chain's readable bytes into its writable buffers.  It
 * counts every callback, records which worker thread served each queue and
 * which listener ids fired, and can check that callbacks never overlap
 * (lock modes).  A test environment runs a real daemon in this process on a
 * socket in a temporary directory; the baseline fd/mapping counts are taken
 * after one warm-up front end so that every later session can be checked to
 * leave nothing behind (fds, and shared mappings: guest memory, logs,
 * inflight areas).
 */
#ifndef CORE_ECHO_H
#define CORE_ECHO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "vhu/frontend.h"
#include "vhu/vhu.h"

#define ECHO_CFG_SIZE    64
#define ECHO_MAX_THREADS 8
#define ECHO_MAX_QUEUES  16

enum echo_op {
	OP_ACKED,
	OP_RESET,
	OP_EVENT_IDX,
	OP_GET_CONFIG,
	OP_SET_CONFIG,
	OP_UPDATE_MEM,
	OP_BACKEND_REQ,
	OP_SHARED_OBJ,
	OP_GPU,
	OP_EXIT_EVENT,
	OP_HANDLE,
	OP_STATE_FD,
	OP_CHECK_STATE,
	OP_N
};

struct echo {
	/* Configuration (set before the daemon starts). */
	unsigned nq;
	unsigned max_qsize;
	uint64_t features;
	uint64_t pf;
	unsigned nthreads; /* 0: library default */
	uint64_t masks[ECHO_MAX_THREADS];
	int exit_fds[ECHO_MAX_THREADS]; /* -1: none */
	atomic_bool rendezvous;         /* handle_event waits for a second one */
	atomic_bool hold;               /* pop chains but never complete them (slow I/O) */
	atomic_uint held;               /* chains popped while holding */
	int listen_fd;                  /* drained when a listener fires, -1 */
	bool cfg_any;                   /* config ops accept any range (the library must check) */

	/* State. */
	uint8_t config[ECHO_CFG_SIZE];
	atomic_uint calls[OP_N];
	uint64_t acked;
	_Atomic(struct vhu_channel *) ch;
	atomic_uint last_mem_regions;
	atomic_int qthread[ECHO_MAX_QUEUES]; /* last thread per queue, -1 */
	atomic_uint done[ECHO_MAX_QUEUES];   /* chains completed */
	atomic_uint ioerrs;                  /* pops that failed with -EIO */
	atomic_int listener_id, listener_thread;
	atomic_uint listener_hits;
	atomic_int inside, max_inside; /* concurrent handle_event */
	atomic_uint met;               /* rendezvous succeeded */
	int state_status;              /* check_device_state result */
	int event_fd;                  /* written on every handle_event */
};

extern const struct vhu_backend_ops echo_ops;

/* Defaults: nq queues, max 1024 entries, VERSION_1|EVENT_IDX|INDIRECT|
 * LOG_ALL, every protocol feature. */
void echo_init(struct echo *e, unsigned nq);
void echo_destroy(struct echo *e);

struct tenv {
	char dir[64];
	char path[128];
	struct vhu_daemon *d;
	struct echo dev;
	uint64_t conns; /* front ends closed so far */
	int base_fds, base_maps;
	char *base_map_text;
};

/* echo_init(&t->dev, nq) is done by the caller before (customise dev
 * in between).  Starts the daemon, runs a warm-up front end, takes the
 * baseline.  0 or -errno. */
int tenv_start(struct tenv *t, const struct vhu_daemon_config *cfg);
void tenv_stop(struct tenv *t);

#define PF_ALL                                                                                     \
	(VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_LOG_SHMFD) | VHU_BIT(VHU_PF_REPLY_ACK) |              \
	 VHU_BIT(VHU_PF_BACKEND_REQ) | VHU_BIT(VHU_PF_CONFIG) | VHU_BIT(VHU_PF_BACKEND_SEND_FD) |  \
	 VHU_BIT(VHU_PF_INFLIGHT_SHMFD) | VHU_BIT(VHU_PF_RESET_DEVICE) |                           \
	 VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS) | VHU_BIT(VHU_PF_STATUS) |                            \
	 VHU_BIT(VHU_PF_SHARED_OBJECT) | VHU_BIT(VHU_PF_DEVICE_STATE))
#define F_ALL                                                                                      \
	(VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |                                \
	 VHU_BIT(VHU_F_RING_INDIRECT_DESC))

/* Connect a front end and negotiate (features & offered, pf & offered).
 * NULL on failure (reported). */
struct vhuf *fe_open(struct tenv *t, const struct vhuf_opts *o, uint64_t features, uint64_t pf);
/* Close a front end and count it as a finished connection. */
void fe_close(struct tenv *t, struct vhuf *f);
/* Drop f's connection and connect again to t (the old one counts as
 * finished), then negotiate features and pf.  0 or -errno. */
int fe_reconnect(struct tenv *t, struct vhuf *f, uint64_t features, uint64_t pf);
/* Run n echo requests through queue q (chains of 1 readable + 1..2
 * writable buffers; every other one indirect if allowed) and check the
 * bytes.  0 or -errno. */
int fe_io(struct vhuf *f, unsigned q, unsigned n);
/* Queue n echo requests on q without kicking or waiting: request i reads
 * len bytes of value i + 1 from out[i] and writes them to in[i] (both
 * allocated here), cookie i + 1; every odd one indirect if `indirect`.
 * 0, -ENOMEM or -ENOSPC. */
int fe_submit_n(struct vhuf *f, unsigned q, unsigned n, uint32_t len, bool indirect, uint64_t *out,
                uint64_t *in);
/* Same with buffers at caller-chosen guest addresses (host pointers via
 * vhuf_ptr unless `out_host`/`in_host` given). */
int fe_echo_one(struct vhuf *f, unsigned q, uint64_t out_gpa, void *out_host, uint64_t in_gpa,
                void *in_host, uint32_t len, bool indirect);
/* Wait up to ms for fd to become readable. 1 = readable, 0 = timeout. */
int wait_fd(int fd, int ms);
/* Same for an eventfd, which is then drained. */
int wait_event(int fd, int ms);

/* A fresh front end does real I/O on two queues, then the process's fd and
 * shared-mapping counts return to the baseline.  Reports and returns false when
 * not. */
bool tenv_healthy(struct tenv *t);
/* Wait for the daemon to finish with every closed front end and for the
 * fd/map counts to reach the baseline (bounded). */
bool tenv_at_baseline(struct tenv *t);

int64_t now_ms(void);
/* Poll `cond` every millisecond for up to ms; evaluates to its last value. */
#define WAIT_UNTIL(cond, ms)                                                                       \
	({                                                                                         \
		int64_t wu_deadline_ = now_ms() + (ms);                                            \
		while (!(cond) && now_ms() < wu_deadline_)                                         \
			usleep(1000);                                                              \
		(cond);                                                                            \
	})

/* Wait until queue q completed n chains in total and no callback is
 * running, so every notification for them has been decided. */
bool echo_quiesce(struct echo *e, unsigned q, unsigned n);

/* A refusal as seen with REPLY_ACK: a negative result that is neither a
 * hang-up nor a timeout nor garbage. */
bool is_nack(int ret);

/* Whether the page of gpa is marked in the dirty log bitmap map (one bit a
 * 4 KiB page, as VHOST_USER_SET_LOG_BASE shares it). */
bool page_dirty(const uint8_t *map, uint64_t gpa);

/* Give f's back end a one-page dirty log (SET_LOG_BASE with a memfd; the
 * reply must be the 8-byte 0) and map it here.  The bitmap (munmap 4096
 * bytes when done), or NULL (reported on stderr). */
uint8_t *fe_set_log_base(struct vhuf *f);

#endif
