// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Packets the relay daemon reads and writes: head parsing, checksum checking
 * and filling, SYN option parsing, SYN-ACK and RST building (lib/pkt.h).
 * Every field is read and written through memcpy: buffers come from ring
 * buffers and raw sockets at any alignment.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "bytes.h"
#include "pkt.h"
#include "ns_csum.h"

#define IPV4_HLEN_MIN	20	/* bytes, ihl 5 */
#define IPV6_HLEN	40	/* bytes, fixed header */
#define TCP_HLEN_MIN	20	/* bytes, doff 5 */
#define TCP_HLEN_MAX	60	/* bytes, doff 15 */
#define UDP_HLEN	8	/* bytes */

#define IPV4_DF		0x4000	/* frag_off: don't fragment */
#define IPV4_MF		0x2000	/* frag_off: more fragments */
#define IPV4_FRAG_MASK	0x1fff	/* frag_off: offset in 8-byte units */

/* Offsets of the checksum field inside each header. */
#define IPV4_CSUM_OFF	10
#define TCP_CSUM_OFF	16
#define UDP_CSUM_OFF	6
#define ICMP_CSUM_OFF	2

/* The IP layer of a packet, as far as checksums and parsing need it. */
struct l3 {
	__u8 family;
	__u8 proto;
	__u8 addr_len;		/* 4 or 16 */
	__u8 later_frag;	/* IPv4 fragment without the L4 header */
	__u8 fragmented;	/* IPv4 MF set or offset != 0 */
	__u16 hlen;		/* IP header length */
	__u32 tot_len;		/* IP packet length from the header */
	const __u8 *saddr;
	const __u8 *daddr;
};

/*
 * Read the IP header at p (len bytes available). IPv6 extension headers are
 * not walked: the next header is taken as the upper-layer protocol.
 */
static int l3_parse(const __u8 *p, size_t len, struct l3 *l3)
{
	__u16 frag;

	memset(l3, 0, sizeof(*l3));
	if (len < 1)
		return -EINVAL;
	switch (p[0] >> 4) {
	case 4:
		if (len < IPV4_HLEN_MIN)
			return -EINVAL;
		l3->family = NS_AF_INET;
		l3->hlen = (p[0] & 0x0f) * 4;
		l3->tot_len = ns_get16(p + 2);
		if (l3->hlen < IPV4_HLEN_MIN || l3->hlen > len ||
		    l3->tot_len < l3->hlen)
			return -EINVAL;
		frag = ns_get16(p + 6);
		l3->fragmented = (frag & (IPV4_MF | IPV4_FRAG_MASK)) != 0;
		l3->later_frag = (frag & IPV4_FRAG_MASK) != 0;
		l3->proto = p[9];
		l3->addr_len = 4;
		l3->saddr = p + 12;
		l3->daddr = p + 16;
		return 0;
	case 6:
		if (len < IPV6_HLEN)
			return -EINVAL;
		l3->family = NS_AF_INET6;
		l3->hlen = IPV6_HLEN;
		l3->tot_len = IPV6_HLEN + ns_get16(p + 4);
		l3->proto = p[6];
		l3->addr_len = 16;
		l3->saddr = p + 8;
		l3->daddr = p + 24;
		return 0;
	default:
		return -EINVAL;
	}
}

