/*
 * bench/engine/fixture.h - what the bench_engine benchmarks share: the
 * sizes, an orders engine under a temp folder (engine_env), the submit
 * helpers, the generated customers and orders, and the function each
 * benchmark file registers its benchmarks with (bench/bench_engine.cc calls
 * them in the order the benchmarks run).
 */
#ifndef CQRS_BENCH_ENGINE_FIXTURE_H
#define CQRS_BENCH_ENGINE_FIXTURE_H

#include <benchmark/benchmark.h>

#include <stdint.h>
#include <string>

extern "C" {
#include "cqrs.h"
#include "examples/orders/orders.h"
}

namespace bench_engine {

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

/* The temp folder every engine and database of this run lives under,
 * created on first use; remove_root() deletes it and everything in it. */
const std::string &root();
void remove_root();

/* One orders engine (the demo's domain) with its own name and data folder. */
struct engine_env {
	std::string name, dir;
	orders_model m{};
	cqrs_engine *e = nullptr;
	uint64_t orders = kOrderCapacity; /* sizes the write model and views */
	bool pretouch = true;             /* cqrs_config.pretouch */
	int threading = CQRS_THREADING_DEDICATED; /* cqrs_config.threading */
	bool snapshots = false;           /* stores registered: snapshots at stop and on request */
	uint64_t snapshot_every = 0;      /* ... and every this many events (0: none) */
	int snapshot_on_stop = 1;
	/* view checkpoints: off unless a benchmark measures them (checkpoint.cc) */
	int checkpoint_copy = -1;         /* cqrs_config.checkpoint_copy */
	uint64_t checkpoint_every = 0;    /* cqrs_config.checkpoint_every_events */

	/* Opens and starts the engine (fresh: under a new name and folder;
	 * else reopens the last one). 0 or the error, printed. */
	int open(int durability, bool fresh);
	/* Closes the engine; remove: also its segments and data folder. */
	void close(bool remove);
};

/* CPU time used by all threads of this process so far. */
uint64_t process_cpu_ns();

/* Submits cmds[0, n), retrying while the queue is full. Returns 0 or the
 * submit error; *accepted: how many the engine took (their tickets are
 * armed, the rest untouched). */
int submit_retrying(cqrs_engine *e, cqrs_command *cmds, cqrs_ticket *t, int n, int *accepted);
/* Submits all of cmds and waits for their answers. */
void submit_all(cqrs_engine *e, cqrs_command *cmds, cqrs_ticket *t, int n);
/* RegisterCustomer for customers 1..kCustomers. */
void register_customers(cqrs_engine *e);
/* A 64-bit mixer: the generated data's pseudo-random choices. */
uint64_t mix(uint64_t x);
/* The CreateOrder of order order_id (customer, items, total, address). */
void fill_create(create_order *co, uint64_t order_id);

/* Each benchmark file's registration (names as BENCHMARK() gives them). */
void register_handoff_floor();     /* handoff.cc */
void register_engine_commands();   /* throughput.cc */
void register_engine_visible();    /* visible.cc */
void register_engine_recovery();   /* recovery.cc */
void register_checkpoint();        /* checkpoint.cc */
void close_checkpoint();
void register_sqlite_commands();   /* sqlite.cc */
void register_snapshots();         /* snapshot.cc */
void register_queries();           /* query.cc */

/* Closes and removes what the recovery and query benchmarks kept open
 * across their runs. */
void close_recovery();
void close_snapshots();
void close_queries();

} /* namespace bench_engine */

#endif
