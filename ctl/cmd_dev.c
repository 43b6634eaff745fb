// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `natsplice dev show|detach`: where the relay programs are attached. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cli.h"
#include "relay.h"

static void dev_usage(FILE *f)
{
	fprintf(f,
"Usage: natsplice [-j] dev show [DEV]\n"
"       natsplice dev detach DEV [--pin-dir DIR]\n"
"       natsplice dev pass DEV [off]\n"
"\n"
"show    devices with an XDP program or a natsplice TC filter (or DEV), with\n"
"        program names, ids, the XDP mode (driver, generic, offload), the\n"
"        device's driver and the dataplane `relay run --mode auto` picks for it,\n"
"        with the reason.\n"
"detach  take the relay programs off DEV (this stops every splice on it); once\n"
"        no device is left, the pinned maps under DIR (default: the relay's\n"
"        default for DEV, %s/DEV[_nsINODE]) go too.\n"
"        Stop `natsplice relay run` first.\n"
"pass    attach to DEV (off: remove from DEV) an XDP program that passes every\n"
"        packet, in driver mode; it stays after this command exits. For a relay\n"
"        in XDP mode on a veth: on the veth's peer, it makes the kernel deliver\n"
"        the frames the relay sends with XDP_TX (README, troubleshooting).\n",
	NS_PIN_DIR_DEFAULT);
}

static void out_prog(struct ns_out *o, const char *key, __u32 id, const char *mode)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd;

	ns_out_obj_begin(o, key);
	ns_out_u64(o, "id", id);
	fd = bpf_prog_get_fd_by_id(id);
	if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len))
		ns_out_str(o, "name", info.name);
	if (fd >= 0)
		close(fd);
	if (mode)
		ns_out_str(o, "mode", mode);
	ns_out_obj_end(o);
}

static int dev_show(struct cli *cli, int argc, char **argv)
{
	struct if_nameindex *ifs, *i;
	int shown = 0;

	if (argc > 2)
		return cli_fail(cli, 2, "dev show: unexpected argument '%s'", argv[2]);
	if (argc == 2 && !if_nametoindex(argv[1]))
		return cli_fail(cli, 1, "unknown device '%s'", argv[1]);
	ifs = if_nameindex();
	if (!ifs)
		return cli_fail(cli, 1, "cannot list devices: %s", strerror(errno));
	ns_out_arr_begin(cli->out, NULL);
	for (i = ifs; i->if_index; i++) {
		LIBBPF_OPTS(bpf_xdp_query_opts, xq);
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = i->if_index,
			    .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, tq, .handle = TC_HANDLE, .priority = TC_PRIO);
		char driver[64], why[RELAY_WHY_LEN];
		enum relay_mode mode;
		int has_xdp, has_tc;

		if (argc == 2 && strcmp(argv[1], i->if_name))
			continue;
		has_xdp = !bpf_xdp_query(i->if_index, 0, &xq) && xq.prog_id;
		has_tc = !bpf_tc_query(&hook, &tq) && tq.prog_id;
		if (!has_xdp && !has_tc && argc != 2)
			continue;
		shown++;
		ns_out_obj_begin(cli->out, NULL);
		ns_out_str(cli->out, "dev", i->if_name);
		ns_out_u64(cli->out, "ifindex", i->if_index);
		relay_dev_driver(i->if_name, driver, sizeof(driver));
		ns_out_str(cli->out, "driver", driver[0] ? driver : NULL);
		mode = relay_auto_mode(driver, why, sizeof(why));
		ns_out_obj_begin(cli->out, "auto");
		ns_out_str(cli->out, "mode", mode == RELAY_XDP ? "xdp" : "tc");
		ns_out_str(cli->out, "why", why);
		ns_out_obj_end(cli->out);
		if (has_xdp)
			out_prog(cli->out, "xdp", xq.prog_id,
				 xq.attach_mode == XDP_ATTACHED_DRV ? "driver" :
				 xq.attach_mode == XDP_ATTACHED_SKB ? "generic" :
				 xq.attach_mode == XDP_ATTACHED_HW ? "offload" : "multi");
		if (has_tc)
			out_prog(cli->out, "tc", tq.prog_id, "ingress");
		ns_out_obj_end(cli->out);
	}
	ns_out_arr_end(cli->out);
	if_freenameindex(ifs);
	return 0;
}

static int dev_detach(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pin_dir = NULL, *dev;
	char def[256];
	int opt, err;

	optind = 0;	/* 0: re-initialise getopt (the global '+' mode) */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'P')
			return cli_fail(cli, 2, "dev detach: unknown option '%s'",
					argv[optind - 1]);
		pin_dir = optarg;
	}
	if (optind != argc - 1)
		return cli_fail(cli, 2, "usage: natsplice dev detach DEV [--pin-dir DIR]");
	dev = argv[optind];
	if (geteuid() != 0)
		return cli_fail(cli, 1, "dev detach must run as root");
	if (!pin_dir) {
		if (relay_default_pin_dir(dev, def, sizeof(def)))
			return cli_fail(cli, 2, "device name '%s' too long", dev);
		pin_dir = def;
	}
	err = relay_bpf_detach_dev(pin_dir, dev);
	if (err == -ENODEV)
		return cli_fail(cli, 1, "unknown device '%s'", dev);
	if (err == -ENOENT)
		return cli_fail(cli, 1, "no natsplice program is attached to %s", dev);
	if (err)
		return cli_fail(cli, 1, "detach %s: %s", dev, strerror(-err));
	return 0;
}

/*
 * Frames sent with XDP_TX into a veth wait in the peer's queue until the
 * peer's NAPI runs, which the kernel only schedules for them when the peer
 * has an XDP program of its own (veth_xdp_flush); this is the smallest one.
 */
static int dev_pass(struct cli *cli, int argc, char **argv)
{
	const struct bpf_insn prog[] = {
		/* r0 = XDP_PASS; exit */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	unsigned int ifindex;
	bool off;
	int fd, err;

	off = argc == 3 && !strcmp(argv[2], "off");
	if (argc != 2 && !off)
		return cli_fail(cli, 2, "usage: natsplice dev pass DEV [off]");
	ifindex = if_nametoindex(argv[1]);
	if (!ifindex)
		return cli_fail(cli, 1, "unknown device '%s'", argv[1]);
	if (off) {
		err = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL);
		if (err)
			return cli_fail(cli, 1, "detach from %s: %s", argv[1], strerror(-err));
		return 0;
	}
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "GPL", prog, 2, NULL);
	if (fd < 0)
		return cli_fail(cli, 1, "load the XDP program: %s", strerror(errno));
	err = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL);
	close(fd);
	if (err)
		return cli_fail(cli, 1, "attach to %s: %s%s", argv[1], strerror(-err),
				err == -EBUSY || err == -EEXIST ? " (another XDP program is "
				"attached)" : "");
	return 0;
}

int cmd_dev(struct cli *cli, int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{ "show", dev_show },
		{ "detach", dev_detach },
		{ "pass", dev_pass },
		{ NULL, NULL },
	};

	return cli_object(cli, "dev", cmds, dev_usage, argc, argv);
}
