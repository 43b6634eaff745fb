// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `natsplice relay run`: settings from the command line and relay.yaml, --help. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"
#include "privs.h"
#include "util.h"
#include "yconf.h"

static const char *const mode_names[] = { "xdp", "tc", "userspace", "auto" };

static void cfg_defaults(struct relay_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->mode = RELAY_AUTO;
	/* Below the usual ephemeral ranges (Linux 32768-60999, Windows
	 * 49152-65535): a pure splice's B connects to A's public source port,
	 * which must not be one of our own relay ports. */
	c->port_lo = 20000;
	c->port_hi = 20999;
	/* pin_dir and sock_path: per device and namespace once dev is known */
	c->half_open_s = 30;
	c->close_grace_s = 10;
	c->rst_grace_s = 10;
	c->idle_tcp_s = 2 * 3600;
	c->idle_udp_s = 300;
	snprintf(c->user, sizeof(c->user), "%s", NS_USER_DEFAULT);
}

/* One setting by name, from the command line or the file. 0 or -EINVAL with msg. */
static int cfg_set(struct relay_cfg *c, const char *key, const char *val, char *msg, size_t len)
{
	__u32 v;

	if (!strcmp(key, "dev")) {
		if (strlen(val) >= sizeof(c->dev))
			goto bad;
		snprintf(c->dev, sizeof(c->dev), "%s", val);
	} else if (!strcmp(key, "mode")) {
		for (v = 0; v < 4 && strcmp(val, mode_names[v]); v++)
			;
		if (v == 4) {
			snprintf(msg, len, "mode must be auto, xdp, tc or userspace, not '%s'", val);
			return -EINVAL;
		}
		c->mode = v;
	} else if (!strcmp(key, "address")) {
		__u32 a[4];
		__u8 fam;

		if (ns_parse_addr(val, &fam, a))
			goto bad;
		if (fam == NS_AF_INET) {
			c->has4 = true;
			memcpy(c->addr4, a, sizeof(a));
		} else {
			c->has6 = true;
			memcpy(c->addr6, a, sizeof(a));
		}
	} else if (!strcmp(key, "ports")) {
		if (ns_parse_port_range(val, &c->port_lo, &c->port_hi))
			goto bad;
	} else if (!strcmp(key, "pin-dir")) {
		if (strlen(val) >= sizeof(c->pin_dir) - 32 || val[0] != '/')
			goto bad;
		snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", val);
	} else if (!strcmp(key, "broker") || !strcmp(key, "name") || !strcmp(key, "secret")) {
		char *dst = key[0] == 'b' ? c->broker : key[0] == 'n' ? c->name : c->secret;
		size_t size = key[0] == 'b' ? sizeof(c->broker) : key[0] == 'n' ? sizeof(c->name) :
			      sizeof(c->secret);

		if (!*val || strlen(val) >= size)
			goto bad;
		snprintf(dst, size, "%s", val);
	} else if (!strcmp(key, "handshake")) {
		if (strcmp(val, "auto") && strcmp(val, "daemon")) {
			snprintf(msg, len, "handshake must be auto or daemon, not '%s'", val);
			return -EINVAL;
		}
		c->no_kmod = !strcmp(val, "daemon");
	} else if (!strcmp(key, "user")) {
		if (!*val || strlen(val) >= sizeof(c->user))
			goto bad;
		snprintf(c->user, sizeof(c->user), "%s", val);
	} else if (!strcmp(key, "socket")) {
		if (strlen(val) >= sizeof(c->sock_path))
			goto bad;
		snprintf(c->sock_path, sizeof(c->sock_path), "%s", val);
	} else {
		__u32 *dst = !strcmp(key, "half-open-timeout") ? &c->half_open_s :
			     !strcmp(key, "close-grace") ? &c->close_grace_s :
			     !strcmp(key, "rst-grace") ? &c->rst_grace_s :
			     !strcmp(key, "idle-tcp") ? &c->idle_tcp_s :
			     !strcmp(key, "idle-udp") ? &c->idle_udp_s : NULL;

		if (!dst) {
			snprintf(msg, len, "unknown setting '%s'", key);
			return -EINVAL;
		}
		if (ns_parse_u32(val, &v) || v > 7 * 24 * 3600)
			goto bad;
		*dst = v;
	}
	return 0;
bad:
	snprintf(msg, len, "bad value for %s: '%s'", key, val);
	return -EINVAL;
}

static const char *const file_keys[] = {
	"dev", "mode", "address", "ports", "pin-dir", "socket", "half-open-timeout",
	"close-grace", "rst-grace", "idle-tcp", "idle-udp", "broker", "name", "secret",
	"handshake", "user", NULL
};

