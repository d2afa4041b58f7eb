#!/usr/bin/env python3
# interleave.py -- time several commands run in turn, one run of each per round, so that a host
# whose speed drifts (a shared VM) slows every command alike; median and p95 per command.
#
# usage: interleave.py ROUNDS WARMUP OUT.json NAME=[@]COMMAND...
# A command is split like a shell would (no shell runs).  '@' first: run it in a private mount
# namespace made once at the start, where /sys/fs/cgroup/unified is detached (crun refuses this
# hybrid host's v2 tree); the others run in ours.  Each run is timed from just before
# posix_spawn to waitpid's return; the order of the commands rotates every round.
import ctypes
import json
import os
import shlex
import statistics
import sys
import time

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MNT_DETACH = 0x4000, 0x40000, 2

libc = ctypes.CDLL(None, use_errno=True)


def check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        sys.exit(f"interleave.py: {what}: {os.strerror(e)}")


def private_mount_ns():
    """An fd of a private mount namespace without the v2 cgroup tree; we stay in ours."""
    ours = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    libc.umount2(b"/sys/fs/cgroup/unified", MNT_DETACH)  # absent: nothing to detach
    theirs = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    check(libc.setns(ours, CLONE_NEWNS), "setns back")
    os.close(ours)
    return theirs


def main():
    rounds, warmup, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cmds = []
    for spec in sys.argv[4:]:
        name, _, cmd = spec.partition("=")
        cmds.append((name, cmd.startswith("@"), shlex.split(cmd.lstrip("@"))))
    home = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    cwd = os.getcwd()
    private = private_mount_ns() if any(p for _, p, _ in cmds) else -1
    devnull = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
    acts = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    times = {name: [] for name, _, _ in cmds}
    failed = {name: 0 for name, _, _ in cmds}
    for r in range(warmup + rounds):
        k = r % len(cmds)
        for name, priv, argv in cmds[k:] + cmds[:k]:
            if priv:
                check(libc.setns(private, CLONE_NEWNS), "setns to the private namespace")
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=acts)
            _, status = os.waitpid(pid, 0)
            t1 = time.perf_counter_ns()
            if priv:
                check(libc.setns(home, CLONE_NEWNS), "setns home")
                os.chdir(cwd)
            if os.waitstatus_to_exitcode(status) != 0:
                failed[name] += 1
            elif r >= warmup:
                times[name].append((t1 - t0) / 1e6)
    res = {}
    for name in times:
        if failed[name] or len(times[name]) < rounds:
            sys.exit(f"interleave.py: {name} failed {failed[name]} times")
        t = sorted(times[name])
        res[name] = {"median_ms": statistics.median(t), "p95_ms": t[int(len(t) * 0.95) - 1],
                     "min_ms": t[0], "runs": len(t)}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)


main()
