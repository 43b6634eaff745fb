// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the broker's session machine: broker/proto.c,
 * session.c, limits.c, doors.c, control.c over the real conn.c, in process, with no
 * event loop running. Peers are socketpairs (the broker writes to one end;
 * the harness reads and discards the other): three agents (a1..a3) and a
 * relay (r1, PUBLIC_PORTS 8000-9999), logged in with real proofs, and a
 * stranger still at login. a1 may expose 8080 and 9000-9001; PUBLIC_IDs and
 * the PUBLIC_OPENs' REQ_IDs count from 1 in every run.
 *
 * Input: steps. A byte: bits 0-2 the peer (modulo 5), bits 3-5 the op:
 *   0-3  a message: u16 length (BE) then that many bytes, parsed with
 *        ns_msg_parse and handed to proto_message() (unparsable: skipped);
 *        a SESSION attribute of value k < 16 becomes the id of the k-th
 *        session (ids are random: the input cannot know them)
 *   4    the peer disconnects (peer_kill)
 *   5    the peer's timer fires (login deadline, heartbeat, hold time)
 *   6    the oldest session's negotiation deadline fires
 *   7    the peer connects again and logs in
 * After each step: doomed and drained peers are reaped as the loop would.
 * At the end: every peer closed, every session freed; ASan reports leaks,
 * and the broker's counts must be back to zero.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>

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
#include "../broker_inproc.h"
#include "auth.h"
#include "log.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
				     __FILE__, __LINE__); abort(); } } while (0)

#define NPEERS 5
static const char *const names[NPEERS] = { "a1", "a2", "a3", "r1", NULL };
static const char *const secrets[NPEERS] = { "a1-secret-0123", "a2-secret-0123",
					     "a3-secret-0123", "r1-secret-0123", NULL };
static const char cfg_text[] =
	"listen: 127.0.0.1:7700\n"	/* never bound */
	"insecure: true\n"
	"agents:\n"
	"  - { name: a1, secret: a1-secret-0123, expose: [8080, 9000-9001] }\n"
	"  - { name: a2, secret: a2-secret-0123 }\n"
	"  - { name: a3, secret: a3-secret-0123 }\n"
	"relays:\n"
	"  - { name: r1, secret: r1-secret-0123 }\n";

static struct broker_cfg cfg;
static struct broker b;
static struct peer *peers[NPEERS];	/* the broker's, or NULL once it ended */
static int far[NPEERS] = { -1, -1, -1, -1, -1 };	/* the harness's ends */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	ns_log_init("fuzz_session", getenv("FUZZ_LOG") ? NS_LOG_DEBUG : NS_LOG_ERR);
	cfg_defaults(&cfg);
	if (cfg_load_string(&cfg, "fuzz.yaml", cfg_text, err, sizeof(err))) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	b.cfg = &cfg;
	b.lfd = -1;
	b.loop = ns_loop_new();
	CHECK(b.loop != NULL);
	ns_timer_init(&b.reap_t, on_reap, &b);
	return 0;
}

/* Reap what the loop would: doomed peers, drained peers; forget ended ones. */
static void settle(void)
{
	char buf[65536];
	int i;

	inproc_reap(&b, peers, NPEERS);
	for (i = 0; i < NPEERS; i++)
		if (far[i] >= 0)
			for (ssize_t n; (n = read(far[i], buf, sizeof(buf))) > 0;)
				if (getenv("FUZZ_LOG"))	/* what the broker said, by type */
					for (ssize_t o = 0; o + 8 <= n;
					     o += 8 + (buf[o + 4] << 24 | (__u8)buf[o + 5] << 16 |
						       (__u8)buf[o + 6] << 8 | (__u8)buf[o + 7]))
						fprintf(stderr, "fuzz_session: to peer %d: type %d\n",
							i, buf[o + 1]);
}

static void deliver(struct peer *p, struct ns_msg_buf *mb)
{
	struct ns_msg m;

	if (ns_mb_finish(mb) == 0 && ns_msg_parse(&m, mb->data, mb->len) == 0)
		proto_message(p, &m);
	ns_mb_free(mb);
}

