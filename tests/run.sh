#!/bin/sh
# tests/run.sh - runs the built test programs and ends with one summary line
# "N passed, N failed, N skipped". Usage: BUILD=build sh tests/run.sh [CATEGORY...]
# Categories: unit stress proc fuzz scripts (default: all). A program that
# exits 77 is a skip (it says why in its log). Logs: $BUILD/test-logs/.
BUILD=${BUILD:-build}
CATS=${*:-unit stress proc fuzz scripts}
LIMIT=${CQRS_TEST_TIMEOUT:-900}
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
pass=0 fail=0 skip=0 failed=""

run_one() { # name, command...
	name=$1; shift
	log="$LOGS/$(echo "$name" | tr '/' '_').log"
	start=$(date +%s)
	timeout -k 10 "$LIMIT" "$@" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); printf 'PASS  %-40s %4ss\n' "$name" "$secs"
	elif [ $rc -eq 77 ]; then
		skip=$((skip + 1)); printf 'SKIP  %-40s (%s)\n' "$name" "$(tail -n 1 "$log")"
	else
		fail=$((fail + 1)); failed="$failed $name"
		printf 'FAIL  %-40s rc=%s, last lines of %s:\n' "$name" "$rc" "$log"
		tail -n 25 "$log" | sed 's/^/      /'
	fi
}

for cat in $CATS; do
	case $cat in
	fuzz)
		for bin in "$BUILD"/tests/fuzz/fuzz_*; do
			[ -x "$bin" ] || continue
			n=$(basename "$bin")
			run_one "fuzz/$n" "$bin" "tests/fuzz/corpus/$n"
		done ;;
	scripts)
		for s in tests/scripts/*.sh; do
			[ -f "$s" ] || continue
			run_one "scripts/$(basename "$s" .sh)" env BUILD="$BUILD" sh "$s"
		done ;;
	*)
		for bin in "$BUILD"/tests/"$cat"/*; do
			[ -x "$bin" ] && [ -f "$bin" ] || continue
			run_one "$cat/$(basename "$bin")" "$bin"
		done ;;
	esac
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
