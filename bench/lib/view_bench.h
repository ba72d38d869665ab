/*
 * bench/lib/view_bench.h - C helpers for bench/bench_view.cc: the engine
 * side of the benchmark view (control segment, writer, a writer loop for a
 * concurrent-writer process) and a shared block for helper processes. The
 * shm layout headers use C11 _Atomic, so C++ reaches them only through here.
 */
#ifndef CQRS_BENCH_VIEW_BENCH_H
#define CQRS_BENCH_VIEW_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The benchmark row: an order summary (80 bytes), same bytes in LMDB and
 * the same columns in SQLite. */
typedef struct vbench_row {
	uint64_t order_id;
	uint64_t customer_id;
	char customer_name[32];
	uint32_t item_count;
	uint32_t status;
	int64_t total;
	int64_t created_at;
	int64_t shipped_at;
} vbench_row;

void vbench_row_fill(vbench_row *r, uint64_t order_id, uint64_t customer_id, uint64_t version);

/* Creates engine's control segment and view "orders" (key order_id,
 * secondary index customer_id, capacity rows) holding orders 1..rows, order
 * i belonging to customer i % customers. One dataset per slot (0, 1). */
int vbench_view_create(int slot, const char *engine, uint64_t rows, uint64_t customers);

/* As vbench_view_create, with an ordered index on (customer_id,
 * order_id) instead of the secondary index (filled in batches of 4096). */
int vbench_view_create_ordered(int slot, const char *engine, uint64_t rows, uint64_t customers);

/* Rewrites random orders (status, total) in batches of 64 as the view's
 * writer until vbench_stopped(); returns the number of rows written. For a
 * forked child: the parent must not write meanwhile. */
uint64_t vbench_view_writer_loop(int slot, unsigned seed);

/* Retires and removes every segment of slot's engine. */
void vbench_view_destroy(int slot);

/* A MAP_SHARED block shared with forked helpers: a stop flag and per-helper
 * reports. vbench_shared_init once before forking. */
int vbench_shared_init(void);
void vbench_set_stop(int stop);
int vbench_stopped(void);
void vbench_set_ready(int helper);
int vbench_ready_count(void);
void vbench_report(int helper, uint64_t ops, uint64_t ns);
uint64_t vbench_report_ops(int helper);
uint64_t vbench_report_ns(int helper);
void vbench_reset(void);

uint64_t vbench_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif
