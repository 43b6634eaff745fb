// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agent.yaml: the contract's example, defaults, and each error at its file:line:col. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit/capture.h"

/* The agent's config loader (and the address helpers and ALG names it
 * uses), built in. */
#include "../../agent/agent_util.c"
#include "../../agent/alg.c"
#include "../../agent/alg_ftp.c"
#include "../../agent/alg_sip.c"
#include "../../agent/alg_sdp.c"
#include "../../agent/agent_config.c"

static const char contract[] =
	"broker: 203.0.113.10:7700\n"
	"name: home-nas\n"
	"secret: nas-secret\n"
	"broker-fingerprint: sha256:00112233445566778899aabbccddeeff"
	"00112233445566778899AABBCCDDEEFF\n"
	"tunnel-listen: 0.0.0.0:7701     # optional\n"
	"publish:\n"
	"  - { name: web, target: 127.0.0.1:8080, proto: tcp }\n"
	"  - { name: dns, target: 192.168.1.1:53, proto: udp, compress: false }\n"
	"subscribe:\n"
	"  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp }\n";

/* text loads; without a word of TLS in it, with insecure: true added. */
static void load_ok(struct agent_cfg *c, const char *text)
{
	char err[512] = "", *t = NULL;

	if (!strstr(text, "broker-fingerprint") && !strstr(text, "broker-ca") &&
	    !strstr(text, "insecure"))
		assert_true(asprintf(&t, "%s%sinsecure: true\n", text,
				     *text && text[strlen(text) - 1] != '\n' ? "\n" : "") > 0);
	if (agent_cfg_load_string(c, "t.yaml", t ? t : text, err, sizeof(err)))
		fail_msg("load failed: %s", err);
	free(t);
}

