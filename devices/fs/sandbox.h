/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process isolation for vhu-fs (sandbox.c, seccomp.c).  Called from main's
 * thread, in this order, before (sandbox) and after (seccomp) the worker
 * threads exist.
 */
#ifndef VHU_FS_SANDBOX_H
#define VHU_FS_SANDBOX_H

#include <stdbool.h>

#include "fs.h"

/* AddressSanitizer builds (tests only): see sandbox.c and seccomp.c for
 * what they leave out and why. */
#if defined(__SANITIZE_ADDRESS__)
#define FS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FS_SANITIZER 1
#endif
#endif

/*
 * Isolate the process in the shared directory `dir` (mode: see sandbox.c)
 * and drop supplementary groups and capabilities.  *root_fd (an O_PATH fd
 * of dir) is replaced by one opened inside the new root, after checking it
 * is the same directory.  Before any thread is created.  0 or -errno
 * (printed).
 */
int fs_sandbox_enter(enum fs_sandbox mode, const char *dir, bool readonly, int *root_fd);
/* Built with libcap-ng (capabilities dropped) / libseccomp. */
bool fs_sandbox_caps_supported(void);
bool fs_seccomp_supported(void);

/*
 * Install the system-call allow-list on every thread of the process
 * (TSYNC; threads created later inherit it): anything else kills the
 * process (kill), raises SIGSYS and prints the call's number (trap), or is
 * only logged by the kernel (log).  `client`: the daemon connects to its
 * front end (AF_UNIX socket + connect allowed).  0 or -errno (printed).
 */
int fs_seccomp_install(enum fs_seccomp mode, bool client);

#endif
