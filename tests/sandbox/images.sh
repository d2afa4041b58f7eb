#!/usr/bin/env bash
# images.sh -- OCI images: layouts as directories, tars and umoci's unpack once and run; bad images are
# refused with a clear error and nothing is written outside the cache (whose temporary area stays empty).
# aicn-timeout: 300
set -uo pipefail
. "$AICN_SRC/tests/sandbox/lib.sh"
BASE=1879048192

make_image busybox bb
out=$($SBX unpack --cache "$CACHE" "$T/bb") || fail "busybox image did not unpack"
grep -q '"unpacked":true' <<<"$out" && ok "first open unpacks" || fail "first open: $out"
rootfs=$(echo "$out" | sed -E 's/.*"rootfs":"([^"]*)".*/\1/')
out2=$($SBX unpack --cache "$CACHE" "$T/bb")
grep -q '"unpacked":false' <<<"$out2" && ok "second open comes from the cache" || fail "second open: $out2"
# a cached image runs from the cache's verified config: no layout blob is read, and libarchive
# (with libxml2, ICU, libstdc++ behind it) is never mapped; unpacking loads it on demand
hex=$(basename "$rootfs")
[ -s "$CACHE/config/$hex" ] && ok "the verified config is kept beside the rootfs" || fail "no $CACHE/config/$hex"
libs=$(LD_DEBUG=libs $SBX run -q --cache "$CACHE" "$T/bb" -- /bin/true 2>&1 >/dev/null)
grep -q 'calling init:.*libc\.so' <<<"$libs" && ! grep -q 'libarchive' <<<"$libs" &&
	ok "a cached run does not load libarchive" || fail "cached run loads: $(echo "$libs" | grep -o '[a-z0-9+_-]*\.so[.0-9]*' | sort -u | tr '\n' ' ')"
mkdir -p "$T/bb-index-only" && cp "$T/bb/index.json" "$T/bb/oci-layout" "$T/bb-index-only/"
o=$($SBX run -q --cache "$CACHE" "$T/bb-index-only" -- /bin/echo cached) && [ "$o" = cached ] &&
	ok "a cached run reads no blob of the layout (they may be gone)" || fail "index-only cached run: $o"

# layers applied in order with whiteouts, hardlinks and shifted owners
[ ! -e "$rootfs/etc/motd" ] && ok ".wh. whiteout removed a lower file" || fail "etc/motd still there"
[ ! -e "$rootfs/opq/lower" ] && [ -f "$rootfs/opq/upper" ] && ok "opaque whiteout" || fail "opaque whiteout"
[ "$(stat -c %i "$rootfs/bin/busybox")" = "$(stat -c %i "$rootfs/bin/hardlinked-busybox")" ] &&
	ok "hardlink" || fail "hardlink not linked"
[ "$(stat -c %u:%a "$rootfs/bin/suid-probe")" = "$BASE:4755" ] && ok "setuid file owned by mapped root" ||
	fail "suid-probe is $(stat -c %u:%a "$rootfs/bin/suid-probe")"
[ "$(stat -c %u "$rootfs/home/app/owned")" = "$((BASE + 1000))" ] && ok "uid 1000 shifted" ||
	fail "home/app/owned owner $(stat -c %u "$rootfs/home/app/owned")"
[ "$(find "$rootfs" -uid 0 | wc -l)" = 0 ] && ok "no file owned by host root" || fail "host-root-owned files in rootfs"

o=$($SBX run -q --cache "$CACHE" "$T/bb" -- /bin/sh -c 'cat /opq/upper; id -u; cat /etc/secret')
[ "$o" = "$(printf 'from the top layer\n0\nroot only')" ] && ok "runs as image root" || fail "run: $o"
o=$($SBX run -q --cache "$CACHE" -u app "$T/bb" -- /bin/sh -c 'id -u; id -g; cat /home/app/owned; cat /etc/secret 2>&1')
head -3 <<<"$o" | tr '\n' ' ' | grep -q "^1000 1000 app's file" && grep -q 'Permission denied' <<<"$o" &&
	ok "runs as user app from the image's passwd" || fail "user app: $o"

# the same layout as a tar (skopeo oci-archive / docker save >= 25 shape)
(cd "$T/bb" && tar cf "$T/bb.tar" oci-layout index.json blobs)
out3=$($SBX unpack --cache "$CACHE" "$T/bb.tar") || fail "tar layout refused"
[ "$(echo "$out3" | sed -E 's/.*"digest":"([^"]*)".*/\1/')" = "$(echo "$out" | sed -E 's/.*"digest":"([^"]*)".*/\1/')" ] &&
	ok "tar layout has the same digest" || fail "tar digest differs: $out3"
