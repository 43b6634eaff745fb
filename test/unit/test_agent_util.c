// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agent: reconnect backoff bounds, UDP framing of tunnels, address helpers,
 * the client rate and target size of tunnel pools. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

/* The agent's pure helpers are built into this test directly. */
#include "../../agent/agent_util.c"

/* The pool's retry delay (lib/util.c's curve with the agent's bounds). */
static __u32 backoff(unsigned int attempt, __u32 rnd)
{
	return ns_backoff_ms(attempt, rnd, AGENT_BACKOFF_MIN_MS, AGENT_BACKOFF_MAX_MS);
}

static void test_backoff_bounds(void **state)
{
	static const __u32 base[] = { 500, 1000, 2000, 4000, 5000, 5000, 5000 };
	__u32 rnds[] = { 0, 1, 0x40000000u, 0x80000000u, 0xc0000000u, 0xffffffffu };
	unsigned int attempt;
	size_t i;

	for (attempt = 0; attempt < 7; attempt++) {
		__u32 b = base[attempt];

		for (i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
			__u32 ms = backoff(attempt, rnds[i]);

			/* +-25 % around the doubling base, capped at 5 s */
			assert_true(ms >= b * 3 / 4);
			assert_true(ms < b * 5 / 4);
		}
		assert_int_equal(backoff(attempt, 0), b * 3 / 4);
		assert_int_equal(backoff(attempt, 0x80000000u), b);
		assert_int_equal(backoff(attempt, 0xffffffffu), b * 5 / 4 - 1);
	}
	/* huge attempt counts neither overflow nor exceed the cap */
	assert_int_equal(backoff(1000000, 0x80000000u), 5000);
	assert_int_equal(backoff(~0u, 0xffffffffu), 6249);
	assert_int_equal(backoff(0, 0x80000000u), AGENT_BACKOFF_MIN_MS);
}

/* The jitter really spreads: not all agents retry in lock step. */
static void test_backoff_jitter_spreads(void **state)
{
	__u32 lo = ~0u, hi = 0, r = 12345;
	int i;

	for (i = 0; i < 1000; i++) {
		__u32 ms;

		r = r * 1103515245u + 12345u;
		ms = backoff(5, r);
		lo = ms < lo ? ms : lo;
		hi = ms > hi ? ms : hi;
	}
	assert_true(lo < 4000);
	assert_true(hi > 6000);
}

static void test_frame_roundtrip(void **state)
{
	__u8 buf[16], payload[3] = { 'a', 'b', 'c' };
	const __u8 *d = NULL;
	size_t dl = 99;

	assert_int_equal(agent_udp_frame(buf, sizeof(buf), payload, 3), 5);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[1], 3);
	assert_memory_equal(buf + 2, "abc", 3);
	assert_int_equal(agent_udp_unframe(buf, 5, &d, &dl), 5);
	assert_ptr_equal(d, buf + 2);
	assert_int_equal(dl, 3);
	/* longer buffers: only the first frame */
	assert_int_equal(agent_udp_unframe(buf, sizeof(buf), &d, &dl), 5);
}

static void test_frame_empty_datagram(void **state)
{
	__u8 buf[2];
	const __u8 *d = NULL;
	size_t dl = 99;

	assert_int_equal(agent_udp_frame(buf, sizeof(buf), NULL, 0), 2);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[1], 0);
	assert_int_equal(agent_udp_unframe(buf, 2, &d, &dl), 2);
	assert_int_equal(dl, 0);
}

static void test_frame_big_endian_and_max(void **state)
{
	static __u8 big[AGENT_UDP_MAX + 2], payload[AGENT_UDP_MAX + 1];
	__u8 hdr[2];
	const __u8 *d;
	size_t dl;

	memset(payload, 0x5a, sizeof(payload));
	assert_int_equal(agent_udp_frame_hdr(hdr, 0x1234), 0);
	assert_int_equal(hdr[0], 0x12);
	assert_int_equal(hdr[1], 0x34);
	assert_int_equal(agent_udp_frame(big, sizeof(big), payload, AGENT_UDP_MAX),
			 AGENT_UDP_MAX + 2);
	assert_int_equal(big[0], 0xff);
	assert_int_equal(big[1], 0xff);
	assert_int_equal(agent_udp_unframe(big, sizeof(big), &d, &dl), AGENT_UDP_MAX + 2);
	assert_int_equal(dl, AGENT_UDP_MAX);
	/* one byte too many cannot be framed */
	assert_int_equal(agent_udp_frame(big, sizeof(big), payload, AGENT_UDP_MAX + 1), -EMSGSIZE);
	assert_int_equal(agent_udp_frame_hdr(hdr, AGENT_UDP_MAX + 1), -EMSGSIZE);
	/* no room */
	assert_int_equal(agent_udp_frame(hdr, sizeof(hdr), payload, 1), -ENOSPC);
}

