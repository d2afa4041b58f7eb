# lib.sh -- shared by the end-to-end scripts: a whole aicn network on loopback in a temp dir (CA,
# coordinator, agents in cgroups of their own, a renter and an auditor), torn down on any exit.
#
# A script sources it, then: net_init; coord_start [KEY=VALUE...]; agent_add NAME KEY=VALUE...;
# agent_start NAME; ctl ARGS (renter's aicnctl); actl ARGS (auditor's); finish.
# Everything it starts is killed at exit (trap), also on failure or timeout: agents, the
# coordinator, every task supervisor and task (each agent lives in cgroups named
# aicn-e2e-PID-NAME that are emptied and removed), the meter pin directories and $T.
# E2E_KEEP=1 keeps $T; E2E_DIR=DIR uses DIR (emptied first) instead of a temp dir, and keeps it.
# shellcheck shell=bash
set -u
: "${AICN_BIN:?run through make check}"
: "${AICN_SRC:?run through make check}"
: "${AICN_BUILD:?run through make check}"
export LC_ALL=C
[ "$(id -u)" = 0 ] || {
	echo "SKIP: needs root (the agent's eBPF meter, cgroups and namespaces)"
	exit 77
}
for _b in aicn-coordinator aicn-agent aicn-supervise aicnctl; do
	[ -x "$AICN_BIN/$_b" ] || {
		echo "SKIP: $AICN_BIN/$_b does not exist yet (its issue has not landed)"
		exit 77
	}
done

E2E_NAME=$(basename "$0" .sh)
E2E_TAG=aicn-e2e-$$
if [ -n "${E2E_DIR:-}" ]; then
	rm -rf "$E2E_DIR" && mkdir -p "$E2E_DIR" && T=$(cd "$E2E_DIR" && pwd) || exit 1
	E2E_KEEP=1
else
	T=$(mktemp -d "/tmp/aicn-e2e-$E2E_NAME.XXXXXX")
fi
CA=$T/ca
COORD_PID=
COORD_PORT=
COORD_CONF=$T/coord/coordinator.conf
declare -A APID=()  # agent name -> pid
declare -A ACONF=() # agent name -> config file
declare -A AMET=()  # agent name -> metrics port
declare -A ACG=()   # agent name -> its cgroup dirs (space separated)
AGENTS=()
BG_PIDS=() # helpers a script runs in the background (samplers): killed first at teardown
T0=$(date +%s%N)

