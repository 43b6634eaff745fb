#!/bin/bash
# The application recipes of apps.sh (vsftpd, curl, lftp, baresip, sipsak,
# iperf2, iperf3) on the NAT bed WITHOUT natsplice: HB reaches a server on HA
# through a plain nftables DNAT port forward on NATA (NATA4:port -> HA), the
# baseline for the agents' multi-connection services and ALGs. Each test
# proves what works through a bare DNAT, what fails (only where the failure
# is deterministic: a refusal or an unroutable address, never a lost race)
# and what the kernel's conntrack helpers (ct_helper) repair. Rates are
# printed as "figure: ..." lines (VERBOSE=1 shows them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"
. "$(dirname "$0")/apps.sh"

FTP_SIZE=$((50 << 20))
RTP_RANGE=32000-32099

# ftp_bed [FORWARD_PASSIVE]: topo_nat, vsftpd on HA:21 serving $TMP/ftp with
# a 50 MiB big.bin, NATA forwarding 21 (and the passive range unless "no").
ftp_bed() {
	need curl lftp vsftpd nft
	topo_nat
	mkdir -p "$TMP/ftp"
	random_file "$TMP/ftp/big.bin" "$FTP_SIZE"
	chmod 0644 "$TMP/ftp/big.bin"
	WANT_SHA=$(sha256sum <"$TMP/ftp/big.bin")
	ftp_server "$HA" "$HA4" 21 "$TMP/ftp" 30000 30099
	port_forward "$NATA" tcp 21 "$HA4"
	[ "${1:-yes}" = no ] || port_forward "$NATA" tcp 30000-30099 "$HA4"
}

# same_sha FILE WHAT: FILE is big.bin.
same_sha() {
	[ "$(sha256sum <"$1")" = "$WANT_SHA" ] || fail "$2: sha256 differs ($(stat -c %s "$1") bytes)"
}

# need_helper NS HELPER PROTO PORT: ct_helper, or skip if the kernel lacks it.
need_helper() {
	ct_helper "$@" 2>"$TMP/nft.err" || skip "no conntrack helper $2: $(head -n 1 "$TMP/nft.err")"
}

# ---------------------------------------------------------------- FTP

# Passive FTP through a port forward of 21 and the passive range: EPSV and
# PASV with curl, PASV and EPSV with lftp, 50 MiB each way, sha256 checked.
test_ftp_passive_dnat() {
	local url=ftp://$NATA4

	ftp_bed
	ftp_get "$HB" "$url/big.bin" "$TMP/get-epsv.bin" epsv || fail "curl EPSV download failed"
	same_sha "$TMP/get-epsv.bin" "curl EPSV download"
	echo "figure: FTP 50 MiB download, curl EPSV, via NATA DNAT: $(ftp_rate_mbit) Mbit/s"
	ftp_put "$HB" "$TMP/get-epsv.bin" "$url/upload/put-pasv.bin" pasv || fail "curl PASV upload failed"
	same_sha "$TMP/ftp/upload/put-pasv.bin" "curl PASV upload"
	echo "figure: FTP 50 MiB upload, curl PASV, via NATA DNAT: $(ftp_rate_mbit) Mbit/s"
	ftp_list "$HB" "$url/upload/" | grep -q put-pasv.bin || fail "curl listing lacks put-pasv.bin"
	# the server's 227 names 10.0.1.2; curl and lftp both use NATA4 instead
	grep -q "227 Entering Passive Mode (10,0,1,2," "$FTP_LOG" || fail "no 227 with HA's address"
	lftp_get "$HB" "$url/upload/put-pasv.bin" "$TMP/lftp-get.bin" passive || fail "lftp PASV download failed"
	same_sha "$TMP/lftp-get.bin" "lftp PASV download"
	lftp_put "$HB" "$TMP/lftp-get.bin" "$url/upload/lftp-put.bin" epsv || fail "lftp EPSV upload failed"
	same_sha "$TMP/ftp/upload/lftp-put.bin" "lftp EPSV upload"
	lftp_list "$HB" "$url/upload/" | grep -q lftp-put.bin || fail "lftp listing lacks lftp-put.bin"
}

