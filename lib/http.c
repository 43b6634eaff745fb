// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A daemon's HTTP server: libmicrohttpd in the event loop, bounded, with
 * bearer tokens (lib/http.h says how).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "natsplice_abi.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "util.h"

struct ns_http {
	struct ns_http_cfg cfg;
	struct ns_loop *loop;
	struct MHD_Daemon *d;
	int lfd;
	struct ns_watch w;
	struct ns_timer t;
	char name[NS_ADDRSTRLEN + 8];	/* "IP:PORT", for the log */
};

/* A request with a body, between the calls that bring it. */
struct req_body {
	char *buf;
	size_t len;
	bool too_big;
};

static enum MHD_Result respond_hdr(struct MHD_Connection *c, unsigned int status, char *body,
				   size_t len, const char *type, const char *hname,
				   const char *hval)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (hname)
		MHD_add_response_header(r, hname, hval);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result ns_http_respond(struct MHD_Connection *c, unsigned int status, char *body,
				size_t len, const char *type)
{
	return respond_hdr(c, status, body, len, type, NULL, NULL);
}

enum MHD_Result ns_http_respond_text(struct MHD_Connection *c, unsigned int status,
				     const char *text)
{
	char *body = strdup(text);

	return body ? ns_http_respond(c, status, body, strlen(body), NS_HTTP_TYPE_TEXT) : MHD_NO;
}

enum MHD_Result ns_http_not_allowed(struct MHD_Connection *c, const char *allow)
{
	char *body = strdup("method not allowed\n");

	return body ? respond_hdr(c, MHD_HTTP_METHOD_NOT_ALLOWED, body, strlen(body),
				  NS_HTTP_TYPE_TEXT, MHD_HTTP_HEADER_ALLOW, allow) : MHD_NO;
}

FILE *ns_http_body_open(struct ns_http_body *b)
{
	b->buf = NULL;
	b->len = 0;
	b->f = open_memstream(&b->buf, &b->len);
	return b->f;
}

enum MHD_Result ns_http_respond_body(struct MHD_Connection *c, unsigned int status,
				     struct ns_http_body *b, const char *type)
{
	int bad = ferror(b->f);

	if (fclose(b->f) || bad || !b->buf) {
		free(b->buf);
		return ns_http_respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	return ns_http_respond(c, status, b->buf, b->len, type);
}

/* RFC 6750 3: the scheme, and invalid_token when a wrong one came. */
static enum MHD_Result unauthorized(struct MHD_Connection *c, bool had_header)
{
	char *body = strdup("unauthorized: needs Authorization: Bearer TOKEN\n");

	return body ? respond_hdr(c, MHD_HTTP_UNAUTHORIZED, body, strlen(body), NS_HTTP_TYPE_TEXT,
				  MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				  had_header ? "Bearer realm=\"natsplice\", error=\"invalid_token\"" :
					       "Bearer realm=\"natsplice\"") : MHD_NO;
}

/* Keep at most max bytes of a body; the rest is read and dropped. */
static void body_add(struct req_body *rb, const char *data, size_t n, size_t max)
{
	char *p;

	if (rb->too_big || rb->len + n > max) {
		rb->too_big = true;
		return;
	}
	p = realloc(rb->buf, rb->len + n + 1);
	if (!p) {
		rb->too_big = true;
		return;
	}
	memcpy(p + rb->len, data, n);
	rb->len += n;
	p[rb->len] = '\0';
	rb->buf = p;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **ctx)
{
	struct ns_http *h = cls;
	struct req_body *rb = *ctx;
	struct ns_http_req req = { .conn = c, .url = url, .method = method };
	const char *auth;
	bool get = !strcmp(method, MHD_HTTP_METHOD_GET) ||
		   !strcmp(method, MHD_HTTP_METHOD_HEAD);

	if (!rb) {
		/* The headers are in: refuse before reading any body. */
		if (!get && !h->cfg.max_body)
			return ns_http_not_allowed(c, "GET, HEAD");
		if (get && h->cfg.public_fn) {
			bool served = false;
			enum MHD_Result r = h->cfg.public_fn(h->cfg.data, &req, &served);

			if (served)
				return r;
		}
		auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_AUTHORIZATION);
		if (!ns_http_token_ok(h->cfg.tokens, auth)) {
			log_debug("http: %s %s: %s token", method, url, auth ? "wrong" : "no");
			return unauthorized(c, auth != NULL);
		}
		if (get)
			return h->cfg.fn(h->cfg.data, &req);
		rb = calloc(1, sizeof(*rb));
		if (!rb)
			return MHD_NO;
		*ctx = rb;
		return MHD_YES;
	}
	if (*upload_data_size) {
		body_add(rb, upload_data, *upload_data_size, h->cfg.max_body);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rb->too_big)
		return ns_http_respond_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
	req.body = rb->buf ? rb->buf : "";
	req.body_len = rb->len;
	return h->cfg.fn(h->cfg.data, &req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
			 enum MHD_RequestTerminationCode why)
{
	struct req_body *rb = *ctx;

