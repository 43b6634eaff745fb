// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lib/entry.c: the two splice table entries of a splice, and their checksum
 * deltas applied to real packets exactly as the fast path applies them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "entry.h"
#include "ns_csum.h"
#include "pkt.h"

#define PKT_MAX		160	/* bytes */
#define PAYLOAD_MAX	64	/* bytes */
#define RANDOM_SPLICES	2000	/* per family, protocol and mode */

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0xd1b54a32d192ed03ULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

static void addr_of(__u8 family, const char *s, __u32 a[4])
{
	memset(a, 0, 16);
	assert_int_equal(inet_pton(family, s, a), 1);
}

static void random_addr(__u8 family, __u32 a[4])
{
	int i;

	memset(a, 0, 16);
	for (i = 0; i < ns_addr_words(family); i++)
		a[i] = rnd();
}

/*
 * A random splice. Passive: any relay ports. Pure: A connects from x to
 * relay:y and B from y to relay:x (DESIGN §2), so port[0] is B's source
 * port and port[1] A's.
 */
static void random_splice(struct ns_splice *s, __u8 family, __u8 proto, __u8 mode)
{
	memset(s, 0, sizeof(*s));
	s->id = rnd();
	s->family = family;
	s->proto = proto;
	s->mode = mode;
	random_addr(family, s->relay);
	random_addr(family, s->peer[0].addr);
	random_addr(family, s->peer[1].addr);
	s->peer[0].port = rnd();
	s->peer[1].port = rnd();
	if (mode == NS_MODE_PURE) {
		s->port[0] = s->peer[1].port;
		s->port[1] = s->peer[0].port;
	} else {
		s->port[0] = rnd();
		s->port[1] = rnd();
	}
}

/* Layout of a test packet. */
struct tpkt {
	__u8 b[PKT_MAX];
	size_t len, l4, csum;
	__u8 family, proto;
};

static size_t off_saddr(const struct tpkt *t) { return t->family == NS_AF_INET ? 12 : 8; }
static size_t off_daddr(const struct tpkt *t) { return t->family == NS_AF_INET ? 16 : 24; }
static size_t off_ttl(const struct tpkt *t) { return t->family == NS_AF_INET ? 8 : 7; }
static size_t alen(const struct tpkt *t) { return t->family == NS_AF_INET ? 4 : 16; }

static __u16 get16(const struct tpkt *t, size_t off)
{
	__u16 v;

	memcpy(&v, t->b + off, 2);
	return v;
}

static void set16(struct tpkt *t, size_t off, __u16 v)
{
	memcpy(t->b + off, &v, 2);
}

/* A packet matching key (as sent by the peer), random TTL and payload. */
static void pkt_for_key(struct tpkt *t, const struct ns_key *k)
{
	size_t plen = rnd() % (PAYLOAD_MAX + 1), i;
	size_t l4hdr = k->proto == IPPROTO_TCP ? 20 : 8;

	memset(t, 0, sizeof(*t));
	t->family = k->family;
	t->proto = k->proto;
	t->l4 = k->family == NS_AF_INET ? 20 : 40;
	t->len = t->l4 + l4hdr + plen;
	t->csum = t->l4 + (k->proto == IPPROTO_TCP ? 16 : 6);
	for (i = t->l4; i < t->len; i++)
		t->b[i] = rnd();
	if (k->family == NS_AF_INET) {
		t->b[0] = 0x45;
		t->b[2] = t->len >> 8;
		t->b[3] = t->len;
		t->b[4] = rnd();
		t->b[6] = 0x40;
		t->b[9] = k->proto;
	} else {
		t->b[0] = 0x60;
		t->b[4] = (t->len - 40) >> 8;
		t->b[5] = t->len - 40;
		t->b[6] = k->proto;
	}
	t->b[off_ttl(t)] = 2 + rnd() % 254;
	memcpy(t->b + off_saddr(t), k->saddr, alen(t));
	memcpy(t->b + off_daddr(t), k->daddr, alen(t));
	memcpy(t->b + t->l4, &k->sport, 2);
	memcpy(t->b + t->l4 + 2, &k->dport, 2);
	if (k->proto == IPPROTO_TCP) {
		t->b[t->l4 + 12] = 5 << 4;
	} else {
		t->b[t->l4 + 4] = (8 + plen) >> 8;
		t->b[t->l4 + 5] = 8 + plen;
	}
	ns_pkt_csum_fill(t->b, t->len);
	assert_true(ns_pkt_csum_ok(t->b, t->len));
}

/* The rewrite as the fast path does it, field by field. */
static void fast_path(struct tpkt *t, const struct ns_rewrite *v)
{
	__u16 l4 = ns_csum_add(v->csum_pseudo, v->csum_ports);

	memcpy(t->b + off_saddr(t), v->saddr, alen(t));
	memcpy(t->b + off_daddr(t), v->daddr, alen(t));
	memcpy(t->b + t->l4, &v->sport, 2);
	memcpy(t->b + t->l4 + 2, &v->dport, 2);
	t->b[off_ttl(t)]--;
	if (t->family == NS_AF_INET)
		set16(t, 10, ns_csum_apply(get16(t, 10), v->csum_l3));
	if (t->proto == IPPROTO_UDP)
		set16(t, t->csum, ns_csum_apply_udp(get16(t, t->csum), l4));
	else
		set16(t, t->csum, ns_csum_apply(get16(t, t->csum), l4));
}

