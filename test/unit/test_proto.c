// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proto: every message of ns_proto.h built and parsed back, the wire format,
 * the must-understand bit, repeats, nesting, truncation, size limits and the
 * strictness of every getter. Run with SAN=1: truncated messages are parsed
 * from exactly-sized heap copies so any over-read is caught.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "natsplice_abi.h"
#include "proto.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The value kinds of include/ns_proto.h, as this test reads them. */
enum kind { K_NONE, K_U8, K_U16, K_U32, K_U64, K_STR, K_BIN, K_ADDR, K_NEST };

static const enum kind kinds[NS_A_MAX] = {
	[NS_A_NONCE] = K_BIN, [NS_A_VERSION_MIN] = K_U8, [NS_A_VERSION_MAX] = K_U8,
	[NS_A_VERSION] = K_U8, [NS_A_ROLE] = K_U8, [NS_A_NAME] = K_STR,
	[NS_A_PROOF] = K_BIN, [NS_A_LOCAL_ADDR] = K_ADDR, [NS_A_OBSERVED_ADDR] = K_ADDR,
	[NS_A_LISTEN_PORT] = K_U16, [NS_A_RELAY_ADDR] = K_ADDR, [NS_A_HOLD_TIME] = K_U32,
	[NS_A_CODE] = K_U32, [NS_A_TEXT] = K_STR, [NS_A_REQ_ID] = K_U32,
	[NS_A_SERVICE] = K_STR, [NS_A_PROTO] = K_U8, [NS_A_SERVICE_INFO] = K_NEST,
	[NS_A_SESSION] = K_U64, [NS_A_PATH] = K_U8, [NS_A_DIAL] = K_U8,
	[NS_A_PEER_ADDR] = K_ADDR, [NS_A_BIND_PORT] = K_U16, [NS_A_SPLICE_MODE] = K_U8,
	[NS_A_KEY] = K_BIN, [NS_A_FROM_A] = K_ADDR, [NS_A_FROM_B] = K_ADDR,
	[NS_A_TIMEOUT] = K_U32, [NS_A_SPLICE_ID] = K_U32, [NS_A_PORT_A] = K_U16,
	[NS_A_PORT_B] = K_U16, [NS_A_BYTES_AB] = K_U64, [NS_A_BYTES_BA] = K_U64,
	[NS_A_PACKETS] = K_U64, [NS_A_COMPRESS] = K_U8, [NS_A_TOKEN] = K_BIN,
	[NS_A_TRANSPORT] = K_U8, [NS_A_PARENT] = K_U64, [NS_A_PORT] = K_U16, [NS_A_ALG] = K_STR,
	[NS_A_PLAIN] = K_U8, [NS_A_EXPOSE] = K_NEST, [NS_A_PREFIX] = K_STR,
	[NS_A_MAX_CONNS] = K_U32, [NS_A_PUBLIC_ID] = K_U32, [NS_A_PUBLIC_PORTS] = K_STR,
	[NS_A_CLIENT_ADDR] = K_ADDR, [NS_A_PUBLIC_ADDR] = K_ADDR, [NS_A_CLIENT_INFO] = K_U8,
	[NS_A_ECHO_PORT] = K_U16, [NS_A_RELAY_INFO] = K_NEST, [NS_A_RTT_US] = K_U32,
	[NS_A_ALT_ADDR] = K_ADDR, [NS_A_NAT] = K_NEST, [NS_A_MAPPING] = K_U8,
	[NS_A_FILTERING] = K_U8, [NS_A_PRESERVE] = K_U8, [NS_A_HAIRPIN] = K_U8,
	[NS_A_NO_PUNCH] = K_U8, [NS_A_DELAY_MS] = K_U32, [NS_A_PASSIVE_ONLY] = K_U8,
	[NS_A_DISC_PORT] = K_U16, [NS_A_PORT_INDEX] = K_U8, [NS_A_DATA] = K_BIN,
	[NS_A_CONN_ID] = K_U32,
};

/* The attributes that may repeat besides nested lists. */
static bool repeats(int a)
{
	return a == NS_A_PREFIX || a == NS_A_PUBLIC_PORTS;
}

