/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The back-end program conventions, command-line side (program.h):
 * options, --help, --version, --print-capabilities, usage errors.
 * Serving is in program_run.c.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "program_priv.h"

/* getopt values of the common options; device options are OPT_DEV + i. */
enum { OPT_FD = 0x100, OPT_CAPS, OPT_CLIENT, OPT_DEV = 0x200 };

static const struct vhu_program_option common_opts[] = {
    {"socket-path", 's', VHU_PROGRAM_ARG, "PATH",
     "listen on the unix socket PATH (--client: connect\nto it)", 's'},
    {"fd", 0, VHU_PROGRAM_ARG, "FD",
     "serve the listening (or connected) unix socket FD\ninherited from the parent", OPT_FD},
    {"client", 0, VHU_PROGRAM_NO_ARG, NULL,
     "connect to the front end listening at PATH (QEMU\n"
     "-chardev socket,server=on; DPDK server=1) and\n"
     "connect again whenever it goes, retrying while\n"
     "nobody listens: the back end can restart under\n"
     "running VMs",
     OPT_CLIENT},
};

static const struct vhu_program_option tail_opts[] = {
    {"verbose", 'v', VHU_PROGRAM_NO_ARG, NULL, "more log output (twice: debug)", 'v'},
    {"print-capabilities", 0, VHU_PROGRAM_NO_ARG, NULL,
     "print the back end's capabilities (JSON) and exit", OPT_CAPS},
    {"help", 'h', VHU_PROGRAM_NO_ARG, NULL, "print this help and exit", 'h'},
    {"version", 'V', VHU_PROGRAM_NO_ARG, NULL, "print the version and exit", 'V'},
};

int vhu_program_usage_error(struct vhu_program *p, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", p->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", p->name);
	p->error_printed = true;
	return -EINVAL;
}

bool vhu_program_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull would take blanks and a sign ("-1" is ULLONG_MAX). */
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* ---- --help, --version, --print-capabilities ------------------------- */

#define HELP_COL 30

static void print_opt(FILE *out, const struct vhu_program_option *o)
{
	const char *arg = o->arg_name ? o->arg_name : "VALUE", *h = o->help ? o->help : "";
	int n;

	if (o->short_name)
		n = fprintf(out, "  -%c, --%s", o->short_name, o->name);
	else
		n = fprintf(out, "      --%s", o->name);
	if (o->arg == VHU_PROGRAM_ARG)
		n += fprintf(out, " %s", arg);
	else if (o->arg == VHU_PROGRAM_OPTIONAL_ARG)
		n += fprintf(out, "[=%s]", arg);
	/* One line per '\n' of the help text, aligned in the help column. */
	for (;;) {
		const char *nl = strchr(h, '\n');
		int len = nl ? (int)(nl - h) : (int)strlen(h);

		if (n >= HELP_COL) {
			fputc('\n', out);
			n = 0;
		}
		fprintf(out, "%*s%.*s\n", HELP_COL - n, "", len, h);
		n = 0;
		if (!nl)
			break;
		h = nl + 1;
	}
}

static void print_help(const struct vhu_program *p)
{
	const struct vhu_program_info *in = p->info;
	const struct vhu_program_option *o;

	printf("Usage: %s [OPTIONS]%s%s\n", p->name, in->usage_args ? " " : "",
	       in->usage_args ? in->usage_args : "");
	if (in->summary)
		printf("%s\n", in->summary);
	printf("\n");
	for (size_t i = 0; i < VHU_ARRAY_SIZE(common_opts); i++)
		print_opt(stdout, &common_opts[i]);
	if (p->max_socks > 1)
		printf("%*s(up to %u sockets, in any mix)\n", HELP_COL, "", p->max_socks);
	for (o = in->options; o && (o->name || o->help); o++) {
		if (o->name)
			print_opt(stdout, o);
		else
			printf("\n%s\n", o->help);
	}
	if (in->options && in->options->name)
		printf("\n");
	for (size_t i = 0; i < VHU_ARRAY_SIZE(tail_opts); i++)
		print_opt(stdout, &tail_opts[i]);
	if (in->help_footer)
		printf("\n%s\n", in->help_footer);
}

static void print_version(const struct vhu_program *p)
{
	printf("%s %s (libvhu %s)\n", p->name,
	       p->info->version ? p->info->version : VHU_VERSION_STRING, VHU_VERSION_STRING);
}

/* A JSON string (the names are the device's, but a quote in one must not
 * make the output invalid). */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* vhost-user.json's VHostUserBackendCapabilities. */
static void print_capabilities(const struct vhu_program_info *in)
{
	const char *const *f = in->features;

	printf("{\n  \"type\": ");
	json_str(in->type);
	if (f && *f) {
		printf(",\n  \"features\": [\n");
		for (; *f; f++) {
			printf("    ");
			json_str(*f);
			printf("%s\n", f[1] ? "," : "");
		}
		printf("  ]");
	}
	printf("\n}\n");
}

