// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Splice life cycle in the relay daemon: allocate ports, pair the two sides'
 * SYNs (or UDP tokens) punted by the BPF programs, install both table entries
 * and only then answer, and collect half-open, closed and idle splices.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "relay.h"
#include "log.h"
#include "pair.h"
#include "pkt.h"
#include "bytes.h"
#include "util.h"

#define NS_SEC 1000000000ULL

static const char *const state_names[] = NS_STATE_NAMES;

struct relay_splice *relay_splice_find(struct relay *r, __u32 id)
{
	struct relay_splice *sp;

	for (sp = r->by_id[NS_SPLICE_SLOT(id)]; sp; sp = sp->id_next)
		if (sp->s.id == id)
			return sp;
	return NULL;
}

/*
 * Relay ports. A port is held (by_port) by the one splice that waits for a
 * SYN or token on it; port_refs counts every live splice that uses it. An
 * established splice's packets match its table entries by the whole 5-tuple,
 * so it lets go of its ports at once and new splices reuse them while it
 * lives. Userspace UDP splices keep theirs: their sockets own them.
 */
static bool ports_shared(const struct relay *r, const struct relay_splice *sp)
{
	return sp->s.proto == IPPROTO_TCP || !r->dp->udp_keeps_ports;
}

/* by_port[p] and the free set (port_alloc) change together. */
static void port_hold(struct relay *r, __u16 p, struct relay_splice *sp)
{
	r->by_port[p] = sp;
	relay_portset_take(&r->ports, p);
}

static void port_drop(struct relay *r, __u16 p)
{
	r->by_port[p] = NULL;
	relay_portset_give(&r->ports, p);
}

/* A public port's client (side B of sp->s.pub) is not on a relay port: the
 * public port is its own (relay_public.c). */
static bool relay_side(const struct relay_splice *sp, int side)
{
	return sp->s.port[side] && !(sp->s.pub && side == 1);
}

static void port_use(struct relay *r, struct relay_splice *sp, int side)
{
	__u16 p = ntohs(sp->s.port[side]);

	if (!relay_side(sp, side))
		return;
	r->port_refs[p]++;
	if (!r->by_port[p] && (sp->s.state < NS_ST_ESTABLISHED || !ports_shared(r, sp)))
		port_hold(r, p, sp);
}

static void port_unuse(struct relay *r, struct relay_splice *sp, int side)
{
	__u16 p = ntohs(sp->s.port[side]);

	if (!relay_side(sp, side))
		return;
	r->port_refs[p]--;
	if (r->by_port[p] == sp)
		port_drop(r, p);
	r->dp->port_release(r, sp, side, r->port_refs[p] > 0 && relay_port_own(r, p));
}

/* Established: its ports are free for new splices. */
static void ports_release(struct relay *r, struct relay_splice *sp)
{
	int side;

	for (side = 0; side < 2 && ports_shared(r, sp); side++)
		if (relay_side(sp, side) && r->by_port[ntohs(sp->s.port[side])] == sp)
			port_drop(r, ntohs(sp->s.port[side]));
}

static void link_splice(struct relay *r, struct relay_splice *sp)
{
	struct relay_splice **b = &r->by_id[NS_SPLICE_SLOT(sp->s.id)];
	int side;

	sp->id_next = *b;
	*b = sp;
	sp->next = r->head;
	if (r->head)
		r->head->prev = sp;
	r->head = sp;
	r->nsplices++;
	for (side = 0; side < 2; side++)
		port_use(r, sp, side);
}

static void unlink_splice(struct relay *r, struct relay_splice *sp)
{
	struct relay_splice **pp = &r->by_id[NS_SPLICE_SLOT(sp->s.id)];
	int side;

	while (*pp && *pp != sp)
		pp = &(*pp)->id_next;
	if (*pp)
		*pp = sp->id_next;
	if (sp->prev)
		sp->prev->next = sp->next;
	else
		r->head = sp->next;
	if (sp->next)
		sp->next->prev = sp->prev;
	r->nsplices--;
	for (side = 0; side < 2; side++)
		port_unuse(r, sp, side);
}

static struct relay_splice *splice_new(void)
{
	struct relay_splice *sp = calloc(1, sizeof(*sp));
	int i;

	if (!sp)
		return NULL;
	sp->prove_side = sp->cand_side = -1;
	for (i = 0; i < 2; i++) {
		sp->lw[i].fd = sp->cw[i].fd = -1;
		ns_pipe_init(&sp->pipe[i]);
	}
	return sp;
}

/*
 * A free relay port of the range, at random (relay_ports.c: a sequence
 * would tell an off-path attacker the next splice's ports): 0, -EADDRINUSE
 * when every port is held, -EIO without random bytes.
 */
