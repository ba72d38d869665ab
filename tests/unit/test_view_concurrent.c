/*
 * tests/unit/test_view_concurrent.c - one writer thread and reader threads on
 * the same view, in one process so ThreadSanitizer (make tsan) checks every
 * atomic and fence of the protocols. The writer churns rows (upserts,
 * deletes, moves between customers, index rebuilds) while readers check:
 *   - every row a get returns is one whole version (never torn);
 *   - a find of customer STABLE delivers each of its never-modified rows
 *     exactly once, while other rows of that chain come and go;
 *   - a snapshot find of customer PAIR sees its two rows, which the writer
 *     always changes together in one batch, at the same version.
 * The multi-process version with 10M reads is tests/proc/view_torn.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/lib/testutil.h"
#include "shm/view_internal.h"
#include "tests/unit/test_view_rows.h"

#define KEYS 3000
#define CAPACITY 1024
#define CUSTS 40
#define STABLE 9999u
#define NSTABLE 16
#define STABLE_BASE 5000u
#define PAIR 7777u
#define PAIR_A 6000u
#define PAIR_B 6001u
#define READERS 2

static char engine[64];
static _Atomic int writer_done;
static _Atomic uint64_t reader_loops; /* the writer runs until readers did enough */

typedef struct rstats {
	uint64_t gets, found, torn, finds, stable_bad, snaps, snap_bad, scans, errors, restarts;
} rstats;

static void *writer_main(void *arg)
{
	cqrs_vw *w = arg;
	unsigned seed = 7;
	int min_batches = getenv("CQRS_SAN") ? 2000 : 20000;
	uint64_t min_loops = getenv("CQRS_SAN") ? 300 : 5000;
	uint64_t seq = 1, pairver = 1;
	int b;
	trow r;

	/* relaxed: a progress counter, no data hangs on it */
	for (b = 0; b < min_batches ||
			atomic_load_explicit(&reader_loops, memory_order_relaxed) < min_loops; b++) {
		int ops = 1 + rand_r(&seed) % 16;
		if (cqrs_vw_begin(w))
			abort();
		for (int o = 0; o < ops; o++) {
			uint64_t k = (uint64_t)(rand_r(&seed) % KEYS);
			/* a third of the churn lands on STABLE's chain */
			uint64_t c = rand_r(&seed) % 3 == 0 ? STABLE : (uint64_t)(rand_r(&seed) % CUSTS);
			int rc;
			if (rand_r(&seed) % 3 == 0) {
				rc = cqrs_vw_delete(w, &k, 8);
				if (rc && rc != CQRS_ENOTFOUND)
					abort();
			} else {
				trow_fill(&r, k, c, (uint64_t)b);
				rc = cqrs_vw_upsert(w, &r);
				if (rc && rc != CQRS_EFULL)
					abort();
			}
		}
		pairver++;
		trow_fill(&r, PAIR_A, PAIR, pairver);
		if (cqrs_vw_upsert(w, &r))
			abort();
		trow_fill(&r, PAIR_B, PAIR, pairver);
		if (cqrs_vw_upsert(w, &r))
			abort();
		if (cqrs_vw_end(w, ++seq))
			abort();
	}
	/* release: pairs with the readers' acquire loads of writer_done */
	atomic_store_explicit(&writer_done, 1, memory_order_release);
	return NULL;
}

typedef struct fctx {
	rstats *s;
	int seen[NSTABLE];
	uint64_t cust;
	uint64_t pairv[2];
	int npair;
} fctx;

static int find_cb(void *arg, const void *row, size_t size)
{
	fctx *f = arg;
	const trow *r = row;

	if (size != sizeof *r || !trow_ok(r) || r->customer_id != f->cust)
		f->s->torn++;
	if (r->order_id >= STABLE_BASE && r->order_id < STABLE_BASE + NSTABLE)
		f->seen[r->order_id - STABLE_BASE]++;
	if (f->cust == PAIR && f->npair < 2)
		f->pairv[f->npair++] = r->version;
	return 0;
}

static int scan_cb(void *arg, const void *row, size_t size)
{
	rstats *s = arg;
	(void)size;
	if (!trow_ok(row))
		s->torn++;
	return 0;
}

