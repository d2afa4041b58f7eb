#!/usr/bin/env bash
# front_restart.sh -- kill -9 of the coordinator with tasks queued and running, twice: after each
# restart the agent re-registers with what it runs; no task is lost, none is offered twice, all finish.
# aicn-timeout: 120
. "$AICN_SRC/tests/coord/lib.sh"

N=6
setup_ca
issue renter alice
issue agent prov1
write_conf 127.0.0.1:0 "settlement = on"
start_coord
write_conf "127.0.0.1:$PORT" "heartbeat_timeout = 15s" "settlement = on"
start_agent prov1 --cores 2 --mem-mb 2048 --finish-ms 2500 --price 0

renter() {
	python3 - "$T" "$PORT" "$@" <<'PY'
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["AICN_SRC"], "tests/coord"))
from wire import Peer
T, port, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
p = Peer(T, "alice", port)
if cmd == "submit":
    img, _ = p.upload(b"image bytes for the restart test")
    for i in range(int(sys.argv[4])):
        r = p.call("SUBMIT", spec={"image": img, "command": ["/bin/sleep", "2"], "cores": 1,
                                   "memory": 1 << 20, "max_wall_seconds": 60, "max_price": 0,
                                   "client_ref": f"restart-{i}"})
        assert r["type"] == "REPLY", r
        print(r["data"]["task_id"])
elif cmd == "states":
    r = p.call("TASKS")
    print(" ".join(sorted(t["state"] for t in r["data"]["tasks"])))
PY
}
count() { grep -c " $1 " "$T/prov1.events" || true; }

renter submit $N >"$T/ids" || fail "submit"
[ "$(wc -l <"$T/ids")" -eq $N ] || fail "not $N tasks submitted"
for _ in $(seq 100); do [ "$(count RUNNING)" -ge 2 ] && break; sleep 0.05; done
[ "$(count RUNNING)" -eq 2 ] || fail "expected 2 tasks running on a 2-core provider"
echo "2 running, $((N - 2)) queued: kill -9"
kill -9 "$COORD_PID" 2>/dev/null
{ wait "$COORD_PID"; } 2>/dev/null
start_coord
echo "restarted on port $PORT"

for _ in $(seq 200); do [ "$(count RUNNING)" -ge 4 ] && break; sleep 0.05; done
[ "$(count RUNNING)" -ge 4 ] || fail "the queued tasks did not start after the restart"
kill -9 "$COORD_PID" 2>/dev/null
{ wait "$COORD_PID"; } 2>/dev/null
echo "second kill -9 with $(count DONE) done"
start_coord

for _ in $(seq 400); do [ "$(count DONE)" -ge $N ] && break; sleep 0.05; done
[ "$(count DONE)" -eq $N ] || fail "only $(count DONE) of $N tasks completed"
grep -q "ERROR twice" "$T/prov1.events" && fail "a task was offered while its node still ran it"
grep "refused" "$T/coord.log" && fail "settlement refused a result of the driver"
while read -r id; do
	n=$(grep -c "OFFER $id 0" "$T/prov1.events")
	[ "$n" -eq 1 ] || fail "task $id offered $n times"
	grep -q "DONE $id\$" "$T/prov1.events" || fail "task $id not done"
done <"$T/ids"
states=$(renter states)
[ "$states" = "$(printf 'done %.0s' $(seq $N) | sed 's/ $//')" ] ||
	fail "coordinator states after the restarts: '$states'"
echo "ok: $N tasks, two kill -9 restarts: none lost, each offered once, all done"
