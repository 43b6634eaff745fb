// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agent: the SIP ALG and its SDP rewriting (agent/alg_sip.c, agent/alg_sdp.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

#define BIG 300000

struct t {
	struct fake fake;
	struct ns_alg_env env;
	void *st;
	struct ns_alg_buf out;
	char s[BIG];				/* out as a string */
};

static struct t T;				/* too big for the stack */

/*
 * At the provider (P) the local app is the server UA 192.0.2.9:5060 and
 * this agent faces it from 192.0.2.1:5060; at the subscriber (S) the local
 * app is the client UA 192.0.2.50:5062 and the agent listens on
 * 192.0.2.1:5070. v6: the same with 2001:db8::1 and 2001:db8::9.
 */
static struct t *t_open(enum ns_alg_side side, bool datagram, int family)
{
	struct t *t = &T;
	const char *local, *app;

	ns_alg_buf_free(&t->out);
	memset(t, 0, sizeof(*t));
	fake_init(&t->fake, family);
	t->env.arg = &t->fake;
	t->env.side = side;
	t->env.expect = fake_expect;
	strcpy(t->env.label, "phone");
	if (family == AF_INET6) {
		local = "[2001:db8::1]:5060";
		app = "[2001:db8::9]:5060";
	} else if (side == NS_ALG_PROVIDER) {
		local = "192.0.2.1:5060";
		app = "192.0.2.9:5060";
	} else {
		local = "192.0.2.1:5070";
		app = "192.0.2.50:5062";
	}
	assert_int_equal(ns_parse_sockaddr(local, 0, &t->env.local, &(socklen_t){ 0 }), 0);
	assert_int_equal(ns_parse_sockaddr(app, 0, &t->env.app, &(socklen_t){ 0 }), 0);
	t->st = ns_alg_sip.open(&t->env, datagram);
	assert_non_null(t->st);
	return t;
}

static void t_close(struct t *t)
{
	ns_alg_sip.close(t->st);
	t->st = NULL;
	ns_alg_buf_free(&t->out);
}

static const char *t_str(struct t *t)
{
	assert_true(t->out.len < sizeof(t->s));
	if (t->out.len)
		memcpy(t->s, t->out.data, t->out.len);
	t->s[t->out.len] = '\0';
	return t->s;
}

/* Feed in pieces of `step` bytes (0: at once); all that came out so far. */
static const char *t_feed(struct t *t, enum ns_alg_dir dir, const char *in, size_t step)
{
	size_t len = strlen(in), i, n;

	for (i = 0; i < len; i += n) {
		n = step && step < len - i ? step : len - i;
		assert_int_equal(ns_alg_sip.feed(t->st, dir, (const __u8 *)in + i, n, &t->out), 0);
	}
	return t_str(t);
}

/* One datagram or chunk in, with the output reset first. */
static const char *t_one(struct t *t, enum ns_alg_dir dir, const char *in)
{
	t->out.len = 0;
	return t_feed(t, dir, in, 0);
}

/* head + "Content-Length: <len of body>" + blank line + body */
static char *msg(char *buf, size_t cap, const char *head, const char *body)
{
	snprintf(buf, cap, "%sContent-Length: %zu\r\n\r\n%s", head, strlen(body), body);
	return buf;
}

/* ---- the call of RFC 3665 3.1, at both ends ---- */

#define INVITE_HEAD(uri, via, contact)							\
	"INVITE " uri " SIP/2.0\r\n"							\
	"Via: " via "\r\n"								\
	"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK77ef4c2312983.1\r\n"		\
	"Max-Forwards: 70\r\n"								\
	"To: Bob <sip:bob@biloxi.example.com>\r\n"					\
	"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"		\
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"				\
	"CSeq: 314159 INVITE\r\n"							\
	"Contact: " contact "\r\n"							\
	"Content-Type: application/sdp\r\n"

#define OFFER(addr, p1, p2)								\
	"v=0\r\n"									\
	"o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"		\
	"s=-\r\n"									\
	"c=IN IP4 " addr "\r\n"								\
	"t=0 0\r\n"									\
	"m=audio " p1 " RTP/AVP 0\r\n"							\
	"a=rtpmap:0 PCMU/8000\r\n"							\
	"m=video " p2 " RTP/AVP 31\r\n"							\
	"a=rtpmap:31 H261/90000\r\n"

