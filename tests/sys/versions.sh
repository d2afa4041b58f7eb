#!/usr/bin/env bash
# versions.sh -- every program answers --version with "NAME VERSION" (include/aicn/version.h), exit 0, and lists it in --help.
# aicn-timeout: 30
set -u
: "${AICN_BIN:?run through make check}" "${AICN_SRC:?run through make check}"
version=$(sed -n 's/^#define AICN_VERSION "\(.*\)"$/\1/p' "$AICN_SRC/include/aicn/version.h")
[ -n "$version" ] || { echo "FAIL: no AICN_VERSION in include/aicn/version.h"; exit 1; }
progs=(aicn-agent aicn-coordinator aicnctl aicn-meter aicn-supervise aicn-sandbox)
rc=0
for p in "${progs[@]}"; do
	[ -x "$AICN_BIN/$p" ] || { echo "FAIL: $p not built"; rc=1; continue; }
	out=$("$AICN_BIN/$p" --version 2>&1)
	st=$?
	if [ "$st" != 0 ] || [ "$out" != "$p $version" ]; then
		echo "FAIL: $p --version: exit $st, said '$out' (want '$p $version')"
		rc=1
		continue
	fi
	"$AICN_BIN/$p" --help 2>&1 | grep -q -- --version || { echo "FAIL: $p --help does not mention --version"; rc=1; continue; }
	echo "ok   $p --version: $out"
done
exit "$rc"
