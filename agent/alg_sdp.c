// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * SDP (RFC 4566) in SIP bodies, for the SIP ALG: each media stream the
 * remote app offers or answers gets a local alias from expect(), and the
 * local app is told the alias: c= lines name its address, m= lines its port,
 * a=rtcp (RFC 3605) the RTCP alias. A stream that gets no alias is disabled
 * with port 0 (RFC 3264 6, 8.2), which every UA understands, rather than
 * left pointing where the local app cannot reach. Two passes: the aliases are
 * decided before the first line is written, since a session-level c= comes
 * before the m= lines it applies to.
 */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include "agent.h"
#include "alg.h"
#include "util.h"

#define SDP_MEDIA_MAX	16	/* media streams given aliases per SDP; the rest get port 0 */

struct sdp_media {
	__u32 port;			/* the remote's port, 0: nothing to alias */
	bool is_rtp;			/* an RTP profile: RTCP travels too */
	bool has_c;			/* a c= line of its own */
	bool mux;			/* a=rtcp-mux (RFC 5761): RTCP on the RTP port */
	bool has_rtcp;
	__u32 rtcp_port;		/* a=rtcp: port */
	bool ok;			/* rtp (and rtcp) hold aliases */
	struct sockaddr_storage rtp, rtcp;
};

struct sdp {
	const struct ns_alg_env *env;
	struct ns_alg_log *log;
	struct sdp_media m[SDP_MEDIA_MAX];
	int n;				/* media sections, may be more than SDP_MEDIA_MAX */
	const struct sockaddr_storage *addr;	/* for the session-level c=, NULL: none */
};

/* One line without its CRLF or LF; the terminator kept apart. */
struct sdp_line {
	const char *p;
	size_t len;
	const char *eol;
	size_t eol_len;
};

static bool sdp_next(const char *sdp, size_t len, size_t *off, struct sdp_line *l)
{
	const char *s = sdp + *off, *lf;
	size_t rest = len - *off;

	if (!rest)
		return false;
	lf = memchr(s, '\n', rest);
	l->p = s;
	l->len = lf ? (size_t)(lf - s) : rest;
	l->eol_len = lf ? 1 : 0;
	if (lf && l->len && s[l->len - 1] == '\r') {
		l->len--;
		l->eol_len++;
	}
	l->eol = s + l->len;
	*off += l->len + l->eol_len;
	return true;
}

/* "m=<media> <port>[/<count>] <proto> <fmt> ...": where the port field is. */
static int sdp_m_port(const struct sdp_line *l, size_t *at, size_t *plen)
{
	const char *sp = memchr(l->p, ' ', l->len), *end;

	if (!sp)
		return -EINVAL;
	*at = sp - l->p + 1;
	end = memchr(l->p + *at, ' ', l->len - *at);
	if (!end)
		return -EINVAL;
	*plen = end - (l->p + *at);
	return *plen ? 0 : -EINVAL;
}

static void sdp_scan_m(struct sdp *s, struct sdp_media *m, const struct sdp_line *l, int k)
{
	char ex[NS_ALG_EXCERPT_MAX];
	const char *proto;
	size_t at, plen;

	memset(m, 0, sizeof(*m));
	if (sdp_m_port(l, &at, &plen) || ns_alg_num(l->p + at, plen, 65535, &m->port)) {
		ns_alg_warn(s->log, "SDP media %d: bad or multiple ports (%s): port 0", k,
			    ns_alg_excerpt(l->p, l->len, ex, sizeof(ex)));
		m->port = 0;
		return;
	}
	proto = l->p + at + plen + 1;
	if (m->port && ns_alg_prefix(proto, l->p + l->len - proto, "TCP")) {
		ns_alg_warn(s->log, "SDP media %d: TCP media are not forwarded (%s): port 0", k,
			    ns_alg_excerpt(l->p, l->len, ex, sizeof(ex)));
		m->port = 0;
	}
	m->is_rtp = memmem(proto, l->p + l->len - proto, "RTP/", 4) != NULL;
}

