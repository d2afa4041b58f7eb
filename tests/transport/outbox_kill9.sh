#!/usr/bin/env bash
# outbox_kill9.sh -- the agent's durable outbox delivers every record exactly once although the agent
# and the server are each killed with SIGKILL mid-stream (server-side dedup by node id + seq).
# aicn-timeout: 120
. "$AICN_SRC/tests/transport/lib.sh"

N=400
setup_ca
issue ca agent node1
start_testd --records "$T/received"

start_agent() {
	"$B/aicn-outbox-agent" --ca "$T/ca/ca.pem" --cert "$T/node1.pem" --key "$T/node1.key" \
		--port "$PORT" --outbox "$T/outbox" --records $N --rate 300 >>"$T/agent.log" 2>&1 &
	AGENT=$!
	PIDS+=("$AGENT")
}
count() { [ -f "$T/received" ] && wc -l <"$T/received" || echo 0; }

start_agent
sleep 0.6
kill -9 "$AGENT"; wait "$AGENT" 2>/dev/null
c1=$(count)
echo "agent killed after $c1 records reached the server"
[ "$c1" -gt 0 ] && [ "$c1" -lt $N ] || fail "first kill did not land mid-stream ($c1)"

start_agent
sleep 0.5
kill -9 "$TESTD_PID"; wait "$TESTD_PID" 2>/dev/null
c2=$(count)
echo "server killed after $c2 records"
[ "$c2" -lt $N ] || fail "server kill did not land mid-stream"
sleep 0.3
start_testd --records "$T/received" --port "$PORT"

sleep 0.5
kill -9 "$AGENT"; wait "$AGENT" 2>/dev/null
echo "agent killed again after $(count) records"
start_agent
for _ in $(seq 600); do
	kill -0 "$AGENT" 2>/dev/null || break
	sleep 0.1
done
wait "$AGENT" || fail "agent did not finish delivering"

total=$(count)
uniq_n=$(awk '{print $2}' "$T/received" | sort -n | uniq | wc -l)
dups=$(awk '{print $2}' "$T/received" | sort -n | uniq -d | wc -l)
first=$(awk '{print $2}' "$T/received" | sort -n | head -n1)
last=$(awk '{print $2}' "$T/received" | sort -n | tail -n1)
echo "server holds $total records, $uniq_n distinct, seq $first..$last, $dups duplicates"
[ "$total" -eq $N ] && [ "$uniq_n" -eq $N ] && [ "$dups" -eq 0 ] && [ "$first" -eq 1 ] &&
	[ "$last" -eq $N ] || fail "not exactly once"
resent=$(grep -c "records pending, resending" "$T/agent.log")
grep -q "all $N records delivered" "$T/agent.log" || fail "agent did not report delivery"
[ -z "$(ls "$T/outbox"/*.rec 2>/dev/null)" ] || fail "outbox not empty"
echo "ok: $N records exactly once across 2 agent and 1 server SIGKILLs ($resent (re)connections)"
