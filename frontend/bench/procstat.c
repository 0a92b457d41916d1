/* SPDX-License-Identifier: Apache-2.0 */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

pid_t peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (len != sizeof(cred) || cred.pid <= 0)
		return -ESRCH;
	return cred.pid;
}

static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	buf[n] = '\0';
	return n;
}

int64_t proc_cpu_us(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	/* comm may hold spaces and parentheses: fields restart after the
	 * last ')'.  Then: state(3) ppid pgrp session tty_nr tpgid flags
	 * minflt cminflt majflt cmajflt utime(14) stime(15). */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p++;
	unsigned long long ut = 0, st = 0;
	if (sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EINVAL;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	return (int64_t)((ut + st) * 1000000ull / (unsigned long long)hz);
}

void proc_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (size == 0)
		return;
	if (read_small(path, buf, size) < 0) {
		buf[0] = '\0';
		return;
	}
	buf[strcspn(buf, "\n")] = '\0';
}

static int64_t task_ctxsw(pid_t pid, const char *tid)
{
	char path[96], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, tid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return 0; /* the thread just exited */
	int64_t n = 0;
	for (char *p = buf; (p = strstr(p, "ctxt_switches:")); p++)
		n += strtoll(p + strlen("ctxt_switches:"), NULL, 10);
	return n;
}

int64_t proc_ctxsw(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int64_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n += task_ctxsw(pid, e->d_name);
	closedir(d);
	return n;
}
