/*
 * tests/unit/test_view.c - view tables through the writer API and the public
 * reader API: upsert/update/patch/delete/get/find/scan, forced hash
 * collisions and deletes inside probe chains, a full view, str keys,
 * generations, clean shutdown and adoption, pretouch, waiting, a stuck row in an
 * image, and randomized operations checked against a reference model.
 * (Past 800 lines: one test program for the view's whole API, sharing its
 * fixtures; the concurrent cases live in test_view_concurrent.c.)
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <xxhash.h>

#include "tests/lib/testutil.h"
#include "tests/unit/test_view_rows.h"
#include "shm/view_format.h"
#include "shm/view_internal.h"

typedef struct fixture {
	char engine[64];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	cqrs_view *v;
} fixture;

static fixture *fx_new(uint64_t capacity)
{
	fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	tu_unique_name(f->engine, sizeof f->engine, "tview");
	assert_int_equal(tview_setup(f->engine, capacity, &f->ctl, &f->w), 0);
	assert_int_equal(cqrs_view_open(f->engine, "orders", &f->v), 0);
	return f;
}

static void fx_free(fixture *f)
{
	cqrs_view_close(f->v);
	tview_teardown(f->ctl, f->w);
	assert_int_equal(tview_shm_count(f->engine), 0);
	free(f);
}

static int put(cqrs_vw *w, uint64_t id, uint64_t cust, uint64_t ver)
{
	trow r;
	trow_fill(&r, id, cust, ver);
	return cqrs__vw_upsert(w, &r);
}

/* Reads id through the reader API; returns the code, fills *out. */
static int get(cqrs_view *v, uint64_t id, trow *out)
{
	return cqrs_view_get(v, &id, sizeof id, out, sizeof *out);
}

typedef struct collect {
	uint64_t ids[4096];
	int n;
	int bad;
	uint64_t cust;
} collect;

