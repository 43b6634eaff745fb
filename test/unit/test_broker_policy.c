// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The broker's pure decisions: path, splice mode, relay choice, ACL, names. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

/* The broker's policy and its config loader (to build ACLs from YAML), built in. */
#include "../../broker/policy.c"
#include "../../broker/config.c"

static void test_path(void **state)
{
	/* DIRECT whenever P is reachable, whatever S and the relays are. */
	assert_int_equal(path_choose(true, false, false), NS_PATH_DIRECT);
	assert_int_equal(path_choose(true, true, true), NS_PATH_DIRECT);
	assert_int_equal(path_choose(true, true, false), NS_PATH_DIRECT);
	/* REVERSE when only S is. */
	assert_int_equal(path_choose(false, true, false), NS_PATH_REVERSE);
	assert_int_equal(path_choose(false, true, true), NS_PATH_REVERSE);
	/* RELAY otherwise, and no path at all without a relay. */
	assert_int_equal(path_choose(false, false, true), NS_PATH_RELAY);
	assert_int_equal(path_choose(false, false, false), 0);
}

static struct ns_ep ep4(const char *ip, __u16 port)
{
	struct ns_ep e = { .port = port };

	assert_int_equal(ns_parse_addr(ip, &e.family, e.addr), 0);
	return e;
}

static void test_mode(void **state)
{
	struct ns_ep local = ep4("10.0.2.2", 40000);
	struct ns_ep same = ep4("198.51.100.7", 40000);	/* port-preserving NAT */
	struct ns_ep moved = ep4("198.51.100.7", 61000);	/* port-rewriting NAT */
	struct ns_ep pub = ep4("198.51.100.7", 40000);

	assert_int_equal(mode_choose(false, &local, &same), NS_MODE_PURE);
	assert_int_equal(mode_choose(false, &local, &moved), NS_MODE_PASSIVE);
	/* S without NAT: its local address is what the broker sees. */
	assert_int_equal(mode_choose(false, &pub, &pub), NS_MODE_PURE);
	/* S reachable can always choose its source port. */
	assert_int_equal(mode_choose(true, &local, &moved), NS_MODE_PURE);
	assert_int_equal(mode_choose(true, NULL, &moved), NS_MODE_PURE);
	/* Unknown local address (no LOCAL_ADDR in LOGIN): the safe default. */
	assert_int_equal(mode_choose(false, NULL, &moved), NS_MODE_PASSIVE);
	/* A zero port proves nothing. */
	local.port = 0;
	moved.port = 0;
	assert_int_equal(mode_choose(false, &local, &moved), NS_MODE_PASSIVE);
}

static void test_relay_pick(void **state)
{
	struct relay_cand c[4] = {
		{ .online = true, .family = NS_AF_INET, .load = 5 },
		{ .online = true, .family = NS_AF_INET, .load = 2, .pending = 3 },
		{ .online = false, .family = NS_AF_INET, .load = 0 },	/* offline */
		{ .online = true, .family = NS_AF_INET6, .load = 0 },	/* other family */
	};

	assert_int_equal(relay_pick(c, 4, NS_AF_INET, 0, NULL), 1);
	assert_int_equal(relay_pick(c, 4, NS_AF_INET6, 0, NULL), 3);
	/* Equal load: the one with fewer requests in flight. */
	c[0].load = 2;
	c[0].pending = 1;
	assert_int_equal(relay_pick(c, 4, NS_AF_INET, 0, NULL), 0);
	/* All equal: the first. */
	c[0].pending = 3;
	assert_int_equal(relay_pick(c, 4, NS_AF_INET, 0, NULL), 0);
	/* Nobody of that family, or nobody at all. */
	c[3].online = false;
	assert_int_equal(relay_pick(c, 4, NS_AF_INET6, 0, NULL), -1);
	assert_int_equal(relay_pick(c, 0, NS_AF_INET, 0, NULL), -1);
	/* Mixed-family agents (family 0): no relay can splice them. */
	assert_int_equal(relay_pick(c, 4, 0, 0, NULL), -1);
	/* A busy relay is passed over for another one ... */
	c[0].busy = true;
	assert_int_equal(relay_pick(c, 4, NS_AF_INET, 0, NULL), 1);
	/* ... and when every relay of the family is busy: wait for one. */
	c[1].busy = true;
	assert_int_equal(relay_pick(c, 4, NS_AF_INET, 0, NULL), -EBUSY);
	/* Busy but offline, or of another family: nothing to wait for. */
	c[3].online = true;
	c[3].busy = true;
	c[0].online = c[1].online = false;
	assert_int_equal(relay_pick(c, 4, NS_AF_INET, 0, NULL), -1);
	assert_int_equal(relay_pick(c, 4, NS_AF_INET6, 0, NULL), -EBUSY);
}

