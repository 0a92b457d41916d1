/* SPDX-License-Identifier: Apache-2.0 */
/* The core suite's echo device and test environment (see echo.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "echo.h"
#include "vt.h"

/* ---- device ----------------------------------------------------------- */

static unsigned e_num_queues(void *dev)
{
	return ((struct echo *)dev)->nq;
}

static unsigned e_max_queue_size(void *dev)
{
	return ((struct echo *)dev)->max_qsize;
}

static uint64_t e_features(void *dev)
{
	return ((struct echo *)dev)->features;
}

static void e_acked_features(void *dev, uint64_t features)
{
	struct echo *e = dev;

	e->acked = features;
	atomic_fetch_add(&e->calls[OP_ACKED], 1);
}

static uint64_t e_protocol_features(void *dev)
{
	return ((struct echo *)dev)->pf;
}

static void e_reset_device(void *dev)
{
	struct echo *e = dev;

	atomic_store(&e->ch, NULL);
	atomic_fetch_add(&e->calls[OP_RESET], 1);
}

static void e_set_event_idx(void *dev, bool enabled)
{
	atomic_fetch_add(&((struct echo *)dev)->calls[OP_EVENT_IDX], 1);
}

static int e_get_config(void *dev, uint32_t offset, void *buf, uint32_t size)
{
	struct echo *e = dev;

	atomic_fetch_add(&e->calls[OP_GET_CONFIG], 1);
	if (e->cfg_any) {
		memset(buf, 0, size);
		return (int)size;
	}
	if (offset > ECHO_CFG_SIZE || size > ECHO_CFG_SIZE - offset)
		return -EINVAL;
	memcpy(buf, e->config + offset, size);
	return (int)size;
}

static int e_set_config(void *dev, uint32_t offset, const void *buf, uint32_t size)
{
	struct echo *e = dev;

	atomic_fetch_add(&e->calls[OP_SET_CONFIG], 1);
	if (e->cfg_any)
		return 0;
	if (offset > ECHO_CFG_SIZE || size > ECHO_CFG_SIZE - offset)
		return -EINVAL;
	memcpy(e->config + offset, buf, size);
	return 0;
}

static int e_update_memory(void *dev, struct vhu_mem *mem)
{
	struct echo *e = dev;

	atomic_store(&e->last_mem_regions, vhu_mem_region_count(mem));
	atomic_fetch_add(&e->calls[OP_UPDATE_MEM], 1);
	return 0;
}

static void e_set_backend_req_fd(void *dev, struct vhu_channel *ch)
{
	struct echo *e = dev;

	atomic_store(&e->ch, ch);
	atomic_fetch_add(&e->calls[OP_BACKEND_REQ], 1);
}

static int e_get_shared_object(void *dev, const uint8_t uuid[16])
{
	struct echo *e = dev;
	int fd;

	atomic_fetch_add(&e->calls[OP_SHARED_OBJ], 1);
	if (uuid[0] != 0x42)
		return -ENOENT;
	fd = memfd_create("echo-object", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, 8192) < 0) {
		close(fd);
		return -EIO;
	}
	return fd;
}

static int e_set_gpu_socket(void *dev, int fd)
{
	atomic_fetch_add(&((struct echo *)dev)->calls[OP_GPU], 1);
	close(fd);
	return 0;
}

static int e_queues_per_thread(void *dev, uint64_t *masks, unsigned max)
{
	struct echo *e = dev;

	if (!e->nthreads) {
		masks[0] = e->nq >= 64 ? ~0ull : (VHU_BIT(e->nq) - 1);
		return 1;
	}
	for (unsigned i = 0; i < e->nthreads && i < max; i++)
		masks[i] = e->masks[i];
	return (int)(e->nthreads < max ? e->nthreads : max);
}

static int e_exit_event(void *dev, unsigned thread)
{
	struct echo *e = dev;

	atomic_fetch_add(&e->calls[OP_EXIT_EVENT], 1);
	return thread < ECHO_MAX_THREADS ? e->exit_fds[thread] : -1;
}

