# testenv.sh -- the common head of the daemon tests' libraries (tests/coord/lib.sh, tests/transport/lib.sh):
# $B the built programs, a temp dir $T, background PIDS ended at exit, and fail() with the logs' tails.
# Set TESTENV_NAME (the temp dir's prefix) before sourcing; TESTENV_TAIL lines of each log (default 40).
# shellcheck shell=bash
set -u
B=${AICN_BIN:?run through tests/run or make check}
T=$(mktemp -d "/tmp/${TESTENV_NAME:-aicn-test}.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n "${TESTENV_TAIL:-40}" "$f"; }; done
	exit 1
}
