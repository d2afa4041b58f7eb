# wire.py -- a minimal renter/auditor/agent peer for the coordinator tests: real TLS 1.3 mTLS, framed canonical JSON.
import base64, hashlib, json, socket, ssl, struct, time

failures = []  # names of the checks that failed, for the script's exit status


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    if not cond:
        failures.append(name)


class Peer:
    def __init__(self, certdir, name, port, host="127.0.0.1", timeout=10):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(f"{certdir}/ca/ca.pem")
        ctx.load_cert_chain(f"{certdir}/{name}.pem", f"{certdir}/{name}.key")
        ctx.check_hostname = False
        s = socket.create_connection((host, port), timeout=timeout)
        self.s = ctx.wrap_socket(s, server_hostname="localhost")
        self.s.settimeout(timeout)
        self.next_id = 1
        self.pending = []  # messages received while waiting for another
        r = self.request({"type": "HELLO", "min_v": 1, "max_v": 1})
        assert r["type"] == "HELLO", r
        self.node_id = r["node_id"]

    def send(self, obj):
        obj = dict(obj)
        obj.setdefault("v", 1)
        obj["id"] = self.next_id
        self.next_id += 1
        b = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
        self.s.sendall(struct.pack(">I", len(b)) + b)
        return obj["id"]

    def _recv_exact(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("connection closed")
            b += c
        return b

    def recv(self):
        if self.pending:
            return self.pending.pop(0)
        n = struct.unpack(">I", self._recv_exact(4))[0]
        return json.loads(self._recv_exact(n))

    def wait(self, pred, timeout=10):
        """The first message (pending or new) for which pred holds; others stay pending."""
        for i, m in enumerate(self.pending):
            if pred(m):
                return self.pending.pop(i)
        end = time.time() + timeout
        while time.time() < end:
            self.s.settimeout(max(0.01, end - time.time()))
            try:
                n = struct.unpack(">I", self._recv_exact(4))[0]
                m = json.loads(self._recv_exact(n))
            except socket.timeout:
                break
            if pred(m):
                return m
            self.pending.append(m)
        raise TimeoutError("no matching message")

    def request(self, obj, timeout=10):
        rid = self.send(obj)
        if obj["type"] == "HELLO":
            return self.recv()
        # An ERROR without "ref" answers a message whose id could not be read (bad JSON).
        return self.wait(lambda m: (m.get("ref") == rid and m["type"] in ("REPLY", "ACK", "ERROR"))
                         or (m["type"] == "ERROR" and "ref" not in m), timeout)

    def call(self, typ, **fields):
        d = {"type": typ}
        d.update(fields)
        return self.request(d)

    def upload(self, data, digest=None, chunk=256 * 1024):
        """BLOB_PUT in chunks; returns (digest, last answer)."""
        digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
        off = 0
        while True:
            part = data[off:off + chunk]
            last = off + len(part) >= len(data)
            r = self.call("BLOB_PUT", digest=digest, offset=off, size=len(data),
                          data=base64.b64encode(part).decode(), last=last)
            if r["type"] != "ACK" or last or (off == 0 and "seq" in r):
                return digest, r
            off += len(part)

    def download(self, digest):
        """BLOB_GET chunk by chunk; returns the bytes or the ERROR."""
        out = b""
        while True:
            rid = self.send({"type": "BLOB_GET", "digest": digest, "offset": len(out)})
            m = self.wait(lambda m: (m["type"] == "ERROR" and m.get("ref") == rid)
                          or (m["type"] == "BLOB_PUT" and m["offset"] == len(out)))
            if m["type"] == "ERROR":
                return m
            out += base64.b64decode(m["data"])
            if m["last"]:
                return out

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
