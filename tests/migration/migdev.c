/* SPDX-License-Identifier: Apache-2.0 */
/* The migration suite's test device, environment and load (migdev.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "migdev.h"
#include "vt.h"

int64_t mig_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- device ------------------------------------------------------------ */

static unsigned d_num_queues(void *dev)
{
	return ((struct mig_dev *)dev)->nq;
}

static unsigned d_max_queue_size(void *dev)
{
	return 1024;
}

static uint64_t d_features(void *dev)
{
	return ((struct mig_dev *)dev)->features;
}

static uint64_t d_protocol_features(void *dev)
{
	return VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_REPLY_ACK) |
	       VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS) | VHU_BIT(VHU_PF_RARP) | VHU_BIT(VHU_PF_MTU);
}

/* Write the pattern of the request's sequence number into its whole
 * writable part; returns the bytes written. */
static uint64_t fill(const struct vhu_chain *c)
{
	uint64_t seq = 0, off = 0;

	if (c->out_num && c->iov[0].iov_len >= sizeof(seq))
		memcpy(&seq, c->iov[0].iov_base, sizeof(seq));
	for (uint32_t i = c->out_num; i < c->out_num + c->in_num; i++) {
		uint8_t *p = c->iov[i].iov_base;

		for (size_t k = 0; k < c->iov[i].iov_len; k++)
			p[k] = mig_pattern(seq, off + k);
		off += c->iov[i].iov_len;
	}
	return off;
}

/* Push c after fill(): report as the device is told to. */
static void push(struct mig_dev *m, struct vhu_vring *vr, const struct vhu_chain *c)
{
	uint64_t all = c->in_len, said = m->report == MIG_HONEST ? all : all / 2, off = 0;

	if (m->report == MIG_LIE_LOGGED) {
		for (uint32_t i = c->out_num; i < c->out_num + c->in_num; i++) {
			const struct iovec *v = &c->iov[i];
			uint64_t skip = off < said ? said - off : 0;

			if (skip < v->iov_len)
				vhu_vring_log_write(vr, (uint8_t *)v->iov_base + skip,
				                    v->iov_len - skip);
			off += v->iov_len;
		}
	}
	if (vhu_vring_push(vr, c, (uint32_t)said) == 0)
		atomic_fetch_add(&m->pushed, 1);
}

/* Pop everything available; complete now or hand to the thread. */
static void serve_queue(struct mig_dev *m, struct vhu_vring *vr)
{
	struct iovec iov[8];
	struct vhu_chain local = {.iov = iov, .iov_max = 8};

	if (vhu_vring_stopping(vr))
		atomic_fetch_add(&m->stop_seen, 1);
	for (;;) {
		struct vhu_chain *c = &local;
		struct mig_held *h = NULL;
		int r;

		if (m->complete != MIG_NOW) {
			pthread_mutex_lock(&m->lock);
			if (m->nheld == MIG_MAX_HELD) {
				pthread_mutex_unlock(&m->lock);
				break;
			}
			h = &m->held[m->nheld];
			h->c = (struct vhu_chain){.iov = h->iov, .iov_max = 8};
			c = &h->c;
		}
		r = vhu_vring_pop(vr, c);
		if (r == 1 && h) {
			h->vr = vr;
			h->mem = vhu_mem_ref(vhu_vring_mem(vr));
			h->done = false;
			m->nheld++;
			pthread_cond_signal(&m->cond);
		} else if (r == 1) {
			fill(c);
			push(m, vr, c);
		} else if (r == -E2BIG) {
			vhu_vring_push(vr, c, 0);
		}
		if (h)
			pthread_mutex_unlock(&m->lock);
		if (r == 1)
			atomic_fetch_add(&m->popped, 1);
		else if (r != -E2BIG)
			break;
	}
	vhu_vring_notify(vr);
}

/* The completion listener fired: push what the thread finished. */
static void push_done(struct mig_dev *m)
{
	struct vhu_vring *touched[MIG_MAX_QUEUES] = {0};
	uint64_t v;
	unsigned k = 0;

	if (read(m->done_fd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->nheld; i++) {
		struct mig_held *h = &m->held[i];

		if (!h->done) {
			m->held[k] = *h;
			m->held[k].c.iov = m->held[k].iov;
			k++;
			continue;
		}
		push(m, h->vr, &h->c);
		vhu_mem_unref(h->mem);
		touched[vhu_vring_index(h->vr) % MIG_MAX_QUEUES] = h->vr;
	}
	m->nheld = k;
	pthread_mutex_unlock(&m->lock);
	for (unsigned q = 0; q < MIG_MAX_QUEUES; q++)
		if (touched[q])
			vhu_vring_notify(touched[q]);
}

static int d_handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                          unsigned nvrings, unsigned thread_id)
{
	struct mig_dev *m = dev;

	if (ev < nvrings && ev < m->nq)
		serve_queue(m, vrings[ev]);
	else if (ev == m->nq)
		push_done(m);
	return 0;
}