int ns_pkt_parse(const void *pkt, size_t len, struct ns_pkt_info *pi)
{
	const __u8 *p = pkt;
	struct l3 l3;
	size_t l4hlen;
	const __u8 *l4;

	memset(pi, 0, sizeof(*pi));
	if (l3_parse(p, len, &l3) < 0 || l3.later_frag)
		return -EINVAL;
	if (l3.proto != IPPROTO_TCP && l3.proto != IPPROTO_UDP)
		return -EINVAL;
	l4 = p + l3.hlen;
	if (l3.proto == IPPROTO_TCP) {
		if (len < (size_t)l3.hlen + TCP_HLEN_MIN)
			return -EINVAL;
		l4hlen = (l4[12] >> 4) * 4;
		if (l4hlen < TCP_HLEN_MIN)
			return -EINVAL;
	} else {
		l4hlen = UDP_HLEN;
	}
	/* The L4 header must be in the buffer and inside the IP packet. */
	if ((size_t)l3.hlen + l4hlen > len || l3.hlen + l4hlen > l3.tot_len)
		return -EINVAL;

	pi->family = l3.family;
	pi->proto = l3.proto;
	memcpy(pi->saddr, l3.saddr, l3.addr_len);
	memcpy(pi->daddr, l3.daddr, l3.addr_len);
	memcpy(&pi->sport, l4, sizeof(pi->sport));
	memcpy(&pi->dport, l4 + 2, sizeof(pi->dport));
	pi->l4_off = l3.hlen;
	pi->payload_off = l3.hlen + l4hlen;
	if (l3.proto == IPPROTO_TCP) {
		pi->tcp_flags = l4[13];
		pi->seq = ns_get32(l4 + 4);
	}
	return 0;
}

/* One's complement sum of the pseudo header (RFC 9293 3.1, RFC 8200 8.1). */
static __u32 pseudo_sum(const struct l3 *l3, __u8 proto, __u32 l4_len)
{
	__u32 sum;

	sum = ns_csum_partial(l3->saddr, l3->addr_len, 0);
	sum = ns_csum_partial(l3->daddr, l3->addr_len, sum);
	/* proto and length as 16-bit network-order words; an IPv6 32-bit
	 * length and the zero-padded next header sum to the same. */
	sum += htons(proto);
	sum += htons((__u16)l4_len);
	return sum;
}

/*
 * Where the L4 checksum of a packet lives and what it covers. 0 and
 * *csum_off == 0 when the packet has no L4 checksum we can check (unknown
 * protocol, IPv4 fragment); -EINVAL when the L4 header is cut or inconsistent.
 */
static int l4_csum_span(const struct l3 *l3, const __u8 *l4, __u32 *l4_len,
			size_t *csum_off, int *with_pseudo)
{
	__u32 avail = l3->tot_len - l3->hlen;
	__u16 ulen;

	*csum_off = 0;
	*l4_len = avail;
	*with_pseudo = 1;
	/* The L4 checksum covers the reassembled datagram. */
	if (l3->fragmented)
		return 0;
	switch (l3->proto) {
	case IPPROTO_TCP:
		if (avail < TCP_HLEN_MIN || (__u32)(l4[12] >> 4) * 4 > avail)
			return -EINVAL;
		*csum_off = TCP_CSUM_OFF;
		return 0;
	case IPPROTO_UDP:
		if (avail < UDP_HLEN)
			return -EINVAL;
		/* The UDP length is authoritative; it may not exceed IP's. */
		ulen = ns_get16(l4 + 4);
		if (ulen < UDP_HLEN || ulen > avail)
			return -EINVAL;
		*l4_len = ulen;
		*csum_off = UDP_CSUM_OFF;
		return 0;
	case IPPROTO_ICMP:
		if (l3->family != NS_AF_INET || avail < 4)
			return -EINVAL;
		*csum_off = ICMP_CSUM_OFF;
		*with_pseudo = 0;
		return 0;
	case IPPROTO_ICMPV6:
		if (l3->family != NS_AF_INET6 || avail < 4)
			return -EINVAL;
		*csum_off = ICMP_CSUM_OFF;
		return 0;
	default:
		return 0;
	}
}

static __u32 l4_sum(const struct l3 *l3, const __u8 *l4, __u32 l4_len,
		    int with_pseudo)
{
	__u32 sum = with_pseudo ? pseudo_sum(l3, l3->proto, l4_len) : 0;

	return ns_csum_partial(l4, l4_len, sum);
}

