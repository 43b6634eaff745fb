// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * FTP ALG (RFC 959, RFC 2428). The addresses of data connections travel in
 * the control connection: the server's in its 227/229 replies to PASV/EPSV,
 * the client's in its PORT/EPRT commands. Only IN lines are rewritten: at
 * the subscriber those are the server's replies, at the provider the
 * client's commands. The announced host is never used (the alias forwards to
 * the control connection's far end), only its port. OUT passes untouched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "agent.h"
#include "alg.h"
#include "log.h"
#include "util.h"

/* An IN line was rewritten and written to out (0), or must pass as it is
 * (FTP_PASS, reason logged), or a fatal error (< 0). */
#define FTP_PASS	1

struct ftp {
	struct ns_alg_env env;
	struct ns_alg_log log;
	struct ns_alg_lines in;			/* IN: the partial line held */
	bool tls;				/* AUTH TLS: IN is no longer text */
};

/* A line without its CR LF, for parsing; the terminator is kept apart. */
struct ftp_line {
	const char *p;
	size_t len;
	const char *eol;
	size_t eol_len;
};

static void ftp_split(const char *line, size_t len, struct ftp_line *l)
{
	l->p = line;
	l->len = len;
	if (l->len && l->p[l->len - 1] == '\n')
		l->len--;
	if (l->len && l->p[l->len - 1] == '\r')
		l->len--;
	l->eol = line + l->len;
	l->eol_len = len - l->len;
}

static int ftp_pass(struct ftp *f, const struct ftp_line *l, const char *why)
{
	char ex[NS_ALG_EXCERPT_MAX];

	ns_alg_warn(&f->log, "%s (%s): passed unchanged", why,
		    ns_alg_excerpt(l->p, l->len, ex, sizeof(ex)));
	return FTP_PASS;
}

/* "h1,h2,h3,h4,p1,p2" at p, each 0..255 (RFC 959 4.1.2): 0 and the bytes it
 * takes, or -EINVAL. The port must not be 0. */
static int ftp_tuple(const char *p, size_t len, __u16 *port, size_t *used)
{
	__u32 v[6];
	size_t i = 0, s;
	int k;

	for (k = 0; k < 6; k++) {
		if (k && (i == len || p[i++] != ','))
			return -EINVAL;
		for (s = i; i < len && i - s < 4 && p[i] >= '0' && p[i] <= '9'; i++)
			;
		if (ns_alg_num(p + s, i - s, 255, &v[k]))
			return -EINVAL;
	}
	*port = v[4] << 8 | v[5];
	*used = i;
	return *port ? 0 : -EINVAL;
}

/* The alias as "h1,h2,h3,h4,p1,p2"; -EAFNOSUPPORT for an IPv6 alias. */
static int ftp_put_tuple(struct ns_alg_buf *out, const struct sockaddr_storage *alias)
{
	char ip[NS_ADDRSTRLEN];
	__u16 port = ns_alg_sa_port(alias);
	unsigned int a[4];

	if (ns_alg_sa_ip(alias, ip, sizeof(ip)) != AF_INET ||
	    sscanf(ip, "%u.%u.%u.%u", &a[0], &a[1], &a[2], &a[3]) != 4)
		return -EAFNOSUPPORT;
	return ns_alg_buf_printf(out, "%u,%u,%u,%u,%u,%u", a[0], a[1], a[2], a[3],
				 port >> 8, port & 0xff);
}

static int ftp_expect(struct ftp *f, const struct ftp_line *l, __u16 port,
		      struct sockaddr_storage *alias)
{
	char why[64];
	int err;

	memset(alias, 0, sizeof(*alias));
	err = f->env.expect(f->env.arg, IPPROTO_TCP, port, false, alias);
	if (!err)
		return 0;
	snprintf(why, sizeof(why), "no alias for port %u: %s", port, strerror(-err));
	return ftp_pass(f, l, why);
}

/* The line with [from, from + len) replaced by the alias written by put. */
static int ftp_rewrite(struct ftp *f, const struct ftp_line *l, size_t from, size_t len,
		       const struct sockaddr_storage *alias,
		       int (*put)(const struct sockaddr_storage *, const void *,
				  struct ns_alg_buf *),
		       const void *put_arg, struct ns_alg_buf *out)
{
	size_t mark = out->len;
	int err;

	err = ns_alg_buf_put(out, l->p, from);
	if (!err)
		err = put(alias, put_arg, out);
	if (err == -EAFNOSUPPORT) {
		out->len = mark;
		return ftp_pass(f, l, "the alias is IPv6, this line carries only IPv4");
	}
	if (!err)
		err = ns_alg_buf_put(out, l->p + from + len, l->len - from - len);
	return err ? err : ns_alg_buf_put(out, l->eol, l->eol_len);
}