/* Copy the readable part into the writable part; returns bytes written. */
static uint32_t echo_copy(const struct vhu_chain *c)
{
	static __thread uint8_t bounce[65536];
	size_t have = 0, put = 0;

	for (uint32_t i = 0; i < c->out_num && have < sizeof(bounce); i++) {
		size_t n = c->iov[i].iov_len;

		if (n > sizeof(bounce) - have)
			n = sizeof(bounce) - have;
		memcpy(bounce + have, c->iov[i].iov_base, n);
		have += n;
	}
	for (uint32_t i = c->out_num; i < c->out_num + c->in_num && put < have; i++) {
		size_t n = c->iov[i].iov_len;

		if (n > have - put)
			n = have - put;
		memcpy(c->iov[i].iov_base, bounce + put, n);
		put += n;
	}
	return (uint32_t)put;
}

/* Pop until empty; false when the ring failed. */
static bool drain(struct echo *e, struct vhu_vring *vr, unsigned q)
{
	struct iovec iov[64];
	struct vhu_chain c = {.iov = iov, .iov_max = 64};

	for (;;) {
		int r = vhu_vring_pop(vr, &c);

		if (r == 0)
			return true;
		if (r == -E2BIG) {
			vhu_vring_push(vr, &c, 0);
			continue;
		}
		if (r < 0) {
			atomic_fetch_add(&e->ioerrs, 1);
			return false;
		}
		if (atomic_load(&e->hold)) { /* in flight until the front end goes */
			atomic_fetch_add(&e->held, 1);
			continue;
		}
		vhu_vring_push(vr, &c, echo_copy(&c));
		if (q < ECHO_MAX_QUEUES)
			atomic_fetch_add(&e->done[q], 1);
	}
}

static void process(struct echo *e, struct vhu_vring *vr, unsigned q)
{
	do {
		vhu_vring_disable_notification(vr);
		if (!drain(e, vr, q))
			return;
		vhu_vring_notify(vr);
	} while (vhu_vring_enable_notification(vr));
	vhu_vring_notify(vr);
}

static void enter(struct echo *e)
{
	int in = atomic_fetch_add(&e->inside, 1) + 1;
	int max = atomic_load(&e->max_inside);

	while (in > max && !atomic_compare_exchange_weak(&e->max_inside, &max, in))
		;
	if (atomic_load(&e->rendezvous)) {
		/* Wait (bounded) for a callback on another thread. */
		for (int i = 0; i < 2000 && atomic_load(&e->inside) < 2; i++)
			usleep(1000);
		if (atomic_load(&e->inside) >= 2)
			atomic_fetch_add(&e->met, 1);
	} else {
		/* Widen the window in which an overlap would be seen. */
		for (int i = 0; i < 50; i++)
			sched_yield();
	}
}

