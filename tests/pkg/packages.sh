#!/usr/bin/env bash
# packages.sh -- build the .deb and .rpm packages, lint them, install the .debs on this machine, run the
# installed programs, upgrade, remove and purge, and check that nothing is left behind.
# aicn-timeout: 420
#
# The .debs are built from source by `make deb` exactly as a release is (dpkg-buildpackage
# compiles the shipped programs in a copy of the tree); the .rpms from the programs
# `make check` just built (make rpm PKG_PREBUILT=1: the same spec without compiling
# everything a third time).  The daemons are required as soon as their sources are in the tree.
set -euo pipefail
: "${AICN_SRC:?run through make check}" "${AICN_BUILD:?}"
export LC_ALL=C

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
step() { printf '== %s\n' "$*"; }

[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i)"
for t in dpkg-buildpackage dh lintian rpmbuild help2man systemd-analyze; do
	command -v "$t" >/dev/null || skip "$t missing (make deps installs packaging/deps.txt)"
done

cd "$AICN_SRC"
version=$(sed -n 's/^#define AICN_VERSION "\(.*\)"/\1/p' include/aicn/version.h)
[ -n "$version" ] || fail "no AICN_VERSION in include/aicn/version.h"
pkg=$AICN_BUILD/pkg
rpmtop=$AICN_BUILD/rpm
tmp=$(mktemp -d /tmp/aicn-pkgtest.XXXXXX)
pin=/sys/fs/bpf/aicn-pkgtest-$$
cg=
installed=0

# What each package must hold.  A daemon is required once its main is in the tree.
agent_progs=(aicn-supervise aicn-meter aicn-sandbox)
coord_progs=()
[ -e agent/main.c ] && agent_progs=(aicn-agent "${agent_progs[@]}")
[ -e coordinator/main.c ] && coord_progs=(aicn-coordinator)
[ -e agent/main.c ] || echo "note: agent/main.c not in the tree yet: aicn-agent is not required"
[ -e coordinator/main.c ] || echo "note: coordinator/main.c not in the tree yet: aicn-coordinator is not required"

