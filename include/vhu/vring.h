/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Virtqueues as the device sees them.
 *
 * A struct vhu_vring is one queue of one connection.  The library owns it:
 * the protocol handler configures it (size, addresses, base, kick/call/err
 * fds, enable) and the device pops request chains from it and pushes used
 * entries back.  The ring layout (split, or packed when VIRTIO_F_RING_PACKED
 * was negotiated; packed rings have no INFLIGHT_SHMFD tracking) is hidden
 * behind these calls; device code never touches descriptors.
 *
 * Threads: a vring is driven by the worker thread its queue is assigned to
 * (queues_per_thread).  A device that touches one vring from several threads
 * brackets its calls with vhu_vring_lock()/vhu_vring_unlock() (or the
 * shared variants); what those do depends on the daemon's vring flavour
 * (VHU_VRING_PLAIN: nothing; VHU_VRING_MUTEX: a mutex; VHU_VRING_RWLOCK:
 * a read-write lock), mirroring VringState / VringMutex / VringRwLock.
 * The protocol handler changes a running ring only after taking that lock
 * and after the owning worker left any device callback.
 */
#ifndef VHU_VRING_H
#define VHU_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_vring;
struct vhu_mem;

enum vhu_vring_flavour {
	VHU_VRING_PLAIN = 0,
	VHU_VRING_MUTEX = 1,
	VHU_VRING_RWLOCK = 2,
};

/*
 * One descriptor chain (a request).  iov[0, out_num) are device-readable
 * buffers (the driver's "out"), iov[out_num, out_num + in_num) are
 * device-writable ("in").  Every iovec lies inside guest memory that was
 * bounds-checked at pop time.  The caller provides iov/iov_max; nothing is
 * allocated per request.
 */
struct vhu_chain {
	uint16_t id;    /* head index (packed: buffer id); back via vhu_vring_push() */
	uint16_t ndesc; /* descriptors the chain used, indirect ones included */
	uint32_t out_num;
	uint32_t in_num;
	uint64_t out_len; /* bytes in the readable part */
	uint64_t in_len;  /* bytes in the writable part */
	struct iovec *iov;
	uint32_t iov_max;
};

/*
 * Copy between a chain and the device's own memory, so that a device never
 * walks iovecs by hand.
 *
 * vhu_chain_read() copies up to `len` bytes of the chain's readable part
 * (iov[0, out_num)), starting `off` bytes into it, to buf.
 * vhu_chain_write() copies up to `len` bytes from buf into the writable part
 * (iov[out_num, out_num + in_num)), starting `off` bytes into it.  Both
 * return the bytes copied: less than len when the part ends first (0 when
 * off is at or past its end, or c is NULL or inconsistent: counts past
 * iov_max, as after a -E2BIG pop).  Nothing is allocated; any thread.
 *
 * The guest owns these bytes and may change them at any moment, also
 * while they are being copied (a buggy or hostile driver):
 *  - copy a header once with vhu_chain_read() and validate and use only
 *    the copy; never read the same field from the chain twice and expect
 *    the same value (time-of-check to time-of-use);
 *  - what vhu_chain_write() put there is the guest's as soon as the chain
 *    is pushed, and the guest may read it earlier; give vhu_vring_push()
 *    a `written` that covers every byte written (push dirty-logs the first
 *    `written` bytes of the writable part for live migration).
 * The guest may also make buffers overlap, each other or buf itself when
 * buf is guest memory (copying from one chain to another): the copy then
 * behaves as memmove, never as undefined behaviour.
 */
size_t vhu_chain_read(const struct vhu_chain *c, size_t off, void *buf, size_t len);
size_t vhu_chain_write(const struct vhu_chain *c, size_t off, const void *buf, size_t len);

/*
 * Ask the CPU for `len` bytes of the chain's writable part from `off` on
 * (counted as vhu_chain_write() counts them), with the intent to write
 * them: x86's PREFETCHW where the CPU has it, else a plain prefetch.
 * Returns at once; nothing is read or written and nothing can fault, so
 * any chain and any (off, len) is safe.  Call it on the chain you will
 * fill next while you fill the current one.  A driver posts receive
 * buffers a ring's length before the device fills them: by then they
 * have left this core's cache, or sit in the driver's CPU's cache since
 * it last wrote there, and a copy into them stalls on every line.
 * Fetched ahead, and owned, each line costs one transfer that overlaps
 * the current copy: vhu-net forwards 1.03-1.20x the 64 B frames per second
 * and 1.36-1.78x the 1500 B frames with it (bench/net/RESULTS.md).  A few
 * instructions per 64 bytes.  Any thread.
 */
