#!/usr/bin/env bash
# The relay's GET /metrics (--metrics, relay_metrics.c) and the bearer tokens
# and limits of lib/http.c, on the relay and on the broker's HTTP API; the
# example alerting rules (examples/natsplice-alerts.yml).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=sys.sh
. "$(dirname "$0")/sys.sh"

MPORT=9400
TOKEN=metrics-token-0123456789abcdef
TOKEN2=second-metrics-token-0123456789
MiB=$((1 << 20))

murl() {
	echo "http://$(hostport "$RELAY4" "$MPORT")/metrics"
}

# scrape NS [TOKEN]: GET /metrics from NS into $TMP/m.txt (TOKEN "" : none).
scrape() {
	local ns=$1 tok=${2-$TOKEN}

	nsx "$ns" curl -fsS --max-time 5 ${tok:+-H "Authorization: Bearer $tok"} "$(murl)" \
		>"$TMP/m.txt"
}

# http_code NS URL [CURL ARGS]: the status of a GET ("000": no answer).
http_code() {
	local ns=$1 url=$2

	shift 2
	nsx "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" "$url" || true
}

# mval 'NAME{LABELS}': that sample's value in $TMP/m.txt (fails if absent).
mval() {
	awk -v k="$1" '$1 == k { print $2; f = 1 } END { exit !f }' "$TMP/m.txt" ||
		fail "no sample $1 in /metrics"
}

# msum NAME: the sum of a family's samples.
msum() {
	awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }' \
		"$TMP/m.txt"
}

check_metrics_parse() {
	promtool check metrics <"$TMP/m.txt" >"$TMP/promtool.out" 2>&1 ||
		fail "promtool check metrics: $(head -n 3 "$TMP/promtool.out")"
}

# metrics_bed MODE [YAML]: the relay bed; relay.yaml with metrics on RELAY4
# and the two tokens (a list), plus YAML lines.
metrics_bed() {
	need jq curl promtool
	topo_relay
	cat >"$TMP/relay.yaml" <<-YAML
	metrics: $RELAY4:$MPORT
	metrics-tokens:
	  - $TOKEN
	  - $TOKEN2
	${2:-}
	YAML
	start_relay "$1" -f "$TMP/relay.yaml"
}

# xfer SIZE_A SIZE_B: a passive splice carrying that much each way (both ends
# check nothing here: test_relay.sh does; this only makes traffic).
xfer() {
	splice_add
	bg "$A" "$TMP/a.out" "$NSXFER" --timeout 30 --connect "$RELAY4:$PORT_A" --send "$1"
	local pa=$BG_PID
	bg "$B" "$TMP/b.out" "$NSXFER" --timeout 30 --connect "$RELAY4:$PORT_B" --send "$2"
	wait_pid "$pa" 120 || fail "A: nsxfer failed: $(tail -n 1 "$TMP/a.out")"
	wait_pid "$BG_PID" 120 || fail "B: nsxfer failed: $(tail -n 1 "$TMP/b.out")"
}

# The splices of `splice list` by proto, mode and state equal natsplice_splices.
check_states() {
	local list=$1 key want got

	[ "$(msum natsplice_splices)" = "$(jq length <<<"$list")" ] ||
		fail "natsplice_splices adds up to $(msum natsplice_splices), splice list has $(jq length <<<"$list")"
	for key in $(jq -r '.[] | "natsplice_splices{proto=\"\(.proto)\",mode=\"\(.mode)\",state=\"\(.state)\"}"' \
			<<<"$list" | sort -u); do
		want=$(jq -r --arg k "$key" '[.[] | "natsplice_splices{proto=\"\(.proto)\",mode=\"\(.mode)\",state=\"\(.state)\"}" | select(. == $k)] | length' <<<"$list")
		got=$(mval "$key")
		[ "$got" = "$want" ] || fail "$key is $got, splice list has $want"
	done
}