static char in_invite[4096], want_invite[4096];

static void build_invite(void)
{
	msg(in_invite, sizeof(in_invite),
	    INVITE_HEAD("sip:bob@biloxi.example.com",
			"SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
			"<sip:alice@pc33.atlanta.example.com>"),
	    OFFER("10.0.0.33", "49170", "51372"));
	msg(want_invite, sizeof(want_invite),
	    INVITE_HEAD("sip:bob@192.0.2.9:5060",
			"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds",
			"<sip:alice@192.0.2.1:5060>"),
	    OFFER("198.51.100.7", "40000", "40002"));
}

static void check_invite_expects(const struct fake *f)
{
	assert_int_equal(f->calls, 2);
	assert_int_equal(f->proto[0], IPPROTO_UDP);
	assert_int_equal(f->port[0], 49170);
	assert_true(f->pair[0]);
	assert_int_equal(f->proto[1], IPPROTO_UDP);
	assert_int_equal(f->port[1], 51372);
	assert_true(f->pair[1]);
}

static void test_invite_udp(void **state)
{
	struct t *t = t_open(NS_ALG_PROVIDER, true, AF_INET);

	build_invite();
	assert_string_equal(t_one(t, NS_ALG_IN, in_invite), want_invite);
	check_invite_expects(&t->fake);
	/* the local app's own requests (OUT) pass as they are */
	assert_string_equal(t_one(t, NS_ALG_OUT, in_invite), in_invite);
	assert_int_equal(t->fake.calls, 2);
	t_close(t);
}

static void test_invite_tcp_split(void **state)
{
	static const size_t steps[] = { 1, 2, 7, 100, 0 };
	static char two[16384], want2[16384];
	char *second;
	struct t *t;
	size_t i;

	build_invite();
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		t = t_open(NS_ALG_PROVIDER, false, AF_INET);
		assert_string_equal(t_feed(t, NS_ALG_IN, in_invite, steps[i]), want_invite);
		check_invite_expects(&t->fake);
		t_close(t);
	}
	/* nothing comes out before the message is complete */
	t = t_open(NS_ALG_PROVIDER, false, AF_INET);
	strcpy(two, in_invite);
	two[strlen(in_invite) - 3] = '\0';
	assert_string_equal(t_feed(t, NS_ALG_IN, two, 0), "");
	assert_string_equal(t_feed(t, NS_ALG_IN, in_invite + strlen(in_invite) - 3, 0),
			    want_invite);
	t_close(t);

	/* two messages and a keepalive in one chunk */
	t = t_open(NS_ALG_PROVIDER, false, AF_INET);
	snprintf(two, sizeof(two), "%s\r\n\r\n%s", in_invite, in_invite);
	snprintf(want2, sizeof(want2), "%s\r\n\r\n%s", want_invite, want_invite);
	/* the second INVITE's aliases are the fake's next ones */
	second = want2 + strlen(want_invite) + 4;
	memcpy(strstr(second, "m=audio 40000"), "m=audio 40004", 13);
	memcpy(strstr(second, "m=video 40002"), "m=video 40006", 13);
	assert_string_equal(t_feed(t, NS_ALG_IN, two, 0), want2);
	assert_int_equal(t->fake.calls, 4);
	t_close(t);
}

/* At S, the server's 200 OK: Contact and the SDP answer point here; the Via
 * is the client's own and stays. */
