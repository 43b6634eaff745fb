// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include "entry.h"
#include "ns_csum.h"

/* A delta of 0xffff (one's complement -0) changes nothing: store it as 0 so
 * "no change" has one representation (csum_ports == 0 for a pure splice). */
static __u16 delta_norm(__u16 d)
{
	return d == 0xffff ? 0 : d;
}

void ns_rewrite_deltas(const struct ns_key *key, struct ns_rewrite *val)
{
	int n = ns_addr_words(key->family);
	__u16 addr, ports;

	addr = ns_csum_add(ns_csum_delta32(key->saddr, val->saddr, n),
			   ns_csum_delta32(key->daddr, val->daddr, n));
	ports = ns_csum_add(ns_csum_delta16(key->sport, val->sport),
			    ns_csum_delta16(key->dport, val->dport));
	/* The IPv6 header has no checksum; the hop limit change costs nothing. */
	val->csum_l3 = key->family == NS_AF_INET ?
		       delta_norm(ns_csum_add(addr, ns_csum_ttl_dec_delta())) : 0;
	val->csum_pseudo = delta_norm(addr);
	val->csum_ports = delta_norm(ports);
}

void ns_entry_build(const struct ns_splice *s, int dir, struct ns_key *key,
		    struct ns_rewrite *val)
{
	int other = !dir;

	memset(key, 0, sizeof(*key));
	memset(val, 0, sizeof(*val));
	key->proto = s->proto;
	key->family = s->family;
	memcpy(key->saddr, s->peer[dir].addr, sizeof(key->saddr));
	memcpy(key->daddr, s->relay, sizeof(key->daddr));
	key->sport = s->peer[dir].port;
	key->dport = s->port[dir];

	memcpy(val->saddr, s->relay, sizeof(val->saddr));
	memcpy(val->daddr, s->peer[other].addr, sizeof(val->daddr));
	val->sport = s->port[other];
	val->dport = s->peer[other].port;
	val->splice_id = s->id;
	val->dir = dir;
	ns_rewrite_deltas(key, val);
}
