/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nbd engine: NBD exports through libnbd.
 *
 * One NBD connection per worker thread (one in all when the server does not
 * advertise multi-conn: then a flush on one connection would not cover
 * writes sent on another), driven asynchronously: the connection's socket
 * and a reconnect timer sit in a small per-worker epoll set whose fd is the
 * worker's listener, so the socket can change (reconnect) and its direction
 * (nbd_aio_get_direction) can be re-armed without touching the library's
 * epoll.  A request becomes one NBD command per data segment (libnbd takes
 * flat buffers) or per discard / write-zeroes segment.
 *
 * Completions: libnbd calls a command's completion callback with the
 * result and then its free callback, exactly once, also when the command
 * never reached the server (connection lost, handle closed).  Neither may
 * call libnbd on the same handle, so the free callback only queues the
 * request once its last command is gone; the queue is processed after
 * libnbd returned (process_done).
 *
 * Lost connection: the worker logs it, closes the handle and reconnects with
 * back-off (50 ms doubling to 2 s).  Requests whose commands were lost, and
 * requests arriving meanwhile, wait (parked) and are sent again from the
 * start on the new connection: a read or write sent twice stores the same
 * data.  A request parked longer than --reconnect-delay fails (IOERR).
 * Nothing is acknowledged before the server replied; in write-through mode
 * a write is sent with FUA (or followed by a flush) before it is.
 */
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "blk.h"

#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 2000u

struct nbd_caps {
	uint64_t size;
	bool read_only, flush, trim, zero, fua, multi_conn;
};

struct req_list {
	struct blk_req *head, *tail;
};

struct nbd_conn {
	struct blk_worker *w;
	struct nbd_handle *h; /* NULL while down */
	bool ready;           /* connected and handshaken */
	bool failed;          /* a libnbd call failed: its message in last_err */
	int ep;               /* epoll set: h's socket + timer (the listener) */
	int tfd;              /* reconnect timer */
	int fd;               /* h's socket as registered in ep, or -1 */
	unsigned dir;         /* registered direction */
	unsigned backoff_ms;
	unsigned attempts; /* failed reconnects since the loss */
	struct req_list parked, done;
};

struct nbd_dev {
	struct nbd_caps caps;
	struct nbd_handle *first; /* open()'s connection, handed to worker 0 */
	char name[256];           /* for log lines */
};

