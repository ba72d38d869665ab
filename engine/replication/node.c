/*
 * engine/replication/node.c - a view node: an engine that follows another
 * engine's replication stream instead of taking commands
 * (cqrs_config.node_of), with the same projection code and the same views.
 *
 * Two parts:
 *   receiver thread  subscribes to the stream (an ordered consumer from the
 *                    stream sequence of the first message holding the next
 *                    seq, found by binary search over the messages'
 *                    Cqrs-Last), verifies every journal message (each
 *                    record's XXH3 checksum, seqs chained from the message's
 *                    Cqrs-First to its Cqrs-Last, nothing left over) and
 *                    hands whole messages (copied 8-byte aligned: record
 *                    headers hold 64-bit fields) to the command thread
 *                    through a single-producer single-consumer queue. A
 *                    message that starts past the next seq (a gap) or fails
 *                    verification drops the subscription and resubscribes
 *                    from the next seq (a resync): nothing partial is
 *                    applied. Messages wholly before the next seq are
 *                    skipped (overlap after a resync).
 *   command thread   (cqrs__node_step, in place of submissions) appends the
 *                    records to the node's own journal, with the writer's
 *                    seqs, types, flags, timestamps, aggregate versions and
 *                    client keys, and evolves the write model; from there the
 *                    engine is the engine: durable batches go to the
 *                    projections, views are view segments, cqrs_view_wait and
 *                    every reader work as beside the writer.
 * A restart recovers the node's journal (its next seq) and views (their
 * applied seqs) as any engine's, and subscribes from the next seq: the
 * stream is not read again from its start. Cost: one copy and one
 * hand-off per message (a release store each side), one append per record.
 *
 * Counters: repl_state, replicated_seq (the last seq verified and handed
 * over), repl_messages, repl_bytes, repl_resyncs (subscriptions started),
 * repl_errors (failures and gaps).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "core/errors.h"
#include "engine/counters.h"
#include "engine/engine_internal.h"
#include "engine/journal/format.h"
#include "engine/journal/journal.h"
#include "engine/model/versions.h"
#include "engine/replication/nats_link.h"
#include "engine/replication/replication.h"

#define NODE_QUEUE 64u          /* messages handed over and not yet appended */
#define NEXT_WAIT_MS 100
#define RETRY_MS 200

struct cqrs_node {
	cqrs_engine *e;
	pthread_t thread;
	bool started;
	_Atomic int stop;
	nats_link link;
	natsSubscription *sub;
	uint64_t expect;                  /* receiver: the next seq to hand over */
	/* The queue: the receiver writes q[tail], the command thread reads
	 * q[head]. */
	uint8_t *q[NODE_QUEUE];           /* each message's records, copied 8-byte aligned */
	size_t q_len[NODE_QUEUE];
	size_t q_off[NODE_QUEUE];         /* where each message's new records start */
	_Atomic uint64_t head, tail;
	size_t off;                       /* command thread: offset in q[head] */
	bool in_msg;                      /* command thread: q[head] partly appended */
	int failed;                       /* command thread: append failed (logged) */
};

