// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The relay's TC program (clsact ingress): the splice fast path for skbs.
 * Attached alone, or next to xdp_relay to finish what XDP leaves
 * (NS_V_FALLBACK: next hop not resolved; headers beyond the first buffer).
 */
#define NS_CTX_TC
#include "lib/splice.h"

/* Set by the loader when xdp_relay runs in front: XDP already counted every
 * packet it let through, so a packet TC lets through is not counted again. */
const volatile __u8 tc_behind_xdp = 0;

SEC("tc")
int tc_relay(struct __sk_buff *skb)
{
	int ret = ns_relay(skb);

	if (tc_behind_xdp && ret == NS_V_PASS)
		return TC_ACT_OK;
	switch (ns_verdict(ret)) {
	case NS_V_REDIRECT:
		return TC_ACT_REDIRECT;
	case NS_V_PASS:
		return TC_ACT_OK;
	default:
		return TC_ACT_SHOT;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