o=$($SBX run -q --cache "$CACHE" "$T/bb.tar" -- /bin/echo from-tar) && [ "$o" = from-tar ] &&
	ok "tar layout runs" || fail "tar run: $o"

# a layout written by umoci (another implementation), and ours read back by umoci
if command -v umoci >/dev/null; then
	umoci init --layout "$T/u" && umoci new --image "$T/u:t" &&
		umoci unpack --image "$T/u:t" "$T/ub" >/dev/null 2>&1 &&
		mkdir -p "$T/ub/rootfs/bin" && cp /bin/busybox "$T/ub/rootfs/bin/busybox" &&
		umoci repack --image "$T/u:t" "$T/ub" >/dev/null 2>&1 &&
		umoci config --image "$T/u:t" --config.entrypoint /bin/busybox --config.cmd echo --config.cmd umoci-ok >/dev/null 2>&1 &&
		o=$($SBX run -q --cache "$CACHE" "$T/u") && [ "$o" = umoci-ok ] &&
		ok "umoci-written layout runs with its Entrypoint and Cmd" || fail "umoci layout: ${o:-}"
	make_image busybox-gzip bbg >/dev/null && umoci unpack --image "$T/bbg:latest" "$T/bbu" >/dev/null 2>&1 && [ -x "$T/bbu/rootfs/bin/sbx-probe" ] && [ ! -e "$T/bbu/rootfs/etc/motd" ] &&
		ok "umoci accepts our test layout" || fail "umoci rejected the test layout"
fi

# a plain rootfs directory
mkdir -p "$T/plain/bin" && cp /bin/busybox "$T/plain/bin/"
o=$($SBX run -q --cache "$CACHE" "$T/plain" -- /bin/busybox echo plain) && [ "$o" = plain ] &&
	ok "plain rootfs directory" || fail "plain rootfs: $o"

# concurrent first opens of one digest: one unpacks, the others wait and share it
c2=$T/cache2
for i in 1 2 3 4; do $SBX unpack --cache "$c2" "$T/bb" >"$T/conc.$i" 2>&1 & done
wait
n_true=$(cat "$T"/conc.* | grep -c '"unpacked":true')
n_ok=$(cat "$T"/conc.* | grep -c '"rootfs"')
[ "$n_ok" = 4 ] && [ "$n_true" = 1 ] && [ -z "$(ls -A "$c2/tmp")" ] &&
	ok "4 concurrent opens: 1 unpack, 4 results, no leftovers" || fail "concurrent: $(cat "$T"/conc.*)"
diff -r "$rootfs" "$c2/rootfs/$(basename "$rootfs")" >/dev/null && ok "concurrent result identical" ||
	fail "concurrent rootfs differs"

# bad images: a clear error, nothing outside the cache, the cache's tmp area empty
mkdir -p "$T/outside"
before=$(ls "$CACHE/rootfs" | wc -l)
check_bad() {
	local kind=$1 want=$2 err
	make_image "$kind" "bad-$kind" --target "$T/outside" >/dev/null
	if err=$($SBX unpack --cache "$CACHE" "$T/bad-$kind" 2>&1); then
		fail "$kind: accepted"
	elif ! grep -q -- "$want" <<<"$err"; then
		fail "$kind: unclear error: $err"
	else
		ok "$kind: $(echo "$err" | sed -E 's/^.*error: //' | cut -c1-110)"
	fi
	[ -z "$(ls -A "$CACHE/tmp")" ] || fail "$kind left $(ls "$CACHE/tmp") in the cache"
}
check_bad bad-digest "digest mismatch"
check_bad missing-blob "missing from the image"
check_bad other-platform "no manifest for linux/"
check_bad dotdot 'contains ".."'
check_bad abspath "absolute path"
check_bad symlink-escape "outside the rootfs through a symlink"
check_bad hardlink-escape "escapes"
check_bad hardlink-abs "escapes"
check_bad device "device node"
check_bad bad-whiteout "malformed whiteout"
check_bad truncated-gzip "truncated gzip"
check_bad many-entries "more than 65536 entries"
check_bad nested10 "nested more than"
check_bad bad-json "not valid JSON"
[ -z "$(ls -A "$T/outside")" ] && ok "nothing written through the symlink" || fail "escape wrote $(ls "$T/outside")"
[ ! -e /tmp/escaped-abs ] && [ ! -e "$T/escaped-dotdot" ] && ok "no escaped files" || fail "escaped files exist"
[ "$(ls "$CACHE/rootfs" | wc -l)" = "$before" ] && ok "no bad image reached the cache" || fail "cache grew"
finish
