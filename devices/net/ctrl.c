/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control queue: the driver sends {class, command, data...} and gets
 * one status byte back.  Rx mode and MAC filtering, the MAC address, the
 * number of active queue pairs and the guest offloads are handled; anything
 * else is answered VIRTIO_NET_ERR.  Worker 0 only.
 */
#include <errno.h>
#include <string.h>

#include "net.h"

static bool acked(struct net_dev *d, unsigned bit)
{
	return atomic_load(&d->acked) & (1ULL << bit);
}

static int ctrl_rx(struct net_dev *d, uint8_t cmd, const uint8_t *data, size_t len)
{
	struct net_filter *f = &d->filter;
	_Atomic bool *mode;

	if (len != 1 || !acked(d, VIRTIO_NET_F_CTRL_RX))
		return -EINVAL;
	switch (cmd) {
	case VIRTIO_NET_CTRL_RX_PROMISC:
		mode = &f->promisc;
		break;
	case VIRTIO_NET_CTRL_RX_ALLMULTI:
		mode = &f->allmulti;
		break;
	case VIRTIO_NET_CTRL_RX_ALLUNI:
		mode = &f->alluni;
		break;
	case VIRTIO_NET_CTRL_RX_NOMULTI:
		mode = &f->nomulti;
		break;
	case VIRTIO_NET_CTRL_RX_NOUNI:
		mode = &f->nouni;
		break;
	case VIRTIO_NET_CTRL_RX_NOBCAST:
		mode = &f->nobcast;
		break;
	default:
		return -EINVAL;
	}
	if (cmd > VIRTIO_NET_CTRL_RX_ALLMULTI && !acked(d, VIRTIO_NET_F_CTRL_RX_EXTRA))
		return -EINVAL;
	atomic_store(mode, data[0] != 0);
	return 0;
}

/* One list of a MAC_TABLE_SET: le32 count then count MACs.  Returns bytes
 * consumed or -EINVAL. */
static long mac_list(const uint8_t *p, size_t len, uint8_t (*tab)[6], unsigned *n, bool *over)
{
	uint32_t cnt;

	if (len < 4)
		return -EINVAL;
	memcpy(&cnt, p, 4);
	if (cnt > (len - 4) / 6)
		return -EINVAL;
	*over = cnt > NET_MAC_TABLE_MAX;
	*n = *over ? 0 : cnt;
	memcpy(tab, p + 4, (size_t)*n * 6);
	return 4 + (long)cnt * 6;
}

static int ctrl_mac(struct net_dev *d, uint8_t cmd, const uint8_t *data, size_t len)
{
	struct net_filter *f = &d->filter;
	uint8_t uc[NET_MAC_TABLE_MAX][6], mc[NET_MAC_TABLE_MAX][6];
	unsigned nuc, nmc;
	bool uco, mco;
	long a, b;

	if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET) {
		if (len != 6 || !acked(d, VIRTIO_NET_F_CTRL_MAC_ADDR))
			return -EINVAL;
		pthread_mutex_lock(&f->lock);
		memcpy(d->mac, data, 6);
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	if (cmd != VIRTIO_NET_CTRL_MAC_TABLE_SET || !acked(d, VIRTIO_NET_F_CTRL_RX))
		return -EINVAL;
	a = mac_list(data, len, uc, &nuc, &uco);
	if (a < 0)
		return -EINVAL;
	b = mac_list(data + a, len - (size_t)a, mc, &nmc, &mco);
	if (b < 0 || (size_t)(a + b) != len)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	memcpy(f->uc, uc, (size_t)nuc * 6);
	memcpy(f->mc, mc, (size_t)nmc * 6);
	f->n_uc = nuc;
	f->n_mc = nmc;
	f->uc_overflow = uco;
	f->mc_overflow = mco;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int ctrl_mq(struct net_dev *d, uint8_t cmd, const uint8_t *data, size_t len)
{
	uint16_t pairs;

	if (cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET || len != 2 || !acked(d, VIRTIO_NET_F_MQ))
		return -EINVAL;
	memcpy(&pairs, data, 2);
	if (pairs < 1 || pairs > d->max_pairs)
		return -EINVAL;
	atomic_store(&d->active_pairs, pairs);
	return 0;
}

static int ctrl_offloads(struct net_dev *d, uint8_t cmd, const uint8_t *data, size_t len)
{
	uint64_t v;

	if (cmd != VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET || len != 8 ||
	    !acked(d, VIRTIO_NET_F_CTRL_GUEST_OFFLOADS))
		return -EINVAL;
	memcpy(&v, data, 8);
	/* Only offloads the driver acked at negotiation may be turned on. */
	if (v & ~net_guest_offloads_from_features(atomic_load(&d->acked)))
		return -EINVAL;
	if (d->be->set_offloads && d->be->set_offloads(d, v) < 0)
		return -EIO;
	atomic_store(&d->guest_offloads, v);
	return 0;
}

static int ctrl_dispatch(struct net_dev *d, const uint8_t *buf, size_t len)
{
	const uint8_t *data = buf + 2;
	size_t dlen = len - 2;

	switch (buf[0]) {
	case VIRTIO_NET_CTRL_RX:
		return ctrl_rx(d, buf[1], data, dlen);
	case VIRTIO_NET_CTRL_MAC:
		return ctrl_mac(d, buf[1], data, dlen);
	case VIRTIO_NET_CTRL_MQ:
		return ctrl_mq(d, buf[1], data, dlen);
	case VIRTIO_NET_CTRL_GUEST_OFFLOADS:
		return ctrl_offloads(d, buf[1], data, dlen);
	case VIRTIO_NET_CTRL_ANNOUNCE:
		return buf[1] == VIRTIO_NET_CTRL_ANNOUNCE_ACK && dlen == 0 ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

/* Handle one popped command; returns the bytes written (the status). */
static uint32_t ctrl_one(struct net_dev *d, const struct vhu_chain *c)
{
	uint8_t status = VIRTIO_NET_ERR;

	if (c->in_len < 1)
		return 0; /* nowhere to answer: complete it empty */
	if (c->out_len >= 2 && c->out_len <= NET_CTRL_BUF) {
		size_t len = vhu_chain_read(c, 0, d->ctrl_buf, c->out_len);
		if (ctrl_dispatch(d, d->ctrl_buf, len) == 0)
			status = VIRTIO_NET_OK;
	}
	atomic_fetch_add(status == VIRTIO_NET_OK ? &d->stats.ctrl_cmds : &d->stats.ctrl_errors, 1);
	vhu_chain_write(c, 0, &status, 1);
	return 1;
}

int net_ctrl_process(struct net_dev *d)
{
	struct vhu_vring *vr = net_vring(d, 2 * d->max_pairs);
	int r = 0;

	if (!vr)
		return -EINVAL;
	vhu_vring_lock(vr);
	for (;;) {
		struct vhu_chain c = {.iov = d->ctrl_iov, .iov_max = NET_CTRL_IOV};
		r = vhu_vring_pop(vr, &c);
		if (r == 0)
			break;
		if (r == -E2BIG) {
			vhu_vring_push(vr, &c, 0);
			atomic_fetch_add(&d->stats.ctrl_errors, 1);
			continue;
		}
		if (r < 0)
			break;
		vhu_vring_push(vr, &c, ctrl_one(d, &c));
	}
	vhu_vring_notify(vr);
	vhu_vring_unlock(vr);
	return r < 0 ? r : 0;
}
