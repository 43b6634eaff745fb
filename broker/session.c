// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tunnel negotiation (include/ns_proto.h, "A tunnel") and the session records.
 *
 *   CONNECT from S -> ACL -> P online and publishing -> OFFER to P
 *   ACCEPT from P -> path: DIRECT / REVERSE -> CONNECT_INFO to both
 *                          RELAY -> SPLICE_REQUEST -> SPLICE_READY ->
 *                            passive: CONNECT_INFO to both
 *                            pure:    CONNECT_INFO to P -> SPLICE_PEER -> to S
 *
 * A session being negotiated is on b->active and holds pointers to its
 * peers; every way out (established, REJECT, timeout, a party gone or
 * failing) goes through sess_finish(), which drops those pointers, so a
 * closing peer finds and fails exactly the sessions that need it. Finished
 * sessions stay as records (b->sess_head, oldest first) up to
 * session-history of them, for the API and for SPLICE_DONE.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "broker.h"
#include "rtt.h"
#include "auth.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#define NS_PER_MS 1000000ULL

const char *sess_state_name(enum sess_state s)
{
	static const char *const names[] = {
		[SESS_OFFERED] = "offered", [SESS_RELAY_WAIT] = "relay-wait",
		[SESS_SPLICE_WAIT] = "splice-wait",
		[SESS_PEER_WAIT] = "peer-wait", [SESS_ESTABLISHED] = "established",
		[SESS_FAILED] = "failed", [SESS_CLOSED] = "closed",
		[SESS_RETRIED] = "retried",
	};

	return s <= SESS_RETRIED ? names[s] : "?";
}

const char *fail_reason_name(enum fail_reason r)
{
	static const char *const names[] = {
		[FAIL_DENIED] = "denied", [FAIL_NOT_FOUND] = "not_found",
		[FAIL_REJECTED] = "rejected", [FAIL_TIMEOUT] = "timeout",
		[FAIL_NO_RELAY] = "no_relay", [FAIL_RELAY_ERROR] = "relay_error",
		[FAIL_PEER_GONE] = "peer_gone", [FAIL_MALFORMED] = "malformed",
		[FAIL_INTERNAL] = "internal", [FAIL_LIMIT] = "limit",
	};

	return r < FAIL_MAX ? names[r] : "?";
}

const char *mode_name(int mode)
{
	return mode == NS_MODE_PURE ? "pure" : "passive";
}

static bool sess_active(const struct session *s)
{
	return s->state <= SESS_PEER_WAIT;
}

/* ---- records ---- */

static unsigned int bucket(__u64 id)
{
	return (unsigned int)((id ^ (id >> 32)) % BROKER_SESS_BUCKETS);
}

static struct session *sess_find(struct broker *b, __u64 id)
{
	struct session *s;

