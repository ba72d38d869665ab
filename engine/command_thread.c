/*
 * engine/command_thread.c - the command thread: its step, its loop, start
 * and join. The single writer of the write model and the journal.
 *
 * One step (do_work):
 *   1. take up to max_batch_commands commands while an ack slot is free,
 *      in-process submissions (engine/submit.c) and gateway requests
 *      (engine/gateway.c) taking turns at filling a batch first, so a
 *      backlog on one side (a pipelining in-process submitter keeps
 *      thousands queued) cannot leave the other nothing, batch after batch.
 *      Each command is decided and journaled (engine/command.c);
 *   2. flush: the journal writes the batch (group commit) while the loop
 *      goes on;
 *   3. poll the journal: each batch now durable is published to the
 *      projections and its tickets complete (cqrs__on_durable); in
 *      CQRS_ACK_REPLICATED they complete once the stream acknowledged
 *      them too (engine/replication/replication.h).
 * SHARED threading adds the projectors' step (rebuild and dead-letter
 * retry requests, engine/projector_thread.c); the durable batches are
 * applied inside step 3 (engine/publish.c). The composition is chosen once,
 * at start: a loop table, no threading test in the loop.
 *
 * Idle (engine/idle.h): while batches are in flight, yield (each yield
 * another step, so what arrives meanwhile is decided without a syscall),
 * then wait on the journal's completions; otherwise yield, then sleep on
 * the doorbell (engine/doorbell.h), re-checking every request source.
 *
 * Between steps (a batch boundary) the snapshot triggers are checked
 * (engine/snapshot.c: a fork when one is due).
 *
 * Stop: the loop ends once the stop was seen before a step that found
 * nothing and nothing is in flight; it then flushes, waits until every
 * batch is durable (published), and tells the projectors it is done.
 */
#include <sched.h>

#include "core/assert.h"
#include "engine/command.h"
#include "engine/command_thread.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/gateway.h"
#include "engine/idle.h"
#include "engine/projector.h"
#include "engine/publish.h"
#include "engine/snapshot.h"
#include "engine/replication/replication.h"
#include "engine/submit.h"

#define JOURNAL_WAIT_NS UINT64_C(200000)  /* one wait on the journal's completions */
#define BELL_WAIT_NS UINT64_C(10000000)   /* one sleep on the doorbell */
#define DRAIN_WAIT_NS UINT64_C(100000000) /* one wait while stopping */

struct cqrs_command_loop {
	uint32_t (*do_work)(cqrs_engine *e);
	/* The re-check before sleeping (seq_cst loads): any request waiting. */
	bool (*ready)(void *e);
};

/* Batches in flight (and the journal's counters, refreshed). */
static uint32_t journal_inflight(cqrs_engine *e)
{
	cqrs_journal_stats st;

	cqrs__journal_stats_get(e->journal, &st);
	CTR_SET(e->ctr, batches, st.batches);
	CTR_SET(e->ctr, journal_bytes, st.bytes);
	CTR_SET(e->ctr, fdatasyncs, st.fsyncs);
	return st.inflight;
}

/* ---- the steps ------------------------------------------------------------------ */

/* Returns the commands taken plus the batches that became durable. */
static uint32_t command_do_work(cqrs_engine *e)
{
	uint32_t max = e->cfg.max_batch_commands;
	uint32_t n = 0;
	int rc;

	CQRS_ASSERT(cqrs__on_command_thread(e));
	cqrs__command_reset_ctx(e);
	e->gateway_first = e->gateway && !e->gateway_first;
	if (e->gateway_first && !cqrs__acks_full(e))
		n = cqrs__gateway_poll(e, max);
	if (n < max && !cqrs__acks_full(e))
		n += cqrs__submit_drain(e, max - n);
	if (e->gateway && !e->gateway_first && n < max && !cqrs__acks_full(e))
		n += cqrs__gateway_poll(e, max - n);
	if (n)
		cqrs__journal_flush(e->journal);
	rc = cqrs__journal_poll(e->journal);
	if (rc < 0)
		cqrs__poison(e, rc);
	if (e->repl) /* CQRS_ACK_REPLICATED: tickets the stream acknowledged */
		n += cqrs__repl_command_step(e);
	return n + (rc > 0 ? (uint32_t)rc : 0);
}

static uint32_t shared_do_work(cqrs_engine *e)
{
	return command_do_work(e) + cqrs__projectors_do_requests(e);
}

/* A view node (engine/replication/node.c): the stream's records in place
 * of commands. */
static uint32_t node_do_work(cqrs_engine *e)
{
	uint32_t n;
	int rc;

	CQRS_ASSERT(cqrs__on_command_thread(e));
	n = cqrs__node_step(e, e->cfg.max_batch_commands);
	if (n)
		cqrs__journal_flush(e->journal);
	rc = cqrs__journal_poll(e->journal);
	if (rc < 0)
		cqrs__poison(e, rc);
	return n + (rc > 0 ? (uint32_t)rc : 0);
}

