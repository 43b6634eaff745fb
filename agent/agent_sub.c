// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Subscribe listeners: the local ports (like `ssh -L`) where clients of a
 * remote service connect. TCP: each accepted connection takes a ready tunnel
 * of the pool (agent_pool.c) or, with none ready, becomes a tunnel of its own.
 * UDP: each client source address:port gets its own tunnel, found again for
 * its next datagrams; replies go back from the same socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "agent.h"
#include "log.h"

#define ACCEPT_BURST	64	/* connections / datagrams taken per wake-up */
#define WARN_EVERY_NS	(10 * 1000000000ull)

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

/*
 * A session's listener serves the session's own application host only (the
 * client's host on the subscriber, the target's on the provider): another
 * host cannot take an FTP data connection or inject into a media flow.
 */
static bool stranger(struct agent_listener *lis, const struct sockaddr_storage *from)
{
	char cs[AGENT_SA_STRLEN];
	__u64 now;

	if (!lis->sess || agent_sa_same_ip(from, &lis->sess->app))
		return false;
	now = ns_now_ns();
	if (!lis->warned_ns || now - lis->warned_ns >= WARN_EVERY_NS) {
		lis->warned_ns = now;
		log_warn("session %s: %s from %s refused: not the session's host",
			 lis->sess->label, lis->proto == IPPROTO_UDP ? "datagrams" : "a connection",
			 agent_sa_str(from, cs, sizeof(cs)));
	}
	return true;
}

static void on_tcp_accept(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent_listener *lis = w->data;
	struct agent *a = lis->a;
	char cs[AGENT_SA_STRLEN];
	int i;

	for (i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss = {};
		socklen_t sl = sizeof(ss);
		int fd;

		fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("subscribe %s: accept: %s", agent_listener_name(lis),
					 strerror(errno));
			return;
		}
		if (stranger(lis, &ss)) {
			agent_sock_rst(fd);
			close(fd);
			continue;
		}
		if (lis->main == lis && !agent_session_of_client(lis, &ss)) {
			agent_pool_client(lis);
			if (agent_pool_take(lis, fd, &ss) == 0)
				continue;
		}
		if (!agent_broker_up(a)) {
			/* Nobody to ask: the client learns it at once. */
			log_warn("connect %s: client %s refused: not connected to the broker",
				 agent_listener_name(lis), agent_sa_str(&ss, cs, sizeof(cs)));
			agent_sock_rst(fd);
			close(fd);
			continue;
		}
		agent_tunnel_subscribe(lis, fd, &ss);
		if (lis->once) {
			agent_listener_close(lis);
			return;
		}
	}
}

static struct agent_tunnel *udp_find(struct agent_listener *lis,
				     const struct sockaddr_storage *from)
{
	struct agent_tunnel *t;

	for (t = lis->udp; t; t = t->lnext)
		if (agent_sa_equal(&t->client, from))
			return t;
	return NULL;
}

/* A datagram from a client of lis: to its tunnel (or a new one), queued in out. */
static void udp_client(struct agent_listener *lis, const struct sockaddr_storage *from,
		       const __u8 *data, size_t len, struct agent_dgram_out *out)
{
	struct agent *a = lis->a;
	char cs[AGENT_SA_STRLEN];
	struct agent_tunnel *t;

	if (stranger(lis, from))
		return;
	t = udp_find(lis, from);
	if (!t) {
		if (!agent_broker_up(a)) {
			__u64 now = ns_now_ns();

			if (!lis->warned_ns || now - lis->warned_ns >= WARN_EVERY_NS) {
				lis->warned_ns = now;
				log_warn("connect %s: datagrams from %s dropped: not connected to "
					 "the broker", agent_listener_name(lis),
					 agent_sa_str(from, cs, sizeof(cs)));
			}
			return;
		}
		t = agent_tunnel_subscribe(lis, -1, from);
		if (!t)
			return;
		t->lnext = lis->udp;
		lis->udp = t;
	}
	agent_fwd_udp_in(t, data, len, out);
}

static void on_udp(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent_listener *lis = w->data;
	struct agent *a = lis->a;
	struct agent_dgram_out out = { .fd = -1 };
	int i, j, n = AGENT_MMSG;

	/* a batch read, a batch sent: one client's datagrams share a tunnel */
	for (i = 0; i < ACCEPT_BURST && n == AGENT_MMSG; i += n) {
		n = agent_dgrams_recv(a, w->fd);
		for (j = 0; j < n; j++)
			udp_client(lis, &a->dg.from[j], a->dg.iov[j].iov_base, a->dg.m[j].msg_len,
				   &out);
		agent_dgram_flush(&out);
	}
}

void agent_listener_unlink(struct agent_tunnel *t)
{
	struct agent_tunnel **pp;

	for (pp = &t->lis->udp; *pp; pp = &(*pp)->lnext)
		if (*pp == t) {
			*pp = t->lnext;
			break;
		}
	t->lnext = NULL;
}

const char *agent_listener_name(const struct agent_listener *lis)
{
	return lis->sess ? lis->sess->label : lis->cfg->service;
}

