#!/usr/bin/env bash
# Public ports (issue 14): a service behind NAT on a port of the relay's
# address, for clients with no agent. The whole system (sys.sh): home-nas
# (HA, behind NAT A) publishes a web server with `expose: { port: 8080 }`;
# the broker lets it (its expose ACL) and has the relay open 203.0.113.20:8080;
# curl on PUB, a public host with no agent, downloads from there. The relay
# holds each client's SYN until home-nas, told by the broker, connects to a
# relay port of its own, and splices the two (XDP, TC) or copies (userspace).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

PUBLIC_URL=http://$SRELAY4:8080/

# public_bed MODE [BROKER YAML] [RELAY ARGS...]: the bed above, a 4 MiB
# random file; returns once home-nas says its public port is open.
public_bed() {
	local mode=$1 yaml=${2:-}

	shift 2 2>/dev/null || shift $#
	need_system
	topo_nat
	NAS_EXPOSE='[8080, 2222, "8100-8199"]' start_broker "public-connect-timeout: 5
$yaml"
	start_sys_relay "$mode" --broker-fingerprint "$BROKER_FP" --public-ports 8000-8199 \
		--public-ports 2222 --metrics 127.0.0.1:9781 "$@"
	random_file "$TMP/web.bin" $((4 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp, expose: { port: 8080 } }'
	NAS_LOG=$AGENT_LOG
	wait_for_line "$NAS_LOG" "web: public at $SRELAY4:8080" 20 "$AGENT_PID" ||
		fail "the public port did not open: $(grep -E 'public|web' "$NAS_LOG" | tail -n 3)"
}

# public_get OUT: curl from the public host; its exit status.
public_get() {
	nsx "$PUB" curl -fsS --max-time 60 -o "$1" "$PUBLIC_URL"
}

# t_download MODE: one client, then the broker's record of it.
t_download() {
	public_bed "$1"
	public_get "$TMP/got.bin" || fail "curl through the public port failed (exit $?)"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
	wait_until 10 eval '[ "$(broker_api /api/v1/sessions |
		jq "[.[] | select(.kind == \"public\")] | length")" -ge 1 ]' ||
		fail "no public session in the broker's record: $(broker_api /api/v1/sessions)"
	broker_api /api/v1/sessions | jq -e --arg c "$PUB4" \
		'[.[] | select(.kind == "public") | .client | startswith($c)] | any' >/dev/null ||
		fail "the public session does not name the client $PUB4: $(broker_api /api/v1/sessions)"
	broker_api /metrics | grep -E '^natsplice_broker_public_sessions_total [1-9]' >/dev/null ||
		fail "natsplice_broker_public_sessions_total did not count it"
}

# t_first_data: 20 clients one after the other, each sends its request
# right behind its handshake. None of it reaches the relay before the
# client's splice is installed: the request waits for the window the
# provider opens (relay_send.c), instead of being punted, lost and sent
# again a retransmission timeout later.
t_first_data() {
	local i

	for i in $(seq 20); do
		public_get "$TMP/got.bin" || fail "client $i: curl exit $?"
	done
	[ "$(relay_metric natsplice_relay_public_early_data_total)" = 0 ] ||
		fail "$(relay_metric natsplice_relay_public_early_data_total) segments of clients' data reached the relay before their splice"
}

test_xdp_download() { t_download xdp; t_first_data; }
test_tc_download() { t_download tc; t_first_data; }
test_userspace_download() { t_download userspace; }

# ssh from the public host, with no agent, to sshd behind NAT A through the
# public port 2222 (TC mode): a login, a command, and 4 MiB through the
# session, byte for byte.
test_tc_ssh() {
	need ssh ssh-keygen
	[ -x /usr/sbin/sshd ] || skip "needs /usr/sbin/sshd (openssh-server)"
	public_bed tc
	sshd_start "$HA" 127.0.0.1
	stop_agent_named home-nas
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: ssh, target: 127.0.0.1:22, expose: { port: 2222 } }'
	wait_for_line "$AGENT_LOG" "ssh: public at $SRELAY4:2222" 20 "$AGENT_PID" ||
		fail "the public port 2222 did not open"
	nsx "$PUB" ssh -p 2222 -i "$TMP/ssh/user" -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=20 \
		"root@$SRELAY4" "cat $TMP/web.bin" >"$TMP/ssh.got" 2>"$TMP/ssh.err" ||
		fail "ssh through the public port failed: $(tail -n 2 "$TMP/ssh.err")"
	cmp -s "$TMP/ssh.got" "$TMP/web.bin" || fail "what came through ssh differs"
}