static struct nbd_dev *ND(const struct blk_dev *d)
{
	return d->engine_priv;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void list_add(struct req_list *l, struct blk_req *r)
{
	r->eng_next = NULL;
	if (l->tail)
		l->tail->eng_next = r;
	else
		l->head = r;
	l->tail = r;
}

static struct blk_req *list_take(struct req_list *l)
{
	struct blk_req *r = l->head;
	l->head = l->tail = NULL;
	return r;
}

/* ---- connecting ------------------------------------------------------- */

/* libnbd's last error message of this thread, kept across nbd_close. */
static __thread char last_err[512];

static const char *nbd_err(void)
{
	return last_err[0] ? last_err : "unknown error";
}

static void keep_err(const char *fallback)
{
	const char *e = nbd_get_error();
	snprintf(last_err, sizeof(last_err), "%s", e ? e : fallback);
}

/* Back-off between reconnect attempts: doubling from BACKOFF_MIN_MS, at most
 * BACKOFF_MAX_MS, and at most a quarter of --reconnect-delay, so that waiting
 * requests see a few attempts before they give up. */
static unsigned next_backoff(const struct blk_dev *d, unsigned ms)
{
	unsigned cap = BACKOFF_MAX_MS, quarter = d->opts.reconnect_delay_s * 250;
	if (quarter && quarter < cap)
		cap = quarter < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : quarter;
	ms = ms ? ms * 2 : BACKOFF_MIN_MS;
	return ms > cap ? cap : ms;
}

/* Create a handle for d->spec and start connecting (asynchronously when
 * async).  NULL on failure (libnbd's message in nbd_get_error()). */
static struct nbd_handle *make_handle(const struct blk_dev *d, bool async)
{
	const struct blk_spec *sp = &d->spec;
	struct nbd_handle *h = nbd_create();
	int rc;
	if (!h)
		return NULL;
	nbd_set_handle_name(h, "vhu-blk");
	if (!sp->nbd.uri && nbd_set_export_name(h, sp->nbd.export ? sp->nbd.export : "") < 0)
		goto fail;
	if (sp->nbd.uri)
		rc = async ? nbd_aio_connect_uri(h, sp->nbd.uri) : nbd_connect_uri(h, sp->nbd.uri);
	else if (sp->nbd.unix_path)
		rc = async ? nbd_aio_connect_unix(h, sp->nbd.unix_path)
		           : nbd_connect_unix(h, sp->nbd.unix_path);
	else
		rc = async ? nbd_aio_connect_tcp(h, sp->nbd.host, sp->nbd.port)
		           : nbd_connect_tcp(h, sp->nbd.host, sp->nbd.port);
	if (rc < 0)
		goto fail;
	return h;
fail:
	keep_err("cannot connect");
	nbd_close(h);
	errno = EIO;
	return NULL;
}

static int read_caps(struct nbd_handle *h, struct nbd_caps *c)
{
	int64_t size = nbd_get_size(h);
	if (size < 0)
		return -1;
	c->size = (uint64_t)size;
	c->read_only = nbd_is_read_only(h) == 1;
	c->flush = nbd_can_flush(h) == 1;
	c->trim = nbd_can_trim(h) == 1;
	c->zero = nbd_can_zero(h) == 1;
	c->fua = nbd_can_fua(h) == 1;
	c->multi_conn = nbd_can_multi_conn(h) == 1;
	return 0;
}

static int nbd_open_image(struct blk_dev *d, char *err, size_t errlen)
{
	struct nbd_dev *nd = calloc(1, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	d->engine_priv = nd;
	const struct blk_spec *sp = &d->spec;
	if (sp->nbd.uri)
		snprintf(nd->name, sizeof(nd->name), "%s", sp->nbd.uri);
	else if (sp->nbd.unix_path)
		snprintf(nd->name, sizeof(nd->name), "unix:%s", sp->nbd.unix_path);
	else
		snprintf(nd->name, sizeof(nd->name), "%s:%s", sp->nbd.host, sp->nbd.port);
	nd->first = make_handle(d, false);
	if (nd->first && read_caps(nd->first, &nd->caps) < 0)
		keep_err("no size");
	if (!nd->first || !nd->caps.size) {
		snprintf(err, errlen, "nbd: cannot connect to %s: %s", nd->name, nbd_err());
		return -EIO;
	}
	if (nd->caps.read_only)
		d->opts.read_only = true; /* the server says so */
	if (!nd->caps.multi_conn)
		d->max_threads = 1;
	d->capacity = nd->caps.size / BLK_SECTOR;
	atomic_store(&d->lim.capacity, d->capacity);
	vhu_log(VHU_LOG_INFO, "vhu-blk: nbd: %s: %" PRIu64 " bytes%s%s%s%s%s%s", nd->name,
	        nd->caps.size, nd->caps.read_only ? ", read-only" : "",
	        nd->caps.flush ? ", flush" : "", nd->caps.fua ? ", fua" : "",
	        nd->caps.trim ? ", trim" : "", nd->caps.zero ? ", zero" : "",
	        nd->caps.multi_conn ? ", multi-conn" : ", one connection (no multi-conn)");
	return 0;
}

static void nbd_close_image(struct blk_dev *d)
{
	struct nbd_dev *nd = ND(d);
	if (!nd)
		return;
	if (nd->first)
		nbd_close(nd->first);
	free(nd);
	d->engine_priv = NULL;
}

/* ---- the connection's fds --------------------------------------------- */

static void arm(struct nbd_conn *c)
{
	unsigned dir = 0;
	int fd = c->h ? nbd_aio_get_fd(c->h) : -1;
	if (fd >= 0)
		dir = nbd_aio_get_direction(c->h);
	if (fd != c->fd && c->fd >= 0) {
		epoll_ctl(c->ep, EPOLL_CTL_DEL, c->fd, NULL);
		c->fd = -1;
	}
	uint32_t ev = ((dir & LIBNBD_AIO_DIRECTION_READ) ? EPOLLIN : 0) |
	              ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? EPOLLOUT : 0);
	struct epoll_event e = {.events = ev, .data.u32 = 1};
	if (fd >= 0 && c->fd < 0) {
		if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &e) == 0) {
			c->fd = fd;
			c->dir = dir;
		}
	} else if (fd >= 0 && dir != c->dir) {
		if (epoll_ctl(c->ep, EPOLL_CTL_MOD, fd, &e) == 0)
			c->dir = dir;
	}
}