static void test_response_in(void **state)
{
#define OK_HEAD(contact)								\
	"SIP/2.0 200 OK\r\n"								\
	"Via: SIP/2.0/UDP 192.0.2.50:5062;branch=z9hG4bKnashds8;received=192.0.2.50\r\n" \
	"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"				\
	"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"		\
	"Call-ID: a84b4c76e66710\r\n"							\
	"CSeq: 314159 INVITE\r\n"							\
	"Contact: " contact "\r\n"							\
	"Content-Type: application/sdp; charset=x\r\n"
#define ANSWER(addr, port)								\
	"v=0\r\n"									\
	"o=bob 2808844564 2808844564 IN IP4 biloxi.example.com\r\n"			\
	"s=-\r\n"									\
	"t=0 0\r\n"									\
	"m=audio " port " RTP/AVP 0\r\n"						\
	"c=IN IP4 " addr "\r\n"								\
	"a=rtpmap:0 PCMU/8000\r\n"
	char in[2048], want[2048];
	struct t *t = t_open(NS_ALG_SUBSCRIBER, true, AF_INET);

	msg(in, sizeof(in), OK_HEAD("<sip:bob@10.1.1.9:5066;transport=udp>"),
	    ANSWER("10.1.1.9", "3456"));
	msg(want, sizeof(want), OK_HEAD("<sip:bob@192.0.2.1:5070;transport=udp>"),
	    ANSWER("198.51.100.7", "40000"));
	assert_string_equal(t_one(t, NS_ALG_IN, in), want);
	assert_int_equal(t->fake.calls, 1);
	assert_int_equal(t->fake.port[0], 3456);
	t_close(t);
#undef OK_HEAD
#undef ANSWER
}

/* The remote UA's Via goes to the local app as this agent, and comes back
 * in the local app's responses as it was. */
static void test_via_restored(void **state)
{
	const char *ringing =
		"SIP/2.0 180 Ringing\r\n"
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;received=192.0.2.1;"
		"rport=5060\r\n"
		"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK77ef4c2312983.1\r\n"
		"CSeq: 314159 INVITE\r\n"
		"Content-Length: 0\r\n\r\n";
	const char *want =
		"SIP/2.0 180 Ringing\r\n"
		"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
		"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK77ef4c2312983.1\r\n"
		"CSeq: 314159 INVITE\r\n"
		"Content-Length: 0\r\n\r\n";
	/* one Via header with two values; compact form */
	const char *ringing2 =
		"SIP/2.0 180 Ringing\r\n"
		"v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds , SIP/2.0/UDP p;branch=x\r\n"
		"l: 0\r\n\r\n";
	const char *want2 =
		"SIP/2.0 180 Ringing\r\n"
		"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds, SIP/2.0/UDP "
		"p;branch=x\r\n"
		"l: 0\r\n\r\n";
	const char *unknown =
		"SIP/2.0 200 OK\r\n"
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKother\r\n"
		"Content-Length: 0\r\n\r\n";
	struct t *t;
	int dg;

	for (dg = 0; dg < 2; dg++) {
		t = t_open(NS_ALG_PROVIDER, dg, AF_INET);
		build_invite();
		assert_string_equal(t_one(t, NS_ALG_IN, in_invite), want_invite);
		assert_string_equal(t_one(t, NS_ALG_OUT, ringing), want);
		/* again (retransmission): same result */
		assert_string_equal(t_one(t, NS_ALG_OUT, ringing), want);
		assert_string_equal(t_one(t, NS_ALG_OUT, ringing2), want2);
		/* a branch never seen: left as it is */
		assert_string_equal(t_one(t, NS_ALG_OUT, unknown), unknown);
		/* responses IN are not the ones to restore */
		assert_string_equal(t_one(t, NS_ALG_IN, want), want);
		t_close(t);
	}
}

/* Compact forms (RFC 3261 7.3.3) and any case. */
static void test_compact(void **state)
{
#define HEAD(uri, via, contact)								\
	"ACK " uri " SIP/2.0\r\n"							\
	"V: " via "\r\n"								\
	"f: <sip:a@b>;tag=1\r\n"							\
	"t: <sip:c@d>\r\n"								\
	"i: 1234@x\r\n"									\
	"CONTACT  : " contact "\r\n"							\
	"c: application/SDP\r\n"
#define BODY(addr, port) "v=0\r\nc=IN IP4 " addr "\r\nm=audio " port " RTP/AVP 0\r\n"
	char in[2048], want[2048];
	struct t *t = t_open(NS_ALG_PROVIDER, true, AF_INET);

	snprintf(in, sizeof(in), "%sl: %zu\r\n\r\n%s",
		 HEAD("sips:bob@10.1.1.1;transport=tls", "SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKc",
		      "sip:alice@10.0.0.1:5061;expires=60"),
		 strlen(BODY("10.0.0.1", "1000")), BODY("10.0.0.1", "1000"));
	snprintf(want, sizeof(want), "%sl: %zu\r\n\r\n%s",
		 HEAD("sips:bob@192.0.2.9:5060;transport=tls",
		      "SIP/2.0/TLS 192.0.2.1:5060;branch=z9hG4bKc",
		      "sip:alice@192.0.2.1:5060;expires=60"),
		 strlen(BODY("198.51.100.7", "40000")), BODY("198.51.100.7", "40000"));
	assert_string_equal(t_one(t, NS_ALG_IN, in), want);
	assert_int_equal(t->fake.calls, 1);
	t_close(t);
#undef HEAD
#undef BODY
}

