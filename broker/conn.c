// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Control connections: the listening socket, one struct peer per accepted
 * connection, framed reads and queued writes, the login deadline, heartbeats
 * and the hold timer, and closing.
 *
 * Transport: a new connection is sniffed first. Its first byte 0x16 (a TLS
 * handshake record) starts the TLS 1.3 handshake, and CHALLENGE follows
 * once it is done; any other first byte is a plain-text client (which
 * speaks first, see lib/bclient.h): served only with insecure: true, else
 * refused with an ERROR in plain text. The login deadline covers sniffing
 * and the handshake, so a connection that stalls in either is closed.
 *
 * Closing never recurses: a failed send only marks the peer doomed (it is
 * closed from a zero-delay timer), so failing the sessions of one closing
 * peer cannot close another one underneath. A closed peer's memory is freed
 * from its own timer, never inside the call that closed it.
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

#include <openssl/ssl.h>

#include "broker.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#define NS_PER_MS		1000000ULL
#define ACCEPT_BATCH		64	/* connections accepted per wake-up */
#define ACCEPT_PAUSE_MS		100	/* after EMFILE/ENFILE */
#define LISTEN_BACKLOG		4096
#define TLS_RECORD_HANDSHAKE	0x16	/* the first byte of a ClientHello (RFC 8446 5.1) */

static void peer_end(struct peer *p, const char *why, bool linger);

/* sockaddr -> ns_ep; IPv4-mapped IPv6 (a dual-stack listener) becomes IPv4. */
static void ep_from_sockaddr(const struct sockaddr_storage *ss, struct ns_ep *ep)
{
	__be16 port;

	ns_sockaddr_split(ss, &ep->family, ep->addr, &port);
	ep->port = ntohs(port);
	if (ep->family == NS_AF_INET6 && ep->addr[0] == 0 && ep->addr[1] == 0 &&
	    ep->addr[2] == htonl(0xffff)) {
		ep->family = NS_AF_INET;
		ep->addr[0] = ep->addr[3];
		ep->addr[2] = ep->addr[3] = 0;
	}
}

const char *ep_str(const struct ns_ep *ep, char *buf, size_t len)
{
	char a[NS_ADDRSTRLEN];

	ns_addr_str(ep->family, ep->addr, a, sizeof(a));
	snprintf(buf, len, ep->family == NS_AF_INET6 ? "[%s]:%u" : "%s:%u", a, ep->port);
	return buf;
}

/* Register for EPOLLOUT only while something is queued. */
static void peer_events(struct peer *p)
{
	__u32 ev = EPOLLIN | (ns_conn_want_write(&p->conn) ? EPOLLOUT : 0);

	if (ev != p->events && !ns_loop_mod(p->b->loop, &p->w, ev))
		p->events = ev;
}

static void reap_unlink(struct peer *p)
{
	struct peer **pp;

	for (pp = &p->b->reap; *pp; pp = &(*pp)->reap_next)
		if (*pp == p) {
			*pp = p->reap_next;
			break;
		}
	p->reap_next = NULL;
}

static void on_reap(struct ns_loop *l, struct ns_timer *t)
{
	struct broker *b = t->data;
	struct peer *p;

	while ((p = b->reap)) {
		b->reap = p->reap_next;
		p->reap_next = NULL;
		peer_end(p, "connection lost (send failed)", false);
	}
}

static void peer_doom(struct peer *p)
{
	if (p->doomed)
		return;
	p->doomed = true;
	p->reap_next = p->b->reap;
	p->b->reap = p;
	ns_timer_arm(p->b->loop, &p->b->reap_t, 0);
}

int peer_send(struct peer *p, struct ns_msg_buf *mb)
{
	int err = ns_mb_finish(mb);

	if (err) {
		log_err("cannot build %s: %s", ns_msg_type_name(mb->data ? mb->data[1] : 0),
			strerror(-err));
	} else if (p->doomed || p->state == PEER_DRAIN) {
		err = -EPIPE;
	} else {
		err = ns_conn_send(&p->conn, mb);
		if (err == -ENOBUFS)
			door_refused(p->b, LIM_OUTPUT, "%s closed: more than %u MiB queued for it "
				     "(it does not read)", p->name ? p->name : "a peer",
				     NS_CONN_WBUF_MAX >> 20);
		if (err) {
			log_debug("send to %s: %s", p->name ? p->name : "peer", strerror(-err));
			peer_doom(p);
		} else {
			peer_events(p);
		}
	}
	ns_mb_free(mb);
	return err;
}

