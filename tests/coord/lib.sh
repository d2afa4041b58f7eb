# lib.sh -- helpers for the coordinator daemon tests: a CA in a temp dir, aicn-coordinator, agent drivers.
TESTENV_NAME=aicn-coord
. "$AICN_SRC/tests/lib/testenv.sh" # B, T, PIDS (ended at exit), fail
# issue ROLE NAME -> $T/NAME.pem, $T/NAME.key
issue() {
	"$B/aicnctl" ca issue --dir "$T/ca" --role "$1" --name "$2" --out "$T/$2" >/dev/null ||
		fail "cannot issue $2"
}
setup_ca() {
	"$B/aicnctl" ca init "$T/ca" >/dev/null || fail "ca init"
	issue coordinator coord
}
# write_conf [LISTEN] [EXTRA LINES...] -> $T/coord.conf
write_conf() {
	local listen=${1:-127.0.0.1:0}
	shift || true
	{
		echo "[coordinator]"
		echo "listen = $listen"
		echo "port_file = $T/port"
		echo "cert = $T/coord.pem"
		echo "key = $T/coord.key"
		echo "ca = $T/ca/ca.pem"
		echo "state_dir = $T/state"
		echo "tick_ms = 200"
		for l in "$@"; do echo "$l"; done
	} >"$T/coord.conf"
}
# start_coord: the daemon on $T/coord.conf; sets PORT and COORD_PID
start_coord() {
	rm -f "$T/port"
	"$B/aicn-coordinator" --config "$T/coord.conf" >>"$T/coord.log" 2>&1 &
	COORD_PID=$!
	PIDS+=("$COORD_PID")
	for _ in $(seq 200); do
		[ -s "$T/port" ] && break
		kill -0 "$COORD_PID" 2>/dev/null || fail "coordinator exited"
		sleep 0.05
	done
	[ -s "$T/port" ] || fail "coordinator did not start"
	PORT=$(cat "$T/port")
}
# start_agent NAME [DRIVER ARGS...]: an agent driver logging to $T/NAME.events
start_agent() {
	local name=$1
	shift
	"$B/aicn-coord-agent-driver" --ca "$T/ca/ca.pem" --cert "$T/$name.pem" --key "$T/$name.key" \
		--port "$PORT" --log "$T/$name.events" "$@" >>"$T/$name.log" 2>&1 &
	PIDS+=("$!")
	LAST_AGENT=$!
	wait_file "$T/$name.events" READY 10 || fail "agent $name did not register"
}
# wait_file FILE TEXT [SECONDS]
wait_file() {
	local i
	for i in $(seq $((${3:-5} * 20))); do
		[ -f "$1" ] && grep -qF -- "$2" "$1" && return 0
		sleep 0.05
	done
	return 1
}
