// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The relay's GET /metrics (--metrics IP:PORT; lib/http.c in the daemon's
 * loop): the Prometheus text format, read at scrape time from the stats map,
 * the per-splice counters and the daemon's own state. The packet path pays
 * nothing for it: the BPF programs count what they counted before; the
 * setup histogram and the counts of finished splices are kept here, on the
 * daemon's splice events.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "relay.h"
#include "bclient.h"
#include "log.h"
#include "util.h"

#ifndef NS_VERSION
#define NS_VERSION "dev"
#endif

#define NS_SEC 1000000000ULL

/* Why a splice ended (relay_splice_delete's why) -> its label. */
static const struct {
	const char *why, *label;
} end_reasons[] = {
	{ "closed", "closed" },
	{ "reset", "reset" },
	{ "idle", "idle" },
	{ "half-open deadline passed", "half_open_timeout" },
	{ "failed", "failed" },
	{ "refused", "refused" },
	{ "evicted", "evicted" },
	{ "deleted", "deleted" },
};
#define END_REASONS (sizeof(end_reasons) / sizeof(end_reasons[0]))

/* Seconds from `splice add` (or the broker's request) to established. */
static const double setup_le[] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

struct relay_metrics {
	struct ns_prom_hist setup;
	__u64 created;
	__u64 ended[END_REASONS + 1];	/* [END_REASONS]: other */
	__u64 done_packets[2], done_bytes[2];	/* of splices gone, per direction */
};

void relay_metrics_created(struct relay *r)
{
	if (r->m)
		r->m->created++;
}

void relay_metrics_established(struct relay *r, const struct relay_splice *sp)
{
	__u64 now = ns_now_ns();

	if (r->m && sp->s.created_ns && now >= sp->s.created_ns)
		ns_prom_hist_observe(&r->m->setup, (double)(now - sp->s.created_ns) / NS_SEC);
}

void relay_metrics_done(struct relay *r, const struct relay_splice *sp,
			const struct ctl_splice *info, const char *why)
{
	struct relay_metrics *m = r->m;
	size_t i;
	int dir;

	if (!m)
		return;
	for (i = 0; i < END_REASONS && strcmp(why, end_reasons[i].why); i++)
		;
	m->ended[i]++;
	for (dir = 0; dir < 2; dir++) {
		m->done_packets[dir] += info->packets[dir];
		m->done_bytes[dir] += info->bytes[dir];
	}
}

/* ---- the page ---- */

static void out_dataplane(struct relay *r, FILE *f)
{
	static const char *const names[] = NS_STAT_NAMES;
	__u64 v[NS_STAT_MAX] = {};
	int i;

	if (r->dp->stats(r, v))
		return;
	ns_prom_head(f, "natsplice_dataplane_packets_total", "counter",
		     "Packets the dataplane handled, by verdict (natsplice stats).");
	for (i = NS_V_PASS; i < NS_DROP_MALFORMED; i++)
		fprintf(f, "natsplice_dataplane_packets_total{verdict=\"%s\"} %llu\n", names[i],
			(unsigned long long)v[i]);
	ns_prom_head(f, "natsplice_dataplane_drops_total", "counter",
		     "Packets dropped, by reason (natsplice stats; ringbuf: the punt ring "
		     "buffer to the daemon was full).");
	for (i = NS_DROP_MALFORMED; i < NS_STAT_MAX; i++)
		fprintf(f, "natsplice_dataplane_drops_total{reason=\"%s\"} %llu\n", names[i],
			(unsigned long long)v[i]);
}

/* Counts by proto, mode, state; traffic of the live splices, per direction. */
struct splice_sums {
	unsigned int n[2][2][NS_ST_CLOSED + 1];	/* [udp][pure][state] */
	__u64 packets[2], bytes[2];
};

static void sum_splices(struct relay *r, struct splice_sums *t)
{
	struct relay_splice *sp;
	__u64 p[2], b[2];
	int dir;

	for (sp = r->head; sp; sp = sp->next) {
		relay_splice_sync(r, sp);
		if (sp->s.state <= NS_ST_CLOSED)
			t->n[sp->s.proto == IPPROTO_UDP][sp->s.mode == NS_MODE_PURE][sp->s.state]++;
		if (sp->s.state < NS_ST_ESTABLISHED || r->dp->counters(r, sp, p, b))
			continue;
		for (dir = 0; dir < 2; dir++) {
			t->packets[dir] += p[dir];
			t->bytes[dir] += b[dir];
		}
	}
}

