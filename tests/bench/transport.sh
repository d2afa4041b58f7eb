#!/usr/bin/env bash
# transport.sh -- transport benchmarks, side by side where a peer exists on the machine:
#   1. authenticated mTLS connections held by one server and its heap per connection;
#   2. full TLS 1.3 mTLS handshakes/s: our server vs `openssl s_server`, both driven by `openssl s_time`;
#   3. HEARTBEAT messages/s received by the server from 1,000 agents (aicn-loadgen).
# AICN_BENCH_CONNS (default 20000), AICN_BENCH_SECS (default 5), AICN_BENCH_HB_RATE (per agent, default 400:
# under the server's 2,000/s per-connection limit; 1,000 agents offer 400,000/s).
set -u
B=${AICN_BIN:?}
# One server process holds them all as io_uring direct descriptors (not in its fd table),
# then plain fds: up to about twice its RLIMIT_NOFILE.  Each aicn-loadgen process needs a
# plain fd per agent, so the agents are spread over as many processes as the limit asks.
maxfd=$(ulimit -Hn)
CONNS=${AICN_BENCH_CONNS:-20000}
per_proc=$((maxfd - 200))
NPROC=$(((CONNS + per_proc - 1) / per_proc))
SECS=${AICN_BENCH_SECS:-5}
T=$(mktemp -d /tmp/aicn-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"' EXIT

"$B/aicnctl" ca init "$T/ca" >/dev/null
"$B/aicnctl" ca issue --dir "$T/ca" --role coordinator --name coord --out "$T/coord" >/dev/null
"$B/aicnctl" ca issue --dir "$T/ca" --role agent --name fleet --out "$T/fleet" >/dev/null
LG=("$B/aicn-loadgen" --ca "$T/ca/ca.pem" --cert "$T/fleet.pem" --key "$T/fleet.key")
jget() { python3 -c "import json,sys; print(json.load(open('$1'))['$2'])"; }

start_testd() {
	rm -f "$T/port" "$T/stats.json"
	"$B/aicn-transport-testd" --ca "$T/ca/ca.pem" --cert "$T/coord.pem" --key "$T/coord.key" \
		--port-file "$T/port" --stats-file "$T/stats.json" --idle-ms 600000 --max-conns 1000000 \
		>"$T/testd.log" 2>&1 &
	TESTD=$!
	PIDS+=("$TESTD")
	while [ ! -s "$T/stats.json" ]; do sleep 0.1; done
	PORT=$(cat "$T/port")
}

# 1. connections held
start_testd
heap0=$(jget "$T/stats.json" heap_bytes)
rss0=$(awk '/VmRSS/ {print $2}' /proc/$TESTD/status)
LGS=()
for i in $(seq "$NPROC"); do
	n=$((CONNS / NPROC + (i <= CONNS % NPROC ? 1 : 0)))
	"${LG[@]}" --port "$PORT" --mode hold --agents "$n" --threads $((NPROC > 1 ? 1 : 2)) --duration 10 \
		>"$T/hold$i.out" 2>"$T/hold$i.log" &
	LGS+=($!)
	PIDS+=($!)
done
held=0
while kill -0 "${LGS[0]}" 2>/dev/null || kill -0 "${LGS[-1]}" 2>/dev/null; do
	c=$(jget "$T/stats.json" conns)
	if [ "$c" -ge "$CONNS" ]; then
		sleep 1.1
		held=$(jget "$T/stats.json" conns)
		heap=$(jget "$T/stats.json" heap_bytes)
		rss=$(awk '/VmRSS/ {print $2}' /proc/$TESTD/status)
		break
	fi
	sleep 0.2
done
fds=$(ls /proc/$TESTD/fd | wc -l)
wait "${LGS[@]}"
if [ "$held" -ge "$CONNS" ]; then
	echo "connections held: $held mTLS agents (HELLO + REGISTER done) from $NPROC aicn-loadgen process(es), up in $(for i in $(seq "$NPROC"); do jget "$T/hold$i.out" up_ms; done | sort -n | tail -1) ms; server fds open: $fds (hard limit $maxfd)"
	echo "  heap per connection: $(((heap - heap0) / held)) bytes; RSS per connection: $(((rss - rss0) * 1024 / held)) bytes"
else
	echo "connections held: only $held of $CONNS: $(cat "$T"/hold*.out)"
fi
kill $TESTD; wait $TESTD 2>/dev/null

# 2. full handshakes per second, same client (openssl s_time) against both servers
start_testd
ours=$(openssl s_time -connect "127.0.0.1:$PORT" -new -time "$SECS" -cert "$T/fleet.pem" -key "$T/fleet.key" \
	-CAfile "$T/ca/ca.pem" 2>/dev/null | grep -m1 -oE '[0-9]+ connections in [0-9.]+s' )
lg=$("${LG[@]}" --port "$PORT" --mode handshake --agents 32 --threads 2 --duration "$SECS" 2>/dev/null)
kill $TESTD; wait $TESTD 2>/dev/null
SPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$SPORT" -tls1_3 -cert "$T/coord.pem" -key "$T/coord.key" \
	-CAfile "$T/ca/ca.pem" -Verify 2 -verify_return_error -quiet -naccept 1000000 >/dev/null 2>&1 &
SS=$!
PIDS+=("$SS")
sleep 0.5
peer=$(openssl s_time -connect "127.0.0.1:$SPORT" -new -time "$SECS" -cert "$T/fleet.pem" -key "$T/fleet.key" \
	-CAfile "$T/ca/ca.pem" 2>/dev/null | grep -m1 -oE '[0-9]+ connections in [0-9.]+s')
kill $SS; wait $SS 2>/dev/null
rate() { echo "$1" | awk '{printf "%.0f", $1 / $4}'; }
r_ours=$(rate "$ours"); r_peer=$(rate "$peer")
echo "handshakes/s (openssl s_time -new, one client, mTLS Ed25519): ours $r_ours, openssl s_server $r_peer, ratio $(awk "BEGIN {printf \"%.2f\", $r_ours / $r_peer}")"
echo "  aicn-loadgen, 32 agents x (TLS + HELLO + REGISTER) in a loop: $(jget <(echo "$lg") handshakes_per_s)/s"

# 3. HEARTBEAT messages per second at the server, 1,000 agents
start_testd
"${LG[@]}" --port "$PORT" --mode heartbeat --agents 1000 --threads 1 --rate "${AICN_BENCH_HB_RATE:-400}" --duration $((SECS + 4)) \
	>"$T/hb.out" 2>"$T/hb.log" &
L=$!
while [ "$(jget "$T/stats.json" ready)" -lt 1000 ] && kill -0 $L 2>/dev/null; do sleep 0.1; done
sleep 1.5
kill -0 $L 2>/dev/null || { echo "HEARTBEAT: loadgen ended early: $(cat "$T/hb.out")"; exit 1; }
h0=$(jget "$T/stats.json" heartbeats); t0=$(jget "$T/stats.json" now_ms)
sleep "$SECS"
h1=$(jget "$T/stats.json" heartbeats); t1=$(jget "$T/stats.json" now_ms)
wait $L
echo "HEARTBEAT msgs/s received by the server from 1,000 mTLS agents: $(((h1 - h0) * 1000 / (t1 - t0))) (loadgen sent $(jget "$T/hb.out" sent_per_s)/s)"
