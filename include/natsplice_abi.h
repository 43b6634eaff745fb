/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Map ABI shared by the relay's BPF programs (bpf/) and user space (relay/, ctl/).
 * Fixed-width types only, explicit padding, no pointers. Addresses are kept in
 * network byte order; an IPv4 address lives in addr[0] with addr[1..3] zero.
 */
#ifndef NATSPLICE_ABI_H
#define NATSPLICE_ABI_H

#include <linux/types.h>
#include <linux/bpf.h>	/* struct bpf_spin_lock */

#define NS_PIN_DIR_DEFAULT	"/sys/fs/bpf/natsplice"

#define NS_MAX_SPLICES		65536		/* splices; two table entries each */
/* A splice's slot in ns_counters. The daemon gives live splices ids whose
 * slots differ (relay/relay_splice.c), so a slot is the id's per-CPU key. */
#define NS_SPLICE_SLOT(id)	((id) & (NS_MAX_SPLICES - 1))
#define NS_TABLE_ENTRIES	(2 * NS_MAX_SPLICES)
#define NS_PORT_ENTRIES		(2 * NS_MAX_SPLICES)
#define NS_FRAG_ENTRIES		8192		/* IP fragment trains in flight */
#define NS_RINGBUF_BYTES	(1 << 20)	/* punt ring buffer, bytes */
#define NS_PUNT_BYTES		128		/* L3+L4 bytes copied per punted packet */
#define NS_TOKEN_BYTES		16		/* UDP splice token */

#define NS_AF_INET		2		/* == AF_INET, usable in BPF code */
#define NS_AF_INET6		10		/* == AF_INET6 */

/* Splice table key: the incoming 5-tuple, 40 bytes. */
struct ns_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;		/* IPPROTO_TCP / IPPROTO_UDP */
	__u8 family;		/* NS_AF_INET / NS_AF_INET6 */
	__u16 pad;
};

/* Per-direction flags in ns_rewrite.flags, set by BPF with atomic or. */
#define NS_F_FIN	(1U << 0)	/* a FIN crossed in this direction */
#define NS_F_RST	(1U << 1)	/* an RST crossed in this direction */
#define NS_F_HEARD	(1U << 2)	/* a segment other than a SYN or an RST came in
					 * this direction: its sender's NAT has seen the
					 * relay's SYN-ACK (bpf/lib/splice.h) */

/*
 * The next hop of one direction as bpf_fib_lookup() last found it, kept by the
 * BPF programs so that a table hit need not ask again (bpf/lib/hop.h; the
 * words' layout in ns_hop.h). All zero from the daemon: nothing cached.
 * Every word is stored and loaded whole and carries in its low 16 bits the
 * tag of the store that wrote it: a reader uses the words only when their
 * tags are all the same and not 0.
 */
struct ns_hop {
	__u64 at;		/* ns_now() of the lookup (bpf/lib/clock.h) */
	__u64 in;		/* the question: ingress ifindex << 32, hook << 16 */
	__u64 flow;		/* the question: IPv4 DSCP / IPv6 flow info << 16 */
	__u64 out;		/* egress ifindex << 32, longest length that passed << 16 */
	__u64 dmac;		/* next hop's Ethernet address << 16 */
	__u64 smac;		/* egress device's Ethernet address << 16 */
	__u64 nh[4];		/* TC: next-hop address, 32 bits << 16 per word */
};

/*
 * Splice table value: the rewrite for one direction. Written by the relay
 * daemon at install time (everything but flags and hop, which it leaves
 * zero); flags, last_seen_ns and hop are updated by the BPF programs.
 *
 * Checksum deltas are RFC 1624 one's-complement sums (sum of ~m + m') folded to
 * 16 bits, precomputed by ns_rewrite_init() in user space:
 *  csum_l3     IPv4 header: old->new addresses plus the TTL decrement;
 *  csum_pseudo L4 checksum, pseudo-header part (addresses);
 *  csum_ports  L4 checksum, port part (0 for a pure splice).
 * TC keeps the two L4 parts apart because a CHECKSUM_PARTIAL skb must see only
 * the pseudo-header change (the device sums the ports itself).
 */
struct ns_rewrite {
	__u32 saddr[4];
	__u32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u32 splice_id;
	__u16 csum_l3;
	__u16 csum_pseudo;
	__u16 csum_ports;
	__u8 dir;		/* 0: A->B, 1: B->A; index into ns_counters */
	__u8 pad;
	__u32 flags;		/* NS_F_* */
	__u32 pad2;
	__u64 last_seen_ns;	/* CLOCK_MONOTONIC, to a tick (bpf/lib/clock.h) */
	struct ns_hop hop;	/* cached next hop */
	/* Held by the writers of hop only. A member of the value itself, not
	 * of hop: verifiers before 6.2 find a bpf_spin_lock only there. */
	struct bpf_spin_lock hop_lock;
	__u32 pad3;
};

