// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * broker.yaml: who may log in, the optional ACL, listen addresses and
 * timers. Every error names file:line:col; nothing is logged-and-ignored.
 * Pure (yconf + util only) so that the unit tests can include it.
 */
#include <errno.h>
#include <stddef.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "privs.h"
#include "settings.h"
#include "util.h"
#include "yconf.h"

#ifndef NS_VERSION
#define NS_VERSION "dev"
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

void cfg_defaults(struct broker_cfg *c)
{
	memset(c, 0, sizeof(*c));
	ns_parse_sockaddr("0.0.0.0:7700", 0, &c->listen, &c->listen_len);
	c->hold_time_s = NS_HOLD_TIME_S;
	c->negotiate_timeout_s = NS_NEGOTIATE_TIMEOUT_S;
	c->probe_timeout_ms = 1000;
	c->login_timeout_s = 10;
	c->session_history = 1000;
	c->session_flows = BROKER_SESSION_FLOWS;
	c->max_services = BROKER_SERVICES_DEFAULT;
	c->tunnel_rate = BROKER_TUNNEL_RATE;
	c->tunnel_burst = BROKER_TUNNEL_BURST;
	c->max_agent_sessions = BROKER_AGENT_SESSIONS;
	c->max_pair_splices = BROKER_PAIR_SPLICES;
	c->max_unauth = BROKER_UNAUTH;
	c->max_unauth_source = BROKER_UNAUTH_PER_SOURCE;
	c->login_free = BROKER_LOGIN_FREE;
	c->login_backoff_max_s = BROKER_LOGIN_BACKOFF_MAX;
	c->msg_rate = BROKER_MSG_RATE;
	c->msg_burst = BROKER_MSG_BURST;
	c->public_timeout_s = BROKER_PUBLIC_TIMEOUT_S;
	c->public_max_conns = BROKER_PUBLIC_MAX_CONNS;
	c->relay_rtt_slack_ms = BROKER_RTT_SLACK_MS;
	c->disc_port = NS_DISC_PORT;
	c->punch_timeout_s = BROKER_PUNCH_TIMEOUT_S;
	snprintf(c->user, sizeof(c->user), "%s", NS_USER_DEFAULT);
	snprintf(c->tls_cert, sizeof(c->tls_cert), "%s", BROKER_TLS_CERT_DEFAULT);
	snprintf(c->tls_key, sizeof(c->tls_key), "%s", BROKER_TLS_KEY_DEFAULT);
}

static void creds_free(struct broker_cred *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].secret);
		free(v[i].expose);
	}
	free(v);
}

void cfg_free(struct broker_cfg *c)
{
	size_t i, j;

	creds_free(c->agents, c->nagents);
	creds_free(c->relays, c->nrelays);
	for (i = 0; i < c->nacls; i++) {
		for (j = 0; j < c->acls[i].nallow; j++)
			free(c->acls[i].allow[j]);
		free(c->acls[i].allow);
		free(c->acls[i].service);
	}
	free(c->acls);
	c->agents = c->relays = NULL;
	c->acls = NULL;
	c->nagents = c->nrelays = c->nacls = 0;
}

static int cred_cmp(const void *a, const void *b)
{
	return strcmp(((const struct broker_cred *)a)->name, ((const struct broker_cred *)b)->name);
}

static int acl_cmp(const void *a, const void *b)
{
	return strcmp(((const struct broker_acl *)a)->service,
		      ((const struct broker_acl *)b)->service);
}

int cfg_cred_index(const struct broker_cred *v, size_t n, const char *name)
{
	struct broker_cred key = { .name = (char *)name };
	const struct broker_cred *f = n ? bsearch(&key, v, n, sizeof(*v), cred_cmp) : NULL;

	return f ? (int)(f - v) : -1;
}

int cfg_agent_index(const struct broker_cfg *c, const char *name)
{
	return cfg_cred_index(c->agents, c->nagents, name);
}

int cfg_relay_index(const struct broker_cfg *c, const char *name)
{
	return cfg_cred_index(c->relays, c->nrelays, name);
}

