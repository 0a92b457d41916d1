/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transmit side for the guest-to-guest back sides (loopback, peer): frames
 * the guest put on a tx queue are copied straight into the receiving
 * device's rx buffers.  When the receiver has no buffers the tx chain is
 * given back (not completed), the pair is marked blocked, and the receiver's
 * next rx kick resumes it: the sending guest sees its tx queue fill up,
 * which is the backpressure a real link would give.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net.h"

int net_tx_parse(struct net_dev *d, const struct vhu_chain *c, struct net_frame *f)
{
	unsigned hlen = atomic_load_explicit(&d->hdr_len, memory_order_relaxed);

	if (c->out_len < hlen + NET_MIN_FRAME || c->out_len - hlen > NET_MAX_FRAME)
		return -EINVAL;
	if (c->out_num && c->iov[0].iov_len >= sizeof(f->hdr))
		memcpy(&f->hdr, c->iov[0].iov_base, sizeof(f->hdr));
	else if (net_iov_read(c->iov, c->out_num, 0, &f->hdr, sizeof(f->hdr)) != sizeof(f->hdr))
		return -EINVAL;
	f->iov = c->iov;
	f->niov = c->out_num;
	f->off = hlen;
	f->len = c->out_len - hlen;
	return 0;
}

struct fwd_result {
	unsigned moved;
	bool blocked, more;
};

/* Pop up to `max` tx chains into s->tx, their iovecs from s->tx_iov.
 * *e2big: the one chain taken needs more iovecs than there are (it is
 * consumed: the caller completes it).  The chains after any point of the
 * burst are exactly the last ones popped, which vhu_vring_unpop() can give
 * back.  The first buffer of each is prefetched: the header and addresses
 * are read next, and they were last written by the driver on another CPU. */
static unsigned pop_burst(struct vhu_vring *tx, struct net_scratch *s, unsigned max, bool *e2big)
{
	int n = vhu_vring_pop_burst_iov(tx, s->tx_pp, max, s->tx_iov, NET_TX_IOV_BATCH);

	*e2big = n == -E2BIG;
	if (*e2big)
		return 1;
	for (int i = 0; i < n; i++) {
		const struct vhu_chain *c = &s->tx[i];

		if (c->out_num) {
			__builtin_prefetch(c->iov[0].iov_base);
			if (c->iov[0].iov_len > 64)
				__builtin_prefetch((const uint8_t *)c->iov[0].iov_base + 64);
		}
	}
	return n > 0 ? (unsigned)n : 0;
}

/* One burst: frames s->tx[0, n) into rx (NULL: drop).  Returns how many tx
 * chains are done (to complete); the rest were given back (rx full). */
static unsigned forward_burst(struct net_dev *src, struct net_scratch *s, struct vhu_vring *tx,
                              unsigned n, bool e2big, struct net_dev *dst, struct vhu_vring *rx,
                              bool ready, struct fwd_result *res)
{
	for (unsigned i = 0; i < n; i++) {
		struct net_frame f;

		s->rx_want = n - i; /* rx chains to pop ahead: one per frame left */

		if (e2big && i == n - 1) { /* only ever the last one */
			atomic_fetch_add_explicit(&src->stats.tx_errors, 1, memory_order_relaxed);
			continue;
		}
		if (net_tx_parse(src, &s->tx[i], &f) < 0) {
			atomic_fetch_add_explicit(&src->stats.tx_errors, 1, memory_order_relaxed);
			continue;
		}
		if (!ready) {
			atomic_fetch_add_explicit(&src->stats.tx_dropped, 1, memory_order_relaxed);
			continue;
		}
		if (net_rx_deliver(dst, rx, s, &f) == NET_RX_AGAIN) {
			vhu_vring_unpop(tx, n - i);
			res->blocked = true;
			return i;
		}
		res->moved++;
	}
	return n;
}

/* One locked pass: tx of src pair k into rx (may be NULL: drop).  Used
 * entries are published once per burst on each ring. */
static void forward_pass(struct net_dev *src, struct net_scratch *s, struct vhu_vring *tx,
                         struct net_dev *dst, struct vhu_vring *rx, struct fwd_result *res)
{
	bool ready = net_rx_ready(rx);
	unsigned budget = NET_BUDGET;

