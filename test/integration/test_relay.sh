#!/usr/bin/env bash
# The relay with real TCP/UDP stacks on both ends (DESIGN §2): every test runs
# once per dataplane, test_xdp_*, test_tc_* and, where the feature exists
# without BPF, test_user_* (--mode userspace). TEST_FILTER=xdp_ runs one mode.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MiB=$((1 << 20))
BIG=${BIG:-$((200 * MiB))}	# the "200 MiB each way" transfers
XFER_IDLE=30			# nsxfer: seconds without progress before it gives up

# relay_bed MODE [relay args]: the topology and a ready relay.
relay_bed() {
	need jq
	topo_relay
	start_relay "$@"
}

# is_bpf MODE: does this mode have the BPF dataplane (counters, pins)?
is_bpf() {
	[ "$1" != userspace ]
}

# dataplane_packets: spliced packets so far (XDP_TX + redirects, both hooks).
dataplane_packets() {
	echo $(($(stat_get tx) + $(stat_get redirect)))
}

# start_xfer WHO NS OUT ARGS...: nsxfer in the background; pid in XFER_PID_<WHO>.
start_xfer() {
	local who=$1 ns=$2 out=$3

	shift 3
	bg "$ns" "$out" "$NSXFER" --timeout "$XFER_IDLE" --verbose "$@"
	printf -v "XFER_PID_$who" %s "$BG_PID"
}

# passive_xfer SIZE_A SIZE_B [splice add args]: a passive splice carrying
# SIZE_A bytes A->B and SIZE_B bytes B->A at the same time, verified by sha256.
passive_xfer() {
	local sa=$1 sb=$2 ip

	shift 2
	splice_add "$@"
	ip=${SPLICE_RELAY:-$RELAY4}
	start_xfer A "$A" "$TMP/a.out" --connect "$(hostport "$ip" "$PORT_A")" --send "$sa" --seed 1
	start_xfer B "$B" "$TMP/b.out" --connect "$(hostport "$ip" "$PORT_B")" --send "$sb" --seed 2
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A 900
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B 900
	# The counters now: the splice is deleted a close grace after its
	# FINs, and the sha256 checks below take longer than that in a VM.
	XFER_BYTES=$(splice_total "$SPLICE_ID" bytes) || XFER_BYTES=
	check_xfer "$TMP/a.out" "$TMP/b.out" "$sa" "$sb"
	grep -h 'Mbit/s' "$TMP/a.out" "$TMP/b.out" || true
}

# check_splice_moved ID BYTES: the splice's counters saw at least BYTES (as
# passive_xfer read them when the transfer ended).
check_splice_moved() {
	local got=$XFER_BYTES

	[ -n "$got" ] || fail "splice $1 was not listed when its transfer ended"
	[ "$got" -ge "$2" ] || fail "splice $1 counted $got bytes, expected at least $2"
}

# ------------------------------------------------------------------ tests

# 200 MiB each way at once through a passive splice.
t_passive() {
	local mode=$1 p0

	relay_bed "$mode"
	is_bpf "$mode" && p0=$(dataplane_packets)
	passive_xfer "$BIG" "$BIG"
	check_splice_moved "$SPLICE_ID" $((2 * BIG))
	if is_bpf "$mode"; then
		# At least one packet per 64 KiB: the bytes went through the dataplane.
		[ $(($(dataplane_packets) - p0)) -ge $((2 * BIG / 65536)) ] ||
			fail "the dataplane counted only $(($(dataplane_packets) - p0)) spliced packets"
	fi
}

# 200 MiB each way through a pure splice: ports [PA, 0] until A's SYN, then
# [PA, X] with X A's source port; B connects from port PA to relay:X.
t_pure() {
	local mode=$1 x peer

	relay_bed "$mode"
	splice_add --mode pure
	[ "$PORT_B" = 0 ] || fail "pure splice: ports[1] is $PORT_B before A connected, not 0"
	start_xfer A "$A" "$TMP/a.out" --connect "$RELAY4:$PORT_A" --send "$BIG" --seed 1
	wait_until 20 eval '[ "$(splice_get "$SPLICE_ID" ".ports[1]")" != 0 ]' ||
		fail "pure splice: ports[1] stayed 0 after A's SYN"
	x=$(splice_get "$SPLICE_ID" '.ports[1]')
	peer=$(splice_get "$SPLICE_ID" '.peers[0]')
	[ "$peer" = "$A4:$x" ] || fail "pure splice: ports[1] $x is not A's source port ($peer)"
	start_xfer B "$B" "$TMP/b.out" --bind "$B4:$PORT_A" --connect "$RELAY4:$x" \
		--send "$BIG" --seed 2
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A 900
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B 900
	XFER_BYTES=$(splice_total "$SPLICE_ID" bytes) || XFER_BYTES=
	check_xfer "$TMP/a.out" "$TMP/b.out" "$BIG" "$BIG"
	check_splice_moved "$SPLICE_ID" $((2 * BIG))
}

# A pure splice whose side B waits on A's source port, which the relay host
# itself uses for a connection of its own (as its broker connection's
# ephemeral port may be): while B is awaited, and after, the host's own
# connection on that port keeps working, and the splice delivers too.
t_pure_own_port() {
	local mode=$1 own=45000 x pid_l pid_o

	relay_bed "$mode"
	splice_add --mode pure
	# A connects from port $own, so the relay expects B on relay:$own ...
	start_xfer A "$A" "$TMP/a.out" --bind "$A4:$own" --connect "$RELAY4:$PORT_A" \
		--send "$MiB" --seed 1
	wait_until 20 eval '[ "$(splice_get "$SPLICE_ID" ".ports[1]")" = $own ]' ||
		fail "the relay does not expect side B on A's source port $own"
	# ... while the relay host has a connection of its own from port $own.
	bg "$A" "$TMP/l.out" "$NSXFER" --listen "$A4:7000" --send "$MiB" --seed 3 --timeout 20
	pid_l=$BG_PID
	wait_for_line "$TMP/l.out" listening 10 "$pid_l" || fail "no listener on A"
	bg "$RELAY" "$TMP/o.out" "$NSXFER" --bind "$RELAY4:$own" --connect "$A4:7000" \
		--send "$MiB" --seed 4 --timeout 20
	pid_o=$BG_PID
	xfer_wait "$pid_o" "$TMP/o.out" "the relay host's own connection" 60
	xfer_wait "$pid_l" "$TMP/l.out" "A's listener" 60
	check_xfer "$TMP/o.out" "$TMP/l.out" "$MiB" "$MiB" 4 3
	x=$(splice_get "$SPLICE_ID" '.ports[1]')
	start_xfer B "$B" "$TMP/b.out" --bind "$B4:$PORT_A" --connect "$RELAY4:$x" \
		--send "$MiB" --seed 2
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A 60
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B 60
	check_xfer "$TMP/a.out" "$TMP/b.out" "$MiB" "$MiB"
}

