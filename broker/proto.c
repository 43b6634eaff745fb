// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control protocol on the broker's side (include/ns_proto.h): login,
 * the directory (PUBLISH, UNPUBLISH, LIST) and the dispatch of everything
 * else to the session code.
 *
 * Bad input: a frame that does not parse closes the peer (conn.c). A request
 * that parses but lacks what it needs is answered ERROR MALFORMED with its
 * REQ_ID (or SESSION) and the peer stays; one that cannot even be answered
 * (no REQ_ID / SESSION) closes the peer. Unknown message types, and types
 * the peer's role does not send, are answered ERROR UNSUPPORTED.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "broker.h"
#include "auth.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#define LIST_TRUNCATED_TEXT "list truncated"

void proto_error(struct peer *p, const __u32 *req, __u64 session, int code,
		 const char *fmt, ...)
{
	struct ns_msg_buf mb;
	char text[1001];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ns_mb_init(&mb, NS_MSG_ERROR);
	if (req)
		ns_mb_u32(&mb, NS_A_REQ_ID, *req);
	if (session)
		ns_mb_u64(&mb, NS_A_SESSION, session);
	ns_mb_u32(&mb, NS_A_CODE, code);
	ns_mb_str(&mb, NS_A_TEXT, text[0] ? text : ns_err_name(code));
	peer_send(p, &mb);
}

void proto_ok(struct peer *p, __u32 req)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_OK);
	ns_mb_u32(&mb, NS_A_REQ_ID, req);
	peer_send(p, &mb);
}

int proto_challenge(struct peer *p)
{
	struct ns_msg_buf mb;

	if (ns_random_bytes(p->nonce, sizeof(p->nonce)))
		return -EIO;
	ns_mb_init(&mb, NS_MSG_CHALLENGE);
	ns_mb_bin(&mb, NS_A_NONCE, p->nonce, sizeof(p->nonce));
	ns_mb_u8(&mb, NS_A_VERSION_MIN, NS_PROTO_VERSION);
	ns_mb_u8(&mb, NS_A_VERSION_MAX, NS_PROTO_VERSION);
	return peer_send(p, &mb);
}

/*
 * A request without what it needs: ERROR MALFORMED with its REQ_ID, the peer
 * stays; without a REQ_ID there is nothing to answer to: the peer is closed.
 */
void proto_bad_request(struct peer *p, const struct ns_msg *m, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	__u32 req;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (ns_msg_u32(m, NS_A_REQ_ID, &req)) {
		p->b->st.malformed++;
		peer_close_error(p, NS_ERR_MALFORMED, "%s", text);
		return;
	}
	p->b->st.malformed++;
	log_debug("%s: %s", p->name, text);
	proto_error(p, &req, 0, NS_ERR_MALFORMED, "%s", text);
}

/* ---- login ---- */

static void login_failed(struct peer *p, int code, const char *who, const char *why)
{
	char a[EP_STRLEN];

	p->b->st.login_failures++;
	/* an attacker's loop: a few lines a minute, the rest counted */
	ns_log_limited(&p->b->login_log, BROKER_DOOR_LOG_BURST, BROKER_DOOR_LOG_S, ns_now_ns(),
		       NS_LOG_WARN, "login %sfrom %s refused: %s", who,
		       ep_str(&p->observed, a, sizeof(a)), why);
	peer_close_error(p, code, "%s", why);
}

