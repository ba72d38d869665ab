/*
 * engine/doorbell.h - the command thread's doorbell: the one futex pair it
 * sleeps on, whatever the number of request sources.
 *
 * Protocol (ringbuf/wait.h's): every producer (in-process submitters,
 * gateway clients, rebuild and dead-letter retry requests) makes its
 * request visible with a seq_cst RMW and then rings the bell; the command
 * thread's re-check before it sleeps looks at every source with seq_cst
 * loads (engine/command_thread.c). The bell lives in the engine's heap
 * (cqrs_engine.own_bell) unless the gateway points cqrs_engine.bell into
 * its engine page (client/gateway_format.h), which clients map read-only,
 * before the command thread starts.
 */
#ifndef CQRS_ENGINE_DOORBELL_H
#define CQRS_ENGINE_DOORBELL_H

#include <stdatomic.h>
#include <stdint.h>

#include "ringbuf/wait.h"

typedef struct cqrs_bell {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
} cqrs_bell;

/* After a request was published with a seq_cst RMW: wakes the command
 * thread if it sleeps (a syscall only then). */
static inline void cqrs__bell_ring(cqrs_bell *b)
{
	cqrs__ring_wake(&b->seq, &b->waiters);
}

#endif