static void out_splices(struct relay *r, FILE *f)
{
	static const char *const dirs[] = { "a_to_b", "b_to_a" };
	struct relay_metrics *m = r->m;
	struct splice_sums t = {};
	int udp, pure, st, dir;
	size_t i;

	sum_splices(r, &t);
	ns_prom_head(f, "natsplice_splices", "gauge",
		     "Splices in the relay's table, by protocol, mode and state.");
	for (udp = 0; udp < 2; udp++)
		for (pure = 0; pure < 2 - udp; pure++)	/* (pure is TCP only) */
			for (st = 0; st <= NS_ST_CLOSED; st++)
				fprintf(f, "natsplice_splices{proto=\"%s\",mode=\"%s\","
					"state=\"%s\"} %u\n", udp ? "udp" : "tcp",
					pure ? "pure" : "passive", relay_state_name(st),
					t.n[udp][pure][st]);
	ns_prom_u64(f, "natsplice_splices_max", "gauge",
		    "Splices the relay's table holds at most.", NS_MAX_SPLICES);
	ns_prom_u64(f, "natsplice_splices_created_total", "counter",
		    "Splices this daemon created (splice add, broker requests).", m->created);
	ns_prom_head(f, "natsplice_splices_ended_total", "counter",
		     "Splices this daemon removed, by reason.");
	for (i = 0; i <= END_REASONS; i++)
		fprintf(f, "natsplice_splices_ended_total{reason=\"%s\"} %llu\n",
			i < END_REASONS ? end_reasons[i].label : "other",
			(unsigned long long)m->ended[i]);
	ns_prom_head(f, "natsplice_splice_bytes_total", "counter",
		     "Bytes spliced, by direction: the splices in the table (natsplice splice "
		     "list) and those this daemon removed.");
	for (dir = 0; dir < 2; dir++)
		fprintf(f, "natsplice_splice_bytes_total{direction=\"%s\"} %llu\n", dirs[dir],
			(unsigned long long)(t.bytes[dir] + m->done_bytes[dir]));
	ns_prom_head(f, "natsplice_splice_packets_total", "counter",
		     "Packets spliced, by direction, counted like the bytes.");
	for (dir = 0; dir < 2; dir++)
		fprintf(f, "natsplice_splice_packets_total{direction=\"%s\"} %llu\n", dirs[dir],
			(unsigned long long)(t.packets[dir] + m->done_packets[dir]));
	ns_prom_hist(f, "natsplice_splice_setup_seconds",
		     "From a splice's creation to established (both sides connected), as the "
		     "daemon sees it.", &m->setup);
}

/* Ports of the range held by a splice waiting on them: a new splice
 * cannot have them. */
static void out_ports(struct relay *r, FILE *f)
{
	unsigned int held = r->ports.n - r->ports.nfree;

	ns_prom_u64(f, "natsplice_relay_ports", "gauge", "Ports of the relay port range.",
		    r->cfg.port_hi - r->cfg.port_lo + 1);
	ns_prom_u64(f, "natsplice_relay_ports_in_use", "gauge",
		    "Relay ports held by splices waiting for their sides (established splices "
		    "share ports and hold none).", held);
}

/* One counter by outcome: NAME{outcome="..."} for each of n. */
static void out_outcomes(FILE *f, const char *name, const char *help,
			 const char *const *outcomes, const __u64 *v, int n)
{
	int i;

	ns_prom_head(f, name, "counter", help);
	for (i = 0; i < n; i++)
		fprintf(f, "%s{outcome=\"%s\"} %llu\n", name, outcomes[i],
			(unsigned long long)v[i]);
}

/* SYNs racing a side (relay_splice.c, "proving"). */
static void out_syn_race(struct relay *r, FILE *f)
{
	static const char *const outcomes[] = { "taken", "refused" };
	const __u64 v[] = { r->syn_second_taken, r->syn_second_refused };

	out_outcomes(f, "natsplice_relay_syn_second_source_total",
		     "SYNs from a second source (or with a new ISN) for a side of a splice not "
		     "established yet: taken (in the place of the first before the pair, or "
		     "as a candidate that must prove itself) or refused.", outcomes, v, 2);
	ns_prom_u64(f, "natsplice_relay_proofs_bad_total", "counter",
		    "Segments at the port of a side that must prove itself that proved nothing "
		    "(wrong source or acknowledgment).", r->proofs_bad);
}

