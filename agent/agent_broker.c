// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What the agent does over its broker connection: log in with its tunnel
 * port, publish its services after every login, and hand the broker's
 * messages to the tunnels. The connection itself (connect, login,
 * heartbeats and the hold timer, reconnecting with jittered exponential
 * backoff) is lib/bclient.c's. Tunnels are separate TCP connections: losing
 * the broker never touches an established one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "agent.h"
#include "bclient.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

bool agent_broker_up(const struct agent *a)
{
	return ns_bclient_up(a->br.bc);
}

__u32 agent_req_id(struct agent *a)
{
	__u32 id = a->next_req++;

	if (!a->next_req)
		a->next_req = 1;	/* 0 marks "answered" in pub_req */
	return id;
}

int agent_broker_send(struct agent *a, struct ns_msg_buf *mb)
{
	if (!a->br.bc) {
		ns_mb_free(mb);
		return -ENOTCONN;
	}
	return ns_bclient_send(a->br.bc, mb);
}

/* The agent cannot go on (refused, replaced): stop the loop with status 1. */
static void br_fatal(struct agent *a)
{
	ns_bclient_stop(a->br.bc);
	agent_tunnel_broker_down(a);
	a->exit_code = 1;
	a->stop = true;
}

static void log_duplicate(struct agent *a)
{
	log_err("broker: another agent logged in as %s and replaced this one; "
		"stopping (two agents must not share a name)", a->cfg->name);
}

/* PUBLISH cfg->pub[i], its REQ_ID in pub_req[i]. */
static void send_one(struct agent *a, size_t i)
{
	const struct agent_pub *p = &a->cfg->pub[i];
	struct agent_broker *b = &a->br;
	struct ns_msg_buf mb = {};

	b->pub_req[i] = agent_req_id(a);
	ns_mb_init(&mb, NS_MSG_PUBLISH);
	ns_mb_u32(&mb, NS_A_REQ_ID, b->pub_req[i]);
	ns_mb_str(&mb, NS_A_SERVICE, p->name);
	ns_mb_u8(&mb, NS_A_PROTO, p->proto);
	if (p->compress)
		ns_mb_u8(&mb, NS_A_COMPRESS, 1);
	if (p->plain)
		ns_mb_u8(&mb, NS_A_PLAIN, 1);
	if (p->expose.on) {
		size_t mark = ns_mb_nest_begin(&mb, NS_A_EXPOSE);
		unsigned int j;

		ns_mb_u16(&mb, NS_A_PORT, p->expose.port);
		for (j = 0; j < p->expose.nallow; j++)
			ns_mb_str(&mb, NS_A_PREFIX, p->expose.allow[j]);
		if (p->expose.max_conns)
			ns_mb_u32(&mb, NS_A_MAX_CONNS, p->expose.max_conns);
		ns_mb_nest_end(&mb, mark);
	}
	b->pub_pending++;
	agent_broker_send(a, &mb);
}

static void send_publish(struct agent *a)
{
	size_t i;

	a->br.pub_pending = a->br.pub_ok = 0;
	for (i = 0; i < a->cfg->npub && agent_broker_up(a); i++)
		send_one(a, i);
}

void agent_broker_republish(struct agent *a, const bool *changed, const char *const *gone,
			    size_t n)
{
	struct agent_broker *b = &a->br;
	__u32 *req = calloc(a->cfg->npub ? a->cfg->npub : 1, sizeof(*req));
	size_t i;

	if (!req) {
		/* a new login publishes the whole list */
		ns_bclient_drop(b->bc, "reload: out of memory for the services");
		return;
	}
	free(b->pub_req);
	b->pub_req = req;
	b->pub_pending = 0;
	if (!agent_broker_up(a))
		return;		/* the next login publishes the new list */
	for (i = 0; i < n && agent_broker_up(a); i++) {
		struct ns_msg_buf mb = {};

		ns_mb_init(&mb, NS_MSG_UNPUBLISH);
		ns_mb_u32(&mb, NS_A_REQ_ID, agent_req_id(a));
		ns_mb_str(&mb, NS_A_SERVICE, gone[i]);
		agent_broker_send(a, &mb);
	}
	for (i = 0; i < a->cfg->npub && agent_broker_up(a); i++)
		if (changed[i])
			send_one(a, i);
}

static void log_ready(struct agent *a)
{
	a->br.ready_logged = true;
	log_info("ready: logged in as %s, %zu published, %zu subscribed", a->cfg->name,
		 a->br.pub_ok, a->cfg->nsub);
	ns_detach_ready(&a->ready_fd);	/* the first "ready" completes a -d start-up */
	agent_pool_broker_up(a);
}

/* OK / ERROR for one of our PUBLISH requests: true if it was one. */
static bool publish_reply(struct agent *a, const struct ns_msg *m, bool ok)
{
	struct agent_broker *b = &a->br;
	char text[1001] = "";
	__u32 req, code = 0;
	size_t i;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req) || !req)
		return false;
	for (i = 0; i < a->cfg->npub && b->pub_req[i] != req; i++)
		;
	if (i == a->cfg->npub)
		return false;
	b->pub_req[i] = 0;
	b->pub_pending--;
	if (ok) {
		b->pub_ok++;
		log_debug("published %s", a->cfg->pub[i].name);
	} else {
		ns_msg_u32(m, NS_A_CODE, &code);
		ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
		log_err("publish %s: %s%s%s", a->cfg->pub[i].name, agent_err_text(code),
			*text ? ": " : "", text);
	}
	if (!b->pub_pending && !b->ready_logged)
		log_ready(a);
	return true;
}

