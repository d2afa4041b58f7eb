# lib.sh -- shared by the agent's end-to-end scripts: CA and certificates, a real aicn-coordinator, aicn-agent
# instances with their own state, meter pins and cgroups, a renter (renter.py); everything torn down on exit.
# The agent runs in cgroups of the test's own (aicn-agent-test-PID, so its aicn-tasks-* cgroups nest
# there): teardown kills what is left in them and removes them, and a cgroup left behind fails the test.
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (eBPF meter, cgroups, namespaces)"; exit 77; }
: "${AICN_BIN:?run through make check}"
COORD=${AICN_COORDINATOR:-$AICN_BIN/aicn-coordinator}
[ -x "$COORD" ] || { echo "SKIP: no aicn-coordinator built"; exit 77; }
. "$AICN_SRC/tests/lib/cgroup.sh"
T=$(mktemp -d /tmp/aicn-agent-e2e.XXXXXX)
PIN=/sys/fs/bpf/aicn-test-agent-$$
CPID= APID= PORT=
CTL=$AICN_BIN/aicnctl
CGS=$(cg_make "aicn-agent-test-$$")

cleanup() {
	[ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
	local leaked=0
	# shellcheck disable=SC2086
	agent_test_teardown "$T/agent" "$T/agent.log" "$PIN" $CGS || leaked=1
	rm -rf "$T"
	[ "$leaked" = 0 ] || { echo "FAIL: the test left cgroups behind"; exit 1; }
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "--- agent log"; tail -40 "$T/agent.log" 2>/dev/null
	echo "--- coordinator log"; tail -20 "$T/coord.log" 2>/dev/null
	exit 1
}
wait_for() { # SECONDS CMD...: until CMD succeeds
	local n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

# net_start [AGENT-KEY=VALUE...]: CA, certificates, coordinator, one agent (registered)
net_start() {
	$CTL ca init "$T/ca" >/dev/null || fail "ca init"
	$CTL ca issue --dir "$T/ca" --role coordinator --name coord --out "$T/coord" --dns localhost >/dev/null || fail "issue coordinator"
	$CTL ca issue --dir "$T/ca" --role agent --name node-a --out "$T/agent" >/dev/null || fail "issue agent"
	$CTL ca issue --dir "$T/ca" --role renter --name alice --out "$T/alice" >/dev/null || fail "issue renter"
	mkdir -p "$T/coordstate" "$T/agent"
	# settlement is on (the default): the renter's escrows need funds
	"$COORD" mint --db "$T/coordstate/coordinator.db" --account alice --amount 1000 >"$T/mint.log" 2>&1 ||
		fail "aicn-coordinator mint: $(cat "$T/mint.log")"
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
	wait_for 10 test -s "$T/coord.port" || fail "coordinator did not start"
	PORT=$(cat "$T/coord.port")
	{
		echo "[agent]"
		echo "coordinator = 127.0.0.1:$PORT"
		echo "cert = $T/agent.pem"
		echo "key = $T/agent.key"
		echo "ca = $T/ca/ca.pem"
		echo "state_dir = $T/agent"
		echo "ask_price = 1000"
		echo "location = test/lo"
		echo "metrics_listen = 127.0.0.1:0"
		for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
	} > "$T/agent.conf"
	agent_start
	# a busybox OCI image, as a layout tar
	python3 "$AICN_SRC/tests/sandbox/mkimage.py" busybox "$T/img" >/dev/null || fail "mkimage"
	tar -C "$T/img" -cf "$T/img.tar" oci-layout index.json blobs || fail "tar image"
}
agent_start() {
	local before
	before=$(grep -c "registered with the coordinator" "$T/agent.log" 2>/dev/null)
	(
		# shellcheck disable=SC2086
		cg_enter $CGS || exit 1
		exec env AICN_METER_PIN_DIR="$PIN" "$AICN_BIN/aicn-agent" --config "$T/agent.conf"
	) >>"$T/agent.log" 2>&1 &
	APID=$!
	wait_for 30 agent_registered_after "${before:-0}" || fail "agent did not register"
}
agent_registered_after() {
	local n
	n=$(grep -c "registered with the coordinator" "$T/agent.log" 2>/dev/null)
	[ "${n:-0}" -gt "$1" ]
}
agent_kill9() { kill -9 "$APID"; wait "$APID" 2>/dev/null; APID=; }
renter() { python3 "$AICN_SRC/tests/agent/renter.py" "$T/alice" "$T/ca/ca.pem" "$PORT" "$@"; }
metrics() { curl -sf --max-time 2 "http://$(cat "$T/agent/metrics.addr")/metrics"; }
# finals ID: how many final records of task ID the node's meter log holds
finals() { grep -c "\"task\":\"$1\".*\"type\":\"final\"" "$T/agent/meter.log"; }