/* Loading fails with -EINVAL and exactly this message; nothing is left allocated. */
static void load_fails(const char *text, const char *want)
{
	struct agent_cfg c;
	char err[512] = "";

	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(agent_cfg_load_string(&c, "t.yaml", text, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	assert_null(c.pub);
	assert_null(c.sub);
}

static __u16 port_of(const struct sockaddr_storage *ss)
{
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void test_contract_example(void **state)
{
	struct agent_cfg c;
	char buf[AGENT_SA_STRLEN];

	load_ok(&c, contract);
	assert_string_equal(agent_sa_str(&c.broker, buf, sizeof(buf)), "203.0.113.10:7700");
	assert_int_equal(c.broker_len, sizeof(struct sockaddr_in));
	assert_string_equal(c.name, "home-nas");
	assert_string_equal(c.secret, "nas-secret");
	assert_true(c.tls.has_pin);
	assert_int_equal(c.tls.pin[0], 0x00);
	assert_int_equal(c.tls.pin[31], 0xff);
	assert_false(c.tls.insecure);
	assert_true(c.has_tunnel_listen);
	assert_string_equal(agent_sa_str(&c.tunnel_listen, buf, sizeof(buf)), "0.0.0.0:7701");
	assert_int_equal(c.npub, 2);
	assert_string_equal(c.pub[0].name, "web");
	assert_string_equal(agent_sa_str(&c.pub[0].target, buf, sizeof(buf)), "127.0.0.1:8080");
	assert_int_equal(c.pub[0].proto, IPPROTO_TCP);
	assert_false(c.pub[0].compress);
	assert_string_equal(c.pub[1].name, "dns");
	assert_int_equal(c.pub[1].proto, IPPROTO_UDP);
	assert_int_equal(port_of(&c.pub[1].target), 53);
	assert_int_equal(c.nsub, 1);
	assert_string_equal(c.sub[0].service, "home-nas/web");
	assert_string_equal(agent_sa_str(&c.sub[0].listen, buf, sizeof(buf)), "127.0.0.1:18080");
	assert_int_equal(c.sub[0].proto, IPPROTO_TCP);
	assert_int_equal(c.sub[0].pool, AGENT_POOL_DEFAULT);
	assert_int_equal(c.sub[0].pool_idle_s, AGENT_POOL_IDLE_S);
	assert_int_equal(c.udp_idle_s, AGENT_UDP_IDLE_S);
	assert_int_equal(c.connect_timeout_s, AGENT_CONNECT_TIMEOUT_S);
	agent_cfg_free(&c);
	assert_null(c.pub);
	agent_cfg_free(&c);		/* twice is fine */
}

static void test_defaults_and_options(void **state)
{
	struct agent_cfg c;
	char buf[AGENT_SA_STRLEN];

	load_ok(&c, "broker: 203.0.113.10\nname: a\nsecret: s\n"
		    "publish:\n  - name: ssh\n    target: '[2001:db8::5]:22'\n    compress: yes\n"
		    "subscribe:\n  - { service: b/dns, listen: '[::1]:5353', proto: udp }\n"
		    "udp-idle: 5\nconnect-timeout: 3\n");
	assert_int_equal(port_of(&c.broker), NS_PROTO_PORT);	/* default port */
	assert_false(c.has_tunnel_listen);
	assert_int_equal(c.pub[0].proto, IPPROTO_TCP);		/* default proto */
	assert_true(c.pub[0].compress);
	assert_string_equal(agent_sa_str(&c.pub[0].target, buf, sizeof(buf)),
			    "[2001:db8::5]:22");
	assert_int_equal(c.sub[0].proto, IPPROTO_UDP);
	assert_int_equal(c.sub[0].pool, 0);		/* UDP: never pooled */
	assert_int_equal(c.udp_idle_s, 5);
	assert_int_equal(c.connect_timeout_s, 3);
	agent_cfg_free(&c);

	/* pool settings */
	load_ok(&c, "broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		    "  - { service: a/b, listen: 127.0.0.1:1, pool: 0 }\n"
		    "  - { service: a/c, listen: 127.0.0.1:2, pool: 64, pool-idle: 3600 }\n"
		    "  - { service: a/d, listen: 127.0.0.1:3, pool-idle: 1 }\n");
	assert_int_equal(c.sub[0].pool, 0);
	assert_int_equal(c.sub[1].pool, 64);
	assert_int_equal(c.sub[1].pool_idle_s, 3600);
	assert_int_equal(c.sub[2].pool, AGENT_POOL_DEFAULT);
	assert_int_equal(c.sub[2].pool_idle_s, 1);
	agent_cfg_free(&c);

	/* no publish / subscribe at all, or empty ones */
	load_ok(&c, "broker: 127.0.0.1:7700\nname: a\nsecret: s\npublish: []\nsubscribe:\n");
	assert_int_equal(c.npub, 0);
	assert_int_equal(c.nsub, 0);
	agent_cfg_free(&c);
}

/* text loads; what it wrote on stderr (the deprecation notes) into out. */
struct load_arg {
	struct agent_cfg *c;
	const char *text;
};

static void load_ok_arg(void *arg)
{
	struct load_arg *a = arg;

	load_ok(a->c, a->text);
}

static void load_ok_stderr(struct agent_cfg *c, const char *text, char *out, size_t len)
{
	struct load_arg a = { c, text };

	capture_stderr(load_ok_arg, &a, out, len);
}

/* The underscore spelling of the agent's keys still loads, with one note per
 * key naming file:line:col and the new spelling. */
static void test_old_spelling(void **state)
{
	struct agent_cfg c;
	char notes[2048];

	load_ok_stderr(&c, "broker: 127.0.0.1\nname: a\nsecret: s\n"
		       "tunnel_listen: 0.0.0.0:7701\nudp_idle: 5\nconnect_timeout: 3\n"
		       "subscribe:\n  - { service: a/b, listen: 127.0.0.1:1, pool_idle: 7 }\n",
		       notes, sizeof(notes));
	assert_true(c.has_tunnel_listen);
	assert_int_equal(c.udp_idle_s, 5);
	assert_int_equal(c.connect_timeout_s, 3);
	assert_int_equal(c.sub[0].pool_idle_s, 7);
	agent_cfg_free(&c);
	assert_non_null(strstr(notes, "t.yaml:4:1: 'tunnel_listen' is deprecated: write "
				      "'tunnel-listen'"));
	assert_non_null(strstr(notes, "t.yaml:5:1: 'udp_idle' is deprecated: write 'udp-idle'"));
	assert_non_null(strstr(notes, "t.yaml:6:1: 'connect_timeout' is deprecated: write "
				      "'connect-timeout'"));
	assert_non_null(strstr(notes, "t.yaml:8:42: 'pool_idle' is deprecated: write "
				      "'pool-idle'"));
	/* the new spelling says nothing */
	load_ok_stderr(&c, "broker: 127.0.0.1\nname: a\nsecret: s\nudp-idle: 5\n", notes,
		       sizeof(notes));
	agent_cfg_free(&c);
	assert_string_equal(notes, "");
	/* both spellings at once: an error */
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nudp-idle: 5\nudp_idle: 6\n",
		   "t.yaml:5:1: 'udp_idle' and 'udp-idle' are the same setting");
}

/* How to authenticate the broker: one way, stated right. */
static void test_broker_tls(void **state)
{
	struct agent_cfg c;

	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\n",
		   "no way to authenticate the broker: add broker-fingerprint: sha256:... "
		   "(`natsplice-broker --fingerprint -f broker.yaml` prints it), or broker-ca: "
		   "FILE (and broker-name), or insecure: true for plain text");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nbroker-fingerprint: sha256:abc\n",
		   "t.yaml:4:21: bad value for broker-fingerprint: 'sha256:abc' (sha256: and "
		   "64 hex digits)");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\ninsecure: true\nbroker-ca: /x\n",
		   "insecure: true (plain text) and broker-ca exclude each other");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nbroker-name: b.example\n",
		   "broker-name is checked against broker-ca: give broker-ca too (or drop "
		   "broker-name and pin with broker-fingerprint)");
	load_ok(&c, "broker: 127.0.0.1\nname: a\nsecret: s\nbroker-ca: /etc/ca.pem\n"
		    "broker-name: b.example\n");
	assert_string_equal(c.tls.ca, "/etc/ca.pem");
	assert_string_equal(c.tls.host, "b.example");
	assert_false(c.tls.has_pin);
	agent_cfg_free(&c);
	/* openssl x509 -fingerprint -sha256 style, colons and capitals */
	load_ok(&c, "broker: 127.0.0.1\nname: a\nsecret: s\nbroker-fingerprint: "
		    "'SHA256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:"
		    "77:88:99:AA:BB:CC:DD:EE:FF'\n");
	assert_true(c.tls.has_pin);
	assert_int_equal(c.tls.pin[10], 0xaa);
	agent_cfg_free(&c);
}