/* The conventions: with --print-capabilities, other options are ignored. */
static bool wants_capabilities(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--print-capabilities") == 0)
			return true;
	return false;
}

/* ---- sockets ----------------------------------------------------------- */

static struct vhu_prog_sock *sock_slot(struct vhu_program *p)
{
	struct vhu_prog_sock *s;

	if (p->nsocks == p->max_socks)
		return NULL;
	if (!p->socks && !(p->socks = calloc(p->max_socks, sizeof(*p->socks))))
		return NULL;
	s = &p->socks[p->nsocks];
	*s = (struct vhu_prog_sock){.fd = -1, .p = p};
	return s;
}

int vhu_program_add_socket(struct vhu_program *p, const char *path)
{
	struct vhu_prog_sock *s;

	if (!p || !path || !*path)
		return -EINVAL;
	for (unsigned i = 0; i < p->nsocks; i++)
		if (p->socks[i].path && !strcmp(p->socks[i].path, path))
			return -EINVAL;
	if (p->nsocks == p->max_socks)
		return -E2BIG;
	if (!(s = sock_slot(p)) || !(s->path = strdup(path)))
		return -ENOMEM;
	p->nsocks++;
	return 0;
}

static int add_fd(struct vhu_program *p, int fd)
{
	struct vhu_prog_sock *s;

	for (unsigned i = 0; i < p->nsocks; i++)
		if (p->socks[i].given_fd && p->socks[i].fd == fd)
			return vhu_program_usage_error(p, "the --fd numbers must differ (%d twice)",
			                               fd);
	if (!(s = sock_slot(p)))
		return -ENOMEM;
	s->fd = fd;
	s->given_fd = true;
	snprintf(s->name, sizeof(s->name), "--fd %d", fd);
	p->nsocks++;
	return 0;
}

/* One more socket from the command line: too many is a usage error. */
static int room_for_socket(struct vhu_program *p, bool is_fd)
{
	bool other = p->nsocks && (p->socks[0].given_fd != is_fd);

	if (p->nsocks < p->max_socks)
		return 0;
	if (p->max_socks > 1)
		return vhu_program_usage_error(p, "too many sockets (at most %u)", p->max_socks);
	if (other)
		return vhu_program_usage_error(p, "--socket-path and --fd exclude each other");
	return vhu_program_usage_error(p, "give one --socket-path PATH or --fd FD");
}

static int opt_socket(struct vhu_program *p, const char *arg)
{
	int err;

	if (!*arg)
		return vhu_program_usage_error(p, "--socket-path: empty path");
	if ((err = room_for_socket(p, false)))
		return err;
	err = vhu_program_add_socket(p, arg);
	if (err == -EINVAL)
		return vhu_program_usage_error(p, "the socket paths must differ ('%s' twice)", arg);
	return err;
}

static int opt_fd(struct vhu_program *p, const char *arg)
{
	uint64_t v;
	int err;

	if (!vhu_program_parse_uint(arg, 0, INT_MAX, &v))
		return vhu_program_usage_error(
		    p, "invalid --fd '%s': expected a file descriptor number", arg);
	if ((err = room_for_socket(p, true)))
		return err;
	return add_fd(p, (int)v);
}

/* ---- parsing ------------------------------------------------------------ */

static unsigned count_opts(const struct vhu_program_option *o)
{
	unsigned n = 0;

	while (o && (o[n].name || o[n].help))
		n++;
	return n;
}

static bool letter_taken(char c)
{
	return c == 's' || c == 'v' || c == 'h' || c == 'V';
}

static void add_getopt(struct option *lo, char *so, const struct vhu_program_option *o, int val)
{
	static const int has[] = {no_argument, required_argument, optional_argument};

	*lo = (struct option){o->name, has[o->arg <= VHU_PROGRAM_OPTIONAL_ARG ? o->arg : 0], NULL,
	                      val};
	if (o->short_name) {
		size_t n = strlen(so);

		so[n++] = o->short_name;
		if (o->arg == VHU_PROGRAM_ARG)
			so[n++] = ':';
		else if (o->arg == VHU_PROGRAM_OPTIONAL_ARG)
			so[n++] = ':', so[n++] = ':';
		so[n] = 0;
	}
}

/* getopt tables for the common and the device options; NULL if the info
 * is unusable (message printed). */
static struct option *build_getopt(struct vhu_program *p, char **shortopts)
{
	const struct vhu_program_option *dev = p->info->options;
	unsigned nd = count_opts(dev), k = 0;
	struct option *lo = calloc(nd + 8, sizeof(*lo));
	char *so = calloc(3 * nd + 16, 1);