static int collect_fn(void *arg, const void *row, size_t size)
{
	collect *c = arg;
	const trow *r = row;

	if (size != sizeof(trow) || !trow_ok(r) || (c->cust != UINT64_MAX && r->customer_id != c->cust))
		c->bad++;
	if (c->n < 4096)
		c->ids[c->n++] = r->order_id;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int find_ids(cqrs_view *v, uint64_t cust, unsigned flags, collect *c)
{
	int n;

	memset(c, 0, sizeof *c);
	c->cust = cust;
	n = cqrs_view_find(v, "customer_id", &cust, sizeof cust, collect_fn, c, flags);
	qsort(c->ids, (size_t)c->n, sizeof c->ids[0], cmp_u64);
	return n;
}

/* ---- basics --------------------------------------------------------------------- */

static int bump_items(void *arg, void *row, size_t size)
{
	trow *r = row;
	(void)size;
	trow_fill(r, r->order_id, r->customer_id, r->version + *(uint64_t *)arg);
	return 0;
}

static int refuse(void *arg, void *row, size_t size)
{
	(void)arg; (void)row; (void)size;
	return 42;
}

static int change_key(void *arg, void *row, size_t size)
{
	(void)arg; (void)size;
	((trow *)row)->order_id++;
	return 0;
}

static void test_basic_ops(void **state)
{
	fixture *f = fx_new(100);
	trow r;
	collect c;
	uint64_t id = 7, step = 5, missing = 99;
	(void)state;

	assert_int_equal(cqrs_view_capacity(f->v), 100);
	assert_int_equal(cqrs_view_rows(f->v), 0);
	assert_int_equal(get(f->v, 7, &r), CQRS_ENOTFOUND);
	assert_int_equal(put(f->w, 1, 1, 1), -EINVAL); /* outside a batch */

	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(cqrs__vw_begin(f->w), -EINVAL);
	for (uint64_t i = 1; i <= 10; i++)
		assert_int_equal(put(f->w, i, i % 3, 1), 0);
	assert_int_equal(cqrs__vw_end(f->w, 10), 0);
	assert_int_equal(cqrs_view_applied_seq(f->v), 10);
	assert_int_equal(cqrs_view_rows(f->v), 10);

	assert_int_equal(get(f->v, 7, &r), 0);
	assert_true(trow_ok(&r) && r.order_id == 7 && r.customer_id == 1 && r.version == 1);
	assert_int_equal(cqrs_view_get(f->v, &id, 4, &r, sizeof r), -EINVAL);
	assert_int_equal(cqrs_view_get(f->v, &id, sizeof id, &r, sizeof r - 1), -ENOSPC);

	/* upsert of an existing key overwrites in place */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(put(f->w, 7, 1, 2), 0);
	assert_int_equal(cqrs__vw_update(f->w, &id, sizeof id, bump_items, &step), 0);
	assert_int_equal(cqrs__vw_update(f->w, &id, sizeof id, refuse, NULL), 42);
	assert_int_equal(cqrs__vw_update(f->w, &id, sizeof id, change_key, NULL), -EINVAL);
	assert_int_equal(cqrs__vw_update(f->w, &missing, sizeof missing, bump_items, &step),
			 CQRS_ENOTFOUND);
	assert_int_equal(cqrs__vw_end(f->w, 11), 0);
	assert_int_equal(get(f->v, 7, &r), 0);
	assert_true(trow_ok(&r) && r.version == 7);
	assert_int_equal(cqrs__vw_get(f->w, &id, sizeof id, &r), 0);
	assert_true(r.version == 7);

	/* patch writes bytes (here: the note) without touching the key */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(cqrs__vw_patch(f->w, &id, sizeof id, offsetof(trow, note), "patched", 8), 0);
	assert_int_equal(cqrs__vw_patch(f->w, &id, sizeof id, offsetof(trow, order_id), "x", 1),
			 -EINVAL);
	assert_int_equal(cqrs__vw_end(f->w, 12), 0);
	assert_int_equal(get(f->v, 7, &r), 0);
	assert_string_equal(r.note, "patched");

	/* secondary index: customer 1 has ids 1, 4, 7, 10 */
	assert_int_equal(find_ids(f->v, 1, 0, &c), 4);
	assert_int_equal(c.ids[0], 1);
	assert_int_equal(c.ids[3], 10);
	assert_int_equal(find_ids(f->v, 1, CQRS_FIND_SNAPSHOT, &c), 4);
	assert_int_equal(find_ids(f->v, 3, 0, &c), 0);
	assert_int_equal(cqrs_view_find(f->v, "total", &id, 8, collect_fn, &c, 0), CQRS_ENOTFOUND);

	/* move 7 to customer 2, delete 4 */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(put(f->w, 7, 2, 8), 0);
	id = 4;
	assert_int_equal(cqrs__vw_delete(f->w, &id, sizeof id), 0);
	assert_int_equal(cqrs__vw_delete(f->w, &id, sizeof id), CQRS_ENOTFOUND);
	assert_int_equal(cqrs__vw_end(f->w, 13), 0);
	assert_int_equal(get(f->v, 4, &r), CQRS_ENOTFOUND);
	assert_int_equal(find_ids(f->v, 1, 0, &c), 2);
	assert_true(c.ids[0] == 1 && c.ids[1] == 10 && !c.bad);
	assert_int_equal(find_ids(f->v, 2, 0, &c), 4); /* 2, 5, 7, 8 */
	assert_true(c.ids[2] == 7 && !c.bad);

	/* scan sees every live row once */
	memset(&c, 0, sizeof c);
	c.cust = UINT64_MAX;
	assert_int_equal(cqrs_view_scan(f->v, collect_fn, &c, 0), 9);
	memset(&c, 0, sizeof c);
	c.cust = UINT64_MAX;
	assert_int_equal(cqrs_view_scan(f->v, collect_fn, &c, CQRS_FIND_SNAPSHOT), 9);
	assert_int_equal(c.bad, 0); /* row 7's patched note was rewritten by the upsert */

	/* applied_seq must not go back */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(cqrs__vw_end(f->w, 5), -EINVAL);
	assert_int_equal(cqrs_view_applied_seq(f->v), 13);
	fx_free(f);
}

static int stop_after_one(void *arg, const void *row, size_t size)
{
	(void)row; (void)size;
	++*(int *)arg;
	return 1;
}

static void test_callback_stops(void **state)
{
	fixture *f = fx_new(64);
	uint64_t cust = 5;
	int calls = 0;
	(void)state;

	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t i = 1; i <= 20; i++)
		assert_int_equal(put(f->w, i, 5, 1), 0);
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	assert_int_equal(cqrs_view_find(f->v, "customer_id", &cust, 8, stop_after_one, &calls, 0), 1);
	assert_int_equal(calls, 1);
	assert_int_equal(cqrs_view_find(f->v, "customer_id", &cust, 8, stop_after_one, &calls,
					CQRS_FIND_SNAPSHOT), 1);
	assert_int_equal(cqrs_view_scan(f->v, stop_after_one, &calls, 0), 1);
	assert_int_equal(calls, 3);
	fx_free(f);
}

/* cqrs_view_scan_from: a scan in pieces, one row per call, sees every live
 * row once, in slot order, with the cursor past the last slot read. */