	for (s = b->sess_hash[bucket(id)]; s; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

static void on_relay_retry(struct ns_loop *l, struct ns_timer *t)
{
	sess_relay_online(t->data);
}

int sessions_init(struct broker *b)
{
	ns_timer_init(&b->relay_retry_t, on_relay_retry, b);
	b->sess_hash = calloc(BROKER_SESS_BUCKETS, sizeof(*b->sess_hash));
	return b->sess_hash && !limits_init(b) ? doors_init(b) : -ENOMEM;
}

static void sess_free(struct session *s)
{
	struct broker *b = s->b;
	struct session **pp;

	for (pp = &b->sess_hash[bucket(s->id)]; *pp; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	if (s->prev)
		s->prev->next = s->next;
	else
		b->sess_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		b->sess_tail = s->prev;
	ns_timer_cancel(b->loop, &s->timer);
	limit_release(s, s->held);
	explicit_bzero(s->key, sizeof(s->key));
	free(s);
}

void sessions_free(struct broker *b)
{
	while (b->sess_head)
		sess_free(b->sess_head);
	b->active = NULL;
	b->nactive = b->ndone = 0;
	ns_timer_cancel(b->loop, &b->relay_retry_t);
	free(b->sess_hash);
	b->sess_hash = NULL;
	limits_free(b);
	doors_free(b);
}

/* Drop the oldest finished records beyond session-history (not a session
 * that may still get flows: BROKER_FLOW_KEEP_S; nor one that holds a relay
 * splice in its handshake: it counts towards its agents' limits; nor a
 * public client's until SPLICE_DONE: it counts towards max-conns). */
static void history_trim(struct broker *b)
{
	struct session *s = b->sess_head, *next;
	__u64 now = ns_now_ns();

	while (s && b->ndone > b->cfg->session_history) {
		next = s->next;
		if (!sess_active(s) && now >= s->keep_until_ns && !s->held &&
		    !(s->public && s->state == SESS_ESTABLISHED)) {
			sess_free(s);
			b->ndone--;
		}
		s = next;
	}
}

static void on_sess_timeout(struct ns_loop *l, struct ns_timer *t);

static struct session *sess_new(struct broker *b)
{
	struct session *s = calloc(1, sizeof(*s));
	unsigned int h;

	if (!s)
		return NULL;
	do {
		if (ns_random_bytes(&s->id, sizeof(s->id))) {
			free(s);
			return NULL;
		}
	} while (!s->id || sess_find(b, s->id));
	s->b = b;
	s->state = SESS_OFFERED;
	s->started = time(NULL);
	s->start_ns = ns_now_ns();
	h = bucket(s->id);
	s->hnext = b->sess_hash[h];
	b->sess_hash[h] = s;
	s->prev = b->sess_tail;
	if (b->sess_tail)
		b->sess_tail->next = s;
	else
		b->sess_head = s;
	b->sess_tail = s;
	s->anext = b->active;
	if (b->active)
		b->active->aprev = s;
	b->active = s;
	b->nactive++;
	ns_timer_init(&s->timer, on_sess_timeout, s);
	ns_timer_arm(b->loop, &s->timer, (__u64)b->cfg->negotiate_timeout_s * 1000);
	return s;
}

/* Leave negotiation for a final state. s may be freed on return (history 0). */
static void sess_finish(struct session *s, enum sess_state state)
{
	struct broker *b = s->b;

	ns_timer_cancel(b->loop, &s->timer);
	if (s->state == SESS_SPLICE_WAIT && s->relay && s->relay->pending)
		s->relay->pending--;
	if (s->aprev)
		s->aprev->anext = s->anext;
	else
		b->active = s->anext;
	if (s->anext)
		s->anext->aprev = s->aprev;
	s->aprev = s->anext = NULL;
	b->nactive--;
	s->sub = s->prov = s->relay = NULL;
	explicit_bzero(s->key, sizeof(s->key));
	/* an established relay session holds its splice until SPLICE_DONE or
	 * the end of its handshake */
	if (state != SESS_ESTABLISHED || s->path != NS_PATH_RELAY)
		limit_release(s, s->held);
	else
		limit_hold_window(s);
	s->state = state;
	b->ndone++;
	history_trim(b);
}

static const char *sess_label(const struct session *s, char *buf, size_t len)
{
	char c[EP_STRLEN];

	snprintf(buf, len, "session %016llx (%s%s -> %s/%s)", (unsigned long long)s->id,
		 s->public ? "public client " : s->sub_name,
		 s->public ? ep_str(&s->client, c, sizeof(c)) : "", s->prov_name, s->service);
	return buf;
}

/*
 * Fail a session being negotiated: ERROR {REQ_ID, CODE, TEXT} to S, and
 * ERROR {SESSION, CODE, TEXT} to P once it was offered, so that it drops
 * whatever it prepared; never to the party that reported the failure.
 */
static void sess_fail(struct session *s, const struct peer *reporter, int code,
		      enum fail_reason r, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void sess_fail(struct session *s, const struct peer *reporter, int code,
		      enum fail_reason r, const char *fmt, ...)
{
	char label[3 * BROKER_NAME_MAX + 80];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	if (s->sub && s->sub != reporter)
		proto_error(s->sub, &s->req_id, 0, code, "%s", s->why);
	if (s->prov && s->prov != reporter)
		proto_error(s->prov, NULL, s->id, code, "%s", s->why);
	s->b->st.failed[r]++;
	log_info("%s failed: %s", sess_label(s, label, sizeof(label)), s->why);
	sess_finish(s, SESS_FAILED);
}

void sess_count_failure(struct broker *b, enum fail_reason r)
{
	b->st.failed[r]++;
}

static void on_sess_timeout(struct ns_loop *l, struct ns_timer *t)
{
	struct session *s = t->data;
	const char *what = s->state == SESS_OFFERED ? "the provider did not answer the offer" :
			   s->state == SESS_SPLICE_WAIT ? "the relay did not answer" :
			   "the provider did not reach the relay";

	if (s->state == SESS_RELAY_WAIT && s->relays_busy) {
		char why[sizeof(s->why)];

		snprintf(why, sizeof(why), "%s", s->why);
		sess_fail(s, NULL, NS_ERR_BUSY, FAIL_NO_RELAY,
			  "every relay stayed busy (out of relay ports or splice table room) "
			  "for %u s%s%.100s", s->b->cfg->negotiate_timeout_s, why[0] ? ": " : "",
			  why);
		return;
	}
	if (s->state == SESS_RELAY_WAIT) {
		sess_fail(s, NULL, NS_ERR_NO_RELAY, FAIL_NO_RELAY,
			  "no path: neither agent is reachable and no relay logged in");
		return;
	}
	sess_fail(s, NULL, NS_ERR_TIMEOUT, FAIL_TIMEOUT, "negotiation timed out after %u s: %s",
		  s->b->cfg->negotiate_timeout_s, what);
}

static void sess_established(struct session *s)
{
	struct broker *b = s->b;
	char label[3 * BROKER_NAME_MAX + 80];

	s->setup_ms = (ns_now_ns() - s->start_ns) / NS_PER_MS;
	if (!s->parent)		/* its flows find it, whatever session-history says */
		s->keep_until_ns = ns_now_ns() + BROKER_FLOW_KEEP_S * 1000000000ULL;
	b->st.sessions[s->path]++;
	b->st.setup_ms_sum += s->setup_ms;
	b->st.setup_count++;
	if (s->path == NS_PATH_RELAY)
		log_info("%s: relay %s (%s splice %u) in %u ms%s%s",
			 sess_label(s, label, sizeof(label)), s->relay_name, mode_name(s->mode),
			 s->splice_id, s->setup_ms, s->relay_why[0] ? ": " : "", s->relay_why);
	else
		log_info("%s: %s in %u ms", sess_label(s, label, sizeof(label)), ns_path_name(s->path),
			 s->setup_ms);
	sess_finish(s, SESS_ESTABLISHED);
}

/* ---- messages to the agents ---- */

/* CONNECT_INFO to one side; dial: it connects to ep (else it accepts from ep's IP). */
static int send_info(struct session *s, struct peer *to, bool is_sub, bool dial,
		     const struct ns_ep *ep, __u16 bind_port)
{
	const struct broker_cfg *c = s->b->cfg;
	__u8 wrapped[NS_KEY_LEN];
	struct ns_msg_buf mb;
	int err;

	err = s->public ? 0 : ns_key_wrap(c->agents[to->idx].secret, s->id, s->key, wrapped);
	if (err)
		return err;
	ns_mb_init(&mb, NS_MSG_CONNECT_INFO);
	ns_mb_u64(&mb, NS_A_SESSION, s->id);
	if (is_sub)
		ns_mb_u32(&mb, NS_A_REQ_ID, s->req_id);
	ns_mb_u8(&mb, NS_A_PATH, s->path);
	ns_mb_u8(&mb, NS_A_DIAL, dial);
	ns_mb_addr(&mb, NS_A_PEER_ADDR, ep->family, ep->addr, ep->port);
	if (bind_port)
		ns_mb_u16(&mb, NS_A_BIND_PORT, bind_port);
	if (s->path == NS_PATH_PUNCH) {
		ns_mb_u32(&mb, NS_A_TIMEOUT, c->punch_timeout_s);
		if (s->punch_delay_ms[is_sub])
			ns_mb_u32(&mb, NS_A_DELAY_MS, s->punch_delay_ms[is_sub]);
	}
	if (s->path == NS_PATH_RELAY)
		ns_mb_u8(&mb, NS_A_SPLICE_MODE, s->mode);
	ns_mb_u8(&mb, NS_A_PROTO, s->proto);
	if (s->transport == IPPROTO_UDP) {
		ns_mb_u8(&mb, NS_A_TRANSPORT, IPPROTO_UDP);
		if (s->path == NS_PATH_RELAY)
			ns_mb_bin(&mb, NS_A_TOKEN, s->token, sizeof(s->token));
	}
	if (s->public) {
		/* no proofs with a client that has no agent (ns_proto.h) */
		struct ns_ep pe = s->relay_ep;

		pe.port = s->public_port;
		ns_mb_str(&mb, NS_A_SERVICE, s->service);
		ns_mb_addr(&mb, NS_A_CLIENT_ADDR, s->client.family, s->client.addr,
			   s->client.port);
		ns_mb_addr(&mb, NS_A_PUBLIC_ADDR, pe.family, pe.addr, pe.port);
	} else {
		ns_mb_bin(&mb, NS_A_KEY, wrapped, sizeof(wrapped));
	}
	if (s->compress)
		ns_mb_u8(&mb, NS_A_COMPRESS, s->compress);
	if (s->plain)
		ns_mb_u8(&mb, NS_A_PLAIN, 1);
	if (s->parent) {
		ns_mb_u64(&mb, NS_A_PARENT, s->parent);
		ns_mb_u16(&mb, NS_A_PORT, s->port);
	}
	if (s->alg[0])
		ns_mb_str(&mb, NS_A_ALG, s->alg);
	if (is_sub && s->client_info)
		ns_mb_u8(&mb, NS_A_CLIENT_INFO, 1);
	explicit_bzero(wrapped, sizeof(wrapped));
	return peer_send(to, &mb);
}

static struct ns_ep ep_port(const struct ns_ep *ep, __u16 port)
{
	struct ns_ep e = *ep;

	e.port = port;
	return e;
}

/* Both agents still there? A doomed one (a send to it failed) is as good as
 * gone: fail now rather than hand the other side a tunnel nobody will open. */
static bool sess_agents_ok(struct session *s)
{
	if (!s->sub->doomed && !s->prov->doomed)
		return true;
	sess_fail(s, NULL, s->sub->doomed ? NS_ERR_INTERNAL : NS_ERR_NOT_FOUND, FAIL_PEER_GONE,
		  "the %s %s disconnected", s->sub->doomed ? "subscriber" : "provider",
		  s->sub->doomed ? s->sub_name : s->prov_name);
	return false;
}

/* A port for one side of a punched path: random, above the common
 * ephemeral ranges' start, where a NAT that keeps ports keeps it. */
static __u16 punch_port(void)
{
	__u16 r = 0;

	ns_random_bytes(&r, sizeof(r));
	return 20000 + r % 30000;
}

/* Half the smoothed round trip of an agent's control connection, in µs. */
static __u32 peer_owd_us(const struct peer *p)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(p->conn.fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return 0;
	return ti.tcpi_rtt / 2;
}

/* A punched path: the nearer agent waits the difference of the one-way
 * delays, so that both SYNs leave at once (include/ns_proto.h). */
static void punch_delays(struct session *s)
{
	__u32 p = peer_owd_us(s->prov), q = peer_owd_us(s->sub);

	s->punch_delay_ms[0] = q > p ? (q - p) / 1000 : 0;
	s->punch_delay_ms[1] = p > q ? (p - q) / 1000 : 0;
}

/* Both agents' round trips to a relay added up, for relay_pick: 0 when
 * one has not measured it, NS_RTT_UNREACHABLE when one gets no answer. */
static __u32 rtt_pair(const struct peer *P, const struct peer *S, const char *relay)
{
	__u32 p = rtt_get(P, relay), s = rtt_get(S, relay);

	if (p == NS_RTT_UNREACHABLE || s == NS_RTT_UNREACHABLE)
		return NS_RTT_UNREACHABLE;
	return p && s ? p + s : 0;
}

/* The session record's why for its relay: the round trips, or the load. */
static void relay_why(struct session *s, const struct relay_cand *cand, size_t n)
{
	char pr[24], sr[24];
	size_t i, measured = 0;

	for (i = 0; i < n; i++)
		measured += cand[i].online && cand[i].rtt_us && cand[i].rtt_us != NS_RTT_UNREACHABLE;
	switch (s->relay_by) {
	case RELAY_BY_RTT:
		snprintf(s->relay_why, sizeof(s->relay_why),
			 "round trip %.1f ms (%s %s + %s %s), nearest of %zu measured, %u splices",
			 (rtt_get(s->prov, s->relay_name) + rtt_get(s->sub, s->relay_name)) / 1000.0,
			 s->prov_name, rtt_str(rtt_get(s->prov, s->relay_name), pr, sizeof(pr)),
			 s->sub_name, rtt_str(rtt_get(s->sub, s->relay_name), sr, sizeof(sr)),
			 measured, s->relay->load);
		break;
	case RELAY_BY_UNREACHABLE:
		snprintf(s->relay_why, sizeof(s->relay_why),
			 "least loaded (%u splices): no relay answers both agents' probes",
			 s->relay->load);
		break;
	default:
		snprintf(s->relay_why, sizeof(s->relay_why),
			 "least loaded (%u splices): round trips not measured", s->relay->load);
		break;
	}
}

/* P accepted: choose the path and either finish or ask a relay. */
static void sess_route(struct session *s)
{
	struct broker *b = s->b;
	const struct broker_cfg *c = b->cfg;
	struct peer *S = s->sub, *P = s->prov;
	struct relay_cand cand[c->nrelays ? c->nrelays : 1];
	struct ns_msg_buf mb;
	struct ns_ep e;
	__u64 now = ns_now_ns();
	enum relay_by by;
	__u8 family;
	bool punch, wait_p, wait_s;
	size_t i;
	int ridx;

	if (!sess_agents_ok(s))
		return;
	discovery_short(P, s->prov_nat, sizeof(s->prov_nat));
	discovery_short(S, s->sub_nat, sizeof(s->sub_nat));
	for (i = 0; i < c->nrelays; i++) {
		const struct peer *r = b->relays[i];

		cand[i].online = r && !r->doomed;
		cand[i].family = r ? r->relay_addr.family : 0;
		cand[i].load = r ? r->load : 0;
		cand[i].pending = r ? r->pending : 0;
		cand[i].busy = r && now < r->busy_until_ns;
		cand[i].rtt_us = r ? rtt_pair(P, S, r->name) : 0;
	}
	family = P->observed.family == S->observed.family ? P->observed.family : 0;
	ridx = relay_pick(cand, c->nrelays, family, c->relay_rtt_slack_ms * 1000, &by);
	punch = discovery_punchable(s);
	s->path = path_choose(P->reachable, S->reachable, ridx >= 0 || punch);
	if (s->path == NS_PATH_RELAY && punch)
		s->path = NS_PATH_PUNCH;
	if (!s->path && ridx == -EBUSY) {
		/* Only relays that said BUSY a moment ago: wait for room. */
		s->state = SESS_RELAY_WAIT;
		s->relays_busy = true;
		if (!ns_timer_armed(&b->relay_retry_t))
			ns_timer_arm(b->loop, &b->relay_retry_t, BROKER_RELAY_BUSY_MS);
		return;
	}
	if (!s->path && c->nrelays && !b->relays_online &&
	    ns_now_ns() - b->start_ns < BROKER_RELAY_GRACE_S * 1000000000ULL) {
		/* Just restarted: the relays are still on their way back. */
		s->state = SESS_RELAY_WAIT;
		log_debug("session %016llx: waiting for a relay to log in",
			  (unsigned long long)s->id);
		return;
	}
	if (!s->path) {
		sess_fail(s, NULL, NS_ERR_NO_RELAY, FAIL_NO_RELAY,
			  "no path: neither agent is reachable and no relay is online%s",
			  b->relays_online ? " for this address family" : "");
		return;
	}
	if (ns_random_bytes(s->key, sizeof(s->key))) {
		sess_fail(s, NULL, NS_ERR_INTERNAL, FAIL_INTERNAL, "no random bytes for a key");
		return;
	}
	switch (s->path) {
	case NS_PATH_DIRECT:
		e = ep_port(&P->observed, P->listen_port);
		send_info(s, S, true, true, &e, 0);
		e = ep_port(&S->observed, 0);
		send_info(s, P, false, false, &e, 0);
		sess_established(s);
		return;
	case NS_PATH_REVERSE:
		e = ep_port(&S->observed, S->listen_port);
		send_info(s, P, false, true, &e, 0);
		e = ep_port(&P->observed, 0);
		send_info(s, S, true, false, &e, 0);
		sess_established(s);
		return;
	case NS_PATH_PUNCH:
		/* TCP: both connect at once, each from its port to the other's;
		 * UDP: one side answers where its NAT allows, else the same */
		punch_delays(s);
		wait_p = s->transport == IPPROTO_UDP && discovery_punch_waits(P);
		wait_s = s->transport == IPPROTO_UDP && !wait_p && discovery_punch_waits(S);
		if (wait_p || wait_s)
			s->punch_delay_ms[wait_p] += NS_PUNCH_UDP_LEAD_MS;
		s->punch_port[0] = punch_port();
		s->punch_port[1] = punch_port();
		e = ep_port(&S->observed, s->punch_port[1]);
		send_info(s, P, false, !wait_p, &e, s->punch_port[0]);
		e = ep_port(&P->observed, s->punch_port[0]);
		send_info(s, S, true, !wait_s, &e, s->punch_port[1]);
		sess_established(s);
		return;
	}
	if (limit_hold_splice(s, s->why, sizeof(s->why))) {
		char why[sizeof(s->why)];

		snprintf(why, sizeof(why), "%s", s->why);
		sess_fail(s, NULL, NS_ERR_LIMIT, FAIL_LIMIT, "%s", why);
		return;
	}
	s->relay = b->relays[ridx];
	s->mode = s->passive_only || s->transport == IPPROTO_UDP || s->relay->passive_only ?
		  NS_MODE_PASSIVE : discovery_mode(S);
	s->relay_name = s->relay->name;
	s->relay_by = by;
	relay_why(s, cand, c->nrelays);
	b->st.relay_by[by]++;
	s->relay->pending++;
	s->state = SESS_SPLICE_WAIT;
	s->splice_req_ns = ns_now_ns();
	ns_mb_init(&mb, NS_MSG_SPLICE_REQUEST);
	ns_mb_u64(&mb, NS_A_SESSION, s->id);
	/* A UDP service's datagrams ride a UDP splice, or framed a TCP one. */
	ns_mb_u8(&mb, NS_A_PROTO, s->transport == IPPROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP);
	ns_mb_u8(&mb, NS_A_SPLICE_MODE, s->mode);
	ns_mb_addr(&mb, NS_A_FROM_A, P->observed.family, P->observed.addr, 0);
	ns_mb_addr(&mb, NS_A_FROM_B, S->observed.family, S->observed.addr, 0);
	ns_mb_u32(&mb, NS_A_TIMEOUT, c->negotiate_timeout_s);
	peer_send(s->relay, &mb);
	log_debug("session %016llx: SPLICE_REQUEST (%s) to relay %s", (unsigned long long)s->id,
		  mode_name(s->mode), s->relay_name);
}

/* A new session: OFFER { SESSION, SERVICE, PROTO, NAME (S) } to P. NULL when full. */
static struct session *sess_offer(struct peer *S, struct peer *P, const char *service,
				  __u32 req, __u8 proto, __u8 compress, __u8 plain,
				  bool passive_only)
{
	struct broker *b = S->b;
	struct ns_msg_buf mb;
	struct session *s;

	if (b->nactive >= BROKER_NEGOTIATIONS_MAX || !(s = sess_new(b)))
		return NULL;
	s->sub = S;
	s->prov = P;
	s->sub_name = S->name;
	s->prov_name = P->name;
	limit_hold_session(s);
	snprintf(s->service, sizeof(s->service), "%s", service);
	s->req_id = req;
	s->proto = proto;
	s->compress = compress;
	s->plain = plain;
	s->passive_only = passive_only;
	ns_mb_init(&mb, NS_MSG_OFFER);
	ns_mb_u64(&mb, NS_A_SESSION, s->id);
	ns_mb_str(&mb, NS_A_SERVICE, s->service);
	ns_mb_u8(&mb, NS_A_PROTO, s->proto);
	ns_mb_str(&mb, NS_A_NAME, S->name);
	log_debug("session %016llx: %s -> %s/%s: OFFER", (unsigned long long)s->id, S->name,
		  P->name, service);
	peer_send(P, &mb);
	return s;
}

/* ---- from the agents ---- */

/* TRANSPORT of a CONNECT or FLOW: UDP as UDP only for a UDP service
 * (6 without it, as older agents mean). 0 or -EINVAL. */
static int msg_transport(const struct ns_msg *m, __u8 proto, __u8 *out)
{
	__u8 t = IPPROTO_TCP;
	int err = ns_msg_u8(m, NS_A_TRANSPORT, &t);

	if ((err && err != -ENOENT) || (t != IPPROTO_TCP && t != IPPROTO_UDP))
		return -EINVAL;
	*out = proto == IPPROTO_UDP ? t : IPPROTO_TCP;
	return 0;
}

void sess_connect(struct peer *S, const struct ns_msg *m)
{
	struct broker *b = S->b;
	char svc[BROKER_NAME_MAX + 1], prov[BROKER_NAME_MAX + 1];
	const char *bare;
	const struct service *sv;
	struct peer *P;
	struct session *s;
	__u8 proto = 0, transport;
	__u32 req;
	int err, pidx;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req) || ns_msg_str(m, NS_A_SERVICE, svc, sizeof(svc))) {
		proto_bad_request(S, m, "CONNECT needs REQ_ID and SERVICE");
		return;
	}
	err = ns_msg_u8(m, NS_A_PROTO, &proto);
	if ((err && err != -ENOENT) ||
	    (!err && proto != IPPROTO_TCP && proto != IPPROTO_UDP) ||
	    msg_transport(m, proto, &transport)) {
		sess_count_failure(b, FAIL_MALFORMED);
		proto_bad_request(S, m, "PROTO and TRANSPORT must be 6 (TCP) or 17 (UDP)");
		return;
	}
	if (limit_tunnel(S, req))
		return;
	bare = strchr(svc, '/');
	if (!bare || bare == svc || (size_t)(bare - svc) > BROKER_NAME_MAX) {
		sess_count_failure(b, FAIL_MALFORMED);
		proto_bad_request(S, m, "SERVICE must be \"agent/name\", not '%s'", svc);
		return;
	}
	snprintf(prov, sizeof(prov), "%.*s", (int)(bare - svc), svc);
	bare++;
	if (!acl_allows(b->cfg, prov, bare, S->name)) {
		sess_count_failure(b, FAIL_DENIED);
		log_info("%s may not use %s: denied by the ACL", S->name, svc);
		proto_error(S, &req, 0, NS_ERR_DENIED, "%s may not use %s (ACL)", S->name, svc);
		return;
	}
	pidx = cfg_agent_index(b->cfg, prov);
	P = pidx >= 0 ? b->agents[pidx] : NULL;
	sv = P && !P->doomed ? service_find(P, bare) : NULL;
	if (!sv || (proto && proto != sv->proto)) {
		sess_count_failure(b, FAIL_NOT_FOUND);
		log_info("%s asked for %s: %s", S->name, svc, !P ? "agent offline or unknown" :
			 sv ? "published with the other protocol" : "not published");
		proto_error(S, &req, 0, NS_ERR_NOT_FOUND, "%s", !P ?
			    "no such service: agent offline or unknown" : sv ?
			    "no such service with that protocol" : "no such service");
		return;
	}
	if (P == S) {
		sess_count_failure(b, FAIL_DENIED);
		proto_error(S, &req, 0, NS_ERR_DENIED,
			    "an agent cannot subscribe to its own service");
		return;
	}
	if (m->attr[NS_A_NO_PUNCH])
		discovery_punch_failed(S, P);
	s = sess_offer(S, P, bare, req, sv->proto, sv->compress, sv->plain, false);
	if (!s) {
		sess_count_failure(b, FAIL_INTERNAL);
		proto_error(S, &req, 0, NS_ERR_INTERNAL, "too many negotiations in progress");
		return;
	}
	s->transport = sv->proto == IPPROTO_UDP ? transport : IPPROTO_TCP;
}

/* SESSION of a message that is about one; the peer is closed without it. */
static int get_session(struct peer *p, const struct ns_msg *m, __u64 *id)
{
	if (!ns_msg_u64(m, NS_A_SESSION, id))
		return 0;
	p->b->st.malformed++;
	peer_close_error(p, NS_ERR_MALFORMED, "%s needs SESSION", ns_msg_type_name(m->type));
	return -EINVAL;
}

void sess_accept(struct peer *P, const struct ns_msg *m)
{
	struct session *s;
	__u64 id;

	if (get_session(P, m, &id))
		return;
	s = sess_find(P->b, id);
	if (!s || s->prov != P || s->state != SESS_OFFERED) {
		proto_error(P, NULL, id, NS_ERR_NOT_FOUND, "no open offer %016llx (timed out?)",
			    (unsigned long long)id);
		return;
	}
	ns_msg_str(m, NS_A_ALG, s->alg, sizeof(s->alg));
	ns_msg_u8(m, NS_A_CLIENT_INFO, &s->client_info);
	sess_route(s);
}

/* The newest record, so that history_trim() keeps a session in use. */
static void sess_touch(struct session *s)
{
	struct broker *b = s->b;

	if (!s->next)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		b->sess_head = s->next;
	s->next->prev = s->prev;
	s->prev = b->sess_tail;
	s->next = NULL;
	b->sess_tail->next = s;
	b->sess_tail = s;
}

/* The agent of the session at the other end from R, if it is online. */
static struct peer *sess_other(const struct session *s, const struct peer *R)
{
	const char *other = !strcmp(R->name, s->sub_name) ? s->prov_name : s->sub_name;
	int idx = cfg_agent_index(R->b->cfg, other);
	struct peer *p = idx >= 0 ? R->b->agents[idx] : NULL;

	return p && !p->doomed ? p : NULL;
}

/* A flow of p from S (its subscriber) to P, routed like a new session. */
static void flow_route(const struct session *p, struct peer *S, struct peer *P, __u32 req,
		       __u8 proto, __u8 transport, __u16 port, bool passive_only)
{
	struct broker *b = S->b;
	struct session *s;

	if (b->nactive >= BROKER_NEGOTIATIONS_MAX || !(s = sess_new(b))) {
		sess_count_failure(b, FAIL_INTERNAL);
		proto_error(S, &req, 0, NS_ERR_INTERNAL, "too many negotiations in progress");
		return;
	}
	s->sub = S;
	s->prov = P;
	s->sub_name = S->name;
	s->prov_name = P->name;
	limit_hold_session(s);
	snprintf(s->service, sizeof(s->service), "%s", p->service);
	s->req_id = req;
	s->proto = proto;
	s->transport = transport;
	s->compress = p->compress;
	s->plain = p->plain;
	s->parent = p->id;
	s->port = port;
	s->passive_only = passive_only;
	log_debug("session %016llx: flow %016llx from %s, %s port %u", (unsigned long long)p->id,
		  (unsigned long long)s->id, S->name, proto == IPPROTO_UDP ? "udp" : "tcp", port);
	sess_route(s);
}

/*
 * FLOW { REQ_ID, PARENT, PROTO, PORT }: one more connection on an
 * established session, asked by either of its agents. No OFFER and no ACL
 * check: the session has both already. It is routed like a new session;
 * the requester is its subscriber.
 */
void sess_flow(struct peer *R, const struct ns_msg *m)
{
	struct broker *b = R->b;
	struct session *p;
	struct peer *other;
	__u64 pid;
	__u32 req;
	__u16 port = 0;
	__u8 proto, transport;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req) || ns_msg_u64(m, NS_A_PARENT, &pid) ||
	    ns_msg_u8(m, NS_A_PROTO, &proto) ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP) ||
	    msg_transport(m, proto, &transport)) {
		sess_count_failure(b, FAIL_MALFORMED);
		proto_bad_request(R, m, "FLOW needs REQ_ID, PARENT and PROTO (6 or 17), and "
				  "TRANSPORT 6 or 17 if any");
		return;
	}
	if (limit_tunnel(R, req))
		return;
	ns_msg_u16(m, NS_A_PORT, &port);
	p = sess_find(b, pid);
	if (p && p->parent)
		p = sess_find(b, p->parent);
	if (!p || p->public || (p->state != SESS_ESTABLISHED && p->state != SESS_CLOSED) ||
	    (strcmp(R->name, p->sub_name) && strcmp(R->name, p->prov_name))) {
		/* (a public client's session has no agent at its other end) */
		sess_count_failure(b, FAIL_NOT_FOUND);
		proto_error(R, &req, 0, NS_ERR_NOT_FOUND, "no session %016llx of yours",
			    (unsigned long long)pid);
		return;
	}
	other = sess_other(p, R);
	if (!other) {
		sess_count_failure(b, FAIL_NOT_FOUND);
		proto_error(R, &req, 0, NS_ERR_NOT_FOUND, "the other agent of session %016llx "
			    "is offline", (unsigned long long)pid);
		return;
	}
	if (p->flows >= b->cfg->session_flows) {
		sess_count_failure(b, FAIL_DENIED);
		proto_error(R, &req, 0, NS_ERR_DENIED, "session %016llx has had its %u flows "
			    "(session-flows)", (unsigned long long)pid, b->cfg->session_flows);
		return;
	}
	p->flows++;
	p->keep_until_ns = ns_now_ns() + BROKER_FLOW_KEEP_S * 1000000000ULL;
	sess_touch(p);
	if (m->attr[NS_A_NO_PUNCH])
		discovery_punch_failed(R, other);
	flow_route(p, R, other, req, proto, transport, port, false);
}

