// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A framed, non-blocking protocol connection. The read buffer holds at most
 * one maximal message (header + NS_PROTO_MAX_BODY): it grows only while the
 * message at its head has a valid header and is not complete, so a peer
 * announcing a huge body is refused before any of that body is buffered.
 *
 * Use level-triggered EPOLLIN: ns_conn_read() stops early when the buffer is
 * full (drain it with ns_conn_next()) and, when a read brought data and end
 * of file together, returns the data first and the end of file on the next
 * call.
 *
 * Over TLS the same buffers hold plain text: reads go through ns_tls_read()
 * until it says -EAGAIN, writes through ns_tls_write(), which accepts the
 * retry of a write with the buffer moved or grown (tls.c sets
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER): the unsent bytes stay at wbuf + woff
 * until a write takes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "tls.h"

#define RBUF_MIN	4096
#define RBUF_MAX	(NS_PROTO_HDR_LEN + NS_PROTO_MAX_BODY)
#define WBUF_KEEP	65536	/* an empty write buffer larger than this is released */

int ns_conn_init(struct ns_conn *c, int fd)
{
	int fl;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	/* An allocated rbuf also marks the conn initialised for ns_conn_free(). */
	c->rbuf = malloc(RBUF_MIN);
	if (!c->rbuf) {
		errno = ENOMEM;
		goto fail;
	}
	c->rcap = RBUF_MIN;
	return 0;
fail:
	fl = -errno;
	close(fd);
	c->fd = -1;
	return fl;
}

