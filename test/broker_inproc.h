/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * For tests that run the broker in process (test/unit/test_broker_public.c,
 * test/fuzz/fuzz_session.c), included after broker/conn.c's source: what
 * the event loop would do between two messages.
 */
#ifndef NS_TEST_BROKER_INPROC_H
#define NS_TEST_BROKER_INPROC_H

/* Reap the doomed peers and free the drained ones; each freed peer's slot
 * in peers[0..n) becomes NULL. */
static inline void inproc_reap(struct broker *b, struct peer **peers, int n)
{
	struct peer *p, *next;
	int i;

	if (b->reap)
		on_reap(b->loop, &b->reap_t);
	for (p = b->peers; p; p = next) {
		next = p->next;
		if (p->state == PEER_DRAIN) {
			for (i = 0; i < n; i++)
				if (peers[i] == p)
					peers[i] = NULL;
			peer_free(p);
		}
	}
}

#endif
