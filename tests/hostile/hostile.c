/* SPDX-License-Identifier: Apache-2.0 */
/* The hostile suite's environment (see hostile.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile.h"
#include "vt.h"

int henv_start(struct henv *h, unsigned nq)
{
	int r;

	echo_init(&h->t.dev, nq);
	r = tenv_start(&h->t, NULL);
	if (r < 0)
		return r;
	h->base_fds = vt_count_fds();
	h->base_memfd_maps = h_count_memfd_maps();
	return 0;
}

void henv_stop(struct henv *h)
{
	tenv_stop(&h->t);
}

bool h_at_baseline(struct henv *h)
{
	int64_t deadline = now_ms() + 5000;
	int fds, maps;
	uint64_t c;

	for (;;) {
		c = vhu_daemon_connections(h->t.d);
		fds = vt_count_fds();
		maps = h_count_memfd_maps();
		if (c >= h->t.conns && fds == h->base_fds && maps == h->base_memfd_maps)
			return true;
		if (now_ms() > deadline)
			break;
		usleep(2000);
	}
	fprintf(stderr, "# baseline: connections %llu/%llu fds %d/%d memfd maps %d/%d\n",
	        (unsigned long long)c, (unsigned long long)h->t.conns, fds, h->base_fds, maps,
	        h->base_memfd_maps);
	return false;
}

struct vhuf *h_open(struct henv *h)
{
	return fe_open(&h->t, NULL, F_ALL, PF_ALL);
}

void h_close(struct henv *h, struct vhuf *f)
{
	if (f)
		fe_close(&h->t, f);
}

bool h_healthy(struct henv *h)
{
	unsigned nq = h->t.dev.nq < 2 ? h->t.dev.nq : 2;
	struct vhuf *f = h_open(h);
	bool ok = f != NULL;

	for (unsigned q = 0; ok && q < nq; q++)
		ok = vhuf_queue_setup(f, q, 64) == 0;
	for (unsigned q = 0; ok && q < nq; q++)
		ok = fe_io(f, q, 32) == 0;
	h_close(h, f);
	if (!ok)
		fprintf(stderr, "# healthy: a fresh front end could not do I/O\n");
	return h_at_baseline(h) && ok;
}

int h_memfd(size_t size)
{
	int fd = memfd_create("hostile", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int h_eventfd(void)
{
	return eventfd(0, EFD_CLOEXEC);
}

int h_send_raw(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 16)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}
