/*
 * engine/replay.h - replaying the journal into the write model on start.
 */
#ifndef CQRS_ENGINE_REPLAY_H
#define CQRS_ENGINE_REPLAY_H

#include <stdint.h>

struct cqrs_engine;

typedef struct cqrs_replay_stats {
	uint64_t events;
	uint64_t ns;
} cqrs_replay_stats;

/* Replays seqs from..next_seq-1 of the engine's journal (from: 1, or one
 * past the seq of the snapshot loaded) through evolve,
 * setting aggregate versions and the idempotency window; older layouts of
 * an event are converted (engine/schema_check.h). 0, CQRS_ECORRUPT,
 * CQRS_EFORMAT (an event type this engine does not know, or a stored
 * layout it cannot read), -errno. */
int cqrs__replay_write_model(struct cqrs_engine *e, uint64_t from, uint64_t next_seq,
			     cqrs_replay_stats *st);

#endif
