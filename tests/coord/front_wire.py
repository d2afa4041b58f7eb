#!/usr/bin/env python3
# front_wire.py -- the coordinator's handlers through the real daemon: SUBMIT validation (clear ERROR,
# nothing stored), blob upload/download with digest checks and permissions, renter isolation, cancel,
# rate, and hostile agent messages (forged, foreign and conflicting usage records).
import base64, hashlib, json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire import Peer, check, failures

T, PORT = sys.argv[1], int(sys.argv[2])


def expect_error(name, r, code, text=""):
    ok = r["type"] == "ERROR" and r["code"] == code and text in r.get("message", "")
    check(name, ok, json.dumps(r)[:300])


alice = Peer(T, "alice", PORT)
bob = Peer(T, "bob", PORT)
aud = Peer(T, "aud", PORT)

# --- blobs -------------------------------------------------------------------
image = os.urandom(600 * 1024)
img, r = alice.upload(image)
check("upload of a 600 KiB image in 3 chunks is acknowledged with its size",
      r["type"] == "ACK" and r.get("seq") == len(image), r)
check("the image downloads back byte for byte", alice.download(img) == image)
_, r = alice.upload(image)
check("a blob already stored is acknowledged at the first chunk with seq = size",
      r["type"] == "ACK" and r.get("seq") == len(image), r)

wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
_, r = alice.upload(b"x" * 1000, digest=wrong)
expect_error("data whose SHA-256 differs from the announced digest is refused", r, "digest_mismatch")
r = alice.download(wrong)
check("nothing of a refused upload is kept", isinstance(r, dict) and r["code"] == "not_found", r)

data = b"y" * 5000
dg = "sha256:" + hashlib.sha256(data).hexdigest()
r = alice.call("BLOB_PUT", digest=dg, offset=0, size=len(data) + 10,
               data=base64.b64encode(data).decode(), last=True)
expect_error("a last chunk before the announced size is a size mismatch", r, "size_mismatch")
r = alice.call("BLOB_PUT", digest=dg, offset=0, size=len(data),
               data=base64.b64encode(data[:100]).decode(), last=False)
r = alice.call("BLOB_PUT", digest=dg, offset=4000, size=len(data),
               data=base64.b64encode(data[100:200]).decode(), last=False)
expect_error("a chunk out of order is refused", r, "bad_offset")
r = alice.call("BLOB_PUT", digest=dg, offset=0, size=len(data),
               data="not base64 !!", last=True)
expect_error("data that is not base64 is refused", r, "invalid")
r = alice.call("BLOB_PUT", digest=dg, offset=0, size=1 << 40,
               data=base64.b64encode(b"z").decode(), last=False)
expect_error("a blob above the size cap is refused at once", r, "too_large")
r = bob.download(img)
check("another renter may not fetch alice's upload",
      isinstance(r, dict) and r["code"] == "forbidden", r)
check("an auditor may fetch any blob", aud.download(img) == image)
r = alice.call("BLOB_GET", digest=img, offset=len(image) + 1)
expect_error("an offset beyond the blob is refused", r, "bad_offset")

inp_data = b"input file\n" * 100
inp, r = alice.upload(inp_data)
check("an input blob uploads", r["type"] == "ACK", r)

# --- SUBMIT validation: every refusal names the field, nothing is stored ------
# Free tasks (max_price 0, agents ask 0): nobody here holds AICN, so the escrow is 0.
base = {"image": img, "command": ["/bin/echo", "hi"], "cores": 1, "memory": 64 << 20,
        "max_wall_seconds": 60, "max_price": 0}


def spec(**kw):
    s = dict(base)
    for k, v in kw.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    return s


