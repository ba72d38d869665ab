/*
 * bench/bench_ring.cc - the rings beside Concurrency Kit's ck_ring and the
 * machine's core-to-core latency, all measured in the same run.
 *
 *   bcast_1p1c     broadcast ring, 1 producer + 1 consumer, 64-byte records,
 *                  published in batches of 32, consumed with consume_batch;
 *                  busy-spin, threads pinned to CPUs 0 and 1
 *   ck_spsc_1p1c   ck_ring SPSC passing pointers to 64-byte messages, same pinning
 *   bcast_1p3c     1 producer + 3 consumers, each sees every record; yield
 *                  (4 threads on 2 cores; not pinned: the scheduler places
 *                  them, which makes these runs noisier, hence 5 repetitions)
 *   ck_spmc_1p3c   ck_ring SPMC, each message goes to one of 3 consumers; yield
 *   mpsc_2p1c      MPSC ring, 2 producer threads, 1 consumer; yield
 *   ck_mpsc_2p1c   ck_ring MPSC, same shape; yield
 *   bcast_latency  one-way latency, 1P-1C spinning: the producer stamps
 *                  CLOCK_MONOTONIC into the record, the consumer records
 *                  now - stamp in a 1 ns histogram (p50/p99/p99.9); closed
 *                  loop: a record leaves once the previous one arrived and
 *                  1 us passed, so each finds an idle ring
 *   stamp_floor    the same stamped measurement over one cache line (the
 *                  stamp is the flag): what this method reads for a bare
 *                  cache-line transfer
 *   pingpong       two threads bouncing one cache line: one-way = RTT / 2
 *                  (median over samples of 100 round trips)
 *   bcast_rtt      the same round trip through two broadcast rings
 *
 * Records/s count records the producer(s) moved (for bcast_1p3c each is
 * delivered to all three consumers; "deliveries" counts records x
 * consumers). Everything allocates its ring per repetition; repetitions: 3
 * (5 for the runs with more threads than cores); the table shows medians.
 *
 * Reading the latency rows: the ping-pong bounces one line that migrates
 * with ownership, one transfer per direction. A ring message needs at
 * least the cursor line and the record line, each written by one core and
 * read by the other (two to three transfers), and the stamp method itself
 * (stamp_floor: one line, two clock reads) already reads well above twice
 * the ping-pong figure on this machine. bcast_rtt measures the ring without
 * clocks.
 */
#include "bench/harness.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "bench/lib/ck_ring_baseline.h"
#include "cqrs_ring.h"

