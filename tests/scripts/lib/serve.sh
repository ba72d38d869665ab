# tests/scripts/lib/serve.sh - sourced by test and bench scripts that need a
# running engine: a unique engine name and data folder, `cqrs-orders serve`
# started and waited for until it runs, and cleanup on exit (SIGTERM the
# engine, remove its segments and the folder). Needs BUILD and a prefix:
#   . tests/scripts/lib/serve.sh; serve_setup lua_t
#   serve_populate 50; serve_start none; ... serve_stop
SERVE_PID=""

serve_cleanup() {
	if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -TERM "$SERVE_PID" 2>/dev/null || true
		wait "$SERVE_PID" 2>/dev/null || true
	fi
	"$BUILD/cqrs" rm "$name" >/dev/null 2>&1 || true
	rm -rf "$dir"
}

# serve_setup PREFIX: sets $name and $dir, installs the cleanup traps.
serve_setup() {
	name="$1$$"
	dir=$(mktemp -d "/tmp/cqrs-$1.XXXXXX")
	trap serve_cleanup EXIT
	trap 'exit 1' INT TERM
}

# serve_populate CUSTOMERS: a short fresh demo run fills the engine's data.
serve_populate() {
	"$BUILD/cqrs-orders" demo --dir "$dir" --name "$name" --duration 0.5 --fresh --quiet \
		--customers "$1" >/dev/null
}

# serve_start DURABILITY: starts serve in the background, waits until the
# engine is running (views published, gateway open); fails after 30 s.
serve_start() {
	"$BUILD/cqrs-orders" serve --dir "$dir" --name "$name" --durability "$1" \
		>"$dir/serve.out" 2>&1 &
	SERVE_PID=$!
	i=0
	until "$BUILD/cqrs" ls "$name" 2>/dev/null | grep -q running; do
		i=$((i + 1))
		if [ $i -ge 600 ] || ! kill -0 "$SERVE_PID" 2>/dev/null; then
			echo "serve did not come up:"; cat "$dir/serve.out"; return 1
		fi
		sleep 0.05
	done
}

# serve_stop: SIGTERM and wait; fails unless it stopped cleanly.
serve_stop() {
	kill -TERM "$SERVE_PID"
	wait "$SERVE_PID"
	SERVE_PID=""
	grep -q "stopped cleanly" "$dir/serve.out"
}
