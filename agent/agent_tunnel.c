// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tunnels: one per client connection (or UDP client), on both sides.
 *
 *   subscriber S: client accepted -> CONNECT -> CONNECT_INFO (or ERROR: the
 *                 client is closed at once) -> link up (agent_link.c) ->
 *                 proofs + OPEN -> forwarding (agent_fwd.c)
 *   pooled S:     CONNECT with no client -> ... -> proofs -> TUN_READY, idle
 *                 in its listener's pool (agent_pool.c) until a client takes
 *                 it: OPEN -> forwarding
 *   provider P:   OFFER -> ACCEPT -> CONNECT_INFO -> link up -> proofs ->
 *                 OPEN from S -> connect to the target -> forwarding
 *
 * Until the proofs are checked not one application byte is read from or
 * written to the client or the target, and the provider connects to its
 * target only when S said OPEN: a pooled tunnel costs the server nothing.
 * Only tunnels still waiting for the broker's answer depend on the broker
 * connection; ready pooled tunnels stay when it is lost.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "agent.h"
#include "auth.h"
#include "log.h"
#include "proto.h"
#include "util.h"

/* S: what the client asked for; a flow names its session, not its listener
 * (an alias may be closed by now). */
const char *agent_tunnel_service(const struct agent_tunnel *t)
{
	return t->flow ? t->sess->label : agent_listener_name(t->lis);
}

const char *agent_tunnel_label(const struct agent_tunnel *t, char *buf, size_t len)
{
	if (t->flow) {
		snprintf(buf, len, "%s flow %s/%u", t->sess->label,
			 t->proto == IPPROTO_UDP ? "udp" : "tcp", t->role == TUN_ROLE_SUBSCRIBER ?
			 t->flow_port : ns_sockaddr_port(&t->target));
		return buf;
	}
	if (t->role == TUN_ROLE_SUBSCRIBER)
		snprintf(buf, len, "%s", agent_listener_name(t->lis));
	else
		snprintf(buf, len, t->public ? "%s for public client %s" : "%s for %s",
			 t->pub->name, t->peer_name);
	if (t->has_session) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, " #%016" PRIx64, (uint64_t)t->session);
	}
	return buf;
}

int agent_tunnel_watch(struct agent_tunnel *t, struct ns_watch *w, __u32 events)
{
	bool *reg = w == &t->tw ? &t->tw_reg : &t->pw_reg;
	int err;

	if (*reg)
		return ns_loop_mod(t->a->loop, w, events);
	err = ns_loop_add(t->a->loop, w, events);
	if (!err)
		*reg = true;
	return err;
}

static void close_sock(struct agent_tunnel *t, struct ns_watch *w, bool *reg, bool rst)
{
	if (w->fd < 0)
		return;
	if (*reg)
		ns_loop_del(t->a->loop, w);
	*reg = false;
	if (rst)
		agent_sock_rst(w->fd);
	close(w->fd);
	w->fd = -1;
}

void agent_tunnel_close(struct agent_tunnel *t, bool rst, const char *why)
{
	struct agent *a = t->a;
	char label[AGENT_NAME_MAX * 2 + 64];

	agent_tunnel_label(t, label, sizeof(label));
	if (t->state == TUN_FWD)
		log_info("%s: tunnel closed (%s): %" PRIu64 " bytes sent, %" PRIu64 " received%s",
			 label, why, (uint64_t)t->fwd.bytes[0], (uint64_t)t->fwd.bytes[1],
			 t->fwd.forged ? ", forged or replayed datagrams dropped" : "");
	else
		log_debug("%s: closed (%s)", label, why);
	if (t->role == TUN_ROLE_SUBSCRIBER && t->proto == IPPROTO_UDP)
		agent_listener_unlink(t);
	ns_timer_cancel(a->loop, &t->rtx);
	if (t->pooled)
		agent_pool_gone(t);
	ns_timer_cancel(a->loop, &t->timer);
	close_sock(t, &t->tw, &t->tw_reg, rst);
	close_sock(t, &t->pw, &t->pw_reg, rst);
	agent_fwd_free(a, &t->fwd);
	agent_buf_free(&t->pending);
	memset(t->key, 0, sizeof(t->key));
	if (t->sess)
		agent_session_put(t->sess);
	if (t->prev)
		t->prev->next = t->next;
	else
		a->tunnels = t->next;
	if (t->next)
		t->next->prev = t->prev;
	a->ntunnels--;
	free(t);
}

