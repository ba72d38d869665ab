#!/bin/sh
# tests/scripts/metrics.sh - `cqrs metrics` against a running `cqrs-orders
# serve` engine: /metrics scraped with curl and validated by `promtool check
# metrics` (Debian's prometheus package), while the engine runs, after it
# stopped, after it was killed and restarted (cqrs_engine_up, a new start
# time, the gateway reconnecting); the HTTP gateway from Python's urllib: a
# command accepted then read back with min_seq (read-your-writes),
# rejections, conflicts, duplicates, and every 4xx case (bad JSON, unknown
# type or field, wrong kinds, out of range, oversized bodies, bad
# arguments, wrong methods), a min_seq read timing out (504), a slow client
# beside others and closed by the idle timeout; the histograms' shape; JSON log
# lines (--log-format json, in cqrs metrics and cqrs-orders). Listens on
# 127.0.0.1 port 0 (a free port).
# Exits 77 without curl, promtool or python3.
set -eu
BUILD=${BUILD:-build}
for p in curl promtool python3; do
	command -v $p >/dev/null 2>&1 || { echo "metrics.sh: $p not installed (make deps)"; exit 77; }
done

. tests/scripts/lib/serve.sh
MPID=""
metrics_cleanup() {
	if [ -n "$MPID" ]; then kill -TERM "$MPID" 2>/dev/null || true; wait "$MPID" 2>/dev/null || true; fi
	serve_cleanup
}
serve_setup metrics_t
trap metrics_cleanup EXIT

fail() { echo "metrics.sh: FAIL: $*"; [ -f "$dir/m.err" ] && tail -n 20 "$dir/m.err"; exit 1; }

# Usage errors come before anything is served.
rc=0; "$BUILD/cqrs" metrics "$name" --listen nope >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--listen nope exited $rc, want 2"
rc=0; "$BUILD/cqrs" metrics "$name" --log-format xml >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--log-format xml exited $rc, want 2"

serve_populate 50
serve_start none || exit 1

# start_metrics ARGS...: cqrs metrics on a free port; sets $port, $MPID.
start_metrics() {
	"$BUILD/cqrs" metrics "$name" --listen 127.0.0.1:0 "$@" >"$dir/m.out" 2>"$dir/m.err" &
	MPID=$!
	i=0
	until grep -q '^listening on ' "$dir/m.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 200 ] && kill -0 "$MPID" 2>/dev/null || fail "cqrs metrics did not start"
		sleep 0.05
	done
	port=$(sed -n 's|^listening on http://127.0.0.1:||p' "$dir/m.out")
}
stop_metrics() {
	kill -TERM "$MPID"
	wait "$MPID" || fail "cqrs metrics exited $? on SIGTERM"
	MPID=""
}

# scrape OUT: /metrics into OUT, validated by promtool.
scrape() {
	curl -sf "http://127.0.0.1:$port/metrics" >"$1" || fail "scrape"
	promtool check metrics <"$1" >"$1.lint" 2>&1 || { cat "$1.lint"; fail "promtool check metrics"; }
}
value() { # FILE SERIES: the sample's value
	awk -v s="$2" '$1 == s { print $2 }' "$1"
}

start_metrics --max-wait 0.5 --max-body 4096 --idle-timeout 1 --log-format json
scrape "$dir/s1"
[ "$(value "$dir/s1" cqrs_engine_up)" = 1 ] || fail "cqrs_engine_up is not 1 while the engine runs"
grep -q '^cqrs_projection_applied_seq{projection="order_summaries"} [1-9]' "$dir/s1" ||
	fail "no applied seq for order_summaries"
grep -q '^cqrs_command_ack_latency_seconds_bucket{le="+Inf"}' "$dir/s1" || fail "no ack histogram"
grep -q '^# TYPE cqrs_command_ack_latency_seconds histogram' "$dir/s1" || fail "no histogram TYPE"
grep -q '^cqrs_events_total ' "$dir/s1" || fail "no cqrs_events_total"
start1=$(value "$dir/s1" cqrs_engine_start_time_seconds)
echo "metrics.sh: scrape while running: ok ($(grep -vc '^#' "$dir/s1") samples, promtool clean)"

# The gateway from Python's urllib.
PORT=$port "$(command -v python3)" - <<'EOF' || fail "gateway checks (Python urllib)"
import json, os, time, urllib.request, urllib.error
base = "http://127.0.0.1:%s" % os.environ["PORT"]

