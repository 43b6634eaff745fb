// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agent.yaml: every error is rejected at load time as file:line:col, at the
 * node that is wrong (examples/agent.yaml documents the keys).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "agent.h"
#include "proxyhdr.h"
#include "settings.h"
#include "util.h"
#include "yconf.h"

#ifndef NS_VERSION
#define NS_VERSION "0"
#endif
#define STR_(x) #x
#define STR(x) STR_(x)
#define NS_VERSION_STRING NS_VERSION " (protocol " STR(NS_PROTO_VERSION) ")"

/* The structured keys; the scalar ones are in settings[] below. */
static const char *const file_keys[] = { "publish", "subscribe", NULL };
static const char *const pub_keys[] = {
	"name", "target", "proto", "compress", "ports", "reverse", "alg", "encrypt", "expose",
	"proxy-protocol", NULL
};
static const char *const expose_keys[] = { "port", "allow", "max-conns", NULL };
static const char *const sub_keys[] = {
	"service", "listen", "proto", "pool", "pool-idle", "pool_idle", "ports", "reverse", "alg",
	NULL
};

struct cfg_ctx {
	char *err;
	size_t errlen;
};

/* A required key of map: its node, or an error at the map. */
static int need(const struct yc_node *map, const char *key, const struct yc_node **out,
		struct cfg_ctx *x)
{
	*out = yc_get(map, key);
	if (!*out)
		return yc_error(map, x->err, x->errlen, "missing '%s'", key);
	return 0;
}

/* A scalar copied into buf (size bytes, NUL included), 1..size-1 bytes. */
static int str_into(const struct yc_node *n, const char *what, char *buf, size_t size,
		    struct cfg_ctx *x)
{
	const char *s;
	int ret;

	ret = yc_scalar(n, &s, x->err, x->errlen);
	if (ret)
		return ret;
	if (!*s)
		return yc_error(n, x->err, x->errlen, "%s must not be empty", what);
	if (strlen(s) >= size)
		return yc_error(n, x->err, x->errlen, "%s is longer than %zu bytes", what,
				size - 1);
	snprintf(buf, size, "%s", s);
	return 0;
}

/* Agent and service names: no blanks or control characters, and no '/' (it
 * separates the two in "agent/service") unless slash_ok. */
static int check_chars(const struct yc_node *n, const char *what, const char *s,
		       bool slash_ok, struct cfg_ctx *x)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || (*p == '/' && !slash_ok))
			return yc_error(n, x->err, x->errlen,
					"%s '%s': no %sblanks or control characters allowed",
					what, s, slash_ok ? "" : "'/', ");
	return 0;
}

static int name_into(const struct yc_node *n, const char *what, char *buf, size_t size,
		     struct cfg_ctx *x)
{
	int ret = str_into(n, what, buf, size, x);

	return ret ? ret : check_chars(n, what, buf, false, x);
}

/* "IP:PORT" (or a bare IP with default_port != 0). */
static int sockaddr_at(const struct yc_node *n, const char *what, __u16 default_port,
		       struct sockaddr_storage *ss, socklen_t *len, struct cfg_ctx *x)
{
	const char *s;
	int ret;

	ret = yc_scalar(n, &s, x->err, x->errlen);
	if (ret)
		return ret;
	if (ns_parse_sockaddr(s, default_port != 0, ss, len))
		return yc_error(n, x->err, x->errlen,
				"%s must be IP:PORT (e.g. 192.0.2.1:%u or [2001:db8::1]:%u), not '%s'",
				what, default_port ? default_port : 8080,
				default_port ? default_port : 8080, s);
	if (ss->ss_family == AF_INET && ((struct sockaddr_in *)ss)->sin_port == 0)
		((struct sockaddr_in *)ss)->sin_port = htons(default_port);
	if (ss->ss_family == AF_INET6 && ((struct sockaddr_in6 *)ss)->sin6_port == 0)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(default_port);
	return 0;
}

