// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The relay's XDP and TC programs run with BPF_PROG_TEST_RUN on packets
 * written as data: {description, map state, input packet, expected verdict,
 * expected output packet}. Table entries come from ns_entry_build(), the
 * daemon's own code; every output is checked byte for byte against a packet
 * built with freshly computed checksums, and with ns_pkt_csum_ok(). Each run
 * also checks the verdict and drop-reason counters, the entry's flags,
 * counters and cached next hop, and the punt ring buffer.
 *
 * Runs in a private network namespace (bpf_fib_lookup needs routes and
 * neighbours). Exit 77 when not root or BPF is not available.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "natsplice_abi.h"
#include "ns_hop.h"
#include "entry.h"
#include "pkt.h"
#include "fixture.h"
#include "util.h"
#include "xdp_relay.skel.h"
#include "tc_relay.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------
 * Map state: the splices and port expectations of the test world.
 */

/* A splice between peer A and peer B through the relay. */
struct splice_def {
	__u32 id;
	__u8 proto;
	__u8 family;
	__u8 mode;			/* enum ns_mode */
	const char *a, *b;		/* peer addresses */
	__u16 a_port, b_port;		/* peer ports */
	__u16 relay_port[2];		/* relay port of side A, side B */
};

static const struct splice_def splices[] = {
	{ 1, IPPROTO_TCP, NS_AF_INET, NS_MODE_PASSIVE, PEER_A4, PEER_B4,
	  40001, 40002, { 5001, 5002 } },
	/* Pure: A connects from 7000 to 8000, B from 8000 to 7000. */
	{ 2, IPPROTO_TCP, NS_AF_INET, NS_MODE_PURE, PEER_A4, PEER_B4,
	  7000, 8000, { 8000, 7000 } },
	{ 3, IPPROTO_TCP, NS_AF_INET6, NS_MODE_PASSIVE, PEER_A6, PEER_B6,
	  40001, 40002, { 5001, 5002 } },
	{ 4, IPPROTO_UDP, NS_AF_INET, NS_MODE_PASSIVE, PEER_A4, PEER_B4,
	  40001, 40002, { 5001, 5002 } },
	{ 5, IPPROTO_UDP, NS_AF_INET6, NS_MODE_PASSIVE, PEER_A6, PEER_B6,
	  40001, 40002, { 5001, 5002 } },
	{ 6, IPPROTO_UDP, NS_AF_INET6, NS_MODE_PURE, PEER_A6, PEER_B6,
	  9000, 9001, { 9001, 9000 } },
	{ 7, IPPROTO_TCP, NS_AF_INET, NS_MODE_PASSIVE, PEER_A4, NONEIGH4,
	  41000, 41001, { 5101, 5102 } },
	{ 8, IPPROTO_TCP, NS_AF_INET, NS_MODE_PASSIVE, PEER_A4, REMOTE4,
	  42000, 42001, { 5201, 5202 } },
	{ 9, IPPROTO_TCP, NS_AF_INET, NS_MODE_PASSIVE, PEER_A4, NOROUTE4,
	  43000, 43001, { 5301, 5302 } },
};

/* A relay port waiting for its side's SYN or first datagram. */
struct expect_def {
	__u8 proto;
	__u8 family;
	__u16 port;
	__u32 splice_id;
	__u8 side;
	const char *allow;		/* NULL: any source */
	__u8 loose;			/* not a relay port of our own */
	__u8 proving;			/* its side must prove itself (its ACK) */
};

static const struct expect_def expects[] = {
	{ IPPROTO_TCP, NS_AF_INET, 6001, 20, 0, PEER_A4 },
	{ IPPROTO_UDP, NS_AF_INET, 6002, 21, 1, NULL },
	{ IPPROTO_TCP, NS_AF_INET6, 6001, 22, 1, PEER_A6 },
	{ IPPROTO_UDP, NS_AF_INET6, 6002, 23, 0, PEER_B6 },
	/* A pure splice's side B waits on A's source port, any port. */
	{ IPPROTO_TCP, NS_AF_INET, 46248, 25, 1, PEER_B4, 1 },
	/* Side A of splice 26 was answered and must prove itself. */
	{ IPPROTO_TCP, NS_AF_INET, 6003, 26, 0, PEER_A4, 0, 1 },
	{ IPPROTO_TCP, NS_AF_INET6, 6003, 27, 1, PEER_B6, 0, 1 },
	/* A public port (relay_public.c): any source, punted under its index. */
	{ IPPROTO_TCP, NS_AF_INET, 8080, NS_PUBLIC_BIT | 3, 1, NULL, 0, 1 },
};

/* Map state of a case, on top of the whole world above. */
#define ST_EMPTY	(1U << 0)	/* no splices, no expectations */
#define ST_SEEN_NOW	(1U << 1)	/* entries last seen just now */
#define ST_RING_FULL	(1U << 2)	/* the punt ring buffer filled up first */
/* Splice 1's connection is over: a FIN crossed from A, or an RST from B ... */
#define ST_A_FIN	(1U << 3)
#define ST_B_RST	(1U << 4)
/* ... and splice 24 waits for side A's SYN on splice 1's relay port 5001. */
#define ST_REEXPECT	(1U << 5)
#define ST_HEARD	(1U << 6)	/* every side heard from (NS_F_HEARD) */
#define ST_REPROVE	(1U << 8)	/* ST_REEXPECT's splice waits for side A's proof */
#define ST_TRACK	(1U << 7)	/* splice 1's sequence numbers tracked (ns_track):
					 * A is at FIXTURE_SEQ, B at FIXTURE_ACK_SEQ,
					 * each offered 64 KB (unscaled) */
#define ST_SCALED	(1U << 9)	/* ... with window scale 7 on both sides */
#define ST_BULK		(1U << 10)	/* ... A sent 4 MB, B acknowledged them and
					 * offered 8 MB more (scale 7) */
#define MB		(1 << 20)
#define REEXPECT_ID	24

/* ------------------------------------------------------------------------
 * The cases.
 */

struct punt_expect {
	__u8 reason;			/* enum ns_punt_reason */
	__u8 side;
	__u32 splice_id;
};

/*
 * A next hop forged into the entry the input hits: the answer to the
 * input's own question (this program, DEV_PEERS, its TOS, its length) stored
 * just now, out of DEV_PEERS from MAC_HOP_S to MAC_HOP_D, which no FIB gives.
 * The fields below change one part of it. After a .pre, it is the answer the
 * .pre packet left, with only the Ethernet addresses changed to MAC_HOP_*.
 */
struct hop_def {
	int set;
	int stale;			/* stored two lifetimes ago */
	int at_zero;			/* time stamp word 0, as the daemon writes it */
	int len_adj;			/* added to the longest length that passed */
	int torn;			/* the smac word from another store (tag) */
	int other_dev;			/* for packets from DEV_REMOTE */
	int other_dscp;			/* for another DSCP */
	int other_hook;			/* stored by the other program */
	const char *dev;		/* egress device; NULL: DEV_PEERS */
};

static const __u8 MAC_HOP_S[6] = { 0x02, 0, 0, 0, 0, 0xc0 };
static const __u8 MAC_HOP_D[6] = { 0x02, 0, 0, 0, 0, 0xc1 };

struct tcase {
	const char *desc;
	unsigned int state;		/* ST_* */
	struct pkt pre;			/* run first (forwarded) when set */
	struct hop_def hop;		/* then forged into the entry */
	struct pkt in;
	int xdp, tc;			/* verdict: NS_V_* or -NS_DROP_* */
	struct pkt out;			/* the output when forwarded */
	__u32 flags;			/* NS_F_* of the entry, when forwarded */
	struct punt_expect punt;	/* when the verdict is NS_V_PUNT */
	int hop_kept;			/* the entry's next hop stays as it was */
	int xdp_only;			/* BPF_PROG_TEST_RUN builds no such skb
					 * (IP header cut, over a page) */
};

#define TCP4(s, sp, d, dp) .family = NS_AF_INET, .proto = IPPROTO_TCP, \
	.src = (s), .sport = (sp), .dst = (d), .dport = (dp)
#define UDP4(s, sp, d, dp) .family = NS_AF_INET, .proto = IPPROTO_UDP, \
	.src = (s), .sport = (sp), .dst = (d), .dport = (dp)
#define TCP6(s, sp, d, dp) .family = NS_AF_INET6, .proto = IPPROTO_TCP, \
	.src = (s), .sport = (sp), .dst = (d), .dport = (dp)
#define UDP6(s, sp, d, dp) .family = NS_AF_INET6, .proto = IPPROTO_UDP, \
	.src = (s), .sport = (sp), .dst = (d), .dport = (dp)
