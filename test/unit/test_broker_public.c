// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Public ports on the broker's side (include/ns_proto.h, "Public ports"):
 * the real proto.c, session.c, public.c and conn.c in process, with no
 * event loop running, as test/fuzz/fuzz_session.c drives them. Peers are
 * socketpairs logged in with real proofs: agents a1 (may expose 8080 and
 * 9000-9001), a2 (may expose nothing) and relays r1, r2; the test plays
 * the relays and the agents, and reads what the broker sends them.
 * Also the relays' round trips (RELAYS, RTT), with the same harness.
 * (Written first against another broker side of the same protocol; its
 * harness kept, its cases made this broker's.)
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "../../broker/config.c"
#include "../../broker/policy.c"
#include "../../broker/limits.c"
#include "../../broker/doors.c"
#include "../../broker/probe.c"
#include "../../broker/conn.c"
#include "../../broker/proto.c"
#include "../../broker/session.c"
#include "../../broker/public.c"
#include "../../broker/rtt.c"
#include "../../broker/discovery.c"
#include "../../broker/control.c"
#include "broker_inproc.h"
#include "auth.h"
#include "bytes.h"
#include "log.h"

/* control.c serves the dashboard's files too; none here. */
int dashboard_file(const char *url, struct dashboard_file *f)
{
	return -ENOENT;
}

enum { A1, A2, R1, R2, NPEERS };
static const char *const names[NPEERS] = { "a1", "a2", "r1", "r2" };
static const char *const secrets[NPEERS] = { "a1-secret-0123", "a2-secret-0123",
					     "r1-secret-0123", "r2-secret-0123" };
static const char *const addrs[NPEERS] = { "203.0.113.5:40000", "203.0.113.6:40000",
					   "198.51.100.20:50000", "198.51.100.21:50000" };
static const char cfg_text[] =
	"listen: 127.0.0.1:7700\n"	/* never bound */
	"insecure: true\n"
	"public-max-conns: 3\n"
	"agents:\n"
	"  - { name: a1, secret: a1-secret-0123, expose: [8080, 9000-9001] }\n"
	"  - { name: a2, secret: a2-secret-0123 }\n"
	"relays:\n"
	"  - { name: r1, secret: r1-secret-0123 }\n"
	"  - { name: r2, secret: r2-secret-0123 }\n";

static struct broker_cfg cfg;
static struct broker b;
static struct peer *peers[NPEERS];
static int far[NPEERS] = { -1, -1, -1, -1 };

/* What a peer was sent, not read yet. */
static __u8 inbox[NPEERS][65536];
static size_t inlen[NPEERS];
static __u8 last[NPEERS][NS_PROTO_HDR_LEN + NS_PROTO_MAX_BODY];	/* recv()'s message */

static void pump(int i)
{
	ssize_t n;

	while (far[i] >= 0 && inlen[i] < sizeof(inbox[i]) &&
	       (n = read(far[i], inbox[i] + inlen[i], sizeof(inbox[i]) - inlen[i])) > 0)
		inlen[i] += n;
}

/* The next message to peer i, of any type; NULL when none came. */
static const struct ns_msg *next_msg(int i, struct ns_msg *m)
{
	__u32 len;
	__u8 type;

	pump(i);
	if (inlen[i] < NS_PROTO_HDR_LEN)
		return NULL;
	assert_int_equal(ns_msg_hdr(inbox[i], &type, &len), 0);
	assert_true(inlen[i] >= NS_PROTO_HDR_LEN + len);
	memcpy(last[i], inbox[i], NS_PROTO_HDR_LEN + len);
	memmove(inbox[i], inbox[i] + NS_PROTO_HDR_LEN + len, inlen[i] - NS_PROTO_HDR_LEN - len);
	inlen[i] -= NS_PROTO_HDR_LEN + len;
	assert_int_equal(ns_msg_parse(m, last[i], NS_PROTO_HDR_LEN + len), 0);
	return m;
}

/* The next message to peer i must be of this type. */
static void expect(int i, int type, struct ns_msg *m)
{
	if (!next_msg(i, m))
		fail_msg("%s: no message, %s expected", names[i], ns_msg_type_name(type));
	if (m->type != type) {
		char text[300] = "";

		ns_msg_str(m, NS_A_TEXT, text, sizeof(text));
		fail_msg("%s: %s (%s), %s expected", names[i], ns_msg_type_name(m->type), text,
			 ns_msg_type_name(type));
	}
}

static void expect_none(int i)
{
	struct ns_msg m;

	if (next_msg(i, &m))
		fail_msg("%s: unexpected %s", names[i], ns_msg_type_name(m.type));
}

/* An ERROR with this code and a TEXT containing want. */
static void expect_error(int i, int code, const char *want)
{
	char text[1001];
	struct ns_msg m;
	__u32 c;

	expect(i, NS_MSG_ERROR, &m);
	assert_int_equal(ns_msg_u32(&m, NS_A_CODE, &c), 0);
	assert_int_equal(ns_msg_str(&m, NS_A_TEXT, text, sizeof(text)), 0);
	if (c != (__u32)code || !strstr(text, want))
		fail_msg("%s: ERROR %s '%s', %s '%s' expected", names[i], ns_err_name(c), text,
			 ns_err_name(code), want);
}

static void reap(void)
{
	inproc_reap(&b, peers, NPEERS);
}

static void deliver(int i, struct ns_msg_buf *mb)
{
	struct ns_msg m;

	assert_int_equal(ns_mb_finish(mb), 0);
	assert_int_equal(ns_msg_parse(&m, mb->data, mb->len), 0);
	proto_message(peers[i], &m);
	ns_mb_free(mb);
	reap();
}

static __u16 echo_port;	/* relays log in with ECHO_PORT this (0: none) */

/* Peer i connects from addr and logs in; a relay with public_ports ("" none). */
static void login_from(int i, const char *addr, const char *public_ports)
{
	struct sockaddr_storage ss;
	struct ns_msg_buf mb;
	__u8 proof[NS_HMAC_LEN];
	struct ns_msg m;
	int fd[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0);
	if (far[i] >= 0)
		close(far[i]);
	far[i] = fd[1];
	inlen[i] = 0;
	assert_int_equal(ns_parse_sockaddr(addr, 0, &ss, &(socklen_t){ 0 }), 0);
	peer_new(&b, fd[0], &ss);
	peers[i] = b.peers;
	peers[i]->transport = PT_READY;
	assert_int_equal(proto_challenge(peers[i]), 0);
	expect(i, NS_MSG_CHALLENGE, &m);
	assert_int_equal(ns_login_proof(secrets[i], peers[i]->nonce, names[i], NULL, 0, proof), 0);
	ns_mb_init(&mb, NS_MSG_LOGIN);
	ns_mb_u8(&mb, NS_A_ROLE, i >= R1 ? NS_ROLE_RELAY : NS_ROLE_AGENT);
	ns_mb_str(&mb, NS_A_NAME, names[i]);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_bin(&mb, NS_A_PROOF, proof, sizeof(proof));
	if (i >= R1) {
		char buf[64], *tok, *save;

		snprintf(buf, sizeof(buf), "%s", public_ports);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			ns_mb_str(&mb, NS_A_PUBLIC_PORTS, tok);
		if (echo_port)
			ns_mb_u16(&mb, NS_A_ECHO_PORT, echo_port);
	}
	deliver(i, &mb);
	expect(i, NS_MSG_LOGIN_OK, &m);
}

static void login(int i, const char *public_ports)
{
	login_from(i, addrs[i], public_ports);
}

static void disconnect(int i)
{
	peer_kill(peers[i], "test: disconnect");
	reap();
	peers[i] = NULL;
}

/* PUBLISH { REQ_ID 1, SERVICE, PROTO, EXPOSE { PORT, PREFIX..., [MAX_CONNS] } }
 * (port < 0: no EXPOSE; prefixes: comma-separated). */
static void publish(int i, const char *svc, __u8 proto, int port, const char *prefixes,
		    __u32 max)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_PUBLISH);
	ns_mb_u32(&mb, NS_A_REQ_ID, 1);
	ns_mb_str(&mb, NS_A_SERVICE, svc);
	ns_mb_u8(&mb, NS_A_PROTO, proto);
	if (port >= 0) {
		size_t mark = ns_mb_nest_begin(&mb, NS_A_EXPOSE);
		char buf[256], *tok, *save;

		ns_mb_u16(&mb, NS_A_PORT, port);
		snprintf(buf, sizeof(buf), "%s", prefixes ? prefixes : "");
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			ns_mb_str(&mb, NS_A_PREFIX, tok);
		if (max)
			ns_mb_u32(&mb, NS_A_MAX_CONNS, max);
		ns_mb_nest_end(&mb, mark);
	}
	deliver(i, &mb);
}