/* S: the client's request failed before any byte flowed. */
static void sub_fail(struct agent_tunnel *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sub_fail_v(struct agent_tunnel *t, int level, const char *note, const char *fmt,
		       va_list ap)
{
	char why[1200], cs[AGENT_SA_STRLEN];

	vsnprintf(why, sizeof(why), fmt, ap);
	if (t->pooled)
		/* the first failure in a row is worth a warning, retries are not */
		ns_log(t->lis->fails ? NS_LOG_DEBUG : level,
		       "pool %s: tunnel set-up failed: %s%s", t->lis->cfg->service, why, note);
	else
		ns_log(level, "connect %s: %s (client %s closed)%s", agent_tunnel_service(t), why,
		       agent_sa_str(&t->client, cs, sizeof(cs)), note);
	agent_tunnel_close(t, true, why);
}

static void sub_fail(struct agent_tunnel *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sub_fail_v(t, NS_LOG_WARN, "", fmt, ap);
	va_end(ap);
}

/* A broker limit refused t (ERROR LIMIT): a warning, but at most one a
 * minute for the whole agent (a client loop would fill the log), the rest
 * at debug level and counted in the next warning. */
static void sub_fail_limit(struct agent_tunnel *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sub_fail_limit(struct agent_tunnel *t, const char *fmt, ...)
{
	struct agent *a = t->a;
	__u64 now = ns_now_ns();
	char note[128] = "";
	int level = NS_LOG_DEBUG;
	va_list ap;

	if (now >= a->limit_log_ns) {
		snprintf(note, sizeof(note), "; %u more refused since the last such line, "
			 "the next %d s only at -v", a->limit_quiet, AGENT_LIMIT_LOG_S);
		if (!a->limit_quiet)
			snprintf(note, sizeof(note), "; further refusals for %d s only at -v",
				 AGENT_LIMIT_LOG_S);
		a->limit_quiet = 0;
		a->limit_log_ns = now + AGENT_LIMIT_LOG_S * 1000000000ULL;
		level = NS_LOG_WARN;
	} else {
		a->limit_quiet++;
	}
	va_start(ap, fmt);
	sub_fail_v(t, level, note, fmt, ap);
	va_end(ap);
}

static void set_up_timeout(struct agent_tunnel *t)
{
	char label[AGENT_NAME_MAX * 2 + 64];

	if (agent_tunnel_retry(t, "not up in time"))
		return;
	log_warn("%s: tunnel not up within %u s (%s); closed",
		 agent_tunnel_label(t, label, sizeof(label)), t->a->cfg->connect_timeout_s,
		 t->state == TUN_DIALING ? "connecting to the peer" :
		 t->state == TUN_WAIT_PEER ? "waiting for the peer" :
		 t->state == TUN_PROOF ? "exchanging proofs" : "connecting to the target");
	agent_tunnel_close(t, true, "set-up timed out");
}

static void on_timer(struct ns_loop *l, struct ns_timer *tm)
{
	struct agent_tunnel *t = tm->data;
	char label[AGENT_NAME_MAX * 2 + 64];

	switch (t->state) {
	case TUN_WAIT_INFO:
		if (t->role == TUN_ROLE_SUBSCRIBER)
			sub_fail(t, "no answer from the broker within %u s",
				 2 * NS_NEGOTIATE_TIMEOUT_S);
		else
			agent_tunnel_close(t, true, "no CONNECT_INFO from the broker");
		break;
	case TUN_FWD:
		agent_fwd_idle_check(t);
		break;
	case TUN_READY:
		agent_pool_expire(t);
		break;
	case TUN_DIALING:
	case TUN_WAIT_PEER:
	case TUN_PROOF:
		if (t->transport == IPPROTO_UDP && t->role == TUN_ROLE_SUBSCRIBER) {
			agent_udp_fallback(t);
			break;
		}
		set_up_timeout(t);
		break;
	case TUN_OPEN:
		log_debug("%s: no OPEN from the subscriber within %u s; closed",
			  agent_tunnel_label(t, label, sizeof(label)), AGENT_OPEN_WAIT_S);
		agent_tunnel_close(t, false, "never opened");
		break;
	default:
		set_up_timeout(t);
		break;
	}
}

static void on_tw(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent_tunnel *t = w->data;

	if (t->state == TUN_FWD)
		agent_fwd_on_event(t);
	else if (t->transport == IPPROTO_UDP)
		agent_udp_on_event(t);
	else if (t->state == TUN_READY)
		agent_pool_on_event(t);
	else
		agent_link_on_event(t, events);
}

static void on_pw(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent_tunnel *t = w->data;

	if (t->state == TUN_FWD)
		agent_fwd_on_event(t);
	else if (t->state == TUN_TARGET)
		agent_link_on_target(t);
	else if (t->role == TUN_ROLE_SUBSCRIBER)
		/* Watched for errors only before forwarding: the client reset. */
		agent_tunnel_close(t, true, "the client went away");
}

static struct agent_tunnel *tunnel_new(struct agent *a, __u8 role, __u8 proto)
{
	struct agent_tunnel *t = calloc(1, sizeof(*t));

	if (!t) {
		log_err("out of memory for a tunnel");
		return NULL;
	}
	t->a = a;
	t->role = role;
	t->proto = proto;
	t->state = TUN_WAIT_INFO;
	t->tw.fd = t->pw.fd = -1;
	t->tw.fn = on_tw;
	t->pw.fn = on_pw;
	t->tw.data = t->pw.data = t;
	ns_timer_init(&t->timer, on_timer, t);
	ns_timer_init(&t->rtx, NULL, t);	/* agent_udp_link sets it up */
	t->next = a->tunnels;
	if (t->next)
		t->next->prev = t;
	a->tunnels = t;
	a->ntunnels++;
	return t;
}

/* S: ask the broker for the tunnel: 0, or -ENOTCONN (t is left to the caller). */
static int send_connect(struct agent_tunnel *t)
{
	struct agent *a = t->a;
	struct ns_msg_buf mb = {};

	t->req_id = agent_req_id(a);
	t->start_ns = ns_now_ns();
	if (t->flow) {
		ns_mb_init(&mb, NS_MSG_FLOW);
		ns_mb_u32(&mb, NS_A_REQ_ID, t->req_id);
		ns_mb_u64(&mb, NS_A_PARENT, t->sess->id);
		ns_mb_u16(&mb, NS_A_PORT, t->flow_port);
		t->sess->flows++;
	} else {
		ns_mb_init(&mb, NS_MSG_CONNECT);
		ns_mb_u32(&mb, NS_A_REQ_ID, t->req_id);
		ns_mb_str(&mb, NS_A_SERVICE, t->lis->cfg->service);
	}
	ns_mb_u8(&mb, NS_A_PROTO, t->proto);
	if (t->proto == IPPROTO_UDP)
		ns_mb_u8(&mb, NS_A_TRANSPORT, t->transport);
	if (t->no_punch)
		ns_mb_u8(&mb, NS_A_NO_PUNCH, 1);
	if (agent_broker_send(a, &mb))
		return -ENOTCONN;
	ns_timer_arm(a->loop, &t->timer, 2 * NS_NEGOTIATE_TIMEOUT_S * 1000);
	return 0;
}

void agent_tunnel_resend(struct agent_tunnel *t)
{
	if (send_connect(t))
		sub_fail(t, "not connected to the broker");
}

/*
 * A relay splice can be taken by a forged SYN the relay could not tell from
 * the real one (relay/relay_splice.c, "proving": a SYN forged for this side
 * between the two real ones): then the tunnel cannot come up on it. The
 * relay hands out its ports at random, so a new session gets a splice on
 * ports the attacker has not seen. The client stays connected meanwhile.
 */
bool agent_tunnel_retry(struct agent_tunnel *t, const char *why)
{
	char label[AGENT_NAME_MAX * 2 + 64];

	if (t->role == TUN_ROLE_SUBSCRIBER && t->path == NS_PATH_PUNCH && !t->proof_ok &&
	    !t->no_punch && t->state >= TUN_DIALING && t->state <= TUN_PROOF) {
		/* the punched path did not come up: the broker routes it again */
		log_info("%s: punched path not up (%s): asking for another path",
			 agent_tunnel_label(t, label, sizeof(label)), why);
		t->no_punch = true;
		goto again;
	}
	if (t->role != TUN_ROLE_SUBSCRIBER || t->pooled || t->flow ||
	    t->proto != IPPROTO_TCP || t->path != NS_PATH_RELAY || t->proof_ok ||
	    t->retries >= AGENT_RELAY_RETRIES || t->state < TUN_DIALING ||
	    t->state > TUN_PROOF)
		return false;
	t->retries++;
	log_warn("%s: relayed tunnel failed (%s): asking the broker again (%u of %u)",
		 agent_tunnel_label(t, label, sizeof(label)), why, t->retries,
		 AGENT_RELAY_RETRIES);
again:
	ns_timer_cancel(t->a->loop, &t->timer);
	ns_timer_cancel(t->a->loop, &t->rtx);
	close_sock(t, &t->tw, &t->tw_reg, true);
	t->has_session = false;
	t->proof_ok = false;
	t->proof_len = t->proof_sent = t->proof_got = 0;
	t->bind_port = 0;
	memset(t->key, 0, sizeof(t->key));
	t->state = TUN_WAIT_INFO;
	agent_tunnel_resend(t);
	return true;
}

/* S: a tunnel for the pool of lis, with no client yet; NULL if it failed. */
struct agent_tunnel *agent_tunnel_pooled(struct agent_listener *lis)
{
	struct agent_tunnel *t = tunnel_new(lis->a, TUN_ROLE_SUBSCRIBER, IPPROTO_TCP);

	if (!t)
		return NULL;
	t->lis = lis;
	t->pooled = true;
	lis->nstarting++;
	if (send_connect(t)) {
		sub_fail(t, "not connected to the broker");
		return NULL;
	}
	log_debug("pool %s: new tunnel, request %u", lis->cfg->service, t->req_id);
	return t;
}

/*
 * The session a new client of lis is a flow of: the listener's own, or for a
 * subscription's ports the session of the same client host; NULL: it needs a
 * session of its own (CONNECT). -ENOENT: an extra port of the subscription
 * with no session to join.
 */
static int client_session(struct agent_listener *lis, const struct sockaddr_storage *client,
			  struct agent_session **out)
{
	*out = lis->sess;
	if (!*out && lis->main)
		*out = agent_session_of_client(lis->main, client);
	if (!*out && lis->main != lis)
		return -ENOENT;
	return 0;
}

struct agent_tunnel *agent_tunnel_subscribe(struct agent_listener *lis, int fd,
					    const struct sockaddr_storage *client)
{
	struct agent *a = lis->a;
	struct agent_session *sess;
	struct agent_tunnel *t;
	char cs[AGENT_SA_STRLEN], label[AGENT_NAME_MAX * 2 + 64];

	if (client_session(lis, client, &sess)) {
		log_warn("connect %s: client %s on port %u refused: it has no session yet (the "
			 "service's first connection goes to %s)", agent_listener_name(lis),
			 agent_sa_str(client, cs, sizeof(cs)), ns_sockaddr_port(&lis->addr),
			 agent_sa_str(&lis->main->addr, cs, sizeof(cs)));
		t = NULL;
	} else {
		t = tunnel_new(a, TUN_ROLE_SUBSCRIBER, lis->proto);
	}
	if (t && lis->proto == IPPROTO_UDP)
		t->transport = agent_udp_transport(lis);
	if (!t) {
		if (fd >= 0) {
			agent_sock_rst(fd);
			close(fd);
		}
		return NULL;
	}
	t->lis = lis;
	t->client = *client;
	agent_sock_local(fd, lis, &t->client_dst);
	if (sess) {
		t->sess = sess;
		t->flow = true;
		t->flow_port = lis->flow_port;
		agent_session_get(sess);
	}
	if (fd >= 0) {
		t->pw.fd = fd;
		agent_sock_tune(fd);
		/* errors only: not one byte is read before the tunnel is up */
		if (agent_tunnel_watch(t, &t->pw, 0)) {
			sub_fail(t, "epoll: %s", strerror(errno));
			return NULL;
		}
	}
	if (send_connect(t)) {
		sub_fail(t, "not connected to the broker");
		return NULL;
	}
	log_debug("connect %s: client %s, request %u", agent_tunnel_label(t, label, sizeof(label)),
		  agent_sa_str(client, cs, sizeof(cs)), t->req_id);
	return t;
}

/* REJECT (an offer) or ERROR { SESSION, CODE, TEXT }: this agent cannot
 * take its part of a session. */
static void send_refusal(struct agent *a, __u8 type, __u64 session, __u32 code,
			 const char *text)
{
	struct ns_msg_buf mb = {};

	ns_mb_init(&mb, type);
	ns_mb_u64(&mb, NS_A_SESSION, session);
	ns_mb_u32(&mb, NS_A_CODE, code);
	ns_mb_str(&mb, NS_A_TEXT, text);
	agent_broker_send(a, &mb);
}

static struct agent_tunnel *find_session(struct agent *a, __u64 session, __u8 role)
{
	struct agent_tunnel *t;

	for (t = a->tunnels; t; t = t->next)
		if (t->has_session && t->session == session && t->role == role)
			return t;
	return NULL;
}

void agent_tunnel_on_offer(struct agent *a, const struct ns_msg *m)
{
	char service[AGENT_NAME_MAX + 1], name[AGENT_NAME_MAX + 1] = "?";
	const struct agent_pub *pub = NULL;
	struct ns_msg_buf mb = {};
	struct agent_tunnel *t;
	__u8 proto = IPPROTO_TCP;
	__u64 session;
	size_t i;

	if (ns_msg_u64(m, NS_A_SESSION, &session) ||
	    ns_msg_str(m, NS_A_SERVICE, service, sizeof(service))) {
		log_warn("broker: OFFER without SESSION or SERVICE ignored");
		return;
	}
	ns_msg_u8(m, NS_A_PROTO, &proto);
	ns_msg_str(m, NS_A_NAME, name, sizeof(name));
	for (i = 0; i < a->cfg->npub && !pub; i++)
		if (!strcmp(a->cfg->pub[i].name, service) && a->cfg->pub[i].proto == proto)
			pub = &a->cfg->pub[i];
	if (!pub) {
		log_warn("offer from %s for %s/%s: not published here; rejected", name, service,
			 proto == IPPROTO_UDP ? "udp" : "tcp");
		send_refusal(a, NS_MSG_REJECT, session, NS_ERR_NOT_FOUND, "no such service");
		return;
	}
	t = find_session(a, session, TUN_ROLE_PROVIDER);
	if (!t) {
		t = tunnel_new(a, TUN_ROLE_PROVIDER, proto);
		if (!t) {
			send_refusal(a, NS_MSG_REJECT, session, NS_ERR_INTERNAL, "out of memory");
			return;
		}
		t->pub = pub;
		t->target = pub->target;
		memcpy(t->alg, pub->alg, sizeof(t->alg));
		t->session = session;
		t->has_session = true;
		snprintf(t->peer_name, sizeof(t->peer_name), "%s", name);
		ns_timer_arm(a->loop, &t->timer, 2 * NS_NEGOTIATE_TIMEOUT_S * 1000);
	}
	log_debug("offer #%016" PRIx64 ": %s wants %s; accepted", (uint64_t)session, name,
		  service);
	ns_mb_init(&mb, NS_MSG_ACCEPT);
	ns_mb_u64(&mb, NS_A_SESSION, session);
	if (pub->alg[0])
		ns_mb_str(&mb, NS_A_ALG, pub->alg);
	if (pub->proxy)
		ns_mb_u8(&mb, NS_A_CLIENT_INFO, 1);	/* the client's address with OPEN */
	agent_broker_send(a, &mb);
}

/*
 * CONNECT_INFO with PARENT for a flow the other agent asked for: its far
 * end here, a provider tunnel to the session's application host at PORT.
 * NULL (and ERROR { SESSION } to the broker) when the session is not here
 * or the port is not one a flow may reach.
 */
static struct agent_tunnel *flow_far_end(struct agent *a, const struct ns_msg *m,
					 __u64 session, __u64 parent)
{
	struct agent_session *s = agent_session_find(a, parent);
	struct sockaddr_storage target;
	struct agent_tunnel *t;
	__u8 proto = IPPROTO_TCP;
	__u16 port = 0;
	int err;

	ns_msg_u8(m, NS_A_PROTO, &proto);
	ns_msg_u16(m, NS_A_PORT, &port);
	err = s ? agent_session_target(s, proto, port, &target) : -ENOENT;
	if (err) {
		log_warn("flow #%016" PRIx64 " on session #%016" PRIx64 " (%s/%u) refused: %s",
			 (uint64_t)session, (uint64_t)parent, proto == IPPROTO_UDP ? "udp" : "tcp",
			 port, s ? "not a port of the service" : "no such session here");
		send_refusal(a, NS_MSG_ERROR, session, err == -EPERM ? NS_ERR_DENIED : NS_ERR_NOT_FOUND,
			   s ? "not a port of the service" : "no such session");
		return NULL;
	}
	t = tunnel_new(a, TUN_ROLE_PROVIDER, proto);
	if (!t)
		return NULL;
	t->sess = s;
	agent_session_get(s);
	s->flows++;
	t->flow = true;
	t->pub = s->pub;
	t->target = target;
	t->session = session;
	t->has_session = true;
	return t;
}

/*
 * CONNECT_INFO with CLIENT_ADDR (ns_proto.h, public ports): a client with no
 * agent at our public port, held by the relay until we connect to it: a new
 * provider tunnel of its own (no OFFER came before). NULL (and ERROR
 * { SESSION } to the broker) when the service is not exposed here.
 */
static struct agent_tunnel *public_tunnel(struct agent *a, const struct ns_msg *m,
					  __u64 session)
{
	char service[AGENT_NAME_MAX + 1] = "";
	const struct agent_pub *pub = NULL;
	struct agent_tunnel *t;
	__u32 addr[4];
	__u16 port;
	__u8 family;
	size_t i;

	ns_msg_str(m, NS_A_SERVICE, service, sizeof(service));
	for (i = 0; i < a->cfg->npub && !pub; i++)
		if (!strcmp(a->cfg->pub[i].name, service) && a->cfg->pub[i].expose.on &&
		    a->cfg->pub[i].proto == IPPROTO_TCP)
			pub = &a->cfg->pub[i];
	if (!pub) {
		log_warn("public client #%016" PRIx64 " for '%s': not exposed here; refused",
			 (uint64_t)session, service);
		send_refusal(a, NS_MSG_ERROR, session, NS_ERR_NOT_FOUND, "not exposed here");
		return NULL;
	}
	t = tunnel_new(a, TUN_ROLE_PROVIDER, IPPROTO_TCP);
	if (!t)
		return NULL;
	t->public = true;
	t->pub = pub;
	t->target = pub->target;
	t->session = session;
	t->has_session = true;
	if (!ns_msg_addr(m, NS_A_CLIENT_ADDR, &family, addr, &port))
		ns_sockaddr_make(family, addr, htons(port), &t->client);
	if (!ns_msg_addr(m, NS_A_PUBLIC_ADDR, &family, addr, &port))
		ns_sockaddr_make(family, addr, htons(port), &t->client_dst);
	agent_sa_str(&t->client, t->peer_name, sizeof(t->peer_name));
	return t;
}

/* CONNECT_INFO -> the tunnel it is for, or NULL. */
static struct agent_tunnel *info_tunnel(struct agent *a, const struct ns_msg *m, __u64 session)
{
	struct agent_tunnel *t;
	__u64 parent;
	__u32 req;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req) == 0) {
		for (t = a->tunnels; t; t = t->next)
			if (t->role == TUN_ROLE_SUBSCRIBER && t->state == TUN_WAIT_INFO &&
			    t->req_id == req)
				break;
		if (!t)
			log_debug("CONNECT_INFO for request %u: the client is gone", req);
		return t;
	}
	t = find_session(a, session, TUN_ROLE_PROVIDER);
	if (!t && ns_msg_u64(m, NS_A_PARENT, &parent) == 0)
		return flow_far_end(a, m, session, parent);
	if (!t && m->attr[NS_A_CLIENT_ADDR])
		return public_tunnel(a, m, session);
	if (!t || t->state != TUN_WAIT_INFO) {
		log_debug("CONNECT_INFO for session #%016" PRIx64 ": not expected",
			  (uint64_t)session);
		return NULL;
	}
	return t;
}

