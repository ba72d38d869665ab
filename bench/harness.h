/*
 * bench/harness.h - shared main() for the Google Benchmark programs.
 *
 * Every benchmark program measures our figure and its baseline in the same
 * run and ends with one table per area: case, ours, baseline, ratio. A row
 * names two benchmark runs (ours, baseline) and the metric to compare:
 * "items_per_second", "bytes_per_second", "real_time" (ns per iteration),
 * or any user counter (e.g. "p50_ns"). When benchmarks are repeated, the
 * median aggregate is used. Ratio is ours/baseline for higher-is-better
 * metrics and baseline/ours for lower-is-better ones, so >= 1.0 always
 * means "we are at least as good".
 *
 *   int main(int argc, char **argv) {
 *       return cqrs_bench::main(argc, argv, "ring", "Broadcast ring vs ck_ring", {
 *           {"1P-1C 64B msgs/s", "BM_Broadcast/1", "BM_CkSpsc/1", "items_per_second", true, ""},
 *       });
 *   }
 *
 * bench/run.sh passes --benchmark_out=$BUILD/bench/<program>.json.
 */
#ifndef CQRS_BENCH_HARNESS_H
#define CQRS_BENCH_HARNESS_H

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace cqrs_bench {

struct row {
	std::string label;    /* what is compared, with its unit */
	std::string ours;     /* benchmark name of our run */
	std::string base;     /* benchmark name of the baseline run ("" = none) */
	std::string metric;   /* items_per_second, bytes_per_second, real_time, or a counter */
	bool higher_is_better;
	std::string note;     /* e.g. "wait: yield (3 threads > 2 cores)" */
};

/* Run::skipped exists from Google Benchmark 1.8; 1.7 has error_occurred. */
template <class R> static inline auto run_skipped(const R &r, int) -> decltype((bool)r.skipped)
{
	return (bool)r.skipped;
}
template <class R> static inline bool run_skipped(const R &r, long)
{
	return r.error_occurred;
}

class collector : public benchmark::ConsoleReporter {
public:
	std::map<std::string, benchmark::BenchmarkReporter::Run> runs;

	void ReportRuns(const std::vector<Run> &reports) override
	{
		for (const Run &r : reports) {
			if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median")
				continue;
			std::string key = r.run_name.str();
			if (r.run_type == Run::RT_Aggregate || !runs.count(key) ||
			    runs[key].run_type != Run::RT_Aggregate)
				runs[key] = r;
		}
		ConsoleReporter::ReportRuns(reports);
	}

	bool value(const std::string &name, const std::string &metric, double *out) const
	{
		auto it = runs.find(name);
		if (it == runs.end() || run_skipped(it->second, 0))
			return false;
		const Run &r = it->second;
		if (metric == "real_time") {
			*out = r.GetAdjustedRealTime() * multiplier(r.time_unit) ;
			return true;
		}
		auto c = r.counters.find(metric);
		if (c == r.counters.end())
			return false;
		*out = c->second.value;
		return true;
	}

private:
	static double multiplier(benchmark::TimeUnit u)
	{
		switch (u) {
		case benchmark::kSecond: return 1e9;
		case benchmark::kMillisecond: return 1e6;
		case benchmark::kMicrosecond: return 1e3;
		default: return 1.0;
		}
	}
};

static inline std::string human(double v)
{
	char b[32];
	double a = std::fabs(v);
	if (a >= 1e9) snprintf(b, sizeof b, "%.2fG", v / 1e9);
	else if (a >= 1e6) snprintf(b, sizeof b, "%.2fM", v / 1e6);
	else if (a >= 1e4) snprintf(b, sizeof b, "%.1fk", v / 1e3);
	else snprintf(b, sizeof b, "%.3g", v);
	return b;
}

static inline void print_table(const collector &c, const char *area, const char *title,
			       const std::vector<row> &rows)
{
	printf("\n== %s: %s ==\n", area, title);
	printf("%-40s %12s %12s %8s  %s\n", "case", "ours", "baseline", "ratio", "baseline and notes");
	for (const row &r : rows) {
		double o = 0, b = 0;
		bool ho = c.value(r.ours, r.metric, &o);
		bool hb = !r.base.empty() && c.value(r.base, r.metric, &b);
		std::string ratio = "-";
		if (ho && hb && o > 0 && b > 0) {
			char t[16];
			snprintf(t, sizeof t, "%.2f", r.higher_is_better ? o / b : b / o);
			ratio = t;
		}
		printf("%-40s %12s %12s %8s  %s\n", r.label.c_str(), ho ? human(o).c_str() : "n/a",
		       hb ? human(b).c_str() : "-", ratio.c_str(),
		       r.note.empty() ? r.base.c_str() : r.note.c_str());
	}
	fflush(stdout);
}

static inline int main(int argc, char **argv, const char *area, const char *title,
		       const std::vector<row> &rows)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	collector c;
	benchmark::RunSpecifiedBenchmarks(&c);
	benchmark::Shutdown();
	print_table(c, area, title, rows);
	return 0;
}

} /* namespace cqrs_bench */

#endif
