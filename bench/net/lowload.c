/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-net-lowload: back-end CPU per frame at a fixed, low frame rate.
 *
 * A virtio-net driver on libvhu-frontend connects to a vhost-user-net back
 * end that returns what it receives (vhu-net --loopback, or DPDK testpmd's
 * net_vhost port with io forwarding), sends RATE frames/s of LEN bytes on
 * the tx queue (paced by the clock, not by completions) and takes them back
 * from the rx queue.  It behaves like an interrupt-driven guest: it sleeps
 * in ppoll() on the rx call eventfd until the next frame is due, kicks only
 * when the device asks for kicks (EVENT_IDX), re-arms rx interrupts after
 * each drain and reaps tx completions lazily (tx interrupts stay off, as
 * Linux's delayed tx callbacks).  The back end's CPU time (every thread,
 * from /proc/<pid>/task/<tid>/schedstat in ns, and utime + stime from
 * /proc/<pid>/stat as a cross-check) over the measured window divided by
 * the frames sent in it is the CPU per frame; then the frames still on
 * their way are waited for, and those that never came back are "lost".
 *
 * Output: one line of "key value" pairs (see print_result()).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"
#include "vhu/frontend.h"

#define RXQ        0
#define TXQ        1
#define RX_BUF     2048u
#define MAX_LEN    1514u
#define HDR_LEN    12u /* virtio_net_hdr_mrg_rxbuf: VERSION_1 */
#define MAX_BURST  64u /* frames sent at once when the sender fell behind */
#define DRAIN_MS   2000
#define CONNECT_MS 3000

struct opts {
	const char *sock;
	double rate, dur, warm;
	unsigned len, qsize;
	pid_t pid;
	bool log; /* dirty logging on, as during a live migration */
};

struct counts {
	uint64_t sent, received, kicks, wakeups;
};

struct ll {
	struct vhuf *f;
	struct opts o;
	uint64_t *tx_free; /* stack of free tx buffer gpas */
	unsigned ntx_free;
	struct counts c;
	atomic_bool done; /* stops the -L log thread */
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: vhu-net-lowload -s SOCKET -r RATE [OPTIONS]\n"
	             "Send RATE frames/s through a vhost-user-net loopback back end and report\n"
	             "the back end's CPU time per frame.\n\n"
	             "  -s PATH   back end's vhost-user socket\n"
	             "  -r RATE   frames per second (1..1000000)\n"
	             "  -d SEC    measured seconds (default 5)\n"
	             "  -w SEC    warm-up seconds (default 1)\n"
	             "  -l LEN    frame bytes without the virtio header, 60..1514 (default 64)\n"
	             "  -q N      ring size, power of two 64..1024 (default 256)\n"
	             "  -p PID    back-end process (default: the socket's owner, SO_PEERCRED)\n"
	             "  -L        dirty logging on, as during a live migration: a log region,\n"
	             "            VHOST_F_LOG_ALL, VRING_F_LOG, the log collected every 100 ms\n"
	             "  -h        this help\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	char *end;
	int c;

	*o = (struct opts){.dur = 5, .warm = 1, .len = 64, .qsize = 256};
	while ((c = getopt(argc, argv, "s:r:d:w:l:q:p:Lh")) != -1) {
		errno = 0;
		switch (c) {
		case 's':
			o->sock = optarg;
			break;
		case 'r':
			o->rate = strtod(optarg, &end);
			break;
		case 'd':
			o->dur = strtod(optarg, &end);
			break;
		case 'w':
			o->warm = strtod(optarg, &end);
			break;
		case 'l':
			o->len = (unsigned)strtoul(optarg, &end, 10);
			break;
		case 'q':
			o->qsize = (unsigned)strtoul(optarg, &end, 10);
			break;
		case 'p':
			o->pid = (pid_t)strtol(optarg, &end, 10);
			break;
		case 'L':
			o->log = true;
			continue;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
		if (c != 's' && (errno || *end || end == optarg))
			return -EINVAL;
	}
	if (optind != argc || !o->sock || !(o->rate >= 1 && o->rate <= 1e6) || !(o->dur > 0) ||
	    !(o->warm >= 0) || o->len < 60 || o->len > MAX_LEN || o->qsize < 64 ||
	    o->qsize > 1024 || (o->qsize & (o->qsize - 1)) || o->pid < 0)
		return -EINVAL;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Sum of the CPU time of every live thread of pid, ns (schedstat), or -1. */
static int64_t proc_sched_ns(pid_t pid)
{
	char path[64];
	int64_t sum = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p[320];
		unsigned long long ns;
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		fp = fopen(p, "r");
		if (!fp)
			continue; /* the thread just exited */
		if (fscanf(fp, "%llu", &ns) == 1)
			sum += (int64_t)ns;
		fclose(fp);
	}
	closedir(d);
	return sum;
}

/* ---- the driver ------------------------------------------------------- */

static int setup(struct ll *l)
{
	const uint64_t want = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |
	                      VHU_BIT(VIRTIO_NET_F_MRG_RXBUF);
	struct vhuf_opts fo = {.mem_size = 64u << 20, .connect_timeout_ms = CONNECT_MS};
	uint64_t offered;
	int r;

	r = vhuf_connect(&l->f, l->o.sock, &fo);
	if (r == 0)
		r = vhuf_get_u64(l->f, VHU_REQ_GET_FEATURES, &offered);
	if (r < 0)
		return r;
	if ((offered & VHU_BIT(VHU_F_VERSION_1)) == 0)
		return -ENOTSUP; /* the header length below assumes VERSION_1 */
	/* REPLY_ACK and MQ as QEMU asks them (MQ: the back end may insist). */
	r = vhuf_negotiate(l->f, want & offered,
	                   VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_CONFIG) |
	                       (l->o.log ? VHU_BIT(VHU_PF_LOG_SHMFD) : 0));
	if (r == 0)
		r = vhuf_queue_setup(l->f, RXQ, l->o.qsize);
	if (r == 0)
		r = vhuf_queue_setup(l->f, TXQ, l->o.qsize);
	if (r == 0 && l->o.log)
		r = vhuf_log_start(l->f);
	return r;
}

/* -L: collect the dirty log every 100 ms, as a migrating VMM does. */
static void *log_thread(void *arg)
{
	struct ll *l = arg;

	while (!atomic_load(&l->done)) {
		usleep(100 * 1000);
		vhuf_log_sync(l->f);
	}
	return NULL;
}

static int post_rx(struct ll *l, uint64_t gpa)
{
	struct vhuf_buf b = {.gpa = gpa, .len = RX_BUF, .write = true};

	return vhuf_submit(l->f, RXQ, &b, 1, false, (void *)(uintptr_t)gpa);
}

/* Fill the rx ring and make the tx buffers: header (all zero: no offload)
 * + an Ethernet frame to a locally administered unicast address. */
static int make_buffers(struct ll *l)
{
	static const uint8_t eth[14] = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00};

	for (unsigned i = 0; i < l->o.qsize; i++) {
		uint64_t gpa = vhuf_alloc(l->f, RX_BUF, 64);
		if (gpa == UINT64_MAX || post_rx(l, gpa) < 0)
			return -ENOMEM;
	}
	l->tx_free = calloc(l->o.qsize, sizeof(*l->tx_free));
	if (!l->tx_free)
		return -ENOMEM;
	for (unsigned i = 0; i < l->o.qsize; i++) {
		uint64_t gpa = vhuf_alloc(l->f, HDR_LEN + l->o.len, 64);
		uint8_t *p = gpa == UINT64_MAX ? NULL : vhuf_ptr(l->f, gpa);
		if (!p)
			return -ENOMEM;
		memcpy(p + HDR_LEN, eth, sizeof(eth));
		l->tx_free[l->ntx_free++] = gpa;
	}
	return vhuf_kick_force(l->f, RXQ) < 0 ? -EIO : 0;
}

