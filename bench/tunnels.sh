# shellcheck shell=bash
# The "tunnels" section of bench/run (sourced after lib.sh and sys.sh): what
# a user gets through a natsplice tunnel between two NATs, against what the
# same client gets from the same server through a port forward on the same
# NAT router, and through `ssh -R` to a public host. bench/README.md says how
# to read it.
#
# On sys.sh's two-NAT bed, with nginx (and redis) on HA behind NATA and every
# client on HB behind NATB:
#   tunnel   HB 127.0.0.1:18080 -> subscriber agent -> relay -> provider agent
#            -> nginx on HA 127.0.0.1:8080 (the broker picks the splice)
#   portfwd  HB -> NATA4:8080, nftables DNAT on NATA to HA:8080
#            (the baseline of every ratio)
#   haproxy2 HB 127.0.0.1:18090 -> haproxy -> NATA4:8081 (port forward)
#            -> haproxy on HA -> nginx: the best user-space proxy for each
#            of the agents' two hops (no relay)
#   public   HB (an ordinary client, no agent needed) -> the relay's public
#            port SRELAY4:8080 (home-nas's expose:) -> provider agent ->
#            nginx; the relay holds each SYN until the provider connects
#   ssh-r    HB -> PUB4:9080; sshd on PUB (GatewayPorts), HA runs
#            `ssh -N -R 0.0.0.0:9080:127.0.0.1:8080` to it
# Each figure is measured for the three paths one after the other in one bed.
#
# Uses from bench/run: rec, na, step, TMP, mark_infra, stop_bg, field; from
# bench/cpu.sh: proc_cpu. bench/crypt.sh uses tun_nginx; sys.sh has sshd_start.
# Settings (set by the profile): TUN_CONN_T (seconds of new connections),
# TUN_KA_T (seconds of keep-alive requests), TUN_BULK_MB and TUN_BULK_N
# (size and number of the downloads), TUN_TTFB_N
# (connect-to-first-byte samples), TUN_REDIS_N (0: no redis-benchmark).

TUN_PATHS="portfwd tunnel public haproxy2 ssh-r"
TUN_WRK_C=${TUN_WRK_C:-10}	# wrk connections

tun_steps() {
	local np

	np=$(wc -w <<<"$TUN_PATHS")
	# conns, keep-alive, bulk, ttfb per path; ttfb without pool; redis
	echo $((4 * np + 1 + (${TUN_REDIS_N:-0} > 0 ? np : 0)))
}

# tun_ep PATH: host:port where HB's web client connects.
tun_ep() {
	case "$1" in
	portfwd) echo "$NATA4:8080" ;;
	tunnel) echo "127.0.0.1:18080" ;;
	tunnel-nopool) echo "127.0.0.1:18083" ;;
	public) echo "$SRELAY4:8080" ;;
	ssh-r) echo "$PUB4:9080" ;;
	haproxy2) echo "127.0.0.1:18090" ;;
	esac
}

# tun_haproxy: the agents' two hops done by haproxy (mode tcp, splice both
# ways, one thread each) over the port forward: HB 127.0.0.1:18090 ->
# haproxy -> NATA4:8081 (DNAT to HA) -> haproxy on HA -> nginx. What the
# best user-space proxy costs for the same two hops, without the relay.
tun_haproxy() {
	local ns w r

	for ns in "$HB" "$HA"; do
		if [ "$ns" = "$HB" ]; then
			w="127.0.0.1:18090 $NATA4:8081" r="127.0.0.1:18091 $NATA4:8082"
		else
			w="0.0.0.0:8081 127.0.0.1:8080" r="0.0.0.0:8082 127.0.0.1:6379"
		fi
		cat >"$TMP/haproxy-${ns##*-}.cfg" <<-CFG
		global
		    maxconn 4000
		    nbthread 1
		defaults
		    mode tcp
		    option splice-request
		    option splice-response
		    timeout connect 5s
		    timeout client 120s
		    timeout server 120s
		listen web
		    bind ${w% *}
		    server s ${w#* }
		listen redis
		    bind ${r% *}
		    server s ${r#* }
		CFG
		bg "$ns" "$TMP/haproxy-${ns##*-}.log" haproxy -db -f "$TMP/haproxy-${ns##*-}.cfg"
		HAP_PIDS="${HAP_PIDS:-} $BG_PID"
	done
	wait_until 10 nsx "$HB" sh -c "ss -ltn | grep -q 127.0.0.1:18090" || fail "haproxy does not listen"
}

# tun_nginx: nginx on HA port 8080 (one worker) serving /small (100 bytes)
# and /big (TUN_BULK_MB MiB).
tun_nginx() {
	mkdir -p "$TMP/www" "$TMP/ngx"
	head -c 100 /dev/zero | tr '\0' x >"$TMP/www/small"
	head -c "$((TUN_BULK_MB << 20))" /dev/urandom >"$TMP/www/big"
	nginx_start "$HA" 8080 "access_log off;" "sendfile on;" "tcp_nopush on;" \
		"keepalive_requests 1000000;" \
		"server { listen 8080 reuseport backlog=4096; root $TMP/www; }"
}

# tun_sshd: sshd on PUB, `ssh -R` from HA.
tun_sshd() {
	local d=$TMP/ssh

	sshd_start "$PUB" "$PUB4"
	bg "$HA" "$TMP/ssh-r.log" ssh -N -i "$d/user" -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o ExitOnForwardFailure=yes -o ServerAliveInterval=30 \
		-R 0.0.0.0:9080:127.0.0.1:8080 -R 0.0.0.0:9379:127.0.0.1:6379 "root@$PUB4"
	SSH_PID=$BG_PID
	wait_until 20 nsx "$PUB" sh -c "ss -ltn | grep -q ':9080 '" ||
		fail "ssh -R does not forward: $(tail -n 2 "$TMP/ssh-r.log")"
}

# tun_hop_pids PATH: the processes that carry PATH's two hops: both agents;
# both haproxy; the ssh client on HA and every sshd on PUB.
tun_hop_pids() {
	case "$1" in
	tunnel) echo "$SUB_PID $PROV_PID" ;;
	public) echo "$PROV_PID" ;;
	haproxy2) echo "$HAP_PIDS" ;;
	ssh-r) echo "$SSH_PID $(ip netns pids "$PUB")" ;;
	esac
}

