#!/bin/sh
# tests/scripts/cli.sh - the `cqrs` tool's contract with its user, against
# a running `cqrs-orders serve`: every subcommand refuses an unknown option
# and an extra argument (exit 2, the usage on stderr, nothing on stdout),
# answers --help (exit 0, the usage on stdout), --version, exit 1 for a
# rejection and for what does not exist, the --json outputs parse as JSON,
# `stat --watch` writes no control codes into a pipe and honours
# --interval/--count, messages name what is wrong (indexed fields, the
# journal under a data directory, a missing --dir, out-of-range numbers)
# and carry no internal function:line text, a killed engine shows as
# dead, and the man pages cqrs(1) and cqrs-orders(1) render cleanly.
set -eu
BUILD=${BUILD:-build}
CQRS="$BUILD/cqrs"
. tests/scripts/lib/serve.sh
serve_setup cli_t
fails=0

# run CMD...: runs `cqrs CMD...`, stdout to $dir/out, stderr to $dir/err,
# the exit status in $rc.
run() {
	rc=0
	"$CQRS" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
}
fail() {
	echo "FAIL: $*"
	echo "  stdout: $(head -c 600 "$dir/out")"
	echo "  stderr: $(head -c 600 "$dir/err")"
	fails=$((fails + 1))
}
# expect RC CMD...: the exit status is RC.
expect() {
	want=$1; shift
	run "$@"
	[ "$rc" -eq "$want" ] || fail "cqrs $* exited $rc, expected $want"
}
# usage_error CMD...: exit 2, "usage:" on stderr, stdout empty.
usage_error() {
	expect 2 "$@"
	grep -q "usage: cqrs" "$dir/err" || fail "cqrs $*: no usage on stderr"
	[ ! -s "$dir/out" ] || fail "cqrs $*: wrote to stdout on a usage error"
}
# help_ok CMD...: exit 0, "usage:" on stdout, stderr empty.
help_ok() {
	expect 0 "$@"
	grep -q "usage: cqrs" "$dir/out" || fail "cqrs $*: no usage on stdout"
	[ ! -s "$dir/err" ] || fail "cqrs $*: wrote to stderr for --help"
}
out_has() { grep -q -- "$1" "$dir/out" || fail "stdout lacks '$1'"; }
err_has() { grep -q -- "$1" "$dir/err" || fail "stderr lacks '$1'"; }
json_ok() { python3 -m json.tool "$dir/out" >/dev/null || fail "not one JSON document: $*"; }
# no internal "function:line: " prefixes in what users see
no_where() {
	if grep -Eq '[A-Za-z_]+:[0-9]+: ' "$dir/err" "$dir/out"; then fail "function:line text: $*"; fi
}

# --- the manual pages render without a warning ----------------------------------
if command -v groff >/dev/null 2>&1; then
	for page in man/cqrs.1 man/cqrs-orders.1; do
		if ! groff -mdoc -Tutf8 -ww -z "$page" 2>"$dir/err" || [ -s "$dir/err" ]; then
			fail "$page does not render cleanly: $(cat "$dir/err")"
		fi
		groff -mdoc -Tutf8 -P-cbu "$page" 2>/dev/null | grep -q "^SYNOPSIS" || fail "$page: no SYNOPSIS"
	done
	# every subcommand has its section in cqrs(1)
	for sub in ls stat view submit journal deadletters rm; do
		grep -q "^\.It Cm $sub" man/cqrs.1 || fail "cqrs(1) lacks $sub"
	done
else
	echo "note: groff not installed (Debian groff-base); man pages not rendered"
fi

serve_populate 50
serve_start batch
E=$name

# --- the top level -----------------------------------------------------------
expect 0 --version
grep -Eq '^cqrs [0-9]+\.[0-9]+\.[0-9]+$' "$dir/out" || fail "--version: $(cat "$dir/out")"
help_ok --help
out_has "exit status"
help_ok help stat
expect 2
expect 2 nosuchcommand
expect 2 --bogus
expect 2 --version extra

# --- every subcommand: --help, an unknown option, an extra argument ----------
for sub in ls stat view submit journal deadletters rm; do
	help_ok "$sub" --help
	help_ok "$sub" -h
