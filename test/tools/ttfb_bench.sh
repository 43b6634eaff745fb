#!/usr/bin/env bash
# Time from a client's connect to its first byte (curl's time_starttransfer),
# per path, in one run on the NAT test bed (test/integration/sys.sh; NATB
# NATB_DELAY_MS away each way, default 20, as the Internet would be): a
# plain TCP connection from HB (behind NATB) to a server on PUB (the limit),
# the same server through the direct tunnel path, a server behind NATA
# through a punched path (both NATs map endpoint-independently), and the
# same through the relay (NATA made symmetric: nothing to punch). POOL
# (default 0: every request sets its tunnel up) is the subscriptions' pool.
# ROUNDS requests each (default 50); prints p50 and p99 in milliseconds.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/sys.sh"
. "$(dirname "$0")/../integration/nat_types.sh"
ROUNDS=${ROUNDS:-50}
MODE=${MODE:-tc}
POOL=${POOL:-0}

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
		printf "%-44s p50 %7.2f ms  p99 %7.2f ms  (n=%d)\n", label, p50, p99, NR }'
}

nat_known() {	# nat_known AGENT: the broker has its discovery
	nsx "$BROKER" curl -fsS "http://$BROKER_HTTP/api/v1/agents" | jq -e --arg a "$1" \
		'.[] | select(.name == $a) | .nat_tcp != null' >/dev/null
}

last_path() {
	nsx "$BROKER" curl -fsS "http://$BROKER_HTTP/api/v1/sessions" | jq -r 'last | .path'
}

NATB_DELAY_MS=${NATB_DELAY_MS:-20} topo_nat
ip -n "$BROKER" addr add 203.0.113.11/24 dev eth0
start_broker 'discovery-address: 203.0.113.11'
start_sys_relay "$MODE"
echo hello >"$TMP/small.txt"
web_server "$HA" 8080 "$TMP/small.txt"
web_server "$PUB" 8080 "$TMP/small.txt"
bg "$PUB" "$TMP/pubweb.log" socat -t 60 TCP-LISTEN:8090,fork,reuseaddr EXEC:"$TMP/web-8080.sh"
wait_until 10 nsx "$PUB" sh -c "ss -ltn | grep -q :8090"
nat_type "$NATA" "$HA" "$NATA4" "$HA4" port-restricted-cone
nat_type "$NATB" "$HB" "$NATB4" "$HB4" port-restricted-cone
NAS_YAML='publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
start_agent "$HA" home-nas nas-secret "$NAS_YAML"
start_agent "$PUB" pub pub-secret 'tunnel-listen: 0.0.0.0:7701
publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp, pool: $POOL }
  - { service: pub/web, listen: 127.0.0.1:18081, proto: tcp, pool: $POOL }"
wait_until 10 nsx "$HB" sh -c "ss -ltn | grep -q :18081"
wait_until 60 nat_known home-nas && wait_until 60 nat_known laptop ||
	{ echo "no NAT discovery" >&2; exit 1; }
echo "NATB ${NATB_DELAY_MS:-20} ms away each way; pool $POOL; $ROUNDS requests each"
ttfb "$HB" "http://$PUB4:8090/" | stats "plain TCP HB -> PUB (the limit)"
ttfb "$HB" http://127.0.0.1:18081/ | stats "direct path"
echo "    (the broker's last session: $(last_path))"
ttfb "$HB" http://127.0.0.1:18080/ | stats "punched path"
echo "    (the broker's last session: $(last_path))"
# the same pair through the relay: NATA symmetric, home-nas again
stop_agent_named home-nas
nat_type "$NATA" "$HA" "$NATA4" "$HA4" symmetric
start_agent "$HA" home-nas nas-secret "$NAS_YAML"
wait_until 60 nat_known home-nas || { echo "no NAT discovery" >&2; exit 1; }
ttfb "$HB" http://127.0.0.1:18080/ | stats "relay path ($MODE splice)"
echo "    (the broker's last session: $(last_path))"