/* Contact lists, display names with commas, "*", other schemes; a folded Via. */
static void test_contact_and_folding(void **state)
{
	const char *in =
		"REGISTER sip:registrar.example.com SIP/2.0\r\n"
		"Via: SIP/2.0/UDP\r\n 10.0.0.5:5060\r\n\t;branch=z9hG4bKfold\r\n"
		"Contact: \"Al, <B>\" <sip:a@10.0.0.5>;q=0.5, sip:b@[2001:db8::5]:5062;expires=60 ,"
		"<tel:+15551234>\r\n"
		"contact: *\r\n"
		"Content-Length: 0\r\n\r\n";
	const char *want =
		"REGISTER sip:192.0.2.9:5060 SIP/2.0\r\n"
		"Via: SIP/2.0/UDP 192.0.2.1:5060 ;branch=z9hG4bKfold\r\n"
		"Contact: \"Al, <B>\" <sip:a@192.0.2.1:5060>;q=0.5, sip:b@192.0.2.1:5060;expires=60 ,"
		"<tel:+15551234>\r\n"
		"contact: *\r\n"
		"Content-Length: 0\r\n\r\n";
	struct t *t = t_open(NS_ALG_PROVIDER, false, AF_INET);

	assert_string_equal(t_one(t, NS_ALG_IN, in), want);
	/* the response finds the folded Via by its branch */
	assert_string_equal(t_one(t, NS_ALG_OUT, "SIP/2.0 200 OK\r\n"
				  "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfold\r\n"
				  "Content-Length: 0\r\n\r\n"),
			    "SIP/2.0 200 OK\r\n"
			    "Via: SIP/2.0/UDP 10.0.0.5:5060 ;branch=z9hG4bKfold\r\n"
			    "Content-Length: 0\r\n\r\n");
	assert_int_equal(t->fake.calls, 0);
	t_close(t);
}

static void test_ipv6(void **state)
{
	const char *body = "v=0\r\nc=IN IP6 2001:db8::5\r\nm=audio 5004 RTP/AVP 0\r\n"
			   "a=rtcp:5005 IN IP6 2001:db8::5\r\n";
	const char *wbody = "v=0\r\nc=IN IP6 2001:db8::7\r\nm=audio 40000 RTP/AVP 0\r\n"
			    "a=rtcp:40001 IN IP6 2001:db8::7\r\n";
	char in[2048], want[2048];
	struct t *t = t_open(NS_ALG_PROVIDER, true, AF_INET6);

	msg(in, sizeof(in), "INVITE sip:bob@[2001:db8::99]:5080;user=phone SIP/2.0\r\n"
	    "Via: SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bK6\r\n"
	    "Contact: <sip:alice@[2001:db8::5]>\r\n"
	    "Content-Type: application/sdp\r\n", body);
	msg(want, sizeof(want), "INVITE sip:bob@[2001:db8::9]:5060;user=phone SIP/2.0\r\n"
	    "Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK6\r\n"
	    "Contact: <sip:alice@[2001:db8::1]:5060>\r\n"
	    "Content-Type: application/sdp\r\n", wbody);
	assert_string_equal(t_one(t, NS_ALG_IN, in), want);
	assert_true(t->fake.pair[0]);
	t_close(t);

	/* an IPv4 offer, IPv6 aliases: c= changes family */
	t = t_open(NS_ALG_PROVIDER, true, AF_INET6);
	msg(in, sizeof(in), "SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n",
	    "c=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\n");
	msg(want, sizeof(want), "SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n",
	    "c=IN IP6 2001:db8::7\r\nm=audio 40000 RTP/AVP 0\r\n");
	assert_string_equal(t_one(t, NS_ALG_IN, in), want);
	t_close(t);
}

