/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvhu-frontend: connection, negotiation and guest memory.  The guest
 * memory is a set of memfds mapped MAP_SHARED here; each mapping's address
 * is the region's "userspace address", exactly what QEMU sends.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frontend_priv.h"

#define VHUF_DEFAULT_MEM   (64u << 20)
#define VHUF_REPLY_TIMEOUT 5000 /* ms */
#define VHUF_PAGE          4096u

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_once(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Connect, retrying while the back end is not listening yet. */
static int connect_retry(const char *path, int timeout_ms)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		int fd = connect_once(path);

		if (fd >= 0)
			return fd;
		if ((fd != -ENOENT && fd != -ECONNREFUSED) || now_ms() >= deadline)
			return fd;
		usleep(10000);
	}
}

static void mem_free(struct vhuf *f)
{
	for (unsigned i = 0; i < f->nregions; i++) {
		struct vhuf_region *r = &f->regions[i];

		if (r->map)
			munmap(r->map, r->size);
		if (r->fd >= 0)
			close(r->fd);
	}
	f->nregions = 0;
}

static int region_create(struct vhuf_region *r, uint64_t gpa, uint64_t size)
{
	r->gpa = gpa;
	r->size = size;
	r->map = NULL;
	r->fd = memfd_create("vhuf-guest", MFD_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	if (ftruncate(r->fd, (off_t)size) < 0)
		return -errno;
	r->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		return -errno;
	}
	return 0;
}

/* Split mem_size into nregions page-aligned regions, gpa_gap apart. */
static int mem_create(struct vhuf *f)
{
	const struct vhuf_opts *o = &f->opts;
	uint64_t each = (o->mem_size / o->nregions + VHUF_PAGE - 1) & ~(uint64_t)(VHUF_PAGE - 1);
	uint64_t gpa = o->gpa_base;

	for (unsigned i = 0; i < o->nregions; i++) {
		int ret;

		f->nregions = i + 1;
		ret = region_create(&f->regions[i], gpa, each);
		if (ret < 0)
			return ret;
		if (__builtin_add_overflow(gpa, each, &gpa) ||
		    __builtin_add_overflow(gpa, o->gpa_gap, &gpa))
			return -EOVERFLOW;
	}
	return 0;
}

/* A front end with guest memory and no socket yet. */
static int vhuf_new(struct vhuf **out, const struct vhuf_opts *opts)
{
	struct vhuf *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	if (opts)
		f->opts = *opts;
	if (!f->opts.mem_size)
		f->opts.mem_size = VHUF_DEFAULT_MEM;
	if (!f->opts.nregions)
		f->opts.nregions = 1;
	for (unsigned q = 0; q < VHUF_MAX_QUEUES; q++) {
		struct vhuf_queue *vq = &f->queues[q];

		vq->kick_fd = vq->call_fd = vq->err_fd = -1;
	}
	f->sock = -1;
	pthread_mutex_init(&f->bump_lock, NULL);
	if (f->opts.nregions > VHUF_MAX_REGIONS || f->opts.mem_size < f->opts.nregions) {
		free(f);
		return -EINVAL;
	}
	ret = mem_create(f);
	if (ret < 0) {
		vhuf_close(f);
		return ret;
	}
	*out = f;
	return 0;
}

int vhuf_connect(struct vhuf **out, const char *path, const struct vhuf_opts *opts)
{
	struct vhuf *f;
	int ret = vhuf_new(&f, opts);

	if (ret < 0)
		return ret;
	f->sock = connect_retry(path, f->opts.connect_timeout_ms);
	if (f->sock < 0) {
		ret = f->sock;
		vhuf_close(f);
		return ret;
	}
	*out = f;
	return 0;
}

int vhuf_reconnect(struct vhuf *f, const char *path)
{
	if (f->sock >= 0)
		close(f->sock);
	f->negotiated = f->owner = false;
	f->features = f->protocol_features = 0;
	f->sock = connect_retry(path, f->opts.connect_timeout_ms);
	return f->sock < 0 ? f->sock : 0;
}

