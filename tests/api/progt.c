/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A program on libvhu's program helper for tests/api/program.sh: options of
 * every kind, positional arguments, up to three sockets, each served by its
 * own daemon of a device that fills device-writable buffers with 'x'.
 * Environment: PROGT_PRINT (print what was parsed), PROGT_DEFAULT (a default socket added by check
 * when none was given), PROGT_MAXCONN (max_connections of the first daemon), PROGT_SIGTERM_EARLY
 * (raise SIGTERM before serving), PROGT_BAD_TABLE (an option letter the helper owns).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vhu/vhu.h>

enum { OPT_FLAG = 1, OPT_NUM, OPT_OPT };

static struct {
	bool flag;
	uint64_t num;
	const char *opt;
	char args[256];
} cli;

static int handle_event(void *dev, uint16_t ev, uint32_t evset, struct vhu_vring **vrings,
                        unsigned nvrings, unsigned thread)
{
	static const char xs[64] =
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	struct iovec iov[8];
	struct vhu_chain c = {.iov = iov, .iov_max = 8};

	while (vhu_vring_pop(vrings[0], &c) == 1)
		vhu_vring_push(vrings[0], &c, (uint32_t)vhu_chain_write(&c, 0, xs, sizeof(xs)));
	vhu_vring_notify(vrings[0]);
	return 0;
}

static const struct vhu_backend_ops ops = {
    .fixed = {.num_queues = 1,
              .max_queue_size = 64,
              .features = VHU_BIT(VHU_F_VERSION_1),
              .protocol_features = VHU_BIT(VHU_PF_REPLY_ACK)},
    .handle_event = handle_event,
};

static int parse_option(struct vhu_program *p, void *ctx, int key, const char *arg)
{
	switch (key) {
	case OPT_FLAG:
		cli.flag = true;
		return 0;
	case OPT_NUM:
		/* No message of our own: the helper prints a generic one. */
		return vhu_program_parse_uint(arg, 1, 10, &cli.num) ? 0 : -EINVAL;
	case OPT_OPT:
		cli.opt = arg ? arg : "(none)";
		return 0;
	}
	return -EINVAL;
}

static int parse_arg(struct vhu_program *p, void *ctx, const char *arg)
{
	if (strncmp(arg, "ok", 2))
		return -EINVAL;
	strncat(cli.args, arg, sizeof(cli.args) - strlen(cli.args) - 2);
	strcat(cli.args, " ");
	return 0;
}

static int check(struct vhu_program *p, void *ctx)
{
	const char *def = getenv("PROGT_DEFAULT");

	if (cli.opt && !cli.flag)
		return vhu_program_usage_error(p, "--opt needs --flag");
	if (def && !vhu_program_num_sockets(p))
		return vhu_program_add_socket(p, def);
	return 0;
}

static const struct vhu_program_option options[] = {
    {NULL, 0, 0, NULL, "Test options:", 0},
    {"flag", 'f', VHU_PROGRAM_NO_ARG, NULL, "a flag", OPT_FLAG},
    {"num", 'n', VHU_PROGRAM_ARG, "N", "a number, 1..10\nsecond line of help", OPT_NUM},
    {"opt", 0, VHU_PROGRAM_OPTIONAL_ARG, "X", "an optional value", OPT_OPT},
    {0},
};

static const struct vhu_program_option bad_options[] = {
    {"verbose-too", 'v', VHU_PROGRAM_NO_ARG, NULL, "takes the helper's -v", OPT_FLAG},
    {0},
};

static const char *const features[] = {"a", "b", NULL};

static struct vhu_program_info info = {
    .name = "progt",
    .version = "1.2.3",
    .summary = "program helper test",
    .usage_args = "[ARGS]",
    .help_footer = "The footer.",
    .type = "test",
    .features = features,
    .max_sockets = 3,
    .sockets_optional = true,
    .options = options,
    .parse_option = parse_option,
    .parse_arg = parse_arg,
    .check = check,
};

int main(int argc, char **argv)
{
	struct vhu_daemon *d[3] = {NULL, NULL, NULL};
	struct vhu_program *p;
	unsigned n;
	int status;

	if (getenv("PROGT_BAD_TABLE"))
		info.options = bad_options;
	if (!(p = vhu_program_new(&info, argc, argv, &status)))
		return status;
	n = vhu_program_num_sockets(p);
	if (getenv("PROGT_PRINT"))
		printf("flag=%d num=%llu opt=%s args=%ssockets=%u verbose=%u", cli.flag,
		       (unsigned long long)cli.num, cli.opt ? cli.opt : "-", cli.args, n,
		       vhu_program_verbosity(p));
	for (unsigned i = 0; getenv("PROGT_PRINT") && i < n; i++)
		printf(" [%s]", vhu_program_socket_name(p, i));
	if (getenv("PROGT_PRINT"))
		printf("\n");
	fflush(stdout);
	for (unsigned i = 0; i < n; i++) {
		struct vhu_daemon_config cfg = {.name = vhu_program_socket_name(p, i)};

		if (i == 0 && getenv("PROGT_MAXCONN"))
			cfg.max_connections = (unsigned)atoi(getenv("PROGT_MAXCONN"));
		if (vhu_daemon_new(&d[i], &ops, NULL, &cfg) < 0)
			return 1;
		vhu_program_set_daemon(p, i, d[i]);
	}
	if (getenv("PROGT_SIGTERM_EARLY"))
		raise(SIGTERM); /* blocked: stays pending until run() */
	status = vhu_program_run(p);
	for (unsigned i = 0; i < n; i++)
		vhu_daemon_free(d[i]);
	vhu_program_free(p);
	return status;
}
