#!/usr/bin/env bash
# forkstorm.sh -- 3,000 short-lived processes: the cross-check bound holds and the counts are exact.
# aicn-timeout: 120
. "$(dirname "$0")/lib.sh"

N=3000
n=$(newname storm)
"$METER" run --name "$n" -o "$TMP/storm.json" -- "$WORK" forkstorm $N || fail "run: exit $?"
cat "$TMP/storm.json"
check_record "$TMP/storm.json"
# the helper itself is born inside too: N + 1 processes forked and exited, 1 exec
[ "$(field "$TMP/storm.json" procs_forked)" = $((N + 1)) ] || fail "procs_forked != $((N + 1))"
[ "$(field "$TMP/storm.json" procs_exited)" = $((N + 1)) ] || fail "procs_exited != $((N + 1))"
[ "$(field "$TMP/storm.json" procs_execed)" = 1 ] || fail "procs_execed != 1"
[ "$(field "$TMP/storm.json" threads_born)" = 0 ] || fail "threads_born != 0"
expect_gone "$n"
echo "ok"
