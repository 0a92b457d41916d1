/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: one front-end connection's message stream, through the
 * library's framing (vhu_msg_recv on a real unix socket, with real fds
 * attached) and the protocol handler (vhu_conn_handle), on a daemon with
 * a tiny two-queue device whose worker thread pops and pushes whatever the
 * rings hold.  After the stream the connection ends (vhu_conn_end, as a
 * disconnect does) and the process must be back to its baseline of open
 * fds and memfd mappings.
 *
 * Input: records of [u8 fdspec][12-byte header][hdr.size payload bytes].
 * fdspec: low 4 bits = fds attached (more than 8 is a framing error), high
 * 4 bits = their kind (memfds of several sizes, eventfds, a socket, a
 * /dev/zero).  A header whose size exceeds what is left is sent truncated and
 * the write side shut, as a front end dying mid-message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev.h"
#include "fz.h"

/* ---- the device ---------------------------------------------------------- */

static unsigned d_num_queues(void *dev)
{
	return 2;
}

static unsigned d_max_queue_size(void *dev)
{
	return 256;
}

static uint64_t d_features(void *dev)
{
	return VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX) |
	       VHU_BIT(VHU_F_RING_INDIRECT_DESC) | VHU_BIT(VHU_F_LOG_ALL) |
	       VHU_BIT(VHU_F_NOTIFY_ON_EMPTY) | VHU_BIT(VHU_F_RING_PACKED);
}

static uint64_t d_protocol_features(void *dev)
{
	return ~0ull;
}

static uint8_t config[64];

static int d_get_config(void *dev, uint32_t offset, void *buf, uint32_t size)
{
	if (offset > sizeof(config) || size > sizeof(config) - offset)
		return -EINVAL;
	memcpy(buf, config + offset, size);
	return (int)size;
}

static int d_set_config(void *dev, uint32_t offset, const void *buf, uint32_t size)
{
	if (offset > sizeof(config) || size > sizeof(config) - offset)
		return -EINVAL;
	memcpy(config + offset, buf, size);
	return 0;
}

static int d_get_shared_object(void *dev, const uint8_t uuid[16])
{
	return uuid[0] == 1 ? memfd_create("fz-object", MFD_CLOEXEC) : -ENOENT;
}

static int d_set_gpu_socket(void *dev, int fd)
{
	close(fd);
	return 0;
}

static int d_set_device_state_fd(void *dev, enum vhu_state_direction dir,
                                 enum vhu_state_phase phase, int fd, int *reply_fd)
{
	close(fd);
	*reply_fd = dir == VHU_STATE_SAVE ? eventfd(0, EFD_CLOEXEC) : -1;
	return 0;
}

static int d_check_device_state(void *dev)
{
	return 0;
}

static int d_handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                          unsigned nvrings, unsigned thread_id)
{
	struct iovec iov[16];

	if (ev >= nvrings)
		return -EINVAL;
	for (int i = 0; i < 512; i++) {
		struct vhu_chain c = {.iov = iov, .iov_max = 16};
		int r = vhu_vring_pop(vrings[ev], &c);

		if (r == 0 || r == -EIO)
			break;
		FZ_ASSERT(fz_iov_inside(vhu_vring_mem(vrings[ev]), iov, c.out_num + c.in_num));
		FZ_ASSERT(vhu_vring_push(vrings[ev], &c, r == 1 ? (uint32_t)c.in_len : 0) == 0);
	}
	vhu_vring_notify(vrings[ev]);
	return 0;
}

static const struct vhu_backend_ops ops = {
    .num_queues = d_num_queues,
    .max_queue_size = d_max_queue_size,
    .features = d_features,
    .protocol_features = d_protocol_features,
    .get_config = d_get_config,
    .set_config = d_set_config,
    .get_shared_object = d_get_shared_object,
    .set_gpu_socket = d_set_gpu_socket,
    .handle_event = d_handle_event,
    .set_device_state_fd = d_set_device_state_fd,
    .check_device_state = d_check_device_state,
};

/* ---- fds ------------------------------------------------------------------ */

/* Pages allocated up front: after POSTCOPY_ADVISE and LISTEN a missing
 * page would fault into a userfaultfd nobody serves here (the handler
 * runs on the fuzzing thread, so no hang-up can wake it). */
