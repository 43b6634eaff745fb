// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The words of a cached next hop (include/ns_hop.h), which the BPF fast path
 * stores and reads: payloads survive the trip and stay clear of the tag bits,
 * freshness follows the lifetime, and the daemon's entries start with
 * nothing cached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ns_hop.h"
#include "entry.h"

static void test_pack6_round_trip(void **state)
{
	static const __u8 macs[][6] = {
		{ 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 },
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 },
		{ 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc },
	};
	__u8 back[6];
	size_t i;

	for (i = 0; i < sizeof(macs) / sizeof(macs[0]); i++) {
		__u64 w = ns_hop_pack6(macs[i]);

		assert_int_equal(w & NS_HOP_TAG, 0);
		ns_hop_unpack6(w | 0xbeef, back);
		assert_memory_equal(back, macs[i], 6);
	}
}

static void test_in_out_words(void **state)
{
	__u64 in = ns_hop_in(0xfffffffe, NS_HOP_TC);
	__u64 out = ns_hop_out(0xffffffff, NS_HOP_LEN_MAX);

	assert_int_equal(in & NS_HOP_TAG, 0);
	assert_int_not_equal(in, ns_hop_in(0xfffffffe, NS_HOP_XDP));
	assert_int_not_equal(in, ns_hop_in(0xffffffff, NS_HOP_TC));
	assert_int_equal(out & NS_HOP_TAG, 0);
	assert_int_equal(ns_hop_out_ifindex(out | 7), 0xffffffff);
	assert_int_equal(ns_hop_out_len(out | 7), NS_HOP_LEN_MAX);
	out = ns_hop_out(3, 1500);
	assert_int_equal(ns_hop_out_ifindex(out), 3);
	assert_int_equal(ns_hop_out_len(out), 1500);
}

static void test_fresh(void **state)
{
	__u64 now = 1000 * NS_HOP_LIFETIME_NS + 123456789;
	__u64 at = ns_hop_at(now);

	assert_int_equal(at & NS_HOP_TAG, 0);
	assert_true(ns_hop_fresh(at | 1, now));
	assert_true(ns_hop_fresh(at | NS_HOP_TAG, now + NS_HOP_LIFETIME_NS - NS_HOP_TAG - 1));
	/* Tag 0: the daemon's empty cache, whatever the time says. */
	assert_false(ns_hop_fresh(at, now));
	assert_false(ns_hop_fresh(0, now));
	/* A lifetime after the stamp (which lies up to 65 us early): old. */
	assert_false(ns_hop_fresh(at | 1, ns_hop_at(now) + NS_HOP_LIFETIME_NS));
	/* Stamped after our clock read: old, so asked again. */
	assert_false(ns_hop_fresh(ns_hop_at(now + 2 * NS_HOP_TAG) | 1, now));
}

/* The daemon's entries (ns_entry_build) leave the next hop all zero. */
static void test_entry_starts_empty(void **state)
{
	struct ns_hop zero;
	struct ns_splice s;
	struct ns_rewrite val;
	struct ns_key key;
	int dir;

	memset(&zero, 0, sizeof(zero));
	memset(&s, 0, sizeof(s));
	s.id = 7;
	s.proto = 6;
	s.family = NS_AF_INET;
	s.peer[0].addr[0] = 0x01020304;
	s.peer[1].addr[0] = 0x05060708;
	s.relay[0] = 0x0a0b0c0d;
	for (dir = 0; dir < 2; dir++) {
		memset(&val, 0xa5, sizeof(val));
		ns_entry_build(&s, dir, &key, &val);
		assert_memory_equal(&val.hop, &zero, sizeof(zero));
		assert_false(ns_hop_fresh(val.hop.at, 1000 * NS_HOP_LIFETIME_NS));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack6_round_trip),
		cmocka_unit_test(test_in_out_words),
		cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_entry_starts_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
