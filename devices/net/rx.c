/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Receive side: put one frame into a device's rx queue.
 *
 * The frame comes from anywhere (another guest's tx buffers, a tap read),
 * described by a parsed header and payload iovecs.  Delivery checks the
 * receive filter, adapts the offload header to what this guest accepts
 * (completing a checksum in software when the guest did not ack
 * GUEST_CSUM), and copies header + payload into one rx chain, or into as
 * many as needed with MRG_RXBUF (num_buffers says how many).  When the
 * guest has not posted enough buffers nothing is consumed: the popped rx
 * chains are given back and the caller keeps the frame (backpressure).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

bool net_rx_ready(struct vhu_vring *rx)
{
	return rx && vhu_vring_started(rx) && vhu_vring_enabled(rx) && !vhu_vring_failed(rx);
}

unsigned net_rx_pair_for(struct net_dev *dst, unsigned k)
{
	unsigned active = atomic_load_explicit(&dst->active_pairs, memory_order_relaxed);
	return active ? k % active : 0;
}

void net_filter_reset(struct net_filter *f)
{
	/* Promiscuous until the driver says otherwise, as QEMU's virtio-net. */
	atomic_store(&f->promisc, true);
	atomic_store(&f->allmulti, false);
	atomic_store(&f->alluni, false);
	atomic_store(&f->nomulti, false);
	atomic_store(&f->nouni, false);
	atomic_store(&f->nobcast, false);
	pthread_mutex_lock(&f->lock);
	f->n_uc = f->n_mc = 0;
	f->uc_overflow = f->mc_overflow = false;
	pthread_mutex_unlock(&f->lock);
}

static bool mac_in(const uint8_t (*tab)[6], unsigned n, const uint8_t mac[6])
{
	for (unsigned i = 0; i < n; i++)
		if (!memcmp(tab[i], mac, 6))
			return true;
	return false;
}

bool net_filter_accept(struct net_dev *d, const uint8_t dst[6])
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct net_filter *f = &d->filter;
	bool ok;

	if (atomic_load_explicit(&f->promisc, memory_order_relaxed))
		return true;
	if (!memcmp(dst, bcast, 6))
		return !atomic_load(&f->nobcast);
	if (dst[0] & 1) {
		if (atomic_load(&f->nomulti))
			return false;
		if (atomic_load(&f->allmulti))
			return true;
		pthread_mutex_lock(&f->lock);
		ok = f->mc_overflow || mac_in((const uint8_t(*)[6])f->mc, f->n_mc, dst);
		pthread_mutex_unlock(&f->lock);
		return ok;
	}
	if (atomic_load(&f->nouni))
		return false;
	if (atomic_load(&f->alluni))
		return true;
	pthread_mutex_lock(&f->lock);
	ok = !memcmp(dst, d->mac, 6) || f->uc_overflow ||
	     mac_in((const uint8_t(*)[6])f->uc, f->n_uc, dst);
	pthread_mutex_unlock(&f->lock);
	return ok;
}

/* The GUEST_* feature a GSO type needs, or 0 if unknown. */
static uint64_t gso_feature(uint8_t gso_type)
{
	switch (gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return 1ULL << VIRTIO_NET_F_GUEST_TSO4;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return 1ULL << VIRTIO_NET_F_GUEST_TSO6;
	case VIRTIO_NET_HDR_GSO_UDP:
		return 1ULL << VIRTIO_NET_F_GUEST_UFO;
	default:
		return 0;
	}
}

/* Adapt the sender's header to this guest.  *sw_csum: complete the
 * checksum here.  -EINVAL: the guest cannot take this frame. */
static int fixup_hdr(struct net_dev *d, const struct net_frame *f, struct net_hdr *h, bool *sw_csum)
{
	uint64_t go = atomic_load_explicit(&d->guest_offloads, memory_order_relaxed);
	bool gcsum = go & (1ULL << VIRTIO_NET_F_GUEST_CSUM);

	*h = f->hdr;
	*sw_csum = false;
	if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		uint64_t need = gso_feature(h->gso_type);
		if (!need || !(go & need) || !gcsum)
			return -EINVAL;
		if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
		    !(go & (1ULL << VIRTIO_NET_F_GUEST_ECN)))
			return -EINVAL;
	} else {
		h->gso_size = 0;
	}
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !gcsum) {
		size_t start = h->csum_start, at = start + (size_t)h->csum_offset;
		if (at + 2 > f->len)
			return -EINVAL;
		*sw_csum = true;
		h->flags &= (uint8_t)~VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h->csum_start = h->csum_offset = 0;
	}
	if (!gcsum)
		h->flags &= (uint8_t)~VIRTIO_NET_HDR_F_DATA_VALID;
	h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	return 0;
}