static void test_unframe_partial(void **state)
{
	__u8 buf[8];
	const __u8 *d = NULL;
	size_t dl = 77, i;

	assert_int_equal(agent_udp_frame(buf, sizeof(buf), "hello", 5), 7);
	for (i = 0; i < 7; i++) {
		assert_int_equal(agent_udp_unframe(buf, i, &d, &dl), 0);
		assert_null(d);
		assert_int_equal(dl, 77);
	}
}

/* A byte stream of frames split anywhere decodes to the same datagrams. */
static void test_unframe_stream(void **state)
{
	static const char *const dgrams[] = { "one", "", "three33", "x" };
	__u8 stream[64], acc[64];
	size_t n = 0, alen = 0, got = 0, i, k;

	for (i = 0; i < 4; i++) {
		int r = agent_udp_frame(stream + n, sizeof(stream) - n, dgrams[i],
					strlen(dgrams[i]));

		assert_true(r > 0);
		n += r;
	}
	/* feed one byte at a time, consume whole frames as they complete */
	for (i = 0; i < n; i++) {
		const __u8 *d;
		size_t dl;

		acc[alen++] = stream[i];
		while ((k = agent_udp_unframe(acc, alen, &d, &dl))) {
			assert_true(got < 4);
			assert_int_equal(dl, strlen(dgrams[got]));
			assert_memory_equal(d, dgrams[got], dl);
			got++;
			memmove(acc, acc + k, alen - k);
			alen -= k;
		}
	}
	assert_int_equal(got, 4);
	assert_int_equal(alen, 0);
}

static struct sockaddr_storage sa(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(ns_parse_sockaddr(s, 1, &ss, &len), 0);
	return ss;
}

static void test_sockaddr_helpers(void **state)
{
	struct sockaddr_storage a = sa("192.0.2.1:80"), b = sa("192.0.2.1:81"),
				m = sa("[::ffff:192.0.2.1]:80"), c = sa("192.0.2.2:80"),
				six = sa("[2001:db8::1]:80"), zero = {};
	char buf[AGENT_SA_STRLEN];

	assert_true(agent_sa_same_ip(&a, &b));
	assert_false(agent_sa_equal(&a, &b));
	assert_true(agent_sa_equal(&a, &m));		/* IPv4-mapped is the same peer */
	assert_false(agent_sa_same_ip(&a, &c));
	assert_false(agent_sa_same_ip(&a, &six));
	assert_false(agent_sa_same_ip(&a, &zero));
	assert_string_equal(agent_sa_str(&a, buf, sizeof(buf)), "192.0.2.1:80");
	assert_string_equal(agent_sa_str(&m, buf, sizeof(buf)), "192.0.2.1:80");
	assert_string_equal(agent_sa_str(&six, buf, sizeof(buf)), "[2001:db8::1]:80");
	assert_string_equal(agent_sa_str(&zero, buf, sizeof(buf)), "?");
}

static void test_err_text(void **state)
{
	assert_string_equal(agent_err_text(NS_ERR_DENIED), "denied by ACL");
	assert_string_equal(agent_err_text(NS_ERR_AUTH), "wrong name or secret");
	assert_string_equal(agent_err_text(12345), "unknown error");
}

#define SEC 1000000000ull

/* The peak per second over the last AGENT_RATE_SLOTS seconds. */
static void test_rate_peak(void **state)
{
	struct agent_rate r = {};
	__u64 t0 = 1000 * SEC;
	int i;

	assert_int_equal(agent_rate_peak(&r, t0), 0);		/* no client yet */
	agent_rate_add(&r, t0);
	assert_int_equal(agent_rate_peak(&r, t0), 1);
	for (i = 0; i < 5; i++)
		agent_rate_add(&r, t0 + 3 * SEC + i * 100000000ull);	/* 5 in second 3 */
	agent_rate_add(&r, t0 + 4 * SEC);
	assert_int_equal(agent_rate_peak(&r, t0 + 4 * SEC), 5);
	/* second 3 still in the window 9 s later, gone 10 s later */
	assert_int_equal(agent_rate_peak(&r, t0 + 12 * SEC + SEC / 2), 5);
	assert_int_equal(agent_rate_peak(&r, t0 + 13 * SEC), 1);	/* second 4 left */
	assert_int_equal(agent_rate_peak(&r, t0 + 14 * SEC), 0);
	/* a client long after: the old seconds are forgotten, not counted again */
	agent_rate_add(&r, t0 + 100 * SEC);
	assert_int_equal(agent_rate_peak(&r, t0 + 100 * SEC), 1);
	/* a slot reused after a full turn starts from 0 */
	agent_rate_add(&r, t0 + 110 * SEC);
	assert_int_equal(agent_rate_peak(&r, t0 + 110 * SEC), 1);
	/* a client at time 0 still counts as a client */
	memset(&r, 0, sizeof(r));
	agent_rate_add(&r, 0);
	assert_int_equal(agent_rate_peak(&r, 0), 1);
}

