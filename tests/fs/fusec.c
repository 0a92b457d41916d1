/* SPDX-License-Identifier: Apache-2.0 */
#include "fusec.h"
#include "vt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the daemon ------------------------------------------------------ */

const char *fst_binary(void)
{
	static char path[4096];
	const char *root = getenv("VHU_BUILD_ROOT");
	snprintf(path, sizeof(path), "%s/devices/fs/vhu-fs", root ? root : ".");
	return path;
}

/* The test runs under valgrind (scripts/valgrind): the daemon too, with
 * memcheck failing its exit status on an error or a leak, and without the
 * sandbox and seccomp filter, which valgrind's own system calls trip. */
static bool under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");
	return (p && strstr(p, "vgpreload")) || getenv("VHU_FS_VALGRIND");
}

static pid_t spawn(struct fst_env *e, const char *const *args, bool with_sock)
{
	const char *argv[80];
	unsigned n = 0;

	if (under_valgrind()) {
		argv[n++] = "/usr/bin/valgrind";
		argv[n++] = "--tool=memcheck";
		argv[n++] = "--error-exitcode=99";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--errors-for-leak-kinds=definite,indirect";
		argv[n++] = "--show-leak-kinds=definite,indirect";
		argv[n++] = "--quiet";
	}
	argv[n++] = fst_binary();
	if (with_sock) {
		argv[n++] = "--socket-path";
		argv[n++] = e->sock;
		argv[n++] = "--shared-dir";
		argv[n++] = e->share;
	}
	for (unsigned i = 0; args && args[i] && n < 75; i++)
		argv[n++] = args[i];
	if (under_valgrind() && with_sock) {
		argv[n++] = "--sandbox";
		argv[n++] = "none";
		argv[n++] = "--seccomp";
		argv[n++] = "none";
	}
	argv[n] = NULL;
	return vt_spawn(argv, e->out, e->err, -1);
}

static int make_dir(struct fst_env *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/vhu-fst-XXXXXX");
	if (!mkdtemp(e->dir))
		return -errno;
	snprintf(e->sock, sizeof(e->sock), "%s/sock", e->dir);
	snprintf(e->share, sizeof(e->share), "%s/share", e->dir);
	snprintf(e->out, sizeof(e->out), "%s/stdout", e->dir);
	snprintf(e->err, sizeof(e->err), "%s/stderr", e->dir);
	return mkdir(e->share, 0755) < 0 ? -errno : 0;
}

int fst_prepare(struct fst_env *e)
{
	return make_dir(e);
}

int fst_start(struct fst_env *e, const char *const *args)
{
	int err = make_dir(e);
	return err ? err : fst_launch(e, args);
}

