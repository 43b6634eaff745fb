// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control connection to the broker: connect, log in, publish, heartbeats
 * and the hold timer, reconnection with jittered exponential backoff, and the
 * dispatch of the broker's messages. Tunnels are separate TCP connections:
 * losing the broker never touches an established one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "agent.h"
#include "auth.h"
#include "log.h"
#include "util.h"

#define LOGIN_TIMEOUT_S		NS_NEGOTIATE_TIMEOUT_S	/* connect + CHALLENGE + LOGIN_OK */
#define HOLD_MIN_S		3

static void br_fail(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bool agent_broker_up(const struct agent *a)
{
	return a->br.state == BR_UP;
}

__u32 agent_req_id(struct agent *a)
{
	__u32 id = a->next_req++;

	if (!a->next_req)
		a->next_req = 1;	/* 0 marks "answered" in pub_req */
	return id;
}

static void br_watch(struct agent *a, __u32 events)
{
	struct agent_broker *b = &a->br;

	if (events != b->wevents && !ns_loop_mod(a->loop, &b->w, events))
		b->wevents = events;
}

/* Close the connection, whatever its state. */
static void br_close(struct agent *a)
{
	struct agent_broker *b = &a->br;

	if (b->state == BR_CONNECTING || b->state == BR_LOGIN || b->state == BR_UP)
		ns_loop_del(a->loop, &b->w);
	if (b->state == BR_CONNECTING && b->fd >= 0)
		close(b->fd);
	if (b->state == BR_LOGIN || b->state == BR_UP)
		ns_conn_free(&b->conn);
	b->fd = -1;
	ns_timer_cancel(a->loop, &b->retry_t);
	ns_timer_cancel(a->loop, &b->hold_t);
	ns_timer_cancel(a->loop, &b->beat_t);
	ns_timer_cancel(a->loop, &b->fail_t);
	b->send_err = 0;
	b->state = BR_IDLE;
}

static void br_schedule(struct agent *a)
{
	struct agent_broker *b = &a->br;
	__u32 rnd = 0, ms;

	ns_random_bytes(&rnd, sizeof(rnd));
	ms = agent_backoff_ms(b->attempt, rnd);
	if (b->attempt < 16)
		b->attempt++;
	log_info("broker: reconnecting in %u.%01u s", ms / 1000, ms % 1000 / 100);
	ns_timer_arm(a->loop, &b->retry_t, ms);
}

/* The connection failed or ended: tell the tunnels, try again later. */
static void br_fail(struct agent *a, const char *fmt, ...)
{
	bool was_up = a->br.state == BR_UP;
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (was_up)
		log_warn("broker connection lost: %s", why);
	else
		log_warn("broker: %s", why);
	br_close(a);
	agent_tunnel_broker_down(a);
	if (!a->stop)
		br_schedule(a);
}

/* Like br_fail, but the agent cannot go on: stop the loop with status 1. */
static void br_fatal(struct agent *a)
{
	br_close(a);
	agent_tunnel_broker_down(a);
	a->exit_code = 1;
	a->stop = true;
}

int agent_broker_send(struct agent *a, struct ns_msg_buf *mb)
{
	struct agent_broker *b = &a->br;
	int err;

	err = ns_mb_finish(mb);
	if (!err && ((b->state != BR_LOGIN && b->state != BR_UP) || b->send_err))
		err = -ENOTCONN;
	if (!err)
		err = ns_conn_send(&b->conn, mb);
	ns_mb_free(mb);
	if (err == -ENOTCONN)
		return err;
	if (err) {
		/* Not here: the caller may be in the middle of a tunnel that
		 * br_fail() would free. The loop runs on_send_fail() next. */
		b->send_err = err;
		ns_timer_arm(a->loop, &b->fail_t, 0);
		return err;
	}
	br_watch(a, EPOLLIN | (ns_conn_want_write(&b->conn) ? EPOLLOUT : 0));
	return 0;
}

static __u32 hold_ms(const struct agent_broker *b)
{
	return b->hold_s * 1000;
}

static void set_user_timeout(int fd, __u32 ms)
{
	unsigned int v = ms;

	/* Unacknowledged data for this long: the connection is dead. */
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, sizeof(v));
}

/* ---- timers ---- */

static void on_retry(struct ns_loop *l, struct ns_timer *t);

static void on_send_fail(struct ns_loop *l, struct ns_timer *t)
{
	struct agent *a = t->data;

	br_fail(a, "send: %s", strerror(-a->br.send_err));
}