static int port_alloc(struct relay *r, __u16 *port)
{
	__u32 rnd;

	if (!r->ports.nfree)
		return -EADDRINUSE;
	if (ns_random_bytes(&rnd, sizeof(rnd)))
		return -EIO;
	*port = relay_portset_pick(&r->ports, rnd);
	return 0;
}

void relay_splice_save(struct relay *r, struct relay_splice *sp)
{
	int err = r->dp->save(r, sp);

	if (err)
		log_warn("splice %u: save: %s", sp->s.id, strerror(-err));
}

static void ports_exhausted(struct relay *r, int err, char *msg, size_t msglen)
{
	if (err == -EADDRINUSE)
		snprintf(msg, msglen, "relay port range %u-%u exhausted", r->cfg.port_lo,
			 r->cfg.port_hi);
	else
		snprintf(msg, msglen, "no random bytes for a relay port");
}

/* A new splice, if the table has room for it. */
static int splice_room(struct relay *r, struct relay_splice **sp, char *msg, size_t msglen)
{
	if (r->nsplices >= NS_MAX_SPLICES ||
	    (r->cfg.max_splices && r->nsplices >= r->cfg.max_splices)) {
		snprintf(msg, msglen, "splice table full (%u splices)", r->nsplices);
		return -ENOSPC;
	}
	*sp = splice_new();
	return *sp ? 0 : -ENOMEM;
}

/* The rest of a new splice sp (id, ports and allowances set): linked, its
 * ports opened, its record saved. 0, or -errno with sp freed. */
static int splice_start(struct relay *r, struct relay_splice *sp, __u32 timeout, char *msg,
			size_t msglen)
{
	int err;

	sp->s.id = relay_id_alloc(r->by_id, &r->next_id);
	sp->s.state = NS_ST_WAITING;
	memcpy(sp->s.relay, relay_addr(r, sp->s.family), sizeof(sp->s.relay));
	sp->s.created_ns = ns_now_ns();
	sp->s.deadline_ns = sp->s.created_ns + (__u64)timeout * NS_SEC;
	link_splice(r, sp);
	err = r->dp->splice_open(r, sp);
	if (err) {
		snprintf(msg, msglen, "cannot open relay ports: %s", strerror(-err));
		relay_splice_delete(r, sp, NULL);
		return err;
	}
	relay_splice_save(r, sp);
	relay_metrics_created(r);
	return 0;
}

int relay_splice_add(struct relay *r, const struct ctl_req *req, struct relay_splice **out,
		     char *msg, size_t msglen)
{
	struct relay_splice *sp;
	__u8 family = req->family;
	__u16 pa = 0, pb = 0;
	__u32 timeout = req->timeout_s ? req->timeout_s : r->cfg.half_open_s;
	int side, err;

	if (req->proto != IPPROTO_TCP && req->proto != IPPROTO_UDP) {
		snprintf(msg, msglen, "unknown protocol %u", req->proto);
		return -EINVAL;
	}
	if (req->mode == NS_MODE_PURE && req->proto != IPPROTO_TCP) {
		snprintf(msg, msglen, "pure splice is for TCP only");
		return -EINVAL;
	}
	if (!family) {
		for (side = 0; side < 2 && !family; side++)
			if (req->has_from[side])
				family = req->from[side][1] || req->from[side][2] ||
					 req->from[side][3] ? NS_AF_INET6 : NS_AF_INET;
		if (!family)
			family = r->cfg.has4 ? NS_AF_INET : NS_AF_INET6;
	}
	if (!relay_addr(r, family)) {
		snprintf(msg, msglen, "the relay has no %s address (--address)",
			 family == NS_AF_INET ? "IPv4" : "IPv6");
		return -EAFNOSUPPORT;
	}
	err = splice_room(r, &sp, msg, msglen);
	if (err)
		return err;
	err = port_alloc(r, &pa);
	if (!err && req->mode == NS_MODE_PASSIVE) {
		port_hold(r, pa, sp);	/* hold it while picking the second */
		err = port_alloc(r, &pb);
		port_drop(r, pa);
	}
	if (err) {
		ports_exhausted(r, err, msg, msglen);
		free(sp);
		return err;
	}
	sp->s.proto = req->proto;
	sp->s.family = family;
	sp->s.mode = req->mode;
	sp->s.port[0] = htons(pa);
	sp->s.port[1] = htons(pb);	/* pure: A's source port, once known */
	for (side = 0; side < 2; side++) {
		sp->s.allow_any[side] = !req->has_from[side];
		memcpy(sp->s.allow[side], req->from[side], sizeof(sp->s.allow[side]));
	}
	if (req->proto == IPPROTO_UDP && ns_random_bytes(sp->s.token, sizeof(sp->s.token))) {
		free(sp);
		return -EIO;
	}
	err = splice_start(r, sp, timeout, msg, msglen);
	if (err)
		return err;
	log_info("splice %u: %s %s, ports %u/%u, half-open deadline %us", sp->s.id,
		 req->proto == IPPROTO_TCP ? "tcp" : "udp",
		 req->mode == NS_MODE_PURE ? "pure" : "passive", pa, pb, timeout);
	*out = sp;
	return 0;
}

