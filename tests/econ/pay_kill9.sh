#!/usr/bin/env bash
# pay_kill9.sh -- kill -9 of a coordinator settling tasks, 100 times at random points: after each,
# the ledger verifies (chain, audit of every charge against its agent-signed record), the sum of
# balances equals what was minted, nothing is paid twice and every task has its escrow.
# aicn-timeout: 900
set -u
D="${AICN_BIN:-build/bin}/aicn-pay-driver"
T=$(mktemp -d /tmp/aicn-paykill-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$D" run "$T" 4 || fail "warm-up run"
"$D" verify "$T" >/dev/null || fail "warm-up ledger unsound"
before=$("$D" verify "$T")
progressed=0
for i in $(seq 1 100); do
	"$D" run "$T" 1000000 >>"$T/run.log" 2>&1 &
	pid=$!
	sleep "$(printf '0.%03d' $((RANDOM % 400 + 30)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	out=$("$D" verify "$T") || { echo "$out"; fail "after kill $i"; }
done
echo "after 100 kills: $out"
tasks_before=$(echo "$before" | sed -E 's/.* ([0-9]+) tasks.*/\1/')
tasks_after=$(echo "$out" | sed -E 's/.* ([0-9]+) tasks.*/\1/')
[ "$tasks_after" -gt $((tasks_before + 100)) ] || fail "settlement made no progress ($tasks_before -> $tasks_after tasks)"
# and a clean run still goes on from whatever state the last kill left
"$D" run "$T" 5 || fail "run after the kills"
"$D" verify "$T" || fail "final ledger"
echo "PASS"
