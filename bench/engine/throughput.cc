/*
 * bench/engine/throughput.cc - BM_EngineCommands/M/T: pipelined CreateOrder
 * submissions from one thread (kDepth x kBatch in flight), durability M,
 * threading T: acknowledged commands/s, CPU per command, fdatasyncs.
 */
#include "bench/engine/fixture.h"

#include <vector>

extern "C" {
#include "cqrs_counters.h"
}

namespace bench_engine {

namespace {

void BM_EngineCommands(benchmark::State &state)
{
	engine_env env;
	env.threading = (int)state.range(1);
	if (env.open((int)state.range(0), true)) {
		state.SkipWithError("engine start failed");
		return;
	}
	register_customers(env.e);
	struct slot {
		create_order co[kBatch];
		cqrs_command cmds[kBatch];
		cqrs_ticket t[kBatch];
		int n = 0;
	};
	std::vector<slot> slots(kDepth);
	uint64_t next = 1, k = 0, done = 0, cpu0 = process_cpu_ns();
	for (auto _ : state) {
		slot &s = slots[k++ % kDepth];
		for (int i = 0; i < s.n; i++)
			cqrs_ticket_wait(&s.t[i], UINT64_MAX);
		done += (uint64_t)s.n;
		for (int i = 0; i < kBatch; i++) {
			fill_create(&s.co[i], next++);
			s.cmds[i] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &s.co[i] };
		}
		if (submit_retrying(env.e, s.cmds, s.t, kBatch, &s.n)) {
			state.SkipWithError("submit failed");
			break;
		}
	}
	for (auto &s : slots) {
		for (int i = 0; i < s.n; i++)
			cqrs_ticket_wait(&s.t[i], UINT64_MAX);
		done += (uint64_t)s.n;
	}
	state.SetItemsProcessed((int64_t)done);
	/* CPU time of every thread of the process (io_uring's workers
	 * included) per command: what the engine costs, less sensitive than
	 * commands/s to a busy host. */
	state.counters["cpu_ns_per_cmd"] = done ? (double)(process_cpu_ns() - cpu0) / (double)done : 0;
	const cqrs_counters *c = cqrs_engine_counters(env.e);
	state.counters["fdatasyncs"] = (double)ctr(c->fdatasyncs);
	state.counters["commands_per_batch"] = ctr(c->batches) ? (double)ctr(c->events) / (double)ctr(c->batches) : 0;
	env.close(true);
}

} /* namespace */

void register_engine_commands()
{
	/* A fixed count (2.6M commands, one engine per run): a time-based run lets
	 * a faster engine take more orders than it was sized for, and the run
	 * then measures a write-model rehash and a view's growth (about one run
	 * in three at 1.5M commands/s). */
	benchmark::RegisterBenchmark("BM_EngineCommands", BM_EngineCommands)
		->Args({ 0, CQRS_THREADING_DEDICATED })
		->Args({ 1, CQRS_THREADING_DEDICATED })
		->Args({ 0, CQRS_THREADING_SHARED })
		->Args({ 1, CQRS_THREADING_SHARED })
		->Iterations(kRunIterations)
		->Unit(benchmark::kMillisecond)
		->UseRealTime();
}

} /* namespace bench_engine */
