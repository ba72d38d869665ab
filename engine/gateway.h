/*
 * engine/gateway.h - the engine's side of the command gateway (requests
 * from other processes, client/gateway_format.h), as the engine's
 * lifecycle and command thread see it. engine/gateway.c implements it with
 * a gateway thread of its own (engine/gateway_accept.c) for connections;
 * until a gateway is open these are never called (e->gateway == NULL).
 *
 * The doorbell: the command thread sleeps on ONE futex pair whatever the
 * number of request rings, following ringbuf/wait.h's protocol: every
 * in-process producer commits its record (a seq_cst RMW) and then calls
 * cqrs__ring_wake(&bell->seq, &bell->waiters); the command thread's
 * re-check looks at every ring. The gateway moves the bell into its engine
 * page, which clients map read-only: a client that sees waiters != 0 after
 * committing sends a byte on its socket, and the gateway thread wakes the
 * bell for it (set e->bell before the command thread starts).
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
 * thread starts: creates the engine page and the listening socket, starts
 * the gateway thread, publishes the socket through the control segment's
 * gateway region, points e->bell into the engine page. */
int cqrs__gateway_open(struct cqrs_engine *e);

/* Command thread: validates and processes up to max requests (each through
 * cqrs__process_command with a gateway ticket whose on_done writes the
 * response); returns how many were taken. */
uint32_t cqrs__gateway_poll(struct cqrs_engine *e, uint32_t max);

/* Command thread, in its idle re-check: 1 if a request is waiting. */
int cqrs__gateway_ready(struct cqrs_engine *e);

/* At stop, after the command thread ended: tells clients (STOPPED), stops
 * the gateway thread, closes every connection. */
void cqrs__gateway_close(struct cqrs_engine *e);

#endif
