#!/usr/bin/env bash
# The kernel module shim (bpf/kmod/) in the vmtest VM: `test/run vmtest/test_shim.sh`.
# Needs a kernel with module support, so it is run by the vmtest matrix
# (vmtest/kernels); on a kernel without modules, or when natsplice_kmod is not
# loaded, the tests that need the module skip.
#
#   test_gated_loads_without_module  a program whose kfunc calls sit behind a
#       const volatile flag left at 0 loads without the module (unresolved
#       weak kfuncs are dead code): what lets the relay's objects ship the calls
#   test_kfuncs_in_btf         the module's BTF has every kfunc
#   test_probe_xdp_handshake   vmtest/kfunc_probe.bpf.c on the relay's eth0 (XDP):
#   test_probe_tc_handshake    (and TC) A and B connect to the relay's two
#       ports and both connections get established by the kernel's SYN-ACKs
#   test_relay_{xdp,tc}_kernel_handshake  natsplice relay run with the module:
#       a passive splice carries data both ways, and no SYN of it went through
#       the ring buffer
#   test_relay_handshake_daemon_option  the module loaded, but
#       --handshake daemon: the same splice through the daemon's path (both
#       SYNs in the ring buffer), so the fallback is tested on the same kernel
#   test_rmmod_refused_while_in_use  programs that call the kfuncs hold the
#       module: rmmod fails while they are loaded, works after (and the
#       module is loaded again for whatever runs next)
# shellcheck source=../test/integration/lib.sh
. "$(dirname "$0")/../test/integration/lib.sh"

KFUNCS="bpf_ns_xdp_syn bpf_ns_skb_syn bpf_ns_xdp_synack bpf_ns_skb_synack bpf_ns_splice_done"
PROBE_SRC=$TOP/vmtest/kfunc_probe.bpf.c
PROBE_PORT_A=40000 PROBE_PORT_B=40001

need_module() {
	[ -e /sys/kernel/btf/natsplice_kmod ] || skip "natsplice_kmod is not loaded"
}

# probe_build OUT [CFLAGS]: the probe object.
probe_build() {
	local out=$1

	shift
	need clang
	clang -O2 -g -target bpf -Wall "$@" -I"$TOP/include" -I"$TOP/bpf" \
		-I"/usr/include/$(uname -m)-linux-gnu" -c "$PROBE_SRC" -o "$out" ||
		fail "cannot build $PROBE_SRC"
}

# bpffs_tmp: a bpffs under $TMP (outside /sys, see lib.sh); sets BPFFS.
bpffs_tmp() {
	BPFFS=$TMP/bpffs
	mkdir -p "$BPFFS"
	mount -t bpf bpf "$BPFFS"
	echo "$BPFFS" >>"$TMP/mounts"
}

# probe_count NAME: a counter of the probe (enum probe_count order).
probe_count() {
	local i

	i=$(echo "WAIT PAIRED AGAIN SYN_ERR SYNACK_OK SYNACK_ERR DONE_ERR" | tr ' ' '\n' |
		grep -nx "$1" | cut -d: -f1)
	# (by name: libbpf turns the dot of $TMP into "_" in map pin paths)
	bpftool -j map lookup name probe_count key $((i - 1)) 0 0 0 |
		jq -r '.formatted.value'
}

# connect_ok NS PORT: a TCP connection from NS to the relay port gets established.
connect_ok() {
	nsx "$1" timeout 20 bash -c "exec 3<>/dev/tcp/$RELAY4/$2 && sleep 2"
}

test_gated_loads_without_module() {
	need bpftool
	bpffs_tmp
	probe_build "$TMP/gated.o" -DPROBE_GATED
	if [ -e /sys/kernel/btf/natsplice_kmod ]; then
		echo "(natsplice_kmod is loaded: the calls resolve; the load is still checked)"
	fi
	bpftool prog loadall "$TMP/gated.o" "$BPFFS/gated" >"$TMP/load.log" 2>&1 ||
		fail "a program with gated kfunc calls does not load: $(grep -v Warning "$TMP/load.log" | tail -n 3 | tr '\n' ' ')"
}

test_kfuncs_in_btf() {
	local f

	need bpftool
	need_module
	# (a file under /sys/kernel/btf/ gets vmlinux as its base by itself)
	bpftool btf dump file /sys/kernel/btf/natsplice_kmod >"$TMP/btf.txt" ||
		fail "cannot dump the module's BTF"
	for f in $KFUNCS; do
		grep -q "FUNC '$f'" "$TMP/btf.txt" || fail "no $f in the module's BTF"
	done
	grep -q 'natsplice_kmod: handshake kfuncs registered' <(dmesg) ||
		fail "the module did not report registering its kfuncs"
}

