/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-fs internals: a virtio-fs device (FUSE over virtqueues) passing one
 * host directory through to a guest.
 *
 *   main.c      command line, socket, sandbox order, signals
 *   dev.c       the vhu_backend_ops table: queues, config space, threads,
 *               the request loop (inline or through pool.c)
 *   pool.c      --thread-pool-size: service threads fed by the queue workers
 *   fuse.c      request framing: size checks per opcode, dispatch, replies
 *   session.c   INIT / DESTROY, negotiated parameters, cache policy
 *   slots.c     ids: generation << 32 | slot, for both tables
 *   inode.c     the inode table: (st_dev, st_ino) -> O_PATH fd, nodeids,
 *               lookup counts
 *   handle.c    the open-file table: fh -> fd
 *   ops_entry.c name operations (lookup, create, link, rename, ...)
 *   ops_attr.c  getattr, setattr, statfs, access, readlink
 *   ops_file.c  open, read, write, fsync, fallocate, lseek, copy_file_range
 *   ops_dir.c   opendir, readdir, readdirplus
 *   ops_xattr.c extended attributes
 *   lock.c      flock-style locks; blocking ones wait in one waiter thread
 *   creds.c     per-thread fsuid/fsgid for creating files as the caller
 *   sandbox.c   mount namespace / chroot, capabilities (libcap-ng)
 *   seccomp.c   the system-call allow-list (libseccomp)
 *
 * Threads: requests are served by the queue's worker thread (default) or by
 * pool threads; the tables lock themselves, so any service thread may run
 * any request.  Everything a request reads from the guest is copied (header
 * and arguments) before it is checked; only READ/WRITE data moves directly
 * between guest memory and the file.
 */
#ifndef VHU_FS_H
#define VHU_FS_H

#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vhu/vhu.h"

#define FS_TAG_MAX        36u  /* virtio_fs_config.tag */
#define FS_MAX_REQ_QUEUES 63u  /* + hiprio = 64 queues, one mask bit each */
#define FS_MAX_PAGES      256u /* FUSE_MAX_PAGES: 1 MiB per READ/WRITE */
#define FS_MAX_IO         (FS_MAX_PAGES * 4096u)
#define FS_XATTR_MAX      65536u /* XATTR_SIZE_MAX */
#define FS_XATTR_NAME_MAX 255u
#define FS_ARG_MAX        (FS_XATTR_MAX + 4096u) /* largest copied argument block */
#define FS_OUT_MAX        (FS_MAX_IO + 4096u)    /* largest reply built in memory */
#define FS_MIN_MINOR      27u   /* oldest FUSE 7.x minor served (structure sizes) */
#define FS_PENDING_LOCKS  1024u /* blocking lock requests waiting at once */

enum fs_cache { FS_CACHE_NEVER = 0, FS_CACHE_AUTO, FS_CACHE_ALWAYS };
enum fs_sandbox { FS_SANDBOX_NAMESPACE = 0, FS_SANDBOX_CHROOT, FS_SANDBOX_NONE };
enum fs_seccomp { FS_SECCOMP_KILL = 0, FS_SECCOMP_TRAP, FS_SECCOMP_LOG, FS_SECCOMP_NONE };

struct fs_opts {
	const char *shared_dir;
	char tag[FS_TAG_MAX + 1];
	unsigned num_request_queues;
	unsigned queue_size;
	unsigned thread_pool_size; /* 0: requests served by the queue workers */
	enum fs_cache cache;
	bool writeback;
	bool xattr;
	bool announce_submounts;
	bool allow_setuid;    /* let the guest create set-user/group-ID files */
	bool allow_direct_io; /* pass the guest's O_DIRECT through */
	bool readonly;
	enum fs_sandbox sandbox;
	enum fs_seccomp seccomp;
};

/* ---- numbering (slots.c) ---------------------------------------------- */

/* Objects named by id = generation << 32 | slot; see slots.c.  The owner
 * of the table locks. */
struct fs_slots {
	void **obj;
	uint32_t *gen, *free;
	uint32_t n, cap, nfree;
};

int fs_slots_init(struct fs_slots *t, uint32_t cap);
void fs_slots_fini(struct fs_slots *t);
/* Put obj in a free slot: the slot (id: fs_slots_id()), or 0 when out of
 * memory. */
