/* SPDX-License-Identifier: Apache-2.0 */
#include "blkt.h"
#include "vt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHAIN_COOKIE ((void *)(uintptr_t)0xc4a1)

int blkt_dir_make(struct blkt_dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/vhu-blkt-XXXXXX");
	if (!mkdtemp(d->path))
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/sock", d->path);
	snprintf(d->img, sizeof(d->img), "%s/disk.img", d->path);
	snprintf(d->out, sizeof(d->out), "%s/stdout", d->path);
	snprintf(d->err, sizeof(d->err), "%s/stderr", d->path);
	return 0;
}

void blkt_dir_remove(struct blkt_dir *d)
{
	char cmd[128];
	if (!d->path[0] || strncmp(d->path, "/tmp/vhu-blkt-", 14))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", d->path);
	d->path[0] = 0;
}

const char *blkt_binary(void)
{
	static char path[4096];
	const char *root = getenv("VHU_BUILD_ROOT");
	snprintf(path, sizeof(path), "%s/devices/blk/vhu-blk", root ? root : ".");
	return path;
}

int blkt_image_create(const char *path, uint64_t size, bool fill)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (ftruncate(fd, (off_t)size) < 0)
		rc = -errno;
	static uint8_t buf[1 << 16];
	for (uint64_t off = 0; fill && !rc && off < size; off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = blkt_pattern(off + i, 0);
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
			rc = -EIO;
	}
	close(fd);
	return rc;
}

pid_t blkt_spawn(const struct blkt_dir *d, const char *const *args, int keep_fd)
{
	const char *argv[64];
	unsigned n = 0;
	argv[n++] = blkt_binary();
	for (unsigned i = 0; args && args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return vt_spawn(argv, d->out, d->err, keep_fd);
}

int blkt_wait_exit(pid_t pid, int timeout_ms)
{
	return vt_wait_exit(pid, timeout_ms);
}

unsigned blkt_count_threads(pid_t pid, const char *prefix)
{
	char path[300], comm[32];
	struct dirent *e;
	unsigned n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(dir = opendir(path)))
		return 0;
	while ((e = readdir(dir))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, prefix, strlen(prefix)))
			n++;
		fclose(f);
	}
	closedir(dir);
	return n;
}

int blkt_run(const struct blkt_dir *d, const char *const *args)
{
	pid_t pid = blkt_spawn(d, args, -1);
	if (pid < 0)
		return -1;
	return blkt_wait_exit(pid, BLKT_TIMEOUT_MS);
}

const char *blkt_slurp(const char *path)
{
	return vt_slurp(path);
}

bool blkt_wait_socket(const char *path, int timeout_ms)
{
	struct stat st;
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return true;
		vt_sleep_ms(10);
	}
	return false;
}

/* ---- driver side ------------------------------------------------------ */

static int alloc_slots(struct blkt *t)
{
	for (unsigned q = 0; q < t->nq; q++) {
		t->slots[q] = calloc(t->nslots, sizeof(struct blkt_slot));
		if (!t->slots[q])
			return -ENOMEM;
		for (unsigned s = 0; s < t->nslots; s++) {
			struct blkt_slot *sl = &t->slots[q][s];
			sl->hdr_gpa = vhuf_alloc(t->f, sizeof(struct virtio_blk_outhdr), 16);
			sl->st_gpa = vhuf_alloc(t->f, 1, 1);
			sl->data_gpa = vhuf_alloc(t->f, t->data_cap, 4096);
			if (sl->hdr_gpa == UINT64_MAX || sl->st_gpa == UINT64_MAX ||
			    sl->data_gpa == UINT64_MAX)
				return -ENOMEM;
			sl->hdr = vhuf_ptr(t->f, sl->hdr_gpa);
			sl->st = vhuf_ptr(t->f, sl->st_gpa);
			sl->data = vhuf_ptr(t->f, sl->data_gpa);
		}
	}
	return 0;
}

int blkt_open_noqueues(struct blkt *t, const char *sock, unsigned nq, unsigned qsize,
                       unsigned nslots, uint32_t data_cap, uint64_t pf)
{
	memset(t, 0, sizeof(*t));
	if (nq > BLKT_MAXQ)
		return -EINVAL;
	t->nq = nq;
	t->qsize = qsize;
	t->nslots = nslots;
	t->data_cap = data_cap;
	uint64_t need = (uint64_t)nq * nslots * (data_cap + 8192) + (8u << 20);
	struct vhuf_opts o = {
	    .mem_size =
	        need < (64u << 20) ? (64u << 20) : ((need + (1u << 21) - 1) & ~((1ull << 21) - 1)),
	    .connect_timeout_ms = BLKT_TIMEOUT_MS,
	};
	int rc = vhuf_connect(&t->f, sock, &o);
	if (rc < 0)
		return rc;
	rc = vhuf_negotiate(t->f, ~(1ULL << VHU_F_LOG_ALL), pf);
	if (rc < 0)
		return rc;
	return alloc_slots(t);
}

