/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-packet logic of the relay (DESIGN §2), the same for XDP and TC:
 * spliced packets are rewritten and forwarded, SYNs and first datagrams to
 * expected relay ports are punted to the daemon, strangers to those ports are
 * dropped, and everything else goes to the kernel untouched.
 *
 * Every function returns a verdict (enum ns_stat, >= NS_V_PASS) or a negative
 * drop reason (-NS_DROP_*).
 */
#ifndef NS_BPF_SPLICE_H
#define NS_BPF_SPLICE_H

#include "lib/ctx.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/hop.h"
#include "lib/kmod.h"
#include "lib/clock.h"
#include "lib/police.h"

/* last_seen_ns resolution, ns: a store per packet would bounce the entry's cache line. */
#define NS_SEEN_GRANULARITY_NS	1000000000ULL
/* How long after its install an entry whose side has not been heard from
 * drops that side's RSTs (ns_early_rst): B's SYN retransmission (1 s, then 3 s)
 * brings a lost SYN-ACK again well within it. */
#define NS_EARLY_RST_NS		5000000000ULL

static __always_inline int ns_addr_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* Is the packet addressed to the relay's own (configured) address? */
static __always_inline int ns_to_relay(const struct ns_parsed *p)
{
	const __u32 *d = p->key.daddr;

	if (p->key.family == NS_AF_INET)
		return relay_addr4 && d[0] == relay_addr4;
	if (!(relay_addr6[0] | relay_addr6[1] | relay_addr6[2] | relay_addr6[3]))
		return 0;
	return d[0] == relay_addr6[0] && d[1] == relay_addr6[1] &&
	       d[2] == relay_addr6[2] && d[3] == relay_addr6[3];
}

/* An opening SYN: SYN without ACK (and without RST). */
static __always_inline int ns_is_syn(const struct ns_parsed *p)
{
	return p->key.proto == IPPROTO_TCP &&
	       (p->tcp_flags & (NS_TCP_SYN | NS_TCP_ACK | NS_TCP_RST)) == NS_TCP_SYN;
}

/* Copy the head of the packet, from its IP header, to the daemon. */
static __always_inline int ns_punt(struct ns_ctx *ctx, const struct ns_parsed *p,
				   __u32 splice_id, __u8 side, __u8 reason)
{
	struct ns_punt *rec;
	__u32 len = p->l3_len;

	_Static_assert((NS_PUNT_BYTES & (NS_PUNT_BYTES - 1)) == 0,
		       "NS_PUNT_BYTES must be a power of two");

	rec = bpf_ringbuf_reserve(&ns_punts, sizeof(*rec), 0);
	if (!rec)
		return -NS_DROP_RINGBUF;
	if (len > NS_PUNT_BYTES)
		len = NS_PUNT_BYTES;
	/* The load helpers want a size the verifier sees in [1, sizeof
	 * data]. A plain `len == 0` test does not do: clang tests one copy
	 * of len and passes another. l3_len >= 20 here, so this changes
	 * nothing but the proof. */
	len = ((len - 1) & (NS_PUNT_BYTES - 1)) + 1;
	if (ctx_load_bytes(ctx, p->l3_off, rec->data, len) < 0) {
		bpf_ringbuf_discard(rec, 0);
		return -NS_DROP_MALFORMED;
	}
	rec->ifindex = ctx_ifindex(ctx);
	rec->splice_id = splice_id;
	rec->pkt_len = p->l3_len;
	rec->len = len;
	rec->side = side;
	rec->reason = reason;
	bpf_ringbuf_submit(rec, 0);
	return NS_V_PUNT;
}

/*
 * Headers that do not add up. The kernel would drop the packet anyway; the
 * point is that a packet of a spliced flow never reaches it (no socket owns
 * the relay port: it would answer with an RST). Without ports, anything to
 * the relay address counts as possibly spliced.
 */
static __always_inline int ns_malformed(const struct ns_parsed *p)
{
	if ((p->have & NS_HAVE_PORTS) && bpf_map_lookup_elem(&ns_table, &p->key))
		return -NS_DROP_MALFORMED;
	if ((p->have & NS_HAVE_ADDR) && ns_to_relay(p))
		return -NS_DROP_MALFORMED;
	return NS_V_PASS;
}

/*
 * Rewrite addresses, ports, TTL/hop limit and checksums; the Ethernet
 * addresses too when the FIB resolved them. Direct writes first: the TC
 * checksum helpers invalidate packet pointers.
 */