int relay_splice_add_public(struct relay *r, const struct relay_public *pub,
			    const struct ns_pkt_info *pi, struct relay_splice **out, char *msg,
			    size_t msglen)
{
	struct relay_splice *sp;
	__u16 pa;
	int err;

	err = splice_room(r, &sp, msg, msglen);
	if (err)
		return err;
	err = port_alloc(r, &pa);
	if (err) {
		ports_exhausted(r, err, msg, msglen);
		free(sp);
		return err;
	}
	sp->s.proto = IPPROTO_TCP;
	sp->s.family = pub->family;
	sp->s.mode = NS_MODE_PASSIVE;
	sp->s.pub = 1;
	sp->s.port[0] = htons(pa);
	sp->s.port[1] = htons(pub->port);
	memcpy(sp->s.allow[0], pub->from, sizeof(sp->s.allow[0]));
	sp->s.allow_any[1] = 1;
	/* known before its SYN is recorded: relay_public.c files it by these */
	memcpy(sp->s.peer[1].addr, pi->saddr, sizeof(sp->s.peer[1].addr));
	sp->s.peer[1].port = pi->sport;
	err = splice_start(r, sp, pub->timeout_s, msg, msglen);
	if (err)
		return err;
	if (ns_log_get_level() >= NS_LOG_INFO) {
		char a[NS_ADDRSTRLEN];

		ns_addr_str(sp->s.family, pi->saddr, a, sizeof(a));
		log_info("splice %u: public port %u, client %s%s%s:%u, provider's port %u, "
			 "deadline %us", sp->s.id, pub->port, sp->s.family == NS_AF_INET6 ? "[" : "",
			 a, sp->s.family == NS_AF_INET6 ? "]" : "", ntohs(pi->sport), pa,
			 pub->timeout_s);
	}
	*out = sp;
	return 0;
}

static bool proves_first(const struct relay *r, const struct relay_splice *sp);
static void prove_start(struct relay *r, struct relay_splice *sp, int first);

struct relay_splice *relay_splice_adopt(struct relay *r, const struct ns_splice *s)
{
	struct relay_splice *sp = splice_new();

	if (!sp)
		return NULL;
	sp->s = *s;
	if (r->by_id[NS_SPLICE_SLOT(s->id)])
		log_warn("splice %u shares its counters slot with splice %u: their counters mix",
			 s->id, r->by_id[NS_SPLICE_SLOT(s->id)]->s.id);
	link_splice(r, sp);
	if (s->id >= r->next_id)
		r->next_id = s->id + 1;
	if (s->pub && s->state < NS_ST_ESTABLISHED) {
		/* Its public port died with the daemon before (the broker
		 * opens it again): the next GC round resets this client. */
		sp->s.deadline_ns = 0;
		return sp;
	}
	if (s->state == NS_ST_HALF && s->seen == 3 && proves_first(r, sp)) {
		/* The daemon before this one was waiting for a side's proof;
		 * which side and its other candidates died with it. Side A
		 * is answered (again: the same SYN-ACK) and must prove itself;
		 * B, answered already or not, gets its answer after. */
		log_info("splice %u: paired, not established: waiting for side A's proof again",
			 s->id);
		prove_start(r, sp, 0);
	}
	return sp;
}

/*
 * With the module shim the programs pair passive TCP splices themselves and
 * write the result into the splice store: take it over (peers, SYNs, state;
 * a deadline of 0 means their install failed). Called before the daemon
 * reads or changes a splice that is not established yet.
 */