# Splices deleted while both of their connections are sending: by `splice
# del` (the CLI's request and the splice's data arrive in one batch of
# events), and by the garbage collector (side A resets while B still sends,
# --rst-grace 0). The daemon must survive every deletion without touching a
# freed splice: under `make SAN=1` AddressSanitizer reports it in the log.
t_delete_busy() {
	local mode=$1 i n=${DELETE_BUSY_N:-8} sz=$((256 * MiB))

	relay_bed "$mode" --rst-grace 0
	XFER_IDLE=20
	for i in $(seq $n); do
		splice_add
		start_xfer A "$A" "$TMP/a$i.out" --connect "$RELAY4:$PORT_A" --send "$sz" --seed 1 \
			$([ $((i % 2)) = 0 ] && echo "--rst-after $((4 * MiB))")
		start_xfer B "$B" "$TMP/b$i.out" --connect "$RELAY4:$PORT_B" --send "$sz" --seed 2
		wait_until 20 eval 'splice_state_is "$SPLICE_ID" established ||
			splice_state_is "$SPLICE_ID" closed || splice_gone "$SPLICE_ID"' ||
			fail "splice $i did not get established"
		# odd: deleted by the CLI mid-transfer; even: A resets, the GC deletes it
		[ $((i % 2)) = 0 ] || nsc splice del "$SPLICE_ID" >/dev/null 2>&1 || true
		wait_pid "$XFER_PID_A" 60 >/dev/null 2>&1 || true
		wait_pid "$XFER_PID_B" 60 >/dev/null 2>&1 || true
		wait_until 10 splice_gone "$SPLICE_ID" || fail "splice $i was not deleted"
		kill -0 "$RELAY_PID" || fail "the relay died deleting splice $i: $(tail -n 5 "$RELAY_LOG")"
	done
	! grep -q 'AddressSanitizer\|runtime error' "$RELAY_LOG" ||
		fail "sanitizer report: $(grep -m3 'AddressSanitizer\|runtime error\|#[0-3] ' "$RELAY_LOG")"
	passive_xfer "$MiB" "$MiB"	# and it still works
}

# A passive splice over IPv6.
t_ipv6() {
	local mode=$1

	relay_bed "$mode"
	passive_xfer $((64 * MiB)) $((64 * MiB)) --family inet6
	[ "$SPLICE_RELAY" = "$RELAY6" ] || fail "inet6 splice lives on '$SPLICE_RELAY', not $RELAY6"
	check_splice_moved "$SPLICE_ID" $((128 * MiB))
}

# iperf3 through splices. iperf3 opens several connections to one listening
# server, and both ends of a splice connect, so each end runs a forwarder:
# on A, socat accepts iperf3's connections on 127.0.0.1:5201 and for each one
# asks the relay for a splice, starts in B a socat from relay:PB to the iperf3
# server on B's 127.0.0.1:5201, and connects itself to relay:PA.
t_iperf3() {
	local mode=$1 p0 got n id total b

	need iperf3 socat
	# (iperf3 resets its connections: long graces keep the splices listed
	# until their bytes are counted, however slow the machine)
	relay_bed "$mode" --close-grace 600 --rst-grace 600
	cat >"$TMP/fwd-a.sh" <<-EOF
	#!/bin/bash
	json=\$("$NATSPLICE" -S "$SOCK" -j splice add) || exit 1
	echo "\$(jq -r .id <<<"\$json")" >>"$TMP/iperf-splices"
	ip netns exec "$B" socat "TCP:$RELAY4:\$(jq -r '.ports[1]' <<<"\$json"),bind=$B4" \\
		TCP:127.0.0.1:5201 </dev/null >>"$TMP/fwd-b.log" 2>&1 &
	exec socat STDIO "TCP:$RELAY4:\$(jq -r '.ports[0]' <<<"\$json"),bind=$A4"
	EOF
	chmod +x "$TMP/fwd-a.sh"
	bg "$B" "$TMP/iperf3-server.log" iperf3 -s -B 127.0.0.1 -p 5201
	bg "$A" "$TMP/fwd-a.log" socat TCP-LISTEN:5201,bind=127.0.0.1,fork,reuseaddr \
		EXEC:"$TMP/fwd-a.sh"
	wait_until 10 eval '[ -n "$(nsx "$B" ss -Hltn "sport = :5201")" ]' || fail "no iperf3 server"
	wait_until 10 eval '[ -n "$(nsx "$A" ss -Hltn "sport = :5201")" ]' || fail "no forwarder on A"
	is_bpf "$mode" && p0=$(dataplane_packets)

	nsx "$A" timeout 60 iperf3 -c 127.0.0.1 -p 5201 -t 3 -J >"$TMP/iperf.json" ||
		fail "iperf3 failed: $(jq -r '.error // empty' "$TMP/iperf.json")"
	nsx "$A" timeout 60 iperf3 -c 127.0.0.1 -p 5201 -t 2 -R -J >"$TMP/iperf-r.json" ||
		fail "iperf3 -R failed: $(jq -r '.error // empty' "$TMP/iperf-r.json")"
	got=$(jq '.end.sum_received.bytes' "$TMP/iperf.json")
	got=$((got + $(jq '.end.sum_received.bytes' "$TMP/iperf-r.json")))
	echo "iperf3: $(jq '.end.sum_received.bits_per_second / 1e6 | floor' "$TMP/iperf.json")" \
		"Mbit/s forward, $(jq '.end.sum_received.bits_per_second / 1e6 | floor' \
		"$TMP/iperf-r.json") Mbit/s reverse (userspace forwarders at both ends)"
	[ "$got" -gt 0 ] || fail "iperf3 moved no data"
	n=$(sort -u "$TMP/iperf-splices" | wc -l)
	[ "$n" -ge 4 ] || fail "only $n splices were made for 2 iperf3 runs (control + data each)"
	total=0
	for id in $(sort -u "$TMP/iperf-splices"); do
		b=$(splice_total "$id" bytes) || fail "splice $id is gone before its bytes were counted"
		total=$((total + b))
	done
	[ "$total" -ge "$got" ] ||
		fail "the splices counted $total bytes, less than the $got iperf3 received"
	if is_bpf "$mode"; then
		[ $(($(dataplane_packets) - p0)) -ge $((got / 65536)) ] ||
			fail "the dataplane counted too few spliced packets"
	fi
}