static void on_hold(struct ns_loop *l, struct ns_timer *t)
{
	struct agent *a = t->data;

	br_fail(a, "broker silent for %u s", a->br.hold_s);
}

static void on_beat(struct ns_loop *l, struct ns_timer *t)
{
	struct agent *a = t->data;
	struct ns_msg_buf mb = {};

	ns_mb_init(&mb, NS_MSG_HEARTBEAT);
	if (agent_broker_send(a, &mb) == 0 && a->br.state == BR_UP)
		ns_timer_arm(l, t, hold_ms(&a->br) / 3);
}

/* ---- login ---- */

static void send_login(struct agent *a, const __u8 nonce[NS_NONCE_LEN])
{
	const struct agent_cfg *c = a->cfg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ns_msg_buf mb = {};
	__u8 proof[NS_HMAC_LEN];
	__u32 addr[4];
	__u8 family;
	__be16 port;

	if (ns_login_proof(c->secret, nonce, c->name, proof)) {
		br_fail(a, "cannot compute the login proof");
		return;
	}
	if (getsockname(a->br.conn.fd, (struct sockaddr *)&ss, &sl)) {
		br_fail(a, "getsockname: %s", strerror(errno));
		return;
	}
	ns_sockaddr_split(&ss, &family, addr, &port);
	ns_mb_init(&mb, NS_MSG_LOGIN);
	ns_mb_u8(&mb, NS_A_ROLE, NS_ROLE_AGENT);
	ns_mb_str(&mb, NS_A_NAME, c->name);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_bin(&mb, NS_A_PROOF, proof, sizeof(proof));
	ns_mb_addr(&mb, NS_A_LOCAL_ADDR, family, addr, ntohs(port));
	if (a->tl_w.fd >= 0) {
		sl = sizeof(ss);
		if (!getsockname(a->tl_w.fd, (struct sockaddr *)&ss, &sl)) {
			ns_sockaddr_split(&ss, &family, addr, &port);
			ns_mb_u16(&mb, NS_A_LISTEN_PORT, ntohs(port));
		}
	}
	agent_broker_send(a, &mb);
}

static void on_challenge(struct agent *a, const struct ns_msg *m)
{
	__u8 nonce[NS_NONCE_LEN], vmin = NS_PROTO_VERSION, vmax = NS_PROTO_VERSION;

	if (ns_msg_bin(m, NS_A_NONCE, nonce, sizeof(nonce))) {
		br_fail(a, "CHALLENGE without a valid NONCE");
		return;
	}
	ns_msg_u8(m, NS_A_VERSION_MIN, &vmin);
	ns_msg_u8(m, NS_A_VERSION_MAX, &vmax);
	if (vmin > NS_PROTO_VERSION || vmax < NS_PROTO_VERSION) {
		log_err("broker speaks protocol versions %u..%u, this agent %u", vmin, vmax,
			NS_PROTO_VERSION);
		br_fail(a, "no common protocol version");
		return;
	}
	send_login(a, nonce);
}

static void send_publish(struct agent *a)
{
	const struct agent_cfg *c = a->cfg;
	struct agent_broker *b = &a->br;
	size_t i;

	b->pub_pending = b->pub_ok = 0;
	for (i = 0; i < c->npub && b->state == BR_UP; i++) {
		struct ns_msg_buf mb = {};

		b->pub_req[i] = agent_req_id(a);
		ns_mb_init(&mb, NS_MSG_PUBLISH);
		ns_mb_u32(&mb, NS_A_REQ_ID, b->pub_req[i]);
		ns_mb_str(&mb, NS_A_SERVICE, c->pub[i].name);
		ns_mb_u8(&mb, NS_A_PROTO, c->pub[i].proto);
		if (c->pub[i].compress)
			ns_mb_u8(&mb, NS_A_COMPRESS, 1);
		b->pub_pending++;
		agent_broker_send(a, &mb);
	}
}

static void log_ready(struct agent *a)
{
	log_info("ready: logged in as %s, %zu published, %zu subscribed", a->cfg->name,
		 a->br.pub_ok, a->cfg->nsub);
	agent_pool_broker_up(a);
}