/* S: the client's request failed; P: drop the tunnel. */
static void sub_or_close(struct agent_tunnel *t, const char *why)
{
	if (t->role == TUN_ROLE_SUBSCRIBER)
		sub_fail(t, "%s", why);
	else
		agent_tunnel_close(t, true, why);
}

/*
 * S: the provider's ALG (CONNECT_INFO ALG) runs here only if the
 * subscription names the same one: an ALG lets flows reach the client's
 * host, which only the subscriber may allow.
 */
static void sub_alg(struct agent_tunnel *t, const struct ns_msg *m, const char *label)
{
	char alg[AGENT_ALG_MAX + 1] = "";
	const char *mine = t->lis->cfg->alg;

	ns_msg_str(m, NS_A_ALG, alg, sizeof(alg));
	if (strcmp(alg, mine))
		log_warn("%s: the provider runs %s%s, this subscription %s%s: no ALG here", label,
			 alg[0] ? "alg " : "no alg", alg, mine[0] ? "alg " : "no alg", mine);
	t->alg[0] = '\0';
	if (alg[0] && !strcmp(alg, mine))
		memcpy(t->alg, mine, sizeof(t->alg));
}

/* CONNECT_INFO's TRANSPORT and TOKEN: 0, or -EINVAL (UDP relay without TOKEN). */
static int udp_info(struct agent_tunnel *t, const struct ns_msg *m)
{
	__u8 transport = IPPROTO_TCP;

	ns_msg_u8(m, NS_A_TRANSPORT, &transport);
	t->transport = t->proto == IPPROTO_UDP && transport == IPPROTO_UDP ? IPPROTO_UDP :
		       IPPROTO_TCP;
	if (t->transport != IPPROTO_UDP || t->path != NS_PATH_RELAY)
		return 0;
	return ns_msg_bin(m, NS_A_TOKEN, t->token, sizeof(t->token)) ? -EINVAL : 0;
}

