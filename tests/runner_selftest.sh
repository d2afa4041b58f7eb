#!/usr/bin/env bash
# runner_selftest.sh -- tests/run counts passes, failures, skips and timeouts, and fails when it must.
# aicn-timeout: 60
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() { printf '#!/bin/sh\n%s\n' "$2" >"$tmp/$1"; chmod +x "$tmp/$1"; }
mk pass.sh 'exit 0'
mk fail.sh 'echo boom >&2; exit 1'
mk skip.sh 'echo "SKIP: no widget here"; exit 77'
mk slow.sh '# aicn-timeout: 1
sleep 30'
bad=0
expect() { # what, got, want
	if [ "$2" != "$3" ]; then echo "FAIL: $1: got '$2', want '$3'"; bad=1; else echo "ok: $1"; fi
}
export AICN_TEST_LOGDIR=$tmp/logs
out=$(AICN_TEST_MUST_WORK=0 "$AICN_SRC/tests/run" "$tmp/pass.sh" "$tmp/skip.sh")
expect "pass+skip exit" "$?" 0
expect "pass+skip summary" "$(echo "$out" | tail -n1)" "1 passed, 0 failed, 1 skipped"
echo "$out" | grep -q 'SKIP.*skip.sh: no widget here' || { echo "FAIL: skip reason not printed"; bad=1; }

out=$(AICN_TEST_MUST_WORK=0 "$AICN_SRC/tests/run" "$tmp/pass.sh" "$tmp/fail.sh" "$tmp/skip.sh" "$tmp/slow.sh")
expect "with failure exit" "$?" 1
expect "with failure summary" "$(echo "$out" | tail -n1)" "1 passed, 2 failed, 1 skipped"
echo "$out" | grep -q 'boom' || { echo "FAIL: failing test's output not shown"; bad=1; }
echo "$out" | grep -q 'slow.sh: timed out after 1s' || { echo "FAIL: timeout not reported"; bad=1; }

out=$(AICN_TEST_MUST_WORK=1 "$AICN_SRC/tests/run" "$tmp/pass.sh" "$tmp/skip.sh")
expect "must-work exit" "$?" 1
expect "must-work summary" "$(echo "$out" | tail -n1)" "1 passed, 1 failed, 0 skipped"
expect "summary lines" "$(echo "$out" | grep -cE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$')" 1
exit $bad
