#!/usr/bin/env bash
# hostile_frames.sh -- random bytes, a 4 GiB length, truncated frames, invalid UTF-8, deep JSON, floods and
# slow readers are closed or answered, each logged, while 20 well-behaved agents keep heartbeating.
# aicn-timeout: 180
. "$AICN_SRC/tests/transport/lib.sh"

setup_ca
issue ca agent good
issue ca agent bystander
issue ca renter renter
start_testd --handshake-ms 1500 --frame-ms 1500 --rate 2000 --burst 4000 --sendq 1048576 --blob-mb 16
sleep 0.6 # first stats file

"$B/aicn-loadgen" --ca "$T/ca/ca.pem" --cert "$T/bystander.pem" --key "$T/bystander.key" \
	--port "$PORT" --mode heartbeat --agents 20 --rate 20 --duration 25 >"$T/bystanders.out" 2>"$T/bystanders.log" &
LG=$!
PIDS+=("$LG")
for _ in $(seq 100); do [ "$(stat ready)" -ge 20 ] && break; sleep 0.1; done
hb0=$(stat heartbeats)

python3 "$AICN_SRC/tests/transport/hostile.py" "$T" "$PORT" || fail "hostile peers"

kill -0 "$TESTD_PID" || fail "server died"
wait "$LG" || fail "the well-behaved agents were disturbed: $(cat "$T/bystanders.out")"
grep -q '"ready":20' "$T/bystanders.out" || fail "bystanders not all connected at the end"
hb1=$(stat heartbeats)
echo "bystanders: $(cat "$T/bystanders.out")"
[ $((hb1 - hb0)) -gt 2000 ] || fail "bystander heartbeats did not flow ($hb0 -> $hb1)"
for line in "frame longer than the limit" "frame not finished in time" "handshake not finished in time" \
	"more than 2000 messages/s; closing" "slow reader" "more than 16 bad messages" "refused 127.0.0.1"; do
	grep -qF "$line" "$T/testd.log" || fail "no server log line '$line'"
done
echo "ok: server logged each closure; bystanders sent $((hb1 - hb0)) heartbeats meanwhile"
