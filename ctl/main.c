// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* natsplice: the relay control tool. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli.h"
#include "log.h"
#include "relay.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: natsplice [OPTIONS] OBJECT COMMAND [ARGS]\n"
"       natsplice OBJECT help\n"
"\n"
"OBJECT := { relay | splice | stats | dev | broker }\n"
"  relay run ...             run the relay daemon (natsplice relay help)\n"
"  splice add|list|show|del  manage splices on the running relay\n"
"  stats                     verdict and drop-reason counters of the dataplane\n"
"  dev show|detach           where the programs are attached; take them off\n"
"  broker agents|services|sessions|relays|discover\n"
"                            a running broker's view, from its HTTP API; test\n"
"                            an agent's NAT again (discover AGENT)\n"
"\n"
"OPTIONS:\n"
"  -j, --json          JSON output (errors as {\"error\": \"...\"})\n"
"  -p, --pretty        indented JSON (implies -j)\n"
"  -S, --socket PATH   relay control socket (or $NATSPLICE_SOCKET; default: the\n"
"                      one relay of this network namespace, %s/relay-*.sock)\n"
"  -v, --verbose       more log output (repeatable)\n"
"  -h, --help          this text\n"
"  -V, --version       print the version\n"
"Commands and objects may be abbreviated to an unambiguous prefix.\n",
		RELAY_RUN_DIR);
}

int cli_is_help(const char *w)
{
	return !strcmp(w, "help") || !strcmp(w, "-h") || !strcmp(w, "--help");
}

int cli_fail(struct cli *cli, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ns_out_error(cli->out, "%s", msg);
	return status;
}

int cli_dispatch(struct cli *cli, const char *object, const struct cli_cmd *cmds, int argc,
		 char **argv)
{
	const struct cli_cmd *hit = NULL;
	size_t len = strlen(argv[0]);
	int i, n = 0;

	for (i = 0; cmds[i].name; i++) {
		if (!strcmp(cmds[i].name, argv[0])) {
			hit = &cmds[i];
			n = 1;
			break;
		}
		if (len && !strncmp(cmds[i].name, argv[0], len)) {
			hit = &cmds[i];
			n++;
		}
	}
	if (n == 1)
		return hit->fn(cli, argc, argv);
	return cli_fail(cli, 2, "%s %s '%s'; try 'natsplice %s%shelp'",
			n ? "ambiguous" : "unknown", object ? "command" : "object", argv[0],
			object ? object : "", object ? " " : "");
}

int cli_object(struct cli *cli, const char *object, const struct cli_cmd *cmds,
	       void (*usage)(FILE *f), int argc, char **argv)
{
	argc--;
	argv++;
	if (argc < 1 || cli_is_help(argv[0])) {
		usage(argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	return cli_dispatch(cli, object, cmds, argc, argv);
}

static int connect_daemon(struct cli *cli, int *fdp)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char found[sizeof(sun.sun_path)], names[1024];
	const char *path = cli->socket;
	int fd, e;

	if (!path) {
		if (relay_find_sock(found, sizeof(found), names, sizeof(names)))
			return cli_fail(cli, 1, "several relays run in this network namespace "
					"(%s): choose one with -S", names);
		path = found;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cli_fail(cli, 1, "socket: %s", strerror(errno));
	if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		*fdp = fd;
		return 0;
	}
	e = errno;
	close(fd);
	if (e == ENOENT || e == ECONNREFUSED)
		return cli_fail(cli, 1, "the relay daemon is not running (no one answers on %s; "
				"start it with 'natsplice relay run')", path);
	return cli_fail(cli, 1, "cannot reach the relay daemon on %s: %s%s", path, strerror(e),
			e == EACCES || e == EPERM ? " (run as root)" : "");
}

int cli_request(struct cli *cli, const struct ctl_req *req, size_t recsize, void **recs,
		size_t *nrecs)
{
	static __u8 buf[sizeof(struct ctl_resp) + CTL_BATCH * sizeof(struct ctl_splice)];
	const struct ctl_resp *h = (const struct ctl_resp *)buf;
	size_t have = 0;
	__u8 *all = NULL, *tmp;
	int fd = -1, ret;
	ssize_t n;

	*recs = NULL;
	*nrecs = 0;
	ret = connect_daemon(cli, &fd);
	if (ret)
		return ret;
	if (send(fd, req, sizeof(*req), MSG_NOSIGNAL) != (ssize_t)sizeof(*req)) {
		ret = cli_fail(cli, 1, "send to the relay daemon: %s", strerror(errno));
		goto out;
	}
	do {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < (ssize_t)sizeof(*h)) {
			ret = cli_fail(cli, 1, "the relay daemon closed the connection");
			goto out;
		}
		if (h->err) {
			ret = cli_fail(cli, 1, "%s", h->msg);
			goto out;
		}
		if ((size_t)n < sizeof(*h) + (size_t)h->count * recsize) {
			ret = cli_fail(cli, 1, "short reply from the relay daemon");
			goto out;
		}
		tmp = realloc(all, (have + h->count) * recsize + 1);
		if (!tmp) {
			ret = cli_fail(cli, 1, "out of memory");
			goto out;
		}
		all = tmp;
		memcpy(all + have * recsize, buf + sizeof(*h), h->count * recsize);
		have += h->count;
	} while (h->flags & CTL_F_MORE);
	*recs = all;
	*nrecs = have;
	all = NULL;
out:
	free(all);
	close(fd);
	return ret;
}

static const struct option opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "pretty", no_argument, NULL, 'p' },
	{ "socket", required_argument, NULL, 'S' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	static const struct cli_cmd objects[] = {
		{ "relay", cmd_relay },
		{ "splice", cmd_splice },
		{ "stats", cmd_stats },
		{ "dev", cmd_dev },
		{ "broker", cmd_broker },
		{ NULL, NULL },
	};
	struct cli cli = { .socket = getenv("NATSPLICE_SOCKET") };
	int opt, ret;

	ns_log_init("natsplice", NS_LOG_WARN);
	/* '+': stop at the object, its commands have their own options. */
	while ((opt = getopt_long(argc, argv, "+jpS:vhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			cli.json = 1;
			break;
		case 'p':
			cli.json = cli.pretty = 1;
			break;
		case 'S':
			cli.socket = optarg;
			break;
		case 'v':
			cli.verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("natsplice %s\n", NS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (cli.socket && !*cli.socket)
		cli.socket = NULL;
	argc -= optind;
	argv += optind;
	if (argc < 1 || cli_is_help(argv[0])) {
		usage(argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	cli.out = ns_out_new(stdout, cli.json, cli.pretty);
	if (!cli.out)
		return 1;
	ns_log_init("natsplice", NS_LOG_WARN + cli.verbose);
	ns_log_route_libbpf();
	ret = cli_dispatch(&cli, NULL, objects, argc, argv);
	ns_out_free(cli.out);
	return ret;
}
