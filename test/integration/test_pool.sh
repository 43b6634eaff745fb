#!/bin/bash
# Pooled tunnels (issue 9): a subscriber keeps a few tunnels to a service
# ready (negotiated, spliced, proven) on the two-NAT relay path; a client
# takes one at once and the pool is refilled; the pool never grows past its
# bound; idle pooled tunnels are closed; the provider connects to its target
# only when a client takes the tunnel (the OPEN marker).
#
# The subscriber logs every change of its pool at -v as
#   "pool SERVICE: R ready, S starting (target T, wanted W, bound B)"
# and "connect SERVICE #SESSION: client ADDR took a pooled tunnel".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

PUBLISH='publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }
  - { name: ssh, target: 127.0.0.1:2222, proto: tcp }'

# pool_bed: broker, relay, web server and provider on HA (behind NAT A).
pool_bed() {
	need jq curl socat nft ss
	[ -x "$BROKER_BIN" ] || skip "natsplice-broker is not built"
	[ -x "$AGENT_BIN" ] || skip "natsplice-agent is not built"
	topo_nat
	start_broker "${1:-}"
	start_sys_relay xdp
	random_file "$TMP/web.bin" $((256 << 10))
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret "$PUBLISH"
	PROVIDER_LOG=$AGENT_LOG
}

# subscriber SERVICE PORT SETTINGS: the laptop agent on HB subscribing SERVICE
# on 127.0.0.1:PORT with the extra flow-map SETTINGS (e.g. "pool: 2").
subscriber() {
	start_agent "$HB" laptop laptop-secret "connect-timeout: 30
subscribe:
  - { service: home-nas/$1, listen: 127.0.0.1:$2, proto: tcp, $3 }"
	SUB_LOG=$AGENT_LOG
}

# get_web [NS]: download through 127.0.0.1:18080 in NS (default HB), check it.
get_web() {
	http_get "${1:-$HB}" http://127.0.0.1:18080/ "$TMP/got.bin" || fail "download failed"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
}

# pool_lines SERVICE: "ready starting target wanted bound" of each pool line.
pool_lines() {
	sed -nE "s|.*pool home-nas/$1: ([0-9]+) ready, ([0-9]+) starting \(target ([0-9]+), wanted ([0-9]+), bound ([0-9]+)\)$|\1 \2 \3 \4 \5|p" \
		"$SUB_LOG"
}

# ready_after LINE SERVICE N: a pool line with N ready after line LINE of the log.
ready_after() {
	tail -n +"$(($1 + 1))" "$SUB_LOG" | grep -Eq "pool home-nas/$2: $3 ready,"
}

# count FILE REGEX: lines matching (0 if none).
count() {
	grep -Ec -- "$2" "$1" || true
}

# Established connections in NS towards DST (ss filter syntax, e.g. 203.0.113.20).
established_to() {
	nsx "$1" ss -Htn state established dst "$2" | wc -l
}

# After one client, the pool fills; the next client takes a ready tunnel
# (no CONNECT of its own) and the pool is refilled behind it.
test_pool_used_and_refilled() {
	local before taken_at

	pool_bed
	subscriber web 18080 "pool: 2"
	get_web
	[ "$(count "$SUB_LOG" 'connect home-nas/web: client .*request')" = 1 ] ||
		fail "the first client did not get a tunnel of its own"
	wait_for_line "$SUB_LOG" 'pool home-nas/web: 2 ready,' 30 ||
		fail "the pool never had 2 ready tunnels: $(pool_lines web | tail -n 1)"
	[ "$(count "$SUB_LOG" 'took a pooled tunnel')" = 0 ] || fail "a pooled tunnel taken with no client"
	before=$(broker_api /api/v1/sessions | jq length)

	get_web
	[ "$(count "$SUB_LOG" 'took a pooled tunnel')" = 1 ] ||
		fail "the second client did not take a pooled tunnel"
	[ "$(count "$SUB_LOG" 'connect home-nas/web: client .*request')" = 1 ] ||
		fail "the second client negotiated a tunnel of its own"
	taken_at=$(grep -n 'took a pooled tunnel' "$SUB_LOG" | cut -d: -f1)
	wait_until 30 ready_after "$taken_at" web 2 ||
		fail "the pool was not refilled to 2 after the take"
	# the refill is an ordinary broker session (and relay splice)
	[ "$(broker_api /api/v1/sessions | jq length)" -gt "$before" ] ||
		fail "the refill made no broker session"
	# the provider reached its target once per client, not per pooled tunnel
	[ "$(count "$PROVIDER_LOG" 'opened by the subscriber')" = 2 ] ||
		fail "the provider was opened $(count "$PROVIDER_LOG" 'opened by the subscriber') times for 2 clients"

	# a third and fourth client in a row: pooled too
	get_web
	get_web
	[ "$(count "$SUB_LOG" 'took a pooled tunnel')" = 3 ] ||
		fail "only $(count "$SUB_LOG" 'took a pooled tunnel') of clients 2-4 took a pooled tunnel"
}

