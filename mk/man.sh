#!/bin/sh
# A man page from its hand-written part and a daemon's settings table:
# mk/man.sh man/NAME.SECTION.in COMMAND... > NAME.SECTION
# The template's line "@SETTINGS@" becomes `COMMAND --man SECTION` (the
# options for section 8, the YAML keys for section 5, lib/settings.c), so the
# lists cannot drift from --help and the parser; "@VERSION@" becomes VERSION.
set -e
in=$1
shift
sec=${in%.in}
sec=${sec##*.}
list=$("$@" --man "$sec")
[ -n "$list" ] || { echo "$0: '$* --man $sec' printed nothing" >&2; exit 1; }
version=$(cat "$(dirname "$0")/../VERSION")
while IFS= read -r line; do
	case $line in
	@SETTINGS@) printf '%s\n' "$list" ;;
	*) printf '%s\n' "$line" | sed "s/@VERSION@/$version/g" ;;
	esac
done < "$in"
