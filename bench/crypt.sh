#!/bin/bash
# `make bench-crypt`: what encrypting a tunnel end to end costs (lib/seal.h),
# in one run on sys.sh's two-NAT bed: the same client on HB (behind NATB)
# downloads the same file from the same nginx on HA (behind NATA), as
# bench/tunnels.sh's bulk figure does (curl, one connection), CRYPT_N times
# CRYPT_MB MiB per case:
#   portfwd      HB -> NATA4:8080, nftables DNAT on NATA (the limit)
#   plain        natsplice tunnel (relay, CRYPT_RELAY), the service encrypt: false
#   sealed-user  encrypted, ktls: off on both agents (TLS records in user space)
#   sealed       encrypted, default (ktls: auto): kTLS where the kernel has
#                it (the 6.1 VM), else the same as sealed-user
#   ssh-L        `ssh -N -L` on HB to sshd on HA through the same port forward
#                on NATA (port 22), ssh's default cipher
#   ssh-L-gcm    the same with -c aes128-gcm@openssh.com (the tunnels' cipher)
# Per case: throughput (Mbit/s: all bytes over all the downloads' time), CPU
# seconds per GB of the whole machine (bench/cpu.sh: busy jiffies minus the
# other users' processes; and minus an idle baseline), the hops' own
# user+sys per GB (both agents; ssh and sshd), and the line of the agents'
# logs that proves which sealing ran (a row whose sealing is not the one
# expected on this kernel is N/A). Prints a table; writes CRYPT_OUT (default
# bench/results/<stamp>-crypt.csv). bench/README.md says how to read it.
#
# Environment: CRYPT_MB (256), CRYPT_N (3), CASES (the rows, in order),
# CRYPT_RELAY (xdp or tc), CRYPT_OUT. Exit status 0 when the harness ran to
# the end, whatever the figures; 77 when a tool is missing.
set -u
BENCH=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../test/integration/lib.sh
. "$BENCH/../test/integration/lib.sh"
# shellcheck source=../test/integration/sys.sh
. "$BENCH/../test/integration/sys.sh"
# shellcheck source=../test/integration/apps.sh
. "$BENCH/../test/integration/apps.sh"
# shellcheck source=cpu.sh
. "$BENCH/cpu.sh"
# shellcheck source=tunnels.sh
. "$BENCH/tunnels.sh"

CRYPT_MB=${CRYPT_MB:-256}
CRYPT_N=${CRYPT_N:-3}
CASES=${CASES:-portfwd plain sealed-user sealed ssh-L ssh-L-gcm}
CRYPT_RELAY=${CRYPT_RELAY:-xdp}
CRYPT_OUT=${CRYPT_OUT:-$BENCH/results/$(date +%Y%m%d-%H%M%S)-crypt.csv}
SEAL_LINE="encrypted end to end"
declare -A SSH_PID

if [ "$(id -u)" != 0 ]; then
	echo "bench/crypt.sh: needs root (network namespaces, BPF)" >&2
	exit 1
fi
standalone bench-crypt

# crypt_ep CASE: host:port where HB's curl connects.
crypt_ep() {
	case "$1" in
	portfwd) echo "$NATA4:8080" ;;
	plain | sealed-user | sealed) echo "127.0.0.1:18080" ;;
	ssh-L) echo "127.0.0.1:18095" ;;
	ssh-L-gcm) echo "127.0.0.1:18096" ;;
	*) fail "unknown case $1 (cases: portfwd plain sealed-user sealed ssh-L ssh-L-gcm)" ;;
	esac
}

# crypt_ssh PORT [ssh options]: `ssh -N -L 127.0.0.1:PORT:127.0.0.1:8080` on
# HB to sshd on HA, through NATA's port forward; its pid in SSH_PID[PORT],
# its log in $TMP/ssh-PORT.log (-v: the negotiated cipher).
crypt_ssh() {
	local port=$1

	shift
	bg "$HB" "$TMP/ssh-$port.log" ssh -v -N -i "$TMP/ssh/user" -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o ExitOnForwardFailure=yes -o ServerAliveInterval=30 \
		"$@" -L "127.0.0.1:$port:127.0.0.1:8080" "root@$NATA4"
	wait_until 30 nsx "$HB" sh -c "ss -ltn | grep -q 127.0.0.1:$port" ||
		fail "ssh -L does not forward: $(tail -n 2 "$TMP/ssh-$port.log")"
	SSH_PID[$port]=$BG_PID
}

