#!/bin/bash
# smoke.sh -- end to end: aicn-coordinator + one aicn-agent + a renter over mTLS; a real OCI image runs
# in the sandbox with an input, its record reaches the coordinator, the renter fetches the result archive.
# aicn-timeout: 240
set -u
. "$AICN_SRC/tests/agent/lib.sh"
net_start max_cores=1 max_memory=256M
printf 'hello from the renter\n' > "$T/input.txt"
cat > "$T/spec.json" <<'SPEC'
{"command": ["sh", "-c", "cat /work/in/data.txt; mkdir -p /work/out/sub; echo result > /work/out/sub/r.txt; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done >&2; exit 7"],
 "cores": 1, "memory": 67108864, "max_wall_seconds": 120, "max_price": 1000000, "client_ref": "smoke-1"}
SPEC
renter run "$T/spec.json" "$T/img.tar" in/data.txt="$T/input.txt" --out "$T/result.tar" > "$T/renter.json" || fail "renter"
python3 - "$T/renter.json" "$T/result.tar" <<'PY' || fail "result"
import json, sys, tarfile
r = json.load(open(sys.argv[1]))
assert r["state"].upper() == "DONE", r
t = tarfile.open(sys.argv[2])
names = t.getnames()
assert names[:3] == ["exit_code", "stdout", "stderr"], names
assert t.extractfile("exit_code").read() == b"7\n"
assert t.extractfile("stdout").read() == b"hello from the renter\n"
assert t.extractfile("stderr").read() == b"done\n"
assert t.extractfile("out/sub/r.txt").read() == b"result\n"
print("result archive ok; submit to done %d ms" % r["submit_to_done_ms"])
PY
# the final record is in the node's meter log and acknowledged (outbox empty)
[ "$(finals 1)" = 1 ] || fail "expected one final record of task 1 in the meter log"
wait_for 5 test -z "$(ls "$T/agent/outbox")" || fail "records left unacknowledged: $(ls "$T/agent/outbox")"
cpu=$(python3 -c 'import json,sys; [print(json.loads(l)["cpu_ns"]) for l in open(sys.argv[1]) if "\"final\"" in l]' "$T/agent/meter.log")
[ "${cpu:-0}" -gt 10000000 ] || fail "final record's cpu_ns $cpu is implausible for 200k shell iterations"
# the task directory is wiped, /metrics answers
wait_for 5 test -z "$(ls "$T/agent/tasks")" || fail "task directory left: $(ls "$T/agent/tasks")"
metrics > "$T/metrics" || fail "/metrics"
grep -q '^aicn_agent_coordinator_connection{state="registered"} 1' "$T/metrics" || fail "metrics: not registered"
grep -q '^aicn_agent_tasks_ended_total{kind="exited"} 1' "$T/metrics" || fail "metrics: exited count"
grep -q '^aicn_agent_records_pending_ack 0' "$T/metrics" || fail "metrics: pending records"
echo "final record cpu_ns $cpu"
kill -TERM "$APID"; wait "$APID"; rc=$?; APID=
[ "$rc" = 0 ] || fail "agent exit status $rc after SIGTERM"
"$CTL" audit verify "$T/agent/meter.log" --key "$T/agent.key" --strict --quiet || fail "the meter log does not verify"
echo "all passed"
