/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu-blk image specifications (devices/blk/spec.c): every spelling QEMU
 * users write, escapes, and clear refusals of malformed ones.
 */
#include "blk.h"
#include "vt.h"

VT_MAIN

static char err[256];

static void parse_ok(const char *s, struct blk_spec *sp)
{
	err[0] = 0;
	int rc = blk_spec_parse(s, sp, err, sizeof(err));
	if (rc)
		fprintf(stderr, "# '%s': %d %s\n", s, rc, err);
	VT_EQ(rc, 0);
}

static void parse_bad(const char *s, const char *needle)
{
	struct blk_spec sp;
	err[0] = 0;
	int rc = blk_spec_parse(s, &sp, err, sizeof(err));
	VT_EQ(rc, -EINVAL);
	if (!strstr(err, needle))
		fprintf(stderr, "# '%s': want '%s' in '%s'\n", s, needle, err);
	VT_CHECK(strstr(err, needle) != NULL);
	VT_CHECK(sp.buf == NULL); /* nothing to free after a failure */
}

#define STR_EQ(a, b) VT_CHECK((a) && !strcmp((a), (b)))

VT_CASE(paths)
{
	struct blk_spec sp;
	parse_ok("/var/lib/disk.img", &sp);
	VT_EQ(sp.kind, BLK_SPEC_FILE);
	STR_EQ(sp.path, "/var/lib/disk.img");
	blk_spec_free(&sp);
	parse_ok("disk:with:colons.img", &sp); /* no scheme: a path */
	VT_EQ(sp.kind, BLK_SPEC_FILE);
	STR_EQ(sp.path, "disk:with:colons.img");
	blk_spec_free(&sp);
	parse_ok("file:rbd:odd-name", &sp); /* file: forces a path */
	VT_EQ(sp.kind, BLK_SPEC_FILE);
	STR_EQ(sp.path, "rbd:odd-name");
	blk_spec_free(&sp);
	parse_ok("rbd.img", &sp);
	VT_EQ(sp.kind, BLK_SPEC_FILE);
	blk_spec_free(&sp);
	parse_bad("", "empty image");
	parse_bad("file:", "empty path");
	parse_bad("nbdd://host/x", "unknown image scheme");
	parse_bad("http://host/x", "unknown image scheme");
}

VT_CASE(rbd_specs)
{
	struct blk_spec sp;
	parse_ok("rbd:pool/image", &sp);
	VT_EQ(sp.kind, BLK_SPEC_RBD);
	STR_EQ(sp.rbd.pool, "pool");
	STR_EQ(sp.rbd.image, "image");
	VT_CHECK(!sp.rbd.ns && !sp.rbd.snap && !sp.rbd.conf && !sp.rbd.id);
	VT_EQ(sp.rbd.nopts, 0);
	blk_spec_free(&sp);

	parse_ok("rbd:pool/ns/image@snap1:conf=/etc/ceph/x.conf:id=cinder:mon_host=10.0.0.1\\:6789",
	         &sp);
	STR_EQ(sp.rbd.pool, "pool");
	STR_EQ(sp.rbd.ns, "ns");
	STR_EQ(sp.rbd.image, "image");
	STR_EQ(sp.rbd.snap, "snap1");
	STR_EQ(sp.rbd.conf, "/etc/ceph/x.conf");
	STR_EQ(sp.rbd.id, "cinder");
	VT_EQ(sp.rbd.nopts, 1);
	STR_EQ(sp.rbd.opts[0].key, "mon_host");
	STR_EQ(sp.rbd.opts[0].value, "10.0.0.1:6789");
	blk_spec_free(&sp);

	/* Escapes: '@' and ':' inside names. */
	parse_ok("rbd:p/im\\@age\\:x:id=a", &sp);
	STR_EQ(sp.rbd.image, "im@age:x");
	STR_EQ(sp.rbd.id, "a");
	blk_spec_free(&sp);

	parse_bad("rbd:", "expected POOL/IMAGE");
	parse_bad("rbd:pool", "expected POOL/IMAGE");
	parse_bad("rbd:pool/", "empty pool");
	parse_bad("rbd:/image", "empty pool");
	parse_bad("rbd:a/b/c/d", "expected POOL/[NAMESPACE/]IMAGE");
	parse_bad("rbd:p/i@", "empty snapshot");
	parse_bad("rbd:p/i:conf", "not KEY=VALUE");
	parse_bad("rbd:p/i:=x", "not KEY=VALUE");
	parse_bad("rbd:p/i:id=", "empty value");
}

VT_CASE(rbd_option_limit)
{
	char s[1024] = "rbd:p/i";
	for (unsigned i = 0; i < BLK_SPEC_MAX_OPTS + 1; i++)
		snprintf(s + strlen(s), sizeof(s) - strlen(s), ":k%u=v", i);
	parse_bad(s, "more than");
	char *big = malloc(BLK_SPEC_MAX_LEN + 16);
	VT_REQUIRE(big);
	memset(big, 'a', BLK_SPEC_MAX_LEN + 8);
	memcpy(big, "rbd:p/", 6);
	big[BLK_SPEC_MAX_LEN + 8] = 0;
	parse_bad(big, "longer than");
	free(big);
}

VT_CASE(nbd_specs)
{
	struct blk_spec sp;
	parse_ok("nbd://localhost:10809/export", &sp);
	VT_EQ(sp.kind, BLK_SPEC_NBD);
	STR_EQ(sp.nbd.uri, "nbd://localhost:10809/export");
	blk_spec_free(&sp);
	parse_ok("nbd+unix:///exp?socket=/run/nbd.sock", &sp);
	STR_EQ(sp.nbd.uri, "nbd+unix:///exp?socket=/run/nbd.sock");
	blk_spec_free(&sp);
	parse_ok("nbds://host/", &sp);
	VT_EQ(sp.kind, BLK_SPEC_NBD);
	blk_spec_free(&sp);

	parse_ok("nbd:unix:/tmp/s.sock:exportname=disk0", &sp);
	STR_EQ(sp.nbd.unix_path, "/tmp/s.sock");
	STR_EQ(sp.nbd.export, "disk0");
	VT_CHECK(!sp.nbd.uri && !sp.nbd.host);
	blk_spec_free(&sp);
	parse_ok("nbd:example.org:10809", &sp);
	STR_EQ(sp.nbd.host, "example.org");
	STR_EQ(sp.nbd.port, "10809");
	VT_CHECK(!sp.nbd.export);
	blk_spec_free(&sp);

	parse_bad("nbd:unix:", "empty socket path");
	parse_bad("nbd:host", "expected nbd:HOST:PORT");
	parse_bad("nbd:host:", "expected nbd:HOST:PORT");
	parse_bad("nbd:host:99999", "bad port");
	parse_bad("nbd:host:12a", "bad port");
}
