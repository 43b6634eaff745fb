#!/bin/bash
# Control-plane figures: logins per second and broker RSS with N agents
# logged in at once (lightweight agents from test/tools/nsload), for each N
# given (default 1000 10000). Runs the broker in a private network namespace.
# The agents log in over plain text (the broker has insecure: true): the
# figures leave out the TLS handshake.
# Prints one line per N: "agents N logins/s R rss_kib K rss_per_agent_b B".
set -e
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BROKER=$TOP/broker/natsplice-broker
LOAD=$TOP/test/tools/nsload
NS=nsbench-$$
TMP=$(mktemp -d)
cleanup() { [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ulimit -n "$(ulimit -Hn)"
for n in ${@:-1000 10000}; do
	# nsload speaks plain text: these are logins without TLS (insecure: true)
	{ printf 'listen: 127.0.0.1:7700\nhttp: 127.0.0.1:9770\ninsecure: true\n'
	  printf 'tls-cert: %s\ntls-key: %s\n' "$TMP/broker.crt" "$TMP/broker.key"
	  "$LOAD" --yaml "$n"; } >"$TMP/broker.yaml"
	ip netns exec "$NS" "$BROKER" -f "$TMP/broker.yaml" >"$TMP/broker.log" 2>&1 &
	BPID=$!
	for _ in $(seq 200); do grep -q ready "$TMP/broker.log" && break; sleep 0.05; done
	rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$BPID/status")
	ip netns exec "$NS" "$LOAD" --broker 127.0.0.1:7700 --count "$n" --hold 3 >"$TMP/load.out" 2>&1 &
	LPID=$!
	for _ in $(seq 1200); do grep -q "^logins" "$TMP/load.out" && break; sleep 0.05; done
	sleep 1
	rss=$(awk '/VmRSS/ { print $2 }' "/proc/$BPID/status")
	rate=$(awk '/^logins/ { print $8 }' "$TMP/load.out" | tr -d '/s')
	fails=$(awk '/^logins/ { print $4 }' "$TMP/load.out")
	wait "$LPID" || true
	kill "$BPID"; wait "$BPID" 2>/dev/null || true; BPID=
	echo "agents $n logins/s $rate failed $fails rss_kib $rss idle_rss_kib $rss0 rss_per_agent_b $(( (rss - rss0) * 1024 / n ))"
done
