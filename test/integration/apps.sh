# shellcheck shell=bash
# Real applications as test fixtures, sourced after lib.sh and sys.sh:
# vsftpd with curl and lftp (FTP), baresip and sipsak (SIP), iperf2 and iperf3,
# and the nftables rules of a NAT router's port forward and conntrack helpers.
# test_apps.sh runs each recipe through a plain DNAT port forward on NATA, the
# baseline the agents' services and ALGs are measured against.
#
# Every server is started with bg (killed at teardown) and waited for by its
# listening socket or its ready line; every client has a timeout. Logs are
# $TMP/*.log, so a failing test shows their tails.
#
# Traps (see test_apps.sh for the proof of each):
#   - Kernel >= 6.0 never attaches a conntrack helper by itself (the
#     nf_conntrack_helper sysctl is gone): a DNAT alone does not rewrite FTP's
#     PORT/227 or SIP's Contact/SDP. The ftp and sip helpers are built into
#     this kernel (no modules needed) and work once a rule assigns them
#     (ct_helper). SIP needs the helper on both NATs: on the server's NAT
#     alone the callee gets the ACK and the caller's RTP, the caller gets no
#     RTP (one-way audio); on the caller's NAT alone, the reverse.
#   - vsftpd refuses a chroot root the ftp user can write ("500 OOPS: vsftpd:
#     refusing to run with writable root inside chroot()"): ROOTDIR is root's
#     and 0755, uploads go to ROOTDIR/upload (owned by ftp). Anonymous users
#     only download world-readable files and cannot overwrite (553).
#   - vsftpd (3.0.3) runs as is in a namespace: its default seccomp sandbox
#     and isolate (new net namespace for the unprivileged child) work;
#     connect_from_port_20=YES works too (root binds port 20), NO makes active
#     data connections come from an ephemeral port.
#   - vsftpd refuses a PORT/EPRT whose address is not the control connection's
#     peer ("500 Illegal PORT command."): active mode from behind a NAT
#     without an ALG fails at once, not at the data connection.
#   - curl ignores the address of a 227 reply (--ftp-skip-pasv-ip is its
#     default) and connects to the control connection's address, so PASV and
#     EPSV both work through a DNAT that forwards the passive range. A failed
#     EPRT/PORT gives curl status 30 with a misleading "sa_addr inet_ntop()
#     failed with errno 97"; a refused data connection gives status 7 naming
#     the control port ("Failed to connect to ... port 21").
#   - lftp fixes a private 227 address too (ftp:fix-pasv-address, default on),
#     and after a refused PORT it retries in passive mode by itself ("----
#     Switching passive mode on"), hiding the failure: lftp_* "active" allows
#     one try (net:max-retries 1).
#   - baresip 1.0.0: module names need module_path (else "./cons.so: cannot
#     open"); ausine only produces 48 kHz stereo (ausrc_srate 48000,
#     ausrc_channels 2, resampled to 8 kHz for G.711); there is no null
#     player, aubridge with a device nobody reads serves as one. The callee
#     says "Call established" only once the ACK arrives.
#   - sipsak 0.9.8.1 -M (MESSAGE) crashes with SIGSEGV (sprintf into a NULL
#     buffer) unless -U, and -U first REGISTERs (baresip: 501, sipsak exits 1):
#     sip_message sends a MESSAGE written to a file with -f instead.
#   - baresip with a call whose BYE cannot be delivered (the no-ALG call)
#     takes more than lib.sh's 2 s to exit on SIGTERM (it waits for the BYE
#     transaction): teardown kills it, and bash prints "Killed" lines in a
#     failing or VERBOSE test's output.
#   - iperf2 exits 0 when the reverse connection of -d/-r fails (it prints
#     "ERROR: expected reverse connect did not occur"): iperf2_client checks.

FTP_MAX_TIME=${FTP_MAX_TIME:-600}	# seconds for one FTP transfer (50 MiB on a loaded box)
SIP_TIMEOUT=${SIP_TIMEOUT:-60}	# seconds for a call to be set up or torn down
SIPSAK_TIMEOUT=${SIPSAK_TIMEOUT:-60}	# sipsak itself gives up after ~35 s (64*T1)
IPERF_TIME=${IPERF_TIME:-3}	# seconds per iperf run

