#!/usr/bin/env bash
# bad_submit.sh -- bad submissions (unknown image digest, more cores than any provider, negative and
# huge values, missing and unknown fields, malformed numbers) get a clear error naming the field, over
# the wire and through aicnctl, and nothing is stored or offered.
# aicn-timeout: 120
. "$(dirname "$0")/lib.sh"

net_init
coord_start
agent_add a max_cores=2 max_memory=256M ask_price=1000
agent_start a
wait_registered a
make_image busybox

step "one good task, for a real image digest and a baseline"
good=$(submit "$T/busybox" --cores 1 --memory 16M --max-wall 30 --max-price 5 -- /bin/echo ok) ||
	fail "the good submission was refused"
wait_task "$good" DONE 30
image=$(coord_sql "SELECT image FROM tasks WHERE id = $good")
case $image in sha256:*) ;; *) fail "stored image digest '$image'" ;; esac
tasks0=$(coord_sql "SELECT count(*) FROM tasks")
blobs0=$(coord_sql "SELECT count(*) FROM blobs")
reps0=$(coord_sql "SELECT count(*) FROM replicas")
ok "task $good DONE with image $image; store: $tasks0 tasks, $blobs0 blobs, $reps0 replicas"

step "bad specs over the wire (SUBMIT), each refused with a reason naming the field"
# name | spec override (Python dict literal merged into a good spec; None deletes) | expected in the error
cases=$(cat <<'EOF'
unknown image|{"image": "sha256:" + "0" * 64}|image
malformed image|{"image": "busybox:latest"}|image
cores above every provider|{"cores": 64}|cores
cores negative|{"cores": -1}|cores
cores zero|{"cores": 0}|cores
cores huge|{"cores": 2**62}|cores
memory negative|{"memory": -1048576}|memory
memory huge|{"memory": 2**62}|memory
wall negative|{"max_wall_seconds": -5}|max_wall_seconds
wall huge|{"max_wall_seconds": 10**12}|max_wall_seconds
price negative|{"max_price": -1}|max_price
price huge|{"max_price": 10**15}|max_price
cpu above cores x wall|{"max_cpu_seconds": 10**9}|max_cpu_seconds
replicas above providers|{"replicas": 3}|replicas
replicas huge|{"replicas": 1000}|replicas
priority huge|{"priority": 99}|priority
unknown provider|{"providers": ["f" * 64]}|providers
bad env name|{"env": {"1BAD": "x"}}|env
empty command|{"command": []}|command
command not strings|{"command": [1, 2]}|command
missing image|{"image": None}|image
missing command|{"command": None}|command
missing cores|{"cores": None}|cores
missing memory|{"memory": None}|memory
missing max_wall_seconds|{"max_wall_seconds": None}|max_wall_seconds
missing max_price|{"max_price": None}|max_price
unknown field|{"colour": "blue"}|colour
cores as string|{"cores": "1"}|cores
EOF
)
args=()
names=()
while IFS='|' read -r name over want; do
	spec=$(python3 -c '
import json, sys
spec = {"image": sys.argv[1], "command": ["/bin/echo", "x"], "cores": 1, "memory": 16 << 20,
        "max_wall_seconds": 30, "max_price": 5000}
for k, v in eval(sys.argv[2]).items():
    if v is None: spec.pop(k, None)
    else: spec[k] = v
print(json.dumps({"spec": spec}))' "$image" "$over")
	args+=(SUBMIT "$spec")
	names+=("$name|$want")
done <<<"$cases"
raw "${args[@]}" >"$T/raw.out" || true
bad=0
for i in "${!names[@]}"; do
	name=${names[$i]%%|*}
	want=${names[$i]#*|}
	line=$(python3 -c '
import json, sys
for l in open(sys.argv[1]):
    m = json.loads(l)
    if m.get("ref") == int(sys.argv[2]) and m.get("type") in ("ERROR", "REPLY"): print(json.dumps(m)); break' "$T/raw.out" $((i + 1)))
	if [ -z "$line" ]; then
		echo "FAIL: $name: no answer"; bad=$((bad + 1)); continue
	fi
	type=$(echo "$line" | pj "d['type']")
	msg=$(echo "$line" | pj "d.get('code', '') + ': ' + d.get('message', '')")
	if [ "$type" != ERROR ]; then
		echo "FAIL: $name: accepted: $line"; bad=$((bad + 1))
	elif ! echo "$msg" | grep -q -- "$want"; then
		echo "FAIL: $name: error does not name '$want': $msg"; bad=$((bad + 1))
	else
		printf 'ok   %-26s -> %s\n' "$name" "$(echo "$msg" | cut -c1-110)"
	fi
done
[ "$bad" = 0 ] || fail "$bad bad submissions not refused clearly"
grep -q '"type": "CLOSED"' "$T/raw.out" && fail "the coordinator closed the connection on bad submissions"

step "a frame that is not canonical JSON (a float, a duplicate key) is a bad_message, not a crash"
python3 - "$COORD_PORT" "$CA/ca.pem" "$T/renter.pem" "$T/renter.key" >"$T/rawbytes.out" <<'PY' || fail "raw bytes: $(cat "$T/rawbytes.out")"
import json, socket, ssl, struct, sys
port, ca, cert, key = sys.argv[1:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False
ctx.load_verify_locations(ca); ctx.load_cert_chain(cert, key)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=10))
def send(b): s.sendall(struct.pack(">I", len(b)) + b)
def exact(n):
    b = b""
    while len(b) < n:
        c = s.read(n - len(b))
        if not c: raise EOFError("closed")
        b += c
    return b
def recv(): return json.loads(exact(struct.unpack(">I", exact(4))[0]))
send(b'{"id":0,"max_v":1,"min_v":1,"type":"HELLO","v":1}'); recv()
send(b'{"id":1,"spec":{"cores":1.5},"type":"SUBMIT","v":1}'); a = recv()
send(b'{"id":2,"spec":{},"spec":{},"type":"SUBMIT","v":1}'); b = recv()
send(b'{"id":3,"spec":{"cores":99999999999999999999999},"type":"SUBMIT","v":1}'); c = recv()
for m in (a, b, c): print(json.dumps(m))
sys.exit(0 if all(m["type"] == "ERROR" for m in (a, b, c)) else 1)
PY
sed 's/^/    /' "$T/rawbytes.out"
ok "float, duplicate key and out-of-range integer refused"

step "through aicnctl: a clear message and exit status 4 (refused) or 2 (usage)"
ctl submit "$T/busybox" --cores 64 --memory 16M --max-wall 30 --max-price 5 -- /bin/true >"$T/c1.out" 2>&1
rc1=$?
ctl submit "$T/busybox" --cores -3 --memory 16M --max-wall 30 --max-price 5 -- /bin/true >"$T/c2.out" 2>&1
rc2=$?
ctl submit "$T/busybox" --cores 1 --memory 16M --max-wall 30 --max-price 5 >"$T/c3.out" 2>&1
rc3=$?
echo "    cores 64: exit $rc1: $(head -n1 "$T/c1.out")"
echo "    cores -3: exit $rc2: $(head -n1 "$T/c2.out")"
echo "    no command: exit $rc3: $(head -n1 "$T/c3.out")"
[ "$rc1" = 4 ] && grep -q 'cores' "$T/c1.out" || fail "aicnctl submit --cores 64: exit $rc1"
[ "$rc2" = 2 ] || [ "$rc2" = 4 ] || fail "aicnctl submit --cores -3: exit $rc2"
grep -q 'cores' "$T/c2.out" || fail "aicnctl submit --cores -3 does not name cores"
[ "$rc3" = 2 ] || [ "$rc3" = 4 ] || fail "aicnctl submit without a command: exit $rc3"
ok "aicnctl refuses with the reason"

step "nothing was stored or offered"
[ "$(coord_sql "SELECT count(*) FROM tasks")" = "$tasks0" ] || fail "tasks: $(coord_sql "SELECT count(*) FROM tasks"), was $tasks0"
[ "$(coord_sql "SELECT count(*) FROM replicas")" = "$reps0" ] || fail "replicas changed"
nb=$(coord_sql "SELECT count(*) FROM blobs")
[ "$nb" -le "$blobs0" ] || fail "blobs: $nb, was $blobs0"
[ "$(grep -c '"type":"final"' "$T/agents/a/meter.log")" = 1 ] || fail "the agent ran more than the good task"
kill -0 "$COORD_PID" || fail "the coordinator died"
ok "store unchanged ($tasks0 tasks, $reps0 replicas), the agent ran only the good task, coordinator alive"
finish
