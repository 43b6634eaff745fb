/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The context layer: everything that differs between an XDP buffer and a TC
 * skb, so that parse.h and splice.h are written once. The entry file defines
 * NS_CTX_XDP or NS_CTX_TC before including this header; `struct ns_ctx` is
 * then struct xdp_md or struct __sk_buff.
 */
#ifndef NS_BPF_CTX_H
#define NS_BPF_CTX_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "natsplice_abi.h"
#include "ns_csum.h"

#if defined(NS_CTX_XDP)
#define ns_ctx xdp_md
#define CTX_IS_XDP 1
#elif defined(NS_CTX_TC)
#define ns_ctx __sk_buff
#define CTX_IS_XDP 0
#else
#error "define NS_CTX_XDP or NS_CTX_TC before including lib/ctx.h"
#endif

/* Header bytes the parser reads, from the start of the frame. */
#define NS_VLAN_MAX	2				/* 802.1Q/802.1AD tags */
#define NS_VLAN_HLEN	4				/* bytes per tag */
#define NS_L3_OFF_MAX	(ETH_HLEN + NS_VLAN_MAX * NS_VLAN_HLEN)
#define NS_IP_HLEN_MAX	60				/* bytes, IPv4 ihl 15 */
#define NS_L4_OFF_MAX	(NS_L3_OFF_MAX + NS_IP_HLEN_MAX)
#define NS_TCP_HLEN	20				/* bytes, without options */
#define NS_HDR_MAX	(NS_L4_OFF_MAX + NS_TCP_HLEN)	/* bytes */
#define NS_FIB_LEN_GSO	(~0U)		/* ctx_fib_len() of a GSO skb */

static __always_inline void *ctx_data(const struct ns_ctx *ctx)
{
	return (void *)(long)ctx->data;
}

static __always_inline void *ctx_data_end(const struct ns_ctx *ctx)
{
	return (void *)(long)ctx->data_end;
}

/* Bytes directly readable at ctx_data(). */
static __always_inline __u32 ctx_linear_len(const struct ns_ctx *ctx)
{
	return (__u32)(ctx_data_end(ctx) - ctx_data(ctx));
}

#ifdef NS_CTX_XDP

/* The whole frame, all xdp.frags buffers included. */
static __always_inline __u32 ctx_len(struct xdp_md *ctx)
{
	return (__u32)bpf_xdp_get_buff_len(ctx);
}

static __always_inline __u32 ctx_ifindex(const struct xdp_md *ctx)
{
	return ctx->ingress_ifindex;
}

/*
 * XDP cannot linearize a multi-buffer frame. Headers that straddle the first
 * buffer make the parser pass the frame on; the TC program, always attached
 * next to XDP, pulls and handles it.
 */
static __always_inline void ctx_pull_headers(struct xdp_md *ctx)
{
}

static __always_inline int ctx_load_bytes(struct xdp_md *ctx, __u32 off,
					  void *to, __u32 len)
{
	return bpf_xdp_load_bytes(ctx, off, to, len);
}

/* The IP length is the packet the egress MTU must carry. */
static __always_inline __u16 ctx_fib_tot_len(__u32 l3_len)
{
	return (__u16)l3_len;
}

/*
 * The length the FIB's MTU check compares: a next hop cached for a packet
 * that passed serves packets no longer (lib/hop.h).
 */
static __always_inline __u32 ctx_fib_len(struct xdp_md *ctx, __u32 l3_len)
{
	return ctx_fib_tot_len(l3_len);
}

/*
 * L4 checksum after an address/port rewrite: RFC 1624 eqn. 3 with the two
 * precomputed deltas. A UDP checksum of 0 means "none" (RFC 768).
 */
static __always_inline int ctx_l4_csum(struct xdp_md *ctx, __u32 off,
				       __u16 pseudo, __u16 ports, int udp)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u16 *csum, delta;

	/* Bound the offset again: the verifier needs a range to add to a
	 * packet pointer, and this value comes back from the stack. */
	if (off > NS_HDR_MAX)
		return -NS_DROP_MALFORMED;
	csum = data + off;
	if ((void *)(csum + 1) > end)
		return -NS_DROP_MALFORMED;
	delta = ns_csum_add(pseudo, ports);
	*csum = udp ? ns_csum_apply_udp(*csum, delta) : ns_csum_apply(*csum, delta);
	return 0;
}

/*
 * A spliced packet in a VLAN-tagged frame. The FIB names the egress device
 * but not the tag it needs, so XDP cannot build the frame; TC, which sees it
 * after the kernel moved the outer tag into skb->vlan_tci, forwards it.
 */
static __always_inline int ctx_forward_tagged(void)
{
	return NS_V_FALLBACK;
}

