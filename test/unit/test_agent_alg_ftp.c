// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agent: the ALG registry, shared helpers and the FTP ALG (agent/alg*.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "../../agent/agent_util.c"
#include "../../agent/alg.c"
#include "../../agent/alg_ftp.c"
#include "../../agent/alg_sdp.c"
#include "../../agent/alg_sip.c"
#include "unit/capture.h"
#include "unit/alg_fake.h"

struct t {
	struct fake fake;
	struct ns_alg_env env;
	void *st;
	struct ns_alg_buf out;
	char s[8192];			/* out as a string */
};

static void t_open(struct t *t, enum ns_alg_side side, int alias_family)
{
	memset(t, 0, sizeof(*t));
	fake_init(&t->fake, alias_family);
	t->env.arg = &t->fake;
	t->env.side = side;
	t->env.expect = fake_expect;
	strcpy(t->env.label, "files");
	assert_int_equal(ns_parse_sockaddr("192.0.2.1:2121", 0, &t->env.local,
					   &(socklen_t){ 0 }), 0);
	assert_int_equal(ns_parse_sockaddr("192.0.2.9:21", 0, &t->env.app,
					   &(socklen_t){ 0 }), 0);
	t->st = ns_alg_ftp.open(&t->env, false);
	assert_non_null(t->st);
}

static void t_close(struct t *t)
{
	ns_alg_ftp.close(t->st);
	ns_alg_buf_free(&t->out);
}

/* Feed in pieces of `step` bytes (0: all at once); what came out so far. */
static const char *t_feed(struct t *t, enum ns_alg_dir dir, const char *in, size_t step)
{
	size_t len = strlen(in), i, n;

	for (i = 0; i < len; i += n) {
		n = step && step < len - i ? step : len - i;
		assert_int_equal(ns_alg_ftp.feed(t->st, dir, (const __u8 *)in + i, n, &t->out), 0);
	}
	assert_true(t->out.len < sizeof(t->s));
	if (t->out.len)
		memcpy(t->s, t->out.data, t->out.len);
	t->s[t->out.len] = '\0';
	return t->s;
}

/* One line in, with the output reset first. */
static const char *t_line(struct t *t, enum ns_alg_dir dir, const char *in)
{
	t->out.len = 0;
	return t_feed(t, dir, in, 0);
}

/* ---- registry and helpers ---- */

static void test_registry(void **state)
{
	char names[64] = "";
	size_t i;

	assert_ptr_equal(ns_alg_find("ftp"), &ns_alg_ftp);
	assert_ptr_equal(ns_alg_find("sip"), &ns_alg_sip);
	assert_null(ns_alg_find("FTP"));
	assert_null(ns_alg_find("h323"));
	assert_null(ns_alg_find(NULL));
	/* the names for --help are the table's */
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			 i ? ", " : "", algs[i]->name);
	assert_string_equal(ns_alg_names(), names);
}

static void test_hostport_len(void **state)
{
	assert_int_equal(ns_alg_hostport_len("example.com;x", 13), 11);
	assert_int_equal(ns_alg_hostport_len("10.0.0.1:5060;x", 15), 13);
	assert_int_equal(ns_alg_hostport_len("[2001:db8::1]:5060>", 19), 18);
	assert_int_equal(ns_alg_hostport_len("[2001:db8::1]", 13), 13);
	assert_int_equal(ns_alg_hostport_len("[2001:db8::1", 12), 0);
	assert_int_equal(ns_alg_hostport_len("[]", 2), 0);
	assert_int_equal(ns_alg_hostport_len("host:", 5), 0);
	assert_int_equal(ns_alg_hostport_len("host:123456", 11), 0);
	assert_int_equal(ns_alg_hostport_len(";x", 2), 0);
}

static void test_buf_and_excerpt(void **state)
{
	struct ns_alg_buf b = { 0 };
	char ex[NS_ALG_EXCERPT_MAX];
	char big[600];
	int i;

	for (i = 0; i < 100; i++)
		assert_int_equal(ns_alg_buf_printf(&b, "%d,", i), 0);
	assert_int_equal(b.len, 10 * 2 + 90 * 3);
	assert_memory_equal(b.data + b.len - 3, "99,", 3);
	ns_alg_buf_free(&b);
	ns_alg_buf_free(&b);
	assert_null(b.data);

	assert_string_equal(ns_alg_excerpt("PORT \x01\x7f\r\nrest", 13, ex, sizeof(ex)),
			    "PORT ..");
	memset(big, 'a', sizeof(big));
	ns_alg_excerpt(big, sizeof(big), ex, sizeof(ex));
	assert_int_equal(strlen(ex), 43);
	assert_string_equal(ex + 40, "...");
}

