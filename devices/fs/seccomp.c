/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The system calls vhu-fs makes once serving, and nothing else: what the
 * file operations use, what the library's threads and epoll loops use,
 * what glibc uses underneath (memory, futexes, signals, clocks).  Threads
 * may be created (clone with CLONE_THREAD), processes not; clone3 answers
 * ENOSYS (its flags are out of the filter's reach) and glibc falls back to
 * clone; ioctl answers ENOTTY.  Names are resolved at run time, so a call
 * the architecture lacks is simply not listed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox.h"

#ifdef HAVE_LIBSECCOMP
#include <sched.h>
#include <seccomp.h>

static const char *const allowed[] = {
    /* files */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "openat",
    "openat2",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "fstatfs",
    "statfs",
    "getdents64",
    "lseek",
    "mkdirat",
    "mknodat",
    "symlinkat",
    "linkat",
    "unlinkat",
    "renameat",
    "unlink",
    "renameat2",
    "readlinkat",
    "fchmod",
    "fchmodat",
    "fchownat",
    "fchown",
    "ftruncate",
    "fallocate",
    "fsync",
    "fdatasync",
    "syncfs",
    "utimensat",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "flock",
    "fcntl",
    "copy_file_range",
    "faccessat",
    "faccessat2",
    "dup",
    "dup3",
    "setfsuid",
    "setfsgid",
    /* the vhost-user socket, guest memory, eventfds, epoll */
    "recvmsg",
    "sendmsg",
    "recvfrom",
    "sendto",
    "accept",
    "accept4",
    "shutdown",
    "getsockopt",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "epoll_create1",
    "eventfd2",
    "signalfd4",
    "poll",
    "ppoll",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "brk",
    /* threads, time, signals, exit */
    "futex",
    "set_robust_list",
    "rseq",
    "sched_yield",
    "sched_getaffinity",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "gettimeofday",
    "getrandom",
    "exit",
    "exit_group",
    "gettid",
    "getpid",
    "tgkill",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigtimedwait",
    "rt_sigpending",
    "sigaltstack",
    "restart_syscall",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "prlimit64",
    "getrlimit",
    "membarrier",
};

/* AddressSanitizer's leak check stops the world at exit: a tracer task
 * (clone without CLONE_THREAD) that ptraces every thread.  Sanitizer
 * builds (tests only) allow what it uses; release builds never do. */
#ifdef FS_SANITIZER
static const char *const sanitizer_extra[] = {
    "prctl",    "ptrace",  "clone", "wait4",    "waitid", "sched_getaffinity",
    "readlink", "getppid", "kill",  "pipe2",    "open",   "stat",
    "lstat",    "access",  "uname", "getdents",
};
#endif

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	/* Async-signal-safe: no stdio. */
	char msg[64] = "vhu-fs: seccomp: forbidden system call ";
	size_t n = strlen(msg);
	char digits[12];
	int k = 0;
	unsigned nr = (unsigned)si->si_syscall;
	do
		digits[k++] = (char)('0' + nr % 10);
	while ((nr /= 10) && k < 11);
	while (k)
		msg[n++] = digits[--k];
	msg[n++] = '\n';
	ssize_t w = write(2, msg, n);
	(void)w;
	_exit(1);
}

static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned argc,
                const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	return seccomp_rule_add_array(ctx, action, nr, argc, cmp);
}

int fs_seccomp_install(enum fs_seccomp mode, bool client)
{
	uint32_t deflt = mode == FS_SECCOMP_TRAP  ? SCMP_ACT_TRAP
	                 : mode == FS_SECCOMP_LOG ? SCMP_ACT_LOG
	                                          : SCMP_ACT_KILL_PROCESS;
	int err = 0;

	if (mode == FS_SECCOMP_NONE)
		return 0;
	if (mode == FS_SECCOMP_TRAP) {
		struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
		sigaction(SIGSYS, &sa, NULL);
	}
	scmp_filter_ctx ctx = seccomp_init(deflt);
	if (!ctx) {
		fprintf(stderr, "vhu-fs: seccomp_init failed\n");
		return -ENOMEM;
	}
	err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; !err && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		err = rule(ctx, SCMP_ACT_ALLOW, allowed[i], 0, NULL);
	struct scmp_arg_cmp unix_only = SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0);
	if (!err && client)
		err = rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &unix_only);
	if (!err && client)
		err = rule(ctx, SCMP_ACT_ALLOW, "connect", 0, NULL);
	if (!err)
		err = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	if (!err)
		err = rule(ctx, SCMP_ACT_ERRNO(ENOTTY), "ioctl", 0, NULL);
#ifdef FS_SANITIZER
	for (size_t i = 0; !err && i < sizeof(sanitizer_extra) / sizeof(sanitizer_extra[0]); i++)
		err = rule(ctx, SCMP_ACT_ALLOW, sanitizer_extra[i], 0, NULL);
#else
	struct scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
	struct scmp_arg_cmp name[2] = {SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0),
	                               SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME, 0)};
	if (!err)
		err = rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &thread);
	for (int i = 0; !err && i < 2; i++)
		err = rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &name[i]);
#endif
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	if (err)
		fprintf(stderr, "vhu-fs: cannot install the seccomp filter: %s\n", strerror(-err));
	return err;
}

bool fs_seccomp_supported(void)
{
	return true;
}
#else
int fs_seccomp_install(enum fs_seccomp mode, bool client)
{
	return mode == FS_SECCOMP_NONE ? 0 : -ENOSYS;
}

bool fs_seccomp_supported(void)
{
	return false;
}
#endif
