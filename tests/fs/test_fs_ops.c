/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-fs operations through the front-end library: the real daemon (with
 * its default sandbox) on a scratch share, FUSE requests as a guest kernel
 * sends them, and the host's view of the share checked after each.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fst.h"

#define ROOT FUSE_ROOT_ID

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
}

VT_CASE(init_negotiates)
{
	struct fst t;
	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_EQ(t.c.init.major, 7);
	VT_EQ(t.c.init.minor, FUSE_KERNEL_MINOR_VERSION);
	VT_EQ(t.c.init.max_write, 1u << 20);
	VT_EQ(t.c.init.max_pages, 256);
	VT_CHECK(t.c.init.flags & FUSE_FLOCK_LOCKS);
	VT_CHECK(t.c.init.flags & FUSE_DO_READDIRPLUS);
	VT_CHECK(!(t.c.init.flags & FUSE_WRITEBACK_CACHE)); /* not asked for */
	VT_CHECK(!(t.c.init.flags & FUSE_POSIX_LOCKS));     /* never offered */
	/* An older guest gets its own minor back. */
	VT_EQ(fusec_init(&t.c, 31, FUSE_ASYNC_READ), 0);
	VT_EQ(t.c.init.minor, 31);
	VT_EQ(t.c.init.flags, FUSE_ASYNC_READ);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(create_write_read_back)
{
	static uint8_t a[300000], b[300000];
	struct fuse_entry_out e;
	struct fuse_attr at;
	struct stat st;
	uint64_t fh;
	struct fst t;

	VT_REQUIRE(fst_up(&t, NULL, 1));
	pattern(a, sizeof(a), 1);
	VT_EQ(fusec_create(&t.c, ROOT, "file", O_RDWR, 0640, &e, &fh), 0);
	VT_CHECK(e.nodeid != 0 && e.nodeid != ROOT);
	VT_EQ(e.attr.mode, S_IFREG | 0640);
	VT_EQ(fusec_write(&t.c, e.nodeid, fh, 0, a, 200000), 200000);
	VT_EQ(fusec_write(&t.c, e.nodeid, fh, 200000, a + 200000, 100000), 100000);
	VT_EQ(fusec_read(&t.c, e.nodeid, fh, 0, b, sizeof(b)), sizeof(b));
	VT_CHECK(memcmp(a, b, sizeof(a)) == 0);
	/* Past the end: short, then nothing. */
	VT_EQ(fusec_read(&t.c, e.nodeid, fh, 299000, b, 4096), 1000);
	VT_EQ(fusec_read(&t.c, e.nodeid, fh, 400000, b, 4096), 0);
	VT_EQ(fusec_getattr(&t.c, e.nodeid, &at), 0);
	VT_EQ(at.size, sizeof(a));
	VT_EQ(fusec_release(&t.c, e.nodeid, fh, false), 0);
	/* The host sees the same bytes. */
	int fd = open(fst_path(&t.e, "file"), O_RDONLY);
	VT_REQUIRE(fd >= 0);
	VT_EQ(read(fd, b, sizeof(b)), sizeof(b));
	close(fd);
	VT_CHECK(memcmp(a, b, sizeof(a)) == 0);
	VT_EQ(stat(fst_path(&t.e, "file"), &st), 0);
	VT_EQ(st.st_mode, S_IFREG | 0640);
	/* A released handle is gone. */
	VT_EQ(fusec_read(&t.c, e.nodeid, fh, 0, b, 10), -EBADF);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(one_mib_requests)
{
	static uint8_t a[1 << 20], b[1 << 20];
	struct fuse_entry_out e;
	uint64_t fh;
	struct fst t;

	VT_REQUIRE(fst_up(&t, NULL, 1));
	pattern(a, sizeof(a), 7);
	VT_EQ(fusec_create(&t.c, ROOT, "big", O_RDWR, 0600, &e, &fh), 0);
	VT_EQ(fusec_write(&t.c, e.nodeid, fh, 4096, a, sizeof(a)), sizeof(a));
	VT_EQ(fusec_read(&t.c, e.nodeid, fh, 4096, b, sizeof(b)), sizeof(b));
	VT_CHECK(memcmp(a, b, sizeof(a)) == 0);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(directories_and_names)
{
	static char list[1 << 16];
	struct fuse_entry_out d, e, f;
	uint64_t fh;
	struct fst t;
	char name[32];

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_EQ(fusec_mkdir(&t.c, ROOT, "dir", 0755, &d), 0);
	VT_EQ(d.attr.mode, S_IFDIR | 0755);
	VT_EQ(fusec_mkdir(&t.c, ROOT, "dir", 0755, &e), -EEXIST);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%03d", i);
		VT_EQ(fusec_create(&t.c, d.nodeid, name, O_WRONLY, 0600, &e, &fh), 0);
		VT_EQ(fusec_release(&t.c, e.nodeid, fh, false), 0);
		VT_EQ(fusec_forget(&t.c, e.nodeid, 1), 0);
	}
	VT_EQ(fusec_list(&t.c, d.nodeid, list, sizeof(list), false), 302);
	VT_CHECK(strstr(list, "f000\n") && strstr(list, "f299\n") && strstr(list, "..\n"));
	VT_EQ(fusec_list(&t.c, d.nodeid, list, sizeof(list), true), 302);
	/* rename, RENAME_NOREPLACE, RENAME_EXCHANGE */
	VT_EQ(fusec_rename(&t.c, d.nodeid, "f000", ROOT, "moved", 0), 0);
	VT_CHECK(access(fst_path(&t.e, "moved"), F_OK) == 0);
	VT_EQ(fusec_rename(&t.c, d.nodeid, "f001", ROOT, "moved", RENAME_NOREPLACE), -EEXIST);
	VT_EQ(fusec_rename(&t.c, ROOT, "moved", ROOT, "dir", RENAME_EXCHANGE), 0);
	struct stat st;
	VT_EQ(stat(fst_path(&t.e, "moved"), &st), 0);
	VT_CHECK(S_ISDIR(st.st_mode));
	VT_EQ(fusec_rename(&t.c, ROOT, "moved", ROOT, "dir", RENAME_EXCHANGE), 0);
	/* link, symlink, readlink */
	VT_EQ(fusec_lookup(&t.c, d.nodeid, "f002", &e), 0);
	VT_EQ(fusec_link(&t.c, e.nodeid, ROOT, "hard", &f), 0);
	VT_EQ(f.nodeid, e.nodeid);
	VT_EQ(f.attr.nlink, 2);
	VT_EQ(fusec_symlink(&t.c, ROOT, "sym", "dir/f002", &f), 0);
	VT_EQ(f.attr.mode & S_IFMT, S_IFLNK);
	char target[64];
	VT_EQ(fusec_readlink(&t.c, f.nodeid, target, sizeof(target)), 8);
	VT_CHECK(strcmp(target, "dir/f002") == 0);
	VT_EQ(readlink(fst_path(&t.e, "sym"), target, sizeof(target)), 8);
	/* unlink, rmdir */
	VT_EQ(fusec_unlink(&t.c, ROOT, "hard", false), 0);
	VT_EQ(fusec_unlink(&t.c, ROOT, "dir", true), -ENOTEMPTY);
	VT_EQ(fusec_unlink(&t.c, ROOT, "sym", false), 0);
	VT_EQ(fusec_lookup(&t.c, ROOT, "sym", &f), -ENOENT);
	VT_EQ(fusec_mkdir(&t.c, ROOT, "empty", 0700, &e), 0);
	VT_EQ(fusec_unlink(&t.c, ROOT, "empty", true), 0);
	VT_CHECK(access(fst_path(&t.e, "empty"), F_OK) < 0);
	/* mknod: fifos, sockets and regular files only */
	VT_EQ(fusec_mknod(&t.c, ROOT, "fifo", S_IFIFO | 0600, 0, &e), 0);
	VT_EQ(e.attr.mode, S_IFIFO | 0600);
	VT_EQ(fusec_mknod(&t.c, ROOT, "sock", S_IFSOCK | 0600, 0, &e), 0);
	VT_EQ(fusec_mknod(&t.c, ROOT, "reg", S_IFREG | 0600, 0, &e), 0);
	VT_EQ(stat(fst_path(&t.e, "fifo"), &st), 0);
	VT_CHECK(S_ISFIFO(st.st_mode));
	/* The guest opens its FIFOs itself: OPEN on one is refused. */
	VT_EQ(fusec_lookup(&t.c, ROOT, "fifo", &e), 0);
	VT_EQ(fusec_open(&t.c, e.nodeid, O_RDONLY, &fh), -EACCES);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(attributes)
{
	struct fuse_entry_out e;
	struct fuse_attr a;
	struct stat st;
	uint64_t fh;
	struct fst t;

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_EQ(fusec_create(&t.c, ROOT, "f", O_RDWR, 0644, &e, &fh), 0);
	struct fuse_setattr_in in = {.valid = FATTR_MODE, .mode = 0600};
	VT_EQ(fusec_setattr(&t.c, e.nodeid, &in, &a), 0);
	VT_EQ(a.mode, S_IFREG | 0600);
	in = (struct fuse_setattr_in){.valid = FATTR_UID | FATTR_GID, .uid = 1234, .gid = 4321};
	VT_EQ(fusec_setattr(&t.c, e.nodeid, &in, &a), 0);
	VT_EQ(a.uid, 1234);
	VT_EQ(a.gid, 4321);
	in = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = 123456};
	VT_EQ(fusec_setattr(&t.c, e.nodeid, &in, &a), 0);
	VT_EQ(a.size, 123456);
	in = (struct fuse_setattr_in){.valid = FATTR_SIZE | FATTR_FH, .fh = fh, .size = 77};
	VT_EQ(fusec_setattr(&t.c, e.nodeid, &in, &a), 0);
	VT_EQ(a.size, 77);
	in = (struct fuse_setattr_in){.valid = FATTR_ATIME | FATTR_MTIME,
	                              .atime = 1000000000,
	                              .mtime = 1234567890,
	                              .mtimensec = 5};
	VT_EQ(fusec_setattr(&t.c, e.nodeid, &in, &a), 0);
	VT_EQ(stat(fst_path(&t.e, "f"), &st), 0);
	VT_EQ(st.st_mode, S_IFREG | 0600);
	VT_EQ(st.st_uid, 1234);
	VT_EQ(st.st_gid, 4321);
	VT_EQ(st.st_size, 77);
	VT_EQ(st.st_atime, 1000000000);
	VT_EQ(st.st_mtime, 1234567890);
	VT_EQ(st.st_mtim.tv_nsec, 5);
	/* Invalid nanoseconds are refused, nothing changes. */
	in = (struct fuse_setattr_in){.valid = FATTR_MTIME, .mtime = 5, .mtimensec = 1000000000};
	VT_EQ(fusec_setattr(&t.c, e.nodeid, &in, &a), -EINVAL);
	/* statfs */
	struct fusec_reply r;
	VT_EQ(fusec_call(&t.c, 1, FUSE_STATFS, ROOT, NULL, 0, 4096, &r), 0);
	VT_EQ(r.len, sizeof(struct fuse_statfs_out));
	/* fallocate, lseek for data and holes, copy_file_range */
	struct fuse_fallocate_in fa = {.fh = fh, .offset = 1 << 20, .length = 4096};
	struct iovec av = {&fa, sizeof(fa)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_FALLOCATE, e.nodeid, &av, 1, 4096, &r), 0);
	VT_EQ(stat(fst_path(&t.e, "f"), &st), 0);
	VT_EQ(st.st_size, (1 << 20) + 4096);
	VT_EQ(fusec_write(&t.c, e.nodeid, fh, 0, "0123456789", 10), 10);
	struct fuse_lseek_in ls = {.fh = fh, .offset = 0, .whence = SEEK_HOLE};
	av = (struct iovec){&ls, sizeof(ls)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_LSEEK, e.nodeid, &av, 1, 4096, &r), 0);
	VT_EQ(r.len, sizeof(struct fuse_lseek_out));
	VT_CHECK(((struct fuse_lseek_out *)r.data)->offset >= 10);
	ls.whence = SEEK_END; /* the guest seeks by itself */
	VT_EQ(fusec_call(&t.c, 1, FUSE_LSEEK, e.nodeid, &av, 1, 4096, &r), -EINVAL);
	struct fuse_entry_out e2;
	uint64_t fh2;
	VT_EQ(fusec_create(&t.c, ROOT, "g", O_RDWR, 0644, &e2, &fh2), 0);
	struct fuse_copy_file_range_in cr = {.fh_in = fh,
	                                     .off_in = 2,
	                                     .nodeid_out = e2.nodeid,
	                                     .fh_out = fh2,
	                                     .off_out = 0,
	                                     .len = 5};
	av = (struct iovec){&cr, sizeof(cr)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_COPY_FILE_RANGE, e.nodeid, &av, 1, 4096, &r), 0);
	char buf[16] = {0};
	VT_EQ(fusec_read(&t.c, e2.nodeid, fh2, 0, buf, 10), 5);
	VT_CHECK(memcmp(buf, "23456", 5) == 0);
	/* fsync, flush */
	struct fuse_fsync_in fs = {.fh = fh};
	av = (struct iovec){&fs, sizeof(fs)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_FSYNC, e.nodeid, &av, 1, 4096, &r), 0);
	struct fuse_flush_in fl = {.fh = fh};
	av = (struct iovec){&fl, sizeof(fl)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_FLUSH, e.nodeid, &av, 1, 4096, &r), 0);
	VT_EQ(fst_down(&t), 0);
}

