// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Public ports (include/ns_proto.h, "Public ports"): a provider's service on
 * a port of a relay's address, for clients with no agent.
 *
 *   PUBLISH with EXPOSE -> the agent's expose ACL -> OK
 *   -> a relay whose PUBLIC_PORTS cover the port: PUBLIC_OPEN -> OK
 *      -> PUBLIC_INFO { PEER_ADDR } to the provider
 *   PUBLIC_CLIENT from that relay -> under max-conns: a session of its own
 *      (sess_public: PUBLIC_ACCEPT, CONNECT_INFO to the provider), else
 *      PUBLIC_REFUSE -> SPLICE_DONE ends it (public_session_done)
 *
 * An exposure belongs to its service, which belongs to the provider's
 * connection: the provider gone, its ports close (PUBLIC_CLOSE). A relay
 * gone, its exposures go to another relay, or wait for one to log in.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "broker.h"
#include "out.h"
#include "proto.h"
#include "util.h"

static bool pub_in_ranges(const struct port_range *r, size_t n, __u16 port)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (port >= r[i].lo && port <= r[i].hi)
			return true;
	return false;
}

/* The exposure of public port `port` (family) among the online agents' services. */
static struct service *pub_port_owner(struct broker *b, __u16 port, struct peer **owner)
{
	struct service *s;
	size_t i;

	for (i = 0; i < b->cfg->nagents; i++) {
		struct peer *p = b->agents[i];

		for (s = p ? p->services : NULL; s; s = s->next)
			if (s->ex.on && s->ex.port == port) {
				if (owner)
					*owner = p;
				return s;
			}
	}
	return NULL;
}

static struct service *pub_find_id(struct broker *b, __u32 id, struct peer **owner)
{
	struct service *s;
	size_t i;

	for (i = 0; i < b->cfg->nagents && id; i++) {
		struct peer *p = b->agents[i];

		for (s = p ? p->services : NULL; s; s = s->next)
			if (s->ex.on && s->ex.id == id) {
				*owner = p;
				return s;
			}
	}
	return NULL;
}

/* PUBLIC_INFO to P: where s is public (open), or why it is not. */
static void pub_send_info(struct peer *P, const struct service *s)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_PUBLIC_INFO);
	ns_mb_str(&mb, NS_A_SERVICE, s->name);
	if (s->ex.open)
		ns_mb_addr(&mb, NS_A_PEER_ADDR, s->ex.relay->relay_addr.family,
			   s->ex.relay->relay_addr.addr, s->ex.port);
	else
		ns_mb_str(&mb, NS_A_TEXT, s->ex.why[0] ? s->ex.why : "not open yet");
	peer_send(P, &mb);
}

static void pub_not_open(struct peer *P, struct service *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pub_not_open(struct peer *P, struct service *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->ex.why, sizeof(s->ex.why), fmt, ap);
	va_end(ap);
	s->ex.relay = NULL;
	s->ex.open = false;
	s->ex.req = 0;
	log_info("agent %s: %s: public port %u not open: %s", P->name, s->name, s->ex.port,
		 s->ex.why);
	pub_send_info(P, s);
}

/* The relay for s: online, its PUBLIC_PORTS cover the port, P's family;
 * the least loaded (splices and public ports). NULL: none. */
static struct peer *pub_pick_relay(struct broker *b, const struct peer *P,
				   const struct service *s)
{
	struct peer *best = NULL, *r;
	unsigned int load, best_load = 0;
	struct public_counts c;
	size_t i;

	for (i = 0; i < b->cfg->nrelays; i++) {
		r = b->relays[i];
		if (!r || r->doomed || r->relay_addr.family != P->observed.family ||
		    !pub_in_ranges(r->pub_ports, r->npub_ports, s->ex.port))
			continue;
		public_counts(b, r, &c);
		load = r->load + c.on_relay;
		if (!best || load < best_load) {
			best = r;
			best_load = load;
		}
	}
	return best;
}

