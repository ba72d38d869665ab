/*
 * bench/engine/query.cc - the seed query, "active orders of customer C":
 *   BM_QueryView        from the active_orders view (the order_summaries
 *                       rows of orders still open): one secondary-index
 *                       lookup (the status filter stays, as a check);
 *   BM_QuerySqliteJoin  the same answer (with customer name, item count,
 *                       total) by JOIN + GROUP BY over customers, orders and
 *                       order_items, indexed, same data.
 * Both sides are checked to give the same answer before the view is timed.
 */
#include "bench/engine/fixture.h"
#include "bench/engine/sqlite.h"

#include <vector>

#include <stdlib.h>

extern "C" {
#include "cqrs_view.h"
}

namespace bench_engine {

namespace {

uint32_t status_of(uint64_t order_id) { return 1 + (uint32_t)(mix(order_id ^ 99) % 4); }

/* The same data on both sides, built once for both benchmarks. */
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

} /* namespace */

void register_queries()
{
	benchmark::RegisterBenchmark("BM_QueryView", BM_QueryView)
		->UseRealTime()
		->MinTime(1.0);
	benchmark::RegisterBenchmark("BM_QuerySqliteJoin", BM_QuerySqliteJoin)
		->UseRealTime()
		->MinTime(1.0);
}

void close_queries()
{
	g_query.close(true);
	g_sql.close();
}

} /* namespace bench_engine */