/* Files are created as the caller, and the host's set-group-ID directory
 * rules hold (CVE-2022-0358 class). */
VT_CASE(created_as_the_caller)
{
	struct fuse_entry_out d, e;
	struct stat st;
	struct fusec_reply r;
	struct fst t;

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_EQ(chmod(t.e.share, 0777), 0);
	struct fuse_create_in ci = {.flags = O_WRONLY, .mode = 0644};
	struct iovec a[2] = {{&ci, sizeof(ci)}, {"mine", 5}};
	VT_EQ(fusec_call_as(&t.c, 1, FUSE_CREATE, ROOT, 1000, 1000, a, 2, 4096, &r), 0);
	VT_EQ(stat(fst_path(&t.e, "mine"), &st), 0);
	VT_EQ(st.st_uid, 1000);
	VT_EQ(st.st_gid, 1000);
	/* A set-group-ID directory of group 50: a file made in it by a
	 * non-member gets group 50, never the set-group-ID bit. */
	VT_EQ(fusec_mkdir(&t.c, ROOT, "sgid", 02777, &d), 0);
	VT_EQ(chown(fst_path(&t.e, "sgid"), 0, 50), 0);
	VT_EQ(chmod(fst_path(&t.e, "sgid"), 02777), 0);
	struct fuse_mkdir_in mi = {.mode = 0755};
	struct iovec m[2] = {{&mi, sizeof(mi)}, {"sub", 4}};
	VT_EQ(fusec_call_as(&t.c, 1, FUSE_MKDIR, d.nodeid, 1000, 1000, m, 2, 4096, &r), 0);
	VT_EQ(stat(fst_path(&t.e, "sgid/sub"), &st), 0);
	VT_EQ(st.st_gid, 50);
	VT_CHECK(st.st_mode & S_ISGID); /* directories inherit it */
	VT_EQ(st.st_uid, 1000);
	ci.mode = 0755;
	a[1] = (struct iovec){"file", 5};
	VT_EQ(fusec_call_as(&t.c, 1, FUSE_CREATE, d.nodeid, 1000, 1000, a, 2, 4096, &r), 0);
	VT_EQ(stat(fst_path(&t.e, "sgid/file"), &st), 0);
	VT_EQ(st.st_gid, 50);
	VT_EQ(st.st_mode & 07777, 0755);
	(void)e;
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(lookup_counts_and_forget)
{
	struct fuse_entry_out e, e2;
	uint64_t fh;
	struct fst t;

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_EQ(fusec_create(&t.c, ROOT, "x", O_RDWR, 0600, &e, &fh), 0);
	VT_EQ(fusec_release(&t.c, e.nodeid, fh, false), 0);
	VT_EQ(fusec_lookup(&t.c, ROOT, "x", &e2), 0);
	VT_EQ(e2.nodeid, e.nodeid); /* same inode, same nodeid */
	/* Two lookups held: one forget leaves it usable. */
	VT_EQ(fusec_forget(&t.c, e.nodeid, 1), 0);
	VT_EQ(fusec_getattr(&t.c, e.nodeid, NULL), 0);
	VT_EQ(fusec_forget(&t.c, e.nodeid, 1), 0);
	VT_EQ(fusec_getattr(&t.c, e.nodeid, NULL), -ESTALE);
	/* A new lookup gets a new nodeid (never the stale one again). */
	VT_EQ(fusec_lookup(&t.c, ROOT, "x", &e2), 0);
	VT_CHECK(e2.nodeid != e.nodeid);
	/* Forgetting more than held, or the root, breaks nothing. */
	VT_EQ(fusec_forget(&t.c, e2.nodeid, 1000000), 0);
	VT_EQ(fusec_getattr(&t.c, e2.nodeid, NULL), -ESTALE);
	VT_EQ(fusec_forget(&t.c, ROOT, 1000000), 0);
	VT_EQ(fusec_getattr(&t.c, ROOT, NULL), 0);
	VT_EQ(fst_down(&t), 0);
}

/* A session leaves no fd behind: DESTROY (or INIT again) closes every
 * handle and inode. */
VT_CASE(no_fd_leaks_across_sessions)
{
	struct fuse_entry_out e;
	uint64_t fh, dfh;
	struct fusec_reply r;
	struct fst t;
	char name[16];

	VT_REQUIRE(fst_up(&t, NULL, 1));
	int base = count_fds(t.e.pid);
	VT_CHECK(base > 0);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		VT_EQ(fusec_create(&t.c, ROOT, name, O_RDWR, 0600, &e, &fh), 0);
	}
	VT_EQ(fusec_opendir(&t.c, ROOT, &dfh), 0);
	VT_CHECK(count_fds(t.e.pid) >= base + 201);
	VT_EQ(fusec_call(&t.c, 1, FUSE_DESTROY, 0, NULL, 0, 4096, &r), 0);
	VT_EQ(count_fds(t.e.pid), base);
	/* After DESTROY nothing but INIT is served. */
	VT_EQ(fusec_getattr(&t.c, ROOT, NULL), -EIO);
	VT_EQ(fusec_init(&t.c, FUSE_KERNEL_MINOR_VERSION, 0), 0);
	VT_EQ(fusec_getattr(&t.c, ROOT, NULL), 0);
	VT_EQ(fusec_getattr(&t.c, e.nodeid, NULL), -ESTALE);
	/* INIT without DESTROY (a guest that rebooted) also starts afresh. */
	VT_EQ(fusec_create(&t.c, ROOT, "again", O_RDWR, 0600, &e, &fh), 0);
	VT_EQ(fusec_init(&t.c, FUSE_KERNEL_MINOR_VERSION, 0), 0);
	VT_EQ(count_fds(t.e.pid), base);
	/* And a front end that disconnects ends its session too. */
	VT_EQ(fusec_create(&t.c, ROOT, "third", O_RDWR, 0600, &e, &fh), 0);
	fusec_close(&t.c);
	VT_REQUIRE(fusec_connect(&t.c, t.e.sock, 1, 256) == 0);
	VT_EQ(fusec_init(&t.c, FUSE_KERNEL_MINOR_VERSION, 0), 0);
	VT_EQ(count_fds(t.e.pid), base);
	VT_EQ(fst_down(&t), 0);
}

