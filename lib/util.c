// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "util.h"

int ns_parse_u32(const char *s, __u32 *v)
{
	unsigned long long x = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		x = x * 10 + (*s - '0');
		if (x > UINT32_MAX)
			return -EINVAL;
	}
	*v = x;
	return 0;
}

int ns_parse_port(const char *s, __u16 *port)
{
	__u32 v;

	if (ns_parse_u32(s, &v) || v < 1 || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

int ns_parse_addr(const char *s, __u8 *family, __u32 addr[4])
{
	__u32 a[4] = { 0 };

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, a) == 1) {
		*family = AF_INET;
	} else if (inet_pton(AF_INET6, s, a) == 1) {
		*family = AF_INET6;
	} else {
		return -EINVAL;
	}
	memcpy(addr, a, sizeof(a));
	return 0;
}

/* The bits of addr (network order) that a prefix of len bits keeps: word i's mask. */
static __u32 prefix_mask(unsigned int len, int i)
{
	unsigned int bits = len > 32u * i ? len - 32u * i : 0;

	return bits >= 32 ? 0xffffffffu : bits ? htonl(~0u << (32 - bits)) : 0;
}

int ns_prefix_parse(const char *s, struct ns_prefix *p)
{
	char buf[NS_ADDRSTRLEN + 4];
	const char *slash;
	__u32 len;
	int i;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	slash = strchr(s, '/');
	memcpy(buf, s, slash ? (size_t)(slash - s) : strlen(s));
	buf[slash ? slash - s : (ptrdiff_t)strlen(s)] = 0;
	if (ns_parse_addr(buf, &p->family, p->addr))
		return -EINVAL;
	len = p->family == AF_INET ? 32 : 128;
	if (slash && (ns_parse_u32(slash + 1, &len) || len > (p->family == AF_INET ? 32u : 128u)))
		return -EINVAL;
	p->len = len;
	for (i = 0; i < 4; i++)
		if (p->addr[i] & ~prefix_mask(len, i))
			return -EINVAL;		/* host bits set: a typo, most likely */
	return 0;
}

int ns_prefix_match(const struct ns_prefix *p, __u8 family, const __u32 addr[4])
{
	int i;

	if (family != p->family)
		return 0;
	for (i = 0; i < 4; i++)
		if ((addr[i] & prefix_mask(p->len, i)) != p->addr[i])
			return 0;
	return 1;
}

/* "a.b.c.d:port" or "[v6]:port"; a bare v6 address has no port to split off. */
int ns_parse_hostport(const char *s, __u8 *family, __u32 addr[4], __u16 *port)
{
	char host[NS_ADDRSTRLEN];
	const char *colon, *hs;
	size_t hlen;
	__u32 a[4];
	__u8 fam;
	__u16 p;

	if (!s)
		return -EINVAL;
	if (*s == '[') {
		colon = strstr(s, "]:");
		if (!colon)
			return -EINVAL;
		hs = s + 1;
		hlen = colon - hs;
		colon++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hs = s;
		hlen = colon - s;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (ns_parse_addr(host, &fam, a) || ns_parse_port(colon + 1, &p))
		return -EINVAL;
	/* Brackets are for IPv6 only, and IPv6 needs them. */
	if ((*s == '[') != (fam == AF_INET6))
		return -EINVAL;
	*family = fam;
	memcpy(addr, a, sizeof(a));
	*port = p;
	return 0;
}

int ns_parse_port_range(const char *s, __u16 *lo, __u16 *hi)
{
	char buf[12];
	const char *dash;
	size_t len;
	__u16 l, h;

	if (!s)
		return -EINVAL;
	dash = strchr(s, '-');
	if (!dash) {
		if (ns_parse_port(s, &l))
			return -EINVAL;
		*lo = *hi = l;
		return 0;
	}
	len = dash - s;
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (ns_parse_port(buf, &l) || ns_parse_port(dash + 1, &h) || l > h)
		return -EINVAL;
	*lo = l;
	*hi = h;
	return 0;
}

const char *ns_addr_str(__u8 family, const __u32 addr[4], char *buf, size_t len)
{
	if ((family != AF_INET && family != AF_INET6) ||
	    !inet_ntop(family, addr, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

int ns_addr_is_zero(const __u32 addr[4])
{
	return !(addr[0] | addr[1] | addr[2] | addr[3]);
}

__u64 ns_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int ns_random_bytes(void *buf, size_t len)
{
	if (len > INT_MAX || RAND_bytes(buf, (int)len) != 1)
		return -EIO;
	return 0;
}

void ns_hex(const void *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int ns_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes into buf only when the whole string is valid. */
int ns_unhex(const char *s, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t i;

	if (!s || strlen(s) != 2 * len)
		return -EINVAL;
	for (i = 0; i < 2 * len; i++)
		if (ns_hexval(s[i]) < 0)
			return -EINVAL;
	for (i = 0; i < len; i++)
		p[i] = ns_hexval(s[2 * i]) << 4 | ns_hexval(s[2 * i + 1]);
	return 0;
}

socklen_t ns_sockaddr_make(__u8 family, const __u32 addr[4], __be16 port,
			   struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = addr[0];
		sin->sin_port = port;
		return sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, 16);
		sin6->sin6_port = port;
		return sizeof(*sin6);
	}
}

socklen_t ns_sockaddr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

__u16 ns_sockaddr_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port :
			((const struct sockaddr_in6 *)ss)->sin6_port);
}

void ns_sockaddr_set_port(struct sockaddr_storage *ss, __u16 port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

const char *ns_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[NS_ADDRSTRLEN];
	__u32 addr[4];
	__be16 port;
	__u8 family;

	ns_sockaddr_split(ss, &family, addr, &port);
	ns_addr_str(family, addr, ip, sizeof(ip));
	snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, ntohs(port));
	return buf;
}