# Every combination of window scaling, SACK, timestamps and ECN (0/1 each) on
# A, each against a different combination on B (B = 15 - A: includes "A has
# everything, B nothing" and the reverse), 4 MiB each way per combination.
t_tcp_options() {
	local mode=$1 i j bad="" desc

	relay_bed "$mode"
	XFER_IDLE=20
	for i in $(seq 0 15); do
		j=$((15 - i))
		tcp_opts "$A" $((i & 1)) $((i >> 1 & 1)) $((i >> 2 & 1)) $((i >> 3 & 1))
		tcp_opts "$B" $((j & 1)) $((j >> 1 & 1)) $((j >> 2 & 1)) $((j >> 3 & 1))
		desc="A=$(opts_name $i)/B=$(opts_name $j)"
		try passive_xfer $((4 * MiB)) $((4 * MiB))
		if [ "$TRY_RC" = 0 ]; then
			echo "ok   $desc"
		else
			echo "FAIL $desc: $TRY_REASON"
			bad="$bad $desc"
		fi
	done
	[ -z "$bad" ] || fail "failed combinations:$bad"
}

# opts_name BITS: "ws+sack+ts+ecn" style name of a tcp_opts combination.
opts_name() {
	local n=""

	[ $(($1 & 1)) = 0 ] || n="$n+ws"
	[ $(($1 & 2)) = 0 ] || n="$n+sack"
	[ $(($1 & 4)) = 0 ] || n="$n+ts"
	[ $(($1 & 8)) = 0 ] || n="$n+ecn"
	echo "${n#+}${n:-none}"
}

# try CMD...: run CMD in a subshell with set -e; TRY_RC and TRY_REASON say how
# it went, and the test goes on. (Call it as a plain command, not in `if`.)
try() {
	set +e
	(
		set -e
		"$@"
	)
	TRY_RC=$?
	set -e
	TRY_REASON=$(cat "$TMP/reason" 2>/dev/null || true)
	rm -f "$TMP/reason"
}

# Half-close: A sends and shuts down its side; B sends its data only after it
# got A's EOF, and A still receives all of it.
t_half_close() {
	local mode=$1

	relay_bed "$mode"
	splice_add
	start_xfer A "$A" "$TMP/a.out" --connect "$RELAY4:$PORT_A" --send $((3 * MiB)) --seed 1
	start_xfer B "$B" "$TMP/b.out" --connect "$RELAY4:$PORT_B" --send $((5 * MiB)) --seed 2 \
		--after-eof
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B
	check_xfer "$TMP/a.out" "$TMP/b.out" $((3 * MiB)) $((5 * MiB))
	wait_until 10 eval 'splice_state_is "$SPLICE_ID" closed || splice_gone "$SPLICE_ID"' ||
		fail "after FIN both ways the splice is $(splice_get "$SPLICE_ID" .state), not closed"
}

# An RST from one side reaches the other. The receiving side sends nothing and
# keeps its side open, so only the relayed RST can end its connection.
t_rst() {
	local mode=$1 from to a_args b_args

	relay_bed "$mode"
	XFER_IDLE=20
	for from in A B; do
		if [ $from = A ]; then
			to=B a_args="--send $((4 * MiB)) --rst-after $MiB"
			b_args="--send 0 --no-shutdown --expect-reset"
		else
			to=A b_args="--send $((4 * MiB)) --rst-after $MiB"
			a_args="--send 0 --no-shutdown --expect-reset"
		fi
		splice_add
		start_xfer A "$A" "$TMP/a.out" --connect "$RELAY4:$PORT_A" $a_args
		start_xfer B "$B" "$TMP/b.out" --connect "$RELAY4:$PORT_B" $b_args
		xfer_wait "$XFER_PID_A" "$TMP/a.out" A
		xfer_wait "$XFER_PID_B" "$TMP/b.out" B
		grep -q ' reset$' "$TMP/${to,,}.out" || fail "$to did not see $from's RST"
		wait_until 10 eval 'splice_state_is "$SPLICE_ID" closed || splice_gone "$SPLICE_ID"' ||
			fail "after an RST the splice is $(splice_get "$SPLICE_ID" .state), not closed"
		echo "RST from $from reached $to"
	done
}

