// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The free ports of the relay port range, for a uniform random pick
 * (relay.h, struct relay_portset). Relay ports handed out in sequence let an
 * off-path attacker who saw one splice's ports name the next one's, and race
 * a side with a spoofed SYN (issue 13): the pick is random, uniform among the
 * free ports, O(1).
 *
 * free[] is a permutation of the range whose first nfree entries are the
 * free ports; pos[] is the inverse (a port's index in free[]). Taking or
 * giving a port swaps it across the nfree boundary, so that exhaustion is
 * exact (nfree == 0) and a pick is one random index.
 */
#include <errno.h>
#include <stdlib.h>

#include "relay.h"

int relay_portset_init(struct relay_portset *ps, __u16 lo, __u16 hi)
{
	__u32 i;

	relay_portset_destroy(ps);
	if (hi < lo)
		return -EINVAL;
	ps->lo = lo;
	ps->n = ps->nfree = (__u32)hi - lo + 1;
	ps->free = calloc(ps->n, sizeof(*ps->free));
	ps->pos = calloc(ps->n, sizeof(*ps->pos));
	if (!ps->free || !ps->pos) {
		relay_portset_destroy(ps);
		return -ENOMEM;
	}
	for (i = 0; i < ps->n; i++) {
		ps->free[i] = lo + i;
		ps->pos[i] = i;
	}
	return 0;
}

void relay_portset_destroy(struct relay_portset *ps)
{
	if (!ps)
		return;
	free(ps->free);
	free(ps->pos);
	ps->free = NULL;
	ps->pos = NULL;
	ps->n = ps->nfree = 0;
}

static bool in_range(const struct relay_portset *ps, __u16 port)
{
	return ps->free && port >= ps->lo && (__u32)port - ps->lo < ps->n;
}

bool relay_portset_is_free(const struct relay_portset *ps, __u16 port)
{
	return in_range(ps, port) && ps->pos[port - ps->lo] < ps->nfree;
}

/* Put port at index i of free[], and what was there where port was. */
static void swap_to(struct relay_portset *ps, __u16 port, __u32 i)
{
	__u32 j = ps->pos[port - ps->lo];
	__u16 other = ps->free[i];

	ps->free[i] = port;
	ps->pos[port - ps->lo] = i;
	ps->free[j] = other;
	ps->pos[other - ps->lo] = j;
}

void relay_portset_take(struct relay_portset *ps, __u16 port)
{
	if (!relay_portset_is_free(ps, port))
		return;
	swap_to(ps, port, --ps->nfree);
}

void relay_portset_give(struct relay_portset *ps, __u16 port)
{
	if (!in_range(ps, port) || relay_portset_is_free(ps, port))
		return;
	swap_to(ps, port, ps->nfree++);
}

__u16 relay_portset_pick(const struct relay_portset *ps, __u32 rnd)
{
	if (!ps->nfree)
		return 0;
	/* rnd * nfree / 2^32: an index in [0, nfree), off uniform by at
	 * most nfree / 2^32 (< 2^-16), with no modulo. */
	return ps->free[((__u64)rnd * ps->nfree) >> 32];
}
