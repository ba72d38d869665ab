#!/bin/sh
# tests/scripts/abi.sh - the exported ABI is exactly the declared one. The
# functions declared CQRS_API in include/*.h, the names in the version
# scripts (cqrs.map: every header; cqrs_client.map: every header but cqrs.h)
# and what the built shared libraries export (nm -D --defined-only) must be
# the same sets, in the version node CQRS_0, with no wildcard in the maps.
# Fails naming each symbol that is declared but not exported, or exported
# but not declared.
set -eu
BUILD=${BUILD:-build}
for lib in libcqrs.so libcqrs_client.so; do
	if [ ! -f "$BUILD/$lib" ]; then
		echo "no $BUILD/$lib (run make first)"
		exit 77
	fi
done
command -v nm >/dev/null || { echo "no nm (binutils) here"; exit 77; }
tmp=$(mktemp -d /tmp/cqrs-abi.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

# CQRS_API declarations: each starts a line and names its function before
# the first '(' on that line.
declared() { # header...
	for h in "$@"; do
		sed -n 's/^CQRS_API[^(]*[ *]\([A-Za-z_0-9]*\)(.*/\1/p' "$h"
	done | sort -u
}
# The global names of a version script (comments stripped).
mapped() { # map
	sed 's,/\*.*\*/,,; s,^[[:space:]]*\*.*,,; s,^/\*.*,,' "$1" |
		sed -n '/global:/,/local:/p' | grep -v 'global:\|local:' |
		tr -d ' \t;' | grep -v '^$' | sort -u
}
# What a shared library exports, and under which version node.
exported() { # lib
	nm -D --defined-only "$1" | awk '$2 != "A" { print $3 }' | sort -u
}
compare() { # what, file-a (label), file-b (label)
	what=$1
	comm -23 "$2" "$4" > "$tmp/only_a"
	comm -13 "$2" "$4" > "$tmp/only_b"
	if [ -s "$tmp/only_a" ]; then
		echo "FAIL $what: in $3, not in $5:"; sed 's/^/    /' "$tmp/only_a"; fail=1
	fi
	if [ -s "$tmp/only_b" ]; then
		echo "FAIL $what: in $5, not in $3:"; sed 's/^/    /' "$tmp/only_b"; fail=1
	fi
}

declared include/*.h > "$tmp/decl_all"
declared $(ls include/*.h | grep -v '^include/cqrs\.h$') > "$tmp/decl_client"
[ -s "$tmp/decl_all" ] || { echo "FAIL: no CQRS_API declaration found in include/"; exit 1; }

for map in cqrs.map cqrs_client.map; do
	if mapped "$map" | grep -q '[*?[]'; then
		echo "FAIL $map: a wildcard in global: (name every symbol)"; fail=1
	fi
	grep -q '^CQRS_0 {' "$map" || { echo "FAIL $map: no CQRS_0 version node"; fail=1; }
done

mapped cqrs.map > "$tmp/map_all"
mapped cqrs_client.map > "$tmp/map_client"
compare "cqrs.map" "$tmp/decl_all" "CQRS_API in include/" "$tmp/map_all" "cqrs.map"
compare "cqrs_client.map" "$tmp/decl_client" "CQRS_API in include/ but cqrs.h" \
	"$tmp/map_client" "cqrs_client.map"

exported "$BUILD/libcqrs.so" > "$tmp/exp_all"
exported "$BUILD/libcqrs_client.so" > "$tmp/exp_client"
sed 's/$/@@CQRS_0/' "$tmp/map_all" > "$tmp/want_all"
sed 's/$/@@CQRS_0/' "$tmp/map_client" > "$tmp/want_client"
compare "libcqrs.so" "$tmp/want_all" "cqrs.map" "$tmp/exp_all" "nm -D $BUILD/libcqrs.so"
compare "libcqrs_client.so" "$tmp/want_client" "cqrs_client.map" "$tmp/exp_client" \
	"nm -D $BUILD/libcqrs_client.so"

[ $fail -eq 0 ] || exit 1
echo "abi: $(wc -l < "$tmp/decl_all") CQRS_API functions; libcqrs.so exports" \
	"$(wc -l < "$tmp/exp_all"), libcqrs_client.so $(wc -l < "$tmp/exp_client"), all in CQRS_0"
