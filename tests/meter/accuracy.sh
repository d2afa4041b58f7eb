#!/usr/bin/env bash
# accuracy.sh -- a 2-thread CPU-bound job (2 s of CPU) and a sleeping job: meter vs cpu.stat, counts, wall time.
# aicn-timeout: 60
. "$(dirname "$0")/lib.sh"

n=$(newname spin)
"$METER" run --name "$n" -o "$TMP/spin.json" -- "$WORK" spin 2 1 || fail "run spin: exit $?"
cat "$TMP/spin.json"
check_record "$TMP/spin.json"
[ "$(field "$TMP/spin.json" threads_peak)" = 2 ] || fail "threads_peak != 2"
[ "$(field "$TMP/spin.json" procs_forked)" = 1 ] || fail "procs_forked != 1"
[ "$(field "$TMP/spin.json" threads_born)" = 1 ] || fail "threads_born != 1"
[ "$(field "$TMP/spin.json" procs_execed)" = 1 ] || fail "procs_execed != 1"
[ "$(field "$TMP/spin.json" procs_exited)" = 1 ] || fail "procs_exited != 1"
[ "$(field "$TMP/spin.json" exit_code)" = 0 ] || fail "exit_code != 0"
cpu=$(field "$TMP/spin.json" cpu_ns)
wall=$(field "$TMP/spin.json" wall_ns)
# each thread spins until its own CPU clock shows 1 s: 2 s in all, whatever the load
[ "$cpu" -ge 2000000000 ] && [ "$cpu" -lt 2100000000 ] || fail "2 threads x 1 s of CPU metered as $cpu ns"
[ "$wall" -ge 1000000000 ] || fail "wall $wall ns for 1 s of CPU per thread"
expect_gone "$n"

n=$(newname sleep)
"$METER" run --name "$n" -o "$TMP/sleep.json" -- "$WORK" sleep 1 || fail "run sleep: exit $?"
cat "$TMP/sleep.json"
check_record "$TMP/sleep.json"
cpu=$(field "$TMP/sleep.json" cpu_ns)
wall=$(field "$TMP/sleep.json" wall_ns)
[ "$cpu" -lt 50000000 ] || fail "sleeping job used $cpu ns of CPU"
[ "$wall" -ge 1000000000 ] && [ "$wall" -lt 1500000000 ] || fail "wall $wall ns for a 1 s sleep"
[ "$(field "$TMP/sleep.json" switches_voluntary)" -ge 1 ] || fail "a sleep must switch voluntarily"
expect_gone "$n"

# CPU after the exit began (unmapping 256 MiB in the last of 4 exiting threads) is counted:
# the figures are taken after each thread's final switch, not at sched_process_exit
n=$(newname exitheavy)
"$METER" run --name "$n" -o "$TMP/exit.json" -- "$WORK" exitheavy 256 4 || fail "run exitheavy: exit $?"
cat "$TMP/exit.json"
check_record "$TMP/exit.json"
[ "$(field "$TMP/exit.json" threads_peak)" = 4 ] || fail "threads_peak != 4"
expect_gone "$n"

# the exit status of the command is passed through
n=$(newname status)
rc=0
"$METER" run --name "$n" -o "$TMP/st.json" -- sh -c 'exit 7' || rc=$?
[ "$rc" = 7 ] || fail "exit status 7 came back as $rc"
[ "$(field "$TMP/st.json" exit_code)" = 7 ] || fail "record exit_code != 7"
expect_gone "$n"
echo "ok"
