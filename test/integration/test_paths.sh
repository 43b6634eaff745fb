#!/bin/bash
# The best path every time (issue 16): NAT behaviour discovery classifies
# each NAT as configured, and a download through every pair of NAT types
# takes the best path the pair allows (direct, reverse, punched, relay),
# with matching sha256; a session that began on a relay punches its next
# connection; a punch that cannot work falls back to a relay; UDP punches
# where one side is a full cone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"
. "$(dirname "$0")/nat_types.sh"

BROKER2=203.0.113.11	# the broker's discovery-address
PUB2_4=203.0.113.51	# a second public host (side B's "public" type)
TYPES=${TYPES:-"public full-cone restricted-cone port-restricted-cone symmetric outbound-only"}

# paths_bed: the system with the broker on two addresses, a relay (TC), a
# web server on HA and on PUB, and a second public host PUB2. NATB is 20 ms
# away (each way): on a bridge with no delay at all two SYNs hardly ever
# cross between two NATs (see the README's troubleshooting).
paths_bed() {
	need_system
	[ -x "$NSDELAY" ] || skip "test/tools/nsdelay is not built"
	NATB_DELAY_MS=20 topo_nat
	ip -n "$BROKER" addr add "$BROKER2/24" dev eth0
	PUB2=${NSP}pub2
	ns_add "$PUB2"
	inet_host "$PUB2" pub2 "$PUB2_4"
	# (PATHS_DISC: how the broker gets its second address; default its own)
	start_broker "${PATHS_DISC:-discovery-address: $BROKER2}
${1:-}"
	start_sys_relay tc --broker-fingerprint "$BROKER_FP" ${PATHS_RELAY_ARGS:-}
	outbound_routes "$BROKER" "$RELAY" "$PUB" "$PUB2" "$NATA" "$NATB"
	random_file "$TMP/web.bin" $((2 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	web_server "$PUB" 8080 "$TMP/web.bin"
	bg "$HA" "$TMP/echo-ha.log" "$NSUDP" --echo --bind 127.0.0.1:9000 --idle 3600 --timeout 3600
	bg "$PUB" "$TMP/echo-pub.log" "$NSUDP" --echo --bind 127.0.0.1:9000 --idle 3600 --timeout 3600
}

# side_ns SIDE TYPE: where side A (provider) or B (subscriber) of TYPE runs.
side_ns() {
	case "$1/$2" in
	A/public) echo "$PUB" ;;
	B/public) echo "$PUB2" ;;
	A/*) echo "$HA" ;;
	B/*) echo "$HB" ;;
	esac
}

# set_nat SIDE TYPE: side A's (NATA) or B's (NATB) router behaves as TYPE
# (public: nothing to set, the host is on the Internet).
set_nat() {
	[ "$2" != public ] || return 0
	if [ "$1" = A ]; then
		nat_type "$NATA" "$HA" "$NATA4" "$HA4" "$2" "$OUTBOUND_HOST_A" "$OUTBOUND_NET_A"
	else
		nat_type "$NATB" "$HB" "$NATB4" "$HB4" "$2" "$OUTBOUND_HOST_B" "$OUTBOUND_NET_B"
	fi
}

# pair_agents TA TB [SUB_YAML_EXTRA]: provider home-nas (side A, type TA)
# publishing web (TCP) and echo (UDP), subscriber laptop (side B, type TB)
# on 127.0.0.1:18080 and 127.0.0.1:19000; both with tunnel-listen (reachable where their NAT lets it in). Waits for
# both agents' discovery. Sets NS_A, NS_B.
pair_agents() {
	NS_A=$(side_ns A "$1")
	NS_B=$(side_ns B "$2")
	stop_agent_named home-nas
	stop_agent_named laptop
	set_nat A "$1"
	set_nat B "$2"
	start_agent "$NS_A" home-nas nas-secret 'tunnel-listen: 0.0.0.0:7800
publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }
  - { name: echo, target: 127.0.0.1:9000, proto: udp }'
	start_agent "$NS_B" laptop laptop-secret "tunnel-listen: 0.0.0.0:7800
subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }
  - { service: home-nas/echo, listen: 127.0.0.1:19000, proto: udp }
${3:-}"
	wait_until 60 nat_known home-nas || fail "home-nas: no NAT discovery"
	wait_until 60 nat_known laptop || fail "laptop: no NAT discovery"
}

nat_known() {	# nat_known AGENT: the broker has its TCP and UDP discovery
	broker_api /api/v1/agents | jq -e --arg a "$1" \
		'.[] | select(.name == $a) | .nat_tcp != null and .nat_udp != null' >/dev/null
}

# found AGENT PROTO: "mapping=.. filtering=.. preserve=.." as the broker has it.
found() {
	broker_api /api/v1/agents | jq -r --arg a "$1" --arg p "nat_$2" '.[] |
		select(.name == $a) | .[$p] | if .blocked then "blocked" else
		"nat=\(if .nat then "yes" else "no" end) mapping=\(.mapping) " +
		"filtering=\(.filtering) preserve=\(if .port_preserved then "yes" else "no" end)"
		end'
}

# hairpin AGENT PROTO: yes or no, as the broker has it.
hairpin() {
	broker_api /api/v1/agents | jq -r --arg a "$1" --arg p "nat_$2" '.[] |
		select(.name == $a) | .[$p] | if .hairpin then "yes" else "no" end'
}

# expect_path TA TB: the best path for a provider behind TA and a
# subscriber behind TB: direct when the provider is reachable (public, or
# a full cone lets the broker's probe in), reverse when only the
# subscriber is, punched when both map endpoint-independently and keep
# ports, relay otherwise.
reachable() { [ "$1" = public ] || [ "$1" = full-cone ]; }
punchable() {
	case "$1" in public | symmetric) return 1 ;; esac
}
expect_path() {
	if reachable "$1"; then
		echo direct
	elif reachable "$2"; then
		echo reverse
	elif punchable "$1" && punchable "$2"; then
		echo punched
	else
		echo relay
	fi
}

# expect_udp_path TA TB: the same for a UDP service (where neither NAT
# filters by address only, both send at once: the 20 ms between the NATs
# leaves room for the moments the two datagrams leave).
expect_udp_path() {
	expect_path "$1" "$2"
}

download_path() {	# download_path: one download through laptop; prints its path
	http_get "$NS_B" http://127.0.0.1:18080/ "$TMP/got.bin" || fail "download failed"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
	broker_api /api/v1/sessions | jq -r 'last | .path'
}

exchange_path() {	# exchange_path: datagrams through laptop's echo; prints "path transport"
	local out

	out=$(nsx "$NS_B" "$NSUDP" --relay 127.0.0.1:19000 --send 200 --size 12-1400 \
		--window 16 --max-loss 1 --timeout 30 2>&1) || fail "datagrams: $out"
	broker_api /api/v1/sessions | jq -r 'last | "\(.path) \(.transport)"'
}

# Each NAT type, discovered from side A, TCP and UDP: a table of expected
# vs found.
test_discovery_types() {
	paths_bed
	classify $TYPES
}

# classify TYPE...: home-nas behind each TYPE (laptop behind a
# port-restricted cone): discovery finds what nat_type_expect and
# nat_type_hairpin say, TCP and UDP; a table of expected and found.
classify() {
	local t p want got bad=""

	printf '%-22s %-5s %-56s %s\n' TYPE PROTO EXPECTED FOUND
	for t in "$@"; do
		pair_agents "$t" port-restricted-cone
		want="$(nat_type_expect "$t") hairpin=$(nat_type_hairpin "$t")"
		for p in tcp udp; do
			got="$(found home-nas "$p") hairpin=$(hairpin home-nas "$p")"
			printf '%-22s %-5s %-56s %s\n' "$t" "$p" "$want" "$got"
			[ "$got" = "$want" ] || bad="$bad $t/$p"
		done
	done
	[ -z "$bad" ] || fail "discovery disagrees for:$bad"
}

# A broker with one address takes relay1's as the second (discovery-relay;
# the relay's discovery-port hands the broker what comes there): every
# type is classified as with the broker's own second address, TCP and UDP,
# and a session between two port-restricted cones punches.
test_discovery_via_relay() {
	local out types=${TYPES_VIA_RELAY:-"public full-cone restricted-cone symmetric outbound-only port-restricted-cone"}

	PATHS_DISC="discovery-relay: relay1" PATHS_RELAY_ARGS="--discovery-port 3490" paths_bed
	wait_until 10 eval 'broker_api /api/v1/relays | jq -e ".[0].discovery_port == 3490" >/dev/null' ||
		fail "relay1 has no discovery port: $(broker_api /api/v1/relays)"
	grep -q "relay relay1: NAT discovery's second address (203.0.113.20 port 3490)" "$BROKER_LOG" ||
		fail "the broker does not use relay1 for discovery"
	nsx "$BROKER" ss -ulnH | grep -q "$BROKER2:" && fail "the broker listens on its second address"
	classify $types
	[ "${types##* }" = port-restricted-cone ] ||
		pair_agents port-restricted-cone port-restricted-cone
	[ "$(download_path)" = punched ] || fail "port-restricted to port-restricted: not punched"
	[ "$(exchange_path)" = "punched udp" ] || fail "UDP: not punched"
	# the relay gone: discovery on demand says what it waits for
	kill "$RELAY_PID"
	wait_until 10 eval '[ "$(broker_api /api/v1/relays | jq length)" = 0 ]' ||
		fail "the broker still has relay1"
	! out=$(nsx "$BROKER" "$NATSPLICE" broker discover home-nas --url "http://$BROKER_HTTP" 2>&1) ||
		fail "discover without the discovery relay succeeded"
	grep -q "NAT discovery waits for its relay (discovery-relay) to log in" <<<"$out" ||
		fail "discover without the discovery relay: $out"
}

# A relay's discovery-port: what it refuses (natsplice relay run -n).
test_discovery_port_checks() {
	local out base="--dev lo --address 192.0.2.1 --broker 192.0.2.2 --name r --secret 0123456789abcdef --insecure"

	check_refused() {	# check_refused WANT ARGS...: exit 2 with WANT
		local want=$1

		shift
		! out=$("$NATSPLICE" relay run -n "$@" 2>&1) || fail "accepted: $*"
		grep -qF -- "$want" <<<"$out" || fail "$*: $out"
	}
	# shellcheck disable=SC2086
	check_refused "discovery-port 500: 1024 or above" $base --discovery-port 500
	# shellcheck disable=SC2086
	check_refused "discovery-port 20500-20502 overlaps the relay port range 20000-20999" \
		$base --discovery-port 20500
	# shellcheck disable=SC2086
	check_refused "echo-port 7701 is one of the discovery ports 7700-7702" $base --discovery-port 7700
	check_refused "discovery-port needs --broker" --dev lo --address 192.0.2.1 --discovery-port 3478
	# shellcheck disable=SC2086
	out=$("$NATSPLICE" relay run -n $base --discovery-port 3478 2>&1) ||
		fail "discovery-port 3478 refused: $out"
	grep -q "configuration OK" <<<"$out" || fail "discovery-port 3478: $out"
}

# paths_bed6: the bed on IPv6: HA and HB have public IPv6 addresses behind
# their routers, which firewall them as an IPv6 home router does (no NAT;
# only replies come in: outbound-only); the broker listens on IPv6 with a
# second IPv6 address for discovery (and BROKER_YAML's lines), and relay1
# logs in over IPv6 (unless PATHS6_NO_RELAY).
BROKER6=2001:db8::10 BROKER6_2=2001:db8::11 SRELAY6=2001:db8::20
paths_bed6() {	# paths_bed6 [BROKER_YAML]
	local side nat host ns

	need_system
	[ -x "$NSDELAY" ] || skip "test/tools/nsdelay is not built"
	NATB_DELAY_MS=20 topo_nat
	BROKER_AT="[$BROKER6]"
	ip -n "$BROKER" addr add "$BROKER6/64" dev eth0 nodad
	ip -n "$BROKER" addr add "$BROKER6_2/64" dev eth0 nodad
	ip -n "$RELAY" addr add "$SRELAY6/64" dev eth0 nodad
	for side in 1 2; do
		nat=$NATA host=$HA
		[ "$side" = 1 ] || nat=$NATB host=$HB
		ip -n "$nat" addr add "2001:db8::10$side/64" dev eth0 nodad
		ip -n "$nat" addr add "2001:db8:$side::1/64" dev lan0 nodad
		ip -n "$host" addr add "2001:db8:$side::2/64" dev eth0 nodad
		ip -n "$host" -6 route add default via "2001:db8:$side::1"
		nsx "$nat" sysctl -qw net.ipv6.conf.all.forwarding=1
		nsx "$nat" nft -f - <<-NFT
		table ip6 fw {
			chain forward { type filter hook forward priority filter; policy accept;
				iifname "eth0" ct state established,related accept
				iifname "eth0" drop; }
		}
		NFT
	done
	for side in 1 2; do
		for ns in "$BROKER" "$RELAY" "$NATA" "$NATB"; do
			[ "$ns" = "$([ "$side" = 1 ] && echo "$NATA" || echo "$NATB")" ] ||
				ip -n "$ns" -6 route add "2001:db8:$side::/64" via "2001:db8::10$side"
		done
	done
	start_broker "discovery-address: $BROKER6_2
${1:-}"
	[ -n "${PATHS6_NO_RELAY:-}" ] || start_sys_relay tc
	random_file "$TMP/web.bin" $((2 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	bg "$HA" "$TMP/echo-ha.log" "$NSUDP" --echo --bind 127.0.0.1:9000 --idle 3600 --timeout 3600
}

# IPv6 behind two outbound-only firewalls (what most IPv6 homes have):
# discovery over IPv6 classifies both (no NAT, filtering apd), and a TCP
# download and UDP datagrams take punched paths between the two public
# IPv6 addresses.
test_punch_ipv6() {
	local want got

	paths_bed6
	web_echo_agents
	want=$(nat_type_expect outbound-only)
	for a in home-nas laptop; do
		for p in tcp udp; do
			got=$(found "$a" "$p")
			echo "$a $p: $got"
			[ "$got" = "$want" ] || fail "$a $p: $got, not $want"
		done
	done
	broker_api /api/v1/agents | jq -e '.[] | select(.name == "home-nas") |
		.observed_address | startswith("[2001:db8:1::2]")' >/dev/null ||
		fail "home-nas not on IPv6: $(broker_api /api/v1/agents | jq -c '[.[] | .observed_address]')"
	[ "$(download_path)" = punched ] || fail "TCP over IPv6: not punched"
	[ "$(exchange_path)" = "punched udp" ] || fail "UDP over IPv6: not punched"
}

# An agent on a public IPv6 address relays, over IPv6, a session between
# two agents behind an outbound-only firewall (no punching, no other relay).
test_agent_relay_ipv6() {
	local rel

	NAS_RELAY=1 PATHS6_NO_RELAY=1 paths_bed6 "hole-punching: false"
	nsx "$NATA" nft flush table ip6 fw	# HA: reachable, a public IPv6 host
	start_agent "$HA" home-nas nas-secret "relay: true
relay-program: $NATSPLICE"
	wait_for_line "$TMP/agent-home-nas.log" "relay: relaying for others" 60 ||
		fail "home-nas does not relay: $(grep relay "$TMP/agent-home-nas.log")"
	wait_until 30 eval 'broker_api /api/v1/relays | jq -e ".[] | select(.name == \"home-nas\")" >/dev/null' ||
		fail "the broker has no relay home-nas: $(grep relay "$TMP/agent-home-nas.log")"
	rel=$(broker_api /api/v1/relays | jq -r '.[] | select(.name == "home-nas") | .relay_address')
	[ "$rel" = 2001:db8:1::2 ] || fail "home-nas relays at $rel"
	web_server "$HB" 8081 "$TMP/web.bin"
	start_agent "$HB" pub pub-secret 'publish:
  - { name: web, target: 127.0.0.1:8081, proto: tcp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: pub/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }'
	NS_B=$HB
	[ "$(download_path)" = relay ] || fail "not relayed"
	[ "$(broker_api /api/v1/sessions | jq -r 'last | .relay')" = home-nas ] ||
		fail "relayed by $(broker_api /api/v1/sessions | jq -r 'last | .relay')"
}

# NAT discovery on demand: side A's router starts letting everything in
# (a port-restricted cone becomes a full cone) under a logged-in agent;
# `natsplice broker discover` tests it again and prints the new result,
# which the API has too; bad requests get clear answers.
test_discover_on_demand() {
	local out code before

	paths_bed
	pair_agents port-restricted-cone port-restricted-cone
	[ "$(found home-nas udp)" = "$(nat_type_expect port-restricted-cone)" ] ||
		fail "home-nas before: $(found home-nas udp)"
	before=$(broker_api /api/v1/agents | jq -r '.[] | select(.name == "home-nas") | .nat_tested')
	[ "$before" != null ] || fail "no nat_tested after the first discovery"
	# (added, not replaced: the rules' flush would cut the agent's connection)
	nsx "$NATA" nft add chain ip nat inbound '{ type nat hook prerouting priority dstnat; }'
	nsx "$NATA" nft add rule ip nat inbound iifname eth0 ip daddr "$NATA4" dnat to "$HA4"
	sleep 1	# nat_tested has seconds: the next one differs
	out=$(nsx "$BROKER" "$NATSPLICE" broker discover home-nas --url "http://$BROKER_HTTP") ||
		fail "broker discover failed: $out"
	echo "$out"
	grep -qE '^tcp +false +true +ei +ei +true ' <<<"$out" || fail "tcp: not a full cone now"
	grep -qE '^udp +false +true +ei +ei +true ' <<<"$out" || fail "udp: not a full cone now"
	for p in tcp udp; do
		[ "$(found home-nas $p)" = "$(nat_type_expect full-cone)" ] ||
			fail "the API has for $p: $(found home-nas $p)"
	done
	out=$(broker_api /api/v1/agents | jq -c '.[] | select(.name == "home-nas") |
		{nat_tested, nat_testing}')
	jq -e --arg b "$before" '.nat_tested != $b and .nat_testing == false' <<<"$out" \
		>/dev/null || fail "nat_tested/nat_testing: $out (before: $before)"
	grep -q "agent home-nas: NAT discovery asked for again" "$BROKER_LOG" ||
		fail "the broker did not log the request"
	# -j: the rows as JSON
	nsx "$BROKER" "$NATSPLICE" -j broker discover laptop --url "http://$BROKER_HTTP" |
		jq -e 'length == 2 and .[0].proto == "tcp" and .[1].filtering == "apd"' \
		>/dev/null || fail "-j broker discover laptop: not the rows"
	# a second request while the first runs: 409
	post() { nsx "$BROKER" curl -s -o /dev/null -w '%{http_code}' -X POST \
		"http://$BROKER_HTTP/api/v1/agents/$1/discover"; }
	code="$(post home-nas) $(post home-nas)"
	[ "$code" = "202 409" ] || fail "two POSTs at once answered $code, not 202 409"
	[ "$(post nobody)" = 404 ] || fail "an unknown agent: not 404"
	code=$(nsx "$BROKER" curl -s -o /dev/null -w '%{http_code}' \
		"http://$BROKER_HTTP/api/v1/agents/home-nas/discover")
	[ "$code" = 405 ] || fail "GET .../discover answered $code, not 405"
	code=$(nsx "$BROKER" curl -s -o /dev/null -w '%{http_code}' -X POST \
		"http://$BROKER_HTTP/api/v1/agents")
	[ "$code" = 405 ] || fail "POST /api/v1/agents answered $code, not 405"
	! out=$(nsx "$BROKER" "$NATSPLICE" broker discover nobody --url "http://$BROKER_HTTP" 2>&1) ||
		fail "discover nobody succeeded"
	grep -q "no agent of that name is logged in" <<<"$out" || fail "discover nobody: $out"
	! out=$(nsx "$BROKER" "$NATSPLICE" broker discover 2>&1) || fail "discover without AGENT succeeded"
	grep -q "which agent" <<<"$out" || fail "discover without AGENT: $out"
}

# Every pair of NAT types: the path the pair allows for a TCP download and
# for UDP datagrams, both checked end to end.
test_path_matrix() {
	local ta tb want got uwant ugot bad="" n=0

	paths_bed
	printf '%-22s %-22s %-8s %-8s %-12s %s\n' PROVIDER SUBSCRIBER "TCP WANT" GOT \
		"UDP WANT" GOT
	for ta in $TYPES; do
		for tb in $TYPES; do
			pair_agents "$ta" "$tb"
			want=$(expect_path "$ta" "$tb")
			got=$(download_path)
			uwant="$(expect_udp_path "$ta" "$tb") udp"
			ugot=$(exchange_path)
			printf '%-22s %-22s %-8s %-8s %-12s %s\n' "$ta" "$tb" "$want" "$got" \
				"$uwant" "$ugot"
			[ "$got" = "$want" ] || bad="$bad $ta+$tb:$got"
			[ "$ugot" = "$uwant" ] || bad="$bad $ta+$tb/udp:$ugot"
			n=$((n + 1))
		done
	done
	echo "$n pairs"
	[ -z "$bad" ] || fail "wrong paths:$bad"
}

# A session that starts on the relay (before discovery finished) takes the
# punched path for its next connection; the first connection stays on the
# relay meanwhile.
test_relay_then_punched() {
	local first

	paths_bed
	set_nat A port-restricted-cone
	set_nat B port-restricted-cone
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }'
	NS_B=$HB
	# a slow client holds its connection while discovery runs
	nsx "$HB" curl -fsS --limit-rate 200k -o "$TMP/slow.bin" http://127.0.0.1:18080/ &
	local slow=$!
	wait_until 10 eval '[ "$(broker_api /api/v1/sessions | jq length)" -ge 1 ]' ||
		fail "no session for the first connection"
	first=$(broker_api /api/v1/sessions | jq -r 'first | .path')
	[ "$first" = relay ] || fail "the first connection went $first (discovery done already?)"
	wait_until 60 nat_known home-nas || fail "home-nas: no NAT discovery"
	wait_until 60 nat_known laptop || fail "laptop: no NAT discovery"
	[ "$(download_path)" = punched ] || fail "the next connection did not punch"
	wait "$slow" || fail "the first (relayed) download broke"
	cmp -s "$TMP/slow.bin" "$TMP/web.bin" || fail "the first download differs"
}

# A punch that cannot get through (side B's NAT drops side A's SYNs): the
# subscriber asks again without punching and the download goes through the
# relay; the broker counts the failure.
test_punch_fails_over() {
	paths_bed 'punch-timeout: 2'
	pair_agents port-restricted-cone port-restricted-cone
	nsx "$NATB" nft add table ip block
	nsx "$NATB" nft add chain ip block pre '{ type filter hook prerouting priority -300; }'
	nsx "$NATB" nft add rule ip block pre ip saddr "$NATA4" tcp flags syn drop
	[ "$(download_path)" = relay ] || fail "not through the relay after the punch failed"
	broker_api /metrics | grep -q '^natsplice_broker_punch_failed_total [1-9]' ||
		fail "the failed punch was not counted"
	grep -q "punched path not up" "$TMP/agent-laptop.log" ||
		fail "the subscriber did not log the failed punch"
	# for a while the pair is not punched again: straight to the relay
	[ "$(download_path)" = relay ] || fail "punched again right after a failure"
}

# UDP punches where one side is a full cone: datagrams stay datagrams.
test_udp_punched() {
	local out

	paths_bed
	set_nat A full-cone
	set_nat B port-restricted-cone
	bg "$HA" "$TMP/echo.log" "$NSUDP" --echo --bind 127.0.0.1:9000 --idle 600 --timeout 600
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: echo, target: 127.0.0.1:9000, proto: udp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/echo, listen: 127.0.0.1:19000, proto: udp }'
	wait_until 60 nat_known home-nas || fail "home-nas: no NAT discovery"
	wait_until 60 nat_known laptop || fail "laptop: no NAT discovery"
	out=$(nsx "$HB" "$NSUDP" --relay 127.0.0.1:19000 --send 2000 --size 12-1400 \
		--window 32 --max-loss 1 --timeout 30 2>&1) || fail "datagrams: $out"
	echo "$out"
	[ "$(broker_api /api/v1/sessions | jq -r 'last | "\(.path) \(.transport)"')" = \
		"punched udp" ] || fail "not punched: $(broker_api /api/v1/sessions | jq -c last)"
}

# agent_relay_bed [HOME_NAS_YAML]: NATA a full cone with home-nas on HA
# relaying for others (relay: true, plus HOME_NAS_YAML), no other relay;
# pub (HC behind NATC) publishes a web server (web.bin, WEB_MB MiB,
# default 2) that laptop (HB) subscribes to on 127.0.0.1:18080.
agent_relay_bed() {
	local rels

	need_system
	topo_nat
	NATC=${NSP}natc HC=${NSP}hc
	nat_router "$NATC" "$HC" 203.0.113.103 10.0.3
	ip -n "$BROKER" addr add "$BROKER2/24" dev eth0
	NAS_RELAY=1 start_broker "discovery-address: $BROKER2
hole-punching: false"
	nat_type "$NATA" "$HA" "$NATA4" "$HA4" full-cone
	random_file "$TMP/web.bin" $((${WEB_MB:-2} << 20))
	web_server "$HC" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret "relay: true
relay-program: $NATSPLICE
${1:-}"
	wait_for_line "$TMP/agent-home-nas.log" "relay: relaying for others" 60 ||
		fail "home-nas does not relay: $(grep relay "$TMP/agent-home-nas.log")"
	wait_until 30 eval 'broker_api /api/v1/relays | jq -e ".[] | select(.name == \"home-nas\")" >/dev/null' ||
		fail "the broker has no relay home-nas: $(broker_api /api/v1/relays)"
	rels=$(broker_api /api/v1/relays | jq -c '[.[] | {name, relay_address}]')
	echo "relays: $rels"
	[ "$(broker_api /api/v1/relays | jq -r '.[] | select(.name == "home-nas") | .relay_address')" = "$NATA4" ] ||
		fail "the agent's relay does not give the NAT's public address: $rels"
	start_agent "$HC" pub pub-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: pub/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }'
	NS_B=$HB
}

# web_echo_agents: home-nas on HA publishing web (TCP) and echo (UDP),
# laptop on HB subscribing on 127.0.0.1:18080 and :19000, neither with
# tunnel-listen; waits for both agents' discovery. Sets NS_B.
web_echo_agents() {
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }
  - { name: echo, target: 127.0.0.1:9000, proto: udp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }
  - { service: home-nas/echo, listen: 127.0.0.1:19000, proto: udp }'
	NS_B=$HB
	wait_until 60 nat_known home-nas || fail "home-nas: no NAT discovery"
	wait_until 60 nat_known laptop || fail "laptop: no NAT discovery"
}

# A third host (PUB2) sends TCP SYNs and UDP datagrams to every port a
# punched path may use on a full cone's public address, over and over,
# while two sessions punch through it: neither is taken over or broken.
# (A punching socket connects to its peer's one endpoint: the kernel gives
# it nothing from anywhere else, and the end-to-end proof follows.)
test_punch_third_host() {
	local out stranger

	paths_bed
	set_nat A full-cone
	set_nat B port-restricted-cone
	web_echo_agents
	bg "$PUB2" "$TMP/stranger.log" python3 -c '
import socket, sys, time
dst = sys.argv[1]
n = 0
while True:
    for port in range(20000, 50000):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"NSstranger-punch-0123456789abcdef", (dst, port))
        u.close()
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setblocking(False)
        try:
            t.connect((dst, port))
        except OSError:
            pass
        t.close()
        n += 2
    print(n, flush=True)
' "$NATA4"
	stranger=$BG_PID
	wait_until 30 eval '[ -s "$TMP/stranger.log" ]' || fail "the stranger sends nothing"
	[ "$(download_path)" = punched ] || fail "TCP not punched with a stranger at the ports"
	out=$(exchange_path)
	[ "$out" = "punched udp" ] || fail "UDP not punched with a stranger at the ports: $out"
	kill "$stranger" 2>/dev/null || true
	echo "the stranger sent $(tail -n 1 "$TMP/stranger.log") segments and datagrams"
}

# An agent behind a full cone relays a session between two other NATed
# agents (no other relay online); when it goes, the next session takes a
# relay that is there, and nothing else breaks.
test_agent_relays() {
	agent_relay_bed
	[ "$(download_path)" = relay ] || fail "not relayed"
	[ "$(broker_api /api/v1/sessions | jq -r 'last | .relay')" = home-nas ] ||
		fail "relayed by $(broker_api /api/v1/sessions | jq -r 'last | .relay')"
	# another relay comes; the relaying agent goes: nothing breaks, the
	# next session goes through the relay that is there
	start_sys_relay tc
	[ "$(nsx "$HA" "$NATSPLICE" -j dev show | jq length)" = 1 ] || fail "no programs on HA's eth0"
	stop_agent_named home-nas
	wait_until 30 eval '! broker_api /api/v1/relays | jq -e ".[] | select(.name == \"home-nas\")" >/dev/null' ||
		fail "the broker still lists relay home-nas"
	# a stopped agent takes its relay's programs off its host's device
	grep -q "relay: its programs taken off eth0" "$TMP/agent-home-nas.log" ||
		fail "home-nas did not detach: $(grep 'relay:' "$TMP/agent-home-nas.log")"
	[ "$(nsx "$HA" "$NATSPLICE" -j dev show | jq length)" = 0 ] ||
		fail "programs left on HA: $(nsx "$HA" "$NATSPLICE" dev show)"
	[ "$(download_path)" = relay ] || fail "not relayed after home-nas left"
	[ "$(broker_api /api/v1/sessions | jq -r 'last | .relay')" = relay1 ] ||
		fail "relayed by $(broker_api /api/v1/sessions | jq -r 'last | .relay')"
}

# A relaying agent that dies outright (SIGKILL) in the middle of a
# download through it: nothing crashes, no other session suffers, the
# broker forgets the relay, and the next session takes the relay that is
# there. The download under way either ends whole (the kernel splice
# outlives its daemon) or fails; it never arrives changed.
test_relay_agent_vanishes() {
	local slow pid rc=0

	WEB_MB=8 agent_relay_bed
	nsx "$HB" curl -fsS --max-time 120 --limit-rate 1M -o "$TMP/slow.bin" \
		http://127.0.0.1:18080/ &
	slow=$!
	wait_until 10 eval '[ "$(broker_api /api/v1/sessions | jq -r "last | .relay")" = home-nas ]' ||
		fail "the first download is not relayed by home-nas"
	wait_until 10 eval '[ "$(stat -c %s "$TMP/slow.bin" 2>/dev/null || echo 0)" -ge $((1 << 20)) ]' ||
		fail "the first download does not move"
	start_sys_relay tc
	pid=$(pgrep -f "$TMP/agent-home-nas.yaml" | head -n 1)
	[ -n "$pid" ] || fail "no agent home-nas"
	kill -KILL "$pid"
	wait_until 30 eval '! broker_api /api/v1/relays | jq -e ".[] | select(.name == \"home-nas\")" >/dev/null' ||
		fail "the broker still lists relay home-nas"
	wait_until 10 eval '! pgrep -f "relay run -f /tmp/natsplice-agent-relay" >/dev/null' ||
		fail "the relay child outlived its agent"
	[ "$(download_path)" = relay ] || fail "not relayed after home-nas died"
	[ "$(broker_api /api/v1/sessions | jq -r 'last | .relay')" = relay1 ] ||
		fail "relayed by $(broker_api /api/v1/sessions | jq -r 'last | .relay')"
	wait "$slow" || rc=$?
	if [ "$rc" = 0 ]; then
		cmp -s "$TMP/slow.bin" "$TMP/web.bin" || fail "the download under way arrived changed"
		echo "the download under way arrived whole"
	else
		echo "the download under way failed (curl $rc)"
	fi
	broker_api /api/v1/agents | jq -e '[.[] | .name] | index("laptop") and index("pub")' \
		>/dev/null || fail "an agent lost its broker: $(broker_api /api/v1/agents | jq -c '[.[].name]')"
	pgrep -f "$BROKER_CONF" >/dev/null || fail "the broker is gone"
}

# capped_download MBIT: a download through the agent's relay capped at MBIT
# Mbit/s arrives whole, no faster than the cap allows (its 64 KiB burst
# and a third for the clock's slack); prints the rate.
capped_download() {
	local cap=$1 t0 t1 ms mbit

	t0=$(date +%s%N)
	http_get "$HB" http://127.0.0.1:18080/ "$TMP/got.bin" || fail "download failed"
	t1=$(date +%s%N)
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
	[ "$(broker_api /api/v1/sessions | jq -r 'last | "\(.path) \(.relay)"')" = \
		"relay home-nas" ] || fail "not relayed by home-nas"
	ms=$(((t1 - t0) / 1000000))
	mbit=$(($(stat -c %s "$TMP/web.bin") * 8 / 1000 / (ms > 0 ? ms : 1)))
	echo "$(stat -c %s "$TMP/web.bin") bytes in $ms ms: $mbit Mbit/s (cap $cap)"
	[ "$mbit" -le $((cap * 4 / 3)) ] || fail "$mbit Mbit/s through a relay capped at $cap"
}

# relay-max-bandwidth caps what an agent relays for others: in the kernel
# (packets over the cap dropped, TCP slows down) ...
test_agent_relay_bandwidth() {
	WEB_MB=6 agent_relay_bed 'relay-max-bandwidth: 16'
	grep -q "max-bandwidth: 16 Mbit/s" "$TMP/agent-home-nas.log" ||
		fail "the relay did not take the cap: $(grep relay "$TMP/agent-home-nas.log")"
	capped_download 16
}

# ... and in userspace mode (the relay stops reading).
test_agent_relay_bandwidth_userspace() {
	WEB_MB=6 agent_relay_bed 'relay-max-bandwidth: 16
relay-mode: userspace'
	grep -q "max-bandwidth: 16 Mbit/s, over it the relay stops reading" \
		"$TMP/agent-home-nas.log" ||
		fail "the userspace relay did not take the cap: $(grep relay "$TMP/agent-home-nas.log")"
	capped_download 16
}

# A host whose NAT filters incoming connections does not relay, and says why.
test_agent_relay_refused() {
	need_system
	topo_nat
	ip -n "$BROKER" addr add "$BROKER2/24" dev eth0
	NAS_RELAY=1 start_broker "discovery-address: $BROKER2"
	start_agent "$HA" home-nas nas-secret "relay: true
relay-program: $NATSPLICE"
	wait_for_line "$TMP/agent-home-nas.log" "others cannot reach this host" 60 ||
		fail "no word on why it does not relay: $(grep -i relay "$TMP/agent-home-nas.log")"
	! grep -q "relaying for others" "$TMP/agent-home-nas.log" ||
		fail "it relays behind a filtering NAT"
	! broker_api /api/v1/relays | jq -e '.[] | select(.name == "home-nas")' >/dev/null ||
		fail "the broker lists relay home-nas"
}

run_tests
