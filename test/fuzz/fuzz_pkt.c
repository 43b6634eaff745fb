// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for lib/pkt.c: the input is an IP packet as the relay
 * daemon gets it from the ring buffer. ns_pkt_parse and ns_syn_parse must
 * stay inside len and agree with each other; a parsed SYN is fed to
 * ns_synack_build (as both sides), whose output must parse back as a SYN-ACK
 * with valid checksums; ns_pkt_csum_fill on a copy must make the checksums
 * valid for every packet ns_pkt_parse accepts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
				     __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct ns_pkt_info pi, pi2;
	struct ns_syn syn;
	unsigned char *copy, out[256];
	int pr, sr;

	/* An exact-size heap copy: ASan sees any read past len. */
	copy = malloc(len ? len : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, len);

	pr = ns_pkt_parse(copy, len, &pi);
	sr = ns_syn_parse(copy, len, &syn);
	CHECK(pr == 0 || pr == -EINVAL);
	CHECK(sr == 0 || sr == -EINVAL || sr == -EPERM);
	if (sr != -EINVAL)			/* a SYN is a parsable packet */
		CHECK(pr == 0);
	if (pr == 0) {
		CHECK(pi.l4_off <= pi.payload_off && pi.payload_off <= len);
		(void)ns_pkt_csum_ok(copy, len);
		ns_pkt_csum_fill(copy, len);
		CHECK(ns_pkt_parse(copy, len, &pi2) == 0);
	}
	if (sr == 0) {
		struct ns_synack_params p = {
			.family = pi.family, .ttl = 64, .mss_clamp = data[0] * 8,
			.relay_port = pi.dport, .peer_port = pi.sport,
			.own = &syn, .partner = &syn,
		};
		ssize_t n;

		memcpy(p.relay, pi.daddr, sizeof(p.relay));
		memcpy(p.peer, pi.saddr, sizeof(p.peer));
		n = ns_synack_build(&p, out, sizeof(out));
		CHECK(n > 0 || n == -ENOSPC);
		if (n > 0) {
			CHECK(ns_pkt_csum_ok(out, n) == 1);
			CHECK(ns_pkt_parse(out, n, &pi2) == 0);
			CHECK(pi2.tcp_flags == (NS_TCP_SYN | NS_TCP_ACK) ||
			      (pi2.tcp_flags & ~(NS_TCP_ECE | NS_TCP_CWR)) ==
			      (NS_TCP_SYN | NS_TCP_ACK));
			CHECK(ns_syn_parse(out, n, &syn) == -EINVAL);	/* has ACK */
		}
		n = ns_rst_build(pi.family, pi.daddr, pi.dport, pi.saddr, pi.sport, syn.isn + 1,
				 out, sizeof(out));
		CHECK(n > 0 && ns_pkt_csum_ok(out, n) == 1);
	}
	free(copy);
	return 0;
}
