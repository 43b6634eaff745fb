// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * broker.yaml: who may log in, the optional ACL, listen addresses and
 * timers. Every error names file:line:col; nothing is logged-and-ignored.
 * Pure (yconf + util only) so that the unit tests can include it.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "privs.h"
#include "util.h"
#include "yconf.h"

void cfg_defaults(struct broker_cfg *c)
{
	memset(c, 0, sizeof(*c));
	ns_parse_sockaddr("0.0.0.0:7700", 0, &c->listen, &c->listen_len);
	c->hold_time_s = NS_HOLD_TIME_S;
	c->negotiate_timeout_s = NS_NEGOTIATE_TIMEOUT_S;
	c->probe_timeout_ms = 1000;
	c->login_timeout_s = 10;
	c->session_history = 1000;
	snprintf(c->user, sizeof(c->user), "%s", NS_USER_DEFAULT);
}

static void creds_free(struct broker_cred *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].secret);
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

static int cred_index(const struct broker_cred *v, size_t n, const char *name)
{
	struct broker_cred key = { .name = (char *)name };
	const struct broker_cred *f = n ? bsearch(&key, v, n, sizeof(*v), cred_cmp) : NULL;

	return f ? (int)(f - v) : -1;
}

int cfg_agent_index(const struct broker_cfg *c, const char *name)
{
	return cred_index(c->agents, c->nagents, name);
}

int cfg_relay_index(const struct broker_cfg *c, const char *name)
{
	return cred_index(c->relays, c->nrelays, name);
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

/* agents: / relays: a sequence of { name, secret }. */
static int load_creds(const struct yc_node *seq, const char *what, struct broker_cred **out,
		      size_t *nout, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "secret", NULL };
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

static int load_addr(const struct yc_node *n, struct sockaddr_storage *ss, socklen_t *len,
		     char *err, size_t errlen)
{
	const char *s;
	int ret = yc_scalar(n, &s, err, errlen);

	if (ret)
		return ret;
	if (ns_parse_sockaddr(s, 0, ss, len))
		return yc_error(n, err, errlen, "expected IP:PORT or [IPv6]:PORT, got '%s'", s);
	return 0;
}

/* user: a name the system knows (checked now, not when the broker drops root). */
static int load_user(const struct yc_node *n, char *user, size_t len, char *err, size_t errlen)
{
	const char *s;
	int ret = yc_scalar(n, &s, err, errlen);

	if (ret)
		return ret;
	if (!*s || strlen(s) >= len)
		return yc_error(n, err, errlen, "expected a user name, got '%s'", s);
	if (!getpwnam(s))
		return yc_error(n, err, errlen, "no such user '%s'", s);
	snprintf(user, len, "%s", s);
	return 0;
}

static int load_u32(const struct yc_node *n, __u32 *v, __u32 lo, __u32 hi, const char *unit,
		    char *err, size_t errlen)
{
	unsigned int x;
	int ret = yc_u32(n, &x, err, errlen);

	if (ret)
		return ret;
	if (x < lo || x > hi)
		return yc_error(n, err, errlen, "must be %u..%u %s", lo, hi, unit);
	*v = x;
	return 0;
}

static int load_tree(struct broker_cfg *c, const struct yc_node *root, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"listen", "http", "agents", "relays", "services", "hold-time",
		"negotiate-timeout", "probe-timeout-ms", "login-timeout", "session-history", "user",
		NULL
	};
	const struct yc_node *n;
	int ret;

	ret = yc_check_keys(root, keys, err, errlen);
	if (!ret && (n = yc_get(root, "listen")))
		ret = load_addr(n, &c->listen, &c->listen_len, err, errlen);
	if (!ret && (n = yc_get(root, "http")))
		ret = load_addr(n, &c->http, &c->http_len, err, errlen);
	if (!ret && (n = yc_get(root, "hold-time")))
		ret = load_u32(n, &c->hold_time_s, 3, 3600, "seconds", err, errlen);
	if (!ret && (n = yc_get(root, "negotiate-timeout")))
		ret = load_u32(n, &c->negotiate_timeout_s, 1, 300, "seconds", err, errlen);
	if (!ret && (n = yc_get(root, "probe-timeout-ms")))
		ret = load_u32(n, &c->probe_timeout_ms, 10, 60000, "milliseconds", err, errlen);
	if (!ret && (n = yc_get(root, "login-timeout")))
		ret = load_u32(n, &c->login_timeout_s, 1, 300, "seconds", err, errlen);
	if (!ret && (n = yc_get(root, "session-history")))
		ret = load_u32(n, &c->session_history, 0, 1000000, "sessions", err, errlen);
	if (!ret && (n = yc_get(root, "user")))
		ret = load_user(n, c->user, sizeof(c->user), err, errlen);
	if (!ret && (n = yc_get(root, "agents")))
		ret = load_creds(n, "agent", &c->agents, &c->nagents, err, errlen);
	if (!ret && (n = yc_get(root, "relays")))
		ret = load_creds(n, "relay", &c->relays, &c->nrelays, err, errlen);
	if (!ret && (n = yc_get(root, "services")))
		ret = load_acls(c, n, err, errlen);
	return ret;
}

/* After yc_load_*: the tree into c; c is freed on error. */
static int finish(struct broker_cfg *c, struct yc_node *root, int ret, char *err, size_t errlen)
{
	if (!ret)
		ret = load_tree(c, root, err, errlen);
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
