/*
 * tests/unit/test_ordered.c - a view's ordered index (shm/ordered_format.h)
 * through the writer API and the public reader API: the order-preserving
 * key encoding of every type, first/last/seek/range/count on a small
 * composite (sym, price) index with duplicates, randomized inserts,
 * deletes and key-moving updates checked against a sorted reference
 * model after every batch (full walks both ways, random ranges with
 * prefixes, limits, counts, snapshots), the writer's own list check, an
 * adopted clean segment, an f64 index, bad arguments, and a whole engine
 * whose view declares the index (cqrs_view_def.ordered_fields) through
 * growth by rebuild, a clean restart and an explicit rebuild.
 */
#include <math.h>
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
#include "tests/lib/bank.h"
#include "tests/lib/testutil.h"
#include "tests/unit/test_ordered_rows.h"

typedef struct ofx {
	char engine[64];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	cqrs_view *v;
} ofx;

static void ofx_open(ofx *f, uint64_t cap, const char *f1, const char *f2)
{
	memset(f, 0, sizeof *f);
	tu_unique_name(f->engine, sizeof f->engine, "tord");
	assert_int_equal(oview_setup(f->engine, cap, f1, f2, &f->ctl, &f->w), 0);
	assert_int_equal(cqrs_view_open(f->engine, "book", &f->v), 0);
}

static void ofx_close(ofx *f)
{
	cqrs_view_close(f->v);
	tview_teardown(f->ctl, f->w);
	assert_int_equal(tview_shm_count(f->engine), 0);
}

/* ---- encoding -------------------------------------------------------------- */

static int sgn(int c)
{
	return c < 0 ? -1 : c > 0;
}

static void test_encoding_orders(void **state)
{
	(void)state;
	for (int i = 0; i < 20000; i++) {
		uint64_t a = trow_mix((uint64_t)i, 1, 2), b = trow_mix((uint64_t)i, 3, 4);
		uint8_t ea[8], eb[8];

		if (i % 3 == 0)
			b = a + (uint64_t)(i % 5) - 2;
		cqrs__ord_encode_field(CQRS_FT_U64, 8, (uint8_t *)&a, ea);
		cqrs__ord_encode_field(CQRS_FT_U64, 8, (uint8_t *)&b, eb);
		assert_int_equal(sgn(memcmp(ea, eb, 8)), a < b ? -1 : a > b);
		{
			int64_t x = (int64_t)a, y = (int64_t)b;
			cqrs__ord_encode_field(CQRS_FT_I64, 8, (uint8_t *)&x, ea);
			cqrs__ord_encode_field(CQRS_FT_I64, 8, (uint8_t *)&y, eb);
			assert_int_equal(sgn(memcmp(ea, eb, 8)), x < y ? -1 : x > y);
		}
		{
			int32_t x = (int32_t)a, y = (int32_t)b;
			cqrs__ord_encode_field(CQRS_FT_I32, 4, (uint8_t *)&x, ea);
			cqrs__ord_encode_field(CQRS_FT_I32, 4, (uint8_t *)&y, eb);
			assert_int_equal(sgn(memcmp(ea, eb, 4)), x < y ? -1 : x > y);
		}
		{
			double x = ((double)(int64_t)a) / 1e9, y = i % 7 ? ((double)(int64_t)b) / 1e12 : -x;
			cqrs__ord_encode_field(CQRS_FT_F64, 8, (uint8_t *)&x, ea);
			cqrs__ord_encode_field(CQRS_FT_F64, 8, (uint8_t *)&y, eb);
			assert_int_equal(sgn(memcmp(ea, eb, 8)), x < y ? -1 : x > y);
		}
	}
	{
		double inf = INFINITY, ninf = -INFINITY, z = 0.0, nz = -0.0;
		uint8_t a[8], b[8], c[8], d[8];
		cqrs__ord_encode_field(CQRS_FT_F64, 8, (uint8_t *)&ninf, a);
		cqrs__ord_encode_field(CQRS_FT_F64, 8, (uint8_t *)&nz, b);
		cqrs__ord_encode_field(CQRS_FT_F64, 8, (uint8_t *)&z, c);
		cqrs__ord_encode_field(CQRS_FT_F64, 8, (uint8_t *)&inf, d);
		assert_true(memcmp(a, b, 8) < 0 && memcmp(b, c, 8) < 0 && memcmp(c, d, 8) < 0);
	}
}

