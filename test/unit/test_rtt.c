// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lib/rtt.c: round-trip probes and the echo responder. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "natsplice_abi.h"
#include "rtt.h"

static const __u8 nonce[NS_RTT_NONCE_LEN] = "0123456789abcdef";

static void test_format(void **state)
{
	__u8 m[NS_RTT_LEN], other[NS_RTT_NONCE_LEN] = "0123456789abcdeX";

	ns_rtt_request(m, nonce);
	assert_memory_equal(m, "NSRQ", 4);
	/* a request is no answer */
	assert_false(ns_rtt_is_answer(m, sizeof(m), nonce));
	assert_int_equal(ns_rtt_answer(m, sizeof(m)), 0);
	assert_true(ns_rtt_is_answer(m, sizeof(m), nonce));
	/* another probe's answer, a short or long one, or one with padding */
	assert_false(ns_rtt_is_answer(m, sizeof(m), other));
	assert_false(ns_rtt_is_answer(m, sizeof(m) - 1, nonce));
	assert_false(ns_rtt_is_answer(m, sizeof(m) + 1, nonce));
	m[NS_RTT_LEN - 1] = 1;
	assert_false(ns_rtt_is_answer(m, sizeof(m), nonce));
	/* an answer is not answered again (no ping-pong between two echo ports) */
	m[NS_RTT_LEN - 1] = 0;
	assert_int_equal(ns_rtt_answer(m, sizeof(m)), -EINVAL);
	/* nor anything of another length */
	ns_rtt_request(m, nonce);
	assert_int_equal(ns_rtt_answer(m, sizeof(m) - 1), -EINVAL);
}

/* The responder answers a request, ignores anything else, and counts. */
static void test_echo(void **state)
{
	__u32 lo[4] = { htonl(0x7f000001) };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ns_loop *l = ns_loop_new();
	struct ns_echo e;
	__u8 m[NS_RTT_LEN + 8];
	int fd;

	assert_non_null(l);
	assert_int_equal(ns_echo_open(&e, l, NS_AF_INET, lo, 0), 0);
	assert_int_equal(getsockname(e.w.fd, (struct sockaddr *)&ss, &sl), 0);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
	ns_rtt_request(m, nonce);
	assert_int_equal(send(fd, m, NS_RTT_LEN, 0), NS_RTT_LEN);
	assert_int_equal(send(fd, "hello", 5, 0), 5);
	e.w.fn(l, &e.w, EPOLLIN);
	assert_int_equal(e.answered, 1);
	assert_int_equal(e.ignored, 1);
	assert_int_equal(recv(fd, m, sizeof(m), MSG_DONTWAIT), NS_RTT_LEN);
	assert_true(ns_rtt_is_answer(m, NS_RTT_LEN, nonce));
	assert_int_equal(recv(fd, m, sizeof(m), MSG_DONTWAIT), -1);
	close(fd);
	ns_echo_close(&e, l);
	assert_int_equal(e.w.fd, -1);
	ns_echo_close(&e, l);	/* twice: harmless */
	ns_loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_echo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
