#!/bin/sh
# bench/drivers/bindings.sh - View.get per second from Python and Lua beside
# the C reader, measured in the same run against the same engine.
#
# Starts a `cqrs-orders serve` engine (unique name, temp dir, durability
# none) populated by a short demo run, then reads order_summaries keys
# 1..1024 (the hot key set) round robin from three separate processes in
# turn: C (bench/drivers/bindings_get.c: cqrs_view_get into a buffer), Python
# (View.get -> Row) and Lua (v:get -> table); each measures BENCH_SECONDS
# (default 1) of its own CPU time per trial (Lua has no sub-second wall
# clock, so all three use CPU time), best of 3. The engine is idle while
# they run.
# Prints one table; a binding that is not built is reported as such.
set -eu
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-1}
TRIALS=3
NKEYS=1024
PY=${PYTHON:-}
if [ -z "$PY" ]; then
	if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
fi

. tests/scripts/lib/serve.sh
serve_setup bench_bind_

echo "== bindings: View.get from Python/Lua beside C =="
if [ ! -x "$BUILD/cqrs-orders" ] || [ ! -f "$BUILD/libcqrs_client.a" ]; then
	echo "(not run: build $BUILD/cqrs-orders and $BUILD/libcqrs_client.a first)"
	exit 0
fi
mkdir -p "$BUILD/bench"
cbin="$BUILD/bench/bindings_get"
${CC:-cc} -std=c11 -O2 -D_GNU_SOURCE -Iinclude -o "$cbin" bench/drivers/bindings_get.c \
	"$BUILD/libcqrs_client.a" -lxxhash -lck -pthread

serve_populate 100
serve_start none || { echo "(not run: serve did not come up)"; exit 1; }

# Each measurement prints "gets_per_sec N hits N misses N".
c_out=$("$cbin" "$name" order_summaries 1 $NKEYS "$SECS" $TRIALS)

py_out=""
pymod=$(ls "$BUILD"/python/cqrs/_cqrs*.so 2>/dev/null | head -n 1 || true)
if [ -n "$pymod" ]; then
	py_out=$(PYTHONPATH="$BUILD/python" "$PY" - "$name" $NKEYS "$SECS" $TRIALS <<'EOF'
import sys, time
import cqrs
name, nkeys, secs, trials = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
v = cqrs.connect(name, readonly=True).view("order_summaries")
keys = list(range(1, nkeys + 1))

def run(body):
    best, hits = 0.0, 0
    for _ in range(trials):
        n, t0 = 0, time.process_time()
        while True:
            hits += body()
            n += len(keys)
            dt = time.process_time() - t0
            if dt >= secs:
                break
        best = max(best, n / dt)
    return best, hits

def plain():
    get = v.get
    h = 0
    for k in keys:
        if get(k) is not None:
            h += 1
    return h

def field():
    get = v.get
    h = 0
    for k in keys:
        h += get(k).total >= 0
    return h

for label, body in (("get", plain), ("field", field)):
    best, hits = run(body)
    print("%s gets_per_sec %.0f hits %d" % (label, best, hits))
EOF
)
fi

lua_out=""
if [ -f "$BUILD/lua/cqrs.so" ] && command -v lua5.4 >/dev/null 2>&1; then
	lua_out=$(LUA_CPATH="$BUILD/lua/?.so;;" lua5.4 - "$name" $NKEYS "$SECS" $TRIALS <<'EOF'
local cqrs = require "cqrs"
local name, nkeys, secs, trials = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local v = assert(assert(cqrs.connect(name, { readonly = true })):view("order_summaries"))
local clock = os.clock -- CPU time of this single-threaded process
local function run(body)
	local best, hits = 0, 0
	for _ = 1, trials do
		local n, t0 = 0, clock()
		local dt
		repeat
			hits = hits + body()
			n = n + nkeys
			dt = clock() - t0
		until dt >= secs
		if n / dt > best then best = n / dt end
	end
	return best, hits
end
local function plain()
	local h = 0
	for k = 1, nkeys do if v:get(k) then h = h + 1 end end
	return h
end
local t = {}
local function reuse()
	local h = 0
	for k = 1, nkeys do if v:get(k, t) then h = h + 1 end end
	return h
end
for _, c in ipairs({ { "get", plain }, { "reuse", reuse } }) do
	local best, hits = run(c[2])
	print(string.format("%s gets_per_sec %.0f hits %d", c[1], best, hits))
end
EOF
)
fi

rate() { # "label" output -> the gets_per_sec of that line ("" if absent)
	printf '%s\n' "$2" | awk -v l="$1" '($1 == l || l == "") && $0 ~ /gets_per_sec/ {
		for (i = 1; i < NF; i++) if ($i == "gets_per_sec") { print $(i + 1); exit } }'
}
c=$(rate "" "$c_out")
row() { # label rate goal
	if [ -z "$2" ]; then
		printf '%-34s %12s %8s  %s\n' "$1" "not built" "" ""
		return
	fi
	awk -v l="$1" -v r="$2" -v c="$c" -v g="$3" 'BEGIN {
		verdict = ""
		if (g != "") verdict = (r >= g ? sprintf("goal >= %.0fM: met", g / 1e6) : sprintf("goal >= %.0fM: MISSED", g / 1e6))
		printf "%-34s %10.2fM %7.2fx  %s\n", l, r / 1e6, r / c, verdict }'
}
printf '%-34s %11s %8s  %s\n' "reader (1024 hot keys, 1 process)" "gets/s" "vs C" ""
row "C cqrs_view_get (row copy)" "$c" ""
row "Python View.get -> Row" "$(rate get "$py_out")" 1000000
row "Python View.get(k).total" "$(rate field "$py_out")" ""
row "Lua v:get(k) -> new table" "$(rate get "$lua_out")" 2000000
row "Lua v:get(k, t) reusing t" "$(rate reuse "$lua_out")" ""
misses=$(printf '%s\n' "$c_out" | awk '{ for (i = 1; i < NF; i++) if ($i == "misses") print $(i + 1) }')
[ "${misses:-0}" = 0 ] || echo "(warning: $misses of the C reader's gets missed: the hot keys are not all there)"
echo "(gets per CPU-second of the reader process, best of $TRIALS x ${SECS}s each, same engine and run; Python $("$PY" -c 'import sys; print(sys.version.split()[0])'), $(lua5.4 -v 2>&1 | cut -d' ' -f1-2); $(nproc) CPUs)"
