#!/usr/bin/env bash
# Stage 2 of the vmtest guest, PID 1 on the overlay root (vmtest/init). Reads
# what to do from the run's scratch directory, mounted on /vmtest:
#   /vmtest/env     VAR=value lines: VMTEST_TOP, VMTEST_ABI, VMTEST_IMAGE (the
#                   extracted image package), VMTEST_KMOD (a .ko to load, or
#                   empty), and the test environment passed through
#   /vmtest/cmd     the command, run by bash from the top of the tree
# and writes:
#   /vmtest/status  "passed" or "failed: why" on its first line, then the
#                   command's last output line; the host treats a missing or
#                   other status as failed
#   /vmtest/guest.log   the command's output (also on the console)
#   /vmtest/dmesg.log   the kernel log after the command
# then powers the VM off.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

status() {
	printf '%s\n' "$@" >/vmtest/status
	sync
}

poweroff_now() {
	sync
	umount /vmtest 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 60 2>/dev/null
}

# abort WHY: the run cannot start.
abort() {
	echo "vmtest-guest: FAILED: $*"
	status "failed: $*"
	poweroff_now
}

set -a
# shellcheck source=/dev/null
. /vmtest/env || abort "cannot read /vmtest/env"
set +a

# An empty /run: the host's is not ours (/run/netns). /tmp stays the host's
# under the overlay (writes stay in the guest): the tree may live there.
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns /dev/pts /dev/shm
# devtmpfs has the device nodes only: bash's <(...) needs /dev/fd.
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
hostname vmtest
ip link set lo up

# The guest kernel's modules, for the kernel's autoloading (veth, bridge,
# nf_tables, sch_ingress, ...) through the host's modprobe.
mkdir -p /usr/lib/modules
ln -sfn "$VMTEST_IMAGE/lib/modules/$VMTEST_ABI" "/usr/lib/modules/$VMTEST_ABI"
[ -f "/usr/lib/modules/$(uname -r)/modules.dep" ] ||
	abort "no modules.dep for $(uname -r) under $VMTEST_IMAGE"
command -v modprobe >/dev/null || abort "no modprobe (apt-get install kmod on the host)"
echo "$(command -v modprobe)" >/proc/sys/kernel/modprobe
# The test bed needs these; loading them now turns a missing one into one
# clear message instead of failed tests.
for m in veth bridge sch_ingress cls_bpf nf_tables nft_chain_nat nft_nat nft_masq; do
	modprobe "$m" 2>/dev/null || echo "vmtest-guest: warning: modprobe $m failed"
done

if [ -n "${VMTEST_KMOD:-}" ]; then
	[ -f "$VMTEST_KMOD" ] || abort "no $VMTEST_KMOD (make kmod)"
	insmod "$VMTEST_KMOD" || abort "insmod $VMTEST_KMOD failed: $(dmesg | tail -n 3)"
	[ -e /sys/kernel/btf/natsplice_kmod ] ||
		abort "natsplice_kmod is loaded but has no BTF (/sys/kernel/btf/natsplice_kmod)"
	echo "vmtest-guest: loaded $(basename "$VMTEST_KMOD") ($(cat /sys/module/natsplice_kmod/taint 2>/dev/null || true) taint)"
else
	lsmod | grep -q '^natsplice_kmod ' && abort "natsplice_kmod is loaded in a run without the shim"
fi

cd "$VMTEST_TOP" || abort "no $VMTEST_TOP"
cmd=$(cat /vmtest/cmd) || abort "no /vmtest/cmd"
echo "vmtest-guest: running: $cmd"
t0=$SECONDS
# This shell stays PID 1 and, while it waits, reaps the orphans it inherits
# (daemons the tests kill leave some behind).
(
	bash -c "$cmd" </dev/null
	echo $? >/tmp/vmtest.rc
) 2>&1 | tee /vmtest/guest.log
rc=$(cat /tmp/vmtest.rc 2>/dev/null || echo "unknown")
dmesg >/vmtest/dmesg.log 2>&1
last=$(grep -v '^$' /vmtest/guest.log | tail -n 1)
echo "vmtest-guest: done in $((SECONDS - t0)) s"
if [ "$rc" = 0 ]; then
	status passed "$last"
else
	status "failed: exit status $rc" "$last"
fi
poweroff_now