static void *reader_main(void *arg)
{
	rstats *s = arg;
	cqrs_view *v;
	unsigned seed = (unsigned)(uintptr_t)s;
	trow r;

	if (cqrs_view_open(engine, "orders", &v))
		abort();
	/* acquire: pairs with the writer's release store of writer_done */
	while (!atomic_load_explicit(&writer_done, memory_order_acquire)) {
		for (int i = 0; i < 64; i++) {
			uint64_t k = (uint64_t)(rand_r(&seed) % KEYS);
			int rc = cqrs_view_get(v, &k, 8, &r, sizeof r);
			s->gets++;
			if (rc == 0) {
				s->found++;
				if (!trow_ok(&r) || r.order_id != k)
					s->torn++;
			} else if (rc != CQRS_ENOTFOUND) {
				s->errors++;
			}
		}
		{
			fctx f;
			uint64_t c = STABLE;
			memset(&f, 0, sizeof f);
			f.s = s;
			f.cust = STABLE;
			if (cqrs_view_find(v, "customer_id", &c, 8, find_cb, &f, 0) < 0)
				s->errors++;
			for (int i = 0; i < NSTABLE; i++)
				if (f.seen[i] != 1)
					s->stable_bad++;
			s->finds++;
		}
		{
			fctx f;
			uint64_t c = PAIR;
			int n;
			memset(&f, 0, sizeof f);
			f.s = s;
			f.cust = PAIR;
			n = cqrs_view_find(v, "customer_id", &c, 8, find_cb, &f, CQRS_FIND_SNAPSHOT);
			if (n == -EAGAIN)
				continue; /* starved: allowed, counted nowhere */
			if (n != 2 || f.pairv[0] != f.pairv[1])
				s->snap_bad++;
			s->snaps++;
		}
		if (rand_r(&seed) % 64 == 0) {
			if (cqrs_view_scan(v, scan_cb, s, 0) < 0)
				s->errors++;
			s->scans++;
		}
		atomic_fetch_add_explicit(&reader_loops, 1, memory_order_relaxed); /* progress only */
	}
	s->restarts = cqrs__view_chain_restarts(v);
	cqrs_view_close(v);
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	cqrs_ctl *ctl;
	cqrs_vw *w;
	pthread_t wt, rt[READERS];
	rstats st[READERS];
	trow r;
	(void)state;

	tu_unique_name(engine, sizeof engine, "tconc");
	assert_int_equal(tview_setup(engine, CAPACITY, &ctl, &w), 0);
	assert_int_equal(cqrs_vw_begin(w), 0);
	for (uint64_t i = 0; i < NSTABLE; i++) {
		trow_fill(&r, STABLE_BASE + i, STABLE, 1);
		assert_int_equal(cqrs_vw_upsert(w, &r), 0);
	}
	trow_fill(&r, PAIR_A, PAIR, 1);
	assert_int_equal(cqrs_vw_upsert(w, &r), 0);
	trow_fill(&r, PAIR_B, PAIR, 1);
	assert_int_equal(cqrs_vw_upsert(w, &r), 0);
	assert_int_equal(cqrs_vw_end(w, 1), 0);
	memset(st, 0, sizeof st);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &st[i]), 0);
	assert_int_equal(pthread_create(&wt, NULL, writer_main, w), 0);
	pthread_join(wt, NULL);
	for (int i = 0; i < READERS; i++) {
		pthread_join(rt[i], NULL);
		print_message("reader %d: %llu gets (%llu found), %llu finds, %llu snapshots, %llu scans; "
			      "torn %llu, stable misses %llu, snapshot mismatches %llu, errors %llu, "
			      "chain restarts %llu\n",
			      i, (unsigned long long)st[i].gets, (unsigned long long)st[i].found,
			      (unsigned long long)st[i].finds, (unsigned long long)st[i].snaps,
			      (unsigned long long)st[i].scans, (unsigned long long)st[i].torn,
			      (unsigned long long)st[i].stable_bad, (unsigned long long)st[i].snap_bad,
			      (unsigned long long)st[i].errors, (unsigned long long)st[i].restarts);
		assert_int_equal(st[i].torn, 0);
		assert_int_equal(st[i].stable_bad, 0);
		assert_int_equal(st[i].snap_bad, 0);
		assert_int_equal(st[i].errors, 0);
	}
	print_message("index rebuilds: %llu\n", (unsigned long long)cqrs_vw_rebuilds(w));
	tview_teardown(ctl, w);
	assert_int_equal(tview_shm_count(engine), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_readers),
	};
	return cmocka_run_group_tests(tests, NULL, tview_group_cleanup);
}
