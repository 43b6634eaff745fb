#!/bin/bash
# `make bench-apps`: what real applications of issue 11 get through
# natsplice between two NATs, against a plain port forward through the same
# NATs in the same run (sys.sh's bed: server on HA behind NATA, client on HB
# behind NATB; the relay in TC mode):
#   ftp   vsftpd on HA's LAN address, curl on HB; RUNS downloads and uploads
#         of SIZE_MB each way, EPSV. natsplice: alg: ftp on the relay path;
#         portfwd: DNAT of 2121 and the passive range on NATA.
#   udp   iperf3 -u at each of UDP_RATES with 1 KiB datagrams for UDP_T seconds: the
#         loss the server saw (natsplice: a multi-connection service, TCP
#         5201 for iperf3's control connection and 5201/udp, a UDP flow of
#         the session, as UDP, on the relay path); and UDP round trips
#         (nsudp --rtt, RTT_N of them, 64 bytes) to an echo server, p50 and
#         p99 (a UDP service). portfwd: DNAT of the same ports on NATA.
# Prints one line per figure: "name path value unit" (median of RUNS).
set -u
BENCH=$(cd "$(dirname "$0")" && pwd)
. "$BENCH/../test/integration/lib.sh"
. "$BENCH/../test/integration/sys.sh"
. "$BENCH/../test/integration/apps.sh"

RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-50}
UDP_RATES=${UDP_RATES:-200M 1G}
UDP_T=${UDP_T:-5}
RTT_N=${RTT_N:-2000}

standalone bench-apps

median() {
	sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "n/a") }'
}

# ftp_figures PATH URL: RUNS downloads and uploads, the median rates.
ftp_figures() {
	local path=$1 url=$2 i down=() up=()

	for i in $(seq 1 "$RUNS"); do
		ftp_get "$HB" "$url/big.bin" "$TMP/got.bin" epsv || fail "$path: download failed"
		cmp -s "$TMP/got.bin" "$TMP/ftproot/big.bin" || fail "$path: download differs"
		down+=("$(ftp_rate_mbit)")
		ftp_put "$HB" "$TMP/got.bin" "$url/upload/up-$path-$i.bin" epsv ||
			fail "$path: upload failed"
		up+=("$(ftp_rate_mbit)")
	done
	echo "ftp-download $path $(printf '%s\n' "${down[@]}" | median) Mbit/s"
	echo "ftp-upload $path $(printf '%s\n' "${up[@]}" | median) Mbit/s"
}

# udp_figures PATH HOST ECHO_PORT: loss at each of UDP_RATES, round trips.
udp_figures() {
	local path=$1 host=$2 i rate loss out

	for rate in $UDP_RATES; do
		loss=()
		for i in $(seq 1 "$RUNS"); do
			out=$(nsx "$HB" timeout $((UDP_T + 60)) iperf3 -c "$host" -p 5201 -u \
				-b "$rate" -l 1024 -t "$UDP_T" -J 2>&1) ||
				fail "$path: iperf3 -u failed: $out"
			loss+=("$(jq -r '.end.sum.lost_percent' <<<"$out")")
		done
		echo "udp-loss-$rate $path $(printf '%s\n' "${loss[@]}" | median) %"
	done
	out=$(nsx "$HB" "$NSUDP" --relay "$host:$3" --rtt --send "$RTT_N" --size 64 \
		--max-loss 5 2>&1) || fail "$path: nsudp --rtt failed: $out"
	echo "udp-rtt-p50 $path $(awk '/^rtt_us/ { print $3 }' <<<"$out") us"
	echo "udp-rtt-p99 $path $(awk '/^rtt_us/ { print $5 }' <<<"$out") us"
}

need_system
topo_nat
start_broker
start_sys_relay tc
mkdir -p "$TMP/ftproot"
random_file "$TMP/ftproot/big.bin" $((SIZE_MB << 20))
chmod 0644 "$TMP/ftproot/big.bin"
ftp_server "$HA" "$HA4" 2121 "$TMP/ftproot"
bg "$HA" "$TMP/iperf3.log" iperf3 -s -p 5201
bg "$HA" "$TMP/echo.log" "$NSUDP" --echo --bind 0.0.0.0:9000 --idle 3600 --timeout 3600
start_agent "$HA" home-nas nas-secret "publish:
  - { name: ftp, target: $HA4:2121, alg: ftp }
  - { name: iperf3, target: 127.0.0.1:5201, ports: [\"5201/udp\"] }
  - { name: echo, target: 127.0.0.1:9000, proto: udp }"
start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: home-nas/ftp, listen: $HB4:2121, pool: 0, alg: ftp }
  - { service: home-nas/iperf3, listen: 127.0.0.1:5201, ports: [\"5201/udp\"], pool: 0 }
  - { service: home-nas/echo, listen: 127.0.0.1:19000, proto: udp }"
port_forward "$NATA" tcp 2121 "$HA4"
port_forward "$NATA" tcp 30000-30099 "$HA4"
port_forward "$NATA" both 5201 "$HA4"
port_forward "$NATA" udp 9000 "$HA4"

ftp_figures portfwd "ftp://$NATA4:2121"
ftp_figures natsplice "ftp://$HB4:2121"
udp_figures portfwd "$NATA4" 9000
udp_figures natsplice 127.0.0.1 19000