cleanup() {
	local rc=$?
	if [ "$installed" = 1 ]; then
		AICN_METER_PIN_DIR=$pin dpkg --purge aicn-agent aicn-coordinator aicnctl >/dev/null 2>&1 || true
	fi
	[ -d "$pin" ] && AICN_METER_PIN_DIR=$pin "$AICN_BIN/aicn-meter" cleanup 2>/dev/null || true
	[ -n "$cg" ] && rmdir "$cg" 2>/dev/null || true
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT

# ---- build ----
step "make deb (dpkg-buildpackage -us -uc -b, from source)"
start=$(date +%s)
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory B="$AICN_BUILD" deb >"$tmp/deb.log" 2>&1 ||
	{ cat "$tmp/deb.log"; fail "make deb"; }
debs=("$pkg/aicn-agent_${version}_amd64.deb" "$pkg/aicn-coordinator_${version}_amd64.deb"
	"$pkg/aicnctl_${version}_amd64.deb")
for d in "${debs[@]}"; do
	[ -f "$d" ] || fail "$d was not built"
	[ "$(dpkg-deb -f "$d" Version)" = "$version" ] || fail "$d: version is not $version"
	printf '   %-40s %8d bytes\n' "$(basename "$d")" "$(stat -c %s "$d")"
done

# contents: programs, man pages, units, conffiles
# (lists captured first: grep -q closing a pipe early would fail it under pipefail)
deb_has() {
	local l
	l=$(dpkg-deb -c "$1" | awk '{print $NF}' | sed 's,^\.,,')
	grep -qx -- "$2" <<<"$l" || fail "$(basename "$1") lacks $2"
}
for p in "${agent_progs[@]}"; do
	deb_has "${debs[0]}" "/usr/sbin/$p"
	deb_has "${debs[0]}" "/usr/share/man/man8/$p.8.gz"
done
for p in "${coord_progs[@]}"; do
	deb_has "${debs[1]}" "/usr/sbin/$p"
	deb_has "${debs[1]}" "/usr/share/man/man8/$p.8.gz"
done
deb_has "${debs[2]}" /usr/bin/aicnctl
deb_has "${debs[2]}" /usr/share/man/man1/aicnctl.1.gz
deb_has "${debs[0]}" /lib/systemd/system/aicn-agent.service
deb_has "${debs[1]}" /lib/systemd/system/aicn-coordinator.service
grep -qx /etc/aicn/agent.conf <<<"$(dpkg-deb -I "${debs[0]}" conffiles)" || fail "agent.conf is not a conffile"
grep -qx /etc/aicn/coordinator.conf <<<"$(dpkg-deb -I "${debs[1]}" conffiles)" || fail "coordinator.conf is not a conffile"
grep -q 'adduser .*--system' <<<"$(dpkg-deb -I "${debs[1]}" postinst)" || fail "coordinator postinst makes no system user"
grep -q 'aicn-meter cleanup' <<<"$(dpkg-deb -I "${debs[0]}" prerm)" || fail "agent prerm does not unpin the meter"
# the man pages are the programs' own --help text
man1=$(dpkg-deb --fsys-tarfile "${debs[2]}" | tar -xO ./usr/share/man/man1/aicnctl.1.gz | zcat)
grep -q 'verify the AICN ledger' <<<"$man1" || fail "aicnctl.1 does not carry the text of aicnctl --help"

step "lintian"
lintian --tag-display-limit 0 "${debs[@]}" >"$tmp/lintian.log" 2>&1 || true
sed 's/^/   /' "$tmp/lintian.log"
if grep -q '^E: ' "$tmp/lintian.log"; then
	fail "lintian reports errors"
fi
echo "   lintian: $(grep -c '^E: ' "$tmp/lintian.log" || true) errors, $(grep -c '^W: ' "$tmp/lintian.log" || true) warnings"

step "make rpm PKG_PREBUILT=1"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory B="$AICN_BUILD" PKG_PREBUILT=1 rpm >"$tmp/rpm.log" 2>&1 ||
	{ cat "$tmp/rpm.log"; fail "make rpm"; }
rpms=("$rpmtop/RPMS/x86_64/aicn-agent-$version-1.x86_64.rpm"
	"$rpmtop/RPMS/x86_64/aicn-coordinator-$version-1.x86_64.rpm"
	"$rpmtop/RPMS/x86_64/aicnctl-$version-1.x86_64.rpm")
for r in "${rpms[@]}"; do
	[ -f "$r" ] || fail "$r was not built"
	printf '   %-40s %8d bytes\n' "$(basename "$r")" "$(stat -c %s "$r")"
done
rpm_has() {
	local l
	l=$(rpm -qlp "$1" 2>/dev/null)
	grep -qx -- "$2" <<<"$l" || fail "$(basename "$1") lacks $2"
}
for p in "${agent_progs[@]}"; do rpm_has "${rpms[0]}" "/usr/sbin/$p"; done
for p in "${coord_progs[@]}"; do rpm_has "${rpms[1]}" "/usr/sbin/$p"; done
rpm_has "${rpms[0]}" /etc/aicn/agent.conf
rpm_has "${rpms[0]}" /usr/lib/systemd/system/aicn-agent.service
rpm_has "${rpms[0]}" /var/lib/aicn
rpm_has "${rpms[1]}" /etc/aicn/coordinator.conf
rpm_has "${rpms[1]}" /usr/lib/systemd/system/aicn-coordinator.service
rpm_has "${rpms[1]}" /var/lib/aicn-coordinator
rpm_has "${rpms[2]}" /usr/bin/aicnctl
rpm_has "${rpms[2]}" /usr/share/man/man1/aicnctl.1
grep -qx /etc/aicn/agent.conf <<<"$(rpm -qp --configfiles "${rpms[0]}" 2>/dev/null)" || fail "rpm: agent.conf is not %config"
grep -q 'useradd -r' <<<"$(rpm -qp --scripts "${rpms[1]}" 2>/dev/null)" || fail "rpm: no system user for the coordinator"
echo "   built and checked in $(($(date +%s) - start)) s"

# ---- install on this machine (one test at a time: other worktrees run this test too) ----
exec 9>/run/lock/aicn-pkgtest.lock
flock -w 200 9 || fail "another package test held /run/lock/aicn-pkgtest.lock for 200 s"

# dpkg's own lock may be held by a concurrent apt-get (make deps): retry for a while
dpkg_retry() {
	local i
	for i in $(seq 1 30); do
		if dpkg "$@" >"$tmp/dpkg.log" 2>&1; then return 0; fi
		grep -q 'lock' "$tmp/dpkg.log" || { cat "$tmp/dpkg.log"; return 1; }
		sleep 2
	done
	cat "$tmp/dpkg.log"
	return 1
}

leftovers() {
	find /etc /lib/systemd/system /usr/sbin /usr/bin /usr/share/man /usr/share/doc \
		/var/lib /var/cache -xdev -name '*aicn*' 2>/dev/null | sort
}
for p in aicn-agent aicn-coordinator aicnctl; do
	if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
		echo "   purging $p left by an interrupted run"
		AICN_METER_PIN_DIR=$pin dpkg_retry --purge "$p" || fail "cannot purge the old $p"
	fi
done
for d in /etc/aicn /var/lib/aicn /var/lib/aicn-coordinator /var/cache/aicn; do
	[ -e "$d" ] && fail "$d exists before installing: something else uses it; not touching it"
done
leftovers >"$tmp/before"

# Meter pins the prerm must remove on removal but keep on upgrade: a real tracked cgroup
# in a test pin directory ($AICN_METER_PIN_DIR reaches the maintainer scripts through dpkg).
export AICN_METER_PIN_DIR=$pin
v2=/sys/fs/cgroup/unified
[ -e /sys/fs/cgroup/cgroup.controllers ] && v2=/sys/fs/cgroup
cg=$v2/aicn-pkgtest-$$
mkdir "$cg"
"$AICN_BIN/aicn-meter" track "$cg" >/dev/null || fail "aicn-meter track $cg"
[ -e "$pin/tracked" ] || fail "no pins in $pin after aicn-meter track"

step "dpkg -i"
installed=1
dpkg_retry -i "${debs[@]}" || fail "dpkg -i"
for p in aicn-agent aicn-coordinator aicnctl; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' $p)" = installed ] || fail "$p is not installed"
done
for p in "${agent_progs[@]}" "${coord_progs[@]}"; do
	[ -x "/usr/sbin/$p" ] || fail "/usr/sbin/$p not installed"
done
out=$(/usr/bin/aicnctl --version) || fail "/usr/bin/aicnctl --version"
[ "$out" = "aicnctl $version" ] || fail "/usr/bin/aicnctl --version says '$out'"
echo "   /usr/bin/aicnctl --version: $out"
grep -q '/etc/aicn/agent.conf' <<<"$(dpkg-query -W -f='${Conffiles}\n' aicn-agent)" || fail "agent.conf not registered as conffile"
getent passwd aicn-coordinator >/dev/null || fail "no aicn-coordinator user"
uid=$(id -u aicn-coordinator)
[ "$uid" -lt 1000 ] || fail "aicn-coordinator is not a system user (uid $uid)"
[ "$(stat -c '%U %a' /var/lib/aicn-coordinator)" = "aicn-coordinator 700" ] ||
	fail "/var/lib/aicn-coordinator: $(stat -c '%U %a' /var/lib/aicn-coordinator)"
[ "$(stat -c '%U %a' /var/lib/aicn)" = "root 700" ] || fail "/var/lib/aicn: $(stat -c '%U %a' /var/lib/aicn)"

# check_daemon PROG CONF REFUSAL SED_EXPR...: the installed daemon's --version; its shipped
# CONF refused by --check-config with a message matching REFUSAL; then CONF with every
# documented key uncommented (and the SED_EXPRs applied) accepted, listing exactly those keys.
check_daemon() {
	local prog=$1 conf=$2 refusal=$3 name keys_doc keys_eff
	shift 3
	name=$(basename "$prog")
	out=$("$prog" --version) || fail "$prog --version"
	grep -q "$version" <<<"$out" || fail "$name --version says '$out'"
	echo "   $prog --version: $out"
	if "$prog" --check-config >"$tmp/$name.check0" 2>&1; then
		fail "$name --check-config accepted the shipped $conf"
	fi
	grep -qE "$refusal" "$tmp/$name.check0" ||
		{ cat "$tmp/$name.check0"; fail "$name: the refusal names none of $refusal"; }
	sed -e 's/^#\([a-z_]* = \)/\1/' "$@" "$conf" >"$tmp/$name.conf"
	"$prog" --check-config --config "$tmp/$name.conf" >"$tmp/$name.check1" 2>&1 ||
		{ cat "$tmp/$name.check1"; fail "$name --check-config refused the documented keys"; }
	keys_doc=$(sed -n 's/^#\{0,1\}\([a-z_]*\) = .*/\1/p' "$conf" | sort)
	keys_eff=$(sed -n 's/^\([a-z_]*\) *= .*/\1/p' "$tmp/$name.check1" | sort)
	[ "$keys_doc" = "$keys_eff" ] ||
		fail "$conf documents [$(echo $keys_doc)] but $name has [$(echo $keys_eff)]"
	echo "   --check-config: shipped file refused as it should; all $(wc -w <<<"$keys_doc") documented keys accepted"
}
if [ -x /usr/sbin/aicn-agent ]; then
	step "installed aicn-agent"
	/usr/bin/aicnctl ca init "$tmp/ca" >/dev/null || fail "aicnctl ca init"
	(cd "$tmp" && /usr/bin/aicnctl ca issue --dir "$tmp/ca" --role agent --name pkgtest --out node >/dev/null) ||
		fail "aicnctl ca issue"
	mkdir -m 0700 "$tmp/state"
	# the shipped file leaves the two required keys to the operator
	check_daemon /usr/sbin/aicn-agent /etc/aicn/agent.conf 'coordinator|ask_price' \
		-e "s,^cert = .*,cert = $tmp/node.pem," -e "s,^key = .*,key = $tmp/node.key," \
		-e "s,^ca = .*,ca = $tmp/ca/ca.pem," -e "s,^state_dir = .*,state_dir = $tmp/state,"
fi
if [ -x /usr/sbin/aicn-coordinator ]; then
	step "installed aicn-coordinator"
	[ -d "$tmp/ca" ] || /usr/bin/aicnctl ca init "$tmp/ca" >/dev/null || fail "aicnctl ca init"
	(cd "$tmp" && /usr/bin/aicnctl ca issue --dir "$tmp/ca" --role coordinator --name pkgtest-coord \
		--out coord >/dev/null) || fail "aicnctl ca issue --role coordinator"
	mkdir -m 0700 "$tmp/cstate"
	# the shipped file names certificates the operator has not installed yet; the
	# optional files (params, port_file) set to none
	check_daemon /usr/sbin/aicn-coordinator /etc/aicn/coordinator.conf 'cert|coordinator.pem' \
		-e "s,^cert = .*,cert = $tmp/coord.pem," -e "s,^key = .*,key = $tmp/coord.key," \
		-e "s,^ca = .*,ca = $tmp/ca/ca.pem," -e "s,^crl = .*,crl = $tmp/ca/crl.pem," \
		-e "s,^state_dir = .*,state_dir = $tmp/cstate," -e 's,^params = .*,params = ,' \
		-e 's,^port_file = .*,port_file = ,'
fi

step "systemd-analyze verify and security (systemd is not PID 1 here: offline)"
for u in aicn-agent aicn-coordinator; do
	if systemd-analyze verify --man=no "/lib/systemd/system/$u.service" >"$tmp/verify" 2>&1; then
		echo "   $u.service: verify passes"
	elif [ ! -x "/usr/sbin/$u" ] && [ "$(grep -vc "Command /usr/sbin/$u is not executable" "$tmp/verify")" = 0 ]; then
		echo "   $u.service: verify passes but for the missing /usr/sbin/$u (not in the tree yet)"
	else
		cat "$tmp/verify"
		fail "systemd-analyze verify $u.service"
	fi
	exposure=$(systemd-analyze security --offline=yes "/lib/systemd/system/$u.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	[ -n "$exposure" ] || fail "no exposure figure for $u.service"
	echo "   $u.service: systemd-analyze security exposure $exposure"
	eval "exp_${u//-/_}=$exposure"
done
# regressions: the coordinator stays locked down, the agent no worse than measured
awk -v a="$exp_aicn_agent" -v c="$exp_aicn_coordinator" 'BEGIN { exit !(c <= 2.0 && a <= 6.0) }' ||
	fail "exposure rose: agent $exp_aicn_agent (max 6.0), coordinator $exp_aicn_coordinator (max 2.0)"

step "upgrade (dpkg -i again) keeps state, edited conffiles and the meter's pins"
echo marker >/var/lib/aicn/pkgtest-marker
echo marker >/var/lib/aicn-coordinator/pkgtest-marker
echo '# edited by the operator' >>/etc/aicn/agent.conf
dpkg_retry -i "${debs[@]}" || fail "dpkg -i (upgrade)"
[ -f /var/lib/aicn/pkgtest-marker ] || fail "upgrade lost /var/lib/aicn"
[ -f /var/lib/aicn-coordinator/pkgtest-marker ] || fail "upgrade lost /var/lib/aicn-coordinator"
grep -q 'edited by the operator' /etc/aicn/agent.conf || fail "upgrade replaced the edited agent.conf"
[ -e "$pin/tracked" ] || fail "upgrade ran aicn-meter cleanup (pins gone)"

step "dpkg -r: programs gone, state and conffiles kept, meter unpinned"
dpkg_retry -r aicn-agent aicn-coordinator aicnctl || fail "dpkg -r"
for p in "${agent_progs[@]}" "${coord_progs[@]}"; do
	[ ! -e "/usr/sbin/$p" ] || fail "/usr/sbin/$p still there after remove"
done
[ ! -e /usr/bin/aicnctl ] || fail "/usr/bin/aicnctl still there after remove"
[ -f /etc/aicn/agent.conf ] || fail "remove deleted the conffile"
[ -f /var/lib/aicn/pkgtest-marker ] || fail "remove deleted the agent's state"
[ ! -e "$pin" ] || fail "prerm did not unpin the meter ($pin still there)"
rmdir "$cg" && cg=

step "dpkg -P: nothing left"
dpkg_retry -P aicn-agent aicn-coordinator aicnctl || fail "dpkg -P"
installed=0
for p in aicn-agent aicn-coordinator aicnctl; do
	dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$' &&
		fail "$p still known to dpkg after purge"
done
leftovers >"$tmp/after"
if ! diff -u "$tmp/before" "$tmp/after"; then
	fail "files left after purge (above)"
fi
echo "   purged: no aicn file left in /etc, /lib/systemd, /usr, /var/lib, /var/cache"
echo "PASS"
