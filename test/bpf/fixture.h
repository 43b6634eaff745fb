/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fixtures of the BPF_PROG_TEST_RUN tests: packets written as data and built
 * into frames, and the network namespace the FIB lookups run in.
 */
#ifndef NS_TEST_FIXTURE_H
#define NS_TEST_FIXTURE_H

#include <stddef.h>
#include <linux/types.h>

#include "natsplice_abi.h"

#define FRAME_MAX	9216
#define FIXTURE_SEQ	0x01020304U	/* a TCP segment's sequence number ... */
#define FIXTURE_ACK_SEQ	0x0a0b0c0dU	/* ... and acknowledgment number */	/* bytes, the largest frame a test builds */

/* The namespace (fixture_netns()): two veths, ns0 facing the peers. */
#define DEV_PEERS	"ns0"	/* 192.0.2.10/24, 2001:db8::10/64, MTU 9000 */
#define DEV_REMOTE	"ns1"	/* 198.51.100.10/24, MTU 1280 */
#define MTU_REMOTE	1280
#define JUMBO		6000	/* bytes: an XDP multi-buffer frame */

#define RELAY4		"192.0.2.10"
#define RELAY6		"2001:db8::10"
#define PEER_A4		"192.0.2.1"
#define PEER_B4		"192.0.2.2"
#define PEER_A6		"2001:db8::1"
#define PEER_B6		"2001:db8::2"
#define NONEIGH4	"192.0.2.3"	/* on link, no neighbour entry */
#define REMOTE4		"198.51.100.1"	/* behind DEV_REMOTE */
#define NOROUTE4	"203.0.113.1"	/* no route */

/* Ethernet addresses of the namespace's devices and neighbours. */
extern const __u8 MAC_PEERS[6];		/* DEV_PEERS */
extern const __u8 MAC_REMOTE_DEV[6];	/* DEV_REMOTE */
extern const __u8 MAC_A[6];		/* PEER_A4, PEER_A6 */
extern const __u8 MAC_B[6];		/* PEER_B4, PEER_B6 */
extern const __u8 MAC_REMOTE[6];	/* REMOTE4 */
extern const __u8 MAC_SENDER[6];	/* source of every input frame */

enum pkt_frag { PKT_WHOLE = 0, PKT_FRAG_FIRST, PKT_FRAG_LATER };

/* Bytes of L4 data in a first fragment (a multiple of 8, RFC 791). */
#define PKT_FRAG_FIRST_BYTES	32

/*
 * A frame as data. Unset fields take the defaults of a plain packet from
 * MAC_SENDER to MAC_PEERS with TTL 64 and valid checksums; the damage fields
 * are applied after the checksums are computed.
 */
struct pkt {
	__u8 family;		/* NS_AF_INET / NS_AF_INET6; 0: no packet */
	__u8 proto;		/* IPPROTO_TCP, IPPROTO_UDP or any other */
	const char *src, *dst;
	__u16 sport, dport;	/* host order */
	__u8 tcp_flags;		/* NS_TCP_*; ACK unless nonzero */
	__s32 seq_off, ack_off;	/* added to the TCP sequence / acknowledgment number
				 * (FIXTURE_SEQ, FIXTURE_ACK_SEQ) */
	__u8 ttl;		/* TTL / hop limit; 0: 64 */
	__u8 tos;		/* IPv4 TOS / IPv6 traffic class: DSCP << 2 | ECN */
	__u16 payload;		/* bytes after the L4 header */
	__u8 vlans;		/* 802.1Q tags (0..2) */
	__u8 ip_opts;		/* IPv4 option bytes, a multiple of 4 */
	__u8 frag;		/* enum pkt_frag */
	__u8 udp_nocsum;	/* UDP checksum 0 ("none") */
	const __u8 *smac, *dmac;
	/* Damage. */
	__u16 cut;		/* keep this many bytes of the frame; 0: all */
	__u8 ihl;		/* IPv4 header length field; 0: right */
	__u8 doff;		/* TCP data offset field; 0: right */
	__s16 len_adj;		/* added to IPv4 total / IPv6 payload length */
	__s16 udp_len_adj;	/* added to the UDP length */
	__u16 ethertype;	/* 0: IPv4 / IPv6 */
};

/* Where the IP packet of a built frame is. */
struct frame {
	__u8 b[FRAME_MAX];
	size_t len;
	size_t l3_off;
	size_t l3_len;		/* IP length from the (undamaged) header */
};

/* Build p into f. 0, or -1 when p does not make sense. */
int pkt_build(const struct pkt *p, struct frame *f);

/* The splice table key a packet would have (ports even if a fragment has none). */
void pkt_key(const struct pkt *p, struct ns_key *key);

/* Parse a textual address into an ABI address (IPv4 in addr[0]). */
void addr_parse(const char *s, __u32 addr[4]);

/*
 * Enter a fresh network namespace and build the fixture topology in it.
 * 0, or -1 (message printed) when it cannot be done.
 */
int fixture_netns(void);

/* Print a frame as hex, 16 bytes a line, marking where it differs from ref. */
void frame_dump(const char *what, const __u8 *b, size_t len, const __u8 *ref,
		size_t ref_len);

#endif
