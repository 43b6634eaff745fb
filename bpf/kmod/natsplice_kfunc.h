/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kfuncs of the kernel module shim (bpf/kmod/shim.c): what the
 * relay's BPF programs call to complete a passive splice's handshake in the
 * kernel (DESIGN §2), and what they return. Included by the module and by
 * the BPF programs (NS_KFUNC_DECLARE: the extern declarations).
 *
 * `splice` is always the splice's value in the ns_splices map (struct
 * ns_splice, splice__sz == sizeof(struct ns_splice)); the module serialises
 * every read-modify-write of it with one lock. `l3_off` is the offset of the
 * IP header from the start of the packet (ctx data).
 */
#ifndef NATSPLICE_KFUNC_H
#define NATSPLICE_KFUNC_H

/* Module name: /sys/kernel/btf/NS_KMOD_NAME exists while it is loaded. */
#define NS_KMOD_NAME	"natsplice_kmod"

/* Results of bpf_ns_{xdp,skb}_syn(); a negative errno means "not for the
 * kernel path": punt the SYN to the daemon as without the module (-EPERM
 * TCP-MD5/AO, -EINVAL malformed or not this splice's, -EOPNOTSUPP not a
 * passive TCP splice, -E2BIG wrong splice__sz). */
enum ns_kf_syn {
	NS_KF_WAIT = 0,		/* recorded (or a retransmission): drop the SYN */
	NS_KF_PAIRED = 1,	/* this SYN completed the pair: install both table
				 * entries, then bpf_ns_splice_done(ok = 1) and
				 * bpf_ns_*_synack() for side 0 and side 1 */
	NS_KF_AGAIN = 2,	/* established, and this is the SYN that was
				 * answered: send this side's SYN-ACK again */
};

#ifdef NS_KFUNC_DECLARE
/* Weak: the programs load without the module; the loader sets a rodata flag
 * only when the module is there, so the verifier drops every call of an
 * unresolved kfunc as dead code (6.1 and later). */
extern int bpf_ns_xdp_syn(struct xdp_md *ctx, __u32 l3_off, void *splice, __u32 splice__sz,
			  __u32 side) __ksym __weak;
extern int bpf_ns_skb_syn(struct __sk_buff *ctx, __u32 l3_off, void *splice,
			  __u32 splice__sz, __u32 side) __ksym __weak;
extern int bpf_ns_xdp_synack(struct xdp_md *ctx, void *splice, __u32 splice__sz,
			     __u32 side) __ksym __weak;
extern int bpf_ns_skb_synack(struct __sk_buff *ctx, void *splice, __u32 splice__sz,
			     __u32 side) __ksym __weak;
extern int bpf_ns_splice_done(void *splice, __u32 splice__sz, __u32 ok) __ksym __weak;
#endif

#endif /* NATSPLICE_KFUNC_H */
