#!/bin/bash
# UDP stays UDP (issue 11): a UDP service's datagrams travel as datagrams on
# every path (the relay's UDP splice, direct, reverse), one per datagram, and
# framed in a TCP tunnel only where UDP does not get through.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

UDP_N=${UDP_N:-10000}

PUBLISH_ECHO='publish:
  - { name: echo, target: 127.0.0.1:9000, proto: udp }'

# echo_server NS: a UDP echo on 127.0.0.1:9000 in NS, with an nftables
# counter of the datagrams reaching it (udp_delivered).
echo_server() {
	bg "$1" "$TMP/echo.log" "$NSUDP" --echo --bind 127.0.0.1:9000 --idle 600 --timeout 600
	ECHO_NS=$1
	nsx "$1" nft -f - <<-NFT
	table inet echo_count {
		counter delivered {}
		chain input {
			type filter hook input priority filter; policy accept;
			iifname "lo" udp dport 9000 counter name "delivered"
		}
	}
	NFT
	wait_until 10 nsx "$1" sh -c 'ss -lun | grep -q 127.0.0.1:9000'
}

udp_delivered() {
	nsx "$ECHO_NS" nft -j list counter inet echo_count delivered |
		jq -er '.nftables[] | select(.counter) | .counter.packets'
}

# datagrams NS PORT: UDP_N datagrams of 12..1400 bytes (sizes vary) through
# the subscription at 127.0.0.1:PORT in NS, each echoed: every echo must be
# exactly one datagram sent (none merged, split or corrupted), at most 1 %
# lost.
datagrams() {
	local out

	out=$(nsx "$1" "$NSUDP" --relay "127.0.0.1:$2" --send "$UDP_N" --size 12-1400 \
		--window 32 --max-loss 1 --timeout 30 2>&1) || fail "datagrams: $out"
	echo "    $out" >&2
}

# splice_list_json: the relay's splices as a JSON array.
splice_list_json() {
	nsc -j splice list | jq 'if type == "array" then . else .splices // [] end'
}

last_session() {
	broker_api /api/v1/sessions | jq -r "last | .$1"
}

udp_bed() {
	need_system
	topo_nat
	start_broker
	start_sys_relay "$1"
	echo_server "$HA"
	start_agent "$HA" home-nas nas-secret "$PUBLISH_ECHO"
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/echo, listen: 127.0.0.1:19000, proto: udp }'
}

# The relay path: the relay's UDP splice carries them, in the kernel.
test_udp_relay_xdp() {
	udp_bed xdp
	datagrams "$HB" 19000
	[ "$(last_session transport)" = udp ] || fail "transport $(last_session transport), not udp"
	[ "$(last_session path)" = relay ] || fail "path $(last_session path), not relay"
	[ "$(stat_get tx)" -ge $((2 * UDP_N * 99 / 100)) ] ||
		fail "the relay's XDP forwarded only $(stat_get tx) packets"
	splice_list_json | jq -e '[.[] | select(.proto == "udp")] | length == 1' >/dev/null ||
		fail "no UDP splice on the relay: $(splice_list_json)"
}

test_udp_relay_tc() {
	udp_bed tc
	datagrams "$HB" 19000
	[ "$(last_session transport)" = udp ] || fail "transport $(last_session transport), not udp"
	[ "$(stat_get redirect)" -ge $((2 * UDP_N * 99 / 100)) ] ||
		fail "TC redirected only $(stat_get redirect) packets"
}

