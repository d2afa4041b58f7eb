#!/usr/bin/env bash
# demo.sh -- `make demo`: run the most complete slice of the network that exists, on loopback,
# and say what it showed.  Every process it starts is stopped at the end; logs stay in $AICN_BUILD/demo.
set -euo pipefail
: "${AICN_BUILD:?run through make demo}"
demo=$AICN_BUILD/demo
rm -rf "$demo"; mkdir -p "$demo"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

say "aicn demo: built programs in $AICN_BIN"
ls "$AICN_BIN" 2>/dev/null || echo "(none yet)"

shown=0
# Each capability adds its section here as it lands (metering, sandbox, records, network).

# --- metering (issue 3) ---
if [ -x "$AICN_BIN/aicn-meter" ] && [ "$(id -u)" = 0 ]; then
	say "metering: a 2-thread job and a 3,000-process fork storm, measured from the scheduler"
	mpin=/sys/fs/bpf/aicn-demo-$$
	mwork=$AICN_BUILD/tests/meter-work
	AICN_METER_PIN_DIR=$mpin "$AICN_BIN/aicn-meter" run -o "$demo/meter-spin.json" -- "$mwork" spin 2 0.5 \
		2>"$demo/meter.log" &
	mrun=$!
	pids+=("$mrun")
	sleep 0.6
	AICN_METER_PIN_DIR=$mpin "$AICN_BIN/aicn-meter" top --interval 0.3 --iterations 1 2>>"$demo/meter.log" || true
	wait "$mrun" || true
	AICN_METER_PIN_DIR=$mpin "$AICN_BIN/aicn-meter" run -o "$demo/meter-storm.json" -- "$mwork" forkstorm 3000 \
		2>>"$demo/meter.log" || true
	for f in "$demo/meter-spin.json" "$demo/meter-storm.json"; do
		[ -s "$f" ] || continue
		python3 - "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  {' '.join(a.split('/')[-1] for a in r['command'])}: cpu {r['cpu_ns']} ns (meter) vs "
      f"{r['kernel_cpu_ns']} ns (cpu.stat, us resolution): diff {r['crosscheck_diff_ns']:+d} ns, "
      f"crosscheck {r['crosscheck']}; wall {r['wall_ns'] / 1e9:.3f} s, run-queue wait "
      f"{r['rq_wait_ns'] / 1e9:.3f} s, forked {r['procs_forked']}, exited {r['procs_exited']}, "
      f"peak threads {r['threads_peak']}")
PY
	done
	AICN_METER_PIN_DIR=$mpin "$AICN_BIN/aicn-meter" cleanup 2>/dev/null || true
	echo "  records: $demo/meter-*.json"
	shown=1
fi

# --- sandbox (issue 4) ---
if [ -x "$AICN_BIN/aicn-sandbox" ] && [ "$(id -u)" = 0 ] && [ -x "$AICN_BUILD/tests/sandbox/sbx-probe" ]; then
	say "sandbox: a busybox OCI image unpacked once, a task inside it, hostile attempts denied, limits enforced"
	scache=$demo/sandbox-cache
	python3 "$AICN_SRC/tests/sandbox/mkimage.py" busybox "$demo/busybox.oci" --probe "$AICN_BUILD/tests/sandbox/sbx-probe" >/dev/null
	echo "  unpack: $("$AICN_BIN/aicn-sandbox" unpack --cache "$scache" "$demo/busybox.oci")"
	echo "  inside: $("$AICN_BIN/aicn-sandbox" run -q --cache "$scache" "$demo/busybox.oci" -- /bin/sh -c \
		'echo "$(id) on $(hostname); $(ls /proc | grep -c "^[0-9]") processes in its pid namespace; uid_map: $(cat /proc/self/uid_map | tr -s " ")"')"
	for attack in kernel sockets mount; do
		"$AICN_BIN/aicn-sandbox" run -q --cache "$scache" "$demo/busybox.oci" -- /bin/sbx-probe "$attack" 2>&1 |
			head -n 4 | sed 's/^/  /'
	done
	"$AICN_BIN/aicn-sandbox" run --result "$demo/sandbox-oom.json" --memory 32M --cache "$scache" "$demo/busybox.oci" \
		-- /bin/sbx-probe membomb 512 >/dev/null 2>&1 || true
	"$AICN_BIN/aicn-sandbox" run --result "$demo/sandbox-cpu.json" --cores 0.5 --timeout 2 --cache "$scache" \
		"$demo/busybox.oci" -- /bin/sbx-probe spin 2 10 >/dev/null 2>&1 || true
	python3 - "$demo/sandbox-oom.json" "$demo/sandbox-cpu.json" <<'PY'
