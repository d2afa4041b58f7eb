#!/usr/bin/env bash
# demo.sh -- `make demo`: run the most complete slice of the network that exists, on loopback,
# and say what it showed.  Every process it starts is stopped at the end; logs stay in $AICN_BUILD/demo.
set -euo pipefail
: "${AICN_BUILD:?run through make demo}"
demo=$AICN_BUILD/demo
rm -rf "$demo"; mkdir -p "$demo"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

say "aicn demo: built programs in $AICN_BIN"
ls "$AICN_BIN" 2>/dev/null || echo "(none yet)"

shown=0
# Each capability adds its section here as it lands (metering, sandbox, records, network).

if [ "$shown" -eq 0 ]; then
	say "what this showed"
	echo "The foundation builds and tests; the network (metering, sandbox, records, coordinator) arrives issue by issue."
fi
echo
echo "logs and files: $demo"
