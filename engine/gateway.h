/*
 * engine/gateway.h - the engine's side of the command gateway (requests
 * from other processes, client/gateway_format.h), as the engine's
 * lifecycle and command thread see it. engine/gateway.c implements it with
 * a gateway thread of its own (engine/gateway_accept.c) for connections;
 * until a gateway is open these are never called (e->gateway == NULL).
 *
 * The doorbell (engine/doorbell.h): the gateway moves the command thread's
 * bell into its engine page, which clients map read-only: a client that
 * sees waiters != 0 after committing sends a byte on its socket, and the
 * gateway thread rings the bell for it (e->bell is set before the command
 * thread starts).
 */
#ifndef CQRS_ENGINE_GATEWAY_H
#define CQRS_ENGINE_GATEWAY_H

#include <stdint.h>

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
