/*
 * engine/projector.c - projector threads: durable events in, views out.
 *
 * Publishing (command thread): each durable journal batch is copied into
 * the broadcast ring as ONE ring record (type RING_BATCH) whose payload is
 * the batch's journal records exactly as on disk (cqrs_jrec + payload,
 * 8-byte aligned). One claim, one memcpy, one release store per batch.
 *
 * Consuming (projector thread i): poll the longest published run of ring
 * records, and for each projection on this thread: begin a batch on its
 * views, apply every event with seq > its applied_seq, end the batch with
 * the run's last seq (views publish applied_seq, readers waiting for it
 * wake). Then release the run to the producer with one store.
 *
 * Start: each projection resumes from its views' applied_seq (views adopted
 * clean) or from 0 (views rebuilt). Before reading the ring, the thread
 * replays the journal from the lowest resume point up to the seq the ring
 * starts at (the journal's next seq when the engine started); the ring
 * consumer was added at the ring's tail before the command thread started,
 * so no event is missed or seen twice.
 *
 * SHARED threading (cqrs_config.threading): no ring and no threads. The
 * same per-thread groups exist; their catch-up replay runs at start on the
 * starting thread, and each durable batch is applied to every group by the
 * command thread inside cqrs__publish, straight from the journal's bytes.
 * Rebuild and dead-letter-retry requests ring the command thread's
 * doorbell; it carries them out between batches.
 *
 * Failures: an apply that returns an error other than CQRS_EFULL records a
 * dead letter (durably) and the projection skips the event or halts, per
 * its policy. CQRS_EFULL grows the full view: a new generation with twice
 * the capacity of every view of the projection is rebuilt from the journal
 * up to the event before, swapped in (readers follow), and the event is
 * applied again. Rebuild on request (cqrs_engine_rebuild) runs the same
 * rebuild on the projector thread (SHARED: the command thread) while
 * readers keep reading the old generation, then swaps.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "engine/counters.h"
#include "cqrs_ring.h"
#include "engine/engine_internal.h"
#include "core/errors.h"
#include "engine/projector.h"
#include "shm/view_writer.h"
#include "engine/submit.h"

#define RING_BATCH 1u
#define REPLAY_BATCH 4096u /* events per view batch while replaying the journal */

struct proj_view {
	cqrs_view_def def;
	cqrs_vw_config cfg;
	cqrs_vw *w;
};

/* ---- the apply context --------------------------------------------------------- */

static cqrs_vw *writer_of(cqrs_proj *p, uint32_t view)
{
	return view < p->def.nviews ? p->views[view]->w : NULL;
}

int cqrs_proj_upsert(cqrs_proj *p, uint32_t view, const void *row)
{
	cqrs_vw *w = writer_of(p, view);
	return w ? cqrs__vw_upsert(w, row) : -EINVAL;
}

int cqrs_proj_get(cqrs_proj *p, uint32_t view, const void *key, size_t keylen, void *row_out)
{
	cqrs_vw *w = writer_of(p, view);
	return w ? cqrs__vw_get(w, key, keylen, row_out) : -EINVAL;
}

int cqrs_proj_delete(cqrs_proj *p, uint32_t view, const void *key, size_t keylen)
{
	cqrs_vw *w = writer_of(p, view);
	return w ? cqrs__vw_delete(w, key, keylen) : -EINVAL;
}

int cqrs_proj_fail(cqrs_proj *p, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->fail_reason, sizeof p->fail_reason, fmt, ap);
	va_end(ap);
	p->fail_code = code;
	return code;
}

/* ---- view segments: find, adopt, create --------------------------------------- */

/* Highest generation of engine.view found in /dev/shm (0: none). */
static uint64_t last_generation(const char *engine, const char *view)
{
	char prefix[128];
	DIR *d = opendir("/dev/shm");
	struct dirent *ent;
	uint64_t best = 0;
	size_t n;

	if (!d)
		return 0;
	n = (size_t)snprintf(prefix, sizeof prefix, "cqrs.%s.v.%s.", engine, view);
	while ((ent = readdir(d))) {
		char *end;
		unsigned long long g;
		if (strncmp(ent->d_name, prefix, n))
			continue;
		g = strtoull(ent->d_name + n, &end, 10);
		if (*end == 0 && g > best)
			best = g;
	}
	closedir(d);
	return best;
}

