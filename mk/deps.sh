#!/bin/sh
# The Debian packages natsplice needs, per use. `make` only checks (--check:
# says exactly what is missing and how to install it, exit 1); `make deps`,
# `make check`, `make demo`, `make deb` install the missing ones (as root,
# with apt), or say what to run.
# Usage: mk/deps.sh [--check] build|test|demo|vm|package
# (test: chromium, test_dashboard.sh's headless browser, is the largest: with
# its libraries about 130 MB to download, 450 MB installed.)
set -e
check=0
[ "$1" = --check ] && { check=1; shift; }
build="clang llvm libbpf-dev libxdp-dev bpftool libelf-dev zlib1g-dev libyaml-dev
libssl-dev libmicrohttpd-dev libcmocka-dev pkg-config make gcc
libcurl4-openssl-dev libjansson-dev"
# make deb and its lintian check
package="debhelper dpkg-dev fakeroot lintian"
# test/integration/test_install.sh: man pages, units, a booted systemd
install="man-db groff-base systemd systemd-container"
test="$build $package $install iproute2 ethtool nftables socat iperf3 curl coreutils jq prometheus
iperf vsftpd lftp baresip-core sipsak chromium nginx openssh-server openssh-client"
# make fuzz and test/run fuzz: clang's libFuzzer runtime (without it: SKIP)
test="$test libclang-rt-14-dev"
vm="$build qemu-system-x86 busybox-static cpio xz-utils kmod dwarves"
case "${1:-build}" in
build) want=$build ;;
test|demo) want=$test ;;
package) want="$build $package" ;;
vm) want=$vm ;;
*) echo "usage: $0 [--check] build|test|demo|vm|package" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ $check = 1 ]; then
	echo "missing Debian packages:$missing" >&2
	echo "install them with: make deps (as root), or: sudo apt-get install$missing" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "missing Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "  DEPS installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq $missing >/dev/null