namespace {

constexpr uint64_t kBcastCap = 256 * 1024; /* ~3600 records of 72 bytes */
constexpr uint64_t kMpscCap = 256 * 1024;
constexpr unsigned kCkSlots = 4096;
constexpr uint32_t kMsg = 64;
constexpr unsigned kBatch = 32;
constexpr uint64_t kSpinRecords = 20000000;
constexpr uint64_t kYieldRecords = 4000000;
constexpr int kLatencySamples = 200000;
constexpr uint64_t kPaceNs = 1000;

uint64_t now_ns()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void pin_this_thread(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

/* Pins the benchmark's own thread for a scope, then restores its mask. */
struct pin_scope {
	unsigned char saved[sizeof(cpu_set_t)];
	bool on;
	explicit pin_scope(int cpu) : on(cpu >= 0 && ckb_pin_self(cpu, saved, sizeof saved) == 0) {}
	~pin_scope()
	{
		if (on)
			ckb_unpin_self(saved);
	}
};

struct ring_mem {
	void *p;
	explicit ring_mem(size_t n) : p(aligned_alloc(64, (n + 63) & ~(size_t)63)) {}
	~ring_mem() { free(p); }
};

/* The 64-byte message: its sequence number, then seven more words. */
inline void write_msg(void *dst, uint64_t seq)
{
	uint64_t *w = static_cast<uint64_t *>(dst);
	for (int i = 0; i < 8; i++)
		w[i] = seq + (uint64_t)i;
}

struct sink {
	alignas(64) uint64_t sum = 0;
	uint64_t n = 0;
};

int on_record(void *arg, uint32_t, const void *data, uint32_t)
{
	sink *s = static_cast<sink *>(arg);
	uint64_t v;
	memcpy(&v, data, 8);
	s->sum += v;
	s->n++;
	return 0;
}

/* ---- throughput: broadcast ------------------------------------------------ */

void BM_Bcast(benchmark::State &st)
{
	const unsigned nc = (unsigned)st.range(0);
	const bool spin = nc + 1 <= 2; /* threads <= cores */
	const cqrs_ring_wait kind = spin ? CQRS_WAIT_SPIN : CQRS_WAIT_YIELD;
	const uint64_t n = spin ? kSpinRecords : kYieldRecords;
	uint64_t moved = 0;

	for (auto _ : st) {
		size_t size = cqrs_bcast_footprint(kBcastCap, 4);
		ring_mem mem(size);
		cqrs_bcast *r;
		if (cqrs_bcast_init(mem.p, size, kBcastCap, 4, &r) != 0) {
			st.SkipWithError("init");
			return;
		}
		std::vector<cqrs_bcast_consumer *> cs(nc);
		std::vector<sink> sinks(nc);
		std::vector<std::thread> th;
		for (unsigned i = 0; i < nc; i++)
			cqrs_bcast_consumer_add_at_tail(r, &cs[i]);
		pin_scope pin(spin ? 0 : -1);
		for (unsigned i = 0; i < nc; i++)
			th.emplace_back([&, i] {
				if (spin)
					pin_this_thread(1);
				while (sinks[i].n < n)
					if (cqrs_bcast_consume_batch(cs[i], on_record, &sinks[i], 0) == 0)
						cqrs_bcast_wait(cs[i], kind, CQRS_RING_FOREVER);
			});
		for (uint64_t seq = 0; seq < n;) {
			for (unsigned k = 0; k < kBatch && seq < n; k++, seq++) {
				void *p;
				cqrs_bcast_claim(r, 1, kMsg, kind, CQRS_RING_FOREVER, &p);
				write_msg(p, seq);
			}
			cqrs_bcast_publish(r);
		}
		for (auto &t : th)
			t.join();
		for (unsigned i = 0; i < nc; i++) {
			if (sinks[i].n != n || sinks[i].sum != n * (n - 1) / 2)
				st.SkipWithError("lost or garbled records");
			cqrs_bcast_consumer_remove(cs[i]);
		}
		cqrs_bcast_close(r);
		moved += n;
	}
	st.SetItemsProcessed((int64_t)moved);
	/* each record reaches every consumer */
	st.counters["deliveries"] = benchmark::Counter((double)(moved * nc), benchmark::Counter::kIsRate);
}

void BM_CkSpsc(benchmark::State &st)
{
	uint64_t moved = 0;
	for (auto _ : st) {
		pin_scope pin(0);
		if (ckb_run(CKB_SPSC, 1, 1, kSpinRecords, kCkSlots, 0, 1) != kSpinRecords)
			st.SkipWithError("ck spsc lost messages");
		moved += kSpinRecords;
	}
	st.SetItemsProcessed((int64_t)moved);
}

void BM_CkSpmc(benchmark::State &st)
{
	uint64_t moved = 0;
	for (auto _ : st) {
		if (ckb_run(CKB_SPMC, 1, 3, kYieldRecords, kCkSlots, 1, 0) != kYieldRecords)
			st.SkipWithError("ck spmc lost messages");
		moved += kYieldRecords;
	}
	st.SetItemsProcessed((int64_t)moved);
	/* each message reaches one consumer */
	st.counters["deliveries"] = benchmark::Counter((double)moved, benchmark::Counter::kIsRate);
}

/* ---- throughput: MPSC ------------------------------------------------------ */

void BM_Mpsc(benchmark::State &st)
{
	const unsigned np = 2;
	const uint64_t n = kYieldRecords;
	uint64_t moved = 0;

	for (auto _ : st) {
		size_t size = cqrs_mpsc_footprint(kMpscCap, 4);
		ring_mem mem(size);
		cqrs_mpsc *r;
		if (cqrs_mpsc_init(mem.p, size, kMpscCap, 4, CQRS_RING_FOREVER, &r) != 0) {
			st.SkipWithError("init");
			return;
		}
		std::vector<std::thread> th;
		for (unsigned i = 0; i < np; i++)
			th.emplace_back([&, i] {
				cqrs_mpsc_producer *p;
				cqrs_mpsc_producer_open(r, &p);
				for (uint64_t seq = i * (n / np); seq < (i + 1) * (n / np); seq++) {
					void *d;
					cqrs_mpsc_claim(p, 1, kMsg, CQRS_WAIT_YIELD, CQRS_RING_FOREVER, &d);
					write_msg(d, seq);
					cqrs_mpsc_commit(p, kMsg);
				}
				cqrs_mpsc_producer_close(p);
			});
		sink s;
		while (s.n < n)
			if (cqrs_mpsc_poll(r, on_record, &s, 0) == 0)
				cqrs_mpsc_wait(r, CQRS_WAIT_YIELD, CQRS_RING_FOREVER);
		for (auto &t : th)
			t.join();
		if (s.n != n || s.sum != n * (n - 1) / 2)
			st.SkipWithError("lost or garbled records");
		cqrs_mpsc_close(r);
		moved += n;
	}
	st.SetItemsProcessed((int64_t)moved);
}

void BM_CkMpsc(benchmark::State &st)
{
	uint64_t moved = 0;
	for (auto _ : st) {
		if (ckb_run(CKB_MPSC, 2, 1, kYieldRecords, kCkSlots, 1, 0) != kYieldRecords)
			st.SkipWithError("ck mpsc lost messages");
		moved += kYieldRecords;
	}
	st.SetItemsProcessed((int64_t)moved);
}

/* ---- latency ------------------------------------------------------------- */

struct histogram {
	std::vector<uint32_t> b = std::vector<uint32_t>(1 << 17); /* 1 ns buckets up to 131 us */
	uint64_t n = 0;
	void add(uint64_t ns)
	{
		b[std::min<uint64_t>(ns, b.size() - 1)]++;
		n++;
	}
	double pct(double q) const
	{
		uint64_t want = (uint64_t)(q * (double)n), c = 0;
		for (size_t i = 0; i < b.size(); i++)
			if ((c += b[i]) > want)
				return (double)i;
		return (double)(b.size() - 1);
	}
};

struct lat_sink {
	histogram h;
	int n = 0;
	alignas(128) std::atomic<int> acked{0}; /* tells the producer a sample is done */
};

int on_stamp(void *arg, uint32_t, const void *data, uint32_t)
{
	uint64_t t = now_ns(), stamp;
	lat_sink *s = static_cast<lat_sink *>(arg);
	memcpy(&stamp, data, 8);
	s->h.add(t - stamp);
	s->n++;
	s->acked.store(s->n, std::memory_order_release);
	return 0;
}

/* Closed loop: the next sample leaves once the previous one has arrived
 * and kPaceNs have passed, so every sample finds idle cores and an empty
 * ring, and a preempted thread spoils one sample, not a queue of them. */
void pace(const std::atomic<int> &acked, int i, uint64_t t0)
{
	while (acked.load(std::memory_order_acquire) < i + 1)
		;
	while (now_ns() < t0 + kPaceNs)
		;
}

void report(benchmark::State &st, const histogram &h)
{
	st.counters["p50_ns"] = h.pct(0.50);
	st.counters["p99_ns"] = h.pct(0.99);
	st.counters["p999_ns"] = h.pct(0.999);
}

void BM_BcastLatency(benchmark::State &st)
{
	for (auto _ : st) {
		size_t size = cqrs_bcast_footprint(65536, 2);
		ring_mem mem(size);
		cqrs_bcast *r;
		cqrs_bcast_consumer *c;
		lat_sink s;
		if (cqrs_bcast_init(mem.p, size, 65536, 2, &r) != 0 || cqrs_bcast_consumer_add_at_tail(r, &c) != 0) {
			st.SkipWithError("init");
			return;
		}
		pin_scope pin(0);
		std::thread t([&] {
			pin_this_thread(1);
			while (s.n < kLatencySamples)
				if (cqrs_bcast_consume_batch(c, on_stamp, &s, 0) == 0)
					cqrs_bcast_wait(c, CQRS_WAIT_SPIN, CQRS_RING_FOREVER);
		});
		for (int i = 0; i < kLatencySamples; i++) {
			void *p;
			uint64_t t0 = now_ns();
			cqrs_bcast_claim(r, 1, kMsg, CQRS_WAIT_SPIN, CQRS_RING_FOREVER, &p);
			write_msg(p, t0);
			cqrs_bcast_publish(r);
			pace(s.acked, i, t0);
		}
		t.join();
		report(st, s.h);
		cqrs_bcast_consumer_remove(c);
		cqrs_bcast_close(r);
	}
}

void BM_StampFloor(benchmark::State &st)
{
	for (auto _ : st) {
		alignas(128) static std::atomic<uint64_t> line;
		lat_sink s;
		line.store(0);
		pin_scope pin(0);
		std::thread t([&] {
			uint64_t last = 0, v;
			pin_this_thread(1);
			while (s.n < kLatencySamples) {
				while ((v = line.load(std::memory_order_acquire)) == last)
					;
				s.h.add(now_ns() - v);
				last = v;
				s.n++;
				s.acked.store(s.n, std::memory_order_release);
			}
		});
		for (int i = 0; i < kLatencySamples; i++) {
			uint64_t t0 = now_ns();
			line.store(t0, std::memory_order_release);
			pace(s.acked, i, t0);
		}
		t.join();
		report(st, s.h);
	}
}

double median(std::vector<double> &v)
{
	std::nth_element(v.begin(), v.begin() + (long)v.size() / 2, v.end());
	return v[v.size() / 2];
}

void BM_PingPong(benchmark::State &st)
{
	const int samples = 20000, rounds = 100;
	for (auto _ : st) {
		alignas(128) static std::atomic<uint64_t> line;
		std::vector<double> oneway;
		line.store(0);
		pin_scope pin(0);
		std::thread t([&] {
			pin_this_thread(1);
			for (uint64_t v = 1; v < 2ull * samples * rounds; v += 2) {
				while (line.load(std::memory_order_acquire) != v)
					;
				line.store(v + 1, std::memory_order_release);
			}
		});
		uint64_t v = 0;
		for (int s = 0; s < samples; s++) {
			uint64_t t0 = now_ns();
			for (int k = 0; k < rounds; k++, v += 2) {
				line.store(v + 1, std::memory_order_release);
				while (line.load(std::memory_order_acquire) != v + 2)
					;
			}
			oneway.push_back((double)(now_ns() - t0) / (2.0 * rounds));
		}
		t.join();
		st.counters["p50_ns"] = median(oneway);
	}
}

void BM_BcastRtt(benchmark::State &st)
{
	const int samples = 20000, rounds = 100;
	for (auto _ : st) {
		size_t size = cqrs_bcast_footprint(65536, 2);
		ring_mem m1(size), m2(size);
		cqrs_bcast *there, *back;
		cqrs_bcast_consumer *c_there, *c_back;
		std::vector<double> oneway;
		if (cqrs_bcast_init(m1.p, size, 65536, 2, &there) || cqrs_bcast_init(m2.p, size, 65536, 2, &back) ||
		    cqrs_bcast_consumer_add_at_tail(there, &c_there) || cqrs_bcast_consumer_add_at_tail(back, &c_back)) {
			st.SkipWithError("init");
			return;
		}
		pin_scope pin(0);
		std::thread t([&] {
			sink s;
			pin_this_thread(1);
			while (s.n < (uint64_t)samples * rounds) {
				uint64_t before = s.n;
				if (cqrs_bcast_consume_batch(c_there, on_record, &s, 0) == 0) {
					cqrs_bcast_wait(c_there, CQRS_WAIT_SPIN, CQRS_RING_FOREVER);
					continue;
				}
				for (; before < s.n; before++) {
					void *p;
					cqrs_bcast_claim(back, 1, kMsg, CQRS_WAIT_SPIN, CQRS_RING_FOREVER, &p);
					write_msg(p, before);
				}
				cqrs_bcast_publish(back);
			}
		});
		sink s;
		uint64_t seq = 0;
		for (int i = 0; i < samples; i++) {
			uint64_t t0 = now_ns();
			for (int k = 0; k < rounds; k++, seq++) {
				void *p;
				cqrs_bcast_claim(there, 1, kMsg, CQRS_WAIT_SPIN, CQRS_RING_FOREVER, &p);
				write_msg(p, seq);
				cqrs_bcast_publish(there);
				while (s.n <= seq)
					if (cqrs_bcast_consume_batch(c_back, on_record, &s, 0) == 0)
						cqrs_bcast_wait(c_back, CQRS_WAIT_SPIN, CQRS_RING_FOREVER);
			}
			oneway.push_back((double)(now_ns() - t0) / (2.0 * rounds));
		}
		t.join();
		st.counters["p50_ns"] = median(oneway);
		cqrs_bcast_consumer_remove(c_there);
		cqrs_bcast_consumer_remove(c_back);
		cqrs_bcast_close(there);
		cqrs_bcast_close(back);
	}
}

void common(benchmark::internal::Benchmark *b)
{
	b->Iterations(1)->Repetitions(3)->ReportAggregatesOnly(true)->UseRealTime()->Unit(benchmark::kMillisecond);
}

/* Runs with more threads than cores swing with thread placement: more samples. */
void common5(benchmark::internal::Benchmark *b)
{
	b->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true)->UseRealTime()->Unit(benchmark::kMillisecond);
}

} /* namespace */

