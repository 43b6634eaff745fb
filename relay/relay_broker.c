// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The relay's connection to the broker (`relay run --broker`): log in as a
 * relay, serve SPLICE_REQUEST with the same code as `natsplice splice add`,
 * tell the broker A's source port of a pure splice (SPLICE_PEER) and the end
 * of every splice with its counters (SPLICE_DONE). The connection itself
 * (login, heartbeats, reconnecting) is lib/bclient.c's; splices live on in
 * the kernel while the broker is away.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include "relay.h"
#include "bclient.h"
#include "log.h"
#include "proto.h"
#include "util.h"

/* LOGIN: a relay also says which address its splices use, and which ports
 * the broker may open there for public clients. */
static void on_login(void *arg, struct ns_msg_buf *mb)
{
	struct relay *r = arg;
	char range[16];
	unsigned int i;

	if (r->cfg.has_pub4)
		ns_mb_addr(mb, NS_A_RELAY_ADDR, NS_AF_INET, r->cfg.pub4, 0);
	else if (r->cfg.has4)
		ns_mb_addr(mb, NS_A_RELAY_ADDR, NS_AF_INET, r->cfg.addr4, 0);
	else
		ns_mb_addr(mb, NS_A_RELAY_ADDR, NS_AF_INET6, r->cfg.addr6, 0);
	for (i = 0; i < r->cfg.npublic_ports; i++) {
		snprintf(range, sizeof(range), "%u-%u", r->cfg.public_ports[i].lo,
			 r->cfg.public_ports[i].hi);
		ns_mb_str(mb, NS_A_PUBLIC_PORTS, range);
	}
	if (r->echo[0].w.fd >= 0 || r->echo[1].w.fd >= 0)
		ns_mb_u16(mb, NS_A_ECHO_PORT, r->cfg.echo_port);
	if (!r->dp->pure)
		ns_mb_u8(mb, NS_A_PASSIVE_ONLY, 1);
	if (relay_disc_on(r))
		ns_mb_u16(mb, NS_A_DISC_PORT, r->cfg.disc_port);
}

static void on_up(void *arg, const struct ns_bclient_login *li)
{
	struct relay *r = arg;

	log_info("registered with broker %s as %s", r->cfg.broker, r->cfg.name);
}

static void send_error(struct relay *r, __u64 session, int code, const char *text)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_ERROR);
	if (session)
		ns_mb_u64(&mb, NS_A_SESSION, session);
	ns_mb_u32(&mb, NS_A_CODE, code);
	ns_mb_str(&mb, NS_A_TEXT, text);
	ns_bclient_send(r->broker, &mb);
}

/* SPLICE_REQUEST: the same path as `natsplice splice add`. */
static void on_splice_request(struct relay *r, const struct ns_msg *m)
{
	struct ctl_req req = { .version = CTL_VERSION, .op = CTL_ADD };
	struct relay_splice *sp;
	struct ns_msg_buf mb;
	__u64 session;
	__u8 fam[2] = {}, mode = NS_MODE_PASSIVE;
	__u16 port;
	char msg[160] = "";
	int side, err;

	if (ns_msg_u64(m, NS_A_SESSION, &session) || ns_msg_u8(m, NS_A_PROTO, &req.proto)) {
		send_error(r, 0, NS_ERR_MALFORMED, "SPLICE_REQUEST needs SESSION and PROTO");
		return;
	}
	ns_msg_u8(m, NS_A_SPLICE_MODE, &mode);
	req.mode = mode;
	ns_msg_u32(m, NS_A_TIMEOUT, &req.timeout_s);
	for (side = 0; side < 2; side++)
		req.has_from[side] = !ns_msg_addr(m, side ? NS_A_FROM_B : NS_A_FROM_A, &fam[side],
						  req.from[side], &port);
	req.family = req.has_from[0] ? fam[0] : req.has_from[1] ? fam[1] : 0;
	if (req.has_from[0] && req.has_from[1] && fam[0] != fam[1]) {
		send_error(r, session, NS_ERR_MALFORMED, "FROM_A and FROM_B of different families");
		return;
	}
	err = relay_splice_add(r, &req, &sp, msg, sizeof(msg));
	if (err) {
		/* Out of relay ports or table room: the broker tries another
		 * relay or waits; anything else is an error. */
		send_error(r, session, err == -EADDRINUSE || err == -ENOSPC ? NS_ERR_BUSY :
				       NS_ERR_INTERNAL, msg[0] ? msg : strerror(-err));
		return;
	}
	sp->s.session = session;
	relay_splice_save(r, sp);
	ns_mb_init(&mb, NS_MSG_SPLICE_READY);
	ns_mb_u64(&mb, NS_A_SESSION, session);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, sp->s.id);
	/* behind a full-cone NAT: the agents connect to the NAT's address */
	ns_mb_addr(&mb, NS_A_RELAY_ADDR, sp->s.family,
		   sp->s.family == NS_AF_INET && r->cfg.has_pub4 ? r->cfg.pub4 : sp->s.relay, 0);
	ns_mb_u16(&mb, NS_A_PORT_A, ntohs(sp->s.port[0]));
	ns_mb_u16(&mb, NS_A_PORT_B, ntohs(sp->s.port[1]));
	if (sp->s.proto == IPPROTO_UDP)
		ns_mb_bin(&mb, NS_A_TOKEN, sp->s.token, sizeof(sp->s.token));
	ns_bclient_send(r->broker, &mb);
	log_info("splice %u: for broker session %016llx", sp->s.id, (unsigned long long)session);
}

