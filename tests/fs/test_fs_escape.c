/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hostile guest trying to leave the shared directory or gain privileges
 * on the host, through raw FUSE requests: every attempt is refused, and
 * what lies outside the share (a sentinel directory next to it and
 * /etc/shadow) is unchanged, byte for byte and time for time.  Each case
 * runs with the default sandbox and with --sandbox none (openat2 and our
 * own checks alone).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fst.h"

#define ROOT FUSE_ROOT_ID

/* What must not change outside the share. */
struct outside {
	char sentinel[160];
	struct stat s_dir, s_file, s_shadow;
	char content[64];
};

static void outside_note(const struct fst *t, struct outside *o)
{
	snprintf(o->sentinel, sizeof(o->sentinel), "%s/outside", t->e.dir);
	mkdir(o->sentinel, 0755);
	char f[200];
	snprintf(f, sizeof(f), "%s/secret", o->sentinel);
	int fd = open(f, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, "do not touch", 12) != 12)
			fprintf(stderr, "# sentinel write failed\n");
		close(fd);
	}
	stat(o->sentinel, &o->s_dir);
	stat(f, &o->s_file);
	stat("/etc/shadow", &o->s_shadow);
}

static bool same(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_mode == b->st_mode && a->st_nlink == b->st_nlink &&
	       a->st_uid == b->st_uid && a->st_gid == b->st_gid && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void outside_check(const struct outside *o)
{
	struct stat d, f, s;
	char path[200];
	snprintf(path, sizeof(path), "%s/secret", o->sentinel);
	VT_EQ(stat(o->sentinel, &d), 0);
	VT_EQ(stat(path, &f), 0);
	VT_EQ(stat("/etc/shadow", &s), 0);
	VT_CHECK(same(&d, &o->s_dir));
	VT_CHECK(same(&f, &o->s_file));
	VT_CHECK(same(&s, &o->s_shadow));
	VT_CHECK(strcmp(fst_slurp(path), "do not touch") == 0);
}

static const char *const *mode_args(int mode)
{
	static const char *const none[] = {"--sandbox", "none", "--xattr", NULL};
	static const char *const ns[] = {"--xattr", NULL};
	return mode ? none : ns;
}

/* Run body in a fresh daemon per sandbox mode, checking the outside. */
static void in_sandboxes(void (*body)(struct fst *T))
{
	for (int mode = 0; mode < 2; mode++) {
		struct fst t;
		struct outside o;

		fprintf(stderr, "# sandbox %s\n", mode ? "none" : "namespace");
		VT_REQUIRE(fst_up(&t, mode_args(mode), 1));
		outside_note(&t, &o);
		body(&t);
		outside_check(&o);
		VT_EQ(fst_down(&t), 0);
	}
}

#define ESCAPE_CASE(name)                                                                          \
	static void body_##name(struct fst *T);                                                    \
	VT_CASE(name)                                                                              \
	{                                                                                          \
		in_sandboxes(body_##name);                                                         \
	}                                                                                          \
	static void body_##name(struct fst *T)

static int raw_name_op(struct fst *t, uint32_t op, uint64_t nodeid, const char *name)
{
	struct fusec_reply r;
	struct iovec a = {(void *)name, strlen(name) + 1};
	return fusec_call(&t->c, 1, op, nodeid, &a, 1, 4096, &r);
}

ESCAPE_CASE(dotdot_stays_at_root)
{
	struct fuse_entry_out e, d;
	uint64_t fh;

	VT_EQ(fusec_lookup(&T->c, ROOT, "..", &e), 0);
	VT_EQ(e.nodeid, ROOT);
	VT_EQ(fusec_lookup(&T->c, ROOT, ".", &e), 0);
	VT_EQ(e.nodeid, ROOT);
	VT_EQ(fusec_mkdir(&T->c, ROOT, "sub", 0755, &d), 0);
	VT_EQ(fusec_lookup(&T->c, d.nodeid, "..", &e), 0);
	VT_EQ(e.nodeid, ROOT);
	/* Names are one component, never a path. */
	static const char *const bad[] = {
	    "../outside", "../../etc/shadow", "a/b", "/etc", "sub/..", "..", "."};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (i < 5)
			VT_EQ(fusec_lookup(&T->c, ROOT, bad[i], &e), -EINVAL);
		VT_EQ(fusec_create(&T->c, ROOT, bad[i], O_RDWR, 0600, &e, &fh), -EINVAL);
		VT_EQ(fusec_mkdir(&T->c, ROOT, bad[i], 0700, &e), -EINVAL);
		VT_EQ(fusec_symlink(&T->c, ROOT, bad[i], "x", &e), -EINVAL);
		VT_EQ(raw_name_op(T, FUSE_UNLINK, ROOT, bad[i]), -EINVAL);
		VT_EQ(raw_name_op(T, FUSE_RMDIR, d.nodeid, bad[i]), -EINVAL);
		VT_EQ(fusec_rename(&T->c, ROOT, "sub", ROOT, bad[i], 0), -EINVAL);
		VT_EQ(fusec_rename(&T->c, ROOT, bad[i], ROOT, "x", 0), -EINVAL);
		VT_EQ(fusec_link(&T->c, d.nodeid, ROOT, bad[i], &e), -EINVAL);
	}
	VT_CHECK(access(fst_path(&T->e, "sub"), F_OK) == 0);
}

ESCAPE_CASE(symlinks_are_never_followed)
{
	struct fuse_entry_out e, s, x;
	struct fusec_reply r;
	uint64_t fh;
	char target[300];

	/* A symlink's target is the guest's business: it may point
	 * anywhere, and its own kernel resolves it in its own tree. */
	VT_EQ(fusec_symlink(&T->c, ROOT, "shadow", "/etc/shadow", &s), 0);
	VT_EQ(fusec_readlink(&T->c, s.nodeid, target, sizeof(target)), 11);
	/* But we never follow it: not to open, list, create through
	 * or change what it points to. */
	VT_EQ(fusec_open(&T->c, s.nodeid, O_RDONLY, &fh), -ELOOP);
	VT_EQ(fusec_open(&T->c, s.nodeid, O_RDWR | O_TRUNC, &fh), -ELOOP);
	VT_EQ(fusec_opendir(&T->c, s.nodeid, &fh), -ENOTDIR);
	VT_EQ(fusec_lookup(&T->c, s.nodeid, "x", &e), -ENOTDIR);
	VT_EQ(fusec_create(&T->c, s.nodeid, "x", O_RDWR, 0600, &e, &fh), -ENOTDIR);
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 0};
	VT_EQ(fusec_setattr(&T->c, s.nodeid, &sa, NULL), -EINVAL);
	sa = (struct fuse_setattr_in){.valid = FATTR_MODE, .mode = 0777};
	VT_EQ(fusec_setattr(&T->c, s.nodeid, &sa, NULL), -EOPNOTSUPP);
	/* chown and times apply to the link itself. */
	sa = (struct fuse_setattr_in){
	    .valid = FATTR_UID | FATTR_GID | FATTR_MTIME, .uid = 5, .gid = 5, .mtime = 12345};
	VT_EQ(fusec_setattr(&T->c, s.nodeid, &sa, NULL), 0);
	struct stat st;
	VT_EQ(lstat(fst_path(&T->e, "shadow"), &st), 0);
	VT_EQ(st.st_uid, 5);
	VT_EQ(st.st_mtime, 12345);
	/* xattrs too. */
	struct fuse_setxattr_in xi = {.size = 1};
	struct iovec xa[3] = {{&xi, FUSE_COMPAT_SETXATTR_IN_SIZE}, {"trusted.x", 10}, {"v", 1}};
	fusec_call(&T->c, 1, FUSE_SETXATTR, s.nodeid, xa, 3, 4096, &r);
	/* A hard link of the symlink is another symlink, not /etc/shadow. */
	VT_EQ(fusec_link(&T->c, s.nodeid, ROOT, "hl", &x), 0);
	VT_EQ(x.attr.mode & S_IFMT, S_IFLNK);
	/* CREATE over it (no O_EXCL) does not go through it. */
	VT_EQ(fusec_create(&T->c, ROOT, "shadow", O_RDWR | O_TRUNC, 0600, &e, &fh), -ELOOP);
	VT_EQ(fusec_mknod(&T->c, ROOT, "shadow", S_IFREG | 0600, 0, &e), -EEXIST);
	/* The same for a link the host made, to a directory outside. */
	char out[200];
	snprintf(out, sizeof(out), "%s/outside", T->e.dir);
	VT_EQ(symlink(out, fst_path(&T->e, "hostlink")), 0);
	VT_EQ(fusec_lookup(&T->c, ROOT, "hostlink", &e), 0);
	VT_EQ(e.attr.mode & S_IFMT, S_IFLNK);
	VT_EQ(fusec_lookup(&T->c, e.nodeid, "secret", &x), -ENOTDIR);
	VT_EQ(fusec_opendir(&T->c, e.nodeid, &fh), -ENOTDIR);
	VT_EQ(fusec_create(&T->c, e.nodeid, "new", O_RDWR, 0600, &x, &fh), -ENOTDIR);
	VT_EQ(fusec_mkdir(&T->c, e.nodeid, "new", 0700, &x), -ENOTDIR);
	/* ... and relative ones climbing out. */
	VT_EQ(fusec_symlink(&T->c, ROOT, "up", "../../../../../../../etc/shadow", &s), 0);
	VT_EQ(fusec_open(&T->c, s.nodeid, O_RDONLY, &fh), -ELOOP);
}

