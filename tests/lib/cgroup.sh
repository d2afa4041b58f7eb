# cgroup.sh -- test cgroups of our own for the daemons a test starts (the agent's task cgroups nest
# inside them), and their teardown: every process in them killed, every directory removed, leaks reported;
# agent_test_teardown also ends an agent's supervisors and meter pins.
# shellcheck shell=bash

# cg_dirs_for NAME: one line per hierarchy an agent uses (the v1 controllers cpu, cpuacct, memory,
# pids, freezer and the v2 tree): our own cgroup there, plus NAME.
cg_dirs_for() {
	local name=$1 ctrl self mnt
	for ctrl in cpu cpuacct memory pids freezer; do
		self=$(awk -F: -v c="$ctrl" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
		mnt=$(awk -v c="$ctrl" '$9 == "cgroup" { n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $5 }' /proc/self/mountinfo | head -n1)
		[ -n "$self" ] && [ -n "$mnt" ] && echo "$mnt${self%/}/$name"
	done
	self=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
	mnt=$(awk '$9 == "cgroup2" { print $5 }' /proc/self/mountinfo | head -n1)
	[ -n "$mnt" ] && echo "$mnt${self%/}/$name"
}

# cg_make NAME: create NAME beside our own cgroup in every hierarchy; prints the directories made
cg_make() {
	local d
	for d in $(cg_dirs_for "$1"); do
		mkdir -p "$d" 2>/dev/null && echo "$d"
	done
}

# cg_enter DIR...: move the calling (sub)shell into DIRs, e.g. ( cg_enter $CGS; exec daemon )
cg_enter() {
	local d
	for d in "$@"; do echo "$BASHPID" >"$d/cgroup.procs" || return 1; done
}

# cg_procs DIR...: the pids in the subtrees of DIRs, one per line
cg_procs() {
	local d
	for d in "$@"; do
		[ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}

# cg_teardown DIR...: SIGKILL whatever still runs in the subtrees (supervisors and tasks outlive
# their agent by design), then remove them depth first.  Returns 1, naming them, for any left.
cg_teardown() {
	local p d i left=0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		p=$(cg_procs "$@")
		[ -z "$p" ] && break
		# shellcheck disable=SC2086
		kill -KILL $p 2>/dev/null
		sleep 0.2
	done
	for d in "$@"; do
		for i in 1 2 3 4 5 6 7 8 9 10; do
			[ -d "$d" ] || break
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$d" ] && sleep 0.2
		done
		if [ -d "$d" ]; then
			echo "cgroup left behind: $(find "$d" -type d | head -n 5 | tr '\n' ' ')"
			left=1
		fi
	done
	return "$left"
}

# cg_named_anywhere NAME: directories called NAME in any cgroup hierarchy (a leak check)
cg_named_anywhere() {
	find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d -name "$1" 2>/dev/null
}

# cg_agent_teardown AGENT-LOG DIR...: cg_teardown DIRs (where the agent ran), then make sure its
# parent cgroup, aicn-tasks-<hash of its state_dir> as its log names it, is nowhere else either
# (removing it if it is).  Returns 1 when anything was left behind.
cg_agent_teardown() {
	local log=$1 cap left=0
	shift
	cg_teardown "$@" || left=1
	cap=$(sed -n 's|.*tasks run in cgroup .*/\(aicn-tasks-[0-9a-f]*\) .*|\1|p' "$log" 2>/dev/null | head -n1)
	if [ -n "$cap" ] && [ -n "$(cg_named_anywhere "$cap")" ]; then
		echo "cgroup left behind outside the test's own: $(cg_named_anywhere "$cap" | tr '\n' ' ')"
		# shellcheck disable=SC2046
		cg_teardown $(cg_named_anywhere "$cap") >/dev/null
		left=1
	fi
	return "$left"
}

# agent_test_teardown STATE_DIR AGENT-LOG PIN-DIR DIR...: after the agent was stopped or killed,
# end its task supervisors (they outlive it by design), tear down its cgroups (cg_agent_teardown)
# and its meter pins.  Returns 1 when a cgroup was left behind.
agent_test_teardown() {
	local state=$1 log=$2 pin=$3 f left=0
	shift 3
	for f in "$state"/tasks/*/supervise.state; do
		[ -f "$f" ] && kill -9 "$(sed -n 's/^supervisor_pid=//p' "$f")" 2>/dev/null
	done
	cg_agent_teardown "$log" "$@" || left=1
	"$AICN_BIN/aicn-meter" cleanup --pin-dir "$pin" >/dev/null 2>&1 || rm -rf "$pin"
	return "$left"
}
