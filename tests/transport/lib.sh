# lib.sh -- shared helpers for the transport test scripts: a CA in a temp dir, the test server, waits.
TESTENV_NAME=aicn-transport TESTENV_TAIL=30
. "$AICN_SRC/tests/lib/testenv.sh" # B, T, PIDS (ended at exit), fail
# issue DIR ROLE NAME [ARGS...] -> $T/NAME.pem, $T/NAME.key
issue() {
	local dir=$1 role=$2 name=$3
	shift 3
	"$B/aicnctl" ca issue --dir "$T/$dir" --role "$role" --name "$name" --out "$T/$name" "$@" \
		>/dev/null || fail "cannot issue $name"
}
setup_ca() {
	"$B/aicnctl" ca init "$T/ca" >/dev/null || fail "ca init"
	issue ca coordinator coord --dns localhost
}
# start_testd [ARGS...]: the test server on an ephemeral port; sets PORT and TESTD_PID
start_testd() {
	rm -f "$T/port"
	"$B/aicn-transport-testd" --ca "$T/ca/ca.pem" --cert "$T/coord.pem" --key "$T/coord.key" \
		--port-file "$T/port" --stats-file "$T/stats.json" "$@" >>"$T/testd.log" 2>&1 &
	TESTD_PID=$!
	PIDS+=("$TESTD_PID")
	for _ in $(seq 100); do
		[ -s "$T/port" ] && break
		sleep 0.05
	done
	[ -s "$T/port" ] || fail "test server did not start"
	PORT=$(cat "$T/port")
}
# wait_log FILE TEXT [SECONDS]
wait_log() {
	local i
	for i in $(seq $((${3:-5} * 20))); do
		grep -qF -- "$2" "$1" && return 0
		sleep 0.05
	done
	return 1
}
# stat NAME: a counter from the test server's stats file
stat() {
	python3 -c "import json,sys; print(json.load(open('$T/stats.json'))['$1'])"
}
