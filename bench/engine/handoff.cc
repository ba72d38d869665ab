/*
 * bench/engine/handoff.cc - BM_HandoffFloor/R: the open-loop client of
 * BM_EngineVisibleOneClient against a bare echo thread instead of the
 * engine, the floor this machine sets for command-to-visible latency (run
 * first, before any engine has mapped memory).
 */
#include "bench/engine/fixture.h"
#include "bench/engine/open_loop.h"

#include <atomic>
#include <thread>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bench_engine {

namespace {

/* The floor this machine sets for BM_EngineVisibleOneClient, same run: the
 * same open-loop client, but each burst is a counter bumped for an echo
 * thread that answers at once and idles as the command thread does (yields
 * for idle_yield_us, 100 us, then sleeps on a futex the client wakes).
 * What is left is two threads handing a number back and forth on this
 * machine's cores: scheduling, wake-ups, host noise. (An echo that only
 * yields is no floor: under EEVDF each yield pushes its deadline a slice
 * further, and a client yielding beside it on one core waited up to
 * 25 ms.) */
void futex_call(std::atomic<uint32_t> *w, int op, uint32_t val, const struct timespec *ts)
{
	(void)syscall(SYS_futex, reinterpret_cast<uint32_t *>(w), op, val, ts, nullptr, 0);
}

void BM_HandoffFloor(benchmark::State &state)
{
	static_assert(sizeof(std::atomic<uint32_t>) == 4, "a futex word");
	std::atomic<uint64_t> asked{ 0 }, answered{ 0 };
	std::atomic<uint32_t> bell{ 0 }, sleeping{ 0 };
	std::atomic<bool> stop{ false };
	std::thread echo([&] {
		const struct timespec nap = { 0, 10000000 };
		uint64_t idle_since = 0;
		while (!stop.load(std::memory_order_relaxed)) {
			uint64_t a = asked.load(std::memory_order_acquire);
			if (a != answered.load(std::memory_order_relaxed)) {
				answered.store(a, std::memory_order_release);
				idle_since = 0;
				continue;
			}
			uint64_t now = cqrs__mono_ns();
			if (!idle_since)
				idle_since = now;
			if (now - idle_since < 100000) {
				sched_yield();
				continue;
			}
			uint32_t seen = bell.load(std::memory_order_acquire);
			/* seq_cst: pairs with the client's seq_cst store of asked and
			 * load of sleeping (Dekker): one of us sees the other. */
			sleeping.store(1, std::memory_order_seq_cst);
			if (asked.load(std::memory_order_seq_cst) == a && !stop.load(std::memory_order_relaxed))
				futex_call(&bell, FUTEX_WAIT_PRIVATE, seen, &nap);
			sleeping.store(0, std::memory_order_relaxed);
			idle_since = 0;
		}
	});
	auto ring = [&] {
		if (sleeping.load(std::memory_order_seq_cst)) { /* pairs with the echo's store */
			bell.fetch_add(1, std::memory_order_release);
			futex_call(&bell, FUTEX_WAKE_PRIVATE, 1, nullptr);
		}
	};
	const size_t burst = (size_t)bench_burst();
	static uint64_t want[kSlots];
	uint64_t n = 0;
	std::vector<uint64_t> samples, acks;
	auto send = [&](size_t s) {
		want[s] = ++n;
		asked.store(n, std::memory_order_seq_cst); /* pairs with the echo's sleeping */
		ring();
		return true;
	};
	auto poll = [&](size_t s, uint64_t *acked_ns) {
		if (answered.load(std::memory_order_acquire) < want[s])
			return false;
		*acked_ns = cqrs__mono_ns();
		return true;
	};
	double secs = open_loop(state, (uint64_t)state.range(0), burst, send, poll, samples, acks);
	stop = true;
	bell.fetch_add(1, std::memory_order_release);
	futex_call(&bell, FUTEX_WAKE_PRIVATE, 1, nullptr);
	echo.join();
	report_latency(state, samples, acks, (int)burst);
	state.counters["rate"] = secs > 0 ? (double)(n * burst) / secs : 0;
}

} /* namespace */

void register_handoff_floor()
{
	benchmark::RegisterBenchmark("BM_HandoffFloor", BM_HandoffFloor)
		->Arg(100000)
		->Unit(benchmark::kMicrosecond)
		->UseRealTime()
		->MinTime(2.0);
}

} /* namespace bench_engine */
