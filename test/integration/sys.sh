# shellcheck shell=bash
# The whole system in namespaces (DESIGN §5), sourced after lib.sh by
# test_system.sh and the demo:
#
#   inet (bridge br0, 203.0.113.0/24 = "the Internet")
#     BROKER 203.0.113.10   RELAY 203.0.113.20   PUB 203.0.113.50 (a public host)
#     NATA   203.0.113.101 --- LAN 10.0.1.0/24 --- HA 10.0.1.2
#     NATB   203.0.113.102 --- LAN 10.0.2.0/24 --- HB 10.0.2.2
#
# NATA and NATB are Linux routers with nftables masquerade: nothing on them
# knows about natsplice. TX checksum offload is off on the hosts' veths (the
# relay's XDP cannot finish partial checksums) and the bridge port facing the
# relay runs an XDP_PASS program (XDP_TX on veth, see lib.sh).

BROKER_BIN=${BROKER_BIN:-$TOP/broker/natsplice-broker}
NSDELAY=${NSDELAY:-$TOP/test/tools/nsdelay}
AGENT_BIN=${AGENT_BIN:-$TOP/agent/natsplice-agent}
BROKER4=203.0.113.10
SRELAY4=203.0.113.20
PUB4=203.0.113.50
NATA4=203.0.113.101
NATB4=203.0.113.102
HA4=10.0.1.2
HB4=10.0.2.2
BROKER_PORT=7700
BROKER_HTTP=127.0.0.1:9770
# BROKER_AT: the broker's listen address as the daemons write it (default
# BROKER4; "[2001:db8::10]" for a broker on IPv6)

# nat_random_ports NAT: NAT masquerades with random ports (it keeps none):
# the broker then asks for passive splices (pure ones need a kept port).
nat_random_ports() {
	nsx "$1" nft flush ruleset
	nsx "$1" nft -f - <<-NFT
	table ip nat {
		chain postrouting {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "eth0" masquerade random
		}
	}
	NFT
}

# need_system: what every test of the whole system needs, or skip.
need_system() {
	need jq curl socat nft
	[ -x "$BROKER_BIN" ] || skip "natsplice-broker is not built"
	[ -x "$AGENT_BIN" ] || skip "natsplice-agent is not built"
}

# inet_host NS SHORT IPV4: NS's eth0 on br0 as port vSHORT, default route via nothing.
inet_host() {
	link_ns "$1" "$INET" eth0 "v$2"
	ip -n "$INET" link set "v$2" master br0
	ip -n "$1" addr add "$3/24" dev eth0
	nsx "$1" ethtool -K eth0 tx off >/dev/null
}

# delayed_host NS SHORT IPV4 MS: NS's eth0 reaches br0 through the
# namespace NS-d, where nsdelay holds every frame MS ms each way. The
# offloads are off on every end: nsdelay forwards frames as they come.
delayed_host() {
	local ns=$1 short=$2 ip=$3 ms=$4 dly=$1-d dev

	ns_add "$dly"
	link_ns "$ns" "$dly" eth0 a0
	link_ns "$dly" "$INET" b0 "v$short"
	ip -n "$INET" link set "v$short" master br0
	ip -n "$ns" addr add "$ip/24" dev eth0
	for dev in "$ns eth0" "$dly a0" "$dly b0" "$INET v$short"; do
		set -- $dev
		nsx "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
	done
	bg "$dly" "$TMP/nsdelay-$short.log" "$NSDELAY" --delay "$ms" a0 b0
	wait_for_line "$TMP/nsdelay-$short.log" "nsdelay: ready" 10 "$BG_PID" ||
		fail "nsdelay did not start: $(cat "$TMP/nsdelay-$short.log")"
}

# nat_router NAT HOST WAN4 LANNET [MS]: a masquerading router NAT between br0
# and a LAN with one host HOST (.2), router .1; with MS, its link to br0
# delays every frame MS ms each way (delayed_host).
nat_router() {
	local nat=$1 host=$2 wan=$3 net=$4 ms=${5:-}

	ns_add "$nat"
	ns_add "$host"
	if [ -n "$ms" ]; then
		delayed_host "$nat" "${nat##*-}" "$wan" "$ms"
	else
		inet_host "$nat" "${nat##*-}" "$wan"
	fi
	link_ns "$nat" "$host" lan0 eth0
	ip -n "$nat" addr add "$net.1/24" dev lan0
	ip -n "$host" addr add "$net.2/24" dev eth0
	ip -n "$host" route add default via "$net.1"
	nsx "$host" ethtool -K eth0 tx off >/dev/null
	nsx "$nat" ethtool -K lan0 tx off >/dev/null
	nsx "$nat" sysctl -qw net.ipv4.ip_forward=1
	nsx "$nat" nft -f - <<-NFT
	table ip nat {
		chain postrouting {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "eth0" masquerade
		}
	}
	NFT
}

