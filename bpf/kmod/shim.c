// SPDX-License-Identifier: GPL-2.0-only
/*
 * natsplice_kmod.ko: the kernel module shim of the relay (DESIGN §2). Kfuncs
 * that let the relay's XDP and TC programs complete the passive splice
 * handshake without a round trip to user space:
 *
 *   bpf_ns_{xdp,skb}_syn     record one side's SYN in its splice (the
 *                            ns_splices map value) and say whether the pair
 *                            is complete;
 *   bpf_ns_splice_done       the program installed both table entries (or
 *                            could not): mark the splice established (or
 *                            expire it, so the daemon resets both sides);
 *   bpf_ns_{xdp,skb}_synack  build the SYN-ACK for one side from the
 *                            partner's SYN and send it, routed in the
 *                            device's namespace like the daemon's raw socket.
 *
 * The SYN parser and the SYN-ACK builder are lib/pkt.c itself, and the
 * pairing of the two SYNs lib/pair.c, compiled into the module (compat/ maps
 * their user-space includes to the kernel's): both paths pair alike and
 * answer with byte-identical SYN-ACKs. The loader finds the module by
 * its BTF (/sys/kernel/btf/natsplice_kmod); natsplice_kfunc.h has the calls.
 */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/filter.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <net/ip.h>
#include <net/ip6_route.h>
#include <net/route.h>
#include <net/xdp.h>

#include "natsplice_abi.h"
#include "natsplice_kfunc.h"
#include "pair.h"
#include "pkt.h"

/* What the daemon uses for the SYN-ACKs it sends (relay/relay_send.c). */
#define NS_SYNACK_TTL		64
#define NS_SYNACK_BYTES		128	/* IPv6 + TCP + options fit */
#define NS_IPV4_TCP_HLEN	40	/* MSS clamp = device MTU - these */
#define NS_IPV6_TCP_HLEN	60

/* Kernels before 6.4 have no __bpf_kfunc; before 6.9 kfunc sets were BTF_SET8. */
#ifndef __bpf_kfunc
#define __bpf_kfunc __used noinline
#endif
#ifndef BTF_KFUNCS_START
#define BTF_KFUNCS_START(name) BTF_SET8_START(name)
#define BTF_KFUNCS_END(name) BTF_SET8_END(name)
#endif

/*
 * Serialises every read-modify-write of a splice's handshake fields: the two
 * sides' SYNs may arrive on two CPUs at once, and exactly one of them must
 * see the pair complete. Handshakes are rare next to data packets; one lock
 * is enough.
 */
static DEFINE_SPINLOCK(ns_hs_lock);

/* A SYN of a passive TCP splice (pkt: len bytes from the IP header): the
 * pairing of lib/pair.c, as the daemon does it, under the lock. */
static int ns_syn(const u8 *pkt, u32 len, void *splice, u32 splice__sz, u32 side)
{
	struct ns_splice *s = splice;
	struct ns_pkt_info pi;
	struct ns_syn syn;
	unsigned long flags;
	int err, ret;

	if (splice__sz != sizeof(*s))
		return -E2BIG;
	if (side > 1)
		return -EINVAL;
	err = ns_syn_parse(pkt, len, &syn);
	if (err)
		return err;
	if (ns_pkt_parse(pkt, len, &pi))
		return -EINVAL;

	spin_lock_irqsave(&ns_hs_lock, flags);
	if (s->proto != IPPROTO_TCP || s->mode != NS_MODE_PASSIVE)
		ret = -EOPNOTSUPP;
	else
		ret = ns_pair_syn(s, &pi, &syn, side);
	spin_unlock_irqrestore(&ns_hs_lock, flags);
	switch (ret) {
	case NS_PAIR_DONE:
		return NS_KF_PAIRED;
	case NS_PAIR_AGAIN:
		return NS_KF_AGAIN;
	case NS_PAIR_DUP:
	case NS_PAIR_HALF:
		return NS_KF_WAIT;
	default:
		return ret;
	}
}

/* Send a complete IP packet (checksums filled) from the relay, routed in
 * net, the way an IPPROTO_RAW socket of the daemon would. */
