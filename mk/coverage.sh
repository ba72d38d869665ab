#!/bin/sh
# mk/coverage.sh - prints line coverage of the library and the cqrs tool
# from the counters a `make coverage` run left beside the objects in
# BUILD/obj: one line per folder, the total, then the least-covered files.
# Uses gcov itself (gcc's, no other package): `gcov -n` reads each object's
# .gcno/.gcda and writes no .gcov files; a file no test ran has no .gcda and
# counts as 0%. Usage: sh mk/coverage.sh BUILD [N_FILES]
set -u
BUILD=${1:-build/coverage}
WORST=${2:-12}
FOLDERS="core ringbuf shm client engine engine/journal engine/model tools"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT

for d in $FOLDERS; do
	for src in "$d"/*.c; do
		[ -f "$BUILD/obj/${src%.c}.gcno" ] || continue
		# gcov prints "File 'x'" then "Lines executed:P% of N" for the
		# source and for every header with code; keep the source's.
		gcov -n -o "$BUILD/obj/$d" "$src" 2>/dev/null | awk -v src="$src" -v d="$d" '
			/^File / { f = substr($0, 7, length($0) - 7); next }
			/^Lines executed:/ && f == src {
				split($0, a, /[:% ]+/); p = a[3]; n = a[5];
				printf "%s %s %d %d\n", d, src, int(p * n / 100 + 0.5), n; f = "" }'
	done
done > "$rows"

if [ ! -s "$rows" ]; then
	echo "coverage: no coverage data under $BUILD/obj (run make coverage)" >&2
	exit 1
fi
echo
echo "line coverage ($BUILD)"
awk -v order="$FOLDERS" '
	{ hit[$1] += $3; all[$1] += $4; th += $3; ta += $4 }
	END {
		n = split(order, o, " ");
		for (i = 1; i <= n; i++)
			if (all[o[i]] > 0)
				printf "  %-16s %6.1f%%  %6d of %6d lines\n", o[i], 100 * hit[o[i]] / all[o[i]], hit[o[i]], all[o[i]];
		printf "  %-16s %6.1f%%  %6d of %6d lines\n", "total", 100 * th / ta, th, ta }' "$rows"
echo "least-covered files"
awk '$4 > 0 { printf "%8.1f%% %6d of %5d  %s\n", 100 * $3 / $4, $3, $4, $2 }' "$rows" |
	sort -n | head -n "$WORST" | sed 's/^/  /'