/* Unsafe settings: a short secret and insecure: true are warned about. */
static void test_unsafe(void **state)
{
	static const char fp[] = "broker-fingerprint: sha256:"
		"0011223344556677889900112233445566778899001122334455667788990011\n";
	struct ns_warnings w = {};
	struct agent_cfg c;
	char text[512];

	snprintf(text, sizeof(text), "broker: 127.0.0.1\nname: a\nsecret: "
		 "0123456789abcdef\n%s", fp);
	load_ok(&c, text);
	agent_cfg_warn(&c, &w);
	assert_int_equal(w.n, 0);
	agent_cfg_free(&c);

	snprintf(text, sizeof(text), "broker: 127.0.0.1\nname: a\nsecret: 0123456789\n%s", fp);
	load_ok(&c, text);
	agent_cfg_warn(&c, &w);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.msg[0], "the secret is 10 bytes: 16 or more are advised "
			    "(`openssl rand -hex 16` makes one)");
	agent_cfg_free(&c);

	memset(&w, 0, sizeof(w));
	load_ok(&c, "broker: 127.0.0.1\nname: a\nsecret: s\ninsecure: true\n");
	agent_cfg_warn(&c, &w);
	assert_int_equal(w.n, 2);
	assert_non_null(strstr(w.msg[0], "the secret is 1 bytes"));
	assert_non_null(strstr(w.msg[0], "the broker refuses a secret shorter than 8 bytes"));
	assert_non_null(strstr(w.msg[1], "insecure: true: the control connection is plain "
			       "text"));
	agent_cfg_free(&c);
}

static void test_missing_keys(void **state)
{
	load_fails("", "needs --broker IP[:PORT] (or 'broker:' in the file)");
	load_fails("name: a\nsecret: s\n", "needs --broker IP[:PORT] (or 'broker:' in the file)");
	load_fails("broker: 127.0.0.1\nsecret: s\n", "needs --name NAME (or 'name:' in the file)");
	load_fails("broker: 127.0.0.1\nname: a\n",
		   "needs --secret SECRET (or 'secret:' in the file)");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n  - { target: 127.0.0.1:1 }\n",
		   "t.yaml:5:5: missing 'name'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n  - { name: x }\n",
		   "t.yaml:5:5: missing 'target'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: a/b }\n", "t.yaml:5:5: missing 'listen'");
}

