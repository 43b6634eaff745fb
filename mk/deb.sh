#!/bin/sh
# make deb: the Debian package (debian/) built with dpkg-buildpackage from a
# copy of the tree in build/deb/src (so nothing is written beside the tree),
# then checked by lintian, whose errors fail it. The .deb, its .changes and
# lintian's report (lintian.txt) end up in build/deb/.
set -e
cd "$(dirname "$0")/.."
out=build/deb
rm -rf "$out"
mkdir -p "$out/src/natsplice"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -co --exclude-standard -z | xargs -0 tar cf - | tar xf - -C "$out/src/natsplice"
else
	tar cf - --exclude=./build --exclude='*.o' . | tar xf - -C "$out/src/natsplice"
fi
echo "  DEB  $out (dpkg-buildpackage; log: $out/build.log)"
if ! (cd "$out/src/natsplice" && dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1; then
	tail -30 "$out/build.log" >&2
	exit 1
fi
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out/"
rm -rf "$out/src"
deb=$(ls "$out"/natsplice_*.deb)
lintian --tag-display-limit 0 "$deb" >"$out/lintian.txt" 2>&1 || true
echo "  DEB  $deb: lintian: $(grep -c '^E:' "$out/lintian.txt") errors," \
	"$(grep -c '^W:' "$out/lintian.txt") warnings ($out/lintian.txt)"
! grep '^E:' "$out/lintian.txt" >&2
