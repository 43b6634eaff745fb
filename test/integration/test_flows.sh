#!/bin/bash
# Multi-connection services (issue 11): every connection of one client
# travels as a flow of the one session its first connection negotiated, each
# its own splice; connections the server opens back go the other way.
# Real applications: iperf3 with several streams, iperf2's dual test.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"
. "$(dirname "$0")/apps.sh"

# flows_bed MODE PUBLISH SUBSCRIBE: two NATs, broker, relay; provider on HA,
# subscriber on HB.
flows_bed() {
	need_system
	topo_nat
	start_broker "${FLOWS_BROKER_YAML:-}"
	start_sys_relay "$1"
	start_agent "$HA" home-nas nas-secret "$2"
	start_agent "$HB" laptop laptop-secret "$3"
}

sessions() {
	broker_api /api/v1/sessions
}

# first_sessions: the sessions that are not flows.
first_sessions() {
	sessions | jq '[.[] | select(.parent == null)] | length'
}

# flows_of ID: established flows of session ID.
flows_of() {
	sessions | jq --arg p "$1" '[.[] | select(.parent == $p and .state != "failed")] | length'
}

# Three ports of one service: the first connection negotiates, the next two
# (other ports, from the same client host) are flows on its session, each
# its own relay splice; a port that is no port of the service is refused by
# the provider, and a client with no session yet cannot start on an extra port.
test_ports_share_a_session() {
	local id port

	flows_bed xdp 'publish:
  - { name: multi, target: 127.0.0.1:7000, ports: ["7001-7002", "7005/udp"] }' 'subscribe:
  - { service: home-nas/multi, listen: 127.0.0.1:7000, ports: ["7001-7003", "7005/udp"], pool: 0 }'
	bg "$HA" "$TMP/udp7005.log" socat UDP4-RECVFROM:7005,bind=127.0.0.1,fork PIPE
	# 7000 holds its connection (cat) until the client goes
	bg "$HA" "$TMP/srv7000.log" socat "TCP4-LISTEN:7000,bind=127.0.0.1,reuseaddr,fork" \
		"SYSTEM:echo port-7000; cat"
	for port in 7001 7002 7003; do
		bg "$HA" "$TMP/srv$port.log" socat "TCP4-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
			"SYSTEM:echo port-$port"
	done
	wait_until 10 nsx "$HA" sh -c 'ss -ltn | grep -q 127.0.0.1:7003'
	out=$(nsx "$HB" socat -t 5 - TCP4:127.0.0.1:7001 </dev/null 2>&1) &&
		[ -n "$out" ] && fail "an extra port worked before the session: '$out'"
	grep -q "on port 7001 refused: it has no session yet" "$TMP/agent-laptop.log" ||
		fail "the refusal of a client with no session is not logged"
	# one client holds the first connection open while the others come
	bg "$HB" "$TMP/hold.log" socat -u TCP4:127.0.0.1:7000 "OPEN:$TMP/hold.out,creat"
	wait_until 10 grep -q port-7000 "$TMP/hold.out" || fail "the first connection failed"
	for port in 7001 7002; do
		out=$(nsx "$HB" socat -t 5 - TCP4:127.0.0.1:$port </dev/null)
		[ "$out" = "port-$port" ] || fail "port $port through the session said '$out'"
	done
	out=$(echo "udp through the session" | nsx "$HB" socat -t 5 - UDP4:127.0.0.1:7005)
	[ "$out" = "udp through the session" ] || fail "the UDP port through the session said '$out'"
	[ "$(first_sessions)" = 1 ] || fail "$(first_sessions) sessions negotiated, not 1"
	id=$(sessions | jq -r '[.[] | select(.parent == null)][0].id')
	[ "$(flows_of "$id")" = 3 ] || fail "session $id has $(flows_of "$id") flows, not 3"
	[ "$(sessions | jq '[.[] | select(.path == "relay" and .splice_id != null)] | length')" = 4 ] ||
		fail "not four relay splices: $(sessions)"
	# 7003 is a port of the subscription, not of the service
	out=$(nsx "$HB" socat -t 5 - TCP4:127.0.0.1:7003 </dev/null 2>&1) &&
		[ "$out" = port-7003 ] && fail "the provider let a flow reach port 7003"
	wait_until 10 grep -q "(tcp/7003) refused: not a port of the service" \
		"$TMP/agent-home-nas.log" || fail "the provider did not log the refused port"
}

