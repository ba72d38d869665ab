/*
 * engine/publish.h - handing each durable journal batch to the
 * projections, on the command thread (engine/publish.c). The variant for
 * the engine's threading is chosen once, at start.
 */
#ifndef CQRS_ENGINE_PUBLISH_H
#define CQRS_ENGINE_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine_internal.h"

struct cqrs_publish_ops {
	/* A durable batch: records/bytes as the journal wrote them, last_seq
	 * its last seq. */
	void (*batch)(cqrs_engine *e, const void *records, size_t bytes, uint64_t last_seq);
	/* After the last batch: wakes whoever waits for more. */
	void (*done)(cqrs_engine *e);
};

/* At start, before the projectors: picks the variant and, in DEDICATED
 * threading, creates the broadcast ring. */
int cqrs__publish_open(cqrs_engine *e);
/* After the projectors are joined: frees the ring. */
void cqrs__publish_close(cqrs_engine *e);

static inline void cqrs__publish(cqrs_engine *e, const void *records, size_t bytes, uint64_t last_seq)
{
	e->publish->batch(e, records, bytes, last_seq);
}

static inline void cqrs__publish_done(cqrs_engine *e)
{
	if (e->publish)
		e->publish->done(e);
}

#endif