/* ---- FTP: subscriber, the server's replies ---- */

static void test_pasv(void **state)
{
	struct t t;

	t_open(&t, NS_ALG_SUBSCRIBER, AF_INET);
	assert_string_equal(t_line(&t, NS_ALG_IN,
				   "227 Entering Passive Mode (10,0,0,5,19,137).\r\n"),
			    "227 Entering Passive Mode (198,51,100,7,156,64).\r\n");
	assert_int_equal(t.fake.calls, 1);
	assert_int_equal(t.fake.proto[0], IPPROTO_TCP);
	assert_int_equal(t.fake.port[0], 19 * 256 + 137);
	assert_false(t.fake.pair[0]);
	/* no parentheses, bare LF, second alias */
	assert_string_equal(t_line(&t, NS_ALG_IN, "227 =10,0,0,5,0,21\n"),
			    "227 =198,51,100,7,156,66\n");
	assert_int_equal(t.fake.port[1], 21);
	/* the client's commands (OUT) pass as they are */
	assert_string_equal(t_line(&t, NS_ALG_OUT, "PORT 10,0,0,1,4,1\r\n"),
			    "PORT 10,0,0,1,4,1\r\n");
	/* a provider's lines are not the subscriber's business */
	assert_string_equal(t_line(&t, NS_ALG_IN, "PORT 10,0,0,1,4,1\r\n"),
			    "PORT 10,0,0,1,4,1\r\n");
	assert_int_equal(t.fake.calls, 2);
	t_close(&t);
}

static void test_epsv(void **state)
{
	struct t t;

	t_open(&t, NS_ALG_SUBSCRIBER, AF_INET);
	assert_string_equal(t_line(&t, NS_ALG_IN,
				   "229 Entering Extended Passive Mode (|||6446|)\r\n"),
			    "229 Entering Extended Passive Mode (|||40000|)\r\n");
	assert_int_equal(t.fake.port[0], 6446);
	/* any printable delimiter (RFC 2428) */
	assert_string_equal(t_line(&t, NS_ALG_IN, "229 ok (!!!65535!)\r\n"),
			    "229 ok (!!!40002!)\r\n");
	assert_int_equal(t.fake.port[1], 65535);
	t_close(&t);

	/* EPSV carries no address: an IPv6 alias is fine */
	t_open(&t, NS_ALG_SUBSCRIBER, AF_INET6);
	assert_string_equal(t_line(&t, NS_ALG_IN, "229 (|||6446|)\r\n"), "229 (|||40000|)\r\n");
	t_close(&t);
}

static void pasv_v6(void *arg)
{
	struct t *t = arg;

	assert_string_equal(t_line(t, NS_ALG_IN, "227 Entering Passive Mode (10,0,0,5,19,137)\r\n"),
			    "227 Entering Passive Mode (10,0,0,5,19,137)\r\n");
}

static void test_pasv_ipv6_alias(void **state)
{
	char log[512];
	struct t t;

	t_open(&t, NS_ALG_SUBSCRIBER, AF_INET6);
	capture_stderr(pasv_v6, &t, log, sizeof(log));
	assert_non_null(strstr(log, "ftp alg files: the alias is IPv6, this line carries only "
				    "IPv4 (227 Entering Passive Mode (10,0,0,5,19,1...): "
				    "passed unchanged"));
	t_close(&t);
}

/* ---- FTP: provider, the client's commands ---- */

