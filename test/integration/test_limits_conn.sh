#!/usr/bin/env bash
# The broker's doors (issue 13, broker/doors.c; README, Security, Limits):
# connections not logged in (in all and per source address), the size of a
# message before login, failed logins with backoff (per name and source,
# and per source) without locking the real agent out, and an agent's
# message rate. Each limit is hit on purpose from MAL (a host on the
# "Internet") while laptop downloads through a tunnel from pub; the download
# must arrive whole, the limit is counted in /metrics and logged at most a
# few times, and a legitimate agent still logs in.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=sys.sh
. "$(dirname "$0")/sys.sh"

MAL4=203.0.113.66
NSLOAD=$TOP/test/tools/nsload

# doors_bed [BROKER YAML]: broker (plus YAML), pub publishing a web server
# with a 16 MiB file, laptop subscribed, MAL on the Internet; starts a
# download at 2 MiB/s (about 8 s) in the background: DL_PID.
doors_bed() {
	need python3
	direct_bed "${1:-}" $((16 << 20))
	MAL=${NSP}mal
	ns_add "$MAL"
	inet_host "$MAL" mal "$MAL4"
	nsx "$HB" curl -fsS --max-time 120 --limit-rate 2M -o "$TMP/got.bin" \
		http://127.0.0.1:18080/ &
	DL_PID=$!
}

# download_done: the download arrived whole.
download_done() {
	wait "$DL_PID" || fail "the download failed (curl exit $?)"
	[ "$(sha256sum <"$TMP/got.bin")" = "$(sha256sum <"$TMP/web.bin")" ] ||
		fail "sha256 of the download differs"
}

# hits LIMIT: natsplice_broker_limit_hits_total{limit="LIMIT"}.
hits() {
	broker_api /metrics | awk -v k="natsplice_broker_limit_hits_total{limit=\"$1\"}" \
		'$1 == k { print $2; f = 1 } END { if (!f) print "none" }'
}

# metric NAME: an unlabelled sample of the broker's /metrics.
metric() {
	broker_api /metrics | awk -v k="$1" '$1 == k { print $2 }'
}

# flood SRC N [SECONDS] [HEX]: from MAL, source address SRC, N connections
# to the broker at once, each sending the bytes HEX (none by default); after
# SECONDS (default 3) prints "open O closed C": how many the broker has
# closed (EOF or reset) and how many it still holds.
flood() {
	nsx "$MAL" python3 - "$BROKER4" "$BROKER_PORT" "$@" <<-'PY'
	import socket, sys, time, select
	host, port, src, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
	wait = float(sys.argv[5]) if len(sys.argv) > 5 else 3
	data = bytes.fromhex(sys.argv[6]) if len(sys.argv) > 6 else b""
	socks = []
	for i in range(n):
	    s = socket.socket()
	    s.bind((src, 0))
	    s.connect((host, port))
	    if data:
	        s.sendall(data)
	    socks.append(s)
	closed = set()
	end = time.time() + wait
	while time.time() < end and len(closed) < n:
	    r, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.2)
	    for s in r:
	        try:
	            if not s.recv(65536):
	                closed.add(s)
	        except OSError:
	            closed.add(s)
	print("open %d closed %d" % (n - len(closed), len(closed)), flush=True)
	PY
}

# lines REGEX: the broker's log lines matching REGEX.
lines() {
	grep -cE -- "$1" "$BROKER_LOG" || true
}

# A legitimate agent logs in while the attack goes on.
home_logs_in() {
	start_agent "$HA" home-nas nas-secret ""
}

# 40 connections from one address that never speak: 8 are held (until
# login-timeout), 32 are closed at once; home-nas logs in meanwhile.
test_unauth_per_source() {
	local out

	doors_bed "max-unauth-per-source: 8"
	out=$(flood "$MAL4" 40 3)
	echo "$out"
	[ "$out" = "open 8 closed 32" ] || fail "40 connections from one address: $out"
	[ "$(hits unauth_per_source)" -ge 32 ] ||
		fail "unauth_per_source hits: $(hits unauth_per_source)"
	[ "$(lines 'not logged in yet \(max-unauth-per-source\)')" -le 11 ] ||
		fail "the refusals filled the log: $(lines 'max-unauth-per-source')"
	[ "$(lines 'not logged in yet \(max-unauth-per-source\)')" -ge 1 ] ||
		fail "the refusals were not logged"
	home_logs_in
	download_done
}