void relay_splice_sync(struct relay *r, struct relay_splice *sp)
{
	struct ns_splice k = { .id = sp->s.id };

	if (!r->kmod || sp->s.state >= NS_ST_ESTABLISHED || sp->s.proto != IPPROTO_TCP ||
	    sp->s.mode != NS_MODE_PASSIVE || r->dp->refresh(r, &k))
		return;
	if (k.seen == sp->s.seen && k.state == sp->s.state && k.deadline_ns == sp->s.deadline_ns)
		return;
	memcpy(sp->s.peer, k.peer, sizeof(sp->s.peer));
	memcpy(sp->s.syn, k.syn, sizeof(sp->s.syn));
	sp->s.seen = k.seen;
	sp->s.state = k.state;
	sp->s.deadline_ns = k.deadline_ns;
	if (k.state == NS_ST_ESTABLISHED) {
		ports_release(r, sp);
		relay_metrics_established(r, sp);
		log_info("splice %u: established (kernel handshake)", sp->s.id);
	}
	else if (k.state == NS_ST_HALF && k.seen != 3)
		log_info("splice %u: side %c connected, waiting for side %c", sp->s.id,
			 k.seen == 1 ? 'A' : 'B', k.seen == 1 ? 'B' : 'A');
}

void relay_splice_delete(struct relay *r, struct relay_splice *sp, const char *why)
{
	struct ctl_splice info;

	relay_splice_sync(r, sp);
	if (why || sp->s.session)
		relay_splice_info(r, sp, &info);
	if (sp->s.session)
		relay_broker_splice_done(r, sp, &info, why ? why : "deleted");
	if (why) {
		relay_metrics_done(r, sp, &info, why);
		log_info("splice %u: %s: %llu packets, %llu bytes (A->B %llu, B->A %llu)",
			 sp->s.id, why,
			 (unsigned long long)(info.packets[0] + info.packets[1]),
			 (unsigned long long)(info.bytes[0] + info.bytes[1]),
			 (unsigned long long)info.bytes[0], (unsigned long long)info.bytes[1]);
	}
	relay_public_unhold(r, sp);
	r->dp->splice_close(r, sp);
	unlink_splice(r, sp);
	free(sp);
}

void relay_splice_info(struct relay *r, const struct relay_splice *sp, struct ctl_splice *out)
{
	__u64 now = ns_now_ns(), last = 0;
	struct relay_entries e;

	memset(out, 0, sizeof(*out));
	out->s = sp->s;
	out->age_ns = now - sp->s.created_ns;
	if (sp->s.state >= NS_ST_ESTABLISHED) {
		r->dp->counters(r, sp, out->packets, out->bytes);
		if (!r->dp->entries(r, sp, &e))
			last = e.last_seen_ns;
	}
	if (last && sp->s.state >= NS_ST_ESTABLISHED)
		out->idle_ns = now > last ? now - last : 0;
}

/*
 * A peer may come back from the addresses and ports of a connection that is
 * over (a NAT reuses its mapping; the programs hand such a SYN to the splice
 * expecting it, not to the old one): the old splice gives its entries up.
 * A splice whose connection still runs keeps them, and the install fails.
 */
static void reclaim_keys(struct relay *r, struct relay_splice *sp)
{
	struct relay_entries e;
	struct relay_splice *old;
	__u32 id;
	int dir;

	for (dir = 0; dir < 2; dir++) {
		id = r->dp->key_owner(r, sp, dir);
		if (!id || id == sp->s.id)
			continue;
		old = relay_splice_find(r, id);
		if (!old || r->dp->entries(r, old, &e) ||
		    !((e.flags[0] | e.flags[1]) & (NS_F_FIN | NS_F_RST)))
			continue;
		log_info("splice %u: side %c reuses the addresses of splice %u, which is over",
			 sp->s.id, 'A' + dir, id);
		relay_splice_delete(r, old, "closed");
	}
}

static void peer_str(const struct relay_splice *sp, const struct ns_peer *p, char *buf,
		     size_t len);

/*
 * Entries first, then the answers (DESIGN §2): to side `first` first, or,
 * when that side was answered already (it proved itself), to the other
 * side only.
 */
static void splice_up(struct relay *r, struct relay_splice *sp, int first, bool answered)
{
	int i, side, err;

	reclaim_keys(r, sp);
	err = r->dp->install(r, sp);
	if (err) {
		log_warn("splice %u: install: %s", sp->s.id, strerror(-err));
		if (sp->s.proto == IPPROTO_TCP)
			for (side = 0; side < 2; side++)
				r->dp->reset(r, sp, side);
		relay_splice_delete(r, sp, "failed");
		return;
	}
	sp->s.state = NS_ST_ESTABLISHED;
	ports_release(r, sp);
	relay_public_unhold(r, sp);
	relay_metrics_established(r, sp);
	relay_splice_save(r, sp);
	for (i = answered; i < 2; i++) {
		side = i ? !first : first;
		err = r->dp->answer(r, sp, side);
		if (err)
			log_warn("splice %u: answer side %c: %s", sp->s.id, 'A' + side,
				 strerror(-err));
	}
	if (ns_log_get_level() >= NS_LOG_INFO) {
		char pa[NS_ADDRSTRLEN + 8], pb[NS_ADDRSTRLEN + 8];

		peer_str(sp, &sp->s.peer[0], pa, sizeof(pa));
		peer_str(sp, &sp->s.peer[1], pb, sizeof(pb));
		log_info("splice %u: established (A %s, B %s)", sp->s.id, pa, pb);
	}
}