# The counters of /metrics are those of `stats` (read before and after) and of
# `splice list` (idle splices: nothing moves) plus GONE, a JSON array of the
# splices deleted so far (as `splice del` printed them).
check_counters() {
	local s1 s2 list k v lo hi dirs gone=${GONE:-[]}

	s1=$(nsc -j stats)
	list=$(nsc -j splice list)
	scrape "$A"
	s2=$(nsc -j stats)
	check_metrics_parse
	for k in $(jq -r 'keys[]' <<<"$s1"); do
		case $k in
		pass | tx | redirect | punt | drop | fallback | handshake)
			v=$(mval "natsplice_dataplane_packets_total{verdict=\"$k\"}") ;;
		*) v=$(mval "natsplice_dataplane_drops_total{reason=\"$k\"}") ;;
		esac
		lo=$(jq -r ".$k" <<<"$s1")
		hi=$(jq -r ".$k" <<<"$s2")
		[ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ] ||
			fail "/metrics says $k $v, natsplice stats $lo then $hi"
	done
	check_states "$list"
	dirs=$(jq -r '[([.[].bytes_ab_ba[0]] | add // 0), ([.[].bytes_ab_ba[1]] | add // 0),
		([.[].packets] | add // 0)] | @tsv' < <(jq -s add <<<"$list$gone"))
	set -- $dirs
	[ "$(mval 'natsplice_splice_bytes_total{direction="a_to_b"}')" = "$1" ] ||
		fail "bytes a_to_b: /metrics $(mval 'natsplice_splice_bytes_total{direction="a_to_b"}'), splice list $1"
	[ "$(mval 'natsplice_splice_bytes_total{direction="b_to_a"}')" = "$2" ] ||
		fail "bytes b_to_a: /metrics $(mval 'natsplice_splice_bytes_total{direction="b_to_a"}'), splice list $2"
	[ "$(msum natsplice_splice_packets_total)" = "$3" ] ||
		fail "packets: /metrics $(msum natsplice_splice_packets_total), splice list $3"
}

# A relay carrying splices: /metrics parses, needs a token, and its counters
# are those of `natsplice stats` and `natsplice -j splice list`.
t_counters() {
	local mode=$1 waiting est bytes

	# close-grace: finished splices stay listed while the test compares
	metrics_bed "$mode" "close-grace: 600"
	grep -q "open to anyone" "$RELAY_LOG" && fail "the relay warned of no tokens, with two"
	[ "$(http_code "$A" "$(murl)")" = 401 ] || fail "/metrics without a token: not 401"
	nsx "$A" curl -s -D - -o /dev/null "$(murl)" | grep -i '^WWW-Authenticate: Bearer' >/dev/null ||
		fail "401 without WWW-Authenticate: Bearer"
	[ "$(http_code "$A" "$(murl)" -H "Authorization: Bearer ${TOKEN}x")" = 401 ] ||
		fail "/metrics with a wrong token: not 401"
	[ "$(http_code "$A" "$(murl)" -H "Authorization: Bearer $TOKEN2")" = 200 ] ||
		fail "/metrics with the second token: not 200"
	[ "$(http_code "$A" "http://$RELAY4:$MPORT/nothing" -H "Authorization: Bearer $TOKEN")" = 404 ] ||
		fail "/nothing: not 404"
	scrape "$A"
	check_metrics_parse
	[ "$(mval natsplice_relay_ports)" = 1000 ] || fail "natsplice_relay_ports is not 1000"
	[ "$(mval natsplice_relay_ports_in_use)" = 0 ] || fail "ports in use without splices"

	splice_add
	waiting=$SPLICE_ID
	xfer $((3 * MiB)) $((1 * MiB))
	est=$SPLICE_ID
	xfer $((2 * MiB)) 1000
	splice_add --proto udp
	wait_until 10 eval '[ "$(nsc -j splice list | jq "[.[] | select(.state == \"closed\")] | length")" = 2 ]' ||
		fail "the two transfers' splices did not reach closed"
	check_counters
	[ "$(mval natsplice_relay_ports_in_use)" = 4 ] ||
		fail "ports in use: $(mval natsplice_relay_ports_in_use), not 4 (two waiting splices)"
	[ "$(mval natsplice_splices_created_total)" = 4 ] || fail "splices created is not 4"
	[ "$(mval natsplice_splice_setup_seconds_count)" = 2 ] ||
		fail "setup histogram: $(mval natsplice_splice_setup_seconds_count) observations, not 2"
	[ "$(mval 'natsplice_splice_setup_seconds_bucket{le="+Inf"}')" = 2 ] ||
		fail "setup histogram: +Inf bucket is not the count"
	[ "$(mval natsplice_splice_bytes_total'{direction="a_to_b"}')" -ge $((5 * MiB)) ] ||
		fail "fewer bytes a_to_b than were sent"

	# A finished splice's traffic stays in the counters.
	bytes=$(msum natsplice_splice_bytes_total)
	GONE=$(nsc -j splice del "$est" | jq -c '[.]')
	nsc splice del "$waiting" >/dev/null
	check_counters
	[ "$(msum natsplice_splice_bytes_total)" = "$bytes" ] ||
		fail "bytes went from $bytes to $(msum natsplice_splice_bytes_total) when a splice was deleted"
	[ "$(mval 'natsplice_splices_ended_total{reason="deleted"}')" = 2 ] ||
		fail "splices ended (deleted) is not 2"
	[ "$(mval natsplice_relay_ports_in_use)" = 2 ] || fail "ports in use is not 2 (the UDP splice)"
	grep -q "^natsplice_relay_info{.*mode=\"$mode\".*} 1$" "$TMP/m.txt" ||
		fail "no natsplice_relay_info of mode $mode"
	grep -q '^process_resident_memory_bytes [1-9]' "$TMP/m.txt" || fail "no process metrics"
}

test_metrics_tc() { t_counters tc; }
test_metrics_userspace() { t_counters userspace; }

# hold N SRC: N idle connections to /metrics from address SRC of A (socat
# each, sending nothing); their pids are killed at teardown.
hold() {
	local i

	HOLD_PIDS=()
	for i in $(seq "$1"); do
		bg "$A" /dev/null socat -u "TCP:$RELAY4:$MPORT,bind=$2" /dev/null
		HOLD_PIDS+=("$BG_PID")
	done
}

# ESTABLISHED connections to the metrics port, as the relay's host sees them.
held() {
	nsx "$RELAY" ss -Htn state established "( sport = :$MPORT )" | wc -l
}

storm() {
	local ip

	for ip in 192.0.2.101 192.0.2.102 192.0.2.103 192.0.2.104; do
		hold 16 "$ip"
		STORM+=("${HOLD_PIDS[@]}")
	done
	wait_until 10 eval '[ "$(held)" -ge 64 ]' || fail "only $(held) idle connections held"
}

# 64 idle connections (the connection limit; 16 from each of four addresses,
# the per-address limit) shut /metrics out while they last, but no longer:
# closed by their clients, or by the relay after its idle timeout (10 s).
test_metrics_storm() {
	local ip pid t0

	need socat
	metrics_bed tc
	for ip in 192.0.2.101 192.0.2.102 192.0.2.103 192.0.2.104; do
		ip -n "$A" addr add "$ip/24" dev eth0
	done
	scrape "$B"
	# a 17th connection from one address is refused at once
	STORM=()
	hold 16 192.0.2.101
	STORM+=("${HOLD_PIDS[@]}")
	wait_until 10 eval '[ "$(held)" -ge 16 ]' || fail "only $(held) idle connections held"
	[ "$(http_code "$A" "$(murl)" --interface 192.0.2.101 -H "Authorization: Bearer $TOKEN")" = 000 ] ||
		fail "a 17th connection from one address was answered"
	scrape "$B" || fail "/metrics unavailable to another address while one holds 16"
	for pid in "${STORM[@]}"; do _lib_kill "$pid"; done
	wait_until 5 eval '[ "$(held)" = 0 ]' || fail "$(held) connections left"

	STORM=()
	storm
	[ "$(http_code "$B" "$(murl)" -H "Authorization: Bearer $TOKEN")" != 200 ] ||
		fail "/metrics answered beyond the connection limit"
	for pid in "${STORM[@]}"; do _lib_kill "$pid"; done
	wait_until 5 scrape "$B" || fail "/metrics unavailable after the storm's clients went"

	# again, and the clients stay: the idle timeout closes them
	STORM=()
	storm
	t0=$SECONDS
	wait_until 30 scrape "$B" || fail "/metrics unavailable 30 s after the storm began"
	[ $((SECONDS - t0)) -ge 5 ] || fail "/metrics answered beyond the connection limit"
	check_metrics_parse
	kill -0 "$RELAY_PID" || fail "the relay died"
}

# The broker's HTTP API with http-tokens: 401 without, 200 with; no warning.
# Without: open, with a warning at start.
test_broker_http_tokens() {
	local url=http://$BROKER_HTTP/api/v1/agents

	need_system
	BROKER=${NSP}broker
	ns_add "$BROKER"
	ip -n "$BROKER" addr add "$BROKER4/32" dev lo
	start_broker "http-tokens: [broker-token-0123456789abcdef]"
	[ "$(http_code "$BROKER" "$url")" = 401 ] || fail "/api/v1/agents without a token: not 401"
	[ "$(http_code "$BROKER" "http://$BROKER_HTTP/metrics")" = 401 ] ||
		fail "/metrics without a token: not 401"
	[ "$(http_code "$BROKER" "$url" -H "Authorization: Bearer broker-token-0123456789abcdeX")" = 401 ] ||
		fail "a wrong token: not 401"
	BROKER_TOKEN=broker-token-0123456789abcdef broker_api /api/v1/agents | jq -e 'length == 0' \
		>/dev/null || fail "with the token: no JSON array"
	BROKER_TOKEN=broker-token-0123456789abcdef broker_api /metrics >"$TMP/m.txt"
	check_metrics_parse
	[ "$(http_code "$BROKER" "$url" -X POST -H "Authorization: Bearer broker-token-0123456789abcdef")" = 405 ] ||
		fail "POST: not 405"
	grep -q "open to anyone" "$BROKER_LOG" && fail "warned of no tokens, with one"
	# the dashboard's files hold no data: served without a token; its data is not
	[ "$(http_code "$BROKER" "http://$BROKER_HTTP/")" = 200 ] || fail "the dashboard needs a token"
	[ "$(http_code "$BROKER" "http://$BROKER_HTTP/dashboard/app.js")" = 200 ] ||
		fail "the dashboard's script needs a token"
	[ "$(http_code "$BROKER" "http://$BROKER_HTTP/api/v1/sessions")" = 401 ] ||
		fail "/api/v1/sessions without a token: not 401"
	kill "$BROKER_PID"
	wait_pid "$BROKER_PID" 10 || fail "the broker did not stop"
	start_broker
	grep -q "HTTP API on $BROKER_HTTP is open to anyone who reaches it: no http-tokens" \
		"$BROKER_LOG" || fail "no warning without tokens"
	[ "$(http_code "$BROKER" "$url")" = 200 ] || fail "without tokens: not open"
	# a token that is too short is a config error
	printf 'http: %s\nhttp-tokens: short\n' "$BROKER_HTTP" >"$TMP/bad.yaml"
	! "$BROKER_BIN" -n -f "$TMP/bad.yaml" 2>"$TMP/bad.err" || fail "a short token was accepted"
	grep -q "bad.yaml:2:.*http-tokens" "$TMP/bad.err" || fail "error: $(cat "$TMP/bad.err")"
}

# Nothing secret in any answer of the broker's API while a session runs: no
# agent's or relay's secret, no API token, nothing of the broker's private
# key. A request with an oversized header (64 KiB) is refused (431), and the
# API answers the next one.
test_broker_api_no_secrets() {
	local tok=broker-token-0123456789abcdef path key secret

	direct_bed "http-tokens: [$tok]" $((1 << 20))
	http_get "$HB" http://127.0.0.1:18080/ "$TMP/got.bin" || fail "download failed"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
	: >"$TMP/api.txt"
	for path in /api/v1/agents /api/v1/relays /api/v1/services /api/v1/sessions /metrics \
		/ /dashboard/app.js; do
		BROKER_TOKEN=$tok broker_api "$path" >>"$TMP/api.txt" || fail "GET $path failed"
	done
	grep '"pub/web"\|"web"' "$TMP/api.txt" >/dev/null || fail "the API shows no service"
	# the key's base64 body, a line at a time (64 characters: never by chance)
	key=$(sed -n 2p "$TMP/broker.key")
	for secret in nas-secret laptop-secret pub-secret mallory-secret relay-secret "$tok" \
		"$key"; do
		! grep -F -- "$secret" "$TMP/api.txt" >/dev/null ||
			fail "the API answers with a secret: $secret"
	done
	[ "$(http_code "$BROKER" "http://$BROKER_HTTP/api/v1/agents" \
		-H "Authorization: Bearer $tok" -H "X-Big: $(head -c 65536 /dev/zero | tr '\0' a)")" \
		!= 200 ] || fail "a 64 KiB header was served"
	[ "$(http_code "$BROKER" "http://$BROKER_HTTP/api/v1/agents" \
		-H "Authorization: Bearer $tok")" = 200 ] || fail "no answer after the big request"
}

# examples/natsplice-alerts.yml is valid, and its alerts fire on the series
# of test/integration/alerts_test.yml (and only there).
test_alert_rules() {
	need promtool
	promtool check rules "$TOP/examples/natsplice-alerts.yml" >"$TMP/rules.out" 2>&1 ||
		fail "promtool check rules: $(tail -n 3 "$TMP/rules.out")"
	(cd "$LIB_DIR" && promtool test rules alerts_test.yml) >"$TMP/rtest.out" 2>&1 ||
		fail "promtool test rules: $(grep -m 3 -i -A3 'fail\|error' "$TMP/rtest.out")"
}

run_tests
