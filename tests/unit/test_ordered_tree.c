/*
 * tests/unit/test_ordered_tree.c - the ordered index's B+tree where its
 * structure is at stake (shm/ordered_format.h): trees several levels deep,
 * node splits, merges and redistributions under random churn, every
 * shape checked by cqrs__ow_check (fences, fill, the leaf chain both ways,
 * the owner array) after each batch; walks compared with a reference
 * model in both directions across leaf boundaries, with limits that end
 * inside and at the edge of leaves; one key duplicated over dozens of
 * leaves; covering rows that follow updates which keep their key; the
 * tree emptied (the root collapses to one leaf) and grown again; a tree
 * of another layout version refused by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/errors.h"
#include "cqrs_view.h"
#include "shm/control.h"
#include "shm/ordered_format.h"
#include "shm/ordered_writer.h"
#include "shm/view_internal.h"
#include "shm/view_writer.h"
#include "tests/lib/testutil.h"
#include "tests/unit/test_ordered_rows.h"

#define CAP 12000u

typedef struct tfx {
	char engine[64];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	cqrs_view *v;
	int live[CAP];
	orow rows[CAP];
} tfx;

static tfx F;

static void tfx_open(tfx *f)
{
	memset(f, 0, sizeof *f);
	tu_unique_name(f->engine, sizeof f->engine, "ttree");
	assert_int_equal(oview_setup(f->engine, CAP, "sym", "price", &f->ctl, &f->w), 0);
	assert_int_equal(cqrs_view_open(f->engine, "book", &f->v), 0);
}

static void tfx_close(tfx *f)
{
	cqrs_view_close(f->v);
	tview_teardown(f->ctl, f->w);
	assert_int_equal(tview_shm_count(f->engine), 0);
}

static uint32_t tree_depth(const tfx *f)
{
	const cqrs_ow *o = cqrs__vw_ordered(f->w);

	return atomic_load_explicit(&((const cqrs_ometa *)(const void *)o->nodes)->depth,
				    memory_order_relaxed); /* this thread is the writer */
}

static uint64_t n_live(const tfx *f)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < CAP; i++)
		n += (uint64_t)f->live[i];
	return n;
}

static void check_tree(const tfx *f)
{
	uint64_t n = 0;

	assert_int_equal(cqrs__ow_check(cqrs__vw_ordered(f->w), &n), 0);
	assert_int_equal(n, n_live(f));
}

/* (sym, price) of a, b as the index orders them */
static int kcmp(const orow *a, const orow *b)
{
	int c = memcmp(a->sym, b->sym, sizeof a->sym);

	if (c)
		return c;
	return a->price < b->price ? -1 : a->price > b->price;
}

typedef struct walk {
	orow got[CAP];
	uint64_t n;
	int bad;
} walk;

static walk W;

static int collect(void *arg, const void *row, size_t size)
{
	walk *w = arg;
	const orow *r = row;

	if (size != sizeof(orow) || !orow_ok(r) || w->n >= CAP) {
		w->bad = 1;
		return 1;
	}
	w->got[w->n++] = *r;
	return 0;
}

/* Every row delivered is the model's current row for its id (covering
 * copies follow updates); keys come in order (desc: reversed); the count
 * is the model's count in [lo, hi). */
static void check_walk(const tfx *f, const walk *w, int desc, const orow *lo, const orow *hi,
		       uint64_t limit)
{
	uint64_t want = 0;

	assert_int_equal(w->bad, 0);
	for (uint32_t i = 0; i < CAP; i++)
		if (f->live[i] && (!lo || kcmp(&f->rows[i], lo) >= 0) && (!hi || kcmp(&f->rows[i], hi) < 0))
			want++;
	assert_int_equal(w->n, limit && want > limit ? limit : want);
	for (uint64_t i = 0; i < w->n; i++) {
		const orow *r = &w->got[i];

		assert_true(r->id < CAP && f->live[r->id]);
		assert_memory_equal(r, &f->rows[r->id], sizeof *r);
		if (i)
			assert_true(desc ? kcmp(&w->got[i - 1], r) >= 0 : kcmp(&w->got[i - 1], r) <= 0);
	}
}

static void range(const tfx *f, const orow *lo, const orow *hi, unsigned flags, uint64_t limit)
{
	karg kl, kh;
	int rc;

	if (lo) {
		memcpy(kl.sym, lo->sym, 8);
		kl.price = lo->price;
	}
	if (hi) {
		memcpy(kh.sym, hi->sym, 8);
		kh.price = hi->price;
	}
	memset(&W, 0, sizeof W);
	rc = cqrs_view_range(f->v, NULL, lo ? &kl : NULL, sizeof kl, hi ? &kh : NULL, sizeof kh, flags,
			     limit, collect, &W);
	assert_true(rc >= 0);
	assert_int_equal((uint64_t)rc, W.n);
	check_walk(f, &W, !!(flags & CQRS_RANGE_DESC), lo, hi, limit);
}

