/*
 * engine/command.c - one command on the command thread (the single
 * writer; its loop is engine/command_thread.c), and its acknowledgement.
 *
 * A command: idempotency check, optimistic-concurrency check, decide
 * (events go to a scratch buffer), then journal the events (claim/commit
 * into the journal's batch buffer), bump aggregate versions, evolve the
 * write model, remember the result for dedup, and queue the ticket's ack
 * behind the seq it depends on. When the journal reports a batch durable
 * (cqrs__on_durable) its records are published to the projections
 * (engine/publish.c) and every ticket whose seq is durable completes.
 *
 * Every ticket waits for durability, rejections included: a rejection (or a
 * command that emitted nothing) was decided against state that includes
 * every event journaled before it, so it is acknowledged only once those
 * are durable (its target is the last seq handed out when it was decided).
 * A crash can then never leave a client holding an answer that recovery
 * contradicts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/assert.h"
#include "core/clock.h"
#include "core/errors.h"
#include "engine/command.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/journal/journal.h"
#include "engine/model/dedup.h"
#include "engine/model/versions.h"
#include "engine/publish.h"
#include "engine/replication/replication.h"
#include "engine/ticket.h"

/* ---- decide's context ------------------------------------------------------ */

int cqrs_emit(cqrs_ctx *ctx, uint32_t type, uint64_t aggregate_id, const void *data)
{
	const cqrs_schema *s;
	emitted *ev;

	if (type == 0 || type >= CQRS_MAX_TYPES || !(s = ctx->e->events[type].schema) || !data)
		return -EINVAL;
	if (aggregate_id == UINT64_MAX)
		return -EINVAL;
	if (ctx->nemitted == CQRS_MAX_EVENTS_PER_COMMAND ||
	    ctx->scratch_used + ((s->size + 7u) & ~7u) > sizeof ctx->scratch)
		return CQRS_EFULL;
	ev = &ctx->ev[ctx->nemitted++];
	ev->type = type;
	ev->size = s->size;
	ev->aggregate_id = aggregate_id;
	ev->offset = ctx->scratch_used;
	memcpy(ctx->scratch + ctx->scratch_used, data, s->size);
	ctx->scratch_used += (s->size + 7u) & ~7u;
	return 0;
}

int cqrs_reject(cqrs_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->reason, sizeof ctx->reason, fmt, ap);
	va_end(ap);
	return CQRS_EREJECTED;
}

uint64_t cqrs_ctx_version(const cqrs_ctx *ctx, uint64_t aggregate_id)
{
	return cqrs__versions_get(ctx->e->versions, aggregate_id);
}

int64_t cqrs_ctx_now(const cqrs_ctx *ctx)
{
	return ctx->now_ns;
}

/* ---- acks -------------------------------------------------------------------- */

/* Completes every queued ack whose target is <= durable (the ack frontier:
 * durable_seq, or in CQRS_ACK_REPLICATED the replicated seq below it,
 * engine/replication/replication.h). Acks are queued in
 * decide order and their targets never decrease (a target is the last seq
 * handed out when the command was decided, duplicates and rejections
 * included), so stopping at the first undurable target never holds back
 * an answer whose target is durable. */
void cqrs__acks_release(cqrs_engine *e, uint64_t durable)
{
	uint64_t now = 0;

	CQRS_ASSERT(e->ack_tail - e->ack_head <= e->ack_cap);
	while (e->ack_head != e->ack_tail) {
		pending_ack *a = &e->acks[e->ack_head & (e->ack_cap - 1)];
		if (a->target > durable)
			break;
		if (!now)
			now = cqrs__mono_ns(); /* one clock read per released batch */
		cqrs__hist_record(ctr_hist(e->ctr->ack_latency), now - a->submit_ns);
		cqrs__ticket_release(a->ticket);
		e->ack_head++;
	}
}

