/* SPDX-License-Identifier: Apache-2.0 */
/*
 * After a live migration: SEND_RARP and NET_SET_MTU, answered as DPDK's
 * vhost library does.
 *
 * SEND_RARP (QEMU sends it for each of its self-announcements when the
 * guest did not negotiate GUEST_ANNOUNCE) asks for a broadcast RARP frame
 * with the guest's MAC out of the back side, so that the switches between
 * here and the rest of the network learn the guest's new port.  The
 * protocol handler only records the request and wakes the worker of pair
 * 0, which sends the frame in its own context, as it sends the guest's
 * frames: into the tap, or into the peer's (or, for loopback, our own)
 * receive queue.
 *
 * NET_SET_MTU: the MTU QEMU gave the guest (host_mtu) becomes the device's
 * (config space) and, with a tap, the tap interface's.
 */
#include <errno.h>
#include <linux/if.h>
#include <net/ethernet.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net.h"

#define RARP_LEN 60 /* 42 bytes of headers, padded to the Ethernet minimum */

/* DPDK's make_rarp_packet: reverse request, sender = target = mac. */
static void rarp_frame(uint8_t f[RARP_LEN], const uint8_t mac[6])
{
	static const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 3}; /* Ethernet, IPv4, op 3 */

	memset(f, 0, RARP_LEN);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x80; /* ETH_P_RARP */
	f[13] = 0x35;
	memcpy(f + 14, arp_hdr, sizeof(arp_hdr));
	memcpy(f + 22, mac, 6); /* sender hardware address, protocol address 0 */
	memcpy(f + 32, mac, 6); /* target hardware address, protocol address 0 */
}

int net_announce_request(struct net_dev *d, const uint8_t mac[6])
{
	uint64_t one = 1;

	pthread_mutex_lock(&d->filter.lock);
	memcpy(d->announce_mac, mac, 6);
	pthread_mutex_unlock(&d->filter.lock);
	atomic_store(&d->announce, true);
	if (write(d->pairs[0].wake_fd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

static int send_tap(struct net_dev *d, const uint8_t *frame)
{
	uint8_t hdr[NET_HDR_LEN_MAX] = {0};
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)frame, RARP_LEN}};

	return writev(d->pairs[0].tap_fd, iov, 2) < 0 ? -errno : 0;
}

/* Into the receiving device's rx queue, as a frame from our pair 0. */
static int send_rx(struct net_dev *d, const uint8_t *frame)
{
	struct net_dev *dst = d->peer;
	struct iovec iov = {(void *)frame, RARP_LEN};
	struct net_frame f = {.iov = &iov, .niov = 1, .off = 0, .len = RARP_LEN};
	struct net_scratch *s = d->pairs[0].scratch;
	struct vhu_vring *rx;
	int r = -ENOTCONN;

	if (!dst)
		return r;
	rx = net_vring(dst, 2 * net_rx_pair_for(dst, 0));
	if (!rx)
		return r;
	vhu_vring_lock(rx);
	if (net_rx_ready(rx)) {
		r = net_rx_deliver(dst, rx, s, &f);
		net_rx_flush(rx, s);
		vhu_vring_notify(rx);
		r = r == NET_RX_OK ? 0 : -ENOBUFS;
	}
	vhu_vring_unlock(rx);
	if (r == 0)
		atomic_fetch_add_explicit(&dst->stats.rx_frames, 1, memory_order_relaxed);
	return r;
}

void net_announce_send(struct net_dev *d)
{
	uint8_t frame[RARP_LEN], mac[6];
	int r;

	if (!atomic_exchange(&d->announce, false))
		return;
	pthread_mutex_lock(&d->filter.lock);
	memcpy(mac, d->announce_mac, 6);
	pthread_mutex_unlock(&d->filter.lock);
	rarp_frame(frame, mac);
	r = d->mode == NET_MODE_TAP ? send_tap(d, frame) : send_rx(d, frame);
	if (r < 0) {
		vhu_log(VHU_LOG_WARN, "%s: RARP for %02x:%02x:%02x:%02x:%02x:%02x not sent: %s",
		        d->name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], strerror(-r));
		return;
	}
	atomic_fetch_add_explicit(&d->stats.tx_frames, 1, memory_order_relaxed);
	vhu_log(VHU_LOG_INFO, "%s: RARP for %02x:%02x:%02x:%02x:%02x:%02x sent", d->name, mac[0],
	        mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/* Best effort: the tap interface's MTU follows the guest's. */
static void tap_mtu(struct net_dev *d, uint16_t mtu)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", d->tap_name);
	ifr.ifr_mtu = mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
		vhu_log(VHU_LOG_WARN, "%s: cannot set the MTU of tap %s to %u: %s", d->name,
		        d->tap_name, mtu, strerror(errno));
	close(s);
}

int net_set_mtu(struct net_dev *d, uint16_t mtu)
{
	if (mtu < 68 || (size_t)mtu + ETH_HLEN > NET_MAX_FRAME)
		return -EINVAL;
	pthread_mutex_lock(&d->filter.lock);
	d->mtu = mtu;
	pthread_mutex_unlock(&d->filter.lock);
	if (d->mode == NET_MODE_TAP)
		tap_mtu(d, mtu);
	vhu_log(VHU_LOG_INFO, "%s: MTU %u", d->name, mtu);
	return 0;
}
