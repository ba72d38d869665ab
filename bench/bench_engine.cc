/*
 * bench/bench_engine.cc - the engine end to end with the orders domain,
 * beside the traditional single-model design in SQLite, same run.
 *
 *   BM_EngineCommands/M/T   pipelined CreateOrder submissions from one
 *                           thread (4 x 1024 in flight), durability M
 *                           (0 none, 1 batch), threading T (0 dedicated,
 *                           1 shared): acknowledged commands/s.
 *   BM_EngineVisible/M/R/T  command-to-visible latency at R commands/s,
 *                           threading T (0 dedicated, 1 shared): a probe
 *                           submits one CreateOrder every 100 us and waits
 *                           until the order_summaries view shows it
 *                           (cqrs_view_wait), while an open-loop load thread
 *                           sends the rest of R in bursts. Counters p50_ns,
 *                           p99_ns, p999_ns (visible), ack_p50_ns, ack_p99_ns
 *                           (the ticket's answer), rate (commands/s the
 *                           engine received), burst.
 *   BM_EngineVisibleOneClient/T/R
 *                           the same at R commands/s from one client thread
 *                           (durability none): a burst of 10 every 100 us,
 *                           each burst timed until the view shows all of it.
 *                           With the engine's one command thread (T = 1)
 *                           that is two threads for two cores.
 *   BM_HandoffFloor/R       the same client against a bare echo thread: the
 *                           floor this machine sets (run first, before any
 *                           engine has mapped memory).
 *   BM_EngineRecovery/V     restart over a journal of kRecoveryEvents events:
 *                           V = 0 views resumed (write model replay only),
 *                           V = 1 views removed (write model + view rebuild).
 *                           events/s, median of 5 restarts.
 *   BM_SqliteCommands/B     the same CreateOrder validation and writes in
 *                           SQLite (WAL, synchronous=FULL) over normalized
 *                           tables: one transaction per command (B = 1) or
 *                           1024 per transaction (B = 1024).
 *   BM_QueryView            "active orders of customer C" from the
 *                           active_orders view (the order_summaries rows of
 *                           orders still open): one secondary-index lookup
 *                           (the status filter stays, as a check).
 *   BM_QuerySqliteJoin      the same answer (with customer name, item count,
 *                           total) by JOIN + GROUP BY over customers, orders
 *                           and order_items, indexed, same data.
 *
 * Knobs (environment): CQRS_BENCH_BURST (BM_EngineVisible*'s burst,
 * 1..100, default 10), CQRS_BENCH_INLINE_WRITE (cqrs_config.
 * inline_write_bytes), CQRS_BENCH_IDLE_YIELD_US (cqrs_config.idle_yield_us).
 *
 * Everything lives under a temp folder and unique engine names, removed at
 * the end.
 */
#include "bench/harness.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <ftw.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern "C" {
#include "core/clock.h"
#include "cqrs_counters.h"
#include "cqrs_view.h"
#include "examples/orders/orders.h"
}