/* Take back completed tx buffers. */
static int reap_tx(struct ll *l)
{
	void *cookie;
	uint32_t len;
	int r;

	while ((r = vhuf_get_used(l->f, TXQ, &cookie, &len)) == 1)
		l->tx_free[l->ntx_free++] = (uint64_t)(uintptr_t)cookie;
	return r;
}

static int send_one(struct ll *l)
{
	if (l->ntx_free == 0 && reap_tx(l) < 0)
		return -EIO;
	if (l->ntx_free == 0)
		return 0; /* ring full: the back end is not keeping up; retry later */
	uint64_t gpa = l->tx_free[--l->ntx_free];
	struct vhuf_buf b = {.gpa = gpa, .len = HDR_LEN + l->o.len};
	if (vhuf_submit(l->f, TXQ, &b, 1, false, (void *)(uintptr_t)gpa) < 0) {
		l->ntx_free++;
		return 0;
	}
	l->c.sent++;
	return 1;
}

/* Take every received frame and give its buffer back.  Returns frames. */
static int drain_rx(struct ll *l)
{
	void *cookie;
	uint32_t len;
	int r, n = 0;

	while ((r = vhuf_get_used(l->f, RXQ, &cookie, &len)) == 1) {
		if (len >= HDR_LEN + 14)
			l->c.received++;
		if (post_rx(l, (uint64_t)(uintptr_t)cookie) < 0)
			return -EIO;
		n++;
	}
	if (r < 0)
		return r;
	if (n && vhuf_kick(l->f, RXQ) < 0)
		return -EIO;
	return n;
}

