/*
 * engine/idle.h - the idle strategy of the engine's threads (the command
 * thread and the projector threads): after a step that did work, the next
 * step runs at once; after one that found none, the thread yields for up
 * to cqrs_config.idle_yield_us (the next request usually follows within
 * microseconds, and a yielding thread answers it without a futex wake),
 * then blocks until woken or block_ns passes.
 *
 * The thread supplies the wait: wait(arg, kind, timeout_ns) with kind
 * CQRS_WAIT_YIELD (timeout: what is left of the yield budget) or
 * CQRS_WAIT_BLOCK returns once work may be waiting or the time is up
 * (the result is not needed: the next step looks). The yield budget counts
 * from the first idle step after work. Costs nothing after a step that did
 * work (no clock read).
 */
#ifndef CQRS_ENGINE_IDLE_H
#define CQRS_ENGINE_IDLE_H

#include <stdint.h>

#include "core/clock.h"
#include "cqrs_ring.h"

typedef int (*cqrs_idle_wait_fn)(void *arg, cqrs_ring_wait kind, uint64_t timeout_ns);

typedef struct cqrs_idle {
	uint64_t yield_ns; /* 0: block at once */
	uint64_t since;    /* when the idle spell began; 0 while working */
} cqrs_idle;

static inline void cqrs__idle_init(cqrs_idle *s, uint64_t yield_ns)
{
	s->yield_ns = yield_ns;
	s->since = 0;
}

/* Call after every step with the work it did. */
static inline void cqrs__idle(cqrs_idle *s, uint32_t work, cqrs_idle_wait_fn wait, void *arg,
			      uint64_t block_ns)
{
	uint64_t now;

	if (work) {
		s->since = 0;
		return;
	}
	if (s->yield_ns) {
		now = cqrs__mono_ns();
		if (!s->since)
			s->since = now;
		if (now - s->since < s->yield_ns) {
			(void)wait(arg, CQRS_WAIT_YIELD, s->yield_ns - (now - s->since));
			return;
		}
	}
	(void)wait(arg, CQRS_WAIT_BLOCK, block_ns);
}

#endif
