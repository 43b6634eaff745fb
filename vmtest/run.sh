#!/usr/bin/env bash
# Run the tests inside a VM on a Debian kernel: qemu (TCG), the host's / shared
# read-only over 9p as the guest's root (the host is Debian 12: its binaries
# run on 6.1), a tmpfs overlay on top, and a writable 9p scratch directory per
# run that brings back the guest's status.
#
#   vmtest/run.sh [-s SET] [-k PACKAGE] [--shim on|off] [-t SECONDS] [-- COMMAND...]
#   vmtest/run.sh -l          list the matrix (vmtest/kernels)
#
#   -s SET       the matrix lines to run: full (default) or smoke
#   -k PACKAGE   only the lines of this image package
#   --shim X     only the lines with shim X
#   -- COMMAND   run COMMAND instead of the lines' commands (on each selected
#                kernel and shim setting), e.g. -- test/run bpf
#   -t SECONDS   kill a VM that runs longer (default: full 14400, smoke 600)
#
# Environment: BOOT_TIMEOUT (s until the guest runs its command, default 180),
# VM_MEM (MiB, 2048), VM_CPUS (2), VM_DIR (build/vm); TEST_FILTER, VERBOSE,
# BIG, TEST_TIMEOUT, READY_TIMEOUT and KEEP_TMP pass through to the guest.
#
# Expects a built tree (make all, make -C test); `make vmtest` does that first.
# Prints the guest's console as it goes, then one line per run, and exits 0
# iff every run's guest wrote the status "passed" and its console shows no
# kernel warning, oops or panic. A guest that does not reach its command
# within BOOT_TIMEOUT, or runs past -t, is killed and the reason printed. Per
# run, build/vm/runs/NAME/ keeps console.log, guest.log, dmesg.log and status.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
export VM_DIR=${VM_DIR:-$TOP/build/vm}
KERNEL=$TOP/vmtest/kernel.sh
MATRIX=$TOP/vmtest/kernels
VM_MEM=${VM_MEM:-2048}
VM_CPUS=${VM_CPUS:-2}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-180}
PASS_ENV="TEST_FILTER VERBOSE BIG TEST_TIMEOUT READY_TIMEOUT KEEP_TMP"
# What the initramfs carries: enough to mount the host's / and the overlay.
INITRD_MODULES="virtio_pci 9pnet_virtio 9p overlay"

# Kernel messages that fail a run (printk time stamp, then the message).
KERNEL_TROUBLE='^\[ *[0-9]+\.[0-9]+\] (WARNING: CPU|BUG: |Oops|Kernel panic|general protection fault)'
QPID=""
trap '[ -z "$QPID" ] || kill "$QPID" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

say() { printf '  %-4s %s\n' "$1" "$2"; }
die() { echo "vmtest: $*" >&2; exit 1; }

usage() {
	sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

set_name=full pkg_only="" shim_only="" timeout="" cmd_override=""
while [ $# -gt 0 ]; do
	case "$1" in
	-s) set_name=${2:?-s needs a set}; shift ;;
	-k) pkg_only=${2:?-k needs a package}; shift ;;
	--shim) shim_only=${2:?--shim needs on or off}; shift ;;
	-t) timeout=${2:?-t needs seconds}; shift ;;
	-l) grep -v '^#' "$MATRIX" | grep -v '^[[:space:]]*$'; exit 0 ;;
	-h | --help) usage ;;
	--) shift; cmd_override="$*"; break ;;
	*) echo "vmtest: unknown argument '$1'" >&2; usage 2 ;;
	esac
	shift
done
case "$set_name" in
smoke) timeout=${timeout:-600} ;;
*) timeout=${timeout:-14400} ;;
esac

# ------------------------------------------------------------------ setup

[ "$(uname -m)" = x86_64 ] || die "needs an x86_64 host (qemu-system-x86_64 with TCG)"
"$KERNEL" deps qemu-system-x86 busybox-static cpio kmod xz-utils || exit 1
for f in ctl/natsplice test/bpf/test_relay test/tools/nsxfer; do
	[ -x "$TOP/$f" ] || die "$f is not built: run make && make -C test (or make vmtest)"
done