# With pool: 2 and a burst of 40 clients at once (demand far above 2), the
# pool never holds more than 2 tunnels, ready or being set up; afterwards
# exactly 2 pooled tunnels exist on the wire.
test_pool_bound() {
	local max wanted settled

	pool_bed "negotiate-timeout: 60"
	subscriber web 18080 "pool: 2"
	get_web
	wait_for_line "$SUB_LOG" 'pool home-nas/web: 2 ready,' 30 || fail "the pool never filled"
	parallel_get 40
	wanted=$(pool_lines web | awk '$4 > m { m = $4 } END { print m + 0 }')
	[ "$wanted" -gt 2 ] ||
		fail "the burst wanted at most $wanted tunnels: the bound was not exercised"
	[ "$(count "$SUB_LOG" 'took a pooled tunnel')" -ge 1 ] || fail "no client took a pooled tunnel"
	# settled: the last pool line says 2 ready, nothing starting
	wait_until 30 sh -c "grep -E 'pool home-nas/web: ' '$SUB_LOG' | tail -n 1 |
		grep -q ': 2 ready, 0 starting'" || fail "the pool did not settle at 2 ready"
	max=$(pool_lines web | awk '$1 + $2 > m { m = $1 + $2 } END { print m + 0 }')
	[ "$max" -le 2 ] || fail "the pool held $max tunnels (ready + starting), bound 2"
	[ "$(pool_lines web | awk '$3 > $5 { n++ } END { print n + 0 }')" = 0 ] ||
		fail "a target above the bound"
	# what the log says is what exists: 2 established tunnels to the relay
	settled=$(established_to "$HB" "$SRELAY4")
	[ "$settled" = 2 ] || fail "$settled tunnels to the relay with 2 pooled"
}

# Idle pooled tunnels are closed after pool-idle, and with no client for
# that long the pool is not refilled: no tunnel is left to the relay.
test_pool_idle_closed() {
	pool_bed
	subscriber web 18080 "pool: 2, pool-idle: 2"
	get_web
	wait_for_line "$SUB_LOG" 'pool home-nas/web: 2 ready,' 30 || fail "the pool never filled"
	wait_for_line "$SUB_LOG" 'pool home-nas/web: 0 ready, 0 starting \(target 0,' 30 ||
		fail "the idle pool was not emptied: $(pool_lines web | tail -n 1)"
	[ "$(count "$SUB_LOG" 'pooled tunnel idle for 2 s; closed')" -ge 2 ] ||
		fail "the pooled tunnels were not closed as idle"
	wait_until 10 sh -c "[ \$(ip netns exec $HB ss -Htn state established dst $SRELAY4 | wc -l) = 0 ]" ||
		fail "$(established_to "$HB" "$SRELAY4") tunnels still open to the relay"
	wait_for_line "$PROVIDER_LOG" 'closed by the subscriber before a client came' 10 ||
		fail "the provider did not see the unused tunnels closed"
	[ "$(count "$PROVIDER_LOG" 'opened by the subscriber')" = 1 ] ||
		fail "the provider was opened for an unused tunnel"
}