# tun_conns PATH: new connections per second for TUN_CONN_T seconds
# (wrk, one request per connection); failures are wrk's socket errors and
# non-2xx answers.
tun_conns() {
	local path=$1 out=$TMP/wrk-close-$1.out rps err

	step "tunnels $path: new connections, ${TUN_CONN_T}s (wrk -c$TUN_WRK_C, Connection: close)"
	nsx "$HB" timeout $((TUN_CONN_T + 30)) wrk -t1 -c"$TUN_WRK_C" -d"${TUN_CONN_T}s" \
		-H 'Connection: close' "http://$(tun_ep "$path")/small" >"$out" 2>&1
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	err=$(awk '/Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
		/Non-2xx/ { n += $NF } END { print n + 0 }' "$out")
	if [ -z "$rps" ]; then
		na tunnels "$path" - conns_per_s "${TUN_CONN_T}s" 1/s "$(tail -n 1 "$out")"
		return
	fi
	rec tunnels "$path" - conns_per_s "${TUN_CONN_T}s" "$rps" 1/s \
		"wrk -c$TUN_WRK_C Connection: close; $err failures; $(awk '/requests in/ { print $1 }' "$out") requests"
	rec tunnels "$path" - conn_failures "${TUN_CONN_T}s" "$err" count "socket errors + non-2xx"
}

# tun_keepalive PATH: requests/s over TUN_WRK_C keep-alive connections.
tun_keepalive() {
	local path=$1 out=$TMP/wrk-ka-$1.out rps

	step "tunnels $path: keep-alive requests, ${TUN_KA_T}s (wrk -c$TUN_WRK_C)"
	nsx "$HB" timeout $((TUN_KA_T + 30)) wrk -t1 -c"$TUN_WRK_C" -d"${TUN_KA_T}s" \
		"http://$(tun_ep "$path")/small" >"$out" 2>&1
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	if [ -z "$rps" ]; then
		na tunnels "$path" - keepalive_rps "c=$TUN_WRK_C" 1/s "$(tail -n 1 "$out")"
		return
	fi
	rec tunnels "$path" - keepalive_rps "c=$TUN_WRK_C" "$rps" 1/s \
		"wrk -t1 -c$TUN_WRK_C; latency $(awk '/^ *Latency/ { print $2 }' "$out") avg"
}

# tun_bulk PATH: one connection downloads TUN_BULK_MB MiB (curl); for the
# tunnel also the agents' CPU seconds per GB.
tun_bulk() {
	local path=$1 out=$TMP/curl-$1.out c0 c1 bytes bps hz pids

	step "tunnels $path: bulk download, ${TUN_BULK_MB} MiB x${TUN_BULK_N:-3}, 1 connection (curl)"
	hz=$(getconf CLK_TCK)
	pids=$(tun_hop_pids "$path")
	# shellcheck disable=SC2086
	c0=$(proc_cpu $pids)
	: >"$out"
	for _ in $(seq "${TUN_BULK_N:-3}"); do
		nsx "$HB" curl -fsS --max-time 120 -o /dev/null -w '%{size_download} %{speed_download}\n' \
			"http://$(tun_ep "$path")/big" >>"$out" 2>&1
	done
	# shellcheck disable=SC2086
	c1=$(proc_cpu $pids)
	bytes=$(awk 'NF == 2 { s += $1 } END { printf "%.0f", s }' "$out")
	bps=$(awk 'NF == 2 && $2 > b { b = $2 } END { if (b) printf "%.4f", b * 8 / 1e9 }' "$out")
	if [ -z "$bps" ] || [ "$bytes" -lt $((TUN_BULK_MB << 20)) ]; then
		na tunnels "$path" - bulk_gbps "1 conn" Gbit/s "$(tail -n 1 "$out")"
		return
	fi
	rec tunnels "$path" - bulk_gbps "1 conn" "$bps" Gbit/s \
		"best of ${TUN_BULK_N:-3} curl downloads of $TUN_BULK_MB MiB: $(awk 'NF == 2 { printf "%.2f ", $2 * 8 / 1e9 }' "$out")Gbit/s"
	[ -n "$pids" ] && rec tunnels "$path" - hop_cpu_s_per_gb "1 conn" \
		"$(awk -v t="$((c1 - c0))" -v hz="$hz" -v b="$bytes" 'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')" \
		s/GB "utime+stime (/proc/PID/stat) of the processes of both hops / bytes downloaded"
}

# tun_ttfb PATH [LABEL]: connect-to-first-byte (curl time_starttransfer),
# TUN_TTFB_N new connections one after the other.
tun_ttfb() {
	local path=$1 label=${2:-$1} out=$TMP/ttfb-$1.out line

	step "tunnels $label: connect-to-first-byte, $TUN_TTFB_N connections (curl)"
	for _ in $(seq "$TUN_TTFB_N"); do
		nsx "$HB" curl -fsS --max-time 10 -o /dev/null -w '%{time_starttransfer}\n' \
			"http://$(tun_ep "$path")/small" 2>/dev/null || echo fail
		# pooled tunnels are refilled in the background: a client every 20 ms
		sleep 0.02
	done >"$out"
	line=$(grep -v fail "$out" | sort -n | awk '{ v[NR] = $1 * 1000 } END {
		if (NR) printf "%.3f %.3f %d", v[int((NR + 1) * 0.5)], v[(int(NR * 0.99) > 0 ? int(NR * 0.99) : 1)], NR }')
	if [ -z "$line" ]; then
		na tunnels "$label" - ttfb_p50_ms curl ms "every curl failed"
		return
	fi
	# shellcheck disable=SC2086
	set -- $line
	rec tunnels "$label" - ttfb_p50_ms curl "$1" ms "$3 of $TUN_TTFB_N samples ($(grep -c fail "$out") failed)"
	rec tunnels "$label" - ttfb_p99_ms curl "$2" ms ""
}

# tun_redis PATH: redis-benchmark -q (ping, set, get) requests/s.
tun_redis() {
	local path=$1 out=$TMP/redis-$1.out ep t

	step "tunnels $path: redis-benchmark -n $TUN_REDIS_N -t ping,set,get"
	case "$path" in
	portfwd) ep=$NATA4:6379 ;;
	tunnel) ep=127.0.0.1:18084 ;;
	haproxy2) ep=127.0.0.1:18091 ;;
	ssh-r) ep=$PUB4:9379 ;;
	esac
	nsx "$HB" timeout 120 redis-benchmark -q -h "${ep%:*}" -p "${ep#*:}" -n "$TUN_REDIS_N" \
		-t ping,set,get >"$out" 2>&1
	for t in PING_INLINE PING_MBULK SET GET; do
		line=$(tr '\r' '\n' <"$out" | grep "^$t: " | tail -n 1)
		[ -n "$line" ] || continue
		rec tunnels "$path" - "redis_${t,,}_rps" "n=$TUN_REDIS_N" \
			"$(sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' <<<"$line")" 1/s "redis-benchmark -c50 (default)"
	done
	grep -q 'requests per second' "$out" ||
		na tunnels "$path" - redis_get_rps "n=$TUN_REDIS_N" 1/s "$(tr '\r' '\n' <"$out" | grep . | tail -n 1)"
}

