/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-fs: vhost-user virtio-fs back end sharing one host directory.  The
 * back-end program conventions come from libvhu's program helper; this
 * file adds the options and the order that keeps the sandbox tight:
 * parse, open the directory, listen, enter the sandbox and drop
 * capabilities (no thread exists yet), start the device's and the daemon's
 * threads, install the seccomp filter on all of them, serve.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev.h"
#include "sandbox.h"

#define PROG "vhu-fs"

struct cli {
	struct fs_opts o;
	bool tag_set;
	bool seccomp_set;
	unsigned max_connections;
	unsigned poll_us;
	uint64_t rlimit_nofile;
};

enum {
	OPT_SHARED_DIR = 1,
	OPT_TAG,
	OPT_NQ,
	OPT_QSIZE,
	OPT_POOL,
	OPT_CACHE,
	OPT_WRITEBACK,
	OPT_XATTR,
	OPT_SUBMOUNTS,
	OPT_READONLY,
	OPT_SETUID,
	OPT_DIRECT,
	OPT_SANDBOX,
	OPT_SECCOMP,
	OPT_RLIMIT,
	OPT_MAX_CONN,
	OPT_POLL,
};

static const struct vhu_program_option options[] = {
    {"shared-dir", 0, VHU_PROGRAM_ARG, "DIR", "the directory to share (required)", OPT_SHARED_DIR},
    {"tag", 0, VHU_PROGRAM_ARG, "TAG",
     "mount tag in the config space (at most 36 bytes);\n"
     "front ends that read it (QEMU 8.2+ vhost-user-device)\n"
     "need it, QEMU's vhost-user-fs-pci sets its own",
     OPT_TAG},
    {"num-request-queues", 0, VHU_PROGRAM_ARG, "N",
     "request queues offered, each on its own thread\n(1..63, default 1)", OPT_NQ},
    {"queue-size", 0, VHU_PROGRAM_ARG, "N", "largest ring accepted (power of two, default 1024)",
     OPT_QSIZE},
    {"thread-pool-size", 0, VHU_PROGRAM_ARG, "N",
     "serve requests on N pool threads instead of on\nthe queue threads (default 0)", OPT_POOL},
    {"cache", 0, VHU_PROGRAM_ARG, "MODE",
     "never|auto|always: how long the guest may cache\nnames, attributes and data "
     "(0, 1 s, 1 day;\ndefault auto)",
     OPT_CACHE},
    {"writeback", 0, VHU_PROGRAM_NO_ARG, NULL, "let the guest cache writes (writeback cache)",
     OPT_WRITEBACK},
    {"xattr", 0, VHU_PROGRAM_NO_ARG, NULL, "pass extended attributes through", OPT_XATTR},
    {"announce-submounts", 0, VHU_PROGRAM_NO_ARG, NULL,
     "show mount points under the shared directory to\nthe guest as submounts", OPT_SUBMOUNTS},
    {"readonly", 0, VHU_PROGRAM_NO_ARG, NULL, "share read-only", OPT_READONLY},
    {"allow-setuid", 0, VHU_PROGRAM_NO_ARG, NULL,
     "let the guest create set-user/group-ID files and\nset security.capability "
     "(refused by default)",
     OPT_SETUID},
    {"allow-direct-io", 0, VHU_PROGRAM_NO_ARG, NULL, "honour the guest's O_DIRECT", OPT_DIRECT},
    {"sandbox", 0, VHU_PROGRAM_ARG, "MODE",
     "namespace|chroot|none (default namespace); none\nalso turns off capability "
     "dropping and seccomp",
     OPT_SANDBOX},
    {"seccomp", 0, VHU_PROGRAM_ARG, "ACTION",
     "kill|trap|log|none: what a system call outside the\nallow-list does (default kill)",
     OPT_SECCOMP},
    {"rlimit-nofile", 0, VHU_PROGRAM_ARG, "N",
     "open files limit (default: raised to the hard limit)", OPT_RLIMIT},
    {"poll-us", 0, VHU_PROGRAM_ARG, "US",
     "after a request, poll the queues up to US\nmicroseconds before sleeping (adaptive; 0: never)",
     OPT_POLL},
    {"max-connections", 0, VHU_PROGRAM_ARG, "N", "exit after serving N front ends", OPT_MAX_CONN},
    {0},
};

