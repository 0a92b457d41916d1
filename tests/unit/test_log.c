/* SPDX-License-Identifier: Apache-2.0 */
/* vhu_log levels and sink; the dirty-page bitmap. */
#include <pthread.h>
#include <sys/wait.h>

#include "guest.h"

VT_MAIN

static char last_msg[256];
static int nmsg;
static enum vhu_log_level last_level;

static void sink(enum vhu_log_level level, const char *msg, void *opaque)
{
	(void)opaque;
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
	last_level = level;
	nmsg++;
}

VT_CASE(log_sink_and_level)
{
	int x = 0;

	vhu_log_set_sink(sink, &x);
	vhu_log_set_level(VHU_LOG_WARN);
	nmsg = 0;
	vhu_log(VHU_LOG_ERROR, "e %d", 1);
	VT_EQ(nmsg, 1);
	VT_EQ(strcmp(last_msg, "e 1"), 0);
	VT_EQ(last_level, VHU_LOG_ERROR);
	vhu_log(VHU_LOG_WARN, "w");
	VT_EQ(nmsg, 2);
	vhu_log(VHU_LOG_INFO, "i");
	vhu_log(VHU_LOG_DEBUG, "d");
	VT_EQ(nmsg, 2); /* filtered */
	vhu_log_set_level(VHU_LOG_DEBUG);
	vhu_log(VHU_LOG_DEBUG, "d2");
	VT_EQ(nmsg, 3);
	VT_EQ(strcmp(last_msg, "d2"), 0);
	vhu_log_set_level(VHU_LOG_ERROR);
	vhu_log(VHU_LOG_WARN, "w2");
	VT_EQ(nmsg, 3);
	vhu_log_set_sink(NULL, NULL);
	vhu_log_set_level(VHU_LOG_WARN);
}

/* Re-executed child: VHU_LOG was read at first use; count what passes. */
__attribute__((constructor)) static void log_env_child(void)
{
	const char *want = getenv("VT_LOG_CHILD");

	if (!want)
		return;
	vhu_log_set_sink(sink, NULL);
	for (int l = VHU_LOG_ERROR; l <= VHU_LOG_DEBUG; l++)
		vhu_log((enum vhu_log_level)l, "x");
	_exit(nmsg == atoi(want) + 1 ? 0 : 1);
}

static int run_child(const char *env, int expect)
{
	int st;
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	pid_t p;

	/* Resolve the path first: under valgrind, exec of /proc/self/exe
	 * would start valgrind's tool binary, readlink gives the test's. */
	if (n <= 0)
		return -1;
	exe[n] = 0;
	p = fork();
	if (p == 0) {
		char e[8];
		snprintf(e, sizeof(e), "%d", expect);
		setenv("VT_LOG_CHILD", e, 1);
		if (env)
			setenv("VHU_LOG", env, 1);
		else
			unsetenv("VHU_LOG");
		execl(exe, "log-child", (char *)NULL);
		_exit(127);
	}
	if (p < 0 || waitpid(p, &st, 0) != p)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

VT_CASE(log_level_from_env)
{
	VT_EQ(run_child("debug", VHU_LOG_DEBUG), 0);
	VT_EQ(run_child("error", VHU_LOG_ERROR), 0);
	VT_EQ(run_child("INFO", VHU_LOG_INFO), 0);
	VT_EQ(run_child("bogus", VHU_LOG_WARN), 0);
	VT_EQ(run_child(NULL, VHU_LOG_WARN), 0);
	VT_CHECK(run_child("debug", VHU_LOG_WARN) != 0); /* the check can fail */
}

static void *log_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		vhu_log(VHU_LOG_ERROR, "t %d", i);
	return NULL;
}

VT_CASE(log_threads)
{
	pthread_t t[4];

	vhu_log_set_sink(sink, NULL);
	nmsg = 0;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, log_thread, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	VT_EQ(nmsg, 4000); /* the sink is called under the log lock */
	vhu_log_set_sink(NULL, NULL);
}

/* A bitmap of `bytes` bytes at offset `off` in a memfd. */
struct bm {
	int fd;
	uint8_t *p;
	size_t len;
	struct vhu_dirty *log;
};

static int bm_init(struct bm *b, uint64_t bytes, uint64_t off)
{
	b->len = bytes + off;
	b->fd = g_memfd(b->len);
	b->p = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (b->p == MAP_FAILED)
		return -1;
	b->p += off;
	return vhu_dirty_new(&b->log, b->fd, bytes, off);
}

static void bm_fini(struct bm *b, uint64_t off)
{
	vhu_dirty_free(b->log);
	munmap(b->p - off, b->len);
	close(b->fd);
}

static int bm_count(struct bm *b, uint64_t bytes)
{
	int n = 0;
	for (uint64_t i = 0; i < bytes; i++)
		n += __builtin_popcount(b->p[i]);
	return n;
}

VT_CASE(dirty_mark_bits)
{
	struct bm b;
	int maps = GUEST_MAPS();

	VT_REQUIRE(bm_init(&b, 64, 100) == 0); /* 512 pages, unaligned offset */
	vhu_dirty_mark(b.log, 0, 1);
	VT_EQ(b.p[0], 0x01);
	vhu_dirty_mark(b.log, 4095, 2); /* pages 0 and 1 */
	VT_EQ(b.p[0], 0x03);
	vhu_dirty_mark(b.log, 7 * 4096, 0); /* nothing */
	VT_EQ(b.p[0], 0x03);
	vhu_dirty_mark(b.log, 6 * 4096 + 5, 3 * 4096); /* pages 6..9 */
	VT_EQ(b.p[0], 0xc3);
	VT_EQ(b.p[1], 0x03);
	vhu_dirty_mark(b.log, 16 * 4096, 24 * 4096); /* bytes 2..4 whole */
	VT_EQ(b.p[2], 0xff);
	VT_EQ(b.p[3], 0xff);
	VT_EQ(b.p[4], 0xff);
	VT_EQ(b.p[5], 0x00);
	VT_EQ(bm_count(&b, 64), 2 + 4 + 24);
	/* clipped at the end of the bitmap */
	vhu_dirty_mark(b.log, 510 * 4096, 10 * 4096);
	VT_EQ(b.p[63], 0xc0);
	vhu_dirty_mark(b.log, 600 * 4096, 4096);     /* fully outside */
	vhu_dirty_mark(b.log, UINT64_MAX - 10, 100); /* wraps */
	VT_EQ(bm_count(&b, 64), 2 + 4 + 24 + 2);
	VT_EQ(b.p[-1], 0); /* nothing before the offset */
	bm_fini(&b, 100);
	VT_EQ(GUEST_MAPS(), maps);
}

VT_CASE(dirty_new_rejects)
{
	struct vhu_dirty *l = NULL;
	int fd = g_memfd(4096);

	VT_EQ(vhu_dirty_new(&l, -1, 4096, 0), -EINVAL);
	VT_EQ(vhu_dirty_new(&l, fd, 0, 0), -EINVAL);
	VT_EQ(vhu_dirty_new(&l, fd, 4096, UINT64_MAX - 10), -EINVAL);
	VT_CHECK(vhu_dirty_new(&l, 999, 4096, 0) < 0);
	VT_EQ(vhu_dirty_new(&l, fd, 4096, 1), -EINVAL); /* past the file end */
	vhu_dirty_mark(NULL, 0, 4096);                  /* no log: no-op */
	close(fd);
}
