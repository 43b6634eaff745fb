#!/usr/bin/env bash
# What one authenticated agent may take (broker/limits.c): services,
# tunnel requests per second, sessions, relay splices per pair of agents.
# In each test a greedy agent (mallory, on the public host, subscribing to
# home-nas behind NAT: relay path) runs into one limit on purpose while
# laptop (behind the other NAT) downloads from home-nas through the relay:
# the download arrives whole, laptop's new tunnels still work, the limit is
# logged once (not per request) and counted in /metrics. And -n on settings
# that cannot be safe: refused, or warned about.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=sys.sh
. "$(dirname "$0")/sys.sh"

MiB=$((1 << 20))
MALLORY_SUB='subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18081, proto: tcp, pool: 0 }'

# limits_bed [broker yaml]: broker (+ yaml), relay (TC; closed splices gone
# after 1 s), home-nas publishing web (a random 32 MiB file: a download
# that lasts), laptop subscribing on HB 127.0.0.1:18080 (pool: 0).
# A relay splice counts towards the sessions and pair limits until SPLICE_DONE
# or negotiate-timeout + 2 s after the broker asked for it (its handshake):
# the tests that keep idle tunnels open set negotiate-timeout: 60, so that
# their tunnels still count however slowly this machine opens them.
limits_bed() {
	need_system
	topo_nat
	start_broker "${1:-}"
	start_sys_relay tc --broker-fingerprint "$BROKER_FP" --close-grace 1 --rst-grace 1
	web_pair $((32 * MiB))
}

# bg_download N [CURL ARGS]: laptop's download number N, in the background
# ($DL_PID). The first one of a test is slowed down (--limit-rate) so that it
# runs while the greedy agent is at its limit.
bg_download() {
	local n=$1

	shift
	bg "$HB" "$TMP/dl$n.log" curl -fsS --max-time 120 "$@" -o "$TMP/dl$n.bin" \
		http://127.0.0.1:18080/
	DL_PID=$BG_PID
}

# download_ok N PID: it finished well and its sha256 matches.
download_ok() {
	wait_pid "$2" 150 || fail "laptop's download $1 failed: $(cat "$TMP/dl$1.log")"
	[ "$(sha256sum <"$TMP/dl$1.bin")" = "$(sha256sum <"$TMP/web.bin")" ] ||
		fail "sha256 of laptop's download $1 differs"
}

# hits LIMIT: natsplice_broker_limit_hits_total{limit="LIMIT"}.
hits() {
	broker_api /metrics | awk -v k="natsplice_broker_limit_hits_total{limit=\"$1\"}" \
		'$1 == k { print $2; f = 1 } END { exit !f }'
}

# hits_at_least LIMIT N
hits_at_least() {
	local n

	n=$(hits "$1") && [ "$n" -ge "$2" ]
}

# refused_lines REGEX: the broker's log lines saying a limit refused something.
refused_lines() {
	grep -cE -- "$1.*: refused" "$BROKER_LOG" || true
}

# idle_conn N: a client of mallory's port that sends nothing and waits (the
# web server waits for its request: the tunnel and its relay splice stay).
idle_conn() {
	bg "$PUB" "$TMP/idle$1.log" bash -c 'exec 3<>/dev/tcp/127.0.0.1/18081 && read -r -u 3 x'
	IDLE_PIDS+=("$BG_PID")
}

# established N: the broker counts N established relay sessions of mallory.
mallory_established() {
	local n

	n=$(broker_api /api/v1/sessions |
		jq '[.[] | select(.subscriber == "mallory" and .state == "established")] | length')
	[ "$n" -ge "$1" ]
}

# One agent publishing more than max-services-per-agent: the extra ones are
# refused (ERROR LIMIT, the agent says so), once in the broker's log.
test_services() {
	local i pub='publish:'

	limits_bed "max-services-per-agent: 3"
	bg_download 1 --limit-rate 2M
	DL1=$DL_PID
	for i in 1 2 3 4 5 6; do
		pub="$pub
  - { name: s$i, target: 127.0.0.1:9$i, proto: tcp }"
	done
	start_agent "$PUB" mallory mallory-secret "$pub"
	wait_for_line "$AGENT_LOG" "publish s.: refused by a broker limit: too many services: 3 published, max-services-per-agent is 3" 10 ||
		fail "mallory did not log the refusal: $(tail -n 3 "$AGENT_LOG")"
	[ "$(grep -c 'refused by a broker limit' "$AGENT_LOG")" = 3 ] ||
		fail "mallory logged $(grep -c 'refused by a broker limit' "$AGENT_LOG") refusals, not 3"
	wait_until 10 hits_at_least services 3 || fail "services hits: $(hits services)"
	[ "$(hits services)" = 3 ] || fail "services hits: $(hits services), not 3"
	[ "$(refused_lines 'agent mallory publishes 3 services')" = 1 ] ||
		fail "the broker logged the limit $(refused_lines 'agent mallory publishes') times, not once"
	[ "$(broker_api /api/v1/services | jq '[.[] | select(.agent == "mallory")] | length')" = 3 ] ||
		fail "mallory has $(broker_api /api/v1/services | jq -c '[.[] | select(.agent == "mallory")]') published"
	download_ok 1 "$DL1"
}

