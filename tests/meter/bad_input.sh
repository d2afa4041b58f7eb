#!/usr/bin/env bash
# bad_input.sh -- unknown cgroup parent, missing command, no permission, bad options: clear error, exit != 0, nothing left.
# aicn-timeout: 60
. "$(dirname "$0")/lib.sh"

expect_fail() { # expect_fail WANT_RC PATTERN CMD...
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	cat "$TMP/err"
	[ "$rc" != 0 ] || fail "'$*' succeeded"
	[ "$want" = any ] || [ "$rc" = "$want" ] || fail "'$*' exited $rc, want $want"
	grep -qiE "$pat" "$TMP/err" || fail "'$*' did not say /$pat/"
}

n=$(newname bad)
expect_fail 125 "no such file" "$METER" run --name "$n" --cgroup-parent "no/such/parent-$$" -- true
expect_gone "$n"
expect_fail 127 "no such file" "$METER" run --name "$n" -- /nonexistent/command
expect_gone "$n"
expect_fail 127 "command not found" "$METER" run --name "$n" -- no-such-command-$$
expect_gone "$n"
printf 'not a program\n' >"$TMP/noexec"
chmod 0644 "$TMP/noexec"
expect_fail 126 "permission denied" "$METER" run --name "$n" -- "$TMP/noexec"
expect_gone "$n"
expect_fail 125 "invalid|expected" "$METER" run --name "$n/x" -- true
expect_gone "$n"
expect_fail 125 "timeout" "$METER" run --timeout abc -- true
expect_fail 125 "no command" "$METER" run
expect_fail 125 "unknown command" "$METER" frobnicate
expect_fail 125 "BPF filesystem|absolute" "$METER" run --pin-dir "$TMP/pins" -- true
expect_fail 125 "BPF filesystem|absolute" "$METER" run --pin-dir relative/pins -- true
expect_fail 125 "no cgroup|not loaded" "$METER" read --name "$n"
expect_fail 125 "not loaded" "$METER" read --id 12345
expect_fail 125 "required" "$METER" wait
if command -v setpriv >/dev/null; then
	expect_fail 125 "root|permission" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$METER" run --name "$n" -- true
	expect_gone "$n"
else
	echo "setpriv missing: no-permission case not run"
fi
# --help is complete enough to be a manual
"$METER" --help | grep -q "Exit status" || fail "--help lacks exit statuses"
"$METER" run --help | grep -q -- "--cgroup-parent" || fail "run --help lacks options"
echo "ok"
