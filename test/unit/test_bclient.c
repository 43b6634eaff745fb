// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bclient: the broker client against a fake broker on 127.0.0.1, both on one
 * event loop. The login sequence (CHALLENGE, LOGIN with a proof the fake
 * checks, the owner's attributes, LOGIN_OK reported up), heartbeats every
 * hold time / 3, the hold timer ending a silent connection and the
 * reconnections after it spaced by the growing backoff, a refused login
 * reported up with the broker's code and text, and a malformed message (the
 * backoff curve itself, lib/util.c's, is test_agent_util's). Runs in about 15 s: the shortest hold time the
 * protocol allows is 3 s.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "natsplice_abi.h"
#include "auth.h"
#include "bclient.h"
#include "conn.h"
#include "log.h"
#include "util.h"

#define MS		1000000ull	/* ns */
#define MAX_EVENTS	16
#define NAME		"relay1"
#define SECRET		"s3cret"
#define AUTH_TEXT	"unknown name or bad proof"
#define SLACK_MS	300	/* a shared, busy machine may run a timer this late */

/* ---- the fake broker ---- */

struct fake {
	struct ns_loop *l;
	int lfd;
	struct ns_watch lw;
	struct ns_conn c;
	struct ns_watch cw;	/* fd -1: no connection */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/* behaviour */
	__u32 hold_s;		/* sent in LOGIN_OK */
	bool echo_beats;	/* answer each HEARTBEAT with one */
	bool close_at_once;	/* close accepted connections at once */
	bool garbage_after_login;	/* send a bad frame after LOGIN_OK */
	/* what it saw */
	int accepts;
	int logins;
	bool proof_ok, has_local, has_relay_addr;
	__u8 role, version;
	char name[64];
	__u8 nonce[NS_NONCE_LEN];
	__u64 login_ok_ns;
	int beats;		/* HEARTBEATs after a login */
	int hellos;		/* plain-text first HEARTBEATs, before LOGIN */
	bool conn_login;	/* this connection has sent LOGIN */
	__u64 beat_ns[MAX_EVENTS];
	int others;
	__u8 other_type;
	__u32 error_code;	/* of an ERROR the client sent */
};

/* ---- the owner ---- */

struct bed {
	struct ns_loop *l;
	struct fake f;
	struct ns_bclient *b;
	volatile bool stop;
	struct ns_timer deadline;
	/* stop the loop when one of these is reached (0: not asked) */
	int want_ups, want_downs, want_beats, want_msgs;
	int stop_after_downs;	/* ns_bclient_stop() in the down callback this time */
	/* what the owner was told */
	int ups;
	struct ns_bclient_login li;
	int downs;
	enum ns_bclient_why why[MAX_EVENTS];
	bool was_up[MAX_EVENTS];
	__u64 down_ns[MAX_EVENTS];
	__u32 code;
	char text[256];
	int msgs;
	__u8 msg_type;
};

static void check_done(struct bed *t)
{
	if ((t->want_ups && t->ups >= t->want_ups) ||
	    (t->want_downs && t->downs >= t->want_downs) ||
	    (t->want_beats && t->f.beats >= t->want_beats) ||
	    (t->want_msgs && t->msgs >= t->want_msgs))
		t->stop = true;
}

static struct bed *fake_bed(struct fake *f)
{
	return (struct bed *)((char *)f - offsetof(struct bed, f));
}

static void fake_send(struct fake *f, struct ns_msg_buf *mb)
{
	assert_int_equal(ns_mb_finish(mb), 0);
	assert_int_equal(ns_conn_send(&f->c, mb), 0);
	ns_mb_free(mb);
}

static void fake_close(struct fake *f)
{
	if (f->cw.fd < 0)
		return;
	ns_loop_del(f->l, &f->cw);
	ns_conn_free(&f->c);
	f->cw.fd = -1;
}