static void fill_cfg(cqrs_engine *e, proj_view *pv, uint64_t capacity, uint64_t generation)
{
	uint32_t n = 0;

	memset(&pv->cfg, 0, sizeof pv->cfg);
	pv->cfg.schema = pv->def.row;
	pv->cfg.key_field = pv->def.key_field;
	for (; n < CQRS_MAX_INDEXES && pv->def.index_fields[n]; n++)
		pv->cfg.secondary[n] = pv->def.index_fields[n];
	pv->cfg.nsecondary = n;
	pv->cfg.capacity = capacity;
	pv->cfg.mode = e->cfg.shm_mode;
	pv->cfg.generation = generation;
	pv->cfg.pretouch = e->cfg.pretouch;
}

/* Opens every view of p: adopts clean segments when all of them agree on
 * one applied_seq <= last_seq, else creates fresh ones. *resume gets the
 * seq the projection has applied (0 when rebuilt). */
int cqrs__proj_open_views(cqrs_engine *e, cqrs_proj *p, uint64_t last_seq, uint64_t *resume)
{
	uint64_t applied = UINT64_MAX;
	int adopted = 1, rc;

	for (uint32_t i = 0; i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		uint64_t gen = last_generation(e->name, pv->def.name);

		pv->w = NULL;
		if (!gen) {
			adopted = 0;
			continue;
		}
		fill_cfg(e, pv, pv->def.capacity, gen);
		rc = cqrs__vw_adopt(e->ctl, pv->def.name, gen, &pv->cfg, &pv->w);
		if (rc) {
			cqrs__log(e, CQRS_LOG_INFO, "view %s: generation %llu not resumable (%s): rebuilding",
				  pv->def.name, (unsigned long long)gen, cqrs_strerror(rc));
			adopted = 0;
			continue;
		}
		/* a generation that grew keeps its capacity (the next grow doubles it) */
		pv->def.capacity = pv->cfg.capacity = cqrs__vw_capacity(pv->w);
		if (applied == UINT64_MAX)
			applied = cqrs__vw_applied_seq(pv->w);
		else if (applied != cqrs__vw_applied_seq(pv->w))
			adopted = 0;
	}
	if (adopted && applied != UINT64_MAX && applied > last_seq) {
		cqrs__log(e, CQRS_LOG_WARN,
			  "projection %s: views applied seq %llu but the journal ends at %llu: rebuilding",
			  p->def.name, (unsigned long long)applied, (unsigned long long)last_seq);
		adopted = 0;
	}
	if (!adopted)
		applied = 0;
	for (uint32_t i = 0; i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		if (!adopted) {
			uint64_t gen = last_generation(e->name, pv->def.name);
			if (pv->w) {
				cqrs__vw_retire(pv->w);
				cqrs__vw_close(pv->w);
				pv->w = NULL;
			}
			fill_cfg(e, pv, pv->def.capacity, gen + 1);
			rc = cqrs__vw_create(e->ctl, pv->def.name, &pv->cfg, &pv->w);
			if (rc)
				return cqrs__fail(rc, "view %s: cannot create its segment: %s", pv->def.name,
						 cqrs_last_error());
		}
		rc = cqrs__vw_publish(pv->w);
		if (!rc)
			rc = cqrs__vw_mark_dirty(pv->w);
		if (rc)
			return rc;
	}
	if (adopted)
		cqrs__log(e, CQRS_LOG_INFO, "projection %s: resumed at seq %llu", p->def.name,
			  (unsigned long long)applied);
	*resume = applied;
	return 0;
}

/* ---- applying ----------------------------------------------------------------- */

