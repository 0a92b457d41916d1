/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line plumbing shared by the device daemons (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int cli_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	return CLI_EXIT_USAGE;
}

bool cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	/* strtoull would take blanks and a sign ("-1" is ULLONG_MAX). */
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int cli_check_stream_fd(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	return type == SOCK_STREAM ? 0 : -EPROTOTYPE;
}

/* After bind() failed with EADDRINUSE: 0 if the path was a stale socket
 * that is now removed, else -errno (-EADDRINUSE: someone listens there;
 * a full backlog, EAGAIN, is someone too). */
static int clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	if (lstat(sa->sun_path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return -EEXIST;
	int p = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p < 0)
		return -errno;
	int live = connect(p, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN;
	close(p);
	if (live)
		return -EADDRINUSE;
	return unlink(sa->sun_path) < 0 ? -errno : 0;
}

int cli_listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int rc;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		if (rc != -EADDRINUSE)
			goto fail;
		rc = clear_stale(&sa);
		if (rc < 0)
			goto fail;
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	if (listen(s, 16) < 0) {
		rc = -errno;
		unlink(path);
		goto fail;
	}
	return s;
fail:
	close(s);
	return rc;
}

void cli_signals_mask(int how, sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(how, &set, old);
}

int cli_signals_install(void (*handler)(int))
{
	struct sigaction sa = {.sa_handler = handler};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

void cli_signals_default(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
}

void cli_print_capabilities(const char *type, const char *const *features)
{
	printf("{\n  \"type\": \"%s\"", type);
	if (features && *features) {
		printf(",\n  \"features\": [\n");
		for (const char *const *f = features; *f; f++)
			printf("    \"%s\"%s\n", *f, f[1] ? "," : "");
		printf("  ]");
	}
	printf("\n}\n");
}