void vhu_chain_prefetch_write(const struct vhu_chain *c, size_t off, size_t len);

/*
 * Take the next available chain.
 * Returns 1 with *c filled, 0 if the ring is empty, stopped or disabled,
 * -E2BIG if the chain needs more than c->iov_max iovecs (the chain is
 * consumed, c->id is valid and the caller must push it back with written
 * = 0), or -EIO if the guest published a malformed chain or ring: a
 * descriptor index past the ring, a loop, a chain longer than the ring,
 * nested indirect tables, an address outside guest memory, a length that
 * wraps, a readable descriptor after a writable one, or an avail index that
 * moved by more than the ring size (packed: a buffer id past the ring or
 * already in use).  The ring is then failed (the error
 * eventfd is signalled) and returns -EIO until it is reset; other rings are
 * untouched.
 */
int vhu_vring_pop(struct vhu_vring *vr, struct vhu_chain *c);

/*
 * Take up to n available chains at once: chains[i] is filled as by
 * vhu_vring_pop() (each with its own iov/iov_max; the array of pointers
 * is only read).  Cheaper per chain than n pops: the avail index is read
 * once, the descriptors of the chains ahead are prefetched while one is
 * walked, and the counters and the per-callback budget are updated once
 * per burst (EVENT_IDX's avail event: per chain).  Every chain goes through the
 * same hostile-input checks as vhu_vring_pop().
 * Returns the number of chains taken, in ring order (0 if the ring is
 * empty, stopped or disabled, or n is 0); -E2BIG if the first chain needs
 * more than chains[0]->iov_max iovecs (consumed as with vhu_vring_pop():
 * push it back with written = 0; no other chain taken); a chain after the
 * first that would not fit ends the burst before it, so that the next call
 * reports it; -EIO if the ring is or becomes failed (malformed input, as
 * with vhu_vring_pop(); chains taken before the failure in the same call
 * are lost with the ring).  Same thread rules as vhu_vring_pop().
 */
int vhu_vring_pop_burst(struct vhu_vring *vr, struct vhu_chain *const *chains, unsigned n);

/*
 * vhu_vring_pop_burst() for chains of any length: instead of each chain
 * bringing its own iov/iov_max, the chains take their iovecs one after
 * the other from iov[0, niov) (this call sets chains[i]->iov and iov_max;
 * chain i's iovecs start where chain i - 1's end).  -E2BIG if the first
 * chain alone needs more than niov iovecs; a later chain that needs more
 * than what is left ends the burst before it.  The array is the caller's.
 */
int vhu_vring_pop_burst_iov(struct vhu_vring *vr, struct vhu_chain *const *chains, unsigned n,
                            struct iovec *iov, unsigned niov);

/*
 * Return a chain to the driver as used, with `written` bytes written into
 * its writable part (dirty-logged when migration logging is on).  The used
 * index is published immediately; the driver is not notified: call
 * vhu_vring_notify() after a batch.  Returns 0, or -EINVAL if c->id is not
 * a chain this ring handed out and has not returned yet.
 */
int vhu_vring_push(struct vhu_vring *vr, const struct vhu_chain *c, uint32_t written);

/*
 * Push chains[0, n) with written[i] bytes each, as n vhu_vring_push() calls
 * would, but publish the used index once for the whole batch (one release
 * store, one cache-line hand-over to the driver instead of n).  Stops at
 * the first NULL chain or chain this ring did not hand out (or that
 * appears twice): the chains before it are pushed and published, it and
 * the rest are untouched.  Returns the number pushed (n on success), -EIO
 * if the ring failed, -EINVAL if it is stopped or chains/written is NULL.
 * Arrays are borrowed for the call only.  Same thread rules as push.
 */
int vhu_vring_push_batch(struct vhu_vring *vr, const struct vhu_chain *const *chains,
                         const uint32_t *written, unsigned n);

/* Give back the last `n` popped, not yet pushed chains, so that the next pop
 * returns them again (e.g. no room to finish them now). 0 or -EINVAL. */
