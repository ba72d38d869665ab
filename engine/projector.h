/*
 * engine/projector.h - the projector side of the engine, shared by its
 * files (each opens with what it does):
 *   projection.c        registration, the cqrs_proj_* apply API, rebuild and
 *                       retry requests
 *   proj_views.c        a projection's view segments: adopt clean ones,
 *                       create the rest, close at stop
 *   proj_apply.c        applying events to projections, in batches
 *   proj_rebuild.c      replay from the journal; rebuild into a new
 *                       generation (grown when a view is full)
 *   proj_deadletter.c   recording refused events; retrying them
 *   projector_thread.c  one projector thread's step and loop; start, join
 * publish.c hands durable batches to them (engine/publish.h).
 *
 * Each projection belongs to one projector (cqrs_projection_def.thread):
 * a group applied together, by its own thread in DEDICATED threading, by
 * the command thread in SHARED threading. Everything of a group is touched
 * only by the thread that runs it, except the atomics of cqrs_proj.
 */
#ifndef CQRS_ENGINE_PROJECTOR_H
#define CQRS_ENGINE_PROJECTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cqrs_ring.h"
#include "engine/engine_internal.h"
#include "engine/journal/journal.h"
#include "shm/view_writer.h"

/* One view of a projection and its writer. */
struct proj_view {
	cqrs_view_def def;
	cqrs_vw_config cfg;
	cqrs_vw *w;
};

/* One projector: the projections one thread applies (cqrs_engine.projectors
 * holds cfg.projector_threads of them). */
struct projector {
	cqrs_engine *e;
	uint32_t index;
	cqrs_bcast_consumer *consumer; /* DEDICATED threading; NULL in SHARED */
	cqrs_proj *projs[CQRS_MAX_PROJECTIONS];
	uint32_t nprojs;
	uint64_t ring_start;       /* first seq the ring carries */
	_Atomic uint64_t ring_pos; /* consumer position, for the occupancy counter */
	uint64_t seen_seq;         /* last seq handed to this projector */
	uint64_t *open_letters;    /* dead-letter retry's buffer (proj_deadletter.c) */
	uint32_t nopen, open_cap;
};

/* The journal record r as the event apply sees (payload in place). */
static inline cqrs_event cqrs__proj_event_of(const cqrs_jrec *r)
{
	return (cqrs_event){ .seq = r->seq, .timestamp_ns = r->timestamp_ns,
			     .aggregate_id = r->aggregate_id,
			     .aggregate_version = r->aggregate_version, .type = r->type,
			     .size = r->size, .data = cqrs__jrec_payload(r) };
}

/* ---- projection.c ---- */
cqrs_proj *cqrs__proj_find(cqrs_engine *e, const char *name);
void cqrs__projections_free(cqrs_engine *e);

/* ---- proj_views.c ---- */
/* Opens (adopts or creates) the projection's views; *resume = the seq it
 * has applied. Before the projectors start. */
int cqrs__proj_open_views(cqrs_engine *e, cqrs_proj *p, uint64_t last_seq, uint64_t *resume);
/* pv's writer configuration for a generation of the given capacity. */
void cqrs__proj_view_config(const cqrs_engine *e, proj_view *pv, uint64_t capacity,
			    uint64_t generation);
/* Creates the writer of a new generation of pv's view from cfg (its
 * generation the first number tried) into *out. A number whose name
 * another user took (/dev/shm is writable by everyone, and the next
 * number is easy to guess) is skipped for the next one. 0 or an error
 * from cqrs__vw_create. */
int cqrs__proj_view_create(cqrs_engine *e, const char *view, cqrs_vw_config *cfg, cqrs_vw **out);
/* At stop: marks every view clean (when clean) and closes it. */
void cqrs__proj_close_views(cqrs_engine *e, int clean);

/* ---- proj_apply.c ---- */
/* Opens / publishes a batch on every view of p; end publishes applied_seq
 * (held at the event before a halt). */
void cqrs__proj_begin(cqrs_proj *p);
void cqrs__proj_end(cqrs_engine *e, cqrs_proj *p, uint64_t seq);
/* Applies one event to p inside an open batch: a full view grows the
 * projection (proj_rebuild.c), a refused event is dead-lettered. */
void cqrs__proj_apply(cqrs_engine *e, cqrs_proj *p, const cqrs_event *ev);
/* Applies the journal records [recs, recs + bytes) to every projection of
 * t as one batch per projection. */
void cqrs__projector_apply_batch(projector *t, const void *recs, size_t bytes);
/* The same over a run of broadcast ring records, each a journal batch. */
void cqrs__projector_apply_run(projector *t, const void *recs, size_t bytes);

/* ---- proj_rebuild.c ---- */
/* Replays journal seqs (from, upto] into the current views of projs[0..n). */
int cqrs__proj_replay(cqrs_engine *e, cqrs_proj **projs, uint32_t n, uint64_t from, uint64_t upto);
/* Rebuilds every view of p into a new generation from the journal up to
 * upto, then swaps it in; grow: the rows copied into a generation of twice
 * the capacity instead (no journal read). */
int cqrs__proj_rebuild(cqrs_engine *e, cqrs_proj *p, uint64_t upto, int grow);

/* Makes the views of p that could not be made at start (no room), empty;
 * 0 or the error (a shortage leaves the rest for the next attempt). */
int cqrs__proj_create_missing(cqrs_engine *e, cqrs_proj *p);

/* ---- proj_stall.c ---- */
/* Whether code is a shortage that goes away by itself (no room in
 * /dev/shm, no memory): the projection stalls instead of dead-lettering. */
bool cqrs__proj_shortage(int code);
/* p could not grow to apply the event at seq: stalls it (no dead letter). */
void cqrs__proj_stall(cqrs_engine *e, cqrs_proj *p, uint64_t seq, int code);
/* When a stalled p's next attempt is due: grows it again and, once that
 * works, catches it up from the journal to upto. Returns 1 when p resumed. */
uint32_t cqrs__proj_stall_retry(cqrs_engine *e, cqrs_proj *p, uint64_t upto);

/* ---- proj_deadletter.c ---- */
/* Records ev as a dead letter of p (durably) and halts p when its policy
 * says so. */
void cqrs__proj_dead_letter(cqrs_engine *e, cqrs_proj *p, const cqrs_event *ev, int code);
/* Applies p's open dead letters again; resumes p when halted. */
void cqrs__proj_retry_dead_letters(cqrs_engine *e, projector *t, cqrs_proj *p);

/* ---- projector_thread.c ---- */
/* Starts the projectors; the ring carries seqs from ring_start on. SHARED
 * threading: catches up on this thread, starts none. */
int cqrs__projectors_start(cqrs_engine *e, uint64_t ring_start);
/* After the command thread is done: joins the threads, closes the views. */
void cqrs__projectors_join(cqrs_engine *e, int clean);
/* SHARED threading's step on the command thread: rebuild and dead-letter
 * retry requests. Returns how many were carried out. */
uint32_t cqrs__projectors_do_requests(cqrs_engine *e);
/* Whether a rebuild or retry request is pending (seq_cst loads). */
bool cqrs__projectors_requested(cqrs_engine *e);

#endif
