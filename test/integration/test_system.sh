#!/bin/bash
# The whole system (issue: broker, agent, TLV protocol): an unmodified client
# behind one NAT uses an unmodified server behind another, through the broker's
# negotiation and the relay's kernel splice; also the direct and reverse paths.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

PUBLISH_WEB='publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
SUBSCRIBE_WEB='subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp }'

# The standard bed: broker, relay (MODE), web server + provider on HA.
system_bed() {
	need_system
	topo_nat
	start_broker "${2:-}"
	start_sys_relay "${1:-xdp}"
	random_file "$TMP/web.bin" $((4 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret "$PUBLISH_WEB"
	PROVIDER_PID=$AGENT_PID PROVIDER_LOG=$AGENT_LOG
}

# download NS PORT: fetch the web file through a subscriber port, compare sha256.
download() {
	http_get "$1" "http://127.0.0.1:$2/" "$TMP/got.bin" || fail "download through :$2 failed"
	[ "$(sha256sum <"$TMP/got.bin")" = "$(sha256sum <"$TMP/web.bin")" ] ||
		fail "sha256 of the download differs"
}

test_relay_path_xdp() {
	system_bed xdp
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	download "$HB" 18080
	[ "$(last_session_path)" = relay ] || fail "path is $(last_session_path), not relay"
	[ "$(stat_get tx)" -gt 100 ] || fail "the relay's XDP forwarded only $(stat_get tx) packets"
}

test_relay_path_tc() {
	system_bed tc
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	download "$HB" 18080
	[ "$(last_session_path)" = relay ] || fail "path is $(last_session_path), not relay"
	[ "$(stat_get redirect)" -gt 100 ] || fail "TC redirected only $(stat_get redirect) packets"
}

test_direct_path() {
	direct_bed
	download "$HB" 18080
	[ "$(last_session_path)" = direct ] || fail "path is $(last_session_path), not direct"
}

test_reverse_path() {
	need_system
	topo_nat
	start_broker
	random_file "$TMP/web.bin" $((4 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret "$PUBLISH_WEB"
	start_agent "$PUB" pub pub-secret "tunnel-listen: 0.0.0.0:7701
$SUBSCRIBE_WEB"
	download "$PUB" 18080
	[ "$(last_session_path)" = reverse ] || fail "path is $(last_session_path), not reverse"
}

test_parallel_100() {
	# 100 negotiations at once on a slow, loaded machine: give each one
	# more time than the 10 s defaults (this test is about correctness),
	# and room for 100 relay splices (and the pool's) between the two agents
	# (max-splices-per-pair is 64).
	system_bed xdp "negotiate-timeout: 60
max-splices-per-pair: 128"
	stop_agent_named home-nas
	start_agent "$HA" home-nas nas-secret "connect-timeout: 60
$PUBLISH_WEB"
	start_agent "$HB" laptop laptop-secret "connect-timeout: 60
$SUBSCRIBE_WEB"
	parallel_get 100
	[ "$(broker_api /api/v1/sessions | jq '[.[] | select(.path == "relay")] | length')" -ge 100 ] ||
		fail "fewer than 100 relayed sessions"
	# a loaded machine loses segments before and after the relay: its
	# window check (ns_window) must not take any of theirs for forged
	[ "$(stat_get window)" = 0 ] ||
		fail "the relay dropped $(stat_get window) segments of real connections as out of the window"
}

# A relay with room for two handshakes at a time (four relay ports) and 30
# clients at once: the relay answers BUSY when it is out of ports, the broker
# makes the session wait for room instead of failing it, and every download
# arrives. (Before: "relay port range exhausted", and the clients failed.)
test_relay_busy_waits() {
	local failed

	SYS_RELAY_PORTS=20000-20003 system_bed xdp "negotiate-timeout: 60"
	start_agent "$HB" laptop laptop-secret "connect-timeout: 60
$SUBSCRIBE_WEB"
	parallel_get 30
	grep -q 'relay relay1 is busy' "$BROKER_LOG" ||
		fail "the relay never said BUSY: the test did not exercise the wait"
	failed=$(broker_api /metrics | awk '/^natsplice_sessions_failed_total/ { n += $2 } END { print n + 0 }')
	[ "$failed" = 0 ] || fail "the broker counted $failed failed sessions"
}

# Least privilege: once bound, the broker runs as nobody with no capabilities
# and no_new_privs (and still negotiates: the relayed download); an unknown
# user: is refused when the configuration is read.
test_broker_drops_root() {
	local st out

	system_bed xdp
	st=$(cat "/proc/$BROKER_PID/status")
	grep -Eq '^Uid:\s+65534\s+65534\s+65534\s+65534$' <<<"$st" ||
		fail "the broker is not uid 65534: $(grep ^Uid <<<"$st")"
	grep -Eq '^CapEff:\s+0+$' <<<"$st" || fail "the broker kept capabilities"
	grep -Eq '^CapPrm:\s+0+$' <<<"$st" || fail "the broker kept permitted capabilities"
	grep -Eq '^NoNewPrivs:\s+1$' <<<"$st" || fail "no_new_privs is not set"
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	download "$HB" 18080
	printf 'listen: 127.0.0.1:7799\nuser: no-such-user-here\n' >"$TMP/bad.yaml"
	out=$("$BROKER_BIN" -n -f "$TMP/bad.yaml" 2>&1) && fail "an unknown user was accepted"
	[[ $out == *"bad.yaml:2:"*"no such user 'no-such-user-here'"* ]] ||
		fail "the error does not name the line and the user: $out"
}

test_udp_echo() {
	local out

	system_bed xdp
	bg "$HA" "$TMP/echo.log" socat UDP4-RECVFROM:9000,bind=127.0.0.1,fork PIPE
	stop_agent_named home-nas
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: echo, target: 127.0.0.1:9000, proto: udp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/echo, listen: 127.0.0.1:19000, proto: udp }'
	out=$(echo "hello through the relay" | nsx "$HB" socat -t 5 - UDP4:127.0.0.1:19000)
	[ "$out" = "hello through the relay" ] || fail "UDP echo returned '$out'"
	out=$(head -c 1200 /dev/zero | tr '\0' x | nsx "$HB" socat -t 5 - UDP4:127.0.0.1:19000)
	[ "${#out}" = 1200 ] || fail "a 1200-byte datagram came back as ${#out} bytes"
}

# compress: true on the provider: the tunnel carries a zlib stream each way
# (both agents must agree, through the broker); the download is still exact.
test_compressed_service() {
	system_bed xdp
	stop_agent_named home-nas
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp, compress: true }'
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	download "$HB" 18080
	grep -q "tunnel up (relay path, compressed)" "$TMP/agent-home-nas.log" ||
		fail "the provider's tunnel was not compressed"
	[ "$(last_session_path)" = relay ] || fail "path is $(last_session_path), not relay"
}

# The example configurations load as they are (they document every key).
test_example_configs() {
	local out

	need_system
	out=$("$AGENT_BIN" -n -f "$TOP/examples/agent.yaml" 2>&1) ||
		fail "examples/agent.yaml rejected: $out"
	out=$("$BROKER_BIN" -n -f "$TOP/examples/broker.yaml" 2>&1) ||
		fail "examples/broker.yaml rejected: $out"
}

test_wrong_secret() {
	local rc=0 conf=$TMP/bad.yaml

	need_system
	topo_nat
	start_broker
	printf 'broker: %s:%s\nname: laptop\nsecret: not-the-secret\nbroker-fingerprint: %s\n' \
		"$BROKER4" "$BROKER_PORT" "$BROKER_FP" >"$conf"
	nsx "$HB" timeout 30 "$AGENT_BIN" -f "$conf" >"$TMP/bad.log" 2>&1 || rc=$?
	[ "$rc" != 0 ] || fail "the agent exited 0 with a wrong secret"
	[ "$rc" != 124 ] || fail "the agent kept running with a wrong secret"
	grep -qiE "secret|auth|refused" "$TMP/bad.log" || fail "no clear error: $(cat "$TMP/bad.log")"
}

# client_closed_fast NS PORT: a client connection to the port is closed by the
# agent within 5 s and gets no data.
client_closed_fast() {
	local start=$SECONDS out

	out=$(nsx "$1" timeout 10 curl -sS --max-time 8 "http://127.0.0.1:$2/" 2>&1) &&
		fail "the client got an answer: $out"
	[ $((SECONDS - start)) -le 5 ] || fail "the client waited $((SECONDS - start)) s"
}

test_acl_and_unknown() {
	system_bed xdp "services:
  - { name: web, allow: [pub] }"
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB
  - { service: home-nas/nosuch, listen: 127.0.0.1:18081, proto: tcp }"
	client_closed_fast "$HB" 18080
	wait_for_line "$AGENT_LOG" "denied|DENIED|ACL" 10 || fail "the agent did not log the denial"
	client_closed_fast "$HB" 18081
	wait_for_line "$AGENT_LOG" "nosuch.*(no such service|not found)" 10 ||
		fail "the agent did not log the unknown service"
}

test_broker_restart() {
	local pid start

	system_bed xdp
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	download "$HB" 18080
	# a slow download in flight across the restart
	nsx "$HB" curl -fsS --limit-rate 500K -o "$TMP/slow.bin" http://127.0.0.1:18080/ &
	pid=$!
	sleep 1
	kill -TERM "$BROKER_PID"
	wait_pid "$BROKER_PID" 10 || true
	start=$SECONDS
	start_broker
	wait_until 12 sh -c "ip netns exec $BROKER curl -fsS http://$BROKER_HTTP/api/v1/services 2>/dev/null | grep -q web" ||
		fail "the provider did not re-publish within 10 s of the restart"
	[ $((SECONDS - start)) -le 12 ] || fail "re-publish took $((SECONDS - start)) s"
	wait_until 12 sh -c "ip netns exec $BROKER curl -fsS http://$BROKER_HTTP/metrics | grep -q '^natsplice_relays_connected 1'" ||
		fail "the relay did not register again within 12 s"
	wait_pid "$pid" 60 || fail "the download in flight did not survive the broker restart"
	cmp -s "$TMP/slow.bin" "$TMP/web.bin" || fail "the download in flight was damaged"
	download "$HB" 18080	# and new tunnels work again
}

test_provider_stop() {
	system_bed xdp
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	download "$HB" 18080
	kill -TERM "$PROVIDER_PID"
	wait_pid "$PROVIDER_PID" 10 || fail "the provider agent did not exit 0 on SIGTERM"
	wait_until 10 sh -c "! ip netns exec $BROKER curl -fsS http://$BROKER_HTTP/api/v1/services | grep -q web" ||
		fail "the service stayed listed"
	client_closed_fast "$HB" 18080
}

# A stranger on the direct path: it connects to the provider's tunnel port
# and sends a forged proof; it receives nothing, the real session still works.
test_stranger_tunnel() {
	local got

	direct_bed
	got=$( (printf 'NSP1'; head -c 57 /dev/urandom; printf 'GET / HTTP/1.0\r\n\r\n') |
		nsx "$HA" timeout 10 socat -t 3 - TCP:"$PUB4":7701 | wc -c)
	[ "$got" = 0 ] || fail "the stranger received $got bytes"
	download "$HB" 18080
}

# A stranger (PUB's address, not one of the NATs) sending to the relay ports
# of a live splice gets no answer and the dataplane counts the drop.
test_stranger_relay() {
	local port got pid

	system_bed xdp
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	nsx "$HB" curl -fsS --limit-rate 300K -o "$TMP/slow.bin" http://127.0.0.1:18080/ &
	pid=$!
	wait_until 20 sh -c "[ \$(ip netns exec $RELAY $NATSPLICE -S $SOCK -j splice list | jq length) -ge 1 ]" ||
		fail "no splice appeared"
	port=$(nsc -j splice list | jq -r '.[0].ports[0]')
	got=$( (nsx "$PUB" timeout 5 socat -t 2 - TCP:"$SRELAY4":"$port",connect-timeout=2 \
		</dev/null 2>/dev/null || true) | wc -c)
	[ "$got" = 0 ] || fail "the stranger received $got bytes"
	[ "$(stat_get source)" -ge 1 ] || fail "no drop counted for the stranger"
	wait_pid "$pid" 60 || fail "the real download failed"
	cmp -s "$TMP/slow.bin" "$TMP/web.bin" || fail "the real download was damaged"
}

# Malformed and truncated frames close only that peer.
test_malformed_frames() {
	system_bed xdp
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	# a header announcing 1 GiB, a truncated attribute, garbage
	printf '\001\002\000\000\100\000\000\000' | nsx "$PUB" timeout 5 socat -t 2 - TCP:"$BROKER4:$BROKER_PORT" >/dev/null || true
	printf '\001\002\000\000\000\000\000\010\000\006\000\040ab' | nsx "$PUB" timeout 5 socat -t 2 - TCP:"$BROKER4:$BROKER_PORT" >/dev/null || true
	head -c 4096 /dev/urandom | nsx "$PUB" timeout 5 socat -t 2 - TCP:"$BROKER4:$BROKER_PORT" >/dev/null || true
	kill -0 "$BROKER_PID" || fail "the broker died"
	download "$HB" 18080
}

# detached NS LOG CMD...: CMD with -d in NS; its status (the daemon's log in LOG).
detached() {
	local ns=$1 log=$2 rc=0

	shift 2
	nsx "$ns" timeout 60 "$@" >"$log" 2>&1 </dev/null || rc=$?
	return "$rc"
}

# -d means the same in the three daemons: the command returns 0 once the
# daemon is ready (its "ready" line is in the log by then, and it serves), or
# non-zero when start-up fails after the fork.
test_detach() {
	local rc conf=$TMP/agent-d.yaml

	need_system
	topo_nat
	cat >"$TMP/broker.yaml" <<-YAML
	listen: $BROKER4:$BROKER_PORT
	$(broker_tls_yaml | sed -n 1p)
	$(broker_tls_yaml | sed -n 2p)
	agents:
	  - { name: laptop, secret: laptop-secret }
	relays:
	  - { name: relay1, secret: relay-secret }
	YAML
	broker_fingerprint "$TMP/broker.yaml"
	detached "$BROKER" "$TMP/broker-d.log" "$BROKER_BIN" -d -v -f "$TMP/broker.yaml" ||
		fail "broker -d exited $?: $(cat "$TMP/broker-d.log")"
	grep -q ready "$TMP/broker-d.log" || fail "broker -d returned before its ready line"
	nsx "$BROKER" ss -ltn | grep -q "$BROKER4:$BROKER_PORT " || fail "the broker does not listen"

	mkdir -p "$TMP/bpffs"
	mount -t bpf bpf "$TMP/bpffs"
	echo "$TMP/bpffs" >>"$TMP/mounts"
	SOCK=$TMP/relay.sock
	detached "$RELAY" "$TMP/relay-d.log" "$NATSPLICE" relay run -d --dev eth0 --mode tc \
		--address "$SRELAY4" --pin-dir "$TMP/bpffs/natsplice" --socket "$SOCK" \
		--broker "$BROKER4:$BROKER_PORT" --name relay1 --secret relay-secret \
		--broker-fingerprint "$BROKER_FP" ||
		fail "relay run -d exited $?: $(cat "$TMP/relay-d.log")"
	grep -q "relay ready" "$TMP/relay-d.log" || fail "relay run -d returned before ready"
	[ -S "$SOCK" ] || fail "relay run -d returned without its control socket"
	nsx "$RELAY" "$NATSPLICE" -S "$SOCK" stats >/dev/null || fail "the relay does not answer"

	printf 'broker: %s\nname: laptop\nsecret: laptop-secret\nbroker-fingerprint: %s\n' \
		"$BROKER4" "$BROKER_FP" >"$conf"
	detached "$HB" "$TMP/agent-d.log" "$AGENT_BIN" -d -v -f "$conf" ||
		fail "agent -d exited $?: $(cat "$TMP/agent-d.log")"
	grep -q "ready: logged in" "$TMP/agent-d.log" || fail "agent -d returned before ready"

	# start-up failing after the fork: the command fails, it does not hang
	rc=0
	detached "$BROKER" "$TMP/broker-bad.log" "$BROKER_BIN" -d -f "$TMP/broker.yaml" \
		--listen 192.0.2.99:7700 || rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "broker -d with an address it lacks: status $rc"
	rc=0
	detached "$RELAY" "$TMP/relay-bad.log" "$NATSPLICE" relay run -d --dev nosuch0 \
		--address "$SRELAY4" --pin-dir "$TMP/bpffs/other" --socket "$TMP/o.sock" || rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "relay run -d on no device: status $rc"
	grep -q "unknown device" "$TMP/relay-bad.log" || fail "no reason: $(cat "$TMP/relay-bad.log")"
	printf 'broker: %s\nname: laptop\nsecret: not-the-secret\nbroker-fingerprint: %s\n' \
		"$BROKER4" "$BROKER_FP" >"$conf"
	rc=0
	detached "$HB" "$TMP/agent-bad.log" "$AGENT_BIN" -d -f "$conf" || rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "agent -d with a wrong secret: status $rc"
}

# agent.yaml in the old spelling (underscores) still runs, with a note
# naming file:line and the new spelling.
test_old_agent_keys() {
	need_system
	topo_nat
	start_broker
	start_agent "$PUB" pub pub-secret "tunnel_listen: 0.0.0.0:7701
connect_timeout: 30"
	grep -q "agent-pub.yaml:4:1: 'tunnel_listen' is deprecated: write 'tunnel-listen'" \
		"$AGENT_LOG" || fail "no deprecation note: $(head -n 3 "$AGENT_LOG")"
	grep -q "agent-pub.yaml:5:1: 'connect_timeout' is deprecated" "$AGENT_LOG" ||
		fail "no deprecation note for connect_timeout"
	nsx "$PUB" ss -ltn | grep -q ":7701 " || fail "tunnel_listen was not applied"
}

run_tests
