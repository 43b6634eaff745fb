#!/bin/bash
# Tunnels encrypted end to end (lib/seal.h): what an on-path attacker on a
# NAT's public side sees and what forging gets him, on the relay, direct and
# reverse paths; kTLS where the kernel has it (the 6.1 VM: make vmtest).
#
#   test_capture_relay_sealed    a download through the relay: 0 of 200 samples
#       of the file appear on NAT A's public side; kTLS or user space as the log says
#   test_capture_plain           the same with encrypt: false: most of them do
#   test_capture_direct_sealed   direct path (the subscriber's NAT side), and
#   test_capture_reverse_sealed  reverse path (the provider's NAT side)
#   test_capture_udp_sealed      UDP as UDP: no datagram's payload visible
#   test_ktls_interop            one agent with ktls: off, the other auto: a
#       download matches (on 6.1: user-space records read by the kernel and back)
#   test_ktls_active             kTLS on the tunnel's socket (ss shows the tls ULP,
#       /proc/net/tls_stat counts it) and a download matches; skips without kTLS
#   test_forged_record_closes    a segment forged into an idle tunnel with the
#       right sequence numbers: that tunnel closes with a clear log line, another
#       one carries on; with encrypt: false the forged bytes reach the client
#   test_forged_datagram_dropped a forged datagram on a UDP tunnel is dropped and
#       counted; the echo goes on
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

NSTAP=${NSTAP:-$TOP/test/tools/nstap}
PUBLISH_WEB='publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
PUBLISH_WEB_PLAIN='publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp, encrypt: false }'
SUBSCRIBE_WEB='subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp }'

need_tap() {
	need_system
	[ -x "$NSTAP" ] || skip "test/tools/nstap is not built"
}

