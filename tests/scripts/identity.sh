#!/bin/sh
# tests/scripts/identity.sh - stable client ids from the CLI, Python and Lua
# against a `cqrs-orders serve` engine (unique name, temp dir): the same
# --client-id and --client-seq twice answer "duplicate" with the original
# seq (also after an engine restart), numeric and named ids, bad ids usage
# errors; Python's cqrs.connect(..., client_id=) and Lua's
# cqrs.connect(name, {client_id = ...}) see the CLI's command as a
# duplicate under the same name. The bindings' parts are skipped when their
# modules were not built here.
set -eu
BUILD=${BUILD:-build}
. tests/scripts/lib/serve.sh
serve_setup ident
serve_start none

fail() { echo "identity.sh: FAIL: $*"; exit 1; }

out=$("$BUILD/cqrs" submit "$name" RegisterCustomer customer_id=901 name=a \
	--client-id billing --client-seq 5) || fail "first submit: $out"
seq=${out#accepted seq=}
[ "$out" = "accepted seq=$seq" ] || fail "first submit said: $out"
rc=0
out=$("$BUILD/cqrs" submit "$name" RegisterCustomer customer_id=901 name=a \
	--client-id billing --client-seq 5) || rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^duplicate: .*(seq=$seq)\$" ||
	fail "resend: rc $rc, $out"
# without --client-id every run is a new client: it runs again (rejected by the domain)
rc=0
out=$("$BUILD/cqrs" submit "$name" RegisterCustomer customer_id=901 name=a --client-seq 5) || rc=$?
echo "$out" | grep -q "^rejected" || fail "assigned id: $out"
out=$("$BUILD/cqrs" submit "$name" RegisterCustomer customer_id=902 name=b \
	--client-id 77 --client-seq 1) || fail "numeric id: $out"
seq77=${out#accepted seq=}
for bad in "--client-id 0 --client-seq 1" "--client-id 9223372036854775808 --client-seq 1" \
	"--client-id billing"; do
	rc=0
	# shellcheck disable=SC2086
	"$BUILD/cqrs" submit "$name" RegisterCustomer customer_id=903 $bad >/dev/null 2>&1 || rc=$?
	[ $rc -eq 2 ] || fail "'$bad' exited $rc, not 2 (usage)"
done
echo "identity.sh: cli: resend answered duplicate seq=$seq; bad ids are usage errors: ok"

serve_stop || fail "serve did not stop cleanly"
serve_start none
rc=0
out=$("$BUILD/cqrs" submit "$name" RegisterCustomer customer_id=901 name=a \
	--client-id billing --client-seq 5) || rc=$?
echo "$out" | grep -q "(seq=$seq)\$" || fail "after restart: $out"
rc=0
out=$("$BUILD/cqrs" submit "$name" RegisterCustomer customer_id=902 name=b \
	--client-id 77 --client-seq 1) || rc=$?
echo "$out" | grep -q "(seq=$seq77)\$" || fail "numeric after restart: $out"
echo "identity.sh: cli: duplicates answered with the original seqs after a restart: ok"

PY=/usr/bin/python3
ext=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null || true)
if [ -n "$ext" ] && [ -f "$BUILD/python/cqrs$ext" ]; then
	PYTHONPATH="$BUILD/python" "$PY" - "$name" "$seq" "$seq77" <<'EOF' || fail python
import sys, cqrs
name, seq, seq77 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
e = cqrs.connect(name, client_id="billing")
try:
    e.submit_with("RegisterCustomer", {"customer_id": 901, "name": "a"}, client_seq=5)
    raise SystemExit("no duplicate")
except cqrs.Duplicate as d:
    assert d.seq == seq, (d.seq, seq)
try:
    cqrs.connect(name, client_id="billing")
    raise SystemExit("second live connection accepted")
except cqrs.Error:
    pass
e.close()
e = cqrs.connect(name, client_id=77)
assert e.client_id == 77, e.client_id
try:
    e.submit_with("RegisterCustomer", {"customer_id": 902, "name": "b"}, client_seq=1)
    raise SystemExit("no duplicate")
except cqrs.Duplicate as d:
    assert d.seq == seq77
e.close()
for bad in (0, -1, 2**63, "", 1.5):
    try:
        cqrs.connect(name, client_id=bad)
        raise SystemExit("client_id=%r accepted" % (bad,))
    except (ValueError, TypeError):
        pass
print("identity.sh: python: client_id= by name and number, duplicate with the original seq: ok")
EOF
else
	echo "identity.sh: python part skipped (module not built)"
fi

if command -v lua5.4 >/dev/null 2>&1 && [ -f "$BUILD/lua/cqrs.so" ]; then
	LUA_CPATH="$BUILD/lua/?.so;;" lua5.4 - "$name" "$seq" <<'EOF' || fail lua
local cqrs = require "cqrs"
local name, seq = arg[1], tonumber(arg[2])
local e = assert(cqrs.connect(name, {client_id = "billing"}))
local s, err, kind, orig = e:submit("RegisterCustomer", {customer_id = 901, name = "a"},
	{client_seq = 5})
assert(s == nil and kind == "duplicate" and orig == seq, tostring(kind) .. " " .. tostring(orig))
local e2, err2 = cqrs.connect(name, {client_id = "billing"})
assert(e2 == nil, "second live connection accepted")
e:close()
assert(not pcall(cqrs.connect, name, {client_id = 0}))
print("lua: client_id by name, duplicate with the original seq: ok")
EOF
else
	echo "identity.sh: lua part skipped (module not built)"
fi
serve_stop || fail "serve did not stop cleanly"
echo "identity.sh: ok"