#define MS 1000

/* Round trips first, load among the near ones, unmeasured after measured,
 * unreachable last. */
static void test_relay_pick_rtt(void **state)
{
	struct relay_cand c[3] = {
		{ .online = true, .family = NS_AF_INET, .load = 0, .rtt_us = 80 * MS },
		{ .online = true, .family = NS_AF_INET, .load = 9, .rtt_us = 3 * MS },
		{ .online = true, .family = NS_AF_INET, .load = 0, .rtt_us = 0 },
	};
	enum relay_by by = RELAY_BY_MAX;

	/* the nearest, whatever its load; an unmeasured one does not compete */
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 2 * MS, &by), 1);
	assert_int_equal(by, RELAY_BY_RTT);
	/* within the slack of the nearest: the least loaded */
	c[0].rtt_us = 4 * MS;
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 2 * MS, &by), 0);
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 0, &by), 1);
	/* equal load within the slack: the nearer */
	c[1].load = 0;
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 2 * MS, &by), 1);
	/* the nearest is busy: the next measured one */
	c[1].busy = true;
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 2 * MS, &by), 0);
	c[1].busy = false;
	/* one agent gets no answer from it: it comes after the unmeasured */
	c[1].rtt_us = NS_RTT_UNREACHABLE;
	c[0].rtt_us = NS_RTT_UNREACHABLE;
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 2 * MS, &by), 2);
	assert_int_equal(by, RELAY_BY_LOAD);
	/* ... and when none answers both: the least loaded all the same */
	c[2].rtt_us = NS_RTT_UNREACHABLE;
	c[2].load = 4;
	c[1].load = 1;
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 2 * MS, &by), 0);
	assert_int_equal(by, RELAY_BY_UNREACHABLE);
	/* a measured relay of another family is no candidate */
	c[0].family = NS_AF_INET6;
	c[0].rtt_us = 1 * MS;
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 2 * MS, &by), 1);
	/* a lying agent's 1 µs only ranks among relays online */
	c[0].family = NS_AF_INET;
	c[0].online = false;
	assert_int_equal(relay_pick(c, 3, NS_AF_INET, 2 * MS, &by), 1);
}

static void test_acl(void **state)
{
	struct broker_cfg c;
	char err[256] = "";

	assert_int_equal(cfg_load_string(&c, "t.yaml",
		"agents:\n"
		"  - { name: home-nas, secret: a }\n"
		"  - { name: laptop, secret: b }\n"
		"  - { name: phone, secret: c }\n"
		"  - { name: office, secret: d }\n"
		"services:\n"
		"  - { name: web, allow: [laptop] }\n"
		"  - { name: office/web, allow: [phone, laptop] }\n"
		"  - { name: home-nas/ssh, allow: [] }\n", err, sizeof(err)), 0);
	/* "web" of any provider: laptop only. */
	assert_true(acl_allows(&c, "home-nas", "web", "laptop"));
	assert_false(acl_allows(&c, "home-nas", "web", "phone"));
	/* "office/web" wins over "web" for that provider. */
	assert_true(acl_allows(&c, "office", "web", "phone"));
	assert_true(acl_allows(&c, "office", "web", "laptop"));
	assert_false(acl_allows(&c, "office", "web", "home-nas"));
	/* allow: [] closes a service to everybody. */
	assert_false(acl_allows(&c, "home-nas", "ssh", "laptop"));
	/* Without an entry: open. "ssh" of another provider has none. */
	assert_true(acl_allows(&c, "office", "ssh", "phone"));
	assert_true(acl_allows(&c, "home-nas", "printer", "phone"));
	/* Names match exactly. */
	assert_false(acl_allows(&c, "home-nas", "web", "Laptop"));
	assert_true(acl_allows(&c, "home-nas", "Web", "phone"));
	cfg_free(&c);

	/* No services: section at all: everything open. */
	assert_int_equal(cfg_load_string(&c, "t.yaml", "agents: [{ name: a, secret: s }]\n",
					 err, sizeof(err)), 0);
	assert_true(acl_allows(&c, "a", "web", "b"));
	cfg_free(&c);
}

