#!/bin/bash
# Relay choice by round trip (issue 16): agents measure their round trip to
# every relay (the relay's echo-port) and the broker gives a relay session
# the relay nearest to both; a relay that is stopped, or that stops
# answering, is avoided within seconds. The host has no sch_netem: relay1
# sits behind a user-space delay line (test/tools/nsdelay) instead.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

RELAY2_4=203.0.113.21
FAR_MS=30	# relay1's delay line, each way

# rtt_relay NS NAME SECRET IPV4 LOG: a relay NAME (TC mode) on IPV4
# registered with the broker (its own control socket and pins);
# RELAY_PID_<NAME> is its pid.
rtt_relay() {
	local ns=$1 name=$2 secret=$3 ip=$4 log=$5

	if ! mountpoint -q "$TMP/bpffs"; then
		mkdir -p "$TMP/bpffs"
		mount -t bpf bpf "$TMP/bpffs"
		echo "$TMP/bpffs" >>"$TMP/mounts"
	fi
	bg "$ns" "$log" "$NATSPLICE" relay run --dev eth0 --mode tc --address "$ip" \
		--pin-dir "$TMP/bpffs/$name" --ports 20000-20999 --socket "$TMP/$name.sock" \
		--broker "$BROKER4:$BROKER_PORT" \
		--name "$name" --secret "$secret" --broker-fingerprint "$BROKER_FP"
	eval "RELAY_PID_$name=$BG_PID"
	wait_for_line "$log" "registered with broker" "$READY_TIMEOUT" "$BG_PID" ||
		fail "$name did not register: $(tail -n 3 "$log")"
}

# rtt_of AGENT RELAY: what the broker's API says AGENT measured to RELAY
# (µs, "null" for no answer, "" while not measured).
rtt_of() {
	broker_api /api/v1/agents |
		jq -r --arg a "$1" --arg r "$2" '.[] | select(.name == $a) | .relay_rtt[] |
			select(.relay == $r) | .rtt_us'
}

measured() {	# measured AGENT RELAY: a round trip is known (not "no answer")
	local v

	v=$(rtt_of "$1" "$2")
	[ -n "$v" ] && [ "$v" != null ]
}

no_answer() {	# no_answer AGENT RELAY: the agent reported no answer
	[ "$(rtt_of "$1" "$2")" = null ]
}

