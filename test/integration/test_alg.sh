#!/bin/bash
# ALGs (issue 11): FTP and SIP through natsplice between two NATs, with real
# servers and clients (vsftpd with curl and lftp; baresip and sipsak). The
# control connection goes through each agent's ALG, which rewrites the
# addresses in it and opens the data and media flows on the session.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"
. "$(dirname "$0")/apps.sh"

FTP_SIZE=$((50 << 20))

# provider PATH: where the provider (server and agent) lives. relay: on HA
# behind NATA, the broker picks the relay (TC); direct: on PUB, public,
# with tunnel-listen, so the subscriber connects straight to it. Sets PNS,
# PIP, PNAME, PSECRET and PEXTRA (its extra agent.yaml lines).
provider() {
	need_system
	topo_nat
	start_broker
	if [ "$1" = direct ]; then
		PNS=$PUB PIP=$PUB4 PNAME=pub PSECRET=pub-secret
		PEXTRA='tunnel-listen: 0.0.0.0:7701'
	else
		start_sys_relay "${2:-tc}"
		PNS=$HA PIP=$HA4 PNAME=home-nas PSECRET=nas-secret PEXTRA=
	fi
}

path_is() {
	[ "$(broker_api /api/v1/sessions | jq -r '[.[] | select(.parent == null)][0].path')" = "$1" ] ||
		fail "the session's path is not $1: $(broker_api /api/v1/sessions)"
}

# ftp_bed MODE: vsftpd on HA's LAN address (10.0.1.2:2121, passive
# 30000-30099) published with alg: ftp; the subscriber on HB listens on HB's
# LAN address (10.0.2.2:2121): the two address spaces differ, so a reply or
# command the ALGs did not rewrite sends the data connection nowhere.
ftp_bed() {
	provider "${2:-relay}" "${1:-tc}"
	mkdir -p "$TMP/ftproot"
	random_file "$TMP/ftproot/big.bin" "$FTP_SIZE"
	chmod 0644 "$TMP/ftproot/big.bin"
	ftp_server "$PNS" "$PIP" 2121 "$TMP/ftproot"
	start_agent "$PNS" "$PNAME" "$PSECRET" "$PEXTRA
publish:
  - { name: ftp, target: $PIP:2121, alg: ftp }"
	start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: $PNAME/ftp, listen: $HB4:2121, pool: 0${FTP_SUB_ALG-, alg: ftp} }"
	FTP_URL=ftp://$HB4:2121
}

# ftp_round_trip MODE: list, 50 MiB down and up with matching sha256, in MODE.
ftp_round_trip() {
	local mode=$1 sum

	sum=$(sha256sum <"$TMP/ftproot/big.bin")
	ftp_list "$HB" $FTP_URL/ "$mode" >"$TMP/list.$mode" ||
		fail "$mode: listing failed: $(tail -n 3 "$TMP/agent-laptop.log")"
	grep -q big.bin "$TMP/list.$mode" || fail "$mode: big.bin is not in the listing"
	ftp_get "$HB" $FTP_URL/big.bin "$TMP/got.$mode" "$mode" ||
		fail "$mode: download failed"
	[ "$(sha256sum <"$TMP/got.$mode")" = "$sum" ] || fail "$mode: the download differs"
	log_info_line "ftp $mode download: $(ftp_rate_mbit) Mbit/s"
	ftp_put "$HB" "$TMP/got.$mode" "$FTP_URL/upload/up.$mode" "$mode" ||
		fail "$mode: upload failed"
	[ "$(sha256sum <"$TMP/ftproot/upload/up.$mode")" = "$sum" ] ||
		fail "$mode: the upload differs"
	log_info_line "ftp $mode upload: $(ftp_rate_mbit) Mbit/s"
}

log_info_line() {
	echo "    $*" >&2
}

test_ftp_passive_epsv() {
	ftp_bed tc
	ftp_round_trip epsv
	ftp_round_trip pasv-ip
	path_is relay
}

test_ftp_active() {
	ftp_bed tc
	ftp_round_trip active
	ftp_round_trip port
}

# IPv6 command forms end to end: vsftpd on HA's ::1 and a client on HB's
# ::1 (the tunnel between the agents is IPv4): EPSV's 229 and EPRT |2|
# rewritten to IPv6 aliases, passive and active.
test_ftp_ipv6_commands() {
	local mode

	provider relay tc
	mkdir -p "$TMP/ftproot"
	random_file "$TMP/ftproot/big.bin" $((4 << 20))
	chmod 0644 "$TMP/ftproot/big.bin"
	ftp_server "$HA" ::1 2121 "$TMP/ftproot"
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: ftp, target: "[::1]:2121", alg: ftp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/ftp, listen: "[::1]:2121", pool: 0, alg: ftp }'
	for mode in epsv active; do
		ftp_get "$HB" "ftp://[::1]:2121/big.bin" "$TMP/got6.$mode" "$mode" ||
			fail "IPv6 $mode download failed: $(tail -n 3 "$TMP/agent-laptop.log")"
		cmp -s "$TMP/got6.$mode" "$TMP/ftproot/big.bin" || fail "IPv6 $mode: differs"
	done
	grep -q 'EPRT |2|::1|' "$FTP_LOG" || fail "vsftpd saw no IPv6 EPRT: $(grep EPRT "$FTP_LOG")"
}

