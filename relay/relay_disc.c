// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The relay's part of NAT behaviour discovery (discovery-port P; the
 * broker's discovery-relay; include/ns_proto.h, "NAT behaviour
 * discovery"): the relay's address is the second address of a broker that
 * has one. It listens on UDP and TCP P and P+1 and hands every request to
 * the broker (DISC_FWD, with the source it saw); it answers nothing itself,
 * since only the broker knows the agents' secrets that tag the answers. It
 * sends what the broker makes (DISC_SEND): a datagram from P or P+1, bytes
 * over a TCP connection an agent opened, or a connection of its own to an
 * agent's mapped address from P or P+2 (the filtering tests'
 * connect-backs).
 *
 * Bounded: requests forwarded at most DISC_FWD_RATE a second, sends the
 * same, NS_DISC_CONNS connections at once (lib/disc_conn.h); a
 * datagram is never larger than the request that caused it (the broker's
 * answers are NS_DISC_ANS_LEN bytes, requests at least NS_DISC_REQ_MIN).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "relay.h"
#include "bclient.h"
#include "disc_conn.h"
#include "log.h"
#include "natdisc.h"
#include "proto.h"
#include "util.h"

#define DISC_FWD_RATE	500	/* requests forwarded (and answers sent) a second */

struct relay_disc {
	struct ns_watch udp[2], tcp[2];	/* P, P+1 */
	struct ns_disc_conns conns;	/* agents' (where: P or P+1), connect-backs */
	__u8 family;			/* NS_AF_* of the address it listens on */
	const __u32 *addr;
	struct ns_gcra rate;
};

/* The relay's address at port P + pi. */
static void disc_sa(const struct relay *r, unsigned int pi, struct sockaddr_storage *ss)
{
	const struct relay_disc *d = r->disc;

	ns_sockaddr_make(d->family, d->addr, htons(r->cfg.disc_port + pi), ss);
}

static bool disc_allow(struct relay *r)
{
	return ns_rate_allow(&r->disc->rate, DISC_FWD_RATE, DISC_FWD_RATE / 5, ns_now_ns());
}

/* DISC_FWD { PROTO, PEER_ADDR, PORT_INDEX, DATA, [CONN_ID] } */
static void disc_forward(struct relay *r, __u8 proto, const struct sockaddr_storage *src,
			 unsigned int pi, const __u8 *req, size_t len, __u32 conn_id)
{
	struct ns_msg_buf mb;
	__u32 addr[4];
	__be16 port;
	__u8 family;

	if (!r->broker || !ns_bclient_up(r->broker) || !disc_allow(r))
		return;
	ns_sockaddr_split(src, &family, addr, &port);
	ns_mb_init(&mb, NS_MSG_DISC_FWD);
	ns_mb_u8(&mb, NS_A_PROTO, proto);
	ns_mb_addr(&mb, NS_A_PEER_ADDR, family, addr, ntohs(port));
	ns_mb_u8(&mb, NS_A_PORT_INDEX, pi);
	ns_mb_bin(&mb, NS_A_DATA, req, len);
	if (conn_id)
		ns_mb_u32(&mb, NS_A_CONN_ID, conn_id);
	ns_bclient_send(r->broker, &mb);
}

struct udp_in {
	struct relay *r;
	unsigned int pi;
};

static void on_datagram(const __u8 *req, size_t len, const struct sockaddr_storage *src,
			void *data)
{
	const struct udp_in *in = data;

	if (len >= NS_DISC_REQ_MIN && len <= NS_DISC_REQ_MAX)
		disc_forward(in->r, IPPROTO_UDP, src, in->pi, req, len, 0);
}

static void disc_on_udp(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct relay *r = w->data;
	struct udp_in in = { .r = r, .pi = w - r->disc->udp };

	ns_disc_udp_each(w->fd, on_datagram, &in);
}

/* A whole request on an agent's connection to P + c->where. */
static void disc_on_request(struct ns_disc_conn *c, void *data)
{
	disc_forward(data, IPPROTO_TCP, &c->peer, c->where, c->buf, c->len, c->id);
	c->len = 0;	/* the next request on the same connection */
}

static void disc_on_accept(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct relay *r = w->data;

	ns_disc_accept(&r->disc->conns, w->fd, w - r->disc->tcp);
}