/* Valid, and bit for bit what a full recompute gives. */
static void assert_recomputed(const struct tpkt *t)
{
	struct tpkt full = *t;

	assert_true(ns_pkt_csum_ok(t->b, t->len));
	ns_pkt_csum_fill(full.b, full.len);
	assert_memory_equal(t->b, full.b, t->len);
}

/* Folded, uncomplemented pseudo-header sum: a CHECKSUM_PARTIAL seed. */
static __u16 pseudo_seed(const struct tpkt *t)
{
	__u16 len = htons(t->len - t->l4), proto = htons(t->proto);
	__u32 sum;

	sum = ns_csum_partial(t->b + off_saddr(t), alen(t), 0);
	sum = ns_csum_partial(t->b + off_daddr(t), alen(t), sum);
	sum = ns_csum_partial(&proto, 2, sum);
	sum = ns_csum_partial(&len, 2, sum);
	return ns_csum_fold(sum);
}

/*
 * TC with a CHECKSUM_PARTIAL skb: the L4 field holds the pseudo-header seed
 * and only csum_pseudo may go into it; the device then sums the segment
 * (ports included) and the result must be valid.
 */
static void check_partial(const struct ns_key *k, const struct ns_rewrite *v)
{
	struct tpkt t;
	__u16 final;

	pkt_for_key(&t, k);
	set16(&t, t.csum, pseudo_seed(&t));
	memcpy(t.b + off_saddr(&t), v->saddr, alen(&t));
	memcpy(t.b + off_daddr(&t), v->daddr, alen(&t));
	memcpy(t.b + t.l4, &v->sport, 2);
	memcpy(t.b + t.l4 + 2, &v->dport, 2);
	t.b[off_ttl(&t)]--;
	if (t.family == NS_AF_INET)
		set16(&t, 10, ns_csum_apply(get16(&t, 10), v->csum_l3));
	set16(&t, t.csum, ns_csum_apply_partial(get16(&t, t.csum), v->csum_pseudo));
	/* The device at transmit. */
	final = ~ns_csum_fold(ns_csum_partial(t.b + t.l4, t.len - t.l4, 0));
	if (t.proto == IPPROTO_UDP && final == 0)
		final = 0xffff;
	set16(&t, t.csum, final);
	assert_true(ns_pkt_csum_ok(t.b, t.len));
}

/* Key and value of entry dir are what ns_entry_build promises. */
static void check_entry_fields(const struct ns_splice *s, int dir,
			       const struct ns_key *k, const struct ns_rewrite *v)
{
	int other = !dir;

	assert_memory_equal(k->saddr, s->peer[dir].addr, 16);
	assert_memory_equal(k->daddr, s->relay, 16);
	assert_int_equal(k->sport, s->peer[dir].port);
	assert_int_equal(k->dport, s->port[dir]);
	assert_int_equal(k->proto, s->proto);
	assert_int_equal(k->family, s->family);
	assert_int_equal(k->pad, 0);

	assert_memory_equal(v->saddr, s->relay, 16);
	assert_memory_equal(v->daddr, s->peer[other].addr, 16);
	assert_int_equal(v->sport, s->port[other]);
	assert_int_equal(v->dport, s->peer[other].port);
	assert_int_equal(v->splice_id, s->id);
	assert_int_equal(v->dir, dir);
	assert_int_equal(v->flags, 0);
	assert_int_equal(v->last_seen_ns, 0);
	assert_int_equal(v->pad, 0);
	assert_int_equal(v->pad2, 0);
	/* The IPv6 header has no checksum. */
	if (s->family == NS_AF_INET6)
		assert_int_equal(v->csum_l3, 0);
	/* Pure splice: ports kept, nothing to add for them. The ABI promises
	 * 0 here, not the other zero 0xffff, so the fast path can test it. */
	if (s->mode == NS_MODE_PURE) {
		assert_int_equal(v->sport, k->sport);
		assert_int_equal(v->dport, k->dport);
		assert_int_equal(v->csum_ports, 0);
	}
}

static void check_splice(const struct ns_splice *s)
{
	struct ns_key k;
	struct ns_rewrite v;
	struct tpkt t;
	int dir;

	for (dir = 0; dir < 2; dir++) {
		ns_entry_build(s, dir, &k, &v);
		check_entry_fields(s, dir, &k, &v);

		pkt_for_key(&t, &k);
		fast_path(&t, &v);
		assert_recomputed(&t);

		check_partial(&k, &v);

		/* RFC 768: IPv4 UDP without checksum stays without. */
		if (s->proto == IPPROTO_UDP && s->family == NS_AF_INET) {
			pkt_for_key(&t, &k);
			set16(&t, t.csum, 0);
			fast_path(&t, &v);
			assert_int_equal(get16(&t, t.csum), 0);
			assert_true(ns_pkt_csum_ok(t.b, t.len));
		}
	}
}

