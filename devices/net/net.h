/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-net: a virtio-net device on libvhu.  Private header shared by the
 * device's files:
 *
 *   net.c       device ops: features, config space, queue layout, events
 *   rx.c        delivering one frame into a device's rx queue (filters,
 *               offload fix-ups, MRG_RXBUF spanning, backpressure)
 *   tx.c        draining a tx queue into another device's rx (loopback, peer)
 *   ctrl.c      the control queue (rx mode, MAC table, MQ, offloads)
 *   announce.c  after a migration: RARP out of the back side, MTU
 *   iov.c       copying between iovec arrays, internet checksum
 *   loopback.c, peer.c, tap.c   back sides
 *   main.c      command line
 *
 * Queues: rx of pair k = 2k, tx of pair k = 2k+1, ctrl = 2 * max_pairs.
 * Pair k is served by worker k % nthreads; ctrl by worker 0.
 *
 * Threads: a tx queue is only touched by the worker of its pair.  An rx
 * queue is written by whoever delivers into it (its own worker for tap and
 * loopback, the other device's worker in peer mode), so every data-path
 * access takes the vring lock (the daemons run with VHU_VRING_MUTEX), tx
 * ring first, then rx ring.
 */
#ifndef VHU_NET_H
#define VHU_NET_H

#include <linux/virtio_net.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhu/vhu.h"

#define NET_MAX_PAIRS    31 /* 2 * 31 + 1 queues fit the 64-bit thread masks */
#define NET_QUEUE_SIZE   1024
#define NET_HDR_LEN_MAX  12u    /* virtio_net_hdr_v1 / _mrg_rxbuf */
#define NET_MAX_FRAME    65550u /* largest payload (GSO) behind the header */
#define NET_MIN_FRAME    14u    /* an Ethernet header */
#define NET_TX_IOV       256    /* iovecs of one tx chain */
#define NET_RX_CHAINS    128    /* rx chains one frame may span */
#define NET_RX_IOV_POOL  2048   /* iovecs for those chains together */
#define NET_RX_CHAIN_IOV 64     /* iovecs of one rx chain */
#define NET_BURST        64     /* tx chains popped, and used entries published, at once */
/* A burst's worth of room beyond what the largest single frame needs. */
#define NET_TX_IOV_BATCH  (NET_TX_IOV + 4 * NET_BURST)
#define NET_RX_BATCH      (NET_RX_CHAINS + NET_BURST)
#define NET_RX_IOV_BATCH  (NET_RX_IOV_POOL + 4 * NET_BURST)
#define NET_BUDGET        1024 /* frames per event before yielding */
#define NET_MAC_TABLE_MAX 64   /* per list; more means "accept all" */
#define NET_CTRL_IOV      64   /* iovecs of one control command */
#define NET_CTRL_BUF      8192 /* largest control command accepted */

/* The 10-byte header every variant starts with, little-endian. */
struct net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
};
_Static_assert(sizeof(struct net_hdr) == 10, "virtio_net_hdr is 10 bytes");

/* One frame on its way: parsed header plus payload somewhere in iovecs. */
struct net_frame {
	struct net_hdr hdr;
	const struct iovec *iov;
	unsigned niov;
	size_t off; /* payload start inside iov */
	size_t len; /* payload bytes */
};

/* Scratch a worker uses to pop chains; owned by the pair it serves.
 *
 * Tx chains are popped a burst at a time (vhu_vring_pop_burst_iov: their
 * iovecs side by side in tx_iov) and completed together.  Rx chains are
 * popped a burst ahead too (rx_want: as many as frames are coming):
 * rx[0, rx_n) are filled, rx[rx_n, rx_ahead) popped and waiting for frames
 * (iovecs in rx_iov[0, rx_pool)).  net_rx_flush() publishes the filled
 * ones with one used-index store, as DPDK's vhost does per burst, and
 * gives back the rest (vhu_vring_unpop): it must run before the rx lock
 * is released. */
struct net_scratch {
	struct vhu_chain tx[NET_BURST];
	const struct vhu_chain *tx_ptr[NET_BURST];
	struct vhu_chain *tx_pp[NET_BURST];
	uint32_t tx_written[NET_BURST]; /* all 0: tx buffers are only read */
	struct iovec tx_iov[NET_TX_IOV_BATCH];

	unsigned rx_n, rx_ahead, rx_pool, rx_want;
	struct vhu_chain rx[NET_RX_BATCH];
	const struct vhu_chain *rx_ptr[NET_RX_BATCH];
	struct vhu_chain *rx_pp[NET_RX_BATCH];
	uint32_t written[NET_RX_BATCH];
	size_t payload_at[NET_RX_BATCH]; /* frame offset (header included) each chain starts at */
	struct iovec rx_iov[NET_RX_IOV_BATCH];
};
enum net_mode { NET_MODE_NONE = 0, NET_MODE_LOOPBACK, NET_MODE_PEER, NET_MODE_TAP };

