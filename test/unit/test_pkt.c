// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lib/pkt.c: head parsing, checksum checking/filling, SYN option parsing, and
 * the SYN-ACK builder of DESIGN §2 over every combination of the negotiable
 * options on both SYNs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "pkt.h"

#define PKT_MAX		256	/* bytes */
#define FUZZ_CASES	200000

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

static __u16 rd16(const __u8 *p)
{
	__u16 v;

	memcpy(&v, p, 2);
	return ntohs(v);
}

static __u32 rd32(const __u8 *p)
{
	__u32 v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static void wr16(__u8 *p, __u16 v)
{
	v = htons(v);
	memcpy(p, &v, 2);
}

static void wr32(__u8 *p, __u32 v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

/*
 * Reference packets, checksums computed independently (RFC 1071 in Python,
 * confirmed "correct" by tcpdump -vv).
 */
/* 192.0.2.1:40000 -> 198.51.100.7:443 SYN, Linux options. */
static const __u8 v4_tcp_syn[] = {
	0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x3c, 0x4c,
	0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x07, 0x9c, 0x40, 0x01, 0xbb,
	0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0,
	0x9c, 0x2f, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
	0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};
/* 192.0.2.1:5353 -> 198.51.100.7:53 UDP "hello", IPv4 header with options. */
static const __u8 v4opt_udp_odd[] = {
	0x46, 0x00, 0x00, 0x25, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0xa7, 0x53,
	0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x07, 0x94, 0x04, 0x00, 0x00,
	0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0xba, 0xa7, 0x68, 0x65, 0x6c, 0x6c,
	0x6f,
};
/* [2001:db8::1]:40000 -> [2001:db8:1::77]:443 TCP with 18 bytes of data. */
static const __u8 v6_tcp_data[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x26, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x77, 0x9c, 0x40, 0x01, 0xbb, 0x11, 0x22, 0x33, 0x44,
	0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0, 0x97, 0xf3, 0x00, 0x00,
	0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31,
	0x2e, 0x30, 0x0d, 0x0a, 0x0d, 0x0a,
};
/* [2001:db8::1]:5353 -> [2001:db8:1::77]:53 UDP "abc". */
static const __u8 v6_udp_odd[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x77, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0b, 0xca, 0x6c,
	0x61, 0x62, 0x63,
};

struct vec {
	const char *name;
	const __u8 *b;
	size_t len;
	__u8 family, proto;
	__u16 l4_off, payload_off, csum_off;
};

#define VEC(n, f, p, l4, pl, c) { #n, n, sizeof(n), f, p, l4, pl, c }
static const struct vec vecs[] = {
	VEC(v4_tcp_syn, NS_AF_INET, IPPROTO_TCP, 20, 60, 36),
	VEC(v4opt_udp_odd, NS_AF_INET, IPPROTO_UDP, 24, 32, 30),
	VEC(v6_tcp_data, NS_AF_INET6, IPPROTO_TCP, 40, 60, 56),
	VEC(v6_udp_odd, NS_AF_INET6, IPPROTO_UDP, 40, 48, 46),
};
#define NVECS (sizeof(vecs) / sizeof(vecs[0]))

/* Addresses of the reference packets and of the SYN-ACK tests. */
static void addr_of(__u8 family, const char *s, __u32 a[4])
{
	memset(a, 0, 16);
	assert_int_equal(inet_pton(family, s, a), 1);
}

/* ---- ns_pkt_parse ---------------------------------------------------- */

static void test_parse_good(void **state)
{
	struct ns_pkt_info pi;
	__u32 a[4];
	size_t i;

	for (i = 0; i < NVECS; i++) {
		const struct vec *v = &vecs[i];
		int v4 = v->family == NS_AF_INET;

		assert_int_equal(ns_pkt_parse(v->b, v->len, &pi), 0);
		assert_int_equal(pi.family, v->family);
		assert_int_equal(pi.proto, v->proto);
		assert_int_equal(pi.l4_off, v->l4_off);
		assert_int_equal(pi.payload_off, v->payload_off);
		addr_of(v->family, v4 ? "192.0.2.1" : "2001:db8::1", a);
		assert_memory_equal(pi.saddr, a, 16);
		addr_of(v->family, v4 ? "198.51.100.7" : "2001:db8:1::77", a);
		assert_memory_equal(pi.daddr, a, 16);
		if (v->proto == IPPROTO_TCP) {
			assert_int_equal(ntohs(pi.sport), 40000);
			assert_int_equal(ntohs(pi.dport), 443);
			assert_int_equal(pi.tcp_flags, NS_TCP_SYN);
			assert_int_equal(pi.seq, 0x11223344);
		} else {
			assert_int_equal(ntohs(pi.sport), 5353);
			assert_int_equal(ntohs(pi.dport), 53);
			assert_int_equal(pi.tcp_flags, 0);
			assert_int_equal(pi.seq, 0);
		}
	}
}

/* A head is parsed as soon as its headers are there, not before. */
static void test_parse_truncated(void **state)
{
	struct ns_pkt_info pi;
	size_t i, len;

	for (i = 0; i < NVECS; i++)
		for (len = 0; len <= vecs[i].len; len++)
			assert_int_equal(ns_pkt_parse(vecs[i].b, len, &pi),
					 len < vecs[i].payload_off ? -EINVAL : 0);
}

static void test_parse_garbage(void **state)
{
	struct ns_pkt_info pi;
	__u8 b[PKT_MAX];

#define BAD(base, off, val) do {					\
		memcpy(b, base, sizeof(base));				\
		b[off] = val;						\
		assert_int_equal(ns_pkt_parse(b, sizeof(base), &pi), -EINVAL); \
	} while (0)
	BAD(v4_tcp_syn, 0, 0x55);	/* version 5 */
	BAD(v4_tcp_syn, 0, 0x05);	/* version 0 */
	BAD(v4_tcp_syn, 0, 0x44);	/* ihl 4 */
	BAD(v4_tcp_syn, 0, 0x4f);	/* ihl 15: 60 bytes of IP header */
	BAD(v4_tcp_syn, 3, 0x13);	/* tot_len 19 < ihl */
	BAD(v4_tcp_syn, 3, 0x27);	/* tot_len 39: TCP header cut */
	BAD(v4_tcp_syn, 9, IPPROTO_ICMP);
	BAD(v4_tcp_syn, 7, 0x01);	/* not the first fragment */
	BAD(v4_tcp_syn, 32, 0x40);	/* doff 4 */
	BAD(v4_tcp_syn, 32, 0xf0);	/* doff 15: options beyond the packet */
	BAD(v4opt_udp_odd, 3, 0x1f);	/* tot_len 31: UDP header cut */
	BAD(v6_tcp_data, 0, 0x40);	/* IPv4 in an IPv6 packet's clothes */
	BAD(v6_tcp_data, 6, 0);		/* hop-by-hop header: not walked */
	BAD(v6_tcp_data, 6, 44);	/* fragment header */
	BAD(v6_tcp_data, 6, IPPROTO_ICMPV6);
	BAD(v6_tcp_data, 5, 0x10);	/* payload length 16: TCP header cut */
	BAD(v6_udp_odd, 5, 0x07);	/* payload length 7 */
#undef BAD

	/* A first fragment carries the L4 header: parsed. */
	memcpy(b, v4_tcp_syn, sizeof(v4_tcp_syn));
	b[6] |= 0x20;
	assert_int_equal(ns_pkt_parse(b, sizeof(v4_tcp_syn), &pi), 0);
}

/*
 * Random bytes, some of them shaped like IP: every function must stay within
 * len (run with make SAN=1) and ns_pkt_parse's offsets must fit.
 */
static void test_fuzz(void **state)
{
	struct ns_pkt_info pi;
	struct ns_syn syn;
	__u8 b[PKT_MAX];
	int i, parsed = 0;

	for (i = 0; i < FUZZ_CASES; i++) {
		size_t len = rnd() % 120, j;
		__u8 *exact;

		for (j = 0; j < len; j++)
			b[j] = rnd();
		if (len && (i & 1))
			b[0] = i & 2 ? 0x45 + (rnd() % 3) : 0x60;
		if (len > 9 && (i & 4))
			b[b[0] >> 4 == 6 ? 6 : 9] = i & 8 ? IPPROTO_TCP : IPPROTO_UDP;
		if (len > 7 && b[0] >> 4 == 4 && (i & 16)) {
			b[2] = 0;
			b[3] = len;
			b[6] &= 0xc0;
			b[7] = 0;
		}
		/* Exactly len bytes, so that ASan sees any read past them. */
		exact = test_malloc(len ? len : 1);
		memcpy(exact, b, len);
		if (ns_pkt_parse(exact, len, &pi) == 0) {
			parsed++;
			assert_true(pi.l4_off < pi.payload_off);
			assert_true(pi.payload_off <= len);
		}
		(void)ns_syn_parse(exact, len, &syn);
		(void)ns_pkt_csum_ok(exact, len);
		ns_pkt_csum_fill(exact, len);
		test_free(exact);
	}
	/* The shaping works: a good part of the inputs got through. */
	assert_true(parsed > FUZZ_CASES / 100);
}

/* ---- ns_pkt_csum_ok / ns_pkt_csum_fill ------------------------------ */

static void test_csum_vectors(void **state)
{
	__u8 b[PKT_MAX];
	size_t i;

	for (i = 0; i < NVECS; i++) {
		const struct vec *v = &vecs[i];

		assert_true(ns_pkt_csum_ok(v->b, v->len));
		/* Fill rebuilds exactly the reference checksums. */
		memcpy(b, v->b, v->len);
		memset(b + v->csum_off, 0x5a, 2);
		if (v->family == NS_AF_INET)
			memset(b + 10, 0xa5, 2);
		assert_false(ns_pkt_csum_ok(b, v->len));
		ns_pkt_csum_fill(b, v->len);
		assert_memory_equal(b, v->b, v->len);
		/* Truncated: not valid. */
		assert_false(ns_pkt_csum_ok(v->b, v->len - 1));
		assert_false(ns_pkt_csum_ok(v->b, v->l4_off));
		/* Link-layer padding after the IP packet is not covered. */
		memcpy(b, v->b, v->len);
		memset(b + v->len, 0xee, 6);
		assert_true(ns_pkt_csum_ok(b, v->len + 6));
	}
}

/* Every single bit flip in a covered byte is caught. */
static void test_csum_bitflips(void **state)
{
	__u8 b[PKT_MAX];
	size_t i, j;
	int bit;

	for (i = 0; i < NVECS; i++) {
		const struct vec *v = &vecs[i];

		for (j = 0; j < v->len; j++) {
			/* IPv6: version/class/flow label and hop limit are
			 * covered by no checksum. */
			if (v->family == NS_AF_INET6 && (j < 4 || j == 7))
				continue;
			for (bit = 0; bit < 8; bit++) {
				memcpy(b, v->b, v->len);
				b[j] ^= 1 << bit;
				/* A next header with no checksum of its own
				 * leaves nothing to check. */
				if (v->family == NS_AF_INET6 && j == 6 &&
				    b[j] != IPPROTO_TCP && b[j] != IPPROTO_UDP &&
				    b[j] != IPPROTO_ICMPV6)
					continue;
				assert_false(ns_pkt_csum_ok(b, v->len));
			}
		}
	}
}

/* UDP checksum 0: "none" over IPv4 (RFC 768), forbidden over IPv6 (RFC 8200 8.1). */
static void test_csum_udp_zero(void **state)
{
	__u8 b[PKT_MAX];

	memcpy(b, v4opt_udp_odd, sizeof(v4opt_udp_odd));
	memset(b + 30, 0, 2);
	assert_true(ns_pkt_csum_ok(b, sizeof(v4opt_udp_odd)));
	b[36] ^= 1;	/* unchecked payload */
	assert_true(ns_pkt_csum_ok(b, sizeof(v4opt_udp_odd)));

	memcpy(b, v6_udp_odd, sizeof(v6_udp_odd));
	memset(b + 46, 0, 2);
	assert_false(ns_pkt_csum_ok(b, sizeof(v6_udp_odd)));
}

/* A UDP checksum that computes to 0 is written 0xffff and is valid. */
static void test_csum_udp_computed_zero(void **state)
{
	const struct vec *v4 = &vecs[1], *v6 = &vecs[3];
	const struct vec *list[] = { v4, v6 };
	__u8 b[PKT_MAX];
	__u32 w;
	size_t i;

	for (i = 0; i < 2; i++) {
		const struct vec *v = list[i];

		memcpy(b, v->b, v->len);
		/* Tune the first two payload bytes until the sum hits zero. */
		for (w = 0; w <= 0xffff; w++) {
			wr16(b + v->payload_off, w);
			ns_pkt_csum_fill(b, v->len);
			if (rd16(b + v->csum_off) == 0xffff)
				break;
		}
		assert_true(w <= 0xffff);
		assert_true(ns_pkt_csum_ok(b, v->len));
		/* 0x0000 instead: "no checksum", fine over IPv4 only. */
		memset(b + v->csum_off, 0, 2);
		assert_int_equal(ns_pkt_csum_ok(b, v->len), v->family == NS_AF_INET);
	}
}

/* An IPv4 fragment's L4 checksum covers the whole datagram: not checked. */
static void test_csum_fragment(void **state)
{
	__u8 b[PKT_MAX];

	memcpy(b, v4_tcp_syn, sizeof(v4_tcp_syn));
	b[6] |= 0x20;			/* MF */
	b[40] ^= 0xff;			/* TCP data the L4 checksum would catch */
	ns_pkt_csum_fill(b, sizeof(v4_tcp_syn));
	assert_int_equal(rd16(b + 36), 0x9c2f);	/* L4 left alone */
	assert_true(ns_pkt_csum_ok(b, sizeof(v4_tcp_syn)));
	b[12] ^= 1;
	assert_false(ns_pkt_csum_ok(b, sizeof(v4_tcp_syn)));
}

/* ---- SYN construction for the tests ---------------------------------- */

#define F_WS	(1U << 0)
#define F_SACK	(1U << 1)
#define F_TS	(1U << 2)
#define F_ECN	(1U << 3)
#define F_ALL	15

/* What a test SYN offers. */
struct synspec {
	__u8 family;
	__u8 feat;		/* F_* */
	__u8 has_mss;
	__u8 ws;		/* shift as sent */
	__u16 mss;
	__u16 window;
	__u32 isn;
	__u32 ts_val;
	__u8 extra;		/* also send TFO, MPTCP and an unknown option */
	__u8 layout;		/* 0: Linux order, 1: reversed, padded differently */
};

static const char *client_addr(__u8 family)
{
	return family == NS_AF_INET ? "203.0.113.9" : "2001:db8:9::9";
}

static const char *relay_addr(__u8 family)
{
	return family == NS_AF_INET ? "198.51.100.1" : "2001:db8:ffff::1";
}

/*
 * An IP+TCP packet from client:50000 to relay:7000 with the given flags,
 * option bytes (padded with EOL to a multiple of 4) and payload length.
 */
static size_t tcp_build(__u8 *b, __u8 family, __u8 flags, __u32 seq, __u32 ack,
			__u16 window, const __u8 *opt, size_t optlen,
			size_t paylen)
{
	size_t ip = family == NS_AF_INET ? 20 : 40;
	size_t tcplen = 20 + ((optlen + 3) & ~(size_t)3);
	size_t len = ip + tcplen + paylen;
	__u32 a[4];

	assert_true(len <= PKT_MAX && tcplen <= 60);
	memset(b, 0, len);
	if (family == NS_AF_INET) {
		b[0] = 0x45;
		wr16(b + 2, len);
		b[6] = 0x40;
		b[8] = 64;
		b[9] = IPPROTO_TCP;
		addr_of(family, client_addr(family), a);
		memcpy(b + 12, a, 4);
		addr_of(family, relay_addr(family), a);
		memcpy(b + 16, a, 4);
	} else {
		b[0] = 0x60;
		wr16(b + 4, len - 40);
		b[6] = IPPROTO_TCP;
		b[7] = 64;
		addr_of(family, client_addr(family), a);
		memcpy(b + 8, a, 16);
		addr_of(family, relay_addr(family), a);
		memcpy(b + 24, a, 16);
	}
	wr16(b + ip, 50000);
	wr16(b + ip + 2, 7000);
	wr32(b + ip + 4, seq);
	wr32(b + ip + 8, ack);
	b[ip + 12] = (tcplen / 4) << 4;
	b[ip + 13] = flags;
	wr16(b + ip + 14, window);
	if (optlen)
		memcpy(b + ip + 20, opt, optlen);
	memset(b + ip + tcplen, 'd', paylen);
	ns_pkt_csum_fill(b, len);
	return len;
}

static size_t syn_with_opts(__u8 *b, __u8 family, const __u8 *opt, size_t optlen)
{
	return tcp_build(b, family, NS_TCP_SYN, 1000, 0, 65535, opt, optlen, 0);
}

/* Option bytes for a SYN as spec says, in one of two layouts. */
static size_t synspec_opts(const struct synspec *s, __u8 *o)
{
	static const __u8 tfo[] = { 34, 10, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const __u8 mptcp[] = { 30, 12, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const __u8 unknown[] = { 253, 4, 0xbe, 0xef };
	__u8 mss[4] = { 2, 4 }, ws[3] = { 3, 3, s->ws }, sack[2] = { 4, 2 };
	__u8 ts[10] = { 8, 10 };
	size_t n = 0;

	wr16(mss + 2, s->mss);
	wr32(ts + 2, s->ts_val);
	/* ts[6..9]: TSecr of a SYN is 0. */
#define PUT(x) do { memcpy(o + n, x, sizeof(x)); n += sizeof(x); } while (0)
#define NOP() (o[n++] = 1)
	if (s->layout == 0) {
		/* Linux: MSS, SACK-perm + TS (or NOP NOP TS), NOP WS. */
		if (s->has_mss)
			PUT(mss);
		if ((s->feat & F_TS) && (s->feat & F_SACK)) {
			PUT(sack);
			PUT(ts);
		} else if (s->feat & F_TS) {
			NOP(); NOP();
			PUT(ts);
		} else if (s->feat & F_SACK) {
			NOP(); NOP();
			PUT(sack);
		}
		if (s->feat & F_WS) {
			NOP();
			PUT(ws);
		}
		if (s->extra) {
			PUT(unknown);
			NOP(); NOP();
			PUT(tfo);
		}
	} else {
		/* Reversed, unaligned, extras in between. */
		if (s->feat & F_WS)
			PUT(ws);
		if (s->extra)
			PUT(mptcp);
		if (s->feat & F_TS)
			PUT(ts);
		if (s->extra)
			PUT(unknown);
		if (s->feat & F_SACK)
			PUT(sack);
		NOP();
		if (s->has_mss)
			PUT(mss);
	}
#undef PUT
#undef NOP
	/* What does not fit in 40 bytes is left out (never in these tests). */
	assert_true(n <= 40);
	return n;
}

static size_t synspec_build(const struct synspec *s, __u8 *b)
{
	__u8 opt[64];
	size_t n = synspec_opts(s, opt);
	__u8 flags = NS_TCP_SYN;

	if (s->feat & F_ECN)
		flags |= NS_TCP_ECE | NS_TCP_CWR;
	return tcp_build(b, s->family, flags, s->isn, 0, s->window, opt, n, 0);
}

static void synspec_random(struct synspec *s, __u8 family, __u8 feat)
{
	memset(s, 0, sizeof(*s));
	s->family = family;
	s->feat = feat;
	s->has_mss = rnd() % 4 != 0;
	s->ws = rnd() % 15;
	s->mss = 500 + rnd() % 9000;
	s->window = rnd();
	s->isn = rnd();
	s->ts_val = rnd();
	s->layout = rnd() % 2;
	s->extra = rnd() % 2;
}

/* ---- ns_syn_parse ---------------------------------------------------- */

static int parse_opts(__u8 family, const __u8 *opt, size_t optlen, struct ns_syn *syn)
{
	__u8 b[PKT_MAX];
	size_t len = syn_with_opts(b, family, opt, optlen);

	return ns_syn_parse(b, len, syn);
}

static void test_syn_each_option(void **state)
{
	static const __u8 families[] = { NS_AF_INET, NS_AF_INET6 };
	struct ns_syn syn;
	size_t f;

	for (f = 0; f < 2; f++) {
		__u8 fam = families[f];

		assert_int_equal(parse_opts(fam, NULL, 0, &syn), 0);
		assert_int_equal(syn.opts, 0);
		assert_int_equal(syn.isn, 1000);
		assert_int_equal(syn.window, 65535);

		assert_int_equal(parse_opts(fam, (__u8[]){ 2, 4, 0x05, 0xb4 }, 4, &syn), 0);
		assert_int_equal(syn.opts, NS_SYN_MSS);
		assert_int_equal(syn.mss, 1460);

		/* Like Linux: MSS 0 is no MSS. */
		assert_int_equal(parse_opts(fam, (__u8[]){ 2, 4, 0, 0 }, 4, &syn), 0);
		assert_int_equal(syn.opts, 0);

		assert_int_equal(parse_opts(fam, (__u8[]){ 1, 3, 3, 7 }, 4, &syn), 0);
		assert_int_equal(syn.opts, NS_SYN_WSCALE);
		assert_int_equal(syn.wscale, 7);
		/* RFC 7323 2.3: shifts above 14 are taken as 14. */
		assert_int_equal(parse_opts(fam, (__u8[]){ 1, 3, 3, 14 }, 4, &syn), 0);
		assert_int_equal(syn.wscale, 14);
		assert_int_equal(parse_opts(fam, (__u8[]){ 1, 3, 3, 15 }, 4, &syn), 0);
		assert_int_equal(syn.wscale, 14);
		assert_int_equal(parse_opts(fam, (__u8[]){ 1, 3, 3, 255 }, 4, &syn), 0);
		assert_int_equal(syn.wscale, 14);
		assert_int_equal(parse_opts(fam, (__u8[]){ 1, 3, 3, 0 }, 4, &syn), 0);
		assert_int_equal(syn.opts, NS_SYN_WSCALE);
		assert_int_equal(syn.wscale, 0);

		assert_int_equal(parse_opts(fam, (__u8[]){ 1, 1, 4, 2 }, 4, &syn), 0);
		assert_int_equal(syn.opts, NS_SYN_SACK);

		assert_int_equal(parse_opts(fam, (__u8[]){ 1, 1, 8, 10, 0xde, 0xad,
				 0xbe, 0xef, 0, 0, 0, 0 }, 12, &syn), 0);
		assert_int_equal(syn.opts, NS_SYN_TS);
		assert_int_equal(syn.ts_val, 0xdeadbeef);

		/* Everything at once, Linux layout. */
		assert_int_equal(parse_opts(fam, (__u8[]){ 2, 4, 0x23, 0x28, 4, 2,
				 8, 10, 0, 0, 0, 9, 0, 0, 0, 0, 1, 3, 3, 9 }, 20, &syn), 0);
		assert_int_equal(syn.opts, NS_SYN_MSS | NS_SYN_SACK | NS_SYN_TS |
				 NS_SYN_WSCALE);
		assert_int_equal(syn.mss, 9000);
		assert_int_equal(syn.ts_val, 9);
		assert_int_equal(syn.wscale, 9);

		/* Options after EOL are padding, not options. */
		assert_int_equal(parse_opts(fam, (__u8[]){ 0, 2, 4, 5, 0xb4, 19,
				 1, 2 }, 8, &syn), 0);
		assert_int_equal(syn.opts, 0);
	}
}

/* ECN setup SYN: ECE and CWR both (RFC 3168 6.1.1). */
static void test_syn_ecn(void **state)
{
	static const __u8 flags[] = { 0, NS_TCP_ECE, NS_TCP_CWR, NS_TCP_ECE | NS_TCP_CWR };
	struct ns_syn syn;
	__u8 b[PKT_MAX];
	size_t i, len;

	for (i = 0; i < 4; i++) {
		len = tcp_build(b, NS_AF_INET, NS_TCP_SYN | flags[i], 7, 0, 100,
				NULL, 0, 0);
		assert_int_equal(ns_syn_parse(b, len, &syn), 0);
		assert_int_equal(syn.opts, i == 3 ? NS_SYN_ECN : 0);
	}
}

/* Signed segments (RFC 2385, RFC 5925) cannot be spliced. */
static void test_syn_md5_ao(void **state)
{
	__u8 md5[20] = { 1, 1, 19, 18 }, ao[20] = { 2, 4, 5, 0xb4, 29, 16 };
	struct ns_syn syn;

	assert_int_equal(parse_opts(NS_AF_INET, md5, 20, &syn), -EPERM);
	assert_int_equal(parse_opts(NS_AF_INET6, md5, 20, &syn), -EPERM);
	assert_int_equal(parse_opts(NS_AF_INET, ao, 20, &syn), -EPERM);
	assert_int_equal(parse_opts(NS_AF_INET6, ao, 20, &syn), -EPERM);
}

/* TFO, MPTCP and unknown options are skipped; what follows still counts. */
static void test_syn_skipped(void **state)
{
	static const __u8 opt[] = {
		34, 2,				/* TFO cookie request */
		34, 10, 1, 2, 3, 4, 5, 6, 7, 8,	/* TFO cookie */
		30, 12, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8,	/* MP_CAPABLE */
		253, 4, 0xbe, 0xef,		/* RFC 6994 experiment */
		99, 2,				/* unassigned */
		2, 4, 0x05, 0x00,		/* MSS 1280 */
		3, 3, 5,			/* WS 5 */
	};
	struct ns_syn syn;
	__u8 b[PKT_MAX];
	size_t len;

	assert_int_equal(parse_opts(NS_AF_INET, opt, sizeof(opt), &syn), 0);
	assert_int_equal(syn.opts, NS_SYN_MSS | NS_SYN_WSCALE);
	assert_int_equal(syn.mss, 1280);
	assert_int_equal(syn.wscale, 5);

	/* SYN data (TFO) is fine to parse; it is never acknowledged. */
	len = tcp_build(b, NS_AF_INET6, NS_TCP_SYN, 42, 0, 1000, opt, 12, 100);
	assert_int_equal(ns_syn_parse(b, len, &syn), 0);
	assert_int_equal(syn.opts, 0);
	assert_int_equal(syn.isn, 42);
}

static void test_syn_bad_lengths(void **state)
{
	static const struct { __u8 opt[8]; size_t len; } bad[] = {
		{ { 99, 0 }, 4 },		/* length 0 */
		{ { 99, 1 }, 4 },		/* length 1 */
		{ { 99, 9, 0, 0 }, 4 },		/* past the header */
		{ { 1, 1, 1, 99 }, 4 },		/* no room for the length */
		{ { 1, 1, 1, 2 }, 4 },		/* MSS kind in the last byte */
		{ { 2, 3, 5, 0 }, 4 },		/* MSS length 3 */
		{ { 2, 5, 5, 0, 0 }, 8 },	/* MSS length 5 */
		{ { 3, 2, 1, 1 }, 4 },		/* WS length 2 */
		{ { 3, 4, 7, 0 }, 4 },		/* WS length 4 */
		{ { 4, 3, 0, 1 }, 4 },		/* SACK-permitted length 3 */
		{ { 8, 9, 1, 2, 3, 4, 5, 6 }, 12 },	/* TS length 9 */
		{ { 8, 11, 1, 2, 3, 4, 5, 6 }, 12 },	/* TS length 11 */
		{ { 8, 10, 1, 2, 3, 4, 5, 6 }, 8 },	/* TS cut by doff */
	};
	struct ns_syn syn;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_opts(NS_AF_INET, bad[i].opt, bad[i].len, &syn),
				 -EINVAL);
		assert_int_equal(parse_opts(NS_AF_INET6, bad[i].opt, bad[i].len, &syn),
				 -EINVAL);
	}
}

static void test_syn_not_a_syn(void **state)
{
	struct ns_syn syn;
	__u8 b[PKT_MAX];
	size_t len;

	len = tcp_build(b, NS_AF_INET, NS_TCP_SYN | NS_TCP_ACK, 1, 2, 3, NULL, 0, 0);
	assert_int_equal(ns_syn_parse(b, len, &syn), -EINVAL);
	len = tcp_build(b, NS_AF_INET6, NS_TCP_SYN | NS_TCP_ACK, 1, 2, 3, NULL, 0, 0);
	assert_int_equal(ns_syn_parse(b, len, &syn), -EINVAL);
	len = tcp_build(b, NS_AF_INET, NS_TCP_ACK, 1, 2, 3, NULL, 0, 0);
	assert_int_equal(ns_syn_parse(b, len, &syn), -EINVAL);
	len = tcp_build(b, NS_AF_INET, 0, 1, 2, 3, NULL, 0, 0);
	assert_int_equal(ns_syn_parse(b, len, &syn), -EINVAL);
	len = tcp_build(b, NS_AF_INET, NS_TCP_SYN | NS_TCP_RST, 1, 2, 3, NULL, 0, 0);
	assert_int_equal(ns_syn_parse(b, len, &syn), -EINVAL);
	assert_int_equal(ns_syn_parse(v4opt_udp_odd, sizeof(v4opt_udp_odd), &syn),
			 -EINVAL);
	/* Cut inside the options. */
	assert_int_equal(ns_syn_parse(v4_tcp_syn, sizeof(v4_tcp_syn) - 1, &syn),
			 -EINVAL);
	assert_int_equal(ns_syn_parse(v4_tcp_syn, sizeof(v4_tcp_syn), &syn), 0);
	assert_int_equal(syn.opts, NS_SYN_MSS | NS_SYN_SACK | NS_SYN_TS | NS_SYN_WSCALE);
	assert_int_equal(syn.isn, 0x11223344);
	assert_int_equal(syn.window, 64240);
	assert_int_equal(syn.mss, 1460);
	assert_int_equal(syn.ts_val, 123456);
	assert_int_equal(syn.wscale, 7);
}

/* ---- ns_synack_build ------------------------------------------------- */

/* The options of a built SYN-ACK, read strictly. */
struct seen {
	int mss, ws, sack, ts, eol, other;
	__u16 mss_val;
	__u8 ws_val;
	__u32 ts_val, ts_ecr;
	size_t ts_off;		/* offset of the TS option from the TCP header */
};

static void read_opts(const __u8 *tcp, size_t tcplen, struct seen *s)
{
	size_t i = 20;

	memset(s, 0, sizeof(*s));
	while (i < tcplen) {
		__u8 kind = tcp[i], len;

		if (kind == 0) {
			s->eol++;
			break;
		}
		if (kind == 1) {
			i++;
			continue;
		}
		assert_true(i + 1 < tcplen);
		len = tcp[i + 1];
		assert_true(len >= 2 && i + len <= tcplen);
		switch (kind) {
		case 2:
			assert_int_equal(len, 4);
			s->mss++;
			s->mss_val = rd16(tcp + i + 2);
			assert_int_equal(i, 20);	/* first, aligned */
			break;
		case 3:
			assert_int_equal(len, 3);
			s->ws++;
			s->ws_val = tcp[i + 2];
			break;
		case 4:
			assert_int_equal(len, 2);
			s->sack++;
			break;
		case 8:
			assert_int_equal(len, 10);
			s->ts++;
			s->ts_val = rd32(tcp + i + 2);
			s->ts_ecr = rd32(tcp + i + 6);
			s->ts_off = i;
			break;
		default:
			s->other++;
		}
		i += len;
	}
}

static __u16 expected_mss(const struct synspec *partner, __u16 clamp)
{
	__u16 mss = partner->has_mss ? partner->mss :
		    partner->family == NS_AF_INET ? 536 : 1220;

	return clamp && clamp < mss ? clamp : mss;
}

static void params_for(struct ns_synack_params *p, __u8 family,
		       const struct ns_syn *own, const struct ns_syn *partner)
{
	memset(p, 0, sizeof(*p));
	p->family = family;
	p->ttl = 1 + rnd() % 255;
	p->mss_clamp = rnd() % 3 ? 0 : 400 + rnd() % 9000;
	addr_of(family, relay_addr(family), p->relay);
	p->relay_port = htons(7000);
	addr_of(family, client_addr(family), p->peer);
	p->peer_port = htons(50000);
	p->own = own;
	p->partner = partner;
}

/*
 * Check a SYN-ACK built for the side that sent own, whose partner sent
 * partner: DESIGN §2's rules, one by one.
 */
static void check_synack(const __u8 *b, ssize_t n, const struct ns_synack_params *p,
			 const struct synspec *own, const struct synspec *partner)
{
	__u8 both = own->feat & partner->feat;
	struct ns_pkt_info pi;
	const __u8 *tcp;
	size_t ip = p->family == NS_AF_INET ? 20 : 40, tcplen;
	struct seen s;
	__u8 flags;

	assert_true(n > 0);
	assert_true(ns_pkt_csum_ok(b, n));
	assert_int_equal(ns_pkt_parse(b, n, &pi), 0);
	assert_int_equal(pi.family, p->family);
	assert_int_equal(pi.proto, IPPROTO_TCP);
	assert_memory_equal(pi.saddr, p->relay, 16);
	assert_memory_equal(pi.daddr, p->peer, 16);
	assert_int_equal(pi.sport, p->relay_port);
	assert_int_equal(pi.dport, p->peer_port);
	assert_int_equal(pi.l4_off, ip);
	assert_int_equal(pi.payload_off, n);	/* no data */

	/* IP header. */
	if (p->family == NS_AF_INET) {
		assert_int_equal(b[0], 0x45);
		assert_int_equal(rd16(b + 2), n);
		assert_int_equal(rd16(b + 6), 0x4000);	/* DF, not a fragment */
		assert_int_equal(b[8], p->ttl);
		assert_int_equal(b[1] & 3, 0);		/* not ECT */
	} else {
		assert_int_equal(b[0] >> 4, 6);
		assert_int_equal(rd16(b + 4), n - 40);
		assert_int_equal(b[6], IPPROTO_TCP);
		assert_int_equal(b[7], p->ttl);
		assert_int_equal((rd16(b) >> 4) & 3, 0);	/* not ECT */
	}

	/* TCP header. */
	tcp = b + ip;
	tcplen = (tcp[12] >> 4) * 4;
	assert_int_equal(ip + tcplen, n);
	assert_int_equal(tcp[12] & 0x0f, 0);		/* reserved bits, AE */
	assert_int_equal(rd32(tcp + 4), partner->isn);
	assert_int_equal(rd32(tcp + 8), (__u32)(own->isn + 1));
	assert_int_equal(rd16(tcp + 14), partner->window);
	assert_int_equal(rd16(tcp + 18), 0);		/* urgent pointer */
	/* RFC 3168 6.1.1: ECN-setup SYN-ACK is ECE without CWR. */
	flags = NS_TCP_SYN | NS_TCP_ACK | (both & F_ECN ? NS_TCP_ECE : 0);
	assert_int_equal(tcp[13], flags);

	/* Options: each iff both offered it, with the partner's values. */
	assert_int_equal(tcplen % 4, 0);
	read_opts(tcp, tcplen, &s);
	assert_int_equal(s.eol, 0);
	assert_int_equal(s.other, 0);
	assert_int_equal(s.mss, 1);
	assert_int_equal(s.mss_val, expected_mss(partner, p->mss_clamp));
	assert_int_equal(s.ws, !!(both & F_WS));
	if (s.ws)
		assert_int_equal(s.ws_val, partner->ws);
	assert_int_equal(s.sack, !!(both & F_SACK));
	assert_int_equal(s.ts, !!(both & F_TS));
	if (s.ts) {
		assert_int_equal(s.ts_val, partner->ts_val);
		assert_int_equal(s.ts_ecr, own->ts_val);
		/* Linux layout: TSval and TSecr on 4-byte boundaries. */
		assert_int_equal(s.ts_off % 4, 2);
	}
	/* Nothing but the options and their NOP padding. */
	assert_int_equal(tcplen, 20 + 4 + (s.ts ? 12 : s.sack ? 4 : 0) + (s.ws ? 4 : 0));
}

/* A SYN as spec says, through the real parser. */
static void syn_from_spec(const struct synspec *spec, struct ns_syn *syn)
{
	__u8 b[PKT_MAX];
	size_t len = synspec_build(spec, b);
	__u8 want = (spec->has_mss ? NS_SYN_MSS : 0) |
		    (spec->feat & F_WS ? NS_SYN_WSCALE : 0) |
		    (spec->feat & F_SACK ? NS_SYN_SACK : 0) |
		    (spec->feat & F_TS ? NS_SYN_TS : 0) |
		    (spec->feat & F_ECN ? NS_SYN_ECN : 0);

	assert_int_equal(ns_syn_parse(b, len, syn), 0);
	assert_int_equal(syn->opts, want);
	assert_int_equal(syn->isn, spec->isn);
	assert_int_equal(syn->window, spec->window);
	if (spec->has_mss)
		assert_int_equal(syn->mss, spec->mss);
	if (spec->feat & F_WS)
		assert_int_equal(syn->wscale, spec->ws);
	if (spec->feat & F_TS)
		assert_int_equal(syn->ts_val, spec->ts_val);
}

/* 2^4 x 2^4 feature combinations on the two SYNs, both families. */
static void check_all_combinations(__u8 family)
{
	struct synspec a, b;
	struct ns_syn sa, sb;
	struct ns_synack_params pa, pb;
	__u8 buf[PKT_MAX];
	unsigned int fa, fb;
	ssize_t n;
	int rep;

	for (fa = 0; fa <= F_ALL; fa++) {
		for (fb = 0; fb <= F_ALL; fb++) {
			for (rep = 0; rep < 4; rep++) {
				synspec_random(&a, family, fa);
				synspec_random(&b, family, fb);
				syn_from_spec(&a, &sa);
				syn_from_spec(&b, &sb);
				/* To A, built from B's SYN; to B, from A's. */
				params_for(&pa, family, &sa, &sb);
				n = ns_synack_build(&pa, buf, sizeof(buf));
				check_synack(buf, n, &pa, &a, &b);
				params_for(&pb, family, &sb, &sa);
				n = ns_synack_build(&pb, buf, sizeof(buf));
				check_synack(buf, n, &pb, &b, &a);
			}
		}
	}
}

static void test_synack_combinations_v4(void **state) { check_all_combinations(NS_AF_INET); }
static void test_synack_combinations_v6(void **state) { check_all_combinations(NS_AF_INET6); }

static void synack_from(const struct synspec *own, const struct synspec *partner,
			__u16 clamp, __u8 *buf, ssize_t *n)
{
	struct ns_syn so, sp;
	struct ns_synack_params p;

	syn_from_spec(own, &so);
	syn_from_spec(partner, &sp);
	params_for(&p, own->family, &so, &sp);
	p.ttl = 64;
	p.mss_clamp = clamp;
	*n = ns_synack_build(&p, buf, PKT_MAX);
	check_synack(buf, *n, &p, own, partner);
}

/* The exact Linux option layout (tcp_options_write), byte for byte. */
static void test_synack_layout(void **state)
{
	struct synspec a = { .family = NS_AF_INET, .has_mss = 1, .mss = 1460,
			     .ws = 7, .ts_val = 0x01020304, .isn = 5 };
	struct synspec b = a;
	__u8 buf[PKT_MAX];
	const __u8 *o = buf + 40;
	ssize_t n;

	b.ws = 9;
	b.mss = 1400;
	b.ts_val = 0x0a0b0c0d;

	a.feat = b.feat = F_ALL;
	synack_from(&a, &b, 0, buf, &n);
	assert_int_equal(n, 60);
	assert_memory_equal(o, ((__u8[]){ 2, 4, 0x05, 0x78, 4, 2, 8, 10,
				0x0a, 0x0b, 0x0c, 0x0d, 1, 2, 3, 4, 1, 3, 3, 9 }), 20);

	a.feat = b.feat = F_TS;
	synack_from(&a, &b, 0, buf, &n);
	assert_int_equal(n, 56);
	assert_memory_equal(o, ((__u8[]){ 2, 4, 0x05, 0x78, 1, 1, 8, 10,
				0x0a, 0x0b, 0x0c, 0x0d, 1, 2, 3, 4 }), 16);

	a.feat = b.feat = F_SACK | F_WS;
	synack_from(&a, &b, 0, buf, &n);
	assert_int_equal(n, 52);
	assert_memory_equal(o, ((__u8[]){ 2, 4, 0x05, 0x78, 1, 1, 4, 2,
				1, 3, 3, 9 }), 12);

	a.feat = b.feat = 0;
	synack_from(&a, &b, 0, buf, &n);
	assert_int_equal(n, 44);
	assert_memory_equal(o, ((__u8[]){ 2, 4, 0x05, 0x78 }), 4);
}

/* MSS: the partner's, or the family default, clamped. */
static void test_synack_mss(void **state)
{
	static const struct {
		__u8 family, has_mss;
		__u16 mss, clamp, want;
	} c[] = {
		{ NS_AF_INET, 1, 1460, 0, 1460 },
		{ NS_AF_INET, 1, 1460, 1400, 1400 },
		{ NS_AF_INET, 1, 1300, 1400, 1300 },
		{ NS_AF_INET, 0, 0, 0, 536 },
		{ NS_AF_INET, 0, 0, 500, 500 },
		{ NS_AF_INET, 0, 0, 1400, 536 },
		{ NS_AF_INET6, 1, 8940, 1440, 1440 },
		{ NS_AF_INET6, 0, 0, 0, 1220 },
		{ NS_AF_INET6, 0, 0, 1440, 1220 },
	};
	struct synspec a, b;
	__u8 buf[PKT_MAX];
	ssize_t n;
	size_t i, ip;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		synspec_random(&a, c[i].family, 0);
		synspec_random(&b, c[i].family, 0);
		a.has_mss = 1;
		b.has_mss = c[i].has_mss;
		b.mss = c[i].mss;
		synack_from(&a, &b, c[i].clamp, buf, &n);
		ip = c[i].family == NS_AF_INET ? 20 : 40;
		assert_int_equal(rd16(buf + ip + 22), c[i].want);
	}
}