# ---------------------------------------------------------------- nftables

# port_forward NAT PROTO PORT[-PORT] TO_IP: DNAT PROTO (tcp, udp or both) to
# the ports, arriving on NAT's WAN side (eth0), to TO_IP on the same ports:
# a home router's port forward. Rules add up in table ip portfwd.
port_forward() {
	local nat=$1 proto=$2 ports=$3 to=$4 match

	case "$proto" in
	tcp | udp) match="$proto dport $ports" ;;
	both) match="meta l4proto { tcp, udp } th dport $ports" ;;
	*) fail "port_forward: protocol $proto is not tcp, udp or both" ;;
	esac
	nsx "$nat" nft -f - <<-NFT
	table ip portfwd {
		chain prerouting {
			type nat hook prerouting priority dstnat; policy accept;
			iifname "eth0" $match dnat to $to
		}
	}
	NFT
}

# ct_helper NS HELPER PROTO PORT: have the kernel's conntrack helper HELPER
# (ftp, sip, tftp...) follow connections to PORT through NS (a router): the
# ALG that rewrites addresses in the payload and expects the data/media
# flows. Assigned after DNAT (priority filter), so PORT is the inner port.
# Fails if the kernel lacks the helper ("Could not process rule").
ct_helper() {
	local ns=$1 helper=$2 proto=$3 port=$4

	nsx "$ns" nft -f - <<-NFT
	table ip alg {
		ct helper $helper-$proto-$port {
			type "$helper" protocol $proto;
			l3proto ip;
		}
		chain prerouting {
			type filter hook prerouting priority filter; policy accept;
			$proto dport $port ct helper set "$helper-$proto-$port"
		}
	}
	NFT
}

# listening NS tcp|udp IP PORT: true if a socket is bound there (IP "":
# any address).
listening() {
	local flag=-ltn filter="sport = :$4"

	[ "$2" = udp ] && flag=-lun
	case "$3" in
	"") ;;
	*:*) filter="src [$3] and $filter" ;;	# ss wants IPv6 in brackets
	*) filter="src $3 and $filter" ;;
	esac
	nsx "$1" ss -H "$flag" "$filter" | grep -q .
}

# _apps_wait_listen WHAT PID NS PROTO IP PORT: wait for the socket, fail with
# the process's last line if it died or never listened.
_apps_wait_listen() {
	local what=$1 pid=$2 log=$3

	shift 3
	local deadline=$((SECONDS + READY_TIMEOUT))
	until listening "$@"; do
		kill -0 "$pid" 2>/dev/null || fail "$what exited: $(tail -n 2 "$log")"
		[ "$SECONDS" -lt "$deadline" ] || fail "$what not listening on $3:$4 after $READY_TIMEOUT s"
		sleep 0.1
	done
}

# ---------------------------------------------------------------- FTP

