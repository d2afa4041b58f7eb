#!/usr/bin/env bash
# smoke.sh -- every libFuzzer target built by `make fuzzers` survives a short run over its corpus.
# aicn-timeout: 600
set -u
mapfile -t fuzzers < <(find "$AICN_BUILD/fuzz" -maxdepth 1 -type f -executable 2>/dev/null | sort)
if [ ${#fuzzers[@]} -eq 0 ]; then
	echo "no fuzz targets built yet (none declared with aicn_fuzz)"
	exit 0
fi
AICN_FUZZ_TIME=${AICN_FUZZ_SMOKE:-5} exec "$AICN_SRC/tests/fuzz/run" "${fuzzers[@]}"
