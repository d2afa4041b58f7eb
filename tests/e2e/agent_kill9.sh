#!/usr/bin/env bash
# agent_kill9.sh -- an agent killed with SIGKILL mid-task: after the heartbeat timeout the coordinator
# requeues the task, it completes on the other agent, and the dead agent's copy is discarded when it
# comes back (the task is done once, with the survivor's result).
# aicn-timeout: 150
. "$(dirname "$0")/lib.sh"

HB=15 # agents send a HEARTBEAT every 10 s
net_init
coord_start heartbeat_timeout=$HB
agent_add x max_cores=1 max_memory=256M ask_price=1000
agent_add y max_cores=1 max_memory=256M ask_price=1000
agent_start x
agent_start y
wait_registered x y
ok "agents x and y (1 core each); heartbeat_timeout $HB s"

make_image busybox
id=$(submit "$T/busybox" --cores 1 --memory 16M --max-wall 120 --max-price 5 -- \
	/bin/sh -c 'sleep 20; echo "finished on $(hostname)"') || fail "submit"
running_on() { [ "$(agent_metric "$1" 'aicn_agent_tasks\{state="running"\}')" = 1 ]; }
wait_task "$id" RUNNING 30
victim=
find_runner() { if running_on x; then victim=x; elif running_on y; then victim=y; else return 1; fi; }
wait_for 10 find_runner || fail "neither agent reports the task running"
survivor=$([ "$victim" = x ] && echo y || echo x)
ok "task $id runs on $victim"

step "kill -9 $victim"
sleep 1
agent_kill9 "$victim"
t_kill=$(date +%s%N)
wait_for 30 running_on "$survivor" || fail "the task was not requeued to $survivor within 30 s (state $(task_state "$id"))"
t_requeue=$(date +%s%N)
requeue_ms=$(((t_requeue - t_kill) / 1000000))
ok "requeued and running on $survivor ${requeue_ms} ms after the kill (heartbeat_timeout ${HB} s)"
[ "$requeue_ms" -le $(((HB + 6) * 1000)) ] || fail "requeue took ${requeue_ms} ms, more than heartbeat_timeout + 6 s"

step "it completes on $survivor"
wait_task "$id" DONE 40
[ "$(ran_on "$id")" = "$survivor" ] || fail "final records on '$(ran_on "$id")'"
attempts=$(task_status "$id" | pj "d['attempts']")
[ "$attempts" -ge 1 ] || fail "STATUS shows $attempts requeues"
digest=$(task_status "$id" | pj "d['result']")
ok "DONE on $survivor (attempts $attempts), result $digest"

step "$victim comes back: its stale copy is discarded, the task stays done once"
agent_start "$victim"
wait_registered "$victim"
wait_for 20 eval '[ -z "$(ls -A "$T/agents/$victim/tasks" 2>/dev/null)" ]' ||
	fail "$victim still holds $(ls "$T/agents/$victim/tasks")"
[ "$(task_state "$id")" = DONE ] || fail "task is $(task_state "$id") after $victim returned"
[ "$(task_status "$id" | pj "d['result']")" = "$digest" ] || fail "the result changed after $victim returned"
live=$(task_status "$id" | pj "sum(1 for r in d['replicas'] if r['state'] in ('assigned', 'running', 'ASSIGNED', 'RUNNING'))")
[ "$live" = 0 ] || fail "$live live replicas after DONE"
ok "no task directory left on $victim; DONE once with $survivor's result"
echo "figure: requeue after kill -9 = ${requeue_ms} ms with heartbeat_timeout ${HB} s"
finish