# Without the passive range forwarded the data connection hits NATA itself
# (RST: curl status 7); a client that believes the 227 address (10.0.1.2)
# has no route to it.
test_ftp_passive_needs_range() {
	local rc

	ftp_bed no
	rc=0
	ftp_get "$HB" "ftp://$NATA4/big.bin" "$TMP/x.bin" epsv || rc=$?
	[ "$rc" = 7 ] || fail "EPSV without the range forwarded: curl status $rc, not 7"
	rc=0
	port_forward "$NATA" tcp 30000-30099 "$HA4"
	ftp_get "$HB" "ftp://$NATA4/big.bin" "$TMP/x.bin" pasv-ip || rc=$?
	[ "$rc" = 7 ] || fail "PASV to the 227 address: curl status $rc, not 7"
	grep -q "227 Entering Passive Mode (10,0,1,2," "$FTP_LOG" || fail "no 227 with HA's address"
}

# Active FTP from behind NATB: the PORT/EPRT names 10.0.2.2, not the control
# connection's peer NATB4, and vsftpd refuses it at once.
test_ftp_active_dnat_fails() {
	local rc=0

	ftp_bed
	ftp_get "$HB" "ftp://$NATA4/big.bin" "$TMP/x.bin" active || rc=$?
	[ "$rc" = 30 ] || fail "active download: curl status $rc, not 30 (PORT failed)"
	grep -q '"EPRT |1|10.0.2.2|' "$FTP_LOG" || fail "no EPRT with HB's own address"
	grep -q '"500 Illegal EPRT command."' "$FTP_LOG" || fail "vsftpd did not refuse the EPRT"
	grep -q '"500 Illegal PORT command."' "$FTP_LOG" || fail "vsftpd did not refuse the PORT"
	lftp_get "$HB" "ftp://$NATA4/big.bin" "$TMP/x.bin" active 2>"$TMP/lftp.err" &&
		fail "lftp active download worked"
	grep -q "Illegal PORT command" "$TMP/lftp.err" || fail "lftp: $(cat "$TMP/lftp.err")"
}

# The ftp conntrack helper on NATB (the client's NAT) rewrites PORT/EPRT to
# NATB4 and lets the server's data connection in: active mode works.
test_ftp_active_alg() {
	ftp_bed
	need_helper "$NATB" ftp tcp 21
	ftp_get "$HB" "ftp://$NATA4/big.bin" "$TMP/a.bin" active || fail "active download failed"
	same_sha "$TMP/a.bin" "active (EPRT) download"
	echo "figure: FTP 50 MiB download, curl active (EPRT, ftp helper on NATB): $(ftp_rate_mbit) Mbit/s"
	grep -q "\"EPRT |1|$NATB4|" "$FTP_LOG" || fail "the helper did not rewrite the EPRT"
	ftp_put "$HB" "$TMP/a.bin" "ftp://$NATA4/upload/port.bin" port || fail "PORT upload failed"
	same_sha "$TMP/ftp/upload/port.bin" "active (PORT) upload"
	lftp_get "$HB" "ftp://$NATA4/big.bin" "$TMP/l.bin" active || fail "lftp active download failed"
	same_sha "$TMP/l.bin" "lftp active download"
}

# The ftp helper on NATA (the server's NAT) with only 21 forwarded: it
# rewrites the 227 to NATA4 and expects the data connection, so even a client
# that believes the 227 works and no passive range needs forwarding.
test_ftp_passive_alg() {
	ftp_bed no
	need_helper "$NATA" ftp tcp 21
	ftp_get "$HB" "ftp://$NATA4/big.bin" "$TMP/p.bin" pasv-ip || fail "PASV (227 address) failed"
	same_sha "$TMP/p.bin" "PASV download through the helper"
	ftp_get "$HB" "ftp://$NATA4/big.bin" "$TMP/e.bin" epsv || fail "EPSV failed"
	same_sha "$TMP/e.bin" "EPSV download through the helper"
	echo "figure: FTP 50 MiB download, curl EPSV, ftp helper on NATA, 21 forwarded: $(ftp_rate_mbit) Mbit/s"
}

