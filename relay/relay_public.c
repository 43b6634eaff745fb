// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Public ports (issue 14): ports of the relay's address that the broker opens
 * for a provider's service (PUBLIC_OPEN), for clients with no agent. A
 * client's SYN there gets a splice of its own: side B is the client (its SYN
 * held, not answered), side A the provider, which the broker tells to connect
 * to a relay port picked at random (PUBLIC_CLIENT, then PUBLIC_ACCEPT and the
 * provider's CONNECT_INFO). From there it is an ordinary passive splice: the
 * client connected first, so it is answered first and proves itself with its
 * ACK before the provider is answered (relay_splice.c, "proving"). No
 * provider in time (the port's timeout): the client gets an RST at the
 * half-open deadline; PUBLIC_REFUSE: at once.
 *
 * What a SYN flood costs is bounded: all public ports together hold at most
 * public-half-open clients (each a splice of about 1 KiB and a relay port).
 * When full, the port holding the most gives one up: among its oldest
 * EVICT_SCAN, one that did not answer a challenge (below) before one that
 * did, then the one whose source prefix (/24, /48) holds the most there,
 * the oldest of those. A flood at one port evicts its own SYNs; other ports,
 * and relay ports for agents' splices, keep theirs.
 *
 * And a flood of forged SYNs does not get that far. A port holds at most
 * public-syn-rate new clients a second (burst: twice that) at once; beyond
 * that a new client is challenged first: its SYN is answered, statelessly,
 * with a SYN-ACK whose acknowledgment number is a cookie (an HMAC of the
 * client's address and port, the port and the time) and which no socket in
 * SYN-SENT accepts: the client answers with an RST whose sequence number is
 * that cookie (RFC 9293 3.10.7.3), proving its address, and Linux sends its
 * SYN again at once (TCP_TIMEOUT_MIN). A proven client is held, and evicted
 * last, for VERIFIED_NS. Forged SYNs cost one SYN-ACK each, no memory, and
 * never make the broker or the provider do anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "relay.h"
#include "auth.h"
#include "bclient.h"
#include "bytes.h"
#include "log.h"
#include "pkt.h"
#include "util.h"

#define EVICT_SCAN	64	/* held SYNs an eviction looks at, oldest first */
#define NS_SEC		1000000000ULL
#define COOKIE_SLOT_NS	(8 * NS_SEC)	/* a challenge is good for this (to 2x) */
#define VERIFIED_NS	(30 * NS_SEC)	/* a client that answered one is let in this long */

static unsigned int client_bucket(const __u32 addr[4], __be16 port)
{
	__u32 h = addr[0] ^ addr[1] ^ addr[2] ^ addr[3] ^ port;

	h ^= h >> 16;
	h *= 0x45d9f3bU;
	h ^= h >> 16;
	return h & (RELAY_PUBLIC_BUCKETS - 1);
}

/* The source prefix a client counts in (per port): its counter's slot. */
static unsigned int prefix_slot(const struct relay_public *pub, const struct relay_splice *sp)
{
	const __u32 *a = sp->s.peer[1].addr;
	__u32 h = sp->s.family == NS_AF_INET ? a[0] & htonl(0xffffff00U) :
					       a[0] ^ (a[1] & htonl(0xffff0000U));

	h ^= pub->id * 0x9e3779b1U;
	h ^= h >> 15;
	h *= 0x2c1b3c6dU;
	h ^= h >> 12;
	return h & (RELAY_PUBLIC_PREFIX_SLOTS - 1);
}

struct relay_public *relay_public_get(struct relay *r, __u32 punt_id)
{
	__u32 i = punt_id & ~NS_PUBLIC_BIT;

	return i < RELAY_PUBLIC_MAX && r->pub[i].id ? &r->pub[i] : NULL;
}

static struct relay_public *find_id(struct relay *r, __u32 id)
{
	int i;

	for (i = 0; i < RELAY_PUBLIC_MAX; i++)
		if (r->pub[i].id == id)
			return &r->pub[i];
	return NULL;
}

/* The splice holding the SYN of the client at addr:port, if any. */
static struct relay_splice *find_held(struct relay *r, const struct relay_public *pub,
				      const __u32 addr[4], __be16 port)
{
	struct relay_splice *sp;

	for (sp = r->pub_by_client[client_bucket(addr, port)]; sp; sp = sp->pub_hnext)
		if (sp->pub == pub && sp->s.peer[1].port == port &&
		    !memcmp(sp->s.peer[1].addr, addr, sizeof(sp->s.peer[1].addr)))
			return sp;
	return NULL;
}

static void hold(struct relay *r, struct relay_public *pub, struct relay_splice *sp)
{
	struct relay_splice **b = &r->pub_by_client[client_bucket(sp->s.peer[1].addr,
								   sp->s.peer[1].port)];

	sp->pub = pub;
	sp->pub_hnext = *b;
	*b = sp;
	TAILQ_INSERT_TAIL(&pub->held, sp, pub_entry);
	sp->pub_slot = prefix_slot(pub, sp);
	r->pub_prefix[sp->pub_slot]++;
	pub->nheld++;
	r->pub_held++;
}

void relay_public_unhold(struct relay *r, struct relay_splice *sp)
{
	struct relay_public *pub = sp->pub;
	struct relay_splice **pp;

	if (!pub)
		return;
	pp = &r->pub_by_client[client_bucket(sp->s.peer[1].addr, sp->s.peer[1].port)];
	while (*pp && *pp != sp)
		pp = &(*pp)->pub_hnext;
	if (*pp)
		*pp = sp->pub_hnext;
	TAILQ_REMOVE(&pub->held, sp, pub_entry);
	r->pub_prefix[sp->pub_slot]--;
	pub->nheld--;
	r->pub_held--;
	sp->pub = NULL;
	sp->pub_hnext = NULL;
}

/* Room for one more held SYN: the fair victim goes (see the top). */
static void evict_one(struct relay *r)
{
	struct relay_public *most = NULL;
	struct relay_splice *sp, *victim = NULL;
	int i, n = 0;

	for (i = 0; i < RELAY_PUBLIC_MAX; i++)
		if (r->pub[i].id && r->pub[i].nheld && (!most || r->pub[i].nheld > most->nheld))
			most = &r->pub[i];
	if (!most)
		return;
	TAILQ_FOREACH(sp, &most->held, pub_entry) {
		if (!victim || (victim->pub_verified && !sp->pub_verified) ||
		    (victim->pub_verified == sp->pub_verified &&
		     r->pub_prefix[sp->pub_slot] > r->pub_prefix[victim->pub_slot]))
			victim = sp;
		if (++n == EVICT_SCAN)
			break;
	}
	most->evicted++;
	r->pub_evicted++;
	log_debug("public port %u: client SYN evicted (splice %u): %u held", most->port,
		  victim->s.id, r->pub_held);
	/* A client answered already waits for data: it gets an RST. One not
	 * answered sends its SYN again (a forged one never does): nothing goes
	 * back to what may be a forged source. */
	if (victim->prove_side == 1)
		r->dp->reset(r, victim, 1);
	relay_splice_delete(r, victim, "evicted");
}

static __u32 cookie(const struct relay *r, const struct relay_public *pub,
		    const struct ns_pkt_info *pi, __u64 slot)
{
	const void *parts[] = { &slot, pi->saddr, &pi->sport, &pub->id, &pub->port };
	const size_t lens[] = { sizeof(slot), sizeof(pi->saddr), sizeof(pi->sport),
				sizeof(pub->id), sizeof(pub->port) };
	__u8 mac[NS_HMAC_LEN];

	if (ns_hmac(r->cookie_key, sizeof(r->cookie_key), parts, lens, 5, mac))
		return 0;
	return ns_get32(mac);
}

static struct relay_verified *verified_slot(struct relay *r, const struct relay_public *pub,
					    const struct ns_pkt_info *pi)
{
	return &r->pub_ok[(client_bucket(pi->saddr, pi->sport) ^ pub->id) &
			  (RELAY_PUBLIC_VERIFIED - 1)];
}

static bool is_verified(struct relay *r, const struct relay_public *pub,
			const struct ns_pkt_info *pi, __u64 now)
{
	const struct relay_verified *v = verified_slot(r, pub, pi);

	return v->until_ns > now && v->pub_id == pub->id && v->port == pi->sport &&
	       !memcmp(v->addr, pi->saddr, sizeof(v->addr));
}

/* One more new client held without a challenge? (the token bucket) */
static bool budget_take(const struct relay *r, struct relay_public *pub, __u64 now)
{
	return ns_rate_allow(&pub->syn_rate, r->cfg.public_syn_rate, 2 * r->cfg.public_syn_rate,
			     now);
}

static void challenge(struct relay *r, const struct relay_public *pub,
		      const struct ns_pkt_info *pi, const struct ns_syn *syn, __u64 now)
{
	int err = relay_send_challenge(r, pi, syn, cookie(r, pub, pi, now / COOKIE_SLOT_NS));

	r->pub_challenged++;
	if (err)
		ns_log_limited(&r->pub_log, 10, 60, now, NS_LOG_WARN,
			       "public port %u: challenge: %s", pub->port, strerror(-err));
}

/* An RST at the public port from a client not held: the answer to a
 * challenge (this slot's cookie or the last one's), or nothing. */
static void challenge_answer(struct relay *r, const struct relay_public *pub,
			     const struct ns_pkt_info *pi, __u64 now)
{
	__u64 slot = now / COOKIE_SLOT_NS;
	struct relay_verified *v;

	if (pi->seq != cookie(r, pub, pi, slot) && pi->seq != cookie(r, pub, pi, slot - 1))
		return;
	v = verified_slot(r, pub, pi);
	memcpy(v->addr, pi->saddr, sizeof(v->addr));
	v->port = pi->sport;
	v->pub_id = pub->id;
	v->until_ns = now + VERIFIED_NS;
	r->pub_verified++;
}

static bool source_allowed(const struct relay_public *pub, __u8 family, const __u32 addr[4])
{
	unsigned int i;

	if (!pub->nprefix)
		return true;
	for (i = 0; i < pub->nprefix; i++)
		if (ns_prefix_match(&pub->prefix[i],
				    family == NS_AF_INET ? AF_INET : AF_INET6, addr))
			return true;
	return false;
}

/* Is pi's source in pub's allowed prefixes? Counted when not. */
static bool client_allowed(struct relay *r, struct relay_public *pub,
			   const struct ns_pkt_info *pi)
{
	if (source_allowed(pub, pi->family, pi->saddr))
		return true;
	pub->disallowed++;
	r->pub_disallowed++;
	return false;
}

/*
 * A new client at pub (its address and port in pi): a splice that holds it,
 * and PUBLIC_CLIENT to the broker. NULL when it is not allowed or there is
 * no room (its SYN is dropped: the client sends it again).
 */
struct relay_splice *relay_public_client(struct relay *r, struct relay_public *pub,
					 const struct ns_pkt_info *pi, bool verified)
{
	struct relay_splice *sp;
	char msg[128] = "";
	int err;

	if (!client_allowed(r, pub, pi))
		return NULL;
	if (r->pub_held >= r->cfg.public_half_open)
		evict_one(r);
	err = relay_splice_add_public(r, pub, pi, &sp, msg, sizeof(msg));
	if (err) {
		pub->dropped++;
		r->pub_dropped++;
		ns_log_limited(&r->pub_log, 10, 60, ns_now_ns(), NS_LOG_WARN,
			       "public port %u: a client's SYN dropped: %s", pub->port,
			       msg[0] ? msg : strerror(-err));
		return NULL;
	}
	hold(r, pub, sp);
	sp->pub_verified = verified;
	pub->clients++;
	r->pub_clients++;
	relay_broker_public_client(r, pub, sp);
	return sp;
}

/* A punt at a public port (splice_id NS_PUBLIC_BIT | index). */
void relay_public_punt(struct relay *r, const struct ns_punt *p, const struct ns_pkt_info *pi,
		       size_t len)
{
	struct relay_public *pub = relay_public_get(r, p->splice_id);
	__u64 now = ns_now_ns();
	struct relay_splice *sp;
	struct ns_syn syn;
	bool verified;

	if (!pub || pi->family != pub->family)
		return;
	if (p->reason == NS_PUNT_PROOF && p->len > pi->payload_off)
		r->pub_early_data++;	/* data before a splice: lost (see relay_send.c) */
	sp = find_held(r, pub, pi->saddr, pi->sport);
	if (!sp) {
		/* an RST: a challenge's answer; an ACK of a client not held
		 * (evicted, or never): nothing */
		if (p->reason == NS_PUNT_PROOF) {
			if (pi->tcp_flags & NS_TCP_RST)
				challenge_answer(r, pub, pi, now);
			return;
		}
		if (ns_syn_parse(p->data, len, &syn))
			return;
		if (!client_allowed(r, pub, pi))
			return;		/* (not challenged either) */
		verified = is_verified(r, pub, pi, now);
		if (!verified && !budget_take(r, pub, now)) {
			challenge(r, pub, pi, &syn, now);
			return;
		}
		sp = relay_public_client(r, pub, pi, verified);
		if (!sp)
			return;
	}
	if (p->reason == NS_PUNT_PROOF && (pi->tcp_flags & NS_TCP_RST))
		return;		/* (an RST proves nothing to a held client's splice) */
	relay_splice_punt(r, sp, 1, p, pi, len);
}

/* PUBLIC_OPEN: open (or change) the public port `port` for exposure id. */
int relay_public_open(struct relay *r, const struct relay_public *want, char *msg, size_t len)
{
	struct relay_public *pub = find_id(r, want->id), *o;
	unsigned int i;
	bool in = false;
	int err;

	for (i = 0; i < r->cfg.npublic_ports; i++)
		in |= want->port >= r->cfg.public_ports[i].lo &&
		      want->port <= r->cfg.public_ports[i].hi;
	if (!in) {
		snprintf(msg, len, "port %u is not in this relay's public-ports", want->port);
		return -EPERM;
	}
	if (!relay_addr(r, want->family)) {
		snprintf(msg, len, "the relay has no %s address",
			 want->family == NS_AF_INET ? "IPv4" : "IPv6");
		return -EAFNOSUPPORT;
	}
	for (i = 0; i < RELAY_PUBLIC_MAX; i++) {
		o = &r->pub[i];
		if (o->id && o != pub && o->port == want->port && o->family == want->family) {
			snprintf(msg, len, "port %u is open for another service", want->port);
			return -EADDRINUSE;
		}
	}
	if (pub && (pub->port != want->port || pub->family != want->family))
		relay_public_close(r, pub->id, "moved");
	pub = find_id(r, want->id);
	if (pub) {
		/* the same port: new parameters for the clients to come */
		pub->timeout_s = want->timeout_s;
		memcpy(pub->from, want->from, sizeof(pub->from));
		pub->nprefix = want->nprefix;
		memcpy(pub->prefix, want->prefix, sizeof(pub->prefix));
		log_info("public port %u: updated", pub->port);
		return 0;
	}
	for (i = 0; i < RELAY_PUBLIC_MAX && r->pub[i].id; i++)
		;
	if (i == RELAY_PUBLIC_MAX) {
		snprintf(msg, len, "this relay has %d public ports open already", RELAY_PUBLIC_MAX);
		return -ENOSPC;
	}
	pub = &r->pub[i];
	*pub = *want;
	pub->index = i;
	pub->syn_rate.tat_ns = 0;	/* a full bucket */
	pub->lw.fd = -1;
	TAILQ_INIT(&pub->held);
	err = r->dp->public_open(r, pub);
	if (err) {
		snprintf(msg, len, "cannot open port %u: %s", want->port, strerror(-err));
		memset(pub, 0, sizeof(*pub));
		return err;
	}
	log_info("public port %u: open (exposure %u, %u prefixes allowed%s, provider timeout "
		 "%us)", pub->port, pub->id, pub->nprefix, pub->nprefix ? "" : ": any source",
		 pub->timeout_s);
	return 0;
}

/* Close it: the clients held get an RST; established splices go on. */
void relay_public_close(struct relay *r, __u32 id, const char *why)
{
	struct relay_public *pub = find_id(r, id);
	struct relay_splice *sp;

	if (!pub || !id)
		return;
	while ((sp = TAILQ_FIRST(&pub->held))) {
		r->dp->reset(r, sp, 1);
		relay_splice_delete(r, sp, "refused");
	}
	r->dp->public_close(r, pub);
	log_info("public port %u: closed (%s): %llu clients, %llu evicted, %llu not allowed",
		 pub->port, why, (unsigned long long)pub->clients,
		 (unsigned long long)pub->evicted, (unsigned long long)pub->disallowed);
	memset(pub, 0, sizeof(*pub));
	pub->lw.fd = -1;
}

void relay_public_close_all(struct relay *r, const char *why)
{
	int i;

	for (i = 0; i < RELAY_PUBLIC_MAX; i++)
		if (r->pub[i].id)
			relay_public_close(r, r->pub[i].id, why);
}

/* PUBLIC_ACCEPT / PUBLIC_REFUSE: the broker's answer for a held client. */
void relay_public_answer(struct relay *r, __u32 splice_id, __u64 session, __u32 code)
{
	struct relay_splice *sp = relay_splice_find(r, splice_id);

	if ((!sp || !sp->s.pub) && session) {
		/* gone meanwhile (its deadline, an eviction): the broker's
		 * session ends now, not at its timeout */
		relay_broker_gone(r, session, splice_id);
		return;
	}
	if (!sp || !sp->s.pub)
		return;
	if (session) {
		sp->s.session = session;
		relay_splice_save(r, sp);
		return;
	}
	if (sp->s.state >= NS_ST_ESTABLISHED)
		return;
	log_info("splice %u: the broker refused the public client (%s)", sp->s.id,
		 ns_err_name(code));
	r->dp->reset(r, sp, 1);
	relay_splice_delete(r, sp, "refused");
}
