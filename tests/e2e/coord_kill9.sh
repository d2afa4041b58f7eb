#!/usr/bin/env bash
# coord_kill9.sh -- the coordinator killed with SIGKILL while tasks run and wait, then restarted on the
# same state: every submitted task completes, none is lost, none runs twice (one signed final record
# each over all agents), and the renter's task list holds exactly what was submitted.
# aicn-timeout: 180
. "$(dirname "$0")/lib.sh"

N=12
net_init
coord_start
agent_add p max_cores=1 max_memory=256M ask_price=1000
agent_add q max_cores=2 max_memory=512M ask_price=1000
agent_start p
agent_start q
wait_registered p q
ok "agents p (1 core) and q (2 cores)"

make_image busybox
step "submit $N tasks of 4 s"
ids=()
for i in $(seq "$N"); do
	ids+=("$(submit "$T/busybox" --cores 1 --memory 16M --max-wall 120 --max-price 5 \
		-- /bin/sh -c "sleep 4; echo result-$i")") || fail "submit $i"
done
ok "tasks ${ids[*]}"
sleep 1
ctl tasks --json --limit 100 >"$T/before.json" || fail "aicnctl tasks --json"
counts=$(pj "' '.join('%s=%d' % (s, sum(1 for t in d['tasks'] if t['state'].upper() == s)) for s in ('DONE', 'RUNNING', 'QUEUED'))" <"$T/before.json")
echo "    before the kill: $counts"
case $counts in *RUNNING=0*) fail "nothing running at the kill: $counts" ;; esac
case $counts in *QUEUED=0*) fail "nothing queued at the kill: $counts" ;; esac

step "kill -9 the coordinator while tasks run and wait"
finals_before=$(cat "$T"/agents/*/meter.log 2>/dev/null | grep -c '"type":"final"')
coord_kill9
ok "killed with $finals_before tasks finished, the rest running or queued"
sleep 3
step "restart it on the same state"
t_restart=$(date +%s%N)
coord_start
wait_registered p q
ok "restarted; both agents registered again after $((($(date +%s%N) - t_restart) / 1000000)) ms"

step "every task completes exactly once"
for id in "${ids[@]}"; do wait_task "$id" DONE 90; done
for i in $(seq "$N"); do
	id=${ids[$((i - 1))]}
	n=$(cat "$T"/agents/*/meter.log | grep -c "\"task\":\"$id\".*\"type\":\"final\"")
	[ "$n" = 1 ] || fail "task $id has $n final records over all agents (ran on: $(ran_on "$id" | tr '\n' ' '))"
	ctl result "$id" -o "$T/result-$id" -q >/dev/null 2>&1 || fail "aicnctl result $id"
	[ "$(cat "$T/result-$id/stdout")" = "result-$i" ] || fail "task $id printed '$(cat "$T/result-$id/stdout")'"
done
ok "all $N DONE, one final record each, each printed its own result"
listed=$(ctl tasks --json --limit 1000 | pj "sorted(int(t['task_id']) for t in d['tasks'])")
want=$(python3 -c "import sys; print(sorted(int(x) for x in sys.argv[1:]))" "${ids[@]}")
[ "$listed" = "$want" ] || fail "task list $listed, submitted $want"
rows=$(coord_sql "SELECT count(*) FROM tasks")
[ "$rows" = "$N" ] || fail "the coordinator stores $rows tasks, $N were submitted"
ok "the renter's task list and the store hold exactly the $N tasks submitted"
finish
