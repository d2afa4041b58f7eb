#!/usr/bin/env bash
# balanced.sh -- balanced placement over two agents offering 1 and 2 cores: over 60 short tasks the
# running load (sampled from each agent's /metrics) and the placements stay within 10% of 1:2.
# aicn-timeout: 200
. "$(dirname "$0")/lib.sh"

N=${E2E_BALANCED_TASKS:-60}
net_init
coord_start
agent_add one max_cores=1 max_memory=256M ask_price=1000
agent_add two max_cores=2 max_memory=512M ask_price=1000
agent_start one
agent_start two
wait_registered one two
ok "agents one (1 core) and two (2 cores), same price"

make_image busybox
# Sample the running tasks on each agent (its /metrics) every 0.25 s from the first submission on.
sampler() {
	while :; do
		echo "$(agent_metric one 'aicn_agent_tasks\{state="running"\}') $(agent_metric two 'aicn_agent_tasks\{state="running"\}')"
		sleep 0.25
	done >>"$T/samples"
}
: >"$T/samples"
sampler &
BG_PIDS+=($!)
step "submit $N one-core tasks of 2 s (policy balanced), sampling each agent's running tasks every 0.25 s"
ids=()
for i in $(seq "$N"); do
	id=$(submit "$T/busybox" --cores 1 --memory 16M --max-wall 60 --max-price 5 --policy balanced \
		-- /bin/sh -c "sleep 2; echo task-$i") || fail "submit $i"
	ids+=("$id")
done
ok "$N tasks submitted (${ids[0]}..${ids[$((N - 1))]})"
finals() { cat "$T/agents/one/meter.log" "$T/agents/two/meter.log" 2>/dev/null | grep -c '"type":"final"'; }
wait_for 150 eval '[ "$(finals)" -ge "$N" ]' || fail "only $(finals) of $N tasks finished in 150 s"
kill "${BG_PIDS[0]}"
done1=$(grep -c '"type":"final"' "$T/agents/one/meter.log")
done2=$(grep -c '"type":"final"' "$T/agents/two/meter.log")
grep -q '^ \| $\|^$' "$T/samples" && fail "an agent's /metrics did not answer during sampling"
ctl tasks --json --limit 1000 >"$T/tasks.json" || fail "aicnctl tasks --json"
ndone=$(pj "sum(1 for t in d['tasks'] if t['state'].upper() == 'DONE')" <"$T/tasks.json")
[ "$ndone" = "$N" ] || fail "$ndone of $N tasks DONE"
ok "all $N tasks DONE: $done1 on one, $done2 on two"

step "figures"
# Running load over the samples in which at least one task ran: the mean running count per agent.
read -r s1 s2 ns max1 max2 < <(awk '$1 + $2 > 0 { a += $1; b += $2; n++ } { if ($1 > m1) m1 = $1; if ($2 > m2) m2 = $2 }
	END { print a, b, n, m1 + 0, m2 + 0 }' "$T/samples")
[ "$ns" -ge 20 ] || fail "only $ns samples with running tasks"
[ "$max1" -le 1 ] && [ "$max2" -le 2 ] || fail "caps overflowed: one ran up to $max1, two up to $max2 at once"
python3 - "$s1" "$s2" "$ns" "$done1" "$done2" <<'PY' || fail "balanced load is not 1:2 within 10%"
import sys
s1, s2, n, d1, d2 = map(int, sys.argv[1:])
load = s1 / s2 if s2 else float("inf")
placed = d1 / d2 if d2 else float("inf")
print(f"    running load one:two = {s1 / n:.3f}:{s2 / n:.3f} over {n} samples -> ratio {load:.3f} (1:2 = 0.500)")
print(f"    placements one:two = {d1}:{d2} -> ratio {placed:.3f}")
ok = abs(load - 0.5) <= 0.05 and abs(placed - 0.5) <= 0.05
sys.exit(0 if ok else 1)
PY
ok "running load and placements within 10% of 1:2 (caps never exceeded: max $max1 and $max2 at once)"
finish