static void set_timer(struct nbd_conn *c, unsigned ms)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 + 1},
	};
	timerfd_settime(c->tfd, 0, &its, NULL);
}

/* ---- commands --------------------------------------------------------- */

static void send_req(struct nbd_conn *c, struct blk_req *r);
static void park(struct nbd_conn *c, struct blk_req *r);

static int on_reply(void *user_data, int *error)
{
	struct blk_req *r = user_data;
	if (*error) {
		int none = 0;
		atomic_compare_exchange_strong(&r->eng_err, &none, -*error);
	}
	atomic_fetch_sub(&r->eng_left, 1);
	return 1; /* retire the command */
}

static void on_free(void *user_data)
{
	struct blk_req *r = user_data;
	if (--r->pending == 0)
		list_add(&((struct nbd_conn *)r->q->w->priv)->done, r);
}

static bool write_through(const struct blk_dev *d, const struct blk_req *r)
{
	return (r->op == BLK_OP_WRITE || r->op == BLK_OP_ZEROES) &&
	       !atomic_load_explicit(&d->wce, memory_order_relaxed);
}

static void note_failure(struct nbd_conn *c)
{
	keep_err("unknown error");
	c->failed = true;
}

static void command_failed(struct nbd_conn *c, struct blk_req *r)
{
	note_failure(c);
	int e = nbd_get_errno();
	int none = 0;
	atomic_compare_exchange_strong(&r->eng_err, &none, -(e ? e : EIO));
	atomic_fetch_sub(&r->eng_left, 1);
}

/* A server without WRITE_ZEROES: write zeroes, 1 MiB per command (the
 * first command's counts were taken by the caller). */
static int64_t zero_by_writes(struct nbd_conn *c, struct blk_req *r, const struct blk_seg *s,
                              nbd_completion_callback cb, uint32_t fua)
{
	static const uint8_t zeroes[1u << 20];
	int64_t rc = 0;
	for (uint64_t done = 0; done < s->len;) {
		size_t n = s->len - done < sizeof(zeroes) ? s->len - done : sizeof(zeroes);
		if (done) {
			r->pending++;
			atomic_fetch_add(&r->eng_left, 1);
		}
		if (nbd_aio_pwrite(c->h, zeroes, n, s->offset + done, cb, fua) < 0) {
			command_failed(c, r);
			return -1;
		}
		done += n;
	}
	return rc;
}

/* One command.  Returns 0 or -1 (free was called: nothing to undo). */
static int64_t command(struct nbd_conn *c, struct blk_req *r, unsigned i, uint64_t *off)
{
	const struct nbd_caps *caps = &ND(c->w->dev)->caps;
	nbd_completion_callback cb = {.callback = on_reply, .user_data = r, .free = on_free};
	uint32_t fua = write_through(c->w->dev, r) && caps->fua ? LIBNBD_CMD_FLAG_FUA : 0;
	/* i counts data iovecs for reads and writes (up to the chain's
	 * length) and segments for discard/zeroes: segs[i] is only valid
	 * for the latter. */
	const struct blk_seg *s = i < BLK_MAX_SEGS ? &r->segs[i] : NULL;
	int64_t rc;
	r->pending++;
	atomic_fetch_add(&r->eng_left, 1);
	switch (r->eng_stage ? BLK_OP_FLUSH : r->op) {
	case BLK_OP_READ:
		rc = nbd_aio_pread(c->h, r->data[i].iov_base, r->data[i].iov_len, *off, cb, 0);
		*off += r->data[i].iov_len;
		break;
	case BLK_OP_WRITE:
		rc = nbd_aio_pwrite(c->h, r->data[i].iov_base, r->data[i].iov_len, *off, cb, fua);
		*off += r->data[i].iov_len;
		break;
	case BLK_OP_FLUSH:
		rc = nbd_aio_flush(c->h, cb, 0);
		break;
	case BLK_OP_DISCARD:
		rc = nbd_aio_trim(c->h, s->len, s->offset, cb, 0);
		break;
	default: /* ZEROES */
		if (!caps->zero)
			return zero_by_writes(c, r, s, cb, fua);
		rc = nbd_aio_zero(c->h, s->len, s->offset, cb,
		                  fua | (s->unmap ? 0 : LIBNBD_CMD_FLAG_NO_HOLE));
		break;
	}
	if (rc < 0)
		command_failed(c, r);
	return rc;
}

