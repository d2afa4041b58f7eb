#!/usr/bin/env bash
# settlement.sh -- money end to end: a minted renter's escrow at submit, the charge for the metered CPU
# at the agreed price, the refund, the provider paid net of the fee, a cancelled task refunded, an epoch
# closing with rewards, and the ledger and the agents' meter logs passing the offline audit.
# aicn-timeout: 200
. "$(dirname "$0")/lib.sh"

AICN=1000000000
EPOCH_S=20
net_init
cat >"$T/params.conf" <<EOF
# genesis parameters for the test: a short epoch
epoch_ns = $((EPOCH_S * 1000000000))
EOF
step "mint 100 AICN to the renter (aicn-coordinator mint, offline, before the coordinator starts)"
RENTER_FUNDS=100 coord_start "params = $T/params.conf" settlement=on
ok "$(head -n1 "$T/mint.log")"
agent_add a max_cores=1 max_memory=256M ask_price=$((2 * AICN))
agent_add b max_cores=2 max_memory=256M ask_price=$((3 * AICN)) renewable_fraction=0.5
agent_start a
agent_start b
wait_registered a b
ok "providers a (2 AICN/CPU-h) and b (3 AICN/CPU-h, 50% renewable)"

balance() { ctl balance --json ${1:+--account "$1"} | pj "d['balance']"; }
b0=$(balance)
[ "$b0" = $((100 * AICN)) ] || fail "renter balance $b0 after minting 100 AICN"
ok "renter balance 100 AICN"

make_image busybox
step "a task burning ~2 CPU-seconds, max 0.02 CPU-hours (72 s) at 5 AICN/CPU-h, on provider a"
MAXP=5 # AICN per CPU-hour
ctl submit "$T/busybox" --json --cores 1 --memory 64M --max-wall 120 --max-cpu-hours 0.02 --max-price "$MAXP" \
	--provider "$(agent_node a)" -- /bin/sh -c 'end=$(($(date +%s) + 2)); while [ "$(date +%s)" -lt "$end" ]; do :; done; echo burned' \
	>"$T/sub1.json" || fail "submit: $(cat "$T/sub1.json")"
id=$(pj "d['task_id']" <"$T/sub1.json")
escrow=$(pj "d['escrow']" <"$T/sub1.json")
want_escrow=$(python3 -c "print(-(-72 * 10**9 * $MAXP * 10**9 // (3600 * 10**9)))")
[ "$escrow" = "$want_escrow" ] || fail "escrow $escrow, expected ceil(0.02 CPU-h x 5 AICN) = $want_escrow"
[ "$(balance)" = $((b0 - escrow)) ] || fail "balance $(balance) after escrow $escrow"
ok "task $id: escrow $escrow base units held; balance $(balance)"
wait_task "$id" DONE 60

step "the charge matches the signed record and the agreed price"
sleep 1
"$AICN_BIN/aicnctl" ledger show "$(coord_db)" >"$T/ledger.jsonl" 2>"$T/ledger.err" || fail "aicnctl ledger show: $(cat "$T/ledger.err")"
settle=$(python3 - "$T/ledger.jsonl" "$id" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["kind"] == "settle" and str(e.get("usage", {}).get("task")) == sys.argv[2]:
        print(json.dumps(e)); break
PY
)
[ -n "$settle" ] || fail "no settle entry for task $id in the ledger"
rec=$(grep "\"task\":\"$id\".*\"type\":\"final\"" "$T/agents/a/meter.log") || fail "no final record on a"
cpu=$(echo "$rec" | pj "d['cpu_ns']")
rechash=$(printf '%s' "$rec" | sha256sum | cut -d' ' -f1)
[ "$(echo "$settle" | pj "d['usage']['record']")" = "$rechash" ] || fail "the settle entry names record $(echo "$settle" | pj "d['usage']['record']"), the signed line hashes to $rechash"
price=$(echo "$settle" | pj "d['data']['price']")
[ "$price" -le $((MAXP * AICN)) ] && [ "$price" -ge $((AICN)) ] || fail "agreed price $price"
charge=$(python3 -c "print(min($cpu, 72 * 10**9) * $price // (3600 * 10**9))")
fee=$((charge * 500 / 10000))
posted=$(echo "$settle" | pj "-sum(p['d'] for p in d['postings'] if p['a'] == 'escrow:$id')")
[ "$posted" = "$charge" ] || fail "escrow:$id paid $posted, floor($cpu CPU-ns x $price / 1 h) = $charge"
ok "record ${rechash:0:16}…: $cpu CPU-ns at $price/CPU-h -> charge $charge, fee $fee"
wait_for 10 eval '[ "$(balance)" = $((b0 - charge)) ]' || fail "renter balance $(balance), expected $((b0 - charge)) (refund of $((escrow - charge)))"
ok "refund $((escrow - charge)): renter balance $(balance) = 100 AICN - charge"
pa=$(balance a)
[ "$pa" = $((charge - fee)) ] || fail "provider a has $pa, expected charge - 5% fee = $((charge - fee))"
ok "provider a paid $pa (charge - 5% fee)"

