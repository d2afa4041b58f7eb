#!/usr/bin/env bash
# deps.sh -- install the Debian packages listed in deps.txt that are missing; quiet when none are.
set -euo pipefail
# Not a Debian system (e.g. rpmbuild of packaging/rpm/aicn.spec): BuildRequires brought the libraries.
command -v dpkg-query >/dev/null || exit 0
list=${1:-$(dirname "$0")/deps.txt}
mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$')
declare -A have=()
while read -r name status; do
	[ "$status" = installed ] && have[${name%%:*}]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null || true)
missing=()
for p in "${pkgs[@]}"; do
	[ -n "${have[$p]:-}" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run 'make deps' as root (or: apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