/* expose: a public port for clients with no agent (issue 14). */
static void test_expose(void **state)
{
	struct agent_cfg c;
	const char *head = "broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n";
	char text[512];

	snprintf(text, sizeof(text), "%s  - name: web\n    target: 127.0.0.1:80\n"
		 "    expose: { port: 8080, allow: [192.0.2.0/24, '2001:db8::/32'], "
		 "max-conns: 50 }\n  - { name: ssh, target: 127.0.0.1:22, expose: {} }\n"
		 "  - { name: db, target: 127.0.0.1:5432 }\n", head);
	load_ok(&c, text);
	assert_true(c.pub[0].expose.on);
	assert_int_equal(c.pub[0].expose.port, 8080);
	assert_int_equal(c.pub[0].expose.max_conns, 50);
	assert_int_equal(c.pub[0].expose.nallow, 2);
	assert_string_equal(c.pub[0].expose.allow[1], "2001:db8::/32");
	assert_true(c.pub[1].expose.on);	/* the broker picks the port */
	assert_int_equal(c.pub[1].expose.port, 0);
	assert_false(c.pub[2].expose.on);
	agent_cfg_free(&c);
	snprintf(text, sizeof(text), "%s  - { name: dns, target: 127.0.0.1:53, proto: udp, "
		 "expose: { port: 53 } }\n", head);
	load_fails(text, "t.yaml:5:60: expose: public ports are for TCP services only");
	snprintf(text, sizeof(text), "%s  - { name: web, target: 127.0.0.1:80, "
		 "expose: { allow: [192.0.2.1/24] } }\n", head);
	load_fails(text, "t.yaml:5:58: allow: '192.0.2.1/24' is not an address prefix "
		   "(192.0.2.0/24, 2001:db8::/32, or one address)");
	snprintf(text, sizeof(text), "%s  - { name: web, target: 127.0.0.1:80, "
		 "expose: { port: 70000 } }\n", head);
	load_fails(text, "t.yaml:5:56: port must be 1..65535, not 70000");
	snprintf(text, sizeof(text), "%s  - { name: web, target: 127.0.0.1:80, "
		 "expose: 8080 }\n", head);
	load_fails(text, "t.yaml:5:48: expose must be a map: { port: N, allow: [PREFIX, ...], "
		   "max-conns: N } (port: the public port on the relay; without it the broker "
		   "picks one)");
}

/* proxy-protocol: the PROXY protocol header to the server (issue 14). */
static void test_proxy_protocol(void **state)
{
	struct agent_cfg c;
	const char *head = "broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n";
	char text[512];

	snprintf(text, sizeof(text), "%s  - { name: a, target: 127.0.0.1:80, proxy-protocol: v1 }\n"
		 "  - { name: b, target: 127.0.0.1:80, proxy-protocol: v2 }\n"
		 "  - { name: c, target: 127.0.0.1:80, proxy-protocol: off }\n"
		 "  - { name: d, target: 127.0.0.1:80 }\n", head);
	load_ok(&c, text);
	assert_int_equal(c.pub[0].proxy, NS_PROXY_V1);
	assert_int_equal(c.pub[1].proxy, NS_PROXY_V2);
	assert_int_equal(c.pub[2].proxy, 0);
	assert_int_equal(c.pub[3].proxy, 0);
	agent_cfg_free(&c);
	snprintf(text, sizeof(text), "%s  - { name: a, target: 127.0.0.1:80, proxy-protocol: v3 }\n",
		 head);
	load_fails(text, "t.yaml:5:54: proxy-protocol must be v1, v2 or off, not 'v3'");
	snprintf(text, sizeof(text), "%s  - { name: a, target: 127.0.0.1:53, proto: udp, "
		 "proxy-protocol: v2 }\n", head);
	load_fails(text, "t.yaml:5:66: proxy-protocol: for TCP services only");
}

static void test_unknown_keys(void **state)
{
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nbrokers: x\n",
		   "t.yaml:4:1: unknown setting 'brokers'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: web, target: 127.0.0.1:80, protocol: tcp }\n",
		   "t.yaml:5:40: unknown key 'protocol'");
	/* compress is a publish setting, not a subscribe one */
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - service: a/b\n    listen: 127.0.0.1:1\n    compress: true\n",
		   "t.yaml:7:5: unknown key 'compress'");
	load_fails("broker: 127.0.0.1\nbroker: 127.0.0.2\nname: a\nsecret: s\n",
		   "t.yaml:2:1: duplicate key 'broker' (first at line 1)");
}