/* Every message with the attributes ns_proto.h gives it (optional ones included). */
static const struct msg_spec {
	int type;
	int attrs[24];		/* 0-terminated */
} specs[] = {
	{ NS_MSG_CHALLENGE, { NS_A_NONCE, NS_A_VERSION_MIN, NS_A_VERSION_MAX } },
	{ NS_MSG_LOGIN, { NS_A_ROLE, NS_A_NAME, NS_A_VERSION, NS_A_PROOF, NS_A_LOCAL_ADDR,
			  NS_A_LISTEN_PORT, NS_A_RELAY_ADDR, NS_A_PUBLIC_PORTS,
			  NS_A_ECHO_PORT, NS_A_PASSIVE_ONLY, NS_A_DISC_PORT } },
	{ NS_MSG_LOGIN_OK, { NS_A_VERSION, NS_A_OBSERVED_ADDR, NS_A_HOLD_TIME } },
	{ NS_MSG_ERROR, { NS_A_REQ_ID, NS_A_SESSION, NS_A_CODE, NS_A_TEXT } },
	{ NS_MSG_HEARTBEAT, { 0 } },
	{ NS_MSG_OK, { NS_A_REQ_ID } },
	{ NS_MSG_PUBLISH, { NS_A_REQ_ID, NS_A_SERVICE, NS_A_PROTO, NS_A_COMPRESS, NS_A_PLAIN,
			    NS_A_EXPOSE } },
	{ NS_MSG_UNPUBLISH, { NS_A_REQ_ID, NS_A_SERVICE } },
	{ NS_MSG_LIST, { NS_A_REQ_ID } },
	{ NS_MSG_LIST_REPLY, { NS_A_REQ_ID, NS_A_SERVICE_INFO } },
	{ NS_MSG_CONNECT, { NS_A_REQ_ID, NS_A_SERVICE, NS_A_PROTO, NS_A_COMPRESS,
			    NS_A_TRANSPORT, NS_A_NO_PUNCH } },
	{ NS_MSG_OFFER, { NS_A_SESSION, NS_A_SERVICE, NS_A_PROTO, NS_A_NAME } },
	{ NS_MSG_ACCEPT, { NS_A_SESSION, NS_A_ALG, NS_A_CLIENT_INFO } },
	{ NS_MSG_REJECT, { NS_A_SESSION, NS_A_CODE, NS_A_TEXT } },
	{ NS_MSG_CONNECT_INFO, { NS_A_SESSION, NS_A_REQ_ID, NS_A_PATH, NS_A_DIAL,
				 NS_A_PEER_ADDR, NS_A_BIND_PORT, NS_A_SPLICE_MODE,
				 NS_A_KEY, NS_A_PROTO, NS_A_COMPRESS, NS_A_TOKEN,
				 NS_A_TRANSPORT, NS_A_PARENT, NS_A_PORT, NS_A_ALG,
				 NS_A_PLAIN, NS_A_SERVICE, NS_A_CLIENT_ADDR,
				 NS_A_PUBLIC_ADDR, NS_A_CLIENT_INFO, NS_A_TIMEOUT,
				 NS_A_DELAY_MS } },
	{ NS_MSG_SPLICE_REQUEST, { NS_A_SESSION, NS_A_PROTO, NS_A_SPLICE_MODE, NS_A_FROM_A,
				   NS_A_FROM_B, NS_A_TIMEOUT } },
	{ NS_MSG_SPLICE_READY, { NS_A_SESSION, NS_A_SPLICE_ID, NS_A_RELAY_ADDR, NS_A_PORT_A,
				 NS_A_PORT_B, NS_A_TOKEN } },
	{ NS_MSG_SPLICE_PEER, { NS_A_SESSION, NS_A_PORT_B } },
	{ NS_MSG_SPLICE_DONE, { NS_A_SESSION, NS_A_SPLICE_ID, NS_A_BYTES_AB, NS_A_BYTES_BA,
				NS_A_PACKETS, NS_A_TEXT } },
	{ NS_MSG_FLOW, { NS_A_REQ_ID, NS_A_PARENT, NS_A_PROTO, NS_A_PORT, NS_A_TRANSPORT,
			 NS_A_NO_PUNCH } },
	{ NS_MSG_PUBLIC_OPEN, { NS_A_REQ_ID, NS_A_PUBLIC_ID, NS_A_PORT, NS_A_PROTO, NS_A_FROM_A,
				NS_A_TIMEOUT, NS_A_PREFIX } },
	{ NS_MSG_PUBLIC_CLOSE, { NS_A_PUBLIC_ID } },
	{ NS_MSG_PUBLIC_INFO, { NS_A_SERVICE, NS_A_PEER_ADDR, NS_A_TEXT } },
	{ NS_MSG_PUBLIC_CLIENT, { NS_A_PUBLIC_ID, NS_A_SPLICE_ID, NS_A_PORT_A,
				  NS_A_PEER_ADDR } },
	{ NS_MSG_PUBLIC_ACCEPT, { NS_A_SPLICE_ID, NS_A_SESSION } },
	{ NS_MSG_PUBLIC_REFUSE, { NS_A_SPLICE_ID, NS_A_CODE } },
	{ NS_MSG_RELAYS, { NS_A_RELAY_INFO } },
	{ NS_MSG_RTT, { NS_A_RELAY_INFO } },
	{ NS_MSG_DISCOVERY, { NS_A_PEER_ADDR, NS_A_ALT_ADDR } },
	{ NS_MSG_NAT_INFO, { NS_A_NAT } },
	{ NS_MSG_DISC_FWD, { NS_A_PROTO, NS_A_PEER_ADDR, NS_A_PORT_INDEX, NS_A_DATA,
			     NS_A_CONN_ID } },
	{ NS_MSG_DISC_SEND, { NS_A_PROTO, NS_A_PEER_ADDR, NS_A_PORT_INDEX, NS_A_DATA,
			      NS_A_CONN_ID } },
};

/* Deterministic test values per attribute type; big enough to catch byte-order bugs. */
static __u64 val_int(int a) { return 0x0102030405060708ull * (__u64)a + 0x8000000000000000ull; }

static void val_str(int a, char *buf, size_t size)
{
	snprintf(buf, size, a == NS_A_SERVICE ? "agent-%d/svc" : "name-%d", a);
}

static void val_bin(int a, __u8 *b)
{
	int i;

	for (i = 0; i < 32; i++)
		b[i] = (__u8)(a * 31 + i);
}

static void val_addr(int a, __u8 *family, __u32 addr[4], __u16 *port)
{
	memset(addr, 0, 16);
	*port = (__u16)(0xa000 + a);
	if (a % 2) {
		*family = NS_AF_INET;
		inet_pton(AF_INET, "192.0.2.7", addr);
	} else {
		*family = NS_AF_INET6;
		inet_pton(AF_INET6, "2001:db8::1:2:3", addr);
	}
}

static void put_service_info(struct ns_msg_buf *mb, int a, int i)
{
	char name[32];
	size_t mark = ns_mb_nest_begin(mb, a);

	snprintf(name, sizeof(name), "agent%d/svc%d", i, i);
	ns_mb_str(mb, NS_A_SERVICE, name);
	ns_mb_u8(mb, NS_A_PROTO, i % 2 ? 17 : 6);
	ns_mb_nest_end(mb, mark);
}

