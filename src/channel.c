/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Back-end -> front-end channel (SET_BACKEND_REQ_FD).  One mutex serialises
 * a request and its reply, so devices may call in from any thread.  A
 * reply that does not arrive within VHU_CHANNEL_TIMEOUT_MS, or a
 * malformed one, marks the channel dead (the stream is out of sync).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dev.h"

#define VHU_CHANNEL_TIMEOUT_MS 10000

struct vhu_channel {
	int fd;
	bool reply_ack;
	bool dead;
	pthread_mutex_t lock;
};

/* A front end that stops mid-reply or never reads must not hold the
 * calling device thread: socket timeouts make recvmsg/sendmsg give up. */
static void set_timeouts(int fd)
{
	struct timeval tv = {VHU_CHANNEL_TIMEOUT_MS / 1000, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

struct vhu_channel *vhu_channel_new(int fd, bool reply_ack)
{
	struct vhu_channel *ch = calloc(1, sizeof(*ch));

	if (!ch || pthread_mutex_init(&ch->lock, NULL)) {
		free(ch);
		close(fd);
		return NULL;
	}
	ch->fd = fd;
	ch->reply_ack = reply_ack;
	set_timeouts(fd);
	return ch;
}

void vhu_channel_free(struct vhu_channel *ch)
{
	if (!ch)
		return;
	close(ch->fd);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}

/* Wait for the reply to `request`; returns the u64 or -errno. fd_out (may
 * be NULL) receives one fd if the reply carries one. */
static int64_t read_reply(struct vhu_channel *ch, uint32_t request, int *fd_out)
{
	struct pollfd p = {.fd = ch->fd, .events = POLLIN};
	struct vhu_msg msg, *m = &msg; /* on the stack: callers are any thread */
	int64_t ret;
	int n;

	do
		n = poll(&p, 1, VHU_CHANNEL_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? -ETIMEDOUT : -errno;
	ret = vhu_msg_recv(ch->fd, m);
	if (ret == 0) {
		if (m->hdr.request != request || !(m->hdr.flags & VHU_HDR_REPLY) ||
		    m->hdr.size != sizeof(uint64_t) || m->nfds > 1 || (m->nfds && !fd_out)) {
			vhu_msg_close_fds(m);
			ret = -EPROTO;
		} else {
			ret = (int64_t)(m->payload.u64 & INT64_MAX);
			if (fd_out && m->nfds)
				*fd_out = m->fds[0];
		}
	}
	return ret;
}

static int request_locked(struct vhu_channel *ch, uint32_t request, const void *payload,
                          uint32_t size, const int *fds, unsigned nfds, bool want_fd, int *fd_out)
{
	struct vhu_msg msg, *m = &msg;
	bool need_reply = ch->reply_ack || want_fd;
	int64_t r;
	int err;

	if (ch->dead)
		return -ENOTCONN;
	if (size > VHU_MAX_PAYLOAD || nfds > VHU_MAX_FDS || (size && !payload) || (nfds && !fds))
		return -EINVAL;
	m->hdr.request = request;
	m->hdr.flags = VHU_HDR_VERSION | (need_reply ? VHU_HDR_NEED_REPLY : 0);
	m->hdr.size = size;
	if (size)
		memcpy(m->payload.raw, payload, size);
	m->nfds = nfds;
	if (nfds)
		memcpy(m->fds, fds, nfds * sizeof(int));
	err = vhu_msg_send(ch->fd, m);
	if (err) {
		ch->dead = true;
		return err == -EPIPE || err == -ECONNRESET ? -ENOTCONN : err;
	}
	if (!need_reply)
		return 0;
	r = read_reply(ch, request, fd_out);
	if (r < 0) {
		ch->dead = true;
		return r == -ECONNRESET ? -ENOTCONN : (int)r;
	}
	if (r == 0)
		return 0;
	if (fd_out && *fd_out >= 0) {
		close(*fd_out);
		*fd_out = -1;
	}
	return r > 4095 ? -EIO : -(int)r;
}

int vhu_channel_request(struct vhu_channel *ch, uint32_t request, const void *payload,
                        uint32_t size, const int *fds, unsigned nfds)
{
	int err;

	if (!ch)
		return -ENOTCONN;
	pthread_mutex_lock(&ch->lock);
	err = request_locked(ch, request, payload, size, fds, nfds, false, NULL);
	pthread_mutex_unlock(&ch->lock);
	return err;
}

int vhu_channel_config_changed(struct vhu_channel *ch)
{
	return vhu_channel_request(ch, VHU_BREQ_CONFIG_CHANGE_MSG, NULL, 0, NULL, 0);
}

int vhu_channel_shared_object_add(struct vhu_channel *ch, const uint8_t uuid[16])
{
	return vhu_channel_request(ch, VHU_BREQ_SHARED_OBJECT_ADD, uuid, 16, NULL, 0);
}

int vhu_channel_shared_object_remove(struct vhu_channel *ch, const uint8_t uuid[16])
{
	return vhu_channel_request(ch, VHU_BREQ_SHARED_OBJECT_REMOVE, uuid, 16, NULL, 0);
}

/* The front end always answers a lookup with a u64 and, on success, the fd. */
int vhu_channel_shared_object_lookup(struct vhu_channel *ch, const uint8_t uuid[16])
{
	int fd = -1, err;

	if (!ch)
		return -ENOTCONN;
	pthread_mutex_lock(&ch->lock);
	err = request_locked(ch, VHU_BREQ_SHARED_OBJECT_LOOKUP, uuid, 16, NULL, 0, true, &fd);
	pthread_mutex_unlock(&ch->lock);
	if (err)
		return err;
	return fd >= 0 ? fd : -ENOENT;
}

static int vring_msg(struct vhu_channel *ch, uint32_t req, unsigned q)
{
	struct vhu_vring_state s = {.index = q, .num = 0};

	if (q > VHU_VRING_IDX_MASK)
		return -EINVAL;
	return vhu_channel_request(ch, req, &s, sizeof(s), NULL, 0);
}

int vhu_channel_vring_call(struct vhu_channel *ch, unsigned q)
{
	return vring_msg(ch, VHU_BREQ_VRING_CALL, q);
}

int vhu_channel_vring_err(struct vhu_channel *ch, unsigned q)
{
	return vring_msg(ch, VHU_BREQ_VRING_ERR, q);
}