int ns_pkt_csum_ok(const void *pkt, size_t len)
{
	const __u8 *p = pkt;
	const __u8 *l4;
	struct l3 l3;
	size_t csum_off;
	__u32 l4_len;
	int pseudo;

	if (l3_parse(p, len, &l3) < 0 || l3.tot_len > len)
		return 0;
	if (l3.family == NS_AF_INET &&
	    ns_csum_fold(ns_csum_partial(p, l3.hlen, 0)) != 0xffff)
		return 0;
	l4 = p + l3.hlen;
	if (l4_csum_span(&l3, l4, &l4_len, &csum_off, &pseudo) < 0)
		return 0;
	if (!csum_off)
		return 1;
	if (l3.proto == IPPROTO_UDP && ns_get16(l4 + csum_off) == 0)
		/* RFC 768: no checksum, allowed over IPv4 only (RFC 8200 8.1). */
		return l3.family == NS_AF_INET;
	/* A valid checksum makes the sum negative zero. */
	return ns_csum_fold(l4_sum(&l3, l4, l4_len, pseudo)) == 0xffff;
}

void ns_pkt_csum_fill(void *pkt, size_t len)
{
	__u8 *p = pkt;
	__u8 *l4;
	struct l3 l3;
	size_t csum_off;
	__u32 l4_len;
	__u16 csum;
	int pseudo;

	if (l3_parse(p, len, &l3) < 0)
		return;
	if (l3.family == NS_AF_INET) {
		memset(p + IPV4_CSUM_OFF, 0, 2);
		csum = ~ns_csum_fold(ns_csum_partial(p, l3.hlen, 0));
		memcpy(p + IPV4_CSUM_OFF, &csum, 2);
	}
	if (l3.tot_len > len)
		return;
	l4 = p + l3.hlen;
	if (l4_csum_span(&l3, l4, &l4_len, &csum_off, &pseudo) < 0 || !csum_off)
		return;
	memset(l4 + csum_off, 0, 2);
	csum = ~ns_csum_fold(l4_sum(&l3, l4, l4_len, pseudo));
	/* RFC 768: a computed 0 is sent as all ones, 0 means "none". */
	if (l3.proto == IPPROTO_UDP && csum == 0)
		csum = 0xffff;
	memcpy(l4 + csum_off, &csum, 2);
}

/* TCP option kinds (IANA "TCP Option Kind Numbers"). */
#define TCPOPT_EOL		0
#define TCPOPT_NOP		1
#define TCPOPT_MSS		2	/* RFC 9293 3.2 */
#define TCPOPT_WSCALE		3	/* RFC 7323 2 */
#define TCPOPT_SACK_PERM	4	/* RFC 2018 2 */
#define TCPOPT_TS		8	/* RFC 7323 3 */
#define TCPOPT_MD5		19	/* RFC 2385 */
#define TCPOPT_AO		29	/* RFC 5925 */

#define TCPOLEN_MSS		4
#define TCPOLEN_WSCALE		3
#define TCPOLEN_SACK_PERM	2
#define TCPOLEN_TS		10

#define TCP_WSCALE_MAX		14	/* RFC 7323 2.3 */

/* MSS assumed when a SYN carries none (RFC 9293 3.7.1, MUST-15). */
#define NS_MSS_DEFAULT_V4	536
#define NS_MSS_DEFAULT_V6	1220

#define NS_RST_TTL		64	/* TTL / hop limit of the RSTs we send */

/* Read one TCP option of a SYN into syn. */
static int syn_opt(const __u8 *o, __u8 olen, struct ns_syn *syn)
{
	switch (o[0]) {
	case TCPOPT_MSS:
		if (olen != TCPOLEN_MSS)
			return -EINVAL;
		syn->mss = ns_get16(o + 2);
		/* Like Linux, an MSS of 0 counts as no MSS option. */
		if (syn->mss)
			syn->opts |= NS_SYN_MSS;
		return 0;
	case TCPOPT_WSCALE:
		if (olen != TCPOLEN_WSCALE)
			return -EINVAL;
		/* RFC 7323 2.3: a shift above 14 is used as 14. */
		syn->wscale = o[2] > TCP_WSCALE_MAX ? TCP_WSCALE_MAX : o[2];
		syn->opts |= NS_SYN_WSCALE;
		return 0;
	case TCPOPT_SACK_PERM:
		if (olen != TCPOLEN_SACK_PERM)
			return -EINVAL;
		syn->opts |= NS_SYN_SACK;
		return 0;
	case TCPOPT_TS:
		if (olen != TCPOLEN_TS)
			return -EINVAL;
		syn->ts_val = ns_get32(o + 2);
		syn->opts |= NS_SYN_TS;
		return 0;
	case TCPOPT_MD5:
	case TCPOPT_AO:
		/* Signed segments cannot be spliced: we do not hold the keys. */
		return -EPERM;
	default:
		/* TFO (34), MPTCP (30) and anything unknown: dropped from the
		 * SYN-ACK, so the two ends never negotiate them. */
		return 0;
	}
}

