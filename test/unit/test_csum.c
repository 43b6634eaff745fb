// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The checksum arithmetic of include/ns_csum.h, which the BPF fast path runs:
 * RFC 1624 incremental updates must give exactly what a full recompute gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "ns_csum.h"
#include "pkt.h"

#define RANDOM_CASES	20000	/* random header rewrites per test */
#define PKT_MAX		128	/* bytes */
#define PAYLOAD_MAX	40	/* bytes of random payload */

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

/* A test packet: IPv4 (no options) or IPv6, then a TCP or UDP header. */
struct tpkt {
	__u8 b[PKT_MAX];
	size_t len;
	__u8 family;
	__u8 proto;
	size_t l4;		/* offset of the L4 header */
	size_t saddr, daddr;	/* offsets of the addresses */
	size_t alen;		/* address length */
	size_t csum;		/* offset of the L4 checksum field */
};

static void tpkt_random(struct tpkt *t, __u8 family, __u8 proto)
{
	size_t l4len = proto == IPPROTO_TCP ? 20 : 8;
	size_t plen = rnd() % (PAYLOAD_MAX + 1);
	size_t i;

	memset(t, 0, sizeof(*t));
	t->family = family;
	t->proto = proto;
	if (family == NS_AF_INET) {
		t->l4 = 20;
		t->saddr = 12;
		t->daddr = 16;
		t->alen = 4;
	} else {
		t->l4 = 40;
		t->saddr = 8;
		t->daddr = 24;
		t->alen = 16;
	}
	t->len = t->l4 + l4len + plen;
	t->csum = t->l4 + (proto == IPPROTO_TCP ? 16 : 6);
	for (i = 0; i < t->len; i++)
		t->b[i] = rnd();
	if (family == NS_AF_INET) {
		t->b[0] = 0x45;
		t->b[2] = t->len >> 8;
		t->b[3] = t->len;
		t->b[6] &= 0x40;	/* DF or not, never a fragment */
		t->b[7] = 0;
		t->b[8] = 2 + rnd() % 254;
		t->b[9] = proto;
	} else {
		t->b[0] = 0x60 | (t->b[0] & 0x0f);
		t->b[4] = (t->len - 40) >> 8;
		t->b[5] = t->len - 40;
		t->b[6] = proto;
	}
	if (proto == IPPROTO_TCP) {
		t->b[t->l4 + 12] = 5 << 4;
	} else {
		t->b[t->l4 + 4] = (8 + plen) >> 8;
		t->b[t->l4 + 5] = 8 + plen;
	}
	ns_pkt_csum_fill(t->b, t->len);
}

static __u16 field16(const struct tpkt *t, size_t off)
{
	__u16 v;

	memcpy(&v, t->b + off, 2);
	return v;
}

static void set16(struct tpkt *t, size_t off, __u16 v)
{
	memcpy(t->b + off, &v, 2);
}

/* The addresses and ports of a packet as memory words. */
struct tuple {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport, dport;
};

static void tuple_get(const struct tpkt *t, struct tuple *u)
{
	memset(u, 0, sizeof(*u));
	memcpy(u->saddr, t->b + t->saddr, t->alen);
	memcpy(u->daddr, t->b + t->daddr, t->alen);
	u->sport = field16(t, t->l4);
	u->dport = field16(t, t->l4 + 2);
}

static void tuple_set(struct tpkt *t, const struct tuple *u)
{
	memcpy(t->b + t->saddr, u->saddr, t->alen);
	memcpy(t->b + t->daddr, u->daddr, t->alen);
	set16(t, t->l4, u->sport);
	set16(t, t->l4 + 2, u->dport);
}

/*
 * Rewrite the tuple of t to u the way the fast path does: incremental
 * updates only, optionally with the TTL decrement.
 */