static int d_send_rarp(void *dev, const uint8_t mac[6])
{
	struct mig_dev *m = dev;

	memcpy(m->rarp_mac, mac, 6);
	atomic_fetch_add(&m->rarps, 1);
	return 0;
}

static int d_set_mtu(void *dev, uint16_t mtu)
{
	struct mig_dev *m = dev;

	if (mtu > 9000)
		return -EINVAL; /* the device's own limit */
	m->mtu = mtu;
	atomic_fetch_add(&m->mtus, 1);
	return 0;
}

static void d_reset(void *dev)
{
	struct mig_dev *m = dev;

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->nheld; i++) /* the front end is gone: so are its chains */
		vhu_mem_unref(m->held[i].mem);
	m->nheld = 0;
	pthread_mutex_unlock(&m->lock);
}

#define MIG_OPS                                                                                    \
	.num_queues = d_num_queues, .max_queue_size = d_max_queue_size, .features = d_features,    \
	.protocol_features = d_protocol_features, .reset_device = d_reset,                         \
	.handle_event = d_handle_event

static const struct vhu_backend_ops mig_ops = {MIG_OPS};
static const struct vhu_backend_ops mig_net_ops = {MIG_OPS, .send_rarp = d_send_rarp,
                                                   .set_mtu = d_set_mtu};

/* Writes the buffers of held chains (as a disk or NIC would), then tells
 * the worker. */
static void *completion_thread(void *arg)
{
	struct mig_dev *m = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&m->lock);
	while (!m->quit) {
		bool any = false;

		for (unsigned i = 0; i < m->nheld && !any; i++)
			any = !m->held[i].done;
		if (!any || (m->complete == MIG_HOLD && !m->released)) {
			pthread_cond_wait(&m->cond, &m->lock);
			continue;
		}
		pthread_mutex_unlock(&m->lock);
		if (m->delay_ms)
			usleep(m->delay_ms * 1000);
		pthread_mutex_lock(&m->lock);
		for (unsigned i = 0; i < m->nheld; i++) {
			if (!m->held[i].done) {
				fill(&m->held[i].c);
				m->held[i].done = true;
			}
		}
		if (write(m->done_fd, &one, sizeof(one)) < 0)
			fprintf(stderr, "# mig: completion eventfd write failed\n");
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

void mig_dev_init(struct mig_dev *m, unsigned nq)
{
	memset(m, 0, sizeof(*m));
	m->nq = nq;
	m->features = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |
	              VHU_BIT(VHU_F_RING_INDIRECT_DESC) | VHU_BIT(VHU_F_RING_PACKED);
	m->done_fd = -1;
}

void mig_release(struct mig_dev *m)
{
	pthread_mutex_lock(&m->lock);
	m->released = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

int mig_env_start(struct mig_env *env, const struct vhu_daemon_config *cfg)
{
	struct mig_dev *m = &env->dev;
	int r;

	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->done_fd < 0)
		return -errno;
	strcpy(env->dir, "/tmp/vhu-mig-XXXXXX");
	if (!mkdtemp(env->dir))
		return -errno;
	snprintf(env->path, sizeof(env->path), "%s/sock", env->dir);
	r = vhu_daemon_new(&env->d, m->with_net_ops ? &mig_net_ops : &mig_ops, m, cfg);
	if (r == 0)
		r = vhu_daemon_add_listener(env->d, 0, m->done_fd, EPOLLIN, (uint16_t)m->nq);
	if (r == 0 && pthread_create(&m->thread, NULL, completion_thread, m) == 0)
		m->thread_on = true;
	if (r == 0)
		r = vhu_daemon_start(env->d, env->path);
	if (r < 0)
		fprintf(stderr, "# mig_env_start: %s\n", strerror(-r));
	return r;
}

void mig_env_stop(struct mig_env *env)
{
	struct mig_dev *m = &env->dev;

	if (env->d) {
		vhu_daemon_stop(env->d);
		vhu_daemon_wait(env->d);
		vhu_daemon_free(env->d);
		env->d = NULL;
	}
	if (m->thread_on) {
		pthread_mutex_lock(&m->lock);
		m->quit = true;
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
		m->thread_on = false;
	}
	if (m->done_fd >= 0)
		close(m->done_fd);
	m->done_fd = -1;
	unlink(env->path);
	rmdir(env->dir);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
}

struct vhuf *mig_fe_open(const char *path, unsigned nq, unsigned qsize, uint64_t features,
                         uint64_t pf, size_t mem)
{
	struct vhuf_opts o = {.connect_timeout_ms = 3000, .mem_size = mem};
	struct vhuf *f;
	int r = vhuf_connect(&f, path, &o);

	if (r < 0) {
		fprintf(stderr, "# connect: %s\n", strerror(-r));
		return NULL;
	}
	r = vhuf_negotiate(f, features, pf);
	for (unsigned q = 0; r == 0 && q < nq; q++)
		r = vhuf_queue_setup(f, q, qsize);
	if (r < 0) {
		fprintf(stderr, "# front end set-up: %s\n", strerror(-r));
		vhuf_close(f);
		return NULL;
	}
	return f;
}

/* ---- load ---------------------------------------------------------------- */

#define PAGE 4096u

struct mig_slot {
	uint64_t out, in; /* gpa: sequence number; writable pages */
	uint32_t in_len;
	uint64_t seq;
	bool busy;
};

struct qarg {
	struct mig_load *l;
	unsigned q;
};

static struct qarg qargs[MIG_MAX_QUEUES];

static bool check(struct mig_load *l, const struct mig_slot *s)
{
	const uint8_t *p = vhuf_ptr(l->f, s->in);

	for (uint32_t i = 0; i < s->in_len; i++)
		if (p[i] != mig_pattern(s->seq, i))
			return false;
	return true;
}

static int submit(struct mig_load *l, unsigned q, struct mig_slot *s, uint64_t seq)
{
	uint32_t half = s->in_len / 2;
	struct vhuf_buf b[3] = {
	    {s->out, 8, false}, {s->in, half, true}, {s->in + half, s->in_len - half, true}};
	int r;

	memcpy(vhuf_ptr(l->f, s->out), &seq, 8);
	s->seq = seq;
	r = vhuf_submit(l->f, q, b, 3, seq % 3 == 0, s);
	if (r >= 0)
		s->busy = true;
	else /* submit records it only for what it puts on the ring */
		vhuf_log_driver_write(l->f, s->out, 8);
	return r;
}

static unsigned reap(struct mig_load *l, unsigned q)
{
	void *cookie;
	uint32_t len;
	unsigned n = 0;
	int r;

	while ((r = vhuf_get_used(l->f, q, &cookie, &len)) == 1) {
		struct mig_slot *s = cookie;

		if (!check(l, s))
			atomic_fetch_add(&l->bad, 1);
		s->busy = false;
		atomic_fetch_add(&l->done, 1);
		n++;
	}
	if (r < 0)
		atomic_fetch_add(&l->errors, 1);
	return n;
}

static void *load_thread(void *arg)
{
	struct qarg *a = arg;
	struct mig_load *l = a->l;
	unsigned q = a->q;
	struct mig_slot *slots = l->slots[q];
	uint64_t seq = l->seq_base + ((uint64_t)q << 40);
	int64_t deadline = 0;

	for (;;) {
		bool stop = atomic_load(&l->stop);

		for (unsigned i = 0; !stop && i < l->depth; i++)
			if (!slots[i].busy && submit(l, q, &slots[i], seq++) >= 0)
				atomic_fetch_add(&l->inflight[q], 1);
		vhuf_kick(l->f, q);
		vhuf_wait_call(l->f, q, 20);
		atomic_fetch_sub(&l->inflight[q], reap(l, q));
		if (stop) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			if (!deadline)
				deadline = ts.tv_sec + 10;
			if (!atomic_load(&l->drain) || !atomic_load(&l->inflight[q]) ||
			    ts.tv_sec > deadline)
				break;
		}
	}
	return NULL;
}