static void expect_ok(int i)
{
	struct ns_msg m;

	expect(i, NS_MSG_OK, &m);
}

/* PUBLIC_OPEN to relay r for port; its PUBLIC_ID and REQ_ID. */
static void expect_open(int r, __u16 port, const char *from, __u32 *id, __u32 *req)
{
	__u32 addr[4], want[4], timeout;
	__u16 p, fport;
	__u8 family, wfamily, proto;
	struct ns_msg m;

	expect(r, NS_MSG_PUBLIC_OPEN, &m);
	assert_int_equal(ns_msg_u32(&m, NS_A_REQ_ID, req), 0);
	assert_int_equal(ns_msg_u32(&m, NS_A_PUBLIC_ID, id), 0);
	assert_int_not_equal(*id, 0);
	assert_int_equal(ns_msg_u16(&m, NS_A_PORT, &p), 0);
	assert_int_equal(p, port);
	assert_int_equal(ns_msg_u8(&m, NS_A_PROTO, &proto), 0);
	assert_int_equal(proto, 6);
	assert_int_equal(ns_msg_u32(&m, NS_A_TIMEOUT, &timeout), 0);
	assert_int_equal(timeout, BROKER_PUBLIC_TIMEOUT_S);
	assert_int_equal(ns_msg_addr(&m, NS_A_FROM_A, &family, addr, &fport), 0);
	assert_int_equal(ns_parse_hostport(from, &wfamily, want, &p), 0);
	assert_int_equal(family, wfamily);
	assert_memory_equal(addr, want, sizeof(addr));
	assert_int_equal(fport, 0);
}

