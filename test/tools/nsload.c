// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * nsload: N lightweight agents logging in to a broker at once, speaking the
 * real protocol, to measure logins per second and the broker's memory with
 * many agents. Agent i is named PREFIXi with secret SECRETPREFIXi (generate
 * broker.yaml's agents: with --yaml).
 *
 *   nsload --yaml N [--prefix a] [--secret-prefix s]      print the agents: list
 *   nsload --broker IP:PORT --count N [--fingerprint sha256:HEX | --plain]
 *          [--inflight K] [--hold SEC] [--prefix a] [--secret-prefix s]
 *          [--name NAME --secret SECRET] [--flood M [--flood-list]]
 *
 * --flood M: each agent sends M HEARTBEATs at once after LOGIN_OK (a
 * chatty agent, for the broker's msg-rate); with --flood-list, M LISTs
 * instead, and it reads nothing more (--hold: sleeps): a peer that asks and
 * does not read, for the broker's bound on what it queues for one peer.
 *
 * With --fingerprint, each agent logs in as lib/bclient.c does: TLS 1.3 with
 * the broker pinned (lib/tls.c), CHALLENGE -> LOGIN with the HMAC proof
 * bound to the connection's TLS exporter -> LOGIN_OK. With --plain (the
 * default) it says HEARTBEAT first and the proof has no binding: the broker
 * needs insecure: true, and the figures leave TLS out.
 *
 * At most K logins are in progress at a time, on one epoll loop. Prints
 * "logins N failed F seconds T rate R/s" (and the first failure's reason on
 * stderr), then keeps the sessions open (answering heartbeats) for --hold
 * seconds so the broker's RSS can be read. Exit status 1 if a login failed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "auth.h"
#include "conn.h"
#include "proto.h"
#include "tls.h"
#include "util.h"
#include "tool.h"

#define EVENTS_MAX	256	/* epoll events per wake-up */
#define STALL_MS	10000	/* no event for this long: give up */
#define WHY_LEN		(NS_TLS_ERR_LEN + 64)

enum { S_CONNECTING, S_TLS, S_CHALLENGE, S_LOGIN, S_DONE, S_FAILED };

struct agent {
	struct ns_conn conn;
	__u8 ekm[NS_TLS_EXPORTER_LEN];	/* TLS: the login binding */
	__u32 events;			/* what conn.fd is registered for */
	int state;
	int idx;
};

struct load {
	const char *broker, *prefix, *secret_prefix;
	const char *name, *secret;	/* --name, --secret: every agent is this one */
	int flood;			/* --flood: heartbeats after LOGIN_OK */
	bool flood_list;		/* --flood-list: LISTs, then read nothing */
	int count, inflight, hold;
	struct ns_tls_client *tls;	/* NULL: plain text */
	int ep;
	char why[WHY_LEN];		/* the first failure */
};

static int start(struct load *l, struct agent *a, const struct sockaddr_storage *ss,
		 socklen_t sl)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = a };
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)ss, sl) && errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	err = ns_conn_init(&a->conn, fd);	/* closes fd on error */
	if (err)
		return err;
	a->state = S_CONNECTING;
	a->events = ev.events;
	return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Register for what the connection waits on now. */
static void watch(struct load *l, struct agent *a)
{
	struct epoll_event ev = { .data.ptr = a };

	ev.events = EPOLLIN | (ns_conn_want_write(&a->conn) ? EPOLLOUT : 0);
	if (ev.events != a->events && !epoll_ctl(l->ep, EPOLL_CTL_MOD, a->conn.fd, &ev))
		a->events = ev.events;
}

static int send_msg(struct agent *a, struct ns_msg_buf *mb)
{
	int err = ns_mb_finish(mb);

	if (!err)
		err = ns_conn_send(&a->conn, mb);
	ns_mb_free(mb);
	return err;
}

static int login(struct load *l, struct agent *a, const struct ns_msg *m)
{
	char name[64], secret[64];
	__u8 nonce[NS_NONCE_LEN], proof[NS_HMAC_LEN];
	struct ns_msg_buf mb;

	snprintf(name, sizeof(name), "%s%d", l->prefix, a->idx);
	snprintf(secret, sizeof(secret), "%s%d", l->secret_prefix, a->idx);
	if (l->name)	/* (one name tried again and again: a guesser) */
		snprintf(name, sizeof(name), "%s", l->name);
	if (l->secret)
		snprintf(secret, sizeof(secret), "%s", l->secret);
	if (ns_msg_bin(m, NS_A_NONCE, nonce, sizeof(nonce)) ||
	    ns_login_proof(secret, nonce, name, l->tls ? a->ekm : NULL,
			   l->tls ? sizeof(a->ekm) : 0, proof))
		return -EINVAL;
	ns_mb_init(&mb, NS_MSG_LOGIN);
	ns_mb_u8(&mb, NS_A_ROLE, NS_ROLE_AGENT);
	ns_mb_str(&mb, NS_A_NAME, name);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_bin(&mb, NS_A_PROOF, proof, sizeof(proof));
	return send_msg(a, &mb);
}

static int heartbeat(struct agent *a)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_HEARTBEAT);
	return send_msg(a, &mb);
}

/* The socket is connected: TLS handshake next, or (plain text) speak first. */
static int connected(struct load *l, struct agent *a, char *why, size_t len)
{
	struct ssl_st *ssl;
	int soerr = 0, err;
	socklen_t sl = sizeof(soerr);

	if (getsockopt(a->conn.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
		snprintf(why, len, "connect: %s", strerror(soerr ? soerr : errno));
		return -ECONNREFUSED;
	}
	if (!l->tls) {
		a->state = S_CHALLENGE;
		return heartbeat(a);
	}
	err = ns_tls_client_ssl(l->tls, a->conn.fd, &ssl);
	if (!err)
		err = ns_conn_set_tls(&a->conn, ssl);
	a->state = S_TLS;
	return err;
}

/* One handshake step; once done, the pin and the login binding. */
static int tls_step(struct load *l, struct agent *a, char *why, size_t len)
{
	int err = ns_conn_handshake(&a->conn);

	if (err == 1)
		return 0;
	if (err < 0) {
		snprintf(why, len, "TLS handshake: %s", err == -EPROTO ?
			 ns_conn_strerror(&a->conn, err) : "closed by the broker");
		return err;
	}
	err = ns_tls_client_done(l->tls, a->conn.ssl, a->ekm, sizeof(a->ekm), why, len);
	if (!err)
		a->state = S_CHALLENGE;
	return err;
}

/* Read and answer what came: 0, or < 0 with why. */
static int on_readable(struct load *l, struct agent *a, char *why, size_t len)
{
	struct ns_msg m;
	int rd, n;

again:
	rd = ns_conn_read(&a->conn);
	while ((n = ns_conn_next(&a->conn, &m)) > 0) {
		if (m.type == NS_MSG_CHALLENGE && a->state == S_CHALLENGE) {
			if (login(l, a, &m)) {
				snprintf(why, len, "cannot send LOGIN");
				return -EIO;
			}
			a->state = S_LOGIN;
		} else if (m.type == NS_MSG_LOGIN_OK && a->state == S_LOGIN) {
			int i;

			a->state = S_DONE;
			for (i = 0; i < l->flood; i++) {
				struct ns_msg_buf mb;

				if (!l->flood_list) {
					heartbeat(a);
					continue;
				}
				ns_mb_init(&mb, NS_MSG_LIST);
				ns_mb_u32(&mb, NS_A_REQ_ID, i + 1);
				send_msg(a, &mb);
			}
		} else if (m.type == NS_MSG_HEARTBEAT) {
			heartbeat(a);
		} else if (m.type == NS_MSG_ERROR) {
			char text[256] = "";

			ns_msg_str(&m, NS_A_TEXT, text, sizeof(text));
			snprintf(why, len, "broker: ERROR %s", text);
			return -EACCES;
		}
	}
	if (n < 0) {
		snprintf(why, len, "malformed message (%s)", strerror(-n));
		return n;
	}
	if (rd < 0) {
		snprintf(why, len, "%s", rd == -ECONNRESET || rd == -EPIPE ?
			 "closed by the broker" : ns_conn_strerror(&a->conn, rd));
		return rd;
	}
	if (ns_conn_rpending(&a->conn))	/* TLS: bytes left inside the SSL */
		goto again;
	return 0;
}

/* Handle readiness; returns 1 when this agent just finished (ok or not). */
static int step(struct load *l, struct agent *a, __u32 events)
{
	char why[WHY_LEN] = "";
	int was = a->state, err = 0;

	if (was == S_FAILED)
		return 0;
	if (a->state == S_CONNECTING)
		err = connected(l, a, why, sizeof(why));
	if (!err && a->state == S_TLS)
		err = tls_step(l, a, why, sizeof(why));
	if (!err && a->state != S_TLS && (events & EPOLLOUT)) {
		err = ns_conn_flush(&a->conn);
		if (err > 0)
			err = 0;
		else if (err < 0)
			snprintf(why, sizeof(why), "send: %s", ns_conn_strerror(&a->conn, err));
	}
	/* (TLS: a read may wait for EPOLLOUT; CHALLENGE may come with the handshake) */
	if (!err && a->state != S_TLS &&
	    ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || a->conn.ssl))
		err = on_readable(l, a, why, sizeof(why));
	if (err) {
		if (!l->why[0])
			snprintf(l->why, sizeof(l->why), "agent %d: %s", a->idx,
				 why[0] ? why : strerror(-err));
		a->state = S_FAILED;
		ns_conn_free(&a->conn);	/* closing the fd leaves the epoll set */
		return was != S_DONE;
	}
	watch(l, a);
	return was != S_DONE && a->state == S_DONE;
}

