/*
 * bench/engine/snapshot.cc - write-model snapshots of the orders engine
 * after kRecoveryEvents events (1M orders and 10k customers in the
 * stores, the version map, the dedup window):
 *   BM_SnapshotWrite   cqrs_engine_snapshot (fork, serialize, fdatasync,
 *                      rename, directory fsync): bytes/s; counters: the
 *                      fork's stall of the command thread (p50, max, us)
 *   BM_RawWrite        the same bytes written sequentially (1 MiB writes,
 *                      fdatasync): the baseline
 *   BM_SnapshotLoad    a restart's load of that snapshot (choosing it,
 *                      verifying every checksum, filling the stores):
 *                      bytes/s of the engine's own load time
 *   BM_RawRead         reading the same file (1 MiB reads, page cache)
 *   BM_SnapshotRestart a whole restart from the snapshot (journal open,
 *                      load, no tail to replay, views resumed): real time,
 *                      beside BM_EngineRecovery/0 (the full replay of a
 *                      journal of the same size)
 *   BM_RestartHistory/H  restart time with the same live state (10k
 *                      customers, 990k orders) after H million events: H =
 *                      1 (the orders created), H = 3 (each also shipped and
 *                      completed); snapshots every 1M events, none at stop,
 *                      so a restart loads the newest and replays the tail
 *                      (the 1M vs 20M, scaled down to what builds
 *                      in seconds here)
 *   BM_AckDuringSnapshot/S  command-to-ack p99.9 of batches submitted
 *                      while snapshots are taken back to back (S = 1) or
 *                      not (S = 0)
 */
#include "bench/engine/fixture.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include "cqrs_counters.h"
}

