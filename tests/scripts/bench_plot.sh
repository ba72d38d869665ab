#!/bin/sh
# tests/scripts/bench_plot.sh - bench/plot.py on small JSON files of the
# shape Google Benchmark writes (a median aggregate for one run, plain runs
# for the others, a run without percentiles, an errored one): the three PNG
# files appear next to the JSON, and a missing JSON is a note, not a
# failure. Exits 77 without Debian's python3-matplotlib.
set -eu
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || { echo "bench_plot.sh: no python3-matplotlib"; exit 77; }
tmp=$(mktemp -d /tmp/cqrs-plot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ctx='"context": {"date": "2026-01-01T00:00:00+00:00", "num_cpus": 2}'
cat > "$tmp/bench_engine.json" <<J
{$ctx, "benchmarks": [
 {"name": "BM_EngineVisible/0/100000/0/min_time:2.000/real_time", "run_type": "iteration", "p50_ns": 40000, "p99_ns": 4000000, "p999_ns": 9000000},
 {"name": "BM_HandoffFloor/100000/min_time:2.000/real_time", "run_type": "iteration", "p50_ns": 2500, "p99_ns": 7000000, "p999_ns": 16000000},
 {"name": "BM_EngineCommands/1", "run_type": "iteration", "items_per_second": 1e6},
 {"name": "BM_EngineVisible/1/100000/0", "run_type": "iteration", "error_occurred": true}]}
J
cat > "$tmp/bench_ring.json" <<J
{$ctx, "benchmarks": [
 {"name": "bcast_latency_median", "run_name": "bcast_latency", "run_type": "aggregate", "aggregate_name": "median", "p50_ns": 95, "p99_ns": 116, "p999_ns": 23000},
 {"name": "bcast_latency", "run_name": "bcast_latency", "run_type": "iteration", "p50_ns": 1, "p99_ns": 1, "p999_ns": 1},
 {"name": "stamp_floor", "run_name": "stamp_floor", "run_type": "iteration", "p50_ns": 76, "p99_ns": 86, "p999_ns": 32000},
 {"name": "pingpong", "run_name": "pingpong", "run_type": "iteration", "p50_ns": 42}]}
J
out=$(/usr/bin/python3 bench/plot.py "$tmp")
echo "$out"
echo "$out" | grep -q "bench_gateway.json not there"
for f in command_to_visible ring_hop; do
	[ -s "$tmp/$f.png" ] && head -c 8 "$tmp/$f.png" | grep -q PNG || { echo "no $f.png"; exit 1; }
done
echo "$out" | grep -q "command_to_visible.png (2 series)"
echo "$out" | grep -q "ring_hop.png (3 series)"
[ ! -e "$tmp/gateway_round_trip.png" ]
echo "bench_plot.sh: ok"
