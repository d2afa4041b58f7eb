#!/bin/bash
# image.sh -- aicnctl image build-from-rootfs: the archive runs in our sandbox, umoci unpacks it, the same tree gives the same bytes.
# aicn-timeout: 180
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the sandbox run)"; exit 77; }
: "${AICN_BIN:?run through make check}"
CTL=$AICN_BIN/aicnctl
SBX=$AICN_BIN/aicn-sandbox
T=$(mktemp -d /tmp/aicn-cli-image.XXXXXX)
trap 'rm -rf "$T"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }

# A busybox-static root filesystem, the way docs/renter.md builds one.
R=$T/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/work/out" "$R/tmp"
cp /bin/busybox "$R/bin/busybox"
for a in sh echo cat ls wc sha256sum; do ln -s busybox "$R/bin/$a"; done
ln "$R/bin/busybox" "$R/bin/hardlinked"
echo 'root:x:0:0:root:/:/bin/sh' > "$R/etc/passwd"
printf 'deterministic\n' > "$R/etc/motd"
mkfifo "$R/tmp/fifo"

$CTL image build-from-rootfs "$R" -o "$T/a.tar" --env GREETING=hello -- /bin/sh -c 'echo $GREETING from the image' \
	> "$T/a.out" 2> "$T/a.err" || fail "build exit $?: $(cat "$T/a.err")"
grep -q 'OCI image sha256:' "$T/a.out" && ok "build prints the manifest digest" || fail "no digest: $(cat "$T/a.out")"
grep -q 'left out 1 device, fifo or socket' "$T/a.err" && ok "the fifo is left out with a warning" || fail "no fifo warning: $(cat "$T/a.err")"

# Deterministic: a copy with other mtimes, built later, gives the same bytes.
cp -a "$R" "$T/rootfs2"
touch -d '2001-02-03 04:05:06' "$T/rootfs2/etc/motd" "$T/rootfs2/bin"
sleep 1
$CTL image build-from-rootfs "$T/rootfs2" -o "$T/b.tar" --env GREETING=hello -- /bin/sh -c 'echo $GREETING from the image' \
	>/dev/null 2>&1 || fail "second build"
if cmp -s "$T/a.tar" "$T/b.tar"; then ok "same tree, same archive ($(sha256sum < "$T/a.tar" | cut -c1-16)...)"
else fail "two builds of the same tree differ"; fi
printf 'changed\n' > "$T/rootfs2/etc/motd"
$CTL image build-from-rootfs "$T/rootfs2" -o "$T/c.tar" >/dev/null 2>&1
cmp -s "$T/a.tar" "$T/c.tar" && fail "a changed tree gave the same archive" || ok "a changed file changes the archive"

# Layout: every blob named by its sha256; entries sorted.
mkdir "$T/layout"
tar -xf "$T/a.tar" -C "$T/layout" || fail "tar cannot read the archive"
names=$(tar -tf "$T/a.tar")
[ "$names" = "$(printf '%s\n' "$names" | LC_ALL=C sort)" ] && ok "archive entries are sorted" || fail "unsorted entries"
bad=0
for b in "$T"/layout/blobs/sha256/*; do
	[ "$(sha256sum < "$b" | cut -d' ' -f1)" = "$(basename "$b")" ] || bad=1
done
[ $bad = 0 ] && ok "every blob is named by its sha256" || fail "a blob's name is not its digest"
grep -q '"imageLayoutVersion":"1.0.0"' "$T/layout/oci-layout" && ok "oci-layout" || fail "oci-layout"

# umoci reads it as an OCI layout.
if command -v umoci >/dev/null; then
	if umoci unpack --image "$T/layout:latest" "$T/bundle" > "$T/umoci.log" 2>&1; then
		cmp -s "$T/bundle/rootfs/bin/busybox" /bin/busybox && ok "umoci unpacks it (busybox intact)" || fail "umoci: busybox differs"
		[ "$(stat -c %i "$T/bundle/rootfs/bin/busybox")" = "$(stat -c %i "$T/bundle/rootfs/bin/hardlinked")" ] \
			&& ok "hard link kept" || fail "hard link lost"
		[ "$(readlink "$T/bundle/rootfs/bin/sh")" = busybox ] && ok "symlinks kept" || fail "symlink lost"
		[ ! -e "$T/bundle/rootfs/tmp/fifo" ] && ok "no fifo in the image" || fail "fifo in the image"
		grep -q GREETING=hello "$T/bundle/config.json" && ok "umoci sees the image's Env" || fail "Env missing in umoci's config"
	else
		fail "umoci unpack: $(tail -3 "$T/umoci.log")"
	fi
else
	[ "${AICN_TEST_MUST_WORK:-0}" = 1 ] && fail "umoci is not installed" || echo "skip umoci (not installed)"
fi

# Our sandbox runs it: an explicit command, and the image's own Cmd.
out=$($SBX run --cache "$T/cache" "$T/a.tar" -- /bin/echo hi 2>"$T/sbx.err")
[ "$out" = hi ] && ok "aicn-sandbox runs /bin/echo hi in it" || fail "sandbox run: '$out' $(tail -3 "$T/sbx.err")"
out=$($SBX run --cache "$T/cache" "$T/a.tar" 2>"$T/sbx.err")
[ "$out" = "hello from the image" ] && ok "the image's Cmd and Env work" || fail "default Cmd: '$out' $(tail -3 "$T/sbx.err")"

# Usage errors exit 2, failures 1.
$CTL image build-from-rootfs "$R" >/dev/null 2>"$T/e1"; rc=$?
[ $rc = 2 ] && grep -q -- '-o FILE.tar is required' "$T/e1" && ok "missing -o: exit 2" || fail "missing -o: exit $rc $(cat "$T/e1")"
$CTL image build-from-rootfs "$R" -o "$T/x.tar" --bogus >/dev/null 2>"$T/e2"; rc=$?
[ $rc = 2 ] && grep -q "unknown option '--bogus'" "$T/e2" && ok "unknown option: exit 2" || fail "unknown option: exit $rc"
$CTL image build-from-rootfs "$T/nonexistent" -o "$T/x.tar" >/dev/null 2>"$T/e3"; rc=$?
[ $rc = 1 ] && grep -q 'cannot open the directory' "$T/e3" && ok "missing directory: exit 1" || fail "missing dir: exit $rc $(cat "$T/e3")"
[ ! -e "$T/x.tar" ] && ok "nothing written on failure" || fail "x.tar left behind"

if [ "$failures" -gt 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all passed"