static bool stopping(struct cqrs_node *n)
{
	/* acquire: pairs with cqrs__node_stop's release store. */
	return atomic_load_explicit(&n->stop, memory_order_acquire) != 0;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static uint64_t hdr(natsMsg *m, const char *k)
{
	const char *v = NULL;
	return natsMsgHeader_Get(m, k, &v) == NATS_OK && v ? strtoull(v, NULL, 10) : 0;
}

/* Cqrs-Last of the first journal message at or after stream seq s (up to
 * last); *at its stream seq. UINT64_MAX when there is none. */
static uint64_t probe(struct cqrs_node *n, uint64_t s, uint64_t last, uint64_t *at)
{
	for (; s <= last; s++) {
		natsMsg *m = NULL;
		jsErrCode jerr = 0;
		uint64_t v;

		if (js_GetMsg(&m, n->link.js, n->link.stream, s, NULL, &jerr) != NATS_OK)
			continue; /* deleted, or a failure: the next one will do */
		if (strcmp(natsMsg_GetSubject(m), n->link.subj)) {
			natsMsg_Destroy(m);
			continue;
		}
		v = hdr(m, "Cqrs-Last");
		natsMsg_Destroy(m);
		*at = s;
		return v;
	}
	*at = last + 1;
	return UINT64_MAX;
}

/* Subscribes from the first message that holds seq n->expect. */
static int subscribe(struct cqrs_node *n)
{
	jsStreamInfo *si = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	char filter[96];
	uint64_t lo, hi, last;
	natsStatus s;

	if (js_GetStreamInfo(&si, n->link.js, n->link.stream, NULL, &jerr) != NATS_OK) {
		snprintf(n->link.err, sizeof n->link.err, "stream %s: js error %d", n->link.stream,
			 (int)jerr);
		return -EIO;
	}
	lo = si->State.FirstSeq ? si->State.FirstSeq : 1;
	last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	hi = last + 1;
	while (lo < hi) { /* f(s) = Cqrs-Last at or after s is non-decreasing */
		uint64_t mid = lo + (hi - lo) / 2, at, v = probe(n, mid, last, &at);
		if (v >= n->expect)
			hi = mid;
		else
			lo = at + 1;
	}
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = lo;
	snprintf(filter, sizeof filter, "cqrs.%s.>", n->link.engine);
	s = js_SubscribeSync(&n->sub, n->link.js, filter, NULL, &so, &jerr);
	if (s != NATS_OK) {
		snprintf(n->link.err, sizeof n->link.err, "subscribe: %s (js error %d)",
			 natsStatus_GetText(s), (int)jerr);
		n->sub = NULL;
		return -EIO;
	}
	CTR_ADD(n->e->ctr, repl_resyncs, 1);
	return 0;
}

static void drop_sub(struct cqrs_node *n)
{
	if (n->sub) {
		natsSubscription_Unsubscribe(n->sub);
		natsSubscription_Destroy(n->sub);
	}
	n->sub = NULL;
}

/* Checks a journal message's records (d: an 8-byte aligned copy):
 * chained from first to last, valid checksums, nothing else. Returns the
 * offset of record n->expect, or -1. */
static long verify(struct cqrs_node *n, const uint8_t *d, size_t len, uint64_t first, uint64_t last)
{
	size_t off = 0, at = 0;
	uint64_t seq = first;

	while (off < len) {
		const cqrs_jrec *r = (const cqrs_jrec *)(d + off);
		if (len - off < CQRS_JREC_HEADER || cqrs__jrec_span(r) > len - off ||
		    r->seq != seq || r->checksum != cqrs__jrec_checksum(r))
			return -1;
		if (seq == n->expect)
			at = off;
		off += cqrs__jrec_span(r);
		seq++;
	}
	return seq - 1 == last && last >= n->expect ? (long)at : -1;
}

static void push(struct cqrs_node *n, uint8_t *m, size_t len, size_t off)
{
	/* relaxed: tail is written by this thread only. */
	uint64_t t = atomic_load_explicit(&n->tail, memory_order_relaxed);

	/* acquire: pairs with the command thread's release of head (the slot
	 * is free again). */
	while (t - atomic_load_explicit(&n->head, memory_order_acquire) >= NODE_QUEUE) {
		if (stopping(n)) {
			free(m);
			return;
		}
		sleep_ms(1);
	}
	n->q[t % NODE_QUEUE] = m;
	n->q_len[t % NODE_QUEUE] = len;
	n->q_off[t % NODE_QUEUE] = off;
	/* release: the slot's pointer (and the message) before the consumer
	 * sees the new tail (its acquire in cqrs__node_step). */
	atomic_store_explicit(&n->tail, t + 1, memory_order_release);
	cqrs__command_kick(n->e);
}

static void *receiver_main(void *arg)
{
	struct cqrs_node *n = arg;
	cqrs_engine *e = n->e;
	uint64_t failing = 0;

	while (!stopping(n)) {
		natsMsg *m = NULL;
		uint8_t *copy;
		uint64_t first, last;
		size_t len;
		long at;
		natsStatus s;

		if (!n->sub) {
			int rc = cqrs__link_connect(&n->link);
			if (!rc)
				rc = subscribe(n);
			if (rc) {
				CTR_ADD(e->ctr, repl_errors, 1);
				CTR_SET(e->ctr, repl_state, n->link.nc ? CQRS_REPL_SYNCING : CQRS_REPL_CONNECTING);
				if (!failing++)
					cqrs__log(e, CQRS_LOG_WARN, "node: %s (retrying)", n->link.err);
				sleep_ms(RETRY_MS);
				continue;
			}
			CTR_SET(e->ctr, repl_state, CQRS_REPL_STREAMING);
		}
		s = natsSubscription_NextMsg(&m, n->sub, NEXT_WAIT_MS);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			drop_sub(n);
			continue;
		}
		if (strcmp(natsMsg_GetSubject(m), n->link.subj)) { /* the schemas */
			natsMsg_Destroy(m);
			continue;
		}
		first = hdr(m, "Cqrs-First");
		last = hdr(m, "Cqrs-Last");
		if (last < n->expect) { /* already applied (overlap after a resync) */
			natsMsg_Destroy(m);
			continue;
		}
		/* Record headers hold 64-bit fields: read them from an aligned
		 * copy (the message's data follows its headers unaligned). */
		len = (size_t)natsMsg_GetDataLength(m);
		copy = len ? aligned_alloc(8, (len + 7) & ~(size_t)7) : NULL;
		if (copy)
			memcpy(copy, natsMsg_GetData(m), len);
		at = first <= n->expect && copy ? verify(n, copy, len, first, last) : -1;
		if (at < 0) {
			free(copy);
			if (!failing++)
				cqrs__log(e, CQRS_LOG_WARN, "node: stream message with seqs %" PRIu64 "..%"
					  PRIu64 " %s at seq %" PRIu64 ": resync (retrying)", first, last,
					  first > n->expect ? "leaves a gap" : "does not verify", n->expect);
			CTR_ADD(e->ctr, repl_errors, 1);
			natsMsg_Destroy(m);
			drop_sub(n);
			sleep_ms(RETRY_MS); /* the stream may hold it for good: no busy loop */
			continue;
		}
		failing = 0;
		natsMsg_Destroy(m);
		CTR_ADD(e->ctr, repl_messages, 1);
		CTR_ADD(e->ctr, repl_bytes, len);
		n->expect = last + 1;
		CTR_SET(e->ctr, replicated_seq, last);
		push(n, copy, len, (size_t)at); /* the records before at were applied already */
	}
	drop_sub(n);
	return NULL;
}

