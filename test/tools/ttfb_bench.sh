#!/usr/bin/env bash
# Time from a client's connect to its first byte (curl's time_starttransfer),
# in one run on the NAT test bed (test/integration/sys.sh): a plain TCP
# connection from HB (behind NATB) to a server on PUB, the same server through
# the direct tunnel path, and a server behind NATA through the relay path.
# ROUNDS requests each (default 50); prints p50 and p99 in milliseconds.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/sys.sh"
ROUNDS=${ROUNDS:-50}
MODE=${MODE:-xdp}

standalone nsttfb

ttfb() {	# ttfb NS URL: ROUNDS samples in ms, one per line
	local i

	for i in $(seq "$ROUNDS"); do
		nsx "$1" curl -fsS -o /dev/null -w '%{time_starttransfer}\n' "$2" || { echo "curl $2 failed" >&2; exit 1; }
	done | awk '{ printf "%.3f\n", $1 * 1000 }'
}

stats() {	# stats LABEL < samples
	sort -n | awk -v label="$1" '{ v[NR] = $1 } END {
		p50 = v[int((NR + 1) * 0.50)]; p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
		printf "%-34s p50 %7.2f ms  p99 %7.2f ms  (n=%d)\n", label, p50, p99, NR }'
}

topo_nat
start_broker
start_sys_relay "$MODE"
echo hello >"$TMP/small.txt"
web_server "$HA" 8080 "$TMP/small.txt"
web_server "$PUB" 8080 "$TMP/small.txt"
bg "$PUB" "$TMP/pubweb.log" socat -t 60 TCP-LISTEN:8090,fork,reuseaddr EXEC:"$TMP/web-8080.sh"
wait_until 10 nsx "$PUB" sh -c "ss -ltn | grep -q :8090"
start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
start_agent "$PUB" pub pub-secret 'tunnel-listen: 0.0.0.0:7701
publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp }
  - { service: pub/web, listen: 127.0.0.1:18081, proto: tcp }'
wait_until 10 nsx "$HB" sh -c "ss -ltn | grep -q :18081"
ttfb "$HB" "http://$PUB4:8090/" | stats "plain TCP HB -> PUB (through NATB)"
ttfb "$HB" http://127.0.0.1:18081/ | stats "direct path (broker + tunnel)"
ttfb "$HB" http://127.0.0.1:18080/ | stats "relay path ($MODE splice)"
