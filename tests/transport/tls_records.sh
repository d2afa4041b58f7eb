#!/usr/bin/env bash
# tls_records.sh -- the server's own TLS 1.3 records after the handshake (every suite, KeyUpdate,
# close_notify, tampered/plaintext/oversized records, KeyUpdate flood) against OpenSSL's record
# layer, and the memory a server TLS connection keeps after the handshake (at most 8 KiB).
. "$AICN_SRC/tests/transport/lib.sh"

setup_ca
issue ca agent fleet
"$B/aicn-tls-records" "$T/ca/ca.pem" "$T/coord.pem" "$T/coord.key" "$T/fleet.pem" "$T/fleet.key" \
	|| fail "record checks"
"$B/aicn-tlsmem" --ca "$T/ca/ca.pem" --server-cert "$T/coord.pem" --server-key "$T/coord.key" \
	--client-cert "$T/fleet.pem" --client-key "$T/fleet.key" --conns 500 --top 10 --max-bytes 8192 \
	>"$T/tlsmem.log" 2>&1 || fail "memory per connection: $(cat "$T/tlsmem.log")"
cat "$T/tlsmem.log"
echo "PASS"
