/* SPDX-License-Identifier: Apache-2.0 */
/* The device of docs/writing-a-device.md, built against the shared libvhu. */
#include <errno.h>
#include <sys/random.h>
#include <vhu/vhu.h>

static unsigned num_queues(void *dev)
{
	return 1;
}
static unsigned max_queue_size(void *dev)
{
	return 1024;
}
static uint64_t features(void *dev)
{
	return VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_INDIRECT_DESC) |
	       VHU_BIT(VHU_F_RING_EVENT_IDX);
}
static uint64_t protocol_features(void *dev)
{
	return VHU_BIT(VHU_PF_REPLY_ACK) | VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS);
}

/* Worker thread: queue 0 was kicked (the kick is already drained). */
static int handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                        unsigned nvrings, unsigned thread)
{
	struct vhu_vring *vr = vrings[0];
	struct iovec iov[64];
	struct vhu_chain c = {.iov = iov, .iov_max = 64};
	int n;

	while ((n = vhu_vring_pop(vr, &c)) != 0) {
		uint32_t written = 0;
		if (n < 0 && n != -E2BIG)
			return n; /* malformed ring: the library has failed it */
		for (uint32_t i = c.out_num; n > 0 && i < c.out_num + c.in_num; i++)
			written += getrandom(iov[i].iov_base, iov[i].iov_len, 0);
		vhu_vring_push(vr, &c, written);
	}
	vhu_vring_notify(vr); /* one interrupt per batch, if the driver wants it */
	return 0;
}

static const struct vhu_backend_ops rng_ops = {
    .num_queues = num_queues,
    .max_queue_size = max_queue_size,
    .features = features,
    .protocol_features = protocol_features,
    .handle_event = handle_event,
};

int main(int argc, char **argv)
{
	struct vhu_daemon *d;
	if (vhu_daemon_new(&d, &rng_ops, NULL, NULL) < 0)
		return 1;
	/* Serve one front end after another. */
	vhu_daemon_serve(d, argc > 1 ? argv[1] : "/tmp/rng.sock");
	vhu_daemon_free(d);
	return 0;
}
