#!/bin/bash
# roundtrip.sh -- a renter's whole day through aicnctl against the real aicn-coordinator and aicn-agent:
# image build, market, submit with an input, watch, result, rate, balance, tasks, node, agent status, cancel.
# aicn-timeout: 300
set -u
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the agent's eBPF meter, cgroups, namespaces)"; exit 77; }
: "${AICN_BIN:?run through make check}"
COORD=${AICN_COORDINATOR:-$AICN_BIN/aicn-coordinator}
AGENT=${AICN_AGENT:-$AICN_BIN/aicn-agent}
CTL=$AICN_BIN/aicnctl
for b in "$COORD" "$AGENT"; do
	[ -x "$b" ] || { echo "SKIP: $b is not built"; exit 77; }
done
T=$(mktemp -d /tmp/aicn-cli-rt.XXXXXX)
PIN=/sys/fs/bpf/aicn-test-clirt-$$
CPID= APID=
cleanup() {
	[ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
	for f in "$T"/agent/tasks/*/supervise.state; do
		[ -f "$f" ] && kill -9 "$(sed -n 's/^supervisor_pid=//p' "$f")" 2>/dev/null
	done
	sleep 0.2
	[ -s "$T/cap" ] && find /sys/fs/cgroup -depth -type d -name "aicn-tasks-$(cat "$T/cap")*" \
		-exec sh -c 'find "$1" -depth -type d -exec rmdir {} + 2>/dev/null' _ {} \; 2>/dev/null
	"$AICN_BIN/aicn-meter" cleanup --pin-dir "$PIN" >/dev/null 2>&1 || rm -rf "$PIN"
	rm -rf "$T"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
die() {
	echo "FAIL: $*"
	echo "--- coordinator log"; tail -20 "$T/coord.log"
	echo "--- agent log"; tail -30 "$T/agent.log"
	exit 1
}
ok() { echo "ok   $*"; }
# jq-less JSON access: json FILE EXPR (python expression on d)
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- the network: CA, coordinator (with 100 AICN minted to alice), one agent ----
$CTL ca init "$T/ca" >/dev/null || die "ca init"
$CTL ca issue --dir "$T/ca" --role coordinator --name coord --out "$T/coord" --dns localhost >/dev/null || die "issue"
$CTL ca issue --dir "$T/ca" --role agent --name node-a --out "$T/agent" > "$T/agent.issue" || die "issue"
$CTL ca issue --dir "$T/ca" --role renter --name alice --out "$T/alice" >/dev/null || die "issue"
NODE=$(sed -n 's/^node_id //p' "$T/agent.issue")
mkdir -p "$T/state" "$T/agent"
cat > "$T/coord.conf" <<CONF
[coordinator]
listen = 127.0.0.1:0
cert = $T/coord.pem
key = $T/coord.key
ca = $T/ca/ca.pem
state_dir = $T/state
port_file = $T/coord.port
tick_ms = 100
settlement = on
CONF
"$COORD" mint --db "$T/state/coordinator.db" --account alice --amount 100 > "$T/mint.log" 2>&1 ||
	die "mint: $(cat "$T/mint.log")"
"$COORD" --config "$T/coord.conf" > "$T/coord.log" 2>&1 &
CPID=$!
for _ in $(seq 100); do [ -s "$T/coord.port" ] && break; sleep 0.1; done
PORT=$(cat "$T/coord.port" 2>/dev/null) || die "coordinator did not start"
cat > "$T/agent.conf" <<CONF
[agent]
coordinator = 127.0.0.1:$PORT
cert = $T/agent.pem
key = $T/agent.key
ca = $T/ca/ca.pem
state_dir = $T/agent
max_cores = 1
max_memory = 256M
ask_price = 2000000000
location = eu-west
metrics_listen = 127.0.0.1:0
CONF
AICN_METER_PIN_DIR=$PIN "$AGENT" --config "$T/agent.conf" > "$T/agent.log" 2>&1 &
APID=$!
for _ in $(seq 150); do grep -q "registered with the coordinator" "$T/agent.log" && break; sleep 0.1; done
grep -q "registered with the coordinator" "$T/agent.log" || die "agent did not register"
sed -n 's|.*tasks run in cgroup .*/aicn-tasks-\([0-9a-f]*\) .*|\1|p' "$T/agent.log" > "$T/cap"

# ---- the renter's side: only aicnctl from here on, configured like docs/renter.md ----
export HOME=$T/home XDG_CONFIG_HOME=
unset AICNCTL_CONFIG
mkdir -p "$HOME/.config/aicn"
cp "$T/alice.pem" "$T/alice.key" "$T/ca/ca.pem" "$HOME/.config/aicn/"
cat > "$HOME/.config/aicn/aicnctl.conf" <<CONF
[aicnctl]
coordinator = 127.0.0.1:$PORT
cert = alice.pem
key = alice.key
ca = ca.pem
CONF

$CTL balance --json > "$T/bal0.json" || die "balance"
[ "$(json "$T/bal0.json" 'd["balance"]')" = 100000000000 ] && ok "balance: 100 AICN minted to alice" ||
	fail "balance: $(cat "$T/bal0.json")"
$CTL balance | grep -q '^balance    100 AICN$' && ok "balance in AICN for people" || fail "balance text"

$CTL market --json > "$T/market.json" || die "market"
[ "$(json "$T/market.json" 'len(d["providers"])')" = 1 ] &&
	[ "$(json "$T/market.json" 'd["providers"][0]["node_id"]')" = "$NODE" ] &&
	ok "market --json lists the agent's node" || fail "market: $(cat "$T/market.json")"
$CTL market --location eu | grep -q "${NODE:0:16}" && ok "market --location eu matches eu-west" || fail "market filter"
$CTL market --location us | grep -q 'no provider matches' && ok "market --location us filters it out" || fail "market filter us"

# an image from a busybox directory
R=$T/rootfs
mkdir -p "$R/bin" "$R/etc"
cp /bin/busybox "$R/bin/"
for a in $("$R/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$R/etc/passwd"
$CTL image build-from-rootfs "$R" -o "$T/busybox.tar" -- /bin/sh >/dev/null || die "image build"
printf 'forty-two\n' > "$T/data.txt"

# submit -> watch -> result -> rate
id=$($CTL submit "$T/busybox.tar" --cores 1 --memory 64M --max-wall 2m --max-cpu-hours 0.01 \
	--max-price 3 --input "$T/data.txt:in/data.txt" -- /bin/sh -c \
	'cat /work/in/data.txt; mkdir -p /work/out; echo done > /work/out/flag; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exit 3' \
	2> "$T/submit.err") || die "submit: $(cat "$T/submit.err")"
[[ "$id" =~ ^[0-9]+$ ]] && ok "submit prints the task id ($id)" || fail "submit printed '$id'"
grep -q 'escrow 0.03 AICN' "$T/submit.err" && ok "escrow = 0.01 CPU-h x 3 AICN" || fail "escrow: $(cat "$T/submit.err")"
timeout 120 $CTL watch "$id" > "$T/watch.out" 2>&1; rc=$?
[ $rc = 0 ] && grep -q "task $id DONE" "$T/watch.out" && ok "watch (piped: plain lines) ends with DONE, exit 0" ||
	fail "watch exit $rc: $(tail -3 "$T/watch.out")"
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z task ' "$T/watch.out" && ok "watch lines are time-stamped" || fail "watch format"
$CTL result "$id" -o "$T/res" > "$T/result.out" 2> "$T/result.err"; rc=$?
[ $rc = 0 ] && [ "$(cat "$T/result.out")" = forty-two ] && ok "result prints the task's stdout" ||
	fail "result exit $rc: $(cat "$T/result.out" "$T/result.err")"
grep -q 'exit code 3' "$T/result.err" && ok "result reports exit code 3" || fail "exit code: $(cat "$T/result.err")"
[ "$(cat "$T/res/out/flag" 2>/dev/null)" = done ] && ok "out/ extracted" || fail "out/flag missing"
digest=$(sed -n 's/.*result \(sha256:[0-9a-f]*\) verified.*/\1/p' "$T/result.err")
[ "sha256:$(sha256sum < "$T/res/result.tar" | cut -d' ' -f1)" = "$digest" ] &&
	ok "result.tar kept, its sha256 is the verified digest" || fail "result.tar digest"
$CTL rate "$id" 5 "fast" >/dev/null && ok "rate 5 stars" || fail "rate"
$CTL rate "$id" 4 > /dev/null 2> "$T/rate2.err"; rc=$?
[ $rc = 4 ] && ok "rating twice is refused by the coordinator (exit 4)" || fail "second rate exit $rc: $(cat "$T/rate2.err")"

# on a terminal: one redrawn line with a bar towards the CPU cap (submit --watch knows the cap)
if command -v script >/dev/null; then
	script -qec "timeout 60 $CTL submit $T/busybox.tar --memory 16M --max-price 3 --max-cpu-hours 0.001 --watch \
		-- /bin/sh -c 'i=0; while [ \$i -lt 400000 ]; do i=\$((i+1)); done'" "$T/tty.out" > /dev/null 2>&1; rc=$?
	[ $rc = 0 ] && grep -q $'\r\033\\[Ktask [0-9]* RUNNING *\\[#*\\.*\\]' "$T/tty.out" && grep -q 'DONE' "$T/tty.out" &&
		ok "watch on a terminal: redrawn line with a progress bar" || fail "tty watch exit $rc: $(tr '\r' '\n' < "$T/tty.out" | tail -3)"
	grep -qE '^[0-9]{4}-' "$T/tty.out" && fail "time-stamped lines on a terminal" || true
fi

# money: charged at most the escrow, the rest refunded
$CTL balance --json > "$T/bal1.json" || fail "balance after"
bal=$(json "$T/bal1.json" 'd["balance"]')
esc=$(json "$T/bal1.json" 'd["escrow"]')
[ "$esc" = 0 ] && [ "$bal" -lt 100000000000 ] && [ "$bal" -ge $((100000000000 - 33000000)) ] &&
	ok "paid $((100000000000 - bal)) base units (<= the 0.033 AICN escrowed), escrow back to 0" ||
	fail "balance after the task: $(cat "$T/bal1.json")"

$CTL tasks --json > "$T/tasks.json" || fail "tasks"
[ "$(json "$T/tasks.json" '[t["state"] for t in d["tasks"] if str(t["task_id"]) == "'"$id"'"][0]')" = done ] &&
	ok "tasks --json: task $id done" || fail "tasks: $(cat "$T/tasks.json")"
$CTL node status "$NODE" --json > "$T/node.json" && grep -q "$NODE" "$T/node.json" && ok "node status --json" ||
	fail "node status: $(cat "$T/node.json")"
$CTL node earnings "$NODE" --json > "$T/earn.json" &&
	[ "$(json "$T/earn.json" '[e["state"] for e in d["earnings"] if e["task_id"] == "'"$id"'"][0]')" = paid ] &&
	[ "$(json "$T/earn.json" '[e["paid"] for e in d["earnings"] if e["task_id"] == "'"$id"'"][0] > 0')" = True ] &&
	ok "node earnings --json: task $id paid" || fail "node earnings: $(cat "$T/earn.json")"
$CTL agent status --metrics "$(cat "$T/agent/metrics.addr")" > "$T/agentst.out"; rc=$?
[ $rc = 0 ] && grep -q 'coordinator: registered' "$T/agentst.out" && grep -qE 'exited [12]\b' "$T/agentst.out" &&
	ok "agent status: registered, tasks exited" || fail "agent status exit $rc: $(cat "$T/agentst.out")"

# the same image again is not uploaded; a refusal exits 4 and names the field
$CTL submit "$T/busybox.tar" --max-price 3 --max-cpu-hours 0.01 --cores 64 -- /bin/true > /dev/null 2> "$T/big.err"; rc=$?
grep -q 'already on the coordinator' "$T/big.err" && ok "an image the coordinator has is not uploaded again" || fail "re-upload: $(cat "$T/big.err")"
[ $rc = 4 ] && grep -q 'cores' "$T/big.err" && ok "64 cores refused (exit 4), naming the field" || fail "big submit exit $rc"

# cancel a long task: watch exits 6, the escrow is refunded
id2=$($CTL submit "$T/busybox.tar" --memory 64M --max-price 3 --max-cpu-hours 0.01 -- /bin/sleep 100 2> "$T/s2.err") || fail "submit 2: $(cat "$T/s2.err")"
for _ in $(seq 100); do $CTL tasks --state running | grep -q "^$id2 " && break; sleep 0.1; done
$CTL cancel "$id2" > "$T/cancel.out" && grep -q "task $id2 CANCELLED; refunded" "$T/cancel.out" &&
	ok "cancel: $(cat "$T/cancel.out")" || fail "cancel: $(cat "$T/cancel.out")"
timeout 60 $CTL watch "$id2" > /dev/null 2>&1; rc=$?
[ $rc = 6 ] && ok "watch of a cancelled task exits 6" || fail "watch cancelled exit $rc"
for _ in $(seq 50); do [ "$($CTL balance --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["escrow"])')" = 0 ] && break; sleep 0.1; done
[ "$($CTL balance --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["escrow"])')" = 0 ] &&
	ok "escrow refunded after cancel" || fail "escrow left after cancel"

# staker and operator commands
$CTL stake 10 > "$T/stake.out" && grep -q 'stake now 10 AICN' "$T/stake.out" && ok "stake 10" || fail "stake: $(cat "$T/stake.out")"
[ "$($CTL balance --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stake"])')" = 10000000000 ] &&
	ok "balance shows the stake" || fail "stake not in the balance"
$CTL propose fee_bps 400 > /dev/null 2> "$T/propose.err"; rc=$?
[ $rc = 4 ] && grep -q 'staked' "$T/propose.err" && ok "propose below the minimum stake: refused (exit 4)" ||
	fail "propose exit $rc: $(cat "$T/propose.err")"
$CTL unstake 4 > "$T/unstake.out" && grep -q 'unbonding 4 AICN, spendable again from ' "$T/unstake.out" &&
	ok "unstake 4: says when it is spendable again" || fail "unstake: $(cat "$T/unstake.out")"
$CTL unstake 1 --json | python3 -c 'import json,sys,time; d = json.load(sys.stdin); assert d["stake"] == 5000000000 and d["release_ns"] > time.time_ns() + 86400 * 10**9, d' &&
	ok "unstake --json: release_ns (after the unbonding period)" || fail "unstake --json: no release_ns"
$CTL proposals --json | python3 -c 'import json,sys; assert json.load(sys.stdin)["proposals"] == []' &&
	ok "proposals --json" || fail "proposals"
$CTL nodes > /dev/null 2>&1; rc=$?
[ $rc = 4 ] && ok "nodes is an operator view: a renter is refused (exit 4)" || fail "nodes as renter exit $rc"
$CTL ca issue --dir "$T/ca" --role auditor --name audrey --out "$T/audrey" > /dev/null
$CTL nodes --json --cert "$T/audrey.pem" --key "$T/audrey.key" | grep -q "$NODE" && ok "nodes --json as an auditor" ||
	fail "nodes as auditor"
$CTL queue --json --cert "$T/audrey.pem" --key "$T/audrey.key" | grep -q '"queue"' && ok "queue --json as an auditor" ||
	fail "queue as auditor"

if [ "$failures" -gt 0 ]; then
	echo "--- coordinator log"; tail -20 "$T/coord.log"
	echo "--- agent log"; tail -20 "$T/agent.log"
	echo "$failures failure(s)"; exit 1
fi
echo "all passed"