static int e_handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                          unsigned nvrings, unsigned thread_id)
{
	struct echo *e = dev;
	uint64_t one = 1;

	atomic_fetch_add(&e->calls[OP_HANDLE], 1);
	enter(e);
	if (ev >= e->nq) {
		uint64_t v;

		/* Level-triggered: drain it or the worker spins. */
		if (e->listen_fd >= 0 && read(e->listen_fd, &v, sizeof(v)) < 0)
			v = 0;
		atomic_store(&e->listener_id, ev);
		atomic_store(&e->listener_thread, (int)thread_id);
		atomic_fetch_add(&e->listener_hits, 1);
	} else if (ev < nvrings) {
		if (ev < ECHO_MAX_QUEUES)
			atomic_store(&e->qthread[ev], (int)thread_id);
		process(e, vrings[ev], ev);
	}
	atomic_fetch_sub(&e->inside, 1);
	if (e->event_fd >= 0 && write(e->event_fd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

static int e_set_device_state_fd(void *dev, enum vhu_state_direction dir,
                                 enum vhu_state_phase phase, int fd, int *reply_fd)
{
	static const char state[] = "echo-state";

	atomic_fetch_add(&((struct echo *)dev)->calls[OP_STATE_FD], 1);
	if (dir == VHU_STATE_SAVE && write(fd, state, sizeof(state)) != sizeof(state)) {
		close(fd);
		return -EIO;
	}
	close(fd);
	*reply_fd = -1;
	return 0;
}

static int e_check_device_state(void *dev)
{
	struct echo *e = dev;

	atomic_fetch_add(&e->calls[OP_CHECK_STATE], 1);
	return e->state_status;
}

const struct vhu_backend_ops echo_ops = {
    .num_queues = e_num_queues,
    .max_queue_size = e_max_queue_size,
    .features = e_features,
    .acked_features = e_acked_features,
    .protocol_features = e_protocol_features,
    .reset_device = e_reset_device,
    .set_event_idx = e_set_event_idx,
    .get_config = e_get_config,
    .set_config = e_set_config,
    .update_memory = e_update_memory,
    .set_backend_req_fd = e_set_backend_req_fd,
    .get_shared_object = e_get_shared_object,
    .set_gpu_socket = e_set_gpu_socket,
    .queues_per_thread = e_queues_per_thread,
    .exit_event = e_exit_event,
    .handle_event = e_handle_event,
    .set_device_state_fd = e_set_device_state_fd,
    .check_device_state = e_check_device_state,
};

void echo_init(struct echo *e, unsigned nq)
{
	memset(e, 0, sizeof(*e));
	e->nq = nq;
	e->max_qsize = 1024;
	e->features = F_ALL | VHU_BIT(VHU_F_LOG_ALL);
	e->pf = ~0ull & (VHU_BIT(20) - 1); /* everything; the library masks */
	for (unsigned i = 0; i < ECHO_MAX_THREADS; i++)
		e->exit_fds[i] = -1;
	for (unsigned i = 0; i < ECHO_MAX_QUEUES; i++)
		atomic_store(&e->qthread[i], -1);
	atomic_store(&e->listener_id, -1);
	atomic_store(&e->listener_thread, -1);
	for (unsigned i = 0; i < ECHO_CFG_SIZE; i++)
		e->config[i] = (uint8_t)(0xa0 + i);
	e->event_fd = -1;
	e->listen_fd = -1;
}

void echo_destroy(struct echo *e) {}

/* ---- environment ------------------------------------------------------ */

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wait_fd(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

int wait_event(int fd, int ms)
{
	uint64_t v;

	if (!wait_fd(fd, ms))
		return 0;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* drained meanwhile: it did fire */
	}
	return 1;
}

bool echo_quiesce(struct echo *e, unsigned q, unsigned n)
{
	return WAIT_UNTIL(atomic_load(&e->done[q]) >= n && atomic_load(&e->inside) == 0, 3000);
}

bool is_nack(int ret)
{
	return ret < 0 && ret != -ETIMEDOUT && ret != -ECONNRESET && ret != -EPROTO &&
	       ret != -EPIPE;
}

struct vhuf *fe_open(struct tenv *t, const struct vhuf_opts *o, uint64_t features, uint64_t pf)
{
	struct vhuf_opts def = {.connect_timeout_ms = 3000};
	struct vhuf *f;
	int r;

	r = vhuf_connect(&f, t->path, o ? o : &def);
	if (r < 0) {
		fprintf(stderr, "# fe_open: connect: %s\n", strerror(-r));
		return NULL;
	}
	r = vhuf_negotiate(f, features, pf);
	if (r < 0) {
		fprintf(stderr, "# fe_open: negotiate: %s\n", strerror(-r));
		fe_close(t, f);
		return NULL;
	}
	return f;
}

void fe_close(struct tenv *t, struct vhuf *f)
{
	vhuf_close(f);
	t->conns++;
}

int fe_reconnect(struct tenv *t, struct vhuf *f, uint64_t features, uint64_t pf)
{
	int r = vhuf_reconnect(f, t->path);

	if (r)
		return r;
	t->conns++;
	return vhuf_negotiate(f, features, pf);
}

struct req {
	uint64_t out, in1, in2;
	uint32_t len, half;
};

static void fill(uint8_t *p, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7);
}

static int check_req(struct vhuf *f, const struct req *r, uint32_t got)
{
	uint8_t *out = vhuf_ptr(f, r->out), *a = vhuf_ptr(f, r->in1), *b = vhuf_ptr(f, r->in2);

	if (got != r->len) {
		fprintf(stderr, "# echo: used len %u, expected %u\n", got, r->len);
		return -EIO;
	}
	if (memcmp(out, a, r->half) || memcmp(out + r->half, b, r->len - r->half)) {
		fprintf(stderr, "# echo: data mismatch\n");
		return -EIO;
	}
	return 0;
}

static int submit_req(struct vhuf *f, unsigned q, struct req *r, unsigned i, bool indirect)
{
	struct vhuf_buf b[3] = {
	    {r->out, r->len, false},
	    {r->in1, r->half, true},
	    {r->in2, r->len - r->half, true},
	};

	return vhuf_submit(f, q, b, 3, indirect, (void *)(uintptr_t)(i + 1));
}

static int alloc_req(struct vhuf *f, struct req *r, unsigned i)
{
	r->len = 64 + (i * 37) % 700;
	r->half = r->len / 3;
	r->out = vhuf_alloc(f, r->len, 8);
	r->in1 = vhuf_alloc(f, r->half, 8);
	r->in2 = vhuf_alloc(f, r->len - r->half, 8);
	if (r->out == UINT64_MAX || r->in1 == UINT64_MAX || r->in2 == UINT64_MAX)
		return -ENOMEM;
	fill(vhuf_ptr(f, r->out), r->len, i);
	return 0;
}

/* Take every used entry; counts completions. */
static int reap(struct vhuf *f, unsigned q, struct req *rs, unsigned n, unsigned *comp)
{
	void *cookie;
	uint32_t len;
	int r, got = 0;

	while ((r = vhuf_get_used(f, q, &cookie, &len)) == 1) {
		uintptr_t i = (uintptr_t)cookie;

		if (i == 0 || i > n)
			return -EIO;
		r = check_req(f, &rs[i - 1], len);
		if (r < 0)
			return r;
		(*comp)++;
		got++;
	}
	return r < 0 ? r : got;
}

int fe_io(struct vhuf *f, unsigned q, unsigned n)
{
	bool ind_ok = vhuf_features(f) & VHU_BIT(VHU_F_RING_INDIRECT_DESC);
	struct req *rs = calloc(n, sizeof(*rs));
	unsigned sub = 0, comp = 0;
	int ret = 0;

	if (!rs)
		return -ENOMEM;
	for (unsigned i = 0; i < n && ret == 0; i++)
		ret = alloc_req(f, &rs[i], i);
	while (ret == 0 && comp < n) {
		while (sub < n) {
			int h = submit_req(f, q, &rs[sub], sub, ind_ok && (sub & 1));

			if (h == -ENOSPC)
				break;
			if (h < 0) {
				ret = h;
				break;
			}
			sub++;
		}
		if (ret < 0)
			break;
		vhuf_kick(f, q);
		ret = reap(f, q, rs, n, &comp);
		if (ret == 0 && comp < n && !vhuf_wait_call(f, q, 3000))
			ret = -ETIMEDOUT;
		else if (ret > 0)
			ret = 0;
	}
	if (ret < 0)
		fprintf(stderr, "# fe_io q%u: %d of %u done: %s\n", q, comp, n, strerror(-ret));
	free(rs);
	return ret;
}

int fe_submit_n(struct vhuf *f, unsigned q, unsigned n, uint32_t len, bool indirect, uint64_t *out,
                uint64_t *in)
{
	for (unsigned i = 0; i < n; i++) {
		struct vhuf_buf b[2];

		out[i] = vhuf_alloc(f, len, 8);
		in[i] = vhuf_alloc(f, len, 8);
		if (out[i] == UINT64_MAX || in[i] == UINT64_MAX)
			return -ENOMEM;
		memset(vhuf_ptr(f, out[i]), (int)(i + 1), len);
		b[0] = (struct vhuf_buf){out[i], len, false};
		b[1] = (struct vhuf_buf){in[i], len, true};
		if (vhuf_submit(f, q, b, 2, indirect && (i & 1), (void *)(uintptr_t)(i + 1)) < 0)
			return -ENOSPC;
	}
	return 0;
}

int fe_echo_one(struct vhuf *f, unsigned q, uint64_t out_gpa, void *out_host, uint64_t in_gpa,
                void *in_host, uint32_t len, bool indirect)
{
	struct vhuf_buf b[2] = {{out_gpa, len, false}, {in_gpa, len, true}};
	uint8_t *out = out_host ? out_host : vhuf_ptr(f, out_gpa);
	uint8_t *in = in_host ? in_host : vhuf_ptr(f, in_gpa);
	void *cookie;
	uint32_t got;
	int r;

	fill(out, len, len);
	memset(in, 0, len);
	r = vhuf_submit(f, q, b, 2, indirect, (void *)1);
	if (r < 0)
		return r;
	vhuf_kick(f, q);
	for (int i = 0; i < 2; i++) {
		r = vhuf_get_used(f, q, &cookie, &got);
		if (r != 0)
			break;
		vhuf_wait_call(f, q, 3000);
	}
	if (r == 0)
		r = vhuf_get_used(f, q, &cookie, &got);
	if (r < 0)
		return r;
	if (r == 0)
		return -ETIMEDOUT;
	if (got != len || memcmp(out, in, len))
		return -EIO;
	return 0;
}

/*
 * Shared mappings of this process: guest memory, dirty logs, inflight
 * areas -- everything the daemon maps for a front end.  Private anonymous
 * mappings are left out: malloc arenas and sanitizer heaps grow on their
 * own and say nothing about leaks (ASan/LSan report those).
 */
static int count_shared_maps(void)
{
	char line[512], perms[8];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %7s", perms) == 1 && perms[3] == 's')
			n++;
		if (!strchr(line, '\n')) { /* long line: skip its rest */
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				;
		}
	}
	fclose(f);
	return n;
}

static char *read_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	size_t cap = 1 << 16, len = 0, n;
	char *buf = malloc(cap);

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	buf[len] = 0;
	fclose(f);
	return buf;
}