static void fake_on_login(struct fake *f, const struct ns_msg *m)
{
	__u8 proof[NS_HMAC_LEN], want[NS_HMAC_LEN], family;
	struct ns_msg_buf mb = {};
	__u32 addr[4] = { htonl(0xcb007107) }, got[4];	/* 203.0.113.7 */
	__u16 port;

	f->logins++;
	f->conn_login = true;
	ns_msg_u8(m, NS_A_ROLE, &f->role);
	ns_msg_u8(m, NS_A_VERSION, &f->version);
	ns_msg_str(m, NS_A_NAME, f->name, sizeof(f->name));
	f->has_local = !ns_msg_addr(m, NS_A_LOCAL_ADDR, &family, got, &port) && port;
	f->has_relay_addr = !ns_msg_addr(m, NS_A_RELAY_ADDR, &family, got, &port);
	f->proof_ok = !ns_msg_bin(m, NS_A_PROOF, proof, sizeof(proof)) &&
		      !ns_login_proof(SECRET, f->nonce, f->name, NULL, 0, want) &&
		      !ns_hmac_check(proof, want);
	if (!f->proof_ok) {
		ns_mb_init(&mb, NS_MSG_ERROR);
		ns_mb_u32(&mb, NS_A_CODE, NS_ERR_AUTH);
		ns_mb_str(&mb, NS_A_TEXT, AUTH_TEXT);
		fake_send(f, &mb);
		fake_close(f);	/* as the broker does */
		return;
	}
	ns_mb_init(&mb, NS_MSG_LOGIN_OK);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_u32(&mb, NS_A_HOLD_TIME, f->hold_s);
	ns_mb_addr(&mb, NS_A_OBSERVED_ADDR, NS_AF_INET, addr, 4242);
	fake_send(f, &mb);
	f->login_ok_ns = ns_now_ns();
	if (f->garbage_after_login) {
		static const __u8 bad[8] = { 99, NS_MSG_OK, 0, 0, 0, 0, 0, 0 };	/* version 99 */

		assert_int_equal(write(f->c.fd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
	}
}

/* One message from the client; false when the fake closed the connection. */
static bool fake_on_msg(struct fake *f, const struct ns_msg *m)
{
	struct ns_msg_buf mb = {};

	switch (m->type) {
	case NS_MSG_LOGIN:
		fake_on_login(f, m);
		break;
	case NS_MSG_HEARTBEAT:
		if (!f->conn_login) {
			f->hellos++;	/* the plain-text client speaks first */
			break;
		}
		if (f->beats < MAX_EVENTS)
			f->beat_ns[f->beats] = ns_now_ns();
		f->beats++;
		if (f->echo_beats) {
			ns_mb_init(&mb, NS_MSG_HEARTBEAT);
			fake_send(f, &mb);
		}
		break;
	case NS_MSG_ERROR:
		ns_msg_u32(m, NS_A_CODE, &f->error_code);
		break;
	default:
		f->others++;
		f->other_type = m->type;
	}
	check_done(fake_bed(f));
	return f->cw.fd >= 0;
}

static void fake_on_conn(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct fake *f = w->data;
	struct ns_msg m;
	int rd, n;

	rd = ns_conn_read(&f->c);
	while ((n = ns_conn_next(&f->c, &m)) > 0)
		if (!fake_on_msg(f, &m))
			return;
	if (rd < 0 || n < 0)
		fake_close(f);
}

static void fake_on_accept(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct fake *f = w->data;
	struct ns_msg_buf mb = {};
	int fd;

	fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	f->accepts++;
	if (f->close_at_once) {
		close(fd);
		return;
	}
	fake_close(f);	/* one client at a time */
	f->conn_login = false;
	assert_int_equal(ns_conn_init(&f->c, fd), 0);
	f->cw.fd = fd;
	assert_int_equal(ns_loop_add(l, &f->cw, EPOLLIN), 0);
	assert_int_equal(ns_random_bytes(f->nonce, sizeof(f->nonce)), 0);
	ns_mb_init(&mb, NS_MSG_CHALLENGE);
	ns_mb_bin(&mb, NS_A_NONCE, f->nonce, sizeof(f->nonce));
	ns_mb_u8(&mb, NS_A_VERSION_MIN, NS_PROTO_VERSION);
	ns_mb_u8(&mb, NS_A_VERSION_MAX, NS_PROTO_VERSION);
	fake_send(f, &mb);
}

static void fake_open(struct fake *f, struct ns_loop *l)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&f->addr;

	f->l = l;
	f->hold_s = NS_HOLD_TIME_S;
	f->cw = (struct ns_watch){ .fn = fake_on_conn, .fd = -1, .data = f };
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->addrlen = sizeof(*sin);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)sin, f->addrlen), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)sin, &f->addrlen), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	f->lw = (struct ns_watch){ .fn = fake_on_accept, .fd = f->lfd, .data = f };
	assert_int_equal(ns_loop_add(l, &f->lw, EPOLLIN), 0);
}