/* Forwarded out of DEV_PEERS to a peer: TTL 64 - 1. */
#define TO_A .smac = MAC_PEERS, .dmac = MAC_A, .ttl = 63
#define TO_B .smac = MAC_PEERS, .dmac = MAC_B, .ttl = 63

/* Forwarded with the forged next hop (struct hop_def). */
#define VIA_HOP .smac = MAC_HOP_S, .dmac = MAC_HOP_D, .ttl = 63
#define HOP(...) .hop = { .set = 1, __VA_ARGS__ }

#define SYN .tcp_flags = NS_TCP_SYN
#define FROM_B(d) .seq_off = (__s32)(FIXTURE_ACK_SEQ - FIXTURE_SEQ) + (d), \
	.ack_off = (__s32)(FIXTURE_SEQ - FIXTURE_ACK_SEQ)
#define FORWARD .xdp = NS_V_TX, .tc = NS_V_REDIRECT
#define BOTH(v) .xdp = (v), .tc = (v)

static const struct tcase cases[] = {
	/* Table hits. */
	{ "tcp4 passive A->B: addresses and ports rewritten",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .payload = 100 }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .payload = 100, TO_B } },
	{ "tcp4 passive B->A",
	  .in = { TCP4(PEER_B4, 40002, RELAY4, 5002), .payload = 7 }, FORWARD,
	  .out = { TCP4(RELAY4, 5001, PEER_A4, 40001), .payload = 7, TO_A } },
	{ "tcp4 pure A->B: ports unchanged",
	  .in = { TCP4(PEER_A4, 7000, RELAY4, 8000), .payload = 33 }, FORWARD,
	  .out = { TCP4(RELAY4, 7000, PEER_B4, 8000), .payload = 33, TO_B } },
	{ "tcp4 pure B->A",
	  .in = { TCP4(PEER_B4, 8000, RELAY4, 7000) }, FORWARD,
	  .out = { TCP4(RELAY4, 8000, PEER_A4, 7000), TO_A } },
	{ "tcp6 passive A->B",
	  .in = { TCP6(PEER_A6, 40001, RELAY6, 5001), .payload = 64 }, FORWARD,
	  .out = { TCP6(RELAY6, 5002, PEER_B6, 40002), .payload = 64, TO_B } },
	{ "udp4 passive A->B",
	  .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 50 }, FORWARD,
	  .out = { UDP4(RELAY4, 5002, PEER_B4, 40002), .payload = 50, TO_B } },
	{ "udp4 checksum 0 stays 0",
	  .in = { UDP4(PEER_B4, 40002, RELAY4, 5002), .payload = 50, .udp_nocsum = 1 },
	  FORWARD,
	  .out = { UDP4(RELAY4, 5001, PEER_A4, 40001), .payload = 50, .udp_nocsum = 1,
		   TO_A } },
	{ "udp6 passive B->A",
	  .in = { UDP6(PEER_B6, 40002, RELAY6, 5002), .payload = 20 }, FORWARD,
	  .out = { UDP6(RELAY6, 5001, PEER_A6, 40001), .payload = 20, TO_A } },
	{ "udp6 pure A->B",
	  .in = { UDP6(PEER_A6, 9000, RELAY6, 9001), .payload = 10 }, FORWARD,
	  .out = { UDP6(RELAY6, 9000, PEER_B6, 9001), .payload = 10, TO_B } },
	{ "tcp4 FIN sets NS_F_FIN",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tcp_flags = NS_TCP_FIN | NS_TCP_ACK },
	  FORWARD, .flags = NS_F_FIN,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .tcp_flags = NS_TCP_FIN | NS_TCP_ACK,
		   TO_B } },
	{ "tcp6 RST sets NS_F_RST",
	  .in = { TCP6(PEER_B6, 40002, RELAY6, 5002), .tcp_flags = NS_TCP_RST },
	  FORWARD, .flags = NS_F_RST,
	  .out = { TCP6(RELAY6, 5001, PEER_A6, 40001), .tcp_flags = NS_TCP_RST, TO_A } },
	/* A strict NAT's RST for a segment that outran the SYN-ACK. */
	{ "tcp6 RST from a side not heard from since the install just now: dropped",
	  ST_SEEN_NOW,
	  .in = { TCP6(PEER_B6, 40002, RELAY6, 5002), .tcp_flags = NS_TCP_RST },
	  BOTH(-NS_DROP_EARLY_RST) },
	{ "tcp6 RST from a side heard from: forwarded",
	  ST_SEEN_NOW | ST_HEARD,
	  .in = { TCP6(PEER_B6, 40002, RELAY6, 5002), .tcp_flags = NS_TCP_RST },
	  FORWARD, .flags = NS_F_RST,
	  .out = { TCP6(RELAY6, 5001, PEER_A6, 40001), .tcp_flags = NS_TCP_RST, TO_A } },
	{ "tcp4 with IPv4 options",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .ip_opts = 12, .payload = 9 },
	  FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .ip_opts = 12, .payload = 9, TO_B } },
	/* RFC 5961 (ns_window): what the endpoints would reject does not
	 * reach them, and does not mark the splice. (ST_TRACK: A's sequence
	 * space is at FIXTURE_SEQ, B's at FIXTURE_ACK_SEQ; FROM_B puts B's
	 * segments in B's.) */
	{ "tcp4 tracked: data in the window forwarded",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .payload = 100 }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .payload = 100, TO_B } },
	{ "tcp4 tracked: a retransmission 100 KB back forwarded",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_B4, 40002, RELAY4, 5002), FROM_B(-100000), .payload = 10 },
	  FORWARD,
	  .out = { TCP4(RELAY4, 5001, PEER_A4, 40001), FROM_B(-100000), .payload = 10,
		   TO_A } },
	{ "tcp4 tracked: data 1 GB away dropped",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .seq_off = 0x40000000, .payload = 100 },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: data 4 MB behind what was acknowledged dropped",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .seq_off = -(4 << 20), .payload = 100 },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: an ACK of data never sent dropped",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .ack_off = 0x20000000 },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: RST out of the window dropped, the splice not marked",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tcp_flags = NS_TCP_RST,
		  .seq_off = (__s32)0x80000000 },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: FIN out of the window dropped, the splice not marked",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_B4, 40002, RELAY4, 5002), .tcp_flags = NS_TCP_FIN | NS_TCP_ACK,
		  .seq_off = 0x10000000 },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: RST in the window, not exact: forwarded (challenge ACK), not marked",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tcp_flags = NS_TCP_RST, .seq_off = 1000 },
	  FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .tcp_flags = NS_TCP_RST,
		   .seq_off = 1000, TO_B } },
	{ "tcp4 tracked: the exact RST marks the splice",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tcp_flags = NS_TCP_RST }, FORWARD,
	  .flags = NS_F_RST,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .tcp_flags = NS_TCP_RST, TO_B } },
	{ "tcp4 tracked: FIN in the window marks the splice",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_B4, 40002, RELAY4, 5002), .tcp_flags = NS_TCP_FIN | NS_TCP_ACK,
		  FROM_B(0) },
	  FORWARD, .flags = NS_F_FIN,
	  .out = { TCP4(RELAY4, 5001, PEER_A4, 40001), .tcp_flags = NS_TCP_FIN | NS_TCP_ACK,
		   FROM_B(0), TO_A } },
	/* What a loaded test bed did to the check's first version: a sender
	 * with megabytes in flight (a scaled window) retransmits from far
	 * behind what its receiver acknowledged (that ACK was lost after the
	 * relay), or sends far ahead of what the relay saw (segments lost
	 * before it). Both are in the window the receiver offered. */
	{ "tcp4 tracked: an ACK with a scaled window moves the edge: data 3 MB ahead forwarded",
	  .state = ST_TRACK | ST_SCALED,
	  .pre = { TCP4(PEER_B4, 40002, RELAY4, 5002), FROM_B(0) },
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .seq_off = 3 * MB, .payload = 100 },
	  FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .seq_off = 3 * MB, .payload = 100,
		   TO_B } },
	{ "tcp4 tracked: without that ACK, data 3 MB ahead dropped",
	  .state = ST_TRACK | ST_SCALED,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .seq_off = 3 * MB, .payload = 100 },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: in bulk, a retransmission 3 MB behind the ACK forwarded",
	  .state = ST_TRACK | ST_BULK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .seq_off = MB, .payload = 100 },
	  FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .seq_off = MB, .payload = 100,
		   TO_B } },
	{ "tcp4 tracked: in bulk, data 3 MB beyond what the relay saw forwarded",
	  .state = ST_TRACK | ST_BULK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .seq_off = 7 * MB, .payload = 100 },
	  FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .seq_off = 7 * MB, .payload = 100,
		   TO_B } },
	{ "tcp4 tracked: in bulk, data beyond the edge offered dropped",
	  .state = ST_TRACK | ST_BULK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .seq_off = 13 * MB, .payload = 100 },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: in bulk, data further back than the window offered dropped",
	  .state = ST_TRACK | ST_BULK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .seq_off = -5 * MB, .payload = 100 },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: a segment without ACK dropped (the endpoint would)",
	  .state = ST_TRACK,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tcp_flags = NS_TCP_FIN },
	  BOTH(-NS_DROP_WINDOW) },
	{ "tcp4 tracked: data after 100 bytes in the window moves the mark",
	  .state = ST_TRACK,
	  .pre = { TCP4(PEER_A4, 40001, RELAY4, 5001), .payload = 100 },
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tcp_flags = NS_TCP_RST, .seq_off = 100 },
	  FORWARD, .flags = NS_F_RST,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .tcp_flags = NS_TCP_RST,
		   .seq_off = 100, TO_B } },
	/* The kernel strips the outer tag before TC; BPF_PROG_TEST_RUN does
	 * not, so TC sees what it would see of a QinQ frame's inner tag. */
	{ "tcp4 in a VLAN-tagged frame: XDP leaves it untouched to TC",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .vlans = 1 },
	  .xdp = NS_V_FALLBACK, .tc = -NS_DROP_FIB },
	{ "udp6 with two VLAN tags: XDP leaves it untouched to TC",
	  .in = { UDP6(PEER_A6, 40001, RELAY6, 5001), .vlans = 2 },
	  .xdp = NS_V_FALLBACK, .tc = -NS_DROP_FIB },
	{ "udp4 with two VLAN tags, not spliced: passed",
	  .in = { UDP4(PEER_A4, 40001, RELAY4, 53), .vlans = 2 }, BOTH(NS_V_PASS) },
	{ "tcp4 SYN in a VLAN-tagged frame to an expected port: punted",
	  .in = { TCP4(PEER_A4, 50000, RELAY4, 6001), SYN, .vlans = 1 }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 0, 20 } },
	{ "tcp4 to a peer behind another device: redirect",
	  .in = { TCP4(PEER_A4, 42000, RELAY4, 5201) }, BOTH(NS_V_REDIRECT),
	  .out = { TCP4(RELAY4, 5202, REMOTE4, 42001), .smac = MAC_REMOTE_DEV,
		   .dmac = MAC_REMOTE, .ttl = 63 } },
	{ "tcp4 next hop without neighbour: XDP leaves it untouched to TC",
	  .in = { TCP4(PEER_A4, 41000, RELAY4, 5101) },
	  .xdp = NS_V_FALLBACK, .tc = NS_V_REDIRECT,
	  /* TC: the neighbour layer writes the Ethernet header later. */
	  .out = { TCP4(RELAY4, 5102, NONEIGH4, 41001), .ttl = 63 } },
	{ "tcp4 without a route: dropped",
	  .in = { TCP4(PEER_A4, 43000, RELAY4, 5301) }, BOTH(-NS_DROP_FIB) },
	{ "tcp4 bigger than the egress MTU: dropped",
	  .in = { TCP4(PEER_A4, 42000, RELAY4, 5201), .payload = MTU_REMOTE },
	  BOTH(-NS_DROP_SIZE) },
	{ "tcp4 jumbo frame in several XDP buffers",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .payload = JUMBO }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .payload = JUMBO, TO_B },
	  .xdp_only = 1 },
	{ "tcp4 TTL 2 leaves with TTL 1",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .ttl = 2 }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .smac = MAC_PEERS,
		   .dmac = MAC_B, .ttl = 1 } },
	{ "tcp4 TTL 1: dropped",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .ttl = 1 }, BOTH(-NS_DROP_TTL) },
	{ "udp6 hop limit 1: dropped",
	  .in = { UDP6(PEER_A6, 40001, RELAY6, 5001), .ttl = 1 }, BOTH(-NS_DROP_TTL) },
	{ "tcp4 retransmitted SYN on an established splice: punted",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN_RETX, 0, 1 } },
	{ "tcp6 retransmitted SYN of side B: punted",
	  .in = { TCP6(PEER_B6, 40002, RELAY6, 5002), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN_RETX, 1, 3 } },
	/* A NAT reuses the addresses and ports of a finished connection. */
	{ "tcp4 SYN on a splice whose side A sent FIN: to the splice expecting the port",
	  .state = ST_A_FIN | ST_REEXPECT,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 0, REEXPECT_ID } },
	{ "tcp4 SYN on a splice whose side B reset: to the splice expecting the port",
	  .state = ST_B_RST | ST_REEXPECT,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 0, REEXPECT_ID } },
	{ "tcp4 ACK on a finished splice, its port waiting for A's proof: punted as the proof",
	  .state = ST_A_FIN | ST_REEXPECT | ST_REPROVE,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001) }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_PROOF, 0, REEXPECT_ID } },
	{ "tcp4 ACK on a finished splice, its port expected without proving: forwarded",
	  .state = ST_A_FIN | ST_REEXPECT,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001) }, FORWARD, .flags = NS_F_FIN,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), TO_B } },
	{ "tcp4 SYN on a finished splice, its port expected by nobody: passed",
	  .state = ST_A_FIN,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), SYN }, BOTH(NS_V_PASS) },
	{ "tcp4 retransmitted SYN while a new splice waits on the port: the old splice's",
	  .state = ST_REEXPECT,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN_RETX, 0, 1 } },
	{ "tcp4 SYN|ACK on a splice: dropped",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tcp_flags = NS_TCP_SYN | NS_TCP_ACK },
	  BOTH(-NS_DROP_MALFORMED) },
	{ "last seen less than a second ago: not stored again",
	  .state = ST_SEEN_NOW,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001) }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), TO_B } },

	/* The next hop cache (bpf/lib/hop.h). */
	{ "next hop cached just now: used, not looked up",
	  HOP(), .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .payload = 100 }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .payload = 100, VIA_HOP },
	  .hop_kept = 1 },
	{ "tcp6 next hop cached just now: used",
	  HOP(), .in = { TCP6(PEER_B6, 40002, RELAY6, 5002), .payload = 8 }, FORWARD,
	  .out = { TCP6(RELAY6, 5001, PEER_A6, 40001), .payload = 8, VIA_HOP },
	  .hop_kept = 1 },
	{ "a second packet: the first one's next hop, the same output",
	  .pre = { TCP4(PEER_A4, 40001, RELAY4, 5001), .payload = 100 },
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .payload = 100 }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .payload = 100, TO_B },
	  .hop_kept = 1 },
	{ "next hop cached longer ago than its lifetime: looked up, replaced",
	  HOP(.stale = 1), .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 50 },
	  FORWARD, .out = { UDP4(RELAY4, 5002, PEER_B4, 40002), .payload = 50, TO_B } },
	{ "cache time stamp 0: nothing cached, looked up",
	  HOP(.at_zero = 1), .in = { TCP4(PEER_A4, 40001, RELAY4, 5001) }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), TO_B } },
	{ "packet longer than the cached next hop served: looked up, replaced",
	  HOP(.len_adj = -1), .in = { TCP4(PEER_B4, 40002, RELAY4, 5002), .payload = 20 },
	  FORWARD, .out = { TCP4(RELAY4, 5001, PEER_A4, 40001), .payload = 20, TO_A } },
	{ "packet shorter than the cached next hop served: used",
	  HOP(.len_adj = 1), .in = { UDP6(PEER_A6, 40001, RELAY6, 5001), .payload = 20 },
	  FORWARD, .out = { UDP6(RELAY6, 5002, PEER_B6, 40002), .payload = 20, VIA_HOP },
	  .hop_kept = 1 },
	{ "longer than the cached next hop served and than the egress MTU: dropped",
	  HOP(.len_adj = -1, .dev = DEV_REMOTE),
	  .in = { TCP4(PEER_A4, 42000, RELAY4, 5201), .payload = MTU_REMOTE },
	  BOTH(-NS_DROP_SIZE) },
	{ "a cached word of another store: looked up, replaced",
	  HOP(.torn = 1), .in = { TCP6(PEER_A6, 40001, RELAY6, 5001) }, FORWARD,
	  .out = { TCP6(RELAY6, 5002, PEER_B6, 40002), TO_B } },
	{ "cached for packets from another device: looked up, kept",
	  HOP(.other_dev = 1), .in = { TCP4(PEER_A4, 40001, RELAY4, 5001) }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), TO_B }, .hop_kept = 1 },
	{ "cached for another DSCP: looked up, kept",
	  HOP(.other_dscp = 1), .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .tos = 0xb8 },
	  FORWARD, .out = { UDP4(RELAY4, 5002, PEER_B4, 40002), .tos = 0xb8, TO_B },
	  .hop_kept = 1 },
	/* RFC 3168 5: ECN field 01 is ECT(1), 11 is CE. */
	{ "tcp4 ECN CE after ECT(1): the same next hop (IPv4 routing ignores ECN)",
	  .pre = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tos = 0xb9 }, HOP(),
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .tos = 0xbb }, FORWARD,
	  .out = { TCP4(RELAY4, 5002, PEER_B4, 40002), .tos = 0xbb, VIA_HOP },
	  .hop_kept = 1 },
	{ "udp6 ECN CE after ECT(1): looked up, kept (IPv6 rules may match ECN)",
	  .pre = { UDP6(PEER_B6, 40002, RELAY6, 5002), .tos = 0xb9 }, HOP(),
	  .in = { UDP6(PEER_B6, 40002, RELAY6, 5002), .tos = 0xbb }, FORWARD,
	  .out = { UDP6(RELAY6, 5001, PEER_A6, 40001), .tos = 0xbb, TO_A },
	  .hop_kept = 1 },
	{ "cached by the other program: looked up, kept",
	  HOP(.other_hook = 1), .in = { TCP4(PEER_B4, 40002, RELAY4, 5002) }, FORWARD,
	  .out = { TCP4(RELAY4, 5001, PEER_A4, 40001), TO_A }, .hop_kept = 1 },

	/* Table misses. */
	{ "tcp4 SYN to an expected port: punted",
	  .in = { TCP4(PEER_A4, 50000, RELAY4, 6001), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 0, 20 } },
	{ "udp4 to an expected port open to any source: punted",
	  .in = { UDP4(PEER_B4, 50000, RELAY4, 6002), .payload = NS_TOKEN_BYTES },
	  BOTH(NS_V_PUNT), .punt = { NS_PUNT_UDP, 1, 21 } },
	{ "tcp6 SYN to an expected port: punted",
	  .in = { TCP6(PEER_A6, 50000, RELAY6, 6001), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 1, 22 } },
	{ "udp6 long datagram to an expected port: punted, head only",
	  .in = { UDP6(PEER_B6, 50000, RELAY6, 6002), .payload = 200 }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_UDP, 0, 23 } },
	{ "udp4 jumbo datagram in several XDP buffers to an expected port: punted",
	  .in = { UDP4(PEER_A4, 50000, RELAY4, 6002), .payload = JUMBO }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_UDP, 1, 21 }, .xdp_only = 1 },
	{ "tcp4 SYN from a source the splice does not allow: dropped",
	  .in = { TCP4(PEER_B4, 50000, RELAY4, 6001), SYN }, BOTH(-NS_DROP_SOURCE) },
	{ "udp6 from a source the splice does not allow: dropped",
	  .in = { UDP6(PEER_A6, 50000, RELAY6, 6002) }, BOTH(-NS_DROP_SOURCE) },
	{ "tcp4 ACK to an expected port: stranger",
	  .in = { TCP4(PEER_A4, 50000, RELAY4, 6001) }, BOTH(-NS_DROP_STRANGER) },
	{ "tcp6 RST to an expected port: stranger",
	  .in = { TCP6(PEER_A6, 50000, RELAY6, 6001), .tcp_flags = NS_TCP_RST },
	  BOTH(-NS_DROP_STRANGER) },
	{ "tcp4 ACK to a proving port (the side's proof): punted",
	  .in = { TCP4(PEER_A4, 50000, RELAY4, 6003) }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_PROOF, 0, 26 } },
	{ "tcp4 ACK from another source to a proving port: stranger",
	  .in = { TCP4(PEER_B4, 50000, RELAY4, 6003) }, BOTH(-NS_DROP_STRANGER) },
	{ "tcp4 RST to a proving port: stranger (an RST proves nothing)",
	  .in = { TCP4(PEER_A4, 50000, RELAY4, 6003), .tcp_flags = NS_TCP_RST | NS_TCP_ACK },
	  BOTH(-NS_DROP_STRANGER) },
	{ "tcp6 ACK with data to a proving port: punted",
	  .in = { TCP6(PEER_B6, 50000, RELAY6, 6003), .payload = 61 }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_PROOF, 1, 27 } },
	{ "tcp6 ACK from another source to a proving port: stranger",
	  .in = { TCP6(PEER_A6, 50000, RELAY6, 6003) }, BOTH(-NS_DROP_STRANGER) },
	{ "tcp4 SYN to a proving port: punted (a candidate)",
	  .in = { TCP4(PEER_A4, 50001, RELAY4, 6003), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 0, 26 } },
	{ "tcp4 SYN to a public port: punted under the port's index",
	  .in = { TCP4(PEER_B4, 50000, RELAY4, 8080), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 1, NS_PUBLIC_BIT | 3 } },
	{ "tcp4 SYN from anywhere to a public port: punted",
	  .in = { TCP4(REMOTE4, 50000, RELAY4, 8080), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 1, NS_PUBLIC_BIT | 3 } },
	{ "tcp4 ACK with data to a public port (a client's proof): punted",
	  .in = { TCP4(PEER_B4, 50000, RELAY4, 8080), .payload = 40 }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_PROOF, 1, NS_PUBLIC_BIT | 3 } },
	{ "tcp4 RST to a public port (a challenge's answer): punted",
	  .in = { TCP4(PEER_B4, 50000, RELAY4, 8080), .tcp_flags = NS_TCP_RST },
	  BOTH(NS_V_PUNT), .punt = { NS_PUNT_PROOF, 1, NS_PUBLIC_BIT | 3 } },
	{ "tcp6 SYN to a public port open for IPv4 only: passed to the host",
	  .in = { TCP6(PEER_B6, 50000, RELAY6, 8080), SYN }, BOTH(NS_V_PASS) },
	{ "tcp4 SYN from the allowed source to a loose expected port: punted",
	  .in = { TCP4(PEER_B4, 50000, RELAY4, 46248), SYN }, BOTH(NS_V_PUNT),
	  .punt = { NS_PUNT_SYN, 1, 25 } },
	{ "tcp4 ACK to a loose expected port (the relay host's own connection): passed",
	  .in = { TCP4(PEER_A4, 7700, RELAY4, 46248) }, BOTH(NS_V_PASS) },
	{ "tcp4 SYN from another source to a loose expected port: passed",
	  .in = { TCP4(PEER_A4, 50000, RELAY4, 46248), SYN }, BOTH(NS_V_PASS) },
	{ "tcp4 SYN to a port nobody expects: passed",
	  .in = { TCP4(PEER_A4, 50000, RELAY4, 22), SYN }, BOTH(NS_V_PASS) },
	{ "tcp4 SYN to an expected port number, not to the relay: passed",
	  .in = { TCP4(PEER_A4, 50000, PEER_B4, 6001), SYN }, BOTH(NS_V_PASS) },
	{ "empty maps: a spliced flow's packet passes",
	  .state = ST_EMPTY,
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001) }, BOTH(NS_V_PASS) },
	{ "punt ring buffer full: dropped",
	  .state = ST_RING_FULL,
	  .in = { TCP4(PEER_A4, 50000, RELAY4, 6001), SYN }, BOTH(-NS_DROP_RINGBUF) },

	/* Not ours. */
	{ "ARP: passed",
	  .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .ethertype = 0x0806 },
	  BOTH(NS_V_PASS) },
	{ "ICMP to the relay: passed",
	  .in = { .family = NS_AF_INET, .proto = IPPROTO_ICMP, .src = PEER_A4,
		  .dst = RELAY4 }, BOTH(NS_V_PASS) },
	{ "IPv6 extension header other than Fragment: passed",
	  .in = { .family = NS_AF_INET6, .proto = 0 /* Hop-by-Hop */, .src = PEER_A6,
		  .dst = RELAY6 }, BOTH(NS_V_PASS) },

	/* Truncated and malformed. */
	{ "ipv4 ihl 4 on a spliced flow: dropped",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .ihl = 4 }, BOTH(-NS_DROP_MALFORMED) },
	{ "ipv4 total length beyond the frame on a spliced flow: dropped",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .len_adj = 8 },
	  BOTH(-NS_DROP_MALFORMED) },
	{ "ipv4 header cut short: passed (no addresses to match)",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .cut = 14 + 12 }, BOTH(NS_V_PASS),
	  .xdp_only = 1 },
	{ "tcp header cut short, to the relay: dropped",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .cut = 14 + 20 + 10 },
	  BOTH(-NS_DROP_MALFORMED) },
	{ "tcp header cut short, to another host: passed",
	  .in = { TCP4(PEER_A4, 40001, PEER_B4, 5001), .cut = 14 + 20 + 10 },
	  BOTH(NS_V_PASS) },
	{ "tcp data offset 4 on a spliced flow: dropped",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 5001), .doff = 4 }, BOTH(-NS_DROP_MALFORMED) },
	{ "tcp data offset beyond the packet on a spliced flow: dropped",
	  .in = { TCP6(PEER_A6, 40001, RELAY6, 5001), .doff = 15, .payload = 10 },
	  BOTH(-NS_DROP_MALFORMED) },
	{ "tcp data offset 4 to another host: passed",
	  .in = { TCP4(PEER_A4, 40001, PEER_B4, 80), .doff = 4 }, BOTH(NS_V_PASS) },
	{ "tcp data offset 4 to an unspliced relay port: dropped (relay address)",
	  .in = { TCP4(PEER_A4, 40001, RELAY4, 22), .doff = 4 }, BOTH(-NS_DROP_MALFORMED) },
	{ "udp length beyond the IP packet on a spliced flow: dropped",
	  .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 8, .udp_len_adj = 4 },
	  BOTH(-NS_DROP_MALFORMED) },
	{ "ipv6 payload length beyond the frame on a spliced flow: dropped",
	  .in = { UDP6(PEER_A6, 40001, RELAY6, 5001), .len_adj = 8 },
	  BOTH(-NS_DROP_MALFORMED) },

	/* IP fragments. */
	{ "udp4 first fragment: forwarded, train recorded",
	  .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 60,
		  .frag = PKT_FRAG_FIRST }, FORWARD,
	  .out = { UDP4(RELAY4, 5002, PEER_B4, 40002), .payload = 60,
		   .frag = PKT_FRAG_FIRST, TO_B } },
	{ "udp4 non-first fragment after its first: addresses rewritten",
	  .pre = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 60,
		   .frag = PKT_FRAG_FIRST },
	  .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 60,
		  .frag = PKT_FRAG_LATER }, FORWARD,
	  .out = { UDP4(RELAY4, 5002, PEER_B4, 40002), .payload = 60,
		   .frag = PKT_FRAG_LATER, TO_B } },
	{ "udp4 non-first fragment of an unknown train: passed",
	  .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 60,
		  .frag = PKT_FRAG_LATER }, BOTH(NS_V_PASS) },
	{ "tcp4 first fragment: forwarded",
	  .in = { TCP4(PEER_B4, 40002, RELAY4, 5002), .payload = 40,
		  .frag = PKT_FRAG_FIRST }, FORWARD,
	  .out = { TCP4(RELAY4, 5001, PEER_A4, 40001), .payload = 40,
		   .frag = PKT_FRAG_FIRST, TO_A } },
	{ "udp6 first fragment: forwarded",
	  .in = { UDP6(PEER_B6, 40002, RELAY6, 5002), .payload = 60,
		  .frag = PKT_FRAG_FIRST }, FORWARD,
	  .out = { UDP6(RELAY6, 5001, PEER_A6, 40001), .payload = 60,
		   .frag = PKT_FRAG_FIRST, TO_A } },
	{ "udp6 non-first fragment after its first: addresses rewritten",
	  .pre = { UDP6(PEER_B6, 40002, RELAY6, 5002), .payload = 60,
		   .frag = PKT_FRAG_FIRST },
	  .in = { UDP6(PEER_B6, 40002, RELAY6, 5002), .payload = 60,
		  .frag = PKT_FRAG_LATER }, FORWARD,
	  .out = { UDP6(RELAY6, 5001, PEER_A6, 40001), .payload = 60,
		   .frag = PKT_FRAG_LATER, TO_A } },
	{ "udp4 non-first fragment with TTL 1: dropped",
	  .pre = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 60,
		   .frag = PKT_FRAG_FIRST },
	  .in = { UDP4(PEER_A4, 40001, RELAY4, 5001), .payload = 60, .ttl = 1,
		  .frag = PKT_FRAG_LATER }, BOTH(-NS_DROP_TTL) },
};

