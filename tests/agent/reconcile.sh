#!/bin/bash
# reconcile.sh -- a killed agent's tasks after its restart: one ended while it was away (final record signed
# then, from the pinned meter), one still running (re-adopted, metered to the end); both reported once.
# aicn-timeout: 240
set -u
. "$AICN_SRC/tests/agent/lib.sh"
net_start max_cores=2 max_memory=512M
spec() { # NAME SECONDS: a task that burns CPU for a while, then sleeps the rest
	cat > "$T/$1.json" <<SPEC
{"command": ["sh", "-c", "i=0; while [ \$i -lt 100000 ]; do i=\$((i+1)); done; sleep $2; mkdir -p /work/out; echo $1 > /work/out/who"],
 "cores": 1, "memory": 67108864, "max_wall_seconds": 120, "max_price": 1000000, "client_ref": "$1"}
SPEC
}
spec short 2
spec long 9
A=$(renter submit "$T/short.json" "$T/img.tar") || fail "submit short"
B=$(renter submit "$T/long.json" "$T/img.tar") || fail "submit long"
running() { [ "$(grep -c "task $A: running\|task $B: running" "$T/agent.log")" = 2 ]; }
wait_for 30 running || fail "both tasks did not start"
sleep 0.5
agent_kill9
supA=$(sed -n 's/^supervisor_pid=//p' "$T/agent/tasks/$A/supervise.state")
supB=$(sed -n 's/^supervisor_pid=//p' "$T/agent/tasks/$B/supervise.state")
kill -0 "$supA" && kill -0 "$supB" || fail "a supervisor died with the agent"
# the short task ends while no agent runs
wait_for 20 grep -q '^kind=exited' "$T/agent/tasks/$A/supervise.state" || fail "task $A did not end by itself"
grep -q '^kind=running' "$T/agent/tasks/$B/supervise.state" || fail "task $B should still run"
agent_start
grep -q "task $A: ended while the agent was away (exited)" "$T/agent.log" || fail "task $A not reconciled as ended"
grep -q "task $B: re-adopted (supervisor $supB" "$T/agent.log" || fail "task $B not re-adopted"
renter wait "$A" 60 --out "$T/a.tar" > "$T/a.json" || fail "renter wait $A"
renter wait "$B" 60 --out "$T/b.tar" > "$T/b.json" || fail "renter wait $B"
python3 - "$T" <<'PY' || fail "results"
import json, sys, tarfile
T = sys.argv[1]
for n, who in (("a", b"short\n"), ("b", b"long\n")):
    r = json.load(open("%s/%s.json" % (T, n)))
    assert r["state"].upper() == "DONE", r
    t = tarfile.open("%s/%s.tar" % (T, n))
    assert t.extractfile("exit_code").read() == b"0\n"
    assert t.extractfile("out/who").read() == who, n
PY
[ "$(finals "$A")" = 1 ] || fail "task $A: $(finals "$A") final records"
[ "$(finals "$B")" = 1 ] || fail "task $B: $(finals "$B") final records"
# the re-adopted task was metered across the restart: its 100k iterations are in its record
cpu=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("type") == "final" and r["task"] == sys.argv[2]: print(r["cpu_ns"], r["cpu_kernel_ns"])' "$T/agent/meter.log" "$B")
set -- $cpu
[ "${1:-0}" -gt 20000000 ] || fail "task $B: cpu_ns ${1:-?} too small"
echo "task $B: cpu_ns $1 (kernel $2)"
wait_for 10 test -z "$(ls "$T/agent/tasks")" || fail "task directories left: $(ls "$T/agent/tasks")"
# stopped cleanly, the meter log is sealed and verifies after the kill -9 and the restart
kill -TERM "$APID"; wait "$APID"; APID=
"$CTL" audit verify "$T/agent/meter.log" --key "$T/agent.key" --strict --quiet || fail "the meter log does not verify"
echo "all passed"
