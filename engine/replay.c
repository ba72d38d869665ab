/*
 * engine/replay.c - rebuilding the write model from the journal on start.
 *
 * The journal has already been opened for append (which cut a torn tail or
 * refused corruption). Every record is then replayed in seq order, in two
 * halves that run side by side; they share the (read-only) journal files
 * and the write-model allocator (thread-safe, one tcache per thread), and
 * nothing else:
 *   - the calling thread runs evolve into the user's write model, and logs
 *     progress;
 *   - a helper thread keeps the engine's books: each aggregate's version,
 *     and the idempotency window, which learns the command's (client id,
 *     client seq) from its last event (the CMD_END record), so a duplicate
 *     sent after a restart still gets the original answer.
 * A start that loaded a snapshot at seq S (engine/snapshot.h) replays
 * from S+1: the iterator skips what is before it.
 * Each half walks the journal with its own iterator (every checksum is
 * checked on both) and checks seq continuity; a half that fails stops the
 * other, the halves are joined before the command thread starts, and the
 * start fails with the first failure's message. Versions were half the
 * replay's time on one thread; on two, a 1M-event replay went from
 * 4.3-4.7M to 5.4-6.8M events/s (bench_engine, BM_EngineRecovery/0). With
 * fewer than two CPUs to run on, one pass does both.
 *
 * evolve sees every record in the registered layout: the evolve half
 * reads through a schema check (engine/schema_check.h), which compares
 * each segment's stored layouts with the registered ones as the iterator
 * enters it and converts older layouts (or refuses them, failing the
 * start with CQRS_EFORMAT); a layout that is the registered one costs the
 * one compare the size check before it did.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/assert.h"
#include "core/clock.h"
#include "engine/engine_internal.h"
#include "core/errors.h"
#include "engine/journal/journal.h"
#include "engine/model/dedup.h"
#include "engine/model/versions.h"
#include "engine/replay.h"
#include "engine/schema_check.h"

typedef int (*replay_fn)(cqrs_engine *e, cqrs_schema_check *sc, const cqrs_jrec *r);

/* Walks seqs from..next_seq-1, calling fn on each record, until done, an
 * error, or *stop (the other half failed: 0 is returned, the other half
 * reports). *count: records. progress: log every millionth record.
 * layouts: the half reads payloads, through the schema check (sc). */
static int walk(cqrs_engine *e, uint64_t from, uint64_t next_seq, replay_fn fn, int progress,
		int layouts, _Atomic int *stop, uint64_t *count)
{
	cqrs_journal_iter *it;
	cqrs_schema_check *sc = NULL;
	const cqrs_jrec *r;
	uint64_t n = 0, expect = from;
	int rc = cqrs__journal_iter_open(&it, e->journal_dir, from);

	if (rc)
		return rc;
	if (layouts && (rc = cqrs__schema_check_open(e, it, &sc)) != 0) {
		cqrs__journal_iter_close(it);
		return rc;
	}
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1) {
		if (r->seq != expect) {
			rc = cqrs__fail(CQRS_ECORRUPT, "replay: seq %llu where %llu was expected",
				       (unsigned long long)r->seq, (unsigned long long)expect);
			break;
		}
		expect++;
		rc = fn(e, sc, r);
		if (rc)
			break;
		if (++n % 1000000 == 0 && progress)
			cqrs__log(e, CQRS_LOG_INFO, "recovery: %llu of %llu events replayed",
				  (unsigned long long)n, (unsigned long long)(next_seq - from));
		if (r->seq + 1 >= next_seq)
			break;
		/* relaxed: only a flag; the failing half's error travels through
		 * pthread_join */
		if ((n & 1023) == 0 && atomic_load_explicit(stop, memory_order_relaxed)) {
			cqrs__schema_check_close(sc);
			cqrs__journal_iter_close(it);
			return 0;
		}
	}
	cqrs__schema_check_close(sc);
	cqrs__journal_iter_close(it);
	if (rc < 0)
		return rc;
	if (expect != next_seq)
		return cqrs__fail(CQRS_ECORRUPT, "replay ended at seq %llu, journal says %llu",
				 (unsigned long long)(expect - 1), (unsigned long long)(next_seq - 1));
	*count = n;
	return 0;
}