# crypt_agents CASE: the provider (HA) and the subscriber (HB) for CASE,
# started afresh (each case's logs hold only its own tunnels).
crypt_agents() {
	local ktls="" enc=""

	case "$1" in
	plain) enc=", encrypt: false" ;;
	sealed-user) ktls="ktls: off" ;;
	esac
	start_agent "$HA" home-nas nas-secret "$ktls
publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp$enc }"
	PROV_PID=$AGENT_PID
	start_agent "$HB" laptop laptop-secret "$ktls
subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp }"
	SUB_PID=$AGENT_PID
	wait_until 20 nsx "$HB" sh -c "ss -ltn | grep -q 127.0.0.1:18080" || fail "subscriber does not listen"
}

# crypt_hops CASE EP: the processes that carry the case's hops.
crypt_hops() {
	local p

	case "$1" in
	plain | sealed-user | sealed) echo "$PROV_PID $SUB_PID" ;;
	ssh-L*)
		echo "${SSH_PID[${2#*:}]}"
		for p in $(ip netns pids "$HA"); do
			[ "$(cat "/proc/$p/comm" 2>/dev/null)" = sshd ] && echo "$p"
		done
		;;
	esac
	return 0
}

# crypt_check CASE EP: which sealing ran, from the logs; sets MODE (what ran),
# CHECKED (the line that shows it) and OK (1: the one expected here).
crypt_check() {
	local logs=("$TMP/agent-home-nas.log" "$TMP/agent-laptop.log") want line n l

	MODE=- CHECKED=- OK=1
	case "$1" in
	plain)
		n=$(cat "${logs[@]}" | grep -c "$SEAL_LINE" || true)
		l=$(broker_api /api/v1/services | jq -r '.[] | select(.name == "web") | .encrypt' 2>/dev/null || true)
		MODE="none (encrypt: false)"
		CHECKED="$n '$SEAL_LINE' lines in the agents' logs; broker: encrypt $l"
		[ "$n" = 0 ] && [ "$l" = false ] || OK=0
		;;
	sealed-user | sealed)
		want="in user space (ktls: off)"
		[ "$1" = sealed ] && want="in user space (this kernel has no kTLS)"
		[ "$1" = sealed ] && [ "$KTLS" = yes ] && want="by the kernel (kTLS)"
		line=$(grep -h -m1 "$SEAL_LINE" "${logs[0]}" || true)
		MODE=$(sed -n "s/.*$SEAL_LINE, //p" <<<"$line")
		CHECKED=${line:-"no '$SEAL_LINE' line in the provider's log"}
		# every tunnel of both agents sealed the expected way, and some did
		for l in "${logs[@]}"; do
			grep -q "$SEAL_LINE, $want" "$l" || OK=0
			! grep "$SEAL_LINE" "$l" | grep -vqF "$want" || OK=0
		done
		[ "$OK" = 1 ] || MODE="${MODE:-none} (expected: $want)"
		;;
	ssh-L*)
		line=$(grep -m1 'kex: server->client cipher:' "$TMP/ssh-${2#*:}.log" || true)
		MODE=$(awk '{ for (i = 1; i < NF; i++) if ($i == "cipher:") print $(i + 1) }' <<<"$line")
		CHECKED=${line:-"no cipher line in ssh -v's log"}
		[ -n "$MODE" ] || OK=0
		;;
	esac
	return 0
}

