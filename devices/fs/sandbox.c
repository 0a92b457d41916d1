/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process sandbox, set up once before any thread exists:
 *
 *  - namespace (default): new mount, network and IPC namespaces (and a
 *    user namespace mapping our own ids when not root); the shared
 *    directory bind-mounted on itself with nodev and nosuid (plus rdonly
 *    with --readonly) and made the root (pivot_root), the old root
 *    detached.  Nothing outside the shared directory has a path any more,
 *    so even a resolution bug in our code cannot reach it, and device
 *    nodes in the share cannot be opened.
 *  - chroot: chroot(2) into the shared directory (no namespaces needed,
 *    weaker: a process that is root can leave a chroot).
 *  - none: no isolation but openat2(RESOLVE_BENEATH) and our own checks.
 *
 * Then, unless none: supplementary groups dropped (so that a file created
 * as the guest's caller never gets a group through the daemon's own
 * memberships: CVE-2022-0358) and every capability but the six the file
 * operations need dropped from the effective, permitted, inheritable and
 * bounding sets (libcap-ng).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#ifdef HAVE_LIBCAP_NG
#include <cap-ng.h>
#endif

static int fail(const char *what)
{
	int err = -errno;
	fprintf(stderr, "vhu-fs: sandbox: %s: %s\n", what, strerror(errno));
	return err ? err : -EPERM;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int err = n == (ssize_t)strlen(text) ? 0 : -errno;
	close(fd);
	return err;
}

/* Not root: a user namespace where we are, mapping only our own ids. */
static int enter_userns(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (unshare(CLONE_NEWUSER) < 0)
		return fail("unshare(CLONE_NEWUSER)");
	snprintf(map, sizeof(map), "%u %u 1\n", uid, uid);
	if (write_file("/proc/self/uid_map", map) < 0)
		return fail("uid_map");
	if (write_file("/proc/self/setgroups", "deny") < 0)
		return fail("setgroups");
	snprintf(map, sizeof(map), "%u %u 1\n", gid, gid);
	if (write_file("/proc/self/gid_map", map) < 0)
		return fail("gid_map");
	return 0;
}

/* Mount flags of "/" to keep when remounting it (a bind remount sets
 * them all; a read-only or noexec host mount must stay so). */
static unsigned long kept_flags(void)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs("/", &sv) < 0)
		return 0;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int enter_namespace(const char *dir, bool readonly)
{
	if (geteuid() != 0 && enter_userns() < 0)
		return -EPERM;
	if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) < 0)
		return fail("unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC)");
	/* Nothing we mount from here on propagates back to the host. */
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return fail("making / a slave mount");
	if (mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail("bind-mounting the shared directory");
	int oldroot = open("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
	int newroot = open(dir, O_DIRECTORY | O_PATH | O_CLOEXEC);
	if (oldroot < 0 || newroot < 0)
		return fail("opening the roots");
	int err = 0;
	if (fchdir(newroot) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		err = fail("pivot_root");
	/* The old root now sits on top of the new one at "/": detach it. */
	if (!err && (fchdir(oldroot) < 0 || mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0 ||
	             umount2(".", MNT_DETACH) < 0))
		err = fail("detaching the old root");
	if (!err && chdir("/") < 0)
		err = fail("chdir /");
	close(oldroot);
	close(newroot);
	if (err)
		return err;
	unsigned long flags = kept_flags() | MS_NODEV | MS_NOSUID | (readonly ? MS_RDONLY : 0);
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
		return fail("remounting the shared directory nodev,nosuid");
	return 0;
}

static int enter_chroot(int root_fd)
{
	if (fchdir(root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return fail("chroot");
	return 0;
}

static int drop_groups(void)
{
	if (geteuid() != 0)
		return 0; /* nothing to drop (and not allowed in a user namespace) */
	if (setgroups(0, NULL) < 0)
		return fail("setgroups");
	return 0;
}

static int drop_caps(void)
{
#ifdef HAVE_LIBCAP_NG
	capng_clear(CAPNG_SELECT_BOTH);
	/* chown as the guest asks, read/write whatever the guest's kernel
	 * allowed (it checks permissions: default_permissions), set the
	 * times and modes of files of any owner, keep set-group-ID where the
	 * caller may have it, and switch fsuid/fsgid to the caller. */
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_CHOWN, CAP_DAC_OVERRIDE,
	                  CAP_FOWNER, CAP_FSETID, CAP_SETGID, CAP_SETUID, -1) < 0 ||
	    capng_apply(CAPNG_SELECT_BOTH) < 0) {
		fprintf(stderr, "vhu-fs: sandbox: cannot drop capabilities\n");
		return -EPERM;
	}
	return 0;
#else
	return -ENOSYS;
#endif
}

bool fs_sandbox_caps_supported(void)
{
#ifdef HAVE_LIBCAP_NG
	return true;
#else
	return false;
#endif
}

int fs_sandbox_enter(enum fs_sandbox mode, const char *dir, bool readonly, int *root_fd)
{
	struct stat before, after;
	int err = 0;

	if (mode == FS_SANDBOX_NONE)
		return 0;
#ifdef FS_SANITIZER
	/* LeakSanitizer reads /proc/PID/task at exit, which no longer exists
	 * inside the new root: sanitizer builds (tests only) keep the
	 * file-system view and do the rest (groups, capabilities, seccomp).
	 * Release builds are tested with the real namespace. */
	if ((err = drop_groups()) < 0 || (err = drop_caps()) < 0)
		return err;
	return 0;
#endif
	if (fstat(*root_fd, &before) < 0)
		return -errno;
	if (mode == FS_SANDBOX_NAMESPACE)
		err = enter_namespace(dir, readonly);
	else
		err = enter_chroot(*root_fd);
	if (err)
		return err;
	/* Our inodes must live in the new root's mount (nodev, and no way up
	 * from it), and it must be the directory we opened. */
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail("opening the new root");
	if (fstat(fd, &after) < 0 || after.st_dev != before.st_dev ||
	    after.st_ino != before.st_ino) {
		close(fd);
		fprintf(stderr,
		        "vhu-fs: sandbox: the shared directory changed while entering it\n");
		return -EXDEV;
	}
	close(*root_fd);
	*root_fd = fd;
	if ((err = drop_groups()) < 0)
		return err;
	if (fs_sandbox_caps_supported() && (err = drop_caps()) < 0)
		return err;
	return 0;
}
