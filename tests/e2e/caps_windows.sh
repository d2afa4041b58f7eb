#!/usr/bin/env bash
# caps_windows.sh -- providers' caps and hours hold: a task that does not fit waits (never overflows
# a provider's cap), and a provider outside its availability window gets nothing.
# aicn-timeout: 180
. "$(dirname "$0")/lib.sh"

# "night" lends 2 cores, but only in a 2-hour window that opens 3 hours from now (local time).
h=$(( (10#$(date +%H) + 3) % 24 ))
win=$(printf 'Mon-Sun %02d:00-%02d:00' "$h" $(( (h + 2) % 24 )))
net_init
coord_start
agent_add day max_cores=1 max_memory=256M ask_price=1000
agent_add night max_cores=2 max_memory=512M ask_price=500 "windows=$win"
agent_start day
agent_start night
wait_registered day night
ok "day: 1 core, always; night: 2 cores, cheaper, window '$win' (closed now)"

step "the market shows night outside its window"
ctl market --json >"$T/market.json" || fail "aicnctl market --json"
nid=$(agent_node night)
avail=$(pj "[p for p in d['providers'] if p['node_id'] == '$nid'][0]" <"$T/market.json")
echo "    night: $avail"
echo "$avail" | pj "d.get('in_window', d.get('available'))" | grep -qx false || fail "night listed as available now"
ok "night is online but not in its window"

step "the day agent's cap is a cgroup limit: 1 core"
quota=$(for d in ${ACG[day]}; do find "$d" -mindepth 1 -name cpu.cfs_quota_us -exec cat {} + 2>/dev/null; done | grep -v -- -1 | sort -u | head -n1)
[ -n "$quota" ] || quota=$(for d in ${ACG[day]}; do find "$d" -mindepth 1 -name cpu.max -exec cat {} + 2>/dev/null; done | grep -v '^max' | awk '{print $1}' | head -n1)
[ "$quota" = 100000 ] || fail "no 1-core CPU cap found under the day agent's cgroup (quota '$quota')"
ok "cpu quota 100000/100000 us under day's cgroup"

make_image busybox
common=("$T/busybox" --memory 32M --max-wall 120 --max-price 5)
step "task A (1 core, 15 s) takes day's only core"
a=$(submit "${common[@]}" --cores 1 -- /bin/sh -c 'echo A; sleep 15') || fail "submit A"
wait_task "$a" RUNNING 30
ok "task $a running"

step "task B (1 core) does not fit anywhere open: it waits"
b=$(submit "${common[@]}" --cores 1 -- /bin/sh -c 'echo B') || fail "submit B"
c=$(submit "${common[@]}" --cores 2 -- /bin/sh -c 'echo C') || fail "submit C (2 cores: only night offers that much)"
t_b=$(date +%s)
for _ in 1 2 3 4 5 6; do
	sb=$(task_state "$b")
	[ "$sb" = QUEUED ] || break
	sleep 0.5
done
[ "$(task_state "$a")" = RUNNING ] || fail "task A is $(task_state "$a") (it sleeps 15 s)"
[ "$sb" = QUEUED ] || fail "task B is $sb while A holds day's only core and night is closed"
ok "B stayed QUEUED for $(($(date +%s) - t_b)) s while A ran"
[ "$(task_state "$c")" = QUEUED ] || fail "task C (2 cores) is $(task_state "$c"), but only closed night offers 2 cores"

step "A ends, B takes the freed core on day; C keeps waiting"
wait_task "$a" DONE 40
wait_task "$b" DONE 40
[ "$(ran_on "$a")" = day ] || fail "A ran on '$(ran_on "$a")'"
[ "$(ran_on "$b")" = day ] || fail "B ran on '$(ran_on "$b")'"
astart=$(grep "\"task\":\"$a\".*\"type\":\"final\"" "$T/agents/day/meter.log" | pj "d['end_ns']")
bstart=$(grep "\"task\":\"$b\".*\"type\":\"final\"" "$T/agents/day/meter.log" | pj "d['start_ns']")
[ "$bstart" -ge "$astart" ] || fail "B started at $bstart, before A ended at $astart: day's cap was overflowed"
ok "A and B ran one after the other on day (B started $(( (bstart - astart) / 1000000 )) ms after A ended)"
sleep 2
[ "$(task_state "$c")" = QUEUED ] || fail "task C is $(task_state "$c")"
ok "C (2 cores) still QUEUED"

step "night got nothing"
[ -z "$(grep '"type":"final"' "$T/agents/night/meter.log" 2>/dev/null)" ] || fail "night ran: $(grep -o '"task":"[^"]*"' "$T/agents/night/meter.log" | sort -u | tr '\n' ' ')"
ended=$(curl -sf "http://127.0.0.1:${AMET[night]}/metrics" | awk '/^aicn_agent_tasks_ended_total/ {s += $NF} END {print s + 0}')
[ "$ended" = 0 ] || fail "night's metrics count $ended ended tasks"
[ -z "$(ls -A "$T/agents/night/tasks" 2>/dev/null)" ] || fail "night has task directories"
ok "no record, no task directory, 0 tasks ended on night"

step "the renter cancels C"
ctl cancel "$c" >"$T/cancel.out" 2>&1 || fail "aicnctl cancel: $(cat "$T/cancel.out")"
wait_task "$c" CANCELLED 10
ok "C cancelled while queued"
finish