uint32_t fs_slots_alloc(struct fs_slots *t, void *obj);
void fs_slots_free(struct fs_slots *t, uint32_t slot);
/* The object named by id, or NULL. */
void *fs_slots_get(const struct fs_slots *t, uint64_t id);
static inline uint64_t fs_slots_id(const struct fs_slots *t, uint32_t slot)
{
	return (uint64_t)t->gen[slot] << 32 | slot;
}

/* ---- inode table (inode.c) --------------------------------------------- */

struct fs_inode {
	int fd; /* O_PATH | O_NOFOLLOW, owned */
	dev_t dev;
	ino_t ino;
	mode_t type;     /* S_IFMT bits: an inode's type never changes */
	uint64_t nodeid; /* generation << 32 | slot */
	/* Under the table lock: lookups the guest holds (FORGET drops them)
	 * and references of requests using the inode right now.  Freed
	 * (fd closed) when both are 0. */
	uint64_t nlookup;
	uint32_t refs;
	struct fs_inode *hnext; /* (dev, ino) hash chain */
};

struct fs_inodes {
	pthread_mutex_t lock;
	struct fs_slots s;
	struct fs_inode **hash;
	uint32_t hmask, count;
	uint64_t max_inodes; /* refuse lookups beyond this (ENFILE) */
};

int fs_inodes_init(struct fs_inodes *t, int root_fd, uint64_t max_inodes);
void fs_inodes_fini(struct fs_inodes *t);
/* The inode for a nodeid the guest sent, with a reference, or NULL when no
 * such inode is known (a nodeid never handed out, forgotten, or stale). */
struct fs_inode *fs_inode_get(struct fs_inodes *t, uint64_t nodeid);
void fs_inode_put(struct fs_inodes *t, struct fs_inode *ino);
/* Enter `fd` (O_PATH, taken over) as a lookup: an inode already known by
 * (st->st_dev, st->st_ino) gets its lookup count raised and fd is closed.
 * Returns the inode's nodeid, or -ENFILE / -ENOMEM (fd closed). */
int64_t fs_inode_add_lookup(struct fs_inodes *t, int fd, const struct stat *st);
/* FORGET: drop n lookups (clamped to what the guest holds). */
void fs_inode_forget(struct fs_inodes *t, uint64_t nodeid, uint64_t n);
/* Session over: forget every lookup but the root's (which is reset to 1). */
void fs_inodes_forget_all(struct fs_inodes *t);
uint32_t fs_inodes_count(struct fs_inodes *t);

/* ---- open files (handle.c) ------------------------------------------------ */

enum fs_handle_kind { FS_H_FILE = 1, FS_H_DIR = 2 };

struct fs_handle {
	int fd; /* owned */
	enum fs_handle_kind kind;
	int flags;              /* open flags as used on the host */
	struct fs_inode *inode; /* referenced while the handle lives */
	uint64_t fh;
	uint32_t refs; /* under the table lock; 1 = the table's */
	atomic_bool released;
	atomic_bool flocked; /* a flock lock was taken through this handle */
	/* Directories: readdir position (the d_off of the next entry) and
	 * whether the fd's offset is there (see ops_dir.c). */
	pthread_mutex_t dir_lock;
	int64_t dir_pos;
	bool dir_pos_valid;
};

struct fs_handles {
	pthread_mutex_t lock;
	struct fs_slots s;
	uint32_t count;
};

int fs_handles_init(struct fs_handles *t);
/* Close everything (session over). */
void fs_handles_release_all(struct fs_handles *t, struct fs_inodes *inodes);
void fs_handles_fini(struct fs_handles *t, struct fs_inodes *inodes);
/* Enter an open fd (taken over) for `inode` (the caller's reference is
 * taken over too).  Returns fh or -ENOMEM / -ENFILE (fd closed, inode put). */
int64_t fs_handle_add(struct fs_handles *t, struct fs_inodes *inodes, int fd,
                      enum fs_handle_kind kind, int flags, struct fs_inode *inode);
/* The handle `fh` of `kind` with a reference, or NULL (unknown, released,
 * another kind). */