/* Public ports (relay_public.c): what is open, what the clients cost. */
static void out_public(struct relay *r, FILE *f)
{
	static const char *const clients[] = { "held", "evicted", "not_allowed", "dropped" };
	static const char *const challenges[] = { "sent", "answered" };
	const __u64 vc[] = { r->pub_clients, r->pub_evicted, r->pub_disallowed, r->pub_dropped };
	const __u64 vch[] = { r->pub_challenged, r->pub_verified };
	int i;

	ns_prom_head(f, "natsplice_relay_public_held", "gauge",
		     "Clients of an open public port whose SYN is held for the provider "
		     "(public-half-open bounds their sum), by port.");
	for (i = 0; i < RELAY_PUBLIC_MAX; i++)
		if (r->pub[i].id)
			fprintf(f, "natsplice_relay_public_held{port=\"%u\"} %u\n", r->pub[i].port,
				r->pub[i].nheld);
	ns_prom_u64(f, "natsplice_relay_public_held_max", "gauge",
		    "Clients' SYNs all public ports may hold at once (public-half-open).",
		    r->cfg.public_half_open);
	out_outcomes(f, "natsplice_relay_public_clients_total",
		     "Clients' first SYNs at public ports: held (for the broker and the "
		     "provider), evicted (made room for another; see public-half-open), "
		     "not_allowed (source outside the port's prefixes), dropped (no relay port "
		     "or splice room).", clients, vc, 4);
	out_outcomes(f, "natsplice_relay_public_challenges_total",
		     "New clients of a public port beyond public-syn-rate, challenged first "
		     "(sent), and the challenges answered with the right RST (answered): a "
		     "flood of forged SYNs is challenged and never answers.", challenges, vch, 2);
	ns_prom_u64(f, "natsplice_relay_public_early_data_total", "counter",
		    "Segments with data from a public port's client before its splice was "
		    "installed: lost, sent again after a retransmission timeout. 0 unless a "
		    "client ignores the zero window of its SYN-ACK.", r->pub_early_data);
}

/* The echo port (lib/rtt.h): agents' round-trip probes. */
static void out_echo(struct relay *r, FILE *f)
{
	static const char *const outcomes[] = { "answered", "not_a_probe", "rate_limited" };
	const __u64 v[] = { r->echo[0].answered + r->echo[1].answered,
			    r->echo[0].ignored + r->echo[1].ignored,
			    r->echo[0].limited + r->echo[1].limited };

	out_outcomes(f, "natsplice_relay_echo_total",
		     "Datagrams at the echo port (echo-port): agents' round-trip probes "
		     "answered, datagrams that were no probe, probes over the answer rate.",
		     outcomes, v, 3);
}

static void out_relay(struct relay *r, FILE *f)
{
	ns_prom_head(f, "natsplice_relay_info", "gauge",
		     "The relay daemon: version, dataplane mode, device.");
	fprintf(f, "natsplice_relay_info{version=\"");
	ns_prom_label(f, NS_VERSION);
	fprintf(f, "\",mode=\"%s\",dev=\"", relay_mode_name(r->cfg.mode));
	ns_prom_label(f, r->cfg.dev);
	fprintf(f, "\",handshake=\"%s\"} 1\n", r->kmod ? "kernel" : "daemon");
	if (r->broker)
		ns_prom_u64(f, "natsplice_relay_broker_connected", "gauge",
			    "1 while the relay is logged in to its broker.",
			    ns_bclient_up(r->broker));
	ns_prom_process(f);
}

static enum MHD_Result on_request(void *data, struct ns_http_req *req)
{
	struct relay *r = data;
	struct ns_http_body body;
	FILE *f;

	if (strcmp(req->url, "/metrics"))
		return ns_http_respond_text(req->conn, MHD_HTTP_NOT_FOUND,
					    "not found: the relay serves /metrics\n");
	f = ns_http_body_open(&body);
	if (!f)
		return MHD_NO;
	out_dataplane(r, f);
	out_splices(r, f);
	out_ports(r, f);
	out_syn_race(r, f);
	out_public(r, f);
	out_echo(r, f);
	out_relay(r, f);
	return ns_http_respond_body(req->conn, MHD_HTTP_OK, &body, NS_HTTP_TYPE_PROM);
}

int relay_metrics_open(struct relay *r)
{
	struct ns_http_cfg hc = {
		.what = "metrics",
		.tokens_key = "metrics-tokens",
		.addr = &r->cfg.metrics,
		.addr_len = r->cfg.metrics_len,
		.tokens = &r->cfg.metrics_tokens,
		.fn = on_request,
		.data = r,
	};

	if (!r->cfg.metrics_len)
		return 0;
	r->m = calloc(1, sizeof(*r->m));
	if (!r->m)
		return -ENOMEM;
	r->m->setup.le = setup_le;
	r->m->setup.n = sizeof(setup_le) / sizeof(setup_le[0]);
	return ns_http_start(r->loop, &hc, &r->http);
}

void relay_metrics_close(struct relay *r)
{
	ns_http_stop(r->http);
	r->http = NULL;
	free(r->m);
	r->m = NULL;
}