static void on_error(struct agent *a, const struct ns_msg *m)
{
	char text[1001] = "";
	__u32 code = 0;

	ns_msg_u32(m, NS_A_CODE, &code);
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	if (code == NS_ERR_DUPLICATE) {
		log_duplicate(a);
		br_fatal(a);
		return;
	}
	if (publish_reply(a, m, false))
		return;
	if (m->attr[NS_A_REQ_ID] || m->attr[NS_A_SESSION]) {
		agent_tunnel_on_error(a, m);
		return;
	}
	/* Not about a request of ours: the broker is closing this connection. */
	ns_bclient_drop(a->br.bc, "broker error: %s (%s)%s%s", agent_err_text(code),
			ns_err_name(code), *text ? ": " : "", text);
}

/* ---- the broker client's callbacks ---- */

/* LOGIN: the port of tunnel_listen, for direct and reverse paths. */
static void on_login(void *arg, struct ns_msg_buf *mb)
{
	struct agent *a = arg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	__u32 addr[4];
	__u8 family;
	__be16 port;

	if (a->tl_w.fd >= 0 && !getsockname(a->tl_w.fd, (struct sockaddr *)&ss, &sl)) {
		ns_sockaddr_split(&ss, &family, addr, &port);
		ns_mb_u16(mb, NS_A_LISTEN_PORT, ntohs(port));
	}
}

static void on_up(void *arg, const struct ns_bclient_login *li)
{
	struct agent *a = arg;

	a->br.ready_logged = false;
	send_publish(a);
	if (agent_broker_up(a) && !a->br.pub_pending)
		log_ready(a);
}

/* PUBLIC_INFO { SERVICE, [PEER_ADDR], [TEXT] }: where a service's public
 * port is open, or why it is not (any more). */
static void on_public_info(struct agent *a, const struct ns_msg *m)
{
	char service[AGENT_NAME_MAX + 1], text[1001] = "", as[NS_ADDRSTRLEN];
	__u32 addr[4];
	__u16 port;
	__u8 family;

	if (ns_msg_str(m, NS_A_SERVICE, service, sizeof(service))) {
		log_warn("broker: PUBLIC_INFO without SERVICE ignored");
		return;
	}
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	if (ns_msg_addr(m, NS_A_PEER_ADDR, &family, addr, &port)) {
		log_warn("%s: no public port%s%s", service, text[0] ? ": " : "", text);
		return;
	}
	ns_addr_str(family, addr, as, sizeof(as));
	log_info("%s: public at %s%s%s:%u", service, family == NS_AF_INET6 ? "[" : "", as,
		 family == NS_AF_INET6 ? "]" : "", port);
}

/* One message after LOGIN_OK; the connection may be gone afterwards. */
static void on_message(void *arg, const struct ns_msg *m)
{
	struct agent *a = arg;

	switch (m->type) {
	case NS_MSG_ERROR:
		on_error(a, m);
		break;
	case NS_MSG_OK:
		if (!publish_reply(a, m, true))
			log_debug("broker: OK for an unknown request");
		break;
	case NS_MSG_OFFER:
		agent_tunnel_on_offer(a, m);
		break;
	case NS_MSG_CONNECT_INFO:
		agent_tunnel_on_info(a, m);
		break;
	case NS_MSG_PUBLIC_INFO:
		on_public_info(a, m);
		break;
	case NS_MSG_RELAYS:
		agent_rtt_on_relays(a, m);
		break;
	case NS_MSG_DISCOVERY:
		agent_disc_on_offer(a, m);
		break;
	default:
		/* A newer broker's message: not fatal, just not ours. */
		log_debug("broker: ignoring %s", ns_msg_type_name(m->type));
		break;
	}
}

/* Logged and closed already; the tunnels still waiting for the broker fail. */
static void on_down(void *arg, const struct ns_bclient_loss *loss)
{
	struct agent *a = arg;

	if (loss->why == NS_BCLIENT_REFUSED && loss->code == NS_ERR_AUTH) {
		log_err("broker refused login: wrong name or secret (name %s); stopping",
			a->cfg->name);
		br_fatal(a);
		return;
	}
	if (loss->why == NS_BCLIENT_REFUSED && loss->code == NS_ERR_DUPLICATE) {
		log_duplicate(a);
		br_fatal(a);
		return;
	}
	agent_rtt_clear(a);
	agent_tunnel_broker_down(a);
}

static const struct ns_bclient_ops agent_bclient_ops = {
	.login = on_login,
	.up = on_up,
	.message = on_message,
	.down = on_down,
};

void agent_broker_start(struct agent *a)
{
	const struct agent_cfg *c = a->cfg;
	struct ns_bclient_cfg bc = {
		.addr = c->broker, .addrlen = c->broker_len, .role = NS_ROLE_AGENT,
		.name = c->name, .secret = c->secret, .tls = &c->tls,
	};
	struct agent_broker *b = &a->br;
	int err = -ENOMEM;

	b->pub_req = calloc(c->npub ? c->npub : 1, sizeof(*b->pub_req));
	if (b->pub_req)
		err = ns_bclient_new(a->loop, &bc, &agent_bclient_ops, a, &b->bc);
	if (err) {
		log_err("broker client: %s", strerror(-err));
		a->exit_code = 1;
		a->stop = true;
		return;
	}
	ns_bclient_start(b->bc);
}

void agent_broker_stop(struct agent *a)
{
	ns_bclient_free(a->br.bc);
	a->br.bc = NULL;
	free(a->br.pub_req);
	a->br.pub_req = NULL;
}