static void flocks(const char *const *args)
{
	struct fuse_entry_out e;
	uint64_t fh1, fh2;
	struct fusec_reply r;
	struct fst t;

	VT_REQUIRE(fst_up(&t, args, 2));
	VT_EQ(fusec_create(&t.c, ROOT, "lk", O_RDWR, 0600, &e, &fh1), 0);
	VT_EQ(fusec_open(&t.c, e.nodeid, O_RDWR, &fh2), 0);
	struct fuse_lk_in lk = {.fh = fh1, .lk = {.type = F_WRLCK}, .lk_flags = FUSE_LK_FLOCK};
	struct iovec a = {&lk, sizeof(lk)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_SETLK, e.nodeid, &a, 1, 4096, &r), 0);
	/* The host sees the lock. */
	int hfd = open(fst_path(&t.e, "lk"), O_RDONLY);
	VT_REQUIRE(hfd >= 0);
	VT_EQ(flock(hfd, LOCK_SH | LOCK_NB), -1);
	lk.fh = fh2;
	VT_EQ(fusec_call(&t.c, 1, FUSE_SETLK, e.nodeid, &a, 1, 4096, &r), -EAGAIN);
	/* A blocking request waits without holding up its queue... */
	VT_CHECK(fusec_submit(&t.c, 2, FUSE_SETLKW, e.nodeid, &a, 1, 4096) > 0);
	VT_EQ(fusec_wait(&t.c, 2, 200, &r), -ETIMEDOUT);
	VT_EQ(fusec_getattr(&t.c, e.nodeid, NULL), 0);
	/* ...and is granted once the holder unlocks (on the same queue the
	 * waiter came on, even). */
	lk.fh = fh1;
	lk.lk.type = F_UNLCK;
	struct fusec_reply r2;
	VT_EQ(fusec_call(&t.c, 1, FUSE_SETLK, e.nodeid, &a, 1, 4096, &r2), 0);
	VT_EQ(fusec_wait(&t.c, 2, FUSEC_TIMEOUT_MS, &r), 0);
	VT_EQ(flock(hfd, LOCK_SH | LOCK_NB), -1); /* fh2 holds it now */
	/* RELEASE with FLOCK_UNLOCK drops it. */
	struct fuse_release_in rel = {.fh = fh2, .release_flags = FUSE_RELEASE_FLOCK_UNLOCK};
	a = (struct iovec){&rel, sizeof(rel)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_RELEASE, e.nodeid, &a, 1, 4096, &r), 0);
	VT_EQ(flock(hfd, LOCK_SH | LOCK_NB), 0);
	/* POSIX locks stay in the guest. */
	lk = (struct fuse_lk_in){.fh = fh1, .lk = {.type = F_WRLCK}};
	a = (struct iovec){&lk, sizeof(lk)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_SETLK, e.nodeid, &a, 1, 4096, &r), -ENOSYS);
	VT_EQ(fusec_call(&t.c, 1, FUSE_GETLK, e.nodeid, &a, 1, 4096, &r), -ENOSYS);
	close(hfd);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(flock_across_handles)
{
	const char *const args[] = {"--num-request-queues", "2", NULL};
	flocks(args);
}

