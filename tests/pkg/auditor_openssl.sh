#!/usr/bin/env bash
# auditor_openssl.sh -- the stock-tool checks of docs/auditor.md, run as written: a checkpoint's signature with
# openssl pkeyutl and its Merkle root with the guide's rfc6962-root.sh, on a real signed log; tampering fails both.
# aicn-timeout: 120
set -euo pipefail
: "${AICN_BIN:?run through make check}" "${AICN_SRC:?}"
export LC_ALL=C
A=$AICN_BIN/aicnctl
t=$(mktemp -d /tmp/aicn-auditor-doc.XXXXXX)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# the script exactly as the guide prints it
awk '/<!-- test: rfc6962-root.sh/ { f = 1; next } f && /^```sh/ { g = 1; next } g && /^```/ { exit } g' \
	"$AICN_SRC/docs/auditor.md" >"$t/rfc6962-root.sh"
grep -q '^mth()' "$t/rfc6962-root.sh" || fail "no rfc6962-root.sh block in docs/auditor.md"
cd "$t"
"$A" audit gen-test-log meter.log --key node.key --pub node.pub --records 37 --tasks 3 \
	--checkpoint-every 16 >/dev/null

# RFC 6962 test vectors: the empty tree, and one leaf ""
[ "$(printf '' | bash rfc6962-root.sh)" = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ] ||
	fail "empty tree root"
[ "$(echo '' | bash rfc6962-root.sh | cut -d' ' -f1)" = \
	6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d ] || fail "one empty leaf"

check_note() { # NOTE_FILE: the guide's three commands; prints openssl's verdict
	sed '/^$/,$d' "$1" >note.txt
	tail -n1 "$1" | awk '{print $NF}' | base64 -d | tail -c +5 >note.sig
	openssl pkeyutl -verify -rawin -pubin -inkey node.pub -in note.txt -sigfile note.sig 2>&1 || true
}
n=0
while IFS= read -r line; do
	python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["note"])' <<<"$line" >latest.note
	v=$(check_note latest.note)
	[[ $v == *'Signature Verified Successfully'* ]] || fail "openssl rejects checkpoint $n: $v"
	N=$(sed -n 2p latest.note)
	root=$(grep -v '^{"note"' meter.log | sed -n "1,${N}p" | bash rfc6962-root.sh | cut -d' ' -f2)
	[ "$root" = "$(sed -n 3p latest.note)" ] || fail "checkpoint $n (size $N): root $root is not the note's"
	n=$((n + 1))
done < <(grep '^{"note"' meter.log)
[ "$n" -ge 3 ] || fail "only $n checkpoints in the test log"
echo "openssl and rfc6962-root.sh agree with all $n checkpoints"

# tampering: a changed note fails openssl, a changed record changes the root
sed '2s/.*/999/' latest.note >forged.note
v=$(check_note forged.note)
[[ $v == *'Signature Verification Failure'* ]] || fail "openssl did not reject a forged note: $v"
N=$(sed -n 2p latest.note)
root=$(grep -v '^{"note"' meter.log | sed -n "1,${N}p" | sed '5s/"cpu_ns":\([0-9]*\)/"cpu_ns":1\1/' |
	bash rfc6962-root.sh | cut -d' ' -f2)
[ "$root" != "$(sed -n 3p latest.note)" ] || fail "a changed record kept the root"

echo PASS