unknown = "sha256:" + hashlib.sha256(b"never uploaded").hexdigest()
bad = [
    ("unknown image digest", spec(image=unknown), "invalid", "image: unknown image digest"),
    ("image not a digest", spec(image="ubuntu:latest"), "invalid", "image: must be a digest"),
    ("image missing", spec(image=None), "invalid", "image: missing"),
    ("command missing", spec(command=None), "invalid", "command: missing"),
    ("command not an array", spec(command="/bin/sh"), "invalid", "command"),
    ("command empty", spec(command=[]), "invalid", "command"),
    ("command with a number", spec(command=["/bin/sh", 3]), "invalid", "command"),
    ("cores above every provider", spec(cores=64), "invalid", "cores: 64 exceeds every provider"),
    ("negative cores", spec(cores=-1), "invalid", "cores: must be an integer"),
    ("zero cores", spec(cores=0), "invalid", "cores"),
    ("huge cores", spec(cores=10 ** 18), "invalid", "cores"),
    ("cores above int64", spec(cores=2 ** 70), "bad_message", ""),
    ("huge memory", spec(memory=2 ** 62), "invalid", "memory"),
    ("memory missing", spec(memory=None), "invalid", "memory: missing"),
    ("negative price", spec(max_price=-5), "invalid", "max_price"),
    ("price missing", spec(max_price=None), "invalid", "max_price: missing"),
    ("wall time missing", spec(max_wall_seconds=None), "invalid", "max_wall_seconds: missing"),
    ("wall time above 30 days", spec(max_wall_seconds=10 ** 9), "invalid", "max_wall_seconds"),
    ("cpu seconds above cores x wall", spec(max_cpu_seconds=61), "invalid", "max_cpu_seconds"),
    ("replicas beyond the providers", spec(replicas=3), "invalid", "replicas"),
    ("replicas 0", spec(replicas=0), "invalid", "replicas"),
    ("unknown field", spec(colour="blue"), "invalid", "unknown field"),
    ("bad env name", spec(env={"1X": "a"}), "invalid", "env"),
    ("env value not a string", spec(env={"X": 1}), "invalid", "env"),
    ("bad policy", spec(policy="random"), "invalid", "policy"),
    ("unknown provider", spec(providers=["ab" * 32]), "invalid", "providers: unknown provider"),
    ("bad location", spec(location="eu west!"), "invalid", "location"),
    ("deadline in the past", spec(deadline=1), "invalid", "deadline"),
    ("priority out of range", spec(priority=99), "invalid", "priority"),
    ("input not uploaded", spec(inputs=[{"digest": unknown, "path": "a.txt"}]), "invalid",
     "inputs[0].digest: unknown blob"),
    ("input path escaping", spec(inputs=[{"digest": inp, "path": "../etc/passwd"}]), "invalid",
     "inputs[0].path"),
    ("input path absolute", spec(inputs=[{"digest": inp, "path": "/etc/passwd"}]), "invalid",
     "inputs[0].path"),
    ("input path twice", spec(inputs=[{"digest": inp, "path": "a"}, {"digest": inp, "path": "a"}]),
     "invalid", "given twice"),
    ("input not an object", spec(inputs=["x"]), "invalid", "inputs[0]"),
    ("inputs not an array", spec(inputs={"a": 1}), "invalid", "inputs"),
    ("input with an extra field", spec(inputs=[{"digest": inp, "path": "a", "mode": 7}]), "invalid",
     "unknown field"),
]
for name, s, code, text in bad:
    expect_error("SUBMIT refused: " + name, alice.call("SUBMIT", spec=s), code, text)
expect_error("SUBMIT refused: spec not an object", alice.call("SUBMIT", spec="x"), "bad_message")
expect_error("SUBMIT refused: spec missing", alice.call("SUBMIT"), "bad_message")
r = alice.call("SUBMIT", spec=spec(max_price=1000))
expect_error("SUBMIT refused: the escrow exceeds the renter's balance", r, "insufficient_funds",
             "insufficient funds")
r = alice.call("TASKS")
check("no refused SUBMIT stored a task", r["type"] == "REPLY" and r["data"]["tasks"] == [], r)
q = aud.call("QUEUE")["data"]["queue"]
b = alice.call("BALANCE")
check("BALANCE answers for the caller's account",
      b["type"] == "REPLY" and b["data"].get("account") == "alice", b)
check("the queue is empty after the refusals",
      q["active_tasks"] == 0 and q["tasks_queued"] == 0 and q["tasks_failed"] == 0, q)

# --- roles ----------------------------------------------------------------------
agent = Peer(T, "prov2", PORT)
expect_error("an agent may not SUBMIT", agent.call("SUBMIT", spec=base), "forbidden")
expect_error("a renter may not REGISTER", alice.call("REGISTER", cores=1, mem_mb=1, cores_offered=1,
             ask_price=1, location="x", renewable_pm=0, perf_score=1, agent_version="x"),
             "forbidden")
expect_error("an auditor may not SUBMIT", aud.call("SUBMIT", spec=base), "forbidden")