done
help_ok view find --help
help_ok journal dump --help
usage_error ls --bogus
usage_error ls "$E" extra
usage_error stat "$E" --bogus
usage_error stat "$E" extra
usage_error stat
usage_error stat "$E" --interval 2
usage_error stat "$E" --watch --interval 0
usage_error stat "$E" --watch --interval 2x
usage_error stat "$E" --json --json
usage_error view
usage_error view nosuch "$E" order_summaries
usage_error view dump "$E" order_summaries --bogus
usage_error view dump "$E" order_summaries extra
usage_error view get "$E" order_summaries 1 extra
usage_error view get "$E" order_summaries 1 --snapshot
usage_error view find "$E" order_summaries customer_id 8 --bogus
usage_error view find "$E" order_summaries customer_id
usage_error submit "$E" RegisterCustomer customer_id=1 --bogus 1
usage_error submit "$E" RegisterCustomer notafield
usage_error submit "$E" --list extra
usage_error submit "$E" RegisterCustomer customer_id=5 --client-seq 0x5
usage_error submit "$E" RegisterCustomer --timeout-ms
usage_error journal
usage_error journal nosuch "$dir"
usage_error journal verify "$dir" --bogus
usage_error journal verify "$dir" extra
usage_error journal stat "$dir" --json
usage_error journal dump "$dir" --from
usage_error deadletters "$E" --bogus
usage_error deadletters "$E" --dir "$dir"
usage_error deadletters
usage_error rm "$E" --bogus
usage_error rm "$E" extra
usage_error rm

# a folder that is no engine's data directory is an error, not "0 found"
expect 1 snapshot ls "$dir/no-such-dir"
err_has "No such file"
mkdir "$dir/not-data"
expect 1 checkpoint ls "$dir/not-data"
err_has "not an engine's data directory"
usage_error snapshot ls "$dir" --bogus

# a number that does not fit says so
usage_error journal dump "$dir" --limit 18446744073709551616
err_has "out of range"
usage_error stat "$E" --watch --interval 7200
err_has "out of range"
expect 1 submit "$E" CreateOrder order_id=1 customer_id=1 item_count=4294967296
err_has "out of range"

# --- outcomes: 0 accepted, 1 the engine said no --------------------------------
expect 0 submit "$E" RegisterCustomer customer_id=900001 name=Cli
out_has "accepted seq="
expect 1 submit "$E" CreateOrder order_id=900002 customer_id=4343
out_has "rejected: "
expect 1 submit "$E" RegisterCustomer customer_id=900001 name=Again
out_has "rejected"
expect 1 submit "$E" RegisterCustomer customer_id=900001 --aggregate 900001 --expect-version 7
out_has "conflict"
expect 0 submit "$E" --list
out_has "CreateOrder"
expect 1 submit "$E" NoSuchCommand
expect 1 view get "$E" order_summaries 999999999
err_has "no such key"
expect 1 view get "$E" nosuchview 1
err_has "has no view 'nosuchview' (views: order_summaries"
no_where view get nosuchview
expect 1 view get "nosuch_engine_$$" order_summaries 1
no_where view get on a missing engine
expect 1 stat "nosuch_engine_$$"
no_where stat on a missing engine

# --- messages a user can act on -------------------------------------------------
expect 1 view find "$E" order_summaries nosuch 1
err_has "has no field 'nosuch' (indexed fields: customer_id)"
expect 1 view find "$E" order_summaries total 1
err_has "is not indexed (indexed fields: customer_id)"
expect 0 view find "$E" order_summaries customer_id 1 --json
expect 0 view dump "$E" customer_stats --snapshot
out_has "customer_id"
expect 1 deadletters --dir "/nonexistent_$$"
err_has "No such file or directory"
mkdir "$dir/empty"
expect 1 deadletters --dir "$dir/empty"
err_has "not an engine's data directory"
expect 0 deadletters --dir "$dir"
out_has "dead letter(s)"
expect 0 deadletters "$E"
expect 0 journal verify "$dir"
out_has "ok: "
expect 0 journal verify "$dir/journal"
expect 0 journal stat "$dir"
expect 0 journal dump "$dir" --limit 1 --json
python3 -c 'import json,sys; json.loads(open(sys.argv[1]).read())' "$dir/out" || fail "journal dump --json"
expect 1 journal verify "$dir/empty"
err_has "DATA_DIR/journal"
expect 1 journal verify "/nonexistent_$$"

# --- JSON documents ---------------------------------------------------------------
expect 0 stat "$E" --json
json_ok stat --json
python3 - "$dir/out" <<'PY' || fail "stat --json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "running" and d["alive"] is True, d["state"]
assert d["counters"]["accepted"] >= 1
names = [p["name"] for p in d["projections"]]
assert "order_summaries" in names and "customer_stats" in names, names
for p in d["projections"]:
    assert p["state"] in ("running", "catching up"), p
