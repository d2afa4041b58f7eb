#!/usr/bin/env bash
# records.sh -- meter log benchmarks: Ed25519 sign/verify beside openssl speed, append rate with
# fsync batching, and aicnctl audit verify of a 1,000,000-record log on both cores beside
# openssl speed -multi 2.  Prints markdown rows for docs/benchmarks.md.
# The 1 M-record log is generated once and cached under $AICN_BUILD/bench-cache/.
set -euo pipefail
: "${AICN_BUILD:?run through make bench}"
A=$AICN_BIN/aicnctl
CACHE=$AICN_BUILD/bench-cache
N=${RECORDS_BENCH_N:-1000000}
SECS=${RECORDS_BENCH_SECONDS:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$CACHE"
machine="$(nproc) cores, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg)"
num() { sed 's/[^0-9.]//g'; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]) * 100:.1f}%')" "$1" "$2"; }

# openssl speed's summary line: "253 bits EdDSA (Ed25519)   0.0000s   0.0001s  23973.0   7955.3".
# -elapsed: divide by wall-clock time like ours (by default openssl speed divides by its
# CPU user time, which on a shared machine is not comparable).
ossl_speed() { # ARGS... -> "sign/s verify/s"
	openssl speed -elapsed "$@" ed25519 2>/dev/null | grep 'EdDSA (Ed25519)' | tail -n1 | awk '{print $(NF-1), $NF}'
}

echo "### Ed25519 sign/verify, one core, side by side"
read -r a_sign a_verify < <("$A" audit bench-keys --seconds "$SECS")
read -r o_sign o_verify < <(ossl_speed -seconds "$SECS")
echo "| what | ours (libaicn key_signer/key_verifier) | openssl speed ed25519 | ratio |"
echo "|---|---|---|---|"
echo "| sign/s | $a_sign | $o_sign | $(ratio "$a_sign" "$o_sign") |"
echo "| verify/s | $a_verify | $o_verify | $(ratio "$a_verify" "$o_verify") |"

echo
echo "### append: sign + chain + Merkle tree + write + fdatasync per batch"
echo "| batch (records per fdatasync) | records/s |"
echo "|---|---|"
for b in 1 16 64 256; do
	n=$((b == 1 ? 2000 : 20000))
	rm -f "$TMP/a.log"
	rate=$("$A" audit gen-test-log "$TMP/a.log" --key "$TMP/k.key" --records "$n" --tasks 50 --batch "$b" --stats | sed -n 's/.* \([0-9.]*\) records\/s.*/\1/p')
	echo "| $b | $rate |"
done

LOG=$CACHE/records-$N.log
if [ ! -s "$LOG" ] || [ ! -s "$CACHE/records.pub" ]; then
	echo
	echo "(generating the $N-record log once into $LOG)"
	rm -f "$LOG.tmp" "$CACHE/records.key" "$CACHE/records.pub"
	"$A" audit gen-test-log "$LOG.tmp" --key "$CACHE/records.key" --pub "$CACHE/records.pub" \
		--records "$N" --tasks 200 --batch 4096 --stats
	mv "$LOG.tmp" "$LOG"
fi
cat "$LOG" >/dev/null # into the page cache, as for every run after the first

echo
echo "### audit verify of $N records on both cores, beside openssl speed -multi 2 (same run)"
# the machine may be shared: measure openssl before and after ours and take the mean
read -r _ m_verify1 < <(ossl_speed -multi 2 -seconds "$SECS")
full=$("$A" audit verify "$LOG" --key "$CACHE/records.pub" --threads 2)
read -r _ m_verify2 < <(ossl_speed -multi 2 -seconds "$SECS")
m_verify=$(python3 -c "import sys; print(f'{(float(sys.argv[1]) + float(sys.argv[2])) / 2:.1f}')" "$m_verify1" "$m_verify2")
TIMEFORMAT='%U %S'
cpu=$({ time "$A" audit verify "$LOG" --key "$CACHE/records.pub" --threads 2 --checkpoints-only >"$TMP/cpo"; } 2>&1)
cpo=$(cat "$TMP/cpo")
cpu_s=$(echo "$cpu" | awk '{print $1 + $2}')
full_rate=$(echo "$full" | sed -n 's/.*s, \([0-9]*\) records\/s.*/\1/p')
full_secs=$(echo "$full" | sed -n 's/.*(\([0-9.]*\) s,.*/\1/p')
cpo_rate=$(echo "$cpo" | sed -n 's/.*s, \([0-9]*\) records\/s.*/\1/p')
cpo_secs=$(echo "$cpo" | sed -n 's/.*(\([0-9.]*\) s,.*/\1/p')
echo "| mode | time | records/s | bound | ratio | target |"
echo "|---|---|---|---|---|---|"
echo "| full (every record signature, chain, sequence, time, roots, consistency) | ${full_secs} s | $full_rate | openssl speed -multi 2 verify: $m_verify/s (before $m_verify1, after $m_verify2) | $(ratio "$full_rate" "$m_verify") | ≥ 90% |"
echo "| --checkpoints-only (chain + tree hashes, checkpoint signatures) | ${cpo_secs} s wall, ${cpu_s} CPU-s | $cpo_rate | 500 000 records/s | $(ratio "$cpo_rate" 500000) | ≥ 100% |"
echo
echo "machine: $machine"
