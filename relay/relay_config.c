// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `natsplice relay run`: settings from the command line and relay.yaml, --help. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"
#include "log.h"
#include "privs.h"
#include "settings.h"
#include "util.h"
#include "yconf.h"

static const char *const mode_names[] = { "xdp", "tc", "userspace", "auto", NULL };

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
	c->public_half_open = 1024;
	c->public_syn_rate = 100;
	c->echo_port = NS_ECHO_PORT;
	snprintf(c->user, sizeof(c->user), "%s", NS_USER_DEFAULT);
}

static int set_address(void *cfg, const char *val, char *msg, size_t len)
{
	struct relay_cfg *c = cfg;
	__u32 a[4];
	__u8 fam;

	if (ns_parse_addr(val, &fam, a))
		return -EINVAL;
	if (fam == NS_AF_INET) {
		c->has4 = true;
		memcpy(c->addr4, a, sizeof(a));
	} else {
		c->has6 = true;
		memcpy(c->addr6, a, sizeof(a));
	}
	return 0;
}

static int set_public_address(void *cfg, const char *val, char *msg, size_t len)
{
	struct relay_cfg *c = cfg;
	__u8 fam;

	if (ns_parse_addr(val, &fam, c->pub4) || fam != NS_AF_INET)
		return -EINVAL;
	c->has_pub4 = true;
	return 0;
}

static int set_ports(void *cfg, const char *val, char *msg, size_t len)
{
	struct relay_cfg *c = cfg;

	return ns_parse_port_range(val, &c->port_lo, &c->port_hi);
}

static int set_public_ports(void *cfg, const char *val, char *msg, size_t len)
{
	struct relay_cfg *c = cfg;
	__u16 lo, hi;

	if (ns_parse_port_range(val, &lo, &hi))
		return -EINVAL;
	if (c->npublic_ports == RELAY_PUBLIC_RANGES) {
		snprintf(msg, len, "at most %d ranges", RELAY_PUBLIC_RANGES);
		return -EINVAL;
	}
	c->public_ports[c->npublic_ports].lo = lo;
	c->public_ports[c->npublic_ports++].hi = hi;
	return 0;
}

/* Room is left for the names of the pinned maps and programs. */
static int set_pin_dir(void *cfg, const char *val, char *msg, size_t len)
{
	struct relay_cfg *c = cfg;

	if (val[0] != '/' || strlen(val) >= sizeof(c->pin_dir) - 32)
		return -EINVAL;
	snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", val);
	return 0;
}

static int set_pin(void *cfg, const char *val, char *msg, size_t len)
{
	return ns_tls_client_set_pin(&((struct relay_cfg *)cfg)->tls, val);
}

static int set_metrics_token(void *cfg, const char *val, char *msg, size_t len)
{
	return ns_http_token_add(&((struct relay_cfg *)cfg)->metrics_tokens, val, msg, len);
}

static const char *const handshake_names[] = { "auto", "daemon", NULL };

#define CFG(f) NS_FIELD(struct relay_cfg, f)
#define WEEK (7 * 24 * 3600)

