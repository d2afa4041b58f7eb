#!/usr/bin/env bash
# conns_2000.sh -- 2,000 agents hold authenticated connections to one server at once (real TLS 1.3 mTLS,
# HELLO and REGISTER each), every one heartbeats, and the server's heap per connection stays small.
# aicn-timeout: 240
. "$AICN_SRC/tests/transport/lib.sh"

N=2000
# both programs raise RLIMIT_NOFILE themselves
setup_ca
issue ca agent fleet
start_testd --idle-ms 60000
sleep 0.6
heap0=$(stat heap_bytes)
"$B/aicn-loadgen" --ca "$T/ca/ca.pem" --cert "$T/fleet.pem" --key "$T/fleet.key" --port "$PORT" \
	--mode heartbeat --agents $N --threads 2 --rate 1 --duration 6 >"$T/fleet.out" 2>"$T/fleet.log" &
LG=$!
PIDS+=("$LG")
peak=0 heap=0
for _ in $(seq 600); do
	c=$(stat conns)
	if [ "$c" -ge $N ]; then
		sleep 1.2
		peak=$(stat conns)
		heap=$(stat heap_bytes)
		break
	fi
	kill -0 "$LG" 2>/dev/null || break
	sleep 0.1
done
wait "$LG" || fail "loadgen: $(cat "$T/fleet.out") $(tail -n 5 "$T/fleet.log")"
echo "loadgen: $(cat "$T/fleet.out")"
[ "$peak" -ge $N ] || fail "server held $peak connections, wanted $N"
grep -q "\"ready\":$N," "$T/fleet.out" || fail "not all $N agents were ready at the end"
sleep 0.6
[ "$(stat registers)" -ge $N ] || fail "registrations: $(stat registers)"
[ "$(stat heartbeats)" -ge $N ] || fail "heartbeats: $(stat heartbeats)"
per=$(((heap - heap0) / N))
echo "server: $peak concurrent authenticated connections, heap $((heap - heap0)) bytes above idle = $per bytes/connection"
[ "$per" -le 32768 ] || fail "$per bytes per connection"