# One agent asking for tunnels faster than tunnel-rate (burst tunnel-burst):
# the excess is refused, laptop's tunnels meanwhile are not.
test_tunnel_rate() {
	local i pids=() ok=0

	limits_bed "tunnel-rate: 1
tunnel-burst: 3"
	start_agent "$PUB" mallory mallory-secret "$MALLORY_SUB"
	bg_download 1 --limit-rate 2M
	DL1=$DL_PID
	for i in $(seq 12); do
		nsx "$PUB" curl -fsS --max-time 60 -o "$TMP/m$i.bin" http://127.0.0.1:18081/ \
			2>/dev/null &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		if wait "${pids[$i]}"; then ok=$((ok + 1)); fi
	done
	# 3 at once, then 1/s for as long as curl takes to start them all
	[ "$ok" -ge 3 ] && [ "$ok" -le 9 ] ||
		fail "$ok of mallory's 12 tunnels at once got through (burst 3, 1/s)"
	wait_until 10 hits_at_least tunnel_rate $((12 - ok)) ||
		fail "tunnel_rate hits: $(hits tunnel_rate), $((12 - ok)) tunnels refused"
	[ "$(refused_lines 'agent mallory asks for tunnels faster than tunnel-rate 1/s')" = 1 ] ||
		fail "the broker logged the rate limit $(refused_lines 'tunnel-rate') times, not once"
	grep -E "warning: connect home-nas/web: refused by a broker limit: too many tunnel requests: more than tunnel-rate 1/s \(tunnel-burst 3\)" \
		"$TMP/agent-mallory.log" >/dev/null || fail "mallory did not log the refusal"
	# mallory too says it once, not once per client
	[ "$(grep -c "warning: connect .*refused by a broker limit" "$TMP/agent-mallory.log")" = 1 ] ||
		fail "mallory logged $(grep -c "warning: connect .*refused by a broker limit" \
		"$TMP/agent-mallory.log") warnings about the limit, not 1"
	grep -E 'natsplice_sessions_failed_total\{reason="limit"\} [1-9]' <<<"$(broker_api /metrics)" \
		>/dev/null || fail "no failed session counted with reason limit"
	# laptop is another agent: its own new tunnels while mallory is limited
	bg_download 2
	download_ok 2 "$DL_PID"
	download_ok 1 "$DL1"
}

# One agent holding max-sessions-per-agent relay splices (idle clients): its
# next tunnel is refused, laptop's is not; once its clients go (SPLICE_DONE)
# it may again.
test_sessions() {
	local i
	IDLE_PIDS=()

	limits_bed "max-sessions-per-agent: 4
negotiate-timeout: 60"
	start_agent "$PUB" mallory mallory-secret "$MALLORY_SUB"
	bg_download 1 --limit-rate 2M
	DL1=$DL_PID
	for i in 1 2 3 4; do idle_conn "$i"; done
	wait_until 60 mallory_established 4 || fail "mallory's 4 idle tunnels did not come up"
	for i in 5 6 7; do idle_conn "$i"; done
	wait_until 30 hits_at_least sessions 3 || fail "sessions hits: $(hits sessions)"
	[ "$(refused_lines 'agent mallory has 4 sessions being negotiated or with a relay splice in its handshake')" = 1 ] ||
		fail "the broker logged the sessions limit $(refused_lines 'agent mallory has') times, not once"
	grep -E "refused by a broker limit: too many sessions: 4 being negotiated or with a relay splice in its handshake, max-sessions-per-agent is 4" \
		"$AGENT_LOG" >/dev/null || fail "mallory did not log the refusal"
	bg_download 2
	download_ok 2 "$DL_PID"
	download_ok 1 "$DL1"
	# mallory's clients go: the relay reports the splices done, the count drops
	for i in "${IDLE_PIDS[@]}"; do _lib_kill "$i"; done
	wait_until 60 nsx "$PUB" curl -fsS --max-time 60 -o "$TMP/m.bin" http://127.0.0.1:18081/ ||
		fail "mallory got no tunnel after its clients closed"
	[ "$(sha256sum <"$TMP/m.bin")" = "$(sha256sum <"$TMP/web.bin")" ] ||
		fail "sha256 of mallory's download differs"
}

