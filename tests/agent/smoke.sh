#!/bin/bash
# smoke.sh -- end to end: aicn-coordinator + one aicn-agent + a renter over mTLS; a real OCI image runs
# in the sandbox, its record reaches the coordinator, the renter fetches the result archive.
# aicn-timeout: 240
set -u
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (eBPF meter, cgroups, namespaces)"; exit 77; }
: "${AICN_BIN:?run through make check}"
COORD=${AICN_COORDINATOR:-$AICN_BIN/aicn-coordinator}
[ -x "$COORD" ] || { echo "SKIP: no aicn-coordinator built"; exit 77; }
T=$(mktemp -d /tmp/aicn-agent-smoke.XXXXXX)
PIN=/sys/fs/bpf/aicn-test-smoke-$$
CPID= APID=
cleanup() {
	[ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
	# tasks of this test: kill their supervisors, then remove the agent's cgroups and pins
	for f in "$T"/agent/tasks/*/supervise.state; do
		[ -f "$f" ] && kill -9 "$(sed -n 's/^supervisor_pid=//p' "$f")" 2>/dev/null
	done
	sleep 0.2
	find /sys/fs/cgroup -depth -type d -name "aicn-tasks-$(cat "$T/cap" 2>/dev/null || echo none)*" \
		-exec sh -c 'find "$1" -depth -type d -exec rmdir {} + 2>/dev/null' _ {} \; 2>/dev/null
	"$AICN_BIN/aicn-meter" cleanup --pin-dir "$PIN" >/dev/null 2>&1 || rm -rf "$PIN"
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- agent log"; tail -40 "$T/agent.log"; echo "--- coordinator log"; tail -20 "$T/coord.log"; exit 1; }

CTL=$AICN_BIN/aicnctl
$CTL ca init "$T/ca" >/dev/null || fail "ca init"
$CTL ca issue --dir "$T/ca" --role coordinator --name coord --out "$T/coord" --dns localhost >/dev/null || fail "issue coordinator"
$CTL ca issue --dir "$T/ca" --role agent --name node-a --out "$T/agent" >/dev/null || fail "issue agent"
$CTL ca issue --dir "$T/ca" --role renter --name alice --out "$T/alice" >/dev/null || fail "issue renter"

mkdir -p "$T/coordstate" "$T/agent"
cat > "$T/coord.conf" <<CONF
[coordinator]
listen = 127.0.0.1:0
cert = $T/coord.pem
key = $T/coord.key
ca = $T/ca/ca.pem
state_dir = $T/coordstate
port_file = $T/coord.port
heartbeat_timeout = 30s
tick_ms = 100
CONF
"$COORD" --config "$T/coord.conf" >"$T/coord.log" 2>&1 &
CPID=$!
for _ in $(seq 100); do [ -s "$T/coord.port" ] && break; sleep 0.1; done
PORT=$(cat "$T/coord.port" 2>/dev/null) || fail "coordinator did not start"

cat > "$T/agent.conf" <<CONF
[agent]
coordinator = 127.0.0.1:$PORT
cert = $T/agent.pem
key = $T/agent.key
ca = $T/ca/ca.pem
state_dir = $T/agent
max_cores = 1
max_memory = 256M
ask_price = 1000
location = test/lo
metrics_listen = 127.0.0.1:0
CONF
AICN_METER_PIN_DIR=$PIN "$AICN_BIN/aicn-agent" --config "$T/agent.conf" >"$T/agent.log" 2>&1 &
APID=$!
for _ in $(seq 100); do grep -q "registered with the coordinator" "$T/agent.log" && break; sleep 0.1; done
grep -q "registered with the coordinator" "$T/agent.log" || fail "agent did not register"
sed -n 's|.*tasks run in cgroup .*/aicn-tasks-\([0-9a-f]*\) .*|\1|p' "$T/agent.log" > "$T/cap"

# a busybox OCI image, as a layout tar
python3 "$AICN_SRC/tests/sandbox/mkimage.py" busybox "$T/img" >/dev/null || fail "mkimage"
tar -C "$T/img" -cf "$T/img.tar" oci-layout index.json blobs || fail "tar image"
printf 'hello from the renter\n' > "$T/input.txt"
cat > "$T/spec.json" <<'SPEC'
{"command": ["sh", "-c", "cat /work/in/data.txt; mkdir -p /work/out/sub; echo result > /work/out/sub/r.txt; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done >&2; exit 7"],
 "cores": 1, "memory": 67108864, "max_wall_seconds": 120, "max_price": 1000000, "client_ref": "smoke-1"}
SPEC
python3 "$AICN_SRC/tests/agent/renter.py" "$T/alice" "$T/ca/ca.pem" "$PORT" run "$T/spec.json" "$T/img.tar" \
	in/data.txt="$T/input.txt" --out "$T/result.tar" > "$T/renter.json" || fail "renter"
cat "$T/renter.json"
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
grep -q '"type":"final"' "$T/agent/meter.log" || fail "no final record in the meter log"
for _ in $(seq 50); do [ -z "$(ls "$T/agent/outbox" 2>/dev/null)" ] && break; sleep 0.1; done
[ -z "$(ls "$T/agent/outbox")" ] || fail "records left unacknowledged: $(ls "$T/agent/outbox")"
cpu=$(python3 -c 'import json,sys; [print(json.loads(l)["cpu_ns"]) for l in open(sys.argv[1]) if "\"final\"" in l]' "$T/agent/meter.log")
[ "${cpu:-0}" -gt 10000000 ] || fail "final record's cpu_ns $cpu is implausible for 200k shell iterations"
# the task directory is wiped, /metrics answers
for _ in $(seq 50); do [ -z "$(ls "$T/agent/tasks")" ] && break; sleep 0.1; done
[ -z "$(ls "$T/agent/tasks")" ] || fail "task directory left: $(ls "$T/agent/tasks")"
curl -sf "http://$(cat "$T/agent/metrics.addr")/metrics" > "$T/metrics" || fail "/metrics"
grep -q '^aicn_agent_coordinator_connection{state="registered"} 1' "$T/metrics" || fail "metrics: not registered"
grep -q '^aicn_agent_tasks_ended_total{kind="exited"} 1' "$T/metrics" || fail "metrics: exited count"
grep -q '^aicn_agent_records_pending_ack 0' "$T/metrics" || fail "metrics: pending records"
echo "final record cpu_ns $cpu"
kill -TERM "$APID"; wait "$APID"; rc=$?; APID=
[ "$rc" = 0 ] || fail "agent exit status $rc after SIGTERM"
echo "all passed"
