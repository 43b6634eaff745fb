// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * prog_bench: what the relay's fast path costs per packet (DESIGN §6). Runs
 * the real xdp_relay and tc_relay programs with BPF_PROG_TEST_RUN on packet
 * fixtures (test/bpf/fixture.c) and prints ns/packet and Mpps per case, next
 * to baselines built from test/bench/parse_only.bpf.c:
 *   empty       returns at once: the test-run loop itself, included in every row;
 *   parse only  ctx_pull_headers() + ns_parse() of bpf/lib/parse.h, the same
 *               helpers as the relay: the cost before any lookup;
 *   parse + bpf_fib_lookup   the route lookup a hit makes when its entry has
 *               no fresh next hop cached (bpf/lib/hop.h), without maps.
 *
 * Method. The kernel times the program runs of one BPF_PROG_TEST_RUN call
 * (not the syscall, nor the copy of the packet in and out) and reports the
 * mean in opts.duration, in whole ns. With repeat > 1 the packet is not reset
 * between runs, so a rewriting program sees its own output next time. The
 * map state is therefore made so that every run is a real table hit:
 *   - the splice's two entries, exactly as the daemon builds them
 *     (ns_entry_build), and
 *   - two "echo" entries keyed by what those entries output: the packet
 *     rewritten for B, {relay:PB -> B}, maps to the rewrite towards A, and
 *     {relay:PA -> A} maps to the rewrite towards B, with their own checksum
 *     deltas (ns_rewrite_deltas).
 * The first run is A's packet; the following ones alternate between the two
 * echo entries. Every run does the same work as a hit in service: parse, one
 * lookup, the next hop (to a neighbour of the ingress device), rewrite of
 * addresses, ports, TTL and checksums, accounting; only the addresses and
 * ports differ. The next hop comes from the entry's cache, as for nearly
 * every packet in service: each entry calls bpf_fib_lookup() on its first
 * run and then once per NS_HOP_LIFETIME_NS, here about one run in a million.
 * What cannot be undone is the TTL decrement: packets start
 * with TTL 255 and a call runs at most 253 times (the last one sees TTL 3).
 * The kernel copies a fresh packet in for every call.
 *
 * Why not repeat = 1, a fresh packet per call, minus the cost of an empty
 * program: every run then starts cold after a syscall (caches, branch
 * predictors). Measured here (-R 1), a hit costs ~90 ns more that way than
 * inside a call of 253 runs, a miss about the same; a driver runs XDP over
 * bursts of up to 64 packets per NAPI poll, warm, which the repeat loop is
 * closer to.
 *
 * Each block of calls is checked: the program returned the expected action,
 * the verdict counter grew by exactly the number of runs and no drop was
 * counted, and a forwarded packet leaves with valid checksums and the TTL
 * it should have. Cases and programs are interleaved in rounds; the table
 * shows the median of the rounds' means and the spread (max - min) / median.
 * opts.duration is truncated to whole ns per call: 0.5 ns is added to the
 * mean to take the bias out.
 *
 * Usage: prog_bench [-r ROUNDS] [-n CALLS] [-R REPEAT] [-s PAYLOAD] [-c CPU]
 * Runs in a private network namespace (bpf_fib_lookup needs routes and
 * neighbours). Exit 77 when not root or BPF is not available.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "natsplice_abi.h"
#include "entry.h"
#include "pkt.h"
#include "bpf/fixture.h"
#include "xdp_relay.skel.h"
#include "tc_relay.skel.h"
#include "parse_only_xdp.skel.h"
#include "parse_only_tc.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define TTL_START	255	/* TTL of every input packet */
#define REPEAT_MAX	(TTL_START - 2)	/* runs per call: the last one sees TTL 3 */
#define PAYLOAD_DEF	64	/* bytes after the TCP/UDP header */
#define EXIT_SKIP	77

/* ------------------------------------------------------------------------
 * Programs and cases.
 */

enum kind { K_EMPTY, K_PARSE, K_FIB, K_RELAY, K_MAX };

/* One loaded program; map fds only for the relay. */
struct prog {
	int fd;
	int table, stats, track;
};