/*
 * Proving (issue 13). Each SYN-ACK commits its receiver to the partner's
 * ISN for good: the relay never rewrites sequence numbers. Answered at once,
 * a SYN spoofed from a side's (allowed) address, or a stranger's from
 * behind the same NAT, that came before the side's own would pair with the
 * partner, and the real side, coming later, would find the splice taken.
 * So the side that connected first is answered first, and only: the other
 * side's answer waits until one of the first side's SYNs proves itself by
 * the third segment of its handshake (ns_pair_is_proof: from its source,
 * acknowledging the partner's ISN, which only who received our SYN-ACK
 * knows; the ports stay open for it, the programs punt it: NS_PUNT_PROOF).
 * Until then, further SYNs for the first side are candidates of their own
 * (RELAY_CANDIDATES, the oldest making room), each answered: an off-path
 * spoof never proves itself and the real side does, whichever came first. The side that connected
 * first is the one to prove itself because a SYN sent ahead of both sides,
 * to a port learnt or guessed, comes first. What this does not cover: a
 * spoofed SYN for the side that has not connected yet, arriving between the
 * two real ones (the first real side is committed to it), and a stranger
 * that really owns the side's address (it proves itself); there the agents'
 * end-to-end proof never completes and the subscriber asks the broker again
 * (agent_tunnel_retry): a new splice, on ports picked at random
 * (relay_ports.c), which an off-path attacker has to learn again.
 * The cost: one round trip to the first side before the second is
 * answered. The kernel shim (r->kmod) pairs in the kernel, at once.
 */
static bool proves_first(const struct relay *r, const struct relay_splice *sp)
{
	return r->dp->answers_syns && !r->kmod && sp->s.proto == IPPROTO_TCP &&
	       sp->s.mode == NS_MODE_PASSIVE;
}

/* Answer candidate i of the proving side. */
static void answer_candidate(struct relay *r, struct relay_splice *sp, int i)
{
	int side = sp->prove_side, err;
	struct ns_peer peer = sp->s.peer[side];
	struct ns_syn syn = sp->s.syn[side];

	sp->s.peer[side] = sp->cand[i].peer;
	sp->s.syn[side] = sp->cand[i].syn;
	err = r->dp->answer(r, sp, side);
	sp->s.peer[side] = peer;
	sp->s.syn[side] = syn;
	if (err)
		log_warn("splice %u: answer side %c: %s", sp->s.id, 'A' + side, strerror(-err));
}

static void prove_start(struct relay *r, struct relay_splice *sp, int first)
{
	int err, i;

	sp->prove_side = first;
	if (sp->cand_side != first || !sp->ncand) {
		sp->ncand = 1;
		sp->cand_next = 0;
		sp->cand[0].peer = sp->s.peer[first];
		sp->cand[0].syn = sp->s.syn[first];
	}
	sp->cand_side = first;
	/* its port punts its ACK from now on */
	err = r->dp->port_wait(r, sp, first);
	if (err) {
		log_warn("splice %u: cannot wait for side %c's proof (%s): answering both",
			 sp->s.id, 'A' + first, strerror(-err));
		sp->prove_side = -1;
		splice_up(r, sp, first, false);
		return;
	}
	for (i = 0; i < sp->ncand; i++)
		answer_candidate(r, sp, i);
	relay_splice_save(r, sp);
	log_info("splice %u: side %c answered (%d candidate%s); side %c's answer waits for its "
		 "proof", sp->s.id, 'A' + first, sp->ncand, sp->ncand > 1 ? "s" : "",
		 'B' - first);
}

/* Both sides are here: answer them, or the first and wait for its proof. */
void relay_splice_established(struct relay *r, struct relay_splice *sp, int first)
{
	if (proves_first(r, sp))
		prove_start(r, sp, first);
	else
		splice_up(r, sp, first, false);
}

static void peer_str(const struct relay_splice *sp, const struct ns_peer *p, char *buf,
		     size_t len)
{
	char a[NS_ADDRSTRLEN];

	ns_addr_str(sp->s.family, p->addr, a, sizeof(a));
	snprintf(buf, len, sp->s.family == NS_AF_INET6 ? "[%s]:%u" : "%s:%u", a, ntohs(p->port));
}