# ---------------------------------------------------------------- SIP

# A call without NAT (PUB and BROKER share the bridge): both ends see "Call
# established" and RTP both ways; nftables and baresip count the same.
test_sip_call_direct() {
	local tx rx diff

	need jq
	topo_nat
	sip_ua "$PUB" alice "$PUB4" 5060 "$RTP_RANGE"
	sip_ua "$BROKER" bob "$BROKER4" 5060 "$RTP_RANGE"
	sip_call alice "sip:bob@$BROKER4:5060" || fail "alice: no Call established"
	sip_wait bob "Call established" 1 || fail "bob: no Call established"
	wait_until "$SIP_TIMEOUT" rtp_both_at_least alice 100 || fail "alice: RTP tx $(rtp_count alice tx) rx $(rtp_count alice rx)"
	wait_until "$SIP_TIMEOUT" rtp_both_at_least bob 100 || fail "bob: RTP tx $(rtp_count bob tx) rx $(rtp_count bob rx)"
	sip_hangup alice || fail "alice: hangup not seen"
	sip_wait bob "terminated \(duration" 1 || fail "bob did not see the BYE"
	sip_wait bob "^errors:" 1 || fail "bob printed no RTP statistics"
	read -r tx rx <<<"$(sip_stats alice)"
	echo "figure: SIP call PUB<->BROKER: alice RTP tx $tx rx $rx (baresip), tx $(rtp_count alice tx) rx $(rtp_count alice rx) (nft)"
	# RTCP is not counted: nftables and baresip agree, up to the packets in
	# flight when the BYE went out
	diff=$((tx - $(rtp_count alice tx)))
	[ "${diff#-}" -le 5 ] || fail "baresip says alice sent $tx RTP packets, nft $(rtp_count alice tx)"
	[ "$(rtp_count bob rx)" -ge $((tx - 5)) ] || fail "bob received $(rtp_count bob rx) of $tx"
}

# sipsak against baresip: OPTIONS is answered 200 (status 0); a MESSAGE too.
# Through NATA's port forward of 5060 as well (replies follow Via's rport).
test_sipsak() {
	topo_nat
	sip_ua "$HA" alice "$HA4" 5060 "$RTP_RANGE"
	port_forward "$NATA" udp 5060 "$HA4"
	sip_options "$PUB" "sip:alice@$NATA4:5060" "$PUB4" >"$TMP/options.out" ||
		fail "OPTIONS: sipsak status $?: $(tail -n 3 "$TMP/options.out")"
	grep -q "^SIP/2.0 200 OK" "$TMP/options.out" || fail "OPTIONS: no 200 OK"
	grep -q "^Allow: .*MESSAGE" "$TMP/options.out" || fail "OPTIONS: no Allow header"
	sip_message "$HB" "sip:alice@$NATA4:5060" "$HB4" "hello through DNAT" >"$TMP/message.out" ||
		fail "MESSAGE: sipsak status $?: $(tail -n 3 "$TMP/message.out")"
	grep -q "CSeq: 1 MESSAGE" "$TMP/message.out" || fail "MESSAGE: reply is not the MESSAGE's"
	local rc=0
	sip_options "$PUB" "sip:alice@$NATA4:5099" "$PUB4" >"$TMP/refused.out" || rc=$?
	[ "$rc" = 3 ] || fail "OPTIONS to a closed port: sipsak status $rc, not 3"
}

