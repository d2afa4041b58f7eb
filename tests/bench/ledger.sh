#!/usr/bin/env bash
# tests/bench/ledger.sh -- settled tasks per second (batched vs one commit per task) and
# verification of a ledger of 1,000,000 entries (replay, audit, and the read+hash floor).
set -eu
bin=${AICN_BUILD:-build}/tests/test_ledger_bench
[ -x "$bin" ] || { echo "missing $bin (run make)"; exit 1; }
"$bin" --bench
