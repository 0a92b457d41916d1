/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loopback back side: every frame the guest sends on pair k comes back on
 * the rx queue of the same pair (k % active pairs), header and offloads
 * included.  For tests and benchmarks.  The device is its own peer.
 */
#include "net.h"

static int lo_tx(struct net_dev *d, unsigned pair)
{
	return net_forward(d, pair, d);
}

static void lo_rx_kick(struct net_dev *d, unsigned pair)
{
	net_rx_kicked(d, pair);
}

static int lo_event(struct net_dev *d, uint16_t id, uint32_t evset)
{
	unsigned k = (unsigned)id - d->nqueues;

	return k < d->max_pairs ? net_wake_event(d, k) : 0;
}

const struct net_backend_ops net_loopback_ops = {
    .tx = lo_tx,
    .rx_kick = lo_rx_kick,
    .event = lo_event,
};