static __always_inline int ns_rewrite(struct ns_ctx *ctx, const struct ns_parsed *p,
				      const struct ns_rewrite *val,
				      const struct bpf_fib_lookup *fib, int set_mac)
{
	void *data = ctx_data(ctx), *end = ctx_data_end(ctx);
	__u32 l3 = p->l3_off, l4 = p->l4_off, csum_off;
	int udp = p->key.proto == IPPROTO_UDP;
	struct ethhdr *eth = data;
	__be16 *ports;

	/* Offsets reloaded from the stack: bound them for the verifier. */
	if (l3 > NS_L3_OFF_MAX || l4 > NS_L4_OFF_MAX)
		return -NS_DROP_MALFORMED;
	/* Verifiers before 6.8 do not carry a bounds check over to a copy
	 * clang spilled before it (6.1: "R1 offset is outside of the
	 * packet"): mask the offsets as well, behind a barrier that keeps
	 * clang from proving the masks redundant. No value changes. */
	_Static_assert(NS_L4_OFF_MAX <= 0x7f, "offset mask too small");
	barrier_var(l3);
	barrier_var(l4);
	l3 &= 0x7f;
	l4 &= 0x7f;
	if ((void *)(eth + 1) > end)
		return -NS_DROP_MALFORMED;
	if (set_mac) {
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	}
	if (p->key.family == NS_AF_INET) {
		struct iphdr *iph = data + l3;

		if ((void *)(iph + 1) > end)
			return -NS_DROP_MALFORMED;
		iph->saddr = val->saddr[0];
		iph->daddr = val->daddr[0];
		/* csum_l3 includes the TTL decrement. */
		iph->ttl--;
		iph->check = ns_csum_apply(iph->check, val->csum_l3);
	} else {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > end)
			return -NS_DROP_MALFORMED;
		__builtin_memcpy(&ip6->saddr, val->saddr, sizeof(ip6->saddr));
		__builtin_memcpy(&ip6->daddr, val->daddr, sizeof(ip6->daddr));
		ip6->hop_limit--;
	}
	/* The L4 header and checksum travel in the first fragment only; the
	 * deltas do not depend on the payload, so updating the first
	 * fragment's checksum fixes the whole datagram's. */
	if (p->frag == NS_FRAG_LATER)
		return 0;
	ports = data + l4;
	if ((void *)(ports + 2) > end)
		return -NS_DROP_MALFORMED;
	ports[0] = val->sport;
	ports[1] = val->dport;
	csum_off = l4 + (udp ? __builtin_offsetof(struct udphdr, check) :
			       __builtin_offsetof(struct tcphdr, check));
	return ctx_l4_csum(ctx, csum_off, val->csum_pseudo, val->csum_ports, udp);
}

/* TTL, route, rewrite, send: the fast path of a table hit. */
static __always_inline int ns_forward(struct ns_ctx *ctx, const struct ns_parsed *p,
				      struct ns_rewrite *val, __u64 now)
{
	struct bpf_fib_lookup fib = {};
	int rc, ret;

	/* RFC 1812 5.3.1: a router does not forward with TTL <= 1. */
	if (p->ttl <= 1)
		return -NS_DROP_TTL;
	if (p->l3_off != ETH_HLEN)
		return ctx_forward_tagged();
	rc = ns_next_hop(ctx, p, val, now, &fib);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		break;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		/* XDP cannot resolve a neighbour: leave the packet as it was
		 * to the TC program, whose redirect resolves it. */
		if (CTX_IS_XDP)
			return NS_V_FALLBACK;
		break;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return -NS_DROP_SIZE;
	default:
		return -NS_DROP_FIB;
	}
	ret = ns_rewrite(ctx, p, val, &fib, rc == BPF_FIB_LKUP_RET_SUCCESS);
	if (ret < 0)
		return ret;
	return ctx_redirect(ctx, &fib, rc == BPF_FIB_LKUP_RET_SUCCESS);
}

/* The fragment train a packet belongs to (RFC 791 3.2, RFC 8200 4.5). */
static __always_inline void ns_frag_key(const struct ns_parsed *p, struct ns_frag_key *fk)
{
	__builtin_memset(fk, 0, sizeof(*fk));
	__builtin_memcpy(fk->saddr, p->key.saddr, sizeof(fk->saddr));
	__builtin_memcpy(fk->daddr, p->key.daddr, sizeof(fk->daddr));
	fk->id = p->frag_id;
	fk->proto = p->key.proto;
	fk->family = p->key.family;
}