/* ---- a reference model ---------------------------------------------------- */

#define MAXR 512
typedef struct model {
	int live[MAXR];
	orow rows[MAXR];
} model;

typedef struct got {
	uint64_t ids[MAXR * 2];
	int n, bad;
	orow last;
} got;

static int got_fn(void *arg, const void *row, size_t size)
{
	got *g = arg;
	const orow *r = row;

	if (size != sizeof(orow) || !orow_ok(r))
		g->bad++;
	if (g->n < MAXR * 2)
		g->ids[g->n] = r->id;
	g->n++;
	g->last = *r;
	return 0;
}

/* (sym, price) order of two rows */
static int key_cmp(const orow *a, const orow *b)
{
	int c = memcmp(a->sym, b->sym, sizeof a->sym);

	if (c)
		return c;
	return a->price < b->price ? -1 : a->price > b->price;
}

static const model *sort_m;
static int id_cmp(const void *x, const void *y)
{
	const orow *a = &sort_m->rows[*(const uint64_t *)x], *b = &sort_m->rows[*(const uint64_t *)y];
	int c = key_cmp(a, b);

	return c ? c : (a->id > b->id) - (a->id < b->id);
}

/* The model's ids with lo <= (sym, price) < hi (NULL: open), sorted by
 * (key, id); returns the count. */
static int model_range(const model *m, const orow *lo, const orow *hi, uint64_t *out)
{
	int n = 0;

	for (uint64_t i = 0; i < MAXR; i++)
		if (m->live[i] && (!lo || key_cmp(&m->rows[i], lo) >= 0) &&
		    (!hi || key_cmp(&m->rows[i], hi) < 0))
			out[n++] = i;
	sort_m = m;
	qsort(out, (size_t)n, sizeof *out, id_cmp);
	return n;
}

/* The reader's ids, checked to be in key order, sorted by id within equal
 * keys (the index orders duplicates by slot), so they compare with the
 * model's. */
static void normalize(const model *m, got *g, int desc)
{
	for (int i = 1; i < g->n; i++) {
		int c = key_cmp(&m->rows[g->ids[i - 1]], &m->rows[g->ids[i]]);
		assert_true(desc ? c >= 0 : c <= 0);
	}
	sort_m = m;
	qsort(g->ids, (size_t)g->n, sizeof g->ids[0], id_cmp);
}


