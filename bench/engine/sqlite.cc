/*
 * bench/engine/sqlite.cc - BM_SqliteCommands/B: the CreateOrder validation
 * and writes of BM_EngineCommands in SQLite (sqlite.h), one transaction per
 * command (B = 1) or 1024 per transaction (B = 1024).
 */
#include "bench/engine/fixture.h"
#include "bench/engine/sqlite.h"

namespace bench_engine {

namespace {

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

} /* namespace */

void register_sqlite_commands()
{
	benchmark::RegisterBenchmark("BM_SqliteCommands", BM_SqliteCommands)
		->Arg(1)
		->Arg(1024)
		->Unit(benchmark::kMillisecond)
		->UseRealTime()
		->MinTime(2.0);
}

} /* namespace bench_engine */
