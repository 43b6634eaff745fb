// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `natsplice broker agents|services|sessions|relays|discover`: a running
 * broker's HTTP API (/api/v1/...), read with libcurl, parsed with jansson, printed
 * through ns_out: -j writes the broker's objects whole, text a table of
 * their main members, from the same calls.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "util.h"

#define BROKER_URL_DEFAULT	"http://127.0.0.1:9770"
#define BROKER_CONNECT_TIMEOUT_S 5
#define BROKER_TIMEOUT_S	15
#define BROKER_DISCOVER_WAIT_S	30	/* discover: for the result, by default */
#define BROKER_DISCOVER_POLL_MS	300

static void broker_usage(FILE *f)
{
	fprintf(f,
"Usage: natsplice [-j|-p] broker { agents | services | sessions | relays }\n"
"                         [--url URL] [--token TOKEN]\n"
"       natsplice [-j|-p] broker discover AGENT [--no-wait] [--timeout S]\n"
"                         [--url URL] [--token TOKEN]\n"
"\n"
"Read a running natsplice-broker's HTTP API (`http:` in broker.yaml):\n"
"agents    logged-in agents: address seen, reachable, published services\n"
"services  published services\n"
"sessions  tunnels negotiated and their records: path, relay, bytes (relayed\n"
"          sessions: counted by the relay when the splice ends)\n"
"relays    logged-in relays: active splices, pending requests, ports in use\n"
"discover  test AGENT's NAT again now (mapping, filtering, port kept, hairpin;\n"
"          TCP and UDP; needs discovery-address in broker.yaml) and print what\n"
"          it found; the broker's next sessions for AGENT go by the new result\n"
"\n"
"Text: a table of the main members; -j: every member, as the broker sends it.\n"
"The broker also serves a dashboard of the same at its URL (/).\n"
"\n"
"  --url URL      the broker's HTTP API (or $NATSPLICE_BROKER_URL;\n"
"                 default %s)\n"
"  --token TOKEN  sent as \"Authorization: Bearer TOKEN\" (or\n"
"                 $NATSPLICE_BROKER_TOKEN, which other users cannot see in ps)\n"
"  --no-wait      discover: return once the broker started the tests\n"
"  --timeout S    discover: wait this long for the result (default %u)\n",
		BROKER_URL_DEFAULT, BROKER_DISCOVER_WAIT_S);
}

static const struct ns_out_col agent_cols[] = {
	{ "name", NULL },
	{ "observed_address", "ADDRESS" },
	{ "reachable", NULL },
	{ "services", NULL },
	{ "connected_since", "SINCE" },
	{ NULL, NULL },
};

static const struct ns_out_col service_cols[] = {
	{ "service", NULL },
	{ "proto", NULL },
	{ "encrypt", "ENCRYPTED" },
	{ "compress", "COMPRESSED" },
	{ NULL, NULL },
};

static const struct ns_out_col session_cols[] = {
	{ "id", NULL },
	{ "service", NULL },
	{ "subscriber", NULL },
	{ "path", NULL },
	{ "mode", NULL },
	{ "relay", NULL },
	{ "transport", NULL },
	{ "encrypted", NULL },
	{ "state", NULL },
	{ "bytes", NULL },
	{ "started", NULL },
	{ NULL, NULL },
};

static const struct ns_out_col nat_cols[] = {
	{ "proto", NULL },
	{ "blocked", NULL },
	{ "nat", NULL },
	{ "mapping", NULL },
	{ "filtering", NULL },
	{ "port_preserved", "PORT KEPT" },
	{ "hairpin", NULL },
	{ "mapped_address", "MAPPED" },
	{ NULL, NULL },
};

static const struct ns_out_col relay_cols[] = {
	{ "name", NULL },
	{ "relay_address", "ADDRESS" },
	{ "active_splices", "SPLICES" },
	{ "pending_requests", "PENDING" },
	{ "ports_in_use", "PORTS" },
	{ "connected_since", "SINCE" },
	{ NULL, NULL },
};

