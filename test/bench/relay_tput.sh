#!/usr/bin/env bash
# relay_tput.sh: bulk TCP throughput from A to B through the relay host, all
# cases in one run (DESIGN §6), on the test bed of test/integration/lib.sh
# (A, B and RELAY on one bridge, TX checksum offload off on all three veths,
# XDP_PASS on the bridge port facing RELAY):
#
#   direct     A -> B over the bridge, no relay in the path (reference only)
#   forward    A -> RELAY -> B, RELAY a plain IP router (topo_forward): the
#              baseline every ratio is taken against
#   xdp        A -> relay:PA, B -> relay:PB, a passive splice, --mode xdp
#   tc         the same, --mode tc
#   userspace  the same, --mode userspace (the relay accepts both and splice(2)s)
#
# What is measured: one TCP stream, A sends for DURATION seconds, B receives;
# B's rate from its first byte to its last (test/bench/bulk). Both ends of a
# splice connect, so iperf3 would need a user-space forwarder at each end
# (two more copies of every byte, on the same two CPUs); bulk is a plain
# sender/receiver that connects or listens, the same two programs in every
# case. The MTU is 1500, and with TX checksum offload off the veths have no
# TSO: segments leave A at MTU size (software GSO) in all cases.
#
# Every case gets a fresh bed, and the rounds are interleaved (round 1 of
# every case, then round 2, ...), so a machine that slows down during the
# run does not favour one case. Each measurement checks that the bytes took
# the path it claims: through RELAY's eth0 (forward), through the splice's
# counters (splices), and for xdp/tc how many packets XDP_TX and the TC
# redirect carried. The table shows the median over the rounds and the median
# of the per-round ratios to forward.
#
# Environment: DURATION (seconds per stream, default 5), ROUNDS (default 2),
# CASES (default "direct forward xdp tc userspace"), PIN=1 (sender on CPU 0,
# receiver on CPU 1), QUIET_WAIT=SEC (before each case, wait up to SEC s for
# a quiet machine: no other runs' namespaces, CPUs idle; default 0),
# TEST_FILTER, VERBOSE=1.
# shellcheck source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
CASES=${CASES:-direct forward xdp tc userspace}
BULK=${BULK:-$TOP/test/bench/bulk}
PORT=5000
# PIN=1: sender on CPU 0, receiver on CPU 1 (softirq work follows the sender).
if [ "${PIN:-0}" = 1 ]; then
	PIN_A="taskset -c 0" PIN_B="taskset -c 1"
else
	PIN_A="" PIN_B=""
fi
SLACK=60		# seconds a stream may take beyond DURATION before it counts as hung
QUIET_WAIT=${QUIET_WAIT:-0}	# seconds to wait for a quiet machine before each case
IDLE_MIN=90		# percent of CPU idle that counts as quiet

RESULTS=$(mktemp "${TMPDIR:-/tmp}/relay_tput.XXXXXX")
trap 'rm -f "$RESULTS"' EXIT

# foreign_netns: how many network namespaces of other runs (tests, benches)
# exist now. They compete for the same CPUs and make the figures unreliable.
foreign_netns() {
	ip netns list | awk -v p="$NSP" 'index($1, p) != 1' | wc -l
}

# idle_pct: percent of all CPUs idle over the next half second.
idle_pct() {
	local a b

	a=$(head -n 1 /proc/stat)
	sleep 0.5
	b=$(head -n 1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		for (i = 2; i <= n; i++) { d = y[i] - x[i]; t += d; if (i == 5 || i == 6) idle += d }
		print t > 0 ? int(100 * idle / t) : 0 }'
}

# quiet_now: no other run's namespaces, and the CPUs idle (nothing of ours
# runs yet): someone else's load would be measured with us.
quiet_now() {
	[ "$(foreign_netns)" = 0 ] && [ "$(idle_pct)" -ge "$IDLE_MIN" ]
}

# quiet: before the bed is built (a splice waiting for its sides would time
# out meanwhile), wait up to QUIET_WAIT s for quiet_now; QUIET is 1 if it was.
quiet() {
	if [ "$QUIET_WAIT" -gt 0 ]; then
		wait_until "$QUIET_WAIT" quiet_now && QUIET=1 || QUIET=0
	else
		quiet_now && QUIET=1 || QUIET=0
	fi
}

# stream RECV_ADDR_ARGS SEND_ADDR_ARGS: B receives (bulk --recv ARGS), A sends
# for DURATION s (bulk --send DURATION ARGS); sets GOT (bytes), GBPS and
# BUSY (1 if the machine was not quiet before, or other runs' namespaces
# existed at the start or the end).
stream() {
	local recv_args=$1 send_args=$2 pid_a pid_b line limit=$((DURATION + SLACK)) n0

	n0=$(foreign_netns)
	# shellcheck disable=SC2086
	bg "$B" "$TMP/b.out" $PIN_B "$BULK" --recv $recv_args --timeout "$limit"
	pid_b=$BG_PID
	if [[ $recv_args == --listen* ]]; then
		wait_for_line "$TMP/b.out" listening 10 "$pid_b" || fail "B does not listen"
	fi
	# shellcheck disable=SC2086
	bg "$A" "$TMP/a.out" $PIN_A "$BULK" --send "$DURATION" $send_args --timeout "$limit"
	pid_a=$BG_PID
	wait_pid "$pid_a" $((limit + 5)) || fail "sender: $(tail -n 1 "$TMP/a.out")"
	wait_pid "$pid_b" 10 || fail "receiver: $(tail -n 1 "$TMP/b.out")"
	line=$(grep '^recv ' "$TMP/b.out") || fail "no result from the receiver"
	read -r _ GOT _ _ _ GBPS <<<"$line"
	BUSY=$(( !QUIET || n0 + $(foreign_netns) > 0 ))
}