/* A scalar that must be a valid name; err at its position otherwise. */
static int get_name(const struct yc_node *n, const char *what, const char **val,
		    char *err, size_t errlen)
{
	int ret = yc_scalar(n, val, err, errlen);

	if (ret)
		return ret;
	if (!name_valid(*val))
		return yc_error(n, err, errlen, "bad %s '%s' (1..%d bytes, no '/', space or "
				"control characters)", what, *val, BROKER_NAME_MAX);
	return 0;
}

/* A required key of an entry mapping. */
static const struct yc_node *need(const struct yc_node *map, const char *key, const char *what,
				  char *err, size_t errlen)
{
	const struct yc_node *n = yc_get(map, key);

	if (!n)
		yc_error(map, err, errlen, "%s entry needs '%s'", what, key);
	return n;
}

/* An agent's expose: the public ports it may have a relay open: a list of
 * PORT and "LO-HI" (or one of them). */
static int load_expose(const struct yc_node *n, struct broker_cred *c, char *err, size_t errlen)
{
	size_t i, cnt = n->kind == YC_SEQ ? n->n : 1;
	const char *v;
	int ret;

	if (n->kind == YC_MAP)
		return yc_error(n, err, errlen, "expose must be a list of ports and port ranges "
				"(8080, \"8000-8099\")");
	if (cnt > BROKER_PORT_RANGES)
		return yc_error(n, err, errlen, "expose: at most %d ports and ranges",
				BROKER_PORT_RANGES);
	c->expose = calloc(cnt ? cnt : 1, sizeof(*c->expose));
	if (!c->expose)
		return -ENOMEM;
	for (i = 0; i < cnt; i++) {
		const struct yc_node *it = n->kind == YC_SEQ ? n->items[i] : n;

		ret = yc_scalar(it, &v, err, errlen);
		if (ret)
			return ret;
		if (ns_parse_port_range(v, &c->expose[i].lo, &c->expose[i].hi))
			return yc_error(it, err, errlen, "expose: '%s' is not a port or a range "
					"LO-HI (1-65535)", v);
	}
	c->nexpose = cnt;
	return 0;
}