/* relay.yaml: the same settings as the command line, errors with file:line:col. */
static int cfg_load(struct relay_cfg *c, const char *path)
{
	struct yc_node *root = NULL;
	char err[512], msg[256];
	size_t i, j;
	int ret;

	ret = yc_load_file(path, &root, err, sizeof(err));
	if (!ret)
		ret = yc_check_keys(root, file_keys, err, sizeof(err));
	for (i = 0; !ret && i < root->n; i++) {
		const struct yc_node *v = root->items[i];

		if (v->kind == YC_SEQ && !strcmp(root->keys[i], "address")) {
			for (j = 0; !ret && j < v->n; j++) {
				const char *s;

				ret = yc_scalar(v->items[j], &s, err, sizeof(err));
				if (!ret && cfg_set(c, "address", s, msg, sizeof(msg)))
					ret = yc_error(v->items[j], err, sizeof(err), "%s", msg);
			}
			continue;
		}
		if (v->kind != YC_SCALAR) {
			ret = yc_error(v, err, sizeof(err), "%s takes a single value",
				       root->keys[i]);
			break;
		}
		if (cfg_set(c, root->keys[i], v->value, msg, sizeof(msg)))
			ret = yc_error(v, err, sizeof(err), "%s", msg);
	}
	if (ret)
		fprintf(stderr, "%s\n", err);
	yc_free(root);
	return ret;
}

static int cfg_check(struct relay_cfg *c)
{
	if (!c->dev[0]) {
		fprintf(stderr, "Error: relay run needs --dev DEV\n");
		return -EINVAL;
	}
	if (!c->has4 && !c->has6) {
		fprintf(stderr, "Error: relay run needs --address IP (the relay's public address)\n");
		return -EINVAL;
	}
	return 0;
}

void relay_run_usage(FILE *f)
{
	fprintf(f,
"Usage: natsplice relay run --dev DEV --address IP [OPTIONS]\n"
"       natsplice relay run -f relay.yaml [OPTIONS]\n"
"       natsplice relay help\n"
"\n"
"Run the relay daemon in the foreground. It attaches the splice programs to DEV,\n"
"answers `natsplice splice ...` on the control socket, completes the handshakes of\n"
"spliced connections and collects finished splices. It prints a line containing\n"
"\"ready\" once it accepts splices. On SIGTERM it exits and leaves the dataplane in\n"
"place, so established splices keep flowing; a restarted daemon takes them over.\n"
"`natsplice dev detach DEV` removes the programs.\n"
"\n"
"Options (each is also a key of relay.yaml, without the dashes):\n"
"  --dev DEV                 network device facing the agents\n"
"  --mode auto|xdp|tc|userspace  dataplane (default auto: XDP where the\n"
"                            driver gives native XDP, TC on veth, tun, bridge\n"
"                            and other virtual devices, where XDP fails; the\n"
"                            log says which and why; userspace = splice(2)\n"
"                            proxy for hosts where BPF cannot be loaded)\n"
"  --address IP              the relay's public address; once per family\n"
"  --ports LO-HI             relay port range (default 20000-20999; keep it\n"
"                            out of the clients' ephemeral port ranges). A\n"
"                            port is held only while a splice waits for its\n"
"                            SYN: established splices share ports\n"
"  --pin-dir DIR             where maps and programs are pinned (default\n"
"                            %s/DEV, plus _nsINODE outside the\n"
"                            host's network namespace)\n"
"  --socket PATH             control socket (default %s/relay-DEV.sock,\n"
"                            likewise: two relays never share one)\n"
"  --half-open-timeout SEC   default deadline for the second side (default 30)\n"
"  --close-grace SEC         keep a splice's entries this long after FIN both\n"
"                            ways, for retransmitted FINs (default 10)\n"
"  --rst-grace SEC           ... or after an RST (default 10)\n"
"  --idle-tcp SEC            drop a TCP splice idle this long (default 7200)\n"
"  --idle-udp SEC            drop a UDP splice idle this long (default 300)\n"
"  --handshake auto|daemon   who answers the SYNs of passive TCP splices: auto\n"
"                            (default) = the kernel, through the natsplice_kmod\n"
"                            module's kfuncs, when it is loaded (bpf/kmod/,\n"
"                            make kmod), else this daemon; daemon = always\n"
"                            this daemon. The log says which at start.\n"
"  --broker IP:PORT          register with this broker and serve its splice\n"
"                            requests (needs --name and --secret; put the\n"
"                            secret in relay.yaml to keep it out of `ps`)\n"
"  --name NAME, --secret S   the relay's name and secret in broker.yaml\n"
"  --user NAME               once started, run as this user (default %s)\n"
"                            with CAP_BPF only (no capability in userspace\n"
"                            mode) and no_new_privs; root: stay root\n"
"  -f, --config FILE         read settings from a YAML file first\n"
"  -n                        check the settings, print \"configuration OK\", exit\n"
"  -v                        more log output (repeat for libbpf's messages)\n",
		NS_PIN_DIR_DEFAULT, RELAY_RUN_DIR, NS_USER_DEFAULT);
}