static void relay_answer(int r, __u32 req, int code)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, code ? NS_MSG_ERROR : NS_MSG_OK);
	ns_mb_u32(&mb, NS_A_REQ_ID, req);
	if (code) {
		ns_mb_u32(&mb, NS_A_CODE, code);
		ns_mb_str(&mb, NS_A_TEXT, "port in use");
	}
	deliver(r, &mb);
}

/* PUBLIC_INFO to agent i: open at relay r's address:port, or closed with text. */
static void expect_info(int i, const char *svc, int r, __u16 port, const char *text)
{
	char s[256], t[1001];
	__u32 addr[4], want[4];
	__u16 p, wp;
	__u8 family, wf;
	struct ns_msg m;

	expect(i, NS_MSG_PUBLIC_INFO, &m);
	assert_int_equal(ns_msg_str(&m, NS_A_SERVICE, s, sizeof(s)), 0);
	assert_string_equal(s, svc);
	if (text) {
		assert_int_equal(ns_msg_str(&m, NS_A_TEXT, t, sizeof(t)), 0);
		if (!strstr(t, text))
			fail_msg("PUBLIC_INFO '%s', '%s' expected", t, text);
		assert_null(m.attr[NS_A_PEER_ADDR]);
		return;
	}
	assert_int_equal(ns_msg_addr(&m, NS_A_PEER_ADDR, &family, addr, &p), 0);
	assert_int_equal(ns_parse_hostport(addrs[r], &wf, want, &wp), 0);
	assert_int_equal(family, wf);
	assert_memory_equal(addr, want, sizeof(addr));
	assert_int_equal(p, port);
}

static void client_at(int r, __u32 id, __u32 splice_id, __u16 port_a, const char *client)
{
	struct ns_msg_buf mb;
	__u32 addr[4];
	__u16 port;
	__u8 family;

	assert_int_equal(ns_parse_hostport(client, &family, addr, &port), 0);
	ns_mb_init(&mb, NS_MSG_PUBLIC_CLIENT);
	ns_mb_u32(&mb, NS_A_PUBLIC_ID, id);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, splice_id);
	ns_mb_u16(&mb, NS_A_PORT_A, port_a);
	ns_mb_addr(&mb, NS_A_PEER_ADDR, family, addr, port);
	deliver(r, &mb);
}