topo_nat() {
	INET=${NSP}inet BROKER=${NSP}broker RELAY=${NSP}relay PUB=${NSP}pub
	NATA=${NSP}nata NATB=${NSP}natb HA=${NSP}ha HB=${NSP}hb
	ns_add "$INET"
	ip -n "$INET" link add br0 type bridge
	ip -n "$INET" link set br0 up
	for ns in "$BROKER" "$RELAY" "$PUB"; do ns_add "$ns"; done
	inet_host "$BROKER" broker "$BROKER4"
	inet_host "$RELAY" relay "$SRELAY4"
	inet_host "$PUB" pub "$PUB4"
	nat_router "$NATA" "$HA" "$NATA4" 10.0.1
	nat_router "$NATB" "$HB" "$NATB4" 10.0.2 "${NATB_DELAY_MS:-}"
	nsx "$INET" "$NATSPLICE" dev pass vrelay
}

# broker_tls_yaml: the broker.yaml lines of its certificate under $TMP
# (made by the broker at its first start, kept across restarts).
broker_tls_yaml() {
	printf 'tls-cert: %s\ntls-key: %s\n' "$TMP/broker.crt" "$TMP/broker.key"
}

# broker_fingerprint CONF: BROKER_FP, the pin of CONF's certificate
# (`natsplice-broker --fingerprint`, which makes the certificate if need be).
broker_fingerprint() {
	BROKER_FP=$("$BROKER_BIN" --fingerprint -f "$1" 2>"$TMP/fingerprint.err") ||
		fail "natsplice-broker --fingerprint failed: $(cat "$TMP/fingerprint.err")"
	[[ $BROKER_FP == sha256:* ]] || fail "--fingerprint printed '$BROKER_FP'"
}

# start_broker [extra yaml]: broker.yaml with agents home-nas (NAS_EXPOSE: its
# expose ACL; NAS_RELAY set: relay: true), laptop, pub,
# relay relay1, its TLS certificate under $TMP, plus extra lines; waits for
# "ready". Sets BROKER_PID/LOG/CONF and BROKER_FP (the agents' and relay's pin).
start_broker() {
	BROKER_CONF=$TMP/broker.yaml
	cat >"$BROKER_CONF" <<-YAML
	listen: "${BROKER_AT:-$BROKER4}:$BROKER_PORT"
	http: $BROKER_HTTP
	$(broker_tls_yaml | sed -n 1p)
	$(broker_tls_yaml | sed -n 2p)
	agents:
	  - { name: home-nas, secret: nas-secret${NAS_EXPOSE:+, expose: $NAS_EXPOSE}${NAS_RELAY:+, relay: true} }
	  - { name: laptop, secret: laptop-secret }
	  - { name: pub, secret: pub-secret }
	  - { name: mallory, secret: mallory-secret }
	relays:
	  - { name: relay1, secret: relay-secret }
	${1:-}
	YAML
	broker_fingerprint "$BROKER_CONF"
	BROKER_STARTS=$((${BROKER_STARTS:-0} + 1))
	BROKER_LOG=$TMP/broker.$BROKER_STARTS.log
	bg "$BROKER" "$BROKER_LOG" "$BROKER_BIN" -f "$BROKER_CONF" -v
	BROKER_PID=$BG_PID
	wait_for_line "$BROKER_LOG" ready "$READY_TIMEOUT" "$BROKER_PID" ||
		fail "broker did not start: $(tail -n 3 "$BROKER_LOG")"
}

# start_sys_relay MODE [AUTH...]: the relay in RELAY, registered with the
# broker (SYS_RELAY_PORTS: its port range, default 20000-20999), pinning
# BROKER_FP unless AUTH says otherwise (--insecure).
start_sys_relay() {
	local mode=$1

	shift
	[ $# -gt 0 ] || set -- --broker-fingerprint "$BROKER_FP"
	RELAY4=$SRELAY4 RELAY6=2001:db8::20 RELAY_PORTS=${SYS_RELAY_PORTS:-20000-20999} \
		start_relay "$mode" --broker "${BROKER_AT:-$BROKER4}:$BROKER_PORT" \
		--name relay1 --secret relay-secret "$@"
	wait_for_line "$RELAY_LOG" "registered with broker" "$READY_TIMEOUT" "$RELAY_PID" ||
		fail "relay did not register: $(tail -n 3 "$RELAY_LOG")"
}

# agent_tls_yaml TAIL: the line pinning the broker (BROKER_FP), unless TAIL
# says itself how to reach the broker (broker-fingerprint, broker-ca, insecure).
agent_tls_yaml() {
	case "$1" in
	*broker-fingerprint:* | *broker-ca:* | *insecure:*) ;;
	*) printf 'broker-fingerprint: %s\n' "$BROKER_FP" ;;
	esac
}