/* The SDP of one message, IN at P: the body that came out. */
static const char *sdp_in(struct t *t, const char *body)
{
	static char in[BIG];
	const char *out, *b;

	msg(in, sizeof(in), "SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n", body);
	out = t_one(t, NS_ALG_IN, in);
	b = strstr(out, "\r\n\r\n");
	assert_non_null(b);
	return b + 4;
}

static void test_rtcp(void **state)
{
	struct t *t = t_open(NS_ALG_PROVIDER, true, AF_INET);

	/* a=rtcp on port + 1: one pair */
	assert_string_equal(sdp_in(t, "m=audio 5004 RTP/AVP 0\r\na=rtcp:5005\r\n"),
			    "m=audio 40000 RTP/AVP 0\r\na=rtcp:40001\r\n");
	assert_int_equal(t->fake.calls, 1);
	assert_true(t->fake.pair[0]);
	/* elsewhere: two single aliases */
	assert_string_equal(sdp_in(t, "m=audio 5004 RTP/AVP 0\r\na=rtcp:53020 IN IP4 10.0.0.1\r\n"),
			    "m=audio 40002 RTP/AVP 0\r\na=rtcp:40004 IN IP4 198.51.100.7\r\n");
	assert_int_equal(t->fake.calls, 3);
	assert_int_equal(t->fake.port[1], 5004);
	assert_false(t->fake.pair[1]);
	assert_int_equal(t->fake.port[2], 53020);
	assert_false(t->fake.pair[2]);
	/* rtcp-mux (and a=rtcp naming the RTP port): no pair */
	assert_string_equal(sdp_in(t, "m=audio 5004 RTP/SAVPF 0\r\na=rtcp:5004\r\na=rtcp-mux\r\n"),
			    "m=audio 40006 RTP/SAVPF 0\r\na=rtcp:40006\r\na=rtcp-mux\r\n");
	assert_false(t->fake.pair[3]);
	assert_string_equal(sdp_in(t, "m=audio 5004 RTP/AVP 0\na=rtcp-mux\n"),
			    "m=audio 40008 RTP/AVP 0\na=rtcp-mux\n");
	assert_false(t->fake.pair[4]);
	/* not RTP (T.38): no pair */
	assert_string_equal(sdp_in(t, "m=image 6000 udptl t38\r\n"), "m=image 40010 udptl t38\r\n");
	assert_false(t->fake.pair[5]);
	assert_int_equal(t->fake.calls, 6);
	/* disabled, TCP, several ports, garbage: port 0, no alias */
	assert_string_equal(sdp_in(t, "m=audio 0 RTP/AVP 0\r\n"
				   "m=message 7394 TCP/MSRP *\r\n"
				   "m=video 6000/2 RTP/AVP 31\r\n"
				   "m=audio 70000 RTP/AVP 0\r\n"
				   "m=audio\r\n"),
			    "m=audio 0 RTP/AVP 0\r\n"
			    "m=message 0 TCP/MSRP *\r\n"
			    "m=video 0 RTP/AVP 31\r\n"
			    "m=audio 0 RTP/AVP 0\r\n"
			    "m=audio\r\n");
	assert_int_equal(t->fake.calls, 6);
	t_close(t);
}

/* 100 streams against a flow limit of 3: three aliases, the rest port 0,
 * and expect() asked at most SDP_MEDIA_MAX times. */
