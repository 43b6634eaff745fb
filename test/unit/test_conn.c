// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * conn: framing over a socketpair. Messages split at every byte boundary,
 * several in one read, oversized and malformed frames, peer close, and the
 * write queue under back-pressure (EAGAIN) and past its limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "conn.h"

struct pair {
	struct ns_conn c;	/* the side under test */
	int peer;		/* raw socket of the other side */
};

static void pair_open(struct pair *p)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ns_conn_init(&p->c, sv[0]), 0);
	p->peer = sv[1];
}

static void pair_close(struct pair *p)
{
	ns_conn_free(&p->c);
	if (p->peer >= 0)
		close(p->peer);
}

static void write_all(int fd, const void *buf, size_t len)
{
	const __u8 *b = buf;

	while (len) {
		ssize_t n = write(fd, b, len);

		assert_true(n > 0);
		b += n;
		len -= n;
	}
}

/* Message i of a test stream: its type and attributes depend on i. */
static void build(struct ns_msg_buf *mb, int i)
{
	char name[32];

	assert_int_equal(ns_mb_init(mb, NS_MSG_CHALLENGE + i % (NS_MSG_MAX - 1)), 0);
	ns_mb_u32(mb, NS_A_REQ_ID, 1000 + i);
	snprintf(name, sizeof(name), "msg-%d", i);
	ns_mb_str(mb, NS_A_NAME, name);
	if (i % 3 == 0)
		ns_mb_bin(mb, NS_A_TEXT, "padding padding padding", 23);
	assert_int_equal(ns_mb_finish(mb), 0);
}

/* A stream of n messages in one buffer. */
static __u8 *stream(int n, size_t *len)
{
	__u8 *buf = NULL;
	int i;

	*len = 0;
	for (i = 0; i < n; i++) {
		struct ns_msg_buf mb;

		build(&mb, i);
		buf = realloc(buf, *len + mb.len);
		assert_non_null(buf);
		memcpy(buf + *len, mb.data, mb.len);
		*len += mb.len;
		ns_mb_free(&mb);
	}
	return buf;
}

static void check_msg(const struct ns_msg *m, int i)
{
	char name[32], want[32];
	__u32 id;

	assert_int_equal(m->type, NS_MSG_CHALLENGE + i % (NS_MSG_MAX - 1));
	assert_int_equal(ns_msg_u32(m, NS_A_REQ_ID, &id), 0);
	assert_int_equal(id, 1000 + i);
	snprintf(want, sizeof(want), "msg-%d", i);
	assert_int_equal(ns_msg_str(m, NS_A_NAME, name, sizeof(name)), 0);
	assert_string_equal(name, want);
}

/* Reads what is there and checks every complete message; returns how many came. */
static int drain(struct pair *p, int first)
{
	struct ns_msg m;
	int r, got = 0;

	assert_int_equal(ns_conn_read(&p->c), 0);
	while ((r = ns_conn_next(&p->c, &m)) == 1)
		check_msg(&m, first + got++);
	assert_int_equal(r, 0);
	return got;
}

static void test_split_every_boundary(void **state)
{
	const int n = 3;
	size_t len, k;
	__u8 *buf = stream(n, &len);

	for (k = 1; k < len; k++) {
		struct pair p;
		int got;

		pair_open(&p);
		write_all(p.peer, buf, k);
		got = drain(&p, 0);
		write_all(p.peer, buf + k, len - k);
		got += drain(&p, got);
		assert_int_equal(got, n);
		pair_close(&p);
	}
	free(buf);
}

static void test_byte_by_byte(void **state)
{
	const int n = 5;
	size_t len, k;
	__u8 *buf = stream(n, &len);
	struct pair p;
	int got = 0;

	pair_open(&p);
	for (k = 0; k < len; k++) {
		write_all(p.peer, buf + k, 1);
		got += drain(&p, got);
	}
	assert_int_equal(got, n);
	pair_close(&p);
	free(buf);
}

static void test_many_in_one_read(void **state)
{
	const int n = 200;
	size_t len;
	__u8 *buf = stream(n, &len);
	struct pair p;

	pair_open(&p);
	write_all(p.peer, buf, len);
	assert_int_equal(drain(&p, 0), n);
	assert_true(p.c.rcap <= NS_PROTO_HDR_LEN + NS_PROTO_MAX_BODY);
	pair_close(&p);
	free(buf);
}

