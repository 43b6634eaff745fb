// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * NAT behaviour discovery, the broker's side (include/ns_proto.h, "NAT
 * behaviour discovery"; lib/natdisc.h): UDP and TCP on the listen address
 * L and discovery-address D, each on discovery-port P and P+1, answer an
 * agent's request with the source they saw, tagged with the agent's
 * secret; UDP from the address and port the request's flags choose, TCP
 * over the same connection and, with CONNECT_BACK, also over a connection
 * the broker opens to that source from port P+2 of the chosen address.
 * Requests from names that are not agents get nothing; answers are
 * rate-limited and never larger than the request.
 *
 * With discovery-relay instead of discovery-address, D is that relay's
 * address (and P its discovery-port): the relay hands what comes to its
 * ports over (DISC_FWD) and sends what the broker makes (DISC_SEND); the
 * answers themselves are made here, as for L (relay/relay_disc.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "broker.h"
#include "disc_conn.h"
#include "natdisc.h"

#define DISC_RATE	1000	/* answers a second, all sockets */
/* The socket address of L or D (ai) and port P + pi. */
static socklen_t disc_sa(const struct broker *b, unsigned int ai, unsigned int pi,
			 struct sockaddr_storage *ss)
{
	const struct ns_ep *e = ai ? &b->disc_ep : &b->listen_ep;

	return ns_sockaddr_make(e->family, e->addr, htons(b->cfg->disc_port + pi), ss);
}

/* The relay standing in for D (discovery-relay), when it is logged in with
 * discovery ports of the listen address's family; else NULL. */
static struct peer *disc_relay(const struct broker *b)
{
	int idx;
	struct peer *r;

	if (!b->cfg->disc_relay[0] || (idx = cfg_relay_index(b->cfg, b->cfg->disc_relay)) < 0)
		return NULL;
	r = b->relays[idx];
	return r && !r->doomed && r->disc_port && r->relay_addr.family == b->listen_ep.family ?
	       r : NULL;
}

/* DISC_SEND to the discovery relay: ans to dst; UDP from its port P + pi,
 * TCP over its connection conn_id, or (conn_id 0) over one it opens from
 * P + pi. */
static void relay_send(struct broker *b, __u8 proto, unsigned int pi,
		       const struct sockaddr_storage *dst, const __u8 *ans, __u32 conn_id)
{
	struct peer *r = disc_relay(b);
	struct ns_msg_buf mb;
	__u32 addr[4];
	__be16 port;
	__u8 family;

	if (!r)
		return;
	ns_sockaddr_split(dst, &family, addr, &port);
	ns_mb_init(&mb, NS_MSG_DISC_SEND);
	ns_mb_u8(&mb, NS_A_PROTO, proto);
	ns_mb_addr(&mb, NS_A_PEER_ADDR, family, addr, ntohs(port));
	ns_mb_bin(&mb, NS_A_DATA, ans, NS_DISC_ANS_LEN);
	if (conn_id)
		ns_mb_u32(&mb, NS_A_CONN_ID, conn_id);
	else
		ns_mb_u8(&mb, NS_A_PORT_INDEX, pi);
	peer_send(r, &mb);
}

/* D is the discovery relay's (not ours)? */
static bool d_is_relay(const struct broker *b, unsigned int ai)
{
	return ai == 1 && !b->cfg->has_disc;
}

/* A UDP answer to dst from port P + pi of address ai (0 L, 1 D). */
static void disc_send_udp(struct broker *b, unsigned int ai, unsigned int pi,
			  const struct sockaddr_storage *dst, const __u8 *ans)
{
	if (d_is_relay(b, ai))
		relay_send(b, IPPROTO_UDP, pi, dst, ans, 0);
	else
		sendto(b->disc_udp[ai][pi].fd, ans, NS_DISC_ANS_LEN, MSG_DONTWAIT,
		       (const struct sockaddr *)dst, ns_sockaddr_len(dst));
}

static int disc_socket(const struct broker *b, int type, unsigned int ai, unsigned int pi)
{
	struct sockaddr_storage ss;

	disc_sa(b, ai, pi, &ss);
	return ns_socket_bound(&ss, type, type == SOCK_STREAM ? 3 : 1);
}

/* The answer to a request from src, in ans: 0, or -errno (not an agent's,
 * malformed, over the rate). */
static int disc_answer(struct broker *b, const __u8 *req, size_t len,
		       const struct sockaddr_storage *src, __u8 *flags, __u8 ans[NS_DISC_ANS_LEN])
{
	char name[BROKER_NAME_MAX + 1];
	__u8 nonce[NS_DISC_NONCE_LEN], family;
	__u32 addr[4];
	__be16 port;
	int idx;

	if (ns_disc_request_parse(req, len, flags, nonce, name, sizeof(name)) ||
	    (idx = cfg_agent_index(b->cfg, name)) < 0) {
		b->st.disc_ignored++;
		return -EINVAL;
	}
	if (!ns_rate_allow(&b->disc_rate, DISC_RATE, DISC_RATE / 5, ns_now_ns())) {
		b->st.disc_limited++;
		return -EAGAIN;
	}
	ns_sockaddr_split(src, &family, addr, &port);
	b->st.disc_answered++;
	return ns_disc_answer(ans, b->cfg->agents[idx].secret, *flags, nonce, family, addr,
			      ntohs(port));
}

/* A UDP request that came to port P + pi of address ai: the answer, from
 * where its flags say. */
static void disc_udp_request(struct broker *b, unsigned int ai, unsigned int pi,
			     const __u8 *req, size_t len, const struct sockaddr_storage *src)
{
	__u8 ans[NS_DISC_ANS_LEN], flags;

	if (!disc_answer(b, req, len, src, &flags, ans))
		disc_send_udp(b, ai ^ !!(flags & NS_DISC_CHANGE_IP),
			      pi ^ !!(flags & NS_DISC_CHANGE_PORT), src, ans);
}

struct udp_in {
	struct broker *b;
	unsigned int ai, pi;
};

static void on_datagram(const __u8 *req, size_t len, const struct sockaddr_storage *src,
			void *data)
{
	const struct udp_in *in = data;

	disc_udp_request(in->b, in->ai, in->pi, req, len, src);
}

static void disc_on_udp(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct broker *b = w->data;
	unsigned int i = w - &b->disc_udp[0][0];
	struct udp_in in = { .b = b, .ai = i / 2, .pi = i % 2 };

	ns_disc_udp_each(w->fd, on_datagram, &in);
}

/* CONNECT_BACK: a connection to src carrying ans, from port P+2 (P
 * without CHANGE_PORT) of the address the flags choose, ai the one the
 * request came in on. */
static void disc_connect_back(struct broker *b, unsigned int ai, __u8 flags,
			      const struct sockaddr_storage *src, const __u8 *ans)
{
	unsigned int to = ai ^ !!(flags & NS_DISC_CHANGE_IP), pi = flags & NS_DISC_CHANGE_PORT ? 2 : 0;
	struct sockaddr_storage from;

	b->st.disc_connect_backs++;
	if (d_is_relay(b, to)) {
		relay_send(b, IPPROTO_TCP, pi, src, ans, 0);
		return;
	}
	disc_sa(b, to, pi, &from);
	ns_disc_connect_back(&b->disc_conns, &from, src, ans);
}

/* A whole request on an agent's TCP connection to L or D (c->where). */
static void disc_on_request(struct ns_disc_conn *c, void *data)
{
	struct broker *b = data;
	__u8 flags;

	if (disc_answer(b, c->buf, c->len, &c->peer, &flags, c->ans)) {
		ns_disc_conn_free(c);
		return;
	}
	c->len = 0;	/* the next request on the same connection */
	send(c->w.fd, c->ans, sizeof(c->ans), MSG_DONTWAIT | MSG_NOSIGNAL);
	if (flags & NS_DISC_CONNECT_BACK)
		disc_connect_back(b, c->where, flags, &c->peer, c->ans);
}

static void disc_on_accept(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct broker *b = w->data;

	ns_disc_accept(&b->disc_conns, w->fd, (w - &b->disc_tcp[0][0]) / 2);
}

int discovery_start(struct broker *b)
{
	const struct broker_cfg *c = b->cfg;
	unsigned int ai, pi;
	int fd;

	for (ai = 0; ai < 2; ai++)
		for (pi = 0; pi < 2; pi++)
			b->disc_udp[ai][pi].fd = b->disc_tcp[ai][pi].fd = -1;
	b->disc_conns = (struct ns_disc_conns){ .loop = b->loop, .on_request = disc_on_request,
						.data = b };
	if (!c->has_disc && !c->disc_relay[0])
		return 0;
	if (c->has_disc)
		ns_sockaddr_split(&c->disc, &b->disc_ep.family, b->disc_ep.addr,
				  &(__be16){ 0 });
	if ((c->has_disc && b->listen_ep.family != b->disc_ep.family) ||
	    ns_addr_is_zero(b->listen_ep.addr)) {
		log_err("%s needs listen: on one address%s (the first of the two addresses "
			"discovery answers from)", c->has_disc ? "discovery-address" :
			"discovery-relay", c->has_disc ? " of the same family" : "");
		return -EINVAL;
	}
	for (ai = 0; ai < (c->has_disc ? 2u : 1u); ai++)
		for (pi = 0; pi < 2; pi++) {
			struct ns_watch *u = &b->disc_udp[ai][pi], *t = &b->disc_tcp[ai][pi];

			fd = disc_socket(b, SOCK_DGRAM, ai, pi);
			if (fd < 0)
				goto fail;
			*u = (struct ns_watch){ .fn = disc_on_udp, .fd = fd, .data = b };
			fd = disc_socket(b, SOCK_STREAM, ai, pi);
			if (fd < 0 || listen(fd, 64)) {
				if (fd >= 0)
					close(fd);
				fd = -errno;
				goto fail;
			}
			*t = (struct ns_watch){ .fn = disc_on_accept, .fd = fd, .data = b };
			if (ns_loop_add(b->loop, u, EPOLLIN) || ns_loop_add(b->loop, t, EPOLLIN)) {
				fd = -ENOMEM;
				goto fail;
			}
		}
	return 0;
fail:
	{
		char a[EP_STRLEN];
		struct ns_ep e = ai ? b->disc_ep : b->listen_ep;

		e.port = c->disc_port + pi;
		log_err("discovery: cannot open %s: %s", ep_str(&e, a, sizeof(a)), strerror(-fd));
	}
	return fd;
}

void discovery_stop(struct broker *b)
{
	unsigned int i;

	ns_disc_conns_free(&b->disc_conns);
	for (i = 0; i < 4; i++) {
		struct ns_watch *w[2] = { &b->disc_udp[0][0] + i, &b->disc_tcp[0][0] + i };
		int k;

		for (k = 0; k < 2; k++)
			if (w[k]->fd >= 0) {
				ns_loop_del(b->loop, w[k]);
				close(w[k]->fd);
				w[k]->fd = -1;
			}
	}
}

/* DISCOVERY to an agent that just logged in: where to send its requests. */
/* Will S keep its source port through its NAT (a pure splice)? What its
 * TCP discovery found; without one, what mode_choose (policy.c) guesses. */
int discovery_mode(const struct peer *S)
{
	const struct ns_nat_result *r = &S->nat[0];

	if (!S->reachable && (S->nat_known & 1) && r->tested)
		return !r->nat || r->preserve ? NS_MODE_PURE : NS_MODE_PASSIVE;
	return mode_choose(S->reachable, S->has_local ? &S->local : NULL, &S->observed);
}

/* What one agent's discovery must have found for a punch of that
 * transport (udp: 1): endpoint-independent mapping, the port kept. */
static bool punch_side(const struct peer *p, int udp, __u64 now)
{
	const struct ns_nat_result *r = &p->nat[udp];

	return (p->nat_known & (1 << udp)) && r->tested && r->mapping == NS_NAT_EI &&
	       r->preserve && now >= p->punch_fail_until_ns;
}

bool discovery_punchable(const struct session *s)
{
	int udp = s->transport == IPPROTO_UDP;
	__u64 now = ns_now_ns();

	return !s->b->cfg->no_punch && !s->public &&
	       s->prov->observed.family == s->sub->observed.family &&
	       punch_side(s->prov, udp, now) && punch_side(s->sub, udp, now);
}

/* UDP: whether p's NAT lets the other's first datagram in once p has sent
 * to the other's address (filtering by nothing or by address only), so
 * that p can answer instead of sending at the same moment (ns_proto.h). */
bool discovery_punch_waits(const struct peer *p)
{
	const struct ns_nat_result *r = &p->nat[1];

	return (p->nat_known & 2) && r->tested &&
	       (r->filtering == NS_NAT_EI || r->filtering == NS_NAT_AD);
}

void discovery_punch_failed(struct peer *S, struct peer *P)
{
	__u64 until = ns_now_ns() + NS_PUNCH_BACKOFF_S * 1000000000ULL;

	S->b->st.punch_failed++;
	S->punch_fail_until_ns = P->punch_fail_until_ns = until;
	log_info("%s -> %s: the punched path did not come up: relays for %u s", S->name,
		 P->name, NS_PUNCH_BACKOFF_S);
}

/* DISCOVERY { PEER_ADDR (L:P), ALT_ADDR (D:P) }: 0, -ENOTSUP (discovery
 * off), -EHOSTUNREACH (discovery-relay not logged in). */
static int offer(struct peer *p)
{
	struct broker *b = p->b;
	const struct peer *r = NULL;
	struct ns_msg_buf mb;

	if ((!b->cfg->has_disc && !b->cfg->disc_relay[0]) || b->disc_udp[0][0].fd < 0)
		return -ENOTSUP;
	if (!b->cfg->has_disc && !(r = disc_relay(b)))
		return -EHOSTUNREACH;
	ns_mb_init(&mb, NS_MSG_DISCOVERY);
	ns_mb_addr(&mb, NS_A_PEER_ADDR, b->listen_ep.family, b->listen_ep.addr,
		   b->cfg->disc_port);
	if (r)
		ns_mb_addr(&mb, NS_A_ALT_ADDR, r->relay_addr.family, r->relay_addr.addr,
			   r->disc_port);
	else
		ns_mb_addr(&mb, NS_A_ALT_ADDR, b->disc_ep.family, b->disc_ep.addr,
			   b->cfg->disc_port);
	if (!peer_send(p, &mb))
		p->disc_asked_ns = ns_now_ns();
	return 0;
}

void discovery_offer(struct peer *p)
{
	if (offer(p) == -EHOSTUNREACH)
		log_debug("agent %s: no NAT discovery until relay %s (discovery-relay) logs in",
			  p->name, p->b->cfg->disc_relay);
}

/* Asked, and neither answered nor given up on (the agent's tests are
 * bounded: NS_DISC_RUN_MAX_S covers them all with room to spare). */
bool discovery_running(const struct peer *p)
{
	return p->disc_asked_ns && ns_now_ns() - p->disc_asked_ns < NS_DISC_RUN_MAX_S * 1000000000ULL;
}

int discovery_again(struct peer *p)
{
	int err;

	if (discovery_running(p))
		return -EBUSY;
	err = offer(p);
	if (!err)
		log_info("agent %s: NAT discovery asked for again", p->name);
	return err;
}

void discovery_relay_online(struct peer *relay)
{
	struct broker *b = relay->b;
	size_t i;

	if (disc_relay(b) != relay)
		return;
	log_info("relay %s: NAT discovery's second address (%s port %u)", relay->name,
		 ns_addr_str(relay->relay_addr.family, relay->relay_addr.addr,
			     (char[NS_ADDRSTRLEN]){ 0 }, NS_ADDRSTRLEN), relay->disc_port);
	for (i = 0; i < b->cfg->nagents; i++) {
		struct peer *p = b->agents[i];

		if (p && !p->doomed && !p->nat_known && !discovery_running(p))
			offer(p);
	}
}

/* DISC_FWD { PROTO, PEER_ADDR, PORT_INDEX, DATA, [CONN_ID] }: a request
 * that came to the discovery relay's port P + PORT_INDEX (D's). */
void discovery_on_fwd(struct peer *relay, const struct ns_msg *m)
{
	struct broker *b = relay->b;
	__u8 proto, family, pi, flags, ans[NS_DISC_ANS_LEN];
	struct sockaddr_storage src;
	const __u8 *req;
	size_t pos = 0;
	__u32 addr[4], conn = 0;
	__u16 port, len;

	if (disc_relay(b) != relay || ns_msg_u8(m, NS_A_PROTO, &proto) ||
	    ns_msg_addr(m, NS_A_PEER_ADDR, &family, addr, &port) ||
	    ns_msg_u8(m, NS_A_PORT_INDEX, &pi) || pi > 1 ||
	    ns_msg_next(m, NS_A_DATA, &pos, &req, &len) != 1 ||
	    (proto == IPPROTO_TCP && ns_msg_u32(m, NS_A_CONN_ID, &conn)) ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP)) {
		b->st.disc_ignored++;
		return;
	}
	ns_sockaddr_make(family, addr, htons(port), &src);
	if (proto == IPPROTO_UDP) {
		disc_udp_request(b, 1, pi, req, len, &src);
		return;
	}
	if (disc_answer(b, req, len, &src, &flags, ans))
		return;
	relay_send(b, IPPROTO_TCP, 0, &src, ans, conn);
	if (flags & NS_DISC_CONNECT_BACK)
		disc_connect_back(b, 1, flags, &src, ans);
}