static void put_attr(struct ns_msg_buf *mb, int a)
{
	char s[64];
	__u8 b[32], fam;
	__u32 addr[4];
	__u16 port;
	__u64 v = val_int(a);
	int i;

	switch (kinds[a]) {
	case K_U8: ns_mb_u8(mb, a, (__u8)v); break;
	case K_U16: ns_mb_u16(mb, a, (__u16)v); break;
	case K_U32: ns_mb_u32(mb, a, (__u32)v); break;
	case K_U64: ns_mb_u64(mb, a, v); break;
	case K_STR: val_str(a, s, sizeof(s)); ns_mb_str(mb, a, s); break;
	case K_BIN: val_bin(a, b); ns_mb_bin(mb, a, b, sizeof(b)); break;
	case K_ADDR: val_addr(a, &fam, addr, &port); ns_mb_addr(mb, a, fam, addr, port); break;
	case K_NEST:
		for (i = 0; i < 3; i++)
			put_service_info(mb, a, i);
		break;
	default: fail();
	}
}

static void check_service_infos(const struct ns_msg *m, int a)
{
	const __u8 *val;
	size_t pos = 0;
	__u16 len;
	int i = 0;

	while (ns_msg_next(m, a, &pos, &val, &len) == 1) {
		struct ns_msg sub;
		char want[32], name[64];
		__u8 proto;

		assert_int_equal(ns_msg_parse_nested(&sub, val, len), 0);
		snprintf(want, sizeof(want), "agent%d/svc%d", i, i);
		assert_int_equal(ns_msg_str(&sub, NS_A_SERVICE, name, sizeof(name)), 0);
		assert_string_equal(name, want);
		assert_int_equal(ns_msg_u8(&sub, NS_A_PROTO, &proto), 0);
		assert_int_equal(proto, i % 2 ? 17 : 6);
		i++;
	}
	assert_int_equal(i, 3);
}

static void check_attr(const struct ns_msg *m, int a)
{
	char s[64], got[1024];
	__u8 b[32], gb[32], fam, gfam;
	__u32 addr[4], gaddr[4];
	__u16 port, gport, u16;
	__u64 v = val_int(a), u64;
	__u32 u32;
	__u8 u8;

	switch (kinds[a]) {
	case K_U8:
		assert_int_equal(ns_msg_u8(m, a, &u8), 0);
		assert_int_equal(u8, (__u8)v);
		break;
	case K_U16:
		assert_int_equal(ns_msg_u16(m, a, &u16), 0);
		assert_int_equal(u16, (__u16)v);
		break;
	case K_U32:
		assert_int_equal(ns_msg_u32(m, a, &u32), 0);
		assert_int_equal(u32, (__u32)v);
		break;
	case K_U64:
		assert_int_equal(ns_msg_u64(m, a, &u64), 0);
		assert_true(u64 == v);
		break;
	case K_STR:
		val_str(a, s, sizeof(s));
		assert_int_equal(ns_msg_str(m, a, got, sizeof(got)), 0);
		assert_string_equal(got, s);
		break;
	case K_BIN:
		val_bin(a, b);
		assert_int_equal(ns_msg_bin(m, a, gb, sizeof(gb)), 0);
		assert_memory_equal(gb, b, sizeof(b));
		break;
	case K_ADDR:
		val_addr(a, &fam, addr, &port);
		assert_int_equal(ns_msg_addr(m, a, &gfam, gaddr, &gport), 0);
		assert_int_equal(gfam, fam);
		assert_int_equal(gport, port);
		assert_memory_equal(gaddr, addr, 16);
		break;
	case K_NEST:
		check_service_infos(m, a);
		break;
	default:
		fail();
	}
}

static void build_spec(const struct msg_spec *s, struct ns_msg_buf *mb)
{
	const int *a;

	assert_int_equal(ns_mb_init(mb, s->type), 0);
	for (a = s->attrs; *a; a++)
		put_attr(mb, *a);
	assert_int_equal(ns_mb_finish(mb), 0);
}

static bool in_spec(const struct msg_spec *s, int a)
{
	const int *p;

	for (p = s->attrs; *p; p++)
		if (*p == a)
			return true;
	return false;
}

static void test_round_trip_all_messages(void **state)
{
	size_t i;
	int a;

	for (i = 0; i < ARRAY_SIZE(specs); i++) {
		struct ns_msg_buf mb;
		struct ns_msg m;
		const int *p;

		build_spec(&specs[i], &mb);
		assert_int_equal(ns_msg_parse(&m, mb.data, mb.len), 0);
		assert_int_equal(m.version, NS_PROTO_VERSION);
		assert_int_equal(m.type, specs[i].type);
		assert_int_equal(m.len, mb.len - NS_PROTO_HDR_LEN);
		for (p = specs[i].attrs; *p; p++)
			check_attr(&m, *p);
		/* and nothing else */
		for (a = 1; a < NS_A_MAX; a++)
			if (!in_spec(&specs[i], a))
				assert_null(m.attr[a]);
		assert_string_not_equal(ns_msg_type_name(specs[i].type), "UNKNOWN");
		ns_mb_free(&mb);
	}
	/* every message type of the enum has a spec */
	assert_int_equal(ARRAY_SIZE(specs), NS_MSG_MAX - 1);
}

