// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The PROXY protocol header, versions 1 and 2 (proxyhdr.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "proxyhdr.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

/* An address in both forms: 16 bytes (IPv6, IPv4-mapped for IPv4), and
 * whether it is IPv4 (native or mapped). */
struct ep {
	unsigned char a6[16];
	unsigned short port;	/* network order */
	int v4;
};

static int ep_of(const struct sockaddr_storage *ss, struct ep *e)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!ss)
		return -1;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		memcpy(e->a6, mapped, 12);
		memcpy(e->a6 + 12, &in->sin_addr, 4);
		e->port = in->sin_port;
		e->v4 = 1;
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		memcpy(e->a6, &in6->sin6_addr, 16);
		e->port = in6->sin6_port;
		e->v4 = !memcmp(e->a6, mapped, 12);
		return 0;
	}
	return -1;
}

static ssize_t v1(const struct ep *s, const struct ep *d, int known, char *buf, size_t len)
{
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int v4 = known && s->v4 && d->v4, n;

	if (!known) {
		n = snprintf(buf, len, "PROXY UNKNOWN\r\n");
	} else {
		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? s->a6 + 12 : s->a6, sa, sizeof(sa));
		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? d->a6 + 12 : d->a6, da, sizeof(da));
		n = snprintf(buf, len, "PROXY %s %s %s %u %u\r\n", v4 ? "TCP4" : "TCP6", sa, da,
			     ntohs(s->port), ntohs(d->port));
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

static ssize_t v2(const struct ep *s, const struct ep *d, int known, unsigned char *buf,
		  size_t len)
{
	int v4 = known && s->v4 && d->v4;
	size_t alen = !known ? 0 : v4 ? 12 : 36, off = 16;

	if (len < 16 + alen)
		return -ENOSPC;
	memcpy(buf, v2_sig, sizeof(v2_sig));
	buf[12] = known ? 0x21 : 0x20;		/* version 2, PROXY or LOCAL */
	buf[13] = !known ? 0x00 : v4 ? 0x11 : 0x21;	/* TCP over IPv4 / IPv6 */
	buf[14] = alen >> 8;
	buf[15] = alen & 0xff;
	if (!known)
		return 16;
	memcpy(buf + off, v4 ? s->a6 + 12 : s->a6, v4 ? 4 : 16);
	off += v4 ? 4 : 16;
	memcpy(buf + off, v4 ? d->a6 + 12 : d->a6, v4 ? 4 : 16);
	off += v4 ? 4 : 16;
	memcpy(buf + off, &s->port, 2);
	memcpy(buf + off + 2, &d->port, 2);
	return off + 4;
}

ssize_t ns_proxy_header(int version, const struct sockaddr_storage *src,
			const struct sockaddr_storage *dst, void *buf, size_t len)
{
	struct ep s, d;
	int known = !ep_of(src, &s) && !ep_of(dst, &d);

	if (version == NS_PROXY_V1)
		return v1(&s, &d, known, buf, len);
	if (version == NS_PROXY_V2)
		return v2(&s, &d, known, buf, len);
	return -EINVAL;
}
