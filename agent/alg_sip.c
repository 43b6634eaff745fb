// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * SIP ALG (RFC 3261). What the remote UA wrote about itself is replaced,
 * before the local app sees it (IN), by addresses on this agent:
 *  - a request's Request-URI names the local app (env->app): the remote UA
 *    addressed the other agent, not the app;
 *  - the top Via's sent-by of a request becomes env->local, so that the
 *    local app sends its responses here (RFC 3261 18.2.2); the original is
 *    remembered by branch and put back when the response leaves (OUT), as
 *    the remote UA matches responses by its own Via (RFC 3261 17.1.3);
 *  - Contact URIs (requests and responses) become env->local, so that
 *    in-dialog requests come here;
 *  - an SDP body gets aliases for its media (alg_sdp.c), Content-Length is
 *    recomputed.
 * To/From (and Record-Route/Route) are left alone: they are identities
 * and proxy routes, not where this hop sends to.
 * UDP: one datagram is one message; a datagram that is SIP but malformed is
 * dropped (the sender retransmits or gives up, RFC 3261 18.3). TCP: messages
 * framed by Content-Length (RFC 3261 18.3) are held until complete, at most
 * NS_ALG_MSG_MAX bytes; one that cannot be rewritten passes unchanged.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "alg.h"
#include "log.h"

#define SIP_VIA_KEEP	64	/* top Vias remembered for the local app's responses */
#define SIP_BRANCH_MAX	96	/* bytes: longest branch remembered */
#define SIP_VIA_MAX	256	/* bytes: longest via-parm remembered */
#define SIP_BAD		1	/* the message cannot be rewritten (logged) */

/* A remote UA's top via-parm as it wrote it, by its branch. */
struct sip_via {
	char branch[SIP_BRANCH_MAX];
	size_t branch_len;
	char via[SIP_VIA_MAX];
	size_t via_len;				/* 0: slot unused */
};

/* One direction of a stream: a message held until it is complete. */
struct sip_hold {
	struct ns_alg_buf buf;
	size_t scanned;				/* bytes searched for the blank line */
	size_t hdr_len, total;			/* once the headers are in (total > 0) */
	size_t skip;				/* bytes of an over-size message to pass */
	bool raw;				/* framing lost: the rest passes unmodified */
};

struct sip {
	struct ns_alg_env env;
	struct ns_alg_log log;
	bool datagram;
	struct sip_hold hold[2];		/* by enum ns_alg_dir */
	struct sip_via via[SIP_VIA_KEEP];
	unsigned int via_next;			/* ring: the slot reused next */
};

struct sip_msg {
	const char *p;
	size_t hdr_len;				/* start line, headers, blank line */
	size_t start_len;			/* start line with its CRLF */
	const char *body;
	size_t body_len;
	bool request;
	const char *uri;			/* request: the Request-URI */
	size_t uri_len;
	bool sdp;				/* Content-Type: application/sdp */
};

/* One header: folded lines (RFC 3261 7.3.1) included. */
struct sip_hdr {
	const char *line;			/* name .. the final CRLF */
	const char *name;
	size_t name_len;
	const char *value;			/* after the colon and blanks */
	size_t value_len;			/* up to the final CRLF, trailing blanks off */
};

/* A header's new value, written from its old (unfolded) one. */
typedef int (*sip_value_fn)(struct sip *s, const char *v, size_t len, struct ns_alg_buf *out);

static int sip_warn(struct sip *s, const char *p, size_t len, const char *why,
		    const char *done)
{
	char ex[NS_ALG_EXCERPT_MAX];

	ns_alg_warn(&s->log, "%s (%s): %s", why, ns_alg_excerpt(p, len, ex, sizeof(ex)), done);
	return SIP_BAD;
}

/* The whole message cannot be rewritten: dropped (datagram) or passed. */
static int sip_bad(struct sip *s, const char *p, size_t len, const char *why)
{
	return sip_warn(s, p, len, why, s->datagram ? "message dropped" :
			"message passed unchanged");
}

