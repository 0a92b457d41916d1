/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A guest must not be able to keep a worker inside handle_event for ever
 * (bug B1 in /work/h7-bugs.md).  The ring's used part is placed on top of
 * its avail part and the ring restarted one entry behind the avail index:
 * every used-index store by the device then publishes one more "available"
 * chain, so a pop-until-empty loop never sees an empty ring.  The daemon
 * must still answer the front end (GET_VRING_BASE needs the worker to
 * leave its callback) within 10 s.
 *
 * If it does not, the worker is stuck for good and the daemon cannot be
 * torn down: the program reports the failure and exits without cleanup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hostile.h"
#include "vt.h"

VT_MAIN

#define NQ 2

struct avail {
	uint16_t flags, idx, ring[];
};

static int st(struct vhuf *f, uint32_t r, uint32_t idx, uint32_t num)
{
	struct vhu_vring_state s = {idx, num};

	return vhuf_request(f, r, &s, sizeof(s), NULL, 0, true, NULL);
}

static int fd_req(struct vhuf *f, uint32_t r, unsigned q, int fd)
{
	uint64_t v = q;

	return vhuf_request(f, r, &v, 8, &fd, 1, true, NULL);
}

VT_CASE(self_feeding_ring_does_not_pin_the_worker)
{
	struct henv h;
	struct vhuf *f;
	struct vhu_vring_addr a = {0};
	uint8_t *base;
	uint32_t next;
	uint64_t avail_gpa;
	int kick, call, r;

	VT_REQUIRE(henv_start(&h, NQ) == 0);
	f = h_open(&h);
	VT_REQUIRE(f);
	VT_EQ(vhuf_queue_setup(f, 0, 64), 0);
	VT_EQ(fe_io(f, 0, 5), 0);
	VT_EQ(vhuf_queue_stop(f, 0, &next), 0);
	base = vhuf_ptr(f, 0);
	avail_gpa = (uint64_t)((uint8_t *)vhuf_ring_avail(f, 0) - base);
	VT_REQUIRE(avail_gpa % 4 == 0);
	/* Every head is a valid chain with nothing writable, so the used
	 * elements the device writes over the avail entries ({id, 0, len 0,
	 * 0}) name valid heads again. */
	{
		struct desc {
			uint64_t addr;
			uint32_t len;
			uint16_t flags, next;
		} *d = vhuf_ring_desc(f, 0);
		struct avail *av = vhuf_ring_avail(f, 0);
		uint64_t buf = vhuf_alloc(f, 64, 64);

		for (unsigned i = 0; i < 64; i++) {
			d[i] = (struct desc){buf, 16, 0, 0};
			av->ring[i] = 0;
		}
	}
	a.index = 0;
	a.desc_user_addr = vhuf_uva(f, (uint64_t)((uint8_t *)vhuf_ring_desc(f, 0) - base));
	a.avail_user_addr = vhuf_uva(f, avail_gpa);
	a.used_user_addr = a.avail_user_addr; /* used on top of avail */
	kick = eventfd(0, EFD_CLOEXEC);
	call = eventfd(0, EFD_CLOEXEC);
	VT_EQ(st(f, VHU_REQ_SET_VRING_NUM, 0, 64), 0);
	VT_EQ(st(f, VHU_REQ_SET_VRING_BASE, 0, (uint16_t)(next - 1)), 0);
	VT_EQ(vhuf_request(f, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, true, NULL), 0);
	VT_EQ(fd_req(f, VHU_REQ_SET_VRING_CALL, 0, call), 0);
	VT_EQ(fd_req(f, VHU_REQ_SET_VRING_KICK, 0, kick), 0);
	VT_EQ(st(f, VHU_REQ_SET_VRING_ENABLE, 0, 1), 0);
	{
		uint64_t one = 1;

		VT_EQ(write(kick, &one, 8), 8);
	}
	usleep(200 * 1000);
	/* Needs the worker out of its callback (vhuf_request: 5 s timeout). */
	r = st(f, VHU_REQ_GET_VRING_BASE, 0, 0);
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "# the worker is still inside handle_event: daemon wedged\n");
		printf("not ok 1 - self_feeding_ring_does_not_pin_the_worker\n");
		fflush(stdout);
		_exit(1);
	}
	close(kick);
	close(call);
	h_close(&h, f);
	VT_CHECK(h_healthy(&h));
	henv_stop(&h);
}
