/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Pairing the two SYNs of a spliced TCP connection: which SYN is new, which
 * is a retransmission, which completes the pair. Written once, for the relay
 * daemon (relay/relay_splice.c) and for the module shim (bpf/kmod/shim.c,
 * which calls it under its lock), the way lib/pkt.c is.
 */
#ifndef NS_PAIR_H
#define NS_PAIR_H

#include "natsplice_abi.h"
#include "pkt.h"

enum ns_pair {
	NS_PAIR_DUP = 0,	/* a retransmission, or the pair is being installed:
				 * nothing to do */
	NS_PAIR_HALF,		/* recorded (first SYN of this side, or the side
				 * reconnected from a new port): the partner is missing */
	NS_PAIR_DONE,		/* this SYN completed the pair: install both table
				 * entries, then answer both sides */
	NS_PAIR_AGAIN,		/* established, and this is the SYN that was answered:
				 * send this side's SYN-ACK again */
};

/*
 * Side `side`'s SYN (its head parsed into pi, its options into syn) for splice
 * s. Records the peer and the SYN in s: fields first, `seen` last, so that a
 * reader without the writer's lock (the daemon reading the module's record)
 * finds a side's fields complete once its bit is set. An enum ns_pair, or
 * -EINVAL when the SYN was not sent to this splice's relay port of that side.
 */
int ns_pair_syn(struct ns_splice *s, const struct ns_pkt_info *pi, const struct ns_syn *syn,
		unsigned int side);

/*
 * A segment (head parsed into pi, its acknowledgment number ack) at a relay
 * port whose side was answered with a SYN-ACK built from the partner's SYN:
 * does it prove that it comes from the side that sent SYN `syn` from `peer`?
 * It must come from that address and port, acknowledge the partner's ISN
 * (seq = partner ISN in our SYN-ACK: only who received it knows it) and
 * carry the next sequence number after the side's ISN. RFC 9293 3.5: the
 * third segment of the three-way handshake.
 */
int ns_pair_is_proof(const struct ns_pkt_info *pi, __u32 ack, const struct ns_peer *peer,
		     const struct ns_syn *syn, const struct ns_syn *partner);

/* Is pi/syn the SYN recorded as peer/rec (same source, same ISN)? */
int ns_pair_same_syn(const struct ns_peer *peer, const struct ns_syn *rec,
		     const struct ns_pkt_info *pi, const struct ns_syn *syn);

/* The side that connected first of a splice whose pair is complete, knowing
 * that `last` completed it: its SYN-ACK goes first (DESIGN §2). */
static inline unsigned int ns_pair_first(unsigned int last)
{
	return !last;
}

#endif
