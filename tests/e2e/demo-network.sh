#!/usr/bin/env bash
# demo-network.sh -- the network part of `make demo` (run by tests/demo.sh with E2E_DIR set): a renter
# and two providers on loopback, from a fresh CA to a closed epoch and a passing audit, narrated.
. "$(dirname "$0")/lib.sh"

AICN=1000000000
EPOCH_S=${DEMO_EPOCH_S:-45}
say() { printf '\n== %s\n' "$*"; }
# aicn AMOUNT: base units as AICN with 9 decimals
aicn() { python3 -c "import sys; v = int(sys.argv[1]); print(('-' if v < 0 else '') + '%d.%09d AICN' % divmod(abs(v), 10**9))" "$1"; }
indent() { sed 's/^/  /'; }

say "network: a CA and certificates (aicnctl ca)"
net_init
"$AICN_BIN/aicnctl" ca list --dir "$CA" 2>/dev/null | indent
echo "  every link is TLS 1.3 with these Ed25519 certificates; an agent's key also signs its usage records"

say "coordinator: SQLite state, a ${EPOCH_S} s epoch for the demo; 100 AICN minted to the renter, 10 to the treasury"
cat >"$T/params.conf" <<EOF
# genesis parameters of the demo network: a short epoch so one closes during the demo
epoch_ns = $((EPOCH_S * 1000000000))
EOF
t_start=$(date +%s)
coord_config "params = $T/params.conf" settlement=on
coord_mint renter 100 && coord_mint treasury 10 || fail "aicn-coordinator mint: $(tail -n 2 "$T/mint.log")"
coord_start
indent <"$T/mint.log"
echo "  aicn-coordinator listening on 127.0.0.1:$COORD_PORT, state in $T/coord/state/coordinator.db"

say "providers: two agents with different capacities and prices"
agent_add alpha max_cores=1 max_memory=256M ask_price=$((2 * AICN)) location=eu-west/paris
agent_add beta max_cores=2 max_memory=512M ask_price=$((3 * AICN)) location=us-east renewable_fraction=0.8
agent_start alpha
agent_start beta
wait_registered alpha beta
echo "  alpha: 1 core, 2 AICN per CPU-hour, eu-west/paris"
echo "  beta:  2 cores, 3 AICN per CPU-hour, us-east, 80% renewable"
echo "  the market as the renter sees it (aicnctl market):"
ctl market 2>&1 | indent

say "the renter's image: Debian's busybox-static, packed with aicnctl image build-from-rootfs"
rootfs=$T/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/work"
cp /bin/busybox "$rootfs/bin/busybox"
for a in sh echo sleep seq sha256sum date cat uname hostname head cut awk wc; do ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
ctl image build-from-rootfs "$rootfs" -o "$T/busybox.oci.tar" 2>&1 | indent
[ -s "$T/busybox.oci.tar" ] || fail "aicnctl image build-from-rootfs wrote no image"
echo "  $(du -h "$T/busybox.oci.tar" | cut -f1) OCI archive, sha256 $(sha256sum "$T/busybox.oci.tar" | cut -c1-16)…"

say "tasks: one on a chosen provider, three balanced, one replicated on both"
MAXP=5
common=("$T/busybox.oci.tar" --memory 32M --max-wall 60 --max-cpu-hours 0.01 --max-price "$MAXP")
# burn N: about N CPU-seconds of shell arithmetic; every output below is deterministic, because the
# network compares the results of replicas (and adds a validation replica for providers not yet trusted)
burn() { echo "i=0; while [ \$i -lt $(($1 * 150000)) ]; do i=\$((i + 1)); done"; }
sub() { # sub LABEL OPTIONS... -- CMD...
	local label=$1 out id
	shift
	out=$(ctl submit "$1" --json "${@:2}" 2>>"$T/submit.log") || fail "aicnctl submit ($label): $out $(tail -n 2 "$T/submit.log")"
	id=$(echo "$out" | pj "d['task_id']")
	printf '  task %-3s %-34s escrow %s\n' "$id" "$label" "$(aicn "$(echo "$out" | pj "d.get('escrow', 0)")")"
	ids+=("$id")
}
ids=()
sub "on alpha (chosen by the renter)" "${common[@]}" --cores 1 --provider "$(agent_node alpha)" -- \
	/bin/sh -c "$(burn 1); echo \"sum of 1..100000 = \$(seq 1 100000 | awk '{ s += \$1 } END { print s }')\""
