#!/bin/sh
# tests/scripts/demo.sh - the reference demo end to end, as `make run` runs
# it: a fresh run passes its own checks (reader process, read-your-writes),
# a second run recovers and continues the same data, the journal verifies
# clean, `serve` stops cleanly on SIGTERM and leaves clean views that the
# CLI reads, and nothing is left in /dev/shm.
set -eu
BUILD=${BUILD:-build}
. tests/scripts/lib/serve.sh
serve_setup demo_t

"$BUILD/cqrs-orders" demo --dir "$dir" --name "$name" --duration 2 --fresh --quiet --customers 500 > "$dir/out1"
cat "$dir/out1"
grep -q "read-your-writes checks .* [1-9][0-9]* ok, 0 failed" "$dir/out1"
grep -q "0 events recovered" "$dir/out1"

"$BUILD/cqrs-orders" demo --dir "$dir" --name "$name" --duration 1 --quiet --customers 500 > "$dir/out2"
events=$(sed -n 's/.*; \([0-9]*\) events recovered/\1/p' "$dir/out2")
echo "second run recovered $events events"
[ "$events" -gt 0 ]

"$BUILD/cqrs" journal verify "$dir/journal"

serve_start none
"$BUILD/cqrs" stat "$name" > "$dir/stat.out"
grep -q "order_summaries" "$dir/stat.out"
"$BUILD/cqrs" ls "$name" | grep -q running
serve_stop
"$BUILD/cqrs" rm "$name"
if ls /dev/shm | grep -q "cqrs\.$name\."; then echo "segments left behind"; exit 1; fi
echo "demo script passed"
