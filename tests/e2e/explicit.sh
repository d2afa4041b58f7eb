#!/usr/bin/env bash
# explicit.sh -- a renter's explicit provider choice is honoured: the tasks run only there, and wait
# for it when it is full although another provider is idle; policy cheapest picks the cheap one.
# aicn-timeout: 150
. "$(dirname "$0")/lib.sh"

net_init
coord_start
agent_add cheap max_cores=2 max_memory=256M ask_price=500
agent_add chosen max_cores=1 max_memory=256M ask_price=3000
agent_start cheap
agent_start chosen
wait_registered cheap chosen
chosen_id=$(agent_node chosen)
ok "cheap (2 cores, 500/CPU-h) and chosen (1 core, 3000/CPU-h, node ${chosen_id:0:12}…)"

make_image busybox
common=("$T/busybox" --cores 1 --memory 16M --max-wall 60 --max-price 5)
step "three tasks that name the chosen provider, submitted at once"
ids=()
for i in 1 2 3; do
	ids+=("$(submit "${common[@]}" --provider "$chosen_id" -- /bin/sh -c "sleep 5; echo explicit-$i")") ||
		fail "submit $i"
done
wait_task "${ids[0]}" RUNNING 20
sleep 0.5
queued=0
for id in "${ids[@]}"; do [ "$(task_state "$id")" = QUEUED ] && queued=$((queued + 1)); done
[ "$queued" = 2 ] || fail "$queued of 3 queued while chosen (1 core) runs one and cheap is idle"
ok "one runs on chosen, two wait for it although cheap is idle"
for id in "${ids[@]}"; do wait_task "$id" DONE 40; done
for id in "${ids[@]}"; do
	[ "$(ran_on "$id")" = chosen ] || fail "task $id ran on '$(ran_on "$id")'"
done
[ -z "$(grep '"type":"final"' "$T/agents/cheap/meter.log" 2>/dev/null)" ] || fail "cheap ran a task"
ok "all three ran on chosen, nothing on cheap"

step "policy cheapest"
id=$(submit "${common[@]}" --policy cheapest -- /bin/sh -c 'echo cheapest') || fail "submit cheapest"
wait_task "$id" DONE 30
[ "$(ran_on "$id")" = cheap ] || fail "the cheapest-policy task ran on '$(ran_on "$id")'"
ok "task $id ran on cheap (500 < 3000)"
finish