void public_place(struct peer *P, struct service *s)
{
	struct broker *b = P->b;
	struct ns_msg_buf mb;
	struct peer *R;
	unsigned int i;

	if (!s->ex.on || s->ex.relay)
		return;
	R = pub_pick_relay(b, P, s);
	if (!R) {
		pub_not_open(P, s, "no relay logged in offers port %u (its public-ports)%s",
			 s->ex.port, P->observed.family == NS_AF_INET6 ? " over IPv6" : "");
		return;
	}
	s->ex.relay = R;
	s->ex.open = false;
	s->ex.req = ++b->next_public_req ? b->next_public_req : ++b->next_public_req;
	ns_mb_init(&mb, NS_MSG_PUBLIC_OPEN);
	ns_mb_u32(&mb, NS_A_REQ_ID, s->ex.req);
	ns_mb_u32(&mb, NS_A_PUBLIC_ID, s->ex.id);
	ns_mb_u16(&mb, NS_A_PORT, s->ex.port);
	ns_mb_u8(&mb, NS_A_PROTO, IPPROTO_TCP);
	ns_mb_addr(&mb, NS_A_FROM_A, P->observed.family, P->observed.addr, 0);
	ns_mb_u32(&mb, NS_A_TIMEOUT, b->cfg->public_timeout_s);
	for (i = 0; i < s->ex.nprefix; i++)
		ns_mb_str(&mb, NS_A_PREFIX, s->ex.prefix[i]);
	log_debug("agent %s: %s: PUBLIC_OPEN port %u on relay %s", P->name, s->name, s->ex.port,
		  R->name);
	peer_send(R, &mb);
}

void public_withdraw(struct peer *P, struct service *s)
{
	struct ns_msg_buf mb;

	if (!s->ex.on || !s->ex.relay)
		return;
	if (!s->ex.relay->doomed) {
		ns_mb_init(&mb, NS_MSG_PUBLIC_CLOSE);
		ns_mb_u32(&mb, NS_A_PUBLIC_ID, s->ex.id);
		peer_send(s->ex.relay, &mb);
	}
	log_info("agent %s: %s: public port %u closed on relay %s", P->name, s->name,
		 s->ex.port, s->ex.relay->name);
	s->ex.relay = NULL;
	s->ex.open = false;
}

/* Does an online relay's PUBLIC_PORTS cover port? */
static bool pub_relay_covers(const struct broker *b, __u16 port)
{
	size_t i;

	for (i = 0; i < b->cfg->nrelays; i++)
		if (b->relays[i] && !b->relays[i]->doomed &&
		    pub_in_ranges(b->relays[i]->pub_ports, b->relays[i]->npub_ports, port))
			return true;
	return false;
}

/* The port for an EXPOSE without one: the first of P's allowed ports that
 * no other service exposes, one that an online relay may open if there is
 * such a port. 0: none left. */
static __u16 pub_pick_port(struct peer *P, const struct broker_cred *c)
{
	int pass;
	size_t i;
	__u32 p;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < c->nexpose; i++)
			for (p = c->expose[i].lo; p <= c->expose[i].hi; p++)
				if (!pub_port_owner(P->b, p, NULL) &&
				    (pass || pub_relay_covers(P->b, p)))
					return p;
	return 0;
}

/* EXPOSE's PREFIX list into ex; 0 or -EINVAL with text. */
static int pub_read_prefixes(const struct ns_msg *sub, struct exposure *ex, char *text,
			     size_t len)
{
	struct ns_prefix pfx;
	const __u8 *val;
	size_t pos = 0;
	__u16 alen;

	while (ns_msg_next(sub, NS_A_PREFIX, &pos, &val, &alen) == 1) {
		if (ex->nprefix == BROKER_EXPOSE_PREFIXES) {
			snprintf(text, len, "at most %d PREFIX in EXPOSE", BROKER_EXPOSE_PREFIXES);
			return -EINVAL;
		}
		if (alen >= sizeof(ex->prefix[0])) {
			snprintf(text, len, "a PREFIX is too long");
			return -EINVAL;
		}
		memcpy(ex->prefix[ex->nprefix], val, alen);
		ex->prefix[ex->nprefix][alen] = '\0';
		if (ns_prefix_parse(ex->prefix[ex->nprefix], &pfx)) {
			snprintf(text, len, "'%s' is not an address prefix",
				 ex->prefix[ex->nprefix]);
			return -EINVAL;
		}
		ex->nprefix++;
	}
	return 0;
}

