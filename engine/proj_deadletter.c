/*
 * engine/proj_deadletter.c - a projection's dead letters: recording an
 * event its apply refused (durably, engine/deadletter.h's log) and, on
 * request (cqrs_engine_retry_dead_letters), applying the open ones again.
 *
 * Retry reads the whole log, keeps the seqs of this projection's letters
 * that no later RESOLVED record closes (in the projector's own buffer,
 * grown as needed: no limit but memory), and applies each again from the
 * journal; a success appends a RESOLVED record. A halted
 * projection then resumes: everything from the event that halted it up to
 * what its projector has seen is replayed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/errors.h"
#include "engine/counters.h"
#include "engine/deadletter.h"
#include "engine/engine_internal.h"
#include "engine/projector.h"
#include "engine/schema_check.h"

static int append(cqrs_engine *e, const cqrs_deadletter *d)
{
	int rc;

	pthread_mutex_lock(&e->dl_lock);
	rc = e->dead_letters ? cqrs__dl_append(e->dead_letters, d) : -EBADF;
	pthread_mutex_unlock(&e->dl_lock);
	return rc;
}

void cqrs__proj_dead_letter(cqrs_engine *e, cqrs_proj *p, const cqrs_event *ev, int code)
{
	cqrs_deadletter d = { .seq = ev->seq, .time_ns = cqrs__wall_ns(), .code = code,
			      .kind = CQRS_DL_DEAD };
	int rc;

	snprintf(d.projection, sizeof d.projection, "%s", p->def.name);
	snprintf(d.reason, sizeof d.reason, "%s", p->fail_reason[0] ? p->fail_reason : cqrs_strerror(code));
	rc = append(e, &d);
	p->dead_letters++;
	CTR_SET(e->ctr, proj[p->index].dead_letters, p->dead_letters);
	cqrs__log(e, CQRS_LOG_WARN, "projection %s: seq %llu dead-lettered (%s: %s)%s", p->def.name,
		  (unsigned long long)ev->seq, cqrs_strerror(code), d.reason,
		  rc ? " - and the dead letter could not be written" : "");
	if (p->def.on_error == CQRS_ON_ERROR_HALT) {
		p->halted_at = ev->seq;
		/* relaxed: read by this thread and by stats only. */
		atomic_store_explicit(&p->halted, 1, memory_order_relaxed);
		CTR_SET(e->ctr, proj[p->index].halted, 1);
	}
}

typedef struct collect {
	projector *t;
	const char *projection;
	int nomem;
} collect;

/* cqrs__dl_read's callback: t->open_letters becomes the seqs of the
 * projection's dead letters not yet resolved. */
static void collect_open(void *arg, const cqrs_deadletter *d)
{
	collect *c = arg;
	projector *t = c->t;

	if (c->nomem || strcmp(d->projection, c->projection))
		return;
	if (d->kind == CQRS_DL_RESOLVED) {
		for (uint32_t i = 0; i < t->nopen; i++)
			if (t->open_letters[i] == d->seq)
				t->open_letters[i] = t->open_letters[--t->nopen];
		return;
	}
	if (t->nopen == t->open_cap) {
		uint32_t cap = t->open_cap ? t->open_cap * 2 : 1024;
		uint64_t *n = cap > t->open_cap ? realloc(t->open_letters, cap * sizeof *n) : NULL;

		if (!n) {
			c->nomem = 1;
			return;
		}
		t->open_letters = n;
		t->open_cap = cap;
	}
	t->open_letters[t->nopen++] = d->seq;
}

static void mark_resolved(cqrs_engine *e, cqrs_proj *p, uint64_t seq)
{
	cqrs_deadletter d = { .seq = seq, .time_ns = cqrs__wall_ns(), .kind = CQRS_DL_RESOLVED };

	snprintf(d.projection, sizeof d.projection, "%s", p->def.name);
	snprintf(d.reason, sizeof d.reason, "retry succeeded");
	(void)append(e, &d);
}

/* Applies the journal event seq to p again; 1 when it succeeded. */
static int retry_one(cqrs_engine *e, cqrs_proj *p, uint64_t seq)
{
	cqrs_journal_iter *it;
	cqrs_schema_check *sc;
	const cqrs_jrec *r;
	cqrs_event ev;
	int ok = 0;

	int rc = cqrs__journal_iter_open(&it, e->journal_dir, seq);

	if (rc) {
		/* said, not swallowed: the letter stays open (dead letters do not
		 * pin retention; an archived segment put back makes it retryable) */
		cqrs__log(e, CQRS_LOG_WARN, "projection %s: dead letter at seq %llu cannot be retried: "
			  "%s", p->def.name, (unsigned long long)seq,
			  rc == CQRS_ENOTFOUND ? "retention collected its journal segment"
					       : cqrs_strerror(rc));
		return 0;
	}
	if (cqrs__schema_check_open(e, it, &sc)) {
		cqrs__journal_iter_close(it);
		return 0;
	}
	/* in the registered layout, as every replay (engine/schema_check.h) */
	if (cqrs__journal_iter_next(it, &r) == 1 && r->seq == seq &&
	    cqrs__schema_check_event(sc, r, &ev) == 0) {
		cqrs__proj_begin(p);
		p->fail_code = 0;
		p->fail_reason[0] = 0;
		ok = p->def.apply(p, &ev, p->def.arg) == 0;
		cqrs__proj_end(e, p, atomic_load_explicit(&p->applied_seq, memory_order_relaxed));
	}
	cqrs__schema_check_close(sc);
	cqrs__journal_iter_close(it);
	return ok;
}

void cqrs__proj_retry_dead_letters(cqrs_engine *e, projector *t, cqrs_proj *p)
{
	/* relaxed: halted is written by this thread only. */
	int halted = atomic_load_explicit(&p->halted, memory_order_relaxed);
	collect c = { .t = t, .projection = p->def.name };

	t->nopen = 0;
	cqrs__dl_read(e->data_dir, collect_open, &c, NULL);
	if (c.nomem) {
		cqrs__log(e, CQRS_LOG_ERROR,
			  "projection %s: dead-letter retry needs memory for more than %u open dead letters: nothing retried",
			  p->def.name, t->nopen);
		return;
	}
	for (uint32_t i = 0; i < t->nopen; i++) {
		uint64_t seq = t->open_letters[i];

		if (halted && seq >= p->halted_at)
			continue; /* replayed below */
		if (retry_one(e, p, seq))
			mark_resolved(e, p, seq);
	}
	if (halted) {
		uint64_t at = p->halted_at;
		atomic_store_explicit(&p->halted, 0, memory_order_relaxed); /* owner thread */
		CTR_SET(e->ctr, proj[p->index].halted, 0);
		cqrs__proj_replay(e, &p, 1, at - 1, t->seen_seq);
		if (!atomic_load_explicit(&p->halted, memory_order_relaxed) || p->halted_at != at)
			mark_resolved(e, p, at);
	}
	cqrs__log(e, CQRS_LOG_INFO, "projection %s: dead letters retried", p->def.name);
}
