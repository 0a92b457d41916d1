/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "rng.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- entropy source -------------------------------------------------- */

/* Read up to n bytes from the source into p. Returns bytes (> 0) or -errno. */
static ssize_t source_read(struct rng_dev *r, void *p, size_t n)
{
	for (int rewound = 0;;) {
		ssize_t got = r->src_fd < 0 ? getrandom(p, n, 0) : read(r->src_fd, p, n);
		if (got > 0)
			return got;
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		/* EOF: a regular file is replayed from the start (a fixed
		 * pattern for tests); anything else has run dry. */
		if (!r->src_seekable || rewound++ || lseek(r->src_fd, 0, SEEK_SET) < 0)
			return -EIO;
	}
}

/* Fill `n` bytes of buf; returns bytes filled (short only on error). */
static size_t source_fill(struct rng_dev *r, uint8_t *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t got = source_read(r, buf + done, n - done);
		if (got < 0) {
			if (!r->src_error_logged)
				vhu_log(VHU_LOG_ERROR, "vhu-rng: entropy source: %s",
				        strerror((int)-got));
			r->src_error_logged = true;
			break;
		}
		done += (size_t)got;
	}
	return done;
}

/* Fill the writable part of chain c with at most `budget` bytes. */
static uint32_t fill_chain(struct rng_dev *r, const struct vhu_chain *c, uint64_t budget)
{
	uint64_t done = 0;
	for (uint32_t i = c->out_num; i < c->out_num + c->in_num && done < budget; i++) {
		size_t len = c->iov[i].iov_len;
		if (len > budget - done)
			len = (size_t)(budget - done);
		size_t got = source_fill(r, c->iov[i].iov_base, len);
		done += got;
		if (got < len)
			break;
	}
	return (uint32_t)done; /* budget <= RNG_MAX_CHUNK */
}

/* ---- rate limiter ---------------------------------------------------- */

/* Wake up when `want` bytes of tokens will have been earned. */
static void timer_arm(struct rng_dev *r, uint64_t want)
{
	uint64_t ns = tbucket_wait_ns(&r->tb, want, now_ns());
	if (ns == 0)
		ns = 1; /* an all-zero it_value would disarm the timer */
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(ns / 1000000000ull),
	                 .tv_nsec = (long)(ns % 1000000000ull)},
	};
	if (timerfd_settime(r->timer_fd, 0, &its, NULL) == 0)
		r->timer_armed = true;
	else
		vhu_log(VHU_LOG_ERROR, "vhu-rng: timerfd_settime: %s", strerror(errno));
}

/*
 * Bytes request c gets, or -1 if it has to wait for tokens.  A request is
 * served whole or not at all (only one larger than the burst is cut to the
 * burst): drivers handle short fills, but serving them in crumbs only
 * multiplies requests and interrupts.
 */
static int64_t budget_take(struct rng_dev *r, const struct vhu_chain *c)
{
	uint64_t want = c->in_len < RNG_MAX_CHUNK ? c->in_len : RNG_MAX_CHUNK;
	if (!r->limited)
		return (int64_t)want;
	if (want > r->tb.burst)
		want = r->tb.burst;
	uint64_t now = now_ns();
	if (tbucket_wait_ns(&r->tb, want, now) > 0)
		return -1;
	return (int64_t)tbucket_take(&r->tb, want, now);
}

/* Return tokens a request did not use (source error). */
static void budget_return(struct rng_dev *r, uint64_t n)
{
	if (r->limited && n) {
		r->tb.tokens += n;
		if (r->tb.tokens > r->tb.burst)
			r->tb.tokens = r->tb.burst;
	}
}

/* ---- queue processing ------------------------------------------------ */