/* Body of the largest allowed size, then more than the read buffer can hold at once. */
static void test_large_messages(void **state)
{
	static __u8 big[NS_PROTO_MAX_BODY - 4];
	struct ns_msg_buf mb;
	struct ns_msg m;
	struct pair p;
	int i, r, got = 0;
	size_t sent = 0;

	assert_int_equal(ns_mb_init(&mb, NS_MSG_LIST_REPLY), 0);
	memset(big, 'b', sizeof(big));
	ns_mb_bin(&mb, NS_A_TEXT, big, sizeof(big));
	assert_int_equal(ns_mb_finish(&mb), 0);
	pair_open(&p);
	/* three of them, the peer writing as the conn reads */
	for (i = 0; i < 3; i++) {
		size_t off = 0;

		while (off < mb.len) {
			ssize_t n = send(p.peer, mb.data + off, mb.len - off, MSG_DONTWAIT);

			if (n > 0)
				off += n, sent += n;
			assert_int_equal(ns_conn_read(&p.c), 0);
			while ((r = ns_conn_next(&p.c, &m)) == 1) {
				assert_int_equal(m.type, NS_MSG_LIST_REPLY);
				assert_int_equal(m.alen[NS_A_TEXT], sizeof(big));
				got++;
			}
			assert_int_equal(r, 0);
			assert_true(p.c.rcap <= NS_PROTO_HDR_LEN + NS_PROTO_MAX_BODY);
		}
	}
	while (got < 3) {
		assert_int_equal(ns_conn_read(&p.c), 0);
		while ((r = ns_conn_next(&p.c, &m)) == 1)
			got++;
		assert_int_equal(r, 0);
	}
	assert_int_equal(got, 3);
	ns_mb_free(&mb);
	pair_close(&p);
}

static void put_hdr(__u8 *h, __u8 version, __u32 len)
{
	h[0] = version;
	h[1] = NS_MSG_OK;
	h[2] = h[3] = 0;
	len = htonl(len);
	memcpy(h + 4, &len, 4);
}

static void test_bad_frames(void **state)
{
	__u8 h[NS_PROTO_HDR_LEN + 4];
	size_t rcap;
	struct ns_msg m;
	struct pair p;

	/* oversized: refused on the header, without buffering the body */
	pair_open(&p);
	rcap = p.c.rcap;
	put_hdr(h, NS_PROTO_VERSION, NS_PROTO_MAX_BODY + 1);
	write_all(p.peer, h, NS_PROTO_HDR_LEN);
	assert_int_equal(ns_conn_read(&p.c), 0);
	assert_int_equal(ns_conn_next(&p.c, &m), -EMSGSIZE);
	/* the peer goes on sending: nothing more is read or allocated */
	write_all(p.peer, (__u8[4096]){ 0 }, 4096);
	assert_int_equal(ns_conn_read(&p.c), 0);
	assert_int_equal(p.c.rcap, rcap);
	assert_int_equal(p.c.rlen, NS_PROTO_HDR_LEN);
	pair_close(&p);

	/* 4 GiB announced */
	pair_open(&p);
	put_hdr(h, NS_PROTO_VERSION, 0xffffffff);
	write_all(p.peer, h, NS_PROTO_HDR_LEN);
	assert_int_equal(ns_conn_read(&p.c), 0);
	assert_int_equal(ns_conn_next(&p.c, &m), -EMSGSIZE);
	pair_close(&p);

	/* wrong version */
	pair_open(&p);
	put_hdr(h, NS_PROTO_VERSION + 1, 0);
	write_all(p.peer, h, NS_PROTO_HDR_LEN);
	assert_int_equal(ns_conn_read(&p.c), 0);
	assert_int_equal(ns_conn_next(&p.c, &m), -EPROTONOSUPPORT);
	pair_close(&p);

	/* a torn attribute inside a complete frame */
	pair_open(&p);
	put_hdr(h, NS_PROTO_VERSION, 4);
	memcpy(h + NS_PROTO_HDR_LEN, (__u8[]){ 0, NS_A_REQ_ID, 0, 4 }, 4);
	write_all(p.peer, h, sizeof(h));
	assert_int_equal(ns_conn_read(&p.c), 0);
	assert_int_equal(ns_conn_next(&p.c, &m), -EINVAL);
	pair_close(&p);

	/* unknown must-understand attribute */
	pair_open(&p);
	put_hdr(h, NS_PROTO_VERSION, 4);
	memcpy(h + NS_PROTO_HDR_LEN, (__u8[]){ 0x80, 0x77, 0, 0 }, 4);
	write_all(p.peer, h, sizeof(h));
	assert_int_equal(ns_conn_read(&p.c), 0);
	assert_int_equal(ns_conn_next(&p.c, &m), -EOPNOTSUPP);
	assert_int_equal(m.bad_attr, 0x77);
	pair_close(&p);
}

