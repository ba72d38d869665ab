/*
 * engine/replication/replication.h - the engine's hooks into replication
 * (the replicator thread, engine/replication/replicator.c).
 *
 * Threads: the replicator thread reads durable journal records and
 * publishes them; it writes replicated_seq. The command thread tells it
 * when durable_seq moves (cqrs__repl_on_durable) and, in
 * CQRS_ACK_REPLICATED, completes tickets once their seq is replicated
 * (cqrs__repl_command_step). Start and stop run on the thread that starts
 * and stops the engine.
 */
#ifndef CQRS_ENGINE_REPLICATION_H
#define CQRS_ENGINE_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cqrs.h"

struct cqrs_repl;

/* Starts the replicator thread when cfg.replication_urls names servers
 * (else does nothing); start_seq is the first seq this run will journal.
 * Never waits for the network. 0, -EINVAL (bad URL list), -errno. */
int cqrs__repl_start(cqrs_engine *e, uint64_t start_seq);

/* Stops and joins the replicator thread, closes its connection. */
void cqrs__repl_stop(cqrs_engine *e);

/* Command thread, from on_durable: seqs <= last are durable (bytes more
 * of them). One relaxed store, and a futex wake when the replicator sleeps. */
void cqrs__repl_on_durable(cqrs_engine *e, uint64_t last, size_t bytes);

/* Command thread, each step in CQRS_ACK_REPLICATED: completes the tickets
 * whose seq the stream acknowledged, and fails with -ETIMEDOUT those older
 * than replication_timeout_ms. Returns the tickets completed. */
uint32_t cqrs__repl_command_step(cqrs_engine *e);

/* Whether the command thread has tickets to complete (its check before
 * sleeping). */
bool cqrs__repl_ready(cqrs_engine *e);

/* Command thread, after its last batch is durable at stop: waits (at most
 * replication_timeout_ms, 5 s when that is 0) for the stream to
 * acknowledge every queued ticket's seq; the rest fail with -ETIMEDOUT. */
void cqrs__repl_drain(cqrs_engine *e);

/* The ack frontier: in CQRS_ACK_REPLICATED the smaller of durable and the
 * replicated seq; else durable. */
uint64_t cqrs__repl_ack_frontier(cqrs_engine *e, uint64_t durable);

/* The replication watermark: every seq <= it is in the stream; journal
 * segments holding seqs above it must be kept (retention pins them).
 * UINT64_MAX when replication is off. Any thread. */
uint64_t cqrs__replication_watermark(const cqrs_engine *e);

/* ---- view nodes (engine/replication/node.c) ---- */

/* Starts the receiver when cfg.node_of names an engine to follow (else
 * does nothing); next_seq: the node journal's next seq. 0 or -errno. */
int cqrs__node_start(cqrs_engine *e, uint64_t next_seq);

/* Stops and joins the receiver (after the command thread ended). */
void cqrs__node_stop(cqrs_engine *e);

/* Command thread, in place of submissions: appends up to max records the
 * receiver verified to the node's journal. Returns how many. */
uint32_t cqrs__node_step(cqrs_engine *e, uint32_t max);

/* Whether records wait (the command thread's check before sleeping). */
bool cqrs__node_ready(cqrs_engine *e);

#endif
