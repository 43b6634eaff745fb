// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * NAT discovery's TCP connections and UDP reads (lib/disc_conn.h): the
 * broker's and a relay's discovery ports share them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "disc_conn.h"
#include "util.h"

void ns_disc_conn_free(struct ns_disc_conn *c)
{
	struct ns_disc_conns *set = c->set;
	struct ns_disc_conn **pp;

	for (pp = &set->head; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	set->n--;
	ns_timer_cancel(set->loop, &c->t);
	ns_loop_del(set->loop, &c->w);
	close(c->w.fd);
	free(c);
}

void ns_disc_conns_free(struct ns_disc_conns *set)
{
	while (set->head)
		ns_disc_conn_free(set->head);
}

static void on_timeout(struct ns_loop *l, struct ns_timer *t)
{
	ns_disc_conn_free(t->data);
}

static void on_conn(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct ns_disc_conn *c = w->data;
	ssize_t n;

	if (c->back) {
		/* connected (or not): the answer, then close */
		send(w->fd, c->ans, sizeof(c->ans), MSG_DONTWAIT | MSG_NOSIGNAL);
		ns_disc_conn_free(c);
		return;
	}
	n = recv(w->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			ns_disc_conn_free(c);
		return;
	}
	c->len += n;
	if (c->len < NS_DISC_REQ_MIN || c->len < 24u + c->buf[6])
		return;		/* more to come */
	c->set->on_request(c, c->set->data);
}

static struct ns_disc_conn *conn_new(struct ns_disc_conns *set, int fd, __u32 events)
{
	struct ns_disc_conn *c;

	if (set->n >= NS_DISC_CONNS || !(c = calloc(1, sizeof(*c)))) {
		close(fd);
		return NULL;
	}
	c->set = set;
	c->w = (struct ns_watch){ .fn = on_conn, .fd = fd, .data = c };
	ns_timer_init(&c->t, on_timeout, c);
	if (ns_loop_add(set->loop, &c->w, events)) {
		close(fd);
		free(c);
		return NULL;
	}
	ns_timer_arm(set->loop, &c->t, NS_DISC_CONN_MS);
	c->next = set->head;
	set->head = c;
	set->n++;
	return c;
}

void ns_disc_accept(struct ns_disc_conns *set, int lfd, unsigned int where)
{
	static __u32 next_id;
	struct ns_disc_conn *c;
	struct sockaddr_storage src;
	socklen_t sl = sizeof(src);
	int fd;

	while ((fd = accept4(lfd, (struct sockaddr *)&src, &sl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		c = conn_new(set, fd, EPOLLIN);
		if (c) {
			c->where = where;
			c->peer = src;
			c->id = ++next_id ? next_id : ++next_id;
		}
		sl = sizeof(src);
	}
}

int ns_disc_connect_back(struct ns_disc_conns *set, const struct sockaddr_storage *from,
			 const struct sockaddr_storage *to, const __u8 ans[NS_DISC_ANS_LEN])
{
	struct ns_disc_conn *c;
	int fd = ns_socket_bound(from, SOCK_STREAM, 3);

	if (fd < 0)
		return fd;
	if (connect(fd, (const struct sockaddr *)to, ns_sockaddr_len(to)) &&
	    errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	c = conn_new(set, fd, EPOLLOUT);
	if (!c)
		return -ENOMEM;
	c->back = true;
	c->peer = *to;
	memcpy(c->ans, ans, sizeof(c->ans));
	return 0;
}

struct ns_disc_conn *ns_disc_conn_find(struct ns_disc_conns *set, __u32 id)
{
	struct ns_disc_conn *c;

	for (c = set->head; c && (c->back || c->id != id); c = c->next)
		;
	return c;
}

void ns_disc_udp_each(int fd, void (*fn)(const __u8 *req, size_t len,
					 const struct sockaddr_storage *src, void *data),
		      void *data)
{
	__u8 req[NS_DISC_REQ_MAX + 1];
	struct sockaddr_storage src;
	socklen_t sl;
	ssize_t n;
	int k;

	for (k = 0; k < 64; k++) {
		sl = sizeof(src);
		n = recvfrom(fd, req, sizeof(req), MSG_DONTWAIT, (struct sockaddr *)&src, &sl);
		if (n < 0)
			return;
		fn(req, n, &src, data);
	}
}
