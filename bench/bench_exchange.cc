/*
 * bench/bench_exchange.cc - the matching-engine example (examples/exchange)
 * end to end, beside the same matching code in a plain loop:
 *   BM_ExchPlain               flow.h's order flow through book.c directly
 *                              (plan + apply per command, no engine): the
 *                              baseline of the throughput rows
 *   BM_ExchEngine/M/T          the same flow through the engine (durability
 *                              M, threading T): pipelined batches of 1024
 *                              from one thread, timed until both
 *                              projections applied the last command;
 *                              also the CPU time of all the process's
 *                              threads per order (less sensitive than
 *                              orders/s to a host shared with other work)
 *   BM_ExchVisible/R           open loop at R orders/s (bursts of 10 on
 *                              schedule, a late burst timed from when it
 *                              was due: no coordinated omission), each
 *                              burst timed from submit until a reader in
 *                              ANOTHER process sees top_of_book's applied
 *                              seq reach the burst's last event (the
 *                              reader logs (seq, time) in a shared memfd
 *                              on CLOCK_MONOTONIC; matched afterwards);
 *                              durability none, shared threading
 *   BM_ExchDepth/L             another process reading the top 10 levels
 *                              of each side of a book (two range reads of
 *                              book_levels' ordered index, snapshot) for
 *                              2 s, the engine idle (L 0) or under the
 *                              flow flat out (L 1); baseline BM_ExchDepthModel:
 *                              the same 20 levels walked in the write
 *                              model in-process
 * The reader process is this program re-executed with --exch-reader.
 */
#include "bench/harness.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern "C" {
#include "core/clock.h"
#include "cqrs.h"
#include "cqrs_view.h"
#include "examples/exchange/flow.h"
}