# The direct path: vsftpd and its agent on a public host.
test_ftp_direct() {
	ftp_bed tc direct
	ftp_round_trip epsv
	ftp_round_trip active
	path_is direct
}

# The subscriber agrees to the provider's ALG (alg: in its subscription) or
# none runs on its side: then the provider cannot make flows reach the
# client's host, and an active transfer fails instead of connecting back.
test_ftp_subscriber_must_agree() {
	local rc=0

	FTP_SUB_ALG= ftp_bed tc
	FTP_MAX_TIME=20 ftp_get "$HB" "$FTP_URL/big.bin" "$TMP/got.active" active || rc=$?
	[ "$rc" != 0 ] || fail "an active transfer worked without the subscriber's ALG"
	grep -q "the provider runs alg ftp, this subscription no alg: no ALG here" \
		"$TMP/agent-laptop.log" ||
		fail "the subscriber did not say it runs no ALG: $(grep -i alg "$TMP/agent-laptop.log")"
	wait_until 20 grep -Eq "\\) refused: (not a port of the service|no such session here)" \
		"$TMP/agent-laptop.log" ||
		fail "the subscriber did not refuse the provider's flow to the client's host"
}

# An alias serves the session's own host only: with a PASV reply (the
# subscriber's alias on HB) held open, NATB, another host of the LAN,
# connecting to that alias is refused; the client itself then gets through.
test_ftp_alias_refuses_strangers() {
	local port reply

	ftp_bed tc
	coproc FTPC { nsx "$HB" socat - "TCP4:$HB4:2121"; }
	printf 'USER anonymous\r\nPASS x\r\nPASV\r\n' >&"${FTPC[1]}"
	while read -r -t 20 reply <&"${FTPC[0]}"; do
		case "$reply" in 227*) break ;; esac
	done
	[[ $reply == "227 "*"(10,0,2,2,"* ]] || fail "no rewritten 227 from the session: '$reply'"
	port=$(sed -E 's/.*\(([0-9]+,){4}([0-9]+),([0-9]+)\).*/\2 \3/' <<<"$reply" |
	       awk '{ print $1 * 256 + $2 }')
	nsx "$NATB" socat -T 3 - "TCP4:$HB4:$port" </dev/null >"$TMP/stranger.out" 2>&1 || true
	wait_until 10 grep -q "a connection from 10.0.2.1:.* refused: not the session's host" \
		"$TMP/agent-laptop.log" || fail "the alias did not refuse NATB"
	printf 'LIST\r\n' >&"${FTPC[1]}"
	nsx "$HB" socat -T 10 -u "TCP4:$HB4:$port" - >"$TMP/list.out" ||
		fail "the session's own host could not use the alias after the stranger"
	grep -q big.bin "$TMP/list.out" || fail "the listing through the alias lacks big.bin"
	printf 'QUIT\r\n' >&"${FTPC[1]}"
}

test_ftp_lftp() {
	need lftp
	ftp_bed xdp
	lftp_list "$HB" $FTP_URL/ passive | grep -q big.bin ||
		fail "lftp passive listing failed"
	lftp_get "$HB" $FTP_URL/big.bin "$TMP/lftp.bin" active ||
		fail "lftp active download failed"
	cmp -s "$TMP/lftp.bin" "$TMP/ftproot/big.bin" || fail "lftp's download differs"
}