static void fake_free(struct fake *f)
{
	fake_close(f);
	ns_loop_del(f->l, &f->lw);
	close(f->lfd);
}

/* ---- the owner's callbacks ---- */

static void own_login(void *arg, struct ns_msg_buf *mb)
{
	__u32 addr[4] = { htonl(0xc6336401) };	/* 198.51.100.1 */

	ns_mb_addr(mb, NS_A_RELAY_ADDR, NS_AF_INET, addr, 0);
}

static void own_up(void *arg, const struct ns_bclient_login *li)
{
	struct bed *t = arg;

	t->ups++;
	t->li = *li;
	t->li.msg = NULL;
	check_done(t);
}

static void own_message(void *arg, const struct ns_msg *m)
{
	struct bed *t = arg;

	t->msgs++;
	t->msg_type = m->type;
	check_done(t);
}

static void own_down(void *arg, const struct ns_bclient_loss *loss)
{
	struct bed *t = arg;

	if (t->downs < MAX_EVENTS) {
		t->why[t->downs] = loss->why;
		t->was_up[t->downs] = loss->was_up;
		t->down_ns[t->downs] = ns_now_ns();
	}
	t->downs++;
	t->code = loss->code;
	snprintf(t->text, sizeof(t->text), "%s", loss->text);
	assert_non_null(loss->msg);
	if (t->downs == t->stop_after_downs)
		ns_bclient_stop(t->b);
	check_done(t);
}

static const struct ns_bclient_ops own_ops = {
	.login = own_login,
	.up = own_up,
	.message = own_message,
	.down = own_down,
};

static void on_deadline(struct ns_loop *l, struct ns_timer *tm)
{
	struct bed *t = tm->data;

	t->stop = true;
}

/* Run the loop until a want_* is reached or ms pass. */
static void run(struct bed *t, __u64 ms)
{
	t->stop = false;
	ns_timer_arm(t->l, &t->deadline, ms);
	assert_int_equal(ns_loop_run(t->l, &t->stop), 0);
	ns_timer_cancel(t->l, &t->deadline);
}

static struct bed *bed_open(const char *secret)
{
	struct bed *t = calloc(1, sizeof(*t));
	struct ns_bclient_cfg cfg = { .role = NS_ROLE_RELAY, .name = NAME, .secret = secret };

	assert_non_null(t);
	t->l = ns_loop_new();
	assert_non_null(t->l);
	ns_timer_init(&t->deadline, on_deadline, t);
	fake_open(&t->f, t->l);
	cfg.addr = t->f.addr;
	cfg.addrlen = t->f.addrlen;
	assert_int_equal(ns_bclient_new(t->l, &cfg, &own_ops, t, &t->b), 0);
	return t;
}

static void bed_free(struct bed *t)
{
	ns_bclient_free(t->b);
	fake_free(&t->f);
	ns_loop_free(t->l);
	free(t);
}

static __u64 ms_between(__u64 a, __u64 b)
{
	return (b - a) / MS;
}

/* ---- tests ---- */

static void test_login_sequence(void **state)
{
	struct bed *t = bed_open(SECRET);
	struct sockaddr_in *seen = (struct sockaddr_in *)&t->li.observed;
	struct ns_msg_buf mb = {};

	/* nothing goes out before the login */
	ns_mb_init(&mb, NS_MSG_SPLICE_PEER);
	assert_int_equal(ns_bclient_send(t->b, &mb), -ENOTCONN);
	assert_false(ns_bclient_up(t->b));

	t->f.hold_s = 12;
	t->want_ups = 1;
	ns_bclient_start(t->b);
	run(t, 5000);
	assert_int_equal(t->ups, 1);
	assert_int_equal(t->downs, 0);
	assert_true(ns_bclient_up(t->b));
	/* the LOGIN: role, name, version, a proof over the fake's nonce, the
	 * local address and the owner's own attribute */
	assert_int_equal(t->f.accepts, 1);
	assert_int_equal(t->f.logins, 1);
	assert_int_equal(t->f.hellos, 1);	/* plain text: the client spoke first */
	assert_true(t->f.proof_ok);
	assert_int_equal(t->f.role, NS_ROLE_RELAY);
	assert_int_equal(t->f.version, NS_PROTO_VERSION);
	assert_string_equal(t->f.name, NAME);
	assert_true(t->f.has_local);
	assert_true(t->f.has_relay_addr);
	/* what LOGIN_OK said, reported up */
	assert_int_equal(t->li.hold_s, 12);
	assert_true(t->li.has_observed);
	assert_int_equal(seen->sin_family, AF_INET);
	assert_int_equal(ntohl(seen->sin_addr.s_addr), 0xcb007107);
	assert_int_equal(ntohs(seen->sin_port), 4242);

	/* the owner's messages go out; the broker's reach the owner, but
	 * not its HEARTBEATs */
	ns_mb_init(&mb, NS_MSG_SPLICE_PEER);
	ns_mb_u64(&mb, NS_A_SESSION, 7);
	assert_int_equal(ns_bclient_send(t->b, &mb), 0);
	ns_mb_init(&mb, NS_MSG_HEARTBEAT);
	fake_send(&t->f, &mb);
	ns_mb_init(&mb, NS_MSG_SPLICE_REQUEST);
	fake_send(&t->f, &mb);
	t->want_ups = 0;
	t->want_msgs = 1;
	run(t, 2000);
	assert_int_equal(t->msgs, 1);
	assert_int_equal(t->msg_type, NS_MSG_SPLICE_REQUEST);
	assert_int_equal(t->f.others, 1);
	assert_int_equal(t->f.other_type, NS_MSG_SPLICE_PEER);
	bed_free(t);
}

/* HOLD_TIME 3: a HEARTBEAT every second from the login on; the broker's own
 * heartbeats keep the connection past its hold time. */
static void test_heartbeat_on_time(void **state)
{
	struct bed *t = bed_open(SECRET);
	int i;

	t->f.hold_s = 3;
	t->f.echo_beats = true;
	t->want_beats = 4;
	ns_bclient_start(t->b);
	run(t, 8000);
	assert_int_equal(t->f.beats, 4);
	assert_int_equal(t->downs, 0);
	assert_int_equal(t->ups, 1);
	assert_true(ms_between(t->f.login_ok_ns, t->f.beat_ns[0]) >= 1000);
	assert_true(ms_between(t->f.login_ok_ns, t->f.beat_ns[0]) <= 1000 + SLACK_MS);
	for (i = 1; i < 4; i++) {
		__u64 gap = ms_between(t->f.beat_ns[i - 1], t->f.beat_ns[i]);

		assert_true(gap >= 1000 - SLACK_MS);
		assert_true(gap <= 1000 + SLACK_MS);
	}
	/* 4 s after the login: past the hold time, still up */
	assert_true(ns_bclient_up(t->b));
	bed_free(t);
}

/*
 * A broker that goes silent after LOGIN_OK: lost after the hold time, then
 * a new attempt after 0.5 s +-25 %; the fake now closes every connection,
 * so the next attempts follow after 1 s and 2 s (+-25 %).
 */
static void test_hold_expiry_backoff(void **state)
{
	static const __u64 base[] = { 500, 1000, 2000 };
	struct bed *t = bed_open(SECRET);
	__u64 gap;
	int i;

	t->f.hold_s = 3;
	t->f.echo_beats = false;
	t->want_ups = 1;
	ns_bclient_start(t->b);
	run(t, 5000);
	assert_int_equal(t->ups, 1);
	t->want_ups = 0;
	t->want_downs = 1;
	run(t, 3000 + 2 * SLACK_MS);
	assert_int_equal(t->downs, 1);
	assert_int_equal(t->why[0], NS_BCLIENT_HOLD);
	assert_true(t->was_up[0]);
	assert_true(ms_between(t->f.login_ok_ns, t->down_ns[0]) >= 3000);
	assert_true(ms_between(t->f.login_ok_ns, t->down_ns[0]) <= 3000 + SLACK_MS);
	assert_false(ns_bclient_up(t->b));

	t->f.close_at_once = true;
	t->want_downs = 4;
	run(t, 8000);
	assert_int_equal(t->downs, 4);
	assert_int_equal(t->f.accepts, 4);
	for (i = 1; i < 4; i++) {
		assert_int_equal(t->why[i], NS_BCLIENT_CLOSED);
		assert_false(t->was_up[i]);
		gap = ms_between(t->down_ns[i - 1], t->down_ns[i]);
		assert_true(gap >= base[i - 1] * 3 / 4);
		assert_true(gap <= base[i - 1] * 5 / 4 + SLACK_MS);
	}
	bed_free(t);
}

/* A wrong secret: the broker's ERROR AUTH and its text reach the owner; the
 * client retries until the owner stops it, and not after. */
static void test_bad_login_reported(void **state)
{
	struct bed *t = bed_open("not-the-secret");

	t->want_downs = 2;
	t->stop_after_downs = 2;
	ns_bclient_start(t->b);
	run(t, 5000);
	assert_int_equal(t->downs, 2);
	assert_int_equal(t->ups, 0);
	assert_int_equal(t->why[0], NS_BCLIENT_REFUSED);
	assert_int_equal(t->why[1], NS_BCLIENT_REFUSED);
	assert_false(t->was_up[1]);
	assert_int_equal(t->code, NS_ERR_AUTH);
	assert_string_equal(t->text, AUTH_TEXT);
	assert_int_equal(t->f.logins, 2);
	assert_false(t->f.proof_ok);
	/* stopped in the callback: no third attempt */
	t->want_downs = 0;
	run(t, 1500);
	assert_int_equal(t->f.accepts, 2);
	assert_int_equal(t->downs, 2);
	bed_free(t);
}

/* A frame the client cannot parse: it answers ERROR and reconnects. */
static void test_malformed_message(void **state)
{
	struct bed *t = bed_open(SECRET);

	t->f.garbage_after_login = true;
	t->want_downs = 1;
	ns_bclient_start(t->b);
	run(t, 5000);
	assert_int_equal(t->ups, 1);
	assert_int_equal(t->downs, 1);
	assert_int_equal(t->why[0], NS_BCLIENT_PROTOCOL);
	assert_true(t->was_up[0]);
	/* the fake reads the ERROR before the close */
	t->want_downs = 0;
	t->want_ups = 2;
	t->f.garbage_after_login = false;
	run(t, 3000);
	assert_int_equal(t->f.error_code, NS_ERR_UNSUPPORTED);
	assert_int_equal(t->ups, 2);	/* logged in again */
	bed_free(t);
}

static void test_bad_config(void **state)
{
	struct ns_bclient_cfg cfg = { .role = NS_ROLE_AGENT, .name = "", .secret = "x" };
	struct ns_bclient *b = NULL;

	assert_int_equal(ns_bclient_new(NULL, &cfg, &own_ops, NULL, &b), -EINVAL);
	assert_null(b);
	ns_bclient_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_sequence),
		cmocka_unit_test(test_heartbeat_on_time),
		cmocka_unit_test(test_hold_expiry_backoff),
		cmocka_unit_test(test_bad_login_reported),
		cmocka_unit_test(test_malformed_message),
		cmocka_unit_test(test_bad_config),
	};

	ns_log_init("test_bclient", NS_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
