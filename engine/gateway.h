/*
 * engine/gateway.h - the engine's side of the command gateway (requests
 * from other processes through shared memory, engine/gateway.c), as the
 * command thread sees it. Until a gateway is open these are never called
 * (e->gateway == NULL). The doorbell clients ring: engine/doorbell.h.
 */
#ifndef CQRS_ENGINE_GATEWAY_H
#define CQRS_ENGINE_GATEWAY_H

#include <stdint.h>

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