# A UDP splice carries datagrams both ways: A sends 2000, B echoes each.
t_udp() {
	local mode=$1 n=2000 pid_a pid_b rc=0 pkts

	relay_bed "$mode"
	splice_add --proto udp
	[ ${#SPLICE_TOKEN} = 32 ] || fail "UDP splice without a 16-byte token: '$SPLICE_TOKEN'"
	bg "$B" "$TMP/b.out" "$NSUDP" --relay "$RELAY4:$PORT_B" --token "$SPLICE_TOKEN" --echo \
		--idle 3
	pid_b=$BG_PID
	bg "$A" "$TMP/a.out" "$NSUDP" --relay "$RELAY4:$PORT_A" --token "$SPLICE_TOKEN" \
		--send $n --size 1000
	pid_a=$BG_PID
	wait_pid "$pid_a" 120 || rc=$?
	[ "$rc" = 0 ] || fail "A (nsudp exit $rc): $(tail -n 1 "$TMP/a.out")"
	wait_pid "$pid_b" 120 || fail "B (echo): $(tail -n 1 "$TMP/b.out")"
	cat "$TMP/a.out" "$TMP/b.out"
	grep -q "^echoed $n\$" "$TMP/b.out" || fail "B echoed $(cat "$TMP/b.out"), not $n"
	pkts=$(splice_total "$SPLICE_ID" packets)
	[ "$pkts" -ge $((2 * n)) ] || fail "the UDP splice counted $pkts packets, not >= $((2 * n))"
}

# kill -9 of the daemon during a 200 MiB transfer, and a restart on the same
# pin dir: the transfer completes intact and the splice is still listed.
# nopins: the relay runs under `ip netns exec` without --pin-dir, so its pins
# live on a bpffs it mounted itself, which dies with it; the programs stay on
# the device and the restarted daemon takes their maps over (the log says
# so). A's sending is slowed (tbf) there so that the transfer spans the restart.
t_kill_restart() {
	local mode=$1 nopins=${2:-} sz=$BIG alive=0

	need jq
	topo_relay
	if [ -n "$nopins" ]; then
		sz=$((64 * MiB))
		nsx "$A" tc qdisc add dev eth0 root tbf rate 200mbit burst 64k latency 200ms
	fi
	NO_PIN_DIR=$nopins start_relay "$mode"
	[ -z "$nopins" ] || grep -q 'mounted a bpffs on /sys/fs/bpf' "$RELAY_LOG" ||
		fail "the relay did not say its pins die with it"
	splice_add
	start_xfer A "$A" "$TMP/a.out" --connect "$RELAY4:$PORT_A" --send "$sz" --seed 1
	start_xfer B "$B" "$TMP/b.out" --connect "$RELAY4:$PORT_B" --send "$sz" --seed 2
	wait_until 30 splice_state_is "$SPLICE_ID" established ||
		fail "the splice did not get established"
	kill -KILL "$RELAY_PID"
	wait_pid "$RELAY_PID" 10 || true
	kill -0 "$XFER_PID_A" 2>/dev/null && kill -0 "$XFER_PID_B" 2>/dev/null && alive=1
	echo "daemon killed; transfer still running: $alive"
	NO_PIN_DIR=$nopins start_relay "$mode"
	[ -z "$nopins" ] || grep -q 'took [0-9]* maps over from the programs on eth0' "$RELAY_LOG" ||
		fail "the restarted relay did not take the maps over from the device"
	splice_listed "$SPLICE_ID" || fail "splice $SPLICE_ID is not listed after the restart"
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A 900
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B 900
	# (before the sha256 checks, which outlast the close grace in a VM)
	splice_listed "$SPLICE_ID" || fail "splice $SPLICE_ID vanished after the transfer"
	check_xfer "$TMP/a.out" "$TMP/b.out" "$sz" "$sz"
	[ "$alive" = 1 ] || echo "note: the transfer ended before the kill; only the restart was tested"
}

t_kill_restart_nopins() { t_kill_restart "$1" nopins; }

# SIGTERM leaves the dataplane attached (a live transfer completes without the
# daemon); `dev detach` then takes it off.
t_term_detach() {
	local mode=$1 shown

	relay_bed "$mode"
	splice_add
	start_xfer A "$A" "$TMP/a.out" --connect "$RELAY4:$PORT_A" --send "$BIG" --seed 1
	start_xfer B "$B" "$TMP/b.out" --connect "$RELAY4:$PORT_B" --send "$BIG" --seed 2
	wait_until 30 splice_state_is "$SPLICE_ID" established ||
		fail "the splice did not get established"
	kill -TERM "$RELAY_PID"
	wait_pid "$RELAY_PID" 20 || fail "the daemon did not exit cleanly on SIGTERM"
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A 900
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B 900
	check_xfer "$TMP/a.out" "$TMP/b.out" "$BIG" "$BIG"
	shown=$(nsx "$RELAY" "$NATSPLICE" -j dev show) || fail "dev show failed"
	echo "dev show: $shown"
	jq -e 'any(.[]; .dev == "eth0")' <<<"$shown" >/dev/null ||
		fail "after SIGTERM nothing is attached to eth0 any more"
	nsx "$RELAY" "$NATSPLICE" dev detach eth0 --pin-dir "$PIN_DIR" || fail "dev detach failed"
	shown=$(nsx "$RELAY" "$NATSPLICE" -j dev show) || fail "dev show failed"
	jq -e 'any(.[]; .dev == "eth0") | not' <<<"$shown" >/dev/null ||
		fail "dev detach left a program on eth0: $shown"
	[[ $(ip -n "$RELAY" link show eth0) != *xdp* ]] || fail "eth0 still has an XDP program"
	[ -z "$(nsx "$RELAY" tc filter show dev eth0 ingress 2>/dev/null)" ] ||
		fail "eth0 still has a TC filter"
}

# Half-open: only A connects; at the --timeout deadline A gets an RST
# (connection refused) and the splice is deleted.
t_half_open() {
	local mode=$1 t0 rc=0 took want=2

	relay_bed "$mode"
	splice_add --timeout 2
	t0=$SECONDS
	nsx "$A" "$NSXFER" --connect "$RELAY4:$PORT_A" --send 1K --timeout 30 >"$TMP/a.out" 2>&1 ||
		rc=$?
	took=$((SECONDS - t0))
	cat "$TMP/a.out"
	# In userspace mode the relay accepted A's connection: the RST is a reset.
	[ "$mode" = userspace ] && [ "$rc" = 3 ] && want=3
	[ "$rc" = "$want" ] || fail "A: expected connection refused at the deadline, got exit $rc"
	[ "$took" -le 15 ] || fail "A was refused only after $took s (deadline 2 s)"
	wait_until 10 splice_gone "$SPLICE_ID" || fail "the half-open splice is still listed"
}

# After every connection closed (FIN, RST, idle UDP), with short grace times,
# `splice list` is empty again and so is the pinned splice table.
t_cleanup() {
	local mode=$1 n

	relay_bed "$mode" --close-grace 1 --rst-grace 1 --idle-udp 2
	passive_xfer $((2 * MiB)) $((2 * MiB))
	splice_add
	start_xfer A "$A" "$TMP/a.out" --connect "$RELAY4:$PORT_A" --send $MiB --rst-after $((MiB / 2))
	start_xfer B "$B" "$TMP/b.out" --connect "$RELAY4:$PORT_B" --send 0 --no-shutdown \
		--expect-reset
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B
	splice_add --proto udp
	bg "$B" "$TMP/ub.out" "$NSUDP" --relay "$RELAY4:$PORT_B" --token "$SPLICE_TOKEN" --echo --idle 2
	nsx "$A" "$NSUDP" --relay "$RELAY4:$PORT_A" --token "$SPLICE_TOKEN" --send 10 --size 100 ||
		fail "UDP splice did not work"
	wait_until 30 eval '[ "$(splice_count)" = 0 ]' ||
		fail "splices left after all connections closed: $(nsc splice list)"
	# each went for its own reason (the log, not a count at one moment:
	# on a slow machine the first may be gone before the last is made)
	for why in "splice 1: closed" "splice 2: reset" "splice 3: idle"; do
		grep -q "$why" "$RELAY_LOG" || fail "the relay did not log '$why'"
	done
	if is_bpf "$mode"; then
		n=$(nsx "$RELAY" bpftool -j map dump pinned "$PIN_DIR/ns_table" | jq length) ||
			fail "cannot dump $PIN_DIR/ns_table"
		[ "$n" = 0 ] || fail "the pinned ns_table still has $n entries"
	fi
}

# A stranger (a third host, or B's address at A's port) sending to a relay
# port gets nothing, neither before nor while the splice is up, and the
# stats count the drops.
t_stranger() {
	local mode=$1 d0 r0 rc

	relay_bed "$mode"
	topo_stranger
	splice_add --from-a "$A4" --from-b "$B4"
	d0=$(stat_get drop)
	r0=$(($(stat_get source) + $(stat_get stranger)))
	probe() {	# probe NS WHAT PORT: expect a connect timeout (exit 4)
		rc=0
		nsx "$1" "$NSXFER" --connect "$RELAY4:$3" --send 1K --timeout 3 >/dev/null 2>&1 ||
			rc=$?
		case $rc in
		4) echo "$2 got nothing (as it should)" ;;
		2) fail "$2 got an RST (connection refused)" ;;
		0) fail "$2 got connected" ;;
		*) fail "$2: nsxfer exit $rc" ;;
		esac
	}
	probe "$C" "a stranger at A's port (waiting)" "$PORT_A"
	probe "$B" "B's address at A's port (waiting)" "$PORT_A"
	[ "$(stat_get drop)" -ge $((d0 + 2)) ] || fail "the stats did not count the dropped SYNs"
	[ $(($(stat_get source) + $(stat_get stranger))) -ge $((r0 + 2)) ] ||
		fail "no drop reason (source/stranger) counted the strangers"
	# The real A and B still get their splice, and strangers get nothing while it is up.
	start_xfer A "$A" "$TMP/a.out" --connect "$RELAY4:$PORT_A" --send $((64 * MiB)) --seed 1
	start_xfer B "$B" "$TMP/b.out" --connect "$RELAY4:$PORT_B" --send $((64 * MiB)) --seed 2
	wait_until 30 splice_state_is "$SPLICE_ID" established closing closed ||
		fail "the splice did not get established"
	probe "$C" "a stranger at A's port (established)" "$PORT_A"
	probe "$C" "a stranger at B's port (established)" "$PORT_B"
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B
	check_xfer "$TMP/a.out" "$TMP/b.out" $((64 * MiB)) $((64 * MiB))
	nsc stats
}