static void expect_refuse(int r, __u32 splice_id, int code)
{
	struct ns_msg m;
	__u32 v;

	expect(r, NS_MSG_PUBLIC_REFUSE, &m);
	assert_int_equal(ns_msg_u32(&m, NS_A_SPLICE_ID, &v), 0);
	assert_int_equal(v, splice_id);
	assert_int_equal(ns_msg_u32(&m, NS_A_CODE, &v), 0);
	assert_int_equal(v, code);
}

/* PUBLIC_ACCEPT to the relay and CONNECT_INFO to the provider: the SESSION. */
static __u64 expect_accept(int r, int P, __u32 splice_id, __u16 port_a, __u16 public_port,
			   const char *client)
{
	__u32 addr[4], want[4], v;
	__u64 session, s2;
	__u16 port, wport;
	__u8 family, wf, u8;
	char svc[256];
	struct ns_msg m;

	expect(r, NS_MSG_PUBLIC_ACCEPT, &m);
	assert_int_equal(ns_msg_u32(&m, NS_A_SPLICE_ID, &v), 0);
	assert_int_equal(v, splice_id);
	assert_int_equal(ns_msg_u64(&m, NS_A_SESSION, &session), 0);
	assert_int_not_equal(session, 0);

	expect(P, NS_MSG_CONNECT_INFO, &m);
	assert_int_equal(ns_msg_u64(&m, NS_A_SESSION, &s2), 0);
	assert_int_equal(s2, session);
	assert_int_equal(ns_msg_u8(&m, NS_A_PATH, &u8), 0);
	assert_int_equal(u8, NS_PATH_RELAY);
	assert_int_equal(ns_msg_u8(&m, NS_A_DIAL, &u8), 0);
	assert_int_equal(u8, 1);
	assert_int_equal(ns_msg_u8(&m, NS_A_SPLICE_MODE, &u8), 0);
	assert_int_equal(u8, NS_MODE_PASSIVE);
	assert_int_equal(ns_msg_u8(&m, NS_A_PROTO, &u8), 0);
	assert_int_equal(u8, 6);
	assert_int_equal(ns_msg_u8(&m, NS_A_PLAIN, &u8), 0);
	assert_int_equal(u8, 1);
	assert_int_equal(ns_msg_str(&m, NS_A_SERVICE, svc, sizeof(svc)), 0);
	assert_string_equal(svc, "web");
	assert_null(m.attr[NS_A_KEY]);		/* no proofs on this path */
	assert_null(m.attr[NS_A_REQ_ID]);
	assert_int_equal(ns_parse_hostport(addrs[r], &wf, want, &wport), 0);
	assert_int_equal(ns_msg_addr(&m, NS_A_PEER_ADDR, &family, addr, &port), 0);
	assert_memory_equal(addr, want, sizeof(addr));
	assert_int_equal(port, port_a);
	assert_int_equal(ns_msg_addr(&m, NS_A_PUBLIC_ADDR, &family, addr, &port), 0);
	assert_memory_equal(addr, want, sizeof(addr));
	assert_int_equal(port, public_port);
	assert_int_equal(ns_parse_hostport(client, &wf, want, &wport), 0);
	assert_int_equal(ns_msg_addr(&m, NS_A_CLIENT_ADDR, &family, addr, &port), 0);
	assert_int_equal(family, wf);
	assert_memory_equal(addr, want, sizeof(addr));
	assert_int_equal(port, wport);
	return session;
}

static void splice_done(int r, __u64 session, __u32 splice_id)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_SPLICE_DONE);
	ns_mb_u64(&mb, NS_A_SESSION, session);
	ns_mb_u32(&mb, NS_A_SPLICE_ID, splice_id);
	ns_mb_u64(&mb, NS_A_BYTES_AB, 100);
	ns_mb_u64(&mb, NS_A_BYTES_BA, 2000);
	ns_mb_u64(&mb, NS_A_PACKETS, 9);
	ns_mb_str(&mb, NS_A_TEXT, "fin");
	deliver(r, &mb);
}

/* The body of an API handler or /metrics. */
static char *render(void (*fn)(struct broker *, struct ns_out *), bool prom)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct ns_out *o;

	assert_non_null(f);
	if (prom) {
		metrics(&b, f);
	} else {
		o = ns_out_new(f, 1, 0);
		fn(&b, o);
		ns_out_free(o);
	}
	fclose(f);
	return buf;
}

