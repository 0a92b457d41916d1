/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Seeds for fuzz-fuse:  fuzz-record-fuse OUTDIR  (writes OUTDIR/fuse/NAME)
 *
 * Sessions a guest's FUSE layer would send, in fuzz_fuse.c's input
 * format, covering every opcode the server answers: files, directories,
 * names, attributes, xattrs, locks (a blocking one included), and the odd
 * ones (FORGET storms, unknown opcodes, a short header).  Nodeids and fhs
 * are given as indexes of what the session was handed (record flags 0x20
 * and 0x40), so the fuzzer starts from requests that reach the operations.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NODE 0x20 /* nodeid = handed nodeid [nodeid] */
#define FH   0x40 /* u64 at argument 0 = handed fh [value] */
#define FH2  0x80 /* u64 at argument 24 = handed fh [value] (+ nodeid_out at 16) */

static const char *outdir_g;
static uint8_t in[1 << 16];
static size_t len;
static uint64_t unique;

static void start(uint8_t session_flags)
{
	len = 0;
	in[len++] = session_flags;
}

/* One request: opcode, nodeid (an index with NODE), args (pieces). */
static void rq(uint8_t rf, uint16_t cap, uint32_t opcode, uint64_t nodeid, const void *a,
               size_t alen, const void *b, size_t blen, const void *c, size_t clen)
{
	struct fuse_in_header h = {
	    .len = (uint32_t)(sizeof(h) + alen + blen + clen),
	    .opcode = opcode,
	    .unique = ++unique,
	    .nodeid = nodeid,
	    .pid = 42,
	};
	uint16_t n = (uint16_t)h.len;
	in[len++] = rf;
	memcpy(in + len, &cap, 2);
	memcpy(in + len + 2, &n, 2);
	len += 4;
	memcpy(in + len, &h, sizeof(h));
	len += sizeof(h);
	if (alen)
		memcpy(in + len, a, alen);
	len += alen;
	if (blen)
		memcpy(in + len, b, blen);
	len += blen;
	if (clen)
		memcpy(in + len, c, clen);
	len += clen;
}

/* (Through a second macro so that NAME() expands into two arguments.) */
#define R1_(rf, op, node, a, al)               rq(rf, 4096, op, node, a, al, NULL, 0, NULL, 0)
#define R2_(rf, op, node, a, al, b, bl)        rq(rf, 4096, op, node, a, al, b, bl, NULL, 0)
#define R3_(rf, op, node, a, al, b, bl, c, cl) rq(rf, 4096, op, node, a, al, b, bl, c, cl)
#define R1(...)                                R1_(__VA_ARGS__)
#define R2(...)                                R2_(__VA_ARGS__)
#define R3(...)                                R3_(__VA_ARGS__)
#define NAME(s)                                (s), strlen(s) + 1

static void save(const char *dir, const char *name)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/fuse", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/fuse/%s", dir, name);
	FILE *f = fopen(p, "wb");
	if (!f || fwrite(in, 1, len, f) != len) {
		perror(p);
		exit(1);
	}
	fclose(f);
}

static void files(void)
{
	struct fuse_create_in ci = {.flags = O_RDWR, .mode = 0644};
	struct fuse_write_in wi = {.fh = 0, .size = 11};
	struct fuse_read_in ri = {.fh = 0, .size = 4096};
	struct fuse_getattr_in gi = {0};
	struct fuse_setattr_in si = {.valid = FATTR_SIZE | FATTR_MODE | FATTR_MTIME,
	                             .size = 5,
	                             .mode = 0600,
	                             .mtime = 12345};
	struct fuse_fsync_in fs = {.fh = 0};
	struct fuse_flush_in fl = {.fh = 0};
	struct fuse_release_in rl = {.fh = 0};
	struct fuse_open_in oi = {.flags = O_RDONLY};

	start(0);
	R1(0, FUSE_LOOKUP, 1, NAME("a"));
	R2(0, FUSE_CREATE, 1, &ci, sizeof(ci), NAME("a"));
	R2(FH | NODE, FUSE_WRITE, 0, &wi, sizeof(wi), "hello world", 11);
	R1(FH | NODE, FUSE_READ, 0, &ri, sizeof(ri));
	R1(NODE, FUSE_GETATTR, 0, &gi, sizeof(gi));
	R1(NODE, FUSE_SETATTR, 0, &si, sizeof(si));
	R1(FH | NODE, FUSE_FSYNC, 0, &fs, sizeof(fs));
	R1(FH | NODE, FUSE_FLUSH, 0, &fl, sizeof(fl));
	R1(FH | NODE, FUSE_RELEASE, 0, &rl, sizeof(rl));
	R1(NODE, FUSE_OPEN, 0, &oi, sizeof(oi));
	R1(FH | NODE, FUSE_READ, 0, &ri, sizeof(ri));
	save(outdir_g, "files");
}