# Relay splices per pair: mallory and home-nas at max-splices-per-pair;
# laptop and home-nas are another pair. A reload raises the limit.
test_pair_splices() {
	local i
	IDLE_PIDS=()

	# (user: root: the broker reads its file in $TMP again at the reload)
	limits_bed "max-splices-per-pair: 3
negotiate-timeout: 60
user: root"
	start_agent "$PUB" mallory mallory-secret "$MALLORY_SUB"
	bg_download 1 --limit-rate 2M
	DL1=$DL_PID
	for i in 1 2 3; do idle_conn "$i"; done
	wait_until 60 mallory_established 3 || fail "mallory's 3 idle tunnels did not come up"
	for i in 4 5; do idle_conn "$i"; done
	wait_until 30 hits_at_least pair_splices 2 || fail "pair_splices hits: $(hits pair_splices)"
	[ "$(refused_lines 'agent mallory holds 3 relay splices with home-nas')" = 1 ] ||
		fail "the broker logged the pair limit $(refused_lines 'relay splices with') times, not once"
	grep -E "refused by a broker limit: too many relay splices between mallory and home-nas: 3, max-splices-per-pair is 3" \
		"$AGENT_LOG" >/dev/null || fail "mallory did not log the refusal"
	# the provider heard of it too (its offer was withdrawn), in its own words
	grep -E "refused by a broker limit" "$TMP/agent-home-nas.log" >/dev/null ||
		fail "home-nas did not log why the session failed"
	bg_download 2
	download_ok 2 "$DL_PID"
	# SIGHUP: a higher limit for the next request
	sed -i 's/^max-splices-per-pair: 3$/max-splices-per-pair: 5/' "$BROKER_CONF"
	kill -HUP "$BROKER_PID"
	wait_for_line "$BROKER_LOG" "reload: .*max-splices-per-pair 3 -> 5" 10 ||
		fail "the reload did not say max-splices-per-pair 3 -> 5"
	idle_conn 6
	wait_until 60 mallory_established 4 || fail "no 4th splice for mallory after the reload"
	download_ok 1 "$DL1"
}

# The issue as it was seen, with the default limits: a greedy agent opens 70
# tunnels to one provider within their handshake window and keeps them; it
# gets max-splices-per-pair (64) of them, the relay keeps room, laptop's new
# tunnel works. Once the window is over, the established ones no longer
# count (they hold no relay port): a 71st tunnel comes up.
test_defaults() {
	local i
	IDLE_PIDS=()

	limits_bed "negotiate-timeout: 20"
	start_agent "$PUB" mallory mallory-secret "$MALLORY_SUB"
	bg_download 1 --limit-rate 2M
	DL1=$DL_PID
	for i in $(seq 70); do idle_conn "$i"; done
	wait_until 90 hits_at_least pair_splices 6 || fail "pair_splices hits: $(hits pair_splices)"
	wait_until 60 mallory_established 64 || fail "mallory's 64 tunnels did not come up"
	! mallory_established 65 || fail "mallory holds more than 64 relay splices with home-nas"
	[ "$(hits pair_splices)" = 6 ] || fail "pair_splices hits: $(hits pair_splices), not 6"
	[ "$(hits tunnel_rate)" = 0 ] && [ "$(hits sessions)" = 0 ] ||
		fail "other limits hit with the defaults: $(broker_api /metrics | grep limit_hits)"
	bg_download 2
	download_ok 2 "$DL_PID"
	download_ok 1 "$DL1"
	NEXT_IDLE=71
	wait_until 60 another_tunnel ||
		fail "no 65th tunnel for mallory after the handshake window (22 s)"
}

# another_tunnel: one more idle client of mallory's; true if it got its tunnel.
another_tunnel() {
	idle_conn "$NEXT_IDLE"
	NEXT_IDLE=$((NEXT_IDLE + 1))
	wait_until 5 mallory_established 65
}

