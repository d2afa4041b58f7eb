# lib.sh -- shared by the sandbox test scripts: a temp dir, the busybox test image, helpers.
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (namespaces, cgroups)"; exit 77; }
: "${AICN_BIN:?run through make check}"
SBX=$AICN_BIN/aicn-sandbox
MK="python3 $AICN_SRC/tests/sandbox/mkimage.py"
PROBE=$AICN_BUILD/tests/sandbox/sbx-probe
T=$(mktemp -d /tmp/aicn-sbx-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
CACHE=$T/cache
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }
# make_image KIND NAME [args]: an OCI layout in $T/NAME
make_image() { local k=$1 n=$2; shift 2; $MK "$k" "$T/$n" --probe "$PROBE" "$@"; }
# json FILE KEY: a top-level scalar of a one-line JSON object
json() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2"; }
finish() { if [ "$failures" -gt 0 ]; then echo "$failures failure(s)"; exit 1; fi; echo "all passed"; exit 0; }