/* "a=rtcp:<port>[ IN IP4 <addr>]" (RFC 3605 2.1): its port. */
static int sdp_rtcp_port(const struct sdp_line *l, __u32 *port, size_t *plen)
{
	size_t n;

	for (n = 7; n < l->len && l->p[n] >= '0' && l->p[n] <= '9'; n++)
		;
	*plen = n - 7;
	if (n < l->len && l->p[n] != ' ')
		return -EINVAL;
	return ns_alg_num(l->p + 7, n - 7, 65535, port);
}

static void sdp_scan_attr(struct sdp_media *m, const struct sdp_line *l)
{
	size_t plen;

	if (l->len == 10 && ns_alg_prefix(l->p, l->len, "a=rtcp-mux"))
		m->mux = true;
	else if (ns_alg_prefix(l->p, l->len, "a=rtcp:"))
		m->has_rtcp = !sdp_rtcp_port(l, &m->rtcp_port, &plen);
	else if (ns_alg_prefix(l->p, l->len, "c="))
		m->has_c = true;
}

static void sdp_scan(struct sdp *s, const char *sdp, size_t len)
{
	struct sdp_line l;
	size_t off = 0;
	int k = -1;

	while (sdp_next(sdp, len, &off, &l)) {
		if (ns_alg_prefix(l.p, l.len, "m=")) {
			if (++k < SDP_MEDIA_MAX)
				sdp_scan_m(s, &s->m[k], &l, k);
		} else if (k >= 0 && k < SDP_MEDIA_MAX) {
			sdp_scan_attr(&s->m[k], &l);
		}
	}
	s->n = k + 1;
}

static int sdp_alias(struct sdp *s, __u32 port, bool pair, struct sockaddr_storage *alias)
{
	memset(alias, 0, sizeof(*alias));
	return s->env->expect(s->env->arg, IPPROTO_UDP, port, pair, alias);
}