static int put_tuple(const struct sockaddr_storage *alias, const void *arg,
		     struct ns_alg_buf *out)
{
	return ftp_put_tuple(out, alias);
}

/* "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)": servers word it
 * differently, so the tuple is the first digits after the code. */
static int ftp_227(struct ftp *f, const struct ftp_line *l, struct ns_alg_buf *out)
{
	struct sockaddr_storage alias;
	size_t at, used;
	__u16 port;
	int err;

	for (at = 4; at < l->len && (l->p[at] < '0' || l->p[at] > '9'); at++)
		;
	if (ftp_tuple(l->p + at, l->len - at, &port, &used))
		return ftp_pass(f, l, "227: bad address or port");
	err = ftp_expect(f, l, port, &alias);
	if (err)
		return err;
	return ftp_rewrite(f, l, at, used, &alias, put_tuple, NULL, out);
}

static bool epsv_delim(char c)
{
	/* RFC 2428 2: a printable ASCII character, not a digit by sense */
	return c >= 33 && c <= 126 && (c < '0' || c > '9');
}

static int put_port(const struct sockaddr_storage *alias, const void *arg,
		    struct ns_alg_buf *out)
{
	return ns_alg_buf_printf(out, "%u", ns_alg_sa_port(alias));
}

/* "229 Entering Extended Passive Mode (|||port|)" (RFC 2428 3): only a port;
 * the client connects to the control connection's address. */
static int ftp_229(struct ftp *f, const struct ftp_line *l, struct ns_alg_buf *out)
{
	const char *open = memchr(l->p, '(', l->len);
	struct sockaddr_storage alias;
	size_t at, end;
	__u32 port;
	char d;
	int err;

	if (!open || (size_t)(open - l->p) + 5 > l->len)
		return ftp_pass(f, l, "229: no (|||port|)");
	at = open - l->p + 1;
	d = l->p[at];
	if (!epsv_delim(d) || l->p[at + 1] != d || l->p[at + 2] != d)
		return ftp_pass(f, l, "229: no (|||port|)");
	at += 3;
	for (end = at; end < l->len && l->p[end] != d; end++)
		;
	if (end + 1 >= l->len || l->p[end + 1] != ')' ||
	    ns_alg_num(l->p + at, end - at, 65535, &port) || !port)
		return ftp_pass(f, l, "229: bad port");
	err = ftp_expect(f, l, port, &alias);
	if (err)
		return err;
	return ftp_rewrite(f, l, at, end - at, &alias, put_port, NULL, out);
}

/* "PORT h1,h2,h3,h4,p1,p2" (RFC 959 4.1.2), nothing after the tuple. */
static int ftp_port(struct ftp *f, const struct ftp_line *l, struct ns_alg_buf *out)
{
	struct sockaddr_storage alias;
	size_t used;
	__u16 port;
	int err;

	if (ftp_tuple(l->p + 5, l->len - 5, &port, &used) || 5 + used != l->len)
		return ftp_pass(f, l, "PORT: bad address or port");
	err = ftp_expect(f, l, port, &alias);
	if (err)
		return err;
	return ftp_rewrite(f, l, 5, used, &alias, put_tuple, NULL, out);
}

/* EPRT's fields: d net-prt d net-addr d tcp-port d (RFC 2428 2). */
struct eprt {
	char d;
	__u16 port;
};

static int eprt_parse(const char *p, size_t len, struct eprt *e)
{
	const char *f[4];
	char addr[NS_ADDRSTRLEN];
	size_t n[3];
	__u32 af, port, a[4];
	__u8 family;
	int k;

	if (len < 7 || !epsv_delim(p[0]) || p[len - 1] != p[0])
		return -EINVAL;
	e->d = p[0];
	f[0] = p + 1;
	for (k = 0; k < 3; k++) {
		const char *end = memchr(f[k], e->d, p + len - f[k]);

		if (!end)
			return -EINVAL;
		n[k] = end - f[k];
		f[k + 1] = end + 1;
	}
	if (f[3] != p + len || ns_alg_num(f[0], n[0], 2, &af) || !af ||
	    n[1] >= sizeof(addr) || ns_alg_num(f[2], n[2], 65535, &port) || !port)
		return -EINVAL;
	memcpy(addr, f[1], n[1]);
	addr[n[1]] = '\0';
	if (ns_parse_addr(addr, &family, a) || family != (af == 1 ? AF_INET : AF_INET6))
		return -EINVAL;
	e->port = port;
	return 0;
}

