/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: vhu-fs's FUSE server (devices/fs: framing, size checks,
 * every operation) on a real scratch directory.  Each input is a session:
 * INIT (unless the input says not to), then the input's requests, then
 * DESTROY; the directory is emptied between inputs.  Every request is its
 * own chain of exact-size heap buffers (readable part split in 1-4, the
 * writable one in 1-3), so AddressSanitizer sees a single byte read or
 * written past a descriptor.  Checked after each request: the reply fits
 * the writable part, is a well-formed FUSE reply to that request (or there
 * is none), and after each input no fd is left open.
 *
 * To reach past LOOKUP, the harness can aim a request at what the session
 * handed out: nodeids of entry replies and fhs of open replies are kept,
 * and a record may say "nodeid = handed[k]" or "first argument (the fh of
 * READ, WRITE, RELEASE, ...) = fh[k]".
 *
 * Input: u8 session flags (bit 0: no INIT, bit 1: read-only, bit 2: cache
 * never, bit 3: writeback, bit 4: no xattr), then records:
 *   u8 rec flags: bits 0-1 readable pieces - 1, bits 2-3 writable pieces - 1,
 *      bit 4 keep the header's len as given (else it is set to the bytes),
 *      bit 5 nodeid = handed nodeid [nodeid % 16], bit 6 u64 at argument
 *      offset 0 = handed fh [its value % 16], bit 7 the same at offset 24
 *      (copy_file_range's fh_out, with nodeid_out at 16 = the last nodeid)
 *   u16 writable bytes (% 70000), u16 request bytes, the request bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "fz.h"

#define MAXH 16
/* Largest file an input may make (RLIMIT_FSIZE). */
#define FUZZ_FILE_MAX (16u << 20)

static struct fs *fs;
static struct fs_thread th;
static int scratch_fd = -1;
static char scratch[64];
static uint64_t nodeids[MAXH], fhs[MAXH];
static unsigned nnode, nfh;

/* Deferred requests (blocking locks) own their buffers until completed. */
struct pending {
	struct pending *next;
	void *cookie;
	uint8_t *mem[8];
	unsigned n;
};
static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static struct pending *pend;

static void on_complete(void *opaque, void *cookie, int32_t written)
{
	pthread_mutex_lock(&plock);
	for (struct pending **p = &pend; *p; p = &(*p)->next)
		if ((*p)->cookie == cookie) {
			struct pending *x = *p;
			*p = x->next;
			for (unsigned i = 0; i < x->n; i++)
				free(x->mem[i]);
			free(x);
			break;
		}
	pthread_mutex_unlock(&plock);
}

static void rm_tree(int dfd)
{
	DIR *d = fdopendir(dup(dfd));
	struct dirent *e;
	FZ_ASSERT(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dfd, e->d_name, 0) == 0)
			continue;
		int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0) {
			fchmod(sub, 0700);
			rm_tree(sub);
			close(sub);
			unlinkat(dfd, e->d_name, AT_REMOVEDIR);
		}
	}
	closedir(d);
}

static void cleanup(void)
{
	if (scratch_fd >= 0) {
		rm_tree(scratch_fd);
		rmdir(scratch);
	}
}

/* Scratch directories of fuzzers that died (a crash skips atexit). */
static void remove_stale(void)
{
	DIR *d = opendir("/tmp");
	struct dirent *e;
	int pid;
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (sscanf(e->d_name, "vhu-fuzz-fuse-%d-", &pid) != 1 || pid <= 0 ||
		    kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		int fd =
		    openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			rm_tree(fd);
			close(fd);
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
		}
	}
	closedir(d);
}

