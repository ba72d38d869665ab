#!/bin/sh
# tests/scripts/lua.sh - the Lua binding: tests/lua/test_cqrs.lua with lua5.4
# against a `cqrs-orders serve` engine (unique name, temp dir) populated by a
# short demo run, plus a check that the module pulls in neither liburing nor
# jemalloc and a `luarocks make` of bindings/lua into a temporary tree
# (CQRS_TEST_LUAROCKS=0 skips it). Exits 77 when lua5.4 or the module is
# missing.
set -eu
BUILD=${BUILD:-build}
mod="$BUILD/lua/cqrs.so"
command -v lua5.4 >/dev/null 2>&1 || { echo "lua.sh: lua5.4 not installed"; exit 77; }
[ -f "$mod" ] || { echo "lua.sh: $mod not built (no Lua 5.4 headers? install liblua5.4-dev)"; exit 77; }
if ldd "$mod" | grep -E 'liburing|jemalloc'; then
	echo "lua.sh: FAIL: the module links liburing or jemalloc"
	exit 1
fi

. tests/scripts/lib/serve.sh
serve_setup lua_t
serve_populate 50
serve_start none
pid=$SERVE_PID

rc=0
LUA_CPATH="$BUILD/lua/?.so;;" lua5.4 tests/lua/test_cqrs.lua "$BUILD" "$name" "$pid" \
	>"$dir/suite.out" 2>&1 || rc=$?
cat "$dir/suite.out"
main=$(tail -n 1 "$dir/suite.out")
[ $rc -eq 0 ] || exit $rc

if [ "${CQRS_TEST_LUAROCKS:-1}" != 0 ] && command -v luarocks >/dev/null 2>&1; then
	# luarocks make in a copy of the source tree (it builds in place; see
	# bindings/lua/README.md) into a private rocks tree; the installed
	# module then loads and answers.
	tree="$dir/rocks"
	mkdir -p "$dir/src/bindings"
	for d in include core ringbuf shm client; do
		if [ -d "$d" ]; then cp -r "$d" "$dir/src/"; fi
	done
	cp -r bindings/lua "$dir/src/bindings/"
	rm -f "$dir/src/bindings/lua/cqrs.so"
	(cd "$dir/src/bindings/lua" && luarocks --lua-version 5.4 --tree "$tree" make \
		>"$dir/luarocks.log" 2>&1) || {
		cat "$dir/luarocks.log"; echo "lua.sh: FAIL: luarocks make"; exit 1; }
	so=$(find "$tree" -name cqrs.so | head -n 1)
	[ -n "$so" ] || { cat "$dir/luarocks.log"; echo "lua.sh: FAIL: luarocks installed no cqrs.so"; exit 1; }
	if ldd "$so" | grep -E 'liburing|jemalloc|cqrs'; then
		echo "lua.sh: FAIL: the luarocks-built module has unwanted dependencies"; exit 1
	fi
	LUA_CPATH="$(dirname "$so")/?.so" lua5.4 -e '
		local cqrs = require "cqrs"
		local e, _, kind = cqrs.connect("no_such_engine_rock")
		assert(e == nil and kind == "notfound")
		print("lua.sh: luarocks make: ok (client " .. tostring(cqrs.HAVE_CLIENT) .. ")")'
else
	echo "lua.sh: luarocks make check skipped"
fi
echo "$main"
