#!/usr/bin/env bash
# limits.sh -- resource limits and endings: fork bomb, memory bomb, /tmp and /work disk and inode fill,
# CPU beyond its cores, wall timeout, cancel, output flood, daemonized leftovers, refused limits, cleanup.
# aicn-timeout: 300
set -uo pipefail
. "$AICN_SRC/tests/sandbox/lib.sh"

make_image busybox bb >/dev/null
mounts_before=$(wc -l </proc/self/mountinfo)
# run NAME [options] -- CMD: result JSON in $T/NAME.json, stdout in $T/NAME.out, exit status in $rc
run() {
	local name=$1
	shift
	$SBX run --result "$T/$name.json" --cache "$CACHE" "$@" >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
	echo "    [$name] exit $rc: $(cat "$T/$name.json" 2>/dev/null)"
}
gone() { # the task's v2 cgroup no longer exists
	local id
	id=$(json "$T/$1.json" cgroup_id)
	[ -n "$id" ] && [ -z "$(find /sys/fs/cgroup/unified /sys/fs/cgroup -maxdepth 6 -inum "$id" -type d 2>/dev/null | head -1)" ]
}

run exit "$T/bb" -- /bin/sh -c 'echo out; echo err >&2; exit 7'
[ $rc = 7 ] && [ "$(json "$T/exit.json" status)" = exited ] && [ "$(json "$T/exit.json" exit_code)" = 7 ] &&
	[ "$(cat "$T/exit.out")" = out ] && grep -q '^err$' "$T/exit.err" && ok "exit status and output" || fail "exit"
gone exit && ok "task cgroup removed" || fail "task cgroup left behind"

run notfound "$T/bb" -- /bin/no-such-command
[ $rc = 125 ] && [ "$(json "$T/notfound.json" status)" = setup_failed ] && grep -q "execve" "$T/notfound.json" &&
	ok "missing command is a setup failure with a reason" || fail "missing command"

# fork bomb: pids limit holds, the timeout ends it, nothing survives
run forkbomb --pids 64 --timeout 3 "$T/bb" -- /bin/sh -c 'b() { b & b & wait; }; while :; do b; done'
st=$(json "$T/forkbomb.json" status)
{ [ "$st" = timeout ] || [ "$st" = exited ]; } && grep -q "can't fork" "$T/forkbomb.err" &&
	[ "$(json "$T/forkbomb.json" wall_ns)" -lt 8000000000 ] &&
	ok "fork bomb hits pids.max and ends ($st)" || fail "fork bomb: $(head -c 300 "$T/forkbomb.err")"
gone forkbomb && ok "fork bomb cgroup removed" || fail "fork bomb cgroup left"

# memory bomb: only the task is OOM-killed
sleep 60 &
bystander=$!
run membomb --memory 32M "$T/bb" -- /bin/sh -c 'sleep 30 & exec /bin/sbx-probe membomb 512'
[ $rc = 137 ] && [ "$(json "$T/membomb.json" status)" = oom ] && [ "$(json "$T/membomb.json" oom_kills)" -ge 1 ] &&
	ok "memory bomb OOM-killed inside its 32M limit" || fail "memory bomb"
peak=$(json "$T/membomb.json" memory_peak)
[ "$peak" -le $((33 << 20)) ] && ok "memory peak $peak <= limit" || fail "memory peak $peak above 32M"
kill -0 $bystander && ok "a host process beside it survives" || fail "bystander died"
kill $bystander; wait $bystander 2>/dev/null

# disk and inode fill of /tmp, /work and /dev/shm stop at their sizes
run filltmp --tmp-size 8M "$T/bb" -- /bin/sbx-probe fill /tmp 64
[ $rc = 0 ] && grep -q "DENIED fill of /tmp stopped at 83886" "$T/filltmp.out" && ok "/tmp fill stops at 8M" || fail "/tmp fill: $(cat "$T/filltmp.out")"
run fillwork --work-size 8M "$T/bb" -- /bin/sbx-probe fill /work 64
[ $rc = 0 ] && grep -q "DENIED" "$T/fillwork.out" && ok "/work fill stops at 8M" || fail "/work fill: $(cat "$T/fillwork.out")"
run fillshm --tmp-size 8M "$T/bb" -- /bin/sbx-probe fill /dev/shm 64
[ $rc = 0 ] && grep -q "DENIED" "$T/fillshm.out" && ok "/dev/shm fill stops" || fail "/dev/shm fill"
run inodes --inodes 500 "$T/bb" -- /bin/sh -c '/bin/sbx-probe inodes /tmp 5000 && /bin/sbx-probe inodes /work 5000'
[ $rc = 0 ] && [ "$(grep -c DENIED "$T/inodes.out")" = 2 ] && ok "inode fill of /tmp and /work stops at 500" || fail "inodes: $(cat "$T/inodes.out")"

