// SPDX-License-Identifier: GPL-2.0
/* util: every parser with good values and each kind of bad value. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void test_parse_u32(void **state)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.0", "4294967296",
		"18446744073709551617", "99999999999999999999999",
	};
	__u32 v;
	size_t i;

	assert_int_equal(ns_parse_u32("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ns_parse_u32("42", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(ns_parse_u32("007", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(ns_parse_u32("4294967295", &v), 0);
	assert_int_equal(v, 4294967295u);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		v = 5;
		assert_int_equal(ns_parse_u32(bad[i], &v), -EINVAL);
		assert_int_equal(v, 5);
	}
	assert_int_equal(ns_parse_u32(NULL, &v), -EINVAL);
}

static void test_parse_port(void **state)
{
	__u16 p;

	assert_int_equal(ns_parse_port("1", &p), 0);
	assert_int_equal(p, 1);
	assert_int_equal(ns_parse_port("65535", &p), 0);
	assert_int_equal(p, 65535);
	assert_int_equal(ns_parse_port("0", &p), -EINVAL);
	assert_int_equal(ns_parse_port("65536", &p), -EINVAL);
	assert_int_equal(ns_parse_port("", &p), -EINVAL);
}

static void test_parse_addr_v4(void **state)
{
	static const char *const bad[] = {
		"", "192.0.2", "192.0.2.256", "192.0.2.1.", "192.0.2.1 ", " 192.0.2.1",
		"192.0.2.1/24", "0x7f.0.0.1", "example.com", "192.0.2.1:80", "[192.0.2.1]",
	};
	__u32 a[4] = { 9, 9, 9, 9 };
	__u8 fam = 0;
	size_t i;

	assert_int_equal(ns_parse_addr("192.0.2.1", &fam, a), 0);
	assert_int_equal(fam, 2);
	assert_int_equal(a[0], htonl(0xc0000201));
	assert_int_equal(a[1], 0);
	assert_int_equal(a[2], 0);
	assert_int_equal(a[3], 0);
	assert_int_equal(ns_parse_addr("0.0.0.0", &fam, a), 0);
	assert_true(ns_addr_is_zero(a));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		fam = 0;
		assert_int_equal(ns_parse_addr(bad[i], &fam, a), -EINVAL);
		assert_int_equal(fam, 0);
	}
}

static void test_parse_addr_v6(void **state)
{
	static const char *const bad[] = {
		"2001:db8::1::2", "2001:db8:::1", "2001:db8::g", "[2001:db8::1]",
		"fe80::1%eth0", "2001:db8::1/64", "1:2:3:4:5:6:7:8:9",
	};
	__u32 a[4];
	__u8 fam;
	size_t i;

	assert_int_equal(ns_parse_addr("2001:db8::1", &fam, a), 0);
	assert_int_equal(fam, 10);
	assert_int_equal(a[0], htonl(0x20010db8));
	assert_int_equal(a[1], 0);
	assert_int_equal(a[2], 0);
	assert_int_equal(a[3], htonl(1));
	assert_false(ns_addr_is_zero(a));
	assert_int_equal(ns_parse_addr("::", &fam, a), 0);
	assert_int_equal(fam, 10);
	assert_true(ns_addr_is_zero(a));
	assert_int_equal(ns_parse_addr("::ffff:192.0.2.1", &fam, a), 0);
	assert_int_equal(fam, 10);
	assert_int_equal(a[2], htonl(0xffff));
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(ns_parse_addr(bad[i], &fam, a), -EINVAL);
}

static void test_prefix(void **state)
{
	static const char *const bad[] = {
		"", "/24", "192.0.2.0/", "192.0.2.0/33", "192.0.2.1/24", "2001:db8::/129",
		"2001:db8::1/64", "192.0.2.0/-1", "192.0.2.0/24x", "host/8", NULL,
	};
	struct ns_prefix p;
	__u32 a[4];
	__u8 fam;
	int i;

	for (i = 0; bad[i]; i++)
		assert_int_equal(ns_prefix_parse(bad[i], &p), -EINVAL);
	assert_int_equal(ns_prefix_parse("192.0.2.0/24", &p), 0);
	assert_int_equal(p.len, 24);
	assert_int_equal(ns_parse_addr("192.0.2.77", &fam, a), 0);
	assert_true(ns_prefix_match(&p, fam, a));
	assert_int_equal(ns_parse_addr("192.0.3.1", &fam, a), 0);
	assert_false(ns_prefix_match(&p, fam, a));
	assert_int_equal(ns_parse_addr("::ffff:192.0.2.77", &fam, a), 0);
	assert_false(ns_prefix_match(&p, fam, a));	/* another family */
	assert_int_equal(ns_prefix_parse("0.0.0.0/0", &p), 0);
	assert_true(ns_prefix_match(&p, AF_INET, a));
	assert_int_equal(ns_prefix_parse("2001:db8:8000::/33", &p), 0);
	assert_int_equal(ns_parse_addr("2001:db8:ffff::1", &fam, a), 0);
	assert_true(ns_prefix_match(&p, fam, a));
	assert_int_equal(ns_parse_addr("2001:db8:7fff::1", &fam, a), 0);
	assert_false(ns_prefix_match(&p, fam, a));
	assert_int_equal(ns_prefix_parse("2001:db8::5", &p), 0);	/* bare: one host */
	assert_int_equal(p.len, 128);
	assert_int_equal(ns_parse_addr("2001:db8::5", &fam, a), 0);
	assert_true(ns_prefix_match(&p, fam, a));
	a[3] ^= htonl(1);
	assert_false(ns_prefix_match(&p, fam, a));
}