static void test_port(void **state)
{
	struct t t;

	t_open(&t, NS_ALG_PROVIDER, AF_INET);
	assert_string_equal(t_line(&t, NS_ALG_IN, "PORT 10,0,0,1,4,1\r\n"),
			    "PORT 198,51,100,7,156,64\r\n");
	assert_int_equal(t.fake.port[0], 1025);
	assert_int_equal(t.fake.proto[0], IPPROTO_TCP);
	assert_string_equal(t_line(&t, NS_ALG_IN, "port 10,0,0,1,255,255\r\n"),
			    "port 198,51,100,7,156,66\r\n");
	assert_int_equal(t.fake.port[1], 65535);
	/* the server's replies (OUT) pass; its 227 is the subscriber's to rewrite */
	assert_string_equal(t_line(&t, NS_ALG_OUT, "227 Entering Passive Mode (1,2,3,4,5,6)\r\n"),
			    "227 Entering Passive Mode (1,2,3,4,5,6)\r\n");
	assert_string_equal(t_line(&t, NS_ALG_IN, "227 Entering Passive Mode (1,2,3,4,5,6)\r\n"),
			    "227 Entering Passive Mode (1,2,3,4,5,6)\r\n");
	assert_int_equal(t.fake.calls, 2);
	t_close(&t);

	/* PORT cannot name an IPv6 alias */
	t_open(&t, NS_ALG_PROVIDER, AF_INET6);
	assert_string_equal(t_line(&t, NS_ALG_IN, "PORT 10,0,0,1,4,1\r\n"), "PORT 10,0,0,1,4,1\r\n");
	t_close(&t);
}

static void test_eprt(void **state)
{
	struct t t;

	t_open(&t, NS_ALG_PROVIDER, AF_INET);
	assert_string_equal(t_line(&t, NS_ALG_IN, "EPRT |1|10.0.0.1|6275|\r\n"),
			    "EPRT |1|198.51.100.7|40000|\r\n");
	assert_int_equal(t.fake.port[0], 6275);
	/* the client's IPv6 announcement, an IPv4 alias: |1| */
	assert_string_equal(t_line(&t, NS_ALG_IN, "EPRT |2|2001:db8::1|5282|\r\n"),
			    "EPRT |1|198.51.100.7|40002|\r\n");
	assert_int_equal(t.fake.port[1], 5282);
	t_close(&t);

	t_open(&t, NS_ALG_PROVIDER, AF_INET6);
	assert_string_equal(t_line(&t, NS_ALG_IN, "EPRT !2!2001:db8::1!5282!\r\n"),
			    "EPRT !2!2001:db8::7!40000!\r\n");
	assert_string_equal(t_line(&t, NS_ALG_IN, "EPRT |1|10.0.0.1|6275|\r\n"),
			    "EPRT |2|2001:db8::7|40002|\r\n");
	t_close(&t);
}

/* Lines that must not be rewritten and must not open an alias. */
static void test_garbage(void **state)
{
	static const char *const sub[] = {
		"227 Entering Passive Mode (300,1,1,1,1,1)\r\n",
		"227 Entering Passive Mode (1,2,3,4,5)\r\n",
		"227 Entering Passive Mode (1,2,3,4,0,0)\r\n",
		"227 Entering Passive Mode (1,2,3,4,256,1)\r\n",
		"227 Entering Passive Mode (1,2,3,4,5,1000)\r\n",
		"227 Entering Passive Mode\r\n",
		"227 \r\n",
		"229 Entering Extended Passive Mode (|||0|)\r\n",
		"229 Entering Extended Passive Mode (|||65536|)\r\n",
		"229 Entering Extended Passive Mode (|||99999999999|)\r\n",
		"229 Entering Extended Passive Mode (||6446|)\r\n",
		"229 Entering Extended Passive Mode (|||6446)\r\n",
		"229 Entering Extended Passive Mode (1116446)\r\n",
		"229 Entering Extended Passive Mode (|||-1|)\r\n",
		"229 (\r\n",
		"227-Entering Passive Mode (1,2,3,4,5,6)\r\n",
	};
	static const char *const prov[] = {
		"PORT 300,1,1,1,1,1\r\n",
		"PORT 1,2,3,4,5\r\n",
		"PORT 1,2,3,4,5,6,7\r\n",
		"PORT 1,2,3,4,0,0\r\n",
		"PORT 1,2,3,4,5,6 x\r\n",
		"PORT 1,2,3,4,5,-6\r\n",
		"PORT ,,,,,\r\n",
		"PORT \r\n",
		"PORT\r\n",
		"EPRT |3|10.0.0.1|6275|\r\n",
		"EPRT |1|2001:db8::1|6275|\r\n",
		"EPRT |2|10.0.0.1|6275|\r\n",
		"EPRT |1|10.0.0.1|70000|\r\n",
		"EPRT |1|10.0.0.1|0|\r\n",
		"EPRT |1|10.0.0.1|6275\r\n",
		"EPRT |1|ftp.example.com|6275|\r\n",
		"EPRT |1|10.0.0.1|6275|x\r\n",
		"EPRT 1|10.0.0.1|6275|\r\n",
		"EPRT ||||\r\n",
		"EPRT\r\n",
	};
	struct t t;
	size_t i;

	t_open(&t, NS_ALG_SUBSCRIBER, AF_INET);
	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
		assert_string_equal(t_line(&t, NS_ALG_IN, sub[i]), sub[i]);
	assert_int_equal(t.fake.calls, 0);
	t_close(&t);
	t_open(&t, NS_ALG_PROVIDER, AF_INET);
	for (i = 0; i < sizeof(prov) / sizeof(prov[0]); i++)
		assert_string_equal(t_line(&t, NS_ALG_IN, prov[i]), prov[i]);
	assert_int_equal(t.fake.calls, 0);
	t_close(&t);
}