static void send_req_error(struct relay *r, __u32 req, int code, const char *text)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_ERROR);
	ns_mb_u32(&mb, NS_A_REQ_ID, req);
	ns_mb_u32(&mb, NS_A_CODE, code);
	ns_mb_str(&mb, NS_A_TEXT, text);
	ns_bclient_send(r->broker, &mb);
}

/* PUBLIC_OPEN { REQ_ID, PUBLIC_ID, PORT, PROTO, FROM_A, TIMEOUT, PREFIX... } */
static void on_public_open(struct relay *r, const struct ns_msg *m)
{
	struct relay_public want = { .timeout_s = r->cfg.half_open_s };
	struct ns_msg_buf mb;
	char msg[160] = "", pfx[64];
	const __u8 *val;
	size_t pos = 0;
	__u16 port, alen;
	__u8 proto = 0;
	__u32 req;
	int err;

	if (ns_msg_u32(m, NS_A_REQ_ID, &req)) {
		send_error(r, 0, NS_ERR_MALFORMED, "PUBLIC_OPEN needs REQ_ID");
		return;
	}
	if (ns_msg_u32(m, NS_A_PUBLIC_ID, &want.id) || !want.id ||
	    ns_msg_u16(m, NS_A_PORT, &want.port) || !want.port ||
	    ns_msg_addr(m, NS_A_FROM_A, &want.family, want.from, &port)) {
		send_req_error(r, req, NS_ERR_MALFORMED,
			       "PUBLIC_OPEN needs PUBLIC_ID, PORT and FROM_A");
		return;
	}
	if (!ns_msg_u8(m, NS_A_PROTO, &proto) && proto != IPPROTO_TCP) {
		send_req_error(r, req, NS_ERR_UNSUPPORTED, "public ports are for TCP only");
		return;
	}
	ns_msg_u32(m, NS_A_TIMEOUT, &want.timeout_s);
	if (!want.timeout_s)
		want.timeout_s = 1;
	while (ns_msg_next(m, NS_A_PREFIX, &pos, &val, &alen) == 1) {
		if (want.nprefix == RELAY_PUBLIC_PREFIXES) {
			send_req_error(r, req, NS_ERR_MALFORMED, "too many PREFIX");
			return;
		}
		snprintf(pfx, sizeof(pfx), "%.*s", alen, (const char *)val);
		if (alen >= sizeof(pfx) || ns_prefix_parse(pfx, &want.prefix[want.nprefix++])) {
			send_req_error(r, req, NS_ERR_MALFORMED, "bad PREFIX");
			return;
		}
	}
	err = relay_public_open(r, &want, msg, sizeof(msg));
	if (err) {
		log_warn("public port %u for the broker: %s", want.port, msg);
		send_req_error(r, req, err == -EPERM ? NS_ERR_DENIED :
				       err == -EADDRINUSE || err == -ENOSPC ? NS_ERR_BUSY :
				       NS_ERR_INTERNAL, msg);
		return;
	}
	ns_mb_init(&mb, NS_MSG_OK);
	ns_mb_u32(&mb, NS_A_REQ_ID, req);
	ns_bclient_send(r->broker, &mb);
}

void relay_broker_public_client(struct relay *r, const struct relay_public *pub,
				const struct relay_splice *sp)
{
	struct ns_msg_buf mb;

	if (!ns_bclient_up(r->broker))
		return;
	ns_mb_init(&mb, NS_MSG_PUBLIC_CLIENT);
	ns_mb_u32(&mb, NS_A_PUBLIC_ID, pub->id);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, sp->s.id);
	ns_mb_u16(&mb, NS_A_PORT_A, ntohs(sp->s.port[0]));
	ns_mb_addr(&mb, NS_A_PEER_ADDR, sp->s.family, sp->s.peer[1].addr,
		   ntohs(sp->s.peer[1].port));
	ns_bclient_send(r->broker, &mb);
}