/*
 * RFC 5961 in the fast path. An off-path attacker who knows a splice's
 * 5-tuple (relay address and port, a NAT's address and a port it kept) can
 * forge its segments, but not guess its sequence numbers. ns_track holds per
 * side d what d has sent (snd_max), acknowledged (ack_max) and offered: the
 * right edge of its receive window (edge) and the largest window (max_win).
 * A segment from d is one its receiver r would take when
 *
 *	ack_max[r] - max_win[r]  <=  seq  <=  max(snd_max[d], edge[r])
 *	ack_max[d] - max_win[d]  <=  ack  <=  snd_max[r]
 *
 * each bound widened by NS_WIN_MARGIN (reordering between CPUs, a mark
 * written late by another CPU): a sender never has more than the window its
 * receiver offered in flight, so a retransmission goes back at most max_win
 * behind what was acknowledged, and never sends beyond the edge it was
 * offered. The edge counts, not only what was seen: data lost before the
 * relay moves the next segment's seq beyond snd_max by as much as was lost.
 * A segment without ACK (not RST) is rejected by the endpoint in any
 * synchronized state (RFC 9293 3.10.7.4). Anything else is dropped here
 * (NS_DROP_WINDOW), so it neither reaches the endpoint nor marks the
 * splice. An RST in the window closes the splice only when it is exact
 * (seq = the receiver's rcv_nxt, or the sender's snd_max: RFC 5961 3.2); an
 * inexact one is forwarded, the endpoint answers it with a challenge ACK,
 * and the splice stays. Returns 0 (forward), 1 (forward, do not mark it
 * closed), or -NS_DROP_WINDOW. Only what is in the window moves the marks,
 * so a forged segment cannot move them either.
 */
#define NS_WIN_MARGIN	(256U << 10)

static __always_inline int ns_seq_le(__u32 a, __u32 b)
{
	return (__s32)(b - a) >= 0;
}

static __always_inline __u32 ns_seq_max(__u32 a, __u32 b)
{
	return ns_seq_le(a, b) ? b : a;
}

static __always_inline int ns_window(const struct ns_parsed *p, const struct ns_rewrite *val)
{
	__u32 slot = NS_SPLICE_SLOT(val->splice_id), d = val->dir & 1, r = !d, win;
	int rst = !!(p->tcp_flags & NS_TCP_RST);
	struct ns_track *t;

	if (p->key.proto != IPPROTO_TCP || p->frag != NS_FRAG_NONE)
		return 0;
	t = bpf_map_lookup_elem(&ns_track, &slot);
	if (!t || t->splice_id != val->splice_id)
		return 0;	/* not tracked (UDP, the module's handshake) */
	if (!rst && !(p->tcp_flags & NS_TCP_ACK))
		return -NS_DROP_WINDOW;
	if (!ns_seq_le(t->ack_max[r] - t->max_win[r] - NS_WIN_MARGIN, p->seq) ||
	    !ns_seq_le(p->seq, ns_seq_max(t->snd_max[d], t->edge[r]) + NS_WIN_MARGIN))
		return -NS_DROP_WINDOW;
	if ((p->tcp_flags & NS_TCP_ACK) &&
	    (!ns_seq_le(p->ack, t->snd_max[r] + NS_WIN_MARGIN) ||
	     !ns_seq_le(t->ack_max[d] - t->max_win[d] - NS_WIN_MARGIN, p->ack)))
		return -NS_DROP_WINDOW;
	if (rst)
		return p->seq == t->ack_max[r] || p->seq == t->snd_max[d] ? 0 : 1;
	t->snd_max[d] = ns_seq_max(t->snd_max[d],
				   p->seq + p->tcp_len + !!(p->tcp_flags & NS_TCP_FIN));
	t->ack_max[d] = ns_seq_max(t->ack_max[d], p->ack);
	win = (__u32)p->tcp_win << (t->wscale[d] & 15);
	t->edge[d] = ns_seq_max(t->edge[d], p->ack + win);
	if (win > t->max_win[d])
		t->max_win[d] = win;
	return 0;
}

/* Book-keeping of a forwarded packet: flags, last seen, counters, fragments.
 * inexact: an RST that does not close the splice (ns_window). */
