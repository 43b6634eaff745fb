// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lib/pair.c: pairing the two SYNs of a splice, as the daemon and the module do. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "pair.h"

#define RELAY	0xcb007114	/* 203.0.113.20 */

static struct ns_splice splice(void)
{
	struct ns_splice s = {
		.id = 7,
		.proto = IPPROTO_TCP,
		.family = NS_AF_INET,
		.mode = NS_MODE_PASSIVE,
		.state = NS_ST_WAITING,
		.port = { htons(20000), htons(20001) },
		.relay = { htonl(RELAY) },
	};

	return s;
}

/* A SYN of side `side` from 198.51.100.X:sport, ISN isn. */
static void syn_of(int side, __u32 x, __u16 sport, __u32 isn, struct ns_pkt_info *pi,
		   struct ns_syn *syn)
{
	memset(pi, 0, sizeof(*pi));
	memset(syn, 0, sizeof(*syn));
	pi->family = NS_AF_INET;
	pi->proto = IPPROTO_TCP;
	pi->tcp_flags = NS_TCP_SYN;
	pi->saddr[0] = htonl(0xc6336400 | x);
	pi->daddr[0] = htonl(RELAY);
	pi->sport = htons(sport);
	pi->dport = htons(20000 + side);
	syn->isn = isn;
	syn->mss = 1460;
}

static int pair(struct ns_splice *s, int side, __u32 x, __u16 sport, __u32 isn)
{
	struct ns_pkt_info pi;
	struct ns_syn syn;

	syn_of(side, x, sport, isn, &pi, &syn);
	return ns_pair_syn(s, &pi, &syn, side);
}

static void test_first_then_second(void **state)
{
	struct ns_splice s = splice();

	assert_int_equal(pair(&s, 1, 2, 4000, 111), NS_PAIR_HALF);
	assert_int_equal(s.seen, 2);
	assert_int_equal(s.state, NS_ST_HALF);
	assert_int_equal(s.syn[1].isn, 111);
	assert_int_equal(s.peer[1].port, htons(4000));
	assert_int_equal(pair(&s, 0, 1, 5000, 222), NS_PAIR_DONE);
	assert_int_equal(s.seen, 3);
	assert_int_equal(s.peer[0].addr[0], htonl(0xc6336401));
	/* B connected first: its SYN-ACK goes first. */
	assert_int_equal(ns_pair_first(0), 1);
}

static void test_retransmission(void **state)
{
	struct ns_splice s = splice();

	assert_int_equal(pair(&s, 0, 1, 5000, 222), NS_PAIR_HALF);
	assert_int_equal(pair(&s, 0, 1, 5000, 222), NS_PAIR_DUP);
	assert_int_equal(s.seen, 1);
}

static void test_reconnect_from_new_port(void **state)
{
	struct ns_splice s = splice();

	assert_int_equal(pair(&s, 0, 1, 5000, 222), NS_PAIR_HALF);
	assert_int_equal(pair(&s, 0, 1, 5001, 333), NS_PAIR_HALF);
	assert_int_equal(s.peer[0].port, htons(5001));
	assert_int_equal(s.syn[0].isn, 333);
}

static void test_paired_being_installed(void **state)
{
	struct ns_splice s = splice();

	pair(&s, 0, 1, 5000, 222);
	assert_int_equal(pair(&s, 1, 2, 4000, 111), NS_PAIR_DONE);
	/* Before the install finished (state still half-open). */
	assert_int_equal(pair(&s, 1, 2, 4000, 111), NS_PAIR_DUP);
	assert_int_equal(pair(&s, 0, 1, 5009, 999), NS_PAIR_DUP);
	assert_int_equal(s.peer[0].port, htons(5000));
}

static void test_established(void **state)
{
	struct ns_splice s = splice();

	pair(&s, 0, 1, 5000, 222);
	pair(&s, 1, 2, 4000, 111);
	s.state = NS_ST_ESTABLISHED;
	assert_int_equal(pair(&s, 0, 1, 5000, 222), NS_PAIR_AGAIN);
	assert_int_equal(pair(&s, 1, 2, 4000, 112), NS_PAIR_DUP);
	assert_int_equal(pair(&s, 1, 2, 4001, 111), NS_PAIR_DUP);
}