int vhu_vring_unpop(struct vhu_vring *vr, unsigned n);

/*
 * Signal the call eventfd if the driver wants an interrupt for what was
 * pushed since the last notification (EVENT_IDX used_event, or
 * VRING_AVAIL_F_NO_INTERRUPT without it).  Returns 1 if signalled, 0 if
 * suppressed, -errno on a failed write.
 */
int vhu_vring_notify(struct vhu_vring *vr);

/* Signal the call eventfd unconditionally. */
int vhu_vring_signal(struct vhu_vring *vr);

/*
 * Ask the driver not to kick (polling) or to kick again.  Enabling returns
 * true if buffers became available meanwhile, so the caller must poll once
 * more before sleeping.  A device may keep kicks off while it works through
 * a ring (disable, process, enable, and again while enable returns true):
 * the driver then does not kick for buffers the device will find anyway.
 * While the worker's adaptive polling polls the ring, notifications are
 * the poller's: enabling then leaves them off and returns false (the
 * poller turns them on, and looks once more, when it stops).
 */
void vhu_vring_disable_notification(struct vhu_vring *vr);
bool vhu_vring_enable_notification(struct vhu_vring *vr);

/* True if the driver published chains not yet popped. */
bool vhu_vring_has_avail(struct vhu_vring *vr);

/*
 * Live migration.  While the front end logs dirty pages (VHOST_F_LOG_ALL),
 * every push marks the first `written` bytes of the chain's writable part
 * and the used ring entry in the log before publishing the used index, so a
 * device needs no code for migration as long as each byte it writes into
 * guest memory is inside that prefix of a chain it pushes.  A device that
 * writes elsewhere (past `written`, e.g. a status byte at the end of a
 * larger buffer, or guest memory outside any chain) marks those bytes with
 * vhu_vring_log_write() after writing them and before the push that makes
 * them visible; p is a host address inside guest memory (an iovec of a
 * chain).  No-op unless logging is on.  Same thread rules as push.
 */
void vhu_vring_log_write(struct vhu_vring *vr, const void *p, size_t len);

/*
 * The front end is stopping the ring (GET_VRING_BASE: device stop, or the
 * switch-over of a migration): pop hands out no more chains, and the
 * library waits for the chains still outstanding to be pushed before it
 * replies, so that none is lost or done twice on the destination.  A device
 * that holds chains until something happens (receive buffers waiting for
 * input, say) checks this in handle_event (the library kicks the queue when
 * the stop begins) and pushes them now.  Thread: any.
 */
bool vhu_vring_stopping(const struct vhu_vring *vr);

/* Put the ring in the failed state and signal its error eventfd. */
void vhu_vring_fail(struct vhu_vring *vr, const char *why);

/* Accessors. */
unsigned vhu_vring_index(const struct vhu_vring *vr);
unsigned vhu_vring_size(const struct vhu_vring *vr);
bool vhu_vring_started(const struct vhu_vring *vr);
bool vhu_vring_enabled(const struct vhu_vring *vr);
bool vhu_vring_failed(const struct vhu_vring *vr);
int vhu_vring_kick_fd(const struct vhu_vring *vr); /* -1 if none */
int vhu_vring_call_fd(const struct vhu_vring *vr); /* -1 if none */

/* Guest memory snapshot current for this ring (see mem.h for lifetime). */
struct vhu_mem *vhu_vring_mem(const struct vhu_vring *vr);

/* Locking per flavour (see top of file). */
void vhu_vring_lock(struct vhu_vring *vr);
void vhu_vring_unlock(struct vhu_vring *vr);
void vhu_vring_lock_shared(struct vhu_vring *vr);
void vhu_vring_unlock_shared(struct vhu_vring *vr);

/* Per-queue counters, cumulative over the daemon's life. */
struct vhu_vring_stats {
	uint64_t requests;   /* chains popped */
	uint64_t kicks;      /* kick eventfd wake-ups */
	uint64_t calls;      /* call eventfd signals */
	uint64_t suppressed; /* notifications suppressed by EVENT_IDX/flags */
	uint64_t polls;      /* polling passes that found work */
	uint64_t errors;     /* malformed chains */
};
void vhu_vring_get_stats(const struct vhu_vring *vr, struct vhu_vring_stats *st);

#ifdef __cplusplus
}
#endif
#endif