/* ------------------------------------------------------------------------
 * Running a program.
 */

/* One loaded program and the maps it uses. */
struct env {
	const char *name;
	int xdp;			/* XDP (else TC) */
	int prog;
	int table, counters, stats, ports, frags, track, police;
	struct ring_buffer *rb;
	int ifindex;			/* DEV_PEERS */
	int remote_ifindex;		/* DEV_REMOTE */
	int ncpus;
	struct {
		int n;
		struct ns_punt last;
	} punts;
	void *skel;
};

/* A cmocka test: one case against one program. */
struct run {
	struct env *env;
	const struct tcase *c;
};

static struct env xdp_env = { .name = "xdp_relay", .xdp = 1 };
static struct env tc_env = { .name = "tc_relay", .xdp = 0 };

static __u32 action(const struct env *e, int verdict)
{
	switch (verdict) {
	case NS_V_TX:
		return e->xdp ? XDP_TX : ~0U;
	case NS_V_REDIRECT:
		return e->xdp ? XDP_REDIRECT : TC_ACT_REDIRECT;
	case NS_V_PASS:
	case NS_V_FALLBACK:
		return e->xdp ? XDP_PASS : TC_ACT_OK;
	default:
		return e->xdp ? XDP_DROP : (__u32)TC_ACT_SHOT;
	}
}