/* Serve every available request the budget allows, then notify once. */
static int process_queue(struct rng_dev *r, struct vhu_vring *vr)
{
	struct iovec iov[RNG_IOV_MAX];
	int pushed = 0, ret = 0;

	for (;;) {
		struct vhu_chain c = {.iov = iov, .iov_max = RNG_IOV_MAX};
		int n = vhu_vring_pop(vr, &c);
		if (n == 0)
			break;
		if (n == -E2BIG) {
			/* Too fragmented to serve: complete it empty. */
			ret = vhu_vring_push(vr, &c, 0);
			pushed++;
			if (ret < 0)
				break;
			continue;
		}
		if (n < 0) {
			ret = n; /* malformed ring: the library failed it */
			break;
		}
		int64_t budget = budget_take(r, &c);
		if (budget < 0) {
			/* Not enough tokens: the request goes back to the ring
			 * and the timer brings us back when it can be served. */
			ret = vhu_vring_unpop(vr, 1);
			if (ret == 0)
				timer_arm(r, c.in_len < r->tb.burst ? c.in_len : r->tb.burst);
			break;
		}
		uint32_t written = fill_chain(r, &c, (uint64_t)budget);
		budget_return(r, (uint64_t)budget - written);
		r->bytes += written;
		ret = vhu_vring_push(vr, &c, written);
		pushed++;
		if (ret < 0)
			break;
	}
	if (pushed) {
		int nr = vhu_vring_notify(vr);
		if (nr < 0 && ret == 0)
			ret = nr;
	}
	return ret;
}

/* ---- backend operations ---------------------------------------------- */

static int rng_handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                            unsigned nvrings, unsigned thread_id)
{
	struct rng_dev *r = dev;

	if (nvrings < RNG_NUM_QUEUES)
		return -EINVAL;
	if (ev == RNG_TIMER_EVENT && r->limited) {
		uint64_t expirations;
		/* Drain the timerfd (nonblocking; EAGAIN: spurious wake-up). */
		if (read(r->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
			return -errno;
		r->timer_armed = false;
		return process_queue(r, vrings[0]);
	}
	if (ev != 0)
		return -EINVAL;
	/* While waiting for tokens the timer owns the queue; a kick changes
	 * nothing (and must not re-arm the timer further out). */
	if (r->timer_armed)
		return 0;
	return process_queue(r, vrings[0]);
}

const struct vhu_backend_ops rng_backend_ops = {
    .fixed = {.num_queues = RNG_NUM_QUEUES,
              .max_queue_size = RNG_MAX_QUEUE_SIZE,
              .features = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC) |
                          VHU_BIT(VHU_F_RING_EVENT_IDX) | VHU_BIT(VHU_F_RING_PACKED),
              .protocol_features = VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS) |
                                   VHU_BIT(VHU_PF_RESET_DEVICE) | VHU_BIT(VHU_PF_STATUS)},
    .handle_event = rng_handle_event,
};

/* ---- set-up ---------------------------------------------------------- */

static int open_source(struct rng_dev *r, const char *path)
{
	struct stat st;

	r->src_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->src_fd < 0)
		return -errno;
	if (fstat(r->src_fd, &st) < 0) {
		int err = -errno;
		close(r->src_fd);
		r->src_fd = -1;
		return err;
	}
	if (S_ISDIR(st.st_mode)) {
		close(r->src_fd);
		r->src_fd = -1;
		return -EISDIR;
	}
	r->src_seekable = S_ISREG(st.st_mode);
	return 0;
}

int rng_dev_init(struct rng_dev *r, const struct rng_opts *o)
{
	*r = (struct rng_dev){.src_fd = -1, .timer_fd = -1};
	if (o->source) {
		int err = open_source(r, o->source);
		if (err < 0)
			return err;
	}
	if (o->max_bytes_per_sec) {
		uint64_t rate = o->max_bytes_per_sec;
		/* Burst of one second's worth. */
		tbucket_init(&r->tb, rate, rate, now_ns());
		r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (r->timer_fd < 0) {
			int err = -errno;
			rng_dev_fini(r);
			return err;
		}
		r->limited = true;
	}
	return 0;
}

int rng_dev_attach(struct rng_dev *r, struct vhu_daemon *d)
{
	if (!r->limited)
		return 0;
	return vhu_daemon_add_listener(d, 0, r->timer_fd, EPOLLIN, RNG_TIMER_EVENT);
}

void rng_dev_fini(struct rng_dev *r)
{
	if (r->src_fd >= 0)
		close(r->src_fd);
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	r->src_fd = r->timer_fd = -1;
}
