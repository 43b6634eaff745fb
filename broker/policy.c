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

int relay_pick(const struct relay_cand *c, size_t n, __u8 family)
{
	int best = -1;
	bool busy = false;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!c[i].online || c[i].family != family)
			continue;
		if (c[i].busy) {
			busy = true;
			continue;
		}
		if (best < 0 || c[i].load < c[best].load ||
		    (c[i].load == c[best].load && c[i].pending < c[best].pending))
			best = i;
	}
	return best < 0 && busy ? -EBUSY : best;
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

/*
 * GCRA (the token bucket of ATM's I.371): each request moves the
 * theoretical arrival time one interval on; a request passes while that
 * time is at most burst - 1 intervals ahead of now. Exactly burst pass at
 * once, then one per interval.
 */
bool rate_allow(struct rate_gcra *g, __u32 rate, __u32 burst, __u64 now_ns)
{
	__u64 interval, tat;

	if (!rate)
		return true;
	interval = 1000000000ULL / rate;
	tat = g->tat_ns > now_ns ? g->tat_ns : now_ns;
	if (tat - now_ns > (__u64)(burst ? burst - 1 : 0) * interval)
		return false;
	g->tat_ns = tat + interval;
	return true;
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