	while (budget > 0) {
		bool e2big;
		unsigned n = pop_burst(tx, s, budget < NET_BURST ? budget : NET_BURST, &e2big);
		if (n == 0)
			return;
		budget -= n;
		unsigned done = forward_burst(src, s, tx, n, e2big, dst, rx, ready, res);
		if (rx)
			net_rx_flush(rx, s);
		if (done)
			vhu_vring_push_batch(tx, s->tx_ptr, s->tx_written, done);
		if (res->blocked)
			return;
	}
	res->more = true;
}

int net_forward(struct net_dev *src, unsigned k, struct net_dev *dst)
{
	struct net_pair *p = &src->pairs[k];
	struct vhu_vring *tx = net_vring(src, 2 * k + 1);

	bool retried = false;

	if (!tx)
		return -EINVAL;
	for (;;) {
		struct fwd_result res = {0};
		unsigned j = dst ? net_rx_pair_for(dst, k) : 0;
		struct vhu_vring *rx = dst ? net_vring(dst, 2 * j) : NULL;
		bool retry = false;

		/* A front end that does not forward its control queue (QEMU,
		 * DPDK virtio-user) enables pairs with SET_VRING_ENABLE only:
		 * fall back to pair 0 when the chosen one is not running. */
		if (j != 0 && !net_rx_ready(rx))
			rx = net_vring(dst, 0);

		atomic_store(&p->tx_blocked, false);
		vhu_vring_lock(tx);
		/* No tx kicks while this pass drains the ring: a kick per burst
		 * the driver sends is a system call and a wake-up on its CPU
		 * (bench/net/RESULTS.md).  On again, below, once it is empty. */
		vhu_vring_disable_notification(tx);
		if (rx)
			vhu_vring_lock(rx);
		forward_pass(src, p->scratch, tx, dst, rx, &res);
		if (res.moved) { /* counters once per batch: they are shared */
			atomic_fetch_add_explicit(&src->stats.tx_frames, res.moved,
			                          memory_order_relaxed);
			atomic_fetch_add_explicit(&dst->stats.rx_frames, res.moved,
			                          memory_order_relaxed);
			vhu_vring_notify(rx);
		}
		if (res.blocked) {
			/* Publish "blocked" before re-arming rx kicks so that a kick
			 * racing with us either sees the flag or we see its buffers. */
			atomic_store(&p->tx_blocked, true);
			retry = vhu_vring_enable_notification(rx);
		} else if (rx && res.moved) {
			/* Buffers are plentiful: the guest need not kick rx. */
			vhu_vring_disable_notification(rx);
		}
		if (rx)
			vhu_vring_unlock(rx);
		vhu_vring_notify(tx);
		/* Still off when we come back by ourselves (budget used up);
		 * blocked, the receiver's rx kick resumes us whatever tx holds. */
		if (!res.more && vhu_vring_enable_notification(tx) && !res.blocked)
			retry = true;
		vhu_vring_unlock(tx);
		if (res.more || (retry && retried && res.moved)) {
			/* Yield to other queues of this worker (a driver that keeps
			 * adding as we drain would keep us here); come back soon. */
			uint64_t one = 1;
			if (write(p->wake_fd, &one, sizeof(one)) < 0)
				return -errno;
			return 0;
		}
		/* Buffers that came while kicks were off: try again, but once
		 * without progress is enough (a frame that needs more buffers
		 * than posted waits for the kick the next ones bring). */
		if (!retry || (retried && res.moved == 0))
			return 0;
		retried = true;
	}
}

void net_rx_kicked(struct net_dev *d, unsigned j)
{
	struct net_dev *src = d->peer;

	if (!src)
		return;
	for (unsigned k = 0; k < src->max_pairs; k++) {
		struct net_pair *p = &src->pairs[k];
		/* Any blocked sender may be waiting for this ring (see the
		 * fallback in net_forward); a needless wake costs one pass. */
		if (!atomic_load(&p->tx_blocked))
			continue;
		if (src == d && k == j) {
			net_forward(src, k, d); /* same worker: resume right here */
		} else {
			uint64_t one = 1;
			if (write(p->wake_fd, &one, sizeof(one)) < 0)
				vhu_log(VHU_LOG_WARN, "%s: wake pair %u: write failed", d->name, k);
		}
	}
}

int net_wake_event(struct net_dev *d, unsigned k)
{
	uint64_t v;

	/* Clear the eventfd first: a wake posted while we forward is kept. */
	if (read(d->pairs[k].wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	return net_forward(d, k, d->peer);
}
