#!/usr/bin/env bash
# host_features.sh -- the privileged features aicn needs work here: BTF, cgroup v2, bpffs, user namespaces.
# aicn-timeout: 30
set -u
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (cgroups, bpffs, namespaces)"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ -r /sys/kernel/btf/vmlinux ] || fail "no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)"
v2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$v2" ] || fail "no cgroup v2 hierarchy mounted"
own=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
dir=$v2$own/aicn-probe.$$
mkdir "$dir" || fail "cannot create a cgroup v2 child under our own cgroup ($v2$own)"
trap 'rmdir "$dir" 2>/dev/null' EXIT
[ -r "$dir/cpu.stat" ] || fail "cgroup v2 cpu.stat missing"
echo "ok: cgroup v2 at $v2, own cgroup '$own', id $(stat -c %i "$dir")"
if ! awk '$3 == "bpf"' /proc/self/mounts | grep -q .; then
	echo "note: bpffs not mounted (the meter mounts it)"
fi
unshare -U -p -m -n -f --mount-proc true || fail "cannot create user/pid/mount/net namespaces"
echo "ok: user, pid, mount and net namespaces"
