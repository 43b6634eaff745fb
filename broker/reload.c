// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * SIGHUP: broker.yaml (and the command line) again, into a fresh struct;
 * checked whole before anything changes, then swapped in. Established
 * sessions and splices are untouched. A logged-in agent or relay that the
 * new file removed, or whose secret changed, is disconnected. Settings tied
 * to what start-up opened (sockets, certificate, user) keep their old value
 * until a restart, with a warning.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "settings.h"
#include "util.h"

/* "2 agents added (a, b)": the names of v that other lacks (secrets: that
 * other has with another secret). */
static void say_names(struct ns_summary *s, const char *what, const char *how,
		      const struct broker_cred *v, size_t n, const struct broker_cred *other,
		      size_t nother, bool secrets)
{
	char names[512];
	size_t i, cnt = 0, off = 0;

	names[0] = '\0';
	for (i = 0; i < n; i++) {
		int j = cfg_cred_index(other, nother, v[i].name);

		if (secrets ? j < 0 || !strcmp(v[i].secret, other[j].secret) : j >= 0)
			continue;
		cnt++;
		if (off < sizeof(names))
			off += snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "",
					v[i].name);
	}
	if (cnt)
		ns_summary_add(s, "%zu %s%s %s (%s)", cnt, what, cnt == 1 ? "" : "s", how, names);
}

/* Settings that need a restart keep their old value in n. */
static void keep_fixed(const struct broker_cfg *o, struct broker_cfg *n)
{
	static const char *const note = "cannot change while the broker runs: the old value "
					"stays until a restart";

	if (o->listen_len != n->listen_len || memcmp(&o->listen, &n->listen, o->listen_len)) {
		log_warn("reload: listen %s", note);
		n->listen = o->listen;
		n->listen_len = o->listen_len;
	}
	if (o->http_len != n->http_len || memcmp(&o->http, &n->http, o->http_len)) {
		log_warn("reload: http %s", note);
		n->http = o->http;
		n->http_len = o->http_len;
	}
	if (strcmp(o->tls_cert, n->tls_cert) || strcmp(o->tls_key, n->tls_key)) {
		log_warn("reload: tls-cert and tls-key %s", note);
		memcpy(n->tls_cert, o->tls_cert, sizeof(n->tls_cert));
		memcpy(n->tls_key, o->tls_key, sizeof(n->tls_key));
	}
	if (strcmp(o->user, n->user)) {
		log_warn("reload: user %s", note);
		memcpy(n->user, o->user, sizeof(n->user));
	}
	if (o->has_disc != n->has_disc || o->disc_port != n->disc_port ||
	    (o->has_disc && memcmp(&o->disc, &n->disc, sizeof(o->disc)))) {
		log_warn("reload: discovery-address and discovery-port %s", note);
		n->has_disc = o->has_disc;
		n->disc = o->disc;
		n->disc_port = o->disc_port;
	}
	if (strcmp(o->disc_relay, n->disc_relay)) {
		log_warn("reload: discovery-relay %s", note);
		memcpy(n->disc_relay, o->disc_relay, sizeof(n->disc_relay));
	}
}

/* The numbers and flags of the table that take effect at once. */
static void say_scalars(struct ns_summary *s, const struct broker_cfg *o, const struct broker_cfg *n)
{
	const struct ns_setting *st;

	for (st = broker_settings.set; st->name; st++) {
		const char *a = (const char *)o + st->off, *b = (const char *)n + st->off;

		if (st->flags & NS_SET_CMDLINE)
			continue;
		if ((st->type == NS_SET_U32 || st->type == NS_SET_SECONDS) &&
		    *(const __u32 *)a != *(const __u32 *)b)
			ns_summary_add(s, "%s %u -> %u", st->name, *(const __u32 *)a, *(const __u32 *)b);
		else if (st->type == NS_SET_FLAG && *(const bool *)a != *(const bool *)b)
			ns_summary_add(s, "%s %s", st->name, *(const bool *)b ? "on" : "off");
	}
}

static bool acls_equal(const struct broker_acl *a, const struct broker_acl *b)
{
	size_t i;

	if (strcmp(a->service, b->service) || a->nallow != b->nallow)
		return false;
	for (i = 0; i < a->nallow; i++)
		if (strcmp(a->allow[i], b->allow[i]))
			return false;
	return true;
}

static void say_acls(struct ns_summary *s, const struct broker_cfg *o, const struct broker_cfg *n)
{
	size_t i, added = 0, removed = 0, changed = 0;

	for (i = 0; i < n->nacls; i++) {
		const struct broker_acl *x = acl_find(o, n->acls[i].service);

		if (!x)
			added++;
		else if (!acls_equal(x, &n->acls[i]))
			changed++;
	}
	for (i = 0; i < o->nacls; i++)
		if (!acl_find(n, o->acls[i].service))
			removed++;
	if (added)
		ns_summary_add(s, "%zu ACL entr%s added", added, added == 1 ? "y" : "ies");
	if (removed)
		ns_summary_add(s, "%zu ACL entr%s removed", removed, removed == 1 ? "y" : "ies");
	if (changed)
		ns_summary_add(s, "%zu ACL entr%s changed", changed, changed == 1 ? "y" : "ies");
}