static void test_scan_from(void **state)
{
	fixture *f = fx_new(64);
	uint64_t cursor = 0, id;
	int calls = 0, rc, got = 0;
	(void)state;

	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t i = 1; i <= 20; i++)
		assert_int_equal(put(f->w, i, 5, 1), 0);
	id = 3;
	assert_int_equal(cqrs__vw_delete(f->w, &id, sizeof id), 0);
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	while ((rc = cqrs_view_scan_from(f->v, &cursor, stop_after_one, &calls)) > 0)
		got += rc;
	assert_int_equal(rc, 0);
	assert_int_equal(got, 19);
	assert_int_equal(calls, 19);
	assert_true(cursor >= 19 && cursor <= 64);
	/* at the end, the cursor stays there */
	assert_int_equal(cqrs_view_scan_from(f->v, &cursor, stop_after_one, &calls), 0);
	/* the whole rest in one call when fn goes on */
	{
		collect c;
		memset(&c, 0, sizeof c);
		c.cust = UINT64_MAX;
		cursor = 0;
		assert_int_equal(cqrs_view_scan_from(f->v, &cursor, collect_fn, &c), 19);
		assert_int_equal(c.bad, 0);
	}
	assert_int_equal(cqrs_view_scan_from(NULL, &cursor, collect_fn, NULL), -EINVAL);
	assert_int_equal(cqrs_view_scan_from(f->v, NULL, collect_fn, NULL), -EINVAL);
	fx_free(f);
}

/* cqrs_view_find_from: a find in pieces, one row per call, delivers what
 * cqrs_view_find does; rows added or deleted between calls never make a
 * row that kept the key come twice or go missing. */
static int take_id(void *arg, const void *row, size_t size)
{
	uint64_t *id = arg;

	(void)size;
	*id = ((const trow *)row)->order_id;
	return 1;
}

static void test_find_from(void **state)
{
	fixture *f = fx_new(256);
	uint64_t cust = 5, id, gone, seen[64];
	cqrs_view_cursor c;
	int n = 0, rc;
	(void)state;

	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t i = 1; i <= 20; i++)
		assert_int_equal(put(f->w, i, 5, 1), 0);
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	cqrs_view_cursor_init(&c);
	while (n < 5 && (rc = cqrs_view_find_from(f->v, "customer_id", &cust, 8, &c, take_id, &id)) > 0)
		seen[n++] = id;
	assert_int_equal(n, 5);
	/* between calls: ten more rows with the key, one unseen row deleted,
	 * one seen row updated in place */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t i = 100; i < 110; i++)
		assert_int_equal(put(f->w, i, 5, 1), 0);
	for (id = 1;; id++) { /* a row the walk has not reached */
		int was = 0;
		for (int i = 0; i < n; i++)
			was |= seen[i] == id;
		if (!was)
			break;
	}
	gone = id;
	assert_int_equal(cqrs__vw_delete(f->w, &gone, sizeof gone), 0);
	assert_int_equal(put(f->w, seen[0], 5, 2), 0);
	assert_int_equal(cqrs__vw_end(f->w, 2), 0);
	while ((rc = cqrs_view_find_from(f->v, "customer_id", &cust, 8, &c, take_id, &id)) > 0) {
		assert_true(n < 64);
		seen[n++] = id;
	}
	assert_int_equal(rc, 0);
	/* the 19 rows that kept the key, each once; new ones may come or not */
	for (uint64_t want = 1; want <= 20; want++) {
		int times = 0;
		for (int i = 0; i < n; i++)
			times += seen[i] == want;
		assert_int_equal(times, want == gone ? 0 : 1);
	}
	for (uint64_t want = 100; want < 110; want++) {
		int times = 0;
		for (int i = 0; i < n; i++)
			times += seen[i] == want;
		assert_true(times <= 1);
	}
	assert_int_equal(cqrs_view_find_from(f->v, "customer_id", &cust, 8, &c, take_id, &id), 0);
	cqrs_view_cursor_init(&c);
	assert_int_equal(cqrs_view_find_from(f->v, "total", &cust, 8, &c, take_id, &id),
			 CQRS_ENOTFOUND);
	assert_int_equal(cqrs_view_find_from(f->v, "customer_id", &cust, 8, NULL, take_id, &id),
			 -EINVAL);
	fx_free(f);
}

/* ---- collisions ------------------------------------------------------------------ */

/* Keys whose primary bucket (capacity 16: 32 buckets) is `bucket`. */
static int colliding_keys(uint64_t *out, int n, uint64_t mask, uint64_t bucket)
{
	int k = 0;
	for (uint64_t id = 1; k < n && id < 10000000; id++)
		if ((XXH3_64bits(&id, 8) & mask) == bucket)
			out[k++] = id;
	return k;
}