static void test_media_flood(void **state)
{
	static char body[BIG], want[BIG];
	struct t *t = t_open(NS_ALG_PROVIDER, false, AF_INET);
	size_t bl = 0, wl = 0;
	char cl[32];
	int i;

	t->fake.allow = 3;
	bl += snprintf(body + bl, sizeof(body) - bl, "v=0\r\nc=IN IP4 10.0.0.1\r\n");
	wl += snprintf(want + wl, sizeof(want) - wl, "v=0\r\nc=IN IP4 198.51.100.7\r\n");
	for (i = 0; i < 100; i++) {
		bl += snprintf(body + bl, sizeof(body) - bl, "m=audio %d RTP/AVP 0\r\n", 10000 + 2 * i);
		wl += snprintf(want + wl, sizeof(want) - wl, "m=audio %d RTP/AVP 0\r\n",
			       i < 3 ? 40000 + 2 * i : 0);
	}
	assert_string_equal(sdp_in(t, body), want);
	assert_int_equal(t->fake.calls, SDP_MEDIA_MAX);
	assert_int_equal(t->fake.port[SDP_MEDIA_MAX - 1], 10000 + 2 * (SDP_MEDIA_MAX - 1));
	/* the message's Content-Length is the new body's */
	snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", strlen(want));
	assert_non_null(strstr(t_str(t), cl));
	t_close(t);
}

/* Datagrams: what is SIP but broken is dropped; what is not SIP passes. */
static void test_malformed_udp(void **state)
{
	static const char *const dropped[] = {
		"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=1\r\n",
		"INVITE sip:a@b SIP/2.0\r\nContent-Length: abc\r\n\r\n",
		"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
		"INVITE sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab",
		"INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
		"INVITE sip:a@b SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n",
		"INVITE sip:a@b\r\nContent-Length: 0\r\n\r\n",
		"INVITE  sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:a@b SIP/3.0\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 20 OK\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 2000 OK\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
		"INVITE sip:a@b SIP/2.0\r\n : empty name\r\n\r\n",
	};
	const char stun[] = "\x01\x01\x00\x0c\x21\x12\xa4\x42";
	struct t *t = t_open(NS_ALG_PROVIDER, true, AF_INET);
	size_t i;

	for (i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
		t->out.len = 0;
		assert_int_equal(ns_alg_sip.feed(t->st, NS_ALG_IN, (const __u8 *)dropped[i],
						 strlen(dropped[i]), &t->out), 0);
		assert_int_equal(t->out.len, 0);
	}
	/* keepalives, STUN: not SIP, not judged */
	assert_string_equal(t_one(t, NS_ALG_IN, "\r\n\r\n"), "\r\n\r\n");
	t->out.len = 0;
	assert_int_equal(ns_alg_sip.feed(t->st, NS_ALG_IN, (const __u8 *)stun, 8, &t->out), 0);
	assert_int_equal(t->out.len, 8);
	assert_memory_equal(t->out.data, stun, 8);
	/* bytes after the body are discarded (RFC 3261 18.3) */
	assert_string_equal(t_one(t, NS_ALG_IN, "SIP/2.0 100 Trying\r\nContent-Length: 2\r\n\r\n"
				  "abJUNK"),
			    "SIP/2.0 100 Trying\r\nContent-Length: 2\r\n\r\nab");
	/* no Content-Length in a datagram: the rest is the body */
	assert_string_equal(t_one(t, NS_ALG_IN, "SIP/2.0 100 Trying\r\n\r\nbody"),
			    "SIP/2.0 100 Trying\r\n\r\nbody");
	assert_int_equal(ns_alg_sip.flush(t->st, NS_ALG_IN, &t->out), 0);
	assert_int_equal(t->fake.calls, 0);
	t_close(t);
}