uint32_t cqrs__acks_expire(cqrs_engine *e, uint64_t submitted_before, int code, const char *why)
{
	/* relaxed: durable_seq is written by this thread only. */
	uint64_t durable = atomic_load_explicit(&e->durable_seq, memory_order_relaxed);
	uint32_t n = 0;

	while (e->ack_head != e->ack_tail) {
		pending_ack *a = &e->acks[e->ack_head & (e->ack_cap - 1)];
		if (a->target > durable || a->submit_ns >= submitted_before)
			break;
		snprintf(a->ticket->reason, sizeof a->ticket->reason, "%s (answer: %s)", why,
			 a->ticket->status ? cqrs_strerror(a->ticket->status) : "accepted");
		a->ticket->status = code; /* seq stays: the events are in the journal */
		cqrs__ticket_release(a->ticket);
		e->ack_head++;
		n++;
	}
	return n;
}

/* Fails every queued ack with code (the journal is poisoned). */
static void fail_acks(cqrs_engine *e, int code)
{
	while (e->ack_head != e->ack_tail) {
		pending_ack *a = &e->acks[e->ack_head & (e->ack_cap - 1)];
		if (a->target <= atomic_load_explicit(&e->durable_seq, memory_order_relaxed)) {
			cqrs__ticket_release(a->ticket); /* its answer was durable */
		} else {
			a->ticket->status = code;
			a->ticket->seq = 0;
			snprintf(a->ticket->reason, sizeof a->ticket->reason, "journal failed: %s",
				 cqrs_strerror(code));
			cqrs__ticket_release(a->ticket);
		}
		e->ack_head++;
	}
}

/* Queues t to complete once seq `target` is durable. The queue holds one
 * entry per command decided and not yet acknowledged; the command thread
 * stops draining submissions when it is full, so this cannot overflow. */
static void queue_ack(cqrs_engine *e, const sub_hdr *h, uint64_t target)
{
	CQRS_ASSERT(e->ack_tail - e->ack_head < e->ack_cap); /* the drain stops when full */
	CQRS_ASSERT(target <= e->last_assigned);
	CQRS_ASSERT(e->ack_head == e->ack_tail ||
		    e->acks[(e->ack_tail - 1) & (e->ack_cap - 1)].target <= target);
	/* relaxed: durable_seq is written by this thread only. */
	if (target <= cqrs__repl_ack_frontier(e, atomic_load_explicit(&e->durable_seq,
								      memory_order_relaxed)) &&
	    e->ack_head == e->ack_tail) {
		cqrs__hist_record(ctr_hist(e->ctr->ack_latency), cqrs__mono_ns() - h->submit_ns);
		cqrs__ticket_release(h->ticket);
		return;
	}
	e->acks[e->ack_tail & (e->ack_cap - 1)] = (pending_ack){ h->ticket, target, h->submit_ns };
	e->ack_tail++;
}

int cqrs__acks_full(const cqrs_engine *e)
{
	return e->ack_tail - e->ack_head >= e->ack_cap;
}

/* ---- durable batches ---------------------------------------------------------- */

/* The journal's on_durable callback (runs inside poll/wait on this thread):
 * the batch's records go to the projectors, then its tickets complete. */
void cqrs__on_durable(void *arg, uint64_t first, uint64_t last, const void *records, size_t bytes)
{
	cqrs_engine *e = arg;

	CQRS_ASSERT(cqrs__on_command_thread(e));
	/* relaxed: durable_seq is written by this thread only. */
	CQRS_ASSERT(first <= last && last > atomic_load_explicit(&e->durable_seq, memory_order_relaxed));
	CQRS_ASSERT(last <= e->last_assigned);
	(void)first;
	cqrs__publish(e, records, bytes, last);
	/* release: readers of durable_seq (cqrs_engine_durable_seq) see a value
	 * whose events are already published. */
	atomic_store_explicit(&e->durable_seq, last, memory_order_release);
	CTR_SET(e->ctr, durable_seq, last);
	if (e->repl)
		cqrs__repl_on_durable(e, last, bytes);
	cqrs__acks_release(e, cqrs__repl_ack_frontier(e, last));
}