static void test_collisions_and_probe_deletes(void **state)
{
	fixture *f = fx_new(16);
	uint64_t keys[12];
	trow r;
	(void)state;

	/* 12 keys in one bucket of 32: one probe chain 12 long */
	assert_int_equal(colliding_keys(keys, 12, 31, 30), 12);
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(put(f->w, keys[i], 1, 1), 0);
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	for (int i = 0; i < 12; i++) {
		assert_int_equal(get(f->v, keys[i], &r), 0);
		assert_true(r.order_id == keys[i]);
	}
	/* delete inside the chain: the keys after it stay reachable */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (int i = 1; i < 12; i += 3)
		assert_int_equal(cqrs__vw_delete(f->w, &keys[i], 8), 0);
	assert_int_equal(cqrs__vw_end(f->w, 2), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(get(f->v, keys[i], &r), (i % 3 == 1) ? CQRS_ENOTFOUND : 0);
	/* the last one: its tombstone run ends in an empty bucket and is cleared */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(cqrs__vw_delete(f->w, &keys[11], 8), 0);
	assert_int_equal(cqrs__vw_delete(f->w, &keys[9], 8), 0);
	assert_int_equal(cqrs__vw_end(f->w, 3), 0);
	for (int i = 0; i < 9; i++)
		assert_int_equal(get(f->v, keys[i], &r), (i % 3 == 1) ? CQRS_ENOTFOUND : 0);
	/* reinsert: tombstones are reused, nothing is duplicated */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(put(f->w, keys[i], 2, 2), 0);
	assert_int_equal(cqrs__vw_end(f->w, 4), 0);
	assert_int_equal(cqrs_view_rows(f->v), 12);
	for (int i = 0; i < 12; i++) {
		assert_int_equal(get(f->v, keys[i], &r), 0);
		assert_true(r.version == 2 && trow_ok(&r));
	}
	fx_free(f);
}

static void test_secondary_collisions(void **state)
{
	fixture *f = fx_new(16); /* 16 secondary heads */
	uint64_t custs[3];
	collect c;
	(void)state;

	assert_int_equal(colliding_keys(custs, 3, 15, 3), 3);
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t i = 0; i < 15; i++)
		assert_int_equal(put(f->w, 100 + i, custs[i % 3], 1), 0);
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(find_ids(f->v, custs[k], 0, &c), 5);
		assert_int_equal(c.bad, 0);
		assert_int_equal(find_ids(f->v, custs[k], CQRS_FIND_SNAPSHOT, &c), 5);
	}
	/* unlink the chain's head, middle and tail */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t id = 114; id >= 100; id -= 7)
		assert_int_equal(cqrs__vw_delete(f->w, &id, 8), 0);
	assert_int_equal(cqrs__vw_end(f->w, 2), 0);
	assert_int_equal(find_ids(f->v, custs[0], 0, &c) + find_ids(f->v, custs[1], 0, &c) +
				 find_ids(f->v, custs[2], 0, &c),
			 12);
	fx_free(f);
}

/* ---- full view -------------------------------------------------------------------- */

static void test_full_view(void **state)
{
	fixture *f = fx_new(8);
	trow r;
	uint64_t id = 3;
	(void)state;

	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t i = 1; i <= 8; i++)
		assert_int_equal(put(f->w, i, 1, 1), 0);
	assert_int_equal(put(f->w, 9, 1, 1), CQRS_EFULL);
	assert_int_equal(put(f->w, 8, 2, 2), 0); /* overwrite still fine when full */
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	assert_int_equal(cqrs_view_rows(f->v), 8);
	for (uint64_t i = 1; i <= 9; i++)
		assert_int_equal(get(f->v, i, &r), i <= 8 ? 0 : CQRS_ENOTFOUND);
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(cqrs__vw_delete(f->w, &id, 8), 0);
	assert_int_equal(put(f->w, 9, 1, 1), 0);
	assert_int_equal(put(f->w, 10, 1, 1), CQRS_EFULL);
	assert_int_equal(cqrs__vw_end(f->w, 2), 0);
	assert_int_equal(get(f->v, 9, &r), 0);
	assert_int_equal(get(f->v, 3, &r), CQRS_ENOTFOUND);
	fx_free(f);
}

/* ---- str keys --------------------------------------------------------------------- */

#define SKU_FIELDS(F) F(str, sku, 16) F(bytes, tag, 4) F(u32, qty)
CQRS_RECORD(sku_row, "Sku", SKU_FIELDS)