# start_agent NS NAME SECRET YAML_TAIL: an agent in NS; waits for "ready".
# It pins the broker's certificate (after TAIL: the tail's lines keep their
# numbers). Sets AGENT_PID and AGENT_LOG (also AGENT_PID_<NAME> for later).
start_agent() {
	local ns=$1 name=$2 secret=$3 tail=$4 conf=$TMP/agent-$2.yaml

	printf 'broker: "%s:%s"\nname: %s\nsecret: %s\n%s\n%s' "${BROKER_AT:-$BROKER4}" "$BROKER_PORT" \
		"$name" "$secret" "$tail" "$(agent_tls_yaml "$tail")" >"$conf"
	AGENT_LOG=$TMP/agent-$name.log
	bg "$ns" "$AGENT_LOG" "$AGENT_BIN" -f "$conf" -v
	AGENT_PID=$BG_PID
	wait_for_line "$AGENT_LOG" ready "$READY_TIMEOUT" "$AGENT_PID" ||
		fail "agent $name did not start: $(tail -n 3 "$AGENT_LOG")"
}

# stop_agent_named NAME: SIGTERM an agent started by start_agent; it must exit 0.
stop_agent_named() {
	local pid

	# $TMP in the pattern: other test runs on this machine have agents of
	# the same name, and they are not ours to stop
	pid=$(pgrep -f "$TMP/agent-$1.yaml" | head -n 1) || true	# (none running: nothing to stop)
	[ -n "$pid" ] || return 0
	kill -TERM "$pid"
	wait_until 10 sh -c "! kill -0 $pid 2>/dev/null" || fail "agent $1 ignored SIGTERM"
}

# web_server NS PORT FILE: a tiny HTTP server (socat) serving FILE on 127.0.0.1:PORT.
web_server() {
	local ns=$1 port=$2 file=$3 script=$TMP/web-$2.sh

	cat >"$script" <<-SH
	#!/bin/sh
	# read the request first: closing with unread data would send an RST
	while IFS= read -r line; do case "\$line" in "\$(printf '\\r')"|"") break ;; esac; done
	printf 'HTTP/1.0 200 OK\r\nContent-Length: %s\r\n\r\n' "$(stat -c %s "$file")"
	exec cat "$file"
	SH
	chmod +x "$script"
	# -t 60: when cat exits socat gives the rest of the pipe only -t seconds
	# (default 0.5) to reach a slow client: under load that cut downloads short
	bg "$ns" "$TMP/web-$port.log" socat -t 60 TCP-LISTEN:"$port",bind=127.0.0.1,fork,reuseaddr,backlog=1024 \
		EXEC:"$script"
	wait_until 10 nsx "$ns" sh -c "ss -ltn | grep -q 127.0.0.1:$port"
}

# direct_bed [BROKER YAML] [BYTES]: the direct path: a web server (a random
# $TMP/web.bin, 4 MiB by default) on the public host PUB, published by agent
# pub (tunnel-listen :7701), and agent laptop on HB subscribing to it on
# 127.0.0.1:18080; the broker with the extra YAML lines.
direct_bed() {
	need_system
	topo_nat
	start_broker "${1:-}"
	random_file "$TMP/web.bin" "${2:-$((4 << 20))}"
	web_server "$PUB" 8080 "$TMP/web.bin"
	start_agent "$PUB" pub pub-secret 'tunnel-listen: 0.0.0.0:7701
publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: pub/web, listen: 127.0.0.1:18080, proto: tcp }'
}

# last_session_path: the path of the broker's newest session record.
last_session_path() {
	broker_api /api/v1/sessions | jq -r 'last | .path'
}

# broker_api PATH: GET the broker's HTTP API (with BROKER_TOKEN, if set, as
# its bearer token: the broker's http-tokens).
# readable FILE: the daemons re-read their file after dropping root (the
# broker as nobody, the relay as nobody with CAP_BPF): let them.
readable() {
	local d

	d=$(dirname "$1")
	while [ "$d" != / ]; do
		[ -n "$(find "$d" -maxdepth 0 -perm -o+x)" ] || chmod o+x "$d"
		d=$(dirname "$d")
	done
	chmod o+r "$1"
}