/* One header or the start line stays as it was. */
static int sip_keep(struct sip *s, const char *p, size_t len, const char *why)
{
	return sip_warn(s, p, len, why, "left unchanged");
}

/* ---- lexical ---- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static size_t skip_ws(const char *p, size_t len, size_t i)
{
	while (i < len && is_ws(p[i]))
		i++;
	return i;
}

/* RFC 3261 25.1 token */
static size_t token_len(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)p[i]) && !strchr("-.!%*_+`'~", p[i]))
			break;
	return i;
}

/* A parameter value: a token, a host (IPv6 too) or a quoted string. */
static size_t value_len(const char *p, size_t len)
{
	size_t i;

	if (len && p[0] == '"') {
		for (i = 1; i < len && p[i] != '"'; i++)
			if (p[i] == '\\')
				i++;
		return i < len ? i + 1 : 0;
	}
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)p[i]) && !strchr("-.!%*_+`'~:[]", p[i]))
			break;
	return i;
}

/* Where a comma-separated list element starting at i ends (RFC 3261 7.3.1):
 * commas inside quotes or <> do not count. */
static size_t list_end(const char *p, size_t len, size_t i)
{
	for (; i < len && p[i] != ','; i++) {
		if (p[i] == '"' || p[i] == '<') {
			const char *close = NULL;

			if (p[i] == '<')
				close = memchr(p + i, '>', len - i);
			else if (value_len(p + i, len - i))
				close = p + i + value_len(p + i, len - i) - 1;
			if (!close)
				return len;
			i = close - p;
		}
	}
	return i;
}

/* p[0, len) with [at, at + n) replaced by ss as host:port. */
static int put_replaced(struct ns_alg_buf *out, const char *p, size_t len, size_t at, size_t n,
			const struct sockaddr_storage *ss)
{
	int err = ns_alg_buf_put(out, p, at);

	if (!err)
		err = ns_alg_put_hostport(out, ss);
	return err ? err : ns_alg_buf_put(out, p + at + n, len - at - n);
}

/* The host[:port] of a sip: or sips: URI (RFC 3261 19.1.1): its offset and
 * length. -EINVAL for other schemes or no host. */
static int sip_uri_host(const char *u, size_t len, size_t *at, size_t *n)
{
	const char *user_end;
	size_t s;

	if (ns_alg_prefix(u, len, "sip:"))
		s = 4;
	else if (ns_alg_prefix(u, len, "sips:"))
		s = 5;
	else
		return -EINVAL;
	/* '@' is escaped everywhere in a SIP URI but after the userinfo */
	user_end = memchr(u + s, '@', len - s);
	if (user_end)
		s = user_end - u + 1;
	*at = s;
	*n = ns_alg_hostport_len(u + s, len - s);
	if (!*n || (s + *n < len && u[s + *n] != ';' && u[s + *n] != '?'))
		return -EINVAL;
	return 0;
}

/* ---- message structure ---- */

/* The next header in p[*off, end): 1, 0 at the end, -EINVAL if malformed. */
static int sip_next_hdr(const char *p, size_t end, size_t *off, struct sip_hdr *h)
{
	size_t i = *off, j = *off, v;
	const char *crlf;

	if (i >= end)
		return 0;
	do {
		crlf = memmem(p + j, end - j, "\r\n", 2);
		if (!crlf)
			return -EINVAL;
		j = crlf - p + 2;
	} while (j < end && is_ws(p[j]));
	h->line = p + i;
	h->name = p + i;
	h->name_len = token_len(p + i, j - i);
	v = skip_ws(p, j, i + h->name_len);
	if (!h->name_len || p[v] != ':')
		return -EINVAL;
	v = skip_ws(p, j - 2, v + 1);
	h->value = p + v;
	h->value_len = j - 2 - v;
	while (h->value_len && is_ws(h->value[h->value_len - 1]))
		h->value_len--;
	*off = j;
	return 1;
}

