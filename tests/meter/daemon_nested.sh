#!/usr/bin/env bash
# daemon_nested.sh -- a double-forked setsid daemon is counted until it dies; a nested sub-cgroup counts toward the task.
# aicn-timeout: 60
. "$(dirname "$0")/lib.sh"

n=$(newname daemon)
"$METER" run --name "$n" -o "$TMP/d.json" -- "$WORK" daemon 1 || fail "run daemon: exit $?"
cat "$TMP/d.json"
check_record "$TMP/d.json"
[ "$(field "$TMP/d.json" procs_forked)" = 3 ] || fail "procs_forked != 3"
[ "$(field "$TMP/d.json" procs_exited)" = 3 ] || fail "procs_exited != 3"
# the daemon spins 1 s of CPU after its parents are gone: its time and life are in the record
[ "$(field "$TMP/d.json" wall_ns)" -ge 1100000000 ] || fail "record ended before the daemon"
[ "$(field "$TMP/d.json" cpu_ns)" -ge 1000000000 ] || fail "daemon CPU missing"
expect_gone "$n"

n=$(newname nested)
"$METER" run --name "$n" -o "$TMP/n.json" -- "$WORK" nested self 1 || fail "run nested: exit $?"
cat "$TMP/n.json"
check_record "$TMP/n.json"
[ "$(field "$TMP/n.json" procs_forked)" = 2 ] || fail "procs_forked != 2"
[ "$(field "$TMP/n.json" procs_exited)" = 2 ] || fail "procs_exited != 2"
# the child in the sub-cgroup spins 1 s of CPU, its parent 0.25 s
[ "$(field "$TMP/n.json" cpu_ns)" -ge 1250000000 ] || fail "nested child's CPU missing"
expect_gone "$n"
echo "ok"
