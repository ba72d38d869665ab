#!/usr/bin/python3
"""bench/plot.py - latency percentile plots from the JSON that bench/run.sh
leaves in $BUILD/bench/ (Google Benchmark's --benchmark_out format).

    /usr/bin/python3 bench/plot.py [BENCH_DIR]     (default build/bench)

Writes next to the JSON, one PNG per figure whose program ran:

    command_to_visible.png  bench_engine.json: BM_EngineVisible* (ours)
                            beside BM_HandoffFloor (two bare threads
                            handing off: the floor)
    ring_hop.png            bench_ring.json: bcast_latency (ours) beside
                            stamp_floor (the same stamped measurement over
                            one cache line) and pingpong (RTT / 2, p50 only)
    gateway_round_trip.png  bench_gateway.json: BM_Gateway*RoundTrip (ours,
                            another process's view of the engine) beside
                            BM_InProc*RoundTrip (the same commands submitted
                            in the engine's process)

Each series is one benchmark run: its p50, p99 and p99.9 counters (p50_ns,
p99_ns, p999_ns; whichever it has) on a percentile axis (the distance to
100%, logarithmic), latency logarithmic; ours solid, baselines dashed. With
repetitions the median aggregate is used. Both sides of each figure come
from the same run, so they saw the same machine. Needs matplotlib
(Debian: python3-matplotlib); exits 0 with a note when a JSON is missing,
1 when matplotlib is.
"""
import json
import os
import re
import sys

FIGURES = [
    {
        "file": "command_to_visible.png",
        "json": "bench_engine.json",
        "title": "command to visible in a view",
        "ours": r"^BM_EngineVisible",
        "base": r"^BM_HandoffFloor",
    },
    {
        "file": "ring_hop.png",
        "json": "bench_ring.json",
        "title": "broadcast ring hop, one way",
        "ours": r"^bcast_latency",
        "base": r"^(stamp_floor|pingpong)",
    },
    {
        "file": "gateway_round_trip.png",
        "json": "bench_gateway.json",
        "title": "gateway round trip (submit to answer)",
        "ours": r"^BM_Gateway\w*RoundTrip",
        "base": r"^BM_InProc\w*RoundTrip",
    },
]

PCTS = [("p50_ns", 50.0), ("p99_ns", 99.0), ("p999_ns", 99.9)]


def runs(path):
    """name -> counters of each benchmark (the median aggregate if any)."""
    with open(path) as f:
        doc = json.load(f)
    plain, median = {}, {}
    for b in doc.get("benchmarks", []):
        name = b.get("run_name") or b.get("name", "")
        if b.get("error_occurred"):
            continue
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                median[name] = b
        else:
            plain.setdefault(name, b)  # the first repetition if no aggregate
    plain.update(median)
    return plain, doc.get("context", {})


def points(b):
    return [(q, float(b[k])) for k, q in PCTS if k in b and float(b[k]) > 0]


def short(name):
    name = re.sub(r"/(min_time|iterations|repeats):[^/]*", "", name)
    return name.replace("/real_time", "")


def plot(fig_spec, bench_dir, plt):
    path = os.path.join(bench_dir, fig_spec["json"])
    if not os.path.exists(path):
        print("plot: %s not there (did %s run?): %s skipped"
              % (path, fig_spec["json"][:-5], fig_spec["file"]))
        return None
    benches, ctx = runs(path)
    series = []
    for name, b in sorted(benches.items()):
        pts = points(b)
        if not pts:
            continue
        if re.search(fig_spec["ours"], name):
            series.append((short(name), pts, False))
        elif re.search(fig_spec["base"], name):
            series.append((short(name), pts, True))
    if not series:
        print("plot: %s has no percentile counters for %s: skipped"
              % (path, fig_spec["file"]))
        return None
    import math

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for label, pts, is_base in series:
        xs = [-math.log10(1 - q / 100.0) for q, _ in pts]
        ys = [v / 1e3 for _, v in pts]
        ax.plot(xs, ys, linestyle="--" if is_base else "-", marker="o",
                label=("baseline: " if is_base else "ours: ") + label)
    ticks = [(-math.log10(1 - q / 100.0), "p%g" % q) for _, q in PCTS]
    ax.set_xticks([t for t, _ in ticks])
    ax.set_xticklabels([l for _, l in ticks])
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (us, log)")
    when = ctx.get("date", "")
    host = "%s CPUs" % ctx.get("num_cpus", "?")
    ax.set_title("%s\n%s, %s" % (fig_spec["title"], when, host), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out = os.path.join(bench_dir, fig_spec["file"])
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print("plot: wrote %s (%d series)" % (out, len(series)))
    return out


def main(argv):
    bench_dir = argv[1] if len(argv) > 1 else "build/bench"
    if len(argv) > 2 or bench_dir.startswith("-"):
        print("usage: bench/plot.py [BENCH_DIR]", file=sys.stderr)
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot: no matplotlib for %s (Debian: apt-get install python3-matplotlib)"
              % sys.executable, file=sys.stderr)
        return 1
    for f in FIGURES:
        plot(f, bench_dir, plt)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
