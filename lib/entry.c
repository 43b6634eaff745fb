// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "entry.h"
#include "ns_entry.h"

void ns_rewrite_deltas(const struct ns_key *key, struct ns_rewrite *val)
{
	ns_rewrite_deltas_inline(key, val);
}

void ns_entry_build(const struct ns_splice *s, int dir, struct ns_key *key,
		    struct ns_rewrite *val)
{
	ns_entry_build_inline(s, dir, key, val);
}
