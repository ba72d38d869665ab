/*
 * engine/housekeeping.h - the engine's housekeeping thread: journal
 * retention off the command thread (engine/housekeeping.c).
 */
#ifndef CQRS_ENGINE_HOUSEKEEPING_H
#define CQRS_ENGINE_HOUSEKEEPING_H

#include <stdint.h>

#include "engine/engine_internal.h"
#include "engine/journal/retention.h"

/* Starts the thread (nothing when retention_mode is OFF). After the
 * journal is open, before the command thread starts. 0 or -errno. */
int cqrs__housekeeping_start(cqrs_engine *e);

/* Stops and joins it (no-op when not started). After the command thread
 * was joined (nothing rolls a segment any more), before the replicator
 * stops (its watermark pins) and the journal closes. */
void cqrs__housekeeping_stop(cqrs_engine *e);

/* Frees what start allocated (cqrs_engine_close: after every thread that
 * may kick has ended). */
void cqrs__housekeeping_free(cqrs_engine *e);

/* Wakes the thread for a collection: a segment was sealed, a snapshot or
 * a checkpoint landed. Any thread that ends before
 * cqrs__housekeeping_stop (the command thread, the snapshot and
 * checkpoint code while the engine runs); cold path (a mutex and a
 * signal). */
void cqrs__housekeeping_kick(cqrs_engine *e);

/* The journal's roll hook (cqrs_journal_config.on_roll): arg is the engine. */
void cqrs__housekeeping_on_roll(void *arg, uint64_t first_seq);

/* One collection now, on the calling thread (what the thread runs on a
 * kick). *sum (optional) says what it did. 0 or the error. */
int cqrs__housekeeping_run(cqrs_engine *e, cqrs__ret_summary *sum);

#endif /* CQRS_ENGINE_HOUSEKEEPING_H */
