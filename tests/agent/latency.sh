#!/bin/bash
# latency.sh -- benchmark (make bench): aicn-agent's offer-to-running latency with the image cached, beside the
# bare sandbox start of the same image (aicn-sandbox run), and the agent's resident memory idle and after tasks.
set -u
AICN_SRC=${AICN_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
AICN_BIN=${AICN_BIN:-$AICN_SRC/build/bin}
. "$AICN_SRC/tests/agent/lib.sh"
N=${AICN_BENCH_TASKS:-20}
export AICN_LOG_LEVEL=debug
net_start max_cores=1 max_memory=256M
sleep 1
rss_idle=$(ps -o rss= -p "$APID" | tr -d ' ')
cat > "$T/spec.json" <<'SPEC'
{"command": ["true"], "cores": 1, "memory": 67108864, "max_wall_seconds": 60, "max_price": 1000000}
SPEC
for i in $(seq "$N"); do
	renter run "$T/spec.json" "$T/img.tar" --out "$T/r.tar" > "$T/r.json" || fail "task $i"
done
rss_after=$(ps -o rss= -p "$APID" | tr -d ' ')
# the agent's own figure: TASK_OFFER received -> the supervisor reports the sandboxed task exec'd
sed -n 's/.*task \([0-9]*\): running (.*) \([0-9]*\) ms after the offer/\1 \2/p' "$T/agent.log" |
	awk '$1 > 1 {print $2}' | sort -n > "$T/agent.ms"
# the peer: the bare sandbox, same image (unpacked once first), same command, process start to exit
"$AICN_BIN/aicn-sandbox" unpack --cache "$T/sbx" "$T/img.tar" >/dev/null || fail "unpack"
for i in $(seq "$N"); do
	s=$(date +%s%N)
	"$AICN_BIN/aicn-sandbox" run -q --no-meter --cache "$T/sbx" --memory 64M "$T/img.tar" -- true || fail "sandbox run"
	echo $((($(date +%s%N) - s) / 1000000))
done | sort -n > "$T/sbx.ms"
pct() { awk -v p="$2" '{v[NR]=$1} END {i=int(NR*p+0.999); if (i<1) i=1; print v[i]}' "$1"; }
a50=$(pct "$T/agent.ms" 0.5) a95=$(pct "$T/agent.ms" 0.95)
s50=$(pct "$T/sbx.ms" 0.5) s95=$(pct "$T/sbx.ms" 0.95)
echo "| agent offer-to-running latency, cached image, \`true\`, $((N - 1)) tasks, median / p95 | \`tests/agent/latency.sh\` | $a50 / $a95 ms | \`aicn-sandbox run\` (whole run of \`true\`, no agent): $s50 / $s95 ms | $(awk -v a="$a50" -v b="$s50" 'BEGIN {printf "%.2f", (b ? a / b : 0)}')x | $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg) |"
echo "| agent resident memory, idle after start / after $N tasks | \`tests/agent/latency.sh\` | $rss_idle / $rss_after KiB | — | — | same run |"