/* Long name or compact form (RFC 3261 7.3.3), case-insensitive. */
static bool sip_hdr_is(const struct sip_hdr *h, const char *name, char compact)
{
	return (h->name_len == strlen(name) && !strncasecmp(h->name, name, h->name_len)) ||
	       (h->name_len == 1 && tolower((unsigned char)h->name[0]) == compact);
}

static size_t sip_start_len(const char *p, size_t hdr_len)
{
	return (const char *)memmem(p, hdr_len, "\r\n", 2) - p + 2;
}

/* Content-Length of the head p[0, hdr_len): *has false when absent. Copies
 * must agree: two lengths would frame the stream two ways. */
static int sip_content_length(const char *p, size_t hdr_len, __u32 *cl, bool *has)
{
	size_t off = sip_start_len(p, hdr_len);
	struct sip_hdr h;
	__u32 v;
	int r;

	*has = false;
	*cl = 0;
	while ((r = sip_next_hdr(p, hdr_len - 2, &off, &h)) > 0) {
		if (!sip_hdr_is(&h, "Content-Length", 'l'))
			continue;
		if (ns_alg_num(h.value, h.value_len, UINT32_MAX, &v) || (*has && v != *cl))
			return -EINVAL;
		*cl = v;
		*has = true;
	}
	return r;
}

/* "SIP/2.0 200 OK" or "INVITE sip:bob@example.com SIP/2.0" (RFC 3261 7.1, 7.2). */
static int sip_start(struct sip_msg *m)
{
	const char *sp, *sp2;
	size_t n;
	__u32 code;

	m->start_len = sip_start_len(m->p, m->hdr_len);
	n = m->start_len - 2;
	if (ns_alg_prefix(m->p, n, "SIP/2.0 ")) {
		m->request = false;
		if (n < 11 || ns_alg_num(m->p + 8, 3, 699, &code) || code < 100 ||
		    (n > 11 && m->p[11] != ' '))
			return -EINVAL;
		return 0;
	}
	m->request = true;
	sp = memchr(m->p, ' ', n);
	if (!sp || token_len(m->p, sp - m->p) != (size_t)(sp - m->p) || sp == m->p)
		return -EINVAL;
	m->uri = sp + 1;
	sp2 = memchr(m->uri, ' ', m->p + n - m->uri);
	if (!sp2 || sp2 == m->uri || m->p + n - (sp2 + 1) != 7 ||
	    !ns_alg_prefix(sp2 + 1, 7, "SIP/2.0"))
		return -EINVAL;
	m->uri_len = sp2 - m->uri;
	return 0;
}

static bool sip_is_sdp(const char *v, size_t len)
{
	return ns_alg_prefix(v, len, "application/sdp") &&
	       (len == 15 || v[15] == ';' || is_ws(v[15]));
}

/* Every header parses; is the body SDP? */
static int sip_scan(struct sip_msg *m)
{
	size_t off = m->start_len;
	struct sip_hdr h;
	int r;

	while ((r = sip_next_hdr(m->p, m->hdr_len - 2, &off, &h)) > 0)
		if (sip_hdr_is(&h, "Content-Type", 'c'))
			m->sdp = sip_is_sdp(h.value, h.value_len);
	return r;
}

/* ---- Via ---- */

/* The top via-parm: "SIP/2.0/UDP host:port;branch=...;..." (RFC 3261 20.42). */
struct sip_via_parm {
	size_t sent_by, sent_by_len;
	size_t end;				/* a ',' or the end of the value */
	const char *branch;
	size_t branch_len;
};

static int sip_via_params(const char *v, size_t len, size_t i, struct sip_via_parm *vp)
{
	size_t n;

	vp->branch = NULL;
	vp->branch_len = 0;
	for (;;) {
		bool branch;

		i = skip_ws(v, len, i);
		if (i == len || v[i] == ',') {
			vp->end = i;
			return 0;
		}
		if (v[i] != ';')
			return -EINVAL;
		i = skip_ws(v, len, i + 1);
		n = token_len(v + i, len - i);
		if (!n)
			return -EINVAL;
		branch = n == 6 && !strncasecmp(v + i, "branch", 6);
		i = skip_ws(v, len, i + n);
		if (i == len || v[i] != '=')
			continue;
		i = skip_ws(v, len, i + 1);
		n = value_len(v + i, len - i);
		if (branch) {
			vp->branch = v + i;
			vp->branch_len = n;
		}
		i += n;
	}
}