# crypt_case CASE: CRYPT_N downloads; appends one tab-separated row to
# $TMP/rows: case mbit runs cpu idlebase hops bytes mode ok checked path note.
crypt_case() {
	local c=$1 ep out=$TMP/curl-$1.out pids c0 c1 bytes secs mbit runs cpu hops path=- note=""
	local hz

	ep=$(crypt_ep "$c")
	echo "[crypt $((SECONDS - T0))s] $c: ${CRYPT_N} x $CRYPT_MB MiB from $ep"
	case "$c" in plain | sealed-user | sealed) crypt_agents "$c" ;; esac
	if ! nsx "$HB" curl -fsS --max-time 60 -o /dev/null "http://$ep/small" 2>"$out"; then
		printf '%s\tNA\t-\tNA\tNA\tNA\t0\t-\t0\t-\t-\t%s\n' "$c" "warm-up request failed: $(tail -n 1 "$out")" >>"$TMP/rows"
		crypt_stop "$c"
		return 0
	fi
	case "$c" in
	plain | sealed-user | sealed)
		path=$(broker_api /api/v1/sessions | jq -r 'last | .path' 2>/dev/null || echo '?') ;;
	ssh-L*) path="port forward (sshd on HA)" ;;
	portfwd) path="port forward" ;;
	esac
	hz=$(getconf CLK_TCK)
	pids=$(crypt_hops "$c" "$ep")
	# shellcheck disable=SC2086
	c0=$(proc_cpu $pids)
	cpu_snap "$TMP/cpu0"
	: >"$out"
	for _ in $(seq "$CRYPT_N"); do
		nsx "$HB" curl -fsS --max-time 600 -o /dev/null -w '%{size_download} %{time_total}\n' \
			"http://$ep/big" >>"$out" 2>&1 || true
	done
	cpu_snap "$TMP/cpu1"
	# shellcheck disable=SC2086
	c1=$(proc_cpu $pids)
	crypt_check "$c" "$ep"
	bytes=$(awk 'NF == 2 { s += $1 } END { printf "%.0f", s }' "$out")
	secs=$(awk 'NF == 2 { s += $2 } END { printf "%.6f", s }' "$out")
	runs=$(awk 'NF == 2 && $2 > 0 { printf "%s%.0f", n++ ? " " : "", $1 * 8 / $2 / 1e6 }' "$out")
	if [ "$bytes" -lt $((CRYPT_N * (CRYPT_MB << 20))) ]; then
		printf '%s\tNA\t%s\tNA\tNA\tNA\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "${runs:--}" "$bytes" "$MODE" \
			"$OK" "$CHECKED" "$path" "downloads short: $(grep -v '^[0-9]* [0-9.]*$' "$out" | tail -n 1)" >>"$TMP/rows"
		crypt_stop "$c"
		return 0
	fi
	mbit=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.0f", b * 8 / s / 1e6 }')
	cpu=$(cpu_per_gb "$TMP/cpu0" "$TMP/cpu1" "$bytes")
	hops=-
	[ -z "$pids" ] || hops=$(awk -v t="$((c1 - c0))" -v hz="$hz" -v b="$bytes" \
		'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')
	if [ "$c" = sealed ] && [ "$KTLS" = yes ]; then
		note="tls_stat HA: $(nsx "$HA" awk '/^Tls(Tx|Rx)(Sw|Device) / { printf "%s %s ", $1, $2 }' /proc/net/tls_stat 2>/dev/null)"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$mbit" "$runs" "${cpu% *}" \
		"${cpu#* }" "$hops" "$bytes" "$MODE" "$OK" "$CHECKED" "$path" "$note" >>"$TMP/rows"
	crypt_stop "$c"
}

# crypt_stop CASE: the case's agents stop (the next case starts its own).
crypt_stop() {
	case "$1" in
	plain | sealed-user | sealed)
		stop_agent_named laptop
		stop_agent_named home-nas
		;;
	esac
	return 0
}