BENCHMARK(BM_Bcast)->Name("bcast_1p1c")->Arg(1)->Apply(common);
BENCHMARK(BM_CkSpsc)->Name("ck_spsc_1p1c")->Apply(common);
BENCHMARK(BM_Bcast)->Name("bcast_1p3c")->Arg(3)->Apply(common5);
BENCHMARK(BM_CkSpmc)->Name("ck_spmc_1p3c")->Apply(common5);
BENCHMARK(BM_Mpsc)->Name("mpsc_2p1c")->Apply(common5);
BENCHMARK(BM_CkMpsc)->Name("ck_mpsc_2p1c")->Apply(common5);
BENCHMARK(BM_BcastLatency)->Name("bcast_latency")->Apply(common);
BENCHMARK(BM_StampFloor)->Name("stamp_floor")->Apply(common);
BENCHMARK(BM_PingPong)->Name("pingpong")->Apply(common);
BENCHMARK(BM_BcastRtt)->Name("bcast_rtt")->Apply(common);

int main(int argc, char **argv)
{
	const std::string s = "/iterations:1/repeats:3/real_time", s5 = "/iterations:1/repeats:5/real_time";
	return cqrs_bench::main(argc, argv, "ring", "rings vs ck_ring and core-to-core latency (same run)", {
		{"bcast 1P-1C 64B records/s", "bcast_1p1c/1" + s, "ck_spsc_1p1c" + s, "items_per_second", true,
		 "goal >= 1.0; spin, pinned; batch 32"},
		{"bcast 1P-3C 64B records/s", "bcast_1p3c/3" + s5, "ck_spmc_1p3c" + s5, "items_per_second", true,
		 "wait: yield (4 threads > 2 cores); ck: each to 1 of 3"},
		{"bcast 1P-3C 64B deliveries/s", "bcast_1p3c/3" + s5, "ck_spmc_1p3c" + s5, "deliveries", true,
		 "yield; records x consumers reached"},
		{"mpsc 2P-1C 64B records/s", "mpsc_2p1c" + s5, "ck_mpsc_2p1c" + s5, "items_per_second", true,
		 "wait: yield (3 threads > 2 cores)"},
		{"bcast one-way p50 ns (stamped)", "bcast_latency" + s, "pingpong" + s, "p50_ns", false,
		 "goal >= 0.5 (within 2x ping-pong RTT/2)"},
		{"bcast one-way p50 ns vs stamp floor", "bcast_latency" + s, "stamp_floor" + s, "p50_ns", false,
		 "floor: same clock, stamp on one line"},
		{"bcast one-way p99 ns", "bcast_latency" + s, "stamp_floor" + s, "p99_ns", false, "vs the floor's p99"},
		{"bcast one-way p99.9 ns", "bcast_latency" + s, "stamp_floor" + s, "p999_ns", false,
		 "vs the floor's p99.9; shared machine: preemption"},
		{"bcast RTT/2 ns (2 rings, no clock)", "bcast_rtt" + s, "pingpong" + s, "p50_ns", false,
		 "vs ping-pong RTT/2 (one line, no clock)"},
	});
}
