#!/usr/bin/env bash
# no_quorum.sh -- results that disagree when no further provider may take a tie-break replica: the
# coordinator fails the task "no quorum: no further distinct provider" and refunds the whole escrow
# (nobody is paid), instead of leaving it queued forever.  Real daemon, settlement on, two agent drivers.
# aicn-timeout: 60
. "$AICN_SRC/tests/coord/lib.sh"

setup_ca
issue renter alice
for n in prov1 prov2; do issue agent $n; done
write_conf 127.0.0.1:0 "settlement = on"
mkdir -p "$T/state"
"$B/aicn-coordinator" mint --db "$T/state/coordinator.db" --account alice --amount 10 >"$T/mint.log" 2>&1 ||
	fail "mint: $(cat "$T/mint.log")"
start_coord
# each driver's result names its replica slot, so the two replicas' results always differ
start_agent prov1 --cores 4 --mem-mb 4096 --finish-ms 200 --price 1000
start_agent prov2 --cores 4 --mem-mb 4096 --finish-ms 200 --price 1000
python3 "$AICN_SRC/tests/coord/no_quorum.py" "$T" "$PORT" || fail "no-quorum checks failed"
grep -q "results disagree, another replica impossible: no further distinct provider" "$T/coord.log" ||
	fail "the coordinator did not log the impossible tie-break"
kill -0 "$COORD_PID" || fail "the coordinator died"
echo "ok: no quorum possible: task failed, escrow refunded"