static int sip_via_parse(const char *v, size_t len, struct sip_via_parm *vp)
{
	static const char *const proto[] = { "SIP", "/", "2.0", "/" };
	size_t i = 0, k, n;

	for (k = 0; k < sizeof(proto) / sizeof(proto[0]); k++) {
		i = skip_ws(v, len, i);
		if (!ns_alg_prefix(v + i, len - i, proto[k]))
			return -EINVAL;
		i += strlen(proto[k]);
	}
	i = skip_ws(v, len, i);
	n = token_len(v + i, len - i);
	if (!n || i + n == len || !is_ws(v[i + n]))
		return -EINVAL;
	i = skip_ws(v, len, i + n);
	vp->sent_by = i;
	vp->sent_by_len = ns_alg_hostport_len(v + i, len - i);
	if (!vp->sent_by_len)
		return -EINVAL;
	return sip_via_params(v, len, i + vp->sent_by_len, vp);
}

static struct sip_via *sip_via_find(struct sip *s, const char *branch, size_t len)
{
	size_t i;

	for (i = 0; i < SIP_VIA_KEEP; i++)
		if (s->via[i].via_len && s->via[i].branch_len == len &&
		    (!len || !memcmp(s->via[i].branch, branch, len)))
			return &s->via[i];
	return NULL;
}

/* Retransmissions find their slot again; new branches take the oldest. */
static int sip_via_remember(struct sip *s, const char *v, const struct sip_via_parm *vp)
{
	struct sip_via *e;

	if (vp->branch_len > SIP_BRANCH_MAX || vp->end > SIP_VIA_MAX)
		return -E2BIG;
	e = sip_via_find(s, vp->branch, vp->branch_len);
	if (!e) {
		e = &s->via[s->via_next];
		s->via_next = (s->via_next + 1) % SIP_VIA_KEEP;
	}
	if (vp->branch_len)	/* a Via without branch: vp->branch is NULL */
		memcpy(e->branch, vp->branch, vp->branch_len);
	e->branch_len = vp->branch_len;
	memcpy(e->via, v, vp->end);
	e->via_len = vp->end;
	return 0;
}

/* IN request: the remote UA's sent-by becomes this agent. */
static int sip_via_in(struct sip *s, const char *v, size_t len, struct ns_alg_buf *out)
{
	struct sip_via_parm vp;

	if (sip_via_parse(v, len, &vp))
		return sip_keep(s, v, len, "top Via unparsable");
	if (sip_via_remember(s, v, &vp))
		return sip_keep(s, v, len, "top Via too long to remember");
	return put_replaced(out, v, len, vp.sent_by, vp.sent_by_len, &s->env.local);
}

/* OUT response: the remote UA's own top via-parm back. */
static int sip_via_out(struct sip *s, const char *v, size_t len, struct ns_alg_buf *out)
{
	struct sip_via_parm vp;
	struct sip_via *e;
	int err;

	if (sip_via_parse(v, len, &vp))
		return sip_keep(s, v, len, "top Via unparsable");
	e = sip_via_find(s, vp.branch, vp.branch_len);
	if (!e)
		return sip_keep(s, v, len, "response to a request whose Via is not remembered");
	err = ns_alg_buf_put(out, e->via, e->via_len);
	return err ? err : ns_alg_buf_put(out, v + vp.end, len - vp.end);
}

/* ---- Contact ---- */

