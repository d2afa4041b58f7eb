#!/usr/bin/env bash
# check_config.sh -- aicn-coordinator --check-config: every bad key, value or file is named with
# file:line and exits 1; a valid file prints the effective configuration; --help and --version.
# aicn-timeout: 60
. "$AICN_SRC/tests/coord/lib.sh"

setup_ca
C="$B/aicn-coordinator"
write_conf
out=$("$C" --config "$T/coord.conf" --check-config 2>&1) || fail "valid config refused: $out"
echo "$out" | grep -q "^heartbeat_timeout = 30s$" || fail "defaults not printed: $out"
echo "$out" | grep -q "^listen = 127.0.0.1:0$" || fail "listen not printed"
echo "$out" | grep -q "^settlement = on$" || fail "settlement is not on by default: $out"
write_conf 127.0.0.1:0 "settlement = off"
out=$("$C" --config "$T/coord.conf" --check-config 2>&1) || fail "settlement = off refused: $out"
echo "$out" | grep -q "^settlement = off$" || fail "settlement = off not printed: $out"

# bad KEY=VALUE: the line it is on and what the message must say
expect_bad() {
	local line=$1 want=$2 key=${1%% =*}
	write_conf
	[ "${3:-}" = dup ] || sed -i "/^$key = /d" "$T/coord.conf"
	echo "$line" >>"$T/coord.conf"
	local n
	n=$(grep -nF -- "$line" "$T/coord.conf" | cut -d: -f1)
	out=$("$C" --config "$T/coord.conf" --check-config 2>&1)
	local rc=$?
	[ $rc -eq 1 ] || fail "'$line': exit $rc, expected 1 ($out)"
	echo "$out" | grep -qF "coord.conf:$n: " || fail "'$line': no file:line in: $out"
	echo "$out" | grep -qF -- "$want" || fail "'$line': expected '$want' in: $out"
	echo "refused ($n): $out"
}
expect_bad "colour = blue" "unknown key 'colour'"
expect_bad "heartbeat_timeout = 5x" "heartbeat_timeout"
expect_bad "heartbeat_timeout = 0" "from 1s to 1d"
expect_bad "retry_cap = -1" "retry_cap"
expect_bad "retry_cap = 1000" "retry_cap"
expect_bad "tick_ms = 1" "tick_ms"
expect_bad "max_active = 99999999999999999999999" "max_active"
expect_bad "listen = localhost:7443" "listen"
expect_bad "listen = 127.0.0.1:70000" "port must be"
expect_bad "listen = 127.0.0.1" "expected address:port"
expect_bad "cert = relative/path.pem" "not an absolute path"
expect_bad "network = Bad Name" "network"
expect_bad "log_level = loud" "log_level"
expect_bad "blob_retention = 10s" "blob_retention"
expect_bad "settlement = maybe" "settlement: 'maybe': on or off"
expect_bad "[agent]" "unknown section"
# a repeated key: the last one wins, and each value is checked
write_conf 127.0.0.1:0 "tick_ms = 300"
out=$("$C" --config "$T/coord.conf" --check-config 2>&1) || fail "a repeated key was refused: $out"
echo "$out" | grep -q "^tick_ms = 300$" || fail "the last tick_ms does not win: $out"
expect_bad "tick_ms = 5" "tick_ms: '5'" dup
expect_bad "this is not ini" "syntax error"

# files that do not exist or do not fit
write_conf 127.0.0.1:0 "crl = $T/missing.crl"
out=$("$C" --config "$T/coord.conf" --check-config 2>&1) && fail "missing CRL accepted"
echo "$out" | grep -q "crl = $T/missing.crl: cannot read" || fail "missing CRL not named: $out"
issue renter notcoord
sed -i "s|^cert = .*|cert = $T/notcoord.pem|; s|^key = .*|key = $T/notcoord.key|" "$T/coord.conf"
sed -i "/^crl = /d" "$T/coord.conf"
out=$("$C" --config "$T/coord.conf" --check-config 2>&1) && fail "renter certificate accepted"
echo "$out" | grep -q "not a coordinator certificate" || fail "wrong role not named: $out"
out=$("$C" --config "$T/nonexistent.conf" --check-config 2>&1) && fail "missing file accepted"
echo "$out" | grep -q "nonexistent.conf: cannot open" || fail "missing file not named: $out"
"$C" --config "$T/nonexistent.conf" >/dev/null 2>&1
[ $? -eq 2 ] || fail "a missing configuration must exit 2 when starting"

"$C" --help | grep -q "^SYNOPSIS" || fail "--help has no SYNOPSIS"
for s in OPTIONS FILES SIGNALS "EXIT STATUS" heartbeat_timeout; do
	"$C" --help | grep -q "$s" || fail "--help lacks $s"
done
"$C" --version | grep -q "^aicn-coordinator [0-9]" || fail "--version"
"$C" --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "an unknown option must exit 2"
echo "ok: configuration errors named with file:line"
