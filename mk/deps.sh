#!/bin/sh
# mk/deps.sh - installs the Debian packages cqrs needs when pkg-config (or,
# for programs, the PATH) cannot find them. Usage: sh mk/deps.sh PKG...
# where PKG is a pkg-config name; a few programs are always checked too.
set -u
missing=""
pkg_of() {
	case "$1" in
	liburing) echo liburing-dev ;;
	jemalloc) echo libjemalloc-dev ;;
	ck) echo libck-dev ;;
	libxxhash) echo libxxhash-dev ;;
	cmocka) echo libcmocka-dev ;;
	benchmark) echo libbenchmark-dev ;;
	lua5.4) echo liblua5.4-dev ;;
	python3) echo python3-dev ;;
	lmdb) echo liblmdb-dev ;;
	sqlite3) echo libsqlite3-dev ;;
	*) echo "$1" ;;
	esac
}
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
for p in "$@"; do
	pkg-config --exists "$p" 2>/dev/null || missing="$missing $(pkg_of "$p")"
done
for prog in lua5.4:lua5.4 luarocks:luarocks python3:python3 gcc:gcc g++:g++ clang:clang; do
	command -v "${prog%%:*}" >/dev/null 2>&1 || missing="$missing ${prog#*:}"
done
# The bindings' install checks use Debian's Python with pip and setuptools.
/usr/bin/python3 -c 'import setuptools, pip' >/dev/null 2>&1 || missing="$missing python3-pip python3-setuptools"
[ -z "$missing" ] && exit 0
echo "deps: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"
else
	echo "deps: missing packages:$missing" >&2
	echo "deps: run as root or install them: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing >/dev/null || {
	echo "deps: apt-get install failed for:$missing" >&2
	exit 1
}
