/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image specifications, spelled as QEMU spells them:
 *
 *   PATH | file:PATH                          a regular file or block device
 *   rbd:POOL/[NAMESPACE/]IMAGE[@SNAP][:KEY=VALUE]...
 *                                             Ceph RBD (conf=, id=, and any
 *                                             Ceph option, e.g. mon_host=)
 *   nbd://HOST[:PORT]/[EXPORT], nbd+unix:///[EXPORT]?socket=PATH, nbds://...
 *                                             NBD URIs (libnbd parses them)
 *   nbd:HOST:PORT[:exportname=EXPORT]         QEMU's legacy NBD spelling
 *   nbd:unix:PATH[:exportname=EXPORT]
 *
 * In rbd: specs a backslash escapes the next character (":" "@" "/" "\"),
 * as in QEMU.  Pure string handling: no I/O, no allocation but the one
 * buffer that holds the parsed strings.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Copy the token at *src up to an unescaped delimiter in `delims` into *dst
 * (unescaped, NUL terminated); *src is left on the delimiter (or the end). */
static char *next_tok(const char **src, char **dst, const char *delims)
{
	char *start = *dst, *o = *dst;
	const char *s = *src;
	for (; *s && !strchr(delims, *s); s++) {
		if (*s == '\\' && s[1])
			s++;
		*o++ = *s;
	}
	*o++ = 0;
	*src = s;
	*dst = o;
	return start;
}

static int parse_rbd_opt(struct blk_spec *sp, char *kv, char *err, size_t errlen)
{
	char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return fail(err, errlen, "rbd: option '%s' is not KEY=VALUE", kv);
	*eq = 0;
	if (!strcmp(kv, "conf")) {
		sp->rbd.conf = eq + 1;
	} else if (!strcmp(kv, "id")) {
		sp->rbd.id = eq + 1;
	} else {
		if (sp->rbd.nopts == BLK_SPEC_MAX_OPTS)
			return fail(err, errlen, "rbd: more than %u options", BLK_SPEC_MAX_OPTS);
		sp->rbd.opts[sp->rbd.nopts].key = kv;
		sp->rbd.opts[sp->rbd.nopts++].value = eq + 1;
	}
	if (!eq[1])
		return fail(err, errlen, "rbd: option '%s' has an empty value", kv);
	return 0;
}

static int parse_rbd(struct blk_spec *sp, const char *s, char *o, char *err, size_t errlen)
{
	char *tok[3];
	unsigned n = 0;
	for (;;) {
		tok[n++] = next_tok(&s, &o, "/@:");
		if (*s != '/')
			break;
		if (n == 3)
			return fail(err, errlen, "rbd: expected POOL/[NAMESPACE/]IMAGE");
		s++;
	}
	if (n < 2)
		return fail(err, errlen, "rbd: expected POOL/IMAGE after 'rbd:'");
	sp->rbd.pool = tok[0];
	sp->rbd.ns = n == 3 ? tok[1] : NULL;
	sp->rbd.image = tok[n - 1];
	if (!*sp->rbd.pool || !*sp->rbd.image || (sp->rbd.ns && !*sp->rbd.ns))
		return fail(err, errlen, "rbd: empty pool, namespace or image name");
	if (*s == '@') {
		s++;
		sp->rbd.snap = next_tok(&s, &o, ":");
		if (!*sp->rbd.snap)
			return fail(err, errlen, "rbd: empty snapshot name after '@'");
	}
	while (*s == ':') {
		s++;
		int rc = parse_rbd_opt(sp, next_tok(&s, &o, ":"), err, errlen);
		if (rc < 0)
			return rc;
	}
	if (*s)
		return fail(err, errlen, "rbd: unexpected '%c'", *s);
	return 0;
}

/* nbd:unix:PATH[:exportname=X] and nbd:HOST:PORT[:exportname=X]. */
static int parse_nbd_legacy(struct blk_spec *sp, char *s, char *err, size_t errlen)
{
	char *exp = strstr(s, ":exportname=");
	if (exp) {
		*exp = 0;
		sp->nbd.export = exp + strlen(":exportname=");
	}
	if (!strncmp(s, "unix:", 5)) {
		sp->nbd.unix_path = s + 5;
		if (!*sp->nbd.unix_path)
			return fail(err, errlen, "nbd: empty socket path");
		return 0;
	}
	char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1])
		return fail(err, errlen, "nbd: expected nbd:HOST:PORT or nbd:unix:PATH");
	*colon = 0;
	sp->nbd.host = s;
	sp->nbd.port = colon + 1;
	if (strspn(sp->nbd.port, "0123456789") != strlen(sp->nbd.port) ||
	    strlen(sp->nbd.port) > 5 || atoi(sp->nbd.port) > 65535)
		return fail(err, errlen, "nbd: bad port '%s'", sp->nbd.port);
	return 0;
}

static bool is_nbd_uri(const char *s)
{
	static const char *const schemes[] = {"nbd://",       "nbds://",      "nbd+unix://",
	                                      "nbds+unix://", "nbd+vsock://", "nbds+vsock://"};
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (!strncmp(s, schemes[i], strlen(schemes[i])))
			return true;
	return false;
}

int blk_spec_parse(const char *s, struct blk_spec *sp, char *err, size_t errlen)
{
	memset(sp, 0, sizeof(*sp));
	if (!s || !*s)
		return fail(err, errlen, "empty image");
	size_t len = strlen(s);
	if (len > BLK_SPEC_MAX_LEN)
		return fail(err, errlen, "image specification longer than %u bytes",
		            BLK_SPEC_MAX_LEN);
	sp->buf = malloc(2 * len + 2);
	if (!sp->buf)
		return -ENOMEM;
	char *o = sp->buf;
	int rc = 0;
	if (!strncmp(s, "rbd:", 4)) {
		sp->kind = BLK_SPEC_RBD;
		rc = parse_rbd(sp, s + 4, o, err, errlen);
	} else if (is_nbd_uri(s)) {
		sp->kind = BLK_SPEC_NBD;
		sp->nbd.uri = strcpy(o, s);
	} else if (!strncmp(s, "nbd:", 4)) {
		sp->kind = BLK_SPEC_NBD;
		rc = parse_nbd_legacy(sp, strcpy(o, s + 4), err, errlen);
	} else if (!strncmp(s, "file:", 5)) {
		sp->kind = BLK_SPEC_FILE;
		sp->path = strcpy(o, s + 5);
		if (!*sp->path)
			rc = fail(err, errlen, "empty path after 'file:'");
	} else if (strstr(s, "://")) {
		/* A typo in a scheme must not be taken for a relative path. */
		rc = fail(err, errlen,
		          "unknown image scheme in '%s' (expected a path, file:PATH, "
		          "rbd:POOL/IMAGE or nbd://...; ./%s for such a file)",
		          s, s);
	} else {
		sp->kind = BLK_SPEC_FILE;
		sp->path = strcpy(o, s);
	}
	if (rc < 0)
		blk_spec_free(sp);
	return rc;
}

void blk_spec_free(struct blk_spec *sp)
{
	free(sp->buf);
	memset(sp, 0, sizeof(*sp));
}

const char *blk_spec_kind_name(enum blk_spec_kind k)
{
	switch (k) {
	case BLK_SPEC_FILE:
		return "file";
	case BLK_SPEC_RBD:
		return "rbd";
	case BLK_SPEC_NBD:
		return "nbd";
	}
	return "?";
}
