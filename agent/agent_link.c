// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Bringing a tunnel's TCP connection up and proving it: dialling PEER_ADDR
 * (optionally from BIND_PORT), or accepting the peer on tunnel-listen; then
 * the 61-byte proofs both ways (include/ns_proto.h, flow step 6); then the
 * one-byte OPEN marker from the subscriber once a client is there (in the
 * same write as its proof, unless the tunnel is pooled); then, on the
 * provider, the connection to the target, made only when OPEN arrived.
 *
 * The accepting side does not know the session until the peer's proof has
 * arrived (its bytes 4..11), so it reads that first, finds the session by it
 * and answers with its own. A proof may also arrive before our CONNECT_INFO
 * (the broker tells both sides at once): such a connection is parked until
 * the CONNECT_INFO or the deadline. A connection that closes without a byte
 * is the broker's reachability probe and is dropped silently.
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
#include "bytes.h"
#include "log.h"
#include "proxyhdr.h"
#include "util.h"

#define INCOMING_MAX	256	/* unproven connections on tunnel-listen at once */

#define LABEL_LEN	(AGENT_NAME_MAX * 2 + 64)

/* ---- the proof exchange ---- */

static void proof_io(struct agent_tunnel *t);

/* P: OPEN arrived: connect to the target (forwarding starts when it answers).
 * 0, or -errno when t was closed. */
int agent_link_target(struct agent_tunnel *t)
{
	char label[LABEL_LEN], ts[AGENT_SA_STRLEN];
	int fd, type, err;

	agent_tunnel_label(t, label, sizeof(label));
	ns_timer_arm(t->a->loop, &t->timer, t->a->cfg->connect_timeout_s * 1000);
	type = t->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	agent_sa_str(&t->target, ts, sizeof(ts));
	fd = socket(t->target.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (type == SOCK_STREAM)
		agent_sock_tune(fd);
	else
		agent_sock_udp_bufs(fd);
	if (connect(fd, (const struct sockaddr *)&t->target, ns_sockaddr_len(&t->target)) &&
	    errno != EINPROGRESS)
		goto fail;
	t->pw.fd = fd;
	if (type == SOCK_DGRAM) {
		if (agent_fwd_start(t)) {
			agent_tunnel_close(t, true, "cannot start forwarding");
			return -EIO;
		}
		return 0;
	}
	/* Nothing read from the tunnel until the target is there. */
	t->state = TUN_TARGET;
	err = agent_tunnel_watch(t, &t->tw, 0);
	if (!err)
		err = agent_tunnel_watch(t, &t->pw, EPOLLOUT);
	if (err) {
		errno = -err;
		goto fail;
	}
	return 0;
fail:
	log_warn("%s: target %s: %s", label, ts, strerror(errno));
	if (fd >= 0 && t->pw.fd != fd)
		close(fd);
	agent_tunnel_close(t, true, "target unreachable");
	return -EHOSTUNREACH;
}

void agent_sock_local(int fd, const struct agent_listener *lis, struct sockaddr_storage *out)
{
	socklen_t sl = sizeof(*out);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)out, &sl))
		*out = lis->addr;
}

#define OPEN_REC_BODY	(NS_OPEN_ADDR_LEN - NS_OPEN_TAG_LEN)

/* The record after OPEN_ADDR (ns_proto.h): family, ports, addresses, and
 * the tag of t's session key over them. */
static void open_rec_put(const struct agent_tunnel *t, __u8 *rec)
{
	__u32 sa[4], da[4];
	__be16 sp, dp;
	__u8 sf, df;

	ns_sockaddr_split(&t->client, &sf, sa, &sp);
	ns_sockaddr_split(&t->client_dst, &df, da, &dp);
	memset(rec, 0, NS_OPEN_ADDR_LEN);
	rec[0] = sf == df ? sf : 0;
	memcpy(rec + 2, &sp, 2);
	memcpy(rec + 4, &dp, 2);
	memcpy(rec + 8, sa, 16);
	memcpy(rec + 24, da, 16);
	if (ns_open_tag(t->key, t->session, rec, OPEN_REC_BODY, rec + OPEN_REC_BODY))
		memset(rec, 0, OPEN_REC_BODY);	/* (no HMAC: the provider refuses it) */
}

