/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Malformed FUSE requests: short headers, lengths past the buffers, names
 * without a terminator, unknown opcodes, argument blocks of the wrong size,
 * reply buffers too small, requests before INIT, a random storm.  Each gets
 * an error reply (or, where the protocol has none, no reply), the daemon
 * keeps serving and leaks no fd.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fst.h"

#define ROOT FUSE_ROOT_ID

/* Scratch request/reply buffers in guest memory. */
struct raw {
	uint64_t req_gpa, rep_gpa;
	uint8_t *req, *rep;
};

static bool raw_init(struct fst *t, struct raw *w)
{
	void *p;
	w->req_gpa = fusec_alloc(&t->c, 1 << 17, &p);
	w->req = p;
	w->rep_gpa = fusec_alloc(&t->c, 1 << 17, &p);
	w->rep = p;
	return w->req && w->rep;
}

/* Header + args as one readable buffer of `buflen` bytes (may differ
 * from hdr.len), and a writable one of `cap` bytes; returns used length. */
static int send_raw(struct fst *t, struct raw *w, uint32_t opcode, uint32_t hdrlen, uint64_t nodeid,
                    const void *args, uint32_t arglen, uint32_t buflen, uint32_t cap)
{
	struct fuse_in_header h = {
	    .len = hdrlen, .opcode = opcode, .unique = 0xabcdef, .nodeid = nodeid};
	memset(w->req, 0, 1 << 17);
	memset(w->rep, 0xee, 256);
	memcpy(w->req, &h, sizeof(h));
	if (arglen)
		memcpy(w->req + sizeof(h), args, arglen);
	struct vhuf_buf b[2] = {{w->req_gpa, buflen, false}, {w->rep_gpa, cap, true}};
	return fusec_raw(&t->c, 1, b, cap ? 2 : 1);
}

/* The reply is a bare error header for our request. */
static int reply_error(struct raw *w, int used)
{
	struct fuse_out_header o;
	memcpy(&o, w->rep, sizeof(o));
	if (used != (int)sizeof(o) || o.len != sizeof(o) || o.unique != 0xabcdef)
		return 1;
	return o.error;
}

static void still_serving(struct fst *t)
{
	struct fuse_entry_out e;
	uint64_t fh;
	VT_EQ(fusec_getattr(&t->c, ROOT, NULL), 0);
	VT_EQ(fusec_create(&t->c, ROOT, "alive", O_RDWR, 0600, &e, &fh), 0);
	VT_EQ(fusec_write(&t->c, e.nodeid, fh, 0, "ok", 2), 2);
	VT_EQ(fusec_release(&t->c, e.nodeid, fh, false), 0);
	VT_EQ(fusec_unlink(&t->c, ROOT, "alive", false), 0);
	VT_EQ(fusec_forget(&t->c, e.nodeid, 1), 0);
}