int public_publish(struct peer *P, struct service *s, const struct ns_msg *m, __u32 *code,
		   char *text, size_t len)
{
	const struct broker_cred *c = &P->b->cfg->agents[P->idx];
	struct exposure ex = { 0 };
	struct service *other;
	struct ns_msg sub;
	struct peer *owner;
	__u16 port = 0;
	int err;

	if (!m->attr[NS_A_EXPOSE]) {
		public_withdraw(P, s);
		memset(&s->ex, 0, sizeof(s->ex));
		return 0;
	}
	*code = NS_ERR_UNSUPPORTED;
	if (s->proto != IPPROTO_TCP) {
		snprintf(text, len, "public ports are for TCP services only");
		return -EINVAL;
	}
	*code = NS_ERR_MALFORMED;
	if (ns_msg_parse_nested(&sub, m->attr[NS_A_EXPOSE], m->alen[NS_A_EXPOSE])) {
		snprintf(text, len, "bad EXPOSE");
		return -EINVAL;
	}
	err = pub_read_prefixes(&sub, &ex, text, len);
	if (err)
		return err;
	ns_msg_u16(&sub, NS_A_PORT, &port);
	ns_msg_u32(&sub, NS_A_MAX_CONNS, &ex.max_conns);
	*code = NS_ERR_DENIED;
	if (!c->nexpose) {
		snprintf(text, len, "agent %s may not expose services (no expose: in broker.yaml)",
			 P->name);
		return -EPERM;
	}
	if (!port && s->ex.on && pub_in_ranges(c->expose, c->nexpose, s->ex.port))
		port = s->ex.port;	/* published again: the port it had */
	if (!port)
		port = pub_pick_port(P, c);
	if (!port || !pub_in_ranges(c->expose, c->nexpose, port)) {
		snprintf(text, len, port ? "agent %s may not expose port %u (its expose: in "
			 "broker.yaml)" : "agent %s has no allowed public port left", P->name,
			 port);
		return -EPERM;
	}
	other = pub_port_owner(P->b, port, &owner);
	if (other && other != s) {
		snprintf(text, len, "public port %u is exposed by %s/%s already", port,
			 owner->name, other->name);
		return -EADDRINUSE;
	}
	if (!ex.max_conns || ex.max_conns > P->b->cfg->public_max_conns)
		ex.max_conns = P->b->cfg->public_max_conns;
	ex.on = true;
	ex.port = port;
	if (s->ex.on && s->ex.port == port && s->ex.nprefix == ex.nprefix &&
	    !memcmp(s->ex.prefix, ex.prefix, sizeof(ex.prefix))) {
		s->ex.max_conns = ex.max_conns;	/* the same: it stays open */
		return 0;
	}
	public_withdraw(P, s);
	ex.id = ++P->b->next_public_id ? P->b->next_public_id : ++P->b->next_public_id;
	ex.live = s->ex.live;
	s->ex = ex;
	return 0;
}

/* OK or ERROR { REQ_ID } from relay R: the answer to a PUBLIC_OPEN? */
void public_relay_reply(struct peer *R, const struct ns_msg *m, bool ok)
{
	struct broker *b = R->b;
	char text[200] = "";
	struct service *s;
	struct peer *P;
	__u32 req;
	size_t i;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req))
		return;
	for (i = 0; i < b->cfg->nagents; i++) {
		P = b->agents[i];
		for (s = P ? P->services : NULL; s; s = s->next) {
			if (!s->ex.on || s->ex.relay != R || s->ex.req != req)
				continue;
			s->ex.req = 0;
			if (ok) {
				s->ex.open = true;
				s->ex.why[0] = '\0';
				log_info("agent %s: %s: public at relay %s port %u", P->name,
					 s->name, R->name, s->ex.port);
				pub_send_info(P, s);
				return;
			}
			ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
			pub_not_open(P, s, "relay %s: %s", R->name, text[0] ? text : "refused");
			return;
		}
	}
}

static void pub_refuse(struct peer *R, __u32 splice_id, __u32 code, int which)
{
	struct ns_msg_buf mb;

	R->b->st.public_refused[which]++;
	ns_mb_init(&mb, NS_MSG_PUBLIC_REFUSE);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, splice_id);
	ns_mb_u32(&mb, NS_A_CODE, code);
	peer_send(R, &mb);
}

void public_client(struct peer *R, const struct ns_msg *m)
{
	__u32 id, splice_id;
	struct service *s;
	struct ns_ep client;
	struct peer *P;
	__u16 port_a;

	if (ns_msg_u32(m, NS_A_PUBLIC_ID, &id) || ns_msg_u32(m, NS_A_SPLICE_ID, &splice_id) ||
	    ns_msg_u16(m, NS_A_PORT_A, &port_a) || !port_a ||
	    ns_msg_addr(m, NS_A_PEER_ADDR, &client.family, client.addr, &client.port)) {
		log_warn("relay %s: PUBLIC_CLIENT without PUBLIC_ID, SPLICE_ID, PORT_A or "
			 "PEER_ADDR ignored", R->name);
		return;
	}
	s = pub_find_id(R->b, id, &P);
	if (!s || s->ex.relay != R || P->doomed) {
		pub_refuse(R, splice_id, NS_ERR_NOT_FOUND, 0);
		return;
	}
	if (s->ex.live >= s->ex.max_conns) {
		pub_refuse(R, splice_id, NS_ERR_LIMIT, 1);
		return;
	}
	if (!sess_public(R, P, s, splice_id, port_a, &client)) {
		pub_refuse(R, splice_id, NS_ERR_INTERNAL, 0);
		return;
	}
	s->ex.live++;
}