static void on_login_ok(struct agent *a, const struct ns_msg *m)
{
	struct agent_broker *b = &a->br;
	char obs[AGENT_SA_STRLEN] = "?";
	__u32 hold = NS_HOLD_TIME_S, addr[4];
	__u8 version = NS_PROTO_VERSION, family;
	__u16 port;

	ns_msg_u8(m, NS_A_VERSION, &version);
	if (version != NS_PROTO_VERSION) {
		br_fail(a, "broker chose protocol version %u, this agent speaks %u", version,
			NS_PROTO_VERSION);
		return;
	}
	ns_msg_u32(m, NS_A_HOLD_TIME, &hold);
	b->hold_s = hold < HOLD_MIN_S ? HOLD_MIN_S : hold;
	if (!ns_msg_addr(m, NS_A_OBSERVED_ADDR, &family, addr, &port)) {
		struct sockaddr_storage ss;

		ns_sockaddr_make(family, addr, htons(port), &ss);
		agent_sa_str(&ss, obs, sizeof(obs));
	}
	b->state = BR_UP;
	b->attempt = 0;
	ns_timer_cancel(a->loop, &b->retry_t);
	set_user_timeout(b->conn.fd, hold_ms(b));
	ns_timer_arm(a->loop, &b->hold_t, hold_ms(b));
	ns_timer_arm(a->loop, &b->beat_t, hold_ms(b) / 3);
	log_info("broker: logged in as %s (seen as %s, hold time %u s)", a->cfg->name, obs,
		 b->hold_s);
	send_publish(a);
	if (b->state == BR_UP && !b->pub_pending)
		log_ready(a);
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
	if (!b->pub_pending)
		log_ready(a);
	return true;
}

static void on_error(struct agent *a, const struct ns_msg *m)
{
	char text[1001] = "";
	__u32 code = 0;

	ns_msg_u32(m, NS_A_CODE, &code);
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	if (a->br.state == BR_LOGIN && code == NS_ERR_AUTH) {
		log_err("broker refused login: wrong name or secret (name %s%s%s)", a->cfg->name,
			*text ? ": " : "", text);
		br_fatal(a);
		return;
	}
	if (code == NS_ERR_DUPLICATE) {
		log_err("broker: another agent logged in as %s and replaced this one; "
			"stopping (two agents must not share a name)", a->cfg->name);
		br_fatal(a);
		return;
	}
	if (a->br.state == BR_UP && publish_reply(a, m, false))
		return;
	if (a->br.state == BR_UP && (m->attr[NS_A_REQ_ID] || m->attr[NS_A_SESSION])) {
		agent_tunnel_on_error(a, m);
		return;
	}
	/* Not about a request of ours: the broker is closing this connection. */
	br_fail(a, "broker error: %s (%s)%s%s", agent_err_text(code), ns_err_name(code),
		*text ? ": " : "", text);
}

/* One message; the connection may be gone afterwards. */
static void dispatch(struct agent *a, const struct ns_msg *m)
{
	struct agent_broker *b = &a->br;

	log_trace("broker -> %s", ns_msg_type_name(m->type));
	if (b->state == BR_UP)
		ns_timer_arm(a->loop, &b->hold_t, hold_ms(b));
	if (m->type == NS_MSG_ERROR) {
		on_error(a, m);
		return;
	}
	if (b->state == BR_LOGIN) {
		if (m->type == NS_MSG_CHALLENGE)
			on_challenge(a, m);
		else if (m->type == NS_MSG_LOGIN_OK)
			on_login_ok(a, m);
		else
			br_fail(a, "unexpected %s before LOGIN_OK", ns_msg_type_name(m->type));
		return;
	}
	switch (m->type) {
	case NS_MSG_HEARTBEAT:
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
	default:
		/* A newer broker's message: not fatal, just not ours. */
		log_debug("broker: ignoring %s", ns_msg_type_name(m->type));
		break;
	}
}

static void send_error(struct agent *a, __u32 code, const char *text)
{
	struct ns_msg_buf mb = {};

	ns_mb_init(&mb, NS_MSG_ERROR);
	ns_mb_u32(&mb, NS_A_CODE, code);
	ns_mb_str(&mb, NS_A_TEXT, text);
	agent_broker_send(a, &mb);
	if (a->br.state != BR_IDLE)
		ns_conn_flush(&a->br.conn);
}