void sess_reject(struct peer *P, const struct ns_msg *m)
{
	char text[1001] = "";
	struct session *s;
	__u32 code = 0;
	__u64 id;

	if (get_session(P, m, &id))
		return;
	s = sess_find(P->b, id);
	if (!s || s->prov != P || s->state != SESS_OFFERED) {
		log_debug("%s rejected %016llx, which is not an open offer", P->name,
			  (unsigned long long)id);
		return;
	}
	ns_msg_u32(m, NS_A_CODE, &code);
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	sess_fail(s, P, NS_ERR_REJECTED, FAIL_REJECTED, "the provider refused: %s",
		  text[0] ? text : code ? ns_err_name(code) : "no reason given");
}

/* ERROR {SESSION, CODE, TEXT} from a party of a session being negotiated. */
void sess_peer_error(struct peer *p, const struct ns_msg *m)
{
	char text[1001] = "";
	struct session *s;
	__u32 code = 0;
	__u64 id;

	if (get_session(p, m, &id))
		return;
	ns_msg_u32(m, NS_A_CODE, &code);
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	if (!text[0])
		snprintf(text, sizeof(text), "%s", ns_err_name(code));
	s = sess_find(p->b, id);
	if (!s || !sess_active(s)) {
		log_debug("%s: error for session %016llx, not being negotiated: %s", p->name,
			  (unsigned long long)id, text);
		return;
	}
	if (p == s->relay && code == NS_ERR_BUSY && s->state == SESS_SPLICE_WAIT) {
		/* Out of ports or table room there: another relay, or a wait. */
		p->busy_until_ns = ns_now_ns() + BROKER_RELAY_BUSY_MS * NS_PER_MS;
		if (p->pending)
			p->pending--;
		snprintf(s->why, sizeof(s->why), "relay %s: %.100s", p->name, text);
		log_info("relay %s is busy (%s): session %016llx tries another relay or waits",
			 p->name, text, (unsigned long long)s->id);
		s->relay = NULL;
		sess_route(s);
	} else if (p == s->relay)
		sess_fail(s, p, NS_ERR_NO_RELAY, FAIL_RELAY_ERROR, "relay %s: %s", p->name, text);
	else if (p == s->prov)
		sess_fail(s, p, NS_ERR_REJECTED, s->state == SESS_OFFERED ? FAIL_REJECTED :
			  FAIL_PEER_GONE, "the provider failed: %s", text);
	else if (p == s->sub)
		sess_fail(s, p, NS_ERR_INTERNAL, FAIL_PEER_GONE, "the subscriber gave up: %s",
			  text);
}

