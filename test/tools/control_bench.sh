#!/bin/bash
# Control-plane figures: logins per second and broker RSS with N agents
# logged in at once (lightweight agents from test/tools/nsload), for each N
# given (default 1000 10000), over TLS and over plain text in the same run.
# Runs the broker in a private network namespace.
#
#   tls:   the broker as deployed (no insecure), its generated certificate
#          pinned by nsload --fingerprint (natsplice-broker --fingerprint):
#          each login is a TLS 1.3 handshake (ECDHE + the broker's signature)
#          and the HMAC login bound to the TLS exporter;
#   plain: insecure: true and nsload --plain: the HMAC login alone.
#
# Prints one line per N and transport:
#   agents N tls logins/s R failed F rss_kib K idle_rss_kib K0 rss_per_agent_b B cpu_us_per_login C
#   agents N plain logins/s R ...
# (rss_kib: the broker with the N agents logged in; idle_rss_kib: before
# the first login; cpu_us_per_login: the broker's user+system CPU time
# during the logins, per login.)
set -e
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BROKER=$TOP/broker/natsplice-broker
LOAD=$TOP/test/tools/nsload
NS=nsbench-$$
TMP=$(mktemp -d)
HZ=$(getconf CLK_TCK)
cleanup() { [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ulimit -n "$(ulimit -Hn)"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }	# utime + stime

# bench N MODE [NSLOAD OPTIONS]: one broker, N agents logging in over MODE.
bench() {
	local n=$1 mode=$2 rss0 rss cpu0 cpu rate fails lpid
	shift 2

	ip netns exec "$NS" "$BROKER" -f "$TMP/broker-$mode.yaml" >"$TMP/broker.log" 2>&1 &
	BPID=$!
	for _ in $(seq 200); do grep -q ready "$TMP/broker.log" && break; sleep 0.05; done
	grep -q ready "$TMP/broker.log" || { echo "broker not ready: $(tail -n 1 "$TMP/broker.log")"; exit 1; }
	rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$BPID/status")
	cpu0=$(cpu_ticks "$BPID")
	ip netns exec "$NS" "$LOAD" --broker 127.0.0.1:7700 --count "$n" --hold 3 "$@" \
		>"$TMP/load.out" 2>&1 &
	lpid=$!
	for _ in $(seq 2400); do grep -q "^logins" "$TMP/load.out" && break; sleep 0.05; done
	cpu=$(cpu_ticks "$BPID")
	sleep 1
	rss=$(awk '/VmRSS/ { print $2 }' "/proc/$BPID/status")
	rate=$(awk '/^logins/ { print $8 }' "$TMP/load.out" | tr -d '/s')
	fails=$(awk '/^logins/ { print $4 }' "$TMP/load.out")
	wait "$lpid" || grep "^nsload" "$TMP/load.out" >&2 || true
	kill "$BPID"; wait "$BPID" 2>/dev/null || true; BPID=
	echo "agents $n $mode logins/s ${rate:-0} failed ${fails:-$n} rss_kib $rss" \
	     "idle_rss_kib $rss0 rss_per_agent_b $(( (rss - rss0) * 1024 / n ))" \
	     "cpu_us_per_login $(( (cpu - cpu0) * 1000000 / HZ / n ))"
}

for n in ${@:-1000 10000}; do
	# every agent comes from 127.0.0.1, 256 logging in at once (nsload's
	# --inflight): more than max-unauth-per-source allows one address
	{ printf 'listen: 127.0.0.1:7700\nhttp: 127.0.0.1:9770\nmax-unauth-per-source: 0\n'
	  printf 'tls-cert: %s\ntls-key: %s\n' "$TMP/broker.crt" "$TMP/broker.key"
	  "$LOAD" --yaml "$n"; } >"$TMP/broker-tls.yaml"
	{ echo 'insecure: true'; cat "$TMP/broker-tls.yaml"; } >"$TMP/broker-plain.yaml"
	# the certificate is made on first use; the agents pin it
	fp=$("$BROKER" --fingerprint -f "$TMP/broker-tls.yaml" 2>"$TMP/fp.log") ||
		{ echo "natsplice-broker --fingerprint: $(tail -n 1 "$TMP/fp.log")"; exit 1; }
	bench "$n" tls --fingerprint "$fp"
	bench "$n" plain --plain
done