/*
 * Per-splice traffic: a per-CPU array indexed by NS_SPLICE_SLOT(splice id),
 * zeroed by the daemon when it creates the splice. An array, not a hash: a
 * lookup that recent verifiers inline (6.18 here; 6.1 calls the helper)
 * instead of a second hash lookup per packet.
 */
struct ns_counters {
	__u64 packets[2];	/* by ns_rewrite.dir */
	__u64 bytes[2];		/* L3 bytes */
};

_Static_assert((NS_MAX_SPLICES & (NS_MAX_SPLICES - 1)) == 0,
	       "NS_SPLICE_SLOT() needs NS_MAX_SPLICES to be a power of two");

/* The splice_id of a public port's expectation (ns_port_val): the bit and
 * the daemon's index of the port. Splice ids never have the bit. Its SYNs and
 * ACKs are punted like those of a proving side; the daemon finds the client's
 * splice by its address and port. */
#define NS_PUBLIC_BIT	0x80000000U

/* Relay port expectation key: which splice owns (proto, family, port). */
struct ns_port_key {
	__u8 proto;
	__u8 family;
	__be16 port;
};

/*
 * Relay port expectation: installed by the daemon for every relay port of a
 * splice that is not yet established. SYNs (TCP) and first datagrams (UDP) to
 * such a port from an allowed source are punted to the daemon.
 */
struct ns_port_val {
	__u32 splice_id;
	__u32 allow[4];		/* allowed source address, if allow_any == 0 */
	__u8 side;		/* 0: A, 1: B */
	__u8 allow_any;
	/* Not one of the relay's own ports (a pure splice's B side waits on A's
	 * source port, any port): the relay host may use it itself, so what is
	 * not the expected SYN passes to the kernel instead of being dropped,
	 * and nothing seals it. */
	__u8 loose;
	/* The daemon answered this side's SYN(s) and waits for the side to
	 * prove itself (relay_splice.c, "proving"): its ACK, from an allowed
	 * source, is punted (NS_PUNT_PROOF) instead of dropped. */
	__u8 proving;
};

/* Why a packet was punted to user space. */
enum ns_punt_reason {
	NS_PUNT_SYN = 1,	/* SYN to an expected relay port */
	NS_PUNT_SYN_RETX = 2,	/* SYN on an established splice: answer again */
	NS_PUNT_UDP = 3,	/* datagram to an expected UDP relay port */
	NS_PUNT_PROOF = 4,	/* non-SYN segment to a proving relay port (the side's
				 * ACK of our SYN-ACK) */
};

/* Ring buffer record: the head of one punted packet, from its L3 header. */
struct ns_punt {
	__u32 ifindex;
	__u32 splice_id;
	__u32 pkt_len;		/* whole L3 packet length */
	__u16 len;		/* bytes valid in data[] */
	__u8 side;		/* 0: A, 1: B */
	__u8 reason;		/* enum ns_punt_reason */
	__u8 data[NS_PUNT_BYTES];
};

/* IP fragment train key (non-first fragments carry no ports). */
struct ns_frag_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 id;		/* IPv4 id (16 bits) or IPv6 fragment id */
	__u8 proto;
	__u8 family;
	__u16 pad;
};

/*
 * Verdict and drop-reason counters: a per-CPU array indexed by this enum.
 * Every packet counts exactly one verdict (NS_V_*); a drop also counts its
 * reason (NS_DROP_*).
 */
enum ns_stat {
	NS_V_PASS = 0,		/* not ours: to the kernel untouched */
	NS_V_TX,		/* spliced, out the ingress device (XDP_TX) */
	NS_V_REDIRECT,		/* spliced, out another device / via TC */
	NS_V_PUNT,		/* copied to the daemon and dropped */
	NS_V_DROP,		/* dropped, see reason */
	NS_V_FALLBACK,		/* XDP: spliced packet left to TC (no neighbour) */
	NS_V_HANDSHAKE,		/* SYN handled in the kernel (module shim), dropped */

	NS_DROP_MALFORMED,	/* truncated or inconsistent headers */
	NS_DROP_TTL,		/* TTL / hop limit would reach zero */
	NS_DROP_FIB,		/* no route for the rewritten packet */
	NS_DROP_STRANGER,	/* non-SYN to a relay port that is not spliced */
	NS_DROP_SOURCE,		/* SYN/datagram from a source the splice does not allow */
	NS_DROP_RINGBUF,	/* punt ring buffer full */
	NS_DROP_FRAG,		/* fragment of an unknown or unspliced train */
	NS_DROP_SIZE,		/* spliced packet bigger than the egress MTU */
	NS_DROP_EARLY_RST,	/* RST from a side not heard since the handshake:
				 * its NAT's, not its own (bpf/lib/splice.h) */
	NS_DROP_WINDOW,		/* TCP segment outside the window its receiver
				 * would accept: a spoofed RST, FIN or data
				 * (RFC 5961; bpf/lib/splice.h ns_window) */
	NS_DROP_RATE,		/* over the relay's max-bandwidth (bpf/lib/police.h) */

	NS_STAT_MAX
};

