/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The relay programs' clock: CLOCK_MONOTONIC in ns as of the last timer
 * tick, what bpf_ktime_get_coarse_ns() returns, at a fraction of its cost.
 *
 * The coarse clock is the timekeeper's time of the last tick, so it changes
 * only when jiffies do. bpf_jiffies64() is a plain load (about 1 ns here)
 * while bpf_ktime_get_coarse_ns() reads the timekeeper under its seqcount
 * (about 14 ns, an eighth of a table hit: test/bench/prog_bench). Each CPU
 * therefore keeps the coarse time it read together with the jiffies it read
 * it at, and reads the clock again only when jiffies moved on.
 *
 * The kernel advances jiffies just before the timekeeper: a CPU that reads
 * between the two keeps the previous tick's time for the new tick, so
 * ns_now() may lag the coarse clock by one tick (1-10 ms by CONFIG_HZ). Its
 * users ask for 100 ms (the next hop cache) and 1 s (last_seen_ns).
 */
#ifndef NS_BPF_CLOCK_H
#define NS_BPF_CLOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct ns_clock {
	__u64 jiffies;		/* bpf_jiffies64() when ns was read */
	__u64 ns;		/* bpf_ktime_get_coarse_ns() then */
};

/* One slot per CPU: no CPU writes another's, no cache line bounces. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ns_clock);
} ns_clock SEC(".maps");

/* CLOCK_MONOTONIC, ns, at tick resolution (see above). */
static __always_inline __u64 ns_now(void)
{
	__u64 j = bpf_jiffies64();
	struct ns_clock *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&ns_clock, &zero);
	if (!c)
		return bpf_ktime_get_coarse_ns();
	if (c->jiffies != j) {
		c->ns = bpf_ktime_get_coarse_ns();
		c->jiffies = j;
	}
	return c->ns;
}

#endif /* NS_BPF_CLOCK_H */