static void clear_eventfd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
}

/* Run until `until` (ns, monotonic), sending on schedule from *next. */
static int run(struct ll *l, uint64_t until, uint64_t *next, uint64_t period)
{
	struct pollfd pfd[2] = {{.fd = vhuf_call_fd(l->f, RXQ), .events = POLLIN},
	                        {.fd = vhuf_call_fd(l->f, TXQ), .events = POLLIN}};

	for (;;) {
		uint64_t t = now_ns();
		unsigned burst = 0;
		int k = 1; /* 0: the tx ring was full */

		if (t >= until)
			return 0;
		while (*next <= t && burst < MAX_BURST && (k = send_one(l)) > 0) {
			*next += period;
			burst++;
		}
		if (k < 0)
			return -EIO;
		if (burst) {
			int kicked = vhuf_kick(l->f, TXQ);
			if (kicked < 0)
				return -EIO;
			l->c.kicks += (uint64_t)kicked;
		}
		if (*next + 1000000000u < t) /* hopelessly behind: do not catch up later */
			*next = t;
		if (l->ntx_free < l->o.qsize / 2 && reap_tx(l) < 0)
			return -EIO;
		if (drain_rx(l) < 0)
			return -EIO;
		t = now_ns();
		uint64_t wake = *next < until ? *next : until;
		struct timespec ts = {0, 0};
		if (k == 0) /* tx ring full: the back end is behind, do not spin */
			ts.tv_nsec = 1000000;
		else if (wake > t)
			ts = (struct timespec){(time_t)((wake - t) / 1000000000u),
			                       (long)((wake - t) % 1000000000u)};
		if (ppoll(pfd, 2, &ts, NULL) > 0) {
			l->c.wakeups++;
			if (pfd[0].revents)
				clear_eventfd(pfd[0].fd);
			if (pfd[1].revents)
				clear_eventfd(pfd[1].fd);
		}
		if ((pfd[0].revents | pfd[1].revents) & (POLLERR | POLLHUP | POLLNVAL))
			return -EIO;
	}
}

/* After sending stops: wait (bounded) for the frames still on their way. */
static void drain_tail(struct ll *l)
{
	uint64_t until = now_ns() + (uint64_t)DRAIN_MS * 1000000u;

	while (l->c.received < l->c.sent && now_ns() < until) {
		if (drain_rx(l) < 0)
			return;
		vhuf_wait_call(l->f, RXQ, 10);
	}
}

/* CPU per frame: over the frames sent in the window (each of which the
 * back end handled; lost says if some never came back). */