for i in 1 2 3; do
	sub "balanced #$i" "${common[@]}" --cores 1 -- \
		/bin/sh -c "$(burn 1); echo \"balanced task $i: sha256 of 1..$((i * 10000)) = \$(seq 1 $((i * 10000)) | sha256sum | cut -c1-16)\""
done
sub "replicated on 2 providers" "${common[@]}" --cores 1 --replicas 2 -- \
	/bin/sh -c "$(burn 3); echo \"replicated: 2^40 = \$((1 << 40))\""
echo "  (new providers are not trusted yet: the network adds a validation replica on the other one and"
echo "   pays it from the treasury; a result is accepted when two providers agree)"

last=${ids[$((${#ids[@]} - 1))]}
say "watching task $last (aicnctl watch)"
AICNCTL_CONFIG=$T/renter.conf timeout 60 "$AICN_BIN/aicnctl" watch "$last" 2>&1 | tail -n 8 | indent
for id in "${ids[@]}"; do wait_task "$id" DONE 60; done
echo "  all ${#ids[@]} tasks DONE"

say "results (aicnctl result: downloaded, digest checked)"
for id in "${ids[@]}"; do
	ctl result "$id" -o "$T/res-$id" -q >/dev/null 2>&1 || fail "aicnctl result $id"
	printf '  task %-3s on %-11s exit %s: %s\n' "$id" "$(ran_on "$id" | tr '\n' '+' | sed 's/+$//')" \
		"$(tr -d '\n' <"$T/res-$id/exit_code")" "$(head -n1 "$T/res-$id/stdout")"
done

say "signed usage records: each final record, its signature checked with the node's public key"
for n in alpha beta; do
	openssl pkey -in "$T/$n.key" -pubout >"$T/$n.pub"
	grep '"type":"final"' "$T/agents/$n/meter.log" | while read -r rec; do
		echo "$rec" | sed 's/,"sig":"[^"]*"//' | tr -d '\n' >"$T/rec.bin"
		echo "$rec" | sed 's/.*,"sig":"\([^"]*\)".*/\1/' | base64 -d >"$T/rec.sig"
		v=$(openssl pkeyutl -verify -rawin -pubin -inkey "$T/$n.pub" -in "$T/rec.bin" -sigfile "$T/rec.sig" 2>&1 | head -n1)
		printf '%s\t%s\t%s\n' "$n" "$v" "$rec"
	done
done >"$T/records.tsv"
python3 - "$T/records.tsv" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    node, verdict, rec = line.rstrip("\n").split("\t", 2)
    r = json.loads(rec)
    print("  %-5s seq %3d task %3s replica %d: cpu %.3f s (kernel %.3f s) in %.2f s wall, %s %d: %s" % (
        node, r["seq"], r["task"], r["replica"], r["cpu_ns"] / 1e9, r["cpu_kernel_ns"] / 1e9,
        r["wall_ns"] / 1e9, r["exit_kind"], r["exit_status"], verdict))
PY

say "the epoch closes (every ${EPOCH_S} s): rewards to the providers"
# providers_rewarded: a closed epoch's reward entry pays alpha or beta
providers_rewarded() {
	"$AICN_BIN/aicnctl" ledger show "$(coord_db)" >"$T/ledger.jsonl" 2>/dev/null &&
		grep '"kind":"reward"' "$T/ledger.jsonl" | grep -q '"a":"\(alpha\|beta\)","d":[1-9]'
}
wait_for $((2 * EPOCH_S + 10)) providers_rewarded || fail "no epoch rewarded the providers within $((2 * EPOCH_S + 10)) s"
echo "  epoch closed $(($(date +%s) - t_start)) s after the coordinator started"

say "money: the renter's charges and refunds, the providers' rewards"
python3 - "$T/ledger.jsonl" <<'PY' | indent
import json, sys
def a(v): return ("-" if v < 0 else "") + "%d.%09d" % divmod(abs(v), 10**9)
tasks, rewards, fees = {}, [], 0
for l in open(sys.argv[1]):
    e = json.loads(l)
    k, ps = e["kind"], {p["a"]: p["d"] for p in e["postings"]}
    if k in ("escrow", "settle", "refund"):
        esc = [x for x in ps if x.startswith("escrow:")]
        if not esc: continue
        t = tasks.setdefault(esc[0][7:], {"escrow": 0, "charge": 0, "refund": 0, "cpu": 0})
        if k == "escrow": t["escrow"] += ps[esc[0]]
        if k == "settle":
            t["charge"] += -ps[esc[0]]
            t["cpu"] += e.get("data", {}).get("cpu_ns", 0)
        if k == "refund": t["refund"] += -ps[esc[0]]
    if k == "reward":
        rewards.append((e["cause"], {x: d for x, d in ps.items() if d > 0}))
print("task  escrow AICN     charged AICN    refunded AICN   CPU s")
for tid in sorted(tasks, key=int):
    t = tasks[tid]
    print(f"{tid:>4}  {a(t['escrow']):>14}  {a(t['charge']):>14}  {a(t['refund']):>14}  {t['cpu'] / 1e9:6.3f}")
tot = {k: sum(t[k] for t in tasks.values()) for k in ("escrow", "charge", "refund")}
print(f"total {a(tot['escrow']):>14}  {a(tot['charge']):>14}  {a(tot['refund']):>14}")
for cause, got in rewards:
    if any(x in got for x in ("alpha", "beta")):
        print(f"{cause}: reward pool of 1000 AICN shared as " + ", ".join(f"{x} {a(d)}" for x, d in sorted(got.items())))
    else:
        print(f"{cause}: no work, the pool went to the treasury")
PY
echo "  balances (aicnctl ledger balance, from the coordinator's ledger):"
"$AICN_BIN/aicnctl" ledger balance "$(coord_db)" renter alpha beta treasury fee:maintenance fee:development fee:staking |
	while read -r who units; do printf '    %-16s %22s\n' "$who" "$(aicn "$units")"; done
echo "  the renter's own view (aicnctl balance):"
ctl balance 2>&1 | sed 's/^/    /'


say "audit: the ledger exported and signed by the coordinator, replayed offline; the meter logs"
"$AICN_BIN/aicn-coordinator" ledger-export --config "$COORD_CONF" --out "$T/ledger-export" 2>&1 | indent
[ "${PIPESTATUS[0]}" = 0 ] || fail "aicn-coordinator ledger-export failed"
openssl pkey -in "$T/coord.key" -pubout -out "$T/coord.pub"
"$AICN_BIN/aicnctl" audit ledger "$T/ledger-export" --key "$T/coord.pub" 2>&1 | head -n 4 | cut -c1-150 | indent
[ "${PIPESTATUS[0]}" = 0 ] || fail "aicnctl audit ledger failed"
echo "  stopping both agents: each seals its meter log with a signed checkpoint"
agent_stop alpha
agent_stop beta
for n in alpha beta; do
	"$AICN_BIN/aicnctl" audit verify "$T/agents/$n/meter.log" --key "$T/$n.pub" 2>&1 | cut -c1-150 | indent
	[ "${PIPESTATUS[0]}" = 0 ] || fail "aicnctl audit verify $n failed"
done

say "stopping the coordinator (the agents are stopped, their tasks are done)"
echo "  logs: $T/coordinator.log, $T/agent-alpha.log, $T/agent-beta.log; state under $T"
