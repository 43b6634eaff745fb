#!/usr/bin/env bash
# make demo: two hosts talking through a spliced relay, narrated.
#
# Builds the namespace test bed (A, B and a relay on one "Internet" bridge),
# starts the relay in XDP mode, asks it for a splice, and lets A and B - both
# only opening connections, neither listening - exchange data through it.
# Everything is torn down at the end, also on failure or Ctrl-C.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MODE=${MODE:-xdp}
SIZE_A=${SIZE_A:-64M}
SIZE_B=${SIZE_B:-16M}

if [ -t 1 ]; then
	B_ON=$'\e[1m' B_OFF=$'\e[0m'
else
	B_ON="" B_OFF=""
fi

say() {
	printf '\n%s==> %s%s\n' "$B_ON" "$*" "$B_OFF"
}

# show CMD...: print a command as typed, then run it indented.
show() {
	printf '    $ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/      /'
}

# natsplice as typed on the relay host (the real call adds -S for our socket).
natsplice() {
	nsc "$@"
}

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (network namespaces, XDP); try: sudo make demo" >&2
	exit 1
fi
for c in jq ethtool; do
	command -v "$c" >/dev/null || { echo "demo: needs $c (make deps-test)" >&2; exit 1; }
done
for f in "$NATSPLICE" "$NSXFER"; do
	[ -x "$f" ] || { echo "demo: $f is not built; run make and make -C test" >&2; exit 1; }
done

standalone nsdemo

say "Building the test bed: four network namespaces on this machine"
topo_relay
cat <<EOF
    inet   a bridge, br0, standing for the Internet
    A      $A4  $A6   a user host (think: behind a NAT)
    B      $B4  $B6   another user host
    RELAY  $RELAY4 $RELAY6  the natsplice relay
    Nothing leaves this machine. TX checksum offload is off on the veths (XDP
    cannot finish partial checksums), and the bridge port facing the relay
    runs an XDP_PASS program so frames the relay sends with XDP_TX are
    delivered at once (a veth quirk; a real NIC needs neither).
EOF

say "Starting the relay in $MODE mode on RELAY's eth0"
start_relay "$MODE"
grep -h ready "$RELAY_LOG" | sed 's/^/    /'
show natsplice dev show

say "Asking the relay for a splice (the broker would do this)"
splice_add >/dev/null
show natsplice splice show "$SPLICE_ID"
cat <<EOF
    Splice $SPLICE_ID: A connects to $RELAY4:$PORT_A, B connects to $RELAY4:$PORT_B.
    Both only connect; neither listens. The relay holds A's SYN until B's SYN
    arrives, then answers each with a SYN-ACK built from the other's SYN, so
    the two TCP connections become one: from then on the $MODE program only
    rewrites addresses, ports and checksums - no byte goes through user space.
EOF

say "Counters before"
show natsplice splice list
show natsplice stats
tx0=$(($(stat_get tx) + $(stat_get redirect)))

say "A sends $SIZE_A to B while B sends $SIZE_B to A, through the splice"
start=${EPOCHREALTIME/./}
bg "$A" "$TMP/a.out" "$NSXFER" --connect "$RELAY4:$PORT_A" --send "$SIZE_A" --seed 1 --verbose
pid_a=$BG_PID
bg "$B" "$TMP/b.out" "$NSXFER" --connect "$RELAY4:$PORT_B" --send "$SIZE_B" --seed 2 --verbose
pid_b=$BG_PID
wait_pid "$pid_a" 600 || fail "A's transfer failed: $(tail -n 1 "$TMP/a.out")"
wait_pid "$pid_b" 600 || fail "B's transfer failed: $(tail -n 1 "$TMP/b.out")"
ms=$(((${EPOCHREALTIME/./} - start) / 1000))
for who in A B; do
	out=$TMP/${who,,}.out
	printf '    %s sent %s bytes (sha256 %.16s...), received %s bytes (sha256 %.16s...)\n' \
		"$who" "$(xfer_field "$out" sent)" "$(xfer_field "$out" sent_sha)" \
		"$(xfer_field "$out" recv)" "$(xfer_field "$out" recv_sha)"
done
[ "$(xfer_field "$TMP/a.out" sent_sha)" = "$(xfer_field "$TMP/b.out" recv_sha)" ] ||
	fail "B did not receive what A sent"
[ "$(xfer_field "$TMP/b.out" sent_sha)" = "$(xfer_field "$TMP/a.out" recv_sha)" ] ||
	fail "A did not receive what B sent"
echo "    sha256 match both ways: every byte arrived intact ($((ms / 1000)).$(printf %03d $((ms % 1000))) s)."

say "Counters after"
show natsplice splice list
show natsplice stats
tx1=$(($(stat_get tx) + $(stat_get redirect)))
echo "    The dataplane forwarded $((tx1 - tx0)) packets for this splice; the relay's"
echo "    TCP stack never saw them."
[ "$tx1" -gt "$tx0" ] || fail "the dataplane counters did not move"

say "Done: tearing the namespaces down"