# record CASE [NOTE]: one measurement of round $ROUND into the results.
record() {
	echo "$ROUND $1 $GBPS $GOT $BUSY ${2:-}" >>"$RESULTS"
}

case_direct() {
	quiet
	topo_relay
	[[ $(nsx "$A" ip route get "$B4") != *via* ]] || fail "A does not reach B directly"
	stream "--listen $B4:$PORT" "--connect $B4:$PORT"
	record direct
}

case_forward() {
	local rx0 rx1

	quiet
	topo_relay
	topo_forward
	[[ $(nsx "$A" ip route get "$B4") == *"via $RELAY4"* ]] || fail "A does not route via RELAY"
	rx0=$(dev_counter "$RELAY" eth0 rx_bytes)
	stream "--listen $B4:$PORT" "--connect $B4:$PORT"
	rx1=$(dev_counter "$RELAY" eth0 rx_bytes)
	[ $((rx1 - rx0)) -ge "$GOT" ] ||
		fail "RELAY's eth0 received $((rx1 - rx0)) bytes of $GOT: the stream bypassed it"
	record forward
}

# case_splice MODE: a passive splice in that relay mode.
case_splice() {
	local mode=$1 tx0=0 rd0=0 note="" moved

	need jq
	quiet
	topo_relay
	start_relay "$mode"
	splice_add
	if [ "$mode" != userspace ]; then
		tx0=$(stat_get tx) rd0=$(stat_get redirect)
	fi
	stream "--connect $RELAY4:$PORT_B" "--connect $RELAY4:$PORT_A"
	moved=$(splice_total "$SPLICE_ID" bytes) || fail "splice $SPLICE_ID is gone"
	[ "$moved" -ge "$GOT" ] || fail "the splice counted $moved bytes of the $GOT received"
	if [ "$mode" != userspace ]; then
		note="xdp_tx=$(($(stat_get tx) - tx0)),tc_redirect=$(($(stat_get redirect) - rd0))"
	fi
	record "$mode" "$note"
}

# One test function per case and round; TEST_ORDER interleaves the rounds.
TEST_ORDER=""
for r in $(seq "$ROUNDS"); do
	for c in $CASES; do
		case "$c" in
		direct | forward) eval "test_r${r}_$c() { ROUND=$r; case_$c; }" ;;
		xdp | tc | userspace) eval "test_r${r}_$c() { ROUND=$r; case_splice $c; }" ;;
		*) echo "relay_tput: unknown case '$c'" >&2; exit 2 ;;
		esac
		TEST_ORDER="$TEST_ORDER test_r${r}_$c"
	done
done

for f in "$BULK" "$NATSPLICE"; do
	[ -x "$f" ] || { echo "relay_tput: $f is not built (make; make -C test; make -C test/bench)" >&2; exit 1; }
done
echo "relay_tput: one TCP stream A -> B, ${DURATION} s each, $ROUNDS rounds, cases: $CASES"
rc=0
run_tests || rc=$?

# The table: per case the median Gbit/s over the rounds, and the median of
# its per-round ratios to forward (a round's cases ran back to back, so the
# ratio pairs figures taken under the same machine load); each round's figure.
awk -v cases="$CASES" -v rounds="$ROUNDS" '
	{ g[$2, $1] = $3; has[$2, $1] = 1; busy += $5; total++
	  if ($6 != "") note[$2] = note[$2] " " $6 }
	function median(a, k,    i, j, t) {
		for (i = 1; i <= k; i++)
			for (j = i + 1; j <= k; j++)
				if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	END {
		printf "%-10s %8s %11s   %s\n", "case", "Gbit/s", "vs forward", "rounds (Gbit/s)"
		nc = split(cases, cs, " ")
		for (i = 1; i <= nc; i++) {
			c = cs[i]
			split("", a); split("", q); k = kq = 0; list = ""
			for (r = 1; r <= rounds; r++) {
				if (!has[c, r]) { list = list " -"; continue }
				a[++k] = g[c, r]
				list = list sprintf(" %.2f", g[c, r])
				if (has["forward", r] && g["forward", r] > 0)
					q[++kq] = g[c, r] / g["forward", r]
			}
			printf "%-10s %8s %11s  %s\n", c,
				(k ? sprintf("%.2f", median(a, k)) : "failed"),
				(kq ? sprintf("%.2f", median(q, kq)) : "-"), list
		}
		for (i = 1; i <= nc; i++)
			if (note[cs[i]] != "") printf "%s packets:%s\n", cs[i], note[cs[i]]
		if (busy)
			printf "warning: %d of %d measurements ran on a busy machine (other " \
				"runs'"'"' namespaces, or CPUs < '"$IDLE_MIN"'%% idle before): " \
				"the figures are not reliable\n", busy, total
	}' "$RESULTS"
exit "$rc"
