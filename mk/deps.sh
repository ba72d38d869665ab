#!/bin/sh
# mk/deps.sh - installs the Debian packages cqrs needs when pkg-config (or,
# for programs and Python modules, the PATH and the interpreter) cannot find
# them. Usage: sh mk/deps.sh PKG... where PKG is a pkg-config name; a few
# programs are always checked too. The Makefile runs it on the first make
# in a build folder; `make deps` runs it again.
#
# On a fresh cloud VM unattended-upgrades often holds the dpkg lock for
# minutes after boot: apt-get then waits for the lock (DPkg::Lock::Timeout)
# and, for the lists lock that option does not cover, this script retries,
# up to LOCK_WAIT seconds (600) in all, saying so once.
# `sh mk/deps.sh --bench` checks only what `make bench` adds: matplotlib
# for Debian's python3 (bench/plot.py draws the latency plots).
set -u
LOCK_WAIT=${LOCK_WAIT:-600}
missing=""
bench_only=0
if [ "${1:-}" = --bench ]; then
	bench_only=1
	shift
fi
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
	libmicrohttpd) echo libmicrohttpd-dev ;;
	libnats) echo libnats-dev ;;
	*) echo "$1" ;;
	esac
}
if [ $bench_only = 1 ]; then
	/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 || missing="$missing python3-matplotlib"
	set -- # nothing else
else
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
for p in "$@"; do
	pkg-config --exists "$p" 2>/dev/null || missing="$missing $(pkg_of "$p")"
done
for prog in lua5.4:lua5.4 luarocks:luarocks python3:python3 gcc:gcc g++:g++ clang:clang; do
	command -v "${prog%%:*}" >/dev/null 2>&1 || missing="$missing ${prog#*:}"
done
# The bindings' install checks use Debian's Python with pip and setuptools.
/usr/bin/python3 -c 'import setuptools, pip' >/dev/null 2>&1 || missing="$missing python3-pip python3-setuptools"
# `python3 -m venv` (the Python binding's install in a fresh virtualenv,
# tests/scripts/python_venv.sh) fails on Debian until python3-venv brings
# ensurepip; the offline install (--no-build-isolation) builds its wheel
# with Debian's wheel (setuptools 66 has no bdist_wheel of its own).
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
/usr/bin/python3 -c 'import wheel' >/dev/null 2>&1 || missing="$missing python3-wheel"
# Optional for the binding (View.to_numpy / to_pandas import them when
# called); installed so that the tests of those run instead of skipping.
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || missing="$missing python3-numpy"
/usr/bin/python3 -c 'import pandas' >/dev/null 2>&1 || missing="$missing python3-pandas"
# cqrs metrics' tests: curl scrapes it, promtool (Debian's prometheus
# package) validates the exposition format, wrk benchmarks the gateway.
for prog in curl:curl promtool:prometheus wrk:wrk; do
	command -v "${prog%%:*}" >/dev/null 2>&1 || missing="$missing ${prog#*:}"
done
# Replication's tests and bench start their own JetStream cluster
# (Debian puts nats-server in /usr/sbin, off a plain user's PATH).
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing="$missing nats-server"
fi
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

# apt_get ARGS...: apt-get that waits for a lock another apt or dpkg holds.
apt_get() {
	waited=0
	while :; do
		out=$($SUDO apt-get -o DPkg::Lock::Timeout="$LOCK_WAIT" "$@" 2>&1) && return 0
		case $out in
		*"Could not get lock"* | *"Unable to acquire the dpkg frontend lock"* | *"Unable to lock"*) ;;
		*) echo "$out" >&2; return 1 ;;
		esac
		if [ "$waited" -ge "$LOCK_WAIT" ]; then
			echo "$out" >&2
			echo "deps: apt's lock still held after ${LOCK_WAIT}s" >&2
			return 1
		fi
		[ "$waited" = 0 ] && echo "deps: another apt or dpkg (unattended-upgrades after boot?) holds its lock; waiting up to ${LOCK_WAIT}s"
		sleep 5
		waited=$((waited + 5))
	done
}

apt_get update -qq && apt_get install -y -qq $missing || {
	echo "deps: apt-get install failed for:$missing" >&2
	exit 1
}
