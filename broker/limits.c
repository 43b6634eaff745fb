// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What one authenticated agent may take, so that it cannot starve the
 * others (README, Security, "Limits"):
 *
 *   max-services-per-agent  services it publishes
 *   tunnel-rate/-burst      CONNECTs and FLOWs it sends, per second
 *   max-sessions-per-agent  sessions it asked for that are being negotiated
 *                           or whose relay splice is in its handshake
 *   max-splices-per-pair    relay splices asked for between two agents,
 *                           either way round, in their handshake
 *
 * A relay splice is "in its handshake" from SPLICE_REQUEST until SPLICE_DONE
 * or until the relay's deadline for the second side (negotiate-timeout) and
 * BROKER_HANDSHAKE_SLACK_S have passed. That is when it holds relay ports,
 * the resource one agent could exhaust for everybody (CONNECTs whose tunnels
 * never come); an established splice holds no port, so long-lived tunnels do
 * not use the limits up. The broker does not hear when both sides came, so a
 * splice counts for its whole window unless the relay reports it done first
 * (a short connection: after its close grace): the defaults let one pair
 * open about 6 short relayed connections a second (README, Limits).
 *
 * The decisions are policy.c's; here are the counts (by agent name and by
 * pair, so that they outlive a reconnect: a relay splice does), the ERROR
 * LIMIT to the agent, /metrics and the log: one line per agent and limit
 * at most every BROKER_LIMIT_LOG_S, with the number of refusals since the
 * last line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "util.h"

#define PAIR_KEY_LEN	(2 * BROKER_NAME_MAX + 2)

/* A use count: of an agent's sessions ("name") or of a pair's splices ("a/b"). */
struct broker_use {
	struct broker_use *next;
	unsigned int n;
	char key[];
};

static unsigned int use_bucket(const char *key)
{
	__u32 h = 2166136261u;	/* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % BROKER_USE_BUCKETS;
}

static struct broker_use **use_slot(const struct broker *b, const char *key)
{
	struct broker_use **pp;

	for (pp = &b->use[use_bucket(key)]; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->key, key))
			break;
	return pp;
}

unsigned int use_get(const struct broker *b, const char *key)
{
	struct broker_use *u = b->use ? *use_slot(b, key) : NULL;

	return u ? u->n : 0;
}

int use_add(struct broker *b, const char *key, int delta)
{
	struct broker_use **pp, *u;

	if (!b->use)	/* (freed at exit before the last peers: nothing to count) */
		return delta < 0 ? 0 : -ENOMEM;
	pp = use_slot(b, key);
	u = *pp;

	if (!u) {
		if (delta < 0)
			return 0;
		u = calloc(1, sizeof(*u) + strlen(key) + 1);
		if (!u)
			return -ENOMEM;
		strcpy(u->key, key);
		*pp = u;
	}
	if (delta < 0 && u->n)
		u->n--;
	else if (delta > 0)
		u->n++;
	if (!u->n) {
		*pp = u->next;
		free(u);
	}
	return 0;
}

int limits_init(struct broker *b)
{
	b->use = calloc(BROKER_USE_BUCKETS, sizeof(*b->use));
	return b->use ? 0 : -ENOMEM;
}

void limits_free(struct broker *b)
{
	struct broker_use *u;
	size_t i;

	for (i = 0; b->use && i < BROKER_USE_BUCKETS; i++)
		while ((u = b->use[i])) {
			b->use[i] = u->next;
			free(u);
		}
	free(b->use);
	b->use = NULL;
}

unsigned int limit_agent_sessions(const struct broker *b, const char *agent)
{
	return use_get(b, agent);
}

unsigned int limit_pair_splices(const struct broker *b, const char *a, const char *c)
{
	char key[PAIR_KEY_LEN];

	return pair_key(a, c, key, sizeof(key)) ? 0 : use_get(b, key);
}