/* proto: tcp (default) or udp. */
static int proto_at(const struct yc_node *map, __u8 *proto, struct cfg_ctx *x)
{
	const struct yc_node *n = yc_get(map, "proto");
	const char *s;
	int ret;

	*proto = IPPROTO_TCP;
	if (!n)
		return 0;
	ret = yc_scalar(n, &s, x->err, x->errlen);
	if (ret)
		return ret;
	if (!strcmp(s, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "udp"))
		*proto = IPPROTO_UDP;
	else
		return yc_error(n, x->err, x->errlen, "proto must be tcp or udp, not '%s'", s);
	return 0;
}

/* A list under key: NULL (absent), or a sequence of mappings. */
static int list_at(const struct yc_node *root, const char *key, const struct yc_node **out,
		   struct cfg_ctx *x)
{
	const struct yc_node *n = yc_get(root, key);

	*out = NULL;
	if (!n)
		return 0;
	if (n->kind == YC_SCALAR && !*n->value)
		return 0;			/* "publish:" with nothing under it */
	if (n->kind != YC_SEQ)
		return yc_error(n, x->err, x->errlen, "%s must be a list of mappings", key);
	*out = n;
	return 0;
}

/* An optional integer n (the value of key) in min..max; unit follows the range in errors. */
static int u32_at(const struct yc_node *n, const char *key, __u32 min, __u32 max,
		  const char *unit, __u32 *out, struct cfg_ctx *x)
{
	unsigned int v;
	int ret;

	if (!n)
		return 0;
	ret = yc_u32(n, &v, x->err, x->errlen);
	if (ret)
		return ret;
	if (v < min || v > max)
		return yc_error(n, x->err, x->errlen, "%s must be %u..%u%s, not %u", key, min,
				max, unit, v);
	*out = v;
	return 0;
}

bool agent_ports_has(const struct agent_ports *p, __u8 proto, __u16 port)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (p->r[i].proto == proto && port >= p->r[i].lo && port <= p->r[i].hi)
			return true;
	return false;
}

/* One "PORT[-PORT][/tcp|/udp]" (proto defaults to the service's). */
static int port_range_at(const struct yc_node *n, __u8 dflt, struct agent_port_range *r,
			 struct cfg_ctx *x)
{
	unsigned long lo, hi;
	const char *s;
	char *end;
	int ret;

	ret = yc_scalar(n, &s, x->err, x->errlen);
	if (ret)
		return ret;
	lo = strtoul(s, &end, 10);
	hi = lo;
	if (end != s && *end == '-') {
		const char *h = end + 1;

		hi = strtoul(h, &end, 10);
		if (end == h)
			goto bad;
	}
	r->proto = dflt;
	if (!strcmp(end, "/udp"))
		r->proto = IPPROTO_UDP;
	else if (!strcmp(end, "/tcp"))
		r->proto = IPPROTO_TCP;
	else if (*end)
		goto bad;
	if (end == s || lo < 1 || hi > 65535 || lo > hi)
		goto bad;
	r->lo = lo;
	r->hi = hi;
	return 0;
bad:
	return yc_error(n, x->err, x->errlen, "a port must be PORT or PORT-PORT, optionally "
			"followed by /tcp or /udp (e.g. 5001, 6000-6010/udp), not '%s'", s);
}

/* ports: / reverse: a list of port ranges (or one). */
static int ports_at(const struct yc_node *map, const char *key, __u8 dflt,
		    struct agent_ports *p, struct cfg_ctx *x)
{
	const struct yc_node *n = yc_get(map, key);
	size_t i, cnt;
	int ret;

	if (!n)
		return 0;
	cnt = n->kind == YC_SEQ ? n->n : 1;
	if (n->kind == YC_MAP)
		return yc_error(n, x->err, x->errlen, "%s must be a list of ports", key);
	if (cnt > AGENT_PORTS_MAX)
		return yc_error(n, x->err, x->errlen, "%s: at most %u port ranges", key,
				AGENT_PORTS_MAX);
	for (i = 0; i < cnt; i++) {
		ret = port_range_at(n->kind == YC_SEQ ? n->items[i] : n, dflt, &p->r[i], x);
		if (ret)
			return ret;
	}
	p->n = cnt;
	return 0;
}

