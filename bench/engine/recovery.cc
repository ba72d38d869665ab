/*
 * bench/engine/recovery.cc - BM_EngineRecovery/V: restart over a journal of
 * kRecoveryEvents events, V = 0 views resumed (write-model replay only),
 * V = 1 views removed (write model + view rebuild): events/s, median of 5.
 */
#include "bench/engine/fixture.h"

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

engine_env g_recovery; /* the journal every restart reads */

void build_recovery_journal()
{
	if (!g_recovery.name.empty())
		return;
	g_recovery.orders = kRecoveryEvents;
	g_recovery.pretouch = false; /* the rebuild maps rows as it goes */
	if (g_recovery.open(CQRS_DURABILITY_NONE, true))
		abort();
	register_customers(g_recovery.e);
	std::vector<create_order> co(kBatch);
	std::vector<cqrs_command> cmds(kBatch);
	std::vector<cqrs_ticket> t(kBatch);
	for (uint64_t id = 1; id + kCustomers <= kRecoveryEvents;) {
		int n = 0;
		for (; n < kBatch && id + kCustomers <= kRecoveryEvents; n++, id++) {
			fill_create(&co[n], id);
			cmds[n] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[n] };
		}
		submit_all(g_recovery.e, cmds.data(), t.data(), n);
	}
	g_recovery.close(false); /* clean stop: views resumable */
	/* `none` leaves 200 MB dirty in the page cache: have the kernel write it
	 * back now, not on our CPUs while the restarts are timed. */
	sync();
}

void BM_EngineRecovery(benchmark::State &state)
{
	build_recovery_journal();
	uint64_t events = 0;
	for (auto _ : state) {
		state.PauseTiming();
		if (state.range(0) == 1) {
			/* drop the views: the start rebuilds them from the journal */
			char prefix[128];
			snprintf(prefix, sizeof prefix, "%s", g_recovery.name.c_str());
			cqrs_engine_remove_segments(prefix);
		}
		state.ResumeTiming();
		if (g_recovery.open(CQRS_DURABILITY_NONE, false)) {
			state.SkipWithError("restart failed");
			break;
		}
		/* a rebuild completes when the views caught up with the journal */
		const cqrs_counters *c = cqrs_engine_counters(g_recovery.e);
		uint64_t target = cqrs_engine_durable_seq(g_recovery.e);
		for (;;) {
			bool all = true;
			for (uint32_t i = 0; i < c->nproj; i++)
				if (ctr(c->proj[i].applied_seq) < target)
					all = false;
			if (all)
				break;
			std::this_thread::yield();
		}
		events += ctr(c->replayed);
		state.PauseTiming();
		g_recovery.close(false);
		state.ResumeTiming();
	}
	state.SetItemsProcessed((int64_t)events);
}

} /* namespace */

void register_engine_recovery()
{
	/* One restart per repetition; the table shows the median of 5 (the first
	 * restarts after the journal is built fault in fresh memory, whose cost
	 * varies most on a VM). */
	benchmark::RegisterBenchmark("BM_EngineRecovery", BM_EngineRecovery)
		->Arg(0)
		->Arg(1)
		->Unit(benchmark::kMillisecond)
		->UseRealTime()
		->Iterations(1)
		->Repetitions(5)
		->ReportAggregatesOnly(true);
}

void close_recovery() { g_recovery.close(true); }

} /* namespace bench_engine */
