/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The relay's bandwidth cap (max-bandwidth): every spliced packet, both
 * directions of all splices together, pays its bytes into one GCRA clock
 * (struct ns_police). Over the cap a packet is dropped (NS_DROP_RATE): a
 * policer, which TCP answers by slowing down, as it does to any bottleneck
 * that drops. FINs and RSTs are never dropped, so that ends are not lost.
 *
 * The clock is bpf_ktime_get_ns(), not ns_now(): a tick (up to 10 ms) is
 * longer than the gaps the cap must see. Without a cap (ps_per_byte 0) a
 * packet costs one array lookup and one load.
 */
#ifndef NS_BPF_POLICE_H
#define NS_BPF_POLICE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "natsplice_abi.h"
#include "lib/parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ns_police);
} ns_police SEC(".maps");

/* May a packet of len bytes pass (1), or is it over the cap (0)? */
static __always_inline int ns_police_pass(__u32 len, __u8 tcp_flags)
{
	struct ns_police *b;
	__u64 now, cost, tat;
	__u32 zero = 0;
	int pass;

	b = bpf_map_lookup_elem(&ns_police, &zero);
	if (!b || !b->ps_per_byte || (tcp_flags & (NS_TCP_FIN | NS_TCP_RST)))
		return 1;
	now = bpf_ktime_get_ns();
	cost = (__u64)len * b->ps_per_byte / 1000;
	bpf_spin_lock(&b->lock);
	tat = b->tat_ns > now ? b->tat_ns : now;
	pass = tat + cost <= now + b->burst_ns;
	if (pass)
		b->tat_ns = tat + cost;
	bpf_spin_unlock(&b->lock);
	return pass;
}

#endif /* NS_BPF_POLICE_H */