import json, sys
o, c = (json.load(open(p)) for p in sys.argv[1:3])
print(f"  memory bomb under 32M: status {o['status']}, oom_kills {o['oom_kills']}, peak {o['memory_peak'] >> 20} MiB")
print(f"  2 spinners on 0.5 cores for 2 s: status {c['status']}, cpu {c['cpu_ns'] / 1e9:.2f} s in {c['wall_ns'] / 1e9:.2f} s wall")
PY
	echo "  results: $demo/sandbox-*.json; the seccomp table: aicn-sandbox policy"
	shown=1
fi

# --- records (issue 5) ---
if [ -x "$AICN_BIN/aicnctl" ]; then
	say "records: a node's signed meter log, verified offline; a tampered copy caught; one record checked with openssl"
	rd=$demo/records
	mkdir -p "$rd"
	"$AICN_BIN/aicnctl" audit gen-test-log "$rd/meter.log" --key "$rd/node.key" --pub "$rd/node.pub" \
		--records 500 --tasks 8 --checkpoint-every 100 --stats | sed 's/^/  wrote /'
	echo "  $(grep -c '"type":"checkpoint"' "$rd/meter.log") checkpoints, e.g.:"
	tail -n1 "$rd/meter.log" | python3 -c 'import json,sys; print("    " + json.load(sys.stdin)["note"].replace("\n", "\n    "))'
	"$AICN_BIN/aicnctl" audit verify "$rd/meter.log" --key "$rd/node.pub" | sed 's/^/  /' || true
	sed '42s/"cpu_ns":\([0-9]*\)/"cpu_ns":9\1/' "$rd/meter.log" >"$rd/tampered.log"
	echo "  the same log with one record's cpu_ns changed on line 42:"
	"$AICN_BIN/aicnctl" audit verify "$rd/tampered.log" --key "$rd/node.pub" | cut -c1-160 | sed 's/^/  /' || true
	grep -v '^{"note"' "$rd/meter.log" | sed -n 101p | sed 's/,"sig":"[^"]*"//' | tr -d '\n' >"$rd/rec.bin"
	grep -v '^{"note"' "$rd/meter.log" | sed -n 101p | sed 's/.*,"sig":"\([^"]*\)".*/\1/' | base64 -d >"$rd/rec.sig"
	echo "  record 100 with stock openssl (docs/auditing.md):"
	openssl pkeyutl -verify -rawin -pubin -inkey "$rd/node.pub" -in "$rd/rec.bin" -sigfile "$rd/rec.sig" | sed 's/^/    /' || true
	"$AICN_BIN/aicnctl" audit prove "$rd/meter.log" 100 -o "$rd/record-100.proof"
	"$AICN_BIN/aicnctl" audit check-proof "$rd/record-100.proof" --key "$rd/node.pub" | cut -c1-160 | sed 's/^/  /' || true
	echo "  CPU-hours by renter:"
	"$AICN_BIN/aicnctl" audit summarize "$rd/meter.log" --by renter | sed 's/^/    /'
	shown=1
fi

if [ "$shown" -eq 0 ]; then
	say "what this showed"
	echo "The foundation builds and tests; the network (metering, sandbox, records, coordinator) arrives issue by issue."
fi
echo
echo "logs and files: $demo"
