/*
 * tests/proc/ordered_tree_readers.c - reads of the ordered index's B+tree
 * in other processes while the writer grows and shrinks it (shm/
 * ordered_format.h): leaves and inner nodes split, merge and take entries
 * from each other, the root gains and loses a level, every wave.
 *
 * The parent creates a view "book" with an ordered index on (sym, price)
 * holding STABLE rows that never change (even prices). A writer process
 * then runs waves: WAVE rows with odd prices, interleaved with the stable
 * ones, inserted 64 per batch, their payload rewritten in place (same
 * key) once, then deleted 64 per batch; after each wave it checks the
 * whole tree (cqrs__ow_check) and its depth went up and back down. Two
 * reader processes run ranges (prefix and full bounds, both directions,
 * some with limits, some snapshots), seeks, first and last, and check
 * every row is untorn, inside the range and in key order, that a stable
 * row is byte for byte what it was written as (the leaves carry rows),
 * and that each stable row in an unlimited range comes exactly once. The
 * counts are printed; no timing assertions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "shm/ordered_writer.h"
#include "shm/view_writer.h"
#include "tests/lib/testutil.h"
#include "tests/unit/test_ordered_rows.h"

#define STABLE 3000u
#define WAVE 7000u
#define CAPACITY 10240u
#define SYMS 4
#define READERS 2

struct shared {
	_Atomic int stop;
	_Atomic uint64_t queries[READERS], rows[READERS], bad[READERS], errors[READERS];
	_Atomic uint64_t waves, batches, max_depth, min_depth, tree_bad;
};

static char engine[64];

static void stable_row(orow *r, uint64_t id)
{
	orow_fill(r, id, (int)(id % SYMS), (int64_t)(id / SYMS) * 2, 1.0, 1);
}

static void wave_row(orow *r, uint64_t id, uint64_t ver)
{
	uint64_t k = id - STABLE;

	orow_fill(r, id, (int)(k % SYMS), (int64_t)(k * 7 % (2 * STABLE / SYMS + 40)) * 2 - 39, 2.0, ver);
}

static uint32_t depth_of(cqrs_vw *w)
{
	const cqrs_ow *o = cqrs__vw_ordered(w);

	return atomic_load_explicit(&((const cqrs_ometa *)(const void *)o->nodes)->depth,
				    memory_order_relaxed); /* this process is the writer */
}

static int writer(cqrs_vw *w, struct shared *sh)
{
	uint64_t seq = 1, ver = 2, n;
	orow r;

	/* relaxed: stop is a plain flag; nothing else is published through it */
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		uint32_t lo = depth_of(w), hi = lo;

		for (int phase = 0; phase < 3; phase++)
			for (uint64_t at = 0; at < WAVE; at += 64) {
				if (cqrs__vw_begin(w))
					return 1;
				for (uint64_t id = STABLE + at; id < STABLE + at + 64 && id < STABLE + WAVE; id++) {
					if (phase == 2) {
						if (cqrs__vw_delete(w, &id, sizeof id))
							return 1;
						continue;
					}
					wave_row(&r, id, ++ver);
					if (cqrs__vw_upsert(w, &r))
						return 1;
				}
				if (cqrs__vw_end(w, ++seq))
					return 1;
				atomic_fetch_add_explicit(&sh->batches, 1, memory_order_relaxed); /* statistic */
				if (depth_of(w) > hi)
					hi = depth_of(w);
				if (depth_of(w) < lo)
					lo = depth_of(w);
			}
		if (cqrs__ow_check(cqrs__vw_ordered(w), &n) || n != STABLE)
			atomic_fetch_add_explicit(&sh->tree_bad, 1, memory_order_relaxed); /* statistic */
		/* relaxed: statistics the parent reads after waitpid */
		atomic_store_explicit(&sh->max_depth, hi, memory_order_relaxed);
		atomic_store_explicit(&sh->min_depth, depth_of(w), memory_order_relaxed);
		atomic_fetch_add_explicit(&sh->waves, 1, memory_order_relaxed);
		usleep(200); /* a pause between waves */
	}
	return 0;
}

