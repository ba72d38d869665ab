#!/bin/sh
# bench/run.sh - runs every built benchmark program; each prints its
# comparison table (ours, baseline, ratio) at the end and writes raw results
# to $BUILD/bench/<program>.json. The tables are collected again at the end
# into $BUILD/bench/summary.txt. BENCH_ONLY=name restricts to one program.
BUILD=${BUILD:-build}
mkdir -p "$BUILD/bench"
summary="$BUILD/bench/summary.txt"
: > "$summary"
status=0
for bin in "$BUILD"/bench/bench_*; do
	[ -x "$bin" ] && [ -f "$bin" ] || continue
	n=$(basename "$bin")
	[ -n "${BENCH_ONLY:-}" ] && [ "$n" != "$BENCH_ONLY" ] && continue
	echo "### $n"
	"$bin" --benchmark_out="$BUILD/bench/$n.json" --benchmark_out_format=json \
		${BENCH_ARGS:-} > "$BUILD/bench/$n.out" 2>&1 || status=1
	cat "$BUILD/bench/$n.out"
	sed -n '/^== /,$p' "$BUILD/bench/$n.out" >> "$summary"
done
for drv in bench/drivers/*.sh; do
	[ -f "$drv" ] || continue
	[ -n "${BENCH_ONLY:-}" ] && [ "$(basename "$drv" .sh)" != "$BENCH_ONLY" ] && continue
	BUILD="$BUILD" sh "$drv" | tee -a "$summary" || status=1
done
echo
echo "######## summary (also in $summary)"
cat "$summary"
exit $status
