// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lib/http_token.c: bearer tokens from the config, Authorization headers. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

#define TOK1 "0123456789abcdef0123456789abcdef"
#define TOK2 "tok-2.with_all~chars+/AZaz09=="

static void test_add(void **state)
{
	struct ns_http_tokens t = {};
	char msg[128] = "", big[NS_HTTP_TOKEN_MAX + 2];

	assert_int_equal(ns_http_token_add(&t, TOK1, msg, sizeof(msg)), 0);
	assert_int_equal(ns_http_token_add(&t, TOK2, msg, sizeof(msg)), 0);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.v[1], TOK2);
	/* too short, bad characters, '=' inside, empty */
	assert_int_equal(ns_http_token_add(&t, "short-token", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(ns_http_token_add(&t, "0123456789abcdef 0123", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(ns_http_token_add(&t, "0123456789ab=cdef0123", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(ns_http_token_add(&t, "================", msg, sizeof(msg)), -EINVAL);
	assert_int_equal(ns_http_token_add(&t, "", msg, sizeof(msg)), -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ns_http_token_add(&t, big, msg, sizeof(msg)), -EINVAL);
	big[NS_HTTP_TOKEN_MAX] = '\0';
	assert_int_equal(ns_http_token_add(&t, big, msg, sizeof(msg)), 0);
	/* twice */
	assert_int_equal(ns_http_token_add(&t, TOK1, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "twice"));
	assert_int_equal(t.n, 3);
}

static void test_full(void **state)
{
	struct ns_http_tokens t = {};
	char msg[128] = "", tok[32];
	int i;

	for (i = 0; i < NS_HTTP_TOKENS_MAX; i++) {
		snprintf(tok, sizeof(tok), "token-number-%04d", i);
		assert_int_equal(ns_http_token_add(&t, tok, msg, sizeof(msg)), 0);
	}
	assert_int_equal(ns_http_token_add(&t, "token-number-9999", msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "more than"));
}

static void test_ok(void **state)
{
	struct ns_http_tokens t = {};
	char msg[128];

	/* none configured: open */
	assert_true(ns_http_token_ok(NULL, NULL));
	assert_true(ns_http_token_ok(&t, NULL));
	assert_true(ns_http_token_ok(&t, "Basic Zm9vOmJhcg=="));
	assert_int_equal(ns_http_token_add(&t, TOK1, msg, sizeof(msg)), 0);
	assert_int_equal(ns_http_token_add(&t, TOK2, msg, sizeof(msg)), 0);
	assert_true(ns_http_token_ok(&t, "Bearer " TOK1));
	assert_true(ns_http_token_ok(&t, "Bearer " TOK2));
	assert_true(ns_http_token_ok(&t, "bearer   " TOK1));	/* scheme: any case */
	assert_false(ns_http_token_ok(&t, NULL));
	assert_false(ns_http_token_ok(&t, ""));
	assert_false(ns_http_token_ok(&t, TOK1));
	assert_false(ns_http_token_ok(&t, "Basic " TOK1));
	assert_false(ns_http_token_ok(&t, "Bearer"));
	assert_false(ns_http_token_ok(&t, "Bearer "));
	assert_false(ns_http_token_ok(&t, "Bearer " TOK1 "x"));	/* longer */
	assert_false(ns_http_token_ok(&t, "Bearer 0123456789abcdef"));	/* a prefix */
	assert_false(ns_http_token_ok(&t, "Bearer 0123456789abcdef0123456789abcdeF"));
	assert_false(ns_http_token_ok(&t, "BearerX " TOK1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