int fst_launch(struct fst_env *e, const char *const *args)
{
	struct stat st;
	e->pid = spawn(e, args, true);
	if (e->pid < 0)
		return -errno;
	for (int waited = 0; waited < FUSEC_TIMEOUT_MS; waited += 10) {
		if (stat(e->sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (waitpid(e->pid, NULL, WNOHANG) == e->pid) {
			e->pid = 0;
			fprintf(stderr, "# vhu-fs exited: %s\n", fst_slurp(e->err));
			return -ECHILD;
		}
		vt_sleep_ms(10);
	}
	return -ETIMEDOUT;
}

int fst_start_client(struct fst_env *e, const char *const *args)
{
	const char *argv[16] = {"--client"};
	unsigned n = 1;
	int err = make_dir(e);
	if (err)
		return err;
	int lfd = vhuf_listen(e->sock);
	if (lfd < 0)
		return lfd;
	for (unsigned i = 0; args && args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	e->pid = spawn(e, argv, true);
	if (e->pid < 0) {
		close(lfd);
		return -errno;
	}
	return lfd;
}

int fst_stop(struct fst_env *e)
{
	if (e->pid <= 0)
		return -1;
	kill(e->pid, SIGTERM);
	int rc = vt_wait_exit(e->pid, FUSEC_TIMEOUT_MS);
	e->pid = 0;
	return rc;
}

void fst_cleanup(struct fst_env *e)
{
	char cmd[256];
	if (e->pid > 0)
		fst_stop(e);
	if (!e->dir[0] || strncmp(e->dir, "/tmp/vhu-fst-", 13))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", e->dir);
	e->dir[0] = 0;
}

int fst_run(struct fst_env *e, const char *const *args)
{
	if (!e->dir[0] && make_dir(e) < 0)
		return -1;
	pid_t pid = spawn(e, args, false);
	return pid < 0 ? -1 : vt_wait_exit(pid, FUSEC_TIMEOUT_MS);
}

const char *fst_slurp(const char *path)
{
	return vt_slurp(path);
}

const char *fst_path(const struct fst_env *e, const char *rel)
{
	static char buf[512];
	snprintf(buf, sizeof(buf), "%s/%s", e->share, rel);
	return buf;
}

/* ---- the client -------------------------------------------------------- */

#define COOKIE ((void *)(uintptr_t)0xf05e)

int fusec_attach(struct fusec *c, struct vhuf *f, unsigned nreq, unsigned qsize)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->f = f;
	if (1 + nreq > FUSEC_MAXQ)
		return -EINVAL;
	rc = vhuf_negotiate(c->f, ~(1ULL << VHU_F_LOG_ALL), ~0ULL);
	c->nq = 1 + nreq;
	for (unsigned q = 0; rc == 0 && q < c->nq; q++) {
		c->q[q].req_gpa = vhuf_alloc(c->f, FUSEC_BUF, 4096);
		c->q[q].rep_gpa = vhuf_alloc(c->f, FUSEC_BUF, 4096);
		if (c->q[q].req_gpa == UINT64_MAX || c->q[q].rep_gpa == UINT64_MAX)
			rc = -ENOMEM;
		else
			rc = vhuf_queue_setup(c->f, q, qsize);
		c->q[q].req = vhuf_ptr(c->f, c->q[q].req_gpa);
		c->q[q].rep = vhuf_ptr(c->f, c->q[q].rep_gpa);
		c->q[q].unique = (uint64_t)q << 48;
	}
	if (rc < 0)
		fusec_close(c);
	return rc;
}

int fusec_connect(struct fusec *c, const char *sock, unsigned nreq, unsigned qsize)
{
	struct vhuf_opts o = {.mem_size = 64u << 20, .connect_timeout_ms = FUSEC_TIMEOUT_MS};
	struct vhuf *f;
	int rc = vhuf_connect(&f, sock, &o);
	if (rc < 0) {
		memset(c, 0, sizeof(*c));
		return rc;
	}
	return fusec_attach(c, f, nreq, qsize);
}

void fusec_close(struct fusec *c)
{
	if (c->f)
		vhuf_close(c->f);
	c->f = NULL;
}

uint64_t fusec_alloc(struct fusec *c, size_t len, void **ptr)
{
	uint64_t gpa = vhuf_alloc(c->f, len, 64);
	*ptr = gpa == UINT64_MAX ? NULL : vhuf_ptr(c->f, gpa);
	return gpa;
}

static void *wait_used(struct fusec *c, unsigned q, int timeout_ms, uint32_t *len)
{
	void *cookie;
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		if (vhuf_get_used(c->f, q, &cookie, len) == 1)
			return cookie;
		vhuf_wait_call(c->f, q, 50);
	}
	return vhuf_get_used(c->f, q, &cookie, len) == 1 ? cookie : NULL;
}

int fusec_raw(struct fusec *c, unsigned q, const struct vhuf_buf *bufs, unsigned n)
{
	uint32_t len;
	int rc = vhuf_submit(c->f, q, bufs, n, n > 4, COOKIE);
	if (rc < 0)
		return rc;
	vhuf_kick(c->f, q);
	return wait_used(c, q, FUSEC_TIMEOUT_MS, &len) == COOKIE ? (int)len : -ETIMEDOUT;
}

static int64_t submit(struct fusec *c, unsigned q, uint32_t opcode, uint64_t nodeid, uint32_t uid,
                      uint32_t gid, const struct iovec *args, unsigned nargs, size_t reply_cap)
{
	struct fusec_q *cq = &c->q[q];
	struct fuse_in_header h = {
	    .opcode = opcode,
	    .unique = ++cq->unique,
	    .nodeid = nodeid,
	    .uid = uid,
	    .gid = gid,
	    .pid = 4242,
	};
	size_t len = sizeof(h);

	if (q >= c->nq || reply_cap > FUSEC_BUF)
		return -EINVAL;
	for (unsigned i = 0; i < nargs; i++) {
		if (len + args[i].iov_len > FUSEC_BUF)
			return -E2BIG;
		memcpy(cq->req + len, args[i].iov_base, args[i].iov_len);
		len += args[i].iov_len;
	}
	h.len = (uint32_t)len;
	memcpy(cq->req, &h, sizeof(h));
	memset(cq->rep, 0xa5, reply_cap < 64 ? reply_cap : 64);
	struct vhuf_buf b[2] = {{cq->req_gpa, (uint32_t)len, false},
	                        {cq->rep_gpa, (uint32_t)reply_cap, true}};
	int rc = vhuf_submit(c->f, q, b, reply_cap ? 2 : 1, false, COOKIE);
	if (rc < 0)
		return rc;
	vhuf_kick(c->f, q);
	return (int64_t)h.unique;
}

int64_t fusec_submit(struct fusec *c, unsigned q, uint32_t opcode, uint64_t nodeid,
                     const struct iovec *args, unsigned nargs, size_t reply_cap)
{
	return submit(c, q, opcode, nodeid, 0, 0, args, nargs, reply_cap);
}

int fusec_wait(struct fusec *c, unsigned q, int timeout_ms, struct fusec_reply *r)
{
	struct fusec_q *cq = &c->q[q];
	struct fuse_out_header h;
	uint32_t used;

	memset(r, 0, sizeof(*r));
	if (wait_used(c, q, timeout_ms, &used) != COOKIE)
		return -ETIMEDOUT;
	r->used = used;
	if (used == 0)
		return 0; /* no reply (FORGET) */
	memcpy(&h, cq->rep, sizeof(h));
	if (used < sizeof(h) || h.len != used || h.unique != cq->unique || h.error > 0 ||
	    (h.error && h.len != sizeof(h)))
		return -EPROTO;
	r->error = h.error;
	r->len = h.len - (uint32_t)sizeof(h);
	r->data = cq->rep + sizeof(h);
	return h.error;
}

int fusec_call_as(struct fusec *c, unsigned q, uint32_t opcode, uint64_t nodeid, uint32_t uid,
                  uint32_t gid, const struct iovec *args, unsigned nargs, size_t reply_cap,
                  struct fusec_reply *r)
{
	int64_t u = submit(c, q, opcode, nodeid, uid, gid, args, nargs, reply_cap);
	memset(r, 0, sizeof(*r));
	if (u < 0)
		return (int)u;
	return fusec_wait(c, q, FUSEC_TIMEOUT_MS, r);
}

int fusec_call(struct fusec *c, unsigned q, uint32_t opcode, uint64_t nodeid,
               const struct iovec *args, unsigned nargs, size_t reply_cap, struct fusec_reply *r)
{
	return fusec_call_as(c, q, opcode, nodeid, 0, 0, args, nargs, reply_cap, r);
}

/* ---- operations ------------------------------------------------------ */

#define IOV(p, n)   ((struct iovec){(void *)(p), (n)})
#define NAME(s)     IOV((s), strlen(s) + 1)
#define REPLY_SMALL 4096

/* A call whose reply is one struct: copies it out when it came whole. */
static int call_struct(struct fusec *c, uint32_t op, uint64_t nodeid, const struct iovec *a,
                       unsigned n, void *out, size_t outlen)
{
	struct fusec_reply r;
	int rc = fusec_call(c, 1, op, nodeid, a, n, REPLY_SMALL, &r);
	if (rc == 0 && out) {
		if (r.len < outlen)
			return -EPROTO;
		memcpy(out, r.data, outlen);
	}
	return rc;
}

int fusec_init(struct fusec *c, uint32_t minor, uint32_t flags)
{
	struct fuse_init_in in = {
	    .major = FUSE_KERNEL_VERSION,
	    .minor = minor,
	    .max_readahead = 1u << 20,
	    .flags = flags,
	};
	struct iovec a = IOV(&in, sizeof(in));
	return call_struct(c, FUSE_INIT, 0, &a, 1, &c->init, sizeof(c->init));
}

int fusec_lookup(struct fusec *c, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	struct iovec a = NAME(name);
	int rc = call_struct(c, FUSE_LOOKUP, parent, &a, 1, e, sizeof(*e));
	if (rc == 0 && e->nodeid == 0)
		return -ENOENT; /* a cached negative entry */
	return rc;
}

int fusec_forget(struct fusec *c, uint64_t nodeid, uint64_t n)
{
	struct fuse_forget_in in = {.nlookup = n};
	struct iovec a = IOV(&in, sizeof(in));
	struct fusec_reply r;
	int rc = fusec_call(c, 0, FUSE_FORGET, nodeid, &a, 1, 0, &r);
	return rc < 0 ? rc : r.used ? -EPROTO : 0;
}

int fusec_getattr(struct fusec *c, uint64_t nodeid, struct fuse_attr *attr)
{
	struct fuse_getattr_in in = {0};
	struct fuse_attr_out out;
	struct iovec a = IOV(&in, sizeof(in));
	int rc = call_struct(c, FUSE_GETATTR, nodeid, &a, 1, &out, sizeof(out));
	if (rc == 0 && attr)
		*attr = out.attr;
	return rc;
}

int fusec_mkdir(struct fusec *c, uint64_t parent, const char *name, uint32_t mode,
                struct fuse_entry_out *e)
{
	struct fuse_mkdir_in in = {.mode = mode};
	struct iovec a[2] = {IOV(&in, sizeof(in)), NAME(name)};
	return call_struct(c, FUSE_MKDIR, parent, a, 2, e, sizeof(*e));
}

int fusec_mknod(struct fusec *c, uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
                struct fuse_entry_out *e)
{
	struct fuse_mknod_in in = {.mode = mode, .rdev = rdev};
	struct iovec a[2] = {IOV(&in, sizeof(in)), NAME(name)};
	return call_struct(c, FUSE_MKNOD, parent, a, 2, e, sizeof(*e));
}

int fusec_symlink(struct fusec *c, uint64_t parent, const char *name, const char *target,
                  struct fuse_entry_out *e)
{
	struct iovec a[2] = {NAME(name), NAME(target)};
	return call_struct(c, FUSE_SYMLINK, parent, a, 2, e, sizeof(*e));
}

int fusec_link(struct fusec *c, uint64_t old, uint64_t newparent, const char *name,
               struct fuse_entry_out *e)
{
	struct fuse_link_in in = {.oldnodeid = old};
	struct iovec a[2] = {IOV(&in, sizeof(in)), NAME(name)};
	return call_struct(c, FUSE_LINK, newparent, a, 2, e, sizeof(*e));
}

int fusec_create(struct fusec *c, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
                 struct fuse_entry_out *e, uint64_t *fh)
{
	struct fuse_create_in in = {.flags = flags, .mode = mode};
	struct iovec a[2] = {IOV(&in, sizeof(in)), NAME(name)};
	struct fusec_reply r;
	int rc = fusec_call(c, 1, FUSE_CREATE, parent, a, 2, REPLY_SMALL, &r);
	if (rc)
		return rc;
	if (r.len < sizeof(*e) + sizeof(struct fuse_open_out))
		return -EPROTO;
	memcpy(e, r.data, sizeof(*e));
	struct fuse_open_out oo;
	memcpy(&oo, r.data + sizeof(*e), sizeof(oo));
	*fh = oo.fh;
	return 0;
}

static int do_open(struct fusec *c, uint32_t op, uint64_t nodeid, uint32_t flags, uint64_t *fh)
{
	struct fuse_open_in in = {.flags = flags};
	struct fuse_open_out out;
	struct iovec a = IOV(&in, sizeof(in));
	int rc = call_struct(c, op, nodeid, &a, 1, &out, sizeof(out));
	if (rc == 0)
		*fh = out.fh;
	return rc;
}

int fusec_open(struct fusec *c, uint64_t nodeid, uint32_t flags, uint64_t *fh)
{
	return do_open(c, FUSE_OPEN, nodeid, flags, fh);
}

int fusec_opendir(struct fusec *c, uint64_t nodeid, uint64_t *fh)
{
	return do_open(c, FUSE_OPENDIR, nodeid, 0, fh);
}

ssize_t fusec_read(struct fusec *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf,
                   size_t len)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = (uint32_t)len};
	struct iovec a = IOV(&in, sizeof(in));
	struct fusec_reply r;
	int rc =
	    fusec_call(c, 1, FUSE_READ, nodeid, &a, 1, sizeof(struct fuse_out_header) + len, &r);
	if (rc)
		return rc;
	if (r.len > len)
		return -EPROTO;
	memcpy(buf, r.data, r.len);
	return r.len;
}