/* The exact bytes: everything big-endian, no padding. */
static void test_wire_format(void **state)
{
	static const __u8 want[] = {
		1, NS_MSG_CONNECT_INFO, 0, 0, 0, 0, 0, 46,
		0, NS_A_SESSION, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
		0, NS_A_BIND_PORT, 0, 2, 0x12, 0x34,
		0x80, NS_A_PEER_ADDR, 0, 20, 2, 0, 0xab, 0xcd, 192, 0, 2, 1,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, NS_A_DIAL, 0, 0,
	};
	struct ns_msg_buf mb;
	__u32 addr[4] = { htonl(0xc0000201), 1, 2, 3 };	/* v4: the rest is not sent */

	assert_int_equal(ns_mb_init(&mb, NS_MSG_CONNECT_INFO), 0);
	ns_mb_u64(&mb, NS_A_SESSION, 0x0102030405060708ull);
	ns_mb_u16(&mb, NS_A_BIND_PORT, 0x1234);
	ns_mb_addr(&mb, NS_A_PEER_ADDR | NS_ATTR_MUST, NS_AF_INET, addr, 0xabcd);
	ns_mb_bin(&mb, NS_A_DIAL, NULL, 0);
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(mb.len, sizeof(want));
	assert_memory_equal(mb.data, want, sizeof(want));
	ns_mb_free(&mb);
	ns_mb_free(&mb);	/* safe twice: the first one zeroed it */
}

/* A message from raw attribute bytes. */
static size_t raw_msg(__u8 *buf, const __u8 *attrs, size_t len)
{
	__u32 l = htonl(len);

	buf[0] = NS_PROTO_VERSION;
	buf[1] = NS_MSG_OK;
	buf[2] = buf[3] = 0;
	memcpy(buf + 4, &l, 4);
	memcpy(buf + NS_PROTO_HDR_LEN, attrs, len);
	return NS_PROTO_HDR_LEN + len;
}

static void test_must_understand(void **state)
{
	static const __u8 unknown_must[] = {
		0, NS_A_REQ_ID, 0, 4, 0, 0, 0, 9,
		0x80, 200, 0, 3, 'x', 'y', 'z',
	};
	static const __u8 unknown_opt[] = {
		0x00, 200, 0, 3, 'x', 'y', 'z',
		0x7f, 0xff, 0, 0,
		0, NS_A_MAX, 0, 1, 5,
		0, 0, 0, 1, 5,		/* type 0 is not an attribute either */
		0, NS_A_REQ_ID, 0, 4, 0, 0, 0, 9,
	};
	static const __u8 known_must[] = {
		0x80, NS_A_REQ_ID, 0, 4, 0, 0, 0, 9,
		0x80, NS_A_SERVICE, 0, 1, 's',
	};
	static const __u8 zero_must[] = { 0x80, 0, 0, 0 };
	struct ns_msg m;
	__u8 buf[128];
	char s[8];
	__u32 v;

	assert_int_equal(ns_msg_parse(&m, buf, raw_msg(buf, unknown_must, sizeof(unknown_must))),
			 -EOPNOTSUPP);
	assert_int_equal(m.bad_attr, 200);

	assert_int_equal(ns_msg_parse(&m, buf, raw_msg(buf, unknown_opt, sizeof(unknown_opt))), 0);
	assert_int_equal(ns_msg_u32(&m, NS_A_REQ_ID, &v), 0);
	assert_int_equal(v, 9);

	assert_int_equal(ns_msg_parse(&m, buf, raw_msg(buf, known_must, sizeof(known_must))), 0);
	assert_int_equal(ns_msg_u32(&m, NS_A_REQ_ID, &v), 0);
	assert_int_equal(v, 9);
	assert_int_equal(ns_msg_str(&m, NS_A_SERVICE, s, sizeof(s)), 0);
	assert_string_equal(s, "s");

	assert_int_equal(ns_msg_parse(&m, buf, raw_msg(buf, zero_must, sizeof(zero_must))),
			 -EOPNOTSUPP);
	assert_int_equal(m.bad_attr, 0);
}

/* Each attribute twice: only nested lists, PREFIX and PUBLIC_PORTS may repeat; the
 * MUST bit does not hide a repeat. */
static void test_repeats(void **state)
{
	int a, must;

	for (a = 1; a < NS_A_MAX; a++) {
		for (must = 0; must < 2; must++) {
			struct ns_msg_buf mb;
			struct ns_msg m;
			__u8 v[NS_ADDR_ATTR_LEN] = { NS_AF_INET };

			assert_int_equal(ns_mb_init(&mb, NS_MSG_OK), 0);
			if (kinds[a] == K_NEST) {
				put_attr(&mb, a);
			} else {
				ns_mb_bin(&mb, a, v, sizeof(v));
				ns_mb_bin(&mb, a | (must ? NS_ATTR_MUST : 0), v, sizeof(v));
			}
			assert_int_equal(ns_mb_finish(&mb), 0);
			assert_int_equal(ns_msg_parse(&m, mb.data, mb.len),
					 kinds[a] == K_NEST || repeats(a) ? 0 : -EINVAL);
			ns_mb_free(&mb);
		}
	}
	/* an unknown optional attribute may come twice: it is skipped */
	{
		static const __u8 attrs[] = { 0, 100, 0, 0, 0, 100, 0, 0 };
		struct ns_msg m;
		__u8 buf[32];

		assert_int_equal(ns_msg_parse(&m, buf, raw_msg(buf, attrs, sizeof(attrs))), 0);
	}
}