# -n on settings that cannot be safe: refused (exit status not 0) or warned
# about (exit 0, "warning: ..." on stderr, "configuration OK").
test_unsafe_settings() {
	local out rc

	need_system
	# broker: a 5-byte secret is refused, a 10-byte one warned about
	printf 'agents:\n  - { name: a, secret: 12345 }\n' >"$TMP/b1.yaml"
	rc=0; out=$("$BROKER_BIN" -n -f "$TMP/b1.yaml" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "a 5-byte secret was accepted: $out"
	[[ $out == *"the secret of agent 'a' is 5 bytes: at least 8 are needed"* ]] ||
		fail "refusal: $out"
	[[ $out != *"configuration OK"* ]] || fail "-n said OK: $out"
	printf 'agents:\n  - { name: a, secret: 1234567890 }\n' >"$TMP/b2.yaml"
	rc=0; out=$("$BROKER_BIN" -n -f "$TMP/b2.yaml" 2>&1) || rc=$?
	[ "$rc" = 0 ] || fail "a 10-byte secret was refused: $out"
	[[ $out == *"warning: the secret of agent 'a' (line 2) is 10 bytes: 16 or more"* ]] ||
		fail "no warning: $out"
	# an empty file: nobody can log in
	: >"$TMP/b3.yaml"
	rc=0; out=$("$BROKER_BIN" -n -f "$TMP/b3.yaml" 2>&1) || rc=$?
	[ "$rc" = 0 ] && [[ $out == *"warning: no agents"* ]] && [[ $out == *"configuration OK"* ]] ||
		fail "empty broker.yaml: status $rc: $out"
	# insecure, and the HTTP API open off loopback
	printf 'insecure: true\nhttp: 0.0.0.0:9770\nagents:\n  - { name: a, secret: 0123456789abcdef }\n' \
		>"$TMP/b4.yaml"
	rc=0; out=$("$BROKER_BIN" -n -f "$TMP/b4.yaml" 2>&1) || rc=$?
	[ "$rc" = 0 ] && [[ $out == *"warning: insecure: true"* ]] &&
		[[ $out == *"warning: http is on a non-loopback address without http-tokens"* ]] ||
		fail "insecure, open http: status $rc: $out"
	# a good file: no warning at all
	printf 'http: 127.0.0.1:9770\nagents:\n  - { name: a, secret: 0123456789abcdef }\n' \
		>"$TMP/b5.yaml"
	out=$("$BROKER_BIN" -n -f "$TMP/b5.yaml" 2>&1) || fail "a good file refused: $out"
	[ "$out" = "configuration OK" ] || fail "a good file: $out"
	# agent: short secret, insecure
	printf 'broker: 192.0.2.1\nname: a\nsecret: abc\ninsecure: true\n' >"$TMP/a1.yaml"
	rc=0; out=$("$AGENT_BIN" -n -f "$TMP/a1.yaml" 2>&1) || rc=$?
	[ "$rc" = 0 ] && [[ $out == *"warning: the secret is 3 bytes"* ]] &&
		[[ $out == *"the broker refuses a secret shorter than 8 bytes"* ]] &&
		[[ $out == *"warning: insecure: true"* ]] || fail "agent: status $rc: $out"
	# relay: timers of 0 that make no sense are refused, a grace of 0 warned
	# about, and so are open metrics, a short secret, insecure
	for t in half-open-timeout idle-tcp idle-udp; do
		rc=0; out=$("$NATSPLICE" relay run -n --dev eth0 --address 192.0.2.20 --$t 0 2>&1) ||
			rc=$?
		[ "$rc" != 0 ] && [[ $out == *"bad value for $t: '0' (seconds, 1-"* ]] ||
			fail "relay $t 0: status $rc: $out"
	done
	rc=0
	out=$("$NATSPLICE" relay run -n --dev eth0 --address 192.0.2.20 --close-grace 0 \
		--metrics 0.0.0.0:9400 --broker 192.0.2.1:7700 --name r --secret abc --insecure 2>&1) ||
		rc=$?
	[ "$rc" = 0 ] && [[ $out == *"warning: close-grace 0"* ]] &&
		[[ $out == *"warning: metrics is on a non-loopback address without metrics-tokens"* ]] &&
		[[ $out == *"warning: the secret is 3 bytes"* ]] &&
		[[ $out == *"warning: insecure: true"* ]] || fail "relay: status $rc: $out"
}

run_tests
