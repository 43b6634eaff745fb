// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Pooled tunnels: a TCP subscription keeps a few tunnels ready (negotiated,
 * spliced, proven, idle; the provider not yet connected to its target) so
 * that a client takes one at once instead of waiting for a negotiation.
 *
 *  - How many: agent_pool_target() of the peak clients per second over the
 *    last AGENT_RATE_SLOTS seconds and the measured set-up time of a tunnel,
 *    at most `pool`; 0 once no client came for pool-idle seconds, so that an
 *    unused subscription holds no broker session and no relay splice.
 *  - Refill: ordinary CONNECTs without a client (agent_tunnel_pooled()), so
 *    every pooled tunnel is a broker session and a relay splice like any
 *    other, counted by their limits. Ready + starting never exceed the
 *    target. After a failure (a broker ERROR, a failed link, a ready tunnel
 *    its peer closed) the next refill waits ns_backoff_ms(failures); the
 *    count starts again when a pooled tunnel is used or lives out pool-idle.
 *  - A client takes the oldest ready tunnel: OPEN, then forwarding. With
 *    none ready it gets a tunnel of its own, as without a pool, and counts
 *    towards the rate so that the pool grows. If a pooled tunnel gets ready
 *    while such a client still waits for its own (not yet proving), they
 *    swap: the client takes the ready one, its own goes on as a pooled one.
 *  - A ready tunnel is closed when it has been idle for pool-idle (and
 *    replaced if the target still wants it) or when its peer closes it.
 *    Ready tunnels stay when the broker connection is lost: they do not
 *    need it; refilling waits for the next login.
 *
 * Every change is logged at debug level (-v) as
 *   "pool SERVICE: R ready, S starting (target T, wanted W, bound B)"
 * where W is the target before the bound.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define LABEL_LEN	(AGENT_NAME_MAX * 2 + 64)
#define SETUP_MS_MAX	60000	/* a longer set-up is counted as this */

/* The target of lis's pool, bounded by bound (UINT32_MAX: the demand). */
static __u32 pool_target(const struct agent_listener *lis, __u32 bound)
{
	__u64 now = ns_now_ns();
	__u64 quiet_ms = lis->rate.last_ns ? (now - lis->rate.last_ns) / 1000000 : UINT64_MAX;

	return agent_pool_target(agent_rate_peak(&lis->rate, now),
				 lis->setup_ms ? lis->setup_ms : AGENT_SETUP_MS_GUESS, quiet_ms,
				 lis->cfg->pool_idle_s, bound);
}

static void pool_show(struct agent_listener *lis, __u32 target, __u32 wanted)
{
	__u32 now[4] = { lis->nready, lis->nstarting, target, wanted };

	_Static_assert(sizeof(now) == sizeof(lis->shown), "shown[] keeps what is logged");
	if (!memcmp(now, lis->shown, sizeof(now)))
		return;
	memcpy(lis->shown, now, sizeof(now));
	log_debug("pool %s: %u ready, %u starting (target %u, wanted %u, bound %u)",
		  lis->cfg->service, lis->nready, lis->nstarting, target, wanted, lis->cfg->pool);
}

/* Something changed: log the state, and schedule a refill if one is due
 * (after a backoff when set-ups have been failing). */
static void pool_kick(struct agent_listener *lis)
{
	__u32 target, rnd = 0;
	__u64 delay = 0;

	if (!lis->cfg->pool)
		return;
	target = pool_target(lis, lis->cfg->pool);
	pool_show(lis, target, pool_target(lis, UINT32_MAX));
	if (lis->nready + lis->nstarting >= target || ns_timer_armed(&lis->pool_t))
		return;
	if (lis->fails) {
		ns_random_bytes(&rnd, sizeof(rnd));
		delay = ns_backoff_ms(lis->fails - 1, rnd, AGENT_BACKOFF_MIN_MS,
				      AGENT_BACKOFF_MAX_MS);
	}
	ns_timer_arm(lis->a->loop, &lis->pool_t, delay);
}

static void on_pool_timer(struct ns_loop *l, struct ns_timer *tm)
{
	struct agent_listener *lis = tm->data;
	__u32 target = pool_target(lis, lis->cfg->pool);

	/* Without the broker: nothing to ask; the next login kicks again. */
	while (lis->nready + lis->nstarting < target && agent_broker_up(lis->a))
		if (!agent_tunnel_pooled(lis))
			break;		/* failed: it scheduled the retry */
	pool_show(lis, target, pool_target(lis, UINT32_MAX));
}

/* t leaves the ready list and is an ordinary tunnel from now on. */
static void pool_unlink(struct agent_tunnel *t)
{
	TAILQ_REMOVE(&t->lis->ready, t, pool_entry);
	t->lis->nready--;
	t->pooled = false;
}

