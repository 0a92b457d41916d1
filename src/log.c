/* SPDX-License-Identifier: Apache-2.0 */
/* Diagnostics (vhu_log); the migration dirty log is dirty.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* ---- vhu_log ----------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static vhu_log_sink log_sink;
static void *log_opaque;
static _Atomic int log_level = -1; /* -1: not read from VHU_LOG yet */
static char log_prefix[64] = "libvhu";

static int level_from_env(void)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	const char *e = getenv("VHU_LOG");

	for (unsigned i = 0; e && i < VHU_ARRAY_SIZE(names); i++)
		if (!strcasecmp(e, names[i]))
			return (int)i;
	return VHU_LOG_WARN;
}

static int current_level(void)
{
	int l = atomic_load_explicit(&log_level, memory_order_relaxed);

	if (l < 0) {
		int want = -1;
		/* First use: adopt VHU_LOG unless vhu_log_set_level() won. */
		atomic_compare_exchange_strong(&log_level, &want, level_from_env());
		l = atomic_load_explicit(&log_level, memory_order_relaxed);
	}
	return l;
}

void vhu_log_set_sink(vhu_log_sink sink, void *opaque)
{
	pthread_mutex_lock(&log_lock);
	log_sink = sink;
	log_opaque = opaque;
	pthread_mutex_unlock(&log_lock);
}

void vhu_log_set_level(enum vhu_log_level level)
{
	if ((int)level < VHU_LOG_ERROR)
		level = VHU_LOG_ERROR;
	if (level > VHU_LOG_DEBUG)
		level = VHU_LOG_DEBUG;
	atomic_store(&log_level, (int)level);
}

void vhu_log_set_prefix(const char *prefix)
{
	pthread_mutex_lock(&log_lock);
	snprintf(log_prefix, sizeof(log_prefix), "%s", prefix ? prefix : "libvhu");
	pthread_mutex_unlock(&log_lock);
}

/* Does msg already start with "PREFIX: "? */
static bool prefixed(const char *msg)
{
	size_t n = strlen(log_prefix);

	return !strncmp(msg, log_prefix, n) && msg[n] == ':' && msg[n + 1] == ' ';
}

void vhu_log(enum vhu_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if ((int)level > current_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The lock keeps sink and opaque consistent and lines whole. */
	pthread_mutex_lock(&log_lock);
	if (log_sink)
		log_sink(level, msg, log_opaque);
	else if (prefixed(msg))
		fprintf(stderr, "%s\n", msg);
	else
		fprintf(stderr, "%s: %s\n", log_prefix, msg);
	pthread_mutex_unlock(&log_lock);
}