/* ---- the timer: login deadline, heartbeats, hold time, final free ---- */

static void peer_free(struct peer *p)
{
	struct broker *b = p->b;

	doors_authed(p);	/* (if it never logged in: its place at the door) */

	if (p->conn.fd >= 0)
		ns_loop_del(b->loop, &p->w);
	ns_conn_free(&p->conn);
	ns_timer_cancel(b->loop, &p->timer);
	if (p->prev)
		p->prev->next = p->next;
	else
		b->peers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	b->npeers--;
	free(p);
}

static void on_peer_timer(struct ns_loop *l, struct ns_timer *t)
{
	struct peer *p = t->data;
	struct broker *b = p->b;
	__u64 hold_ns = (__u64)p->hold_s * 1000 * NS_PER_MS;
	__u64 now = ns_now_ns(), next;
	struct ns_msg_buf mb;

	switch (p->state) {
	case PEER_DRAIN:
		peer_free(p);
		return;
	case PEER_LOGIN:
		if (p->transport != PT_READY) {
			char a[EP_STRLEN];

			b->st.tls_failed++;
			log_warn("connection from %s closed: no TLS handshake within %u s",
				 ep_str(&p->observed, a, sizeof(a)), b->cfg->login_timeout_s);
			peer_kill(p, "login deadline during the TLS handshake");
			return;
		}
		peer_close_error(p, NS_ERR_AUTH, "no LOGIN within %u s", b->cfg->login_timeout_s);
		return;
	default:
		break;
	}
	if (now - p->last_rx_ns >= hold_ns) {
		peer_close_error(p, NS_ERR_TIMEOUT, "silent for %u s (hold time)", p->hold_s);
		return;
	}
	if (now >= p->next_hb_ns) {
		ns_mb_init(&mb, NS_MSG_HEARTBEAT);
		peer_send(p, &mb);
		p->next_hb_ns = now + hold_ns / 3;
	}
	next = p->last_rx_ns + hold_ns;
	if (p->next_hb_ns < next)
		next = p->next_hb_ns;
	ns_timer_arm(l, &p->timer, next > now ? (next - now + NS_PER_MS - 1) / NS_PER_MS : 0);
}

void peer_start_heartbeat(struct peer *p)
{
	__u64 now = ns_now_ns();

	p->last_rx_ns = now;
	p->next_hb_ns = now + (__u64)p->hold_s * 1000 * NS_PER_MS / 3;
	ns_timer_arm(p->b->loop, &p->timer, (__u64)p->hold_s * 1000 / 3);
}

/* ---- closing ---- */

/* A closed peer reads the rest of the peer's bytes into the void until end
 * of file (or the drain deadline), so that our ERROR is not lost to an RST. */
