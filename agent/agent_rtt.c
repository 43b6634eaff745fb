// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Round trips to relays (include/ns_proto.h, "Round trips to relays"): the
 * broker names the relays that answer probes (RELAYS); every
 * relay-probe-interval the agent sends each one a probe (lib/rtt.h) over a
 * UDP socket connected to its echo port, keeps the smallest of the last
 * AGENT_RTT_SAMPLES round trips, and reports them (RTT) when one changed
 * noticeably. A relay that missed AGENT_RTT_LOSSES answers in a row is
 * reported as not answering: after a miss the next probe goes at once, so
 * a relay that stops answering is known as such within an interval and
 * AGENT_RTT_LOSSES timeouts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "agent.h"
#include "log.h"
#include "proto.h"
#include "rtt.h"
#include "util.h"

#define AGENT_RTT_RELAYS	32	/* relays measured at most */
#define AGENT_RTT_SAMPLES	3	/* the round trip: the smallest of the last few */
#define AGENT_RTT_TIMEOUT_MS	1000	/* a probe's answer is missed after this long */
#define AGENT_RTT_LOSSES	2	/* ... this many in a row: the relay does not answer */

struct agent_rtt_relay {
	bool used;
	char name[AGENT_NAME_MAX + 1];
	struct sockaddr_storage addr;		/* its echo port */
	struct ns_watch w;			/* UDP, connected to addr */
	struct agent *a;
	__u8 nonce[NS_RTT_NONCE_LEN];		/* of the probe out */
	__u64 sent_ns;				/* the probe out; 0: none */
	__u64 next_ns;				/* the next probe */
	__u32 sample[AGENT_RTT_SAMPLES];
	unsigned int nsample, next_sample;
	unsigned int losses;			/* answers missed in a row */
	__u32 us;				/* now: 0 unknown, NS_RTT_UNREACHABLE */
	__u32 reported;				/* as the broker last heard it, 0: never */
};

struct agent_rtt {
	struct agent_rtt_relay r[AGENT_RTT_RELAYS];	/* the used ones */
	struct ns_timer t;
};

static void rtt_close_one(struct agent *a, struct agent_rtt_relay *r)
{
	if (r->w.fd >= 0) {
		ns_loop_del(a->loop, &r->w);
		close(r->w.fd);
	}
	r->w.fd = -1;
	r->used = false;
}

/* Far enough from what the broker has to tell it again? */
static bool rtt_news(const struct agent_rtt_relay *r)
{
	__u32 d;

	if (!r->us || r->us == r->reported)
		return false;
	if (!r->reported || r->us == NS_RTT_UNREACHABLE || r->reported == NS_RTT_UNREACHABLE)
		return true;
	d = r->us > r->reported ? r->us - r->reported : r->reported - r->us;
	return d > r->reported / 10 && d > 200;
}

/* RTT with every measured relay, if one of them changed noticeably. */
static void rtt_report(struct agent *a)
{
	struct agent_rtt *st = a->rtt;
	struct ns_msg_buf mb;
	bool news = false;
	unsigned int i;
	size_t mark;

	for (i = 0; i < AGENT_RTT_RELAYS; i++)
		news |= st->r[i].used && rtt_news(&st->r[i]);
	if (!news || !agent_broker_up(a))
		return;
	ns_mb_init(&mb, NS_MSG_RTT);
	for (i = 0; i < AGENT_RTT_RELAYS; i++) {
		if (!st->r[i].used || !st->r[i].us)
			continue;
		mark = ns_mb_nest_begin(&mb, NS_A_RELAY_INFO);
		ns_mb_str(&mb, NS_A_NAME, st->r[i].name);
		ns_mb_u32(&mb, NS_A_RTT_US, st->r[i].us);
		ns_mb_nest_end(&mb, mark);
		st->r[i].reported = st->r[i].us;
	}
	agent_broker_send(a, &mb);
}

static void rtt_set(struct agent_rtt_relay *r, __u32 us)
{
	char as[NS_ADDRSTRLEN + 8];

	if (us == NS_RTT_UNREACHABLE && r->us != NS_RTT_UNREACHABLE)
		log_warn("relay %s (%s): no answer to %u round-trip probes in a row", r->name,
			 ns_sockaddr_str(&r->addr, as, sizeof(as)), r->losses);
	else if (us != NS_RTT_UNREACHABLE && (!r->us || r->us == NS_RTT_UNREACHABLE))
		log_info("relay %s (%s): round trip %.1f ms", r->name,
			 ns_sockaddr_str(&r->addr, as, sizeof(as)), us / 1000.0);
	r->us = us;
}