/* One contact-param (RFC 3261 20.10): its URI is in <> or ends before ';'. */
static int sip_contact_one(struct sip *s, const char *e, size_t n, struct ns_alg_buf *out)
{
	size_t u = skip_ws(e, n, 0), q = 0, ul, at, hl;
	const char *lt, *gt;

	if (u < n && e[u] == '"' && !(q = value_len(e + u, n - u)))
		return sip_keep(s, e, n, "Contact with an open quote");
	/* name-addr: "Name" <uri>;params, Name <uri>, <uri>; addr-spec: uri;params */
	lt = memchr(e + u + q, '<', n - u - q);
	if (lt && (q || !memchr(e + u, ';', lt - (e + u)))) {
		u = lt - e + 1;
		gt = memchr(e + u, '>', n - u);
		if (!gt)
			return sip_keep(s, e, n, "Contact without '>'");
		ul = gt - (e + u);
	} else {
		for (ul = 0; u + ul < n && e[u + ul] != ';' && !is_ws(e[u + ul]); ul++)
			;
	}
	if (sip_uri_host(e + u, ul, &at, &hl)) {
		if (!(ul == 1 && e[u] == '*'))
			sip_keep(s, e, n, "Contact not a sip: URI with a host");
		return ns_alg_buf_put(out, e, n);
	}
	return put_replaced(out, e, n, u + at, hl, &s->env.local);
}

/* IN: every contact becomes this agent; "*" (REGISTER) stays. */
static int sip_contact_in(struct sip *s, const char *v, size_t len, struct ns_alg_buf *out)
{
	size_t i = 0, end;
	int err = 0;

	for (;;) {
		end = list_end(v, len, i);
		err = sip_contact_one(s, v + i, end - i, out);
		if (err || end == len)
			return err;
		err = ns_alg_buf_put(out, ",", 1);
		if (err)
			return err;
		i = end + 1;
	}
}

/* ---- writing a message ---- */

/* A fold, CRLF and blanks, is one SP (RFC 3261 7.3.1). */
static int sip_unfold(const char *v, size_t len, struct ns_alg_buf *tmp)
{
	size_t i = 0, n;
	int err = 0;

	while (i < len && !err) {
		const char *crlf = memmem(v + i, len - i, "\r\n", 2);

		n = crlf ? (size_t)(crlf - (v + i)) : len - i;
		err = ns_alg_buf_put(tmp, v + i, n);
		i += n;
		if (crlf && !err) {
			err = ns_alg_buf_put(tmp, " ", 1);
			i = skip_ws(v, len, i + 2);
		}
	}
	return err;
}

/* The header with its value written by fn; as it was if fn says SIP_BAD. */
static int sip_put_hdr(struct sip *s, const struct sip_hdr *h, sip_value_fn fn,
		       struct ns_alg_buf *out)
{
	struct ns_alg_buf tmp = { 0 };
	const char *v = h->value;
	size_t vl = h->value_len, mark = out->len;
	int err = 0;

	if (memmem(v, vl, "\r\n", 2)) {
		err = sip_unfold(v, vl, &tmp);
		v = (const char *)tmp.data;
		vl = tmp.len;
	}
	if (!err)
		err = ns_alg_buf_put(out, h->line, h->value - h->line);
	if (!err)
		err = fn(s, v, vl, out);
	if (err == SIP_BAD) {
		out->len = mark;
		err = ns_alg_buf_put(out, h->line, h->value - h->line);
		if (!err)
			err = ns_alg_buf_put(out, v, vl);
	}
	if (!err)
		err = ns_alg_buf_put(out, "\r\n", 2);
	ns_alg_buf_free(&tmp);
	return err;
}

/* Which headers change: see the top of the file. */
static sip_value_fn sip_hdr_fn(enum ns_alg_dir dir, const struct sip_msg *m,
			       const struct sip_hdr *h, bool *top_via)
{
	if (sip_hdr_is(h, "Via", 'v') && *top_via) {
		*top_via = false;
		if (dir == NS_ALG_IN && m->request)
			return sip_via_in;
		if (dir == NS_ALG_OUT && !m->request)
			return sip_via_out;
	} else if (dir == NS_ALG_IN && sip_hdr_is(h, "Contact", 'm')) {
		return sip_contact_in;
	}
	return NULL;
}

