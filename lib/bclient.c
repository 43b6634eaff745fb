// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The broker client (bclient.h). States:
 *
 *   IDLE --timer--> CONNECTING --writable--> [TLS] --> LOGIN --LOGIN_OK--> UP
 *     ^                                                                  |
 *     +----------------- lose(): log, close, down, backoff --------------+
 *
 * TLS: the handshake, then the broker's certificate checked against the pin
 * (a CA and name are checked inside the handshake), then LOGIN with the
 * exporter in the proof. A plain-text (insecure) client says HEARTBEAT
 * first, see ns_bclient_cfg. The same TLS failure again (a wrong pin at
 * every retry) is logged once at warning level, then at debug level.
 *
 * plus STOPPED, where only ns_bclient_start() leads out. One timer does two
 * jobs: while IDLE it is the next attempt, from CONNECTING to LOGIN_OK it is
 * the login deadline (a broker that accepts and then says nothing must not
 * hold us forever). Once UP, the hold timer is re-armed by every message and
 * our HEARTBEAT goes out every hold time / 3, as the protocol asks.
 */
#include <errno.h>
#include <limits.h>
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

#include "bclient.h"
#include "auth.h"
#include "conn.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#define BC_ADDRSTRLEN	(NS_ADDRSTRLEN + 8)	/* "[v6]:port" */
#define BC_WHY_LEN	512

enum bc_state { BC_STOPPED, BC_IDLE, BC_CONNECTING, BC_TLS, BC_LOGIN, BC_UP };

struct ns_bclient {
	struct ns_loop *loop;
	const struct ns_bclient_ops *ops;
	void *arg;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char addr_str[BC_ADDRSTRLEN];
	__u8 role;
	char name[NS_BCLIENT_STR_MAX + 1];
	char secret[NS_BCLIENT_STR_MAX + 1];
	struct ns_tls_client *tls;	/* NULL: plain text */
	__u8 ekm[NS_TLS_EXPORTER_LEN];	/* this connection's exporter (TLS) */
	char last_tls_err[BC_WHY_LEN];	/* the last TLS failure logged as a warning */

	enum bc_state state;
	struct ns_conn conn;		/* owns the socket from CONNECTING on */
	struct ns_watch w;
	__u32 wevents;			/* what w is registered for */
	bool login_sent;
	struct ns_timer retry_t;	/* IDLE: next attempt; else: login deadline */
	struct ns_timer hold_t;		/* UP: the broker silent for hold_s */
	struct ns_timer beat_t;		/* UP: our HEARTBEAT every hold_s / 3 */
	struct ns_timer fail_t;		/* a send failed: lose the connection from the loop */
	int send_err;
	unsigned int attempt;		/* failed attempts since the last login */
	__u32 hold_s;
};