static void on_login(struct peer *p, const struct ns_msg *m)
{
	struct broker *b = p->b;
	const struct broker_cfg *c = b->cfg;
	char name[BROKER_NAME_MAX + 1], who[BROKER_NAME_MAX + 16], a[EP_STRLEN];
	__u8 role, version, proof[NS_HMAC_LEN], want[NS_HMAC_LEN], flag;
	const struct broker_cred *cred = NULL;
	struct peer **slot, *old;
	struct ns_msg_buf mb;
	__u32 wait;
	__u16 port;
	int idx = -1;

	if (ns_msg_u8(m, NS_A_ROLE, &role) || ns_msg_str(m, NS_A_NAME, name, sizeof(name)) ||
	    ns_msg_u8(m, NS_A_VERSION, &version) ||
	    ns_msg_bin(m, NS_A_PROOF, proof, sizeof(proof))) {
		login_failed(p, NS_ERR_MALFORMED, "", "LOGIN needs ROLE, NAME, VERSION and PROOF");
		return;
	}
	snprintf(who, sizeof(who), "of '%s' ", name);
	if (version != NS_PROTO_VERSION) {
		char why[64];

		snprintf(why, sizeof(why), "protocol version %u not supported (%u..%u)", version,
			 NS_PROTO_VERSION, NS_PROTO_VERSION);
		login_failed(p, NS_ERR_UNSUPPORTED, who, why);
		return;
	}
	if (role == NS_ROLE_AGENT) {
		idx = cfg_agent_index(c, name);
		cred = idx >= 0 ? &c->agents[idx] : NULL;
	} else if (role == NS_ROLE_RELAY) {
		idx = cfg_relay_index(c, name);
		cred = idx >= 0 ? &c->relays[idx] : NULL;
	} else {
		login_failed(p, NS_ERR_MALFORMED, who, "unknown ROLE");
		return;
	}
	if (doors_login_check(p, name, &wait)) {
		char a[EP_STRLEN];

		door_refused(b, LIM_LOGIN_BACKOFF, "login of '%s' from %s refused: too many "
			     "failed logins, %u s to wait", name, ep_str(&p->observed, a, sizeof(a)),
			     wait);
		peer_close_error(p, NS_ERR_AUTH, "too many failed logins: try again in %u s",
				 wait);
		return;
	}
	/* The HMAC is computed for unknown names too: no timing hint about which names exist. */
	if (ns_login_proof(cred ? cred->secret : "\x01unknown", p->nonce, name,
			   p->has_ekm ? p->ekm : NULL, p->has_ekm ? sizeof(p->ekm) : 0, want) ||
	    ns_hmac_check(proof, want) || !cred) {
		doors_login_failed(p, name);
		login_failed(p, NS_ERR_AUTH, who, "unknown name or bad proof");
		return;
	}
	p->has_local = !ns_msg_addr(m, NS_A_LOCAL_ADDR, &p->local.family, p->local.addr,
				    &p->local.port);
	if (role == NS_ROLE_AGENT && !ns_msg_u16(m, NS_A_LISTEN_PORT, &port))
		p->listen_port = port;
	p->relay_addr = p->observed;
	p->relay_addr.port = 0;
	if (role == NS_ROLE_RELAY) {
		ns_msg_addr(m, NS_A_RELAY_ADDR, &p->relay_addr.family, p->relay_addr.addr, &port);
		if (ns_msg_u16(m, NS_A_ECHO_PORT, &p->echo_port))
			p->echo_port = 0;
		if (ns_msg_u16(m, NS_A_DISC_PORT, &p->disc_port) || p->disc_port > 65533)
			p->disc_port = 0;
		p->passive_only = !ns_msg_u8(m, NS_A_PASSIVE_ONLY, &flag) && flag;
		if (public_relay_ports(p, m))
			log_warn("relay %s: bad PUBLIC_PORTS in its LOGIN: it opens no public port",
				 name);
	}

	slot = role == NS_ROLE_AGENT ? &b->agents[idx] : &b->relays[idx];
	old = *slot;
	if (old) {
		log_info("%s %s: a new login from %s replaces the one from %s",
			 role == NS_ROLE_AGENT ? "agent" : "relay", name,
			 ep_str(&p->observed, a, sizeof(a)),
			 ep_str(&old->observed, who, sizeof(who)));
		peer_close_error(old, NS_ERR_DUPLICATE, "replaced by a new login from %s", a);
	}
	*slot = p;
	doors_login_ok(p, name);
	doors_authed(p);
	p->idx = idx;
	p->name = cred->name;
	p->since = time(NULL);
	if (role == NS_ROLE_AGENT) {
		p->state = PEER_AGENT;
		b->agents_online++;
	} else {
		p->state = PEER_RELAY;
		b->relays_online++;
	}
	b->st.logins++;
	if (!p->conn.ssl) {
		b->st.logins_insecure++;
		log_warn("%s %s logged in over plain text from %s (insecure: true)",
			 role == NS_ROLE_AGENT ? "agent" : "relay", name,
			 ep_str(&p->observed, a, sizeof(a)));
	}
	explicit_bzero(p->nonce, sizeof(p->nonce));

	ns_mb_init(&mb, NS_MSG_LOGIN_OK);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_addr(&mb, NS_A_OBSERVED_ADDR, p->observed.family, p->observed.addr,
		   p->observed.port);
	p->hold_s = c->hold_time_s;
	ns_mb_u32(&mb, NS_A_HOLD_TIME, p->hold_s);
	if (peer_send(p, &mb))
		return;
	peer_start_heartbeat(p);
	ep_str(&p->observed, a, sizeof(a));
	if (role == NS_ROLE_RELAY) {
		char ra[NS_ADDRSTRLEN];

		log_info("relay %s logged in from %s (public address %s)", name, a,
			 ns_addr_str(p->relay_addr.family, p->relay_addr.addr, ra, sizeof(ra)));
		sess_relay_online(b);
		public_relay_online(b);
		rtt_relays_changed(b);
		discovery_relay_online(p);
		return;
	}
	rtt_relays_send(p);
	discovery_offer(p);
	log_info("agent %s logged in from %s%s", name, a,
		 p->listen_port ? " (probing its listen port)" : "");
	if (p->listen_port)
		probe_start(p);
}

