#!/usr/bin/env bash
# make demo: the whole system in network namespaces, narrated.
#
# An Internet bridge with the broker, the relay (XDP) and a public host; two
# home networks behind Linux NAT routers (nftables masquerade). A web server
# behind one NAT is fetched with curl from behind the other through the
# subscriber agent's local port: the broker picks the relay path and the bytes
# cross the relay's kernel splice. Then the direct and the reverse paths, and
# a public port on the relay that an ordinary client reaches with no agent.
# Last, NAT behaviour discovery's findings and a punched path: the two NATs
# let the agents connect to each other directly once both send at once.
# Everything is torn down at the end, also on failure or Ctrl-C.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=sys.sh
. "$(dirname "$0")/sys.sh"

if [ -t 1 ]; then B_ON=$'\e[1m' B_OFF=$'\e[0m'; else B_ON="" B_OFF=""; fi
say() { printf '\n%s==> %s%s\n' "$B_ON" "$*" "$B_OFF"; }
show() { printf '    $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/      /'; }
natsplice() { nsc "$@"; }

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (network namespaces, XDP); try: sudo make demo" >&2
	exit 1
fi
for c in jq ethtool curl socat nft; do
	command -v "$c" >/dev/null || { echo "demo: needs $c (make deps-test)" >&2; exit 1; }
done
for f in "$NATSPLICE" "$BROKER_BIN" "$AGENT_BIN"; do
	[ -x "$f" ] || { echo "demo: $f is not built; run make and make -C test" >&2; exit 1; }
done

standalone nsdemo

fetch() {	# fetch NS PORT|URL: curl through a subscriber port (or URL), time and check it
	local t0 t1 url=$2

	case "$url" in http:*) ;; *) url=http://127.0.0.1:$2/ ;; esac
	t0=$(date +%s.%N)
	nsx "$1" curl -fsS -o "$TMP/got.bin" "$url"
	t1=$(date +%s.%N)
	printf '    curl got %s bytes in %.3f s; sha256 %s\n' "$(stat -c %s "$TMP/got.bin")" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
		"$(cmp -s "$TMP/got.bin" "$TMP/web.bin" && echo "matches the server's file" || echo MISMATCH)"
	cmp -s "$TMP/got.bin" "$TMP/web.bin"
}

BROKER2=203.0.113.11	# the broker's second address: NAT behaviour discovery

say "Building the test bed: ten network namespaces on this machine"
NATB_DELAY_MS=20 topo_nat	# 20 ms between NATB and the Internet, as real links have
ip -n "$BROKER" addr add "$BROKER2/24" dev eth0
cat <<TXT
    inet     a bridge standing for the Internet (203.0.113.0/24)
    BROKER   $BROKER4   natsplice-broker
    RELAY    $SRELAY4   natsplice relay run (XDP)
    PUB      $PUB4   a host with a public address
    NATA     $NATA4  a home router (nftables masquerade) in front of HA $HA4
    NATB     $NATB4  a home router (nftables masquerade) in front of HB $HB4,
                          20 ms away from the others (a delay line)
    Nothing leaves this machine; the NAT routers know nothing of natsplice.
TXT

say "Starting the broker and the relay"
# hole punching off until step 5, which turns it on (SIGHUP reload)
NAS_EXPOSE='[8080]' start_broker "discovery-address: $BROKER2
hole-punching: false"
start_sys_relay xdp --broker-fingerprint "$BROKER_FP" --public-ports 8000-8099
sed -n 's/^/    /p' "$BROKER_LOG" | grep -m1 ready || true
echo "    control connections: TLS 1.3; agents and relay pin $BROKER_FP"
echo "    (natsplice-broker --fingerprint -f broker.yaml)"
grep -m1 "registered" "$RELAY_LOG" | sed 's/^/    /'

say "HA (behind NATA) runs a web server on 127.0.0.1:8080, publishes it as 'web' and exposes it on the relay's port 8080"
random_file "$TMP/web.bin" $((8 << 20))
web_server "$HA" 8080 "$TMP/web.bin"
start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp, expose: { port: 8080 } }'
echo "    agent home-nas: $(grep -m1 ready "$AGENT_LOG" | sed 's/.*ready: //')"
wait_for_line "$AGENT_LOG" "web: public at" 20 "$AGENT_PID" || fail "the public port did not open"
echo "    agent home-nas: $(grep -m1 "web: public at" "$AGENT_LOG" | sed 's/^[^:]*: //')"

