// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* broker.yaml: the contract's example, defaults, and each error at its file:line:col. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* The broker's config loader (and the name check it uses), built in. */
#include "../../broker/policy.c"
#include "../../broker/config.c"

static const char contract[] =
	"listen: 203.0.113.10:7700\n"
	"http: 127.0.0.1:9770\n"
	"agents:\n"
	"  - { name: home-nas, secret: nas-secret }\n"
	"  - { name: laptop,   secret: laptop-secret }\n"
	"relays:\n"
	"  - { name: relay1, secret: relay-secret }\n"
	"services:            # optional ACL\n"
	"  - { name: web, allow: [laptop] }\n";

static void load_ok(struct broker_cfg *c, const char *text)
{
	char err[512] = "";

	if (cfg_load_string(c, "t.yaml", text, err, sizeof(err)))
		fail_msg("load failed: %s", err);
}

/* Loading fails with exactly this message. */
static void load_fails(const char *text, const char *want)
{
	struct broker_cfg c;
	char err[512] = "";

	assert_int_equal(cfg_load_string(&c, "t.yaml", text, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	/* and leaves nothing behind */
	assert_null(c.agents);
	assert_null(c.relays);
	assert_null(c.acls);
}

static void test_contract(void **state)
{
	const struct sockaddr_in *sin;
	struct broker_cfg c;
	int i;

	load_ok(&c, contract);
	sin = (const struct sockaddr_in *)&c.listen;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 7700);
	assert_int_equal(sin->sin_addr.s_addr, inet_addr("203.0.113.10"));
	sin = (const struct sockaddr_in *)&c.http;
	assert_true(c.http_len > 0);
	assert_int_equal(ntohs(sin->sin_port), 9770);
	assert_int_equal(c.nagents, 2);
	i = cfg_agent_index(&c, "laptop");
	assert_true(i >= 0);
	assert_string_equal(c.agents[i].secret, "laptop-secret");
	i = cfg_agent_index(&c, "home-nas");
	assert_true(i >= 0);
	assert_string_equal(c.agents[i].secret, "nas-secret");
	assert_int_equal(cfg_agent_index(&c, "relay1"), -1);
	assert_int_equal(cfg_agent_index(&c, "nobody"), -1);
	assert_int_equal(c.nrelays, 1);
	assert_int_equal(cfg_relay_index(&c, "relay1"), 0);
	assert_int_equal(cfg_relay_index(&c, "laptop"), -1);
	assert_int_equal(c.nacls, 1);
	assert_string_equal(c.acls[0].service, "web");
	assert_int_equal(c.acls[0].nallow, 1);
	assert_string_equal(c.acls[0].allow[0], "laptop");
	/* defaults of what the contract leaves out */
	assert_int_equal(c.hold_time_s, NS_HOLD_TIME_S);
	assert_int_equal(c.negotiate_timeout_s, NS_NEGOTIATE_TIMEOUT_S);
	assert_int_equal(c.probe_timeout_ms, 1000);
	cfg_free(&c);
	cfg_free(&c);	/* twice is harmless */
}

static void test_defaults_and_options(void **state)
{
	const struct sockaddr_in6 *sin6;
	struct broker_cfg c;
	char many[8192];
	size_t off;
	int i;

	load_ok(&c, "");
	assert_int_equal(((const struct sockaddr_in *)&c.listen)->sin_port, htons(NS_PROTO_PORT));
	assert_int_equal(c.http_len, 0);
	assert_int_equal(c.nagents, 0);
	assert_int_equal(cfg_agent_index(&c, "x"), -1);
	assert_int_equal(c.login_timeout_s, 10);
	assert_int_equal(c.session_history, 1000);
	cfg_free(&c);

	load_ok(&c, "listen: '[2001:db8::1]:7000'\n"
		    "hold-time: 9\nnegotiate-timeout: 3\nprobe-timeout-ms: 250\n"
		    "login-timeout: 4\nsession-history: 0\n");
	sin6 = (const struct sockaddr_in6 *)&c.listen;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 7000);
	assert_int_equal(c.hold_time_s, 9);
	assert_int_equal(c.negotiate_timeout_s, 3);
	assert_int_equal(c.probe_timeout_ms, 250);
	assert_int_equal(c.login_timeout_s, 4);
	assert_int_equal(c.session_history, 0);
	cfg_free(&c);

	/* Many agents in any order: all found (sorted for lookup). */
	off = snprintf(many, sizeof(many), "agents:\n");
	for (i = 99; i >= 0; i--)
		off += snprintf(many + off, sizeof(many) - off,
				"  - { name: agent%d, secret: s%d }\n", i, i);
	load_ok(&c, many);
	assert_int_equal(c.nagents, 100);
	for (i = 0; i < 100; i++) {
		char name[16], secret[16];

		snprintf(name, sizeof(name), "agent%d", i);
		snprintf(secret, sizeof(secret), "s%d", i);
		assert_true(cfg_agent_index(&c, name) >= 0);
		assert_string_equal(c.agents[cfg_agent_index(&c, name)].secret, secret);
	}
	cfg_free(&c);
}