static void check_random(__u8 family, __u8 proto, __u8 mode)
{
	struct ns_splice s;
	int i;

	for (i = 0; i < RANDOM_SPLICES; i++) {
		random_splice(&s, family, proto, mode);
		check_splice(&s);
	}
}

static void test_passive_v4_tcp(void **state) { check_random(NS_AF_INET, IPPROTO_TCP, NS_MODE_PASSIVE); }
static void test_passive_v4_udp(void **state) { check_random(NS_AF_INET, IPPROTO_UDP, NS_MODE_PASSIVE); }
static void test_passive_v6_tcp(void **state) { check_random(NS_AF_INET6, IPPROTO_TCP, NS_MODE_PASSIVE); }
static void test_passive_v6_udp(void **state) { check_random(NS_AF_INET6, IPPROTO_UDP, NS_MODE_PASSIVE); }
static void test_pure_v4_tcp(void **state) { check_random(NS_AF_INET, IPPROTO_TCP, NS_MODE_PURE); }
static void test_pure_v4_udp(void **state) { check_random(NS_AF_INET, IPPROTO_UDP, NS_MODE_PURE); }
static void test_pure_v6_tcp(void **state) { check_random(NS_AF_INET6, IPPROTO_TCP, NS_MODE_PURE); }
static void test_pure_v6_udp(void **state) { check_random(NS_AF_INET6, IPPROTO_UDP, NS_MODE_PURE); }

/* DESIGN §2's example with names: A a:x -> relay:y becomes relay:x -> b:y. */
static void test_pure_example(void **state)
{
	struct ns_splice s = {
		.id = 42, .family = NS_AF_INET, .proto = IPPROTO_TCP,
		.mode = NS_MODE_PURE,
	};
	struct ns_key k;
	struct ns_rewrite v;
	__u32 a[4];

	addr_of(NS_AF_INET, "198.51.100.1", s.relay);
	addr_of(NS_AF_INET, "192.0.2.10", s.peer[0].addr);	/* a */
	addr_of(NS_AF_INET, "203.0.113.20", s.peer[1].addr);	/* b */
	s.peer[0].port = htons(40000);				/* x */
	s.peer[1].port = htons(50000);				/* y */
	s.port[0] = htons(50000);
	s.port[1] = htons(40000);

	ns_entry_build(&s, 0, &k, &v);
	addr_of(NS_AF_INET, "192.0.2.10", a);
	assert_memory_equal(k.saddr, a, 16);
	assert_int_equal(ntohs(k.sport), 40000);
	assert_int_equal(ntohs(k.dport), 50000);
	assert_memory_equal(v.saddr, s.relay, 16);
	addr_of(NS_AF_INET, "203.0.113.20", a);
	assert_memory_equal(v.daddr, a, 16);
	assert_int_equal(ntohs(v.sport), 40000);
	assert_int_equal(ntohs(v.dport), 50000);
	assert_int_equal(v.csum_ports, 0);
	check_splice(&s);
}

/* A passive splice on IPv6, both directions by name. */
static void test_passive_example_v6(void **state)
{
	struct ns_splice s = {
		.id = 7, .family = NS_AF_INET6, .proto = IPPROTO_UDP,
		.mode = NS_MODE_PASSIVE,
	};
	struct ns_key k;
	struct ns_rewrite v;

	addr_of(NS_AF_INET6, "2001:db8:ffff::1", s.relay);
	addr_of(NS_AF_INET6, "2001:db8:a::a", s.peer[0].addr);
	addr_of(NS_AF_INET6, "2001:db8:b::b", s.peer[1].addr);
	s.peer[0].port = htons(1111);
	s.peer[1].port = htons(2222);
	s.port[0] = htons(30000);	/* Pa */
	s.port[1] = htons(30001);	/* Pb */

	/* B -> relay:Pb becomes relay:Pa -> A. */
	ns_entry_build(&s, 1, &k, &v);
	assert_memory_equal(k.saddr, s.peer[1].addr, 16);
	assert_int_equal(ntohs(k.sport), 2222);
	assert_int_equal(ntohs(k.dport), 30001);
	assert_memory_equal(v.daddr, s.peer[0].addr, 16);
	assert_int_equal(ntohs(v.sport), 30000);
	assert_int_equal(ntohs(v.dport), 1111);
	assert_int_equal(v.dir, 1);
	assert_int_equal(v.csum_l3, 0);
	assert_int_not_equal(v.csum_ports, 0);
	check_splice(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pure_example),
		cmocka_unit_test(test_passive_example_v6),
		cmocka_unit_test(test_passive_v4_tcp),
		cmocka_unit_test(test_passive_v4_udp),
		cmocka_unit_test(test_passive_v6_tcp),
		cmocka_unit_test(test_passive_v6_udp),
		cmocka_unit_test(test_pure_v4_tcp),
		cmocka_unit_test(test_pure_v4_udp),
		cmocka_unit_test(test_pure_v6_tcp),
		cmocka_unit_test(test_pure_v6_udp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