/* Without the command at all (the server cannot do it): complete here. */
static bool answer_locally(struct nbd_conn *c, struct blk_req *r)
{
	const struct nbd_caps *caps = &ND(c->w->dev)->caps;
	bool flush = r->eng_stage || r->op == BLK_OP_FLUSH;
	if ((flush && (!caps->flush || c->w->dev->opts.read_only)) ||
	    (r->op == BLK_OP_DISCARD && !caps->trim)) {
		r->error = 0; /* nothing to flush; discard is a hint */
	} else {
		return false;
	}
	r->pending = 0;
	blk_req_finish(r);
	return true;
}

static void send_req(struct nbd_conn *c, struct blk_req *r)
{
	if (!c->ready) {
		park(c, r);
		return;
	}
	if (answer_locally(c, r))
		return;
	unsigned n = 1;
	if (!r->eng_stage && (r->op == BLK_OP_READ || r->op == BLK_OP_WRITE))
		n = r->ndata;
	else if (!r->eng_stage && (r->op == BLK_OP_DISCARD || r->op == BLK_OP_ZEROES))
		n = r->nsegs;
	uint64_t off = r->offset;
	atomic_store(&r->eng_err, 0);
	atomic_store(&r->eng_left, 0);
	r->pending = 1; /* held until every command is issued */
	for (unsigned i = 0; i < n; i++)
		if (command(c, r, i, &off) < 0 && !nbd_aio_is_connecting(c->h) &&
		    !nbd_aio_is_ready(c->h) && !nbd_aio_is_processing(c->h))
			break; /* the handle is gone: the rest would fail too */
	if (--r->pending == 0)
		list_add(&c->done, r);
}

static bool conn_error(int err)
{
	return err == -ENOTCONN || err == -ECONNRESET || err == -EPIPE || err == -ESHUTDOWN ||
	       err == -ECONNREFUSED || err == -ECONNABORTED;
}

static void park(struct nbd_conn *c, struct blk_req *r)
{
	struct blk_dev *d = c->w->dev;
	if (!d->opts.reconnect_delay_s) {
		r->error = -ENOTCONN;
		blk_log_io_error(d, r, "nbd", r->error);
		r->pending = 0;
		blk_req_finish(r);
		return;
	}
	if (!r->eng_since)
		r->eng_since = now_ms();
	r->eng_stage = 0; /* all over again */
	list_add(&c->parked, r);
}

/* Requests whose commands are all gone (outside any libnbd call). */
static void process_done(struct nbd_conn *c)
{
	struct blk_dev *d = c->w->dev;
	struct blk_req *r;
	while ((r = list_take(&c->done)) != NULL) {
		for (struct blk_req *next; r; r = next) {
			next = r->eng_next;
			int err = atomic_load(&r->eng_err);
			if (!err && atomic_load(&r->eng_left) > 0)
				err = -ENOTCONN; /* freed without a reply */
			if (conn_error(err) || (!err && !c->ready && atomic_load(&r->eng_left))) {
				park(c, r);
				continue;
			}
			if (!err && !r->eng_stage && write_through(d, r) && !ND(d)->caps.fua) {
				r->eng_stage = 1; /* no FUA: flush before acknowledging */
				send_req(c, r);
				continue;
			}
			if (err)
				blk_log_io_error(d, r, "nbd", err);
			r->error = err;
			r->eng_since = 0;
			r->eng_stage = 0;
			blk_req_finish(r);
		}
	}
}