/* The programs of one hook. */
struct hook {
	const char *name;		/* "XDP", "TC" */
	int xdp;
	struct prog p[K_MAX];
	int ifindex;			/* DEV_PEERS: where packets come in */
};

/* A splice of the bench world: A and B through the relay. */
struct splice_def {
	__u32 id;
	__u8 proto;
	__u8 family;
	const char *relay, *a, *b;
	__u16 a_port, b_port, relay_port[2];
};

static const struct splice_def splices[] = {
	{ 1, IPPROTO_TCP, NS_AF_INET, RELAY4, PEER_A4, PEER_B4, 40001, 40002,
	  { 5001, 5002 } },
	{ 2, IPPROTO_UDP, NS_AF_INET, RELAY4, PEER_A4, PEER_B4, 40001, 40002,
	  { 5001, 5002 } },
	{ 3, IPPROTO_TCP, NS_AF_INET6, RELAY6, PEER_A6, PEER_B6, 40001, 40002,
	  { 5001, 5002 } },
};

/* A row of the table: a packet, the program it goes to, the verdict it must get. */
struct bcase {
	const char *desc;
	enum kind kind;
	__u8 family, proto;
	const char *src, *dst;
	__u16 sport, dport;
	int verdict;			/* NS_V_PASS, or NS_V_TX (XDP) / NS_V_REDIRECT (TC) */
};

#define FWD	(-1)	/* verdict of a forwarded packet: TX at XDP, REDIRECT at TC */

static const struct bcase cases[] = {
	{ "empty program (test-run loop)", K_EMPTY,
	  NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 5001, NS_V_PASS },
	{ "parse only (lib/parse.h)", K_PARSE,
	  NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 5001, NS_V_PASS },
	{ "parse + bpf_fib_lookup (no maps)", K_FIB,
	  NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 5001, NS_V_PASS },
	{ "tcp4 miss: to another host, pass", K_RELAY,
	  NS_AF_INET, IPPROTO_TCP, PEER_A4, PEER_B4, 40001, 80, NS_V_PASS },
	{ "tcp4 miss: relay, unspliced port, pass", K_RELAY,
	  NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 22, NS_V_PASS },
	{ "tcp4 hit: passive splice", K_RELAY,
	  NS_AF_INET, IPPROTO_TCP, PEER_A4, RELAY4, 40001, 5001, FWD },
	{ "udp4 hit: passive splice", K_RELAY,
	  NS_AF_INET, IPPROTO_UDP, PEER_A4, RELAY4, 40001, 5001, FWD },
	{ "tcp6 hit: passive splice", K_RELAY,
	  NS_AF_INET6, IPPROTO_TCP, PEER_A6, RELAY6, 40001, 5001, FWD },
};

struct params {
	int rounds;		/* interleaved rounds over all cases */
	int calls;		/* BPF_PROG_TEST_RUN calls per case per round */
	int repeat;		/* program runs per call */
	int payload;		/* bytes */
	int cpu;		/* -1: not pinned */
};

static struct hook hooks[2] = {
	{ .name = "XDP", .xdp = 1 },
	{ .name = "TC", .xdp = 0 },
};

static int ncpus;

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "prog_bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int verdict_of(const struct hook *h, const struct bcase *c)
{
	if (c->verdict != FWD)
		return c->verdict;
	return h->xdp ? NS_V_TX : NS_V_REDIRECT;
}

static __u32 action(const struct hook *h, int verdict)
{
	switch (verdict) {
	case NS_V_TX:
		return XDP_TX;
	case NS_V_REDIRECT:
		return h->xdp ? XDP_REDIRECT : TC_ACT_REDIRECT;
	default:
		return h->xdp ? XDP_PASS : TC_ACT_OK;
	}
}

/* ------------------------------------------------------------------------
 * Map state.
 */

static void splice_make(const struct splice_def *d, struct ns_splice *s)
{
	memset(s, 0, sizeof(*s));
	s->id = d->id;
	s->proto = d->proto;
	s->family = d->family;
	s->mode = NS_MODE_PASSIVE;
	s->state = NS_ST_ESTABLISHED;
	s->port[0] = htons(d->relay_port[0]);
	s->port[1] = htons(d->relay_port[1]);
	addr_parse(d->relay, s->relay);
	addr_parse(d->a, s->peer[0].addr);
	addr_parse(d->b, s->peer[1].addr);
	s->peer[0].port = htons(d->a_port);
	s->peer[1].port = htons(d->b_port);
}

