/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The words of a cached next hop (struct ns_hop), shared by the BPF programs
 * that keep it (bpf/lib/hop.h, which explains the scheme) and the tests that
 * read or forge one. Every word holds its payload above NS_HOP_TAG, the tag
 * of the store that wrote it, in its low 16 bits.
 */
#ifndef NS_HOP_H
#define NS_HOP_H

#include "natsplice_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/*
 * How long an answer of bpf_fib_lookup() serves, ns. Long enough that the
 * lookup is paid once per thousands of packets at the rates where its
 * ~100 ns matter; short enough that a route or neighbour change reaches a
 * spliced flow well within a TCP retransmission timeout (200 ms at least on
 * Linux).
 */
#define NS_HOP_LIFETIME_NS	100000000ULL

#define NS_HOP_TAG		0xffffULL	/* tag bits of every word */
#define NS_HOP_LEN_MAX		0xffff		/* longest length ns_hop.out holds */

/* ns_hop.in's hook: XDP and TC check the MTU on different lengths. */
#define NS_HOP_XDP		1
#define NS_HOP_TC		2

/* Six bytes (an Ethernet address) as a word. Byte order does not matter:
 * only ns_hop_unpack6() reads it. */
static __always_inline __u64 ns_hop_pack6(const __u8 *b)
{
	__u32 hi;
	__u16 lo;

	__builtin_memcpy(&hi, b, sizeof(hi));
	__builtin_memcpy(&lo, b + sizeof(hi), sizeof(lo));
	return (__u64)hi << 32 | (__u64)lo << 16;
}

static __always_inline void ns_hop_unpack6(__u64 w, __u8 *b)
{
	__u32 hi = w >> 32;
	__u16 lo = w >> 16;

	__builtin_memcpy(b, &hi, sizeof(hi));
	__builtin_memcpy(b + sizeof(hi), &lo, sizeof(lo));
}

/* ns_hop.in: the hook and the ingress device the lookup was made for. */
static __always_inline __u64 ns_hop_in(__u32 ifindex, __u32 hook)
{
	return (__u64)ifindex << 32 | (__u64)hook << 16;
}

/* ns_hop.out: the egress device and the longest length that passed. */
static __always_inline __u64 ns_hop_out(__u32 ifindex, __u32 len)
{
	return (__u64)ifindex << 32 | (__u64)(len & NS_HOP_LEN_MAX) << 16;
}

static __always_inline __u32 ns_hop_out_ifindex(__u64 out)
{
	return out >> 32;
}

static __always_inline __u32 ns_hop_out_len(__u64 out)
{
	return (out >> 16) & NS_HOP_LEN_MAX;
}

/* ns_hop.at: when the answer was stored (tag bits cleared: 65 us less). */
static __always_inline __u64 ns_hop_at(__u64 now_ns)
{
	return now_ns & ~NS_HOP_TAG;
}

/*
 * Does a cache stamped `at` (tag included) still serve at `now`? Tag 0 is
 * the daemon's "nothing cached". A stamp later than now (another CPU read
 * the clock after us) looks old: the packet asks again.
 */
static __always_inline int ns_hop_fresh(__u64 at, __u64 now)
{
	return (at & NS_HOP_TAG) && now - (at & ~NS_HOP_TAG) < NS_HOP_LIFETIME_NS;
}

#endif /* NS_HOP_H */
