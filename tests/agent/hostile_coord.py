#!/usr/bin/env python3
# hostile_coord.py -- a hostile coordinator for aicn-agent: real mTLS 1.3 with a coordinator certificate,
# then offers with bad values, unknown images, corrupt blobs; checks every answer the agent gives.
#
# usage: hostile_coord.py CERTPREFIX CA PORTFILE   (listens on 127.0.0.1:0, writes the port)
# Exits 0 when the agent answered every case as the protocol says, 1 (with the case) otherwise.
import base64, hashlib, json, socket, ssl, struct, sys, time

IMG_UNKNOWN = "sha256:" + "ab" * 32
BLOB = b"not the image you asked for\n"
BLOB_DIGEST = "sha256:" + hashlib.sha256(b"something else").hexdigest()


class Peer:
    def __init__(self, s):
        self.s, self.next_id, self.queue = s, 1000, []

    def send(self, obj):
        obj = dict(obj, v=1)
        obj.setdefault("id", self.next_id)
        self.next_id += 1
        b = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
        self.s.sendall(struct.pack(">I", len(b)) + b)
        return obj["id"]

    def _exact(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("agent closed the connection")
            b += c
        return b

    def recv(self):
        n = struct.unpack(">I", self._exact(4))[0]
        return json.loads(self._exact(n))

    def wait(self, pred, what, timeout=15):
        for i, m in enumerate(self.queue):
            if pred(m):
                return self.queue.pop(i)
        end = time.time() + timeout
        while time.time() < end:
            self.s.settimeout(max(0.05, end - time.time()))
            try:
                m = self.recv()
            except socket.timeout:
                break
            if m.get("type") == "HEARTBEAT":
                continue
            if pred(m):
                return m
            self.queue.append(m)
        sys.exit("FAIL: no %s from the agent (got %r)" % (what, self.queue[-5:]))


def offer(**kw):
    o = {"type": "TASK_OFFER", "task_id": "t1", "image": IMG_UNKNOWN, "cmd": ["true"],
         "cores": 1, "mem_mb": 64, "max_cpu_ns": 10**9, "price": 1000}
    o.update(kw)
    return o


def main():
    prefix, ca, portfile = sys.argv[1:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(prefix + ".pem", prefix + ".key")
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    open(portfile + ".tmp", "w").write(str(ls.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    ls.settimeout(60)
    conn, _ = ls.accept()
    p = Peer(ctx.wrap_socket(conn, server_side=True))
    hello = p.recv()
    assert hello["type"] == "HELLO", hello
    p.send({"type": "HELLO", "version": 1, "node_id": "0" * 64, "role": "agent", "software": "hostile"})
    reg = p.recv()
    if reg["type"] != "REGISTER":
        sys.exit("FAIL: expected REGISTER, got %r" % reg)
    for f in ("cores", "mem_mb", "cores_offered", "ask_price", "location", "renewable_pm",
              "perf_score", "agent_version", "perf_hash", "max_tasks", "utc_offset_s", "running"):
        if f not in reg:
            sys.exit("FAIL: REGISTER lacks %s: %r" % (f, reg))
    if reg["cores_offered"] != 1 or reg["max_tasks"] != 2 or reg["running"] != [] or len(reg["perf_hash"]) != 64:
        sys.exit("FAIL: REGISTER figures: %r" % reg)
    p.send({"type": "ACK", "ref": reg["id"]})
    print("ok   REGISTER: %s" % json.dumps({k: reg[k] for k in ("cores_offered", "perf_score", "max_tasks")}))

    def rejected(task_id, needle, **kw):
        p.send(offer(task_id=task_id, **kw))
        m = p.wait(lambda m: m["type"] in ("TASK_REJECT", "TASK_ACCEPT") and m["task_id"] == task_id,
                   "answer to offer %s" % task_id)
        if m["type"] != "TASK_REJECT" or needle not in m["reason"]:
            sys.exit("FAIL: offer %s: expected a rejection mentioning %r, got %r" % (task_id, needle, m))
        print("ok   offer %s rejected: %s" % (task_id, m["reason"]))

    rejected("trav", "path", inputs=[{"digest": IMG_UNKNOWN, "path": "../../../etc/cron.d/x", "size": 5}])
    rejected("abs", "path", inputs=[{"digest": IMG_UNKNOWN, "path": "/etc/passwd", "size": 5}])
    rejected("..", "task_id")
    rejected("big", "cores", cores=64)
    rejected("mem", "MiB", mem_mb=1 << 30)
    rejected("pow", "pow_bits", pow_bits=60)
    rejected("env", "env", env=["NOT AN ASSIGNMENT"])
    rejected("deadline", "deadline", deadline_ms=2**62)
    rejected("huge-in", "inputs", inputs=[{"digest": IMG_UNKNOWN, "path": "a", "size": 2**62}])
    # a value outside the wire schema: the agent's framework answers ERROR, the agent lives on
    p.send(offer(task_id="schema", cores=10**9))
    m = p.wait(lambda m: m["type"] == "ERROR" and m["code"] == "bad_message", "ERROR for a schema violation")
    print("ok   out-of-schema offer: ERROR %s" % m["code"])
    # things nobody asked for are ignored
    p.send({"type": "BLOB_PUT", "digest": IMG_UNKNOWN, "offset": 0, "size": 3, "data": "YWJj", "last": True})
    p.send({"type": "TASK_STATUS", "task_id": "nobody", "state": "killed", "cpu_ns": 0})
    # an unknown image: accepted, then failed with a reason once the blob is not found
    p.send(offer(task_id="noimg"))
    p.wait(lambda m: m["type"] == "TASK_ACCEPT" and m["task_id"] == "noimg", "TASK_ACCEPT noimg")
    g = p.wait(lambda m: m["type"] == "BLOB_GET" and m["digest"] == IMG_UNKNOWN, "BLOB_GET of the image")
    p.send({"type": "ERROR", "ref": g["id"], "code": "not_found", "message": "no such blob"})
    m = p.wait(lambda m: m["type"] == "TASK_STATUS" and m["task_id"] == "noimg" and m["state"] == "failed",
               "TASK_STATUS failed for noimg")
    print("ok   unknown image: failed: %s" % m.get("reason"))
    # a blob whose bytes do not match its digest
    p.send(offer(task_id="corrupt", image=BLOB_DIGEST))
    g = p.wait(lambda m: m["type"] == "BLOB_GET" and m["digest"] == BLOB_DIGEST, "BLOB_GET corrupt")
    p.send({"type": "BLOB_PUT", "digest": BLOB_DIGEST, "offset": 0, "size": len(BLOB),
            "data": base64.b64encode(BLOB).decode(), "last": True})
    m = p.wait(lambda m: m["type"] == "TASK_STATUS" and m["task_id"] == "corrupt" and m["state"] == "failed",
               "TASK_STATUS failed for corrupt")
    if "digest" not in m.get("reason", ""):
        sys.exit("FAIL: corrupt blob reason: %r" % m)
    print("ok   corrupt blob: failed: %s" % m["reason"])
    # a chunk claiming a size far beyond what was offered for an input
    p.send(offer(task_id="liar", image=BLOB_DIGEST))
    g = p.wait(lambda m: m["type"] == "BLOB_GET" and m["digest"] == BLOB_DIGEST, "BLOB_GET liar")
    p.send({"type": "BLOB_PUT", "digest": BLOB_DIGEST, "offset": 0, "size": 2**60,
            "data": base64.b64encode(BLOB).decode(), "last": False})
    m = p.wait(lambda m: m["type"] == "TASK_STATUS" and m["task_id"] == "liar" and m["state"] == "failed",
               "TASK_STATUS failed for liar")
    print("ok   oversized blob: failed: %s" % m["reason"])
    # still alive and answering: a heartbeat lists nothing running
    p.s.settimeout(15)
    end = time.time() + 15
    while time.time() < end:
        m = p.recv()
        if m["type"] == "HEARTBEAT":
            if m["running"]:
                sys.exit("FAIL: heartbeat lists tasks: %r" % m)
            print("ok   heartbeat: %r" % m)
            break
    else:
        sys.exit("FAIL: no heartbeat")
    print("all passed")


if __name__ == "__main__":
    main()