/* Never above the bound, whatever the rate and set-up time. */
static void test_pool_target_bound(void **state)
{
	static const __u32 peaks[] = { 0, 1, 10, 1000, 100000, 0xffffffffu };
	static const __u32 setups[] = { 0, 1, 50, 1000, 60000, 0xffffffffu };
	static const __u32 bounds[] = { 0, 1, 2, 8, 64 };
	size_t i, j, k;

	for (i = 0; i < sizeof(peaks) / sizeof(peaks[0]); i++)
		for (j = 0; j < sizeof(setups) / sizeof(setups[0]); j++)
			for (k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
				__u32 n = agent_pool_target(peaks[i], setups[j], 0, 30, bounds[k]);

				assert_true(n <= bounds[k]);
				/* a bound of at least 1 with a recent client: at least one */
				if (bounds[k])
					assert_true(n >= 1);
			}
	assert_int_equal(agent_pool_target(100000, 1000, 0, 30, 2), 2);
	assert_int_equal(agent_pool_target(0xffffffffu, 0xffffffffu, 0, 30, UINT32_MAX),
			 UINT32_MAX);		/* no overflow */
}

/* 0 once no client came for idle_s, or none ever. */
static void test_pool_target_idle(void **state)
{
	assert_int_equal(agent_pool_target(5, 100, 29999, 30, 8), 2);
	assert_int_equal(agent_pool_target(5, 100, 30000, 30, 8), 0);
	assert_int_equal(agent_pool_target(1000, 1000, 31000, 30, 8), 0);
	assert_int_equal(agent_pool_target(0, 100, UINT64_MAX, 30, 8), 0);
	assert_int_equal(agent_pool_target(0, 100, UINT64_MAX, AGENT_POOL_IDLE_MAX_S, 64), 0);
	/* quiet in the window but a client within idle_s: keep one */
	assert_int_equal(agent_pool_target(0, 100, 15000, 30, 8), 1);
}

/* More clients per set-up time, more ready tunnels: ceil(peak x setup) + 1. */
static void test_pool_target_grows(void **state)
{
	__u32 peak, prev = 0;

	assert_int_equal(agent_pool_target(1, 50, 0, 30, 64), 2);	/* 0.05 -> 1, + 1 */
	assert_int_equal(agent_pool_target(10, 100, 0, 30, 64), 2);	/* 1.0 -> 1, + 1 */
	assert_int_equal(agent_pool_target(11, 100, 0, 30, 64), 3);	/* 1.1 -> 2, + 1 */
	assert_int_equal(agent_pool_target(40, 100, 0, 30, 64), 5);
	assert_int_equal(agent_pool_target(40, 200, 0, 30, 64), 9);	/* slower set-up */
	assert_int_equal(agent_pool_target(40, 200, 0, 30, 4), 4);
	for (peak = 0; peak < 2000; peak += 7) {
		__u32 n = agent_pool_target(peak, 30, 0, 30, UINT32_MAX);

		assert_true(n >= prev);
		prev = n;
	}
	assert_true(prev > 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_backoff_jitter_spreads),
		cmocka_unit_test(test_frame_roundtrip),
		cmocka_unit_test(test_frame_empty_datagram),
		cmocka_unit_test(test_frame_big_endian_and_max),
		cmocka_unit_test(test_unframe_partial),
		cmocka_unit_test(test_unframe_stream),
		cmocka_unit_test(test_sockaddr_helpers),
		cmocka_unit_test(test_err_text),
		cmocka_unit_test(test_rate_peak),
		cmocka_unit_test(test_pool_target_bound),
		cmocka_unit_test(test_pool_target_idle),
		cmocka_unit_test(test_pool_target_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
