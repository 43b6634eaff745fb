// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Baselines of prog_bench, built twice from this file: with -DNS_CTX_XDP
 * (parse_only_xdp) and with -DNS_CTX_TC (parse_only_tc).
 *
 * parse_only: what every packet costs before the relay's own work starts,
 * through the very helpers the relay uses (lib/ctx.h, lib/parse.h):
 * ctx_pull_headers(), ns_parse(), then return. No map is touched.
 *
 * parse_fib: parse_only, then the bpf_fib_lookup() a table hit makes
 * (ns_fib() in lib/hop.h: same fields, same flags), back towards the
 * sender, IPv4 only. Tells how much of a hit the route lookup is.
 *
 * empty: returns at once. Its ns/packet is the BPF_PROG_TEST_RUN loop
 * itself (dispatch, bh disable/enable), which every other figure includes.
 */
#include "lib/parse.h"

#ifdef NS_CTX_XDP
#define BENCH_SEC	"xdp.frags"
#define BENCH_PASS	XDP_PASS
#define BENCH_DROP	XDP_DROP
#else
#define BENCH_SEC	"tc"
#define BENCH_PASS	TC_ACT_OK
#define BENCH_DROP	TC_ACT_SHOT
#endif

SEC(BENCH_SEC)
int parse_only(struct ns_ctx *ctx)
{
	struct ns_parsed p;
	int res;

	ctx_pull_headers(ctx);
	res = ns_parse(ctx, &p);
	/* The relay hands &p.key to a map lookup, so the parsed struct must
	 * exist in memory: an empty asm that may read it keeps clang from
	 * dropping the stores (and with them most of the parse). */
	asm volatile("" : : "r"(&p) : "memory");
	return res == NS_P_BAD ? BENCH_DROP : BENCH_PASS;
}

SEC(BENCH_SEC)
int parse_fib(struct ns_ctx *ctx)
{
	struct bpf_fib_lookup fib = {};
	struct ns_parsed p;
	int res;

	ctx_pull_headers(ctx);
	res = ns_parse(ctx, &p);
	asm volatile("" : : "r"(&p) : "memory");
	if (res != NS_P_L4 || p.key.family != NS_AF_INET)
		return BENCH_PASS;
	fib.family = p.key.family;
	fib.l4_protocol = p.key.proto;
	fib.sport = p.key.dport;
	fib.dport = p.key.sport;
	fib.tot_len = ctx_fib_tot_len(p.l3_len);
	fib.ifindex = ctx_ifindex(ctx);
	fib.tos = p.tos;
	fib.ipv4_src = p.key.daddr[0];
	fib.ipv4_dst = p.key.saddr[0];
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return BENCH_DROP;
	return BENCH_PASS;
}

SEC(BENCH_SEC)
int empty(struct ns_ctx *ctx)
{
	return BENCH_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
