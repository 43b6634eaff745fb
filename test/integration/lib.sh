# shellcheck shell=bash
# The namespace test runner, sourced by every test/integration/test_*.sh and demo.sh.
#
# A test is a shell function test_xxx. run_tests runs each one (or those whose
# name contains $TEST_FILTER) in a subshell with:
#   - its own temporary directory $TMP and namespace prefix $NSP (nst-<random>-);
#   - `set -e`: an unexpected failing command fails the test, with its line as
#     the reason; fail "reason" and skip "reason" (or `return 77`) end it on purpose;
#   - a trap that, however the test ends, kills its background processes,
#     deletes its namespaces and unmounts its bpffs.
# and prints one line per test: "PASS: name", "FAIL: name (reason)" or
# "SKIP: name (reason)". A failing test's output (and the tail of its logs) is
# printed above its FAIL line; VERBOSE=1 prints every test's output.
#
# Topology (topo_relay): an "inet" namespace with bridge br0 (the Internet) and
# namespaces A, B and RELAY, each with eth0 plugged into br0:
#   A 192.0.2.1 2001:db8::1   B 192.0.2.2 2001:db8::2   RELAY 192.0.2.10 2001:db8::10
#
# Traps handled here (see shared/DESIGN.md §5 and KERNEL-NOTES.md):
#   - TX checksum offload is off on the veths of A, B and RELAY: locally
#     generated packets would otherwise carry partial checksums that an XDP
#     rewrite cannot complete, and XDP_TX out of a veth needs it off;
#   - an XDP_PASS program (natsplice dev pass) sits on the bridge-side peer
#     of RELAY's veth: frames RELAY sends with XDP_TX are queued on that peer,
#     and the kernel kicks the peer's NAPI to deliver them only when the peer
#     has an XDP program (veth_xdp_flush). With GRO alone they wait for the
#     next ordinary packet and connections stall;
#   - `ip netns exec` remounts /sys, so each test mounts a private bpffs under
#     $TMP (outside /sys) and the relay pins there ($PIN_DIR).

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$LIB_DIR/../.." && pwd)
NATSPLICE=${NATSPLICE:-$TOP/ctl/natsplice}
NSXFER=${NSXFER:-$TOP/test/tools/nsxfer}
NSUDP=${NSUDP:-$TOP/test/tools/nsudp}

# Relay side of the topology.
RELAY4=192.0.2.10
RELAY6=2001:db8::10
A4=192.0.2.1 A6=2001:db8::1
B4=192.0.2.2 B6=2001:db8::2
RELAY_PORTS=${RELAY_PORTS:-40000-40999}
READY_TIMEOUT=${READY_TIMEOUT:-60}	# seconds for a daemon to say "ready"

# ---------------------------------------------------------------- test life

# End the current test on purpose.
fail() {
	printf '%s\n' "$*" >"$TMP/reason"
	echo "FAILED: $*" >&2
	exit 1
}

skip() {
	printf '%s\n' "$*" >"$TMP/reason"
	exit 77
}

# need CMD...: skip the test unless every command exists.
need() {
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "needs $c"
	done
}

# set -e reached an unexpected failure: remember where, unless a reason is set.
_lib_on_err() {
	local rc=$1 line=$2 cmd=$3

	[ "$rc" = 77 ] && return 0
	[ -s "$TMP/reason" ] || printf 'line %s: %s (status %s)\n' "$line" "$cmd" "$rc" >"$TMP/reason"
}

# Kill one process we started: TERM, then KILL if it lingers.
_lib_kill() {
	local pid=$1

	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 40); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
}

_lib_teardown() {
	local rc=$? f ns pid m

	set +e
	trap - ERR
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		for f in "$TMP"/*.log; do
			[ -s "$f" ] || continue
			echo "--- ${f##*/} (last 25 lines)"
			tail -n 25 "$f"
		done
		if [ -n "${SOCK:-}" ] && [ -S "$SOCK" ]; then
			echo "--- natsplice splice list; natsplice stats"
			timeout 10 ip netns exec "$RELAY" "$NATSPLICE" -S "$SOCK" splice list 2>&1
			timeout 10 ip netns exec "$RELAY" "$NATSPLICE" -S "$SOCK" stats 2>&1
		fi
	fi
	# Our own background processes first, then whatever still runs in our
	# namespaces (all of it started by this test).
	if [ -f "$TMP/pids" ]; then
		while read -r pid; do _lib_kill "$pid"; done <"$TMP/pids"
	fi
	if [ -f "$TMP/netns" ]; then
		while read -r ns; do
			for pid in $(ip netns pids "$ns" 2>/dev/null); do _lib_kill "$pid"; done
		done <"$TMP/netns"
		while read -r ns; do ip netns del "$ns" 2>/dev/null; done <"$TMP/netns"
	fi
	if [ -f "$TMP/mounts" ]; then
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done \
			<"$TMP/mounts"
	fi
	wait 2>/dev/null
	[ -z "${LIB_RM_TMP:-}" ] || rm -rf "$TMP"
	exit "$rc"
}