static int sip_put_hdrs(struct sip *s, enum ns_alg_dir dir, const struct sip_msg *m,
			struct ns_alg_buf *out)
{
	size_t off = m->start_len;
	bool top_via = true;
	struct sip_hdr h;
	sip_value_fn fn;
	int err = 0;

	while (!err && sip_next_hdr(m->p, m->hdr_len - 2, &off, &h) > 0) {
		if (sip_hdr_is(&h, "Content-Length", 'l')) {
			err = ns_alg_buf_put(out, h.line, h.value - h.line);
			if (!err)
				err = ns_alg_buf_printf(out, "%zu\r\n", m->body_len);
		} else if ((fn = sip_hdr_fn(dir, m, &h, &top_via))) {
			err = sip_put_hdr(s, &h, fn, out);
		} else {
			err = ns_alg_buf_put(out, h.line, m->p + off - h.line);
		}
	}
	return err ? err : ns_alg_buf_put(out, "\r\n", 2);
}

/* The start line; an IN request's Request-URI names the local app. */
static int sip_put_start(struct sip *s, enum ns_alg_dir dir, const struct sip_msg *m,
			 struct ns_alg_buf *out)
{
	size_t at, n;

	if (dir != NS_ALG_IN || !m->request)
		return ns_alg_buf_put(out, m->p, m->start_len);
	if (sip_uri_host(m->uri, m->uri_len, &at, &n)) {
		sip_keep(s, m->p, m->start_len, "Request-URI not a sip: URI with a host");
		return ns_alg_buf_put(out, m->p, m->start_len);
	}
	return put_replaced(out, m->p, m->start_len, m->uri - m->p + at, n, &s->env.app);
}

/* The message head p[0, hdr_len) + body rewritten for dir into out: 0,
 * SIP_BAD (nothing written, logged) or -ENOMEM. */
static int sip_rewrite(struct sip *s, enum ns_alg_dir dir, const char *p, size_t hdr_len,
		       size_t body_len, struct ns_alg_buf *out)
{
	struct sip_msg m = { .p = p, .hdr_len = hdr_len, .body = p + hdr_len,
			     .body_len = body_len };
	struct ns_alg_buf sdp = { 0 };
	size_t mark = out->len;
	int err = 0;

	if (sip_start(&m) || sip_scan(&m))
		return sip_bad(s, p, hdr_len, "malformed start line or header");
	if (dir == NS_ALG_OUT && m.request)
		return ns_alg_buf_put(out, p, hdr_len + body_len);
	if (dir == NS_ALG_IN && m.sdp && body_len) {
		err = ns_alg_sdp_rewrite(&s->env, &s->log, m.body, m.body_len, &sdp);
		m.body = (const char *)sdp.data;
		m.body_len = sdp.len;
	}
	if (!err)
		err = sip_put_start(s, dir, &m, out);
	if (!err)
		err = sip_put_hdrs(s, dir, &m, out);
	if (!err)
		err = ns_alg_buf_put(out, m.body, m.body_len);
	if (err)
		out->len = mark;
	ns_alg_buf_free(&sdp);
	return err;
}

/* ---- datagrams ---- */

/* SIP starts with a method or "SIP/2.0"; anything else (CRLF keepalives,
 * STUN on the SIP port, RFC 5626 4.4.2) is not ours to judge. */
static bool sip_looks_like_sip(const char *p, size_t len)
{
	return len && isalpha((unsigned char)p[0]);
}

static int sip_drop(struct sip *s, const char *p, size_t len, const char *why)
{
	sip_bad(s, p, len, why);
	return 0;
}

static int sip_datagram(struct sip *s, enum ns_alg_dir dir, const __u8 *in, size_t len,
			struct ns_alg_buf *out)
{
	const char *p = (const char *)in, *blank;
	size_t hdr_len, body_len, mark = out->len;
	bool has;
	__u32 cl;
	int ret;