static void test_not_this_splice(void **state)
{
	struct ns_splice s = splice();
	struct ns_pkt_info pi;
	struct ns_syn syn;

	syn_of(0, 1, 5000, 222, &pi, &syn);
	pi.dport = htons(20001);		/* side B's port */
	assert_int_equal(ns_pair_syn(&s, &pi, &syn, 0), -EINVAL);
	syn_of(0, 1, 5000, 222, &pi, &syn);
	pi.daddr[0] = htonl(RELAY + 1);
	assert_int_equal(ns_pair_syn(&s, &pi, &syn, 0), -EINVAL);
	syn_of(0, 1, 5000, 222, &pi, &syn);
	pi.family = NS_AF_INET6;
	assert_int_equal(ns_pair_syn(&s, &pi, &syn, 0), -EINVAL);
	assert_int_equal(ns_pair_syn(&s, &pi, &syn, 2), -EINVAL);
	assert_int_equal(s.seen, 0);
}

/* The third segment of side A's handshake, from 198.51.100.X:sport. */
static void ack_of(__u32 x, __u16 sport, __u32 seq, __u8 flags, struct ns_pkt_info *pi)
{
	struct ns_syn unused;

	syn_of(0, x, sport, 0, pi, &unused);
	pi->tcp_flags = flags;
	pi->seq = seq;
}

/* Proving (relay_splice.c): A (a spoof and the real one) answered with B's
 * ISN; only the real A's ACK of it proves A. */
static void test_proof(void **state)
{
	struct ns_splice s = splice();
	struct ns_pkt_info pi, spi;
	struct ns_syn spoof, real;

	assert_int_equal(pair(&s, 0, 1, 5000, 222), NS_PAIR_HALF);	/* the spoof */
	assert_int_equal(pair(&s, 1, 2, 4000, 111), NS_PAIR_DONE);	/* B */
	syn_of(0, 1, 5000, 222, &spi, &spoof);
	syn_of(0, 1, 6000, 333, &pi, &real);				/* the real A */
	assert_true(ns_pair_same_syn(&s.peer[0], &s.syn[0], &spi, &spoof));
	assert_false(ns_pair_same_syn(&s.peer[0], &s.syn[0], &pi, &real));
	assert_false(ns_pair_same_syn(&s.peer[0], &s.syn[0], &spi, &real));	/* new ISN */
	s.peer[0].port = pi.sport;					/* candidate 2 */
	ack_of(1, 6000, 334, NS_TCP_ACK, &pi);
	assert_true(ns_pair_is_proof(&pi, 112, &s.peer[0], &real, &s.syn[1]));
	assert_true(ns_pair_is_proof(&pi, 112, &s.peer[0], &real, &s.syn[1]));
	/* not the partner's ISN + 1 (a guess), not ours + 1, wrong source */
	assert_false(ns_pair_is_proof(&pi, 111, &s.peer[0], &real, &s.syn[1]));
	assert_false(ns_pair_is_proof(&pi, 113, &s.peer[0], &real, &s.syn[1]));
	ack_of(1, 6000, 223, NS_TCP_ACK, &pi);
	assert_false(ns_pair_is_proof(&pi, 112, &s.peer[0], &real, &s.syn[1]));
	ack_of(1, 6001, 334, NS_TCP_ACK, &pi);
	assert_false(ns_pair_is_proof(&pi, 112, &s.peer[0], &real, &s.syn[1]));
	ack_of(3, 6000, 334, NS_TCP_ACK, &pi);
	assert_false(ns_pair_is_proof(&pi, 112, &s.peer[0], &real, &s.syn[1]));
	/* RST or SYN prove nothing; data with the ACK does */
	ack_of(1, 6000, 334, NS_TCP_ACK | NS_TCP_RST, &pi);
	assert_false(ns_pair_is_proof(&pi, 112, &s.peer[0], &real, &s.syn[1]));
	ack_of(1, 6000, 334, NS_TCP_ACK | NS_TCP_SYN, &pi);
	assert_false(ns_pair_is_proof(&pi, 112, &s.peer[0], &real, &s.syn[1]));
	ack_of(1, 6000, 334, NS_TCP_ACK | NS_TCP_PSH, &pi);
	assert_true(ns_pair_is_proof(&pi, 112, &s.peer[0], &real, &s.syn[1]));
	/* ISNs wrap */
	real.isn = 0xffffffff;
	s.syn[1].isn = 0xffffffff;
	ack_of(1, 6000, 0, NS_TCP_ACK, &pi);
	assert_true(ns_pair_is_proof(&pi, 0, &s.peer[0], &real, &s.syn[1]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_then_second),
		cmocka_unit_test(test_retransmission),
		cmocka_unit_test(test_reconnect_from_new_port),
		cmocka_unit_test(test_paired_being_installed),
		cmocka_unit_test(test_established),
		cmocka_unit_test(test_not_this_splice),
		cmocka_unit_test(test_proof),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