# max-unauth: 12 in all: two addresses with 8 each get 12; and when they
# are held, login-timeout (3 s) frees the places and home-nas logs in.
test_unauth_total() {
	local out

	doors_bed "max-unauth: 12
max-unauth-per-source: 8
login-timeout: 3"
	ip -n "$MAL" addr add 203.0.113.67/24 dev eth0
	flood "$MAL4" 8 20 >"$TMP/f1.out" &
	local f1=$!
	wait_until 10 eval '[ "$(metric natsplice_broker_unauth_connections)" = 8 ]' ||
		fail "the first 8 are not held: $(metric natsplice_broker_unauth_connections)"
	out=$(flood 203.0.113.67 8 1)
	echo "$out"
	[ "$out" = "open 4 closed 4" ] || fail "8 more from a second address: $out"
	[ "$(hits unauth)" -ge 4 ] || fail "unauth hits: $(hits unauth)"
	wait "$f1"
	# the first address's 8 were closed by login-timeout, not held for 20 s
	[ "$(cat "$TMP/f1.out")" = "open 0 closed 8" ] ||
		fail "login-timeout did not close them: $(cat "$TMP/f1.out")"
	home_logs_in
	download_done
}

# A message before login larger than a LOGIN (a header saying 60000 bytes,
# then 1000 of them), from 12 connections: each is closed at once, not buffered.
test_login_size() {
	local out

	doors_bed "insecure: true"
	# version 1, LOGIN (2), flags 0, length 60000; then 1000 bytes
	out=$(flood "$MAL4" 12 5 "01020000$(printf '%08x' 60000)$(printf '%02000d' 0)")
	echo "$out"
	[ "$out" = "open 0 closed 12" ] || fail "oversized LOGINs: $out"
	[ "$(hits login_size)" -ge 12 ] || fail "login_size hits: $(hits login_size)"
	home_logs_in
	download_done
}

# 300 logins of laptop's name with a wrong secret from MAL: 5 are checked,
# then MAL must wait (1 s, 2 s...): the rest are refused unchecked; the log
# holds a few lines. Meanwhile laptop (the real one, elsewhere) logs in
# again at once: MAL's failures are its own address's. And mallory, whose
# name MAL never tried, logs in from MAL's own address (known there) too.
test_login_backoff() {
	local out f0

	doors_bed
	# (mallory logs in from MAL's address first: known there, below)
	out=$(nsx "$MAL" "$NSLOAD" --broker "$BROKER4:$BROKER_PORT" --fingerprint "$BROKER_FP" \
		--count 1 --name mallory --secret mallory-secret 2>&1) || true
	[[ $out == *"logins 1 failed 0"* ]] || fail "mallory from MAL: $out"
	f0=$(metric natsplice_login_failures_total)
	out=$(nsx "$MAL" "$NSLOAD" --broker "$BROKER4:$BROKER_PORT" --fingerprint "$BROKER_FP" \
		--count 300 --inflight 4 --name laptop --secret wrong-secret-0123456789 2>&1) || true
	echo "$out"
	[[ $out == *"logins 0 failed 300"* ]] || fail "nsload: $out"
	# 5 free failures, perhaps one more after the first second's wait
	[ $(($(metric natsplice_login_failures_total) - f0)) -le 20 ] ||
		fail "$(($(metric natsplice_login_failures_total) - f0)) wrong proofs were checked"
	[ "$(hits login_backoff)" -ge 250 ] || fail "login_backoff hits: $(hits login_backoff)"
	[ "$(lines 'refused')" -le 25 ] || fail "$(lines 'refused') lines of refusals in the log"
	# the real laptop logs in again (from NAT B) at once (its download first)
	download_done
	stop_agent_named laptop
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: pub/web, listen: 127.0.0.1:18081, proto: tcp }'
	http_get "$HB" http://127.0.0.1:18081/ "$TMP/got2.bin" || fail "laptop's new tunnel failed"
	cmp -s "$TMP/got2.bin" "$TMP/web.bin" || fail "laptop's second download differs"
	# per source: 100 other names from MAL's address, all wrong (4 x 5
	# free for an address): the address must wait, and home-nas, never
	# seen there, is held back...
	out=$(nsx "$MAL" "$NSLOAD" --broker "$BROKER4:$BROKER_PORT" --fingerprint "$BROKER_FP" \
		--count 100 --inflight 4 --prefix guess 2>&1) || true
	[[ $out == *"logins 0 failed 100"* ]] || fail "nsload: $out"
	out=$(nsx "$MAL" "$NSLOAD" --broker "$BROKER4:$BROKER_PORT" --fingerprint "$BROKER_FP" \
		--count 1 --name home-nas --secret nas-secret 2>&1) || true
	[[ $out == *"logins 0 failed 1"* && $out == *"too many failed logins"* ]] ||
		fail "home-nas from the guessing address was not held back: $out"
	# ...but mallory, known at that address, is not
	out=$(nsx "$MAL" "$NSLOAD" --broker "$BROKER4:$BROKER_PORT" --fingerprint "$BROKER_FP" \
		--count 1 --name mallory --secret mallory-secret 2>&1) || true
	[[ $out == *"logins 1 failed 0"* ]] || fail "mallory, known at MAL, was held back: $out"
}