# Run one test function in a subshell; print its result line.
_lib_run_one() {
	local fn=$1 tmp rc reason t0 line

	tmp=$(mktemp -d "${TMPDIR:-/tmp}/nst.XXXXXX")
	t0=$SECONDS
	(
		TMP=$tmp
		NSP="nst-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')-"
		TEST_NAME=$fn
		trap _lib_teardown EXIT
		trap 'exit 130' INT TERM HUP
		trap '_lib_on_err $? $LINENO "$BASH_COMMAND"' ERR
		set -eE -o pipefail
		"$fn"
	) >"$tmp/out" 2>&1 </dev/null
	rc=$?
	reason=$(head -n 1 "$tmp/reason" 2>/dev/null || true)
	if [ "$rc" = 0 ]; then
		line="PASS: $fn"
		_lib_passed=$((_lib_passed + 1))
	elif [ "$rc" = 77 ]; then
		line="SKIP: $fn${reason:+ ($reason)}"
		_lib_skipped=$((_lib_skipped + 1))
	else
		[ -n "$reason" ] || reason="exit status $rc"
		line="FAIL: $fn ($reason)"
		_lib_failed=$((_lib_failed + 1))
	fi
	if [ "$rc" != 0 ] && [ "$rc" != 77 ] || [ -n "${VERBOSE:-}" ]; then
		sed 's/^/    | /' "$tmp/out"
	fi
	echo "$line [$((SECONDS - t0))s]"
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "    (kept $tmp)"
	else
		rm -rf "$tmp"
	fi
}

# The test_* functions of the calling script: first those named in $TEST_ORDER
# (for functions made in a loop, which share one line), then the others in
# the order they are defined.
_lib_list_tests() {
	local fn

	for fn in ${TEST_ORDER:-}; do
		declare -F "$fn" >/dev/null && echo "$fn"
	done
	shopt -s extdebug
	for fn in $(declare -F | awk '$3 ~ /^test_/ { print $3 }'); do
		case " ${TEST_ORDER:-} " in *" $fn "*) continue ;; esac
		declare -F "$fn"	# "name line file"
	done | sort -s -k2,2n | awk '{ print $1 }'
	shopt -u extdebug
}

# run_tests: run every test_* function (or those whose name contains
# $TEST_FILTER); exit 0 iff none failed.
run_tests() {
	local fn script=${0##*/}

	_lib_passed=0 _lib_failed=0 _lib_skipped=0
	for fn in $(_lib_list_tests); do
		case "$fn" in *"${TEST_FILTER:-}"*) ;; *) continue ;; esac
		if [ "$(id -u)" != 0 ]; then
			echo "SKIP: $fn (needs root)"
			_lib_skipped=$((_lib_skipped + 1))
			continue
		fi
		_lib_run_one "$fn"
	done
	echo "# $script: $_lib_passed passed, $_lib_failed failed, $_lib_skipped skipped"
	[ "$_lib_failed" = 0 ]
}

# standalone NAME: for scripts that are not tests (demos, measurements): a
# temporary directory and namespace prefix of their own, and the same teardown
# as a test on exit, error or Ctrl-C.
standalone() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	NSP="$1-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')-"
	LIB_RM_TMP=1
	trap _lib_teardown EXIT
	trap 'exit 130' INT TERM HUP
	trap '_lib_on_err $? $LINENO "$BASH_COMMAND"' ERR
	set -eE -o pipefail
}

# artifact FILE: keep FILE (a screenshot, a capture) past the test, whose
# $TMP is removed: copied to $ARTIFACT_DIR/<test>/ when ARTIFACT_DIR is set.
# Prints where it is (shown with VERBOSE=1 or when the test fails).
artifact() {
	local dir

	if [ -z "${ARTIFACT_DIR:-}" ]; then
		echo "artifact: $1 (removed after the test: set ARTIFACT_DIR or KEEP_TMP=1)"
		return 0
	fi
	dir=$ARTIFACT_DIR/$TEST_NAME
	mkdir -p "$dir"
	cp "$1" "$dir/"
	echo "artifact: $dir/${1##*/}"
}

