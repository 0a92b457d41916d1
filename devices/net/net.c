/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-net device as libvhu sees it: features, config space, queue
 * layout over worker threads, and event dispatch to the back side.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net.h"

#define F(bit) (1ULL << (bit))

/* Offloads in each direction, as feature bits. */
#define NET_HOST_OFFLOADS                                                                          \
	(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |            \
	 F(VIRTIO_NET_F_HOST_ECN))
#define NET_GUEST_OFFLOADS                                                                         \
	(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |    \
	 F(VIRTIO_NET_F_GUEST_ECN) | F(VIRTIO_NET_F_GUEST_UFO))

uint64_t net_guest_offloads_from_features(uint64_t features)
{
	return features & NET_GUEST_OFFLOADS;
}

struct vhu_vring *net_vring(struct net_dev *d, unsigned q)
{
	return d->daemon ? vhu_daemon_vring(d->daemon, q) : NULL;
}

static uint64_t offered_features(const struct net_dev *d)
{
	uint64_t f = F(VHU_F_VERSION_1) | F(VHU_F_RING_INDIRECT_DESC) | F(VHU_F_RING_EVENT_IDX) |
	             F(VHU_F_ANY_LAYOUT) | F(VHU_F_LOG_ALL) | F(VHU_F_RING_PACKED);

	/* Every queue uses its buffers in the order they were made available
	 * (a tx burst completes its first chains and gives back the rest;
	 * rx chains are published in pop order, bad ones included, and what
	 * a burst did not use is given back): drivers that know it (DPDK's
	 * virtio PMD) take their in-order fast paths. */
	f |= F(VHU_F_IN_ORDER);

	f |= F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_MTU) | F(VIRTIO_NET_F_MRG_RXBUF) |
	     F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX) |
	     F(VIRTIO_NET_F_CTRL_RX_EXTRA) | F(VIRTIO_NET_F_CTRL_MAC_ADDR) |
	     F(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS);
	if (d->max_pairs > 1)
		f |= F(VIRTIO_NET_F_MQ);
	/* Both directions: loopback/peer copy headers through (completing
	 * checksums for guests that did not ack GUEST_CSUM); the tap takes
	 * and gives vnet headers.  UFO only into the guest (a tap may
	 * still produce it), never from it. */
	f |= NET_HOST_OFFLOADS | (NET_GUEST_OFFLOADS & ~F(VIRTIO_NET_F_GUEST_UFO));
	return f;
}

static unsigned op_num_queues(void *dev)
{
	return ((struct net_dev *)dev)->nqueues;
}

static unsigned op_max_queue_size(void *dev)
{
	return NET_QUEUE_SIZE;
}

static uint64_t op_features(void *dev)
{
	return ((struct net_dev *)dev)->offered;
}

static void op_acked_features(void *dev, uint64_t features)
{
	struct net_dev *d = dev;
	uint64_t go = net_guest_offloads_from_features(features);

	atomic_store(&d->acked, features);
	atomic_store(&d->hdr_len,
	             (features & (F(VHU_F_VERSION_1) | F(VIRTIO_NET_F_MRG_RXBUF))) ? 12u : 10u);
	atomic_store(&d->mrg_rxbuf, (features & F(VIRTIO_NET_F_MRG_RXBUF)) != 0);
	atomic_store(&d->guest_offloads, go);
	if (d->be->set_offloads && d->be->set_offloads(d, go) < 0)
		vhu_log(VHU_LOG_WARN, "%s: back side refused offloads %#llx", d->name,
		        (unsigned long long)go);
}

/*
 * With several queue pairs QEMU drives one vhost device per pair over the
 * same socket, each adding every memory region (CONFIGURE_MEM_SLOTS); the
 * library counts such exact duplicates instead of mapping them twice.
 */
static uint64_t op_protocol_features(void *dev)
{
	return VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_LOG_SHMFD) | VHU_BIT(VHU_PF_REPLY_ACK) |
	       VHU_BIT(VHU_PF_CONFIG) | VHU_BIT(VHU_PF_RESET_DEVICE) | VHU_BIT(VHU_PF_STATUS) |
	       VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS) | VHU_BIT(VHU_PF_RARP) | VHU_BIT(VHU_PF_MTU);
}

static void op_reset_device(void *dev)
{
	struct net_dev *d = dev;

	atomic_store(&d->acked, 0);
	atomic_store(&d->guest_offloads, 0);
	atomic_store(&d->hdr_len, 12u);
	atomic_store(&d->mrg_rxbuf, false);
	atomic_store(&d->active_pairs, d->max_pairs);
	net_filter_reset(&d->filter);
	pthread_mutex_lock(&d->filter.lock);
	memcpy(d->mac, d->orig_mac, 6);
	pthread_mutex_unlock(&d->filter.lock);
	if (d->be->reset)
		d->be->reset(d);
}

