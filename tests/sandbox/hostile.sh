#!/usr/bin/env bash
# hostile.sh -- hostile tasks really attempt escapes inside the sandbox (sbx-probe) and each is denied:
# mounts, namespaces, kernel interfaces, ptrace, sockets, the host's loopback, /proc and cgroup files,
# host processes, setuid, /proc/self/exe, leaked fds, TIOCSTI.
# aicn-timeout: 240
set -uo pipefail
. "$AICN_SRC/tests/sandbox/lib.sh"

make_image busybox bb >/dev/null
# probe NAME [run options --] ARGS: run sbx-probe in the sandbox; pass if it exits 0 with no ESCAPED line
probe() {
	local name=$1 out rc
	shift
	out=$($SBX run -q --cache "$CACHE" "$@" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/    /'
	if [ $rc -ne 0 ] || grep -q ESCAPED <<<"$out" || ! grep -q DENIED <<<"$out"; then
		fail "$name (exit $rc)"
	else
		ok "$name"
	fi
}

probe "mount, umount, new mount API, pivot_root, chroot" "$T/bb" -- /bin/sbx-probe mount
probe "unshare(CLONE_NEWUSER) then mount, clone flags, setns" "$T/bb" -- /bin/sbx-probe unshare
probe "keyctl, bpf, perf_event_open, io_uring, userfaultfd, modules, kexec ..." "$T/bb" -- /bin/sbx-probe kernel
probe "ptrace and signals to a host process ($$)" "$T/bb" -- /bin/sbx-probe ptrace $$
probe "AF_ALG, AF_VSOCK, raw and packet sockets" "$T/bb" -- /bin/sbx-probe sockets
probe "core_pattern, release_agent, /proc/kcore, /proc/self/exe, rootfs writes" "$T/bb" -- /bin/sbx-probe files
probe "host processes are invisible" "$T/bb" -- /bin/sbx-probe procs
probe "TIOCSTI" "$T/bb" -- /bin/sbx-probe tiocsti

# the host's loopback and every other address are unreachable
port_file=$T/port
python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
s.settimeout(30)
try:
    c, _ = s.accept(); open(sys.argv[1] + ".hit", "w").write("connected")
except Exception:
    pass
' "$port_file" &
listener=$!
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")
probe "connect to host 127.0.0.1:$port and to other addresses" "$T/bb" -- /bin/sbx-probe connect 127.0.0.1 "$port" 10.0.0.1 80 8.8.8.8 53 169.254.169.254 80
[ ! -e "$port_file.hit" ] && ok "the host listener saw no connection" || fail "host listener was reached"
kill $listener 2>/dev/null; wait $listener 2>/dev/null

# a setuid-root binary in the image stays unprivileged
o=$($SBX run -q --cache "$CACHE" -u app "$T/bb" -- /bin/suid-probe ids 2>&1)
echo "    $o"
[ "$o" = "uid 1000 euid 1000 gid 1000 egid 1000" ] && ok "setuid-root binary runs as 1000" || fail "setuid: $o"

# inherited fds (not close-on-exec) never reach the task, nor can it chdir through them
exec 7</ 8>"$T/leak"
o=$($SBX run -q --cache "$CACHE" "$T/bb" -- /bin/sbx-probe fds 2>&1)
exec 7<&- 8>&-
echo "    $o"
[ "$o" = "3 fds open" ] && ok "only stdin, stdout and stderr reach the task" || fail "fds: $o"

# the sandbox binary cannot be overwritten from inside
sum=$(sha256sum "$SBX" | cut -d' ' -f1)
$SBX run -q --cache "$CACHE" "$T/bb" -- /bin/sh -c 'echo x > /proc/self/exe; echo x > /proc/1/exe; cat /proc/1/exe > /dev/null' >/dev/null 2>&1
[ "$(sha256sum "$SBX" | cut -d' ' -f1)" = "$sum" ] && ok "aicn-sandbox binary unchanged" || fail "binary changed"

# id mapping: task root is host $((1879048192)), never host root
o=$($SBX run -q --cache "$CACHE" "$T/bb" -- /bin/cat /proc/self/uid_map /proc/self/gid_map 2>&1 | tr -s ' ' | tr '\n' ';')
[ "$o" = " 0 1879048192 65536; 0 1879048192 65536;" ] && ok "uid/gid map 0 -> 1879048192 (65536 ids)" || fail "maps: $o"
# the cgroup namespace: the task sees its own cgroup as the root in every hierarchy
o=$($SBX run -q --cache "$CACHE" "$T/bb" -- /bin/cat /proc/self/cgroup 2>&1)
[ -n "$o" ] && ! grep -qv ':/$' <<<"$o" && ok "cgroup namespace rooted at the task's cgroup" || fail "cgroup view: $o"
finish
