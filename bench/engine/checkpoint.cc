/*
 * bench/engine/checkpoint.cc - view checkpoints, same run, same journal:
 *   BM_ViewRestore/S   a "reboot" (every /dev/shm segment of the engine
 *                      removed) and a start until every projection has
 *                      caught up with the journal of kRecoveryEvents
 *                      events: S = 0 from the views' checkpoints (taken at
 *                      90% of the journal) plus the tail, S = 1 a full
 *                      rebuild (the checkpoints moved aside). Milliseconds,
 *                      median of 3 (the write model's replay is in both).
 *   BM_CheckpointStall/M  CreateOrder batches flat out for 1.5 s over an
 *                      engine holding 200k orders while its views are
 *                      checkpointed every 500k events: M = 0 none, 1
 *                      userfaultfd write-protect, 2 copy at the batch
 *                      boundary. Counters: max_gap_us, the longest time the
 *                      order_summaries projection's applied seq stood
 *                      still (sampled by a thread of its own), wait_us, the
 *                      engine's own longest projector wait for a checkpoint,
 *                      and checkpoints taken.
 */
#include "bench/engine/fixture.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern "C" {
#include "cqrs_counters.h"
}

namespace bench_engine {

namespace {

engine_env g_restore; /* the journal and checkpoints every restore reads */

uint64_t now_ns()
{
	return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
		       std::chrono::steady_clock::now().time_since_epoch())
		.count();
}

void create_orders(cqrs_engine *e, uint64_t from, uint64_t to)
{
	std::vector<create_order> co(kBatch);
	std::vector<cqrs_command> cmds(kBatch);
	std::vector<cqrs_ticket> t(kBatch);
	for (uint64_t id = from; id < to;) {
		int n = 0;
		for (; n < kBatch && id < to; n++, id++) {
			fill_create(&co[n], id);
			cmds[n] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[n] };
		}
		submit_all(e, cmds.data(), t.data(), n);
	}
}

/* Every projection applied everything durable. */
void wait_caught_up(cqrs_engine *e)
{
	const cqrs_counters *c = cqrs_engine_counters(e);
	uint64_t target = cqrs_engine_durable_seq(e);
	for (;;) {
		bool all = true;
		for (uint32_t i = 0; i < c->nproj; i++)
			if (ctr(c->proj[i].applied_seq) < target)
				all = false;
		if (all)
			return;
		std::this_thread::yield();
	}
}

int build_restore_journal()
{
	if (!g_restore.name.empty())
		return 0;
	g_restore.orders = kRecoveryEvents;
	g_restore.pretouch = false;
	g_restore.checkpoint_copy = 0;
	if (g_restore.open(CQRS_DURABILITY_NONE, true))
		return -1;
	register_customers(g_restore.e);
	uint64_t at = kRecoveryEvents * 9 / 10;
	create_orders(g_restore.e, 1, at);
	wait_caught_up(g_restore.e);
	const cqrs_counters *c = cqrs_engine_counters(g_restore.e);
	uint64_t taken = ctr(c->ckpt_taken);
	cqrs_engine_checkpoint(g_restore.e, NULL);
	while (ctr(c->ckpt_taken) < taken + 2) /* both projections */
		usleep(1000);
	create_orders(g_restore.e, at, kRecoveryEvents - kCustomers); /* the tail */
	g_restore.close(false);
	sync();
	return 0;
}

void BM_ViewRestore(benchmark::State &state)
{
	if (build_restore_journal()) {
		state.SkipWithError("journal");
		return;
	}
	std::string ck = g_restore.dir + "/checkpoints", aside = ck + ".aside";
	for (auto _ : state) {
		state.PauseTiming();
		cqrs_engine_remove_segments(g_restore.name.c_str()); /* the reboot */
		if (state.range(0) == 1 && rename(ck.c_str(), aside.c_str()))
			state.SkipWithError("move the checkpoints aside");
		state.ResumeTiming();
		if (g_restore.open(CQRS_DURABILITY_NONE, false)) {
			state.SkipWithError("restart failed");
			break;
		}
		wait_caught_up(g_restore.e);
		state.PauseTiming();
		const cqrs_counters *c = cqrs_engine_counters(g_restore.e);
		state.counters["restored"] = (double)ctr(c->ckpt_restored);
		g_restore.close(false);
		if (state.range(0) == 1) {
			std::string made = ck; /* the start made empty folders: ours go back */
			std::string cmd = "rm -rf '" + made + "'";
			if (system(cmd.c_str()) != 0 || rename(aside.c_str(), ck.c_str()))
				state.SkipWithError("put the checkpoints back");
		}
		state.ResumeTiming();
	}
}

