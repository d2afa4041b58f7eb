#!/usr/bin/env python3
# rawclient.py -- speak the aicn wire protocol directly (TLS 1.3 + mTLS, u32 length + JSON):
# the end-to-end tests use it to send requests aicnctl would refuse before sending them.
#
# usage: rawclient.py --addr HOST:PORT --ca CA --cert CERT --key KEY [--wait S] TYPE JSON [TYPE JSON...]
# Each request is sent with the next id after HELLO; every message received until each request
# has its REPLY/ERROR/ACK (or --wait seconds pass) is printed as one JSON line on stdout.
# Exit status: 0 when every request got an answer, 1 otherwise, 2 on usage errors.
import argparse
import json
import socket
import ssl
import struct
import sys
import time

MAX_FRAME = 1 << 20


def send(tls, obj):
    body = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    tls.sendall(struct.pack(">I", len(body)) + body)


def recv_exact(tls, n):
    buf = b""
    while len(buf) < n:
        chunk = tls.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def recv(tls):
    (n,) = struct.unpack(">I", recv_exact(tls, 4))
    if n == 0 or n > MAX_FRAME:
        raise ValueError("bad frame length %d" % n)
    return json.loads(recv_exact(tls, n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--wait", type=float, default=10.0)
    ap.add_argument("msgs", nargs="*")
    a = ap.parse_args()
    if len(a.msgs) % 2:
        ap.error("TYPE JSON pairs expected")
    host, port = a.addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.check_hostname = False
    raw = socket.create_connection((host.strip("[]"), int(port)), timeout=a.wait)
    tls = ctx.wrap_socket(raw)
    send(tls, {"v": 1, "type": "HELLO", "id": 0, "min_v": 1, "max_v": 1, "software": "e2e-rawclient"})
    hello = recv(tls)
    print(json.dumps(hello, sort_keys=True), flush=True)
    if hello.get("type") != "HELLO":
        return 1
    v = hello.get("version", 1)
    pending = set()
    for i in range(0, len(a.msgs), 2):
        msg = json.loads(a.msgs[i + 1])
        rid = i // 2 + 1
        msg.update({"v": v, "type": a.msgs[i], "id": rid})
        send(tls, msg)
        pending.add(rid)
    deadline = time.monotonic() + a.wait
    while pending and time.monotonic() < deadline:
        tls.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            m = recv(tls)
        except (socket.timeout, TimeoutError):
            break
        except EOFError:
            print(json.dumps({"type": "CLOSED"}), flush=True)
            break
        print(json.dumps(m, sort_keys=True), flush=True)
        if m.get("type") in ("REPLY", "ERROR", "ACK") and m.get("ref") in pending:
            pending.discard(m["ref"])
        elif m.get("type") == "ERROR" and "ref" not in m and pending:
            pending.discard(min(pending))  # a message refused before its id was read
    tls.close()
    return 0 if not pending else 1


if __name__ == "__main__":
    sys.exit(main())
