/*
 * engine/proj_apply.c - applying durable events to projections.
 *
 * A projector applies in batches: begin a batch on every view of each of
 * its projections, apply every event with seq > the projection's
 * applied_seq, end the batch with the last seq (the views publish
 * applied_seq, readers waiting for it wake). The events come straight from
 * the journal's bytes: a broadcast ring run (DEDICATED threading), a
 * durable batch in place (SHARED), or a replay (proj_rebuild.c).
 *
 * Failures: an apply that returns CQRS_EFULL grows the projection (the
 * batch so far is published, every view's rows are copied into a
 * generation of twice the capacity, proj_rebuild.c) and the event is
 * applied again; when there is no room to grow into (-ENOSPC, -ENOMEM),
 * the projection stalls instead (proj_stall.c); any other error records a
 * dead letter
 * (proj_deadletter.c), after which the projection skips the event or
 * halts, per its policy.
 */
#include "engine/checkpoint.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/projector.h"

void cqrs__proj_begin(cqrs_proj *p)
{
	for (uint32_t i = 0; i < p->def.nviews; i++)
		if (p->views[i]->w) /* NULL: not made yet (a stalled start) */
			cqrs__vw_begin(p->views[i]->w);
}

void cqrs__proj_end(cqrs_engine *e, cqrs_proj *p, uint64_t seq)
{
	/* relaxed (applied_seq, halted): written by this thread only. */
	uint64_t applied = atomic_load_explicit(&p->applied_seq, memory_order_relaxed);

	/* A halted projection's views stay at the event before the one it
	 * could not apply: readers waiting past it must not be told otherwise. */
	if (atomic_load_explicit(&p->halted, memory_order_relaxed) && seq >= p->halted_at)
		seq = p->halted_at - 1;
	if (atomic_load_explicit(&p->stalled, memory_order_relaxed) && seq >= p->stalled_at)
		seq = p->stalled_at - 1;
	if (seq < applied)
		seq = applied;
	for (uint32_t i = 0; i < p->def.nviews; i++)
		if (p->views[i]->w)
			cqrs__vw_end(p->views[i]->w, seq);
	/* release: pairs with stop's acquire load; the views themselves publish
	 * applied_seq to readers with their own release store. */
	atomic_store_explicit(&p->applied_seq, seq, memory_order_release);
	CTR_SET(e->ctr, proj[p->index].applied_seq, seq);
}

void cqrs__proj_apply(cqrs_engine *e, cqrs_proj *p, const cqrs_event *ev)
{
	int rc;

	/* relaxed: only this thread sets applied_seq, halted and stalled. */
	if (ev->seq <= atomic_load_explicit(&p->applied_seq, memory_order_relaxed) ||
	    atomic_load_explicit(&p->halted, memory_order_relaxed) ||
	    atomic_load_explicit(&p->stalled, memory_order_relaxed))
		return;
	p->fail_code = 0;
	p->fail_reason[0] = 0;
	rc = p->def.apply(p, ev, p->def.arg);
	if (rc == CQRS_EFULL) {
		/* The batch so far is published, every view of p grows (its rows
		 * as of ev->seq - 1 copied into twice the capacity), and ev is
		 * applied again. */
		cqrs__proj_end(e, p, ev->seq - 1);
		rc = cqrs__proj_rebuild(e, p, ev->seq - 1, 1);
		cqrs__proj_begin(p);
		if (rc == 0) {
			p->fail_code = 0;
			p->fail_reason[0] = 0;
			rc = p->def.apply(p, ev, p->def.arg);
		} else if (cqrs__proj_shortage(rc)) {
			/* No room to grow into: a state of the projection, not a
			 * refused event. Growth is retried with backoff. */
			cqrs__proj_stall(e, p, ev->seq, rc);
			return;
		}
	}
	if (rc)
		cqrs__proj_dead_letter(e, p, ev, rc);
}

/* Applies the journal records [j, jend) to every projection of t (inside
 * an open batch); returns the last seq seen, 0 for none. */
static uint64_t apply_records(projector *t, const uint8_t *j, const uint8_t *jend, uint64_t *events)
{
	uint64_t last = 0;

	while (j < jend) {
		const cqrs_jrec *r = (const cqrs_jrec *)(const void *)j;
		cqrs_event ev = cqrs__proj_event_of(r);
		for (uint32_t k = 0; k < t->nprojs; k++)
			cqrs__proj_apply(t->e, t->projs[k], &ev);
		last = r->seq;
		(*events)++;
		j += cqrs__jrec_span(r);
	}
	return last;
}

static void begin_batch(projector *t)
{
	for (uint32_t k = 0; k < t->nprojs; k++)
		cqrs__proj_begin(t->projs[k]);
}

/* Publishes applied_seq for the batch just applied (last 0: none). */
static void end_batch(projector *t, uint64_t last, uint64_t events)
{
	cqrs_engine *e = t->e;

	if (last)
		t->seen_seq = last;
	for (uint32_t k = 0; k < t->nprojs; k++) {
		cqrs_proj *pr = t->projs[k];
		cqrs__proj_end(e, pr, last);
		CTR_ADD(e->ctr, proj[pr->index].events, events);
		CTR_ADD(e->ctr, proj[pr->index].batches, 1);
		cqrs__checkpoint_tick(e, pr); /* a batch boundary: a checkpoint may be due */
	}
}

void cqrs__projector_apply_batch(projector *t, const void *recs, size_t bytes)
{
	uint64_t events = 0, last;

	if (!t->nprojs)
		return;
	begin_batch(t);
	last = apply_records(t, recs, (const uint8_t *)recs + bytes, &events);
	end_batch(t, last, events);
}

void cqrs__projector_apply_run(projector *t, const void *recs, size_t bytes)
{
	const uint8_t *p = recs, *end = p + bytes;
	uint64_t last = 0, events = 0;

	begin_batch(t);
	while (p < end) {
		const cqrs_ring_rec *rr = (const cqrs_ring_rec *)(const void *)p;
		const uint8_t *j = p + sizeof *rr;
		uint64_t l = apply_records(t, j, j + rr->len, &events);

		if (l)
			last = l;
		p += CQRS_BCAST_REC_SIZE(rr->len);
	}
	end_batch(t, last, events);
}