ESCAPE_CASE(proc_self_fd_tricks)
{
	struct fuse_entry_out e, s;
	uint64_t fh;

	/* Our fds 3..40 through /proc/self/fd: a symlink to one is a
	 * symlink, and nothing here resolves it. */
	char target[64], name[32];
	for (int fd = 3; fd < 40; fd++) {
		snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
		snprintf(name, sizeof(name), "fd%d", fd);
		VT_EQ(fusec_symlink(&T->c, ROOT, name, target, &s), 0);
		VT_EQ(fusec_open(&T->c, s.nodeid, O_RDWR, &fh), -ELOOP);
		VT_EQ(fusec_lookup(&T->c, s.nodeid, "x", &e), -ENOTDIR);
		VT_EQ(fusec_link(&T->c, s.nodeid, ROOT, "l", &e), 0);
		VT_EQ(e.attr.mode & S_IFMT, S_IFLNK);
		VT_EQ(fusec_unlink(&T->c, ROOT, "l", false), 0);
	}
	VT_EQ(fusec_symlink(&T->c, ROOT, "root", "/proc/self/root", &s), 0);
	VT_EQ(fusec_lookup(&T->c, s.nodeid, "etc", &e), -ENOTDIR);
	VT_EQ(fusec_lookup(&T->c, ROOT, "proc", &e), -ENOENT);
}