/* ---- the command thread's side ----------------------------------------------------- */

static int append(cqrs_engine *e, const cqrs_jrec *r)
{
	cqrs_journal_event je = {
		.type = r->type,
		.flags = r->flags & CQRS_JREC_CMD_END,
		.timestamp_ns = r->timestamp_ns,
		.aggregate_id = r->aggregate_id,
		.aggregate_version = r->aggregate_version,
		.client_id = r->client_id,
		.client_seq = r->client_seq,
	};
	uint64_t seq;
	int rc;

	if (r->seq != cqrs__journal_next_seq(e->journal))
		return cqrs__fail(CQRS_ECORRUPT, "node: record seq %" PRIu64 ", the journal's next is %"
				  PRIu64, r->seq, cqrs__journal_next_seq(e->journal));
	if (r->type >= CQRS_MAX_TYPES || !e->events[r->type].schema)
		return cqrs__fail(CQRS_EFORMAT, "node: seq %" PRIu64 " has event type %u, not registered "
				  "here", r->seq, r->type);
	for (;;) {
		rc = cqrs__journal_append(e->journal, &je, cqrs__jrec_payload(r), r->size, &seq);
		if (rc != -EAGAIN)
			break;
		rc = cqrs__journal_wait(e->journal, 1000000); /* every batch buffer in flight */
		if (rc < 0)
			return rc;
	}
	if (rc)
		return rc;
	e->last_assigned = seq;
	cqrs__versions_set(e->versions, r->aggregate_id, r->aggregate_version);
	if (e->events[r->type].evolve) {
		cqrs_event ev = {
			.seq = seq, .timestamp_ns = r->timestamp_ns, .aggregate_id = r->aggregate_id,
			.aggregate_version = r->aggregate_version, .type = r->type, .size = r->size,
			.data = cqrs__jrec_payload(r),
		};
		e->events[r->type].evolve(e->model, &ev);
	}
	return 0;
}