struct net_scratch *net_scratch_new(void)
{
	struct net_scratch *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	s->rx_n = s->rx_ahead = s->rx_pool = 0;
	s->rx_want = 1;
	for (unsigned i = 0; i < NET_BURST; i++) {
		s->tx_ptr[i] = &s->tx[i];
		s->tx_pp[i] = &s->tx[i];
		s->tx_written[i] = 0;
	}
	for (unsigned i = 0; i < NET_RX_BATCH; i++) {
		s->rx_ptr[i] = &s->rx[i];
		s->rx_pp[i] = &s->rx[i];
	}
	return s;
}

void net_rx_flush(struct vhu_vring *rx, struct net_scratch *s)
{
	/* A failed or stopped ring refuses the batch: the chains are lost
	 * with the ring, as with single pushes. */
	if (s->rx_n)
		vhu_vring_push_batch(rx, s->rx_ptr, s->written, s->rx_n);
	/* Popped ahead for frames that did not come: the newest pops. */
	if (s->rx_ahead > s->rx_n)
		vhu_vring_unpop(rx, s->rx_ahead - s->rx_n);
	s->rx_n = s->rx_ahead = s->rx_pool = 0;
	s->rx_want = 1;
}

/* Write one byte at overall position pos (header included) of the frame's
 * chains rx[first, first + n). */
static void put_byte(struct net_scratch *s, unsigned first, unsigned n, size_t pos, uint8_t b)
{
	for (unsigned i = first; i < first + n; i++) {
		const struct vhu_chain *c = &s->rx[i];
		if (pos >= s->payload_at[i] && pos < s->payload_at[i] + s->written[i]) {
			net_iov_write(c->iov + c->out_num, c->in_num, pos - s->payload_at[i], &b,
			              1);
			return;
		}
	}
}

/* A buffer the guest should not have posted (read-only part, nothing
 * writable, too many segments) or too small for the header. */
static bool rx_chain_bad(const struct vhu_chain *c, unsigned n, unsigned hlen)
{
	return c->out_num || c->in_len == 0 || (n == 0 && c->in_len < hlen);
}

/* Make s->rx[at] a popped chain: from those popped ahead, or by popping
 * another burst (s->rx_want chains: what the caller expects to need).  1,
 * 0 if the ring is empty, -EIO if it failed. */
static int rx_chain_at(struct vhu_vring *rx, struct net_scratch *s, unsigned at)
{
	unsigned want = s->rx_want, room = NET_RX_IOV_BATCH - s->rx_pool;
	int r;

	if (at < s->rx_ahead)
		return 1;
	if (want > NET_RX_BATCH - at)
		want = NET_RX_BATCH - at;
	r = vhu_vring_pop_burst_iov(rx, &s->rx_pp[at], want ? want : 1, s->rx_iov + s->rx_pool,
	                            room);
	if (r == -E2BIG) { /* consumed: given back empty (rx_chain_bad) */
		s->rx[at].in_len = 0;
		r = 1;
	}
	if (r <= 0)
		return r;
	for (int i = 0; i < r; i++)
		s->rx_pool += s->rx[at + i].out_num + s->rx[at + i].in_num;
	s->rx_ahead = at + (unsigned)r;
	return 1;
}

/* Chains rx[s->rx_n, s->rx_n + n) go back to the guest empty (n > 0). */
static void give_back_empty(struct net_scratch *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		s->written[s->rx_n + i] = 0;
	s->rx_n += n;
}

static int dropped(struct net_dev *d)
{
	atomic_fetch_add(&d->stats.rx_dropped, 1);
	return NET_RX_DROP;
}

/*
 * Fill chains rx[s->rx_n, ...) (popped ahead, or popped now) until hdr +
 * payload are placed.  Returns the number of chains used (> 0), starting
 * at s->rx_n, or -NET_RX_*.  Chains the frame does not keep stay popped
 * ahead for the next frame (net_rx_flush() gives back what is left); bad
 * chains are used empty (s->rx_n moves past them), in ring order.
 */
