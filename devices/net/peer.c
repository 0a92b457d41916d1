/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peer back side: two devices (two daemons, two sockets) in one process,
 * joined like a cable.  A frame sent on pair k of one side is delivered into
 * rx pair k % (active pairs) of the other, by the sender's worker, under the
 * receiver's rx vring lock.  A receiver with no rx buffers blocks the sender
 * (its tx chain stays on the ring); the receiver's rx kick wakes the sender's
 * worker through the pair's wake eventfd.  While the other side has no front
 * end (or its rx queue is not enabled) frames are dropped, as on an
 * unplugged cable.
 */
#include <unistd.h>

#include "net.h"

static int peer_tx(struct net_dev *d, unsigned pair)
{
	return net_forward(d, pair, d->peer);
}

static void peer_rx_kick(struct net_dev *d, unsigned pair)
{
	net_rx_kicked(d, pair);
}

static int peer_event(struct net_dev *d, uint16_t id, uint32_t evset)
{
	unsigned k = (unsigned)id - d->nqueues;

	return k < d->max_pairs ? net_wake_event(d, k) : 0;
}

/* Our front end went away: senders blocked on our rx queues must resume
 * (they will now drop). */
static void peer_reset(struct net_dev *d)
{
	struct net_dev *o = d->peer;

	for (unsigned k = 0; o && k < o->max_pairs; k++) {
		uint64_t one = 1;
		if (atomic_load(&o->pairs[k].tx_blocked) &&
		    write(o->pairs[k].wake_fd, &one, sizeof(one)) < 0)
			vhu_log(VHU_LOG_WARN, "%s: cannot wake peer pair %u", d->name, k);
	}
}

const struct net_backend_ops net_peer_ops = {
    .tx = peer_tx,
    .rx_kick = peer_rx_kick,
    .event = peer_event,
    .reset = peer_reset,
};
