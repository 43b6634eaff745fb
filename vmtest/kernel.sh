#!/usr/bin/env bash
# Debian kernels for the vmtest VM, fetched with apt and kept under build/vm/.
#
#   vmtest/kernel.sh abi PACKAGE       the ABI name a package stands for
#                                      (linux-image-amd64 -> 6.1.0-56-amd64)
#   vmtest/kernel.sh image PACKAGE     extract the image package: prints its dir
#                                      (boot/vmlinuz-ABI, lib/modules/ABI with modules.dep)
#   vmtest/kernel.sh headers PACKAGE   a headers tree that builds out-of-tree modules
#                                      *with BTF*: prints its dir (the KDIR of Kbuild)
#   vmtest/kernel.sh kmod [PACKAGE]    build bpf/kmod against it: prints the .ko path
#   vmtest/kernel.sh deps PKG...       install the Debian packages that are missing
#
# PACKAGE defaults to linux-image-amd64 (Debian 12: 6.1). Everything lands in
# build/vm/ (VM_DIR), the .debs in build/vm/debs; nothing is installed into
# /usr/src or /lib/modules. Steps that are done already are skipped.
#
# Why the headers need work (shared/KERNEL-NOTES.md): Kbuild only emits module
# BTF, which kfuncs need, when the headers tree has a vmlinux and
# tools/bpf/resolve_btfids. Debian ships neither: vmlinux is the xz payload of
# vmlinuz (it keeps .BTF), and resolve_btfids is built from linux-source.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
VM_DIR=${VM_DIR:-$TOP/build/vm}
DEBS=$VM_DIR/debs
export DEBIAN_FRONTEND=noninteractive

say() { printf '  %-4s %s\n' "$1" "$2" >&2; }
die() { echo "vmtest/kernel.sh: $*" >&2; exit 1; }

# need_pkgs PKG...: install the Debian packages that are missing (as root).
need_pkgs() {
	local p missing=""

	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || die "missing Debian packages:$missing (sudo apt-get install$missing)"
	say DEPS "installing:$missing"
	apt_update_once
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		die "apt-get install$missing failed"
}

_apt_updated=""
apt_update_once() {
	[ -n "$_apt_updated" ] && return 0
	apt-get update -qq >/dev/null 2>&1 || say WARN "apt-get update failed; using the lists we have"
	_apt_updated=1
}