# session-flows bounds the flows of one session: the one over it is refused
# by the broker, and the client of that connection is closed at once.
test_flow_limit() {
	local out

	FLOWS_BROKER_YAML='session-flows: 1' flows_bed tc 'publish:
  - { name: multi, target: 127.0.0.1:7000, ports: ["7001-7002"] }' 'subscribe:
  - { service: home-nas/multi, listen: 127.0.0.1:7000, ports: ["7001-7002"], pool: 0 }'
	bg "$HA" "$TMP/srv7000.log" socat "TCP4-LISTEN:7000,bind=127.0.0.1,reuseaddr,fork" \
		"SYSTEM:echo port-7000; cat"
	bg "$HA" "$TMP/srv7001.log" socat "TCP4-LISTEN:7001,bind=127.0.0.1,reuseaddr,fork" \
		"SYSTEM:echo port-7001"
	wait_until 10 nsx "$HA" sh -c 'ss -ltn | grep -q 127.0.0.1:7001'
	bg "$HB" "$TMP/hold.log" socat -u TCP4:127.0.0.1:7000 "OPEN:$TMP/hold.out,creat"
	wait_until 10 grep -q port-7000 "$TMP/hold.out" || fail "the first connection failed"
	out=$(nsx "$HB" socat -t 5 - TCP4:127.0.0.1:7001 </dev/null)
	[ "$out" = port-7001 ] || fail "the first flow said '$out'"
	out=$(nsx "$HB" socat -t 5 - TCP4:127.0.0.1:7001 </dev/null 2>&1) &&
		[ "$out" = port-7001 ] && fail "a flow over session-flows went through"
	wait_until 10 grep -q "has had its 1 flows (session-flows)" "$TMP/agent-laptop.log" ||
		fail "the subscriber did not log the broker's refusal"
}

# iperf3 -P 4: the control connection and four streams, one session.
test_iperf3_streams() {
	local id out

	need iperf3
	flows_bed tc 'publish:
  - { name: iperf3, target: 127.0.0.1:5201 }' 'subscribe:
  - { service: home-nas/iperf3, listen: 127.0.0.1:5201, ports: ["5201"], pool: 0 }'
	bg "$HA" "$TMP/iperf3-s.log" iperf3 -s -B 127.0.0.1 -p 5201
	wait_until 10 nsx "$HA" sh -c 'ss -ltn | grep -q 127.0.0.1:5201'
	out=$(nsx "$HB" timeout 60 iperf3 -c 127.0.0.1 -p 5201 -P 4 -t 2 -J) ||
		fail "iperf3 -P 4 failed: $(tail -n 5 "$TMP/agent-laptop.log")"
	[ "$(jq '.end.sum_received.bytes > 0' <<<"$out")" = true ] || fail "iperf3 moved nothing"
	[ "$(jq '.start.connected | length' <<<"$out")" = 4 ] || fail "not 4 streams connected"
	[ "$(first_sessions)" = 1 ] || fail "$(first_sessions) sessions negotiated, not 1"
	id=$(sessions | jq -r '[.[] | select(.parent == null)][0].id')
	[ "$(flows_of "$id")" = 4 ] || fail "session $id has $(flows_of "$id") flows, not 4"
}

# The same on the direct path: the provider is public (PUB, tunnel-listen),
# so the session and its flows all connect straight to it.
test_iperf3_streams_direct() {
	local id out

	need iperf3
	need_system
	topo_nat
	start_broker
	start_agent "$PUB" pub pub-secret 'tunnel-listen: 0.0.0.0:7701
publish:
  - { name: iperf3, target: 127.0.0.1:5201 }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: pub/iperf3, listen: 127.0.0.1:5201, ports: ["5201"], pool: 0 }'
	bg "$PUB" "$TMP/iperf3-s.log" iperf3 -s -B 127.0.0.1 -p 5201
	wait_until 10 nsx "$PUB" sh -c 'ss -ltn | grep -q 127.0.0.1:5201'
	out=$(nsx "$HB" timeout 60 iperf3 -c 127.0.0.1 -p 5201 -P 2 -t 1 -J) ||
		fail "iperf3 -P 2 failed: $(tail -n 5 "$TMP/agent-laptop.log")"
	[ "$(jq '.end.sum_received.bytes > 0' <<<"$out")" = true ] || fail "iperf3 moved nothing"
	[ "$(first_sessions)" = 1 ] || fail "$(first_sessions) sessions negotiated, not 1"
	id=$(sessions | jq -r '[.[] | select(.parent == null)][0].id')
	[ "$(flows_of "$id")" = 2 ] || fail "session $id has $(flows_of "$id") flows, not 2"
	[ "$(sessions | jq '[.[] | select(.path != "direct")] | length')" = 0 ] ||
		fail "not every flow took the direct path: $(sessions)"
}

# iperf2's dual test: the server connects back to the client (-L port),
# which the provider's reverse port carries to the subscriber as a flow the
# other way, into the client's host.
test_iperf2_dual() {
	local id out

	flows_bed tc 'publish:
  - { name: iperf, target: 127.0.0.1:5001, reverse: ["5002"] }' 'subscribe:
  - { service: home-nas/iperf, listen: 127.0.0.1:5001, reverse: ["5002"], pool: 0 }'
	iperf2_server "$HA" 5001 -B 127.0.0.1
	# iperf2_client fails on "ERROR: expected reverse connect did not occur"
	out=$(IPERF_TIME=2 iperf2_client "$HB" 127.0.0.1 -p 5001 -d -L 5002 -y C) ||
		fail "iperf -d failed: $out"
	# -y C: one CSV line per direction, each with bytes moved
	[ "$(awk -F, '$8 > 0' <<<"$out" | wc -l)" -ge 2 ] ||
		fail "iperf -d did not move data both ways: $out"
	id=$(sessions | jq -r '[.[] | select(.parent == null)][0].id')
	[ "$(sessions | jq --arg p "$id" '[.[] | select(.parent == $p and .subscriber == "home-nas")] | length')" -ge 1 ] ||
		fail "no flow from the provider's side: $(sessions)"
}

run_tests "$@"
