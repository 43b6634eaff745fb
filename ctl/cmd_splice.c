// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `natsplice splice ...` and `natsplice stats`: clients of the relay daemon. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cli.h"
#include "relay.h"
#include "util.h"

static void splice_usage(FILE *f)
{
	fprintf(f,
"Usage: natsplice [-j] splice add [--proto tcp|udp] [--mode passive|pure]\n"
"                        [--from-a IP] [--from-b IP] [--timeout SECONDS]\n"
"                        [--family inet|inet6]\n"
"       natsplice [-j] splice list\n"
"       natsplice [-j] splice show ID\n"
"       natsplice [-j] splice del ID\n"
"\n"
"add   create a splice on the running relay and print it. Side A connects to\n"
"      relay port ports[0], side B to ports[1]; the relay joins the two TCP\n"
"      connections into one (both sides connect, neither listens).\n"
"      --mode pure: only addresses change. ports[1] is 0 until A's SYN arrives,\n"
"      then it is A's source port X; B must connect from source port ports[0]\n"
"      to relay port X (see `splice show`).\n"
"      --proto udp: each side first sends the 16 bytes of `token` (hex in the\n"
"      output, raw on the wire) to its relay port until the relay answers\n"
"      \"NSOK\"; then datagrams flow. A receiver should ignore a datagram equal to\n"
"      the token (a late retransmission).\n"
"      --from-a/--from-b: only this source address may be side A/B.\n"
"      --timeout: if the second side has not come after SECONDS, the waiting\n"
"      side gets an RST and the splice is deleted (default: relay setting).\n"
"list  all splices; show one; del removes one (live traffic stops at once).\n");
}

static const char *proto_name(__u8 p)
{
	return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "?";
}

static void out_peer(struct ns_out *o, const struct ns_splice *s, int side)
{
	char a[NS_ADDRSTRLEN];

	if (!(s->seen & (1 << side))) {
		ns_out_null(o, NULL);
		return;
	}
	ns_addr_str(s->family, s->peer[side].addr, a, sizeof(a));
	ns_out_fmt(o, NULL, s->family == NS_AF_INET6 ? "[%s]:%u" : "%s:%u", a,
		   ntohs(s->peer[side].port));
}

/* One splice, the same calls for text and JSON. */
static void out_splice(struct ns_out *o, const struct ctl_splice *c)
{
	const struct ns_splice *s = &c->s;
	char a[NS_ADDRSTRLEN], tok[2 * NS_TOKEN_BYTES + 1];
	int side;

	ns_out_obj_begin(o, NULL);
	ns_out_u64(o, "id", s->id);
	ns_out_str(o, "proto", proto_name(s->proto));
	ns_out_str(o, "mode", s->mode == NS_MODE_PURE ? "pure" : "passive");
	ns_out_str(o, "state", relay_state_name(s->state));
	ns_out_str(o, "relay", ns_addr_str(s->family, s->relay, a, sizeof(a)));
	ns_out_arr_begin(o, "ports");
	ns_out_u64(o, NULL, ntohs(s->port[0]));
	ns_out_u64(o, NULL, ntohs(s->port[1]));
	ns_out_arr_end(o);
	if (s->proto == IPPROTO_UDP) {
		ns_hex(s->token, sizeof(s->token), tok);
		ns_out_str(o, "token", tok);
	}
	for (side = 0; side < 2; side++) {
		const char *key = side ? "from_b" : "from_a";

		if (s->allow_any[side])
			ns_out_str(o, key, "any");
		else
			ns_out_str(o, key, ns_addr_str(s->family, s->allow[side], a, sizeof(a)));
	}
	ns_out_arr_begin(o, "peers");
	out_peer(o, s, 0);
	out_peer(o, s, 1);
	ns_out_arr_end(o);
	ns_out_u64(o, "packets", c->packets[0] + c->packets[1]);
	ns_out_u64(o, "bytes", c->bytes[0] + c->bytes[1]);
	ns_out_arr_begin(o, "bytes_ab_ba");
	ns_out_u64(o, NULL, c->bytes[0]);
	ns_out_u64(o, NULL, c->bytes[1]);
	ns_out_arr_end(o);
	ns_out_u64(o, "age_s", c->age_ns / 1000000000ULL);
	if (s->state >= NS_ST_ESTABLISHED)
		ns_out_u64(o, "idle_s", c->idle_ns / 1000000000ULL);
	ns_out_obj_end(o);
}

/* Ask the daemon, then print the splices it returned (an array for list). */
static int request_splices(struct cli *cli, const struct ctl_req *req, int as_list)
{
	struct ctl_splice *recs;
	size_t i, n;
	int ret;

	ret = cli_request(cli, req, sizeof(*recs), (void **)&recs, &n);
	if (ret)
		return ret;
	if (as_list)
		ns_out_arr_begin(cli->out, NULL);
	for (i = 0; i < n; i++)
		out_splice(cli->out, &recs[i]);
	if (as_list)
		ns_out_arr_end(cli->out);
	free(recs);
	return 0;
}

enum { OPT_PROTO = 256, OPT_MODE, OPT_FROM_A, OPT_FROM_B, OPT_TIMEOUT, OPT_FAMILY };

