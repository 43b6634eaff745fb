/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Splice table entry construction, shared by the daemon (lib/entry.c) and the
 * BPF programs (the kernel handshake of the module shim): from a splice to its
 * two table entries, the checksum deltas precomputed.
 */
#ifndef NS_ENTRY_INLINE_H
#define NS_ENTRY_INLINE_H

#include "natsplice_abi.h"
#include "ns_csum.h"

/* A delta of 0xffff (one's complement -0) changes nothing: store it as 0 so
 * "no change" has one representation (csum_ports == 0 for a pure splice). */
static __always_inline __u16 ns_delta_norm(__u16 d)
{
	return d == 0xffff ? 0 : d;
}

static __always_inline void ns_rewrite_deltas_inline(const struct ns_key *key,
						      struct ns_rewrite *val)
{
	int n = key->family == NS_AF_INET6 ? 4 : 1;
	__u16 addr, ports;

	addr = ns_csum_add(ns_csum_delta32(key->saddr, val->saddr, n),
			   ns_csum_delta32(key->daddr, val->daddr, n));
	ports = ns_csum_add(ns_csum_delta16(key->sport, val->sport),
			    ns_csum_delta16(key->dport, val->dport));
	/* The IPv6 header has no checksum; the hop limit change costs nothing. */
	val->csum_l3 = key->family == NS_AF_INET ?
		       ns_delta_norm(ns_csum_add(addr, ns_csum_ttl_dec_delta())) : 0;
	val->csum_pseudo = ns_delta_norm(addr);
	val->csum_ports = ns_delta_norm(ports);
}

/* The entry for packets of side `dir` towards the other side (lib/entry.h). */
static __always_inline void ns_entry_build_inline(const struct ns_splice *s, int dir,
						   struct ns_key *key, struct ns_rewrite *val)
{
	int other = !dir;

	__builtin_memset(key, 0, sizeof(*key));
	/* Flags, last seen and the next hop (ns_hop) zero: nothing cached. */
	__builtin_memset(val, 0, sizeof(*val));
	key->proto = s->proto;
	key->family = s->family;
	__builtin_memcpy(key->saddr, s->peer[dir].addr, sizeof(key->saddr));
	__builtin_memcpy(key->daddr, s->relay, sizeof(key->daddr));
	key->sport = s->peer[dir].port;
	key->dport = s->port[dir];

	__builtin_memcpy(val->saddr, s->relay, sizeof(val->saddr));
	__builtin_memcpy(val->daddr, s->peer[other].addr, sizeof(val->daddr));
	val->sport = s->port[other];
	val->dport = s->peer[other].port;
	val->splice_id = s->id;
	val->dir = dir;
	ns_rewrite_deltas_inline(key, val);
}

#endif /* NS_ENTRY_INLINE_H */
