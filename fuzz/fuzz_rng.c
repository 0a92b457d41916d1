/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: vhu-rng's request handling (devices/rng/rng.c) driven
 * through its handle_event over a ring and guest memory built from the
 * input (see fz.h).  Odd `pad` values use a rate-limited device.
 *
 * Checks: handle_event returns 0, or -EIO with the ring failed; a device
 * that returns leaves no chain popped and unpushed (inuse == 0) unless the
 * ring failed; used lengths never exceed what the chain could take.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fz.h"
#include "rng.h"

static struct rng_dev plain, limited;
static int base_fds = -1, base_maps;

static void setup(void)
{
	struct rng_opts a = {.source = "/dev/zero"};
	struct rng_opts b = {.source = "/dev/zero", .max_bytes_per_sec = 1 << 20};

	fz_quiet();
	FZ_ASSERT(rng_dev_init(&plain, &a) == 0);
	FZ_ASSERT(rng_dev_init(&limited, &b) == 0);
	base_fds = fz_count_fds();
	base_maps = fz_count_memfd_maps();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_guest g;
	int r;

	if (base_fds < 0)
		setup();
	r = fz_guest_init(&g, data, size);
	FZ_ASSERT(r >= 0);
	if (r == 0) {
		struct rng_dev *dev = (g.h.pad & 1) ? &limited : &plain;
		struct vhu_vring *vrp = &g.vr;

		for (int round = 0; round < 2; round++) {
			vhu_vring_budget(&g.vr, true); /* armed around callbacks as worker.c does */
			r = rng_backend_ops.handle_event(dev, 0, EPOLLIN, &vrp, 1, 0);
			vhu_vring_budget(&g.vr, false);
			FZ_ASSERT(r == 0 || (r == -EIO && vhu_vring_failed(&g.vr)));
			if (!vhu_vring_failed(&g.vr))
				FZ_ASSERT(g.vr.inuse == 0);
		}
		/* Unknown events are refused, not acted on. */
		FZ_ASSERT(rng_backend_ops.handle_event(&plain, 7, EPOLLIN, &vrp, 1, 0) == -EINVAL);
		FZ_ASSERT(rng_backend_ops.handle_event(&plain, 0, EPOLLIN, &vrp, 0, 0) == -EINVAL);
		dev->timer_armed = false; /* the next input starts afresh */
	}
	fz_guest_fini(&g);
	FZ_ASSERT(fz_count_fds() == base_fds);
	FZ_ASSERT(fz_count_memfd_maps() == base_maps);
	return 0;
}