ssize_t fusec_write(struct fusec *c, uint64_t nodeid, uint64_t fh, uint64_t off, const void *buf,
                    size_t len)
{
	struct fuse_write_in in = {.fh = fh, .offset = off, .size = (uint32_t)len};
	struct iovec a[2] = {IOV(&in, sizeof(in)), IOV(buf, len)};
	struct fuse_write_out out;
	int rc = call_struct(c, FUSE_WRITE, nodeid, a, 2, &out, sizeof(out));
	return rc ? rc : (ssize_t)out.size;
}

int fusec_release(struct fusec *c, uint64_t nodeid, uint64_t fh, bool dir)
{
	struct fuse_release_in in = {.fh = fh};
	struct iovec a = IOV(&in, sizeof(in));
	return call_struct(c, dir ? FUSE_RELEASEDIR : FUSE_RELEASE, nodeid, &a, 1, NULL, 0);
}

int fusec_unlink(struct fusec *c, uint64_t parent, const char *name, bool dir)
{
	struct iovec a = NAME(name);
	return call_struct(c, dir ? FUSE_RMDIR : FUSE_UNLINK, parent, &a, 1, NULL, 0);
}

int fusec_rename(struct fusec *c, uint64_t olddir, const char *oldname, uint64_t newdir,
                 const char *newname, uint32_t flags)
{
	struct fuse_rename2_in in = {.newdir = newdir, .flags = flags};
	struct iovec a[3] = {IOV(&in, sizeof(in)), NAME(oldname), NAME(newname)};
	return call_struct(c, FUSE_RENAME2, olddir, a, 3, NULL, 0);
}