static void test_errors_top(void **state)
{
	load_fails("listen: 1.2.3.4:7700\nlisten-port: 5\n", "t.yaml:2:1: unknown setting 'listen-port'");
	load_fails("listen: 1.2.3.4\n",
		   "t.yaml:1:9: bad value for listen: '1.2.3.4' (IP:PORT, e.g. 192.0.2.1:8080 "
		   "or [2001:db8::1]:8080)");
	load_fails("http: localhost:80\n",
		   "t.yaml:1:7: bad value for http: 'localhost:80' (IP:PORT, e.g. 192.0.2.1:8080 "
		   "or [2001:db8::1]:8080)");
	load_fails("listen: [1, 2]\n", "t.yaml:1:9: expected a scalar, found a sequence");
	load_fails("hold-time: 2\n", "t.yaml:1:12: bad value for hold-time: '2' (seconds, 3-3600)");
	load_fails("negotiate-timeout: 0\n", "t.yaml:1:20: bad value for negotiate-timeout: '0' (seconds, 1-300)");
	load_fails("probe-timeout-ms: ten\n",
		   "t.yaml:1:19: bad value for probe-timeout-ms: 'ten' (10-60000)");
	load_fails("agents: { name: a, secret: b }\n",
		   "t.yaml:1:9: expected a sequence of { name, secret }");
	load_fails("agents:\n  - { name: a, secret: b\n",
		   "t.yaml:3:1: did not find expected ',' or '}' (while parsing a flow mapping at line 2)");
}

/* An agent's expose ACL, and the public port settings (issue 14). */
static void test_expose(void **state)
{
	struct broker_cfg c;
	int i;

	load_ok(&c, "agents:\n  - { name: a, secret: 12345678, expose: [8080, \"8000-8099\"] }\n"
		"  - { name: b, secret: 12345678 }\nrelays:\n  - { name: r, secret: 12345678 }\n"
		"public-connect-timeout: 7\npublic-max-conns: 9\n");
	i = cfg_agent_index(&c, "a");
	assert_int_equal(c.agents[i].nexpose, 2);
	assert_int_equal(c.agents[i].expose[0].lo, 8080);
	assert_int_equal(c.agents[i].expose[0].hi, 8080);
	assert_int_equal(c.agents[i].expose[1].lo, 8000);
	assert_int_equal(c.agents[i].expose[1].hi, 8099);
	assert_int_equal(c.agents[cfg_agent_index(&c, "b")].nexpose, 0);
	assert_int_equal(c.public_timeout_s, 7);
	assert_int_equal(c.public_max_conns, 9);
	cfg_free(&c);
	load_ok(&c, "");
	assert_int_equal(c.public_timeout_s, BROKER_PUBLIC_TIMEOUT_S);
	assert_int_equal(c.public_max_conns, BROKER_PUBLIC_MAX_CONNS);
	cfg_free(&c);
	load_fails("agents:\n  - { name: a, secret: 12345678, expose: [80, 99999] }\n",
		   "t.yaml:2:47: expose: '99999' is not a port or a range LO-HI (1-65535)");
	load_fails("agents:\n  - { name: a, secret: 12345678, expose: { port: 80 } }\n",
		   "t.yaml:2:42: expose must be a list of ports and port ranges (8080, \"8000-8099\")");
	load_fails("relays:\n  - { name: r, secret: 12345678, expose: [80] }\n",
		   "t.yaml:2:34: unknown key 'expose'");
}

