#!/bin/sh
# Check that the Debian packages natsplice needs are installed; install the
# missing ones when running as root with apt, otherwise say exactly what to run.
# Usage: mk/deps.sh build|test|demo|vm
set -e
build="clang llvm libbpf-dev libxdp-dev bpftool libelf-dev zlib1g-dev libyaml-dev
libssl-dev libmicrohttpd-dev libcmocka-dev pkg-config make gcc"
test="$build iproute2 ethtool nftables socat iperf3 curl coreutils jq prometheus
iperf vsftpd lftp baresip-core sipsak"
vm="$build qemu-system-x86 busybox-static cpio xz-utils kmod dwarves"
case "${1:-build}" in
build) want=$build ;;
test|demo) want=$test ;;
vm) want=$vm ;;
*) echo "usage: $0 build|test|demo|vm" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "missing Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "  DEPS installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq $missing >/dev/null