static void record_dead_letter(cqrs_engine *e, cqrs_proj *p, const cqrs_event *ev, int code)
{
	cqrs_deadletter d = { .seq = ev->seq, .time_ns = cqrs__wall_ns(), .code = code,
			      .kind = CQRS_DL_DEAD };
	int rc;

	snprintf(d.projection, sizeof d.projection, "%s", p->def.name);
	snprintf(d.reason, sizeof d.reason, "%s", p->fail_reason[0] ? p->fail_reason : cqrs_strerror(code));
	pthread_mutex_lock(&e->dl_lock);
	rc = e->dead_letters ? cqrs__dl_append(e->dead_letters, &d) : -EBADF;
	pthread_mutex_unlock(&e->dl_lock);
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

static void begin_all(cqrs_proj *p)
{
	for (uint32_t i = 0; i < p->def.nviews; i++)
		cqrs__vw_begin(p->views[i]->w);
}

static void end_all(cqrs_engine *e, cqrs_proj *p, uint64_t seq)
{
	/* A halted projection's views stay at the event before the one it
	 * could not apply: readers waiting past it must not be told otherwise. */
	if (atomic_load_explicit(&p->halted, memory_order_relaxed) && seq >= p->halted_at)
		seq = p->halted_at - 1;
	if (seq < atomic_load_explicit(&p->applied_seq, memory_order_relaxed))
		seq = atomic_load_explicit(&p->applied_seq, memory_order_relaxed);
	for (uint32_t i = 0; i < p->def.nviews; i++)
		cqrs__vw_end(p->views[i]->w, seq);
	/* release: pairs with stop's acquire load; the views themselves publish
	 * applied_seq to readers with their own release store. */
	atomic_store_explicit(&p->applied_seq, seq, memory_order_release);
	CTR_SET(e->ctr, proj[p->index].applied_seq, seq);
}

static int grow_and_rebuild(cqrs_engine *e, cqrs_proj *p, uint64_t upto, int grow);

/* Applies one event to p (inside an open batch). */
static void apply_one(cqrs_engine *e, cqrs_proj *p, const cqrs_event *ev)
{
	int rc;

	/* relaxed: only this thread sets halted. */
	if (ev->seq <= atomic_load_explicit(&p->applied_seq, memory_order_relaxed) ||
	    atomic_load_explicit(&p->halted, memory_order_relaxed))
		return;
	p->fail_code = 0;
	p->fail_reason[0] = 0;
	rc = p->def.apply(p, ev, p->def.arg);
	if (rc == CQRS_EFULL) {
		/* The batch so far is published, every view of p regrows from
		 * the journal up to ev->seq - 1, and ev is applied again. */
		end_all(e, p, ev->seq - 1);
		rc = grow_and_rebuild(e, p, ev->seq - 1, 1);
		begin_all(p);
		if (rc == 0) {
			p->fail_code = 0;
			p->fail_reason[0] = 0;
			rc = p->def.apply(p, ev, p->def.arg);
		}
	}
	if (rc)
		record_dead_letter(e, p, ev, rc);
}

static cqrs_event event_of(const cqrs_jrec *r)
{
	return (cqrs_event){ .seq = r->seq, .timestamp_ns = r->timestamp_ns,
			     .aggregate_id = r->aggregate_id,
			     .aggregate_version = r->aggregate_version, .type = r->type,
			     .size = r->size, .data = cqrs__jrec_payload(r) };
}

/* Replays journal seqs (from, upto] into p's current views (or, with
 * only != NULL, into that projection alone). Batches of REPLAY_BATCH. */
static int replay_into(cqrs_engine *e, cqrs_proj **projs, uint32_t n, uint64_t from, uint64_t upto)
{
	cqrs_journal_iter *it;
	const cqrs_jrec *r;
	uint64_t in_batch = 0, last = from;
	int rc;

	if (upto <= from)
		return 0;
	rc = cqrs__journal_iter_open(&it, e->journal_dir, from + 1);
	if (rc)
		return rc;
	for (uint32_t k = 0; k < n; k++)
		begin_all(projs[k]);
	while ((rc = cqrs__journal_iter_next(it, &r)) == 1 && r->seq <= upto) {
		cqrs_event ev = event_of(r);
		for (uint32_t k = 0; k < n; k++)
			apply_one(e, projs[k], &ev);
		last = r->seq;
		if (++in_batch == REPLAY_BATCH) {
			for (uint32_t k = 0; k < n; k++) {
				end_all(e, projs[k], last);
				begin_all(projs[k]);
			}
			in_batch = 0;
		}
	}
	for (uint32_t k = 0; k < n; k++)
		end_all(e, projs[k], last > atomic_load_explicit(&projs[k]->applied_seq, memory_order_relaxed)
					     ? last : atomic_load_explicit(&projs[k]->applied_seq, memory_order_relaxed));
	cqrs__journal_iter_close(it);
	if (rc < 0)
		return rc;
	if (last < upto)
		return cqrs__fail(CQRS_ECORRUPT, "journal ended at seq %llu, needed %llu",
				 (unsigned long long)last, (unsigned long long)upto);
	return 0;
}

/* Rebuilds every view of p into a new generation (capacity doubled when
 * grow) from the journal up to `upto`, then swaps: publish new, retire old.
 * Readers keep reading the old generation until the swap. */
static int grow_and_rebuild(cqrs_engine *e, cqrs_proj *p, uint64_t upto, int grow)
{
	proj_view *old[CQRS_MAX_VIEWS_PER_PROJECTION], fresh[CQRS_MAX_VIEWS_PER_PROJECTION];
	cqrs_proj shadow = *p;
	int rc = 0;

	for (uint32_t i = 0; i < p->def.nviews; i++) {
		proj_view *pv = p->views[i];
		uint64_t cap = grow ? pv->def.capacity * 2 : pv->def.capacity;
		fresh[i] = *pv;
		fresh[i].def.capacity = cap;
		fill_cfg(e, &fresh[i], cap, cqrs__vw_generation(pv->w) + 1);
		/* a rebuild runs beside the live projection: rows in windows */
		fresh[i].cfg.pretouch = 0;
		rc = cqrs__vw_create(e->ctl, pv->def.name, &fresh[i].cfg, &fresh[i].w);
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
	{
		cqrs_proj *one = &shadow;
		rc = replay_into(e, &one, 1, 0, upto);
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

/* ---- the projector thread ------------------------------------------------------ */

typedef struct projector {
	cqrs_engine *e;
	uint32_t index;
	cqrs_bcast_consumer *consumer;
	cqrs_proj *projs[CQRS_MAX_PROJECTIONS];
	uint32_t nprojs;
	uint64_t ring_start; /* first seq the ring will carry */
	_Atomic uint64_t ring_pos; /* consumer position, for the occupancy counter */
	uint64_t seen_seq;         /* last seq handed to this thread */
} projector;

/* Applies the journal records [j, jend) to every projection of t (inside
 * an open batch); returns the last seq seen, 0 for none. */
static uint64_t apply_records(projector *t, const uint8_t *j, const uint8_t *jend, uint64_t *events)
{
	uint64_t last = 0;

	while (j < jend) {
		const cqrs_jrec *r = (const cqrs_jrec *)(const void *)j;
		cqrs_event ev = event_of(r);
		for (uint32_t k = 0; k < t->nprojs; k++)
			apply_one(t->e, t->projs[k], &ev);
		last = r->seq;
		(*events)++;
		j += cqrs__jrec_span(r);
	}
	return last;
}

static void begin_batch(projector *t)
{
	for (uint32_t k = 0; k < t->nprojs; k++)
		begin_all(t->projs[k]);
}

/* Publishes applied_seq for the batch just applied (last 0: none). */
static void end_batch(projector *t, uint64_t last, uint64_t events)
{
	cqrs_engine *e = t->e;

	if (last)
		t->seen_seq = last;
	for (uint32_t k = 0; k < t->nprojs; k++) {
		cqrs_proj *pr = t->projs[k];
		end_all(e, pr, last);
		CTR_ADD(e->ctr, proj[pr->index].events, events);
		CTR_ADD(e->ctr, proj[pr->index].batches, 1);
	}
}

/* A run of ring records, each one journaled batch. */
static void apply_run(projector *t, const void *recs, size_t nbytes)
{
	const uint8_t *p = recs, *end = p + nbytes;
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

static int stop_requested(cqrs_engine *e, projector *t)
{
	uint64_t published;

	/* acquire: pairs with cqrs_engine_stop's release of the state. */
	if (atomic_load_explicit(&e->state, memory_order_acquire) < ENGINE_STOPPING)
		return 0;
	/* acquire: pairs with the command thread's release of command_done,
	 * stored after its last publish: published_seq is final below. */
	if (!atomic_load_explicit(&e->command_done, memory_order_acquire))
		return 0;
	published = atomic_load_explicit(&e->published_seq, memory_order_relaxed);
	for (uint32_t k = 0; k < t->nprojs; k++)
		if (atomic_load_explicit(&t->projs[k]->applied_seq, memory_order_relaxed) < published &&
		    !atomic_load_explicit(&t->projs[k]->halted, memory_order_relaxed))
			return 0;
	return 1;
}

static void poll_requests(cqrs_engine *e, projector *t, cqrs_proj *p);

/* Catches t's projections up from the journal to where the ring starts
 * (they resume from their views' applied_seq). */
static void catch_up(projector *t)
{
	cqrs_engine *e = t->e;
	uint64_t from = UINT64_MAX;
	int rc;

	for (uint32_t k = 0; k < t->nprojs; k++) {
		uint64_t a = atomic_load_explicit(&t->projs[k]->applied_seq, memory_order_relaxed);
		if (a < from)
			from = a;
	}
	if (!t->nprojs || from + 1 >= t->ring_start)
		return;
	rc = replay_into(e, t->projs, t->nprojs, from, t->ring_start - 1);
	if (!rc)
		return;
	/* Its projections cannot catch up: halt them (readers keep what they
	 * have, stop does not wait for them, a restart rebuilds). */
	cqrs__log(e, CQRS_LOG_ERROR, "projector %u: journal replay failed: %s (%s)", t->index,
		  cqrs_strerror(rc), cqrs_last_error());
	for (uint32_t k = 0; k < t->nprojs; k++) {
		cqrs_proj *p = t->projs[k];
		uint64_t a = atomic_load_explicit(&p->applied_seq, memory_order_relaxed);
		if (a + 1 < t->ring_start) {
			p->halted_at = a + 1;
			atomic_store_explicit(&p->halted, 1, memory_order_relaxed); /* owner */
			CTR_SET(e->ctr, proj[p->index].halted, 1);
		}
	}
}

static void *projector_main(void *arg)
{
	projector *t = arg;
	cqrs_engine *e = t->e;
	int rc;

	catch_up(t);
	for (;;) {
		const void *recs;
		size_t nbytes;

		rc = cqrs_bcast_poll(t->consumer, &recs, &nbytes);
		if (rc == 0) {
			apply_run(t, recs, nbytes);
			cqrs_bcast_release(t->consumer, nbytes);
			/* relaxed: a statistic read by the command thread. */
			atomic_store_explicit(&t->ring_pos, cqrs_bcast_consumer_position(t->consumer),
					      memory_order_relaxed);
			continue;
		}
		if (rc != -EAGAIN) {
			cqrs__log(e, CQRS_LOG_ERROR, "projector %u: ring failed: %s", t->index,
				  cqrs_strerror(rc));
			break;
		}
		for (uint32_t k = 0; k < t->nprojs; k++)
			poll_requests(e, t, t->projs[k]);
		if (stop_requested(e, t))
			break;
		/* Idle: yield for a while (the next batch usually follows within
		 * microseconds), then sleep on the ring's futex. */
		if (e->cfg.idle_yield_us &&
		    cqrs_bcast_wait(t->consumer, CQRS_WAIT_YIELD, (uint64_t)e->cfg.idle_yield_us * 1000) == 0)
			continue;
		cqrs_bcast_wait(t->consumer, CQRS_WAIT_BLOCK, 5000000);
	}
	return NULL;
}

/* SHARED threading: the command thread applies a durable batch to every
 * projection itself. */
static void apply_shared(cqrs_engine *e, const void *records, size_t bytes)
{
	projector *ts = e->projectors;

	if (!ts) /* stopped: the views are closed */
		return;
	for (uint32_t i = 0; i < e->cfg.projector_threads; i++) {
		projector *t = &ts[i];
		uint64_t events = 0, last;

		if (!t->nprojs)
			continue;
		begin_batch(t);
		last = apply_records(t, records, (const uint8_t *)records + bytes, &events);
		end_batch(t, last, events);
	}
}

bool cqrs__projectors_requested(cqrs_engine *e)
{
	for (uint32_t k = 0; k < e->nprojs; k++)
		/* seq_cst: pairs with the requester's seq_cst exchange in
		 * cqrs_engine_rebuild / cqrs_engine_retry_dead_letters. */
		if (atomic_load_explicit(&e->projs[k]->rebuild_requested, memory_order_seq_cst) ||
		    atomic_load_explicit(&e->projs[k]->retry_requested, memory_order_seq_cst))
			return true;
	return false;
}

void cqrs__projectors_poll_shared(cqrs_engine *e)
{
	projector *ts = e->projectors;

	if (!ts)
		return;
	for (uint32_t i = 0; i < e->cfg.projector_threads; i++)
		for (uint32_t k = 0; k < ts[i].nprojs; k++)
			poll_requests(e, &ts[i], ts[i].projs[k]);
}

/* ---- requests: rebuild, dead-letter retry --------------------------------------------- */

typedef struct open_letters {
	const char *projection;
	uint64_t seqs[1024];
	uint32_t n;
} open_letters;

static void collect_open(void *arg, const cqrs_deadletter *d)
{
	open_letters *o = arg;

	if (strcmp(d->projection, o->projection))
		return;
	if (d->kind == CQRS_DL_RESOLVED) {
		for (uint32_t i = 0; i < o->n; i++)
			if (o->seqs[i] == d->seq)
				o->seqs[i] = o->seqs[--o->n];
	} else if (o->n < 1024) {
		o->seqs[o->n++] = d->seq;
	}
}

static void mark_resolved(cqrs_engine *e, cqrs_proj *p, uint64_t seq)
{
	cqrs_deadletter d = { .seq = seq, .time_ns = cqrs__wall_ns(), .kind = CQRS_DL_RESOLVED };

	snprintf(d.projection, sizeof d.projection, "%s", p->def.name);
	snprintf(d.reason, sizeof d.reason, "retry succeeded");
	pthread_mutex_lock(&e->dl_lock);
	if (e->dead_letters)
		cqrs__dl_append(e->dead_letters, &d);
	pthread_mutex_unlock(&e->dl_lock);
}

/* Applies the open dead letters of p again, each from the journal, in seq
 * order; a success is recorded as resolved. A halted projection resumes:
 * everything from the event that halted it up to what this thread has
 * seen is replayed. */
static void retry_dead_letters(cqrs_engine *e, projector *t, cqrs_proj *p)
{
	static open_letters o; /* projector threads retry one at a time (cold) */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int halted = atomic_load_explicit(&p->halted, memory_order_relaxed);

	pthread_mutex_lock(&lock);
	memset(&o, 0, sizeof o);
	o.projection = p->def.name;
	cqrs__dl_read(e->data_dir, collect_open, &o, NULL);
	for (uint32_t i = 0; i < o.n; i++) {
		cqrs_journal_iter *it;
		const cqrs_jrec *r;
		cqrs_event ev;
		int rc;

		if (halted && o.seqs[i] >= p->halted_at)
			continue; /* replayed below */
		if (cqrs__journal_iter_open(&it, e->journal_dir, o.seqs[i]))
			continue;
		if (cqrs__journal_iter_next(it, &r) == 1 && r->seq == o.seqs[i]) {
			ev = event_of(r);
			begin_all(p);
			p->fail_code = 0;
			p->fail_reason[0] = 0;
			rc = p->def.apply(p, &ev, p->def.arg);
			end_all(e, p, atomic_load_explicit(&p->applied_seq, memory_order_relaxed));
			if (rc == 0)
				mark_resolved(e, p, ev.seq);
		}
		cqrs__journal_iter_close(it);
	}
	if (halted) {
		uint64_t at = p->halted_at;
		atomic_store_explicit(&p->halted, 0, memory_order_relaxed); /* owner thread */
		CTR_SET(e->ctr, proj[p->index].halted, 0);
		replay_into(e, &p, 1, at - 1, t->seen_seq);
		if (!atomic_load_explicit(&p->halted, memory_order_relaxed) || p->halted_at != at)
			mark_resolved(e, p, at);
	}
	pthread_mutex_unlock(&lock);
	cqrs__log(e, CQRS_LOG_INFO, "projection %s: dead letters retried", p->def.name);
}

static void poll_requests(cqrs_engine *e, projector *t, cqrs_proj *p)
{
	/* acquire: pairs with the requester's seq_cst exchange. */
	if (atomic_load_explicit(&p->rebuild_requested, memory_order_acquire)) {
		atomic_store_explicit(&p->rebuild_requested, 0, memory_order_relaxed); /* owner */
		grow_and_rebuild(e, p, atomic_load_explicit(&p->applied_seq, memory_order_relaxed), 0);
	}
	/* acquire: pairs with the requester's seq_cst exchange. */
	if (atomic_load_explicit(&p->retry_requested, memory_order_acquire)) {
		atomic_store_explicit(&p->retry_requested, 0, memory_order_relaxed); /* owner */
		retry_dead_letters(e, t, p);
	}
}

static cqrs_proj *find_projection(cqrs_engine *e, const char *name)
{
	for (uint32_t i = 0; i < e->nprojs; i++)
		if (!strcmp(e->projs[i]->def.name, name))
			return e->projs[i];
	return NULL;
}

int cqrs_engine_rebuild(cqrs_engine *e, const char *projection)
{
	cqrs_proj *p = find_projection(e, projection);

	if (!p)
		return CQRS_ENOTFOUND;
	/* seq_cst RMW (cqrs__ring_wake's contract): the projector acts on it
	 * with acquire; in SHARED threading it pairs with the sleeping command
	 * thread's seq_cst count of waiters and re-check of this flag
	 * (cqrs__projectors_requested), so the kick below cannot be lost. */
	(void)atomic_exchange_explicit(&p->rebuild_requested, 1, memory_order_seq_cst);
	cqrs__submit_kick(e);
	return 0;
}

int cqrs_engine_retry_dead_letters(cqrs_engine *e, const char *projection)
{
	cqrs_proj *p = find_projection(e, projection);

	if (!p)
		return CQRS_ENOTFOUND;
	/* seq_cst RMW (cqrs__ring_wake's contract): the projector acts on it
	 * with acquire; in SHARED threading it pairs with the sleeping command
	 * thread's seq_cst count of waiters and re-check of this flag
	 * (cqrs__projectors_requested), so the kick below cannot be lost. */
	(void)atomic_exchange_explicit(&p->retry_requested, 1, memory_order_seq_cst);
	cqrs__submit_kick(e);
	return 0;
}

/* ---- setup / teardown -------------------------------------------------------------- */

int cqrs_register_projection(cqrs_engine *e, const cqrs_projection_def *def)
{
	cqrs_proj *p;

	if (atomic_load_explicit(&e->state, memory_order_relaxed) != ENGINE_OPEN)
		return cqrs__fail(-EINVAL, "register before cqrs_engine_start");
	if (!def || !def->name || !def->apply || def->nviews == 0 ||
	    def->nviews > CQRS_MAX_VIEWS_PER_PROJECTION)
		return cqrs__fail(-EINVAL, "projection needs a name, an apply and 1..%d views",
				 CQRS_MAX_VIEWS_PER_PROJECTION);
	if (def->thread >= e->cfg.projector_threads)
		return cqrs__fail(-EINVAL, "projection %s: thread %u but only %u projector threads",
				 def->name, def->thread, e->cfg.projector_threads);
	if (e->nprojs == CQRS_MAX_PROJECTIONS || e->nprojs == CQRS_COUNTERS_MAX_PROJ)
		return cqrs__fail(CQRS_EFULL, "too many projections");
	for (uint32_t i = 0; i < e->nprojs; i++)
		if (!strcmp(e->projs[i]->def.name, def->name))
			return cqrs__fail(-EEXIST, "projection %s registered twice", def->name);
	for (uint32_t i = 0; i < sizeof def->reserved / sizeof def->reserved[0]; i++)
		if (def->reserved[i])
			return cqrs__fail(-EINVAL, "projection %s: reserved[%u] is set", def->name, i);
	for (uint32_t i = 0; i < def->nviews; i++) {
		const cqrs_view_def *v = &def->views[i];
		for (uint32_t j = 0; j < sizeof v->reserved / sizeof v->reserved[0]; j++)
			if (v->reserved[j])
				return cqrs__fail(-EINVAL, "projection %s: view %u: reserved[%u] is set",
						  def->name, i, j);
		if (!v->name || !v->row || !v->key_field || v->capacity == 0)
			return cqrs__fail(-EINVAL, "projection %s: view %u needs name, row schema, key, capacity",
					 def->name, i);
		if (cqrs_schema_validate(v->row))
			return CQRS_EFORMAT;
	}
	p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->e = e;
	p->def = *def;
	p->index = e->nprojs;
	for (uint32_t i = 0; i < def->nviews; i++) {
		p->views[i] = calloc(1, sizeof(proj_view));
		if (!p->views[i]) {
			while (i-- > 0)
				free(p->views[i]);
			free(p);
			return -ENOMEM;
		}
		p->views[i]->def = def->views[i];
	}
	e->projs[e->nprojs++] = p;
	return 0;
}

int cqrs__projectors_start(cqrs_engine *e, uint64_t ring_start)
{
	uint32_t n = e->cfg.projector_threads;
	int shared = e->cfg.threading == CQRS_THREADING_SHARED;
	projector *ts = calloc(n, sizeof *ts);
	int rc;

	if (!ts)
		return -ENOMEM;
	e->projectors = ts;
	for (uint32_t i = 0; i < n; i++) {
		ts[i].e = e;
		ts[i].index = i;
		ts[i].ring_start = ring_start;
		ts[i].seen_seq = ring_start - 1;
		if (shared)
			continue; /* the command thread applies: no ring */
		rc = cqrs_bcast_consumer_add_at_tail(e->bcast, &ts[i].consumer);
		if (rc)
			return rc;
		atomic_store_explicit(&ts[i].ring_pos, cqrs_bcast_consumer_position(ts[i].consumer),
				      memory_order_relaxed); /* before the thread starts */
	}
	for (uint32_t k = 0; k < e->nprojs; k++) {
		projector *t = &ts[e->projs[k]->def.thread];
		t->projs[t->nprojs++] = e->projs[k];
	}
	if (shared) {
		/* Before the command thread starts: it applies from ring_start on. */
		for (uint32_t i = 0; i < n; i++)
			catch_up(&ts[i]);
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		char name[16];

		rc = pthread_create(&e->projector_threads[i], NULL, projector_main, &ts[i]);
		if (rc) {
			e->nprojectors = i;
			return -rc;
		}
		snprintf(name, sizeof name, "cqrs-proj%02u", i % 100u); /* 15 characters at most */
		pthread_setname_np(e->projector_threads[i], name);
	}
	e->nprojectors = n;
	return 0;
}

/* Joins the projector threads (they exit once stop is requested and every
 * published event is applied), marks views clean and closes them. */
void cqrs__projectors_join(cqrs_engine *e, int clean)
{
	projector *ts = e->projectors;

	for (uint32_t i = 0; i < e->nprojectors; i++)
		pthread_join(e->projector_threads[i], NULL);
	e->nprojectors = 0;
	for (uint32_t k = 0; k < e->nprojs; k++) {
		cqrs_proj *p = e->projs[k];
		for (uint32_t i = 0; i < p->def.nviews; i++) {
			if (!p->views[i]->w)
				continue;
			if (clean)
				cqrs__vw_mark_clean(p->views[i]->w);
			cqrs__vw_close(p->views[i]->w);
			p->views[i]->w = NULL;
		}
	}
	if (ts) {
		for (uint32_t i = 0; i < e->cfg.projector_threads; i++)
			if (ts[i].consumer)
				cqrs_bcast_consumer_remove(ts[i].consumer);
		free(ts);
	}
	e->projectors = NULL;
}

void cqrs__projections_free(cqrs_engine *e)
{
	for (uint32_t k = 0; k < e->nprojs; k++) {
		for (uint32_t i = 0; i < e->projs[k]->def.nviews; i++)
			free(e->projs[k]->views[i]);
		free(e->projs[k]);
	}
	e->nprojs = 0;
}

/* ---- publishing (command thread) ------------------------------------------------------ */

void cqrs__publish(cqrs_engine *e, const void *records, size_t bytes, uint64_t last_seq)
{
	void *dst;
	int rc;

	if (e->cfg.threading == CQRS_THREADING_SHARED) {
		apply_shared(e, records, bytes);
	} else if (e->nprojs) {
		rc = cqrs_bcast_claim(e->bcast, RING_BATCH, (uint32_t)bytes, CQRS_WAIT_BLOCK,
				      CQRS_RING_FOREVER, &dst);
		if (rc == 0) {
			memcpy(dst, records, bytes);
			cqrs_bcast_publish(e->bcast);
		} else {
			cqrs__log(e, CQRS_LOG_ERROR, "publish of seq %llu failed: %s",
				  (unsigned long long)last_seq, cqrs_strerror(rc));
		}
	}
	/* release: pairs with the projectors' acquire in stop_requested. */
	atomic_store_explicit(&e->published_seq, last_seq, memory_order_release);
	CTR_SET(e->ctr, published_seq, last_seq);
	if (e->bcast && e->projectors) {
		projector *ts = e->projectors;
		uint64_t tail = cqrs_bcast_tail(e->bcast), low = tail;
		for (uint32_t i = 0; i < e->nprojectors; i++) {
			/* relaxed: statistics only. */
			uint64_t pos = atomic_load_explicit(&ts[i].ring_pos, memory_order_relaxed);
			if (pos < low)
				low = pos;
		}
		CTR_SET(e->ctr, ring_used, tail - low);
	}
}