struct fs_handle *fs_handle_get(struct fs_handles *t, uint64_t fh, enum fs_handle_kind kind);
void fs_handle_put(struct fs_handles *t, struct fs_inodes *inodes, struct fs_handle *h);
/* RELEASE: remove fh from the table (closed once the last user is done).
 * Returns the handle with a reference (the caller puts it) or NULL. */
struct fs_handle *fs_handle_remove(struct fs_handles *t, uint64_t fh, enum fs_handle_kind kind);
uint32_t fs_handles_count(struct fs_handles *t);

/* ---- the file system server ---------------------------------------------- */

struct fs;

/* Called when a request fs_handle() deferred (a blocking lock) is over:
 * its reply is written, `written` bytes, to be pushed; or written < 0: the
 * front end is gone, nothing was written, release without pushing.  From
 * the lock waiter thread, or the thread resetting the server. */
typedef void (*fs_complete_fn)(void *opaque, void *cookie, int32_t written);

struct fs_stats {
	atomic_uint_fast64_t requests, errors, malformed, forgets;
	atomic_uint_fast64_t ops[FUSE_TMPFILE + 1];
};

/* Per service thread scratch space (one per thread that calls fs_handle). */
struct fs_thread {
	uint8_t *arg; /* FS_ARG_MAX: header + arguments copied from the guest */
	uint8_t *out; /* FS_OUT_MAX: replies built before copying out */
	struct iovec *iov;
	unsigned iov_max;
};

int fs_thread_init(struct fs_thread *t, unsigned iov_max);
void fs_thread_fini(struct fs_thread *t);

/* Negotiated at INIT (session.c). */
struct fs_session {
	atomic_bool up;       /* INIT done, no DESTROY since */
	uint32_t minor;       /* FUSE minor version agreed */
	uint64_t flags;       /* FUSE_* init flags in force (flags | flags2 << 32) */
	uint32_t max_write;   /* bytes */
	uint32_t max_readdir; /* bytes of one READDIR(PLUS) reply */
};

struct fs {
	struct fs_opts opts;
	int root_fd; /* O_PATH of the shared directory, owned by the inode table */
	int proc_fd; /* /proc/self/fd (O_PATH), owned */
	/* Prefix of the path naming our fd N for the path-based xattr calls:
	 * "" (relative to the working directory fs_new() set to /proc/self/fd;
	 * the only way inside the sandbox), or "/proc/self/fd/" for a process
	 * that needs its working directory (the fuzzer). */
	const char *proc_prefix;
	dev_t root_dev;
	ino_t root_ino;
	struct fs_inodes inodes;
	struct fs_handles handles;
	struct fs_session s;
	pthread_mutex_t init_lock; /* INIT/DESTROY against each other */
	struct fs_stats st;
	/* Deferred completions (lock.c). */
	fs_complete_fn complete;
	void (*defer)(void *opaque, void *cookie); /* before a request is deferred */
	void *complete_opaque;
	struct fs_locks *locks;
};

/*
 * Create the server for the directory `root_fd` (O_PATH|O_DIRECTORY, taken
 * over) with `proc_fd` (O_PATH of /proc/self/fd, taken over; the process's
 * working directory must be it, see ops_xattr.c).  0 or -errno.
 */
int fs_new(struct fs **out, const struct fs_opts *o, int root_fd, int proc_fd,
           fs_complete_fn complete, void *opaque);
void fs_free(struct fs *fs);

/*
 * Serve one request chain: c->iov[0, out_num) hold the FUSE request,
 * c->iov[out_num, ...) take the reply.  Returns 0 with *written = bytes of
 * reply (0 for requests without one, or a chain too small to take a
 * header), or 1 when the request was deferred: fs->complete(opaque, cookie,
 * written) is called later, and the chain's iovecs (copied) and guest
 * memory (the caller holds a reference) must stay valid until then.
 * Malformed requests get an error reply (EINVAL, ENOSYS, EIO before INIT).
 * Thread: any service thread, with its own `t`.
 */
int fs_handle(struct fs *fs, struct fs_thread *t, const struct vhu_chain *c, void *cookie,
              uint32_t *written);

/* The front end is gone: cancel deferred requests (not completed) and end
 * the FUSE session (every handle closed, every lookup but the root's
 * forgotten).  Thread: handler, with no request running. */
void fs_reset(struct fs *fs);

#endif
