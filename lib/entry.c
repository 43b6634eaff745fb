// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include "entry.h"
#include "ns_csum.h"

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
		       ns_csum_add(addr, ns_csum_ttl_dec_delta()) : 0;
	val->csum_pseudo = addr;
	val->csum_ports = ports;
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