/* The two SYN-ACKs of a splice agree: A's seq is B's ISN and so on. */
static void test_synack_pair(void **state)
{
	struct synspec a, b;
	struct ns_syn sa, sb;
	struct ns_synack_params pa, pb;
	__u8 ba[PKT_MAX], bb[PKT_MAX], again[PKT_MAX];
	ssize_t na, nb;

	synspec_random(&a, NS_AF_INET, F_ALL);
	synspec_random(&b, NS_AF_INET, F_ALL);
	syn_from_spec(&a, &sa);
	syn_from_spec(&b, &sb);
	params_for(&pa, NS_AF_INET, &sa, &sb);
	params_for(&pb, NS_AF_INET, &sb, &sa);
	na = ns_synack_build(&pa, ba, sizeof(ba));
	nb = ns_synack_build(&pb, bb, sizeof(bb));
	assert_int_equal(rd32(ba + 24), b.isn);
	assert_int_equal(rd32(ba + 28), a.isn + 1);
	assert_int_equal(rd32(bb + 24), a.isn);
	assert_int_equal(rd32(bb + 28), b.isn + 1);
	/* A retransmitted SYN gets the same answer. */
	assert_int_equal(ns_synack_build(&pa, again, sizeof(again)), na);
	assert_memory_equal(again, ba, na);
	assert_true(nb > 0);
}