/* ---- connection state ------------------------------------------------- */

static void conn_lost(struct nbd_conn *c, const char *why)
{
	struct blk_dev *d = c->w->dev;
	if (c->ready)
		vhu_log(VHU_LOG_ERROR,
		        "vhu-blk: nbd: connection %u to %s lost (%s): reconnecting; requests "
		        "wait up to %u s",
		        c->w->index, ND(d)->name, why, d->opts.reconnect_delay_s);
	c->ready = false;
	c->failed = false;
	if (c->fd >= 0)
		epoll_ctl(c->ep, EPOLL_CTL_DEL, c->fd, NULL);
	c->fd = -1;
	c->dir = 0;
	if (c->h)
		nbd_close(c->h); /* frees every command left: they land in done */
	c->h = NULL;
	process_done(c);
	c->backoff_ms = c->backoff_ms ? c->backoff_ms : BACKOFF_MIN_MS;
	set_timer(c, c->backoff_ms);
}

/* Fail parked requests past the delay. */
static void expire_parked(struct nbd_conn *c)
{
	struct blk_dev *d = c->w->dev;
	uint64_t now = now_ms(), limit = (uint64_t)d->opts.reconnect_delay_s * 1000;
	struct blk_req *r = list_take(&c->parked);
	for (struct blk_req *next; r; r = next) {
		next = r->eng_next;
		if (now - r->eng_since < limit) {
			list_add(&c->parked, r);
			continue;
		}
		r->error = -ETIMEDOUT;
		r->eng_since = 0;
		blk_log_io_error(d, r, "nbd (server gone)", r->error);
		r->pending = 0;
		blk_req_finish(r);
	}
}

static void became_ready(struct nbd_conn *c)
{
	struct blk_dev *d = c->w->dev;
	struct nbd_caps caps;
	if (read_caps(c->h, &caps) == 0 && caps.size != ND(d)->caps.size) {
		vhu_log(VHU_LOG_WARN, "vhu-blk: nbd: %s now has %" PRIu64 " bytes", ND(d)->name,
		        caps.size);
		ND(d)->caps.size = caps.size;
		blk_dev_resized(d, caps.size);
	}
	if (c->attempts || !c->ready)
		vhu_log(VHU_LOG_INFO, "vhu-blk: nbd: connection %u to %s back", c->w->index,
		        ND(d)->name);
	c->ready = true;
	c->attempts = 0;
	c->backoff_ms = 0;
	timerfd_settime(c->tfd, 0, &(struct itimerspec){0}, NULL);
	struct blk_req *r = list_take(&c->parked);
	for (struct blk_req *next; r; r = next) {
		next = r->eng_next;
		send_req(c, r);
	}
}

static void try_reconnect(struct nbd_conn *c)
{
	c->h = make_handle(c->w->dev, true);
	if (!c->h) {
		if (c->attempts++ == 0)
			vhu_log(VHU_LOG_WARN, "vhu-blk: nbd: reconnecting to %s: %s",
			        ND(c->w->dev)->name, nbd_err());
		c->backoff_ms = next_backoff(c->w->dev, c->backoff_ms);
		set_timer(c, c->backoff_ms);
		return;
	}
	arm(c);
}

/* After any libnbd call on c->h: follow its state. */
static void follow(struct nbd_conn *c)
{
	if (c->h && (nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h))) {
		/* The failing call's message, if one failed since the last
		 * look (libnbd's is per thread and outlives the call). */
		if (!c->failed)
			snprintf(last_err, sizeof(last_err), "the server closed the connection");
		if (!c->ready) {
			c->attempts++;
			c->backoff_ms = next_backoff(c->w->dev, c->backoff_ms);
		}
		conn_lost(c, nbd_err());
		return;
	}
	if (c->h && !c->ready && nbd_aio_is_ready(c->h))
		became_ready(c);
	process_done(c);
	arm(c);
}

