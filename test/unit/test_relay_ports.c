// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The relay's free port set (relay/relay_ports.c): random picks, every port
 * reachable, exhaustion exact, ports given back pickable again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../relay/relay_ports.c"
#include "util.h"

#define LO 20000
#define HI 20999
#define N (HI - LO + 1)

/* The way relay_splice.c allocates: a random pick, then take it. */
static __u16 alloc(struct relay_portset *ps)
{
	__u32 rnd;
	__u16 port;

	assert_int_equal(ns_random_bytes(&rnd, sizeof(rnd)), 0);
	port = relay_portset_pick(ps, rnd);
	if (port)
		relay_portset_take(ps, port);
	return port;
}

static void test_all_used_then_exhausted(void **state)
{
	struct relay_portset ps = {};
	static unsigned char seen[65536];
	unsigned int i, in_seq = 0;
	__u16 port, prev = 0;

	memset(seen, 0, sizeof(seen));
	assert_int_equal(relay_portset_init(&ps, LO, HI), 0);
	for (i = 0; i < N; i++) {
		port = alloc(&ps);
		assert_true(port >= LO && port <= HI);
		assert_false(seen[port]);	/* never handed out twice */
		seen[port] = 1;
		in_seq += prev && port == prev + 1;
		prev = port;
	}
	/* Random, not the cursor walk it replaced: of 999 successive pairs,
	 * consecutive ones happen by chance about once. */
	assert_true(in_seq < 20);
	assert_int_equal(ps.nfree, 0);
	assert_int_equal(alloc(&ps), 0);	/* exhausted, exactly */
	assert_int_equal(relay_portset_pick(&ps, 12345), 0);
	/* One given back is the only one to pick. */
	relay_portset_give(&ps, LO + 77);
	assert_int_equal(alloc(&ps), LO + 77);
	assert_int_equal(alloc(&ps), 0);
	relay_portset_destroy(&ps);
	relay_portset_destroy(&ps);
}

static void test_not_sequential(void **state)
{
	struct relay_portset ps = {};
	__u16 a, b, c;
	int tries, sequential = 0;

	assert_int_equal(relay_portset_init(&ps, LO, HI), 0);
	for (tries = 0; tries < 50; tries++) {
		a = alloc(&ps);
		b = alloc(&ps);
		c = alloc(&ps);
		sequential += b == a + 1 && c == b + 1;
		relay_portset_give(&ps, a);
		relay_portset_give(&ps, b);
		relay_portset_give(&ps, c);
	}
	assert_int_equal(ps.nfree, N);
	assert_true(sequential < 2);
	relay_portset_destroy(&ps);
}

/* Roughly uniform: each of 4 quarters of a 1000-port range gets its share
 * of 40000 picks (expected 10000, sd ~87; bounds at ~11 sd). */
static void test_uniform(void **state)
{
	struct relay_portset ps = {};
	unsigned int q[4] = {}, i;
	__u32 rnd;

	assert_int_equal(relay_portset_init(&ps, LO, HI), 0);
	for (i = 0; i < 40000; i++) {
		assert_int_equal(ns_random_bytes(&rnd, sizeof(rnd)), 0);
		q[(relay_portset_pick(&ps, rnd) - LO) * 4 / N]++;
	}
	for (i = 0; i < 4; i++)
		assert_true(q[i] > 9000 && q[i] < 11000);
	/* The extremes of rnd reach both ends of the free list. */
	assert_int_equal(relay_portset_pick(&ps, 0), ps.free[0]);
	assert_int_equal(relay_portset_pick(&ps, 0xffffffff), ps.free[N - 1]);
	relay_portset_destroy(&ps);
}

static void test_take_give_edges(void **state)
{
	struct relay_portset ps = {};

	assert_int_equal(relay_portset_init(&ps, 5000, 5000), 0);	/* one port */
	relay_portset_take(&ps, 4999);	/* outside: ignored */
	relay_portset_take(&ps, 5001);
	assert_int_equal(ps.nfree, 1);
	assert_true(relay_portset_is_free(&ps, 5000));
	relay_portset_take(&ps, 5000);
	relay_portset_take(&ps, 5000);	/* twice: still one taken */
	assert_int_equal(ps.nfree, 0);
	relay_portset_give(&ps, 5000);
	relay_portset_give(&ps, 5000);
	assert_int_equal(ps.nfree, 1);
	assert_int_equal(relay_portset_init(&ps, 10, 9), -EINVAL);
	relay_portset_destroy(&ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_used_then_exhausted),
		cmocka_unit_test(test_not_sequential),
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_take_give_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
