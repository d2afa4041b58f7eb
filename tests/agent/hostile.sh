#!/bin/bash
# hostile.sh -- aicn-agent against a hostile coordinator (tests/agent/hostile_coord.py, real mTLS): bad offers
# are rejected with reasons, unknown images and corrupt blobs fail the task, nothing crashes the agent; then a
# real task with a PoW difficulty and a refused first TASK_RESULT, and a task killed while it runs.
# aicn-timeout: 180
set -u
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (eBPF meter, cgroups)"; exit 77; }
: "${AICN_BIN:?run through make check}"
. "$AICN_SRC/tests/lib/cgroup.sh"
T=$(mktemp -d /tmp/aicn-agent-hostile.XXXXXX)
PIN=/sys/fs/bpf/aicn-test-hostile-$$
APID= HPID=
CGS=$(cg_make "aicn-agent-hostile-$$") # the agent runs in these: its task cgroups nest inside
cleanup() {
	[ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
	[ -n "$HPID" ] && kill "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null
	local leaked=0
	# shellcheck disable=SC2086
	agent_test_teardown "$T/state" "$T/agent.log" "$PIN" $CGS || leaked=1
	rm -rf "$T"
	[ "$leaked" = 0 ] || { echo "FAIL: the test left cgroups behind"; exit 1; }
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- agent log"; tail -30 "$T/agent.log"; exit 1; }
CTL=$AICN_BIN/aicnctl
$CTL ca init "$T/ca" >/dev/null || fail "ca init"
$CTL ca issue --dir "$T/ca" --role coordinator --name evil --out "$T/coord" >/dev/null || fail "issue"
$CTL ca issue --dir "$T/ca" --role agent --name node-h --out "$T/agent" >/dev/null || fail "issue"
python3 "$AICN_SRC/tests/sandbox/mkimage.py" busybox "$T/img" >/dev/null || fail "mkimage"
tar -C "$T/img" -cf "$T/img.tar" oci-layout index.json blobs || fail "tar image"
python3 "$AICN_SRC/tests/agent/hostile_coord.py" "$T/coord" "$T/ca/ca.pem" "$T/port" "$T/img.tar" > "$T/hostile.out" 2>&1 &
HPID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
mkdir -p "$T/state"
cat > "$T/agent.conf" <<CONF
[agent]
coordinator = 127.0.0.1:$(cat "$T/port")
cert = $T/agent.pem
key = $T/agent.key
ca = $T/ca/ca.pem
state_dir = $T/state
max_cores = 1
max_memory = 256M
max_tasks = 2
ask_price = 5
metrics_listen = 127.0.0.1:0
CONF
(
	# shellcheck disable=SC2086
	cg_enter $CGS || exit 1
	exec env AICN_METER_PIN_DIR="$PIN" "$AICN_BIN/aicn-agent" --config "$T/agent.conf"
) > "$T/agent.log" 2>&1 &
APID=$!
wait "$HPID"; rc=$?; HPID=
cat "$T/hostile.out"
[ "$rc" = 0 ] || fail "hostile coordinator: exit $rc"
kill -0 "$APID" 2>/dev/null || fail "the agent died"
curl -sf "http://$(cat "$T/state/metrics.addr")/metrics" | grep -q '^aicn_agent_tasks_ended_total{kind="failed"} 3' ||
	fail "metrics: expected 3 failed tasks"
[ -z "$(ls "$T/state/tasks")" ] || fail "task directories left: $(ls "$T/state/tasks")"
ls "$T/state/blobs" | grep -v "^$(sha256sum "$T/img.tar" | cut -c1-64)" | grep -q . &&
	fail "a corrupt or partial blob was kept: $(ls -a "$T/state/blobs")"
kill -TERM "$APID"; wait "$APID"; rc=$?; APID=
[ "$rc" = 0 ] || fail "agent exit status $rc after SIGTERM"
echo "all passed"
