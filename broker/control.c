// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HTTP API (libmicrohttpd): GET /metrics (Prometheus text format) and
 * GET /api/v1/{agents,relays,services,sessions,public} (JSON arrays), and the
 * dashboard's files (dashboard.c) at / and /dashboard/.
 *
 * lib/http.c serves it inside the broker's own event loop, so the handlers
 * read the broker's state without locks; it checks http-tokens first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "broker.h"
#include "rtt.h"
#include "http.h"
#include "prom.h"
#include "out.h"
#include "util.h"

/* ---- bodies ---- */

static void time_str(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void out_ep(struct ns_out *o, const char *key, const struct ns_ep *ep)
{
	char a[EP_STRLEN];

	ns_out_str(o, key, ep_str(ep, a, sizeof(a)));
}

static void out_time(struct ns_out *o, const char *key, time_t t)
{
	char buf[32];

	time_str(t, buf, sizeof(buf));
	ns_out_str(o, key, buf);
}

/* What an agent's NAT discovery found for one transport (NAT_INFO), or null. */
static void out_nat(struct ns_out *o, const char *key, const struct peer *p, int udp)
{
	const struct ns_nat_result *r = &p->nat[udp];
	char a[EP_STRLEN];
	struct ns_ep e;

	if (!(p->nat_known & (1 << udp))) {
		ns_out_null(o, key);
		return;
	}
	ns_out_obj_begin(o, key);
	ns_out_bool(o, "blocked", !r->tested);
	if (r->tested) {
		ns_out_bool(o, "nat", r->nat);
		ns_out_str(o, "mapping", ns_nat_beh_name(r->mapping));
		ns_out_str(o, "filtering", ns_nat_beh_name(r->filtering));
		ns_out_bool(o, "port_preserved", r->preserve);
		ns_out_bool(o, "hairpin", r->hairpin);
		e.family = r->family;
		memcpy(e.addr, r->addr, sizeof(e.addr));
		e.port = r->port;
		ns_out_str(o, "mapped_address", ep_str(&e, a, sizeof(a)));
	}
	ns_out_obj_end(o);
}

/* Agents online by what discovery found (TCP and UDP), and the answers. */
static void out_nat_metrics(struct broker *b, FILE *f)
{
	static const char *const what[] = { "answered", "ignored", "rate_limited",
					    "connect_backs" };
	const __u64 v[] = { b->st.disc_answered, b->st.disc_ignored, b->st.disc_limited,
			    b->st.disc_connect_backs };
	unsigned int n[2][5][5] = { { { 0 } } }, proto, m, fl;
	size_t i;

	for (i = 0; i < b->cfg->nagents; i++) {
		const struct peer *p = b->agents[i];

		for (proto = 0; p && proto < 2; proto++)
			if (p->nat_known & (1 << proto))
				n[proto][p->nat[proto].tested ? p->nat[proto].mapping : 4]
				 [p->nat[proto].tested ? p->nat[proto].filtering : 4]++;
	}
	ns_prom_head(f, "natsplice_broker_agents_nat", "gauge",
		     "Agents online by what their NAT behaviour discovery found: mapping and "
		     "filtering (ei, ad, apd; blocked: no answer), per transport.");
	for (proto = 0; proto < 2; proto++)
		for (m = 0; m < 5; m++)
			for (fl = 0; fl < 5; fl++)
				if (n[proto][m][fl])
					fprintf(f, "natsplice_broker_agents_nat{proto=\"%s\","
						"mapping=\"%s\",filtering=\"%s\"} %u\n",
						proto ? "udp" : "tcp",
						m == 4 ? "blocked" : ns_nat_beh_name(m),
						fl == 4 ? "blocked" : ns_nat_beh_name(fl),
						n[proto][m][fl]);
	ns_prom_u64(f, "natsplice_broker_punch_failed_total", "counter",
		    "Punched paths that did not come up in punch-timeout (the subscriber "
		    "asked again with NO_PUNCH: relays for that pair a while).",
		    b->st.punch_failed);
	ns_prom_head(f, "natsplice_broker_discovery_total", "counter",
		     "NAT discovery requests: answered, ignored (no agent's, malformed), "
		     "rate_limited; connect_backs made (TCP filtering tests).");
	for (i = 0; i < 4; i++)
		fprintf(f, "natsplice_broker_discovery_total{outcome=\"%s\"} %llu\n", what[i],
			(unsigned long long)v[i]);
}

static void api_agents(struct broker *b, struct ns_out *o)
{
	const struct service *s;
	size_t i, j;

	ns_out_arr_begin(o, NULL);
	for (i = 0; i < b->cfg->nagents; i++) {
		const struct peer *p = b->agents[i];

		if (!p)
			continue;
		ns_out_obj_begin(o, NULL);
		ns_out_str(o, "name", p->name);
		out_ep(o, "observed_address", &p->observed);
		if (p->has_local)
			out_ep(o, "local_address", &p->local);
		else
			ns_out_null(o, "local_address");
		if (p->listen_port)
			ns_out_u64(o, "listen_port", p->listen_port);
		else
			ns_out_null(o, "listen_port");
		ns_out_bool(o, "reachable", p->reachable);
		ns_out_bool(o, "probing", p->probe != NULL);
		for (j = 0; j < 2; j++)
			out_nat(o, j ? "nat_udp" : "nat_tcp", p, j);
		if (p->nat_since)
			out_time(o, "nat_tested", p->nat_since);
		else
			ns_out_null(o, "nat_tested");
		ns_out_bool(o, "nat_testing", discovery_running(p));
		ns_out_arr_begin(o, "relay_rtt");	/* what it measured (RTT) */
		for (j = 0; j < p->nrtt; j++) {
			ns_out_obj_begin(o, NULL);
			ns_out_str(o, "relay", p->rtt[j].relay);
			ns_out_bool(o, "answers", p->rtt[j].us != NS_RTT_UNREACHABLE);
			if (p->rtt[j].us != NS_RTT_UNREACHABLE)
				ns_out_u64(o, "rtt_us", p->rtt[j].us);
			else
				ns_out_null(o, "rtt_us");
			ns_out_obj_end(o);
		}
		ns_out_arr_end(o);
		ns_out_arr_begin(o, "services");
		for (s = p->services; s; s = s->next)
			ns_out_str(o, NULL, s->name);
		ns_out_arr_end(o);
		out_time(o, "connected_since", p->since);
		ns_out_obj_end(o);
	}
	ns_out_arr_end(o);
}

static void api_relays(struct broker *b, struct ns_out *o)
{
	char a[NS_ADDRSTRLEN];
	size_t i;

	ns_out_arr_begin(o, NULL);
	for (i = 0; i < b->cfg->nrelays; i++) {
		const struct peer *p = b->relays[i];

		if (!p)
			continue;
		ns_out_obj_begin(o, NULL);
		ns_out_str(o, "name", p->name);
		out_ep(o, "observed_address", &p->observed);
		ns_out_str(o, "relay_address",
			   ns_addr_str(p->relay_addr.family, p->relay_addr.addr, a, sizeof(a)));
		ns_out_u64(o, "active_splices", p->load);
		ns_out_u64(o, "pending_requests", p->pending);
		if (p->echo_port)
			ns_out_u64(o, "echo_port", p->echo_port);
		else
			ns_out_null(o, "echo_port");
		if (p->disc_port)
			ns_out_u64(o, "discovery_port", p->disc_port);
		else
			ns_out_null(o, "discovery_port");
		ns_out_u64(o, "ports_in_use", sess_relay_ports(b, p->name));
		out_time(o, "connected_since", p->since);
		ns_out_obj_end(o);
	}
	ns_out_arr_end(o);
}

static void api_services(struct broker *b, struct ns_out *o)
{
	const struct service *s;
	size_t i;

	ns_out_arr_begin(o, NULL);
	for (i = 0; i < b->cfg->nagents; i++) {
		const struct peer *p = b->agents[i];

		for (s = p ? p->services : NULL; s; s = s->next) {
			ns_out_obj_begin(o, NULL);
			ns_out_str(o, "name", s->name);
			ns_out_str(o, "agent", p->name);
			ns_out_fmt(o, "service", "%s/%s", p->name, s->name);
			ns_out_str(o, "proto", s->proto == IPPROTO_UDP ? "udp" : "tcp");
			ns_out_bool(o, "compress", s->compress);
			ns_out_bool(o, "encrypt", !s->plain);
			ns_out_obj_end(o);
		}
	}
	ns_out_arr_end(o);
}

static void api_sessions(struct broker *b, struct ns_out *o)
{
	const struct session *s;
	bool relay;

	ns_out_arr_begin(o, NULL);
	for (s = b->sess_head; s; s = s->next) {
		relay = s->path == NS_PATH_RELAY;
		ns_out_obj_begin(o, NULL);
		ns_out_fmt(o, "id", "%016llx", (unsigned long long)s->id);
		ns_out_fmt(o, "service", "%s/%s", s->prov_name, s->service);
		ns_out_str(o, "kind", s->public ? "public" : "agent");
		ns_out_str(o, "subscriber", s->sub_name);
		if (s->public)
			out_ep(o, "client", &s->client);
		else
			ns_out_null(o, "client");
		ns_out_str(o, "provider", s->prov_name);
		ns_out_str(o, "proto", s->proto == IPPROTO_UDP ? "udp" : "tcp");
		ns_out_str(o, "transport", s->transport == IPPROTO_UDP ? "udp" : "tcp");
		ns_out_bool(o, "encrypted", !s->plain);
		if (s->parent) {
			ns_out_fmt(o, "parent", "%016llx", (unsigned long long)s->parent);
			ns_out_u64(o, "port", s->port);
		} else {
			ns_out_null(o, "parent");
			ns_out_u64(o, "flows", s->flows);
		}
		ns_out_str(o, "alg", s->alg[0] ? s->alg : NULL);
		ns_out_str(o, "path", ns_path_name(s->path));
		if (relay && s->state != SESS_OFFERED)
			ns_out_str(o, "mode", mode_name(s->mode));
		else
			ns_out_null(o, "mode");
		ns_out_str(o, "relay", relay ? s->relay_name : NULL);
		ns_out_str(o, "relay_reason", relay && s->relay_why[0] ? s->relay_why : NULL);
		ns_out_str(o, "provider_nat", s->prov_nat[0] ? s->prov_nat : NULL);
		ns_out_str(o, "subscriber_nat", s->sub_nat[0] ? s->sub_nat : NULL);
		if (relay && s->splice_id)
			ns_out_u64(o, "splice_id", s->splice_id);
		else
			ns_out_null(o, "splice_id");
		ns_out_str(o, "state", sess_state_name(s->state));
		ns_out_u64(o, "bytes", s->bytes_ab + s->bytes_ba);
		ns_out_u64(o, "bytes_ab", s->bytes_ab);
		ns_out_u64(o, "bytes_ba", s->bytes_ba);
		ns_out_u64(o, "packets", s->packets);
		out_time(o, "started", s->started);
		if (s->state == SESS_ESTABLISHED || s->state == SESS_CLOSED)
			ns_out_u64(o, "setup_ms", s->setup_ms);
		else
			ns_out_null(o, "setup_ms");
		ns_out_str(o, "reason", s->why[0] ? s->why : NULL);
		ns_out_obj_end(o);
	}
	ns_out_arr_end(o);
}

static void metrics(struct broker *b, FILE *f)
{
	const struct broker_stats *st = &b->st;
	struct public_counts pc;
	static const int paths[] = { NS_PATH_DIRECT, NS_PATH_REVERSE, NS_PATH_RELAY,
				     NS_PATH_PUNCH };
	size_t i;

	ns_prom_u64(f, "natsplice_agents_connected", "gauge", "Agents logged in.", b->agents_online);
	ns_prom_u64(f, "natsplice_relays_connected", "gauge", "Relays logged in.", b->relays_online);
	ns_prom_u64(f, "natsplice_connections", "gauge",
	       "Control connections, logged in or not.", b->npeers);
	ns_prom_u64(f, "natsplice_services", "gauge", "Services published.", b->nservices);
	ns_prom_u64(f, "natsplice_sessions_negotiating", "gauge",
	       "Tunnels being negotiated.", b->nactive);
	ns_prom_head(f, "natsplice_sessions_total", "counter", "Tunnels negotiated, by path.");
	for (i = 0; i < 4; i++)
		fprintf(f, "natsplice_sessions_total{path=\"%s\"} %llu\n", ns_path_name(paths[i]),
			(unsigned long long)st->sessions[paths[i]]);
	ns_prom_head(f, "natsplice_sessions_failed_total", "counter",
		    "Tunnel requests that failed, by reason.");
	for (i = 0; i < FAIL_MAX; i++)
		fprintf(f, "natsplice_sessions_failed_total{reason=\"%s\"} %llu\n",
			fail_reason_name(i), (unsigned long long)st->failed[i]);
	ns_prom_u64(f, "natsplice_sessions_retried_total", "counter",
	       "Pure splices a relay refused, retried in passive mode (not failures).",
	       st->retried);
	ns_prom_head(f, "natsplice_session_setup_seconds", "summary",
		    "Time from CONNECT to the last CONNECT_INFO.");
	fprintf(f, "natsplice_session_setup_seconds_sum %.3f\n", st->setup_ms_sum / 1000.0);
	fprintf(f, "natsplice_session_setup_seconds_count %llu\n",
		(unsigned long long)st->setup_count);
	ns_prom_u64(f, "natsplice_logins_total", "counter", "Successful logins.", st->logins);
	ns_prom_u64(f, "natsplice_login_failures_total", "counter", "Refused logins.",
	       st->login_failures);
	ns_prom_u64(f, "natsplice_broker_logins_insecure_total", "counter",
	       "Logins over plain text (insecure: true).", st->logins_insecure);
	ns_prom_u64(f, "natsplice_broker_plain_refused_total", "counter",
	       "Plain-text control connections refused (no insecure: true).",
	       st->plain_refused);
	ns_prom_u64(f, "natsplice_broker_tls_failed_total", "counter",
	       "TLS handshakes that failed or did not finish within login-timeout.",
	       st->tls_failed);
	ns_prom_head(f, "natsplice_broker_limit_hits_total", "counter",
		    "Requests or connections refused by a limit, by limit: one agent's "
		    "(services, tunnel_rate, sessions, pair_splices, msg_rate) or a door's "
		    "(unauth, unauth_per_source, login_size, login_backoff, output_buffer).");
	for (i = 0; i < LIM_MAX; i++)
		fprintf(f, "natsplice_broker_limit_hits_total{limit=\"%s\"} %llu\n",
			limit_name(i), (unsigned long long)st->limit_hits[i]);
	ns_prom_u64(f, "natsplice_broker_unauth_connections", "gauge",
	       "Control connections not logged in yet (max-unauth).", b->nunauth);
	ns_prom_u64(f, "natsplice_malformed_total", "counter",
	       "Peers closed or answered for a malformed message.", st->malformed);
	ns_prom_u64(f, "natsplice_connections_accepted_total", "counter",
	       "Control connections accepted.", st->accepted);
	ns_prom_head(f, "natsplice_probes_total", "counter",
		    "Reachability probes of agents' listen ports, by result.");
	fprintf(f, "natsplice_probes_total{result=\"reachable\"} %llu\n",
		(unsigned long long)st->probes_ok);
	fprintf(f, "natsplice_probes_total{result=\"unreachable\"} %llu\n",
		(unsigned long long)st->probes_failed);
	ns_prom_head(f, "natsplice_relay_splices_active", "gauge",
		    "Splices a relay holds (SPLICE_READY minus SPLICE_DONE).");
	for (i = 0; i < b->cfg->nrelays; i++) {
		if (!b->relays[i])
			continue;
		fputs("natsplice_relay_splices_active{relay=\"", f);
		ns_prom_label(f, b->relays[i]->name);
		fprintf(f, "\"} %u\n", b->relays[i]->load);
	}
	out_nat_metrics(b, f);
	ns_prom_head(f, "natsplice_broker_relay_choice_total", "counter",
		    "Relay sessions by how their relay was chosen: rtt (the smallest sum of "
		    "both agents' round trips), load (none measured: the least loaded), "
		    "unreachable (no relay answers both agents' probes: the least loaded).");
	for (i = 0; i < RELAY_BY_MAX; i++)
		fprintf(f, "natsplice_broker_relay_choice_total{by=\"%s\"} %llu\n",
			relay_by_name(i), (unsigned long long)st->relay_by[i]);
	ns_prom_u64(f, "natsplice_relay_splices_done_total", "counter",
	       "Splices the relays reported finished.", st->splices_done);
	ns_prom_u64(f, "natsplice_relay_bytes_total", "counter",
	       "Bytes relayed, both directions, of finished splices.", st->relay_bytes);
	ns_prom_u64(f, "natsplice_relay_packets_total", "counter",
	       "Packets relayed, of finished splices.", st->relay_packets);
	public_counts(b, NULL, &pc);
	ns_prom_u64(f, "natsplice_broker_public_ports", "gauge",
	       "Services' public ports open on a relay (expose:).", pc.open);
	ns_prom_u64(f, "natsplice_broker_public_sessions", "gauge",
	       "Public ports' clients given to their provider, not reported done yet.", pc.live);
	ns_prom_u64(f, "natsplice_broker_public_sessions_total", "counter",
	       "Public ports' clients given to their provider (sessions of kind public; also "
	       "counted in natsplice_sessions_total{path=\"relay\"}).", st->public_sessions);
	ns_prom_head(f, "natsplice_broker_public_refused_total", "counter",
		    "Public ports' clients the broker had the relay reset, by reason: "
		    "not_found (the provider or its service is gone), limit (max-conns).");
	fprintf(f, "natsplice_broker_public_refused_total{reason=\"not_found\"} %llu\n",
		(unsigned long long)st->public_refused[0]);
	fprintf(f, "natsplice_broker_public_refused_total{reason=\"limit\"} %llu\n",
		(unsigned long long)st->public_refused[1]);
	ns_prom_u64(f, "natsplice_start_time_seconds", "gauge", "When the broker started (Unix time).",
	       (unsigned long long)b->started);
}

/* ---- requests (lib/http.c serves them) ---- */

/* A dashboard file (dashboard.c): static, never freed; served without a
 * token (it holds no data: the page's scripts fetch the API with one). */
static enum MHD_Result on_public(void *data, struct ns_http_req *req, bool *served)
{
	struct MHD_Connection *c = req->conn;
	struct dashboard_file df;
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (dashboard_file(req->url, &df))
		return MHD_NO;
	*served = true;
	r = MHD_create_response_from_buffer(df.len, (void *)df.data, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, df.type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(r, "Content-Security-Policy", DASHBOARD_CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

#define DISCOVER_PREFIX	"/api/v1/agents/"
#define DISCOVER_SUFFIX	"/discover"

/* POST /api/v1/agents/NAME/discover: test that agent's NAT again (202;
 * the result shows in /api/v1/agents, nat_tested, in a few seconds). */
static enum MHD_Result api_discover(struct broker *b, struct ns_http_req *req)
{
	const char *name = req->url + sizeof(DISCOVER_PREFIX) - 1;
	size_t n = strlen(name) - (sizeof(DISCOVER_SUFFIX) - 1);
	char who[BROKER_NAME_MAX + 1];
	struct peer *p = NULL;
	int idx, err;

	if (strcmp(req->method, MHD_HTTP_METHOD_POST))
		return ns_http_not_allowed(req->conn, "POST");
	if (n && n < sizeof(who)) {
		memcpy(who, name, n);
		who[n] = '\0';
		idx = cfg_agent_index(b->cfg, who);
		p = idx < 0 ? NULL : b->agents[idx];
	}
	if (!p)
		return ns_http_respond_text(req->conn, MHD_HTTP_NOT_FOUND,
					    "no such agent logged in\n");
	err = discovery_again(p);
	if (err == -ENOTSUP)
		return ns_http_respond_text(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
					    "NAT discovery is off: broker.yaml has no "
					    "discovery-address\n");
	if (err == -EHOSTUNREACH)
		return ns_http_respond_text(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
					    "NAT discovery waits for its relay (discovery-relay) "
					    "to log in\n");
	if (err == -EBUSY)
		return ns_http_respond_text(req->conn, MHD_HTTP_CONFLICT,
					    "its NAT discovery is running already\n");
	return ns_http_respond_text(req->conn, MHD_HTTP_ACCEPTED,
				    "NAT discovery started: see nat_tested in /api/v1/agents\n");
}

/* Does url name an API's action: /api/v1/agents/NAME/discover? */
static bool is_discover(const char *url)
{
	size_t n = strlen(url), pre = sizeof(DISCOVER_PREFIX) - 1, suf = sizeof(DISCOVER_SUFFIX) - 1;

	return n > pre + suf && !strncmp(url, DISCOVER_PREFIX, pre) &&
	       !strcmp(url + n - suf, DISCOVER_SUFFIX);
}

static enum MHD_Result on_request(void *data, struct ns_http_req *req)
{
	static const struct {
		const char *url;
		void (*fn)(struct broker *b, struct ns_out *o);
	} api[] = {
		{ "/api/v1/agents", api_agents },
		{ "/api/v1/relays", api_relays },
		{ "/api/v1/services", api_services },
		{ "/api/v1/sessions", api_sessions },
		{ "/api/v1/public", public_api },
	};
	struct broker *b = data;
	struct MHD_Connection *c = req->conn;
	const char *url = req->url;
	struct ns_http_body body;
	struct ns_out *o;
	size_t i;
	FILE *f;

	if (is_discover(url))
		return api_discover(b, req);
	if (strcmp(req->method, MHD_HTTP_METHOD_GET) && strcmp(req->method, MHD_HTTP_METHOD_HEAD))
		return ns_http_not_allowed(c, "GET, HEAD");
	for (i = 0; i < sizeof(api) / sizeof(api[0]) && strcmp(url, api[i].url); i++)
		;
	if (i == sizeof(api) / sizeof(api[0]) && strcmp(url, "/metrics"))
		return ns_http_respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
	f = ns_http_body_open(&body);
	if (!f)
		return MHD_NO;
	if (i < sizeof(api) / sizeof(api[0])) {
		o = ns_out_new(f, 1, 0);
		if (o)
			api[i].fn(b, o);
		ns_out_free(o);
	} else {
		metrics(b, f);
	}
	return ns_http_respond_body(c, MHD_HTTP_OK, &body, i < sizeof(api) / sizeof(api[0]) ?
				    NS_HTTP_TYPE_JSON : NS_HTTP_TYPE_PROM);
}

int http_start(struct broker *b)
{
	const struct broker_cfg *c = b->cfg;
	struct ns_http_cfg hc = {
		.what = "HTTP API",
		.tokens_key = "http-tokens",
		.addr = &c->http,
		.addr_len = c->http_len,
		.tokens = &c->http_tokens,
		.fn = on_request,
		.data = b,
		.public_fn = on_public,
		.max_body = BROKER_API_MAX_BODY,	/* POSTs carry none; a few bytes allowed */
	};

	if (!c->http_len)
		return 0;
	return ns_http_start(b->loop, &hc, &b->http);
}

void http_stop(struct broker *b)
{
	ns_http_stop(b->http);
	b->http = NULL;
}