/* NAT_INFO { NAT { PROTO, [MAPPING, FILTERING, PRESERVE, HAIRPIN, PEER_ADDR] }... }
 * from an agent: what its tests found (no MAPPING: no answer came). */
void discovery_on_report(struct peer *p, const struct ns_msg *m)
{
	struct ns_nat_result r;
	const __u8 *val;
	struct ns_msg sub;
	size_t pos = 0;
	__u16 len;
	__u8 proto, v;
	char s[160];

	while (ns_msg_next(m, NS_A_NAT, &pos, &val, &len) == 1) {
		if (ns_msg_parse_nested(&sub, val, len) || ns_msg_u8(&sub, NS_A_PROTO, &proto) ||
		    (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
			continue;
		memset(&r, 0, sizeof(r));
		r.tested = !ns_msg_u8(&sub, NS_A_MAPPING, &r.mapping) && r.mapping <= NS_NAT_APD;
		if (r.tested) {
			if (ns_msg_u8(&sub, NS_A_FILTERING, &r.filtering) || r.filtering > NS_NAT_APD)
				r.filtering = NS_NAT_UNKNOWN;
			r.preserve = !ns_msg_u8(&sub, NS_A_PRESERVE, &v) && v;
			r.hairpin = !ns_msg_u8(&sub, NS_A_HAIRPIN, &v) && v;
			if (!ns_msg_addr(&sub, NS_A_PEER_ADDR, &r.family, r.addr, &r.port))
				r.nat = memcmp(r.addr, p->has_local ? p->local.addr : r.addr,
					       sizeof(r.addr)) != 0;
		}
		p->nat[proto == IPPROTO_UDP] = r;
		p->nat_known |= 1 << (proto == IPPROTO_UDP);
		p->nat_since = time(NULL);
		p->disc_asked_ns = 0;
		log_info("agent %s: NAT (%s): %s", p->name, proto == IPPROTO_UDP ? "udp" : "tcp",
			 ns_nat_str(&r, s, sizeof(s)));
	}
}

/* "ei/apd" for a session record: TCP's mapping/filtering, "" when not known. */
const char *discovery_short(const struct peer *p, char *buf, size_t len)
{
	const struct ns_nat_result *r = p ? &p->nat[0] : NULL;

	if (!r || !(p->nat_known & 1))
		snprintf(buf, len, "%s", "");
	else if (!r->tested)
		snprintf(buf, len, "blocked");
	else if (!r->nat)
		snprintf(buf, len, "no NAT, filtering %s", ns_nat_beh_name(r->filtering));
	else
		snprintf(buf, len, "%s/%s%s", ns_nat_beh_name(r->mapping),
			 ns_nat_beh_name(r->filtering), r->preserve ? ", port kept" : "");
	return buf;
}
