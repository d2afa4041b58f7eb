#!/usr/bin/env bash
# sandbox_unpack.sh -- cold unpack of a multi-layer gzip image (busybox-static over 8 layers, whiteouts):
# aicn-sandbox unpack vs umoci unpack, side by side, median over AICN_BENCH_UNPACK_RUNS (default 10).
set -euo pipefail
: "${AICN_BIN:?run through make bench}"
N=${AICN_BENCH_UNPACK_RUNS:-10}
t=$(mktemp -d /tmp/aicn-bench-unpack.XXXXXX)
trap 'rm -rf "$t"' EXIT
python3 "$AICN_SRC/tests/sandbox/mkimage.py" multi-gzip "$t/img" >/dev/null
hyperfine -N --style none --runs "$N" --prepare "rm -rf $t/cache $t/bundle" --export-json "$t/u.json" \
	"$AICN_BIN/aicn-sandbox unpack --cache $t/cache $t/img" \
	"umoci unpack --image $t/img:latest $t/bundle" >/dev/null
python3 - "$t/u.json" "$N" "$(du -sb "$t/img/blobs" | cut -f1)" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
ours, umoci = (statistics.median(x["times"]) * 1000 for x in r)
print(f"cold unpack, 8-layer gzip image ({int(sys.argv[3]) // 1024} KiB of blobs), {sys.argv[2]} runs (ms):")
print(f"  aicn-sandbox unpack {ours:8.1f}")
print(f"  umoci unpack        {umoci:8.1f}")
print(f"  ratio aicn-sandbox / umoci: {ours / umoci:.2f}")
PY
