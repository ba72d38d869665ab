/*
 * bench/bench_gateway.cc - the command gateway (a C client in another
 * process, through shared memory) against the in-process submit path, same
 * engine, same domain, same run.
 *
 *   BM_GatewayRoundTrip/M   cqrs_client_submit of one command and its answer
 *                           (submit-to-ack), engine in a forked child
 *                           process; M = 0 durability none, 1 batch
 *                           (fdatasync per group commit). Counters p50_ns,
 *                           p99_ns per round trip.
 *   BM_InProcRoundTrip/M    baseline: cqrs_submit + cqrs_ticket_wait from a
 *                           thread of the engine's own process.
 *   BM_GatewayPipelined/0   cqrs_client_send with up to 128 in flight,
 *                           answers collected with cqrs_client_wait
 *                           (commands/s, durability none).
 *   BM_InProcPipelined/0    baseline: 128 tickets in flight through
 *                           cqrs_submit, each waited and reused.
 *   BM_GatewayIdleRoundTrip/0, BM_InProcIdleRoundTrip/0
 *                           round trips to an idle engine: one submit
 *                           every 2 ms (the pause is not timed), so the
 *                           command thread has gone to sleep on its
 *                           doorbell each time (p50_ns, p99_ns).
 *
 * The domain: one command Add{account, amount} that emits one event (no
 * projections), so the numbers are the command path: queue, decide, journal
 * write (io_uring), ack. Data folders live under $TMPDIR (or /tmp) and are
 * removed at exit with the engines' segments; the child engine is stopped
 * with SIGTERM.
 */
#include "bench/harness.h"

#include <algorithm>
#include <string>
#include <vector>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern "C" {
#include "core/clock.h"
#include "cqrs.h"
#include "cqrs_client.h"
}