/* A public port's EXPOSE: a nested list whose PREFIX repeats, each read in order. */
static void test_expose(void **state)
{
	static const char *const prefixes[] = { "192.0.2.0/24", "2001:db8::/32" };
	struct ns_msg_buf mb;
	struct ns_msg m, sub;
	const __u8 *val;
	size_t pos = 0, mark;
	__u16 len, port;
	__u32 conns;
	int i = 0;

	assert_int_equal(ns_mb_init(&mb, NS_MSG_PUBLISH), 0);
	ns_mb_str(&mb, NS_A_SERVICE, "web");
	mark = ns_mb_nest_begin(&mb, NS_A_EXPOSE);
	ns_mb_u16(&mb, NS_A_PORT, 8080);
	ns_mb_str(&mb, NS_A_PREFIX, prefixes[0]);
	ns_mb_str(&mb, NS_A_PREFIX, prefixes[1]);
	ns_mb_u32(&mb, NS_A_MAX_CONNS, 5);
	ns_mb_nest_end(&mb, mark);
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(ns_msg_parse(&m, mb.data, mb.len), 0);
	assert_non_null(m.attr[NS_A_EXPOSE]);
	assert_int_equal(ns_msg_parse_nested(&sub, m.attr[NS_A_EXPOSE], m.alen[NS_A_EXPOSE]), 0);
	assert_int_equal(ns_msg_u16(&sub, NS_A_PORT, &port), 0);
	assert_int_equal(port, 8080);
	assert_int_equal(ns_msg_u32(&sub, NS_A_MAX_CONNS, &conns), 0);
	assert_int_equal(conns, 5);
	while (ns_msg_next(&sub, NS_A_PREFIX, &pos, &val, &len) == 1) {
		assert_true(i < 2);
		assert_int_equal(len, strlen(prefixes[i]));
		assert_memory_equal(val, prefixes[i], len);
		i++;
	}
	assert_int_equal(i, 2);
	ns_mb_free(&mb);
}

