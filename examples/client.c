/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny front end on libvhu-frontend: plays VMM and guest driver for a
 * back end, to try a device without a VM.
 *
 *   client SOCKET NUM_QUEUES OP...
 *     r:Q        post a 64-byte device-writable buffer on queue Q, kick, wait
 *                for it and print "Q LEN HEX" (what the device wrote)
 *     w:Q:TEXT   send TEXT on queue Q (device-readable), wait until used
 *
 *   cc client.c $(pkg-config --cflags --libs libvhu-frontend) -o client
 *   ./client /tmp/rng.sock 1 r:0
 *
 * Exits 0 when every operation completed within 5 s, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vhu/frontend.h>

static int wait_done(struct vhuf *f, unsigned q, uint32_t *len)
{
	void *cookie;

	return vhuf_wait_used(f, q, 5000, &cookie, len) == 1 ? 0 : -1;
}

static int op_read(struct vhuf *f, unsigned q)
{
	uint64_t gpa = vhuf_alloc(f, 64, 8);
	struct vhuf_buf b = {.gpa = gpa, .len = 64, .write = true};
	const unsigned char *p = vhuf_ptr(f, gpa);
	uint32_t len;

	if (vhuf_submit(f, q, &b, 1, false, NULL) < 0 || vhuf_kick_force(f, q) < 0 ||
	    wait_done(f, q, &len) < 0)
		return -1;
	printf("%u %u ", q, len);
	for (uint32_t i = 0; i < len && i < 64; i++)
		printf("%02x", p[i]);
	printf("\n");
	return 0;
}

static int op_write(struct vhuf *f, unsigned q, const char *text)
{
	size_t n = strlen(text);
	uint64_t gpa = vhuf_alloc(f, n ? n : 1, 8);
	struct vhuf_buf b = {.gpa = gpa, .len = (uint32_t)n, .write = false};
	uint32_t len;

	memcpy(vhuf_ptr(f, gpa), text, n);
	if (vhuf_submit(f, q, &b, 1, false, NULL) < 0 || vhuf_kick_force(f, q) < 0)
		return -1;
	return wait_done(f, q, &len);
}

int main(int argc, char **argv)
{
	struct vhuf_opts o = {.mem_size = 1 << 20, .connect_timeout_ms = 5000};
	struct vhuf *f;
	unsigned nq = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	int rc = 0;

	if (argc < 4 || nq < 1 || nq > 8) {
		fprintf(stderr, "usage: %s SOCKET NUM_QUEUES (r:Q | w:Q:TEXT)...\n", argv[0]);
		return 2;
	}
	if (vhuf_connect(&f, argv[1], &o) < 0 ||
	    vhuf_negotiate(f, VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_EVENT_IDX), ~0ull) <
	        0) {
		fprintf(stderr, "client: cannot connect to or negotiate with %s\n", argv[1]);
		return 1;
	}
	for (unsigned q = 0; q < nq && !rc; q++)
		rc = vhuf_queue_setup(f, q, 16);
	for (int i = 3; i < argc && !rc; i++) {
		unsigned q = (unsigned)atoi(argv[i] + 2);
		const char *text = strchr(argv[i] + 2, ':');

		if (q >= nq || (argv[i][0] != 'r' && argv[i][0] != 'w') || argv[i][1] != ':')
			rc = -1;
		else if (argv[i][0] == 'r')
			rc = op_read(f, q);
		else
			rc = text ? op_write(f, q, text + 1) : -1;
		if (rc)
			fprintf(stderr, "client: %s failed\n", argv[i]);
	}
	vhuf_close(f);
	return rc ? 1 : 0;
}