# --- output ---
now_ms() { echo $((($(date +%s%N) - T0) / 1000000)); }
stamp() { local m; m=$(now_ms); printf '%d.%01ds' $((m / 1000)) $((m % 1000 / 100)); }
step() { echo "--- [$(stamp)] $*"; }
ok() { echo "ok   $*"; }
dump_logs() {
	local f
	for f in "$T"/*.log; do
		[ -f "$f" ] || continue
		echo "--- last lines of $(basename "$f"):"
		tail -n "${1:-25}" "$f" | sed 's/^/    /'
	done
}
# fail MSG: a failed assertion ends the script (and the network)
fail() {
	echo "FAIL: $*"
	dump_logs 40
	exit 1
}
# check DESC CMD...: CMD must succeed
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
finish() {
	echo "all passed in $(stamp)"
	exit 0
}

# pj EXPR: evaluate a Python expression over the JSON document on stdin (bound to d)
pj() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(json.dumps(r) if isinstance(r,(dict,list,bool)) or r is None else r)' "$1"; }

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds
wait_for() {
	local t=$1 end
	shift
	end=$(($(date +%s%N) + t * 1000000000))
	while [ "$(date +%s%N)" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	"$@" >/dev/null 2>&1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the network's identities ---
# issue ROLE NAME [ARGS...] -> $T/NAME.pem, $T/NAME.key
issue() {
	local role=$1 name=$2
	shift 2
	"$AICN_BIN/aicnctl" ca issue --dir "$CA" --role "$role" --name "$name" --out "$T/$name" "$@" \
		>/dev/null || fail "aicnctl ca issue --role $role --name $name"
}
# node_id_of KEY: hex SHA-256 of the raw Ed25519 public key (the node id)
node_id_of() { openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1; }

net_init() {
	"$AICN_BIN/aicnctl" ca init "$CA" --name "aicn-e2e CA" >/dev/null || fail "aicnctl ca init"
	issue coordinator coord --dns localhost
	issue renter renter
	issue auditor auditor
	mkdir -p "$T/coord"
}

# --- the coordinator ---
# coord_config [KEY=VALUE...]: write its config (listen on any free loopback port, told by port_file)
coord_config() {
	local kv k
	local -A v=(
		[listen]=127.0.0.1:0 [port_file]=$T/coord/port [cert]=$T/coord.pem [key]=$T/coord.key
		[ca]=$CA/ca.pem [crl]=$CA/crl.pem [state_dir]=$T/coord/state [network]=$E2E_TAG
		[heartbeat_timeout]=25 # agents send a HEARTBEAT every 10 s
		[tick_ms]=200
		# Settlement (on by default) adds a validation replica for a node it does not
		# trust yet: scenarios about placement and failover count replicas exactly, so
		# they run without money; settlement.sh and the demo pass settlement=on.
		[settlement]=off
	)
	local -a order=(listen port_file cert key ca crl state_dir network heartbeat_timeout tick_ms settlement)
	# E2E_COORD_EXTRA="log_level=debug ...": more keys when debugging a test
	for kv in "$@" ${E2E_COORD_EXTRA:-}; do
		k=${kv%%=*}
		[ -n "${v[$k]+set}" ] || order+=("$k")
		v[$k]=${kv#*=}
	done
	{
		echo "# written by tests/e2e/lib.sh"
		echo "[coordinator]"
		for k in "${order[@]}"; do echo "$k = ${v[$k]}"; done
	} >"$COORD_CONF"
	mkdir -p "$T/coord/state"
}
# coord_mint ACCOUNT AICN: the operator's faucet (offline: the coordinator must not be running)
coord_mint() {
	"$AICN_BIN/aicn-coordinator" mint --db "$(coord_db)" --account "$1" --amount "$2" >>"$T/mint.log" 2>&1
}
coord_has_mint() { "$AICN_BIN/aicn-coordinator" mint --help 2>&1 | grep -q -- '--account'; }
# coord_start [KEY=VALUE...]: start it (a restart keeps its state and its port); waits until it
# listens.  Before the first start the renter gets RENTER_FUNDS AICN (default 1000000) for escrows.
coord_start() {
	if [ ! -f "$COORD_CONF" ]; then
		coord_config "$@"
		# A script that sets RENTER_FUNDS needs the faucet; the others use it when it exists.
		if [ -n "${RENTER_FUNDS:-}" ] || coord_has_mint; then
			coord_mint renter "${RENTER_FUNDS:-1000000}" ||
				fail "aicn-coordinator mint: $(tail -n 3 "$T/mint.log")"
		fi
	fi
	rm -f "$T/coord/port"
	"$AICN_BIN/aicn-coordinator" --config "$COORD_CONF" >>"$T/coordinator.log" 2>&1 &
	COORD_PID=$!
	wait_for 15 test -s "$T/coord/port" || fail "the coordinator did not write its port file"
	if [ -z "$COORD_PORT" ]; then
		COORD_PORT=$(cat "$T/coord/port")
		# the agents and clients know this port: a restart must listen on it again
		sed -i "s/^listen = .*/listen = 127.0.0.1:$COORD_PORT/" "$COORD_CONF"
		ctl_config
	fi
	wait_for 15 coord_listening || fail "the coordinator does not listen on 127.0.0.1:$COORD_PORT"
}
coord_listening() {
	kill -0 "$COORD_PID" 2>/dev/null && ss -Htln "sport = :$COORD_PORT" | grep -q .
}
coord_kill9() {
	kill -KILL "$COORD_PID" 2>/dev/null
	wait "$COORD_PID" 2>/dev/null
	COORD_PID=
}
coord_stop() {
	[ -n "$COORD_PID" ] || return 0
	kill -TERM "$COORD_PID" 2>/dev/null
	wait_pid_gone "$COORD_PID" 10 || kill -KILL "$COORD_PID" 2>/dev/null
	wait "$COORD_PID" 2>/dev/null
	COORD_PID=
}
# The coordinator's SQLite database (for read-only checks: nothing stored, no duplicates)
coord_db() { echo "$T/coord/state/coordinator.db"; }
coord_sql() { sqlite3 -readonly -batch -noheader "file:$(coord_db)?mode=ro" "$1"; }