/* alg: the name of an application layer gateway (publish and subscribe). */
static int alg_at(const struct yc_node *map, char alg[AGENT_ALG_MAX + 1], bool compress,
		  struct cfg_ctx *x)
{
	const struct yc_node *n = yc_get(map, "alg");
	int ret;

	if (!n)
		return 0;
	ret = str_into(n, "alg", alg, AGENT_ALG_MAX + 1, x);
	if (!ret && !ns_alg_find(alg))
		ret = yc_error(n, x->err, x->errlen, "unknown alg '%s' (there are: %s)", alg,
			       ns_alg_names());
	if (!ret && compress)
		ret = yc_error(n, x->err, x->errlen, "a service with an alg cannot be compressed");
	return ret;
}

/* expose: { port, allow, max-conns }: a public port for clients with no agent. */
static int expose_at(const struct yc_node *map, struct agent_pub *p, struct cfg_ctx *x)
{
	const struct yc_node *n = yc_get(map, "expose"), *v, *a;
	struct ns_prefix pfx;
	size_t i, cnt;
	__u32 port = 0;
	int ret;

	if (!n)
		return 0;
	if (n->kind != YC_MAP)
		return yc_error(n, x->err, x->errlen, "expose must be a map: { port: N, allow: "
				"[PREFIX, ...], max-conns: N } (port: the public port on the relay; "
				"without it the broker picks one)");
	if (p->proto != IPPROTO_TCP)
		return yc_error(n, x->err, x->errlen, "expose: public ports are for TCP services "
				"only");
	ret = yc_check_keys(n, expose_keys, x->err, x->errlen);
	v = yc_get(n, "port");
	if (!ret && v)
		ret = u32_at(v, "port", 1, 65535, "", &port, x);
	v = yc_get(n, "max-conns");
	if (!ret && v)
		ret = u32_at(v, "max-conns", 1, 1000000, " connections", &p->expose.max_conns, x);
	a = yc_get(n, "allow");
	cnt = !a ? 0 : a->kind == YC_SEQ ? a->n : 1;
	if (!ret && a && a->kind == YC_MAP)
		ret = yc_error(a, x->err, x->errlen, "allow must be a list of prefixes");
	if (!ret && cnt > AGENT_EXPOSE_ALLOW_MAX)
		ret = yc_error(a, x->err, x->errlen, "allow: at most %d prefixes",
			       AGENT_EXPOSE_ALLOW_MAX);
	for (i = 0; !ret && i < cnt; i++) {
		v = a->kind == YC_SEQ ? a->items[i] : a;
		ret = str_into(v, "allow", p->expose.allow[i], sizeof(p->expose.allow[i]), x);
		if (!ret && ns_prefix_parse(p->expose.allow[i], &pfx))
			ret = yc_error(v, x->err, x->errlen, "allow: '%s' is not an address prefix "
				       "(192.0.2.0/24, 2001:db8::/32, or one address)",
				       p->expose.allow[i]);
	}
	p->expose.on = true;
	p->expose.port = port;
	p->expose.nallow = cnt;
	return ret;
}

/* proxy-protocol: v1 | v2 | off: the client's address to the server first. */
static int proxy_at(const struct yc_node *map, struct agent_pub *p, struct cfg_ctx *x)
{
	const struct yc_node *n = yc_get(map, "proxy-protocol");
	const char *v;
	int ret;

	if (!n)
		return 0;
	ret = yc_scalar(n, &v, x->err, x->errlen);
	if (ret)
		return ret;
	if (!strcmp(v, "v1") || !strcmp(v, "1"))
		p->proxy = NS_PROXY_V1;
	else if (!strcmp(v, "v2") || !strcmp(v, "2"))
		p->proxy = NS_PROXY_V2;
	else if (strcmp(v, "off") && strcmp(v, "false") && strcmp(v, "no"))
		return yc_error(n, x->err, x->errlen, "proxy-protocol must be v1, v2 or off, not "
				"'%s'", v);
	if (p->proxy && p->proto != IPPROTO_TCP)
		return yc_error(n, x->err, x->errlen, "proxy-protocol: for TCP services only");
	return 0;
}

