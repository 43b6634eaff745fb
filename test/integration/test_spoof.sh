#!/usr/bin/env bash
# The relay's fast path resists spoofing (issue 13; bpf/lib/splice.h
# ns_window, RFC 5961). The whole system (sys.sh): a 100 MiB download from
# home-nas (HA, behind NAT A) to laptop (HB, behind NAT B) through the
# relay. Mid-transfer MAL, a host on the "Internet" that knows the splice's
# 5-tuples (the relay's address and ports, the NATs' addresses and ports),
# forges with a random sequence number: one RST as side A, one FIN as each
# side, 30 data segments as side A. Before, one RST or the two FINs marked
# the splice closed and the transfer broke; now the relay drops what the
# endpoints would reject (drop reason "window") and the download arrives.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

MAL4=203.0.113.66

# spoof_bed MODE PURE: PURE=1: NAT B keeps ports (a pure splice), else it
# picks them at random (passive).
spoof_bed() {
	need_system python3
	topo_nat
	MAL=${NSP}mal
	ns_add "$MAL"
	inet_host "$MAL" mal "$MAL4"
	[ "$2" = 1 ] || nat_random_ports "$NATB"
	start_broker
	# short graces: a splice wrongly marked closed goes within a second
	# (the defaults, 10 s, could outlast the rest of the download)
	start_sys_relay "$1" --broker-fingerprint "$BROKER_FP" --rst-grace 1 --close-grace 1
	web_pair $((100 << 20))
}

# forge SRC SPORT DPORT FLAGS N [DATA]: N TCP segments from MAL with the
# forged source SRC:SPORT to the relay's DPORT, random sequence and
# acknowledgment numbers, FLAGS (a number), DATA bytes of payload each.
forge() {
	nsx "$MAL" python3 "$TOP/test/tools/nsforge.py" "$1" "$2" "$SRELAY4" "$3" "$4" \
		--count "$5" --data "${6:-0}" >/dev/null
}

# t_spoof MODE PURE
t_spoof() {
	local line id mode pa pb ea eb a_port b_port w0 w1

	spoof_bed "$1" "$2"
	nsx "$HB" curl -fsS --max-time 150 --limit-rate 10M -o "$TMP/got.bin" \
		http://127.0.0.1:18080/ &
	local dl=$!
	# the splice's 5-tuples, as `splice list` tells them
	wait_until 30 eval 'nsc -j splice list | jq -e "[.[] | select(.proto == \"tcp\" and
		.state == \"established\")] | length == 1" >/dev/null' ||
		fail "no splice was established: $(tail -n 3 "$RELAY_LOG")"
	line=$(nsc -j splice list | jq -r '.[] | select(.state == "established") |
		"\(.id) \(.mode) \(.ports[0]) \(.ports[1]) \(.peers[0]) \(.peers[1])"')
	read -r id mode a_port b_port pa pb <<<"$line"
	[ "${pa%:*}" = "$NATA4" ] && [ "${pb%:*}" = "$NATB4" ] ||
		fail "side A or B is not behind its NAT: $line"
	ea=${pa##*:} eb=${pb##*:}
	# (pure: B connects to A's source port, ports[1])
	[ "$mode" = "$([ "$2" = 1 ] && echo pure || echo passive)" ] ||
		fail "a $mode splice, not what NAT B should give: $line"
	# mid-transfer
	wait_until 60 eval '[ "$(stat -c %s "$TMP/got.bin" 2>/dev/null || echo 0)" -gt $((20 << 20)) ]' ||
		fail "the download did not get going"
	w0=$(stat_get window)
	forge "$NATA4" "$ea" "$a_port" 4 1		# RST as side A
	forge "$NATA4" "$ea" "$a_port" 17 1		# FIN|ACK as side A
	forge "$NATB4" "$eb" "$b_port" 17 1		# FIN|ACK as side B
	forge "$NATA4" "$ea" "$a_port" 24 30 100	# 30 PSH|ACK with 100 bytes as side A
	wait_until 10 eval '[ $(($(stat_get window) - w0)) -ge 30 ]' ||
		fail "the relay dropped $(($(stat_get window) - w0)) of 33 forged segments as out of window"
	w1=$(stat_get window)
	echo "mode $1 ($([ "$2" = 1 ] && echo pure || echo passive)): $((w1 - w0)) of 33 forged segments dropped as out of the window"
	wait "$dl" || fail "the download failed (curl exit $?)"
	[ "$(sha256sum <"$TMP/got.bin")" = "$(sha256sum <"$TMP/web.bin")" ] ||
		fail "sha256 of the download differs"
	! grep -E "splice $id: .*(closed|reset)" "$RELAY_LOG" >/dev/null ||
		fail "the splice was marked closed: $(grep -E "splice $id: .*(closed|reset)" "$RELAY_LOG")"
}

test_xdp_pure() { t_spoof xdp 1; }
test_tc_passive() { t_spoof tc 0; }

run_tests