static int ns_xmit(struct net *net, u8 family, const u8 *pkt, u32 len)
{
	struct sk_buff *skb;
	int err;

	skb = alloc_skb(LL_MAX_HEADER + len, GFP_ATOMIC);
	if (!skb)
		return -ENOMEM;
	skb_reserve(skb, LL_MAX_HEADER);
	skb_reset_network_header(skb);
	skb_put_data(skb, pkt, len);
	skb->ip_summed = CHECKSUM_NONE;

	if (family == NS_AF_INET) {
		const struct iphdr *iph = ip_hdr(skb);
		struct flowi4 fl4 = {
			.daddr = iph->daddr,
			.saddr = iph->saddr,
			.flowi4_proto = IPPROTO_TCP,
			.flowi4_flags = FLOWI_FLAG_ANYSRC,
		};
		struct rtable *rt = ip_route_output_key(net, &fl4);

		if (IS_ERR(rt)) {
			kfree_skb(skb);
			return PTR_ERR(rt);
		}
		skb_dst_set(skb, &rt->dst);
		skb->protocol = htons(ETH_P_IP);
		err = ip_local_out(net, NULL, skb);
	} else {
		const struct ipv6hdr *ip6 = ipv6_hdr(skb);
		struct flowi6 fl6 = {
			.daddr = ip6->daddr,
			.saddr = ip6->saddr,
			.flowi6_proto = IPPROTO_TCP,
			.flowi6_flags = FLOWI_FLAG_ANYSRC,
		};
		struct dst_entry *dst = ip6_route_output(net, NULL, &fl6);

		if (dst->error) {
			err = dst->error;
			dst_release(dst);
			kfree_skb(skb);
			return err;
		}
		skb_dst_set(skb, dst);
		skb->protocol = htons(ETH_P_IPV6);
		err = ip6_local_out(net, NULL, skb);
	}
	return net_xmit_eval(err) ? -EIO : 0;
}

/* relay_send_synack() of the daemon: the SYN-ACK towards `side`. */
static int ns_synack(struct net_device *dev, void *splice, u32 splice__sz, u32 side)
{
	struct ns_splice s;
	struct ns_synack_params p = {};
	unsigned long flags;
	u8 buf[NS_SYNACK_BYTES];
	ssize_t len;

	if (splice__sz != sizeof(s))
		return -E2BIG;
	if (side > 1 || !dev)
		return -EINVAL;
	spin_lock_irqsave(&ns_hs_lock, flags);
	s = *(struct ns_splice *)splice;
	spin_unlock_irqrestore(&ns_hs_lock, flags);
	if (s.seen != 3)
		return -EINVAL;	/* a SYN-ACK is made of both SYNs */

	p.family = s.family;
	p.ttl = NS_SYNACK_TTL;
	/* The daemon clamps to the MTU of the device it serves: this one. */
	p.mss_clamp = dev->mtu - (s.family == NS_AF_INET ? NS_IPV4_TCP_HLEN : NS_IPV6_TCP_HLEN);
	memcpy(p.relay, s.relay, sizeof(p.relay));
	p.relay_port = s.port[side];
	memcpy(p.peer, s.peer[side].addr, sizeof(p.peer));
	p.peer_port = s.peer[side].port;
	p.own = &s.syn[side];
	p.partner = &s.syn[!side];
	len = ns_synack_build(&p, buf, sizeof(buf));
	if (len < 0)
		return len;
	return ns_xmit(dev_net(dev), s.family, buf, len);
}

__diag_push();
__diag_ignore_all("-Wmissing-prototypes", "kfuncs are called from BPF, not from C");

/* The head of an XDP packet from l3_off: the linear part of its first buffer. */
__bpf_kfunc int bpf_ns_xdp_syn(struct xdp_md *ctx, u32 l3_off, void *splice, u32 splice__sz,
			       u32 side)
{
	struct xdp_buff *xdp = (struct xdp_buff *)ctx;
	u32 avail = xdp->data_end - xdp->data;

	if (l3_off >= avail)
		return -EINVAL;
	return ns_syn((u8 *)xdp->data + l3_off, min_t(u32, avail - l3_off, NS_PUNT_BYTES),
		      splice, splice__sz, side);
}