# initrd ABI IMAGE_DIR: the busybox initramfs for that kernel; prints its path.
initrd() {
	local abi=$1 img=$2 out=$VM_DIR/$1/initrd.gz dir moddep m line dep f
	local -a order=()

	if [ -f "$out" ] && [ "$out" -nt "$TOP/vmtest/init" ] && [ "$out" -nt "$0" ]; then
		echo "$out"
		return
	fi
	dir=$VM_DIR/$abi/initrd
	rm -rf "$dir"
	mkdir -p "$dir/bin" "$dir/modules" "$dir/proc" "$dir/sys" "$dir/dev"
	cp /bin/busybox "$dir/bin/busybox"
	for f in sh mount insmod mkdir switch_root cat echo sleep uname; do
		ln -s busybox "$dir/bin/$f"
	done
	cp "$TOP/vmtest/init" "$dir/init"
	chmod 755 "$dir/init"
	moddep=$img/lib/modules/$abi/modules.dep
	# modules.dep lists all of a module's dependencies, each after the
	# ones that need it: load them last to first, then the module.
	for m in $INITRD_MODULES; do
		line=$(grep -E "/$m\.ko(\.[a-z]+)?:" "$moddep") ||
			{ grep -q "/$m.ko" "$img/lib/modules/$abi/modules.builtin" && continue; } ||
			die "$abi has no module $m"
		for dep in $(echo "${line#*:}" | tr ' ' '\n' | tac) "${line%%:*}"; do
			case " ${order[*]} " in *" $dep "*) continue ;; esac
			order+=("$dep")
		done
	done
	: >"$dir/modules.list"
	for dep in "${order[@]}"; do
		f=$(basename "$dep")
		case "$f" in
		*.ko) cp "$img/lib/modules/$abi/$dep" "$dir/modules/$f" ;;
		*.ko.xz) xz -dc "$img/lib/modules/$abi/$dep" >"$dir/modules/${f%.xz}"; f=${f%.xz} ;;
		*.ko.zst) zstd -qdc "$img/lib/modules/$abi/$dep" >"$dir/modules/${f%.zst}"; f=${f%.zst} ;;
		*) die "$dep: unknown module compression" ;;
		esac
		echo "$f" >>"$dir/modules.list"
	done
	(cd "$dir" && find . | cpio -H newc -o --quiet | gzip -1 >"$out.tmp") || die "cpio failed"
	mv "$out.tmp" "$out"
	say GEN "$out" >&2
	echo "$out"
}

# ------------------------------------------------------------------ one run

# console FILE: the guest console as readable lines (no CRs, escapes, BIOS).
console() {
	sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' -e 's/\r$//' \
		-e '/^SeaBIOS\|^Booting from ROM\|^iPXE\|^$/d'
}

