/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tap back side: a Linux tap device with 12-byte vnet headers, one tap
 * queue (IFF_MULTI_QUEUE) per queue pair.  Guest tx frames are written to
 * the tap with their offload header; frames read from the tap go into the
 * guest's rx queue.  TUNSETOFFLOAD follows the offloads the guest accepts,
 * so the kernel hands us checksum-partial/GSO frames only when the guest
 * can take them.  When the guest has no rx buffers the tap fd leaves the
 * worker's epoll set ("parked") and the frame read stays in the bounce
 * buffer until the guest's next rx kick.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#define TAP_BOUNCE (NET_HDR_LEN_MAX + NET_MAX_FRAME)

/* Best effort: bring the interface up so that frames flow right away. */
static void tap_up(const char *name)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			vhu_log(VHU_LOG_WARN, "tap %s: cannot bring it up: %s", name,
			        strerror(errno));
	}
	close(s);
}

static int tap_open_queue(struct net_dev *d, const char *name, bool mq)
{
	struct ifreq ifr = {0};
	int hdr = NET_HDR_LEN_MAX, fd, err;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (mq ? IFF_MULTI_QUEUE : 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	memcpy(d->tap_name, ifr.ifr_name, sizeof(d->tap_name) - 1);
	return fd;
}

int net_tap_open(struct net_dev *d, const char *name)
{
	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	for (unsigned k = 0; k < d->max_pairs; k++) {
		struct net_pair *p = &d->pairs[k];
		int fd = tap_open_queue(d, name, d->max_pairs > 1);
		if (fd < 0) {
			net_tap_close(d);
			return fd;
		}
		p->tap_fd = fd;
		p->bounce = malloc(TAP_BOUNCE);
		if (!p->bounce) {
			net_tap_close(d);
			return -ENOMEM;
		}
	}
	tap_up(d->tap_name);
	return 0;
}

void net_tap_close(struct net_dev *d)
{
	for (unsigned k = 0; d->pairs && k < d->max_pairs; k++) {
		if (d->pairs[k].tap_fd >= 0)
			close(d->pairs[k].tap_fd);
		d->pairs[k].tap_fd = -1;
	}
}

static int tap_set_offloads(struct net_dev *d, uint64_t go)
{
	unsigned flags = 0;

	/* The kernel refuses segmentation offloads without checksum offload. */
	if (go & (1ULL << VIRTIO_NET_F_GUEST_CSUM)) {
		flags |= TUN_F_CSUM;
		if (go & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
			flags |= TUN_F_TSO4;
		if (go & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
			flags |= TUN_F_TSO6;
		if ((flags & (TUN_F_TSO4 | TUN_F_TSO6)) && (go & (1ULL << VIRTIO_NET_F_GUEST_ECN)))
			flags |= TUN_F_TSO_ECN;
		if (go & (1ULL << VIRTIO_NET_F_GUEST_UFO))
			flags |= TUN_F_UFO;
	}
	for (unsigned k = 0; k < d->max_pairs; k++)
		if (d->pairs[k].tap_fd >= 0 && ioctl(d->pairs[k].tap_fd, TUNSETOFFLOAD, flags) < 0)
			return -errno;
	return 0;
}

/* Write one tx chain to the tap: our 12-byte header, then the payload. */
static void tap_write_frame(struct net_dev *d, struct net_pair *p, const struct net_frame *f)
{
	struct iovec iov[NET_TX_IOV + 1];
	uint8_t raw[NET_HDR_LEN_MAX] = {0};
	int n;

	memcpy(raw, &f->hdr, sizeof(f->hdr));
	iov[0].iov_base = raw;
	iov[0].iov_len = sizeof(raw);
	n = net_iov_slice(f->iov, f->niov, f->off, f->len, iov + 1, NET_TX_IOV);
	if (n < 0 || writev(p->tap_fd, iov, n + 1) < 0) {
		/* The tap drops rather than blocks; a refused frame (bad GSO
		 * header, interface down) is the guest's loss, as on a NIC. */
		atomic_fetch_add_explicit(&d->stats.tx_dropped, 1, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&d->stats.tx_frames, 1, memory_order_relaxed);
}

static int tap_tx(struct net_dev *d, unsigned k)
{
	struct net_pair *p = &d->pairs[k];
	struct vhu_vring *tx = net_vring(d, 2 * k + 1);
	unsigned budget = NET_BUDGET;
	int r = 0;

	if (!tx)
		return -EINVAL;
	vhu_vring_lock(tx);
	while (budget > 0) {
		struct vhu_chain c = {.iov = p->scratch->tx_iov, .iov_max = NET_TX_IOV};
		struct net_frame f;
		r = vhu_vring_pop(tx, &c);
		if (r <= 0 && r != -E2BIG)
			break;
		budget--;
		if (r == -E2BIG || net_tx_parse(d, &c, &f) < 0)
			atomic_fetch_add_explicit(&d->stats.tx_errors, 1, memory_order_relaxed);
		else
			tap_write_frame(d, p, &f);
		vhu_vring_push(tx, &c, 0);
	}
	vhu_vring_notify(tx);
	vhu_vring_unlock(tx);
	if (budget == 0) { /* more to do: let the worker serve others first */
		uint64_t one = 1;
		if (write(p->wake_fd, &one, sizeof(one)) < 0)
			return -errno;
	}
	return r < 0 && r != -E2BIG ? r : 0;
}

static void tap_park(struct net_dev *d, struct net_pair *p, bool park)
{
	if (atomic_exchange(&p->tap_parked, park) == park)
		return;
	if (park)
		vhu_daemon_del_listener(d->daemon, p->thread, p->tap_fd);
	else
		vhu_daemon_add_listener(d->daemon, p->thread, p->tap_fd, EPOLLIN,
		                        net_tap_id(d, p->index));
}

/* Read one frame into the bounce buffer. 1 = got one, 0 = tap empty. */
static int tap_read(struct net_pair *p)
{
	for (;;) {
		ssize_t n = read(p->tap_fd, p->bounce, TAP_BOUNCE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 0;
		if ((size_t)n >= NET_HDR_LEN_MAX + NET_MIN_FRAME) {
			p->bounce_len = (size_t)n;
			return 1;
		}
	}
}

/* Move frames from the tap into rx queue k. */
static void tap_rx(struct net_dev *d, unsigned k)
{
	struct net_pair *p = &d->pairs[k];
	struct vhu_vring *rx = net_vring(d, 2 * k);
	unsigned budget = NET_BUDGET, moved = 0, moved_at_retry = 0;
	bool retried = false;

	if (!rx)
		return;
	vhu_vring_lock(rx);
	while (budget-- > 0) {
		if (!p->bounce_len && !tap_read(p))
			break;
		struct iovec iov = {.iov_base = p->bounce, .iov_len = p->bounce_len};
		struct net_frame f = {.iov = &iov,
		                      .niov = 1,
		                      .off = NET_HDR_LEN_MAX,
		                      .len = p->bounce_len - NET_HDR_LEN_MAX};
		memcpy(&f.hdr, p->bounce, sizeof(f.hdr));
		if (!net_rx_ready(rx)) {
			atomic_fetch_add(&d->stats.rx_dropped, 1);
		} else if (net_rx_deliver(d, rx, p->scratch, &f) == NET_RX_AGAIN) {
			/* Buffers that came while kicks were off: retry, but not
			 * again without progress (too few for this frame). */
			if (vhu_vring_enable_notification(rx) &&
			    (!retried || moved > moved_at_retry)) {
				retried = true;
				moved_at_retry = moved;
				continue;
			}
			tap_park(d, p, true);
			break;
		} else {
			moved++;
		}
		p->bounce_len = 0;
	}
	net_rx_flush(rx, p->scratch);
	if (moved) {
		atomic_fetch_add_explicit(&d->stats.rx_frames, moved, memory_order_relaxed);
		vhu_vring_notify(rx);
		if (!atomic_load(&p->tap_parked))
			vhu_vring_disable_notification(rx);
	}
	vhu_vring_unlock(rx);
}

static void tap_rx_kick(struct net_dev *d, unsigned k)
{
	struct net_pair *p = &d->pairs[k];

	if (atomic_load(&p->tap_parked)) {
		tap_park(d, p, false);
		tap_rx(d, k);
	}
}

static int tap_event(struct net_dev *d, uint16_t id, uint32_t evset)
{
	unsigned k = (unsigned)id - d->nqueues;
	uint64_t v;

	if (k < d->max_pairs) { /* wake: tx had more than a budget, or a reset */
		if (read(d->pairs[k].wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		tap_rx_kick(d, k);
		return tap_tx(d, k);
	}
	k -= d->max_pairs;
	if (k < d->max_pairs)
		tap_rx(d, k);
	return 0;
}

/* Front end gone: have each worker listen to its tap again (parking is
 * only ever changed by the worker), so frames arriving meanwhile are read
 * and dropped instead of piling up in the tap queue. */
static void tap_reset(struct net_dev *d)
{
	uint64_t one = 1;

	for (unsigned k = 0; k < d->max_pairs; k++)
		if (atomic_load(&d->pairs[k].tap_parked) &&
		    write(d->pairs[k].wake_fd, &one, sizeof(one)) < 0)
			vhu_log(VHU_LOG_WARN, "%s: cannot wake pair %u", d->name, k);
}

const struct net_backend_ops net_tap_ops = {
    .tx = tap_tx,
    .rx_kick = tap_rx_kick,
    .event = tap_event,
    .set_offloads = tap_set_offloads,
    .reset = tap_reset,
};
