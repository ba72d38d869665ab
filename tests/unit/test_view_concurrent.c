/*
 * tests/unit/test_view_concurrent.c - one writer thread and reader threads on
 * the same view, in one process so ThreadSanitizer (make tsan) checks every
 * atomic and fence of the protocols. The writer churns rows (upserts,
 * deletes, moves between customers, index rebuilds) while readers check:
 *   - every row a get returns is one whole version (never torn);
 *   - a find of customer STABLE delivers each of its never-modified rows
 *     exactly once, while other rows of that chain come and go; so does
 *     the same find in pieces (cqrs_view_find_from, one row per call, the
 *     reader yielding between calls);
 *   - a snapshot find of customer PAIR sees its two rows, which the writer
 *     always changes together in one batch, at the same version.
 * Readers yield now and then between a chain head load and the copy of the
 * row it names (the reader's head hook), the window where that row may be
 * moved or its slot reused into another chain (view_format.h: the head
 * check). CQRS_VIEW_STRESS=N runs N times as many batches and reader loops.
 * test_head_* replay such interleavings deterministically: the hook runs
 * the writer (same thread) inside the window.
 * The multi-process version with 10M reads is tests/proc/view_torn.c.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
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
#define YIELD_EVERY 4 /* head loads per yield inside the window */
#define REPORT_MAX 4  /* failed stable finds printed per reader */

static char engine[64];
static _Atomic int writer_done;
static _Atomic uint64_t reader_loops; /* the writer runs until readers did enough */

typedef struct rstats {
	uint64_t gets, found, torn, finds, stable_bad, snaps, snap_bad, scans, errors, restarts;
	uint64_t heads, reported;
	int id;
} rstats;

/* CQRS_VIEW_STRESS=N: N times the batches and reader loops (default 1). */
static uint64_t stress(void)
{
	const char *e = getenv("CQRS_VIEW_STRESS");
	long n = e ? strtol(e, NULL, 10) : 1;

	return n > 0 ? (uint64_t)n : 1;
}

/* Reader head hook: widens the window after a head load now and then. */
static void yield_hook(void *arg)
{
	rstats *s = arg;

	if (++s->heads % YIELD_EVERY == 0)
		sched_yield();
}

static void *writer_main(void *arg)
{
	cqrs_vw *w = arg;
	unsigned seed = 7;
	uint64_t min_batches = (getenv("CQRS_SAN") ? 2000 : 20000) * stress();
	uint64_t min_loops = (getenv("CQRS_SAN") ? 300 : 5000) * stress();
	uint64_t seq = 1, pairver = 1;
	uint64_t b;
	trow r;

	/* relaxed: a progress counter, no data hangs on it */
	for (b = 0; b < min_batches ||
			atomic_load_explicit(&reader_loops, memory_order_relaxed) < min_loops; b++) {
		int ops = 1 + rand_r(&seed) % 16;
		if (cqrs__vw_begin(w))
			abort();
		for (int o = 0; o < ops; o++) {
			uint64_t k = (uint64_t)(rand_r(&seed) % KEYS);
			/* a third of the churn lands on STABLE's chain */
			uint64_t c = rand_r(&seed) % 3 == 0 ? STABLE : (uint64_t)(rand_r(&seed) % CUSTS);
			int rc;
			if (rand_r(&seed) % 3 == 0) {
				rc = cqrs__vw_delete(w, &k, 8);
				if (rc && rc != CQRS_ENOTFOUND)
					abort();
			} else {
				trow_fill(&r, k, c, (uint64_t)b);
				rc = cqrs__vw_upsert(w, &r);
				if (rc && rc != CQRS_EFULL)
					abort();
			}
		}
		pairver++;
		trow_fill(&r, PAIR_A, PAIR, pairver);
		if (cqrs__vw_upsert(w, &r))
			abort();
		trow_fill(&r, PAIR_B, PAIR, pairver);
		if (cqrs__vw_upsert(w, &r))
			abort();
		if (cqrs__vw_end(w, ++seq))
			abort();
	}
	print_message("writer: %llu batches\n", (unsigned long long)b);
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
	cqrs_vw *w;     /* test_head_*: the writer the hooks run */
	int heads;      /* test_head_*: head loads so far */
	int move_at;    /* test_head_*: the head load whose window moves the head row */
	int reuse_slot; /* test_head_*: ... by delete + insert (slot reuse), not a move */
	int mid_reuse;  /* test_head_*: the callback reuses a chain slot */
	uint64_t seq;   /* test_head_*: the writer's last applied_seq */
	uint64_t delivered[NSTABLE + 8];
	int ndelivered;
} fctx;

/* Prints one failed stable find: each stable row delivered 0 or 2+ times,
 * and the delivery order. */