static void test_errors_entries(void **state)
{
	load_fails("agents:\n  - { name: a, secret: b, port: 1 }\n",
		   "t.yaml:2:27: unknown key 'port'");
	load_fails("agents:\n  - { name: a }\n", "t.yaml:2:5: agent entry needs 'secret'");
	load_fails("relays:\n  - { secret: a }\n", "t.yaml:2:5: relay entry needs 'name'");
	load_fails("agents:\n  - { name: a, secret: '' }\n", "t.yaml:2:24: empty secret");
	load_fails("agents:\n  - { name: a/b, secret: s }\n",
		   "t.yaml:2:13: bad name 'a/b' (1..255 bytes, no '/', space or control characters)");
	load_fails("agents:\n  - { name: 'a b', secret: s }\n",
		   "t.yaml:2:13: bad name 'a b' (1..255 bytes, no '/', space or control characters)");
	load_fails("agents:\n"
		   "  - { name: b, secret: s }\n"
		   "  - { name: a, secret: s }\n"
		   "  - { name: b, secret: t }\n",
		   "t.yaml:4:13: duplicate agent 'b' (first at line 2)");
	load_fails("relays:\n  - { name: r, secret: s }\n  - { name: r, secret: s }\n",
		   "t.yaml:3:13: duplicate relay 'r' (first at line 2)");
	load_fails("agents:\n  - name\n", "t.yaml:2:5: expected a mapping, found a scalar");
}

static void test_errors_acl(void **state)
{
	const char *agents = "agents:\n  - { name: laptop, secret: s }\n  - { name: nas, secret: t }\n";
	char text[512];

	snprintf(text, sizeof(text), "%sservices:\n  - { name: web, allow: [laptop, phone] }\n",
		 agents);
	load_fails(text, "t.yaml:5:34: unknown agent 'phone'");
	snprintf(text, sizeof(text), "%sservices:\n  - { name: pc/web, allow: [laptop] }\n", agents);
	load_fails(text, "t.yaml:5:13: unknown agent 'pc'");
	snprintf(text, sizeof(text), "%sservices:\n  - { name: nas/web/x, allow: [] }\n", agents);
	load_fails(text, "t.yaml:5:13: bad service 'nas/web/x' (\"name\" or \"agent/name\")");
	snprintf(text, sizeof(text), "%sservices:\n  - { name: web, allow: laptop }\n", agents);
	load_fails(text, "t.yaml:5:25: allow: expected a sequence of agent names ([] for none)");
	snprintf(text, sizeof(text), "%sservices:\n  - { name: web }\n", agents);
	load_fails(text, "t.yaml:5:5: service entry needs 'allow'");
	snprintf(text, sizeof(text),
		 "%sservices:\n  - { name: web, allow: [] }\n  - { name: web, allow: [nas] }\n",
		 agents);
	load_fails(text, "t.yaml:6:13: duplicate service 'web' (first at line 5)");
	/* The ACL may come before the agents in the file. */
	snprintf(text, sizeof(text), "services:\n  - { name: nas/web, allow: [laptop] }\n%s", agents);
	{
		struct broker_cfg c;

		load_ok(&c, text);
		assert_int_equal(c.nacls, 1);
		cfg_free(&c);
	}
}

