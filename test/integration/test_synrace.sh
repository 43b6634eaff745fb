#!/bin/bash
# Issue 13, part 3b: a spoofed SYN, or a stranger's, racing a side of a relayed
# session to its relay port cannot make the session fail. The whole system
# (sys.sh): broker, relay, web server + provider agent home-nas on HA (side A
# of the splice), subscriber agent laptop on HB (side B). A namespace MAL on
# the "Internet" forges packets (python3 raw socket) or connects as itself.
#
# The order of the SYNs is forced, not hoped for: the NAT routers drop their
# hosts' SYNs to the relay (nft, counted) until the test lets them through;
# the hosts' TCP retransmits them (1 s, 3 s, ...).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

MAL4=203.0.113.66

PUBLISH_WEB='publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
SUBSCRIBE_WEB='subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }'
# SYNs held at the NATs take their hosts a few retransmissions (1+2+4+8 s):
# more than the 10 s defaults.
SLOW='connect-timeout: 60'

race_bed() {
	need_system python3
	topo_nat
	MAL=${NSP}mal
	ns_add "$MAL"
	inet_host "$MAL" mal "$MAL4"
	# NAT B picks its ports at random: the subscriber's public port is not
	# its own, so the broker asks for a passive splice (pure needs a port
	# that is kept); NAT A keeps ports, as most do.
	nat_random_ports "$NATB"
	start_broker "negotiate-timeout: 60"
	start_sys_relay "$1"
	random_file "$TMP/web.bin" $((4 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret "$SLOW
$PUBLISH_WEB"
}

# hold NAT: NAT drops (and counts) its host's SYNs to the relay; release NAT ends it.
hold() {
	nsx "$1" nft -f - <<-NFT
	table inet synhold {
		chain hold {
			type filter hook forward priority 0; policy accept;
			ip daddr $SRELAY4 tcp flags & (syn | ack) == syn counter drop
		}
	}
	NFT
}
release() {
	nsx "$1" nft delete table inet synhold
}
held() {
	[[ $(ip netns exec "$1" nft list table inet synhold) == *"packets "[1-9]* ]]
}

# start_client [TIMEOUT]: laptop on HB (connect-timeout TIMEOUT s, default
# 60) and a download through it, in the background.
start_client() {
	start_agent "$HB" laptop laptop-secret "connect-timeout: ${1:-60}
$SUBSCRIBE_WEB"
	nsx "$HB" curl -fsS --max-time 120 -o "$TMP/got.bin" http://127.0.0.1:18080/ &
	CURL_PID=$!
}

# client_done: the download finished and matches.
client_done() {
	wait "$CURL_PID" || fail "the download failed (curl exit $?)"
	[ "$(sha256sum <"$TMP/got.bin")" = "$(sha256sum <"$TMP/web.bin")" ] ||
		fail "sha256 of the download differs"
}

# splice_ports: PORT_A, PORT_B and SPLICE of the session's splice, from the
# relay's log ("splice N: tcp passive, ports A/B, ...").
splice_ports() {
	local line

	wait_for_line "$RELAY_LOG" 'splice [0-9]+: tcp passive, ports' 30 "$RELAY_PID" ||
		fail "the relay made no splice: $(tail -n 3 "$RELAY_LOG")"
	line=$(grep -E -m 1 'splice [0-9]+: tcp passive, ports' "$RELAY_LOG")
	[[ $line =~ splice\ ([0-9]+):\ tcp\ passive,\ ports\ ([0-9]+)/([0-9]+) ]] ||
		fail "cannot read the ports from: $line"
	SPLICE=${BASH_REMATCH[1]} PORT_A=${BASH_REMATCH[2]} PORT_B=${BASH_REMATCH[3]}
}

# spoof_syn SRC_IP SRC_PORT DST_IP DST_PORT: one SYN (MSS, SACK, window
# scale, random ISN) with a forged source, sent from MAL.
spoof_syn() {
	nsx "$MAL" python3 "$TOP/test/tools/nsforge.py" "$1" "$2" "$3" "$4" 2
}

# a_sport: the source port of HA's connection waiting for the relay (its
# SYNs held at NATA), which the NAT keeps: what an attacker would guess.
a_sport() {
	local out

	out=$(nsx "$HA" ss -Htn state syn-sent dst "$SRELAY4:$PORT_A")
	[[ $out =~ 10\.0\.1\.2:([0-9]+) ]] || return 1
	A_SPORT=${BASH_REMATCH[1]}
}

# t_spoof MODE SAMEPORT: a SYN forged from NATA's public address (SAMEPORT=1:
# from the very source port A will use; 0: another one) reaches A's relay
# port before A's own, and B's SYN comes next: before, B was answered with
# the forged SYN's ISN at once, A's real SYN found the splice taken, A timed
# out and B was reset. Now A's side must prove itself: the forged SYN never
# does, the real one does, and the download arrives.
t_spoof() {
	local mode=$1 sameport=$2 extra=${3:-0} sport i n

	race_bed "$mode"
	hold "$NATA"
	hold "$NATB"
	start_client
	splice_ports
	wait_until 30 held "$NATA" || fail "A's SYN never reached NATA"
	wait_until 10 a_sport || fail "no connection of HA waits for $SRELAY4:$PORT_A"
	sport=$A_SPORT
	[ "$sameport" = 1 ] || sport=$(((A_SPORT - 20000 + 7919) % 40000 + 20000))
	spoof_syn "$NATA4" "$sport" "$SRELAY4" "$PORT_A" || fail "cannot send the spoofed SYN"
	wait_for_line "$RELAY_LOG" "splice $SPLICE: side A connected, waiting for side B" 10 ||
		fail "the relay did not take the spoofed SYN for side A: $(tail -n 3 "$RELAY_LOG")"
	release "$NATB"
	# (before issue 13 the relay said "established" here, with the forged SYN)
	wait_for_line "$RELAY_LOG" "splice $SPLICE: (side A answered|established)" 30 ||
		fail "B's SYN did not pair with the spoofed one: $(tail -n 3 "$RELAY_LOG")"
	# A flood of forged SYNs while A's side waits for its proof: more than
	# the relay keeps candidates for (4), so the oldest make room.
	for ((i = 1; i <= extra; i++)); do
		spoof_syn "$NATA4" $(((sport + 11 * i) % 40000 + 20000)) "$SRELAY4" "$PORT_A" ||
			fail "cannot send spoofed SYN $i"
	done
	[ "$extra" = 0 ] || wait_for_line "$RELAY_LOG" \
		"splice $SPLICE: SYN from a second source .* for side A.*candidate 4$" 10 ||
		fail "the relay did not take the flood as candidates: $(tail -n 3 "$RELAY_LOG")"
	release "$NATA"
	client_done
	n=$(grep -E -m 1 "splice $SPLICE: SYN from a second source \($NATA4:$A_SPORT\) for side A" \
		"$RELAY_LOG") || fail "the relay did not see A's real SYN as a candidate"
	[[ $n =~ candidate\ ([0-9]+)$ ]] || fail "no candidate number in: $n"
	n=${BASH_REMATCH[1]}
	grep -E "splice $SPLICE: side A proved itself \(candidate $n of" "$RELAY_LOG" \
		>/dev/null || fail "A's real SYN (candidate $n) was not the one that proved itself"
	grep -E "splice $SPLICE: established" "$RELAY_LOG" >/dev/null ||
		fail "splice $SPLICE was not established"
	[ "$(last_session_path)" = relay ] || fail "path is $(last_session_path), not relay"
	grep -m 1 -E "session [0-9a-f]+ .* in [0-9]+ ms" "$BROKER_LOG" || true
}

# t_spoof_after MODE: A's own SYN first, then one forged from its very source
# port (another ISN), then B's: both of A's are answered, A's proves itself,
# at once (before, the forged one replaced A's, which had to come again).
t_spoof_after() {
	local mode=$1

	race_bed "$mode"
	hold "$NATA"
	hold "$NATB"
	start_client
	splice_ports
	wait_until 30 held "$NATA" || fail "A's SYN never reached NATA"
	wait_until 10 a_sport || fail "no connection of HA waits for $SRELAY4:$PORT_A"
	release "$NATA"
	wait_for_line "$RELAY_LOG" "splice $SPLICE: side A connected, waiting for side B" 10 ||
		fail "A's SYN did not reach the relay: $(tail -n 3 "$RELAY_LOG")"
	spoof_syn "$NATA4" "$A_SPORT" "$SRELAY4" "$PORT_A" || fail "cannot send the spoofed SYN"
	wait_for_line "$RELAY_LOG" "splice $SPLICE: SYN from a second source .* for side A" 10 ||
		fail "the relay did not take the spoofed SYN: $(tail -n 3 "$RELAY_LOG")"
	release "$NATB"
	client_done
	grep -E "splice $SPLICE: side A answered \(2 candidates\)" "$RELAY_LOG" >/dev/null ||
		fail "side A was not answered with both candidates"
	grep -E "splice $SPLICE: side A proved itself \(candidate 1 of 2\)" "$RELAY_LOG" \
		>/dev/null || fail "A's own SYN (candidate 1) did not prove itself"
}

# t_spoof_b_between MODE: what the relay cannot tell apart: A's SYN, then
# one forged from NATB's address for side B, then B's own. A is answered
# with the forged ISN, proves itself, and the splice is taken: B's real SYN
# is dropped. The subscriber's set-up times out (connect-timeout 5 s), it
# asks the broker again, and the new session's splice (fresh random ports)
# carries the download.
t_spoof_b_between() {
	local mode=$1 first

	race_bed "$mode"
	hold "$NATA"
	hold "$NATB"
	start_client 5
	splice_ports
	first=$SPLICE
	wait_until 30 held "$NATA" || fail "A's SYN never reached NATA"
	release "$NATA"
	wait_for_line "$RELAY_LOG" "splice $SPLICE: side A connected, waiting for side B" 10 ||
		fail "A's SYN did not reach the relay: $(tail -n 3 "$RELAY_LOG")"
	spoof_syn "$NATB4" 33333 "$SRELAY4" "$PORT_B" || fail "cannot send the spoofed SYN"
	wait_for_line "$RELAY_LOG" "splice $SPLICE: established" 10 ||
		fail "the forged SYN for B did not complete the pair: $(tail -n 3 "$RELAY_LOG")"
	release "$NATB"
	client_done
	grep -E "relayed tunnel failed .*: asking the broker again \(1 of 2\)" "$AGENT_LOG" \
		>/dev/null || fail "the subscriber did not ask again: $(tail -n 3 "$AGENT_LOG")"
	[ "$(grep -c -E 'splice [0-9]+: established' "$RELAY_LOG")" -ge 2 ] ||
		fail "no second splice was established"
	[ "$(grep -E -m 1 'splice [0-9]+: established' "$RELAY_LOG")" != \
	  "$(grep -E 'splice [0-9]+: established' "$RELAY_LOG" | tail -n 1)" ] ||
		fail "the download did not go through a second splice"
	echo "splice $first was taken; the session's second splice carried the download"
}

# t_stranger_at_nats MODE: the issue's stranger: connects to both relay
# ports first, from the very addresses the broker allowed (the NAT routers'
# own), completes both handshakes (so it proves itself as side A), then sends
# and reads nothing. The relay cannot tell it from the agents: the splice
# is the stranger's, the subscriber's set-up times out (connect-timeout 5 s)
# and it asks the broker again; the fresh splice (random ports the stranger
# does not know) carries the download.
t_stranger_at_nats() {
	local mode=$1 first pa pb

	race_bed "$mode"
	hold "$NATA"
	hold "$NATB"
	start_client 5
	splice_ports
	first=$SPLICE
	wait_until 30 held "$NATA" || fail "A's SYN never reached NATA"
	# (the routers' own connections are not forwarded: the hold lets them out)
	bg "$NATA" "$TMP/stranger-a.log" python3 -c 'import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
print("connected", flush=True)
time.sleep(120)' "$SRELAY4" "$PORT_A"
	pa=$BG_PID
	wait_for_line "$RELAY_LOG" "splice $SPLICE: side A connected, waiting for side B" 10 ||
		fail "the stranger's SYN for A did not reach the relay: $(tail -n 3 "$RELAY_LOG")"
	bg "$NATB" "$TMP/stranger-b.log" python3 -c 'import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
print("connected", flush=True)
time.sleep(120)' "$SRELAY4" "$PORT_B"
	pb=$BG_PID
	wait_for_line "$TMP/stranger-a.log" connected 30 "$pa" ||
		fail "the stranger at A's port was not answered: $(tail -n 3 "$RELAY_LOG")"
	wait_for_line "$TMP/stranger-b.log" connected 30 "$pb" ||
		fail "the stranger at B's port was not answered: $(tail -n 3 "$RELAY_LOG")"
	wait_for_line "$RELAY_LOG" "splice $SPLICE: established" 10 ||
		fail "the stranger's pair was not spliced: $(tail -n 3 "$RELAY_LOG")"
	release "$NATA"
	release "$NATB"
	client_done
	grep -E "relayed tunnel failed .*: asking the broker again \(1 of 2\)" "$AGENT_LOG" \
		>/dev/null || fail "the subscriber did not ask again: $(tail -n 3 "$AGENT_LOG")"
	[ "$(grep -c -E 'splice [0-9]+: established' "$RELAY_LOG")" -ge 2 ] ||
		fail "no second splice was established"
	kill "$pa" "$pb" 2>/dev/null || true
	echo "splice $first was the stranger's; a second splice carried the download"
}

# t_restart MODE: the relay daemon is killed while side A must prove itself
# (the forged SYN answered, B waiting) and started again: it takes the splice
# over from the pins, answers side A again and waits for its proof; the real
# A then proves itself and the download arrives.
t_restart() {
	local mode=$1 log1

	race_bed "$mode"
	hold "$NATA"
	hold "$NATB"
	start_client
	splice_ports
	wait_until 30 held "$NATA" || fail "A's SYN never reached NATA"
	wait_until 10 a_sport || fail "no connection of HA waits for $SRELAY4:$PORT_A"
	spoof_syn "$NATA4" $(((A_SPORT - 20000 + 104729) % 40000 + 20000)) "$SRELAY4" \
		"$PORT_A" || fail "cannot send the spoofed SYN"
	wait_for_line "$RELAY_LOG" "splice $SPLICE: side A connected, waiting for side B" 10 ||
		fail "the relay did not take the spoofed SYN for side A"
	release "$NATB"
	wait_for_line "$RELAY_LOG" "splice $SPLICE: side A answered" 30 ||
		fail "B's SYN did not pair with the spoofed one: $(tail -n 3 "$RELAY_LOG")"
	log1=$RELAY_LOG
	kill -KILL "$RELAY_PID"
	wait_pid "$RELAY_PID" 10 || true
	start_sys_relay "$mode"
	[ "$RELAY_LOG" != "$log1" ] || fail "the restarted relay logs to the same file"
	grep -E "splice $SPLICE: paired, not established: waiting for side A's proof again" \
		"$RELAY_LOG" >/dev/null || fail "the restarted relay did not resume the proof"
	release "$NATA"
	client_done
	grep -E "splice $SPLICE: side A proved itself" "$RELAY_LOG" >/dev/null ||
		fail "side A did not prove itself to the restarted relay"
}

# t_stranger MODE: MAL, a host of its own, connects to both relay ports of
# the session before either agent does (their SYNs held at the NATs): the
# relay drops its SYNs (not from the addresses the broker allowed) and the
# session goes on.
t_stranger() {
	local mode=$1 src0 port rc

	race_bed "$mode"
	hold "$NATA"
	hold "$NATB"
	start_client
	splice_ports
	src0=$(stat_get source)
	for port in "$PORT_A" "$PORT_B"; do
		rc=0
		nsx "$MAL" "$TOP/test/tools/nsxfer" --connect "$SRELAY4:$port" --send 1K \
			--timeout 3 >/dev/null 2>&1 || rc=$?
		[ "$rc" = 4 ] || fail "the stranger at relay port $port: nsxfer exit $rc (4: no answer)"
	done
	[ "$(stat_get source)" -ge $((src0 + 2)) ] ||
		fail "the relay did not count the stranger's SYNs as source drops"
	release "$NATB"
	release "$NATA"
	client_done
	grep -E "splice $SPLICE: established" "$RELAY_LOG" >/dev/null ||
		fail "splice $SPLICE was not established"
	! grep -E "splice $SPLICE: SYN from" "$RELAY_LOG" ||
		fail "a stranger's SYN reached the daemon"
}

# t_plain MODE: no race: the first side proves itself and the second is
# answered (the cost: one round trip to the first side).
t_plain() {
	race_bed "$1"
	start_client
	splice_ports
	client_done
	grep -E "splice $SPLICE: side [AB] proved itself \(candidate 1 of 1\)" "$RELAY_LOG" \
		>/dev/null || fail "no side proved itself: $(grep "splice $SPLICE" "$RELAY_LOG")"
	grep -m 1 -E "session [0-9a-f]+ .* in [0-9]+ ms" "$BROKER_LOG" || true
}

test_xdp_spoof_same_port() { t_spoof xdp 1; }
test_tc_spoof_other_port() { t_spoof tc 0; }
test_xdp_spoof_flood() { t_spoof xdp 0 5; }
test_xdp_stranger() { t_stranger xdp; }
test_tc_restart() { t_restart tc; }
test_tc_spoof_after_a() { t_spoof_after tc; }
test_xdp_spoof_b_between() { t_spoof_b_between xdp; }
test_tc_plain() { t_plain tc; }
test_xdp_stranger_at_nats() { t_stranger_at_nats xdp; }

run_tests