static void check_all(ofx *f, const model *m, uint64_t seed)
{
	uint64_t want[MAXR], cnt;
	got g;
	int n = model_range(m, NULL, NULL, want), k;

	memset(&g, 0, sizeof g);
	assert_int_equal(cqrs_view_range(f->v, NULL, NULL, 0, NULL, 0, 0, 0, got_fn, &g), n);
	assert_int_equal(g.bad, 0);
	normalize(m, &g, 0);
	assert_memory_equal(g.ids, want, sizeof want[0] * (size_t)n);
	memset(&g, 0, sizeof g);
	assert_int_equal(cqrs_view_range(f->v, "sym,price", NULL, 0, NULL, 0, CQRS_RANGE_DESC, 0, got_fn, &g),
			 n);
	normalize(m, &g, 1);
	assert_memory_equal(g.ids, want, sizeof want[0] * (size_t)n);
	{
		uint64_t c;
		assert_int_equal(cqrs_view_range_count(f->v, "sym", NULL, 0, NULL, 0, 0, &c), 0);
		assert_int_equal(c, (uint64_t)n);
	}
	/* random ranges */
	for (int t = 0; t < 8; t++) {
		uint64_t x = trow_mix(seed, (uint64_t)t, 99);
		orow lo, hi;
		karg kl, kh;
		size_t ll = x & 1 ? 16 : 8, hl = x & 2 ? 16 : 8;
		int desc = !!(x & 4), snap = !!(x & 8);
		uint64_t lim = x & 16 ? (x >> 8) % 5 + 1 : 0;

		orow_fill(&lo, 0, (int)((x >> 12) % 4), (int64_t)((x >> 16) % 40) - 20, 0, 0);
		orow_fill(&hi, 0, (int)((x >> 20) % 4), (int64_t)((x >> 24) % 40) - 20, 0, 0);
		if (ll == 8)
			lo.price = INT64_MIN;
		if (hl == 8)
			hi.price = INT64_MIN;
		memcpy(kl.sym, lo.sym, 8);
		kl.price = lo.price;
		memcpy(kh.sym, hi.sym, 8);
		kh.price = hi.price;
		n = model_range(m, &lo, &hi, want);
		memset(&g, 0, sizeof g);
		k = cqrs_view_range(f->v, NULL, &kl, ll, &kh, hl,
				    (desc ? CQRS_RANGE_DESC : 0) | (snap ? CQRS_RANGE_SNAPSHOT : 0), lim, got_fn, &g);
		assert_int_equal(k, lim && (uint64_t)n > lim ? (int)lim : n);
		assert_int_equal(g.bad, 0);
		if (!lim || (uint64_t)n <= lim) {
			normalize(m, &g, desc);
			assert_memory_equal(g.ids, want, sizeof want[0] * (size_t)n);
		} else {
			/* the first lim in key order (or the last, descending) */
			uint64_t kth = desc ? want[n - (int)lim] : want[lim - 1];
			assert_int_equal(key_cmp(&g.last, &m->rows[kth]), 0);
		}
		assert_int_equal(cqrs_view_range_count(f->v, NULL, &kl, ll, &kh, hl, CQRS_RANGE_SNAPSHOT, &cnt), 0);
		assert_int_equal(cnt, (uint64_t)n);
		/* seek: first >= lo, last <= lo */
		{
			orow r;
			uint64_t all[MAXR];
			int na = model_range(m, &lo, NULL, all);
			int rc = cqrs_view_seek(f->v, NULL, &kl, ll, 0, &r, sizeof r);
			if (na == 0) {
				assert_int_equal(rc, CQRS_ENOTFOUND);
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(key_cmp(&r, &m->rows[all[0]]), 0);
			}
		}
	}
	{
		orow r;
		n = model_range(m, NULL, NULL, want);
		if (n == 0) {
			assert_int_equal(cqrs_view_first(f->v, NULL, &r, sizeof r), CQRS_ENOTFOUND);
			assert_int_equal(cqrs_view_last(f->v, NULL, &r, sizeof r), CQRS_ENOTFOUND);
		} else {
			assert_int_equal(cqrs_view_first(f->v, NULL, &r, sizeof r), 0);
			assert_int_equal(key_cmp(&r, &m->rows[want[0]]), 0);
			assert_int_equal(cqrs_view_last(f->v, NULL, &r, sizeof r), 0);
			assert_int_equal(key_cmp(&r, &m->rows[want[n - 1]]), 0);
		}
	}
}

static void test_random_against_model(void **state)
{
	static model m;
	ofx f;
	uint64_t ver = 1, seq = 0;

	(void)state;
	memset(&m, 0, sizeof m);
	ofx_open(&f, MAXR, "sym", "price");
	for (int batch = 0; batch < 300; batch++) {
		assert_int_equal(cqrs__vw_begin(f.w), 0);
		for (int op = 0; op < 25; op++) {
			uint64_t x = trow_mix((uint64_t)batch, (uint64_t)op, 5);
			uint64_t id = x % (batch < 100 ? MAXR / 2 : MAXR);
			int kind = (int)((x >> 20) % 10);

			if (kind < 6) { /* insert or move the key (few keys: duplicates) */
				orow r;
				orow_fill(&r, id, (int)((x >> 30) % 4), (int64_t)((x >> 34) % 40) - 20,
					  (double)(x >> 40), ver++);
				assert_int_equal(cqrs__vw_upsert(f.w, &r), 0);
				m.rows[id] = r;
				m.live[id] = 1;
			} else if (kind < 9) {
				int rc = cqrs__vw_delete(f.w, &id, sizeof id);
				assert_int_equal(rc, m.live[id] ? 0 : CQRS_ENOTFOUND);
				m.live[id] = 0;
			} else if (m.live[id]) { /* same key, new payload */
				orow r = m.rows[id];
				r.ver = ver++;
				r.check = orow_sum(&r);
				assert_int_equal(cqrs__vw_upsert(f.w, &r), 0);
				m.rows[id] = r;
			}
		}
		assert_int_equal(cqrs__vw_end(f.w, ++seq), 0);
		check_all(&f, &m, (uint64_t)batch);
	}
	ofx_close(&f);
}