/* ---- counters ---------------------------------------------------------------------- */

static void count_command(cqrs_engine *e, int status)
{
	cqrs_counters *c = e->ctr;

	CTR_ADD(c, commands, 1);
	switch (status) {
	case 0: CTR_ADD(c, accepted, 1); break;
	case CQRS_ECONFLICT: CTR_ADD(c, conflicts, 1); break;
	case CQRS_EDUPLICATE: CTR_ADD(c, duplicates, 1); break;
	default: CTR_ADD(c, rejected, 1); break;
	}
}

static void count_events(cqrs_engine *e, uint32_t n)
{
	if (n)
		CTR_ADD(e->ctr, events, n);
}

/* ---- one command ----------------------------------------------------------------- */

static void answer(cqrs_engine *e, const sub_hdr *h, int status, uint64_t seq, const char *reason,
		   uint64_t target)
{
	ticket_impl *t = h->ticket;

	t->status = status;
	t->seq = seq;
	if (reason && reason[0])
		snprintf(t->reason, sizeof t->reason, "%s", reason);
	else
		t->reason[0] = 0;
	queue_ack(e, h, target);
}

/* Journals the emitted events of one command as one group. On failure the
 * group is abandoned and nothing of it becomes visible. */
static int journal_group(cqrs_engine *e, const sub_hdr *h, uint64_t *last_seq)
{
	cqrs_ctx *ctx = e->ctx;
	uint64_t versions[CQRS_MAX_EVENTS_PER_COMMAND];

	for (uint32_t i = 0; i < ctx->nemitted; i++) {
		const emitted *ev = &ctx->ev[i];
		uint64_t v = cqrs_ctx_version(ctx, ev->aggregate_id);
		cqrs_journal_event je;
		int rc;

		/* Several events of one command on one aggregate: count them. */
		for (uint32_t k = 0; k < i; k++)
			if (ctx->ev[k].aggregate_id == ev->aggregate_id)
				v = versions[k];
		versions[i] = v + 1;
		je = (cqrs_journal_event){
			.type = (uint16_t)ev->type,
			.flags = i + 1 == ctx->nemitted ? CQRS_JREC_CMD_END : 0,
			.timestamp_ns = ctx->now_ns,
			.aggregate_id = ev->aggregate_id,
			.aggregate_version = versions[i],
			.client_id = h->client_id,
			.client_seq = h->client_seq,
		};
		for (;;) {
			rc = cqrs__journal_append(e->journal, &je, ctx->scratch + ev->offset, ev->size,
						 last_seq);
			if (rc != -EAGAIN)
				break;
			/* Every batch buffer is in flight: let one complete. */
			rc = cqrs__journal_wait(e->journal, 1000000);
			if (rc < 0)
				break;
		}
		if (rc) {
			cqrs__journal_abandon(e->journal);
			return rc;
		}
	}
	/* The group is journaled: versions and the write model move on. */
	for (uint32_t i = 0; i < ctx->nemitted; i++) {
		const emitted *ev = &ctx->ev[i];
		cqrs_event view = {
			.seq = *last_seq - (ctx->nemitted - 1 - i),
			.timestamp_ns = ctx->now_ns,
			.aggregate_id = ev->aggregate_id,
			.aggregate_version = versions[i],
			.type = ev->type,
			.size = ev->size,
			.data = ctx->scratch + ev->offset,
		};
		cqrs__versions_set(e->versions, ev->aggregate_id, versions[i]);
		if (e->events[ev->type].evolve)
			e->events[ev->type].evolve(e->model, &view);
	}
	return 0;
}