VT_CASE(headers_and_lengths)
{
	struct fst t;
	struct raw w;
	const uint32_t H = sizeof(struct fuse_in_header);

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_REQUIRE(raw_init(&t, &w));
	/* Not even a header: nothing to answer (no unique), nothing written. */
	VT_EQ(send_raw(&t, &w, FUSE_GETATTR, H, ROOT, NULL, 0, 10, 4096), 0);
	VT_EQ(w.rep[0], 0xee);
	VT_EQ(send_raw(&t, &w, FUSE_GETATTR, H, ROOT, NULL, 0, H - 1, 4096), 0);
	/* A length shorter than the header, or past the buffers. */
	struct fuse_getattr_in ga = {0};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_GETATTR, 12, ROOT, &ga, 16, H + 16, 4096)),
	      -EINVAL);
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_GETATTR, H + 17, ROOT, &ga, 16, H + 16, 4096)),
	      -EINVAL);
	VT_EQ(reply_error(&w,
	                  send_raw(&t, &w, FUSE_GETATTR, 0xffffffff, ROOT, &ga, 16, H + 16, 4096)),
	      -EINVAL);
	/* Arguments of the wrong size for the opcode. */
	static const uint8_t z[64];
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_GETATTR, H + 8, ROOT, &ga, 8, H + 8, 4096)),
	      -EINVAL);
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_GETATTR, H + 24, ROOT, z, 24, H + 24, 4096)),
	      -EINVAL);
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_SETATTR, H + 40, ROOT, z, 40, H + 40, 4096)),
	      -EINVAL);
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_READ, H, ROOT, NULL, 0, H, 4096)), -EINVAL);
	/* A longer buffer than the header says is fine: the header rules. */
	VT_EQ(send_raw(&t, &w, FUSE_GETATTR, H + 16, ROOT, &ga, 16, 4096, 4096),
	      (int)(sizeof(struct fuse_out_header) + sizeof(struct fuse_attr_out)));
	/* Unknown and unused opcodes. */
	static const uint32_t unknown[] = {0, 7, 19, 52, 99, 4096, 0x1a000000, 0xffffffff};
	for (unsigned i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		VT_EQ(reply_error(&w, send_raw(&t, &w, unknown[i], H, ROOT, NULL, 0, H, 4096)),
		      -ENOSYS);
	/* Known but not offered. */
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_IOCTL, H + 32, ROOT, z, 32, H + 32, 4096)),
	      -ENOSYS);
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_BMAP, H + 16, ROOT, &ga, 16, H + 16, 4096)),
	      -ENOSYS);
	still_serving(&t);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(names)
{
	struct fst t;
	struct raw w;
	const uint32_t H = sizeof(struct fuse_in_header);
	char name[600];

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_REQUIRE(raw_init(&t, &w));
	/* No terminator inside the arguments. */
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_LOOKUP, H + 4, ROOT, "abcd", 4, H + 8, 4096)),
	      -EINVAL);
	/* Empty name. */
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_LOOKUP, H + 2, ROOT, "\0\0", 2, H + 2, 4096)),
	      -EINVAL);
	/* Longer than NAME_MAX, with or without terminator. */
	memset(name, 'a', sizeof(name));
	name[300] = 0;
	VT_EQ(
	    reply_error(&w, send_raw(&t, &w, FUSE_LOOKUP, H + 301, ROOT, name, 301, H + 301, 4096)),
	    -EINVAL);
	name[256] = 0;
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_MKDIR, H + 8 + 257, ROOT, name, 8 + 257,
	                               H + 8 + 257, 4096)),
	      -EINVAL);
	/* RENAME with only one of its two names. */
	/* Bytes, not a struct: a struct's tail padding would carry whatever
	 * the stack held (a second name under valgrind's debug build). */
	uint8_t rn[sizeof(struct fuse_rename_in) + 4];
	struct fuse_rename_in rin = {.newdir = ROOT};
	memcpy(rn, &rin, sizeof(rin));
	memcpy(rn + sizeof(rin), "abc", 4);
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_RENAME, H + sizeof(rn), ROOT, rn, sizeof(rn),
	                               H + sizeof(rn), 4096)),
	      -EINVAL);
	/* SYMLINK whose target runs off the end. */
	VT_EQ(
	    reply_error(&w, send_raw(&t, &w, FUSE_SYMLINK, H + 6, ROOT, "ab\0cde", 6, H + 6, 4096)),
	    -EINVAL);
	/* SETXATTR with a value size past the arguments (xattrs are off:
	 * the size check comes first). */
	struct {
		uint32_t size, flags;
		char n[8];
		char v[4];
	} sx = {1000, 0, "user.x", "v"};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_SETXATTR, H + sizeof(sx), ROOT, &sx, sizeof(sx),
	                               H + sizeof(sx), 4096)),
	      -EINVAL);
	still_serving(&t);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(bulk_and_replies)
{
	struct fst t;
	struct raw w;
	struct fuse_entry_out e;
	uint64_t fh;
	const uint32_t H = sizeof(struct fuse_in_header);

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_REQUIRE(raw_init(&t, &w));
	VT_EQ(fusec_create(&t.c, ROOT, "f", O_RDWR, 0600, &e, &fh), 0);
	/* WRITE claiming more data than it carries. */
	struct {
		struct fuse_write_in in;
		uint8_t data[16];
	} wd = {{.fh = fh, .size = 4096}, {0}};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_WRITE, H + sizeof(wd.in) + 10, e.nodeid, &wd,
	                               sizeof(wd.in) + 10, H + sizeof(wd.in) + 10, 4096)),
	      -EINVAL);
	struct fuse_write_in wi;
	wi = (struct fuse_write_in){.fh = fh, .size = 0xffffffff};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_WRITE, H + sizeof(wi), e.nodeid, &wi,
	                               sizeof(wi), H + sizeof(wi), 4096)),
	      -EINVAL);
	wd.in = (struct fuse_write_in){.fh = fh, .size = 1, .offset = UINT64_MAX};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_WRITE, H + sizeof(wd.in) + 1, e.nodeid, &wd,
	                               sizeof(wd.in) + 1, H + sizeof(wd.in) + 1, 4096)),
	      -EINVAL);
	struct stat st;
	VT_EQ(stat(fst_path(&t.e, "f"), &st), 0);
	VT_EQ(st.st_size, 0);
	/* READ of 4 GiB into a small buffer: what fits, no more. */
	struct fuse_read_in ri = {.fh = fh, .size = 0xffffffff};
	VT_EQ(fusec_write(&t.c, e.nodeid, fh, 0, "hello world", 11), 11);
	VT_EQ(send_raw(&t, &w, FUSE_READ, H + sizeof(ri), e.nodeid, &ri, sizeof(ri), H + sizeof(ri),
	               16 + 5),
	      16 + 5);
	VT_CHECK(memcmp(w.rep + 16, "hello", 5) == 0);
	/* Smaller than a reply header: nothing written, nothing claimed
	 * (found by fuzz-fuse: READ said 16 bytes into a 2-byte buffer). */
	VT_EQ(send_raw(&t, &w, FUSE_READ, H + sizeof(ri), e.nodeid, &ri, sizeof(ri), H + sizeof(ri),
	               2),
	      0);
	VT_EQ(w.rep[0], 0xee);
	/* A reply buffer too small for the reply: an error header. */
	struct fuse_getattr_in ga = {0};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_GETATTR, H + 16, ROOT, &ga, 16, H + 16, 20)),
	      -EINVAL);
	/* Too small for even a header: nothing written. */
	VT_EQ(send_raw(&t, &w, FUSE_GETATTR, H + 16, ROOT, &ga, 16, H + 16, 8), 0);
	VT_EQ(w.rep[0], 0xee);
	/* No writable buffer at all. */
	VT_EQ(send_raw(&t, &w, FUSE_GETATTR, H + 16, ROOT, &ga, 16, H + 16, 0), 0);
	/* READDIR asking for more than any reply holds. */
	uint64_t dfh;
	VT_EQ(fusec_opendir(&t.c, ROOT, &dfh), 0);
	ri = (struct fuse_read_in){.fh = dfh, .size = 0xffffffff};
	VT_CHECK(send_raw(&t, &w, FUSE_READDIRPLUS, H + sizeof(ri), ROOT, &ri, sizeof(ri),
	                  H + sizeof(ri), 200) > 16);
	still_serving(&t);
	VT_EQ(fst_down(&t), 0);
}