# --- a task's life ----------------------------------------------------------------
s = spec(inputs=[{"digest": inp, "path": "data/in.txt"}], client_ref="job-1",
         env={"GREETING": "hello"})
r = alice.call("SUBMIT", spec=s)
check("a valid SUBMIT is accepted", r["type"] == "REPLY" and r["data"]["duplicate"] is False, r)
tid = r["data"]["task_id"]
check("task ids are decimal strings", isinstance(tid, str) and tid.isdigit(), tid)
r2 = alice.call("SUBMIT", spec=s)
check("a repeated client_ref returns the same task",
      r2["type"] == "REPLY" and r2["data"]["task_id"] == tid and r2["data"]["duplicate"] is True, r2)
expect_error("a client_ref reused for another spec is refused",
             alice.call("SUBMIT", spec=spec(client_ref="job-1", cores=2)), "conflict")
w = alice.call("WATCH", task_id=tid)
check("WATCH answers with the status", w["type"] == "REPLY" and w["data"]["task_id"] == tid, w)
final = None
states = []
deadline = time.time() + 20
while time.time() < deadline:
    u = alice.wait(lambda m: m["type"] == "UPDATE" and m["task_id"] == tid, 20)
    states.append(u["state"])
    if u["final"]:
        final = u
        break
check("UPDATEs end with a final 'done' carrying the result digest",
      final is not None and final["state"] == "done" and final.get("result_digest", "").startswith("sha256:"),
      states)
res = final["result_digest"] if final else ""
r = bob.download(res)
check("another renter cannot fetch the result", isinstance(r, dict) and r["code"] == "forbidden", r)
got = alice.download(res)
check("the renter downloads its result and its SHA-256 matches",
      isinstance(got, bytes) and "sha256:" + hashlib.sha256(got).hexdigest() == res, got)
st = bob.call("STATUS", task_id=tid)
expect_error("another renter cannot see the task", st, "not_found")
expect_error("another renter cannot cancel it", bob.call("CANCEL", task_id=tid), "not_found")
deadline = time.time() + 5
while time.time() < deadline and isinstance(aud.download(res), bytes):
    time.sleep(0.1)
check("a result fetched by its renter is deleted (result_grace 0)",
      isinstance(aud.download(res), dict))
check("an auditor sees any task", aud.call("STATUS", task_id=tid)["type"] == "REPLY")
check("RATE once is accepted", alice.call("RATE", task_id=tid, stars=5, text="fast")["type"] == "REPLY")
expect_error("RATE twice is refused", alice.call("RATE", task_id=tid, stars=1), "conflict")
expect_error("STATUS of a malformed task id", alice.call("STATUS", task_id="12abc"), "invalid")
expect_error("STATUS of an unknown task", alice.call("STATUS", task_id="999999"), "not_found")
offer = open(f"{T}/prov1.events").read()
check("the agent received the offer with the input and env",
      f"OFFER {tid} 0" in offer, offer[-300:])

# cancel a running task: the agent is told to stop it
r = alice.call("SUBMIT", spec=spec(max_wall_seconds=30))
tid2 = r["data"]["task_id"]
time.sleep(0.1)
r = alice.call("CANCEL", task_id=tid2)
check("CANCEL answers cancelled", r["type"] == "REPLY" and r["data"]["state"] == "cancelled", r)
deadline = time.time() + 5
while time.time() < deadline and f"KILL {tid2}" not in open(f"{T}/prov1.events").read():
    time.sleep(0.05)
check("the agent running the cancelled task is told to stop it",
      f"KILL {tid2}" in open(f"{T}/prov1.events").read())
expect_error("CANCEL of a finished task is refused", alice.call("CANCEL", task_id=tid2), "final")

# --- hostile agent ---------------------------------------------------------------
expect_error("a HEARTBEAT-less TASK_STATUS before REGISTER", agent.call(
    "TASK_STATUS", task_id="1", state="running", cpu_ns=1), "register_required")
reg = dict(cores=2, mem_mb=2048, cores_offered=2, ask_price=50, location="eu-west",
           renewable_pm=250, perf_score=100, agent_version="wire-test")
expect_error("REGISTER with a bad window is refused", agent.call("REGISTER", window="Mon 25:00-26:00", **reg),
             "invalid", "window")
