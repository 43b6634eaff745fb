// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the relay's BPF parser and rewriter, run in the
 * kernel through BPF_PROG_TEST_RUN (needs root: it loads xdp_relay and
 * tc_relay and builds test/bpf's namespace). Both programs get the same
 * state: splices (TCP and UDP, IPv4 and IPv6, passive and pure) between the
 * fixture's peers, and expectations on relay ports.
 *
 * Input: byte 0 bit 0 picks XDP or TC; bit 1 set: the rest is the whole
 * frame; else bits 2-5 pick one of the valid template frames (to and through
 * the splices: TCP/UDP, v4/v6, VLAN, IPv4 options, fragments, SYNs) and the
 * rest is edits: (offset u16 BE, xor u8) triples, a final odd byte cutting
 * or growing the frame. Checks: the run succeeds; a packet not forwarded
 * (PASS, DROP, OK, SHOT) comes out byte for byte as it went in; a forwarded
 * one (TX, REDIRECT) whose input had valid checksums has valid IP and
 * TCP/UDP checksums (computed here, not by the code under test).
 *
 * The programs' own coverage is out of libFuzzer's sight; what it sees
 * instead is which verdict and drop-reason counters (ns_stats) a run moved,
 * per program and template, as extra counters: an input that reaches a new
 * reason is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "natsplice_abi.h"
#include "entry.h"
#include "bpf/fixture.h"
#include "xdp_relay.skel.h"
#include "tc_relay.skel.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
				     __FILE__, __LINE__); abort(); } } while (0)

struct prog {
	const char *name;
	int xdp, fd, table, ports, stats;
	__u64 *seen;		/* ns_stats summed over CPUs after the last run */
};

/* libFuzzer's extra coverage: [program][template, or the last for raw][stat] */
#define TEMPLATES_MAX	16
__attribute__((section("__libfuzzer_extra_counters")))
static __u8 stat_hits[2][TEMPLATES_MAX + 1][NS_STAT_SLOTS];
static int ncpus;
static struct prog progs[2] = { { "xdp_relay", 1 }, { "tc_relay", 0 } };
static int ifindex;
/* Loaded once for the whole run (globals: reachable, so no leak at exit). */
static struct xdp_relay *x;
static struct tc_relay *t;

/* The splices: id, proto, family, mode, A, B, A's port, B's port, relay ports. */
static const struct {
	__u32 id;
	__u8 proto, family, mode;
	const char *a, *b;
	__u16 a_port, b_port, relay_port[2];
} splices[] = {
	{ 1, IPPROTO_TCP, NS_AF_INET, NS_MODE_PASSIVE, PEER_A4, PEER_B4, 40001, 40002, { 5001, 5002 } },
	{ 2, IPPROTO_TCP, NS_AF_INET, NS_MODE_PURE, PEER_A4, PEER_B4, 7000, 8000, { 8000, 7000 } },
	{ 3, IPPROTO_TCP, NS_AF_INET6, NS_MODE_PASSIVE, PEER_A6, PEER_B6, 40001, 40002, { 5001, 5002 } },
	{ 4, IPPROTO_UDP, NS_AF_INET, NS_MODE_PASSIVE, PEER_A4, PEER_B4, 40001, 40002, { 5001, 5002 } },
	{ 5, IPPROTO_UDP, NS_AF_INET6, NS_MODE_PASSIVE, PEER_A6, PEER_B6, 40001, 40002, { 5001, 5002 } },
	{ 7, IPPROTO_TCP, NS_AF_INET, NS_MODE_PASSIVE, PEER_A4, REMOTE4, 41000, 41001, { 5101, 5102 } },
};