/* Out the way it came (XDP_TX) or to the FIB's egress device. */
static __always_inline int ctx_redirect(struct xdp_md *ctx,
					const struct bpf_fib_lookup *fib,
					int neigh_known)
{
	if (fib->ifindex == ctx->ingress_ifindex)
		return NS_V_TX;
	if (bpf_redirect(fib->ifindex, 0) != XDP_REDIRECT)
		return -NS_DROP_FIB;
	return NS_V_REDIRECT;
}

#else /* NS_CTX_TC */

/* The whole frame, paged data included (cls_bpf pushed the MAC header). */
static __always_inline __u32 ctx_len(const struct __sk_buff *skb)
{
	return skb->len;
}

static __always_inline __u32 ctx_ifindex(const struct __sk_buff *skb)
{
	return skb->ifindex;
}

/*
 * Make every header the parser reads directly accessible. Most skbs already
 * have them in the linear area; the pull is for drivers that leave them in
 * page fragments. It invalidates packet pointers: call it before any.
 */
static __always_inline void ctx_pull_headers(struct __sk_buff *skb)
{
	__u32 want = skb->len < NS_HDR_MAX ? skb->len : NS_HDR_MAX;

	if (ctx_linear_len(skb) < want)
		bpf_skb_pull_data(skb, want);
}

static __always_inline int ctx_load_bytes(struct __sk_buff *skb, __u32 off,
					  void *to, __u32 len)
{
	return bpf_skb_load_bytes(skb, off, to, len);
}

/*
 * 0: the kernel checks the skb against the egress MTU itself, GSO-aware
 * (is_skb_forwardable). A GRO-merged skb's IP length exceeds the MTU
 * legitimately; it is segmented again on the way out.
 */
static __always_inline __u16 ctx_fib_tot_len(__u32 l3_len)
{
	return 0;
}

/*
 * The length the kernel's MTU check compares (is_skb_forwardable): the skb's,
 * or for a GSO skb its segments', which a cached next hop (lib/hop.h) cannot
 * vouch for: NS_FIB_LEN_GSO, longer than any it holds.
 */
static __always_inline __u32 ctx_fib_len(struct __sk_buff *skb, __u32 l3_len)
{
	return skb->gso_size ? NS_FIB_LEN_GSO : skb->len;
}

/*
 * L4 checksum after an address/port rewrite. A CHECKSUM_PARTIAL skb (local
 * senders, veth) holds the pseudo-header sum in the field and the device sums
 * the rest, so it must see only the pseudo-header delta: the helper knows the
 * skb's checksum state, we do not. BPF_F_MARK_MANGLED_0 keeps a UDP checksum
 * of 0 ("none", RFC 768) and writes a computed 0 as 0xffff. The helpers
 * invalidate packet pointers: call this after the last direct write.
 */
static __always_inline int ctx_l4_csum(struct __sk_buff *skb, __u32 off,
				       __u16 pseudo, __u16 ports, int udp)
{
	__u64 zero = udp ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_l4_csum_replace(skb, off, 0, pseudo, BPF_F_PSEUDO_HDR | zero))
		return -NS_DROP_MALFORMED;
	if (ports && bpf_l4_csum_replace(skb, off, 0, ports, zero))
		return -NS_DROP_MALFORMED;
	return 0;
}

/*
 * A spliced packet in a VLAN-tagged frame. The kernel moves the outer tag
 * into skb->vlan_tci before TC ingress, so a tag still in the data is an
 * inner (QinQ) one. bpf_redirect_neigh() strips ETH_HLEN bytes and trusts
 * skb->protocol: it cannot send such a frame.
 */
static __always_inline int ctx_forward_tagged(void)
{
	return -NS_DROP_FIB;
}

/*
 * To the FIB's egress device through the neighbour layer: with the FIB's
 * next hop when its neighbour is known, without one (the kernel routes and
 * resolves) when it is not yet.
 */
static __always_inline int ctx_redirect(struct __sk_buff *skb,
					const struct bpf_fib_lookup *fib,
					int neigh_known)
{
	struct bpf_redir_neigh nh = { .nh_family = fib->family };
	long rc;

	if (neigh_known) {
		__builtin_memcpy(nh.ipv6_nh, fib->ipv6_dst, sizeof(nh.ipv6_nh));
		rc = bpf_redirect_neigh(fib->ifindex, &nh, sizeof(nh), 0);
	} else {
		rc = bpf_redirect_neigh(fib->ifindex, NULL, 0, 0);
	}
	return rc == TC_ACT_REDIRECT ? NS_V_REDIRECT : -NS_DROP_FIB;
}

#endif /* NS_CTX_TC */

#endif /* NS_BPF_CTX_H */