# run_vm NAME PACKAGE SHIM COMMAND: one boot; sets RESULT and SUMMARY.
run_vm() {
	local name=$1 pkg=$2 shim=$3 cmd=$4 abi img rd ko="" run qpid tpid v
	local t0=$SECONDS phase=boot reason="" last kern first lastline detail

	RESULT=failed SUMMARY="" ABI=$pkg
	abi=$("$KERNEL" abi "$pkg") || { SUMMARY="cannot resolve $pkg"; return; }
	ABI=$abi
	img=$("$KERNEL" image "$pkg") || { SUMMARY="cannot fetch $pkg"; return; }
	rd=$(initrd "$abi" "$img") || { SUMMARY="cannot build the initramfs"; return; }
	if [ "$shim" = on ]; then
		ko=$("$KERNEL" kmod "$pkg") || { SUMMARY="make kmod failed for $abi"; return; }
	fi
	run=$VM_DIR/runs/$name
	rm -rf "$run"
	mkdir -p "$run"
	{
		echo "VMTEST_TOP=$TOP"
		echo "VMTEST_ABI=$abi"
		echo "VMTEST_IMAGE=$img"
		echo "VMTEST_KMOD=$ko"
		for v in $PASS_ENV; do
			[ -n "${!v:-}" ] && printf '%s=%q\n' "$v" "${!v}"
		done
	} >"$run/env"
	printf '%s\n' "$cmd" >"$run/cmd"
	: >"$run/console.log"

	say VM "$name: $abi, shim $shim: $cmd"
	qemu-system-x86_64 -accel tcg -cpu max -smp "$VM_CPUS" -m "$VM_MEM" \
		-display none -monitor none -serial "file:$run/console.log" -no-reboot -nic none \
		-kernel "$img/boot/vmlinuz-$abi" -initrd "$rd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 vmtest.top=$TOP" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$run,mount_tag=scratch,security_model=none,multidevs=remap" \
		</dev/null >"$run/qemu.log" 2>&1 &
	qpid=$!
	QPID=$qpid
	tail -n +1 -F --pid="$qpid" "$run/console.log" 2>/dev/null | console &
	tpid=$!
	while kill -0 "$qpid" 2>/dev/null; do
		if [ "$phase" = boot ] && grep -q 'vmtest-guest: running' "$run/console.log"; then
			phase=run
			say TIME "$name: booted in $((SECONDS - t0)) s"
		fi
		if [ "$phase" = boot ] && [ $((SECONDS - t0)) -ge "$BOOT_TIMEOUT" ]; then
			last=$(console <"$run/console.log" | tail -n 1)
			reason="the guest did not start its command within $BOOT_TIMEOUT s (boot hung?); last console line: ${last:-none}"
			break
		fi
		if [ $((SECONDS - t0)) -ge "$timeout" ]; then
			reason="timed out after $timeout s (-t) while running the command"
			break
		fi
		sleep 1
	done
	if [ -n "$reason" ]; then
		kill "$qpid" 2>/dev/null
		say KILL "$name: $reason"
	fi
	wait "$qpid" 2>/dev/null
	QPID=""
	wait "$tpid" 2>/dev/null
	# A kernel warning or oops fails the run even if the tests passed: the
	# module and the programs run in that kernel. The console shows errors
	# only (a panic); the guest saves its whole log in dmesg.log.
	kern=$(cat "$run/dmesg.log" 2>/dev/null | console | grep -a -m1 -E "$KERNEL_TROUBLE")
	[ -n "$kern" ] || kern=$(console <"$run/console.log" | grep -a -m1 -E "$KERNEL_TROUBLE")
	if [ -z "$reason" ]; then
		reason=$(grep -ah -m1 -E 'vmtest-(init|guest): FAILED' "$run/console.log" | console)
		[ -n "$reason" ] || [ -s "$run/status" ] ||
			reason="the guest wrote no status (qemu: $(tail -n 1 "$run/qemu.log"))"
	fi
	first=$(head -n 1 "$run/status" 2>/dev/null)
	lastline=$(sed -n 2p "$run/status" 2>/dev/null)
	if [ -n "$kern" ]; then
		detail="kernel trouble in the guest: $kern"
	elif [ "$first" = passed ]; then
		RESULT=passed
		detail=$lastline
	else
		detail=${reason:-${first:-failed}}
		[ -z "$lastline" ] || detail="$detail; last line: $lastline"
	fi
	SUMMARY="[$((SECONDS - t0)) s] $detail"
}

# ------------------------------------------------------------------ matrix

# (read whole first: editing the matrix while VMs run must not shift the lines)
mapfile -t matrix_lines <"$MATRIX"
results=() npass=0 nfail=0 n=0
for line in "${matrix_lines[@]}"; do
	read -r lset pkg shim cmd <<<"$line"
	case "$lset" in '' | '#'*) continue ;; esac
	[ "$lset" = "$set_name" ] || continue
	[ -z "$pkg_only" ] || [ "$pkg" = "$pkg_only" ] || continue
	[ -z "$shim_only" ] || [ "$shim" = "$shim_only" ] || continue
	[ -z "$cmd_override" ] || cmd=$cmd_override
	n=$((n + 1))
	run_vm "$set_name-$n-$shim" "$pkg" "$shim" "$cmd" </dev/null
	results+=("$(printf '%-7s %s, shim %-3s %s' "$RESULT" "$ABI" "$shim" "$SUMMARY")")
	if [ "$RESULT" = passed ]; then npass=$((npass + 1)); else nfail=$((nfail + 1)); fi
done
[ "$n" -gt 0 ] || die "no line of $MATRIX matches set '$set_name'${pkg_only:+ package $pkg_only}${shim_only:+ shim $shim_only}"

echo
for r in "${results[@]}"; do echo "vmtest: $r"; done
echo "vmtest: $npass passed, $nfail failed"
[ "$nfail" = 0 ]