int ns_syn_parse(const void *pkt, size_t len, struct ns_syn *syn)
{
	const __u8 *p = pkt;
	struct ns_pkt_info pi;
	const __u8 *tcp;
	size_t i, end;
	int err;

	memset(syn, 0, sizeof(*syn));
	if (ns_pkt_parse(p, len, &pi) < 0 || pi.proto != IPPROTO_TCP)
		return -EINVAL;
	if ((pi.tcp_flags & (NS_TCP_SYN | NS_TCP_ACK | NS_TCP_RST)) != NS_TCP_SYN)
		return -EINVAL;
	tcp = p + pi.l4_off;
	syn->isn = pi.seq;
	syn->window = ns_get16(tcp + 14);
	if ((pi.tcp_flags & (NS_TCP_ECE | NS_TCP_CWR)) == (NS_TCP_ECE | NS_TCP_CWR))
		syn->opts |= NS_SYN_ECN;

	i = pi.l4_off + TCP_HLEN_MIN;
	end = pi.payload_off;
	while (i < end) {
		if (p[i] == TCPOPT_EOL)
			break;
		if (p[i] == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= end || p[i + 1] < 2 || i + p[i + 1] > end)
			return -EINVAL;
		err = syn_opt(p + i, p[i + 1], syn);
		if (err < 0)
			return err;
		i += p[i + 1];
	}
	return 0;
}

/* Write an IPv4 or IPv6 header for l4_len bytes of TCP; its length. */
static size_t ip_hdr_write(__u8 *p, __u8 family, const __u32 src[4],
			   const __u32 dst[4], __u8 ttl, size_t l4_len)
{
	if (family == NS_AF_INET) {
		memset(p, 0, IPV4_HLEN_MIN);
		p[0] = 0x45;
		ns_put16(p + 2, IPV4_HLEN_MIN + l4_len);
		ns_put16(p + 6, IPV4_DF);
		p[8] = ttl;
		p[9] = IPPROTO_TCP;
		memcpy(p + 12, src, 4);
		memcpy(p + 16, dst, 4);
		return IPV4_HLEN_MIN;
	}
	memset(p, 0, IPV6_HLEN);
	p[0] = 0x60;
	ns_put16(p + 4, l4_len);
	p[6] = IPPROTO_TCP;
	p[7] = ttl;
	memcpy(p + 8, src, 16);
	memcpy(p + 24, dst, 16);
	return IPV6_HLEN;
}

/* Write a TCP header whose options (opt_len bytes, a multiple of 4) follow. */
static void tcp_hdr_write(__u8 *t, __be16 sport, __be16 dport, __u32 seq,
			  __u32 ack, __u8 flags, __u16 window, size_t opt_len)
{
	memset(t, 0, TCP_HLEN_MIN);
	memcpy(t, &sport, 2);
	memcpy(t + 2, &dport, 2);
	ns_put32(t + 4, seq);
	ns_put32(t + 8, ack);
	t[12] = ((TCP_HLEN_MIN + opt_len) / 4) << 4;
	t[13] = flags;
	ns_put16(t + 14, window);
}

/*
 * The SYN-ACK options, in the order and 4-byte layout Linux uses
 * (tcp_options_write): MSS; SACK-permitted + timestamps, or NOP NOP
 * timestamps; NOP NOP SACK-permitted; NOP window scale. At most 20 bytes.
 */