void agent_tunnel_on_info(struct agent *a, const struct ns_msg *m)
{
	char label[AGENT_NAME_MAX * 2 + 64], ps[AGENT_SA_STRLEN];
	__u8 wrapped[NS_KEY_LEN], family, dial, compress = 0, path = 0, plain = 0;
	struct agent_tunnel *t;
	__u32 addr[4], punch_s, delay;
	__u64 session;
	__u16 port;

	if (ns_msg_u64(m, NS_A_SESSION, &session)) {
		log_warn("broker: CONNECT_INFO without SESSION ignored");
		return;
	}
	t = info_tunnel(a, m, session);
	if (!t)
		return;
	t->session = session;
	t->has_session = true;
	agent_tunnel_label(t, label, sizeof(label));
	if (ns_msg_u8(m, NS_A_DIAL, &dial) || dial > 1 ||
	    ns_msg_addr(m, NS_A_PEER_ADDR, &family, addr, &port) ||
	    (!t->public && ns_msg_bin(m, NS_A_KEY, wrapped, sizeof(wrapped))) ||
	    (dial && !port) || (t->public && !dial)) {
		log_err("%s: broker sent an incomplete CONNECT_INFO", label);
		sub_or_close(t, "bad CONNECT_INFO from the broker");
		return;
	}
	ns_msg_u8(m, NS_A_PATH, &path);
	ns_msg_u8(m, NS_A_COMPRESS, &compress);
	ns_msg_u8(m, NS_A_PLAIN, &plain);
	t->plain = plain == 1 || t->public;	/* (a public client speaks to the target) */
	if (t->role == TUN_ROLE_SUBSCRIBER && !ns_msg_u8(m, NS_A_CLIENT_INFO, &plain))
		t->want_client = plain == 1;
	t->path = path;
	if (udp_info(t, m)) {
		log_err("%s: broker sent a UDP relay CONNECT_INFO without TOKEN", label);
		sub_or_close(t, "bad CONNECT_INFO from the broker");
		return;
	}
	if (t->role == TUN_ROLE_SUBSCRIBER && !t->flow)
		sub_alg(t, m, label);
	ns_msg_u16(m, NS_A_BIND_PORT, &t->bind_port);
	t->compress = compress;
	ns_sockaddr_make(family, addr, htons(port), &t->peer);
	if (!t->public && ns_key_wrap(a->cfg->secret, session, wrapped, t->key)) {
		agent_tunnel_close(t, true, "cannot unwrap the session key");
		return;
	}
	ns_timer_arm(a->loop, &t->timer, (t->transport == IPPROTO_UDP &&
					  t->role == TUN_ROLE_SUBSCRIBER ?
					  a->cfg->udp_fallback_s : a->cfg->connect_timeout_s) * 1000);
	if (path == NS_PATH_PUNCH && !ns_msg_u32(m, NS_A_TIMEOUT, &punch_s) && punch_s &&
	    punch_s < a->cfg->connect_timeout_s)
		ns_timer_arm(a->loop, &t->timer, punch_s * 1000);	/* then another path */
	log_debug("%s: %s path, %s %s%s%s%s", label, ns_path_name(path),
		  dial ? "connecting to" : "waiting for", agent_sa_str(&t->peer, ps, sizeof(ps)),
		  compress ? ", compressed" : "", t->transport == IPPROTO_UDP ? ", udp" : "",
		  t->plain ? ", not encrypted" : "");
	if (path != NS_PATH_PUNCH || ns_msg_u32(m, NS_A_DELAY_MS, &delay))
		delay = 0;
	delay = delay < 1000 ? delay : 1000;
	if (t->transport == IPPROTO_UDP) {
		agent_udp_link(t, dial, delay);
		return;
	}
	if (dial) {
		if (delay)
			agent_link_dial_later(t, delay);
		else
			agent_link_dial(t);
		return;
	}
	if (a->tl_w.fd < 0) {
		log_err("%s: the broker wants this agent to accept the tunnel, but "
			"tunnel-listen is not configured", label);
		sub_or_close(t, "cannot accept the tunnel (no tunnel-listen)");
		return;
	}
	t->state = TUN_WAIT_PEER;
	agent_link_expect(t);
}

