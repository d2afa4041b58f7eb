# lib.sh -- sourced by the meter test scripts: feature probes, a private pin dir, record checks.
set -euo pipefail
: "${AICN_BUILD:?run through make check (tests/run sets AICN_BUILD)}"
METER=$AICN_BIN/aicn-meter
WORK=$AICN_BUILD/tests/meter-work

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (eBPF and cgroups)"
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF (/sys/kernel/btf/vmlinux)"
V2=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
[ -n "$V2" ] || skip "no cgroup v2 mounted"
SELF=$(sed -n 's/^0:://p' /proc/self/cgroup)
[ "$SELF" = / ] && SELF=
CGBASE=$V2$SELF

# A private pin dir, so concurrent tests (ours or other engineers') never share state.
PIN=/sys/fs/bpf/aicn-test-$$-$RANDOM
export AICN_METER_PIN_DIR=$PIN
TMP=$(mktemp -d)
NAMES=()
lib_cleanup() {
	local n
	for n in "${NAMES[@]}"; do
		if [ -d "$CGBASE/$n" ]; then
			echo 1 >"$CGBASE/$n/cgroup.kill" 2>/dev/null || true
			sleep 0.2
			find "$CGBASE/$n" -depth -type d -exec rmdir {} + 2>/dev/null || true
		fi
	done
	"$METER" cleanup --pin-dir "$PIN" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap lib_cleanup EXIT

# A unique task cgroup name for this test.
newname() { local n="aicn-test-$$-$1"; NAMES+=("$n"); echo "$n"; }

# field FILE KEY: one value of a JSON record (null, true/false, numbers, strings)
field() {
	python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print("null" if v is None else str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"
}

# check_record FILE: the cross-check bound holds and nothing was dropped or lost.
check_record() {
	python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m, k = r["cpu_ns"], r["kernel_cpu_ns"]
bound = k // 10000 + 2000
print(f"meter {m} ns, cpu.stat {k} ns, diff {m - k} ns, bound {bound} ns")
bad = []
if abs(m - k) > bound: bad.append("meter and cpu.stat disagree beyond 0.01% + 2 us")
if r["crosscheck"] != "ok": bad.append("crosscheck flag is " + r["crosscheck"])
for key in ("drops_task_storage", "drops_depth", "drops_stats_missing", "drops_dying_full", "threads_lost"):
    if r[key] != 0: bad.append(f"{key} = {r[key]}")
if r["threads_live"] != 0: bad.append(f"threads_live = {r['threads_live']} after the end")
if not r["consistent"]: bad.append("inconsistent final read")
if bad:
    print("FAIL: " + "; ".join(bad)); sys.exit(1)
PY
}

# expect_gone NAME: no cgroup left behind, and no pins once nothing is tracked.
expect_gone() {
	[ ! -d "$CGBASE/$1" ] || fail "cgroup $CGBASE/$1 left behind"
	[ ! -e "$PIN" ] || fail "pins left behind in $PIN: $(ls "$PIN")"
}
