// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `natsplice relay run`: settings, start-up and the event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/capability.h>

#include "relay.h"
#include "cli.h"
#include "log.h"
#include "privs.h"
#include "util.h"
#include "yconf.h"

#define GC_INTERVAL_MS 250

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

const __u32 *relay_addr(const struct relay *r, __u8 family)
{
	if (family == NS_AF_INET)
		return r->cfg.has4 ? r->cfg.addr4 : NULL;
	return r->cfg.has6 ? r->cfg.addr6 : NULL;
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

static void relay_run_usage(FILE *f)
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

static void on_watch(struct ns_loop *l, struct ns_watch *nw, __u32 events)
{
	struct relay_watch *w = nw->data;

	w->fn(w->r, w, events);
}

/* The loop drops the not yet dispatched events of a watch deleted in a
 * callback: a splice freed by one event never sees the next. */
int relay_watch_add(struct relay *r, struct relay_watch *w, __u32 events)
{
	w->r = r;
	w->nw.fn = on_watch;
	w->nw.fd = w->fd;
	w->nw.data = w;
	return ns_loop_add(r->loop, &w->nw, events);
}

int relay_watch_mod(struct relay *r, struct relay_watch *w, __u32 events)
{
	return ns_loop_mod(r->loop, &w->nw, events);
}

void relay_watch_del(struct relay *r, struct relay_watch *w)
{
	if (w->fd >= 0)
		ns_loop_del(r->loop, &w->nw);
}

static void on_ring(struct relay *r, struct relay_watch *w, __u32 events)
{
	relay_bpf_ring_poll(r);
}

static void on_gc(struct ns_loop *l, struct ns_timer *t)
{
	struct relay *r = t->data;

	relay_gc(r);
	relay_broker_tick(r);
	ns_timer_arm(l, t, GC_INTERVAL_MS);
}

static int device_mss(struct relay *r)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int mtu = 1500;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", r->cfg.dev);
	if (fd >= 0 && !ioctl(fd, SIOCGIFMTU, &ifr))
		mtu = ifr.ifr_mtu;
	if (fd >= 0)
		close(fd);
	r->mss4 = mtu - 40;	/* IPv4 + TCP headers without options */
	r->mss6 = mtu - 60;
	return 0;
}

/* bpf_fib_lookup answers FWD_DISABLED unless forwarding is on for the
 * ingress device: a relay forwards, so turn it on for DEV. */
static void enable_forwarding(struct relay *r)
{
	static const char *const fmt[] = {
		"/proc/sys/net/ipv4/conf/%s/forwarding",
		"/proc/sys/net/ipv6/conf/%s/forwarding",
	};
	char path[128];
	int i;

	for (i = 0; i < 2; i++) {
		FILE *f;

		if ((i == 0 && !r->cfg.has4) || (i == 1 && !r->cfg.has6))
			continue;
		snprintf(path, sizeof(path), fmt[i], r->cfg.dev);
		f = fopen(path, "w");
		if (!f || fputs("1", f) < 0)
			log_warn("cannot enable forwarding (%s): spliced packets will be "
				 "dropped as 'fib'", path);
		if (f)
			fclose(f);
	}
}

static int setup_loop(struct relay *r)
{
	int err;

	err = ns_loop_signals(r->loop, &r->stop, NULL);
	if (err)
		return err;
	ns_timer_arm(r->loop, &r->gc_t, GC_INTERVAL_MS);
	if (r->bpf) {
		r->ring_w.fd = relay_bpf_ring_fd(r);
		r->ring_w.fn = on_ring;
		err = relay_watch_add(r, &r->ring_w, EPOLLIN);
	}
	return err;
}

/*
 * --mode auto becomes xdp or tc, once, before anything is loaded; the log
 * says which and why. An explicit --mode xdp on a device where XDP is a
 * trap starts anyway, with a warning that names the trap and the fix.
 */
