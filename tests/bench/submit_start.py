#!/usr/bin/env python3
# submit_start.py -- submit-to-start latency of one task on an idle network, seen by the renter:
# from sending SUBMIT until the coordinator reports the sandbox started (a replica "running" in
# the WATCH answer, or the first UPDATE with wall_ns). Prints median, p90, p99 and max in ms.
import os, sys, time

sys.path.insert(0, os.path.join(os.environ["AICN_SRC"], "tests/coord"))
from wire import Peer

T, PORT, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = Peer(T, "alice", PORT)
img, _ = p.upload(b"a cached image for the latency benchmark")
spec = {"image": img, "command": ["/bin/true"], "cores": 1, "memory": 1 << 20,
        "max_wall_seconds": 60, "max_price": 0}


def started(status):
    return any(r["state"] in ("running", "done") for r in status["replicas"])


lat = []
for i in range(N + 10):
    t0 = time.perf_counter()
    r = p.call("SUBMIT", spec=spec)
    assert r["type"] == "REPLY", r
    tid = r["data"]["task_id"]
    w = p.call("WATCH", task_id=tid)
    assert w["type"] == "REPLY", w
    if not started(w["data"]):
        p.wait(lambda m: m["type"] == "UPDATE" and m["task_id"] == tid
               and ("wall_ns" in m or m["final"]))
    t1 = time.perf_counter()
    if i >= 10:  # warm-up
        lat.append((t1 - t0) * 1000)
    # the next task on an idle network: wait for this one to end
    while True:
        m = p.wait(lambda m: m["type"] == "UPDATE" and m["task_id"] == tid, 30)
        if m["final"]:
            break
lat.sort()
q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]
print(f"submit-to-start over {len(lat)} tasks: median {q(0.5):.2f} ms, p90 {q(0.9):.2f} ms, "
      f"p99 {q(0.99):.2f} ms, max {lat[-1]:.2f} ms")