/* A ready tunnel whose peer is still there (no EOF, error or stray byte). */
static bool still_there(const struct agent_tunnel *t)
{
	__u8 c;

	return recv(t->tw.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	       (errno == EAGAIN || errno == EWOULDBLOCK);
}

void agent_pool_init(struct agent_listener *lis)
{
	TAILQ_INIT(&lis->ready);
	ns_timer_init(&lis->pool_t, on_pool_timer, lis);
}

void agent_pool_stop(struct agent_listener *lis)
{
	ns_timer_cancel(lis->a->loop, &lis->pool_t);
}

void agent_pool_client(struct agent_listener *lis)
{
	agent_rate_add(&lis->rate, ns_now_ns());
	pool_kick(lis);
}

int agent_pool_take(struct agent_listener *lis, int fd, const struct sockaddr_storage *client)
{
	char label[LABEL_LEN], cs[AGENT_SA_STRLEN];
	struct agent_tunnel *t;
	int err;

	while ((t = TAILQ_FIRST(&lis->ready))) {
		pool_unlink(t);
		agent_tunnel_label(t, label, sizeof(label));
		if (!still_there(t)) {
			log_debug("%s: pooled tunnel closed by the peer; not used", label);
			lis->fails++;
			agent_tunnel_close(t, true, "closed by the peer while pooled");
			continue;
		}
		t->client = *client;	/* (OPEN may carry them) */
		agent_sock_local(fd, lis, &t->client_dst);
		err = agent_link_open(t);
		if (err) {
			log_debug("%s: cannot send OPEN: %s", label, strerror(-err));
			agent_tunnel_close(t, true, "cannot send OPEN");
			continue;
		}
		lis->fails = 0;
		t->pw.fd = fd;
		agent_sock_tune(fd);
		log_debug("connect %s: client %s took a pooled tunnel", label,
			  agent_sa_str(client, cs, sizeof(cs)));
		if (agent_fwd_start(t))
			agent_tunnel_close(t, true, "cannot start forwarding");
		pool_kick(lis);
		return 0;
	}
	return -ENOENT;
}

void agent_pool_setup_done(struct agent_tunnel *t)
{
	struct agent_listener *lis = t->lis;
	__u64 ms;

	if (t->proto != IPPROTO_TCP || !t->start_ns)
		return;
	ms = (ns_now_ns() - t->start_ns) / 1000000;
	if (ms > SETUP_MS_MAX)
		ms = SETUP_MS_MAX;
	if (!ms)
		ms = 1;
	/* EWMA, 1/4 weight to the newest */
	lis->setup_ms = lis->setup_ms ? (__u32)((lis->setup_ms * 3ull + ms) / 4) : (__u32)ms;
}

/* The oldest client of lis still waiting for a tunnel of its own, before
 * its proof (and OPEN) went out; NULL if none. */
static struct agent_tunnel *waiting_client(struct agent_listener *lis)
{
	struct agent_tunnel *t, *oldest = NULL;

	/* a->tunnels is newest first */
	for (t = lis->a->tunnels; t; t = t->next)
		if (t->role == TUN_ROLE_SUBSCRIBER && t->lis == lis && !t->pooled &&
		    t->pw.fd >= 0 && (t->state == TUN_WAIT_INFO || t->state == TUN_DIALING ||
				      t->state == TUN_WAIT_PEER))
			oldest = t;
	return oldest;
}

/* c's client takes a ready tunnel; c goes on without it, as a pooled tunnel. */
static void swap_client(struct agent_tunnel *c)
{
	struct agent_listener *lis = c->lis;
	struct sockaddr_storage client = c->client;
	char label[LABEL_LEN];
	int fd = c->pw.fd;

	if (c->pw_reg)
		ns_loop_del(lis->a->loop, &c->pw);
	c->pw_reg = false;
	c->pw.fd = -1;
	c->pooled = true;
	lis->nstarting++;
	agent_tunnel_label(c, label, sizeof(label));
	if (agent_pool_take(lis, fd, &client) == 0) {
		log_debug("%s: its client took a ready tunnel; this one goes on for the pool",
			  label);
		return;
	}
	/* none usable after all: the client keeps its own */
	c->pooled = false;
	lis->nstarting--;
	c->pw.fd = fd;
	if (agent_tunnel_watch(c, &c->pw, 0))
		agent_tunnel_close(c, true, "epoll");
}

void agent_pool_ready(struct agent_tunnel *t)
{
	struct agent_listener *lis = t->lis;
	struct agent_tunnel *c;
	char label[LABEL_LEN];

	t->state = TUN_READY;
	lis->nstarting--;
	TAILQ_INSERT_TAIL(&lis->ready, t, pool_entry);
	lis->nready++;
	ns_timer_arm(lis->a->loop, &t->timer, lis->cfg->pool_idle_s * 1000ull);
	/* The provider sends nothing before OPEN: readable means gone. */
	if (agent_tunnel_watch(t, &t->tw, EPOLLIN | EPOLLRDHUP)) {
		agent_tunnel_close(t, true, "epoll");
		return;
	}
	log_debug("%s: pooled tunnel ready", agent_tunnel_label(t, label, sizeof(label)));
	c = waiting_client(lis);
	if (c)
		swap_client(c);
	else
		pool_kick(lis);
}

void agent_pool_on_event(struct agent_tunnel *t)
{
	struct agent_listener *lis = t->lis;
	char label[LABEL_LEN];

	pool_unlink(t);
	lis->fails++;
	log_debug("%s: pooled tunnel closed by the peer", agent_tunnel_label(t, label,
										     sizeof(label)));
	agent_tunnel_close(t, true, "closed by the peer while pooled");
	pool_kick(lis);
}

void agent_pool_expire(struct agent_tunnel *t)
{
	struct agent_listener *lis = t->lis;
	char label[LABEL_LEN];

	pool_unlink(t);
	lis->fails = 0;
	log_debug("%s: pooled tunnel idle for %u s; closed",
		  agent_tunnel_label(t, label, sizeof(label)), lis->cfg->pool_idle_s);
	agent_tunnel_close(t, false, "idle in the pool");
	pool_kick(lis);
}

void agent_pool_gone(struct agent_tunnel *t)
{
	struct agent_listener *lis = t->lis;

	if (t->state == TUN_READY) {
		pool_unlink(t);
	} else {
		lis->nstarting--;
		lis->fails++;
		t->pooled = false;
	}
	pool_kick(lis);
}

void agent_pool_broker_up(struct agent *a)
{
	size_t i;

	for (i = 0; a->lis && i < a->cfg->nsub; i++)
		pool_kick(a->lis[i]);
}
