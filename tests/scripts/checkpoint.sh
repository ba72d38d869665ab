#!/bin/sh
# tests/scripts/checkpoint.sh - view checkpoints through the CLI, against
# `cqrs-orders serve`: `cqrs checkpoint ENGINE` and `ENGINE VIEW` return
# with a checkpoint at the engine's applied seq, `cqrs checkpoint ls DIR`
# shows every view's newest one valid, `cqrs stat` (text and JSON) shows
# the copy mode and each projection's checkpoint seq; after a reboot (the
# engine SIGKILLed, every segment removed) the restart restores the views
# from the checkpoints instead of rebuilding them (its log says so, and
# `cqrs stat` counts no rebuild), and a view reads what it read before.
set -eu
BUILD=${BUILD:-build}
CQRS="$BUILD/cqrs"
. tests/scripts/lib/serve.sh
serve_setup ckpt_t
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

serve_populate 200
serve_start batch
"$CQRS" submit "$name" RegisterCustomer customer_id=900001 name=ckpt >/dev/null
"$CQRS" checkpoint "$name" >"$dir/out" 2>"$dir/err" || fail "checkpoint: $(cat "$dir/err")"
grep -q "checkpoint at seq" "$dir/out" || fail "checkpoint printed no seq"
"$CQRS" submit "$name" RegisterCustomer customer_id=900002 name=ckpt2 >/dev/null
"$CQRS" checkpoint "$name" customer_stats >"$dir/out" 2>"$dir/err" ||
	fail "checkpoint VIEW: $(cat "$dir/err")"
"$CQRS" checkpoint "$name" no_such_view >/dev/null 2>"$dir/err" && fail "a missing view checkpointed"
"$CQRS" checkpoint ls "$dir" >"$dir/out" || fail "checkpoint ls"
for v in order_summaries active_orders customer_stats; do
	grep -E "^$v +[0-9]+ +[0-9]+ +valid" "$dir/out" >/dev/null || fail "ls: no valid checkpoint of $v"
done
"$CQRS" stat "$name" >"$dir/out" || fail "stat"
grep -Eq "^checkpoints +(uffd|stop-copy)" "$dir/out" || fail "stat shows no checkpoint mode"
"$CQRS" stat "$name" --json >"$dir/out" || fail "stat --json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["checkpoints"]["mode"] in ("uffd","stop-copy"); assert all(p["checkpoint_seq"] > 0 for p in d["projections"])' \
	"$dir/out" || fail "stat --json: checkpoints"
"$CQRS" view get "$name" customer_stats 900002 >"$dir/before" || fail "view get"

# the reboot
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=""
"$CQRS" rm "$name" >/dev/null || fail "rm"
mv "$dir/serve.out" "$dir/serve.first"
serve_start batch
grep -q "restored from its checkpoint" "$dir/serve.out" || fail "restart did not restore: $(cat "$dir/serve.out")"
"$CQRS" stat "$name" --json >"$dir/out"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all(p["rebuilds"] == 0 for p in d["projections"]), d["projections"]; assert d["checkpoints"]["restored"] >= 2' \
	"$dir/out" || fail "the restart rebuilt views"
"$CQRS" view get "$name" customer_stats 900002 >"$dir/after" || fail "view get after the reboot"
cmp -s "$dir/before" "$dir/after" || fail "the row differs after the reboot"
serve_stop || fail "stop"
[ "$fails" -eq 0 ] && echo "checkpoint.sh: ok"
exit "$fails"
