#!/usr/bin/env bash
# admin_audit.sh -- the operator's faucet (mint refuses while a coordinator holds the store), params,
# ledger-export, and an auditor's `aicnctl audit ledger DIR --key coordinator.pub` / `audit task`.
# aicn-timeout: 120
set -u
B="${AICN_BIN:-build/bin}"
D="$B/aicn-pay-driver"
T=$(mktemp -d /tmp/aicn-admin-XXXXXX)
PID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
admin() { "$D" admin "$@"; }

"$D" run "$T" 12 || fail "settling 12 tasks"
DB="$T/coord.db"

# the faucet
out=$(admin mint --db "$DB" --account bob --amount 2.5 --cause req-1) || fail "mint: $out"
echo "$out"
[[ "$out" == "minted 2.5 AICN to bob (ledger entry "*"); balance 2.5 AICN" ]] || fail "mint said: $out"
admin mint --db "$DB" --account bob --amount 2.5 --cause req-1 2>"$T/err" && fail "same cause minted twice"
grep -q "was minted before" "$T/err" || fail "second mint: $(cat "$T/err")"
admin mint --db "$DB" --account bob --amount 0.0000000001 2>/dev/null; [ $? -eq 2 ] || fail "10 decimals accepted"
admin mint --db "$DB" --account escrow:1 --amount 1 2>/dev/null; [ $? -eq 2 ] || fail "minted into an escrow"
admin mint --db "$DB" --account treasury --amount 100 >/dev/null || fail "treasury funding"
admin mint --help | grep -q "operator's faucet" || fail "mint --help"
# through the coordinator's config file, amount in base units (the form the e2e scripts use)
mkdir -p "$T/cstate"
printf '[coordinator]\nlisten = 127.0.0.1:0\nstate_dir = %s\nkey = %s\nnetwork = test\n' "$T/cstate" "$T/coordinator.key" >"$T/coordinator.conf"
out=$(admin mint --config "$T/coordinator.conf" carol 1500000000) || fail "mint --config: $out"
[[ "$out" == "minted 1.5 AICN to carol (ledger entry 1); balance 1.5 AICN" ]] || fail "mint --config said: $out"
admin mint --config "$T/coordinator.conf" carol 0 2>/dev/null; [ $? -eq 2 ] || fail "0 base units accepted"
admin params --config "$T/coordinator.conf" | grep -qx "fee_bps 500" || fail "params --config"
admin ledger-export --config "$T/coordinator.conf" --out "$T/cexport" >/dev/null || fail "export --config"
openssl pkey -in "$T/coordinator.key" -pubout -out "$T/coordinator.pub" 2>/dev/null
"$B/aicnctl" audit ledger "$T/cexport" --key "$T/coordinator.pub" --origin aicn/ledger/test | grep -q "minted 1500000000 = sum of balances 1500000000" || fail "audit of the config export"
# a running coordinator holds the store: mint refuses
"$D" run "$T" 1000000 >/dev/null 2>&1 &
PID=$!
sleep 0.5
admin mint --db "$DB" --account bob --amount 1 2>"$T/err" && fail "mint beside a running coordinator"
grep -q "in use by a running coordinator" "$T/err" || fail "busy mint: $(cat "$T/err")"
kill -9 $PID; wait $PID 2>/dev/null; PID=

# parameters: built-in, and the ledger's (genesis set epoch_ns)
admin params | grep -qx "fee_bps 500" || fail "params"
admin params --db "$DB" | grep -qx "epoch_ns 600000000000" || fail "params --db"
admin params --json | grep -q '"slash_bps":1000' || fail "params --json"

# export while nothing runs, and the auditor's check with the public key alone
admin ledger-export --db "$DB" --out "$T/export" --key "$T/coordinator.key" --origin aicn/ledger/test || fail "export"
admin ledger-export --db "$DB" --out "$T/export" --key "$T/coordinator.key" --origin aicn/ledger/test 2>/dev/null && fail "export over an export"
openssl pkey -in "$T/coordinator.key" -pubout -out "$T/coordinator.pub" 2>/dev/null || fail "public key"
out=$("$B/aicnctl" audit ledger "$T/export" --key "$T/coordinator.pub") || { echo "$out"; fail "audit ledger"; }
echo "$out"
echo "$out" | grep -q "ledger sound" || fail "not sound"
echo "$out" | grep -Eq "^([1-9][0-9]*) of \1 charges carry an agent-signed usage record" || fail "unsigned charges"
echo "$out" | grep -q "root matches" || fail "checkpoint"
"$B/aicnctl" audit task "$T/export" 5 | grep -q '"kind":"settle"' || fail "audit task"
# another key's view of it is refused
openssl genpkey -algorithm ed25519 -out "$T/other.key" 2>/dev/null
openssl pkey -in "$T/other.key" -pubout -out "$T/other.pub" 2>/dev/null
"$B/aicnctl" audit ledger "$T/export" --key "$T/other.pub" >/dev/null && fail "audit with another key"
# a charge whose record was swapped out fails the audit (the chain breaks first)
cp -r "$T/export" "$T/forged"
python3 - "$T/forged/ledger.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
seq, body = db.execute("SELECT seq, body FROM ledger_entries WHERE kind = 'settle' LIMIT 1").fetchone()
db.execute("UPDATE ledger_entries SET body = ? WHERE seq = ?", (body.replace('"cpu_ns":', '"cpu_ns":1', 1), seq))
db.commit()
PY
"$B/aicnctl" audit ledger "$T/forged" --key "$T/coordinator.pub" >"$T/out" && fail "forged export passed"
grep -q UNSOUND "$T/out" || fail "forged: $(cat "$T/out")"
echo PASS