void cqrs__process_command(cqrs_engine *e, const sub_hdr *h, const void *data)
{
	cqrs_ctx *ctx = e->ctx;
	uint64_t target = e->last_assigned, seq = 0;
	const cmd_type *ct;
	/* relaxed: poison is written by this thread only. */
	int rc = atomic_load_explicit(&e->poison, memory_order_relaxed);

	CQRS_ASSERT(cqrs__on_command_thread(e));
	if (rc) {
		cqrs__ticket_complete(h->ticket, rc, 0, "journal failed earlier: engine stopped accepting");
		return;
	}

	if (h->client_id) {
		rc = cqrs__dedup_check(e->dedup, h->client_id, h->client_seq, &seq);
		if (rc == 1) {
			answer(e, h, CQRS_EDUPLICATE, seq,
			       seq ? "duplicate of an earlier command"
				   : "client seq older than the dedup window: treated as a duplicate, "
				     "its result is no longer known", target);
			count_command(e, CQRS_EDUPLICATE);
			return;
		}
	}
	ct = h->type < CQRS_MAX_TYPES ? &e->cmds[h->type] : NULL;
	if (!ct || !ct->schema || h->size != ct->schema->size) {
		answer(e, h, -EINVAL, 0, "unknown command type or wrong size", target);
		count_command(e, -EINVAL);
		return;
	}
	if (h->flags & CQRS_CMD_EXPECT_VERSION) {
		uint64_t v = cqrs_ctx_version(ctx, h->aggregate_id);
		if (v != h->expected_version) {
			char why[96];
			snprintf(why, sizeof why, "aggregate %llu is at version %llu, expected %llu",
				 (unsigned long long)h->aggregate_id, (unsigned long long)v,
				 (unsigned long long)h->expected_version);
			answer(e, h, CQRS_ECONFLICT, 0, why, target);
			count_command(e, CQRS_ECONFLICT);
			return;
		}
	}
	ctx->nemitted = 0;
	ctx->scratch_used = 0;
	ctx->reason[0] = 0;
	rc = ct->decide(ctx, data, e->model);
	if (rc) {
		answer(e, h, rc < 0 ? rc : CQRS_EREJECTED, 0, ctx->reason[0] ? ctx->reason : cqrs_strerror(rc),
		       target);
		count_command(e, CQRS_EREJECTED);
		return;
	}
	if (ctx->nemitted) {
		rc = journal_group(e, h, &seq);
		if (rc) {
			int poisoned = cqrs__journal_poisoned(e->journal);
			answer(e, h, rc, 0, poisoned ? "journal failed" : "journal refused the events",
			       target);
			CTR_ADD(e->ctr, commands, 1);
			CTR_ADD(e->ctr, journal_refused, 1);
			if (poisoned)
				cqrs__poison(e, poisoned);
			return;
		}
		e->last_assigned = seq;
		target = seq;
		if (h->client_id)
			cqrs__dedup_record(e->dedup, h->client_id, h->client_seq, seq);
	}
	answer(e, h, 0, seq ? seq : target, NULL, target);
	count_command(e, 0);
	count_events(e, ctx->nemitted);
}

/* Called when the journal reports a failure: nothing after the failure will
 * ever be durable, so every waiting ticket gets the error now and every
 * later submission is refused with it. */
void cqrs__poison(cqrs_engine *e, int code)
{
	int expected = 0;

	/* relaxed CAS: the first error wins; the code is a status word only. */
	if (atomic_compare_exchange_strong_explicit(&e->poison, &expected, code,
						    memory_order_relaxed, memory_order_relaxed))
		cqrs__log(e, CQRS_LOG_ERROR, "engine %s: journal failed (%s); no more commands accepted",
			  e->name, cqrs_strerror(code));
	fail_acks(e, code);
}

void cqrs__command_reset_ctx(cqrs_engine *e)
{
	e->ctx->e = e;
	e->ctx->now_ns = cqrs__wall_ns();
}