/*
 * Another SYN (source or ISN) for side `side`, which has not proved itself:
 * a candidate of its own; its index. When all are used the oldest makes
 * room (refusing instead would let a few forged SYNs keep the real one out
 * for good; this way a flood must outpace the real side's round trip, to a
 * port it had to learn).
 */
static int cand_add(struct relay *r, struct relay_splice *sp, int side,
		    const struct ns_pkt_info *pi, const struct ns_syn *syn)
{
	char src[NS_ADDRSTRLEN + 8];
	int i;

	r->syn_second_taken++;
	if (sp->ncand < RELAY_CANDIDATES)
		i = sp->ncand++;
	else
		i = sp->cand_next++ % RELAY_CANDIDATES;
	memset(&sp->cand[i].peer, 0, sizeof(sp->cand[i].peer));
	memcpy(sp->cand[i].peer.addr, pi->saddr, sizeof(sp->cand[i].peer.addr));
	sp->cand[i].peer.port = pi->sport;
	sp->cand[i].syn = *syn;
	peer_str(sp, &sp->cand[i].peer, src, sizeof(src));
	log_info("splice %u: SYN from a second source (%s) for side %c, which has not proved "
		 "itself: candidate %d", sp->s.id, src, 'A' + side, i + 1);
	return i;
}

/* Before the pair, a second SYN for the side that is here: both are kept
 * (the one recorded first), for prove_start to answer each. */
static void cand_before_pair(struct relay *r, struct relay_splice *sp, int side,
			     const struct ns_pkt_info *pi, const struct ns_syn *syn)
{
	int i;

	if (sp->cand_side != side || !sp->ncand) {
		sp->cand_side = side;
		sp->ncand = 1;
		sp->cand_next = 0;
		sp->cand[0].peer = sp->s.peer[side];
		sp->cand[0].syn = sp->s.syn[side];
	}
	for (i = 0; i < sp->ncand; i++)
		if (ns_pair_same_syn(&sp->cand[i].peer, &sp->cand[i].syn, pi, syn))
			return;
	cand_add(r, sp, side, pi, syn);
}

/* A SYN for a splice that is proving: a retransmission, a new candidate for
 * the proving side, or a second source for the waiting side. */
static void prove_syn(struct relay *r, struct relay_splice *sp, int side,
		      const struct ns_pkt_info *pi, const struct ns_syn *syn)
{
	struct ns_peer peer = { .port = pi->sport };
	char src[NS_ADDRSTRLEN + 8];
	int i;

	if (side != sp->prove_side) {
		memcpy(peer.addr, pi->saddr, sizeof(peer.addr));
		peer_str(sp, &peer, src, sizeof(src));
		if (ns_pair_same_syn(&sp->s.peer[side], &sp->s.syn[side], pi, syn)) {
			/* Waiting for its answer: the proving side's ACK may
			 * be what was lost; a SYN-ACK again asks for another
			 * (RFC 9293 3.10.7.4: an ACK for a duplicate). */
			for (i = 0; i < sp->ncand; i++)
				answer_candidate(r, sp, i);
			return;
		}
		r->syn_second_refused++;
		log_warn("splice %u: SYN from %s for side %c refused: side %c was answered with "
			 "the one this side sent first", sp->s.id, src, 'A' + side,
			 'A' + sp->prove_side);
		return;
	}
	for (i = 0; i < sp->ncand; i++)
		if (ns_pair_same_syn(&sp->cand[i].peer, &sp->cand[i].syn, pi, syn)) {
			answer_candidate(r, sp, i);	/* idempotent */
			return;
		}
	answer_candidate(r, sp, cand_add(r, sp, side, pi, syn));
}

/* A segment at the proving side's port: the proof of one candidate? */
static void prove_ack(struct relay *r, struct relay_splice *sp, int side,
		      const struct ns_pkt_info *pi, const __u8 *pkt, size_t len)
{
	int held = !sp->prove_side, i;
	__u32 ack;

	if (side != sp->prove_side || len < pi->l4_off + 12u)
		return;
	ack = ns_get32(pkt + pi->l4_off + 8);
	for (i = 0; i < sp->ncand; i++)
		if (ns_pair_is_proof(pi, ack, &sp->cand[i].peer, &sp->cand[i].syn,
				     &sp->s.syn[held]))
			break;
	if (i == sp->ncand) {
		r->proofs_bad++;
		log_debug("splice %u: a segment at side %c's port proves nothing", sp->s.id,
			  'A' + side);
		return;
	}
	sp->s.peer[side] = sp->cand[i].peer;
	sp->s.syn[side] = sp->cand[i].syn;
	log_info("splice %u: side %c proved itself (candidate %d of %d)", sp->s.id, 'A' + side,
		 i + 1, sp->ncand);
	sp->prove_side = -1;
	sp->ncand = 0;
	splice_up(r, sp, side, true);
}