# UDP blocked between NATB and the relay: the subscriber falls back to the
# framed TCP tunnel within udp-fallback, and the same datagrams get through.
test_udp_fallback_to_tcp() {
	need_system
	topo_nat
	start_broker
	start_sys_relay tc
	nsx "$NATB" nft -f - <<-NFT
	table ip udp_block {
		chain forward {
			type filter hook forward priority filter; policy accept;
			ip daddr $SRELAY4 meta l4proto udp drop
		}
	}
	NFT
	echo_server "$HA"
	start_agent "$HA" home-nas nas-secret "$PUBLISH_ECHO"
	start_agent "$HB" laptop laptop-secret 'udp-fallback: 2
subscribe:
  - { service: home-nas/echo, listen: 127.0.0.1:19000, proto: udp }'
	# a first client's datagrams wait (bounded) while UDP is tried; it falls
	# back, and the next client goes straight to TCP
	echo first | nsx "$HB" socat -u - UDP4:127.0.0.1:19000
	wait_for_line "$TMP/agent-laptop.log" "falling back to a TCP tunnel" 30 ||
		fail "the subscriber did not say it fell back"
	wait_for_line "$TMP/agent-laptop.log" "tunnel up [(]relay path[)]$" 30 ||
		fail "no TCP tunnel after the fallback"
	datagrams "$HB" 19000
	[ "$(last_session transport)" = tcp ] || fail "transport $(last_session transport), not tcp"
	[ "$(broker_api /api/v1/sessions | jq '[.[] | select(.transport == "udp")] | length')" -ge 1 ] ||
		fail "the UDP attempt is not in the session list"
}

# The direct path: the provider is public (PUB, tunnel-listen): the subscriber
# sends its datagrams straight to the provider's tunnel-listen UDP port.
test_udp_direct() {
	need_system
	topo_nat
	start_broker
	echo_server "$PUB"
	start_agent "$PUB" pub pub-secret "tunnel-listen: 0.0.0.0:7701
$PUBLISH_ECHO"
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: pub/echo, listen: 127.0.0.1:19000, proto: udp }'
	datagrams "$HB" 19000
	[ "$(last_session path)" = direct ] || fail "path $(last_session path), not direct"
	[ "$(last_session transport)" = udp ] || fail "transport $(last_session transport), not udp"
}

# The reverse path: only the subscriber is public; the provider behind NATA
# sends to the subscriber's tunnel-listen UDP port.
test_udp_reverse() {
	need_system
	topo_nat
	start_broker
	echo_server "$HA"
	start_agent "$HA" home-nas nas-secret "$PUBLISH_ECHO"
	start_agent "$PUB" pub pub-secret 'tunnel-listen: 0.0.0.0:7701
subscribe:
  - { service: home-nas/echo, listen: 127.0.0.1:19000, proto: udp }'
	datagrams "$PUB" 19000
	[ "$(last_session path)" = reverse ] || fail "path $(last_session path), not reverse"
	[ "$(last_session transport)" = udp ] || fail "transport $(last_session transport), not udp"
}

# A stranger (PUB) sends to the relay's UDP splice ports, and to a provider's
# tunnel-listen UDP port forged proofs and garbage: nothing reaches the
# service, nothing comes back, and the real client still gets through.
test_udp_stranger() {
	local before ports port out

	udp_bed tc
	datagrams "$HB" 19000
	before=$(udp_delivered)
	ports=$(splice_list_json | jq -r '.[] | select(.proto == "udp") | .ports[]')
	[ -n "$ports" ] || fail "no UDP splice ports"
	for port in $ports; do
		out=$(head -c 200 /dev/urandom | nsx "$PUB" socat -T 2 - "UDP4:$SRELAY4:$port" | wc -c)
		[ "$out" = 0 ] || fail "the relay port $port answered a stranger with $out bytes"
	done
	[ "$(udp_delivered)" = "$before" ] || fail "a stranger's datagram reached the service"
	# a provider with a tunnel-listen UDP port: a forged proof and garbage
	start_agent "$PUB" pub pub-secret "tunnel-listen: 0.0.0.0:7701
$PUBLISH_ECHO"
	{ printf 'NSP1'; head -c 58 /dev/urandom; } >"$TMP/forged"
	for f in "$TMP/forged" /dev/urandom; do
		out=$(head -c 62 "$f" | nsx "$HB" socat -T 2 - "UDP4:$PUB4:7701" | wc -c)
		[ "$out" = 0 ] || fail "tunnel-listen answered a stranger with $out bytes"
	done
	kill -0 "$AGENT_PID" || fail "the provider died"
	datagrams "$HB" 19000
}

run_tests "$@"