	if (!lo || !so)
		goto fail;
	strcpy(so, ":");
	for (size_t i = 0; i < VHU_ARRAY_SIZE(common_opts); i++)
		add_getopt(&lo[k++], so, &common_opts[i], common_opts[i].key);
	for (size_t i = 0; i < VHU_ARRAY_SIZE(tail_opts); i++)
		add_getopt(&lo[k++], so, &tail_opts[i], tail_opts[i].key);
	for (unsigned i = 0; i < nd; i++) {
		if (!dev[i].name)
			continue;
		if (dev[i].short_name &&
		    (letter_taken(dev[i].short_name) || (unsigned char)dev[i].short_name >= 0x80 ||
		     strchr(so, dev[i].short_name))) {
			fprintf(stderr, "%s: option table: -%c is taken\n", p->name,
			        dev[i].short_name);
			goto fail;
		}
		add_getopt(&lo[k++], so, &dev[i], OPT_DEV + (int)i);
	}
	*shortopts = so;
	return lo;
fail:
	free(lo);
	free(so);
	return NULL;
}

/* The device option getopt returned (a short letter or OPT_DEV + i). */
static const struct vhu_program_option *dev_opt(const struct vhu_program *p, int c)
{
	const struct vhu_program_option *o = p->info->options;
	unsigned n = count_opts(o);

	if (c >= OPT_DEV && (unsigned)(c - OPT_DEV) < n)
		return &o[c - OPT_DEV];
	for (unsigned i = 0; i < n; i++)
		if (o[i].name && o[i].short_name == c)
			return &o[i];
	return NULL;
}

/* "--NAME=VALUE" for an option NAME that takes no value? */
static bool takes_no_value(const struct vhu_program *p, const char *a)
{
	const struct vhu_program_option *o = p->info->options;
	size_t n = strcspn(a, "=");

	if (strncmp(a, "--", 2) || !a[n])
		return false;
	a += 2;
	n -= 2;
	for (size_t i = 0; i < VHU_ARRAY_SIZE(tail_opts); i++)
		if (strlen(tail_opts[i].name) == n && !strncmp(tail_opts[i].name, a, n))
			return true;
	for (size_t i = 0; i < VHU_ARRAY_SIZE(common_opts); i++)
		if (common_opts[i].arg == VHU_PROGRAM_NO_ARG && strlen(common_opts[i].name) == n &&
		    !strncmp(common_opts[i].name, a, n))
			return true;
	for (; o && (o->name || o->help); o++)
		if (o->name && o->arg == VHU_PROGRAM_NO_ARG && strlen(o->name) == n &&
		    !strncmp(o->name, a, n))
			return true;
	return false;
}

/* Returns 0 to go on, 1 when done (help, version), or -errno. */
static int one_option(struct vhu_program *p, int c, const char *arg, const char *argv_opt)
{
	const struct vhu_program_option *o;
	int err;

	switch (c) {
	case 's':
		return opt_socket(p, arg);
	case OPT_FD:
		return opt_fd(p, arg);
	case OPT_CLIENT:
		p->client = true;
		return 0;
	case 'v':
		p->verbose++;
		return 0;
	case 'h':
		print_help(p);
		return 1;
	case 'V':
		print_version(p);
		return 1;
	case ':':
		return vhu_program_usage_error(p, "option '%s' needs a value", argv_opt);
	case '?':
		if (takes_no_value(p, argv_opt))
			return vhu_program_usage_error(p, "option '%.*s' takes no value",
			                               (int)strcspn(argv_opt, "="), argv_opt);
		return vhu_program_usage_error(p, "unknown option '%s'", argv_opt);
	}
	o = dev_opt(p, c);
	if (!o || !p->info->parse_option)
		return vhu_program_usage_error(p, "unknown option '%s'", argv_opt);
	p->error_printed = false;
	err = p->info->parse_option(p, p->info->ctx, o->key, arg);
	if (err && !p->error_printed)
		vhu_program_usage_error(p, "invalid --%s '%s'", o->name, arg ? arg : "");
	return err < 0 ? err : 0;
}

/* The option getopt was looking at, for messages. */
static const char *opt_text(int argc, char **argv, int c, char *buf, size_t len)
{
	const char *a = optind > 0 && optind <= argc ? argv[optind - 1] : "";

	/* A short option may sit in a bundle ("-qx"): name the letter. */
	if ((c == '?' || c == ':') && strncmp(a, "--", 2) && optopt > 0 && optopt < 0x80) {
		snprintf(buf, len, "-%c", optopt);
		return buf;
	}
	return a;
}