say "PUB (public address, accepts tunnels on :7701) publishes its own 'web' and subscribes to home-nas/web"
web_server "$PUB" 8080 "$TMP/web.bin"
start_agent "$PUB" pub pub-secret 'tunnel-listen: 0.0.0.0:7701
publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }
subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18082, proto: tcp }'
echo "    agent pub: $(grep -m1 ready "$AGENT_LOG" | sed 's/.*ready: //')"

say "HB (behind NATB) subscribes to home-nas/web on :18080 and pub/web on :18081"
# (pool: 0: every connection gets a tunnel of its own, on the best path there
# is then; a pool would keep tunnels ready on the path of their time)
start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }
  - { service: pub/web, listen: 127.0.0.1:18081, proto: tcp }'
echo "    agent laptop: $(grep -m1 ready "$AGENT_LOG" | sed 's/.*ready: //')"

say "1. Relay path: curl on HB fetches http://127.0.0.1:18080/ (both ends behind NAT)"
fetch "$HB" 18080
echo "    broker's choice: $(broker_api /api/v1/sessions | jq -r 'last | "path \(.path), splice mode \(.mode // "-")"')"
show natsplice splice list
show natsplice stats
echo "    The relay's XDP program forwarded those packets (tx); its TCP stack never saw them."

say "2. Direct path: curl on HB fetches pub/web through :18081 (PUB is reachable)"
fetch "$HB" 18081
echo "    broker's choice: $(broker_api /api/v1/sessions | jq -r 'last | "path \(.path)"')"

say "3. Reverse path: curl on PUB fetches home-nas/web through :18082 (HA dials out to PUB)"
fetch "$PUB" 18082
echo "    broker's choice: $(broker_api /api/v1/sessions | jq -r 'last | "path \(.path)"')"

say "4. Public port: curl on PUB (no agent involved) fetches http://$SRELAY4:8080/"
fetch "$PUB" "http://$SRELAY4:8080/"
echo "    The relay held curl's SYN until home-nas connected to it, then spliced the two in XDP."
echo "    broker's record: $(broker_api /api/v1/sessions | jq -r '[.[] | select(.kind == "public")] | last | "public client \(.client) -> \(.service) via relay \(.relay)"')"

say "5. Hole punching: the broker's second address ($BROKER2) let each agent test its NAT"
for a in laptop home-nas; do
	printf '    $ natsplice broker discover %s\n' "$a"
	nsx "$BROKER" "$NATSPLICE" broker discover "$a" --url "http://$BROKER_HTTP" 2>&1 |
		sed 's/^/      /'
done
echo "    Both NATs keep one public port per local port for every destination (mapping ei)"
echo "    and keep the port number: the broker can give each agent the other's address."
sed -i 's/^hole-punching: false$/hole-punching: true/' "$BROKER_CONF"
readable "$BROKER_CONF"	# the broker runs as nobody now
kill -HUP "$BROKER_PID"
wait_for_line "$BROKER_LOG" "^natsplice-broker: reload: " 10 "$BROKER_PID" ||
	fail "the broker did not reload"
echo "    broker.yaml: hole-punching: true; SIGHUP: $(grep -m1 '^natsplice-broker: reload: ' "$BROKER_LOG" | sed 's/^[^:]*: //')"
fetch "$HB" 18080
echo "    broker's choice: $(broker_api /api/v1/sessions | jq -r 'last | "path \(.path)"')"
echo "    Both agents connected to each other at the same moment from the ports the broker"
echo "    gave them: the SYNs crossed, each NAT let the other's in, no relay carried a byte."

say "The broker's view (http://$BROKER_HTTP/api/v1/sessions)"
broker_api /api/v1/sessions | jq -r '.[] | "    session \(.id): \(.service) \(.subscriber // ("public client " + .client)) -> \(.provider) via \(.path), \(if .encrypted then "encrypted end to end" else "not encrypted" end)"' | tail -n 6

say "Done: tearing the namespaces down"
