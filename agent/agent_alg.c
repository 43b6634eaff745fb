// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's side of the ALGs (alg.h): an instance on the first tunnel of a
 * session whose service names one (its control connection, or its UDP
 * signalling flow), fed every byte or datagram in both directions; what it
 * learns becomes listeners of the session (agent_session.c) whose clients
 * are flows to the far application's host. The flows themselves are never
 * fed to the ALG: they are spliced like any other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "agent.h"
#include "alg.h"
#include "log.h"
#include "util.h"

#define PAIR_TRIES	32	/* random even ports tried for an RTP/RTCP pair */
#define PAIR_LO		20000	/* where they are tried */
#define PAIR_HI		60000

/* An alias the session already has for (proto, remote_port): SIP repeats its SDP. */
static bool alias_known(struct agent_session *s, __u8 proto, __u16 remote_port,
			struct sockaddr_storage *alias)
{
	struct agent_listener *x;

	for (x = s->listeners; x; x = x->snext)
		if (x->w.fd >= 0 && x->proto == proto && x->flow_port == remote_port &&
		    x->expires_ns) {
			*alias = x->addr;
			return true;
		}
	return false;
}

/* Two listeners at an even port and the next, for RTP and RTCP. */
static int expect_pair(struct agent_session *s, __u8 proto, __u16 remote_port,
		       struct sockaddr_storage *alias)
{
	struct sockaddr_storage second;
	__u32 rnd;
	int i, err = -EADDRINUSE;

	if (s->nlisteners + 2 > AGENT_SESSION_LISTENERS)
		return -ENOSPC;
	for (i = 0; i < PAIR_TRIES; i++) {
		__u16 port;

		if (ns_random_bytes(&rnd, sizeof(rnd)))
			return -EIO;
		port = (PAIR_LO + rnd % (PAIR_HI - PAIR_LO)) & ~1u;
		err = agent_session_listen(s, proto, remote_port, port, false, alias);
		if (err == -EADDRINUSE)
			continue;
		if (err)
			return err;
		err = agent_session_listen(s, proto, remote_port + 1, port + 1, false, &second);
		if (!err)
			return 0;
		agent_session_unlisten(s, alias);
		if (err != -EADDRINUSE)
			return err;
	}
	return err;
}

/* ns_alg_env.expect: the remote application announced (proto, remote_port). */
static int on_expect(void *arg, __u8 proto, __u16 remote_port, bool pair,
		     struct sockaddr_storage *alias)
{
	struct agent_tunnel *t = arg;
	struct agent_session *s = t->sess;

	int err;

	if (!s)
		return -ENOENT;
	if (alias_known(s, proto, remote_port, alias))
		return 0;
	if (pair)
		err = expect_pair(s, proto, remote_port, alias);
	else	/* a TCP alias serves one connection: an FTP data connection */
		err = agent_session_listen(s, proto, remote_port, 0, true, alias);
	if (err == -ENOSPC && !s->full_logged) {
		s->full_logged = true;
		log_warn("session %s: at its limit of %u listeners for announced flows; "
			 "further announcements pass unchanged until one closes", s->label,
			 AGENT_SESSION_LISTENERS);
	}
	return err;
}

int agent_alg_open(struct agent_tunnel *t)
{
	struct agent_fwd *f = &t->fwd;
	struct ns_alg_env env = {};
	char label[AGENT_NAME_MAX * 2 + 64];

	if (!t->alg[0] || t->flow)
		return 0;
	f->alg_ops = ns_alg_find(t->alg);
	if (!f->alg_ops || !t->sess) {
		log_warn("%s: no ALG '%s' here: forwarded without it",
			 agent_tunnel_label(t, label, sizeof(label)), t->alg);
		f->alg_ops = NULL;
		return 0;
	}
	env.arg = t;
	env.side = t->role == TUN_ROLE_SUBSCRIBER ? NS_ALG_SUBSCRIBER : NS_ALG_PROVIDER;
	env.local = t->sess->local;
	env.app = t->sess->app;
	snprintf(env.label, sizeof(env.label), "%.*s", (int)sizeof(env.label) - 1, t->sess->label);
	env.expect = on_expect;
	f->alg = f->alg_ops->open(&env, t->proto == IPPROTO_UDP);
	if (!f->alg) {
		f->alg_ops = NULL;
		return -ENOMEM;
	}
	return 0;
}

void agent_alg_close(struct agent_fwd *f)
{
	if (f->alg_ops)
		f->alg_ops->close(f->alg);
	f->alg_ops = NULL;
	f->alg = NULL;
	ns_alg_buf_free(&f->alg_out);
}

bool agent_alg_datagram(struct agent_fwd *f, int dir, const __u8 **p, size_t *len)
{
	if (!f->alg_ops)
		return true;
	return !agent_alg_run(f, dir, *p, *len, false, p, len) && *len;
}

int agent_alg_run(struct agent_fwd *f, int dir, const __u8 *in, size_t len, bool eof,
		  const __u8 **out, size_t *outlen)
{
	int err = 0;

	if (!f->alg_ops) {
		*out = in;
		*outlen = len;
		return 0;
	}
	f->alg_out.len = 0;
	if (len)
		err = f->alg_ops->feed(f->alg, dir, in, len, &f->alg_out);
	if (!err && eof)
		err = f->alg_ops->flush(f->alg, dir, &f->alg_out);
	*out = f->alg_out.data;
	*outlen = f->alg_out.len;
	return err;
}