/* ---- from the relays ---- */

void sess_splice_ready(struct peer *R, const struct ns_msg *m)
{
	struct ns_ep e;
	struct session *s;
	__u64 id;

	if (get_session(R, m, &id))
		return;
	R->load++;	/* the relay holds a splice now, whatever becomes of the session */
	s = sess_find(R->b, id);
	if (!s || s->relay != R || s->state != SESS_SPLICE_WAIT) {
		log_debug("relay %s: SPLICE_READY for %016llx, not waiting for one", R->name,
			  (unsigned long long)id);
		return;
	}
	if (ns_msg_u32(m, NS_A_SPLICE_ID, &s->splice_id) ||
	    ns_msg_addr(m, NS_A_RELAY_ADDR, &s->relay_ep.family, s->relay_ep.addr, &e.port) ||
	    ns_msg_u16(m, NS_A_PORT_A, &s->port_a) || !s->port_a ||
	    ns_msg_u16(m, NS_A_PORT_B, &s->port_b) ||
	    (s->mode == NS_MODE_PASSIVE && !s->port_b) ||
	    (s->transport == IPPROTO_UDP &&
	     ns_msg_bin(m, NS_A_TOKEN, s->token, sizeof(s->token)))) {
		sess_fail(s, R, NS_ERR_NO_RELAY, FAIL_RELAY_ERROR,
			  "relay %s sent an incomplete SPLICE_READY", R->name);
		return;
	}
	if (!sess_agents_ok(s))
		return;
	if (R->pending)
		R->pending--;
	s->state = SESS_PEER_WAIT;	/* no longer waiting for the relay's answer */
	e = ep_port(&s->relay_ep, s->port_a);
	send_info(s, s->prov, false, true, &e, 0);
	if (s->mode == NS_MODE_PASSIVE) {
		e = ep_port(&s->relay_ep, s->port_b);
		send_info(s, s->sub, true, true, &e, 0);
		sess_established(s);
		return;
	}
	/* Pure: S can connect only once the relay saw P's source port. */
	log_debug("session %016llx: pure splice %u, waiting for SPLICE_PEER",
		  (unsigned long long)s->id, s->splice_id);
}