static const struct ns_setting settings[] = {
	{ .name = "dev", .type = NS_SET_STR, CFG(dev), .flags = NS_SET_REQUIRED,
	  .arg = "DEV", .help = "network device facing the agents" },
	{ .name = "mode", .type = NS_SET_ENUM, CFG(mode), .names = mode_names,
	  .arg = "auto|xdp|tc|userspace",
	  .help = "dataplane (default auto: XDP where the driver gives native XDP, TC on veth, "
		  "tun, bridge and other virtual devices, where XDP fails; the log says which "
		  "and why; userspace = splice(2) proxy for hosts where BPF cannot be loaded)" },
	{ .name = "address", .type = NS_SET_FUNC, .parse = set_address, .flags = NS_SET_REPEAT,
	  .what = "an IPv4 or IPv6 address", .arg = "IP",
	  .help = "the relay's public address; once per family (in the file: one address "
		  "or a list)" },
	{ .name = "ports", .type = NS_SET_FUNC, .parse = set_ports,
	  .what = "LO-HI or PORT, 1-65535", .arg = "LO-HI",
	  .help = "relay port range (default 20000-20999; keep it out of the clients' "
		  "ephemeral port ranges). A port is held only while a splice waits for its "
		  "SYN: established splices share ports" },
	{ .name = "public-ports", .type = NS_SET_FUNC, .parse = set_public_ports,
	  .flags = NS_SET_REPEAT, .what = "LO-HI or PORT, 1-65535", .arg = "LO-HI",
	  .help = "ports the broker may open on this relay's address for clients with no "
		  "agent (a service's expose:); once per range, at most 8 (in the file: a "
		  "list); outside the relay port range. Default: none" },
	{ .name = "public-half-open", .type = NS_SET_U32, CFG(public_half_open), .min = 1,
	  .max = NS_MAX_SPLICES / 2, .arg = "N",
	  .help = "clients' SYNs held for their providers at once, all public ports together "
		  "(default 1024; each holds a relay port and about 1 KiB). When full, the "
		  "public port holding the most gives up its SYN from the source /24 (/48) "
		  "holding the most, the oldest: a flood at one port evicts its own" },
	{ .name = "public-syn-rate", .type = NS_SET_U32, CFG(public_syn_rate), .min = 1,
	  .max = 1000000, .arg = "N",
	  .help = "new clients a second (burst: twice as many) a public port holds at once; "
		  "beyond that a new client is first challenged: its SYN is answered with a "
		  "SYN-ACK it must refuse with an RST that proves its address (Linux clients "
		  "then send their SYN again at once), so a flood of forged SYNs holds "
		  "nothing (default 100)" },
	{ .name = "max-splices", .type = NS_SET_U32, CFG(max_splices), .max = NS_MAX_SPLICES,
	  .arg = "N",
	  .help = "splices at once at most; beyond, the broker's requests are answered BUSY "
		  "(default 0: the table's size, 65536)" },
	{ .name = "max-bandwidth", .type = NS_SET_U32, CFG(max_bw_mbit), .max = 1000000,
	  .arg = "MBIT",
	  .help = "Mbit/s the relay forwards at most, both directions of all splices together "
		  "(default 0: no cap). In the kernel (xdp, tc) a packet over the cap is "
		  "dropped and TCP slows down; in userspace mode the relay stops reading. "
		  "Bursts of 100 ms (at least 512 KiB) pass at once" },
	{ .name = "public-address", .type = NS_SET_FUNC, .parse = set_public_address,
	  .what = "an IPv4 address", .arg = "IP",
	  .help = "the IPv4 address the broker gives agents for this relay, when it is not "
		  "the relay's own (a relay behind a full-cone NAT, or a 1:1 NAT: the NAT's "
		  "public address; its relay ports must reach address: unchanged). Default: "
		  "address" },
	{ .name = "echo-port", .type = NS_SET_U32, CFG(echo_port), .max = 65535, .arg = "PORT",
	  .help = "UDP port on the relay's addresses where agents measure their round trip "
		  "to this relay (the broker gives sessions the relay nearest to both "
		  "agents); outside the relay port range; 0: none, the broker then chooses by "
		  "load alone (default 7701)" },
	{ .name = "discovery-port", .type = NS_SET_U32, CFG(disc_port), .max = 65533,
	  .arg = "PORT",
	  .help = "UDP and TCP ports PORT, PORT+1 (and PORT+2 for connections out) where this "
		  "relay stands in as the second address of a broker that has one only "
		  "(its discovery-relay: NAT behaviour discovery); 1024 or above, outside the "
		  "relay port range; needs broker; 0: none (default)" },
	{ .name = "pin-dir", .type = NS_SET_FUNC, .parse = set_pin_dir,
	  .what = "an absolute path of at most 222 bytes", .arg = "DIR",
	  .help = "where maps and programs are pinned (default " NS_PIN_DIR_DEFAULT "/DEV, "
		  "plus _nsINODE outside the host's network namespace)" },
	{ .name = "socket", .type = NS_SET_STR, CFG(sock_path), .arg = "PATH",
	  .help = "control socket (default " RELAY_RUN_DIR "/relay-DEV.sock, likewise: two "
		  "relays never share one)" },
	{ .name = "half-open-timeout", .type = NS_SET_SECONDS, CFG(half_open_s), .min = 1,
	  .max = WEEK,
	  .arg = "SEC", .help = "default deadline for the second side (default 30)" },
	{ .name = "close-grace", .type = NS_SET_SECONDS, CFG(close_grace_s), .max = WEEK,
	  .arg = "SEC", .help = "keep a splice's entries this long after FIN both ways, for "
				"retransmitted FINs (default 10; 0, at once, is warned about)" },
	{ .name = "rst-grace", .type = NS_SET_SECONDS, CFG(rst_grace_s), .max = WEEK,
	  .arg = "SEC", .help = "... or after an RST (default 10)" },
	{ .name = "idle-tcp", .type = NS_SET_SECONDS, CFG(idle_tcp_s), .min = 1, .max = WEEK,
	  .arg = "SEC", .help = "drop a TCP splice idle this long (default 7200)" },
	{ .name = "idle-udp", .type = NS_SET_SECONDS, CFG(idle_udp_s), .min = 1, .max = WEEK,
	  .arg = "SEC", .help = "drop a UDP splice idle this long (default 300)" },
	{ .name = "handshake", .type = NS_SET_ENUM, CFG(no_kmod), .names = handshake_names,
	  .arg = "auto|daemon",
	  .help = "who answers the SYNs of passive TCP splices: auto (default) = the kernel, "
		  "through the natsplice_kmod module's kfuncs, when it is loaded (bpf/kmod/, "
		  "make kmod), else this daemon; daemon = always this daemon. The log says "
		  "which at start." },
	{ .name = "broker", .type = NS_SET_STR, CFG(broker), .arg = "IP:PORT",
	  .help = "register with this broker and serve its splice requests (needs --name, "
		  "--secret, and --broker-fingerprint, --broker-ca or --insecure; put the secret "
		  "in relay.yaml to keep it out of `ps`)" },
	{ .name = "name", .type = NS_SET_STR, CFG(name), .arg = "NAME",
	  .help = "the relay's name in broker.yaml" },
	{ .name = "secret", .type = NS_SET_STR, CFG(secret), .arg = "S",
	  .help = "the relay's secret in broker.yaml" },
	NS_TLS_CLIENT_SETTINGS(struct relay_cfg, set_pin),
	{ .name = "metrics", .type = NS_SET_SOCKADDR, CFG(metrics),
	  .len_off = offsetof(struct relay_cfg, metrics_len), .arg = "IP:PORT",
	  .help = "serve GET /metrics (Prometheus) here; default: none" },
	NS_HTTP_TOKENS_SETTING("metrics-tokens", set_metrics_token, "/metrics"),
	{ .name = "user", .type = NS_SET_STR, CFG(user), .arg = "NAME",
	  .help = "once started, run as this user (default " NS_USER_DEFAULT ") with CAP_BPF "
		  "only (no capability in userspace mode) and no_new_privs; root: stay root" },
	{ .name = NULL },
};