# --- clients ---
ctl_config() {
	local who
	for who in renter auditor; do
		cat >"$T/$who.conf" <<EOF
# aicnctl client configuration for the $who (written by tests/e2e/lib.sh)
coordinator = 127.0.0.1:$COORD_PORT
cert = $T/$who.pem
key = $T/$who.key
ca = $CA/ca.pem
EOF
	done
}
# ctl ARGS...: aicnctl as the renter; actl: as the auditor (operator views)
ctl() { AICNCTL_CONFIG=$T/renter.conf "$AICN_BIN/aicnctl" "$@"; }
actl() { AICNCTL_CONFIG=$T/auditor.conf "$AICN_BIN/aicnctl" "$@"; }
# raw TYPE JSON [TYPE JSON...]: protocol messages as the renter, one JSON line per message received
raw() {
	python3 "$AICN_SRC/tests/e2e/rawclient.py" --addr "127.0.0.1:$COORD_PORT" --ca "$CA/ca.pem" \
		--cert "$T/renter.pem" --key "$T/renter.key" --wait 10 "$@"
}

# --- agents ---
# each agent runs in cgroups of its own: cg_make, cg_enter, cg_teardown
. "$AICN_SRC/tests/lib/cgroup.sh"

# agent_add NAME [KEY=VALUE...]: its certificate (its node key), state dir and config
agent_add() {
	local name=$1 kv d
	shift
	issue agent "$name"
	mkdir -p "$T/agents/$name"
	AMET[$name]=$(free_port)
	ACONF[$name]=$T/agents/$name.conf
	{
		echo "# agent $name (written by tests/e2e/lib.sh)"
		echo "[agent]"
		echo "coordinator = 127.0.0.1:$COORD_PORT"
		echo "cert = $T/$name.pem"
		echo "key = $T/$name.key"
		echo "ca = $CA/ca.pem"
		echo "state_dir = $T/agents/$name"
		echo "metrics_listen = 127.0.0.1:${AMET[$name]}"
		for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
	} >"${ACONF[$name]}"
	ACG[$name]=$(cg_make "$E2E_TAG-$name" | tr '\n' ' ')
	AGENTS+=("$name")
}
agent_pin_dir() { echo "/sys/fs/bpf/$E2E_TAG-$1"; }
agent_node() { node_id_of "$T/$1.key"; }
# agent_pub NAME: the path of its node's public key (PEM), for aicnctl audit and openssl
agent_pub() {
	[ -s "$T/$1.pub" ] || openssl pkey -in "$T/$1.key" -pubout -out "$T/$1.pub"
	echo "$T/$1.pub"
}
# agent_start NAME: runs inside its own cgroups, with its own meter pin directory
agent_start() {
	local name=$1
	(
		# shellcheck disable=SC2086
		cg_enter ${ACG[$name]}
		exec env AICN_METER_PIN_DIR="$(agent_pin_dir "$name")" "$AICN_BIN/aicn-agent" --config "${ACONF[$name]}"
	) >>"$T/agent-$name.log" 2>&1 &
	APID[$name]=$!
}
agent_alive() { kill -0 "${APID[$1]}" 2>/dev/null; }
# agent_metric NAME REGEX: the value of the first /metrics line matching REGEX
agent_metric() {
	curl -sf --max-time 2 "http://127.0.0.1:${AMET[$1]}/metrics" | grep -E "^$2" | head -n1 | awk '{print $NF}'
}
agent_registered() { [ "$(agent_metric "$1" 'aicn_agent_coordinator_connection\{state="registered"\}')" = 1 ]; }
# wait_registered NAME...: each agent registered and listed online by the coordinator
wait_registered() {
	local n
	for n in "$@"; do
		wait_for 30 agent_registered "$n" || fail "agent $n did not register (metrics say: $(curl -sf "http://127.0.0.1:${AMET[$n]}/metrics" | grep connection | tr '\n' ' '))"
		wait_for 10 provider_online "$(agent_node "$n")" || fail "the coordinator does not list agent $n online"
	done
}
agent_stop() {
	local p=${APID[$1]}
	kill -TERM "$p" 2>/dev/null
	wait_pid_gone "$p" 15 || fail "agent $1 did not stop within 15 s of SIGTERM"
	wait "$p" 2>/dev/null
}
agent_kill9() {
	kill -KILL "${APID[$1]}" 2>/dev/null
	wait "${APID[$1]}" 2>/dev/null
}
wait_pid_gone() {
	for _ in $(seq $((${2:-10} * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}
# A task's supervisor as its state file names it: "PID KIND"
sup_state() {
	local f=$T/agents/$1/tasks/$2/supervise.state
	[ -f "$f" ] || return 1
	echo "$(sed -n 's/^supervisor_pid=//p' "$f") $(sed -n 's/^kind=//p' "$f")"
}

# --- market, tasks ---
market_json() { ctl market --json; }
provider_online() { market_json | pj "any(p['node_id'] == '$1' and p['online'] for p in d['providers'])" | grep -qx true; }
# reply TYPE JSON: the data of the coordinator's REPLY to one request (raw protocol), or fails
reply() { raw "$1" "$2" | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("type") == "REPLY": print(json.dumps(m["data"])); sys.exit(0)
    if m.get("type") == "ERROR" and m.get("ref") == 1: print(m["code"] + ": " + m["message"], file=sys.stderr); sys.exit(4)
sys.exit(1)'; }
# task_status ID: STATUS of the task (its state and replicas), as JSON
task_status() { reply STATUS "{\"task_id\":\"$1\"}"; }
task_state() { task_status "$1" | pj "d['state'].upper()"; }
task_is() { [ "$(task_state "$1")" = "${2^^}" ]; }
# ran_on ID: the agents whose signed meter log holds a final record of the task
ran_on() {
	local n
	for n in "${AGENTS[@]}"; do
		grep -q "\"task\":\"$1\".*\"type\":\"final\"" "$T/agents/$n/meter.log" 2>/dev/null && echo "$n"
	done
}
# wait_task ID STATE SECONDS
wait_task() { wait_for "$3" task_is "$1" "$2" || fail "task $1 is $(task_state "$1"), not $2 after $3 s"; }

# --- images ---
# make_image NAME: a real OCI image layout of Debian's busybox-static (3 layers, whiteouts) in $T/NAME
make_image() {
	python3 "$AICN_SRC/tests/sandbox/mkimage.py" busybox "$T/$1" >/dev/null || fail "cannot build the busybox OCI image"
}

# --- teardown ---
net_teardown() {
	local rc=$? n p d
	trap - EXIT INT TERM
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for n in "${AGENTS[@]}"; do
		p=${APID[$n]:-}
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	done
	[ -n "$COORD_PID" ] && kill -TERM "$COORD_PID" 2>/dev/null
	for n in "${AGENTS[@]}"; do
		p=${APID[$n]:-}
		[ -n "$p" ] && { wait_pid_gone "$p" 5 || kill -KILL "$p" 2>/dev/null; }
	done
	[ -n "$COORD_PID" ] && { wait_pid_gone "$COORD_PID" 5 || kill -KILL "$COORD_PID" 2>/dev/null; }
	# Supervisors and tasks outlive their agent by design: empty each agent's cgroups.
	for n in "${AGENTS[@]}"; do
		# shellcheck disable=SC2086
		cg_teardown ${ACG[$n]}
		d=$(agent_pin_dir "$n")
		if [ -d "$d" ]; then
			AICN_METER_PIN_DIR=$d "$AICN_BIN/aicn-meter" cleanup >/dev/null 2>&1
			rm -rf "$d"
		fi
	done
	wait 2>/dev/null
	# Daemons built with SAN=1 report leaks and undefined behaviour on exit: any report fails the test.
	local san
	san=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T"/*.log 2>/dev/null)
	if [ -n "$san" ]; then
		for d in $san; do
			echo "FAIL: sanitizer report in $(basename "$d"):"
			grep -m1 -A25 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$d" | sed 's/^/    /'
		done
		E2E_KEEP=1
		rc=1
	fi
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		echo "kept $T"
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap net_teardown EXIT
trap 'echo "interrupted"; exit 1' INT TERM

# --- renter commands (aicnctl) ---
# submit OPTIONS... -- CMD...: submit as the renter; prints the task id
submit() {
	local out
	out=$(ctl submit "$1" --json "${@:2}") || {
		echo "aicnctl submit $*: exit $?: $out" >&2
		return 1
	}
	echo "$out" | pj "d['task_id']"
}
