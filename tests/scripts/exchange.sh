#!/bin/sh
# tests/scripts/exchange.sh - the matching-engine demo end to end, as `make
# exchange` runs it: a fresh run shows both halves (full load, paced) with
# their latencies and passes its own checks (the market-data reader process
# saw no crossed book and no error, every read-your-writes check held), a
# second run recovers the same journal and continues, and
# nothing is left in /dev/shm.
set -eu
BUILD=${BUILD:-build}
. tests/scripts/lib/serve.sh
serve_setup exch_t

"$BUILD/cqrs-exchange" demo --dir "$dir" --name "$name" --duration 1.5 --fresh --quiet \
	--instruments 2 --accounts 20 > "$dir/out1"
cat "$dir/out1"
grep -q "^read-your-writes (reader process) *[1-9][0-9]* ok, 0 failed" "$dir/out1"
grep -q "^crossed tops seen by the reader *0$" "$dir/out1"
grep -q "^commands (load thread) *[1-9]" "$dir/out1"
grep -q "^trades (all runs over this journal) *[1-9]" "$dir/out1"
grep -q "^full load: order -> top_of_book p50/p99/p99.9 [0-9.]* / .*queued behind the load" "$dir/out1"
grep -q "^paced at [1-9][0-9]*/s: commands/s *[1-9]" "$dir/out1"
grep -q "^paced: order -> top_of_book p50/p99/p99.9 [0-9.]* / " "$dir/out1"
t1=$(sed -n 's/^trades (all runs over this journal) *\([0-9]*\)$/\1/p' "$dir/out1")

# recovered and continued: more trades over the same journal
"$BUILD/cqrs-exchange" demo --dir "$dir" --name "$name" --duration 1 --quiet \
	--instruments 2 --accounts 20 > "$dir/out2"
t2=$(sed -n 's/^trades (all runs over this journal) *\([0-9]*\)$/\1/p' "$dir/out2")
[ "$t2" -gt "$t1" ] || { echo "second run: $t2 trades, first $t1"; exit 1; }
"$BUILD/cqrs" journal verify "$dir/journal" >/dev/null

"$BUILD/cqrs" rm "$name" >/dev/null
if ls /dev/shm | grep -q "^cqrs\.$name\."; then
	echo "segments left behind:"; ls /dev/shm | grep "^cqrs\.$name\."; exit 1
fi
echo "exchange demo: ok ($t1 then $t2 trades)"