static void lose(struct ns_bclient *b, enum ns_bclient_why why, __u32 code, const char *text,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

__u32 ns_bclient_backoff_ms(unsigned int attempt, __u32 rnd)
{
	return ns_backoff_ms(attempt, rnd, NS_BCLIENT_BACKOFF_MIN_MS, NS_BCLIENT_BACKOFF_MAX_MS);
}

static bool connected(const struct ns_bclient *b)
{
	return b->state == BC_LOGIN || b->state == BC_UP;
}

static void watch(struct ns_bclient *b, __u32 events)
{
	if (events != b->wevents && !ns_loop_mod(b->loop, &b->w, events))
		b->wevents = events;
}

static void set_user_timeout(int fd, __u32 s)
{
	unsigned int ms = s > UINT_MAX / 1000 ? UINT_MAX : s * 1000;

	/* Data unacknowledged for the hold time: the connection is dead, even
	 * while our heartbeats still fill the send buffer. */
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
}

/* Close the connection, whatever its state; STOPPED stays STOPPED. */
static void bc_close(struct ns_bclient *b)
{
	if (b->w.fd >= 0)	/* registered with the loop */
		ns_loop_del(b->loop, &b->w);
	ns_conn_free(&b->conn);
	b->w.fd = -1;
	b->wevents = 0;
	b->login_sent = false;
	b->send_err = 0;
	ns_timer_cancel(b->loop, &b->retry_t);
	ns_timer_cancel(b->loop, &b->hold_t);
	ns_timer_cancel(b->loop, &b->beat_t);
	ns_timer_cancel(b->loop, &b->fail_t);
	if (b->state != BC_STOPPED)
		b->state = BC_IDLE;
}

static void schedule(struct ns_bclient *b)
{
	__u32 rnd = 0, ms;

	ns_random_bytes(&rnd, sizeof(rnd));
	ms = ns_bclient_backoff_ms(b->attempt, rnd);
	if (b->attempt < 16)
		b->attempt++;
	log_info("broker: reconnecting in %u.%01u s", ms / 1000, ms % 1000 / 100);
	ns_timer_arm(b->loop, &b->retry_t, ms);
}

/* The connection failed or ended: log why, close, tell the owner, retry later. */
static void lose(struct ns_bclient *b, enum ns_bclient_why why, __u32 code, const char *text,
		 const char *fmt, ...)
{
	struct ns_bclient_loss loss = {
		.why = why, .was_up = b->state == BC_UP, .code = code, .text = text ? text : "",
	};
	char msg[BC_WHY_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	loss.msg = msg;
	if (why == NS_BCLIENT_REFUSED) {
		log_err("broker %s refused the login as %s: %s", b->addr_str, b->name, msg);
	} else if (why == NS_BCLIENT_TLS && !strcmp(msg, b->last_tls_err)) {
		log_debug("broker: %s (again)", msg);
	} else if (why == NS_BCLIENT_TLS) {
		log_warn("broker: %s", msg);
		snprintf(b->last_tls_err, sizeof(b->last_tls_err), "%s", msg);
	} else if (loss.was_up)
		log_warn("broker connection lost: %s", msg);
	else
		log_warn("broker: %s", msg);
	bc_close(b);
	if (b->ops->down)
		b->ops->down(b->arg, &loss);
	if (b->state == BC_IDLE)
		schedule(b);
}

/* Queue a message on the connection (LOGIN or UP); see ns_bclient_send(). */
static int bc_send(struct ns_bclient *b, struct ns_msg_buf *mb)
{
	int err = ns_mb_finish(mb);

	if (err) {
		ns_mb_free(mb);
		return err;
	}
	err = !connected(b) || b->send_err ? -ENOTCONN : ns_conn_send(&b->conn, mb);
	ns_mb_free(mb);
	if (err == -ENOTCONN)
		return err;
	if (err) {
		b->send_err = err;
		ns_timer_arm(b->loop, &b->fail_t, 0);
		return err;
	}
	watch(b, EPOLLIN | (ns_conn_want_write(&b->conn) ? EPOLLOUT : 0));
	return 0;
}

int ns_bclient_send(struct ns_bclient *b, struct ns_msg_buf *mb)
{
	if (b->state != BC_UP) {
		ns_mb_free(mb);
		return -ENOTCONN;
	}
	return bc_send(b, mb);
}

/* ---- timers ---- */

static void bc_connect(struct ns_bclient *b);

static void on_retry(struct ns_loop *l, struct ns_timer *t)
{
	struct ns_bclient *b = t->data;

	if (b->state == BC_IDLE)
		bc_connect(b);
	else
		lose(b, NS_BCLIENT_LOGIN_TIMEOUT, 0, NULL, "no login within %u s",
		     NS_BCLIENT_LOGIN_TIMEOUT_S);
}

static void on_hold(struct ns_loop *l, struct ns_timer *t)
{
	struct ns_bclient *b = t->data;

	lose(b, NS_BCLIENT_HOLD, 0, NULL, "broker silent for %u s", b->hold_s);
}

static void on_beat(struct ns_loop *l, struct ns_timer *t)
{
	struct ns_bclient *b = t->data;
	struct ns_msg_buf mb = {};

	ns_mb_init(&mb, NS_MSG_HEARTBEAT);
	if (!bc_send(b, &mb))
		ns_timer_arm(l, t, (__u64)b->hold_s * 1000 / 3);
}

static void on_send_fail(struct ns_loop *l, struct ns_timer *t)
{
	struct ns_bclient *b = t->data;

	lose(b, NS_BCLIENT_CLOSED, 0, NULL, "send: %s", strerror(-b->send_err));
}

/* ---- login ---- */

static void send_login(struct ns_bclient *b, const __u8 nonce[NS_NONCE_LEN])
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ns_msg_buf mb = {};
	__u8 proof[NS_HMAC_LEN], family;
	__u32 addr[4];
	__be16 port;

	if (ns_login_proof(b->secret, nonce, b->name, b->tls ? b->ekm : NULL,
			   b->tls ? sizeof(b->ekm) : 0, proof)) {
		lose(b, NS_BCLIENT_PROTOCOL, 0, NULL, "cannot compute the login proof");
		return;
	}
	if (getsockname(b->conn.fd, (struct sockaddr *)&ss, &sl)) {
		lose(b, NS_BCLIENT_CLOSED, 0, NULL, "getsockname: %s", strerror(errno));
		return;
	}
	ns_sockaddr_split(&ss, &family, addr, &port);
	ns_mb_init(&mb, NS_MSG_LOGIN);
	ns_mb_u8(&mb, NS_A_ROLE, b->role);
	ns_mb_str(&mb, NS_A_NAME, b->name);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_bin(&mb, NS_A_PROOF, proof, sizeof(proof));
	/* The broker compares it with what it sees: a NAT that keeps the port. */
	ns_mb_addr(&mb, NS_A_LOCAL_ADDR, family, addr, ntohs(port));
	if (b->ops->login)
		b->ops->login(b->arg, &mb);
	b->login_sent = true;
	bc_send(b, &mb);
}

static void on_challenge(struct ns_bclient *b, const struct ns_msg *m)
{
	__u8 nonce[NS_NONCE_LEN], vmin = NS_PROTO_VERSION, vmax = NS_PROTO_VERSION;

	if (ns_msg_bin(m, NS_A_NONCE, nonce, sizeof(nonce))) {
		lose(b, NS_BCLIENT_PROTOCOL, 0, NULL, "CHALLENGE without a valid NONCE");
		return;
	}
	ns_msg_u8(m, NS_A_VERSION_MIN, &vmin);
	ns_msg_u8(m, NS_A_VERSION_MAX, &vmax);
	if (vmin > NS_PROTO_VERSION || vmax < NS_PROTO_VERSION) {
		lose(b, NS_BCLIENT_PROTOCOL, 0, NULL,
		     "no common protocol version: the broker speaks %u..%u, we speak %u", vmin,
		     vmax, NS_PROTO_VERSION);
		return;
	}
	send_login(b, nonce);
}

static void on_login_ok(struct ns_bclient *b, const struct ns_msg *m)
{
	struct ns_bclient_login li = { .msg = m };
	char seen[BC_ADDRSTRLEN] = "?";
	__u32 hold = NS_HOLD_TIME_S, addr[4];
	__u8 version = NS_PROTO_VERSION, family;
	__u16 port;

	ns_msg_u8(m, NS_A_VERSION, &version);
	if (version != NS_PROTO_VERSION) {
		lose(b, NS_BCLIENT_PROTOCOL, 0, NULL,
		     "broker chose protocol version %u, we speak %u", version, NS_PROTO_VERSION);
		return;
	}
	ns_msg_u32(m, NS_A_HOLD_TIME, &hold);
	b->hold_s = li.hold_s = hold < NS_BCLIENT_HOLD_MIN_S ? NS_BCLIENT_HOLD_MIN_S : hold;
	if (!ns_msg_addr(m, NS_A_OBSERVED_ADDR, &family, addr, &port)) {
		ns_sockaddr_make(family, addr, htons(port), &li.observed);
		li.has_observed = true;
		ns_sockaddr_str(&li.observed, seen, sizeof(seen));
	}
	b->state = BC_UP;
	b->attempt = 0;
	b->last_tls_err[0] = '\0';
	ns_timer_cancel(b->loop, &b->retry_t);
	set_user_timeout(b->conn.fd, b->hold_s);
	ns_timer_arm(b->loop, &b->hold_t, (__u64)b->hold_s * 1000);
	ns_timer_arm(b->loop, &b->beat_t, (__u64)b->hold_s * 1000 / 3);
	log_info("broker: logged in to %s as %s (seen as %s, hold time %u s, %s)", b->addr_str,
		 b->name, seen, b->hold_s, b->tls ? "TLS 1.3" : "plain text: insecure");
	if (b->ops->up)
		b->ops->up(b->arg, &li);
}

/* ERROR instead of LOGIN_OK: the broker closes after it. */
static void on_refused(struct ns_bclient *b, const struct ns_msg *m)
{
	char text[1001] = "";
	__u32 code = 0;

	ns_msg_u32(m, NS_A_CODE, &code);
	ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
	lose(b, NS_BCLIENT_REFUSED, code, text, "%s (%s)", *text ? text : "no reason given",
	     ns_err_name(code));
}

/* One message; the connection may be gone afterwards. */
static void dispatch(struct ns_bclient *b, const struct ns_msg *m)
{
	log_trace("broker -> %s", ns_msg_type_name(m->type));
	if (b->state == BC_UP) {
		ns_timer_arm(b->loop, &b->hold_t, (__u64)b->hold_s * 1000);
		if (m->type != NS_MSG_HEARTBEAT && b->ops->message)
			b->ops->message(b->arg, m);
		return;
	}
	if (m->type == NS_MSG_CHALLENGE && !b->login_sent)
		on_challenge(b, m);
	else if (m->type == NS_MSG_LOGIN_OK && b->login_sent)
		on_login_ok(b, m);
	else if (m->type == NS_MSG_ERROR)
		on_refused(b, m);
	else
		lose(b, NS_BCLIENT_PROTOCOL, 0, NULL, "unexpected %s before LOGIN_OK",
		     ns_msg_type_name(m->type));
}

/* ---- the socket ---- */

/* Tell the broker what was wrong before closing: it logs it on its side. */
static void send_malformed(struct ns_bclient *b, int err)
{
	struct ns_msg_buf mb = {};

	ns_mb_init(&mb, NS_MSG_ERROR);
	ns_mb_u32(&mb, NS_A_CODE, err == -EOPNOTSUPP || err == -EPROTONOSUPPORT ?
			  NS_ERR_UNSUPPORTED : NS_ERR_MALFORMED);
	ns_mb_str(&mb, NS_A_TEXT, "malformed message");
	if (!bc_send(b, &mb))
		ns_conn_flush(&b->conn);
}

static void on_readable(struct ns_bclient *b)
{
	struct ns_msg m;
	int rd, n;

again:
	rd = ns_conn_read(&b->conn);
	/* Messages already read come first: an ERROR may come with the close. */
	while (connected(b)) {
		n = ns_conn_next(&b->conn, &m);
		if (n == 0)
			break;
		if (n < 0) {
			send_malformed(b, n);
			lose(b, NS_BCLIENT_PROTOCOL, 0, NULL,
			     "malformed message from the broker (%s)", strerror(-n));
			return;
		}
		dispatch(b, &m);
	}
	if (rd < 0 && connected(b)) {
		lose(b, NS_BCLIENT_CLOSED, 0, NULL, "%s",
		     rd == -ECONNRESET || rd == -EPIPE ? "closed by the broker"
						       : ns_conn_strerror(&b->conn, rd));
		return;
	}
	/* TLS: bytes left inside the SSL that no EPOLLIN will announce */
	if (connected(b) && ns_conn_rpending(&b->conn))
		goto again;
	if (connected(b))
		watch(b, EPOLLIN | (ns_conn_want_write(&b->conn) ? EPOLLOUT : 0));
}

/* One step of the TLS handshake; once done, the broker's certificate and
 * the login binding, then LOGIN. */
static void tls_step(struct ns_bclient *b)
{
	char why[BC_WHY_LEN];
	int err;

	err = ns_conn_handshake(&b->conn);
	if (err == 1) {
		watch(b, EPOLLIN | (ns_conn_want_write(&b->conn) ? EPOLLOUT : 0));
		return;
	}
	if (err < 0) {
		lose(b, err == -EPROTO ? NS_BCLIENT_TLS : NS_BCLIENT_CLOSED, 0, NULL,
		     "%s: %s", b->addr_str, err == -EPROTO ? ns_conn_strerror(&b->conn, err) :
		     "closed by the broker during the TLS handshake");
		return;
	}
	if (ns_tls_client_done(b->tls, b->conn.ssl, b->ekm, sizeof(b->ekm), why, sizeof(why))) {
		lose(b, NS_BCLIENT_TLS, 0, NULL, "%s: %s; not logging in", b->addr_str, why);
		return;
	}
	b->state = BC_LOGIN;
	log_debug("broker: TLS 1.3 with %s, waiting for the challenge", b->addr_str);
	on_readable(b);		/* the CHALLENGE may have come with the handshake */
}

static void on_connected(struct ns_bclient *b)
{
	struct ns_msg_buf mb = {};
	int soerr = 0, err;
	socklen_t sl = sizeof(soerr);

	if (getsockopt(b->conn.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
		lose(b, NS_BCLIENT_CONNECT, 0, NULL, "connect to %s: %s", b->addr_str,
		     strerror(soerr ? soerr : errno));
		return;
	}
	if (b->tls) {
		struct ssl_st *ssl;

		err = ns_tls_client_ssl(b->tls, b->conn.fd, &ssl);
		if (!err)
			err = ns_conn_set_tls(&b->conn, ssl);
		if (err) {
			lose(b, NS_BCLIENT_CONNECT, 0, NULL, "TLS: %s", strerror(-err));
			return;
		}
		b->state = BC_TLS;
		log_debug("broker: connected to %s, TLS handshake", b->addr_str);
		tls_step(b);
		return;
	}
	b->state = BC_LOGIN;
	watch(b, EPOLLIN);
	log_debug("broker: connected to %s (plain text: insecure), waiting for the challenge",
		  b->addr_str);
	/* Speak first: the broker tells plain text from a ClientHello by the first byte. */
	ns_mb_init(&mb, NS_MSG_HEARTBEAT);
	bc_send(b, &mb);
}

static void on_event(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct ns_bclient *b = w->data;
	int err;

	if (b->state == BC_CONNECTING) {
		on_connected(b);
		return;
	}
	if (b->state == BC_TLS) {
		tls_step(b);
		return;
	}
	/* (TLS: a read may wait for EPOLLOUT) */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) || (b->conn.ssl && (events & EPOLLOUT)))
		on_readable(b);
	if (connected(b) && (events & EPOLLOUT)) {
		err = ns_conn_flush(&b->conn);
		if (err < 0)
			lose(b, NS_BCLIENT_CLOSED, 0, NULL, "send: %s",
			     ns_conn_strerror(&b->conn, err));
		else
			watch(b, EPOLLIN | (err ? EPOLLOUT : 0));
	}
}