static __always_inline void ns_account(const struct ns_parsed *p, struct ns_rewrite *val,
				       __u64 now, int inexact)
{
	__u32 slot = NS_SPLICE_SLOT(val->splice_id);
	__u32 dir = val->dir & 1;
	struct ns_counters *c;

	if (p->tcp_flags & NS_TCP_FIN)
		ns_flag_set(val, NS_F_FIN);
	if (p->tcp_flags & NS_TCP_RST) {
		if (!inexact)
			ns_flag_set(val, NS_F_RST);
	} else if (p->key.proto == IPPROTO_TCP && !(val->flags & NS_F_HEARD))
		ns_flag_set(val, NS_F_HEARD);	/* (ns_early_rst) */
	if (now > val->last_seen_ns + NS_SEEN_GRANULARITY_NS)
		val->last_seen_ns = now;
	c = bpf_map_lookup_elem(&ns_counters, &slot);
	if (c) {
		c->packets[dir] += 1;
		c->bytes[dir] += p->l3_len;
	}
	if (p->frag == NS_FRAG_FIRST) {
		struct ns_frag_key fk;

		ns_frag_key(p, &fk);
		bpf_map_update_elem(&ns_frags, &fk, &p->key, BPF_ANY);
	}
}

/* Forward a packet of a splice (in its window) and account for it. */
static __always_inline int ns_splice_packet(struct ns_ctx *ctx, const struct ns_parsed *p,
					    struct ns_rewrite *val)
{
	__u64 now = ns_now();
	int inexact = ns_window(p, val), ret;

	if (inexact < 0)
		return inexact;
	if (!ns_police_pass(p->l3_len, p->tcp_flags))
		return -NS_DROP_RATE;
	ret = ns_forward(ctx, p, val, now);
	if (ret == NS_V_TX || ret == NS_V_REDIRECT)
		ns_account(p, val, now, inexact);
	return ret;
}

/*
 * No splice: a SYN (TCP) or any datagram (UDP) to an expected relay port from
 * its allowed source goes to the daemon; anything else to that port is a
 * stranger. Ports nobody expects belong to the host.
 */
static __always_inline int ns_miss(struct ns_ctx *ctx, const struct ns_parsed *p)
{
	struct ns_port_key pk = {
		.proto = p->key.proto,
		.family = p->key.family,
		.port = p->key.dport,
	};
	struct ns_port_val *exp;
	int tcp = p->key.proto == IPPROTO_TCP, allowed;

	if (!ns_to_relay(p))
		return NS_V_PASS;
	exp = bpf_map_lookup_elem(&ns_ports, &pk);
	if (!exp)
		return NS_V_PASS;
	allowed = exp->allow_any || ns_addr_eq(p->key.saddr, exp->allow);
	if (tcp && !ns_is_syn(p)) {
		/* A side that was answered proves itself with its ACK: the
		 * daemon wants it (relay_splice.c, "proving"). An RST proves
		 * nothing, except at a public port, where a client answers a
		 * challenge with one (relay_public.c). */
		if (exp->proving && allowed && !(p->tcp_flags & NS_TCP_SYN) &&
		    (!(p->tcp_flags & NS_TCP_RST) || (exp->splice_id & NS_PUBLIC_BIT)))
			return ns_punt(ctx, p, exp->splice_id, exp->side, NS_PUNT_PROOF);
		return exp->loose ? NS_V_PASS : -NS_DROP_STRANGER;
	}
	if (!allowed)
		return exp->loose ? NS_V_PASS : -NS_DROP_SOURCE;
	if (tcp && ns_kmod_syn(ctx, p, exp->splice_id, exp->side) >= 0)
		return NS_V_HANDSHAKE;
	return ns_punt(ctx, p, exp->splice_id, exp->side,
		       tcp ? NS_PUNT_SYN : NS_PUNT_UDP);
}

/*
 * A side's first TCP segment after the handshake other than an RST proves
 * that its NAT saw our SYN-ACK; ns_account() marks the entry (NS_F_HEARD).
 * Before that, an RST from the side's address is not the side's own: a
 * strict NAT answers a segment of the partner that outran the SYN-ACK (its
 * connection is still SYN-SENT) with an RST of its own. The segment is lost
 * and will be retransmitted, but the RST, forwarded, would end the splice:
 * it is dropped, for NS_EARLY_RST_NS after the install (last_seen_ns: no
 * packet of this side has refreshed it). Later, an unheard side that resets
 * means it.
 */