static void test_expect_fails(void **state)
{
	struct t t;

	t_open(&t, NS_ALG_PROVIDER, AF_INET);
	t.fake.allow = 1;
	assert_string_equal(t_line(&t, NS_ALG_IN, "PORT 10,0,0,1,4,1\r\n"),
			    "PORT 198,51,100,7,156,64\r\n");
	/* the flow limit: the command passes, the data connection will fail */
	assert_string_equal(t_line(&t, NS_ALG_IN, "PORT 10,0,0,1,4,2\r\n"),
			    "PORT 10,0,0,1,4,2\r\n");
	assert_string_equal(t_line(&t, NS_ALG_IN, "EPRT |1|10.0.0.1|6275|\r\n"),
			    "EPRT |1|10.0.0.1|6275|\r\n");
	assert_int_equal(t.fake.calls, 3);
	t_close(&t);
}

/* A whole session byte by byte equals it at once. */
static void test_byte_by_byte(void **state)
{
	const char *in = "220 ready\r\n331 password\r\n230 in\r\n"
			 "227 Entering Passive Mode (10,0,0,5,19,137)\r\n"
			 "150 here\r\n226 done\r\n229 Extended (|||6446|)\r\n";
	const char *want = "220 ready\r\n331 password\r\n230 in\r\n"
			   "227 Entering Passive Mode (198,51,100,7,156,64)\r\n"
			   "150 here\r\n226 done\r\n229 Extended (|||40002|)\r\n";
	size_t step;
	struct t t;

	for (step = 1; step <= 7; step++) {
		t_open(&t, NS_ALG_SUBSCRIBER, AF_INET);
		assert_string_equal(t_feed(&t, NS_ALG_IN, in, step), want);
		assert_int_equal(t.fake.calls, 2);
		t_close(&t);
	}
}

/* A line is held only while partial: nothing of it comes out before its LF. */
static void test_hold_and_flush(void **state)
{
	struct t t;

	t_open(&t, NS_ALG_SUBSCRIBER, AF_INET);
	assert_string_equal(t_feed(&t, NS_ALG_IN, "150 ok\r\n227 Entering Passive Mode (10,0,0", 0),
			    "150 ok\r\n");
	/* EOF: the partial line as it was, no alias for it */
	assert_int_equal(ns_alg_ftp.flush(t.st, NS_ALG_IN, &t.out), 0);
	assert_int_equal(t.out.len, strlen("150 ok\r\n227 Entering Passive Mode (10,0,0"));
	assert_memory_equal(t.out.data, "150 ok\r\n227 Entering Passive Mode (10,0,0", t.out.len);
	assert_int_equal(t.fake.calls, 0);
	/* nothing held twice */
	t.out.len = 0;
	assert_int_equal(ns_alg_ftp.flush(t.st, NS_ALG_IN, &t.out), 0);
	assert_int_equal(ns_alg_ftp.flush(t.st, NS_ALG_OUT, &t.out), 0);
	assert_int_equal(t.out.len, 0);
	t_close(&t);
}

/* A 227 line of exactly n bytes: "227 " + text + tuple + CRLF. */
static void long_227(char *buf, size_t n)
{
	const char *tail = "(10,0,0,5,19,137)\r\n";

	memcpy(buf, "227 ", 4);
	memset(buf + 4, 'x', n - 4 - strlen(tail));
	strcpy(buf + n - strlen(tail), tail);
}