broker_api() {
	nsx "$BROKER" curl -fsS ${BROKER_TOKEN:+-H "Authorization: Bearer $BROKER_TOKEN"} \
		"http://$BROKER_HTTP$1"
}

# http_get NS URL OUT: download with curl; prints nothing, fails on error.
http_get() {
	nsx "$1" curl -fsS --max-time 60 -o "$3" "$2"
}

# parallel_get N [NS URL]: N downloads at once from HB through the subscriber
# port 127.0.0.1:18080 (or from NS, of URL); every one must arrive and match
# $TMP/web.bin.
parallel_get() {
	local n=$1 ns=${2:-$HB} url=${3:-http://127.0.0.1:18080/} i pids=() bad=0

	for i in $(seq "$n"); do
		nsx "$ns" curl -fsS --max-time 120 -o "$TMP/p$i.bin" "$url" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || bad=$((bad + 1))
	done
	[ "$bad" = 0 ] || fail "$bad of $n parallel downloads failed"
	for i in $(seq "$n"); do
		cmp -s "$TMP/p$i.bin" "$TMP/web.bin" || fail "download $i differs"
	done
}

random_file() {
	head -c "$2" /dev/urandom >"$1"
}

# sshd_start NS IP [PORT]: sshd on NS's IP:PORT (22) (key login only, GatewayPorts);
# the key pair is generated once: $TMP/ssh/user for every client.
sshd_start() {
	local ns=$1 d=$TMP/ssh port=${3:-22}

	mkdir -p "$d" /run/sshd
	chmod 700 "$d"
	if [ ! -f "$d/user" ]; then
		{ ssh-keygen -q -t ed25519 -N '' -f "$d/host" && ssh-keygen -q -t ed25519 -N '' -f "$d/user"; } ||
			fail "ssh-keygen failed"
		cp "$d/user.pub" "$d/authorized_keys"
	fi
	cat >"$d/sshd_config-${ns##*-}" <<-CONF
	ListenAddress $2:$port
	HostKey $d/host
	PidFile $d/sshd-${ns##*-}.pid
	AuthorizedKeysFile $d/authorized_keys
	PermitRootLogin prohibit-password
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	UsePAM no
	StrictModes no
	GatewayPorts yes
	AllowTcpForwarding yes
	MaxStartups 1000
	CONF
	bg "$ns" "$TMP/sshd-${ns##*-}.log" /usr/sbin/sshd -D -e -f "$d/sshd_config-${ns##*-}"
	wait_until 10 nsx "$ns" sh -c "ss -ltn | grep -q ':$port '" || fail "sshd does not listen"
}

# nginx_start NS PORT SERVERS...: nginx in NS as root, one worker, its files
# under $TMP (nginx.conf, .pid, .err; temp paths in $TMP/ngx), the http
# block's server blocks (and anything else) from SERVERS, each an argument
# line; waits until PORT listens.
nginx_start() {
	local ns=$1 port=$2

	shift 2
	mkdir -p "$TMP/ngx"
	{
		printf 'user root;\nworker_processes 1;\npid %s;\nerror_log %s;\n' \
			"$TMP/nginx.pid" "$TMP/nginx.err"
		printf 'events { worker_connections 4096; }\nhttp {\n'
		printf '    %s_temp_path %s;\n' client_body "$TMP/ngx" proxy "$TMP/ngx" \
			fastcgi "$TMP/ngx" uwsgi "$TMP/ngx" scgi "$TMP/ngx"
		printf '    %s\n' "$@"
		printf '}\n'
	} >"$TMP/nginx.conf"
	bg "$ns" "$TMP/nginx.log" nginx -c "$TMP/nginx.conf" -g 'daemon off;'
	wait_until 10 nsx "$ns" sh -c "ss -ltn | grep -q ':$port '" ||
		fail "nginx does not listen: $(cat "$TMP/nginx.err" 2>/dev/null)"
}

# web_pair BYTES: a random $TMP/web.bin of BYTES on a web server on HA
# 127.0.0.1:8080, published by home-nas as web, and laptop on HB subscribing
# to it on 127.0.0.1:18080 (pool: 0: each client its own tunnel). The broker
# and the relay are up already.
web_pair() {
	random_file "$TMP/web.bin" "$1"
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }'
}
