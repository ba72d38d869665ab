/*
 * bench/bench_journal.cc - the journal against the raw limit of the same
 * filesystem, measured in the same run.
 *
 *   BM_JournalAppend/P/M/B   append B events of P payload bytes, flush (one
 *                            group commit), poll; M = 0 none, 1 batch
 *                            (fdatasync per batch). 4 batch buffers in
 *                            flight, 64 MiB preallocated segments (rolls
 *                            included). Counters: events/s, record bytes/s,
 *                            flush -> on_durable latency p50/p99/p999.
 *   BM_RawWrite/R/M/B        baseline: one pwrite of B records of R bytes,
 *                            then (M = 1) fdatasync, in a loop, into a
 *                            preallocated file: the plain write + fdatasync
 *                            loop at the same batch size.
 *   BM_Replay                iterate a 256 MiB journal from page cache with
 *                            every checksum verified.
 *   BM_RawRead               baseline: read() the same segment files.
 *
 * Files live in a temp folder under $TMPDIR (or /tmp), removed at exit.
 */
#include "bench/harness.h"

#include <deque>
#include <vector>
#include <algorithm>
#include <string>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern "C" {
#include "core/clock.h"
#include "engine/journal/journal.h"
}

namespace {

constexpr int kBatch = 1024; /* events per group commit */

std::string g_root;

int rm_one(const char *path, const struct stat *, int, struct FTW *)
{
	return remove(path);
}

void rmrf(const std::string &path)
{
	nftw(path.c_str(), rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const std::string &root()
{
	if (g_root.empty()) {
		const char *t = getenv("TMPDIR");
		char buf[256];
		snprintf(buf, sizeof buf, "%s/cqrs_bench_journal.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(buf))
			abort();
		g_root = buf;
		atexit([] { rmrf(g_root); });
	}
	return g_root;
}

struct latency {
	std::deque<std::pair<uint64_t, uint64_t>> pending; /* (last seq at flush, t) */
	std::vector<uint64_t> ns;
};

void on_durable(void *arg, uint64_t, uint64_t last, const void *, size_t)
{
	latency *l = static_cast<latency *>(arg);
	uint64_t now = cqrs__mono_ns();

	while (!l->pending.empty() && l->pending.front().first <= last) {
		l->ns.push_back(now - l->pending.front().second);
		l->pending.pop_front();
	}
}

void percentiles(benchmark::State &state, std::vector<uint64_t> &v)
{
	if (v.empty())
		return;
	std::sort(v.begin(), v.end());
	auto at = [&](double q) { return (double)v[std::min(v.size() - 1, (size_t)(q * (double)v.size()))]; };
	state.counters["p50_ns"] = at(0.50);
	state.counters["p99_ns"] = at(0.99);
	state.counters["p999_ns"] = at(0.999);
}

void BM_JournalAppend(benchmark::State &state)
{
	const uint32_t payload = (uint32_t)state.range(0);
	const cqrs_durability mode = state.range(1) ? CQRS_DURABLE_BATCH : CQRS_DURABLE_NONE;
	const int batch = (int)state.range(2);
	const uint64_t rec = cqrs__jrec_span_for(payload);
	std::string dir = root() + "/append";
	std::vector<uint8_t> src(payload, 0x5a);
	latency lat;
	cqrs_journal_config c;
	cqrs_journal *j;

	rmrf(dir);
	sync(); /* start without the previous run's dirty pages being written back */
	memset(&c, 0, sizeof c);
	c.dir = dir.c_str();
	c.engine = "bench";
	c.durability = mode;
	c.batch_bytes = (uint32_t)((rec * (uint64_t)batch + 8191) & ~(uint64_t)4095);
	c.queue_depth = 4;
	c.on_durable = on_durable;
	c.durable_arg = &lat;
	if (cqrs__journal_open(&j, &c, NULL) != 0) {
		state.SkipWithError(cqrs_last_error());
		return;
	}
	cqrs_journal_event ev = {};
	ev.flags = CQRS_JREC_CMD_END;
	for (auto _ : state) {
		for (int i = 0; i < batch; i++) {
			void *p;
			int rc;
			ev.aggregate_id = (uint64_t)i;
			while ((rc = cqrs__journal_claim(j, &ev, payload, &p)) == -EAGAIN)
				cqrs__journal_wait(j, 1000000000u);
			if (rc) {
				state.SkipWithError(cqrs_strerror(rc));
				break;
			}
			memcpy(p, src.data(), payload);
			cqrs__journal_commit(j);
		}
		lat.pending.emplace_back(cqrs__journal_next_seq(j) - 1, cqrs__mono_ns());
		cqrs__journal_flush(j);
		cqrs__journal_poll(j);
	}
	while (cqrs__journal_durable_seq(j) + 1 < cqrs__journal_next_seq(j))
		if (cqrs__journal_wait(j, 1000000000u) < 0)
			break;
	cqrs_journal_stats st;
	cqrs__journal_stats_get(j, &st);
	cqrs__journal_close(j);
	rmrf(dir);
	state.SetItemsProcessed(state.iterations() * batch);
	state.SetBytesProcessed(state.iterations() * batch * (int64_t)rec);
	state.counters["io_uring"] = st.io_uring;
	percentiles(state, lat.ns);
}

void BM_RawWrite(benchmark::State &state)
{
	const uint64_t rec = (uint64_t)state.range(0);
	const bool datasync = state.range(1) != 0;
	const int batch = (int)state.range(2);
	const size_t len = rec * (size_t)batch;
	const off_t file_size = (off_t)4 << 30;
	std::string path = root() + "/raw.bin";
	std::vector<uint8_t> buf(len, 0x5a);
	std::vector<uint64_t> lat;
	off_t off = 0;
	int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || fallocate(fd, 0, 0, file_size) != 0) {
		state.SkipWithError("cannot preallocate the raw file");
		if (fd >= 0)
			close(fd);
		return;
	}
	::sync(); /* as in BM_JournalAppend */
	for (auto _ : state) {
		uint64_t t = cqrs__mono_ns();
		if (off + (off_t)len > file_size)
			off = 0;
		if (pwrite(fd, buf.data(), len, off) != (ssize_t)len || (datasync && fdatasync(fd) != 0)) {
			state.SkipWithError("write failed");
			break;
		}
		off += (off_t)len;
		lat.push_back(cqrs__mono_ns() - t);
	}
	close(fd);
	unlink(path.c_str());
	state.SetItemsProcessed(state.iterations() * batch);
	state.SetBytesProcessed(state.iterations() * (int64_t)len);
	percentiles(state, lat);
}

/* ---- replay -------------------------------------------------------------------- */

std::string replay_dir()
{
	static std::string dir;
	if (dir.empty()) {
		dir = root() + "/replay";
		cqrs_journal_config c;
		cqrs_journal *j;
		std::vector<uint8_t> src(64, 0x33);
		memset(&c, 0, sizeof c);
		c.dir = dir.c_str();
		c.engine = "bench";
		c.durability = CQRS_DURABLE_NONE;
		if (cqrs__journal_open(&j, &c, NULL) != 0)
			abort();
		cqrs_journal_event ev = {};
		ev.flags = CQRS_JREC_CMD_END;
		const uint64_t n = (256ull << 20) / cqrs__jrec_span_for(64);
		for (uint64_t i = 0; i < n; i++) {
			ev.aggregate_id = i;
			while (cqrs__journal_append(j, &ev, src.data(), 64, NULL) == -EAGAIN)
				cqrs__journal_wait(j, 1000000000u);
		}
		cqrs__journal_close(j);
		/* From page cache: one untimed pass reads everything in. */
		cqrs_journal_iter *it;
		const cqrs_jrec *r;
		if (cqrs__journal_iter_open(&it, dir.c_str(), 1) == 0) {
			while (cqrs__journal_iter_next(it, &r) == 1)
				;
			cqrs__journal_iter_close(it);
		}
	}
	return dir;
}

void BM_Replay(benchmark::State &state)
{
	std::string dir = replay_dir();
	uint64_t events = 0, bytes = 0;

	for (auto _ : state) {
		cqrs_journal_iter *it;
		const cqrs_jrec *r;
		uint64_t sum = 0;
		int rc;

		if (cqrs__journal_iter_open(&it, dir.c_str(), 1) != 0) {
			state.SkipWithError(cqrs_last_error());
			return;
		}
		while ((rc = cqrs__journal_iter_next(it, &r)) == 1) {
			sum += r->seq;
			events++;
			bytes += cqrs__jrec_span(r);
		}
		cqrs__journal_iter_close(it);
		if (rc != 0) {
			state.SkipWithError(cqrs_last_error());
			return;
		}
		benchmark::DoNotOptimize(sum);
	}
	state.SetItemsProcessed((int64_t)events);
	state.SetBytesProcessed((int64_t)bytes);
}

void BM_RawRead(benchmark::State &state)
{
	std::string dir = replay_dir();
	std::vector<uint8_t> buf(1 << 20);
	int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
	uint64_t *segs = NULL;
	int n = cqrs__jseg_list(dfd, &segs);
	uint64_t bytes = 0;
	const uint64_t events_per_pass = (256ull << 20) / cqrs__jrec_span_for(64);

	close(dfd);
	for (auto _ : state) {
		for (int i = 0; i < n; i++) {
			char name[32];
			cqrs__jseg_name(name, sizeof name, segs[i]);
			int fd = open((dir + "/" + name).c_str(), O_RDONLY);
			ssize_t got;
			while ((got = read(fd, buf.data(), buf.size())) > 0)
				bytes += (uint64_t)got;
			close(fd);
		}
		benchmark::DoNotOptimize(buf.data());
	}
	free(segs);
	state.SetItemsProcessed(state.iterations() * (int64_t)events_per_pass);
	state.SetBytesProcessed((int64_t)bytes);
}

} /* namespace */

/* Each case beside its baseline, in that order, so both see the same
 * state of the disk; medians of 3 runs. */
#define CASE(P, M, R)                                                                            \
	BENCHMARK(BM_JournalAppend)->Args({P, M, kBatch})->UseRealTime()->Repetitions(3)         \
		->ReportAggregatesOnly(true)->Unit(benchmark::kMicrosecond);                     \
	BENCHMARK(BM_RawWrite)->Args({R, M, kBatch})->UseRealTime()->Repetitions(3)              \
		->ReportAggregatesOnly(true)->Unit(benchmark::kMicrosecond);
CASE(64, 1, 136)
CASE(256, 1, 328)
CASE(64, 0, 136)
CASE(256, 0, 328)
BENCHMARK(BM_Replay)->UseRealTime()->Repetitions(3)->ReportAggregatesOnly(true)
	->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawRead)->UseRealTime()->Repetitions(3)->ReportAggregatesOnly(true)
	->Unit(benchmark::kMillisecond);

int main(int argc, char **argv)
{
	const std::string A = "BM_JournalAppend/", R = "BM_RawWrite/", T = "/1024/repeats:3/real_time";
	return cqrs_bench::main(argc, argv, "journal",
		"journal vs a plain pwrite(+fdatasync) loop, 1024 events per batch, same filesystem", {
		{"append 64B batch, durable events/s", A + "64/1" + T, R + "136/1" + T, "items_per_second",
		 true, "raw pwrite+fdatasync loop, 136 B records"},
		{"append 64B batch, MB/s", A + "64/1" + T, R + "136/1" + T, "bytes_per_second", true,
		 "same; goal ratio >= 0.80"},
		{"append 256B batch, durable events/s", A + "256/1" + T, R + "328/1" + T,
		 "items_per_second", true, "raw pwrite+fdatasync loop, 328 B records"},
		{"append 256B batch, MB/s", A + "256/1" + T, R + "328/1" + T, "bytes_per_second", true,
		 "same; goal ratio >= 0.80"},
		{"append 64B none, events/s", A + "64/0" + T, R + "136/0" + T, "items_per_second", true,
		 "raw pwrite loop (page cache)"},
		{"append 64B none, MB/s", A + "64/0" + T, R + "136/0" + T, "bytes_per_second", true, "same"},
		{"append 256B none, events/s", A + "256/0" + T, R + "328/0" + T, "items_per_second", true,
		 "raw pwrite loop (page cache)"},
		{"append 256B none, MB/s", A + "256/0" + T, R + "328/0" + T, "bytes_per_second", true, "same"},
		{"batch 64B flush->durable p50 (ns)", A + "64/1" + T, R + "136/1" + T, "p50_ns", false,
		 "raw: one write+fdatasync; ours: 4 batches in flight"},
		{"batch 64B flush->durable p99 (ns)", A + "64/1" + T, R + "136/1" + T, "p99_ns", false, "same"},
		{"batch 64B flush->durable p99.9 (ns)", A + "64/1" + T, R + "136/1" + T, "p999_ns", false,
		 "same"},
		{"batch 256B flush->durable p50 (ns)", A + "256/1" + T, R + "328/1" + T, "p50_ns", false,
		 "same"},
		{"batch 256B flush->durable p99 (ns)", A + "256/1" + T, R + "328/1" + T, "p99_ns", false,
		 "same"},
		{"replay 64B, events/s", "BM_Replay/repeats:3/real_time", "BM_RawRead/repeats:3/real_time",
		 "items_per_second", true, "raw read() of the segment files; ours checks every checksum"},
		{"replay 64B, bytes/s", "BM_Replay/repeats:3/real_time", "BM_RawRead/repeats:3/real_time",
		 "bytes_per_second", true, "same; goal >= 1 GB/s"},
	});
}