static int forwarded(int verdict)
{
	return verdict == NS_V_TX || verdict == NS_V_REDIRECT;
}

static void prog_run(struct env *e, const struct frame *in, struct frame *out,
		     int repeat, __u32 *retval)
{
	struct xdp_md xdp = {
		.data_end = in->len,
		.ingress_ifindex = e->ifindex,
	};
	struct __sk_buff skb = { .ifindex = e->ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = in->b,
		.data_size_in = in->len,
		.data_out = out->b,
		.data_size_out = sizeof(out->b),
		.repeat = repeat,
	);
	int err;

	if (e->xdp) {
		opts.ctx_in = &xdp;
		opts.ctx_size_in = sizeof(xdp);
	} else {
		opts.ctx_in = &skb;
		opts.ctx_size_in = sizeof(skb);
	}
	err = bpf_prog_test_run_opts(e->prog, &opts);
	if (err)
		fail_msg("%s: BPF_PROG_TEST_RUN: %s", e->name, strerror(-err));
	out->len = opts.data_size_out;
	*retval = opts.retval;
}

static int on_punt(void *ctx, void *data, size_t size)
{
	struct env *e = ctx;

	e->punts.n++;
	memcpy(&e->punts.last, data, size < sizeof(e->punts.last) ? size :
	       sizeof(e->punts.last));
	return 0;
}