static int memfd_of(size_t size)
{
	int fd = memfd_create("fz-msg-mem", MFD_CLOEXEC);

	if (fd >= 0 &&
	    (ftruncate(fd, (off_t)size) < 0 || (size && fallocate(fd, 0, 0, (off_t)size) < 0))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int make_fd(unsigned kind)
{
	int p[2], fd = -1;

	switch (kind) {
	case 0:
	case 1:
		return memfd_of(65536);
	case 2:
		return memfd_of(4096);
	case 3:
	case 8:
		return eventfd(0, EFD_CLOEXEC);
	case 4:
		return memfd_of(0);
	case 5:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p))
			return -1;
		close(p[1]); /* the channel's peer is gone at once */
		return p[0];
	case 6:
		return open("/dev/zero", O_RDWR | O_CLOEXEC); /* not a regular file */
	case 7:
		return memfd_of(1 << 20);
	default:
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		return fd;
	}
}

/* Send bytes with n fds of `kind` attached (fds closed here afterwards). */
static int send_with_fds(int sock, const void *buf, size_t len, unsigned n, unsigned kind)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int fds[16];
	ssize_t r;

	for (unsigned i = 0; i < n; i++) {
		fds[i] = make_fd(kind);
		FZ_ASSERT(fds[i] >= 0);
	}
	if (n) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	return r == (ssize_t)len ? 0 : -1;
}

/* Read and drop whatever the back end replied (closing received fds). */
static void drain(int sock)
{
	for (;;) {
		union {
			char buf[CMSG_SPACE(16 * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		char buf[8192];
		struct iovec iov = {buf, sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = ctl.buf,
		                    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			int *fds = (int *)CMSG_DATA(c);
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < k; i++)
					close(fds[i]);
		}
	}
}

/* ---- the target ------------------------------------------------------------- */

static struct vhu_daemon *d;
static struct vhu_msg *msg;
static int base_fds, base_maps;

static void setup(void)
{
	fz_quiet();
	FZ_ASSERT(vhu_daemon_new(&d, &ops, NULL, NULL) == 0);
	msg = malloc(sizeof(*msg));
	FZ_ASSERT(msg);
	base_fds = fz_count_fds();
	base_maps = fz_count_memfd_maps();
}

/* Send one record; returns false once the stream is over. */
static bool one(int s[2], const uint8_t **p, size_t *left)
{
	struct vhu_msg_hdr h;
	unsigned spec, nfds;
	size_t len;
	int err;

	if (*left < 1 + sizeof(h))
		return false;
	spec = (*p)[0];
	memcpy(&h, *p + 1, sizeof(h));
	nfds = spec & 0xf;
	len = sizeof(h) + (h.size <= VHU_MAX_PAYLOAD ? h.size : 0);
	if (len > *left - 1)
		len = *left - 1; /* truncated: the front end dies mid-message */
	FZ_ASSERT(send_with_fds(s[1], *p + 1, len, nfds, spec >> 4) == 0);
	if (len < sizeof(h) + h.size && h.size <= VHU_MAX_PAYLOAD)
		shutdown(s[1], SHUT_WR);
	*p += 1 + len;
	*left -= 1 + len;
	err = vhu_msg_recv(s[0], msg);
	if (err) {
		FZ_ASSERT(msg->nfds == 0);
		return false; /* the daemon drops the connection */
	}
	FZ_ASSERT(msg->hdr.size <= VHU_MAX_PAYLOAD && msg->nfds <= VHU_MAX_FDS);
	err = vhu_conn_handle(d, msg);
	FZ_ASSERT(msg->nfds == 0);
	drain(s[1]);
	return err == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int s[2];

	if (!d)
		setup();
	FZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) == 0);
	vhu_conn_begin(d, s[0]);
	for (unsigned n = 0; n < 64 && one(s, &data, &size); n++)
		;
	vhu_conn_end(d);
	close(s[0]);
	close(s[1]);
	FZ_ASSERT(fz_count_fds() == base_fds);
	FZ_ASSERT(fz_count_memfd_maps() == base_maps);
	return 0;
}
