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
"\n"
"show    devices with an XDP program or a natsplice TC filter, with program\n"
"        names, ids and the XDP mode (driver, generic, offload).\n"
"detach  take the relay programs off DEV (this stops every splice on it); once\n"
"        no device is left, the pinned maps under DIR (default %s) go too.\n"
"        Stop `natsplice relay run` first.\n", NS_PIN_DIR_DEFAULT);
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
	const char *pin_dir = NS_PIN_DIR_DEFAULT, *dev;
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
	err = relay_bpf_detach_dev(pin_dir, dev);
	if (err == -ENODEV)
		return cli_fail(cli, 1, "unknown device '%s'", dev);
	if (err == -ENOENT)
		return cli_fail(cli, 1, "no natsplice program is attached to %s", dev);
	if (err)
		return cli_fail(cli, 1, "detach %s: %s", dev, strerror(-err));
	return 0;
}

int cmd_dev(struct cli *cli, int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{ "show", dev_show },
		{ "detach", dev_detach },
		{ NULL, NULL },
	};

	return cli_object(cli, "dev", cmds, dev_usage, argc, argv);
}
