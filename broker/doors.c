// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The broker's doors (README, Security, "Limits"): what a peer that has not
 * logged in may hold, how fast a name may guess secrets, and how fast a
 * logged-in agent may talk.
 *
 *   max-unauth, max-unauth-per-source   connections not logged in yet, in all
 *                                       and from one address: over it a new
 *                                       one is closed at once
 *   (BROKER_LOGIN_MAX_BODY)             before login a message larger than a
 *                                       LOGIN closes the connection: a peer
 *                                       holds a few KiB, not 64
 *   login-failures-free, -backoff-max   failed logins: per name and source
 *                                       address, and per source address
 *   msg-rate, msg-burst                 one agent's messages per second
 *
 * Failed logins are counted under two keys: the name from that source
 * address ("n/NAME ADDR") and the source address ("s/ADDR", for an attacker
 * trying many names). After the free failures a key waits 1 s, then 2, 4...
 * up to login-backoff-max; an attempt while it waits is refused before its
 * proof is even checked (so waiting is not guessing). Keys are never a bare
 * name: an attacker elsewhere cannot lock an agent out by failing in its
 * name. And a name that logged in from an address in the last day is not
 * held back by that address's failures for other names (another host behind
 * the same NAT guessing). What is left: an attacker behind the agent's own
 * public address guessing the agent's own name delays it, at most
 * login-backoff-max at a time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "util.h"

#define NS_PER_S	1000000000ULL
#define KEY_LEN		(BROKER_NAME_MAX + NS_ADDRSTRLEN + 4)

/* Failed logins of one key. */
struct login_rec {
	struct login_rec *next;
	__u32 fails;		/* consecutive, since the last success */
	__u64 last_ns;		/* the last failure */
	__u64 until_ns;		/* no attempt before */
	__u64 ok_ns;		/* n/ keys: the last success (0: none) */
	char key[];
};

void door_refused(struct broker *b, enum broker_limit l, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	b->st.limit_hits[l]++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ns_log_limited(&b->door_log[l], BROKER_DOOR_LOG_BURST, BROKER_DOOR_LOG_S, ns_now_ns(),
		       NS_LOG_WARN, "%s", msg);
}

static const char *addr_str(const struct ns_ep *ep, char *buf, size_t len)
{
	return ns_addr_str(ep->family, ep->addr, buf, len);
}

/* ---- connections not logged in ---- */

static void unauth_key(const struct ns_ep *ep, char *key, size_t len)
{
	char a[NS_ADDRSTRLEN];

	snprintf(key, len, "u/%s", addr_str(ep, a, sizeof(a)));
}

int doors_admit(struct broker *b, const struct ns_ep *ep)
{
	const struct broker_cfg *c = b->cfg;
	char key[KEY_LEN], a[NS_ADDRSTRLEN];

	if (limit_reached(b->nunauth, c->max_unauth)) {
		door_refused(b, LIM_UNAUTH, "connection from %s closed: %u connections are not "
			     "logged in yet (max-unauth)", addr_str(ep, a, sizeof(a)), b->nunauth);
		return -EBUSY;
	}
	unauth_key(ep, key, sizeof(key));
	if (limit_reached(use_get(b, key), c->max_unauth_source)) {
		door_refused(b, LIM_UNAUTH_SOURCE, "connection from %s closed: %u of its "
			     "connections are not logged in yet (max-unauth-per-source)",
			     addr_str(ep, a, sizeof(a)), use_get(b, key));
		return -EBUSY;
	}
	return 0;
}

void doors_admitted(struct peer *p)
{
	char key[KEY_LEN];

	p->conn.max_body = BROKER_LOGIN_MAX_BODY;
	unauth_key(&p->observed, key, sizeof(key));
	if (use_add(p->b, key, 1))
		return;		/* out of memory: not counted per source */
	p->unauth = true;
	p->b->nunauth++;
}

void doors_authed(struct peer *p)
{
	char key[KEY_LEN];

	p->conn.max_body = 0;
	if (!p->unauth)
		return;
	unauth_key(&p->observed, key, sizeof(key));
	use_add(p->b, key, -1);
	p->unauth = false;
	p->b->nunauth--;
}

/* ---- failed logins ---- */