static int load_pub(struct agent_cfg *c, const struct yc_node *seq, struct cfg_ctx *x)
{
	size_t i, j;
	int ret;

	c->pub = calloc(seq->n ? seq->n : 1, sizeof(*c->pub));
	if (!c->pub)
		return -ENOMEM;
	for (i = 0; i < seq->n; i++) {
		const struct yc_node *it = seq->items[i], *n;
		struct agent_pub *p = &c->pub[i];
		int b;

		ret = yc_check_keys(it, pub_keys, x->err, x->errlen);
		if (!ret)
			ret = need(it, "name", &n, x);
		if (!ret)
			ret = name_into(n, "service name", p->name, sizeof(p->name), x);
		for (j = 0; !ret && j < i; j++)
			if (!strcmp(c->pub[j].name, p->name))
				ret = yc_error(n, x->err, x->errlen,
					       "service '%s' is already published", p->name);
		if (!ret)
			ret = need(it, "target", &n, x);
		if (!ret)
			ret = sockaddr_at(n, "target", 0, &p->target, &p->target_len, x);
		if (!ret)
			ret = proto_at(it, &p->proto, x);
		n = yc_get(it, "compress");
		if (!ret && n) {
			ret = yc_bool(n, &b, x->err, x->errlen);
			p->compress = b;
		}
		p->plain = false;	/* sealed end to end unless encrypt: false */
		n = yc_get(it, "encrypt");
		if (!ret && n) {
			ret = yc_bool(n, &b, x->err, x->errlen);
			p->plain = !b;
		}
		if (!ret)
			ret = ports_at(it, "ports", p->proto, &p->ports, x);
		if (!ret)
			ret = ports_at(it, "reverse", IPPROTO_TCP, &p->reverse, x);
		if (!ret)
			ret = alg_at(it, p->alg, p->compress, x);
		if (!ret)
			ret = expose_at(it, p, x);
		if (!ret)
			ret = proxy_at(it, p, x);
		if (ret)
			return ret;
		c->npub++;
	}
	return 0;
}