# ---------------------------------------------------------------- processes

nsx() {
	local ns=$1

	shift
	ip netns exec "$ns" "$@"
}

# bg NS OUTFILE CMD...: run CMD in NS in the background, stdout+stderr to
# OUTFILE; its pid is in $BG_PID and it is killed at teardown.
bg() {
	local ns=$1 out=$2

	shift 2
	ip netns exec "$ns" "$@" >"$out" 2>&1 </dev/null &
	BG_PID=$!
	echo "$BG_PID" >>"$TMP/pids"
}

# wait_pid PID [TIMEOUT]: wait for a background process, return its status
# (124 and kill it if it is still running after TIMEOUT seconds, default 300).
wait_pid() {
	local pid=$1 deadline=$((SECONDS + ${2:-300})) rc=0

	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			_lib_kill "$pid"
			wait "$pid" 2>/dev/null || true
			return 124
		fi
		sleep 0.05
	done
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# wait_until TIMEOUT CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))

	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# wait_for_line FILE REGEX [TIMEOUT] [PID]: poll FILE until a line matches the
# extended REGEX. Returns 1 on timeout, or as soon as PID (if given) exits
# without having printed it.
wait_for_line() {
	local file=$1 re=$2 deadline=$((SECONDS + ${3:-$READY_TIMEOUT})) pid=${4:-}

	while :; do
		grep -Eq -- "$re" "$file" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			grep -Eq -- "$re" "$file" 2>/dev/null
			return
		fi
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# ---------------------------------------------------------------- topology

# ns_add NAME: a namespace with lo up, deleted at teardown.
ns_add() {
	ip netns add "$1"
	echo "$1" >>"$TMP/netns"
	ip -n "$1" link set lo up
}

# link_ns NS1 NS2 [IF1 [IF2]]: a veth pair between two namespaces, both ends up
# (names default to eth0).
link_ns() {
	local n1=$1 n2=$2 i1=${3:-eth0} i2=${4:-eth0}

	ip -n "$n1" link add "$i1" type veth peer name "$i2" netns "$n2"
	ip -n "$n1" link set "$i1" up
	ip -n "$n2" link set "$i2" up
}

# host_on_bridge NS SHORT IPV4 IPV6: NS's eth0 plugged into br0 in $INET as
# port vSHORT, with TX checksum offload off (see the traps above).
host_on_bridge() {
	local ns=$1 short=$2 v4=$3 v6=$4

	link_ns "$ns" "$INET" eth0 "v$short"
	ip -n "$INET" link set "v$short" master br0
	ip -n "$ns" addr add "$v4/24" dev eth0
	ip -n "$ns" addr add "$v6/64" dev eth0 nodad
	[ -n "${PLAIN_BED:-}" ] || nsx "$ns" ethtool -K eth0 tx off >/dev/null
}

# topo_relay [plain]: the test bed of DESIGN §5 without NAT: sets INET, A, B,
# RELAY. plain: as a container or a VM bridge has it, with the kernel's
# default veth offloads and no XDP program on the bridge side (the relay's
# XDP cannot work there; see the README's troubleshooting).
topo_relay() {
	local PLAIN_BED=${1:-}

	INET=${NSP}inet A=${NSP}a B=${NSP}b RELAY=${NSP}relay
	ns_add "$INET"
	ip -n "$INET" link add br0 type bridge
	ip -n "$INET" link set br0 up
	ns_add "$A"
	ns_add "$B"
	ns_add "$RELAY"
	host_on_bridge "$A" a "$A4" "$A6"
	host_on_bridge "$B" b "$B4" "$B6"
	host_on_bridge "$RELAY" r "$RELAY4" "$RELAY6"
	[ -z "$PLAIN_BED" ] || return 0
	nsx "$INET" "$NATSPLICE" dev pass vr
}

# topo_stranger: a third host C (192.0.2.3, 2001:db8::3) on the bridge; sets C.
topo_stranger() {
	C=${NSP}c
	ns_add "$C"
	host_on_bridge "$C" c 192.0.2.3 2001:db8::3
}

# topo_forward: the plain-forwarding baseline on the same bed: A and B reach
# each other through RELAY as a router (no natsplice), so a benchmark can
# compare a splice with forwarding under the same offload settings.
topo_forward() {
	nsx "$RELAY" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
	nsx "$A" sysctl -qw net.ipv4.conf.all.accept_redirects=0 \
		net.ipv4.conf.eth0.accept_redirects=0 net.ipv6.conf.eth0.accept_redirects=0
	nsx "$B" sysctl -qw net.ipv4.conf.all.accept_redirects=0 \
		net.ipv4.conf.eth0.accept_redirects=0 net.ipv6.conf.eth0.accept_redirects=0
	ip -n "$A" route add "$B4/32" via "$RELAY4"
	ip -n "$B" route add "$A4/32" via "$RELAY4"
	ip -n "$A" -6 route add "$B6/128" via "$RELAY6"
	ip -n "$B" -6 route add "$A6/128" via "$RELAY6"
}

# dev_counter NS DEV rx_bytes|tx_packets|...
dev_counter() {
	nsx "$1" cat "/sys/class/net/$2/statistics/$3"
}

# tcp_opts NS WS SACK TS ECN: the TCP option sysctls of a namespace (0/1 each).
tcp_opts() {
	nsx "$1" sysctl -qw net.ipv4.tcp_window_scaling="$2" net.ipv4.tcp_sack="$3" \
		net.ipv4.tcp_timestamps="$4" net.ipv4.tcp_ecn="$5"
}

# ---------------------------------------------------------------- relay

# start_relay MODE [extra args]: run the relay daemon in RELAY (private bpffs
# under $TMP, control socket $SOCK, log $RELAY_LOG) and wait for "ready".
# MODE "default": no --mode. NO_PIN_DIR=1: no --pin-dir either, so under
# `ip netns exec` the daemon mounts a bpffs of its own that dies with it.
# Calling it again (after a crash) reuses the same pin dir and socket.
start_relay() {
	local mode=$1 mode_arg=(--mode "$1") pin_arg as=()

	shift
	[ -x "$NATSPLICE" ] || fail "$NATSPLICE is not built (make -C $TOP)"
	[ "$mode" != default ] || mode_arg=()
	PIN_DIR=$TMP/bpffs/natsplice
	pin_arg=(--pin-dir "$PIN_DIR")
	[ -z "${NO_PIN_DIR:-}" ] || pin_arg=()
	SOCK=$TMP/relay.sock
	if [ "$mode" = userspace ]; then
		# userspace mode needs no root: the tests run it as nobody, who
		# must reach $TMP/run (mktemp's directories are 0700)
		local d=$TMP
		while [ "$d" != / ]; do
			[ -n "$(find "$d" -maxdepth 0 -perm -o+x)" ] || chmod o+x "$d"
			d=$(dirname "$d")
		done
		mkdir -p -m 1777 "$TMP/run"
		SOCK=$TMP/run/relay.sock
		as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	fi
	if ! mountpoint -q "$TMP/bpffs"; then
		mkdir -p "$TMP/bpffs"
		mount -t bpf bpf "$TMP/bpffs"
		echo "$TMP/bpffs" >>"$TMP/mounts"
	fi
	RELAY_STARTS=$((${RELAY_STARTS:-0} + 1))
	RELAY_LOG=$TMP/relay.$RELAY_STARTS.log
	bg "$RELAY" "$RELAY_LOG" "${as[@]}" "$NATSPLICE" ${NATSPLICE_OPTS:-} relay run --dev eth0 \
		"${mode_arg[@]}" --address "$RELAY4" --address "$RELAY6" --ports "$RELAY_PORTS" \
		"${pin_arg[@]}" --socket "$SOCK" "$@"
	RELAY_PID=$BG_PID
	wait_for_line "$RELAY_LOG" ready "$READY_TIMEOUT" "$RELAY_PID" && return 0
	if kill -0 "$RELAY_PID" 2>/dev/null; then
		fail "relay ($mode) did not say ready in $READY_TIMEOUT s: $(tail -n 1 "$RELAY_LOG")"
	fi
	local rc=0
	wait "$RELAY_PID" 2>/dev/null || rc=$?
	fail "relay ($mode) exited with status $rc before saying ready: $(tail -n 1 "$RELAY_LOG")"
}

# nsc ARGS: the CLI against this test's relay.
nsc() {
	ip netns exec "$RELAY" "$NATSPLICE" -S "$SOCK" "$@"
}

# splice_add [ARGS]: `splice add` in JSON; sets SPLICE_ID, PORT_A, PORT_B,
# SPLICE_RELAY (address), SPLICE_TOKEN (UDP) and SPLICE_JSON.
splice_add() {
	SPLICE_JSON=$(nsc -j splice add "$@") || fail "splice add $* failed"
	SPLICE_ID=$(jq -er .id <<<"$SPLICE_JSON") || fail "splice add: no id in: $SPLICE_JSON"
	PORT_A=$(jq -er '.ports[0]' <<<"$SPLICE_JSON")
	PORT_B=$(jq -er '.ports[1]' <<<"$SPLICE_JSON")
	SPLICE_RELAY=$(jq -r '.relay // empty' <<<"$SPLICE_JSON")
	SPLICE_TOKEN=$(jq -r '.token // empty' <<<"$SPLICE_JSON")
	echo "splice $SPLICE_ID: ports $PORT_A $PORT_B relay $SPLICE_RELAY"
}

# splice_get ID JQ: a field of `splice show ID` (fails if there is none).
splice_get() {
	nsc -j splice show "$1" | jq -er "$2"
}

# splice_total ID packets|bytes: both directions added up.
splice_total() {
	local json

	json=$(nsc -j splice show "$1") || return 1
	jq -er ".$2 | if type == \"array\" then add
		elif type == \"object\" then [.[]] | add else . end" <<<"$json"
}

# splice_count: number of splices listed.
splice_count() {
	nsc -j splice list | jq -er 'if type == "array" then length
		else (.splices // []) | length end'
}

splice_listed() {
	nsc -j splice list | jq -e --argjson id "$1" \
		'(if type == "array" then . else .splices // [] end) | any(.id == $id)' >/dev/null
}

splice_gone() {
	! splice_listed "$1"
}

# splice_state_is ID STATE...: true if the splice is in one of the states.
splice_state_is() {
	local id=$1 st

	shift
	st=$(splice_get "$id" .state 2>/dev/null) || return 1
	for s in "$@"; do [ "$st" = "$s" ] && return 0; done
	return 1
}

# stat_get NAME: a verdict or drop-reason counter of `stats` (0 if absent),
# wherever it sits in the JSON.
stat_get() {
	nsc -j stats | jq -r --arg k "$1" \
		'[.. | objects | to_entries[] | select(.key == $k) | .value | numbers] | add // 0'
}

# hostport IP PORT: "IP:PORT" or "[IPv6]:PORT".
hostport() {
	case "$1" in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac
}

# ---------------------------------------------------------------- transfers

# xfer_field FILE sent|recv|sent_sha|recv_sha: a field of nsxfer's line.
xfer_field() {
	local line

	line=$(grep -E '^sent [0-9]+ sha256 ' "$1" | tail -n 1) || return 1
	set -- $line "$2"
	case "$9" in
	sent) echo "$2" ;;
	sent_sha) echo "$4" ;;
	recv) echo "$6" ;;
	recv_sha) echo "$8" ;;
	esac
}