int blkt_setup_queues(struct blkt *t)
{
	for (unsigned q = 0; q < t->nq; q++) {
		int rc = vhuf_queue_setup(t->f, q, t->qsize);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int blkt_open(struct blkt *t, const char *sock, unsigned nq, unsigned qsize, unsigned nslots,
              uint32_t data_cap, uint64_t pf)
{
	int rc = blkt_open_noqueues(t, sock, nq, qsize, nslots, data_cap, pf);
	return rc < 0 ? rc : blkt_setup_queues(t);
}

void blkt_close(struct blkt *t)
{
	for (unsigned q = 0; q < BLKT_MAXQ; q++) {
		free(t->slots[q]);
		t->slots[q] = NULL;
	}
	vhuf_close(t->f);
	t->f = NULL;
}

int blkt_publish(struct blkt *t, unsigned q, unsigned s, uint32_t type, uint64_t sector,
                 uint32_t data_len)
{
	struct blkt_slot *sl = &t->slots[q][s];
	struct vhuf_buf b[3];
	unsigned n = 0;
	if (data_len > t->data_cap)
		return -EINVAL;
	sl->hdr->type = type;
	sl->hdr->ioprio = 0;
	sl->hdr->sector = sector;
	*sl->st = 0xee;
	b[n++] = (struct vhuf_buf){sl->hdr_gpa, sizeof(*sl->hdr), false};
	if (data_len)
		b[n++] = (struct vhuf_buf){sl->data_gpa, data_len,
		                           type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID};
	b[n++] = (struct vhuf_buf){sl->st_gpa, 1, true};
	int head = vhuf_submit(t->f, q, b, n, false, sl);
	if (head >= 0)
		sl->busy = true;
	return head;
}

int blkt_submit(struct blkt *t, unsigned q, unsigned s, uint32_t type, uint64_t sector,
                uint32_t data_len)
{
	int head = blkt_publish(t, q, s, type, sector, data_len);
	if (head >= 0)
		vhuf_kick(t->f, q);
	return head;
}

/* One used entry: its cookie, or NULL on timeout. */
static void *wait_used(struct blkt *t, unsigned q, uint32_t *len)
{
	void *cookie;
	for (int waited = 0; waited < BLKT_TIMEOUT_MS; waited += 100) {
		if (vhuf_get_used(t->f, q, &cookie, len) == 1)
			return cookie;
		vhuf_wait_call(t->f, q, 100);
	}
	return vhuf_get_used(t->f, q, &cookie, len) == 1 ? cookie : NULL;
}

int blkt_wait_one(struct blkt *t, unsigned q)
{
	uint32_t len;
	struct blkt_slot *sl = wait_used(t, q, &len);
	if (!sl || sl == CHAIN_COOKIE)
		return -ETIMEDOUT;
	sl->busy = false;
	sl->used_len = len;
	return (int)(sl - t->slots[q]);
}

int blkt_io(struct blkt *t, unsigned q, uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	struct blkt_slot *sl = &t->slots[q][0];
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	if (!in && buf)
		memcpy(sl->data, buf, len);
	int rc = blkt_submit(t, q, 0, type, sector, len);
	if (rc < 0)
		return rc;
	rc = blkt_wait_one(t, q);
	if (rc < 0)
		return rc;
	if (in && buf)
		memcpy(buf, sl->data, len);
	return *sl->st;
}

int blkt_chain(struct blkt *t, unsigned q, const struct vhuf_buf *bufs, unsigned n, bool indirect)
{
	uint32_t len;
	int rc = vhuf_submit(t->f, q, bufs, n, indirect, CHAIN_COOKIE);
	if (rc < 0)
		return rc;
	vhuf_kick(t->f, q);
	void *c = wait_used(t, q, &len);
	if (c != CHAIN_COOKIE)
		return -ETIMEDOUT;
	return (int)len;
}

int blkt_config(struct blkt *t, struct virtio_blk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	return vhuf_get_config(t->f, 0, cfg, 60);
}

int blkt_file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, buf, len, (off_t)off);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}
