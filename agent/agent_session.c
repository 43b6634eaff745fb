// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sessions: one negotiated session carries several flows (include/ns_proto.h,
 * "Flows on a session"). The first tunnel of a session is negotiated with
 * CONNECT as always; once it forwards, a session record here remembers who
 * is at our end (the client, or the target): always on the provider, on the
 * subscriber for a subscription with more ports or reverse ports, or an ALG.
 *
 *  - subscriber: the next connection or UDP client from the same host on any
 *    of the subscription's ports becomes a FLOW on the session, not a new
 *    negotiation;
 *  - provider: a FLOW's far end arrives as a CONNECT_INFO with PARENT; it may
 *    only connect to the host of the session's target, on the service's
 *    ports (any port from 1024 up when the service has an ALG);
 *  - either side: listeners the session opens (reverse ports, an ALG's
 *    aliases) turn their clients into FLOWs the other way. The subscriber
 *    lets a reverse flow reach its client's host only on the subscription's
 *    reverse ports, or from 1024 up with an ALG.
 *
 * A session lives while tunnels use it; one that has had flows lingers
 * AGENT_SESSION_LINGER_S after the last one closed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define ALG_PORT_MIN	1024	/* an ALG's flows reach no privileged port */

/* The provider keeps every session: only the subscriber knows whether its
 * client's next connections come as flows. */
static bool sess_multi(const struct agent_tunnel *t)
{
	if (t->public)
		return false;	/* no agent at the other end to ask for flows */
	if (t->alg[0] || t->role == TUN_ROLE_PROVIDER)
		return true;
	return t->lis->cfg->ports.n || t->lis->cfg->reverse.n;
}

/* Close and free the listener at *pp, a link of s->listeners. */
static void listener_drop(struct agent_session *s, struct agent_listener **pp)
{
	struct agent_listener *x = *pp;

	*pp = x->snext;
	agent_listener_close(x);
	free(x);
	s->nlisteners--;
}

