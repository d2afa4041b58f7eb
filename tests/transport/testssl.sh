#!/usr/bin/env bash
# testssl.sh -- testssl.sh (Debian package) against the listener: TLS 1.3 only, only strong AEAD suites,
# no resumption; stock openssl confirms a client certificate from the network CA is required.
# aicn-timeout: 240
. "$AICN_SRC/tests/transport/lib.sh"

command -v testssl >/dev/null || { echo "SKIP: testssl.sh not installed (make deps)"; exit 77; }
setup_ca
issue ca agent good
start_testd --crl "$T/ca/crl.pem"

timeout 200 testssl --quiet --warnings off --color 0 --openssl-timeout 10 -p -E \
	--jsonfile "$T/testssl.json" "127.0.0.1:$PORT" >"$T/testssl.out" 2>&1
python3 - "$T/testssl.json" <<'PY' || fail "testssl findings"
import json, sys
f = {e["id"]: e["finding"] for e in json.load(open(sys.argv[1]))}
bad = []
for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2"):
    if not f.get(p, "").startswith("not offered"):
        bad.append(f"{p}: {f.get(p)}")
if not f.get("TLS1_3", "").startswith("offered"):
    bad.append(f"TLS1_3: {f.get('TLS1_3')}")
ciphers = sorted(k for k in f if k.startswith("cipher-"))
allowed = {"cipher-tls1_3_x1301", "cipher-tls1_3_x1302", "cipher-tls1_3_x1303"}
if not ciphers or set(ciphers) - allowed:
    bad.append(f"ciphers: {ciphers}")
for k in ciphers:
    if not any(a in f[k] for a in ("AESGCM", "ChaCha20")):
        bad.append(f"weak cipher {f[k]}")
for k in ("sessionresumption_ticket", "sessionresumption_ID"):
    if k in f and "not supported" not in f[k] and "No Session ID" not in f[k]:
        bad.append(f"{k}: {f[k]}")
for b in bad:
    print("bad:", b)
print("testssl: TLS 1.3 only;", ", ".join(f[k].split()[2] for k in ciphers), "; no resumption")
sys.exit(1 if bad else 0)
PY

# client certificate: requested naming the network CA, and required
sleep 1 | openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 -CAfile "$T/ca/ca.pem" >"$T/nocert.out" 2>&1
grep -A2 "Acceptable client certificate CA names" "$T/nocert.out" | grep -q "aicn network CA" ||
	fail "the CertificateRequest does not name the network CA"
grep -qi "alert certificate required" "$T/nocert.out" || fail "no 'certificate required' alert without a client cert"
openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 -CAfile "$T/ca/ca.pem" -cert "$T/good.pem" \
	-key "$T/good.key" -verify_return_error </dev/null >"$T/withcert.out" 2>&1
grep -q "Verify return code: 0 (ok)" "$T/withcert.out" || fail "stock openssl with a good certificate"
grep -qi "alert" "$T/withcert.out" && fail "alert with a good certificate"
echo "ok: client certificate required (alert 'certificate required' without one; accepted with one)"