void ns_conn_free(struct ns_conn *c)
{
	SSL_free(c->ssl);
	if (c->rbuf && c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
	free(c->tls_err);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

int ns_conn_set_tls(struct ns_conn *c, struct ssl_st *ssl)
{
	c->tls_err = calloc(1, NS_TLS_ERR_LEN);
	if (!c->tls_err) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	c->ssl = ssl;
	c->tls_hs_done = false;
	return 0;
}

int ns_conn_handshake(struct ns_conn *c)
{
	int err;

	if (!c->ssl || c->tls_hs_done)
		return 0;
	err = ns_tls_handshake(c->ssl, c->tls_err, NS_TLS_ERR_LEN);
	c->tls_rd_wants_write = err == -EAGAIN && ns_tls_want_write(c->ssl);
	if (err == -EAGAIN)
		return 1;
	if (!err)
		c->tls_hs_done = true;
	return err;
}

bool ns_conn_rpending(const struct ns_conn *c)
{
	return c->ssl && c->tls_hs_done && ns_tls_pending(c->ssl);
}

const char *ns_conn_strerror(const struct ns_conn *c, int err)
{
	if (err == -EPROTO && c->tls_err && c->tls_err[0])
		return c->tls_err;
	return strerror(-err);
}

void ns_conn_shutdown(struct ns_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->ssl)
		ns_tls_close_notify(c->ssl);
	shutdown(c->fd, SHUT_WR);
}

/* One read from the socket or the TLS layer: bytes, 0 at end of file,
 * -EAGAIN, or -errno. */
static ssize_t conn_recv(struct ns_conn *c, void *buf, size_t len)
{
	ssize_t n;

	if (!c->ssl) {
		n = recv(c->fd, buf, len, MSG_DONTWAIT);
		return n >= 0 ? n : errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	n = ns_tls_read(c->ssl, buf, len, c->tls_err, NS_TLS_ERR_LEN);
	if (n == -EAGAIN)
		c->tls_rd_wants_write = ns_tls_want_write(c->ssl);
	return n == -ECONNRESET ? 0 : n;
}

static ssize_t conn_send(struct ns_conn *c, const void *buf, size_t len)
{
	ssize_t n;

	if (!c->ssl) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		return n >= 0 ? n : errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	return ns_tls_write(c->ssl, buf, len, c->tls_err, NS_TLS_ERR_LEN);
}

/* Does the buffer start with a header the peer may not send? */
/* The header at p: 0 with its body's length, or < 0 (ns_msg_hdr; -EMSGSIZE
 * also for a body longer than c->max_body). */
static int head_check(const struct ns_conn *c, const __u8 *p, __u32 *len)
{
	__u8 type;
	int err = ns_msg_hdr(p, &type, len);

	if (!err && c->max_body && *len > c->max_body)
		err = -EMSGSIZE;
	return err;
}

static bool head_invalid(const struct ns_conn *c)
{
	__u32 len;

	return c->rlen - c->rconsumed >= NS_PROTO_HDR_LEN &&
	       head_check(c, c->rbuf + c->rconsumed, &len) < 0;
}

static int rbuf_grow(struct ns_conn *c)
{
	size_t cap = c->rcap ? c->rcap * 2 : RBUF_MIN;
	__u8 *p;

	if (cap > RBUF_MAX)
		cap = RBUF_MAX;
	p = realloc(c->rbuf, cap);
	if (!p)
		return -ENOMEM;
	c->rbuf = p;
	c->rcap = cap;
	return 0;
}

/* May move the buffer: messages from ns_conn_next() are invalid afterwards. */
int ns_conn_read(struct ns_conn *c)
{
	size_t got = 0;
	ssize_t n;
	int err;

	if (c->ssl && !c->tls_hs_done)
		return 0;
	c->tls_rd_wants_write = false;
	if (c->rconsumed) {
		memmove(c->rbuf, c->rbuf + c->rconsumed, c->rlen - c->rconsumed);
		c->rlen -= c->rconsumed;
		c->rconsumed = 0;
	}
	for (;;) {
		if (head_invalid(c))
			return 0;	/* ns_conn_next() reports it */
		if (c->rlen == c->rcap) {
			/* Full: holds one maximal message, or complete ones to drain. */
			if (c->rcap >= RBUF_MAX)
				return 0;
			err = rbuf_grow(c);
			if (err)
				return err;
		}
		n = conn_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n > 0) {
			c->rlen += n;
			got += n;
			continue;
		}
		if (n == 0)
			return got ? 0 : -ECONNRESET;
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			return 0;
		return n;
	}
}

int ns_conn_next(struct ns_conn *c, struct ns_msg *m)
{
	const __u8 *p = c->rbuf + c->rconsumed;
	size_t avail = c->rlen - c->rconsumed;
	__u32 len;
	int err;

	if (avail == 0) {
		c->rlen = c->rconsumed = 0;
		return 0;
	}
	if (avail < NS_PROTO_HDR_LEN)
		return 0;
	err = head_check(c, p, &len);
	if (err)
		return err;
	if (avail < NS_PROTO_HDR_LEN + len)
		return 0;
	c->rconsumed += NS_PROTO_HDR_LEN + len;
	err = ns_msg_parse(m, p, NS_PROTO_HDR_LEN + len);
	return err ? err : 1;
}

int ns_conn_send(struct ns_conn *c, const struct ns_msg_buf *mb)
{
	size_t pending = c->wlen - c->woff;
	int err;

	if (mb->err)
		return mb->err;
	if (!mb->data || mb->len < NS_PROTO_HDR_LEN)
		return -EINVAL;
	if (pending + mb->len > NS_CONN_WBUF_MAX)
		return -ENOBUFS;
	if (c->woff) {
		memmove(c->wbuf, c->wbuf + c->woff, pending);
		c->wlen = pending;
		c->woff = 0;
	}
	if (c->wlen + mb->len > c->wcap) {
		size_t cap = c->wcap ? c->wcap : RBUF_MIN;
		__u8 *p;

		while (cap < c->wlen + mb->len)
			cap *= 2;
		p = realloc(c->wbuf, cap);
		if (!p)
			return -ENOMEM;
		c->wbuf = p;
		c->wcap = cap;
	}
	memcpy(c->wbuf + c->wlen, mb->data, mb->len);
	c->wlen += mb->len;
	err = ns_conn_flush(c);
	return err < 0 ? err : 0;
}

int ns_conn_flush(struct ns_conn *c)
{
	ssize_t n;

	/* Queued during the handshake: sent once it is done. */
	if (c->ssl && !c->tls_hs_done)
		return c->woff < c->wlen;
	while (c->woff < c->wlen) {
		n = conn_send(c, c->wbuf + c->woff, c->wlen - c->woff);
		if (n >= 0) {
			c->woff += n;
			continue;
		}
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			return 1;
		return n;
	}
	c->woff = c->wlen = 0;
	if (c->wcap > WBUF_KEEP) {
		free(c->wbuf);
		c->wbuf = NULL;
		c->wcap = 0;
	}
	return 0;
}

bool ns_conn_want_write(const struct ns_conn *c)
{
	if (c->ssl && !c->tls_hs_done)
		return c->tls_rd_wants_write;
	return c->woff < c->wlen || c->tls_rd_wants_write;
}