/* A parsed JSON value through ns_out (key NULL in arrays and at top level). */
static void out_json(struct ns_out *o, const char *key, json_t *v)
{
	const char *k;
	json_t *m;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		ns_out_obj_begin(o, key);
		json_object_foreach(v, k, m)
			out_json(o, k, m);
		ns_out_obj_end(o);
		break;
	case JSON_ARRAY:
		ns_out_arr_begin(o, key);
		json_array_foreach(v, i, m)
			out_json(o, NULL, m);
		ns_out_arr_end(o);
		break;
	case JSON_STRING:
		ns_out_str(o, key, json_string_value(v));
		break;
	case JSON_INTEGER:
		ns_out_s64(o, key, json_integer_value(v));
		break;
	case JSON_REAL:		/* the API has none; written as a string */
		ns_out_fmt(o, key, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		ns_out_bool(o, key, json_is_true(v));
		break;
	case JSON_NULL:
		ns_out_null(o, key);
		break;
	}
}

/* method (GET, POST) url with token; the answer in *body (NUL-terminated,
 * malloc'd), its status in *code. 0, or the exit status with the error
 * printed: no answer, or 401/403. */
static int http_call(struct cli *cli, const char *method, const char *url, const char *token,
		     char **body, long *code)
{
	char err[CURL_ERROR_SIZE] = "", *auth = NULL;
	struct curl_slist *hdrs = NULL, *h;
	size_t len = 0;
	FILE *f = NULL;
	CURL *c = NULL;
	CURLcode res;
	int ret = 1;

	*body = NULL;
	*code = 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return cli_fail(cli, 1, "cannot initialise libcurl");
	c = curl_easy_init();
	f = open_memstream(body, &len);
	h = curl_slist_append(NULL, "Accept: application/json");
	if (!c || !f || !h) {
		curl_slist_free_all(h);
		ret = cli_fail(cli, 1, "out of memory");
		goto out;
	}
	hdrs = h;
	if (token && *token) {
		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0 ||
		    !(h = curl_slist_append(hdrs, auth))) {
			ret = cli_fail(cli, 1, "out of memory");
			goto out;
		}
		hdrs = h;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "natsplice/" NS_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);	/* the default writer: fwrite */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)BROKER_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)BROKER_TIMEOUT_S);
	if (!strcmp(method, "POST"))
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	res = curl_easy_perform(c);
	if (res != CURLE_OK) {
		ret = cli_fail(cli, 1, "cannot reach the broker at %s: %s (is natsplice-broker "
			       "running, with http: in its broker.yaml? choose it with --url "
			       "or $NATSPLICE_BROKER_URL)", url, err[0] ? err : curl_easy_strerror(res));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	if (*code == 401 || *code == 403)
		ret = cli_fail(cli, 1, "the broker at %s answered %ld %s: %s", url, *code,
			       *code == 401 ? "Unauthorized" : "Forbidden", token && *token ?
			       "it refused the token" : "it wants an API token (--token or "
			       "$NATSPLICE_BROKER_TOKEN)");
	else
		ret = 0;
out:
	if (f && fclose(f) && !ret)
		ret = cli_fail(cli, 1, "out of memory");
	if (ret) {
		free(*body);
		*body = NULL;
	}
	curl_slist_free_all(hdrs);
	free(auth);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	return ret;
}

/* GET url as a JSON array into *doc. 0, or the exit status with the error
 * printed. */
static int get_array(struct cli *cli, const char *url, const char *token, json_t **doc)
{
	char *body;
	json_error_t jerr;
	long code;
	int ret;

	*doc = NULL;
	ret = http_call(cli, "GET", url, token, &body, &code);
	if (ret)
		return ret;
	if (code == 404)
		ret = cli_fail(cli, 1, "the broker at %s answered 404 Not Found: not a "
			       "natsplice broker's API, or an older broker", url);
	else if (code != 200)
		ret = cli_fail(cli, 1, "the broker at %s answered HTTP %ld", url, code);
	else if (!(*doc = json_loads(body, 0, &jerr)) || !json_is_array(*doc))
		ret = cli_fail(cli, 1, "the broker at %s sent no JSON array%s%s", url,
			       *doc ? "" : ": ", *doc ? "" : jerr.text);
	if (ret) {
		json_decref(*doc);
		*doc = NULL;
	}
	free(body);
	return ret;
}

/* The options every broker command takes, and discover's. */
struct broker_args {
	const char *base, *token;	/* the URL as given, without trailing '/' */
	size_t base_len;
	bool no_wait;
	unsigned int timeout_s;
	bool help;
};