static void fill_config(struct net_dev *d, struct virtio_net_config *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_lock(&d->filter.lock);
	memcpy(c->mac, d->mac, 6);
	c->mtu = d->mtu; /* NET_SET_MTU may change it */
	pthread_mutex_unlock(&d->filter.lock);
	c->status = VIRTIO_NET_S_LINK_UP;
	c->max_virtqueue_pairs = (uint16_t)d->max_pairs;
	c->speed = 0xffffffffu; /* unknown */
	c->duplex = 0xff;       /* unknown */
}

static int op_get_config(void *dev, uint32_t offset, void *buf, uint32_t size)
{
	struct virtio_net_config c;

	if (offset > sizeof(c) || size > sizeof(c) - offset)
		return -EINVAL;
	fill_config(dev, &c);
	memcpy(buf, (uint8_t *)&c + offset, size);
	return (int)size;
}

static int op_set_config(void *dev, uint32_t offset, const void *buf, uint32_t size)
{
	struct net_dev *d = dev;

	if (offset > sizeof(struct virtio_net_config) ||
	    size > sizeof(struct virtio_net_config) - offset)
		return -EINVAL;
	/* Only the MAC is writable (legacy drivers set it this way). */
	if (offset >= 6)
		return 0;
	pthread_mutex_lock(&d->filter.lock);
	memcpy(d->mac + offset, buf, size < 6 - offset ? size : 6 - offset);
	pthread_mutex_unlock(&d->filter.lock);
	return 0;
}

static int op_queues_per_thread(void *dev, uint64_t *masks, unsigned max)
{
	struct net_dev *d = dev;
	unsigned n = d->nthreads < max ? d->nthreads : max;

	if (n == 0)
		return -EINVAL;
	for (unsigned t = 0; t < n; t++)
		masks[t] = 0;
	for (unsigned k = 0; k < d->max_pairs; k++)
		masks[d->pairs[k].thread % n] |= 3ULL << (2 * k);
	masks[0] |= 1ULL << (2 * d->max_pairs); /* ctrl */
	return (int)n;
}

static int op_send_rarp(void *dev, const uint8_t mac[6])
{
	return net_announce_request(dev, mac);
}

static int op_set_mtu(void *dev, uint16_t mtu)
{
	return net_set_mtu(dev, mtu);
}

static int op_handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                           unsigned nvrings, unsigned thread_id)
{
	struct net_dev *d = dev;

	if (ev == net_wake_id(d, 0))
		net_announce_send(d);
	if (ev >= d->nqueues)
		return d->be->event ? d->be->event(d, ev, evset) : 0;
	if (ev == 2 * d->max_pairs)
		return net_ctrl_process(d);
	if (ev & 1)
		return d->be->tx(d, ev / 2);
	d->be->rx_kick(d, ev / 2);
	return 0;
}

const struct vhu_backend_ops net_backend_ops = {
    .num_queues = op_num_queues,
    .max_queue_size = op_max_queue_size,
    .features = op_features,
    .acked_features = op_acked_features,
    .protocol_features = op_protocol_features,
    .reset_device = op_reset_device,
    .get_config = op_get_config,
    .set_config = op_set_config,
    .queues_per_thread = op_queues_per_thread,
    .handle_event = op_handle_event,
    .send_rarp = op_send_rarp,
    .set_mtu = op_set_mtu,
};

static const struct net_backend_ops *mode_ops(enum net_mode m)
{
	switch (m) {
	case NET_MODE_LOOPBACK:
		return &net_loopback_ops;
	case NET_MODE_PEER:
		return &net_peer_ops;
	case NET_MODE_TAP:
		return &net_tap_ops;
	default:
		return NULL;
	}
}

static int pairs_new(struct net_dev *d)
{
	d->pairs = calloc(d->max_pairs, sizeof(*d->pairs));
	if (!d->pairs)
		return -ENOMEM;
	for (unsigned k = 0; k < d->max_pairs; k++)
		d->pairs[k].wake_fd = d->pairs[k].tap_fd = -1;
	for (unsigned k = 0; k < d->max_pairs; k++) {
		struct net_pair *p = &d->pairs[k];
		p->dev = d;
		p->index = k;
		p->thread = k % d->nthreads;
		p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		p->scratch = net_scratch_new();
		if (p->wake_fd < 0 || !p->scratch)
			return p->wake_fd < 0 ? -errno : -ENOMEM;
	}
	return 0;
}