static int load_sub(struct agent_cfg *c, const struct yc_node *seq, struct cfg_ctx *x)
{
	size_t i, j;
	int ret;

	c->sub = calloc(seq->n ? seq->n : 1, sizeof(*c->sub));
	if (!c->sub)
		return -ENOMEM;
	for (i = 0; i < seq->n; i++) {
		const struct yc_node *it = seq->items[i], *n, *ln = NULL, *pn = NULL, *in = NULL;
		struct agent_sub *s = &c->sub[i];
		const char *slash;

		ret = yc_check_keys(it, sub_keys, x->err, x->errlen);
		if (!ret)
			ret = ns_settings_key(it, "pool-idle", "pool_idle", &in, x->err, x->errlen);
		if (!ret)
			ret = need(it, "service", &n, x);
		if (!ret)
			ret = str_into(n, "service", s->service, sizeof(s->service), x);
		if (!ret) {
			slash = strchr(s->service, '/');
			if (!slash || slash == s->service || !slash[1] || strchr(slash + 1, '/'))
				ret = yc_error(n, x->err, x->errlen,
					       "service must be AGENT/NAME (e.g. home-nas/web), not '%s'",
					       s->service);
		}
		if (!ret)
			ret = check_chars(n, "service", s->service, true, x);
		if (!ret)
			ret = need(it, "listen", &ln, x);
		if (!ret)
			ret = sockaddr_at(ln, "listen", 0, &s->listen, &s->listen_len, x);
		if (!ret)
			ret = proto_at(it, &s->proto, x);
		s->pool = s->proto == IPPROTO_TCP ? AGENT_POOL_DEFAULT : 0;
		s->pool_idle_s = AGENT_POOL_IDLE_S;
		pn = yc_get(it, "pool");
		n = pn ? pn : in;
		if (!ret && n && s->proto != IPPROTO_TCP)
			ret = yc_error(n, x->err, x->errlen, "%s: only TCP subscriptions keep "
				       "pooled tunnels", pn ? "pool" : "pool-idle");
		if (!ret)
			ret = u32_at(pn, "pool", 0, AGENT_POOL_MAX, "", &s->pool, x);
		if (!ret)
			ret = u32_at(in, "pool-idle", 1, AGENT_POOL_IDLE_MAX_S, " seconds",
				     &s->pool_idle_s, x);
		if (!ret)
			ret = ports_at(it, "ports", s->proto, &s->ports, x);
		if (!ret)
			ret = ports_at(it, "reverse", IPPROTO_TCP, &s->reverse, x);
		if (!ret)
			ret = alg_at(it, s->alg, false, x);
		for (j = 0; !ret && j < i; j++)
			if (c->sub[j].proto == s->proto &&
			    agent_sa_equal(&c->sub[j].listen, &s->listen))
				ret = yc_error(ln, x->err, x->errlen,
					       "%s %s is already used by subscribe %zu (%s)",
					       s->proto == IPPROTO_TCP ? "tcp" : "udp", ln->value,
					       j + 1, c->sub[j].service);
		if (ret)
			return ret;
		c->nsub++;
	}
	return 0;
}

/* The structured keys, after the table's: publish and subscribe. */
static int load_tree(void *cfg, const struct yc_node *root, char *err, size_t len)
{
	struct cfg_ctx x = { err, len };
	struct agent_cfg *c = cfg;
	const struct yc_node *seq;
	int ret;

	ret = list_at(root, "publish", &seq, &x);
	if (!ret && seq)
		ret = load_pub(c, seq, &x);
	if (!ret)
		ret = list_at(root, "subscribe", &seq, &x);
	if (!ret && seq)
		ret = load_sub(c, seq, &x);
	return ret;
}

/* Agent names: no '/', it separates agent and service in "agent/service". */
static int set_name(void *cfg, const char *val, char *msg, size_t len)
{
	struct agent_cfg *c = cfg;
	const unsigned char *p;

	if (!*val || strlen(val) >= sizeof(c->name))
		return -EINVAL;
	for (p = (const unsigned char *)val; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '/') {
			snprintf(msg, len, "agent name '%s': no '/', blanks or control "
				 "characters allowed", val);
			return -EINVAL;
		}
	snprintf(c->name, sizeof(c->name), "%s", val);
	return 0;
}

static int set_pin(void *cfg, const char *val, char *msg, size_t len)
{
	return ns_tls_client_set_pin(&((struct agent_cfg *)cfg)->tls, val);
}

static int cfg_check(void *cfg, char *err, size_t len)
{
	struct agent_cfg *c = cfg;

	c->has_tunnel_listen = c->tunnel_listen_len != 0;
	return ns_tls_client_cfg_check(&c->tls, err, len);
}

void agent_cfg_warn(const struct agent_cfg *c, struct ns_warnings *w)
{
	size_t n = strlen(c->secret);

	if (n < NS_SECRET_GOOD)
		ns_warn(w, "the secret is %zu bytes: %d or more are advised (`openssl rand -hex "
			"16` makes one)%s", n, NS_SECRET_GOOD, n < NS_SECRET_MIN ?
			"; the broker refuses a secret shorter than 8 bytes" :
			"");
	if (c->tls.insecure)
		ns_warn(w, "insecure: true: the control connection is plain text, where "
			"anybody on the path reads and changes it, and the broker is not "
			"authenticated (use broker-fingerprint)");
}

