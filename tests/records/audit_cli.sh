#!/usr/bin/env bash
# audit_cli.sh -- aicnctl audit end to end, and a record's signature checked with stock openssl as docs/auditing.md shows.
# aicn-timeout: 120
set -euo pipefail
: "${AICN_BIN:?run through make check}"
A="$AICN_BIN/aicnctl"
t=$(mktemp -d /tmp/aicn-audit-cli.XXXXXX)
trap 'rm -rf "$t"' EXIT
cd "$t"
fail() { echo "FAIL: $*"; exit 1; }

"$A" audit --help | grep -q 'check-proof' || fail "audit --help"
"$A" audit gen-test-log meter.log --key node.key --pub node.pub --records 300 --tasks 7 --checkpoint-every 50
[ "$(stat -c %a node.key)" = 600 ] || fail "node key mode"
out=$("$A" audit verify meter.log --key node.pub) || fail "clean log: $out"
echo "$out" | grep -q '^PASS .*300 records, 6 checkpoints' || fail "verify output: $out"
"$A" audit verify meter.log --key node.pub --checkpoints-only --quiet || fail "checkpoints-only"
"$A" audit verify meter.log --key node.pub --strict --quiet || fail "strict"

# the node id is the hex SHA-256 of the raw public key, computed here by openssl alone
nid=$(openssl pkey -pubin -in node.pub -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1)
head -n1 meter.log | grep -q "\"node\":\"$nid\"" || fail "node id $nid"

# docs/auditing.md: check record SEQ with openssl pkeyutl
check_record() { # SEQ
	grep -v '^{"note"' meter.log | sed -n "$(($1 + 1))p" | sed 's/,"sig":"[^"]*"//' | tr -d '\n' >rec.bin
	grep -v '^{"note"' meter.log | sed -n "$(($1 + 1))p" | sed 's/.*,"sig":"\([^"]*\)".*/\1/' | base64 -d >rec.sig
	openssl pkeyutl -verify -rawin -pubin -inkey node.pub -in rec.bin -sigfile rec.sig
}
for seq in 0 1 150 299; do
	check_record "$seq" | grep -q 'Signature Verified Successfully' || fail "openssl rejects record $seq"
done
# a changed figure fails with openssl too
check_record 150 >/dev/null
sed -i 's/"cpu_ns":\([0-9]*\)/"cpu_ns":1\1/' rec.bin
if openssl pkeyutl -verify -rawin -pubin -inkey node.pub -in rec.bin -sigfile rec.sig >/dev/null 2>&1; then
	fail "openssl accepted a changed record"
fi

# tampering through the CLI: exit 1, first bad line and the reason
cp meter.log bad.log
sed -i '20s/"cpu_ns":\([0-9]*\)/"cpu_ns":9\1/' bad.log
set +e
out=$("$A" audit verify bad.log --key node.pub); rc=$?
set -e
[ $rc -eq 1 ] || fail "tampered log exit $rc"
echo "$out" | grep -q '^FAIL bad.log: bad signature: line 20 ' || fail "tampered report: $out"
echo "$out" | grep -q '^  line 20: {' || fail "bad line not shown: $out"
sed '5d' meter.log >gap.log
set +e
out=$("$A" audit verify gap.log --key node.pub); rc=$?
set -e
[ $rc -eq 1 ] && echo "$out" | grep -q 'sequence gap' || fail "deleted line: $out"
head -n 120 meter.log >cut.log
set +e
out=$("$A" audit verify cut.log --key node.pub); rc=$?
set -e
[ $rc -eq 1 ] && echo "$out" | grep -q 'unsealed tail' || fail "unsealed tail: $out"
# truncated exactly at a checkpoint: caught by the checkpoint the auditor holds
tail -n1 meter.log | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["note"])' >latest.note
n=$(grep -n '^{"note"' meter.log | sed -n 3p | cut -d: -f1)
head -n "$n" meter.log >cp-cut.log
"$A" audit verify cp-cut.log --key node.pub --quiet || fail "cut at a checkpoint should verify alone"
set +e
out=$("$A" audit verify cp-cut.log --key node.pub --checkpoint latest.note); rc=$?
set -e
[ $rc -eq 1 ] && echo "$out" | grep -q 'truncation against a signed checkpoint' || fail "held checkpoint: $out"
"$A" audit verify meter.log --key node.pub --checkpoint latest.note --quiet || fail "held checkpoint on the full log"
# another node's key
"$A" audit gen-test-log other.log --key other.key --pub other.pub --records 5
set +e
"$A" audit verify meter.log --key other.pub >/dev/null; rc=$?
set -e
[ $rc -eq 1 ] || fail "wrong key accepted"

# proofs
"$A" audit prove meter.log 123 -o p.json
"$A" audit check-proof p.json --key node.pub | grep -q '^PASS p.json: record 123 ' || fail "inclusion proof"
set +e
"$A" audit check-proof p.json --key other.pub >/dev/null; rc=$?
set -e
[ $rc -eq 1 ] || fail "proof accepted with another key"
"$A" audit prove meter.log --consistency 100 300 -o c.json
"$A" audit check-proof c.json --key node.pub | grep -q 'extends its log at size 100' || fail "consistency proof"

# summaries agree with the records, computed independently
"$A" audit summarize meter.log --by renter --json >sum.json
python3 - <<'PY' || fail "summarize totals"
import json
last = {}
for line in open("meter.log"):
    r = json.loads(line)
    if r.get("type") in ("interval", "final"):
        k = (r["task"], r["replica"])
        last[k] = max(last.get(k, 0), r["cpu_ns"])
want = sum(last.values())
got = sum(g["cpu_ns"] for g in json.load(open("sum.json")))
assert got == want, (got, want)
PY
"$A" audit summarize meter.log --by day --csv | head -n1 | grep -q '^day,tasks,records,cpu_ns,cpu_hours$' || fail "csv header"
"$A" audit summarize meter.log | grep -q '^TOTAL' || fail "table"
echo "audit CLI and openssl checks passed"