static void sess_free(struct agent_session *s)
{
	struct agent *a = s->a;

	log_debug("session %s: closed (%u flows)", s->label, s->flows);
	while (s->listeners)
		listener_drop(s, &s->listeners);
	ns_timer_cancel(a->loop, &s->timer);
	if (s->prev)
		s->prev->next = s->next;
	else
		a->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

/* Listeners unused for AGENT_LISTENER_UNUSED_S go; with no tunnel left, the session. */
static void on_timer(struct ns_loop *l, struct ns_timer *tm)
{
	struct agent_session *s = tm->data;
	struct agent_listener **pp, *x;
	__u64 now = ns_now_ns();

	if (!s->refs) {
		sess_free(s);
		return;
	}
	for (pp = &s->listeners; (x = *pp);) {
		if (x->expires_ns && now >= x->expires_ns && !x->udp) {
			listener_drop(s, pp);
			continue;
		}
		pp = &x->snext;
	}
	if (s->listeners)
		ns_timer_arm(l, &s->timer, AGENT_LISTENER_UNUSED_S * 1000ull);
}

/* P: the reverse ports, on our address facing the target. */
static void listen_reverse(struct agent_session *s)
{
	const struct agent_ports *rv = &s->pub->reverse;
	struct sockaddr_storage where;
	size_t i;

	for (i = 0; i < rv->n; i++) {
		unsigned int port;

		for (port = rv->r[i].lo; port <= rv->r[i].hi; port++)
			agent_session_listen(s, rv->r[i].proto, port, port, false, &where);
	}
}

int agent_session_open(struct agent_tunnel *t)
{
	struct agent *a = t->a;
	struct agent_session *s;
	socklen_t sl = sizeof(s->local);
	int fd = t->pw.fd;

	if (t->sess || !t->has_session || !sess_multi(t))
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->a = a;
	s->id = t->session;
	s->role = t->role;
	s->pub = t->pub;
	s->lis = t->lis;
	memcpy(s->alg, t->alg, sizeof(s->alg));
	if (t->role == TUN_ROLE_SUBSCRIBER) {
		s->app = t->client;
		snprintf(s->label, sizeof(s->label), "%s #%016" PRIx64, t->lis->cfg->service,
			 (uint64_t)s->id);
		s->local = t->lis->addr;	/* UDP: where the client sent to */
	} else {
		s->app = t->target;
		snprintf(s->label, sizeof(s->label), "%s for %s #%016" PRIx64, t->pub->name,
			 t->peer_name, (uint64_t)s->id);
	}
	if (fd >= 0)
		getsockname(fd, (struct sockaddr *)&s->local, &sl);
	ns_timer_init(&s->timer, on_timer, s);
	s->next = a->sessions;
	if (s->next)
		s->next->prev = s;
	a->sessions = s;
	t->sess = s;
	s->refs = 1;
	log_debug("session %s: open for flows", s->label);
	if (t->role == TUN_ROLE_PROVIDER)
		listen_reverse(s);
	return 0;
}

struct agent_session *agent_session_find(struct agent *a, __u64 id)
{
	struct agent_session *s;

	for (s = a->sessions; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* S: the newest session of this subscription with the same client host. */
struct agent_session *agent_session_of_client(struct agent_listener *main,
					      const struct sockaddr_storage *client)
{
	struct agent_session *s;

	if (!main->cfg->ports.n && !main->cfg->reverse.n)
		return NULL;		/* one connection per session: the pool's way */
	for (s = main->a->sessions; s; s = s->next)
		if (s->role == TUN_ROLE_SUBSCRIBER && s->lis == main && !s->dead &&
		    agent_sa_same_ip(&s->app, client))
			return s;
	return NULL;
}

void agent_session_get(struct agent_session *s)
{
	s->refs++;
}

/* The last tunnel gone: a session that has had flows lingers for more
 * (both agents count them alike), one that had none ends now. */
void agent_session_put(struct agent_session *s)
{
	if (--s->refs)
		return;
	if (!s->flows) {
		sess_free(s);
		return;
	}
	ns_timer_arm(s->a->loop, &s->timer, AGENT_SESSION_LINGER_S * 1000ull);
}

/* May the far end of a flow on s connect to port (0: the service's own)? */
static bool port_allowed(const struct agent_session *s, __u8 proto, __u16 port)
{
	if (s->role == TUN_ROLE_PROVIDER) {
		if (!port)
			return proto == s->pub->proto;
		if (port == ns_sockaddr_port(&s->pub->target) && proto == s->pub->proto)
			return true;
		if (agent_ports_has(&s->pub->ports, proto, port))
			return true;
	} else if (port && agent_ports_has(&s->lis->cfg->reverse, proto, port)) {
		return true;
	}
	return s->alg[0] && port >= ALG_PORT_MIN;
}

int agent_session_target(struct agent_session *s, __u8 proto, __u16 port,
			 struct sockaddr_storage *out)
{
	if (!port_allowed(s, proto, port))
		return -EPERM;
	*out = s->app;
	if (port)
		ns_sockaddr_set_port(out, port);
	return 0;
}

/*
 * A listener of s on our address facing the application, at port (0: any),
 * whose clients become flows to flow_port on the far side. once: a TCP
 * listener closed after its first client (an FTP data connection). Closed
 * when unused for AGENT_LISTENER_UNUSED_S, and with the session. Its
 * address in *where. 0 or -errno (-ENOSPC: the session holds too many).
 */
int agent_session_listen(struct agent_session *s, __u8 proto, __u16 flow_port, __u16 port,
			 bool once, struct sockaddr_storage *where)
{
	struct agent_listener *x;
	int err;

	if (s->nlisteners >= AGENT_SESSION_LISTENERS)
		return -ENOSPC;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->sess = s;
	x->main = s->lis;
	x->cfg = s->lis ? s->lis->cfg : NULL;
	x->addr = s->local;
	ns_sockaddr_set_port(&x->addr, port);
	x->proto = proto;
	x->flow_port = flow_port;
	x->once = once && proto == IPPROTO_TCP;
	x->w.fd = -1;
	agent_pool_init(x);
	err = agent_listener_open(s->a, x);
	if (err) {
		free(x);
		return err;
	}
	if (port != flow_port)	/* an alias, not a fixed reverse port */
		x->expires_ns = ns_now_ns() + AGENT_LISTENER_UNUSED_S * 1000000000ull;
	x->snext = s->listeners;
	s->listeners = x;
	s->nlisteners++;
	if (!ns_timer_armed(&s->timer))
		ns_timer_arm(s->a->loop, &s->timer, AGENT_LISTENER_UNUSED_S * 1000ull);
	*where = x->addr;
	return 0;
}

/* Close the listener of s at where (a pair half that could not be completed). */
void agent_session_unlisten(struct agent_session *s, const struct sockaddr_storage *where)
{
	struct agent_listener **pp;

	for (pp = &s->listeners; *pp; pp = &(*pp)->snext)
		if (agent_sa_equal(&(*pp)->addr, where)) {
			listener_drop(s, pp);
			return;
		}
}

void agent_sessions_close_all(struct agent *a)
{
	while (a->sessions)
		sess_free(a->sessions);
}
