#!/usr/bin/env bash
# meter_paired.sh -- context-switch overhead of the meter in paired rounds, beside an EMPTY
# tp_btf/sched_switch program: what attaching anything to sched_switch costs on this host.
# Each round runs `perf bench sched pipe` pinned to one CPU without the meter, with the meter
# loaded (benchmark outside it), metered, with the empty program, and without anything again;
# ratios are to the mean of the two unloaded runs of the same round.  Needs root, clang, libbpf.
set -euo pipefail
: "${AICN_BUILD:?run through make bench}"
METER=$AICN_BIN/aicn-meter
PAIRS=${METER_BENCH_PAIRS:-12}
LOOPS=${METER_BENCH_LOOPS:-100000}
TMP=$(mktemp -d)
export AICN_METER_PIN_DIR=/sys/fs/bpf/aicn-bench-paired-$$
V2=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
SELF=$(sed -n 's/^0:://p' /proc/self/cgroup)
[ "$SELF" = / ] && SELF=
bg=
cleanup() {
	set +e
	[ -n "$bg" ] && kill "$bg" 2>/dev/null && wait "$bg" 2>/dev/null
	"$METER" cleanup --pin-dir "$AICN_METER_PIN_DIR" 2>/dev/null
	rmdir "$V2$SELF/aicn-bench-paired-$$" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "meter_paired: needs root"; exit 1; }

cat >"$TMP/empty.bpf.c" <<'BPF'
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tp_btf/sched_switch")
int BPF_PROG(empty_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	return 0;
}
BPF
cat >"$TMP/load.c" <<'LOADER'
#include <bpf/libbpf.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	struct bpf_object *o = bpf_object__open_file(argv[1], NULL);
	struct bpf_program *p;

	if (!o || bpf_object__load(o))
		return 1;
	bpf_object__for_each_program(p, o)
		if (!bpf_program__attach(p))
			return 1;
	puts("attached");
	fflush(stdout);
	pause();
	return 0;
}
LOADER
clang -g -O2 -target bpf -I"$AICN_SRC/bpf/vmlinux/x86_64" -c "$TMP/empty.bpf.c" -o "$TMP/empty.bpf.o"
gcc "$TMP/load.c" -o "$TMP/load" -lbpf

bench=(taskset -c 1 perf bench sched pipe -l "$LOOPS")
plain() { # CPU ns per round trip in a plain cgroup
	local cg=$V2$SELF/aicn-bench-paired-$$
	mkdir "$cg"
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$cg" "${bench[@]}" >/dev/null 2>&1
	awk -v n="$LOOPS" '$1 == "usage_usec" { print $2 * 1000 / n }' "$cg/cpu.stat"
	rmdir "$cg"
}
metered() {
	"$METER" run -o "$TMP/m.json" -- "${bench[@]}" >/dev/null 2>&1
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel_cpu_ns"] / int(sys.argv[2]))' "$TMP/m.json" "$LOOPS"
}
wait_for() { for _ in $(seq 50); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
: >"$TMP/rows"
for _ in $(seq "$PAIRS"); do
	a=$(plain)
	"$METER" run -o /dev/null -- sleep 600 2>/dev/null &
	bg=$!
	wait_for "$AICN_METER_PIN_DIR/link_free"
	b=$(plain)
	c=$(metered)
	kill "$bg"
	wait "$bg" 2>/dev/null || true
	"$TMP/load" "$TMP/empty.bpf.o" >"$TMP/loaded" &
	bg=$!
	for _ in $(seq 50); do grep -q attached "$TMP/loaded" && break; sleep 0.1; done
	e=$(plain)
	kill "$bg"
	wait "$bg" 2>/dev/null || true
	bg=
	a2=$(plain)
	echo "$a $b $c $e $a2" >>"$TMP/rows"
done
python3 - "$TMP/rows" "$PAIRS" "$LOOPS" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
base = [(r[0] + r[4]) / 2 for r in rows]
def med(i): return st.median(r[i] / b for r, b in zip(rows, base))
print(f"### context-switch overhead, {sys.argv[2]} paired rounds of `taskset -c 1 perf bench sched pipe -l {sys.argv[3]}`, CPU from cpu.stat, load {sys.argv[4]}")
print("| what | ratio to no program (median of rounds) |")
print("|---|---|")
print(f"| meter loaded, benchmark outside it | {med(1):.3f} |")
print(f"| benchmark metered (`aicn-meter run`) | {med(2):.3f} |")
print(f"| an empty tp_btf/sched_switch program loaded | {med(3):.3f} |")
print(f"| unloaded baseline | {st.median(base):.0f} ns per round trip |")
PY
