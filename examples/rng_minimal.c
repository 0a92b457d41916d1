/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The smallest complete device (docs/writing-a-device.md): virtio-rng.
 *
 *   cc rng_minimal.c $(pkg-config --cflags --libs libvhu) -o rng-minimal
 *   ./rng-minimal --socket-path /tmp/rng.sock
 */
#include <errno.h>
#include <sys/random.h>
#include <vhu/vhu.h>

/* Worker thread: queue 0 was kicked (the kick is already drained). */
static int handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                        unsigned nvrings, unsigned thread)
{
	struct vhu_vring *vr = vrings[0];
	struct iovec iov[16];
	struct vhu_chain c = {.iov = iov, .iov_max = 16};
	char buf[256];
	int n;

	while ((n = vhu_vring_pop(vr, &c)) != 0) {
		size_t len = 0;

		if (n < 0 && n != -E2BIG)
			return n; /* malformed ring: the library has failed it */
		if (n > 0 && getrandom(buf, sizeof(buf), 0) == sizeof(buf))
			len = vhu_chain_write(&c, 0, buf, sizeof(buf)); /* short if the buffer is */
		vhu_vring_push(vr, &c, (uint32_t)len);
	}
	vhu_vring_notify(vr); /* one interrupt per batch, if the driver wants it */
	return 0;
}

static const struct vhu_backend_ops rng_ops = {
    .fixed = {.num_queues = 1,
              .max_queue_size = 1024,
              .features = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC) |
                          VHU_BIT(VHU_F_RING_EVENT_IDX),
              .protocol_features = VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS)},
    .handle_event = handle_event,
};

static const struct vhu_program_info info = {
    .name = "rng-minimal",
    .summary = "The smallest virtio-rng back end.",
    .type = "rng",
};

int main(int argc, char **argv)
{
	/* --socket-path/--fd, --print-capabilities, --help, signals: serves
	 * one front end after another until SIGINT or SIGTERM. */
	return vhu_program_main(&info, argc, argv, &rng_ops, NULL, NULL);
}
