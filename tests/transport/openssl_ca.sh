#!/usr/bin/env bash
# openssl_ca.sh -- the plain-openssl CA steps of docs/operations.md give certificates our server accepts,
# and the node id openssl computes from the certificate is the one our side authenticates.
# aicn-timeout: 60
. "$AICN_SRC/tests/transport/lib.sh"
cd "$T" || exit 1
mkdir -m 0700 ca
openssl genpkey -algorithm ed25519 -out ca/ca.key 2>/dev/null && chmod 0600 ca/ca.key
openssl req -new -x509 -key ca/ca.key -out ca/ca.pem -days 3650 -subj "/O=aicn/CN=aicn network CA" \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" || fail "openssl CA"
sign() { # NAME ROLE
	openssl genpkey -algorithm ed25519 -out "$1.key" 2>/dev/null && chmod 0600 "$1.key"
	openssl req -new -key "$1.key" -subj "/O=aicn/CN=$1" -out "$1.csr" || fail "req $1"
	printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=URI:aicn:role:$2" \
		"subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca/ca.pem -CAkey ca/ca.key -set_serial "0x$(openssl rand -hex 16)" \
		-days 825 -extfile "$1.ext" -out "$1.pem" 2>/dev/null || fail "x509 $1"
}
sign coord coordinator
sign node-17 agent
start_testd
"$B/aicn-loadgen" --ca ca/ca.pem --cert node-17.pem --key node-17.key --port "$PORT" >"$T/once.out" 2>&1 ||
	fail "openssl-issued agent refused: $(cat "$T/once.out")"
echo "ok   $(head -n1 "$T/once.out")"
id=$(openssl x509 -in node-17.pem -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 32 |
	sha256sum | cut -d' ' -f1)
grep -q "node_id $id " "$T/once.out" || fail "node id differs: openssl $id, ours: $(cat "$T/once.out")"
echo "ok   node id by openssl = node id authenticated: $id"