# probe_handshake xdp|tc: the probe on RELAY's eth0; A and B connect.
probe_handshake() {
	local hook=$1 pid_a rc=0

	need bpftool jq
	need_module
	topo_relay
	bpffs_tmp
	probe_build "$TMP/probe.o"
	nsx "$RELAY" bpftool prog loadall "$TMP/probe.o" "$BPFFS/probe" \
		>"$TMP/load.log" 2>&1 || fail "the probe does not load: $(grep -v Warning \
		"$TMP/load.log" | tail -n 3 | tr '\n' ' ')"
	if [ "$hook" = xdp ]; then
		nsx "$RELAY" bpftool net attach xdp pinned "$BPFFS/probe/probe_xdp" dev eth0
	else
		nsx "$RELAY" tc qdisc add dev eth0 clsact
		nsx "$RELAY" tc filter add dev eth0 ingress bpf da pinned "$BPFFS/probe/probe_tc"
	fi
	connect_ok "$A" "$PROBE_PORT_A" >"$TMP/a.log" 2>&1 &
	pid_a=$!
	wait_until 10 eval '[ "$(probe_count WAIT)" -ge 1 ]' ||
		fail "A's SYN did not reach the kfunc (WAIT $(probe_count WAIT), errors $(probe_count SYN_ERR))"
	connect_ok "$B" "$PROBE_PORT_B" || fail "B's connection was not established"
	wait "$pid_a" || rc=$?
	[ "$rc" = 0 ] || fail "A's connection was not established ($(cat "$TMP/a.log"))"
	for c in WAIT PAIRED AGAIN SYN_ERR SYNACK_OK SYNACK_ERR DONE_ERR; do
		printf '%s=%s ' "$c" "$(probe_count $c)"
	done
	echo
	[ "$(probe_count PAIRED)" = 1 ] || fail "paired $(probe_count PAIRED) times, not once"
	[ "$(probe_count SYNACK_OK)" -ge 2 ] || fail "only $(probe_count SYNACK_OK) SYN-ACKs sent"
	[ "$(probe_count SYNACK_ERR)" = 0 ] || fail "$(probe_count SYNACK_ERR) SYN-ACKs failed"
}

test_probe_xdp_handshake() { probe_handshake xdp; }
test_probe_tc_handshake() { probe_handshake tc; }

# relay_handshake MODE: the relay itself with the module. Once the loader
# uses it, a passive splice completes without a SYN in the ring buffer: the
# "punt" counter (records sent to the daemon) stays where it was.
relay_handshake() {
	local mode=$1 path=${2:-kernel} p0 pid_a

	need jq
	need_module
	topo_relay
	# (a long close grace: under emulation the transfer takes longer than
	# the default 10 s, and the splice must still be listed afterwards)
	if [ "$path" = kernel ]; then
		start_relay "$mode" --close-grace 600
		grep -qi 'handshake: kernel shim' "$RELAY_LOG" ||
			fail "the relay does not use the shim (no 'handshake: kernel shim' in its log)"
	else
		start_relay "$mode" --handshake daemon --close-grace 600
		grep -q 'handshake: this daemon (--handshake daemon)' "$RELAY_LOG" ||
			fail "--handshake daemon: the relay does not say it answers the SYNs itself"
	fi
	p0=$(stat_get punt)
	splice_add
	bg "$A" "$TMP/a.out" "$NSXFER" --timeout 30 --verbose --connect "$RELAY4:$PORT_A" \
		--send $((4 << 20)) --seed 1
	pid_a=$BG_PID
	bg "$B" "$TMP/b.out" "$NSXFER" --timeout 30 --verbose --connect "$RELAY4:$PORT_B" \
		--send $((4 << 20)) --seed 2
	xfer_wait "$pid_a" "$TMP/a.out" A
	xfer_wait "$BG_PID" "$TMP/b.out" B
	check_xfer "$TMP/a.out" "$TMP/b.out" $((4 << 20)) $((4 << 20))
	if [ "$path" = kernel ]; then
		[ "$(stat_get punt)" = "$p0" ] ||
			fail "$(($(stat_get punt) - p0)) packets went through the ring buffer"
		[ "$(stat_get handshake)" -ge 2 ] || fail "the handshake counter did not count both SYNs"
	else
		[ $(($(stat_get punt) - p0)) -ge 2 ] ||
			fail "--handshake daemon: the SYNs did not go through the ring buffer"
		[ "$(stat_get handshake)" = 0 ] || fail "--handshake daemon: the kernel answered a SYN"
	fi
	wait_until 10 splice_state_is "$SPLICE_ID" established closing closed ||
		fail "the daemon does not show the splice as established"
}

test_relay_xdp_kernel_handshake() { relay_handshake xdp; }
test_relay_tc_kernel_handshake() { relay_handshake tc; }
test_relay_handshake_daemon_option() { relay_handshake xdp daemon; }

test_rmmod_refused_while_in_use() {
	need bpftool
	need_module
	[ -f "${VMTEST_KMOD:-}" ] || skip "no VMTEST_KMOD to load the module again"
	bpffs_tmp
	probe_build "$TMP/probe.o"
	bpftool prog loadall "$TMP/probe.o" "$BPFFS/probe" >"$TMP/load.log" 2>&1 ||
		fail "the probe does not load"
	if rmmod natsplice_kmod 2>"$TMP/rmmod.log"; then
		insmod "$VMTEST_KMOD"
		fail "rmmod succeeded while programs calling its kfuncs were loaded"
	fi
	echo "rmmod while in use: $(cat "$TMP/rmmod.log")"
	rm -rf "$BPFFS/probe"
	wait_until 10 rmmod natsplice_kmod || fail "rmmod still refused after the programs went"
	insmod "$VMTEST_KMOD" || fail "insmod $VMTEST_KMOD failed again"
	[ -e /sys/kernel/btf/natsplice_kmod ] || fail "the module's BTF is back"
}

run_tests