static int punts_drain(struct env *e)
{
	e->punts.n = 0;
	return ring_buffer__consume(e->rb);
}

/* ------------------------------------------------------------------------
 * Map state.
 */

static void map_clear(int fd, size_t key_size)
{
	__u8 key[64], next[64];

	assert_true(key_size <= sizeof(key));
	while (bpf_map_get_next_key(fd, NULL, next) == 0) {
		memcpy(key, next, key_size);
		assert_int_equal(bpf_map_delete_elem(fd, key), 0);
	}
}

static void stats_zero(struct env *e)
{
	__u64 zero[e->ncpus];
	__u32 i;

	memset(zero, 0, sizeof(zero));
	for (i = 0; i < NS_STAT_MAX; i++)
		assert_int_equal(bpf_map_update_elem(e->stats, &i, zero, BPF_ANY), 0);
}

static __u64 stat_sum(struct env *e, __u32 i)
{
	__u64 v[e->ncpus], sum = 0;
	int c;

	assert_int_equal(bpf_map_lookup_elem(e->stats, &i, v), 0);
	for (c = 0; c < e->ncpus; c++)
		sum += v[c];
	return sum;
}

static void splice_make(const struct splice_def *d, struct ns_splice *s)
{
	memset(s, 0, sizeof(*s));
	s->id = d->id;
	s->proto = d->proto;
	s->family = d->family;
	s->mode = d->mode;
	s->state = NS_ST_ESTABLISHED;
	s->port[0] = htons(d->relay_port[0]);
	s->port[1] = htons(d->relay_port[1]);
	addr_parse(d->family == NS_AF_INET ? RELAY4 : RELAY6, s->relay);
	addr_parse(d->a, s->peer[0].addr);
	addr_parse(d->b, s->peer[1].addr);
	s->peer[0].port = htons(d->a_port);
	s->peer[1].port = htons(d->b_port);
}