static unsigned int rec_bucket(const char *key)
{
	__u32 h = 2166136261u;	/* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % BROKER_USE_BUCKETS;
}

static struct login_rec *rec_find(const struct broker *b, const char *key)
{
	struct login_rec *r;

	for (r = b->login_recs[rec_bucket(key)]; r; r = r->next)
		if (!strcmp(r->key, key))
			return r;
	return NULL;
}

/* Forget records with nothing left to say: old failures, no recent success. */
static void rec_sweep(struct broker *b, __u64 now)
{
	struct login_rec **pp, *r;
	unsigned int i;

	for (i = 0; i < BROKER_USE_BUCKETS; i++)
		for (pp = &b->login_recs[i]; (r = *pp);) {
			if (now - r->last_ns > BROKER_LOGIN_FORGET_S * NS_PER_S &&
			    (!r->ok_ns || now - r->ok_ns > BROKER_LOGIN_KNOWN_S * NS_PER_S)) {
				*pp = r->next;
				free(r);
				b->nlogin_recs--;
			} else {
				pp = &r->next;
			}
		}
}

/* The record of key, made if need be (NULL: the table is full, or no memory). */
static struct login_rec *rec_get(struct broker *b, const char *key, __u64 now)
{
	struct login_rec *r = rec_find(b, key);
	size_t len = strlen(key) + 1;
	unsigned int i;

	if (r)
		return r;
	if (b->nlogin_recs >= BROKER_LOGIN_RECS && now >= b->login_sweep_ns) {
		rec_sweep(b, now);	/* (a full table is swept once a second at most) */
		b->login_sweep_ns = now + NS_PER_S;
	}
	if (b->nlogin_recs >= BROKER_LOGIN_RECS)
		return NULL;
	r = calloc(1, sizeof(*r) + len);
	if (!r)
		return NULL;
	memcpy(r->key, key, len);
	i = rec_bucket(key);
	r->next = b->login_recs[i];
	b->login_recs[i] = r;
	b->nlogin_recs++;
	return r;
}

static void name_key(const struct peer *p, const char *name, char *key, size_t len)
{
	char a[NS_ADDRSTRLEN];

	snprintf(key, len, "n/%s %s", name, addr_str(&p->observed, a, sizeof(a)));
}

static void source_key(const struct peer *p, char *key, size_t len)
{
	char a[NS_ADDRSTRLEN];

	snprintf(key, len, "s/%s", addr_str(&p->observed, a, sizeof(a)));
}

int doors_login_check(struct peer *p, const char *name, __u32 *wait_s)
{
	struct broker *b = p->b;
	char key[KEY_LEN];
	const struct login_rec *n, *s;
	__u64 now = ns_now_ns(), until = 0;

	name_key(p, name, key, sizeof(key));
	n = rec_find(b, key);
	if (n && n->until_ns > now)
		until = n->until_ns;
	source_key(p, key, sizeof(key));
	s = rec_find(b, key);
	if (s && s->until_ns > now && s->until_ns > until &&
	    !(n && n->ok_ns && now - n->ok_ns <= BROKER_LOGIN_KNOWN_S * NS_PER_S))
		until = s->until_ns;
	if (!until)
		return 0;
	*wait_s = (until - now + NS_PER_S - 1) / NS_PER_S;
	return -EAGAIN;
}

static void rec_fail(struct login_rec *r, __u32 free, __u32 max_s, __u64 now)
{
	if (!r)
		return;
	if (now - r->last_ns > BROKER_LOGIN_FORGET_S * NS_PER_S)
		r->fails = 0;
	r->fails++;
	r->last_ns = now;
	r->until_ns = now + login_backoff_ns(r->fails, free, max_s);
}

void doors_login_failed(struct peer *p, const char *name)
{
	const struct broker_cfg *c = p->b->cfg;
	char key[KEY_LEN];
	__u64 now = ns_now_ns();

	if (!c->login_free)
		return;
	name_key(p, name, key, sizeof(key));
	rec_fail(rec_get(p->b, key, now), c->login_free, c->login_backoff_max_s, now);
	source_key(p, key, sizeof(key));
	rec_fail(rec_get(p->b, key, now), c->login_free * BROKER_SOURCE_FREE_FACTOR,
		 c->login_backoff_max_s, now);
}

void doors_login_ok(struct peer *p, const char *name)
{
	char key[KEY_LEN];
	struct login_rec *r;
	__u64 now = ns_now_ns();

	name_key(p, name, key, sizeof(key));
	r = p->b->cfg->login_free ? rec_get(p->b, key, now) : rec_find(p->b, key);
	if (!r)
		return;
	r->fails = 0;
	r->until_ns = 0;
	r->ok_ns = now;
	if (!r->last_ns)
		r->last_ns = now;	/* (for the sweep: as old as the success) */
}

/* ---- a logged-in agent's messages ---- */

int doors_message(struct peer *p)
{
	const struct broker_cfg *c = p->b->cfg;

	if (p->state != PEER_AGENT || ns_rate_allow(&p->msg_rate, c->msg_rate, c->msg_burst,
						  ns_now_ns()))
		return 0;
	door_refused(p->b, LIM_MSG_RATE, "agent %s closed: more than %u messages a second "
		     "(msg-rate %u/s, msg-burst %u)", p->name, c->msg_rate, c->msg_rate,
		     c->msg_burst);
	return -EDQUOT;
}

int doors_init(struct broker *b)
{
	b->login_recs = calloc(BROKER_USE_BUCKETS, sizeof(*b->login_recs));
	return b->login_recs ? 0 : -ENOMEM;
}

void doors_free(struct broker *b)
{
	struct login_rec *r;
	unsigned int i;

	for (i = 0; b->login_recs && i < BROKER_USE_BUCKETS; i++)
		while ((r = b->login_recs[i])) {
			b->login_recs[i] = r->next;
			free(r);
		}
	free(b->login_recs);
	b->login_recs = NULL;
	b->nlogin_recs = 0;
}