/* SYN data is never acknowledged; TFO is not echoed. */
static void test_synack_syn_data(void **state)
{
	static const __u8 tfo[] = { 2, 4, 0x05, 0xb4, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8 };
	struct ns_syn sa, sb;
	struct ns_synack_params p;
	__u8 b[PKT_MAX];
	struct seen s;
	size_t len;
	ssize_t n;

	len = tcp_build(b, NS_AF_INET, NS_TCP_SYN, 777, 0, 1000, tfo, sizeof(tfo), 50);
	assert_int_equal(ns_syn_parse(b, len, &sa), 0);
	len = tcp_build(b, NS_AF_INET, NS_TCP_SYN, 888, 0, 2000, tfo, sizeof(tfo), 0);
	assert_int_equal(ns_syn_parse(b, len, &sb), 0);
	params_for(&p, NS_AF_INET, &sa, &sb);
	n = ns_synack_build(&p, b, sizeof(b));
	assert_true(n > 0 && ns_pkt_csum_ok(b, n));
	assert_int_equal(rd32(b + 28), 778);
	read_opts(b + 20, n - 20, &s);
	assert_int_equal(s.other, 0);
	assert_int_equal(s.mss, 1);
}

/* Too small a buffer: -ENOSPC, nothing written past size. */
static void test_synack_nospc(void **state)
{
	struct synspec a, b;
	struct ns_syn sa, sb;
	struct ns_synack_params p;
	__u8 buf[PKT_MAX];
	ssize_t n, size;
	int f;

	for (f = 0; f < 2; f++) {
		__u8 fam = f ? NS_AF_INET6 : NS_AF_INET;

		synspec_random(&a, fam, F_ALL);
		synspec_random(&b, fam, F_ALL);
		syn_from_spec(&a, &sa);
		syn_from_spec(&b, &sb);
		params_for(&p, fam, &sa, &sb);
		n = ns_synack_build(&p, buf, sizeof(buf));
		assert_int_equal(n, (f ? 40 : 20) + 40);
		for (size = 0; size < n; size++) {
			memset(buf, 0xaa, sizeof(buf));
			assert_int_equal(ns_synack_build(&p, buf, size), -ENOSPC);
			for (ssize_t i = size; i < (ssize_t)sizeof(buf); i++)
				assert_int_equal(buf[i], 0xaa);
		}
		assert_int_equal(ns_synack_build(&p, buf, n), n);
	}
}