/* Every splice's counters slot to zero, as the daemon leaves it at creation. */
static void counters_zero(struct env *e)
{
	struct ns_counters zero[e->ncpus];
	size_t i;

	memset(zero, 0, sizeof(zero));
	for (i = 0; i < ARRAY_SIZE(splices); i++) {
		__u32 slot = NS_SPLICE_SLOT(splices[i].id);

		assert_int_equal(bpf_map_update_elem(e->counters, &slot, zero, BPF_ANY), 0);
	}
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The clock of bpf_ktime_get_coarse_ns(). */
static __u64 coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Reset every map, then install the case's state. */
static void state_set(struct env *e, unsigned int state)
{
	size_t i;
	int dir;

	map_clear(e->table, sizeof(struct ns_key));
	map_clear(e->ports, sizeof(struct ns_port_key));
	map_clear(e->frags, sizeof(struct ns_frag_key));
	stats_zero(e);
	counters_zero(e);
	punts_drain(e);
	{
		struct ns_track t = { 0 };
		__u32 slot = NS_SPLICE_SLOT(1);

		if (state & ST_TRACK) {
			t.splice_id = 1;
			t.snd_max[0] = t.ack_max[1] = FIXTURE_SEQ;
			t.snd_max[1] = t.ack_max[0] = FIXTURE_ACK_SEQ;
			t.max_win[0] = t.max_win[1] = 0xffff;
			t.edge[0] = t.ack_max[0] + 0xffff;
			t.edge[1] = t.ack_max[1] + 0xffff;
			t.wscale[0] = t.wscale[1] = state & (ST_SCALED | ST_BULK) ? 7 : 0;
			if (state & ST_BULK) {
				t.snd_max[0] = t.ack_max[1] = FIXTURE_SEQ + 4 * MB;
				t.max_win[1] = 8 * MB;
				t.edge[1] = t.ack_max[1] + t.max_win[1];
			}
		}
		assert_int_equal(bpf_map_update_elem(e->track, &slot, &t, BPF_ANY), 0);
	}
	if (state & ST_EMPTY)
		return;
	for (i = 0; i < ARRAY_SIZE(splices); i++) {
		struct ns_splice s;

		splice_make(&splices[i], &s);
		for (dir = 0; dir < 2; dir++) {
			struct ns_key key;
			struct ns_rewrite val;

			ns_entry_build(&s, dir, &key, &val);
			if (state & ST_SEEN_NOW)
				val.last_seen_ns = now_ns();
			if (s.id == 1 && dir == 0 && (state & ST_A_FIN))
				val.flags = NS_F_FIN;
			if (s.id == 1 && dir == 1 && (state & ST_B_RST))
				val.flags = NS_F_RST;
			if (state & ST_HEARD)
				val.flags |= NS_F_HEARD;
			assert_int_equal(bpf_map_update_elem(e->table, &key, &val,
							     BPF_NOEXIST), 0);
		}
	}
	for (i = 0; i < ARRAY_SIZE(expects); i++) {
		const struct expect_def *x = &expects[i];
		struct ns_port_key pk = {
			.proto = x->proto,
			.family = x->family,
			.port = htons(x->port),
		};
		struct ns_port_val pv = {
			.splice_id = x->splice_id,
			.side = x->side,
			.allow_any = !x->allow,
			.loose = x->loose,
			.proving = x->proving,
		};

		if (x->allow)
			addr_parse(x->allow, pv.allow);
		assert_int_equal(bpf_map_update_elem(e->ports, &pk, &pv, BPF_NOEXIST), 0);
	}
	if (state & ST_REEXPECT) {
		struct ns_port_key pk = { IPPROTO_TCP, NS_AF_INET, htons(5001) };
		struct ns_port_val pv = { .splice_id = REEXPECT_ID, .side = 0,
					  .proving = !!(state & ST_REPROVE) };

		addr_parse(PEER_A4, pv.allow);
		assert_int_equal(bpf_map_update_elem(e->ports, &pk, &pv, BPF_NOEXIST), 0);
	}
}

/* The length a program's MTU check compares (ctx_fib_len). */
static __u32 hop_len(const struct env *e, const struct frame *in)
{
	return e->xdp ? in->l3_len : in->len;
}

/* The TOS byte / IPv6 traffic class of the IP header at ip. */
static __u8 ip_tos(const __u8 *ip)
{
	return ip[0] >> 4 == 4 ? ip[1] : (ip[0] & 0xf) << 4 | ip[1] >> 4;
}

static void ip_set_tos(__u8 *ip, __u8 tos)
{
	if (ip[0] >> 4 == 4) {
		ip[1] = tos;
	} else {
		ip[0] = (ip[0] & 0xf0) | tos >> 4;
		ip[1] = (ip[1] & 0x0f) | (tos & 0xf) << 4;
	}
}

/* ns_hop.flow of the IP header at ip: the IPv4 DSCP, not ECN (RFC 3168 5);
 * the IPv6 traffic class, ECN included, and flow label. */
static __u64 hop_flow(const __u8 *ip)
{
	__u32 flow;

	if (ip[0] >> 4 == 4) {
		flow = ip[1] & 0xfc;
	} else {
		memcpy(&flow, ip, sizeof(flow));
		flow &= htonl(0x0fffffff);
	}
	return (__u64)flow << 16;
}

/* Forge c->hop into the entry the input hits (struct hop_def). */
static void hop_forge(struct env *e, const struct tcase *c, const struct frame *in)
{
	const struct hop_def *d = &c->hop;
	struct ns_rewrite val;
	struct ns_hop *h = &val.hop;
	struct ns_key key;
	/* 10 ms back: the programs' clock may lag the coarse clock by a
	 * tick (bpf/lib/clock.h), and a stamp ahead of it looks old. */
	__u64 tag = 0x1234, at = coarse_ns() - 10000000ULL;
	int hook = e->xdp ? NS_HOP_XDP : NS_HOP_TC, i;
	__u8 ip[4];

	if (d->other_hook)
		hook = e->xdp ? NS_HOP_TC : NS_HOP_XDP;
	if (d->stale)
		at -= 2 * NS_HOP_LIFETIME_NS;
	memcpy(ip, in->b + in->l3_off, sizeof(ip));
	if (d->other_dscp)
		ip_set_tos(ip, ip_tos(ip) ^ 0x20);
	pkt_key(&c->in, &key);
	assert_int_equal(bpf_map_lookup_elem(e->table, &key, &val), 0);
	if (c->pre.family) {
		assert_true(ns_hop_fresh(h->at, coarse_ns()));
		h->dmac = ns_hop_pack6(MAC_HOP_D) | (h->dmac & NS_HOP_TAG);
		h->smac = ns_hop_pack6(MAC_HOP_S) | (h->smac & NS_HOP_TAG);
		assert_int_equal(bpf_map_update_elem(e->table, &key, &val, BPF_EXIST), 0);
		return;
	}
	memset(h, 0, sizeof(*h));
	h->at = d->at_zero ? 0 : ns_hop_at(at) | tag;
	h->in = ns_hop_in(d->other_dev ? e->remote_ifindex : e->ifindex, hook) | tag;
	h->flow = hop_flow(ip) | tag;
	h->out = ns_hop_out(d->dev ? if_nametoindex(d->dev) : (unsigned int)e->ifindex,
			    hop_len(e, in) + d->len_adj) | tag;
	h->dmac = ns_hop_pack6(MAC_HOP_D) | tag;
	h->smac = ns_hop_pack6(MAC_HOP_S) | (d->torn ? tag - 1 : tag);
	for (i = 0; i < 4; i++)
		h->nh[i] = (__u64)val.daddr[i] << 16 | tag;
	assert_int_equal(bpf_map_update_elem(e->table, &key, &val, BPF_EXIST), 0);
}

/* Fill the punt ring buffer by running a punted packet until it refuses. */
static void ring_fill(struct env *e, const struct frame *in)
{
	struct frame out;
	__u32 retval;

	prog_run(e, in, &out, NS_RINGBUF_BYTES / sizeof(struct ns_punt) + 1, &retval);
	assert_true(stat_sum(e, NS_DROP_RINGBUF) > 0);
	stats_zero(e);
}

/* ------------------------------------------------------------------------
 * Checks.
 */

static void check_stats(struct env *e, int verdict)
{
	__u32 v = verdict >= 0 ? (__u32)verdict : NS_V_DROP;
	__u32 i;

	for (i = 0; i < NS_STAT_MAX; i++) {
		__u64 want = i == v || (verdict < 0 && i == (__u32)-verdict);
		__u64 got = stat_sum(e, i);

		if (got != want)
			fail_msg("ns_stats[%u]: %llu, expected %llu", i,
				 (unsigned long long)got, (unsigned long long)want);
	}
}

static void check_output(struct env *e, const struct tcase *c, int verdict,
			 const struct frame *in, const struct frame *out)
{
	struct frame want;

	if (!forwarded(verdict)) {
		/* Passed, punted, dropped, left to TC: never modified. */
		if (out->len != in->len || memcmp(out->b, in->b, in->len)) {
			frame_dump("input", in->b, in->len, NULL, 0);
			frame_dump("output", out->b, out->len, in->b, in->len);
			fail_msg("%s modified a packet it did not forward", e->name);
		}
		return;
	}
	assert_int_equal(pkt_build(&c->out, &want), 0);
	if (out->len != want.len || memcmp(out->b, want.b, want.len)) {
		frame_dump("expected", want.b, want.len, NULL, 0);
		frame_dump("output", out->b, out->len, want.b, want.len);
		fail_msg("%s: output differs from the expected packet", e->name);
	}
	if (!ns_pkt_csum_ok(out->b + want.l3_off, out->len - want.l3_off))
		fail_msg("%s: output checksums invalid", e->name);
}

/* The table entry the input hits, if any. */
static int entry_get(struct env *e, const struct tcase *c, struct ns_rewrite *val)
{
	struct ns_key key;

	pkt_key(&c->in, &key);
	return bpf_map_lookup_elem(e->table, &key, val);
}

/*
 * The entry the input hit: flags and last seen change only when the packet
 * is forwarded (last seen at most once a second), and so do its counters.
 */
static void check_entry(struct env *e, const struct tcase *c, int verdict,
			const struct ns_rewrite *before, const struct frame *in)
{
	struct ns_counters cnt[e->ncpus];
	struct ns_rewrite val;
	__u64 packets[2] = { 0, 0 }, bytes[2] = { 0, 0 };
	__u32 slot;
	int i;

	if (entry_get(e, c, &val))
		return;
	if (!forwarded(verdict)) {
		assert_int_equal(val.flags, before->flags);
		assert_int_equal(val.last_seen_ns, before->last_seen_ns);
	} else {
		/* A forwarded TCP segment but an RST: the side is heard from. */
		__u32 heard = c->in.proto == IPPROTO_TCP && !(c->in.tcp_flags & NS_TCP_RST) ?
			      NS_F_HEARD : 0;

		assert_int_equal(val.flags, c->flags | heard | (before->flags & NS_F_HEARD));
		if (before->last_seen_ns) {
			assert_int_equal(val.last_seen_ns, before->last_seen_ns);
		} else {
			/* CLOCK_MONOTONIC of the run, to a tick (bpf/lib/clock.h). */
			assert_true(val.last_seen_ns <= now_ns());
			assert_true(val.last_seen_ns + 1000000000ULL > now_ns());
		}
	}
	slot = NS_SPLICE_SLOT(val.splice_id);
	assert_int_equal(bpf_map_lookup_elem(e->counters, &slot, cnt), 0);
	for (i = 0; i < e->ncpus; i++) {
		packets[0] += cnt[i].packets[0];
		packets[1] += cnt[i].packets[1];
		bytes[0] += cnt[i].bytes[0];
		bytes[1] += cnt[i].bytes[1];
	}
	if (forwarded(verdict)) {
		assert_int_equal(packets[val.dir], 1);
		assert_int_equal(bytes[val.dir], in->l3_len);
	} else {
		assert_int_equal(packets[val.dir], 0);
		assert_int_equal(bytes[val.dir], 0);
	}
	assert_int_equal(packets[!val.dir], 0);
	assert_int_equal(bytes[!val.dir], 0);
}

/*
 * The entry's next hop after the run. A packet forwarded to a next hop the
 * FIB resolved (the output carries its Ethernet addresses) leaves in the
 * cache a fresh answer to its question, one that serves it: the output's
 * addresses and device, and for TC its destination as the next hop (every
 * peer here is on link). Nothing else changes the cache, and neither does a
 * packet the cache answered or whose question differs from that of a fresh
 * answer (.hop_kept).
 */
static void check_hop(struct env *e, const struct tcase *c, int verdict,
		      const struct ns_rewrite *before, const struct frame *in,
		      const struct frame *out)
{
	struct ns_rewrite val;
	const struct ns_hop *h = &val.hop;
	__u8 mac[6];
	__u32 nh[4];
	__u64 tag;
	int hook = e->xdp ? NS_HOP_XDP : NS_HOP_TC, dev, i;

	if (entry_get(e, c, &val))
		return;
	if (c->hop_kept || !forwarded(verdict) || !c->out.smac) {
		if (memcmp(h, &before->hop, sizeof(*h)))
			fail_msg("%s changed the cached next hop", e->name);
		return;
	}
	tag = h->at & NS_HOP_TAG;
	if (!ns_hop_fresh(h->at, coarse_ns()))
		fail_msg("%s: no fresh next hop cached (at %llu)", e->name,
			 (unsigned long long)h->at);
	assert_true(h->in == (ns_hop_in(e->ifindex, hook) | tag));
	assert_true(h->flow == (hop_flow(in->b + in->l3_off) | tag));
	dev = memcmp(c->out.smac, MAC_REMOTE_DEV, 6) ? e->ifindex : e->remote_ifindex;
	assert_int_equal(h->out & NS_HOP_TAG, tag);
	assert_int_equal(ns_hop_out_ifindex(h->out), dev);
	assert_true(ns_hop_out_len(h->out) >= hop_len(e, in));
	assert_int_equal(h->dmac & NS_HOP_TAG, tag);
	ns_hop_unpack6(h->dmac, mac);
	assert_memory_equal(mac, out->b, 6);
	assert_int_equal(h->smac & NS_HOP_TAG, tag);
	ns_hop_unpack6(h->smac, mac);
	assert_memory_equal(mac, out->b + 6, 6);
	if (e->xdp)
		return;
	addr_parse(c->out.dst, nh);
	for (i = 0; i < 4; i++)
		assert_true(h->nh[i] == ((__u64)nh[i] << 16 | tag));
}

static void check_punt(struct env *e, const struct tcase *c, int verdict,
		       const struct frame *in)
{
	const struct ns_punt *p = &e->punts.last;
	size_t len;

	if (c->state & ST_RING_FULL)
		return;
	punts_drain(e);
	if (verdict != NS_V_PUNT) {
		assert_int_equal(e->punts.n, 0);
		return;
	}
	assert_int_equal(e->punts.n, 1);
	len = in->l3_len < NS_PUNT_BYTES ? in->l3_len : NS_PUNT_BYTES;
	assert_int_equal(p->ifindex, e->ifindex);
	assert_int_equal(p->splice_id, c->punt.splice_id);
	assert_int_equal(p->side, c->punt.side);
	assert_int_equal(p->reason, c->punt.reason);
	assert_int_equal(p->pkt_len, in->l3_len);
	assert_int_equal(p->len, len);
	assert_memory_equal(p->data, in->b + in->l3_off, len);
}

static void run_case(void **state)
{
	const struct run *r = *state;
	const struct tcase *c = r->c;
	struct env *e = r->env;
	int verdict = e->xdp ? c->xdp : c->tc;
	struct ns_rewrite before = { 0 };
	struct frame in, out;
	__u32 retval;

	if (c->xdp_only && !e->xdp)
		skip();
	state_set(e, c->state);
	assert_int_equal(pkt_build(&c->in, &in), 0);
	if (c->pre.family) {
		struct frame pre;

		assert_int_equal(pkt_build(&c->pre, &pre), 0);
		prog_run(e, &pre, &out, 1, &retval);
		assert_int_equal(retval, action(e, e->xdp ? NS_V_TX : NS_V_REDIRECT));
		stats_zero(e);
		counters_zero(e);
		}
	if (c->hop.set)
		hop_forge(e, c, &in);
	if (c->state & ST_RING_FULL)
		ring_fill(e, &in);

	entry_get(e, c, &before);
	prog_run(e, &in, &out, 1, &retval);
	if (retval != action(e, verdict))
		fail_msg("%s returned %u, expected %u", e->name, retval,
			 action(e, verdict));
	check_stats(e, verdict);
	check_output(e, c, verdict, &in, &out);
	check_entry(e, c, verdict, &before, &in);
	check_hop(e, c, verdict, &before, &in, &out);
	check_punt(e, c, verdict, &in);
}

/* max-bandwidth (bpf/lib/police.h) at mbit Mbit/s; 0: no cap. */
static void police_set(struct env *e, __u32 mbit)
{
	struct ns_police p = { 0 };
	struct ns_bw bw;
	__u32 zero = 0;

	ns_bw_init(&bw, mbit);
	p.ps_per_byte = bw.ps_per_byte;
	p.burst_ns = bw.burst_ns;
	assert_int_equal(bpf_map_update_elem(e->police, &zero, &p, BPF_F_LOCK), 0);
}

/*
 * At 1 Mbit/s the burst (NS_BW_BURST_MIN) of a splice's packets passes and
 * those after it are dropped as "rate"; a FIN passes over the cap; without
 * the cap everything passes again. (The run takes milliseconds: at 125
 * bytes a millisecond the cap lets a few packets more through meanwhile.)
 */
static void police_cap(void **state)
{
	struct env *e = *state;
	const struct pkt data = { TCP4(PEER_A4, 40001, RELAY4, 5001), .payload = 1400 };
	const struct pkt fin = { TCP4(PEER_A4, 40001, RELAY4, 5001),
				 .tcp_flags = NS_TCP_FIN | NS_TCP_ACK };
	const __u32 fwd = action(e, e->xdp ? NS_V_TX : NS_V_REDIRECT);
	struct frame in, out;
	__u32 retval;
	int i, passed = 0, sent = 2 * NS_BW_BURST_MIN / 1440, burst = NS_BW_BURST_MIN / 1440;

	state_set(e, 0);
	assert_int_equal(pkt_build(&data, &in), 0);
	assert_int_equal(in.l3_len, 1440);
	police_set(e, 1);
	for (i = 0; i < sent; i++) {
		prog_run(e, &in, &out, 1, &retval);
		passed += retval == fwd;
	}
	if (passed < burst || passed > burst + 40)
		fail_msg("%d of %d packets of 1440 bytes passed a burst of %d", passed, sent,
			 NS_BW_BURST_MIN);
	assert_int_equal(stat_sum(e, NS_DROP_RATE), sent - passed);
	police_set(e, 0);
	prog_run(e, &in, &out, 1, &retval);
	assert_int_equal(retval, fwd);
	police_set(e, 1);
	assert_int_equal(pkt_build(&fin, &in), 0);
	prog_run(e, &in, &out, 1, &retval);
	assert_int_equal(retval, fwd);
	police_set(e, 0);
}

/* ------------------------------------------------------------------------
 * Loading.
 */

static int env_init(struct env *e, struct bpf_object *obj, struct bpf_program *prog)
{
	e->prog = bpf_program__fd(prog);
	e->table = bpf_object__find_map_fd_by_name(obj, "ns_table");
	e->counters = bpf_object__find_map_fd_by_name(obj, "ns_counters");
	e->stats = bpf_object__find_map_fd_by_name(obj, "ns_stats");
	e->ports = bpf_object__find_map_fd_by_name(obj, "ns_ports");
	e->track = bpf_object__find_map_fd_by_name(obj, "ns_track");
	e->frags = bpf_object__find_map_fd_by_name(obj, "ns_frags");
	e->police = bpf_object__find_map_fd_by_name(obj, "ns_police");
	e->rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "ns_punts"),
				 on_punt, e, NULL);
	e->ifindex = if_nametoindex(DEV_PEERS);
	e->remote_ifindex = if_nametoindex(DEV_REMOTE);
	e->ncpus = libbpf_num_possible_cpus();
	if (e->prog < 0 || e->table < 0 || e->counters < 0 || e->stats < 0 ||
	    e->ports < 0 || e->frags < 0 || e->police < 0 || !e->rb || !e->ifindex ||
	    !e->remote_ifindex || e->ncpus <= 0)
		return -1;
	return 0;
}