static void test_bad_values(void **state)
{
	load_fails("broker: example.com:7700\nname: a\nsecret: s\n",
		   "t.yaml:1:9: bad value for broker: 'example.com:7700' (IP or IP:PORT, "
		   "e.g. 192.0.2.1:7700 or [2001:db8::1]:7700)");
	load_fails("broker: 127.0.0.1:0\nname: a\nsecret: s\n",
		   "t.yaml:1:9: bad value for broker: '127.0.0.1:0' (IP or IP:PORT, "
		   "e.g. 192.0.2.1:7700 or [2001:db8::1]:7700)");
	load_fails("broker: 127.0.0.1\nname: a/b\nsecret: s\n",
		   "t.yaml:2:7: agent name 'a/b': no '/', blanks or control characters allowed");
	load_fails("broker: 127.0.0.1\nname: ''\nsecret: s\n",
		   "t.yaml:2:7: bad value for name: '' (1-255 bytes, no '/', blanks or "
		   "control characters)");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: [s]\n",
		   "t.yaml:3:9: expected a scalar, found a sequence");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\ntunnel-listen: 0.0.0.0\n",
		   "t.yaml:4:16: bad value for tunnel-listen: '0.0.0.0' (IP:PORT, "
		   "e.g. 192.0.2.1:8080 or [2001:db8::1]:8080)");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: web, target: 127.0.0.1:80, proto: sctp }\n",
		   "t.yaml:5:47: proto must be tcp or udp, not 'sctp'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: web, target: 127.0.0.1:80, compress: maybe }\n",
		   "t.yaml:5:50: expected true or false, got 'maybe'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: web, target: localhost:80 }\n",
		   "t.yaml:5:26: target must be IP:PORT (e.g. 192.0.2.1:8080 or "
		   "[2001:db8::1]:8080), not 'localhost:80'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nudp-idle: 0\n",
		   "t.yaml:4:11: bad value for udp-idle: '0' (seconds, 1-604800)");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: a/b, listen: 127.0.0.1:1, pool: 65 }\n",
		   "t.yaml:5:48: pool must be 0..64, not 65");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: a/b, listen: 127.0.0.1:1, pool: -1 }\n",
		   "t.yaml:5:48: expected a decimal integer 0..4294967295, got '-1'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: a/b, listen: 127.0.0.1:1, pool-idle: 0 }\n",
		   "t.yaml:5:53: pool-idle must be 1..3600 seconds, not 0");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: a/b, listen: 127.0.0.1:1, proto: udp, pool: 2 }\n",
		   "t.yaml:5:60: pool: only TCP subscriptions keep pooled tunnels");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: a/b, listen: 127.0.0.1:1, proto: udp, pool-idle: 5 }\n",
		   "t.yaml:5:65: pool-idle: only TCP subscriptions keep pooled tunnels");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nconnect-timeout: 1m\n",
		   "t.yaml:4:18: bad value for connect-timeout: '1m' (seconds, 1-600)");
}

static void test_lists(void **state)
{
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish: web\n",
		   "t.yaml:4:10: publish must be a list of mappings");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n  - web\n",
		   "t.yaml:5:5: expected a mapping, found a scalar");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: web, target: 127.0.0.1:80 }\n"
		   "  - { name: web, target: 127.0.0.1:81, proto: udp }\n",
		   "t.yaml:6:13: service 'web' is already published");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: web, listen: 127.0.0.1:1 }\n",
		   "t.yaml:5:16: service must be AGENT/NAME (e.g. home-nas/web), not 'web'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: a/b/c, listen: 127.0.0.1:1 }\n",
		   "t.yaml:5:16: service must be AGENT/NAME (e.g. home-nas/web), not 'a/b/c'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: /b, listen: 127.0.0.1:1 }\n",
		   "t.yaml:5:16: service must be AGENT/NAME (e.g. home-nas/web), not '/b'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		   "  - { service: a/b, listen: 127.0.0.1:1 }\n"
		   "  - { service: a/c, listen: 127.0.0.1:1, proto: tcp }\n",
		   "t.yaml:6:29: tcp 127.0.0.1:1 is already used by subscribe 1 (a/b)");
}