namespace bench_engine {

namespace {

engine_env g_snap;
uint64_t g_bytes; /* the newest snapshot's size */
std::vector<char> g_buf(1u << 20, 'x');

int next_order = 1;

void submit_orders(cqrs_engine *e, uint64_t n)
{
	std::vector<create_order> co(kBatch);
	std::vector<cqrs_command> cmds(kBatch);
	std::vector<cqrs_ticket> t(kBatch);
	while (n) {
		int k = 0;
		for (; k < kBatch && n; k++, n--, next_order++) {
			fill_create(&co[k], (uint64_t)next_order);
			cmds[k] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[k] };
		}
		submit_all(e, cmds.data(), t.data(), k);
	}
}

void build()
{
	if (!g_snap.name.empty())
		return;
	g_snap.orders = kRecoveryEvents;
	g_snap.pretouch = false;
	g_snap.snapshots = true;
	if (g_snap.open(CQRS_DURABILITY_NONE, true))
		abort();
	register_customers(g_snap.e);
	submit_orders(g_snap.e, kRecoveryEvents - kCustomers);
	sync();
}

std::string newest_file()
{
	std::string dir = g_snap.dir + "/snapshots", best;
	DIR *d = opendir(dir.c_str());
	struct dirent *de;
	while (d && (de = readdir(d)) != nullptr)
		if (strncmp(de->d_name, "snap-", 5) == 0 && de->d_name > best)
			best = de->d_name;
	if (d)
		closedir(d);
	return best.empty() ? best : dir + "/" + best;
}

void BM_SnapshotWrite(benchmark::State &state)
{
	build();
	uint64_t bytes = 0;
	std::vector<uint64_t> forks;
	const cqrs_counters *c = cqrs_engine_counters(g_snap.e);
	for (auto _ : state) {
		state.PauseTiming();
		submit_orders(g_snap.e, 1); /* a new seq: a new snapshot */
		state.ResumeTiming();
		uint64_t seq;
		if (cqrs_engine_snapshot(g_snap.e, &seq)) {
			state.SkipWithError(cqrs_last_error());
			break;
		}
		bytes += ctr(c->snap_bytes);
		forks.push_back(ctr(c->snap_fork_us));
	}
	g_bytes = ctr(c->snap_bytes);
	state.SetBytesProcessed((int64_t)bytes);
	if (!forks.empty()) {
		std::sort(forks.begin(), forks.end());
		state.counters["fork_p50_us"] = (double)forks[forks.size() / 2];
		state.counters["fork_max_us"] = (double)forks.back();
		state.counters["file_mb"] = (double)g_bytes / 1e6;
	}
}

void BM_RawWrite(benchmark::State &state)
{
	build();
	std::string path = g_snap.dir + "/raw-write";
	uint64_t bytes = 0;
	for (auto _ : state) {
		int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		for (uint64_t left = g_bytes; left;) {
			size_t n = left < g_buf.size() ? (size_t)left : g_buf.size();
			if (write(fd, g_buf.data(), n) != (ssize_t)n)
				abort();
			left -= n;
		}
		if (fdatasync(fd))
			abort();
		close(fd);
		bytes += g_bytes;
	}
	unlink(path.c_str());
	state.SetBytesProcessed((int64_t)bytes);
}

void BM_SnapshotLoad(benchmark::State &state)
{
	build();
	uint64_t bytes = 0;
	for (auto _ : state) {
		g_snap.close(false); /* the stop takes its snapshot (the same state) */
		struct stat st;
		std::string f = newest_file();
		if (f.empty() || stat(f.c_str(), &st) || g_snap.open(CQRS_DURABILITY_NONE, false)) {
			state.SkipWithError("restart failed");
			break;
		}
		const cqrs_counters *c = cqrs_engine_counters(g_snap.e);
		state.SetIterationTime((double)ctr(c->snap_load_ns) / 1e9);
		bytes += (uint64_t)st.st_size;
	}
	state.SetBytesProcessed((int64_t)bytes);
}

void BM_RawRead(benchmark::State &state)
{
	build();
	std::string f = newest_file();
	uint64_t bytes = 0;
	for (auto _ : state) {
		int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
		ssize_t n;
		while ((n = read(fd, g_buf.data(), g_buf.size())) > 0)
			bytes += (uint64_t)n;
		close(fd);
	}
	state.SetBytesProcessed((int64_t)bytes);
}

void BM_SnapshotRestart(benchmark::State &state)
{
	build();
	uint64_t events = 0;
	for (auto _ : state) {
		state.PauseTiming();
		g_snap.close(false);
		state.ResumeTiming();
		if (g_snap.open(CQRS_DURABILITY_NONE, false)) {
			state.SkipWithError("restart failed");
			break;
		}
		events += ctr(cqrs_engine_counters(g_snap.e)->snap_loaded_seq);
	}
	state.SetItemsProcessed((int64_t)events);
}

engine_env g_hist[2]; /* 1M and 3M events of history */

void submit_refs(cqrs_engine *e, uint32_t type, uint64_t first, uint64_t n)
{
	std::vector<ship_order> r(kBatch);
	std::vector<cqrs_command> cmds(kBatch);
	std::vector<cqrs_ticket> t(kBatch);
	for (uint64_t id = first; id < first + n;) {
		int k = 0;
		for (; k < kBatch && id < first + n; k++, id++) {
			r[k].order_id = id;
			cmds[k] = cqrs_command{ type, sizeof(ship_order), &r[k] };
		}
		submit_all(e, cmds.data(), t.data(), k);
	}
}

void build_history(int h)
{
	engine_env &env = g_hist[h == 1 ? 0 : 1];
	if (!env.name.empty())
		return;
	env.orders = kRecoveryEvents;
	env.pretouch = false;
	env.snapshots = true;
	env.snapshot_every = 1000000;
	env.snapshot_on_stop = 0;
	if (env.open(CQRS_DURABILITY_NONE, true))
		abort();
	register_customers(env.e);
	uint64_t orders = kRecoveryEvents - kCustomers;
	std::vector<create_order> co(kBatch);
	std::vector<cqrs_command> cmds(kBatch);
	std::vector<cqrs_ticket> t(kBatch);
	for (uint64_t id = 1; id <= orders;) {
		int k = 0;
		for (; k < kBatch && id <= orders; k++, id++) {
			fill_create(&co[k], id);
			cmds[k] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[k] };
		}
		submit_all(env.e, cmds.data(), t.data(), k);
	}
	if (h == 3) {
		submit_refs(env.e, CMD_SHIP_ORDER, 1, orders);
		submit_refs(env.e, CMD_COMPLETE_ORDER, 1, orders);
	}
	env.close(false); /* no snapshot at stop: the restart replays a tail */
	sync();
}

