#!/bin/bash
# The first-segment race of a passive splice (issue 10): A connects first and
# writes at once, B (behind a NAT) connects next. A's first segments may
# reach NAT B before B's SYN-ACK has opened NAT B's connection: a NAT that
# has only seen B's SYN finds a segment from the relay out of state and
# answers it with an RST of its own, which must not end the splice. (With B
# first there is no race any more: the relay answers the side that connected
# first and answers the other only once the first proved itself by its ACK,
# which crossed NAT B after B's SYN-ACK: relay_splice.c, "proving".)
#
# The bed forces the race every time: NAT B loses the first SYN-ACK of each
# connection (an nftables rule before its conntrack), so B's SYN-ACK only
# arrives with the answer to B's retransmitted SYN, a second later, while
# A's segments arrive at once; and NAT B is strict: a segment of a
# connection whose SYN-ACK it has not seen gets an RST (Linux's conntrack
# lets it through to B, which drops it; other NATs answer like this). Splices are made by hand (no
# agent, no proof ordering), with unmodified endpoints (nsxfer).
#   RACE_COUNT  splices per test (default 20)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

RACE_COUNT=${RACE_COUNT:-20}

# race_bed MODE: the two-NAT bed, a relay without a broker, and NAT B losing
# the first SYN-ACK of each connection from the relay and resetting what
# comes before the SYN-ACK it lets through.
race_bed() {
	need jq nft
	topo_nat
	RELAY4=$SRELAY4 RELAY6=2001:db8::20 RELAY_PORTS=20000-20999 start_relay "$1"
	nsx "$NATB" nft -f - <<-NFT
	table ip race {
		set seen {
			type ipv4_addr . inet_service . inet_service
			flags dynamic
			timeout 5m
		}
		set opened {
			type ipv4_addr . inet_service . inet_service
			flags dynamic
			timeout 5m
		}
		chain pre {
			type filter hook prerouting priority raw; policy accept;
			ip saddr != $SRELAY4 accept
			tcp flags & (syn | ack | rst | fin) == syn | ack \
				ip saddr . tcp sport . tcp dport @seen \
				update @opened { ip saddr . tcp sport . tcp dport } accept
			tcp flags & (syn | ack | rst | fin) == syn | ack \
				update @seen { ip saddr . tcp sport . tcp dport } counter name lost drop
			tcp flags & (syn | rst) == 0 \
				ip saddr . tcp sport . tcp dport != @opened \
				counter name early reject with tcp reset
		}
		counter lost { }
		counter early { }
	}
	NFT
}

# race_one I: splice I of the run; A first, writing at once, then B; both checked.
race_one() {
	local i=$1 sa=$((64 * 1024)) sb=$((16 * 1024))

	splice_add >/dev/null
	bg "$HA" "$TMP/a.$i.out" "$NSXFER" --timeout 30 --connect "$SRELAY4:$PORT_A" \
		--send "$sa" --seed 1
	local apid=$BG_PID
	wait_until 10 splice_state_is "$SPLICE_ID" half-open ||
		fail "splice $SPLICE_ID: A's SYN did not arrive"
	bg "$HB" "$TMP/b.$i.out" "$NSXFER" --timeout 30 --connect "$SRELAY4:$PORT_B" \
		--send "$sb" --seed 2
	local bpid=$BG_PID
	xfer_wait "$apid" "$TMP/a.$i.out" "splice $i, A" 60
	xfer_wait "$bpid" "$TMP/b.$i.out" "splice $i, B" 60
	check_xfer "$TMP/a.$i.out" "$TMP/b.$i.out" "$sa" "$sb"
}

race_test() {
	local i lost early

	race_bed "$1"
	for ((i = 1; i <= RACE_COUNT; i++)); do
		race_one "$i"
	done
	# The bed did what it says: B's first SYN-ACKs were lost.
	lost=$(nsx "$NATB" nft -j list counter ip race lost | jq -er '.nftables[] |
		select(.counter) | .counter.packets') || fail "no counter"
	[ "$lost" -ge "$RACE_COUNT" ] || fail "NAT B lost only $lost SYN-ACKs"
	early=$(nsx "$NATB" nft -j list counter ip race early | jq -er '.nftables[] |
		select(.counter) | .counter.packets') || fail "no counter"
	[ "$early" -ge 1 ] || fail "no segment of A outran B's SYN-ACK: the bed did not race"
	# With the module shim the kernel paired the SYNs and sent the SYN-ACKs.
	if grep 'handshake: kernel shim' "$RELAY_LOG" >/dev/null; then
		[ "$(stat_get handshake)" -ge "$RACE_COUNT" ] ||
			fail "the module shim is loaded but handled $(stat_get handshake) SYNs"
	fi
	echo "$RACE_COUNT splices delivered; NAT B lost $lost first SYN-ACKs and reset" \
		"$early segments that outran them; the relay dropped $(stat_get early_rst) RSTs;" \
		"$(stat_get handshake) SYNs handled in the kernel"
}

test_first_segment_race_xdp() {
	race_test xdp
}

test_first_segment_race_tc() {
	race_test tc
}

run_tests