/* Valid frames the edits start from. */
static const struct pkt templates[] = {
	{ NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 5001, .payload = 100 },
	{ NS_AF_INET, IPPROTO_TCP, PEER_B4, RELAY4, 40002, 5002, .payload = 20, .vlans = 1 },
	{ NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 7000, 8000, .payload = 10 },
	{ NS_AF_INET6, IPPROTO_TCP, PEER_A6, RELAY6, 40001, 5001, .payload = 60 },
	{ NS_AF_INET, IPPROTO_UDP, PEER_A4, RELAY4, 40001, 5001, .payload = 50 },
	{ NS_AF_INET, IPPROTO_UDP, PEER_B4, RELAY4, 40002, 5002, .payload = 8, .udp_nocsum = 1 },
	{ NS_AF_INET6, IPPROTO_UDP, PEER_B6, RELAY6, 40002, 5002, .payload = 30, .vlans = 2 },
	{ NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 5001, .payload = 100, .ip_opts = 8 },
	{ NS_AF_INET, IPPROTO_UDP, PEER_A4, RELAY4, 40001, 5001, .payload = 100, .frag = PKT_FRAG_FIRST },
	{ NS_AF_INET6, IPPROTO_UDP, PEER_A6, RELAY6, 40001, 5001, .payload = 100, .frag = PKT_FRAG_LATER },
	{ NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 6001, .tcp_flags = 0x02 },
	{ NS_AF_INET6, IPPROTO_TCP, PEER_B6, RELAY6, 40002, 6003, .tcp_flags = 0x02 },
	{ NS_AF_INET, IPPROTO_UDP, PEER_B4, RELAY4, 40009, 6002, .payload = 40 },
	{ NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 41000, 5101, .payload = 1400 },
	{ NS_AF_INET, IPPROTO_TCP, PEER_B4, RELAY4, 40002, 5002, .tcp_flags = 0x11 },
	{ NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 5001, .tcp_flags = 0x14 },
};

/* Expectations (a relay port waiting for a side's first packet). */
static const struct {
	__u8 proto, family;
	__u16 port;
	__u32 splice_id;
	__u8 side;
	const char *allow;
	__u8 proving;
} expects[] = {
	{ IPPROTO_TCP, NS_AF_INET, 6001, 20, 0, PEER_A4 },
	{ IPPROTO_UDP, NS_AF_INET, 6002, 21, 1, NULL },
	{ IPPROTO_TCP, NS_AF_INET6, 6003, 27, 1, PEER_B6, 1 },
};

static void state_install(struct prog *p)
{
	size_t i;
	int dir;

	for (i = 0; i < sizeof(splices) / sizeof(splices[0]); i++) {
		struct ns_splice s = { 0 };

		s.id = splices[i].id;
		s.proto = splices[i].proto;
		s.family = splices[i].family;
		s.mode = splices[i].mode;
		s.state = NS_ST_ESTABLISHED;
		s.port[0] = htons(splices[i].relay_port[0]);
		s.port[1] = htons(splices[i].relay_port[1]);
		addr_parse(s.family == NS_AF_INET ? RELAY4 : RELAY6, s.relay);
		addr_parse(splices[i].a, s.peer[0].addr);
		addr_parse(splices[i].b, s.peer[1].addr);
		s.peer[0].port = htons(splices[i].a_port);
		s.peer[1].port = htons(splices[i].b_port);
		for (dir = 0; dir < 2; dir++) {
			struct ns_key key;
			struct ns_rewrite val;

			ns_entry_build(&s, dir, &key, &val);
			CHECK(bpf_map_update_elem(p->table, &key, &val, BPF_ANY) == 0);
		}
	}
	for (i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
		struct ns_port_key pk = {
			.proto = expects[i].proto, .family = expects[i].family,
			.port = htons(expects[i].port),
		};
		struct ns_port_val pv = {
			.splice_id = expects[i].splice_id, .side = expects[i].side,
			.allow_any = !expects[i].allow, .proving = expects[i].proving,
		};

		if (expects[i].allow)
			addr_parse(expects[i].allow, pv.allow);
		CHECK(bpf_map_update_elem(p->ports, &pk, &pv, BPF_ANY) == 0);
	}
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	__u32 relay4[4];

	if (geteuid() != 0 || fixture_netns() < 0) {
		printf("SKIP: fuzz_bpf needs root and a network namespace\n");
		exit(77);
	}
	libbpf_set_print(libbpf_quiet);
	ifindex = if_nametoindex(DEV_PEERS);
	addr_parse(RELAY4, relay4);
	x = xdp_relay__open();
	t = tc_relay__open();
	CHECK(x && t);
	x->rodata->relay_addr4 = relay4[0];
	t->rodata->relay_addr4 = relay4[0];
	addr_parse(RELAY6, (__u32 *)x->rodata->relay_addr6);
	addr_parse(RELAY6, (__u32 *)t->rodata->relay_addr6);
	/* a verifier rejection is a finding too */
	CHECK(xdp_relay__load(x) == 0);
	CHECK(tc_relay__load(t) == 0);
	progs[0].fd = bpf_program__fd(x->progs.xdp_relay);
	progs[0].table = bpf_object__find_map_fd_by_name(x->obj, "ns_table");
	progs[0].ports = bpf_object__find_map_fd_by_name(x->obj, "ns_ports");
	progs[1].fd = bpf_program__fd(t->progs.tc_relay);
	progs[1].table = bpf_object__find_map_fd_by_name(t->obj, "ns_table");
	progs[1].ports = bpf_object__find_map_fd_by_name(t->obj, "ns_ports");
	progs[0].stats = bpf_object__find_map_fd_by_name(x->obj, "ns_stats");
	progs[1].stats = bpf_object__find_map_fd_by_name(t->obj, "ns_stats");
	ncpus = libbpf_num_possible_cpus();
	progs[0].seen = calloc(NS_STAT_SLOTS, sizeof(__u64));
	progs[1].seen = calloc(NS_STAT_SLOTS, sizeof(__u64));
	CHECK(ifindex > 0 && progs[0].table >= 0 && progs[1].ports >= 0 && ncpus > 0 &&
	      progs[0].stats >= 0 && progs[1].stats >= 0 && progs[0].seen && progs[1].seen);
	CHECK(sizeof(templates) / sizeof(templates[0]) <= TEMPLATES_MAX);
	state_install(&progs[0]);
	state_install(&progs[1]);
	return 0;		/* the objects stay loaded for the whole run */
}

