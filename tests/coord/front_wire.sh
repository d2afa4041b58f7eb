#!/usr/bin/env bash
# front_wire.sh -- the coordinator daemon's handlers over real mTLS: SUBMIT validation, blobs, renter
# isolation, cancel, rate and hostile agent messages (tests/coord/front_wire.py), with an agent driver.
# aicn-timeout: 120
. "$AICN_SRC/tests/coord/lib.sh"

setup_ca
for n in alice bob; do issue renter $n; done
issue auditor aud
for n in prov1 prov2; do issue agent $n; done
write_conf 127.0.0.1:0 "settlement = on"
start_coord
start_agent prov1 --cores 4 --mem-mb 4096 --finish-ms 200 --price 0
python3 "$AICN_SRC/tests/coord/front_wire.py" "$T" "$PORT" || fail "wire checks failed"
kill -0 "$COORD_PID" || fail "the coordinator died"
grep -q "ERROR twice" "$T/prov1.events" && fail "a task was offered twice"
kill -TERM "$COORD_PID"
wait "$COORD_PID" || fail "the coordinator did not stop cleanly on SIGTERM"
grep -q "stopped" "$T/coord.log" || fail "no clean stop logged"
echo "ok: wire checks passed, clean stop"