# A retransmitted SYN gets the same SYN-ACK again (DESIGN §2): A's first
# SYN-ACK is dropped in A's namespace, so A's stack sends its SYN again
# after the splice is established; the dataplane punts it, the daemon answers
# again (with the module shim loaded: the kernel does), and the connection
# comes up and carries data.
t_syn_retx() {
	local mode=$1 punts kern

	need nft
	relay_bed "$mode"
	splice_add
	nsx "$A" nft -f - <<-NFT
	table inet synretx {
		chain in {
			type filter hook input priority 0; policy accept;
			ip saddr $RELAY4 tcp sport $PORT_A tcp flags & (syn | ack) == (syn | ack) counter drop
		}
	}
	NFT
	start_xfer A "$A" "$TMP/a.out" --connect "$RELAY4:$PORT_A" --send 1M --seed 1
	wait_until 20 splice_state_is "$SPLICE_ID" half-open || fail "A's SYN did not arrive"
	start_xfer B "$B" "$TMP/b.out" --connect "$RELAY4:$PORT_B" --send 1M --seed 2
	wait_until 20 sh -c "ip netns exec $A nft list table inet synretx | grep -q 'packets [1-9]'" ||
		fail "A's first SYN-ACK was not dropped"
	punts=$(stat_get punt) kern=$(stat_get handshake)
	nsx "$A" nft delete table inet synretx
	xfer_wait "$XFER_PID_A" "$TMP/a.out" A 60
	xfer_wait "$XFER_PID_B" "$TMP/b.out" B 60
	check_xfer "$TMP/a.out" "$TMP/b.out" $((1 << 20)) $((1 << 20))
	if grep -q 'handshake: kernel shim' "$RELAY_LOG"; then
		# (the module shim answers it in the kernel: vmtest/test_shim.sh)
		[ "$(stat_get handshake)" -gt "$kern" ] ||
			fail "the kernel shim did not answer the retransmitted SYN"
	else
		[ "$(stat_get punt)" -gt "$punts" ] || fail "no retransmitted SYN was punted"
	fi
}

