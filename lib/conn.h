/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A framed, non-blocking protocol connection: reads whole messages out of a
 * byte stream (the header's length is checked before the body is buffered)
 * and queues outgoing ones. Used by broker, agent and relay alike. The
 * stream is the socket itself, or TLS over it (ns_conn_set_tls, lib/tls.h).
 */
#ifndef NS_LIB_CONN_H
#define NS_LIB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include "proto.h"

#define NS_CONN_WBUF_MAX (4 << 20)	/* bytes queued for a slow peer before it is dropped */

struct ssl_st;

struct ns_conn {
	int fd;
	struct ssl_st *ssl;		/* TLS over fd (owned), NULL: plain text */
	char *tls_err;			/* with ssl: the last TLS error's text */
	bool tls_hs_done;		/* the handshake finished */
	bool tls_rd_wants_write;	/* a TLS read (or handshake) waits for EPOLLOUT */
	__u32 max_body;			/* a longer message is -EMSGSIZE; 0: NS_PROTO_MAX_BODY */
	__u8 *rbuf;
	size_t rlen, rcap, rconsumed;
	__u8 *wbuf;
	size_t wlen, wcap, woff;
};

/* Takes ownership of fd (non-blocking). */
int ns_conn_init(struct ns_conn *c, int fd);
void ns_conn_free(struct ns_conn *c);		/* closes fd; safe on a zeroed conn */
/* Speak TLS over the socket from now on; takes ownership of ssl (made by
 * lib/tls.c on c->fd): 0 or -ENOMEM (ssl freed). */
int ns_conn_set_tls(struct ns_conn *c, struct ssl_st *ssl);
/* One step of the TLS handshake: 0 done (also without TLS), 1 in progress
 * (wait for EPOLLIN, and EPOLLOUT if ns_conn_want_write()), < 0 failed:
 * -EPROTO (ns_conn_strerror() tells OpenSSL's reason), -ECONNRESET. */
int ns_conn_handshake(struct ns_conn *c);
/*
 * Read what the socket has: 0, or -ECONNRESET/-EPIPE (peer closed) or
 * -errno (-EPROTO: a TLS record failed, see ns_conn_strerror()). Over TLS,
 * also call it on EPOLLOUT, and again after draining ns_conn_next() while
 * ns_conn_rpending(): a TLS record may have left bytes inside the SSL that
 * no EPOLLIN announces.
 */
int ns_conn_read(struct ns_conn *c);
bool ns_conn_rpending(const struct ns_conn *c);
/* err (< 0) of this conn in words: the TLS reason for -EPROTO, else strerror. */
const char *ns_conn_strerror(const struct ns_conn *c, int err);
/* Our half is done: TLS close_notify (best effort), then shutdown(SHUT_WR). */
void ns_conn_shutdown(struct ns_conn *c);
/*
 * The next complete message: 1 (m valid until the next call), 0 (need more
 * bytes), or < 0: -EMSGSIZE, -EPROTONOSUPPORT, -EINVAL, -EOPNOTSUPP (as
 * ns_msg_parse; the caller answers ERROR and closes this peer).
 */
int ns_conn_next(struct ns_conn *c, struct ns_msg *m);
/* Queue a finished message and try to send: 0 or -errno (-ENOBUFS: peer too slow). */
int ns_conn_send(struct ns_conn *c, const struct ns_msg_buf *mb);
/* Send what is queued: 0 all sent, 1 more pending (wait for EPOLLOUT), < 0 error. */
int ns_conn_flush(struct ns_conn *c);
bool ns_conn_want_write(const struct ns_conn *c);

#endif