static void test_nested(void **state)
{
	struct ns_msg_buf mb;
	struct ns_msg m, sub;
	const __u8 *val;
	size_t pos = 0, mark;
	__u16 len;
	__u32 reqid;

	/* LIST_REPLY with three entries, then an empty one */
	assert_int_equal(ns_mb_init(&mb, NS_MSG_LIST_REPLY), 0);
	ns_mb_u32(&mb, NS_A_REQ_ID, 77);
	put_attr(&mb, NS_A_SERVICE_INFO);
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(ns_msg_parse(&m, mb.data, mb.len), 0);
	assert_int_equal(ns_msg_u32(&m, NS_A_REQ_ID, &reqid), 0);
	assert_int_equal(reqid, 77);
	check_service_infos(&m, NS_A_SERVICE_INFO);
	/* the table keeps the first occurrence */
	assert_int_equal(ns_msg_next(&m, NS_A_SERVICE_INFO, &pos, &val, &len), 1);
	assert_ptr_equal(val, m.attr[NS_A_SERVICE_INFO]);
	assert_int_equal(len, m.alen[NS_A_SERVICE_INFO]);
	ns_mb_free(&mb);

	/* no entries: ns_msg_next says so at once */
	assert_int_equal(ns_mb_init(&mb, NS_MSG_LIST_REPLY), 0);
	ns_mb_u32(&mb, NS_A_REQ_ID, 1);
	mark = ns_mb_nest_begin(&mb, NS_A_SERVICE_INFO);
	ns_mb_nest_end(&mb, mark);
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(ns_msg_parse(&m, mb.data, mb.len), 0);
	pos = 0;
	assert_int_equal(ns_msg_next(&m, NS_A_SERVICE_INFO, &pos, &val, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(ns_msg_parse_nested(&sub, val, len), 0);
	assert_int_equal(ns_msg_str(&sub, NS_A_SERVICE, (char[8]){ 0 }, 8), -ENOENT);
	assert_int_equal(ns_msg_next(&m, NS_A_SERVICE_INFO, &pos, &val, &len), 0);
	pos = 0;
	assert_int_equal(ns_msg_next(&m, NS_A_PROTO, &pos, &val, &len), 0);
	ns_mb_free(&mb);

	/* the nested list is checked like a message: truncated, unknown MUST, repeat, nesting */
	{
		static const struct {
			__u8 attrs[24];
			size_t len;
			int err;
		} bad[] = {
			{ { 0, NS_A_SERVICE_INFO, 0, 5, 0, NS_A_PROTO, 0, 2, 6 }, 9, -EINVAL },
			{ { 0, NS_A_SERVICE_INFO, 0, 3, 0, NS_A_PROTO, 0 }, 7, -EINVAL },
			{ { 0, NS_A_SERVICE_INFO, 0, 4, 0x80, 99, 0, 0 }, 8, -EOPNOTSUPP },
			{ { 0, NS_A_SERVICE_INFO, 0, 10, 0, NS_A_PROTO, 0, 1, 6,
			    0, NS_A_PROTO, 0, 1, 6 }, 14, -EINVAL },
			{ { 0, NS_A_SERVICE_INFO, 0, 4, 0, NS_A_SERVICE_INFO, 0, 0 }, 8, -EINVAL },
		};
		__u8 buf[64];
		size_t i;

		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			size_t n = raw_msg(buf, bad[i].attrs, bad[i].len);

			assert_int_equal(ns_msg_parse(&m, buf, n), bad[i].err);
			assert_int_equal(ns_msg_parse_nested(&sub, buf + NS_PROTO_HDR_LEN + 4,
							     bad[i].len - 4),
					 bad[i].err);
		}
		assert_int_equal(m.bad_attr, 0);
		assert_int_equal(ns_msg_parse(&m, buf, raw_msg(buf, bad[2].attrs, bad[2].len)),
				 -EOPNOTSUPP);
		assert_int_equal(m.bad_attr, 99);
	}
}

/* Attribute boundaries of a body, to tell a clean cut from a torn attribute. */
static bool at_boundary(const __u8 *body, size_t len, size_t cut)
{
	size_t off = 0;

	while (off < cut) {
		__u16 alen;

		memcpy(&alen, body + off + 2, 2);
		off += 4 + ntohs(alen);
	}
	return off == cut && cut <= len;
}

static void test_truncation(void **state)
{
	size_t i, k;

	for (i = 0; i < ARRAY_SIZE(specs); i++) {
		struct ns_msg_buf mb;

		build_spec(&specs[i], &mb);
		for (k = 0; k < mb.len; k++) {
			__u8 *cut = malloc(k ? k : 1);
			struct ns_msg m;
			__u32 l;
			int err;

			/* a prefix, header unchanged: the length does not match */
			memcpy(cut, mb.data, k);
			assert_int_equal(ns_msg_parse(&m, cut, k), -EINVAL);
			/* a prefix whose header agrees: fine only at an attribute boundary */
			if (k >= NS_PROTO_HDR_LEN) {
				l = htonl(k - NS_PROTO_HDR_LEN);
				memcpy(cut + 4, &l, 4);
				err = ns_msg_parse(&m, cut, k);
				if (at_boundary(mb.data + NS_PROTO_HDR_LEN,
						mb.len - NS_PROTO_HDR_LEN, k - NS_PROTO_HDR_LEN))
					assert_int_equal(err, 0);
				else
					assert_int_equal(err, -EINVAL);
			}
			free(cut);
		}
		ns_mb_free(&mb);
	}
}

static void test_header(void **state)
{
	__u8 hdr[NS_PROTO_HDR_LEN] = { NS_PROTO_VERSION, NS_MSG_HEARTBEAT };
	struct ns_msg m;
	__u32 len, l;
	__u8 type;

	assert_int_equal(ns_msg_hdr(hdr, &type, &len), 0);
	assert_int_equal(type, NS_MSG_HEARTBEAT);
	assert_int_equal(len, 0);
	assert_int_equal(ns_msg_parse(&m, hdr, sizeof(hdr)), 0);
	assert_int_equal(m.type, NS_MSG_HEARTBEAT);

	l = htonl(NS_PROTO_MAX_BODY);
	memcpy(hdr + 4, &l, 4);
	assert_int_equal(ns_msg_hdr(hdr, &type, &len), 0);
	assert_int_equal(len, NS_PROTO_MAX_BODY);

	/* oversized: refused from the header alone (the body is not even there) */
	l = htonl(NS_PROTO_MAX_BODY + 1);
	memcpy(hdr + 4, &l, 4);
	assert_int_equal(ns_msg_hdr(hdr, &type, &len), -EMSGSIZE);
	assert_int_equal(ns_msg_parse(&m, hdr, sizeof(hdr)), -EMSGSIZE);
	memset(hdr + 4, 0xff, 4);
	assert_int_equal(ns_msg_hdr(hdr, &type, &len), -EMSGSIZE);

	memset(hdr + 4, 0, 4);
	hdr[0] = 2;
	assert_int_equal(ns_msg_hdr(hdr, &type, &len), -EPROTONOSUPPORT);
	assert_int_equal(ns_msg_parse(&m, hdr, sizeof(hdr)), -EPROTONOSUPPORT);
	hdr[0] = 0;
	assert_int_equal(ns_msg_hdr(hdr, &type, &len), -EPROTONOSUPPORT);

	/* flags are carried */
	hdr[0] = NS_PROTO_VERSION;
	hdr[2] = 0x12;
	hdr[3] = 0x34;
	assert_int_equal(ns_msg_parse(&m, hdr, sizeof(hdr)), 0);
	assert_int_equal(m.flags, 0x1234);
	/* more bytes than the header says */
	assert_int_equal(ns_msg_parse(&m, (__u8[9]){ NS_PROTO_VERSION, 1 }, 9), -EINVAL);
}

static void test_builder_limits(void **state)
{
	static __u8 big[NS_PROTO_MAX_BODY];
	struct ns_msg_buf mb, zero = { 0 };
	struct ns_msg m;
	size_t mark;

	/* a body of exactly NS_PROTO_MAX_BODY bytes */
	assert_int_equal(ns_mb_init(&mb, NS_MSG_OK), 0);
	ns_mb_bin(&mb, 100, big, NS_PROTO_MAX_BODY - 4 - 5);
	ns_mb_u8(&mb, NS_A_PROTO, 6);
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(mb.len, NS_PROTO_HDR_LEN + NS_PROTO_MAX_BODY);
	assert_int_equal(ns_msg_parse(&m, mb.data, mb.len), 0);
	/* one byte more: sticky -E2BIG */
	ns_mb_u8(&mb, NS_A_DIAL, 1);
	assert_int_equal(ns_mb_finish(&mb), -E2BIG);
	ns_mb_u8(&mb, NS_A_DIAL, 1);
	assert_int_equal(mb.err, -E2BIG);
	ns_mb_free(&mb);

	/* the largest value that fits; one larger than a u16 length */
	assert_int_equal(ns_mb_init(&mb, NS_MSG_OK), 0);
	ns_mb_bin(&mb, NS_A_TEXT, big, NS_PROTO_MAX_BODY - 4);
	assert_int_equal(ns_mb_finish(&mb), 0);
	ns_mb_free(&mb);
	assert_int_equal(ns_mb_init(&mb, NS_MSG_OK), 0);
	ns_mb_bin(&mb, NS_A_TEXT, big, 65536);
	assert_int_equal(ns_mb_finish(&mb), -E2BIG);
	ns_mb_free(&mb);

	/* a nest past the body limit (and its u16 length) */
	assert_int_equal(ns_mb_init(&mb, NS_MSG_LIST_REPLY), 0);
	mark = ns_mb_nest_begin(&mb, NS_A_SERVICE_INFO);
	ns_mb_bin(&mb, 100, big, 40000);
	ns_mb_bin(&mb, 101, big, 30000);
	ns_mb_nest_end(&mb, mark);
	assert_int_equal(ns_mb_finish(&mb), -E2BIG);
	ns_mb_free(&mb);

	/* empty or absent strings and bad address families are refused at the source */
	assert_int_equal(ns_mb_init(&mb, NS_MSG_OK), 0);
	ns_mb_str(&mb, NS_A_NAME, "");
	assert_int_equal(ns_mb_finish(&mb), -EINVAL);
	ns_mb_free(&mb);
	assert_int_equal(ns_mb_init(&mb, NS_MSG_OK), 0);
	ns_mb_addr(&mb, NS_A_PEER_ADDR, 3, (__u32[4]){ 0 }, 1);
	assert_int_equal(ns_mb_finish(&mb), -EINVAL);
	ns_mb_free(&mb);

	/* the buffer grows */
	assert_int_equal(ns_mb_init(&mb, NS_MSG_OK), 0);
	ns_mb_bin(&mb, NS_A_TEXT, big, 5000);
	assert_true(mb.cap >= mb.len);
	assert_int_equal(ns_mb_finish(&mb), 0);
	ns_mb_free(&mb);
	ns_mb_free(&zero);
}

/* Build one attribute with raw bytes and parse the message. */
static void one_attr(struct ns_msg_buf *mb, struct ns_msg *m, int a, const void *v, size_t len)
{
	assert_int_equal(ns_mb_init(mb, NS_MSG_OK), 0);
	ns_mb_bin(mb, a, v, len);
	assert_int_equal(ns_mb_finish(mb), 0);
	assert_int_equal(ns_msg_parse(m, mb->data, mb->len), 0);
}

static void test_getter_lengths(void **state)
{
	static const struct {
		int attr;
		size_t len;
	} good[] = {
		{ NS_A_VERSION, 1 }, { NS_A_PORT_A, 2 }, { NS_A_REQ_ID, 4 },
		{ NS_A_SESSION, 8 }, { NS_A_NONCE, 32 }, { NS_A_PEER_ADDR, 20 },
	};
	__u8 zero[64] = { 0 }, u8, out[64], fam;
	struct ns_msg_buf mb;
	struct ns_msg m;
	__u32 u32, addr[4];
	__u16 u16, port;
	__u64 u64;
	size_t i, len;

	zero[0] = NS_AF_INET;	/* a valid ADDR at the right length */
	for (i = 0; i < ARRAY_SIZE(good); i++) {
		for (len = 0; len <= 33; len++) {
			int want = len == good[i].len ? 0 : -EINVAL;
			int a = good[i].attr;

			one_attr(&mb, &m, a, zero, len);
			switch (kinds[a]) {
			case K_U8: assert_int_equal(ns_msg_u8(&m, a, &u8), want); break;
			case K_U16: assert_int_equal(ns_msg_u16(&m, a, &u16), want); break;
			case K_U32: assert_int_equal(ns_msg_u32(&m, a, &u32), want); break;
			case K_U64: assert_int_equal(ns_msg_u64(&m, a, &u64), want); break;
			case K_BIN: assert_int_equal(ns_msg_bin(&m, a, out, 32), want); break;
			case K_ADDR:
				assert_int_equal(ns_msg_addr(&m, a, &fam, addr, &port), want);
				break;
			default: fail();
			}
			ns_mb_free(&mb);
		}
	}
	/* absent; out of range */
	one_attr(&mb, &m, NS_A_REQ_ID, zero, 4);
	assert_int_equal(ns_msg_u32(&m, NS_A_HOLD_TIME, &u32), -ENOENT);
	assert_int_equal(ns_msg_u8(&m, NS_A_PROTO, &u8), -ENOENT);
	assert_int_equal(ns_msg_u16(&m, NS_A_PORT_B, &u16), -ENOENT);
	assert_int_equal(ns_msg_u64(&m, NS_A_SESSION, &u64), -ENOENT);
	assert_int_equal(ns_msg_bin(&m, NS_A_KEY, out, 32), -ENOENT);
	assert_int_equal(ns_msg_addr(&m, NS_A_FROM_A, &fam, addr, &port), -ENOENT);
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, (char *)out, sizeof(out)), -ENOENT);
	assert_int_equal(ns_msg_u32(&m, NS_A_MAX, &u32), -EINVAL);
	assert_int_equal(ns_msg_u32(&m, 0, &u32), -EINVAL);
	assert_int_equal(ns_msg_u32(&m, -1, &u32), -EINVAL);
	ns_mb_free(&mb);
}