static void test_names(void **state)
{
	char longest[BROKER_NAME_MAX + 2];

	assert_true(name_valid("home-nas"));
	assert_true(name_valid("büro.drucker_2"));
	assert_false(name_valid(""));
	assert_false(name_valid(NULL));
	assert_false(name_valid("a/b"));
	assert_false(name_valid("a b"));
	assert_false(name_valid("tab\there"));
	assert_false(name_valid("del\x7f"));
	memset(longest, 'x', BROKER_NAME_MAX);
	longest[BROKER_NAME_MAX] = '\0';
	assert_true(name_valid(longest));
	longest[BROKER_NAME_MAX] = 'x';
	longest[BROKER_NAME_MAX + 1] = '\0';
	assert_false(name_valid(longest));
}

/* 0 means no limit; otherwise used reaches max and no further. */
static void test_limit_reached(void **state)
{
	assert_false(limit_reached(0, 0));
	assert_false(limit_reached(1000000, 0));
	assert_false(limit_reached(0, 1));
	assert_true(limit_reached(1, 1));
	assert_false(limit_reached(63, 64));
	assert_true(limit_reached(64, 64));
	assert_true(limit_reached(65, 64));
	assert_string_equal(limit_name(LIM_TUNNEL_RATE), "tunnel_rate");
	assert_string_equal(limit_name(LIM_PAIR_SPLICES), "pair_splices");
	assert_string_equal(limit_name(LIM_MAX), "?");
}

#define SEC 1000000000ULL

/* How many of n requests at the same instant pass. */
static unsigned int burst_at(struct ns_gcra *g, __u32 rate, __u32 burst, __u64 now,
			     unsigned int n)
{
	unsigned int ok = 0;

	while (n--)
		ok += ns_rate_allow(g, rate, burst, now);
	return ok;
}

static void test_rate(void **state)
{
	struct ns_gcra g = {};
	__u64 t = 1000 * SEC;
	unsigned int i, ok;

	/* exactly the burst at once, then nothing at that instant */
	assert_int_equal(burst_at(&g, 50, 100, t, 150), 100);
	assert_false(ns_rate_allow(&g, 50, 100, t));
	/* one more every 1/rate s: 20 ms at 50/s */
	assert_false(ns_rate_allow(&g, 50, 100, t + 19 * 1000000));
	assert_true(ns_rate_allow(&g, 50, 100, t + 20 * 1000000));
	assert_false(ns_rate_allow(&g, 50, 100, t + 20 * 1000000));
	/* sustained: 10 s at 200/s offered from a full bucket pass the burst
	 * and the rate, no more */
	g.tat_ns = 0;
	for (ok = 0, i = 0; i < 2000; i++)
		ok += ns_rate_allow(&g, 50, 100, t + i * (SEC / 200));
	assert_in_range(ok, 100 + 500 - 2, 100 + 500 + 2);
	/* quiet for long enough: the whole burst again, and not more */
	assert_int_equal(burst_at(&g, 50, 100, t + 100 * SEC, 1000), 100);
	/* rate 0: no limit, the state untouched */
	g.tat_ns = 0;
	assert_int_equal(burst_at(&g, 0, 1, t, 1000), 1000);
	assert_int_equal(g.tat_ns, 0);
	/* burst 1 (or 0, taken as 1): strictly one per interval */
	assert_int_equal(burst_at(&g, 10, 1, t, 5), 1);
	assert_int_equal(burst_at(&g, 10, 0, t + SEC, 5), 1);
	assert_true(ns_rate_allow(&g, 10, 1, t + SEC + SEC / 10));
	/* time going backwards (another clock): no more than the burst */
	g.tat_ns = 0;
	assert_int_equal(burst_at(&g, 50, 3, t, 10), 3);
	assert_int_equal(burst_at(&g, 50, 3, t - SEC, 10), 0);
}

