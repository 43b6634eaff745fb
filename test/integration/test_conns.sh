#!/bin/bash
# Many short connections through the relay path (issue 9): 20,000 new client
# connections, one request and one answer each, through the two-NAT bed with
# the default settings of the broker, the relay and the agents, all succeed,
# twice in a row. Before issue 9 the relay ran out of its relay ports ("relay
# port range 20000-20999 exhausted"): a closed splice held its ports for the
# close grace.
#
# The tests are not timed (they must pass on a slow, loaded machine); each
# run prints its duration and rate, and the benchmark checks the speed.
#   COUNT       connections per run (default 20000)
#   INFLIGHT    connections in flight at once (default 48)
#   RUN_TIMEOUT seconds one run may take (default 900)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

NSCONN=${NSCONN:-$TOP/test/tools/nsconn}
COUNT=${COUNT:-20000}
INFLIGHT=${INFLIGHT:-48}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}

# conns_bed MODE: broker, relay (MODE) and the agents, all with their default
# settings (the relay's --ports is sys.sh's 20000-20999, its default too) but
# one agent's limits (README, Limits): one pair opening hundreds of short
# relayed connections a second is more than max-splices-per-pair and
# tunnel-rate and msg-rate let one agent do by default, and this test is
# about capacity; an nsconn server on HA published as home-nas/conn,
# subscribed on HB's 127.0.0.1:19000.
conns_bed() {
	need jq nft
	[ -x "$BROKER_BIN" ] || skip "natsplice-broker is not built"
	[ -x "$AGENT_BIN" ] || skip "natsplice-agent is not built"
	[ -x "$NSCONN" ] || skip "nsconn is not built (make -C $TOP/test)"
	topo_nat
	start_broker "tunnel-rate: 0
max-sessions-per-agent: 0
max-splices-per-pair: 0
msg-rate: 0"
	start_sys_relay "$1"
	bg "$HA" "$TMP/server.log" "$NSCONN" --listen 127.0.0.1:9000
	SERVER_PID=$BG_PID
	wait_for_line "$TMP/server.log" 'listening on' 10 "$SERVER_PID" ||
		fail "nsconn server did not start: $(tail -n 1 "$TMP/server.log")"
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: conn, target: 127.0.0.1:9000, proto: tcp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/conn, listen: 127.0.0.1:19000, proto: tcp }'
}

# conns_run N: one run of COUNT connections from HB; fails unless all succeed.
conns_run() {
	local out=$TMP/run$1.out rc=0 line

	bg "$HB" "$out" "$NSCONN" --connect 127.0.0.1:19000 --count "$COUNT" \
		--inflight "$INFLIGHT" --timeout 60 --verbose
	wait_pid "$BG_PID" "$RUN_TIMEOUT" || rc=$?
	[ "$rc" != 124 ] || fail "run $1: not done in $RUN_TIMEOUT s: $(tail -n 1 "$out")"
	line=$(grep '^conns ' "$out") || fail "run $1: nsconn exit $rc: $(tail -n 1 "$out")"
	echo "run $1: $line"
	if [ "$rc" != 0 ] || [[ "$line" != "conns $COUNT ok $COUNT failed 0 "* ]]; then
		fail "run $1: $line"
	fi
}

splices_at_most() {
	local n

	n=$(splice_count) && [ "$n" -le "$1" ]
}

# conns_test MODE: two runs in a row; then the relay's table drains.
conns_test() {
	local relayed left failed

	conns_bed "$1"
	conns_run 1
	conns_run 2
	relayed=$(broker_api /api/v1/sessions | jq '[.[] | select(.path == "relay")] | length')
	echo "relayed sessions listed by the broker: $relayed"
	[ "$relayed" -gt 0 ] || fail "no session took the relay path"
	! grep -h exhausted "$RELAY_LOG" "$BROKER_LOG" ||
		fail "the relay ran out of ports: $(grep -h -m 1 exhausted "$RELAY_LOG" "$BROKER_LOG")"
	failed=$(broker_api /metrics | awk '/^natsplice_sessions_failed_total/ { n += $2 } END { print n + 0 }')
	[ "$failed" = 0 ] || fail "the broker counted $failed failed sessions"
	# the closed splices leave the relay's table after the close grace, the
	# pooled tunnels (idle) after pool-idle: in the end none is left
	left=$(splice_count) || fail "natsplice splice list failed"
	echo "splices listed after the runs: $left"
	wait_until 120 splices_at_most 0 ||
		fail "the relay still lists $(splice_count) splices 120 s after the runs"
	kill -TERM "$SERVER_PID"
	wait_pid "$SERVER_PID" 10 || fail "the nsconn server did not exit on SIGTERM"
	echo "server: $(grep '^served ' "$TMP/server.log")"
}

# The relay as it starts by default: --mode auto, which is TC on the bed's veth.
test_conns_relay() {
	conns_test default
}

# The XDP dataplane (the bed makes XDP_TX on veth work, see lib.sh).
test_conns_relay_xdp() {
	conns_test xdp
}

run_tests