# check_xfer AOUT BOUT SIZE_A SIZE_B [SEED_A SEED_B]: both sides sent what they
# were asked to, and each received exactly what the other sent (by sha256,
# also checked against nsxfer --sha-of).
check_xfer() {
	local ao=$1 bo=$2 sa=$3 sb=$4 seeda=${5:-1} seedb=${6:-2} want

	[ "$(xfer_field "$ao" sent)" = "$sa" ] || fail "A sent $(xfer_field "$ao" sent), not $sa"
	[ "$(xfer_field "$bo" sent)" = "$sb" ] || fail "B sent $(xfer_field "$bo" sent), not $sb"
	[ "$(xfer_field "$bo" recv)" = "$sa" ] || fail "B received $(xfer_field "$bo" recv) of $sa bytes"
	[ "$(xfer_field "$ao" recv)" = "$sb" ] || fail "A received $(xfer_field "$ao" recv) of $sb bytes"
	want=$("$NSXFER" --sha-of "$sa" --seed "$seeda")
	[ "$(xfer_field "$ao" sent_sha)" = "$want" ] || fail "A's stream is not the seed's"
	[ "$(xfer_field "$bo" recv_sha)" = "$want" ] || fail "B received corrupted data (sha256 mismatch)"
	want=$("$NSXFER" --sha-of "$sb" --seed "$seedb")
	[ "$(xfer_field "$bo" sent_sha)" = "$want" ] || fail "B's stream is not the seed's"
	[ "$(xfer_field "$ao" recv_sha)" = "$want" ] || fail "A received corrupted data (sha256 mismatch)"
}

# xfer_wait PID OUT WHO [TIMEOUT]: wait for an nsxfer and fail with its message.
xfer_wait() {
	local rc=0

	wait_pid "$1" "${4:-300}" || rc=$?
	[ "$rc" = 0 ] || fail "$3: nsxfer exit $rc: $(tail -n 1 "$2")"
}