static __always_inline int ns_early_rst(const struct ns_parsed *p,
					const struct ns_rewrite *val)
{
	return p->key.proto == IPPROTO_TCP && (p->tcp_flags & NS_TCP_RST) &&
	       !(val->flags & NS_F_HEARD) && ns_now() < val->last_seen_ns + NS_EARLY_RST_NS;
}

/*
 * A NAT that reused a finished connection's addresses and ports for a new
 * one sends the new side's proof (its ACK of our SYN-ACK, see ns_miss) with
 * the 5-tuple of the old splice's entry, which stays in the table for the
 * close grace (the daemon reclaims it only once the new pair is complete).
 * On an entry of a connection that is over, a segment to a relay port where
 * another splice waits for this side's proof is that proof, not the old
 * connection's. Only entries that saw a FIN or an RST pay for the lookups.
 */
static __always_inline int ns_reused_proof(const struct ns_parsed *p,
					   const struct ns_rewrite *val)
{
	struct ns_port_key pk = {
		.proto = p->key.proto,
		.family = p->key.family,
		.port = p->key.dport,
	};
	struct ns_port_val *exp;

	if (!(val->flags & (NS_F_FIN | NS_F_RST)) || p->key.proto != IPPROTO_TCP ||
	    (p->tcp_flags & NS_TCP_RST))
		return 0;
	exp = bpf_map_lookup_elem(&ns_ports, &pk);
	return exp && exp->proving && exp->splice_id != val->splice_id &&
	       ns_entry_over(&p->key, val);
}

static __always_inline int ns_hit(struct ns_ctx *ctx, const struct ns_parsed *p,
				  struct ns_rewrite *val)
{
	/* A SYN never crosses a splice: the daemon answered both sides. A
	 * retransmitted one means our SYN-ACK was lost; the daemon sends it
	 * again. SYN|ACK or SYN|RST has no place on a spliced flow. A SYN on
	 * the entry of a connection that is over opens a new one from the
	 * same addresses and ports (a NAT reused its mapping, RFC 6191's
	 * case): it belongs to whichever splice expects the relay port. */
	if (p->tcp_flags & NS_TCP_SYN) {
		if (!ns_is_syn(p))
			return -NS_DROP_MALFORMED;
		if (ns_entry_over(&p->key, val))
			return ns_miss(ctx, p);
		if (ns_kmod_syn(ctx, p, val->splice_id, val->dir) >= 0)
			return NS_V_HANDSHAKE;
		return ns_punt(ctx, p, val->splice_id, val->dir, NS_PUNT_SYN_RETX);
	}
	if (ns_reused_proof(p, val))
		return ns_miss(ctx, p);
	if (ns_early_rst(p, val))
		return -NS_DROP_EARLY_RST;
	return ns_splice_packet(ctx, p, val);
}

/*
 * A non-first fragment has no ports: find its splice through the key its
 * first fragment recorded. Fragments of unknown trains go to the kernel.
 */
static __always_inline int ns_later_fragment(struct ns_ctx *ctx,
					     const struct ns_parsed *p)
{
	struct ns_frag_key fk;
	struct ns_rewrite *val;
	struct ns_key *key;

	ns_frag_key(p, &fk);
	key = bpf_map_lookup_elem(&ns_frags, &fk);
	if (!key)
		return NS_V_PASS;
	val = bpf_map_lookup_elem(&ns_table, key);
	if (!val)
		return NS_V_PASS;
	return ns_splice_packet(ctx, p, val);
}

/* One packet: a verdict or a negative drop reason. */
static __always_inline int ns_relay(struct ns_ctx *ctx)
{
	struct ns_parsed p;
	struct ns_rewrite *val;

	ctx_pull_headers(ctx);
	switch (ns_parse(ctx, &p)) {
	case NS_P_L4:
		val = bpf_map_lookup_elem(&ns_table, &p.key);
		if (val)
			return ns_hit(ctx, &p, val);
		return ns_miss(ctx, &p);
	case NS_P_LATER:
		return ns_later_fragment(ctx, &p);
	case NS_P_BAD:
		return ns_malformed(&p);
	default:
		return NS_V_PASS;
	}
}

#endif /* NS_BPF_SPLICE_H */