# msg-rate 20/s, burst 40: an agent that sends 500 heartbeats at once is
# disconnected, counted; the download (another agent) goes on.
test_msg_rate() {
	local out

	doors_bed "msg-rate: 20
msg-burst: 40"
	start_agent "$HA" home-nas nas-secret ""
	out=$(nsx "$MAL" "$NSLOAD" --broker "$BROKER4:$BROKER_PORT" --fingerprint "$BROKER_FP" \
		--count 1 --name mallory --secret mallory-secret --flood 500 2>&1) || true
	echo "$out"
	wait_until 10 eval '[ "$(hits msg_rate)" -ge 1 ]' || fail "msg_rate hits: $(hits msg_rate)"
	grep -E "agent mallory closed: more than 20 messages a second" "$BROKER_LOG" >/dev/null ||
		fail "not logged: $(tail -n 3 "$BROKER_LOG")"
	download_done
}

# Output to a peer that stops reading is bounded (4 MiB queued): mallory
# asks for LIST 6000 times (home-nas publishes 200 services: about 5 KiB
# each answer) and reads nothing; the broker drops it, counted, and the
# download and the others go on.
test_output_bound() {
	local i pubs=""

	doors_bed "msg-rate: 0"
	for i in $(seq 200); do
		pubs+="  - { name: service-with-a-long-name-$i, target: 127.0.0.1:8080, proto: tcp }
"
	done
	start_agent "$HA" home-nas nas-secret "publish:
$pubs"
	nsx "$MAL" "$NSLOAD" --broker "$BROKER4:$BROKER_PORT" --fingerprint "$BROKER_FP" \
		--count 1 --name mallory --secret mallory-secret --flood 6000 --flood-list \
		--hold 60 >"$TMP/flood.out" 2>&1 &
	local fl=$!
	wait_until 60 eval '[ "$(hits output_buffer)" -ge 1 ]' ||
		fail "output_buffer hits: $(hits output_buffer)"
	grep -E "mallory closed: more than 4 MiB queued for it" "$BROKER_LOG" >/dev/null ||
		fail "not logged: $(tail -n 3 "$BROKER_LOG")"
	kill "$fl" 2>/dev/null || true
	download_done
	# and home-nas is still logged in
	broker_api /api/v1/agents | jq -e '[.[] | select(.name == "home-nas")] | length == 1' \
		>/dev/null || fail "home-nas is gone"
}

run_tests