static void assert_has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not in:\n%s", needle, hay);
}

static int setup(void **state)
{
	char err[256];
	int i;

	ns_log_init("test_broker_public", getenv("TEST_LOG") ? NS_LOG_DEBUG : NS_LOG_ERR);
	if (cfg_load_string(&cfg, "t.yaml", cfg_text, err, sizeof(err)))
		fail_msg("%s", err);
	memset(&b, 0, sizeof(b));
	b.cfg = &cfg;
	b.lfd = -1;
	b.loop = ns_loop_new();
	assert_non_null(b.loop);
	ns_timer_init(&b.reap_t, on_reap, &b);
	assert_int_equal(sessions_init(&b), 0);
	b.agents = calloc(cfg.nagents, sizeof(*b.agents));
	b.relays = calloc(cfg.nrelays, sizeof(*b.relays));
	b.start_ns = ns_now_ns();
	for (i = 0; i < NPEERS; i++)
		peers[i] = NULL;
	return 0;
}

static int teardown(void **state)
{
	int i;

	sessions_free(&b);
	peers_close_all(&b);
	for (i = 0; i < NPEERS; i++) {
		peers[i] = NULL;
		if (far[i] >= 0)
			close(far[i]);
		far[i] = -1;
	}
	assert_null(b.peers);
	free(b.agents);
	free(b.relays);
	ns_loop_free(b.loop);
	cfg_free(&cfg);
	return 0;
}

static struct public_counts counts(void)
{
	struct public_counts c;

	public_counts(&b, NULL, &c);
	return c;
}

/* The exposure with PUBLIC_ID id, or NULL. */
static const struct exposure *exposure(__u32 id)
{
	struct peer *P;
	const struct service *s = pub_find_id(&b, id, &P);

	return s ? &s->ex : NULL;
}

/* The whole way: EXPOSE -> PUBLIC_OPEN -> OK -> PUBLIC_INFO -> a client ->
 * PUBLIC_ACCEPT + CONNECT_INFO -> SPLICE_DONE; the API and the metrics; a
 * FLOW on a public session refused (the client has no agent: before, the
 * broker compared the requester's name with a subscriber name it had not). */