# The bed: relay1 far (a delay line), relay2 near; provider home-nas on HA
# (a web server), subscriber laptop on HB, both behind NAT (relay path).
rtt_bed() {
	need_system
	[ -x "$NSDELAY" ] || skip "test/tools/nsdelay is not built"
	topo_nat
	RELAY2=${NSP}relay2
	ns_add "$RELAY2"
	inet_host "$RELAY2" relay2 "$RELAY2_4"
	# relay1 in its own namespace behind the delay line (not topo_nat's RELAY)
	RELAY1=${NSP}far
	ns_add "$RELAY1"
	delayed_host "$RELAY1" far 203.0.113.22 "$FAR_MS"
	start_broker '  - { name: relay2, secret: relay2-secret }'
	rtt_relay "$RELAY1" relay1 relay-secret 203.0.113.22 "$TMP/relay1.log"
	rtt_relay "$RELAY2" relay2 relay2-secret "$RELAY2_4" "$TMP/relay2.log"
	random_file "$TMP/web.bin" $((2 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret 'relay-probe-interval: 1
publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
	start_agent "$HB" laptop laptop-secret 'relay-probe-interval: 1
subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp }'
	local a r
	for a in home-nas laptop; do
		for r in relay1 relay2; do
			wait_until 30 measured "$a" "$r" ||
				fail "$a has not measured $r: $(broker_api /api/v1/agents)"
		done
	done
}

# rtt_download: one download through laptop's port; sets SESSION (its record).
rtt_download() {
	http_get "$HB" http://127.0.0.1:18080/ "$TMP/got.bin" || fail "the download failed"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
	SESSION=$(broker_api /api/v1/sessions | jq -c 'last')
}

session_relay() {
	jq -r .relay <<<"$SESSION"
}

# The relay nearer to both agents wins over the one the load alone would
# take (relay1: the first of two idle relays); the record says why; the
# figures are what the delay line makes them.
test_rtt_nearest() {
	local far near

	rtt_bed
	far=$(rtt_of laptop relay1)
	near=$(rtt_of laptop relay2)
	echo "laptop: relay1 $far µs, relay2 $near µs"
	[ "$far" -ge $((2 * FAR_MS * 1000)) ] || fail "relay1's round trip $far µs < 2 x $FAR_MS ms"
	[ "$near" -lt $((FAR_MS * 1000)) ] || fail "relay2's round trip $near µs is not small"
	rtt_download
	echo "session: $SESSION"
	[ "$(jq -r .path <<<"$SESSION")" = relay ] || fail "path $(jq -r .path <<<"$SESSION")"
	[ "$(session_relay)" = relay2 ] || fail "the session went to $(session_relay), not relay2"
	jq -r .relay_reason <<<"$SESSION" | grep -q "^round trip" ||
		fail "relay_reason: $(jq -r .relay_reason <<<"$SESSION")"
	broker_api /metrics | grep -q '^natsplice_broker_relay_choice_total{by="rtt"} [1-9]' ||
		fail "the metric did not count a choice by round trip"
	grep -q "relay relay1 (203.0.113.22:7701): round trip" "$TMP/agent-laptop.log" ||
		fail "the agent did not log its round trip to relay1"
}

# The nearer relay stopped: the broker sees its connection close, and new
# sessions go to the other at once.
test_rtt_stopped() {
	local t0 t

	rtt_bed
	rtt_download
	[ "$(session_relay)" = relay2 ] || fail "the first session went to $(session_relay)"
	kill -TERM "$RELAY_PID_relay2"
	t0=$SECONDS
	wait_until 30 eval '! broker_api /api/v1/relays | jq -e ".[] | select(.name == \"relay2\")" >/dev/null' ||
		fail "the broker still lists relay2"
	rtt_download
	t=$((SECONDS - t0))
	[ "$(session_relay)" = relay1 ] || fail "after relay2 stopped: $(session_relay)"
	echo "relay2 stopped: the next session went to relay1 after $t s"
}

# The nearer relay stops answering (its host drops the agents' packets; its
# broker connection stays up): the agents report no answer within seconds
# and new sessions go to the other relay.
test_rtt_silent() {
	local t0 t

	rtt_bed
	rtt_download
	[ "$(session_relay)" = relay2 ] || fail "the first session went to $(session_relay)"
	nsx "$RELAY2" nft -f - <<-NFT
	table inet silent {
		chain input {
			type filter hook input priority 0; policy accept;
			ip saddr { $NATA4, $NATB4 } drop
		}
	}
	NFT
	t0=$SECONDS
	wait_until 30 no_answer laptop relay2 || fail "laptop still reports relay2 answering"
	wait_until 30 no_answer home-nas relay2 || fail "home-nas still reports relay2 answering"
	t=$((SECONDS - t0))
	echo "relay2 silent: both agents reported it after $t s"
	grep -q "relay relay2 .*: no answer to" "$TMP/agent-laptop.log" ||
		fail "the agent did not log relay2's silence"
	broker_api /api/v1/relays | jq -e '.[] | select(.name == "relay2")' >/dev/null ||
		fail "relay2 logged out (its broker connection should have stayed up)"
	rtt_download
	[ "$(session_relay)" = relay1 ] || fail "with relay2 silent: $(session_relay)"
	# it answers again: measured again, and chosen again
	nsx "$RELAY2" nft delete table inet silent
	wait_until 30 measured laptop relay2 || fail "relay2 not measured again"
	wait_until 30 measured home-nas relay2 || fail "relay2 not measured again"
	rtt_download
	[ "$(session_relay)" = relay2 ] || fail "relay2 answers again, but: $(session_relay)"
}

run_tests