# pool_path_check PATH NS: the second client through :18080 in NS took a
# pooled tunnel made on PATH (direct: S dials P; reverse: P dials S).
pool_path_check() {
	get_web "$2"
	wait_for_line "$SUB_LOG" 'pool [^ ]+: 2 ready,' 30 || fail "the pool never filled"
	get_web "$2"
	[ "$(count "$SUB_LOG" 'took a pooled tunnel')" = 1 ] || fail "the client did not take a pooled tunnel"
	[ "$(broker_api /api/v1/sessions | jq -r "[.[] | select(.path == \"$1\")] | length")" -ge 3 ] ||
		fail "fewer than 3 $1 sessions (1 client + 2 pooled)"
	[ "$(count "$PROVIDER_LOG" 'opened by the subscriber')" = 2 ] || fail "the provider was opened other than twice"
}

# The same on the direct path: the provider is public and accepts.
test_pool_direct_path() {
	pool_bed
	start_agent "$PUB" pub pub-secret "tunnel-listen: 0.0.0.0:7701
$PUBLISH"
	PROVIDER_LOG=$AGENT_LOG
	web_server "$PUB" 8080 "$TMP/web.bin"
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: pub/web, listen: 127.0.0.1:18080, pool: 2 }'
	SUB_LOG=$AGENT_LOG
	pool_path_check direct "$HB"
}

# And on the reverse path: the subscriber is public and accepts the
# provider's connection on tunnel-listen.
test_pool_reverse_path() {
	pool_bed
	start_agent "$PUB" pub pub-secret 'tunnel-listen: 0.0.0.0:7701
subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, pool: 2 }'
	SUB_LOG=$AGENT_LOG
	pool_path_check reverse "$PUB"
}

# Ready pooled tunnels do not need the broker: with the broker gone, a
# client still takes one (and without a pool it would be refused).
test_pool_survives_broker_loss() {
	pool_bed
	subscriber web 18080 "pool: 2"
	get_web
	wait_for_line "$SUB_LOG" 'pool home-nas/web: 2 ready,' 30 || fail "the pool never filled"
	kill -TERM "$BROKER_PID"
	wait_for_line "$SUB_LOG" 'broker connection lost' 30 || fail "the agent did not see the broker go"
	get_web
	[ "$(count "$SUB_LOG" 'took a pooled tunnel')" = 1 ] || fail "the client did not take a pooled tunnel"
	[ "$(count "$SUB_LOG" 'not connected to the broker')" = 0 ] || fail "a client was refused"
}

# A server that speaks first (an SSH-like greeting): pooled tunnels are
# proven at both ends, yet the server sees no connection until a client
# takes one; the client then gets the greeting through it.
test_pool_server_speaks_first() {
	local greet=$TMP/greet.sh got

	pool_bed
	cat >"$greet" <<-SH
	#!/bin/sh
	echo accepted >>"$TMP/accepted"
	printf 'SSH-2.0-natsplice-test\r\n'
	exec cat >/dev/null
	SH
	chmod +x "$greet"
	: >"$TMP/accepted"
	bg "$HA" "$TMP/greet.log" socat TCP-LISTEN:2222,bind=127.0.0.1,fork,reuseaddr EXEC:"$greet"
	wait_until 10 nsx "$HA" sh -c "ss -ltn | grep -q 127.0.0.1:2222"
	subscriber ssh 12222 "pool: 2"

	got=$(nsx "$HB" timeout 20 socat -t 10 -T 10 - TCP:127.0.0.1:12222 </dev/null | head -n 1 | tr -d '\r')
	[ "$got" = SSH-2.0-natsplice-test ] || fail "client 1 got '$got', not the greeting"
	wait_for_line "$SUB_LOG" 'pool home-nas/ssh: 2 ready,' 30 || fail "the pool never filled"
	# both ends proved the pooled tunnels: the provider logged them up
	wait_until 10 sh -c "[ \$(grep -c 'ssh for laptop .*tunnel up' '$PROVIDER_LOG') -ge 3 ]" ||
		fail "the provider did not bring the pooled tunnels up"
	[ "$(established_to "$HA" 127.0.0.1:2222)" = 0 ] ||
		fail "the provider holds $(established_to "$HA" 127.0.0.1:2222) connections to the server for idle tunnels"
	[ "$(wc -l <"$TMP/accepted")" = 1 ] ||
		fail "the server accepted $(wc -l <"$TMP/accepted") connections for 1 client"

	got=$(nsx "$HB" timeout 20 socat -t 10 -T 10 - TCP:127.0.0.1:12222 </dev/null | head -n 1 | tr -d '\r')
	[ "$got" = SSH-2.0-natsplice-test ] || fail "client 2 got '$got', not the greeting"
	[ "$(count "$SUB_LOG" 'took a pooled tunnel')" = 1 ] || fail "client 2 did not take a pooled tunnel"
	[ "$(wc -l <"$TMP/accepted")" = 2 ] ||
		fail "the server accepted $(wc -l <"$TMP/accepted") connections for 2 clients"
}

run_tests