static void init_once(void)
{
	struct fs_opts o = {.num_request_queues = 1, .queue_size = 256, .cache = FS_CACHE_AUTO};
	char cwd[4096];

	fz_quiet();
	/* Inputs choose offsets and sizes (WRITE, FALLOCATE, COPY_FILE_RANGE):
	 * without a bound one input fills the host's disk (it did, 76 GB).
	 * Past the limit the calls fail with EFBIG, which the server must
	 * report like any other error. */
	struct rlimit fsz = {.rlim_cur = FUZZ_FILE_MAX, .rlim_max = FUZZ_FILE_MAX};
	FZ_ASSERT(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
	FZ_ASSERT(setrlimit(RLIMIT_FSIZE, &fsz) == 0);
	remove_stale();
	snprintf(scratch, sizeof(scratch), "/tmp/vhu-fuzz-fuse-%d-XXXXXX", (int)getpid());
	FZ_ASSERT(mkdtemp(scratch));
	/* Root: a tmpfs of our own, in a mount namespace of our own, on the
	 * scratch directory: bounded (64 MiB, whatever FALLOCATE asks) and
	 * gone with the process, even one that crashed. */
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		mount("fuzz-fuse", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0700");
	scratch_fd = open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC);
	FZ_ASSERT(scratch_fd >= 0);
	atexit(cleanup);
	int root = open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int proc = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	FZ_ASSERT(getcwd(cwd, sizeof(cwd)));
	FZ_ASSERT(fs_new(&fs, &o, root, proc, on_complete, NULL) == 0);
	/* fs_new made /proc/self/fd our working directory (xattr paths);
	 * libFuzzer writes artifacts relative to the old one. */
	FZ_ASSERT(chdir(cwd) == 0);
	fs->proc_prefix = "/proc/self/fd/";
	FZ_ASSERT(fs_thread_init(&th, 64) == 0);
}

/* Request bytes -> chain of exact-size heap pieces; serve; check. */
static void one_request(uint8_t rf, const uint8_t *req, size_t n, size_t cap)
{
	unsigned nr = (rf & 3) + 1, nw = ((rf >> 2) & 3) + 1;
	struct iovec iov[8];
	uint8_t *mem[8];
	unsigned k = 0;
	struct vhu_chain c = {.iov = iov, .iov_max = 8};

	if (!n)
		nr = 0;
	for (unsigned i = 0; i < nr; i++) {
		size_t a = n * i / nr, b = n * (i + 1) / nr;
		mem[k] = malloc(b - a ? b - a : 1);
		FZ_ASSERT(mem[k]);
		memcpy(mem[k], req + a, b - a);
		iov[k] = (struct iovec){mem[k], b - a};
		k++;
	}
	c.out_num = k;
	c.out_len = n;
	if (!cap)
		nw = 0;
	for (unsigned i = 0; i < nw; i++) {
		size_t a = cap * i / nw, b = cap * (i + 1) / nw;
		mem[k] = malloc(b - a ? b - a : 1);
		FZ_ASSERT(mem[k]);
		memset(mem[k], 0xee, b - a);
		iov[k] = (struct iovec){mem[k], b - a};
		k++;
	}
	c.in_num = k - c.out_num;
	c.in_len = cap;

	struct pending *p = calloc(1, sizeof(*p));
	FZ_ASSERT(p);
	p->cookie = p;
	memcpy(p->mem, mem, sizeof(mem[0]) * k);
	p->n = k;
	pthread_mutex_lock(&plock);
	p->next = pend;
	pend = p;
	pthread_mutex_unlock(&plock);

	uint32_t written = 0;
	int rc = fs_handle(fs, &th, &c, p, &written);
	if (getenv("FZ_VERBOSE")) {
		struct fuse_out_header o = {0};
		struct fuse_in_header ih = {0};
		memcpy(&ih, req, n < sizeof(ih) ? n : sizeof(ih));
		if (rc == 0 && written >= sizeof(o))
			memcpy(&o, mem[c.out_num],
			       sizeof(o) <= iov[c.out_num].iov_len ? sizeof(o) : 0);
		fprintf(stderr,
		        "op %u nodeid %#llx (%zu bytes, cap %zu) -> rc %d written %u error %d\n",
		        ih.opcode, (unsigned long long)ih.nodeid, n, cap, rc, written, o.error);
	}
	if (rc == 1)
		return; /* the buffers go when it completes */
	FZ_ASSERT(rc == 0 && written <= cap);
	struct fuse_in_header in = {0};
	memcpy(&in, req, n < sizeof(in) ? n : sizeof(in));
	if (written) {
		struct fuse_out_header out;
		uint8_t reply[256];
		FZ_ASSERT(written >= sizeof(out));
		vhu_chain_read(&(struct vhu_chain){.iov = iov + c.out_num,
		                                   .out_num = c.in_num,
		                                   .iov_max = c.in_num},
		               0, reply, written < sizeof(reply) ? written : sizeof(reply));
		memcpy(&out, reply, sizeof(out));
		FZ_ASSERT(out.len == written && out.unique == in.unique && out.error <= 0);
		FZ_ASSERT(!out.error || out.len == sizeof(out));
		/* Remember what the session handed out. */
		bool entry = in.opcode == FUSE_LOOKUP || in.opcode == FUSE_MKDIR ||
		             in.opcode == FUSE_MKNOD || in.opcode == FUSE_SYMLINK ||
		             in.opcode == FUSE_LINK || in.opcode == FUSE_CREATE;
		uint64_t id = 0;
		if (!out.error && entry && written >= sizeof(out) + 8)
			memcpy(&id, reply + sizeof(out), 8);
		if (id) /* not a negative entry */
			nodeids[nnode++ % MAXH] = id;
		size_t fhoff = in.opcode == FUSE_CREATE
		                   ? sizeof(out) + sizeof(struct fuse_entry_out)
		                   : sizeof(out);
		bool opens =
		    in.opcode == FUSE_OPEN || in.opcode == FUSE_OPENDIR || in.opcode == FUSE_CREATE;
		if (!out.error && opens && written >= fhoff + 8 && fhoff + 8 <= sizeof(reply)) {
			memcpy(&fhs[nfh % MAXH], reply + fhoff, 8);
			nfh++;
		}
	}
	on_complete(NULL, p, 0);
}

static void patch(uint8_t rf, uint8_t *req, size_t n)
{
	struct fuse_in_header h;
	const size_t H = sizeof(h);
	if (n < H)
		return;
	memcpy(&h, req, H);
	/* FALLOCATE with KEEP_SIZE allocates past RLIMIT_FSIZE: keep its range
	 * inside the bound (the server's checks of wild values are in the
	 * malformed tests). */
	if (h.opcode == FUSE_FALLOCATE && n >= H + sizeof(struct fuse_fallocate_in)) {
		struct fuse_fallocate_in fa;
		memcpy(&fa, req + H, sizeof(fa));
		fa.offset %= FUZZ_FILE_MAX;
		fa.length %= FUZZ_FILE_MAX - fa.offset + 1;
		memcpy(req + H, &fa, sizeof(fa));
	}
	if (!(rf & 0x10))
		h.len = (uint32_t)n;
	if ((rf & 0x20) && nnode)
		h.nodeid = nodeids[h.nodeid % (nnode < MAXH ? nnode : MAXH)];
	memcpy(req, &h, H);
	for (unsigned off = 0; off <= 24; off += 24) {
		uint64_t v;
		if (!(rf & (off ? 0x80 : 0x40)) || !nfh || n < H + off + 8)
			continue;
		memcpy(&v, req + H + off, 8);
		v = fhs[v % (nfh < MAXH ? nfh : MAXH)];
		memcpy(req + H + off, &v, 8);
		if (off && nnode) /* copy_file_range's nodeid_out */
			memcpy(req + H + 16, &nodeids[(nnode - 1) % MAXH], 8);
	}
}

static void send_simple(uint32_t opcode, const void *args, size_t len)
{
	uint8_t buf[256];
	struct fuse_in_header h = {
	    .len = (uint32_t)(sizeof(h) + len), .opcode = opcode, .unique = 1};
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), args, len);
	one_request(0, buf, sizeof(h) + len, 4096);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t req[1 << 16];

	if (!fs)
		init_once();
	if (size < 1)
		return 0;
	int fds = fz_count_fds();
	uint8_t sf = data[0];
	fs->opts.readonly = sf & 2;
	fs->opts.cache = (sf & 4) ? FS_CACHE_NEVER : FS_CACHE_AUTO;
	fs->opts.writeback = (sf & 8) && !(sf & 4);
	fs->opts.xattr = !(sf & 16);
	nnode = nfh = 0;
	if (!(sf & 1)) {
		struct fuse_init_in in = {
		    .major = 7, .minor = 38, .flags = 0xffffffff, .max_readahead = 1 << 20};
		send_simple(FUSE_INIT, &in, sizeof(in));
	}
	for (size_t pos = 1; pos + 5 <= size;) {
		uint8_t rf = data[pos];
		size_t cap = (data[pos + 1] | (size_t)data[pos + 2] << 8) % 70000;
		size_t n = data[pos + 3] | (size_t)data[pos + 4] << 8;
		pos += 5;
		if (n > size - pos)
			n = size - pos;
		memcpy(req, data + pos, n);
		pos += n;
		patch(rf, req, n);
		one_request(rf, req, n, cap);
	}
	/* End of session: DESTROY cancels lock waits (their replies land in
	 * their own buffers, which they then free). */
	send_simple(FUSE_DESTROY, NULL, 0);
	/* A wait the waiter thread was granting just then completes by itself. */
	for (int i = 0; i < 2000; i++) {
		pthread_mutex_lock(&plock);
		bool done = pend == NULL;
		pthread_mutex_unlock(&plock);
		if (done)
			break;
		usleep(1000);
	}
	pthread_mutex_lock(&plock);
	FZ_ASSERT(pend == NULL);
	pthread_mutex_unlock(&plock);
	FZ_ASSERT(fs_inodes_count(&fs->inodes) == 1 && fs_handles_count(&fs->handles) == 0);
	rm_tree(scratch_fd);
	FZ_ASSERT(fz_count_fds() == fds);
	return 0;
}