static void test_malformed_tcp(void **state)
{
	static char big[BIG];
	const char *ok = "OPTIONS sip:x@10.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n";
	const char *ok_want = "OPTIONS sip:x@192.0.2.9:5060 SIP/2.0\r\nContent-Length: 0\r\n\r\n";
	struct t *t = t_open(NS_ALG_PROVIDER, false, AF_INET);
	size_t n;

	/* framed but broken: passes as it was, the next one is rewritten */
	assert_string_equal(t_one(t, NS_ALG_IN, "BAD LINE\r\nContent-Length: 0\r\n\r\n"),
			    "BAD LINE\r\nContent-Length: 0\r\n\r\n");
	assert_string_equal(t_one(t, NS_ALG_IN, ok), ok_want);
	/* headers without their end: held, then flushed unmodified at EOF */
	assert_string_equal(t_one(t, NS_ALG_IN, "INVITE sip:a@b SIP/2.0\r\nVia: x\r\n"), "");
	assert_int_equal(ns_alg_sip.flush(t->st, NS_ALG_IN, &t->out), 0);
	assert_string_equal(t_str(t), "INVITE sip:a@b SIP/2.0\r\nVia: x\r\n");
	t_close(t);

	/* a message over NS_ALG_MSG_MAX passes unheld, framing resumes after it */
	t = t_open(NS_ALG_PROVIDER, false, AF_INET);
	n = snprintf(big, sizeof(big), "MESSAGE sip:a@10.0.0.1 SIP/2.0\r\nContent-Length: %d\r\n\r\n",
		     70000);
	memset(big + n, 'z', 70000);
	strcpy(big + n + 70000, ok);
	t->out.len = 0;
	t_feed(t, NS_ALG_IN, big, 4096);
	assert_int_equal(t->out.len, n + 70000 + strlen(ok_want));
	assert_memory_equal(t->out.data, big, n + 70000);
	assert_string_equal(t_str(t) + n + 70000, ok_want);
	t_close(t);

	/* bad Content-Length: no framing, the rest passes unchanged */
	t = t_open(NS_ALG_PROVIDER, false, AF_INET);
	snprintf(big, sizeof(big), "INVITE sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n%s", ok);
	assert_string_equal(t_one(t, NS_ALG_IN, big), big);
	assert_string_equal(t_one(t, NS_ALG_IN, ok), ok);
	t_close(t);

	/* no end of headers within NS_ALG_MSG_MAX: nothing more held */
	t = t_open(NS_ALG_PROVIDER, false, AF_INET);
	memset(big, 'h', 100000);
	big[100000] = '\0';
	t->out.len = 0;
	t_feed(t, NS_ALG_IN, big, 1000);
	assert_int_equal(t->out.len, 100000);
	assert_string_equal(t_one(t, NS_ALG_IN, ok), ok);
	t_close(t);
}

static void test_rewrite_keeps_going(void **state)
{
	/* a Via the ALG cannot read: left as it is, the rest still rewritten */
	const char *in = "BYE sip:bob@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP ;;;\r\n"
			 "Contact: <sip:alice@10.0.0.2>\r\nContent-Length: 0\r\n\r\n";
	const char *want = "BYE sip:bob@192.0.2.9:5060 SIP/2.0\r\nVia: SIP/2.0/UDP ;;;\r\n"
			   "Contact: <sip:alice@192.0.2.1:5060>\r\nContent-Length: 0\r\n\r\n";
	/* a non-SIP Request-URI stays */
	const char *tel = "INVITE tel:+15551234 SIP/2.0\r\nContent-Length: 0\r\n\r\n";
	struct t *t = t_open(NS_ALG_PROVIDER, true, AF_INET);

	assert_string_equal(t_one(t, NS_ALG_IN, in), want);
	assert_string_equal(t_one(t, NS_ALG_IN, tel), tel);
	t_close(t);
}

static void test_open_needs_addresses(void **state)
{
	struct ns_alg_env env = { .expect = fake_expect };

	errno = 0;
	assert_null(ns_alg_sip.open(&env, true));
	assert_int_equal(errno, EINVAL);
	/* addresses but no expect() */
	assert_int_equal(ns_parse_sockaddr("192.0.2.1:5060", 0, &env.local, &(socklen_t){ 0 }), 0);
	assert_int_equal(ns_parse_sockaddr("192.0.2.9:5060", 0, &env.app, &(socklen_t){ 0 }), 0);
	env.expect = NULL;
	errno = 0;
	assert_null(ns_alg_sip.open(&env, false));
	assert_int_equal(errno, EINVAL);
	env.expect = fake_expect;
	ns_alg_sip.close(ns_alg_sip.open(&env, false));
	ns_alg_sip.close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invite_udp),
		cmocka_unit_test(test_invite_tcp_split),
		cmocka_unit_test(test_response_in),
		cmocka_unit_test(test_via_restored),
		cmocka_unit_test(test_compact),
		cmocka_unit_test(test_contact_and_folding),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_rtcp),
		cmocka_unit_test(test_media_flood),
		cmocka_unit_test(test_malformed_udp),
		cmocka_unit_test(test_malformed_tcp),
		cmocka_unit_test(test_rewrite_keeps_going),
		cmocka_unit_test(test_open_needs_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