void sess_splice_peer(struct peer *R, const struct ns_msg *m)
{
	struct session *s;
	struct ns_ep e;
	__u16 port_b;
	__u64 id;

	if (get_session(R, m, &id))
		return;
	s = sess_find(R->b, id);
	if (!s || s->relay != R || s->state != SESS_PEER_WAIT) {
		log_debug("relay %s: SPLICE_PEER for %016llx, not waiting for one", R->name,
			  (unsigned long long)id);
		return;
	}
	if (ns_msg_u16(m, NS_A_PORT_B, &port_b) || !port_b) {
		sess_fail(s, R, NS_ERR_NO_RELAY, FAIL_RELAY_ERROR,
			  "relay %s sent a SPLICE_PEER without PORT_B", R->name);
		return;
	}
	if (!sess_agents_ok(s))
		return;
	s->port_b = port_b;
	e = ep_port(&s->relay_ep, port_b);
	send_info(s, s->sub, true, true, &e, s->port_a);
	sess_established(s);
}

struct session *sess_public(struct peer *R, struct peer *P, const struct service *svc,
			    __u32 splice_id, __u16 port_a, const struct ns_ep *client)
{
	struct broker *b = R->b;
	struct ns_msg_buf mb;
	struct session *s;
	struct ns_ep e;

	if (b->nactive >= BROKER_NEGOTIATIONS_MAX)
		return NULL;
	s = sess_new(b);
	if (!s)
		return NULL;
	s->public = true;
	s->client = *client;
	s->public_port = svc->ex.port;
	s->public_id = svc->ex.id;
	s->prov = P;
	s->prov_name = P->name;
	s->relay = R;
	s->relay_name = R->name;
	snprintf(s->relay_why, sizeof(s->relay_why), "the relay of the public port");
	snprintf(s->service, sizeof(s->service), "%s", svc->name);
	s->proto = s->transport = IPPROTO_TCP;
	s->plain = 1;
	s->path = NS_PATH_RELAY;
	s->mode = NS_MODE_PASSIVE;
	s->splice_id = splice_id;
	s->port_a = port_a;
	s->relay_ep = R->relay_addr;
	ns_mb_init(&mb, NS_MSG_PUBLIC_ACCEPT);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, splice_id);
	ns_mb_u64(&mb, NS_A_SESSION, s->id);
	peer_send(R, &mb);
	R->load++;	/* a splice of R's, until its SPLICE_DONE */
	e = ep_port(&s->relay_ep, port_a);
	send_info(s, P, false, true, &e, 0);
	b->st.public_sessions++;
	sess_established(s);
	return s;
}