struct q {
	karg lo, hi;
	int has_lo, has_hi, desc;
	uint64_t limit;
	orow prev;
	int have_prev;
	uint64_t rows, bad;
	uint8_t seen[STABLE];
};

static int kcmp(const orow *a, const char *sym, int64_t price)
{
	int c = memcmp(a->sym, sym, 8);

	return c ? c : a->price < price ? -1 : a->price > price;
}

static int row_ok(const orow *r)
{
	orow s;

	if (!orow_ok(r))
		return 0;
	if (r->id >= STABLE)
		return r->id < STABLE + WAVE && (r->price & 1);
	stable_row(&s, r->id);
	return memcmp(r, &s, sizeof s) == 0;
}

static int row_cb(void *arg, const void *row, size_t size)
{
	struct q *q = arg;
	const orow *r = row;

	q->rows++;
	if (size != sizeof *r || !row_ok(r)) {
		q->bad++;
		return 0;
	}
	if ((q->has_lo && kcmp(r, q->lo.sym, q->lo.price) < 0) ||
	    (q->has_hi && kcmp(r, q->hi.sym, q->hi.price) >= 0))
		q->bad++;
	if (q->have_prev) {
		int c = kcmp(r, q->prev.sym, q->prev.price);
		if (q->desc ? c > 0 : c < 0)
			q->bad++;
	}
	q->prev = *r;
	q->have_prev = 1;
	if (r->id < STABLE && q->seen[r->id]++)
		q->bad++; /* a stable row twice */
	return 0;
}

static int reader(int id, struct shared *sh, uint64_t target)
{
	unsigned seed = 200u + (unsigned)id;
	uint64_t queries = 0, rows = 0, bad = 0, errors = 0;
	cqrs_view *v;

	if (cqrs_view_open(engine, "book", &v)) {
		fprintf(stderr, "reader %d: open: %s\n", id, cqrs_last_error());
		return 1;
	}
	while (queries < target) {
		static struct q q;
		orow s, one;
		int n, rc, lo_sym = rand_r(&seed) % SYMS, hi_sym = lo_sym + rand_r(&seed) % 2;
		int span = 2 * (int)(STABLE / SYMS) + 80;
		unsigned flags;

		memset(&q, 0, sizeof q);
		q.has_lo = rand_r(&seed) % 4 != 0;
		q.has_hi = rand_r(&seed) % 4 != 0;
		q.desc = rand_r(&seed) % 2;
		q.limit = rand_r(&seed) % 3 == 0 ? (uint64_t)(rand_r(&seed) % 200 + 1) : 0;
		snprintf(q.lo.sym, 8, "S%d", lo_sym);
		q.lo.price = rand_r(&seed) % span - 40;
		snprintf(q.hi.sym, 8, "S%d", hi_sym);
		q.hi.price = rand_r(&seed) % span - 40;
		flags = (q.desc ? CQRS_RANGE_DESC : 0) | (rand_r(&seed) % 8 == 0 ? CQRS_RANGE_SNAPSHOT : 0);
		n = cqrs_view_range(v, NULL, q.has_lo ? &q.lo : NULL, 16, q.has_hi ? &q.hi : NULL, 16, flags,
				    q.limit, row_cb, &q);
		if (n < 0) {
			if (n != -EAGAIN)
				errors++;
		} else if (q.limit && (uint64_t)n > q.limit) {
			bad++;
		} else if (!q.limit) {
			/* every stable row in the range exactly once */
			for (uint64_t i = 0; i < STABLE; i++) {
				stable_row(&s, i);
				int in = (!q.has_lo || kcmp(&s, q.lo.sym, q.lo.price) >= 0) &&
					 (!q.has_hi || kcmp(&s, q.hi.sym, q.hi.price) < 0);
				if (in != (q.seen[i] == 1))
					bad++;
			}
		}
		rows += q.rows;
		bad += q.bad;
		/* seek: the first row at or after lo is untorn and not before lo */
		rc = cqrs_view_seek(v, NULL, &q.lo, 16, 0, &one, sizeof one);
		if (rc == 0 && (!row_ok(&one) || kcmp(&one, q.lo.sym, q.lo.price) < 0))
			bad++;
		else if (rc && rc != CQRS_ENOTFOUND && rc != -EAGAIN)
			errors++;
		rc = cqrs_view_seek(v, NULL, &q.lo, 16, CQRS_RANGE_DESC, &one, sizeof one);
		if (rc == 0 && (!row_ok(&one) || kcmp(&one, q.lo.sym, q.lo.price) > 0))
			bad++;
		else if (rc && rc != CQRS_ENOTFOUND && rc != -EAGAIN)
			errors++;
		/* the stable rows hold both ends: S0 with price 0 first, S3 last */
		rc = cqrs_view_first(v, NULL, &one, sizeof one);
		if (rc == 0 ? !row_ok(&one) || memcmp(one.sym, "S0", 3) : rc != -EAGAIN)
			bad++;
		rc = cqrs_view_last(v, NULL, &one, sizeof one);
		if (rc == 0 ? !row_ok(&one) || memcmp(one.sym, "S3", 3) : rc != -EAGAIN)
			bad++;
		queries++;
	}
	cqrs_view_close(v);
	/* relaxed: the parent reads these after waitpid, which orders them */
	atomic_store_explicit(&sh->queries[id], queries, memory_order_relaxed);
	atomic_store_explicit(&sh->rows[id], rows, memory_order_relaxed);
	atomic_store_explicit(&sh->bad[id], bad, memory_order_relaxed);
	atomic_store_explicit(&sh->errors[id], errors, memory_order_relaxed);
	return bad || errors ? 1 : 0;
}

