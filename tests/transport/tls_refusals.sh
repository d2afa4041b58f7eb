#!/usr/bin/env bash
# tls_refusals.sh -- peers without a certificate, from another CA, expired, revoked (CRL reloaded on SIGHUP),
# with a wrong role or speaking TLS 1.2 are refused, each with a clear log line; a good agent gets in.
# aicn-timeout: 120
. "$AICN_SRC/tests/transport/lib.sh"

setup_ca
"$B/aicnctl" ca init "$T/evil" >/dev/null || fail "ca init evil"
issue ca agent good
issue ca agent old --backdate-days 3 --days 1
issue ca agent torevoke
issue ca coordinator imposter
issue evil agent foreign
start_testd --crl "$T/ca/crl.pem"

once() {
	"$B/aicn-loadgen" --ca "$T/ca/ca.pem" --cert "$T/$1.pem" --key "$T/$1.key" --port "$PORT" \
		>"$T/once-$1.out" 2>&1
}
expect_ok() {
	once "$1" || fail "$1 should be accepted: $(cat "$T/once-$1.out")"
	grep -q '^ready:' "$T/once-$1.out" || fail "$1: no ready line"
	echo "ok   $1 accepted"
}
expect_refused() {
	local name=$1 why=$2
	once "$name" && fail "$name was accepted"
	grep -q '^refused:' "$T/once-$name.out" || fail "$name: client saw no refusal"
	wait_log "$T/testd.log" "refused certificate CN=$name serial=" ||
		fail "$name: no server log line naming it"
	grep -F "CN=$name serial=" "$T/testd.log" | grep -qF "$why" ||
		fail "$name: server log does not say '$why'"
	echo "ok   $name refused: $(grep -F "CN=$name serial=" "$T/testd.log" | tail -n1 | sed 's/.*: refused/refused/')"
}

expect_ok good
expect_refused foreign "not issued by this network's CA"
expect_refused old "certificate expired"
expect_refused imposter "role coordinator not accepted here"

# no client certificate at all (stock openssl client)
openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 -CAfile "$T/ca/ca.pem" -quiet \
	</dev/null >"$T/nocert.out" 2>&1
wait_log "$T/testd.log" "peer sent no client certificate" || fail "no log line for a missing client certificate"
echo "ok   no client certificate refused"

# TLS 1.2 is not spoken at all
openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 -cert "$T/good.pem" -key "$T/good.key" \
	-CAfile "$T/ca/ca.pem" </dev/null >"$T/tls12.out" 2>&1
grep -q "Protocol *: TLSv1.2" "$T/tls12.out" && grep -q "Cipher is [A-Z]" "$T/tls12.out" &&
	fail "a TLS 1.2 session was established"
wait_log "$T/testd.log" "unsupported protocol" || fail "no log line for TLS 1.2"
echo "ok   TLS 1.2 refused"

# revocation takes effect on SIGHUP, without a restart
expect_ok torevoke
"$B/aicnctl" ca revoke --dir "$T/ca" --cert "$T/torevoke.pem" >/dev/null || fail "revoke"
kill -HUP "$TESTD_PID"
wait_log "$T/testd.log" "CRL reloaded" || fail "CRL not reloaded on SIGHUP"
expect_refused torevoke "certificate revoked"
expect_ok good

# a broken CRL on reload keeps the old one in force
echo "garbage" >"$T/ca/crl.pem"
kill -HUP "$TESTD_PID"
wait_log "$T/testd.log" "CRL reload failed, keeping the previous one" || fail "bad CRL not reported"
expect_refused torevoke "certificate revoked"
kill -0 "$TESTD_PID" || fail "server died"
echo "all refusals logged"