static void test_str_key(void **state)
{
	char engine[64];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	cqrs_view *v;
	cqrs_vw_config cfg = { 0 };
	sku_row r, out;
	(void)state;

	tu_unique_name(engine, sizeof engine, "tsku");
	assert_int_equal(cqrs__ctl_create(engine, NULL, &ctl), 0);
	cfg.schema = sku_row_schema();
	cfg.key_field = "sku";
	cfg.secondary[0] = "tag";
	cfg.capacity = 32;
	assert_int_equal(cqrs__vw_create(ctl, "skus", &cfg, &w), 0);
	assert_int_equal(cqrs__vw_publish(w), 0);
	assert_int_equal(cqrs__vw_begin(w), 0);
	memset(&r, 0, sizeof r);
	strcpy(r.sku, "ABC-1");
	memcpy(r.tag, "\x01\x02\x00\x00", 4);
	r.qty = 3;
	assert_int_equal(cqrs__vw_upsert(w, &r), 0);
	assert_int_equal(cqrs__vw_end(w, 1), 0);
	assert_int_equal(cqrs_view_open(engine, "skus", &v), 0);
	assert_int_equal(cqrs_view_get(v, "ABC-1", 5, &out, sizeof out), 0);
	assert_int_equal(out.qty, 3);
	assert_int_equal(cqrs_view_get(v, "ABC-2", 5, &out, sizeof out), CQRS_ENOTFOUND);
	assert_int_equal(cqrs_view_get(v, "0123456789abcdefg", 17, &out, sizeof out), -EINVAL);
	{
		collect c;
		memset(&c, 0, sizeof c);
		c.cust = UINT64_MAX;
		assert_int_equal(cqrs_view_find(v, "tag", "\x01\x02", 2, stop_after_one, &c.n, 0), 1);
	}
	/* an index on a missing field */
	{
		cqrs_vw *bad;
		cfg.secondary[0] = "nope";
		assert_int_equal(cqrs__vw_create(ctl, "skus2", &cfg, &bad), CQRS_ENOTFOUND);
		assert_null(bad);
	}
	cqrs_view_close(v);
	{
		cqrs_vw *w2;
		cfg.key_field = "sku";
		cfg.secondary[0] = "tag";
		/* same name again: next generation */
		assert_int_equal(cqrs__vw_create(ctl, "skus", &cfg, &w2), 0);
		assert_int_equal(cqrs__vw_generation(w2), 2);
		cqrs__vw_retire(w2);
		cqrs__vw_close(w2);
	}
	cqrs__vw_retire(w);
	cqrs__vw_close(w);
	cqrs__ctl_destroy(ctl);
	assert_int_equal(tview_shm_count(engine), 0);
}

/* ---- generations ------------------------------------------------------------------ */

static void test_generation_move(void **state)
{
	fixture *f = fx_new(32);
	cqrs_vw_config cfg = { 0 };
	cqrs_vw *w2;
	trow r;
	(void)state;

	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(put(f->w, 1, 1, 1), 0);
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	assert_int_equal(get(f->v, 1, &r), 0);
	assert_int_equal(cqrs_view_generation(f->v), 1);

	/* rebuild into generation 2 with more room and other content */
	cfg.schema = trow_schema();
	cfg.key_field = "order_id";
	cfg.secondary[0] = "customer_id";
	cfg.capacity = 64;
	assert_int_equal(cqrs__vw_create(f->ctl, "orders", &cfg, &w2), 0);
	assert_int_equal(cqrs__vw_generation(w2), 2);
	assert_int_equal(cqrs__vw_begin(w2), 0);
	assert_int_equal(put(w2, 1, 1, 5), 0);
	assert_int_equal(put(w2, 2, 1, 5), 0);
	assert_int_equal(cqrs__vw_end(w2, 2), 0);
	/* not yet published: the reader still reads generation 1 */
	assert_int_equal(get(f->v, 2, &r), CQRS_ENOTFOUND);
	assert_int_equal(cqrs__vw_publish(w2), 0);
	assert_int_equal(cqrs__vw_retire(f->w), 0);
	cqrs__vw_close(f->w);
	f->w = w2;
	/* the reader notices by itself at its next call */
	assert_int_equal(get(f->v, 2, &r), 0);
	assert_true(r.version == 5);
	assert_int_equal(cqrs_view_generation(f->v), 2);
	assert_int_equal(cqrs_view_capacity(f->v), 64);
	assert_int_equal(cqrs_view_applied_seq(f->v), 2);
	{
		cqrs_view_info info;
		cqrs_view_entry e[4];
		assert_int_equal(cqrs_view_stat(f->v, &info), 0);
		assert_int_equal(info.generation, 2);
		assert_int_equal(info.rows, 2);
		assert_true(info.writer_alive && !info.retired);
		assert_string_equal(info.key_field, "order_id");
		assert_string_equal(info.secondary[0], "customer_id");
		assert_int_equal(cqrs_view_list(f->engine, e, 4), 1);
		assert_string_equal(e[0].name, "orders");
		assert_int_equal(e[0].generation, 2);
	}
	fx_free(f);
}

