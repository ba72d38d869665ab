#!/bin/sh
# bench/drivers/http.sh - HTTP reads through `cqrs metrics`' gateway beside
# a raw libmicrohttpd "hello" server (bench/drivers/http_hello.c: same
# library, same thread-per-connection mode, a fixed body), measured in the
# same run with the same wrk settings on 127.0.0.1: GET
# /views/order_summaries/<key> for keys 1..1024 round robin (a wrk Lua
# script; the hello server ignores the path), GET /metrics, and POST
# /commands/CreateOrder (one shared gateway connection, durability none). Prints
# requests/s and latency for each and the gateway's share of the hello
# rate (reads and hello alternate, best of TRIALS=3 each). Settings:
# WRK_THREADS (2), WRK_CONNS (8), BENCH_SECONDS (3).
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
# POST /commands/CreateOrder, order ids unique per wrk thread (each has its
# own Lua state; setup() numbers them).
cat >"$dir/post.lua" <<'LUA'
local threads = 0
function setup(thread)
	threads = threads + 1
	thread:set("base", threads * 1000000000 + 100000000)
end
local n = 0
request = function()
	n = n + 1
	local body = string.format('{"order_id":%d,"customer_id":3,"item_count":1,"total":5}', base + n)
	return wrk.format("POST", "/commands/CreateOrder", { ["Content-Type"] = "application/json" }, body)
end
LUA
curl -sf "http://127.0.0.1:$mport/views/order_summaries/1" >/dev/null ||
	{ echo "(not run: the gateway does not answer)"; exit 1; }

# wrk1 URL [SCRIPT]: "req/s p50 p99 non2xx" of one wrk --latency run.
wrk1() {
	wrk -t"$T" -c"$C" -d"${SECS}s" --latency ${2:+-s "$2"} "$1" 2>&1 | awk '
		/^Requests\/sec:/ { r = $2 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
		/Non-2xx/ { e = $NF } END { printf "%s %s %s %s\n", r, p50, p99, e + 0 }'
}
# Hello and view reads alternate, TRIALS (3) times each, best kept: the
# box's noise hits both alike.
TRIALS=${TRIALS:-3}
best_h="0 - - 0" best_v="0 - - 0"
i=0
while [ $i -lt "$TRIALS" ]; do
	h=$(wrk1 "http://127.0.0.1:$hport/" "$dir/keys.lua")
	v=$(wrk1 "http://127.0.0.1:$mport/" "$dir/keys.lua")
	best_h=$(printf '%s\n%s\n' "$best_h" "$h" | sort -g -r | head -n 1)
	best_v=$(printf '%s\n%s\n' "$best_v" "$v" | sort -g -r | head -n 1)
	i=$((i + 1))
done
m=$(wrk1 "http://127.0.0.1:$mport/metrics")
p=$(wrk1 "http://127.0.0.1:$mport/" "$dir/post.lua")
row() { # label "rps p50 p99 errs"
	set -- "$1" $2
	printf '%-34s %10.0f req/s  p50 %8s  p99 %8s%s\n' "$1" "$2" "$3" "$4" \
		"$([ "$5" != 0 ] && echo "  ($5 non-2xx)")"
}
printf 'wrk -t%s -c%s -d%ss, 127.0.0.1, %s cores; reads best of %s, alternating\n' "$T" "$C" "$SECS" \
	"$(nproc)" "$TRIALS"
row "hello (raw libmicrohttpd)" "$best_h"
row "GET /views/order_summaries/KEY" "$best_v"
row "GET /metrics" "$m"
row "POST /commands/CreateOrder" "$p"
echo "$best_v $best_h" | awk '{ if ($5 > 0) printf "gateway reads / hello: %.2f\n", $1 / $5 }'