/* The user's half: evolve, on records of the registered layout (the
 * schema check reads them in place, or converts an older layout). */
static int evolve_one(cqrs_engine *e, cqrs_schema_check *sc, const cqrs_jrec *r)
{
	cqrs_event ev;
	int rc = cqrs__schema_check_event(sc, r, &ev);
	cqrs_evolve_fn evolve;

	if (rc)
		return rc;
	CQRS_ASSERT(ev.type < CQRS_MAX_TYPES); /* the check reads only registered types */
	evolve = e->events[ev.type].evolve;
	if (evolve)
		evolve(e->model, &ev);
	return 0;
}

/* The engine's half: versions and the idempotency window. */
static int book_one(cqrs_engine *e, cqrs_schema_check *sc, const cqrs_jrec *r)
{
	(void)sc; /* reads no payload */
	if (r->aggregate_id != UINT64_MAX &&
	    cqrs__versions_set(e->versions, r->aggregate_id, r->aggregate_version))
		return cqrs__fail(-ENOMEM, "replay: no memory for the version of aggregate %llu",
				 (unsigned long long)r->aggregate_id);
	if (r->client_id && (r->flags & CQRS_JREC_CMD_END) &&
	    cqrs__dedup_record(e->dedup, r->client_id, r->client_seq, r->seq))
		return cqrs__fail(-ENOMEM, "replay: no memory for the idempotency window of client %llu",
				 (unsigned long long)r->client_id);
	return 0;
}

/* Both halves in one pass. */
static int evolve_and_book(cqrs_engine *e, cqrs_schema_check *sc, const cqrs_jrec *r)
{
	int rc = evolve_one(e, sc, r);

	return rc ? rc : book_one(e, sc, r);
}

typedef struct books_job {
	cqrs_engine *e;
	uint64_t from, next_seq;
	_Atomic int stop; /* set by the half that fails */
	int rc;
	char why[512]; /* the helper's cqrs_last_error(), for the caller's thread */
} books_job;

static void *books_main(void *arg)
{
	books_job *job = arg;
	uint64_t n;

	job->rc = walk(job->e, job->from, job->next_seq, book_one, 0, 0, &job->stop, &n);
	if (job->rc) {
		snprintf(job->why, sizeof job->why, "%s", cqrs_last_error());
		atomic_store_explicit(&job->stop, 1, memory_order_relaxed); /* a flag, see walk */
	}
	return NULL;
}

static int cpus_to_run_on(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

int cqrs__replay_write_model(cqrs_engine *e, uint64_t from, uint64_t next_seq,
			     cqrs_replay_stats *st)
{
	books_job job = { .e = e, .from = from, .next_seq = next_seq };
	uint64_t start = cqrs__mono_ns(), n = 0;
	pthread_t helper;
	int rc, threaded = 0;

	memset(st, 0, sizeof *st);
	if (next_seq <= from)
		return 0;
	/* pthread_create/join order the helper's books before the caller's
	 * (and the command thread's) use of them. */
	if (cpus_to_run_on() >= 2)
		threaded = pthread_create(&helper, NULL, books_main, &job) == 0;
	if (!threaded) {
		rc = walk(e, from, next_seq, evolve_and_book, 1, 1, &job.stop, &n);
	} else {
		pthread_setname_np(helper, "cqrs-replay");
		rc = walk(e, from, next_seq, evolve_one, 1, 1, &job.stop, &n);
		if (rc)
			atomic_store_explicit(&job.stop, 1, memory_order_relaxed); /* a flag */
		pthread_join(helper, NULL);
	}
	if (rc)
		return rc;
	if (job.rc)
		return cqrs__set_error_text(job.rc, job.why[0] ? job.why : cqrs_strerror(job.rc));
	st->events = n;
	st->ns = cqrs__mono_ns() - start;
	cqrs__log(e, CQRS_LOG_INFO, "recovery: write model rebuilt from %llu events (from seq %llu) "
		  "in %.1f ms", (unsigned long long)n, (unsigned long long)from, (double)st->ns / 1e6);
	return 0;
}
