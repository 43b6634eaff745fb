// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `natsplice broker agents|services|sessions|relays`: a running broker's
 * HTTP API (/api/v1/...), read with libcurl, parsed with jansson, printed
 * through ns_out: -j writes the broker's objects whole, text a table of
 * their main members, from the same calls.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"

#define BROKER_URL_DEFAULT	"http://127.0.0.1:9770"
#define BROKER_CONNECT_TIMEOUT_S 5
#define BROKER_TIMEOUT_S	15

static void broker_usage(FILE *f)
{
	fprintf(f,
"Usage: natsplice [-j|-p] broker { agents | services | sessions | relays }\n"
"                         [--url URL] [--token TOKEN]\n"
"\n"
"Read a running natsplice-broker's HTTP API (`http:` in broker.yaml):\n"
"agents    logged-in agents: address seen, reachable, published services\n"
"services  published services\n"
"sessions  tunnels negotiated and their records: path, relay, bytes (relayed\n"
"          sessions: counted by the relay when the splice ends)\n"
"relays    logged-in relays: active splices, pending requests, ports in use\n"
"\n"
"Text: a table of the main members; -j: every member, as the broker sends it.\n"
"The broker also serves a dashboard of the same at its URL (/).\n"
"\n"
"  --url URL      the broker's HTTP API (or $NATSPLICE_BROKER_URL;\n"
"                 default %s)\n"
"  --token TOKEN  sent as \"Authorization: Bearer TOKEN\" (or\n"
"                 $NATSPLICE_BROKER_TOKEN, which other users cannot see in ps)\n",
		BROKER_URL_DEFAULT);
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

/* GET url into *body (NUL-terminated, malloc'd). 0, or the exit status
 * with the error printed. */
static int http_get(struct cli *cli, const char *url, const char *token, char **body)
{
	char err[CURL_ERROR_SIZE] = "", *auth = NULL;
	struct curl_slist *hdrs = NULL, *h;
	size_t len = 0;
	FILE *f = NULL;
	CURL *c = NULL;
	long code = 0;
	CURLcode res;
	int ret = 1;

	*body = NULL;
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
	res = curl_easy_perform(c);
	if (res != CURLE_OK) {
		ret = cli_fail(cli, 1, "cannot reach the broker at %s: %s (is natsplice-broker "
			       "running, with http: in its broker.yaml? choose it with --url "
			       "or $NATSPLICE_BROKER_URL)", url, err[0] ? err : curl_easy_strerror(res));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code == 401 || code == 403)
		ret = cli_fail(cli, 1, "the broker at %s answered %ld %s: %s", url, code,
			       code == 401 ? "Unauthorized" : "Forbidden", token && *token ?
			       "it refused the token" : "it wants an API token (--token or "
			       "$NATSPLICE_BROKER_TOKEN)");
	else if (code == 404)
		ret = cli_fail(cli, 1, "the broker at %s answered 404 Not Found: not a "
			       "natsplice broker's API, or an older broker", url);
	else if (code != 200)
		ret = cli_fail(cli, 1, "the broker at %s answered HTTP %ld", url, code);
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

enum broker_list { L_AGENTS, L_SERVICES, L_SESSIONS, L_RELAYS };

/* argv[0] is the command as typed (perhaps a prefix): which says l. */
static int broker_list(struct cli *cli, enum broker_list l, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		const char *cmd;
		const struct ns_out_col *cols;
	} lists[] = {
		[L_AGENTS] = { "agents", agent_cols },
		[L_SERVICES] = { "services", service_cols },
		[L_SESSIONS] = { "sessions", session_cols },
		[L_RELAYS] = { "relays", relay_cols },
	};
	const char *base = getenv("NATSPLICE_BROKER_URL");
	const char *token = getenv("NATSPLICE_BROKER_TOKEN");
	const char *cmd = lists[l].cmd;
	char *url = NULL, *body = NULL;
	json_error_t jerr;
	json_t *doc = NULL;
	int opt, ret;
	size_t n;

	optind = 0;	/* 0: re-initialise getopt (the global '+' mode) */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			base = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'h':
			broker_usage(stdout);
			return 0;
		default:
			return cli_fail(cli, 2, "broker %s: unknown option or missing value "
					"'%s'; try 'natsplice broker help'", cmd, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(cli, 2, "broker %s: unexpected argument '%s'", cmd, argv[optind]);
	if (!base || !*base)
		base = BROKER_URL_DEFAULT;
	if (token && strpbrk(token, "\r\n"))
		return cli_fail(cli, 2, "the token must be one line");
	n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	if (asprintf(&url, "%.*s/api/v1/%s", (int)n, base, cmd) < 0)
		return cli_fail(cli, 1, "out of memory");
	ret = http_get(cli, url, token, &body);
	if (ret)
		goto out;
	doc = json_loads(body, 0, &jerr);
	if (!doc || !json_is_array(doc)) {
		ret = cli_fail(cli, 1, "the broker at %s sent no JSON array%s%s", url,
			       doc ? "" : ": ", doc ? "" : jerr.text);
		goto out;
	}
	ns_out_table(cli->out, lists[l].cols);
	out_json(cli->out, NULL, doc);
out:
	json_decref(doc);
	free(body);
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
		{ NULL, NULL },
	};

	return cli_object(cli, "broker", cmds, broker_usage, argc, argv);
}