static int pick(struct vhu_program *p, const char *opt, const char *arg, const char *const *names,
                int *out)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(arg, names[i])) {
			*out = i;
			return 0;
		}
	return vhu_program_usage_error(p, "invalid value '%s' for --%s", arg, opt);
}

static int number(struct vhu_program *p, const char *opt, const char *arg, uint64_t min,
                  uint64_t max, uint64_t *v)
{
	if (vhu_program_parse_uint(arg, min, max, v))
		return 0;
	return vhu_program_usage_error(
	    p, "invalid value '%s' for --%s (expected an integer in [%" PRIu64 ", %" PRIu64 "])",
	    arg, opt, min, max);
}

static int parse_option(struct vhu_program *p, void *ctx, int key, const char *arg)
{
	static const char *const caches[] = {"never", "auto", "always", NULL};
	static const char *const sandboxes[] = {"namespace", "chroot", "none", NULL};
	static const char *const seccomps[] = {"kill", "trap", "log", "none", NULL};
	struct cli *c = ctx;
	uint64_t v = 0;
	int err = 0, k = 0;

	switch (key) {
	case OPT_SHARED_DIR:
		c->o.shared_dir = arg;
		return arg[0] ? 0 : vhu_program_usage_error(p, "--shared-dir: empty path");
	case OPT_TAG:
		if (!arg[0] || strlen(arg) > FS_TAG_MAX)
			return vhu_program_usage_error(p, "--tag: 1 to %u bytes", FS_TAG_MAX);
		strcpy(c->o.tag, arg);
		c->tag_set = true;
		return 0;
	case OPT_NQ:
		err = number(p, "num-request-queues", arg, 1, FS_MAX_REQ_QUEUES, &v);
		c->o.num_request_queues = (unsigned)v;
		return err;
	case OPT_QSIZE:
		err = number(p, "queue-size", arg, 2, 32768, &v);
		if (!err && (v & (v - 1)))
			err = vhu_program_usage_error(p, "--queue-size: not a power of two");
		c->o.queue_size = (unsigned)v;
		return err;
	case OPT_POOL:
		err = number(p, "thread-pool-size", arg, 0, 1024, &v);
		c->o.thread_pool_size = (unsigned)v;
		return err;
	case OPT_CACHE:
		err = pick(p, "cache", arg, caches, &k);
		c->o.cache = (enum fs_cache)k;
		return err;
	case OPT_WRITEBACK:
		c->o.writeback = true;
		return 0;
	case OPT_XATTR:
		c->o.xattr = true;
		return 0;
	case OPT_SUBMOUNTS:
		c->o.announce_submounts = true;
		return 0;
	case OPT_READONLY:
		c->o.readonly = true;
		return 0;
	case OPT_SETUID:
		c->o.allow_setuid = true;
		return 0;
	case OPT_DIRECT:
		c->o.allow_direct_io = true;
		return 0;
	case OPT_SANDBOX:
		err = pick(p, "sandbox", arg, sandboxes, &k);
		c->o.sandbox = (enum fs_sandbox)k;
		return err;
	case OPT_SECCOMP:
		err = pick(p, "seccomp", arg, seccomps, &k);
		c->o.seccomp = (enum fs_seccomp)k;
		c->seccomp_set = true;
		return err;
	case OPT_RLIMIT:
		return number(p, "rlimit-nofile", arg, 64, 1u << 30, &c->rlimit_nofile);
	case OPT_MAX_CONN:
		err = number(p, "max-connections", arg, 1, UINT_MAX, &v);
		c->max_connections = (unsigned)v;
		return err;
	case OPT_POLL:
		err = number(p, "poll-us", arg, 0, 1000000, &v);
		c->poll_us = (unsigned)v;
		return err;
	}
	return -EINVAL;
}