int vhuf_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int accept_wait(int lfd, int timeout_ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int n, fd;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int vhuf_accept(struct vhuf **out, int lfd, int timeout_ms, const struct vhuf_opts *opts)
{
	struct vhuf *f;
	int ret = vhuf_new(&f, opts);

	if (ret < 0)
		return ret;
	f->sock = accept_wait(lfd, timeout_ms);
	if (f->sock < 0) {
		ret = f->sock;
		vhuf_close(f);
		return ret;
	}
	*out = f;
	return 0;
}

int vhuf_reaccept(struct vhuf *f, int lfd, int timeout_ms)
{
	if (f->sock >= 0)
		close(f->sock);
	f->negotiated = f->owner = false;
	f->features = f->protocol_features = 0;
	f->sock = accept_wait(lfd, timeout_ms);
	return f->sock < 0 ? f->sock : 0;
}

void vhuf_close(struct vhuf *f)
{
	if (!f)
		return;
	for (unsigned q = 0; q < VHUF_MAX_QUEUES; q++)
		vhuf_queue_free(&f->queues[q]);
	vhuf_mig_free(f);
	if (f->sock >= 0)
		close(f->sock);
	mem_free(f);
	pthread_mutex_destroy(&f->bump_lock);
	free(f);
}

int vhuf_sock(const struct vhuf *f)
{
	return f->sock;
}

bool vhuf_acking(const struct vhuf *f)
{
	return f->protocol_features & VHU_BIT(VHU_PF_REPLY_ACK);
}

/* ---- raw protocol ---------------------------------------------------- */

/* Requests the spec answers with a reply of their own. */
static bool has_reply(const struct vhuf *f, uint32_t req, uint32_t size)
{
	switch (req) {
	case VHU_REQ_GET_FEATURES:
	case VHU_REQ_GET_PROTOCOL_FEATURES:
	case VHU_REQ_GET_VRING_BASE:
	case VHU_REQ_GET_QUEUE_NUM:
	case VHU_REQ_GET_CONFIG:
	case VHU_REQ_GET_INFLIGHT_FD:
	case VHU_REQ_GET_MAX_MEM_SLOTS:
	case VHU_REQ_GET_STATUS:
	case VHU_REQ_GET_SHARED_OBJECT:
	case VHU_REQ_SET_DEVICE_STATE_FD:
	case VHU_REQ_CHECK_DEVICE_STATE:
	case VHU_REQ_IOTLB_MSG:
	case VHU_REQ_CREATE_CRYPTO_SESSION:
	case VHU_REQ_POSTCOPY_ADVISE:
	case VHU_REQ_POSTCOPY_END:
		return true;
	case VHU_REQ_SET_LOG_BASE: /* QEMU waits for it with LOG_SHMFD */
		return f->protocol_features & VHU_BIT(VHU_PF_LOG_SHMFD);
	case VHU_REQ_SET_MEM_TABLE: /* postcopy: the back end's addresses */
	case VHU_REQ_ADD_MEM_REGION:
		/* ... but not to the u64 ack that follows them */
		return f->postcopy && size != sizeof(uint64_t);
	default:
		return false;
	}
}

static int recv_reply(struct vhuf *f, uint32_t req, struct vhu_msg *reply)
{
	struct pollfd p = {.fd = f->sock, .events = POLLIN};
	int ret;

	do
		ret = poll(&p, 1, VHUF_REPLY_TIMEOUT);
	while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return -ETIMEDOUT;
	ret = vhu_msg_recv(f->sock, reply);
	if (ret < 0)
		return ret;
	if (reply->hdr.request != req || !(reply->hdr.flags & VHU_HDR_REPLY)) {
		vhu_msg_close_fds(reply);
		return -EPROTO;
	}
	return 0;
}

/* Keep what raw requests changed, so later requests (acks, SET_LOG_BASE
 * replies, EVENT_IDX use) follow the connection's real state. */
static void track(struct vhuf *f, uint32_t req, const void *payload, uint32_t size)
{
	uint64_t v = 0;

	if (size == sizeof(v))
		memcpy(&v, payload, sizeof(v));
	if (req == VHU_REQ_RESET_OWNER)
		f->owner = false;
	else if (req == VHU_REQ_SET_OWNER)
		f->owner = true;
	else if (req == VHU_REQ_SET_FEATURES && size == sizeof(v))
		f->features = v;
	else if (req == VHU_REQ_SET_PROTOCOL_FEATURES && size == sizeof(v))
		f->protocol_features = v;
	else if (req == VHU_REQ_POSTCOPY_LISTEN)
		f->postcopy = true;
	else if (req == VHU_REQ_POSTCOPY_END)
		f->postcopy = false;
}

int vhuf_request(struct vhuf *f, uint32_t req, const void *payload, uint32_t size, const int *fds,
                 unsigned nfds, bool need_reply, struct vhu_msg *reply)
{
	struct vhu_msg *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	if (size > VHU_MAX_PAYLOAD || nfds > VHU_MAX_FDS) {
		free(m);
		return -EINVAL;
	}
	m->hdr.request = req;
	m->hdr.flags = VHU_HDR_VERSION | (need_reply ? VHU_HDR_NEED_REPLY : 0);
	m->hdr.size = size;
	if (size)
		memcpy(m->payload.raw, payload, size);
	for (unsigned i = 0; i < nfds; i++)
		m->fds[i] = fds[i];
	m->nfds = nfds;
	ret = vhu_msg_send(f->sock, m);
	if (ret == -EPIPE)
		ret = -ECONNRESET;
	if (ret == 0)
		track(f, req, payload, size);
	if (ret == 0 && (has_reply(f, req, size) || need_reply)) {
		ret = recv_reply(f, req, m);
		if (ret == 0 && !has_reply(f, req, size)) {
			/* REPLY_ACK: u64 0 = success. */
			if (m->hdr.size != sizeof(uint64_t))
				ret = -EPROTO;
			else if (m->payload.u64)
				ret = -(int)(m->payload.u64 > 4095 ? EIO : m->payload.u64);
		}
		if (ret == 0 && reply)
			*reply = *m;
		else
			vhu_msg_close_fds(m);
	}
	free(m);
	return ret;
}

int vhuf_get_u64(struct vhuf *f, uint32_t req, uint64_t *val)
{
	struct vhu_msg *r = malloc(sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	ret = vhuf_request(f, req, NULL, 0, NULL, 0, false, r);
	if (ret == 0) {
		if (r->hdr.size == 0)
			ret = -EIO; /* refused */
		else if (r->hdr.size != sizeof(uint64_t))
			ret = -EPROTO;
		else
			*val = r->payload.u64;
		vhu_msg_close_fds(r);
	}
	free(r);
	return ret;
}

int vhuf_set_u64(struct vhuf *f, uint32_t req, uint64_t val)
{
	return vhuf_request(f, req, &val, sizeof(val), NULL, 0, vhuf_acking(f), NULL);
}

/* Postcopy (QEMU's vhost_user_set_mem_table_postcopy): the reply carries
 * the back end's mapping of each region; then an ack (u64 0) tells it
 * faults will be served. */
static int postcopy_mem_table(struct vhuf *f, const struct vhu_mem_table_msg *t, uint32_t size,
                              const int *fds)
{
	struct vhu_msg *r = calloc(1, sizeof(*r));
	uint64_t ok = 0;
	int ret;

	if (!r)
		return -ENOMEM;
	ret = vhuf_request(f, VHU_REQ_SET_MEM_TABLE, t, size, fds, f->nregions, false, r);
	if (ret == 0 && r->hdr.size != size)
		ret = -EPROTO;
	for (unsigned i = 0; ret == 0 && i < f->nregions; i++) {
		if (r->payload.memory.regions[i].guest_phys_addr != t->regions[i].guest_phys_addr)
			ret = -EPROTO;
		f->backend_addr[i] = r->payload.memory.regions[i].userspace_addr;
	}
	if (ret == 0)
		vhu_msg_close_fds(r);
	free(r);
	if (ret == 0)
		ret = vhuf_request(f, VHU_REQ_SET_MEM_TABLE, &ok, sizeof(ok), NULL, 0, false, NULL);
	return ret;
}

int vhuf_send_mem_table(struct vhuf *f)
{
	struct vhu_mem_table_msg t = {.nregions = f->nregions};
	uint32_t size = 8 + f->nregions * sizeof(struct vhu_mem_region_desc);
	int fds[VHUF_MAX_REGIONS];

	for (unsigned i = 0; i < f->nregions; i++)
		vhuf_region(f, i, &t.regions[i], &fds[i]);
	if (f->postcopy)
		return postcopy_mem_table(f, &t, size, fds);
	return vhuf_request(f, VHU_REQ_SET_MEM_TABLE, &t, size, fds, f->nregions, vhuf_acking(f),
	                    NULL);
}

int vhuf_backend_addr(const struct vhuf *f, unsigned i, uint64_t *addr)
{
	if (i >= f->nregions || !f->backend_addr[i])
		return -ENOENT;
	*addr = f->backend_addr[i];
	return 0;
}

/* QEMU's order: features, protocol features, owner, acked features, memory. */
int vhuf_negotiate(struct vhuf *f, uint64_t features, uint64_t protocol_features)
{
	uint64_t offered, pf = 0;
	int ret;

	f->protocol_features = 0;
	ret = vhuf_get_u64(f, VHU_REQ_GET_FEATURES, &offered);
	if (ret < 0)
		return ret;
	if (offered & VHU_BIT(VHU_F_PROTOCOL_FEATURES)) {
		ret = vhuf_get_u64(f, VHU_REQ_GET_PROTOCOL_FEATURES, &pf);
		if (ret < 0)
			return ret;
		pf &= protocol_features;
		ret = vhuf_set_u64(f, VHU_REQ_SET_PROTOCOL_FEATURES, pf);
		if (ret < 0)
			return ret;
	}
	/* Ownership survives RESET_DEVICE; a second SET_OWNER may be refused. */
	if (!f->owner) {
		ret = vhuf_request(f, VHU_REQ_SET_OWNER, NULL, 0, NULL, 0, vhuf_acking(f), NULL);
		if (ret < 0)
			return ret;
	}
	ret = vhuf_set_u64(f, VHU_REQ_SET_FEATURES,
	                   (features & offered) | (offered & VHU_BIT(VHU_F_PROTOCOL_FEATURES)));
	if (ret < 0)
		return ret;
	ret = vhuf_send_mem_table(f);
	if (ret == 0)
		f->negotiated = true;
	return ret;
}

uint64_t vhuf_features(const struct vhuf *f)
{
	return f->features;
}

uint64_t vhuf_protocol_features(const struct vhuf *f)
{
	return f->protocol_features;
}

int vhuf_get_config(struct vhuf *f, uint32_t offset, void *buf, uint32_t size)
{
	struct vhu_msg *r;
	struct vhu_config_msg c = {.offset = offset, .size = size};
	int ret;

	if (size > VHU_MAX_CONFIG_SIZE)
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret =
	    vhuf_request(f, VHU_REQ_GET_CONFIG, &c, VHU_CONFIG_HDR_SIZE + size, NULL, 0, false, r);
	if (ret == 0) {
		/* A back end that refuses answers with an empty payload. */
		if (r->hdr.size != VHU_CONFIG_HDR_SIZE + size || r->payload.config.size != size)
			ret = -EIO;
		else
			memcpy(buf, r->payload.config.region, size);
		vhu_msg_close_fds(r);
	}
	free(r);
	return ret;
}

/* ---- guest memory ---------------------------------------------------- */

static uint64_t bump(struct vhuf *f, size_t size, size_t align)
{
	while (f->bump_region < f->nregions) {
		struct vhuf_region *r = &f->regions[f->bump_region];
		uint64_t off = (f->bump_off + align - 1) & ~(uint64_t)(align - 1);

		if (off <= r->size && size <= r->size - off) {
			f->bump_off = off + size;
			memset((uint8_t *)r->map + off, 0, size);
			vhuf_drv_write(f, r->gpa + off, size);
			return r->gpa + off;
		}
		/* Does not fit: objects never straddle regions. */
		f->bump_region++;
		f->bump_off = 0;
	}
	return UINT64_MAX;
}

uint64_t vhuf_alloc(struct vhuf *f, size_t size, size_t align)
{
	uint64_t gpa;

	if (!align)
		align = 1;
	if (align & (align - 1))
		return UINT64_MAX;
	pthread_mutex_lock(&f->bump_lock);
	gpa = bump(f, size, align);
	pthread_mutex_unlock(&f->bump_lock);
	return gpa;
}

static const struct vhuf_region *find_region(const struct vhuf *f, uint64_t gpa)
{
	for (unsigned i = 0; i < f->nregions; i++) {
		const struct vhuf_region *r = &f->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *vhuf_ptr(struct vhuf *f, uint64_t gpa)
{
	const struct vhuf_region *r = find_region(f, gpa);

	return r ? (uint8_t *)r->map + (gpa - r->gpa) : NULL;
}

uint64_t vhuf_uva(struct vhuf *f, uint64_t gpa)
{
	const struct vhuf_region *r = find_region(f, gpa);

	return r ? (uint64_t)(uintptr_t)r->map + (gpa - r->gpa) : UINT64_MAX;
}

int vhuf_region(const struct vhuf *f, unsigned i, struct vhu_mem_region_desc *d, int *fd)
{
	const struct vhuf_region *r;

	if (i >= f->nregions)
		return -EINVAL;
	r = &f->regions[i];
	if (d) {
		d->guest_phys_addr = r->gpa;
		d->memory_size = r->size;
		d->userspace_addr = (uint64_t)(uintptr_t)r->map;
		d->mmap_offset = 0;
	}
	if (fd)
		*fd = r->fd;
	return 0;
}

unsigned vhuf_nregions(const struct vhuf *f)
{
	return f->nregions;
}
