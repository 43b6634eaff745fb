/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing: Ethernet, up to two VLAN tags, IPv4 (with options) or IPv6
 * (with at most a Fragment header), then TCP or UDP. The result is the splice
 * table key and the offsets the rewrite needs; nothing is written.
 */
#ifndef NS_BPF_PARSE_H
#define NS_BPF_PARSE_H

#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/ctx.h"

/* TCP flags byte (RFC 9293 3.1); the same values as lib/pkt.h. */
#define NS_TCP_FIN	0x01
#define NS_TCP_SYN	0x02
#define NS_TCP_RST	0x04
#define NS_TCP_ACK	0x10
#define NS_TCP_FLAGS_OFF 13	/* byte offset in the TCP header */

#define NS_IP4_MF	0x2000	/* frag_off: more fragments (RFC 791) */
#define NS_IP4_OFFSET	0x1fff	/* frag_off: offset, 8-byte units */
#define NS_IP6_MF	0x0001	/* Fragment header: more fragments (RFC 8200 4.5) */
#define NS_IP6_OFFSET	0xfff8	/* Fragment header: offset << 3 */
#define NS_IP6_FLOWINFO	0x0fffffff	/* traffic class and flow label */

/* 802.1Q / 802.1AD tag. */
struct ns_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* IPv6 Fragment header (RFC 8200 4.5). */
struct ns_ip6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

/* Where a packet stands in its IP fragment train. */
enum ns_frag { NS_FRAG_NONE = 0, NS_FRAG_FIRST, NS_FRAG_LATER };

/* What ns_parse() learnt; `have` says which parts of key are valid. */
#define NS_HAVE_ADDR	(1U << 0)	/* family, proto, saddr, daddr */
#define NS_HAVE_PORTS	(1U << 1)	/* sport, dport: the whole key */

struct ns_parsed {
	struct ns_key key;
	__u32 l3_off;		/* IP header, from the frame start */
	__u32 l4_off;		/* TCP/UDP header */
	__u32 l3_len;		/* IPv4 total length / IPv6 40 + payload length */
	__u32 frag_id;		/* IPv4 id or IPv6 fragment id, as in the packet */
	__be32 flowinfo;	/* IPv6 traffic class + flow label, for the FIB */
	__u8 tos;		/* IPv4 TOS, for the FIB */
	__u8 ttl;		/* TTL / hop limit */
	__u32 seq, ack;		/* TCP, host order */
	__u32 tcp_len;		/* TCP payload bytes (of this fragment) */
	__u16 tcp_win;		/* TCP window field, host order, unscaled */
	__u8 tcp_flags;
	__u8 frag;		/* enum ns_frag */
	__u8 have;		/* NS_HAVE_* */
};

/* Outcome of ns_parse(). */
enum ns_parse_res {
	NS_P_OTHER = 0,	/* not IPv4/IPv6 TCP/UDP, or not parseable here: pass */
	NS_P_L4,	/* full key */
	NS_P_LATER,	/* non-first fragment: addresses, proto and frag id only */
	NS_P_BAD,	/* TCP/UDP with truncated or inconsistent headers */
};

/*
 * Does the frame hold len bytes from off (off is inside the first buffer)?
 * The first buffer answers for nearly every packet; only a longer claim asks
 * for the whole frame's length, a helper call in XDP.
 */
static __always_inline int ns_fits(struct ns_ctx *ctx, __u32 off, __u32 len)
{
	return len <= ctx_linear_len(ctx) - off || len <= ctx_len(ctx) - off;
}

/*
 * Headers end before the frame does. When the frame goes on beyond the
 * directly readable part (XDP multi-buffer) the headers may be in a later
 * buffer: pass, the TC program pulls and parses them. Otherwise the packet
 * is cut short.
 */
static __always_inline int ns_short(struct ns_ctx *ctx)
{
	return ctx_len(ctx) > ctx_linear_len(ctx) ? NS_P_OTHER : NS_P_BAD;
}

/*
 * The offsets come back from the stack: bound them so that data + off is a
 * packet pointer with a known range.
 */
static __always_inline int ns_parse_tcp(struct ns_ctx *ctx, struct ns_parsed *p)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u32 off = p->l4_off;
	struct tcphdr *th;

	if (off > NS_L4_OFF_MAX)
		return NS_P_BAD;
	th = data + off;
	if ((void *)(th + 1) > end)
		return ns_short(ctx);
	p->key.sport = th->source;
	p->key.dport = th->dest;
	p->have |= NS_HAVE_PORTS;
	p->tcp_flags = ((__u8 *)th)[NS_TCP_FLAGS_OFF];
	/* RFC 9293 3.1: the data offset is at least 5 words, and the whole
	 * header is inside the packet (RFC 1858: no tiny first fragments). */
	if (th->doff < 5 || th->doff * 4U > p->l3_len - (off - p->l3_off))
		return NS_P_BAD;
	p->seq = bpf_ntohl(th->seq);
	p->ack = bpf_ntohl(th->ack_seq);
	p->tcp_win = bpf_ntohs(th->window);
	p->tcp_len = p->l3_len - (off - p->l3_off) - th->doff * 4U;
	return NS_P_L4;
}