/* agents: / relays: a sequence of { name, secret } (agents: and expose). */
static int load_creds(const struct yc_node *seq, const char *what, struct broker_cred **out,
		      size_t *nout, char *err, size_t errlen)
{
	static const char *const agent_keys[] = { "name", "secret", "expose", "relay", NULL };
	static const char *const relay_keys[] = { "name", "secret", NULL };
	const char *const *keys = strcmp(what, "agent") ? relay_keys : agent_keys;
	struct broker_cred *v;
	size_t i;
	int ret;

	if (seq->kind != YC_SEQ)
		return yc_error(seq, err, errlen, "expected a sequence of { name, secret }");
	v = calloc(seq->n ? seq->n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*out = v;
	for (i = 0; i < seq->n; i++) {
		const struct yc_node *e = seq->items[i], *n, *s;
		const char *name, *secret;

		ret = yc_check_keys(e, keys, err, errlen);
		if (ret)
			return ret;
		n = need(e, "name", what, err, errlen);
		s = n ? need(e, "secret", what, err, errlen) : NULL;
		if (!n || !s)
			return -EINVAL;
		ret = get_name(n, "name", &name, err, errlen);
		if (!ret)
			ret = yc_scalar(s, &secret, err, errlen);
		if (ret)
			return ret;
		if (!*secret)
			return yc_error(s, err, errlen, "empty secret");
		v[i].name = strdup(name);
		v[i].secret = strdup(secret);
		v[i].line = n->line;
		v[i].col = n->col;
		(*nout)++;
		if (!v[i].name || !v[i].secret)
			return -ENOMEM;
		if (yc_get(e, "expose")) {
			ret = load_expose(yc_get(e, "expose"), &v[i], err, errlen);
			if (ret)
				return ret;
		}
		if ((n = yc_get(e, "relay"))) {
			const char *b;

			ret = yc_scalar(n, &b, err, errlen);
			if (ret)
				return ret;
			if (strcmp(b, "true") && strcmp(b, "false"))
				return yc_error(n, err, errlen, "relay must be true or false");
			v[i].relay = !strcmp(b, "true");
		}
	}
	qsort(v, *nout, sizeof(*v), cred_cmp);
	for (i = 1; i < *nout; i++) {
		const struct broker_cred *a = &v[i - 1], *b = &v[i];

		if (!strcmp(a->name, b->name)) {
			const struct broker_cred *late = a->line > b->line ||
				(a->line == b->line && a->col > b->col) ? a : b;
			const struct broker_cred *early = late == a ? b : a;

			snprintf(err, errlen, "%s:%d:%d: duplicate %s '%s' (first at line %d)",
				 seq->file ? seq->file : "<config>", late->line, late->col,
				 what, late->name, early->line);
			return -EINVAL;
		}
	}
	return 0;
}

/* The service name of an ACL entry: "name" or "agent/name". */
static int acl_service_valid(const char *s)
{
	const char *slash = strchr(s, '/');
	char agent[BROKER_NAME_MAX + 1];
	size_t alen;

	if (!slash)
		return name_valid(s);
	alen = slash - s;
	if (alen == 0 || alen > BROKER_NAME_MAX)
		return 0;
	memcpy(agent, s, alen);
	agent[alen] = '\0';
	return name_valid(agent) && name_valid(slash + 1);
}

/* services: a sequence of { name, allow: [agent, ...] }; needs the agents loaded. */
static int load_acls(struct broker_cfg *c, const struct yc_node *seq, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "allow", NULL };
	size_t i, j;
	int ret;

	if (seq->kind != YC_SEQ)
		return yc_error(seq, err, errlen, "expected a sequence of { name, allow }");
	c->acls = calloc(seq->n ? seq->n : 1, sizeof(*c->acls));
	if (!c->acls)
		return -ENOMEM;
	for (i = 0; i < seq->n; i++) {
		const struct yc_node *e = seq->items[i], *n, *allow;
		struct broker_acl *a = &c->acls[i];
		const char *name;

		ret = yc_check_keys(e, keys, err, errlen);
		if (ret)
			return ret;
		n = need(e, "name", "service", err, errlen);
		allow = n ? need(e, "allow", "service", err, errlen) : NULL;
		if (!n || !allow)
			return -EINVAL;
		ret = yc_scalar(n, &name, err, errlen);
		if (ret)
			return ret;
		if (!acl_service_valid(name))
			return yc_error(n, err, errlen,
					"bad service '%s' (\"name\" or \"agent/name\")", name);
		if (strchr(name, '/')) {
			char agent[BROKER_NAME_MAX + 1];
			int alen = strchr(name, '/') - name;

			snprintf(agent, sizeof(agent), "%.*s", alen, name);
			if (cfg_agent_index(c, agent) < 0)
				return yc_error(n, err, errlen, "unknown agent '%s'", agent);
		}
		for (j = 0; j < i; j++)
			if (!strcmp(c->acls[j].service, name))
				return yc_error(n, err, errlen, "duplicate service '%s' (first at "
						"line %d)", name, c->acls[j].line);
		a->service = strdup(name);
		a->line = n->line;
		a->col = n->col;
		c->nacls++;
		if (!a->service)
			return -ENOMEM;
		if (allow->kind != YC_SEQ)
			return yc_error(allow, err, errlen, "allow: expected a sequence of agent "
					"names ([] for none)");
		a->allow = calloc(allow->n ? allow->n : 1, sizeof(*a->allow));
		if (!a->allow)
			return -ENOMEM;
		for (j = 0; j < allow->n; j++) {
			const char *who;

			ret = yc_scalar(allow->items[j], &who, err, errlen);
			if (ret)
				return ret;
			if (cfg_agent_index(c, who) < 0)
				return yc_error(allow->items[j], err, errlen, "unknown agent '%s'",
						who);
			a->allow[j] = strdup(who);
			a->nallow++;
			if (!a->allow[j])
				return -ENOMEM;
		}
	}
	qsort(c->acls, c->nacls, sizeof(*c->acls), acl_cmp);
	return 0;
}