# ftp_server NS LISTEN_IP PORT ROOTDIR [PASV_MIN PASV_MAX]: vsftpd in the
# foreground (listen=YES, background=NO) with anonymous download from
# ROOTDIR and upload to ROOTDIR/upload, passive ports PASV_MIN-PASV_MAX
# (default 30000-30099), active mode on (data connections from an ephemeral
# port: connect_from_port_20=NO), no pasv_address (227 carries LISTEN_IP).
# Waits for the listening socket. Sets FTP_PID and FTP_LOG (the protocol log:
# every command, reply and "OK DOWNLOAD"/"OK UPLOAD" line). FTP_EXTRA_CONF:
# more vsftpd.conf lines.
ftp_server() {
	local ns=$1 ip=$2 port=$3 root=$4 pmin=${5:-30000} pmax=${6:-30099}
	local conf=$TMP/vsftpd-$port.conf empty=$TMP/vsftpd-empty listen

	need vsftpd
	id ftp >/dev/null 2>&1 || skip "needs the ftp user (Debian's vsftpd package makes it)"
	mkdir -p "$root/upload" "$empty"
	chown root:root "$root" "$empty"
	chmod 0755 "$root" "$empty"
	chown ftp:ftp "$root/upload"
	chmod 0755 "$root/upload"
	FTP_LOG=$TMP/vsftpd-$port.log
	# an IPv6 LISTEN_IP: vsftpd's IPv6 listener (one family per vsftpd)
	case "$ip" in
	*:*) listen=$(printf 'listen=NO\nlisten_ipv6=YES\nlisten_address6=%s' "$ip") ;;
	*) listen=$(printf 'listen=YES\nlisten_ipv6=NO\nlisten_address=%s' "$ip") ;;
	esac
	cat >"$conf" <<-CONF
	$listen
	background=NO
	listen_port=$port
	anonymous_enable=YES
	local_enable=NO
	anon_root=$root
	no_anon_password=YES
	write_enable=YES
	anon_upload_enable=YES
	anon_mkdir_write_enable=YES
	anon_umask=022
	pasv_enable=YES
	pasv_min_port=$pmin
	pasv_max_port=$pmax
	port_enable=YES
	connect_from_port_20=NO
	secure_chroot_dir=$empty
	xferlog_enable=YES
	log_ftp_protocol=YES
	vsftpd_log_file=$FTP_LOG
	${FTP_EXTRA_CONF:-}
	CONF
	bg "$ns" "$TMP/vsftpd-$port.out.log" vsftpd "$conf"
	FTP_PID=$BG_PID
	_apps_wait_listen vsftpd "$FTP_PID" "$TMP/vsftpd-$port.out.log" "$ns" tcp "$ip" "$port"
}

# _ftp_curl_mode MODE: curl's options for a data connection mode:
#   epsv (default)  EPSV, then PASV   (client connects; port only)
#   pasv            PASV only         (client connects to the control
#                                      connection's address, not the 227's)
#   pasv-ip         PASV, to the address in the 227 reply (classic clients)
#   active          EPRT, then PORT   (server connects back)
#   port            PORT only
_ftp_curl_mode() {
	case "${1:-epsv}" in
	epsv) ;;
	pasv) echo --disable-epsv ;;
	pasv-ip) echo --disable-epsv --no-ftp-skip-pasv-ip ;;
	active) echo --ftp-port - ;;
	port) echo --ftp-port - --disable-eprt ;;
	*) fail "unknown FTP mode $1" ;;
	esac
}

# _ftp_curl NS MODE ARGS: curl with the mode's options and timeouts; sets
# FTP_RATE (bytes/s) from its -w line.
_ftp_curl() {
	local ns=$1 mode=$2 rc=0

	shift 2
	# shellcheck disable=SC2046
	nsx "$ns" curl -sS --connect-timeout 30 --max-time "$FTP_MAX_TIME" \
		$(_ftp_curl_mode "$mode") -w '%{speed_download} %{speed_upload}\n' "$@" \
		>"$TMP/ftp-curl.out" || rc=$?
	FTP_RATE=$(tail -n 1 "$TMP/ftp-curl.out" | awk '{ print ($1 > $2 ? $1 : $2) }')
	return "$rc"
}

# ftp_get NS URL OUTFILE [MODE]: download with curl (modes: _ftp_curl_mode).
# Returns curl's status (7: data connection refused; 28: timeout; 30:
# PORT/EPRT refused by the server). Sets FTP_RATE (bytes/s).
ftp_get() {
	_ftp_curl "$1" "${4:-epsv}" -o "$3" "$2"
}

# ftp_put NS FILE URL [MODE]: upload with curl (URL ends with the file name).
ftp_put() {
	_ftp_curl "$1" "${4:-epsv}" -T "$2" "$3"
}

# ftp_list NS URL [MODE]: the directory listing (URL ends with /) on stdout.
ftp_list() {
	local ns=$1 url=$2 mode=${3:-epsv}

	# shellcheck disable=SC2046
	nsx "$ns" curl -sS --connect-timeout 30 --max-time 120 $(_ftp_curl_mode "$mode") "$url"
}

# ftp_rate_mbit: FTP_RATE of the last curl transfer in Mbit/s.
ftp_rate_mbit() {
	awk -v r="${FTP_RATE:-0}" 'BEGIN { printf "%.0f\n", r * 8 / 1e6 }'
}