static int fill_chains(struct net_dev *d, struct vhu_vring *rx, struct net_scratch *s,
                       const struct net_frame *f, unsigned hlen, bool mrg)
{
	size_t total = hlen + f->len, done = 0;
	unsigned n = 0, ring = vhu_vring_size(rx);

	while (done < total) {
		unsigned at = s->rx_n + n;
		struct vhu_chain *c = &s->rx[at];
		int r;

		if (n == NET_RX_CHAINS || n >= ring || (!mrg && n == 1) || at >= NET_RX_BATCH)
			return -dropped(d);
		r = rx_chain_at(rx, s, at);
		if (r == 0) {
			atomic_fetch_add(&d->stats.rx_stalls, 1);
			return -NET_RX_AGAIN;
		}
		if (r < 0) /* ring failed: nothing more to do with it */
			return -dropped(d);
		if (rx_chain_bad(c, n, hlen)) {
			/* Alone, skip it; in the middle of a frame, the frame is
			 * lost with it (the chains before cannot be kept back
			 * once this one is used). */
			give_back_empty(s, n + 1);
			if (n > 0)
				return -dropped(d);
			atomic_fetch_add(&d->stats.rx_dropped, 1);
			continue;
		}
		if (!mrg && c->in_len < total) /* keep the buffer for a smaller frame */
			return -dropped(d);
		size_t take = total - done;
		if (take > c->in_len)
			take = c->in_len;
		/* Payload bytes this chain carries: overall [max(done,hlen), done+take). */
		size_t from = done > hlen ? done : hlen;
		/* The next frame's buffer, guessing it is this size, capped at
		 * 2 KiB (32 lines) so that a large (GSO) frame does not issue
		 * hundreds of prefetches; only MTU-size frames were measured. */
		if (at + 1 < s->rx_ahead)
			vhu_chain_prefetch_write(&s->rx[at + 1], 0, total < 2048 ? total : 2048);
		if (take == total && c->iov[0].iov_len >= total && f->iov[0].iov_len >= f->off &&
		    f->iov[0].iov_len - f->off >= f->len)
			/* One buffer each side (small frames): copy straight. */
			memmove((uint8_t *)c->iov[0].iov_base + hlen,
			        (const uint8_t *)f->iov[0].iov_base + f->off, f->len);
		else if (done + take > from)
			net_iov_copy(c->iov, c->in_num, from - done, f->iov, f->niov,
			             f->off + (from - hlen), done + take - from);
		s->payload_at[at] = done;
		s->written[at] = (uint32_t)take;
		done += take;
		n++;
	}
	return (int)n;
}

/* The destination MAC: straight from the first buffer when it is there. */
static bool read_dst(const struct net_frame *f, uint8_t dst[6])
{
	if (f->niov && f->iov[0].iov_len >= f->off && f->iov[0].iov_len - f->off >= 6) {
		memcpy(dst, (const uint8_t *)f->iov[0].iov_base + f->off, 6);
		return true;
	}
	return net_iov_read(f->iov, f->niov, f->off, dst, 6) == 6;
}

/* The receive filter, without touching the frame in promiscuous mode
 * (the default, and what QEMU's front ends leave on). */
static bool rx_accept(struct net_dev *d, const struct net_frame *f)
{
	uint8_t dst[6];

	if (atomic_load_explicit(&d->filter.promisc, memory_order_relaxed))
		return true;
	return read_dst(f, dst) && net_filter_accept(d, dst);
}

/* Header (and num_buffers) at the start of the first chain.  Constant
 * sizes: this is per frame. */
static void put_hdr(const struct vhu_chain *c0, const struct net_hdr *h, unsigned hlen,
                    uint16_t nbufs)
{
	uint8_t w[NET_HDR_LEN_MAX];

	memcpy(w, h, sizeof(*h));
	memcpy(w + sizeof(*h), &nbufs, 2);
	if (c0->iov[0].iov_len >= NET_HDR_LEN_MAX) {
		if (hlen == NET_HDR_LEN_MAX)
			memcpy(c0->iov[0].iov_base, w, NET_HDR_LEN_MAX);
		else
			memcpy(c0->iov[0].iov_base, w, sizeof(*h));
	} else { /* fill_chains checked in_len >= hlen */
		net_iov_write(c0->iov, c0->in_num, 0, w, hlen);
	}
}

int net_rx_deliver(struct net_dev *d, struct vhu_vring *rx, struct net_scratch *s,
                   const struct net_frame *f)
{
	struct net_hdr h;
	bool sw_csum;
	unsigned hlen = atomic_load_explicit(&d->hdr_len, memory_order_relaxed);
	bool mrg = atomic_load_explicit(&d->mrg_rxbuf, memory_order_relaxed);

	if (!rx_accept(d, f)) {
		atomic_fetch_add(&d->stats.rx_filtered, 1);
		return NET_RX_DROP;
	}
	if (fixup_hdr(d, f, &h, &sw_csum) < 0) {
		atomic_fetch_add(&d->stats.rx_dropped, 1);
		return NET_RX_DROP;
	}
	/* Room for the largest frame, or publish what is queued first. */
	if (s->rx_n + NET_RX_CHAINS > NET_RX_BATCH ||
	    s->rx_pool + NET_RX_IOV_POOL > NET_RX_IOV_BATCH)
		net_rx_flush(rx, s);
	int n = fill_chains(d, rx, s, f, hlen, mrg);
	if (n < 0)
		return -n;

	put_hdr(&s->rx[s->rx_n], &h, hlen, (uint16_t)(mrg ? n : 1));
	if (sw_csum) {
		size_t start = f->hdr.csum_start, at = start + f->hdr.csum_offset;
		uint16_t c = (uint16_t)~net_csum_fold(
		    net_iov_csum(f->iov, f->niov, f->off + start, f->len - start));
		if (c == 0)
			c = 0xffff; /* as the kernel's CSUM_MANGLED_0 */
		put_byte(s, s->rx_n, (unsigned)n, hlen + at, (uint8_t)(c >> 8));
		put_byte(s, s->rx_n, (unsigned)n, hlen + at + 1, (uint8_t)c);
	}
	s->rx_n += (unsigned)n;
	return NET_RX_OK; /* the caller counts rx_frames per batch */
}