/* After the file and the command line: the address, and the default paths
 * (per device and namespace, so they wait for dev). */
static int cfg_check(void *cfg, char *err, size_t len)
{
	struct relay_cfg *c = cfg;
	unsigned int i;

	if (!c->has4 && !c->has6) {
		snprintf(err, len, "needs --address IP, the relay's public address (or "
			 "'address:' in the file)");
		return -EINVAL;
	}
	if ((!c->sock_path[0] &&
	     relay_default_sock(c->dev, c->sock_path, sizeof(c->sock_path))) ||
	    (!c->pin_dir[0] &&
	     relay_default_pin_dir(c->dev, c->pin_dir, sizeof(c->pin_dir)))) {
		snprintf(err, len, "the device name is too long for the default paths");
		return -EINVAL;
	}
	for (i = 0; i < c->npublic_ports; i++)
		if (c->public_ports[i].lo <= c->port_hi && c->public_ports[i].hi >= c->port_lo) {
			snprintf(err, len, "public-ports %u-%u overlaps the relay port range "
				 "%u-%u", c->public_ports[i].lo, c->public_ports[i].hi,
				 c->port_lo, c->port_hi);
			return -EINVAL;
		}
	if (c->echo_port && c->echo_port >= c->port_lo && c->echo_port <= c->port_hi) {
		snprintf(err, len, "echo-port %u is inside the relay port range %u-%u",
			 c->echo_port, c->port_lo, c->port_hi);
		return -EINVAL;
	}
	for (i = 0; c->echo_port && i < c->npublic_ports; i++)
		if (c->echo_port >= c->public_ports[i].lo && c->echo_port <= c->public_ports[i].hi) {
			snprintf(err, len, "echo-port %u is one of the public-ports %u-%u",
				 c->echo_port, c->public_ports[i].lo, c->public_ports[i].hi);
			return -EINVAL;
		}
	if (c->disc_port && c->disc_port < 1024) {
		snprintf(err, len, "discovery-port %u: 1024 or above (the relay drops root, and "
			 "opens connections from PORT+2 later)", c->disc_port);
		return -EINVAL;
	}
	if (c->disc_port && c->disc_port <= c->port_hi && c->disc_port + 2 >= c->port_lo) {
		snprintf(err, len, "discovery-port %u-%u overlaps the relay port range %u-%u",
			 c->disc_port, c->disc_port + 2, c->port_lo, c->port_hi);
		return -EINVAL;
	}
	if (c->disc_port && c->echo_port >= c->disc_port && c->echo_port <= c->disc_port + 2) {
		snprintf(err, len, "echo-port %u is one of the discovery ports %u-%u",
			 c->echo_port, c->disc_port, c->disc_port + 2);
		return -EINVAL;
	}
	for (i = 0; c->disc_port && i < c->npublic_ports; i++)
		if (c->public_ports[i].lo <= c->disc_port + 2 &&
		    c->public_ports[i].hi >= c->disc_port) {
			snprintf(err, len, "discovery-port %u-%u overlaps public-ports %u-%u",
				 c->disc_port, c->disc_port + 2, c->public_ports[i].lo,
				 c->public_ports[i].hi);
			return -EINVAL;
		}
	if (c->disc_port && !c->broker[0]) {
		snprintf(err, len, "discovery-port needs --broker: only the broker answers there");
		return -EINVAL;
	}
	if (c->npublic_ports && !c->broker[0]) {
		snprintf(err, len, "public-ports needs --broker: the broker opens them");
		return -EINVAL;
	}
	if (c->broker[0])
		return ns_tls_client_cfg_check(&c->tls, err, len);
	return 0;
}