def req(method, path, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    r = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers

def expect(got, code, what):
    assert got[0] == code, "%s: HTTP %d, want %d: %r" % (what, got[0], code, got[1])
    return got[1]

oid = 7000000 + os.getpid() % 100000
order = {"order_id": oid, "customer_id": 3, "item_count": 2, "total": 1234,
         "shipping_address": "1 Rue de l'\u00c9glise"}
a = expect(req("POST", "/commands/CreateOrder", order), 200, "accepted")
assert a["status"] == "accepted" and a["seq"] > 0 and a["reason"] == "", a
row = expect(req("GET", "/views/order_summaries/%d?min_seq=%d" % (oid, a["seq"])), 200, "read")
assert row["order_id"] == oid and row["total"] == 1234 and row["customer_name"] == "customer-3", row
# min_seq as a header, and find with it
st, rows, hdr = req("GET", "/views/active_orders/find?field=customer_id&value=3&limit=100000",
                    headers={"Cqrs-Min-Seq": str(a["seq"])})
assert st == 200 and any(r["order_id"] == oid for r in rows["rows"]), (st, rows)
assert rows["applied_seq"] >= a["seq"]
one = expect(req("GET", "/views/active_orders/find?field=customer_id&value=3&limit=1"), 200, "limit")
assert len(one["rows"]) == 1 and one["truncated"] is True, one
# ship it with the aggregate's expected version: a wrong one conflicts
agg = oid | (1 << 62)
c = expect(req("POST", "/commands/ShipOrder?aggregate_id=%d&expected_version=99" % agg,
               {"order_id": oid}), 409, "conflict")
assert c["status"] == "conflict" and c["seq"] == 0, c
s = expect(req("POST", "/commands/ShipOrder?aggregate_id=%d&expected_version=1" % agg,
               {"order_id": oid}), 200, "expected version")
row = expect(req("GET", "/views/order_summaries/%d?min_seq=%d" % (oid, s["seq"])), 200, "shipped")
assert row["status"] == 2, row
# rejections: the domain says no
n = expect(req("POST", "/commands/CreateOrder", dict(order, order_id=oid + 2, total=-5)), 422, "negative")
assert n["status"] == "rejected" and "non-negative" in n["reason"], n
r = expect(req("POST", "/commands/CreateOrder", order), 422, "rejected")
assert r["status"] == "rejected" and "exists" in r["reason"], r
# duplicates: the same client_seq twice answers the first's seq
cs = 1000000 + os.getpid()
d1 = expect(req("POST", "/commands/CreateOrder?client_seq=%d" % cs, dict(order, order_id=oid + 1)), 200, "d1")
d2 = expect(req("POST", "/commands/CreateOrder?client_seq=%d" % cs, dict(order, order_id=oid + 1)), 200, "d2")
assert d1["status"] == "accepted" and d2["status"] == "duplicate" and d2["seq"] == d1["seq"], (d1, d2)

def bad(method, path, code, needle, **kw):
    b = expect(req(method, path, **kw), code, path)
    assert needle in b["error"], "%s: %r lacks %r" % (path, b, needle)

bad("POST", "/commands/CreateOrder", 400, "bad JSON", raw=b'{"order_id": ')
bad("POST", "/commands/CreateOrder", 400, "bad JSON", raw=b'[1, 2]')
bad("POST", "/commands/CreateOrder", 400, "empty body", raw=b'')
bad("POST", "/commands/CreateOrder", 400, "given twice", raw=b'{"order_id": 1, "order_id": 2}')
bad("POST", "/commands/CreateOrder", 400, "invalid UTF-8", raw=b'{"shipping_address": "\xff"}')
bad("POST", "/commands/CreateOrder", 400, "nested", body={"order_id": {"x": 1}})
bad("POST", "/commands/CreateOrder", 400, "null", body={"order_id": None})
bad("POST", "/commands/NoSuchCommand", 404, "CreateOrder", body={})
bad("POST", "/commands/../etc", 404, "no command type", body={})
bad("POST", "/commands/CreateOrder", 400, "no field 'bogus'", body={"bogus": 1})
bad("POST", "/commands/CreateOrder", 400, "wants a number", body={"order_id": "12"})
bad("POST", "/commands/CreateOrder", 400, "wants a string", body={"shipping_address": 5})
bad("POST", "/commands/CreateOrder", 400, "not a decimal integer", body={"order_id": 1.5})
bad("POST", "/commands/CreateOrder", 400, "out of range", body={"item_count": 2 ** 32})
bad("POST", "/commands/CreateOrder", 400, "out of range", body={"order_id": -1})
bad("POST", "/commands/CreateOrder", 400, "do not fit", body={"shipping_address": "x" * 65})
bad("POST", "/commands/CreateOrder", 400, "NUL", body={"shipping_address": "a\u0000b"})
bad("POST", "/commands/CreateOrder?client_seq=x", 400, "client_seq", body={})
bad("POST", "/commands/CreateOrder?expected_version=-1", 400, "expected_version", body={})
bad("POST", "/commands/CreateOrder", 413, "over 4096 bytes", raw=b" " * 5000)
bad("GET", "/commands/CreateOrder", 405, "POST")
bad("POST", "/views/order_summaries/1", 405, "GET", raw=b"{}")
bad("GET", "/views/nosuch/1", 404, "order_summaries")
bad("GET", "/views/order_summaries/abc", 400, "not a decimal integer")
bad("GET", "/views/order_summaries/%d" % (oid + 999), 404, "no row")
bad("GET", "/views/order_summaries/find?field=status&value=1", 400, "not indexed")
bad("GET", "/views/order_summaries/find?field=customer_id", 400, "field=FIELD&value=VALUE")
bad("GET", "/views/order_summaries/find?field=customer_id&value=1&limit=0", 400, "limit")
bad("GET", "/views/order_summaries/range?lo=1", 404, "no ordered index")
bad("GET", "/views/order_summaries/1?min_seq=abc", 400, "min_seq")
bad("GET", "/views/order_summaries", 404, "want /views/")
bad("GET", "/nothing", 404, "/metrics")
# A slow client (half a request, then silence) holds only its own
# connection: commands and reads go on, and the idle timeout closes it.
import socket
slow = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
slow.sendall(b"POST /commands/CreateOrder HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
t0 = time.time()
q = expect(req("POST", "/commands/CreateOrder", dict(order, order_id=oid + 3)), 200, "beside a slow client")
expect(req("GET", "/views/order_summaries/%d?min_seq=%d" % (oid + 3, q["seq"])), 200, "read beside it")
assert time.time() - t0 < 1, "a slow client delayed others"
slow.settimeout(10)
assert slow.recv(1) == b"", "the idle connection was not closed"
assert time.time() - t0 < 5, "the idle timeout did not close the slow client"
slow.close()
t0 = time.time()
bad("GET", "/views/order_summaries/%d?min_seq=%d" % (oid, 1 << 60), 504, "not yet min_seq")
assert time.time() - t0 < 5, "the min_seq wait was not bounded by --max-wait"
print("metrics.sh: gateway (urllib): accepted + read with min_seq, conflict, rejected, "
      "duplicate, every 4xx, a slow client beside others and timed out: ok")
EOF

# An oversized body with a Content-Length is refused before it is read,
# and one sent chunked once it grows past the limit.
code=$(head -c 100000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST \
	--data-binary @- "http://127.0.0.1:$port/commands/CreateOrder")
[ "$code" = 413 ] || fail "a 100000-byte body got $code, want 413"
code=$(head -c 100000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST \
	-H 'Transfer-Encoding: chunked' --data-binary @- "http://127.0.0.1:$port/commands/CreateOrder")
[ "$code" = 413 ] || fail "a 100000-byte chunked body got $code, want 413"

# The histograms after those commands: buckets cumulative, +Inf = _count =
# the commands counted, _sum within the buckets' bounds.
scrape "$dir/s1b"
"$(command -v python3)" - "$dir/s1b" <<'EOF' || fail "histogram checks"
import re, sys
b, cnt, s = [], None, None
for l in open(sys.argv[1]):
    m = re.match(r'cqrs_command_ack_latency_seconds_bucket\{le="([^"]+)"\} (\d+)$', l)
    if m: b.append((float(m.group(1)), int(m.group(2))))
    if l.startswith("cqrs_command_ack_latency_seconds_count "): cnt = int(l.split()[1])
    if l.startswith("cqrs_command_ack_latency_seconds_sum "): s = float(l.split()[1])
    if l.startswith("cqrs_commands_total "): total = int(l.split()[1])
assert b and b[-1][0] == float("inf") and b[-1][1] == cnt, (b[-1], cnt)
assert all(x[1] <= y[1] for x, y in zip(b, b[1:])), "buckets not cumulative"
assert all(x[0] < y[0] for x, y in zip(b, b[1:])), "le not increasing"
assert cnt >= 5 and cnt == total, (cnt, total)
# every value lies below the first le whose count is all of them
top = next(le for le, c in b if c == cnt)
assert 0 < s <= top * cnt, (s, top, cnt)
print("metrics.sh: ack histogram: %d buckets, count %d = commands, sum %.6f s: ok" % (len(b), cnt, s))
EOF

# The engine stops: up 0, still valid; it starts again: up 1, a new start
# time, and the gateway reconnects by itself.
serve_stop || fail "serve did not stop cleanly"
scrape "$dir/s2"
[ "$(value "$dir/s2" cqrs_engine_up)" = 0 ] || fail "cqrs_engine_up is not 0 after the engine stopped"
code=$(curl -s -o "$dir/c.out" -w '%{http_code}' -X POST -d '{"customer_id": 9}' \
	"http://127.0.0.1:$port/commands/DeactivateCustomer")
[ "$code" = 503 ] || fail "a command to a stopped engine got $code, want 503"
sleep 1 # start times are whole microseconds apart anyway; make it obvious
serve_start none || exit 1
scrape "$dir/s3"
[ "$(value "$dir/s3" cqrs_engine_up)" = 1 ] || fail "cqrs_engine_up is not 1 after the restart"
start3=$(value "$dir/s3" cqrs_engine_start_time_seconds)
[ "$start3" != "$start1" ] || fail "the start time did not change across the restart"
code=$(curl -s -o "$dir/c.out" -w '%{http_code}' -X POST -d '{"customer_id": 9}' \
	"http://127.0.0.1:$port/commands/DeactivateCustomer")
[ "$code" = 200 ] || { cat "$dir/c.out"; fail "a command after the restart got $code, want 200"; }
echo "metrics.sh: engine stopped (up 0, 503) and restarted (up 1, new start time, gateway back): ok"

# kill -9: up 0 while dead, then 1 once a new engine replaced it.
kill -KILL "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""
scrape "$dir/s4"
[ "$(value "$dir/s4" cqrs_engine_up)" = 0 ] || fail "cqrs_engine_up is not 0 while the engine is dead"
grep -q 'state="dead"' "$dir/s4" || fail "cqrs_engine_info does not say dead"
serve_start none || exit 1
# (serve_start's `cqrs ls` check can see the dead engine's segment before the
# new engine replaced it: wait for the scrape to say so, up to 30 s.)
i=0
while :; do
	scrape "$dir/s5"
	[ "$(value "$dir/s5" cqrs_engine_up)" = 1 ] && break
	i=$((i + 1))
	[ $i -lt 300 ] || fail "cqrs_engine_up is not 1 30 s after a restart from a crash"
	sleep 0.1
done
code=$(curl -s -o "$dir/c.out" -w '%{http_code}' "http://127.0.0.1:$port/views/customer_stats/3")
[ "$code" = 200 ] || { cat "$dir/c.out"; fail "a read after the crash restart got $code"; }
echo "metrics.sh: engine killed (up 0, state dead) and restarted (up 1, reads): ok"

stop_metrics
# --log-format json: every stderr line one JSON object with time, level, message.
"$(command -v python3)" - "$dir/m.err" <<'EOF' || fail "log lines are not JSON"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log lines"
for l in lines:
    o = json.loads(l)
    assert set(o) == {"time", "level", "message"} and o["time"].endswith("Z"), o
assert any("is not running" in json.loads(l)["message"] for l in lines)
print("metrics.sh: %d JSON log lines: ok" % len(lines))
EOF

# cqrs-orders --log-format json: the engine's log lines are JSON lines too.
mkdir -p "$dir/j"
"$BUILD/cqrs-orders" serve --dir "$dir/j" --name "${name}j" --durability none --log-format json \
	>"$dir/j.out" 2>"$dir/j.err" &
jp=$!
i=0
until grep -q serving "$dir/j.out" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 600 ] && kill -0 $jp 2>/dev/null || fail "serve --log-format json did not start"
	sleep 0.05
done
kill -TERM $jp; wait $jp || fail "serve --log-format json did not stop cleanly"
"$BUILD/cqrs" rm "${name}j" >/dev/null 2>&1 || true
"$(command -v python3)" - "$dir/j.err" <<'EOF' || fail "cqrs-orders log lines are not JSON"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no log lines"
for l in lines:
    o = json.loads(l)
    assert set(o) == {"time", "level", "message"} and o["level"] in ("error", "warn", "info", "debug"), o
print("metrics.sh: cqrs-orders serve --log-format json: %d JSON log lines: ok" % len(lines))
EOF

# --no-gateway serves /metrics only.
start_metrics --no-gateway
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "http://127.0.0.1:$port/commands/CreateOrder")
[ "$code" = 404 ] || fail "--no-gateway: a command got $code, want 404"
scrape "$dir/s6"
stop_metrics
echo "metrics.sh: ok"
