/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksum arithmetic shared by the BPF programs and user space, so
 * the unit tests exercise exactly the code the fast path runs.
 *
 * All values are taken as they lie in memory (network order). The one's
 * complement sum does not care about byte order as long as every term is
 * read the same way, so no byte swapping happens here.
 */
#ifndef NS_CSUM_H
#define NS_CSUM_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Fold a 32-bit accumulator to 16 bits (end-around carry, twice). */
static __always_inline __u16 ns_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Add the two 16-bit halves of a 32-bit memory word to an accumulator. */
static __always_inline __u32 ns_csum_add32(__u32 sum, __u32 word)
{
	return sum + (word & 0xffff) + (word >> 16);
}

/*
 * RFC 1624 eqn. 3 term for replacing 32-bit words old[] by new[]:
 * sum of ~m + m' over every 16-bit half, folded. Adding the result to ~HC and
 * complementing gives the new checksum.
 */
static __always_inline __u16 ns_csum_delta32(const __u32 *old, const __u32 *new,
					     int nwords)
{
	__u32 sum = 0;
	int i;

	for (i = 0; i < nwords; i++) {
		sum = ns_csum_add32(sum, ~old[i]);
		sum = ns_csum_add32(sum, new[i]);
	}
	return ns_csum_fold(sum);
}

/* Delta for replacing one 16-bit memory word. */
static __always_inline __u16 ns_csum_delta16(__u16 old, __u16 new)
{
	return ns_csum_fold((__u32)(__u16)~old + new);
}

/* Combine two deltas. */
static __always_inline __u16 ns_csum_add(__u16 a, __u16 b)
{
	return ns_csum_fold((__u32)a + b);
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + delta). */
static __always_inline __u16 ns_csum_apply(__u16 hc, __u16 delta)
{
	return (__u16)~ns_csum_fold((__u32)(__u16)~hc + delta);
}

/*
 * Apply a delta to a checksum field that holds an uncomplemented partial sum
 * (a CHECKSUM_PARTIAL pseudo-header seed): HC' = HC + delta.
 */
static __always_inline __u16 ns_csum_apply_partial(__u16 hc, __u16 delta)
{
	return ns_csum_fold((__u32)hc + delta);
}

/*
 * UDP over IPv4: 0 means "no checksum" and stays 0 (RFC 768); a computed 0 is
 * sent as 0xffff. Over IPv6 a zero checksum is not allowed, the same rule gives
 * a valid result.
 */
static __always_inline __u16 ns_csum_apply_udp(__u16 hc, __u16 delta)
{
	__u16 r;

	if (hc == 0)
		return 0;
	r = ns_csum_apply(hc, delta);
	return r ? r : 0xffff;
}

/* The TTL decrement as a delta of the {ttl, protocol} header word. */
static __always_inline __u16 ns_csum_ttl_dec_delta(void)
{
	/* The memory word is the bytes {ttl, proto}. One's complement
	 * ~m + m' equals m' - m, which for ttl -> ttl - 1 does not depend on
	 * ttl or proto: take it from the bytes {1, 0} -> {0, 0}. */
	union { __u8 b[2]; __u16 w; } o = { .b = { 1, 0 } }, n = { .b = { 0, 0 } };

	return ns_csum_delta16(o.w, n.w);
}

/* Plain one's complement sum of a buffer (user space and tests). */
static inline __u32 ns_csum_partial(const void *buf, unsigned int len, __u32 sum)
{
	const unsigned char *p = (const unsigned char *)buf;
	unsigned int i;

	for (i = 0; i + 1 < len; i += 2) {
		__u16 w;

		__builtin_memcpy(&w, p + i, 2);
		sum += w;
		if (sum >= 0x80000000U)
			sum = (sum & 0xffff) + (sum >> 16);
	}
	if (len & 1) {
		__u16 w = 0;

		__builtin_memcpy(&w, p + len - 1, 1);
		sum += w;
	}
	return sum;
}

#endif /* NS_CSUM_H */