static void on_drain(struct peer *p, __u32 events)
{
	char buf[4096];
	ssize_t n;
	int i;

	if (events & EPOLLOUT) {
		int err = ns_conn_flush(&p->conn);

		if (err < 0)
			goto gone;
		if (err == 0) {
			ns_conn_shutdown(&p->conn);
			ns_loop_mod(p->b->loop, &p->w, EPOLLIN);
		}
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (i = 0; i < 16; i++) {
		n = recv(p->conn.fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		goto gone;
	}
	return;
gone:
	/* Freed from the timer: the loop may still hold p in this batch. */
	ns_loop_del(p->b->loop, &p->w);
	ns_conn_free(&p->conn);
	ns_timer_arm(p->b->loop, &p->timer, 0);
}

/* Forget everything the peer stands for, then close its socket (at once, or
 * after our last message went out when linger) and free it from its timer. */
static void peer_end(struct peer *p, const char *why, bool linger)
{
	struct broker *b = p->b;
	char a[EP_STRLEN];

	if (p->state == PEER_DRAIN)
		return;
	ep_str(&p->observed, a, sizeof(a));
	if (p->state == PEER_LOGIN)
		log_debug("connection from %s closed: %s", a, why);
	else
		log_info("%s %s (%s) disconnected: %s", p->state == PEER_AGENT ? "agent" : "relay",
			 p->name, a, why);
	if (p->doomed) {
		reap_unlink(p);
		linger = false;
	}
	if (p->transport == PT_HANDSHAKE)
		linger = false;		/* nothing can be sent before the handshake is done */
	probe_cancel(p);
	if (p->state == PEER_AGENT && b->agents[p->idx] == p) {
		b->agents[p->idx] = NULL;
		b->agents_online--;
	} else if (p->state == PEER_RELAY && b->relays[p->idx] == p) {
		b->relays[p->idx] = NULL;
		b->relays_online--;
	}
	if (p->state == PEER_RELAY) {
		public_relay_gone(p);	/* (not in b->relays any more: not picked again) */
		if (!b->stop)
			rtt_relays_changed(b);	/* the agents stop measuring it */
	}
	services_drop(p);
	p->state = PEER_DRAIN;
	sess_peer_gone(p);
	ns_timer_cancel(b->loop, &p->timer);
	if (linger && p->conn.fd >= 0) {
		int err = ns_conn_flush(&p->conn);

		if (err == 0)
			ns_conn_shutdown(&p->conn);
		if (err >= 0) {
			p->events = EPOLLIN | (err ? EPOLLOUT : 0);
			ns_loop_mod(b->loop, &p->w, p->events);
			ns_timer_arm(b->loop, &p->timer, BROKER_DRAIN_MS);
			return;
		}
	}
	if (p->conn.fd >= 0)
		ns_loop_del(b->loop, &p->w);
	ns_conn_free(&p->conn);
	ns_timer_arm(b->loop, &p->timer, 0);
}

void peer_kill(struct peer *p, const char *why)
{
	peer_end(p, why, false);
}

void peer_close_error(struct peer *p, int code, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	if (p->state == PEER_DRAIN)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	proto_error(p, NULL, 0, code, "%s", text);
	peer_end(p, text, true);
}

/* ---- reading ---- */

static const char *read_error_text(int err)
{
	switch (err) {
	case -EMSGSIZE:
		return "message larger than the protocol allows";
	case -EPROTONOSUPPORT:
		return "unsupported protocol version";
	case -EOPNOTSUPP:
		return "unknown must-understand attribute";
	default:
		return "malformed message";
	}
}

/* ---- the transport: plain text or TLS, before CHALLENGE ---- */

/* The first byte decides; it stays in the socket for the reader. 0 or -errno. */
static int peer_sniff(struct peer *p)
{
	struct broker *b = p->b;
	char a[EP_STRLEN];
	struct ssl_st *ssl;
	ssize_t n;
	__u8 first;
	int err;

	n = recv(p->conn.fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -EAGAIN;
	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	ep_str(&p->observed, a, sizeof(a));
	if (first == TLS_RECORD_HANDSHAKE) {
		err = ns_tls_server_ssl(b->tls, p->conn.fd, &ssl);
		if (!err)
			err = ns_conn_set_tls(&p->conn, ssl);
		if (err)
			return err;
		p->transport = PT_HANDSHAKE;
		return 0;
	}
	p->transport = PT_READY;
	if (!b->cfg->insecure) {
		b->st.plain_refused++;
		log_warn("plain-text control connection from %s refused (set insecure: true to "
			 "allow)", a);
		peer_close_error(p, NS_ERR_UNSUPPORTED, "this broker speaks TLS only: give the "
				 "client broker-fingerprint (natsplice-broker --fingerprint prints "
				 "it) or broker-ca");
		return -EPERM;
	}
	log_debug("connection from %s: plain text (insecure)", a);
	return proto_challenge(p) ? -EIO : 0;
}

/* Sniff, then the TLS handshake, then CHALLENGE: true once the connection
 * carries messages, false while it does not yet or when it was closed. */
static bool peer_transport(struct peer *p)
{
	struct broker *b = p->b;
	char a[EP_STRLEN];
	int err;

	if (p->transport == PT_SNIFF) {
		err = peer_sniff(p);
		if (err == -EAGAIN)
			return false;
		if (err == -EPERM)
			return false;		/* refused and closed */
		if (err) {
			peer_kill(p, err == -ECONNRESET ? "closed before the TLS handshake"
						       : strerror(-err));
			return false;
		}
		if (p->transport == PT_READY)
			return true;		/* plain: its HEARTBEAT is there to read */
	}
	err = ns_conn_handshake(&p->conn);
	if (err == 1) {
		peer_events(p);
		return false;
	}
	ep_str(&p->observed, a, sizeof(a));
	if (err < 0) {
		b->st.tls_failed++;
		if (err == -EPROTO)
			log_warn("TLS handshake with %s failed: %s", a,
				 ns_conn_strerror(&p->conn, err));
		peer_kill(p, err == -EPROTO ? "TLS handshake failed"
					    : "closed during the TLS handshake");
		return false;
	}
	if (ns_tls_exporter(p->conn.ssl, p->ekm, sizeof(p->ekm))) {
		peer_kill(p, "no TLS exporter");
		return false;
	}
	p->has_ekm = true;
	p->transport = PT_READY;
	log_debug("connection from %s: TLS 1.3 (%s)", a, SSL_get_cipher_name(p->conn.ssl));
	if (proto_challenge(p)) {
		peer_kill(p, "cannot send CHALLENGE");
		return false;
	}
	peer_events(p);
	return false;			/* the client speaks after CHALLENGE */
}

static void on_peer(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct peer *p = w->data;
	struct ns_msg m;
	int rerr = 0, n;

	if (p->state == PEER_DRAIN) {
		on_drain(p, events);
		return;
	}
	if (p->doomed)
		return;		/* closed by the reap timer after this batch */
	if (p->transport != PT_READY && !peer_transport(p))
		return;
	if (events & EPOLLOUT) {
		n = ns_conn_flush(&p->conn);
		if (n < 0) {
			peer_kill(p, ns_conn_strerror(&p->conn, n));
			return;
		}
	}
	/* (TLS: a read may wait for EPOLLOUT, and may leave bytes in the SSL) */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) || p->conn.ssl) {
again:
		rerr = ns_conn_read(&p->conn);
		while ((n = ns_conn_next(&p->conn, &m)) > 0) {
			p->last_rx_ns = ns_now_ns();
			if (doors_message(p)) {
				peer_close_error(p, NS_ERR_LIMIT, "more than %u messages a "
						 "second (msg-rate)", p->b->cfg->msg_rate);
				return;
			}
			proto_message(p, &m);
			if (p->state == PEER_DRAIN || p->doomed)
				return;
		}
		if (n == -EMSGSIZE && p->state == PEER_LOGIN) {
			char a[EP_STRLEN];

			door_refused(p->b, LIM_LOGIN_SIZE, "connection from %s closed: a "
				     "message before login larger than a LOGIN (%u bytes)",
				     ep_str(&p->observed, a, sizeof(a)), BROKER_LOGIN_MAX_BODY);
			peer_close_error(p, NS_ERR_MALFORMED, "a message before login larger "
					 "than a LOGIN");
			return;
		}
		if (n < 0) {
			p->b->st.malformed++;
			if (n == -EOPNOTSUPP)
				peer_close_error(p, NS_ERR_UNSUPPORTED, "%s %u",
						 read_error_text(n), m.bad_attr);
			else
				peer_close_error(p, n == -EPROTONOSUPPORT ? NS_ERR_UNSUPPORTED :
						 NS_ERR_MALFORMED, "%s", read_error_text(n));
			return;
		}
		if (rerr < 0) {
			if (rerr == -EPROTO)
				log_warn("%s: %s", p->name ? p->name : "connection",
					 ns_conn_strerror(&p->conn, rerr));
			peer_kill(p, rerr == -ECONNRESET || rerr == -EPIPE ? "connection closed"
						: ns_conn_strerror(&p->conn, rerr));
			return;
		}
		if (ns_conn_rpending(&p->conn))
			goto again;
	}
	peer_events(p);
}

/* ---- accepting ---- */

static void tune_socket(int fd, __u32 hold_s)
{
	int one = 1, idle = hold_s, intvl = hold_s / 3 ? hold_s / 3 : 1, cnt = 3;
	unsigned int user_timeout = hold_s * 1000;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

static void peer_new(struct broker *b, int fd, const struct sockaddr_storage *ss)
{
	struct ns_ep ep;
	struct peer *p;

	ep_from_sockaddr(ss, &ep);
	if (doors_admit(b, &ep)) {
		close(fd);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p || ns_conn_init(&p->conn, fd)) {	/* ns_conn_init closes fd on error */
		if (!p)
			close(fd);
		free(p);
		log_warn("out of memory: connection refused");
		return;
	}
	p->b = b;
	p->idx = -1;
	p->state = PEER_LOGIN;
	p->since = time(NULL);
	p->observed = ep;
	p->w.fn = on_peer;
	p->w.fd = fd;
	p->w.data = p;
	p->events = EPOLLIN;
	ns_timer_init(&p->timer, on_peer_timer, p);
	if (ns_loop_add(b->loop, &p->w, EPOLLIN)) {
		ns_conn_free(&p->conn);
		free(p);
		return;
	}
	p->next = b->peers;
	if (b->peers)
		b->peers->prev = p;
	b->peers = p;
	b->npeers++;
	b->st.accepted++;
	doors_admitted(p);
	/* the deadline for sniffing, the TLS handshake and LOGIN together */
	ns_timer_arm(b->loop, &p->timer, (__u64)b->cfg->login_timeout_s * 1000);
	p->transport = PT_SNIFF;
}

static void on_accept_resume(struct ns_loop *l, struct ns_timer *t)
{
	struct broker *b = t->data;

	ns_loop_mod(l, &b->listen_w, EPOLLIN);
}

static void on_accept(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct broker *b = w->data;
	struct sockaddr_storage ss;
	socklen_t sl;
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		sl = sizeof(ss);
		fd = accept4(b->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_warn("accept: %s; pausing for %d ms", strerror(errno),
					 ACCEPT_PAUSE_MS);
				ns_loop_mod(l, &b->listen_w, 0);
				ns_timer_arm(l, &b->accept_t, ACCEPT_PAUSE_MS);
			} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				log_warn("accept: %s", strerror(errno));
			}
			return;
		}
		tune_socket(fd, b->cfg->hold_time_s);
		peer_new(b, fd, &ss);
	}
}

