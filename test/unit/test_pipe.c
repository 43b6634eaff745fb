// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lib/pipe.c: a small message followed by the peer's FIN reaches the other side whole. */
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "pipe.h"

struct bed {
	int src[2], dst[2];	/* [0] the peers, [1] what the pipe reads / writes */
	struct ns_pipe p;
};

static void bed_open(struct bed *b)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b->src), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b->dst), 0);
	fcntl(b->src[1], F_SETFL, O_NONBLOCK);
	fcntl(b->dst[1], F_SETFL, O_NONBLOCK);
	assert_int_equal(ns_pipe_open(&b->p, b->src[1], b->dst[1], 1 << 20), 0);
	/* a small message, and the peer's FIN behind it */
	assert_int_equal(write(b->src[0], "hello", 5), 5);
	assert_int_equal(shutdown(b->src[0], SHUT_WR), 0);
}

static void bed_close(struct bed *b)
{
	ns_pipe_close(&b->p);
	close(b->src[0]);
	close(b->src[1]);
	close(b->dst[0]);
	close(b->dst[1]);
}

/* The other side gets the message and then EOF. */
static void expect_delivered(struct bed *b)
{
	char buf[16];

	assert_int_equal(read(b->dst[0], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(read(b->dst[0], buf, sizeof(buf)), 0);
}

/* The caller saw the peer's close with the data (one edge): one pump call
 * must carry the message and the FIN, or the FIN is stuck for good. */
static void test_fin_behind_small_message(void **state)
{
	struct bed b;
	__u64 moved = 0;

	bed_open(&b);
	b.p.src_hup = true;
	assert_int_equal(ns_pipe_pump(&b.p, &moved, NULL), 0);
	assert_true(b.p.eof);
	assert_true(b.p.done);
	assert_int_equal(moved, 5);
	expect_delivered(&b);
	bed_close(&b);
}

/* Without the close seen, a short read ends the pump (a later byte raises a
 * new edge); the event that reports the close then finishes it. */
static void test_short_read_then_hup(void **state)
{
	struct bed b;
	__u64 moved = 0;

	bed_open(&b);
	assert_int_equal(ns_pipe_pump(&b.p, &moved, NULL), 0);
	assert_int_equal(moved, 5);
	b.p.src_hup = true;
	assert_int_equal(ns_pipe_pump(&b.p, &moved, NULL), 0);
	assert_true(b.p.done);
	expect_delivered(&b);
	bed_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fin_behind_small_message),
		cmocka_unit_test(test_short_read_then_hup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