/* Open the socket and start a non-blocking connect: 0 or -errno. */
static int open_socket(struct ns_bclient *b)
{
	int fd, one = 1, err;

	fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	set_user_timeout(fd, NS_HOLD_TIME_S);
	if (connect(fd, (const struct sockaddr *)&b->addr, b->addrlen) && errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	return ns_conn_init(&b->conn, fd);	/* closes fd on error */
}

static void bc_connect(struct ns_bclient *b)
{
	int err;

	b->hold_s = NS_HOLD_TIME_S;
	err = open_socket(b);
	if (err) {
		lose(b, NS_BCLIENT_CONNECT, 0, NULL, "connect to %s: %s", b->addr_str,
		     strerror(-err));
		return;
	}
	b->w.fd = b->conn.fd;
	err = ns_loop_add(b->loop, &b->w, EPOLLOUT);
	if (err) {
		b->w.fd = -1;
		ns_conn_free(&b->conn);
		lose(b, NS_BCLIENT_CONNECT, 0, NULL, "epoll: %s", strerror(-err));
		return;
	}
	b->wevents = EPOLLOUT;
	b->state = BC_CONNECTING;
	/* The whole login must be done by then; LOGIN_OK cancels it. */
	ns_timer_arm(b->loop, &b->retry_t, NS_BCLIENT_LOGIN_TIMEOUT_S * 1000);
	log_debug("broker: connecting to %s", b->addr_str);
}

/* ---- the owner's side ---- */

int ns_bclient_new(struct ns_loop *l, const struct ns_bclient_cfg *cfg,
		   const struct ns_bclient_ops *ops, void *arg, struct ns_bclient **out)
{
	struct ns_bclient *b;

	if (!cfg->name || !cfg->secret || !cfg->name[0] ||
	    strlen(cfg->name) > NS_BCLIENT_STR_MAX || strlen(cfg->secret) > NS_BCLIENT_STR_MAX ||
	    cfg->addrlen > sizeof(b->addr))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (cfg->tls) {
		char err[NS_TLS_ERR_LEN];
		int e = ns_tls_client_new(cfg->tls, &b->tls, err, sizeof(err));

		if (e) {
			log_err("broker: %s", err);
			free(b);
			return e == -ENOMEM ? e : -EINVAL;
		}
	}
	b->loop = l;
	b->ops = ops;
	b->arg = arg;
	memcpy(&b->addr, &cfg->addr, cfg->addrlen);
	b->addrlen = cfg->addrlen;
	ns_sockaddr_str(&b->addr, b->addr_str, sizeof(b->addr_str));
	b->role = cfg->role;
	strcpy(b->name, cfg->name);
	strcpy(b->secret, cfg->secret);
	b->state = BC_STOPPED;
	b->conn.fd = -1;
	b->w.fn = on_event;
	b->w.data = b;
	b->w.fd = -1;
	ns_timer_init(&b->retry_t, on_retry, b);
	ns_timer_init(&b->hold_t, on_hold, b);
	ns_timer_init(&b->beat_t, on_beat, b);
	ns_timer_init(&b->fail_t, on_send_fail, b);
	*out = b;
	return 0;
}

void ns_bclient_start(struct ns_bclient *b)
{
	if (b->state != BC_STOPPED)
		return;
	b->state = BC_IDLE;
	b->attempt = 0;
	bc_connect(b);
}

void ns_bclient_stop(struct ns_bclient *b)
{
	b->state = BC_STOPPED;	/* bc_close() keeps it */
	bc_close(b);
}

void ns_bclient_drop(struct ns_bclient *b, const char *fmt, ...)
{
	char msg[BC_WHY_LEN];
	va_list ap;

	if (!connected(b) && b->state != BC_CONNECTING && b->state != BC_TLS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lose(b, NS_BCLIENT_DROPPED, 0, NULL, "%s", msg);
}

bool ns_bclient_up(const struct ns_bclient *b)
{
	return b && b->state == BC_UP;
}

void ns_bclient_free(struct ns_bclient *b)
{
	if (!b)
		return;
	ns_bclient_stop(b);
	/* The secret is not left behind in freed memory. */
	explicit_bzero(b->secret, sizeof(b->secret));
	ns_tls_client_free(b->tls);
	free(b);
}
