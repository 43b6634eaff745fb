#!/bin/bash
# SIGHUP (systemctl reload, issue 15): each daemon reads its file again and
# applies it without a restart; a file with an error changes nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

# hup PID LOG REGEX: SIGHUP, then wait for REGEX in LOG (a line the reload
# writes after the signal: the count of matching lines must grow).
hup() {
	local pid=$1 log=$2 re=$3 n

	n=$(grep -Ec -- "$re" "$log" || true)
	kill -HUP "$pid"
	wait_until 10 sh -c "[ \$(grep -Ec -- '$re' '$log') -gt $n ]" ||
		fail "no '$re' after SIGHUP: $(tail -n 3 "$log")"
}

# withdrawn SERVICE: the broker's directory does not list SERVICE.
withdrawn() {
	[ "$(broker_api /api/v1/services | jq --arg s "$1" '[.[] | select(.service == $s)] | length')" = 0 ]
}

# download NS PORT: the web file through a subscriber port, sha256 compared.
download() {
	http_get "$1" "http://127.0.0.1:$2/" "$TMP/got.bin" || fail "download through :$2 failed"
	[ "$(sha256sum <"$TMP/got.bin")" = "$(sha256sum <"$TMP/web.bin")" ] ||
		fail "sha256 of the download differs"
}

# A broken broker.yaml is refused whole, with file:line:column, and the old
# settings stay: an agent the broken file would remove still logs in, and the
# service still works.
test_broker_bad_file() {
	direct_bed
	readable "$BROKER_CONF"
	cp "$BROKER_CONF" "$TMP/broker.good"
	sed -i -e '/name: mallory/d' -e 's/^hold-time:.*//' "$BROKER_CONF"
	printf 'hold-time: soon\n' >>"$BROKER_CONF"
	hup "$BROKER_PID" "$BROKER_LOG" 'reload refused'
	grep -E "reload refused, the old settings stay: .*broker.yaml:[0-9]+:[0-9]+: bad value for hold-time" \
		"$BROKER_LOG" >/dev/null || fail "no file:line:col: $(grep 'reload' "$BROKER_LOG")"
	start_agent "$HA" mallory mallory-secret ''
	download "$HB" 18080
	# a broken agent.yaml: the same, the service stays published
	local conf=$TMP/agent-pub.yaml
	cp "$conf" "$TMP/agent-pub.good"
	printf '\nudp-idle: never\n' >>"$conf"
	hup "$(pgrep -f "$conf" | head -n 1)" "$TMP/agent-pub.log" 'reload refused'
	grep -E "reload refused, the old settings stay: .*agent-pub.yaml:[0-9]+:[0-9]+: bad value for udp-idle" \
		"$TMP/agent-pub.log" >/dev/null || fail "agent: $(grep 'reload' "$TMP/agent-pub.log")"
	broker_api /api/v1/services | jq -e '.[] | select(.service == "pub/web")' >/dev/null ||
		fail "pub/web is no longer published"
	download "$HB" 18080
	# and the good file after it applies
	cp "$TMP/broker.good" "$BROKER_CONF"
	hup "$BROKER_PID" "$BROKER_LOG" 'reload: nothing changed'
}

# While a download runs through a relayed tunnel: the broker gets a new agent,
# the provider loses the service being downloaded. The download completes
# intact, the new agent logs in, the service is withdrawn (a new client is
# refused), the provider's other service stays.
test_reload_during_download() {
	need_system
	topo_nat
	start_broker
	readable "$BROKER_CONF"
	start_sys_relay tc
	random_file "$TMP/web.bin" $((4 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080 }
  - { name: web2, target: 127.0.0.1:8080 }'
	local nas=$AGENT_PID conf=$TMP/agent-home-nas.yaml
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080 }
  - { service: home-nas/web2, listen: 127.0.0.1:18081 }'
	# curl's --limit-rate alone let 4 MiB through in 2 s here (the socket and
	# pipe buffers on the way hold that much): the NAT's LAN side is slow too
	ip netns exec "$NATB" tc qdisc add dev lan0 root tbf rate 2mbit burst 32kbit latency 400ms
	nsx "$HB" curl -fsS --max-time 60 --limit-rate 256K -o "$TMP/slow.bin" \
		http://127.0.0.1:18080/ &
	local curl=$!
	wait_until 20 sh -c "[ \$(stat -c %s '$TMP/slow.bin' 2>/dev/null || echo 0) -gt 262144 ]" ||
		fail "the download did not start"
	sed -i 's/^relays:/  - { name: carol, secret: carol-secret }\nrelays:/' "$BROKER_CONF"
	echo "hole-punching: false" >>"$BROKER_CONF"
	sed -i '/name: web,/d' "$conf"
	hup "$BROKER_PID" "$BROKER_LOG" 'reload: '
	hup "$nas" "$TMP/agent-home-nas.log" 'reload: '
	grep -E "reload: 1 agent added \(carol\), hole-punching off" "$BROKER_LOG" >/dev/null ||
		fail "broker: $(grep 'reload' "$BROKER_LOG")"
	grep -E "reload: 1 service removed \(home-nas/web\)" "$TMP/agent-home-nas.log" >/dev/null ||
		fail "agent: $(grep 'reload' "$TMP/agent-home-nas.log")"
	kill -0 "$curl" 2>/dev/null || { wait "$curl" || true; fail "the download ended before the reloads (status $?, $(stat -c %s "$TMP/slow.bin") bytes): too fast to test"; }
	start_agent "$HA" carol carol-secret ''
	wait "$curl" || fail "the download failed across the reloads"
	[ "$(sha256sum <"$TMP/slow.bin")" = "$(sha256sum <"$TMP/web.bin")" ] ||
		fail "sha256 of the download differs"
	wait_until 10 withdrawn home-nas/web || fail "home-nas/web is still in the directory"
	! nsx "$HB" curl -fsS --max-time 20 -o /dev/null http://127.0.0.1:18080/ ||
		fail "a new client of the withdrawn service got it"
	download "$HB" 18081
}

