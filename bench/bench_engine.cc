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
 *   BM_ViewRestore/S        after a reboot (segments removed): views from
 *                           their checkpoints + the tail (S = 0) vs a full
 *                           rebuild (S = 1), same journal; ms, median of 3.
 *   BM_CheckpointStall/M    load while views are checkpointed (M = 1 uffd,
 *                           2 stop-copy) or not (M = 0): the longest apply
 *                           gap and the engine's projector wait.
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
 *
 * This file holds main() and the summary table; the benchmarks live in
 * bench/engine/: fixture (the shared engine, sizes and generated data),
 * open_loop.h (the latency client), handoff, throughput, visible, recovery,
 * checkpoint, sqlite (the SQLite model and its commands) and query. main() registers
 * them in the order they run (the floor first, before any engine has
 * mapped memory).
 */
#include "bench/harness.h"
#include "bench/engine/fixture.h"

#include <string>

/* The name google benchmark gives a throughput run with durability m and
 * threading t. */
static std::string cmds_key(int m, int t = CQRS_THREADING_DEDICATED)
{
	return "BM_EngineCommands/" + std::to_string(m) + "/" + std::to_string(t) + "/iterations:" +
	       std::to_string(bench_engine::kRunIterations) + "/real_time";
}

/* BM_EngineVisible with durability m and threading t, at 100k/s. */
static std::string vis_key(int m, int t)
{
	return "BM_EngineVisible/" + std::to_string(m) + "/100000/" + std::to_string(t) +
	       "/min_time:2.000/real_time";
}

/* BM_EngineVisibleOneClient with threading t, at 100k/s. */
static std::string one_key(int t)
{
	return "BM_EngineVisibleOneClient/" + std::to_string(t) + "/100000/min_time:2.000/real_time";
}

int main(int argc, char **argv)
{
	using namespace bench_engine;
	register_handoff_floor();
	register_engine_commands();
	register_engine_visible();
	register_engine_recovery();
	register_checkpoint();
	register_sqlite_commands();
	register_queries();
	register_snapshots();
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
		{ "snapshot write bytes/s (1M orders)", "BM_SnapshotWrite/iterations:5/real_time",
		  "BM_RawWrite/iterations:5/real_time", "bytes_per_second", true,
		  "fork + serialize + fdatasync + rename vs raw write+fdatasync; goal >= 0.7x" },
		{ "snapshot load bytes/s", "BM_SnapshotLoad/iterations:5/manual_time",
		  "BM_RawRead/iterations:5/real_time", "bytes_per_second", true,
		  "verify every checksum + fill the stores vs read() (page cache); goal >= 0.7x" },
		{ "restart ms from a snapshot, 1M events", "BM_SnapshotRestart/iterations:5/real_time",
		  "BM_EngineRecovery/0/iterations:1/repeats:5/real_time", "real_time", false,
		  "vs full replay of 1M events; goal <= 1 s" },
		{ "restart ms, same state after 3M events", "BM_RestartHistory/3/iterations:3/real_time",
		  "BM_RestartHistory/1/iterations:3/real_time", "real_time", false,
		  "vs after 1M (snapshots every 1M, the tail replayed); goal within 1.5x, <= 1 s" },
		{ "snapshot fork stall p50 us", "BM_SnapshotWrite/iterations:5/real_time", "",
		  "fork_p50_us", false, "the command thread stops this long" },
		{ "snapshot fork stall max us", "BM_SnapshotWrite/iterations:5/real_time", "",
		  "fork_max_us", false, "" },
		{ "cmd-to-ack p99.9 ns, snapshots back to back",
		  "BM_AckDuringSnapshot/1/iterations:3000/real_time",
		  "BM_AckDuringSnapshot/0/iterations:3000/real_time", "p999_ns", false,
		  "batches of 64 vs no snapshot; goal <= 2x" },
		{ "view restore after a reboot, ms", "BM_ViewRestore/0/iterations:1/repeats:3/real_time",
		  "BM_ViewRestore/1/iterations:1/repeats:3/real_time", "real_time", false,
		  "checkpoints + 10% tail vs full rebuild, same journal" },
		{ "longest apply gap us, uffd checkpoints", "BM_CheckpointStall/1/iterations:1/real_time",
		  "BM_CheckpointStall/0/iterations:1/real_time", "max_gap_us", false,
		  "checkpoint every 500k events vs none, under load" },
		{ "longest apply gap us, stop-copy", "BM_CheckpointStall/2/iterations:1/real_time",
		  "BM_CheckpointStall/0/iterations:1/real_time", "max_gap_us", false,
		  "the fallback: copied at the batch boundary" },
		{ "projector wait us, uffd checkpoints", "BM_CheckpointStall/1/iterations:1/real_time",
		  "BM_CheckpointStall/2/iterations:1/real_time", "wait_us", false,
		  "the engine's own count, vs stop-copy" },
		{ "active orders of a customer, queries/s", "BM_QueryView/min_time:1.000/real_time",
		  "BM_QuerySqliteJoin/min_time:1.000/real_time", "items_per_second", true,
		  "vs SQLite JOIN + GROUP BY; goal >= 100x" },
	});
	close_queries();
	close_recovery();
	close_snapshots();
	close_checkpoint();
	remove_root();
	return rc;
}