/* Slots of the ns_stats map: room for new counters without a map layout
 * change (a restarted daemon adopts the old maps). */
#define NS_STAT_SLOTS 32
_Static_assert(NS_STAT_MAX <= NS_STAT_SLOTS, "ns_stats: raise NS_STAT_SLOTS");

#define NS_STAT_NAMES {							\
	"pass", "tx", "redirect", "punt", "drop", "fallback", "handshake", \
	"malformed", "ttl", "fib", "stranger", "source", "ringbuf",	\
	"frag", "size", "early_rst", "window", "rate",			\
}

/*
 * What the fast path knows of a TCP splice's two sequence spaces, at
 * NS_SPLICE_SLOT(id) of ns_track (bpf/lib/splice.h ns_window). Index: the
 * sending side (ns_rewrite.dir). The daemon writes it from the two SYNs at
 * install; BPF moves it forward with each segment inside the window. Racy
 * across CPUs by design: the margins absorb a stale value.
 */
/*
 * The relay's bandwidth cap (max-bandwidth), one map entry shared by all
 * CPUs: a virtual scheduling clock (GCRA) under a spin lock. A packet of n
 * bytes passes when tat_ns, moved on by n * ps_per_byte / 1000 ns, stays
 * within burst_ns of now; ps_per_byte 0: no cap. The daemon writes the
 * settings with BPF_F_LOCK; the programs move tat_ns.
 */
struct ns_police {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 tat_ns;		/* when the bytes let through so far are "paid" */
	__u64 ps_per_byte;	/* picoseconds a byte costs: 8e12 / bits per second */
	__u64 burst_ns;		/* how far ahead of now tat_ns may run */
};

struct ns_track {
	__u32 splice_id;	/* whose: 0 or another id = no check */
	__u8 wscale[2];		/* shift of the windows side d advertises (RFC 7323) */
	__u16 pad;
	__u32 snd_max[2];	/* highest sequence number sent, + 1 (data, SYN, FIN) */
	__u32 ack_max[2];	/* highest acknowledgment number sent */
	__u32 edge[2];		/* right edge of the window side d advertised:
				 * the highest ack + (window << wscale) */
	__u32 max_win[2];	/* largest window side d advertised, scaled */
};

/* Splice modes and states, as stored in ns_splice. */
enum ns_mode { NS_MODE_PASSIVE = 0, NS_MODE_PURE = 1 };

enum ns_state {
	NS_ST_WAITING = 0,	/* no side has connected */
	NS_ST_HALF,		/* one side connected, waiting for the other */
	NS_ST_ESTABLISHED,	/* both entries installed */
	NS_ST_CLOSING,		/* FIN seen in one direction */
	NS_ST_CLOSED,		/* FIN both ways, or RST: entries kept for the grace time */
};

#define NS_STATE_NAMES { "waiting", "half-open", "established", "closing", "closed" }

/* SYN option presence bits in ns_syn.opts. */
#define NS_SYN_MSS	(1U << 0)
#define NS_SYN_WSCALE	(1U << 1)
#define NS_SYN_SACK	(1U << 2)
#define NS_SYN_TS	(1U << 3)
#define NS_SYN_ECN	(1U << 4)	/* ECE and CWR set: ECN setup (RFC 3168 6.1.1) */

/* What the relay keeps of one side's SYN to build the partner's SYN-ACK. */
struct ns_syn {
	__u32 isn;
	__u32 ts_val;
	__u16 window;		/* unscaled window field of the SYN */
	__u16 mss;
	__u8 wscale;
	__u8 opts;		/* NS_SYN_* */
	__u16 pad;
};

/* One end of a splice as the relay sees it. */
struct ns_peer {
	__u32 addr[4];
	__be16 port;
	__u16 pad;
};

/*
 * One splice as the daemon knows it: kept in a pinned hash keyed by id so
 * that a restarted daemon finds every live splice again. Written only by the
 * daemon. Times are CLOCK_MONOTONIC nanoseconds.
 */
struct ns_splice {
	__u32 id;
	__u8 proto;
	__u8 family;
	__u8 mode;		/* enum ns_mode */
	__u8 state;		/* enum ns_state */
	__be16 port[2];		/* relay port of side A, side B (pure: A's source port) */
	__u8 allow_any[2];
	__u8 seen;		/* bit per side: its SYN / token arrived */
	__u8 closed_by_rst;
	__u8 pub;		/* side B is a public port's client: port[1] is
				 * that public port, not a relay port */
	__u8 pad;
	__u32 allow[2][4];	/* allowed source address per side */
	__u32 relay[4];		/* relay address the splice lives on */
	struct ns_peer peer[2];
	struct ns_syn syn[2];
	__u8 token[NS_TOKEN_BYTES];
	__u64 created_ns;
	__u64 deadline_ns;	/* half-open deadline */
	__u64 closed_ns;	/* when it reached NS_ST_CLOSED */
	__u64 session;		/* broker session it serves, 0 for `splice add` */
};

#endif /* NATSPLICE_ABI_H */