static int open_rec_get(const struct agent_tunnel *t, const __u8 *rec,
			struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	__u32 sa[4], da[4];
	__be16 sp, dp;

	if (ns_open_tag_check(t->key, t->session, rec, OPEN_REC_BODY, rec + OPEN_REC_BODY))
		return -EACCES;
	if (rec[0] != NS_AF_INET && rec[0] != NS_AF_INET6)
		return -EINVAL;
	memcpy(&sp, rec + 2, 2);
	memcpy(&dp, rec + 4, 2);
	memcpy(sa, rec + 8, 16);
	memcpy(da, rec + 24, 16);
	ns_sockaddr_make(rec[0], sa, sp, src);
	ns_sockaddr_make(rec[0], da, dp, dst);
	return 0;
}

size_t agent_link_open_marker(const struct agent_tunnel *t, __u8 *buf)
{
	if (!t->want_client) {
		buf[0] = NS_TUNNEL_OPEN;
		return 1;
	}
	buf[0] = NS_TUNNEL_OPEN_ADDR;
	open_rec_put(t, buf + 1);
	return 1 + NS_OPEN_ADDR_LEN;
}

/* P: read the OPEN marker ('O', or 'A' and its record); nothing else may
 * come before it. */
static void open_read(struct agent_tunnel *t)
{
	char label[LABEL_LEN], cs[AGENT_SA_STRLEN];
	ssize_t n;
	int err;
	__u8 c;

	if (t->open_addr) {
		n = recv(t->tw.fd, t->open_rec + t->open_got, NS_OPEN_ADDR_LEN - t->open_got,
			 MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		agent_tunnel_label(t, label, sizeof(label));
		if (n <= 0) {
			log_warn("%s: closed in the middle of OPEN", label);
			agent_tunnel_close(t, true, "closed in OPEN");
			return;
		}
		t->open_got += n;
		if (t->open_got < NS_OPEN_ADDR_LEN)
			return;
		err = open_rec_get(t, t->open_rec, &t->client, &t->client_dst);
		if (err) {
			log_warn("%s: %s after OPEN; closed", label,
				 err == -EACCES ? "the client's address with a bad tag" :
						  "a bad address");
			agent_tunnel_close(t, true, "bad OPEN");
			return;
		}
		log_debug("%s: opened by the subscriber for client %s", label,
			  agent_sa_str(&t->client, cs, sizeof(cs)));
		agent_link_target(t);
		return;
	}
	n = recv(t->tw.fd, &c, 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	agent_tunnel_label(t, label, sizeof(label));
	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		/* a pooled tunnel the subscriber no longer needs */
		log_debug("%s: closed by the subscriber before a client came", label);
		agent_tunnel_close(t, false, "not used");
		return;
	}
	if (n == 1 && c == NS_TUNNEL_OPEN_ADDR) {
		t->open_addr = true;
		open_read(t);
		return;
	}
	if (n < 0 || c != NS_TUNNEL_OPEN) {
		log_warn("%s: %s instead of the OPEN marker; closed", label,
			 n < 0 ? strerror(errno) : "a stray byte");
		agent_tunnel_close(t, true, "no OPEN marker");
		return;
	}
	log_debug("%s: opened by the subscriber", label);
	agent_link_target(t);
}

/* Both proofs done: the subscriber forwards (or pools the tunnel), the
 * provider waits for OPEN. */
static void link_up(struct agent_tunnel *t)
{
	char label[LABEL_LEN];

	agent_tunnel_label(t, label, sizeof(label));
	log_info("%s: tunnel up (%s path%s%s)", label, ns_path_name(t->path),
		 t->compress ? ", compressed" : "", t->pooled ? ", pooled" : "");
	if (t->role == TUN_ROLE_SUBSCRIBER) {
		agent_pool_setup_done(t);
		if (t->pooled)
			agent_pool_ready(t);
		else if (agent_fwd_start(t))
			agent_tunnel_close(t, true, "cannot start forwarding");
		return;
	}
	t->state = TUN_OPEN;
	ns_timer_arm(t->a->loop, &t->timer, AGENT_OPEN_WAIT_S * 1000ull);
	if (agent_tunnel_watch(t, &t->tw, EPOLLIN)) {
		agent_tunnel_close(t, true, "epoll");
		return;
	}
	open_read(t);
}

int agent_link_open(struct agent_tunnel *t)
{
	__u8 buf[1 + NS_OPEN_ADDR_LEN];
	size_t len = agent_link_open_marker(t, buf);
	ssize_t n;

	/* the socket's buffer is empty: 57 bytes always fit */
	n = send(t->tw.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n == (ssize_t)len)
		return 0;
	return n < 0 ? -errno : -EAGAIN;
}

/* P: the PROXY protocol header to the target, before any forwarded byte
 * (the service's proxy-protocol; not on a flow's extra connections, whose
 * servers never asked for it). 0 or -errno. */
static int proxy_header(struct agent_tunnel *t)
{
	const struct sockaddr_storage *src = &t->client, *dst = &t->client_dst;
	__u8 buf[NS_PROXY_HDR_MAX];
	ssize_t len, n;

	if (t->role != TUN_ROLE_PROVIDER || t->flow || !t->pub || !t->pub->proxy)
		return 0;
	if (!src->ss_family || !dst->ss_family)
		src = dst = NULL;	/* an older subscriber: UNKNOWN / LOCAL */
	len = ns_proxy_header(t->pub->proxy, src, dst, buf, sizeof(buf));
	if (len < 0)
		return len;
	/* a fresh connection's buffer is empty: the header always fits */
	n = send(t->pw.fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == len ? 0 : n < 0 ? -errno : -EAGAIN;
}

void agent_link_on_target(struct agent_tunnel *t)
{
	char label[LABEL_LEN], ts[AGENT_SA_STRLEN];
	socklen_t sl = sizeof(int);
	int soerr = 0, err;

	if (getsockopt(t->pw.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
		log_warn("%s: target %s: %s", agent_tunnel_label(t, label, sizeof(label)),
			 agent_sa_str(&t->target, ts, sizeof(ts)),
			 strerror(soerr ? soerr : errno));
		/* The subscriber's client sees the reset, as if it had connected itself. */
		agent_tunnel_close(t, true, "target unreachable");
		return;
	}
	err = proxy_header(t);
	if (err) {
		log_warn("%s: PROXY protocol header to %s: %s",
			 agent_tunnel_label(t, label, sizeof(label)),
			 agent_sa_str(&t->target, ts, sizeof(ts)), strerror(-err));
		agent_tunnel_close(t, true, "cannot send the PROXY header");
		return;
	}
	if (agent_fwd_start(t))
		agent_tunnel_close(t, true, "cannot start forwarding");
}

static void proof_failed(struct agent_tunnel *t, const char *why)
{
	char label[LABEL_LEN], ps[AGENT_SA_STRLEN];
	struct sockaddr_storage ss = {};
	socklen_t sl = sizeof(ss);

	if (getpeername(t->tw.fd, (struct sockaddr *)&ss, &sl))
		ss = t->peer;		/* already reset: where we dialled */
	log_warn("%s: tunnel proof failed (%s, peer %s); closed",
		 agent_tunnel_label(t, label, sizeof(label)), why,
		 agent_sa_str(&ss, ps, sizeof(ps)));
	if (!agent_tunnel_retry(t, "tunnel proof failed"))
		agent_tunnel_close(t, true, "tunnel proof failed");
}

/* The TCP connection is up: send our proof. */
static void proof_start(struct agent_tunnel *t)
{
	t->state = TUN_PROOF;
	t->proof_sent = 0;
	if (ns_tunnel_proof(t->key, t->session, t->role, t->proof_out)) {
		agent_tunnel_close(t, true, "cannot compute the tunnel proof");
		return;
	}
	t->proof_len = NS_PROOF_LEN;
	if (t->role == TUN_ROLE_SUBSCRIBER && !t->pooled)
		/* a client is waiting: OPEN rides with the proof, no round trip */
		t->proof_len += agent_link_open_marker(t, t->proof_out + NS_PROOF_LEN);
	agent_sock_tune(t->tw.fd);
	proof_io(t);
}

/* Send what is left of our proof; false if the tunnel was closed. */
static bool proof_send(struct agent_tunnel *t, __u32 *events)
{
	ssize_t n;

	while (t->proof_sent < t->proof_len) {
		n = send(t->tw.fd, t->proof_out + t->proof_sent, t->proof_len - t->proof_sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			*events |= EPOLLOUT;
			break;
		}
		if (n < 0) {
			proof_failed(t, strerror(errno));
			return false;
		}
		t->proof_sent += n;
	}
	return true;
}

static void proof_io(struct agent_tunnel *t)
{
	/*
	 * Relay path: the relay answers the provider's (side A's) SYN first,
	 * so the subscriber is the last one established. A segment from the
	 * provider that reaches the subscriber still in SYN-SENT is dropped
	 * and costs a retransmission timeout (>= 200 ms): on the relay path
	 * the provider sends its proof only after the subscriber's arrived.
	 */
	bool second = t->path == NS_PATH_RELAY && t->role == 0;
	__u32 events = 0;
	ssize_t n;

	if (!second && !proof_send(t, &events))
		return;
	/* Exactly the proof: what follows it is application data. */
	while (t->proof_got < NS_PROOF_LEN) {
		n = recv(t->tw.fd, t->proof_in + t->proof_got, NS_PROOF_LEN - t->proof_got,
			 MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			events |= EPOLLIN;
			break;
		}
		if (n <= 0) {
			proof_failed(t, n ? strerror(errno) : "closed before its proof");
			return;
		}
		t->proof_got += n;
	}
	if (t->proof_got == NS_PROOF_LEN && !t->proof_ok) {
		if (ns_tunnel_proof_check(t->key, t->session, !t->role, t->proof_in)) {
			proof_failed(t, "bad proof");
			return;
		}
		t->proof_ok = true;
	}
	if (second && t->proof_ok && !proof_send(t, &events))
		return;
	if (!events) {
		link_up(t);
		return;
	}
	if (agent_tunnel_watch(t, &t->tw, events))
		agent_tunnel_close(t, true, "epoll");
}

/* ---- dialling ---- */

/*
 * A punched path (include/ns_proto.h, "TCP hole punching"): both agents
 * connect at once, and the SYNs must cross. A SYN that reaches the other
 * NAT before the other side's own left it is refused there, and that NAT
 * keeps the refused connection (closed) for a while: a SYN on the same
 * ports gets nowhere after that. So both sides move, in step, to the next
 * pair of ports every PUNCH_SLOT_MS (each port + 1) until one pair gets
 * through or the set-up deadline passes.
 */
#define PUNCH_SLOT_MS	250

static void punch_close(struct agent_tunnel *t)
{
	if (t->tw.fd >= 0) {
		if (t->tw_reg)
			ns_loop_del(t->a->loop, &t->tw);
		close(t->tw.fd);
		t->tw.fd = -1;
	}
	t->tw_reg = false;
}

static void on_punch_slot(struct ns_loop *l, struct ns_timer *tm)
{
	struct agent_tunnel *t = tm->data;

	if (t->state != TUN_DIALING)
		return;		/* up (or on its way): this pair of ports got through */
	punch_close(t);
	t->punch_k++;
	t->bind_port = t->punch_base[0] + t->punch_k;
	ns_sockaddr_set_port(&t->peer, t->punch_base[1] + t->punch_k);
	log_debug("punched path: not through yet, ports %u -> %u next (attempt %u)",
		  t->bind_port, ns_sockaddr_port(&t->peer), t->punch_k + 1);
	agent_link_dial(t);
}

/* A refused or failed SYN of a punched path: wait for the next slot. */
static bool punch_again(struct agent_tunnel *t)
{
	if (t->path != NS_PATH_PUNCH)
		return false;
	punch_close(t);
	t->state = TUN_DIALING;
	return true;
}

static void on_punch_first(struct ns_loop *l, struct ns_timer *tm)
{
	agent_link_dial(tm->data);
}

void agent_link_dial_later(struct agent_tunnel *t, __u32 ms)
{
	t->state = TUN_DIALING;
	ns_timer_cancel(t->a->loop, &t->rtx);
	ns_timer_init(&t->rtx, on_punch_first, t);
	ns_timer_arm(t->a->loop, &t->rtx, ms);
}

/* The first dial of a punched path starts the slots. */
static void punch_start(struct agent_tunnel *t)
{
	if (t->path != NS_PATH_PUNCH || t->punch_started)
		return;
	t->punch_started = true;
	t->punch_k = 0;
	t->punch_base[0] = t->bind_port;
	t->punch_base[1] = ns_sockaddr_port(&t->peer);
	ns_timer_cancel(t->a->loop, &t->rtx);
	ns_timer_init(&t->rtx, on_punch_slot, t);
}

void agent_link_dial(struct agent_tunnel *t)
{
	char label[LABEL_LEN], ps[AGENT_SA_STRLEN];
	int fd, one = 1, err;

	agent_tunnel_label(t, label, sizeof(label));
	agent_sa_str(&t->peer, ps, sizeof(ps));
	t->state = TUN_DIALING;
	punch_start(t);
	if (t->path == NS_PATH_PUNCH)
		ns_timer_arm(t->a->loop, &t->rtx, PUNCH_SLOT_MS);
	fd = socket(t->peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	t->tw.fd = fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (t->bind_port) {
		struct sockaddr_storage ss;
		__u32 any[4] = {};
		socklen_t sl;

		/* pure splice: the relay expects this source port */
		sl = ns_sockaddr_make(t->peer.ss_family, any, htons(t->bind_port), &ss);
		if (bind(fd, (struct sockaddr *)&ss, sl)) {
			log_warn("%s: bind to source port %u: %s", label, t->bind_port,
				 strerror(errno));
			goto close;
		}
	}
	if (connect(fd, (const struct sockaddr *)&t->peer,
		    t->peer.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6)) &&
	    errno != EINPROGRESS)
		goto fail;
	t->state = TUN_DIALING;
	err = agent_tunnel_watch(t, &t->tw, EPOLLOUT);
	if (err) {
		errno = -err;
		goto fail;
	}
	return;
fail:
	if (punch_again(t))
		return;
	log_warn("%s: connect to %s: %s", label, ps, strerror(errno));
close:
	if (t->path == NS_PATH_PUNCH && agent_tunnel_retry(t, "cannot bind its port"))
		return;
	if (t->role == TUN_ROLE_SUBSCRIBER && !t->pooled)
		log_warn("connect %s: tunnel failed (client closed)", agent_tunnel_service(t));
	agent_tunnel_close(t, true, "cannot connect to the peer");
}

/* Events on the tunnel socket while the link is being set up. */
void agent_link_on_event(struct agent_tunnel *t, __u32 events)
{
	char label[LABEL_LEN], ps[AGENT_SA_STRLEN];
	socklen_t sl = sizeof(int);
	int soerr = 0;

	switch (t->state) {
	case TUN_DIALING:
		if (getsockopt(t->tw.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
			if (punch_again(t))
				return;
			log_warn("%s: connect to %s: %s",
				 agent_tunnel_label(t, label, sizeof(label)),
				 agent_sa_str(&t->peer, ps, sizeof(ps)),
				 strerror(soerr ? soerr : errno));
			if (agent_tunnel_retry(t, "cannot connect to the peer"))
				return;
			if (t->role == TUN_ROLE_SUBSCRIBER && !t->pooled)
				log_warn("connect %s: tunnel failed (client closed)",
					 agent_tunnel_service(t));
			agent_tunnel_close(t, true, "cannot connect to the peer");
			return;
		}
		if (t->public) {
			/* the relay spliced us to the client: it speaks to the target */
			log_info("%s: public client spliced (relay path)",
				 agent_tunnel_label(t, label, sizeof(label)));
			agent_link_target(t);
			return;
		}
		proof_start(t);
		break;
	case TUN_PROOF:
		proof_io(t);
		break;
	case TUN_OPEN:
		open_read(t);
		break;
	default:
		/* TUN_TARGET: watched for errors only; the peer gave up. */
		agent_tunnel_close(t, true, "the peer closed the tunnel");
		break;
	}
}

/* ---- accepting on tunnel-listen ---- */

static void incoming_free(struct agent_incoming *in, bool rst)
{
	struct agent *a = in->a;

	ns_timer_cancel(a->loop, &in->timer);
	if (in->w.fd >= 0) {
		ns_loop_del(a->loop, &in->w);
		if (rst)
			agent_sock_rst(in->w.fd);
		close(in->w.fd);
	}
	if (in->prev)
		in->prev->next = in->next;
	else
		a->incoming = in->next;
	if (in->next)
		in->next->prev = in->prev;
	a->nincoming--;
	free(in);
}

static __u64 incoming_session(const struct agent_incoming *in)
{
	__u64 session = 0;
	__u8 role;

	ns_tunnel_proof_peek(in->proof, &session, &role);
	return session;
}

enum { IN_OTHER, IN_REFUSED, IN_TAKEN };

/*
 * Does the proof of in belong to t? IN_TAKEN: t took the connection (and t
 * may be gone already: it went on to the next step). IN_REFUSED: a proof
 * for t from the wrong address or with a bad HMAC, closed; t keeps waiting
 * for its real peer. IN_OTHER: not for t.
 */
static int incoming_offer(struct agent_incoming *in, struct agent_tunnel *t)
{
	char label[LABEL_LEN], fs[AGENT_SA_STRLEN], ps[AGENT_SA_STRLEN];
	__u32 zero[4] = {}, addr[4];
	__u64 session;
	__be16 port;
	__u8 family, role;

	if (ns_tunnel_proof_peek(in->proof, &session, &role) || t->state != TUN_WAIT_PEER ||
	    !t->has_session || t->session != session || t->role != !role)
		return IN_OTHER;
	agent_tunnel_label(t, label, sizeof(label));
	agent_sa_str(&in->from, fs, sizeof(fs));
	ns_sockaddr_split(&t->peer, &family, addr, &port);
	if (memcmp(addr, zero, sizeof(zero)) && !agent_sa_same_ip(&in->from, &t->peer)) {
		log_warn("%s: tunnel proof failed (from %s, the broker announced %s); closed",
			 label, fs, agent_sa_str(&t->peer, ps, sizeof(ps)));
		incoming_free(in, true);
		return IN_REFUSED;
	}
	if (ns_tunnel_proof_check(t->key, t->session, !t->role, in->proof)) {
		log_warn("%s: tunnel proof failed (bad proof from %s); closed", label, fs);
		incoming_free(in, true);
		return IN_REFUSED;
	}
	memcpy(t->proof_in, in->proof, NS_PROOF_LEN);
	t->proof_got = NS_PROOF_LEN;
	t->proof_ok = true;
	t->tw.fd = in->w.fd;
	ns_loop_del(in->a->loop, &in->w);
	in->w.fd = -1;
	incoming_free(in, false);
	log_debug("%s: peer connected from %s", label, fs);
	proof_start(t);
	return IN_TAKEN;
}

void agent_link_expect(struct agent_tunnel *t)
{
	struct agent_incoming *in, *next;

	for (in = t->a->incoming; in; in = next) {
		next = in->next;
		if (in->got == NS_PROOF_LEN && incoming_offer(in, t) == IN_TAKEN)
			return;
	}
}

static void on_incoming_timer(struct ns_loop *l, struct ns_timer *tm)
{
	struct agent_incoming *in = tm->data;
	char fs[AGENT_SA_STRLEN];

	agent_sa_str(&in->from, fs, sizeof(fs));
	if (in->got == NS_PROOF_LEN)
		log_warn("tunnel from %s for session #%016" PRIx64 ": no such session here; "
			 "closed", fs, (uint64_t)incoming_session(in));
	else
		log_debug("tunnel from %s: no proof in time; closed", fs);
	incoming_free(in, true);
}

static void on_incoming(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent_incoming *in = w->data;
	struct agent_tunnel *t;
	char fs[AGENT_SA_STRLEN];
	__u64 session;
	__u8 role;
	ssize_t n;

	agent_sa_str(&in->from, fs, sizeof(fs));
	if (in->got == NS_PROOF_LEN) {
		/* parked, watched for errors only */
		log_debug("tunnel from %s: closed while waiting for its session", fs);
		incoming_free(in, false);
		return;
	}
	while (in->got < NS_PROOF_LEN) {
		n = recv(w->fd, in->proof + in->got, NS_PROOF_LEN - in->got, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0 && in->got == 0) {
			log_debug("tunnel-listen: %s connected and closed (a probe)", fs);
			incoming_free(in, false);
			return;
		}
		if (n <= 0) {
			log_warn("tunnel from %s: tunnel proof failed (%s); closed", fs,
				 n ? strerror(errno) : "closed before the whole proof");
			incoming_free(in, true);
			return;
		}
		in->got += n;
	}
	if (ns_tunnel_proof_peek(in->proof, &session, &role)) {
		log_warn("tunnel from %s: tunnel proof failed (not a natsplice proof); closed", fs);
		incoming_free(in, true);
		return;
	}
	for (t = in->a->tunnels; t; t = t->next)
		if (incoming_offer(in, t) != IN_OTHER)
			return;
	/* CONNECT_INFO not here yet: park it, not reading a byte more. */
	log_debug("tunnel from %s: session #%016" PRIx64 " not known yet; waiting", fs,
		  (uint64_t)session);
	ns_loop_mod(in->a->loop, w, 0);
}

static void on_tunnel_accept(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent *a = w->data;
	int i;

	for (i = 0; i < 64; i++) {
		struct sockaddr_storage ss = {};
		socklen_t sl = sizeof(ss);
		struct agent_incoming *in;
		int fd;

		fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		in = a->nincoming < INCOMING_MAX ? calloc(1, sizeof(*in)) : NULL;
		if (!in) {
			log_debug("tunnel-listen: too many unproven connections; one refused");
			agent_sock_rst(fd);
			close(fd);
			continue;
		}
		in->a = a;
		in->from = ss;
		in->w.fd = fd;
		in->w.fn = on_incoming;
		in->w.data = in;
		ns_timer_init(&in->timer, on_incoming_timer, in);
		in->next = a->incoming;
		if (in->next)
			in->next->prev = in;
		a->incoming = in;
		a->nincoming++;
		if (ns_loop_add(a->loop, &in->w, EPOLLIN)) {
			in->w.fd = -1;
			close(fd);
			incoming_free(in, false);
			continue;
		}
		ns_timer_arm(a->loop, &in->timer, a->cfg->connect_timeout_s * 1000);
	}
}

int agent_tunnel_listen_open(struct agent *a)
{
	const struct agent_cfg *c = a->cfg;
	char as[AGENT_SA_STRLEN];
	int fd, err;

	if (!c->has_tunnel_listen)
		return 0;
	agent_sa_str(&c->tunnel_listen, as, sizeof(as));
	fd = agent_sock_bound(&c->tunnel_listen, SOCK_STREAM, false);
	err = fd < 0 ? fd : 0;
	if (!err) {
		a->tl_w.fd = fd;
		a->tl_w.fn = on_tunnel_accept;
		a->tl_w.data = a;
		err = ns_loop_add(a->loop, &a->tl_w, EPOLLIN);
	}
	if (err) {
		log_err("tunnel-listen: cannot listen on %s: %s", as, strerror(-err));
		if (fd >= 0)
			close(fd);
		a->tl_w.fd = -1;
		return err;
	}
	log_info("tunnel-listen: accepting tunnels on %s", as);
	return 0;
}

void agent_link_close_incoming(struct agent *a)
{
	while (a->incoming)
		incoming_free(a->incoming, false);
}

void agent_tunnel_listen_close(struct agent *a)
{
	agent_link_close_incoming(a);
	if (a->tl_w.fd >= 0) {
		ns_loop_del(a->loop, &a->tl_w);
		close(a->tl_w.fd);
		a->tl_w.fd = -1;
	}
}