static void rtt_loss(struct agent_rtt_relay *r, __u64 now)
{
	r->sent_ns = 0;
	r->next_ns = now;	/* the next probe at once */
	if (++r->losses >= AGENT_RTT_LOSSES) {
		r->nsample = r->next_sample = 0;
		rtt_set(r, NS_RTT_UNREACHABLE);
	}
}

static void on_answer(struct ns_loop *l, struct ns_watch *w, __u32 events)
{
	struct agent_rtt_relay *r = w->data;
	__u8 buf[NS_RTT_LEN + 1];
	__u32 us, best;
	unsigned int i;
	__u64 now;
	ssize_t n;

	for (;;) {
		n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
		now = ns_now_ns();
		if (n < 0) {
			/* ICMP port unreachable and the like: this probe is lost */
			if (errno != EAGAIN && errno != EINTR && r->sent_ns)
				rtt_loss(r, now);
			break;
		}
		if (!r->sent_ns || !ns_rtt_is_answer(buf, n, r->nonce))
			continue;	/* late, forged, or not ours */
		us = (now - r->sent_ns) / 1000;
		r->sent_ns = 0;
		r->losses = 0;
		r->sample[r->next_sample] = us ? us : 1;
		r->next_sample = (r->next_sample + 1) % AGENT_RTT_SAMPLES;
		if (r->nsample < AGENT_RTT_SAMPLES)
			r->nsample++;
		for (best = r->sample[0], i = 1; i < r->nsample; i++)
			if (r->sample[i] < best)
				best = r->sample[i];
		rtt_set(r, best);
	}
	rtt_report(r->a);
}

/* One round: misses counted, due probes sent, the timer for what comes next. */
static void on_round(struct ns_loop *l, struct ns_timer *t)
{
	struct agent *a = t->data;
	struct agent_rtt *st = a->rtt;
	__u64 now = ns_now_ns(), interval = (__u64)a->cfg->relay_probe_s * 1000000000ULL;
	__u64 timeout = AGENT_RTT_TIMEOUT_MS * 1000000ULL, next = 0, at;
	__u8 req[NS_RTT_LEN];
	unsigned int i;

	if (!interval)
		return;		/* relay-probe-interval: 0 (a reload may set it again) */
	for (i = 0; i < AGENT_RTT_RELAYS; i++) {
		struct agent_rtt_relay *r = &st->r[i];

		if (!r->used || r->w.fd < 0)
			continue;
		if (r->sent_ns && now - r->sent_ns >= timeout)
			rtt_loss(r, now);
		if (!r->sent_ns && now >= r->next_ns && r->w.fd >= 0 &&
		    !ns_random_bytes(r->nonce, sizeof(r->nonce))) {
			ns_rtt_request(req, r->nonce);
			r->sent_ns = ns_now_ns();
			r->next_ns = r->sent_ns + interval;
			if (send(r->w.fd, req, sizeof(req), MSG_DONTWAIT) != sizeof(req))
				rtt_loss(r, r->sent_ns);
		}
		at = r->sent_ns ? r->sent_ns + timeout : r->next_ns;
		if (!next || at < next)
			next = at;
	}
	rtt_report(a);
	if (next)
		ns_timer_arm(l, t, next > now ? (next - now + 1000000ULL - 1) / 1000000ULL : 1);
}

static int rtt_open_one(struct agent *a, struct agent_rtt_relay *r)
{
	int fd = socket(r->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	r->w.fd = -1;
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&r->addr, ns_sockaddr_len(&r->addr))) {
		int err = -errno;

		close(fd);
		return err;
	}
	r->a = a;
	r->w.fn = on_answer;
	r->w.fd = fd;
	r->w.data = r;
	if (ns_loop_add(a->loop, &r->w, EPOLLIN)) {
		close(fd);
		r->w.fd = -1;
		return -ENOMEM;
	}
	return 0;
}