int main(void)
{
	uint64_t per_reader = getenv("CQRS_SAN") ? 150 : 1500;
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t wpid, rpid[READERS];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	int status, fail = 0;
	orow r;

	setvbuf(stdout, NULL, _IONBF, 0);
	tu_unique_name(engine, sizeof engine, "ptree");
	if (sh == MAP_FAILED || oview_setup(engine, CAPACITY, "sym", "price", &ctl, &w)) {
		fprintf(stderr, "setup: %s\n", cqrs_last_error());
		return 1;
	}
	cqrs__vw_begin(w);
	for (uint64_t k = 0; k < STABLE; k++) {
		stable_row(&r, k);
		cqrs__vw_upsert(w, &r);
	}
	cqrs__vw_end(w, 1);
	wpid = fork();
	if (wpid == 0)
		_exit(writer(w, sh));
	for (int i = 0; i < READERS; i++) {
		rpid[i] = fork();
		if (rpid[i] == 0)
			_exit(reader(i, sh, per_reader));
	}
	for (int i = 0; i < READERS; i++) {
		waitpid(rpid[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail = 1;
	}
	atomic_store_explicit(&sh->stop, 1, memory_order_relaxed); /* flag only */
	waitpid(wpid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "writer failed: %s\n", cqrs_last_error());
		fail = 1;
	}
	for (int i = 0; i < READERS; i++)
		printf("reader %d: %llu ranges returning %llu rows (+ 4 seeks each), bad %llu, errors %llu\n",
		       i, (unsigned long long)sh->queries[i], (unsigned long long)sh->rows[i],
		       (unsigned long long)sh->bad[i], (unsigned long long)sh->errors[i]);
	printf("writer: %llu waves, %llu batches; tree depth %llu..%llu; %llu bad trees\n",
	       (unsigned long long)sh->waves, (unsigned long long)sh->batches,
	       (unsigned long long)sh->min_depth, (unsigned long long)sh->max_depth,
	       (unsigned long long)sh->tree_bad);
	if (sh->tree_bad)
		fail = 1;
	if (sh->waves && sh->max_depth <= sh->min_depth) {
		fprintf(stderr, "the tree never changed depth\n");
		fail = 1;
	}
	if (sh->waves == 0)
		printf("note: the writer finished no wave during the reads (a loaded machine)\n");
	tview_teardown(ctl, w);
	if (tview_shm_count(engine) != 0) {
		fprintf(stderr, "segments left in /dev/shm\n");
		fail = 1;
	}
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