/* A SYN of side `side`: a new one, a retransmission, or the pair's last. */
static void on_syn(struct relay *r, struct relay_splice *sp, int side,
		   const struct ns_pkt_info *pi, const struct ns_syn *syn)
{
	bool again = sp->s.seen & (1 << side);
	int rc;

	if (sp->s.mode == NS_MODE_PURE && side == 1 && pi->sport != sp->s.port[0]) {
		log_warn("splice %u: pure splice side B must connect from port %u, not %u",
			 sp->s.id, ntohs(sp->s.port[0]), ntohs(pi->sport));
		return;
	}
	if (sp->prove_side >= 0 && sp->s.state < NS_ST_ESTABLISHED) {
		prove_syn(r, sp, side, pi, syn);
		return;
	}
	if (proves_first(r, sp) && sp->s.state < NS_ST_ESTABLISHED &&
	    sp->s.seen == 1 << side &&
	    !ns_pair_same_syn(&sp->s.peer[side], &sp->s.syn[side], pi, syn))
		cand_before_pair(r, sp, side, pi, syn);
	rc = ns_pair_syn(&sp->s, pi, syn, side);
	if (rc == NS_PAIR_AGAIN) {
		/* Idempotent: the same SYN gets the same SYN-ACK again. */
		r->dp->answer(r, sp, side);
		return;
	}
	if (rc < 0 || rc == NS_PAIR_DUP)
		return;
	if (again && !proves_first(r, sp))
		log_info("splice %u: side %c reconnected from a new port", sp->s.id, 'A' + side);
	if (sp->s.mode == NS_MODE_PURE && side == 0) {
		/* Pure splice: B connects from our port y to A's source port x,
		 * so that forwarding keeps both ports (DESIGN §2). */
		__u16 x = ntohs(pi->sport);
		struct relay_splice *owner = r->by_port[x];

		if (owner && owner != sp) {
			log_warn("splice %u: A's source port %u is a relay port another splice "
				 "is waiting on; refusing", sp->s.id, x);
			r->dp->reset(r, sp, 0);
			relay_splice_delete(r, sp, "refused");
			return;
		}
		if (sp->s.port[1] != pi->sport) {
			port_unuse(r, sp, 1);
			sp->s.port[1] = pi->sport;
			port_use(r, sp, 1);
		}
		r->dp->port_wait(r, sp, 1);
		relay_broker_splice_peer(r, sp);
	}
	if (rc == NS_PAIR_DONE) {
		relay_splice_established(r, sp, ns_pair_first(side));
		return;
	}
	relay_splice_save(r, sp);
	log_info("splice %u: side %c connected, waiting for side %c", sp->s.id, 'A' + side,
		 'B' - side);
}

static void on_udp(struct relay *r, struct relay_splice *sp, int side,
		   const struct ns_pkt_info *pi, const __u8 *payload, size_t len)
{
	if (len != NS_TOKEN_BYTES || memcmp(payload, sp->s.token, NS_TOKEN_BYTES)) {
		log_debug("splice %u: datagram without the token from side %c dropped",
			  sp->s.id, 'A' + side);
		return;
	}
	if (sp->s.state >= NS_ST_ESTABLISHED) {
		r->dp->answer(r, sp, side);
		return;
	}
	memcpy(sp->s.peer[side].addr, pi->saddr, sizeof(sp->s.peer[side].addr));
	sp->s.peer[side].port = pi->sport;
	sp->s.seen |= 1 << side;
	if (sp->s.seen == 3) {
		relay_splice_established(r, sp, ns_pair_first(side));
		return;
	}
	sp->s.state = NS_ST_HALF;
	relay_splice_save(r, sp);
}

void relay_splice_punt(struct relay *r, struct relay_splice *sp, int side,
		       const struct ns_punt *p, const struct ns_pkt_info *pi, size_t len)
{
	struct ns_syn syn;
	int err;

	if (sp->s.proto == IPPROTO_UDP) {
		on_udp(r, sp, side, pi, p->data + pi->payload_off,
		       len > pi->payload_off ? len - pi->payload_off : 0);
		return;
	}
	if (p->reason == NS_PUNT_PROOF) {
		if (sp->prove_side >= 0 && sp->s.state < NS_ST_ESTABLISHED)
			prove_ack(r, sp, side, pi, p->data, len);
		return;
	}
	/* (a SYN the kernel handshake refused: what it recorded so far first) */
	relay_splice_sync(r, sp);
	err = ns_syn_parse(p->data, len, &syn);
	if (err) {
		log_warn("splice %u: SYN from side %c refused: %s", sp->s.id, 'A' + side,
			 err == -EPERM ? "TCP-MD5/AO cannot be spliced" : "malformed");
		return;
	}
	on_syn(r, sp, side, pi, &syn);
}