namespace {

constexpr uint32_t kInstruments = 4;
constexpr uint32_t kAccounts = 200;
constexpr uint64_t kCommands = 2u << 20; /* per throughput run */
constexpr uint32_t kBatch = 1024;
constexpr uint32_t kDepth = 4;
constexpr uint32_t kMaxOrders = 1u << 18;   /* the pool (as the demo's) */
constexpr uint32_t kOrdersView = 1u << 16;  /* the orders view's first capacity */
constexpr size_t kLog = 1u << 22; /* reader observations */

/* ---- the reader process's shared log ---- */
struct obs {
	uint64_t seq, ns;
};
struct shared_log {
	std::atomic<uint64_t> ready, stop, count, reads; /* count: obs written (release) */
	uint64_t levels;
	obs o[kLog];
};

shared_log *log_create(int *fd)
{
	*fd = memfd_create("exch-bench-log", 0); /* inherited by the reader */
	if (*fd < 0 || ftruncate(*fd, sizeof(shared_log)))
		return nullptr;
	void *p = mmap(nullptr, sizeof(shared_log), PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	return p == MAP_FAILED ? nullptr : (shared_log *)p;
}

std::string g_self;

pid_t spawn_reader(const char *mode, const std::string &engine, int fd)
{
	pid_t pid = fork();
	if (pid == 0) {
		char f[16];
		snprintf(f, sizeof f, "%d", fd);
		execl(g_self.c_str(), "bench_exchange", "--exch-reader", mode, engine.c_str(), f, (char *)nullptr);
		_exit(127);
	}
	return pid;
}

/* CPU time of every thread of this process so far (ns). */
uint64_t cpu_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int count_row(void *arg, const void *, size_t)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* The reader: "watch" waits for each new applied seq of top_of_book
 * (cqrs_view_wait: a short spin, then the segment's futex) and logs it,
 * reading instrument 1's row each time; "depth" reads the top 10 levels a side,
 * instruments in turn, until told to stop. */
int reader_main(const char *mode, const char *engine, int fd)
{
	shared_log *l = (shared_log *)mmap(nullptr, sizeof(shared_log), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cqrs_view *v = nullptr;
	bool watch = !strcmp(mode, "watch");

	if (l == MAP_FAILED)
		return 1;
	for (int i = 0; cqrs_view_open(engine, watch ? "top_of_book" : "book_levels", &v); i++) {
		if (i > 5000)
			return 1;
		usleep(1000);
	}
	l->ready.store(1, std::memory_order_release); /* pairs with the bench's acquire poll */
	if (watch) {
		uint64_t last = cqrs_view_applied_seq(v), n = 0, key = 1;
		top_of_book row;
		while (!l->stop.load(std::memory_order_acquire)) { /* pairs with the bench's release */
			/* spins briefly, then sleeps on the segment's futex until
			 * the engine publishes a later batch */
			if (cqrs_view_wait(v, last + 1, 100000000ull))
				continue;
			uint64_t s = cqrs_view_applied_seq(v);
			(void)cqrs_view_get(v, &key, 8, &row, sizeof row);
			if (n < kLog) {
				l->o[n] = obs{ s, cqrs__mono_ns() };
				l->count.store(++n, std::memory_order_release); /* the entry before the count */
			}
			last = s;
		}
	} else {
		uint64_t reads = 0, levels = 0;
		while (!l->stop.load(std::memory_order_acquire)) { /* pairs with the bench's release */
			for (uint32_t i = 1; i <= kInstruments; i++) {
				for (uint32_t s = 0; s < 2; s++) {
					uint32_t lo[2] = { i, s }, hi[2] = { i, s + 1 };
					cqrs_view_range(v, nullptr, lo, sizeof lo, hi, sizeof hi,
							(s == EXCH_BUY ? CQRS_RANGE_DESC : 0) | CQRS_RANGE_SNAPSHOT, 10,
							count_row, &levels);
				}
				reads++;
			}
		}
		l->levels = levels;
		l->reads.store(reads, std::memory_order_release); /* levels before reads */
	}
	cqrs_view_close(v);
	return 0;
}

/* ---- an engine with the exchange domain ---- */
struct xenv {
	std::string name, dir;
	exch_market m{};
	cqrs_engine *e = nullptr;

	int open(int durability, int threading)
	{
		static int n;
		char buf[256];
		snprintf(buf, sizeof buf, "xbench_%d_%d", (int)getpid(), ++n);
		name = buf;
		snprintf(buf, sizeof buf, "%s/cqrs-xbench.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(buf))
			return -errno;
		dir = buf;
		exch_flow f;
		exch_limits lim;
		exch_flow_init(&f, 1, kInstruments, kAccounts, 0);
		exch_flow_limits(&f, kMaxOrders, &lim);
		exchange_sizes sz = { 1u << 16, kOrdersView, (uint64_t)EXCH_TRADES_KEPT * kInstruments,
				      2 * (kAccounts + 1) * (kInstruments + 1) };
		cqrs_config cfg;
		int rc = exch_market_init(&m, &lim);
		if (rc)
			return rc;
		cqrs_config_init(&cfg);
		cfg.name = name.c_str();
		cfg.data_dir = dir.c_str();
		cfg.durability = durability;
		cfg.threading = threading;
		cfg.projector_threads = 2;
		cfg.pretouch = 1;
		cfg.aggregates_hint = 4096;
		rc = cqrs_engine_open(&cfg, &m, &e);
		rc = rc ? rc : exchange_register(e, &m, &sz);
		rc = rc ? rc : cqrs_engine_start(e);
		if (rc)
			fprintf(stderr, "bench_exchange: engine start: %s (%s)\n", cqrs_strerror(rc), cqrs_last_error());
		return rc;
	}

	void close()
	{
		if (e) {
			cqrs_engine_stop(e);
			cqrs_engine_close(e);
		}
		e = nullptr;
		cqrs_engine_remove_segments(name.c_str());
		exch_market_free(&m);
		if (!dir.empty()) {
			std::string cmd = "rm -rf -- '" + dir + "'";
			if (system(cmd.c_str()) != 0)
				fprintf(stderr, "bench_exchange: could not remove %s\n", dir.c_str());
		}
	}
};

struct batch {
	exch_cmd data[kBatch];
	cqrs_command cmds[kBatch];
	cqrs_ticket t[kBatch];
	uint32_t n = 0;
};

void to_command(const exch_cmd *c, cqrs_command *out)
{
	*out = cqrs_command{};
	out->type = c->type;
	out->size = c->size;
	out->data = &c->u;
}

int submit(cqrs_engine *e, cqrs_command *cmds, cqrs_ticket *t, uint32_t n)
{
	for (uint32_t done = 0; done < n;) {
		int rc = cqrs_submit_batch(e, cmds + done, t + done, n - done);
		if (rc == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (rc < 0)
			return rc;
		done += (uint32_t)rc;
	}
	return 0;
}

/* Funds the flow's accounts; returns the last seq. */
uint64_t fund(cqrs_engine *e, const exch_flow *f)
{
	static batch b;
	uint32_t i = 0;
	uint64_t seq = 0;
	for (;;) {
		b.n = 0;
		while (b.n < kBatch && exch_flow_funding(f, i, &b.data[b.n])) {
			to_command(&b.data[b.n], &b.cmds[b.n]);
			b.n++;
			i++;
		}
		if (!b.n || submit(e, b.cmds, b.t, b.n))
			break;
		for (uint32_t k = 0; k < b.n; k++) {
			cqrs_ticket_wait(&b.t[k], UINT64_MAX);
			seq = std::max(seq, cqrs_ticket_seq(&b.t[k]));
		}
	}
	return seq;
}

/* Pushes n flow commands through the engine in pipelined batches; the
 * highest seq of them. *rejected counts the refused ones. */
uint64_t run_flow(cqrs_engine *e, exch_flow *f, uint64_t n, uint64_t *rejected,
		  const std::atomic<bool> *stop = nullptr)
{
	static batch b[kDepth];
	uint64_t seq = 0, sent = 0;
	auto reap = [&](batch &x) {
		for (uint32_t k = 0; k < x.n; k++) {
			if (cqrs_ticket_wait(&x.t[k], UINT64_MAX))
				(*rejected)++;
			seq = std::max(seq, cqrs_ticket_seq(&x.t[k]));
		}
		x.n = 0;
	};
	for (uint64_t i = 0; sent < n && !(stop && stop->load(std::memory_order_relaxed)); i++) {
		batch &x = b[i % kDepth];
		reap(x);
		for (uint32_t k = 0; k < kBatch; k++) {
			exch_flow_next(f, &x.data[k]);
			to_command(&x.data[k], &x.cmds[k]);
		}
		x.n = kBatch;
		if (submit(e, x.cmds, x.t, x.n)) {
			x.n = 0;
			break;
		}
		sent += kBatch;
	}
	for (auto &x : b)
		reap(x);
	return seq;
}

int wait_views(const std::string &name, uint64_t seq)
{
	for (const char *vn : { "top_of_book", "positions" }) {
		cqrs_view *v;
		if (cqrs_view_open(name.c_str(), vn, &v))
			return -1;
		int rc = cqrs_view_wait(v, seq, 30000000000ull);
		cqrs_view_close(v);
		if (rc)
			return rc;
	}
	return 0;
}

void BM_ExchPlain(benchmark::State &state)
{
	exch_flow f;
	exch_limits lim;
	exch_market m;
	exch_cmd c;
	uint64_t rejected = 0;

	exch_flow_init(&f, 1, kInstruments, kAccounts, 0);
	exch_flow_limits(&f, kMaxOrders, &lim);
	if (exch_market_init(&m, &lim)) {
		state.SkipWithError("market init failed");
		return;
	}
	for (uint32_t i = 0; exch_flow_funding(&f, i, &c); i++)
		exch_flow_run(&m, &c);
	uint64_t cpu0 = cpu_ns();
	for (auto _ : state) {
		for (uint64_t i = 0; i < kCommands; i++) {
			exch_flow_next(&f, &c);
			rejected += exch_flow_run(&m, &c) != 0;
		}
	}
	state.counters["cpu_ns_per_order"] = (double)(cpu_ns() - cpu0) / (double)(state.iterations() * kCommands);
	uint64_t trades = 0;
	for (uint32_t i = 1; i <= kInstruments; i++)
		trades += m.books[i].trades;
	state.SetItemsProcessed((int64_t)(state.iterations() * kCommands));
	state.counters["rejected"] = (double)rejected;
	state.counters["trades"] = (double)trades;
	state.counters["resting"] = m.live;
	exch_market_free(&m);
}

void BM_ExchEngine(benchmark::State &state)
{
	xenv env;
	exch_flow f;
	uint64_t rejected = 0;

	if (env.open((int)state.range(0), (int)state.range(1))) {
		state.SkipWithError("engine start failed");
		env.close();
		return;
	}
	exch_flow_init(&f, 1, kInstruments, kAccounts, 0);
	wait_views(env.name, fund(env.e, &f));
	uint64_t cpu0 = cpu_ns();
	for (auto _ : state) {
		uint64_t seq = run_flow(env.e, &f, kCommands, &rejected);
		if (wait_views(env.name, seq))
			state.SkipWithError("views did not catch up");
	}
	/* every thread: the client's, the command thread, the projectors, the
	 * journal's (the kernel's page-cache copy counts as system time) */
	state.counters["cpu_ns_per_order"] = (double)(cpu_ns() - cpu0) / (double)(state.iterations() * kCommands);
	state.SetItemsProcessed((int64_t)(state.iterations() * kCommands));
	state.counters["rejected"] = (double)rejected;
	env.close();
}

void BM_ExchVisible(benchmark::State &state)
{
	const uint64_t rate = (uint64_t)state.range(0);
	constexpr size_t burst = 10, slots = 4096;
	xenv env;
	exch_flow f;
	int fd;
	shared_log *lg = log_create(&fd);

	if (!lg || env.open(CQRS_DURABILITY_NONE, CQRS_THREADING_SHARED)) {
		state.SkipWithError("engine or log failed");
		env.close();
		return;
	}
	exch_flow_init(&f, 1, kInstruments, kAccounts, 0);
	fund(env.e, &f);
	{ /* a book to trade against */
		uint64_t rej = 0;
		wait_views(env.name, run_flow(env.e, &f, 100000, &rej));
	}
	pid_t pid = spawn_reader("watch", env.name, fd);
	while (!lg->ready.load(std::memory_order_acquire)) /* pairs with the reader's release */
		usleep(1000);
	std::vector<exch_cmd> data(slots * burst);
	std::vector<cqrs_command> cmds(slots * burst);
	std::vector<cqrs_ticket> t(slots * burst);
	std::vector<uint64_t> sent_at(slots), target;
	std::vector<uint64_t> sent_list;
	target.reserve(1 << 22);
	sent_list.reserve(1 << 22);
	const uint64_t period = burst * 1000000000ull / rate;
	const int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0);
	uint64_t head = 0, tail = 0, due = cqrs__mono_ns(), begin = due, late = 0;
	auto poll = [&]() { /* true while the oldest burst is unanswered */
		for (; head != tail; head++) {
			size_t s = head % slots;
			uint64_t seq = 0;
			if (!cqrs_ticket_done(&t[s * burst + burst - 1]))
				return true;
			for (size_t i = 0; i < burst; i++) {
				cqrs_ticket_wait(&t[s * burst + i], UINT64_MAX);
				seq = std::max(seq, cqrs_ticket_seq(&t[s * burst + i]));
			}
			if (seq) {
				target.push_back(seq);
				sent_list.push_back(sent_at[s]);
			}
		}
		return false;
	};
	for (auto _ : state) {
		bool slept = false;
		due += period;
		while (cqrs__mono_ns() < due || tail - head == slots) {
			if (!poll()) { /* nothing in flight: sleep to the deadline */
				struct timespec ts = { (time_t)(due / 1000000000u), (long)(due % 1000000000u) };
				while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR)
					;
				slept = true;
				break;
			}
			sched_yield();
		}
		size_t s = tail % slots;
		uint64_t now = cqrs__mono_ns();
		late += !slept && now > due + period;
		sent_at[s] = slept ? now : std::min(due, now);
		for (size_t i = 0; i < burst; i++) {
			exch_flow_next(&f, &data[s * burst + i]);
			to_command(&data[s * burst + i], &cmds[s * burst + i]);
		}
		if (submit(env.e, &cmds[s * burst], &t[s * burst], burst)) {
			state.SkipWithError("submit failed");
			break;
		}
		tail++;
	}
	double secs = (double)(cqrs__mono_ns() - begin) / 1e9;
	while (poll())
		sched_yield();
	prctl(PR_SET_TIMERSLACK, slack > 0 ? (unsigned long)slack : 50000ul, 0, 0, 0);
	/* the reader has seen the last target once its log reaches it */
	uint64_t last = target.empty() ? 0 : target.back();
	for (int i = 0; i < 5000; i++) {
		uint64_t n = lg->count.load(std::memory_order_acquire); /* pairs with the reader's release */
		if (n && lg->o[n - 1].seq >= last)
			break;
		usleep(1000);
	}
	lg->stop.store(1, std::memory_order_release); /* pairs with the reader's acquire */
	int status;
	waitpid(pid, &status, 0);
	uint64_t n = lg->count.load(std::memory_order_acquire);
	std::vector<uint64_t> samples;
	samples.reserve(target.size());
	for (size_t i = 0, j = 0; i < target.size(); i++) {
		while (j < n && lg->o[j].seq < target[i])
			j++;
		if (j == n)
			break;
		samples.push_back(lg->o[j].ns > sent_list[i] ? lg->o[j].ns - sent_list[i] : 0);
	}
	std::sort(samples.begin(), samples.end());
	auto q = [&](double p) { return samples.empty() ? 0.0 : (double)samples[(size_t)(p * (double)(samples.size() - 1))]; };
	state.counters["p50_ns"] = q(0.5);
	state.counters["p99_ns"] = q(0.99);
	state.counters["p999_ns"] = q(0.999);
	state.counters["rate"] = secs > 0 ? (double)(tail * burst) / secs : 0;
	state.counters["samples"] = (double)samples.size();
	state.counters["late_bursts"] = (double)late;
	munmap(lg, sizeof *lg);
	::close(fd);
	env.close();
}

/* The write model's own top 10 levels a side, in-process (the baseline of
 * BM_ExchDepth: the same data without shared memory or another process). */
void BM_ExchDepthModel(benchmark::State &state)
{
	exch_flow f;
	exch_limits lim;
	exch_market m;
	exch_cmd c;
	uint64_t levels = 0;

	exch_flow_init(&f, 1, kInstruments, kAccounts, 0);
	exch_flow_limits(&f, kMaxOrders, &lim);
	if (exch_market_init(&m, &lim)) {
		state.SkipWithError("market init failed");
		return;
	}
	for (uint32_t i = 0; exch_flow_funding(&f, i, &c); i++)
		exch_flow_run(&m, &c);
	for (uint64_t i = 0; i < 100000; i++) {
		exch_flow_next(&f, &c);
		exch_flow_run(&m, &c);
	}
	uint32_t inst = 1;
	for (auto _ : state) {
		for (int s = 0; s < 2; s++) {
			uint32_t p = m.books[inst].half[s].best;
			for (int k = 0; k < 10 && p; k++) {
				benchmark::DoNotOptimize(exch_market_level(&m, inst, s, p)->qty);
				levels++;
				p = exch_market_next_level(&m, inst, s, p);
			}
		}
		inst = inst % kInstruments + 1;
	}
	state.SetItemsProcessed((int64_t)state.iterations());
	state.counters["reads_per_s"] = benchmark::Counter((double)state.iterations(), benchmark::Counter::kIsRate);
	state.counters["levels_per_read"] = state.iterations() ? (double)levels / (double)state.iterations() : 0;
	exch_market_free(&m);
}

void BM_ExchDepth(benchmark::State &state)
{
	xenv env;
	exch_flow f;
	int fd;
	shared_log *lg = log_create(&fd);
	uint64_t rejected = 0;

	if (!lg || env.open(CQRS_DURABILITY_NONE, CQRS_THREADING_SHARED)) {
		state.SkipWithError("engine or log failed");
		env.close();
		return;
	}
	exch_flow_init(&f, 1, kInstruments, kAccounts, 0);
	fund(env.e, &f);
	wait_views(env.name, run_flow(env.e, &f, 100000, &rejected));
	for (auto _ : state) {
		std::atomic<bool> stop{ false };
		std::thread load;
		if (state.range(0))
			load = std::thread([&] { run_flow(env.e, &f, UINT64_MAX, &rejected, &stop); });
		pid_t pid = spawn_reader("depth", env.name, fd);
		while (!lg->ready.load(std::memory_order_acquire)) /* pairs with the reader's release */
			usleep(1000);
		uint64_t t0 = cqrs__mono_ns();
		usleep(2000000);
		lg->stop.store(1, std::memory_order_release); /* pairs with the reader's acquire */
		int status;
		waitpid(pid, &status, 0);
		double secs = (double)(cqrs__mono_ns() - t0) / 1e9;
		stop = true;
		if (load.joinable())
			load.join();
		uint64_t reads = lg->reads.load(std::memory_order_acquire);
		state.SetIterationTime(secs);
		state.counters["reads_per_s"] = (double)reads / secs;
		state.counters["levels_per_read"] = reads ? (double)lg->levels / (double)reads : 0;
	}
	munmap(lg, sizeof *lg);
	::close(fd);
	env.close();
}

} /* namespace */

int main(int argc, char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		g_self = self;
	}
	if (argc == 5 && !strcmp(argv[1], "--exch-reader"))
		return reader_main(argv[2], argv[3], atoi(argv[4]));
	benchmark::RegisterBenchmark("BM_ExchPlain", BM_ExchPlain)->Iterations(1)->Repetitions(3)->Unit(benchmark::kMillisecond)->UseRealTime();
	benchmark::RegisterBenchmark("BM_ExchEngine", BM_ExchEngine)
		->Args({ CQRS_DURABILITY_NONE, CQRS_THREADING_DEDICATED })
		->Args({ CQRS_DURABILITY_BATCH, CQRS_THREADING_DEDICATED })
		->Args({ CQRS_DURABILITY_NONE, CQRS_THREADING_SHARED })
		->Args({ CQRS_DURABILITY_BATCH, CQRS_THREADING_SHARED })
		->Iterations(1)->Repetitions(3)->Unit(benchmark::kMillisecond)->UseRealTime();
	benchmark::RegisterBenchmark("BM_ExchVisible", BM_ExchVisible)
		->Arg(100000)->Arg(1000000)->MinTime(2.0)->Unit(benchmark::kMicrosecond)->UseRealTime();
	benchmark::RegisterBenchmark("BM_ExchDepthModel", BM_ExchDepthModel)->MinTime(0.5);
	benchmark::RegisterBenchmark("BM_ExchDepth", BM_ExchDepth)->Arg(0)->Arg(1)->Iterations(1)->UseManualTime();
	const std::string eng = "BM_ExchEngine/";
	const std::string sfx = "/iterations:1/repeats:3/real_time";
	auto ek = [&](int d, int t) { return eng + std::to_string(d) + "/" + std::to_string(t) + sfx; };
	const std::string plain = "BM_ExchPlain" + sfx;
	return cqrs_bench::main(argc, argv, "exchange", "matching engine on cqrs vs the same book.c in a plain loop", {
		{ "orders/s, none durability", ek(0, 0), plain, "items_per_second", true,
		  "vs plain loop; goal >= 0.5x (views included)" },
		{ "orders/s, batch durability", ek(1, 0), plain, "items_per_second", true,
		  "vs plain loop; goal >= 2M/s on 2 cores" },
		{ "orders/s, none, shared threading", ek(0, 1), plain, "items_per_second", true,
		  "projections on the command thread" },
		{ "orders/s, batch, shared threading", ek(1, 1), plain, "items_per_second", true, "" },
		{ "plain loop orders/s", plain, "", "items_per_second", true, "book.c alone, no engine" },
		{ "CPU ns per order, none", ek(0, 0), plain, "cpu_ns_per_order", false,
		  "all threads, client included, vs the plain loop" },
		{ "CPU ns per order, batch", ek(1, 0), plain, "cpu_ns_per_order", false, "" },
		{ "CPU ns per order, none, shared", ek(0, 1), plain, "cpu_ns_per_order", false, "" },
		{ "order->md p50 ns @100k/s", "BM_ExchVisible/100000/min_time:2.000/real_time", "", "p50_ns", false,
		  "submit -> top_of_book in another process" },
		{ "order->md p99 ns @100k/s", "BM_ExchVisible/100000/min_time:2.000/real_time", "", "p99_ns", false,
		  "exchange-core: p99 4 us @1M/s, no journal, no IPC" },
		{ "order->md p99.9 ns @100k/s", "BM_ExchVisible/100000/min_time:2.000/real_time", "", "p999_ns", false, "" },
		{ "order->md p50 ns @1M/s", "BM_ExchVisible/1000000/min_time:2.000/real_time", "", "p50_ns", false,
		  "journal (none) + projection + shm + other process" },
		{ "order->md p99 ns @1M/s", "BM_ExchVisible/1000000/min_time:2.000/real_time", "", "p99_ns", false,
		  "exchange-core: p99 4 us @1M/s" },
		{ "order->md p99.9 ns @1M/s", "BM_ExchVisible/1000000/min_time:2.000/real_time", "", "p999_ns", false, "" },
		{ "order->md achieved orders/s @1M/s", "BM_ExchVisible/1000000/min_time:2.000/real_time", "", "rate", true,
		  "what the open loop sent" },
		{ "depth reads/s (top 10 a side), idle", "BM_ExchDepth/0/iterations:1/manual_time",
		  "BM_ExchDepthModel/min_time:0.500", "reads_per_s", true,
		  "other process, snapshot range reads; vs in-process model walk" },
		{ "depth reads/s (top 10 a side), loaded", "BM_ExchDepth/1/iterations:1/manual_time", "", "reads_per_s", true,
		  "while the flow runs flat out" },
	});
}
