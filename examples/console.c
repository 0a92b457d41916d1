/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A virtio-console back end (device id 3, one port, no MULTIPORT): what the
 * driver sends on the transmit queue goes to stdout, what arrives on stdin
 * goes to the driver's receive queue.  Shows a listener (stdin), input kept
 * while no buffer is there, and the lifecycle hooks that keep it for the
 * next front end (docs/writing-a-device.md).
 *
 *   cc console.c $(pkg-config --cflags --libs libvhu) -o console
 *   ./console --socket-path /tmp/console.sock     (stdin: a pipe or terminal)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <vhu/vhu.h>

enum { RX = 0, TX = 1, NQ = 2, STDIN_EVENT = NQ /* listener ids start at num_queues */ };

struct console {
	/* Input read from stdin that no receive buffer took yet.  Only the
	 * one worker thread touches it (default queues_per_thread). */
	char pending[4096];
	size_t npending;
	bool eof;
	struct vhu_daemon *daemon;
};

/* Hand pending input to the driver, as far as its buffers go. */
static void deliver(struct console *c, struct vhu_vring *rx)
{
	struct iovec iov[16];
	struct vhu_chain ch = {.iov = iov, .iov_max = 16};
	int n, pushed = 0;

	while (c->npending && (n = vhu_vring_pop(rx, &ch)) != 0) {
		size_t len = n > 0 ? vhu_chain_write(&ch, 0, c->pending, c->npending) : 0;

		memmove(c->pending, c->pending + len, c->npending - len);
		c->npending -= len;
		vhu_vring_push(rx, &ch, (uint32_t)len);
		pushed++;
	}
	if (pushed)
		vhu_vring_notify(rx);
}

/* The driver sent something: copy it to stdout. */
static void transmit(struct vhu_vring *tx)
{
	struct iovec iov[16];
	struct vhu_chain ch = {.iov = iov, .iov_max = 16};
	char buf[1024];
	int n;

	while ((n = vhu_vring_pop(tx, &ch)) != 0) {
		/* Copy first: the guest may change its buffer meanwhile. */
		for (size_t off = 0, len;
		     n > 0 && (len = vhu_chain_read(&ch, off, buf, sizeof(buf))); off += len)
			fwrite(buf, 1, len, stdout);
		vhu_vring_push(tx, &ch, 0);
	}
	fflush(stdout);
	vhu_vring_notify(tx);
}

static void read_stdin(struct console *c)
{
	ssize_t n = read(STDIN_FILENO, c->pending + c->npending, sizeof(c->pending) - c->npending);

	if (n > 0) {
		c->npending += (size_t)n;
	} else if (n == 0 || errno != EAGAIN) {
		/* EOF: stop listening (allowed from the listener's own event). */
		vhu_daemon_del_listener(c->daemon, 0, STDIN_FILENO);
		c->eof = true;
	}
}

static int handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                        unsigned nvrings, unsigned thread)
{
	struct console *c = dev;

	if (ev == TX)
		transmit(vrings[TX]);
	else if (ev == STDIN_EVENT && c->npending < sizeof(c->pending))
		read_stdin(c);
	/* RX kicked (new buffers), or new input: try to deliver. */
	deliver(c, vrings[RX]);
	return 0;
}

/* A new front end's receive queue is ready: input that waited for it goes
 * now, without waiting for the driver to kick. */
static void queue_ready(void *dev, unsigned q, unsigned thread)
{
	struct console *c = dev;

	if (q == RX)
		deliver(c, vhu_daemon_vring(c->daemon, RX));
}

static const struct vhu_backend_ops console_ops = {
    .fixed = {.num_queues = NQ,
              .max_queue_size = 256,
              .features = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX),
              .protocol_features = VHU_BIT(VHU_PF_REPLY_ACK)},
    .handle_event = handle_event,
    .queue_ready = queue_ready,
};

static const struct vhu_program_info info = {
    .name = "console",
    .summary = "virtio-console back end: the driver's output to stdout, stdin to the driver.",
    .type = "console",
};

int main(int argc, char **argv)
{
	static struct console c;
	struct vhu_program *p;
	int status;

	if (!(p = vhu_program_new(&info, argc, argv, &status)))
		return status;
	if (vhu_daemon_new(&c.daemon, &console_ops, &c, NULL) < 0) {
		fprintf(stderr, "console: cannot create the daemon\n");
		vhu_program_free(p);
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	/* epoll refuses regular files and /dev/null: no input then. */
	if (vhu_daemon_add_listener(c.daemon, 0, STDIN_FILENO, EPOLLIN, STDIN_EVENT) < 0)
		fprintf(stderr, "console: stdin is not a pipe or terminal: no input\n");
	vhu_program_set_daemon(p, 0, c.daemon);
	status = vhu_program_run(p);
	vhu_daemon_free(c.daemon);
	vhu_program_free(p);
	return status;
}