void relay_cfg_warn(const struct relay_cfg *c, struct ns_warnings *w)
{
	size_t n = strlen(c->secret);

	if (c->broker[0] && n < NS_SECRET_GOOD)
		ns_warn(w, "the secret is %zu bytes: %d or more are advised (`openssl rand -hex "
			"16` makes one)%s", n, NS_SECRET_GOOD, n < NS_SECRET_MIN ?
			"; the broker refuses a secret shorter than 8 bytes" :
			"");
	if (c->broker[0] && c->tls.insecure)
		ns_warn(w, "insecure: true: the broker connection is plain text, where anybody "
			"on the path reads and changes it, and the broker is not authenticated "
			"(use broker-fingerprint)");
	if (ns_sockaddr_exposed(&c->metrics, c->metrics_len) && !c->metrics_tokens.n)
		ns_warn(w, "metrics is on a non-loopback address without metrics-tokens: "
			"anybody who reaches it reads the relay's splices and counters");
	if (!c->close_grace_s || !c->rst_grace_s)
		ns_warn(w, "%s 0: a closed splice's entries go at once, so a late "
			"retransmission (the last ACK, a FIN again) finds no splice and the "
			"connection may end with an RST or a stall on one side",
			!c->close_grace_s ? "close-grace" : "rst-grace");
}

static void cfg_warn(const void *cfg, struct ns_warnings *w)
{
	relay_cfg_warn(cfg, w);
}

static const struct ns_settings relay_settings = {
	.prog = "natsplice relay run",
	.usage =
"Usage: natsplice relay run --dev DEV --address IP [OPTIONS]\n"
"       natsplice relay run ... --broker IP:PORT --name N --secret S\n"
"                           --broker-fingerprint sha256:HEX\n"
"       natsplice relay run -f relay.yaml [OPTIONS]\n"
"       natsplice relay help\n"
"\n"
"Run the relay daemon, in the foreground (with -d: in the background). It\n"
"attaches the splice programs to DEV, answers `natsplice splice ...` on the\n"
"control socket, completes the handshakes of spliced connections and collects\n"
"finished splices. It prints a line containing \"ready\" once it accepts\n"
"splices. On SIGTERM it exits and leaves the dataplane in place, so established\n"
"splices keep flowing; a restarted daemon takes them over.\n"
"`natsplice dev detach DEV` removes the programs.\n"
"SIGHUP (systemctl reload) reads the file (-f) and the command line again and\n"
"applies the timers (half-open-timeout, close-grace, rst-grace, idle-tcp,\n"
"idle-udp) at once, logging \"reload: ...\"; the other settings need a restart\n"
"(logged). A file with an error is refused whole: the old settings stay.\n",
	.footer = "examples/relay.yaml documents the file.\n",
	.set = settings,
	.opts = NS_OPT_DETACH,
	.check = cfg_check,
	.warn = cfg_warn,
};

void relay_run_usage(FILE *f)
{
	ns_settings_usage(&relay_settings, f);
}