/* Count a hit; log it unless this agent's hits of l were logged a moment ago. */
static void limit_hit(struct peer *p, enum broker_limit l, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void limit_hit(struct peer *p, enum broker_limit l, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	p->b->st.limit_hits[l]++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ns_log_limited(&p->lim_log[l], 1, BROKER_LIMIT_LOG_S, ns_now_ns(), NS_LOG_WARN,
		       "%s: refused", msg);
}

int limit_publish(struct peer *p, __u32 req)
{
	__u32 max = p->b->cfg->max_services;

	if (!limit_reached(p->nservices, max))
		return 0;
	limit_hit(p, LIM_SERVICES, "agent %s publishes %u services, the most "
		  "max-services-per-agent allows; another one", p->name, p->nservices);
	proto_error(p, &req, 0, NS_ERR_LIMIT, "too many services: %u published, "
		    "max-services-per-agent is %u", p->nservices, max);
	return -EDQUOT;
}

int limit_tunnel(struct peer *p, __u32 req)
{
	const struct broker_cfg *c = p->b->cfg;
	unsigned int used;

	if (!ns_rate_allow(&p->tunnel_rate, c->tunnel_rate, c->tunnel_burst, ns_now_ns())) {
		limit_hit(p, LIM_TUNNEL_RATE, "agent %s asks for tunnels faster than "
			  "tunnel-rate %u/s (tunnel-burst %u)", p->name, c->tunnel_rate,
			  c->tunnel_burst);
		sess_count_failure(p->b, FAIL_LIMIT);
		proto_error(p, &req, 0, NS_ERR_LIMIT, "too many tunnel requests: more than "
			    "tunnel-rate %u/s (tunnel-burst %u)", c->tunnel_rate, c->tunnel_burst);
		return -EDQUOT;
	}
	used = use_get(p->b, p->name);
	if (limit_reached(used, c->max_agent_sessions)) {
		limit_hit(p, LIM_SESSIONS, "agent %s has %u sessions being negotiated or "
			  "with a relay splice in its handshake, the most "
			  "max-sessions-per-agent allows; another one", p->name, used);
		sess_count_failure(p->b, FAIL_LIMIT);
		proto_error(p, &req, 0, NS_ERR_LIMIT, "too many sessions: %u being negotiated "
			    "or with a relay splice in its handshake, max-sessions-per-agent "
			    "is %u", used, c->max_agent_sessions);
		return -EDQUOT;
	}
	return 0;
}

void limit_hold_session(struct session *s)
{
	/* Out of memory: not counted (and not refused either). */
	if (!(s->held & HELD_SESSION) && !use_add(s->b, s->sub_name, 1))
		s->held |= HELD_SESSION;
}

int limit_hold_splice(struct session *s, char *why, size_t len)
{
	struct broker *b = s->b;
	__u32 max = b->cfg->max_pair_splices;
	char key[PAIR_KEY_LEN];
	unsigned int used;

	if ((s->held & HELD_SPLICE) || pair_key(s->sub_name, s->prov_name, key, sizeof(key)))
		return 0;
	used = use_get(b, key);
	if (limit_reached(used, max)) {
		snprintf(why, len, "too many relay splices between %s and %s: %u, "
			 "max-splices-per-pair is %u", s->sub_name, s->prov_name, used, max);
		if (s->sub)
			limit_hit(s->sub, LIM_PAIR_SPLICES, "agent %s holds %u relay splices "
				  "with %s, the most max-splices-per-pair allows; another one",
				  s->sub_name, used, s->prov_name);
		else
			b->st.limit_hits[LIM_PAIR_SPLICES]++;
		return -EDQUOT;
	}
	if (!use_add(b, key, 1))
		s->held |= HELD_SPLICE;
	return 0;
}

static void on_window_end(struct ns_loop *l, struct ns_timer *t)
{
	struct session *s = t->data;

	limit_release(s, s->held);
}

void limit_hold_window(struct session *s)
{
	__u64 end = s->splice_req_ns + ((__u64)s->b->cfg->negotiate_timeout_s +
					BROKER_HANDSHAKE_SLACK_S) * 1000000000ULL;
	__u64 now = ns_now_ns();

	if (!s->held)
		return;
	if (!s->splice_req_ns || now >= end) {
		limit_release(s, s->held);
		return;
	}
	/* s->timer (the negotiation's) is free once the session is established */
	ns_timer_init(&s->timer, on_window_end, s);
	ns_timer_arm(s->b->loop, &s->timer, (end - now + 999999) / 1000000);
}

void limit_release(struct session *s, __u8 what)
{
	char key[PAIR_KEY_LEN];

	what &= s->held;
	if (what & HELD_SESSION)
		use_add(s->b, s->sub_name, -1);
	if ((what & HELD_SPLICE) && !pair_key(s->sub_name, s->prov_name, key, sizeof(key)))
		use_add(s->b, key, -1);
	s->held &= ~what;
}
