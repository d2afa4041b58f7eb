#!/usr/bin/env bash
# tests/bench/pay.sh -- settled tasks per second through the coordinator's settlement (pay_*): SUBMIT
# escrow, offer terms, Proof of Compute of an agent-signed record (Ed25519 verify, usage checks, PoW
# stamp), charge with fee split into the ledger, refund; commits batched every 256 tasks beside one
# commit per task, in one run.  Only settlement's time is counted (the coordinator's own work is not).
set -eu
D=${AICN_BIN:-${AICN_BUILD:-build}/bin}/aicn-pay-driver
[ -x "$D" ] || { echo "missing $D (run make)"; exit 1; }
T=$(mktemp -d /tmp/aicn-paybench-XXXXXX)
trap 'rm -rf "$T"' EXIT
N=${PAY_BENCH_TASKS:-2000}
mkdir "$T/batched" "$T/single"
"$D" bench "$T/batched" "$N" 256
"$D" bench "$T/single" $((N / 10)) 1