static void dirs(void)
{
	struct fuse_mkdir_in mi = {.mode = 0755};
	struct fuse_mknod_in ni = {.mode = S_IFIFO | 0600};
	struct fuse_link_in li = {.oldnodeid = 1};
	struct fuse_rename2_in r2 = {.newdir = 1, .flags = RENAME_NOREPLACE};
	struct fuse_rename_in r1 = {.newdir = 1};
	struct fuse_open_in oi = {0};
	struct fuse_read_in ri = {.fh = 0, .size = 4096};
	struct fuse_release_in rl = {.fh = 0};

	start(0);
	R2(0, FUSE_MKDIR, 1, &mi, sizeof(mi), NAME("d"));
	R2(NODE, FUSE_MKNOD, 0, &ni, sizeof(ni), NAME("fifo"));
	R2(0, FUSE_SYMLINK, 1, NAME("ln"), NAME("/etc/shadow"));
	R1(NODE, FUSE_READLINK, 2, NULL, 0);
	R2(0, FUSE_LINK, 1, &li, sizeof(li), NAME("hard"));
	R3(0, FUSE_RENAME, 1, &r1, sizeof(r1), NAME("ln"), NAME("ln2"));
	R3(0, FUSE_RENAME2, 1, &r2, sizeof(r2), NAME("ln2"), NAME("d"));
	R1(NODE, FUSE_OPENDIR, 0, &oi, sizeof(oi));
	R1(FH | NODE, FUSE_READDIR, 0, &ri, sizeof(ri));
	R1(FH | NODE, FUSE_READDIRPLUS, 0, &ri, sizeof(ri));
	R1(FH | NODE, FUSE_RELEASEDIR, 0, &rl, sizeof(rl));
	R1(NODE, FUSE_UNLINK, 0, NAME("fifo"));
	R1(0, FUSE_RMDIR, 1, NAME("d"));
	R1(0, FUSE_LOOKUP, 1, NAME(".."));
	save(outdir_g, "dirs");
}

static void xattrs(void)
{
	struct fuse_mkdir_in mi = {.mode = 0755};
	struct fuse_setxattr_in si = {.size = 3};
	struct fuse_getxattr_in gi = {.size = 64};
	struct fuse_getxattr_in g0 = {.size = 0};

	start(0);
	R2(0, FUSE_MKDIR, 1, &mi, sizeof(mi), NAME("x"));
	R3(NODE, FUSE_SETXATTR, 0, &si, FUSE_COMPAT_SETXATTR_IN_SIZE, NAME("user.k"), "val", 3);
	R2(NODE, FUSE_GETXATTR, 0, &g0, sizeof(g0), NAME("user.k"));
	R2(NODE, FUSE_GETXATTR, 0, &gi, sizeof(gi), NAME("user.k"));
	R1(NODE, FUSE_LISTXATTR, 0, &gi, sizeof(gi));
	R1(NODE, FUSE_REMOVEXATTR, 0, NAME("user.k"));
	R3(NODE, FUSE_SETXATTR, 0, &si, FUSE_COMPAT_SETXATTR_IN_SIZE, NAME("security.capability"),
	   "val", 3);
	save(outdir_g, "xattrs");
}

