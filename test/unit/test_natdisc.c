// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lib/natdisc.c: NAT discovery requests and answers. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "natsplice_abi.h"
#include "natdisc.h"

static const __u8 nonce[NS_DISC_NONCE_LEN] = "0123456789abcdef";

static void test_request(void **state)
{
	__u8 req[NS_DISC_REQ_MAX], n2[NS_DISC_NONCE_LEN], flags;
	char name[256], longname[300];
	int len;

	len = ns_disc_request(req, sizeof(req), NS_DISC_CHANGE_IP, nonce, "laptop");
	assert_int_equal(len, NS_DISC_REQ_MIN);	/* padded: the answer is never larger */
	assert_true(NS_DISC_ANS_LEN <= NS_DISC_REQ_MIN);
	assert_int_equal(ns_disc_request_parse(req, len, &flags, n2, name, sizeof(name)), 0);
	assert_int_equal(flags, NS_DISC_CHANGE_IP);
	assert_memory_equal(n2, nonce, sizeof(n2));
	assert_string_equal(name, "laptop");
	/* short, another magic, a name with a NUL or longer than the datagram */
	assert_int_equal(ns_disc_request_parse(req, len - 1, &flags, n2, name, sizeof(name)),
			 -EINVAL);
	req[6] = 200;
	assert_int_equal(ns_disc_request_parse(req, len, &flags, n2, name, sizeof(name)), -EINVAL);
	req[6] = 6;
	req[26] = 0;
	assert_int_equal(ns_disc_request_parse(req, len, &flags, n2, name, sizeof(name)), -EINVAL);
	req[0] = 'X';
	assert_int_equal(ns_disc_request_parse(req, len, &flags, n2, name, sizeof(name)), -EINVAL);
	/* names: 1..255 bytes */
	memset(longname, 'a', sizeof(longname));
	longname[256] = 0;
	assert_int_equal(ns_disc_request(req, sizeof(req), 0, nonce, longname), -EINVAL);
	assert_int_equal(ns_disc_request(req, sizeof(req), 0, nonce, ""), -EINVAL);
	assert_int_equal(ns_disc_request(req, 10, 0, nonce, "laptop"), -ENOSPC);
}

static void test_answer(void **state)
{
	__u8 ans[NS_DISC_ANS_LEN], other[NS_DISC_NONCE_LEN] = "0123456789abcdeX", flags, family;
	__u32 addr[4] = { htonl(0xcb007165) }, got[4];
	__u16 port;

	assert_int_equal(ns_disc_answer(ans, "secret-of-laptop", 3, nonce, NS_AF_INET, addr, 40000),
			 0);
	assert_int_equal(ns_disc_answer_check(ans, sizeof(ans), "secret-of-laptop", nonce, &flags,
					      &family, got, &port), 0);
	assert_int_equal(flags, 3);
	assert_int_equal(family, NS_AF_INET);
	assert_memory_equal(got, addr, sizeof(addr));
	assert_int_equal(port, 40000);
	/* another agent's secret (a forger without it), another request (a replay) */
	assert_int_equal(ns_disc_answer_check(ans, sizeof(ans), "secret-of-mallory", nonce,
					      &flags, &family, got, &port), -EACCES);
	assert_int_equal(ns_disc_answer_check(ans, sizeof(ans), "secret-of-laptop", other,
					      &flags, &family, got, &port), -EACCES);
	/* a changed mapped address (a man in the middle) */
	ans[30] ^= 1;
	assert_int_equal(ns_disc_answer_check(ans, sizeof(ans), "secret-of-laptop", nonce,
					      &flags, &family, got, &port), -EACCES);
	ans[30] ^= 1;
	assert_int_equal(ns_disc_answer_check(ans, sizeof(ans) - 1, "secret-of-laptop", nonce,
					      &flags, &family, got, &port), -EACCES);
}

static void test_str(void **state)
{
	struct ns_nat_result r = { .tested = true, .nat = true, .mapping = NS_NAT_EI,
				   .filtering = NS_NAT_APD, .preserve = true };
	char buf[160];

	assert_string_equal(ns_nat_str(&r, buf, sizeof(buf)),
			    "mapping ei, filtering apd, port kept, hairpin no");
	r.hairpin = true;
	r.nat = false;
	assert_string_equal(ns_nat_str(&r, buf, sizeof(buf)),
			    "no NAT, mapping ei, filtering apd, port kept, hairpin yes");
	r.tested = false;
	assert_string_equal(ns_nat_str(&r, buf, sizeof(buf)), "blocked (no answer)");
	assert_string_equal(ns_nat_beh_name(NS_NAT_AD), "ad");
	assert_string_equal(ns_nat_beh_name(9), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
