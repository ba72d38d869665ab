/*
 * engine/proj_rebuild.c - projections from the journal: replay a range of
 * seqs into a projection's views (catch-up at start, a halted projection's
 * resume), and rebuild a projection into a new generation of its views.
 * Every replayed event reaches apply in the registered layout: older
 * layouts are converted, or the replay fails with CQRS_EFORMAT
 * (engine/schema_check.h), as the write model's replay does.
 *
 * A rebuild (cqrs_engine_rebuild) creates the new generation beside the
 * live one, replays the journal into it through a private copy of the
 * projection, then swaps; a view that is full grows the same way except
 * that its rows are copied into a generation of twice the capacity
 * instead of replayed (O(rows), and no journal needed: retention may have
 * collected its start). Either way the swap:
 * the new generation is published and the old one retired, so readers
 * keep reading the old generation until they follow the swap. It runs on
 * the projection's projector (SHARED threading: the command thread), in
 * the middle of an apply when a view filled up: a rebuild whose replay
 * fills the new generation grows it again.
 */
#include "core/errors.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/projector.h"
#include "engine/schema_check.h"

#define REPLAY_BATCH 4096u /* events per view batch while replaying the journal */

int cqrs__proj_replay(cqrs_engine *e, cqrs_proj **projs, uint32_t n, uint64_t from, uint64_t upto)
{
	cqrs_journal_iter *it;
	cqrs_schema_check *sc;
	const cqrs_jrec *r;
	uint64_t in_batch = 0, last = from;
	int rc;

	if (upto <= from)
		return 0;
	rc = cqrs__journal_iter_open(&it, e->journal_dir, from + 1);
	if (rc)
		return rc;
	rc = cqrs__schema_check_open(e, it, &sc);
	if (rc) {
		cqrs__journal_iter_close(it);
		return rc;
	}
	for (uint32_t k = 0; k < n; k++)
		cqrs__proj_begin(projs[k]);
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1 && r->seq <= upto) {
		cqrs_event ev;
		if ((rc = cqrs__schema_check_event(sc, r, &ev)) != 0)
			break;
		for (uint32_t k = 0; k < n; k++)
			cqrs__proj_apply(e, projs[k], &ev);
		last = r->seq;
		if (++in_batch == REPLAY_BATCH) {
			for (uint32_t k = 0; k < n; k++) {
				cqrs__proj_end(e, projs[k], last);
				cqrs__proj_begin(projs[k]);
			}
			in_batch = 0;
		}
	}
	/* cqrs__proj_end keeps applied_seq when last is behind it. */
	for (uint32_t k = 0; k < n; k++)
		cqrs__proj_end(e, projs[k], last);
	cqrs__schema_check_close(sc);
	cqrs__journal_iter_close(it);
	if (rc < 0)
		return rc;
	if (last < upto)
		return cqrs__fail(CQRS_ECORRUPT, "journal ended at seq %llu, needed %llu",
				 (unsigned long long)last, (unsigned long long)upto);
	return 0;
}

int cqrs__proj_rebuild(cqrs_engine *e, cqrs_proj *p, uint64_t upto, int grow)
{
	proj_view *old[CQRS_MAX_VIEWS_PER_PROJECTION], fresh[CQRS_MAX_VIEWS_PER_PROJECTION];
	cqrs_proj shadow = *p;
	cqrs_proj *one = &shadow;
	int rc = 0;

	for (uint32_t i = 0; i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		uint64_t cap = grow ? pv->def.capacity * 2 : pv->def.capacity;
		fresh[i] = *pv;
		fresh[i].def.capacity = cap;
		cqrs__proj_view_config(e, &fresh[i], cap, cqrs__vw_generation(pv->w) + 1);
		/* a rebuild runs beside the live projection: rows in windows */
		fresh[i].cfg.pretouch = 0;
		rc = cqrs__proj_view_create(e, pv->def.name, &fresh[i].cfg, &fresh[i].w);
		if (rc) {
			while (i-- > 0) {
				cqrs__vw_retire(fresh[i].w);
				cqrs__vw_close(fresh[i].w);
			}
			return cqrs__fail(rc, "view %s: cannot create generation for rebuild", pv->def.name);
		}
		old[i] = pv;
		shadow.views[i] = &fresh[i];
	}
	atomic_store_explicit(&shadow.applied_seq, 0, memory_order_relaxed); /* private copy */
	atomic_store_explicit(&shadow.halted, 0, memory_order_relaxed);
	if (grow) {
		/* Growth keeps the rows as they are at upto (the batch before is
		 * closed): copied into the larger generation, O(rows), without
		 * the journal, which retention may have collected. */
		for (uint32_t i = 0; i < p->def.nviews && rc == 0; i++) {
			rc = cqrs__vw_begin(fresh[i].w);
			if (rc == 0)
				rc = cqrs__vw_copy_rows(old[i]->w, fresh[i].w);
			if (rc == 0)
				rc = cqrs__vw_end(fresh[i].w, upto);
		}
		shadow.dead_letters = p->dead_letters;
	} else {
		rc = cqrs__proj_replay(e, &one, 1, 0, upto);
	}
	if (rc) {
		for (uint32_t i = 0; i < p->def.nviews; i++) {
			cqrs__vw_retire(fresh[i].w);
			cqrs__vw_close(fresh[i].w);
		}
		return rc;
	}
	for (uint32_t i = 0; i < p->def.nviews; i++) {
		cqrs__vw_mark_dirty(fresh[i].w);
		cqrs__vw_publish(fresh[i].w);
		cqrs__vw_retire(old[i]->w);
		cqrs__vw_close(old[i]->w);
		*old[i] = fresh[i];
	}
	p->dead_letters = shadow.dead_letters;
	CTR_ADD(e->ctr, proj[p->index].rebuilds, 1);
	cqrs__log(e, CQRS_LOG_INFO, "projection %s: rebuilt%s up to seq %llu", p->def.name,
		  grow ? " with doubled capacity" : "", (unsigned long long)upto);
	return 0;
}