static void test_line_limit(void **state)
{
	char line[NS_ALG_LINE_MAX + 2], want[NS_ALG_LINE_MAX + 32], big[5000];
	struct t t;

	t_open(&t, NS_ALG_SUBSCRIBER, AF_INET);
	/* NS_ALG_LINE_MAX bytes, LF included: still rewritten */
	long_227(line, NS_ALG_LINE_MAX);
	strcpy(want, line);
	memcpy(want + NS_ALG_LINE_MAX - 19, "(198,51,100,7,156,64)\r\n", 24);
	assert_string_equal(t_line(&t, NS_ALG_IN, line), want);
	/* one more byte: passes unmodified, fed in any pieces */
	long_227(line, NS_ALG_LINE_MAX + 1);
	t.out.len = 0;
	assert_string_equal(t_feed(&t, NS_ALG_IN, line, 100), line);
	t.out.len = 0;
	assert_string_equal(t_feed(&t, NS_ALG_IN, line, 1), line);
	assert_int_equal(t.fake.calls, 1);
	/* an endless line: nothing held beyond the limit, the next line works */
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "227 (1,2,3,4,5,6)", 17);
	t.out.len = 0;
	t_feed(&t, NS_ALG_IN, big, 700);
	assert_int_equal(t.out.len, sizeof(big) - 1);
	assert_memory_equal(t.out.data, big, sizeof(big) - 1);
	assert_string_equal(t_feed(&t, NS_ALG_IN, "yy\r\n227 (10,0,0,5,0,21)\r\n", 0) + sizeof(big) - 1,
			    "yy\r\n227 (198,51,100,7,156,66)\r\n");
	assert_int_equal(t.fake.calls, 2);
	t_close(&t);
}

/* After AUTH TLS the stream is not text: nothing may be held. */
static void test_auth_tls(void **state)
{
	const char tls[] = "\x16\x03\x01\x02\x10\x01\x07\x01\xfc\x03\x03";
	char want[64];
	struct t t;

	t_open(&t, NS_ALG_SUBSCRIBER, AF_INET);
	snprintf(want, sizeof(want), "234 AUTH TLS OK\r\n%s", tls);
	assert_string_equal(t_line(&t, NS_ALG_IN, want), want);
	t.out.len = 0;
	assert_string_equal(t_feed(&t, NS_ALG_IN, "227 (1,2,3,4,5,6)", 0), "227 (1,2,3,4,5,6)");
	assert_int_equal(t.fake.calls, 0);
	t_close(&t);

	t_open(&t, NS_ALG_PROVIDER, AF_INET);
	assert_string_equal(t_line(&t, NS_ALG_IN, "AUTH TLS\r\n"), "AUTH TLS\r\n");
	assert_string_equal(t_line(&t, NS_ALG_IN, tls), tls);
	t_close(&t);
}

static void many_bad(void *arg)
{
	struct t *t = arg;
	int i;

	for (i = 0; i < 50; i++)
		t_line(t, NS_ALG_IN, "PORT 300,1,1,1,1,1\r\n");
}

/* A peer sending garbage cannot flood the log. */
static void test_log_budget(void **state)
{
	char log[8192], *p;
	int n = 0;
	struct t t;

	t_open(&t, NS_ALG_PROVIDER, AF_INET);
	capture_stderr(many_bad, &t, log, sizeof(log));
	for (p = log; (p = strstr(p, "warning: ftp alg files: PORT: bad address or port")); p++)
		n++;
	assert_int_equal(n, NS_ALG_LOG_BURST);
	assert_non_null(strstr(log, "(further problems on this connection at debug level)"));
	t_close(&t);
}

static void test_no_datagram(void **state)
{
	struct ns_alg_env env = { 0 };

	errno = 0;
	assert_null(ns_alg_ftp.open(&env, false));
	assert_int_equal(errno, EINVAL);
	env.expect = fake_expect;
	assert_null(ns_alg_ftp.open(&env, true));
	assert_int_equal(errno, EPROTONOSUPPORT);
	ns_alg_ftp.close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_hostport_len),
		cmocka_unit_test(test_buf_and_excerpt),
		cmocka_unit_test(test_pasv),
		cmocka_unit_test(test_epsv),
		cmocka_unit_test(test_pasv_ipv6_alias),
		cmocka_unit_test(test_port),
		cmocka_unit_test(test_eprt),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_expect_fails),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_hold_and_flush),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_auth_tls),
		cmocka_unit_test(test_log_budget),
		cmocka_unit_test(test_no_datagram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
