// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * UDP as UDP (include/ns_proto.h, "UDP stays UDP"): a UDP service's tunnel is
 * a UDP socket per tunnel, one application datagram per datagram, so a lost
 * packet delays nothing else.
 *
 *   relay path:  connect() to RELAY:port, the TOKEN every 200 ms until the
 *                relay answers "NSOK" (both sides came, the kernel splices);
 *   dialling:    connect() to PEER_ADDR;
 *   accepting:   the peer's proof arrives on tunnel-listen's UDP port, from
 *                the address the broker announced; a socket of the tunnel's
 *                own is bound to that port and connect()ed to the sender.
 * Then both send their proof datagram, the TCP link's 61-byte proof and one
 * byte: 'O' (the subscriber's: it opens the tunnel at once) or 'R' (the
 * provider's), every 200 ms until the peer's proof is checked; each such
 * request is answered with our proof ending in 'A' (answers are not
 * answered), so a side whose proof was lost gets it again. Before the peer's
 * proof is checked no datagram is forwarded. From then on, datagrams from the peer
 * go to the client or the target and back, through the ALG if the service
 * has one; repeated tokens, NSOKs and proofs are not application data.
 *
 * The subscriber falls back to the framed TCP tunnel when the UDP one is not
 * up udp-fallback seconds after CONNECT_INFO (a firewall that passes only
 * TCP): it asks again with TRANSPORT 6, keeping the client's datagrams, and
 * that subscription's next clients go straight to TCP for AGENT_UDP_FAILED_S.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "agent.h"
#include "auth.h"
#include "log.h"
#include "util.h"

#define UDP_OK		"NSOK"
#define UDP_OK_LEN	4
#define PROOF_DGRAM	(NS_PROOF_LEN + 1)	/* the proof and what it is: */
#define PROOF_PROVIDER	'R'			/* the provider's request */
#define PROOF_ANSWER	'A'			/* an answer, not answered */
#define LABEL_LEN	(AGENT_NAME_MAX * 2 + 64)
#define BURST		64	/* datagrams per wake-up */

/* Where a failed UDP attempt is remembered: the subscription, or a
 * session's own listener (it has no subscription on the provider). */
static struct agent_listener *fallback_owner(struct agent_listener *lis)
{
	return lis->main ? lis->main : lis;
}

__u8 agent_udp_transport(struct agent_listener *lis)
{
	return ns_now_ns() < fallback_owner(lis)->udp_failed_until_ns ? IPPROTO_TCP :
									 IPPROTO_UDP;
}

static void send_raw(struct agent_tunnel *t, const void *p, size_t len)
{
	/* a datagram the socket cannot take now is lost, as UDP would lose it */
	send(t->tw.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* What the resend timer sends now: the token until NSOK, then our proof. */
static void resend(struct agent_tunnel *t)
{
	if (t->path == NS_PATH_RELAY && !t->relay_ok)
		send_raw(t, t->token, sizeof(t->token));
	else
		send_raw(t, t->proof_out, t->proof_len);
}

static void on_rtx(struct ns_loop *l, struct ns_timer *tm)
{
	struct agent_tunnel *t = tm->data;

	if (t->proof_ok && (t->path != NS_PATH_RELAY || t->relay_ok))
		return;		/* up: proofs are only answered now */
	resend(t);
	ns_timer_arm(l, &t->rtx, AGENT_UDP_RESEND_MS);
}

/* The TCP link's proof, computed the same way, and our request byte. */
static int proof_make(struct agent_tunnel *t)
{
	int err = ns_tunnel_proof(t->key, t->session, t->role, t->proof_out);

	if (err)
		return err;
	t->proof_out[NS_PROOF_LEN] = t->role == TUN_ROLE_SUBSCRIBER ? NS_TUNNEL_OPEN :
				     PROOF_PROVIDER;
	t->proof_len = PROOF_DGRAM;
	return 0;
}

/* Our proof as an answer to the peer's request. */
static void send_answer(struct agent_tunnel *t)
{
	__u8 d[PROOF_DGRAM];

	memcpy(d, t->proof_out, NS_PROOF_LEN);
	d[NS_PROOF_LEN] = PROOF_ANSWER;
	send_raw(t, d, sizeof(d));
}

/* Is this datagram the peer's proof (checked)? The subscriber's opens. */
static bool is_peer_proof(struct agent_tunnel *t, const __u8 *d, size_t n)
{
	if (n != PROOF_DGRAM || memcmp(d, "NSP1", 4) ||
	    ns_tunnel_proof_check(t->key, t->session, !t->role, d))
		return false;
	if (!t->proof_ok)
		memcpy(t->proof_in, d, NS_PROOF_LEN);	/* for the tunnel's keys */
	if (t->role == TUN_ROLE_PROVIDER)
		t->opened = true;
	return true;
}

/* Both proofs are through: forward (S), or connect the target once opened
 * (P). true when t was closed. */
static bool udp_up(struct agent_tunnel *t)
{
	char label[LABEL_LEN];

	if (t->state == TUN_FWD || t->state == TUN_TARGET)
		return false;
	if (t->role == TUN_ROLE_PROVIDER && !t->opened)
		return false;	/* the subscriber's proof without OPEN: cannot happen */
	log_info("%s: tunnel up (%s path, udp)", agent_tunnel_label(t, label, sizeof(label)),
		 ns_path_name(t->path));
	if (t->role == TUN_ROLE_SUBSCRIBER) {
		agent_pool_setup_done(t);
		if (!agent_fwd_start(t))
			return false;
		agent_tunnel_close(t, true, "cannot start forwarding");
		return true;
	}
	return agent_link_target(t) != 0;
}

/* A datagram from the peer; forwarding (queued in out) or not yet. true
 * when t was closed. */
static bool on_datagram(struct agent_tunnel *t, const __u8 *d, size_t n,
			struct agent_dgram_out *out)
{
	if (t->path == NS_PATH_RELAY && n == sizeof(t->token) && !memcmp(d, t->token, n))
		return false;	/* the peer's late token, forwarded by the relay */
	if (t->path == NS_PATH_RELAY && n == UDP_OK_LEN && !memcmp(d, UDP_OK, n)) {
		if (!t->relay_ok) {
			t->relay_ok = true;
			send_raw(t, t->proof_out, t->proof_len);
		}
		return false;
	}
	if (is_peer_proof(t, d, n)) {
		if (d[NS_PROOF_LEN] != PROOF_ANSWER)
			send_answer(t);		/* it may not have ours */
		t->proof_ok = true;
		t->relay_ok = true;	/* the peer's datagram came through the relay */
		return udp_up(t);
	}
	if (t->state == TUN_FWD)	/* nothing before the peer's proof */
		agent_fwd_dgram_in(t, d, n, out);
	return false;
}

void agent_udp_on_event(struct agent_tunnel *t)
{
	struct agent_dgrams *dg = &t->a->dg;
	struct agent_dgram_out out = { .fd = -1 };
	int i, j, n = AGENT_MMSG;

	for (i = 0; i < BURST && n == AGENT_MMSG && t->tw.fd >= 0; i += n) {
		n = agent_dgrams_recv(t->a, t->tw.fd);
		for (j = 0; j < n && t->state != TUN_WAIT_INFO; j++)
			if (on_datagram(t, dg->iov[j].iov_base, dg->m[j].msg_len, &out)) {
				agent_dgram_flush(&out);
				return;		/* t is gone */
			}
		agent_dgram_flush(&out);
		if (t->state == TUN_WAIT_INFO)
			return;		/* fallen back meanwhile */
	}
}

int agent_dgrams_open(struct agent *a)
{
	a->dg.buf = malloc((size_t)AGENT_MMSG * AGENT_IO_BUF);
	a->dg.sbuf = malloc((size_t)(AGENT_MMSG + 1) * AGENT_SEALED_BUF);
	return a->dg.buf && a->dg.sbuf ? 0 : -ENOMEM;
}

void agent_dgrams_free(struct agent *a)
{
	free(a->dg.buf);
	free(a->dg.sbuf);
	a->dg.buf = a->dg.sbuf = NULL;
}

int agent_dgrams_recv(struct agent *a, int fd)
{
	struct agent_dgrams *dg = &a->dg;
	int i, n;

	for (i = 0; i < AGENT_MMSG; i++) {
		dg->iov[i].iov_base = dg->buf + (size_t)i * AGENT_IO_BUF;
		dg->iov[i].iov_len = AGENT_IO_BUF;
		dg->m[i].msg_hdr = (struct msghdr){
			.msg_name = &dg->from[i], .msg_namelen = sizeof(dg->from[i]),
			.msg_iov = &dg->iov[i], .msg_iovlen = 1,
		};
	}
	do
		n = recvmmsg(fd, dg->m, AGENT_MMSG, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	/* EAGAIN, or an ICMP error of a connected socket: none now */
	return n < 0 ? 0 : n;
}

void agent_dgram_queue(struct agent_dgram_out *o, int fd, const void *p, size_t len,
		       const struct sockaddr_storage *to)
{
	unsigned int i;

	if (o->n && (o->fd != fd || o->n == AGENT_MMSG))
		agent_dgram_flush(o);
	i = o->n++;
	o->fd = fd;
	o->iov[i] = (struct iovec){ .iov_base = (void *)p, .iov_len = len };
	o->m[i].msg_hdr = (struct msghdr){
		.msg_name = (void *)to, .msg_namelen = to ? ns_sockaddr_len(to) : 0,
		.msg_iov = &o->iov[i], .msg_iovlen = 1,
	};
}

void agent_dgram_flush(struct agent_dgram_out *o)
{
	unsigned int done = 0;
	int n;

	/* a datagram the socket cannot take now is lost, as UDP would lose it */
	while (done < o->n) {
		n = sendmmsg(o->fd, o->m + done, o->n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			done++;		/* skip the one that failed */
		else
			done += n;
	}
	o->n = 0;
}

void agent_udp_send(struct agent_tunnel *t, const __u8 *data, size_t len,
		    struct agent_dgram_out *o)
{
	__u8 *slot;
	int n;

	if (!t->fwd.useal) {
		if (o)
			agent_dgram_queue(o, t->tw.fd, data, len, NULL);
		else
			send_raw(t, data, len);
		return;
	}
	/* sealed into a slot of its own: o's slot, or the last one for at once */
	if (o && o->n && (o->fd != t->tw.fd || o->n == AGENT_MMSG))
		agent_dgram_flush(o);
	slot = t->a->dg.sbuf + (size_t)(o ? o->n : AGENT_MMSG) * AGENT_SEALED_BUF;
	n = ns_seal_dgram(&t->fwd.tx, data, len, slot);
	if (n < 0)
		return;		/* larger than a sealed datagram can be: lost */
	if (o)
		agent_dgram_queue(o, t->tw.fd, slot, n, NULL);
	else
		send_raw(t, slot, n);
}

/* A UDP socket of the tunnel: bound to local (sharing its port) or not,
 * connected to peer. */
static int udp_socket(struct agent_tunnel *t, const struct sockaddr_storage *local,
		      const struct sockaddr_storage *peer)
{
	int fd, err;

	if (local)
		fd = agent_sock_bound(local, SOCK_DGRAM, true);
	else
		fd = socket(peer->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return local ? fd : -errno;
	agent_sock_udp_bufs(fd);
	if (connect(fd, (const struct sockaddr *)peer, ns_sockaddr_len(peer))) {
		err = -errno;
		close(fd);
		return err;
	}
	t->tw.fd = fd;
	err = agent_tunnel_watch(t, &t->tw, EPOLLIN);
	if (err) {
		t->tw.fd = -1;
		close(fd);
	}
	return err;
}

/*
 * A punched path's answering side opens its own NAT first: a datagram to
 * the discard port of the other's address (so not to the port the other
 * sends from, where it would leave the far NAT a conntrack entry in the
 * way of that side's mapping) makes a NAT that filters by address let the
 * other's datagrams in; one that filters by nothing needs none, and the
 * broker does not make a side that filters by port answer (ns_proto.h).
 */
static void punch_prime(struct agent_tunnel *t, const char *label)
{
	struct sockaddr_storage to = t->peer;
	static const __u8 byte;

	ns_sockaddr_set_port(&to, NS_PUNCH_PRIME_PORT);
	if (sendto(t->tw.fd, &byte, sizeof(byte), 0, (struct sockaddr *)&to,
		   ns_sockaddr_len(&to)) < 0)
		log_debug("%s: priming the NAT: %s", label, strerror(errno));
}

void agent_udp_link(struct agent_tunnel *t, bool dial, __u32 delay_ms)
{
	char label[LABEL_LEN], ps[AGENT_SA_STRLEN];
	int err;

	agent_tunnel_label(t, label, sizeof(label));
	ns_timer_init(&t->rtx, on_rtx, t);
	if (proof_make(t)) {
		agent_tunnel_close(t, true, "cannot compute the tunnel proof");
		return;
	}
	if (!dial && !(t->path == NS_PATH_PUNCH && t->bind_port)) {
		if (t->a->tlu_w.fd < 0) {
			log_err("%s: the broker wants this agent to accept a UDP tunnel, but "
				"tunnel-listen is not configured", label);
			agent_tunnel_close(t, true, "no tunnel-listen");
			return;
		}
		t->state = TUN_WAIT_PEER;	/* until its proof comes (agent_udp_listen) */
		return;
	}
	if (t->path == NS_PATH_PUNCH && t->bind_port) {
		/* both send from the port the broker gave to the other's public one */
		struct sockaddr_storage local;
		static const __u32 any[4];

		ns_sockaddr_make(t->peer.ss_family == AF_INET6 ? NS_AF_INET6 : NS_AF_INET, any,
				 htons(t->bind_port), &local);
		err = udp_socket(t, &local, &t->peer);
	} else {
		err = udp_socket(t, NULL, &t->peer);
	}
	if (err) {
		log_warn("%s: udp to %s: %s", label, agent_sa_str(&t->peer, ps, sizeof(ps)),
			 strerror(-err));
		agent_tunnel_close(t, true, "cannot reach the peer");
		return;
	}
	t->state = t->path == NS_PATH_RELAY ? TUN_DIALING : TUN_PROOF;
	if (!dial) {
		punch_prime(t, label);
		return;		/* punched: answer the other's first datagram */
	}
	if (delay_ms) {
		/* punched: the other side answers, or both send at this moment */
		ns_timer_arm(t->a->loop, &t->rtx, delay_ms);
		return;
	}
	resend(t);
	ns_timer_arm(t->a->loop, &t->rtx, AGENT_UDP_RESEND_MS);
}

void agent_udp_fallback(struct agent_tunnel *t)
{
	struct agent_listener *main = fallback_owner(t->lis);
	char label[LABEL_LEN];
	bool punched = t->path == NS_PATH_PUNCH && !t->no_punch;

	agent_tunnel_label(t, label, sizeof(label));
	if (punched) {
		/* the punched path did not come up: UDP through a relay first */
		log_info("%s: punched path not up: asking for another path", label);
		t->no_punch = true;
	} else if (!main->udp_failed_until_ns || ns_now_ns() >= main->udp_failed_until_ns)
		log_warn("%s: no UDP tunnel within %u s: falling back to a TCP tunnel (and for "
			 "this subscription's clients for %u s)", label,
			 t->a->cfg->udp_fallback_s, AGENT_UDP_FAILED_S);
	if (!punched)
		main->udp_failed_until_ns = ns_now_ns() + AGENT_UDP_FAILED_S * 1000000000ull;
	ns_timer_cancel(t->a->loop, &t->rtx);
	if (t->tw_reg)
		ns_loop_del(t->a->loop, &t->tw);
	t->tw_reg = false;
	if (t->tw.fd >= 0)
		close(t->tw.fd);
	t->tw.fd = -1;
	t->has_session = false;
	t->proof_ok = t->relay_ok = false;
	memset(t->key, 0, sizeof(t->key));
	if (!punched)
		t->transport = IPPROTO_TCP;
	t->state = TUN_WAIT_INFO;
	agent_tunnel_resend(t);
}

/* ---- tunnel-listen's UDP port: the accepting side's first datagram ---- */

/* The tunnel waiting for this proof from this address, or NULL. */
static struct agent_tunnel *waiting_for(struct agent *a, __u64 session, __u8 role,
					const struct sockaddr_storage *from)
{
	__u32 zero[4] = {}, addr[4];
	struct agent_tunnel *t;
	__be16 port;
	__u8 family;

	for (t = a->tunnels; t; t = t->next) {
		if (t->state != TUN_WAIT_PEER || t->transport != IPPROTO_UDP || !t->has_session ||
		    t->session != session || t->role == role)
			continue;
		ns_sockaddr_split(&t->peer, &family, addr, &port);
		if (memcmp(addr, zero, sizeof(zero)) && !agent_sa_same_ip(from, &t->peer))
			return NULL;
		return t;
	}
	return NULL;
}

static void on_listen_datagram(struct agent *a, const __u8 *d, size_t n,
			       const struct sockaddr_storage *from)
{
	char label[LABEL_LEN], fs[AGENT_SA_STRLEN];
	struct agent_tunnel *t;
	__u64 session;
	__u8 role;
	int err;

	if (n != PROOF_DGRAM || ns_tunnel_proof_peek(d, &session, &role))
		return;		/* not a proof: a stranger gets nothing */
	t = waiting_for(a, session, role, from);
	if (!t || !is_peer_proof(t, d, n))
		return;		/* not (yet) ours, or forged: the dialler resends */
	agent_tunnel_label(t, label, sizeof(label));
	err = udp_socket(t, &a->cfg->tunnel_listen, from);
	if (err) {
		log_warn("%s: udp socket for %s: %s", label, agent_sa_str(from, fs, sizeof(fs)),
			 strerror(-err));
		agent_tunnel_close(t, true, "cannot answer the peer");
		return;
	}
	t->peer = *from;
	t->proof_ok = true;
	t->state = TUN_PROOF;
	send_answer(t);
	log_debug("%s: peer's UDP proof from %s", label, agent_sa_str(from, fs, sizeof(fs)));
	udp_up(t);	/* (t may be gone now) */
}

static void on_listen(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent *a = w->data;
	int i;

	for (i = 0; i < BURST; i++) {
		struct sockaddr_storage from = {};
		socklen_t sl = sizeof(from);
		ssize_t n = recvfrom(w->fd, a->buf, AGENT_IO_BUF, MSG_DONTWAIT,
				     (struct sockaddr *)&from, &sl);

		if (n < 0)
			return;
		on_listen_datagram(a, a->buf, n, &from);
	}
}

int agent_udp_listen_open(struct agent *a)
{
	const struct agent_cfg *c = a->cfg;
	char as[AGENT_SA_STRLEN];
	int fd, err;

	a->tlu_w.fd = -1;
	if (!c->has_tunnel_listen)
		return 0;
	/* the tunnels' own sockets share the port, each connected to its peer */
	fd = agent_sock_bound(&c->tunnel_listen, SOCK_DGRAM, true);
	err = fd < 0 ? fd : 0;
	if (!err) {
		a->tlu_w.fd = fd;
		a->tlu_w.fn = on_listen;
		a->tlu_w.data = a;
		err = ns_loop_add(a->loop, &a->tlu_w, EPOLLIN);
	}
	if (err) {
		log_err("tunnel-listen: cannot bind udp %s: %s",
			agent_sa_str(&c->tunnel_listen, as, sizeof(as)), strerror(-err));
		if (fd >= 0)
			close(fd);
		a->tlu_w.fd = -1;
	}
	return err;
}

void agent_udp_listen_close(struct agent *a)
{
	if (a->tlu_w.fd < 0)
		return;
	ns_loop_del(a->loop, &a->tlu_w);
	close(a->tlu_w.fd);
	a->tlu_w.fd = -1;
}
