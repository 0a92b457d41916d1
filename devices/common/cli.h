/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line plumbing shared by the device daemons (vhu-blk, vhu-net,
 * vhu-rng): strict number parsing, usage errors, --fd checks, listening
 * sockets, signal set-up and --print-capabilities, as the vhost-user
 * "back-end program conventions" ask.  Called from main's thread only.
 */
#ifndef VHU_DEVICES_CLI_H
#define VHU_DEVICES_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit status of a usage error (run-time failures exit 1). */
#define CLI_EXIT_USAGE 2

/* Print "PROG: MESSAGE" and the --help hint to stderr; returns
 * CLI_EXIT_USAGE for the caller to exit with. */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict unsigned decimal: digits only (no sign, no blank), no overflow,
 * in [min, max].  True and *out set on success; *out untouched otherwise. */
bool cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* 0 if fd is an open stream socket, else -errno (-EPROTOTYPE: another
 * socket type). */
int cli_check_stream_fd(int fd);

/* Listen on the unix socket path: a stale socket file is replaced, one a
 * live process listens on is refused (-EADDRINUSE), a file that is not a
 * socket too (-EEXIST).  Returns the listening fd (close-on-exec), the
 * caller owns it and the socket file; or -errno. */
int cli_listen_unix(const char *path);

/* SIG_BLOCK / SIG_UNBLOCK SIGINT and SIGTERM in the calling thread (threads
 * created meanwhile inherit the mask); old, if not NULL, gets the mask
 * before. */
void cli_signals_mask(int how, sigset_t *old);

/* handler for SIGINT and SIGTERM (it must be async-signal-safe); SIGPIPE
 * ignored, so that a front end that hangs up cannot kill us through a
 * write.  0 or -errno. */
int cli_signals_install(void (*handler)(int));

/* SIGINT and SIGTERM back to their default actions. */
void cli_signals_default(void);

/* --print-capabilities: the JSON object of vhost-user.json's
 * VHostUserBackendCapabilities on stdout; features is NULL or a
 * NULL-terminated list. */
void cli_print_capabilities(const char *type, const char *const *features);

#endif
