/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The next hop of a table hit: what bpf_fib_lookup() answers, or what it
 * answered to the same question less than NS_HOP_LIFETIME_NS ago, kept in
 * the entry (struct ns_hop, words in include/ns_hop.h). The lookup is about
 * half the cost of a hit (test/bench/prog_bench).
 *
 * The question is what the lookup reads that may change from one packet of a
 * direction to the next: the hook (XDP and TC check the MTU differently), the
 * ingress device, the IPv4 DSCP or IPv6 flow info, and the length the MTU
 * check compares; addresses and ports are the entry's own. Only a SUCCESS is
 * kept: NO_NEIGH (XDP leaves the packet to TC), FRAG_NEEDED and failures are
 * asked again by every packet, as before. A packet longer than the longest
 * one that passed asks again, and if it passes it becomes the longest. So a
 * hit gets what the lookup would have answered at most a lifetime ago: a
 * route, neighbour or MTU change reaches a spliced flow within
 * NS_HOP_LIFETIME_NS instead of at once.
 *
 * Concurrency. The packets of one direction may run on several CPUs at once
 * (an RSS change, two ingress devices, XDP and TC). Stores are rare and take
 * the entry's bpf_spin_lock: writers store one after another. Every packet
 * reads, and readers take no lock. BPF has no memory barriers, so a reader
 * may see the words of a store in any order, mixed with words of the store
 * before: each word is stored and loaded whole (NS_ONCE: one 64-bit access,
 * single-copy atomic on 64-bit JITs) with the 16-bit tag of its store, and a
 * reader uses the words only when their tags are all equal and not 0 (the
 * daemon's zeroes). A store in progress thus reads as no cache: the packet
 * asks the FIB. Tags count up under the lock, so words of two stores with
 * the same tag have 65534 stores between them; an entry takes one store per
 * lifetime plus one per new longest length (ns_hop_put), so a reader would
 * have to stall for most of a second between two of its loads.
 * (As with flags and last_seen_ns, a store racing with the daemon's delete
 * of the entry may land in the element the table hands out next; a wrong
 * answer there serves one lifetime at most.)
 */
#ifndef NS_BPF_HOP_H
#define NS_BPF_HOP_H

#include "lib/ctx.h"
#include "lib/parse.h"
#include "ns_hop.h"

#define NS_HOP_HOOK	(CTX_IS_XDP ? NS_HOP_XDP : NS_HOP_TC)

/*
 * What the IPv4 FIB reads of the TOS byte: not the ECN field (RFC 3168 5),
 * which routers on the way may set to CE. The IPv6 policy rules of older
 * kernels (6.1) compare the whole traffic class: the IPv6 question keeps it.
 */
#define NS_IP_DSCP		0xfc

/* One whole access, neither split nor repeated by the compiler. */
#define NS_ONCE(x)		(*(volatile __typeof__(x) *)&(x))

/* A packet's question, as ns_hop holds it (tag bits 0). */
struct ns_hop_q {
	__u64 in;
	__u64 flow;
	__u32 len;		/* ctx_fib_len() */
};

/* Route the rewritten packet: from the new source to the new destination. */
static __always_inline int ns_fib(struct ns_ctx *ctx, const struct ns_parsed *p,
				  const struct ns_rewrite *val,
				  struct bpf_fib_lookup *fib)
{
	fib->family = p->key.family;
	fib->l4_protocol = p->key.proto;
	fib->sport = val->sport;
	fib->dport = val->dport;
	fib->tot_len = ctx_fib_tot_len(p->l3_len);
	fib->ifindex = ctx_ifindex(ctx);
	if (p->key.family == NS_AF_INET) {
		fib->tos = p->tos;
		fib->ipv4_src = val->saddr[0];
		fib->ipv4_dst = val->daddr[0];
	} else {
		fib->flowinfo = p->flowinfo;
		__builtin_memcpy(fib->ipv6_src, val->saddr, sizeof(fib->ipv6_src));
		__builtin_memcpy(fib->ipv6_dst, val->daddr, sizeof(fib->ipv6_dst));
	}
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
}

static __always_inline void ns_hop_question(struct ns_ctx *ctx, const struct ns_parsed *p,
					    struct ns_hop_q *q)
{
	__u32 flow = p->key.family == NS_AF_INET ? p->tos & NS_IP_DSCP : p->flowinfo;

	q->in = ns_hop_in(ctx_ifindex(ctx), NS_HOP_HOOK);
	q->flow = (__u64)flow << 16;
	q->len = ctx_fib_len(ctx, p->l3_len);
}

/* The words of h, each loaded once; nh only by TC, which alone uses it. */
static __always_inline void ns_hop_load(const struct ns_hop *h, struct ns_hop *s)
{
	int i;

	s->at = NS_ONCE(h->at);
	s->in = NS_ONCE(h->in);
	s->flow = NS_ONCE(h->flow);
	s->out = NS_ONCE(h->out);
	s->dmac = NS_ONCE(h->dmac);
	s->smac = NS_ONCE(h->smac);
	if (!CTX_IS_XDP) {
#pragma unroll
		for (i = 0; i < 4; i++)
			s->nh[i] = NS_ONCE(h->nh[i]);
	}
}

/* Is s (a reader's snapshot, or the cache under the lock) a fresh answer
 * whose words are all from one store? */
static __always_inline int ns_hop_usable(const struct ns_hop *s, __u64 now)
{
	__u64 tag = s->at & NS_HOP_TAG, diff;
	int i;

	diff = (s->in ^ tag) | (s->flow ^ tag) | (s->out ^ tag) |
	       (s->dmac ^ tag) | (s->smac ^ tag);
	if (!CTX_IS_XDP) {
#pragma unroll
		for (i = 0; i < 4; i++)
			diff |= s->nh[i] ^ tag;
	}
	return ns_hop_fresh(s->at, now) && !(diff & NS_HOP_TAG);
}

/* Is s (usable) an answer to q's question, for any length? */
static __always_inline int ns_hop_asked(const struct ns_hop *s, const struct ns_hop_q *q)
{
	return (s->in & ~NS_HOP_TAG) == q->in && (s->flow & ~NS_HOP_TAG) == q->flow;
}

/* The cached answer to q, into fib as bpf_fib_lookup() fills it: 1, or 0. */
static __always_inline int ns_hop_get(const struct ns_hop *h, const struct ns_hop_q *q,
				      __u64 now, struct bpf_fib_lookup *fib)
{
	struct ns_hop s;
	int i;

	ns_hop_load(h, &s);
	if (!ns_hop_usable(&s, now) || !ns_hop_asked(&s, q) ||
	    q->len > ns_hop_out_len(s.out))
		return 0;
	/* bpf_redirect_neigh() wants the next hop's address. */
	if (!CTX_IS_XDP) {
#pragma unroll
		for (i = 0; i < 4; i++)
			fib->ipv6_dst[i] = s.nh[i] >> 16;
	}
	fib->ifindex = ns_hop_out_ifindex(s.out);
	ns_hop_unpack6(s.dmac, fib->dmac);
	ns_hop_unpack6(s.smac, fib->smac);
	return 1;
}

/*
 * Keep a SUCCESS of the lookup for q. A usable answer stays unless it is to
 * the same question for shorter packets: when another CPU refreshed it first,
 * or packets ask different questions (the first one keeps the cache, the
 * others are looked up: that bounds the stores).
 */
static __always_inline void ns_hop_put(struct ns_rewrite *val, const struct ns_hop_q *q,
				       __u64 now, const struct bpf_fib_lookup *fib)
{
	struct ns_hop *h = &val->hop;
	__u64 out = ns_hop_out(fib->ifindex, q->len);
	__u64 dmac = ns_hop_pack6(fib->dmac), smac = ns_hop_pack6(fib->smac);
	__u64 tag;
	int i;

	if (q->len > NS_HOP_LEN_MAX)
		return;
	bpf_spin_lock(&val->hop_lock);
	/* Other writers wait: h holds still. */
	if (ns_hop_usable(h, now) &&
	    (!ns_hop_asked(h, q) || q->len <= ns_hop_out_len(h->out)))
		goto out;
	tag = h->at & NS_HOP_TAG;
	tag = tag == NS_HOP_TAG ? 1 : tag + 1;
	NS_ONCE(h->in) = q->in | tag;
	NS_ONCE(h->flow) = q->flow | tag;
	NS_ONCE(h->out) = out | tag;
	NS_ONCE(h->dmac) = dmac | tag;
	NS_ONCE(h->smac) = smac | tag;
	if (!CTX_IS_XDP) {
#pragma unroll
		for (i = 0; i < 4; i++)
			NS_ONCE(h->nh[i]) = (__u64)fib->ipv6_dst[i] << 16 | tag;
	}
	NS_ONCE(h->at) = ns_hop_at(now) | tag;
out:
	bpf_spin_unlock(&val->hop_lock);
}

/*
 * The next hop of a hit, into fib: a BPF_FIB_LKUP_RET_* code as from
 * bpf_fib_lookup(), which it calls unless the cache answers.
 */
static __always_inline int ns_next_hop(struct ns_ctx *ctx, const struct ns_parsed *p,
				       struct ns_rewrite *val, __u64 now,
				       struct bpf_fib_lookup *fib)
{
	struct ns_hop_q q;
	int rc;

	ns_hop_question(ctx, p, &q);
	fib->family = p->key.family;
	if (ns_hop_get(&val->hop, &q, now, fib))
		return BPF_FIB_LKUP_RET_SUCCESS;
	rc = ns_fib(ctx, p, val, fib);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		ns_hop_put(val, &q, now, fib);
	return rc;
}

#endif /* NS_BPF_HOP_H */