static void sa_set_port(struct sockaddr_storage *ss, __u16 port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The aliases of one stream. RTCP (RFC 3550 11) is on port + 1 unless
 * a=rtcp says otherwise or a=rtcp-mux puts it on the RTP port. */
static int sdp_expect_one(struct sdp *s, struct sdp_media *m)
{
	bool mux = m->mux || (m->has_rtcp && m->rtcp_port == m->port);
	bool next = !m->has_rtcp || m->rtcp_port == m->port + 1;
	int err;

	if (!m->is_rtp || mux || next) {
		err = sdp_alias(s, m->port, m->is_rtp && !mux, &m->rtp);
		m->rtcp = m->rtp;
		if (!err && m->is_rtp && !mux)
			sa_set_port(&m->rtcp, ns_alg_sa_port(&m->rtp) + 1);
		return err;
	}
	err = sdp_alias(s, m->port, false, &m->rtp);
	return err ? err : sdp_alias(s, m->rtcp_port, false, &m->rtcp);
}

/* One c= line says where several streams are: their aliases must share it.
 * Streams without an alias are logged once per SDP, not one line each. */
static void sdp_expect(struct sdp *s)
{
	int k, n = s->n < SDP_MEDIA_MAX ? s->n : SDP_MEDIA_MAX, failed = 0, err = 0;

	for (k = 0; k < n; k++) {
		struct sdp_media *m = &s->m[k];
		int e;

		if (!m->port)
			continue;
		e = sdp_expect_one(s, m);
		if (e) {
			err = failed++ ? err : e;
			continue;
		}
		if (!m->has_c && s->addr && !agent_sa_same_ip(s->addr, &m->rtp)) {
			ns_alg_warn(s->log, "SDP media %d: its alias is not on the address of "
				    "the session's c= line: port 0", k);
			continue;
		}
		m->ok = true;
		if (!m->has_c && !s->addr)
			s->addr = &m->rtp;
	}
	for (k = 0; k < n && !s->addr; k++)
		if (s->m[k].ok)
			s->addr = &s->m[k].rtp;
	if (failed)
		ns_alg_warn(s->log, "SDP: %d media got no alias (%s): port 0", failed,
			    strerror(-err));
	if (s->n > SDP_MEDIA_MAX)
		ns_alg_warn(s->log, "SDP: %d media, only the first %d are forwarded, the rest "
			    "get port 0", s->n, SDP_MEDIA_MAX);
}

/* "IN IP4 <ip>" / "IN IP6 <ip>" of an alias. */
static int sdp_put_addr(struct ns_alg_buf *out, const struct sockaddr_storage *alias)
{
	char ip[NS_ADDRSTRLEN];
	int family = ns_alg_sa_ip(alias, ip, sizeof(ip));

	if (family < 0)
		return family;
	return ns_alg_buf_printf(out, "IN IP%c %s", family == AF_INET ? '4' : '6', ip);
}

static int sdp_put_m(const struct sdp_media *m, const struct sdp_line *l,
		     struct ns_alg_buf *out)
{
	size_t at, plen;
	int err;

	if (sdp_m_port(l, &at, &plen))
		return ns_alg_buf_put(out, l->p, l->len);
	err = ns_alg_buf_put(out, l->p, at);
	if (!err)
		err = ns_alg_buf_printf(out, "%u", m && m->ok ? ns_alg_sa_port(&m->rtp) : 0);
	return err ? err : ns_alg_buf_put(out, l->p + at + plen, l->len - at - plen);
}

static int sdp_put_rtcp(const struct sdp_media *m, const struct sdp_line *l,
			struct ns_alg_buf *out)
{
	size_t plen;
	__u32 port;
	int err;

	if (sdp_rtcp_port(l, &port, &plen))
		return ns_alg_buf_put(out, l->p, l->len);
	err = ns_alg_buf_printf(out, "a=rtcp:%u", ns_alg_sa_port(&m->rtcp));
	if (!err && 7 + plen < l->len) {
		err = ns_alg_buf_put(out, " ", 1);
		if (!err)
			err = sdp_put_addr(out, &m->rtcp);
	}
	return err;
}

/* A line of section k (-1: the session) as the local app must see it. */
static int sdp_put_line(struct sdp *s, int k, const struct sdp_line *l,
			struct ns_alg_buf *out)
{
	const struct sdp_media *m = k >= 0 && k < SDP_MEDIA_MAX ? &s->m[k] : NULL;
	const struct sockaddr_storage *addr = k < 0 ? s->addr : m && m->ok ? &m->rtp : NULL;
	int err;

	if (ns_alg_prefix(l->p, l->len, "m="))
		return sdp_put_m(m, l, out);
	if (addr && ns_alg_prefix(l->p, l->len, "c=IN IP")) {
		err = ns_alg_buf_put(out, "c=", 2);
		return err ? err : sdp_put_addr(out, addr);
	}
	if (m && m->ok && ns_alg_prefix(l->p, l->len, "a=rtcp:"))
		return sdp_put_rtcp(m, l, out);
	return ns_alg_buf_put(out, l->p, l->len);
}

int ns_alg_sdp_rewrite(const struct ns_alg_env *env, struct ns_alg_log *log,
		       const char *sdp, size_t len, struct ns_alg_buf *out)
{
	struct sdp s = { .env = env, .log = log };
	struct sdp_line l;
	size_t off = 0;
	int k = -1, err = 0;

	sdp_scan(&s, sdp, len);
	sdp_expect(&s);
	while (!err && sdp_next(sdp, len, &off, &l)) {
		if (ns_alg_prefix(l.p, l.len, "m="))
			k++;
		err = sdp_put_line(&s, k, &l, out);
		if (!err)
			err = ns_alg_buf_put(out, l.eol, l.eol_len);
	}
	return err;
}