# _lftp NS URL MODE COMMAND...: lftp without rc files, connected to URL's
# site, running COMMAND on URL's path ($P in COMMAND). MODE: passive
# (default: PASV, 227 address fixed up), epsv, active (EPRT/PORT, one try).
_lftp() {
	local ns=$1 url=$2 mode=${3:-passive} rest site path set

	shift 3
	rest=${url#*://}
	site=${url%%://*}://${rest%%/*}
	path=/${rest#*/}
	[ "$rest" != "${rest#*/}" ] || path=/
	set="set cmd:fail-exit yes; set net:timeout 20; set net:max-retries 2;"
	set="$set set net:reconnect-interval-base 1; set xfer:clobber yes;"
	case "$mode" in
	passive) set="$set set ftp:passive-mode on; set ftp:prefer-epsv no;" ;;
	epsv) set="$set set ftp:passive-mode on; set ftp:prefer-epsv yes;" ;;
	# lftp retries a refused PORT in passive mode ("---- Switching passive
	# mode on"): with one try, active means active
	active) set="$set set ftp:passive-mode off; set net:max-retries 1;" ;;
	*) fail "unknown lftp mode $mode" ;;
	esac
	local cmd=$*
	nsx "$ns" timeout "$FTP_MAX_TIME" lftp --norc -c "$set open $site; ${cmd//\$P/$path}"
}

# lftp_get NS URL OUTFILE [MODE], lftp_put NS FILE URL [MODE],
# lftp_list NS URL [MODE]: the same with lftp (status 1 on any failure; the
# server's reply is on stderr, e.g. "500 Illegal PORT command.").
lftp_get() {
	_lftp "$1" "$2" "${4:-passive}" "get \$P -o $3"
}

lftp_put() {
	_lftp "$1" "$3" "${4:-passive}" "put $2 -o \$P"
}

lftp_list() {
	_lftp "$1" "$2" "${3:-passive}" "cls -1 \$P"
}

# ---------------------------------------------------------------- SIP

# sip_ua NS NAME LISTEN_IP PORT [RTP_MIN-RTP_MAX]: a headless baresip user
# agent <sip:NAME@LISTEN_IP:PORT> (no registrar, regint=0, no STUN/ICE),
# answering every call at once (answermode=auto), sending a 440 Hz sine
# (ausine) as G.711 (PCMU/PCMA, 50 packets/s each way) from RTP ports
# RTP_MIN-RTP_MAX (default 32000-32099) and dropping what it receives
# (aubridge). Controlled through the cons module: UDP 127.0.0.1:PORT+10000
# in NS (sip_cmd). Counts its RTP packets with nftables counters in NS
# (rtp_count). Waits for "baresip is ready." and the SIP socket. Log:
# $TMP/sip-NAME.log. SIP_EXTRA_CONF: more config lines.
sip_ua() {
	local ns=$1 name=$2 ip=$3 port=$4 rtp=${5:-32000-32099} dir=$TMP/sip-$2

	need baresip socat
	mkdir -p "$dir"
	cat >"$dir/config" <<-CONF
	poll_method		epoll
	sip_listen		$ip:$port
	call_local_timeout	120
	call_max_calls		4
	audio_player		aubridge,nil
	audio_alert		aubridge,nil
	audio_source		ausine,440
	ausrc_srate		48000
	ausrc_channels		2
	audio_buffer		20
	rtp_ports		$rtp
	rtcp_mux		no
	rtp_stats		yes
	module_path		/usr/lib/baresip/modules
	module			cons.so
	module			g711.so
	module			ausine.so
	module			aubridge.so
	module_tmp		account.so
	module_app		menu.so
	cons_listen		127.0.0.1:$((port + 10000))
	${SIP_EXTRA_CONF:-}
	CONF
	echo "<sip:$name@$ip:$port>;regint=0;answermode=auto" >"$dir/accounts"
	: >"$dir/contacts"
	echo "$ns" >"$dir/ns"
	echo $((port + 10000)) >"$dir/cons"
	# RTP only: even ports (RTCP, rtcp_mux off, takes the odd one above)
	nsx "$ns" nft -f - <<-NFT
	table inet rtp_$name {
		counter rx {}
		counter tx {}
		chain input {
			type filter hook input priority filter; policy accept;
			udp dport $rtp udp dport & 1 == 0 counter name "rx"
		}
		chain output {
			type filter hook output priority filter; policy accept;
			udp sport $rtp udp sport & 1 == 0 counter name "tx"
		}
	}
	NFT
	bg "$ns" "$TMP/sip-$name.log" baresip -f "$dir"
	echo "$BG_PID" >"$dir/pid"
	wait_for_line "$TMP/sip-$name.log" "baresip is ready" "$READY_TIMEOUT" "$BG_PID" ||
		fail "baresip $name did not start: $(tail -n 2 "$TMP/sip-$name.log")"
	_apps_wait_listen "baresip $name" "$BG_PID" "$TMP/sip-$name.log" "$ns" udp "$ip" "$port"
}