# CPU beyond its cores: CPU time <= cores x wall x 1.05
run spin --cores 0.5 --timeout 3 "$T/bb" -- /bin/sbx-probe spin 2 30
cpu=$(json "$T/spin.json" cpu_ns)
wall=$(json "$T/spin.json" wall_ns)
python3 -c "import sys; c,w=$cpu,$wall; sys.exit(0 if c <= 0.5*w*1.05 and c >= 0.5*w*0.3 else 1)" &&
	ok "2 spinners on 0.5 cores: cpu $((cpu / 1000000)) ms in $((wall / 1000000)) ms" || fail "cpu $cpu wall $wall"
[ "$(json "$T/spin.json" status)" = timeout ] && [ $rc = 124 ] && ok "timeout reported" || fail "spin status"

# wall timeout on a sleeping task
run sleep --timeout 1 "$T/bb" -- /bin/sleep 100
w=$(json "$T/sleep.json" wall_ns)
[ $rc = 124 ] && [ "$w" -lt 3000000000 ] && [ "$w" -ge 1000000000 ] && ok "wall timeout after $((w / 1000000)) ms" || fail "timeout wall $w"

# double-fork/setsid daemons do not outlive the task
marker=$((900000 + RANDOM))
run daemon "$T/bb" -- /bin/sbx-probe daemon $marker
[ $rc = 0 ] && ! pgrep -f "sleep $marker" >/dev/null && ok "daemonized grandchild killed with the task" || fail "daemon left: $(pgrep -af "sleep $marker")"
gone daemon && ok "daemon's cgroup removed" || fail "daemon cgroup left"

# cancel (SIGTERM to aicn-sandbox) kills the whole cgroup
$SBX run --result "$T/cancel.json" --cache "$CACHE" "$T/bb" -- /bin/sh -c "sleep 1$marker & sleep 1$marker" >/dev/null 2>&1 &
sbx=$!
sleep 1
kill -TERM $sbx
wait $sbx
rc=$?
[ $rc = 130 ] && [ "$(json "$T/cancel.json" status)" = canceled ] && ! pgrep -f "sleep 1$marker" >/dev/null &&
	ok "cancel kills the task and its children" || fail "cancel: rc $rc $(cat "$T/cancel.json")"

# a task printing 10 GB is cut at the output limit
run flood --output-limit 1M "$T/bb" -- /bin/sbx-probe yes
size=$(stat -c %s "$T/flood.out")
[ $rc = 141 ] && [ "$(json "$T/flood.json" status)" = output_limit ] && [ "$size" = 1048576 ] &&
	ok "10 GB of output cut at 1 MiB ($(($(json "$T/flood.json" wall_ns) / 1000000)) ms)" || fail "flood: rc $rc size $size"

# a limit that cannot be enforced refuses the run
run refuse --cores 0.001 "$T/bb" -- /bin/true
[ $rc = 125 ] && grep -q "too small" "$T/refuse.err" && ok "unenforceable CPU limit refused" || fail "refuse: $(cat "$T/refuse.err")"

# with the eBPF meter (a private pin directory): exact CPU time beside cpu.stat
AICN_METER_PIN_DIR=/sys/fs/bpf/aicn-sbx-test-$$ run meter --meter "$T/bb" -- /bin/sbx-probe spin 2 0.5
[ $rc = 0 ] && [ "$(json "$T/meter.json" cpu_source)" = meter ] && [ "$(json "$T/meter.json" meter_crosscheck)" = true ] &&
	[ "$(json "$T/meter.json" cpu_ns)" -gt 0 ] && ok "metered: $(json "$T/meter.json" cpu_ns) ns, cpu.stat $(json "$T/meter.json" cgroup_cpu_ns) ns" ||
	fail "meter: $(cat "$T/meter.err")"
[ ! -e /sys/fs/bpf/aicn-sbx-test-$$ ] && ok "meter pins released" || fail "meter pins left"
gone meter && ok "metered task's cgroup removed" || fail "metered cgroup left"

[ "$(wc -l </proc/self/mountinfo)" = "$mounts_before" ] && ok "no mount left in the host namespace" || fail "host mounts changed"
finish