r = agent.call("REGISTER", window="Mon-Sun 00:00-24:00", utc_offset_s=3600, **reg)
check("REGISTER is acknowledged", r["type"] == "ACK", r)
expect_error("a status for a task not placed on this node", agent.call(
    "TASK_STATUS", task_id=tid, state="running", cpu_ns=1), "stale")
expect_error("a result for a task id that is not a number", agent.call(
    "TASK_RESULT", task_id="abc", exit_code=0, result_digest=res, seq=0), "invalid")
expect_error("a result whose record never arrived", agent.call(
    "TASK_RESULT", task_id=tid, exit_code=0, result_digest=res, seq=777), "record_missing")

node = agent.node_id


def record(seq, cpu, task=tid):
    return {"v": 1, "type": "final", "node": node, "seq": seq, "prev": "0" * 64,
            "time": time.time_ns(), "task": task, "replica": 0, "renter": "alice",
            "image": img, "cgroup": 7, "start_ns": 1, "end_ns": 2, "wall_ns": 1, "cpu_ns": cpu,
            "cpu_kernel_ns": cpu, "runq_wait_ns": 0, "switches": 0, "procs": 1,
            "net_rx_bytes": 0, "net_tx_bytes": 0, "mem_peak_bytes": 0,
            "limits": {"cpu_quota_us": 0, "cpu_period_us": 0, "mem_bytes": 0, "pids": 0,
                       "timeout_ns": 0},
            "exit_kind": "exited", "exit_status": 0, "result": None}


def sign(rec, keyfile):
    body = json.dumps(rec, separators=(",", ":"), sort_keys=True).encode()
    with tempfile.NamedTemporaryFile() as f:
        f.write(body)
        f.flush()
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", keyfile,
                              "-in", f.name], check=True, capture_output=True).stdout
    out = dict(rec)
    out["sig"] = base64.b64encode(sig).decode()
    return out


good = sign(record(5, 1000), f"{T}/prov2.key")
r = agent.call("USAGE_RECORD", seq=5, record=good)
check("a record signed by the node's key is stored and acknowledged with its seq",
      r["type"] == "ACK" and r.get("seq") == 5, r)
r = agent.call("USAGE_RECORD", seq=5, record=good)
check("the same record sent again is acknowledged like the original",
      r["type"] == "ACK" and r.get("seq") == 5, r)
other = sign(record(5, 999999), f"{T}/prov2.key")
expect_error("a different record under a stored seq is refused",
             agent.call("USAGE_RECORD", seq=5, record=other), "conflict")
forged = sign(record(6, 1000), f"{T}/prov1.key")
expect_error("a record signed by another key is refused",
             agent.call("USAGE_RECORD", seq=6, record=forged), "bad_signature")
altered = dict(sign(record(7, 1000), f"{T}/prov2.key"))
altered["cpu_ns"] = 5
expect_error("a record altered after signing is refused",
             agent.call("USAGE_RECORD", seq=7, record=altered), "bad_signature")
foreign = record(8, 1000)
foreign["node"] = "ab" * 32
expect_error("a record of another node is refused",
             agent.call("USAGE_RECORD", seq=8, record=sign(foreign, f"{T}/prov2.key")), "bad_record")
expect_error("a record whose seq differs from the message's is refused",
             agent.call("USAGE_RECORD", seq=9, record=sign(record(10, 1), f"{T}/prov2.key")),
             "bad_record")
bad_rec = record(11, 1)
del bad_rec["cpu_ns"]
expect_error("a record missing a field is refused",
             agent.call("USAGE_RECORD", seq=11, record=sign(bad_rec, f"{T}/prov2.key")), "bad_record")
r = agent.call("TASK_RESULT", task_id=tid, exit_code=0, result_digest=res, seq=5)
check("a result for a task this node does not hold is acknowledged and changes nothing",
      r["type"] == "ACK" and aud.call("STATUS", task_id=tid)["data"]["state"] == "done", r)
r = agent.call("BLOB_GET", digest=img)
expect_error("an agent may not fetch an image of a task not offered to it", r, "forbidden")

# the daemon is still fine
m = aud.call("MARKET")
names = sorted(p["name"] for p in m["data"]["providers"])
check("MARKET lists both providers with their names", names == ["prov1", "prov2"], names)
n = aud.call("NODE", node_id=node)
check("NODE shows the provider", n["type"] == "REPLY" and n["data"]["location"] == "eu-west", n)

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