static void cfg_warn(const void *cfg, struct ns_warnings *w)
{
	agent_cfg_warn(cfg, w);
}

#define CFG(f) NS_FIELD(struct agent_cfg, f)

static const char *const ktls_names[] = { "auto", "off", NULL };

static int set_relay_mode(void *cfg, const char *val, char *msg, size_t len)
{
	struct agent_cfg *c = cfg;

	if (strcmp(val, "auto") && strcmp(val, "xdp") && strcmp(val, "tc") &&
	    strcmp(val, "userspace"))
		return -EINVAL;
	snprintf(c->relay_mode, sizeof(c->relay_mode), "%s", val);
	return 0;
}

static int set_relay_ports(void *cfg, const char *val, char *msg, size_t len)
{
	struct agent_cfg *c = cfg;

	return ns_parse_port_range(val, &c->relay_port_lo, &c->relay_port_hi);
}

static const struct ns_setting settings[] = {
	{ .name = "broker", .type = NS_SET_SOCKADDR, CFG(broker),
	  .len_off = offsetof(struct agent_cfg, broker_len), .port = NS_PROTO_PORT,
	  .flags = NS_SET_REQUIRED, .arg = "IP[:PORT]",
	  .help = "the broker (the port defaults to 7700)" },
	NS_TLS_CLIENT_SETTINGS(struct agent_cfg, set_pin),
	{ .name = "name", .type = NS_SET_FUNC, .parse = set_name, CFG(name),
	  .flags = NS_SET_REQUIRED, .what = "1-255 bytes, no '/', blanks or control characters",
	  .arg = "NAME", .help = "this agent's name at the broker" },
	{ .name = "secret", .type = NS_SET_STR, CFG(secret), .flags = NS_SET_REQUIRED,
	  .arg = "SECRET",
	  .help = "shared with the broker, never sent on the wire (put it in the file "
		  "to keep it out of `ps`)" },
	{ .name = "tunnel-listen", .type = NS_SET_SOCKADDR, CFG(tunnel_listen),
	  .len_off = offsetof(struct agent_cfg, tunnel_listen_len), .old_name = "tunnel_listen",
	  .arg = "IP:PORT",
	  .help = "accept tunnels from other agents here, TCP and UDP on this port (the "
		  "direct and reverse paths); default: none, tunnels go through a relay "
		  "unless the other side accepts" },
	{ .name = "udp-idle", .type = NS_SET_SECONDS, CFG(udp_idle_s), .min = 1,
	  .max = 7 * 24 * 3600, .old_name = "udp_idle", .arg = "SEC",
	  .help = "close a UDP tunnel after this long without a datagram (default 60)" },
	{ .name = "relay-probe-interval", .type = NS_SET_SECONDS, CFG(relay_probe_s),
	  .max = 3600, .arg = "SEC",
	  .help = "measure the round trip to each relay the broker names this often (one "
		  "32-byte UDP datagram each way, to the relay's echo-port; after a missed "
		  "answer at once again): the broker gives relay sessions the relay nearest "
		  "to both agents and avoids one that stops answering. 0: never (default 5)" },
	{ .name = "relay", .type = NS_SET_FLAG, CFG(relay),
	  .help = "relay for other agents (the broker's agents: entry must say relay: true "
		  "too): only where others can reach this host, which NAT discovery tells (no "
		  "NAT, or a full cone); runs relay-program's relay with relay-ports and "
		  "relay-max-splices and relay-max-bandwidth, in the kernel where BPF loads, else in user space. "
		  "Default: off" },
	{ .name = "relay-program", .type = NS_SET_STR, CFG(relay_program), .arg = "PATH",
	  .help = "the natsplice command the relay runs as (default natsplice, from PATH)" },
	{ .name = "relay-mode", .type = NS_SET_FUNC, .parse = set_relay_mode,
	  .what = "auto, xdp, tc or userspace", .arg = "MODE",
	  .help = "the relay's dataplane (default auto: XDP or TC, and userspace when the "
		  "relay cannot start so)" },
	{ .name = "relay-ports", .type = NS_SET_FUNC, .parse = set_relay_ports,
	  .what = "LO-HI", .arg = "LO-HI",
	  .help = "the relay's port range (default 20000-20999)" },
	{ .name = "relay-max-splices", .type = NS_SET_U32, CFG(relay_max_splices), .min = 1,
	  .max = 65536, .arg = "N",
	  .help = "sessions relayed for others at once at most (default 64)" },
	{ .name = "relay-max-bandwidth", .type = NS_SET_U32, CFG(relay_max_bw_mbit),
	  .max = 1000000, .arg = "MBIT",
	  .help = "Mbit/s relayed for others at most, both directions of all their sessions "
		  "together (the relay's max-bandwidth; default 0: no cap). Over it the "
		  "relay drops packets (kernel) or stops reading (userspace) and TCP slows "
		  "down; the agent's own tunnels are not counted" },
	{ .name = "connect-timeout", .type = NS_SET_SECONDS, CFG(connect_timeout_s), .min = 1,
	  .max = 600, .old_name = "connect_timeout", .arg = "SEC",
	  .help = "a tunnel must be up (connected, proven, target reached) this long after "
		  "the broker's CONNECT_INFO (default 10)" },
	{ .name = "udp-fallback", .type = NS_SET_SECONDS, CFG(udp_fallback_s), .min = 1,
	  .max = 60, .arg = "SEC",
	  .help = "a UDP service's datagrams travel as UDP; if that tunnel is not up this "
		  "long after the broker's CONNECT_INFO, they go framed in a TCP tunnel "
		  "instead, and so do that subscription's next clients for 60 s (default 3)" },
	{ .name = "ktls", .type = NS_SET_ENUM, CFG(no_ktls), .names = ktls_names,
	  .arg = "auto|off",
	  .help = "sealed (encrypted) TCP tunnels: auto (default) = hand the keys to the "
		  "kernel's TLS (kTLS, the `tls` module) where it has it, so that splice(2) "
		  "stays zero-copy, else encrypt in this daemon; off = always in this daemon. "
		  "Each tunnel's log line says which" },
	{ .name = NULL },
};

