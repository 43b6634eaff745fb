/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TCP connections of NAT behaviour discovery (lib/natdisc.h), for the
 * broker's discovery ports and a relay's (discovery-relay): an agent's
 * connection that carries requests, each handed to the owner once whole,
 * and the owner's connect-backs, which send one answer and close. Bounded:
 * NS_DISC_CONNS at once, each NS_DISC_CONN_MS at most.
 */
#ifndef NS_LIB_DISC_CONN_H
#define NS_LIB_DISC_CONN_H

#include <stdbool.h>
#include <sys/socket.h>
#include <linux/types.h>

#include "loop.h"
#include "natdisc.h"

#define NS_DISC_CONNS	64	/* TCP discovery connections at once (both directions) */
#define NS_DISC_CONN_MS	5000	/* a TCP discovery connection's whole life */

struct ns_disc_conns;

struct ns_disc_conn {
	struct ns_watch w;
	struct ns_timer t;
	struct ns_disc_conns *set;
	struct ns_disc_conn *next;
	bool back;			/* a connect-back: send ans, then close */
	unsigned int where;		/* the owner's: the address or port it came in on */
	__u32 id;			/* the owner's name for it */
	struct sockaddr_storage peer;	/* who connected */
	__u8 buf[NS_DISC_REQ_MAX];
	size_t len;
	__u8 ans[NS_DISC_ANS_LEN];
};

struct ns_disc_conns {
	struct ns_loop *loop;
	struct ns_disc_conn *head;
	unsigned int n;
	/* A whole request is in c->buf (c->len bytes); c may be freed. */
	void (*on_request)(struct ns_disc_conn *c, void *data);
	void *data;
};

/* Accept what waits on the listening lfd: each a connection of set with
 * where. */
void ns_disc_accept(struct ns_disc_conns *set, int lfd, unsigned int where);
/* A connection from the address and port from to to, sending ans once
 * connected, then closing: 0 or -errno. */
int ns_disc_connect_back(struct ns_disc_conns *set, const struct sockaddr_storage *from,
			 const struct sockaddr_storage *to, const __u8 ans[NS_DISC_ANS_LEN]);
/* The agent's connection called id, or NULL. */
struct ns_disc_conn *ns_disc_conn_find(struct ns_disc_conns *set, __u32 id);
void ns_disc_conn_free(struct ns_disc_conn *c);
/* Up to 64 datagrams waiting on fd: fn for each (src: who sent it). */
void ns_disc_udp_each(int fd, void (*fn)(const __u8 *req, size_t len,
					 const struct sockaddr_storage *src, void *data),
		      void *data);
void ns_disc_conns_free(struct ns_disc_conns *set);	/* every connection */

#endif