# crypt_report: the table on stdout, the CSV in CRYPT_OUT. A row whose
# sealing is not the expected one keeps its figures in the note only.
crypt_report() {
	mkdir -p "$(dirname "$CRYPT_OUT")"
	awk -F '\t' -v out="$CRYPT_OUT" -v kern="$(uname -r)" '
	function q(s) { gsub(/"/, "\"\"", s); return "\"" s "\"" }
	function ratio(a, b) { return (a != "NA" && a != "-" && b > 0) ? sprintf("%.2f", a / b) : "-" }
	{
		n++; c[n] = $1; mb[n] = $2; runs[n] = $3; cpu[n] = $4; idle[n] = $5; hop[n] = $6
		bytes[n] = $7; mode[n] = $8; ok[n] = $9; chk[n] = $10; path[n] = $11; note[n] = $12
		if (ok[n] == 0 && mb[n] != "NA") {
			note[n] = sprintf("not the expected sealing; measured %s Mbit/s %s s/GB. %s", mb[n], cpu[n], note[n])
			mb[n] = cpu[n] = idle[n] = hop[n] = "NA"
		}
		if ($1 == "plain") { pmb = mb[n]; pcpu = cpu[n] }
	}
	END {
		print "case,mbit_s,mbit_s_runs,cpu_s_per_gb,cpu_s_per_gb_idlebase,hops_cpu_s_per_gb," \
			"mbit_vs_plain,cpu_vs_plain,bytes,sealing,checked,path,kernel,note" >out
		f = "%-12s %8s %-12s %9s %9s %9s %7s %7s  %s\n"
		printf f, "case", "Mbit/s", "(runs)", "CPU s/GB", "idle-base", "hops s/GB", "Mb/pl", "CPU/pl", "sealing"
		for (i = 1; i <= n; i++) {
			printf f, c[i], mb[i], runs[i], cpu[i], idle[i], hop[i], ratio(mb[i], pmb), ratio(cpu[i], pcpu), mode[i]
			print q(c[i]) "," mb[i] "," q(runs[i]) "," cpu[i] "," idle[i] "," hop[i] "," ratio(mb[i], pmb) "," \
				ratio(cpu[i], pcpu) "," bytes[i] "," q(mode[i]) "," q(chk[i]) "," q(path[i]) "," q(kern) "," q(note[i]) >out
		}
		print ""
		print "checked per case (the agents'\'' logs, ssh -v):"
		for (i = 1; i <= n; i++)
			printf "  %-12s %s%s%s\n", c[i], (ok[i] == 0 ? "N/A: " : ""), chk[i], (note[i] != "" ? "  [" note[i] "]" : "")
	}' "$TMP/rows"
	echo "csv: $CRYPT_OUT"
}

T0=$SECONDS
need_system
need nginx ssh gcc
[ -x /usr/sbin/sshd ] || skip "needs /usr/sbin/sshd (openssh-server)"
NSPERF=$TMP/nsperf
gcc -O2 -Wall -std=gnu11 -I"$TOP/include" -o "$NSPERF" "$BENCH/nsperf.c" || fail "cannot build bench/nsperf.c"
# kTLS: the tls ULP registered (the module loads on first use, or now)
modprobe -q tls 2>/dev/null || true
KTLS=no
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && KTLS=yes
# shellcheck disable=SC2034 # read by tun_nginx
TUN_BULK_MB=$CRYPT_MB
: >"$TMP/rows"

topo_nat
port_forward "$NATA" tcp 8080 "$HA4"
port_forward "$NATA" tcp 22 "$HA4"
start_broker
start_sys_relay "$CRYPT_RELAY"
tun_nginx
case " $CASES " in
*" ssh-L"*)
	sshd_start "$HA" 0.0.0.0
	crypt_ssh 18095
	crypt_ssh 18096 -c aes128-gcm@openssh.com
	;;
esac
IDLE=$(idle_rate)
echo "natsplice bench-crypt: $(git -C "$TOP" describe --always --dirty 2>/dev/null || echo '?'), kernel $(uname -r) (kTLS: $KTLS), $(nproc) CPUs, relay $CRYPT_RELAY, $CRYPT_N x $CRYPT_MB MiB per case, idle ${IDLE} ticks/s"
for c in $CASES; do crypt_case "$c"; done
echo
crypt_report
