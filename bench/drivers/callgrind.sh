#!/bin/sh
# bench/drivers/callgrind.sh - instructions per command of each engine
# thread, DEDICATED and SHARED threading, counted by callgrind over a fixed
# load (bench/drivers/callgrind_engine.c, N deposits, durability none).
# Instruction counts repeat for the same binary on a noisy host, so two
# trees compare by them where wall-clock figures cannot. Builds the driver
# against $BUILD/libcqrs.a (run `make` first). Threads are numbered in the
# order they start: 1 the submitting thread (its count includes start and
# stop), 2 the gateway thread, then the projector threads (DEDICATED only),
# the command thread last. Usage:
#   BUILD=build N=100000 sh bench/drivers/callgrind.sh
set -eu
BUILD=${BUILD:-build}
N=${N:-100000}
out=$(mktemp -d "${TMPDIR:-/tmp}/cqrs-cg.XXXXXX")
trap 'rm -rf "$out"' EXIT
cc -D_GNU_SOURCE -Iinclude -I. -std=c11 -O2 -g -pthread -o "$out/driver" \
	bench/drivers/callgrind_engine.c tests/lib/bank.c tests/lib/testutil.c "$BUILD/libcqrs.a" \
	$(pkg-config --libs liburing jemalloc libxxhash ck) -lm -lrt
for T in 0 1; do
	mode=$([ $T = 0 ] && echo dedicated || echo shared)
	valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/cg.$T.%p" \
		"$out/driver" $T "$N" >/dev/null 2>&1
	for f in "$out"/cg.$T.*-*; do
		tot=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$f" | head -n 1)
		thr=$(sed -n 's/^thread: //p' "$f" | head -n 1)
		[ "${tot:-0}" -gt "$N" ] || continue # threads that did nearly nothing
		echo "$mode thread $thr: $((tot / N)) instructions per command"
	done
done
