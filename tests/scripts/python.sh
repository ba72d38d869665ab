#!/bin/sh
# tests/scripts/python.sh - the Python binding: its unittest suites
# (tests/python/run.py) against running `cqrs-orders serve` engines, a check
# that the module pulls in neither liburing nor jemalloc, and an install
# with `pip install --no-build-isolation` from a copy of the source tree
# into a temporary --target (no network; CQRS_TEST_PIP=0 skips it).
# Exits 77 when the module could not be built here (no Python headers).
set -eu
BUILD=${BUILD:-build}

# Debian's /usr/bin/python3 matches python3-dev's headers, which the module
# was built with (mk/bindings.mk); a pyenv python3 on PATH may not.
PY=${PYTHON:-}
if [ -z "$PY" ]; then
	if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
fi
path_py=$(command -v python3 || true)
echo "python.sh: using $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
if [ -n "$path_py" ] && [ "$(readlink -f "$path_py")" != "$(readlink -f "$PY")" ]; then
	echo "python.sh: note: python3 on PATH is $path_py; the module is built for $PY"
fi
ext=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
mod="$BUILD/python/cqrs/_cqrs$ext"
if [ ! -f "$mod" ]; then
	echo "python.sh: $mod not built (no Python.h for $PY? install python3-dev)"
	exit 77
fi

if ldd "$mod" | grep -E 'liburing|jemalloc'; then
	echo "python.sh: FAIL: the module links liburing or jemalloc"
	exit 1
fi

tmp=$(mktemp -d /tmp/cqrs-pytest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
rc=0
BUILD="$BUILD" "$PY" tests/python/run.py >"$tmp/suite.out" 2>&1 || rc=$?
cat "$tmp/suite.out"
main=$(tail -n 1 "$tmp/suite.out")
[ $rc -eq 0 ] || exit $rc

[ "${CQRS_TEST_PIP:-1}" = 0 ] && { echo "python.sh: pip install check skipped (CQRS_TEST_PIP=0)"; echo "$main"; exit 0; }
if ! "$PY" -c 'import setuptools, pip' 2>/dev/null; then
	echo "python.sh: pip install check skipped: no setuptools/pip for $PY"
	echo "$main"
	exit 0
fi
# A copy of the tree, so the in-tree build leaves nothing in this checkout.
mkdir -p "$tmp/src/bindings"
for d in include core ringbuf shm client; do
	if [ -d "$d" ]; then cp -r "$d" "$tmp/src/"; fi
done
cp -r bindings/python "$tmp/src/bindings/"
rm -rf "$tmp/src/bindings/python/build" "$tmp/src/bindings/python/"*.egg-info
(cd "$tmp" && "$PY" -m pip install --no-build-isolation --no-index --no-cache-dir \
	--disable-pip-version-check -q --target "$tmp/site" ./src/bindings/python) >"$tmp/pip.log" 2>&1 || {
	cat "$tmp/pip.log"; echo "python.sh: FAIL: pip install"; exit 1; }
if ldd "$tmp"/site/cqrs/_cqrs*.so | grep -E 'liburing|jemalloc|cqrs'; then
	echo "python.sh: FAIL: the pip-built module has unwanted dependencies"
	exit 1
fi
# The installed module passes the read and round-trip suites too.
echo "python.sh: the pip-installed module:"
CQRS_PYTHONPATH="$tmp/site" BUILD="$BUILD" "$PY" tests/python/run.py ViewRead RoundTrip
echo "python.sh: pip install --no-build-isolation ./bindings/python: ok"
echo "$main"