	if (!sip_looks_like_sip(p, len))
		return ns_alg_buf_put(out, in, len);
	if (len > NS_ALG_MSG_MAX)
		return sip_drop(s, p, len, "datagram over 65535 bytes");
	blank = memmem(p, len, "\r\n\r\n", 4);
	if (!blank)
		return sip_drop(s, p, len, "no blank line after the headers");
	hdr_len = blank - p + 4;
	body_len = len - hdr_len;
	if (sip_content_length(p, hdr_len, &cl, &has))
		return sip_drop(s, p, len, "malformed header or Content-Length");
	/* RFC 3261 18.3: a short body is an error, bytes after the body are discarded */
	if (has && cl > body_len)
		return sip_drop(s, p, len, "body shorter than Content-Length");
	if (has)
		body_len = cl;
	ret = sip_rewrite(s, dir, p, hdr_len, body_len, out);
	if (!ret && out->len - mark > NS_ALG_MSG_MAX) {
		out->len = mark;
		ret = sip_bad(s, p, len, "over 65535 bytes once rewritten");
	}
	return ret == SIP_BAD ? 0 : ret;
}

/* ---- streams ---- */

enum sip_frame { FRAME_MORE, FRAME_OK, FRAME_BIG, FRAME_BAD };

/* Is the message at the start of h (rest bytes of it held) complete? The
 * blank line is searched only in bytes not searched before, so a message
 * trickling in byte by byte costs no more than one arriving at once. */
static enum sip_frame sip_frame(struct sip_hold *h, const char *p, size_t rest)
{
	size_t from = h->scanned > 3 ? h->scanned - 3 : 0;
	const char *blank;
	bool has;
	__u32 cl;

	if (!h->total) {
		blank = memmem(p + from, rest - from, "\r\n\r\n", 4);
		if (!blank) {
			h->scanned = rest;
			return FRAME_MORE;
		}
		h->hdr_len = blank - p + 4;
		if (sip_content_length(p, h->hdr_len, &cl, &has))
			return FRAME_BAD;
		/* RFC 3261 18.3: on a stream, no Content-Length is no body */
		h->total = h->hdr_len + (size_t)cl;
		if ((__u64)h->hdr_len + cl > NS_ALG_MSG_MAX)
			return FRAME_BIG;
	}
	return rest >= h->total ? FRAME_OK : FRAME_MORE;
}

static void sip_frame_reset(struct sip_hold *h)
{
	h->scanned = h->hdr_len = h->total = 0;
}

/* CR and LF between messages (RFC 3261 7.5, RFC 5626 keepalives). */
static size_t sip_crlfs(const char *p, size_t len)
{
	size_t n;

	for (n = 0; n < len && (p[n] == '\r' || p[n] == '\n'); n++)
		;
	return n;
}

/* What cannot be framed: the rest of this direction passes unmodified. */
static int sip_go_raw(struct sip *s, struct sip_hold *h, const char *p, size_t rest,
		      const char *why, struct ns_alg_buf *out)
{
	char ex[NS_ALG_EXCERPT_MAX];

	ns_alg_warn(&s->log, "%s (%s): the rest of the stream passes unchanged", why,
		    ns_alg_excerpt(p, rest, ex, sizeof(ex)));
	h->raw = true;
	return ns_alg_buf_put(out, p, rest);
}

/* One framed message at p: rewritten, or unchanged if it cannot be. */
static int sip_stream_msg(struct sip *s, enum ns_alg_dir dir, const char *p,
			  const struct sip_hold *h, struct ns_alg_buf *out)
{
	int ret = sip_rewrite(s, dir, p, h->hdr_len, h->total - h->hdr_len, out);

	return ret == SIP_BAD ? ns_alg_buf_put(out, p, h->total) : ret;
}