/* ---- directory ---- */

struct service *service_find(const struct peer *p, const char *name)
{
	struct service *s;

	for (s = p->services; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

void services_drop(struct peer *p)
{
	struct service *s;

	while ((s = p->services)) {
		p->services = s->next;
		public_withdraw(p, s);
		free(s);
		p->b->nservices--;
	}
	p->nservices = 0;
}

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

static void on_publish(struct peer *p, const struct ns_msg *m)
{
	char name[BROKER_NAME_MAX + 1], text[200];
	__u8 proto = IPPROTO_TCP, compress = 0, plain = 0, old_proto;
	struct service *s;
	__u32 req, code;
	bool fresh;
	int err;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req) || ns_msg_str(m, NS_A_SERVICE, name, sizeof(name))) {
		proto_bad_request(p, m, "PUBLISH needs REQ_ID and SERVICE");
		return;
	}
	err = ns_msg_u8(m, NS_A_PROTO, &proto);
	if ((err && err != -ENOENT) || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)) {
		proto_bad_request(p, m, "PROTO must be 6 (TCP) or 17 (UDP)");
		return;
	}
	err = ns_msg_u8(m, NS_A_COMPRESS, &compress);
	if (err && err != -ENOENT) {
		proto_bad_request(p, m, "bad COMPRESS");
		return;
	}
	err = ns_msg_u8(m, NS_A_PLAIN, &plain);
	if ((err && err != -ENOENT) || plain > 1) {
		proto_bad_request(p, m, "bad PLAIN");
		return;
	}
	if (!name_valid(name)) {
		proto_bad_request(p, m, "bad service name '%s' "
				  "(no '/', space or control characters)", name);
		return;
	}
	s = service_find(p, name);
	fresh = !s;
	if (fresh) {
		if (limit_publish(p, req))
			return;
		s = calloc(1, sizeof(*s));
		if (!s) {
			proto_error(p, &req, 0, NS_ERR_INTERNAL, "out of memory");
			return;
		}
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	old_proto = s->proto;
	s->proto = proto;
	if (public_publish(p, s, m, &code, text, sizeof(text))) {
		log_info("agent %s: %s not published: %s", p->name, name, text);
		proto_error(p, &req, 0, code, "%s", text);
		if (fresh)
			free(s);
		else
			s->proto = old_proto;
		return;
	}
	if (fresh) {
		s->next = p->services;
		p->services = s;
		p->nservices++;
		p->b->nservices++;
	}
	s->compress = compress;
	s->plain = plain;
	log_info("agent %s published %s (%s%s%s)%s", p->name, name, proto_name(proto),
		 compress ? ", compressed" : "", plain ? ", not encrypted" : "",
		 s->ex.on ? ", exposed" : "");
	proto_ok(p, req);
	public_place(p, s);
}

static void on_unpublish(struct peer *p, const struct ns_msg *m)
{
	char name[BROKER_NAME_MAX + 1];
	struct service **sp, *s;
	__u32 req;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req) || ns_msg_str(m, NS_A_SERVICE, name, sizeof(name))) {
		proto_bad_request(p, m, "UNPUBLISH needs REQ_ID and SERVICE");
		return;
	}
	for (sp = &p->services; (s = *sp); sp = &s->next)
		if (!strcmp(s->name, name))
			break;
	if (!s) {
		proto_error(p, &req, 0, NS_ERR_NOT_FOUND, "%s does not publish '%s'",
			    p->name, name);
		return;
	}
	*sp = s->next;
	public_withdraw(p, s);
	free(s);
	p->nservices--;
	p->b->nservices--;
	log_info("agent %s withdrew %s", p->name, name);
	proto_ok(p, req);
}

/* LIST_REPLY: every online service the asker may use, ordered by agent. */
static void on_list(struct peer *p, const struct ns_msg *m)
{
	struct broker *b = p->b;
	const size_t max = NS_PROTO_HDR_LEN + NS_PROTO_MAX_BODY - 4 - sizeof(LIST_TRUNCATED_TEXT);
	char full[2 * BROKER_NAME_MAX + 2];
	struct ns_msg_buf mb;
	bool truncated = false;
	size_t i, mark;
	__u32 req;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req)) {
		proto_bad_request(p, m, "LIST needs REQ_ID");
		return;
	}
	ns_mb_init(&mb, NS_MSG_LIST_REPLY);
	ns_mb_u32(&mb, NS_A_REQ_ID, req);
	for (i = 0; i < b->cfg->nagents && !truncated; i++) {
		const struct peer *a = b->agents[i];
		const struct service *s;

		if (!a || a->doomed)
			continue;
		for (s = a->services; s; s = s->next) {
			if (!acl_allows(b->cfg, a->name, s->name, p->name))
				continue;
			snprintf(full, sizeof(full), "%s/%s", a->name, s->name);
			/* SERVICE_INFO header + SERVICE + PROTO */
			if (mb.len + 4 + 4 + strlen(full) + 5 > max) {
				truncated = true;
				break;
			}
			mark = ns_mb_nest_begin(&mb, NS_A_SERVICE_INFO);
			ns_mb_str(&mb, NS_A_SERVICE, full);
			ns_mb_u8(&mb, NS_A_PROTO, s->proto);
			ns_mb_nest_end(&mb, mark);
		}
	}
	if (truncated) {
		log_warn("LIST for %s truncated to what fits one message", p->name);
		ns_mb_str(&mb, NS_A_TEXT, LIST_TRUNCATED_TEXT);
	}
	peer_send(p, &mb);
}