# A server that floods PASV replies, sends malformed ones and an over-long
# line: the subscriber's ALG rewrites what it can up to its per-session
# listener limit, passes the rest unchanged, logs why, and the connection and
# the agent carry on.
test_ftp_bad_input() {
	local out rewritten

	need_system
	topo_nat
	start_broker
	start_sys_relay tc
	{
		printf '220 fake\r\n'
		for i in $(seq 1 40); do
			printf '227 Entering Passive Mode (10,0,1,2,%d,%d)\r\n' $((100 + i)) 7
		done
		printf '227 Entering Passive Mode (999,0,1,2,1,1)\r\n'
		printf '227 Entering Passive Mode (10,0,1,2,1\r\n'
		printf '229 Entering Extended Passive Mode (|||99999|)\r\n'
		printf '200 %s\r\n' "$(head -c 3000 /dev/zero | tr '\0' x)"
		printf '221 bye\r\n'
	} >"$TMP/fake.txt"
	bg "$HA" "$TMP/fake.log" socat "TCP4-LISTEN:2121,bind=$HA4,reuseaddr,fork" \
		"SYSTEM:cat $TMP/fake.txt; cat"
	start_agent "$HA" home-nas nas-secret "publish:
  - { name: ftp, target: $HA4:2121, alg: ftp }"
	start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: home-nas/ftp, listen: $HB4:2121, pool: 0, alg: ftp }"
	out=$(nsx "$HB" socat -T 10 - "TCP4:$HB4:2121" </dev/null | tr -d '\r') ||
		fail "the control connection failed"
	grep -q '^221 bye$' <<<"$out" || fail "the last line did not come through: $(tail -n 2 <<<"$out")"
	[ "$(wc -l <<<"$out")" = 46 ] || fail "$(wc -l <<<"$out") lines came, not 46"
	rewritten=$(grep -c '^227 Entering Passive Mode (10,0,2,2,' <<<"$out")
	[ "$rewritten" = 16 ] || fail "$rewritten replies rewritten, not the limit of 16"
	grep -q '^227 Entering Passive Mode (10,0,1,2,140,7)$' <<<"$out" ||
		fail "a reply over the limit was not passed unchanged"
	grep -q '(999,0,1,2,1,1)' <<<"$out" || fail "the malformed reply was not passed unchanged"
	grep -q "^200 x\{3000\}$" <<<"$out" || fail "the over-long line was not passed whole"
	grep -q "at its limit of 16 listeners" "$TMP/agent-laptop.log" ||
		fail "the agent did not log the refused announcements"
	kill -0 "$AGENT_PID" || fail "the subscriber agent died"
	# and it still serves: a second connection works
	out=$(nsx "$HB" socat -T 10 - "TCP4:$HB4:2121" </dev/null | head -n 1 | tr -d '\r')
	[ "$out" = "220 fake" ] || fail "a second connection said '$out'"
}

# sip_bed PROTO: baresip "bob" on HA (HA4:5060, RTP 32000-32099), published
# with alg: sip; the caller "alice" on HB (HB4:5070, RTP 34000-34099), whose
# subscriber agent listens on HB4:5060. Two NATs, the relay path (TC).
sip_bed() {
	local proto=${1:-udp}

	provider "${2:-relay}"
	sip_ua "$PNS" bob "$PIP" 5060 32000-32099
	sip_ua "$HB" alice "$HB4" 5070 34000-34099
	start_agent "$PNS" "$PNAME" "$PSECRET" "$PEXTRA
publish:
  - { name: sip, target: $PIP:5060, proto: $proto, alg: sip }"
	start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: $PNAME/sip, listen: $HB4:5060, proto: $proto, alg: sip }"
}

# sip_call_both_ways URI: alice calls URI, bob answers, RTP flows both ways
# (50 packets each way counted on both hosts), alice hangs up, both end.
sip_call_both_ways() {
	sip_call alice "$1" || fail "the call was not established: $(tail -n 5 "$TMP/sip-alice.log")"
	sip_wait bob "Call established" 1 || fail "bob never saw the ACK"
	wait_until 60 rtp_both_at_least alice 50 ||
		fail "alice: RTP tx $(rtp_count alice tx) rx $(rtp_count alice rx)"
	wait_until 60 rtp_both_at_least bob 50 ||
		fail "bob: RTP tx $(rtp_count bob tx) rx $(rtp_count bob rx)"
	sip_hangup alice || fail "alice's hang-up did not end the call"
	sip_wait bob "terminated" 1 || fail "bob did not see the BYE"
}

# Two unmodified SIP user agents behind two NATs: the call is set up through
# the SIP ALGs and RTP flows both ways through two UDP flows of the session
# (the three-splice case: signalling, one media flow each way).
test_sip_call_udp() {
	local id

	sip_bed udp
	sip_call_both_ways "sip:bob@$HB4:5060"
	id=$(broker_api /api/v1/sessions | jq -r '[.[] | select(.parent == null)][0].id')
	[ "$(broker_api /api/v1/sessions | jq --arg p "$id" \
		'[.[] | select(.parent == $p and .proto == "udp")] | length')" -ge 2 ] ||
		fail "fewer than two media flows: $(broker_api /api/v1/sessions)"
}

# The direct path: bob and his agent on a public host.
test_sip_call_direct() {
	sip_bed udp direct
	sip_call_both_ways "sip:bob@$HB4:5060"
	path_is direct
}