void ns_sockaddr_split(const struct sockaddr_storage *ss, __u8 *family, __u32 addr[4],
		       __be16 *port)
{
	memset(addr, 0, 16);
	*family = ss->ss_family;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		addr[0] = sin->sin_addr.s_addr;
		*port = sin->sin_port;
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		memcpy(addr, &sin6->sin6_addr, 16);
		*port = sin6->sin6_port;
	}
}

int ns_parse_sockaddr(const char *s, int port_optional, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	__u32 addr[4];
	__u16 port = 0;
	__u8 family;

	if (ns_parse_hostport(s, &family, addr, &port) &&
	    (!port_optional || ns_parse_addr(s, &family, addr)))
		return -EINVAL;
	*len = ns_sockaddr_make(family, addr, htons(port), ss);
	return 0;
}

__u32 ns_backoff_ms(unsigned int attempt, __u32 rnd, __u32 min_ms, __u32 max_ms)
{
	__u64 base = min_ms;

	while (attempt-- && base < max_ms)
		base *= 2;
	if (base > max_ms)
		base = max_ms;
	/* base * (0.75 + 0.5 * rnd / 2^32): 0.75 * base .. 1.25 * base. The
	 * jitter keeps peers that failed together from retrying together. */
	return (__u32)(base * 3 / 4 + ((base / 2) * rnd >> 32));
}

void ns_summary_add(struct ns_summary *s, const char *fmt, ...)
{
	va_list ap;

	if (s->off && s->off < sizeof(s->buf))
		s->off += snprintf(s->buf + s->off, sizeof(s->buf) - s->off, ", ");
	if (s->off >= sizeof(s->buf))
		return;
	va_start(ap, fmt);
	s->off += vsnprintf(s->buf + s->off, sizeof(s->buf) - s->off, fmt, ap);
	va_end(ap);
}

/*
 * GCRA (the token bucket of ATM's I.371): each request moves the
 * theoretical arrival time one interval on; a request passes while that
 * time is at most burst - 1 intervals ahead of now. Exactly burst pass at
 * once, then one per interval.
 */
bool ns_rate_allow(struct ns_gcra *g, __u32 rate, __u32 burst, __u64 now_ns)
{
	__u64 interval, tat;

	if (!rate)
		return true;
	interval = 1000000000ULL / rate;
	tat = g->tat_ns > now_ns ? g->tat_ns : now_ns;
	if (tat - now_ns > (__u64)(burst ? burst - 1 : 0) * interval)
		return false;
	g->tat_ns = tat + interval;
	return true;
}

void ns_bw_init(struct ns_bw *b, __u32 mbit)
{
	__u64 min_ns;

	memset(b, 0, sizeof(*b));
	if (!mbit)
		return;
	b->ps_per_byte = 8000000ULL / mbit;	/* 8 bits / (mbit * 1e6 bit/s), in ps */
	if (!b->ps_per_byte)
		b->ps_per_byte = 1;
	b->burst_ns = NS_BW_BURST_MS * 1000000ULL;
	min_ns = NS_BW_BURST_MIN * b->ps_per_byte / 1000;
	if (b->burst_ns < min_ns)
		b->burst_ns = min_ns;
}

__u64 ns_bw_room(const struct ns_bw *b, __u64 now_ns)
{
	__u64 ahead;

	if (!b->ps_per_byte)
		return UINT64_MAX;
	ahead = b->tat_ns > now_ns ? b->tat_ns - now_ns : 0;
	if (ahead >= b->burst_ns)
		return 0;
	return (b->burst_ns - ahead) * 1000 / b->ps_per_byte;
}

void ns_bw_spend(struct ns_bw *b, __u64 bytes, __u64 now_ns)
{
	if (!b->ps_per_byte)
		return;
	if (b->tat_ns < now_ns)
		b->tat_ns = now_ns;
	b->tat_ns += bytes * b->ps_per_byte / 1000;
}

int ns_socket_bound(const struct sockaddr_storage *ss, int type, int reuse)
{
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, err;

	if (fd < 0)
		return -errno;
	if (reuse & 1)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuse & 2)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, ns_sockaddr_len(ss))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}
