#!/usr/bin/env bash
# meter.sh -- meter benchmarks: accuracy vs cpu.stat per workload, context-switch overhead with and
# without the meter side by side, and each probe's own ns per event from bpf_stats.
# Prints markdown rows for docs/benchmarks.md.  Needs root; restores kernel.bpf_stats_enabled.
set -euo pipefail
: "${AICN_BUILD:?run through make bench}"
METER=$AICN_BIN/aicn-meter
WORK=$AICN_BUILD/tests/meter-work
PIN=/sys/fs/bpf/aicn-bench-$$
export AICN_METER_PIN_DIR=$PIN
TMP=$(mktemp -d)
ROUNDS=${METER_BENCH_ROUNDS:-5}
LOOPS=${METER_BENCH_LOOPS:-100000}
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
# (bpf_stats stay off until the probe-cost part: they add two clock reads to every probe run)
bgpid=
cleanup() {
	set +e # restore everything, whatever fails
	if [ -n "$bgpid" ]; then
		kill "$bgpid" 2>/dev/null
		wait "$bgpid" 2>/dev/null
	fi
	sysctl -qw kernel.bpf_stats_enabled="$old_stats" || true
	"$METER" cleanup --pin-dir "$PIN" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "meter bench: needs root"; exit 1; }
machine="$(nproc) cores, $(uname -r)"

echo "### accuracy: meter vs cpu.stat (one run each)"
echo "| workload | command | meter cpu_ns | cpu.stat ns | diff ns | within 0.01% + 2 us |"
echo "|---|---|---|---|---|---|"
acc() { # acc NAME CMD...
	local name=$1
	shift
	"$METER" run -o "$TMP/rec.json" -- "$@" >/dev/null 2>"$TMP/err" || true
	python3 - "$TMP/rec.json" "$name" "$*" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m, k = r["cpu_ns"], r["kernel_cpu_ns"]
cmd = sys.argv[3].split("/")[-1] if sys.argv[3].startswith("/") else sys.argv[3]
print(f"| {sys.argv[2]} | `{cmd}` | {m} | {k} | {m - k:+d} | {r['crosscheck']} |")
PY
}
acc "spinner (2 threads)" "$WORK" spin 2 1
acc "fork storm" "$WORK" forkstorm 3000
if command -v stress-ng >/dev/null; then
	acc "stress-ng --cpu" stress-ng --cpu 2 --cpu-ops 4000 --quiet
fi
acc "pipe ping-pong" "$WORK" pingpong 100000

# perf bench sched pipe: both ends on one CPU, so every message is two context switches.
perf bench sched pipe -l 10 >/dev/null 2>&1 || { echo "meter bench: perf bench (linux-perf) missing"; exit 1; }
bench=(perf bench sched pipe -l "$LOOPS")
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

V2=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
SELF=$(sed -n 's/^0:://p' /proc/self/cgroup)
[ "$SELF" = / ] && SELF=
# plain_run: the benchmark in a plain (unmetered) cgroup; prints "usecs/op cpu_ns"
plain_run() {
	local cg=$V2$SELF/aicn-bench-$$-plain us
	mkdir "$cg"
	us=$(sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$cg" taskset -c 1 "${bench[@]}" 2>/dev/null |
		awk '/usecs\/op/ { print $1 }')
	echo "$us $(awk '$1 == "usage_usec" { print $2 * 1000 }' "$cg/cpu.stat")"
	rmdir "$cg"
}
# metered_run: the same inside `aicn-meter run`; prints "usecs/op cpu_ns"
metered_run() {
	local us
	us=$("$METER" run -o "$TMP/bench.json" -- taskset -c 1 "${bench[@]}" 2>/dev/null |
		awk '/usecs\/op/ { print $1 }')
	echo "$us $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel_cpu_ns"])' "$TMP/bench.json")"
}

echo
echo "### overhead: context-switch-heavy benchmark, $ROUNDS interleaved rounds"
# a: no meter loaded; b: meter loaded (one task tracked), benchmark outside it; c: benchmark metered.
# Wall time per op suffers from the other tenants of a shared box; the benchmark's own CPU
# time (cpu.stat of its cgroup, which includes the probe's cost) much less so.
: >"$TMP/a"
: >"$TMP/b"
: >"$TMP/c"
for _ in $(seq "$ROUNDS"); do
	plain_run >>"$TMP/a"
	"$METER" run -o /dev/null -- sleep 600 2>/dev/null &
	bgpid=$!
	for _ in $(seq 50); do [ -e "$PIN/link_free" ] && break; sleep 0.1; done
	plain_run >>"$TMP/b"
	kill "$bgpid"
	wait "$bgpid" 2>/dev/null || true
	bgpid=
	metered_run >>"$TMP/c"