# crypt_bed PUBLISH: broker, relay (XDP), a web server with a random file
# and the provider on HA.
crypt_bed() {
	need_system
	topo_nat
	start_broker
	start_sys_relay xdp
	random_file "$TMP/web.bin" $((4 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret "$1"
}

# tap_start NS IFACE [ARGS...]: capture payload on NS's IFACE into $TMP/cap.bin.
tap_start() {
	local ns=$1 ifc=$2

	shift 2
	rm -f "$TMP/cap.bin"
	bg "$ns" "$TMP/tap.log" "$NSTAP" capture -i "$ifc" "$@" -o "$TMP/cap.bin" -t 120
	TAP_PID=$BG_PID
	wait_for_line "$TMP/tap.log" capturing 10 "$TAP_PID" || fail "nstap did not start"
}

# tap_stop: end the capture; sets FOUND: how many of 200 samples of web.bin
# it holds. (Not in a $(...): the capture is this shell's child.)
tap_stop() {
	kill -TERM "$TAP_PID"
	wait_pid "$TAP_PID" 10 || fail "nstap did not stop"
	[ -s "$TMP/cap.bin" ] || fail "nothing captured"
	FOUND=$("$NSTAP" samples "$TMP/web.bin" "$TMP/cap.bin" -n 200 -l 32 | awk '{ print $1 }')
}

download() {
	http_get "$1" "http://127.0.0.1:$2/" "$TMP/got.bin" || fail "download through :$2 failed"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
}

# sealed_download CAP_NS HOST CLIENT_NS PATH: a download from CLIENT_NS's
# port 18080 over PATH while CAP_NS's eth0 (a NAT's public side) is captured
# for traffic with HOST: none of the file may show.
sealed_download() {
	tap_start "$1" eth0 -p tcp --host "$2"
	download "$3" 18080
	tap_stop
	[ "$(last_session_path)" = "$4" ] || fail "the path is $(last_session_path), not $4"
	[ "$FOUND" = 0 ] || fail "$FOUND of 200 samples of the file seen on the $4 path"
}

test_capture_relay_sealed() {
	need_tap
	crypt_bed "$PUBLISH_WEB"
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	sealed_download "$NATA" "$SRELAY4" "$HB" relay
	grep -q "encrypted end to end, " "$TMP/agent-home-nas.log" ||
		fail "no 'encrypted end to end' line in the provider's log"
	[ "$(broker_api /api/v1/sessions | jq -r 'last | .encrypted')" = true ] ||
		fail "the session record does not say it is encrypted"
}

test_capture_plain() {
	need_tap
	crypt_bed "$PUBLISH_WEB_PLAIN"
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	tap_start "$NATA" eth0 -p tcp --host "$SRELAY4"
	download "$HB" 18080
	tap_stop
	# a packet lost on the capture socket loses a few: most, not all
	[ "$FOUND" -ge 150 ] || fail "only $FOUND of 200 samples seen in a plain tunnel"
	! grep -q "encrypted end to end" "$TMP/agent-home-nas.log" ||
		fail "encrypt: false, but the provider says it encrypts"
	[ "$(broker_api /api/v1/services | jq -r '.[] | select(.name == "web") | .encrypt')" = false ] ||
		fail "the broker's API does not say encrypt: false"
	[ "$(broker_api /api/v1/sessions | jq -r 'last | .encrypted')" = false ] ||
		fail "the session record does not say it is not encrypted"
}

test_capture_direct_sealed() {
	need_tap
	direct_bed
	sealed_download "$NATB" "$PUB4" "$HB" direct
}

test_capture_reverse_sealed() {
	need_tap
	crypt_bed "$PUBLISH_WEB"
	start_agent "$PUB" pub pub-secret "tunnel-listen: 0.0.0.0:7701
$SUBSCRIBE_WEB"
	sealed_download "$NATA" "$PUB4" "$PUB" reverse
}

test_capture_udp_sealed() {
	local got

	need_tap
	topo_nat
	start_broker
	start_sys_relay xdp
	bg "$HA" "$TMP/echo.log" "$NSUDP" --echo --bind 127.0.0.1:5353 --idle 600 --timeout 600
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: echo, target: 127.0.0.1:5353, proto: udp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/echo, listen: 127.0.0.1:15353, proto: udp }'
	# a random file in 40 datagrams, each echoed
	random_file "$TMP/web.bin" 40960
	tap_start "$NATA" eth0 -p udp --host "$SRELAY4"
	got=$(nsx "$HB" sh -c "socat -b 1024 -t 5 - UDP:127.0.0.1:15353 <'$TMP/web.bin' | wc -c")
	[ "$got" -ge 20480 ] || fail "only $got bytes echoed"
	tap_stop
	[ "$FOUND" = 0 ] || fail "$FOUND of 200 samples seen in UDP datagrams"
	grep -q "each datagram sealed" "$TMP/agent-laptop.log" || fail "no sealed UDP tunnel"
}

test_ktls_interop() {
	crypt_bed "$PUBLISH_WEB
ktls: off"
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	download "$HB" 18080
	grep -q "encrypted end to end, in user space (ktls: off)" "$TMP/agent-home-nas.log" ||
		fail "the provider did not seal in user space"
	grep -q "encrypted end to end, " "$TMP/agent-laptop.log" ||
		fail "the subscriber did not say how it seals"
	grep -h -m 1 "encrypted end to end, " "$TMP/agent-laptop.log" >&2
}

# need_ktls: a kernel with kTLS (the `tls` module, loaded on demand).
need_ktls() {
	modprobe tls 2>/dev/null || true
	[ -e /proc/net/tls_stat ] || skip "this kernel has no kTLS (the 6.1 VM has: make vmtest)"
}

test_ktls_active() {
	local pid

	need_ktls
	crypt_bed "$PUBLISH_WEB"
	start_agent "$HB" laptop laptop-secret "$SUBSCRIBE_WEB"
	# a slow download keeps the tunnel open while we look at its socket
	nsx "$HB" curl -fsS --max-time 120 --limit-rate 512k -o "$TMP/got.bin" \
		http://127.0.0.1:18080/ &
	pid=$!
	wait_until 20 grep -q "encrypted end to end" "$TMP/agent-laptop.log" ||
		fail "no sealed tunnel"
	grep -q "encrypted end to end, by the kernel (kTLS)" "$TMP/agent-laptop.log" ||
		fail "kTLS not used: $(grep -h 'encrypted end to end' "$TMP/agent-laptop.log")"
	# (not `ss | grep -q`: under pipefail, ss killed by SIGPIPE fails the test)
	[[ $(nsx "$HB" ss -tni) == *tcp-ulp-tls* ]] ||
		fail "no socket with the tls ULP in the subscriber's namespace"
	[ "$(nsx "$HB" awk '$1 == "TlsCurrRxSw" { print $2 }' /proc/net/tls_stat)" -ge 1 ] ||
		fail "tls_stat counts no kTLS receive socket"
	wait "$pid" || fail "the download through kTLS failed"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download through kTLS differs"
}

# idle_client NAME PORT: a client on HB holding a connection through PORT;
# `echo x >&$IDLE_FD` sends, $TMP/NAME.out gets what comes back.
idle_client() {
	mkfifo "$TMP/$1.in"
	bg "$HB" "$TMP/$1.log" sh -c "exec socat -t 60 TCP:127.0.0.1:$2 - <'$TMP/$1.in' >'$TMP/$1.out'"
	exec {IDLE_FD}>"$TMP/$1.in"
}

# tunnel_ports: "RELAY_PORT HB_PORT" of the subscriber's newest relay tunnel.
tunnel_ports() {
	nsx "$HB" ss -tnH state established dst "$SRELAY4" |
		awk '{ split($3, l, ":"); split($4, r, ":"); print r[2], l[2] }' | tail -n 1
}

# forge_bed PUBLISH [SINK_OPTS]: a sink service (it never answers) through the
# relay and two clients (FD1, FD2) whose hellos reached it; sets RP/LP: the
# first one's tunnel ports (no pooled tunnels: it is the only one then).
forge_bed() {
	need_tap
	crypt_bed "$1
  - { name: sink, target: 127.0.0.1:8081${2:-} }"
	bg "$HA" "$TMP/sink.log" socat -u TCP-LISTEN:8081,bind=127.0.0.1,fork,reuseaddr \
		OPEN:"$TMP/sink.out",creat,append
	start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, pool: 0 }
  - { service: home-nas/sink, listen: 127.0.0.1:18081, pool: 0 }"
	idle_client c1 18081
	FD1=$IDLE_FD
	echo hello1 >&"$FD1"
	wait_until 20 grep -q hello1 "$TMP/sink.out" || fail "nothing through the first tunnel"
	read -r RP LP < <(tunnel_ports)
	[ -n "$LP" ] || fail "no relay tunnel in the subscriber's namespace"
	idle_client c2 18081
	FD2=$IDLE_FD
	echo hello2 >&"$FD2"
	wait_until 20 grep -q hello2 "$TMP/sink.out" || fail "nothing through the second tunnel"
}