/* nodeids the guest never got: what it might guess. */
static uint64_t guesses(const struct fst *t, unsigned i)
{
	struct stat st;
	switch (i) {
	case 0:
		return 0;
	case 1:
		return 2;
	case 2:
		return 3;
	case 3:
		return (1ull << 32) | 1; /* the root's slot, another generation */
	case 4:
		return stat("/etc/shadow", &st) == 0 ? st.st_ino : 77;
	case 5:
		return stat(t->e.share, &st) == 0 ? st.st_ino : 78;
	case 6:
		return UINT64_MAX;
	default:
		return ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ i;
	}
}

ESCAPE_CASE(guessed_nodeids_find_nothing)
{
	struct fuse_entry_out e, real;
	struct fusec_reply r;
	uint64_t fh;

	/* One real inode, forgotten: its nodeid is stale too. */
	VT_EQ(fusec_mknod(&T->c, ROOT, "real", S_IFREG | 0600, 0, &real), 0);
	VT_EQ(fusec_forget(&T->c, real.nodeid, 1), 0);
	for (unsigned i = 0; i < 64; i++) {
		uint64_t n = i == 63 ? real.nodeid : guesses(T, i);
		VT_EQ(fusec_getattr(&T->c, n, NULL), -ESTALE);
		VT_EQ(fusec_lookup(&T->c, n, "x", &e), -ESTALE);
		VT_EQ(fusec_open(&T->c, n, O_RDONLY, &fh), -ESTALE);
		VT_EQ(fusec_opendir(&T->c, n, &fh), -ESTALE);
		VT_EQ(fusec_mkdir(&T->c, n, "d", 0700, &e), -ESTALE);
		VT_EQ(fusec_create(&T->c, n, "f", O_RDWR, 0600, &e, &fh), -ESTALE);
		VT_EQ(fusec_link(&T->c, n, ROOT, "hl", &e), -ESTALE);
		VT_EQ(fusec_rename(&T->c, ROOT, "real", n, "moved", 0), -ESTALE);
		VT_EQ(fusec_readlink(&T->c, n, (char[8]){0}, 8), -ESTALE);
		VT_EQ(fusec_call(&T->c, 1, FUSE_STATFS, n, NULL, 0, 4096, &r), -ESTALE);
		struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 0777};
		VT_EQ(fusec_setattr(&T->c, n, &sa, NULL), -ESTALE);
		/* FORGET of what was never looked up changes nothing. */
		VT_EQ(fusec_forget(&T->c, n, 1000), 0);
	}
	VT_CHECK(access(fst_path(&T->e, "hl"), F_OK) < 0);
	VT_CHECK(access(fst_path(&T->e, "real"), F_OK) == 0);
	VT_EQ(fusec_getattr(&T->c, ROOT, NULL), 0);
}

