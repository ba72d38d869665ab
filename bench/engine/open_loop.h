/*
 * bench/engine/open_loop.h - the latency benchmarks' client side: an
 * open-loop client in one thread (open_loop), sleeping to a deadline, the
 * CQRS_BENCH_BURST knob, and the percentile counters they report.
 */
#ifndef CQRS_BENCH_ENGINE_OPEN_LOOP_H
#define CQRS_BENCH_ENGINE_OPEN_LOOP_H

#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

extern "C" {
#include "core/clock.h"
#include "cqrs_counters.h"
}

namespace bench_engine {

/* Sleeps until the monotonic time due_ns. */
inline void sleep_until(uint64_t due_ns)
{
	struct timespec ts = { (time_t)(due_ns / 1000000000u), (long)(due_ns % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR)
		;
}

/* Latency counters of the BM_EngineVisible* benchmarks (ns). */
inline void report_latency(benchmark::State &state, std::vector<uint64_t> &visible,
		    std::vector<uint64_t> &acks, int burst)
{
	auto q = [](const std::vector<uint64_t> &v, double p) {
		return v.empty() ? 0.0 : (double)v[(size_t)(p * (double)(v.size() - 1))];
	};
	std::sort(visible.begin(), visible.end());
	std::sort(acks.begin(), acks.end());
	state.counters["p50_ns"] = q(visible, 0.5);
	state.counters["p99_ns"] = q(visible, 0.99);
	state.counters["p999_ns"] = q(visible, 0.999);
	state.counters["ack_p50_ns"] = q(acks, 0.5);
	state.counters["ack_p99_ns"] = q(acks, 0.99);
	state.counters["burst"] = burst;
}

/* Quantile q of a counters-region histogram: its bucket's low end. */
inline double hist_quantile(const uint64_t *h, double q)
{
	uint64_t total = 0, seen = 0;
	for (unsigned b = 0; b < CQRS_COUNTERS_HIST; b++)
		total += h[b];
	for (unsigned b = 0; b < CQRS_COUNTERS_HIST; b++) {
		seen += h[b];
		if (total && seen > (uint64_t)(q * (double)total))
			return (double)cqrs_counters_bucket_low(b);
	}
	return 0;
}

/* CQRS_BENCH_BURST (1..100), default 10. */
inline int bench_burst()
{
	const char *bs = getenv("CQRS_BENCH_BURST");
	return bs && atoi(bs) > 0 && atoi(bs) <= 100 ? atoi(bs) : 10;
}

/* An open-loop client in one thread: every burst/rate seconds it calls
 * send(slot) on schedule, whatever is still in flight (at most kSlots
 * bursts, 100 ms at the default rate), and in between polls the oldest
 * bursts in order with poll(slot, &acked_ns) (true once complete; acked_ns
 * set when answered). A burst's sample runs to when the poll saw it
 * complete, from when it was due if the client was busy polling past that
 * time (a stall behind it delays the sends: no coordinated omission), else
 * from its send (a late timer wake-up is the client's, not the engine's).
 * The thread sleeps only when nothing is in flight, and yields while it
 * polls (a spin would hold a core the engine may need). Returns the
 * seconds it sent for. */
constexpr size_t kSlots = 1024;

template <class Send, class Poll>
double open_loop(benchmark::State &state, uint64_t rate, size_t burst, Send send, Poll poll_slot,
		 std::vector<uint64_t> &samples, std::vector<uint64_t> &acks)
{
	const uint64_t period = burst * 1000000000ull / rate;
	const int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	static uint64_t sent_at[kSlots], acked_at[kSlots];
	uint64_t head = 0, tail = 0; /* bursts [head, tail) in flight */
	auto poll = [&]() {
		for (; head != tail; head++) {
			size_t s = head % kSlots;
			if (!poll_slot(s, &acked_at[s]))
				return true;
			samples.push_back(cqrs__mono_ns() - sent_at[s]);
			acks.push_back(acked_at[s] - sent_at[s]);
		}
		return false;
	};
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	samples.reserve(1 << 20);
	acks.reserve(1 << 20);
	uint64_t due = cqrs__mono_ns(), begin = due;
	for (auto _ : state) {
		bool slept = false;
		due += period;
		while (cqrs__mono_ns() < due || tail - head == kSlots) {
			if (!poll()) {
				sleep_until(due);
				slept = true;
				break;
			}
			sched_yield();
		}
		size_t s = tail % kSlots;
		uint64_t now = cqrs__mono_ns();
		sent_at[s] = slept ? now : std::min(due, now);
		acked_at[s] = 0;
		if (!send(s))
			break;
		tail++;
	}
	double secs = (double)(cqrs__mono_ns() - begin) / 1e9;
	while (poll())
		sched_yield();
	prctl(PR_SET_TIMERSLACK, slack > 0 ? (unsigned long)slack : 50000ul, 0, 0, 0);
	return secs;
}

} /* namespace bench_engine */

#endif
