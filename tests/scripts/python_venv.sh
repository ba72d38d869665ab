#!/bin/sh
# tests/scripts/python_venv.sh - the Python binding's README install, as a
# new user runs it: a fresh virtualenv in a temporary folder, the package
# installed into it from a copy of the source tree, imported from a
# directory outside the tree, connected to a running engine
# (tests/scripts/lib/serve.sh), a view read, the venv removed.
#
# This machine has no package index, so it uses the README's offline form:
#   python3 -m venv --system-site-packages V
#   V/bin/pip install --no-build-isolation ./bindings/python
# (Debian's python3-setuptools and python3-wheel, seen through the system
# site packages; mk/deps.sh installs them and python3-venv). With an index,
# the ordinary `pip install ./bindings/python` fetches the build
# requirements pyproject.toml declares instead.
# Exits 77 when Debian's python3 cannot make a venv (no python3-venv) or
# has no setuptools/wheel/Python headers.
set -eu
BUILD=$(cd "${BUILD:-build}" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "python_venv: no $PY"; exit 77; }
if ! "$PY" -c 'import ensurepip, setuptools, wheel, sysconfig, os, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
	echo "python_venv: needs python3-venv, python3-setuptools, python3-wheel and python3-dev (sh mk/deps.sh)"
	exit 77
fi
. tests/scripts/lib/serve.sh
serve_setup pyvenv
work=$(mktemp -d /tmp/cqrs-pyvenv.XXXXXX)
trap 'rm -rf "$work"; serve_cleanup' EXIT

# A copy of the tree, so nothing is built inside this checkout.
mkdir -p "$work/src/bindings"
for d in include core ringbuf shm client; do cp -r "$d" "$work/src/"; done
cp -r bindings/python "$work/src/bindings/"
rm -rf "$work/src/bindings/python/build" "$work/src/bindings/python/"*.egg-info

"$PY" -m venv --system-site-packages "$work/V"
(cd "$work/src" && "$work/V/bin/pip" install --no-build-isolation --no-index --no-cache-dir \
	--disable-pip-version-check -q ./bindings/python) >"$work/pip.log" 2>&1 || {
	cat "$work/pip.log"; echo "python_venv: FAIL: pip install in a fresh venv"; exit 1; }

serve_populate 20
serve_start none
cd "$work"
"$work/V/bin/python" - "$name" <<'EOF'
import inspect, os, sys
import cqrs
here = os.path.dirname(cqrs.__file__)
assert "/V/lib/" in here, here                            # the venv's copy, not the tree's
for f in ("py.typed", "__init__.pyi"):
    assert os.path.exists(os.path.join(here, f)), f       # the stubs are installed
assert str(inspect.signature(cqrs.View.get)) == "(self, key, /, *, datetimes=False)"
with cqrs.connect(sys.argv[1]) as eng:
    v = eng.view("customer_stats")
    rows = list(v)
    assert len(rows) >= 20 and v.get(1).customer_id == 1, rows[:2]
    seq = eng.submit("RegisterCustomer", customer_id=10**9, name="venv")
    assert v.wait(seq, timeout=10) and v.get(10**9).name == "venv"
print("python_venv: %s from %s read %d rows" % (cqrs.__name__, here, len(rows)))
EOF
cd - >/dev/null
serve_stop
"$work/V/bin/pip" uninstall -y -q cqrs >/dev/null 2>&1
rm -rf "$work/V"
echo "python_venv: python3 -m venv --system-site-packages + pip install --no-build-isolation: ok"