static void locks(void)
{
	struct fuse_create_in ci = {.flags = O_RDWR, .mode = 0644};
	struct fuse_open_in oi = {.flags = O_RDWR};
	struct fuse_lk_in ex0 = {.fh = 0, .lk = {.type = F_WRLCK}, .lk_flags = FUSE_LK_FLOCK};
	struct fuse_lk_in ex1 = {.fh = 1, .lk = {.type = F_WRLCK}, .lk_flags = FUSE_LK_FLOCK};
	struct fuse_lk_in un0 = {.fh = 0, .lk = {.type = F_UNLCK}, .lk_flags = FUSE_LK_FLOCK};
	struct fuse_lk_in posix = {.fh = 0, .lk = {.type = F_RDLCK, .end = 100}};

	start(0);
	R2(0, FUSE_CREATE, 1, &ci, sizeof(ci), NAME("l"));
	R1(NODE, FUSE_OPEN, 0, &oi, sizeof(oi));
	R1(FH | NODE, FUSE_SETLK, 0, &ex0, sizeof(ex0));
	R1(FH | NODE, FUSE_SETLK, 0, &ex1, sizeof(ex1));
	R1(FH | NODE, FUSE_SETLKW, 0, &ex1, sizeof(ex1));
	R1(FH | NODE, FUSE_SETLK, 0, &un0, sizeof(un0));
	R1(FH | NODE, FUSE_GETLK, 0, &posix, sizeof(posix));
	save(outdir_g, "locks");
}

static void misc(void)
{
	struct fuse_create_in ci = {.flags = O_RDWR, .mode = 0644};
	struct fuse_access_in ai = {.mask = 4};
	struct fuse_fallocate_in fa = {.fh = 0, .offset = 4096, .length = 8192};
	struct fuse_lseek_in ls = {.fh = 0, .whence = 4 /* SEEK_HOLE */};
	struct fuse_copy_file_range_in cr = {.fh_in = 0, .fh_out = 1, .len = 100};
	struct fuse_syncfs_in sy = {0};
	struct fuse_getattr_in ga = {0};
	struct fuse_forget_in fo = {.nlookup = 1};
	struct {
		struct fuse_batch_forget_in h;
		struct fuse_forget_one one[2];
	} bf = {{.count = 2}, {{.nodeid = 1, .nlookup = 5}, {.nodeid = 77, .nlookup = 1}}};
	struct fuse_interrupt_in ii = {.unique = 3};
	struct fuse_init_in init = {.major = 7, .minor = 31, .flags = FUSE_ASYNC_READ};

	start(0);
	R1(0, FUSE_STATFS, 1, NULL, 0);
	R1(0, FUSE_ACCESS, 1, &ai, sizeof(ai));
	R2(0, FUSE_CREATE, 1, &ci, sizeof(ci), NAME("m1"));
	R2(0, FUSE_CREATE, 1, &ci, sizeof(ci), NAME("m2"));
	R1(FH | NODE, FUSE_FALLOCATE, 0, &fa, sizeof(fa));
	R1(FH | NODE, FUSE_LSEEK, 0, &ls, sizeof(ls));
	R1(FH | FH2 | NODE, FUSE_COPY_FILE_RANGE, 0, &cr, sizeof(cr));
	R1(0, FUSE_SYNCFS, 1, &sy, sizeof(sy));
	R1(NODE, FUSE_FORGET, 0, &fo, sizeof(fo));
	R1(0, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf));
	R1(0, FUSE_INTERRUPT, 0, &ii, sizeof(ii));
	R1(0, FUSE_IOCTL, 1, &ai, sizeof(ai));
	R1(0, 99, 1, NULL, 0);
	R1(0, FUSE_DESTROY, 0, NULL, 0);
	R1(0, FUSE_INIT, 0, &init, sizeof(init));
	R1(0, FUSE_GETATTR, 1, &ga, sizeof(ga));
	save(outdir_g, "misc");
}

static void raw(void)
{
	start(1); /* no INIT: everything gets EIO but INIT */
	R1(0, FUSE_GETATTR, 1, NULL, 0);
	in[len++] = 0x10; /* keep the (wrong) length */
	uint16_t cap = 4096, n = 20;
	memcpy(in + len, &cap, 2);
	memcpy(in + len + 2, &n, 2);
	len += 4;
	memset(in + len, 0xff, n);
	len += n;
	save(outdir_g, "raw");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz-record-fuse OUTDIR\n");
		return 2;
	}
	outdir_g = argv[1];
	files();
	dirs();
	xattrs();
	locks();
	misc();
	raw();
	return 0;
}
