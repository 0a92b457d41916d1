/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vhost-user back-end program conventions for a daemon's main().  A
 * daemon gets them in a few lines: the command line (--socket-path, --fd,
 * --print-capabilities with its JSON, --help, --version, --verbose, and
 * the device's own options), SIGINT/SIGTERM handling, serving one or more
 * daemons, removing the socket files it created, and the exit statuses
 * (0: stopped by a signal or done; 1: run-time failure; 2: usage error).
 * See docs/writing-a-device.md for a complete device.
 *
 * The simplest program (one device, one socket):
 *
 *     static const struct vhu_program_info info = {
 *         .name = "vhu-foo", .summary = "virtio-foo back end", .type = "foo"};
 *     int main(int argc, char **argv)
 *     {
 *         return vhu_program_main(&info, argc, argv, &foo_ops, &foo, NULL);
 *     }
 *
 * With its own options, listeners or several daemons (one per socket):
 *
 *     int status;
 *     struct vhu_program *p = vhu_program_new(&info, argc, argv, &status);
 *     if (!p)
 *         return status;               // --help, usage error...
 *     ...create device(s) and daemon(s)...
 *     vhu_program_set_daemon(p, 0, d); // one per socket
 *     status = vhu_program_run(p);     // blocks until SIGINT/SIGTERM
 *     ...print statistics, free daemon(s) and device(s)...
 *     vhu_program_free(p);
 *     return status;
 *
 * Signals: vhu_program_new() blocks SIGINT and SIGTERM in the calling
 * thread, so every thread created afterwards (daemon workers, serving
 * threads, the device's own) inherits the mask and the signals stay pending
 * until vhu_program_run() takes them from a signalfd: no signal handler
 * runs, nothing needs to be async-signal-safe.  So call vhu_program_new()
 * before creating any thread.  SIGPIPE is ignored once running (a front end
 * that hangs up cannot kill the daemon through a write).
 *
 * Threads: everything here from the thread that called vhu_program_new()
 * (normally main); parse callbacks run inside vhu_program_new().
 *
 * Messages: usage errors and run-time failures are printed to stderr as
 * "NAME: message"; vhu_program_new() also makes NAME the log prefix
 * (vhu_log_set_prefix), and -v / -vv raise the log level to info / debug.
 *
 * ABI: struct vhu_program_info ends in reserved space that later versions
 * may turn into fields: zero-initialise it (designated initialisers do) so
 * that such fields read as "not set".
 */
#ifndef VHU_PROGRAM_H
#define VHU_PROGRAM_H

#include <stdbool.h>
#include <stdint.h>

#include "vhu/backend.h"
#include "vhu/daemon.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_program;

enum vhu_program_arg {
	VHU_PROGRAM_NO_ARG = 0,       /* --flag */
	VHU_PROGRAM_ARG = 1,          /* --opt VALUE or --opt=VALUE */
	VHU_PROGRAM_OPTIONAL_ARG = 2, /* --opt or --opt=VALUE (callback gets NULL) */
};

/*
 * One device option.  An entry with name NULL and help set is a heading in
 * --help; an all-zero entry ends the table.  This struct never grows (the
 * library walks arrays of it), so positional initialisers are fine.
 */
struct vhu_program_option {
	const char *name;         /* long name without "--" */
	char short_name;          /* 0: none; s, v, h and V are taken */
	enum vhu_program_arg arg; /* whether it takes a value */
	const char *arg_name;     /* the value in --help ("N", "PATH") */
	const char *help;         /* --help text; '\n' starts an indented line */
	int key;                  /* handed to parse_option */
};

/* Exit statuses of a program. */
#define VHU_PROGRAM_EXIT_OK      0
#define VHU_PROGRAM_EXIT_FAILURE 1
#define VHU_PROGRAM_EXIT_USAGE   2

struct vhu_program_info {
	/* Program name, for messages, --help, --version and the log prefix.
	 * Required. */
	const char *name;
	/* Version printed by --version ("NAME VERSION (libvhu X.Y.Z)").
	 * NULL: libvhu's. */
	const char *version;
	/* One line under "Usage:" in --help. */
	const char *summary;
	/* What follows "[OPTIONS]" in the usage line (e.g. "[IMAGE]"). */
	const char *usage_args;
	/* Paragraph printed after the options in --help. */
	const char *help_footer;
	/* --print-capabilities: the "type" of vhost-user.json's
	 * VHostUserBackendCapabilities ("block", "net", "rng", "fs"...) and
	 * its "features" (NULL-terminated; NULL: none).  Required. */
	const char *type;
	const char *const *features;
	/* Sockets (--socket-path / --fd, in any mix) accepted; 0 means 1.
	 * Each is served by its own daemon. */
	unsigned max_sockets;
	/* false: at least one socket is required (usage error otherwise);
	 * true: the device's check callback adds a default one with
	 * vhu_program_add_socket() when none was given. */
	bool sockets_optional;
	/* The device's options; NULL: none. */
	const struct vhu_program_option *options;
	/* An option of the table was given (arg NULL for VHU_PROGRAM_NO_ARG
	 * and for an optional value left out).  Return 0, or a negative
	 * errno for a usage error: print the reason with
	 * vhu_program_usage_error() (a generic "invalid --NAME 'ARG'" is
	 * printed otherwise). */
	int (*parse_option)(struct vhu_program *p, void *ctx, int key, const char *arg);
	/* A non-option argument (IMAGE...).  NULL: refused. */
	int (*parse_arg)(struct vhu_program *p, void *ctx, const char *arg);
	/* After the whole command line: check combinations, add a default
	 * socket.  Same return convention.  May be NULL. */
	int (*check)(struct vhu_program *p, void *ctx);
	/* Passed to the callbacks. */
	void *ctx;
	void *reserved[8];
};

/*
 * Parse the command line.  Returns the program, or NULL with *status set
 * to the exit status: VHU_PROGRAM_EXIT_OK after --help, --version or
 * --print-capabilities (printed on stdout; --print-capabilities anywhere
 * before "--" wins over every other argument, as the conventions say),
 * VHU_PROGRAM_EXIT_USAGE after a usage error (printed on stderr with a
 * hint to --help), VHU_PROGRAM_EXIT_FAILURE when out of memory or when the
 * info is unusable (missing name or type, an option letter taken twice).
 * Blocks SIGINT and SIGTERM in the calling thread (see above).
 */
struct vhu_program *vhu_program_new(const struct vhu_program_info *info, int argc, char **argv,
                                    int *status);

/*
 * Print "NAME: message" and "Try 'NAME --help' for more information." to
 * stderr.  Returns -EINVAL, for a parse callback to return.
 */
int vhu_program_usage_error(struct vhu_program *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Strict unsigned decimal for option values: digits only (no sign, no
 * blank, no suffix), no overflow, within [min, max].  true and *out set,
 * or false and *out untouched. */
bool vhu_program_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/*
 * Add a socket path to serve (copied), as --socket-path does: for a
 * default socket in check, or from a device option that names several
 * (one daemon per socket).  0, -EINVAL (empty path, same path twice),
 * -E2BIG (more than max_sockets) or -ENOMEM.
 */
int vhu_program_add_socket(struct vhu_program *p, const char *path);

/* Sockets given, and socket i's path (NULL for an --fd) and a name for
 * messages (its path, or "--fd N"). */
unsigned vhu_program_num_sockets(const struct vhu_program *p);
const char *vhu_program_socket_path(const struct vhu_program *p, unsigned i);
const char *vhu_program_socket_name(const struct vhu_program *p, unsigned i);

/* --client was given: vhu_program_run() connects every daemon to its
 * socket path (vhu_daemon_connect: the front end listens, the back end
 * connects again whenever it goes) instead of listening; --fd is then a
 * usage error and vhu_program_listen() does nothing. */
bool vhu_program_client(const struct vhu_program *p);

/* Times -v/--verbose was given. */
unsigned vhu_program_verbosity(const struct vhu_program *p);

/* Serve socket i with daemon d (borrowed: free it after
 * vhu_program_run() returned).  0, or -EINVAL (i out of range). */
int vhu_program_set_daemon(struct vhu_program *p, unsigned i, struct vhu_daemon *d);

/*
 * Listen on every socket path (nothing with --client; a stale socket file is replaced, one a live
 * process listens on is not, nor a file that is not a socket) and check
 * every --fd (an open unix stream socket, listening or connected).  Prints
 * what failed.  0 or the first -errno.  vhu_program_run() does it if not
 * done before; call it yourself to print a banner once listening.
 */
int vhu_program_listen(struct vhu_program *p);

/*
 * Serve every socket with its daemon (with --client: connect each daemon
 * to its socket path), each on its own thread, until SIGINT/SIGTERM or until one of them stops by
 * itself (max_connections, failure); then stop them all and wait for them.  Removes the socket
 * files it created.  Returns VHU_PROGRAM_EXIT_OK, or VHU_PROGRAM_EXIT_FAILURE if listening or
 * serving failed (printed) or a socket has no daemon.  Call it once.
 */
int vhu_program_run(struct vhu_program *p);

/* Close what is left, remove the socket files it created, drop pending
 * SIGINT/SIGTERM and restore the signal mask vhu_program_new() found.
 * NULL is a no-op. */
void vhu_program_free(struct vhu_program *p);

/*
 * The whole program for a device that needs nothing more: parse (info's
 * max_sockets must be 0 or 1), create a daemon for ops/dev with cfg (NULL:
 * defaults; a NULL cfg->name becomes info->name), run, free.  Returns the
 * exit status for main to return.
 */
int vhu_program_main(const struct vhu_program_info *info, int argc, char **argv,
                     const struct vhu_backend_ops *ops, void *dev,
                     const struct vhu_daemon_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
