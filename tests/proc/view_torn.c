/*
 * tests/proc/view_torn.c - no torn reads across processes.
 *
 * The parent creates an engine and a view and forks one writer process
 * that rewrites rows at full speed (self-checking content, customers
 * changing, rows deleted and inserted again, batches of 16) and two reader
 * processes that get random keys and find random customers (plain and
 * snapshot) through their own handles. Every row a reader receives must be
 * one whole version with the key or customer it asked for. At least 10
 * million point reads in total (1 million under CQRS_SAN); the counts are
 * printed. No timing assertions.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/testutil.h"
#include "shm/view_internal.h"
#include "tests/unit/test_view_rows.h"

#define KEYS 20000u
#define CAPACITY 24000u
#define CUSTS 500u
#define READERS 2

struct shared {
	_Atomic int stop;
	_Atomic uint64_t gets[READERS], found[READERS], finds[READERS], rows[READERS];
	_Atomic uint64_t snaps[READERS], torn[READERS], errors[READERS], restarts[READERS];
	_Atomic uint64_t batches;
};

static char engine[64];

static int writer(cqrs_vw *w, struct shared *sh)
{
	unsigned seed = 99;
	uint64_t seq = 1, ver = 1;
	trow r;

	/* relaxed: stop is a plain flag; nothing else is published through it */
	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		if (cqrs__vw_begin(w))
			return 1;
		for (int i = 0; i < 16; i++) {
			uint64_t k = (uint64_t)(rand_r(&seed) % KEYS);
			int rc;
			if (rand_r(&seed) % 8 == 0) {
				rc = cqrs__vw_delete(w, &k, 8);
				if (rc && rc != CQRS_ENOTFOUND)
					return 1;
				continue;
			}
			trow_fill(&r, k, (uint64_t)(rand_r(&seed) % CUSTS), ++ver);
			if (cqrs__vw_upsert(w, &r))
				return 1;
		}
		if (cqrs__vw_end(w, ++seq))
			return 1;
		atomic_fetch_add_explicit(&sh->batches, 1, memory_order_relaxed); /* statistic */
	}
	return 0;
}

struct fctx {
	uint64_t cust, rows, torn;
};

static int find_cb(void *arg, const void *row, size_t size)
{
	struct fctx *f = arg;
	const trow *r = row;

	f->rows++;
	if (size != sizeof *r || !trow_ok(r) || r->customer_id != f->cust)
		f->torn++;
	return 0;
}

static int reader(int id, struct shared *sh, uint64_t target)
{
	unsigned seed = 1000u + (unsigned)id;
	uint64_t gets = 0, found = 0, finds = 0, rows = 0, snaps = 0, torn = 0, errors = 0;
	cqrs_view *v;
	trow r;

	if (cqrs_view_open(engine, "orders", &v)) {
		fprintf(stderr, "reader %d: open: %s\n", id, cqrs_last_error());
		return 1;
	}
	while (gets < target) {
		for (int i = 0; i < 256; i++) {
			uint64_t k = (uint64_t)(rand_r(&seed) % KEYS);
			int rc = cqrs_view_get(v, &k, sizeof k, &r, sizeof r);
			gets++;
			if (rc == 0) {
				found++;
				if (!trow_ok(&r) || r.order_id != k)
					torn++;
			} else if (rc != CQRS_ENOTFOUND) {
				errors++;
			}
		}
		{
			struct fctx f = { (uint64_t)(rand_r(&seed) % CUSTS), 0, 0 };
			unsigned flags = finds % 16 == 0 ? CQRS_FIND_SNAPSHOT : 0;
			int n = cqrs_view_find(v, "customer_id", &f.cust, 8, find_cb, &f, flags);
			if (n >= 0) {
				finds++;
				snaps += flags != 0;
				rows += f.rows;
				torn += f.torn;
			} else if (n != -EAGAIN) {
				errors++;
			}
		}
	}
	atomic_store_explicit(&sh->restarts[id], cqrs__view_chain_restarts(v), memory_order_relaxed);
	cqrs_view_close(v);
	/* relaxed: the parent reads these after waitpid, which orders them */
	atomic_store_explicit(&sh->gets[id], gets, memory_order_relaxed);
	atomic_store_explicit(&sh->found[id], found, memory_order_relaxed);
	atomic_store_explicit(&sh->finds[id], finds, memory_order_relaxed);
	atomic_store_explicit(&sh->rows[id], rows, memory_order_relaxed);
	atomic_store_explicit(&sh->snaps[id], snaps, memory_order_relaxed);
	atomic_store_explicit(&sh->torn[id], torn, memory_order_relaxed);
	atomic_store_explicit(&sh->errors[id], errors, memory_order_relaxed);
	return torn || errors ? 1 : 0;
}

int main(void)
{
	uint64_t total_reads = getenv("CQRS_SAN") ? 1000000 : 10000000, sum = 0, torn = 0;
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t wpid, rpid[READERS];
	cqrs_ctl *ctl;
	cqrs_vw *w;
	int status, fail = 0;
	trow r;

	setvbuf(stdout, NULL, _IONBF, 0);
	tu_unique_name(engine, sizeof engine, "ptorn");
	if (sh == MAP_FAILED || tview_setup(engine, CAPACITY, &ctl, &w)) {
		fprintf(stderr, "setup: %s\n", cqrs_last_error());
		return 1;
	}
	/* start full-ish so most gets find a row */
	cqrs__vw_begin(w);
	for (uint64_t k = 0; k < KEYS; k++) {
		trow_fill(&r, k, k % CUSTS, 1);
		cqrs__vw_upsert(w, &r);
	}
	cqrs__vw_end(w, 1);

	wpid = fork();
	if (wpid == 0)
		_exit(writer(w, sh));
	for (int i = 0; i < READERS; i++) {
		rpid[i] = fork();
		if (rpid[i] == 0)
			_exit(reader(i, sh, total_reads / READERS));
	}
	for (int i = 0; i < READERS; i++) {
		waitpid(rpid[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail = 1;
	}
	atomic_store_explicit(&sh->stop, 1, memory_order_relaxed); /* flag only */
	waitpid(wpid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "writer failed\n");
		fail = 1;
	}
	for (int i = 0; i < READERS; i++) {
		printf("reader %d: %llu gets (%llu found), %llu finds (%llu snapshot) returning %llu rows "
		       "(%llu chain restarts), torn %llu, errors %llu\n", i,
		       (unsigned long long)sh->gets[i], (unsigned long long)sh->found[i],
		       (unsigned long long)sh->finds[i], (unsigned long long)sh->snaps[i],
		       (unsigned long long)sh->rows[i], (unsigned long long)sh->restarts[i],
		       (unsigned long long)sh->torn[i],
		       (unsigned long long)sh->errors[i]);
		sum += sh->gets[i];
		torn += sh->torn[i];
	}
	printf("writer: %llu batches of 16 while reading\n", (unsigned long long)sh->batches);
	printf("total point reads: %llu, torn reads: %llu\n", (unsigned long long)sum,
	       (unsigned long long)torn);
	if (sum < total_reads)
		fail = 1;
	tview_teardown(ctl, w);
	if (tview_shm_count(engine) != 0) {
		fprintf(stderr, "segments left in /dev/shm\n");
		fail = 1;
	}
	printf("%s\n", fail ? "FAIL" : "ok");
	return fail;
}