static void rewrite_incremental(struct tpkt *t, const struct tuple *u, int ttl_dec)
{
	int n = t->alen / 4;
	struct tuple o;
	__u16 addr, ports, l3;

	tuple_get(t, &o);
	addr = ns_csum_add(ns_csum_delta32(o.saddr, u->saddr, n),
			   ns_csum_delta32(o.daddr, u->daddr, n));
	ports = ns_csum_add(ns_csum_delta16(o.sport, u->sport),
			    ns_csum_delta16(o.dport, u->dport));
	tuple_set(t, u);
	if (t->family == NS_AF_INET) {
		l3 = addr;
		if (ttl_dec) {
			t->b[8]--;
			l3 = ns_csum_add(l3, ns_csum_ttl_dec_delta());
		}
		set16(t, 10, ns_csum_apply(field16(t, 10), l3));
	} else if (ttl_dec) {
		t->b[7]--;
	}
	if (t->proto == IPPROTO_UDP)
		set16(t, t->csum, ns_csum_apply_udp(field16(t, t->csum),
						    ns_csum_add(addr, ports)));
	else
		set16(t, t->csum, ns_csum_apply(field16(t, t->csum),
						ns_csum_add(addr, ports)));
}

/* Incremental result == full recompute, bit for bit, and valid. */
static void assert_same_as_recompute(const struct tpkt *t)
{
	struct tpkt full = *t;

	ns_pkt_csum_fill(full.b, full.len);
	assert_memory_equal(t->b, full.b, t->len);
	assert_true(ns_pkt_csum_ok(t->b, t->len));
}

static void random_tuple(const struct tpkt *t, struct tuple *u)
{
	unsigned int what = rnd();

	/* Change any subset of the four fields, sometimes none. */
	tuple_get(t, u);
	if (what & 1)
		for (size_t i = 0; i < t->alen / 4; i++)
			u->saddr[i] = rnd();
	if (what & 2)
		for (size_t i = 0; i < t->alen / 4; i++)
			u->daddr[i] = rnd();
	if (what & 4)
		u->sport = rnd();
	if (what & 8)
		u->dport = rnd();
}

static void check_random_rewrites(__u8 family, __u8 proto)
{
	struct tpkt t;
	struct tuple u;
	int i;

	for (i = 0; i < RANDOM_CASES; i++) {
		tpkt_random(&t, family, proto);
		assert_true(ns_pkt_csum_ok(t.b, t.len));
		random_tuple(&t, &u);
		rewrite_incremental(&t, &u, i & 1);
		assert_same_as_recompute(&t);
	}
}

static void test_random_v4_tcp(void **state) { check_random_rewrites(NS_AF_INET, IPPROTO_TCP); }
static void test_random_v4_udp(void **state) { check_random_rewrites(NS_AF_INET, IPPROTO_UDP); }
static void test_random_v6_tcp(void **state) { check_random_rewrites(NS_AF_INET6, IPPROTO_TCP); }
static void test_random_v6_udp(void **state) { check_random_rewrites(NS_AF_INET6, IPPROTO_UDP); }