enum { OPT_DEV = 256, OPT_MODE, OPT_ADDRESS, OPT_PORTS, OPT_PIN_DIR, OPT_SOCKET,
	OPT_HALF_OPEN, OPT_CLOSE_GRACE, OPT_RST_GRACE, OPT_IDLE_TCP, OPT_IDLE_UDP, OPT_BROKER,
	OPT_NAME, OPT_SECRET, OPT_HANDSHAKE, OPT_USER };

static const struct option run_opts[] = {
	{ "dev", required_argument, NULL, OPT_DEV },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "address", required_argument, NULL, OPT_ADDRESS },
	{ "ports", required_argument, NULL, OPT_PORTS },
	{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "half-open-timeout", required_argument, NULL, OPT_HALF_OPEN },
	{ "close-grace", required_argument, NULL, OPT_CLOSE_GRACE },
	{ "rst-grace", required_argument, NULL, OPT_RST_GRACE },
	{ "idle-tcp", required_argument, NULL, OPT_IDLE_TCP },
	{ "idle-udp", required_argument, NULL, OPT_IDLE_UDP },
	{ "broker", required_argument, NULL, OPT_BROKER },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "secret", required_argument, NULL, OPT_SECRET },
	{ "handshake", required_argument, NULL, OPT_HANDSHAKE },
	{ "user", required_argument, NULL, OPT_USER },
	{ "config", required_argument, NULL, 'f' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* End the run with this exit status. */
static int done(int *status, int code)
{
	*status = code;
	return 1;
}

/*
 * The settings of one run: defaults, then the file (-f), then the command
 * line; sock is the CLI's -S (NULL: none). Returns 0 to run, or 1 with the
 * exit status in *status (--help, -n, or an error already printed).
 */
int relay_cfg_parse(struct relay_cfg *c, const char *sock, int argc, char **argv, int *verbose,
		    int *status)
{
	const char *config = NULL;
	char msg[256];
	int opt;

	cfg_defaults(c);
	if (sock)
		snprintf(c->sock_path, sizeof(c->sock_path), "%s", sock);
	/* First pass: the file, so the command line overrides it. */
	opterr = 0;
	optind = 0;	/* 0: re-initialise getopt (the global '+' mode) */
	while ((opt = getopt_long(argc, argv, "f:nvh", run_opts, NULL)) != -1)
		if (opt == 'f')
			config = optarg;
	if (config && cfg_load(c, config))
		return done(status, 1);
	opterr = 1;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "f:nvh", run_opts, NULL)) != -1) {
		if (opt == 'f')
			continue;
		if (opt == 'n') {
			c->check_only = true;
			continue;
		}
		if (opt == 'v') {
			(*verbose)++;
			continue;
		}
		if (opt == 'h') {
			relay_run_usage(stdout);
			return done(status, 0);
		}
		if (opt == '?' || opt < OPT_DEV) {
			fprintf(stderr, "Try 'natsplice relay help'.\n");
			return done(status, 2);
		}
		if (cfg_set(c, run_opts[opt - OPT_DEV].name, optarg, msg, sizeof(msg))) {
			fprintf(stderr, "Error: %s\n", msg);
			return done(status, 2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "Error: unexpected argument '%s'\n", argv[optind]);
		return done(status, 2);
	}
	if (cfg_check(c))
		return done(status, 2);
	if ((!c->sock_path[0] &&
	     relay_default_sock(c->dev, c->sock_path, sizeof(c->sock_path))) ||
	    (!c->pin_dir[0] &&
	     relay_default_pin_dir(c->dev, c->pin_dir, sizeof(c->pin_dir)))) {
		fprintf(stderr, "Error: the device name is too long for the default paths\n");
		return done(status, 2);
	}
	if (c->check_only) {
		printf("configuration OK\n");
		return done(status, 0);
	}
	return 0;
}

const char *relay_mode_name(enum relay_mode mode)
{
	return mode <= RELAY_AUTO ? mode_names[mode] : "?";
}