/* Parse argv (argv[0] the command) into ba; argv[optind..] left for the
 * command. 0, or the exit status with the error printed. */
static int broker_args(struct cli *cli, const char *cmd, bool discover, int argc, char **argv,
		       struct broker_args *ba)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	__u32 v;
	int opt;

	*ba = (struct broker_args){ .base = getenv("NATSPLICE_BROKER_URL"),
				    .token = getenv("NATSPLICE_BROKER_TOKEN"),
				    .timeout_s = BROKER_DISCOVER_WAIT_S };
	optind = 0;	/* 0: re-initialise getopt (the global '+' mode) */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {	/* AGENT anywhere */
		if ((opt == 'n' || opt == 'T') && !discover)
			opt = '?';
		switch (opt) {
		case 'u':
			ba->base = optarg;
			break;
		case 't':
			ba->token = optarg;
			break;
		case 'n':
			ba->no_wait = true;
			break;
		case 'T':
			if (ns_parse_u32(optarg, &v) || !v || v > 3600)
				return cli_fail(cli, 2, "broker %s: --timeout wants seconds, "
						"1..3600, not '%s'", cmd, optarg);
			ba->timeout_s = v;
			break;
		case 'h':
			broker_usage(stdout);
			ba->help = true;
			return 0;
		default:
			return cli_fail(cli, 2, "broker %s: unknown option or missing value "
					"'%s'; try 'natsplice broker help'", cmd, argv[optind - 1]);
		}
	}
	if (!ba->base || !*ba->base)
		ba->base = BROKER_URL_DEFAULT;
	if (ba->token && strpbrk(ba->token, "\r\n"))
		return cli_fail(cli, 2, "the token must be one line");
	ba->base_len = strlen(ba->base);
	while (ba->base_len && ba->base[ba->base_len - 1] == '/')
		ba->base_len--;
	return 0;
}

enum broker_list { L_AGENTS, L_SERVICES, L_SESSIONS, L_RELAYS };

/* argv[0] is the command as typed (perhaps a prefix): which says l. */
static int broker_list(struct cli *cli, enum broker_list l, int argc, char **argv)
{
	static const struct {
		const char *cmd;
		const struct ns_out_col *cols;
	} lists[] = {
		[L_AGENTS] = { "agents", agent_cols },
		[L_SERVICES] = { "services", service_cols },
		[L_SESSIONS] = { "sessions", session_cols },
		[L_RELAYS] = { "relays", relay_cols },
	};
	const char *cmd = lists[l].cmd;
	struct broker_args ba;
	json_t *doc = NULL;
	char *url = NULL;
	int ret;

	ret = broker_args(cli, cmd, false, argc, argv, &ba);
	if (ret || ba.help)
		return ret;
	if (optind < argc)
		return cli_fail(cli, 2, "broker %s: unexpected argument '%s'", cmd, argv[optind]);
	if (asprintf(&url, "%.*s/api/v1/%s", (int)ba.base_len, ba.base, cmd) < 0)
		return cli_fail(cli, 1, "out of memory");
	ret = get_array(cli, url, ba.token, &doc);
	if (!ret) {
		ns_out_table(cli->out, lists[l].cols);
		out_json(cli->out, NULL, doc);
	}
	json_decref(doc);
	free(url);
	return ret;
}

/* The agent called name in the broker's /api/v1/agents (borrowed from
 * agents), or NULL. */
static json_t *agent_in(json_t *agents, const char *name)
{
	json_t *a;
	size_t i;

	json_array_foreach(agents, i, a)
		if (json_is_string(json_object_get(a, "name")) &&
		    !strcmp(json_string_value(json_object_get(a, "name")), name))
			return a;
	return NULL;
}

/* What discovery found for the agent, a row per transport. */
static void out_nat_rows(struct cli *cli, json_t *agent)
{
	static const char *const proto[] = { "tcp", "udp" };
	json_t *rows = json_array(), *r;
	size_t i;

	for (i = 0; rows && i < 2; i++) {
		char key[16];

		snprintf(key, sizeof(key), "nat_%s", proto[i]);
		r = json_object_get(agent, key);
		r = json_is_object(r) ? json_deep_copy(r) : json_object();
		if (!r)
			continue;
		json_object_set_new(r, "proto", json_string(proto[i]));
		json_array_append_new(rows, r);
	}
	ns_out_table(cli->out, nat_cols);
	out_json(cli->out, NULL, rows);
	json_decref(rows);
}