ESCAPE_CASE(guessed_file_handles_find_nothing)
{
	struct fuse_entry_out e;
	uint64_t fh, dfh;
	char buf[64];

	VT_EQ(fusec_create(&T->c, ROOT, "f", O_RDWR, 0600, &e, &fh), 0);
	VT_EQ(fusec_opendir(&T->c, ROOT, &dfh), 0);
	for (unsigned i = 0; i < 200; i++) {
		uint64_t g = i < 100 ? i : ((uint64_t)rand() << 32) ^ (uint64_t)rand();
		if (g == fh || g == dfh)
			continue;
		VT_EQ(fusec_read(&T->c, e.nodeid, g, 0, buf, sizeof(buf)), -EBADF);
		VT_EQ(fusec_write(&T->c, e.nodeid, g, 0, "x", 1), -EBADF);
		VT_EQ(fusec_readdir(&T->c, ROOT, g, 0, buf, sizeof(buf), false), -EBADF);
		VT_EQ(fusec_release(&T->c, e.nodeid, g, false), -EBADF);
	}
	/* A directory handle is no file handle and the other way round. */
	VT_EQ(fusec_read(&T->c, e.nodeid, dfh, 0, buf, sizeof(buf)), -EBADF);
	VT_EQ(fusec_readdir(&T->c, ROOT, fh, 0, buf, sizeof(buf), false), -EBADF);
	/* Released means gone, even for the next fh in the same slot. */
	VT_EQ(fusec_release(&T->c, e.nodeid, fh, false), 0);
	VT_EQ(fusec_write(&T->c, e.nodeid, fh, 0, "x", 1), -EBADF);
	uint64_t fh2;
	VT_EQ(fusec_open(&T->c, e.nodeid, O_RDWR, &fh2), 0);
	VT_CHECK(fh2 != fh);
	VT_EQ(fusec_write(&T->c, e.nodeid, fh, 0, "x", 1), -EBADF);
	struct stat st;
	VT_EQ(stat(fst_path(&T->e, "f"), &st), 0);
	VT_EQ(st.st_size, 0);
}

ESCAPE_CASE(no_device_nodes)
{
	struct fuse_entry_out e;
	struct fusec_reply r;
	uint64_t fh;

	VT_EQ(fusec_mknod(&T->c, ROOT, "sda", S_IFBLK | 0666, makedev(8, 0), &e), -EPERM);
	VT_EQ(fusec_mknod(&T->c, ROOT, "mem", S_IFCHR | 0666, makedev(1, 1), &e), -EPERM);
	VT_EQ(fusec_mknod(&T->c, ROOT, "wh", S_IFCHR | 0666, 0, &e), -EPERM);
	VT_EQ(fusec_mknod(&T->c, ROOT, "odd", 0170000 | 0666, 0, &e), -EPERM);
	VT_CHECK(access(fst_path(&T->e, "sda"), F_OK) < 0);
	VT_CHECK(access(fst_path(&T->e, "mem"), F_OK) < 0);
	/* RENAME_WHITEOUT would leave a 0:0 character device. */
	VT_EQ(fusec_mknod(&T->c, ROOT, "a", S_IFREG | 0600, 0, &e), 0);
	VT_EQ(fusec_rename(&T->c, ROOT, "a", ROOT, "b", RENAME_WHITEOUT), -EINVAL);
	VT_EQ(fusec_rename(&T->c, ROOT, "a", ROOT, "b", 1u << 20), -EINVAL);
	VT_CHECK(access(fst_path(&T->e, "a"), F_OK) == 0);
	/* A device node the host left in the share is never opened
	 * (here /dev/null's numbers: opening it would succeed). */
	VT_EQ(mknod(fst_path(&T->e, "null"), S_IFCHR | 0666, makedev(1, 3)), 0);
	VT_EQ(fusec_lookup(&T->c, ROOT, "null", &e), 0);
	VT_EQ(e.attr.mode & S_IFMT, S_IFCHR);
	VT_EQ(fusec_open(&T->c, e.nodeid, O_RDWR, &fh), -EACCES);
	VT_EQ(fusec_create(&T->c, ROOT, "null", O_RDWR, 0600, &e, &fh), -EACCES);
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 0};
	VT_EQ(fusec_setattr(&T->c, e.nodeid, &sa, NULL), -EINVAL);
	(void)r;
}

