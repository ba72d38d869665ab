/*
 * bench/lib/view_bench.c - see view_bench.h.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/clock.h"
#include "shm/control.h"
#include "shm/view_writer.h"
#include "bench/lib/view_bench.h"

#define VB_ROW_FIELDS(F)              \
	F(u64, order_id)              \
	F(u64, customer_id)           \
	F(str, customer_name, 32)     \
	F(u32, item_count)            \
	F(u32, status)                \
	F(i64, total)                 \
	F(ts, created_at)             \
	F(ts, shipped_at)
CQRS_RECORD(vbench_rec, "OrderSummary", VB_ROW_FIELDS)

_Static_assert(sizeof(vbench_rec) == sizeof(vbench_row) && sizeof(vbench_row) == 80,
	       "bench row layout");
_Static_assert(offsetof(vbench_rec, shipped_at) == offsetof(vbench_row, shipped_at),
	       "bench row layout");

#define HELPERS 72 /* a writer and up to 64 readers (CQRS_BENCH_READERS) */

struct vb_shared {
	_Atomic int stop;
	_Atomic int ready;
	_Atomic uint64_t ops[HELPERS], ns[HELPERS];
};

static struct vb_shared *sh;
static struct {
	cqrs_ctl *ctl;
	cqrs_vw *w;
	uint64_t rows, customers;
} ds[3];

void vbench_row_fill(vbench_row *r, uint64_t order_id, uint64_t customer_id, uint64_t version)
{
	memset(r, 0, sizeof *r);
	r->order_id = order_id;
	r->customer_id = customer_id;
	snprintf(r->customer_name, sizeof r->customer_name, "customer %llu",
		 (unsigned long long)customer_id);
	r->item_count = (uint32_t)(1 + order_id % 7);
	r->status = (uint32_t)(version % 4);
	r->total = (int64_t)(order_id * 100 + version);
	r->created_at = 1700000000000000000 + (int64_t)order_id;
	r->shipped_at = version ? r->created_at + (int64_t)version : 0;
}

int vbench_view_create(int slot, const char *engine, uint64_t rows, uint64_t customers)
{
	cqrs_vw_config cfg = { 0 };
	vbench_row r;
	int rc;

	rc = cqrs__ctl_create(engine, NULL, &ds[slot].ctl);
	if (rc)
		return rc;
	cfg.schema = vbench_rec_schema();
	cfg.key_field = "order_id";
	cfg.secondary[0] = "customer_id";
	cfg.capacity = rows;
	rc = cqrs__vw_create(ds[slot].ctl, "orders", &cfg, &ds[slot].w);
	if (rc)
		return rc;
	cqrs__vw_begin(ds[slot].w);
	for (uint64_t i = 1; i <= rows; i++) {
		vbench_row_fill(&r, i, i % customers, 0);
		rc = cqrs__vw_upsert(ds[slot].w, &r);
		if (rc)
			return rc;
	}
	cqrs__vw_end(ds[slot].w, rows);
	ds[slot].rows = rows;
	ds[slot].customers = customers;
	rc = cqrs__vw_publish(ds[slot].w);
	return rc ? rc : cqrs__ctl_publish(ds[slot].ctl);
}

int vbench_view_create_ordered(int slot, const char *engine, uint64_t rows, uint64_t customers)
{
	cqrs_vw_config cfg = { 0 };
	vbench_row r;
	int rc;

	rc = cqrs__ctl_create(engine, NULL, &ds[slot].ctl);
	if (rc)
		return rc;
	cfg.schema = vbench_rec_schema();
	cfg.key_field = "order_id";
	cfg.ordered[0] = "customer_id";
	cfg.ordered[1] = "order_id";
	cfg.capacity = rows;
	rc = cqrs__vw_create(ds[slot].ctl, "orders", &cfg, &ds[slot].w);
	if (rc)
		return rc;
	for (uint64_t i = 1; i <= rows; i++) {
		if (i % 4096 == 1)
			cqrs__vw_begin(ds[slot].w);
		vbench_row_fill(&r, i, i % customers, 0);
		rc = cqrs__vw_upsert(ds[slot].w, &r);
		if (rc)
			return rc;
		if (i % 4096 == 0 || i == rows)
			cqrs__vw_end(ds[slot].w, i);
	}
	ds[slot].rows = rows;
	ds[slot].customers = customers;
	rc = cqrs__vw_publish(ds[slot].w);
	return rc ? rc : cqrs__ctl_publish(ds[slot].ctl);
}

uint64_t vbench_view_writer_loop(int slot, unsigned seed)
{
	uint64_t n = 0, seq = ds[slot].rows, ver = 1;
	vbench_row r;

	while (!vbench_stopped()) {
		cqrs__vw_begin(ds[slot].w);
		for (int i = 0; i < 64; i++) {
			uint64_t id = 1 + (uint64_t)rand_r(&seed) % ds[slot].rows;
			vbench_row_fill(&r, id, id % ds[slot].customers, ++ver);
			cqrs__vw_upsert(ds[slot].w, &r);
		}
		cqrs__vw_end(ds[slot].w, ++seq);
		n += 64;
	}
	return n;
}

void vbench_view_destroy(int slot)
{
	if (ds[slot].w) {
		cqrs__vw_retire(ds[slot].w);
		cqrs__vw_close(ds[slot].w);
	}
	if (ds[slot].ctl)
		cqrs__ctl_destroy(ds[slot].ctl);
	memset(&ds[slot], 0, sizeof ds[slot]);
}

int vbench_shared_init(void)
{
	if (sh)
		return 0;
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return sh == MAP_FAILED ? (sh = NULL, -1) : 0;
}

/* The flag and counters carry no data but themselves: relaxed throughout,
 * except stop (release/acquire) so helpers' last reports are ordered. */
void vbench_set_stop(int stop)
{
	atomic_store_explicit(&sh->stop, stop, memory_order_release); /* pairs with vbench_stopped */
}

int vbench_stopped(void)
{
	return atomic_load_explicit(&sh->stop, memory_order_acquire); /* pairs with vbench_set_stop */
}

void vbench_set_ready(int helper)
{
	(void)helper;
	atomic_fetch_add_explicit(&sh->ready, 1, memory_order_relaxed); /* a count only */
}

int vbench_ready_count(void)
{
	return atomic_load_explicit(&sh->ready, memory_order_relaxed); /* a count only */
}

void vbench_report(int helper, uint64_t ops, uint64_t ns)
{
	atomic_store_explicit(&sh->ops[helper], ops, memory_order_relaxed); /* read after waitpid */
	atomic_store_explicit(&sh->ns[helper], ns, memory_order_relaxed);   /* read after waitpid */
}

uint64_t vbench_report_ops(int helper)
{
	return atomic_load_explicit(&sh->ops[helper], memory_order_relaxed); /* after waitpid */
}

uint64_t vbench_report_ns(int helper)
{
	return atomic_load_explicit(&sh->ns[helper], memory_order_relaxed); /* after waitpid */
}

void vbench_reset(void)
{
	atomic_store_explicit(&sh->stop, 0, memory_order_relaxed); /* no helper runs now */
	atomic_store_explicit(&sh->ready, 0, memory_order_relaxed);
	for (int i = 0; i < HELPERS; i++)
		vbench_report(i, 0, 0);
}

uint64_t vbench_now_ns(void)
{
	return cqrs__mono_ns();
}