static void usage(void)
{
	fprintf(stderr, "usage: nsload --yaml N [--prefix P] [--secret-prefix S]\n"
			"       nsload --broker IP:PORT --count N [--fingerprint sha256:HEX | --plain]\n"
			"              [--inflight K] [--hold SEC] [--prefix P] [--secret-prefix S]\n"
			"              [--name NAME --secret SECRET] [--flood M [--flood-list]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "broker", required_argument, NULL, 'b' },
		{ "count", required_argument, NULL, 'n' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "hold", required_argument, NULL, 'H' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "secret-prefix", required_argument, NULL, 's' },
		{ "fingerprint", required_argument, NULL, 'f' },
		{ "plain", no_argument, NULL, 'P' },
		{ "yaml", required_argument, NULL, 'y' },
		{ "name", required_argument, NULL, 'N' },
		{ "secret", required_argument, NULL, 'S' },
		{ "flood", required_argument, NULL, 'F' },
		{ "flood-list", no_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	struct load l = { .prefix = "load", .secret_prefix = "secret-", .inflight = 256 };
	struct ns_tls_client_cfg tc = { .insecure = true };
	struct rlimit rl = { 1 << 17, 1 << 17 };
	struct sockaddr_storage ss;
	struct epoll_event ev[EVENTS_MAX];
	struct agent *agents;
	int yaml = 0, opt, i, n, next = 0, active = 0, done = 0, failed = 0;
	char err[NS_TLS_ERR_LEN];
	socklen_t sl;
	double t0, t1, until;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'b': l.broker = optarg; break;
		case 'n': l.count = atoi(optarg); break;
		case 'i': l.inflight = atoi(optarg); break;
		case 'H': l.hold = atoi(optarg); break;
		case 'p': l.prefix = optarg; break;
		case 's': l.secret_prefix = optarg; break;
		case 'f':
			if (ns_tls_client_set_pin(&tc, optarg))
				die(2, "--fingerprint %s: want sha256: and 64 hex digits", optarg);
			tc.insecure = false;
			break;
		case 'P': tc.insecure = true; tc.has_pin = false; break;
		case 'y': yaml = atoi(optarg); break;
		case 'N': l.name = optarg; break;
		case 'S': l.secret = optarg; break;
		case 'F': l.flood = atoi(optarg); break;
		case 'L': l.flood_list = true; break;
		default: usage();
		}
	}
	if (yaml > 0) {
		printf("agents:\n");
		for (i = 0; i < yaml; i++)
			printf("  - { name: %s%d, secret: %s%d }\n", l.prefix, i, l.secret_prefix, i);
		return 0;
	}
	if (!l.broker || l.count <= 0 || l.inflight <= 0 ||
	    ns_parse_sockaddr(l.broker, 0, &ss, &sl))
		usage();
	if (ns_tls_client_new(&tc, &l.tls, err, sizeof(err)))
		die(1, "TLS: %s", err);
	setrlimit(RLIMIT_NOFILE, &rl);
	agents = calloc(l.count, sizeof(*agents));
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!agents || l.ep < 0)
		die(1, "%s", strerror(errno));
	t0 = now_s();
	while (done + failed < l.count) {
		while (active < l.inflight && next < l.count) {
			struct agent *a = &agents[next];

			a->idx = next++;
			if (start(&l, a, &ss, sl)) {
				a->state = S_FAILED;
				failed++;
				continue;
			}
			active++;
		}
		n = epoll_wait(l.ep, ev, EVENTS_MAX, STALL_MS);
		if (n <= 0) {
			fprintf(stderr, "nsload: stalled with %d logins left\n",
				l.count - done - failed);
			break;
		}
		for (i = 0; i < n; i++) {
			struct agent *a = ev[i].data.ptr;

			if (step(&l, a, ev[i].events)) {
				active--;
				if (a->state == S_DONE)
					done++;
				else
					failed++;
			}
		}
	}
	t1 = now_s();
	printf("logins %d failed %d seconds %.3f rate %.0f/s %s\n", done, failed, t1 - t0,
	       done / (t1 - t0), l.tls ? "tls" : "plain");
	fflush(stdout);
	if (l.why[0])
		fprintf(stderr, "nsload: first failure: %s\n", l.why);
	if (l.flood_list) {	/* a peer that does not read */
		sleep(l.hold);
		return failed ? 1 : 0;
	}
	/* Keep them logged in (answering heartbeats) while the caller measures. */
	until = now_s() + l.hold;
	while (now_s() < until) {
		n = epoll_wait(l.ep, ev, EVENTS_MAX, 500);
		for (i = 0; i < n; i++)
			step(&l, ev[i].data.ptr, ev[i].events);
	}
	return failed ? 1 : 0;
}