/* Logged-in peers the new file no longer lets in: closed now. */
static void disconnect_gone(struct broker *b, const struct broker_cfg *n)
{
	const struct broker_cfg *o = b->cfg;
	size_t i;

	for (i = 0; i < o->nagents + o->nrelays; i++) {
		bool agent = i < o->nagents;
		const struct broker_cred *c = agent ? &o->agents[i] : &o->relays[i - o->nagents];
		struct peer *p = agent ? b->agents[i] : b->relays[i - o->nagents];
		int j = agent ? cfg_agent_index(n, c->name) : cfg_relay_index(n, c->name);
		const char *what = agent ? "agent" : "relay";
		char why[BROKER_NAME_MAX + 64];

		if (!p || p->state == PEER_DRAIN)
			continue;
		if (j < 0)
			snprintf(why, sizeof(why), "%s %s removed from %s", what, c->name,
				 b->config_name);
		else if (strcmp(c->secret, (agent ? n->agents : n->relays)[j].secret))
			snprintf(why, sizeof(why), "%s %s: secret changed in %s", what, c->name,
				 b->config_name);
		else
			continue;
		log_warn("%s: disconnected", why);
		peer_close_error(p, NS_ERR_AUTH, "%s", why);
	}
}

/* Room in b->retired for the names of o that n drops: 0 or -ENOMEM. */
static int retire_room(struct broker *b, const struct broker_cfg *o, const struct broker_cfg *n)
{
	size_t i, gone = 0;
	char **r;

	for (i = 0; i < o->nagents; i++)
		gone += cfg_agent_index(n, o->agents[i].name) < 0;
	for (i = 0; i < o->nrelays; i++)
		gone += cfg_relay_index(n, o->relays[i].name) < 0;
	r = realloc(b->retired, (b->nretired + gone + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	b->retired = r;
	return 0;
}

/*
 * The names of n's agents and relays become the old strings where the name
 * stays (peers and session records point at them, and compare them by
 * pointer); the names that go are kept (retire_room) for the records that
 * still show them.
 */
static void adopt_names(struct broker *b, struct broker_cred *ov, size_t on,
			struct broker_cred *nv, size_t nn)
{
	size_t i;

	for (i = 0; i < on; i++) {
		int j = cfg_cred_index(nv, nn, ov[i].name);
		char *t = ov[i].name;

		if (j < 0) {
			b->retired[b->nretired++] = t;
			ov[i].name = NULL;
		} else {
			ov[i].name = nv[j].name;
			nv[j].name = t;
		}
	}
}

/* The logged-in peers (none of them removed: disconnect_gone came first) at
 * their indexes in n, into ag and rl, which replace b->agents and b->relays. */
static void reindex(struct broker *b, const struct broker_cfg *n, struct peer **ag,
		    struct peer **rl)
{
	struct peer *p;

	for (p = b->peers; p; p = p->next) {
		if (p->state == PEER_AGENT && b->agents[p->idx] == p) {
			p->idx = cfg_agent_index(n, p->name);
			ag[p->idx] = p;
		} else if (p->state == PEER_RELAY && b->relays[p->idx] == p) {
			p->idx = cfg_relay_index(n, p->name);
			rl[p->idx] = p;
		}
	}
	free(b->agents);
	free(b->relays);
	b->agents = ag;
	b->relays = rl;
}

static void summarize(struct ns_summary *s, const struct broker_cfg *o, const struct broker_cfg *n)
{
	say_names(s, "agent", "added", n->agents, n->nagents, o->agents, o->nagents, false);
	say_names(s, "agent", "removed", o->agents, o->nagents, n->agents, n->nagents, false);
	say_names(s, "agent secret", "changed", n->agents, n->nagents, o->agents, o->nagents,
		  true);
	say_names(s, "relay", "added", n->relays, n->nrelays, o->relays, o->nrelays, false);
	say_names(s, "relay", "removed", o->relays, o->nrelays, n->relays, n->nrelays, false);
	say_names(s, "relay secret", "changed", n->relays, n->nrelays, o->relays, o->nrelays,
		  true);
	say_acls(s, o, n);
	say_scalars(s, o, n);
	if (o->no_punch != n->no_punch)	/* (a FUNC setting: say_scalars skips it) */
		ns_summary_add(s, "hole-punching %s", n->no_punch ? "off" : "on");
}

void broker_reload(struct broker *b)
{
	struct peer **ag = NULL, **rl = NULL;
	struct broker_cfg n, old;
	struct ns_summary s = {};
	char err[1024];

	cfg_defaults(&n);
	if (ns_settings_reload(&broker_settings, &n, b->config, b->argc, b->argv, err,
			       sizeof(err))) {
		log_err("reload refused, the old settings stay: %s", err);
		goto out;
	}
	keep_fixed(b->cfg, &n);
	summarize(&s, b->cfg, &n);
	/* Whatever can fail, first: from here on nothing fails half way. */
	ag = calloc(n.nagents ? n.nagents : 1, sizeof(*ag));
	rl = calloc(n.nrelays ? n.nrelays : 1, sizeof(*rl));
	if (!ag || !rl || retire_room(b, b->cfg, &n)) {
		log_err("reload refused, the old settings stay: out of memory");
		goto out;
	}
	disconnect_gone(b, &n);
	adopt_names(b, b->cfg->agents, b->cfg->nagents, n.agents, n.nagents);
	adopt_names(b, b->cfg->relays, b->cfg->nrelays, n.relays, n.nrelays);
	reindex(b, &n, ag, rl);
	ag = rl = NULL;
	old = *b->cfg;
	*b->cfg = n;
	cfg_defaults(&n);	/* (now b's) */
	cfg_free(&old);
	log_info("reload: %s", s.off ? s.buf : "nothing changed");
	/* Sessions waiting for a relay: one the file added may log in now, and
	 * session-flows or the ACL may have changed for the next request. */
	sess_relay_online(b);
out:
	free(ag);
	free(rl);
	cfg_free(&n);
}

void broker_reload_free(struct broker *b)
{
	size_t i;

	for (i = 0; i < b->nretired; i++)
		free(b->retired[i]);
	free(b->retired);
	b->retired = NULL;
	b->nretired = 0;
}