static __u32 relay4(void)
{
	__u32 a[4];

	addr_parse(RELAY4, a);
	return a[0];
}

static int xdp_setup(void **state)
{
	struct xdp_relay *skel = xdp_relay__open();

	if (!skel)
		return -1;
	xdp_env.skel = skel;
	skel->rodata->relay_addr4 = relay4();
	addr_parse(RELAY6, (__u32 *)skel->rodata->relay_addr6);
	if (xdp_relay__load(skel))
		return -1;
	return env_init(&xdp_env, skel->obj, skel->progs.xdp_relay);
}

static int xdp_teardown(void **state)
{
	ring_buffer__free(xdp_env.rb);
	xdp_relay__destroy(xdp_env.skel);
	return 0;
}

static int tc_setup(void **state)
{
	struct tc_relay *skel = tc_relay__open();

	if (!skel)
		return -1;
	tc_env.skel = skel;
	skel->rodata->relay_addr4 = relay4();
	addr_parse(RELAY6, (__u32 *)skel->rodata->relay_addr6);
	if (tc_relay__load(skel))
		return -1;
	return env_init(&tc_env, skel->obj, skel->progs.tc_relay);
}

static int tc_teardown(void **state)
{
	ring_buffer__free(tc_env.rb);
	tc_relay__destroy(tc_env.skel);
	return 0;
}