static void test_file(void **state)
{
	struct broker_cfg c;
	char err[512] = "";
	char path[] = "/tmp/test_broker_config.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "agents:\n  - { name: a }\n", 24), 24);
	close(fd);
	assert_int_equal(cfg_load_file(&c, path, err, sizeof(err)), -EINVAL);
	{
		char want[600];

		snprintf(want, sizeof(want), "%s:2:5: agent entry needs 'secret'", path);
		assert_string_equal(err, want);
	}
	unlink(path);
	assert_int_equal(cfg_load_file(&c, path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
}

/* Does one of w's warnings contain part? */
static bool warned(const struct ns_warnings *w, const char *part)
{
	size_t i;

	for (i = 0; i < w->n && i < NS_WARN_MAX; i++)
		if (strstr(w->msg[i], part))
			return true;
	return false;
}

/* The agents' limits: defaults, from the file, 0 = none, bad values refused. */
static void test_limits(void **state)
{
	struct broker_cfg c;
	char err[512] = "";

	load_ok(&c, contract);
	assert_int_equal(c.max_services, 256);
	assert_int_equal(c.tunnel_rate, 50);
	assert_int_equal(c.tunnel_burst, 200);
	assert_int_equal(c.max_agent_sessions, 256);
	assert_int_equal(c.max_pair_splices, 64);
	cfg_free(&c);
	load_ok(&c, "max-services-per-agent: 3\ntunnel-rate: 0\ntunnel-burst: 7\n"
		"max-sessions-per-agent: 9\nmax-splices-per-pair: 0\n");
	assert_int_equal(c.max_services, 3);
	assert_int_equal(c.tunnel_rate, 0);
	assert_int_equal(c.tunnel_burst, 7);
	assert_int_equal(c.max_agent_sessions, 9);
	assert_int_equal(c.max_pair_splices, 0);
	cfg_free(&c);
	load_fails("tunnel-burst: 0\n", "t.yaml:1:15: bad value for tunnel-burst: '0' (1-1000000)");
	load_fails("max-splices-per-pair: -1\n", "t.yaml:1:23: bad value for "
		   "max-splices-per-pair: '-1' (0-1000000)");
	(void)err;
}

/* Unsafe settings: a secret under 8 bytes refused, under 16 warned about;
 * no agents, insecure, an open HTTP API off loopback warned about. */
static void test_unsafe(void **state)
{
	struct ns_warnings w = {};
	struct broker_cfg c;
	char err[512] = "";

	load_ok(&c, "agents:\n  - { name: a, secret: 0123456789abcdef }\n"
		"relays:\n  - { name: r, secret: 0123456789abcdef }\n");
	assert_int_equal(cfg_check(&c, err, sizeof(err)), 0);
	cfg_warn(&c, &w);
	assert_int_equal(w.n, 0);
	cfg_free(&c);

	load_ok(&c, "agents:\n  - { name: a, secret: 0123456789abcdef }\n"
		"  - { name: b, secret: 1234567 }\n");
	assert_int_equal(cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 3: the secret of agent 'b' is 7 bytes: at least 8 "
			    "are needed, 16 or more advised (`openssl rand -hex 16` makes one)");
	cfg_free(&c);
	load_ok(&c, "relays:\n  - { name: r, secret: x }\n");
	assert_int_equal(cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "relay 'r' is 1 bytes"));
	cfg_free(&c);

	/* discovery-relay: a relay of the file, and not with discovery-address */
	load_ok(&c, "relays:\n  - { name: r, secret: 0123456789abcdef }\n"
		"discovery-relay: r\n");
	assert_int_equal(cfg_check(&c, err, sizeof(err)), 0);
	assert_string_equal(c.disc_relay, "r");
	cfg_free(&c);
	load_ok(&c, "relays:\n  - { name: r, secret: 0123456789abcdef }\n"
		"discovery-relay: s\n");
	assert_int_equal(cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "discovery-relay s is not one of the relays");
	cfg_free(&c);
	load_ok(&c, "relays:\n  - { name: r, secret: 0123456789abcdef }\n"
		"discovery-relay: r\ndiscovery-address: 203.0.113.11\n");
	assert_int_equal(cfg_check(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "discovery-address and discovery-relay: one or the other");
	cfg_free(&c);

	load_ok(&c, "agents:\n  - { name: a, secret: 12345678 }\n");
	assert_int_equal(cfg_check(&c, err, sizeof(err)), 0);
	cfg_warn(&c, &w);
	assert_int_equal(w.n, 1);
	assert_true(warned(&w, "the secret of agent 'a' (line 2) is 8 bytes: 16 or more"));
	cfg_free(&c);

	/* an empty file loads, but nobody can log in */
	memset(&w, 0, sizeof(w));
	load_ok(&c, "");
	assert_int_equal(cfg_check(&c, err, sizeof(err)), 0);
	cfg_warn(&c, &w);
	assert_int_equal(w.n, 1);
	assert_true(warned(&w, "no agents"));
	cfg_free(&c);

	memset(&w, 0, sizeof(w));
	load_ok(&c, "insecure: true\nhttp: 0.0.0.0:9770\n"
		"agents:\n  - { name: a, secret: 0123456789abcdef }\n");
	cfg_warn(&c, &w);
	assert_int_equal(w.n, 2);
	assert_true(warned(&w, "insecure: true"));
	assert_true(warned(&w, "http is on a non-loopback address without http-tokens"));
	cfg_free(&c);
	/* loopback, or tokens: no warning about http */
	memset(&w, 0, sizeof(w));
	load_ok(&c, "http: 127.0.0.1:9770\nagents:\n  - { name: a, secret: 0123456789abcdef }\n");
	cfg_warn(&c, &w);
	assert_int_equal(w.n, 0);
	cfg_free(&c);
	load_ok(&c, "http: '[::1]:9770'\nagents:\n  - { name: a, secret: 0123456789abcdef }\n");
	cfg_warn(&c, &w);
	assert_int_equal(w.n, 0);
	cfg_free(&c);
	load_ok(&c, "http: 192.0.2.1:9770\nhttp-tokens: abcdefghijklmnopqrstuvwxyz012345\n"
		"agents:\n  - { name: a, secret: 0123456789abcdef }\n");
	cfg_warn(&c, &w);
	assert_int_equal(w.n, 0);
	cfg_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_defaults_and_options),
		cmocka_unit_test(test_errors_top),
		cmocka_unit_test(test_errors_entries),
		cmocka_unit_test(test_expose),
		cmocka_unit_test(test_errors_acl),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_unsafe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