static void test_basic_and_args(void **state)
{
	ofx f;
	orow r, out;
	got g;
	karg k;
	const char *names[4];

	(void)state;
	ofx_open(&f, 64, "sym", "price");
	assert_int_equal(cqrs_view_ordered(f.v, names, 4), 2);
	assert_string_equal(names[0], "sym");
	assert_string_equal(names[1], "price");
	assert_int_equal(cqrs_view_first(f.v, NULL, &out, sizeof out), CQRS_ENOTFOUND);
	assert_int_equal(cqrs__vw_begin(f.w), 0);
	for (int i = 0; i < 10; i++) {
		orow_fill(&r, (uint64_t)i, i % 2, 100 - i * 10, 1.0, 1);
		assert_int_equal(cqrs__vw_upsert(f.w, &r), 0);
	}
	assert_int_equal(cqrs__vw_end(f.w, 1), 0);
	/* S0: prices 100 80 60 40 20; S1: 90 70 50 30 10 */
	assert_int_equal(cqrs_view_first(f.v, "sym", &out, sizeof out), 0);
	assert_string_equal(out.sym, "S0");
	assert_int_equal(out.price, 20);
	assert_int_equal(cqrs_view_last(f.v, NULL, &out, sizeof out), 0);
	assert_int_equal(out.price, 90);
	/* top 2 of S1 descending: hi = (S1 + 1) as a prefix is "S1\0..\1"; use S2 */
	memset(&k, 0, sizeof k);
	memcpy(k.sym, "S1", 2);
	{
		karg h;
		memset(&h, 0, sizeof h);
		memcpy(h.sym, "S2", 2);
		memset(&g, 0, sizeof g);
		assert_int_equal(cqrs_view_range(f.v, NULL, &k, 8, &h, 8, CQRS_RANGE_DESC, 2, got_fn, &g), 2);
		assert_int_equal(g.last.price, 70);
		/* str prefix shorter than the field */
		memset(&g, 0, sizeof g);
		assert_int_equal(cqrs_view_range(f.v, NULL, "S1", 2, "S2", 2, 0, 0, got_fn, &g), 5);
	}
	k.price = 50;
	assert_int_equal(cqrs_view_seek(f.v, NULL, &k, 16, 0, &out, sizeof out), 0);
	assert_int_equal(out.price, 50);
	k.price = 55;
	assert_int_equal(cqrs_view_seek(f.v, NULL, &k, 16, 0, &out, sizeof out), 0);
	assert_int_equal(out.price, 70);
	assert_int_equal(cqrs_view_seek(f.v, NULL, &k, 16, CQRS_RANGE_DESC, &out, sizeof out), 0);
	assert_int_equal(out.price, 50);
	k.price = 50;
	assert_int_equal(cqrs_view_seek(f.v, NULL, &k, 16, CQRS_RANGE_DESC, &out, sizeof out), 0);
	assert_int_equal(out.price, 50);
	/* arguments */
	assert_int_equal(cqrs_view_range(f.v, "price", NULL, 0, NULL, 0, 0, 0, got_fn, &g), CQRS_ENOTFOUND);
	assert_int_equal(cqrs_view_range(f.v, "sym,pr", NULL, 0, NULL, 0, 0, 0, got_fn, &g), CQRS_ENOTFOUND);
	assert_int_equal(cqrs_view_range(f.v, NULL, &k, 12, NULL, 0, 0, 0, got_fn, &g), -EINVAL);
	assert_int_equal(cqrs_view_range(f.v, NULL, &k, 17, NULL, 0, 0, 0, got_fn, &g), -EINVAL);
	assert_int_equal(cqrs_view_range(f.v, NULL, NULL, 0, NULL, 0, 0x100, 0, got_fn, &g), -EINVAL);
	assert_int_equal(cqrs_view_range(f.v, NULL, NULL, 0, NULL, 0, 0, 0, NULL, NULL), -EINVAL);
	assert_int_equal(cqrs_view_first(f.v, NULL, &out, 8), -ENOSPC);
	ofx_close(&f);
}

