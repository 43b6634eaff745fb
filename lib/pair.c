// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Pairing the two SYNs of a spliced TCP connection (lib/pair.h). */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include "pair.h"

#ifdef __KERNEL__
#include <linux/compiler.h>
#include <asm/barrier.h>
#define publish_barrier()	smp_wmb()
#define publish(x, v)		WRITE_ONCE(x, v)
#else
#define publish_barrier()	__atomic_thread_fence(__ATOMIC_RELEASE)
#define publish(x, v)		__atomic_store_n(&(x), v, __ATOMIC_RELAXED)
#endif

static int same_peer(const struct ns_peer *p, const struct ns_pkt_info *pi)
{
	return p->port == pi->sport && !memcmp(p->addr, pi->saddr, sizeof(p->addr));
}

int ns_pair_syn(struct ns_splice *s, const struct ns_pkt_info *pi, const struct ns_syn *syn,
		unsigned int side)
{
	__u8 bit = 1 << side;

	if (side > 1 || pi->family != s->family || pi->dport != s->port[side] ||
	    memcmp(pi->daddr, s->relay, sizeof(s->relay)))
		return -EINVAL;
	if (s->state >= NS_ST_ESTABLISHED)
		return same_peer(&s->peer[side], pi) && s->syn[side].isn == syn->isn ?
		       NS_PAIR_AGAIN : NS_PAIR_DUP;
	/* Paired (on another CPU), entries being installed: its SYN-ACKs are
	 * on their way. */
	if (s->seen == 3)
		return NS_PAIR_DUP;
	if ((s->seen & bit) && same_peer(&s->peer[side], pi) && s->syn[side].isn == syn->isn)
		return NS_PAIR_DUP;	/* retransmitted: the partner is still missing */
	memcpy(s->peer[side].addr, pi->saddr, sizeof(s->peer[side].addr));
	s->peer[side].port = pi->sport;
	s->syn[side] = *syn;
	publish_barrier();
	publish(s->seen, s->seen | bit);
	if (s->seen == 3)
		return NS_PAIR_DONE;
	publish(s->state, NS_ST_HALF);
	return NS_PAIR_HALF;
}

int ns_pair_same_syn(const struct ns_peer *peer, const struct ns_syn *rec,
		     const struct ns_pkt_info *pi, const struct ns_syn *syn)
{
	return same_peer(peer, pi) && rec->isn == syn->isn;
}

int ns_pair_is_proof(const struct ns_pkt_info *pi, __u32 ack, const struct ns_peer *peer,
		     const struct ns_syn *syn, const struct ns_syn *partner)
{
	return same_peer(peer, pi) &&
	       /* (0 for UDP) */
	       (pi->tcp_flags & (NS_TCP_SYN | NS_TCP_RST | NS_TCP_ACK)) == NS_TCP_ACK &&
	       ack == partner->isn + 1 && pi->seq == syn->isn + 1;
}