static void test_public_session(void **state)
{
	struct ns_msg m;
	char *out;
	__u32 id, req;
	__u64 session;
	const struct session *s;

	login(R1, "8000-8999,9000");
	login(A1, "");
	publish(A1, "web", 6, 8080, "192.0.2.0/24,2001:db8::/32", 0);
	expect_ok(A1);
	expect_open(R1, 8080, addrs[A1], &id, &req);
	{	/* the prefixes go to the relay as they came */
		const __u8 *val;
		size_t pos = 0;
		__u16 alen;

		assert_int_equal(ns_msg_parse(&m, last[R1], NS_PROTO_HDR_LEN +
					      ns_get32(last[R1] + 4)), 0);
		assert_int_equal(ns_msg_next(&m, NS_A_PREFIX, &pos, &val, &alen), 1);
		assert_memory_equal(val, "192.0.2.0/24", alen);
		assert_int_equal(ns_msg_next(&m, NS_A_PREFIX, &pos, &val, &alen), 1);
		assert_memory_equal(val, "2001:db8::/32", alen);
		assert_int_equal(ns_msg_next(&m, NS_A_PREFIX, &pos, &val, &alen), 0);
	}
	expect_none(A1);	/* nothing until the relay answered */
	relay_answer(R1, req, 0);
	expect_info(A1, "web", R1, 8080, NULL);

	client_at(R1, id, 77, 20001, "192.0.2.9:5555");
	session = expect_accept(R1, A1, 77, 20001, 8080, "192.0.2.9:5555");
	assert_int_equal(counts().live, 1);
	assert_int_equal(b.st.public_sessions, 1);
	assert_int_equal(peers[R1]->load, 1);
	s = sess_find(&b, session);
	assert_non_null(s);
	assert_int_equal(s->state, SESS_ESTABLISHED);

	out = render(api_sessions, false);
	assert_has(out, "\"kind\":\"public\"");
	assert_has(out, "\"client\":\"192.0.2.9:5555\"");
	assert_has(out, "\"subscriber\":null");
	free(out);
	out = render(public_api, false);
	assert_has(out, "\"service\":\"a1/web\"");
	assert_has(out, "\"state\":\"open\"");
	assert_has(out, "\"relay\":\"r1\"");
	assert_has(out, "\"address\":\"198.51.100.20:8080\"");
	assert_has(out, "\"connections\":1");
	free(out);
	out = render(NULL, true);
	assert_has(out, "natsplice_broker_public_sessions_total 1\n");
	assert_has(out, "natsplice_broker_public_sessions 1\n");
	assert_has(out, "natsplice_broker_public_ports 1\n");
	free(out);

	/* a FLOW on it: refused, the broker still there */
	{
		struct ns_msg_buf mb;

		ns_mb_init(&mb, NS_MSG_FLOW);
		ns_mb_u32(&mb, NS_A_REQ_ID, 5);
		ns_mb_u64(&mb, NS_A_PARENT, session);
		ns_mb_u8(&mb, NS_A_PROTO, 6);
		deliver(A1, &mb);
		expect_error(A1, NS_ERR_NOT_FOUND, "no session");
	}

	splice_done(R1, session, 77);
	assert_int_equal(s->state, SESS_CLOSED);
	assert_int_equal(s->bytes_ba, 2000);
	assert_int_equal(counts().live, 0);
	assert_int_equal(exposure(id)->live, 0);
	assert_int_equal(peers[R1]->load, 0);

	/* UNPUBLISH: closed on the relay */
	{
		struct ns_msg_buf mb;
		__u32 v;

		ns_mb_init(&mb, NS_MSG_UNPUBLISH);
		ns_mb_u32(&mb, NS_A_REQ_ID, 2);
		ns_mb_str(&mb, NS_A_SERVICE, "web");
		deliver(A1, &mb);
		expect_ok(A1);
		expect(R1, NS_MSG_PUBLIC_CLOSE, &m);
		assert_int_equal(ns_msg_u32(&m, NS_A_PUBLIC_ID, &v), 0);
		assert_int_equal(v, id);
		assert_null(exposure(id));
	}
}

/* Refusals: max-conns, an exposure the relay does not have, the provider
 * gone or doomed; back from elsewhere it is opened again with its new
 * address. */
static void test_public_refused(void **state)
{
	__u32 id, id2, req;
	__u64 s1;
	char *out;

	login(R1, "9000-9001");
	login(A1, "");
	publish(A1, "web", 6, 0, NULL, 1);	/* PORT 0: one it may, one r1 covers */
	expect_ok(A1);
	expect_open(R1, 9000, addrs[A1], &id, &req);
	relay_answer(R1, req, 0);
	expect_info(A1, "web", R1, 9000, NULL);

	client_at(R1, id, 1, 20001, "192.0.2.9:1000");
	s1 = expect_accept(R1, A1, 1, 20001, 9000, "192.0.2.9:1000");
	client_at(R1, id, 2, 20002, "192.0.2.9:1001");
	expect_refuse(R1, 2, NS_ERR_LIMIT);	/* MAX_CONNS 1 */
	expect_none(A1);
	assert_int_equal(b.st.public_refused[1], 1);
	splice_done(R1, s1, 1);
	client_at(R1, id, 3, 20003, "192.0.2.9:1002");
	expect_accept(R1, A1, 3, 20003, 9000, "192.0.2.9:1002");

	client_at(R1, id + 100, 4, 20004, "192.0.2.9:1003");
	expect_refuse(R1, 4, NS_ERR_NOT_FOUND);	/* no such exposure */
	assert_int_equal(b.st.public_refused[0], 1);

	/* the provider goes: closed on the relay */
	disconnect(A1);
	expect(R1, NS_MSG_PUBLIC_CLOSE, &(struct ns_msg){ 0 });
	client_at(R1, id, 5, 20005, "192.0.2.9:1004");
	expect_refuse(R1, 5, NS_ERR_NOT_FOUND);
	out = render(NULL, true);
	assert_has(out, "natsplice_broker_public_refused_total{reason=\"limit\"} 1\n");
	assert_has(out, "natsplice_broker_public_refused_total{reason=\"not_found\"} 2\n");
	free(out);

	/* back from another address, PORT 0 again: the same port, the new FROM_A */
	login_from(A1, "203.0.113.77:41000", "");
	publish(A1, "web", 6, 0, NULL, 0);
	expect_ok(A1);
	expect_open(R1, 9000, "203.0.113.77:1", &id2, &req);
	relay_answer(R1, req, 0);
	expect_info(A1, "web", R1, 9000, NULL);
	assert_int_equal(exposure(id2)->max_conns, 3);	/* public-max-conns */

	/* a client while the provider's connection is doomed: NOT_FOUND */
	peers[A1]->doomed = true;
	client_at(R1, id2, 6, 20006, "192.0.2.9:1005");
	expect_refuse(R1, 6, NS_ERR_NOT_FOUND);
	peers[A1]->doomed = false;
}