static __always_inline int ns_parse_udp(struct ns_ctx *ctx, struct ns_parsed *p)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u32 off = p->l4_off, ulen, l4_len;
	struct udphdr *uh;

	if (off > NS_L4_OFF_MAX)
		return NS_P_BAD;
	uh = data + off;
	if ((void *)(uh + 1) > end)
		return ns_short(ctx);
	p->key.sport = uh->source;
	p->key.dport = uh->dest;
	p->have |= NS_HAVE_PORTS;
	ulen = bpf_ntohs(uh->len);
	l4_len = p->l3_len - (off - p->l3_off);
	/* RFC 768: the length counts the header. A first fragment carries
	 * only the start of the datagram the length describes. */
	if (ulen < sizeof(*uh) || l4_len < sizeof(*uh) ||
	    (p->frag == NS_FRAG_NONE && ulen > l4_len))
		return NS_P_BAD;
	return NS_P_L4;
}

static __always_inline int ns_parse_l4(struct ns_ctx *ctx, struct ns_parsed *p)
{
	if (p->key.proto == IPPROTO_TCP)
		return ns_parse_tcp(ctx, p);
	return ns_parse_udp(ctx, p);
}

static __always_inline int ns_parse_ipv4(struct ns_ctx *ctx, struct ns_parsed *p)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	struct iphdr *iph = data + p->l3_off;
	__u32 hlen, frag;

	if ((void *)(iph + 1) > end)
		return ns_short(ctx);
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return NS_P_OTHER;
	p->key.family = NS_AF_INET;
	p->key.proto = iph->protocol;
	p->key.saddr[0] = iph->saddr;
	p->key.daddr[0] = iph->daddr;
	p->have = NS_HAVE_ADDR;
	p->tos = iph->tos;
	p->ttl = iph->ttl;
	if (iph->version != 4 || iph->ihl < 5)
		return NS_P_BAD;
	hlen = iph->ihl * 4;
	p->l3_len = bpf_ntohs(iph->tot_len);
	if (p->l3_len < hlen || !ns_fits(ctx, p->l3_off, p->l3_len))
		return NS_P_BAD;
	p->l4_off = p->l3_off + hlen;
	frag = bpf_ntohs(iph->frag_off);
	p->frag_id = iph->id;
	if (frag & NS_IP4_OFFSET) {
		p->frag = NS_FRAG_LATER;
		return NS_P_LATER;
	}
	if (frag & NS_IP4_MF)
		p->frag = NS_FRAG_FIRST;
	return ns_parse_l4(ctx, p);
}

static __always_inline int ns_parse_ipv6(struct ns_ctx *ctx, struct ns_parsed *p)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	struct ipv6hdr *ip6 = data + p->l3_off;
	struct ns_ip6_frag_hdr *fh = (void *)(ip6 + 1);
	__u8 proto;
	__u16 frag = 0;

	if ((void *)(ip6 + 1) > end)
		return ns_short(ctx);
	proto = ip6->nexthdr;
	if (proto == IPPROTO_FRAGMENT) {
		if ((void *)(fh + 1) > end)
			return ns_short(ctx);
		proto = fh->nexthdr;
		frag = bpf_ntohs(fh->frag_off);
		p->frag_id = fh->id;
	}
	/* Any other extension header: not a packet of ours. */
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return NS_P_OTHER;
	p->key.family = NS_AF_INET6;
	p->key.proto = proto;
	__builtin_memcpy(p->key.saddr, &ip6->saddr, sizeof(p->key.saddr));
	__builtin_memcpy(p->key.daddr, &ip6->daddr, sizeof(p->key.daddr));
	p->have = NS_HAVE_ADDR;
	p->ttl = ip6->hop_limit;
	p->flowinfo = *(__be32 *)ip6 & bpf_htonl(NS_IP6_FLOWINFO);
	/* A payload length of 0 is a jumbogram (RFC 2675), which needs a
	 * Hop-by-Hop header: with TCP/UDP next, it is inconsistent. */
	p->l3_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (ip6->version != 6 || p->l3_len == sizeof(*ip6) ||
	    !ns_fits(ctx, p->l3_off, p->l3_len))
		return NS_P_BAD;
	p->l4_off = p->l3_off + sizeof(*ip6);
	if (ip6->nexthdr == IPPROTO_FRAGMENT) {
		p->l4_off += sizeof(*fh);
		if (p->l4_off - p->l3_off > p->l3_len)
			return NS_P_BAD;
	}
	if (frag & NS_IP6_OFFSET) {
		p->frag = NS_FRAG_LATER;
		return NS_P_LATER;
	}
	/* Offset 0 without M is an atomic fragment (RFC 6946): whole. */
	if (frag & NS_IP6_MF)
		p->frag = NS_FRAG_FIRST;
	return ns_parse_l4(ctx, p);
}

/* Parse the headers of the frame into p; an enum ns_parse_res. */
static __always_inline int ns_parse(struct ns_ctx *ctx, struct ns_parsed *p)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	struct ethhdr *eth = data;
	__be16 proto;
	__u32 off = sizeof(*eth);
	int i;

	__builtin_memset(p, 0, sizeof(*p));
	if ((void *)(eth + 1) > end)
		return NS_P_OTHER;
	proto = eth->h_proto;
#pragma unroll
	for (i = 0; i < NS_VLAN_MAX; i++) {
		struct ns_vlan_hdr *vh = data + off;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			return NS_P_OTHER;
		proto = vh->proto;
		off += sizeof(*vh);
	}
	p->l3_off = off;
	if (proto == bpf_htons(ETH_P_IP))
		return ns_parse_ipv4(ctx, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return ns_parse_ipv6(ctx, p);
	return NS_P_OTHER;
}

#endif /* NS_BPF_PARSE_H */
