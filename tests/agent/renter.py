#!/usr/bin/env python3
# renter.py -- a renter for the agent's end-to-end tests: mTLS 1.3, framed canonical JSON; upload, SUBMIT, WATCH, RESULT.
#
# usage: renter.py CERTPREFIX CA PORT run SPEC.json IMAGE.tar [INPUT=PATH ...] --out RESULT.tar
#        renter.py CERTPREFIX CA PORT submit SPEC.json IMAGE.tar [INPUT=PATH ...]
#        renter.py CERTPREFIX CA PORT wait TASK_ID TIMEOUT_S --out RESULT.tar
#        renter.py CERTPREFIX CA PORT state TASK_ID
# run uploads the image (and inputs as {digest, path}), submits SPEC with them, waits for
# the task to finish (STATUS polled), downloads the result blob and prints one JSON line:
# {"task_id", "state", "result_digest", "result_bytes", "submit_to_done_ms"}.  submit
# prints the task id only; wait does the rest for a task id; state prints its state.
import base64, hashlib, json, socket, ssl, struct, sys, time


class Conn:
    def __init__(self, prefix, ca, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(prefix + ".pem", prefix + ".key")
        ctx.check_hostname = False
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                                 server_hostname="localhost")
        self.next_id, self.queue = 1, []
        self.send({"type": "HELLO", "min_v": 1, "max_v": 1})
        hello = self.recv()
        if hello.get("type") != "HELLO":
            sys.exit("no HELLO: %r" % hello)

    def send(self, obj):
        obj = dict(obj, v=1, id=self.next_id)
        self.next_id += 1
        b = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
        self.s.sendall(struct.pack(">I", len(b)) + b)
        return obj["id"]

    def _exact(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("coordinator closed the connection")
            b += c
        return b

    def recv(self):
        n = struct.unpack(">I", self._exact(4))[0]
        return json.loads(self._exact(n))

    def wait(self, pred):
        for i, m in enumerate(self.queue):
            if pred(m):
                return self.queue.pop(i)
        while True:
            m = self.recv()
            if pred(m):
                return m
            self.queue.append(m)

    def call(self, typ, **f):
        rid = self.send(dict(f, type=typ))
        return self.wait(lambda m: m.get("ref") == rid and m["type"] in ("ACK", "ERROR", "REPLY"))

    def upload(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        off = 0
        while True:
            part = data[off:off + 256 * 1024]
            last = off + len(part) >= len(data)
            r = self.call("BLOB_PUT", digest=digest, offset=off, size=len(data),
                          data=base64.b64encode(part).decode(), last=last)
            if r["type"] != "ACK":
                sys.exit("upload refused: %r" % r)
            if last or (off == 0 and "seq" in r):
                return digest
            off += len(part)

    def download(self, digest):
        out = b""
        while True:
            rid = self.send({"type": "BLOB_GET", "digest": digest, "offset": len(out)})
            m = self.wait(lambda m: (m["type"] == "ERROR" and m.get("ref") == rid) or
                          (m["type"] == "BLOB_PUT" and m["digest"] == digest and m["offset"] == len(out)))
            if m["type"] == "ERROR":
                sys.exit("download refused: %r" % m)
            out += base64.b64decode(m["data"])
            if m["last"]:
                if "sha256:" + hashlib.sha256(out).hexdigest() != digest:
                    sys.exit("downloaded result does not match its digest")
                return out


def submit(c, a):
    spec = json.load(open(a[0]))
    spec["image"] = c.upload(open(a[1], "rb").read())
    inputs = [x for x in a[2:] if "=" in x]
    if inputs:
        spec["inputs"] = []
        for kv in inputs:
            path, src = kv.split("=", 1)
            spec["inputs"].append({"path": path, "digest": c.upload(open(src, "rb").read())})
    r = c.call("SUBMIT", spec=spec)
    if r["type"] != "REPLY":
        sys.exit("SUBMIT refused: %r" % r)
    return r["data"]["task_id"]


def wait(c, tid, timeout, out, t0):
    deadline = time.time() + timeout
    while True:
        st = c.call("STATUS", task_id=tid)
        if st["type"] != "REPLY":
            sys.exit("STATUS refused: %r" % st)
        d = st["data"]
        state = d.get("state", "")
        if state.upper() in ("DONE", "FAILED", "CANCELLED", "EXPIRED"):
            break
        if time.time() > deadline:
            sys.exit("task %s still %s" % (tid, state))
        time.sleep(0.2)
    done_ms = int((time.time() - t0) * 1000)
    digest = d.get("result") or d.get("result_digest")
    nbytes = 0
    if digest and out:
        data = c.download(digest)
        open(out, "wb").write(data)
        nbytes = len(data)
    return {"task_id": tid, "state": state, "result_digest": digest, "result_bytes": nbytes,
            "submit_to_done_ms": done_ms, "status": d}


def main():
    a = sys.argv[1:]
    prefix, ca, port, cmd = a[0], a[1], int(a[2]), a[3]
    c = Conn(prefix, ca, port)
    out = a[a.index("--out") + 1] if "--out" in a else None
    if "--out" in a:
        a = a[:a.index("--out")]
    if cmd == "run":
        t0 = time.time()
        tid = submit(c, a[4:])
        spec = json.load(open(a[4]))
        print(json.dumps(wait(c, tid, float(spec.get("max_wall_seconds", 60)) + 60, out, t0)))
    elif cmd == "submit":
        print(submit(c, a[4:]))
    elif cmd == "wait":
        print(json.dumps(wait(c, a[4], float(a[5]), out, time.time())))
    elif cmd == "state":
        st = c.call("STATUS", task_id=a[4])
        print(st["data"]["state"] if st["type"] == "REPLY" else "error")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