static void test_clean_and_adopt(void **state)
{
	fixture *f = fx_new(32);
	cqrs_vw_config cfg = { 0 };
	cqrs_vw *w2;
	trow r;
	(void)state;

	cfg.schema = trow_schema();
	cfg.key_field = "order_id";
	cfg.secondary[0] = "customer_id";
	cfg.capacity = 32;
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(put(f->w, 1, 1, 1), 0);
	assert_int_equal(cqrs__vw_end(f->w, 7), 0);
	assert_false(cqrs__vw_is_clean(f->w));
	assert_int_equal(cqrs__vw_mark_clean(f->w), 0);
	cqrs__vw_close(f->w); /* the segment stays */
	f->w = NULL;
	/* other indexes: refused */
	cfg.secondary[0] = "total";
	assert_int_equal(cqrs__vw_adopt(f->ctl, "orders", 1, &cfg, &w2), CQRS_EFORMAT);
	cfg.secondary[0] = "customer_id";
	assert_int_equal(cqrs__vw_adopt(f->ctl, "orders", 1, &cfg, &w2), 0);
	assert_true(cqrs__vw_is_clean(w2));
	assert_int_equal(cqrs__vw_applied_seq(w2), 7);
	assert_int_equal(cqrs__vw_rows(w2), 1);
	assert_int_equal(cqrs__vw_begin(w2), 0); /* dirty from here */
	assert_false(cqrs__vw_is_clean(w2));
	assert_int_equal(put(w2, 2, 1, 1), 0);
	assert_int_equal(cqrs__vw_end(w2, 8), 0);
	assert_int_equal(get(f->v, 2, &r), 0); /* same segment: the reader sees it */
	cqrs__vw_close(w2);
	/* not clean: adoption refused */
	assert_int_equal(cqrs__vw_adopt(f->ctl, "orders", 1, &cfg, &w2), CQRS_ECORRUPT);
	assert_int_equal(cqrs__vw_adopt(f->ctl, "orders", 9, &cfg, &w2), -ENOENT);
	{
		char name[CQRS_SEG_NAME_MAX];
		cqrs__seg_name_view(name, sizeof name, f->engine, "orders", 1);
		assert_int_equal(cqrs__seg_unlink(name), 0);
	}
	fx_free(f);
}

/* ---- pretouch ---------------------------------------------------------------------- */

/* KiB of segment `name` ("/cqrs...") mapped in this process's page tables
 * (smaps Rss). */
static uint64_t mapped_kib(const char *name)
{
	char line[512], path[CQRS_SEG_NAME_MAX + 16];
	uint64_t kib = 0;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	assert_non_null(f);
	snprintf(path, sizeof path, "/dev/shm%s", name);
	while (fgets(line, sizeof line, f)) {
		unsigned long v, lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's header line */
			in = strstr(line, path) != NULL;
		else if (in && sscanf(line, "Rss: %lu kB", &v) == 1)
			kib += v;
	}
	fclose(f);
	return kib;
}

static uint64_t shm_kib(const char *name)
{
	char path[CQRS_SEG_NAME_MAX + 16];
	struct stat st;

	snprintf(path, sizeof path, "/dev/shm%s", name);
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size / 1024;
}

/* With pretouch every row page is mapped at create and at adopt; without
 * it only the index, the chain heads and a window of rows ahead of use. */
static void test_pretouch(void **state)
{
	char engine[64], name[CQRS_SEG_NAME_MAX];
	cqrs_vw_config cfg = { 0 };
	cqrs_ctl *ctl;
	cqrs_vw *w;
	uint64_t rows_kib, seg_kib, base_kib = 0;
	(void)state;

	{ /* prefaulting is a hint: kernels before 5.14 map nothing ahead */
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int ok = p != MAP_FAILED && madvise(p, 4096, 23 /* MADV_POPULATE_WRITE */) == 0;
		if (p != MAP_FAILED)
			munmap(p, 4096);
		if (!ok)
			skip();
	}
	tu_unique_name(engine, sizeof engine, "tpre");
	assert_int_equal(cqrs__ctl_create(engine, NULL, &ctl), 0);
	cfg.schema = trow_schema();
	cfg.key_field = "order_id";
	cfg.secondary[0] = "customer_id";
	cfg.capacity = 200000; /* rows: about 14 MiB, three prefault windows and more */
	rows_kib = cfg.capacity * sizeof(trow) / 1024;
	for (int pre = 0; pre <= 1; pre++) {
		cfg.pretouch = pre;
		cfg.generation = (uint64_t)pre + 1;
		assert_int_equal(cqrs__vw_create(ctl, "orders", &cfg, &w), 0);
		cqrs__seg_name_view(name, sizeof name, engine, "orders", cfg.generation);
		assert_int_equal(cqrs__vw_begin(w), 0);
		assert_int_equal(put(w, 1, 1, 1), 0);
		assert_int_equal(cqrs__vw_end(w, 1), 0);
		/* without: the index, the heads and one window of rows; with:
		 * the same and every row */
		seg_kib = shm_kib(name);
		if (pre) {
			assert_true(mapped_kib(name) + 4096 + 64 >= base_kib + rows_kib);
		} else {
			base_kib = mapped_kib(name);
			assert_true(base_kib <= seg_kib - rows_kib + 4096 + 64);
		}
		assert_int_equal(cqrs__vw_mark_clean(w), 0);
		cqrs__vw_close(w); /* the segment stays: adopt it */
		assert_int_equal(mapped_kib(name), 0);
		assert_int_equal(cqrs__vw_adopt(ctl, "orders", cfg.generation, &cfg, &w), 0);
		/* adopted: rows only as far as pretouch goes (nothing is allocated) */
		if (pre)
			assert_true(mapped_kib(name) >= rows_kib);
		else
			assert_true(mapped_kib(name) <= seg_kib - rows_kib);
		cqrs__vw_close(w);
		assert_int_equal(cqrs__seg_unlink(name), 0);
	}
	cqrs__ctl_destroy(ctl);
	assert_int_equal(tview_shm_count(engine), 0);
}

