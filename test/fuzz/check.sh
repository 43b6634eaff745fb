#!/usr/bin/env bash
# test/run fuzz: builds the libFuzzer targets and runs each from its seeds for
# FUZZ_CHECK_SECONDS (default 8); a "PASS|FAIL|SKIP: fuzz/NAME" line each
# (SKIP for all, exit 77, when clang cannot link libFuzzer's runtime).
set -u
cd "$(dirname "$0")" || exit 1
out=$(make --no-print-directory check CHECK_SECONDS="${FUZZ_CHECK_SECONDS:-8}" 2>&1)
rc=$?
echo "$out"
if [ $rc != 0 ]; then
	echo "FAIL: fuzz/build (make check in test/fuzz: exit status $rc)"
	exit 1
fi
grep -q '^FAIL: ' <<<"$out" && exit 1
grep -q '^PASS: ' <<<"$out" || exit 77
exit 0