/* Print the mappings that were not there at the baseline. */
static void diff_maps(const struct tenv *t)
{
	char *now = read_maps(), *save = NULL;

	if (!now || !t->base_map_text) {
		free(now);
		return;
	}
	for (char *l = strtok_r(now, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strstr(l, "-s ") && !strstr(t->base_map_text, l))
			fprintf(stderr, "#   new map: %s\n", l);
	free(now);
}

static void list_fds(void)
{
	char p[64], target[256];

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;

		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		n = readlink(p, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = 0;
		fprintf(stderr, "#   fd %d -> %s\n", fd, target);
	}
}

bool tenv_at_baseline(struct tenv *t)
{
	int64_t deadline = now_ms() + 3000;
	int fds, maps;
	uint64_t c;

	for (;;) {
		c = vhu_daemon_connections(t->d);
		fds = vt_count_fds();
		maps = count_shared_maps();
		if (c >= t->conns && fds == t->base_fds && maps == t->base_maps)
			return true;
		if (now_ms() > deadline)
			break;
		usleep(2000);
	}
	fprintf(stderr, "# baseline: connections %llu/%llu fds %d/%d maps %d/%d\n",
	        (unsigned long long)c, (unsigned long long)t->conns, fds, t->base_fds, maps,
	        t->base_maps);
	if (maps != t->base_maps)
		diff_maps(t);
	if (fds != t->base_fds)
		list_fds();
	return false;
}

bool tenv_healthy(struct tenv *t)
{
	unsigned nq = t->dev.nq < 2 ? t->dev.nq : 2;
	struct vhuf *f = fe_open(t, NULL, F_ALL, PF_ALL);
	bool ok = f != NULL;

	for (unsigned q = 0; ok && q < nq; q++)
		ok = vhuf_queue_setup(f, q, 64) == 0;
	for (unsigned q = 0; ok && q < nq; q++)
		ok = fe_io(f, q, 40) == 0;
	if (f)
		fe_close(t, f);
	if (!ok)
		fprintf(stderr, "# healthy: fresh front end failed\n");
	return tenv_at_baseline(t) && ok;
}

static void *arena_thread(void *arg)
{
	pthread_barrier_t *b = arg;

	free(malloc(1000));
	pthread_barrier_wait(b);
	return NULL;
}

/* Tests start threads of their own; let glibc create the thread arenas
 * and cache the stacks now, so they are part of the baseline. */
static void warm_threads(void)
{
	pthread_barrier_t b;
	pthread_t th[4];
	unsigned n = 0;

	pthread_barrier_init(&b, NULL, 5);
	for (; n < 4; n++)
		if (pthread_create(&th[n], NULL, arena_thread, &b))
			break;
	if (n == 4)
		pthread_barrier_wait(&b);
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&b);
}