uint32_t cqrs__node_step(cqrs_engine *e, uint32_t max)
{
	struct cqrs_node *n = e->node;
	uint32_t done = 0;

	while (done < max && !n->failed) {
		/* relaxed: head is written by this thread only. */
		uint64_t h = atomic_load_explicit(&n->head, memory_order_relaxed);
		uint8_t *d;
		size_t len;

		/* acquire: pairs with the receiver's release of tail. */
		if (h == atomic_load_explicit(&n->tail, memory_order_acquire))
			break;
		d = n->q[h % NODE_QUEUE];
		len = n->q_len[h % NODE_QUEUE];
		if (!n->in_msg) {
			n->off = n->q_off[h % NODE_QUEUE];
			n->in_msg = true;
		}
		while (n->off < len && done < max) {
			const cqrs_jrec *r = (const cqrs_jrec *)(d + n->off);
			int rc = append(e, r);
			if (rc) {
				cqrs__log(e, CQRS_LOG_ERROR, "node: cannot apply seq %" PRIu64 ": %s; the node "
					  "stops following", r->seq, cqrs_last_error());
				CTR_SET(e->ctr, repl_state, CQRS_REPL_FAILED);
				n->failed = rc;
				break;
			}
			n->off += cqrs__jrec_span(r);
			done++;
		}
		if (n->off < len)
			break;
		free(d);
		n->in_msg = false;
		/* release: the slot is free (pairs with the receiver's acquire). */
		atomic_store_explicit(&n->head, h + 1, memory_order_release);
	}
	return done;
}

bool cqrs__node_ready(cqrs_engine *e)
{
	struct cqrs_node *n = e->node;

	/* seq_cst: the command thread's re-check before sleeping. */
	return !n->failed && atomic_load_explicit(&n->head, memory_order_seq_cst) !=
				     atomic_load_explicit(&n->tail, memory_order_seq_cst);
}

int cqrs__node_start(cqrs_engine *e, uint64_t next_seq)
{
	struct cqrs_node *n;
	int rc;

	if (!e->cfg.node_of || !e->cfg.node_of[0])
		return 0;
	n = calloc(1, sizeof *n);
	if (!n)
		return -ENOMEM;
	n->e = e;
	n->expect = next_seq;
	rc = cqrs__link_init(&n->link, e->cfg.node_of, e->cfg.replication_urls, 1, 2000);
	if (rc) {
		free(n);
		return cqrs__fail(-EINVAL, "node: replication_urls: no URL, or more than 16");
	}
	n->link.no_create = true; /* the writer's replicator creates it */
	e->node = n;
	CTR_SET(e->ctr, repl_state, CQRS_REPL_CONNECTING);
	CTR_SET(e->ctr, replicated_seq, next_seq - 1);
	rc = pthread_create(&n->thread, NULL, receiver_main, n);
	if (rc) {
		cqrs__node_stop(e);
		return -rc;
	}
	n->started = true;
	pthread_setname_np(n->thread, "cqrs-node");
	return 0;
}

void cqrs__node_stop(cqrs_engine *e)
{
	struct cqrs_node *n = e->node;

	if (!n)
		return;
	/* release: pairs with the receiver's acquire in stopping(). */
	atomic_store_explicit(&n->stop, 1, memory_order_release);
	if (n->started)
		pthread_join(n->thread, NULL);
	/* relaxed: the receiver has ended (joined). */
	for (uint64_t h = atomic_load_explicit(&n->head, memory_order_relaxed);
	     h != atomic_load_explicit(&n->tail, memory_order_relaxed); h++)
		free(n->q[h % NODE_QUEUE]);
	cqrs__link_close(&n->link);
	free(n->link.url_buf);
	e->node = NULL;
	free(n);
}