# Relay ports are held only while a splice waits for its SYNs: with two relay
# ports (one passive splice's worth) and a long close grace, six splices in a
# row, each made while the one before still carries its transfer, all
# deliver. Then side A comes back from the very address and port of a
# finished splice (as a NAT reusing its mapping would) into a new splice on
# the same relay port: the new connection wins over the old, finished one.
t_port_reuse() {
	local mode=$1 i n=6 sz=$((8 * MiB)) prev=""

	relay_bed "$mode" --ports 20000-20001 --close-grace 600
	for i in $(seq $n); do
		splice_add
		start_xfer "A$i" "$A" "$TMP/a$i.out" --connect "$RELAY4:$PORT_A" --send "$sz" --seed 1
		start_xfer "B$i" "$B" "$TMP/b$i.out" --connect "$RELAY4:$PORT_B" --send "$sz" --seed 2
		wait_until 20 eval 'splice_state_is "$SPLICE_ID" established ||
			splice_state_is "$SPLICE_ID" closing || splice_state_is "$SPLICE_ID" closed' ||
			fail "splice $i of $n did not get established"
	done
	for i in $(seq $n); do
		eval "xfer_wait \"\$XFER_PID_A$i\" \"$TMP/a$i.out\" A$i 300"
		eval "xfer_wait \"\$XFER_PID_B$i\" \"$TMP/b$i.out\" B$i 300"
		check_xfer "$TMP/a$i.out" "$TMP/b$i.out" "$sz" "$sz"
	done
	[ "$(nsc -j splice list | jq length)" -ge "$n" ] ||
		fail "the finished splices should still be listed (close grace 600 s)"
	# A answers only after B's EOF, so B closes first and A's port is free
	# again at once (no TIME_WAIT on A).
	for i in 1 2; do
		splice_add
		# (relay ports are picked at random: the namespace A takes
		# whichever side got the relay port of the round before)
		if [ -n "$prev" ] && [ "$PORT_A" != "$prev" ]; then
			[ "$PORT_B" = "$prev" ] ||
				fail "the second splice got relay ports $PORT_A/$PORT_B, not $prev again"
			PORT_B=$PORT_A PORT_A=$prev
		fi
		prev=$PORT_A
		start_xfer A "$A" "$TMP/ra$i.out" --bind "$A4:40404" --connect "$RELAY4:$PORT_A" \
			--send "$MiB" --seed 1 --after-eof
		start_xfer B "$B" "$TMP/rb$i.out" --connect "$RELAY4:$PORT_B" --send "$MiB" --seed 2
		xfer_wait "$XFER_PID_A" "$TMP/ra$i.out" A 60
		xfer_wait "$XFER_PID_B" "$TMP/rb$i.out" B 60
		check_xfer "$TMP/ra$i.out" "$TMP/rb$i.out" "$MiB" "$MiB"
		wait_until 10 eval 'splice_state_is "$SPLICE_ID" closed' ||
			fail "after FIN both ways splice $SPLICE_ID is not closed"
	done
}

# ------------------------------------------------------------------ modes

# Which test runs in which mode: userspace has no BPF (no pins, no drop
# counters, no pure splice; its connections die with the process).
TEST_ORDER=""
for t in passive pure ipv6 iperf3 tcp_options half_close rst udp kill_restart term_detach \
	half_open cleanup stranger syn_retx port_reuse kill_restart_nopins pure_own_port \
	delete_busy; do
	for m in xdp tc; do
		eval "test_${m}_$t() { t_$t $m; }"
		TEST_ORDER="$TEST_ORDER test_${m}_$t"
	done
	case $t in
	passive | ipv6 | iperf3 | tcp_options | half_close | rst | udp | half_open | cleanup | \
	port_reuse | delete_busy)
		eval "test_user_$t() { t_$t userspace; }"
		TEST_ORDER="$TEST_ORDER test_user_$t" ;;
	esac
done

# ------------------------------------------------------------------ CLI

# cli_err DESC CMD...: CMD must exit non-zero with exactly one line on stderr.
cli_err() {
	local desc=$1 rc=0 lines

	shift
	"$@" >"$TMP/cli.out" 2>"$TMP/cli.err" </dev/null &
	wait_pid $! 30 || rc=$?
	lines=$(wc -l <"$TMP/cli.err")
	if [ "$rc" = 126 ] || [ "$rc" = 127 ]; then
		echo "BAD  $desc: could not run: $(cat "$TMP/cli.err")"
		cli_bad="$cli_bad; $desc: could not run"
	elif [ "$rc" = 0 ]; then
		echo "BAD  $desc: exit status 0"
		cli_bad="$cli_bad; $desc: exit 0"
	elif [ "$rc" = 124 ]; then
		echo "BAD  $desc: hung"
		cli_bad="$cli_bad; $desc: hung"
	elif [ "$lines" != 1 ] || [ ! -s "$TMP/cli.err" ]; then
		echo "BAD  $desc: exit $rc but $lines lines on stderr:"
		sed 's/^/       /' "$TMP/cli.err"
		cli_bad="$cli_bad; $desc: $lines lines on stderr"
	else
		echo "ok   $desc: exit $rc: $(cat "$TMP/cli.err")"
	fi
}

# A relay in a container or behind a VM bridge: veths with the kernel's
# default offloads and nothing on the bridge side. There XDP moves nothing
# (XDP_TX into a veth without XDP on the peer, partial checksums), so with
# no --mode the relay picks TC, says why, and a 64 MiB passive splice arrives
# intact both ways; `dev show` says what auto picks for eth0. An explicit
# --mode xdp still starts, with a warning naming the trap and the fix.
test_auto_mode_plain_veth() {
	local shown

	need jq
	topo_relay plain
	start_relay default
	grep -q 'mode auto: tc: driver veth' "$RELAY_LOG" ||
		fail "the relay did not say it picked TC for a veth: $(grep -m1 'mode' "$RELAY_LOG")"
	grep -q 'relay ready: dev eth0 mode tc' "$RELAY_LOG" || fail "the relay is not in TC mode"
	passive_xfer $((64 * MiB)) $((64 * MiB))
	shown=$(nsx "$RELAY" "$NATSPLICE" -j dev show eth0) || fail "dev show failed"
	jq -e '.[0].driver == "veth" and .[0].auto.mode == "tc" and (.[0].auto.why | test("XDP_TX"))' \
		<<<"$shown" >/dev/null || fail "dev show does not say what auto picks and why: $shown"
	jq -e '.[0].tc and (.[0].xdp | not)' <<<"$shown" >/dev/null ||
		fail "dev show: expected only a TC program on eth0: $shown"
	kill -TERM "$RELAY_PID"
	wait_pid "$RELAY_PID" 20 || fail "the daemon did not exit on SIGTERM"
	nsx "$RELAY" "$NATSPLICE" dev detach eth0 --pin-dir "$PIN_DIR" || fail "dev detach failed"
	start_relay xdp
	grep -q 'mode xdp on eth0 (driver veth): XDP_TX into a veth.*--mode tc or auto' \
		"$RELAY_LOG" || fail "--mode xdp on a veth started without the warning"
}