PY
expect 0 ls --json
json_ok ls --json
expect 0 ls "$E" --json
json_ok ls ENGINE --json
python3 - "$dir/out" "$E" <<'PY' || fail "ls --json content"
import json, sys
d = json.load(open(sys.argv[1]))
[e] = d["engines"]
assert e["name"] == sys.argv[2] and e["state"] == "running" and e["alive"] is True
views = {v["name"]: v for v in e["views"]}
assert views["customer_stats"]["rows"] >= 50, views
PY
expect 1 ls "nosuch_engine_$$" --json
json_ok ls missing --json

# --- stat --watch into a pipe: plain blocks, --interval honoured ----------------
start=$(date +%s%N)
expect 0 stat "$E" --watch --interval 0.3 --count 3
end=$(date +%s%N)
if grep -q "$(printf '\033')" "$dir/out"; then fail "stat --watch wrote control codes into a pipe"; fi
[ "$(grep -c '^engine ' "$dir/out")" -eq 3 ] || fail "stat --watch --count 3: not 3 blocks"
[ $(( (end - start) / 1000000 )) -ge 550 ] || fail "stat --watch --interval 0.3 took under 0.6 s"
expect 0 stat "$E" --watch --interval 0.1 --count 2 --json
[ "$(wc -l < "$dir/out")" -eq 2 ] || fail "stat --watch --json: not one document per line"
python3 -c '
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
assert docs[0]["rates_per_s"] is None and docs[1]["rates_per_s"] is not None
' "$dir/out" || fail "stat --watch --json documents"

# --- a killed engine is dead, not running ----------------------------------------
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=""
expect 0 stat "$E" --json
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["state"] == "dead" and d["alive"] is False, d["state"]
' "$dir/out" || fail "stat of a killed engine: not dead"
expect 0 stat "$E" --watch --interval 5
grep -q "state dead" "$dir/out" || fail "stat --watch of a dead engine"

# --- ls of a dead engine: dead, every segment with its size, orphans marked ------
cur=$(ls /dev/shm | grep "^cqrs\.$E\.v\.order_summaries\.[0-9]*$" | sort -t. -k5 -n | tail -1)
gen=${cur##*.}
orphan="cqrs.$E.v.order_summaries.$((gen + 7))"
head -c 12345 /dev/zero >"/dev/shm/$orphan"
expect 0 ls "$E"
grep -Eq "^$E +dead " "$dir/out" || fail "ls of a killed engine: not dead"
grep -Eq "^ +$orphan +view +12345 .*orphaned" "$dir/out" || fail "ls: orphan not listed with its size"
grep -Eq "^ +$cur +view .*current" "$dir/out" || fail "ls: current generation not listed"
expect 0 ls "$E" --json
json_ok ls dead --json
python3 - "$dir/out" "$orphan" "$cur" <<'PY' || fail "ls --json of a dead engine"
import json, sys
[e] = json.load(open(sys.argv[1]))["engines"]
assert e["state"] == "dead" and e["alive"] is False, e["state"]
segs = {s["name"]: s for s in e["segments"]}
assert segs[sys.argv[2]]["orphaned"] is True and segs[sys.argv[2]]["size"] == 12345, segs
assert segs[sys.argv[3]]["role"] == "current" and not segs[sys.argv[3]]["orphaned"], segs
assert [s for s in segs.values() if s["kind"] == "control"], segs
assert [n for n, s in segs.items() if s["orphaned"]] == [sys.argv[2]], segs
PY
usage_error rm --orphans
expect 0 rm --orphans "$E"
out_has "removed $orphan (12345 bytes)"
[ ! -e "/dev/shm/$orphan" ] || fail "rm --orphans left the orphan"
[ -e "/dev/shm/$cur" ] || fail "rm --orphans removed the current generation"
[ -e "/dev/shm/cqrs.$E.ctl" ] || fail "rm --orphans removed the control segment"
expect 0 rm --orphans "$E"
out_has "removed 0 orphaned"
# the engine restarts on what is left
serve_start none || fail "restart after rm --orphans"
expect 0 ls "$E" --json
python3 -c '
import json, sys
[e] = json.load(open(sys.argv[1]))["engines"]
assert e["state"] == "running" and not [s for s in e["segments"] if s["orphaned"]], e
' "$dir/out" || fail "ls after the restart"
expect 0 rm --orphans "$E"
[ -e "/dev/shm/cqrs.$E.ctl" ] || fail "rm --orphans of a running engine removed its control"
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=""
expect 0 rm "$E"

if [ "$fails" -ne 0 ]; then
	echo "cli: $fails failure(s)"
	exit 1
fi
echo "cli: all checks passed"
