/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A daemon's HTTP server (libmicrohttpd) inside its event loop (lib/loop.c),
 * with bearer-token authentication. The broker's API and dashboard and the
 * relay's /metrics use it.
 *
 * MHD runs with MHD_USE_EPOLL and no thread of its own: its epoll fd is one
 * more watch of the loop, its next deadline one more timer, and every
 * request is answered on the loop's thread, so a handler reads the daemon's
 * state without locks. It is bounded: NS_HTTP_CONN_LIMIT connections,
 * NS_HTTP_PER_IP from one address, a connection idle NS_HTTP_TIMEOUT_S
 * closed, a request line and headers of NS_HTTP_MEM_LIMIT bytes at most,
 * a body of cfg.max_body bytes at most (0: GET and HEAD only).
 *
 * Tokens (a listener's `<key>-tokens:` list: the broker's http-tokens, the
 * relay's metrics-tokens): with one or more, every request needs
 * `Authorization: Bearer TOKEN` with one of them (RFC 6750 2.1), compared in
 * constant time; else 401 with `WWW-Authenticate: Bearer`. With none the
 * server is open, and says so as a warning when it starts.
 *
 * The token part (ns_http_token_*) is in http_token.c, which needs no
 * libmicrohttpd: config code and unit tests link it alone.
 */
#ifndef NS_LIB_HTTP_H
#define NS_LIB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <microhttpd.h>

#define NS_HTTP_CONN_LIMIT	64	/* connections at once */
#define NS_HTTP_PER_IP		16	/* ... from one client address */
#define NS_HTTP_TIMEOUT_S	10	/* an idle connection is closed after this */
#define NS_HTTP_MEM_LIMIT	(16 * 1024)	/* bytes of a request line and headers */

#define NS_HTTP_TOKENS_MAX	16	/* tokens of one listener */
#define NS_HTTP_TOKEN_MIN	16	/* bytes of a token, at least ... */
#define NS_HTTP_TOKEN_MAX	128	/* ... and at most */

#define NS_HTTP_TYPE_TEXT	"text/plain; charset=utf-8"
#define NS_HTTP_TYPE_JSON	"application/json"
#define NS_HTTP_TYPE_PROM	"text/plain; version=0.0.4; charset=utf-8"

/* The tokens of one listener, in the daemon's config (flat: no free). */
struct ns_http_tokens {
	unsigned int n;
	char v[NS_HTTP_TOKENS_MAX][NS_HTTP_TOKEN_MAX + 1];
};

/* One more token (a setting's parse): 0, or -EINVAL with msg. A token is
 * NS_HTTP_TOKEN_MIN..NS_HTTP_TOKEN_MAX bytes of RFC 6750's b64token
 * (A-Z a-z 0-9 - . _ ~ + / and trailing =), e.g. `openssl rand -hex 32`. */
int ns_http_token_add(struct ns_http_tokens *t, const char *val, char *msg, size_t len);
/* An Authorization header value (NULL: none) grants access: true without
 * tokens; else "Bearer" (any case), spaces, one of the tokens. Every token
 * is compared, each in constant time (SHA-256 of both, CRYPTO_memcmp). */
bool ns_http_token_ok(const struct ns_http_tokens *t, const char *authorization);

/* The setting of a listener's tokens, for a daemon's ns_setting table;
 * parse wraps ns_http_token_add on the daemon's field. */
#define NS_HTTP_TOKENS_SETTING(key, parse_fn, listener)				\
	{ .name = key, .type = NS_SET_FUNC, .parse = parse_fn, .flags = NS_SET_REPEAT,	\
	  .what = "16-128 characters of A-Z a-z 0-9 - . _ ~ + / =", .arg = "TOKEN",	\
	  .help = "bearer tokens for " listener ": with any, a request needs "		\
		  "'Authorization: Bearer TOKEN' with one of them, else 401; without, "	\
		  "anyone who reaches it may read it (a warning at start). In the file a "	\
		  "list; on the command line (visible in ps) repeat the option" }

/* A request as a handler sees it. */
struct ns_http_req {
	struct MHD_Connection *conn;
	const char *url;
	const char *method;
	const char *body;	/* POST/PUT/...: the whole body (NUL-terminated) */
	size_t body_len;
};

/* Answer with one of the ns_http_respond* calls; MHD_NO closes the connection. */
typedef enum MHD_Result (*ns_http_fn)(void *data, struct ns_http_req *req);

struct ns_http_cfg {
	const char *what;		/* the log's name of it: "HTTP API", "metrics" */
	const char *tokens_key;		/* its tokens' setting, for the warning */
	const struct sockaddr_storage *addr;
	socklen_t addr_len;
	const struct ns_http_tokens *tokens;	/* NULL or none: open */
	size_t max_body;		/* 0: only GET and HEAD (else 405) */
	ns_http_fn fn;
	void *data;
	/* GETs it answers without a token (static files that hold no data,
	 * such as a page whose scripts then fetch with the token): the answer,
	 * or MHD_NO-and-*served-false to go on as usual. NULL: none. */
	enum MHD_Result (*public_fn)(void *data, struct ns_http_req *req, bool *served);
};

struct ns_loop;
struct ns_http;

/* Listen on cfg->addr and serve in the loop: 0 or -errno (logged). cfg's
 * pointers must outlive the server. */
int ns_http_start(struct ns_loop *l, const struct ns_http_cfg *cfg, struct ns_http **out);
void ns_http_stop(struct ns_http *h);	/* safe on NULL */
/* The address it listens on (the port chosen for port 0). */
int ns_http_local(const struct ns_http *h, struct sockaddr_storage *ss);

/* Answers. body is malloc'd and taken (freed on every path). */
enum MHD_Result ns_http_respond(struct MHD_Connection *c, unsigned int status, char *body,
				size_t len, const char *type);
enum MHD_Result ns_http_respond_text(struct MHD_Connection *c, unsigned int status,
				     const char *text);
/* 405 with Allow: allow (e.g. "GET, HEAD"). */
enum MHD_Result ns_http_not_allowed(struct MHD_Connection *c, const char *allow);

/* A body written with stdio: open, fprintf into f, respond. */
struct ns_http_body {
	FILE *f;
	char *buf;
	size_t len;
};
FILE *ns_http_body_open(struct ns_http_body *b);	/* NULL: out of memory */
/* Closes b->f and answers with its text, or 500 if it could not be written. */
enum MHD_Result ns_http_respond_body(struct MHD_Connection *c, unsigned int status,
				     struct ns_http_body *b, const char *type);

#endif