static void report_stable(const fctx *f, int rc, uint64_t restarts)
{
	char line[512];
	size_t o = 0;

	for (int i = 0; i < NSTABLE && o < sizeof line - 32; i++)
		if (f->seen[i] != 1)
			o += (size_t)snprintf(line + o, sizeof line - o, " %u:%d",
					      (unsigned)(STABLE_BASE + i), f->seen[i]);
	line[o] = 0;
	print_message("reader %d: find(STABLE) returned %d, chain restarts in the call %llu; "
		      "stable rows delivered 0 or 2+ times (order_id:count):%s\n",
		      f->s->id, rc, (unsigned long long)restarts, line);
	o = 0;
	for (int i = 0; i < f->ndelivered && o < sizeof line - 32; i++)
		o += (size_t)snprintf(line + o, sizeof line - o, " %llu",
				      (unsigned long long)f->delivered[i]);
	line[o] = 0;
	print_message("reader %d: delivery order (order_id):%s%s\n", f->s->id, line,
		      f->ndelivered == (int)(sizeof f->delivered / sizeof f->delivered[0]) ? " ..." : "");
}

static int find_cb(void *arg, const void *row, size_t size)
{
	fctx *f = arg;
	const trow *r = row;

	if (size != sizeof *r || !trow_ok(r) || r->customer_id != f->cust)
		f->s->torn++;
	if (r->order_id >= STABLE_BASE && r->order_id < STABLE_BASE + NSTABLE)
		f->seen[r->order_id - STABLE_BASE]++;
	if (f->ndelivered < (int)(sizeof f->delivered / sizeof f->delivered[0]))
		f->delivered[f->ndelivered++] = r->order_id;
	if (f->cust == PAIR && f->npair < 2)
		f->pairv[f->npair++] = r->version;
	return 0;
}

static int find_one_cb(void *arg, const void *row, size_t size)
{
	find_cb(arg, row, size);
	return 1;
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
	cqrs__view_set_head_hook(v, yield_hook, s);
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
			uint64_t c = STABLE, bad = 0, r0 = cqrs__view_chain_restarts(v);
			int n;
			memset(&f, 0, sizeof f);
			f.s = s;
			f.cust = STABLE;
			n = cqrs_view_find(v, "customer_id", &c, 8, find_cb, &f, 0);
			if (n < 0)
				s->errors++;
			for (int i = 0; i < NSTABLE; i++)
				bad += f.seen[i] != 1;
			if (bad && s->reported++ < REPORT_MAX)
				report_stable(&f, n, cqrs__view_chain_restarts(v) - r0);
			s->stable_bad += bad;
			s->finds++;
		}
		{
			fctx f;
			cqrs_view_cursor cur;
			uint64_t c = STABLE, bad = 0, r0 = cqrs__view_chain_restarts(v);
			int n;
			memset(&f, 0, sizeof f);
			f.s = s;
			f.cust = STABLE;
			cqrs_view_cursor_init(&cur);
			while ((n = cqrs_view_find_from(v, "customer_id", &c, 8, &cur, find_one_cb, &f)) > 0)
				if (rand_r(&seed) % 4 == 0)
					sched_yield();
			if (n == 0) {
				for (int i = 0; i < NSTABLE; i++)
					bad += f.seen[i] != 1;
				if (bad && s->reported++ < REPORT_MAX)
					report_stable(&f, n, cqrs__view_chain_restarts(v) - r0);
				s->stable_bad += bad;
				s->finds++;
			} else if (n != -EAGAIN) { /* -EAGAIN: restarts used up, allowed */
				s->errors++;
			}
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
	assert_int_equal(cqrs__vw_begin(w), 0);
	for (uint64_t i = 0; i < NSTABLE; i++) {
		trow_fill(&r, STABLE_BASE + i, STABLE, 1);
		assert_int_equal(cqrs__vw_upsert(w, &r), 0);
	}
	trow_fill(&r, PAIR_A, PAIR, 1);
	assert_int_equal(cqrs__vw_upsert(w, &r), 0);
	trow_fill(&r, PAIR_B, PAIR, 1);
	assert_int_equal(cqrs__vw_upsert(w, &r), 0);
	assert_int_equal(cqrs__vw_end(w, 1), 0);
	memset(st, 0, sizeof st);
	for (int i = 0; i < READERS; i++) {
		st[i].id = i;
		assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &st[i]), 0);
	}
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
	print_message("index rebuilds: %llu\n", (unsigned long long)cqrs__vw_rebuilds(w));
	tview_teardown(ctl, w);
	assert_int_equal(tview_shm_count(engine), 0);
}

/* ---- the head window, deterministically ---------------------------------------- */

#define HEAD_ROW 100u    /* a row of customer STABLE pushed after the stable rows */
#define OTHER 1u         /* a customer whose chain has rows of its own */
#define OTHER_ROWS 3u
#define REUSE_ROW 200u   /* the key a slot reuse inserts */

static void writer_put(cqrs_vw *w, uint64_t id, uint64_t cust)
{
	trow r;

	trow_fill(&r, id, cust, 2);
	if (cqrs__vw_upsert(w, &r))
		abort();
}

/* Takes the row the STABLE head names out of the chain into OTHER's: by a
 * move (the customer changes) or by delete + insert into the freed slot. */
