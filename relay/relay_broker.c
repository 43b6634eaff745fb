// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The relay's connection to the broker (`relay run --broker`): log in as a
 * relay, serve SPLICE_REQUEST with the same code as `natsplice splice add`,
 * tell the broker A's source port of a pure splice (SPLICE_PEER) and the end
 * of every splice with its counters (SPLICE_DONE). Reconnects with jittered
 * backoff; splices live on in the kernel while the broker is away.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "relay.h"
#include "auth.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#define NS_MS 1000000ULL
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 5000

enum broker_state { B_IDLE, B_CONNECTING, B_CHALLENGE, B_LOGIN, B_READY };

struct relay_broker {
	struct relay_watch w;
	struct ns_conn conn;
	enum broker_state state;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	__u64 backoff_ms;
	__u64 next_try_ns;
	__u64 last_rx_ns, last_tx_ns;
	__u32 hold_s;
};

static void on_broker(struct relay *r, struct relay_watch *w, __u32 events);

static void broker_reset(struct relay *r, const char *why)
{
	struct relay_broker *b = r->broker;
	__u64 jitter;

	if (b->state != B_IDLE) {
		relay_watch_del(r, &b->w);
		ns_conn_free(&b->conn);
		memset(&b->conn, 0, sizeof(b->conn));
		b->conn.fd = -1;
		b->w.fd = -1;
		if (why)
			log_warn("broker %s: %s; reconnecting", r->cfg.broker, why);
	}
	b->state = B_IDLE;
	/* 0.5 s doubling to 5 s, +-25 % (include/ns_proto.h) */
	jitter = b->backoff_ms / 4;
	b->next_try_ns = ns_now_ns() + (b->backoff_ms - jitter + random() % (2 * jitter + 1)) * NS_MS;
	b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->backoff_ms * 2;
}

static int send_msg(struct relay *r, struct ns_msg_buf *mb)
{
	struct relay_broker *b = r->broker;
	int err = ns_mb_finish(mb);

	if (!err)
		err = ns_conn_send(&b->conn, mb);
	ns_mb_free(mb);
	if (!err) {
		b->last_tx_ns = ns_now_ns();
		relay_watch_mod(r, &b->w, EPOLLIN | (ns_conn_want_write(&b->conn) ? EPOLLOUT : 0));
	}
	return err;
}

static void broker_connect(struct relay *r)
{
	struct relay_broker *b = r->broker;
	int fd, one = 1;
	unsigned int tmo = NS_HOLD_TIME_S * 1000;

	fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		broker_reset(r, strerror(errno));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &tmo, sizeof(tmo));
	if (connect(fd, (struct sockaddr *)&b->addr, b->addrlen) && errno != EINPROGRESS) {
		close(fd);
		broker_reset(r, strerror(errno));
		return;
	}
	ns_conn_init(&b->conn, fd);
	b->w.fd = fd;
	b->w.fn = on_broker;
	b->state = B_CONNECTING;
	b->last_rx_ns = ns_now_ns();
	relay_watch_add(r, &b->w, EPOLLIN | EPOLLOUT);
}

static void send_login(struct relay *r, const struct ns_msg *m)
{
	struct relay_broker *b = r->broker;
	struct sockaddr_storage local;
	socklen_t sl = sizeof(local);
	__u8 nonce[NS_NONCE_LEN], proof[NS_HMAC_LEN], family;
	__u32 addr[4];
	__be16 port = 0;
	struct ns_msg_buf mb;

	if (ns_msg_bin(m, NS_A_NONCE, nonce, sizeof(nonce)) ||
	    ns_login_proof(r->cfg.secret, nonce, r->cfg.name, proof)) {
		broker_reset(r, "bad CHALLENGE");
		return;
	}
	ns_mb_init(&mb, NS_MSG_LOGIN);
	ns_mb_u8(&mb, NS_A_ROLE, NS_ROLE_RELAY);
	ns_mb_str(&mb, NS_A_NAME, r->cfg.name);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_bin(&mb, NS_A_PROOF, proof, sizeof(proof));
	if (!getsockname(b->w.fd, (struct sockaddr *)&local, &sl)) {
		ns_sockaddr_split(&local, &family, addr, &port);
		ns_mb_addr(&mb, NS_A_LOCAL_ADDR, family, addr, ntohs(port));
	}
	if (r->cfg.has4)
		ns_mb_addr(&mb, NS_A_RELAY_ADDR, NS_AF_INET, r->cfg.addr4, 0);
	else
		ns_mb_addr(&mb, NS_A_RELAY_ADDR, NS_AF_INET6, r->cfg.addr6, 0);
	if (send_msg(r, &mb))
		broker_reset(r, "send LOGIN failed");
	else
		b->state = B_LOGIN;
}

static void send_error(struct relay *r, __u64 session, int code, const char *text)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_ERROR);
	if (session)
		ns_mb_u64(&mb, NS_A_SESSION, session);
	ns_mb_u32(&mb, NS_A_CODE, code);
	ns_mb_str(&mb, NS_A_TEXT, text);
	send_msg(r, &mb);
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
	ns_mb_addr(&mb, NS_A_RELAY_ADDR, sp->s.family, sp->s.relay, 0);
	ns_mb_u16(&mb, NS_A_PORT_A, ntohs(sp->s.port[0]));
	ns_mb_u16(&mb, NS_A_PORT_B, ntohs(sp->s.port[1]));
	send_msg(r, &mb);
	log_info("splice %u: for broker session %016llx", sp->s.id, (unsigned long long)session);
}