/* user: a name the system knows (checked now, not when the broker drops root). */
static int set_user(void *cfg, const char *val, char *msg, size_t len)
{
	struct broker_cfg *c = cfg;

	if (!*val || strlen(val) >= sizeof(c->user))
		return -EINVAL;
	if (!getpwnam(val)) {
		snprintf(msg, len, "no such user '%s'", val);
		return -EINVAL;
	}
	snprintf(c->user, sizeof(c->user), "%s", val);
	return 0;
}

static int set_disc(void *cfg, const char *val, char *msg, size_t len)
{
	struct broker_cfg *c = cfg;
	socklen_t sl;

	if (ns_parse_sockaddr(val, 1, &c->disc, &sl) || ns_sockaddr_port(&c->disc))
		return -EINVAL;
	c->has_disc = true;
	return 0;
}

static int set_punch(void *cfg, const char *val, char *msg, size_t len)
{
	bool *no = &((struct broker_cfg *)cfg)->no_punch;

	if (!strcmp(val, "true") || !strcmp(val, "yes") || !strcmp(val, "on"))
		*no = false;
	else if (!strcmp(val, "false") || !strcmp(val, "no") || !strcmp(val, "off"))
		*no = true;
	else
		return -EINVAL;
	return 0;
}

static int set_http_token(void *cfg, const char *val, char *msg, size_t len)
{
	return ns_http_token_add(&((struct broker_cfg *)cfg)->http_tokens, val, msg, len);
}

/* An agent with relay: true may also log in as a relay of its name and
 * secret (an agent that relays for others): one more relays: entry. */
static int agent_relays(struct broker_cfg *c, char *err, size_t errlen)
{
	struct broker_cred *v;
	size_t i, n = 0;

	for (i = 0; i < c->nagents; i++)
		n += c->agents[i].relay;
	if (!n)
		return 0;
	v = realloc(c->relays, (c->nrelays + n) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->relays = v;
	for (i = 0; i < c->nagents; i++) {
		const struct broker_cred *a = &c->agents[i];
		struct broker_cred *r = &c->relays[c->nrelays];

		if (!a->relay)
			continue;
		if (cfg_relay_index(c, a->name) >= 0) {
			snprintf(err, errlen, "line %d: agent '%s' has relay: true, and there is a "
				 "relay of that name already", a->line, a->name);
			return -EINVAL;
		}
		memset(r, 0, sizeof(*r));
		r->name = strdup(a->name);
		r->secret = strdup(a->secret);
		r->line = a->line;
		r->col = a->col;
		r->relay = true;	/* (an agent's) */
		c->nrelays++;
		if (!r->name || !r->secret)
			return -ENOMEM;
		qsort(c->relays, c->nrelays, sizeof(*c->relays), cred_cmp);
	}
	return 0;
}

/* The structured keys, after the table's; services needs the agents. */
static int load_tree(void *cfg, const struct yc_node *root, char *err, size_t errlen)
{
	struct broker_cfg *c = cfg;
	const struct yc_node *n;
	int ret = 0;

	if ((n = yc_get(root, "agents")))
		ret = load_creds(n, "agent", &c->agents, &c->nagents, err, errlen);
	if (!ret && (n = yc_get(root, "relays")))
		ret = load_creds(n, "relay", &c->relays, &c->nrelays, err, errlen);
	if (!ret)
		ret = agent_relays(c, err, errlen);
	if (!ret && (n = yc_get(root, "services")))
		ret = load_acls(c, n, err, errlen);
	return ret;
}

static const char *const file_keys[] = { "agents", "relays", "services", NULL };

/* A secret shorter than NS_SECRET_MIN: err names it (never its value). */
static int short_secret(const struct broker_cred *v, size_t n, const char *what, char *err,
			size_t errlen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(v[i].secret) < NS_SECRET_MIN) {
			snprintf(err, errlen, "line %d: the secret of %s '%s' is %zu bytes: at "
				 "least %d are needed, %d or more advised (`openssl rand -hex 16` "
				 "makes one)", v[i].line, what, v[i].name, strlen(v[i].secret),
				 NS_SECRET_MIN, NS_SECRET_GOOD);
			return -EINVAL;
		}
	return 0;
}

