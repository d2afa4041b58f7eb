#!/usr/bin/env bash
# tools.sh -- aicn-meter track/status/top/read/untrack/cleanup on a cgroup a process is moved into (not cloned into).
# aicn-timeout: 60
. "$(dirname "$0")/lib.sh"

n=$(newname tools)
cg=$CGBASE/$n
mkdir "$cg"
id=$("$METER" track "$cg") || fail "track: exit $?"
[ "$id" = "$(stat -c %i "$cg")" ] || fail "track printed $id, the cgroup's id is $(stat -c %i "$cg")"
"$METER" track "$cg" 2>"$TMP/err" && fail "tracking twice succeeded"
grep -qi "exists" "$TMP/err" || fail "tracking twice: unclear error: $(cat "$TMP/err")"
"$METER" status >"$TMP/st.json"
[ "$(field "$TMP/st.json" tracked)" = 1 ] || fail "status does not show 1 tracked cgroup"

# a process that moves itself in (cgroup_attach_task), then spins 1.5 s of CPU in 2 threads
sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" spin 2 0.75' _ "$cg" "$WORK" &
job=$!
sleep 0.5
"$METER" top --interval 0.3 --iterations 1 >"$TMP/top"
cat "$TMP/top"
grep -q "^$id " "$TMP/top" || fail "top does not list cgroup $id"
awk -v id="$id" '$1 == id && $2 + 0 > 10 { ok = 1 } END { exit !ok }' "$TMP/top" ||
	fail "top shows no CPU use for a spinning job"
grep -q "$cg" "$TMP/top" || fail "top does not show the cgroup's path"
wait "$job" || fail "job failed"
for _ in $(seq 100); do grep -q 'populated 0' "$cg/cgroup.events" && break; sleep 0.05; done
sleep 0.1
"$METER" read --id "$id" >"$TMP/r.json"
cat "$TMP/r.json"
cpu=$(field "$TMP/r.json" cpu_ns)
usec=$(awk '$1 == "usage_usec" { print $2 }' "$cg/cpu.stat")
python3 -c '
import sys
m, k = int(sys.argv[1]), int(sys.argv[2]) * 1000
print(f"meter {m} ns, cpu.stat {k} ns, diff {m - k} ns")
sys.exit(0 if abs(m - k) <= k // 10000 + 2000 else 1)' "$cpu" "$usec" || fail "moved-in job: meter and cpu.stat disagree"
[ "$cpu" -ge 1500000000 ] || fail "moved-in job's CPU missing"
[ "$(field "$TMP/r.json" threads_peak)" = 2 ] || fail "threads_peak != 2"

"$METER" untrack "$cg" || fail "untrack: exit $?"
"$METER" untrack "$id" 2>/dev/null && fail "untracking twice succeeded"
"$METER" status >"$TMP/st.json"
[ "$(field "$TMP/st.json" tracked)" = 0 ] || fail "status still shows a tracked cgroup"
[ -e "$PIN/tracked" ] || fail "track (a daemon-like user) should leave the pins in place"
"$METER" cleanup || fail "cleanup: exit $?"
[ ! -e "$PIN" ] || fail "cleanup left $PIN"
rmdir "$cg"
echo "ok"