/* ---- waiting ---------------------------------------------------------------------- */

static void test_wait_in_process(void **state)
{
	fixture *f = fx_new(8);
	(void)state;

	assert_int_equal(cqrs_view_wait(f->v, 0, 0), 0);
	assert_int_equal(cqrs_view_wait(f->v, 1, 1000000), -ETIMEDOUT);
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(cqrs__vw_end(f->w, 3), 0);
	assert_int_equal(cqrs_view_wait(f->v, 3, 0), 0);
	assert_int_equal(cqrs_view_wait(f->v, 2, UINT64_MAX), 0);
	fx_free(f);
}

/* A reader blocked in cqrs_view_wait follows the directory to a new
 * generation that was published without retiring the old one. */
static void *wait_thread(void *arg)
{
	fixture *f = arg;
	return (void *)(intptr_t)cqrs_view_wait(f->v, 10, 60ull * 1000000000);
}

static void test_wait_follows_generation(void **state)
{
	fixture *f = fx_new(8);
	cqrs_vw_config cfg = { 0 };
	cqrs_vw *w2;
	pthread_t t;
	void *ret;
	(void)state;

	assert_int_equal(pthread_create(&t, NULL, wait_thread, f), 0);
	cfg.schema = trow_schema();
	cfg.key_field = "order_id";
	cfg.secondary[0] = "customer_id";
	cfg.capacity = 8;
	assert_int_equal(cqrs__vw_create(f->ctl, "orders", &cfg, &w2), 0);
	assert_int_equal(cqrs__vw_begin(w2), 0);
	assert_int_equal(put(w2, 1, 1, 1), 0);
	assert_int_equal(cqrs__vw_end(w2, 10), 0);
	assert_int_equal(cqrs__vw_publish(w2), 0); /* generation 1 is not retired */
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_int_equal((intptr_t)ret, 0);
	assert_int_equal(cqrs_view_generation(f->v), 2);
	cqrs__vw_retire(f->w);
	cqrs__vw_close(f->w);
	f->w = w2;
	fx_free(f);
}

/* ---- a stuck row in an image (no owner) -------------------------------------------- */

static void test_stuck_row_image(void **state)
{
	fixture *f = fx_new(8);
	char name[CQRS_SEG_NAME_MAX];
	cqrs_seg s;
	cqrs_view *iv;
	void *img;
	uint64_t id = 2, cust = 1;
	trow r;
	collect c;
	(void)state;

	assert_int_equal(cqrs__vw_begin(f->w), 0);
	assert_int_equal(put(f->w, 1, 1, 1), 0);
	assert_int_equal(put(f->w, 2, 1, 1), 0);
	assert_int_equal(cqrs__vw_test_leave_odd(f->w, &id, 8), 0);
	/* copy the segment as it is now into an image */
	cqrs__seg_name_view(name, sizeof name, f->engine, "orders", 1);
	assert_int_equal(cqrs__seg_open(&s, name, CQRS_SEG_VIEW, 0), 0);
	img = aligned_alloc(64, s.size);
	assert_non_null(img);
	memcpy(img, s.base, s.size);
	assert_int_equal(cqrs__view_attach_image(img, s.size, &iv), 0);
	assert_int_equal(get(iv, 1, &r), 0);
	assert_int_equal(get(iv, 2, &r), CQRS_EWRITERDEAD);
	assert_int_equal(find_ids(iv, cust, 0, &c), CQRS_EWRITERDEAD);
	assert_int_equal(find_ids(iv, cust, CQRS_FIND_SNAPSHOT, &c), CQRS_EWRITERDEAD);
	cqrs_view_close(iv);
	free(img);
	cqrs__seg_close(&s);
	fx_free(f);
}

/* ---- tombstones crowd the index: rebuilds into the other copy --------------------- */

static void test_index_rebuild(void **state)
{
	fixture *f = fx_new(16); /* 32 buckets: a rebuild once live + tombstones pass 24 */
	uint64_t next = 1000, live[16];
	trow r;
	(void)state;

	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (int i = 0; i < 16; i++) {
		live[i] = next++;
		assert_int_equal(put(f->w, live[i], 1, 1), 0);
	}
	/* replace every row by a fresh key, many times over */
	for (int round = 0; round < 40; round++)
		for (int i = 0; i < 16; i++) {
			assert_int_equal(cqrs__vw_delete(f->w, &live[i], 8), 0);
			live[i] = next++;
			assert_int_equal(put(f->w, live[i], 1, (uint64_t)round), 0);
		}
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	assert_true(cqrs__vw_rebuilds(f->w) >= 2); /* both copies served as the active one */
	for (int i = 0; i < 16; i++) {
		assert_int_equal(get(f->v, live[i], &r), 0);
		assert_true(r.order_id == live[i]);
	}
	for (uint64_t k = 1000; k < live[0]; k += 7)
		assert_int_equal(get(f->v, k, &r), CQRS_ENOTFOUND);
	assert_int_equal(cqrs_view_rows(f->v), 16);
	fx_free(f);
}