void BM_RestartHistory(benchmark::State &state)
{
	int h = (int)state.range(0);
	build_history(h);
	engine_env &env = g_hist[h == 1 ? 0 : 1];
	uint64_t tail = 0, snap = 0;
	for (auto _ : state) {
		if (env.open(CQRS_DURABILITY_NONE, false)) {
			state.SkipWithError("restart failed");
			break;
		}
		const cqrs_counters *c = cqrs_engine_counters(env.e);
		tail = ctr(c->replayed);
		snap = ctr(c->snap_loaded_seq);
		state.PauseTiming();
		env.close(false);
		state.ResumeTiming();
	}
	state.counters["snapshot_seq"] = (double)snap;
	state.counters["tail_events"] = (double)tail;
}

/* Batches of 64 commands, one at a time; each command's submit-to-ack. */
void BM_AckDuringSnapshot(benchmark::State &state)
{
	build();
	bool snap = state.range(0) == 1;
	std::atomic<bool> stop{ false };
	std::thread taker;
	if (snap)
		taker = std::thread([&] {
			uint64_t seq;
			while (!stop.load(std::memory_order_relaxed)) /* a flag */
				if (cqrs_engine_snapshot(g_snap.e, &seq))
					break;
		});
	std::vector<uint64_t> lat;
	std::vector<create_order> co(64);
	std::vector<cqrs_command> cmds(64);
	std::vector<cqrs_ticket> t(64);
	for (auto _ : state) {
		for (int k = 0; k < 64; k++, next_order++) {
			fill_create(&co[k], (uint64_t)next_order);
			cmds[k] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[k] };
		}
		auto t0 = std::chrono::steady_clock::now();
		submit_all(g_snap.e, cmds.data(), t.data(), 64);
		auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
				  std::chrono::steady_clock::now() - t0).count();
		lat.push_back((uint64_t)ns);
	}
	stop = true;
	if (taker.joinable())
		taker.join();
	std::sort(lat.begin(), lat.end());
	if (!lat.empty()) {
		state.counters["p50_ns"] = (double)lat[lat.size() / 2];
		state.counters["p999_ns"] = (double)lat[lat.size() * 999 / 1000];
	}
	state.counters["snapshots"] = (double)ctr(cqrs_engine_counters(g_snap.e)->snap_taken);
}

} /* namespace */

void register_snapshots()
{
	benchmark::RegisterBenchmark("BM_SnapshotWrite", BM_SnapshotWrite)
		->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
	benchmark::RegisterBenchmark("BM_RawWrite", BM_RawWrite)
		->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
	benchmark::RegisterBenchmark("BM_SnapshotLoad", BM_SnapshotLoad)
		->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(5);
	benchmark::RegisterBenchmark("BM_RawRead", BM_RawRead)
		->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
	benchmark::RegisterBenchmark("BM_SnapshotRestart", BM_SnapshotRestart)
		->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
	benchmark::RegisterBenchmark("BM_RestartHistory", BM_RestartHistory)
		->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
	benchmark::RegisterBenchmark("BM_AckDuringSnapshot", BM_AckDuringSnapshot)
		->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime()->Iterations(3000);
}

void close_snapshots()
{
	g_snap.close(true);
	for (engine_env &env : g_hist)
		env.close(true);
}

} /* namespace bench_engine */
