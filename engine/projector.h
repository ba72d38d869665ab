/*
 * engine/projector.h - projector threads (or, in SHARED threading, the command
 * thread's projecting) and projection views (projector.c).
 */
#ifndef CQRS_ENGINE_PROJECTOR_H
#define CQRS_ENGINE_PROJECTOR_H

#include <stdbool.h>
#include <stdint.h>

struct cqrs_engine;
struct cqrs_proj;

/* Opens (adopts or creates) the projection's views; *resume = the seq it
 * has applied. Before the projector threads start. */
int cqrs__proj_open_views(struct cqrs_engine *e, struct cqrs_proj *p, uint64_t last_seq,
			  uint64_t *resume);

/* Starts the projector threads; the ring carries seqs from ring_start on. */
int cqrs__projectors_start(struct cqrs_engine *e, uint64_t ring_start);

/* SHARED threading, on the command thread: carries out rebuild and
 * dead-letter retry requests. */
void cqrs__projectors_poll_shared(struct cqrs_engine *e);

/* Whether a rebuild or retry request is pending (seq_cst loads). */
bool cqrs__projectors_requested(struct cqrs_engine *e);

/* After the command thread is done: joins projectors, marks views clean
 * (when clean), closes views. */
void cqrs__projectors_join(struct cqrs_engine *e, int clean);

void cqrs__projections_free(struct cqrs_engine *e);


#endif