/* ---- engine ops ------------------------------------------------------- */

static void nbd_submit(struct blk_worker *w, struct blk_req *r)
{
	struct nbd_conn *c = w->priv;
	if (blk_req_flush_ro(w, r))
		return;
	r->eng_stage = 0;
	r->eng_since = 0;
	send_req(c, r);
}

static void nbd_kick(struct blk_worker *w)
{
	follow(w->priv);
}

static void nbd_reap(struct blk_worker *w)
{
	struct nbd_conn *c = w->priv;
	struct epoll_event ev[4];
	int n = epoll_wait(c->ep, ev, 4, 0);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == 0) { /* timer */
			uint64_t cnt;
			if (read(c->tfd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
				continue;
			expire_parked(c);
			if (!c->h)
				try_reconnect(c);
			else if (!c->ready)
				set_timer(c, BACKOFF_MAX_MS); /* still connecting: check again */
			if (c->parked.head && c->h)
				set_timer(c, BACKOFF_MAX_MS);
			continue;
		}
		if (!c->h)
			continue;
		if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			if (nbd_aio_notify_read(c->h) < 0)
				note_failure(c);
		if (c->h && (ev[i].events & EPOLLOUT) && !nbd_aio_is_dead(c->h) &&
		    nbd_aio_notify_write(c->h) < 0)
			note_failure(c);
	}
	follow(c);
}

static int nbd_init(struct blk_worker *w, int *efd)
{
	struct nbd_dev *nd = ND(w->dev);
	struct nbd_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->w = w;
	c->fd = -1;
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct epoll_event e = {.events = EPOLLIN, .data.u32 = 0};
	if (c->ep < 0 || c->tfd < 0 || epoll_ctl(c->ep, EPOLL_CTL_ADD, c->tfd, &e) < 0) {
		int rc = -errno;
		if (c->ep >= 0)
			close(c->ep);
		if (c->tfd >= 0)
			close(c->tfd);
		free(c);
		return rc;
	}
	w->priv = c;
	if (nd->first) { /* worker 0 takes open()'s connection */
		c->h = nd->first;
		nd->first = NULL;
	} else {
		c->h = make_handle(w->dev, false);
		if (!c->h) {
			vhu_log(VHU_LOG_ERROR, "vhu-blk: nbd: connection %u to %s: %s", w->index,
			        nd->name, nbd_err());
			*efd = c->ep;
			return -EIO;
		}
	}
	c->ready = true;
	arm(c);
	*efd = c->ep;
	return 0;
}

/* The daemon stopped: give commands in flight a moment, then close (which
 * frees them), and finish everything without pushing. */
static void nbd_fini(struct blk_worker *w)
{
	struct nbd_conn *c = w->priv;
	if (!c)
		return;
	for (unsigned i = 0; i < 50 && c->h && c->ready && nbd_aio_in_flight(c->h) > 0; i++) {
		if (nbd_poll(c->h, 100) < 0)
			break;
	}
	if (c->h)
		nbd_close(c->h);
	c->h = NULL;
	c->ready = false;
	struct blk_req *lists[2] = {list_take(&c->done), list_take(&c->parked)};
	for (unsigned l = 0; l < 2; l++)
		for (struct blk_req *r = lists[l], *next; r; r = next) {
			next = r->eng_next;
			r->gen = ~0u;
			r->error = -ENOTCONN;
			blk_req_finish(r);
		}
	if (blk_worker_busy(w))
		vhu_log(VHU_LOG_WARN, "vhu-blk: nbd: %u request(s) unaccounted at exit",
		        blk_worker_busy(w));
	close(c->tfd);
	close(c->ep);
	free(c);
	w->priv = NULL;
	w->efd = -1;
}

const struct blk_engine blk_engine_nbd = {
    .name = "nbd",
    .default_threads = 1,
    .open = nbd_open_image,
    .close = nbd_close_image,
    .init = nbd_init,
    .fini = nbd_fini,
    .submit = nbd_submit,
    .kick = nbd_kick,
    .reap = nbd_reap,
};