int broker_listen(struct broker *b)
{
	const struct broker_cfg *c = b->cfg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[EP_STRLEN];
	int one = 1, err;

	ep_from_sockaddr(&c->listen, &b->listen_ep);
	b->lfd = socket(c->listen.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->lfd < 0)
		return -errno;
	setsockopt(b->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(b->lfd, (const struct sockaddr *)&c->listen, c->listen_len) ||
	    listen(b->lfd, LISTEN_BACKLOG)) {
		err = -errno;
		log_err("listen on %s: %s", ep_str(&b->listen_ep, a, sizeof(a)), strerror(-err));
		return err;
	}
	if (!getsockname(b->lfd, (struct sockaddr *)&ss, &sl))
		ep_from_sockaddr(&ss, &b->listen_ep);
	b->listen_w.fn = on_accept;
	b->listen_w.fd = b->lfd;
	b->listen_w.data = b;
	ns_timer_init(&b->accept_t, on_accept_resume, b);
	ns_timer_init(&b->reap_t, on_reap, b);
	return ns_loop_add(b->loop, &b->listen_w, EPOLLIN);
}

void broker_unlisten(struct broker *b)
{
	if (b->lfd < 0)
		return;
	ns_loop_del(b->loop, &b->listen_w);
	ns_timer_cancel(b->loop, &b->accept_t);
	close(b->lfd);
	b->lfd = -1;
}

/* Shutdown: every peer closed and freed now (the loop has stopped). */
void peers_close_all(struct broker *b)
{
	struct peer *p;

	ns_timer_cancel(b->loop, &b->reap_t);
	while ((p = b->peers)) {
		peer_end(p, "broker shutting down", false);
		peer_free(p);
	}
	b->reap = NULL;
}
