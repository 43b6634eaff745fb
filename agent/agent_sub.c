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
				log_warn("subscribe %s: accept: %s", lis->cfg->service,
					 strerror(errno));
			return;
		}
		agent_pool_client(lis);
		if (agent_pool_take(lis, fd, &ss) == 0)
			continue;
		if (!agent_broker_up(a)) {
			/* Nobody to ask: the client learns it at once. */
			log_warn("connect %s: client %s refused: not connected to the broker",
				 lis->cfg->service, agent_sa_str(&ss, cs, sizeof(cs)));
			agent_sock_rst(fd);
			close(fd);
			continue;
		}
		agent_tunnel_subscribe(lis, fd, &ss);
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

static void on_udp(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent_listener *lis = w->data;
	struct agent *a = lis->a;
	char cs[AGENT_SA_STRLEN];
	int i;

	for (i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage ss = {};
		socklen_t sl = sizeof(ss);
		struct agent_tunnel *t;
		ssize_t n;

		n = recvfrom(w->fd, a->buf, AGENT_UDP_MAX, MSG_DONTWAIT, (struct sockaddr *)&ss,
			     &sl);
		if (n < 0)
			return;
		t = udp_find(lis, &ss);
		if (!t) {
			if (!agent_broker_up(a)) {
				__u64 now = ns_now_ns();

				if (!lis->warned_ns || now - lis->warned_ns >= WARN_EVERY_NS) {
					lis->warned_ns = now;
					log_warn("connect %s: datagrams from %s dropped: not "
						 "connected to the broker", lis->cfg->service,
						 agent_sa_str(&ss, cs, sizeof(cs)));
				}
				continue;
			}
			t = agent_tunnel_subscribe(lis, -1, &ss);
			if (!t)
				continue;
			t->lnext = lis->udp;
			lis->udp = t;
		}
		agent_fwd_udp_in(t, a->buf, n);
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

static int listen_one(struct agent *a, struct agent_listener *lis)
{
	const struct agent_sub *s = lis->cfg;
	int type = s->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	char as[AGENT_SA_STRLEN];
	int fd, one = 1, err;

	agent_sa_str(&s->listen, as, sizeof(as));
	fd = socket(s->listen.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&s->listen, s->listen_len) ||
	    (type == SOCK_STREAM && listen(fd, SOMAXCONN)))
		goto fail;
	lis->w.fd = fd;
	lis->w.fn = type == SOCK_STREAM ? on_tcp_accept : on_udp;
	lis->w.data = lis;
	err = ns_loop_add(a->loop, &lis->w, EPOLLIN);
	if (err) {
		errno = -err;
		goto fail;
	}
	log_info("subscribe %s: listening on %s %s", s->service, proto_name(s->proto), as);
	return 0;
fail:
	err = -errno;
	log_err("subscribe %s: cannot listen on %s %s: %s", s->service, proto_name(s->proto),
		as, strerror(errno));
	if (fd >= 0)
		close(fd);
	lis->w.fd = -1;
	return err;
}

int agent_listeners_open(struct agent *a)
{
	size_t i;
	int err;

	a->lis = calloc(a->cfg->nsub ? a->cfg->nsub : 1, sizeof(*a->lis));
	if (!a->lis)
		return -ENOMEM;
	for (i = 0; i < a->cfg->nsub; i++) {
		a->lis[i].a = a;
		a->lis[i].cfg = &a->cfg->sub[i];
		a->lis[i].w.fd = -1;
		agent_pool_init(&a->lis[i]);
	}
	for (i = 0; i < a->cfg->nsub; i++) {
		err = listen_one(a, &a->lis[i]);
		if (err)
			return err;
	}
	return 0;
}

void agent_listeners_close(struct agent *a)
{
	size_t i;

	if (!a->lis)
		return;
	for (i = 0; i < a->cfg->nsub; i++) {
		struct agent_listener *lis = &a->lis[i];

		/* UDP tunnels reply through this socket: they go first. */
		while (lis->udp)
			agent_tunnel_close(lis->udp, false, "stopping");
		agent_pool_stop(lis);
		if (lis->w.fd >= 0) {
			ns_loop_del(a->loop, &lis->w);
			close(lis->w.fd);
			lis->w.fd = -1;
		}
	}
	free(a->lis);
	a->lis = NULL;
}