# Two relays on one host, in two network namespaces, with neither --socket
# nor --pin-dir: each gets a control socket and pin directory of its own, and
# the CLI run in a namespace reaches that namespace's relay. A third relay in
# the first namespace (on another device): the CLI there names both sockets and
# asks for -S, which then works.
test_two_relays_default_paths() {
	local relay2=${NSP}relay2 ino sock1 sock3 out

	need jq
	topo_relay
	ns_add "$relay2"
	host_on_bridge "$relay2" r2 192.0.2.20 2001:db8::20
	bg "$RELAY" "$TMP/r1.log" "$NATSPLICE" relay run --dev eth0 --mode tc --address "$RELAY4"
	wait_for_line "$TMP/r1.log" ready "$READY_TIMEOUT" "$BG_PID" ||
		fail "relay 1 did not start: $(tail -n 2 "$TMP/r1.log")"
	bg "$relay2" "$TMP/r2.log" "$NATSPLICE" relay run --dev eth0 --mode tc --address 192.0.2.20
	wait_for_line "$TMP/r2.log" ready "$READY_TIMEOUT" "$BG_PID" ||
		fail "relay 2 did not start next to relay 1: $(tail -n 2 "$TMP/r2.log")"
	[ "$(nsx "$RELAY" "$NATSPLICE" -j splice add | jq -r .relay)" = "$RELAY4" ] ||
		fail "the CLI in the first namespace did not reach its relay"
	[ "$(nsx "$relay2" "$NATSPLICE" -j splice add | jq -r .relay)" = 192.0.2.20 ] ||
		fail "the CLI in the second namespace did not reach its relay"
	ino=$(nsx "$RELAY" stat -L -c %i /proc/self/ns/net)
	sock1=/run/natsplice/relay-eth0.ns$ino.sock sock3=/run/natsplice/relay-rv0.ns$ino.sock
	[ -S "$sock1" ] || fail "no control socket $sock1"
	[ "$(stat -c %a "$sock1")" = 600 ] || fail "$sock1 is not 0600"
	ip -n "$RELAY" link add rv0 type veth peer name rv1
	ip -n "$RELAY" link set rv0 up
	bg "$RELAY" "$TMP/r3.log" "$NATSPLICE" relay run --dev rv0 --mode tc \
		--address 198.51.100.1
	wait_for_line "$TMP/r3.log" ready "$READY_TIMEOUT" "$BG_PID" ||
		fail "relay 3 did not start on rv0: $(tail -n 2 "$TMP/r3.log")"
	out=$(nsx "$RELAY" "$NATSPLICE" splice list 2>&1) &&
		fail "with two relays in one namespace the CLI picked one by itself"
	[[ $out == *"several relays"*"$sock1"*"$sock3"*"-S"* ]] ||
		fail "the CLI did not name both sockets: $out"
	[ "$(nsx "$RELAY" "$NATSPLICE" -S "$sock3" -j splice add | jq -r .relay)" = 198.51.100.1 ] ||
		fail "-S did not reach the relay on rv0"
	# (the daemons dropped root and cannot remove their sockets themselves)
	rm -f "$sock1" "$sock3" "/run/natsplice/relay-eth0.ns$(nsx "$relay2" stat -L -c %i \
		/proc/self/ns/net).sock"
}

# Least privilege: once started, the daemon runs as nobody with CAP_BPF
# alone and no_new_privs, in XDP and TC mode (every other test here exercises
# it in that state); --user root keeps root. (Userspace mode runs as nobody
# from the start: start_relay does that for every test_user_* test.)
test_privileges() {
	local st mode

	need jq
	for mode in xdp tc; do
		[ -z "${RELAY_PID:-}" ] || { kill -TERM "$RELAY_PID"; wait_pid "$RELAY_PID" 20 || true; }
		[ "$mode" = xdp ] && topo_relay
		start_relay "$mode"
		st=$(cat "/proc/$RELAY_PID/status")
		grep -Eq '^Uid:\s+65534\s+65534\s+65534\s+65534$' <<<"$st" ||
			fail "$mode: the daemon is not uid 65534: $(grep ^Uid <<<"$st")"
		grep -Eq '^Gid:\s+65534\s+65534\s+65534\s+65534$' <<<"$st" ||
			fail "$mode: the daemon is not gid 65534: $(grep ^Gid <<<"$st")"
		grep -Eq '^Groups:\s*$' <<<"$st" || fail "$mode: supplementary groups left"
		for c in CapEff CapPrm; do
			grep -Eq "^$c:\s+0000008000000000$" <<<"$st" ||
				fail "$mode: $c is not CAP_BPF alone: $(grep "^$c" <<<"$st")"
		done
		grep -Eq '^CapInh:\s+0+$' <<<"$st" || fail "$mode: inheritable capabilities left"
		grep -Eq '^CapAmb:\s+0+$' <<<"$st" || fail "$mode: ambient capabilities left"
		grep -Eq '^NoNewPrivs:\s+1$' <<<"$st" || fail "$mode: no_new_privs is not set"
		# ... and it still does its job: a splice after the drop.
		passive_xfer "$MiB" "$MiB"
	done
	kill -TERM "$RELAY_PID"
	wait_pid "$RELAY_PID" 20 || true
	start_relay userspace
	st=$(cat "/proc/$RELAY_PID/status")
	grep -Eq '^Uid:\s+65534\s' <<<"$st" || fail "userspace: the daemon runs as root"
	grep -Eq '^CapEff:\s+0+$' <<<"$st" || fail "userspace: the daemon has capabilities"
	kill -TERM "$RELAY_PID"
	wait_pid "$RELAY_PID" 20 || true
	start_relay tc --user root
	grep -q 'user: root: the daemon keeps running as root' "$RELAY_LOG" ||
		fail "--user root did not say it keeps root"
	grep -Eq '^Uid:\s+0\s' "/proc/$RELAY_PID/status" || fail "--user root dropped root"
}