int fusec_readlink(struct fusec *c, uint64_t nodeid, char *buf, size_t len)
{
	struct fusec_reply r;
	int rc = fusec_call(c, 1, FUSE_READLINK, nodeid, NULL, 0, REPLY_SMALL + 4096, &r);
	if (rc)
		return rc;
	if (r.len >= len)
		return -ERANGE;
	memcpy(buf, r.data, r.len);
	buf[r.len] = 0;
	return (int)r.len;
}

int fusec_setattr(struct fusec *c, uint64_t nodeid, const struct fuse_setattr_in *in,
                  struct fuse_attr *attr)
{
	struct fuse_attr_out out;
	struct iovec a = IOV(in, sizeof(*in));
	int rc = call_struct(c, FUSE_SETATTR, nodeid, &a, 1, &out, sizeof(out));
	if (rc == 0 && attr)
		*attr = out.attr;
	return rc;
}

ssize_t fusec_readdir(struct fusec *c, uint64_t nodeid, uint64_t fh, uint64_t off, void *buf,
                      size_t size, bool plus)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = (uint32_t)size};
	struct iovec a = IOV(&in, sizeof(in));
	struct fusec_reply r;
	int rc = fusec_call(c, 1, plus ? FUSE_READDIRPLUS : FUSE_READDIR, nodeid, &a, 1,
	                    sizeof(struct fuse_out_header) + size, &r);
	if (rc)
		return rc;
	if (r.len > size)
		return -EPROTO;
	memcpy(buf, r.data, r.len);
	return r.len;
}

