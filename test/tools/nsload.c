// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * nsload: N lightweight agents logging in to a broker at once, speaking the
 * real protocol (CHALLENGE -> LOGIN with HMAC proof -> LOGIN_OK), to measure
 * logins per second and the broker's memory with many agents, in plain text
 * (the broker needs insecure: true; the figures leave TLS out). Agent i is
 * named PREFIXi with secret SECRETPREFIXi (generate broker.yaml with --yaml).
 *
 *   nsload --yaml N [--prefix a] [--secret-prefix s]      print the agents: list
 *   nsload --broker IP:PORT --count N [--inflight K] [--hold SEC] [--prefix a]
 *
 * Prints "logins N failed F seconds T rate R/s", then keeps the sessions open
 * (answering heartbeats) for --hold seconds so the broker's RSS can be read.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "auth.h"
#include "conn.h"
#include "proto.h"
#include "util.h"

enum { S_CONNECTING, S_CHALLENGE, S_LOGIN, S_DONE, S_FAILED };

struct agent {
	struct ns_conn conn;
	int state;
	int idx;
};

struct opts {
	const char *broker, *prefix, *secret_prefix;
	int count, inflight, hold;
};

static double now_s(void)
{
	return ns_now_ns() / 1e9;
}

static int start(struct agent *a, int ep, const struct sockaddr_storage *ss, socklen_t sl)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = a };
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)ss, sl) && errno != EINPROGRESS) {
		close(fd);
		return -errno;
	}
	ns_conn_init(&a->conn, fd);
	a->state = S_CONNECTING;
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int login(struct agent *a, const struct ns_msg *m, const struct opts *o)
{
	char name[64], secret[64];
	__u8 nonce[NS_NONCE_LEN], proof[NS_HMAC_LEN];
	struct ns_msg_buf mb;
	int err;

	snprintf(name, sizeof(name), "%s%d", o->prefix, a->idx);
	snprintf(secret, sizeof(secret), "%s%d", o->secret_prefix, a->idx);
	if (ns_msg_bin(m, NS_A_NONCE, nonce, sizeof(nonce)) ||
	    ns_login_proof(secret, nonce, name, NULL, 0, proof))
		return -EINVAL;
	ns_mb_init(&mb, NS_MSG_LOGIN);
	ns_mb_u8(&mb, NS_A_ROLE, NS_ROLE_AGENT);
	ns_mb_str(&mb, NS_A_NAME, name);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_bin(&mb, NS_A_PROOF, proof, sizeof(proof));
	err = ns_mb_finish(&mb);
	if (!err)
		err = ns_conn_send(&a->conn, &mb);
	ns_mb_free(&mb);
	return err;
}

static void heartbeat(struct agent *a)
{
	struct ns_msg_buf mb;

	ns_mb_init(&mb, NS_MSG_HEARTBEAT);
	if (!ns_mb_finish(&mb))
		ns_conn_send(&a->conn, &mb);
	ns_mb_free(&mb);
}

/* Handle readiness; returns 1 when this agent just finished (ok or not). */
static int step(struct agent *a, __u32 events, const struct opts *o)
{
	struct ns_msg m;
	int err, n;

	if (a->state == S_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		getsockopt(a->conn.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr)
			goto failed;
		a->state = S_CHALLENGE;
		heartbeat(a);	/* plain text (insecure): the client speaks first */
	}
	if (events & EPOLLOUT)
		ns_conn_flush(&a->conn);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return 0;
	err = ns_conn_read(&a->conn);
	while ((n = ns_conn_next(&a->conn, &m)) > 0) {
		if (m.type == NS_MSG_CHALLENGE && a->state == S_CHALLENGE) {
			if (login(a, &m, o))
				goto failed;
			a->state = S_LOGIN;
		} else if (m.type == NS_MSG_LOGIN_OK && a->state == S_LOGIN) {
			a->state = S_DONE;
			return 1;
		} else if (m.type == NS_MSG_HEARTBEAT) {
			heartbeat(a);
		} else if (m.type == NS_MSG_ERROR) {
			goto failed;
		}
	}
	if (n < 0 || err < 0)
		goto failed;
	return 0;
failed:
	if (a->state == S_DONE || a->state == S_FAILED)
		return 0;
	a->state = S_FAILED;
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: nsload --yaml N [--prefix P] [--secret-prefix S]\n"
			"       nsload --broker IP:PORT --count N [--inflight K] [--hold SEC]\n"
			"              [--prefix P] [--secret-prefix S]\n");
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
		{ "yaml", required_argument, NULL, 'y' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .prefix = "load", .secret_prefix = "secret-", .inflight = 256 };
	struct rlimit rl = { 1 << 17, 1 << 17 };
	struct sockaddr_storage ss;
	struct epoll_event ev[256];
	struct agent *agents;
	int yaml = 0, opt, ep, i, next = 0, active = 0, done = 0, failed = 0;
	socklen_t sl;
	double t0, t1, until;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'b': o.broker = optarg; break;
		case 'n': o.count = atoi(optarg); break;
		case 'i': o.inflight = atoi(optarg); break;
		case 'H': o.hold = atoi(optarg); break;
		case 'p': o.prefix = optarg; break;
		case 's': o.secret_prefix = optarg; break;
		case 'y': yaml = atoi(optarg); break;
		default: usage();
		}
	}
	if (yaml > 0) {
		printf("agents:\n");
		for (i = 0; i < yaml; i++)
			printf("  - { name: %s%d, secret: %s%d }\n", o.prefix, i, o.secret_prefix, i);
		return 0;
	}
	if (!o.broker || o.count <= 0 || o.inflight <= 0 ||
	    ns_parse_sockaddr(o.broker, 0, &ss, &sl))
		usage();
	setrlimit(RLIMIT_NOFILE, &rl);
	agents = calloc(o.count, sizeof(*agents));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!agents || ep < 0)
		return 1;
	t0 = now_s();
	while (done + failed < o.count) {
		while (active < o.inflight && next < o.count) {
			agents[next].idx = next;
			if (start(&agents[next], ep, &ss, sl)) {
				failed++;
				next++;
				continue;
			}
			next++;
			active++;
		}
		int n = epoll_wait(ep, ev, 256, 10000);

		if (n <= 0) {
			fprintf(stderr, "nsload: stalled with %d logins left\n",
				o.count - done - failed);
			break;
		}
		for (i = 0; i < n; i++) {
			struct agent *a = ev[i].data.ptr;
			struct epoll_event mod = { .events = EPOLLIN, .data.ptr = a };

			if (step(a, ev[i].events, &o)) {
				active--;
				if (a->state == S_DONE)
					done++;
				else
					failed++;
			}
			if (a->state == S_DONE || a->state == S_FAILED)
				epoll_ctl(ep, EPOLL_CTL_MOD, a->conn.fd, &mod);
		}
	}
	t1 = now_s();
	printf("logins %d failed %d seconds %.3f rate %.0f/s\n", done, failed, t1 - t0,
	       done / (t1 - t0));
	fflush(stdout);
	/* Keep them logged in (answering heartbeats) while the caller measures. */
	until = now_s() + o.hold;
	while (now_s() < until) {
		int n = epoll_wait(ep, ev, 256, 500);

		for (i = 0; i < n; i++)
			step(ev[i].data.ptr, ev[i].events, &o);
	}
	return failed ? 1 : 0;
}
