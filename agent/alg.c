// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The ALG registry and what the ALGs share: the output buffer, a log with a
 * per-connection budget, address formatting, span parsing and a line
 * splitter that never holds more than NS_ALG_LINE_MAX bytes. The ALGs are
 * alg_ftp.c and alg_sip.c; tests in test/unit/test_agent_alg_*.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "agent.h"
#include "alg.h"
#include "log.h"
#include "util.h"

#define ALG_BUF_MIN		256	/* bytes: first allocation of a buffer */
#define ALG_EXCERPT_LEN		40	/* bytes of a peer's text quoted in a log line */

static const struct ns_alg_ops *const algs[] = { &ns_alg_ftp, &ns_alg_sip };

const struct ns_alg_ops *ns_alg_find(const char *name)
{
	size_t i;

	for (i = 0; name && i < sizeof(algs) / sizeof(algs[0]); i++)
		if (!strcmp(algs[i]->name, name))
			return algs[i];
	return NULL;
}

/* Kept in step with algs[] by test_agent_alg_ftp.c. */
const char *ns_alg_names(void)
{
	return "ftp, sip";
}

/* ---- output buffer ---- */

static int buf_reserve(struct ns_alg_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : ALG_BUF_MIN;
	__u8 *d;

	if (more > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	d = realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

int ns_alg_buf_put(struct ns_alg_buf *b, const void *p, size_t len)
{
	int err;

	if (!len)
		return 0;
	err = buf_reserve(b, len);
	if (err)
		return err;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	return 0;
}

int ns_alg_buf_printf(struct ns_alg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	/* vsnprintf writes a NUL after the text: room for it, not counted. */
	err = buf_reserve(b, (size_t)n + 1);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
	return 0;
}

void ns_alg_buf_free(struct ns_alg_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- log ---- */

void ns_alg_warn(struct ns_alg_log *l, const char *fmt, ...)
{
	int level = l->n < NS_ALG_LOG_BURST ? NS_LOG_WARN : NS_LOG_DEBUG;
	const char *label = l->label ? l->label : "";
	char msg[256];
	va_list ap;

	if (level > ns_log_get_level()) {
		l->n++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ns_log(level, "%s alg%s%s: %s%s", l->alg, *label ? " " : "", label, msg,
	       l->n + 1 == NS_ALG_LOG_BURST ?
	       " (further problems on this connection at debug level)" : "");
	l->n++;
}

const char *ns_alg_excerpt(const void *p, size_t len, char *buf, size_t cap)
{
	const unsigned char *s = p;
	size_t i, n = 0;

	for (i = 0; i < len && s[i] != '\r' && s[i] != '\n' && n < ALG_EXCERPT_LEN &&
		    n + 4 < cap; i++)
		buf[n++] = isprint(s[i]) ? s[i] : '.';
	if (i < len && s[i] != '\r' && s[i] != '\n' && n + 4 <= cap) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- addresses ---- */

int ns_alg_sa_ip(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	__u32 addr[4];
	__be16 port;
	__u8 family;

	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	agent_sa_ip(ss, &family, addr, &port);
	ns_addr_str(family, addr, buf, len);
	return family;
}

__u16 ns_alg_sa_port(const struct sockaddr_storage *ss)
{
	__u32 addr[4];
	__be16 port;
	__u8 family;

	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
		return 0;
	ns_sockaddr_split(ss, &family, addr, &port);
	return ntohs(port);
}

int ns_alg_put_hostport(struct ns_alg_buf *b, const struct sockaddr_storage *ss)
{
	char s[NS_ADDRSTRLEN + 8];

	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	agent_sa_str(ss, s, sizeof(s));
	return ns_alg_buf_put(b, s, strlen(s));
}

/* ---- spans ---- */

static bool host_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.';
}

static size_t v6_ref_len(const char *p, size_t len)
{
	size_t i;

	for (i = 1; i < len && p[i] != ']'; i++)
		if (!isxdigit((unsigned char)p[i]) && p[i] != ':' && p[i] != '.')
			return 0;
	return i < len && i > 1 ? i + 1 : 0;
}

size_t ns_alg_hostport_len(const char *p, size_t len)
{
	size_t i = 0, d;

	if (len && p[0] == '[')
		i = v6_ref_len(p, len);
	else
		while (i < len && host_char(p[i]))
			i++;
	if (!i || i == len || p[i] != ':')
		return i;
	for (d = i + 1; d < len && isdigit((unsigned char)p[d]); d++)
		;
	if (d == i + 1 || d - i - 1 > 5)
		return 0;
	return d;
}

int ns_alg_num(const char *p, size_t len, __u32 max, __u32 *v)
{
	__u64 x = 0;
	size_t i;

	if (!len || len > 10)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		x = x * 10 + (p[i] - '0');
	}
	if (x > max)
		return -EINVAL;
	*v = x;
	return 0;
}

bool ns_alg_prefix(const char *p, size_t len, const char *s)
{
	size_t n = strlen(s);

	return len >= n && !strncasecmp(p, s, n);
}

/* ---- lines ---- */

static int lines_overlong(struct ns_alg_lines *l, const __u8 *in, size_t n, bool lf,
			  struct ns_alg_buf *out)
{
	char ex[NS_ALG_EXCERPT_MAX];
	int err;

	if (l->log)
		ns_alg_warn(l->log, "line over %d bytes (%s): passed unchanged", NS_ALG_LINE_MAX,
			    l->len ? ns_alg_excerpt(l->buf, l->len, ex, sizeof(ex)) :
				     ns_alg_excerpt(in, n, ex, sizeof(ex)));
	err = ns_alg_buf_put(out, l->buf, l->len);
	l->len = 0;
	l->skip = !lf;
	return err ? err : ns_alg_buf_put(out, in, n);
}

int ns_alg_lines_feed(struct ns_alg_lines *l, const __u8 *in, size_t len,
		      ns_alg_line_fn fn, void *arg, struct ns_alg_buf *out)
{
	int err = 0;

	while (len && !err) {
		const __u8 *lf = memchr(in, '\n', len);
		size_t n = lf ? (size_t)(lf - in) + 1 : len;

		if (l->skip) {
			err = ns_alg_buf_put(out, in, n);
			l->skip = !lf;
		} else if (l->len + n > NS_ALG_LINE_MAX) {
			err = lines_overlong(l, in, n, lf, out);
		} else {
			memcpy(l->buf + l->len, in, n);
			l->len += n;
			if (lf) {
				err = fn(arg, l->buf, l->len, out);
				l->len = 0;
			}
		}
		in += n;
		len -= n;
	}
	if (err == NS_ALG_LINES_RAW)
		err = ns_alg_buf_put(out, in, len);
	return err;
}

int ns_alg_lines_flush(struct ns_alg_lines *l, struct ns_alg_buf *out)
{
	int err = ns_alg_buf_put(out, l->buf, l->len);

	l->len = 0;
	l->skip = false;
	return err;
}