ESCAPE_CASE(no_setuid_files)
{
	struct fuse_entry_out e, d;
	struct fusec_reply r;
	struct stat st;
	uint64_t fh;

	VT_EQ(fusec_create(&T->c, ROOT, "suid", O_RDWR, 04755, &e, &fh), -EPERM);
	VT_EQ(fusec_create(&T->c, ROOT, "sgid", O_RDWR, 02755, &e, &fh), -EPERM);
	VT_EQ(fusec_mknod(&T->c, ROOT, "suid", S_IFREG | 04755, 0, &e), -EPERM);
	VT_EQ(fusec_mkdir(&T->c, ROOT, "sdir", 04755, &e), -EPERM);
	VT_CHECK(access(fst_path(&T->e, "suid"), F_OK) < 0);
	VT_CHECK(access(fst_path(&T->e, "sgid"), F_OK) < 0);
	VT_EQ(fusec_create(&T->c, ROOT, "prog", O_RDWR, 0755, &e, &fh), 0);
	struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 04755};
	VT_EQ(fusec_setattr(&T->c, e.nodeid, &sa, NULL), -EPERM);
	sa.mode = 02755;
	VT_EQ(fusec_setattr(&T->c, e.nodeid, &sa, NULL), -EPERM);
	sa.mode = 06777;
	VT_EQ(fusec_setattr(&T->c, e.nodeid, &sa, NULL), -EPERM);
	VT_EQ(stat(fst_path(&T->e, "prog"), &st), 0);
	VT_EQ(st.st_mode & 07777, 0755);
	/* Set-group-ID stays allowed on directories (group inheritance). */
	VT_EQ(fusec_mkdir(&T->c, ROOT, "shared", 0775, &d), 0);
	sa.mode = 02775;
	VT_EQ(fusec_setattr(&T->c, d.nodeid, &sa, NULL), 0);
	VT_EQ(stat(fst_path(&T->e, "shared"), &st), 0);
	VT_EQ(st.st_mode & 07777, 02775);
	/* No file capabilities either. */
	static const uint8_t cap[20] = {0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff};
	struct fuse_setxattr_in xi = {.size = sizeof(cap)};
	struct iovec xa[3] = {{&xi, FUSE_COMPAT_SETXATTR_IN_SIZE},
	                      {"security.capability", 20},
	                      {(void *)cap, sizeof(cap)}};
	VT_EQ(fusec_call(&T->c, 1, FUSE_SETXATTR, e.nodeid, xa, 3, 4096, &r), -EPERM);
	VT_EQ(getxattr(fst_path(&T->e, "prog"), "security.capability", NULL, 0), -1);
}

/* The guest kernel tells us (HANDLE_KILLPRIV_V2) when a write, truncate or
 * O_TRUNC open by an unprivileged process must clear set-ID bits; the
 * host kernel drops security.capability on every write by itself. */