static const struct ns_settings agent_settings = {
	.prog = "natsplice-agent",
	.usage =
"Usage: natsplice-agent -f agent.yaml [-d] [-v] [-n]\n"
"       natsplice-agent --broker IP[:PORT] --name NAME --secret S\n"
"                       --broker-fingerprint sha256:HEX [-f agent.yaml] ...\n"
"\n"
"The natsplice user daemon. It logs in to the broker, publishes the local\n"
"services of agent.yaml and makes the subscribed remote ones local: a client\n"
"that connects to a subscribe port reaches the remote service through a\n"
"tunnel (direct, reverse or through a relay) that both agents authenticate\n"
"before any application byte flows. It logs a line containing \"ready\" each\n"
"time it has logged in and published. SIGTERM or SIGINT: close everything,\n"
"exit 0. A broker refusing the login (wrong name or secret) ends it with\n"
"status 1. SIGHUP (systemctl reload) reads the file and the command line\n"
"again: services are published and withdrawn, subscriptions opened and\n"
"closed (their running tunnels go on until they end), the timers change; a\n"
"new broker, name, secret or pin means a new login. tunnel-listen needs a\n"
"restart. A file with an error is refused whole: the old settings stay.\n",
	.footer =
"publish and subscribe are lists in the file (examples/agent.yaml documents\n"
"them): a service's target, proto, compress, encrypt (tunnels are encrypted\n"
"end to end unless encrypt: false), its more ports, the ports its\n"
"server connects back to (reverse), its ALG (alg: ftp or sip) and a public\n"
"port on a relay for clients with no agent (expose: { port, allow,\n"
"max-conns }, TCP; the broker's expose ACL decides) and the PROXY protocol\n"
"header with the real client's address to its server (proxy-protocol: v1 or\n"
"v2, TCP; default off); a subscription's listen address, pool, ports,\n"
"reverse ports and ALG.\n"
"\n"
"Changed: -d used to mean \"stay in the foreground\". The agent now stays in the\n"
"foreground unless given -d, like the broker and the relay, and -d detaches\n"
"(after the first \"ready\" line). The file's keys are spelled with dashes\n"
"(tunnel-listen, udp-idle, connect-timeout, pool-idle); the old spelling with\n"
"underscores still loads, with a note.\n",
	.set = settings,
	.file_keys = file_keys,
	.opts = NS_OPT_DETACH | NS_OPT_VERSION,
	.version = NS_VERSION_STRING,
	.load_tree = load_tree,
	.check = cfg_check,
	.warn = cfg_warn,
};

