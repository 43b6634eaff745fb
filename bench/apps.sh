#!/bin/bash
# `make bench-apps`: what real applications of issue 11 get through
# natsplice between two NATs, against a plain port forward through the same
# NATs in the same run (sys.sh's bed: server on HA behind NATA, client on HB
# behind NATB; the relay in TC mode):
#   ftp   vsftpd on HA's LAN address, curl on HB; RUNS downloads and uploads
#         of SIZE_MB each way, EPSV. natsplice: alg: ftp on the relay path;
#         portfwd: DNAT of 2121 and the passive range on NATA.
# Prints one line per figure: "name path value unit" (median of RUNS).
set -u
BENCH=$(cd "$(dirname "$0")" && pwd)
. "$BENCH/../test/integration/lib.sh"
. "$BENCH/../test/integration/sys.sh"
. "$BENCH/../test/integration/apps.sh"

RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-50}

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

need_system
topo_nat
start_broker
start_sys_relay tc
mkdir -p "$TMP/ftproot"
random_file "$TMP/ftproot/big.bin" $((SIZE_MB << 20))
chmod 0644 "$TMP/ftproot/big.bin"
ftp_server "$HA" "$HA4" 2121 "$TMP/ftproot"
start_agent "$HA" home-nas nas-secret "publish:
  - { name: ftp, target: $HA4:2121, alg: ftp }"
start_agent "$HB" laptop laptop-secret "subscribe:
  - { service: home-nas/ftp, listen: $HB4:2121, pool: 0 }"
port_forward "$NATA" tcp 2121 "$HA4"
port_forward "$NATA" tcp 30000-30099 "$HA4"

ftp_figures portfwd "ftp://$NATA4:2121"
ftp_figures natsplice "ftp://$HB4:2121"