void relay_on_punt(struct relay *r, const struct ns_punt *p)
{
	size_t len = p->len < NS_PUNT_BYTES ? p->len : NS_PUNT_BYTES;
	struct relay_splice *sp = NULL;
	struct ns_pkt_info pi;

	if (!(p->splice_id & NS_PUBLIC_BIT)) {
		sp = relay_splice_find(r, p->splice_id);
		if (!sp) {
			log_debug("punt for unknown splice %u", p->splice_id);
			return;
		}
	}
	if (ns_pkt_parse(p->data, len, &pi)) {
		log_debug("unparsable punt (splice %u)", p->splice_id);
		return;
	}
	if (sp)
		relay_splice_punt(r, sp, p->side & 1, p, &pi, len);
	else
		relay_public_punt(r, p, &pi, len);
}

/* Table flags -> splice state; returns true when the state changed. */
static bool update_state(struct relay *r, struct relay_splice *sp, __u64 now, __u64 *last)
{
	struct relay_entries e;
	__u8 old = sp->s.state;

	if (r->dp->entries(r, sp, &e))
		return false;
	*last = e.last_seen_ns;
	if ((e.flags[0] | e.flags[1]) & NS_F_RST) {
		sp->s.state = NS_ST_CLOSED;
		sp->s.closed_by_rst = 1;
	} else if ((e.flags[0] & e.flags[1]) & NS_F_FIN) {
		sp->s.state = NS_ST_CLOSED;
	} else if ((e.flags[0] | e.flags[1]) & NS_F_FIN) {
		sp->s.state = NS_ST_CLOSING;
	}
	if (sp->s.state == NS_ST_CLOSED && old != NS_ST_CLOSED)
		sp->s.closed_ns = now;
	return sp->s.state != old;
}

static void gc_one(struct relay *r, struct relay_splice *sp, __u64 now)
{
	__u64 last = 0, grace, idle;
	int side;

	relay_splice_sync(r, sp);
	if (sp->s.state < NS_ST_ESTABLISHED) {
		/* Paired in the kernel, entries being installed: next round. */
		if (r->kmod && sp->s.seen == 3 && sp->s.deadline_ns)
			return;
		if (now < sp->s.deadline_ns)
			return;
		if (sp->s.proto == IPPROTO_TCP)
			for (side = 0; side < 2; side++)
				if (sp->s.seen & (1 << side))
					r->dp->reset(r, sp, side);
		relay_splice_delete(r, sp, "half-open deadline passed");
		return;
	}
	/* Two map lookups a splice (BPF): once a second is enough for FINs
	 * and idleness, and nothing changes a closed splice. */
	if (sp->s.state == NS_ST_CLOSED || (sp->s.id + r->gc_round) % RELAY_GC_SPREAD)
		last = 0;
	else if (sp->s.proto == IPPROTO_TCP && update_state(r, sp, now, &last))
		relay_splice_save(r, sp);
	else if (sp->s.proto == IPPROTO_UDP)
		update_state(r, sp, now, &last);
	if (sp->s.state == NS_ST_CLOSED) {
		grace = (__u64)(sp->s.closed_by_rst ? r->cfg.rst_grace_s :
						      r->cfg.close_grace_s) * NS_SEC;
		if (now - sp->s.closed_ns >= grace)
			relay_splice_delete(r, sp, sp->s.closed_by_rst ? "reset" : "closed");
		return;
	}
	idle = (__u64)(sp->s.proto == IPPROTO_TCP ? r->cfg.idle_tcp_s : r->cfg.idle_udp_s) *
	       NS_SEC;
	if (last && now > last && now - last > idle)
		relay_splice_delete(r, sp, "idle");
}

void relay_gc(struct relay *r)
{
	struct relay_splice *sp, *next;
	__u64 now = ns_now_ns();

	r->gc_round++;
	for (sp = r->head; sp; sp = next) {
		next = sp->next;
		gc_one(r, sp, now);
	}
}

const char *relay_state_name(__u8 state)
{
	return state < sizeof(state_names) / sizeof(state_names[0]) ? state_names[state] : "?";
}
