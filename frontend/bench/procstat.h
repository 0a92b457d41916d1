/* SPDX-License-Identifier: Apache-2.0 */
/* CPU time of another process, from /proc, and the pid behind a socket. */
#ifndef VHU_BENCH_PROCSTAT_H
#define VHU_BENCH_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

/* Pid of the process at the other end of unix socket fd (SO_PEERCRED:
 * the process that created the listening socket), or -errno. */
pid_t peer_pid(int fd);

/* utime + stime of the whole process (all threads, dead ones included) in
 * microseconds, from /proc/<pid>/stat (clock-tick resolution), or -errno. */
int64_t proc_cpu_us(pid_t pid);

/* Context switches (voluntary + involuntary) of the process's live threads,
 * summed over /proc/<pid>/task/<tid>/status, or -errno.  Threads that exit
 * take their count with them. */
int64_t proc_ctxsw(pid_t pid);

/* The process's command name (/proc/<pid>/comm) into buf; "" if unknown. */
void proc_comm(pid_t pid, char *buf, size_t size);

#endif