/* natsplice broker discover AGENT: POST .../agents/AGENT/discover, then
 * (unless --no-wait) poll the agents until AGENT's tests are done. */
static int broker_discover(struct cli *cli, int argc, char **argv)
{
	struct broker_args ba;
	char *url = NULL, *list = NULL, *body = NULL, *esc = NULL;
	json_t *doc = NULL, *a;
	const char *name;
	struct timespec ts = { 0, BROKER_DISCOVER_POLL_MS * 1000000L };
	unsigned int waited_ms = 0;
	long code;
	int ret;
	CURL *c;

	ret = broker_args(cli, "discover", true, argc, argv, &ba);
	if (ret || ba.help)
		return ret;
	if (optind + 1 != argc)
		return cli_fail(cli, 2, optind < argc ? "broker discover: one AGENT, not more" :
				"broker discover: which agent? (natsplice broker discover AGENT)");
	name = argv[optind];
	c = curl_easy_init();
	esc = c ? curl_easy_escape(c, name, 0) : NULL;
	curl_easy_cleanup(c);
	if (!esc || asprintf(&url, "%.*s/api/v1/agents/%s/discover", (int)ba.base_len, ba.base,
			     esc) < 0 ||
	    asprintf(&list, "%.*s/api/v1/agents", (int)ba.base_len, ba.base) < 0) {
		ret = cli_fail(cli, 1, "out of memory");
		goto out;
	}
	ret = http_call(cli, "POST", url, ba.token, &body, &code);
	if (ret)
		goto out;
	if (code != 202 && code != 409) {	/* 409: running already; its result will do */
		size_t n = body ? strlen(body) : 0;

		while (n && body[n - 1] == '\n')
			body[--n] = '\0';
		ret = cli_fail(cli, 1, "the broker did not test %s: %s", name,
			       code == 404 && n ? "no agent of that name is logged in" :
			       n ? body : "HTTP error (an older broker?)");
		goto out;
	}
	for (;;) {
		ret = get_array(cli, list, ba.token, &doc);
		if (ret)
			goto out;
		a = agent_in(doc, name);
		if (!a) {
			ret = cli_fail(cli, 1, "%s logged out during its NAT discovery", name);
			goto out;
		}
		if (ba.no_wait || (json_is_false(json_object_get(a, "nat_testing")) &&
				   !json_is_null(json_object_get(a, "nat_tested"))))
			break;
		if (waited_ms >= ba.timeout_s * 1000) {
			ret = cli_fail(cli, 1, "%s: no NAT discovery result in %u s (an older "
				       "agent? its log says more)", name, ba.timeout_s);
			goto out;
		}
		json_decref(doc);
		doc = NULL;
		nanosleep(&ts, NULL);
		waited_ms += BROKER_DISCOVER_POLL_MS;
	}
	if (ba.no_wait && !cli->json)
		printf("%s: NAT discovery started (natsplice broker agents -j: nat_tested)\n", name);
	else if (ba.no_wait)
		out_json(cli->out, NULL, a);
	else
		out_nat_rows(cli, a);
out:
	json_decref(doc);
	curl_free(esc);
	free(body);
	free(list);
	free(url);
	return ret;
}

static int broker_agents(struct cli *cli, int argc, char **argv)
{
	return broker_list(cli, L_AGENTS, argc, argv);
}

static int broker_services(struct cli *cli, int argc, char **argv)
{
	return broker_list(cli, L_SERVICES, argc, argv);
}

static int broker_sessions(struct cli *cli, int argc, char **argv)
{
	return broker_list(cli, L_SESSIONS, argc, argv);
}

static int broker_relays(struct cli *cli, int argc, char **argv)
{
	return broker_list(cli, L_RELAYS, argc, argv);
}

int cmd_broker(struct cli *cli, int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
		{ "agents", broker_agents },
		{ "services", broker_services },
		{ "sessions", broker_sessions },
		{ "relays", broker_relays },
		{ "discover", broker_discover },
		{ NULL, NULL },
	};

	return cli_object(cli, "broker", cmds, broker_usage, argc, argv);
}