int fusec_list(struct fusec *c, uint64_t nodeid, char *out, size_t outlen, bool plus)
{
	static uint8_t buf[65536];
	uint64_t fh, off = 0;
	size_t used = 0;
	int count = 0, rc = fusec_opendir(c, nodeid, &fh);

	if (rc)
		return rc;
	for (;;) {
		ssize_t n = fusec_readdir(c, nodeid, fh, off, buf, 4096, plus);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		for (ssize_t p = 0; p < n;) {
			struct fuse_dirent *d;
			size_t sz;
			if (plus) {
				struct fuse_direntplus *dp = (void *)(buf + p);
				d = &dp->dirent;
				sz = FUSE_DIRENTPLUS_SIZE(dp);
				/* Each entry is a lookup we must give back. */
				if (dp->entry_out.nodeid)
					fusec_forget(c, dp->entry_out.nodeid, 1);
			} else {
				d = (void *)(buf + p);
				sz = FUSE_DIRENT_SIZE(d);
			}
			if (sz == 0 || (ssize_t)(p + sz) > n)
				return -EPROTO;
			if (used + d->namelen + 2 < outlen) {
				memcpy(out + used, d->name, d->namelen);
				used += d->namelen;
				out[used++] = '\n';
			}
			off = d->off;
			p += (ssize_t)sz;
			count++;
		}
	}
	if (outlen)
		out[used < outlen ? used : outlen - 1] = 0;
	fusec_release(c, nodeid, fh, true);
	return rc < 0 ? rc : count;
}
