#!/usr/bin/env bash
# The source tree itself: what CI's fresh clone will have.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# No source file that the build or the tests use is hidden by .gitignore: a
# build that works here would fail on a fresh clone (it happened: a header
# under test/tools/ matched /test/tools/* and never reached CI). Generated
# files (skeletons, build/, bench results, the fuzz corpus) are meant to be
# ignored.
test_no_ignored_sources() {
	need git
	local top ignored

	top=$(cd "$(dirname "$0")/../.." && pwd)
	git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
		skip "not a git checkout"
	ignored=$(git -C "$top" ls-files --others --ignored --exclude-standard |
		grep -E '(\.(c|h|sh|py|mk|yaml|md|S)|Makefile|Kbuild)$' |
		grep -v -E '\.skel\.h$|^build/|^bench/results/|^test/fuzz/corpus/') || true
	[ -z "$ignored" ] || fail "sources ignored by git (add them or fix .gitignore): $ignored"
}

run_tests
