/*
 * bench/engine/sqlite.h - the traditional single-model design the engine is
 * measured beside: the orders domain in SQLite (WAL, synchronous=FULL) over
 * normalized tables (customers, orders, order_items), and its CreateOrder
 * (validate against the tables, then write).
 */
#ifndef CQRS_BENCH_ENGINE_SQLITE_H
#define CQRS_BENCH_ENGINE_SQLITE_H

#include <sqlite3.h>
#include <stdio.h>
#include <string>

extern "C" {
#include "core/clock.h"
}

#include "bench/engine/fixture.h"

namespace bench_engine {

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

} /* namespace bench_engine */

#endif