/* The request split over many one-byte descriptors (indirect), the reply
 * too: parsing copies, so layout does not matter. */
VT_CASE(scattered_buffers)
{
	struct fst t;
	struct raw w;
	struct vhuf_buf b[80];
	unsigned n = 0;
	const char *name = "scattered";

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_REQUIRE(raw_init(&t, &w));
	struct fuse_mkdir_in mi = {.mode = 0700};
	struct fuse_in_header h = {.len = (uint32_t)(sizeof(h) + sizeof(mi) + strlen(name) + 1),
	                           .opcode = FUSE_MKDIR,
	                           .unique = 0xabcdef,
	                           .nodeid = ROOT};
	memcpy(w.req, &h, sizeof(h));
	memcpy(w.req + sizeof(h), &mi, sizeof(mi));
	memcpy(w.req + sizeof(h) + sizeof(mi), name, strlen(name) + 1);
	for (uint32_t off = 0; off < h.len; off += 1 + off % 5)
		b[n++] = (struct vhuf_buf){w.req_gpa + off, 1 + off % 5, false};
	b[n - 1].len = h.len - (uint32_t)(b[n - 1].gpa - w.req_gpa);
	for (uint32_t off = 0; off < 160; off += 16)
		b[n++] = (struct vhuf_buf){w.rep_gpa + off, 16, true};
	VT_EQ(fusec_raw(&t.c, 1, b, n), 16 + (int)sizeof(struct fuse_entry_out));
	struct stat st;
	VT_EQ(stat(fst_path(&t.e, "scattered"), &st), 0);
	VT_CHECK(S_ISDIR(st.st_mode));
	still_serving(&t);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(init_versions_and_order)
{
	struct fst t;
	struct raw w;
	const uint32_t H = sizeof(struct fuse_in_header);

	VT_REQUIRE(fst_start(&t.e, NULL) == 0);
	VT_REQUIRE(fusec_connect(&t.c, t.e.sock, 1, 256) == 0);
	VT_REQUIRE(raw_init(&t, &w));
	/* Before INIT nothing is served. */
	VT_EQ(fusec_getattr(&t.c, ROOT, NULL), -EIO);
	struct fuse_init_in in = {.major = 8, .minor = 0};
	int used =
	    send_raw(&t, &w, FUSE_INIT, H + sizeof(in), 0, &in, sizeof(in), H + sizeof(in), 4096);
	/* A newer major: we answer with ours, nothing else, and wait. */
	VT_EQ(used, 16 + FUSE_COMPAT_INIT_OUT_SIZE);
	VT_EQ(((struct fuse_init_out *)(w.rep + 16))->major, 7);
	VT_EQ(fusec_getattr(&t.c, ROOT, NULL), -EIO);
	in = (struct fuse_init_in){.major = 6, .minor = 99};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_INIT, H + sizeof(in), 0, &in, sizeof(in),
	                               H + sizeof(in), 4096)),
	      -EPROTO);
	in = (struct fuse_init_in){.major = 7, .minor = 12};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_INIT, H + sizeof(in), 0, &in, sizeof(in),
	                               H + sizeof(in), 4096)),
	      -EPROTO);
	/* An INIT of 8 bytes (major and minor only). */
	in = (struct fuse_init_in){.major = 7, .minor = 38};
	VT_EQ(reply_error(&w, send_raw(&t, &w, FUSE_INIT, H + 8, 0, &in, 8, H + 8, 4096)), -EPROTO);
	/* A future INIT with a longer argument block is fine. */
	VT_EQ(send_raw(&t, &w, FUSE_INIT, H + 128, 0, &in, sizeof(in), H + 128, 4096),
	      16 + (int)sizeof(struct fuse_init_out));
	VT_EQ(fusec_getattr(&t.c, ROOT, NULL), 0);
	still_serving(&t);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(forget_storms)
{
	struct fst t;
	struct raw w;
	const uint32_t H = sizeof(struct fuse_in_header);
	static uint8_t args[8 + 16 * 300];

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_REQUIRE(raw_init(&t, &w));
	/* BATCH_FORGET counting more entries than it carries: no reply
	 * exists to refuse it, nothing forgotten. */
	struct fuse_batch_forget_in *bf = (void *)args;
	bf->count = 100000;
	struct fuse_entry_out e;
	VT_EQ(fusec_mkdir(&t.c, ROOT, "keep", 0700, &e), 0);
	struct fuse_forget_one one = {.nodeid = e.nodeid, .nlookup = 1};
	memcpy(args + 8, &one, sizeof(one));
	struct vhuf_buf b = {w.req_gpa, H + 8 + 16, false};
	struct fuse_in_header h = {.len = H + 8 + 16, .opcode = FUSE_BATCH_FORGET, .unique = 9};
	memcpy(w.req, &h, sizeof(h));
	memcpy(w.req + H, args, 8 + 16);
	VT_EQ(fusec_raw(&t.c, 0, &b, 1), 0);
	VT_EQ(fusec_getattr(&t.c, e.nodeid, NULL), 0);
	/* A proper one with junk nodeids and the root. */
	bf->count = 300;
	for (unsigned i = 0; i < 300; i++) {
		struct fuse_forget_one f = {.nodeid = i == 7 ? ROOT : (uint64_t)rand() * 7919u + i,
		                            .nlookup = UINT64_MAX};
		memcpy(args + 8 + 16 * i, &f, sizeof(f));
	}
	h.len = H + sizeof(args);
	memcpy(w.req, &h, sizeof(h));
	memcpy(w.req + H, args, sizeof(args));
	b.len = h.len;
	VT_EQ(fusec_raw(&t.c, 0, &b, 1), 0);
	VT_EQ(fusec_getattr(&t.c, ROOT, NULL), 0);
	VT_EQ(fusec_getattr(&t.c, e.nodeid, NULL), 0);
	/* A FORGET with a reply buffer still gets no reply. */
	struct fuse_forget_in fi = {.nlookup = 1};
	VT_EQ(send_raw(&t, &w, FUSE_FORGET, H + 8, e.nodeid, &fi, 8, H + 8, 4096), 0);
	VT_EQ(fusec_getattr(&t.c, e.nodeid, NULL), -ESTALE);
	still_serving(&t);
	VT_EQ(fst_down(&t), 0);
}