/*
 * A pure splice can fail where a passive one would not: the relay refuses
 * it when P's public source port, which becomes a relay port, is already one
 * in use. P has been told and failed; S has not heard of this session yet.
 * So S's CONNECT is given a second session with a new OFFER to P, passive
 * this time, and the first one fails for P only. Once per CONNECT.
 */
static bool sess_retry_passive(struct session *s, const char *why)
{
	struct peer *S = s->sub, *P = s->prov;
	char service[BROKER_NAME_MAX + 1];
	__u8 proto = s->proto, compress = s->compress, plain = s->plain;
	__u32 req = s->req_id;

	if (s->state != SESS_PEER_WAIT || s->mode != NS_MODE_PURE || s->passive_only ||
	    S->doomed || P->doomed || S->b->nactive >= BROKER_NEGOTIATIONS_MAX)
		return false;
	snprintf(service, sizeof(service), "%s", s->service);
	/* Not a failure: P drops what it prepared, S waits for the new session. */
	snprintf(s->why, sizeof(s->why), "relay %s ended the pure splice before both sides "
		 "came (%.60s): retrying in passive mode", s->relay_name,
		 why[0] ? why : "no reason given");
	proto_error(P, NULL, s->id, NS_ERR_RETRY, "%s", s->why);
	log_info("session %016llx: %s", (unsigned long long)s->id, s->why);
	s->b->st.retried++;
	if (s->parent) {
		/* a flow: again as a flow of its session, no OFFER */
		const struct session *parent;
		__u64 pid = s->parent;
		__u16 port = s->port;
		__u8 transport = s->transport;

		sess_finish(s, SESS_RETRIED);	/* may free s (session-history 0) */
		parent = sess_find(S->b, pid);
		if (parent)
			flow_route(parent, S, P, req, proto, transport, port, true);
		else
			proto_error(S, &req, 0, NS_ERR_NOT_FOUND, "the session is gone");
		return true;
	}
	sess_finish(s, SESS_RETRIED);
	if (!sess_offer(S, P, service, req, proto, compress, plain, true)) {
		sess_count_failure(S->b, FAIL_INTERNAL);
		proto_error(S, &req, 0, NS_ERR_INTERNAL, "out of memory");
	}
	return true;
}