static void cfg_defaults(struct agent_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->udp_idle_s = AGENT_UDP_IDLE_S;
	c->relay_probe_s = AGENT_RELAY_PROBE_S;
	snprintf(c->relay_program, sizeof(c->relay_program), "natsplice");
	snprintf(c->relay_mode, sizeof(c->relay_mode), "auto");
	c->relay_port_lo = 20000;
	c->relay_port_hi = 20999;
	c->relay_max_splices = 64;
	c->connect_timeout_s = AGENT_CONNECT_TIMEOUT_S;
	c->udp_fallback_s = AGENT_UDP_FALLBACK_S;
}

int agent_cfg_parse(struct agent_cfg *c, struct ns_cmdline *cl, int argc, char **argv,
		    int *status)
{
	cfg_defaults(c);
	if (!ns_settings_parse(&agent_settings, c, cl, argc, argv, status))
		return 0;
	agent_cfg_free(c);
	return 1;
}

/* After yc_load_*: a whole agent.yaml without a command line; c is freed on error. */
static int cfg_finish(struct agent_cfg *c, struct yc_node *root, int ret, char *err,
		      size_t errlen)
{
	if (!ret)
		ret = ns_settings_yaml(&agent_settings, c, root, err, errlen);
	if (!ret)
		ret = ns_settings_required(&agent_settings, c, err, errlen);
	if (!ret)
		ret = cfg_check(c, err, errlen);
	if (ret == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	if (ret)
		agent_cfg_free(c);
	yc_free(root);
	return ret;
}

int agent_cfg_load(struct agent_cfg *c, const char *path, char *err, size_t errlen)
{
	struct yc_node *root = NULL;

	int ret;

	cfg_defaults(c);
	err[0] = '\0';
	/* loaded first: the order in which a call's arguments are evaluated is
	 * unspecified (clang reads root before the load sets it) */
	ret = yc_load_file(path, &root, err, errlen);
	return cfg_finish(c, root, ret, err, errlen);
}

int agent_cfg_load_string(struct agent_cfg *c, const char *name, const char *text,
			  char *err, size_t errlen)
{
	struct yc_node *root = NULL;

	int ret;

	cfg_defaults(c);
	err[0] = '\0';
	ret = yc_load_string(name, text, &root, err, errlen);
	return cfg_finish(c, root, ret, err, errlen);
}

int agent_cfg_reload(struct agent_cfg *c, const char *path, int argc, char **argv, char *err,
		     size_t errlen)
{
	cfg_defaults(c);
	return ns_settings_reload(&agent_settings, c, path, argc, argv, err, errlen);
}

void agent_cfg_usage(FILE *f)
{
	ns_settings_usage(&agent_settings, f);
}

void agent_cfg_free(struct agent_cfg *c)
{
	free(c->pub);
	free(c->sub);
	memset(c->secret, 0, sizeof(c->secret));
	c->pub = NULL;
	c->sub = NULL;
	c->npub = c->nsub = 0;
}