static int check(struct vhu_program *p, void *ctx)
{
	struct cli *c = ctx;
	if (!c->o.shared_dir)
		return vhu_program_usage_error(p, "--shared-dir is required");
	if (c->o.writeback && c->o.cache == FS_CACHE_NEVER)
		return vhu_program_usage_error(p, "--writeback needs --cache auto or always");
	if (c->o.sandbox == FS_SANDBOX_NONE && !c->seccomp_set)
		c->o.seccomp = FS_SECCOMP_NONE;
	if (c->o.seccomp != FS_SECCOMP_NONE && !fs_seccomp_supported()) {
		if (c->seccomp_set)
			return vhu_program_usage_error(
			    p, "--seccomp: built without libseccomp (Debian: libseccomp-dev)");
		fprintf(stderr,
		        PROG ": warning: built without libseccomp (Debian: libseccomp-dev): "
		             "no system-call filter\n");
		c->o.seccomp = FS_SECCOMP_NONE;
	}
	if (c->o.sandbox != FS_SANDBOX_NONE && !fs_sandbox_caps_supported())
		fprintf(stderr, PROG ": warning: built without libcap-ng (Debian: libcap-ng-dev): "
		                     "capabilities are not dropped\n");
	return 0;
}

static struct cli cli = {
    .o = {.num_request_queues = 1, .queue_size = 1024, .cache = FS_CACHE_AUTO},
};

static const struct vhu_program_info info = {
    .name = PROG,
    .summary = "vhost-user virtio-fs back end: shares a host directory with a guest.",
    .help_footer =
        "Serves one front end at a time until SIGINT or SIGTERM.  QEMU:\n"
        "  -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem\n"
        "  -chardev socket,id=c0,path=PATH -device vhost-user-fs-pci,chardev=c0,tag=TAG\n"
        "and in the guest: mount -t virtiofs TAG /mnt",
    .type = "fs",
    .options = options,
    .parse_option = parse_option,
    .check = check,
    .ctx = &cli,
};

static void raise_nofile(uint64_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	/* Every inode the guest holds is an open fd. */
	rl.rlim_cur = want ? want : rl.rlim_max;
	if (want && want > rl.rlim_max)
		rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		fprintf(stderr, PROG ": warning: cannot raise the open files limit: %s\n",
		        strerror(errno));
}

/* The socket file, removed at the end through its directory: inside the
 * sandbox its path means something else. */
struct sock_file {
	int dirfd;
	char name[NAME_MAX + 1];
	struct stat st;
};