unsigned int sess_relay_ports(const struct broker *b, const char *relay)
{
	const struct session *s;
	unsigned int n = 0;

	for (s = b->sess_head; s; s = s->next) {
		if (s->relay_name != relay ||
		    (s->state != SESS_PEER_WAIT && s->state != SESS_ESTABLISHED))
			continue;
		n += !!s->port_a + !!s->port_b;
	}
	return n;
}

void sess_splice_done(struct peer *R, const struct ns_msg *m)
{
	struct broker *b = R->b;
	__u64 id, ab = 0, ba = 0, packets = 0;
	char text[1001] = "";
	struct session *s;
	__u32 splice_id = 0;

	if (get_session(R, m, &id))
		return;
	if (R->load)
		R->load--;
	ns_msg_u32(m, NS_A_SPLICE_ID, &splice_id);
	ns_msg_u64(m, NS_A_BYTES_AB, &ab);
	ns_msg_u64(m, NS_A_BYTES_BA, &ba);
	ns_msg_u64(m, NS_A_PACKETS, &packets);
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	b->st.relay_bytes += ab + ba;
	b->st.relay_packets += packets;
	b->st.splices_done++;
	log_debug("relay %s: splice %u of %016llx done: %llu + %llu bytes (%s)", R->name,
		  splice_id, (unsigned long long)id, (unsigned long long)ab,
		  (unsigned long long)ba, text[0] ? text : "-");
	s = sess_find(b, id);
	if (!s || s->relay_name != R->name)
		return;
	if (!sess_active(s))	/* (an active one is released as it finishes) */
		limit_release(s, s->held);
	s->bytes_ab = ab;
	s->bytes_ba = ba;
	s->packets = packets;
	if (s->state == SESS_ESTABLISHED) {
		s->state = SESS_CLOSED;
		snprintf(s->why, sizeof(s->why), "%.*s", (int)sizeof(s->why) - 1, text);
		if (s->public)
			public_session_done(s);
	} else if (sess_active(s) && s->relay == R && !sess_retry_passive(s, text)) {
		sess_fail(s, R, NS_ERR_NO_RELAY, FAIL_RELAY_ERROR,
			  "relay %s ended the splice before both sides came: %s", R->name,
			  text[0] ? text : "no reason given");
	}
}