void public_session_done(struct session *s)
{
	struct service *svc;
	struct peer *P;

	svc = pub_find_id(s->b, s->public_id, &P);
	if (svc && svc->ex.live)
		svc->ex.live--;
}

int public_relay_ports(struct peer *R, const struct ns_msg *m)
{
	char v[32];
	const __u8 *val;
	size_t pos = 0;
	__u16 alen;

	R->npub_ports = 0;
	while (ns_msg_next(m, NS_A_PUBLIC_PORTS, &pos, &val, &alen) == 1) {
		if (R->npub_ports == BROKER_PORT_RANGES || alen >= sizeof(v))
			return -EINVAL;
		memcpy(v, val, alen);
		v[alen] = '\0';
		if (ns_parse_port_range(v, &R->pub_ports[R->npub_ports].lo,
					&R->pub_ports[R->npub_ports].hi))
			return -EINVAL;
		R->npub_ports++;
	}
	return 0;
}

void public_relay_online(struct broker *b)
{
	struct service *s;
	size_t i;

	for (i = 0; i < b->cfg->nagents; i++)
		for (s = b->agents[i] ? b->agents[i]->services : NULL; s; s = s->next)
			if (s->ex.on && !s->ex.relay)
				public_place(b->agents[i], s);
}

/* R is gone: what it held is unknown now (its splices may live on, but no
 * SPLICE_DONE will say when they end); its exposures go elsewhere. */
void public_relay_gone(struct peer *R)
{
	struct broker *b = R->b;
	struct session *x;
	struct service *s;
	size_t i;

	for (x = b->sess_head; x; x = x->next)
		if (x->public && x->state == SESS_ESTABLISHED && x->relay_name == R->name) {
			x->state = SESS_CLOSED;
			snprintf(x->why, sizeof(x->why), "relay %s disconnected", R->name);
		}
	for (i = 0; i < b->cfg->nagents; i++)
		for (s = b->agents[i] ? b->agents[i]->services : NULL; s; s = s->next) {
			if (!s->ex.on || s->ex.relay != R)
				continue;
			s->ex.live = 0;
			s->ex.relay = NULL;
			s->ex.open = false;
			public_place(b->agents[i], s);
		}
}

void public_counts(const struct broker *b, const struct peer *R, struct public_counts *c)
{
	const struct service *s;
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < b->cfg->nagents; i++)
		for (s = b->agents[i] ? b->agents[i]->services : NULL; s; s = s->next) {
			if (!s->ex.on)
				continue;
			c->live += s->ex.live;
			c->open += s->ex.open;
			c->on_relay += R && s->ex.relay == R;
		}
}

void public_api(struct broker *b, struct ns_out *o)
{
	const struct service *s;
	char a[NS_ADDRSTRLEN];
	unsigned int j;
	size_t i;

	ns_out_arr_begin(o, NULL);
	for (i = 0; i < b->cfg->nagents; i++) {
		const struct peer *p = b->agents[i];

		for (s = p ? p->services : NULL; s; s = s->next) {
			if (!s->ex.on)
				continue;
			ns_out_obj_begin(o, NULL);
			ns_out_fmt(o, "service", "%s/%s", p->name, s->name);
			ns_out_u64(o, "port", s->ex.port);
			ns_out_str(o, "state", s->ex.open ? "open" :
				   s->ex.relay ? "opening" : "waiting");
			ns_out_str(o, "relay", s->ex.relay ? s->ex.relay->name : NULL);
			if (s->ex.open)
				ns_out_fmt(o, "address", s->ex.relay->relay_addr.family ==
					   NS_AF_INET6 ? "[%s]:%u" : "%s:%u",
					   ns_addr_str(s->ex.relay->relay_addr.family,
						       s->ex.relay->relay_addr.addr, a, sizeof(a)),
					   s->ex.port);
			else
				ns_out_null(o, "address");
			ns_out_u64(o, "connections", s->ex.live);
			ns_out_u64(o, "max_conns", s->ex.max_conns);
			ns_out_arr_begin(o, "allow");
			for (j = 0; j < s->ex.nprefix; j++)
				ns_out_str(o, NULL, s->ex.prefix[j]);
			ns_out_arr_end(o);
			ns_out_str(o, "reason", s->ex.open || !s->ex.why[0] ? NULL : s->ex.why);
			ns_out_obj_end(o);
		}
	}
	ns_out_arr_end(o);
}