static void test_addr(void **state)
{
	__u8 v[NS_ADDR_ATTR_LEN], fam;
	__u32 addr[4], in[4] = { 0 };
	struct ns_msg_buf mb;
	struct ns_msg m;
	__u16 port;
	int i;

	/* IPv4 */
	inet_pton(AF_INET, "198.51.100.9", in);
	assert_int_equal(ns_mb_init(&mb, NS_MSG_LOGIN_OK), 0);
	ns_mb_addr(&mb, NS_A_OBSERVED_ADDR, NS_AF_INET, in, 40000);
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(ns_msg_parse(&m, mb.data, mb.len), 0);
	assert_int_equal(ns_msg_addr(&m, NS_A_OBSERVED_ADDR, &fam, addr, &port), 0);
	assert_int_equal(fam, NS_AF_INET);
	assert_int_equal(port, 40000);
	assert_memory_equal(addr, in, 16);
	memcpy(v, m.attr[NS_A_OBSERVED_ADDR], sizeof(v));
	ns_mb_free(&mb);
	assert_int_equal(v[2] << 8 | v[3], 40000);

	/* IPv6 */
	inet_pton(AF_INET6, "2001:db8:ffff::fe", in);
	assert_int_equal(ns_mb_init(&mb, NS_MSG_LOGIN_OK), 0);
	ns_mb_addr(&mb, NS_A_OBSERVED_ADDR, NS_AF_INET6, in, 1);
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(ns_msg_parse(&m, mb.data, mb.len), 0);
	assert_int_equal(ns_msg_addr(&m, NS_A_OBSERVED_ADDR, &fam, addr, &port), 0);
	assert_int_equal(fam, NS_AF_INET6);
	assert_int_equal(port, 1);
	assert_memory_equal(addr, in, 16);
	ns_mb_free(&mb);

	/* families other than 2 and 10 */
	for (i = 0; i < 256; i++) {
		memset(v, 0, sizeof(v));
		v[0] = i;
		one_attr(&mb, &m, NS_A_PEER_ADDR, v, sizeof(v));
		assert_int_equal(ns_msg_addr(&m, NS_A_PEER_ADDR, &fam, addr, &port),
				 i == NS_AF_INET || i == NS_AF_INET6 ? 0 : -EINVAL);
		ns_mb_free(&mb);
	}
	/* IPv4 with anything in address bytes 4..15; IPv6 takes them all */
	for (i = 8; i < NS_ADDR_ATTR_LEN; i++) {
		memset(v, 0, sizeof(v));
		v[0] = NS_AF_INET;
		v[i] = 1;
		one_attr(&mb, &m, NS_A_PEER_ADDR, v, sizeof(v));
		assert_int_equal(ns_msg_addr(&m, NS_A_PEER_ADDR, &fam, addr, &port), -EINVAL);
		ns_mb_free(&mb);
		v[0] = NS_AF_INET6;
		one_attr(&mb, &m, NS_A_PEER_ADDR, v, sizeof(v));
		assert_int_equal(ns_msg_addr(&m, NS_A_PEER_ADDR, &fam, addr, &port), 0);
		ns_mb_free(&mb);
	}
}

