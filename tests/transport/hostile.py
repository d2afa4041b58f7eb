#!/usr/bin/env python3
# hostile.py -- hostile peers against the transport server, each over real TLS 1.3 mTLS:
# what must close the connection does, what must only be answered with ERROR is, and the server lives.
import json, os, socket, ssl, struct, sys, time

T, PORT = sys.argv[1], int(sys.argv[2])
failures = []


def ctx_for(name):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.minimum_version = ssl.TLSVersion.TLSv1_3
    c.load_verify_locations(f"{T}/ca/ca.pem")
    c.load_cert_chain(f"{T}/{name}.pem", f"{T}/{name}.key")
    c.check_hostname = False
    return c


def connect(name="good", hello=True):
    s = socket.create_connection(("127.0.0.1", PORT))
    s = ctx_for(name).wrap_socket(s, server_hostname="localhost")
    s.settimeout(5)
    if hello:
        send(s, {"v": 1, "id": 1, "type": "HELLO", "min_v": 1, "max_v": 1})
        r = recv(s)
        assert r and r["type"] == "HELLO" and r["version"] == 1, r
    return s


def frame(obj):
    b = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    return struct.pack(">I", len(b)) + b


def send(s, obj):
    s.sendall(frame(obj))


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        try:
            c = s.recv(n - len(b))
        except (ConnectionResetError, ssl.SSLError, OSError):
            return None
        if not c:
            return None
        b += c
    return b


def recv(s):
    h = recv_exact(s, 4)
    if h is None:
        return None
    n = struct.unpack(">I", h)[0]
    b = recv_exact(s, n)
    return json.loads(b) if b is not None else None


def closed_within(s, secs):
    """True when the server closes s within secs (frames before EOF are skipped)."""
    s.settimeout(secs)
    end = time.time() + secs
    while time.time() < end:
        try:
            if recv(s) is None:
                return True
        except socket.timeout:
            return False
    return False


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (f": {detail}" if detail and not cond else ""))
    if not cond:
        failures.append(name)


def expect_error(s, code):
    r = recv(s)
    return r is not None and r.get("type") == "ERROR" and r.get("code") == code, r


def still_open(s, n):
    send(s, {"v": 1, "id": n, "type": "TASK_STATUS", "task_id": "t", "state": "running", "cpu_ns": 1})
    r = recv(s)
    return r is not None and r.get("type") == "ACK" and r.get("ref") == n


# 1. random bytes instead of a TLS ClientHello
raw = socket.create_connection(("127.0.0.1", PORT))
raw.sendall(os.urandom(4096))
check("random bytes before TLS: closed", closed_within(raw, 5))

# 2. slowloris during the handshake: connect and say nothing
raw = socket.create_connection(("127.0.0.1", PORT))
check("silent TCP peer: closed after the handshake timeout", closed_within(raw, 5))

# 3. a 4 GiB length prefix
s = connect()
s.sendall(b"\xff\xff\xff\xff")
ok, r = expect_error(s, "frame_too_large")
check("4 GiB length prefix: ERROR frame_too_large", ok, r)
check("4 GiB length prefix: closed", closed_within(s, 5))

# 4. a truncated frame: the rest never comes
s = connect()
s.sendall(struct.pack(">I", 100) + b'{"v":1,')
check("truncated frame: closed after the frame timeout", closed_within(s, 6))

# 5. invalid UTF-8, deep nesting, unknown type, bad fields: ERROR, connection kept
s = connect()
body = b'{"code":"\xff\xfe","id":2,"message":"","type":"ERROR","v":1}'
s.sendall(struct.pack(">I", len(body)) + body)
ok, r = expect_error(s, "bad_message")
check("invalid UTF-8: ERROR bad_message", ok, r)
deep = b'{"id":3,"type":"ACK","v":1,"x":' + b"[" * 50000 + b"]" * 50000 + b"}"
s.sendall(struct.pack(">I", len(deep)) + deep)
ok, r = expect_error(s, "bad_message")
check("50,000-deep nesting: ERROR bad_message", ok, r)
send(s, {"v": 1, "id": 4, "type": "FROBNICATE"})
ok, r = expect_error(s, "unknown_type")
check("unknown type: ERROR unknown_type", ok, r and r.get("ref") == 4)
send(s, {"v": 1, "id": 5, "type": "HEARTBEAT", "free_cores": -3, "running": []})
ok, r = expect_error(s, "bad_message")
check("out-of-range field: ERROR bad_message", ok, r)
check("connection still serves after 4 bad messages", still_open(s, 6))
s.close()

# 6. message before HELLO
s = connect(hello=False)
send(s, {"v": 1, "id": 1, "type": "HEARTBEAT", "free_cores": 1, "running": []})
ok, r = expect_error(s, "hello_required")
check("HEARTBEAT before HELLO: ERROR hello_required", ok, r)
check("HEARTBEAT before HELLO: closed", closed_within(s, 5))

# 7. no common version
s = connect(hello=False)
send(s, {"v": 1, "id": 1, "type": "HELLO", "min_v": 7, "max_v": 9})
ok, r = expect_error(s, "unsupported_version")
check("HELLO v7..v9: ERROR unsupported_version", ok, r)

# 8. a renter may not send agent messages
s = connect("renter")
send(s, {"v": 1, "id": 2, "type": "HEARTBEAT", "free_cores": 1, "running": []})
ok, r = expect_error(s, "forbidden")
check("renter sending HEARTBEAT: ERROR forbidden", ok, r)
s.close()

# 9. too many bad messages: closed
s = connect()
early = False
for i in range(40):
    try:
        send(s, {"v": 1, "id": 10 + i, "type": "NOPE"})
    except (ssl.SSLError, OSError):
        early = True  # the server already closed it: that is the point
        break
check("40 bad messages: closed", early or closed_within(s, 5))

# 10. 10,000 tiny frames in one second from one peer
s = connect()
hb = frame({"v": 1, "id": 0, "type": "HEARTBEAT", "free_cores": 1, "running": []})
t0 = time.time()
try:
    s.sendall(hb * 10000)
except (ssl.SSLError, OSError):
    pass
codes = []
s.settimeout(5)
while True:
    try:
        r = recv(s)
    except socket.timeout:
        break
    if r is None:
        break
    codes.append(r.get("code"))
check("10,000 frames/s: ERROR rate_limited then closed", "rate_limited" in codes, codes[:3])

# 11. a slow reader: asks for a 16 MiB blob and never reads
stats = json.load(open(f"{T}/stats.json"))
s = connect()
send(s, {"v": 1, "id": 2, "type": "BLOB_GET", "digest": stats["blob"]})
time.sleep(1.5)
stats2 = json.load(open(f"{T}/stats.json"))
check("slow reader: server heap stays bounded (< 40 MiB)", stats2["heap_bytes"] < 40 << 20,
      stats2["heap_bytes"])
check("slow reader: closed", closed_within(s, 5))

print("hostile peers:", "all handled" if not failures else f"{len(failures)} failed")
sys.exit(1 if failures else 0)