static void upsert(tfx *f, uint64_t id, int sym, int64_t price, uint64_t ver)
{
	orow r;

	orow_fill(&r, id, sym, price, (double)ver, ver);
	assert_int_equal(cqrs__vw_upsert(f->w, &r), 0);
	f->rows[id] = r;
	f->live[id] = 1;
}

static void del(tfx *f, uint64_t id)
{
	assert_int_equal(cqrs__vw_delete(f->w, &id, sizeof id), f->live[id] ? 0 : CQRS_ENOTFOUND);
	f->live[id] = 0;
}

static void random_ranges(const tfx *f, uint64_t seed)
{
	for (int t = 0; t < 6; t++) {
		uint64_t x = trow_mix(seed, (uint64_t)t, 17);
		orow lo, hi;
		unsigned flags = (x & 1 ? CQRS_RANGE_DESC : 0) | (x & 2 ? CQRS_RANGE_SNAPSHOT : 0);
		uint64_t limit = x & 4 ? (x >> 8) % 300 + 1 : 0;

		orow_fill(&lo, 0, (int)((x >> 16) % 4), (int64_t)((x >> 20) % 2000) - 1000, 0, 0);
		orow_fill(&hi, 0, (int)((x >> 32) % 4), (int64_t)((x >> 36) % 2000) - 1000, 0, 0);
		range(f, x & 8 ? &lo : NULL, x & 16 ? &hi : NULL, flags, limit);
	}
	range(f, NULL, NULL, 0, 0);
	range(f, NULL, NULL, CQRS_RANGE_DESC, 0);
}

/* Random churn over a tree 2-3 levels deep: inserts (many duplicates),
 * key moves, deletes, updates that keep the key; the tree checked and
 * walked after every batch. */
static void test_churn_deep(void **state)
{
	tfx *f = &F;
	uint64_t ver = 1, seq = 0;
	uint32_t max_depth = 0;

	(void)state;
	tfx_open(f);
	for (int batch = 0; batch < 160; batch++) {
		assert_int_equal(cqrs__vw_begin(f->w), 0);
		for (int op = 0; op < 400; op++) {
			uint64_t x = trow_mix((uint64_t)batch, (uint64_t)op, 23);
			uint64_t id = x % (batch < 40 ? CAP / 2 : CAP);
			int kind = (int)((x >> 20) % 10);

			if (batch >= 120)
				kind = kind < 8 ? 7 : 9; /* mostly deletes: merges all the way up */
			if (kind < 6)
				upsert(f, id, (int)((x >> 30) % 4), (int64_t)((x >> 34) % 2000) - 1000, ver++);
			else if (kind < 9)
				del(f, id);
			else if (f->live[id])
				upsert(f, id, f->rows[id].sym[1] - '0', f->rows[id].price, ver++); /* same key */
		}
		assert_int_equal(cqrs__vw_end(f->w, ++seq), 0);
		check_tree(f);
		random_ranges(f, (uint64_t)batch);
		if (tree_depth(f) > max_depth)
			max_depth = tree_depth(f);
	}
	assert_true(max_depth >= 2); /* inner nodes split (and merged) too */
	/* empty it: the root collapses to one empty leaf; then grow it again */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t id = 0; id < CAP; id++)
		if (f->live[id])
			del(f, id);
	assert_int_equal(cqrs__vw_end(f->w, ++seq), 0);
	check_tree(f);
	assert_int_equal(tree_depth(f), 0);
	{
		orow r;
		assert_int_equal(cqrs_view_first(f->v, NULL, &r, sizeof r), CQRS_ENOTFOUND);
		assert_int_equal(cqrs_view_last(f->v, NULL, &r, sizeof r), CQRS_ENOTFOUND);
	}
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t id = 0; id < CAP; id++)
		upsert(f, id, (int)(id % 4), (int64_t)(id % 1500), ver++);
	assert_int_equal(cqrs__vw_end(f->w, ++seq), 0);
	check_tree(f);
	random_ranges(f, 999);
	tfx_close(f);
}

