#!/usr/bin/env bash
# test/tools/nstap itself, on a bed of its own without natsplice, so that the
# security tests built on it (a tunnel shows no payload, a forged segment
# does not get through) cannot pass because the tool is broken:
#
#   A 198.51.100.2 2001:db8:1::2 -- ra  R (router)  rb -- B 203.0.113.2 2001:db8:2::2
#
# nstap runs in R on rb, where A -> B packets leave towards B.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

NSTAP=${NSTAP:-$TOP/test/tools/nstap}
TA4=198.51.100.2 TA6=2001:db8:1::2
TB4=203.0.113.2 TB6=2001:db8:2::2

# need_tap: socat and a built nstap, or skip.
need_tap() {
	need socat
	[ -x "$NSTAP" ] || skip "test/tools/nstap is not built (make -C $TOP/test)"
}

# topo_tap: namespaces A, R and B as above; R forwards.
topo_tap() {
	A=${NSP}a R=${NSP}r B=${NSP}b
	ns_add "$A"
	ns_add "$R"
	ns_add "$B"
	link_ns "$R" "$A" ra eth0
	link_ns "$R" "$B" rb eth0
	ip -n "$R" addr add 198.51.100.1/24 dev ra
	ip -n "$R" addr add 2001:db8:1::1/64 dev ra nodad
	ip -n "$R" addr add 203.0.113.1/24 dev rb
	ip -n "$R" addr add 2001:db8:2::1/64 dev rb nodad
	ip -n "$A" addr add "$TA4/24" dev eth0
	ip -n "$A" addr add "$TA6/64" dev eth0 nodad
	ip -n "$B" addr add "$TB4/24" dev eth0
	ip -n "$B" addr add "$TB6/64" dev eth0 nodad
	ip -n "$A" route add default via 198.51.100.1
	ip -n "$A" -6 route add default via 2001:db8:1::1
	ip -n "$B" route add default via 203.0.113.1
	ip -n "$B" -6 route add default via 2001:db8:2::1
	nsx "$R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# tap_start NAME ARGS...: `nstap capture ARGS -o $TMP/NAME.cap` in R, log
# $TMP/NAME.log, once it has bound its socket; its pid in $BG_PID.
tap_start() {
	local name=$1

	shift
	bg "$R" "$TMP/$name.log" "$NSTAP" capture "$@" -o "$TMP/$name.cap"
	wait_for_line "$TMP/$name.log" 'capturing on' 10 "$BG_PID" ||
		fail "nstap capture $*: $(tail -n 1 "$TMP/$name.log")"
}

# tap_stop PID NAME: the capture exited 0 (after a signal or by itself).
tap_stop() {
	local rc=0

	wait_pid "$1" 10 || rc=$?
	[ "$rc" = 0 ] || fail "nstap capture ($2) exit $rc: $(tail -n 1 "$TMP/$2.log")"
	grep -E '^nstap: [0-9]+ packets, [0-9]+ payload bytes' "$TMP/$2.log" ||
		fail "nstap capture ($2) printed no summary"
}

# found CONTENT CAPTURE: K of "K of 200 samples found".
found() {
	local line

	line=$("$NSTAP" samples "$1" "$2") || fail "nstap samples $1 $2 failed"
	echo "$line ($(basename "$2"))" >&2
	[[ $line =~ ^([0-9]+)\ of\ 200\ samples\ found$ ]] || fail "nstap samples said: $line"
	echo "${BASH_REMATCH[1]}"
}

# A file sent over TCP A -> B is in the capture (by samples), a file never
# sent is not; the capture starts with the file's first 64 KiB exactly (no
# header bytes: retransmissions may repeat later parts); the port and host
# filters, SIGTERM and --until-file.
test_capture_tcp() {
	need_tap
	topo_tap
	local pid_port pid_host pid_other pid_stranger pid_srv k

	head -c 1M /dev/urandom >"$TMP/data"
	head -c 1M /dev/urandom >"$TMP/unsent"
	tap_start port -i rb -p tcp --port 5001
	pid_port=$BG_PID
	tap_start host -i rb --host "$TA4" --until-file "$TMP/stop"
	pid_host=$BG_PID
	tap_start other -i rb -p tcp --port 5999 --until-file "$TMP/stop"
	pid_other=$BG_PID
	tap_start stranger -i rb --host 192.0.2.99 --until-file "$TMP/stop"
	pid_stranger=$BG_PID

	bg "$B" "$TMP/srv.log" socat -d -d -u "TCP4-LISTEN:5001,reuseaddr" "OPEN:$TMP/recv,creat,trunc"
	pid_srv=$BG_PID
	wait_for_line "$TMP/srv.log" 'listening on' 10 "$pid_srv" || fail "socat did not listen"
	nsx "$A" socat -u "OPEN:$TMP/data" "TCP4:$TB4:5001" || fail "sending the file failed"
	wait_pid "$pid_srv" 10 || fail "the receiving socat failed"
	cmp -s "$TMP/data" "$TMP/recv" || fail "the file arrived damaged"

	kill -TERM "$pid_port"
	tap_stop "$pid_port" port
	touch "$TMP/stop"
	tap_stop "$pid_host" host
	tap_stop "$pid_other" other
	tap_stop "$pid_stranger" stranger

	k=$(found "$TMP/data" "$TMP/port.cap")
	[ "$k" -ge 190 ] || fail "--port capture: only $k of 200 samples of the file found"
	k=$(found "$TMP/data" "$TMP/host.cap")
	[ "$k" -ge 190 ] || fail "--host capture: only $k of 200 samples of the file found"
	k=$(found "$TMP/unsent" "$TMP/port.cap")
	[ "$k" = 0 ] || fail "$k of 200 samples of a file never sent found"
	[ ! -s "$TMP/other.cap" ] || fail "--port 5999 captured $(stat -c %s "$TMP/other.cap") bytes"
	[ ! -s "$TMP/stranger.cap" ] ||
		fail "--host 192.0.2.99 captured $(stat -c %s "$TMP/stranger.cap") bytes"
	cmp -n 65536 "$TMP/data" "$TMP/port.cap" || fail "the capture does not start with the file"
	[ "$(stat -c %s "$TMP/port.cap")" -ge $((1 << 20)) ] ||
		fail "the capture holds less than the file ($(stat -c %s "$TMP/port.cap") bytes)"
}

# UDP over IPv6, datagrams of 1000 bytes, payload only (no UDP header); -t
# ends the capture by itself.
test_capture_udp6() {
	need_tap
	topo_tap
	local pid_tap pid_srv k

	head -c 256K /dev/urandom >"$TMP/data"
	tap_start udp -i rb -p udp --port 5002 --host "$TB6" -t 5
	pid_tap=$BG_PID
	bg "$B" "$TMP/srv.log" socat -d -d -u "UDP6-RECV:5002" "OPEN:$TMP/recv,creat,trunc"
	pid_srv=$BG_PID
	wait_for_line "$TMP/srv.log" "starting data transfer" 10 "$pid_srv" ||
		fail "socat did not bind"
	# The first datagram waits for neighbour discovery, where a burst
	# behind it would overflow the queue (unres_qlen_bytes): prime it.
	printf prime | nsx "$A" socat -u - "UDP6:[$TB6]:5002"
	wait_for_line "$TMP/srv.log" "received packet with 5 bytes" 10 ||
		fail "the first datagram did not arrive"
	nsx "$A" socat -u -b 1000 "OPEN:$TMP/data" "UDP6:[$TB6]:5002" || fail "sending failed"
	tap_stop "$pid_tap" udp
	k=$(found "$TMP/data" "$TMP/udp.cap")
	[ "$k" -ge 190 ] || fail "only $k of 200 samples of the file found"
	{ printf prime; head -c 1000 "$TMP/data"; } | cmp -n 1005 - "$TMP/udp.cap" ||
		fail "the capture does not start with \"prime\" and the first datagram"
}

# inject_bed 4|6: socat on B writes what it receives on port 5003 to
# $TMP/got; socat on A (port 40123) sends what the test writes to fd 3.
# "hello" has gone through when it returns. Sets FROM, TO, SRV_PID.
inject_bed() {
	local fam=$1 b

	need_tap
	topo_tap
	if [ "$fam" = 4 ]; then
		FROM=$TA4:40123 TO=$TB4:5003 b=$TB4
	else
		FROM=[$TA6]:40123 TO=[$TB6]:5003 b=[$TB6]
	fi
	bg "$B" "$TMP/srv.log" socat -d -d -u "TCP$fam-LISTEN:5003,reuseaddr" \
		"OPEN:$TMP/got,creat,trunc"
	SRV_PID=$BG_PID
	wait_for_line "$TMP/srv.log" 'listening on' 10 "$SRV_PID" || fail "socat did not listen"
	mkfifo "$TMP/in"
	exec 3<>"$TMP/in"
	bg "$A" "$TMP/cli.log" socat -u "OPEN:$TMP/in" "TCP$fam:$b:5003,sourceport=40123"
	printf 'hello\n' >&3
	wait_until 10 grep -qs hello "$TMP/got" || fail "the connection does not carry data"
}

# inject ARGS...: `nstap inject -i rb --from FROM --to TO ARGS` in R; once it
# sniffs, A sends "more" (the segment it learns from). Its status.
inject() {
	local pid rc=0

	bg "$R" "$TMP/inject.log" "$NSTAP" inject -i rb --from "$FROM" --to "$TO" "$@"
	pid=$BG_PID
	wait_for_line "$TMP/inject.log" sniffing 10 "$pid" || fail "nstap inject did not start"
	printf 'more\n' >&3
	wait_pid "$pid" 20 || rc=$?
	cat "$TMP/inject.log"
	return "$rc"
}

# inject_case 4|6 from|to ARGS...: a forged segment from A, with the numbers
# worked out from A's (from) or B's (to) segments, is taken by B's socket as
# the next bytes of the stream: exactly, none trimmed or held back.
inject_case() {
	local side="FROM > TO"

	[ "$2" = from ] || side="TO > FROM"
	inject_bed "$1"
	inject --learn "$2" "${@:3}" || fail "nstap inject failed: $(tail -n 1 "$TMP/inject.log")"
	grep -qF "numbers from a $side segment" "$TMP/inject.log" ||
		fail "nstap inject --learn $2 did not learn from a $side segment"
	wait_until 10 grep -qs INJECTED-XYZ "$TMP/got" ||
		fail "B did not receive the forged payload: $(tr '\n' ' ' <"$TMP/got")"
	[ "$(cat "$TMP/got")" = "$(printf 'hello\nmore\nINJECTED-XYZ')" ] ||
		fail "B received: $(od -c "$TMP/got" | head -n 3)"
	kill -0 "$SRV_PID" 2>/dev/null || fail "B's socat exited"
}

test_inject_v4() {
	inject_case 4 from --hex "$(printf INJECTED-XYZ | od -An -tx1 | tr -d ' \n')"
}

test_inject_v6() {
	printf INJECTED-XYZ >"$TMP/payload"
	inject_case 6 to --file "$TMP/payload"
}

# A forged RST with the learnt numbers resets B's socket (a wrong sequence
# number only earns a challenge ACK, RFC 5961 3.2).
test_inject_rst() {
	inject_bed 4
	inject --rst || fail "nstap inject --rst failed: $(tail -n 1 "$TMP/inject.log")"
	wait_pid "$SRV_PID" 10 || true
	kill -0 "$SRV_PID" 2>/dev/null && fail "B's connection survived the RST"
	grep -qi 'reset' "$TMP/srv.log" || fail "B's socat did not see a reset: $(tail -n 1 "$TMP/srv.log")"
}

# No segment of the connection within --wait: exit 1, nothing sent.
test_inject_nothing_seen() {
	need_tap
	topo_tap
	local rc=0

	nsx "$R" "$NSTAP" inject -i rb --from "$TA4:40123" --to "$TB4:5003" --hex 41 \
		--wait 1 2>"$TMP/inject.log" || rc=$?
	cat "$TMP/inject.log"
	[ "$rc" = 1 ] || fail "nstap inject exit $rc, not 1, with no traffic"
	grep -q 'no segment' "$TMP/inject.log" || fail "no message"
}

run_tests