namespace {

#define ADD_FIELDS(F) F(u64, account) F(i64, amount)
CQRS_RECORD(bench_add, "Add", ADD_FIELDS)
CQRS_RECORD(bench_added, "Added", ADD_FIELDS)

constexpr uint64_t kSec = 1000000000ull;
constexpr uint32_t kWindow = 128;

int decide_add(cqrs_ctx *ctx, const void *cmd, void *)
{
	const bench_add *c = static_cast<const bench_add *>(cmd);
	return cqrs_emit(ctx, 1, c->account, c);
}

int rm_one(const char *path, const struct stat *, int, struct FTW *)
{
	return remove(path);
}

std::vector<std::string> g_dirs, g_names;
void teardown_engine();

void cleanup_all()
{
	teardown_engine(); /* stop the engines before removing their folders */
	for (auto &n : g_names)
		cqrs_engine_remove_segments(n.c_str());
	for (auto &d : g_dirs)
		nftw(d.c_str(), rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh engine name and data folder. */
void fresh(std::string *name, std::string *dir)
{
	static int n;
	char buf[256];
	const char *t = getenv("TMPDIR");

	if (g_dirs.empty())
		atexit(cleanup_all);
	snprintf(buf, sizeof buf, "bgw_%ld_%d", (long)getpid(), n++);
	*name = buf;
	snprintf(buf, sizeof buf, "%s/cqrs_bench_gw.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(buf))
		abort();
	*dir = buf;
	g_names.push_back(*name);
	g_dirs.push_back(*dir);
}

int open_engine(const std::string &name, const std::string &dir, int durability, cqrs_engine **out)
{
	cqrs_config cfg;

	cqrs_config_init(&cfg);
	cfg.name = name.c_str();
	cfg.data_dir = dir.c_str();
	cfg.durability = durability;
	int rc = cqrs_engine_open(&cfg, nullptr, out);
	if (!rc)
		rc = cqrs_register_command(*out, 1, bench_add_schema(), decide_add);
	if (!rc)
		rc = cqrs_register_event(*out, 1, bench_added_schema(), nullptr);
	if (!rc)
		rc = cqrs_engine_start(*out);
	return rc;
}

/* ---- the engine under test: in a child process, or in this one ------------ */

struct setup {
	int kind = -1; /* 0 gateway child, 1 in-process */
	int durability = -1;
	pid_t child = -1;
	cqrs_client *client = nullptr;
	cqrs_engine *engine = nullptr;
	uint64_t account = 0;

	void teardown()
	{
		if (client)
			cqrs_client_close(client);
		client = nullptr;
		if (child > 0) {
			kill(child, SIGTERM);
			waitpid(child, nullptr, 0);
		}
		child = -1;
		if (engine) {
			cqrs_engine_stop(engine);
			cqrs_engine_close(engine);
		}
		engine = nullptr;
		kind = durability = -1;
	}

	bool ensure(int k, int d)
	{
		std::string name, dir;

		if (kind == k && durability == d)
			return true;
		teardown();
		fresh(&name, &dir);
		if (k == 1) {
			if (open_engine(name, dir, d, &engine))
				return false;
		} else {
			int p[2];
			char ok = 0;
			if (pipe(p))
				return false;
			pid_t parent = getpid();
			child = fork();
			if (child == 0) {
				sigset_t set;
				int sig;
				cqrs_engine *e;
				close(p[0]);
				/* never outlive the benchmark, even if it crashes */
				prctl(PR_SET_PDEATHSIG, SIGTERM);
				if (getppid() != parent)
					_exit(1);
				sigemptyset(&set);
				sigaddset(&set, SIGTERM);
				pthread_sigmask(SIG_BLOCK, &set, nullptr);
				if (open_engine(name, dir, d, &e))
					_exit(1);
				ok = 1;
				if (write(p[1], &ok, 1) != 1)
					_exit(1);
				sigwait(&set, &sig);
				cqrs_engine_stop(e);
				cqrs_engine_close(e);
				_exit(0);
			}
			close(p[1]);
			if (child < 0 || read(p[0], &ok, 1) != 1 || !ok) {
				close(p[0]);
				return false;
			}
			close(p[0]);
			if (cqrs_client_connect(name.c_str(), &client))
				return false;
		}
		kind = k;
		durability = d;
		return true;
	}
} g;

void teardown_engine()
{
	g.teardown();
}

void report(benchmark::State &state, std::vector<uint64_t> &ns)
{
	if (ns.empty())
		return;
	std::sort(ns.begin(), ns.end());
	state.counters["p50_ns"] = (double)ns[ns.size() / 2];
	state.counters["p99_ns"] = (double)ns[std::min(ns.size() - 1, ns.size() * 99 / 100)];
	state.SetItemsProcessed((int64_t)state.iterations());
}

/* ---- round trips ------------------------------------------------------------ */

constexpr useconds_t kIdleGapUs = 2000; /* well past idle_yield_us: the command thread sleeps */

/* One command at a time, through the gateway or in-process, each after a
 * pause of gap_us (0: back to back, the command thread stays busy; with
 * kIdleGapUs it sleeps and every command pays its wake-up). */
static void round_trips(benchmark::State &state, bool gateway, useconds_t gap_us)
{
	std::vector<uint64_t> ns;
	cqrs_result r;
	cqrs_ticket t;

	if (!g.ensure(gateway ? 0 : 1, (int)state.range(0))) {
		state.SkipWithError("cannot start the engine / connect");
		return;
	}
	ns.reserve(1 << 20);
	for (auto _ : state) {
		bench_add c = { ++g.account % 4096 + 1, 1 };
		cqrs_command cmd = { 1, sizeof c, &c, c.account, 0, 0, 0, 0, 0 };
		int rc;
		if (gap_us) {
			state.PauseTiming();
			usleep(gap_us);
			state.ResumeTiming();
		}
		uint64_t t0 = cqrs__mono_ns();
		if (gateway) {
			rc = cqrs_client_submit(g.client, 1, &c, sizeof c, nullptr, &r, 10 * kSec);
		} else {
			rc = cqrs_submit(g.engine, &cmd, &t);
			if (!rc)
				rc = cqrs_ticket_wait(&t, 10 * kSec);
		}
		ns.push_back(cqrs__mono_ns() - t0);
		if (rc) {
			state.SkipWithError(cqrs_strerror(rc));
			break;
		}
	}
	report(state, ns);
}

void BM_GatewayRoundTrip(benchmark::State &state) { round_trips(state, true, 0); }
void BM_InProcRoundTrip(benchmark::State &state) { round_trips(state, false, 0); }

/* ---- to an idle engine ------------------------------------------------------- */

void BM_GatewayIdleRoundTrip(benchmark::State &state) { round_trips(state, true, kIdleGapUs); }
void BM_InProcIdleRoundTrip(benchmark::State &state) { round_trips(state, false, kIdleGapUs); }

/* ---- pipelined ---------------------------------------------------------------- */

void BM_GatewayPipelined(benchmark::State &state)
{
	cqrs_result r;

	if (!g.ensure(0, (int)state.range(0))) {
		state.SkipWithError("cannot start the engine / connect");
		return;
	}
	for (auto _ : state) {
		while (cqrs_client_pending(g.client) < kWindow) {
			bench_add c = { ++g.account % 4096 + 1, 1 };
			if (cqrs_client_send(g.client, 1, &c, sizeof c, nullptr, nullptr))
				break;
		}
		if (cqrs_client_wait(g.client, &r, 10 * kSec) != 1 || r.status) {
			state.SkipWithError("lost an answer");
			break;
		}
	}
	/* collect what is still in flight (the timed loop is over) */
	while (cqrs_client_pending(g.client) && cqrs_client_wait(g.client, &r, 10 * kSec) == 1)
		;
	state.SetItemsProcessed((int64_t)state.iterations());
}

void BM_InProcPipelined(benchmark::State &state)
{
	static cqrs_ticket tickets[kWindow];
	static bool used[kWindow];
	uint64_t i = 0;

	if (!g.ensure(1, (int)state.range(0))) {
		state.SkipWithError("cannot start the engine");
		return;
	}
	for (auto _ : state) {
		uint32_t k = (uint32_t)(i++ % kWindow);
		bench_add c = { ++g.account % 4096 + 1, 1 };
		cqrs_command cmd = { 1, sizeof c, &c, c.account, 0, 0, 0, 0, 0 };
		if (used[k] && cqrs_ticket_wait(&tickets[k], 10 * kSec)) {
			state.SkipWithError("lost an answer");
			break;
		}
		int rc;
		while ((rc = cqrs_submit(g.engine, &cmd, &tickets[k])) == -EAGAIN)
			;
		if (rc) {
			state.SkipWithError(cqrs_strerror(rc));
			break;
		}
		used[k] = true;
	}
	for (uint32_t k = 0; k < kWindow; k++) /* the timed loop is over */
		if (used[k])
			cqrs_ticket_wait(&tickets[k], 10 * kSec);
	std::fill(used, used + kWindow, false);
	state.SetItemsProcessed((int64_t)state.iterations());
}

/* Gateway first, then the in-process engine: the child is forked while this
 * process has no engine threads. */
BENCHMARK(BM_GatewayRoundTrip)->Arg(0)->Arg(1)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_GatewayPipelined)->Arg(0)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_GatewayIdleRoundTrip)->Arg(0)->UseRealTime()->Iterations(500);
BENCHMARK(BM_InProcRoundTrip)->Arg(0)->Arg(1)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_InProcPipelined)->Arg(0)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_InProcIdleRoundTrip)->Arg(0)->UseRealTime()->Iterations(500);

} /* namespace */

