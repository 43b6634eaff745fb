/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Application layer gateways: rewrite the addresses an application writes
 * into its payload (FTP's PORT/PASV, SIP's Via/Contact/SDP) so that the
 * application on the other side of a tunnel reaches them through an agent.
 *
 * An ALG instance runs in each agent on the control connection of a service
 * that names one. Each agent rewrites what it delivers to its local
 * application (NS_ALG_IN: tunnel -> local app); in NS_ALG_OUT (local app ->
 * tunnel) an ALG only restores values it rewrote earlier that the local app
 * echoes back. Pure code: no sockets, no event loop; the agent feeds bytes and
 * sends what comes out. agent/ALG.md describes the model and each ALG.
 */
#ifndef NS_AGENT_ALG_H
#define NS_AGENT_ALG_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <sys/socket.h>

#define NS_ALG_LINE_MAX		1024	/* bytes: longest FTP line held, LF included */
#define NS_ALG_MSG_MAX		65535	/* bytes: longest SIP message held or sent */
#define NS_ALG_LOG_BURST	8	/* problems logged as warnings per connection */
#define NS_ALG_LABEL_MAX	64	/* bytes: env->label, NUL included */

enum ns_alg_dir { NS_ALG_IN = 0, NS_ALG_OUT = 1 };
enum ns_alg_side { NS_ALG_SUBSCRIBER = 0, NS_ALG_PROVIDER = 1 };

/* Growable output; zero it before first use. */
struct ns_alg_buf {
	__u8 *data;
	size_t len, cap;
};
int ns_alg_buf_put(struct ns_alg_buf *b, const void *p, size_t len);	/* 0 / -ENOMEM */
int ns_alg_buf_printf(struct ns_alg_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));				/* 0 / -ENOMEM */
void ns_alg_buf_free(struct ns_alg_buf *b);				/* safe when zeroed */

/* What an ALG instance knows of its connection; open() copies it. */
struct ns_alg_env {
	void *arg;				/* handed back to expect() */
	enum ns_alg_side side;
	struct sockaddr_storage local;		/* this agent's address facing the local app */
	struct sockaddr_storage app;		/* the local app (S: the client, P: the target) */
	char label[NS_ALG_LABEL_MAX];		/* log prefix, e.g. the service; may be "" */
	/*
	 * The remote app announced (proto, remote_port) on its host: open a local
	 * alias that forwards to the control connection's far-end host at that
	 * port; write it to *alias (pair: alias and alias+1, alias even, for RTP
	 * and RTCP). 0 or -errno (-ENOSPC: the flow limit is reached).
	 * FTP's 229 reply carries only a port: the client connects to the
	 * control connection's address at it, so an alias for a subscriber's FTP
	 * must be on env->local's address. SIP over UDP retransmits and
	 * re-INVITEs repeat an SDP: the same (proto, remote_port, pair) may come
	 * again while its alias is open, and should get that alias back.
	 */
	int (*expect)(void *arg, __u8 proto, __u16 remote_port, bool pair,
		      struct sockaddr_storage *alias);
};

struct ns_alg_ops {
	const char *name;			/* "ftp", "sip" */
	/* Per-connection state (env copied); NULL with errno: ENOMEM, EINVAL (env
	 * without expect, SIP: local or app not IPv4/IPv6), EPROTONOSUPPORT (FTP
	 * over datagrams). */
	void *(*open)(const struct ns_alg_env *env, bool datagram);
	/*
	 * Bytes (stream) or one whole datagram (datagram mode) in direction dir;
	 * appends what must be delivered to out. Stream mode may hold a partial
	 * line/message and emit it on a later call. Datagram mode: out gets the
	 * rewritten datagram or nothing (dropped). 0, or -errno only for fatal
	 * errors (ENOMEM): the agent then closes the connection.
	 */
	int (*feed)(void *st, enum ns_alg_dir dir, const __u8 *in, size_t len,
		    struct ns_alg_buf *out);
	/* The stream ended in dir: what is held goes to out, unmodified. */
	int (*flush)(void *st, enum ns_alg_dir dir, struct ns_alg_buf *out);
	void (*close)(void *st);		/* safe on NULL */
};

