/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A framed, non-blocking protocol connection: reads whole messages out of a
 * byte stream (the header's length is checked before the body is buffered)
 * and queues outgoing ones. Used by broker, agent and relay alike.
 */
#ifndef NS_LIB_CONN_H
#define NS_LIB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include "proto.h"

#define NS_CONN_WBUF_MAX (4 << 20)	/* bytes queued for a slow peer before it is dropped */

struct ns_conn {
	int fd;
	__u8 *rbuf;
	size_t rlen, rcap, rconsumed;
	__u8 *wbuf;
	size_t wlen, wcap, woff;
};

/* Takes ownership of fd (non-blocking). */
int ns_conn_init(struct ns_conn *c, int fd);
void ns_conn_free(struct ns_conn *c);		/* closes fd; safe on a zeroed conn */
/* Read what the socket has: 0, or -ECONNRESET/-EPIPE (peer closed) or -errno. */
int ns_conn_read(struct ns_conn *c);
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
