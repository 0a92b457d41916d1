/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Built from the installed libvhu-frontend-dev only (pkg-config
 * libvhu-frontend), by tests/package/deb.sh with gcc and with clang:
 * connect to a back end's socket, negotiate as QEMU does, read its config
 * space size for nothing, print the features.  Exit 0 if the back end
 * offered VIRTIO_F_VERSION_1.  usage: frontend-probe SOCKET
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <vhu/frontend.h>

int main(int argc, char **argv)
{
	struct vhuf_opts opts = {.mem_size = 4u << 20, .connect_timeout_ms = 5000};
	struct vhuf *f;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
		return 2;
	}
	rc = vhuf_connect(&f, argv[1], &opts);
	if (rc < 0) {
		fprintf(stderr, "connect %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	rc = vhuf_negotiate(f, UINT64_MAX, UINT64_MAX);
	if (rc == 0)
		printf("negotiated features %#" PRIx64 " protocol features %#" PRIx64 "\n",
		       vhuf_features(f), vhuf_protocol_features(f));
	else
		fprintf(stderr, "negotiate: %s\n", strerror(-rc));
	uint64_t feat = vhuf_features(f);
	vhuf_close(f);
	return rc == 0 && (feat >> 32 & 1) ? 0 : 1;
}