step "a task cancelled while running: only validated usage is charged, the rest refunded"
id2=$(submit "$T/busybox" --cores 1 --memory 16M --max-wall 60 --max-price "$MAXP" -- /bin/sh -c 'sleep 30') || fail "submit 2"
wait_task "$id2" RUNNING 30
bal_run=$(balance)
ctl cancel "$id2" >"$T/cancel.out" 2>&1 || fail "cancel: $(cat "$T/cancel.out")"
wait_task "$id2" CANCELLED 15
escrow_now() { ctl balance --json | pj "d.get('escrow', d.get('escrowed'))"; }
wait_for 10 eval '[ "$(escrow_now)" = 0 ]' ||
	fail "escrow left after cancel: $(ctl balance --json)"
ok "cancelled; escrow back to 0; balance $(balance) (was $bal_run while it ran)"

step "an epoch closes: rewards minted to the providers that worked"
# rewarded: the reward entries of closed epochs, each checked: T minted and shared exactly; true once
# an epoch paid provider a or b (epochs without work send the whole pool to the treasury)
rewarded() {
	"$AICN_BIN/aicnctl" ledger show "$(coord_db)" >"$T/ledger.jsonl" 2>/dev/null || return 1
	python3 - "$T/ledger.jsonl" <<'PY'
import json, sys
T = 1000 * 10**9
paid = False
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["kind"] != "reward":
        continue
    got = {p["a"]: p["d"] for p in e["postings"] if p["d"] > 0}
    minted = -sum(p["d"] for p in e["postings"] if p["a"] == "mint")
    if minted != T or sum(got.values()) != T:
        print(f"    {e['cause']}: minted {minted}, paid {got}: not the pool of {T}")
        sys.exit(2)
    if got.get("a", 0) > 0 or got.get("b", 0) > 0:
        print(f"    {e['cause']}: minted {minted}, paid {got}")
        paid = True
sys.exit(0 if paid else 1)
PY
}
wait_for $((2 * EPOCH_S + 10)) rewarded || fail "no epoch paid a provider within $((2 * EPOCH_S + 10)) s: $(rewarded)"
rewarded
ok "a closed epoch shared the 1000 AICN reward pool, providers who worked included"

step "the audit passes: the ledger replayed offline, every charge bound to a signed record; the meter logs"
"$AICN_BIN/aicnctl" ledger verify --signed-records "$(coord_db)" >"$T/lv.out" 2>&1 || fail "aicnctl ledger verify: $(cat "$T/lv.out")"
ok "$(head -n1 "$T/lv.out" | cut -c1-150)"
"$AICN_BIN/aicn-coordinator" ledger-export --config "$COORD_CONF" --out "$T/export" >"$T/export.out" 2>&1 ||
	fail "aicn-coordinator ledger-export: $(cat "$T/export.out")"
openssl pkey -in "$T/coord.key" -pubout -out "$T/coord.pub"
"$AICN_BIN/aicnctl" audit ledger "$T/export" --key "$T/coord.pub" >"$T/al.out" 2>&1 || fail "aicnctl audit ledger: $(cat "$T/al.out")"
ok "$(head -n1 "$T/al.out" | cut -c1-150)"
for n in a b; do
	agent_stop "$n" # a stopping agent seals its meter log with a checkpoint
	"$AICN_BIN/aicnctl" audit verify "$T/agents/$n/meter.log" --key "$(agent_pub "$n")" >"$T/av.out" 2>&1 ||
		fail "aicnctl audit verify ($n): $(cat "$T/av.out")"
	ok "$n: $(head -n1 "$T/av.out" | cut -c1-140)"
done
finish