# A logged-in agent removed from broker.yaml is disconnected, with the line
# that says why; it cannot log in again (and stops, as after any refused
# login); the others stay.
test_broker_remove_agent() {
	direct_bed
	readable "$BROKER_CONF"
	local laptop=$AGENT_PID

	sed -i '/name: laptop/d' "$BROKER_CONF"
	hup "$BROKER_PID" "$BROKER_LOG" 'reload: '
	wait_for_line "$BROKER_LOG" "agent laptop removed from broker.yaml: disconnected" 10 ||
		fail "no disconnect line: $(grep -E 'reload|laptop' "$BROKER_LOG" | tail -n 3)"
	grep -E "reload: 1 agent removed \(laptop\)" "$BROKER_LOG" >/dev/null ||
		fail "summary: $(grep 'reload:' "$BROKER_LOG")"
	wait_until 20 sh -c "! kill -0 $laptop 2>/dev/null" || fail "agent laptop still runs"
	grep -E "wrong name or secret" "$TMP/agent-laptop.log" >/dev/null ||
		fail "laptop: $(tail -n 3 "$TMP/agent-laptop.log")"
	[ "$(broker_api /api/v1/agents | jq '[.[] | select(.name == "laptop")] | length')" = 0 ] ||
		fail "laptop is still listed"
	broker_api /api/v1/agents | jq -e '.[] | select(.name == "pub")' >/dev/null ||
		fail "agent pub is gone too"
	# a secret changed: the same, with its own reason
	sed -i 's/pub-secret/pub-secret-2/' "$BROKER_CONF"
	hup "$BROKER_PID" "$BROKER_LOG" 'reload: '
	wait_for_line "$BROKER_LOG" "agent pub: secret changed in broker.yaml: disconnected" 10 ||
		fail "no disconnect line for pub"
}

# The relay's timers follow the file: close-grace 600 -> 1 s, and a finished
# splice is gone a second after its FINs (it would stay 10 minutes).
test_relay_timer() {
	need jq
	topo_relay
	printf 'close-grace: 600\nrst-grace: 600\n' >"$TMP/relay.yaml"
	start_relay tc -f "$TMP/relay.yaml"
	readable "$TMP/relay.yaml"
	printf 'close-grace: 1\nrst-grace: 1\nhandshake: daemon\n' >"$TMP/relay.yaml"
	hup "$RELAY_PID" "$RELAY_LOG" 'reload: '
	grep -E "reload: close-grace 600 -> 1 s, rst-grace 600 -> 1 s" "$RELAY_LOG" >/dev/null ||
		fail "summary: $(grep 'reload' "$RELAY_LOG")"
	grep -E "reload: handshake cannot change" "$RELAY_LOG" >/dev/null ||
		fail "no note about dev: $(grep 'reload' "$RELAY_LOG")"
	# a bad file: refused with its place, the timers stay
	printf 'close-grace: 1\nidle-tcp: [\n' >"$TMP/relay.yaml"
	hup "$RELAY_PID" "$RELAY_LOG" 'reload refused'
	grep -E "reload refused.*relay.yaml:[0-9]+:[0-9]+" "$RELAY_LOG" >/dev/null ||
		fail "no file:line:col: $(grep 'reload' "$RELAY_LOG")"
	splice_add
	bg "$A" "$TMP/a.out" "$NSXFER" --timeout 30 --connect "$RELAY4:$PORT_A" --send 64K --seed 1
	local xa=$BG_PID
	bg "$B" "$TMP/b.out" "$NSXFER" --timeout 30 --connect "$RELAY4:$PORT_B" --send 64K --seed 2
	xfer_wait "$xa" "$TMP/a.out" A 60
	xfer_wait "$BG_PID" "$TMP/b.out" B 60
	wait_until 10 splice_gone "$SPLICE_ID" ||
		fail "the finished splice is still listed: the new close-grace was not applied"
}

run_tests
