/*
 * engine/projector_thread.c - a projector's thread: its step (apply what
 * the broadcast ring holds, carry out rebuild and dead-letter retry
 * requests and a stalled projection's next attempt to grow), its loop (steps until stop, idling with engine/idle.h), and
 * starting and joining the projectors.
 *
 * Start: each projection resumes from its views' applied_seq (views
 * adopted clean) or from 0 (views created). Before reading the ring, a
 * projector replays the journal from its lowest resume point up to the seq
 * the ring starts at (the journal's next seq when the engine started); its
 * ring consumer was added at the ring's tail before the command thread
 * started, so no event is missed or seen twice.
 *
 * SHARED threading (cqrs_config.threading): no ring and no threads. The
 * same projectors exist; their catch-up replay runs at start on the
 * starting thread, publish.c applies each durable batch to them on the
 * command thread, and the command thread's step includes
 * cqrs__projectors_do_requests (engine/command_thread.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/errors.h"
#include "engine/checkpoint.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/idle.h"
#include "engine/projector.h"

#define BLOCK_NS UINT64_C(5000000) /* longest sleep on the ring: requests and stop are polled */

/* Carries out p's pending rebuild and retry requests; returns how many. */
static uint32_t do_requests(cqrs_engine *e, projector *t, cqrs_proj *p)
{
	uint32_t n = 0;

	/* relaxed: stalled is written by this thread. A stalled projection
	 * rebuilds and retries by itself once it has room: requests meanwhile
	 * are dropped (said in the log), not left pending to spin on. */
	if (atomic_load_explicit(&p->stalled, memory_order_relaxed)) {
		if (atomic_exchange_explicit(&p->rebuild_requested, 0, memory_order_acquire) |
		    atomic_exchange_explicit(&p->retry_requested, 0, memory_order_acquire))
			cqrs__log(e, CQRS_LOG_WARN, "projection %s: stalled (no room): request dropped",
				  p->def.name);
		return cqrs__proj_stall_retry(e, p, t->seen_seq);
	}

	/* acquire: pairs with the requester's seq_cst exchange. */
	if (atomic_load_explicit(&p->rebuild_requested, memory_order_acquire)) {
		atomic_store_explicit(&p->rebuild_requested, 0, memory_order_relaxed); /* owner */
		cqrs__proj_rebuild(e, p, atomic_load_explicit(&p->applied_seq, memory_order_relaxed), 0);
		n++;
	}
	/* acquire: pairs with the requester's seq_cst exchange. */
	if (atomic_load_explicit(&p->retry_requested, memory_order_acquire)) {
		atomic_store_explicit(&p->retry_requested, 0, memory_order_relaxed); /* owner */
		cqrs__proj_retry_dead_letters(e, t, p);
		n++;
	}
	/* acquire: pairs with cqrs_engine_checkpoint's seq_cst exchange; the
	 * tick clears it once a checkpoint started (or none is needed) */
	if (atomic_load_explicit(&p->ckpt_requested, memory_order_acquire)) {
		cqrs__checkpoint_tick(e, p);
		/* relaxed: the tick on this thread clears it once served; one
		 * still pending (another checkpoint in flight) is no work done,
		 * so the thread may idle and look again */
		if (!atomic_load_explicit(&p->ckpt_requested, memory_order_relaxed))
			n++;
	}
	return n;
}

bool cqrs__projectors_requested(cqrs_engine *e)
{
	for (uint32_t k = 0; k < e->nprojs; k++)
		/* seq_cst: pairs with the requester's seq_cst exchange in
		 * cqrs_engine_rebuild / cqrs_engine_retry_dead_letters. */
		if (atomic_load_explicit(&e->projs[k]->rebuild_requested, memory_order_seq_cst) ||
		    atomic_load_explicit(&e->projs[k]->retry_requested, memory_order_seq_cst))
			return true;
	return cqrs__checkpoint_requested(e);
}

uint32_t cqrs__projectors_do_requests(cqrs_engine *e)
{
	projector *ts = e->projectors;
	uint32_t n = 0;

	if (!ts)
		return 0;
	for (uint32_t i = 0; i < e->cfg.projector_threads; i++)
		for (uint32_t k = 0; k < ts[i].nprojs; k++)
			n += do_requests(e, &ts[i], ts[i].projs[k]);
	return n;
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
		    !atomic_load_explicit(&t->projs[k]->halted, memory_order_relaxed) &&
		    !atomic_load_explicit(&t->projs[k]->stalled, memory_order_relaxed))
			return 0;
	return 1;
}

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
	rc = cqrs__proj_replay(e, t->projs, t->nprojs, from, t->ring_start - 1);
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

/* One step of a projector thread: applies the longest published run of
 * ring records, else carries out requests. Returns the work done, or -1
 * when the ring failed. */
static int do_work(projector *t)
{
	const void *recs;
	size_t nbytes;
	uint32_t n = 0;
	int rc = cqrs_bcast_poll(t->consumer, &recs, &nbytes);

	if (rc == 0) {
		cqrs__projector_apply_run(t, recs, nbytes);
		cqrs_bcast_release(t->consumer, nbytes);
		/* relaxed: a statistic read by the command thread. */
		atomic_store_explicit(&t->ring_pos, cqrs_bcast_consumer_position(t->consumer),
				      memory_order_relaxed);
		return 1;
	}
	if (rc != -EAGAIN) {
		cqrs__log(t->e, CQRS_LOG_ERROR, "projector %u: ring failed: %s", t->index,
			  cqrs_strerror(rc));
		return -1;
	}
	for (uint32_t k = 0; k < t->nprojs; k++)
		n += do_requests(t->e, t, t->projs[k]);
	return (int)n;
}

/* The idle wait: until the ring has records (or the time runs out). */
static int wait_ring(void *arg, cqrs_ring_wait kind, uint64_t timeout_ns)
{
	projector *t = arg;

	return cqrs_bcast_wait(t->consumer, kind, timeout_ns);
}

static void *projector_main(void *arg)
{
	projector *t = arg;
	cqrs_engine *e = t->e;
	cqrs_idle idle;

	cqrs__idle_init(&idle, (uint64_t)e->cfg.idle_yield_us * 1000);
	catch_up(t);
	for (;;) {
		int n = do_work(t);

		if (n < 0)
			break;
		if (n == 0 && stop_requested(e, t))
			break;
		cqrs__idle(&idle, (uint32_t)n, wait_ring, t, BLOCK_NS);
	}
	return NULL;
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
	cqrs__checkpoint_close(e, clean); /* the checkpoint at stop reads the views */
	cqrs__proj_close_views(e, clean);
	if (ts) {
		for (uint32_t i = 0; i < e->cfg.projector_threads; i++) {
			if (ts[i].consumer)
				cqrs_bcast_consumer_remove(ts[i].consumer);
			free(ts[i].open_letters);
		}
		free(ts);
	}
	e->projectors = NULL;
}