# A call HB -> alice@NATA4 through a port forward of 5060 and the RTP range,
# no ALG: the INVITE arrives and its 200 reaches HB (Via rport), but the 200's
# Contact and SDP name 10.0.1.2 and the INVITE's name 10.0.2.2, addresses the
# other side cannot route to. HB's ACK is lost, so alice never sees the call
# established, and no RTP packet arrives at either end.
test_sip_call_dnat_no_alg() {
	need jq
	topo_nat
	sip_ua "$HA" alice "$HA4" 5060 "$RTP_RANGE"
	sip_ua "$HB" bob "$HB4" 5060 "$RTP_RANGE"
	port_forward "$NATA" udp 5060 "$HA4"
	port_forward "$NATA" udp "$RTP_RANGE" "$HA4"
	sip_call bob "sip:alice@$NATA4:5060" || fail "bob: no Call established (the 200 did not come back)"
	wait_until "$SIP_TIMEOUT" rtp_at_least bob tx 100 || fail "bob sent no RTP"
	wait_until "$SIP_TIMEOUT" rtp_at_least alice tx 100 || fail "alice sent no RTP"
	[ "$(rtp_count alice rx)" = 0 ] || fail "alice received $(rtp_count alice rx) RTP packets"
	[ "$(rtp_count bob rx)" = 0 ] || fail "bob received $(rtp_count bob rx) RTP packets"
	[ "$(sip_events alice "Call established")" = 0 ] || fail "alice got the ACK"
}

# The sip conntrack helper on both NATs rewrites Via/Contact/SDP and expects
# the RTP flows: with only 5060 forwarded on NATA the call works both ways.
test_sip_call_alg() {
	need jq
	topo_nat
	need_helper "$NATA" sip udp 5060
	need_helper "$NATB" sip udp 5060
	sip_ua "$HA" alice "$HA4" 5060 "$RTP_RANGE"
	sip_ua "$HB" bob "$HB4" 5060 "$RTP_RANGE"
	port_forward "$NATA" udp 5060 "$HA4"
	sip_call bob "sip:alice@$NATA4:5060" || fail "bob: no Call established"
	sip_wait alice "Call established" 1 || fail "alice: no Call established (ACK lost)"
	wait_until "$SIP_TIMEOUT" rtp_both_at_least alice 100 || fail "alice: RTP tx $(rtp_count alice tx) rx $(rtp_count alice rx)"
	wait_until "$SIP_TIMEOUT" rtp_both_at_least bob 100 || fail "bob: RTP tx $(rtp_count bob tx) rx $(rtp_count bob rx)"
	sip_hangup bob || fail "bob: hangup not seen"
	sip_wait alice "terminated \(duration" 1 || fail "alice did not see the BYE"
	echo "figure: SIP call HB->NATA4 (sip helper on both NATs): bob RTP tx/rx $(sip_stats bob)"
}

# The sip helper on NATA alone: the 200's Contact and SDP are rewritten to
# NATA4, so the ACK and bob's RTP reach alice; alice's RTP still goes to
# 10.0.2.2 (bob's SDP, unrewritten) and never arrives: one-way audio.
test_sip_call_alg_one_side() {
	need jq
	topo_nat
	need_helper "$NATA" sip udp 5060
	sip_ua "$HA" alice "$HA4" 5060 "$RTP_RANGE"
	sip_ua "$HB" bob "$HB4" 5060 "$RTP_RANGE"
	port_forward "$NATA" udp 5060 "$HA4"
	sip_call bob "sip:alice@$NATA4:5060" || fail "bob: no Call established"
	sip_wait alice "Call established" 1 || fail "alice: no Call established (ACK lost)"
	wait_until "$SIP_TIMEOUT" rtp_at_least alice rx 100 || fail "alice received $(rtp_count alice rx) RTP packets"
	wait_until "$SIP_TIMEOUT" rtp_at_least alice tx 100 || fail "alice sent no RTP"
	[ "$(rtp_count bob rx)" = 0 ] || fail "bob received $(rtp_count bob rx) RTP packets"
}

# ---------------------------------------------------------------- iperf