static int parse_args(struct vhu_program *p, int argc, char **argv)
{
	char *so = NULL, buf[8];
	struct option *lo = build_getopt(p, &so);
	int c, rc = 0;

	if (!lo)
		return -EINVAL;
	opterr = 0; /* our own messages */
	optind = 0; /* full re-initialisation (glibc) */
	while (!rc && (c = getopt_long(argc, argv, so, lo, NULL)) != -1)
		rc = one_option(p, c, optarg, opt_text(argc, argv, c, buf, sizeof(buf)));
	for (; !rc && optind < argc; optind++) {
		if (!p->info->parse_arg) {
			rc = vhu_program_usage_error(p, "unexpected argument '%s'", argv[optind]);
			break;
		}
		p->error_printed = false;
		rc = p->info->parse_arg(p, p->info->ctx, argv[optind]);
		if (rc && !p->error_printed)
			vhu_program_usage_error(p, "invalid argument '%s'", argv[optind]);
	}
	free(lo);
	free(so);
	return rc;
}

/* After the command line: the device's check, then a socket is needed. */
static int check_args(struct vhu_program *p)
{
	int rc = 0;

	if (p->info->check) {
		p->error_printed = false;
		rc = p->info->check(p, p->info->ctx);
		if (rc && !p->error_printed)
			vhu_program_usage_error(p, "invalid combination of options");
	}
	if (!rc && !p->nsocks)
		rc = vhu_program_usage_error(p, "one of --socket-path or --fd is required");
	for (unsigned i = 0; !rc && p->client && i < p->nsocks; i++)
		if (p->socks[i].given_fd)
			rc = vhu_program_usage_error(
			    p,
			    "--client connects to --socket-path PATH; an --fd is served as it is");
	return rc;
}

/* Status for NULL from vhu_program_new: 0 done, 1 failure, 2 usage. */
static int parse_status(struct vhu_program *p, int rc)
{
	if (rc == 1)
		return VHU_PROGRAM_EXIT_OK;
	if (rc == -ENOMEM) {
		fprintf(stderr, "%s: out of memory\n", p->name);
		return VHU_PROGRAM_EXIT_FAILURE;
	}
	return p->error_printed ? VHU_PROGRAM_EXIT_USAGE : VHU_PROGRAM_EXIT_FAILURE;
}

struct vhu_program *vhu_program_new(const struct vhu_program_info *info, int argc, char **argv,
                                    int *status)
{
	struct vhu_program *p;
	sigset_t set;
	int rc;

	*status = VHU_PROGRAM_EXIT_FAILURE;
	if (!info || !info->name || !info->type || argc < 1 || !argv)
		return NULL;
	if (wants_capabilities(argc, argv)) {
		print_capabilities(info);
		*status = VHU_PROGRAM_EXIT_OK;
		return NULL;
	}
	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	p->info = info;
	p->name = info->name;
	p->max_socks = info->max_sockets ? info->max_sockets : 1;
	p->done_fd = -1;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &p->old_mask);
	vhu_log_set_prefix(info->name);
	rc = parse_args(p, argc, argv);
	if (!rc && !(rc = check_args(p)) && p->verbose)
		vhu_log_set_level(p->verbose > 1 ? VHU_LOG_DEBUG : VHU_LOG_INFO);
	if (rc) {
		*status = parse_status(p, rc);
		vhu_program_free(p);
		return NULL;
	}
	*status = VHU_PROGRAM_EXIT_OK;
	return p;
}

unsigned vhu_program_num_sockets(const struct vhu_program *p)
{
	return p ? p->nsocks : 0;
}

const char *vhu_program_socket_path(const struct vhu_program *p, unsigned i)
{
	return p && i < p->nsocks ? p->socks[i].path : NULL;
}

const char *vhu_program_socket_name(const struct vhu_program *p, unsigned i)
{
	if (!p || i >= p->nsocks)
		return NULL;
	return p->socks[i].path ? p->socks[i].path : p->socks[i].name;
}

bool vhu_program_client(const struct vhu_program *p)
{
	return p && p->client;
}

unsigned vhu_program_verbosity(const struct vhu_program *p)
{
	return p ? p->verbose : 0;
}

int vhu_program_set_daemon(struct vhu_program *p, unsigned i, struct vhu_daemon *d)
{
	if (!p || i >= p->nsocks || !d)
		return -EINVAL;
	p->socks[i].d = d;
	return 0;
}

void vhu_program_free(struct vhu_program *p)
{
	struct timespec zero = {0, 0};
	sigset_t set;

	if (!p)
		return;
	vhu_prog_socks_release(p);
	for (unsigned i = 0; i < p->nsocks; i++)
		free(p->socks[i].path);
	free(p->socks);
	/* A signal that came after run() returned asked for what is
	 * happening anyway: drop it rather than die of it now. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &p->old_mask, NULL);
	free(p);
}