static int put_eprt(const struct sockaddr_storage *alias, const void *arg,
		    struct ns_alg_buf *out)
{
	const struct eprt *e = arg;
	char ip[NS_ADDRSTRLEN];
	int family = ns_alg_sa_ip(alias, ip, sizeof(ip));

	if (family < 0)
		return family;
	return ns_alg_buf_printf(out, "%c%d%c%s%c%u%c", e->d, family == AF_INET ? 1 : 2,
				 e->d, ip, e->d, ns_alg_sa_port(alias), e->d);
}

/* "EPRT |1|192.0.2.1|6446|" / "EPRT |2|2001:db8::1|6446|": the alias in its
 * own family. */
static int ftp_eprt(struct ftp *f, const struct ftp_line *l, struct ns_alg_buf *out)
{
	struct sockaddr_storage alias;
	struct eprt e;
	int err;

	if (eprt_parse(l->p + 5, l->len - 5, &e))
		return ftp_pass(f, l, "EPRT: bad protocol, address or port");
	err = ftp_expect(f, l, e.port, &alias);
	if (err)
		return err;
	return ftp_rewrite(f, l, 5, l->len - 5, &alias, put_eprt, &e, out);
}

/* After AUTH the control connection turns into TLS (RFC 4217): its bytes are
 * no longer lines, and holding them for a LF would stall the handshake. */
static int ftp_tls(struct ftp *f, const struct ftp_line *l)
{
	char ex[NS_ALG_EXCERPT_MAX];

	f->tls = true;
	log_info("ftp alg%s%s: %s: encrypted from here on, data connections are not "
		 "rewritten", *f->env.label ? " " : "", f->env.label,
		 ns_alg_excerpt(l->p, l->len, ex, sizeof(ex)));
	return FTP_PASS;
}

/* Subscriber: the server's replies. Provider: the client's commands. */
static int ftp_line(void *arg, const char *line, size_t len, struct ns_alg_buf *out)
{
	struct ftp *f = arg;
	struct ftp_line l;
	int ret = FTP_PASS;

	ftp_split(line, len, &l);
	if (f->env.side == NS_ALG_SUBSCRIBER) {
		if (ns_alg_prefix(l.p, l.len, "227 "))
			ret = ftp_227(f, &l, out);
		else if (ns_alg_prefix(l.p, l.len, "229 "))
			ret = ftp_229(f, &l, out);
		else if (ns_alg_prefix(l.p, l.len, "234 "))
			ret = ftp_tls(f, &l);
	} else {
		if (ns_alg_prefix(l.p, l.len, "PORT "))
			ret = ftp_port(f, &l, out);
		else if (ns_alg_prefix(l.p, l.len, "EPRT "))
			ret = ftp_eprt(f, &l, out);
		else if (ns_alg_prefix(l.p, l.len, "AUTH "))
			ret = ftp_tls(f, &l);
	}
	if (ret == FTP_PASS)
		ret = ns_alg_buf_put(out, line, len);
	return ret || !f->tls ? ret : NS_ALG_LINES_RAW;
}

static void *ftp_open(const struct ns_alg_env *env, bool datagram)
{
	struct ftp *f;

	if (datagram || !env->expect) {
		errno = datagram ? EPROTONOSUPPORT : EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->env = *env;
	f->env.label[sizeof(f->env.label) - 1] = '\0';
	f->log.alg = "ftp";
	f->log.label = f->env.label;
	f->in.log = &f->log;
	return f;
}

static int ftp_feed(void *st, enum ns_alg_dir dir, const __u8 *in, size_t len,
		    struct ns_alg_buf *out)
{
	struct ftp *f = st;

	if (dir == NS_ALG_OUT || f->tls)
		return ns_alg_buf_put(out, in, len);
	return ns_alg_lines_feed(&f->in, in, len, ftp_line, f, out);
}

static int ftp_flush(void *st, enum ns_alg_dir dir, struct ns_alg_buf *out)
{
	struct ftp *f = st;

	return dir == NS_ALG_IN ? ns_alg_lines_flush(&f->in, out) : 0;
}

static void ftp_close(void *st)
{
	free(st);
}

const struct ns_alg_ops ns_alg_ftp = {
	.name = "ftp",
	.open = ftp_open,
	.feed = ftp_feed,
	.flush = ftp_flush,
	.close = ftp_close,
};