/* ---- ns_rst_build ---------------------------------------------------- */

static void test_rst(void **state)
{
	static const __u32 acks[] = { 0, 1, 0x80000000, 0xffffffff };
	__u32 relay[4], peer[4];
	struct ns_pkt_info pi;
	__u8 buf[PKT_MAX];
	ssize_t n;
	size_t i, ip;
	int f;

	for (f = 0; f < 2; f++) {
		__u8 fam = f ? NS_AF_INET6 : NS_AF_INET;

		ip = f ? 40 : 20;
		addr_of(fam, relay_addr(fam), relay);
		addr_of(fam, client_addr(fam), peer);
		for (i = 0; i < 4; i++) {
			n = ns_rst_build(fam, relay, htons(7000), peer, htons(50000),
					 acks[i], buf, sizeof(buf));
			assert_int_equal(n, ip + 20);
			assert_true(ns_pkt_csum_ok(buf, n));
			assert_int_equal(ns_pkt_parse(buf, n, &pi), 0);
			assert_int_equal(pi.family, fam);
			assert_memory_equal(pi.saddr, relay, 16);
			assert_memory_equal(pi.daddr, peer, 16);
			assert_int_equal(ntohs(pi.sport), 7000);
			assert_int_equal(ntohs(pi.dport), 50000);
			assert_int_equal(pi.tcp_flags, NS_TCP_RST | NS_TCP_ACK);
			assert_int_equal(pi.seq, 0);
			assert_int_equal(rd32(buf + ip + 8), acks[i]);
			assert_int_equal(rd16(buf + ip + 14), 0);	/* window */
			assert_int_equal(pi.payload_off, n);
			assert_true(buf[f ? 7 : 8] > 1);	/* TTL / hop limit */
		}
		for (i = 0; i < ip + 20; i++)
			assert_int_equal(ns_rst_build(fam, relay, htons(7000), peer,
						      htons(50000), 1, buf, i), -ENOSPC);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_truncated),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_csum_vectors),
		cmocka_unit_test(test_csum_bitflips),
		cmocka_unit_test(test_csum_udp_zero),
		cmocka_unit_test(test_csum_udp_computed_zero),
		cmocka_unit_test(test_csum_fragment),
		cmocka_unit_test(test_syn_each_option),
		cmocka_unit_test(test_syn_ecn),
		cmocka_unit_test(test_syn_md5_ao),
		cmocka_unit_test(test_syn_skipped),
		cmocka_unit_test(test_syn_bad_lengths),
		cmocka_unit_test(test_syn_not_a_syn),
		cmocka_unit_test(test_synack_combinations_v4),
		cmocka_unit_test(test_synack_combinations_v6),
		cmocka_unit_test(test_synack_layout),
		cmocka_unit_test(test_synack_mss),
		cmocka_unit_test(test_synack_pair),
		cmocka_unit_test(test_synack_syn_data),
		cmocka_unit_test(test_synack_nospc),
		cmocka_unit_test(test_rst),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
