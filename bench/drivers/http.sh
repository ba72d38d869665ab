#!/bin/sh
# bench/drivers/http.sh - HTTP reads through `cqrs metrics`' gateway beside
# a raw libmicrohttpd "hello" server (bench/drivers/http_hello.c: same
# library, same thread-per-connection mode, a fixed body), measured in the
# same run with the same wrk settings on 127.0.0.1: GET
# /views/order_summaries/<key> for keys 1..1024 round robin (a wrk Lua
# script; the hello server ignores the path), and GET /metrics. Prints
# requests/s and latency for each and the gateway's share of the hello
# rate. Settings: WRK_THREADS (2), WRK_CONNS (8), BENCH_SECONDS (3).
# Needs wrk and libmicrohttpd-dev (make deps); says so when missing.
set -eu
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-3}
T=${WRK_THREADS:-2}
C=${WRK_CONNS:-8}

echo "== http: GET /views/... through cqrs metrics beside a raw libmicrohttpd hello =="
if ! command -v wrk >/dev/null 2>&1 || ! pkg-config --exists libmicrohttpd; then
	echo "(not run: needs wrk and libmicrohttpd-dev: make deps)"
	exit 0
fi
. tests/scripts/lib/serve.sh
HPID="" MPID=""
http_cleanup() {
	for p in $HPID $MPID; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	serve_cleanup
}
serve_setup bench_http_
trap http_cleanup EXIT
mkdir -p "$BUILD/bench"
hello="$BUILD/bench/http_hello"
${CC:-cc} -std=c11 -O2 -D_GNU_SOURCE -o "$hello" bench/drivers/http_hello.c \
	$(pkg-config --cflags --libs libmicrohttpd) -pthread

serve_populate 1100
serve_start none || { echo "(not run: serve did not come up)"; exit 1; }

# wait_port FILE: the port a server printed ("listening on ...:PORT" or "listening on PORT").
wait_port() {
	i=0
	until grep -q '^listening on' "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "(server did not start)"; exit 1; }
		sleep 0.05
	done
	sed -n 's/^listening on \(http:\/\/127.0.0.1:\)\{0,1\}//p' "$1"
}
"$hello" 0 >"$dir/h.out" &
HPID=$!
hport=$(wait_port "$dir/h.out")
"$BUILD/cqrs" metrics "$name" --listen 127.0.0.1:0 >"$dir/m.out" 2>"$dir/m.err" &
MPID=$!
mport=$(wait_port "$dir/m.out")
cat >"$dir/keys.lua" <<'LUA'
local n = 0
request = function()
	n = n % 1024 + 1
	return wrk.format("GET", "/views/order_summaries/" .. n)
end
LUA
curl -sf "http://127.0.0.1:$mport/views/order_summaries/1" >/dev/null ||
	{ echo "(not run: the gateway does not answer)"; exit 1; }

# run LABEL URL [SCRIPT]: "LABEL req/s p50 p99" from wrk --latency.
run() {
	out=$(wrk -t"$T" -c"$C" -d"${SECS}s" --latency ${3:+-s "$3"} "$2" 2>&1)
	rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')
	p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
	p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
	errs=$(printf '%s\n' "$out" | awk '/Non-2xx/ { print $NF }')
	printf '%-36s %12s req/s  p50 %8s  p99 %8s%s\n' "$1" "$rps" "$p50" "$p99" \
		"${errs:+  ($errs non-2xx)}"
	eval "rate_$4=$rps"
}
printf 'wrk -t%s -c%s -d%ss, 127.0.0.1, %s cores\n' "$T" "$C" "$SECS" "$(nproc)"
run "hello (raw libmicrohttpd)" "http://127.0.0.1:$hport/" "$dir/keys.lua" hello
run "GET /views/order_summaries/KEY" "http://127.0.0.1:$mport/" "$dir/keys.lua" view
run "GET /metrics" "http://127.0.0.1:$mport/metrics" "" metrics
awk -v v="$rate_view" -v h="$rate_hello" 'BEGIN { if (h > 0) printf "gateway reads / hello: %.2f\n", v / h }'
