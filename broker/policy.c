// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The broker's pure decisions: names, ACL, path, splice mode, relay choice.
 * No I/O and no state: the unit tests include this file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "rtt.h"

bool name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	size_t i;

	if (n == 0 || n > BROKER_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = s[i];

		if (ch <= ' ' || ch == 0x7f || ch == '/')
			return false;
	}
	return true;
}

static int acl_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct broker_acl *)elem)->service);
}

const struct broker_acl *acl_find(const struct broker_cfg *c, const char *service)
{
	if (!c->nacls)
		return NULL;
	return bsearch(service, c->acls, c->nacls, sizeof(*c->acls), acl_key_cmp);
}

bool acl_allows(const struct broker_cfg *c, const char *provider, const char *service,
		const char *subscriber)
{
	char full[2 * BROKER_NAME_MAX + 2];
	const struct broker_acl *a;
	size_t i;

	snprintf(full, sizeof(full), "%s/%s", provider, service);
	a = acl_find(c, full);
	if (!a)
		a = acl_find(c, service);
	if (!a)
		return true;
	for (i = 0; i < a->nallow; i++)
		if (!strcmp(a->allow[i], subscriber))
			return true;
	return false;
}

int path_choose(bool p_reachable, bool s_reachable, bool relay_available)
{
	if (p_reachable)
		return NS_PATH_DIRECT;
	if (s_reachable)
		return NS_PATH_REVERSE;
	return relay_available ? NS_PATH_RELAY : 0;
}

int mode_choose(bool s_reachable, const struct ns_ep *s_local, const struct ns_ep *s_observed)
{
	if (s_reachable)
		return NS_MODE_PURE;
	if (s_local && s_observed && s_local->port && s_local->port == s_observed->port)
		return NS_MODE_PURE;
	return NS_MODE_PASSIVE;
}

/* 0: both agents measured it and reach it, 1: not measured (yet), 2: one
 * of them gets no answer. */
static int rtt_rank(__u32 rtt_us)
{
	return rtt_us == NS_RTT_UNREACHABLE ? 2 : !rtt_us;
}

int relay_pick(const struct relay_cand *c, size_t n, __u8 family, __u32 slack_us,
	       enum relay_by *by)
{
	__u32 min_rtt = NS_RTT_UNREACHABLE;
	int best = -1, rank = 3;
	bool busy = false;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!c[i].online || c[i].family != family)
			continue;
		if (c[i].busy) {
			busy = true;
			continue;
		}
		if (rtt_rank(c[i].rtt_us) < rank)
			rank = rtt_rank(c[i].rtt_us);
		if (!rtt_rank(c[i].rtt_us) && c[i].rtt_us < min_rtt)
			min_rtt = c[i].rtt_us;
	}
	for (i = 0; i < n; i++) {
		if (!c[i].online || c[i].family != family || c[i].busy ||
		    rtt_rank(c[i].rtt_us) != rank)
			continue;
		if (!rank && c[i].rtt_us - min_rtt > slack_us)
			continue;
		if (best < 0 || c[i].load < c[best].load ||
		    (c[i].load == c[best].load &&
		     (c[i].pending < c[best].pending ||
		      (c[i].pending == c[best].pending && !rank && c[i].rtt_us < c[best].rtt_us))))
			best = i;
	}
	if (by)
		*by = rank == 0 ? RELAY_BY_RTT : rank == 2 ? RELAY_BY_UNREACHABLE : RELAY_BY_LOAD;
	return best < 0 && busy ? -EBUSY : best;
}

const char *relay_by_name(enum relay_by by)
{
	static const char *const names[] = {
		[RELAY_BY_RTT] = "rtt", [RELAY_BY_LOAD] = "load",
		[RELAY_BY_UNREACHABLE] = "unreachable",
	};

	return by < RELAY_BY_MAX ? names[by] : "?";
}

const char *limit_name(enum broker_limit l)
{
	static const char *const names[] = {
		[LIM_SERVICES] = "services", [LIM_TUNNEL_RATE] = "tunnel_rate",
		[LIM_SESSIONS] = "sessions", [LIM_PAIR_SPLICES] = "pair_splices",
		[LIM_UNAUTH] = "unauth", [LIM_UNAUTH_SOURCE] = "unauth_per_source",
		[LIM_LOGIN_SIZE] = "login_size", [LIM_LOGIN_BACKOFF] = "login_backoff",
		[LIM_MSG_RATE] = "msg_rate", [LIM_OUTPUT] = "output_buffer",
	};

	return l < LIM_MAX ? names[l] : "?";
}

__u64 login_backoff_ns(__u32 fails, __u32 free, __u32 max_s)
{
	__u32 shift;
	__u64 s;

	if (!free || fails <= free)
		return 0;
	shift = fails - free - 1;
	s = shift >= 31 ? max_s : 1ULL << shift;
	return (s < max_s ? s : max_s) * 1000000000ULL;
}

int pair_key(const char *a, const char *b, char *out, size_t len)
{
	size_t la, lb;

	if (strcmp(a, b) > 0) {
		const char *t = a;

		a = b;
		b = t;
	}
	la = strlen(a);
	lb = strlen(b);
	if (la + 1 + lb >= len)
		return -ENAMETOOLONG;
	memcpy(out, a, la);
	out[la] = '/';
	memcpy(out + la + 1, b, lb + 1);
	return 0;
}