/* The key a packet rewritten by val has. */
static void output_key(const struct ns_key *in, const struct ns_rewrite *val,
		       struct ns_key *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->saddr, val->saddr, sizeof(out->saddr));
	memcpy(out->daddr, val->daddr, sizeof(out->daddr));
	out->sport = val->sport;
	out->dport = val->dport;
	out->proto = in->proto;
	out->family = in->family;
}

static void map_put(int fd, const void *key, const void *val, const char *what)
{
	if (bpf_map_update_elem(fd, key, val, BPF_NOEXIST))
		die("cannot insert %s: %s", what, strerror(errno));
}

/*
 * A splice's two entries and the two echo entries that keep
 * a repeated packet hitting (see the top of the file).
 */
static void splice_install(const struct prog *p, const struct splice_def *d)
{
	struct ns_key key[2], echo;
	struct ns_rewrite val[2], ev;
	struct ns_splice s;
	int dir;

	splice_make(d, &s);
	for (dir = 0; dir < 2; dir++) {
		ns_entry_build(&s, dir, &key[dir], &val[dir]);
		map_put(p->table, &key[dir], &val[dir], "a table entry");
	}
	for (dir = 0; dir < 2; dir++) {
		output_key(&key[dir], &val[dir], &echo);
		ev = val[!dir];
		ns_rewrite_deltas(&echo, &ev);
		map_put(p->table, &echo, &ev, "an echo entry");
	}
	/* The window check (ns_window) runs on every TCP hit, as in service:
	 * both sides at FIXTURE_SEQ, which the packets carry as their
	 * sequence and acknowledgment number (frame_of), echoes included. */
	if (d->proto == IPPROTO_TCP && p->track >= 0) {
		struct ns_track t = { .splice_id = d->id };
		__u32 slot = NS_SPLICE_SLOT(d->id);

		t.snd_max[0] = t.snd_max[1] = t.ack_max[0] = t.ack_max[1] = FIXTURE_SEQ;
		t.max_win[0] = t.max_win[1] = 0xffff;
		t.edge[0] = t.edge[1] = FIXTURE_SEQ + 0xffff;
		if (bpf_map_update_elem(p->track, &slot, &t, BPF_ANY))
			die("cannot set the window marks: %s", strerror(errno));
	}
}

static __u64 stat_sum(const struct prog *p, __u32 i)
{
	__u64 v[ncpus], sum = 0;
	int c;

	if (bpf_map_lookup_elem(p->stats, &i, v))
		die("ns_stats[%u]: %s", i, strerror(errno));
	for (c = 0; c < ncpus; c++)
		sum += v[c];
	return sum;
}

/* ------------------------------------------------------------------------
 * Loading.
 */

static __u32 relay4(void)
{
	__u32 a[4];

	addr_parse(RELAY4, a);
	return a[0];
}

static void relay_prog(struct prog *p, struct bpf_object *obj, struct bpf_program *prog)
{
	size_t i;

	p->fd = bpf_program__fd(prog);
	p->table = bpf_object__find_map_fd_by_name(obj, "ns_table");
	p->stats = bpf_object__find_map_fd_by_name(obj, "ns_stats");
	p->track = bpf_object__find_map_fd_by_name(obj, "ns_track");
	if (p->fd < 0 || p->table < 0 || p->stats < 0)
		die("relay program or maps missing");
	for (i = 0; i < ARRAY_SIZE(splices); i++)
		splice_install(p, &splices[i]);
}

/*
 * With repeat > 1, BPF_PROG_TEST_RUN puts an XDP program into the kernel's
 * XDP dispatcher for the call (so that it runs through a direct call, as
 * when attached) and takes it out afterwards. Changing the dispatcher waits
 * for an RCU grace period: tens of ms per call, outside the timed part but
 * hours of waiting in all. A program attached to a device stays in the
 * dispatcher, and adding it again changes nothing: attach each XDP program
 * to an idle veth of our private namespace for the whole run.
 */
