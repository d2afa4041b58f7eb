#!/usr/bin/env bash
# restart.sh -- kill -9 of the metering process mid-job, then a new one finishes: the figure is still exact.
# aicn-timeout: 60
. "$(dirname "$0")/lib.sh"

n=$(newname restart)
"$METER" run --name "$n" -o "$TMP/never.json" -- "$WORK" spin 2 1.5 &
mpid=$!
sleep 1
[ -d "$CGBASE/$n" ] || fail "task cgroup not there"
kill -9 "$mpid"
wait "$mpid" 2>/dev/null || true
[ -e "$PIN/tracked" ] || fail "pins vanished with the metering process"
# the job runs on, unmetered by any process, metered by the pinned programs
"$METER" wait --name "$n" -o "$TMP/r.json" || fail "wait: exit $?"
cat "$TMP/r.json"
check_record "$TMP/r.json"
[ ! -e "$TMP/never.json" ] || fail "the killed run wrote a record"
# 2 threads x 1.5 s of CPU, before and after the kill
[ "$(field "$TMP/r.json" cpu_ns)" -ge 3000000000 ] || fail "CPU before the restart lost"
[ "$(field "$TMP/r.json" wall_ns)" -ge 1500000000 ] || fail "wall time not from the original start"
[ "$(field "$TMP/r.json" exit_code)" = null ] || fail "exit code cannot be known after a restart"
expect_gone "$n"
echo "ok"