/* Bind lis (addr, proto set) and watch it: 0 or -errno (logged). */
int agent_listener_open(struct agent *a, struct agent_listener *lis)
{
	int type = lis->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	struct sockaddr_storage got;
	socklen_t sl = sizeof(got);
	char as[AGENT_SA_STRLEN];
	int fd, err;

	lis->a = a;
	agent_sa_str(&lis->addr, as, sizeof(as));
	fd = agent_sock_bound(&lis->addr, type, false);
	err = fd < 0 ? fd : 0;
	if (!err && getsockname(fd, (struct sockaddr *)&got, &sl))
		err = -errno;
	if (!err) {
		lis->addr = got;	/* port 0: the one the kernel chose */
		lis->w.fd = fd;
		lis->w.fn = type == SOCK_STREAM ? on_tcp_accept : on_udp;
		lis->w.data = lis;
		err = ns_loop_add(a->loop, &lis->w, EPOLLIN);
	}
	if (err) {
		ns_log(lis->sess ? NS_LOG_WARN : NS_LOG_ERR, "%s %s: cannot listen on %s %s: %s",
		       lis->sess ? "session" : "subscribe", agent_listener_name(lis),
		       proto_name(lis->proto), as, strerror(-err));
		if (fd >= 0)
			close(fd);
		lis->w.fd = -1;
		return err;
	}
	ns_log(lis->sess ? NS_LOG_DEBUG : NS_LOG_INFO, "%s %s: listening on %s %s",
	       lis->sess ? "session" : "subscribe", agent_listener_name(lis),
	       proto_name(lis->proto), agent_sa_str(&lis->addr, as, sizeof(as)));
	return 0;
}

/* Stop listening; UDP tunnels that reply through it go first. */
void agent_listener_close(struct agent_listener *lis)
{
	while (lis->udp)
		agent_tunnel_close(lis->udp, false, "stopping");
	if (lis->w.fd >= 0) {
		ns_loop_del(lis->a->loop, &lis->w);
		close(lis->w.fd);
		lis->w.fd = -1;
	}
}

/* The subscription's extra ports (ports:), same numbers on the listen address. */
static int listen_extra(struct agent *a, struct agent_listener *main)
{
	const struct agent_ports *ps = &main->cfg->ports;
	__u16 main_port = ns_sockaddr_port(&main->addr);
	size_t i;
	int err;

	for (i = 0; i < ps->n; i++) {
		unsigned int port;

		for (port = ps->r[i].lo; port <= ps->r[i].hi; port++) {
			struct agent_listener *x;

			if (port == main_port && ps->r[i].proto == main->proto)
				continue;	/* the main listener is that port */
			x = calloc(1, sizeof(*x));
			if (!x)
				return -ENOMEM;
			x->cfg = main->cfg;
			x->main = main;
			x->addr = main->addr;
			ns_sockaddr_set_port(&x->addr, port);
			x->proto = ps->r[i].proto;
			x->flow_port = port;
			x->w.fd = -1;
			x->snext = main->snext;
			main->snext = x;
			err = agent_listener_open(a, x);
			if (err)
				return err;
		}
	}
	return 0;
}

/* A subscription's listeners (main and extra ports), open: NULL when out of
 * memory; a port that cannot be bound is logged and left closed. */
struct agent_listener *agent_sub_open(struct agent *a, const struct agent_sub *sub)
{
	struct agent_listener *lis = calloc(1, sizeof(*lis));

	if (!lis)
		return NULL;
	lis->a = a;
	lis->cfg = sub;
	lis->main = lis;
	lis->addr = sub->listen;
	lis->proto = sub->proto;
	lis->w.fd = -1;
	agent_pool_init(lis);
	if (!agent_listener_open(a, lis))
		listen_extra(a, lis);
	return lis;
}

void agent_sub_close(struct agent_listener *lis)
{
	struct agent_listener *x;

	for (x = lis->snext; x; x = x->snext)
		agent_listener_close(x);
	agent_listener_close(lis);
	agent_pool_stop(lis);
}

void agent_sub_free(struct agent_listener *lis)
{
	struct agent_listener *x;

	if (!lis)
		return;
	agent_sub_close(lis);
	while ((x = lis->snext)) {
		lis->snext = x->snext;
		free(x);
	}
	free(lis);
}

int agent_listeners_open(struct agent *a)
{
	size_t i;

	a->lis = calloc(a->cfg->nsub ? a->cfg->nsub : 1, sizeof(*a->lis));
	if (!a->lis)
		return -ENOMEM;
	for (i = 0; i < a->cfg->nsub; i++) {
		struct agent_listener *lis = agent_sub_open(a, &a->cfg->sub[i]);

		if (!lis)
			return -ENOMEM;
		a->lis[i] = lis;
		/* at start a port that cannot be bound ends it (a reload logs it and goes on) */
		if (lis->w.fd < 0)
			return -EADDRNOTAVAIL;
		for (lis = lis->snext; lis; lis = lis->snext)
			if (lis->w.fd < 0)
				return -EADDRNOTAVAIL;
	}
	return 0;
}

void agent_listeners_close(struct agent *a)
{
	size_t i;

	if (!a->lis)
		return;
	for (i = 0; i < a->cfg->nsub; i++)
		agent_sub_free(a->lis[i]);
	free(a->lis);
	a->lis = NULL;
}