static void test_str(void **state)
{
	static char s[1100];
	char out[1100];
	struct ns_msg_buf mb;
	struct ns_msg m;

	/* empty; embedded NUL anywhere; a NUL terminator sent along */
	one_attr(&mb, &m, NS_A_NAME, "", 0);
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, out, sizeof(out)), -EINVAL);
	ns_mb_free(&mb);
	one_attr(&mb, &m, NS_A_NAME, "a\0b", 3);
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, out, sizeof(out)), -EINVAL);
	ns_mb_free(&mb);
	one_attr(&mb, &m, NS_A_NAME, "\0ab", 3);
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, out, sizeof(out)), -EINVAL);
	ns_mb_free(&mb);
	one_attr(&mb, &m, NS_A_NAME, "ab", 3);
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, out, sizeof(out)), -EINVAL);
	ns_mb_free(&mb);

	/* the caller's buffer: size - 1 characters fit, size do not */
	one_attr(&mb, &m, NS_A_NAME, "abcd", 4);
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, out, 5), 0);
	assert_string_equal(out, "abcd");
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, out, 4), -ENOSPC);
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, out, 0), -ENOSPC);
	ns_mb_free(&mb);

	/* 1..255 bytes; TEXT up to 1000 */
	memset(s, 'x', sizeof(s));
	one_attr(&mb, &m, NS_A_NAME, s, 255);
	assert_int_equal(ns_msg_str(&m, NS_A_NAME, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 255);
	ns_mb_free(&mb);
	one_attr(&mb, &m, NS_A_SERVICE, s, 256);
	assert_int_equal(ns_msg_str(&m, NS_A_SERVICE, out, sizeof(out)), -EINVAL);
	ns_mb_free(&mb);
	one_attr(&mb, &m, NS_A_TEXT, s, 1000);
	assert_int_equal(ns_msg_str(&m, NS_A_TEXT, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 1000);
	ns_mb_free(&mb);
	one_attr(&mb, &m, NS_A_TEXT, s, 1001);
	assert_int_equal(ns_msg_str(&m, NS_A_TEXT, out, sizeof(out)), -EINVAL);
	ns_mb_free(&mb);

	/* UTF-8 passes through untouched */
	assert_int_equal(ns_mb_init(&mb, NS_MSG_ERROR), 0);
	ns_mb_str(&mb, NS_A_TEXT, "d\xc3\xa9j\xc3\xa0 vu");
	assert_int_equal(ns_mb_finish(&mb), 0);
	assert_int_equal(ns_msg_parse(&m, mb.data, mb.len), 0);
	assert_int_equal(ns_msg_str(&m, NS_A_TEXT, out, sizeof(out)), 0);
	assert_string_equal(out, "d\xc3\xa9j\xc3\xa0 vu");
	ns_mb_free(&mb);
}

static void test_names(void **state)
{
	int i;

	assert_string_equal(ns_msg_type_name(NS_MSG_CHALLENGE), "CHALLENGE");
	assert_string_equal(ns_msg_type_name(NS_MSG_SPLICE_DONE), "SPLICE_DONE");
	assert_string_equal(ns_msg_type_name(0), "UNKNOWN");
	assert_string_equal(ns_msg_type_name(NS_MSG_MAX), "UNKNOWN");
	assert_string_equal(ns_msg_type_name(-5), "UNKNOWN");
	for (i = 1; i < NS_MSG_MAX; i++)
		assert_string_not_equal(ns_msg_type_name(i), "UNKNOWN");
	assert_string_equal(ns_err_name(NS_ERR_MALFORMED), "MALFORMED");
	assert_string_equal(ns_err_name(NS_ERR_DUPLICATE), "DUPLICATE");
	assert_string_equal(ns_err_name(0), "UNKNOWN");
	assert_string_equal(ns_err_name(NS_ERR_BUSY), "BUSY");
	assert_string_equal(ns_err_name(NS_ERR_LIMIT + 1), "UNKNOWN");
	for (i = NS_ERR_MALFORMED; i <= NS_ERR_LIMIT; i++)
		assert_string_not_equal(ns_err_name(i), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_all_messages),
		cmocka_unit_test(test_wire_format),
		cmocka_unit_test(test_must_understand),
		cmocka_unit_test(test_repeats),
		cmocka_unit_test(test_expose),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_builder_limits),
		cmocka_unit_test(test_getter_lengths),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_str),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