static void on_message(struct relay *r, const struct ns_msg *m)
{
	struct relay_broker *b = r->broker;
	char text[256] = "";
	__u32 code = 0;

	b->last_rx_ns = ns_now_ns();
	switch (m->type) {
	case NS_MSG_CHALLENGE:
		if (b->state == B_CHALLENGE)
			send_login(r, m);
		return;
	case NS_MSG_LOGIN_OK:
		if (b->state != B_LOGIN)
			return;
		b->hold_s = NS_HOLD_TIME_S;
		ns_msg_u32(m, NS_A_HOLD_TIME, &b->hold_s);
		if (b->hold_s < 3)
			b->hold_s = 3;
		b->state = B_READY;
		b->backoff_ms = BACKOFF_MIN_MS;
		log_info("registered with broker %s as %s", r->cfg.broker, r->cfg.name);
		return;
	case NS_MSG_ERROR:
		ns_msg_u32(m, NS_A_CODE, &code);
		ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
		if (b->state == B_LOGIN) {
			log_err("broker refused the relay login: %s (%s)", text, ns_err_name(code));
			broker_reset(r, NULL);
		} else {
			log_warn("broker error: %s (%s)", text, ns_err_name(code));
		}
		return;
	case NS_MSG_HEARTBEAT:
		return;
	case NS_MSG_SPLICE_REQUEST:
		if (b->state == B_READY)
			on_splice_request(r, m);
		return;
	default:
		log_debug("broker sent %s, ignored", ns_msg_type_name(m->type));
	}
}

static void on_broker(struct relay *r, struct relay_watch *w, __u32 events)
{
	struct relay_broker *b = r->broker;
	struct ns_msg m;
	int err, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (b->state == B_CONNECTING) {
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
			broker_reset(r, strerror(soerr ? soerr : errno));
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN)))
			return;
		b->state = B_CHALLENGE;
	}
	if (events & EPOLLOUT) {
		err = ns_conn_flush(&b->conn);
		if (err < 0) {
			broker_reset(r, strerror(-err));
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		int rerr = ns_conn_read(&b->conn);

		/* Messages that arrived before a close are still handled. */
		while (b->state != B_IDLE && (err = ns_conn_next(&b->conn, &m)) > 0)
			on_message(r, &m);
		if (b->state == B_IDLE)
			return;
		if (err < 0) {
			broker_reset(r, "malformed message");
			return;
		}
		if (rerr < 0) {
			broker_reset(r, rerr == -ECONNRESET || rerr == -EPIPE ? "connection closed" :
					strerror(-rerr));
			return;
		}
	}
	if (b->state != B_IDLE)
		relay_watch_mod(r, &b->w, EPOLLIN | (ns_conn_want_write(&b->conn) ? EPOLLOUT : 0));
}

void relay_broker_tick(struct relay *r)
{
	struct relay_broker *b = r->broker;
	struct ns_msg_buf mb;
	__u64 now = ns_now_ns();

	if (!b)
		return;
	if (b->state == B_IDLE) {
		if (now >= b->next_try_ns)
			broker_connect(r);
		return;
	}
	if (now - b->last_rx_ns > (__u64)(b->hold_s ? b->hold_s : NS_HOLD_TIME_S) * 1000 * NS_MS) {
		broker_reset(r, "silent for the hold time");
		return;
	}
	if (b->state == B_READY && now - b->last_tx_ns > (__u64)b->hold_s * 1000 * NS_MS / 3) {
		ns_mb_init(&mb, NS_MSG_HEARTBEAT);
		if (send_msg(r, &mb))
			broker_reset(r, "send failed");
	}
}

void relay_broker_splice_peer(struct relay *r, const struct relay_splice *sp)
{
	struct ns_msg_buf mb;

	if (!r->broker || r->broker->state != B_READY || !sp->s.session)
		return;
	ns_mb_init(&mb, NS_MSG_SPLICE_PEER);
	ns_mb_u64(&mb, NS_A_SESSION, sp->s.session);
	ns_mb_u16(&mb, NS_A_PORT_B, ntohs(sp->s.port[1]));
	send_msg(r, &mb);
}

void relay_broker_splice_done(struct relay *r, const struct relay_splice *sp,
			      const struct ctl_splice *info, const char *why)
{
	struct ns_msg_buf mb;

	if (!r->broker || r->broker->state != B_READY || !sp->s.session)
		return;
	ns_mb_init(&mb, NS_MSG_SPLICE_DONE);
	ns_mb_u64(&mb, NS_A_SESSION, sp->s.session);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, sp->s.id);
	ns_mb_u64(&mb, NS_A_BYTES_AB, info->bytes[0]);
	ns_mb_u64(&mb, NS_A_BYTES_BA, info->bytes[1]);
	ns_mb_u64(&mb, NS_A_PACKETS, info->packets[0] + info->packets[1]);
	ns_mb_str(&mb, NS_A_TEXT, why);
	send_msg(r, &mb);
}

int relay_broker_open(struct relay *r)
{
	struct relay_broker *b;

	if (!r->cfg.broker[0])
		return 0;
	if (!r->cfg.name[0] || !r->cfg.secret[0]) {
		log_err("--broker needs --name and --secret");
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (ns_parse_sockaddr(r->cfg.broker, 0, &b->addr, &b->addrlen)) {
		log_err("bad broker address '%s' (IP:PORT)", r->cfg.broker);
		free(b);
		return -EINVAL;
	}
	b->conn.fd = b->w.fd = -1;
	b->backoff_ms = BACKOFF_MIN_MS;
	r->broker = b;
	srandom(ns_now_ns());
	broker_connect(r);
	return 0;
}

void relay_broker_close(struct relay *r)
{
	if (!r->broker)
		return;
	if (r->broker->state != B_IDLE) {
		relay_watch_del(r, &r->broker->w);
		ns_conn_free(&r->broker->conn);
	}
	free(r->broker);
	r->broker = NULL;
}