int mig_load_start(struct mig_load *l, struct vhuf *f, unsigned nq, unsigned depth, unsigned wpages)
{
	memset(l, 0, sizeof(*l));
	l->f = f;
	l->nq = nq;
	l->depth = depth;
	l->wpages = wpages;
	l->seq_base = (uint64_t)time(NULL) << 20;
	for (unsigned q = 0; q < nq; q++) {
		/* Sequence numbers on one page, writable buffers on pages of
		 * their own (the driver never writes those). */
		uint64_t outs = vhuf_alloc(f, 8ull * depth, PAGE);

		l->slots[q] = calloc(depth, sizeof(struct mig_slot));
		if (!l->slots[q] || outs == UINT64_MAX)
			return -ENOMEM;
		for (unsigned i = 0; i < depth; i++) {
			struct mig_slot *s = &l->slots[q][i];

			s->out = outs + 8ull * i;
			s->in_len = wpages * PAGE - (i % 3) * 1000;
			s->in = vhuf_alloc(f, wpages * PAGE, PAGE);
			if (s->in == UINT64_MAX)
				return -ENOMEM;
		}
	}
	for (unsigned q = 0; q < nq; q++) {
		qargs[q] = (struct qarg){l, q};
		if (pthread_create(&l->th[q], NULL, load_thread, &qargs[q]))
			return -EAGAIN;
	}
	return 0;
}

void mig_load_stop(struct mig_load *l, bool wait_all)
{
	atomic_store(&l->drain, wait_all);
	atomic_store(&l->stop, true);
	for (unsigned q = 0; q < l->nq; q++) {
		pthread_join(l->th[q], NULL);
		free(l->slots[q]);
		l->slots[q] = NULL;
	}
}

unsigned mig_load_inflight(const struct mig_load *l, unsigned q)
{
	return atomic_load(&((struct mig_load *)l)->inflight[q]);
}