int main(int argc, char **argv)
{
	const char *note = "C client in another process vs cqrs_submit in-process";
	return cqrs_bench::main(
		argc, argv, "gateway", "cross-process submit-to-ack vs in-process submit",
		{
			{ "round trip p50 ns, none (goal <= 5000)", "BM_GatewayRoundTrip/0/min_time:1.000/real_time",
			  "BM_InProcRoundTrip/0/min_time:1.000/real_time", "p50_ns", false, note },
			{ "round trip p99 ns, none", "BM_GatewayRoundTrip/0/min_time:1.000/real_time",
			  "BM_InProcRoundTrip/0/min_time:1.000/real_time", "p99_ns", false, "" },
			{ "round trip p50 ns, batch (fdatasync)", "BM_GatewayRoundTrip/1/min_time:1.000/real_time",
			  "BM_InProcRoundTrip/1/min_time:1.000/real_time", "p50_ns", false, "" },
			{ "round trip p99 ns, batch (fdatasync)", "BM_GatewayRoundTrip/1/min_time:1.000/real_time",
			  "BM_InProcRoundTrip/1/min_time:1.000/real_time", "p99_ns", false, "" },
			{ "pipelined commands/s, none (128 in flight)", "BM_GatewayPipelined/0/min_time:1.000/real_time",
			  "BM_InProcPipelined/0/min_time:1.000/real_time", "items_per_second", true, "" },
			{ "round trip p50 ns, idle engine (1 per 2 ms)", "BM_GatewayIdleRoundTrip/0/iterations:500/real_time",
			  "BM_InProcIdleRoundTrip/0/iterations:500/real_time", "p50_ns", false,
			  "the command thread asleep on its doorbell" },
			{ "round trip p99 ns, idle engine (1 per 2 ms)", "BM_GatewayIdleRoundTrip/0/iterations:500/real_time",
			  "BM_InProcIdleRoundTrip/0/iterations:500/real_time", "p99_ns", false, "" },
		});
}
