/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps and load-time parameters of the relay programs. Both objects define
 * the same maps under the same names; the loader pins them once and makes
 * the second object reuse them, so XDP and TC share one state.
 */
#ifndef NS_BPF_MAPS_H
#define NS_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "natsplice_abi.h"

/* Splice table: incoming 5-tuple -> rewrite; two entries per splice, written by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NS_TABLE_ENTRIES);
	__type(key, struct ns_key);
	__type(value, struct ns_rewrite);
} ns_table SEC(".maps");

/* Per-splice packets/bytes per direction at NS_SPLICE_SLOT(id); BPF counts. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NS_MAX_SPLICES);
	__type(key, __u32);
	__type(value, struct ns_counters);
} ns_counters SEC(".maps");

/* Sequence tracking of TCP splices at NS_SPLICE_SLOT(id) (struct ns_track). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NS_MAX_SPLICES);
	__type(key, __u32);
	__type(value, struct ns_track);
} ns_track SEC(".maps");

/* Verdict and drop-reason counters indexed by enum ns_stat; BPF counts, the CLI reads. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NS_STAT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} ns_stats SEC(".maps");

/* Relay port expectations of splices not yet established; written by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NS_PORT_ENTRIES);
	__type(key, struct ns_port_key);
	__type(value, struct ns_port_val);
} ns_ports SEC(".maps");

/* Heads of SYNs and first datagrams punted to the daemon (struct ns_punt); BPF writes. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, NS_RINGBUF_BYTES);
} ns_punts SEC(".maps");

/* IP fragment train -> splice table key of its first fragment; BPF writes, LRU ages. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NS_FRAG_ENTRIES);
	__type(key, struct ns_frag_key);
	__type(value, struct ns_key);
} ns_frags SEC(".maps");

/* The daemon's persistent splice store; unused by BPF, defined here so it is created and pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NS_MAX_SPLICES);
	__type(key, __u32);
	__type(value, struct ns_splice);
} ns_splices SEC(".maps");

/* The relay's addresses, network order, set by the loader; 0 / all zero: none. */
const volatile __u32 relay_addr4 = 0;
const volatile __u32 relay_addr6[4] = { 0, 0, 0, 0 };

static __always_inline void ns_stat_inc(__u32 stat)
{
	__u64 *n = bpf_map_lookup_elem(&ns_stats, &stat);

	if (n)
		*n += 1;
}

/*
 * The one exit of both programs: count the verdict of ret (>= 0) or the drop
 * and its reason (-NS_DROP_*), and return the verdict.
 */
static __always_inline int ns_verdict(int ret)
{
	if (ret >= 0) {
		ns_stat_inc(ret);
		return ret;
	}
	ns_stat_inc(NS_V_DROP);
	ns_stat_inc(-ret);
	return NS_V_DROP;
}

/*
 * Set a flag bit of a table entry; other CPUs may set other bits of the same
 * word. A 32-bit atomic OR needs clang -mcpu=v3, which the build does not
 * pass, so OR the aligned 64-bit word {flags, pad2} instead: the mask leaves
 * pad2 as it is. The bit is tested first so that a flow dirties the entry's
 * cache line once, not on every packet.
 */
static __always_inline void ns_flag_set(struct ns_rewrite *val, __u32 bit)
{
	__u64 mask = bit;

	_Static_assert(__builtin_offsetof(struct ns_rewrite, flags) % 8 == 0 &&
		       __builtin_offsetof(struct ns_rewrite, pad2) ==
		       __builtin_offsetof(struct ns_rewrite, flags) + 4,
		       "ns_rewrite.flags must start an aligned 64-bit word");
	if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
		mask <<= 32;
	if (!(val->flags & bit))
		__sync_fetch_and_or((__u64 *)&val->flags, mask);
}

/*
 * The connection of a table entry (key -> val) is over: a FIN or an RST
 * crossed in either direction. For SYNs and the kernel handshake only,
 * never on the fast path.
 */
static __always_inline int ns_entry_over(const struct ns_key *key,
					 const struct ns_rewrite *val)
{
	struct ns_rewrite *back;
	struct ns_key rk = {
		.sport = val->dport,
		.dport = val->sport,
		.proto = key->proto,
		.family = key->family,
	};

	if (val->flags & (NS_F_FIN | NS_F_RST))
		return 1;
	/* The partner's entry has the reverse of this one's rewrite as key. */
	__builtin_memcpy(rk.saddr, val->daddr, sizeof(rk.saddr));
	__builtin_memcpy(rk.daddr, val->saddr, sizeof(rk.daddr));
	back = bpf_map_lookup_elem(&ns_table, &rk);
	return back && (back->flags & (NS_F_FIN | NS_F_RST));
}

#endif /* NS_BPF_MAPS_H */
