// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A stand-alone user of the kernel module shim's kfuncs, for
 * vmtest/test_shim.sh: the passive handshake alone, without the relay's
 * table (so no data flows after it: the probe drops everything else sent to
 * the two ports, and the connections just stay established). One splice, IPv4, relay 192.0.2.10
 * ports 40000 (side A) and 40001 (side B), the addresses of
 * test/integration/lib.sh; it sets its own splice record up on first use.
 *
 * Built twice: plain (calls the kfuncs; needs the module) and with
 * -DPROBE_GATED, where every call sits behind a const volatile flag left at 0,
 * the way the relay's programs must use them: that object has to load on a
 * kernel without the module (the verifier drops the unresolved calls as dead
 * code).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "natsplice_abi.h"
#define NS_KFUNC_DECLARE
#include "kmod/natsplice_kfunc.h"

#define PROBE_RELAY	0x0a0200c0	/* 192.0.2.10, network order */
#define PROBE_PORT_A	40000
#define PROBE_PORT_B	40001

/* The one splice; the program fills it in on its first SYN. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ns_splice);
} probe_splice SEC(".maps");

/* What happened, by enum probe_count; the test reads it with bpftool. */
enum probe_count {
	PC_WAIT, PC_PAIRED, PC_AGAIN, PC_SYN_ERR, PC_SYNACK_OK, PC_SYNACK_ERR, PC_DONE_ERR,
	PC_MAX
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} probe_count SEC(".maps");

#ifdef PROBE_GATED
const volatile __u8 use_kmod = 0;
#else
const volatile __u8 use_kmod = 1;
#endif

static __always_inline void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&probe_count, &what);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/*
 * What a packet at data..end is to the probe: 0 not for the relay ports
 * (pass it), -1 for them but not an opening SYN (drop it: with no table
 * behind the handshake the relay's own stack would answer with an RST),
 * 1 a SYN of *side of the splice in *sp.
 */
static __always_inline int probe_match(void *data, void *end, struct ns_splice **sp,
				       __u32 *side)
{
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct tcphdr *th = (void *)(iph + 1);
	struct ns_splice *s;
	__u32 zero = 0;

	if ((void *)(th + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    iph->ihl != 5 || iph->protocol != IPPROTO_TCP || iph->daddr != PROBE_RELAY)
		return 0;
	if (th->dest == bpf_htons(PROBE_PORT_A))
		*side = 0;
	else if (th->dest == bpf_htons(PROBE_PORT_B))
		*side = 1;
	else
		return 0;
	if (!th->syn || th->ack)
		return -1;
	s = bpf_map_lookup_elem(&probe_splice, &zero);
	if (!s)
		return 0;
	if (!s->id) {
		s->id = 1;
		s->proto = IPPROTO_TCP;
		s->family = NS_AF_INET;
		s->mode = NS_MODE_PASSIVE;
		s->port[0] = bpf_htons(PROBE_PORT_A);
		s->port[1] = bpf_htons(PROBE_PORT_B);
		s->relay[0] = PROBE_RELAY;
	}
	*sp = s;
	return 1;
}

/* After a kfunc said what the SYN was: the verdict, 1 = consumed. */
#define PROBE_FINISH(rc, s, side, synack_fn, ctx)					\
	({										\
		int __c = 1;								\
		if ((rc) == NS_KF_PAIRED) {						\
			count(PC_PAIRED);						\
			/* (the relay installs its table entries here) */		\
			if (bpf_ns_splice_done((s), sizeof(*(s)), 1))			\
				count(PC_DONE_ERR);					\
			count(synack_fn((ctx), (s), sizeof(*(s)), 0) ? PC_SYNACK_ERR :	\
								     PC_SYNACK_OK);	\
			count(synack_fn((ctx), (s), sizeof(*(s)), 1) ? PC_SYNACK_ERR :	\
								     PC_SYNACK_OK);	\
		} else if ((rc) == NS_KF_AGAIN) {					\
			count(PC_AGAIN);						\
			count(synack_fn((ctx), (s), sizeof(*(s)), (side)) ?		\
			      PC_SYNACK_ERR : PC_SYNACK_OK);				\
		} else if ((rc) == NS_KF_WAIT) {					\
			count(PC_WAIT);							\
		} else {								\
			count(PC_SYN_ERR);						\
			__c = 0;							\
		}									\
		__c;									\
	})

SEC("xdp")
int probe_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ns_splice *s = NULL;
	__u32 side = 0;
	int rc;

	if (!use_kmod)
		return XDP_PASS;
	rc = probe_match(data, end, &s, &side);
	if (rc <= 0 || !s)
		return rc < 0 ? XDP_DROP : XDP_PASS;
	rc = bpf_ns_xdp_syn(ctx, sizeof(struct ethhdr), s, sizeof(*s), side);
	return PROBE_FINISH(rc, s, side, bpf_ns_xdp_synack, ctx) ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int probe_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ns_splice *s = NULL;
	__u32 side = 0;
	int rc;

	if (!use_kmod)
		return TC_ACT_OK;
	rc = probe_match(data, end, &s, &side);
	if (rc <= 0 || !s)
		return rc < 0 ? TC_ACT_SHOT : TC_ACT_OK;
	rc = bpf_ns_skb_syn(skb, sizeof(struct ethhdr), s, sizeof(*s), side);
	return PROBE_FINISH(rc, s, side, bpf_ns_skb_synack, skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