/* The same with a pool: the wait is parked from a pool thread. */
VT_CASE(flock_with_thread_pool)
{
	const char *const args[] = {"--num-request-queues", "2", "--thread-pool-size", "2", NULL};
	flocks(args);
}

/* A lock wait pending when the front end goes away is dropped, and the
 * daemon serves the next one. */
VT_CASE(lock_wait_then_disconnect)
{
	struct fuse_entry_out e;
	uint64_t fh;
	struct fst t;

	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_EQ(fusec_create(&t.c, ROOT, "lk", O_RDWR, 0600, &e, &fh), 0);
	int hfd = open(fst_path(&t.e, "lk"), O_RDONLY);
	VT_REQUIRE(hfd >= 0);
	VT_EQ(flock(hfd, LOCK_EX), 0); /* held by a host process */
	struct fuse_lk_in lk = {.fh = fh, .lk = {.type = F_WRLCK}, .lk_flags = FUSE_LK_FLOCK};
	struct iovec a = {&lk, sizeof(lk)};
	VT_CHECK(fusec_submit(&t.c, 1, FUSE_SETLKW, e.nodeid, &a, 1, 4096) > 0);
	usleep(100000);
	fusec_close(&t.c);
	VT_REQUIRE(fusec_connect(&t.c, t.e.sock, 1, 256) == 0);
	VT_EQ(fusec_init(&t.c, FUSE_KERNEL_MINOR_VERSION, 0), 0);
	VT_EQ(fusec_getattr(&t.c, ROOT, NULL), 0);
	close(hfd);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(xattrs)
{
	struct fuse_entry_out e;
	struct fusec_reply r;
	uint64_t fh;
	struct fst t;
	const char *const args[] = {"--xattr", NULL};

	VT_REQUIRE(fst_up(&t, args, 1));
	VT_EQ(fusec_create(&t.c, ROOT, "x", O_RDWR, 0600, &e, &fh), 0);
	struct fuse_setxattr_in si = {.size = 5};
	struct iovec a[3] = {{&si, FUSE_COMPAT_SETXATTR_IN_SIZE}, {"user.k", 7}, {"value", 5}};
	VT_EQ(fusec_call(&t.c, 1, FUSE_SETXATTR, e.nodeid, a, 3, 4096, &r), 0);
	char v[16] = {0};
	VT_EQ(getxattr(fst_path(&t.e, "x"), "user.k", v, sizeof(v)), 5);
	VT_CHECK(memcmp(v, "value", 5) == 0);
	struct fuse_getxattr_in gi = {.size = 0};
	struct iovec g[2] = {{&gi, sizeof(gi)}, {"user.k", 7}};
	VT_EQ(fusec_call(&t.c, 1, FUSE_GETXATTR, e.nodeid, g, 2, 4096, &r), 0);
	VT_EQ(((struct fuse_getxattr_out *)r.data)->size, 5);
	gi.size = 64;
	VT_EQ(fusec_call(&t.c, 1, FUSE_GETXATTR, e.nodeid, g, 2, 4096, &r), 0);
	VT_EQ(r.len, 5);
	gi.size = 2;
	VT_EQ(fusec_call(&t.c, 1, FUSE_GETXATTR, e.nodeid, g, 2, 4096, &r), -ERANGE);
	gi.size = 256;
	VT_EQ(fusec_call(&t.c, 1, FUSE_LISTXATTR, e.nodeid, g, 1, 4096, &r), 0);
	VT_CHECK(r.len >= 7 && memmem(r.data, r.len, "user.k", 7));
	VT_EQ(fusec_call(&t.c, 1, FUSE_REMOVEXATTR, e.nodeid, &g[1], 1, 4096, &r), 0);
	VT_EQ(getxattr(fst_path(&t.e, "x"), "user.k", v, sizeof(v)), -1);
	/* On a symlink: the link itself, never its target. */
	struct fuse_entry_out s;
	VT_EQ(fusec_symlink(&t.c, ROOT, "ln", "x", &s), 0);
	gi.size = 0;
	g[1] = (struct iovec){"user.k", 7};
	VT_EQ(fusec_call(&t.c, 1, FUSE_GETXATTR, s.nodeid, g, 2, 4096, &r), -ENODATA);
	VT_EQ(fusec_call(&t.c, 1, FUSE_SETXATTR, s.nodeid, a, 3, 4096, &r), -EPERM);
	VT_EQ(getxattr(fst_path(&t.e, "x"), "user.k", v, sizeof(v)), -1);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(xattrs_off_by_default)
{
	struct fusec_reply r;
	struct fst t;
	VT_REQUIRE(fst_up(&t, NULL, 1));
	struct fuse_getxattr_in gi = {.size = 0};
	struct iovec g[2] = {{&gi, sizeof(gi)}, {"user.k", 7}};
	VT_EQ(fusec_call(&t.c, 1, FUSE_GETXATTR, ROOT, g, 2, 4096, &r), -ENOSYS);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(readonly_share)
{
	struct fuse_entry_out e;
	uint64_t fh;
	struct fst t;
	const char *const args[] = {"--readonly", NULL};

	VT_REQUIRE(fst_up(&t, args, 1));
	int fd = open(fst_path(&t.e, "there"), O_CREAT | O_WRONLY, 0644);
	VT_REQUIRE(fd >= 0);
	close(fd);
	VT_EQ(fusec_create(&t.c, ROOT, "new", O_RDWR, 0600, &e, &fh), -EROFS);
	VT_EQ(fusec_mkdir(&t.c, ROOT, "d", 0700, &e), -EROFS);
	VT_EQ(fusec_lookup(&t.c, ROOT, "there", &e), 0);
	VT_EQ(fusec_open(&t.c, e.nodeid, O_RDWR, &fh), -EROFS);
	VT_EQ(fusec_open(&t.c, e.nodeid, O_RDONLY, &fh), 0);
	VT_EQ(fusec_unlink(&t.c, ROOT, "there", false), -EROFS);
	VT_CHECK(access(fst_path(&t.e, "new"), F_OK) < 0);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(cache_modes)
{
	struct fuse_entry_out e;
	uint64_t fh;
	struct fusec_reply r;
	const char *const never[] = {"--cache", "never", NULL};
	const char *const always[] = {"--cache", "always", NULL};
	struct fst t;

	VT_REQUIRE(fst_up(&t, never, 1));
	VT_EQ(fusec_create(&t.c, ROOT, "a", O_RDWR, 0600, &e, &fh), 0);
	VT_EQ(e.entry_valid, 0);
	struct fuse_open_in oi = {.flags = O_RDONLY};
	struct iovec a = {&oi, sizeof(oi)};
	VT_EQ(fusec_call(&t.c, 1, FUSE_OPEN, e.nodeid, &a, 1, 4096, &r), 0);
	VT_CHECK(((struct fuse_open_out *)r.data)->open_flags & FOPEN_DIRECT_IO);
	/* Without caching a missing name is an error, not a negative entry. */
	struct iovec n = {"nope", 5};
	VT_EQ(fusec_call(&t.c, 1, FUSE_LOOKUP, ROOT, &n, 1, 4096, &r), -ENOENT);
	VT_EQ(fst_down(&t), 0);

	VT_REQUIRE(fst_up(&t, always, 1));
	VT_EQ(fusec_create(&t.c, ROOT, "a", O_RDWR, 0600, &e, &fh), 0);
	VT_EQ(e.entry_valid, 86400);
	VT_EQ(fusec_call(&t.c, 1, FUSE_OPEN, e.nodeid, &a, 1, 4096, &r), 0);
	VT_CHECK(((struct fuse_open_out *)r.data)->open_flags & FOPEN_KEEP_CACHE);
	VT_EQ(fusec_call(&t.c, 1, FUSE_LOOKUP, ROOT, &n, 1, 4096, &r), 0);
	VT_EQ(((struct fuse_entry_out *)r.data)->nodeid, 0);
	VT_EQ(((struct fuse_entry_out *)r.data)->entry_valid, 86400);
	VT_EQ(fst_down(&t), 0);
}

/* --writeback: the guest's page cache may read what it writes and places
 * appends itself, so the host file is opened read-write without O_APPEND. */
VT_CASE(writeback_cache)
{
	struct fuse_entry_out e;
	uint64_t fh;
	struct fst t;
	char buf[16] = {0};
	const char *const args[] = {"--writeback", NULL};

	VT_REQUIRE(fst_up(&t, args, 1));
	VT_EQ(fusec_init(&t.c, FUSE_KERNEL_MINOR_VERSION, FUSE_WRITEBACK_CACHE | FUSE_ASYNC_READ),
	      0);
	VT_CHECK(t.c.init.flags & FUSE_WRITEBACK_CACHE);
	VT_EQ(fusec_create(&t.c, FUSE_ROOT_ID, "wb", O_WRONLY | O_APPEND, 0644, &e, &fh), 0);
	VT_EQ(fusec_write(&t.c, e.nodeid, fh, 0, "abcdef", 6), 6);
	VT_EQ(fusec_write(&t.c, e.nodeid, fh, 0, "XY", 2), 2); /* at 0, not appended */
	VT_EQ(fusec_read(&t.c, e.nodeid, fh, 0, buf, sizeof(buf)), 6);
	VT_CHECK(memcmp(buf, "XYcdef", 6) == 0);
	/* Without --writeback the guest's O_WRONLY stays write-only. */
	VT_EQ(fst_down(&t), 0);
	VT_REQUIRE(fst_up(&t, NULL, 1));
	VT_EQ(fusec_create(&t.c, FUSE_ROOT_ID, "wo", O_WRONLY, 0644, &e, &fh), 0);
	VT_EQ(fusec_read(&t.c, e.nodeid, fh, 0, buf, sizeof(buf)), -EBADF);
	VT_EQ(fst_down(&t), 0);
}

/* --announce-submounts: a directory on another file system than its
 * parent is flagged, so that the guest gives it its own st_dev. */
VT_CASE(announce_submounts)
{
	struct fuse_entry_out e;
	const char *const args[] = {"--announce-submounts", NULL};

	for (int announce = 0; announce < 2; announce++) {
		struct fst t = {0};
		char mnt[256];
		VT_REQUIRE(fst_prepare(&t.e) == 0);
		snprintf(mnt, sizeof(mnt), "%s/sub", t.e.share);
		VT_REQUIRE(mkdir(mnt, 0755) == 0 && mkdir(fst_path(&t.e, "plain"), 0755) == 0);
		VT_REQUIRE(mount("vhu-fst", mnt, "tmpfs", 0, "size=1m") == 0);
		VT_EQ(fst_launch(&t.e, announce ? args : NULL), 0);
		VT_EQ(fusec_connect(&t.c, t.e.sock, 1, 256), 0);
		VT_EQ(fusec_init(&t.c, FUSE_KERNEL_MINOR_VERSION, FUSE_SUBMOUNTS), 0);
		VT_EQ(!!(t.c.init.flags & FUSE_SUBMOUNTS), announce);
		VT_EQ(fusec_lookup(&t.c, FUSE_ROOT_ID, "sub", &e), 0);
		VT_EQ(!!(e.attr.flags & FUSE_ATTR_SUBMOUNT), announce);
		VT_EQ(fusec_lookup(&t.c, FUSE_ROOT_ID, "plain", &e), 0);
		VT_EQ(e.attr.flags & FUSE_ATTR_SUBMOUNT, 0);
		fusec_close(&t.c);
		VT_EQ(fst_stop(&t.e), 0);
		umount(mnt);
		fst_cleanup(&t.e);
	}
}

/* Several request queues served at once by their threads (and, with a
 * pool, by pool threads). */
struct mq_arg {
	struct fusec *c;
	unsigned q;
	int failures;
};

static void *mq_worker(void *p)
{
	struct mq_arg *a = p;
	static __thread uint8_t buf[65536], back[65536];
	char name[32];

	for (int i = 0; i < 50; i++) {
		struct fuse_create_in ci = {.flags = O_RDWR, .mode = 0600};
		snprintf(name, sizeof(name), "q%u-%d", a->q, i);
		struct iovec ca[2] = {{&ci, sizeof(ci)}, {name, strlen(name) + 1}};
		struct fusec_reply r;
		if (fusec_call(a->c, a->q, FUSE_CREATE, ROOT, ca, 2, 4096, &r) != 0) {
			a->failures++;
			continue;
		}
		struct fuse_entry_out e;
		struct fuse_open_out oo;
		memcpy(&e, r.data, sizeof(e));
		memcpy(&oo, r.data + sizeof(e), sizeof(oo));
		pattern(buf, sizeof(buf), a->q * 1000 + (unsigned)i);
		struct fuse_write_in wi = {.fh = oo.fh, .size = sizeof(buf)};
		struct iovec wa[2] = {{&wi, sizeof(wi)}, {buf, sizeof(buf)}};
		if (fusec_call(a->c, a->q, FUSE_WRITE, e.nodeid, wa, 2, 4096, &r) != 0)
			a->failures++;
		struct fuse_read_in ri = {.fh = oo.fh, .size = sizeof(back)};
		struct iovec ra = {&ri, sizeof(ri)};
		if (fusec_call(a->c, a->q, FUSE_READ, e.nodeid, &ra, 1, 16 + sizeof(back), &r) !=
		        0 ||
		    r.len != sizeof(back) || memcmp(r.data, buf, sizeof(buf)))
			a->failures++;
		struct fuse_release_in rl = {.fh = oo.fh};
		struct iovec la = {&rl, sizeof(rl)};
		if (fusec_call(a->c, a->q, FUSE_RELEASE, e.nodeid, &la, 1, 4096, &r) != 0)
			a->failures++;
	}
	return NULL;
}

static void multiqueue(const char *const *args)
{
	struct fst t;
	pthread_t th[4];
	struct mq_arg a[4];

	VT_REQUIRE(fst_up(&t, args, 4));
	for (unsigned i = 0; i < 4; i++) {
		a[i] = (struct mq_arg){&t.c, i + 1, 0};
		pthread_create(&th[i], NULL, mq_worker, &a[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		VT_EQ(a[i].failures, 0);
	}
	struct stat st;
	VT_EQ(stat(fst_path(&t.e, "q4-49"), &st), 0);
	VT_EQ(st.st_size, 65536);
	VT_EQ(fst_down(&t), 0);
}

VT_CASE(four_request_queues)
{
	const char *const args[] = {"--num-request-queues", "4", NULL};
	multiqueue(args);
}

VT_CASE(thread_pool)
{
	const char *const args[] = {"--num-request-queues", "4", "--thread-pool-size", "3", NULL};
	multiqueue(args);
}

VT_CASE(sandbox_none_and_chroot)
{
	const char *const none[] = {"--num-request-queues", "4", "--sandbox", "none", NULL};
	const char *const chr[] = {"--num-request-queues", "4", "--sandbox", "chroot", NULL};
	multiqueue(none);
	multiqueue(chr);
}

VT_MAIN
