#!/usr/bin/env bash
# The test bed itself and the plain-forwarding baseline, without natsplice:
# if these fail, the relay tests cannot mean anything.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Every host reaches every other over the "Internet" bridge, IPv4 and IPv6,
# with the offload settings the relay tests rely on.
test_topology() {
	topo_relay
	local from to ip ns port=5000 pid

	for from in A B RELAY; do
		for to in A B RELAY; do
			[ "$from" != "$to" ] || continue
			for ip in $(eval echo "\$${to}4 \$${to}6"); do
				port=$((port + 1))
				bg "${!to}" "$TMP/l.out" "$NSXFER" --listen "$(hostport "$ip" $port)" \
					--send 1K --timeout 10
				pid=$BG_PID
				wait_for_line "$TMP/l.out" listening 10 "$pid" || fail "no listener"
				nsx "${!from}" "$NSXFER" --connect "$(hostport "$ip" $port)" --send 1K \
					--timeout 10 >/dev/null || fail "$from cannot reach $to at $ip"
				wait_pid "$pid" 10 || fail "$to: listener failed"
			done
		done
	done
	for ns in "$A" "$B" "$RELAY"; do
		[[ $(nsx "$ns" ethtool -k eth0) == *"tx-checksumming: off"* ]] ||
			fail "${ns#"$NSP"}: TX checksum offload is still on"
	done
	[[ $(ip -n "$INET" link show vr) == *"prog/xdp"* ]] ||
		fail "no XDP_PASS program on the relay's bridge port"
}

# The bpffs trap: a bpffs mounted under $TMP is the same one inside every
# `ip netns exec` (a pin made in one invocation is seen by the next), unlike
# /sys/fs/bpf there.
test_bpffs_survives_netns_exec() {
	need bpftool
	topo_relay
	mkdir -p "$TMP/bpffs"
	mount -t bpf bpf "$TMP/bpffs"
	echo "$TMP/bpffs" >>"$TMP/mounts"
	nsx "$RELAY" bpftool map create "$TMP/bpffs/probe" type array key 4 value 4 \
		entries 1 name probe
	nsx "$RELAY" bpftool map show pinned "$TMP/bpffs/probe" >/dev/null ||
		fail "a pin under \$TMP did not survive between ip netns exec calls"
}

# Plain forwarding baseline: A -> RELAY (a router) -> B carries a 200 MiB
# transfer each way intact, and it really goes through RELAY.
test_baseline_forward() {
	topo_relay
	topo_forward
	local size=200M bytes rx0 rx1 pid_a pid_b

	[[ $(nsx "$A" ip route get "$B4") == *"via $RELAY4"* ]] || fail "A does not route via RELAY"
	rx0=$(dev_counter "$RELAY" eth0 rx_bytes)
	bg "$B" "$TMP/b.out" "$NSXFER" --listen "$B4:5000" --send "$size" --seed 2 --verbose \
		--timeout 60
	pid_b=$BG_PID
	wait_for_line "$TMP/b.out" listening 30 "$pid_b" || fail "nsxfer did not listen"
	bg "$A" "$TMP/a.out" "$NSXFER" --connect "$B4:5000" --send "$size" --seed 1 --verbose \
		--timeout 60
	pid_a=$BG_PID
	xfer_wait "$pid_a" "$TMP/a.out" A
	xfer_wait "$pid_b" "$TMP/b.out" B
	bytes=$((200 << 20))
	check_xfer "$TMP/a.out" "$TMP/b.out" "$bytes" "$bytes"
	rx1=$(dev_counter "$RELAY" eth0 rx_bytes)
	[ $((rx1 - rx0)) -ge $((2 * bytes)) ] ||
		fail "RELAY's eth0 received only $((rx1 - rx0)) bytes: the baseline bypassed it"
	grep -h 'Mbit/s' "$TMP/a.out"
}

run_tests
