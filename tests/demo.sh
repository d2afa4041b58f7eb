#!/usr/bin/env bash
# demo.sh -- `make demo`: the network on loopback as a renter and two providers see it, after a short
# look at the parts (meter, sandbox, records).  Every process it starts is stopped; logs stay in $AICN_BUILD/demo.
#
# The network part (as root): a CA and certificates, a coordinator (SQLite) and two agents with
# different capacities and prices, tokens minted to a renter, an OCI image built from Debian's
# busybox-static with `aicnctl image build-from-rootfs`, tasks (one on a chosen provider, others
# balanced, one replicated) watched and fetched, an epoch closed, and the money and the audit shown.
set -uo pipefail
: "${AICN_BUILD:?run through make demo}"
: "${AICN_BIN:?run through make demo}"
: "${AICN_SRC:?run through make demo}"
demo=$AICN_BUILD/demo
rm -rf "$demo"; mkdir -p "$demo"
demo_t0=$(date +%s%N)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

say "aicn demo: built programs in $AICN_BIN"
ls "$AICN_BIN" 2>/dev/null | tr '\n' ' ' || echo "(none yet)"
echo

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
fi


# --- the network (issues 7, 8, 9) ---
missing=
for b in aicn-coordinator aicn-agent aicn-supervise aicnctl; do
	[ -x "$AICN_BIN/$b" ] || missing+=" $b"
done
if [ "$(id -u)" != 0 ]; then
	say "the network needs root (eBPF meter, cgroups, namespaces): run make demo as root"
	exit 1
fi
if [ -n "$missing" ]; then
	say "the network: not built yet:$missing"
	exit 1
fi
trap - EXIT
cleanup
E2E_DIR=$demo/network bash "$AICN_SRC/tests/e2e/demo-network.sh"
rc=$?
secs=$((($(date +%s%N) - demo_t0) / 1000000))
echo
printf 'demo %s in %d.%01d s; logs and files: %s\n' "$([ $rc = 0 ] && echo passed || echo FAILED)" $((secs / 1000)) $((secs % 1000 / 100)) "$demo"
exit $rc