/* Connect peer i (a fresh socketpair), and log in unless it is the stranger. */
static void peer_connect(int i)
{
	struct sockaddr_storage ss;
	struct ns_msg_buf mb;
	__u8 proof[NS_HMAC_LEN];
	int fd[2];

	if (peers[i])
		return;
	if (far[i] >= 0)
		close(far[i]);
	far[i] = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd))
		return;
	far[i] = fd[1];
	CHECK(!ns_parse_sockaddr(i == 3 ? "198.51.100.20:40000" : "203.0.113.5:40000", 0,
				 &ss, &(socklen_t){ 0 }));
	peer_new(&b, fd[0], &ss);
	CHECK(b.peers && b.peers->w.fd == fd[0]);
	peers[i] = b.peers;
	peers[i]->transport = PT_READY;
	if (proto_challenge(peers[i]) || !names[i])
		return;
	CHECK(!ns_login_proof(secrets[i], peers[i]->nonce, names[i], NULL, 0, proof));
	ns_mb_init(&mb, NS_MSG_LOGIN);
	ns_mb_u8(&mb, NS_A_ROLE, i == 3 ? NS_ROLE_RELAY : NS_ROLE_AGENT);
	ns_mb_str(&mb, NS_A_NAME, names[i]);
	ns_mb_u8(&mb, NS_A_VERSION, NS_PROTO_VERSION);
	ns_mb_bin(&mb, NS_A_PROOF, proof, sizeof(proof));
	if (i == 3)
		ns_mb_str(&mb, NS_A_PUBLIC_PORTS, "8000-9999");
	deliver(peers[i], &mb);
	settle();
}

/* SESSION k -> the k-th session's id, in place (TLVs after the 8-byte
 * header, unpadded). */
static void session_ids(__u8 *m, size_t len)
{
	size_t off = 8;

	while (off + 4 <= len) {
		__u16 type = (m[off] << 8 | m[off + 1]) & 0x7fff;
		__u16 alen = m[off + 2] << 8 | m[off + 3];
		const __u8 *v = m + off + 4;

		if (off + 4 + alen > len)
			return;
		if (type == NS_A_SESSION && alen == 8 && !v[0] && !v[1] && !v[2] && !v[3] &&
		    !v[4] && !v[5] && !v[6] && v[7] < 16) {
			struct session *s = b.sess_head;
			int k = v[7], j;

			while (s && k--)
				s = s->next;
			if (s)
				for (j = 0; j < 8; j++)
					m[off + 4 + j] = s->id >> (56 - 8 * j);
		}
		off += 4 + alen;
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct public_counts pc;
	struct peer *p;
	int i;

	CHECK(sessions_init(&b) == 0);
	b.agents = calloc(cfg.nagents, sizeof(*b.agents));
	b.relays = calloc(cfg.nrelays, sizeof(*b.relays));
	CHECK(b.agents && b.relays);
	for (i = 0; i < NPEERS; i++)
		peer_connect(i);

	while (len) {
		int who = (data[0] & 7) % NPEERS, op = data[0] >> 3 & 7;

		data++, len--;
		p = peers[who];
		if (op < 4) {
			struct ns_msg m;
			size_t n;

			if (len < 2)
				break;
			n = data[0] << 8 | data[1];
			data += 2, len -= 2;
			if (n > len)
				n = len;
			if (p) {
				__u8 *copy = malloc(n ? n : 1);

				CHECK(copy != NULL);
				memcpy(copy, data, n);
				session_ids(copy, n);
				int err = ns_msg_parse(&m, copy, n);

				if (getenv("FUZZ_LOG"))
					fprintf(stderr, "fuzz_session: from peer %d: %zu bytes, "
						"type %d: %d\n", who, n, n > 1 ? copy[1] : 0, err);
				if (!err)
					proto_message(p, &m);
				free(copy);
			}
			data += n, len -= n;
		} else if (op == 4) {
			if (p)
				peer_kill(p, "fuzz: disconnect");
		} else if (op == 5) {
			if (p && ns_timer_armed(&p->timer))
				on_peer_timer(b.loop, &p->timer);
		} else if (op == 6) {
			struct session *s = b.active;

			if (s && ns_timer_armed(&s->timer))
				s->timer.fn(b.loop, &s->timer);
		} else {
			peer_connect(who);
		}
		settle();
	}

	/* The end: as the daemon stops. */
	sessions_free(&b);
	peers_close_all(&b);		/* frees them */
	for (i = 0; i < NPEERS; i++) {
		peers[i] = NULL;
		if (far[i] >= 0)
			close(far[i]);
		far[i] = -1;
	}
	CHECK(b.peers == NULL && b.npeers == 0);
	CHECK(b.agents_online == 0 && b.relays_online == 0 && b.nservices == 0);
	CHECK(b.sess_head == NULL && b.active == NULL);
	public_counts(&b, NULL, &pc);
	CHECK(pc.live == 0 && pc.open == 0);
	b.next_public_id = b.next_public_req = 0;
	free(b.agents);
	free(b.relays);
	b.agents = NULL;
	b.relays = NULL;
	return 0;
}
