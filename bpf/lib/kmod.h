/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The passive handshake in the kernel, through the module shim's kfuncs
 * (bpf/kmod/, DESIGN §2): pair the two SYNs, install both table entries,
 * answer both sides, without a punt to the daemon. Only when the loader
 * found the module (use_kmod); otherwise the calls are dead code, which the
 * verifier removes, so the objects load on kernels without it.
 */
#ifndef NS_BPF_KMOD_H
#define NS_BPF_KMOD_H

#include "lib/ctx.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/clock.h"
#include "ns_entry.h"
#define NS_KFUNC_DECLARE
#include "kmod/natsplice_kfunc.h"

/* Set by the loader when natsplice_kmod is loaded. */
const volatile __u8 use_kmod = 0;

#ifdef NS_CTX_XDP
#define ctx_kf_syn(ctx, off, s, side)	bpf_ns_xdp_syn(ctx, off, s, sizeof(*(s)), side)
#define ctx_kf_synack(ctx, s, side)	bpf_ns_xdp_synack(ctx, s, sizeof(*(s)), side)
#else
#define ctx_kf_syn(ctx, off, s, side)	bpf_ns_skb_syn(ctx, off, s, sizeof(*(s)), side)
#define ctx_kf_synack(ctx, s, side)	bpf_ns_skb_synack(ctx, s, sizeof(*(s)), side)
#endif

/* relay_bpf_install + relay_bpf_expect(sealed) of the daemon, in BPF. */
static __always_inline int ns_kmod_install(const struct ns_splice *s)
{
	struct ns_port_val sealed = { .splice_id = s->id };
	struct ns_port_key pk = { .proto = s->proto, .family = s->family };
	struct ns_key key;
	struct ns_rewrite val;
	__u64 now = ns_now();
	int dir;

	for (dir = 0; dir < 2; dir++) {
		struct ns_rewrite *old;

		ns_entry_build_inline(s, dir, &key, &val);
		val.last_seen_ns = now;
		if (!bpf_map_update_elem(&ns_table, &key, &val, BPF_NOEXIST))
			continue;
		/* The peer reuses the addresses of a connection that is over
		 * (ns_hit): its entry is this splice's now; the daemon sees
		 * the old splice lose it and collects the old one. */
		old = bpf_map_lookup_elem(&ns_table, &key);
		if (!old || !ns_entry_over(&key, old) ||
		    bpf_map_update_elem(&ns_table, &key, &val, BPF_EXIST)) {
			if (dir == 1) {
				ns_entry_build_inline(s, 0, &key, &val);
				bpf_map_delete_elem(&ns_table, &key);
			}
			return -1;
		}
	}
	/* Sealed: strangers at the relay ports are dropped from now on. */
	for (dir = 0; dir < 2; dir++) {
		pk.port = s->port[dir];
		sealed.side = dir;
		bpf_map_update_elem(&ns_ports, &pk, &sealed, BPF_EXIST);
	}
	return 0;
}

/*
 * A SYN of side `side` of splice `id`, at the relay port (miss) or on its
 * table entry (retransmission): NS_V_HANDSHAKE when the kernel took care of
 * it, a negative value when the daemon should (no module, not a passive TCP
 * splice, TCP-MD5/AO, malformed): the caller punts as before.
 */
static __always_inline int ns_kmod_syn(struct ns_ctx *ctx, const struct ns_parsed *p,
				       __u32 id, __u8 side)
{
	struct ns_splice *s;
	int rc;

	if (!use_kmod)
		return -1;
	s = bpf_map_lookup_elem(&ns_splices, &id);
	if (!s)
		return -1;
	rc = ctx_kf_syn(ctx, p->l3_off, s, side & 1);
	if (rc < 0)
		return rc;
	if (rc == NS_KF_AGAIN) {
		ctx_kf_synack(ctx, s, side & 1);
	} else if (rc == NS_KF_PAIRED) {
		/* Entries first, then the answers (DESIGN §2). */
		int ok = ns_kmod_install(s) == 0;

		bpf_ns_splice_done(s, sizeof(*s), ok);
		if (ok) {
			/* The side that connected first, first (lib/pair.h). */
			ctx_kf_synack(ctx, s, !(side & 1));
			ctx_kf_synack(ctx, s, side & 1);
		}
	}
	return NS_V_HANDSHAKE;
}

#endif /* NS_BPF_KMOD_H */
