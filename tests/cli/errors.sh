#!/bin/bash
# errors.sh -- aicnctl's errors without a coordinator: usage (exit 2), configuration (1), connection (3), each with a clear line.
# aicn-timeout: 60
: "${AICN_BIN:?run through make check}"
CTL=$AICN_BIN/aicnctl
T=$(mktemp -d /tmp/aicn-cli-errors.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }
# expect RC PATTERN CMD...: exit status RC and stderr matching PATTERN
expect() {
	local want=$1 pat=$2; shift 2
	"$@" > "$T/out" 2> "$T/err"; local rc=$?
	if [ $rc = "$want" ] && grep -qE -- "$pat" "$T/err"; then ok "$* -> $rc"
	else fail "$*: exit $rc (want $want), stderr: $(head -2 "$T/err")"; fi
}
export HOME=$T/home XDG_CONFIG_HOME=
mkdir -p "$HOME"
unset AICNCTL_CONFIG

# usage
expect 2 "unknown command 'frobnicate'" $CTL frobnicate
expect 2 "--max-price AICN is required" $CTL submit img.tar -- /bin/true
expect 2 "give the command after '--'" $CTL submit img.tar --max-price 1
expect 2 "--cores: 'many' is not an integer" $CTL submit img.tar --cores many --max-price 1 -- /bin/true
expect 2 "--max-price: '1.0000000001' is out of range|is not an amount" $CTL submit img.tar --max-price 1.0000000001 -- /bin/true
expect 2 "--policy: 'random' is not balanced" $CTL submit img.tar --max-price 1 --policy random -- /bin/true
expect 2 "--replicas: '9' is out of range \(1 to 5\)" $CTL submit img.tar --max-price 1 --replicas 9 -- /bin/true
expect 2 "'abc' is not a task id" $CTL watch abc
expect 2 "STARS must be 1 to 5" $CTL rate 1 9
expect 2 "--sort: 'cost' is not price" $CTL market --sort cost
expect 2 "missing argument" $CTL result
expect 2 "vote 'yes' or 'no'" $CTL vote 1 maybe
expect 2 "is not a positive amount" $CTL stake -3
expect 2 "NODEID must be 64" $CTL node status abc
$CTL --help > "$T/help" 2>&1 && grep -q '4  the coordinator refused' "$T/help" && grep -q '^  submit' "$T/help" \
	&& ok "aicnctl --help lists commands and exit codes" || fail "aicnctl --help"
$CTL submit --help > "$T/help" 2>&1 && grep -q -- '--max-price AICN' "$T/help" && grep -q 'Exit status' "$T/help" \
	&& ok "submit --help" || fail "submit --help"

# configuration
expect 1 "no coordinator configured" $CTL tasks
expect 1 "cannot read config $T/none.conf" env AICNCTL_CONFIG=$T/none.conf $CTL tasks
printf '[aicnctl]\ncoordinator = 127.0.0.1:1\nflavour = mint\n' > "$T/bad.conf"
expect 1 "unknown key 'flavour'" $CTL --config "$T/bad.conf" tasks
printf 'coordinator = 127.0.0.1:1\ncert = alice.pem\nkey = alice.key\nca = ca.pem\n' > "$T/rel.conf"
expect 1 "cannot load our TLS identity: .*$T/" $CTL --config "$T/rel.conf" tasks

# connection: a certificate that loads, and nobody listening
$CTL ca init "$T/ca" > /dev/null && $CTL ca issue --dir "$T/ca" --role renter --name alice > /dev/null \
	|| fail "ca setup"
$CTL ca list --dir "$T/ca" --json | python3 -c 'import json,sys; c=json.load(sys.stdin)["certificates"]; assert [x["name"] for x in c] == ["alice"] and c[0]["role"] == "renter", c' \
	&& ok "ca list --json" || fail "ca list --json"
mkdir -p "$HOME/.config/aicn"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '[aicnctl]\ncoordinator = 127.0.0.1:%s\ncert = %s\nkey = %s\nca = %s\n' "$port" \
	"$T/ca/alice.pem" "$T/ca/alice.key" "$T/ca/ca.pem" > "$HOME/.config/aicn/aicnctl.conf"
expect 3 "cannot connect to 127.0.0.1:$port: connection refused" $CTL tasks
expect 3 "cannot connect to 127.0.0.1:$port: connection refused" $CTL balance --json
# precedence: the command's option over the leading one over the file; --config over the default file
expect 3 "cannot connect to 127.0.0.1:1: " $CTL --coordinator 127.0.0.1:2 tasks --coordinator 127.0.0.1:1
expect 3 "cannot connect to 127.0.0.1:2: " $CTL --coordinator 127.0.0.1:2 tasks
sed "s/127.0.0.1:$port/127.0.0.1:3/" "$HOME/.config/aicn/aicnctl.conf" > "$T/other.conf"
expect 3 "cannot connect to 127.0.0.1:3: " $CTL tasks --config "$T/other.conf"
expect 3 "cannot connect to 127.0.0.1:3: " env AICNCTL_CONFIG="$T/other.conf" $CTL tasks

# a listener that accepts and never answers: the timeout ends it
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' > "$T/port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
silent=$(cat "$T/port")
start=$(date +%s)
expect 3 "cannot connect to 127.0.0.1:$silent: .*(timed out|time)" $CTL --coordinator "127.0.0.1:$silent" --timeout 2 tasks
[ $(( $(date +%s) - start )) -le 10 ] && ok "gave up within the timeout" || fail "took too long"

if [ "$failures" -gt 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all passed"