# CLI errors exit non-zero with a one-line message.
test_cli_errors() {
	local nobody="setpriv --reuid=65534 --regid=65534 --clear-groups" out
	cli_bad=""

	RELAY_PORTS=40000-40003
	relay_bed xdp
	nsc help >/dev/null || fail "natsplice help failed"
	nsc splice help >/dev/null || fail "natsplice splice help failed"

	# ports exhausted: 4 ports make two passive splices waiting for their
	# sides (a long deadline: under emulation this test takes over 30 s).
	splice_add --timeout 600
	splice_add --timeout 600
	cli_err "ports exhausted" nsc splice add
	nsc splice del "$SPLICE_ID" >/dev/null || fail "splice del $SPLICE_ID failed"
	splice_add --timeout 600	# its ports are free again

	cli_err "not root (splice list)" nsx "$RELAY" $nobody "$NATSPLICE" -S "$SOCK" splice list
	cli_err "not root (relay run)" nsx "$RELAY" $nobody "$NATSPLICE" relay run --dev eth0 \
		--address "$RELAY4" --pin-dir "$TMP/bpffs/nobody" --socket /tmp/nobody-$NSP.sock
	cli_err "unknown device (relay run)" nsx "$RELAY" "$NATSPLICE" relay run --dev nosuch0 \
		--address "$RELAY4" --pin-dir "$TMP/bpffs/other" --socket "$TMP/other.sock"
	cli_err "unknown device (dev show)" nsx "$RELAY" "$NATSPLICE" dev show nosuch0
	cli_err "unknown device (dev detach)" nsx "$RELAY" "$NATSPLICE" dev detach nosuch0 \
		--pin-dir "$PIN_DIR"
	cli_err "daemon not running" "$NATSPLICE" -S "$TMP/nobody-home.sock" splice list
	cli_err "unknown object" nsc frobnicate
	cli_err "unknown command" nsc splice frobnicate
	cli_err "ambiguous prefix" nsc s list
	cli_err "bad --proto" nsc splice add --proto sctp
	cli_err "bad --mode" nsc splice add --mode active
	cli_err "bad --from-a" nsc splice add --from-a 300.1.2.3
	cli_err "bad --timeout" nsc splice add --timeout -1
	cli_err "bad --family" nsc splice add --family ipx
	cli_err "mixed families" nsc splice add --from-a "$A4" --from-b "$B6"
	cli_err "unknown option" nsc splice add --frobnicate
	cli_err "show: not an id" nsc splice show abc
	cli_err "show: no such splice" nsc splice show 424242
	cli_err "del: no such splice" nsc splice del 424242
	cli_err "relay run: bad --ports" nsx "$RELAY" "$NATSPLICE" relay run --dev eth0 \
		--address "$RELAY4" --ports 50-10 --pin-dir "$TMP/bpffs/other" --socket "$TMP/o.sock"
	cli_err "relay run: bad --address" nsx "$RELAY" "$NATSPLICE" relay run --dev eth0 \
		--address 300.1.1.1 --pin-dir "$TMP/bpffs/other" --socket "$TMP/o.sock"
	cli_err "relay run: bad --mode" nsx "$RELAY" "$NATSPLICE" relay run --dev eth0 \
		--address "$RELAY4" --mode warp --pin-dir "$TMP/bpffs/other" --socket "$TMP/o.sock"
	cli_err "relay run: second daemon on the same socket" nsx "$RELAY" "$NATSPLICE" relay run \
		--dev eth0 --address "$RELAY4" --pin-dir "$PIN_DIR" --socket "$SOCK"

	# -j: the error is a JSON object.
	out=$(nsc -j splice show 424242 2>/dev/null) && fail "-j splice show 424242 succeeded"
	jq -e '.error | strings' <<<"$out" >/dev/null || {
		echo "BAD  -j error is not {\"error\": ...}: '$out'"
		cli_bad="$cli_bad; -j error not JSON"
	}
	# The relay survived all of that.
	kill -0 "$RELAY_PID" || fail "the relay daemon died"
	[ "$(splice_count)" = 2 ] || fail "expected 2 splices at the end, got $(splice_count)"
	[ -z "$cli_bad" ] || fail "${cli_bad#; }"
}

# relay.yaml: the example checks out; a bad key or value is reported with
# file:line:column and the command line overrides the file.
test_config_file() {
	local out bad="$TMP/bad.yaml"

	out=$("$NATSPLICE" relay run -f "$TOP/examples/relay.yaml" -n 2>&1) ||
		fail "examples/relay.yaml rejected: $out"
	[ "$out" = "configuration OK" ] || fail "-n printed '$out'"
	printf 'dev: eth0\naddress: 192.0.2.10\n  \nportz: 1-2\n' >"$bad"
	out=$("$NATSPLICE" relay run -f "$bad" -n 2>&1) && fail "unknown key accepted"
	grep -q "$bad:4:1: unknown setting 'portz'" <<<"$out" || fail "unknown key: '$out'"
	printf 'dev: eth0\naddress: [192.0.2.10, 300.1.1.1]\n' >"$bad"
	out=$("$NATSPLICE" relay run -f "$bad" -n 2>&1) && fail "bad address accepted"
	grep -q "$bad:2:23: bad value for address" <<<"$out" || fail "bad value: '$out'"
	printf 'dev: eth0\naddress: 192.0.2.10\nmode: warp\n' >"$bad"
	out=$("$NATSPLICE" relay run -f "$bad" --mode tc -n 2>&1) && fail "bad mode accepted"
	grep -q "$bad:3:7: mode must be" <<<"$out" || fail "bad mode: '$out'"
	printf 'dev: eth0\naddress: 192.0.2.10\nhandshake: kernel\n' >"$bad"
	out=$("$NATSPLICE" relay run -f "$bad" -n 2>&1) && fail "bad handshake accepted"
	grep -q "$bad:3:12: handshake must be auto or daemon" <<<"$out" || fail "bad handshake: '$out'"
	# without --dev/--address anywhere: a clear error
	out=$("$NATSPLICE" relay run -n 2>&1) && fail "relay run without --dev accepted"
	grep -q "needs --dev" <<<"$out" || fail "missing --dev: '$out'"
}

run_tests