static void test_f64_index_and_adopt(void **state)
{
	cqrs_vw_config cfg = { 0 };
	ofx f;
	orow r;
	got g;
	double lo = -1.5, hi = 2.5;

	(void)state;
	ofx_open(&f, 128, "qty", NULL);
	assert_int_equal(cqrs__vw_begin(f.w), 0);
	for (int i = 0; i < 100; i++) {
		orow_fill(&r, (uint64_t)i, 0, 0, (i - 50) / 10.0, 1);
		assert_int_equal(cqrs__vw_upsert(f.w, &r), 0);
	}
	assert_int_equal(cqrs__vw_end(f.w, 1), 0);
	memset(&g, 0, sizeof g);
	assert_int_equal(cqrs_view_range(f.v, "qty", &lo, 8, &hi, 8, 0, 0, got_fn, &g), 40);
	assert_true(g.last.qty > 2.3 && g.last.qty < 2.5);
	/* adopt the clean segment: the list is checked, then it keeps working */
	assert_int_equal(cqrs__vw_mark_clean(f.w), 0);
	cqrs__vw_close(f.w);
	cfg.schema = orow_schema();
	cfg.key_field = "id";
	cfg.capacity = 128;
	cfg.ordered[0] = "qty";
	assert_int_equal(cqrs__vw_adopt(f.ctl, "book", 1, &cfg, &f.w), 0);
	assert_int_equal(cqrs__vw_begin(f.w), 0);
	for (int i = 0; i < 100; i += 2) {
		uint64_t id = (uint64_t)i;
		assert_int_equal(cqrs__vw_delete(f.w, &id, sizeof id), 0);
	}
	assert_int_equal(cqrs__vw_end(f.w, 2), 0);
	memset(&g, 0, sizeof g);
	assert_int_equal(cqrs_view_range(f.v, "qty", &lo, 8, &hi, 8, 0, 0, got_fn, &g), 20);
	/* another index: not adopted */
	assert_int_equal(cqrs__vw_mark_clean(f.w), 0);
	cqrs__vw_close(f.w);
	cfg.ordered[0] = "price";
	assert_int_equal(cqrs__vw_adopt(f.ctl, "book", 1, &cfg, &f.w), CQRS_EFORMAT);
	cfg.ordered[0] = "qty";
	assert_int_equal(cqrs__vw_adopt(f.ctl, "book", 1, &cfg, &f.w), 0);
	ofx_close(&f);
}

static void test_bad_config(void **state)
{
	cqrs_vw_config cfg = { 0 };
	cqrs_ctl *ctl;
	cqrs_vw *w = NULL;
	char engine[64];

	(void)state;
	tu_unique_name(engine, sizeof engine, "tordc");
	assert_int_equal(cqrs__ctl_create(engine, NULL, &ctl), 0);
	cfg.schema = orow_schema();
	cfg.key_field = "id";
	cfg.capacity = 16;
	cfg.ordered[0] = "nope";
	assert_int_equal(cqrs__vw_create(ctl, "v", &cfg, &w), CQRS_ENOTFOUND);
	cfg.ordered[0] = "id";
	cfg.ordered[1] = "sym";
	cfg.ordered[2] = "price";
	cfg.ordered[3] = "qty";
	cfg.ordered[4] = "ver";
	assert_int_equal(cqrs__vw_create(ctl, "v", &cfg, &w), -EINVAL);
	cqrs__ctl_destroy(ctl);
	assert_int_equal(tview_shm_count(engine), 0);
}

typedef struct bcoll {
	bank_row rows[256];
	uint64_t n;
} bcoll;