void agent_tunnel_on_error(struct agent *a, const struct ns_msg *m)
{
	char text[1001] = "", label[AGENT_NAME_MAX * 2 + 64];
	struct agent_tunnel *t = NULL;
	__u32 code = 0, req;
	__u64 session;

	ns_msg_u32(m, NS_A_CODE, &code);
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	if (ns_msg_u32(m, NS_A_REQ_ID, &req) == 0) {
		for (t = a->tunnels; t; t = t->next)
			if (t->role == TUN_ROLE_SUBSCRIBER && t->req_id == req)
				break;
	} else if (ns_msg_u64(m, NS_A_SESSION, &session) == 0) {
		t = find_session(a, session, TUN_ROLE_PROVIDER);
	}
	if (!t || t->state == TUN_FWD || t->state == TUN_READY) {
		log_debug("broker: %s (%s) for a finished request", agent_err_text(code), text);
		return;
	}
	if (t->role == TUN_ROLE_SUBSCRIBER) {
		if (t->flow)	/* the broker or the provider lost the session */
			t->sess->dead = true;
		if (code == NS_ERR_LIMIT)
			sub_fail_limit(t, "%s%s%s", agent_err_text(code), *text ? ": " : "", text);
		else
			sub_fail(t, "%s%s%s", agent_err_text(code), *text ? ": " : "", text);
		return;
	}
	/* RETRY: the broker negotiates the tunnel again; nothing failed. */
	ns_log(code == NS_ERR_RETRY ? NS_LOG_DEBUG : NS_LOG_WARN, "%s: %s%s%s",
		agent_tunnel_label(t, label, sizeof(label)), agent_err_text(code),
		*text ? ": " : "", text);
	agent_tunnel_close(t, true, agent_err_text(code));
}

void agent_tunnel_broker_down(struct agent *a)
{
	struct agent_tunnel *t, *next;

	/* Their answers would have come on the lost connection. */
	for (t = a->tunnels; t; t = next) {
		next = t->next;
		if (t->state != TUN_WAIT_INFO)
			continue;
		if (t->role == TUN_ROLE_SUBSCRIBER)
			sub_fail(t, "broker connection lost");
		else
			agent_tunnel_close(t, true, "broker connection lost");
	}
}

void agent_tunnels_close_all(struct agent *a)
{
	agent_link_close_incoming(a);
	while (a->tunnels)
		agent_tunnel_close(a->tunnels, false, "stopping");
}