static int warm_up(struct tenv *t)
{
	unsigned nq = t->dev.nq < 2 ? t->dev.nq : 2;
	struct vhuf *f = fe_open(t, NULL, F_ALL, PF_ALL);
	int64_t deadline = now_ms() + 3000;
	int r = f ? 0 : -EIO;

	for (unsigned q = 0; r == 0 && q < nq; q++)
		r = vhuf_queue_setup(f, q, 64);
	for (unsigned q = 0; r == 0 && q < nq; q++)
		r = fe_io(f, q, 40);
	if (f)
		fe_close(t, f);
	while (r == 0 && vhu_daemon_connections(t->d) < t->conns) {
		if (now_ms() > deadline)
			r = -ETIMEDOUT;
		usleep(2000);
	}
	if (r < 0)
		fprintf(stderr, "# warm-up failed: %s\n", strerror(-r));
	warm_threads();
	return r;
}

/* Socket directories of environments a failed VT_REQUIRE left running:
 * removed at exit so failures leave no litter in /tmp. */
static char leftover[64][sizeof(((struct tenv *)0)->dir)];

static void remove_leftovers(void)
{
	char p[128];

	for (unsigned i = 0; i < 64; i++) {
		if (!leftover[i][0])
			continue;
		snprintf(p, sizeof(p), "%.63s/sock", leftover[i]);
		unlink(p);
		rmdir(leftover[i]);
	}
}