/* RFC 1071 4.1 worked example: the sum of 0001 f203 f4f5 f6f7 is ddf2. */
static void test_partial_rfc1071(void **state)
{
	static const __u8 data[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

	assert_int_equal(ntohs(ns_csum_fold(ns_csum_partial(data, sizeof(data), 0))),
			 0xddf2);
	/* An odd trailing byte is padded with a zero byte after it. */
	assert_int_equal(ntohs(ns_csum_fold(ns_csum_partial(data, 7, 0))),
			 0xddf2 - 0x00f7);
}

/*
 * RFC 1624 3: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285. Eqn. 3 gives 0x0000;
 * eqn. 2 (HC - m + m') would give the -0 0xffff that a full recompute never
 * produces.
 */
static void test_rfc1624_example(void **state)
{
	__u16 d = ns_csum_delta16(htons(0x5555), htons(0x3285));

	assert_int_equal(ns_csum_apply(htons(0xdd2f), d), 0x0000);
	/* And back again. */
	d = ns_csum_delta16(htons(0x3285), htons(0x5555));
	assert_int_equal(ns_csum_apply(0x0000, d), htons(0xdd2f));
}

/*
 * Sweep one 16-bit field (the source port) over all 65536 values: the L4
 * checksum passes through 0x0000 and (UDP) the computed-zero 0xffff, and the
 * incremental update must match the full recompute at every step.
 */
static void check_sweep(__u8 family, __u8 proto)
{
	struct tpkt t, start;
	struct tuple u;
	int zero = 0, ffff = 0;
	__u32 v;

	tpkt_random(&start, family, proto);
	for (v = 0; v <= 0xffff; v++) {
		t = start;
		tuple_get(&t, &u);
		u.sport = htons(v);
		rewrite_incremental(&t, &u, 0);
		assert_same_as_recompute(&t);
		zero += field16(&t, t.csum) == 0x0000;
		ffff += field16(&t, t.csum) == 0xffff;
	}
	if (proto == IPPROTO_TCP) {
		/* A full recompute gives 0x0000, never 0xffff (-0). */
		assert_true(zero >= 1);
		assert_int_equal(ffff, 0);
	} else {
		/* UDP writes a computed 0 as 0xffff, and never sends 0. */
		assert_int_equal(zero, 0);
		assert_true(ffff >= 1);
	}
}

static void test_sweep_v4_tcp(void **state) { check_sweep(NS_AF_INET, IPPROTO_TCP); }
static void test_sweep_v4_udp(void **state) { check_sweep(NS_AF_INET, IPPROTO_UDP); }
static void test_sweep_v6_tcp(void **state) { check_sweep(NS_AF_INET6, IPPROTO_TCP); }
static void test_sweep_v6_udp(void **state) { check_sweep(NS_AF_INET6, IPPROTO_UDP); }

/* From a checksum of 0x0000 (possible after a full recompute) onwards. */
static void test_from_zero(void **state)
{
	struct tpkt t, start;
	struct tuple u;
	__u32 v;
	int n = 0;

	tpkt_random(&start, NS_AF_INET, IPPROTO_TCP);
	/* Find the source port that makes the TCP checksum 0x0000... */
	for (v = 0; v <= 0xffff; v++) {
		t = start;
		tuple_get(&t, &u);
		u.sport = htons(v);
		tuple_set(&t, &u);
		ns_pkt_csum_fill(t.b, t.len);
		if (field16(&t, t.csum) == 0)
			break;
	}
	assert_true(v <= 0xffff);
	/* ... then rewrite from there. */
	start = t;
	for (n = 0; n < 1000; n++) {
		t = start;
		random_tuple(&t, &u);
		rewrite_incremental(&t, &u, 0);
		assert_same_as_recompute(&t);
	}
}

/* RFC 768: an IPv4 UDP checksum of 0 means "none" and must stay 0. */
static void test_udp_zero_stays_zero(void **state)
{
	struct tpkt t;
	struct tuple u;
	int i;

	for (i = 0; i < 1000; i++) {
		__u16 delta = rnd();

		assert_int_equal(ns_csum_apply_udp(0, delta), 0);
		tpkt_random(&t, NS_AF_INET, IPPROTO_UDP);
		set16(&t, t.csum, 0);
		random_tuple(&t, &u);
		rewrite_incremental(&t, &u, 1);
		assert_int_equal(field16(&t, t.csum), 0);
		assert_true(ns_pkt_csum_ok(t.b, t.len));
	}
}

/* A UDP update whose result is 0 writes 0xffff; other results are kept. */
static void test_udp_computed_zero(void **state)
{
	/* ~(~0x1234 + delta) == 0 when delta == 0x1234. */
	assert_int_equal(ns_csum_apply(htons(0x1234), htons(0x1234)), 0x0000);
	assert_int_equal(ns_csum_apply_udp(htons(0x1234), htons(0x1234)), 0xffff);
	assert_int_equal(ns_csum_apply_udp(htons(0x1234), htons(0x0001)),
			 ns_csum_apply(htons(0x1234), htons(0x0001)));
	/* 0xffff and 0x0000 are both zero in one's complement: a delta of
	 * either changes nothing. */
	assert_int_equal(ns_csum_apply(htons(0xabcd), 0xffff), htons(0xabcd));
	assert_int_equal(ns_csum_apply(htons(0xabcd), 0x0000), htons(0xabcd));
}

/* The TTL decrement delta, for every TTL that may be forwarded. */
static void test_ttl_dec(void **state)
{
	struct tpkt t, full;
	__u16 delta = ns_csum_ttl_dec_delta();
	int ttl, i;

	for (i = 0; i < 50; i++) {
		tpkt_random(&t, NS_AF_INET, i & 1 ? IPPROTO_TCP : IPPROTO_UDP);
		for (ttl = 2; ttl <= 255; ttl++) {
			t.b[8] = ttl;
			ns_pkt_csum_fill(t.b, t.len);
			t.b[8]--;
			set16(&t, 10, ns_csum_apply(field16(&t, 10), delta));
			full = t;
			ns_pkt_csum_fill(full.b, full.len);
			assert_int_equal(field16(&t, 10), field16(&full, 10));
			assert_true(ns_pkt_csum_ok(t.b, t.len));
		}
	}
}

/* One's complement sum of the pseudo header, folded, uncomplemented. */
static __u16 pseudo_seed(const struct tpkt *t)
{
	__u16 l4len = htons(t->len - t->l4), proto = htons(t->proto);
	__u32 sum;

	sum = ns_csum_partial(t->b + t->saddr, t->alen, 0);
	sum = ns_csum_partial(t->b + t->daddr, t->alen, sum);
	sum = ns_csum_partial(&proto, 2, sum);
	sum = ns_csum_partial(&l4len, 2, sum);
	return ns_csum_fold(sum);
}

/*
 * CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the device adds
 * the segment (ports included) later. Only the address delta may be applied;
 * the device's final sum must then be valid.
 */
static void test_apply_partial(void **state)
{
	struct tpkt t;
	struct tuple o, u;
	__u16 seed, addr, final;
	int i;

	for (i = 0; i < RANDOM_CASES; i++) {
		tpkt_random(&t, i & 1 ? NS_AF_INET6 : NS_AF_INET,
			    i & 2 ? IPPROTO_UDP : IPPROTO_TCP);
		set16(&t, t.csum, pseudo_seed(&t));
		tuple_get(&t, &o);
		random_tuple(&t, &u);
		addr = ns_csum_add(ns_csum_delta32(o.saddr, u.saddr, t.alen / 4),
				   ns_csum_delta32(o.daddr, u.daddr, t.alen / 4));
		seed = ns_csum_apply_partial(field16(&t, t.csum), addr);
		tuple_set(&t, &u);
		/* Same seed as one computed from the new addresses, up to the
		 * two representations of zero. */
		assert_int_equal(ns_csum_fold((__u32)seed + 1),
				 ns_csum_fold((__u32)pseudo_seed(&t) + 1));
		set16(&t, t.csum, seed);
		/* What the device does at transmit. */
		final = ~ns_csum_fold(ns_csum_partial(t.b + t.l4, t.len - t.l4, 0));
		if (t.proto == IPPROTO_UDP && final == 0)
			final = 0xffff;
		set16(&t, t.csum, final);
		if (t.family == NS_AF_INET)
			set16(&t, 10, ns_csum_apply(field16(&t, 10), addr));
		assert_true(ns_pkt_csum_ok(t.b, t.len));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partial_rfc1071),
		cmocka_unit_test(test_rfc1624_example),
		cmocka_unit_test(test_random_v4_tcp),
		cmocka_unit_test(test_random_v4_udp),
		cmocka_unit_test(test_random_v6_tcp),
		cmocka_unit_test(test_random_v6_udp),
		cmocka_unit_test(test_sweep_v4_tcp),
		cmocka_unit_test(test_sweep_v4_udp),
		cmocka_unit_test(test_sweep_v6_tcp),
		cmocka_unit_test(test_sweep_v6_udp),
		cmocka_unit_test(test_from_zero),
		cmocka_unit_test(test_udp_zero_stays_zero),
		cmocka_unit_test(test_udp_computed_zero),
		cmocka_unit_test(test_ttl_dec),
		cmocka_unit_test(test_apply_partial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