/* Multi-connection services: ports and reverse ports, an ALG. */
static void test_ports_and_alg(void **state)
{
	struct agent_cfg c;

	load_ok(&c, "broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		    "  - { name: lab, target: 127.0.0.1:7000, ports: [\"7001-7010\", "
		    "\"7000/udp\", 9000], reverse: [\"5002\"] }\n"
		    "  - { name: ftp, target: 127.0.0.1:21, alg: ftp }\n"
		    "  - { name: sip, target: 127.0.0.1:5060, proto: udp, alg: sip, "
		    "ports: \"5062\" }\n"
		    "subscribe:\n"
		    "  - { service: b/lab, listen: 127.0.0.1:7000, ports: [\"7001-7010\"], "
		    "reverse: [\"5002/tcp\"] }\n");
	assert_int_equal(c.pub[0].ports.n, 3);
	assert_true(agent_ports_has(&c.pub[0].ports, IPPROTO_TCP, 7001));
	assert_true(agent_ports_has(&c.pub[0].ports, IPPROTO_TCP, 7010));
	assert_false(agent_ports_has(&c.pub[0].ports, IPPROTO_TCP, 7011));
	assert_true(agent_ports_has(&c.pub[0].ports, IPPROTO_UDP, 7000));
	assert_false(agent_ports_has(&c.pub[0].ports, IPPROTO_TCP, 7000));
	assert_true(agent_ports_has(&c.pub[0].ports, IPPROTO_TCP, 9000));
	assert_true(agent_ports_has(&c.pub[0].reverse, IPPROTO_TCP, 5002));
	assert_string_equal(c.pub[1].alg, "ftp");
	assert_string_equal(c.pub[2].alg, "sip");
	/* a scalar is one entry, with the service's proto */
	assert_true(agent_ports_has(&c.pub[2].ports, IPPROTO_UDP, 5062));
	assert_true(agent_ports_has(&c.sub[0].ports, IPPROTO_TCP, 7005));
	assert_true(agent_ports_has(&c.sub[0].reverse, IPPROTO_TCP, 5002));
	agent_cfg_free(&c);

	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: x, target: 127.0.0.1:1, ports: [\"70-60\"] }\n",
		   "t.yaml:5:45: a port must be PORT or PORT-PORT, optionally followed by "
		   "/tcp or /udp (e.g. 5001, 6000-6010/udp), not '70-60'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: x, target: 127.0.0.1:1, ports: [\"0\"] }\n",
		   "t.yaml:5:45: a port must be PORT or PORT-PORT, optionally followed by "
		   "/tcp or /udp (e.g. 5001, 6000-6010/udp), not '0'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: x, target: 127.0.0.1:1, ports: [\"80/sctp\"] }\n",
		   "t.yaml:5:45: a port must be PORT or PORT-PORT, optionally followed by "
		   "/tcp or /udp (e.g. 5001, 6000-6010/udp), not '80/sctp'");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: x, target: 127.0.0.1:1, ports: { a: 1 } }\n",
		   "t.yaml:5:44: ports must be a list of ports");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: x, target: 127.0.0.1:1, alg: gopher }\n",
		   "t.yaml:5:42: unknown alg 'gopher' (there are: ftp, sip)");
	load_fails("broker: 127.0.0.1\nname: a\nsecret: s\npublish:\n"
		   "  - { name: x, target: 127.0.0.1:1, compress: true, alg: ftp }\n",
		   "t.yaml:5:58: a service with an alg cannot be compressed");
}

/* The same port for TCP and UDP is two different sockets: allowed. */
static void test_same_port_both_protos(void **state)
{
	struct agent_cfg c;

	load_ok(&c, "broker: 127.0.0.1\nname: a\nsecret: s\nsubscribe:\n"
		    "  - { service: a/b, listen: 127.0.0.1:53, proto: tcp }\n"
		    "  - { service: a/c, listen: 127.0.0.1:53, proto: udp }\n");
	assert_int_equal(c.nsub, 2);
	agent_cfg_free(&c);
}

static void test_syntax_error_position(void **state)
{
	struct agent_cfg c;
	char err[512] = "";

	assert_int_equal(agent_cfg_load_string(&c, "t.yaml", "broker: [1\nname: a\n", err,
					       sizeof(err)), -EINVAL);
	assert_int_equal(strncmp(err, "t.yaml:", 7), 0);
	assert_int_equal(agent_cfg_load(&c, "/nonexistent/agent.yaml", err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/agent.yaml"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract_example),
		cmocka_unit_test(test_defaults_and_options),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_broker_tls),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_old_spelling),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_same_port_both_protos),
		cmocka_unit_test(test_ports_and_alg),
		cmocka_unit_test(test_expose),
		cmocka_unit_test(test_proxy_protocol),
		cmocka_unit_test(test_syntax_error_position),
		cmocka_unit_test(test_unsafe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
