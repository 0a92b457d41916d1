/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost-user message framing: a 12-byte header, hdr.size payload bytes and
 * up to VHU_MAX_FDS fds carried as SCM_RIGHTS with the header.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev.h"

static const char *const req_names[VHU_REQ_MAX] = {
    [VHU_REQ_NONE] = "NONE",
    [VHU_REQ_GET_FEATURES] = "GET_FEATURES",
    [VHU_REQ_SET_FEATURES] = "SET_FEATURES",
    [VHU_REQ_SET_OWNER] = "SET_OWNER",
    [VHU_REQ_RESET_OWNER] = "RESET_OWNER",
    [VHU_REQ_SET_MEM_TABLE] = "SET_MEM_TABLE",
    [VHU_REQ_SET_LOG_BASE] = "SET_LOG_BASE",
    [VHU_REQ_SET_LOG_FD] = "SET_LOG_FD",
    [VHU_REQ_SET_VRING_NUM] = "SET_VRING_NUM",
    [VHU_REQ_SET_VRING_ADDR] = "SET_VRING_ADDR",
    [VHU_REQ_SET_VRING_BASE] = "SET_VRING_BASE",
    [VHU_REQ_GET_VRING_BASE] = "GET_VRING_BASE",
    [VHU_REQ_SET_VRING_KICK] = "SET_VRING_KICK",
    [VHU_REQ_SET_VRING_CALL] = "SET_VRING_CALL",
    [VHU_REQ_SET_VRING_ERR] = "SET_VRING_ERR",
    [VHU_REQ_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
    [VHU_REQ_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
    [VHU_REQ_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
    [VHU_REQ_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
    [VHU_REQ_SEND_RARP] = "SEND_RARP",
    [VHU_REQ_NET_SET_MTU] = "NET_SET_MTU",
    [VHU_REQ_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
    [VHU_REQ_IOTLB_MSG] = "IOTLB_MSG",
    [VHU_REQ_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
    [VHU_REQ_GET_CONFIG] = "GET_CONFIG",
    [VHU_REQ_SET_CONFIG] = "SET_CONFIG",
    [VHU_REQ_CREATE_CRYPTO_SESSION] = "CREATE_CRYPTO_SESSION",
    [VHU_REQ_CLOSE_CRYPTO_SESSION] = "CLOSE_CRYPTO_SESSION",
    [VHU_REQ_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
    [VHU_REQ_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
    [VHU_REQ_POSTCOPY_END] = "POSTCOPY_END",
    [VHU_REQ_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
    [VHU_REQ_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
    [VHU_REQ_GPU_SET_SOCKET] = "GPU_SET_SOCKET",
    [VHU_REQ_RESET_DEVICE] = "RESET_DEVICE",
    [VHU_REQ_VRING_KICK] = "VRING_KICK",
    [VHU_REQ_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
    [VHU_REQ_ADD_MEM_REGION] = "ADD_MEM_REGION",
    [VHU_REQ_REM_MEM_REGION] = "REM_MEM_REGION",
    [VHU_REQ_SET_STATUS] = "SET_STATUS",
    [VHU_REQ_GET_STATUS] = "GET_STATUS",
    [VHU_REQ_GET_SHARED_OBJECT] = "GET_SHARED_OBJECT",
    [VHU_REQ_SET_DEVICE_STATE_FD] = "SET_DEVICE_STATE_FD",
    [VHU_REQ_CHECK_DEVICE_STATE] = "CHECK_DEVICE_STATE",
};

const char *vhu_request_name(uint32_t request)
{
	if (request >= VHU_REQ_MAX || !req_names[request])
		return "UNKNOWN";
	return req_names[request];
}

void vhu_msg_close_fds(struct vhu_msg *msg)
{
	for (unsigned i = 0; i < msg->nfds && i < VHU_MAX_FDS; i++)
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	msg->nfds = 0;
}

/* Wait until sock has events (POLLIN or POLLOUT) or stop_fd fired
 * (-ECANCELED). */
static int wait_ready(int sock, short events, int stop_fd)
{
	struct pollfd p[2] = {{.fd = sock, .events = events}, {.fd = stop_fd, .events = POLLIN}};

	for (;;) {
		int n = poll(p, stop_fd >= 0 ? 2 : 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (stop_fd >= 0 && (p[1].revents & POLLIN))
			return -ECANCELED;
		return 0;
	}
}

/* Move SCM_RIGHTS fds of one recvmsg into msg; -EPROTO on any anomaly
 * (the caller then closes everything received so far). */
static int take_fds(struct msghdr *mh, struct vhu_msg *msg)
{
	int err = (mh->msg_flags & MSG_CTRUNC) ? -EPROTO : 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;
		int fds[VHU_MAX_FDS];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			err = -EPROTO;
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > VHU_MAX_FDS)
			n = VHU_MAX_FDS; /* cannot happen: buffer holds VHU_MAX_FDS */
		memcpy(fds, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (msg->nfds < VHU_MAX_FDS)
				msg->fds[msg->nfds++] = fds[i];
			else {
				close(fds[i]);
				err = -EPROTO;
			}
		}
	}
	return err;
}

/* Read exactly len bytes into buf, collecting fds.  -ECONNRESET on EOF. */
static int read_full(int sock, void *buf, size_t len, struct vhu_msg *msg, int stop_fd)
{
	size_t got = 0;

	while (got < len) {
		union {
			char buf[CMSG_SPACE(VHU_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = (char *)buf + got, .iov_len = len - got};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = ctl.buf,
		                    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n;
		int err;

		if (stop_fd >= 0 && (err = wait_ready(sock, POLLIN, stop_fd)) < 0)
			return err;
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		err = take_fds(&mh, msg);
		if (err)
			return err;
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

int vhu_msg_recv_stop(int sock, struct vhu_msg *msg, int stop_fd)
{
	int err;

	msg->nfds = 0;
	memset(&msg->hdr, 0, sizeof(msg->hdr));
	err = read_full(sock, &msg->hdr, sizeof(msg->hdr), msg, stop_fd);
	if (err)
		goto fail;
	if ((msg->hdr.flags & VHU_HDR_VERSION_MASK) != VHU_HDR_VERSION) {
		err = -EPROTO;
		goto fail;
	}
	if (msg->hdr.size > VHU_MAX_PAYLOAD) {
		err = -EMSGSIZE;
		goto fail;
	}
	err = read_full(sock, &msg->payload, msg->hdr.size, msg, stop_fd);
	if (err)
		goto fail;
	return 0;
fail:
	vhu_msg_close_fds(msg);
	return err;
}

int vhu_msg_recv(int sock, struct vhu_msg *msg)
{
	return vhu_msg_recv_stop(sock, msg, -1);
}

int vhu_msg_send(int sock, const struct vhu_msg *msg)
{
	return vhu_msg_send_stop(sock, msg, -1);
}

int vhu_msg_send_stop(int sock, const struct vhu_msg *msg, int stop_fd)
{
	union {
		char buf[CMSG_SPACE(VHU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
	    {.iov_base = (void *)&msg->hdr, .iov_len = sizeof(msg->hdr)},
	    {.iov_base = (void *)&msg->payload, .iov_len = msg->hdr.size},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	size_t total = sizeof(msg->hdr) + msg->hdr.size;

	if (msg->nfds > VHU_MAX_FDS || msg->hdr.size > VHU_MAX_PAYLOAD)
		return -EINVAL;
	if (msg->nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(msg->nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(msg->nfds * sizeof(int));
		memcpy(CMSG_DATA(c), msg->fds, msg->nfds * sizeof(int));
	}
	while (total) {
		/* With a stop fd, never block inside sendmsg: a front end that
		 * does not read its replies must not keep stop() waiting. */
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | (stop_fd >= 0 ? MSG_DONTWAIT : 0));

		if (n < 0) {
			int err = errno;

			if (err == EINTR)
				continue;
			if (stop_fd >= 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
				err = -wait_ready(sock, POLLOUT, stop_fd);
				if (err)
					return -err;
				continue;
			}
			return -err;
		}
		total -= (size_t)n;
		/* Short write: the fds went with the first byte; send the rest. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			size_t k =
			    (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;

			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + k;
			mh.msg_iov->iov_len -= k;
			n -= (ssize_t)k;
			if (!mh.msg_iov->iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}