/* The slot measuring name at addr, or NULL. */
static int rtt_find(const struct agent_rtt *st, const char *name,
		    const struct sockaddr_storage *addr)
{
	unsigned int i;

	for (i = 0; i < AGENT_RTT_RELAYS; i++)
		if (st->r[i].used && !strcmp(st->r[i].name, name) &&
		    !memcmp(&st->r[i].addr, addr, ns_sockaddr_len(addr)))
			return i;
	return -1;
}

/* The next RELAY_INFO's name and address (its echo port): 0, 1 at the end. */
static int rtt_next_info(const struct ns_msg *m, size_t *pos, char *name, size_t len,
			 struct sockaddr_storage *addr)
{
	struct ns_msg sub;
	const __u8 *val;
	__u32 a[4];
	__u16 vlen, port;
	__u8 family;

	while (ns_msg_next(m, NS_A_RELAY_INFO, pos, &val, &vlen) == 1) {
		if (ns_msg_parse_nested(&sub, val, vlen) || ns_msg_str(&sub, NS_A_NAME, name, len) ||
		    ns_msg_addr(&sub, NS_A_PEER_ADDR, &family, a, &port) || !port)
			continue;
		ns_sockaddr_make(family, a, htons(port), addr);
		return 0;
	}
	return 1;
}

/* RELAYS { RELAY_INFO { NAME, PEER_ADDR }... }: the relays to measure from
 * now on; those measured already keep their slot, socket and figures. */
void agent_rtt_on_relays(struct agent *a, const struct ns_msg *m)
{
	struct agent_rtt *st = a->rtt;
	bool keep[AGENT_RTT_RELAYS] = { false };
	char name[AGENT_NAME_MAX + 1], as[NS_ADDRSTRLEN + 8];
	struct sockaddr_storage addr;
	struct agent_rtt_relay *r;
	unsigned int i;
	size_t pos = 0;
	int k, err;

	if (!st)
		return;
	while (!rtt_next_info(m, &pos, name, sizeof(name), &addr))
		if ((k = rtt_find(st, name, &addr)) >= 0)
			keep[k] = true;
	for (i = 0; i < AGENT_RTT_RELAYS; i++)
		if (st->r[i].used && !keep[i])
			rtt_close_one(a, &st->r[i]);
	pos = 0;
	while (!rtt_next_info(m, &pos, name, sizeof(name), &addr)) {
		if (rtt_find(st, name, &addr) >= 0)
			continue;
		for (i = 0; i < AGENT_RTT_RELAYS && st->r[i].used; i++)
			;
		if (i == AGENT_RTT_RELAYS)
			break;
		r = &st->r[i];
		memset(r, 0, sizeof(*r));
		r->used = true;
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->addr = addr;
		err = rtt_open_one(a, r);
		if (err) {
			log_warn("relay %s (%s): cannot probe: %s", r->name,
				 ns_sockaddr_str(&r->addr, as, sizeof(as)), strerror(-err));
			r->us = NS_RTT_UNREACHABLE;
		}
	}
	on_round(a->loop, &st->t);
}

/* relay-probe-interval changed (reload): the next round by the new value. */
void agent_rtt_kick(struct agent *a)
{
	unsigned int i;

	if (!a->rtt)
		return;
	for (i = 0; i < AGENT_RTT_RELAYS; i++)
		if (!a->rtt->r[i].sent_ns)
			a->rtt->r[i].next_ns = 0;
	on_round(a->loop, &a->rtt->t);
}

/* The broker connection is gone: nothing to report to; a new login brings RELAYS again. */
void agent_rtt_clear(struct agent *a)
{
	struct agent_rtt *st = a->rtt;
	unsigned int i;

	if (!st)
		return;
	for (i = 0; i < AGENT_RTT_RELAYS; i++)
		if (st->r[i].used)
			rtt_close_one(a, &st->r[i]);
	ns_timer_cancel(a->loop, &st->t);
}

int agent_rtt_init(struct agent *a)
{
	a->rtt = calloc(1, sizeof(*a->rtt));
	if (!a->rtt)
		return -ENOMEM;
	ns_timer_init(&a->rtt->t, on_round, a);
	return 0;
}

void agent_rtt_free(struct agent *a)
{
	agent_rtt_clear(a);
	free(a->rtt);
	a->rtt = NULL;
}