# fetch PKG[=VERSION]: the .deb of a package in $DEBS (downloaded once); prints its path.
fetch() {
	local pkg=${1%%=*} ver=${1#*=} f

	[ "$ver" != "$1" ] || ver=""
	mkdir -p "$DEBS"
	f=$(ls "$DEBS/${pkg}_${ver}"*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$f" ]; then
		say GET "$1"
		(cd "$DEBS" && apt-get download -q "$1" >/dev/null 2>"$DEBS/.apt.err") || {
			apt_update_once
			(cd "$DEBS" && apt-get download -q "$1" >/dev/null 2>"$DEBS/.apt.err")
		} || die "apt-get download $1 failed: $(grep -v '^W:' "$DEBS/.apt.err" | tail -n 1)"
		f=$(ls "$DEBS/${pkg}_${ver}"*.deb | head -n 1)
	fi
	echo "$f"
}

# abi PACKAGE: linux-image-6.1.0-56-amd64 -> 6.1.0-56-amd64; a metapackage
# (linux-image-amd64) -> the ABI of the image it depends on today.
abi() {
	local pkg=$1 dep

	case "$pkg" in
	linux-image-[0-9]*) echo "${pkg#linux-image-}"; return ;;
	esac
	dep=$(apt-cache depends "$pkg" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$dep" ]; then
		apt_update_once
		dep=$(apt-cache depends "$pkg" 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	fi
	[ -n "$dep" ] || die "$pkg: no linux-image-<version> among its dependencies (apt-cache depends $pkg)"
	echo "${dep#linux-image-}"
}

# image PACKAGE: extracted image in $VM_DIR/ABI/image, with modules.dep.
image() {
	local a dir deb

	a=$(abi "$1")
	dir=$VM_DIR/$a/image
	if [ ! -f "$dir/.done" ]; then
		need_pkgs kmod
		deb=$(fetch "linux-image-$a")
		say DEB "extract $(basename "$deb")"
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir"
		[ -f "$dir/boot/vmlinuz-$a" ] || die "$deb has no boot/vmlinuz-$a"
		# Debian generates modules.dep at install time; we are not installing.
		depmod -b "$dir" "$a"
		touch "$dir/.done"
	fi
	echo "$dir"
}

# The version of an image package as apt knows it (6.1.192-2).
image_version() {
	dpkg-deb -f "$(fetch "linux-image-$1")" Version
}

# vmlinux_from IMAGE_DIR ABI OUT: the ELF inside vmlinuz (xz payload).
vmlinux_from() {
	local vmlinuz=$1/boot/vmlinuz-$2 out=$3 off

	# The first match; no reader that stops early (pipefail, below).
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1)
	off=${off%%$'\n'*}
	[ -n "$off" ] || die "$vmlinuz: no xz payload (another compression? see KERNEL-NOTES)"
	tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$out.tmp" 2>/dev/null || true
	# Not `| grep -q`: under pipefail, grep leaving early makes readelf
	# die of SIGPIPE when it writes on, and the check fails at random.
	readelf -S "$out.tmp" 2>/dev/null | grep '\.BTF ' >/dev/null ||
		die "$vmlinuz: the payload has no .BTF"
	mv "$out.tmp" "$out"
}

# resolve_btfids VERSION: built from linux-source of that version (only the
# binary is kept, as $VM_DIR/resolve_btfids-VERSION); prints its path.
resolve_btfids() {
	local ver=$1 series src out=$VM_DIR/resolve_btfids-$1 deb

	if [ ! -x "$out" ]; then
		need_pkgs make gcc libelf-dev zlib1g-dev xz-utils
		series=$(echo "$ver" | cut -d. -f1,2)
		src=$VM_DIR/src-$ver
		deb=$(fetch "linux-source-$series=$ver")
		say SRC "extract tools/ of $(basename "$deb")"
		rm -rf "$src"
		mkdir -p "$src"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$src" \
			"./usr/src/linux-source-$series.tar.xz"
		tar -xJf "$src/usr/src/linux-source-$series.tar.xz" -C "$src" \
			"linux-source-$series/tools" "linux-source-$series/scripts" \
			"linux-source-$series/include" "linux-source-$series/arch/x86/include"
		rm -rf "$src/usr"
		say MAKE "resolve_btfids"
		make -s -C "$src/linux-source-$series/tools/bpf/resolve_btfids" -j"$(nproc)" \
			>"$VM_DIR/resolve_btfids.log" 2>&1 ||
			die "building resolve_btfids failed: see $VM_DIR/resolve_btfids.log"
		cp "$src/linux-source-$series/tools/bpf/resolve_btfids/resolve_btfids" "$out"
		rm -rf "$src"
	fi
	echo "$out"
}

# headers PACKAGE: a private, complete headers tree in $VM_DIR/ABI/headers.
headers() {
	local a ver root kdir img rb deb

	a=$(abi "$1")
	root=$VM_DIR/$a/headers
	kdir=$root/usr/src/linux-headers-$a
	if [ ! -f "$root/.done" ]; then
		need_pkgs make gcc-12 libelf-dev dwarves xz-utils
		img=$(image "$1")
		ver=$(image_version "$a")
		rm -rf "$root"
		mkdir -p "$root"
		for deb in "linux-headers-$a=$ver" "linux-headers-${a%-*}-common=$ver" \
			"linux-kbuild-$(echo "$ver" | cut -d. -f1,2)=$ver"; do
			deb=$(fetch "$deb")
			dpkg-deb -x "$deb" "$root"
		done
		[ -f "$kdir/Makefile" ] || die "no $kdir/Makefile after extracting the headers"
		# The arch Makefile includes the common one by its /usr/src path.
		sed -i "s|/usr/src/|$root/usr/src/|" "$kdir/Makefile"
		vmlinux_from "$img" "$a" "$kdir/vmlinux"
		rb=$(resolve_btfids "$ver")
		# tools/ is a link into linux-kbuild (objtool only): make it a
		# directory that has both.
		local tools
		tools=$(readlink -f "$kdir/tools")
		rm "$kdir/tools"
		mkdir -p "$kdir/tools/bpf/resolve_btfids"
		ln -s "$tools/objtool" "$kdir/tools/objtool"
		cp "$rb" "$kdir/tools/bpf/resolve_btfids/resolve_btfids"
		touch "$root/.done"
	fi
	echo "$kdir"
}

# kmod [PACKAGE]: bpf/kmod built for that kernel in $VM_DIR/ABI/kmod.
kmod() {
	local pkg=${1:-linux-image-amd64} a kdir out

	a=$(abi "$pkg")
	kdir=$(headers "$pkg")
	out=$VM_DIR/$a/kmod
	say KMOD "bpf/kmod for $a"
	make --no-print-directory -C "$TOP/bpf/kmod" KDIR="$kdir" BUILD="$out" >&2 ||
		die "building bpf/kmod for $a failed"
	echo "$out/natsplice_kmod.ko"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
abi) abi "${1:-linux-image-amd64}" ;;
image) image "${1:-linux-image-amd64}" ;;
headers) headers "${1:-linux-image-amd64}" ;;
kmod) kmod "$@" ;;
deps) need_pkgs "$@" ;;
*)
	sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
