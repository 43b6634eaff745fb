/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The client side of the broker's control connection (include/ns_proto.h,
 * "Login"), one for every daemon that logs in to a broker: the relay and the
 * agent. It owns the connection's life: non-blocking connect, CHALLENGE,
 * LOGIN with the HMAC proof, heartbeats, the hold timer, reconnection with
 * jittered exponential backoff and a fresh login after every loss. It logs
 * the connection's events itself, so every daemon's log reads the same.
 * The connection is TLS 1.3 (lib/tls.h) unless configured insecure: the
 * broker's certificate is checked against a pin or a CA before LOGIN, and
 * the login proof covers the connection's TLS exporter.
 *
 * What the connection is for stays with the owner, told through callbacks:
 * logged in (with the broker's LOGIN_OK), a message that is not the client's
 * own business (services, sessions, splices, ERRORs about requests), and the
 * connection lost (with why). The owner sends through ns_bclient_send().
 */
#ifndef NS_LIB_BCLIENT_H
#define NS_LIB_BCLIENT_H

#include <stdbool.h>
#include <linux/types.h>
#include <sys/socket.h>

#include "loop.h"
#include "proto.h"

#define NS_BCLIENT_BACKOFF_MIN_MS	500	/* reconnect delay: first ... */
#define NS_BCLIENT_BACKOFF_MAX_MS	5000	/* ... and largest, before jitter */
#define NS_BCLIENT_HOLD_MIN_S		3	/* a shorter HOLD_TIME is raised to this */
#define NS_BCLIENT_LOGIN_TIMEOUT_S	NS_NEGOTIATE_TIMEOUT_S	/* connect to LOGIN_OK */
#define NS_BCLIENT_STR_MAX		255	/* bytes of a name or secret (a protocol STR) */

struct ns_bclient;

/* Why a connection ended, or never came up. */
enum ns_bclient_why {
	NS_BCLIENT_CONNECT,	/* socket() or connect() failed */
	NS_BCLIENT_CLOSED,	/* closed by the broker, or a read or send error */
	NS_BCLIENT_REFUSED,	/* ERROR instead of LOGIN_OK: code and text say why */
	NS_BCLIENT_LOGIN_TIMEOUT,	/* no LOGIN_OK within NS_BCLIENT_LOGIN_TIMEOUT_S */
	NS_BCLIENT_HOLD,	/* logged in, then nothing from the broker for the hold time */
	NS_BCLIENT_PROTOCOL,	/* malformed or unexpected message, no common version */
	NS_BCLIENT_DROPPED,	/* the owner called ns_bclient_drop() */
	NS_BCLIENT_TLS,		/* TLS handshake failed, or not the broker's certificate */
};

struct ns_bclient_loss {
	enum ns_bclient_why why;
	bool was_up;		/* the connection had logged in */
	__u32 code;		/* NS_BCLIENT_REFUSED: the broker's NS_ERR_*; else 0 */
	const char *text;	/* NS_BCLIENT_REFUSED: the broker's TEXT ("" without) */
	const char *msg;	/* the whole reason in words, as logged */
};

/* What the broker said in LOGIN_OK. */
struct ns_bclient_login {
	__u32 hold_s;			/* the hold time in force */
	bool has_observed;
	struct sockaddr_storage observed;	/* where the broker sees us come from */
	const struct ns_msg *msg;	/* the whole LOGIN_OK, valid during the call */
};

/*
 * The owner's callbacks; any may be NULL. From up, message and down the
 * owner may call ns_bclient_send(), ns_bclient_drop() and ns_bclient_stop(),
 * never ns_bclient_free().
 */
struct ns_bclient_ops {
	/* Add the role's own attributes to a LOGIN being built (RELAY_ADDR,
	 * LISTEN_PORT): ROLE, NAME, VERSION, PROOF, LOCAL_ADDR are there. */
	void (*login)(void *arg, struct ns_msg_buf *mb);
	/* Logged in; the backoff starts again from its minimum. */
	void (*up)(void *arg, const struct ns_bclient_login *login);
	/* A message after LOGIN_OK other than HEARTBEAT, ERRORs included. */
	void (*message)(void *arg, const struct ns_msg *m);
	/* The connection is gone (or an attempt failed): already logged and
	 * closed. The next attempt follows after the backoff unless the owner
	 * calls ns_bclient_stop() here. */
	void (*down)(void *arg, const struct ns_bclient_loss *loss);
};

struct ns_tls_client_cfg;

struct ns_bclient_cfg {
	struct sockaddr_storage addr;	/* the broker */
	socklen_t addrlen;
	__u8 role;			/* NS_ROLE_* */
	const char *name, *secret;	/* copied; at most NS_BCLIENT_STR_MAX bytes */
	/* How to authenticate the broker (lib/tls.h); NULL or insecure: plain
	 * text, and the client speaks first (a HEARTBEAT) so that the broker
	 * tells it from a TLS ClientHello. */
	const struct ns_tls_client_cfg *tls;
};

/* A client on loop l, not connecting yet: 0, -EINVAL (logged: a broker-ca
 * that does not load), -ENOMEM. */
int ns_bclient_new(struct ns_loop *l, const struct ns_bclient_cfg *cfg,
		   const struct ns_bclient_ops *ops, void *arg, struct ns_bclient **out);
/* Close without callbacks and free; safe on NULL; not from a callback. */
void ns_bclient_free(struct ns_bclient *b);
/* The first attempt, now; also after a ns_bclient_stop(). An attempt that
 * fails at once (no route, say) calls down before this returns. */
void ns_bclient_start(struct ns_bclient *b);
/* Close without callbacks; no more attempts until ns_bclient_start(). */
void ns_bclient_stop(struct ns_bclient *b);
/* Close this connection as lost (down is called before this returns) and
 * try again after the backoff: for a broker the owner no longer trusts. */
void ns_bclient_drop(struct ns_bclient *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool ns_bclient_up(const struct ns_bclient *b);
/*
 * Finish mb, queue it and free it: 0; -ENOTCONN when not logged in;
 * mb's own error (-ENOMEM, -E2BIG). A failure of the connection itself is
 * returned too, but reported through down only from the loop, later: the
 * caller may be in the middle of something down would tear apart.
 */
int ns_bclient_send(struct ns_bclient *b, struct ns_msg_buf *mb);

/* The delay before attempt number attempt + 1 after a loss (0 = the first
 * retry): 500 ms doubling to 5 s, times 0.75 + 0.5 * rnd / 2^32 (+-25 %). */
__u32 ns_bclient_backoff_ms(unsigned int attempt, __u32 rnd);

#endif