# forge HEX: one segment from the relay to the subscriber's first tunnel,
# injected on NAT B's LAN side with the sequence numbers of the provider's
# ACK of a ping (the sink sends nothing else that way).
forge() {
	bg "$NATB" "$TMP/inject.log" "$NSTAP" inject -i lan0 --from "$SRELAY4:$RP" \
		--to "$HB4:$LP" --hex "$1" --wait 20 --learn from
	INJECT_PID=$BG_PID
	wait_for_line "$TMP/inject.log" sniffing 10 "$INJECT_PID" || fail "nstap did not start"
	echo ping >&"$FD1"
	wait_pid "$INJECT_PID" 30 || fail "nstap injected nothing: $(tail -n 2 "$TMP/inject.log")"
}

test_forged_record_closes() {
	forge_bed "$PUBLISH_WEB"
	# a record header and 64 bytes that are no record of this tunnel's keys
	forge "1703030040$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	wait_until 20 grep -q "tunnel closed (a sealed record failed authentication" \
		"$TMP/agent-laptop.log" ||
		fail "the forged record did not close the tunnel: $(tail -n 3 "$TMP/agent-laptop.log")"
	! grep -q . "$TMP/c1.out" || fail "the client got bytes: $(od -c "$TMP/c1.out" | head -n 2)"
	# the other tunnel and new ones are fine
	echo again2 >&"$FD2"
	wait_until 20 grep -q again2 "$TMP/sink.out" || fail "the other tunnel broke too"
	download "$HB" 18080
}

test_forged_plain_obeyed() {
	forge_bed "$PUBLISH_WEB_PLAIN" ", encrypt: false"
	forge "$(printf 'INJECTED-XYZ\n' | od -An -tx1 | tr -d ' \n')"
	# without encryption the forged bytes reach the client: what sealing prevents
	wait_until 20 grep -q INJECTED-XYZ "$TMP/c1.out" ||
		fail "the forged segment did not reach the plain tunnel's client (nstap broken?)"
}

test_forged_datagram_dropped() {
	local rp lp got nb

	need_system
	topo_nat
	start_broker
	start_sys_relay xdp
	bg "$HA" "$TMP/echo.log" socat -T 60 UDP-LISTEN:5353,bind=127.0.0.1,fork,reuseaddr \
		EXEC:cat
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: echo, target: 127.0.0.1:5353, proto: udp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/echo, listen: 127.0.0.1:15353, proto: udp }'
	mkfifo "$TMP/u.in"
	bg "$HB" "$TMP/u.log" sh -c "exec socat -T 60 UDP:127.0.0.1:15353 - <'$TMP/u.in' >'$TMP/u.out'"
	exec {fd}>"$TMP/u.in"
	echo hello >&"$fd"
	wait_until 20 grep -q hello "$TMP/u.out" || fail "no echo"
	# (not the agent's round-trip probe socket, connected to the echo port 7701)
	read -r rp lp < <(nsx "$HB" ss -uanH | awk -v r="$SRELAY4" \
		'index($5, r ":") == 1 { split($4, l, ":"); split($5, p, ":");
		 if (p[2] != 7701) print p[2], l[2] }' |
		tail -n 1)
	[ -n "$lp" ] || fail "no UDP tunnel to the relay in the subscriber's namespace: $(nsx "$HB" ss -uan)"
	# a datagram from the relay's address and port B to NAT B's mapping of
	# the subscriber's socket: what an on-path attacker can send
	nb=$(splice_get 1 '.peers[1]' | sed 's/.*://')
	head -c 200 /dev/urandom >"$TMP/forged.bin"
	nsx "$RELAY" socat -u OPEN:"$TMP/forged.bin" \
		UDP-SENDTO:"$NATB4:$nb",bind="$SRELAY4:$rp",reuseaddr ||
		fail "cannot send the forged datagram"
	wait_until 20 grep -q "a datagram failed authentication or was replayed: dropped" \
		"$TMP/agent-laptop.log" || fail "the forged datagram was not refused"
	echo again >&"$fd"
	wait_until 20 grep -q again "$TMP/u.out" || fail "the tunnel broke after a forged datagram"
	got=$(wc -c <"$TMP/u.out")
	[ "$got" = 12 ] || fail "the client got $got bytes, not its two echoes"
}

run_tests "$@"