/* One key held by thousands of rows spread over dozens of leaves. */
static void test_duplicates_across_leaves(void **state)
{
	tfx *f = &F;
	orow lo, hi, r;
	uint64_t c;
	karg k;

	(void)state;
	tfx_open(f);
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t id = 0; id < 6000; id++)
		upsert(f, id, id % 3 == 0 ? 1 : 2, id % 3 == 0 ? 5 : 7, id + 1);
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	check_tree(f);
	orow_fill(&lo, 0, 2, 7, 0, 0);
	orow_fill(&hi, 0, 2, 8, 0, 0);
	range(f, &lo, &hi, 0, 0);
	assert_int_equal(W.n, 4000);
	range(f, &lo, &hi, CQRS_RANGE_DESC, 0);
	assert_int_equal(W.n, 4000);
	range(f, &lo, &hi, CQRS_RANGE_SNAPSHOT, 0);
	range(f, &lo, &hi, CQRS_RANGE_DESC, 1234);
	range(f, &lo, NULL, 0, 77);
	memcpy(k.sym, lo.sym, 8);
	k.price = 7;
	assert_int_equal(cqrs_view_range_count(f->v, NULL, &k, sizeof k, NULL, 0, 0, &c), 0);
	assert_int_equal(c, 4000);
	/* seek: the first of the duplicates (the lowest row), and DESC the last */
	assert_int_equal(cqrs_view_seek(f->v, NULL, &k, sizeof k, 0, &r, sizeof r), 0);
	assert_int_equal(kcmp(&r, &lo), 0);
	assert_int_equal(cqrs_view_seek(f->v, NULL, &k, sizeof k, CQRS_RANGE_DESC, &r, sizeof r), 0);
	assert_int_equal(kcmp(&r, &lo), 0);
	/* every other one gone: leaves merge between duplicates */
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t id = 0; id < 6000; id += 2)
		del(f, id);
	assert_int_equal(cqrs__vw_end(f->w, 2), 0);
	check_tree(f);
	range(f, &lo, &hi, 0, 0);
	range(f, &lo, &hi, CQRS_RANGE_DESC, 0);
	range(f, NULL, NULL, 0, 0);
	tfx_close(f);
}

/* Distinct keys in order: descending and ascending runs that start
 * anywhere and end inside or at the edge of a leaf, compared row by row. */
static void test_runs_across_leaves(void **state)
{
	tfx *f = &F;

	(void)state;
	tfx_open(f);
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	for (uint64_t id = 0; id < 10000; id++)
		upsert(f, id, 0, (int64_t)(id * 2), id + 1); /* even prices */
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	check_tree(f);
	assert_true(tree_depth(f) >= 2);
	for (int t = 0; t < 300; t++) {
		uint64_t x = trow_mix((uint64_t)t, 5, 5);
		int64_t at = (int64_t)(x % 20002) - 1; /* odd ones fall between rows */
		uint64_t limit = t < 100 ? (uint64_t)t + 1 : (x >> 16) % 500 + 1;
		orow b;

		orow_fill(&b, 0, 0, at, 0, 0);
		range(f, NULL, &b, CQRS_RANGE_DESC, limit);
		range(f, &b, NULL, 0, limit);
		if (W.n) {
			/* the first row at or after b: price at rounded up to even */
			int64_t want = at < 0 ? 0 : (at + 1) / 2 * 2;
			assert_int_equal(W.got[0].price, want);
		}
	}
	tfx_close(f);
}

/* A segment whose tree says another layout version is refused by name
 * (the segment header's own format word changes with it, so an older
 * library refuses the whole segment and an engine rebuilds its views). */
static void test_other_format_refused(void **state)
{
	tfx *f = &F;
	cqrs_ometa *m;
	orow r;
	uint64_t n;

	(void)state;
	tfx_open(f);
	assert_int_equal(cqrs__vw_begin(f->w), 0);
	upsert(f, 1, 0, 5, 1);
	assert_int_equal(cqrs__vw_end(f->w, 1), 0);
	m = (cqrs_ometa *)(void *)cqrs__vw_ordered(f->w)->nodes;
	atomic_store_explicit(&m->format, 1, memory_order_relaxed); /* the test is the writer */
	assert_int_equal(cqrs_view_first(f->v, NULL, &r, sizeof r), CQRS_EFORMAT);
	assert_non_null(strstr(cqrs_last_error(), "format 1"));
	assert_int_equal(cqrs__ow_check(cqrs__vw_ordered(f->w), &n), CQRS_ECORRUPT); /* adopt refuses */
	atomic_store_explicit(&m->format, CQRS_ORD_FORMAT, memory_order_relaxed);
	assert_int_equal(cqrs_view_first(f->v, NULL, &r, sizeof r), 0);
	tfx_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_churn_deep),
		cmocka_unit_test(test_duplicates_across_leaves),
		cmocka_unit_test(test_runs_across_leaves),
		cmocka_unit_test(test_other_format_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