static int splice_add(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "proto", required_argument, NULL, OPT_PROTO },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "from-a", required_argument, NULL, OPT_FROM_A },
		{ "from-b", required_argument, NULL, OPT_FROM_B },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "family", required_argument, NULL, OPT_FAMILY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_req req = { .version = CTL_VERSION, .op = CTL_ADD, .proto = IPPROTO_TCP };
	__u8 fam;
	int opt, side;

	optind = 0;	/* 0: re-initialise getopt (the global '+' mode) */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_PROTO:
			if (!strcmp(optarg, "tcp"))
				req.proto = IPPROTO_TCP;
			else if (!strcmp(optarg, "udp"))
				req.proto = IPPROTO_UDP;
			else
				return cli_fail(cli, 2, "--proto takes tcp or udp, not '%s'", optarg);
			break;
		case OPT_MODE:
			if (!strcmp(optarg, "passive"))
				req.mode = NS_MODE_PASSIVE;
			else if (!strcmp(optarg, "pure"))
				req.mode = NS_MODE_PURE;
			else
				return cli_fail(cli, 2, "--mode takes passive or pure, not '%s'",
						optarg);
			break;
		case OPT_FROM_A:
		case OPT_FROM_B:
			side = opt == OPT_FROM_B;
			if (ns_parse_addr(optarg, &fam, req.from[side]))
				return cli_fail(cli, 2, "--from-%c: not an IP address: '%s'",
						'a' + side, optarg);
			if (req.family && req.family != fam)
				return cli_fail(cli, 2, "addresses of different families");
			req.family = fam;
			req.has_from[side] = 1;
			break;
		case OPT_TIMEOUT:
			if (ns_parse_u32(optarg, &req.timeout_s) || !req.timeout_s ||
			    req.timeout_s > 86400)
				return cli_fail(cli, 2, "--timeout takes 1..86400 seconds, not '%s'",
						optarg);
			break;
		case OPT_FAMILY:
			fam = !strcmp(optarg, "inet") ? NS_AF_INET :
			      !strcmp(optarg, "inet6") ? NS_AF_INET6 : 0;
			if (!fam)
				return cli_fail(cli, 2, "--family takes inet or inet6, not '%s'",
						optarg);
			if (req.family && req.family != fam)
				return cli_fail(cli, 2, "--family does not match the addresses");
			req.family = fam;
			break;
		case 'h':
			splice_usage(stdout);
			return 0;
		default:
			return cli_fail(cli, 2, "splice add: unknown option '%s'",
					argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(cli, 2, "splice add: unexpected argument '%s'", argv[optind]);
	return request_splices(cli, &req, 0);
}

static int splice_list(struct cli *cli, int argc, char **argv)
{
	struct ctl_req req = { .version = CTL_VERSION, .op = CTL_LIST };

	if (argc > 1)
		return cli_fail(cli, 2, "splice list: unexpected argument '%s'", argv[1]);
	return request_splices(cli, &req, 1);
}

static int splice_id_cmd(struct cli *cli, int argc, char **argv, __u32 op)
{
	struct ctl_req req = { .version = CTL_VERSION, .op = op };

	if (argc != 2)
		return cli_fail(cli, 2, "usage: natsplice splice %s ID", argv[0]);
	if (ns_parse_u32(argv[1], &req.id) || !req.id)
		return cli_fail(cli, 2, "not a splice id: '%s'", argv[1]);
	return request_splices(cli, &req, 0);
}

static int splice_show(struct cli *cli, int argc, char **argv)
{
	return splice_id_cmd(cli, argc, argv, CTL_SHOW);
}

static int splice_del(struct cli *cli, int argc, char **argv)
{
	return splice_id_cmd(cli, argc, argv, CTL_DEL);
}

int cmd_splice(struct cli *cli, int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{ "add", splice_add },
		{ "list", splice_list },
		{ "show", splice_show },
		{ "del", splice_del },
		{ NULL, NULL },
	};

	return cli_object(cli, "splice", cmds, splice_usage, argc, argv);
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	struct ctl_req req = { .version = CTL_VERSION, .op = CTL_STATS };
	static const char *const names[] = NS_STAT_NAMES;
	__u64 *v;
	size_t i, n;
	int ret;

	if (argc > 1 && cli_is_help(argv[1])) {
		printf("Usage: natsplice [-j] stats\n\n"
		       "Verdict counters (pass, tx, redirect, punt, drop, fallback, handshake) and\n"
		       "drop reasons (malformed, ttl, fib, stranger, source, ringbuf, frag, size,\n"
		       "early_rst, window) of the relay's dataplane, summed over all CPUs.\n"
		       "early_rst: RSTs from a side not heard from since its SYN-ACK (its NAT's\n"
		       "answer to a segment of the partner that outran the SYN-ACK), dropped.\n"
		       "window: TCP segments of a splice outside the window its receiver would\n"
		       "accept (RFC 5961): forged RSTs, FINs or data, dropped.\n");
		return 0;
	}
	if (argc > 1)
		return cli_fail(cli, 2, "stats: unexpected argument '%s'", argv[1]);
	ret = cli_request(cli, &req, sizeof(*v), (void **)&v, &n);
	if (ret)
		return ret;
	ns_out_obj_begin(cli->out, NULL);
	for (i = 0; i < n && i < NS_STAT_MAX; i++)
		ns_out_u64(cli->out, names[i], v[i]);
	ns_out_obj_end(cli->out);
	free(v);
	return 0;
}