static void test_pair_key(void **state)
{
	char a[2 * BROKER_NAME_MAX + 2], b[sizeof(a)], small[4];

	assert_int_equal(pair_key("laptop", "home-nas", a, sizeof(a)), 0);
	assert_int_equal(pair_key("home-nas", "laptop", b, sizeof(b)), 0);
	assert_string_equal(a, "home-nas/laptop");
	assert_string_equal(a, b);
	/* never an agent's name, never another pair's key */
	assert_false(name_valid(a));
	assert_int_equal(pair_key("a", "bc", a, sizeof(a)), 0);
	assert_int_equal(pair_key("ab", "c", b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(pair_key("x", "x", a, sizeof(a)), 0);
	assert_string_equal(a, "x/x");
	assert_int_equal(pair_key("abc", "def", small, sizeof(small)), -ENAMETOOLONG);
}

/* Free failures, then 1 s doubling to the cap; free 0: never. */
static void test_login_backoff(void **state)
{
	const __u64 S = 1000000000ULL;

	assert_int_equal(login_backoff_ns(0, 5, 60), 0);
	assert_int_equal(login_backoff_ns(5, 5, 60), 0);
	assert_int_equal(login_backoff_ns(6, 5, 60), 1 * S);
	assert_int_equal(login_backoff_ns(7, 5, 60), 2 * S);
	assert_int_equal(login_backoff_ns(10, 5, 60), 16 * S);
	assert_int_equal(login_backoff_ns(11, 5, 60), 32 * S);
	assert_int_equal(login_backoff_ns(12, 5, 60), 60 * S);
	assert_int_equal(login_backoff_ns(500, 5, 60), 60 * S);
	assert_int_equal(login_backoff_ns(0xffffffff, 5, 3600), 3600 * S);
	assert_int_equal(login_backoff_ns(1000, 0, 60), 0);
}

/* lib/log: burst lines per interval, the rest counted and told with the next. */
static void test_log_limited(void **state)
{
	const unsigned long long S = 1000000000ULL;
	struct ns_ratelog rl = { 0 };
	unsigned long long t = 100 * S;
	int i, n = 0;

	for (i = 0; i < 100; i++)
		n += ns_log_limited(&rl, 3, 60, t + i, NS_LOG_DEBUG, "line %d", i);
	assert_int_equal(n, 3);
	assert_int_equal(rl.quiet, 97);
	/* still the same window */
	assert_int_equal(ns_log_limited(&rl, 3, 60, t + 59 * S, NS_LOG_DEBUG, "x"), 0);
	assert_int_equal(rl.quiet, 98);
	/* the next window: written, and the count told (then cleared) */
	assert_int_equal(ns_log_limited(&rl, 3, 60, t + 60 * S, NS_LOG_DEBUG, "x"), 1);
	assert_int_equal(rl.quiet, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_mode),
		cmocka_unit_test(test_relay_pick),
		cmocka_unit_test(test_relay_pick_rtt),
		cmocka_unit_test(test_acl),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_limit_reached),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_pair_key),
		cmocka_unit_test(test_login_backoff),
		cmocka_unit_test(test_log_limited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