void BM_CheckpointStall(benchmark::State &state)
{
	const uint64_t preload = 200000;
	for (auto _ : state) {
		engine_env env;
		env.orders = kOrderCapacity;
		env.pretouch = false; /* the default: pages mapped as rows are used */
		env.checkpoint_copy = state.range(0) == 0 ? -1 : state.range(0) == 1 ? 0 : 1;
		env.checkpoint_every = state.range(0) == 0 ? 0 : 500000;
		state.PauseTiming();
		if (env.open(CQRS_DURABILITY_NONE, true)) {
			state.SkipWithError("engine");
			return;
		}
		register_customers(env.e);
		create_orders(env.e, 1, preload);
		wait_caught_up(env.e);
		const cqrs_counters *c = cqrs_engine_counters(env.e);
		std::atomic<bool> stop{ false };
		uint64_t max_gap = 0;
		std::thread sampler([&] {
			uint64_t last = ctr(c->proj[0].applied_seq), since = now_ns();
			while (!stop.load(std::memory_order_relaxed)) {
				uint64_t s = ctr(c->proj[0].applied_seq), t = now_ns();
				if (s != last) {
					if (t - since > max_gap)
						max_gap = t - since;
					last = s;
					since = t;
				}
				std::this_thread::sleep_for(std::chrono::microseconds(20));
			}
		});
		state.ResumeTiming();
		uint64_t end = now_ns() + 1500000000ull, id = preload;
		std::vector<create_order> co(kBatch);
		std::vector<cqrs_command> cmds(kBatch);
		std::vector<cqrs_ticket> t(kBatch);
		while (now_ns() < end && id + kBatch < kOrderCapacity - kCustomers) {
			for (int n = 0; n < kBatch; n++, id++) {
				fill_create(&co[n], id);
				cmds[n] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[n] };
			}
			submit_all(env.e, cmds.data(), t.data(), kBatch);
		}
		state.PauseTiming();
		stop = true;
		sampler.join();
		state.counters["max_gap_us"] = (double)max_gap / 1e3;
		state.counters["wait_us"] = (double)ctr(c->ckpt_stall_max_ns) / 1e3;
		state.counters["checkpoints"] = (double)ctr(c->ckpt_taken);
		state.counters["mode"] = (double)ctr(c->ckpt_mode);
		state.counters["faults"] = (double)ctr(c->ckpt_faults);
		state.counters["setup_us"] = (double)ctr(c->ckpt_setup_max_ns) / 1e3;
		state.counters["fault_us"] = (double)ctr(c->ckpt_fault_max_ns) / 1e3;
		state.SetItemsProcessed((int64_t)(id - preload));
		env.close(true);
		state.ResumeTiming();
	}
}

} /* namespace */

void register_checkpoint()
{
	benchmark::RegisterBenchmark("BM_ViewRestore", BM_ViewRestore)
		->Arg(0)
		->Arg(1)
		->Unit(benchmark::kMillisecond)
		->UseRealTime()
		->Iterations(1)
		->Repetitions(3)
		->ReportAggregatesOnly(true);
	benchmark::RegisterBenchmark("BM_CheckpointStall", BM_CheckpointStall)
		->Arg(0)
		->Arg(1)
		->Arg(2)
		->Unit(benchmark::kMillisecond)
		->UseRealTime()
		->Iterations(1);
}

void close_checkpoint() { g_restore.close(true); }

} /* namespace bench_engine */