static void head_hook(void *arg)
{
	fctx *f = arg;
	uint64_t k = HEAD_ROW;

	if (++f->heads != f->move_at)
		return;
	if (cqrs__vw_begin(f->w))
		abort();
	if (f->reuse_slot) {
		if (cqrs__vw_delete(f->w, &k, 8))
			abort();
		writer_put(f->w, REUSE_ROW, OTHER); /* the free list hands out HEAD_ROW's slot */
	} else {
		writer_put(f->w, HEAD_ROW, OTHER);
	}
	if (cqrs__vw_end(f->w, ++f->seq))
		abort();
}

/* Delivers like find_cb; on the top stable row, reuses the slot of the
 * stable row after it for a row of OTHER: the walk meets a larger stamp. */
static int restart_cb(void *arg, const void *row, size_t size)
{
	fctx *f = arg;
	const trow *r = row;
	uint64_t k = STABLE_BASE + NSTABLE - 2;

	if (f->mid_reuse && r->order_id == STABLE_BASE + NSTABLE - 1) {
		f->mid_reuse = 0;
		if (cqrs__vw_begin(f->w) || cqrs__vw_delete(f->w, &k, 8))
			abort();
		writer_put(f->w, REUSE_ROW + 1, OTHER);
		if (cqrs__vw_end(f->w, ++f->seq))
			abort();
	}
	return find_cb(arg, row, size);
}

/* Chain STABLE: HEAD_ROW, then the stable rows newest first; chain OTHER
 * has rows of its own. The head hook runs the writer in the window of head
 * load number move_at; with mid_reuse the walk first restarts on a reused
 * slot, so the window is that of the restart (the bound logic). */
static void head_case(int move_at, int reuse_slot, int mid_reuse)
{
	cqrs_ctl *ctl;
	cqrs_vw *w;
	cqrs_view *v;
	rstats s;
	fctx f;
	uint64_t c = STABLE;
	int n, skip = mid_reuse ? NSTABLE - 2 : -1; /* the stable row the callback reuses */

	tu_unique_name(engine, sizeof engine, "thead");
	assert_int_equal(tview_setup(engine, 64, &ctl, &w), 0);
	assert_int_equal(cqrs__vw_begin(w), 0);
	for (uint64_t i = 0; i < OTHER_ROWS; i++)
		writer_put(w, 300 + i, OTHER);
	for (uint64_t i = 0; i < NSTABLE; i++)
		writer_put(w, STABLE_BASE + i, STABLE);
	writer_put(w, HEAD_ROW, STABLE);
	assert_int_equal(cqrs__vw_end(w, 1), 0);
	assert_int_equal(cqrs_view_open(engine, "orders", &v), 0);

	memset(&s, 0, sizeof s);
	memset(&f, 0, sizeof f);
	f.s = &s;
	f.cust = STABLE;
	f.w = w;
	f.move_at = move_at;
	f.reuse_slot = reuse_slot;
	f.mid_reuse = mid_reuse;
	f.seq = 1;
	cqrs__view_set_head_hook(v, head_hook, &f);
	n = cqrs_view_find(v, "customer_id", &c, 8, restart_cb, &f, 0);
	cqrs__view_set_head_hook(v, NULL, NULL);
	for (int i = 0; i < NSTABLE; i++)
		if (i != skip && f.seen[i] != 1) {
			report_stable(&f, n, cqrs__view_chain_restarts(v));
			fail_msg("stable row %u delivered %d times", (unsigned)(STABLE_BASE + i),
				 f.seen[i]);
		}
	assert_int_equal(s.torn, 0);
	assert_true(f.heads >= move_at);
	assert_true(cqrs__view_chain_restarts(v) >= (uint64_t)(1 + !!mid_reuse));
	/* the stable rows, and the head row only when the first walk copied it
	 * before it left (mid_reuse: the one reused stable row fewer) */
	assert_int_equal(n, skip >= 0 ? NSTABLE - 1 + 1 : NSTABLE);
	assert_int_equal(f.ndelivered, n);
	assert_true(f.delivered[0] == (skip >= 0 ? HEAD_ROW : STABLE_BASE + NSTABLE - 1));
	cqrs_view_close(v);
	tview_teardown(ctl, w);
	assert_int_equal(tview_shm_count(engine), 0);
}

static void test_head_moved(void **state)
{
	(void)state;
	head_case(1, 0, 0);
}

static void test_head_slot_reused(void **state)
{
	(void)state;
	head_case(1, 1, 0);
}

static void test_head_moved_after_restart(void **state)
{
	(void)state;
	head_case(2, 0, 1);
}

static void test_head_reused_after_restart(void **state)
{
	(void)state;
	head_case(2, 1, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_moved),
		cmocka_unit_test(test_head_slot_reused),
		cmocka_unit_test(test_head_moved_after_restart),
		cmocka_unit_test(test_head_reused_after_restart),
		cmocka_unit_test(test_concurrent_readers),
	};
	return cmocka_run_group_tests(tests, NULL, tview_group_cleanup);
}