# sip_cmd NAME COMMAND: a console command ("/dial URI", "/hangup", "/quit").
sip_cmd() {
	local dir=$TMP/sip-$1

	printf '%s\n' "$2" | nsx "$(cat "$dir/ns")" socat -u - "UDP:127.0.0.1:$(cat "$dir/cons")"
}

# sip_events NAME REGEX: how many log lines of UA NAME match (the status
# ticker of a call ends its lines with \r, hence the tr).
sip_events() {
	tr '\r' '\n' <"$TMP/sip-$1.log" | grep -Ec -- "$2" || true
}

# sip_wait NAME REGEX COUNT [TIMEOUT]: wait until COUNT lines match.
sip_wait() {
	local deadline=$((SECONDS + ${4:-$SIP_TIMEOUT}))

	until [ "$(sip_events "$1" "$2")" -ge "$3" ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# sip_call NAME URI: UA NAME dials URI; waits (SIP_TIMEOUT) for its next
# "Call established" (the callee's comes with the ACK: sip_wait CALLEE
# "Call established" N). Returns 1 on timeout.
sip_call() {
	local n

	n=$(sip_events "$1" "Call established")
	sip_cmd "$1" "/dial $2"
	sip_wait "$1" "Call established" $((n + 1))
}

# sip_hangup NAME: UA NAME hangs up its call; waits for "Call with ...
# terminated" and the RTP statistics that follow it ("errors:" line; the
# pkt.report/lost/jitter lines only come when RTCP arrived). See sip_stats.
sip_hangup() {
	local n

	n=$(sip_events "$1" "terminated \(duration")
	sip_cmd "$1" "/hangup"
	sip_wait "$1" "terminated \(duration" $((n + 1)) && sip_wait "$1" "^errors:" $((n + 1))
}

# sip_stats NAME: "TX RX", the RTP packets of UA NAME's last call as baresip
# counted them (its "packets:" line after the call ended).
sip_stats() {
	tr '\r' '\n' <"$TMP/sip-$1.log" | awk '/^packets:/ { tx = $2; rx = $3 } END { print tx + 0, rx + 0 }'
}

# rtp_count NAME tx|rx: RTP packets UA NAME's host sent from / received on
# its RTP ports (nftables counters, since sip_ua).
rtp_count() {
	nsx "$(cat "$TMP/sip-$1/ns")" nft -j list counter inet "rtp_$1" "$2" |
		jq -er '.nftables[] | select(.counter) | .counter.packets'
}

# rtp_at_least NAME tx|rx N: true once UA NAME's count reached N.
rtp_at_least() {
	[ "$(rtp_count "$1" "$2")" -ge "$3" ]
}

# rtp_both_at_least NAME N: true once UA NAME sent and received N RTP packets.
rtp_both_at_least() {
	rtp_at_least "$1" tx "$2" && rtp_at_least "$1" rx "$2"
}

# sip_options NS URI [LOCAL_IP]: sipsak sends an OPTIONS to URI and prints
# the reply. Status (sipsak's): 0 a 200 came back, 1 another final reply,
# 2 local error, 3 no reply (after ~35 s) or an ICMP error.
sip_options() {
	local ns=$1 uri=$2 ip=${3:-}

	need sipsak
	nsx "$ns" timeout "$SIPSAK_TIMEOUT" sipsak -vv ${ip:+-H "$ip"} -s "$uri"
}

# sip_message NS URI LOCAL_IP TEXT: a MESSAGE with TEXT to URI, sent by
# sipsak from a request file (-f; its -M mode crashes, see the traps). Same
# output and status as sip_options.
sip_message() {
	local ns=$1 uri=$2 ip=$3 text=$4 f=$TMP/sip-message-$RANDOM.txt

	need sipsak
	{
		printf 'MESSAGE %s SIP/2.0\r\n' "$uri"
		printf 'Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK-%s;rport\r\n' "$ip" "$RANDOM$RANDOM"
		printf 'From: <sip:sipsak@%s>;tag=%s\r\n' "$ip" "$RANDOM"
		printf 'To: <%s>\r\nCall-ID: %s@%s\r\nCSeq: 1 MESSAGE\r\n' "$uri" "$RANDOM$RANDOM" "$ip"
		printf 'Max-Forwards: 70\r\nContent-Type: text/plain\r\n'
		printf 'Content-Length: %s\r\n\r\n%s' "${#text}" "$text"
	} >"$f"
	nsx "$ns" timeout "$SIPSAK_TIMEOUT" sipsak -vv -H "$ip" -f "$f" -s "$uri"
}

# ---------------------------------------------------------------- iperf

# iperf2_server NS [PORT [ARGS...]]: iperf 2 TCP server (default port 5001);
# waits for the socket. Log $TMP/iperf2-PORT.log.
iperf2_server() {
	local ns=$1 port=${2:-5001}

	shift $(($# < 2 ? $# : 2))
	need iperf
	bg "$ns" "$TMP/iperf2-$port.log" iperf -s -p "$port" "$@"
	_apps_wait_listen "iperf -s" "$BG_PID" "$TMP/iperf2-$port.log" "$ns" tcp "" "$port"
}

# iperf2_client NS HOST [ARGS...]: iperf 2 client for IPERF_TIME seconds,
# output to stdout and $TMP/iperf2-client.log. iperf 2.1.8's modes:
#   -d (dual), -r / --tradeoff: a second TCP connection FROM the server, from
#     an ephemeral port, TO the control connection's peer address (what the
#     server saw: a NAT's address) on the client's listen port, 5001 or -L;
#   --full-duplex, -R (reverse): the one client connection only.
# Fails (status 1) when iperf printed an ERROR (it exits 0 when the reverse
# connection of -d/-r fails).
iperf2_client() {
	local ns=$1 host=$2 out=$TMP/iperf2-client.log

	shift 2
	nsx "$ns" timeout $((IPERF_TIME + 120)) iperf -c "$host" -t "$IPERF_TIME" "$@" >"$out" 2>&1 || {
		cat "$out"
		return 1
	}
	cat "$out"
	! grep -Eq 'ERROR|failed' "$out"
}

# iperf3_server NS [PORT]: iperf3 server (default 5201, serves one test at a
# time, TCP and UDP); waits for the socket. Log $TMP/iperf3-PORT.log.
iperf3_server() {
	local ns=$1 port=${2:-5201}

	need iperf3
	bg "$ns" "$TMP/iperf3-$port.log" iperf3 -s -p "$port"
	_apps_wait_listen "iperf3 -s" "$BG_PID" "$TMP/iperf3-$port.log" "$ns" tcp "" "$port"
}

# iperf3_client NS HOST [ARGS...]: iperf3 -J for IPERF_TIME seconds into
# $TMP/iperf3.json (status: iperf3's, with its error on stderr). Every
# connection goes client -> server port: the control connection and each
# stream of -P N to TCP 5201, -u's datagrams to UDP 5201 (control on TCP),
# -R reverses the data on the same connections (--bidir: more streams, all
# opened by the client too).
iperf3_client() {
	local ns=$1 host=$2

	shift 2
	need iperf3 jq
	nsx "$ns" timeout $((IPERF_TIME + 120)) iperf3 -J -c "$host" -t "$IPERF_TIME" "$@" \
		>"$TMP/iperf3.json" || {
		jq -r '.error // empty' "$TMP/iperf3.json" >&2
		return 1
	}
}

# iperf3_mbit: the received rate of the last iperf3_client in Mbit/s (TCP:
# end.sum_received; UDP: end.sum).
iperf3_mbit() {
	jq -r '(.end.sum_received // .end.sum).bits_per_second / 1e6 | floor' "$TMP/iperf3.json"
}
