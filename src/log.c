/* SPDX-License-Identifier: Apache-2.0 */
/* Diagnostics (vhu_log) and the migration dirty-page bitmap (vhu_dirty). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>

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

/* ---- vhu_dirty --------------------------------------------------------- */

int vhu_dirty_new(struct vhu_dirty **out, int fd, uint64_t size, uint64_t offset)
{
	struct vhu_dirty *log;
	uint64_t len = size + offset;
	struct stat st;
	void *map;

	if (fd < 0 || size == 0 || len < size || len > SIZE_MAX || size > UINT64_MAX / 8)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)
		return -EINVAL; /* would SIGBUS when marking */
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	/* Map from 0 so that an unaligned offset is fine. */
	map = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (map == MAP_FAILED) {
		int err = -errno;
		free(log);
		VHU_LOGE("mmap of dirty log (size %llu) failed: %d", (unsigned long long)len, err);
		return err;
	}
	log->map = map;
	log->map_size = (size_t)len;
	log->bitmap = (uint8_t *)map + offset;
	log->bits = size * 8;
	*out = log;
	return 0;
}

void vhu_dirty_free(struct vhu_dirty *log)
{
	if (!log)
		return;
	munmap(log->map, log->map_size);
	free(log);
}

static void set_bits(uint8_t *b, uint64_t first, uint64_t last)
{
	while (first <= last) {
		uint64_t byte = first / 8;
		unsigned lo = first % 8;
		unsigned hi = (last / 8 == byte) ? last % 8 : 7;
		uint8_t mask = (uint8_t)((0xffu >> (7 - hi)) & (0xffu << lo));

		/* The front end and other workers OR bits concurrently. */
		__atomic_fetch_or(&b[byte], mask, __ATOMIC_RELAXED);
		first = (byte + 1) * 8;
		if (first == 0)
			break;
	}
}

void vhu_dirty_mark(struct vhu_dirty *log, uint64_t gpa, uint64_t len)
{
	static atomic_bool warned;
	uint64_t first, last;

	if (!log || len == 0)
		return;
	first = gpa / VHU_LOG_PAGE;
	last = (gpa + (len - 1) < gpa ? UINT64_MAX : gpa + (len - 1)) / VHU_LOG_PAGE;
	if (last >= log->bits) {
		if (!atomic_exchange(&warned, true))
			VHU_LOGW("dirty log too small for gpa 0x%llx+0x%llx",
			         (unsigned long long)gpa, (unsigned long long)len);
		if (first >= log->bits)
			return;
		last = log->bits - 1;
	}
	set_bits(log->bitmap, first, last);
}
