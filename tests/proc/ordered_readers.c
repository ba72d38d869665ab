/*
 * tests/proc/ordered_readers.c - ordered-index reads across processes
 * while the writer churns.
 *
 * The parent creates a view "book" with an ordered index on (sym, price)
 * and forks one writer process and two reader processes. Rows 0..STABLE-1
 * never change; the others move (new sym and price), or are deleted and
 * inserted again in the same batch (their slot and node reused), so at
 * every batch boundary the view holds exactly TOTAL rows. Readers run
 * random ranges (prefix and full keys, both directions, limits) and check
 * that every row is untorn and inside the range, that rows come in key
 * order, and that each stable row in the range comes exactly once; every
 * 16th query is a snapshot count and a snapshot walk of the whole index,
 * which must see exactly TOTAL rows (the writer pauses now and then so
 * that snapshots can complete). The counts are printed; no timing
 * assertions.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "tests/lib/testutil.h"
#include "tests/unit/test_ordered_rows.h"

#define TOTAL 6000u
#define STABLE 500u
#define CAPACITY 8192u
#define SYMS 4
#define PRICES 400
#define READERS 2

struct shared {
	_Atomic int stop;
	_Atomic uint64_t queries[READERS], rows[READERS], snaps[READERS], snap_ok[READERS], bad[READERS], errors[READERS];
	_Atomic uint64_t batches;
};

static char engine[64];

static void stable_row(orow *r, uint64_t id)
{
	orow_fill(r, id, (int)(id % SYMS), (int64_t)(id * 7 % PRICES) - PRICES / 2, 1.0, 1);
}

static int writer(cqrs_vw *w, struct shared *sh)
{
	unsigned seed = 7;
	uint64_t seq = 1, ver = 2;
	orow r;

	/* relaxed: stop is a plain flag; nothing else is published through it */
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		if (cqrs__vw_begin(w))
			return 1;
		for (int i = 0; i < 16; i++) {
			uint64_t id = STABLE + (uint64_t)(rand_r(&seed) % (TOTAL - STABLE));

			if (rand_r(&seed) % 4 == 0 && cqrs__vw_delete(w, &id, sizeof id))
				return 1;
			orow_fill(&r, id, rand_r(&seed) % SYMS, rand_r(&seed) % PRICES - PRICES / 2, 2.0, ++ver);
			if (cqrs__vw_upsert(w, &r))
				return 1;
		}
		if (cqrs__vw_end(w, ++seq))
			return 1;
		/* statistic */
		if (atomic_fetch_add_explicit(&sh->batches, 1, memory_order_relaxed) % 256 == 255)
			usleep(200); /* a pause now and then, in which snapshots can complete */
	}
	return 0;
}

struct q {
	karg lo, hi;
	int has_lo, has_hi, desc;
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

static int row_cb(void *arg, const void *row, size_t size)
{
	struct q *q = arg;
	const orow *r = row;

	q->rows++;
	if (size != sizeof *r || !orow_ok(r)) {
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
	unsigned seed = 100u + (unsigned)id;
	uint64_t queries = 0, rows = 0, snaps = 0, snap_ok = 0, bad = 0, errors = 0;
	cqrs_view *v;

	if (cqrs_view_open(engine, "book", &v)) {
		fprintf(stderr, "reader %d: open: %s\n", id, cqrs_last_error());
		return 1;
	}
	while (queries < target) {
		static struct q q;
		orow s;
		int n, lo_sym = rand_r(&seed) % SYMS, hi_sym = lo_sym + rand_r(&seed) % 2;
		unsigned flags;

		memset(&q, 0, sizeof q);
		q.has_lo = rand_r(&seed) % 4 != 0;
		q.has_hi = rand_r(&seed) % 4 != 0;
		q.desc = rand_r(&seed) % 2;
		snprintf(q.lo.sym, 8, "S%d", lo_sym);
		q.lo.price = rand_r(&seed) % PRICES - PRICES / 2;
		snprintf(q.hi.sym, 8, "S%d", hi_sym);
		q.hi.price = rand_r(&seed) % PRICES - PRICES / 2;
		flags = q.desc ? CQRS_RANGE_DESC : 0;
		n = cqrs_view_range(v, NULL, q.has_lo ? &q.lo : NULL, 16, q.has_hi ? &q.hi : NULL, 16, flags,
				    0, row_cb, &q);
		if (n < 0) {
			if (n != -EAGAIN)
				errors++;
		} else {
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
		queries++;
		if (queries % 16 == 0) {
			uint64_t c = 0;
			int rc = cqrs_view_range_count(v, "sym", NULL, 0, NULL, 0, CQRS_RANGE_SNAPSHOT, &c);
			if (rc == 0 && c != TOTAL)
				bad++;
			else if (rc && rc != -EAGAIN)
				errors++;
			snap_ok += rc == 0;
			memset(&q, 0, sizeof q);
			n = cqrs_view_range(v, NULL, NULL, 0, NULL, 0, CQRS_RANGE_SNAPSHOT, 0, row_cb, &q);
			if (n >= 0 && (n != (int)TOTAL || q.bad))
				bad++;
			else if (n < 0 && n != -EAGAIN)
				errors++;
			snap_ok += n >= 0;
			snaps++;
		}
	}
	cqrs_view_close(v);
	/* relaxed: the parent reads these after waitpid, which orders them */
	atomic_store_explicit(&sh->queries[id], queries, memory_order_relaxed);
	atomic_store_explicit(&sh->rows[id], rows, memory_order_relaxed);
	atomic_store_explicit(&sh->snaps[id], snaps, memory_order_relaxed);
	atomic_store_explicit(&sh->snap_ok[id], snap_ok, memory_order_relaxed);
	atomic_store_explicit(&sh->bad[id], bad, memory_order_relaxed);
	atomic_store_explicit(&sh->errors[id], errors, memory_order_relaxed);
	return bad || errors ? 1 : 0;
}

int main(void)
{
	uint64_t per_reader = getenv("CQRS_SAN") ? 200 : 2000;
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t wpid, rpid[READERS];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	int status, fail = 0;
	orow r;

	setvbuf(stdout, NULL, _IONBF, 0);
	tu_unique_name(engine, sizeof engine, "pord");
	if (sh == MAP_FAILED || oview_setup(engine, CAPACITY, "sym", "price", &ctl, &w)) {
		fprintf(stderr, "setup: %s\n", cqrs_last_error());
		return 1;
	}
	cqrs__vw_begin(w);
	for (uint64_t k = 0; k < TOTAL; k++) {
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
		printf("reader %d: %llu ranges returning %llu rows, %llu snapshot pairs (%llu of %llu "
		       "snapshot reads completed, the rest starved), bad %llu, errors %llu\n",
		       i, (unsigned long long)sh->queries[i], (unsigned long long)sh->rows[i],
		       (unsigned long long)sh->snaps[i], (unsigned long long)sh->snap_ok[i],
		       (unsigned long long)(2 * sh->snaps[i]), (unsigned long long)sh->bad[i],
		       (unsigned long long)sh->errors[i]);
	printf("writer: %llu batches of 16 while reading\n", (unsigned long long)sh->batches);
	if (sh->batches == 0)
		printf("note: the writer made no batch during the reads (a loaded machine)\n");
	tview_teardown(ctl, w);
	if (tview_shm_count(engine) != 0) {
		fprintf(stderr, "segments left in /dev/shm\n");
		fail = 1;
	}
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