static void xdp_hold(int prog_fd, int n)
{
	char cmd[128], dev[IF_NAMESIZE];
	int ifindex, err;

	snprintf(dev, sizeof(dev), "hold%d", n);
	snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %sp", dev, dev);
	if (system(cmd))
		die("'%s' failed", cmd);
	ifindex = if_nametoindex(dev);
	err = ifindex ? bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE, NULL) : -ENODEV;
	if (err)
		die("cannot attach an XDP program to %s: %s", dev, strerror(-err));
}

/* Load every program; the skeletons stay alive until exit. */
static int load_all(void)
{
	struct parse_only_xdp *px = parse_only_xdp__open_and_load();
	struct parse_only_tc *pt = parse_only_tc__open_and_load();
	struct xdp_relay *x = xdp_relay__open();
	struct tc_relay *t = tc_relay__open();
	int k;

	if (!px || !pt || !x || !t)
		return -1;
	x->rodata->relay_addr4 = relay4();
	t->rodata->relay_addr4 = relay4();
	addr_parse(RELAY6, (__u32 *)x->rodata->relay_addr6);
	addr_parse(RELAY6, (__u32 *)t->rodata->relay_addr6);
	if (xdp_relay__load(x) || tc_relay__load(t))
		return -1;
	hooks[0].p[K_EMPTY].fd = bpf_program__fd(px->progs.empty);
	hooks[0].p[K_PARSE].fd = bpf_program__fd(px->progs.parse_only);
	hooks[1].p[K_EMPTY].fd = bpf_program__fd(pt->progs.empty);
	hooks[1].p[K_PARSE].fd = bpf_program__fd(pt->progs.parse_only);
	hooks[0].p[K_FIB].fd = bpf_program__fd(px->progs.parse_fib);
	hooks[1].p[K_FIB].fd = bpf_program__fd(pt->progs.parse_fib);
	relay_prog(&hooks[0].p[K_RELAY], x->obj, x->progs.xdp_relay);
	relay_prog(&hooks[1].p[K_RELAY], t->obj, t->progs.tc_relay);
	for (k = 0; k < K_MAX; k++)
		xdp_hold(hooks[0].p[k].fd, k);
	hooks[0].ifindex = hooks[1].ifindex = if_nametoindex(DEV_PEERS);
	return hooks[0].ifindex ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Running.
 */

/* One BPF_PROG_TEST_RUN call; the mean ns per run, or dies. */
static __u32 test_run(const struct hook *h, const struct prog *p, const struct frame *in,
		      struct frame *out, int repeat, __u32 *retval)
{
	struct xdp_md xdp = { .data_end = in->len, .ingress_ifindex = h->ifindex };
	struct __sk_buff skb = { .ifindex = h->ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = in->b,
		.data_size_in = in->len,
		.data_out = out ? out->b : NULL,
		.data_size_out = out ? sizeof(out->b) : 0,
		.repeat = repeat,
	);
	int err;

	if (h->xdp) {
		opts.ctx_in = &xdp;
		opts.ctx_size_in = sizeof(xdp);
	} else {
		opts.ctx_in = &skb;
		opts.ctx_size_in = sizeof(skb);
	}
	err = bpf_prog_test_run_opts(p->fd, &opts);
	if (err)
		die("%s: BPF_PROG_TEST_RUN: %s", h->name, strerror(-err));
	if (out)
		out->len = opts.data_size_out;
	*retval = opts.retval;
	return opts.duration;
}

static void frame_of(const struct bcase *c, const struct params *pr, struct frame *f)
{
	struct pkt p = {
		.family = c->family, .proto = c->proto,
		.src = c->src, .dst = c->dst, .sport = c->sport, .dport = c->dport,
		.ttl = TTL_START, .payload = pr->payload,
		.ack_off = (__s32)(FIXTURE_SEQ - FIXTURE_ACK_SEQ),	/* (splice_install) */
	};

	if (pkt_build(&p, f))
		die("cannot build the packet of '%s'", c->desc);
}

/* The TTL / hop limit byte of a frame whose IP header is at l3_off. */
static __u8 frame_ttl(const struct frame *f, size_t l3_off)
{
	return f->b[l3_off + ((f->b[l3_off] >> 4) == 4 ? 8 : 7)];
}

/*
 * One call with output: the action, and the packet: untouched unless
 * forwarded; forwarded with valid checksums and one TTL less per run.
 */
static void check_call(const struct hook *h, const struct bcase *c, const struct params *pr,
		       const struct frame *in)
{
	const struct prog *p = &h->p[c->kind];
	int verdict = verdict_of(h, c);
	struct frame out;
	__u32 retval;

	test_run(h, p, in, &out, pr->repeat, &retval);
	if (retval != action(h, verdict))
		die("%s %s: returned %u, expected %u", h->name, c->desc, retval,
		    action(h, verdict));
	if (verdict == NS_V_PASS) {
		if (out.len != in->len || memcmp(out.b, in->b, in->len))
			die("%s %s: a passed packet was modified", h->name, c->desc);
		return;
	}
	if (out.len != in->len || !ns_pkt_csum_ok(out.b + in->l3_off, out.len - in->l3_off))
		die("%s %s: output checksums invalid after %d runs", h->name, c->desc,
		    pr->repeat);
	if (frame_ttl(&out, in->l3_off) != TTL_START - pr->repeat)
		die("%s %s: TTL %u after %d runs, expected %d", h->name, c->desc,
		    frame_ttl(&out, in->l3_off), pr->repeat, TTL_START - pr->repeat);
}

/*
 * A block of calls; the mean ns per run. For the relay, every run must have
 * counted the expected verdict and no drop.
 */
static double block(const struct hook *h, const struct bcase *c, const struct params *pr,
		    const struct frame *in)
{
	const struct prog *p = &h->p[c->kind];
	int verdict = verdict_of(h, c), i;
	__u64 v0 = 0, d0 = 0, sum = 0, want;
	__u32 retval;

	if (c->kind == K_RELAY) {
		v0 = stat_sum(p, verdict);
		d0 = stat_sum(p, NS_V_DROP);
	}
	for (i = 0; i < pr->calls; i++) {
		sum += test_run(h, p, in, NULL, pr->repeat, &retval);
		if (retval != action(h, verdict))
			die("%s %s: returned %u, expected %u", h->name, c->desc, retval,
			    action(h, verdict));
	}
	if (c->kind == K_RELAY) {
		want = (__u64)pr->calls * pr->repeat;
		if (stat_sum(p, verdict) - v0 != want || stat_sum(p, NS_V_DROP) != d0)
			die("%s %s: %llu verdicts and %llu drops counted for %llu runs",
			    h->name, c->desc,
			    (unsigned long long)(stat_sum(p, verdict) - v0),
			    (unsigned long long)(stat_sum(p, NS_V_DROP) - d0),
			    (unsigned long long)want);
	}
	/* duration is floor(total / repeat): add back half a ns on average. */
	return (double)sum / pr->calls + 0.5;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------------
 * Report.
 */

/* Read before leaving the initial namespace: net.core.bpf_jit_enable is not in others. */
static char jit[16] = "?", bpf_stats[16] = "0";

static void read_sysctls(void)
{
	FILE *f;

	if ((f = fopen("/proc/sys/net/core/bpf_jit_enable", "r"))) {
		if (!fgets(jit, sizeof(jit), f))
			strcpy(jit, "?");
		fclose(f);
	}
	if ((f = fopen("/proc/sys/kernel/bpf_stats_enabled", "r"))) {
		if (!fgets(bpf_stats, sizeof(bpf_stats), f))
			strcpy(bpf_stats, "0");
		fclose(f);
	}
	jit[strcspn(jit, "\n")] = 0;
	bpf_stats[strcspn(bpf_stats, "\n")] = 0;
}

static void header(const struct params *pr)
{
	struct utsname u;

	uname(&u);
	printf("prog_bench: kernel %s, bpf_jit_enable %s, %d CPUs%s\n", u.release, jit,
	       ncpus, pr->cpu >= 0 ? ", pinned" : "");
	printf("BPF_PROG_TEST_RUN: %d rounds x %d calls x repeat %d per cell; "
	       "%d-byte payload; median of round means, spread (max-min)/median\n",
	       pr->rounds, pr->calls, pr->repeat, pr->payload);
	if (strcmp(bpf_stats, "0"))
		printf("warning: kernel.bpf_stats_enabled is on: every run pays for it\n");
}

/* Median of v[0..n-1] (sorts v); the spread (max - min) / median in *spread. */
static double median(double *v, int n, double *spread)
{
	double m;

	qsort(v, n, sizeof(*v), cmp_double);
	m = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*spread = (v[n - 1] - v[0]) / m;
	return m;
}

/* Check every case once, time them in interleaved rounds, print the table. */
static void measure(const struct params *pr)
{
	enum { NC = ARRAY_SIZE(cases) };
	static struct frame in[NC];
	double *res[2][NC], m, spread;
	int r, h, i;

	for (i = 0; i < NC; i++) {
		frame_of(&cases[i], pr, &in[i]);
		for (h = 0; h < 2; h++) {
			check_call(&hooks[h], &cases[i], pr, &in[i]);
			res[h][i] = calloc(pr->rounds, sizeof(double));
			if (!res[h][i])
				die("out of memory");
		}
	}
	for (r = 0; r < pr->rounds; r++)
		for (i = 0; i < NC; i++)
			for (h = 0; h < 2; h++)
				res[h][i][r] = block(&hooks[h], &cases[i], pr, &in[i]);

	header(pr);
	printf("%-40s %9s %6s %6s  %9s %6s %6s\n", "case", "XDP ns/p", "spread", "Mpps",
	       "TC ns/p", "spread", "Mpps");
	for (i = 0; i < NC; i++) {
		printf("%-40s", cases[i].desc);
		for (h = 0; h < 2; h++) {
			m = median(res[h][i], pr->rounds, &spread);
			printf(" %9.1f %5.0f%% %6.1f%s", m, spread * 100, 1e3 / m, h ? "" : " ");
			free(res[h][i]);
		}
		printf("\n");
	}
	printf("ns/p includes the test-run loop (the empty program's row); Mpps = 1000 / "
	       "ns/p on one CPU.\nXDP_TX and redirects are only returned, not performed.\n");
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: prog_bench [-r ROUNDS] [-n CALLS] [-R REPEAT] [-s PAYLOAD] [-c CPU]\n"
"  -r ROUNDS   interleaved rounds over every case (default 5)\n"
"  -n CALLS    BPF_PROG_TEST_RUN calls per case per round (default 2000)\n"
"  -R REPEAT   program runs per call, at most %d (default %d)\n"
"  -s PAYLOAD  bytes after the TCP/UDP header (default %d)\n"
"  -c CPU      pin to this CPU\n", REPEAT_MAX, REPEAT_MAX, PAYLOAD_DEF);
}

static int parse_int(const char *s, int lo, int hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		die("bad %s '%s' (%d..%d)", what, s, lo, hi);
	return (int)v;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int main(int argc, char **argv)
{
	struct params pr = { 5, 2000, REPEAT_MAX, PAYLOAD_DEF, -1 };
	int o;

	while ((o = getopt(argc, argv, "r:n:R:s:c:h")) != -1) {
		switch (o) {
		case 'r': pr.rounds = parse_int(optarg, 1, 1000, "rounds"); break;
		case 'n': pr.calls = parse_int(optarg, 1, 10000000, "calls"); break;
		case 'R': pr.repeat = parse_int(optarg, 1, REPEAT_MAX, "repeat"); break;
		case 's': pr.payload = parse_int(optarg, 0, 1400, "payload"); break;
		case 'c': pr.cpu = parse_int(optarg, 0, CPU_SETSIZE - 1, "cpu"); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if (geteuid() != 0) {
		printf("skipped: needs root (BPF, network namespaces)\n");
		return EXIT_SKIP;
	}
	libbpf_set_print(libbpf_print);
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) != 1 ||
	    libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL) != 1) {
		printf("skipped: XDP/TC BPF programs not available\n");
		return EXIT_SKIP;
	}
	if (pr.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(pr.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("cannot pin to CPU %d: %s", pr.cpu, strerror(errno));
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		die("cannot count CPUs");
	read_sysctls();
	if (fixture_netns() < 0) {
		printf("skipped: cannot set up a network namespace\n");
		return EXIT_SKIP;
	}
	if (load_all() < 0)
		die("cannot load the programs");

	measure(&pr);
	return 0;
}