/* A relay logged in: the sessions waiting for one go on. */
void sess_relay_online(struct broker *b)
{
	struct session *s, *next;

	for (s = b->active; s; s = next) {
		next = s->anext;
		if (s->state == SESS_RELAY_WAIT)
			sess_route(s);
	}
}

/* A closing peer: every session that needs it fails now. A relay's
 * splices no longer count towards their agents' limits: it may never come
 * back to report them done (if it does, they are not counted twice). */
void sess_peer_gone(struct peer *p)
{
	struct session *s, *next;

	for (s = p->b->sess_head; s; s = s->next)
		if (s->held && p->name && s->relay_name == p->name && !sess_active(s))
			limit_release(s, s->held);

	for (s = p->b->active; s; s = next) {
		next = s->anext;
		if (s->sub == p) {
			s->sub = NULL;
			sess_fail(s, NULL, NS_ERR_INTERNAL, FAIL_PEER_GONE,
				  "the subscriber %s disconnected", p->name);
		} else if (s->prov == p) {
			s->prov = NULL;
			sess_fail(s, NULL, NS_ERR_NOT_FOUND, FAIL_PEER_GONE,
				  "the provider %s disconnected", p->name);
		} else if (s->relay == p) {
			sess_fail(s, NULL, NS_ERR_NO_RELAY, FAIL_PEER_GONE,
				  "the relay %s disconnected", p->name);
		}
	}
}
