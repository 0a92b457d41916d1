/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: vhu-net (devices/net, loopback mode, one queue pair) driven
 * through its handle_event: the control queue parser, the tx parser and
 * the loopback copy into rx buffers (with and without MRG_RXBUF).  The
 * ring and memory come from the input (see fz.h); the rx, tx and control
 * rings all use the input's ring addresses, so the three parsers see the
 * same hostile chains (a guest may alias its rings).  The `ops` byte picks
 * the virtio-net features acked.
 *
 * Checks: no crash / UB / leak; handle_event returns; rings left failed
 * only through -EIO.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dev.h"
#include "fz.h"
#include "net.h"

static struct net_dev *nd;
static int base_fds = -1, base_maps;

static void setup(void)
{
	struct net_dev_opts o = {.name = "fz-net",
	                         .mode = NET_MODE_LOOPBACK,
	                         .pairs = 1,
	                         .mac = {2, 0, 0, 0, 0, 1},
	                         .ncpus = 1};
	struct vhu_daemon_config cfg = {.name = "fz-net", .vring_flavour = VHU_VRING_MUTEX};

	fz_quiet();
	FZ_ASSERT(net_dev_new(&nd, &o) == 0);
	/* The daemon without listeners: nothing but this thread calls in. */
	FZ_ASSERT(vhu_daemon_new(&nd->daemon, &net_backend_ops, nd, &cfg) == 0);
	base_fds = fz_count_fds();
	base_maps = fz_count_memfd_maps();
}

static uint64_t net_features(uint8_t ops)
{
	static const unsigned bits[8] = {
	    VIRTIO_NET_F_MRG_RXBUF,     VIRTIO_NET_F_CTRL_VQ,
	    VIRTIO_NET_F_CTRL_RX,       VIRTIO_NET_F_CTRL_RX_EXTRA,
	    VIRTIO_NET_F_CTRL_MAC_ADDR, VIRTIO_NET_F_GUEST_CSUM,
	    VIRTIO_NET_F_CSUM,          VIRTIO_NET_F_CTRL_GUEST_OFFLOADS,
	};
	uint64_t f = 0;

	for (unsigned i = 0; i < 8; i++)
		if (ops & (1u << i))
			f |= VHU_BIT(bits[i]);
	return f;
}

static void start_ring(struct vhu_vring *vr, const struct fz_guest *g, uint64_t features)
{
	vr->num = g->vr.num;
	vr->addr = g->vr.addr;
	vr->addr_set = true;
	vr->base = g->vr.base;
	vr->enabled = true;
	vr->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vr->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	FZ_ASSERT(vr->err_fd >= 0 && vr->call_fd >= 0);
	atomic_store(&vr->dirty, NULL);
	if (vhu_vring_start(vr, g->mem, features))
		vr->started = false;
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
		struct vhu_daemon *d = nd->daemon;
		uint64_t f = g.features | net_features(g.h.ops);

		net_backend_ops.acked_features(nd, f);
		for (unsigned q = 0; q < 3; q++)
			start_ring(&d->vrings[q], &g, f);
		/* ctrl, tx (loops back into rx), rx kick, tx again */
		static const uint16_t order[] = {2, 1, 0, 1};
		for (unsigned i = 0; i < 4; i++) {
			for (unsigned q = 0; q < 3;
			     q++) { /* armed around callbacks as worker.c does */
				d->vrings[q].budget_owner = vhu_tl_worker; /* we serve them */
				vhu_vring_budget(&d->vrings[q], true);
			}
			r = net_backend_ops.handle_event(nd, order[i], EPOLLIN, d->vring_ptrs,
			                                 d->nq, 0);
			for (unsigned q = 0; q < 3; q++)
				vhu_vring_budget(&d->vrings[q], false);
			FZ_ASSERT(r <= 0);
		}
		for (unsigned q = 0; q < 3; q++) {
			atomic_store(&d->vrings[q].mem, NULL);
			vhu_vring_reset(&d->vrings[q]);
		}
		net_backend_ops.reset_device(nd);
	}
	fz_guest_fini(&g);
	FZ_ASSERT(fz_count_fds() == base_fds);
	FZ_ASSERT(fz_count_memfd_maps() == base_maps);
	return 0;
}
