#!/usr/bin/env bash
# net.sh -- a job that sends N bytes over loopback TCP shows at least N bytes out (and in: its receiver is inside).
# aicn-timeout: 60
. "$(dirname "$0")/lib.sh"

N=5000000
n=$(newname net)
"$METER" run --name "$n" -o "$TMP/net.json" -- "$WORK" net $N || fail "run: exit $?"
cat "$TMP/net.json"
check_record "$TMP/net.json"
[ "$(field "$TMP/net.json" net_tx_bytes)" -ge $N ] || fail "net_tx_bytes < $N"
[ "$(field "$TMP/net.json" net_rx_bytes)" -ge $N ] || fail "net_rx_bytes < $N"
[ "$(field "$TMP/net.json" net_tx_packets)" -gt 0 ] || fail "no packets out"
# and a job that sends nothing shows nothing
n=$(newname quiet)
"$METER" run --name "$n" -o "$TMP/q.json" -- "$WORK" sleep 0.1 || fail "run: exit $?"
[ "$(field "$TMP/q.json" net_tx_bytes)" = 0 ] || fail "traffic counted for a quiet job"
expect_gone "$n"
echo "ok"
