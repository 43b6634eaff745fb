#!/usr/bin/env bash
# Splices set up per second and SYN-to-established latency of the relay, per
# dataplane (xdp, tc), on the kernel this runs on: `vmtest/run.sh -s bench`
# (make vmtest-bench) runs it in the VM without and with the module shim.
# With the module loaded each mode runs twice: the kernel path (kfuncs), then
# `--handshake daemon` (SYNs through the ring buffer to the daemon), so the
# two are compared on the same boot. Works on the host too (no shim there).
#
# For each mode: topo_relay, `natsplice relay run`, then bench/nsperf.c's
# splicerate: COUNT splices (default 400), PAR at a time (16); each is a
# CTL_ADD, B connects to its relay port, A to its own, A sends one byte and B
# reads it. Prints one line per mode:
#   splicerate MODE handshake kernel|daemon per_sec N setup_p50_ms ...
#     est_p50_ms (A's SYN, the one that completes the pair, to A's connection
#     established) est_p99_ms punts (ring buffer records during the run)
# Exit status 0 when every mode set up every splice.
. "$(dirname "$0")/../test/integration/lib.sh"
COUNT=${COUNT:-400}
PAR=${PAR:-16}
MODES=${MODES:-xdp tc}

NSPERF=$(mktemp -d)/nsperf
trap 'rm -rf "${NSPERF%/nsperf}"' EXIT
gcc -O2 -Wall -std=gnu11 -I"$TOP/include" -o "$NSPERF" "$TOP/bench/nsperf.c" || exit 1
hs=daemon
[ -e /sys/kernel/btf/natsplice_kmod ] && hs=kernel

# one_mode MODE HANDSHAKE: a bed of its own (torn down when the subshell ends).
one_mode() {
	local mode=$1 want=$2 used p0 p1 line

	standalone nssplicerate
	topo_relay
	if [ "$want" = kernel ]; then
		start_relay "$mode"
	else
		start_relay "$mode" --handshake daemon
	fi
	used=daemon
	grep -q 'handshake: kernel shim' "$RELAY_LOG" && used=kernel
	if [ "$used" != "$want" ]; then
		echo "splicerate: wanted the $want path, the relay uses the $used path" >&2
		exit 1
	fi
	p0=$(stat_get punt)
	line=$("$NSPERF" splicerate -S "$SOCK" -A "/run/netns/$A" -B "/run/netns/$B" -R "$RELAY4" \
		-k "$COUNT" -p "$PAR" -w 60)
	p1=$(stat_get punt)
	# shellcheck disable=SC2086
	set -- $line
	# splices N failed N secs S per_sec R p50_ms X p99_ms Y est_p50_ms E est_p99_ms F
	echo "splicerate $mode handshake $used kernel $(uname -r) per_sec $8 setup_p50_ms ${10}" \
		"setup_p99_ms ${12} est_p50_ms ${14} est_p99_ms ${16} punts $((p1 - p0))" \
		"splices $2 failed $4"
	[ "$4" = 0 ] && [ "$2" = "$COUNT" ]
}

rc=0
for mode in $MODES; do
	# with the module: the kernel path, then the daemon's on the same boot
	[ "$hs" = kernel ] && { (one_mode "$mode" kernel) || rc=1; }
	(one_mode "$mode" daemon) || rc=1
done
exit "$rc"