int cfg_check(const struct broker_cfg *c, char *err, size_t errlen)
{
	int ret = short_secret(c->agents, c->nagents, "agent", err, errlen);

	if (!ret && c->disc_relay[0] && c->has_disc) {
		snprintf(err, errlen, "discovery-address and discovery-relay: one or the other");
		return -EINVAL;
	}
	if (!ret && c->disc_relay[0] && cfg_relay_index(c, c->disc_relay) < 0) {
		snprintf(err, errlen, "discovery-relay %s is not one of the relays", c->disc_relay);
		return -EINVAL;
	}

	return ret ? ret : short_secret(c->relays, c->nrelays, "relay", err, errlen);
}

static int check(void *cfg, char *err, size_t errlen)
{
	return cfg_check(cfg, err, errlen);
}

static void weak_secrets(const struct broker_cred *v, size_t n, const char *what,
			 struct ns_warnings *w)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(v[i].secret) < NS_SECRET_GOOD)
			ns_warn(w, "the secret of %s '%s' (line %d) is %zu bytes: %d or more "
				"are advised (`openssl rand -hex 16` makes one)", what, v[i].name,
				v[i].line, strlen(v[i].secret), NS_SECRET_GOOD);
}

void cfg_warn(const struct broker_cfg *c, struct ns_warnings *w)
{
	if (!c->nagents)
		ns_warn(w, "no agents: list them under 'agents:' (name and secret), or nobody "
			"can log in");
	weak_secrets(c->agents, c->nagents, "agent", w);
	weak_secrets(c->relays, c->nrelays, "relay", w);
	if (c->insecure)
		ns_warn(w, "insecure: true: agents and relays may log in over plain text, "
			"where anybody on the path reads and changes the control messages "
			"(session keys stay wrapped)");
	if (ns_sockaddr_exposed(&c->http, c->http_len) && !c->http_tokens.n)
		ns_warn(w, "http is on a non-loopback address without http-tokens: anybody "
			"who reaches it reads the agents, services, sessions and metrics");
}

static void warn(const void *cfg, struct ns_warnings *w)
{
	cfg_warn(cfg, w);
}

#define CFG(f) NS_FIELD(struct broker_cfg, f)