/* Per-device counters (atomic: several workers deliver into one device). */
struct net_stats {
	_Atomic uint64_t tx_frames;   /* taken from the guest's tx queues */
	_Atomic uint64_t tx_dropped;  /* nowhere to go (peer absent, bad frame) */
	_Atomic uint64_t tx_errors;   /* malformed tx chains */
	_Atomic uint64_t rx_frames;   /* delivered into the guest's rx queues */
	_Atomic uint64_t rx_dropped;  /* did not fit, too fragmented, GSO not acked */
	_Atomic uint64_t rx_filtered; /* rejected by rx mode / MAC filter */
	_Atomic uint64_t rx_stalls;   /* times delivery waited for rx buffers */
	_Atomic uint64_t ctrl_cmds;   /* control commands handled */
	_Atomic uint64_t ctrl_errors; /* control commands refused */
};

/* Receive filter set through the control queue.  Modes are read lock-free
 * on the data path; the MAC lists are consulted under the mutex, only when
 * a frame is neither promiscuous-accepted nor for our own address. */
struct net_filter {
	_Atomic bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
	pthread_mutex_t lock;
	unsigned n_uc, n_mc;
	bool uc_overflow, mc_overflow;
	uint8_t uc[NET_MAC_TABLE_MAX][6];
	uint8_t mc[NET_MAC_TABLE_MAX][6];
};

struct net_dev;

struct net_pair {
	struct net_dev *dev;
	unsigned index;
	unsigned thread;
	_Atomic bool tx_blocked; /* tx waits for rx buffers on the receiving side */
	int wake_fd;             /* eventfd: resume tx (peer side got rx buffers) */
	int tap_fd;              /* tap queue of this pair, or -1 */
	_Atomic bool tap_parked; /* tap fd removed from epoll until rx buffers come */
	uint8_t *bounce;         /* tap rx: one frame read from the tap */
	size_t bounce_len;       /* bytes pending in bounce (0: none) */
	struct net_scratch *scratch;
};

struct net_backend_ops {
	/* Tx queue of pair k was kicked: move frames out. Worker of pair k. */
	int (*tx)(struct net_dev *d, unsigned pair);
	/* The guest added rx buffers on pair k. Worker of pair k. */
	void (*rx_kick)(struct net_dev *d, unsigned pair);
	/* A listener registered by the back side fired. Worker thread. */
	int (*event)(struct net_dev *d, uint16_t id, uint32_t evset);
	/* Offloads the guest accepts changed (acked or CTRL_GUEST_OFFLOADS). */
	int (*set_offloads)(struct net_dev *d, uint64_t guest_offloads);
	/* Front end gone (handler thread). */
	void (*reset)(struct net_dev *d);
};

struct net_dev {
	const char *name;
	enum net_mode mode;
	const struct net_backend_ops *be;
	struct vhu_daemon *daemon;
	struct net_dev *peer; /* where tx frames go: self (loopback), other (peer) */

	unsigned max_pairs;
	unsigned nthreads;
	unsigned nqueues; /* 2 * max_pairs + 1 */
	uint64_t offered;
	uint16_t mtu;
	uint8_t mac[6];      /* config-space MAC, changed by CTRL_MAC_ADDR (filter lock) */
	uint8_t orig_mac[6]; /* restored on reset */

	_Atomic uint64_t acked;
	_Atomic uint64_t guest_offloads; /* GUEST_* feature bits in effect */
	_Atomic unsigned hdr_len;        /* 10 or 12 */
	_Atomic bool mrg_rxbuf;
	_Atomic unsigned active_pairs;

	struct net_filter filter;
	struct net_stats stats;
	struct net_pair *pairs;

	/* Control queue scratch (worker 0 only). */
	struct iovec ctrl_iov[NET_CTRL_IOV];
	uint8_t *ctrl_buf; /* NET_CTRL_BUF bytes */

	/* Tap back side. */
	char tap_name[16];

	/* SEND_RARP waiting for pair 0's worker (announce.c). */
	atomic_bool announce;
	uint8_t announce_mac[6]; /* filter lock */
};

struct net_dev_opts {
	const char *name;
	enum net_mode mode;
	unsigned pairs;
	uint16_t mtu;
	uint8_t mac[6];
	const char *tap; /* NET_MODE_TAP */
	unsigned poll_us;
	unsigned ncpus; /* bound on worker threads (0: online CPUs) */
};

/* ---- net.c ---- */
extern const struct vhu_backend_ops net_backend_ops;
/* Allocate a device (not yet bound to a daemon). 0 or -errno. */
int net_dev_new(struct net_dev **out, const struct net_dev_opts *o);
/* Create the daemon, register listeners, open the tap. 0 or -errno. */
int net_dev_attach(struct net_dev *d, const struct net_dev_opts *o);
/* Free a device.  Its daemon must not be serving; in peer mode neither
 * daemon of the pair may be serving (each reaches into the other). */