static void test_peer_close(void **state)
{
	size_t len;
	__u8 *buf = stream(2, &len);
	struct ns_msg m;
	struct pair p;

	/* nothing pending, then the peer closes */
	pair_open(&p);
	assert_int_equal(ns_conn_read(&p.c), 0);	/* EAGAIN: nothing yet */
	close(p.peer);
	p.peer = -1;
	assert_int_equal(ns_conn_read(&p.c), -ECONNRESET);
	pair_close(&p);

	/* data and close together: the data first (an ERROR before close is not lost) */
	pair_open(&p);
	write_all(p.peer, buf, len);
	close(p.peer);
	p.peer = -1;
	assert_int_equal(ns_conn_read(&p.c), 0);
	assert_int_equal(ns_conn_next(&p.c, &m), 1);
	check_msg(&m, 0);
	assert_int_equal(ns_conn_next(&p.c, &m), 1);
	check_msg(&m, 1);
	assert_int_equal(ns_conn_next(&p.c, &m), 0);
	assert_int_equal(ns_conn_read(&p.c), -ECONNRESET);
	pair_close(&p);

	/* sending to a closed peer: an error, not SIGPIPE */
	pair_open(&p);
	close(p.peer);
	p.peer = -1;
	{
		struct ns_msg_buf mb;

		build(&mb, 0);
		assert_int_equal(ns_conn_send(&p.c, &mb), -EPIPE);
		ns_mb_free(&mb);
	}
	pair_close(&p);
	free(buf);
}

/* The peer is slow: the queue holds what the socket refuses and flush sends it later. */
static void test_write_queue(void **state)
{
	int sndbuf = 4096, i, n = 0, r, got = 0;
	struct ns_conn rd;
	struct ns_msg m;
	struct pair p;

	pair_open(&p);
	assert_int_equal(setsockopt(p.c.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	assert_false(ns_conn_want_write(&p.c));
	/* queue until the socket pushes back */
	for (i = 0; i < 10000 && !ns_conn_want_write(&p.c); i++, n++) {
		struct ns_msg_buf mb;

		build(&mb, n);
		assert_int_equal(ns_conn_send(&p.c, &mb), 0);
		ns_mb_free(&mb);
	}
	assert_true(ns_conn_want_write(&p.c));
	assert_int_equal(ns_conn_flush(&p.c), 1);	/* EAGAIN: more pending */
	/* more while blocked: queued behind, in order */
	for (i = 0; i < 50; i++, n++) {
		struct ns_msg_buf mb;

		build(&mb, n);
		assert_int_equal(ns_conn_send(&p.c, &mb), 0);
		ns_mb_free(&mb);
	}
	/* the peer reads, we flush, until everything is across */
	assert_int_equal(ns_conn_init(&rd, p.peer), 0);
	p.peer = -1;
	do {
		r = ns_conn_flush(&p.c);
		assert_true(r >= 0);
		assert_int_equal(ns_conn_read(&rd), 0);
		while ((i = ns_conn_next(&rd, &m)) == 1)
			check_msg(&m, got++);
		assert_int_equal(i, 0);
	} while (r == 1 || got < n);
	assert_int_equal(got, n);
	assert_false(ns_conn_want_write(&p.c));
	ns_conn_free(&rd);
	pair_close(&p);
}

/* A peer that never reads: the queue is capped at NS_CONN_WBUF_MAX. */
static void test_write_queue_limit(void **state)
{
	static __u8 big[60000];
	struct ns_msg_buf mb;
	struct pair p;
	int r, i;

	pair_open(&p);
	assert_int_equal(ns_mb_init(&mb, NS_MSG_OK), 0);
	ns_mb_bin(&mb, NS_A_TEXT, big, sizeof(big));
	assert_int_equal(ns_mb_finish(&mb), 0);
	for (i = 0; i < 1000; i++) {
		r = ns_conn_send(&p.c, &mb);
		if (r)
			break;
		assert_true(p.c.wlen - p.c.woff <= NS_CONN_WBUF_MAX);
	}
	assert_int_equal(r, -ENOBUFS);
	assert_true(ns_conn_want_write(&p.c));
	/* an unfinished or failed builder is refused */
	mb.err = -E2BIG;
	assert_int_equal(ns_conn_send(&p.c, &mb), -E2BIG);
	ns_mb_free(&mb);
	pair_close(&p);
}

static void test_conn_free(void **state)
{
	struct ns_conn zero = { 0 };
	int sv[2], open0 = fcntl(0, F_GETFD) >= 0;

	ns_conn_free(&zero);		/* safe on a zeroed conn: fd 0 is not closed */
	assert_int_equal(fcntl(0, F_GETFD) >= 0, open0);
	/* init owns the fd even when it fails */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(ns_conn_init(&zero, sv[0]), 0);
	ns_conn_free(&zero);
	assert_int_equal(fcntl(sv[0], F_GETFD), -1);
	assert_int_equal(ns_conn_init(&zero, sv[0]), -EBADF);
	ns_conn_free(&zero);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_every_boundary),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_many_in_one_read),
		cmocka_unit_test(test_large_messages),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_peer_close),
		cmocka_unit_test(test_write_queue),
		cmocka_unit_test(test_write_queue_limit),
		cmocka_unit_test(test_conn_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