void relay_disc_on_send(struct relay *r, const struct ns_msg *m)
{
	struct relay_disc *d = r->disc;
	struct sockaddr_storage to, from;
	struct ns_disc_conn *c;
	__u8 proto, family, pi = 0, ans[NS_DISC_ANS_LEN];
	__u32 addr[4], id;
	__u16 port;

	if (!d || ns_msg_u8(m, NS_A_PROTO, &proto) ||
	    ns_msg_addr(m, NS_A_PEER_ADDR, &family, addr, &port) || family != d->family ||
	    ns_msg_bin(m, NS_A_DATA, ans, sizeof(ans)) || !disc_allow(r)) {
		log_debug("discovery: DISC_SEND ignored (malformed, another family, or over "
			  "the rate)");
		return;
	}
	ns_msg_u8(m, NS_A_PORT_INDEX, &pi);
	ns_sockaddr_make(family, addr, htons(port), &to);
	if (proto == IPPROTO_UDP && pi < 2) {
		sendto(d->udp[pi].fd, ans, sizeof(ans), MSG_DONTWAIT, (struct sockaddr *)&to,
		       ns_sockaddr_len(&to));
	} else if (proto == IPPROTO_TCP && !ns_msg_u32(m, NS_A_CONN_ID, &id)) {
		c = ns_disc_conn_find(&d->conns, id);
		if (c)
			send(c->w.fd, ans, sizeof(ans), MSG_DONTWAIT | MSG_NOSIGNAL);
	} else if (proto == IPPROTO_TCP && (pi == 0 || pi == 2)) {
		disc_sa(r, pi, &from);
		ns_disc_connect_back(&d->conns, &from, &to, ans);
	}
}

/* The ports' watches, opened: 0, or -errno (logged). */
static int disc_listen(struct relay *r)
{
	struct relay_disc *d = r->disc;
	struct sockaddr_storage ss;
	unsigned int pi;
	int fd;

	for (pi = 0; pi < 2; pi++) {
		disc_sa(r, pi, &ss);
		fd = ns_socket_bound(&ss, SOCK_DGRAM, 1);
		if (fd < 0)
			goto fail;
		d->udp[pi] = (struct ns_watch){ .fn = disc_on_udp, .fd = fd, .data = r };
		if (ns_loop_add(r->loop, &d->udp[pi], EPOLLIN)) {
			fd = -ENOMEM;
			goto fail;
		}
		fd = ns_socket_bound(&ss, SOCK_STREAM, 3);
		if (fd < 0 || listen(fd, 64)) {
			if (fd >= 0)
				close(fd);
			fd = fd < 0 ? fd : -errno;
			goto fail;
		}
		d->tcp[pi] = (struct ns_watch){ .fn = disc_on_accept, .fd = fd, .data = r };
		if (ns_loop_add(r->loop, &d->tcp[pi], EPOLLIN)) {
			fd = -ENOMEM;
			goto fail;
		}
	}
	return 0;
fail:
	return fd;
}

/* r->disc on addr, listening: 0 or -errno (then none). */
static int disc_new(struct relay *r, __u8 family, const __u32 *addr)
{
	struct relay_disc *d = calloc(1, sizeof(*d));
	int err;

	if (!d)
		return -ENOMEM;
	d->udp[0].fd = d->udp[1].fd = d->tcp[0].fd = d->tcp[1].fd = -1;
	d->conns = (struct ns_disc_conns){ .loop = r->loop, .on_request = disc_on_request,
					   .data = r };
	d->family = family;
	d->addr = addr;
	r->disc = d;
	err = disc_listen(r);
	if (err)
		relay_disc_close(r);
	return err;
}

int relay_disc_open(struct relay *r)
{
	static const __u32 any[4];
	/* the family the relay tells the broker first (relay_broker.c) */
	__u8 family = r->cfg.has4 ? NS_AF_INET : NS_AF_INET6;
	int err;

	if (!r->cfg.disc_port)
		return 0;
	err = disc_new(r, family, relay_addr(r, family));
	if (err == -EADDRNOTAVAIL)	/* not the host's own (a cloud's 1:1 NAT in front) */
		err = disc_new(r, family, any);
	if (err)
		log_warn("discovery-port %u: %s: the broker cannot use this relay for NAT "
			 "discovery", r->cfg.disc_port, strerror(-err));
	return 0;	/* the relay relays anyway */
}

void relay_disc_close(struct relay *r)
{
	struct relay_disc *d = r->disc;
	unsigned int i;

	if (!d)
		return;
	ns_disc_conns_free(&d->conns);
	for (i = 0; i < 2; i++) {
		struct ns_watch *w[2] = { &d->udp[i], &d->tcp[i] };
		int k;

		for (k = 0; k < 2; k++)
			if (w[k]->fd >= 0) {
				ns_loop_del(r->loop, w[k]);
				close(w[k]->fd);
			}
	}
	free(d);
	r->disc = NULL;
}

bool relay_disc_on(const struct relay *r)
{
	return r->disc != NULL;
}