int net_dev_new(struct net_dev **out, const struct net_dev_opts *o)
{
	long cpus = o->ncpus ? (long)o->ncpus : sysconf(_SC_NPROCESSORS_ONLN);
	struct net_dev *d;
	int r;

	if (o->pairs < 1 || o->pairs > NET_MAX_PAIRS || !mode_ops(o->mode))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->name = o->name ? o->name : "vhu-net";
	d->mode = o->mode;
	d->be = mode_ops(o->mode);
	d->max_pairs = o->pairs;
	d->nthreads = cpus < 1 ? 1 : (cpus < (long)o->pairs ? (unsigned)cpus : o->pairs);
	d->nqueues = 2 * o->pairs + 1;
	d->mtu = o->mtu ? o->mtu : 1500;
	memcpy(d->mac, o->mac, 6);
	memcpy(d->orig_mac, o->mac, 6);
	d->offered = offered_features(d);
	atomic_init(&d->hdr_len, 12u);
	/* All pairs until VQ_PAIRS_SET narrows it: front ends that keep the
	 * control queue to themselves only enable rings. */
	atomic_init(&d->active_pairs, d->max_pairs);
	pthread_mutex_init(&d->filter.lock, NULL);
	net_filter_reset(&d->filter);
	d->ctrl_buf = malloc(NET_CTRL_BUF);
	r = d->ctrl_buf ? pairs_new(d) : -ENOMEM;
	if (r < 0) {
		net_dev_free(d);
		return r;
	}
	*out = d;
	return 0;
}

int net_dev_attach(struct net_dev *d, const struct net_dev_opts *o)
{
	struct vhu_daemon_config cfg = {
	    .name = d->name,
	    .lock = VHU_LOCK_NONE, /* the device synchronises itself (atomics, vring locks) */
	    .vring_flavour = VHU_VRING_MUTEX,
	    .poll_us = o->poll_us,
	};
	int r;

	if (o->mode == NET_MODE_TAP) {
		r = net_tap_open(d, o->tap);
		if (r < 0)
			return r;
	}
	r = vhu_daemon_new(&d->daemon, &net_backend_ops, d, &cfg);
	if (r < 0)
		return r;
	for (unsigned k = 0; k < d->max_pairs; k++) {
		struct net_pair *p = &d->pairs[k];
		r = vhu_daemon_add_listener(d->daemon, p->thread, p->wake_fd, EPOLLIN,
		                            net_wake_id(d, k));
		if (r == 0 && p->tap_fd >= 0)
			r = vhu_daemon_add_listener(d->daemon, p->thread, p->tap_fd, EPOLLIN,
			                            net_tap_id(d, k));
		if (r < 0)
			return r;
	}
	return 0;
}

void net_dev_link(struct net_dev *a, struct net_dev *b)
{
	a->peer = b;
	b->peer = a;
}

void net_dev_free(struct net_dev *d)
{
	if (!d)
		return;
	/* Callers stop both daemons of a peer pair before freeing either;
	 * the survivor must not reach into freed memory all the same. */
	if (d->peer && d->peer != d && d->peer->peer == d)
		d->peer->peer = NULL;
	if (d->daemon)
		vhu_daemon_free(d->daemon);
	net_tap_close(d);
	for (unsigned k = 0; d->pairs && k < d->max_pairs; k++) {
		if (d->pairs[k].wake_fd >= 0)
			close(d->pairs[k].wake_fd);
		free(d->pairs[k].scratch);
		free(d->pairs[k].bounce);
	}
	free(d->pairs);
	free(d->ctrl_buf);
	pthread_mutex_destroy(&d->filter.lock);
	free(d);
}

void net_dev_print_stats(const struct net_dev *d)
{
	const struct net_stats *s = &d->stats;

	fprintf(stderr,
	        "%s: tx %llu tx_dropped %llu tx_errors %llu rx %llu rx_dropped %llu "
	        "rx_filtered %llu rx_stalls %llu ctrl %llu ctrl_errors %llu\n",
	        d->name, (unsigned long long)s->tx_frames, (unsigned long long)s->tx_dropped,
	        (unsigned long long)s->tx_errors, (unsigned long long)s->rx_frames,
	        (unsigned long long)s->rx_dropped, (unsigned long long)s->rx_filtered,
	        (unsigned long long)s->rx_stalls, (unsigned long long)s->ctrl_cmds,
	        (unsigned long long)s->ctrl_errors);
}