const struct ns_alg_ops *ns_alg_find(const char *name);	/* NULL: unknown */
const char *ns_alg_names(void);				/* "ftp, sip" */

extern const struct ns_alg_ops ns_alg_ftp;
extern const struct ns_alg_ops ns_alg_sip;

/* ---- helpers shared by the ALGs (alg.c) ---- */

/*
 * Problems with a peer's payload, logged with the ALG's name and the label:
 * the first NS_ALG_LOG_BURST of a connection as warnings, the rest at debug
 * level, so that a peer sending garbage cannot flood the log.
 */
struct ns_alg_log {
	const char *alg;
	const char *label;			/* points into the instance's env copy */
	unsigned int n;
};
void ns_alg_warn(struct ns_alg_log *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The start of a peer's text for a log line: at most 40 bytes, controls as '.'. */
const char *ns_alg_excerpt(const void *p, size_t len, char *buf, size_t cap);
#define NS_ALG_EXCERPT_MAX	48	/* cap that holds any excerpt */

/* The IP of ss as text ("192.0.2.1", "2001:db8::1"; IPv4-mapped as IPv4):
 * AF_INET / AF_INET6, or -EAFNOSUPPORT. buf of at least 46 bytes. */
int ns_alg_sa_ip(const struct sockaddr_storage *ss, char *buf, size_t len);
__u16 ns_alg_sa_port(const struct sockaddr_storage *ss);	/* host order */
/* "192.0.2.1:80" / "[2001:db8::1]:80" appended to b. 0 / -ENOMEM / -EAFNOSUPPORT. */
int ns_alg_put_hostport(struct ns_alg_buf *b, const struct sockaddr_storage *ss);
/* Length of the host[:port] at p (host: a name, IPv4 or [IPv6]; port: 1 to 5
 * digits), 0 when there is none. */
size_t ns_alg_hostport_len(const char *p, size_t len);
/* Strict decimal of len bytes, at most max: 0 or -EINVAL. */
int ns_alg_num(const char *p, size_t len, __u32 max, __u32 *v);
/* Case-insensitive: do the len bytes at p start with the NUL-terminated s? */
bool ns_alg_prefix(const char *p, size_t len, const char *s);

/*
 * An SDP body (alg_sdp.c) as the local app must see it: each media stream
 * gets an alias from env->expect (UDP; RTP with RTCP as a pair), c= lines the
 * aliases' address, m= and a=rtcp lines their ports; a stream without an
 * alias gets port 0. 0 or -ENOMEM.
 */
int ns_alg_sdp_rewrite(const struct ns_alg_env *env, struct ns_alg_log *log,
		       const char *sdp, size_t len, struct ns_alg_buf *out);

/*
 * Stream line splitting with a bounded hold: whole lines (LF included) go to
 * fn, which appends what to deliver to out. A line longer than
 * NS_ALG_LINE_MAX is not held: its bytes pass unmodified up to its LF.
 */
struct ns_alg_lines {
	char buf[NS_ALG_LINE_MAX];
	size_t len;
	bool skip;				/* inside an over-long line */
	struct ns_alg_log *log;			/* over-long lines are reported here */
};
/* fn: 0, -errno (fatal), or NS_ALG_LINES_RAW: the rest of this input passes
 * unmodified (the stream stopped being text) and the caller splits no more. */
#define NS_ALG_LINES_RAW	1
typedef int (*ns_alg_line_fn)(void *arg, const char *line, size_t len,
			      struct ns_alg_buf *out);
int ns_alg_lines_feed(struct ns_alg_lines *l, const __u8 *in, size_t len,
		      ns_alg_line_fn fn, void *arg, struct ns_alg_buf *out);
/* What is held, unmodified, to out; 0 / -ENOMEM. */
int ns_alg_lines_flush(struct ns_alg_lines *l, struct ns_alg_buf *out);

#endif