namespace {

/* Counters are written by engine threads: read them relaxed. */
template <class T> T ctr(const T &v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }

constexpr uint64_t kCustomers = 10000;
constexpr uint64_t kQueryOrders = 200000;
constexpr uint64_t kRecoveryEvents = 1000000;
/* Orders one engine is sized for: a throughput run (kRunIterations
 * batches) stays below it, so it measures steady state, not a write-model rehash or
 * a view's growth (a user sizes for the data; growth has its own tests). */
constexpr uint64_t kOrderCapacity = 1u << 22;
constexpr int kBatch = 1024;
constexpr int kDepth = 4;
constexpr int kRunIterations = 2560; /* batches of kBatch per throughput run */
static_assert((uint64_t)kRunIterations * kBatch + kCustomers <= kOrderCapacity,
	      "a throughput run's orders and customers fit the aggregates it is sized for");

std::string g_root;
int g_seq;

int rm_one(const char *path, const struct stat *, int, struct FTW *) { return remove(path); }

const std::string &root()
{
	if (g_root.empty()) {
		const char *t = getenv("TMPDIR");
		char buf[512];
		snprintf(buf, sizeof buf, "%s/cqrs-bench-engine.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(buf))
			abort();
		g_root = buf;
	}
	return g_root;
}

struct engine_env {
	std::string name, dir;
	orders_model m{};
	cqrs_engine *e = nullptr;
	uint64_t orders = kOrderCapacity; /* sizes the write model and views */
	bool pretouch = true;             /* cqrs_config.pretouch */
	int threading = CQRS_THREADING_DEDICATED; /* cqrs_config.threading */

	int open(int durability, bool fresh)
	{
		if (fresh) {
			char n[64];
			snprintf(n, sizeof n, "bench_%d_%d", (int)getpid(), g_seq++);
			name = n;
			dir = root() + "/" + name;
		}
		if (orders_model_init(&m, orders))
			return -1;
		cqrs_config cfg;
		cqrs_config_init(&cfg);
		cfg.name = name.c_str();
		cfg.data_dir = dir.c_str();
		cfg.durability = durability;
		cfg.projector_threads = 2;
		cfg.ring_bytes = 64u << 20;
		cfg.aggregates_hint = orders; /* a power of two (slots round up); the customers fit its slack */
		cfg.pretouch = pretouch;
		/* CQRS_BENCH_INLINE_WRITE=bytes: cqrs_config.inline_write_bytes;
		 * CQRS_BENCH_IDLE_YIELD_US=us: cqrs_config.idle_yield_us. */
		if (const char *iw = getenv("CQRS_BENCH_INLINE_WRITE"))
			cfg.inline_write_bytes = (uint32_t)strtoul(iw, nullptr, 10);
		cfg.threading = threading;
		if (const char *iy = getenv("CQRS_BENCH_IDLE_YIELD_US"))
			cfg.idle_yield_us = (uint32_t)strtoul(iy, nullptr, 10);
		int rc = cqrs_engine_open(&cfg, &m, &e);
		if (!rc)
			rc = orders_register(e, orders, orders, 1u << 15); /* every order may be open */
		if (!rc)
			rc = cqrs_engine_start(e);
		if (rc) {
			fprintf(stderr, "engine: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
			return rc;
		}
		return 0;
	}

	void close(bool remove)
	{
		if (e)
			cqrs_engine_close(e);
		e = nullptr;
		orders_model_free(&m);
		if (remove) {
			cqrs_engine_remove_segments(name.c_str());
			nftw(dir.c_str(), rm_one, 16, FTW_DEPTH | FTW_PHYS);
		}
	}
};

/* CPU time used by all threads of this process so far. */
uint64_t process_cpu_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Submits cmds[0, n), retrying while the queue is full. Returns 0 or the
 * submit error; *accepted: how many the engine took (their tickets are
 * armed, the rest untouched). */
int submit_retrying(cqrs_engine *e, cqrs_command *cmds, cqrs_ticket *t, int n, int *accepted)
{
	int done = 0, rc = 0;

	while (done < n) {
		rc = cqrs_submit_batch(e, cmds + done, t + done, (uint32_t)(n - done));
		if (rc == -EAGAIN) {
			std::this_thread::yield();
			continue;
		}
		if (rc < 0)
			break;
		done += rc;
		rc = 0;
	}
	*accepted = done;
	return rc;
}

/* Submits all of cmds and waits for their answers. */
void submit_all(cqrs_engine *e, cqrs_command *cmds, cqrs_ticket *t, int n)
{
	int accepted;

	if (submit_retrying(e, cmds, t, n, &accepted))
		abort();
	for (int i = 0; i < n; i++)
		cqrs_ticket_wait(&t[i], UINT64_MAX);
}

void register_customers(cqrs_engine *e)
{
	std::vector<register_customer> rc(kBatch);
	std::vector<cqrs_command> cmds(kBatch);
	std::vector<cqrs_ticket> t(kBatch);
	for (uint64_t id = 1; id <= kCustomers;) {
		int n = 0;
		for (; n < kBatch && id <= kCustomers; n++, id++) {
			memset(&rc[n], 0, sizeof rc[n]);
			rc[n].customer_id = id;
			snprintf(rc[n].name, sizeof rc[n].name, "customer-%llu", (unsigned long long)id);
			cmds[n] = cqrs_command{ CMD_REGISTER_CUSTOMER, sizeof(register_customer), &rc[n] };
		}
		submit_all(e, cmds.data(), t.data(), n);
	}
}

uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

void fill_create(create_order *co, uint64_t order_id)
{
	memset(co, 0, sizeof *co);
	co->order_id = order_id;
	co->customer_id = 1 + mix(order_id) % kCustomers;
	co->item_count = 1 + (uint32_t)(order_id % 7);
	co->total = (int64_t)(100 + mix(order_id ^ 7) % 100000);
	snprintf(co->shipping_address, sizeof co->shipping_address, "%u Main St",
		 (unsigned)(order_id % 9999));
}

/* ---- latency: the client and the floor ------------------------------------------ */

/* Sleeps until the monotonic time due_ns. */
void sleep_until(uint64_t due_ns)
{
	struct timespec ts = { (time_t)(due_ns / 1000000000u), (long)(due_ns % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR)
		;
}

/* Latency counters of the BM_EngineVisible* benchmarks (ns). */
void report_latency(benchmark::State &state, std::vector<uint64_t> &visible,
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
double hist_quantile(const uint64_t *h, double q)
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
int bench_burst()
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
BENCHMARK(BM_HandoffFloor)->Arg(100000)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(2.0);

/* ---- engine: throughput ------------------------------------------------------- */

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
/* A fixed count (2.6M commands, one engine per run): a time-based run lets
 * a faster engine take more orders than it was sized for, and the run
 * then measures a write-model rehash and a view's growth (as it did in
 * about one run in three at 1.5M commands/s). */
BENCHMARK(BM_EngineCommands)
	->Args({ 0, CQRS_THREADING_DEDICATED })
	->Args({ 1, CQRS_THREADING_DEDICATED })
	->Args({ 0, CQRS_THREADING_SHARED })
	->Args({ 1, CQRS_THREADING_SHARED })
	->Iterations(kRunIterations)
	->Unit(benchmark::kMillisecond)
	->UseRealTime();

/* ---- engine: command-to-visible ------------------------------------------------- */

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
BENCHMARK(BM_EngineVisible)
	->Args({ 0, 100000, CQRS_THREADING_DEDICATED })
	->Args({ 0, 100000, CQRS_THREADING_SHARED })
	->Args({ 1, 100000, CQRS_THREADING_DEDICATED })
	->Unit(benchmark::kMicrosecond)
	->UseRealTime()
	->MinTime(2.0);

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
BENCHMARK(BM_EngineVisibleOneClient)
	->Args({ CQRS_THREADING_DEDICATED, 100000 })
	->Args({ CQRS_THREADING_SHARED, 100000 })
	->Unit(benchmark::kMicrosecond)
	->UseRealTime()
	->MinTime(2.0);

/* ---- engine: recovery ------------------------------------------------------------- */

engine_env g_recovery;

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
/* One restart per repetition; the table shows the median of 5 (the first
 * restarts after the journal is built fault in fresh memory, whose cost
 * varies most on a VM). */
BENCHMARK(BM_EngineRecovery)
	->Arg(0)
	->Arg(1)
	->Unit(benchmark::kMillisecond)
	->UseRealTime()
	->Iterations(1)
	->Repetitions(5)
	->ReportAggregatesOnly(true);

/* ---- SQLite: the traditional design -------------------------------------------------- */

struct sqlite_env {
	sqlite3 *db = nullptr;
	sqlite3_stmt *cust = nullptr, *exists = nullptr, *ins_order = nullptr, *ins_item = nullptr;
	std::string path;

	int open(const char *tag)
	{
		path = root() + "/" + tag + ".sqlite";
		remove(path.c_str());
		if (sqlite3_open(path.c_str(), &db) != SQLITE_OK)
			return -1;
		const char *ddl =
			"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			"CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, active INTEGER NOT NULL);"
			"CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),"
			" status INTEGER NOT NULL, created_at INTEGER NOT NULL, shipped_at INTEGER, address TEXT);"
			"CREATE INDEX orders_by_customer ON orders(customer_id);"
			"CREATE TABLE order_items(order_id INTEGER NOT NULL REFERENCES orders(id), sku INTEGER NOT NULL,"
			" qty INTEGER NOT NULL, price INTEGER NOT NULL);"
			"CREATE INDEX items_by_order ON order_items(order_id);";
		if (sqlite3_exec(db, ddl, nullptr, nullptr, nullptr) != SQLITE_OK)
			return -1;
		sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
		sqlite3_stmt *ins;
		sqlite3_prepare_v2(db, "INSERT INTO customers VALUES(?, ?, 1)", -1, &ins, nullptr);
		for (uint64_t id = 1; id <= kCustomers; id++) {
			char name[32];
			snprintf(name, sizeof name, "customer-%llu", (unsigned long long)id);
			sqlite3_bind_int64(ins, 1, (sqlite3_int64)id);
			sqlite3_bind_text(ins, 2, name, -1, SQLITE_TRANSIENT);
			sqlite3_step(ins);
			sqlite3_reset(ins);
		}
		sqlite3_finalize(ins);
		sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
		sqlite3_prepare_v2(db, "SELECT active FROM customers WHERE id = ?", -1, &cust, nullptr);
		sqlite3_prepare_v2(db, "SELECT 1 FROM orders WHERE id = ?", -1, &exists, nullptr);
		sqlite3_prepare_v2(db, "INSERT INTO orders VALUES(?, ?, ?, ?, NULL, ?)", -1, &ins_order, nullptr);
		sqlite3_prepare_v2(db, "INSERT INTO order_items VALUES(?, ?, ?, ?)", -1, &ins_item, nullptr);
		return 0;
	}

	/* The CreateOrder command: validate against the model, then write. */
	bool create_order(const ::create_order &co, uint32_t status)
	{
		sqlite3_bind_int64(cust, 1, (sqlite3_int64)co.customer_id);
		bool ok = sqlite3_step(cust) == SQLITE_ROW && sqlite3_column_int(cust, 0) == 1;
		sqlite3_reset(cust);
		sqlite3_bind_int64(exists, 1, (sqlite3_int64)co.order_id);
		ok = ok && sqlite3_step(exists) != SQLITE_ROW;
		sqlite3_reset(exists);
		if (!ok)
			return false;
		sqlite3_bind_int64(ins_order, 1, (sqlite3_int64)co.order_id);
		sqlite3_bind_int64(ins_order, 2, (sqlite3_int64)co.customer_id);
		sqlite3_bind_int(ins_order, 3, (int)status);
		sqlite3_bind_int64(ins_order, 4, (sqlite3_int64)cqrs__wall_ns());
		sqlite3_bind_text(ins_order, 5, co.shipping_address, -1, SQLITE_STATIC);
		sqlite3_step(ins_order);
		sqlite3_reset(ins_order);
		for (uint32_t i = 0; i < co.item_count; i++) {
			sqlite3_bind_int64(ins_item, 1, (sqlite3_int64)co.order_id);
			sqlite3_bind_int(ins_item, 2, (int)i);
			sqlite3_bind_int(ins_item, 3, 1);
			sqlite3_bind_int64(ins_item, 4, co.total / co.item_count);
			sqlite3_step(ins_item);
			sqlite3_reset(ins_item);
		}
		return true;
	}

	void close()
	{
		sqlite3_finalize(cust);
		sqlite3_finalize(exists);
		sqlite3_finalize(ins_order);
		sqlite3_finalize(ins_item);
		sqlite3_close(db);
		remove(path.c_str());
		remove((path + "-wal").c_str());
		remove((path + "-shm").c_str());
	}
};

void BM_SqliteCommands(benchmark::State &state)
{
	sqlite_env s;
	if (s.open(state.range(0) == 1 ? "txn1" : "txnN")) {
		state.SkipWithError("sqlite open failed");
		return;
	}
	const int per_txn = (int)state.range(0);
	uint64_t next = 1, done = 0;
	for (auto _ : state) {
		sqlite3_exec(s.db, "BEGIN", nullptr, nullptr, nullptr);
		for (int i = 0; i < per_txn; i++) {
			::create_order co;
			fill_create(&co, next++);
			s.create_order(co, ORDER_CREATED);
		}
		sqlite3_exec(s.db, "COMMIT", nullptr, nullptr, nullptr);
		done += (uint64_t)per_txn;
	}
	state.SetItemsProcessed((int64_t)done);
	s.close();
}
BENCHMARK(BM_SqliteCommands)->Arg(1)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

/* ---- the seed query ------------------------------------------------------------------ */

uint32_t status_of(uint64_t order_id) { return 1 + (uint32_t)(mix(order_id ^ 99) % 4); }

engine_env g_query;
sqlite_env g_sql;

void build_query_data()
{
	if (g_query.e)
		return;
	g_query.orders = 1u << 20;
	if (g_query.open(CQRS_DURABILITY_NONE, true) || g_sql.open("query"))
		abort();
	register_customers(g_query.e);
	std::vector<create_order> co(kBatch);
	std::vector<ship_order> ref(kBatch);
	std::vector<cqrs_command> cmds(kBatch);
	std::vector<cqrs_ticket> t(kBatch);
	sqlite3_exec(g_sql.db, "PRAGMA synchronous=OFF; BEGIN", nullptr, nullptr, nullptr);
	for (uint64_t id = 1; id <= kQueryOrders;) {
		uint64_t first = id;
		int n = 0;
		for (; n < kBatch && id <= kQueryOrders; n++, id++) {
			fill_create(&co[n], id);
			cmds[n] = cqrs_command{ CMD_CREATE_ORDER, sizeof(create_order), &co[n] };
			g_sql.create_order(co[n], status_of(id));
		}
		submit_all(g_query.e, cmds.data(), t.data(), n);
		/* move each order to its final status: shipped, completed, cancelled */
		for (int pass = 0; pass < 2; pass++) {
			int m = 0;
			for (uint64_t o = first; o < first + (uint64_t)n; o++) {
				uint32_t st = status_of(o), type = 0;
				if (pass == 0 && st == ORDER_CANCELLED) type = CMD_CANCEL_ORDER;
				else if (pass == 0 && st >= ORDER_SHIPPED && st != ORDER_CANCELLED) type = CMD_SHIP_ORDER;
				else if (pass == 1 && st == ORDER_COMPLETED) type = CMD_COMPLETE_ORDER;
				if (!type)
					continue;
				ref[m].order_id = o;
				cmds[m] = cqrs_command{ type, sizeof(ship_order), &ref[m] };
				m++;
			}
			submit_all(g_query.e, cmds.data(), t.data(), m);
		}
	}
	sqlite3_exec(g_sql.db, "COMMIT; ANALYZE", nullptr, nullptr, nullptr);
	/* wait until the views caught up */
	cqrs_view *v;
	cqrs_view_open(g_query.name.c_str(), "order_summaries", &v);
	cqrs_view_wait(v, cqrs_engine_durable_seq(g_query.e), 60000000000ull);
	cqrs_view_close(v);
}

struct active_sum {
	uint64_t orders;
	int64_t total;
};

int count_active(void *arg, const void *row, size_t)
{
	const order_summary *o = (const order_summary *)row;
	active_sum *a = (active_sum *)arg;
	if (o->status == ORDER_CREATED || o->status == ORDER_SHIPPED) {
		a->orders++;
		a->total += o->total;
	}
	return 0;
}

struct checked_sum {
	active_sum sum;
	uint64_t rows;
};

int count_checked(void *arg, const void *row, size_t n)
{
	checked_sum *c = (checked_sum *)arg;
	c->rows++;
	return count_active(&c->sum, row, n);
}

/* Both sides must give the same answer: the number of active orders of
 * every customer, from active_orders and from SQLite. */
bool query_answers_agree()
{
	cqrs_view *v;
	sqlite3_stmt *q;
	bool ok = true;

	if (cqrs_view_open(g_query.name.c_str(), "active_orders", &v))
		return false;
	sqlite3_prepare_v2(g_sql.db, "SELECT count(*) FROM orders WHERE customer_id = ? AND status IN (1, 2)",
			   -1, &q, nullptr);
	for (uint64_t cust = 1; cust <= kCustomers && ok; cust++) {
		checked_sum a{ { 0, 0 }, 0 };
		/* every row it returns must be active: count them all */
		ok = cqrs_view_find(v, "customer_id", &cust, sizeof cust, count_checked, &a, 0) >= 0;
		sqlite3_bind_int64(q, 1, (sqlite3_int64)cust);
		ok = ok && sqlite3_step(q) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(q, 0) == a.sum.orders &&
		     a.rows == a.sum.orders;
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	cqrs_view_close(v);
	return ok;
}

void BM_QueryView(benchmark::State &state)
{
	build_query_data();
	if (!query_answers_agree()) {
		state.SkipWithError("active_orders and SQLite disagree");
		return;
	}
	cqrs_view *v;
	if (cqrs_view_open(g_query.name.c_str(), "active_orders", &v)) {
		state.SkipWithError("view open failed");
		return;
	}
	uint64_t c = 0, rows = 0;
	for (auto _ : state) {
		uint64_t cust = 1 + mix(c++) % kCustomers;
		active_sum a{ 0, 0 };
		cqrs_view_find(v, "customer_id", &cust, sizeof cust, count_active, &a, 0);
		rows += a.orders;
		benchmark::DoNotOptimize(a);
	}
	state.SetItemsProcessed((int64_t)c);
	state.counters["active_per_query"] = c ? (double)rows / (double)c : 0;
	cqrs_view_close(v);
}
BENCHMARK(BM_QueryView)->UseRealTime()->MinTime(1.0);

void BM_QuerySqliteJoin(benchmark::State &state)
{
	build_query_data();
	sqlite3_stmt *q;
	sqlite3_prepare_v2(g_sql.db,
			   "SELECT o.id, c.name, COUNT(i.sku), SUM(i.qty * i.price) FROM orders o"
			   " JOIN customers c ON c.id = o.customer_id"
			   " JOIN order_items i ON i.order_id = o.id"
			   " WHERE o.customer_id = ? AND o.status IN (1, 2) GROUP BY o.id, c.name",
			   -1, &q, nullptr);
	uint64_t c = 0, rows = 0;
	for (auto _ : state) {
		uint64_t cust = 1 + mix(c++) % kCustomers;
		sqlite3_bind_int64(q, 1, (sqlite3_int64)cust);
		while (sqlite3_step(q) == SQLITE_ROW)
			rows++;
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	state.SetItemsProcessed((int64_t)c);
	state.counters["active_per_query"] = c ? (double)rows / (double)c : 0;
}
BENCHMARK(BM_QuerySqliteJoin)->UseRealTime()->MinTime(1.0);

} /* namespace */

/* The name google benchmark gives a throughput run with durability m and
 * threading t. */
std::string cmds_key(int m, int t = CQRS_THREADING_DEDICATED)
{
	return "BM_EngineCommands/" + std::to_string(m) + "/" + std::to_string(t) + "/iterations:" +
	       std::to_string(kRunIterations) + "/real_time";
}

/* BM_EngineVisible with durability m and threading t, at 100k/s. */
std::string vis_key(int m, int t)
{
	return "BM_EngineVisible/" + std::to_string(m) + "/100000/" + std::to_string(t) +
	       "/min_time:2.000/real_time";
}

/* BM_EngineVisibleOneClient with threading t, at 100k/s. */
std::string one_key(int t)
{
	return "BM_EngineVisibleOneClient/" + std::to_string(t) + "/100000/min_time:2.000/real_time";
}

int main(int argc, char **argv)
{
	int rc = cqrs_bench::main(argc, argv, "engine", "orders end to end vs SQLite (WAL, synchronous=FULL)", {
		{ "commands/s, batch durability", cmds_key(1),
		  "BM_SqliteCommands/1/min_time:2.000/real_time", "items_per_second", true,
		  "vs SQLite one txn per command; goal >= 1M/s" },
		{ "commands/s, batch durability", cmds_key(1),
		  "BM_SqliteCommands/1024/min_time:2.000/real_time", "items_per_second", true,
		  "vs SQLite 1024 commands per txn" },
		{ "commands/s, none durability", cmds_key(0),
		  cmds_key(1), "items_per_second", true,
		  "vs our own batch mode" },
		{ "commands/s, batch, shared threading", cmds_key(1, CQRS_THREADING_SHARED),
		  cmds_key(1), "items_per_second", true,
		  "projections on the command thread, vs projector threads" },
		{ "commands/s, none, shared threading", cmds_key(0, CQRS_THREADING_SHARED),
		  cmds_key(0), "items_per_second", true, "vs projector threads" },
		{ "cmd-to-visible p50 ns, none @100k/s", vis_key(0, 0), "", "p50_ns", false,
		  "probe + load threads, projector threads" },
		{ "cmd-to-visible p99 ns, none @100k/s", vis_key(0, 0), "", "p99_ns", false,
		  "goal <= 50000 (met where threads have cores)" },
		{ "cmd-to-visible p99.9 ns, none @100k/s", vis_key(0, 0), "", "p999_ns", false, "" },
		{ "cmd-to-ack p50 ns, none @100k/s", vis_key(0, 0), "", "ack_p50_ns", false,
		  "the ticket's answer, before the view" },
		{ "cmd-to-ack p99 ns, none @100k/s", vis_key(0, 0), "", "ack_p99_ns", false, "" },
		{ "cmd-to-visible p50 ns, none, shared", vis_key(0, 1), "", "p50_ns", false,
		  "the same, projections on the command thread" },
		{ "cmd-to-visible p99 ns, none, shared", vis_key(0, 1), "", "p99_ns", false,
		  "goal <= 50000 on 2 cores" },
		{ "cmd-to-visible p99.9 ns, none, shared", vis_key(0, 1), "", "p999_ns", false, "" },
		{ "cmd-to-visible p50 ns, one client", one_key(0), "", "p50_ns", false,
		  "open loop from one thread, bursts of 10, projector threads" },
		{ "cmd-to-visible p99 ns, one client", one_key(0), "", "p99_ns", false, "" },
		{ "cmd-to-visible p50 ns, one client, shared", one_key(1), "", "p50_ns", false,
		  "the same, projections on the command thread" },
		{ "cmd-to-visible p99 ns, one client, shared", one_key(1),
		  "BM_HandoffFloor/100000/min_time:2.000/real_time", "p99_ns", false,
		  "vs two bare threads handing off (the floor)" },
		{ "cmd-to-visible p99.9 ns, one client, shared", one_key(1),
		  "BM_HandoffFloor/100000/min_time:2.000/real_time", "p999_ns", false,
		  "vs the floor: host and kernel stalls" },
		{ "cmd-to-visible p50 ns, batch @100k/s", vis_key(1, 0), "", "p50_ns", false,
		  "includes the fdatasync" },
		{ "cmd-to-visible p99 ns, batch @100k/s", vis_key(1, 0), "", "p99_ns", false, "" },
		{ "recovery events/s, write model", "BM_EngineRecovery/0/iterations:1/repeats:5/real_time", "",
		  "items_per_second", true, "goal >= 5M/s" },
		{ "recovery events/s, model + views", "BM_EngineRecovery/1/iterations:1/repeats:5/real_time", "",
		  "items_per_second", true, "" },
		{ "active orders of a customer, queries/s", "BM_QueryView/min_time:1.000/real_time",
		  "BM_QuerySqliteJoin/min_time:1.000/real_time", "items_per_second", true,
		  "vs SQLite JOIN + GROUP BY; goal >= 100x" },
	});
	g_query.close(true);
	g_sql.close();
	g_recovery.close(true);
	if (!g_root.empty())
		nftw(g_root.c_str(), rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
