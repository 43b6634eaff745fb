// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Baselines of prog_bench, built twice from this file: with -DNS_CTX_XDP
 * (parse_only_xdp) and with -DNS_CTX_TC (parse_only_tc).
 *
 * parse_only: what every packet costs before the relay's own work starts,
 * through the very helpers the relay uses (lib/ctx.h, lib/parse.h):
 * ctx_pull_headers(), ns_parse(), then return. No map is touched.
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
int empty(struct ns_ctx *ctx)
{
	return BENCH_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