static __u32 sum16(const __u8 *p, size_t len, __u32 sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += p[len - 1] << 8;
	return sum;
}

static __u16 fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/*
 * 1 when the IP packet in the frame has valid checksums, 0 when not, -1
 * when there is nothing to say (not IPv4/IPv6 TCP/UDP, truncated, a
 * fragment's L4 checksum, IPv6 extension headers).
 */
static int frame_csum_ok(const __u8 *f, size_t len)
{
	size_t off = 12, hlen, l4len;
	__u16 type;
	__u32 sum;
	__u8 proto;
	const __u8 *ip, *l4;

	if (len < 14)
		return -1;
	type = f[off] << 8 | f[off + 1];
	while ((type == 0x8100 || type == 0x88a8) && off + 6 <= len) {
		off += 4;
		type = f[off] << 8 | f[off + 1];
	}
	off += 2;
	ip = f + off;
	if (type == 0x0800) {
		if (off + 20 > len || ip[0] >> 4 != 4)
			return -1;
		hlen = (ip[0] & 0xf) * 4;
		if (hlen < 20 || off + hlen > len || (size_t)(ip[2] << 8 | ip[3]) < hlen ||
		    off + (ip[2] << 8 | ip[3]) > len)
			return -1;
		if (fold(sum16(ip, hlen, 0)) != 0xffff)
			return 0;
		if ((ip[6] & 0x3f) || ip[7])		/* MF or an offset: a fragment */
			return 1;
		proto = ip[9];
		l4len = (ip[2] << 8 | ip[3]) - hlen;
		sum = sum16(ip + 12, 8, 0);
	} else if (type == 0x86dd) {
		if (off + 40 > len || ip[0] >> 4 != 6)
			return -1;
		hlen = 40;
		l4len = ip[4] << 8 | ip[5];
		if (off + 40 + l4len > len)
			return -1;
		proto = ip[6];
		sum = sum16(ip + 8, 32, 0);
	} else {
		return -1;
	}
	l4 = ip + hlen;
	if (proto == IPPROTO_TCP) {
		if (l4len < 20)
			return -1;
	} else if (proto == IPPROTO_UDP) {
		if (l4len < 8)
			return -1;
		if (type == 0x0800 && !l4[6] && !l4[7])
			return 1;			/* RFC 768: none */
	} else {
		return -1;
	}
	sum += proto + (__u32)l4len;
	return fold(sum16(l4, l4len, sum)) == 0xffff;
}

