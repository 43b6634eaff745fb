// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Round trips to relays (ns_proto.h, "Round trips to relays"): the broker
 * tells every agent which relays answer probes (RELAYS) and keeps what each
 * agent measured (RTT), for the relay choice of its sessions (policy.c,
 * relay_pick). An agent's figures only ever concern its own sessions.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "rtt.h"

/* The hash of an empty list: what an agent has at login. */
static const __u64 rtt_relays_hash_none = 0xcbf29ce484222325ULL;

static bool rtt_relay_listed(const struct peer *r)
{
	return r && !r->doomed && r->echo_port;
}

static __u64 fnv1a(__u64 h, const void *buf, size_t n)
{
	const __u8 *p = buf;

	while (n--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

/* FNV-1a over what RELAYS would list: an agent hears it only when it changed. */
static __u64 rtt_relays_hash(const struct broker *b)
{
	__u64 h = rtt_relays_hash_none;
	size_t i;

	for (i = 0; i < b->cfg->nrelays; i++) {
		const struct peer *r = b->relays[i];

		if (!rtt_relay_listed(r))
			continue;
		h = fnv1a(h, r->name, strlen(r->name) + 1);
		h = fnv1a(h, &r->relay_addr.family, sizeof(r->relay_addr.family));
		h = fnv1a(h, r->relay_addr.addr, sizeof(r->relay_addr.addr));
		h = fnv1a(h, &r->echo_port, sizeof(r->echo_port));
	}
	return h;
}

/* RELAYS to one agent: the relays online that answer probes, unless it has
 * that list already (an agent logs in with none). */
void rtt_relays_send(struct peer *p)
{
	struct broker *b = p->b;
	struct ns_msg_buf mb;
	size_t i, mark;
	__u64 h;

	if (p->state != PEER_AGENT || p->doomed)
		return;
	h = rtt_relays_hash(b);
	if (!p->relays_sent)
		p->relays_sent = rtt_relays_hash_none;
	if (h == p->relays_sent)
		return;
	p->relays_sent = h;
	ns_mb_init(&mb, NS_MSG_RELAYS);
	for (i = 0; i < b->cfg->nrelays; i++) {
		const struct peer *r = b->relays[i];

		if (!rtt_relay_listed(r))
			continue;
		mark = ns_mb_nest_begin(&mb, NS_A_RELAY_INFO);
		ns_mb_str(&mb, NS_A_NAME, r->name);
		ns_mb_addr(&mb, NS_A_PEER_ADDR, r->relay_addr.family, r->relay_addr.addr,
			   r->echo_port);
		ns_mb_nest_end(&mb, mark);
	}
	peer_send(p, &mb);
}

/* The set of relays changed (one logged in or out): every agent hears it. */
void rtt_relays_changed(struct broker *b)
{
	size_t i;

	for (i = 0; i < b->cfg->nagents; i++)
		if (b->agents[i])
			rtt_relays_send(b->agents[i]);
}

static struct peer_rtt *rtt_slot(struct peer *p, const char *relay, bool add)
{
	unsigned int i;

	for (i = 0; i < p->nrtt; i++)
		if (!strcmp(p->rtt[i].relay, relay))
			return &p->rtt[i];
	if (!add || p->nrtt == BROKER_RTT_RELAYS)
		return NULL;
	p->rtt[p->nrtt].relay = relay;
	return &p->rtt[p->nrtt++];
}

__u32 rtt_get(const struct peer *p, const char *relay)
{
	unsigned int i;

	for (i = 0; p && i < p->nrtt; i++)
		if (!strcmp(p->rtt[i].relay, relay))
			return p->rtt[i].us;
	return 0;
}

/* RTT { RELAY_INFO { NAME, RTT_US }... } from an agent. Names of relays
 * that are not configured are ignored; values are kept as measured, above
 * NS_RTT_MAX_US as "no answer" (relay_pick: such a relay comes last). */
void rtt_on_report(struct peer *p, const struct ns_msg *m)
{
	const struct broker_cfg *c = p->b->cfg;
	char name[BROKER_NAME_MAX + 1];
	const __u8 *val;
	struct peer_rtt *slot;
	struct ns_msg sub;
	size_t pos = 0;
	__u16 len;
	__u32 us;
	int idx;

	while (ns_msg_next(m, NS_A_RELAY_INFO, &pos, &val, &len) == 1) {
		if (ns_msg_parse_nested(&sub, val, len) ||
		    ns_msg_str(&sub, NS_A_NAME, name, sizeof(name)) ||
		    ns_msg_u32(&sub, NS_A_RTT_US, &us))
			continue;
		idx = cfg_relay_index(c, name);
		if (idx < 0)
			continue;
		if (us > NS_RTT_MAX_US)
			us = NS_RTT_UNREACHABLE;
		else if (!us)
			us = 1;		/* 0 is "not measured" */
		slot = rtt_slot(p, c->relays[idx].name, true);
		if (!slot)
			continue;
		if (slot->us != us)
			log_debug("agent %s: round trip to relay %s: %s%.1f ms", p->name,
				  c->relays[idx].name, us == NS_RTT_UNREACHABLE ? "no answer " : "",
				  us == NS_RTT_UNREACHABLE ? 0.0 : us / 1000.0);
		slot->us = us;
	}
}

/* "3.1 ms", "no answer", "not measured": one agent's round trip, for the log. */
const char *rtt_str(__u32 us, char *buf, size_t len)
{
	if (us == NS_RTT_UNREACHABLE)
		snprintf(buf, len, "no answer");
	else if (!us)
		snprintf(buf, len, "not measured");
	else
		snprintf(buf, len, "%.1f ms", us / 1000.0);
	return buf;
}