void net_dev_free(struct net_dev *d);
/* Connect two devices as a cable (peer mode) or a device to itself. */
void net_dev_link(struct net_dev *a, struct net_dev *b);
void net_dev_print_stats(const struct net_dev *d);
struct vhu_vring *net_vring(struct net_dev *d, unsigned q);
/* Offloads a guest with these acked features accepts on rx. */
uint64_t net_guest_offloads_from_features(uint64_t features);

/* ---- rx.c ---- */
enum { NET_RX_OK = 0, NET_RX_DROP = 1, NET_RX_AGAIN = 2 };
/* Can `d` receive at all right now (rx queue of `pair` started+enabled)? */
bool net_rx_ready(struct vhu_vring *rx);
/* Deliver one frame into rx (caller holds the rx vring lock): the rx
 * chains are filled and queued in s, published by net_rx_flush() (which
 * deliver calls itself when the queue is full).  Returns NET_RX_OK (the
 * caller adds it to rx_frames and flushes + notifies later), NET_RX_DROP
 * (counted), or NET_RX_AGAIN (no rx buffers now: nothing consumed). */
int net_rx_deliver(struct net_dev *d, struct vhu_vring *rx, struct net_scratch *s,
                   const struct net_frame *f);
/* Publish the rx chains queued in s (one used-index store).  Same lock. */
void net_rx_flush(struct vhu_vring *rx, struct net_scratch *s);
/* Allocate a pair's scratch (NULL when out of memory). */
struct net_scratch *net_scratch_new(void);
/* Does the receive filter of d accept a frame with this destination MAC? */
bool net_filter_accept(struct net_dev *d, const uint8_t dst[6]);
void net_filter_reset(struct net_filter *f);
/* Pair of the receiving device a frame from pair k of the sender uses. */
unsigned net_rx_pair_for(struct net_dev *dst, unsigned k);

/* ---- tx.c ---- */
/* Parse the header of a popped tx chain into f.  0, or -EINVAL (runt,
 * too big: the chain is to be completed and dropped). */
int net_tx_parse(struct net_dev *d, const struct vhu_chain *c, struct net_frame *f);
/* Move frames from src's tx queue of `pair` into dst's rx queues until the
 * tx queue is empty, the budget is used or dst has no rx buffers (then
 * pair->tx_blocked is set).  dst may be src (loopback) or NULL (drop). */
int net_forward(struct net_dev *src, unsigned pair, struct net_dev *dst);
/* d's guest added rx buffers on pair j: resume senders blocked on it. */
void net_rx_kicked(struct net_dev *d, unsigned j);
/* The wake eventfd of pair k fired: forward again. */
int net_wake_event(struct net_dev *d, unsigned k);

/* ---- ctrl.c ---- */
int net_ctrl_process(struct net_dev *d);

/* ---- announce.c ---- */
/* SEND_RARP: remember mac and wake pair 0's worker (handler thread). */
int net_announce_request(struct net_dev *d, const uint8_t mac[6]);
/* Send a requested RARP frame out of the back side.  Pair 0's worker. */
void net_announce_send(struct net_dev *d);
/* NET_SET_MTU: 68..(frame limit); the tap's MTU follows. */
int net_set_mtu(struct net_dev *d, uint16_t mtu);

/* ---- iov.c ---- */
/* Copy len bytes from src (at src_off) to dst (at dst_off); returns bytes
 * copied (less if either side ends). */
size_t net_iov_copy(const struct iovec *dst, unsigned ndst, size_t dst_off, const struct iovec *src,
                    unsigned nsrc, size_t src_off, size_t len);
size_t net_iov_read(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t net_iov_write(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);
/* Build iovecs for [off, off+len) of iov into out (max entries). Returns the
 * count, or -ENOBUFS. */
int net_iov_slice(const struct iovec *iov, unsigned n, size_t off, size_t len, struct iovec *out,
                  unsigned max);
/* Ones' complement sum of [off, off+len) (not folded, not inverted). */
uint32_t net_iov_csum(const struct iovec *iov, unsigned n, size_t off, size_t len);
uint16_t net_csum_fold(uint32_t sum);

/* ---- back sides ---- */
extern const struct net_backend_ops net_loopback_ops;
extern const struct net_backend_ops net_peer_ops;
extern const struct net_backend_ops net_tap_ops;
/* Open the tap (one queue per pair), set vnet header size.  0 or -errno. */
int net_tap_open(struct net_dev *d, const char *name);
void net_tap_close(struct net_dev *d);

/* Listener ids: wake of pair k = nqueues + k; tap of pair k = nqueues +
 * max_pairs + k. */
static inline uint16_t net_wake_id(const struct net_dev *d, unsigned k)
{
	return (uint16_t)(d->nqueues + k);
}
static inline uint16_t net_tap_id(const struct net_dev *d, unsigned k)
{
	return (uint16_t)(d->nqueues + d->max_pairs + k);
}

#endif