# What the broker and the relay refuse: a port the agent's expose ACL does
# not list (PUBLISH refused, said in the agent's log); a client outside the
# allowed prefixes (its SYNs dropped); a client over max-conns (reset).
test_xdp_refusals() {
	local mal=${NSP}mal rc

	# (a finished connection counts until the relay forgets its splice:
	# close-grace after both FINs)
	public_bed xdp "" --close-grace 1
	ns_add "$mal"
	inet_host "$mal" mal 203.0.113.66
	stop_agent_named home-nas
	start_agent "$HA" home-nas nas-secret "publish:
  - { name: web, target: 127.0.0.1:8080, expose: { port: 8101, allow: [$PUB4/32], max-conns: 1 } }
  - { name: other, target: 127.0.0.1:8080, expose: { port: 9999 } }"
	wait_for_line "$AGENT_LOG" "web: public at $SRELAY4:8101" 20 "$AGENT_PID" ||
		fail "the public port 8101 did not open"
	wait_for_line "$AGENT_LOG" "publish other: .*may not expose port 9999" 20 "$AGENT_PID" ||
		fail "a port outside the ACL was not refused: $(grep other "$AGENT_LOG" | tail -n 2)"
	rc=0
	nsx "$mal" curl -sS --connect-timeout 3 -o /dev/null "http://$SRELAY4:8101/" 2>/dev/null || rc=$?
	[ "$rc" = 28 ] || fail "a client outside allow: curl exit $rc, not a timeout (28)"
	[ "$(relay_metric natsplice_relay_public_clients_total 'outcome="not_allowed"')" -ge 1 ] ||
		fail "the relay did not count the client outside allow"
	nsx "$PUB" curl -fsS --max-time 60 --limit-rate 400K -o "$TMP/slow.bin" \
		"http://$SRELAY4:8101/" &
	local slow=$!
	wait_until 10 eval '[ "$(broker_api /api/v1/public | jq ".[0].connections")" = 1 ]' ||
		fail "the first client is not counted: $(broker_api /api/v1/public)"
	rc=0
	nsx "$PUB" curl -sS --max-time 20 -o /dev/null "http://$SRELAY4:8101/" 2>/dev/null || rc=$?
	[ "$rc" = 7 ] || [ "$rc" = 56 ] || fail "a client over max-conns: curl exit $rc, not a reset"
	broker_api /metrics | grep -E '^natsplice_broker_public_refused_total\{reason="limit"\} [1-9]' \
		>/dev/null || fail "the broker did not count the refusal over max-conns"
	wait "$slow" || fail "the first client's download failed (curl exit $?)"
	cmp -s "$TMP/slow.bin" "$TMP/web.bin" || fail "the first client's download differs"
	wait_until 15 eval '[ "$(broker_api /api/v1/public | jq ".[0].connections")" = 0 ]' ||
		fail "the finished client still counts: $(broker_api /api/v1/public)"
	public_get_port 8101 "$TMP/got.bin" || fail "a client after the first one left: curl exit $?"
}

# public_get_port PORT OUT: curl from the public host to another public port.
public_get_port() {
	nsx "$PUB" curl -fsS --max-time 60 -o "$2" "http://$SRELAY4:$1/"
}

# 200 clients at once (XDP): each gets the whole file.
test_xdp_parallel_200() {
	public_bed xdp "max-splices-per-pair: 0
tunnel-rate: 0
max-sessions-per-agent: 0
public-max-conns: 1000"
	parallel_get 200 "$PUB" "$PUBLIC_URL"
}

