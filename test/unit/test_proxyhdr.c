// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lib/proxyhdr.c: the PROXY protocol header, byte for byte (haproxy's
 * proxy-protocol.txt, its examples). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "proxyhdr.h"

static struct sockaddr_storage sa(const char *ip, unsigned short port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
	}
	return ss;
}

static void check_v1(const char *src, unsigned short sp, const char *dst, unsigned short dp,
		     const char *want)
{
	struct sockaddr_storage s = sa(src, sp), d = sa(dst, dp);
	char buf[NS_PROXY_HDR_MAX];
	ssize_t n = ns_proxy_header(NS_PROXY_V1, &s, &d, buf, sizeof(buf));

	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

static void test_v1(void **state)
{
	char buf[NS_PROXY_HDR_MAX];
	struct sockaddr_storage s = sa("192.0.2.1", 1);

	check_v1("203.0.113.50", 40000, "203.0.113.20", 8080,
		 "PROXY TCP4 203.0.113.50 203.0.113.20 40000 8080\r\n");
	check_v1("2001:db8::50", 443, "2001:db8::20", 8443,
		 "PROXY TCP6 2001:db8::50 2001:db8::20 443 8443\r\n");
	/* mapped on both sides: IPv4; one mapped, one IPv6: IPv6 */
	check_v1("::ffff:198.51.100.7", 5, "::ffff:198.51.100.8", 6,
		 "PROXY TCP4 198.51.100.7 198.51.100.8 5 6\r\n");
	check_v1("198.51.100.7", 5, "2001:db8::1", 6,
		 "PROXY TCP6 ::ffff:198.51.100.7 2001:db8::1 5 6\r\n");
	/* the longest one fits NS_PROXY_HDR_MAX (the spec's 107 + NUL) */
	check_v1("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
		 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
		 "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
	assert_int_equal(ns_proxy_header(NS_PROXY_V1, NULL, &s, buf, sizeof(buf)), 15);
	assert_memory_equal(buf, "PROXY UNKNOWN\r\n", 15);
	assert_int_equal(ns_proxy_header(NS_PROXY_V1, &s, &s, buf, 20), -ENOSPC);
	assert_int_equal(ns_proxy_header(3, &s, &s, buf, sizeof(buf)), -EINVAL);
}

static void test_v2(void **state)
{
	static const unsigned char want4[] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x11, 0x00, 0x0c,
		203, 0, 113, 50, 203, 0, 113, 20,
		0x9c, 0x40, 0x1f, 0x90,		/* 40000, 8080 */
	};
	static const unsigned char want_local[] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x20, 0x00, 0x00, 0x00,
	};
	struct sockaddr_storage s = sa("203.0.113.50", 40000), d = sa("203.0.113.20", 8080);
	struct sockaddr_storage s6 = sa("2001:db8::50", 1), d6 = sa("2001:db8::20", 2);
	struct sockaddr_storage unix_ss = { .ss_family = AF_UNIX };
	unsigned char buf[NS_PROXY_HDR_MAX];
	ssize_t n;

	n = ns_proxy_header(NS_PROXY_V2, &s, &d, buf, sizeof(buf));
	assert_int_equal(n, sizeof(want4));
	assert_memory_equal(buf, want4, n);
	n = ns_proxy_header(NS_PROXY_V2, &s6, &d6, buf, sizeof(buf));
	assert_int_equal(n, 16 + 36);
	assert_int_equal(buf[13], 0x21);		/* TCP over IPv6 */
	assert_int_equal(buf[15], 36);
	assert_memory_equal(buf + 16, &((struct sockaddr_in6 *)&s6)->sin6_addr, 16);
	assert_memory_equal(buf + 32, &((struct sockaddr_in6 *)&d6)->sin6_addr, 16);
	assert_int_equal(buf[49], 1);
	assert_int_equal(buf[51], 2);
	n = ns_proxy_header(NS_PROXY_V2, &unix_ss, &d, buf, sizeof(buf));
	assert_int_equal(n, sizeof(want_local));
	assert_memory_equal(buf, want_local, n);
	assert_int_equal(ns_proxy_header(NS_PROXY_V2, &s, &d, buf, 27), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