/* ---- randomized against a reference model ---------------------------------------- */

#define MKEYS 600
#define MCAP 256
#define MCUST 12

typedef struct model {
	int present[MKEYS];
	uint64_t cust[MKEYS], ver[MKEYS];
	int rows;
} model;

static void check_model(fixture *f, const model *m)
{
	trow r;
	collect c;

	for (uint64_t k = 0; k < MKEYS; k++) {
		int rc = get(f->v, k, &r);
		if (m->present[k]) {
			assert_int_equal(rc, 0);
			assert_true(trow_ok(&r) && r.customer_id == m->cust[k] && r.version == m->ver[k]);
		} else {
			assert_int_equal(rc, CQRS_ENOTFOUND);
		}
	}
	for (uint64_t cu = 0; cu < MCUST; cu++) {
		uint64_t want[MKEYS];
		int n = 0;
		for (uint64_t k = 0; k < MKEYS; k++)
			if (m->present[k] && m->cust[k] == cu)
				want[n++] = k;
		for (int snap = 0; snap < 2; snap++) {
			assert_int_equal(find_ids(f->v, cu, snap ? CQRS_FIND_SNAPSHOT : 0, &c), n);
			assert_int_equal(c.bad, 0);
			assert_memory_equal(c.ids, want, (size_t)n * sizeof want[0]);
		}
	}
	assert_int_equal(cqrs_view_rows(f->v), (uint64_t)m->rows);
	memset(&c, 0, sizeof c);
	c.cust = UINT64_MAX;
	assert_int_equal(cqrs_view_scan(f->v, collect_fn, &c, 0), m->rows);
}

static int set_cust(void *arg, void *row, size_t size)
{
	trow *r = row;
	(void)size;
	trow_fill(r, r->order_id, *(uint64_t *)arg, r->version + 1);
	return 0;
}

static void test_random_vs_model(void **state)
{
	fixture *f = fx_new(MCAP);
	model *m = calloc(1, sizeof *m);
	uint64_t seq = 0;
	unsigned seed = 12345;
	int batches = getenv("CQRS_SAN") ? 1000 : 3000;
	(void)state;

	assert_non_null(m);
	for (int b = 0; b < batches; b++) {
		int ops = 1 + rand_r(&seed) % 24;
		assert_int_equal(cqrs__vw_begin(f->w), 0);
		for (int o = 0; o < ops; o++) {
			uint64_t k = (uint64_t)(rand_r(&seed) % MKEYS);
			uint64_t cu = (uint64_t)(rand_r(&seed) % MCUST);
			int op = rand_r(&seed) % 100, rc;

			if (op < 50) {
				rc = put(f->w, k, cu, m->ver[k] + 1);
				if (!m->present[k] && m->rows == MCAP) {
					assert_int_equal(rc, CQRS_EFULL);
					continue;
				}
				assert_int_equal(rc, 0);
				m->rows += !m->present[k];
				m->present[k] = 1;
				m->cust[k] = cu;
				m->ver[k]++;
			} else if (op < 80) {
				rc = cqrs__vw_delete(f->w, &k, 8);
				assert_int_equal(rc, m->present[k] ? 0 : CQRS_ENOTFOUND);
				m->rows -= m->present[k];
				m->present[k] = 0;
			} else {
				rc = cqrs__vw_update(f->w, &k, 8, set_cust, &cu);
				assert_int_equal(rc, m->present[k] ? 0 : CQRS_ENOTFOUND);
				if (m->present[k]) {
					m->cust[k] = cu;
					m->ver[k]++;
				}
			}
		}
		assert_int_equal(cqrs__vw_end(f->w, ++seq), 0);
		if (b % 10 == 0 || b == batches - 1)
			check_model(f, m);
	}
	print_message("index rebuilds: %llu\n", (unsigned long long)cqrs__vw_rebuilds(f->w));
	free(m);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_ops),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_scan_from),
		cmocka_unit_test(test_find_from),
		cmocka_unit_test(test_collisions_and_probe_deletes),
		cmocka_unit_test(test_secondary_collisions),
		cmocka_unit_test(test_full_view),
		cmocka_unit_test(test_str_key),
		cmocka_unit_test(test_generation_move),
		cmocka_unit_test(test_clean_and_adopt),
		cmocka_unit_test(test_pretouch),
		cmocka_unit_test(test_wait_in_process),
		cmocka_unit_test(test_wait_follows_generation),
		cmocka_unit_test(test_stuck_row_image),
		cmocka_unit_test(test_index_rebuild),
		cmocka_unit_test(test_random_vs_model),
	};
	return cmocka_run_group_tests(tests, NULL, tview_group_cleanup);
}