# A provider that stops: new clients get an RST, not a hang. Hung (SIGSTOP:
# still logged in, never connects): at the relay's deadline (public-connect-
# timeout, 5 s). Gone (SIGTERM: logged out): at once.
test_xdp_provider_stopped() {
	local t0 t1 rc

	public_bed xdp
	kill -STOP "$AGENT_PID"
	t0=$(date +%s)
	rc=0
	nsx "$PUB" curl -sS --max-time 30 -o /dev/null "$PUBLIC_URL" 2>"$TMP/curl.err" || rc=$?
	t1=$(date +%s)
	kill -CONT "$AGENT_PID"
	[ "$rc" = 7 ] || [ "$rc" = 56 ] ||
		fail "a hung provider: curl exit $rc ($(cat "$TMP/curl.err")), not a reset"
	[ $((t1 - t0)) -le 20 ] || fail "a hung provider: the reset took $((t1 - t0)) s"
	grep -E "half-open deadline passed" "$RELAY_LOG" >/dev/null ||
		fail "the relay did not reset the client at its deadline"
	# back: it works again; and a client whose SYN the kernel sent again
	# (the provider held up past the first retransmission, 1 s) gets
	# through once the provider comes within the deadline
	public_get "$TMP/got.bin" || fail "after SIGCONT: curl exit $?"
	kill -STOP "$AGENT_PID"
	local r0
	r0=$(nsx "$PUB" nstat -az TcpExtTCPSynRetrans | awk '/TCPSynRetrans/ { print $2 }')
	nsx "$PUB" curl -fsS --max-time 30 -o "$TMP/late.bin" "$PUBLIC_URL" 2>"$TMP/curl.err" &
	local late=$!
	wait_until 10 eval '[ "$(nsx "$PUB" nstat -az TcpExtTCPSynRetrans |
		awk "/TCPSynRetrans/ { print \$2 }")" -gt "$r0" ]' || {
		kill -CONT "$AGENT_PID"
		fail "the client never sent its SYN again"
	}
	kill -CONT "$AGENT_PID"
	wait "$late" || fail "a client that sent its SYN again: curl exit $? ($(cat "$TMP/curl.err"))"
	cmp -s "$TMP/late.bin" "$TMP/web.bin" || fail "the late client's download differs"
	stop_agent_named home-nas
	t0=$(date +%s)
	rc=0
	nsx "$PUB" curl -sS --max-time 30 -o /dev/null "$PUBLIC_URL" 2>"$TMP/curl.err" || rc=$?
	t1=$(date +%s)
	[ "$rc" = 7 ] || [ "$rc" = 56 ] ||
		fail "a provider gone: curl exit $rc ($(cat "$TMP/curl.err")), not a reset"
	[ $((t1 - t0)) -le 10 ] || fail "a provider gone: the reset took $((t1 - t0)) s"
}

# pp_nginx [NS]: nginx on HA (as root, its files under $TMP): 127.0.0.1:8081 takes
# the PROXY protocol (v1 or v2) and logs who it says the client is;
# 127.0.0.1:8082 does not. Both serve $TMP/www/f (1 MiB).
pp_nginx() {
	mkdir -p "$TMP/www"
	random_file "$TMP/www/f" $((1 << 20))
	nginx_start "${1:-$HA}" 8082 \
		"log_format pp '\$proxy_protocol_addr \$proxy_protocol_port \$remote_addr \$status';" \
		"server { listen 127.0.0.1:8081 proxy_protocol; access_log $TMP/pp.log pp; root $TMP/www; }" \
		"server { listen 127.0.0.1:8082; access_log $TMP/plain.log pp; root $TMP/www; }"
}

# pp_get NS URL WHO: download f from URL in NS; nginx's last line in
# pp.log must name WHO as the client.
pp_get() {
	PP_WHO=$3
	nsx "$1" curl -fsS --max-time 30 -o "$TMP/f.got" "$2/f" || fail "curl $2 in $1: exit $?"
	cmp -s "$TMP/f.got" "$TMP/www/f" || fail "$2: the download differs"
	wait_until 10 eval '[ "$(tail -n 1 "$TMP/pp.log" 2>/dev/null | cut -d" " -f1)" = "$PP_WHO" ]' ||
		fail "$2: nginx logged the client as '$(tail -n 1 "$TMP/pp.log" 2>/dev/null)', not $3"
}

# The real client's address reaches the server (nginx with proxy_protocol):
# a public port's client (v1), a subscriber agent's client on the relay path,
# pooled (v2) and not (v1), and a service without it still plain.
test_xdp_proxy_protocol() {
	need nginx
	need_system
	topo_nat
	NAS_EXPOSE='[8100]' start_broker
	start_sys_relay xdp --broker-fingerprint "$BROKER_FP" --public-ports 8100
	pp_nginx
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: pp1, target: 127.0.0.1:8081, expose: { port: 8100 }, proxy-protocol: v1 }
  - { name: pp2, target: 127.0.0.1:8081, proxy-protocol: v2 }
  - { name: plain, target: 127.0.0.1:8082 }'
	wait_for_line "$AGENT_LOG" "pp1: public at $SRELAY4:8100" 20 "$AGENT_PID" ||
		fail "the public port did not open"
	start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: home-nas/pp2, listen: $HB4:18081 }
  - { service: home-nas/pp1, listen: $HB4:18083, pool: 0 }
  - { service: home-nas/plain, listen: 127.0.0.1:18082 }"
	wait_until 20 nsx "$HB" sh -c "ss -ltn | grep -q $HB4:18081" || fail "laptop does not listen"
	pp_get "$PUB" "http://$SRELAY4:8100" "$PUB4"
	pp_get "$HB" "http://$HB4:18081" "$HB4"
	pp_get "$HB" "http://$HB4:18083" "$HB4"
	nsx "$HB" curl -fsS --max-time 30 -o "$TMP/f.got" http://127.0.0.1:18082/f ||
		fail "the service without the PROXY protocol: curl exit $?"
	cmp -s "$TMP/f.got" "$TMP/www/f" || fail "the plain service's download differs"
	[ "$(broker_api /api/v1/sessions | jq '[.[] | select(.path == "relay")] | length')" -ge 3 ] ||
		fail "the subscriber's downloads did not take the relay path"
}