static void on_readable(struct agent *a)
{
	struct agent_broker *b = &a->br;
	struct ns_msg m;
	int rd, n;

	rd = ns_conn_read(&b->conn);
	/* Messages already read come first: an ERROR may be followed by the close. */
	while (b->state == BR_LOGIN || b->state == BR_UP) {
		n = ns_conn_next(&b->conn, &m);
		if (n == 0)
			break;
		if (n < 0) {
			send_error(a, n == -EOPNOTSUPP || n == -EPROTONOSUPPORT ?
				      NS_ERR_UNSUPPORTED : NS_ERR_MALFORMED,
				   "malformed message");
			if (b->state != BR_IDLE)
				br_fail(a, "malformed message from the broker (%s)", strerror(-n));
			return;
		}
		dispatch(a, &m);
	}
	if (rd < 0 && (b->state == BR_LOGIN || b->state == BR_UP))
		br_fail(a, "%s", rd == -ECONNRESET ? "closed by the broker" : strerror(-rd));
}

static void on_connected(struct agent *a)
{
	struct agent_broker *b = &a->br;
	int soerr = 0, fd = b->fd, err;
	socklen_t sl = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
		char addr[AGENT_SA_STRLEN];

		br_fail(a, "connect to %s: %s", agent_sa_str(&a->cfg->broker, addr, sizeof(addr)),
			strerror(soerr ? soerr : errno));
		return;
	}
	b->fd = -1;
	err = ns_conn_init(&b->conn, fd);	/* owns fd from here; closes it on error */
	if (err) {
		ns_loop_del(a->loop, &b->w);
		b->state = BR_IDLE;
		br_fail(a, "%s", strerror(-err));
		return;
	}
	b->state = BR_LOGIN;
	br_watch(a, EPOLLIN);
	log_debug("broker: connected, waiting for the challenge");
}

static void on_broker(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent *a = w->data;
	struct agent_broker *b = &a->br;
	int err;

	if (b->state == BR_CONNECTING) {
		on_connected(a);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(a);
	if ((b->state == BR_LOGIN || b->state == BR_UP) && (events & EPOLLOUT)) {
		err = ns_conn_flush(&b->conn);
		if (err < 0)
			br_fail(a, "send: %s", strerror(-err));
		else
			br_watch(a, EPOLLIN | (err ? EPOLLOUT : 0));
	}
}

static void br_connect(struct agent *a)
{
	const struct agent_cfg *c = a->cfg;
	struct agent_broker *b = &a->br;
	char addr[AGENT_SA_STRLEN];
	int fd, err;

	agent_sa_str(&c->broker, addr, sizeof(addr));
	b->hold_s = NS_HOLD_TIME_S;
	fd = socket(c->broker.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		br_fail(a, "socket: %s", strerror(errno));
		return;
	}
	set_user_timeout(fd, hold_ms(b));
	agent_sock_tune(fd);
	if (connect(fd, (const struct sockaddr *)&c->broker, c->broker_len) &&
	    errno != EINPROGRESS) {
		err = errno;
		close(fd);
		br_fail(a, "connect to %s: %s", addr, strerror(err));
		return;
	}
	b->fd = fd;
	b->w.fd = fd;
	b->wevents = EPOLLOUT;
	err = ns_loop_add(a->loop, &b->w, EPOLLOUT);
	if (err) {
		close(fd);
		b->fd = -1;
		br_fail(a, "epoll: %s", strerror(-err));
		return;
	}
	b->state = BR_CONNECTING;
	/* The whole login must be done by then; LOGIN_OK cancels it. */
	ns_timer_arm(a->loop, &b->retry_t, LOGIN_TIMEOUT_S * 1000);
	log_debug("broker: connecting to %s", addr);
}

static void on_retry(struct ns_loop *l, struct ns_timer *t)
{
	struct agent *a = t->data;

	if (a->br.state == BR_IDLE) {
		br_connect(a);
		return;
	}
	br_fail(a, "no login within %u s", LOGIN_TIMEOUT_S);
}

void agent_broker_start(struct agent *a)
{
	struct agent_broker *b = &a->br;

	b->state = BR_IDLE;
	b->fd = -1;
	b->w.fn = on_broker;
	b->w.data = a;
	b->w.fd = -1;
	b->pub_req = calloc(a->cfg->npub ? a->cfg->npub : 1, sizeof(*b->pub_req));
	ns_timer_init(&b->retry_t, on_retry, a);
	ns_timer_init(&b->hold_t, on_hold, a);
	ns_timer_init(&b->beat_t, on_beat, a);
	ns_timer_init(&b->fail_t, on_send_fail, a);
	if (!b->pub_req) {
		log_err("out of memory");
		a->exit_code = 1;
		a->stop = true;
		return;
	}
	br_connect(a);
}

void agent_broker_stop(struct agent *a)
{
	if (a->br.pub_req)
		br_close(a);
	free(a->br.pub_req);
	a->br.pub_req = NULL;
}
