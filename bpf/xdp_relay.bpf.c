// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The relay's XDP program: the splice fast path at the driver (DESIGN §2). */
#define NS_CTX_XDP
#include "lib/splice.h"

SEC("xdp.frags")
int xdp_relay(struct xdp_md *ctx)
{
	switch (ns_verdict(ns_relay(ctx))) {
	case NS_V_TX:
		return XDP_TX;
	case NS_V_REDIRECT:
		return XDP_REDIRECT;
	case NS_V_PASS:
	case NS_V_FALLBACK:
		return XDP_PASS;
	default:
		return XDP_DROP;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