/* ---- dispatch ---- */

static void unsupported(struct peer *p, const struct ns_msg *m, const char *why)
{
	__u32 req;
	bool has_req = !ns_msg_u32(m, NS_A_REQ_ID, &req);

	log_debug("%s: %s %s (type %u)", p->name ? p->name : "peer", ns_msg_type_name(m->type),
		  why, m->type);
	proto_error(p, has_req ? &req : NULL, 0, NS_ERR_UNSUPPORTED, "message type %u %s",
		    m->type, why);
}

static void on_error(struct peer *p, const struct ns_msg *m)
{
	char text[1001] = "";
	__u32 code = 0;
	__u64 session;

	if (!ns_msg_u64(m, NS_A_SESSION, &session)) {
		sess_peer_error(p, m);
		return;
	}
	ns_msg_u32(m, NS_A_CODE, &code);
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	log_info("%s reports an error: %s (%s)", p->name, text, ns_err_name(code));
}

static void agent_message(struct peer *p, const struct ns_msg *m)
{
	switch (m->type) {
	case NS_MSG_HEARTBEAT:
	case NS_MSG_OK:
		return;
	case NS_MSG_PUBLISH:
		on_publish(p, m);
		return;
	case NS_MSG_UNPUBLISH:
		on_unpublish(p, m);
		return;
	case NS_MSG_LIST:
		on_list(p, m);
		return;
	case NS_MSG_CONNECT:
		sess_connect(p, m);
		return;
	case NS_MSG_FLOW:
		sess_flow(p, m);
		return;
	case NS_MSG_ACCEPT:
		sess_accept(p, m);
		return;
	case NS_MSG_REJECT:
		sess_reject(p, m);
		return;
	case NS_MSG_RTT:
		rtt_on_report(p, m);
		return;
	case NS_MSG_NAT_INFO:
		discovery_on_report(p, m);
		return;
	case NS_MSG_ERROR:
		on_error(p, m);
		return;
	default:
		unsupported(p, m, m->type > 0 && m->type < NS_MSG_MAX ? "not expected from an agent"
								      : "unknown");
	}
}

static void relay_message(struct peer *p, const struct ns_msg *m)
{
	__u64 session;

	switch (m->type) {
	case NS_MSG_HEARTBEAT:
		return;
	case NS_MSG_OK:
		public_relay_reply(p, m, true);
		return;
	case NS_MSG_PUBLIC_CLIENT:
		public_client(p, m);
		return;
	case NS_MSG_SPLICE_READY:
		sess_splice_ready(p, m);
		return;
	case NS_MSG_SPLICE_PEER:
		sess_splice_peer(p, m);
		return;
	case NS_MSG_SPLICE_DONE:
		sess_splice_done(p, m);
		return;
	case NS_MSG_DISC_FWD:
		discovery_on_fwd(p, m);
		return;
	case NS_MSG_ERROR:
		if (ns_msg_u64(m, NS_A_SESSION, &session) && m->attr[NS_A_REQ_ID])
			public_relay_reply(p, m, false);	/* PUBLIC_OPEN's */
		else
			on_error(p, m);
		return;
	default:
		unsupported(p, m, m->type > 0 && m->type < NS_MSG_MAX ? "not expected from a relay"
								      : "unknown");
	}
}

void proto_message(struct peer *p, const struct ns_msg *m)
{
	switch (p->state) {
	case PEER_LOGIN:
		if (m->type == NS_MSG_HEARTBEAT && !p->conn.ssl)
			return;		/* a plain-text client's first words */
		if (m->type == NS_MSG_LOGIN)
			on_login(p, m);
		else
			login_failed(p, NS_ERR_AUTH, "", "expected LOGIN");
		return;
	case PEER_AGENT:
		agent_message(p, m);
		return;
	case PEER_RELAY:
		relay_message(p, m);
		return;
	default:
		return;
	}
}