/*
 * The settings of one run: defaults, then the file (-f), then the command
 * line; sock is the CLI's -S (NULL: none). Returns 0 to run, or 1 with the
 * exit status in *status (--help, -n, or an error already printed).
 */
int relay_cfg_parse(struct relay_cfg *c, const char *sock, int argc, char **argv, int *verbose,
		    int *status)
{
	struct ns_cmdline cl = { .verbose = *verbose };

	cfg_defaults(c);
	if (sock)
		snprintf(c->sock_path, sizeof(c->sock_path), "%s", sock);
	if (ns_settings_parse(&relay_settings, c, &cl, argc, argv, status))
		return 1;
	*verbose = cl.verbose;
	c->detach = cl.detach;
	c->mode_asked = c->mode;
	c->config = cl.config;
	return 0;
}

int relay_cfg_reload(struct relay_cfg *c, const struct relay *r, char *err, size_t len)
{
	int ret;

	cfg_defaults(c);
	if (r->sock_arg)
		snprintf(c->sock_path, sizeof(c->sock_path), "%s", r->sock_arg);
	ret = ns_settings_reload(&relay_settings, c, r->cfg.config, r->argc, r->argv, err, len);
	c->mode_asked = c->mode;
	c->config = r->cfg.config;
	c->detach = r->cfg.detach;
	return ret;
}

#define RCFG(key, f) { key, offsetof(struct relay_cfg, f), sizeof(((struct relay_cfg *)0)->f) }

/* Read at every use: a new value takes effect at the next GC round. */
static const struct relay_key {
	const char *key;
	size_t off, size;
} run_keys[] = {
	RCFG("half-open-timeout", half_open_s), RCFG("close-grace", close_grace_s),
	RCFG("rst-grace", rst_grace_s), RCFG("idle-tcp", idle_tcp_s),
	RCFG("idle-udp", idle_udp_s),
}, fixed_keys[] = {
	/* the dataplane, its pins and sockets, the broker connection, privileges */
	RCFG("dev", dev), RCFG("mode", mode_asked), RCFG("address", has4),
	RCFG("address", has6), RCFG("address", addr4), RCFG("address", addr6),
	RCFG("ports", port_lo), RCFG("ports", port_hi), RCFG("pin-dir", pin_dir),
	RCFG("socket", sock_path), RCFG("broker", broker), RCFG("name", name),
	RCFG("secret", secret), RCFG("broker-fingerprint", tls.has_pin),
	RCFG("broker-fingerprint", tls.pin), RCFG("broker-ca", tls.ca),
	RCFG("broker-name", tls.host), RCFG("insecure", tls.insecure), RCFG("user", user),
	RCFG("handshake", no_kmod), RCFG("public-ports", public_ports),
	RCFG("public-ports", npublic_ports), RCFG("public-half-open", public_half_open),
	RCFG("public-syn-rate", public_syn_rate), RCFG("echo-port", echo_port),
	RCFG("max-splices", max_splices), RCFG("public-address", has_pub4),
	RCFG("max-bandwidth", max_bw_mbit), RCFG("discovery-port", disc_port),
	RCFG("public-address", pub4),
};

void relay_cfg_apply(struct relay *r, const struct relay_cfg *c, char *sum, size_t len)
{
	const char *said = "";
	size_t i, off = 0;

	sum[0] = '\0';
	for (i = 0; i < sizeof(run_keys) / sizeof(run_keys[0]); i++) {
		const struct relay_key *k = &run_keys[i];
		__u32 *now = (__u32 *)((char *)&r->cfg + k->off);
		__u32 v = *(const __u32 *)((const char *)c + k->off);

		if (*now == v)
			continue;
		if (off < len)
			off += snprintf(sum + off, len - off, "%s%s %u -> %u s", off ? ", " : "",
					k->key, *now, v);
		*now = v;
	}
	for (i = 0; i < sizeof(fixed_keys) / sizeof(fixed_keys[0]); i++) {
		const struct relay_key *k = &fixed_keys[i];

		/* one line per key (address and ports have two fields and more) */
		if (!strcmp(said, k->key) ||
		    !memcmp((char *)&r->cfg + k->off, (const char *)c + k->off, k->size))
			continue;
		said = k->key;
		log_warn("reload: %s cannot change while the relay runs: the old value stays "
			 "until a restart", k->key);
	}
}

const char *relay_mode_name(enum relay_mode mode)
{
	return mode <= RELAY_AUTO ? mode_names[mode] : "?";
}
