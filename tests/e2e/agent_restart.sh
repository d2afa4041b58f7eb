#!/usr/bin/env bash
# agent_restart.sh -- an agent restarted mid-task (SIGTERM, then started again): the task keeps
# running under its supervisor, is re-adopted, and completes once on the same node, never requeued.
# aicn-timeout: 120
. "$(dirname "$0")/lib.sh"

net_init
coord_start
agent_add a max_cores=1 max_memory=256M ask_price=1000
agent_add b max_cores=1 max_memory=256M ask_price=1000
agent_start a
agent_start b
wait_registered a b
ok "agents a and b (1 core each)"

make_image busybox
id=$(submit "$T/busybox" --cores 1 --memory 16M --max-wall 120 --max-price 5 -- \
	/bin/sh -c 'echo "start $(date +%s)"; sleep 8; echo "end $(date +%s)"') || fail "submit"
wait_task "$id" RUNNING 30
has_task() { [ -f "$T/agents/$1/tasks/$id/supervise.state" ]; }
n=
find_runner() { if has_task a; then n=a; elif has_task b; then n=b; else return 1; fi; }
wait_for 15 find_runner || fail "no agent has a task directory for task $id"
read -r sup kind < <(sup_state "$n" "$id")
[ "$kind" = running ] || fail "supervise.state says kind=$kind"
tpid=$(sed -n 's/^pid=//p' "$T/agents/$n/tasks/$id/supervise.state")
ok "task $id runs on $n: supervisor $sup, task pid $tpid"

step "SIGTERM the agent (a service restart)"
sleep 1
agent_stop "$n"
kill -0 "$sup" 2>/dev/null || fail "the supervisor $sup died with the agent"
kill -0 "$tpid" 2>/dev/null || fail "the task $tpid died with the agent"
ok "agent stopped; supervisor $sup and task $tpid still alive"
sleep 1
agent_start "$n"
wait_registered "$n"
ok "agent $n restarted and registered again"
kill -0 "$sup" 2>/dev/null || fail "the supervisor $sup died when the agent came back"

step "the task completes on $n, once"
wait_task "$id" DONE 30
[ "$(ran_on "$id")" = "$n" ] || fail "final records on '$(ran_on "$id")'"
attempts=$(task_status "$id" | pj "d['attempts']")
[ "$attempts" = 0 ] || fail "the task was requeued $attempts times"
finals=$(grep -c "\"task\":\"$id\".*\"type\":\"final\"" "$T/agents/$n/meter.log")
[ "$finals" = 1 ] || fail "$finals final records for the task"
ctl result "$id" -o "$T/result" -q >/dev/null 2>&1 || fail "aicnctl result"
s=$(sed -n 's/^start //p' "$T/result/stdout"); e=$(sed -n 's/^end //p' "$T/result/stdout")
[ -n "$s" ] && [ -n "$e" ] && [ $((e - s)) -ge 7 ] || fail "stdout is '$(cat "$T/result/stdout")'"
other=$([ "$n" = a ] && echo b || echo a)
[ -z "$(grep '"type":"final"' "$T/agents/$other/meter.log" 2>/dev/null)" ] || fail "$other ran a task too"
ok "DONE on $n with attempts 0, one final record, stdout shows one uninterrupted run of $((e - s)) s"
finish