static void resolve_mode(struct relay *r)
{
	char driver[64], why[RELAY_WHY_LEN];
	const char *trap;

	relay_dev_driver(r->cfg.dev, driver, sizeof(driver));
	if (r->cfg.mode == RELAY_AUTO) {
		if (relay_bpf_xdp_attached(r->cfg.dev)) {
			r->cfg.mode = RELAY_XDP;
			snprintf(why, sizeof(why), "xdp: a relay's XDP program is on %s already, "
				 "and its splices keep running there", r->cfg.dev);
		} else {
			r->cfg.mode = relay_auto_mode(driver, why, sizeof(why));
		}
		log_info("mode auto: %s", why);
	} else if (r->cfg.mode == RELAY_XDP && (trap = relay_xdp_trap(driver))) {
		log_warn("--mode xdp on %s (driver %s): %s. Use --mode tc or auto; to keep "
			 "XDP, attach an XDP program to the peer of a veth (natsplice dev pass "
			 "PEER) and turn TX checksum offload off where traffic is generated "
			 "(ethtool -K DEV tx off)", r->cfg.dev, driver, trap);
	}
}

/*
 * Once the programs are attached and every socket is open, nothing the
 * daemon does needs root: it becomes cfg.user, keeping CAP_BPF alone (map
 * reads and writes: distributions forbid unprivileged bpf()), none at all in
 * userspace mode, with no_new_privs. Broker messages and punted packets are
 * parsed only after this.
 */
static int relay_drop_root(struct relay *r)
{
	__u64 keep = r->cfg.mode == RELAY_USER ? 0 : NS_CAP(CAP_BPF);
	const char *what;
	int err;

	if (geteuid() != 0)
		return 0;
	if (!strcmp(r->cfg.user, "root")) {
		log_warn("user: root: the daemon keeps running as root");
		return 0;
	}
	err = ns_drop_privileges(r->cfg.user, keep, &what);
	if (err) {
		log_err("cannot become user %s (%s): %s", r->cfg.user, what, strerror(-err));
		return err;
	}
	log_info("running as user %s (uid %u) with %s", r->cfg.user, getuid(),
		 keep ? "CAP_BPF only" : "no capabilities");
	return 0;
}

static int relay_start(struct relay *r)
{
	char a4[NS_ADDRSTRLEN] = "", a6[NS_ADDRSTRLEN] = "";
	int err, n = 0;

	r->ifindex = if_nametoindex(r->cfg.dev);
	if (!r->ifindex) {
		log_err("unknown device '%s'", r->cfg.dev);
		return -ENODEV;
	}
	device_mss(r);
	r->by_id = calloc(RELAY_ID_BUCKETS, sizeof(*r->by_id));
	r->by_port = calloc(65536, sizeof(*r->by_port));
	r->port_refs = calloc(65536, sizeof(*r->port_refs));
	r->loop = ns_loop_new();
	if (!r->by_id || !r->by_port || !r->port_refs || !r->loop)
		return -ENOMEM;
	ns_timer_init(&r->gc_t, on_gc, r);
	r->next_id = 1;
	/* (userspace mode answers through its own sockets) */
	err = r->cfg.mode == RELAY_USER ? 0 : relay_send_open(r);
	if (err) {
		log_err("raw socket: %s", strerror(-err));
		return err;
	}
	/* The control socket first: a second daemon must not touch the dataplane. */
	err = relay_ctl_open(r);
	if (err)
		return err;
	resolve_mode(r);
	if (r->cfg.mode != RELAY_USER) {
		enable_forwarding(r);
		err = relay_bpf_open(r);
		if (err)
			return err;
		n = relay_bpf_restore(r);
		if (n < 0)
			return n;
		if (n)
			log_info("took over %d splices from the pinned state", n);
	}
	err = setup_loop(r);
	if (!err)
		err = relay_broker_open(r);
	if (err)
		return err;
	if (r->cfg.has4)
		ns_addr_str(NS_AF_INET, r->cfg.addr4, a4, sizeof(a4));
	if (r->cfg.has6)
		ns_addr_str(NS_AF_INET6, r->cfg.addr6, a6, sizeof(a6));
	log_info("relay ready: dev %s mode %s address %s%s%s ports %u-%u splices %d",
		 r->cfg.dev, mode_names[r->cfg.mode], a4, *a4 && *a6 ? "," : "", a6,
		 r->cfg.port_lo, r->cfg.port_hi, n);
	return 0;
}