/* Every complete message held in dir to out; a partial one stays. */
static int sip_drain(struct sip *s, enum ns_alg_dir dir, struct ns_alg_buf *out)
{
	struct sip_hold *h = &s->hold[dir];
	const char *p = (const char *)h->buf.data;
	size_t off = 0, n;
	int err = 0;

	while (!err && off < h->buf.len) {
		const char *m = p + off;
		size_t rest = h->buf.len - off;

		if (!h->total && (n = sip_crlfs(m, rest))) {
			err = ns_alg_buf_put(out, m, n);
			off += n;
			continue;
		}
		switch (sip_frame(h, m, rest)) {
		case FRAME_MORE:
			if (rest < NS_ALG_MSG_MAX)
				goto keep;
			err = sip_go_raw(s, h, m, rest, "no end of headers in 65535 bytes", out);
			off = h->buf.len;
			break;
		case FRAME_BAD:
			err = sip_go_raw(s, h, m, rest, "bad Content-Length", out);
			off = h->buf.len;
			break;
		case FRAME_BIG:
			ns_alg_warn(&s->log, "message of %zu bytes, over %d: passed unchanged",
				    h->total, NS_ALG_MSG_MAX);
			n = rest < h->total ? rest : h->total;
			err = ns_alg_buf_put(out, m, n);
			h->skip = h->total - n;
			off += n;
			sip_frame_reset(h);
			break;
		case FRAME_OK:
			err = sip_stream_msg(s, dir, m, h, out);
			off += h->total;
			sip_frame_reset(h);
			break;
		}
	}
keep:
	memmove(h->buf.data, p + off, h->buf.len - off);
	h->buf.len -= off;
	return err;
}

static int sip_stream(struct sip *s, enum ns_alg_dir dir, const __u8 *in, size_t len,
		      struct ns_alg_buf *out)
{
	struct sip_hold *h = &s->hold[dir];
	int err = 0;

	while (len && !err) {
		size_t n;

		if (h->raw)
			return ns_alg_buf_put(out, in, len);
		if (h->skip) {
			n = len < h->skip ? len : h->skip;
			h->skip -= n;
			err = ns_alg_buf_put(out, in, n);
		} else {
			/* never more than one message's worth held */
			n = NS_ALG_MSG_MAX - h->buf.len;
			n = len < n ? len : n;
			err = ns_alg_buf_put(&h->buf, in, n);
			if (!err)
				err = sip_drain(s, dir, out);
		}
		in += n;
		len -= n;
	}
	return err;
}

/* ---- ops ---- */

static bool sa_ok(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET || ss->ss_family == AF_INET6;
}

static void *sip_open(const struct ns_alg_env *env, bool datagram)
{
	struct sip *s;

	if (!env->expect || !sa_ok(&env->local) || !sa_ok(&env->app)) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->env = *env;
	s->env.label[sizeof(s->env.label) - 1] = '\0';
	s->log.alg = "sip";
	s->log.label = s->env.label;
	s->datagram = datagram;
	return s;
}

static int sip_feed(void *st, enum ns_alg_dir dir, const __u8 *in, size_t len,
		    struct ns_alg_buf *out)
{
	struct sip *s = st;

	if (s->datagram)
		return sip_datagram(s, dir, in, len, out);
	return sip_stream(s, dir, in, len, out);
}

static int sip_flush(void *st, enum ns_alg_dir dir, struct ns_alg_buf *out)
{
	struct sip *s = st;
	struct sip_hold *h = &s->hold[dir];
	int err;

	err = ns_alg_buf_put(out, h->buf.data, h->buf.len);
	h->buf.len = 0;
	sip_frame_reset(h);
	return err;
}

static void sip_close(void *st)
{
	struct sip *s = st;

	if (!s)
		return;
	ns_alg_buf_free(&s->hold[NS_ALG_IN].buf);
	ns_alg_buf_free(&s->hold[NS_ALG_OUT].buf);
	free(s);
}

const struct ns_alg_ops ns_alg_sip = {
	.name = "sip",
	.open = sip_open,
	.feed = sip_feed,
	.flush = sip_flush,
	.close = sip_close,
};
