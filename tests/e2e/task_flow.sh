#!/usr/bin/env bash
# task_flow.sh -- a renter's task from a real OCI image runs on one of two agents: watched, result
# fetched and checked, its signed usage record stored by the coordinator and in the agent's meter log.
# aicn-timeout: 180
. "$(dirname "$0")/lib.sh"

net_init
coord_start
agent_add small max_cores=1 max_memory=256M ask_price=1000 location=eu-west/paris
agent_add big max_cores=2 max_memory=512M ask_price=2000 location=us-east
agent_start small
agent_start big
wait_registered small big
ok "coordinator on 127.0.0.1:$COORD_PORT; agents small (1 core) and big (2 cores) registered"

step "market lists both providers with their terms"
ctl market --json >"$T/market.json" || fail "aicnctl market --json"
for n in small big; do
	id=$(agent_node "$n")
	price=$(pj "[p for p in d['providers'] if p['node_id'] == '$id'][0].get('ask_price', [p for p in d['providers'] if p['node_id'] == '$id'][0].get('price'))" <"$T/market.json")
	want=$([ "$n" = small ] && echo 1000 || echo 2000)
	[ "$price" = "$want" ] || fail "market: $n asks $price, expected $want"
done
ok "market: small asks 1000, big asks 2000 base units per CPU-hour"

step "a task from the busybox OCI image: computes, 600,000 shell loops of CPU, writes an output file"
make_image busybox
id=$(submit "$T/busybox" --cores 1 --memory 64M --max-wall 60 --max-price 5 -- \
	/bin/sh -c 'echo "answer=$((6 * 7)) on $(uname -s)"; i=0; while [ $i -lt 600000 ]; do i=$((i + 1)); done; mkdir -p /work/out; echo 42 >/work/out/answer; echo "loops done" >&2; sleep 2') ||
	fail "submit"
[ -n "$id" ] || fail "submit printed no task id"
ok "task $id submitted"

step "watch it until it ends"
AICNCTL_CONFIG=$T/renter.conf timeout 90 "$AICN_BIN/aicnctl" watch "$id" >"$T/watch.out" 2>&1 </dev/null
wrc=$?
sed 's/^/    /' "$T/watch.out" | tail -n 12
[ "$wrc" = 0 ] || fail "aicnctl watch exited $wrc"
grep -qi running "$T/watch.out" || fail "watch never showed the task running"
grep -iE 'running.*cpu [0-9.]+' "$T/watch.out" | grep -qvE 'cpu 0\.000' ||
	fail "watch never showed CPU time growing while the task ran"
grep -qi 'done' "$T/watch.out" || fail "watch did not end with DONE"
ok "watch followed the task to DONE"
task_is "$id" DONE || fail "STATUS says $(task_state "$id")"

step "the result: downloaded, digest verified, stdout and output file checked"
ctl result "$id" -o "$T/result" >"$T/result.out" 2>&1 || fail "aicnctl result: $(cat "$T/result.out")"
sed 's/^/    /' "$T/result.out"
grep -q 'answer=42 on Linux' "$T/result.out" || fail "aicnctl result did not print the task's stdout"
grep -qx 'answer=42 on Linux' "$T/result/stdout" || fail "stdout is '$(head -c 200 "$T/result/stdout")'"
grep -qx 'loops done' "$T/result/stderr" || fail "stderr is '$(head -c 200 "$T/result/stderr")'"
[ "$(cat "$T/result/out/answer" 2>/dev/null)" = 42 ] || fail "out/answer missing or wrong"
[ "$(tr -d '\n' <"$T/result/exit_code")" = 0 ] || fail "exit_code is $(cat "$T/result/exit_code")"
digest=sha256:$(sha256sum "$T/result/result.tar" | cut -d' ' -f1)
[ "$(task_status "$id" | pj "d['result']")" = "$digest" ] || fail "STATUS result digest differs from the downloaded archive's $digest"
ok "stdout 'answer=42 on Linux', stderr, out/answer = 42, exit 0; digest $digest"

step "it ran on exactly one agent; its signed usage record reached the coordinator"
where=$(ran_on "$id")
[ "$(echo "$where" | grep -c .)" = 1 ] || fail "final records of task $id on: '$where'"
rec=$(grep "\"task\":\"$id\".*\"type\":\"final\"" "$T/agents/$where/meter.log")
cpu=$(echo "$rec" | pj "d['cpu_ns']")
kcpu=$(echo "$rec" | pj "d['cpu_kernel_ns']")
res=$(echo "$rec" | pj "d['result']")
[ "$res" = "$digest" ] || fail "the signed record names result $res, not $digest"
wall=$(echo "$rec" | pj "d['wall_ns']")
[ "$cpu" -ge 300000000 ] && [ "$cpu" -le $((wall + wall / 50)) ] || fail "the record claims $cpu CPU-ns in $wall ns wall on 1 core for 600,000 shell loops"
[ "$wall" -ge 2000000000 ] || fail "wall $wall ns, but the task sleeps 2 s"
diff=$((cpu - kcpu)); diff=${diff#-}
[ "$diff" -le $((kcpu / 100 + 10000000)) ] || fail "meter $cpu ns vs kernel $kcpu ns"
ok "ran on $where: ${cpu} CPU-ns by the eBPF meter (kernel $kcpu ns), result digest signed"
wait_for 10 eval '[ "$(coord_sql "SELECT count(*) FROM usage_records WHERE task_id = $id")" -ge 1 ]' ||
	fail "the coordinator stored no usage record of task $id"
stored_cpu=$(coord_sql "SELECT max(cpu_ns) FROM usage_records WHERE task_id = $id")
[ "$stored_cpu" = "$cpu" ] || fail "coordinator stored cpu_ns $stored_cpu, the agent signed $cpu"
# STATUS of the DONE task: the recorded CPU time (not 0) and the task's CPU cap (1 core x 60 s)
st=$(task_status "$id")
[ "$(echo "$st" | pj "d['cpu_ns']")" = "$cpu" ] || fail "STATUS cpu_ns $(echo "$st" | pj "d.get('cpu_ns')"), the record says $cpu"
[ "$(echo "$st" | pj "d['max_cpu_seconds']")" = 60 ] || fail "STATUS max_cpu_seconds $(echo "$st" | pj "d.get('max_cpu_seconds')"), expected 60"
[ "$(agent_metric "$where" aicn_agent_records_pending_ack)" = 0 ] || fail "records still pending ack on $where"
ok "the coordinator holds the record (cpu_ns $stored_cpu); nothing pending on the agent"
agent_stop "$where" # a stopping agent seals its meter log with a checkpoint
"$AICN_BIN/aicnctl" audit verify "$T/agents/$where/meter.log" --key "$(agent_pub "$where")" \
	>"$T/audit.out" 2>&1 || fail "aicnctl audit verify: $(cat "$T/audit.out")"
ok "$(head -c 160 "$T/audit.out")"

step "the task directory was wiped on the agent"
[ -z "$(ls -A "$T/agents/$where/tasks/" 2>/dev/null)" ] || fail "task directories left: $(ls "$T/agents/$where/tasks/")"
ok "no task directory left"
finish