# bed_tunnels: the bed, then every figure for each path in turn.
bed_tunnels() {
	local path redis=0 rsub=""

	command -v redis-server >/dev/null && [ "${TUN_REDIS_N:-0}" != 0 ] && redis=1
	topo_nat
	nsx "$NATA" nft -f - <<-NFT
	table ip pf {
		chain pre {
			type nat hook prerouting priority dstnat; policy accept;
			iifname "eth0" tcp dport { 6379, 8080-8082 } dnat to $HA4
		}
	}
	NFT
	# new connections per second through one pair of agents: more than one
	# agent's limits allow by default (README, Limits)
	NAS_EXPOSE='[8080]' start_broker "tunnel-rate: 0
max-sessions-per-agent: 0
max-splices-per-pair: 0
msg-rate: 0
public-max-conns: 100000"
	start_sys_relay xdp --broker-fingerprint "$BROKER_FP" --public-ports 8080 \
		--public-syn-rate 100000
	tun_nginx
	tun_haproxy
	if [ "$redis" = 1 ]; then
		bg "$HA" "$TMP/redis.log" redis-server --port 6379 --bind 0.0.0.0 --protected-mode no \
			--save '' --appendonly no --dir "$TMP"
		wait_until 10 nsx "$HA" sh -c "ss -ltn | grep -q ':6379 '" || fail "redis-server does not listen"
		rsub="
  - { service: home-nas/redis, listen: 127.0.0.1:18084, proto: tcp }"
	fi
	tun_sshd
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp, expose: { port: 8080 } }
  - { name: redis, target: 127.0.0.1:6379, proto: tcp }'
	PROV_PID=$AGENT_PID
	wait_for_line "$AGENT_LOG" "web: public at $SRELAY4:8080" 20 "$AGENT_PID" ||
		fail "the public port did not open"
	# the same service a second time without a pool, for connect-to-first-byte
	local nopool="  - { service: home-nas/web, listen: 127.0.0.1:18083, proto: tcp, pool: 0 }"
	grep -q '"pool"' "$TOP/agent/agent_config.c" 2>/dev/null || nopool=
	start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp }
$nopool$rsub"
	SUB_PID=$AGENT_PID
	wait_until 20 nsx "$HB" sh -c "ss -ltn | grep -q 127.0.0.1:18080" || fail "subscriber does not listen"
	mark_infra
	for path in $TUN_PATHS; do tun_conns "$path"; done
	for path in $TUN_PATHS; do tun_keepalive "$path"; done
	for path in $TUN_PATHS; do tun_bulk "$path"; done
	for path in $TUN_PATHS; do tun_ttfb "$path"; done
	if [ -n "$nopool" ]; then
		tun_ttfb tunnel-nopool
	else
		step "tunnels: no per-subscription pool key in this build"
	fi
	if [ "$redis" = 1 ]; then
		for path in $TUN_PATHS; do tun_redis "$path"; done
	fi
	echo "--- relay splices"
	nsc splice list | tail -n 5 || true
}