static const struct ns_setting settings[] = {
	{ .name = "listen", .type = NS_SET_SOCKADDR, CFG(listen),
	  .len_off = offsetof(struct broker_cfg, listen_len), .arg = "IP:PORT",
	  .help = "control connections of agents and relays (default 0.0.0.0:7700)" },
	{ .name = "http", .type = NS_SET_SOCKADDR, CFG(http),
	  .len_off = offsetof(struct broker_cfg, http_len), .arg = "IP:PORT",
	  .help = "the HTTP API: GET /metrics (Prometheus), /api/v1/agents, /api/v1/relays, "
		  "/api/v1/services, /api/v1/sessions, /api/v1/public (JSON); POST "
		  "/api/v1/agents/NAME/discover (test that agent's NAT again); default: none. "
		  "Keep it on a private address, and set http-tokens" },
	NS_HTTP_TOKENS_SETTING("http-tokens", set_http_token, "the HTTP API"),
	{ .name = "hold-time", .type = NS_SET_SECONDS, CFG(hold_time_s), .min = 3, .max = 3600,
	  .arg = "SEC",
	  .help = "a peer silent this long is dropped; heartbeats every hold-time / 3 "
		  "(default " STR(NS_HOLD_TIME_S) ")" },
	{ .name = "negotiate-timeout", .type = NS_SET_SECONDS, CFG(negotiate_timeout_s),
	  .min = 1, .max = 300, .arg = "SEC",
	  .help = "for a whole tunnel negotiation; also the relay's deadline for the second "
		  "side (default " STR(NS_NEGOTIATE_TIMEOUT_S) ")" },
	{ .name = "probe-timeout-ms", .type = NS_SET_U32, CFG(probe_timeout_ms), .min = 10,
	  .max = 60000, .arg = "MS",
	  .help = "reachability probe of an agent's tunnel-listen port, in milliseconds "
		  "(default 1000)" },
	{ .name = "login-timeout", .type = NS_SET_SECONDS, CFG(login_timeout_s), .min = 1,
	  .max = 300, .arg = "SEC",
	  .help = "from connect to LOGIN (default 10)" },
	{ .name = "session-history", .type = NS_SET_U32, CFG(session_history), .max = 1000000,
	  .arg = "N", .help = "finished sessions kept for /api/v1/sessions (default 1000)" },
	{ .name = "session-flows", .type = NS_SET_U32, CFG(session_flows),
	  .max = 1000000, .arg = "N",
	  .help = "flows (extra connections) one session may ask for (default 4096)" },
	{ .name = "max-services-per-agent", .type = NS_SET_U32, CFG(max_services),
	  .max = 1000000, .arg = "N",
	  .help = "services one agent may publish; one more is refused with ERROR LIMIT "
		  "(0: no limit; default " STR(BROKER_SERVICES_DEFAULT) ")" },
	{ .name = "tunnel-rate", .type = NS_SET_U32, CFG(tunnel_rate), .max = 1000000,
	  .arg = "N",
	  .help = "tunnel requests (CONNECT and FLOW) one agent may send per second, on "
		  "average; more are refused with ERROR LIMIT (0: no limit; default "
		  STR(BROKER_TUNNEL_RATE) ")" },
	{ .name = "tunnel-burst", .type = NS_SET_U32, CFG(tunnel_burst), .min = 1,
	  .max = 1000000, .arg = "N",
	  .help = "... and at once, after a quiet moment (default " STR(BROKER_TUNNEL_BURST)
		  ")" },
	{ .name = "max-sessions-per-agent", .type = NS_SET_U32, CFG(max_agent_sessions),
	  .max = 1000000, .arg = "N",
	  .help = "sessions one agent may have asked for (CONNECT or FLOW) that are being "
		  "negotiated or whose relay splice is in its handshake (until the relay "
		  "reports it done, at most negotiate-timeout + 2 s); one more is refused "
		  "with ERROR LIMIT (0: no limit; default " STR(BROKER_AGENT_SESSIONS) ")" },
	{ .name = "max-splices-per-pair", .type = NS_SET_U32, CFG(max_pair_splices),
	  .max = 1000000, .arg = "N",
	  .help = "relay splices between two agents (either way round) in their handshake, "
		  "when they hold relay ports: from the broker's request until the relay "
		  "reports the splice done, at most negotiate-timeout + 2 s; one more "
		  "session on a relay path between them is refused with ERROR LIMIT (0: no "
		  "limit; default " STR(BROKER_PAIR_SPLICES) ")" },
	{ .name = "max-unauth", .type = NS_SET_U32, CFG(max_unauth), .max = 1000000,
	  .arg = "N",
	  .help = "connections not logged in yet (TLS handshake, LOGIN) at once; one more "
		  "is closed at accept (0: no limit; default " STR(BROKER_UNAUTH) "). Before "
		  "login a message larger than a LOGIN closes the connection" },
	{ .name = "max-unauth-per-source", .type = NS_SET_U32, CFG(max_unauth_source),
	  .max = 1000000, .arg = "N",
	  .help = "... of them from one IP address (0: no limit; default "
		  STR(BROKER_UNAUTH_PER_SOURCE) ")" },
	{ .name = "login-failures-free", .type = NS_SET_U32, CFG(login_free), .max = 1000000,
	  .arg = "N",
	  .help = "failed logins of one name from one IP address before it must wait: 1 s, "
		  "then twice as long after each further failure, up to login-backoff-max "
		  "(an address's failures for any names: 4 times as many). A success clears "
		  "the name's; failures are forgotten after 15 min (0: no backoff; default "
		  STR(BROKER_LOGIN_FREE) ")" },
	{ .name = "login-backoff-max", .type = NS_SET_SECONDS, CFG(login_backoff_max_s),
	  .min = 1, .max = 3600, .arg = "SEC",
	  .help = "the longest wait after failed logins (default "
		  STR(BROKER_LOGIN_BACKOFF_MAX) ")" },
	{ .name = "msg-rate", .type = NS_SET_U32, CFG(msg_rate), .max = 10000000, .arg = "N",
	  .help = "messages per second one logged-in agent may send; an agent over it is "
		  "disconnected (0: no limit; default " STR(BROKER_MSG_RATE) ")" },
	{ .name = "msg-burst", .type = NS_SET_U32, CFG(msg_burst), .min = 1, .max = 10000000,
	  .arg = "N",
	  .help = "... and at once, after a quiet moment (default " STR(BROKER_MSG_BURST) ")" },
	{ .name = "public-connect-timeout", .type = NS_SET_SECONDS, CFG(public_timeout_s),
	  .min = 1, .max = 300, .arg = "SEC",
	  .help = "how long a relay holds a public port's client (its SYN) for the provider "
		  "to connect; then the client gets an RST (default "
		  STR(BROKER_PUBLIC_TIMEOUT_S) ")" },
	{ .name = "public-max-conns", .type = NS_SET_U32, CFG(public_max_conns), .min = 1,
	  .max = 1000000, .arg = "N",
	  .help = "live connections of one exposed service's public port, when its agent "
		  "gives no max-conns or a larger one (default " STR(BROKER_PUBLIC_MAX_CONNS)
		  ")" },
	{ .name = "discovery-address", .type = NS_SET_FUNC, .parse = set_disc,
	  .what = "an IP address (no port)", .arg = "IP",
	  .help = "a second address of this host: with it the broker answers NAT behaviour "
		  "discovery (RFC 5780 style, UDP and TCP) on discovery-port and the next "
		  "two ports of it and of the listen address (which must then be one "
		  "address of the same family), and every agent tests its NAT at login. "
		  "Default: none (no discovery)" },
	{ .name = "discovery-relay", .type = NS_SET_STR, CFG(disc_relay), .arg = "NAME",
	  .help = "for a broker with one address: NAT behaviour discovery with relay NAME's "
		  "address as the second (the relay needs discovery-port; the broker answers "
		  "on discovery-port of the listen address, the relay hands it what comes "
		  "to its own). Instead of discovery-address. Default: none" },
	{ .name = "discovery-port", .type = NS_SET_U32, CFG(disc_port), .min = 1, .max = 65533,
	  .arg = "PORT",
	  .help = "the first of the three discovery ports (default " STR(NS_DISC_PORT)
		  "; UDP and TCP P and P+1 answer, TCP P+2 is where connect-backs come from)" },
	{ .name = "hole-punching", .type = NS_SET_FUNC, .parse = set_punch,
	  .what = "true or false", .arg = "BOOL",
	  .help = "when neither agent is reachable and NAT discovery found that both NATs "
		  "map TCP endpoint-independently and keep ports, connect them to each "
		  "other directly (TCP simultaneous open) before using a relay (default true)" },
	{ .name = "punch-timeout", .type = NS_SET_SECONDS, CFG(punch_timeout_s), .min = 1,
	  .max = 60, .arg = "SEC",
	  .help = "a punched tunnel must be up this long after the broker's answer, else the "
		  "subscriber asks again and gets a relay (default " STR(BROKER_PUNCH_TIMEOUT_S)
		  ")" },
	{ .name = "relay-rtt-slack", .type = NS_SET_U32, CFG(relay_rtt_slack_ms), .max = 60000,
	  .arg = "MS",
	  .help = "a relay session gets the relay with the smallest sum of both agents' round "
		  "trips (they measure them at the relays' echo-port); relays within this many "
		  "milliseconds of it count as as near, and the least loaded of them is taken "
		  "(default " STR(BROKER_RTT_SLACK_MS) ")" },
	{ .name = "user", .type = NS_SET_FUNC, .parse = set_user, .what = "a user name",
	  .arg = "NAME",
	  .help = "once its sockets are bound, run as this user (default " NS_USER_DEFAULT
		  ") with no capabilities and no_new_privs; root: stay root" },
	{ .name = "tls-cert", .type = NS_SET_STR, CFG(tls_cert), .arg = "FILE",
	  .help = "the broker's certificate (PEM; a chain: the broker's first). If neither it "
		  "nor tls-key exists, a P-256 key and a self-signed certificate are made there "
		  "at start (default " BROKER_TLS_CERT_DEFAULT ")" },
	{ .name = "tls-key", .type = NS_SET_STR, CFG(tls_key), .arg = "FILE",
	  .help = "its private key (PEM; made with mode 0600; default " BROKER_TLS_KEY_DEFAULT
		  ")" },
	{ .name = "insecure", .type = NS_SET_FLAG, CFG(insecure),
	  .help = "also accept agents and relays in plain text (their insecure: true): "
		  "each such login is logged as a warning and counted in /metrics. Without "
		  "it every control connection is TLS 1.3" },
	{ .name = "fingerprint", .type = NS_SET_FLAG, CFG(print_fingerprint),
	  .flags = NS_SET_CMDLINE,
	  .help = "command line only: print the certificate's fingerprint (sha256:...) for "
		  "the agents' and relays' broker-fingerprint, making key and certificate "
		  "first if neither exists, and exit" },
	{ .name = NULL },
};