# The same over SIP's TCP transport: the ALG holds a message until its
# Content-Length is complete, rewrites it and fixes the length.
test_sip_call_tcp() {
	sip_bed tcp
	sip_call_both_ways "sip:bob@$HB4:5060;transport=tcp"
}

# sipsak's OPTIONS and MESSAGE through the service are answered (200).
test_sip_options_message() {
	local out

	sip_bed udp
	out=$(sip_options "$HB" "sip:bob@$HB4:5060" "$HB4" 2>&1) ||
		fail "OPTIONS not answered: $out"
	grep -q "SIP/2.0 200" <<<"$out" || fail "OPTIONS: no 200: $out"
	out=$(sip_message "$HB" "sip:bob@$HB4:5060" "$HB4" "hello bob" 2>&1) ||
		fail "MESSAGE not answered: $out"
	grep -q "SIP/2.0 200" <<<"$out" || fail "MESSAGE: no 200: $out"
}

# Bad SIP through the ALGs: truncated and malformed datagrams are dropped
# (and logged), an SDP announcing 100 media streams gets what the session's
# 16 listeners hold: 8 RTP/RTCP pairs (the rest port 0), and a good message afterwards still goes through,
# rewritten. The provider's "server" records what reaches it.
test_sip_bad_input() {
	local got body m

	need_system
	topo_nat
	start_broker
	start_sys_relay tc
	bg "$HA" "$TMP/sipsink.log" socat -u "UDP4-RECV:5060,bind=$HA4" "OPEN:$TMP/got.sip,creat,append"
	start_agent "$HA" home-nas nas-secret "publish:
  - { name: sip, target: $HA4:5060, proto: udp, alg: sip }"
	start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: home-nas/sip, listen: $HB4:5060, proto: udp, alg: sip }"
	sip_head() {	# METHOD CALLID [CONTENT-LENGTH]
		printf '%s sip:bob@%s:5060 SIP/2.0\r\nVia: SIP/2.0/UDP %s:5070;branch=z9hG4bK%s\r\n' \
			"$1" "$HB4" "$HB4" "$2"
		printf 'From: <sip:alice@%s>;tag=1\r\nTo: <sip:bob@%s>\r\nCall-ID: %s\r\n' \
			"$HB4" "$HB4" "$2"
		printf 'CSeq: 1 %s\r\nContact: <sip:alice@%s:5070>\r\n' "$1" "$HB4"
	}
	send_sip() {
		nsx "$HB" socat -u - "UDP4-SENDTO:$HB4:5060,bind=$HB4:5070"
	}
	{ sip_head INVITE truncated; printf 'Content-Length: 0\r\n'; } | send_sip
	{ sip_head INVITE shortbody; printf 'Content-Length: 500\r\n\r\nv=0\r\n'; } | send_sip
	body=$(printf 'v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n' "$HB4" "$HB4"
	       for m in $(seq 0 99); do printf 'm=audio %d RTP/AVP 0\r\n' $((40000 + 2 * m)); done)
	{ sip_head INVITE flood; printf 'Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s' \
		"${#body}" "$body"; } | send_sip
	{ sip_head OPTIONS good; printf 'Content-Length: 0\r\n\r\n'; } | send_sip
	wait_until 20 grep -q "Call-ID: good" "$TMP/got.sip" ||
		fail "the good OPTIONS did not reach the server: $(tail -n 5 "$TMP/agent-laptop.log")"
	got=$(tr -d '\r' <"$TMP/got.sip")
	grep -q "Call-ID: truncated" <<<"$got" && fail "the truncated INVITE got through"
	grep -q "Call-ID: shortbody" <<<"$got" && fail "the INVITE with a short body got through"
	grep -q "Call-ID: flood" <<<"$got" || fail "the flooding INVITE did not arrive"
	[ "$(grep -c '^m=audio [1-9]' <<<"$got")" = 8 ] ||
		fail "$(grep -c '^m=audio [1-9]' <<<"$got") streams kept a port, not 8"
	[ "$(grep -c '^m=audio 0 ' <<<"$got")" = 92 ] || fail "the other 92 streams are not port 0"
	grep -q "OPTIONS sip:bob@$HA4:5060 SIP/2.0" <<<"$got" ||
		fail "the good OPTIONS' Request-URI was not rewritten: $(grep ^OPTIONS <<<"$got")"
	grep -q "no blank line after the headers" "$TMP/agent-home-nas.log" "$TMP/agent-laptop.log" ||
		fail "the dropped truncated INVITE was not logged"
	grep -q "body shorter than Content-Length" "$TMP/agent-home-nas.log" "$TMP/agent-laptop.log" ||
		fail "the dropped short body was not logged"
	for pid in $(pgrep -f "$TMP/agent-"); do
		kill -0 "$pid" || fail "an agent died"
	done
}

run_tests "$@"