/* Both objects must define the same maps: the loader pins one set for both. */
static void maps_identical(void **state)
{
	struct xdp_relay *x = xdp_relay__open();
	struct tc_relay *t = tc_relay__open();
	struct bpf_map *m;
	int n = 0;

	assert_non_null(x);
	assert_non_null(t);
	bpf_object__for_each_map(m, x->obj) {
		const char *name = bpf_map__name(m);
		struct bpf_map *o;

		if (bpf_map__is_internal(m))
			continue;
		o = bpf_object__find_map_by_name(t->obj, name);
		if (!o)
			fail_msg("map %s missing from tc_relay", name);
		assert_int_equal(bpf_map__type(m), bpf_map__type(o));
		assert_int_equal(bpf_map__key_size(m), bpf_map__key_size(o));
		assert_int_equal(bpf_map__value_size(m), bpf_map__value_size(o));
		assert_int_equal(bpf_map__max_entries(m), bpf_map__max_entries(o));
		assert_int_equal(bpf_map__map_flags(m), bpf_map__map_flags(o));
		n++;
	}
	assert_int_equal(n, 10);
	xdp_relay__destroy(x);
	tc_relay__destroy(t);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static struct run xdp_runs[ARRAY_SIZE(cases)], tc_runs[ARRAY_SIZE(cases)];
/* a test per case, then police_cap */
static struct CMUnitTest xdp_tests[ARRAY_SIZE(cases) + 1], tc_tests[ARRAY_SIZE(cases) + 1];

/* A test per case, named "program: description", then police_cap. */
static int tests_make(struct env *e, struct run *runs, struct CMUnitTest *tests)
{
	size_t i;
	char *name;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (asprintf(&name, "%s: %s", e->name, cases[i].desc) < 0)
			return -1;
		runs[i] = (struct run){ .env = e, .c = &cases[i] };
		tests[i] = (struct CMUnitTest){
			.name = name,
			.test_func = run_case,
			.initial_state = &runs[i],
		};
	}
	if (asprintf(&name, "%s: max-bandwidth drops over the cap", e->name) < 0)
		return -1;
	tests[i] = (struct CMUnitTest){ .name = name, .test_func = police_cap,
					 .initial_state = e };
	return 0;
}

int main(void)
{
	const struct CMUnitTest objects[] = {
		cmocka_unit_test(maps_identical),
	};
	int failed = 0;

	if (geteuid() != 0) {
		printf("skipped: needs root (BPF, network namespaces)\n");
		return 77;
	}
	libbpf_set_print(libbpf_print);
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) != 1 ||
	    libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL) != 1) {
		printf("skipped: XDP/TC BPF programs not available\n");
		return 77;
	}
	if (fixture_netns() < 0) {
		printf("skipped: cannot set up a network namespace\n");
		return 77;
	}
	if (tests_make(&xdp_env, xdp_runs, xdp_tests) < 0 ||
	    tests_make(&tc_env, tc_runs, tc_tests) < 0)
		return 1;
	failed += cmocka_run_group_tests_name("objects", objects, NULL, NULL);
	failed += cmocka_run_group_tests_name("xdp_relay", xdp_tests, xdp_setup,
					      xdp_teardown);
	failed += cmocka_run_group_tests_name("tc_relay", tc_tests, tc_setup,
					      tc_teardown);
	return failed ? 1 : 0;
}