/* What PUBLISH with EXPOSE refuses, and that nothing changes then. */
static void test_public_denied(void **state)
{
	__u32 id, req;

	login(R1, "1-65535");
	login(A1, "");
	login(A2, "");
	publish(A2, "web", 6, 8080, NULL, 0);
	expect_error(A2, NS_ERR_DENIED, "may not expose services");
	assert_null(peers[A2]->services);	/* not published either */
	publish(A1, "web", 6, 7000, NULL, 0);
	expect_error(A1, NS_ERR_DENIED, "agent a1 may not expose port 7000");
	publish(A1, "dns", 17, 8080, NULL, 0);
	expect_error(A1, NS_ERR_UNSUPPORTED, "TCP services only");
	publish(A1, "web", 6, 8080, "192.0.2.0/33", 0);
	expect_error(A1, NS_ERR_MALFORMED, "'192.0.2.0/33' is not an address prefix");
	publish(A1, "web", 6, 8080, "nonsense", 0);
	expect_error(A1, NS_ERR_MALFORMED, "'nonsense' is not an address prefix");
	assert_null(peers[A1]->services);
	expect_none(R1);

	publish(A1, "web", 6, 8080, NULL, 1000);	/* lowered to public-max-conns */
	expect_ok(A1);
	expect_open(R1, 8080, addrs[A1], &id, &req);
	assert_int_equal(exposure(id)->max_conns, 3);
	publish(A1, "api", 6, 8080, NULL, 0);
	expect_error(A1, NS_ERR_DENIED, "public port 8080 is exposed by a1/web already");
	assert_null(service_find(peers[A1], "api"));
	/* web without EXPOSE: its port closes */
	publish(A1, "web", 6, -1, NULL, 0);
	expect_ok(A1);
	expect(R1, NS_MSG_PUBLIC_CLOSE, &(struct ns_msg){ 0 });
	assert_null(exposure(id));
}

/* Relays: none covers the port (wait, then one logs in), one refuses, one
 * goes (its exposures move to another). */
static void test_public_relays(void **state)
{
	__u32 id, id2, req;

	login(A1, "");
	publish(A1, "web", 6, 8080, NULL, 0);
	expect_ok(A1);
	expect_info(A1, "web", 0, 0, "no relay logged in offers port 8080");
	login(R1, "");		/* opens no public port */
	expect_info(A1, "web", 0, 0, "no relay logged in offers port 8080");
	expect_none(R1);
	login(R2, "8080");
	expect_open(R2, 8080, addrs[A1], &id, &req);
	relay_answer(R2, req, NS_ERR_BUSY);
	expect_info(A1, "web", 0, 0, "relay r2: port in use");
	expect_none(R2);

	/* r1 comes back covering it: placed there */
	disconnect(R1);
	login(R1, "8000-8100");
	expect_open(R1, 8080, addrs[A1], &id2, &req);
	assert_int_equal(id2, id);
	relay_answer(R1, req, 0);
	expect_info(A1, "web", R1, 8080, NULL);

	/* r1 goes: moved to r2 */
	disconnect(R1);
	expect_open(R2, 8080, addrs[A1], &id2, &req);
	assert_int_equal(id2, id);
	relay_answer(R2, req, 0);
	expect_info(A1, "web", R2, 8080, NULL);
}

