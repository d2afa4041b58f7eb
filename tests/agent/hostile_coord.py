#!/usr/bin/env python3
# hostile_coord.py -- a hostile coordinator for aicn-agent: real mTLS 1.3 with a coordinator certificate,
# then offers with bad values, unknown images, corrupt blobs; checks every answer the agent gives.
#
# usage: hostile_coord.py CERTPREFIX CA PORTFILE IMAGE.tar   (listens on 127.0.0.1:0, writes the port)
# After the hostile cases it runs one good task with a Proof-of-Work difficulty, answers the first
# TASK_RESULT with ERROR record_missing, checks the stamp, and kills a second task while it runs.
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


def serve_blob(p, data, g):
    off = g.get("offset", 0)
    part = data[off:off + 256 * 1024]
    p.send({"type": "BLOB_PUT", "digest": g["digest"], "offset": off, "size": len(data),
            "data": base64.b64encode(part).decode(), "last": off + len(part) >= len(data)})


def pow_bits(task_id, result, rec_hash, nonce):
    t = task_id.encode()
    d = hashlib.sha256(b"aicn-pow-v1\0" + struct.pack(">H", len(t)) + t + result + rec_hash +
                       struct.pack(">Q", nonce)).digest()
    n = int.from_bytes(d, "big")
    return 256 - n.bit_length()


def good_task(p, img):
    """A real task end to end with pow_bits 10; TASK_RESULT refused once with record_missing."""
    digest = "sha256:" + hashlib.sha256(img).hexdigest()
    p.send(offer(task_id="good", image=digest, pow_bits=10, renter="alice", replica=1,
                 cmd=["sh", "-c", "mkdir -p /work/out; echo 42 > /work/out/answer; exit 3"]))
    p.wait(lambda m: m["type"] == "TASK_ACCEPT" and m["task_id"] == "good", "TASK_ACCEPT good")
    records, blob, result, refused = {}, {}, None, False
    end = time.time() + 60
    while time.time() < end:
        m = p.wait(lambda m: m["type"] in ("BLOB_GET", "USAGE_RECORD", "BLOB_PUT", "TASK_RESULT") or
                   (m["type"] == "TASK_STATUS" and m["state"] == "failed"), "the good task's messages")
        if m["type"] == "TASK_STATUS":
            sys.exit("FAIL: good task failed: %r" % m)
        if m["type"] == "BLOB_GET":
            serve_blob(p, img, m)
        elif m["type"] == "USAGE_RECORD":
            records[m["seq"]] = m["record"]
            p.send({"type": "ACK", "ref": m["id"], "seq": m["seq"]})
        elif m["type"] == "BLOB_PUT":
            blob.setdefault(m["digest"], b"")
            blob[m["digest"]] += base64.b64decode(m["data"])
            p.send({"type": "ACK", "ref": m["id"]})
        elif m["type"] == "TASK_RESULT":
            if not refused:
                refused = True
                p.send({"type": "ERROR", "ref": m["id"], "code": "record_missing", "message": "not yet"})
                continue
            result = m
            p.send({"type": "ACK", "ref": m["id"]})
            break
    if not result:
        sys.exit("FAIL: no TASK_RESULT for the good task")
    rec = records.get(result["seq"])
    if not rec or rec["type"] != "final" or rec["task"] != "good" or rec["renter"] != "alice" or rec["replica"] != 1:
        sys.exit("FAIL: TASK_RESULT seq %r is not the final record of the task: %r" % (result.get("seq"), rec))
    if rec["exit_kind"] != "exited" or rec["exit_status"] != 3 or result["exit_code"] != 3:
        sys.exit("FAIL: exit: %r %r" % (rec, result))
    if rec["result"] != result["result_digest"]:
        sys.exit("FAIL: the record signs %s, the result says %s" % (rec["result"], result["result_digest"]))
    data = blob.get(result["result_digest"], b"")
    if "sha256:" + hashlib.sha256(data).hexdigest() != result["result_digest"] or len(data) != result["result_size"]:
        sys.exit("FAIL: the uploaded result does not match its digest")
    import io, tarfile
    t = tarfile.open(fileobj=io.BytesIO(data))
    if t.extractfile("out/answer").read() != b"42\n" or t.extractfile("exit_code").read() != b"3\n":
        sys.exit("FAIL: result archive content")
    line = json.dumps(rec, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    bits = pow_bits("good", bytes.fromhex(result["result_digest"][7:]), hashlib.sha256(line).digest(),
                    result["pow_nonce"])
    if bits < 10:
        sys.exit("FAIL: the PoW stamp has %d leading zero bits, 10 asked" % bits)
    if rec["cpu_ns"] <= 0 or rec["cpu_kernel_ns"] <= 0 or rec["limits"]["mem_bytes"] != 64 << 20:
        sys.exit("FAIL: record figures: %r" % rec)
    print("ok   good task: exit 3, record seq %d, result %d bytes, PoW %d bits, cpu %d ns, "
          "TASK_RESULT retried after record_missing" % (result["seq"], len(data), bits, rec["cpu_ns"]))
    # a task killed by the coordinator while it runs: cancelled record, no result
    p.send(offer(task_id="victim", image=digest, cmd=["sleep", "30"]))
    p.wait(lambda m: m["type"] == "TASK_STATUS" and m["task_id"] == "victim" and m["state"] == "running",
           "victim running")
    p.send({"type": "TASK_STATUS", "task_id": "victim", "state": "killed", "cpu_ns": 0})
    end = time.time() + 30
    rec = None
    while time.time() < end and rec is None:
        m = p.wait(lambda m: m["type"] in ("USAGE_RECORD", "TASK_RESULT", "BLOB_PUT"), "the victim's record")
        if m["type"] != "USAGE_RECORD":
            sys.exit("FAIL: a killed task sent %r" % m)
        p.send({"type": "ACK", "ref": m["id"], "seq": m["seq"]})
        if m["record"]["task"] == "victim" and m["record"]["type"] == "final":
            rec = m["record"]
    if not rec or rec["exit_kind"] != "cancelled" or rec["result"] is not None:
        sys.exit("FAIL: killed task's record: %r" % rec)
    m = p.wait(lambda m: m["type"] == "TASK_STATUS" and m["task_id"] == "victim" and m["state"] == "killed",
               "TASK_STATUS killed")
    print("ok   killed task: final record cancelled after %d ns of CPU, no result" % rec["cpu_ns"])


def main():
    prefix, ca, portfile, image = sys.argv[1:5]
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
    good_task(p, open(image, "rb").read())
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
