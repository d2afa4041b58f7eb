#!/usr/bin/env bash
# submit_start.sh -- submit-to-start latency through the real aicn-coordinator on an idle network
# (a protocol-level agent answers "running" at once), state on disk (synchronous=FULL) and, side by
# side, on tmpfs to show what the two commits on the path cost. Target: <= 50 ms.
set -eu
export AICN_BIN=${AICN_BIN:-$AICN_BUILD/bin}
N=${AICN_BENCH_TASKS:-200}
. "$AICN_SRC/tests/coord/lib.sh"
setup_ca
issue renter alice
issue agent prov1
run() { # STATE_DIR LABEL
	rm -rf "$1"
	write_conf 127.0.0.1:0 "state_dir = $1" "settlement = off" # the scheduler path alone: no escrow
	sed -i '0,/^state_dir = /{/^state_dir = /d}' "$T/coord.conf" # the first (default) one
	sed -i 's/^tick_ms = .*/tick_ms = 1000/' "$T/coord.conf"
	start_coord
	start_agent prov1 --cores 8 --finish-ms 5 --price 0
	out=$(python3 "$AICN_SRC/tests/bench/submit_start.py" "$T" "$PORT" "$N")
	echo "$2: $out"
	kill "$COORD_PID" "$LAST_AGENT"
	wait "$COORD_PID" "$LAST_AGENT" 2>/dev/null || true
	rm -f "$T/prov1.events"
	echo "$out" | sed -n 's/.*median \([0-9.]*\) ms, p90 [0-9.]* ms, p99 \([0-9.]*\) ms.*/\1 \2/p'
}
disk=$(run "$T/state-disk" "state on disk ($(df --output=fstype "$T" | tail -1))" | tail -1)
shm=/dev/shm/aicn-bench.$$
tmpfs=$(run "$shm" "state on tmpfs" | tail -1)
rm -rf "$shm"
set -- $disk
echo "| coordinator submit-to-start latency, idle network, cached image (SUBMIT sent -> renter sees the sandbox started) | \`make bench\` (tests/bench/submit_start.sh) | median $1 ms, p99 $2 ms (state on disk, 2 fsyncs on the path) | same run with the state on tmpfs: median ${tmpfs% *} ms, p99 ${tmpfs#* } ms | target 50 ms: $(awk -v m="$2" 'BEGIN{print (m <= 50 ? "met" : "NOT met")}') at p99 | $(nproc) cores |"