static void print_result(const struct ll *l, pid_t pid, double window, const struct counts *c,
                         uint64_t lost, int64_t sched_ns, int64_t tick_us, int64_t ctxsw)
{
	char comm[32];
	double frames = (double)c->sent;

	proc_comm(pid, comm, sizeof(comm));
	printf("rate %.0f len %u window_s %.3f sent %" PRIu64 " received %" PRIu64 " lost %" PRIu64
	       " achieved_pps %.0f backend_pid %d backend %s cpu_us %.0f cpu_us_per_frame %.3f "
	       "tick_cpu_us %" PRId64 " ctxsw_per_frame %.3f kicks_per_frame %.3f dirty_log %d\n",
	       l->o.rate, l->o.len, window, c->sent, c->received, lost, frames / window, (int)pid,
	       comm[0] ? comm : "?", (double)sched_ns / 1e3,
	       frames > 0 ? (double)sched_ns / 1e3 / frames : 0.0, tick_us,
	       frames > 0 ? (double)ctxsw / frames : 0.0,
	       frames > 0 ? (double)c->kicks / frames : 0.0, l->o.log ? 1 : 0);
}

int main(int argc, char **argv)
{
	struct ll l = {0};
	int r;

	if (parse_opts(argc, argv, &l.o) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_TIMERSLACK, 1UL); /* wake on time at 100k frames/s */
	r = setup(&l);
	if (r == 0)
		r = make_buffers(&l);
	if (r < 0) {
		fprintf(stderr, "vhu-net-lowload: set-up with %s failed: %s\n", l.o.sock,
		        strerror(-r));
		if (l.f)
			vhuf_close(l.f);
		free(l.tx_free);
		return 1;
	}
	pthread_t lt;
	if (l.o.log && pthread_create(&lt, NULL, log_thread, &l)) {
		fprintf(stderr, "vhu-net-lowload: cannot start the log thread\n");
		return 1;
	}
	pid_t pid = l.o.pid ? l.o.pid : peer_pid(vhuf_sock(l.f));
	uint64_t period = (uint64_t)(1e9 / l.o.rate), next = now_ns();

	r = run(&l, next + (uint64_t)(l.o.warm * 1e9), &next, period);
	struct counts c0 = l.c;
	int64_t s0 = pid > 0 ? proc_sched_ns(pid) : -1, u0 = pid > 0 ? proc_cpu_us(pid) : -1;
	int64_t x0 = pid > 0 ? proc_ctxsw(pid) : -1;
	uint64_t t0 = now_ns();
	if (r == 0)
		r = run(&l, t0 + (uint64_t)(l.o.dur * 1e9), &next, period);
	/* The window is the sending time: a polling back end burns CPU
	 * whatever comes, so waiting for stragglers inside it would charge
	 * that time to the frames.  The window's last frames cost a back end
	 * that sleeps a few microseconds after it: one frame in thousands. */
	uint64_t t1 = now_ns();
	int64_t s1 = pid > 0 ? proc_sched_ns(pid) : -1, u1 = pid > 0 ? proc_cpu_us(pid) : -1;
	int64_t x1 = pid > 0 ? proc_ctxsw(pid) : -1;
	struct counts d = {.sent = l.c.sent - c0.sent,
	                   .kicks = l.c.kicks - c0.kicks,
	                   .wakeups = l.c.wakeups - c0.wakeups};
	drain_tail(&l); /* then count what came back (lost = sent - received) */
	if (l.o.log) {
		atomic_store(&l.done, true);
		pthread_join(lt, NULL);
	}
	d.received = l.c.received - c0.received;
	uint64_t lost = l.c.sent > l.c.received ? l.c.sent - l.c.received : 0;
	if (r < 0 || pid <= 0 || s0 < 0 || s1 < 0) {
		fprintf(stderr, "vhu-net-lowload: %s\n",
		        r < 0 ? "the back end went away or broke the rings"
		              : "cannot read the back end's CPU time (-p PID)");
		vhuf_close(l.f);
		free(l.tx_free);
		return 1;
	}
	print_result(&l, pid, (double)(t1 - t0) / 1e9, &d, lost, s1 - s0, u1 - u0, x1 - x0);
	vhuf_close(l.f);
	free(l.tx_free);
	return d.received ? 0 : 1;
}
