/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Splice table entry construction: from a splice to its two table entries. */
#ifndef NS_ENTRY_H
#define NS_ENTRY_H

#include "natsplice_abi.h"

/*
 * The table entry for packets of side `dir` (0: A, 1: B) towards the other
 * side. Key: {peer[dir] -> relay:port[dir]}; value: {relay:port[!dir] ->
 * peer[!dir]} with the checksum deltas precomputed. For a pure splice
 * port[0] == peer[1].port and port[1] == peer[0].port, so the ports stay as
 * they are and csum_ports is 0: the same formula serves both modes.
 */
void ns_entry_build(const struct ns_splice *s, int dir, struct ns_key *key,
		    struct ns_rewrite *val);

/* Fill the deltas of val for packets matching key (addresses/ports of both). */
void ns_rewrite_deltas(const struct ns_key *key, struct ns_rewrite *val);

/* Number of 32-bit address words for a family: 1 (IPv4) or 4 (IPv6). */
static inline int ns_addr_words(int family)
{
	return family == NS_AF_INET6 ? 4 : 1;
}

#endif