static void sock_file_note(struct vhu_program *p, struct sock_file *sf)
{
	const char *path = vhu_program_socket_path(p, 0);
	char buf[PATH_MAX];

	sf->dirfd = -1;
	if (!path || strlen(path) >= sizeof(buf) || stat(path, &sf->st) < 0)
		return;
	strcpy(buf, path);
	const char *base = basename(buf);
	if (strlen(base) > NAME_MAX)
		return;
	strcpy(sf->name, base);
	strcpy(buf, path);
	sf->dirfd = open(dirname(buf), O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void sock_file_remove(struct sock_file *sf)
{
	struct stat now;
	if (sf->dirfd < 0)
		return;
	if (fstatat(sf->dirfd, sf->name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now.st_ino == sf->st.st_ino && now.st_dev == sf->st.st_dev)
		unlinkat(sf->dirfd, sf->name, 0);
	close(sf->dirfd);
	sf->dirfd = -1;
}

static int serve(struct vhu_program *p, struct fs_dev *dev)
{
	struct vhu_daemon_config cfg = {
	    .name = PROG,
	    .lock = VHU_LOCK_NONE,            /* the tables lock themselves */
	    .vring_flavour = VHU_VRING_MUTEX, /* pool threads and lock waits push */
	    .max_connections = cli.max_connections,
	    .poll_us = cli.poll_us,
	    /* The FUSE session (inodes, handles) cannot move with the guest, and
	     * QEMU 7.2 marks vhost-user-fs unmigratable: no dirty log, no
	     * postcopy (whose system calls the filter does not allow). */
	    .no_migration = true,
	};
	struct vhu_daemon *d;

	int err = vhu_daemon_new(&d, &fs_backend_ops, dev, &cfg);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot create the daemon: %s\n", strerror(-err));
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	/* Every thread exists now (but the serving one, which inherits it). */
	if (fs_seccomp_install(cli.o.seccomp, vhu_program_client(p)) < 0) {
		vhu_daemon_free(d);
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	vhu_program_set_daemon(p, 0, d);
	int status = vhu_program_run(p);
	struct fs *fs = fs_dev_fs(dev);
	vhu_log(VHU_LOG_INFO,
	        "served %" PRIu64 " front end(s), %" PRIu64 " requests (%" PRIu64
	        " malformed), %u inodes",
	        vhu_daemon_connections(d), (uint64_t)fs->st.requests, (uint64_t)fs->st.malformed,
	        fs_inodes_count(&fs->inodes));
	for (unsigned q = 0; q <= cli.o.num_request_queues; q++) {
		const struct vhu_vring *vr = vhu_daemon_vring(d, q);
		struct vhu_vring_stats st;
		if (!vr)
			break;
		vhu_vring_get_stats(vr, &st);
		vhu_log(VHU_LOG_INFO, "queue %u: %" PRIu64 " requests, %" PRIu64 " kicks", q,
		        st.requests, st.kicks);
	}
	vhu_daemon_free(d);
	return status;
}

int main(int argc, char **argv)
{
	struct vhu_program *p;
	struct fs_dev *dev;
	struct sock_file sf = {.dirfd = -1};
	int status;

	if (!(p = vhu_program_new(&info, argc, argv, &status)))
		return status;
	/* --client reconnects by path, and inside the sandbox the socket's
	 * path means nothing (or a file in the share). */
	if (vhu_program_client(p) && cli.o.sandbox != FS_SANDBOX_NONE) {
		vhu_program_usage_error(p, "--client needs --sandbox none (it connects by path, "
		                           "and the sandbox leaves no path outside the share)");
		vhu_program_free(p);
		return VHU_PROGRAM_EXIT_USAGE;
	}
	/* Where the tag was not given, the config space is not offered
	 * (QEMU's vhost-user-fs-pci does not want it). */
	if (!cli.tag_set)
		cli.o.tag[0] = 0;
	raise_nofile(cli.rlimit_nofile);
	umask(0); /* modes come from the guest, its umask already applied */
	int root_fd = open(cli.o.shared_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0 || proc_fd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", root_fd < 0 ? cli.o.shared_dir : "/proc/self/fd",
		        strerror(errno));
		goto fail;
	}
	if (vhu_program_listen(p) < 0)
		goto fail;
	sock_file_note(p, &sf);
	if (fs_sandbox_enter(cli.o.sandbox, cli.o.shared_dir, cli.o.readonly, &root_fd) < 0)
		goto fail;
	int err = fs_dev_new(&dev, &cli.o, root_fd, proc_fd);
	root_fd = proc_fd = -1;
	if (err < 0) {
		fprintf(stderr, PROG ": cannot create the device: %s\n", strerror(-err));
		goto fail;
	}
	status = serve(p, dev);
	fs_dev_free(dev);
	sock_file_remove(&sf);
	vhu_program_free(p);
	return status;
fail:
	if (root_fd >= 0)
		close(root_fd);
	if (proc_fd >= 0)
		close(proc_fd);
	sock_file_remove(&sf);
	vhu_program_free(p);
	return VHU_PROGRAM_EXIT_FAILURE;
}