static void relay_stop(struct relay *r)
{
	struct relay_splice *sp, *next;

	relay_ctl_close(r);
	if (r->cfg.mode == RELAY_USER) {
		/* The connections live in this process and end with it. */
		for (sp = r->head; sp; sp = next) {
			next = sp->next;
			relay_splice_delete(r, sp, "relay stopped");
		}
	} else {
		/* BPF mode: leave table and splices pinned for the next daemon. */
		for (sp = r->head; sp; sp = next) {
			next = sp->next;
			free(sp);
		}
		r->head = NULL;
	}
	relay_broker_close(r);
	relay_bpf_close(r);
	free(r->by_id);
	free(r->by_port);
	free(r->port_refs);
	if (r->loop)
		ns_timer_cancel(r->loop, &r->gc_t);
	ns_loop_free(r->loop);
	if (r->raw4 >= 0)
		close(r->raw4);
	if (r->raw6 >= 0)
		close(r->raw6);
}

static int relay_loop(struct relay *r)
{
	int err = ns_loop_run(r->loop, &r->stop);

	if (!err)
		log_info("stopping (the dataplane stays in place)");
	return err;
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

static int relay_run(struct cli *cli, int argc, char **argv)
{
	struct relay r = { .ctl_fd = -1, .raw4 = -1, .raw6 = -1 };
	const char *config = NULL;
	char msg[256];
	int opt, err, verbose = cli->verbose;

	cfg_defaults(&r.cfg);
	if (cli->socket)
		snprintf(r.cfg.sock_path, sizeof(r.cfg.sock_path), "%s", cli->socket);
	/* First pass: the file, so the command line overrides it. */
	opterr = 0;
	optind = 0;	/* 0: re-initialise getopt (the global '+' mode) */
	while ((opt = getopt_long(argc, argv, "f:nvh", run_opts, NULL)) != -1)
		if (opt == 'f')
			config = optarg;
	if (config && cfg_load(&r.cfg, config))
		return 1;
	opterr = 1;
	optind = 0;
	while ((opt = getopt_long(argc, argv, "f:nvh", run_opts, NULL)) != -1) {
		if (opt == 'f')
			continue;
		if (opt == 'n') {
			r.cfg.check_only = true;
			continue;
		}
		if (opt == 'v') {
			verbose++;
			continue;
		}
		if (opt == 'h') {
			relay_run_usage(stdout);
			return 0;
		}
		if (opt == '?' || opt < OPT_DEV) {
			fprintf(stderr, "Try 'natsplice relay help'.\n");
			return 2;
		}
		if (cfg_set(&r.cfg, run_opts[opt - OPT_DEV].name, optarg, msg, sizeof(msg))) {
			fprintf(stderr, "Error: %s\n", msg);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "Error: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (cfg_check(&r.cfg))
		return 2;
	if ((!r.cfg.sock_path[0] &&
	     relay_default_sock(r.cfg.dev, r.cfg.sock_path, sizeof(r.cfg.sock_path))) ||
	    (!r.cfg.pin_dir[0] &&
	     relay_default_pin_dir(r.cfg.dev, r.cfg.pin_dir, sizeof(r.cfg.pin_dir)))) {
		fprintf(stderr, "Error: the device name is too long for the default paths\n");
		return 2;
	}
	if (r.cfg.check_only) {
		printf("configuration OK\n");
		return 0;
	}
	ns_log_init("natsplice", NS_LOG_INFO + verbose);
	ns_log_route_libbpf();
	if (geteuid() != 0 && r.cfg.mode != RELAY_USER) {
		log_err("relay run must run as root (CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW); "
			"only --mode userspace runs as any user");
		return 1;
	}
	err = relay_start(&r);
	if (!err)
		err = relay_drop_root(&r);
	if (!err)
		err = relay_loop(&r);
	relay_stop(&r);
	return err ? 1 : 0;
}

int cmd_relay(struct cli *cli, int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{ "run", relay_run },
		{ NULL, NULL },
	};

	return cli_object(cli, "relay", cmds, relay_run_usage, argc, argv);
}
