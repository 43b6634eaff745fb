// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * SIGHUP: agent.yaml (and the command line) again, into a fresh struct,
 * checked whole before anything changes, then swapped in:
 * - services: the new and changed ones are PUBLISHed, the removed ones
 *   UNPUBLISHed; a removed service's tunnels that are not forwarding yet
 *   (pooled ones waiting for a client among them) are closed, its running
 *   ones go on until they end;
 * - subscriptions: new ones listen, removed ones stop listening (their
 *   pooled tunnels and UDP clients go, their TCP clients' tunnels go on);
 * - timers take effect at their next use;
 * - a new broker, name, secret or pin: a new login with them.
 * Tunnels and sessions point into the config that made them: an old config
 * (and a removed subscription's listener) is freed once nothing does.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "agent.h"
#include "log.h"

static bool inside(const void *p, const void *base, size_t n, size_t size)
{
	return p && base && (uintptr_t)p >= (uintptr_t)base &&
	       (uintptr_t)p < (uintptr_t)base + n * size;
}

static bool pub_of(const void *p, const struct agent_cfg *c)
{
	return inside(p, c->pub, c->npub, sizeof(*c->pub));
}

static bool sub_of(const void *p, const struct agent_cfg *c)
{
	return inside(p, c->sub, c->nsub, sizeof(*c->sub));
}

static bool lis_used(const struct agent *a, const struct agent_listener *l)
{
	const struct agent_tunnel *t;
	const struct agent_session *s;

	for (t = a->tunnels; t; t = t->next)
		if (t->lis && (t->lis == l || t->lis->main == l))
			return true;
	for (s = a->sessions; s; s = s->next)
		if (s->lis == l)
			return true;
	return false;
}

static bool cfg_used(const struct agent *a, const struct agent_cfg *c)
{
	const struct agent_tunnel *t;
	const struct agent_session *s;
	const struct agent_listener *l;

	for (t = a->tunnels; t; t = t->next)
		if (pub_of(t->pub, c) || (t->lis && sub_of(t->lis->cfg, c)))
			return true;
	for (s = a->sessions; s; s = s->next)
		if (pub_of(s->pub, c) || (s->lis && sub_of(s->lis->cfg, c)))
			return true;
	for (l = a->lis_retired; l; l = l->rnext)
		if (sub_of(l->cfg, c))
			return true;
	return false;
}

/* What earlier reloads kept and nothing uses any more. */
static void collect(struct agent *a)
{
	struct agent_listener **lp, *l;
	size_t i, k = 0;

	for (lp = &a->lis_retired; (l = *lp);) {
		if (lis_used(a, l)) {
			lp = &l->rnext;
			continue;
		}
		*lp = l->rnext;
		agent_sub_free(l);
	}
	for (i = 0; i < a->ncfg_retired; i++) {
		struct agent_cfg *c = a->cfg_retired[i];

		if (cfg_used(a, c)) {
			a->cfg_retired[k++] = c;
			continue;
		}
		agent_cfg_free(c);
		free(c);
	}
	a->ncfg_retired = k;
}

void agent_reload_free(struct agent *a)
{
	struct agent_listener *l;
	size_t i;

	while ((l = a->lis_retired)) {
		a->lis_retired = l->rnext;
		agent_sub_free(l);
	}
	for (i = 0; i < a->ncfg_retired; i++) {
		agent_cfg_free(a->cfg_retired[i]);
		free(a->cfg_retired[i]);
	}
	free(a->cfg_retired);
	a->cfg_retired = NULL;
	a->ncfg_retired = 0;
}

static const struct agent_pub *pub_find(const struct agent_cfg *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->npub; i++)
		if (!strcmp(c->pub[i].name, name))
			return &c->pub[i];
	return NULL;
}

/* The same listeners (the rest, pool and pool-idle, applies to them as it is). */
static bool sub_same(const struct agent_sub *x, const struct agent_sub *y)
{
	return !strcmp(x->service, y->service) && agent_sa_equal(&x->listen, &y->listen) &&
	       x->proto == y->proto && !memcmp(&x->ports, &y->ports, sizeof(x->ports)) &&
	       !memcmp(&x->reverse, &y->reverse, sizeof(x->reverse)) && !strcmp(x->alg, y->alg);
}

static bool pub_same(const struct agent_pub *x, const struct agent_pub *y)
{
	return !strcmp(x->name, y->name) && agent_sa_equal(&x->target, &y->target) &&
	       x->proto == y->proto && x->compress == y->compress && x->plain == y->plain &&
	       !memcmp(&x->ports, &y->ports, sizeof(x->ports)) &&
	       !memcmp(&x->reverse, &y->reverse, sizeof(x->reverse)) && !strcmp(x->alg, y->alg) &&
	       !memcmp(&x->expose, &y->expose, sizeof(x->expose)) && x->proxy == y->proxy;
}

/* "2 services removed (home-nas/web, home-nas/ssh)" */
struct names {
	char buf[512];
	size_t off, n;
};

static void names_add(struct names *l, const char *agent, const char *name)
{
	l->n++;
	if (l->off < sizeof(l->buf))
		l->off += snprintf(l->buf + l->off, sizeof(l->buf) - l->off, "%s%s%s%s",
				   l->off ? ", " : "", agent ? agent : "", agent ? "/" : "", name);
}

static void names_say(struct ns_summary *s, const struct names *l, const char *what,
		      const char *how)
{
	if (l->n)
		ns_summary_add(s, "%zu %s%s %s (%s)", l->n, what, l->n == 1 ? "" : "s", how,
			       l->buf);
}

/* Tunnels of a service the reload removed or changed that are not forwarding
 * yet: closed (a pooled one would let a new client in). Running ones stay. */
static void close_unborn(struct agent *a, const struct agent_cfg *n)
{
	struct agent_tunnel *t, *next;

	for (t = a->tunnels; t; t = next) {
		const struct agent_pub *p;

		next = t->next;
		if (t->role != TUN_ROLE_PROVIDER || !t->pub || t->flow || t->state >= TUN_TARGET)
			continue;
		p = pub_find(n, t->pub->name);
		if (p && pub_same(p, t->pub))
			continue;
		agent_tunnel_close(t, false, p ? "its service changed (reload)" :
					      "its service was withdrawn (reload)");
		next = a->tunnels;	/* closing may have freed others: start over */
	}
}

/* A removed subscription: no more clients; pooled tunnels (no client yet)
 * and UDP clients (they answer through its socket) go with it. */
static void retire_sub(struct agent *a, struct agent_listener *l)
{
	struct agent_tunnel *t, *next;

	agent_sub_close(l);
	for (t = a->tunnels; t; t = next) {
		next = t->next;
		if (t->role == TUN_ROLE_SUBSCRIBER && t->lis == l && t->pooled) {
			agent_tunnel_close(t, false, "its subscription was removed (reload)");
			next = a->tunnels;
		}
	}
	l->rnext = a->lis_retired;
	a->lis_retired = l;
}

/* A kept subscription's listeners (and its sessions') now point at sub. */
static void repoint_sub(struct agent *a, struct agent_listener *l, const struct agent_sub *sub)
{
	const struct agent_sub *old = l->cfg;
	struct agent_session *s;
	struct agent_listener *x;

	for (x = l; x; x = x->snext)
		x->cfg = sub;
	for (s = a->sessions; s; s = s->next)
		for (x = s->listeners; x; x = x->snext)
			if (x->cfg == old)
				x->cfg = sub;
}

static bool broker_same(const struct agent_cfg *o, const struct agent_cfg *n)
{
	return o->broker_len == n->broker_len && !memcmp(&o->broker, &n->broker, o->broker_len) &&
	       !strcmp(o->name, n->name) && !strcmp(o->secret, n->secret) &&
	       !memcmp(&o->tls, &n->tls, sizeof(o->tls));
}

static void say_timers(struct ns_summary *s, const struct agent_cfg *o,
		       const struct agent_cfg *n)
{
	if (o->relay_probe_s != n->relay_probe_s)
		ns_summary_add(s, "relay-probe-interval %u -> %u s", o->relay_probe_s,
			       n->relay_probe_s);
	if (o->udp_idle_s != n->udp_idle_s)
		ns_summary_add(s, "udp-idle %u -> %u s", o->udp_idle_s, n->udp_idle_s);
	if (o->connect_timeout_s != n->connect_timeout_s)
		ns_summary_add(s, "connect-timeout %u -> %u s", o->connect_timeout_s,
			       n->connect_timeout_s);
	if (o->udp_fallback_s != n->udp_fallback_s)
		ns_summary_add(s, "udp-fallback %u -> %u s", o->udp_fallback_s,
			       n->udp_fallback_s);
	if (o->no_ktls != n->no_ktls)
		ns_summary_add(s, "ktls %s", n->no_ktls ? "off" : "auto");
}

/* The services: what to PUBLISH (changed[i] for n->pub[i]) and UNPUBLISH. */
static void diff_pubs(const struct agent_cfg *o, const struct agent_cfg *n, bool *changed,
		      const char **gone, size_t *ngone, struct ns_summary *s)
{
	struct names add = {}, rm = {}, chg = {};
	size_t i;

	for (i = 0; i < n->npub; i++) {
		const struct agent_pub *p = pub_find(o, n->pub[i].name);

		changed[i] = !p || !pub_same(p, &n->pub[i]);
		if (changed[i])
			names_add(p ? &chg : &add, n->name, n->pub[i].name);
	}
	*ngone = 0;
	for (i = 0; i < o->npub; i++)
		if (!pub_find(n, o->pub[i].name)) {
			gone[(*ngone)++] = o->pub[i].name;
			names_add(&rm, o->name, o->pub[i].name);
		}
	names_say(s, &add, "service", "added");
	names_say(s, &rm, "service", "removed");
	names_say(s, &chg, "service", "changed");
}

/* The subscriptions: lis[i] for n->sub[i], kept or opened; the rest retired. */
static void swap_subs(struct agent *a, const struct agent_cfg *n, struct agent_listener **lis,
		      bool *taken, struct ns_summary *s)
{
	const struct agent_cfg *o = a->cfg;
	struct names add = {}, rm = {};
	size_t i, j;

	for (i = 0; i < n->nsub; i++)
		for (j = 0; j < o->nsub && !lis[i]; j++)
			if (!taken[j] && sub_same(&o->sub[j], &n->sub[i])) {
				taken[j] = true;
				lis[i] = a->lis[j];
				repoint_sub(a, lis[i], &n->sub[i]);
			}
	/* the removed ones first: a new one may listen where one of them did */
	for (j = 0; j < o->nsub; j++)
		if (!taken[j]) {
			names_add(&rm, NULL, o->sub[j].service);
			retire_sub(a, a->lis[j]);
		}
	for (i = 0; i < n->nsub; i++)
		if (!lis[i]) {
			names_add(&add, NULL, n->sub[i].service);
			lis[i] = agent_sub_open(a, &n->sub[i]);
			if (!lis[i]) {
				/* No listener without memory: nothing to point at. */
				log_err("reload: out of memory opening subscribe %s; stopping",
					n->sub[i].service);
				abort();
			}
		}
	names_say(s, &add, "subscription", "added");
	names_say(s, &rm, "subscription", "removed");
}

void agent_reload(struct agent *a)
{
	struct agent_cfg *n = malloc(sizeof(*n)), *o = a->cfg, **r;
	struct agent_listener **lis = NULL;
	const char **gone = NULL;
	bool *changed = NULL, *taken = NULL, relogin;
	struct ns_summary s = {};
	char err[1024];
	size_t ngone;

	if (!n) {
		log_err("reload refused, the old settings stay: out of memory");
		return;
	}
	if (agent_cfg_reload(n, a->config, a->argc, a->argv, err, sizeof(err))) {
		log_err("reload refused, the old settings stay: %s", err);
		goto out;
	}
	lis = calloc(n->nsub + 1, sizeof(*lis));
	taken = calloc(o->nsub + 1, sizeof(*taken));
	changed = calloc(n->npub + 1, sizeof(*changed));
	gone = calloc(o->npub + 1, sizeof(*gone));
	r = realloc(a->cfg_retired, (a->ncfg_retired + 1) * sizeof(*r));
	if (r)
		a->cfg_retired = r;
	if (!lis || !taken || !changed || !gone || !r) {
		log_err("reload refused, the old settings stay: out of memory");
		goto out;
	}
	if (o->has_tunnel_listen != n->has_tunnel_listen ||
	    (n->has_tunnel_listen && !agent_sa_equal(&o->tunnel_listen, &n->tunnel_listen))) {
		log_warn("reload: tunnel-listen cannot change while the agent runs: the old value "
			 "stays until a restart");
		n->has_tunnel_listen = o->has_tunnel_listen;
		n->tunnel_listen = o->tunnel_listen;
		n->tunnel_listen_len = o->tunnel_listen_len;
	}
	relogin = !broker_same(o, n);
	diff_pubs(o, n, changed, gone, &ngone, &s);
	close_unborn(a, n);
	swap_subs(a, n, lis, taken, &s);
	say_timers(&s, o, n);
	free(a->lis);
	a->lis = lis;
	lis = NULL;
	a->cfg = n;
	a->cfg_retired[a->ncfg_retired++] = o;
	if (o->relay_probe_s != n->relay_probe_s)
		agent_rtt_kick(a);
	if (relogin) {
		ns_summary_add(&s, "a new broker, name, secret or pin: logging in again");
		agent_broker_stop(a);
		agent_rtt_clear(a);
		agent_tunnel_broker_down(a);
		agent_broker_start(a);
	} else {
		/* gone[] points into o, kept until collect() below */
		agent_broker_republish(a, changed, gone, ngone);
		agent_pool_broker_up(a);	/* the pools' new sizes */
	}
	n = NULL;
	log_info("reload: %s", s.off ? s.buf : "nothing changed");
	collect(a);
out:
	if (n) {
		agent_cfg_free(n);
		free(n);
	}
	free(lis);
	free(taken);
	free(changed);
	free(gone);
}
