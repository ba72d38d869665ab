#!/bin/sh
# bench/run.sh - runs every built benchmark program; each prints its
# comparison table (ours, baseline, ratio) at the end and writes raw results
# to $BUILD/bench/<program>.json. The tables are collected again at the end
# into $BUILD/bench/summary.txt. BENCH_ONLY=name restricts to one program.
# Then bench/plot.py draws the latency percentile plots (command to
# visible, ring hop, gateway round trip: ours beside the baseline of the
# same run) as PNG files next to the JSON, with Debian's python3-matplotlib
# (`make bench` installs it when missing; without it the plots are skipped
# with a note).
#
# With --update-docs (or BENCH_UPDATE_DOCS=1) the summary, the host's CPU
# model, core count and kernel, the date and the command line also replace
# the "Latest run" section of docs/PERFORMANCE.md (between its
# bench:latest:begin/end marker comments); --update-docs-only does only
# that, from the summary.txt an earlier run left.
BUILD=${BUILD:-build}
DOC=${BENCH_DOC:-docs/PERFORMANCE.md}
summary="$BUILD/bench/summary.txt"
update=${BENCH_UPDATE_DOCS:-0}
run=1
case "${1:-}" in
--update-docs) update=1 ;;
--update-docs-only) update=1; run=0 ;;
"") ;;
*) echo "usage: sh bench/run.sh [--update-docs | --update-docs-only]" >&2; exit 2 ;;
esac

# Rewrites the latest-run section of $DOC from $summary.
update_docs() {
	begin='<!-- bench:latest:begin -->'
	end='<!-- bench:latest:end -->'
	if [ ! -s "$summary" ]; then
		echo "bench/run.sh: no $summary to write into $DOC" >&2
		return 1
	fi
	if ! grep -qF "$begin" "$DOC" || ! grep -qF "$end" "$DOC"; then
		echo "bench/run.sh: $DOC lacks the bench:latest markers" >&2
		return 1
	fi
	cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
	[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
	[ -n "$cpu" ] || cpu=unknown
	block=$(mktemp "${TMPDIR:-/tmp}/cqrs-bench-doc.XXXXXX") || return 1
	{
		echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on \"$cpu\", $(nproc 2>/dev/null || echo '?')" \
			"cores, Linux $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'):"
		echo "\`BUILD=$BUILD${BENCH_ONLY:+ BENCH_ONLY=$BENCH_ONLY}${BENCH_ARGS:+ BENCH_ARGS='$BENCH_ARGS'} sh bench/run.sh\`"
		echo
		echo '```'
		cat "$summary"
		echo '```'
	} > "$block"
	out=$(mktemp "$DOC.XXXXXX") || { rm -f "$block"; return 1; }
	awk -v begin="$begin" -v end="$end" -v block="$block" '
		$0 == begin { print; while ((getline l < block) > 0) print l; skip = 1; next }
		$0 == end { skip = 0 }
		!skip { print }
	' "$DOC" > "$out" && cat "$out" > "$DOC" # in place: keeps the file's mode
	rc=$?
	rm -f "$block" "$out"
	[ $rc -eq 0 ] && echo "bench/run.sh: wrote the summary into $DOC"
	return $rc
}

status=0
if [ $run -eq 1 ]; then
	mkdir -p "$BUILD/bench"
	: > "$summary"
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
	if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
		/usr/bin/python3 bench/plot.py "$BUILD/bench" || status=1
	else
		echo "bench/run.sh: no python3-matplotlib: latency plots skipped"
	fi
fi
if [ "$update" = 1 ]; then
	update_docs || status=1
fi
exit $status
