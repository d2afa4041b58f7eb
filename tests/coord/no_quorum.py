#!/usr/bin/env python3
# no_quorum.py -- tests/coord/no_quorum.sh's renter: two replicas whose results disagree, no third provider.
import os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire import Peer, check, failures

T, PORT = sys.argv[1], int(sys.argv[2])

alice = Peer(T, "alice", PORT)
img, r = alice.upload(os.urandom(4096))
check("image uploaded", r["type"] == "ACK", r)
before = alice.call("BALANCE")["data"]
check("alice holds the 10 AICN minted", before["balance"] == 10 * 10**9, before)

spec = {"image": img, "command": ["/bin/true"], "cores": 1, "memory": 64 << 20,
        "max_wall_seconds": 60, "max_price": 10**9, "replicas": 2}
r = alice.call("SUBMIT", spec=spec)
check("SUBMIT of two replicas accepted, escrowed", r["type"] == "REPLY" and r["data"]["escrow"] > 0, r)
tid = r["data"]["task_id"]

st = None
end = time.time() + 30
while time.time() < end:
    st = alice.call("STATUS", task_id=tid)["data"]
    if st["state"] not in ("queued", "running"):
        break
    time.sleep(0.2)
check("the task failed", st["state"] == "failed", st)
check("the reason says why", st["reason"] == "no quorum: no further distinct provider", st)
check("two replicas ran, no third was placed", len(st["replicas"]) == 2, st)

end = time.time() + 10
after = None
while time.time() < end:
    after = alice.call("BALANCE")["data"]
    if after["escrow"] == 0:
        break
    time.sleep(0.2)
check("the escrow is closed", after["escrow"] == 0, after)
check("the whole escrow came back: nobody was paid", after["balance"] == before["balance"],
      (before, after))
for n in ("prov1", "prov2"):
    b = alice.call("BALANCE", account=n)["data"]
    check(f"{n} earned nothing", b["balance"] == 0, b)

sys.exit(1 if failures else 0)
