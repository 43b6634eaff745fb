// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_pass: attach (or, with --off, remove) a two-instruction XDP program
 * that returns XDP_PASS, in driver mode, on a device of the current network
 * namespace. The attachment outlives this process.
 *
 * Why the test bed needs it (see KERNEL-NOTES "XDP_TX on a veth"): frames
 * that the relay sends with XDP_TX out of its veth are queued on the peer
 * veth, and the kernel only kicks the peer's NAPI to deliver them when the
 * peer has an XDP program of its own (veth_xdp_flush). With GRO alone the
 * peer has NAPI, yet XDP_TX frames sit in its ring until some ordinary packet
 * happens to schedule it: connections stall for hundreds of milliseconds.
 *
 * usage: xdp_pass DEV [--off]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	const struct bpf_insn prog[] = {
		/* r0 = XDP_PASS; exit */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	unsigned int ifindex;
	int fd, err;

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--off"))) {
		fprintf(stderr, "usage: xdp_pass DEV [--off]\n");
		return 1;
	}
	ifindex = if_nametoindex(argv[1]);
	if (!ifindex) {
		fprintf(stderr, "xdp_pass: unknown device '%s'\n", argv[1]);
		return 1;
	}
	if (argc == 3) {
		err = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL);
		if (err) {
			fprintf(stderr, "xdp_pass: detach from %s: %s\n", argv[1], strerror(-err));
			return 1;
		}
		return 0;
	}
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "GPL", prog, 2, NULL);
	if (fd < 0) {
		fprintf(stderr, "xdp_pass: load: %s\n", strerror(errno));
		return 1;
	}
	err = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		fprintf(stderr, "xdp_pass: attach to %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	return 0;
}