/* The same for TC: at clsact ingress skb->data is the MAC header, where the
 * program's offsets start. */
__bpf_kfunc int bpf_ns_skb_syn(struct __sk_buff *ctx, u32 l3_off, void *splice,
			       u32 splice__sz, u32 side)
{
	struct sk_buff *skb = (struct sk_buff *)ctx;
	u8 buf[NS_PUNT_BYTES];
	const u8 *pkt;
	u32 len;

	if (l3_off >= skb->len)
		return -EINVAL;
	len = min_t(u32, skb->len - l3_off, sizeof(buf));
	pkt = skb_header_pointer(skb, l3_off, len, buf);
	if (!pkt)
		return -EINVAL;
	return ns_syn(pkt, len, splice, splice__sz, side);
}

__bpf_kfunc int bpf_ns_xdp_synack(struct xdp_md *ctx, void *splice, u32 splice__sz, u32 side)
{
	struct xdp_buff *xdp = (struct xdp_buff *)ctx;

	return ns_synack(xdp->rxq->dev, splice, splice__sz, side);
}

__bpf_kfunc int bpf_ns_skb_synack(struct __sk_buff *ctx, void *splice, u32 splice__sz,
				  u32 side)
{
	struct sk_buff *skb = (struct sk_buff *)ctx;

	return ns_synack(skb->dev, splice, splice__sz, side);
}

/*
 * After NS_KF_PAIRED. ok: both table entries are in place: established, the
 * SYN-ACKs may go. !ok: they could not be installed: the half-open deadline
 * is set to 0, and the daemon's next collection resets both sides and
 * deletes the splice, as it does when its own install fails.
 */
__bpf_kfunc int bpf_ns_splice_done(void *splice, u32 splice__sz, u32 ok)
{
	struct ns_splice *s = splice;
	unsigned long flags;
	int ret = 0;

	if (splice__sz != sizeof(*s))
		return -E2BIG;
	spin_lock_irqsave(&ns_hs_lock, flags);
	if (s->seen != 3 || s->state >= NS_ST_ESTABLISHED) {
		ret = -EINVAL;
	} else if (ok) {
		smp_wmb();
		WRITE_ONCE(s->state, NS_ST_ESTABLISHED);
	} else {
		WRITE_ONCE(s->deadline_ns, 0);
	}
	spin_unlock_irqrestore(&ns_hs_lock, flags);
	return ret;
}

__diag_pop();

BTF_KFUNCS_START(ns_kfunc_ids)
BTF_ID_FLAGS(func, bpf_ns_xdp_syn)
BTF_ID_FLAGS(func, bpf_ns_skb_syn)
BTF_ID_FLAGS(func, bpf_ns_xdp_synack)
BTF_ID_FLAGS(func, bpf_ns_skb_synack)
BTF_ID_FLAGS(func, bpf_ns_splice_done)
BTF_KFUNCS_END(ns_kfunc_ids)

static const struct btf_kfunc_id_set ns_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &ns_kfunc_ids,
};

static int __init ns_kmod_init(void)
{
	int err;

	/* A kfunc whose context type does not match the program's is refused
	 * by the verifier: registering all of them for both types is safe. */
	err = register_btf_kfunc_id_set(BPF_PROG_TYPE_XDP, &ns_kfunc_set);
	if (!err)
		err = register_btf_kfunc_id_set(BPF_PROG_TYPE_SCHED_CLS, &ns_kfunc_set);
	if (err)
		pr_err("natsplice_kmod: cannot register the kfuncs: %d\n", err);
	else
		pr_info("natsplice_kmod: handshake kfuncs registered (XDP, TC)\n");
	return err;
}

static void __exit ns_kmod_exit(void)
{
	/* Kfunc sets go with the module's BTF; programs that call them hold
	 * a reference on the module, so nothing can call in after this. */
}

module_init(ns_kmod_init);
module_exit(ns_kmod_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("natsplice relay: passive TCP splice handshake in the kernel (kfuncs)");