static uint32_t node_shared_do_work(cqrs_engine *e)
{
	return node_do_work(e) + cqrs__projectors_do_requests(e);
}

static bool node_ready(void *arg)
{
	return cqrs__node_ready(arg);
}

static bool node_shared_ready(void *arg)
{
	return node_ready(arg) || cqrs__projectors_requested(arg);
}

static bool command_ready(void *arg)
{
	cqrs_engine *e = arg;

	return cqrs__submit_ready(e) || (e->gateway && cqrs__gateway_ready(e)) ||
	       (e->repl && cqrs__repl_ready(e));
}

static bool shared_ready(void *arg)
{
	return command_ready(arg) || cqrs__projectors_requested(arg);
}

static const cqrs_command_loop dedicated_loop = { command_do_work, command_ready };
static const cqrs_command_loop shared_loop = { shared_do_work, shared_ready };
static const cqrs_command_loop node_loop = { node_do_work, node_ready };
static const cqrs_command_loop node_shared_loop = { node_shared_do_work, node_shared_ready };

/* ---- idle waits (engine/idle.h) --------------------------------------------------- */

/* Batches in flight: a yield is one sched_yield (the loop steps again);
 * a block waits for the journal's completions. */
static int wait_journal(void *arg, cqrs_ring_wait kind, uint64_t timeout_ns)
{
	cqrs_engine *e = arg;
	int rc;

	if (kind == CQRS_WAIT_YIELD) {
		sched_yield();
		return 0;
	}
	rc = cqrs__journal_wait(e->journal, timeout_ns);
	if (rc < 0)
		cqrs__poison(e, rc);
	return rc;
}

/* Nothing in flight: until the doorbell rings or a request source has
 * something (the loop's ready check). */
static int wait_bell(void *arg, cqrs_ring_wait kind, uint64_t timeout_ns)
{
	cqrs_engine *e = arg;

	return cqrs__ring_wait(kind, timeout_ns, kind == CQRS_WAIT_YIELD ? 0 : timeout_ns,
			       &e->bell->seq, &e->bell->waiters, e->loop->ready, e);
}

/* ---- the loop ----------------------------------------------------------------------- */

static void *command_main(void *arg)
{
	cqrs_engine *e = arg;
	uint32_t (*do_work)(cqrs_engine *) = e->loop->do_work;
	cqrs_idle idle;

	e->command_owner = pthread_self(); /* ordered after start's writes by pthread_create */
	cqrs__idle_init(&idle, (uint64_t)e->cfg.idle_yield_us * 1000);
	for (;;) {
		/* acquire: pairs with cqrs_engine_stop's release store; loaded
		 * before the step, so a stop ends the loop only after a step that
		 * saw every submission made before it. */
		int stopping = atomic_load_explicit(&e->state, memory_order_acquire) >= ENGINE_STOPPING;
		uint32_t work = do_work(e);

		if (e->snap)
			cqrs__snapshot_tick(e); /* a batch boundary: triggers, the writer */

		/* relaxed: poison is written by this thread. A poisoned journal
		 * never reports its batches in flight: do not wait for them. */
		if (!work && !atomic_load_explicit(&e->poison, memory_order_relaxed) &&
		    journal_inflight(e)) {
			cqrs__idle(&idle, 0, wait_journal, e, JOURNAL_WAIT_NS);
			continue;
		}
		if (!work && stopping)
			break;
		cqrs__idle(&idle, work, wait_bell, e, BELL_WAIT_NS);
	}
	/* Drained: every submission before the stop is answered (durable). */
	cqrs__journal_flush(e->journal);
	while (!atomic_load_explicit(&e->poison, memory_order_relaxed) && journal_inflight(e) &&
	       cqrs__journal_wait(e->journal, DRAIN_WAIT_NS) >= 0)
		;
	cqrs__repl_drain(e); /* CQRS_ACK_REPLICATED: tickets waiting for the stream */
	/* release: pairs with the projectors' acquire in their stop check. */
	atomic_store_explicit(&e->command_done, 1, memory_order_release);
	cqrs__publish_done(e);
	cqrs__snapshot_at_stop(e); /* everything is durable */
	return NULL;
}

int cqrs__command_thread_start(cqrs_engine *e)
{
	int rc;

	if (e->cfg.node_of)
		e->loop = e->cfg.threading == CQRS_THREADING_SHARED ? &node_shared_loop : &node_loop;
	else
		e->loop = e->cfg.threading == CQRS_THREADING_SHARED ? &shared_loop : &dedicated_loop;
	rc = pthread_create(&e->command_thread, NULL, command_main, e);
	if (rc)
		return -rc;
	e->command_started = 1;
	pthread_setname_np(e->command_thread, "cqrs-command"); /* for top -H, perf */
	return 0;
}

void cqrs__command_thread_join(cqrs_engine *e)
{
	if (!e->command_started)
		return;
	pthread_join(e->command_thread, NULL);
	e->command_started = 0;
	e->command_owner = pthread_self(); /* ordered after the thread's end by the join */
}