static void track_dir(const char *dir, bool add)
{
	static bool registered;

	if (!registered)
		registered = atexit(remove_leftovers) == 0;
	for (unsigned i = 0; i < 64; i++) {
		if (add && !leftover[i][0]) {
			strcpy(leftover[i], dir);
			return;
		}
		if (!add && !strcmp(leftover[i], dir)) {
			leftover[i][0] = 0;
			return;
		}
	}
}

int tenv_start(struct tenv *t, const struct vhu_daemon_config *cfg)
{
	int r;

	strcpy(t->dir, "/tmp/vhu-core-XXXXXX");
	if (!mkdtemp(t->dir))
		return -errno;
	snprintf(t->path, sizeof(t->path), "%s/sock", t->dir);
	track_dir(t->dir, true);
	t->conns = 0;
	t->base_map_text = NULL;
	r = vhu_daemon_new(&t->d, &echo_ops, &t->dev, cfg);
	if (r < 0) {
		rmdir(t->dir);
		track_dir(t->dir, false);
		return r;
	}
	r = vhu_daemon_start(t->d, t->path);
	if (r < 0) {
		vhu_daemon_free(t->d);
		rmdir(t->dir);
		track_dir(t->dir, false);
		return r;
	}
	/* Warm up (thread arenas, lazily created daemon state), then take
	 * the baseline once the daemon is done with that front end. */
	r = warm_up(t);
	if (r < 0) {
		tenv_stop(t);
		return r;
	}
	t->base_fds = vt_count_fds();
	t->base_maps = count_shared_maps();
	t->base_map_text = read_maps();
	return 0;
}

void tenv_stop(struct tenv *t)
{
	vhu_daemon_stop(t->d);
	vhu_daemon_wait(t->d);
	vhu_daemon_free(t->d);
	unlink(t->path);
	rmdir(t->dir);
	track_dir(t->dir, false);
	free(t->base_map_text);
	t->base_map_text = NULL;
	echo_destroy(&t->dev);
}

bool page_dirty(const uint8_t *map, uint64_t gpa)
{
	uint64_t page = gpa / 4096;

	return map[page / 8] & (1u << (page % 8));
}

uint8_t *fe_set_log_base(struct vhuf *f)
{
	struct vhu_log_msg lm = {.mmap_size = 4096, .mmap_offset = 0};
	struct vhu_msg *r = calloc(1, sizeof(*r));
	int fd = memfd_create("log", MFD_CLOEXEC), ret = -1;
	uint8_t *map = MAP_FAILED;

	if (r && fd >= 0 && ftruncate(fd, 4096) == 0)
		map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map != MAP_FAILED)
		ret = vhuf_request(f, VHU_REQ_SET_LOG_BASE, &lm, sizeof(lm), &fd, 1, false, r);
	if (ret != 0 || r->hdr.size != 8 || r->payload.u64 != 0) {
		fprintf(stderr, "# SET_LOG_BASE failed: %d (reply size %u, value %llu)\n", ret,
		        ret == 0 ? r->hdr.size : 0,
		        ret == 0 ? (unsigned long long)r->payload.u64 : 0ull);
		if (map != MAP_FAILED)
			munmap(map, 4096);
		map = NULL;
	}
	free(r);
	if (fd >= 0)
		close(fd);
	return map;
}