# The same on the direct path (the provider, public, accepts the subscriber's
# tunnel itself: no relay), v2, pooled: nginx logs the subscriber's client.
test_direct_proxy_protocol() {
	need nginx
	need_system
	topo_nat
	start_broker
	pp_nginx "$PUB"
	start_agent "$PUB" pub pub-secret 'tunnel-listen: 0.0.0.0:7701
publish:
  - { name: pp, target: 127.0.0.1:8081, proxy-protocol: v2 }'
	start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: pub/pp, listen: $HB4:18081 }"
	wait_until 20 nsx "$HB" sh -c "ss -ltn | grep -q $HB4:18081" || fail "laptop does not listen"
	pp_get "$HB" "http://$HB4:18081" "$HB4"
	[ "$(last_session_path)" = direct ] || fail "the path is $(last_session_path), not direct"
}

# relay_metric NAME [LABELS]: the relay's value of a metric (summed).
relay_metric() {
	nsx "$RELAY" curl -fsS "http://127.0.0.1:9781/metrics" |
		awk -v m="$1" -v l="${2:-}" '($1 == m || index($1, m "{") == 1) &&
			(l == "" || index($1, l)) {
			n += $2 } END { print n + 0 }'
}

# A flood of forged SYNs (20000, from 131072 addresses) at the public port
# while laptop downloads home-nas's web server through the relay (another
# service's splice) and a new public client connects: the download is
# whole, the client gets through (challenged, it proves its address), the
# relay holds no more than public-half-open and its memory stays put.
test_xdp_syn_flood() {
	local mal=${NSP}mal dl rss0 rss1 held max=0 i

	need python3
	public_bed xdp "" --public-half-open 64 --public-syn-rate 20
	ns_add "$mal"
	inet_host "$mal" mal 203.0.113.66
	random_file "$TMP/big.bin" $((32 << 20))
	web_server "$HA" 8090 "$TMP/big.bin"
	stop_agent_named home-nas
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp, expose: { port: 8080 } }
  - { name: big, target: 127.0.0.1:8090, proto: tcp }'
	wait_for_line "$AGENT_LOG" "web: public at $SRELAY4:8080" 20 "$AGENT_PID" ||
		fail "the public port did not open again"
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/big, listen: 127.0.0.1:18090, proto: tcp, pool: 0 }'
	rss0=$(ps -o rss= -p "$RELAY_PID")
	nsx "$HB" curl -fsS --max-time 120 --limit-rate 4M -o "$TMP/big.got" \
		http://127.0.0.1:18090/ &
	dl=$!
	nsx "$mal" python3 "$TOP/test/tools/nsforge.py" 0.0.0.0 0 "$SRELAY4" 8080 2 \
		--count 20000 --spread 198.18.0.0/15 &
	local flood=$!
	for i in $(seq 20); do
		held=$(relay_metric natsplice_relay_public_held)
		[ "$held" -le "$max" ] || max=$held
		[ "$(relay_metric natsplice_relay_public_challenges_total 'outcome="sent"')" -lt 1000 ] ||
			break
		sleep 0.2
	done
	public_get "$TMP/got.bin" || fail "a new public client during the flood: curl exit $?"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the public client's download differs"
	wait "$flood"
	held=$(relay_metric natsplice_relay_public_held)
	[ "$held" -le "$max" ] || max=$held
	wait "$dl" || fail "the download through the other service failed (curl exit $?)"
	cmp -s "$TMP/big.got" "$TMP/big.bin" || fail "the other service's download differs"
	rss1=$(ps -o rss= -p "$RELAY_PID")
	echo "flood: $(relay_metric natsplice_relay_public_challenges_total 'outcome="sent"') challenged, $(relay_metric natsplice_relay_public_challenges_total 'outcome="answered"') answered, $(relay_metric natsplice_relay_public_clients_total 'outcome="held"') held in all, at most $max at once; relay RSS $rss0 -> $rss1 KiB"
	[ "$max" -le 64 ] || fail "the relay held $max SYNs (public-half-open 64)"
	[ "$(relay_metric natsplice_relay_public_challenges_total 'outcome="answered"')" -ge 1 ] ||
		fail "the public client was never challenged: the flood did not exhaust the rate"
	[ $((rss1 - rss0)) -lt 8192 ] || fail "the relay grew by $((rss1 - rss0)) KiB in the flood"
}

run_tests