/* RELAYS to agent i must list exactly these relays (peer indexes), with the echo port. */
static void expect_relays(int i, int n, const int *relays)
{
	char name[64];
	const __u8 *val;
	struct ns_msg m, sub;
	size_t pos = 0;
	__u32 addr[4], want[4];
	__u16 len, port, wport;
	__u8 family;
	int k = 0;

	expect(i, NS_MSG_RELAYS, &m);
	while (ns_msg_next(&m, NS_A_RELAY_INFO, &pos, &val, &len) == 1) {
		assert_true(k < n);
		assert_int_equal(ns_msg_parse_nested(&sub, val, len), 0);
		assert_int_equal(ns_msg_str(&sub, NS_A_NAME, name, sizeof(name)), 0);
		assert_string_equal(name, names[relays[k]]);
		assert_int_equal(ns_msg_addr(&sub, NS_A_PEER_ADDR, &family, addr, &port), 0);
		assert_int_equal(ns_parse_hostport(addrs[relays[k]], &family, want, &wport), 0);
		assert_memory_equal(addr, want, sizeof(addr));
		assert_int_equal(port, 7701);
		k++;
	}
	assert_int_equal(k, n);
}

/* RTT from agent i: { name, us } pairs (name NULL: an entry without NAME). */
static void report_rtt(int i, int n, const char *const *relay, const __u32 *us)
{
	struct ns_msg_buf mb;
	size_t mark;
	int k;

	ns_mb_init(&mb, NS_MSG_RTT);
	for (k = 0; k < n; k++) {
		mark = ns_mb_nest_begin(&mb, NS_A_RELAY_INFO);
		if (relay[k])
			ns_mb_str(&mb, NS_A_NAME, relay[k]);
		ns_mb_u32(&mb, NS_A_RTT_US, us[k]);
		ns_mb_nest_end(&mb, mark);
	}
	deliver(i, &mb);
}

/* Relays that answer probes are named to every agent when the set changes
 * (and only then); what agents report is kept per relay, bad entries
 * ignored, absurd values taken as no answer; the API shows it. */
static void test_relay_rtt(void **state)
{
	static const char *const rel[] = { "r1", "r2", "nosuch", NULL, "r1" };
	static const __u32 us[] = { 4000, 0, 7, 9, 4000 };
	static const __u32 huge[] = { NS_RTT_MAX_US + 1, NS_RTT_UNREACHABLE };
	char *out;

	echo_port = 7701;
	login(A1, "");
	login(A2, "");
	expect_none(A1);	/* no relay yet: an agent has that list at login */
	login(R1, "");
	expect_relays(A1, 1, (int[]){ R1 });
	expect_relays(A2, 1, (int[]){ R1 });
	login(R2, "");
	expect_relays(A1, 2, (int[]){ R1, R2 });
	expect_relays(A2, 2, (int[]){ R1, R2 });
	/* a relay without an echo port changes nothing for the agents */
	echo_port = 0;
	disconnect(R2);
	expect_relays(A1, 1, (int[]){ R1 });
	expect_relays(A2, 1, (int[]){ R1 });
	login(R2, "");
	expect_none(A1);
	expect_none(A2);
	echo_port = 7701;

	report_rtt(A1, 5, rel, us);
	assert_int_equal(rtt_get(peers[A1], "r1"), 4000);
	assert_int_equal(rtt_get(peers[A1], "r2"), 1);	/* 0 is "not measured" */
	assert_int_equal(rtt_get(peers[A1], "nosuch"), 0);
	assert_int_equal(peers[A1]->nrtt, 2);
	assert_int_equal(rtt_get(peers[A2], "r1"), 0);	/* only the reporter's */
	report_rtt(A1, 2, rel, huge);
	assert_int_equal(rtt_get(peers[A1], "r1"), NS_RTT_UNREACHABLE);
	assert_int_equal(rtt_get(peers[A1], "r2"), NS_RTT_UNREACHABLE);
	expect_none(A1);	/* RTT has no answer */
	report_rtt(A1, 1, rel, us);
	out = render(api_agents, false);
	assert_has(out, "\"relay_rtt\":[{\"relay\":\"r1\",\"answers\":true,"
			"\"rtt_us\":4000},{\"relay\":\"r2\",\"answers\":false,"
			"\"rtt_us\":null}]");
	free(out);
	/* the relay goes: the agents stop measuring it */
	disconnect(R1);
	expect_relays(A1, 0, NULL);
	expect_relays(A2, 0, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_public_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_denied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_relays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_rtt, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