/* Thousands of random requests: random opcode, header fields and bytes,
 * lengths, buffer splits.  Every one comes back (replied or not), the
 * daemon ends with the fds it started with. */
VT_CASE(random_storm)
{
	struct fst t;
	struct raw w;
	const uint32_t H = sizeof(struct fuse_in_header);
	unsigned seed = 12345;

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_REQUIRE(raw_init(&t, &w));
	int base = count_fds(t.e.pid);
	for (unsigned i = 0; i < 3000; i++) {
		uint8_t args[512];
		uint32_t argl = (uint32_t)rand_r(&seed) % sizeof(args);
		for (uint32_t k = 0; k < argl; k++)
			args[k] = (uint8_t)rand_r(&seed);
		if (rand_r(&seed) % 2) /* plausible names */
			for (uint32_t k = 0; k < argl; k++)
				args[k] = k % 9 == 8 ? 0 : (uint8_t)('a' + args[k] % 3);
		uint32_t op = (uint32_t)rand_r(&seed) % 54;
		if (op == FUSE_INIT || op == FUSE_DESTROY)
			op = FUSE_GETATTR;
		uint64_t nodeid = rand_r(&seed) % 3 ? ROOT : (uint64_t)rand_r(&seed);
		uint32_t len = H + argl;
		if (rand_r(&seed) % 8 == 0)
			len = (uint32_t)rand_r(&seed);
		uint32_t cap = rand_r(&seed) % 4 ? 4096 : (uint32_t)rand_r(&seed) % 64;
		int used = send_raw(&t, &w, op, len, nodeid, args, argl, H + argl, cap);
		VT_CHECK(used >= 0 && (uint32_t)used <= cap);
		if (used < 0)
			break;
	}
	/* What the storm created is forgotten at the session's end. */
	VT_EQ(fusec_init(&t.c, FUSE_KERNEL_MINOR_VERSION, 0), 0);
	VT_EQ(count_fds(t.e.pid), base);
	still_serving(&t);
	VT_EQ(fst_down(&t), 0);
}

VT_MAIN
