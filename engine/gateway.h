/*
 * engine/gateway.h - the engine's side of the command gateway (requests
 * from other processes through shared memory), as the command thread sees
 * it. The gateway issue implements engine/gateway.c; until a gateway is
 * open these are never called (e->gateway == NULL).
 *
 * The doorbell: the command thread sleeps on ONE futex pair whatever the
 * number of request rings, following ringbuf/wait.h's protocol: every
 * producer (in-process submitters and gateway clients) commits its record
 * (a seq_cst RMW) and then calls cqrs__ring_wake(&bell->seq,
 * &bell->waiters); the command thread's re-check looks at every ring. The
 * bell lives in the engine's heap unless the gateway moves it into its
 * shared segment (set e->bell before the command thread starts).
 */
#ifndef CQRS_ENGINE_GATEWAY_H
#define CQRS_ENGINE_GATEWAY_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct cqrs_bell {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
} cqrs_bell;

struct cqrs_engine;

/* At start, after the control segment exists and before the command
 * thread starts: creates the gateway segment, publishes it through the
 * control segment's gateway region, may point e->bell into it. */
int cqrs__gateway_open(struct cqrs_engine *e);

/* Command thread: validates and processes up to max requests (each through
 * cqrs__process_command with a gateway ticket whose on_done writes the
 * response); returns how many were taken. */
uint32_t cqrs__gateway_poll(struct cqrs_engine *e, uint32_t max);

/* Command thread, in its idle re-check: 1 if a request is waiting. */
int cqrs__gateway_ready(struct cqrs_engine *e);

/* At stop, after the command thread ended. */
void cqrs__gateway_close(struct cqrs_engine *e);

#endif