static void test_parse_hostport(void **state)
{
	static const char *const bad[] = {
		"192.0.2.1", "192.0.2.1:", "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:-1",
		"192.0.2.1:80x", ":80", "[192.0.2.1]:80", "2001:db8::1:80", "[2001:db8::1]",
		"[2001:db8::1]80", "[2001:db8::1:80", "2001:db8::1]:80", "[]:80",
		"[2001:db8::1]:", "[2001:db8::1]: 80", "host:80",
	};
	__u32 a[4];
	__u16 port = 0;
	__u8 fam;
	size_t i;

	assert_int_equal(ns_parse_hostport("192.0.2.1:80", &fam, a, &port), 0);
	assert_int_equal(fam, 2);
	assert_int_equal(a[0], htonl(0xc0000201));
	assert_int_equal(port, 80);
	assert_int_equal(ns_parse_hostport("[2001:db8::1]:65535", &fam, a, &port), 0);
	assert_int_equal(fam, 10);
	assert_int_equal(a[3], htonl(1));
	assert_int_equal(port, 65535);
	assert_int_equal(ns_parse_hostport("[::]:1", &fam, a, &port), 0);
	assert_true(ns_addr_is_zero(a));
	assert_int_equal(port, 1);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		port = 7;
		assert_int_equal(ns_parse_hostport(bad[i], &fam, a, &port), -EINVAL);
		assert_int_equal(port, 7);
	}
}

static void test_parse_port_range(void **state)
{
	static const char *const bad[] = {
		"", "0", "65536", "0-10", "10-65536", "5000-4999", "-5", "5-", "-",
		"1-2-3", " 1-2", "1 -2", "1- 2", "a-b", "40000_40999",
	};
	__u16 lo = 0, hi = 0;
	size_t i;

	assert_int_equal(ns_parse_port_range("40000-40999", &lo, &hi), 0);
	assert_int_equal(lo, 40000);
	assert_int_equal(hi, 40999);
	assert_int_equal(ns_parse_port_range("5000", &lo, &hi), 0);
	assert_int_equal(lo, 5000);
	assert_int_equal(hi, 5000);
	assert_int_equal(ns_parse_port_range("7-7", &lo, &hi), 0);
	assert_int_equal(lo, 7);
	assert_int_equal(hi, 7);
	assert_int_equal(ns_parse_port_range("1-65535", &lo, &hi), 0);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 65535);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		lo = hi = 3;
		assert_int_equal(ns_parse_port_range(bad[i], &lo, &hi), -EINVAL);
		assert_int_equal(lo, 3);
		assert_int_equal(hi, 3);
	}
}

static void test_addr_str(void **state)
{
	char buf[NS_ADDRSTRLEN];
	__u32 a[4];
	__u8 fam;

	assert_int_equal(ns_parse_addr("192.0.2.1", &fam, a), 0);
	assert_string_equal(ns_addr_str(fam, a, buf, sizeof(buf)), "192.0.2.1");
	assert_int_equal(ns_parse_addr("2001:DB8:0:0::1", &fam, a), 0);
	assert_string_equal(ns_addr_str(fam, a, buf, sizeof(buf)), "2001:db8::1");
	assert_int_equal(ns_parse_addr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &fam, a), 0);
	assert_string_equal(ns_addr_str(fam, a, buf, sizeof(buf)),
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_string_equal(ns_addr_str(7, a, buf, sizeof(buf)), "?");
	/* Too small a buffer is not an overflow. */
	assert_int_equal(ns_parse_addr("192.0.2.1", &fam, a), 0);
	assert_string_equal(ns_addr_str(fam, a, buf, 4), "?");
}

static void test_hex(void **state)
{
	static const unsigned char data[] = { 0x00, 0x01, 0xab, 0xff, 0x7f };
	static const char *const bad[] = {
		"", "0001abff7", "0001abff7f0", "0001abff7g", "0001ABFF7 ", "0x01abff7f",
	};
	unsigned char back[5];
	char hex[11];
	size_t i;

	ns_hex(data, sizeof(data), hex);
	assert_string_equal(hex, "0001abff7f");
	assert_int_equal(ns_unhex(hex, back, sizeof(back)), 0);
	assert_memory_equal(back, data, sizeof(data));
	assert_int_equal(ns_unhex("0001ABFF7F", back, sizeof(back)), 0);
	assert_memory_equal(back, data, sizeof(data));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(back, 0x55, sizeof(back));
		assert_int_equal(ns_unhex(bad[i], back, sizeof(back)), -EINVAL);
		assert_int_equal(back[0], 0x55);   /* untouched on error */
	}
	ns_hex(data, 0, hex);
	assert_string_equal(hex, "");
	assert_int_equal(ns_unhex("", back, 0), 0);
}

static void test_random_and_time(void **state)
{
	unsigned char a[32] = { 0 }, b[32] = { 0 };
	__u64 t0, t1;

	assert_int_equal(ns_random_bytes(a, sizeof(a)), 0);
	assert_int_equal(ns_random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	t0 = ns_now_ns();
	t1 = ns_now_ns();
	assert_true(t0 > 0);
	assert_true(t1 >= t0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u32),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_parse_port),
		cmocka_unit_test(test_parse_addr_v4),
		cmocka_unit_test(test_parse_addr_v6),
		cmocka_unit_test(test_parse_hostport),
		cmocka_unit_test(test_parse_port_range),
		cmocka_unit_test(test_addr_str),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_random_and_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
