/*
 * bench/engine/visible.cc - command-to-visible latency against the engine:
 *   BM_EngineVisible/M/R/T      a probe every 100 us waits until
 *                               order_summaries shows its order while an
 *                               open-loop load thread sends the rest of R
 *                               commands/s in bursts (durability M,
 *                               threading T);
 *   BM_EngineVisibleOneClient/T/R
 *                               R commands/s from one open-loop client
 *                               (open_loop.h), each burst timed until the
 *                               view shows all of it.
 */
#include "bench/engine/fixture.h"
#include "bench/engine/open_loop.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <string.h>
#include <sys/prctl.h>

extern "C" {
#include "core/clock.h"
#include "cqrs_counters.h"
#include "cqrs_view.h"
}

namespace bench_engine {

namespace {

void BM_EngineVisible(benchmark::State &state)
{
	engine_env env;
	env.threading = (int)state.range(2);
	if (env.open((int)state.range(0), true)) {
		state.SkipWithError("engine start failed");
		return;
	}
	register_customers(env.e);
	/* The engine receives `rate` commands/s in all: one probe every
	 * kProbePeriod (10k/s at 100k/s) and the rest from a load thread. The
	 * load is open loop: bursts of `burst` commands every burst/load-rate
	 * seconds (10 every 111 us by default), submitted on schedule whatever
	 * the answers (a burst waits only for a ticket 64 bursts old, to reuse
	 * it). CQRS_BENCH_BURST (1..100) changes the burst: with 100 the probe
	 * that lands behind a burst waits for its 100 commands. Both threads
	 * sleep between sends (a load thread that spun would take a core from
	 * the engine it loads), with a 1 us timer slack so sends keep time. */
	constexpr uint64_t kProbePeriod = 100000;
	const uint64_t rate = (uint64_t)state.range(1);
	const uint64_t probe_rate = 1000000000u / kProbePeriod;
	const uint64_t load_rate = rate > probe_rate ? rate - probe_rate : 1;
	const int burst = bench_burst();
	std::atomic<bool> stop{ false };
	std::atomic<uint64_t> next{ 1 };
	std::atomic<int> load_failed{ 0 };
	/* the load thread inherits the slack; restored at the end */
	const int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	std::thread load([&] {
		const size_t n = (size_t)burst * 64;
		std::vector<create_order> co((size_t)burst);
		std::vector<cqrs_command> cmds((size_t)burst);
		std::vector<cqrs_ticket> t(n);
		std::vector<bool> armed(n, false);
		uint64_t period = (uint64_t)burst * 1000000000ull / load_rate, due = cqrs__mono_ns();
		size_t k = 0;
		while (!stop.load(std::memory_order_relaxed)) {
			for (int i = 0; i < burst; i++) {
				if (armed[k + (size_t)i])
					cqrs_ticket_wait(&t[k + (size_t)i], UINT64_MAX);
				armed[k + (size_t)i] = false;
				fill_create(&co[(size_t)i], next.fetch_add(1));
				cmds[(size_t)i] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[(size_t)i] };
			}
			int accepted, rc = submit_retrying(env.e, cmds.data(), &t[k], burst, &accepted);
			for (int i = 0; i < accepted; i++)
				armed[k + (size_t)i] = true; /* the engine holds it now */
			if (rc) {
				load_failed = 1;
				break;
			}
			k = (k + (size_t)burst) % n;
			due += period;
			sleep_until(due);
		}
		for (size_t i = 0; i < n; i++)
			if (armed[i])
				cqrs_ticket_wait(&t[i], UINT64_MAX);
	});
	cqrs_view *v = nullptr;
	cqrs_view_open(env.name.c_str(), "order_summaries", &v);
	std::vector<uint64_t> samples, acks; /* submit to visible; submit to ack */
	samples.reserve(1 << 20);
	acks.reserve(1 << 20);
	uint64_t due = cqrs__mono_ns(), begin = due, load_begin = next.load();
	for (auto _ : state) {
		/* Next probe one period on, or now if this one ran late. */
		due = std::max(due + kProbePeriod, cqrs__mono_ns());
		sleep_until(due);
		create_order co;
		fill_create(&co, (UINT64_C(1) << 40) + next.fetch_add(1));
		cqrs_command c{ CMD_CREATE_ORDER, sizeof co, &co };
		cqrs_ticket t;
		uint64_t t0 = cqrs__mono_ns();
		if (cqrs_submit(env.e, &c, &t) || cqrs_ticket_wait(&t, UINT64_MAX)) {
			state.SkipWithError("probe submit failed");
			break;
		}
		acks.push_back(cqrs__mono_ns() - t0);
		if (cqrs_view_wait(v, cqrs_ticket_seq(&t), 5000000000ull)) {
			state.SkipWithError("view wait failed");
			break;
		}
		samples.push_back(cqrs__mono_ns() - t0);
	}
	uint64_t elapsed = cqrs__mono_ns() - begin, sent = next.load() - load_begin;
	stop = true;
	load.join();
	prctl(PR_SET_TIMERSLACK, slack > 0 ? (unsigned long)slack : 50000ul, 0, 0, 0);
	if (load_failed)
		state.SkipWithError("load submit failed");
	cqrs_view_close(v);
	report_latency(state, samples, acks, burst);
	/* Commands/s the engine received while the probes ran (load and probes). */
	state.counters["rate"] = elapsed ? (double)sent * 1e9 / (double)elapsed : 0;
	env.close(true);
}

/* The open-loop client (open_loop) against the engine (durability none,
 * threading from the first argument): a burst is one cqrs_submit_batch of
 * CreateOrders, complete when its tickets are answered and order_summaries
 * shows its last event. Also reports the engine's own submit-to-answer
 * percentiles over the run (engine_ack_*: what the command thread saw,
 * whatever the client's scheduling). */
void BM_EngineVisibleOneClient(benchmark::State &state)
{
	engine_env env;
	env.threading = (int)state.range(0);
	if (env.open(CQRS_DURABILITY_NONE, true)) {
		state.SkipWithError("engine start failed");
		return;
	}
	register_customers(env.e);
	const size_t burst = (size_t)bench_burst();
	std::vector<create_order> co(burst);
	std::vector<cqrs_command> cmds(burst);
	std::vector<cqrs_ticket> t(kSlots * burst);
	std::vector<uint64_t> samples, acks;
	cqrs_view *v = nullptr;
	if (cqrs_view_open(env.name.c_str(), "order_summaries", &v)) {
		state.SkipWithError("view open failed");
		env.close(true);
		return;
	}
	uint64_t next = 1;
	bool failed = false;
	auto send = [&](size_t s) {
		int accepted;
		for (size_t i = 0; i < burst; i++) {
			fill_create(&co[i], next++);
			cmds[i] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[i] };
		}
		if (submit_retrying(env.e, cmds.data(), &t[s * burst], (int)burst, &accepted) == 0)
			return true;
		state.SkipWithError("submit failed");
		for (int i = 0; i < accepted; i++)
			cqrs_ticket_wait(&t[s * burst + (size_t)i], UINT64_MAX);
		return false;
	};
	auto poll = [&](size_t s, uint64_t *acked_ns) {
		cqrs_ticket *last = &t[s * burst + burst - 1];
		if (!*acked_ns) {
			if (!cqrs_ticket_done(last))
				return false;
			*acked_ns = cqrs__mono_ns();
			for (size_t i = 0; i < burst; i++)
				failed |= cqrs_ticket_wait(&t[s * burst + i], UINT64_MAX) != 0;
		}
		return cqrs_view_applied_seq(v) >= cqrs_ticket_seq(last);
	};
	static uint64_t h[CQRS_COUNTERS_HIST]; /* the engine's ack histogram before */
	memcpy(h, cqrs_engine_counters(env.e)->ack_latency, sizeof h);
	double secs = open_loop(state, (uint64_t)state.range(1), burst, send, poll, samples, acks);
	for (size_t i = 0; i < CQRS_COUNTERS_HIST; i++)
		h[i] = cqrs_engine_counters(env.e)->ack_latency[i] - h[i];
	if (failed)
		state.SkipWithError("a command was not accepted");
	cqrs_view_close(v);
	report_latency(state, samples, acks, (int)burst);
	state.counters["engine_ack_p50_ns"] = hist_quantile(h, 0.5);
	state.counters["engine_ack_p99_ns"] = hist_quantile(h, 0.99);
	state.counters["rate"] = secs > 0 ? (double)(next - 1) / secs : 0;
	env.close(true);
}

} /* namespace */

void register_engine_visible()
{
	benchmark::RegisterBenchmark("BM_EngineVisible", BM_EngineVisible)
		->Args({ 0, 100000, CQRS_THREADING_DEDICATED })
		->Args({ 0, 100000, CQRS_THREADING_SHARED })
		->Args({ 1, 100000, CQRS_THREADING_DEDICATED })
		->Unit(benchmark::kMicrosecond)
		->UseRealTime()
		->MinTime(2.0);
	benchmark::RegisterBenchmark("BM_EngineVisibleOneClient", BM_EngineVisibleOneClient)
		->Args({ CQRS_THREADING_DEDICATED, 100000 })
		->Args({ CQRS_THREADING_SHARED, 100000 })
		->Unit(benchmark::kMicrosecond)
		->UseRealTime()
		->MinTime(2.0);
}

} /* namespace bench_engine */