static int bank_collect(void *arg, const void *row, size_t size)
{
	bcoll *c = arg;

	if (c->n < 256 && size == sizeof(bank_row))
		memcpy(&c->rows[c->n], row, size);
	c->n++;
	return 0;
}

/* Every balance in descending order: accounts 1..n with 7 * a % 1000. */
static void check_bank(cqrs_view *v, uint64_t n)
{
	static bcoll c;
	int64_t prev = INT64_MAX;
	int64_t lo = 500;
	uint64_t cnt, want = 0;
	int k;

	memset(&c, 0, sizeof c);
	k = cqrs_view_range(v, "balance", NULL, 0, NULL, 0, CQRS_RANGE_DESC | CQRS_RANGE_SNAPSHOT, 0,
			    bank_collect, &c);
	assert_int_equal(k, (int)n);
	for (int i = 0; i < k; i++) {
		assert_true(c.rows[i].balance <= prev);
		assert_int_equal(c.rows[i].balance, (int64_t)(c.rows[i].account * 7 % 1000));
		prev = c.rows[i].balance;
	}
	for (uint64_t a = 1; a <= n; a++)
		want += (int64_t)(a * 7 % 1000) >= lo;
	assert_int_equal(cqrs_view_range_count(v, NULL, &lo, 8, NULL, 0, 0, &cnt), 0);
	assert_int_equal(cnt, want);
}

static void test_engine_view(void **state)
{
	static const char *const fields[] = { "balance", NULL };
	char name[64], dir[256];
	bank_model m;
	cqrs_engine *e;
	cqrs_view *v;
	uint64_t seq = 0, gen;
	const char *names[2];

	(void)state;
	tu_unique_name(name, sizeof name, "tordeng");
	assert_int_equal(tu_mkdtemp(dir, sizeof dir, "cqrs-ordered"), 0);
	bank_ordered_fields = fields;
	assert_int_equal(bank_start(name, dir, CQRS_DURABILITY_NONE, 16, CQRS_ON_ERROR_SKIP, &m, &e), 0);
	for (uint64_t a = 1; a <= 200; a++)
		assert_int_equal(bank_do(e, BANK_DEPOSIT, a, (int64_t)(a * 7 % 1000) + 1000, 0, 0, &seq), 0);
	for (uint64_t a = 1; a <= 200; a++)
		assert_int_equal(bank_do(e, BANK_WITHDRAW, a, 1000, 0, 0, &seq), 0);
	assert_int_equal(cqrs_view_open(name, "balances", &v), 0);
	assert_int_equal(cqrs_view_wait(v, seq, 10000000000ull), 0);
	assert_true(cqrs_view_capacity(v) >= 200); /* grown by rebuild: the index came along */
	assert_int_equal(cqrs_view_ordered(v, names, 2), 1);
	assert_string_equal(names[0], "balance");
	check_bank(v, 200);
	gen = cqrs_view_generation(v);
	/* a clean restart adopts the segment (its list checked) */
	bank_stop(e, &m);
	assert_int_equal(bank_start(name, dir, CQRS_DURABILITY_NONE, 16, CQRS_ON_ERROR_SKIP, &m, &e), 0);
	assert_int_equal(cqrs_view_wait(v, seq, 10000000000ull), 0);
	check_bank(v, 200);
	assert_int_equal(cqrs_view_generation(v), gen);
	/* an explicit rebuild: a new generation, the index rebuilt with it */
	assert_int_equal(cqrs_engine_rebuild(e, "balances"), 0);
	for (int i = 0; i < 1000 && cqrs_view_generation(v) == gen; i++) {
		usleep(10000);
		(void)cqrs_view_rows(v);
	}
	assert_true(cqrs_view_generation(v) > gen);
	assert_int_equal(cqrs_view_wait(v, seq, 10000000000ull), 0);
	check_bank(v, 200);
	cqrs_view_close(v);
	bank_stop(e, &m);
	bank_ordered_fields = NULL;
	cqrs_engine_remove_segments(name);
	tu_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encoding_orders),
		cmocka_unit_test(test_basic_and_args),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_f64_index_and_adopt),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_engine_view),
	};

	return cmocka_run_group_tests(tests, NULL, tview_group_cleanup);
}