const struct ns_settings broker_settings = {
	.prog = "natsplice-broker",
	.usage =
"Usage: natsplice-broker [-f broker.yaml] [-d] [-v]... [-n] [OPTIONS]\n"
"       natsplice-broker --fingerprint [-f broker.yaml]\n"
"\n"
"The natsplice broker: agents and relays log in to it; it keeps the directory\n"
"of published services, checks the ACL, negotiates each tunnel, picks the path\n"
"(direct, reverse or through the relay nearest to both agents) and instructs\n"
"the relay.\n"
"It stays in the foreground (unless -d), logs to stderr and prints a line\n"
"containing \"ready\" once it listens. SIGTERM or SIGINT stop it cleanly.\n"
"SIGHUP (systemctl reload) reads the file and the command line again: agents,\n"
"relays, secrets, the ACL and the limits change at once; established sessions\n"
"stay; a logged-in agent or relay the file removed (or whose secret changed)\n"
"is disconnected. listen, http, tls-cert, tls-key and user need a restart\n"
"(logged). A file with an error is refused whole: the old settings stay. The\n"
"broker re-reads the file as its user (after dropping root): let it read it.\n"
"Control connections are TLS 1.3; agents and relays pin the certificate by\n"
"the fingerprint that --fingerprint prints (and the log shows at start).\n",
	.footer =
"agents, relays and services (the ACL) are lists in the file\n"
"(examples/broker.yaml documents it). -d used to be accepted and ignored; it\n"
"now detaches, as in the agent and the relay.\n",
	.set = settings,
	.file_keys = file_keys,
	.opts = NS_OPT_DETACH | NS_OPT_VERSION,
	.config_default = BROKER_CONFIG_DEFAULT,
	.version = NS_VERSION,
	.load_tree = load_tree,
	.check = check,
	.warn = warn,
};

/* After yc_load_*: the tree into c; c is freed on error. */
static int finish(struct broker_cfg *c, struct yc_node *root, int ret, char *err, size_t errlen)
{
	if (!ret)
		ret = ns_settings_yaml(&broker_settings, c, root, err, errlen);
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (ret)
		cfg_free(c);
	yc_free(root);
	return ret;
}

int cfg_load_file(struct broker_cfg *c, const char *path, char *err, size_t errlen)
{
	struct yc_node *root = NULL;
	int ret;

	cfg_defaults(c);
	ret = yc_load_file(path, &root, err, errlen);
	return finish(c, root, ret, err, errlen);
}

int cfg_load_string(struct broker_cfg *c, const char *name, const char *text,
		    char *err, size_t errlen)
{
	struct yc_node *root = NULL;
	int ret;

	cfg_defaults(c);
	ret = yc_load_string(name, text, &root, err, errlen);
	return finish(c, root, ret, err, errlen);
}

int cfg_parse(struct broker_cfg *c, struct ns_cmdline *cl, int argc, char **argv, int *status)
{
	cfg_defaults(c);
	if (!ns_settings_parse(&broker_settings, c, cl, argc, argv, status))
		return 0;
	cfg_free(c);
	return 1;
}