/* What the broker asks of a logged-in relay. */
static void on_message(void *arg, const struct ns_msg *m)
{
	struct relay *r = arg;
	char text[256] = "";
	__u32 code = 0, id;
	__u64 session;

	switch (m->type) {
	case NS_MSG_SPLICE_REQUEST:
		on_splice_request(r, m);
		return;
	case NS_MSG_PUBLIC_OPEN:
		on_public_open(r, m);
		return;
	case NS_MSG_PUBLIC_CLOSE:
		if (!ns_msg_u32(m, NS_A_PUBLIC_ID, &id))
			relay_public_close(r, id, "by the broker");
		return;
	case NS_MSG_PUBLIC_ACCEPT:
		if (!ns_msg_u32(m, NS_A_SPLICE_ID, &id) && !ns_msg_u64(m, NS_A_SESSION, &session) &&
		    session)
			relay_public_answer(r, id, session, 0);
		return;
	case NS_MSG_PUBLIC_REFUSE:
		ns_msg_u32(m, NS_A_CODE, &code);
		if (!ns_msg_u32(m, NS_A_SPLICE_ID, &id))
			relay_public_answer(r, id, 0, code);
		return;
	case NS_MSG_DISC_SEND:
		relay_disc_on_send(r, m);
		return;
	case NS_MSG_ERROR:
		ns_msg_u32(m, NS_A_CODE, &code);
		ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
		log_warn("broker error: %s (%s)", text, ns_err_name(code));
		return;
	default:
		log_debug("broker sent %s, ignored", ns_msg_type_name(m->type));
	}
}

/* Splices live on in the kernel; public ports close (the broker moves them
 * elsewhere meanwhile, and opens them again when this relay is back). */
static void on_down(void *arg, const struct ns_bclient_loss *loss)
{
	relay_public_close_all(arg, "the broker is gone");
}

static const struct ns_bclient_ops relay_bclient_ops = {
	.login = on_login,
	.up = on_up,
	.message = on_message,
	.down = on_down,
};

void relay_broker_splice_peer(struct relay *r, const struct relay_splice *sp)
{
	struct ns_msg_buf mb;

	if (!ns_bclient_up(r->broker) || !sp->s.session)
		return;
	ns_mb_init(&mb, NS_MSG_SPLICE_PEER);
	ns_mb_u64(&mb, NS_A_SESSION, sp->s.session);
	ns_mb_u16(&mb, NS_A_PORT_B, ntohs(sp->s.port[1]));
	if (sp->s.proto == IPPROTO_UDP)
		ns_mb_bin(&mb, NS_A_TOKEN, sp->s.token, sizeof(sp->s.token));
	ns_bclient_send(r->broker, &mb);
}

static void send_done(struct relay *r, __u64 session, __u32 splice_id, const __u64 bytes[2],
		      __u64 packets, const char *why)
{
	struct ns_msg_buf mb;

	if (!ns_bclient_up(r->broker) || !session)
		return;
	ns_mb_init(&mb, NS_MSG_SPLICE_DONE);
	ns_mb_u64(&mb, NS_A_SESSION, session);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, splice_id);
	ns_mb_u64(&mb, NS_A_BYTES_AB, bytes[0]);
	ns_mb_u64(&mb, NS_A_BYTES_BA, bytes[1]);
	ns_mb_u64(&mb, NS_A_PACKETS, packets);
	ns_mb_str(&mb, NS_A_TEXT, why);
	ns_bclient_send(r->broker, &mb);
}

void relay_broker_splice_done(struct relay *r, const struct relay_splice *sp,
			      const struct ctl_splice *info, const char *why)
{
	send_done(r, sp->s.session, sp->s.id, info->bytes, info->packets[0] + info->packets[1],
		  why);
}

void relay_broker_gone(struct relay *r, __u64 session, __u32 splice_id)
{
	static const __u64 none[2];

	send_done(r, session, splice_id, none, 0, "gone before its provider came");
}

int relay_broker_open(struct relay *r)
{
	struct ns_bclient_cfg cfg = {
		.role = NS_ROLE_RELAY, .name = r->cfg.name, .secret = r->cfg.secret,
		.tls = &r->cfg.tls,
	};
	int err;

	if (!r->cfg.broker[0])
		return 0;
	if (!r->cfg.name[0] || !r->cfg.secret[0]) {
		log_err("--broker needs --name and --secret");
		return -EINVAL;
	}
	if (ns_parse_sockaddr(r->cfg.broker, 0, &cfg.addr, &cfg.addrlen)) {
		log_err("bad broker address '%s' (IP:PORT)", r->cfg.broker);
		return -EINVAL;
	}
	err = ns_bclient_new(r->loop, &cfg, &relay_bclient_ops, r, &r->broker);
	if (err)
		return err;
	ns_bclient_start(r->broker);
	return 0;
}

void relay_broker_close(struct relay *r)
{
	ns_bclient_free(r->broker);
	r->broker = NULL;
}