# iperf2 -d and -r: the server connects back to the control connection's
# peer address on the client's listen port (5001, or -L); --full-duplex and
# -R use the one connection.
test_iperf2_reverse_direct() {
	topo_nat
	iperf2_server "$PUB"
	iperf2_client "$BROKER" "$PUB4" -d >/dev/null || fail "iperf -d failed: $(tail -n 2 "$TMP/iperf2-client.log")"
	grep -Eq "local $BROKER4 port 5001 connected with $PUB4 port [0-9]+" "$TMP/iperf2-client.log" ||
		fail "-d: no connection from the server to $BROKER4:5001"
	iperf2_client "$BROKER" "$PUB4" -r -L 6002 >/dev/null || fail "iperf -r -L 6002 failed"
	grep -Eq "local $BROKER4 port 6002 connected with $PUB4 port [0-9]+" "$TMP/iperf2-client.log" ||
		fail "-r -L 6002: no connection from the server to $BROKER4:6002"
	iperf2_client "$BROKER" "$PUB4" --full-duplex >/dev/null || fail "iperf --full-duplex failed"
	grep -q "connected with $PUB4 port 5001 (full-duplex)" "$TMP/iperf2-client.log" ||
		fail "--full-duplex: not one connection to port 5001"
	! grep -q "local $BROKER4 port 5001 connected" "$TMP/iperf2-client.log" ||
		fail "--full-duplex: the server connected back"
}

# Through NATA's port forward of 5001: the server's connection back goes to
# NATB4:5001 and NATB refuses it; iperf says so (and exits 0). --full-duplex
# and -R work.
test_iperf2_reverse_dnat() {
	topo_nat
	iperf2_server "$HA"
	port_forward "$NATA" tcp 5001 "$HA4"
	iperf2_client "$HB" "$NATA4" -d >/dev/null && fail "iperf -d through DNAT worked"
	grep -q "ERROR: expected reverse connect did not occur" "$TMP/iperf2-client.log" ||
		fail "-d: $(tail -n 1 "$TMP/iperf2-client.log")"
	wait_until 10 grep -q "tcp connect failed: Connection refused" "$TMP/iperf2-5001.log" ||
		fail "the server's connect back was not refused"
	grep -q "Client connecting to $NATB4, TCP port 5001" "$TMP/iperf2-5001.log" ||
		fail "the server did not connect back to NATB4:5001"
	iperf2_client "$HB" "$NATA4" --full-duplex >/dev/null || fail "--full-duplex through DNAT failed"
	iperf2_client "$HB" "$NATA4" -R >/dev/null || fail "-R through DNAT failed"
	grep -q "(reverse)" "$TMP/iperf2-client.log" || fail "-R: not a reverse test"
}

# iperf3 through a port forward of 5201 (TCP and UDP): every stream of -P 4
# and the UDP test go client -> server port 5201, so a DNAT suffices.
test_iperf3_dnat() {
	topo_nat
	iperf3_server "$HA"
	port_forward "$NATA" both 5201 "$HA4"
	iperf3_client "$HB" "$NATA4" || fail "iperf3 TCP failed"
	echo "figure: iperf3 TCP HB->HA via NATA DNAT: $(iperf3_mbit) Mbit/s"
	iperf3_client "$HB" "$NATA4" -R || fail "iperf3 -R failed"
	echo "figure: iperf3 TCP -R HA->HB via NATA DNAT: $(iperf3_mbit) Mbit/s"
	iperf3_client "$HB" "$NATA4" -P 4 || fail "iperf3 -P 4 failed"
	echo "figure: iperf3 TCP -P 4 via NATA DNAT: $(iperf3_mbit) Mbit/s"
	[ "$(jq '[.start.connected[] | select(.remote_port == 5201)] | length' "$TMP/iperf3.json")" = 4 ] ||
		fail "-P 4: not 4 streams to port 5201"
	iperf3_client "$HB" "$NATA4" -u -b 200M || fail "iperf3 -u failed"
	echo "figure: iperf3 UDP -b 200M via NATA DNAT: $(iperf3_mbit) Mbit/s," \
		"lost $(jq '.end.sum.lost_percent | floor' "$TMP/iperf3.json") %"
	[ "$(jq '.start.connected[0].remote_port' "$TMP/iperf3.json")" = 5201 ] || fail "-u: not to port 5201"
	[ "$(jq '.end.sum.packets' "$TMP/iperf3.json")" -gt 1000 ] || fail "-u: too few packets"
}

run_tests