ESCAPE_CASE(writes_kill_privileges)
{
	struct fuse_entry_out e;
	struct fusec_reply r;
	struct stat st;
	uint64_t fh;

	const char *p = fst_path(&T->e, "host-suid");
	int fd = open(p, O_CREAT | O_WRONLY, 0755);
	VT_REQUIRE(fd >= 0);
	close(fd);
	VT_EQ(chmod(p, 06755), 0);
	static const uint8_t cap[20] = {0, 0, 0, 2, 0x00, 0x04};
	bool have_cap = setxattr(p, "security.capability", cap, sizeof(cap), 0) == 0;
	VT_EQ(fusec_lookup(&T->c, ROOT, "host-suid", &e), 0);
	VT_EQ(fusec_open(&T->c, e.nodeid, O_RDWR, &fh), 0);
	struct fuse_write_in wi = {.fh = fh, .size = 3, .write_flags = FUSE_WRITE_KILL_SUIDGID};
	struct iovec wa[2] = {{&wi, sizeof(wi)}, {"abc", 3}};
	VT_EQ(fusec_call(&T->c, 1, FUSE_WRITE, e.nodeid, wa, 2, 4096, &r), 0);
	VT_EQ(stat(fst_path(&T->e, "host-suid"), &st), 0);
	VT_EQ(st.st_mode & 07777, 0755);
	if (have_cap)
		VT_EQ(getxattr(fst_path(&T->e, "host-suid"), "security.capability", NULL, 0), -1);
	VT_EQ(chmod(fst_path(&T->e, "host-suid"), 04755), 0);
	struct fuse_setattr_in sa = {.valid = FATTR_SIZE | FATTR_KILL_SUIDGID, .size = 1};
	VT_EQ(fusec_setattr(&T->c, e.nodeid, &sa, NULL), 0);
	VT_EQ(stat(fst_path(&T->e, "host-suid"), &st), 0);
	VT_EQ(st.st_mode & 07777, 0755);
	VT_EQ(chmod(fst_path(&T->e, "host-suid"), 04755), 0);
	struct fuse_open_in oi = {.flags = O_RDWR | O_TRUNC, .open_flags = FUSE_OPEN_KILL_SUIDGID};
	struct iovec oa = {&oi, sizeof(oi)};
	VT_EQ(fusec_call(&T->c, 1, FUSE_OPEN, e.nodeid, &oa, 1, 4096, &r), 0);
	VT_EQ(stat(fst_path(&T->e, "host-suid"), &st), 0);
	VT_EQ(st.st_mode & 07777, 0755);
	VT_EQ(st.st_size, 0);
	/* A write the kernel did not flag (a privileged writer) keeps
	 * the bits, as on the host. */
	VT_EQ(chmod(fst_path(&T->e, "host-suid"), 04755), 0);
	wi.write_flags = 0;
	VT_EQ(fusec_call(&T->c, 1, FUSE_WRITE, e.nodeid, wa, 2, 4096, &r), 0);
	VT_EQ(stat(fst_path(&T->e, "host-suid"), &st), 0);
	VT_EQ(st.st_mode & 07777, 04755);
}

VT_CASE(allow_setuid_when_asked)
{
	struct fuse_entry_out e;
	struct stat st;
	uint64_t fh;
	struct fst t;
	const char *const args[] = {"--allow-setuid", NULL};

	VT_REQUIRE(fst_up(&t, args, 1));
	VT_EQ(fusec_create(&t.c, ROOT, "suid", O_RDWR, 04755, &e, &fh), 0);
	VT_EQ(stat(fst_path(&t.e, "suid"), &st), 0);
	VT_EQ(st.st_mode & 07777, 04755);
	VT_EQ(fst_down(&t), 0);
}

ESCAPE_CASE(hardlinks_and_renames_stay_inside)
{
	struct fuse_entry_out e, d;
	struct fusec_reply r;

	VT_EQ(fusec_mkdir(&T->c, ROOT, "d", 0755, &d), 0);
	VT_EQ(fusec_mknod(&T->c, d.nodeid, "f", S_IFREG | 0600, 0, &e), 0);
	/* Directories cannot be hard-linked (a loop, or a way out). */
	VT_EQ(fusec_link(&T->c, d.nodeid, ROOT, "dl", &e), -EPERM);
	VT_EQ(fusec_link(&T->c, ROOT, d.nodeid, "rootlink", &e), -EPERM);
	/* Moving the root, or a directory into itself. */
	struct fuse_rename2_in ri = {.newdir = d.nodeid};
	struct iovec ra[3] = {{&ri, sizeof(ri)}, {".", 2}, {"x", 2}};
	VT_EQ(fusec_call(&T->c, 1, FUSE_RENAME2, ROOT, ra, 3, 4096, &r), -EINVAL);
	VT_EQ(fusec_rename(&T->c, ROOT, "d", d.nodeid, "d2", 0), -EINVAL);
	VT_EQ(raw_name_op(T, FUSE_RMDIR, ROOT, "."), -EINVAL);
	VT_EQ(raw_name_op(T, FUSE_RMDIR, d.nodeid, ".."), -EINVAL);
	VT_CHECK(access(fst_path(&T->e, "d/f"), F_OK) == 0);
}

VT_MAIN