/* Mark the counters the last run moved (one batch lookup of the per-CPU array). */
static void stats_feedback(struct prog *p, int tmpl)
{
	__u64 v[NS_STAT_SLOTS * ncpus];
	__u32 keys[NS_STAT_SLOTS], out_batch, count = NS_STAT_SLOTS;
	int i, c;

	if (bpf_map_lookup_batch(p->stats, NULL, &out_batch, keys, v, &count, NULL) &&
	    errno != ENOENT)
		return;
	for (i = 0; i < (int)count; i++) {
		__u64 sum = 0;

		for (c = 0; c < ncpus; c++)
			sum += v[i * ncpus + c];
		if (keys[i] < NS_STAT_SLOTS && sum != p->seen[keys[i]]) {
			stat_hits[p == &progs[1]][tmpl][keys[i]]++;
			p->seen[keys[i]] = sum;
		}
	}
}

static struct frame in, out;

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct prog *p;
	struct xdp_md xdp = { .ingress_ifindex = 0 };
	struct __sk_buff skb = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	int fwd, in_ok, tmpl = TEMPLATES_MAX;
	__u32 r;

	if (!len)
		return 0;
	p = &progs[data[0] & 1];
	if (data[0] & 2) {
		if (len - 1 < 14 || len - 1 > FRAME_MAX)
			return 0;
		memcpy(in.b, data + 1, len - 1);
		in.len = len - 1;
	} else {
		size_t i, n = sizeof(templates) / sizeof(templates[0]);

		tmpl = (data[0] >> 2) % n;
		CHECK(pkt_build(&templates[tmpl], &in) == 0);
		for (i = 1; i + 3 <= len; i += 3) {
			size_t o = (data[i] << 8 | data[i + 1]) % in.len;

			in.b[o] ^= data[i + 2];
		}
		if (i < len) {		/* cut (bit 7 clear) or grow by zeros */
			size_t d = data[i] & 0x7f;

			if (data[i] & 0x80)
				in.len = in.len + d <= FRAME_MAX ? in.len + d : in.len;
			else
				in.len = in.len > d + 14 ? in.len - d : 14;
		}
	}
	opts.data_in = in.b;
	opts.data_size_in = in.len;
	opts.data_out = out.b;
	opts.data_size_out = sizeof(out.b);
	if (p->xdp) {
		xdp.data_end = in.len;
		xdp.ingress_ifindex = ifindex;
		opts.ctx_in = &xdp;
		opts.ctx_size_in = sizeof(xdp);
	} else {
		skb.ifindex = ifindex;
		opts.ctx_in = &skb;
		opts.ctx_size_in = sizeof(skb);
	}
	out.len = 0;
	r = bpf_prog_test_run_opts(p->fd, &opts);
	/* The kernel builds no skb from a frame shorter than Ethernet + the IP
	 * header its ethertype names (bpf_prog_test_run_skb): not a program run. */
	if (!p->xdp && r == (__u32)-EINVAL && in.len < 14 + 40)
		return 0;
	if (r)
		fprintf(stderr, "%s: BPF_PROG_TEST_RUN on %zu bytes: %s\n", p->name, in.len,
			strerror(-(int)r));
	CHECK(r == 0);
	r = opts.retval;
	out.len = opts.data_size_out;
	stats_feedback(p, tmpl);
	if (p->xdp) {
		CHECK(r == XDP_PASS || r == XDP_DROP || r == XDP_TX || r == XDP_REDIRECT);
		fwd = r == XDP_TX || r == XDP_REDIRECT;
	} else {
		CHECK(r == TC_ACT_OK || r == (__u32)TC_ACT_SHOT || r == TC_ACT_REDIRECT);
		fwd = r == TC_ACT_REDIRECT;
	}
	if (!fwd) {
		if (out.len != in.len || memcmp(out.b, in.b, in.len)) {
			frame_dump("input", in.b, in.len, NULL, 0);
			frame_dump("output", out.b, out.len, in.b, in.len);
			fprintf(stderr, "%s returned %u and modified the packet\n", p->name, r);
			abort();
		}
		return 0;
	}
	in_ok = frame_csum_ok(in.b, in.len);
	if (in_ok == 1 && frame_csum_ok(out.b, out.len) != 1) {
		frame_dump("input", in.b, in.len, NULL, 0);
		frame_dump("output", out.b, out.len, in.b, in.len);
		fprintf(stderr, "%s forwarded (%u) with invalid checksums\n", p->name, r);
		abort();
	}
	return 0;
}