done
col() { awk -v c="$1" '{ print $c }' "$2"; }
minimum() { sort -g | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
per_op() { awk -v a="$1" -v n="$LOOPS" 'BEGIN { printf "%.0f", a / n }'; }
for k in a b c; do
	eval "${k}_wall=\$(col 1 \"\$TMP/\$k\" | median)"
	eval "${k}_cpu=\$(col 2 \"\$TMP/\$k\" | minimum)"
	eval "${k}_cpum=\$(col 2 \"\$TMP/\$k\" | median)"
done
echo "| what | command | ours | peer (no meter) | ratio | machine |"
echo "|---|---|---|---|---|---|"
echo "| CPU per round trip, metered task (best of $ROUNDS) | \`taskset -c 1 perf bench sched pipe -l $LOOPS\` in \`aicn-meter run\` vs in a plain cgroup; CPU from cpu.stat | $(per_op "$c_cpu") ns/op | $(per_op "$a_cpu") ns/op | $(ratio "$c_cpu" "$a_cpu") | $machine, load $(cut -d' ' -f1 /proc/loadavg) |"
echo "| same, medians | | $(per_op "$c_cpum") ns/op | $(per_op "$a_cpum") ns/op | $(ratio "$c_cpum" "$a_cpum") | |"
echo "| CPU per round trip, other tasks while the meter runs (best of $ROUNDS) | same benchmark outside any tracked cgroup | $(per_op "$b_cpu") ns/op | $(per_op "$a_cpu") ns/op | $(ratio "$b_cpu" "$a_cpu") | |"
echo "| wall time per round trip, metered task (medians) | as reported by perf bench | $c_wall us/op | $a_wall us/op | $(ratio "$c_wall" "$a_wall") | |"
echo "| wall time per round trip, other tasks (medians) | as reported by perf bench | $b_wall us/op | $a_wall us/op | $(ratio "$b_wall" "$a_wall") | |"

echo
echo "### probe cost: ns per event of each program (bpf_stats, median of $ROUNDS rounds)"
# Nothing runs per context switch; per thread the probes run at fork, exec, exit, free (and moves),
# per CPU once per tick (on every hrtimer expiry, returning at once for the others).
sysctl -qw kernel.bpf_stats_enabled=1
# keep the meter loaded with one tracked (sleeping) task while we measure
"$METER" run -o /dev/null -- sleep 600 &
bgpid=$!
for _ in $(seq 50); do [ -e "$PIN/link_free" ] && break; sleep 0.1; done
sleep 0.3
links=(link_fork link_exit link_free link_tick)
declare -A prog
for l in "${links[@]}"; do
	prog[$l]=$(bpftool link show pinned "$PIN/$l" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])')
done
stats() { bpftool prog show id "$1" -j | python3 -c 'import json,sys; p=json.load(sys.stdin); print(p.get("run_time_ns",0), p.get("run_cnt",0))'; }
snap() { for l in "${links[@]}"; do echo "$l $(stats "${prog[$l]}")"; done; }
for l in "${links[@]}"; do : >"$TMP/ns_$l"; : >"$TMP/cnt_$l"; done
for _ in $(seq "$ROUNDS"); do
	snap >"$TMP/s0"
	"$METER" run -o /dev/null -- "$WORK" forkstorm 3000 >/dev/null 2>&1
	"$METER" run -o /dev/null -- "$WORK" spin 2 0.5 >/dev/null 2>&1
	snap >"$TMP/s1"
	join "$TMP/s0" "$TMP/s1" | while read -r l t0 c0 t1 c1; do
		awk -v t="$((t1 - t0))" -v c="$((c1 - c0))" 'BEGIN { if (c > 0) printf "%.1f\n", t / c; else print "nan" }' >>"$TMP/ns_$l"
		echo "$((c1 - c0))" >>"$TMP/cnt_$l"
	done
done
sysctl -qw kernel.bpf_stats_enabled="$old_stats"
echo "| program | event | ns/event (median) | events per round (fork storm of 3,000 + 2 threads x 0.5 s spin) | machine |"
echo "|---|---|---|---|---|"
echo "| meter_fork | tp_btf/sched_process_fork (every fork on the host) | $(median <"$TMP/ns_link_fork") | $(median <"$TMP/cnt_link_fork") | $machine |"
echo "| meter_exit | tp_btf/sched_process_exit (every exiting thread) | $(median <"$TMP/ns_link_exit") | $(median <"$TMP/cnt_link_exit") | |"
echo "| meter_free | tp_btf/sched_process_free (every freed thread) | $(median <"$TMP/ns_link_free") | $(median <"$TMP/cnt_link_free") | |"
echo "| meter_tick | tp_btf/hrtimer_expire_exit (every hrtimer expiry; pairs clocks on ticks) | $(median <"$TMP/ns_link_tick") | $(median <"$TMP/cnt_link_tick") | |"
echo "| (sched_switch) | no program: 0 ns per context switch | | | |"
