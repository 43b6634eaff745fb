// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the control protocol: the input is a byte stream from
 * a peer. It goes through ns_msg_hdr/ns_msg_parse, every getter on every
 * attribute type, the nested SERVICE_INFO lists, a rebuild with the builder
 * (which must parse back to the same values), and ns_conn_next(), both from
 * a direct buffer and through a socketpair in chunks chosen by the input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "conn.h"
#include "proto.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
				     __FILE__, __LINE__); abort(); } } while (0)

/* Every getter on every attribute type; results of the same getter must agree. */
static void getters(const struct ns_msg *m)
{
	static const size_t strsz[] = { 0, 1, 2, 16, 256, 1001, 2000 };
	char str[2000];
	__u8 bin[64], u8, fam;
	__u32 u32, addr[4];
	__u16 u16, port;
	__u64 u64;
	size_t i;
	int a, err;

	for (a = -1; a <= NS_A_MAX; a++) {
		err = ns_msg_u8(m, a, &u8);
		CHECK(err == 0 || err == -ENOENT || err == -EINVAL);
		ns_msg_u16(m, a, &u16);
		ns_msg_u32(m, a, &u32);
		ns_msg_u64(m, a, &u64);
		for (i = 0; i < sizeof(strsz) / sizeof(strsz[0]); i++) {
			err = ns_msg_str(m, a, str, strsz[i]);
			if (!err)
				CHECK(strlen(str) < strsz[i] && strlen(str) > 0);
		}
		ns_msg_bin(m, a, bin, 32);
		ns_msg_bin(m, a, bin, 1);
		ns_msg_bin(m, a, bin, sizeof(bin));
		if (!ns_msg_addr(m, a, &fam, addr, &port))
			CHECK(fam == 2 || fam == 10);
	}
	err = 0;
	if (!ns_msg_u32(m, NS_A_CODE, &u32))
		err = strlen(ns_err_name(u32));
	CHECK(err >= 0);
}

/* Each SERVICE_INFO is a nested list that parsed along with the message. */
static void nested(const struct ns_msg *m)
{
	const __u8 *val;
	size_t pos = 0, prev = 0;
	__u16 len;
	int n = 0;

	while (ns_msg_next(m, NS_A_SERVICE_INFO, &pos, &val, &len) == 1) {
		struct ns_msg sub;

		CHECK(pos > prev && pos <= m->len);
		CHECK(val >= m->body && val + len <= m->body + m->len);
		if (n++ == 0)
			CHECK(val == m->attr[NS_A_SERVICE_INFO]);
		CHECK(ns_msg_parse_nested(&sub, val, len) == 0);
		getters(&sub);
		prev = pos;
	}
	CHECK(n > 0 || !m->attr[NS_A_SERVICE_INFO]);
	for (pos = 0; ns_msg_next(m, NS_A_TEXT, &pos, &val, &len) == 1; )
		CHECK(val == m->attr[NS_A_TEXT]);	/* no repeats */
}

/* Rebuild the known attributes with the builder: it must parse to the same table. */
static void rebuild(const struct ns_msg *m)
{
	struct ns_msg_buf mb;
	struct ns_msg m2;
	size_t off = 0;
	int a;

	CHECK(ns_mb_init(&mb, m->type) == 0);
	while (off + 4 <= m->len) {
		__u16 raw = m->body[off] << 8 | m->body[off + 1];
		__u16 len = m->body[off + 2] << 8 | m->body[off + 3];
		__u16 type = raw & ~NS_ATTR_MUST;

		if (type > 0 && type < NS_A_MAX)
			ns_mb_bin(&mb, raw, m->body + off + 4, len);
		off += 4 + len;
	}
	CHECK(off == m->len);
	CHECK(ns_mb_finish(&mb) == 0);
	CHECK(ns_msg_parse(&m2, mb.data, mb.len) == 0);
	CHECK(m2.type == m->type && m2.version == m->version);
	for (a = 1; a < NS_A_MAX; a++) {
		CHECK(!m->attr[a] == !m2.attr[a] && m->alen[a] == m2.alen[a]);
		if (m->attr[a])
			CHECK(!memcmp(m->attr[a], m2.attr[a], m->alen[a]));
	}
	ns_mb_free(&mb);
}

static void one_message(const __u8 *data, size_t size)
{
	struct ns_msg m;
	__u32 len;
	__u8 type;
	int err, herr = -1;

	if (size >= NS_PROTO_HDR_LEN)
		herr = ns_msg_hdr(data, &type, &len);
	err = ns_msg_parse(&m, data, size);
	CHECK(err == 0 || err == -EINVAL || err == -EOPNOTSUPP || err == -EMSGSIZE ||
	      err == -EPROTONOSUPPORT);
	if (herr < 0 && size >= NS_PROTO_HDR_LEN)
		CHECK(err == herr);
	if (err == -EOPNOTSUPP)
		CHECK(m.bad_attr < NS_ATTR_MUST && (m.bad_attr == 0 || m.bad_attr >= NS_A_MAX));
	if (err)
		return;
	CHECK(size == NS_PROTO_HDR_LEN + len && m.len == len && m.type == type);
	CHECK(ns_msg_type_name(m.type) != NULL);
	getters(&m);
	nested(&m);
	rebuild(&m);
}

/* A stream in a conn's read buffer directly: messages one at a time. */
static void conn_direct(const __u8 *data, size_t size)
{
	struct ns_conn c = { .fd = -1 };
	struct ns_msg m;
	int r, n = 0;

	c.rbuf = malloc(size ? size : 1);
	CHECK(c.rbuf);
	memcpy(c.rbuf, data, size);
	c.rlen = c.rcap = size;
	while ((r = ns_conn_next(&c, &m)) == 1) {
		CHECK(c.rconsumed <= c.rlen);
		getters(&m);
		n++;
	}
	CHECK(r <= 0);
	free(c.rbuf);
}

/* The same stream through a socket, in chunks of 1..16 bytes set by the first byte. */
static void conn_socket(const __u8 *data, size_t size)
{
	struct ns_conn c;
	struct ns_msg m;
	size_t off, chunk;
	int sv[2], r = 0;

	if (size < 1 || size > 100000)
		return;
	chunk = data[0] % 16 + 1;
	data++, size--;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(ns_conn_init(&c, sv[0]) == 0);
	for (off = 0; off < size && r >= 0; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		CHECK(write(sv[1], data + off, n) == (ssize_t)n);
		CHECK(ns_conn_read(&c) == 0);
		CHECK(c.rcap <= NS_PROTO_HDR_LEN + NS_PROTO_MAX_BODY);
		while ((r = ns_conn_next(&c, &m)) == 1)
			;
	}
	close(sv[1]);
	if (r >= 0) {
		r = ns_conn_read(&c);
		CHECK(r == 0 || r == -ECONNRESET);
	}
	ns_conn_free(&c);
}

int LLVMFuzzerTestOneInput(const __u8 *data, size_t size)
{
	one_message(data, size);
	conn_direct(data, size);
	conn_socket(data, size);
	return 0;
}
