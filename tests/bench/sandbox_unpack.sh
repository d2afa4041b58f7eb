#!/usr/bin/env bash
# sandbox_unpack.sh -- cold unpack of a multi-layer gzip image (busybox-static over 8 layers, whiteouts):
# aicn-sandbox unpack vs umoci unpack, side by side, median over AICN_BENCH_UNPACK_RUNS (default 10).
set -euo pipefail
: "${AICN_BIN:?run through make bench}"
N=${AICN_BENCH_UNPACK_RUNS:-10}
t=$(mktemp -d /tmp/aicn-bench-unpack.XXXXXX)
trap 'rm -rf "$t"' EXIT
python3 "$AICN_SRC/tests/sandbox/mkimage.py" multi-gzip "$t/img" >/dev/null
# on the disk (ext4 here, metadata-bound) and on tmpfs (the unpacker's own cost)
shm=$(mktemp -d /dev/shm/aicn-bench-unpack.XXXXXX)
trap 'rm -rf "$t" "$shm"' EXIT
for where in "$t" "$shm"; do
	hyperfine -N --style none --runs "$N" --prepare "rm -rf $where/cache $where/bundle" --export-json "$where/u.json" \
		"$AICN_BIN/aicn-sandbox unpack --cache $where/cache $t/img" \
		"umoci unpack --image $t/img:latest $where/bundle" >/dev/null
	python3 - "$where/u.json" "$N" "$(du -sb "$t/img/blobs" | cut -f1)" "$(df --output=fstype "$where" | tail -1)" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
ours, umoci = (statistics.median(x["times"]) * 1000 for x in r)
print(f"cold unpack, 8-layer gzip image ({int(sys.argv[3]) // 1024} KiB of blobs) onto {sys.argv[4]}, "
      f"median of {sys.argv[2]} runs: aicn-sandbox {ours:.1f} ms, umoci {umoci:.1f} ms, ratio {ours / umoci:.2f}")
PY
done
