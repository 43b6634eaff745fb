/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packets the relay daemon reads and writes itself: parsing punted heads,
 * SYN option parsing, the SYN-ACK builder of DESIGN §2 and RST building.
 * Pure functions over byte buffers (no sockets), unit-tested in test/unit.
 * Buffers start at the IP header (no Ethernet header).
 */
#ifndef NS_PKT_H
#define NS_PKT_H

#include <stddef.h>
#include <sys/types.h>
#include "natsplice_abi.h"

/* Addresses and ports of an IPv4/IPv6 TCP or UDP packet head. */
struct ns_pkt_info {
	__u8 family;		/* NS_AF_INET / NS_AF_INET6 */
	__u8 proto;		/* IPPROTO_TCP / IPPROTO_UDP */
	__u8 tcp_flags;		/* TCP flags byte (FIN 0x01 ... CWR 0x80), 0 for UDP */
	__u8 pad;
	__u32 saddr[4];
	__u32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u16 l4_off;		/* offset of the TCP/UDP header */
	__u16 payload_off;	/* offset of the payload */
	__u32 seq;		/* TCP sequence number, host order */
};

/* TCP flag bits of ns_pkt_info.tcp_flags. */
#define NS_TCP_FIN 0x01
#define NS_TCP_SYN 0x02
#define NS_TCP_RST 0x04
#define NS_TCP_PSH 0x08
#define NS_TCP_ACK 0x10
#define NS_TCP_URG 0x20
#define NS_TCP_ECE 0x40
#define NS_TCP_CWR 0x80

/*
 * Parse the head of a packet (len bytes available of it). 0, or -EINVAL when
 * it is not IPv4/IPv6 TCP/UDP or the headers do not fit in len.
 */
int ns_pkt_parse(const void *pkt, size_t len, struct ns_pkt_info *pi);

/*
 * Read a SYN's ISN, window and options (MSS, window scale, SACK-permitted,
 * timestamps, ECN setup) into syn. 0, or -EINVAL if the packet is not a SYN
 * (SYN without ACK) or its options are malformed. -EPERM for a SYN carrying
 * TCP-MD5 (RFC 2385) or TCP-AO (RFC 5925): the relay refuses to splice those.
 */
int ns_syn_parse(const void *pkt, size_t len, struct ns_syn *syn);

/* What the SYN-ACK towards one side is built from. */
struct ns_synack_params {
	__u8 family;
	__u8 ttl;			/* IPv4 TTL / IPv6 hop limit */
	__u16 mss_clamp;		/* largest MSS both legs carry (0: none) */
	__u32 relay[4];			/* source: relay address ... */
	__be16 relay_port;		/* ... and the port this side connected to */
	__u32 peer[4];			/* destination: this side's address ... */
	__be16 peer_port;		/* ... and source port */
	const struct ns_syn *own;	/* this side's SYN */
	const struct ns_syn *partner;	/* the other side's SYN */
};

/*
 * Build the SYN-ACK for one side (DESIGN §2): seq = partner ISN, ack = own
 * ISN + 1, window = partner's SYN window; window scale, SACK-permitted,
 * timestamps and ECN only if both SYNs offered them, with the partner's
 * values (TSval = partner TSval, TSecr = own TSval); MSS = partner MSS (536
 * for IPv4 / 1220 for IPv6 when absent) clamped to mss_clamp. Nothing else
 * (no TFO, MPTCP or unknown options). Writes a complete IP packet with valid
 * checksums into buf; returns its length or -ENOSPC.
 */
ssize_t ns_synack_build(const struct ns_synack_params *p, void *buf, size_t size);

/*
 * Build an RST|ACK from relay:relay_port to peer:peer_port with seq 0 and
 * ack = ack_seq (host order), acceptable to a socket in SYN-SENT whose ISN is
 * ack_seq - 1 (RFC 9293 3.10.7.3). Returns the length or -ENOSPC.
 */
ssize_t ns_rst_build(__u8 family, const __u32 relay[4], __be16 relay_port,
		     const __u32 peer[4], __be16 peer_port, __u32 ack_seq,
		     void *buf, size_t size);

/*
 * Check every checksum of an IP packet: the IPv4 header checksum and the
 * TCP/UDP checksum over the pseudo header (an IPv4 UDP checksum of 0 counts
 * as valid). 1 when all are valid, 0 otherwise (also when truncated).
 */
int ns_pkt_csum_ok(const void *pkt, size_t len);

/* Recompute all checksums of an IP packet in place (tests and tools). */
void ns_pkt_csum_fill(void *pkt, size_t len);

#endif
