#!/bin/sh
# tests/scripts/demo.sh - the reference demo end to end, as `make run` runs
# it: a fresh run passes its own checks (reader process, read-your-writes),
# a second run recovers and continues the same data, the journal verifies
# clean, `serve` stops cleanly on SIGTERM and leaves clean views that the
# CLI reads, and nothing is left in /dev/shm. The output: one progress line
# a second with that second's rate (none absurd), both phases labelled in
# the summary (full load, paced at N/s, each with its latency), the views'
# place and memory, and --json one JSON document with the same figures.
set -eu
BUILD=${BUILD:-build}
. tests/scripts/lib/serve.sh
serve_setup demo_t

"$BUILD/cqrs-orders" demo --dir "$dir" --name "$name" --duration 2 --fresh --quiet --customers 500 > "$dir/out1"
cat "$dir/out1"
grep -q "read-your-writes checks .* [1-9][0-9]* ok, 0 failed" "$dir/out1"
grep -q "0 events recovered" "$dir/out1"
grep -q "^full load: commands/s (load thread flat out) *[1-9]" "$dir/out1"
grep -q "^full load: command-to-visible p50/p99/p99.9 .*queued behind the load" "$dir/out1"
grep -q "^paced at [1-9][0-9]*/s: commands/s *[1-9]" "$dir/out1"
grep -q "^paced: command-to-visible p50/p99/p99.9 *[0-9.]* / " "$dir/out1"
grep -q "The views stay for readers after the demo: /dev/shm/cqrs\.$name\.\*, 3 segment(s), [0-9.]* MiB" "$dir/out1"

# progress: a line a second, each with that second's rate (not an average
# over the first microseconds), the phase named
"$BUILD/cqrs-orders" demo --dir "$dir" --name "$name" --duration 3 --customers 500 \
	>"$dir/out_p" 2>"$dir/progress"
cat "$dir/progress"
lines=$(grep -c '^\[ *[0-9.]*s\] \(full load\|paced    \) commands *[0-9]*/s' "$dir/progress")
[ "$lines" -ge 2 ] && [ "$lines" -le 4 ] || { echo "progress: $lines lines for 3 s"; exit 1; }
awk '/^\[/ { for (i = 1; i <= NF; i++) if ($i == "commands") { r = $(i + 1); sub("/s", "", r);
	if (r + 0 > 50000000) { print "absurd rate " r; exit 1 } } }' "$dir/progress"
grep -q '^\[ *1\.[0-9]s\] full load' "$dir/progress"

"$BUILD/cqrs-orders" demo --dir "$dir" --name "$name" --duration 1 --customers 500 --json \
	--quiet --rate 5000 >"$dir/out_j"
python3 - "$dir/out_j" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["engine"] == sys.argv[2]
assert d["full_load"]["commands_per_s"] > 0 and d["full_load"]["target_commands_per_s"] == 0
p = d["paced_load"]
assert p["target_commands_per_s"] == 5000, p
assert 0 < p["commands_per_s"] < 5000 * 1.5, p
assert d["reader"]["read_your_writes_failed"] == 0
assert d["views"]["segments"] == 3 and d["views"]["bytes"] > 0, d["views"]
print("demo --json:", json.dumps(p))
PY

"$BUILD/cqrs-orders" demo --dir "$dir" --name "$name" --duration 1 --quiet --customers 500 > "$dir/out2"
events=$(sed -n 's/.*; \([0-9]*\) events recovered.*/\1/p' "$dir/out2")
echo "second run recovered $events events"
[ "$events" -gt 0 ]

"$BUILD/cqrs" journal verify "$dir/journal"
# the second run started from the first's stop snapshot and left its own
grep -q "from a snapshot" "$dir/out2"
"$BUILD/cqrs" snapshot verify "$dir"
"$BUILD/cqrs" snapshot ls "$dir" | grep -q valid
"$BUILD/cqrs-orders" snapshot verify "$dir" --name "$name" | grep -q "equals the replay"

serve_start none
"$BUILD/cqrs" stat "$name" > "$dir/stat.out"
grep -q "order_summaries" "$dir/stat.out"
grep -q "snapshot seq" "$dir/stat.out"
"$BUILD/cqrs" snapshot "$name" | grep -q "snapshot at seq"
"$BUILD/cqrs" ls "$name" | grep -q running
serve_stop
"$BUILD/cqrs" rm "$name"
if ls /dev/shm | grep -q "cqrs\.$name\."; then echo "segments left behind"; exit 1; fi
echo "demo script passed"