	if (rb) {
		free(rb->buf);
		free(rb);
		*ctx = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_debug("http: %s", msg);
}

/* Run MHD, then sleep until its next deadline (idle connections, pipelined requests). */
static void http_run(struct ns_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(h->d);
	if (MHD_get_timeout(h->d, &ms) == MHD_YES)
		ns_timer_arm(h->loop, &h->t, ms);
	else
		ns_timer_cancel(h->loop, &h->t);
}

static void on_http(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	http_run(w->data);
}

static void on_http_timer(struct ns_loop *l, struct ns_timer *t)
{
	http_run(t->data);
}

static int http_listen(struct ns_http *h)
{
	const struct ns_http_cfg *c = &h->cfg;
	int one = 1, err;

	h->lfd = socket(c->addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0)
		return -errno;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->lfd, (const struct sockaddr *)c->addr, c->addr_len) ||
	    listen(h->lfd, NS_HTTP_CONN_LIMIT)) {
		err = -errno;
		log_err("%s: listen on %s: %s", c->what, h->name, strerror(-err));
		return err;
	}
	return 0;
}

int ns_http_start(struct ns_loop *l, const struct ns_http_cfg *cfg, struct ns_http **out)
{
	const union MHD_DaemonInfo *info;
	struct ns_http *h;
	int err;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->cfg = *cfg;
	h->loop = l;
	h->lfd = h->w.fd = -1;
	ns_timer_init(&h->t, on_http_timer, h);
	ns_sockaddr_str(cfg->addr, h->name, sizeof(h->name));
	err = http_listen(h);
	if (err)
		goto out;
	h->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
				(cfg->addr->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_LISTEN_SOCKET, h->lfd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)NS_HTTP_CONN_LIMIT,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)NS_HTTP_PER_IP,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)NS_HTTP_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)NS_HTTP_MEM_LIMIT,
				MHD_OPTION_END);
	err = -EIO;
	if (!h->d) {
		log_err("%s: cannot start the HTTP server", cfg->what);
		goto out;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		log_err("%s: no epoll fd from libmicrohttpd", cfg->what);
		goto out;
	}
	h->w.fd = info->epoll_fd;
	h->w.fn = on_http;
	h->w.data = h;
	err = ns_loop_add(l, &h->w, EPOLLIN);
	if (err) {
		h->w.fd = -1;
		goto out;
	}
	if (!cfg->tokens || !cfg->tokens->n)
		log_warn("%s on %s is open to anyone who reaches it: no %s", cfg->what, h->name,
			 cfg->tokens_key);
	http_run(h);
	*out = h;
out:
	if (err)
		ns_http_stop(h);
	return err;
}

void ns_http_stop(struct ns_http *h)
{
	if (!h)
		return;
	if (h->w.fd >= 0)
		ns_loop_del(h->loop, &h->w);
	ns_timer_cancel(h->loop, &h->t);
	if (h->d)
		MHD_stop_daemon(h->d);	/* closes the listen socket it was given */
	else if (h->lfd >= 0)
		close(h->lfd);
	free(h);
}

int ns_http_local(const struct ns_http *h, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	return getsockname(h->lfd, (struct sockaddr *)ss, &len) ? -errno : 0;
}