static size_t synack_opts_write(__u8 *o, __u8 both, __u16 mss,
				const struct ns_syn *own,
				const struct ns_syn *partner)
{
	__u8 *start = o;

	*o++ = TCPOPT_MSS;
	*o++ = TCPOLEN_MSS;
	ns_put16(o, mss);
	o += 2;
	if (both & NS_SYN_TS) {
		if (both & NS_SYN_SACK) {
			*o++ = TCPOPT_SACK_PERM;
			*o++ = TCPOLEN_SACK_PERM;
		} else {
			*o++ = TCPOPT_NOP;
			*o++ = TCPOPT_NOP;
		}
		*o++ = TCPOPT_TS;
		*o++ = TCPOLEN_TS;
		/* The receiver sees the partner's clock, and its own TSval
		 * echoed as if the partner had received it (DESIGN §2). */
		ns_put32(o, partner->ts_val);
		ns_put32(o + 4, own->ts_val);
		o += 8;
	} else if (both & NS_SYN_SACK) {
		*o++ = TCPOPT_NOP;
		*o++ = TCPOPT_NOP;
		*o++ = TCPOPT_SACK_PERM;
		*o++ = TCPOLEN_SACK_PERM;
	}
	if (both & NS_SYN_WSCALE) {
		*o++ = TCPOPT_NOP;
		*o++ = TCPOPT_WSCALE;
		*o++ = TCPOLEN_WSCALE;
		*o++ = partner->wscale;
	}
	return o - start;
}

#define SYNACK_OPTS_MAX	20	/* bytes: MSS 4 + SACK/TS 12 + WS 4 */

ssize_t ns_synack_build(const struct ns_synack_params *p, void *buf, size_t size)
{
	const struct ns_syn *own = p->own, *partner = p->partner;
	__u8 opts[SYNACK_OPTS_MAX];
	__u8 both, flags;
	size_t ip_len, opt_len, l4_len;
	__u16 mss;
	__u8 *b = buf;

	if (p->family != NS_AF_INET && p->family != NS_AF_INET6)
		return -EINVAL;
	both = own->opts & partner->opts;
	if (partner->opts & NS_SYN_MSS)
		mss = partner->mss;
	else
		mss = p->family == NS_AF_INET ? NS_MSS_DEFAULT_V4 : NS_MSS_DEFAULT_V6;
	if (p->mss_clamp && mss > p->mss_clamp)
		mss = p->mss_clamp;

	opt_len = synack_opts_write(opts, both, mss, own, partner);
	l4_len = TCP_HLEN_MIN + opt_len;
	ip_len = p->family == NS_AF_INET ? IPV4_HLEN_MIN : IPV6_HLEN;
	if (size < ip_len + l4_len)
		return -ENOSPC;

	flags = NS_TCP_SYN | NS_TCP_ACK;
	/* RFC 3168 6.1.1: an ECN-setup SYN-ACK has ECE set and CWR clear. */
	if (both & NS_SYN_ECN)
		flags |= NS_TCP_ECE;
	ip_hdr_write(b, p->family, p->relay, p->peer, p->ttl, l4_len);
	/* The SYN-ACK window is never scaled (RFC 7323 2.2). */
	tcp_hdr_write(b + ip_len, p->relay_port, p->peer_port, partner->isn,
		      own->isn + 1, flags, partner->window, opt_len);
	memcpy(b + ip_len + TCP_HLEN_MIN, opts, opt_len);
	ns_pkt_csum_fill(b, ip_len + l4_len);
	return ip_len + l4_len;
}

ssize_t ns_rst_build(__u8 family, const __u32 relay[4], __be16 relay_port,
		     const __u32 peer[4], __be16 peer_port, __u32 ack_seq,
		     void *buf, size_t size)
{
	size_t ip_len;
	__u8 *b = buf;

	if (family != NS_AF_INET && family != NS_AF_INET6)
		return -EINVAL;
	ip_len = family == NS_AF_INET ? IPV4_HLEN_MIN : IPV6_HLEN;
	if (size < ip_len + TCP_HLEN_MIN)
		return -ENOSPC;
	ip_hdr_write(b, family, relay, peer, NS_RST_TTL, TCP_HLEN_MIN);
	tcp_hdr_write(b + ip_len, relay_port, peer_port, 0, ack_seq,
		      NS_TCP_RST | NS_TCP_ACK, 0, 0);
	ns_pkt_csum_fill(b, ip_len + TCP_HLEN_MIN);
	return ip_len + TCP_HLEN_MIN;
}
